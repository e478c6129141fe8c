# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # shares the variables of run-bench.sh
#
# fail2ban for run-bench.sh --with-fail2ban (sourced; runs in the benchmark's namespaces).
#
# The jail is vpopguard's shipped one translated: the same five FailRegex= patterns, each with
# the "[HOST ]IDENTIFIER[PID]: " that fail2ban's systemd backend puts in front of MESSAGE and
# <ADDR> (addresses only) for <HOST>; journalmatch SYSLOG_IDENTIFIER=vpopmail + =vchkpw;
# maxretry 3 and the benchmark's findtime. fail2ban cannot read vchkpw's '_' IPv6 spelling, so
# its workloads are IPv4 only. The action adds each ban as an element with a timeout to a set
# of a table like vpopguard's (fail2ban's own nftables action has no timeouts and one rule per
# jail); fail2ban runs one `nft` process per ban, as its stock actions do. Its database is a
# file as on a real installation, private to the run. bantime is 14d: fail2ban drops bans whose
# log time plus bantime is past, and the cached journals are up to a week old.

F2B_BAN_SEC=1209600

# f2b_config NAME BACKEND: writes the configuration directory $T/f2b-NAME.
f2b_config() {
        local dir=$T/f2b-$1 backend=$2
        rm -rf "$dir"
        mkdir -p "$dir/filter.d" "$dir/action.d" "$dir/run"
        cat >"$dir/fail2ban.conf" <<EOF
[Definition]
loglevel = INFO
logtarget = $dir/fail2ban.log
syslogsocket = auto
socket = $dir/run/fail2ban.sock
pidfile = $dir/run/fail2ban.pid
dbfile = $dir/fail2ban.sqlite3
dbpurgeage = 1d
EOF
        {
                echo "[Definition]"
                echo "failregex ="
                sed -n 's/^FailRegex=\^/        ^(?:\\S+ )?(?:vpopmail|vchkpw)(?:\\[\\d+\\])?: /p' \
                        "$VG_SRC_DIR/conf.d/10-vpopmail.conf" | sed 's/<HOST>/<ADDR>/'
                echo "ignoreregex ="
        } >"$dir/filter.d/vpopguard-bench.conf"
        cat >"$dir/action.d/vpopguard-bench-nftables.conf" <<'EOF'
[Definition]
actionstart = nft 'add table inet f2b; add set inet f2b banned4 { type ipv4_addr; flags timeout; }; add set inet f2b banned6 { type ipv6_addr; flags timeout; }; add chain inet f2b input { type filter hook input priority filter - 10; policy accept; }; add rule inet f2b input ip saddr @banned4 drop; add rule inet f2b input ip6 saddr @banned6 drop'
actionstop =
actioncheck =
actionban = nft add element inet f2b <addr_set> '{ <ip> timeout <bantime>s }'
actionunban = nft delete element inet f2b <addr_set> '{ <ip> }' || true

[Init]
addr_set = banned4

[Init?family=inet6]
addr_set = banned6
EOF
        cat >"$dir/jail.conf" <<EOF
[DEFAULT]
bantime = $F2B_BAN_SEC
findtime = $FIND_SEC
maxretry = 3
usedns = no
ignoreip = 127.0.0.1/8 ::1

[vpopmail]
enabled = true
backend = $backend
journalmatch = SYSLOG_IDENTIFIER=vpopmail + SYSLOG_IDENTIFIER=vchkpw
filter = vpopguard-bench
action = vpopguard-bench-nftables
EOF
        echo "$dir"
}

f2b_client() { # DIR ARGS...
        local dir=$1
        shift
        fail2ban-client -c "$dir" -s "$dir/run/fail2ban.sock" "$@"
}

f2b_jail_up() {
        f2b_client "$1" status vpopmail >/dev/null 2>&1
}

# f2b_start NAME [BACKEND]: fail2ban-server in the foreground; TARGET_PID, TARGET_LOG.
f2b_start() {
        local dir
        dir=$(f2b_config "$1" "${2:-systemd}")
        TARGET_KIND=fail2ban
        TARGET_LOG=$dir/server.log
        vg_spawn "$TARGET_LOG" fail2ban-server -f -x -c "$dir" -s "$dir/run/fail2ban.sock" -p "$dir/run/fail2ban.pid"
        TARGET_PID=$VG_LAST_PID
        F2B_DIR=$dir
        wait_until 60 f2b_jail_up "$dir"
}

f2b_bans_logged() { # DIR N: the log shows N bans and that the journal was read to its end
        grep -q 'Jail is in operation now' "$1/fail2ban.log" 2>/dev/null &&
                [[ $(grep -c '\] Ban ' "$1/fail2ban.log") -ge $2 ]]
}

f2b_set_has() { # N: the set holds at least N elements
        [[ $(set_elements f2b | wc -l) -ge $1 ]]
}

# f2b_backlog SCENARIO DATASET RUN: fail2ban over the journal directory, from its start until
# it logged every expected ban after reading the journal to its end.
f2b_backlog() {
        local scen=$1 ds=$2 total n t0 t1 c1 failures
        total=$(cat "$ds/total")
        n=$(wc -l <"$ds/expect")
        t0=$EPOCHREALTIME
        if ! f2b_start "$scen-$3" "systemd[journalpath=\"$ds/journal\"]"; then
                error "$scen" fail2ban "did not start: $(tail -n 3 "$TARGET_LOG")"
                stop_target
                return
        fi
        if ! wait_until 1800 f2b_bans_logged "$F2B_DIR" "$n"; then
                error "$scen" fail2ban "did not ban $n addresses within 1800 s"
                stop_target
                return
        fi
        t1=$EPOCHREALTIME
        c1=$(cpu_ticks "$TARGET_PID")
        # Its nft processes may still be running for the last bans.
        wait_until 30 f2b_set_has "$n" || true
        check_bans "$scen" fail2ban "$ds/expect"
        stop_target
        failures=$(floor_value "$ds/floor.out" failures)
        record "$scen" fail2ban wall_sec "$(calc "$t1 - $t0")"
        record "$scen" fail2ban entries_per_sec "$(calc "$total / ($t1 - $t0)")"
        record "$scen" fail2ban vpopmail_entries_per_sec "$(calc "$(floor_value "$ds/floor.out" entries) / ($t1 - $t0)")"
        record "$scen" fail2ban bans_per_sec "$(calc "$n / ($t1 - $t0)")"
        record "$scen" fail2ban cpu_sec "$(calc "$c1 / $CLK_TCK")"
        record "$scen" fail2ban cpu_us_per_failure "$(calc "$c1 * 1e6 / $CLK_TCK / $failures")"
}

# The backlog on an IPv4-only journal, for all three: fail2ban is measured on a smaller one.
f2b_scenario_backlog() {
        local ds run target total=$F2B_BACKLOG_ENTRIES
        ds=$(dataset backlog-ipv4 --seed=2 --ipv6=0 --entries="$total" --attackers="$F2B_BACKLOG_ATTACKERS" \
                --failures=1-6 --successes="$F2B_BACKLOG_INNOCENT" --benign="$F2B_BACKLOG_INNOCENT" \
                --decoys="$F2B_BACKLOG_INNOCENT" --start-usec="$ANCHOR_USEC")
        echo "$total" >"$ds/total"
        log "backlog-ipv4: $total entries, $(wc -l <"$ds/expect") bans (vpopguardd, floor, floor-events, fail2ban)"
        for ((run = 1; run <= REPEAT; run++)); do
                for target in vpopguardd floor floor-events fail2ban; do
                        [[ $target != fail2ban || $run -le $F2B_REPEAT ]] || continue
                        backlog_once backlog-ipv4 "$target" "$ds" "$total" "$run"
                done
        done
}
