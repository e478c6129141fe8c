#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# journald's own rate limit drops attack lines before vpopguardd can read them, and then logs
# "Suppressed N messages from UNIT" (N_DROPPED=N, _TRANSPORT=driver). journald limits only
# senders it can put in a unit, which it reads from their cgroup: here vchkpw's lines come from
# a logger in a cgroup v2 directory named like a service, under a private journald with a low
# RateLimitBurst=. Asserts what an admin would check:
#   - GetStatus reports for the jail exactly the notes journald wrote: the sum of N_DROPPED, how
#     many, the newest's time and unit; "vpopguardctl status" shows them;
#   - the daemon's warning for each note is in the journal, at priority warning;
#   - after a restart, a note read before any line of its unit (journald writes it when the unit
#     logs again, here while the daemon was stopped) still counts, once;
#   - bans still land for every attacker whose three lines got through (before, during and
#     after the floods), and for no one else: the ban set equals what the journal holds.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin suppressed "$@"
vg_require_commands nft jq logger systemd-cat stat mkfifo
src=${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}
note_id=a596d6fe7bfa4994828e72309e95d61e # SD_MESSAGE_JOURNAL_DROPPED
n_flood=600                              # attackers per flood, three lines each

mkdir -p "$tmp/vpopguard.conf.d"
cp "$src/conf.d/10-vpopmail.conf" "$tmp/vpopguard.conf.d/"
printf '[Defaults]\nMaxRetry=3\nFindTime=10min\nBanTime=1h\n' >"$tmp/vpopguard.conf"

# --- A cgroup that journald maps to a unit. In the hybrid layout cgroup2 is at .../unified.
cgroup_fs=
for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
        if [[ $(stat -f -c %T "$d" 2>/dev/null) == cgroup2fs ]]; then
                cgroup_fs=$d
                break
        fi
done
[[ -n $cgroup_fs ]] || vg_skip "no cgroup v2 hierarchy mounted"
unit=vpopguard-test-$RANDOM$RANDOM.service
# At the top, else below our own cgroup: journald names units relative to the cgroup of its
# PID 1 (this script), so either way the unit is $unit.
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
cgroup=
for d in "$cgroup_fs/$unit" "$cgroup_fs${own%/}/$unit"; do
        if mkdir "$d" 2>/dev/null; then
                cgroup=$d
                break
        fi
done
[[ -n $cgroup ]] || vg_skip "cannot create a cgroup under $cgroup_fs"

# Only this script's logger is ever in the directory; the script created it and removes it.
remove_cgroup() {
        local pid end=$((SECONDS + 5))
        while read -r pid; do
                kill -KILL "$pid" 2>/dev/null || true
        done <"$cgroup/cgroup.procs"
        while [[ -s $cgroup/cgroup.procs ]] && ((SECONDS < end)); do
                sleep 0.05
        done
        rmdir "$cgroup"
}
vg_on_exit remove_cgroup

# The limit is scaled up with the free space of the journal's file system (up to 6x), so the
# floods are far above any of it. The interval is short so that the notes come soon, yet much
# longer than a flood takes to write, also on a busy machine (see flood_in_one_interval).
interval=$((5 * VG_TIMEOUT_FACTOR))
vg_start_journald RateLimitIntervalSec=${interval}s RateLimitBurst=100

# --- vchkpw: one logger in the unit's cgroup, fed through a FIFO. It must outlive its lines,
# or journald cannot read its cgroup and does not limit them. Lines are mail.notice unless
# they start with a "<PRI>" prefix (logger keeps a line's priority for the lines after it, so
# every line gets one).
mkfifo "$tmp/vchkpw"
# shellcheck disable=SC2016 # expanded by the inner shell
vg_spawn "$tmp/logger.log" bash -c 'echo $$ >"$0/cgroup.procs" &&
        exec logger --socket-errors=on --id --prio-prefix -p mail.notice -t vpopmail <"$1"' "$cgroup" "$tmp/vchkpw"
logger_pid=$VG_LAST_PID
exec {vchkpw_fd}>"$tmp/vchkpw"

vchkpw() {
        vg_pid_alive "$logger_pid" || vg_fail "the logger in $unit exited: $(cat "$tmp/logger.log")"
        printf '%s\n' "$@" | sed '/^</!s/^/<21>/' >&"$vchkpw_fd"
}

# attack ADDRESS...: the three failures that get each ADDRESS banned.
attack() {
        local a i
        for a in "$@"; do
                for i in 1 2 3; do
                        printf 'vchkpw-pop3: password fail user%s@example.com:%s\n' "$i" "$a"
                done
        done
}

# flood NET: n_flood attackers in NET.0.0.0/8, in one go.
n_floods=0
flood() {
        local i
        n_floods=$((n_floods + 1))
        vchkpw "$(for ((i = 0; i < n_flood; i++)); do attack "$1.0.$((i / 200)).$((i % 200 + 1))"; done)"
}

# sentinel ADDRESS: three failures from the unit, at mail.warning: journald limits each
# priority group on its own (notice and info share one), so these pass. Once ADDRESS is
# banned, the logger has sent every line before them, journald has judged them, and the daemon
# has read what journald kept.
sentinel() {
        vchkpw "$(attack "$1" | sed 's/^/<20>/')"
        vg_poll 30 banned "$1"
}

notes() { # [journalctl options]: journald's notes about the unit
        journalctl -q --no-pager "$@" MESSAGE_ID=$note_id _TRANSPORT=driver OBJECT_SYSTEMD_UNIT="$unit"
}

n_notes() {
        notes -o cat | wc -l
}

# flood_in_one_interval: a flood that journald saw within one RateLimitIntervalSec=, i.e. no
# note was written while it went by, so its drops are still pending in journald. Tries again
# with the next network if the interval happened to end during the flood, which a flood that
# takes a fraction of the interval rarely meets twice, on an idle or a busy machine.
net=10
flood_in_one_interval() {
        local n _
        for _ in 1 2 3 4 5; do
                n=$(n_notes)
                flood $net
                sentinel 192.0.2.$((net + 230))
                net=$((net + 1))
                (($(n_notes) > n)) || return 0
        done
        vg_fail "every flood spanned the end of journald's interval"
}

# notes_above N: more than N notes. Else logs a harmless line: journald writes its note when the
# unit logs again after the interval (in the same priority group).
notes_above() {
        (($(n_notes) > $1)) && return 0
        vchkpw "vchkpw-pop3: login success user@example.com:192.0.2.200"
        return 1
}

more_notes_than() { # N
        vg_poll 25 notes_above "$1" # the interval, and time to spare
}

# --- The daemon, its standard error in the journal as under systemd (with JOURNAL_STREAM, so
# its lines carry their priority).
start_daemon() {
        # shellcheck disable=SC2016 # expanded by the inner shell
        vg_start_daemon "$tmp/daemon.log" systemd-cat --identifier=vpopguardd -- bash -c \
                'export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); exec "$0" "$@"' \
                "$daemon" --config="$tmp/vpopguard.conf" --state-directory="$tmp/state" --socket="$tmp/socket"
        pid=$VG_DAEMON_PID
}
daemon_alive() {
        vg_pid_alive "$pid" ||
                vg_fail "vpopguardd exited: $(journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=vpopguardd | tail -n 20)"
}
banned() {
        daemon_alive
        vg_nft_set_has banned4 "$1"
}
ctl() {
        "$ctl" --socket="$tmp/socket" "$@"
}

# check_reported NOTES_JSON: GetStatus, status and the running daemon's warnings against the
# notes journald wrote since the daemon started reading.
check_reported() {
        local n dropped last_usec
        n=$(jq -s length "$1")
        dropped=$(jq -s 'map(.N_DROPPED | tonumber) | add' "$1")
        last_usec=$(jq -s -r 'last | .__REALTIME_TIMESTAMP' "$1")
        ((n >= 1 && dropped >= 1)) || vg_fail "journald dropped nothing: $(cat "$1")"
        vg_log "journald: $n note(s), $dropped messages dropped from $unit"

        ctl --json status >"$tmp/status.json" || vg_fail "vpopguardctl status failed"
        vg_assert_eq "vpopmail $dropped $n $last_usec $unit" \
                "$(jq -r '.jails[0] | "\(.name) \(.suppressedMessages) \(.suppressionEvents) \(.lastSuppressedUSec) \(.lastSuppressedUnit)"' \
                        "$tmp/status.json")" \
                "GetStatus (jail suppressedMessages suppressionEvents lastSuppressedUSec lastSuppressedUnit)"
        ctl status >"$tmp/status.txt" || vg_fail "vpopguardctl status failed"
        grep -qE "^vpopmail +$dropped +$n +[^ ].* +${unit//./\\.}$" "$tmp/status.txt" ||
                vg_fail "status shows no suppression row: $(cat "$tmp/status.txt")"

        jq -r '.N_DROPPED' "$1" | while read -r dropped; do
                echo "journald's rate limit dropped $dropped messages of $unit, which logs for jail vpopmail:" \
                        "failures among them were not counted. Raise RateLimitBurst= for $unit, see vpopguardd(8)."
        done | LC_ALL=C sort >"$tmp/expected-warnings"
        journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=vpopguardd _PID="$pid" PRIORITY=4 |
                { grep -F "journald's rate limit" || true; } | LC_ALL=C sort >"$tmp/warnings"
        vg_assert_files_eq "$tmp/expected-warnings" "$tmp/warnings" "warnings in the journal"
}

# --- 1. Live: an attacker, a flood, the note, an attacker after it.
start_daemon
vchkpw "$(attack 192.0.2.1)"
flood_in_one_interval
more_notes_than "$(n_notes)"
vchkpw "$(attack 192.0.2.2)"
sentinel 192.0.2.250
vg_journal_sync
vg_assert_eq "$unit" "$(journalctl -q --no-pager -n 1 -o json SYSLOG_IDENTIFIER=vpopmail _SYSTEMD_UNIT="$unit" |
        jq -r ._SYSTEMD_UNIT)" "_SYSTEMD_UNIT of the lines that got through"
notes -o json >"$tmp/notes1.json"
check_reported "$tmp/notes1.json"

# --- 2. A flood the daemon reads, a stop, then the note (written when the unit logs again):
# after the restart the note comes before any line of its unit.
flood_in_one_interval
vg_kill "$pid"
cursor=$(sed -n 's/^cursor //p' "$tmp/state/state")
[[ -n $cursor ]] || vg_fail "no cursor in the state file"
more_notes_than "$(n_notes)"
vchkpw "$(attack 192.0.2.3)"
start_daemon
sentinel 192.0.2.251
vg_journal_sync
# (Not "journalctl --after-cursor=C MATCHES": it skips one entry too many when C does not match.)
journalctl -q --no-pager -o json --after-cursor="$cursor" |
        jq -c --arg id $note_id --arg unit "$unit" \
                'select(.MESSAGE_ID == $id and ._TRANSPORT == "driver" and .OBJECT_SYSTEMD_UNIT == $unit)' \
                >"$tmp/notes2.json"
[[ $(jq -s 'first | .__CURSOR' "$tmp/notes2.json") != null ]] || vg_fail "no note after the saved cursor"
check_reported "$tmp/notes2.json"

# --- Bans: exactly the addresses with three failures in the journal.
journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=vpopmail |
        sed -n 's/^vchkpw-pop3: password fail .*:\(.*\)$/\1/p' |
        LC_ALL=C sort | uniq -c | awk '$1 >= 3 { print $2 }' | LC_ALL=C sort >"$tmp/expected-bans"
vg_nft_set_elements banned4 >"$tmp/bans"
vg_assert_files_eq "$tmp/expected-bans" "$tmp/bans" "bans"
for a in 192.0.2.1 192.0.2.2 192.0.2.3; do
        grep -qxF "$a" "$tmp/bans" || vg_fail "$a is not banned"
done
n_bans=$(wc -l <"$tmp/bans")
((n_bans < n_floods * n_flood)) || vg_fail "all attackers of the floods were banned: journald dropped none of their lines"
vg_log "ok: $n_bans bans"

# The logger ends at the end of its input (the daemon holds the FIFO open too), then the
# cgroup can go.
vg_kill "$pid"
exec {vchkpw_fd}>&-
vg_poll 10 vg_pid_exited "$logger_pid"
# The daemon's standard error went to the journal: a sanitizer's report would be there.
if journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=vpopguardd | grep -E "Sanitizer|runtime error" >&2; then
        vg_fail "vpopguardd reported memory errors"
fi
