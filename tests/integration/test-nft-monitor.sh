#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Someone else changes nftables under the running daemon: a set flushed, the table deleted,
# the whole ruleset flushed, the table recreated with a set of the wrong type. The daemon
# notices at once (netlink notifications), without waiting for the next ban, puts every active
# ban back, and says what it cannot honour. Its own changes (an unban) trigger no repair.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
vg_begin m "$@"
vg_start_journald
conf=$tmp/vpopguard.conf
vg_vpopmail_config "$conf"
sock=$tmp/sock

vg_start_daemon "$tmp/d.log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock" \
        --log-level=debug
"$ctl" --socket="$sock" ban 192.0.2.7 >/dev/null
"$ctl" --socket="$sock" ban 2001:db8::9 >/dev/null
vg_log_failures 192.0.2.8
vg_poll 20 vg_nft_set_has banned4 192.0.2.8

repairs() { grep -c 'Another process changed nftables' "$tmp/d.log" || true; }
both_back() { vg_nft_set_has banned4 192.0.2.7 && vg_nft_set_has banned4 192.0.2.8 && vg_nft_set_has banned6 2001:db8::9; }

nft flush set inet vpopguard banned4
vg_poll 20 both_back
vg_log "restored after: nft flush set"

nft delete table inet vpopguard
vg_poll 20 both_back
vg_log "restored after: nft delete table"

nft flush ruleset
vg_poll 20 both_back
vg_log "restored after: nft flush ruleset"
# The chain is back too, with exactly its two rules.
vg_assert_eq 2 "$(nft list chain inet vpopguard input | grep -c 'saddr @banned')" "drop rules in the chain"

# Our own deletions are not foreign changes: an unban triggers no repair (and no loop). Repairs
# are debounced, so a wrong one would merge with the sentinel's; the daemon's debug line per
# foreign transaction is counted instead: the notifications arrive in order, so once the
# sentinel's line is there, the unban's would be too.
foreign() { grep -c 'a transaction of another process deleted something' "$tmp/d.log" || true; }
vg_poll 20 eval '[[ $(repairs) -ge 3 ]]'
before=$(foreign)
"$ctl" --socket="$sock" unban 192.0.2.7 >/dev/null
vg_nft_set_has banned4 192.0.2.7 && vg_fail "192.0.2.7 still in the set after the unban"
nft flush set inet vpopguard banned6 # a foreign change as a sentinel
vg_poll 20 vg_nft_set_has banned6 2001:db8::9
vg_assert_eq $((before + 1)) "$(foreign)" "foreign transactions seen (the unban must not be one)"
vg_nft_set_has banned4 192.0.2.7 && vg_fail "the repair put back a ban lifted by hand"

# The table recreated, atomically, with banned4 of the wrong type: reported, naming the set.
nft -f - <<'NFT'
delete table inet vpopguard
add table inet vpopguard
add set inet vpopguard banned4 { type ipv6_addr; flags timeout; }
NFT
wrong_type_reported() { grep -i "failed to set up the nftables sets" "$tmp/d.log" | grep -q banned4; }
vg_poll 20 wrong_type_reported
vg_log "wrong set type reported: $(grep -i 'failed to set up the nftables sets' "$tmp/d.log" | tail -n 1)"

# The daemon is still alive and answering.
"$ctl" --socket="$sock" status >/dev/null || vg_fail "the daemon stopped answering"
vg_log "ok"
