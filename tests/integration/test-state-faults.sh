#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A damaged or unwritable state file is never silently reset, and never stops the banning.
#
# 1. At start, a state file that is truncated, torn (bytes appended, a byte changed, a tail of
#    NUL bytes), empty or from a newer version: the daemon starts, logs an error naming the file
#    and why, keeps the file byte for byte as state.broken-USEC, and bans.
# 2. While running, the state directory (a small tmpfs) is full (ENOSPC), then read-only
#    (EROFS): the daemon logs that it cannot save the state, keeps banning, leaves the previous
#    state file intact, and once the directory is writable again the next batch saves a state
#    that has the latest cursor and every ban made in between, and that a restart loads.
# 3. A --no-follow run over more entries than one batch, with a read-only state directory: it
#    reads on after the failed save, bans everything, and ends with an error instead of waiting
#    for entries that will never come.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin state-faults "$@"
vg_require_commands nft jq logger journalctl dd cmp mount sort comm
loadgen=$(vg_loadgen)
conf=$tmp/vpopguard.conf

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=1h BanTime=1h

vg_start_journald

# --- The daemon: ready once it sent READY=1; each start has its log.
start_daemon() { # STATE_DIRECTORY
        vg_start_daemon_n "$daemon" --config="$conf" --state-directory="$1" --socket=
}

log_has() { # TEXT: the current daemon's log has a line containing TEXT
        vg_daemon_ok
        grep -qF -- "$1" "$VG_DAEMON_LOG"
}

# --- Attacks, the nft set and the state file, as an administrator sees them.
attack() { # ADDRESS: MaxRetry (3) failures
        local i
        for i in 1 2 3; do
                vg_log_vpopmail "vchkpw-pop3: password fail u$i@example.com:$1"
        done
}


attack_and_wait_ban() { # ADDRESS
        attack "$1"
        vg_poll 20 vg_banned banned4 "$1"
}

latest_cursor() {
        journalctl -q --no-pager -n 1 -o export SYSLOG_IDENTIFIER=vpopmail SYSLOG_IDENTIFIER=vchkpw |
                sed -n 's/^__CURSOR=//p'
}

state_cursor() { # FILE
        sed -n 's/^cursor //p' "$1"
}

state_cursor_is() { # FILE CURSOR
        vg_daemon_ok
        [[ -r $1 && $(state_cursor "$1") == "$2" ]]
}

state_has_ban() { # FILE ADDRESS
        grep -qE "^ban vpopmail $2 " "$1"
}

# The trailer, as the loader wants it: the last line, "end RECORDS CHECKSUM".
assert_trailer() { # FILE
        [[ $(tail -c 1 "$1" | od -An -c | tr -d ' ') == '\n' ]] || vg_fail "$1 does not end with a newline"
        tail -n 1 "$1" | grep -qE '^end [0-9]+ [0-9a-f]{16}$' || vg_fail "$1 has no trailer: $(tail -n 1 "$1")"
}

# --- A valid state file to damage: a cursor, a ban and an open failure window.
good=$tmp/good
start_daemon "$good"
attack_and_wait_ban 198.51.100.1
vg_log_vpopmail "vchkpw-pop3: password fail u1@example.com:198.51.100.2"
vg_journal_sync
cursor=$(latest_cursor)
vg_poll 20 state_cursor_is "$good/state" "$cursor"
vg_term_daemon
valid=$tmp/valid-state
cp "$good/state" "$valid"
assert_trailer "$valid"
state_has_ban "$valid" 198.51.100.1 || vg_fail "no ban in the valid state: $(cat "$valid")"
grep -q '^fail vpopmail 198.51.100.2 ' "$valid" || vg_fail "no failure window in the valid state: $(cat "$valid")"
size=$(stat -c %s "$valid")

# --- 1. Damaged at start. Each case: a state file, the words the error must contain, an address.
damaged_case() { # NAME REASON ADDRESS; the damaged file is $tmp/NAME.orig
        local name=$1 reason=$2 address=$3 dir=$tmp/case-$1 line broken
        mkdir -p "$dir"
        cp "$tmp/$name.orig" "$dir/state"

        start_daemon "$dir"
        vg_poll 10 log_has "The state file $dir/state is unusable ("
        line=$(grep -F "The state file $dir/state is unusable (" "$VG_DAEMON_LOG")
        [[ $line == *"$reason"* ]] || vg_fail "$name: the error does not say '$reason': $line"

        # Kept for inspection, byte for byte, under the name the log gives.
        vg_poll 10 log_has "Kept the unreadable state file as $dir/state.broken-"
        broken=$(sed -n "s|^.*Kept the unreadable state file as \($dir/state\.broken-[0-9]*\) for inspection\.$|\1|p" "$VG_DAEMON_LOG")
        [[ -n $broken && -f $broken ]] || vg_fail "$name: the kept file '$broken' does not exist: $(ls -a "$dir")"
        cmp "$tmp/$name.orig" "$broken" || vg_fail "$name: $broken is not the original file"
        vg_assert_eq 1 "$(find "$dir" -maxdepth 1 -name 'state.broken-*' | wc -l)" "$name: kept files"

        # Banning goes on, and a new state is saved next to the kept one.
        attack_and_wait_ban "$address"
        vg_journal_sync
        cursor=$(latest_cursor)
        vg_poll 20 state_cursor_is "$dir/state" "$cursor"
        assert_trailer "$dir/state"
        cmp "$tmp/$name.orig" "$broken" || vg_fail "$name: $broken changed"
        vg_term_daemon
        vg_log "$name: logged, kept as ${broken##*/}, banned $address"
}

head -c $((size / 2)) "$valid" >"$tmp/truncated-mid-line.orig"
# Cut right after a line: what remains parses, only the trailer is missing.
head -n 2 "$valid" >"$tmp/truncated-at-line.orig"
{ cat "$valid"; printf 'ban vpopmail 203.0.113.99 3 1 2 journal\n'; } >"$tmp/torn-appended.orig"
# One character of the cursor changed: every line still parses, only the checksum tells.
hdr=$(head -n 1 "$valid" | wc -c)
c=$(dd if="$valid" bs=1 skip=$((hdr + 12)) count=1 status=none)
[[ $c != x ]] && n=x || n=y
{ head -c $((hdr + 12)) "$valid"; printf '%s' "$n"; tail -c +$((hdr + 14)) "$valid"; } >"$tmp/torn-flipped.orig"
vg_assert_eq 1 "$(cmp -l "$valid" "$tmp/torn-flipped.orig" | wc -l)" "bytes changed in the torn-flipped fixture"
vg_assert_eq "$size" "$(stat -c %s "$tmp/torn-flipped.orig")" "size of the torn-flipped fixture"
# A torn block write: the tail is NUL bytes.
{ head -c $((size / 2)) "$valid"; head -c $((size - size / 2)) /dev/zero; } >"$tmp/torn-zeros.orig"
: >"$tmp/empty.orig"
sed '1s/^vpopguard-state [0-9]*$/vpopguard-state 99/' "$valid" >"$tmp/future.orig"
vg_assert_eq 'vpopguard-state 99' "$(head -n 1 "$tmp/future.orig")" "header of the future fixture"

damaged_case truncated-mid-line "truncated" 192.0.2.1
damaged_case truncated-at-line "truncated: no trailer" 192.0.2.2
damaged_case torn-appended "data after the trailer" 192.0.2.3
damaged_case torn-flipped "checksum mismatch" 192.0.2.4
damaged_case torn-zeros "NUL byte" 192.0.2.5
damaged_case empty "empty file" 192.0.2.6
damaged_case future "version 99 is newer than supported" 192.0.2.7

# --- 2. Unwritable while running: a 64 KiB tmpfs as the state directory.
sd=$tmp/tiny
mkdir -p "$sd"
mount -t tmpfs -o size=64k,mode=0700 vg-state-tiny "$sd" || vg_fail "cannot mount a tmpfs on $sd"
VG_MOUNTS+=("$sd")
start_daemon "$sd"
attack_and_wait_ban 203.0.113.1
vg_journal_sync
cursor=$(latest_cursor)
vg_poll 20 state_cursor_is "$sd/state" "$cursor"

no_temp_files() { # nothing left behind by failed writes
        local left
        left=$(find "$sd" -maxdepth 1 -name '.#state.*')
        [[ -z $left ]] || vg_fail "temporary state files left behind: $left"
}

unwritable_phase() { # NAME ERROR-TEXT FIRST-ADDRESS SECOND-ADDRESS AFTER-ADDRESS MAKE-WRITABLE...
        local name=$1 error=$2 a1=$3 a2=$4 a3=$5 before
        shift 5
        before=$tmp/$name.state-before
        cp "$sd/state" "$before"

        # Bans go on while nothing can be saved, and the failure is logged.
        attack_and_wait_ban "$a1"
        vg_poll 10 log_has "Failed to save the state to $sd/state: $error"
        attack_and_wait_ban "$a2"
        # The previous state file is still there, unchanged and complete.
        cmp "$before" "$sd/state" || vg_fail "$name: the state file changed while it could not be written"
        assert_trailer "$sd/state"
        no_temp_files

        # Writable again: the next batch saves everything, the bans made meanwhile included.
        "$@"
        attack_and_wait_ban "$a3"
        vg_journal_sync
        cursor=$(latest_cursor)
        vg_poll 20 state_cursor_is "$sd/state" "$cursor"
        assert_trailer "$sd/state"
        for a in "$a1" "$a2" "$a3"; do
                state_has_ban "$sd/state" "$a" || vg_fail "$name: no ban of $a in the saved state: $(cat "$sd/state")"
        done
        no_temp_files
        vg_log "$name: logged, kept banning, saved again"
}

# ENOSPC: fill the tmpfs.
dd if=/dev/zero of="$sd/filler" bs=4k status=none 2>"$tmp/dd.err" && vg_fail "dd filled 64k without an error"
grep -q 'No space left on device' "$tmp/dd.err" || vg_fail "dd: $(cat "$tmp/dd.err")"
unwritable_phase enospc "No space left on device" 203.0.113.2 203.0.113.3 203.0.113.4 rm -f "$sd/filler"

# EROFS: remount read-only while it runs.
ro() { mount -o remount,ro "$sd" || vg_fail "cannot remount $sd read-only"; }
rw() { mount -o remount,rw "$sd" || vg_fail "cannot remount $sd read-write"; }
ro
unwritable_phase erofs "Read-only file system" 203.0.113.5 203.0.113.6 203.0.113.7 rw

# The state saved after the faults is the one a restart loads: no damage, every ban.
vg_term_daemon
assert_trailer "$sd/state"
n=$(grep -c '^ban ' "$sd/state")
start_daemon "$sd"
if grep -F 'unusable' "$VG_DAEMON_LOG" >&2; then
        vg_fail "the state saved after the faults is not loadable"
fi
log_has "Loaded state: $n active bans" || vg_fail "restart did not load $n bans: $(cat "$VG_DAEMON_LOG")"
[[ -z $(find "$sd" -maxdepth 1 -name 'state.broken-*') ]] || vg_fail "the state was set aside after the faults"
vg_term_daemon

# --- 3. --no-follow, read-only state directory, a backlog of 120000 failures (30 batches)
# in a journal directory of its own. The set keeps the bans of 1. and 2. (none from the backlog).
mkdir -p "$tmp/backlog" "$tmp/ro-state"
mount -t tmpfs -o size=64k,mode=0700,ro vg-state-ro "$tmp/ro-state" || vg_fail "cannot mount a read-only tmpfs"
"$loadgen" --export --start-usec=now --seed=7 --noise=0 --successes=0 --benign=0 --decoys=0 --attackers=40000 --failures=3 \
        --ipv6=0 --expect="$tmp/backlog.expect" | vg_export_to_journal "$tmp/backlog/backlog.journal"
vg_nft_set_elements banned4 | LC_ALL=C sort >"$tmp/backlog.before"
rc=0
vg_timeout 300 "$daemon" --config="$conf" --journal-directory="$tmp/backlog" \
        --state-directory="$tmp/ro-state" --socket= --no-follow >"$tmp/backlog.log" 2>&1 || rc=$?
((rc != 124)) || vg_fail "the --no-follow run with an unwritable state directory did not end: $(tail -n 5 "$tmp/backlog.log")"
((rc != 0)) || vg_fail "the --no-follow run could not save its state and still exited with status 0: $(tail -n 8 "$tmp/backlog.log")"
grep -q 'Read-only file system' "$tmp/backlog.log" || vg_fail "no error about the state directory: $(tail -n 5 "$tmp/backlog.log")"
vg_assert_eq 40000 "$(wc -l <"$tmp/backlog.expect")" "attackers the loadgen expects banned"
vg_nft_set_elements banned4 | LC_ALL=C sort | comm -13 "$tmp/backlog.before" - >"$tmp/backlog.got"
cmp -s "$tmp/backlog.expect" "$tmp/backlog.got" ||
        vg_fail "the --no-follow run banned $(wc -l <"$tmp/backlog.got") new addresses, expected the 40000 of $tmp/backlog.expect"
umount "$tmp/ro-state"
grep -F 'Read-only file system' "$tmp/backlog.log" >&2

vg_log "PASS"
