#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A fleet of three mail hosts and a collector, each in network and mount namespaces of its own
# (one bridge between them) with its own journald, vpopguardd and nft set, wired with systemd's
# own journal transport over HTTPS with certificates made here:
#
#   hostN --systemd-journal-upload--> collector's systemd-journal-remote (remote-10.77.0.1N.journal)
#   collector --systemd-journal-upload--> hostN's systemd-journal-remote (remote-10.77.0.1.journal)
#
# The collector's vpopguardd counts failures across the hosts' journals (CountFailures=yes) and
# applies, and relays (Relay=yes), the hosts' own bans; the hosts apply the collector's. An
# unlisted sender (10.77.0.99) uploads too. Asserted: an attacker spread over the hosts is banned
# on every host; a host's own ban reaches the others, and does not come back to it; forged ban
# events (an unlisted sender; a local user on a listed host) ban nothing; a manual unban lifts a
# ban everywhere; the collector down and back (journal-remote and vpopguardd restarted) loses
# nothing and applies nothing twice, and the hosts ban on their own meanwhile; a host cut off for
# longer than a ban gets only the bans still running, with their remaining time; a peer with a
# clock ahead, a duplicated entry and an unban stamped before its ban (a reload adds that peer).
# The vpopguardds end with exit status 0.
#
# Debian 12's journal-remote cannot check client certificates (built without --trust): it names
# a sender's file after the connection's source address, so the peers are listed by address.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin fleet "$@"
# shellcheck source=tests/integration/fleet-lib.sh
. "$(dirname "$0")/fleet-lib.sh"

# --- The fleet.
fleet_up MaxRetry=5 BanTime=1h
"$daemon" --config="$tmp/collector/vpopguard.conf" --test-config >"$tmp/test-config.out" 2>&1 ||
        vg_fail "--test-config failed: $(cat "$tmp/test-config.out")"
grep -qxF "Peer=${IP[host2]}" "$tmp/test-config.out" || vg_fail "--test-config lacks the peers: $(cat "$tmp/test-config.out")"

# --- 1. Two failures on each of three hosts (MaxRetry=5): banned on every host, by the collector.
check_spread 192.0.2.50

# --- 2. A host's own ban reaches the others, and does not come back to it.
check_own_ban 192.0.2.60 192.0.2.61

# --- 3. Forged ban events: by an unlisted sender (as root), and by a local user of host1.
upload_up intruder collector
upload_up intruder host1
forge intruder 0 192.0.2.70
vg_poll $T has_file collector intruder
vg_poll $T has_file host1 intruder
forge host1 1000 192.0.2.71
# Barriers: host1's next ban came after the forged event in host1's journal; the intruder's
# second forged event (a ban of host1's own making would not do: the intruder is no peer) is
# in both files after the first.
fail_on host1 192.0.2.62 5
vg_poll $T banned_everywhere 192.0.2.62
forge intruder 0 192.0.2.72
intruder_second() {
        on "$1" journalctl -q --file="/var/log/journal/remote/remote-${IP[intruder]}.journal" \
                VPOPGUARD_ADDRESS=192.0.2.72 | grep -q .
}
vg_poll $T intruder_second collector
vg_poll $T intruder_second host1
# The collector reads again every second: one more barrier of its own making.
on collector "$ctl" ban 192.0.2.63 >/dev/null || vg_fail "ban on the collector failed"
vg_poll $T banned_everywhere 192.0.2.63
for address in 192.0.2.70 192.0.2.71 192.0.2.72; do
        banned_nowhere "$address" || vg_fail "the forged ban of $address was applied"
done
vg_assert_eq 1 "$(on collector "$ctl" --json status | jq .fleetUntrustedEntries)" "untrusted entries on the collector"
on collector "$ctl" metrics | grep -qx 'vpopguard_fleet_untrusted_entries_total 1' ||
        vg_fail "metrics lack the untrusted entry: $(on collector "$ctl" metrics)"
on host1 "$ctl" metrics | grep -qx 'vpopguard_fleet_bans_applied_total{jail="vpopmail"} 4' ||
        vg_fail "host1's metrics lack its 4 fleet bans: $(on host1 "$ctl" metrics | grep fleet)"

# --- 4. A manual unban on one host lifts the ban everywhere (a host's ban, and the collector's).
on host3 "$ctl" unban 192.0.2.60 >/dev/null || vg_fail "unban on host3 failed"
on host1 "$ctl" unban 192.0.2.50 >/dev/null || vg_fail "unban on host1 failed"
vg_poll $T banned_nowhere 192.0.2.60
vg_poll $T banned_nowhere 192.0.2.50

# --- 5. The collector down and back: its journal-remote and vpopguardd stop while the hosts log
# a new spread attack; the hosts' uploads are started again (as Restart= would) and resume after
# the cursors they saved; the collector's vpopguardd resumes after its saved peer positions.
vg_kill "${REMOTE[collector]}"
vg_stop_daemon "${GUARD[collector]}" "$tmp/collector/daemon.log" $T
# A host bans on its own meanwhile; the others get that ban once the collector is back.
attack_meanwhile 192.0.2.80 192.0.2.81
for node in "${HOSTS[@]}"; do
        vg_kill "${UPLOAD[$node>collector]}"
        grep -q '^LAST_CURSOR=' "$tmp/$node/upload-collector.state" || vg_fail "$node's upload saved no cursor"
done
remote_up collector
guard_up collector
for node in "${HOSTS[@]}"; do
        upload_up "$node" collector
done
vg_poll $T banned_everywhere 192.0.2.80
vg_poll $T banned_everywhere 192.0.2.81
# A barrier behind everything the hosts sent before.
fail_on host3 192.0.2.64 5
vg_poll $T banned_everywhere 192.0.2.64
# Nothing was applied twice: .60, lifted by hand since, did not come back on the collector. (A
# duplicated entry, should an upload send one again, would be skipped as one: we hold its ban.)
for node in collector "${HOSTS[@]}"; do
        vg_assert_eq 1 "$(ban_events "$node" 192.0.2.60)" "ban events of .60 on $node after the restart"
        vg_assert_eq 1 "$(ban_events "$node" 192.0.2.61)" "ban events of .61 on $node after the restart"
        # The spread attack of the outage, and host1's own ban (the collector counted its
        # failures too, judged at their time: the same ban, not a longer one).
        vg_assert_eq 1 "$(ban_events "$node" 192.0.2.80)" "ban events of .80 on $node after the restart"
        vg_assert_eq 1 "$(ban_events "$node" 192.0.2.81)" "ban events of .81 on $node after the restart"
done
banned_nowhere 192.0.2.60 || vg_fail "192.0.2.60, unbanned before the restart, is banned again"

# --- 6. host3 cut off for longer than a ban gets only the bans still running, with their
# remaining time.
check_cut_off 192.0.2.90 192.0.2.91

# --- 7. A peer whose clock is 10 minutes ahead, that sends an entry twice and an unban stamped
# before its ban (its clock stepped back): its file made from export format, as journal-remote
# writes one, and the peer added by a reload. Each entry counts once, in the file's order, and
# no ban lasts longer than it had left.
printf '\nPeer=%s\n' "$NET.98" >>"$tmp/host1/vpopguard.conf"
on host1 "$ctl" reload >/dev/null || vg_fail "reload of host1 failed"
event() { # ID REALTIME ADDRESS EXPIRES [FIELD...]
        local f
        printf '__REALTIME_TIMESTAMP=%s\n_UID=0\n_TRANSPORT=journal\n_MACHINE_ID=%032d\nMESSAGE_ID=%s\n' "$2" 98 "$1"
        printf 'MESSAGE=test\nVPOPGUARD_JAIL=vpopmail\nVPOPGUARD_ADDRESS=%s\nVPOPGUARD_PREFIX=%s/32\n' "$3" "$3"
        printf 'VPOPGUARD_BAN_USEC=3600000000\nVPOPGUARD_EXPIRES_USEC=%s\n' "$4"
        for f in "${@:5}"; do
                printf '%s\n' "$f"
        done
        echo
}
now=$(date +%s%6N)
ahead=$((now + 600000000))
{
        event $VG_MESSAGE_BAN "$ahead" 192.0.2.95 $((ahead + 3600000000))
        event $VG_MESSAGE_BAN "$ahead" 192.0.2.95 $((ahead + 3600000000))
        event $VG_MESSAGE_BAN "$((ahead + 1))" 192.0.2.96 $((ahead + 3600000000))
        event $VG_MESSAGE_UNBAN "$((ahead - 5000000))" 192.0.2.96 $((ahead + 3600000000)) VPOPGUARD_UNBAN_REASON=manual
        event $VG_MESSAGE_BAN "$((ahead + 2))" 192.0.2.97 $((ahead + 3600000000))
} | on host1 "$VG_JOURNAL_REMOTE_BIN" --output="/var/log/journal/remote/remote-$NET.98.journal" - 2>"$tmp/skewed.log" ||
        vg_fail "journal-remote failed: $(cat "$tmp/skewed.log")"
vg_poll $T banned_on host1 192.0.2.97
banned_on host1 192.0.2.95 || vg_fail "the skewed peer's ban of .95 was not applied"
not_banned_on host1 192.0.2.96 || vg_fail "the skewed peer's unban of .96 was not applied"
vg_assert_eq 1 "$(ban_events host1 192.0.2.95)" "ban events on host1 of the duplicated entry"
latest=$(($(date +%s%6N) + 3600000000))
(($(ban_field host1 192.0.2.95 expiresUSec) <= latest)) ||
        vg_fail "the skewed peer's ban lasts longer than an hour: $(ban_field host1 192.0.2.95 expiresUSec) > $latest"

# Every vpopguardd ends cleanly (under the sanitizers: without a leak or an error).
for node in collector "${HOSTS[@]}"; do
        vg_stop_daemon "${GUARD[$node]}" "$tmp/$node/daemon.log" $T
done
vg_log "fleet: all checks passed"
