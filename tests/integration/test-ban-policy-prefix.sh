#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Address rotation (IPv6Prefix=64): three failures from three addresses of one /64 put the /64's
# network address into banned6_64, which the chain matches against the source masked to 64 bits,
# and none of the addresses into banned6; the ban event carries VPOPGUARD_PREFIX=, and
# vpopguardctl bans and failures show prefixes. A /64 that holds an ignored address, or one of
# the host's own, is never banned as a whole: there single addresses count and are banned, and
# the event names the prefix spared. A /64 ban takes the place of a single ban inside it, and a
# ban by hand inside a banned /64 joins it. An unban of any address inside a banned prefix lifts it. A
# prefix ban survives SIGKILL, a flushed set and a restart, "nft flush ruleset", and the upgrade
# from the table of the previous version (prefixes in banned6 with flags interval). With
# CreateTable=no, a missing prefix set is refused at start with the nft commands that make it
# right, and those commands are enough. Packets from inside a banned /64 are dropped.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin prefix "$@"
vg_require_commands nft jq logger journalctl ip nsenter python3 unshare
state=$tmp/state
conf=$tmp/vpopguard.conf
sock=$tmp/io.vpopguard.Manager
T=30

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=10min BanTime=1h IPv6Prefix=64 IgnoreAddress=2001:db8:5:5::1
# One of the host's own addresses, in a /64 of its own.
ip -6 addr add 2001:db8:4:4::1/128 dev lo || vg_fail "cannot add a local address"
vg_start_journald

start_daemon() {
        vg_start_daemon_n "$daemon" --config="$conf" --state-directory="$state" --socket="$sock"
}

# One failed login from ADDRESS, as vchkpw logs it: IPv6 text of up to 30 characters with '_'
# for every ':'.
fail() {
        local a=$1
        ((${#a} > 30)) || a=${a//:/_}
        vg_log_vpopmail "vchkpw-pop3: password fail joe@example.com:$a"
}
banned6() { vg_nft_set_elements banned6; }
banned6_64() { vg_nft_set_elements banned6_64; }
lines() { printf '%s\n' "$@"; }
# The rule that makes an element of banned6_64 a /64 for packets: the source masked to 64 bits.
has_masked_rule() {
        local chain
        chain=$(nft list chain "$VG_NFT_FAMILY" "$VG_NFT_TABLE" input 2>/dev/null) || return 1
        grep -qxF $'\t\tip6 saddr & ffff:ffff:ffff:ffff:: == @banned6_64 drop' <<<"$chain"
}
interval_sets() { nft list table "$VG_NFT_FAMILY" "$VG_NFT_TABLE" | grep -c interval || true; }
# FIELD of the last event with MESSAGE_ID and VPOPGUARD_ADDRESS=ADDRESS.
event_field() { # MESSAGE_ID ADDRESS FIELD
        journalctl -q --no-pager -o json "MESSAGE_ID=$1" "VPOPGUARD_ADDRESS=$2" | jq -r --arg f "$3" '.[$f]' | tail -n 1
}
has_event() { vg_journal_has "MESSAGE_ID=$1" "VPOPGUARD_ADDRESS=$2"; }

start_daemon

# --- 1. Three failures from three addresses of one /64: one /64 element, none of the addresses.
fail 2001:db8:1:2::a
fail 2001:db8:1:2::b
fail 2001:db8:1:2:ffff:ffff:ffff:fffc
vg_poll "$T" vg_nft_set_has banned6_64 2001:db8:1:2::
vg_assert_eq 2001:db8:1:2:: "$(banned6_64)" "banned6_64 after three failures from one /64"
vg_assert_eq "" "$(banned6)" "banned6 after three failures from one /64"
has_masked_rule || vg_fail "no masked rule for banned6_64: $(nft list chain "$VG_NFT_FAMILY" "$VG_NFT_TABLE" input)"
vg_assert_eq 0 "$(interval_sets)" "interval sets in the table"

# Packets: a peer namespace behind a veth pair sends UDP from an address of the banned /64 that
# never failed (2001:db8:1:2::77) and from one of another /64; a table of the test counts, after
# vpopguard's chain, what got through from each. Each round sends the banned one first, so once
# the other has come through three times, the banned one had every chance to.
peer_ns_ready() { [[ $(readlink "/proc/$peer/ns/net") != "$(readlink /proc/self/ns/net)" ]]; }
in_peer() { nsenter --net="/proc/$peer/ns/net" "$@"; }
send_from() {
        in_peer python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
s.sendto(b"x", ("2001:db8:ff::1", 9))' "$1"
}
received_from() { # ADDRESS: packets from ADDRESS past vpopguard's chain
        nft -j list chain inet vgcount input | jq --arg a "$1" '[.nftables[] | .rule? // empty
                | select(.expr[0].match.right == $a) | .expr[1].counter.packets] | first'
}
through_three_times() {
        send_from 2001:db8:1:2::77
        send_from 2001:db8:1:3::77
        (($(received_from 2001:db8:1:3::77) >= 3))
}
vg_spawn "$tmp/peer.log" unshare -n sleep 1000000
peer=$VG_LAST_PID
vg_poll 10 peer_ns_ready
ip link add vg0 type veth peer name vg1 netns "$peer"
ip link set vg0 up
ip -6 addr add 2001:db8:ff::1/64 dev vg0 nodad
in_peer ip link set vg1 up
in_peer ip -6 addr add 2001:db8:ff::2/64 dev vg1 nodad
in_peer ip -6 addr add 2001:db8:1:2::77/128 dev vg1 nodad
in_peer ip -6 addr add 2001:db8:1:3::77/128 dev vg1 nodad
nft -f - <<END
table inet vgcount {
        chain input {
                type filter hook input priority 0; policy accept;
                ip6 saddr 2001:db8:1:2::77 counter
                ip6 saddr 2001:db8:1:3::77 counter
        }
}
END
vg_poll "$T" through_three_times
vg_assert_eq 0 "$(received_from 2001:db8:1:2::77)" "packets from inside the banned /64 past vpopguard's chain"
nft delete table inet vgcount
vg_poll 10 has_event "$VG_MESSAGE_BAN" 2001:db8:1:2::/64
vg_assert_eq 2001:db8:1:2::/64 "$(event_field "$VG_MESSAGE_BAN" 2001:db8:1:2::/64 VPOPGUARD_PREFIX)" \
        "VPOPGUARD_PREFIX of the /64 ban"
vg_assert_eq null "$(event_field "$VG_MESSAGE_BAN" 2001:db8:1:2::/64 VPOPGUARD_PREFIX_NOT_BANNED)" \
        "VPOPGUARD_PREFIX_NOT_BANNED of the /64 ban"
"$ctl" --socket="$sock" --json bans | jq -r '.bans[].address' >"$tmp/bans.json"
vg_assert_eq 2001:db8:1:2::/64 "$(cat "$tmp/bans.json")" "ListBans addresses"
"$ctl" --socket="$sock" bans >"$tmp/bans"
grep -Eq '^2001:db8:1:2::/64 +vpopmail ' "$tmp/bans" || vg_fail "vpopguardctl bans does not show the /64: $(cat "$tmp/bans")"

# Failures are counted per /64 and shown as such; an address finds the prefix it counts under.
fail 2001:db8:7:7::1
fail 2001:db8:7:7::2
failures_of() { # ADDRESS-FILTER: "ADDRESS COUNT" of each failure window
        "$ctl" --socket="$sock" --json failures ${1:+"$1"} | jq -r '.failures[] | "\(.address) \(.count)"'
}
two_failures() { [[ $(failures_of 2001:db8:7:7::99) == "2001:db8:7:7::/64 2" ]]; }
vg_poll "$T" two_failures
"$ctl" --socket="$sock" failures >"$tmp/failures"
grep -Eq '^2001:db8:7:7::/64 +vpopmail +2 ' "$tmp/failures" ||
        vg_fail "vpopguardctl failures does not show the /64 with 2 failures: $(cat "$tmp/failures")"

# --- 2. A /64 that holds an ignored address: its addresses count one by one. Three addresses
# fail once each (no ban), then one three times (its ban alone). The journal is judged in
# order, so once that ban is there the single failures have been judged too.
fail 2001:db8:5:5::b
fail 2001:db8:5:5::c
fail 2001:db8:5:5::d
fail 2001:db8:5:5::a
fail 2001:db8:5:5::a
fail 2001:db8:5:5::a
vg_poll "$T" vg_nft_set_has banned6 2001:db8:5:5::a
vg_assert_eq 2001:db8:5:5::a "$(banned6)" "banned6 after failures in a /64 that holds an ignored address"
vg_assert_eq 2001:db8:1:2:: "$(banned6_64)" "banned6_64 after failures in a /64 that holds an ignored address"
vg_poll 10 has_event "$VG_MESSAGE_BAN" 2001:db8:5:5::a
vg_assert_eq 2001:db8:5:5::a/128 "$(event_field "$VG_MESSAGE_BAN" 2001:db8:5:5::a VPOPGUARD_PREFIX)" \
        "VPOPGUARD_PREFIX of the single-address ban"
vg_assert_eq 2001:db8:5:5::/64 "$(event_field "$VG_MESSAGE_BAN" 2001:db8:5:5::a VPOPGUARD_PREFIX_NOT_BANNED)" \
        "VPOPGUARD_PREFIX_NOT_BANNED of the single-address ban"
case $(event_field "$VG_MESSAGE_BAN" 2001:db8:5:5::a MESSAGE) in
*"Not its /64"*) ;;
*) vg_fail "the ban message does not say the /64 was spared: $(event_field "$VG_MESSAGE_BAN" 2001:db8:5:5::a MESSAGE)" ;;
esac

# The same where the /64 holds one of the host's own addresses.
fail 2001:db8:4:4::b
fail 2001:db8:4:4::a
fail 2001:db8:4:4::a
fail 2001:db8:4:4::a
vg_poll "$T" vg_nft_set_has banned6 2001:db8:4:4::a
vg_assert_eq "$(lines 2001:db8:4:4::a 2001:db8:5:5::a)" "$(banned6)" \
        "banned6 after failures in a /64 that holds a local address"
vg_assert_eq 2001:db8:1:2:: "$(banned6_64)" "banned6_64 after failures in a /64 that holds a local address"

# --- 2b. A /64 ban takes the place of a ban of one address in it (banned by hand here): one
# element, the single one lifted with the reason "prefix"; a later ban by hand of an address
# inside the /64 joins its ban.
"$ctl" --socket="$sock" ban 2001:db8:6:6::5 >"$tmp/ban-5.out" 2>&1 ||
        vg_fail "ban by hand of 2001:db8:6:6::5 failed: $(cat "$tmp/ban-5.out"; tail -n 5 "$VG_DAEMON_LOG")"
vg_poll "$T" vg_nft_set_has banned6 2001:db8:6:6::5
fail 2001:db8:6:6::a
fail 2001:db8:6:6::b
fail 2001:db8:6:6::c
vg_poll "$T" vg_nft_set_has banned6_64 2001:db8:6:6::
vg_assert_eq "$(lines 2001:db8:4:4::a 2001:db8:5:5::a)" "$(banned6)" \
        "banned6 after the /64 of an address banned by hand was banned"
vg_assert_eq "$(lines 2001:db8:1:2:: 2001:db8:6:6::)" "$(banned6_64)" \
        "banned6_64 after the /64 of an address banned by hand was banned"
vg_poll 10 has_event "$VG_MESSAGE_UNBAN" 2001:db8:6:6::5
vg_assert_eq prefix "$(event_field "$VG_MESSAGE_UNBAN" 2001:db8:6:6::5 VPOPGUARD_UNBAN_REASON)" \
        "unban reason of the address the /64 ban took the place of"
"$ctl" --socket="$sock" ban 2001:db8:6:6::77 >"$tmp/ban-77.out" 2>&1 ||
        vg_fail "ban by hand inside the /64 failed: $(cat "$tmp/ban-77.out"; tail -n 5 "$VG_DAEMON_LOG")"
case $(cat "$tmp/ban-77.out") in
"Banned 2001:db8:6:6::/64 in jail vpopmail,"*) ;;
*) vg_fail "a ban by hand inside a banned /64 did not join it: $(cat "$tmp/ban-77.out")" ;;
esac
vg_assert_eq "$(lines 2001:db8:4:4::a 2001:db8:5:5::a)" "$(banned6)" "banned6 after a ban by hand inside a banned /64"
vg_assert_eq "$(lines 2001:db8:1:2:: 2001:db8:6:6::)" "$(banned6_64)" "banned6_64 after a ban by hand inside a banned /64"
"$ctl" --socket="$sock" unban 2001:db8:6:6::1 >/dev/null || vg_fail "unban inside 2001:db8:6:6::/64 failed"

# --- 3. An unban of any address inside a banned prefix lifts the prefix.
"$ctl" --socket="$sock" unban 2001:db8:1:2::99 >/dev/null || vg_fail "unban of an address inside the /64 failed"
vg_assert_eq "$(lines 2001:db8:4:4::a 2001:db8:5:5::a)" "$(banned6)" "banned6 after the unbans"
vg_assert_eq "" "$(banned6_64)" "banned6_64 after the unbans"
vg_poll 10 has_event "$VG_MESSAGE_UNBAN" 2001:db8:1:2::/64
vg_assert_eq manual "$(event_field "$VG_MESSAGE_UNBAN" 2001:db8:1:2::/64 VPOPGUARD_UNBAN_REASON)" "unban reason"

# --- 4. A prefix ban survives SIGKILL, a flushed set and a restart.
fail 2001:db8:3:3::1
fail 2001:db8:3:3::2
fail 2001:db8:3:3::3
vg_poll "$T" vg_nft_set_has banned6_64 2001:db8:3:3::
saved() { grep -q '^ban vpopmail 2001:db8:3:3::/64 ' "$state/state" 2>/dev/null; }
vg_poll "$T" saved
vg_kill9_daemon
nft flush set "$VG_NFT_FAMILY" "$VG_NFT_TABLE" banned6_64
start_daemon
vg_poll "$T" vg_nft_set_has banned6_64 2001:db8:3:3::
vg_assert_eq 2001:db8:3:3:: "$(banned6_64)" "banned6_64 after the restart"
vg_assert_eq "$(lines 2001:db8:4:4::a 2001:db8:5:5::a)" "$(banned6)" "banned6 after the restart"
"$ctl" --socket="$sock" bans >"$tmp/bans"
grep -Eq '^2001:db8:3:3::/64 +vpopmail ' "$tmp/bans" ||
        vg_fail "vpopguardctl bans does not show the /64 after the restart: $(cat "$tmp/bans")"

# A flushed ruleset is put back, the prefix set and its rule too.
nft flush ruleset
vg_poll "$T" vg_nft_set_has banned6_64 2001:db8:3:3::
vg_poll "$T" vg_nft_set_has banned6 2001:db8:5:5::a
has_masked_rule || vg_fail "no masked rule after nft flush ruleset"
vg_term_daemon

# --- 4b. The upgrade: the previous version kept prefixes in banned6, with flags interval. The
# table is rebuilt without the flag, and the saved bans go where they belong now.
nft flush ruleset
nft -f - <<END
table $VG_NFT_FAMILY $VG_NFT_TABLE {
        set banned4 { type ipv4_addr; flags timeout; }
        set banned6 { type ipv6_addr; flags interval,timeout; }
        chain input {
                type filter hook input priority filter - 10; policy accept;
                ip saddr @banned4 drop
                ip6 saddr @banned6 drop
        }
}
add element $VG_NFT_FAMILY $VG_NFT_TABLE banned6 { 2001:db8:3:3::/64 timeout 1h, 2001:db8:4:4::a timeout 1h }
END
start_daemon
vg_poll "$T" vg_nft_set_has banned6_64 2001:db8:3:3::
vg_poll "$T" vg_nft_set_has banned6 2001:db8:5:5::a
vg_assert_eq 2001:db8:3:3:: "$(banned6_64)" "banned6_64 after the upgrade"
vg_assert_eq "$(lines 2001:db8:4:4::a 2001:db8:5:5::a)" "$(banned6)" "banned6 after the upgrade"
vg_assert_eq 0 "$(interval_sets)" "interval sets in the table after the upgrade"
has_masked_rule || vg_fail "no masked rule after the upgrade"
vg_term_daemon

# --- 4c. IPv6Prefix= changes to 48: the saved /64 ban keeps its set and rule while it lasts,
# next to the set and rule for /48.
sed -i 's/^IPv6Prefix=64$/IPv6Prefix=48/' "$conf"
start_daemon
vg_poll "$T" vg_nft_set_has banned6_64 2001:db8:3:3::
has_masked_rule || vg_fail "no masked rule for the saved /64 ban after IPv6Prefix=48"
vg_assert_eq "" "$(vg_nft_set_elements banned6_48)" "banned6_48 after IPv6Prefix=48"
grep -qF 'ip6 saddr & ffff:ffff:ffff:: == @banned6_48 drop' <<<"$(nft list chain "$VG_NFT_FAMILY" "$VG_NFT_TABLE" input)" ||
        vg_fail "no masked rule for banned6_48"
vg_term_daemon

# --- 5. CreateTable=no and no prefix set: refused at start, with the commands that make it
# right; run as given, they are enough.
nft flush ruleset
nft -f - <<END
table inet vpgno {
        set banned4 { type ipv4_addr; flags timeout; }
        set banned6 { type ipv6_addr; flags timeout; }
        chain input {
                type filter hook input priority filter; policy accept;
                ip saddr @banned4 drop
                ip6 saddr @banned6 drop
        }
}
END
conf_no=$tmp/no-create.conf
mkdir -p "$conf_no.d"
cp "$conf.d/10-vpopmail.conf" "$conf_no.d/"
printf '[Firewall]\nTable=vpgno\nCreateTable=no\n[Defaults]\nIPv6Prefix=64\n' >"$conf_no"
rc=0
vg_timeout 20 "$daemon" --config="$conf_no" --state-directory="$tmp/state-no" --socket="$tmp/no.sock" \
        >"$tmp/no-prefix-set.log" 2>&1 </dev/null || rc=$?
((rc != 0 && rc != 124)) || vg_fail "vpopguardd did not refuse the missing prefix set (status $rc): $(cat "$tmp/no-prefix-set.log")"
add_set="nft add set inet vpgno banned6_64 '{ type ipv6_addr; flags timeout; }'"
add_rule="nft add rule inet vpgno input ip6 saddr and ffff:ffff:ffff:ffff:: @banned6_64 drop"
grep -qF "banned6_64 does not exist (for bans of /64 prefixes, IPv6Prefix=64)" "$tmp/no-prefix-set.log" ||
        vg_fail "the error does not say which set is missing: $(cat "$tmp/no-prefix-set.log")"
grep -qF "$add_set; $add_rule" "$tmp/no-prefix-set.log" ||
        vg_fail "the error does not give the nft commands: $(cat "$tmp/no-prefix-set.log")"
vg_assert_eq 0 "$(nft list table inet vpgno | grep -c banned6_64 || true)" "banned6_64 in the table CreateTable=no owns"

eval "$add_set"
eval "$add_rule"
vg_start_daemon "$tmp/daemon.no.log" "$daemon" --config="$conf_no" --state-directory="$tmp/state-no" \
        --socket="$tmp/no.sock"
vg_term_daemon
