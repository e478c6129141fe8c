#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An address an admin adds to IgnoreAddress= is free after the next start or reload, also when
# it was banned before: the ban is lifted (the element leaves the set, ListBans drops it) and an
# unban event with VPOPGUARD_UNBAN_REASON=ignored says why. Other bans stay.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin ignored-bans "$@"
vg_require_commands nft jq logger journalctl
conf=$tmp/vpopguard.conf
state=$tmp/state
T=30

vg_vpopmail_config "$conf" MaxRetry=3 BanTime=1h
vg_start_journald

start_daemon() {
        vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$state"
}

listed() { # ADDRESS: in ListBans
        "$ctl" bans --json | jq -e --arg a "$1" 'any(.bans[]; .address == $a)' >/dev/null
}

not_in_set() { # ADDRESS
        ! vg_nft_set_has banned4 "$1"
}

lifted_as_ignored() { # ADDRESS: its unban event says why
        vg_journal_has "MESSAGE_ID=$VG_MESSAGE_UNBAN" "VPOPGUARD_ADDRESS=$1" VPOPGUARD_UNBAN_REASON=ignored
}

ignore() { # ADDRESS: added to IgnoreAddress=
        printf 'IgnoreAddress=%s\n' "$1" >>"$conf"
}

# --- At start: banned by the journal and by hand, then ignored while the daemon is stopped.
start_daemon
vg_log_failures 192.0.2.10
vg_poll $T vg_nft_set_has banned4 192.0.2.10
"$ctl" ban 192.0.2.11 >/dev/null || vg_fail "manual ban failed"
"$ctl" ban 192.0.2.12 >/dev/null || vg_fail "manual ban failed"
vg_term_daemon
ignore 192.0.2.10
ignore 192.0.2.11
start_daemon
for a in 192.0.2.10 192.0.2.11; do
        vg_poll $T lifted_as_ignored "$a"
        not_in_set "$a" || vg_fail "$a is still in the set after it was ignored and the daemon restarted"
        listed "$a" && vg_fail "$a is still listed as banned after it was ignored"
done
vg_nft_set_has banned4 192.0.2.12 || vg_fail "a ban the change does not cover was lifted too"
listed 192.0.2.12 || vg_fail "192.0.2.12 missing from ListBans"

# The lifted bans are gone from the state as well: a restart does not bring them back.
vg_term_daemon
grep -q '192\.0\.2\.1[01]' "$state/state" && vg_fail "a lifted ban is still in the state file: $(cat "$state/state")"

# --- At reload.
start_daemon
"$ctl" ban 192.0.2.13 >/dev/null || vg_fail "manual ban failed"
ignore 192.0.2.13
"$ctl" reload >"$tmp/reload.out" 2>&1 || vg_fail "reload failed: $(cat "$tmp/reload.out")"
vg_poll $T lifted_as_ignored 192.0.2.13
not_in_set 192.0.2.13 || vg_fail "192.0.2.13 is still in the set after it was ignored and reloaded"
vg_nft_set_has banned4 192.0.2.12 || vg_fail "a ban the reload does not cover was lifted too"
vg_term_daemon
vg_log "PASS"
