#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Torture: while a steady attack is written to a private journald, the daemon is killed with
# SIGKILL at random moments, at least 50 times, and restarted on the same state directory each
# time. Then it catches up and stops cleanly. The result must equal that of one uninterrupted
# --no-follow run over a copy of the same journal, in a network namespace of its own: the same
# nft set elements, the same failure windows (address, failures and their realtime@cursor) and
# bans in the state file, and every banned address was announced by exactly one ban event.
#
# VG_TORTURE_SEED=N repeats the kill timing of an earlier run (it is printed).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin torture "$@"
vg_require_commands nft jq journalctl awk unshare ip
loadgen=$(vg_loadgen)
conf=$tmp/vpopguard.conf
BAN_MESSAGE_ID=7fc6f43d6e5d457ba31097a4cc519474
MIN_KILLS=50

seed=${VG_TORTURE_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed
vg_log "seed $seed (VG_TORTURE_SEED=$seed repeats the kill timing)"

# FindTime covers the whole test, so that both runs' first start (now - FindTime) sees every
# entry; with BanTime no ban expires before the comparison.
vg_vpopmail_config "$conf" MaxRetry=3
printf '[Defaults]\nFindTime=1h\nBanTime=2h\n' >"$conf.d/50-torture.conf"

vg_start_journald

# --- The attack: ~20 s of steady traffic, attackers with 1 to 5 failures spread over all of it,
# so that the failures of most addresses lie on both sides of several kills.
"$loadgen" --live --rate=250 --entries=5000 --seed=$((seed % 1000 + 1)) --attackers=400 \
        --failures=1-5 --noise=60 --ipv6=30 --max-retry=3 --find-time=1h \
        --expect="$tmp/expected" >"$tmp/loadgen.log" 2>&1 &
writer=$!

# --- The torture: start, let it run 50-400 ms, SIGKILL, as long as the attack goes on, and at
# least MIN_KILLS times (the last ones then hit a daemon that catches up or idles).
spawn_daemon() { # LOGFILE: not waiting for it to be ready
        vg_spawn_daemon "$1" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket=
}

kills=0
ready_kills=0
while ((kills < MIN_KILLS)) || vg_pid_alive "$writer"; do
        spawn_daemon "$tmp/daemon.$kills.log"
        # Every other kill waits for READY=1 first, so that however slow the start, half of the
        # kills hit a daemon at work; the others may also hit it while it starts.
        if ((kills % 2)); then
                vg_poll 30 vg_daemon_running
                ready_kills=$((ready_kills + 1))
        fi
        # Fault timing, not an assertion: a random moment in the daemon's life (which starts
        # later under valgrind: VG_TIMEOUT_FACTOR stretches it).
        ms=$(((50 + RANDOM % 351) * VG_TIMEOUT_FACTOR))
        sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
        # Fails the test unless the daemon dies of the SIGKILL (it must not stop on its own).
        vg_kill9_daemon
        kills=$((kills + 1))
done
wait "$writer" || vg_fail "the load generator failed: $(cat "$tmp/loadgen.log")"
# How many of the killed daemons had banned something (from their "Banned ..." lines): the
# kills must have hit a daemon at work, or the torture tested nothing.
working=$({ grep -l '^Banned ' "$tmp"/daemon.*.log 2>/dev/null || true; } | wc -l)
vg_log "killed vpopguardd $kills times with SIGKILL, $ready_kills of them after READY=1, $working after they had banned"
((ready_kills * 2 >= kills - 1)) || vg_fail "only $ready_kills of $kills kills came after READY=1"
((working >= 1)) || vg_fail "none of the $kills killed daemons had banned anything: the kills hit no daemon at work"

# --- Catch up: the last start processes everything up to the last matching entry, then stops
# cleanly (SIGTERM saves the state).
vg_journal_sync
last_cursor=$(journalctl -q --no-pager -n 1 -o export SYSLOG_IDENTIFIER=vpopmail SYSLOG_IDENTIFIER=vchkpw |
        sed -n 's/^__CURSOR=//p')
[[ -n $last_cursor ]] || vg_fail "no vpopmail entry in the journal"
spawn_daemon "$tmp/daemon.final.log"
# Running (READY=1) and caught up. The killed daemons may have saved the last cursor already, so
# the cursor alone does not show that this one is ready for SIGTERM.
caught_up() {
        vg_daemon_running &&
                [[ -r $tmp/state/state && $(sed -n 's/^cursor //p' "$tmp/state/state") == "$last_cursor" ]]
}
vg_poll 30 caught_up
banned_elements() {
        { vg_nft_set_elements banned4; vg_nft_set_elements banned6; } | LC_ALL=C sort
}
vg_term_daemon 30
banned_elements >"$tmp/torture.nft"
cp "$tmp/state/state" "$tmp/torture.state"
vg_journal_sync

# --- The reference: one uninterrupted --no-follow run over a copy of the journal, in network
# and mount namespaces of its own (its own nft table; an empty /run/systemd/journal, so that its
# ban events cannot reach our journal and be mistaken for the torture run's).
journal_dirs=(/var/log/journal/*/)
((${#journal_dirs[@]} == 1)) || vg_fail "expected one journal directory, found: ${journal_dirs[*]}"
cp -a "${journal_dirs[0]}" "$tmp/journal-copy"
mkdir -p "$tmp/ref-state"
# shellcheck disable=SC2016 # expanded by the inner shell
unshare --net --mount --propagation private -- "$BASH" -c '
        set -euo pipefail
        . "$1/lib.sh"
        ip link set lo up
        mount -t tmpfs -o mode=0755 vg-no-journal /run/systemd/journal
        "$2" --config="$3" --no-follow --journal-directory="$4/journal-copy" \
                --state-directory="$4/ref-state" --socket= >"$4/reference.log" 2>&1 ||
                vg_fail "the reference run failed: $(tail -n 20 "$4/reference.log")"
        { vg_nft_set_elements banned4; vg_nft_set_elements banned6; } | LC_ALL=C sort >"$4/reference.nft"
' reference "$VG_LIB_DIR" "$daemon" "$conf" "$tmp" || vg_fail "the reference run failed"
cp "$tmp/ref-state/state" "$tmp/reference.state"

# --- Compare.
# 1. The nft sets, and the attackers that must be banned according to the load generator.
n_banned=$(wc -l <"$tmp/torture.nft")
((n_banned > 0)) || vg_fail "nothing banned"
vg_assert_files_eq "$tmp/reference.nft" "$tmp/torture.nft" "nft set elements: reference vs. after $kills SIGKILLs"
vg_assert_files_eq "$tmp/expected" "$tmp/torture.nft" "nft set elements: load generator's expectation vs. after $kills SIGKILLs"

# 2. The failure windows, in full: jail, address and each failure's realtime@cursor.
fails() { awk '$1 == "fail"' "$1" | LC_ALL=C sort; }
fails "$tmp/reference.state" >"$tmp/reference.fails"
fails "$tmp/torture.state" >"$tmp/torture.fails"
n_fails=$(wc -l <"$tmp/torture.fails")
n_fail_entries=$(awk '{ n += NF - 3 } END { print n + 0 }' "$tmp/torture.fails")
((n_fails > 0)) || vg_fail "no failure window in the state file"
vg_assert_files_eq "$tmp/reference.fails" "$tmp/torture.fails" "failure windows in the state file"

# 3. The bans in the state file: jail, address, failures and origin (the times differ by design).
bans() { awk '$1 == "ban" { print $2, $3, $4, $7 }' "$1" | LC_ALL=C sort; }
bans "$tmp/reference.state" >"$tmp/reference.bans"
bans "$tmp/torture.state" >"$tmp/torture.bans"
vg_assert_files_eq "$tmp/reference.bans" "$tmp/torture.bans" "bans in the state file"
awk '{ print $2 }' "$tmp/torture.bans" | LC_ALL=C sort >"$tmp/torture.ban-addresses"
vg_assert_files_eq "$tmp/torture.nft" "$tmp/torture.ban-addresses" "nft set vs. bans in the state file"

# 4. Exactly one ban event per banned address, although bans were cut off at every stage.
journalctl -q --no-pager -o export "MESSAGE_ID=$BAN_MESSAGE_ID" SYSLOG_IDENTIFIER=vpopguardd |
        sed -n 's/^VPOPGUARD_ADDRESS=//p' | LC_ALL=C sort >"$tmp/events"
dups=$(uniq -d "$tmp/events" | tr '\n' ' ')
[[ -z $dups ]] || vg_fail "ban events logged more than once for: $dups"
vg_assert_files_eq "$tmp/torture.nft" "$tmp/events" "one ban event per banned address"

vg_log "$kills SIGKILLs; compared $n_banned banned addresses" \
        "(nft sets, state bans, ban events), $n_fails failure windows with $n_fail_entries failures," \
        "$(grep -c . "$tmp/expected") expected by the load generator: identical"
