#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A reload that cannot open the journal (its directory is gone) is refused and says why; the
# daemon keeps running with what it had, answers, and reports ready again (READY=1).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin reload-journal-gone "$@"
vg_require_commands nft jq
conf=$tmp/vpopguard.conf
journal=$tmp/journal
T=30

vg_vpopmail_config "$conf" MaxRetry=3
mkdir -p "$journal"

vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state" \
        --journal-directory="$journal"
readies=$(vg_daemon_readies)

rm -rf "$journal"
rc=0
"$ctl" reload >"$tmp/reload.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || vg_fail "reload answered success although the journal cannot be opened: $(cat "$tmp/reload.out")"
grep -qi 'journal' "$tmp/reload.out" || vg_fail "the refused reload does not say why: $(cat "$tmp/reload.out")"
vg_daemon_ok
vg_poll $T vg_daemon_readies_above "$readies"
"$ctl" status >/dev/null || vg_fail "the daemon stopped answering after the refused reload"
vg_daemon_ok
vg_term_daemon
vg_log "PASS"
