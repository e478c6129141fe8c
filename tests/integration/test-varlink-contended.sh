#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Local users cannot delay banning: while 64 connections of UID 1000 pipeline the most expensive
# calls they may make (GetStatus, the interface description, 8 KiB messages as slow to parse as
# JSON gets), an attack from the journal is banned completely, root is answered, and every one
# of the 64 connections is answered too (lower priority, not starvation). Then the same with UID
# 1000 in systemd-journal pipelining ListBans() and ListFailures(), whose replies grow with the
# attack. The sets must end up exactly as the load generator expects; nothing here is timed
# (tests/bench/run-bench.sh --only=contended measures the ban latency).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin contended "$@"
vg_require_commands nft jq logger setpriv getent /usr/bin/python3
loadgen=$(vg_loadgen)
conf=$tmp/vpopguard.conf
sock=/run/vpopguard/io.vpopguard.Manager
unset VPOPGUARD_SOCKET
CONNECTIONS=64 # VARLINK_CONNECTIONS_PER_UID_MAX
DEPTH=8
ATTACKERS=3000

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=1h BanTime=1h

# UID 1000 runs the client from here: the temporary and source directories may be closed to it.
run=/run/vg-contended
mkdir -p "$run"
cp "${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}/tests/bench/varlink-flood.py" "$run/"
chmod 0755 "$run"
chmod 0644 "$run/varlink-flood.py"
JOURNAL_GID=$(getent group systemd-journal | cut -d: -f3) || vg_skip "no group systemd-journal"

vg_start_journald

vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state"

# flood NAME SETPRIV-GROUP-ARGS KIND...: UID 1000's 64 connections, until $run/stop-NAME exists.
flood() {
        local name=$1 groups=$2
        shift 2
        # shellcheck disable=SC2086 # the group arguments of setpriv
        vg_spawn "$tmp/flood-$name.log" setpriv --reuid=1000 --regid=1000 $groups \
                /usr/bin/python3 "$run/varlink-flood.py" "$sock" "$CONNECTIONS" "$DEPTH" "$run/stop-$name" "$@"
        flooder=$VG_LAST_PID
        flooding() {
                grep -qx ready "$tmp/flood-$name.log" && return 0
                vg_pid_alive "$flooder" || vg_fail "flood $name: $(cat "$tmp/flood-$name.log")"
                return 1
        }
        vg_poll 60 flooding
}

# stop_flood NAME: every connection was answered, with the errors expected of the calls.
stop_flood() {
        local name=$1 rc=0 replies errors closed min
        : >"$run/stop-$name"
        vg_poll 60 vg_pid_exited "$flooder"
        wait "$flooder" || rc=$?
        vg_kill "$flooder" 1 # only forgets it: it has been reaped
        vg_assert_eq 0 "$rc" "flood $name ($(cat "$tmp/flood-$name.log"))"
        read -r _ replies _ errors _ closed _ min < <(grep '^replies ' "$tmp/flood-$name.log") ||
                vg_fail "flood $name: $(cat "$tmp/flood-$name.log")"
        vg_log "flood $name: $replies replies ($errors errors), $closed connections closed by the daemon," \
                "at least $min per connection"
        vg_assert_eq 0 "$closed" "connections of flood $name closed by the daemon"
        ((min > 0)) || vg_fail "a connection of flood $name got no reply"
        LAST_ERRORS=$errors LAST_REPLIES=$replies
}

# attack SEED: the load generator's attackers, flat out, as vchkpw would log them; waits until
# every expected address is banned and compares the set.
attack() {
        local seed=$1 rc=0
        vg_spawn "$tmp/loadgen-$seed.log" "$loadgen" --live --expect="$tmp/expect-$seed" --attackers="$ATTACKERS" \
                --failures=3 --noise=0 --decoys=0 --successes=0 --benign=0 --ipv6=0 --seed="$seed"
        gen=$VG_LAST_PID
        # Root is answered while the flood and the attack go on.
        "$ctl" status >"$tmp/status.out" 2>&1 || vg_fail "root's status during the flood: $(cat "$tmp/status.out")"
        vg_poll 120 vg_pid_exited "$gen"
        wait "$gen" || rc=$?
        vg_kill "$gen" 1
        vg_assert_eq 0 "$rc" "loadgen $seed ($(cat "$tmp/loadgen-$seed.log"))"
        vg_assert_eq "$ATTACKERS" "$(wc -l <"$tmp/expect-$seed")" "attackers expected banned (seed $seed)"
        cat "$tmp"/expect-* | LC_ALL=C sort -u >"$tmp/want"
        complete() {
                vg_daemon_ok
                vg_nft_set_elements banned4 >"$tmp/got"
                cmp -s "$tmp/want" "$tmp/got"
        }
        vg_poll 300 complete
}

# --- UID 1000 without groups: what everybody may ask.
flood plain --clear-groups status describe parse
attack 1
stop_flood plain
((LAST_ERRORS > 0 && LAST_ERRORS < LAST_REPLIES)) ||
        vg_fail "flood plain: $LAST_ERRORS errors in $LAST_REPLIES replies; the parse calls fail, the others not"

# --- UID 1000 in systemd-journal: the replies that grow with the bans.
flood journal "--groups=$JOURNAL_GID" bans failures status
attack 2
stop_flood journal
vg_assert_eq 0 "$LAST_ERRORS" "errors of ListBans(), ListFailures() and GetStatus() for a member of systemd-journal"

vg_daemon_answers || vg_fail "root is not answered after the floods"
vg_term_daemon 60
vg_log "all checks passed"
