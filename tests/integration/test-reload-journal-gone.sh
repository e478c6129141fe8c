#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A reload that cannot open the journal (its directory is gone) is refused and says why; the
# daemon keeps running with what it had, answers, and reports ready again (READY=1).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_require_root_or_skip
vg_enter_namespaces "$@"
vg_require_commands nft jq python3
daemon=$(vg_daemon)
ctl=$(vg_ctl)
tmp=$(vg_tmpdir reload-journal-gone)
conf=$tmp/vpopguard.conf
journal=$tmp/journal
T=30

vg_vpopmail_config "$conf" MaxRetry=3
mkdir -p "$journal"

# The service manager's side of sd_notify: every datagram, one per line (newlines as '|').
notify=$tmp/notify.sock
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode(errors="replace").replace("\n", "|") + "\n")
' "$notify" "$tmp/notify.txt" &
VG_PIDS+=("$!")
vg_poll $T test -S "$notify"

ready_count() {
        grep -c 'READY=1' "$tmp/notify.txt" 2>/dev/null || true
}

at_least_ready() { # N
        (($(ready_count) >= $1))
}

NOTIFY_SOCKET=$notify vg_spawn "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state" \
        --journal-directory="$journal"
pid=$VG_LAST_PID
vg_poll $T at_least_ready 1

rm -rf "$journal"
rc=0
"$ctl" reload >"$tmp/reload.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || vg_fail "reload answered success although the journal cannot be opened: $(cat "$tmp/reload.out")"
grep -qi 'journal' "$tmp/reload.out" || vg_fail "the refused reload does not say why: $(cat "$tmp/reload.out")"
vg_daemon_alive "$pid" "$tmp/daemon.log"
vg_poll $T at_least_ready 2
"$ctl" status >/dev/null || vg_fail "the daemon stopped answering after the refused reload"
vg_daemon_alive "$pid" "$tmp/daemon.log"
vg_stop_daemon "$pid" "$tmp/daemon.log"
vg_log "PASS"
