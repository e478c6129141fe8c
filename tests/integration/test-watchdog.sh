#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# WatchdogSec= of vpopguardd.service: started as systemd does it (WATCHDOG_USEC=, WATCHDOG_PID=
# of the daemon itself, NOTIFY_SOCKET=), the daemon sends WATCHDOG=1 to the notification socket
# again and again, from its own PID (the kernel's credentials on each datagram say so), and
# goes on doing it after a reload. Only counts are checked, never intervals.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_require_root_or_skip
vg_enter_namespaces "$@"
vg_require_commands /usr/bin/python3
daemon=$(vg_daemon)
tmp=$(vg_tmpdir watchdog)
conf=$tmp/vpopguard.conf
sock=$tmp/notify
out=$tmp/notify.out
T=30 # deadline of each wait, in seconds

vg_vpopmail_config "$conf" MaxRetry=3

# TODO(lib.sh): a NOTIFY_SOCKET reader, also in test-config-reload.sh and test-ban-expiry.sh.
# This one prefixes each field with the sender's PID, from SCM_CREDENTIALS.
vg_spawn "$tmp/listener.log" /usr/bin/python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
size = socket.CMSG_SPACE(struct.calcsize("3i"))
with open(sys.argv[2], "a") as f:
    while True:
        data, ancillary, _, _ = s.recvmsg(65536, size)
        pid = "?"
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = str(struct.unpack("3i", value[:struct.calcsize("3i")])[0])
        for field in data.decode(errors="replace").split("\n"):
            if field:
                f.write(pid + " " + field + "\n")
        f.flush()
' "$sock" "$out"
vg_poll "$T" test -S "$sock"

vg_start_journald

# WATCHDOG_PID= must be the daemon's own PID: a shell that execs it knows it in advance.
vg_spawn "$tmp/daemon.log" env NOTIFY_SOCKET="$sock" WATCHDOG_USEC=400000 \
        sh -c 'export WATCHDOG_PID=$$; exec "$@"' sh "$daemon" --config="$conf" --state-directory="$tmp/state" --socket=
pid=$VG_LAST_PID

count() { # FIELD: how often the daemon sent FIELD
        grep -cxF "$pid $1" "$out" || true
}
count_reached() { # FIELD N
        vg_daemon_alive "$pid" "$tmp/daemon.log"
        (($(count "$1") >= $2))
}

vg_poll "$T" count_reached READY=1 1
tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "WATCHDOG_PID=$pid" || vg_fail "the daemon's WATCHDOG_PID= is not its PID"
vg_poll "$T" count_reached WATCHDOG=1 2
# Every WATCHDOG=1 came from the daemon.
all_from_daemon() { # of a copy: more arrive meanwhile
        cp "$out" "$tmp/snapshot"
        vg_assert_eq "$(grep -c ' WATCHDOG=1$' "$tmp/snapshot")" "$(grep -cxF "$pid WATCHDOG=1" "$tmp/snapshot")" \
                "WATCHDOG=1 datagrams from the daemon's PID"
}
all_from_daemon

# After a reload, it still pings.
kill -HUP "$pid"
vg_poll "$T" count_reached READY=1 2
pings=$(count WATCHDOG=1)
vg_poll "$T" count_reached WATCHDOG=1 $((pings + 2))

vg_stop_daemon "$pid" "$tmp/daemon.log"
all_from_daemon
vg_log "all checks passed ($(count WATCHDOG=1) WATCHDOG=1 received)"
