#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Socket activation as a vpopguard.socket unit does it, with systemd-socket-activate: it listens
# on the socket, and on the first connection executes vpopguardd with the listening fd
# (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES). Checked for a socket named "varlink", a single
# unnamed socket, and "varlink" as the second of two sockets:
#   - nothing runs before the first connection; the first call starts the daemon and is answered;
#   - the daemon serves the passed socket only (it creates no socket of its own) and does its
#     real work: a failure in the journal becomes a ban visible through the socket;
#   - after SIGTERM to the daemon it exits 0, and the socket file still exists: a passed socket
#     belongs to the service manager and must never be unlinked.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_require_root_or_skip
vg_enter_namespaces "$@"
activate=
for p in /usr/bin/systemd-socket-activate /bin/systemd-socket-activate /lib/systemd/systemd-socket-activate \
        /usr/lib/systemd/systemd-socket-activate; do
        [[ -x $p ]] && activate=$p && break
done
[[ -n $activate ]] || vg_skip "no systemd-socket-activate (package systemd)"
vg_require_commands nft jq logger
daemon=$(vg_daemon)
ctl=$(vg_ctl)
tmp=$(vg_tmpdir activation)
conf=$tmp/vpopguard.conf
unset VPOPGUARD_SOCKET LISTEN_FDS LISTEN_PID LISTEN_FDNAMES

vg_vpopmail_config "$conf" MaxRetry=2 FindTime=10min BanTime=1h

vg_start_journald

comm_of() {
        vg_comm "$1"
}

is_socket() { [[ -S $1 ]]; }

banned_via() { # SOCKET ADDRESS: ListBans through SOCKET names ADDRESS
        "$ctl" --socket="$1" --json bans 2>/dev/null | jq -e --arg a "$2" 'any(.bans[]; .address == $a)' >/dev/null
}

# run_case NAME ADDRESS SOCKET-TO-CALL ACTIVATE-ARGS...: one activation, from listening to exit.
run_case() {
        local name=$1 address=$2 sock=$3 pid s
        shift 3
        local dir=$tmp/$name
        mkdir -p "$dir"
        vg_spawn "$dir/activate.log" "$activate" "$@" -- \
                "$daemon" --config="$conf" --state-directory="$dir/state" --log-level=debug
        pid=$VG_LAST_PID
        # Listening, nothing started yet.
        vg_poll 10 is_socket "$sock"
        vg_assert_eq systemd-socket- "$(comm_of "$pid")" "$name: process before the first connection"

        # The first call starts the daemon (in the same process) and is answered.
        vg_timeout 20 "$ctl" --socket="$sock" --json status >"$dir/status.json" 2>"$dir/status.err" ||
                vg_fail "$name: the first call failed: $(cat "$dir/status.err") $(cat "$dir/activate.log")"
        vg_assert_eq vpopguardd "$(comm_of "$pid")" "$name: process after the first connection"
        vg_assert_eq "$("$daemon" --version | awk '{ print $2 }')" "$(jq -r .version "$dir/status.json")" \
                "$name: version from the activated daemon"
        grep -q 'Listening on the socket passed by the service manager' "$dir/activate.log" ||
                vg_fail "$name: the daemon did not take the passed socket: $(cat "$dir/activate.log")"
        [[ ! -e /run/vpopguard/io.vpopguard.Manager ]] ||
                vg_fail "$name: the activated daemon created its default socket too"

        # It works as the real service: failures in the journal become a ban.
        vg_log_vpopmail "vchkpw-pop3: password fail joe@example.com:$address"
        vg_log_vpopmail "vchkpw-pop3: password fail joe@example.com:$address"
        vg_poll 20 banned_via "$sock" "$address"
        vg_nft_set_has banned4 "$address" || vg_fail "$name: $address is in ListBans but not in banned4"

        # SIGTERM to the daemon: a clean exit, and the socket file stays.
        vg_stop_daemon "$pid" "$dir/activate.log"
        [[ -S $sock ]] || vg_fail "$name: the daemon unlinked the socket it was passed"
        for s in "$@"; do
                [[ $s != --listen=* ]] || [[ -S ${s#--listen=} ]] || vg_fail "$name: ${s#--listen=} is gone"
        done
}

mkdir -p /run/act
run_case named 192.0.2.1 /run/act/named.sock --listen=/run/act/named.sock --fdname=varlink
run_case unnamed 192.0.2.2 /run/act/unnamed.sock --listen=/run/act/unnamed.sock
run_case second 192.0.2.3 /run/act/second.sock \
        --listen=/run/act/other.sock --listen=/run/act/second.sock --fdname=other:varlink

vg_log "all checks passed"
