# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # shares the variables of run-bench.sh
#
# The scale scenario of run-bench.sh (sourced in its namespaces): vpopguardd with N active bans
# (single IPv4 and IPv6 addresses, IPv6Prefix=128) for each N of SCALE_SIZES:
#   state     the state file of N bans, written by the daemon's own writer (bench-state.c):
#             its size, the write time (fsync and rename included) and the time the daemon's
#             loader takes to read and check it (the loader alone, without building tables)
#   reboot    a start with that state file and an empty ruleset, until READY=1 (the restore
#             runs before it); then the kernel is asked for every one of the N addresses
#   kernel    the kernel's memory for the elements: /proc/meminfo Slab before and after
#   calls     ListBans (`vpopguardctl --json bans`) and GetStatus with N bans, while a prober
#             bans one new address at a time (nft-probe.py bans): its longest ban latency
#             during the ListBans against the longest before it
#   saves     the prober goes on (its bans make the state due again and again) until the daemon
#             has written the state file twice: the longest ban latency meanwhile, and how long
#             a save's child process lived (the write time in the daemon, fsync and rename
#             included)
#   flush     `nft flush ruleset` while running and the prober going on: time until the daemon
#             logs that it put every ban back (then the kernel is asked for all N), and the
#             longest ban latency meanwhile
#   restart   SIGTERM (which saves the state of N bans) and a start with the bans still in
#             the kernel, until READY=1
# Element checks go through nft-probe.py (one netlink lookup per address): nft lists a set in
# time quadratic in its size.

SCALE_PROBE=$BENCH_DIR/nft-probe.py

scale_count() { # EXPECT: the kernel's count of the addresses in EXPECT
        python3 "$SCALE_PROBE" count vpopguard banned4 banned6 <"$1" | awk '$1 == "present" { print $2 }'
}

slab_kib() {
        awk '$1 == "Slab:" { print $2 }' /proc/meminfo
}

# scale_latencies OUT FROM TO: the longest ban latency (ms) of the prober's bans in flight
# between FROM and TO (CLOCK_REALTIME seconds), and their number.
scale_latencies() {
        awk -v from="$2" -v to="$3" '{ w = $1 / 1e6; e = w + $2 / 1e6 }
                e >= from && w <= to { n++; if ($2 > max) max = $2 }
                END { printf "%.1f %d\n", max / 1000, n }' "$1"
}

scale_probe_lines() { # OUT N: the prober has written N lines
        [[ -f $1 ]] && (($(wc -l <"$1") >= $2))
}

# scale_saves_seen N: for wait_until, every 20 ms: true once the state file was replaced N times
# since scale_saves_reset. Meanwhile tracks the daemon's child process (a save in the
# background): SCALE_SAVE_LONGEST, the longest one seen (seconds), 0 if none.
scale_saves_reset() {
        SCALE_SAVE_INODE=$(stat -c %i "$1/state" 2>/dev/null) SCALE_SAVE_DIR=$1 SCALE_SAVES=0
        SCALE_SAVE_LONGEST=0 SCALE_SAVE_CHILD_SINCE=
}
scale_saves_seen() {
        local inode children
        children=$(<"/proc/$TARGET_PID/task/$TARGET_PID/children") 2>/dev/null || children=
        if [[ -n $children && -z $SCALE_SAVE_CHILD_SINCE ]]; then
                SCALE_SAVE_CHILD_SINCE=$EPOCHREALTIME
        elif [[ -z $children && -n $SCALE_SAVE_CHILD_SINCE ]]; then
                local x
                x=$(calc "$EPOCHREALTIME - $SCALE_SAVE_CHILD_SINCE")
                SCALE_SAVE_LONGEST=$(calc "(($x > $SCALE_SAVE_LONGEST) ? $x : $SCALE_SAVE_LONGEST)")
                SCALE_SAVE_CHILD_SINCE=
        fi
        inode=$(stat -c %i "$SCALE_SAVE_DIR/state" 2>/dev/null) || return 1
        if [[ $inode != "$SCALE_SAVE_INODE" ]]; then
                SCALE_SAVE_INODE=$inode
                ((++SCALE_SAVES))
        fi
        ((SCALE_SAVES >= $1))
}

scale_restored_logged() { # ID N: the daemon logged N times that it put every ban back
        (($(daemon_log "$1" | grep -c 'back into the nftables sets') >= $2))
}

scale_once() { # N
        local n=$1 scen=scale-$1 gen=$T/scale-gen-$1 state=$T/state-scale-$1 v t0 t1 s0 s1 c
        local stop=$T/scale-probe-stop out=$T/scale-probe-$1.txt bans lat base max k lb0
        mkdir -p "$gen"
        "$STATEGEN" --bans="$n" --directory="$gen" --expect="$gen/expect" >"$gen/out" ||
                { error "$scen" vpopguardd "the state file could not be written"; return; }
        record "$scen" vpopguardd state_write_sec "$(floor_value "$gen/out" write_sec)"
        record "$scen" vpopguardd state_load_sec "$(floor_value "$gen/out" load_sec)"
        v=$(floor_value "$gen/out" size_bytes)
        record "$scen" vpopguardd state_bytes "$v"
        record "$scen" vpopguardd state_bytes_per_ban "$(calc "$v / $n")"

        # A reboot: the state file, nothing in nftables.
        fresh_journald
        nft flush ruleset
        rm -rf "$state"
        mkdir -p "$state"
        cp "$gen/state" "$state/"
        s0=$(slab_kib)
        daemon_cmd "vpopguardd-$scen" --config="$CONF_SCALE" --state-directory="$state" --socket="$T/ctl.sock"
        t0=$EPOCHREALTIME
        vg_spawn_daemon "$T/$scen.log" "${DAEMON_CMD[@]}"
        TARGET_PID=$VG_DAEMON_PID TARGET_KIND=vpopguardd
        if ! wait_until 600 vg_daemon_ready; then
                daemon_log "vpopguardd-$scen" >>"$T/$scen.log"
                error "$scen" vpopguardd "not ready within 600 s: $(tail -n 3 "$T/$scen.log")"
                stop_target
                return
        fi
        t1=$EPOCHREALTIME
        record "$scen" vpopguardd restore_reboot_sec "$(calc "$t1 - $t0")"
        t0=$EPOCHREALTIME
        c=$(scale_count "$gen/expect")
        record "$scen" vpopguardd count_sec "$(calc "$EPOCHREALTIME - $t0")"
        record "$scen" vpopguardd restored_at_ready "$c"
        ((c == n)) || error "$scen" vpopguardd "$c of $n bans in the sets at READY=1"
        s1=$(slab_kib)
        record "$scen" vpopguardd kernel_slab_kib "$((s1 - s0))"
        record "$scen" vpopguardd kernel_bytes_per_element "$(calc "($s1 - $s0) * 1024 / $n")"
        record "$scen" vpopguardd rss_anon_kib "$(status_field "$TARGET_PID" RssAnon)"

        # ListBans and GetStatus, while bans keep coming.
        rm -f "$stop"
        vg_spawn "$T/scale-probe-$n.log" python3 "$SCALE_PROBE" bans vpopguard banned4 banned6 "$stop" "$out"
        k=$VG_LAST_PID
        if ! wait_until 60 scale_probe_lines "$out" 20; then
                error "$scen" vpopguardd "the ban prober did not get going: $(tail -n 3 "$T/scale-probe-$n.log")"
        else
                t0=$EPOCHREALTIME lb0=$EPOCHREALTIME
                if "$CTL" --socket="$T/ctl.sock" --json bans >"$T/scale-bans-$n.json" 2>"$T/scale-bans-$n.err"; then
                        t1=$EPOCHREALTIME
                        bans=$(grep -o '"address"' "$T/scale-bans-$n.json" | wc -l)
                        record "$scen" vpopguardd listbans_sec "$(calc "$t1 - $t0")"
                        record "$scen" vpopguardd listbans_bytes "$(wc -c <"$T/scale-bans-$n.json")"
                        ((bans >= n)) || error "$scen" vpopguardd "ListBans listed $bans of $n bans"
                else
                        t1=$EPOCHREALTIME
                        error "$scen" vpopguardd "ListBans failed: $(head -c 300 "$T/scale-bans-$n.err")"
                fi
                # The prober's first bans wait for journald and the daemon to warm up.
                tail -n +6 "$out" >"$out.steady"
                read -r max lat < <(scale_latencies "$out.steady" "$t0" "$t1")
                record "$scen" vpopguardd listbans_max_ban_ms "$max"
                record "$scen" vpopguardd listbans_bans_meanwhile "$lat"
                t0=$EPOCHREALTIME
                "$CTL" --socket="$T/ctl.sock" --json status >"$T/scale-status-$n.json" ||
                        error "$scen" vpopguardd "GetStatus failed"
                t1=$EPOCHREALTIME
                record "$scen" vpopguardd getstatus_sec "$(calc "$t1 - $t0")"
                [[ $(jq -r .bansActive "$T/scale-status-$n.json") -ge $n ]] ||
                        error "$scen" vpopguardd "GetStatus: bansActive $(jq -r .bansActive "$T/scale-status-$n.json")"
                tail -n +6 "$out" >"$out.steady"
                read -r base _ < <(scale_latencies "$out.steady" 0 "$lb0")
                record "$scen" vpopguardd ban_ms_max_before_listbans "$base"

                # Saves, while the prober's bans keep the state due.
                scale_saves_reset "$state"
                t0=$EPOCHREALTIME
                if wait_until 300 scale_saves_seen 2; then
                        t1=$EPOCHREALTIME
                        tail -n +6 "$out" >"$out.steady"
                        read -r max lat < <(scale_latencies "$out.steady" "$t0" "$t1")
                        record "$scen" vpopguardd saves_max_ban_ms "$max"
                        record "$scen" vpopguardd saves_bans_meanwhile "$lat"
                        record "$scen" vpopguardd save_child_sec "$SCALE_SAVE_LONGEST"
                else
                        error "$scen" vpopguardd "the state file was not written twice within 300 s"
                fi

                # nft flush ruleset while running: the daemon notices (or a ban fails) and puts
                # every ban back in steps, banning meanwhile.
                local restored0
                restored0=$(daemon_log "vpopguardd-$scen" | grep -c 'back into the nftables sets' || true)
                t0=$EPOCHREALTIME
                nft flush ruleset
                if wait_until 600 scale_restored_logged "vpopguardd-$scen" $((restored0 + 1)); then
                        t1=$EPOCHREALTIME
                        record "$scen" vpopguardd restore_flush_sec "$(calc "$t1 - $t0")"
                        tail -n +6 "$out" >"$out.steady"
                        read -r max lat < <(scale_latencies "$out.steady" "$t0" "$t1")
                        record "$scen" vpopguardd flush_max_ban_ms "$max"
                        record "$scen" vpopguardd flush_bans_meanwhile "$lat"
                        c=$(scale_count "$gen/expect")
                        ((c == n)) || error "$scen" vpopguardd "$c of $n bans in the sets after the flush"
                else
                        error "$scen" vpopguardd "not restored within 600 s of nft flush ruleset"
                fi
        fi
        : >"$stop"
        wait_until 130 vg_pid_exited "$k" || true
        vg_kill "$k" 1

        record "$scen" vpopguardd repairs "$(daemon_log "vpopguardd-$scen" | grep -c 'putting back' || true)"

        # A restart with the bans still in the kernel (an upgrade): SIGTERM saves the state.
        t0=$EPOCHREALTIME
        stop_target
        record "$scen" vpopguardd stop_with_save_sec "$(calc "$EPOCHREALTIME - $t0")"
        record "$scen" vpopguardd saved_state_bytes "$(stat -c %s "$state/state")"
        t0=$EPOCHREALTIME
        vg_spawn_daemon "$T/$scen-restart.log" "${DAEMON_CMD[@]}"
        TARGET_PID=$VG_DAEMON_PID
        if wait_until 600 vg_daemon_ready; then
                record "$scen" vpopguardd restart_sec "$(calc "$EPOCHREALTIME - $t0")"
                c=$(scale_count "$gen/expect")
                ((c == n)) || error "$scen" vpopguardd "$c of $n bans in the sets after the restart"
        else
                error "$scen" vpopguardd "not ready within 600 s of a restart"
        fi
        stop_target
        daemon_log "vpopguardd-$scen" >>"$T/$scen.log"
        nft flush ruleset
        # For a look at the daemon's log and the prober's latencies after the run.
        [[ -z ${VPOPGUARD_BENCH_KEEP:-} ]] || cp "$T/$scen.log" "$out" "$VPOPGUARD_BENCH_KEEP/"
}

scenario_scale() {
        local n
        for n in "${SCALE_SIZES[@]}"; do
                log "scale-$n: $n active bans (state file, reboot, ListBans, GetStatus, nft flush ruleset)"
                scale_once "$n"
        done
}
