# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # shares the variables of run-bench.sh
#
# Helpers of run-bench.sh (sourced in its namespaces): results, nftables, the targets
# (vpopguardd, the floor; fail2ban in fail2ban.sh), the cached journals and `nft monitor`.

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

# The ban entries' MESSAGE_ID: vpopguardd's (src/journal-events.h) and the floor's (floor.c).
VPOPGUARD_MESSAGE_BAN=7fc6f43d6e5d457ba31097a4cc519474
FLOOR_MESSAGE_BAN=3a1c0e9b8f5d4e0c9a7b6d5c4e3f2a1b

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
        vpopguardd | vpopguardd-baseline) echo vpopguard ;;
        floor | floor-events) echo vpopfloor ;;
        fail2ban) echo f2b ;;
        esac
}

nft_reset() {
        local t
        for t in vpopguard vpopfloor f2b vgsync; do
                nft delete table inet "$t" 2>/dev/null || true
        done
}

# set_elements TABLE: every element of the table's sets, sorted as the loadgen sorts --expect; a
# prefix as ADDRESS/LENGTH: vpopguardd keeps those as network addresses in a set per length,
# named "<set>_<length>" (banned6_64).
set_elements() {
        nft -j list table inet "$1" 2>/dev/null |
                jq -r '.nftables[] | select(.set) | .set
                        | ((.name | capture("_(?<len>[0-9]+)$").len) // null) as $len
                        | .elem // [] | .[]
                        | if type == "object" and has("elem") then .elem.val else . end
                        | tostring | if $len then "\(.)/\($len)" else . end' | LC_ALL=C sort
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

# cpu_ns PID: the CPU time of PID in ns, exact for the process itself: the sum of its threads'
# sum_exec_runtime (the first field of /proc/PID/task/*/schedstat), where utime+stime come in
# ticks of 1/CLK_TCK s (10 ms: 15 against 23 ticks over a run said little). Plus what its
# reaped children used (cutime+cstime, in ticks: only vpopguardd's forked state saves of 10 000
# records or more). The daemon and the floor run no threads that exit, whose time schedstat
# would no longer show. For processes that wake up often the ticks read 10-15 % higher here
# than schedstat (a busy loop: the same): absolute values are not comparable with tick-based
# results, ratios between targets measured alike are.
cpu_ns() {
        local f sum=0 ns _
        for f in "/proc/$1"/task/*/schedstat; do
                read -r ns _ 2>/dev/null <"$f" && sum=$((sum + ns))
        done
        awk -v ns="$sum" -v hz="$CLK_TCK" '{ sub(/.*\) /, ""); printf "%.0f\n", ns + ($14 + $15) * 1e9 / hz }' \
                "/proc/$1/stat"
}

status_field() {
        awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

# The export-format lines of three failures of the sentinel address: the last ban of a run. Once
# it is in the set, every entry before it has been judged.
sentinel_export() {
        local _
        for _ in 1 2 3; do
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

# ---- Journals. ----

# cached_dataset NAME KEY MAKER ARGS...: prints $CACHE/NAME-KEY, made the first time by
# "MAKER DIR NAME ARGS..." in a scratch directory DIR (with journal/ in it) that takes the
# cache's place only once MAKER succeeded; ARGS are kept in its file args.
cached_dataset() {
        local name=$1 key=$2 maker=$3 dir tmp
        shift 3
        dir=$CACHE/$name-$key
        if [[ ! -f $dir/done ]]; then
                tmp=$dir.tmp.$$
                rm -rf -- "$tmp"
                mkdir -p "$tmp/journal"
                log "Generating the journal $name ($*) into $dir; imports run at ~10-20k entries/s..."
                "$maker" "$tmp" "$name" "$@"
                printf '%s\n' "$@" >"$tmp/args"
                touch "$tmp/done"
                rm -rf -- "$dir"
                mv -- "$tmp" "$dir"
        fi
        touch "$dir"
        echo "$dir"
}

# make_loadgen_dataset DIR NAME LOADGEN_ARGS...: the loadgen's entries into DIR/journal/, the
# addresses they must ban into DIR/expect, and the floor's run over them into DIR/floor.out.
make_loadgen_dataset() {
        local tmp=$1 name=$2
        shift 2
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
}

# dataset NAME LOADGEN_ARGS...: prints a directory with journal/ (the entries), expect (the
# addresses that must be banned) and floor.out (the floor's count of entries and failures,
# whose banned set was checked against expect). Cached by arguments and loadgen source.
dataset() {
        local name=$1 key
        shift
        key=$(printf '%s\n' "$LOADGEN_SUM" "$FIND_SEC" "$@" | sha256sum | cut -c1-16)
        cached_dataset "$name" "$key" make_loadgen_dataset "$@"
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
TARGET_KIND=

start_target() { # TARGET RUN-NAME [EXTRA ARGS]
        local target=$1 name=$2
        shift 2
        TARGET_KIND=$target
        TARGET_LOG=$T/$target-$name.log
        case $target in
        vpopguardd | vpopguardd-baseline)
                # daemon_cmd runs $DAEMON: the baseline's (scenario_live) for vpopguardd-baseline.
                local DAEMON=$DAEMON
                [[ $target == vpopguardd ]] || DAEMON=$VPOPGUARD_BENCH_BASELINE/src/vpopguardd
                rm -rf "$T/state-$name"
                daemon_cmd "vpopguardd-$name" --config="${BENCH_CONF:-$CONF}" --state-directory="$T/state-$name" \
                        --socket="$T/ctl.sock" "$@"
                vg_spawn_daemon "$TARGET_LOG" "${DAEMON_CMD[@]}"
                TARGET_PID=$VG_DAEMON_PID
                wait_until 30 vg_daemon_ready || { daemon_log "vpopguardd-$name" >>"$TARGET_LOG"; false; }
                ;;
        floor | floor-events)
                local events=()
                [[ $target == floor ]] || events=(--events)
                vg_spawn "$TARGET_LOG" "$FLOOR" --live --find-time="$FIND_SEC" --ban-time="$BAN_SEC" "${events[@]}" "$@"
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

# SIGTERM, and SIGKILL after 30 s; at once for fail2ban, which on SIGTERM lifts every ban with
# an nft process each (minutes for thousands of bans), after everything was measured.
stop_target() {
        if [[ -n $TARGET_PID ]]; then
                vg_kill "$TARGET_PID" "$([[ $TARGET_KIND == fail2ban ]] && echo 0 || echo 30)"
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
