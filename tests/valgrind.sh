#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The unit tests and the fuzz seed corpora under valgrind's memcheck, in a build without
# sanitizers (valgrind and ASan do not mix). Any memcheck error or definitely lost block fails
# the test (exit code 99 from valgrind).
#
#       tests/valgrind.sh [BUILD_DIR] [-- MESON_TEST_ARGS...]
#
# BUILD_DIR defaults to build-valgrind in the source tree; it is set up with -Dbuildtype=debug
# if it does not exist. MESON_TEST_ARGS go to meson test, e.g. -- test-address to run one test,
# or -- --no-suite slow. Expect minutes: test-nft-set and test-state-file are the slowest.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build-valgrind}
[[ $# -eq 0 ]] || shift
[[ ${1:-} != -- ]] || shift

command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 77; }

if [[ ! -f $build/build.ninja ]]; then
        meson setup "$build" "$top" -Dbuildtype=debug -Db_sanitize=none >/dev/null
fi
meson compile -C "$build" >/dev/null || meson compile -C "$build"

# False positives only, outside vpopguard's code:
# - valgrind 3.19 checks mount(2)'s type as a string even when it may be NULL (remount and
#   propagation changes, as test-state-file does in its own mount namespace);
# - libnftables/libnftnl send netlink batches whose alignment padding is never written
#   (buffers from nftnl_batch_alloc and on libnftables' stack); the kernel ignores it.
# VPOPGUARD_VALGRIND_SUPP=FILE keeps a copy, e.g. to run the daemon under valgrind by hand.
supp=$(mktemp "${TMPDIR:-/tmp}/vpopguard-valgrind.XXXXXX.supp")
trap 'rm -f -- "$supp"' EXIT
cat >"$supp" <<'EOF'
{
   mount-null-type
   Memcheck:Param
   mount(type)
   fun:mount
}
{
   libnftables-netlink-padding-sendmsg-0
   Memcheck:Param
   sendmsg(msg.msg_iov[0])
   fun:sendmsg
   ...
   fun:nft_run_cmd_from_buffer
}
{
   libnftables-netlink-padding-sendmsg-1
   Memcheck:Param
   sendmsg(msg.msg_iov[1])
   fun:sendmsg
   ...
   fun:nft_run_cmd_from_buffer
}
{
   libnftables-netlink-padding-sendmsg-2
   Memcheck:Param
   sendmsg(msg.msg_iov[2])
   fun:sendmsg
   ...
   fun:nft_run_cmd_from_buffer
}
{
   libnftables-netlink-padding-sendto
   Memcheck:Param
   socketcall.sendto(msg)
   fun:sendto
   ...
   fun:nft_run_cmd_from_buffer
}
EOF
[[ -z ${VPOPGUARD_VALGRIND_SUPP:-} ]] || cp -- "$supp" "$VPOPGUARD_VALGRIND_SUPP"

wrapper="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
wrapper+=" --track-origins=yes --suppressions=$supp"
suites=(--suite unit --suite fuzz-corpus)
# Test names after "--" select tests; suites would add all of theirs again.
for arg in "$@"; do
        [[ $arg == -* ]] || suites=()
done
status=0
meson test -C "$build" "${suites[@]}" --wrapper="$wrapper" --timeout-multiplier=10 \
        --print-errorlogs "$@" || status=$?
exit "$status"
