#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# BanTime=infinity: the ban's element has no timeout; its event says so; it survives SIGKILL,
# a restart and "nft flush ruleset" still without a timeout; only Unban() lifts it, and it does
# not come back after the next restart.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin permanent "$@"
vg_require_commands nft jq logger journalctl
state=$tmp/state
conf=$tmp/vpopguard.conf
sock=$tmp/io.vpopguard.Manager

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=10min BanTime=infinity
vg_start_journald

start_daemon() {
        vg_start_daemon_n "$daemon" --config="$conf" --state-directory="$state" --socket="$sock"
}

is_permanent() { # SET ADDRESS
        [[ $(vg_nft_element_timeout "$1" "$2") == none ]]
}

addr4=192.0.2.50
addr6=2001:db8::50
start_daemon
for k in 1 2 3; do
        vg_log_vpopmail "vchkpw-pop3: password fail u$k@example.com:$addr4"
        vg_log_vpopmail "vchkpw-pop3: password fail u$k@example.com:${addr6//:/_}"
done
vg_poll 20 vg_nft_set_has banned4 "$addr4"
vg_poll 20 vg_nft_set_has banned6 "$addr6"
vg_assert_eq none "$(vg_nft_element_timeout banned4 "$addr4")" "timeout of $addr4's element"
vg_assert_eq none "$(vg_nft_element_timeout banned6 "$addr6")" "timeout of $addr6's element"
vg_poll 10 vg_journal_has "MESSAGE_ID=$VG_MESSAGE_BAN" "VPOPGUARD_ADDRESS=$addr4"
vg_assert_eq infinity "$(journalctl -q --no-pager -o export "MESSAGE_ID=$VG_MESSAGE_BAN" \
        "VPOPGUARD_ADDRESS=$addr4" | sed -n 's/^VPOPGUARD_BAN_USEC=//p')" "VPOPGUARD_BAN_USEC of the ban event"
journalctl -q --no-pager -o cat "MESSAGE_ID=$VG_MESSAGE_BAN" "VPOPGUARD_ADDRESS=$addr4" |
        grep -qxF "Banned $addr4 permanently (jail vpopmail): 3 failures within 10min." ||
        vg_fail "ban message: $(journalctl -q --no-pager -o cat "MESSAGE_ID=$VG_MESSAGE_BAN")"

# --- SIGKILL, nft flush ruleset, start: back, still without a timeout.
vg_kill9_daemon
nft flush ruleset
start_daemon
vg_assert_eq none "$(vg_nft_element_timeout banned4 "$addr4")" "timeout of $addr4 after SIGKILL and nft flush ruleset"
vg_assert_eq none "$(vg_nft_element_timeout banned6 "$addr6")" "timeout of $addr6 after SIGKILL and nft flush ruleset"

# --- nft flush ruleset under the running daemon: repaired, still without a timeout.
nft flush ruleset
vg_poll 20 is_permanent banned4 "$addr4"
vg_poll 20 is_permanent banned6 "$addr6"

# --- By hand: Ban() without a duration takes BanTime=infinity; --time=infinity is permanent in
# any jail; a permanent ban replaces an element that has a timeout. vpopguardctl bans shows them
# as permanent, never expiring.
nft add element inet vpopguard banned4 "{ 192.0.2.77 timeout 1h }"
"$ctl" --socket="$sock" ban 192.0.2.77 >"$tmp/ban-77.out" 2>&1 || vg_fail "ban 192.0.2.77 failed: $(cat "$tmp/ban-77.out")"
vg_assert_eq none "$(vg_nft_element_timeout banned4 192.0.2.77)" "timeout of 192.0.2.77 after a ban with BanTime=infinity"
"$ctl" --socket="$sock" ban --time=infinity 192.0.2.78 >"$tmp/ban-78.out" 2>&1 || vg_fail "ban --time=infinity failed: $(cat "$tmp/ban-78.out")"
vg_assert_eq "Banned 192.0.2.78 in jail vpopmail, permanently." "$(cat "$tmp/ban-78.out")" "vpopguardctl ban --time=infinity"
vg_assert_eq none "$(vg_nft_element_timeout banned4 192.0.2.78)" "timeout of 192.0.2.78 after ban --time=infinity"
"$ctl" --socket="$sock" --json bans | jq -r '.bans[] | select(.address == "192.0.2.78") | "\(.permanent) \(.count)"' >"$tmp/json-78"
vg_assert_eq "true 1" "$(cat "$tmp/json-78")" "ListBans permanent and count of 192.0.2.78"
"$ctl" --socket="$sock" bans >"$tmp/bans"
grep -Eq '^192\.0\.2\.78 +vpopmail +0 +1 +permanent .* never +manual *$' "$tmp/bans" ||
        vg_fail "vpopguardctl bans does not show 192.0.2.78 as permanent: $(cat "$tmp/bans")"

# --- Unban lifts it, for good.
"$ctl" --socket="$sock" unban "$addr4" >/dev/null || vg_fail "unban $addr4 failed"
vg_assert_eq absent "$(vg_nft_element_timeout banned4 "$addr4")" "$addr4 after unban"
vg_poll 10 vg_journal_has "MESSAGE_ID=$VG_MESSAGE_UNBAN" "VPOPGUARD_ADDRESS=$addr4"
vg_term_daemon
nft flush ruleset
start_daemon
vg_assert_eq absent "$(vg_nft_element_timeout banned4 "$addr4")" "$addr4 after unban and a restart"
vg_assert_eq none "$(vg_nft_element_timeout banned6 "$addr6")" "$addr6 after a restart"
vg_term_daemon
