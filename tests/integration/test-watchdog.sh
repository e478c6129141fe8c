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

vg_begin watchdog "$@"
conf=$tmp/vpopguard.conf
T=30 # deadline of each wait, in seconds

vg_vpopmail_config "$conf" MaxRetry=3

vg_start_journald

# WATCHDOG_PID= must be the daemon's own PID: a shell that execs it knows it in advance. The
# notification socket that lib.sh reads tags each field with the sender's PID (SCM_CREDENTIALS).
vg_start_daemon "$tmp/daemon.log" env WATCHDOG_USEC=400000 \
        sh -c 'export WATCHDOG_PID=$$; exec "$@"' sh "$daemon" --config="$conf" --state-directory="$tmp/state" --socket=
pid=$VG_DAEMON_PID

count() { # FIELD: how often the daemon sent FIELD
        vg_notify_fields "$pid" | grep -cxF "$1" || true
}
count_reached() { # FIELD N
        vg_daemon_ok
        (($(count "$1") >= $2))
}

tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "WATCHDOG_PID=$pid" || vg_fail "the daemon's WATCHDOG_PID= is not its PID"
vg_poll "$T" count_reached WATCHDOG=1 2
# Every WATCHDOG=1 came from the daemon.
all_from_daemon() { # of a copy: more arrive meanwhile
        cp "$VG_NOTIFY_LOG" "$tmp/snapshot"
        vg_assert_eq "$(grep -c ' WATCHDOG=1$' "$tmp/snapshot")" "$(grep -cxF "$pid WATCHDOG=1" "$tmp/snapshot")" \
                "WATCHDOG=1 datagrams from the daemon's PID"
}
all_from_daemon

# After a reload, it still pings.
vg_reload_daemon
pings=$(count WATCHDOG=1)
vg_poll "$T" count_reached WATCHDOG=1 $((pings + 2))

vg_term_daemon
all_from_daemon
vg_log "all checks passed ($(count WATCHDOG=1) WATCHDOG=1 received)"
