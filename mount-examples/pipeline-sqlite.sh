#!/usr/bin/env bash
# sqlite3 over a query's result: `.import --csv` loads a result file straight
# from the mount into a table, then SQL aggregates it.
#
#   [MNT=/mnt/dune] [MODE=table] pipeline-sqlite.sh QID|FILE.csv BY_COLUMN SUM_COLUMN
#   [MNT=/mnt/dune] [MODE=table] SQL='SELECT ... FROM results ...' pipeline-sqlite.sh QID|FILE.csv
#
# QID reads $MNT/queries/QID/latest.csv; FILE.csv is any result file, such as
# $MNT/executions/<eid>/results.csv (whose read waits for the run to end). The
# table is `results`, one TEXT column per CSV column, named by the header.
# The default SQL prints, per value of BY_COLUMN (most rows first): the row
# count, the sum of SUM_COLUMN, and how many of its cells are not empty. MODE is
# sqlite3's output mode: table, box, csv, json, markdown, ... On the bundled
# fake (mount-examples/demo.sh):
#
#   pipeline-sqlite.sh /mnt/dune/queries/1003/last/results.csv chain volume
#   pipeline-sqlite.sh 1001 note n        # notes with commas, quotes, line breaks
#
# What sqlite3 3.40 (Debian 12) does with a result's CSV, checked on both APIs:
# - quoted fields keep their commas, doubled quotes and line breaks, CR/LF
#   inside a field included;
# - Redash's CRLF line ends are taken off (the CR of an unquoted last field
#   too), so neither the last column's values nor its name end in a CR;
# - every column is TEXT and an empty cell (both APIs' null) is '' not NULL:
#   hence NULLIF(col, '') before counting or summing. CAST(x AS NUMERIC) keeps
#   integers exact up to 64 bits (longer ones, such as Dune's uint256 columns,
#   become REAL); note that sqlite takes the numeric prefix of a text, so the
#   "sum" of a text column is not an error but nonsense.
# - `.import` reads with fgetc() and takes a read error for the end of the file,
#   so a run that failed (EIO) would load an empty or short table without a
#   word. The script reads the file once first (`cat > /dev/null`), which
#   waits for the run and reports its error; the import then reads the copy
#   execfs has on disk. Rows of the wrong width are reported on stderr.
set -euo pipefail

usage() {
    echo "usage: [MNT=/mnt/dune] [MODE=table] $0 QID|FILE.csv BY_COLUMN SUM_COLUMN" >&2
    echo "       [MNT=/mnt/dune] [MODE=table] SQL='SELECT ... FROM results' $0 QID|FILE.csv" >&2
    exit 2
}
if [ -n "${SQL:-}" ]; then
    [ $# -eq 1 ] || usage
else
    [ $# -eq 3 ] || usage
fi
mnt=${MNT:-/mnt/dune}
case $1 in
*[!0-9]* | "") src=$1 ;;
*) src=$mnt/queries/$1/latest.csv ;;
esac
case $src in
*"'"*) echo "$0: a path with a single quote cannot be named to .import: $src" >&2; exit 2 ;;
esac

# the first read waits for the run; an error (ENODATA, EIO, ...) stops here
if ! cat "$src" > /dev/null; then
    echo "$0: cannot read $src (for a run: see the error file beside it)" >&2
    exit 1
fi

ident() { # a column name as an SQL identifier
    local q='"'
    printf '"%s"' "${1//$q/$q$q}"
}
if [ -z "${SQL:-}" ]; then
    by=$(ident "$2") sum=$(ident "$3")
    SQL="SELECT $by AS $by,
       count(*) AS rows,
       sum(CAST(NULLIF($sum, '') AS NUMERIC)) AS $(ident "sum_$3"),
       count(NULLIF($sum, '')) AS $(ident "nonempty_$3")
  FROM results
 GROUP BY 1
 ORDER BY rows DESC, 1;"
fi

# dqs_dml off (its echo silenced): a double-quoted name that is no column is
# an error ("no such column"), not taken for a string literal as sqlite would
sqlite3 -batch -bail :memory: <<EOF
.output /dev/null
.dbconfig dqs_dml off
.output
.import --csv '$src' results
.headers on
.mode ${MODE:-table}
$SQL
EOF
