#!/usr/bin/env bash
# The test command: installs what is needed, builds execfs twice (plain, and
# with AddressSanitizer + UndefinedBehaviorSanitizer) and runs every test,
# unit and end-to-end, against both builds.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/install-deps.sh

build() { # dir, meson options...
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null
    fi
    ninja -C "$dir" >/dev/null
}

build build
build build-asan -Db_sanitize=address,undefined -Db_lundef=false

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0

echo "== unit tests (plain build)"
./build/unit-tests
./build/engine-tests
echo "== unit tests (ASan + UBSan)"
./build-asan/unit-tests
./build-asan/engine-tests
echo "== fuzzers" && bash tests/fuzz/run.sh
# The two end-to-end passes run side by side: they spend most of their time
# waiting on the fakes' delays, not on the CPU (about 1 min of CPU in 6.5 min
# each), and share nothing but the machine: each has its own binary, fakes on
# ports of their own and its own temporary directory.
echo "== end-to-end tests (plain build and ASan + UBSan build, side by side)"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
e2e() { # name, binary
    EXECFS_BIN="$2" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        --basetemp="$logs/tmp-$1" tests/ >"$logs/$1.log" 2>&1
}
e2e plain "$PWD/build/execfs" & plain=$!
e2e asan "$PWD/build-asan/execfs" & asan=$!
status=0
wait $plain || status=1
echo "== end-to-end tests (plain build)"
cat "$logs/plain.log"
wait $asan || status=1
echo "== end-to-end tests (ASan + UBSan)"
cat "$logs/asan.log"
exit $status
