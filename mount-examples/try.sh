#!/usr/bin/env bash
# Try execfs by hand, with no API key: builds execfs, starts the bundled local
# API (the fake in tests/, with sample queries), mounts it in the foreground
# and prints what to try. Ctrl-C unmounts and cleans up.
#
#   mount-examples/try.sh           the local Dune API
#   mount-examples/try.sh redash    the local Redash API (as Nansen serves it)
#
# EXECFS_BIN=path uses that binary and skips installing and building.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-dune}
case $kind in
dune | redash) ;;
*) echo "usage: $0 [dune|redash]" >&2; exit 2 ;;
esac

# shellcheck source=local-api.sh
. mount-examples/local-api.sh

cat <<TEXT
The local $kind API runs on 127.0.0.1:$port, with these queries:

  1001  fast: a run takes about 1 s, 10 rows
  1002  slow: a run takes about 7 s (a read waits for it)
  1003  parameters days (a number, 7) and chain (a string, ethereum)
  1004  fails: every run fails, with the engine's message
  1005  big: 5000 rows, several pages
  1006  partial: its runs end "partial" (a result cut short by the engine)
  1007  never run: no latest result until you run it
  1008  archived: the API refuses to run it

Mount point: $mnt
In another terminal, try:

  cd $mnt
  cat queries/1001/latest.csv
  echo days=3 > queries/1003/execute && cat queries/1003/last/results.csv
  echo > queries/1002/execute; cat queries/1002/last/status; cat queries/1002/last/results.csv
  cat queries/1007/latest.csv; cat queries/1007/error
  echo > queries/1004/execute; cat queries/1004/last/results.csv; cat queries/1004/last/error
  head -3 queries/1005/latest.csv; wc -l queries/1005/latest.csv
  ls -l executions

Ctrl-C here unmounts and cleans up. Log:
TEXT
EXECFS_API_KEY="$key" "$EXECFS_BIN" "$kind:http://127.0.0.1:$port" "$mnt" -f \
    -o cache_dir="$work/cache",max_age=60 || true
