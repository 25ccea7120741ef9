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
echo "== unit tests (ASan + UBSan)"
./build-asan/unit-tests
echo "== fuzzers" && bash tests/fuzz/run.sh
echo "== end-to-end tests (plain build)"
EXECFS_BIN="$PWD/build/execfs" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/
echo "== end-to-end tests (ASan + UBSan)"
EXECFS_BIN="$PWD/build-asan/execfs" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/
