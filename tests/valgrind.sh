#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The test suite under valgrind's memcheck, in a build without sanitizers (valgrind and ASan do
# not mix):
#   - the unit tests and the fuzz seed corpora run under valgrind (meson test --wrapper); any
#     memcheck error or definitely lost block fails the test (exit code 99 from valgrind);
#   - the integration tests run as usual, but start vpopguardd and vpopguardctl under valgrind
#     (VPOPGUARD_VALGRIND=1, see tests/integration/lib.sh), one log per process in
#     BUILD_DIR/meson-logs/valgrind/. Then every log is read: a memcheck error, a crash, or a
#     definitely lost block in a process that was not killed fails the run, and its log is
#     printed. A process killed with SIGKILL leaves no summary, but its errors are in the log
#     as they happened; the leaks of a killed process (SIGKILL, or a signal it does not handle)
#     are no finding. The integration tests need root, as they do without valgrind; the few that
#     cannot work under valgrind are left out, each with its reason (see "excluded" below).
#
#       tests/valgrind.sh [BUILD_DIR] [-- MESON_TEST_ARGS...]
#
# BUILD_DIR defaults to build-valgrind in the source tree; it is set up with -Dbuildtype=debug
# if it does not exist. MESON_TEST_ARGS go to meson test: --suite=unit, --suite=fuzz-corpus and
# --suite=integration pick parts, test names pick tests in them (test-varlink is a unit and an
# integration test), and other options go to both runs (options with a value in the
# --option=VALUE form). Expect 15 to 30 minutes for everything on two cores: test-state-file and
# test-nft-set are the slowest unit tests, test-varlink and test-torture the slowest
# integration tests.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build-valgrind}
[[ $# -eq 0 ]] || shift
[[ ${1:-} != -- ]] || shift

command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 77; }

# False positives only, outside vpopguard's code, each with its reason.
supp=${VPOPGUARD_VALGRIND_SUPP:-$top/tests/valgrind.supp}
[[ -r $supp ]] || { echo "valgrind.sh: no suppression file $supp" >&2; exit 1; }
supp=$(realpath "$supp")

if [[ ! -f $build/build.ninja ]]; then
        meson setup "$build" "$top" -Dbuildtype=debug -Db_sanitize=none >/dev/null
fi
meson compile -C "$build" >/dev/null || meson compile -C "$build"

# --- Which tests: --suite= picks parts, names pick tests (within the parts, if any are picked);
# everything else is an option for meson test. A name can be both a unit and an integration
# test (test-varlink).
unit_suites=() integration=0 names=() options=()
for arg in "$@"; do
        case $arg in
        --suite=unit | --suite=fuzz-corpus) unit_suites+=("$arg") ;;
        --suite=integration) integration=1 ;;
        --suite | --suite=*)
                echo "valgrind.sh: use --suite=unit, --suite=fuzz-corpus or --suite=integration" >&2
                exit 2
                ;;
        -*) options+=("$arg") ;;
        *) names+=("$arg") ;;
        esac
done
suites_picked=$((${#unit_suites[@]} + integration))
if ((suites_picked == 0)); then
        unit_suites=(--suite=unit --suite=fuzz-corpus)
        integration=1
fi
unit_names=() integration_names=()
if ((${#names[@]} > 0)); then
        listing=$(meson test -C "$build" --list 2>/dev/null)
        for name in "${names[@]}"; do
                found=0
                if grep -qE ":(unit|fuzz-corpus) / $name\$" <<<"$listing"; then
                        unit_names+=("$name") found=1
                fi
                if grep -qE ":integration / $name\$" <<<"$listing"; then
                        integration_names+=("$name") found=1
                fi
                ((found)) || { echo "valgrind.sh: no unit, fuzz-corpus or integration test $name" >&2; exit 2; }
        done
        # Only the parts that hold a named test run.
        ((${#unit_names[@]} > 0)) || unit_suites=()
        ((${#integration_names[@]} > 0)) || integration=0
fi

status=0

# --- Unit tests and fuzz corpora, each under valgrind.
if ((${#unit_suites[@]} > 0)); then
        wrapper="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
        wrapper+=" --track-origins=yes --vgdb=no --suppressions=$supp"
        meson test -C "$build" "${unit_suites[@]}" "${unit_names[@]}" --wrapper="$wrapper" \
                --timeout-multiplier=10 --print-errorlogs "${options[@]}" || status=$?
fi

((integration)) || exit "$status"

# --- Integration tests, with vpopguardd and vpopguardctl under valgrind (lib.sh).
logs=$build/meson-logs/valgrind
rm -rf -- "$logs"
mkdir -p -- "$logs"
if ((${#integration_names[@]} == 0)); then
        # Integration tests that cannot work under valgrind, and why. Named on the command line,
        # they run anyway.
        declare -A excluded=(
                [test-flood-addresses]="its flood of 1,000,000 entries is over before a daemon under memcheck has filled the jail, and its timing and memory bounds assume native speed (test-failure-table covers the eviction under valgrind)"
                [test-varlink-floods]="it bounds the daemon's RssAnon and file limit, which are valgrind's under memcheck, and wants every status call during a burst of 60,000 entries answered within vpopguardctl's 30 s"
        )
        while read -r name; do
                if [[ -n ${excluded[$name]:-} ]]; then
                        echo "valgrind.sh: $name does not run under valgrind: ${excluded[$name]}" >&2
                else
                        integration_names+=("$name")
                fi
        done < <(meson test -C "$build" --list --suite=integration 2>/dev/null | sed -n 's|^.*:integration / ||p')
        ((${#integration_names[@]} > 0)) || { echo "valgrind.sh: no integration tests in $build" >&2; exit 1; }
fi
rc=0
VPOPGUARD_VALGRIND=1 VPOPGUARD_VALGRIND_DIR=$logs VPOPGUARD_VALGRIND_SUPP=$supp \
        meson test -C "$build" --suite=integration "${integration_names[@]}" --timeout-multiplier=10 \
        --print-errorlogs "${options[@]}" || rc=$?
((status != 0)) || status=$rc

# scan LOG...: one line per log: "LOG ERRORS LEAKS COMPLETE SIGNAL". Every error and every
# shown (definite) leak comes with a suppression block (--gen-suppressions=all) whose second
# line is its kind; COMPLETE: the log has an ERROR SUMMARY; SIGNAL: the fatal signal, or "-".
scan() {
        awk 'function out() { if (file != "") print file, errors, leaks, complete, sig }
             FNR == 1 { out(); file = FILENAME; errors = leaks = complete = 0; sig = "-"; kind = 0 }
             kind { kind = 0; if ($1 == "Memcheck:Leak") leaks++; else errors++ }
             /^ *<insert_a_suppression_name_here>$/ { kind = 1 }
             /== ERROR SUMMARY: / { complete = 1 }
             match($0, /Process terminating with default action of signal [0-9]+ \(SIG[A-Z0-9]+\)/) {
                     s = substr($0, RSTART, RLENGTH); sub(/.*\(/, "", s); sub(/\)/, "", s); sig = s }
             END { out() }' "$@"
}

shopt -s nullglob
files=("$logs"/*.log)
if ((${#files[@]} == 0)); then
        echo "valgrind.sh: no vpopguardd or vpopguardctl ran under valgrind (the integration tests need root)" >&2
        exit "$status"
fi
declare -A procs=() killed=() bad=()
failed=()
while read -r file errors leaks complete sig; do
        name=${file##*/}
        test=${name%%.sh.*}
        procs[$test]=$((${procs[$test]:-0} + 1))
        why=()
        ((errors == 0)) || why+=("memcheck errors: $errors")
        case $sig in
        SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGABRT | SIGTRAP | SIGSYS) why+=("crashed with $sig") ;;
        esac
        if ((!complete)) || [[ $sig != - ]]; then
                killed[$test]=$((${killed[$test]:-0} + 1))
        elif ((leaks > 0)); then
                why+=("definitely lost blocks: $leaks")
        fi
        if ((${#why[@]} > 0)); then
                bad[$test]=$((${bad[$test]:-0} + 1))
                failed+=("$file: ${why[*]}")
        fi
done < <(scan "${files[@]}")

for file in "${failed[@]}"; do
        echo
        echo "==== valgrind: ${file#"$logs"/}"
        cat -- "${file%%: *}"
done
echo
echo "valgrind: processes of vpopguardd and vpopguardctl per integration test (logs in $logs):"
for test in $(printf '%s\n' "${!procs[@]}" | LC_ALL=C sort); do
        printf '  %-28s %4d processes, %4d killed, %d with findings\n' "$test" "${procs[$test]}" \
                "${killed[$test]:-0}" "${bad[$test]:-0}"
done
if ((${#failed[@]} > 0)); then
        echo "valgrind: ${#failed[@]} processes with findings:"
        printf '  %s\n' "${failed[@]#"$logs"/}"
        exit 1
fi
echo "valgrind: no errors, no definitely lost blocks"
exit "$status"
