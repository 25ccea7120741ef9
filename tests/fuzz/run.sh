#!/usr/bin/env bash
# Builds the libFuzzer targets of the response parsers (tests/fuzz/fuzz_*.c,
# with AddressSanitizer and UndefinedBehaviorSanitizer, any finding fatal)
# and runs each on a copy of its seed corpus for FUZZ_SECONDS seconds.
# Exits non-zero when a target crashes, leaks, hangs or hits undefined
# behaviour, naming the input that did it.
#
#   FUZZ_BUILD=DIR       where builds, logs and reproducers go (build-fuzz/)
#   FUZZ_SECONDS=N       seconds per target (15); 0 runs the seeds only
#   FUZZ_TARGETS="a b"   only these targets (dune_status dune_json ...)
#
# A reproducer runs again with: $FUZZ_BUILD/fuzz_<name> <reproducer>
set -euo pipefail
cd "$(dirname "$0")/../.."

build=${FUZZ_BUILD:-build-fuzz}
seconds=${FUZZ_SECONDS:-15}
cc=${CC_FUZZ:-clang}
targets=${FUZZ_TARGETS:-"dune_status dune_json dune_csv redash_job redash_result"}
# The parser side only: no libfuse, no libcurl.
sources="buffer jscan backend dune redash"

cflags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Isrc)
read -r -a cjson_cflags <<<"$(pkg-config --cflags libcjson)"
read -r -a cjson_libs <<<"$(pkg-config --libs libcjson)"

mkdir -p "$build/obj" "$build/logs"
echo "building fuzz targets in $build/"
pids=()
for s in $sources; do
    "$cc" "${cflags[@]}" "${cjson_cflags[@]}" -c "src/$s.c" -o "$build/obj/$s.o" & pids+=($!)
done
for t in $targets; do
    "$cc" "${cflags[@]}" "${cjson_cflags[@]}" -c "tests/fuzz/fuzz_$t.c" -o "$build/obj/fuzz_$t.o" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p"
done
for t in $targets; do
    objs=()
    for s in $sources; do
        objs+=("$build/obj/$s.o")
    done
    "$cc" "${cflags[@]}" "$build/obj/fuzz_$t.o" "${objs[@]}" "${cjson_libs[@]}" -o "$build/fuzz_$t"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Whatever the caller set, every finding ends the run.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

failed=0
for t in $targets; do
    corpus="$work/$t"
    artifacts="$build/artifacts/$t/"
    log="$build/logs/$t.log"
    mkdir -p "$corpus" "$artifacts"
    cp tests/fuzz/corpus/"$t"/* "$corpus/" # the committed corpus never grows
    if [ "$seconds" -eq 0 ]; then
        limit=(-runs=0)
    else
        limit=(-max_total_time="$seconds")
    fi
    if "$build/fuzz_$t" "$corpus" "${limit[@]}" -max_len=65536 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        echo "fuzz_$t: ok, ${runs:-?} runs, ${rate:-?} exec/s"
    else
        failed=1
        echo "fuzz_$t: FAILED (log: $log)"
        grep -E "ERROR: |runtime error:|broken promise:|SUMMARY:" "$log" | head -n 20 || true
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        if [ -n "$repro" ]; then
            echo "reproducer: $repro (run: $build/fuzz_$t $repro)"
        fi
    fi
done
exit $failed
