#!/usr/bin/env bash
# The test command: installs what is needed, builds execfs twice (plain, and
# with AddressSanitizer + UndefinedBehaviorSanitizer) and runs every test,
# unit and end-to-end, against both builds, and the response parsers' fuzzers.
#
#   bash tests/run-all.sh                  everything (what CI runs, ~10 min)
#   bash tests/run-all.sh --quick          the plain build only: its unit tests and
#                                          end-to-end suite; no ASan build, no fuzzing
#                                          (QUICK=1 does the same)
#   bash tests/run-all.sh [--quick] -- ARGS
#                                          ARGS go to pytest in each end-to-end pass:
#                                          -- -k redash tests/test_results.py (one file,
#                                          one backend); without a test path in ARGS,
#                                          the pass runs tests/
#
# While the end-to-end passes run, a line says which test file each pass is on
# and what passed and failed so far; pytest's own output is printed at the end.
# When a pass fails, its logs and temporary files are kept (the path is
# printed), with each failing test's daemon logs and fake's requests under
# <pass>/failures/. The time each phase took is printed last.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

case ${QUICK:-0} in 0 | no | false | "") quick=0 ;; *) quick=1 ;; esac
pytest_args=()
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1 ;;
        --) shift; pytest_args=("$@"); break ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run-all.sh: unknown argument '$1' (pytest's arguments go after --)" >&2
           usage >&2; exit 2 ;;
    esac
    shift
done

# ---- time per phase, printed on the way out (also after a failure) ----------
phase_names=() phase_times=()
phase_name="" phase_start=""
now() { echo "${EPOCHREALTIME/./}"; } # microseconds
took() { # start (from now): the time since, as 4.2s or 6m31s
    local us=$(($(now) - $1))
    if [ $us -lt 10000000 ]; then
        printf '%d.%02ds' $((us / 1000000)) $((us / 10000 % 100))
    elif [ $us -lt 60000000 ]; then
        printf '%d.%ds' $((us / 1000000)) $((us / 100000 % 10))
    else
        printf '%dm%02ds' $((us / 60000000)) $((us / 1000000 % 60))
    fi
}
phase() { # name: the next phase starts (and the one before ends)
    phase_end
    phase_name=$1 phase_start=$(now)
    echo "== $1"
}
phase_end() {
    if [ -n "$phase_name" ]; then
        phase_names+=("$phase_name") phase_times+=("$(took "$phase_start")")
        phase_name=""
    fi
}
run_start=$(now)
logs="" keep_logs=0
# shellcheck disable=SC2317 # run by the trap below
finish() {
    local rc=$?
    if [ -n "$phase_name" ]; then
        phase_names+=("$phase_name (stopped)") phase_times+=("$(took "$phase_start")")
    fi
    echo "== time per phase"
    local i w=5
    for i in "${!phase_names[@]}"; do
        [ ${#phase_names[$i]} -le "$w" ] || w=${#phase_names[$i]}
    done
    for i in "${!phase_names[@]}"; do
        printf '  %-*s %8s\n' "$w" "${phase_names[$i]}" "${phase_times[$i]}"
    done
    printf '  %-*s %8s\n' "$w" "total" "$(took "$run_start")"
    if [ -n "$logs" ]; then
        if [ "$keep_logs" = 1 ]; then
            echo "== logs kept in $logs ($(du -sh "$logs" 2>/dev/null | cut -f1); rm -rf it when done)"
            local f
            for f in "$logs"/tmp-*/failures; do
                [ -d "$f" ] && echo "   failing tests' daemon logs and fake requests: $f/"
            done
        else
            rm -rf --one-file-system "$logs"
        fi
    fi
    if [ "$rc" -eq 0 ]; then
        echo "== all passed"
    else
        echo "== FAILED (exit $rc)"
    fi
}
trap finish EXIT

phase "install (tests/install-deps.sh)"
bash tests/install-deps.sh

build() { # dir, meson options...
    local dir=$1 out
    shift
    out=$(mktemp) # quiet unless it fails
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >"$out" 2>&1 || { cat "$out"; rm -f "$out"; return 1; }
    fi
    ninja -C "$dir" >"$out" 2>&1 || { cat "$out"; rm -f "$out"; return 1; }
    rm -f "$out"
}

phase "build (plain: build/)"
build build
if [ $quick = 0 ]; then
    phase "build (ASan + UBSan: build-asan/)"
    build build-asan -Db_sanitize=address,undefined -Db_lundef=false
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0

phase "unit tests (plain build)"
./build/unit-tests
./build/engine-tests
if [ $quick = 0 ]; then
    phase "unit tests (ASan + UBSan)"
    ./build-asan/unit-tests
    ./build-asan/engine-tests
    phase "fuzzers"
    bash tests/fuzz/run.sh
fi

# The end-to-end passes: pytest's output goes to a log each, printed at the
# end; tests/execfs_progress.py writes a line per test file (and per failure)
# to fd 3, the terminal, one write(2) a line so two passes never mix a line.
# Without a test path among the pytest arguments, a pass runs tests/.
targets=("${pytest_args[@]}")
has_path=0
for a in "${pytest_args[@]}"; do
    case $a in -*) continue ;; esac
    if [ -e "${a%%::*}" ]; then has_path=1; fi
done
[ $has_path = 1 ] || targets+=(tests/)
logs=$(mktemp -d /tmp/execfs-tests.XXXXXX)
e2e() { # name, binary
    local start rc=0
    start=$(now)
    EXECFS_BIN="$2" PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}" \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        -p execfs_progress --progress-fd=3 --progress-name="$1" \
        --basetemp="$logs/tmp-$1" "${targets[@]}" 3>&1 >"$logs/$1.log" 2>&1 || rc=$?
    took "$start" >"$logs/$1.time"
    return $rc
}
status=0
if [ $quick = 1 ]; then
    phase "end-to-end tests (plain build)"
    e2e plain "$PWD/build/execfs" || status=1
    phase_end
    echo "== end-to-end tests (plain build): pytest's output"
    cat "$logs/plain.log"
else
    # The two passes run side by side: they spend most of their time
    # waiting on the fakes' delays, not on the CPU (about 1 min of CPU in 6.5 min
    # each), and share nothing but the machine: each has its own binary, fakes on
    # ports of their own and its own temporary directory.
    phase "end-to-end tests (plain and ASan + UBSan builds, side by side)"
    e2e plain "$PWD/build/execfs" & plain=$!
    e2e asan "$PWD/build-asan/execfs" & asan=$!
    wait $plain || status=1
    wait $asan || status=1
    phase_end
    phase_names+=("  of which the plain pass" "  of which the ASan + UBSan pass")
    phase_times+=("$(cat "$logs/plain.time" 2>/dev/null || echo ?)"
                  "$(cat "$logs/asan.time" 2>/dev/null || echo ?)")
    echo "== end-to-end tests (plain build): pytest's output"
    cat "$logs/plain.log"
    echo "== end-to-end tests (ASan + UBSan): pytest's output"
    cat "$logs/asan.log"
fi
[ $status = 0 ] || keep_logs=1
exit $status
