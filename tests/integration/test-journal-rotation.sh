#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The daemon follows a real (private) journald through what happens to a journal in production:
# rotation, vacuuming of the file that holds its saved cursor, and a journald restart, all in the
# middle of attacks. Every attacker is banned exactly once and no entry is read twice (the
# "entries read" of the daemon's STATUS= equals what was logged). Then the daemon is stopped, its
# saved entry vacuumed away, and on the next start it resumes at the oldest entry after the
# cursor and says so in the journal (MESSAGE_ID=a88198937379434e853764a891c2a4cf).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin rotation "$@"
vg_require_commands nft jq journalctl
vg_start_journald

# Deadline of each wait, in seconds: generous, as a busy machine is no failure.
T=20
MID_BAN=7fc6f43d6e5d457ba31097a4cc519474
MID_MISSED=a88198937379434e853764a891c2a4cf

reads() { # the "entries read" of every STATUS= of the running daemon so far, one a line
        vg_notify_fields | sed -n 's/^STATUS=.* \([0-9]*\) entries read.*/\1/p'
}
read_reached() { # N: the last STATUS= says N or more entries read
        local n
        n=$(reads | tail -n 1)
        [[ -n $n ]] && ((n >= $1))
}
all_read() { # N: the daemon has read exactly N entries (waits for it)
        vg_poll "$T" read_reached "$1"
        vg_assert_eq "$1" "$(reads | tail -n 1)" "entries read"
}
max_read() {
        reads | sort -n | tail -n 1
}

# --- The shipped jail, MaxRetry=3, FindTime=10min, BanTime=1h.
conf=$tmp/vpopguard.conf
vg_vpopmail_config "$conf" MaxRetry=3
state=$tmp/state

start_daemon() { # LOG
        vg_start_daemon "$1" "$daemon" --config="$conf" --state-directory="$state"
}

logged=0 # vpopmail entries logged since the daemon started
fail() { # ADDRESS COUNT
        local i
        for ((i = 0; i < $2; i++)); do
                vg_log_vpopmail "vchkpw-pop3: password fail joe$i@example.com:$1"
                logged=$((logged + 1))
        done
}
banned() { # ADDRESS: in the set, and its ban event in the journal
        vg_poll "$T" vg_nft_set_has banned4 "$1"
        vg_poll "$T" vg_journal_has "MESSAGE_ID=$MID_BAN" "VPOPGUARD_ADDRESS=$1"
}
# Ban events are vacuumed with their files: keep "CURSOR ADDRESS" of each as it is seen.
collect_ban_events() {
        journalctl -q --no-pager -o export "MESSAGE_ID=$MID_BAN" |
                awk -F= '/^__CURSOR=/ { c = substr($0, 10) } /^VPOPGUARD_ADDRESS=/ { print c, $2 }' >>"$tmp/events"
}
vpopmail_cursors() { # the cursors of the vpopmail entries, oldest first (optionally of one address)
        journalctl -q --no-pager -o export SYSLOG_IDENTIFIER=vpopmail SYSLOG_IDENTIFIER=vchkpw |
                awk -v a="${1:-}" '/^__CURSOR=/ { c = substr($0, 10) }
                        /^MESSAGE=/ && (a == "" || substr($0, length($0) - length(a)) == ":" a) { print c }'
}
vpopmail_entries() {
        journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=vpopmail SYSLOG_IDENTIFIER=vchkpw | wc -l
}

# On failure, show what the daemon saw and what the journal holds.
passed=0
diagnose() {
        [[ $passed == 0 ]] || return 0
        vg_log "daemon logs:"
        tail -n 20 "$tmp"/daemon*.log >&2
        vg_log "last notifications:"
        tail -n 5 "$VG_NOTIFY_LOG" >&2
        vg_log "vpopmail entries in the journal:"
        journalctl -q --no-pager -o short-monotonic SYSLOG_IDENTIFIER=vpopmail | tail -n 20 >&2
        ls -l /var/log/journal/*/ >&2
}
vg_on_exit diagnose

start_daemon "$tmp/daemon1.log"

# --- Part 1: one attacker, and two addresses that stay below MaxRetry for now.
fail 192.0.2.1 3
fail 192.0.2.101 2
fail 192.0.2.201 1
banned 192.0.2.1
all_read "$logged"

# --- Part 2, after a rotation: the open window of 192.0.2.101 spans the two files.
timeout 10 journalctl --rotate || vg_fail "journalctl --rotate failed"
fail 192.0.2.2 3
fail 192.0.2.101 1
banned 192.0.2.2
banned 192.0.2.101
all_read "$logged"
# The ban of 192.0.2.101 names its three failures, in both files, by their cursors.
vg_assert_eq "$(vpopmail_cursors 192.0.2.101 | LC_ALL=C sort)" \
        "$(journalctl -q --no-pager -o export "MESSAGE_ID=$MID_BAN" VPOPGUARD_ADDRESS=192.0.2.101 |
                sed -n 's/^VPOPGUARD_CAUSE_CURSOR=//p' | LC_ALL=C sort)" "cause cursors of the ban of 192.0.2.101"
# The state is written within a second of a change (vpopguardd(8)), so wait for it.
saved_cursor_is() { [[ $(sed -n 's/^cursor //p' "$state/state") == "$1" ]]; }
last=$(vpopmail_cursors | tail -n 1)
vg_poll 10 saved_cursor_is "$last"
vg_assert_eq "$last" "$(sed -n 's/^cursor //p' "$state/state")" "saved cursor after part 2"
collect_ban_events

# --- Part 3, after the file holding the saved cursor was rotated and vacuumed away.
timeout 10 journalctl --rotate --vacuum-files=1 >/dev/null 2>&1 || vg_fail "journalctl --rotate --vacuum-files=1 failed"
vg_assert_eq 0 "$(vpopmail_entries)" "vpopmail entries left after vacuuming"
fail 192.0.2.3 3
fail 192.0.2.201 1
banned 192.0.2.3
all_read "$logged"
collect_ban_events

# --- Part 4: journald restarts in the middle of an attack.
fail 192.0.2.4 1
all_read "$logged"
vg_restart_journald
fail 192.0.2.4 2
fail 192.0.2.5 3
banned 192.0.2.4
banned 192.0.2.5
all_read "$logged"
collect_ban_events

attackers=(192.0.2.1 192.0.2.2 192.0.2.101 192.0.2.3 192.0.2.4 192.0.2.5)
vg_assert_eq "$(printf '%s\n' "${attackers[@]}" | LC_ALL=C sort)" "$(vg_nft_set_elements banned4)" "banned4 after part 4"
vg_assert_eq "$(printf '1 %s\n' "${attackers[@]}" | LC_ALL=C sort -k2)" \
        "$(LC_ALL=C sort -u "$tmp/events" | awk '{ print $2 }' | LC_ALL=C sort | uniq -c | awk '{ print $1, $2 }')" \
        "ban events per address"
vg_assert_eq "$logged" "$(max_read)" "entries read (nothing twice)"
vg_assert_eq 1 "$(grep -c '^Banned 192\.0\.2\.101 for ' "$tmp/daemon1.log")" "ban lines of 192.0.2.101"

# --- Stopped, its saved entry vacuumed away, more failures, started again.
vg_term_daemon "$T"
saved=$(sed -n 's/^cursor //p' "$state/state")
vg_assert_eq "$(vpopmail_cursors | tail -n 1)" "$saved" "saved cursor after SIGTERM"
if vg_journal_has "MESSAGE_ID=$MID_MISSED"; then vg_fail "an entries-missed event before any entry was missed"; fi
timeout 10 journalctl --rotate --vacuum-files=1 >/dev/null 2>&1 || vg_fail "journalctl --rotate --vacuum-files=1 failed"
vg_assert_eq 0 "$(vpopmail_entries)" "vpopmail entries left after vacuuming"
logged=0
fail 192.0.2.6 3 # exactly MaxRetry: the first entry after the cursor must be read too
vg_journal_sync
start_daemon "$tmp/daemon2.log"
banned 192.0.2.6
all_read 3
vg_poll "$T" vg_journal_has "MESSAGE_ID=$MID_MISSED" "VPOPGUARD_CURSOR=$saved"
grep -q 'saved journal position is no longer in the journal' "$tmp/daemon2.log" ||
        vg_fail "no warning about the lost position: $(cat "$tmp/daemon2.log")"

# --- A plain restart: the saved entry is there, nothing is missed and nothing read twice.
vg_term_daemon "$T"
start_daemon "$tmp/daemon3.log"
fail 192.0.2.7 3
banned 192.0.2.7
all_read 3
vg_assert_eq 3 "$(max_read)" "entries read after a plain restart"
vg_assert_eq 1 "$(journalctl -q --no-pager -o cat "MESSAGE_ID=$MID_MISSED" | wc -l)" "entries-missed events"
vg_assert_eq "$(printf '%s\n' "${attackers[@]}" 192.0.2.6 192.0.2.7 | LC_ALL=C sort)" "$(vg_nft_set_elements banned4)" "banned4 at the end"
vg_term_daemon "$T"

passed=1
vg_log "all checks passed"
