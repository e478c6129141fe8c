#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs the libFuzzer targets of tests/fuzz for a while each.
#
#   tests/fuzz/run-fuzzers.sh [--merge] SECONDS [TARGET...]
#
# Configures and builds build-fuzz/ (clang, ASan + UBSan, libFuzzer; see tests/fuzz/meson.build),
# then runs each TARGET (default: all) for SECONDS, starting from its seed corpus
# tests/fuzz/corpus/TARGET/. New inputs go to build-fuzz/fuzz-runs/TARGET/corpus/, never into
# the repository; with --merge, those that add coverage are merged into the seed corpus at the
# end (libFuzzer -merge=1), to be reviewed and committed. Crash, leak, timeout and OOM inputs are
# saved as build-fuzz/fuzz-runs/TARGET/crash-* (and leak-*, ...). Prints the executions and any
# such file per target; exits 1 if any target found one. To reproduce a crash, run the target
# on the file: build-fuzz/tests/fuzz/fuzz-TARGET-libfuzzer FILE (or the plain fuzz-TARGET of any
# build); to keep it fixed, add the file to the seed corpus.
set -euo pipefail

cd "$(dirname "$0")/../.."
top=$PWD
build=$top/build-fuzz

# -max_len per target: the longest input that means something to it.
declare -A max_len=(
        [address]=128
        [timespan]=256
        [config]=65536
        [jail]=65600    # REGEX_MESSAGE_MAX is 65536: reach both sides of it
        [state]=65536
        [varlink]=140000 # past BUFFER_KEEP (64 KiB), whose buffers are freed once drained
)
all_targets=(address timespan config jail state varlink)

merge=false
if [ "${1:-}" = --merge ]; then
        merge=true
        shift
fi
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -eq 0 ]; then
        echo "Usage: $0 [--merge] SECONDS [TARGET...]   (targets: ${all_targets[*]})" >&2
        exit 2
fi
seconds=$1
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
        if [ -z "${max_len[$t]:-}" ]; then
                echo "Unknown target '$t' (targets: ${all_targets[*]})" >&2
                exit 2
        fi
done

options=(-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link)
if [ -f "$build/build.ninja" ]; then
        CC=clang meson setup --reconfigure "$build" "${options[@]}" >/dev/null
else
        CC=clang meson setup "$build" "${options[@]}" >/dev/null
fi
meson compile -C "$build" >/dev/null || meson compile -C "$build"

# UBSan only reports and carries on unless told to stop; libFuzzer must see a crash.
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export VPOPGUARD_SOURCE_DIR=$top

status=0
summary=()
for t in "${targets[@]}"; do
        bin=$build/tests/fuzz/fuzz-$t-libfuzzer
        seeds=$top/tests/fuzz/corpus/$t
        run=$build/fuzz-runs/$t
        rm -rf "$run"
        mkdir -p "$run/corpus"

        echo "== fuzz-$t: ${seconds}s, -max_len=${max_len[$t]}"
        rc=0
        # The first directory receives new inputs; the seeds are only read.
        "$bin" -max_total_time="$seconds" -max_len="${max_len[$t]}" -timeout=10 -print_final_stats=1 \
                -artifact_prefix="$run/" "$run/corpus" "$seeds" >"$run/log" 2>&1 || rc=$?

        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log" | tail -n 1)
        new=$(find "$run/corpus" -type f | wc -l)
        mapfile -t found < <(find "$run" -maxdepth 1 -type f \
                                  \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
        line="fuzz-$t: ${execs:-?} executions, $new new inputs"
        if [ ${#found[@]} -gt 0 ] || [ $rc -ne 0 ]; then
                status=1
                line+=", FAILED (exit $rc): ${found[*]:-no reproducer saved, see $run/log}"
                # The sanitizer's or the assertion's report, with its stack.
                grep -m1 -B2 -A40 -E '==ERROR|runtime error:|assertion failed|deadly signal|Timeout|out-of-memory' "$run/log" ||
                        tail -n 40 "$run/log"
        fi
        echo "$line"
        summary+=("$line")

        if $merge && [ $new -gt 0 ]; then
                before=$(find "$seeds" -type f | wc -l)
                "$bin" -merge=1 -max_len="${max_len[$t]}" "$seeds" "$run/corpus" >"$run/merge.log" 2>&1
                echo "   merged $(( $(find "$seeds" -type f | wc -l) - before )) inputs into tests/fuzz/corpus/$t/"
        fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
