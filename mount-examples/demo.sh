#!/usr/bin/env bash
# The execfs demo: builds execfs, starts a bundled local API (the fakes in
# tests/), mounts it, and uses it through ordinary tools: latest.csv, an
# execute -> wait -> results.csv round trip, a big result, a failure with its
# message. Unmounts and cleans up on the way out.
#
#   mount-examples/demo.sh           the local Dune API
#   mount-examples/demo.sh redash    the local Redash API (as Nansen serves it)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-dune}
case $kind in
dune | redash) ;;
*) echo "usage: $0 [dune|redash]" >&2; exit 2 ;;
esac

# shellcheck source=local-api.sh
. mount-examples/local-api.sh

EXECFS_API_KEY="$key" "$EXECFS_BIN" "$kind:http://127.0.0.1:$port" "$mnt" \
    -o cache_dir="$work/cache",max_age=60
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.05; done

show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; bash -c "$*" || echo "(exit status $?)"; }

cd "$mnt"

echo "mounted the local $kind API (127.0.0.1:$port) on $mnt"
show "ls queries/1001"
show "cat queries/1001/latest.csv"
show "echo days=3 > queries/1003/execute && cat queries/1003/last/results.csv"
show "readlink queries/1003/last; cat queries/1003/last/status"
show "echo > queries/1002/execute; cat queries/1002/last/status; time cat queries/1002/last/results.csv"
show "wc -l queries/1005/latest.csv; head -3 queries/1005/latest.csv"
show "head -c 300 queries/1005/latest.json; echo"
show "echo > queries/1004/execute; cat queries/1004/last/results.csv"
show "cat queries/1004/last/status queries/1004/last/error"
show "ls -l executions"
cd /
echo
echo "unmounting"
