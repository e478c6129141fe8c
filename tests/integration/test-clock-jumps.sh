#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A journal entry from the future or the far past never causes an endless ban or a missed one.
# A clock that jumps leaves entries in ONE journal file whose __REALTIME_TIMESTAMP= goes forward
# by decades and back again while the seqnum keeps counting; journald itself stamps entries with
# its own clock, so the file is written by systemd-journal-remote from export format, appended to
# between --no-follow runs that share a state directory (each run resumes at the saved cursor).
# A private journald receives the daemon's ban events. Bans always count from the moment the
# daemon bans: nft timeout, the state file's expiry and the event's expiry are BanTime from then.
# (journald cannot be made to stamp a fake time: CLOCK_REALTIME is not namespaced, and the host's
# clock is not ours to change.) Last, a state file saved while the daemon's own clock was ahead.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin clock "$@"
vg_require_commands nft jq journalctl python3
state=$tmp/state
journal=$(vg_tmpdir journal)
ban_id=7fc6f43d6e5d457ba31097a4cc519474
s=1000000
ban_time=$((3600 * s))
y2100=4102444800000000 # 2100-01-01 00:00:00 UTC
y2001=978307200000000  # 2001-01-01 00:00:00 UTC

conf=$tmp/vpopguard.conf
vg_vpopmail_config "$conf" MaxRetry=3 FindTime=10min BanTime=1h
"$daemon" --config="$conf" --test-config >"$tmp/effective.conf" 2>&1 ||
        vg_fail "test configuration refused: $(cat "$tmp/effective.conf")"

vg_start_journald

# --- Journal writing: add REALTIME ADDRESS appends one failure to the next batch; flush appends
# the batch to the same journal file (same seqnum id, seqnums go on, realtime goes wherever the
# "clock" says). Monotonic time only grows, as on one boot whose wall clock is changed.
boot=5a0b1f0c7e6d4c3b9a8f7e6d5c4b3a29
mono=1000000
batch=$tmp/batch
: >"$batch"
add() {
        mono=$((mono + s))
        printf '__REALTIME_TIMESTAMP=%s\n__MONOTONIC_TIMESTAMP=%s\n_BOOT_ID=%s\n_UID=0\nSYSLOG_IDENTIFIER=vpopmail\nMESSAGE=vchkpw-pop3: password fail joe@example.com:%s\n\n' \
                "$1" "$mono" "$boot" "$2" >>"$batch"
}
flush() {
        vg_export_to_journal "$journal/clock.journal" <"$batch"
        : >"$batch"
}

banned_on_stderr() { # LOG: the addresses of the "Banned ..." lines, sorted
        sed -n 's/^Banned \([^ ]*\) for .*/\1/p' "$1" | LC_ALL=C sort
}
run=0
run_daemon() { # one --no-follow run; sets t_before/t_after (wall clock around it) and log
        run=$((run + 1))
        log=$tmp/run$run.log
        t_before=$(date +%s%6N)
        "$daemon" --config="$conf" --journal-directory="$journal" --state-directory="$state" \
                --no-follow >"$log" 2>&1 </dev/null || vg_fail "vpopguardd run $run failed: $(cat "$log")"
        t_after=$(date +%s%6N)
}
state_ban() { # ADDRESS: "failures banned_usec expires_usec" of its ban line
        awk -v a="$1" '$1 == "ban" && $2 == "vpopmail" && $3 == a { print $4, $5, $6 }' "$state/state"
}
# assert_ban_from_now ADDRESS: banned by the last run, for BanTime counted from the ban itself.
assert_ban_from_now() {
        local a=$1 failures banned expires timeout expires_in event
        vg_nft_set_has banned4 "$a" || vg_fail "$a not in banned4: $(vg_nft_set_elements banned4)"
        # nft: the element's timeout and what is left of it are at most BanTime (never years).
        read -r timeout expires_in < <(nft -j list set inet vpopguard banned4 |
                jq -r --arg a "$a" '.nftables[] | select(.set) | .set.elem[]
                        | select(type == "object" and .elem.val == $a) | "\(.elem.timeout) \(.elem.expires)"')
        [[ -n $timeout ]] || vg_fail "$a has no timeout in banned4: $(nft list set inet vpopguard banned4)"
        ((timeout <= 3600 && timeout >= 3600 - (t_after - t_before) / s - 1)) ||
                vg_fail "$a: nft timeout ${timeout}s, expected BanTime (3600s)"
        ((expires_in <= 3600)) || vg_fail "$a: nft element expires in ${expires_in}s > BanTime"
        # The state file: banned during the run, expiring BanTime later.
        read -r failures banned expires < <(state_ban "$a")
        [[ -n $banned ]] || vg_fail "no ban of $a in the state: $(cat "$state/state")"
        ((banned >= t_before && banned <= t_after)) ||
                vg_fail "$a: state says banned at $banned, the run was from $t_before to $t_after"
        vg_assert_eq "$ban_time" "$((expires - banned))" "$a: ban duration in the state file"
        vg_assert_eq 3 "$failures" "$a: failures in the state file"
        # The ban event in the journal says the same.
        vg_journal_sync
        event=$(journalctl -q --no-pager -o export "MESSAGE_ID=$ban_id" "VPOPGUARD_ADDRESS=$a" -n 1)
        [[ -n $event ]] || vg_fail "no ban event for $a in the journal"
        vg_assert_eq "$banned" "$(sed -n 's/^VPOPGUARD_BANNED_USEC=//p' <<<"$event")" "$a: event's banned time"
        vg_assert_eq "$expires" "$(sed -n 's/^VPOPGUARD_EXPIRES_USEC=//p' <<<"$event")" "$a: event's expiry"
        vg_assert_eq "$ban_time" "$(sed -n 's/^VPOPGUARD_BAN_USEC=//p' <<<"$event")" "$a: event's ban time"
}
assert_cursor_is_last() {
        vg_assert_eq "$(journalctl -q --no-pager -D "$journal" -n 1 -o export | sed -n 's/^__CURSOR=//p')" \
                "$(sed -n 's/^cursor //p' "$state/state")" "saved cursor after run $run"
}

# --- (a) The clock jumped to 2100: 3 failures are a ban of BanTime from now, not until 2100.
# 192.0.2.10 has failures 2 s apart but 11 min apart in the future: not banned.
add "$y2100" 192.0.2.1
add "$((y2100 + 1 * s))" 192.0.2.10
add "$((y2100 + 2 * s))" 192.0.2.1
add "$((y2100 + 3 * s))" 192.0.2.10
add "$((y2100 + 4 * s))" 192.0.2.1
add "$((y2100 + 660 * s))" 192.0.2.10
flush
run_daemon
vg_assert_eq 192.0.2.1 "$(banned_on_stderr "$log")" "addresses banned by run $run (2100)"
grep -qxF 'Banned 192.0.2.1 for 1h (jail vpopmail): 3 failures within 10min.' "$log" ||
        vg_fail "no ban line for 192.0.2.1: $(cat "$log")"
assert_ban_from_now 192.0.2.1
assert_cursor_is_last
cause=$(journalctl -q --no-pager -o export "MESSAGE_ID=$ban_id" VPOPGUARD_ADDRESS=192.0.2.1 |
        sed -n 's/^VPOPGUARD_CAUSE_REALTIME_USEC=//p' | LC_ALL=C sort | paste -sd ' ')
vg_assert_eq "$y2100 $((y2100 + 2 * s)) $((y2100 + 4 * s))" "$cause" "the 2100 ban's causes"

# --- (b) The clock jumped back to 2001, after the saved cursor: read, judged by their own
# timestamps (3 within FindTime are a ban of BanTime from now; 3 spanning 11 min are not).
add "$y2001" 192.0.2.2
add "$((y2001 + 1 * s))" 192.0.2.20
add "$((y2001 + 2 * s))" 192.0.2.2
add "$((y2001 + 3 * s))" 192.0.2.20
add "$((y2001 + 4 * s))" 192.0.2.2
add "$((y2001 + 663 * s))" 192.0.2.20
flush
run_daemon
vg_assert_eq 192.0.2.2 "$(banned_on_stderr "$log")" "addresses banned by run $run (2001)"
assert_ban_from_now 192.0.2.2
assert_cursor_is_last
vg_assert_eq "$(printf '%s\n' 192.0.2.1 192.0.2.2)" "$(vg_nft_set_elements banned4)" "banned4 after run $run"

# --- (c) Back to the right time, with 2 failures of 192.0.2.3 in 2100 and 1 now: a failure
# counts while it lies within FindTime of the address's newest failure, so "now" is 75 years
# too old to join the 2100 pair: not banned, and nothing crashes. 192.0.2.4 (3 failures now)
# is banned as usual: the future pair does not disturb other addresses.
now=$(date +%s%6N)
add "$((y2100 + 700 * s))" 192.0.2.3
add "$((y2100 + 701 * s))" 192.0.2.3
add "$now" 192.0.2.3
add "$((now + 1))" 192.0.2.4
add "$((now + 2))" 192.0.2.4
add "$((now + 3))" 192.0.2.4
flush
run_daemon
vg_assert_eq 192.0.2.4 "$(banned_on_stderr "$log")" "addresses banned by run $run (2100 pair, then now)"
assert_ban_from_now 192.0.2.4
assert_cursor_is_last
vg_assert_eq "" "$(state_ban 192.0.2.3)" "ban of 192.0.2.3 in the state"

# --- (d) The clock stays right and 192.0.2.3 fails 3 more times within a second: 3 failures
# within FindTime by the real clock must be a ban, whatever 2 entries from the future said
# earlier. (Otherwise an address that failed during a clock jump forward would be immune until
# the wall clock reaches the jump.)
now=$(date +%s%6N)
add "$now" 192.0.2.3
add "$((now + 1))" 192.0.2.3
add "$((now + 2))" 192.0.2.3
add "$((now + 3))" 192.0.2.5
add "$((now + 4))" 192.0.2.5
add "$((now + 5))" 192.0.2.5
flush
run_daemon
vg_nft_set_has banned4 192.0.2.5 || vg_fail "sentinel 192.0.2.5 not banned by run $run: $(cat "$log")"
vg_assert_eq "$(printf '%s\n' 192.0.2.3 192.0.2.5)" "$(banned_on_stderr "$log")" \
        "addresses banned by run $run (3 failures now after a 2100 pair); state: $(grep '192\.0\.2\.3 ' "$state/state")"
assert_ban_from_now 192.0.2.3

# --- (e) The daemon's own clock was ahead when it saved its state: a ban saved as banned in 2100
# and one saved as banned 30 days from now (each with expires = banned + BanTime), next to an
# ordinary ban. After the clock is right again, the daemon starts, and no restored ban runs longer
# than BanTime from now: in nft, in the state it saves.
state=$tmp/state-ahead
mkdir -p "$state"
now=$(date +%s%6N)
{
        echo "vpopguard-state 1"
        echo "cursor $(journalctl -q --no-pager -D "$journal" -n 1 -o export | sed -n 's/^__CURSOR=//p')"
        echo "ban vpopmail 192.0.2.66 3 $y2100 $((y2100 + ban_time)) journal"
        echo "ban vpopmail 192.0.2.67 3 $((now + 30 * 86400 * s)) $((now + 30 * 86400 * s + ban_time)) journal"
        echo "ban vpopmail 192.0.2.68 3 $now $((now + ban_time)) journal"
} >"$state/state"
sum=$(python3 -c 'import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print("%016x" % h)' "$state/state")
echo "end $(($(wc -l <"$state/state") - 1)) $sum" >>"$state/state"
nft delete table inet vpopguard
run_daemon
vg_assert_eq "$(printf '%s\n' 192.0.2.66 192.0.2.67 192.0.2.68)" "$(vg_nft_set_elements banned4)" \
        "bans restored from a state saved with the clock ahead"
for a in 192.0.2.66 192.0.2.67 192.0.2.68; do
        read -r timeout < <(nft -j list set inet vpopguard banned4 |
                jq -r --arg a "$a" '.nftables[] | select(.set) | .set.elem[]
                        | select(type == "object" and .elem.val == $a) | .elem.timeout')
        ((timeout <= 3600)) || vg_fail "$a restored with an nft timeout of ${timeout}s > BanTime"
        read -r _ _ expires < <(state_ban "$a")
        ((expires <= t_after + ban_time)) || vg_fail "$a: the saved ban expires at $expires, more than BanTime from now"
done

vg_log "all checks passed"
