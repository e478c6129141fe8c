#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An admin deletes one element of an active ban by hand ("nft delete element ...") while the
# daemon runs: the daemon notices (nftables notifications; no ban, reload or restart follows)
# and puts it back, with a timeout, in banned4 and in banned6, again after a second deletion.
# The other elements and ListBans stay as they were.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin element "$@"
vg_require_commands nft jq
conf=$tmp/vpopguard.conf
sock=$tmp/io.vpopguard.Manager
log=$tmp/daemon.log
T=30 # deadline of each wait, in seconds

vg_vpopmail_config "$conf" MaxRetry=3 BanTime=1h
vg_start_journald
vg_start_daemon "$log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock"

in_set() { # SET ADDRESS
        vg_daemon_ok
        vg_nft_set_has "$1" "$2"
}
list_bans() {
        "$ctl" --socket="$sock" --json bans | jq -r '.bans[] | "\(.address) \(.expiresUSec)"' | LC_ALL=C sort
}
# The element of ADDRESS in SET has a timeout of at most BanTime (it is no permanent element).
has_timeout() { # SET ADDRESS
        local t
        t=$(nft -j list set inet vpopguard "$1" |
                jq -r --arg a "$2" '.nftables[] | select(.set) | .set.elem // [] | .[]
                        | select(type == "object" and .elem.val == $a) | .elem.timeout')
        if [[ ! $t =~ ^[0-9]+$ ]] || ((t == 0 || t > 3600)); then
                vg_fail "element $2 of $1 has the timeout '$t'"
        fi
}

vg_log_failures 192.0.2.5
vg_log_failures 192.0.2.6
"$ctl" --socket="$sock" ban 2001:db8::5 >/dev/null || vg_fail "manual ban of 2001:db8::5 failed"
"$ctl" --socket="$sock" ban 2001:db8::6 >/dev/null || vg_fail "manual ban of 2001:db8::6 failed"
vg_poll "$T" in_set banned4 192.0.2.5
vg_poll "$T" in_set banned4 192.0.2.6
vg_poll "$T" in_set banned6 2001:db8::5
vg_poll "$T" in_set banned6 2001:db8::6
bans=$(list_bans)

for round in 1 2; do
        nft delete element inet vpopguard banned4 '{ 192.0.2.5 }' || vg_fail "nft delete element 192.0.2.5 failed"
        vg_poll "$T" in_set banned4 192.0.2.5
        nft delete element inet vpopguard banned6 '{ 2001:db8::5 }' || vg_fail "nft delete element 2001:db8::5 failed"
        vg_poll "$T" in_set banned6 2001:db8::5
        has_timeout banned4 192.0.2.5
        has_timeout banned6 2001:db8::5
        vg_assert_eq "$(printf '%s\n' 192.0.2.5 192.0.2.6)" "$(vg_nft_set_elements banned4)" "banned4, round $round"
        vg_assert_eq "$(printf '%s\n' 2001:db8::5 2001:db8::6)" "$(vg_nft_set_elements banned6)" "banned6, round $round"
        vg_assert_eq "$bans" "$(list_bans)" "ListBans, round $round"
        vg_log "round $round: both elements back"
done

vg_term_daemon
vg_log "all checks passed"
