#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A ban that runs out while the daemon runs (BanTime=2s), as an admin would watch it:
#   - the element was in the kernel's set (seen by our own "nft monitor") and leaves it;
#   - the journal gets one unban event (MESSAGE_ID=16f9f882...) with
#     VPOPGUARD_UNBAN_REASON=expired, naming the address and the jail;
#   - a Monitor() subscriber (vpopguardctl --json monitor) gets an "expire" event for it;
#   - GetStatus says bansActive 0 and ListBans is empty; the last STATUS= says "0 bans active".
# Nothing here assumes how long anything takes: every step polls for its condition.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin expiry "$@"
vg_require_commands nft jq journalctl
conf=$tmp/vpopguard.conf
sock=$tmp/io.vpopguard.Manager
UNBAN_ID=16f9f8826ed04c4b9f2a2591444632bc
T=30 # deadline of each wait, in seconds: generous, a busy machine is no failure

vg_vpopmail_config "$conf" MaxRetry=3 BanTime=2s

vg_start_journald

# Our own view of the kernel: every element added or deleted, whoever does it. It listens once
# it reports a probe table; each try adds a new one (adding a table that exists is no change the
# kernel reports, so a first try before the monitor subscribed would never be seen).
vg_spawn "$tmp/nft-monitor.log" nft monitor
nft_monitor_listens() {
        nft add table ip vg_probe && nft delete table ip vg_probe
        grep -q 'vg_probe' "$tmp/nft-monitor.log"
}
vg_poll "$T" nft_monitor_listens

vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock"

# A Monitor() subscriber; it listens once a probe ban (1 min, lifted at once) reaches it.
vg_spawn "$tmp/monitor.json" "$ctl" --socket="$sock" --json monitor
monitor_listens() {
        vg_daemon_ok
        grep -q '"address":"203.0.113.99"' "$tmp/monitor.json" && return 0
        "$ctl" --socket="$sock" ban --time=1min 203.0.113.99 >/dev/null || vg_fail "probe ban failed"
        "$ctl" --socket="$sock" unban 203.0.113.99 >/dev/null || vg_fail "probe unban failed"
        return 1
}
vg_poll "$T" monitor_listens

monitor_event() { # EVENT ADDRESS: the ban of the first such event, compact JSON
        grep '^{' "$tmp/monitor.json" |
                jq -c --arg e "$1" --arg a "$2" 'select(.event == $e and .ban.address == $a) | .ban' | head -n 1
}
has_monitor_event() {
        vg_daemon_ok
        [[ -n $(monitor_event "$1" "$2") ]]
}

# --- The ban: 3 failures, BanTime=2s.
vg_log_failures 192.0.2.10
vg_poll "$T" has_monitor_event ban 192.0.2.10
vg_assert_eq "vpopmail 3 journal 2000000" \
        "$(monitor_event ban 192.0.2.10 | jq -r '"\(.jail) \(.failures) \(.origin) \(.expiresUSec - .bannedUSec)"')" \
        "monitor ban event"
# The ban event comes after the kernel took the element; our nft monitor reports it in its time.
vg_poll "$T" grep -qF 'add element inet vpopguard banned4 { 192.0.2.10 ' "$tmp/nft-monitor.log"

# --- The expiry: gone from the kernel's set, logged, reported, counted.
not_in_set() {
        vg_daemon_ok
        ! vg_nft_set_has banned4 192.0.2.10
}
vg_poll "$T" not_in_set

unban_logged() {
        vg_daemon_ok
        vg_journal_has "MESSAGE_ID=$UNBAN_ID" VPOPGUARD_ADDRESS=192.0.2.10
}
vg_poll "$T" unban_logged
vg_journal_sync
journalctl -q --no-pager -o export "MESSAGE_ID=$UNBAN_ID" VPOPGUARD_ADDRESS=192.0.2.10 >"$tmp/unban-event"
vg_assert_eq 1 "$(grep -c '^__CURSOR=' "$tmp/unban-event")" "unban events of 192.0.2.10"
vg_assert_eq expired "$(sed -n 's/^VPOPGUARD_UNBAN_REASON=//p' "$tmp/unban-event")" "VPOPGUARD_UNBAN_REASON"
vg_assert_eq vpopmail "$(sed -n 's/^VPOPGUARD_JAIL=//p' "$tmp/unban-event")" "VPOPGUARD_JAIL of the unban"

vg_poll "$T" has_monitor_event expire 192.0.2.10
vg_assert_eq "vpopmail 3 journal 2000000" \
        "$(monitor_event expire 192.0.2.10 | jq -r '"\(.jail) \(.failures) \(.origin) \(.expiresUSec - .bannedUSec)"')" \
        "monitor expire event"
# An expiry is no unban by hand.
[[ -z $(monitor_event unban 192.0.2.10) ]] || vg_fail "monitor reported an unban of 192.0.2.10"

no_active_bans() {
        vg_daemon_ok
        "$ctl" --socket="$sock" --json status >"$tmp/status.json" || vg_fail "vpopguardctl status failed"
        [[ $(jq -r .bansActive "$tmp/status.json") == 0 ]]
}
vg_poll "$T" no_active_bans
vg_assert_eq "vpopmail 0 1" "$(jq -r '.jails[0] | "\(.name) \(.banned) \(.bansTotal)"' "$tmp/status.json")" \
        "GetStatus jail (name banned bansTotal)"
"$ctl" --socket="$sock" --json bans >"$tmp/bans.json" || vg_fail "vpopguardctl bans failed"
vg_assert_eq 0 "$(jq -r '.bans | length' "$tmp/bans.json")" "ListBans after the expiry"
last_status_says_none() {
        vg_notify_fields | grep '^STATUS=' | tail -n 1 | grep -q ' 0 bans active'
}
vg_poll "$T" last_status_says_none

vg_term_daemon
vg_log "all checks passed"
