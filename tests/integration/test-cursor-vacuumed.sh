#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon is stopped, failures are logged, and the journal is rotated and vacuumed so that
# both the saved cursor's entry and everything after it are gone. On restart the daemon must
# say that entries may have been missed (log line and MESSAGE_ID event), then go on banning.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
vg_begin p "$@"
vg_start_journald
conf=$tmp/vpopguard.conf
vg_vpopmail_config "$conf" MaxRetry=3

vg_start_daemon "$tmp/d1.log" "$daemon" --config="$conf" --state-directory="$tmp/state"
vg_log_failures 192.0.2.1
vg_poll 20 vg_nft_set_has banned4 192.0.2.1
vg_term_daemon 20
saved=$(sed -n 's/^cursor //p' "$tmp/state/state")
[[ -n $saved ]] || vg_fail "no cursor saved"

vg_log_failures 192.0.2.2
vg_journal_sync
journalctl --rotate --vacuum-files=1 >/dev/null 2>&1
vg_assert_eq 0 "$(journalctl -q -o cat SYSLOG_IDENTIFIER=vpopmail | wc -l)" "vpopmail entries left after the vacuum"

vg_start_daemon "$tmp/d2.log" "$daemon" --config="$conf" --state-directory="$tmp/state"
grep -q 'may have been missed' "$tmp/d2.log" || vg_fail "no warning about missed entries: $(cat "$tmp/d2.log")"
vg_journal_sync
vg_assert_eq "$saved" "$(journalctl -q -o export MESSAGE_ID=a88198937379434e853764a891c2a4cf |
        sed -n 's/^VPOPGUARD_CURSOR=//p')" "cursor named by the missed-entries event"

# And it goes on: new failures after the restart ban.
vg_log_failures 192.0.2.3
vg_poll 20 vg_nft_set_has banned4 192.0.2.3
vg_log "ok"
