#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A flood of one million distinct attacking addresses, one failure each, against the shipped jail
# with MaxTrackedAddresses=100000 (the default, set explicitly), while 1000 real attackers log
# three failures each in between:
#   - every real attacker is banned, nothing else is: banned4 and banned6 hold exactly the
#     attackers (and the two below); an address with one failure never gets in;
#   - when the jail is full, a new address pushes out the one quiet the longest, exactly: of two
#     addresses with two failures each, followed by MaxTrackedAddresses - 1 new addresses and
#     their third failures, the older is forgotten (one failure in its window, not banned) and
#     the younger is banned;
#   - the counters agree: every entry read and counted, 1002 bans, and the jail tracks exactly
#     MaxTrackedAddresses - 1 addresses at the end (the sentinel's window is cleared by its
#     ban), as does the state file;
#   - the daemon's anonymous memory (RssAnon) stays under what vpopguardd(8) documents: the
#     baseline before the flood plus 256 bytes per tracked address, plus 4 MiB for the rest
#     (1001 bans, journal bookkeeping, allocator slack). RssAnon, not VmRSS/VmHWM: those include
#     the journal files the daemon maps, which are file-backed (shared memory on this tmpfs),
#     reclaimable, and bounded by sd-journal's mmap cache rather than by the daemon. Under
#     AddressSanitizer (shadow memory, redzones, a quarantine of freed memory) this one check is
#     skipped with a log line; everything else runs in both builds;
#   - varlink stays responsive: GetStatus is called in a loop throughout, each call must be
#     answered, and the replies must report many different, increasing entry counts before the
#     end is reached, i.e. they were answered in between batches, not queued until the end;
#     also while the daemon catches up on a backlog (it is stopped with SIGSTOP for 300000
#     entries of the flood, as if the machine were busy): calls made while it is stopped, the
#     poller's and two on new connections, must be answered before it has read its backlog.
#     Nothing is timed.
# The flood comes from the load generator, live into the private journald (journald takes about
# 20000 entries/s here, so this test runs for 2 to 3 minutes); the attackers from
# flood-client.py, once the jail is full and while the load generator still writes.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin flood "$@"
vg_require_commands nft jq /usr/bin/python3
loadgen=$(vg_loadgen)
client=$VG_LIB_DIR/flood-client.py
conf=$tmp/vpopguard.conf
sock=/run/vpopguard/io.vpopguard.Manager
FLOOD=1000000
CAP=100000
BYTES_PER_ADDRESS=256      # the bound vpopguardd(8) documents for a tracked address
SLACK_KB=4096              # everything else the flood may grow
BACKLOG=300000

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=10min BanTime=1h "MaxTrackedAddresses=$CAP"

vg_start_journald

status() { # FILTER: applied to a GetStatus reply through the raw socket
        local reply
        vg_daemon_ok
        reply=$(printf '{"method":"io.vpopguard.Manager.GetStatus"}\0' |
                timeout 60 /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(sys.stdin.buffer.read())
b = b""
while not b.endswith(b"\0"):
    c = s.recv(65536)
    if not c:
        sys.exit(1)
    b += c
sys.stdout.write(b[:-1].decode())' "$sock") || return 1
        jq -r ".parameters | $1" <<<"$reply"
}

answers() { status .version >/dev/null; }

read_at_least() { # N: the daemon has processed N entries
        local n
        n=$(status .entriesRead) || return 1
        ((n >= $1))
}


kb_of() { # FIELD: of the daemon's /proc/PID/status, in kB
        awk -v f="$1:" '$1 == f { print $2 }' "/proc/$pid/status"
}

# --- The real attackers: 700 IPv4 addresses of the TEST-NETs, 300 short IPv6 addresses of
# 2001:db8::/48 (written with '_' as vchkpw does); the load generator uses neither.
: >"$tmp/attackers"
for net in 192.0.2 198.51.100; do
        for i in $(seq 1 250); do echo "$net.$i $net.$i"; done >>"$tmp/attackers"
done
for i in $(seq 1 200); do echo "203.0.113.$i 203.0.113.$i"; done >>"$tmp/attackers"
for i in $(seq 1 300); do printf '2001:db8::a:%x 2001_db8__a_%x\n' "$i" "$i"; done >>"$tmp/attackers"
vg_assert_eq 1000 "$(wc -l <"$tmp/attackers")" "number of attackers"
sentinel=203.0.113.250

vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state"
pid=$VG_DAEMON_PID
vg_poll 20 vg_daemon_answers # the baseline below is taken after a first call, as the poller's calls will be
base_anon=$(kb_of RssAnon)

asan=
if grep -qa __asan_init "$daemon"; then
        asan=1
fi

# --- The flood, with GetStatus in a loop from the start.
vg_spawn "$tmp/poll.log" /usr/bin/python3 "$client" poll "$sock" "$pid" "$tmp/stop-polling"
poller=$VG_LAST_PID
vg_spawn "$tmp/loadgen.log" "$loadgen" --live --seed=4 --attackers="$FLOOD" --failures=1 \
        --noise=0 --decoys=0 --successes=0 --benign=0 --verbose
flood=$VG_LAST_PID

# Once the jail is full (and new addresses evict old ones), the attackers join in.
vg_poll 300 read_at_least $((CAP + 10000))
vg_pid_exited "$flood" && vg_fail "the flood ended before the attackers started; they would not be interleaved"
vg_spawn "$tmp/attackers.log" /usr/bin/python3 "$client" attackers "$tmp/attackers" 5
attackers=$VG_LAST_PID

# The daemon falls behind, as on a busy machine: stopped while BACKLOG entries arrive, it then has
# them to catch up with. Varlink must be answered while it does, not only once it is done.
journal_entries() { # in all journal files, from their headers
        journalctl --header 2>/dev/null | awk '$1 == "Entry" && $2 == "objects:" { n += $3 } END { print n + 0 }'
}
behind() {
        (($(journal_entries) >= stopped_at + BACKLOG)) || vg_pid_exited "$flood"
}
vg_on_exit "kill -CONT $pid 2>/dev/null || :" # should the test end while it is stopped
kill -STOP "$pid"
stopped_at=$(journal_entries)
vg_poll 300 behind
read_before=$(awk '$1 == "reply" && $2 > m { m = $2 } END { print m + 0 }' "$tmp/poll.log")
# Every entry up to here is a backlog (less journald's own few lines, and a margin).
backlog_end=$(($(journal_entries) - 100))
# Calls that wait for the stopped daemon: the poller's (it always has one), and one each on two
# new connections, in the listening socket's queue. However fast the machine, a daemon that
# serves varlink between batches answers them before it has read the backlog; one that makes
# them wait reports backlog_end entries or more.
pending=()
for i in 1 2; do
        vg_spawn "$tmp/pending-$i.log" /usr/bin/python3 "$client" pending "$sock" "$tmp/pending-$i.sent"
        pending+=("$VG_LAST_PID")
done
both_sent() { [[ -e $tmp/pending-1.sent && -e $tmp/pending-2.sent ]]; }
vg_poll 30 both_sent
replies_before=$(grep -c '^reply ' "$tmp/poll.log")
kill -CONT "$pid"
for i in 1 2; do
        vg_poll 60 vg_pid_exited "${pending[i - 1]}"
        rc=0
        wait "${pending[i - 1]}" || rc=$?
        vg_kill "${pending[i - 1]}" 1 # only forgets it: it has been reaped
        vg_assert_eq 0 "$rc" "call $i made while the daemon was stopped ($(cat "$tmp/pending-$i.log"))"
        n=$(sed -n 's/^reply //p' "$tmp/pending-$i.log")
        ((n < backlog_end)) || vg_fail "call $i made while the daemon was stopped was answered after" \
                "$n entries, the backlog ends at $backlog_end: varlink waited for the backlog"
done
poller_pending() { (($(grep -c '^reply ' "$tmp/poll.log") > replies_before)); }
vg_poll 60 poller_pending
n=$(awk -v k="$replies_before" '$1 == "reply" && ++i == k + 1 { print $2 }' "$tmp/poll.log")
((n < backlog_end)) || vg_fail "the poller's call made while the daemon was stopped was answered after" \
        "$n entries, the backlog ends at $backlog_end: varlink waited for the backlog"

vg_poll 300 vg_pid_exited "$attackers"
vg_pid_alive "$flood" || vg_fail "the flood ended before the attackers did; they were not interleaved with it"
rc=0
wait "$attackers" || rc=$?
vg_kill "$attackers" 1 # only forgets it: it has been reaped
vg_assert_eq 0 "$rc" "attackers client ($(cat "$tmp/attackers.log"))"

vg_poll 420 vg_pid_exited "$flood"
rc=0
wait "$flood" || rc=$?
vg_kill "$flood" 1
vg_assert_eq 0 "$rc" "load generator ($(cat "$tmp/loadgen.log"))"

# The jail is full: which address goes when a new one comes? KEPT and LOST log two failures each
# (LOST first), then CAP - 1 new addresses one each, then both their third: LOST has been quiet
# the longest and is forgotten on the last new address, KEPT is left at the head and is banned.
kept=203.0.113.201 lost=203.0.113.202
/usr/bin/python3 "$client" evict "$kept" "$lost" $((CAP - 1)) >"$tmp/evict.log" 2>&1 ||
        vg_fail "evict client: $(cat "$tmp/evict.log")"

# The sentinel: once it is banned, every entry before it has been judged.
vg_log_failures "$sentinel"
vg_poll 300 vg_banned banned4 "$sentinel"
: >"$tmp/stop-polling"
vg_poll 330 vg_pid_exited "$poller"
rc=0
wait "$poller" || rc=$?
vg_kill "$poller" 1
vg_assert_eq 0 "$rc" "status poller ($(tail -n 3 "$tmp/poll.log"))"

# --- Exactly the attackers are banned.
{ awk '$1 !~ /:/ { print $1 }' "$tmp/attackers"; echo "$kept"; echo "$sentinel"; } | LC_ALL=C sort >"$tmp/want4"
awk '$1 ~ /:/ { print $1 }' "$tmp/attackers" | LC_ALL=C sort >"$tmp/want6"
vg_nft_set_elements banned4 >"$tmp/got4"
vg_nft_set_elements banned6 >"$tmp/got6"
vg_assert_files_eq "$tmp/want4" "$tmp/got4" "elements of banned4"
vg_assert_files_eq "$tmp/want6" "$tmp/got6" "elements of banned6"

total=$((FLOOD + 3 * 1000 + CAP - 1 + 6 + 3))
vg_assert_eq "$total $total 1002" "$(status '"\(.entriesRead) \(.entriesMatched) \(.bansActive)"')" \
        "entriesRead entriesMatched bansActive"
vg_assert_eq "$((CAP - 1)) 1002 $total" "$(status '.jails[0] | "\(.tracked) \(.bansTotal) \(.failuresTotal)"')" \
        "jail: tracked bansTotal failuresTotal"
"$ctl" --json failures "$lost" >"$tmp/lost.json" ||
        vg_fail "vpopguardctl failures $lost failed"
vg_assert_eq "$lost 1" "$(jq -r '.failures[] | "\(.address) \(.count)"' "$tmp/lost.json")" \
        "the window of $lost (its first two failures were forgotten)"

# The state file is saved at the end of the journal; it then holds the same windows and bans.
state_has_sentinel() {
        vg_daemon_ok
        grep -q "^ban vpopmail $sentinel " "$tmp/state/state" 2>/dev/null
}
vg_poll 30 state_has_sentinel
vg_assert_eq "$((CAP - 1)) 1002" "$(awk '$1 == "fail" { f++ } $1 == "ban" { b++ } END { print f + 0, b + 0 }' "$tmp/state/state")" \
        "fail and ban records in the state file"

# --- Varlink answered all along, in between batches. The poller exits non-zero if a call got
# no reply; here: the counters it saw only grow, and many differ before the end.
grep -q "^calls " "$tmp/poll.log" || vg_fail "status poller: $(tail -n 3 "$tmp/poll.log")"
calls=$(sed -n 's/^calls //p' "$tmp/poll.log")
vg_assert_eq "$calls" "$(grep -c '^reply ' "$tmp/poll.log")" "replies to the status calls"
awk '$1 == "reply" { if ($2 < last) { print "entriesRead went from " last " to " $2; exit 1 } last = $2 }' \
        "$tmp/poll.log" >"$tmp/order" || vg_fail "status replies out of order: $(cat "$tmp/order")"
between=$(awk -v t="$total" '$1 == "reply" && $2 > 0 && $2 < t { print $2 }' "$tmp/poll.log" | sort -u | wc -l)
((between >= 5)) || vg_fail "only $between distinct entry counts among $calls replies before the end"
caught_up=$(awk -v a="$read_before" -v b="$backlog_end" '$1 == "reply" && $2 > a && $2 < b { print $2 }' "$tmp/poll.log" |
        sort -u | wc -l)
# How many depends on how fast the backlog was read: information only (checked above: the calls
# made while it was stopped were answered before its end).
vg_log "varlink: $calls status calls answered, $between distinct counts during the flood, $caught_up of them" \
        "while catching up from $read_before to $backlog_end; the slowest call took" \
        "$(awk '$1 == "reply" && $4 > m { m = $4 } END { print m + 0 }' "$tmp/poll.log") s"

# --- Memory. The poller sampled RssAnon after each reply.
peak_anon=$(awk '$1 == "reply" && $3 > m { m = $3 } END { print m + 0 }' "$tmp/poll.log")
now_anon=$(kb_of RssAnon)
((now_anon > peak_anon)) && peak_anon=$now_anon
bound=$((base_anon + CAP * BYTES_PER_ADDRESS / 1024 + SLACK_KB))
vg_log "memory: RssAnon $base_anon kB before, peak $peak_anon kB (bound $bound kB); VmHWM $(kb_of VmHWM) kB," \
        "RssFile $(kb_of RssFile) kB, RssShmem $(kb_of RssShmem) kB; about" \
        "$(((peak_anon - base_anon) * 1024 / CAP)) bytes per tracked address"
if [[ -n $asan ]]; then
        vg_log "AddressSanitizer build: not checking RssAnon against the bound (shadow memory, redzones, quarantine)"
else
        ((peak_anon <= bound)) || vg_fail "RssAnon peaked at $peak_anon kB, over $bound kB" \
                "(baseline $base_anon kB + $CAP x $BYTES_PER_ADDRESS B + $SLACK_KB kB)"
fi

# The daemon still stops cleanly (under AddressSanitizer: without leaks or errors at exit).
vg_term_daemon 120

vg_log "all checks passed"
