# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # shares the variables of run-bench.sh
#
# The scenarios of run-bench.sh (sourced in its namespaces). Each records "scenario target
# metric value" lines with record(), and wrong results with error().

backlog_once() { # SCENARIO TARGET DATASET TOTAL-ENTRIES RUN
        local scen=$1 target=$2 ds=$3 total=$4 run=$5 log=$T/$1-$2-$5.log failures real user sys bans
        local cmd
        # A fresh system journal each time: the daemon's first start reads back the ban events
        # of the last FindTime (manager-recover.c), which would include those of earlier runs.
        fresh_journald
        nft_reset
        case $target in
        vpopguardd)
                rm -rf "$T/state-backlog"
                daemon_cmd "vpopguardd-$scen-$run" --config="${BACKLOG_CONF:-$CONF}" --state-directory="$T/state-backlog" \
                        --journal-directory="$ds/journal" --no-follow
                cmd=("${DAEMON_CMD[@]}")
                ;;
        floor | floor-events)
                cmd=("$FLOOR" --directory="$ds/journal" --find-time="$FIND_SEC" --ban-time="$BAN_SEC")
                [[ $target == floor ]] || cmd+=(--events)
                ;;
        fail2ban)
                f2b_backlog "$scen" "$ds" "$run"
                return
                ;;
        esac
        TIMEFORMAT='%3R %3U %3S'
        if ! { time "${cmd[@]}" >"$log" 2>&1; } 2>"$T/time"; then
                [[ $target != vpopguardd ]] || daemon_log "vpopguardd-$scen-$run" >>"$log"
                error "$scen" "$target" "exited with an error: $(tail -n 3 "$log")"
                return
        fi
        read -r real user sys <"$T/time"
        failures=$(floor_value "$ds/floor.out" failures)
        check_bans "$scen" "$target" "${BACKLOG_EXPECT:-$ds/expect}"
        if [[ $scen == backlog && $run == 1 ]]; then
                keep_ban_entry "$target" "$(head -n 1 "$ds/expect")"
        fi
        bans=$(wc -l <"$ds/expect")
        record "$scen" "$target" wall_sec "$real"
        record "$scen" "$target" entries_per_sec "$(calc "$total / $real")"
        record "$scen" "$target" vpopmail_entries_per_sec "$(calc "$(floor_value "$ds/floor.out" entries) / $real")"
        record "$scen" "$target" bans_per_sec "$(calc "$bans / $real")"
        record "$scen" "$target" cpu_sec "$(calc "$user + $sys")"
        record "$scen" "$target" cpu_us_per_failure "$(calc "($user + $sys) * 1e6 / $failures")"
}

scenario_backlog() {
        local ds run target total=$BACKLOG_ENTRIES
        ds=$(dataset backlog --seed=1 --entries="$total" --attackers="$BACKLOG_ATTACKERS" --failures=1-6 \
                --successes="$BACKLOG_INNOCENT" --benign="$BACKLOG_INNOCENT" --decoys="$BACKLOG_INNOCENT" \
                --start-usec="$ANCHOR_USEC")
        log "backlog: $total entries, $(floor_value "$ds/floor.out" entries) vpopmail, $(wc -l <"$ds/expect") bans"
        record backlog - entries "$total"
        record backlog - expected_bans "$(wc -l <"$ds/expect")"
        for ((run = 1; run <= REPEAT; run++)); do
                for target in "${TARGETS[@]}" floor-events; do
                        backlog_once backlog "$target" "$ds" "$total" "$run"
                done
        done
        compare_ban_entries backlog
        BACKLOG_DATASET=$ds
}

# keep_ban_entry TARGET ADDRESS: the ban entry that vpopguardd or the floor+events logged for
# ADDRESS, as `journalctl -o json` shows it, into $T/ban-entry-TARGET.json.
keep_ban_entry() {
        local id
        case $1 in
        vpopguardd) id=$VPOPGUARD_MESSAGE_BAN ;;
        floor-events) id=$FLOOR_MESSAGE_BAN ;;
        *) return 0 ;;
        esac
        wait_until 10 ban_entry_logged "$id" "$2" "$T/ban-entry-$1.json" ||
                error backlog "$1" "no ban entry with MESSAGE_ID=$id for $2 in the journal"
}

ban_entry_logged() { # MESSAGE-ID ADDRESS FILE
        journalctl -q --no-pager -o json -n 1 "MESSAGE_ID=$1" "VPOPGUARD_ADDRESS=$2" >"$3" 2>/dev/null && [[ -s $3 ]]
}

# compare_ban_entries SCENARIO: the floor+events' ban entry must be the daemon's (the same
# field names, sizes within 10 %, the same causes' cursors: both ban the same address at the
# same failure of the same journal), or it is not the floor the daemon is held to.
compare_ban_entries() {
        local out k v
        [[ -s $T/ban-entry-vpopguardd.json && -s $T/ban-entry-floor-events.json ]] || return 0
        if ! out=$(python3 "$REPORT" events "$T/ban-entry-vpopguardd.json" "$T/ban-entry-floor-events.json"); then
                error "$1" floor-events "its ban entry is not the daemon's: $(grep -v ':ban_entry_' <<<"$out" | tr '\n' ' ')"
                return
        fi
        while read -r k v; do
                record "$1" "${k%%:*}" "${k#*:}" "$v"
        done <<<"$out"
}

# The cost of counting per /64 (IPv6Prefix=64, the default) over counting per address
# (IPv6Prefix=128), on a backlog whose IPv6 addresses each lie in a /64 of their own (as
# vpopmail's logs name single addresses), so both ban the same attackers: one run, the two
# configurations in turn. At 64 the bans are the attackers' /64s.
scenario_prefix() {
        local ds run total=$BACKLOG_ENTRIES expect64=$T/expect-prefix64
        ds=$(dataset backlog-prefix --seed=1 --entries="$total" --attackers="$BACKLOG_ATTACKERS" --failures=1-6 \
                --successes="$BACKLOG_INNOCENT" --benign="$BACKLOG_INNOCENT" --decoys="$BACKLOG_INNOCENT" \
                --ipv6=50 --ipv6-spread=1 --start-usec="$ANCHOR_USEC")
        python3 -c 'import ipaddress, sys
for line in sys.stdin:
    a = line.strip()
    print(ipaddress.ip_network(a + "/64", strict=False) if ":" in a else a)' <"$ds/expect" | LC_ALL=C sort >"$expect64"
        log "backlog-prefix: $total entries, $(floor_value "$ds/floor.out" entries) vpopmail, $(wc -l <"$ds/expect") bans"
        record backlog-ipv6prefix128 - entries "$total"
        record backlog-ipv6prefix64 - entries "$total"
        for ((run = 1; run <= REPEAT; run++)); do
                BACKLOG_CONF=$CONF_PREFIX128 backlog_once backlog-ipv6prefix128 vpopguardd "$ds" "$total" "$run"
                BACKLOG_CONF=$CONF_PREFIX64 BACKLOG_EXPECT=$expect64 \
                        backlog_once backlog-ipv6prefix64 vpopguardd "$ds" "$total" "$run"
        done
}

# follow_once SCENARIO TARGET RATE RUN LOADGEN-ARGS...: a fresh journald, the target following
# it, the loadgen's entries plus the sentinel written by the sender at RATE (0: flat out).
follow_once() {
        local scen=$1 target=$2 rate=$3 run=$4 name=$1-$2-$4 expect c0 c1 v0 v1 out lat failures first last ban k v
        local wait=120
        shift 4
        if [[ $target == fail2ban ]]; then
                # fail2ban cannot read vchkpw's '_' IPv6 spelling, and bans ~10 addresses/s.
                set -- "$@" --ipv6=0
                wait=1800
        fi
        expect=$T/expect-$name
        "$LOADGEN" --expect="$expect" --find-time="$FIND_SEC" "$@"
        fresh_journald
        nft_reset
        if measures_latency "$scen" && ! start_monitor "$name" "$target"; then
                error "$scen" "$target" "nft monitor does not report element additions"
                return 0
        fi
        start_target "$target" "$name" ${FLOOD_KINDS+--socket="$FLOOD_SOCKET"} ||
                { [[ -z $MONITOR_PID ]] || stop_monitor; return 0; }
        if [[ -n ${FLOOD_KINDS:-} ]] && ! flood_start "$name"; then
                error "$scen" "$target" "the varlink flood did not get going: $(tail -n 3 "$T/flood-$name.log")"
                stop_target
                [[ -z $MONITOR_PID ]] || stop_monitor
                return 0
        fi
        c0=$(cpu_ns "$TARGET_PID") v0=$(status_field "$TARGET_PID" voluntary_ctxt_switches)
        # VPOPGUARD_BENCH_ATTACH=CMD (a profiler, e.g. a script running `perf record -p PID -o OUT.perf`):
        # "CMD PID OUT" runs while the entries are written, OUT being VPOPGUARD_BENCH_ATTACH_OUT/NAME;
        # SIGINT ends it. What it costs the target counts in the target's CPU.
        local attach_pid=
        if [[ -n ${VPOPGUARD_BENCH_ATTACH:-} ]]; then
                $VPOPGUARD_BENCH_ATTACH "$TARGET_PID" "$VPOPGUARD_BENCH_ATTACH_OUT/$name" \
                        >"$VPOPGUARD_BENCH_ATTACH_OUT/$name.log" 2>&1 &
                attach_pid=$!
                sleep 1 # attached before the first entry
        fi
        out=$T/send-$name.out
        { "$LOADGEN" --export --minimal-fields --start-usec=now "$@"; sentinel_export; } |
                "$SEND" --rate="$rate" --find-time="$FIND_SEC" --triggers="$T/triggers-$name" \
                        --wait-table="$(table_of "$target")" --wait-timeout="$wait" >"$out"
        c1=$(cpu_ns "$TARGET_PID") v1=$(status_field "$TARGET_PID" voluntary_ctxt_switches)
        if [[ -n $attach_pid ]]; then
                kill -INT "$attach_pid" 2>/dev/null || true
                wait "$attach_pid" || true
        fi
        if [[ $(floor_value "$out" last_ban_usec) == 0 ]]; then
                error "$scen" "$target" "the sentinel was not banned within $wait s of the last write"
        fi
        # The sender's own judgement (the floor's matcher) must agree with the loadgen.
        grep -v " $SENTINEL\$" "$T/triggers-$name" | cut -d' ' -f2 | LC_ALL=C sort >"$T/triggered-$name"
        cmp -s "$expect" "$T/triggered-$name" || error "$scen" sender "its failures differ from the loadgen's --expect"
        if [[ -n $MONITOR_PID ]]; then
                wait_until 10 grep -q " $SENTINEL " "$MONITOR_LOG" || true
                stop_monitor
        fi
        check_bans "$scen" "$target" "$expect"
        [[ -z ${FLOOD_KINDS:-} ]] || flood_stop "$scen" "$target" "$name"
        stop_target
        failures=$FAILURES_IN_STREAM
        record "$scen" "$target" cpu_ms "$(calc "($c1 - $c0) / 1e6")"
        record "$scen" "$target" cpu_us_per_failure "$(calc "($c1 - $c0) / 1e3 / $failures")"
        # Wakeups: at low rates the CPU goes mostly to waking up, and a busy machine makes each
        # wakeup dearer (cold caches); their number does not depend on the load.
        record "$scen" "$target" wakeups "$((v1 - v0))"
        first=$(floor_value "$out" first_write_usec)
        last=$(floor_value "$out" last_write_usec)
        ban=$(floor_value "$out" last_ban_usec)
        record "$scen" "$target" write_sec "$(calc "($last - $first) / 1e6")"
        if [[ $ban != 0 ]]; then
                record "$scen" "$target" all_banned_sec "$(calc "($ban - $first) / 1e6")"
                record "$scen" "$target" after_last_write_sec "$(calc "($ban - $last) / 1e6")"
        fi
        if measures_latency "$scen"; then
                mkdir -p "$T/cdf/$scen"
                lat=$(python3 "$REPORT" latency "$T/triggers-$name" "$MONITOR_LOG" "$(table_of "$target")" "$SENTINEL" \
                        "$T/cdf/$scen/$target.$run.json")
                while read -r k v; do
                        record "$scen" "$target" "$k" "$v"
                done <<<"$lat"
        fi
}

# The per-ban latency: live (ban time against the rate's pace) and bursts (how long each of a
# flood's bans waits behind the others).
measures_latency() { # SCENARIO
        [[ $1 == live-* || $1 == burst-* || $1 == contended-* ]]
}

# The varlink clients of the contended scenario: UID 1000 (with FLOOD_GROUPS, setpriv's group
# arguments) keeps VARLINK_CONNECTIONS_PER_UID_MAX connections busy with FLOOD_KINDS
# (tests/bench/varlink-flood.py) from the start of the target to the end of its run.
FLOOD_SOCKET=/run/vg-bench-flood/io.vpopguard.Manager
flood_start() { # NAME
        rm -f "${FLOOD_SOCKET%/*}/stop"
        # shellcheck disable=SC2086 # setpriv's group arguments
        vg_spawn "$T/flood-$1.log" setpriv --reuid=1000 --regid=1000 $FLOOD_GROUPS /usr/bin/python3 \
                "${FLOOD_SOCKET%/*}/varlink-flood.py" "$FLOOD_SOCKET" 64 8 "${FLOOD_SOCKET%/*}/stop" $FLOOD_KINDS
        FLOOD_PID=$VG_LAST_PID
        wait_until 60 grep -qx ready "$T/flood-$1.log"
}

flood_stop() { # SCENARIO TARGET NAME
        local replies closed min cpu
        cpu=$(cpu_ticks "$FLOOD_PID")
        : >"${FLOOD_SOCKET%/*}/stop"
        wait_until 60 vg_pid_exited "$FLOOD_PID" || error "$1" "$2" "the varlink flood did not stop"
        vg_kill "$FLOOD_PID" 1
        read -r _ replies _ _ _ closed _ min < <(grep '^replies ' "$T/flood-$3.log") ||
                { error "$1" "$2" "the varlink flood failed: $(tail -n 3 "$T/flood-$3.log")"; return; }
        record "$1" "$2" flood_replies "$replies"
        record "$1" "$2" flood_connections_closed "$closed"
        record "$1" "$2" flood_cpu_ms "$(calc "$cpu * 1000 / $CLK_TCK")"
        record "$1" "$2" flood_min_replies_per_connection "$min"
        ((min > 0)) || error "$1" "$2" "a connection of the varlink flood got no reply"
}

# contended-R-VARIANT: the live attack at R failures/s (nothing but failures) with nobody else
# on the varlink socket (alone), while UID 1000 without groups asks what anybody may (plain:
# GetStatus, the interface description, 8 KiB messages as slow to parse as JSON gets), while
# UID 1000 in systemd-journal asks for the lists that grow with the attack (journal: ListBans,
# ListFailures, GetStatus), and while UID 1000 sends what was worst before issue #11 (regex:
# GetStatus and 64 KiB TestMessage() calls that run into PCRE2's match limit).
scenario_contended() {
        local rate=1000 attackers run variant journal_gid
        attackers=$((rate * CONTENDED_SECONDS / 3))
        journal_gid=$(getent group systemd-journal | cut -d: -f3) || { error contended - "no group systemd-journal"; return; }
        log "contended-$rate: $((attackers * 3)) failures in ${CONTENDED_SECONDS}s, alone and with 64 connections of UID 1000"
        FAILURES_IN_STREAM=$((attackers * 3))
        # In the private /run, where UID 1000 may reach the socket and read the client.
        mkdir -p "${FLOOD_SOCKET%/*}"
        cp "$BENCH_DIR/varlink-flood.py" "${FLOOD_SOCKET%/*}/"
        chmod 0755 "${FLOOD_SOCKET%/*}"
        chmod 0644 "${FLOOD_SOCKET%/*}/varlink-flood.py"
        for ((run = 1; run <= REPEAT; run++)); do
                for variant in alone plain journal regex; do
                        case $variant in
                        alone) FLOOD_KINDS='' FLOOD_GROUPS='' ;;
                        plain) FLOOD_KINDS="status describe parse" FLOOD_GROUPS=--clear-groups ;;
                        journal) FLOOD_KINDS="bans failures status" FLOOD_GROUPS=--groups=$journal_gid ;;
                        regex) FLOOD_KINDS="status regex" FLOOD_GROUPS=--clear-groups ;;
                        esac
                        follow_once "contended-$rate-$variant" vpopguardd "$rate" "$run" --seed="$run" \
                                --attackers="$attackers" --failures=3 --cluster="$rate" --noise=0 --successes=0 \
                                --benign=0 --decoys=0
                done
        done
        unset FLOOD_KINDS FLOOD_GROUPS
}

# VPOPGUARD_BENCH_LIVE_RATES="100 ...": only these of LIVE_RATES. VPOPGUARD_BENCH_BASELINE=BUILD-DIR:
# that build's vpopguardd runs as one more target, vpopguardd-baseline (in the JSON only): an A/B
# comparison under the same load of the machine, which on a shared one varies more than the
# difference. Use a --repeat of the number of targets: each run starts with the next one.
scenario_live() {
        local i rate seconds entries attackers inn run target targets
        for i in "${!LIVE_RATES[@]}"; do
                rate=${LIVE_RATES[i]} seconds=${LIVE_SECONDS[i]}
                if [[ -n ${VPOPGUARD_BENCH_LIVE_RATES:-} && " $VPOPGUARD_BENCH_LIVE_RATES " != *" $rate "* ]]; then
                        continue
                fi
                entries=$((rate * seconds)) attackers=$((rate * seconds / 20)) inn=$((rate * seconds / 50))
                targets=("${TARGETS[@]}" floor-events)
                [[ -z ${VPOPGUARD_BENCH_BASELINE:-} ]] || targets+=(vpopguardd-baseline)
                if ((arg_f2b)) && [[ " ${F2B_LIVE_RATES[*]} " == *" $rate "* ]]; then
                        targets+=(fail2ban)
                fi
                log "live-$rate: $entries entries in ${seconds}s, $attackers attackers (${targets[*]})"
                FAILURES_IN_STREAM=$((attackers * 3))
                for ((run = 1; run <= REPEAT; run++)); do
                        # Each run starts with another target: none is always first after a pause.
                        for target in "${targets[@]:(run - 1) % ${#targets[@]}}" "${targets[@]:0:(run - 1) % ${#targets[@]}}"; do
                                [[ $target != fail2ban || $run -le $F2B_REPEAT ]] || continue
                                follow_once "live-$rate" "$target" "$rate" "$run" --seed="$run" --entries="$entries" \
                                        --attackers="$attackers" --failures=3 --cluster="$rate" --successes="$inn" \
                                        --benign="$inn" --decoys="$inn"
                        done
                done
        done
}

# VPOPGUARD_BENCH_BURSTS="100000" runs only the bursts of these sizes, VPOPGUARD_BENCH_BURST_TARGETS
# only these targets; with VPOPGUARD_BENCH_BURST_KEEP=DIR each run's write times (triggers-*) and
# stamped `nft monitor` lines (monitor-*) are copied there, for the per-ban latency over time.
scenario_burst() {
        local n run target targets bursts=("${BURSTS[@]}")
        [[ -z ${VPOPGUARD_BENCH_BURSTS:-} ]] || read -ra bursts <<<"$VPOPGUARD_BENCH_BURSTS"
        for n in "${bursts[@]}"; do
                targets=("${TARGETS[@]}" floor-events)
                [[ -z ${VPOPGUARD_BENCH_BURST_TARGETS:-} ]] || read -ra targets <<<"$VPOPGUARD_BENCH_BURST_TARGETS"
                if ((arg_f2b)) && [[ " ${F2B_BURSTS[*]} " == *" $n "* ]]; then
                        targets+=(fail2ban)
                fi
                log "burst-$n: $n attackers x 3 failures, flat out (${targets[*]})"
                FAILURES_IN_STREAM=$((n * 3))
                for ((run = 1; run <= REPEAT; run++)); do
                        for target in "${targets[@]}"; do
                                [[ $target != fail2ban || $run -le $F2B_REPEAT ]] || continue
                                follow_once "burst-$n" "$target" 0 "$run" --seed="$run" --attackers="$n" --failures=3 \
                                        --noise=0 --successes=0 --benign=0 --decoys=0
                                [[ -z ${VPOPGUARD_BENCH_BURST_KEEP:-} ]] ||
                                        cp "$T/triggers-burst-$n-$target-$run" "$T/monitor-burst-$n-$target-$run.txt" \
                                                "$VPOPGUARD_BENCH_BURST_KEEP/" || true
                        done
                done
        done
}

idle_once() { # TARGET KIND
        local target=$1 kind=$2 scen=idle-$2 c0 c1 v0 v1 n0 n1 t0 t1 minutes
        fresh_journald
        nft_reset
        start_target "$target" "$scen" || return 0
        sleep 0.5 # past the start-up work
        c0=$(cpu_ns "$TARGET_PID") v0=$(status_field "$TARGET_PID" voluntary_ctxt_switches)
        n0=$(status_field "$TARGET_PID" nonvoluntary_ctxt_switches) t0=$EPOCHREALTIME
        if [[ $kind == noise ]]; then
                # Other services at 10 entries/s: wakes every journal reader, matches nothing.
                "$LOADGEN" --live --noise=100 --entries=$((10 * IDLE_SECONDS)) --rate=10 --attackers=0 \
                        --successes=0 --benign=0 --decoys=0
        else
                sleep "$IDLE_SECONDS"
        fi
        c1=$(cpu_ns "$TARGET_PID") v1=$(status_field "$TARGET_PID" voluntary_ctxt_switches)
        n1=$(status_field "$TARGET_PID" nonvoluntary_ctxt_switches) t1=$EPOCHREALTIME
        stop_target
        minutes=$(calc "($t1 - $t0) / 60")
        record "$scen" "$target" cpu_ms_per_min "$(calc "($c1 - $c0) / 1e6 / $minutes")"
        record "$scen" "$target" wakeups_per_min "$(calc "($v1 - $v0) / $minutes")"
        record "$scen" "$target" preempted_per_min "$(calc "($n1 - $n0) / $minutes")"
}

scenario_idle() {
        local target kind
        log "idle: ${IDLE_SECONDS}s with no journal traffic, then ${IDLE_SECONDS}s of unrelated entries at 10/s"
        for kind in quiet noise; do
                for target in "${TARGETS[@]}"; do
                        idle_once "$target" "$kind"
                done
        done
}

daemon_tracked() { # N: the daemon tracks N addresses
        local n
        n=$("$CTL" --socket="$T/ctl.sock" --json status 2>/dev/null | jq -r '[.jails[]?.tracked] | add // 0' 2>/dev/null) ||
                return 1
        [[ $n == "$1" ]]
}

scenario_memory() {
        local n ds t0 rss v target
        for n in "${MEMORY_SIZES[@]}"; do
                ds=$(dataset "memory" --seed=1 --attackers="$n" --failures=1 --noise=0 --successes=0 --benign=0 \
                        --decoys=0 --start-usec="$ANCHOR_USEC")
                log "memory: $n addresses with one failure each"
                nft_reset
                t0=$EPOCHREALTIME
                BENCH_CONF=$CONF_MEMORY start_target vpopguardd "memory-$n" --journal-directory="$ds/journal" || continue
                if wait_until 600 daemon_tracked "$n"; then
                        rss=$(status_field "$TARGET_PID" RssAnon)
                        record "memory-$n" vpopguardd rss_anon_kib "$rss"
                        record "memory-$n" vpopguardd catchup_sec "$(calc "$EPOCHREALTIME - $t0")"
                        record "memory-$n" vpopguardd bytes_per_address "$(calc "$rss * 1024 / $n")"
                else
                        error "memory-$n" vpopguardd "does not track $n addresses after 600 s"
                fi
                stop_target
                # The floor+events keeps each failure's cursor, as the daemon does.
                for target in floor floor-events; do
                        "$FLOOR" --no-nft $([[ $target == floor ]] || echo --events) --directory="$ds/journal" \
                                --find-time="$FIND_SEC" >"$T/$target-memory-$n.out" 2>&1
                        v=$(floor_value "$T/$target-memory-$n.out" rss_anon_kib)
                        record "memory-$n" "$target" rss_anon_kib "$v"
                        record "memory-$n" "$target" bytes_per_address "$(calc "$v * 1024 / $n")"
                done
        done
}

# perf (or callgrind) of vpopguardd and the floor over the backlog journal: the top functions.
# profile_command TARGET: a fresh journald, table and state, then the command that replays the
# backlog for TARGET (vpopguardd or floor) in PROFILE_CMD.
profile_command() {
        fresh_journald
        nft_reset
        rm -rf "$T/state-profile"
        if [[ $1 == vpopguardd ]]; then
                daemon_cmd vpopguardd-profile --config="$CONF" --state-directory="$T/state-profile" \
                        --journal-directory="$BACKLOG_DATASET/journal" --no-follow
                PROFILE_CMD=("${DAEMON_CMD[@]}")
        else
                PROFILE_CMD=("$FLOOR" --directory="$BACKLOG_DATASET/journal" --find-time="$FIND_SEC")
        fi
}

scenario_profile() {
        local target comm out
        if perf record -e cpu-clock -o "$T/perf-probe.data" true >/dev/null 2>&1; then
                for target in vpopguardd floor; do
                        profile_command "$target"
                        perf record -e cpu-clock -F 2000 --call-graph=dwarf,16384 -o "$T/perf-$target.data" \
                                -- "${PROFILE_CMD[@]}" >"$T/perf-$target.log" 2>&1 || { error profile "$target" "perf record failed"; continue; }
                        comm=()
                        [[ $target != vpopguardd ]] || comm=(--comm vpopguardd)
                        perf report -i "$T/perf-$target.data" "${comm[@]}" --stdio --no-children --sort symbol,dso \
                                --percent-limit 0.5 -g none 2>/dev/null | grep -E '^ +[0-9]' | head -n 30 \
                                >"$T/profile-$target-self.txt" || true
                        # Inclusive time of the program's own functions (and libraries' named ones).
                        perf report -i "$T/perf-$target.data" "${comm[@]}" --stdio --children --sort symbol \
                                --percent-limit 0.5 -g none 2>/dev/null | grep -E '^ +[0-9]' |
                                grep -vE '\[k\]|\] 0x|_start|libc_start|main \(inlined\)' | head -n 40 \
                                >"$T/profile-$target-children.txt" || true
                done
        elif command -v valgrind >/dev/null; then
                for target in vpopguardd floor; do
                        profile_command "$target"
                        valgrind --tool=callgrind --trace-children=yes \
                                --callgrind-out-file="$T/callgrind-$target.%p.out" "${PROFILE_CMD[@]}" >"$T/callgrind-$target.log" 2>&1 ||
                                { error profile "$target" "callgrind failed"; continue; }
                        # The biggest output is the program's (the others are systemd-cat and sh).
                        out=$(find "$T" -maxdepth 1 -name "callgrind-$target.*.out" -printf "%s %p\n" | sort -rn | head -n 1 | cut -d" " -f2-)
                        callgrind_annotate "$out" 2>/dev/null | sed -n '/^Ir/,$p' | head -n 40 \
                                >"$T/profile-$target-self.txt" || true
                        callgrind_annotate --inclusive=yes "$out" 2>/dev/null | sed -n '/^Ir/,$p' | head -n 40 \
                                >"$T/profile-$target-children.txt" || true
                done
        else
                log "profile: neither perf nor valgrind works here, skipped"
        fi
}
