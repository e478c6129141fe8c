#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The fleet of test-fleet (three mail hosts and a collector, each in network and mount namespaces
# of its own with its own journald, vpopguardd and nft set), wired the other way round: each node
# serves its journal with systemd-journal-gatewayd over HTTPS, and the readers pull it with
# systemd-journal-remote --getter=vpopguard-fleet-pull, which checks the server's certificate
# against the fleet's CA and the peer's name, as vpopguard-fleet-pull@.service does:
#
#   collector: journal-remote <-getter- hostN's gatewayd (all of it) -> remote-hostN.journal
#   hostN:     journal-remote <-getter- the collector's gatewayd (ban events) -> remote-collector.journal
#
# Asserted: an attacker spread over the hosts is banned on every host; a host's own ban reaches
# the others once; an impostor that answers for a listed name (host4) with a certificate of
# another name from the fleet's CA, or of that name from a CA the system trusts, bans nothing and
# lands in no node's files (with the fleet's certificate for host4, the same ban is applied); a
# ban event by a local user of a listed host bans nothing; a manual unban lifts a ban everywhere;
# the collector down and back (gatewayd, pulls and vpopguardd) pulls every entry once and applies
# every ban once, and the hosts' copies of the collector hold its ban events only; a host cut
# off for longer than a ban gets only the bans still running, with their remaining time. The
# vpopguardds end with exit status 0.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin fleet-pull "$@"
# shellcheck source=tests/integration/fleet-lib.sh
. "$(dirname "$0")/fleet-lib.sh"

fleet_up --pull MaxRetry=5 BanTime=1h
NODES=(collector "${HOSTS[@]}")

# no_duplicates NODE PEER: no entry of PEER is twice in NODE's copy (same boot, monotonic and
# realtime stamps and message).
no_duplicates() {
        local dups
        dups=$(on "$1" journalctl -q -o json --file="/var/log/journal/remote/remote-$2.journal" |
                jq -c -s '[.[] | [._BOOT_ID, .__MONOTONIC_TIMESTAMP, .__REALTIME_TIMESTAMP, (.MESSAGE | tostring)]] |
                        group_by(.) | .[] | select(length > 1) | .[0]')
        vg_assert_eq "" "$dups" "entries of $2 twice in $1's copy"
}

# --- 1. Two failures on each of three hosts (MaxRetry=5): banned on every host, by the collector.
check_spread 192.0.2.50

# --- 2. A host's own ban reaches the others once, and does not come back to it.
check_own_ban 192.0.2.60 192.0.2.61

# --- 3. An impostor: every node lists host4 and pulls it, and host4 resolves to the intruder,
# whose journal holds a ban event as vpopguardd would log it.
for node in "${NODES[@]}"; do
        printf '\nPeer=host4\n' >>"$tmp/$node/vpopguard.conf"
        on "$node" "$ctl" reload >/dev/null || vg_fail "reload of $node failed"
        pull_up "$node" host4
done
forge intruder 0 192.0.2.70
# pulls_refused PATTERN: every node's pull of host4 logged the curl error PATTERN; fails the test
# at once if a node's copy of host4 holds anything.
pulls_refused() {
        local node n
        for node in "${NODES[@]}"; do
                n=$(copy_entries "$node" host4)
                ((n == 0)) || vg_fail "$node pulled $n entries from the impostor"
                grep -q "$1" "$tmp/$node/pull-host4.log" || return 1
        done
}
# (a) The intruder's own certificate from the fleet's CA: valid, but for another name.
gateway_up intruder intruder
vg_poll $T pulls_refused "no alternative certificate subject name matches target host name 'host4'"
vg_kill "${GATEWAY[intruder]}"
# (b) A certificate for host4 from a CA the system trusts (/etc/ssl/certs), not the fleet's.
make_cert host4-system system-ca "DNS:host4,IP:${IP[intruder]}"
gateway_up intruder host4-system
vg_poll $T pulls_refused "unable to get local issuer certificate"
banned_nowhere 192.0.2.70 || vg_fail "the impostor's ban of 192.0.2.70 was applied"
for node in "${NODES[@]}"; do
        vg_assert_eq 0 "$(copy_entries "$node" host4)" "entries in $node's copy of the impostor"
        vg_assert_eq "" "$(on "$node" journalctl -q -D /var/log/journal/remote VPOPGUARD_ADDRESS=192.0.2.70)" \
                "the impostor's ban in $node's remote files"
done
# (c) The same journal served with the fleet's certificate for host4: what kept the ban out was
# the certificate alone.
vg_kill "${GATEWAY[intruder]}"
make_cert host4 ca "DNS:host4,IP:${IP[intruder]}"
gateway_up intruder host4
vg_poll $T banned_everywhere 192.0.2.70
for node in "${NODES[@]}"; do
        vg_kill "${PULL[$node<host4]}"
done
vg_kill "${GATEWAY[intruder]}"

# --- 4. A ban event logged by a local user (UID 1000) of a listed host.
forge host1 1000 192.0.2.71
# A barrier: host1's next ban came after the forged event in host1's journal.
fail_on host1 192.0.2.63 5
vg_poll $T banned_everywhere 192.0.2.63
banned_nowhere 192.0.2.71 || vg_fail "the ban of 192.0.2.71 forged by UID 1000 was applied"
vg_assert_eq 1 "$(on collector "$ctl" --json status | jq .fleetUntrustedEntries)" "untrusted entries on the collector"

# --- 5. A manual unban on one host lifts the ban everywhere.
on host3 "$ctl" unban 192.0.2.60 >/dev/null || vg_fail "unban on host3 failed"
vg_poll $T banned_nowhere 192.0.2.60

# --- 6. The collector down and back: its gatewayd, its pulls and its vpopguardd stop while the
# hosts log a new spread attack and host1 bans on its own. Started again, the collector's pulls
# resume after their copies' last entries, and the hosts' pulls (started again every time they
# end, as Restart=always does) after theirs.
vg_kill "${GATEWAY[collector]}"
for node in "${HOSTS[@]}"; do
        vg_kill "${PULL[collector<$node]}"
done
vg_stop_daemon "${GUARD[collector]}" "$tmp/collector/daemon.log" $T
# A host bans on its own meanwhile; the others get that ban once the collector is back.
attack_meanwhile 192.0.2.80 192.0.2.81
for node in "${HOSTS[@]}"; do
        pull_up collector "$node"
done
guard_up collector
gateway_up collector
vg_poll $T banned_everywhere 192.0.2.80
vg_poll $T banned_everywhere 192.0.2.81
# A barrier behind everything the hosts logged before.
fail_on host3 192.0.2.64 5
vg_poll $T banned_everywhere 192.0.2.64
# host2's pull stopped and started again while nothing follows the last entry it has, and then
# a ban by hand on the collector: host2 gets that ban, and the last entry it had once.
connected() { # NODE PEER: PEER's gatewayd has a connection from NODE
        on "$2" ss -Htn state established "( sport = :19531 and dst ${IP[$1]} )" | grep -q .
}
link_down collector host2
vg_poll $T eval '! connected host2 collector'
link_up collector host2
vg_poll $T connected host2 collector
on collector "$ctl" ban 192.0.2.65 >/dev/null || vg_fail "ban on the collector failed"
vg_poll $T banned_on host2 192.0.2.65
# Every ban applied once on every node (.60, lifted by hand since, did not come back), and every
# entry once in every copy. On host1 .81 too: catching up, the collector counts host1's five
# failures of it before it reads host1's ban, and its own ban, judged at the failures' time, ends
# when host1's does, so host1 takes it for the duplicate it is.
for node in "${NODES[@]}"; do
        for address in 192.0.2.60 192.0.2.61 192.0.2.80 192.0.2.81; do
                vg_assert_eq 1 "$(ban_events "$node" "$address")" "ban events of $address on $node after the restart"
        done
done
banned_nowhere 192.0.2.60 || vg_fail "192.0.2.60, unbanned before the restart, is banned again"
for node in "${HOSTS[@]}"; do
        for address in 192.0.2.60 192.0.2.61 192.0.2.80 192.0.2.81; do
                vg_assert_eq 1 "$(copy_entries "$node" collector MESSAGE_ID=$VG_MESSAGE_BAN VPOPGUARD_ADDRESS=$address)" \
                        "the collector's ban events of $address in $node's copy"
        done
        vg_assert_eq 2 "$(copy_entries collector "$node" "MESSAGE=vchkpw-pop3: password fail joe@example.com:192.0.2.80")" \
                "$node's failures of 192.0.2.80 in the collector's copy"
        no_duplicates collector "$node"
        no_duplicates "$node" collector
        # --bans-only: nothing of the collector's journal but its ban and unban events.
        others=$(($(copy_entries "$node" collector) -
                $(copy_entries "$node" collector MESSAGE_ID=$VG_MESSAGE_BAN MESSAGE_ID=$VG_MESSAGE_UNBAN)))
        vg_assert_eq 0 "$others" "entries in $node's copy of the collector that are not ban or unban events"
done

# --- 7. host3 cut off for longer than a ban gets only the bans still running, with their
# remaining time; the expired one is in its copy all the same.
check_cut_off 192.0.2.90 192.0.2.91
vg_assert_eq 1 "$(copy_entries host3 collector MESSAGE_ID=$VG_MESSAGE_BAN VPOPGUARD_ADDRESS=192.0.2.90)" \
        "the expired ban's event in host3's copy"

# Every vpopguardd ends cleanly (under the sanitizers: without a leak or an error).
for node in "${NODES[@]}"; do
        vg_stop_daemon "${GUARD[$node]}" "$tmp/$node/daemon.log" $T
done
vg_log "fleet-pull: all checks passed"
