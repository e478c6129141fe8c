#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Hostile varlink clients in numbers (test-varlink-go.sh has the malformed ones, 10 MiB without a
# NUL and one UID over its limit of 64). vpopguardd runs with the soft file limit a systemd
# service gets by default (DefaultLimitNOFILE=1024:524288), as vpopguard.service sets none.
#   - 3000 connections from 40 UIDs, held open: the first UID alone keeps 64 of its 75, then
#     the others fill the daemon up to its limit in all (768) less the 16 kept for root, and every
#     further one is closed at once. Meanwhile root's vpopguardctl status is answered, a new UID is
#     refused cleanly (exit 3, "closed the connection", no hang), bans from the journal still
#     land, and RssAnon grows by at most 16 KiB per connection. Freeing one UID's connections
#     lets others in again, and every held connection still answers.
#   - A Monitor() caller (UID 1000 in systemd-journal, who may see addresses) that stops reading
#     while 20000 addresses are banned: all bans land,
#     other clients are answered meanwhile, RssAnon stays within the 128 MiB of unread output
#     vpopguardd(8) allows a connection, and when the client reads again it finds every ban,
#     none dropped.
#   - A client (in systemd-journal) that pipelines ListBans() calls (3-4 MB each with 20000 bans)
#     and reads nothing:
#     the daemon disconnects it once 128 MiB are unread, says so in its log, its RssAnon stays
#     within that limit and falls back afterwards, and meanwhile others are answered and bans land.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin varlink-floods "$@"
vg_require_commands nft jq logger setpriv prlimit getent /usr/bin/python3
loadgen=$(vg_loadgen)
conf=$tmp/vpopguard.conf
sock=/run/vpopguard/io.vpopguard.Manager
unset VPOPGUARD_SOCKET
CONNECTIONS_MAX=768 # vpopguardd(8): 64 per UID, 768 in all, the last 16 for root
ROOT_RESERVED=16
USERS_MAX=$((CONNECTIONS_MAX - ROOT_RESERVED))
N_BANS=20000
OUTPUT_MAX_KB=$((128 * 1024))
# Monitor() and ListBans() show addresses: only to root and the groups that may read the journal.
JOURNAL_GID=$(getent group systemd-journal | cut -d: -f3) || vg_fail "no group systemd-journal"

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=10min BanTime=1h

# Other UIDs run the client and vpopguardctl from here: the temporary and build directories may
# be closed to them.
run=/run/vg-floods
mkdir -p "$run"
cp "$VG_LIB_DIR/flood-client.py" "$run/"
cp "$ctl" "$run/vpopguardctl" # or its valgrind wrapper
chmod 0755 "$run" "$run/vpopguardctl"
chmod 0644 "$run/flood-client.py"

vg_start_journald



anon_kb() {
        awk '$1 == "RssAnon:" { print $2 }' "/proc/$pid/status"
}

# Memory bounds hold for the plain build. Under AddressSanitizer (shadow memory, redzones, and a
# quarantine that keeps freed memory) they are only logged.
asan=
if grep -qa __asan_init "$daemon"; then
        asan=1
fi
within() { # KB BOUND_KB WHAT
        if [[ -n $asan ]]; then
                vg_log "AddressSanitizer build: not checking RssAnon of $1 kB against $2 kB ($3)"
                return 0
        fi
        (($1 <= $2)) || vg_fail "RssAnon is $1 kB, over $2 kB: $3"
}

has_line() { # FILE LINE
        grep -qxF -- "$2" "$1"
}

as_uid() { # UID CMD...
        setpriv --reuid="$1" --regid="$1" --clear-groups "${@:2}"
}

# finished PID LOG: the client exited with status 0 (it prints FAIL otherwise).
finished() {
        local rc=0
        vg_poll 60 vg_pid_exited "$1"
        wait "$1" || rc=$?
        vg_kill "$1" 1 # only forgets it: it has been reaped
        vg_assert_eq 0 "$rc" "client $1 ($(cat "$2"))"
}

vg_start_daemon "$tmp/daemon.log" prlimit --nofile=1024: -- "$daemon" --config="$conf" \
        --state-directory="$tmp/state" --log-level=debug
pid=$VG_DAEMON_PID
vg_assert_eq 1024 "$(awk '/^Max open files/ { print $4 }' "/proc/$pid/limits")" "the daemon's soft file limit"
vg_log_failures 192.0.2.1
vg_poll 20 vg_banned banned4 192.0.2.1
base=$(anon_kb)

# --- 3000 connections from 40 UIDs. UID 2001 first, alone: its limit of 64.
declare -A holder
hold() { # UID: 75 connections, held until $run/release-UID exists
        vg_spawn "$tmp/hold-$1.log" setpriv --reuid="$1" --regid="$1" --clear-groups \
                /usr/bin/python3 "$run/flood-client.py" hold "$sock" 75 "$run/release-$1"
        holder[$1]=$VG_LAST_PID
}
resolved() { # UID
        grep -q '^resolved ' "$tmp/hold-$1.log" && return 0
        vg_pid_alive "${holder[$1]}" || vg_fail "holder of UID $1: $(cat "$tmp/hold-$1.log")"
        # Then connections wait unaccepted instead of being refused (the message is debug level).
        ! grep -q 'Failed to accept varlink connection, pausing: Too many open files' "$tmp/daemon.log" ||
                vg_fail "vpopguardd ran out of file descriptors before its limit of $CONNECTIONS_MAX connections"
        return 1
}
hold 2001
vg_poll 60 resolved 2001
vg_assert_eq "resolved 64 11" "$(grep '^resolved ' "$tmp/hold-2001.log")" "UID 2001's connections (kept, closed)"

for uid in $(seq 2002 2040); do
        hold "$uid"
done
for uid in $(seq 2002 2040); do
        vg_poll 120 resolved "$uid"
done
kept=0 closed=0
for uid in $(seq 2002 2040); do
        read -r _ k c < <(grep '^resolved ' "$tmp/hold-$uid.log")
        ((k <= 64)) || vg_fail "UID $uid kept $k connections, over the limit of 64"
        kept=$((kept + k)) closed=$((closed + c))
done
vg_assert_eq "$((USERS_MAX - 64)) $((39 * 75 - USERS_MAX + 64))" "$kept $closed" \
        "connections of UIDs 2002-2040 kept and closed ($USERS_MAX in all with UID 2001's)"

# Full for everyone but root: root is answered, a new UID is turned away at once, not left hanging.
refused() { # what ctl printed
        grep -qF "vpopguardd at $sock closed the connection during GetStatus()." "$1" ||
                vg_fail "not refused cleanly: $(cat "$1")"
}
rc=0
timeout 60 "$ctl" status >"$tmp/root.out" 2>&1 || rc=$?
vg_assert_eq 0 "$rc" "vpopguardctl status as root while $USERS_MAX connections of others are held ($(cat "$tmp/root.out"))"
rc=0
timeout 60 setpriv --reuid=3000 --regid=3000 --clear-groups "$run/vpopguardctl" status >"$tmp/uid3000.out" 2>&1 || rc=$?
vg_assert_eq 3 "$rc" "vpopguardctl status as UID 3000 while $USERS_MAX connections are held ($(cat "$tmp/uid3000.out"))"
refused "$tmp/uid3000.out"

# Bans still land, memory is small.
vg_log_failures 192.0.2.2
vg_poll 30 vg_banned banned4 192.0.2.2
held=$(anon_kb)
vg_log "connections: RssAnon $base kB before, $held kB with $USERS_MAX held"
within "$held" $((base + USERS_MAX * 16)) "$USERS_MAX connections held, from $base kB"

# UID 2001 lets go of its 64: UID 3000 is served again, the rest still answer.
: >"$run/release-2001"
finished "${holder[2001]}" "$tmp/hold-2001.log"
has_line "$tmp/hold-2001.log" released || vg_fail "UID 2001's holder: $(cat "$tmp/hold-2001.log")"
vg_poll 30 vg_daemon_answers
as_uid 3000 "$run/vpopguardctl" status >/dev/null 2>"$tmp/uid3000.err" ||
        vg_fail "UID 3000 is not served after connections were freed: $(cat "$tmp/uid3000.err")"
for uid in $(seq 2002 2040); do
        : >"$run/release-$uid"
done
for uid in $(seq 2002 2040); do
        finished "${holder[$uid]}" "$tmp/hold-$uid.log"
        has_line "$tmp/hold-$uid.log" released || vg_fail "UID $uid's holder: $(cat "$tmp/hold-$uid.log")"
done
vg_log_failures 192.0.2.3
vg_poll 30 vg_banned banned4 192.0.2.3

# --- A Monitor() caller that stops reading, as UID 1000. It has stalled once it saw an event.
vg_spawn "$tmp/stall.log" setpriv --reuid=1000 --regid=1000 --groups="$JOURNAL_GID" \
        /usr/bin/python3 "$run/flood-client.py" stall "$sock" "$run/release-stall" 192.0.2.99
staller=$VG_LAST_PID
stalled() {
        has_line "$tmp/stall.log" stalled && return 0
        vg_pid_alive "$staller" || vg_fail "Monitor client: $(cat "$tmp/stall.log")"
        "$ctl" ban 203.0.113.77 --time=1min >/dev/null || vg_fail "ban of the probe failed"
        "$ctl" unban 203.0.113.77 >/dev/null || vg_fail "unban of the probe failed"
        return 1
}
vg_poll 30 stalled
base=$(anon_kb)

vg_spawn "$tmp/loadgen.log" "$loadgen" --live --expect="$tmp/expect" --attackers="$N_BANS" --failures=3 \
        --noise=0 --decoys=0 --successes=0 --benign=0 --seed=7
flood=$VG_LAST_PID

# Others are answered while the bans pour in; each answer must come (vpopguardctl waits 30 s).
peak=0 calls=0
read_all() {
        local n a
        vg_daemon_ok
        "$ctl" --json status >"$tmp/status.json" 2>"$tmp/status.err" ||
                vg_fail "vpopguardctl status failed while Monitor() is stalled: $(cat "$tmp/status.err")"
        calls=$((calls + 1))
        a=$(anon_kb)
        ((a > peak)) && peak=$a
        n=$(jq -r .entriesRead "$tmp/status.json")
        ((n >= 3 * (3 + N_BANS)))
}
vg_poll 300 read_all
finished "$flood" "$tmp/loadgen.log"
vg_assert_eq "$N_BANS" "$(wc -l <"$tmp/expect")" "addresses the load generator expects banned"
vg_log "stalled Monitor(): $calls status calls answered; RssAnon $base kB before, peak $peak kB"
within "$peak" $((base + OUTPUT_MAX_KB + N_BANS * 1 + 8192)) "one stalled Monitor() and $N_BANS bans, from $base kB"
{ cat "$tmp/expect"; echo 192.0.2.1; echo 192.0.2.2; echo 192.0.2.3; } | grep -v : | LC_ALL=C sort >"$tmp/want4"
grep : "$tmp/expect" | LC_ALL=C sort >"$tmp/want6"
vg_nft_set_elements banned4 >"$tmp/got4"
vg_nft_set_elements banned6 >"$tmp/got6"
vg_assert_files_eq "$tmp/want4" "$tmp/got4" "elements of banned4"
vg_assert_files_eq "$tmp/want6" "$tmp/got6" "elements of banned6"

# The Monitor() client reads again: every ban is there, nothing was dropped.
vg_log_failures 192.0.2.99
vg_poll 30 vg_banned banned4 192.0.2.99
: >"$run/release-stall"
finished "$staller" "$tmp/stall.log"
vg_assert_eq "bans $((N_BANS + 1))" "$(grep '^bans ' "$tmp/stall.log")" "journal bans the stalled Monitor() received"

# --- ListBans() pipelined without reading, as UID 1000: about 3.5 MB per reply.
base=$(anon_kb)
vg_spawn "$tmp/pipeline.log" setpriv --reuid=1000 --regid=1000 --groups="$JOURNAL_GID" \
        /usr/bin/python3 "$run/flood-client.py" pipeline "$sock" 100 io.vpopguard.Manager.ListBans "$run/read-pipeline"
piper=$VG_LAST_PID
# logged_keeping_peak TEXT: the daemon logged TEXT; meanwhile peak follows its RssAnon.
logged_keeping_peak() {
        local a
        vg_daemon_ok
        a=$(anon_kb)
        ((a > peak)) && peak=$a
        grep -qF "$1" "$tmp/daemon.log"
}
peak=0
vg_poll 120 logged_keeping_peak 'too much unread output, disconnecting'
vg_daemon_answers || vg_fail "root is not answered after the pipelining client was dropped"
vg_log_failures 192.0.2.100
vg_poll 30 vg_banned banned4 192.0.2.100
: >"$run/read-pipeline"
finished "$piper" "$tmp/pipeline.log"
read -r _ replies _ bytes _ end < <(grep '^replies ' "$tmp/pipeline.log") ||
        vg_fail "pipelining client: $(cat "$tmp/pipeline.log")"
[[ $end == EOF || $end == RESET ]] || vg_fail "the pipelining client's connection was not closed: $(cat "$tmp/pipeline.log")"
((replies < 100)) || vg_fail "the pipelining client got all its replies: $(cat "$tmp/pipeline.log")"
vg_log "pipelined ListBans(): dropped after $replies replies ($bytes bytes) reached the client;" \
        "RssAnon $base kB before, peak $peak kB"
within "$peak" $((base + OUTPUT_MAX_KB + 65536)) "one connection's unread output, from $base kB"
if [[ -z $asan ]]; then
        fallen() { (($(anon_kb) <= base + 16384)); }
        vg_poll 30 fallen
fi

# --- Four UIDs pipeline 25 ListBans() each without reading (about 3 MB per reply), each below its
# 128 MiB but together over the 256 MiB all clients may leave unread: the one with the most is
# disconnected, the others keep their replies.
base=$(anon_kb)
pipers=()
for uid in 1001 1002 1003 1004; do
        vg_spawn "$tmp/pipeline-$uid.log" setpriv --reuid="$uid" --regid="$uid" --groups="$JOURNAL_GID" \
                /usr/bin/python3 "$run/flood-client.py" pipeline "$sock" 25 io.vpopguard.Manager.ListBans \
                "$run/read-pipeline-$uid"
        pipers+=("$VG_LAST_PID")
done
peak=0
# Each UID but root gets 10 % of a CPU: under the sanitizers on a busy machine, building 256 MiB of
# replies at that pace takes minutes.
vg_poll 400 logged_keeping_peak 'the most unread output while all clients together have too much, disconnecting'
vg_daemon_answers || vg_fail "root is not answered while four clients leave their replies unread"
vg_log_failures 192.0.2.101
vg_poll 30 vg_banned banned4 192.0.2.101
closed=0
for uid in 1001 1002 1003 1004; do
        : >"$run/read-pipeline-$uid"
done
for i in 0 1 2 3; do
        uid=$((1001 + i))
        finished "${pipers[i]}" "$tmp/pipeline-$uid.log"
        read -r _ replies _ _ _ end < <(grep '^replies ' "$tmp/pipeline-$uid.log") ||
                vg_fail "pipelining client of UID $uid: $(cat "$tmp/pipeline-$uid.log")"
        if [[ $end == EOF || $end == RESET ]] && ((replies < 25)); then
                closed=$((closed + 1))
        else
                vg_assert_eq 25 "$replies" "replies of the pipelining client of UID $uid that was not disconnected"
        fi
done
((closed >= 1)) || vg_fail "no pipelining client was disconnected though together they left over 256 MiB unread"
((closed <= 2)) || vg_fail "$closed of the four pipelining clients were disconnected; two fit the budget"
vg_log "four pipelining clients: $closed disconnected; RssAnon $base kB before, peak $peak kB"
within "$peak" $((base + 2 * OUTPUT_MAX_KB + 65536)) "unread output of all clients, from $base kB"

# The daemon still stops cleanly (under AddressSanitizer: without leaks or errors at exit).
vg_term_daemon 120

vg_log "all checks passed"
