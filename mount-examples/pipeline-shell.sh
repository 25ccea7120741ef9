#!/usr/bin/env bash
# Shell tools over a query's result: start a run through `execute`, then grep,
# awk, cut, sort and uniq read executions/<eid>/results.csv straight from the
# mount (the first read waits for the run to end; later reads come from the
# cache without a request).
#
#   [MNT=/mnt/dune] [MATCH=REGEX] pipeline-shell.sh QID SUM_COLUMN BY_COLUMN [name=value ...]
#
# prints the execution id, the row count, the sum of SUM_COLUMN, the rows per
# value of BY_COLUMN (most first) and, with MATCH set, how many rows match that
# grep -E pattern. The name=value arguments are the run's parameters (one
# write() to `execute`, so one run). On the bundled fake (mount-examples/demo.sh):
#
#   MATCH=' 14:' pipeline-shell.sh 1003 volume chain days=90 chain=polygon
#
# Line tools see lines, not CSV records, so this is right only for a result
# without quoted fields: numbers, ids, addresses, plain names, dates (the fake's
# 1003: n, day, chain, volume). A quoted field may hold a comma (awk -F, splits
# it in two) or a line break (one record becomes two lines). Picking only the
# columns before such a field does not help, as its line breaks still split the
# record: the fake's 1001..1006 have a `note` column with commas, quotes and CR/LF
# inside quotes. The script refuses a result with a double quote in it; for such
# results use pipeline_csv.py, pipeline-miller.sh or pipeline-sqlite.sh, which
# parse CSV. Redash ends lines with CRLF, so the pipelines below drop the CRs first.
set -euo pipefail
export LC_ALL=C # bytes, not characters; the same sort order and number format everywhere

usage() {
    echo "usage: [MNT=/mnt/dune] [MATCH=REGEX] $0 QID SUM_COLUMN BY_COLUMN [name=value ...]" >&2
    echo "  e.g. MNT=/mnt/dune $0 1215383 amount_usd token days=7" >&2
    exit 2
}
[ $# -ge 3 ] || usage
mnt=${MNT:-/mnt/dune}
qid=$1 sum_col=$2 by_col=$3
shift 3
q=$mnt/queries/$qid

# One write() is one run, so the parameters must go out in a single write().
# bash's own echo and printf write a line at a time (bash line-buffers its
# output), so `printf 'days=7\nchain=x\n' > execute` would start a run with
# days=7 alone and then fail (execfs refuses a second write on the same open
# file, so no second run). coreutils' printf (`env printf`) buffers its output
# and writes it once at exit, for up to its 4 KB buffer. An empty write would be
# no write at all, so no parameters is a lone newline.
params=$'\n'
[ $# -gt 0 ] && params=$(printf '%s\n' "$@")$'\n'
if [ ${#params} -gt 4096 ]; then
    echo "$0: parameters longer than 4096 bytes would take more than one write()" >&2
    exit 2
fi
env printf '%s' "$params" > "$q/execute"
# `last` is the newest run started on this mount (by anyone: a concurrent
# `execute` of the same query would move it). Reading the id back from the
# open `execute` file has no such race, but needs a seek back to offset 0
# after the write, which the shell cannot do (Python can: open it "r+",
# write, seek(0), read).
eid=$(readlink "$q/last")
eid=${eid##*/}
res=$mnt/executions/$eid/results.csv

header() { head -n 1 "$res" | tr -d '\r'; }
rows() { tr -d '\r' < "$res" | tail -n +2; }
column_number() {
    local n
    n=$(header | tr , '\n' | grep -nxF -- "$1" | cut -d: -f1 | head -n 1)
    [ -n "$n" ] || { echo "$0: no column '$1' in: $(header)" >&2; exit 1; }
    echo "$n"
}

# the first read waits for the run to end
if ! cat "$res" > /dev/null; then
    echo "$0: run $eid: $(cat "$mnt/executions/$eid/status"): $(cat "$mnt/executions/$eid/error")" >&2
    exit 1
fi
if grep -q '"' "$res"; then
    echo "$0: $res has quoted fields; line tools would split its records wrongly" >&2
    echo "  (use pipeline_csv.py, pipeline-miller.sh or pipeline-sqlite.sh)" >&2
    exit 1
fi
sum_n=$(column_number "$sum_col")
by_n=$(column_number "$by_col")

echo "execution: $eid"
echo "rows: $(rows | wc -l)"
echo "sum($sum_col): $(rows | awk -F, -v c="$sum_n" '{ s += $c } END { printf "%.15g\n", s }')"
echo "rows by $by_col:"
rows | cut -d, -f"$by_n" | sort | uniq -c | sort -k1,1nr -k2
if [ -n "${MATCH:-}" ]; then
    echo "rows matching /$MATCH/: $(rows | grep -cE -- "$MATCH" || true)"
fi
