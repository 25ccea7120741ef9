#!/usr/bin/env bash
# Miller (mlr) over a query's result: statistics per group, read straight from
# the mount.
#
#   [MNT=/mnt/dune] [OFMT=pprint] pipeline-miller.sh QID|FILE.csv BY_COLUMN SUM_COLUMN
#
# QID reads $MNT/queries/QID/latest.csv; FILE.csv is any result file, such as
# $MNT/executions/<eid>/results.csv (whose read waits for the run to end).
# Prints, per value of BY_COLUMN, the count, sum, min and max of SUM_COLUMN's
# non-empty cells, biggest sum first (then by BY_COLUMN). OFMT is Miller's
# output format: pprint, csv, json, markdown, ... On the bundled fake
# (mount-examples/demo.sh):
#
#   pipeline-miller.sh /mnt/dune/queries/1003/last/results.csv chain volume
#   pipeline-miller.sh 1001 note n        # notes with commas, quotes, line breaks
#
# What Miller 6.6 (Debian 12) does with a result's CSV, checked on both APIs:
# - quoted fields keep their commas, doubled quotes and line breaks, and
#   Redash's CRLF line ends are taken off; but a CR/LF *inside* a quoted field
#   comes out as a bare LF (Miller reads CSV a line at a time): group on such a
#   column, or print it, and "a\r\nb" is "a\nb". pipeline_csv.py, pandas and
#   sqlite3 keep the CR.
# - an empty cell (both APIs' null) is left out of count, sum, min and max.
# - an integer too long for 64 bits (Dune's uint256 columns) is read as a
#   string, and stats1 leaves strings out of a sum without a word: the sum of
#   2985646787349243786078 and 1 comes out as 1. So the script first turns
#   SUM_COLUMN's all-digit strings into floats (so rounded to 16 digits, as
#   any float sum is), and warns about any other text in it.
# - a row of the wrong width stops Miller ("mlr: mlr: CSV header/data length
#   mismatch").
# - a read error is not an end for Miller 6.6: on a file whose read fails (EIO:
#   a run that failed) it calls read() again and again and prints empty
#   records without end. So Miller never opens the file here: `cat` reads it
#   into a pipe, stops at an error, and pipefail makes the script fail. The
#   file is read once first, to wait for the run and say what went wrong.
set -euo pipefail

usage() {
    echo "usage: [MNT=/mnt/dune] [OFMT=pprint] $0 QID|FILE.csv BY_COLUMN SUM_COLUMN" >&2
    exit 2
}
[ $# -eq 3 ] || usage
mnt=${MNT:-/mnt/dune}
case $1 in
*[!0-9]* | "") src=$1 ;;
*) src=$mnt/queries/$1/latest.csv ;;
esac
by=$2 sum=$3

# the first read waits for the run to end; an error (ENODATA, EIO, ...) stops here
if ! cat "$src" > /dev/null; then
    echo "$0: cannot read $src (for a run: see the error file beside it)" >&2
    exit 1
fi

# The column names, from the first record. stats1 skips records without the
# columns it is given and prints nothing, so a misspelt name is caught here.
# (mlr head stops reading early: cat's SIGPIPE is no error.)
names=$( (cat "$src" || true) | mlr --icsv --onidx head -n 1 then put -q 'print joink($*, "\n")')
for col in "$by" "$sum"; do
    if [ -n "$names" ] && ! grep -qxF -- "$col" <<< "$names"; then
        echo "$0: no column '$col' in $src (columns: $(paste -sd ' ' <<< "$names"))" >&2
        exit 1
    fi
done

cat "$src" | mlr --icsv --o"${OFMT:-pprint}" \
    put -s sum="$sum" '
        v = $[@sum];
        if (is_string(v) && v =~ "^-?[0-9]+$") {
            $[@sum] = float(v);
        } elif (is_string(v) && v != "") {
            @text += 1;
        }
        end {
            if (is_present(@text)) {
                eprint "pipeline-miller.sh: " . @text . " cells of " . @sum . " are not numbers; left out";
            }
        }' \
    then stats1 -a count,sum,min,max -f "$sum" -g "$by" \
    then sort -nr "${sum}_sum" -f "$by"
