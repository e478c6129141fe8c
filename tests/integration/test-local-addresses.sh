#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The host never bans itself: every address configured on its interfaces is exempt like
# loopback. On a dummy interface (or a bridge without ports) in the test's network namespace:
#   - failures from its addresses (IPv4 and IPv6) are not counted, and never ban;
#   - `vpopguardctl ban` of one is refused (InvalidAddress, with a message that says why);
#   - a forged RTM_NEWADDR from a process (not the kernel) exempts nothing;
#   - a banned address that is then added to the interface is unbanned (the element leaves the
#     set; an unban event with VPOPGUARD_UNBAN_REASON=local), also at start for a saved ban, and
#     also when the notification was lost (the socket overflowed while the daemon was stopped);
#   - an address removed from the interface is bannable again, and its failures count again.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin local-addresses "$@"
vg_require_commands nft jq logger journalctl ip python3
conf=$tmp/vpopguard.conf
state=$tmp/state
T=30

vg_vpopmail_config "$conf" MaxRetry=3 BanTime=1h
vg_start_journald

# A kernel without the dummy driver (CONFIG_DUMMY) still has bridges: one without ports carries
# addresses just the same.
if ! ip link add d0 type dummy 2>/dev/null; then
        vg_log "no dummy interfaces here; d0 is a bridge without ports"
        ip link add d0 type bridge || vg_skip "neither dummy nor bridge interfaces here"
fi
ip link set d0 up
ip addr add 192.0.2.200/24 dev d0
ip addr add 2001:db8::200/64 dev d0 nodad

ctl_answers() {
        "$ctl" status >/dev/null 2>&1
}

start_daemon() {
        vg_spawn "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$state" --log-level=debug
        pid=$VG_LAST_PID
        vg_poll $T ctl_answers
}

set_of() { # ADDRESS: the nft set that holds it
        [[ $1 == *:* ]] && echo banned6 || echo banned4
}

in_set() { # ADDRESS
        vg_nft_set_has "$(set_of "$1")" "$1"
}

not_in_set() { # ADDRESS
        ! vg_nft_set_has "$(set_of "$1")" "$1"
}

listed() { # ADDRESS: in ListBans
        "$ctl" bans --json | jq -e --arg a "$1" 'any(.bans[]; .address == $a)' >/dev/null
}

tracked() { # ADDRESS: in ListFailures
        "$ctl" failures --json | jq -e --arg a "$1" 'any(.failures[]; .address == $a)' >/dev/null
}

lifted_as_local() { # ADDRESS: its unban event says why
        vg_journal_has "MESSAGE_ID=$VG_MESSAGE_UNBAN" "VPOPGUARD_ADDRESS=$1" VPOPGUARD_UNBAN_REASON=local
}

bannable() { # ADDRESS: a manual ban of it succeeds
        "$ctl" ban "$1" >/dev/null 2>&1
}

# --- At start: a saved ban of an address that is on an interface when the daemon starts.
start_daemon
"$ctl" ban 192.0.2.202 >/dev/null || vg_fail "manual ban of 192.0.2.202 failed"
vg_poll $T in_set 192.0.2.202
vg_stop_daemon "$pid" "$tmp/daemon.log"
ip addr add 192.0.2.202/32 dev d0
start_daemon
vg_poll $T lifted_as_local 192.0.2.202
not_in_set 192.0.2.202 || vg_fail "192.0.2.202 is on d0 but still in the set after a restart"
listed 192.0.2.202 && vg_fail "192.0.2.202 is on d0 but still listed as banned after a restart"

# --- Failures from the host's own addresses are not counted. The control address's failures
# come after them in the journal: once it is banned, the others have been judged.
vg_log_failures 192.0.2.200 5
vg_log_failures 2001:db8::200 5
vg_log_failures 192.0.2.9
vg_poll $T in_set 192.0.2.9
for a in 192.0.2.200 2001:db8::200; do
        in_set "$a" && vg_fail "$a is on d0 but was banned for its failures"
        listed "$a" && vg_fail "$a is on d0 but is listed as banned"
        tracked "$a" && vg_fail "$a is on d0 but its failures were counted: $("$ctl" failures)"
done

# --- A manual ban of one is refused, and says why.
for a in 192.0.2.200 2001:db8::200; do
        if "$ctl" ban "$a" >"$tmp/ban.out" 2>&1; then
                vg_fail "vpopguardctl ban $a succeeded although $a is on d0"
        fi
        grep -q 'io.vpopguard.Manager.InvalidAddress' "$tmp/ban.out" ||
                vg_fail "ban $a: not refused with InvalidAddress: $(cat "$tmp/ban.out")"
        grep -q "configured on one of this host's interfaces" "$tmp/ban.out" ||
                vg_fail "ban $a: the refusal does not say why: $(cat "$tmp/ban.out")"
        not_in_set "$a" || vg_fail "$a reached the set although its ban was refused"
done

# --- Only the kernel's word counts: any process may send to the daemon's rtnetlink socket, and
# a forged RTM_NEWADDR must not make an attacker's address exempt. A real address added after
# it is announced behind it on the same socket: once that one is refused, the forgery was read.
rtnl_portid() { # the port of the daemon's NETLINK_ROUTE socket, from /proc/net/netlink
        local fd inode
        for fd in /proc/"$pid"/fd/*; do
                inode=$(readlink "$fd" 2>/dev/null) || continue
                [[ $inode =~ ^socket:\[([0-9]+)\]$ ]] || continue
                awk -v i="${BASH_REMATCH[1]}" '$2 == 0 && $10 == i { print $3; found = 1 } END { exit !found }' \
                        /proc/net/netlink && return 0
        done
        return 1
}
refused_as_local() { # ADDRESS
        ! "$ctl" ban "$1" >"$tmp/ban.out" 2>&1 && grep -q "this host's interfaces" "$tmp/ban.out"
}
portid=$(rtnl_portid) || vg_fail "the daemon has no NETLINK_ROUTE socket: $(cat /proc/net/netlink)"
python3 - "$portid" 192.0.2.77 <<'PY' || vg_fail "cannot send a forged RTM_NEWADDR"
import socket, struct, sys
IFA_LOCAL, RTM_NEWADDR = 2, 20
body = struct.pack("=BBBBI", socket.AF_INET, 32, 0, 0, 1) + struct.pack("=HH", 8, IFA_LOCAL) + socket.inet_aton(sys.argv[2])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.bind((0, 0))
s.sendto(struct.pack("=IHHII", 16 + len(body), RTM_NEWADDR, 0, 0, 0) + body, (int(sys.argv[1]), 0))
PY
ip addr add 192.0.2.78/32 dev d0
vg_poll $T refused_as_local 192.0.2.78
"$ctl" ban 192.0.2.77 >"$tmp/ban.out" 2>&1 ||
        vg_fail "a forged RTM_NEWADDR made 192.0.2.77 exempt: $(cat "$tmp/ban.out")"
ip addr del 192.0.2.78/32 dev d0

# --- A banned address that appears on an interface is unbanned at once.
"$ctl" ban 192.0.2.201 >/dev/null || vg_fail "manual ban of 192.0.2.201 failed"
vg_poll $T in_set 192.0.2.201
ip addr add 192.0.2.201/32 dev d0
vg_poll $T not_in_set 192.0.2.201
vg_poll $T lifted_as_local 192.0.2.201
listed 192.0.2.201 && vg_fail "192.0.2.201 is still listed as banned after it came to d0"
in_set 192.0.2.9 || vg_fail "a ban of an address that is not local was lifted too"

# --- Removed from the interface, an address is an address like any other. The removals are
# announced in this order, so once 192.0.2.201 is bannable, 192.0.2.200 is no longer exempt.
ip addr del 192.0.2.200/24 dev d0
ip addr del 192.0.2.201/32 dev d0
vg_poll $T bannable 192.0.2.201
vg_poll $T in_set 192.0.2.201
vg_log_failures 192.0.2.200
vg_poll $T in_set 192.0.2.200
listed 192.0.2.200 || vg_fail "192.0.2.200 was banned but is not listed"

# --- Notifications lost: while the daemon is stopped, far more addresses come to d0 than its
# socket buffer holds (about 2500 notifications fit here), the banned one last. Only listing the
# addresses again finds it.
"$ctl" ban 198.18.200.1 >/dev/null || vg_fail "manual ban of 198.18.200.1 failed"
vg_poll $T in_set 198.18.200.1
for ((i = 0; i < 8000; i++)); do
        echo "address add 198.18.$((i / 250)).$((i % 250 + 1))/32 dev d0"
done >"$tmp/flood.batch"
echo "address add 198.18.200.1/32 dev d0" >>"$tmp/flood.batch"
kill -STOP "$pid"
vg_on_exit "kill -CONT $pid 2>/dev/null || true"
ip -batch "$tmp/flood.batch" || { kill -CONT "$pid"; vg_fail "ip -batch failed"; }
kill -CONT "$pid"
vg_poll $T not_in_set 198.18.200.1
vg_poll $T lifted_as_local 198.18.200.1
grep -q 'Notifications of address changes were lost' "$tmp/daemon.log" ||
        vg_fail "no notification was lost: the test did not show that the addresses are listed again"
in_set 192.0.2.200 || vg_fail "192.0.2.200's ban was lifted although it is not on d0"
vg_daemon_alive "$pid" "$tmp/daemon.log"
vg_stop_daemon "$pid" "$tmp/daemon.log"
vg_log "PASS"
