#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Entries that a jail selects but that have no MESSAGE: journald shows a new entry a moment
# before its fields are all linked, and sd-journal then reports the new MESSAGE as absent, so
# the daemon reads such an entry again before it gives up on it (vpopguardd(8), JOURNAL ENTRIES
# BEING WRITTEN). Here the entries really have no MESSAGE (native protocol, written by root):
#   - the newest entry: given up on after its retries, counted in entriesUnreadable (and in the
#     jail's, which vpopguardctl metrics shows), a warning
#     names its cursor, and the daemon goes on reading after it;
#   - one followed at once by failures: given up on, and the failures after it still ban;
#   - nothing else is counted: entriesRead and entriesMatched agree with the journal, and
#     vpopguardctl status shows the entries not judged;
#   - after a restart none of them is read again.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin unreadable "$@"
vg_require_commands nft jq /usr/bin/python3
conf=$tmp/vpopguard.conf
vg_vpopmail_config "$conf" MaxRetry=3 FindTime=10min BanTime=1h
vg_start_journald

# native ENTRY...: one datagram per argument to journald's native socket, fields separated by
# "|" (no MESSAGE unless given).
native() {
        /usr/bin/python3 - "$@" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for entry in sys.argv[1:]:
    s.sendto(("\n".join(entry.split("|")) + "\n").encode(), "/run/systemd/journal/socket")
PY
}

status() { # FILTER over GetStatus
        vg_daemon_ok
        "$ctl" --json status | jq -r "$1"
}
unreadable_is() { [[ $(status .entriesUnreadable) == "$1" ]]; }

start_daemon() {
        vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state"
}
start_daemon
vg_assert_eq 0 "$(status .entriesUnreadable)" "entriesUnreadable at the start"

# The newest entry has no MESSAGE.
t_first=$(date +%s%6N)
native "SYSLOG_IDENTIFIER=vpopmail|PRIORITY=5|VG_TEST=alone"
vg_poll 30 unreadable_is 1
vg_journal_sync
cursor=$(journalctl -q -o export VG_TEST=alone | sed -n 's/^__CURSOR=//p')
[[ -n $cursor ]] || vg_fail "journald did not store the entry without MESSAGE"
grep -qF "Entry: $cursor" "$tmp/daemon.log" ||
        vg_fail "no warning naming the entry $cursor: $(tail -n 5 "$tmp/daemon.log")"

# One without MESSAGE, then at once three failures: they ban.
native "SYSLOG_IDENTIFIER=vpopmail|PRIORITY=5|VG_TEST=followed" \
        "SYSLOG_IDENTIFIER=vpopmail|MESSAGE=vchkpw-pop3: password fail joe@example.com:192.0.2.7" \
        "SYSLOG_IDENTIFIER=vpopmail|MESSAGE=vchkpw-pop3: password fail joe@example.com:192.0.2.7" \
        "SYSLOG_IDENTIFIER=vpopmail|MESSAGE=vchkpw-pop3: password fail joe@example.com:192.0.2.7"
vg_poll 30 vg_nft_set_has banned4 192.0.2.7
vg_poll 30 unreadable_is 2
t_last=$(date +%s%6N)
vg_assert_eq "5 3 2 1" "$(status '"\(.entriesRead) \(.entriesMatched) \(.entriesUnreadable) \(.bansActive)"')" \
        "entriesRead entriesMatched entriesUnreadable bansActive"
vg_assert_eq 2 "$(status '.jails[] | select(.name == "vpopmail") | .entriesUnreadable')" "the jail's entriesUnreadable"
# One warning a minute at most: both came within t_last - t_first (a second or two, unless the
# machine is very busy).
warnings=$(grep -c 'no readable MESSAGE' "$tmp/daemon.log")
((warnings >= 1 && warnings <= 1 + (t_last - t_first) / 60000000)) ||
        vg_fail "$warnings warnings about entries without MESSAGE within $(((t_last - t_first) / 1000000))s: one a minute at most"
"$ctl" status | grep -qx "Not judged: *2 (no readable MESSAGE, see vpopguardd(8))" ||
        vg_fail "vpopguardctl status does not show the entries not judged: $("$ctl" status)"

# A restart resumes after them.
vg_term_daemon 20
mv "$tmp/daemon.log" "$tmp/daemon.1.log"
start_daemon
vg_log_failures 192.0.2.8
vg_poll 30 vg_nft_set_has banned4 192.0.2.8
vg_assert_eq "3 3 0" "$(status '"\(.entriesRead) \(.entriesMatched) \(.entriesUnreadable)"')" \
        "entriesRead entriesMatched entriesUnreadable after the restart"
vg_log "ok"
