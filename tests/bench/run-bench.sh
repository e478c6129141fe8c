#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vpopguard's performance benchmark: vpopguardd side by side with the floor program (the bare
# minimum of journal reading, one regex, a hash table and batched libnftables calls; floor.c)
# and, with --with-fail2ban, fail2ban with an equivalent jail. One command runs everything:
#
#   tests/bench/run-bench.sh [--smoke] [--with-fail2ban] [--repeat=N] [--out=FILE.json]
#
# Scenarios (each target runs alone, in turn, repeated --repeat times; medians are reported):
#   backlog   vpopguardd --no-follow over a journal directory made by the loadgen
#   live-R    R entries/s through a private journald: latency from the write of the MaxRetry-th
#             failure to the address being in the nft set (`nft monitor`)
#   burst-N   N attackers x 3 failures written flat out: first write -> all banned
#   idle      CPU and wake-ups per minute with no relevant entries (quiet; unrelated traffic)
#   memory    RssAnon with many tracked addresses -> bytes per tracked address
# It prints a table and writes the results as JSON. It exits non-zero if any result is wrong
# (a missed or extra ban, a target that did not finish), never because of timing.
#
# Everything runs in private namespaces (tests/integration/lib.sh): the host's journal and
# ruleset are never touched. Without VPOPGUARD_BUILD_DIR it makes a release build in
# build-bench/ first. Generated journals are cached in /var/cache/vpopguard-bench/, keyed by
# the loadgen's arguments and source (systemd-journal-remote imports only ~10-20k entries/s).
# --with-fail2ban installs fail2ban and python3-systemd (apt-get) if they are missing.
set -euo pipefail
. "$(dirname "$0")/../integration/lib.sh"

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)

arg_smoke=0
arg_f2b=0
arg_out=
arg_repeat=
for a in "$@"; do
        case $a in
        --smoke) arg_smoke=1 ;;
        --with-fail2ban) arg_f2b=1 ;;
        --out=*) arg_out=${a#--out=} ;;
        --repeat=*) arg_repeat=${a#--repeat=} ;;
        -h | --help)
                sed -n '3,24p' "$0" | sed 's/^# \{0,1\}//'
                exit 0
                ;;
        *)
                echo "run-bench.sh: unknown argument '$a' (see --help)" >&2
                exit 2
                ;;
        esac
done
[[ -z $arg_repeat || $arg_repeat =~ ^[1-9][0-9]*$ ]] || { echo "run-bench.sh: bad --repeat" >&2; exit 2; }

# ---- On the host: build, install fail2ban; then everything else runs in namespaces. ----

bench_build() {
        local b
        if [[ -n ${VPOPGUARD_BUILD_DIR:-} ]]; then
                b=$VPOPGUARD_BUILD_DIR
        else
                b=${VPOPGUARD_BENCH_BUILD_DIR:-$VG_SRC_DIR/build-bench}
                vg_require_commands meson ninja
                echo "Building $b (release)..." >&2
                if [[ -f $b/build.ninja ]]; then
                        meson setup --reconfigure "$b" "$VG_SRC_DIR" --buildtype=release >/dev/null
                else
                        meson setup "$b" "$VG_SRC_DIR" --buildtype=release >/dev/null
                fi
                ninja -C "$b" >"$b.log" 2>&1 || vg_fail "build failed, see $b.log"
        fi
        [[ -x $b/tests/bench/vpopguard-bench-floor ]] ||
                vg_fail "no $b/tests/bench/vpopguard-bench-floor: is subdir('bench') in tests/meson.build?"
        export VPOPGUARD_BUILD_DIR=$b
        BENCH_BUILDTYPE=$(meson introspect --buildoptions "$b" 2>/dev/null |
                jq -r 'map(select(.name == "buildtype" or .name == "b_sanitize") | "\(.name)=\(.value)") | join(" ")' ||
                echo unknown)
        export BENCH_BUILDTYPE
}

bench_install_fail2ban() {
        local missing=() p
        for p in fail2ban python3-systemd; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
        done
        [[ ${#missing[@]} -eq 0 ]] && return 0
        echo "Installing ${missing[*]}..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
                vg_fail "apt-get install ${missing[*]} failed"
        # The package starts its service where systemd runs; the benchmark runs its own.
        if [[ -d /run/systemd/system ]]; then
                systemctl disable --now fail2ban.service >/dev/null 2>&1 || true
        fi
}

if [[ ${VG_IN_NAMESPACES:-} != 1 ]]; then
        vg_require_root_or_skip
        vg_require_commands nft jq python3 "$VG_JOURNAL_REMOTE_BIN" "$VG_JOURNALD_BIN"
        bench_build
        if ((arg_f2b)); then
                bench_install_fail2ban
        fi
        if [[ -n $arg_out ]]; then
                BENCH_OUT=$(realpath -m -- "$arg_out")
                export BENCH_OUT
        fi
fi
vg_enter_namespaces "$@"

# ---- In the namespaces. ----

B=$VPOPGUARD_BUILD_DIR
DAEMON=$B/src/vpopguardd
CTL=$B/src/vpopguardctl
LOADGEN=${VPOPGUARD_LOADGEN:-$B/tests/vpopguard-loadgen}
FLOOR=$B/tests/bench/vpopguard-bench-floor
SEND=$B/tests/bench/vpopguard-bench-send
STAMP=$B/tests/bench/vpopguard-bench-stamp
REPORT=$BENCH_DIR/bench-report.py
for p in "$DAEMON" "$CTL" "$LOADGEN" "$FLOOR" "$SEND" "$STAMP"; do
        [[ -x $p ]] || vg_fail "missing $p"
done

CACHE=${VPOPGUARD_BENCH_CACHE:-/var/cache/vpopguard-bench}
# shellcheck disable=SC2119 # the directory itself, no subdirectory
T=$(vg_tmpdir)
RESULTS=$T/results.tsv
: >"$RESULTS"
ERRORS=0
CLK_TCK=$(getconf CLK_TCK)
FIND_SEC=1209600 # FindTime=14d: cached journals stay inside the daemon's first-start window
BAN_SEC=3600
SENTINEL=203.0.113.250
# Timestamps of generated journals: a week boundary, so the cache is reused all week.
ANCHOR_USEC=$((($(date +%s) / 604800 * 604800 - 86400) * 1000000))
LOADGEN_SUM=$(sha256sum "$VG_SRC_DIR/tests/loadgen/vpopguard-loadgen.c" | cut -c1-16)

if ((arg_smoke)); then
        REPEAT=${arg_repeat:-1}
        BACKLOG_ENTRIES=100000 BACKLOG_ATTACKERS=2000 BACKLOG_INNOCENT=1000
        F2B_BACKLOG_ENTRIES=10000 F2B_BACKLOG_ATTACKERS=200 F2B_BACKLOG_INNOCENT=100
        LIVE_RATES=(100) LIVE_SECONDS=(3)
        BURSTS=(2000)
        F2B_BURSTS=()
        IDLE_SECONDS=1
        MEMORY_SIZES=(10000 50000)
else
        REPEAT=${arg_repeat:-3}
        BACKLOG_ENTRIES=1000000 BACKLOG_ATTACKERS=20000 BACKLOG_INNOCENT=10000
        F2B_BACKLOG_ENTRIES=200000 F2B_BACKLOG_ATTACKERS=4000 F2B_BACKLOG_INNOCENT=2000
        LIVE_RATES=(100 1000 10000) LIVE_SECONDS=(20 20 10)
        BURSTS=(10000 100000)
        F2B_BURSTS=(10000)
        IDLE_SECONDS=30
        MEMORY_SIZES=(100000 1000000)
fi
TARGETS=(vpopguardd floor)
F2B_TARGETS=(vpopguardd floor)
# fail2ban bans ~10 addresses/s (a shell and an nft process per ban): one run per scenario.
F2B_REPEAT=1
if ((arg_f2b)); then
        vg_require_commands fail2ban-server fail2ban-client
        F2B_TARGETS+=(fail2ban)
fi

log() {
        printf '%s %s\n' "$(date +%T)" "$*" >&2
}

# record SCENARIO TARGET METRIC VALUE
record() {
        printf '%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}

# error SCENARIO TARGET MESSAGE: a wrong or missing result; the run continues, the exit is non-zero.
error() {
        log "ERROR: $1 $2: $3"
        record "$1" "$2" error "$3"
        ERRORS=$((ERRORS + 1))
}

calc() {
        awk "BEGIN { printf \"%.6g\", $* }"
}

# wait_until SECONDS CMD...: like vg_poll, but returns 1 on timeout instead of failing the run.
wait_until() {
        local end=$(($(vg__now_ms) + $1 * 1000))
        shift
        until "$@"; do
                (($(vg__now_ms) < end)) || return 1
                sleep 0.02
        done
}

table_of() {
        case $1 in
        vpopguardd) echo vpopguard ;;
        floor) echo vpopfloor ;;
        fail2ban) echo f2b ;;
        esac
}

nft_reset() {
        local t
        for t in vpopguard vpopfloor f2b vgsync; do
                nft delete table inet "$t" 2>/dev/null || true
        done
}

# set_elements TABLE: every element of both sets, sorted as the loadgen sorts --expect.
set_elements() {
        nft -j list table inet "$1" 2>/dev/null |
                jq -r '.nftables[] | select(.set) | .set.elem // [] | .[]
                        | if type == "object" then .elem.val else . end | tostring' | LC_ALL=C sort
}

# check_bans SCENARIO TARGET EXPECT: compares the target's sets with EXPECT (sentinel removed);
# records missed and extra.
check_bans() {
        local actual=$T/actual.txt missed extra
        set_elements "$(table_of "$2")" | grep -vxF "$SENTINEL" >"$actual" || true
        missed=$(LC_ALL=C comm -23 "$3" "$actual" | wc -l)
        extra=$(LC_ALL=C comm -13 "$3" "$actual" | wc -l)
        record "$1" "$2" missed "$missed"
        record "$1" "$2" extra "$extra"
        record "$1" "$2" bans "$(wc -l <"$actual")"
        if ((missed + extra > 0)); then
                error "$1" "$2" "$missed missed, $extra extra bans (e.g. missed: $(LC_ALL=C comm -23 "$3" "$actual" |
                        head -3 | xargs) extra: $(LC_ALL=C comm -13 "$3" "$actual" | head -3 | xargs))"
        fi
}

cpu_ticks() {
        awk '{ sub(/.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$1/stat"
}

status_field() {
        awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

# The export-format lines of three failures of the sentinel address: the last ban of a run. Once
# it is in the set, every entry before it has been judged.
sentinel_export() {
        local i
        for i in 1 2 3; do
                printf '__REALTIME_TIMESTAMP=%s\nSYSLOG_IDENTIFIER=vpopmail\nPRIORITY=5\n' "$ANCHOR_USEC"
                printf 'MESSAGE=vchkpw-smtp: password fail sentinel@example.com:%s\n\n' "$SENTINEL"
        done
}

# daemon_cmd ID ARGS...: vpopguardd as systemd runs it, with stdout and stderr on a journal
# stream (identifier ID) and JOURNAL_STREAM set, so that it logs as a service does: not every
# ban twice (the event, and a line on stderr), as it would with stderr on a file.
daemon_cmd() {
        local id=$1
        shift
        # shellcheck disable=SC2016 # expanded by that sh
        DAEMON_CMD=(systemd-cat -t "$id" -- sh -c 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) &&
                export JOURNAL_STREAM && exec "$0" "$@"' "$DAEMON" "$@")
}

daemon_log() { # ID: what the daemon logged
        journalctl -q --no-pager -o cat -t "$1" 2>/dev/null
}

daemon_running() { # ID
        daemon_log "$1" | grep -q ' running: '
}

# ---- Configuration of each target. ----

make_config() { # NAME [LINE...]: a vpopguard.conf with the shipped jail and [Defaults] LINEs
        local dir=$T/conf-$1
        shift
        mkdir -p "$dir/vpopguard.conf.d"
        cp "$VG_SRC_DIR/conf.d/10-vpopmail.conf" "$dir/vpopguard.conf.d/"
        printf '[Defaults]\nFindTime=14d\nBanTime=1h\n' >"$dir/vpopguard.conf"
        printf '%s\n' "$@" >>"$dir/vpopguard.conf"
        echo "$dir/vpopguard.conf"
}
CONF=$(make_config main)
CONF_MEMORY=$(make_config memory MaxTrackedAddresses=1000000)

. "$BENCH_DIR/fail2ban.sh"

# ---- Journals. ----

# dataset NAME LOADGEN_ARGS...: prints a directory with journal/ (the entries), expect (the
# addresses that must be banned) and floor.out (the floor's count of entries and failures,
# whose banned set was checked against expect). Cached by arguments and loadgen source.
dataset() {
        local name=$1 key dir tmp
        shift
        key=$(printf '%s\n' "$LOADGEN_SUM" "$FIND_SEC" "$@" | sha256sum | cut -c1-16)
        dir=$CACHE/$name-$key
        if [[ ! -f $dir/done ]]; then
                tmp=$dir.tmp.$$
                rm -rf -- "$tmp"
                mkdir -p "$tmp/journal"
                log "Generating the journal $name ($*) into $dir; imports run at ~10-20k entries/s..."
                "$LOADGEN" --export --minimal-fields --find-time="$FIND_SEC" --expect="$tmp/expect" "$@" |
                        "$VG_JOURNAL_REMOTE_BIN" --output="$tmp/journal/bench.journal" - 2>"$tmp/remote.log" ||
                        vg_fail "generating $name failed: $(tail -n 3 "$tmp/remote.log")"
                "$FLOOR" --no-nft --directory="$tmp/journal" --find-time="$FIND_SEC" \
                        --banned="$tmp/floor-banned" >"$tmp/floor.out" 2>"$tmp/floor.err" ||
                        vg_fail "the floor failed on $name: $(cat "$tmp/floor.err")"
                LC_ALL=C sort -o "$tmp/floor-banned" "$tmp/floor-banned"
                cmp -s "$tmp/expect" "$tmp/floor-banned" ||
                        vg_fail "the floor's bans differ from the loadgen's --expect on $name:
$(diff "$tmp/expect" "$tmp/floor-banned" | head -5)"
                printf '%s\n' "$@" >"$tmp/args"
                touch "$tmp/done"
                rm -rf -- "$dir"
                mv -- "$tmp" "$dir"
        fi
        touch "$dir"
        echo "$dir"
}

floor_value() { # FILE KEY
        sed -n "s/^$2=//p" "$1" | tail -n 1
}

fresh_journald() {
        [[ $(findmnt -no FSTYPE -T /var/log/journal) == tmpfs ]] || vg_fail "/var/log/journal is not our tmpfs"
        if [[ -n $VG_JOURNALD_PID ]]; then
                vg_stop_journald
        fi
        rm -rf /var/log/journal/*
        vg_start_journald
}

# ---- Targets that follow the journal (live, burst, idle, memory). ----

TARGET_PID=
TARGET_LOG=

start_target() { # TARGET RUN-NAME [EXTRA ARGS]
        local target=$1 name=$2
        shift 2
        TARGET_LOG=$T/$target-$name.log
        case $target in
        vpopguardd)
                rm -rf "$T/state-$name"
                daemon_cmd "vpopguardd-$name" --config="${BENCH_CONF:-$CONF}" --state-directory="$T/state-$name" \
                        --socket="$T/ctl.sock" "$@"
                vg_spawn "$TARGET_LOG" "${DAEMON_CMD[@]}"
                TARGET_PID=$VG_LAST_PID
                wait_until 30 daemon_running "vpopguardd-$name" || { daemon_log "vpopguardd-$name" >>"$TARGET_LOG"; false; }
                ;;
        floor)
                vg_spawn "$TARGET_LOG" "$FLOOR" --live --find-time="$FIND_SEC" --ban-time="$BAN_SEC" "$@"
                TARGET_PID=$VG_LAST_PID
                wait_until 30 grep -q '^floor: ready' "$TARGET_LOG"
                ;;
        fail2ban)
                f2b_start "$name"
                ;;
        esac || {
                error "$name" "$target" "did not start: $(tail -n 3 "$TARGET_LOG")"
                return 1
        }
}

stop_target() {
        if [[ -n $TARGET_PID ]]; then
                vg_kill "$TARGET_PID" 30
        fi
        TARGET_PID=
}

MONITOR_PID=
MONITOR_LOG=

monitor_synced() {
        nft "flush set inet vgsync s; add element inet vgsync s { 10.0.0.1 }"
        grep -q 'vgsync' "$MONITOR_LOG"
}

# start_monitor NAME TARGET: `nft monitor` with each line stamped; returns once it provably
# sees element additions. nft 1.0.6's monitor ignores elements of sets that were created after
# it loaded its cache and before it listened, so the target's table and sets (the same
# definitions the target adds itself) and a probe set are created first.
start_monitor() {
        local table
        table=$(table_of "$2")
        nft "add table inet $table; add set inet $table banned4 { type ipv4_addr; flags timeout; }
             add set inet $table banned6 { type ipv6_addr; flags timeout; }
             add table inet vgsync; add set inet vgsync s { type ipv4_addr; }"
        MONITOR_LOG=$T/monitor-$1.txt
        vg_spawn "$MONITOR_LOG" "$STAMP" nft monitor new elements
        MONITOR_PID=$VG_LAST_PID
        if ! wait_until 10 monitor_synced; then
                stop_monitor
                return 1
        fi
        nft delete table inet vgsync
}

stop_monitor() {
        vg_kill "$MONITOR_PID"
        MONITOR_PID=
}

# ---- Scenarios. ----

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
                daemon_cmd "vpopguardd-$scen-$run" --config="$CONF" --state-directory="$T/state-backlog" \
                        --journal-directory="$ds/journal" --no-follow
                cmd=("${DAEMON_CMD[@]}")
                ;;
        floor)
                cmd=("$FLOOR" --directory="$ds/journal" --find-time="$FIND_SEC" --ban-time="$BAN_SEC")
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
        check_bans "$scen" "$target" "$ds/expect"
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
                for target in "${TARGETS[@]}"; do
                        backlog_once backlog "$target" "$ds" "$total" "$run"
                done
        done
        BACKLOG_DATASET=$ds
}

# follow_once SCENARIO TARGET RATE RUN LOADGEN-ARGS...: a fresh journald, the target following
# it, the loadgen's entries plus the sentinel written by the sender at RATE (0: flat out).
follow_once() {
        local scen=$1 target=$2 rate=$3 run=$4 name=$1-$2-$4 expect c0 c1 out lat failures first last ban k v
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
        if [[ $scen == live-* ]] && ! start_monitor "$name" "$target"; then
                error "$scen" "$target" "nft monitor does not report element additions"
                return 0
        fi
        start_target "$target" "$name" || { [[ -z $MONITOR_PID ]] || stop_monitor; return 0; }
        c0=$(cpu_ticks "$TARGET_PID")
        out=$T/send-$name.out
        { "$LOADGEN" --export --minimal-fields --start-usec=now "$@"; sentinel_export; } |
                "$SEND" --rate="$rate" --find-time="$FIND_SEC" --triggers="$T/triggers-$name" \
                        --wait-table="$(table_of "$target")" --wait-timeout="$wait" >"$out"
        c1=$(cpu_ticks "$TARGET_PID")
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
        stop_target
        failures=$FAILURES_IN_STREAM
        record "$scen" "$target" cpu_ms "$(calc "($c1 - $c0) * 1000 / $CLK_TCK")"
        record "$scen" "$target" cpu_us_per_failure "$(calc "($c1 - $c0) * 1e6 / $CLK_TCK / $failures")"
        first=$(floor_value "$out" first_write_usec)
        last=$(floor_value "$out" last_write_usec)
        ban=$(floor_value "$out" last_ban_usec)
        record "$scen" "$target" write_sec "$(calc "($last - $first) / 1e6")"
        if [[ $ban != 0 ]]; then
                record "$scen" "$target" all_banned_sec "$(calc "($ban - $first) / 1e6")"
                record "$scen" "$target" after_last_write_sec "$(calc "($ban - $last) / 1e6")"
        fi
        if [[ $scen == live-* ]]; then
                lat=$(python3 "$REPORT" latency "$T/triggers-$name" "$MONITOR_LOG" "$(table_of "$target")" "$SENTINEL")
                while read -r k v; do
                        record "$scen" "$target" "$k" "$v"
                done <<<"$lat"
        fi
}

scenario_live() {
        local i rate seconds entries attackers inn run target
        for i in "${!LIVE_RATES[@]}"; do
                rate=${LIVE_RATES[i]} seconds=${LIVE_SECONDS[i]}
                entries=$((rate * seconds)) attackers=$((rate * seconds / 20)) inn=$((rate * seconds / 50))
                log "live-$rate: $entries entries in ${seconds}s, $attackers attackers"
                FAILURES_IN_STREAM=$((attackers * 3))
                for ((run = 1; run <= REPEAT; run++)); do
                        for target in "${F2B_TARGETS[@]}"; do
                                [[ $target != fail2ban || $run -le $F2B_REPEAT ]] || continue
                                follow_once "live-$rate" "$target" "$rate" "$run" --seed="$run" --entries="$entries" \
                                        --attackers="$attackers" --failures=3 --cluster="$rate" --successes="$inn" \
                                        --benign="$inn" --decoys="$inn"
                        done
                done
        done
}

scenario_burst() {
        local n run target targets
        for n in "${BURSTS[@]}"; do
                targets=("${TARGETS[@]}")
                if ((arg_f2b)) && [[ " ${F2B_BURSTS[*]} " == *" $n "* ]]; then
                        targets+=(fail2ban)
                fi
                log "burst-$n: $n attackers x 3 failures, flat out"
                FAILURES_IN_STREAM=$((n * 3))
                for ((run = 1; run <= REPEAT; run++)); do
                        for target in "${targets[@]}"; do
                                [[ $target != fail2ban || $run -le $F2B_REPEAT ]] || continue
                                follow_once "burst-$n" "$target" 0 "$run" --seed="$run" --attackers="$n" --failures=3 \
                                        --noise=0 --successes=0 --benign=0 --decoys=0
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
        c0=$(cpu_ticks "$TARGET_PID") v0=$(status_field "$TARGET_PID" voluntary_ctxt_switches)
        n0=$(status_field "$TARGET_PID" nonvoluntary_ctxt_switches) t0=$EPOCHREALTIME
        if [[ $kind == noise ]]; then
                # Other services at 10 entries/s: wakes every journal reader, matches nothing.
                "$LOADGEN" --live --noise=100 --entries=$((10 * IDLE_SECONDS)) --rate=10 --attackers=0 \
                        --successes=0 --benign=0 --decoys=0
        else
                sleep "$IDLE_SECONDS"
        fi
        c1=$(cpu_ticks "$TARGET_PID") v1=$(status_field "$TARGET_PID" voluntary_ctxt_switches)
        n1=$(status_field "$TARGET_PID" nonvoluntary_ctxt_switches) t1=$EPOCHREALTIME
        stop_target
        minutes=$(calc "($t1 - $t0) / 60")
        record "$scen" "$target" cpu_ms_per_min "$(calc "($c1 - $c0) * 1000 / $CLK_TCK / $minutes")"
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
        local n ds t0 rss v
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
                "$FLOOR" --no-nft --directory="$ds/journal" --find-time="$FIND_SEC" >"$T/floor-memory-$n.out" 2>&1
                v=$(floor_value "$T/floor-memory-$n.out" rss_anon_kib)
                record "memory-$n" floor rss_anon_kib "$v"
                record "memory-$n" floor bytes_per_address "$(calc "$v * 1024 / $n")"
        done
}

# perf (or callgrind) of vpopguardd and the floor over the backlog journal: the top functions.
scenario_profile() {
        local ds=$BACKLOG_DATASET target comm out
        if perf record -e cpu-clock -o "$T/perf-probe.data" true >/dev/null 2>&1; then
                for target in vpopguardd floor; do
                        fresh_journald
                        nft_reset
                        rm -rf "$T/state-profile"
                        if [[ $target == vpopguardd ]]; then
                                daemon_cmd vpopguardd-profile --config="$CONF" --state-directory="$T/state-profile" \
                                        --journal-directory="$ds/journal" --no-follow
                                set -- "${DAEMON_CMD[@]}"
                        else
                                set -- "$FLOOR" --directory="$ds/journal" --find-time="$FIND_SEC"
                        fi
                        perf record -e cpu-clock -F 2000 --call-graph=dwarf,16384 -o "$T/perf-$target.data" \
                                -- "$@" >"$T/perf-$target.log" 2>&1 || { error profile "$target" "perf record failed"; continue; }
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
                        fresh_journald
                        nft_reset
                        rm -rf "$T/state-profile"
                        if [[ $target == vpopguardd ]]; then
                                daemon_cmd vpopguardd-profile --config="$CONF" --state-directory="$T/state-profile" \
                                        --journal-directory="$ds/journal" --no-follow
                                set -- "${DAEMON_CMD[@]}"
                        else
                                set -- "$FLOOR" --directory="$ds/journal" --find-time="$FIND_SEC"
                        fi
                        valgrind --tool=callgrind --trace-children=yes \
                                --callgrind-out-file="$T/callgrind-$target.%p.out" "$@" >"$T/callgrind-$target.log" 2>&1 ||
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

# ---- Run. ----

{
        echo "build=$VPOPGUARD_BUILD_DIR"
        echo "buildtype=${BENCH_BUILDTYPE:-unknown}"
        echo "smoke=$arg_smoke"
        echo "repeat=$REPEAT"
        echo "fail2ban=$arg_f2b"
        echo "nproc=$(nproc)"
        echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
        echo "kernel=$(uname -r)"
        echo "commit=$(git -C "$VG_SRC_DIR" describe --always --dirty 2>/dev/null || echo unknown)"
        echo "started=$(date -u +%FT%TZ)"
} >"$T/meta"

vg_start_journald
scenario_backlog
if ((arg_f2b)); then
        f2b_scenario_backlog
fi
scenario_live
scenario_burst
scenario_idle
scenario_memory
if ((!arg_smoke)); then
        scenario_profile
fi
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$T/meta"

python3 "$REPORT" report "$RESULTS" "$T/meta" "$T" "${BENCH_OUT:-}" || ERRORS=$((ERRORS + 1))
if ((ERRORS > 0)); then
        vg_fail "$ERRORS wrong or missing results (see ERROR lines above)"
fi
