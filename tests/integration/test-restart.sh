#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Exact across restarts: the daemon follows a private journald while an attack is written, and is
# killed with SIGKILL four times in the middle of it (each time after it has banned part of the
# attackers, once while it catches up on a backlog) and restarted on the same state directory.
# At the end the nft sets hold exactly the addresses with >= MaxRetry failures (nothing lost),
# none with MaxRetry-1 (nothing counted twice), every ban was logged exactly once with the three
# failures that caused it, and the state file keeps the exact open failure counts. Then the
# counts of an address carry over a clean restart (SIGTERM).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin restart "$@"
vg_require_commands nft jq logger journalctl awk
state=$tmp/state
conf=$tmp/vpopguard.conf
BAN_MESSAGE_ID=7fc6f43d6e5d457ba31097a4cc519474

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=1h BanTime=1h

vg_start_journald

# --- The daemon: started in the background, ready once it sent READY=1; each start has its log.
start_daemon() {
        vg_start_daemon_n "$daemon" --config="$conf" --state-directory="$state"
}

# --- nft, journal and state file, as an administrator reads them.
banned_elements() { # both sets, one address per line, sorted
        { vg_nft_set_elements banned4; vg_nft_set_elements banned6; } | LC_ALL=C sort
}

n_bans() {
        banned_elements | wc -l
}

bans_above() { # N: true once more than N addresses are banned
        (($(n_bans) > $1))
}

has_ban() { # ADDRESS
        vg_nft_set_has banned4 "$1" || vg_nft_set_has banned6 "$1"
}

ban_events() {
        journalctl -q --no-pager -o export "MESSAGE_ID=$BAN_MESSAGE_ID"
}

state_fail_count() { # ADDRESS: saved failures of ADDRESS in the vpopmail jail (0 if none)
        awk -v a="$1" '$1 == "fail" && $2 == "vpopmail" && $3 == a { n = NF - 3 } END { print n + 0 }' "$state/state"
}

state_fail_count_is() { # ADDRESS N
        [[ -r $state/state && $(state_fail_count "$1") == "$2" ]]
}

# Writes lines [FROM, TO) of the attack, CHUNK lines per logger process, as vchkpw would
# (syslog socket, mail.notice, identifier vpopmail).
write_lines() { # FROM TO CHUNK
        local from=$1 to=$2 chunk=$3 i end
        for ((i = from; i < to; i += chunk)); do
                end=$((i + chunk < to ? i + chunk : to))
                printf '%s\n' "${lines[@]:i:end-i}" |
                        logger --socket-errors=on --id -p mail.notice -t vpopmail ||
                        vg_fail "logger failed"
        done
}

# --- The attack. 200 addresses (40 IPv6, written as vchkpw prints them, ':' as '_'), with 1 to
# 5 failures each (40 have exactly MaxRetry-1 = 2), in a shuffled order so that the failures of
# most addresses lie on both sides of the kills. Each failure names its address index and its
# rank ("a17k2") in the login field, so that the ban events' causes can be checked exactly.
# Interleaved: successful logins of a few addresses, and a fake address inside a logged password,
# which must never count.
canon=() printed=() count=()
for ((i = 0; i < 200; i++)); do
        if ((i < 120)); then
                canon[i]=198.51.100.$((i + 1))
        elif ((i < 160)); then
                canon[i]=203.0.113.$((i - 119))
        else
                canon[i]=2001:db8::a:$((i - 159))
        fi
        printed[i]=${canon[i]//:/_}
        count[i]=$((1 + i % 5))
done

items=()
for i in "${!canon[@]}"; do
        for ((k = 0; k < count[i]; k++)); do items+=("$i"); done
done
RANDOM=4242 # the same shuffle every run
for ((i = ${#items[@]} - 1; i > 0; i--)); do
        j=$((RANDOM % (i + 1)))
        t=${items[i]} items[i]=${items[j]} items[j]=$t
done

lines=() first_at=() second_at=() third_at=() seen=()
for s in "${!items[@]}"; do
        i=${items[s]}
        k=$((${seen[i]:-0} + 1))
        seen[i]=$k
        case $k in
        1) first_at[i]=${#lines[@]} ;; 2) second_at[i]=${#lines[@]} ;; 3) third_at[i]=${#lines[@]} ;;
        esac
        case $(((i + k) % 4)) in
        0) lines+=("vchkpw-pop3: password fail a${i}k${k}@example.com:${printed[i]}") ;;
        1) lines+=("vchkpw-smtp: vpopmail user not found a${i}k${k}@:${printed[i]}") ;;
        2) lines+=("vchkpw-imap: null password given a${i}k${k}:${printed[i]}") ;;
        3) lines+=("vchkpw-submission: password fail (pass: 'x a${i}k${k}@example.com:192.0.2.200') a${i}k${k}@example.com:${printed[i]}") ;;
        esac
        ((s % 7 != 6)) || lines+=("vchkpw-pop3: login success user@example.com:192.0.2.$((1 + s % 5))")
done
n_lines=${#lines[@]}

expected=$tmp/expected
for i in "${!canon[@]}"; do
        ((count[i] < 3)) || echo "${canon[i]}"
done >"$expected.attack"
sentinel=198.18.0.1
{ cat "$expected.attack"; echo "$sentinel"; } | LC_ALL=C sort >"$expected"

# Kill points (line offsets) and the bans that the lines before each of them must cause: each
# segment adds bans, so "more bans than at the last kill" always comes true, and comes true only
# once the daemon has processed part of the lines written since.
p1=$((n_lines * 25 / 100)) p2=$((n_lines * 40 / 100)) p3=$((n_lines * 60 / 100)) p4=$((n_lines * 80 / 100))
bans_before() { # OFFSET
        local i n=0
        for i in "${!third_at[@]}"; do ((third_at[i] >= $1)) || n=$((n + 1)); done
        echo "$n"
}
e1=$(bans_before "$p1") e2=$(bans_before "$p2") e3=$(bans_before "$p3") e4=$(bans_before "$p4")
((0 < e1 && e1 < e2 && e2 < e3 && e3 < e4)) || vg_fail "the shuffle leaves a segment without bans: $e1 $e2 $e3 $e4"
straddling=0
for i in "${!canon[@]}"; do
        ((count[i] == 2)) || continue
        for p in "$p1" "$p2" "$p3" "$p4"; do
                ((first_at[i] < p && p <= second_at[i])) && straddling=$((straddling + 1)) && break
        done
done
((straddling >= 10)) || vg_fail "only $straddling addresses with 2 failures straddle a kill"
vg_log "attack: $n_lines lines, $(wc -l <"$expected.attack") attackers to ban, $straddling two-failure addresses straddle a kill"

# --- 1. SIGKILL and restart, four times, in the middle of the attack.
start_daemon
write_lines 0 "$p1" 10
vg_poll 30 bans_above 0 # part of the attack is processed
vg_kill9_daemon
at_kill1=$(n_bans)

# A backlog written while the daemon is down; killed again as soon as the catch-up banned more.
write_lines "$p1" "$p2" 10
start_daemon
vg_poll 30 bans_above "$at_kill1"
vg_kill9_daemon
at_kill2=$(n_bans)

# Twice while the attack is being written: killed as soon as part of it led to a ban, the rest
# of the segment arriving while the daemon is down.
start_daemon
write_lines "$p2" "$p3" 5 &
writer=$!
vg_poll 30 bans_above "$at_kill2"
vg_kill9_daemon
at_kill3=$(n_bans)
wait "$writer" || vg_fail "writing the attack failed"

start_daemon
write_lines "$p3" "$p4" 5 &
writer=$!
vg_poll 30 bans_above "$at_kill3"
vg_kill9_daemon
at_kill4=$(n_bans)
wait "$writer" || vg_fail "writing the attack failed"
vg_log "banned at the kills: $at_kill1/$e1 $at_kill2/$e2 $at_kill3/$e3 $at_kill4/$e4 (banned at the kill / caused by the segment written by then)"

start_daemon
write_lines "$p4" "$n_lines" 10
# The sentinel reaches MaxRetry after every line of the attack: once it is banned, all is judged.
for k in 1 2 3; do
        vg_log_vpopmail "vchkpw-pop3: password fail sentinel$k@example.com:$sentinel"
done
vg_poll 30 has_ban "$sentinel"

# Nothing lost, nothing counted twice: exactly the addresses with >= 3 failures.
banned_elements >"$tmp/banned"
vg_assert_files_eq "$expected" "$tmp/banned" "banned addresses after 4 SIGKILLs"

# Each ban logged exactly once, with MaxRetry failures, caused by the address's first three. The
# event follows the nft commit: after a clean stop, every event has been sent.
vg_term_daemon
vg_journal_sync
journalctl -q --no-pager -o export SYSLOG_IDENTIFIER=vpopmail |
        awk '/^__CURSOR=/ { c = substr($0, 10) }
                 /^MESSAGE=/ && match($0, / a[0-9]+k[0-9]+[@:]/) { print c, substr($0, RSTART + 1, RLENGTH - 2) }
                 /^MESSAGE=.*sentinel[0-9]@/ { match($0, /sentinel[0-9]/); print c, substr($0, RSTART, RLENGTH) }' \
                >"$tmp/failure-cursors"
# Fields of an export entry come in no particular order: each entry is read up to its blank line.
ban_events | awk -v tags="$tmp/failure-cursors" -v cf="$tmp/event-causes" '
        BEGIN { while ((getline l < tags) > 0) { split(l, f, " "); tag[f[1]] = f[2] } }
        /^VPOPGUARD_ADDRESS=/ { a = substr($0, 19) }
        /^VPOPGUARD_FAILURES=/ { n = substr($0, 20) }
        /^VPOPGUARD_CAUSE_CURSOR=/ { c = substr($0, 24); causes[++nc] = c in tag ? tag[c] : "unknown-cursor" }
        function flush(i) { if (a != "") { print a; for (i = 1; i <= nc; i++) print a, n, causes[i] > cf } a = n = ""; nc = 0 }
        /^$/ { flush() }
        END { flush() }' | LC_ALL=C sort >"$tmp/event-addresses"
dups=$(uniq -d "$tmp/event-addresses" | tr '\n' ' ')
[[ -z $dups ]] || vg_fail "ban events logged twice for: $dups(a ban replayed after a SIGKILL between the nft commit and the state file write?)"
vg_assert_files_eq "$expected" "$tmp/event-addresses" "one ban event per banned address"
for i in "${!canon[@]}"; do
        ((count[i] < 3)) || printf '%s 3 a%sk%s\n' "${canon[i]}" "$i" 1 "${canon[i]}" "$i" 2 "${canon[i]}" "$i" 3
done >"$tmp/expected-causes"
printf '%s 3 sentinel%s\n' "$sentinel" 1 "$sentinel" 2 "$sentinel" 3 >>"$tmp/expected-causes"
LC_ALL=C sort -o "$tmp/expected-causes" "$tmp/expected-causes"
LC_ALL=C sort -o "$tmp/event-causes" "$tmp/event-causes"
vg_assert_files_eq "$tmp/expected-causes" "$tmp/event-causes" "failures and causes of the ban events"

# The open failure windows survived too: after the clean stop the state file holds exactly the
# failures of the addresses below MaxRetry, and the cursor of the sentinel's last failure.
awk '$1 == "fail" && $2 == "vpopmail" { print $3, NF - 3 }' "$state/state" | LC_ALL=C sort >"$tmp/fails"
for i in "${!canon[@]}"; do
        ((count[i] >= 3)) || echo "${canon[i]} ${count[i]}"
done | LC_ALL=C sort >"$tmp/expected-fails"
vg_assert_files_eq "$tmp/expected-fails" "$tmp/fails" "failure windows in the state file"
vg_assert_eq "$(journalctl -q --no-pager -n 1 -o export SYSLOG_IDENTIFIER=vpopmail SYSLOG_IDENTIFIER=vchkpw | sed -n 's/^__CURSOR=//p')" \
        "$(sed -n 's/^cursor //p' "$state/state")" "cursor in the state file"

# --- 2. Failure counts carry over a clean restart (SIGTERM).
victim=203.0.113.222
start_daemon
vg_log_vpopmail "vchkpw-pop3: password fail b1@example.com:$victim"
vg_log_vpopmail "vchkpw-smtp: vpopmail user not found b2@:$victim"
vg_poll 20 state_fail_count_is "$victim" 2
vg_term_daemon
vg_assert_eq 2 "$(state_fail_count "$victim")" "saved failures of $victim after SIGTERM"
has_ban "$victim" && vg_fail "$victim banned after 2 failures"
start_daemon
vg_log_vpopmail "vchkpw-imap: null password given b3:$victim"
vg_poll 20 has_ban "$victim"
vg_term_daemon
vg_journal_sync
vg_assert_eq 1 "$(ban_events | grep -cx "VPOPGUARD_ADDRESS=$victim")" "ban events of $victim"
vg_assert_eq "VPOPGUARD_FAILURES=3" "$(journalctl -q --no-pager -o export "MESSAGE_ID=$BAN_MESSAGE_ID" \
        "VPOPGUARD_ADDRESS=$victim" | grep '^VPOPGUARD_FAILURES=')" "failures in the ban event of $victim"
vg_assert_eq 0 "$(state_fail_count "$victim")" "saved failures of $victim once banned"
grep -q "^ban vpopmail $victim 3 " "$state/state" || vg_fail "no ban of $victim in the state file"
