#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vpopguard's performance benchmark: vpopguardd side by side with the floor program (the bare
# minimum of journal reading, one regex, a hash table and batched libnftables calls; floor.c),
# with floor+events (the floor that also writes vpopguardd's journal entry per ban, field for
# field: the limit the daemon is held to) and, with --with-fail2ban, fail2ban with an
# equivalent jail (the backlog, live 100 and 1000/s, the 10 000-attacker burst), all in the
# same run. One command runs everything:
#
#   tests/bench/run-bench.sh [--smoke] [--with-fail2ban] [--repeat=N] [--out=FILE.json]
#                            [--only=backlog,services,prefix,live,burst,idle,memory,contended,profile,scale]
#
# and one more makes the SVG charts of its JSON: tests/bench/charts FILE.json DIR/
#
# Scenarios (each target runs alone, in turn, repeated --repeat times; medians are reported):
#   backlog   vpopguardd --no-follow over a journal directory made by the loadgen
#   services  a mail host's backlog (vpopmail, sshd, dovecot, postfix, courier; 10 % failures):
#             vpopguardd with every shipped jail, then with the vpopmail jail alone
#             (bench-services.sh)
#   live-R    R entries/s through a private journald: latency from the write of the MaxRetry-th
#             failure to the address being in the nft set (`nft monitor`); 60 s at 100/s, 20 s
#             at 1000/s, 10 s at 10 000/s
#   burst-N   N attackers x 3 failures written flat out: first write -> all banned
#   idle      CPU and wake-ups per minute with no relevant entries (quiet; unrelated traffic)
#   memory    RssAnon with many tracked addresses -> bytes per tracked address
#   contended-1000-V  live-style latency of 1000 failures/s (nothing else), alone (V = alone) and
#             while 64 connections of UID 1000 pipeline varlink calls (plain: what anybody may
#             ask; journal: as a member of systemd-journal, ListBans and ListFailures; regex:
#             64 KiB TestMessage calls, the worst before issue #11)
#   scale     N active bans: the state file's size and write time, restore after a reboot and
#             after `nft flush ruleset`, ListBans and GetStatus and the longest ban latency during
#             them, the kernel's memory per element (bench-scale.sh)
#   prefix    the backlog with IPv6Prefix=128 and with IPv6Prefix=64 (the default) in turn, on a
#             journal whose IPv6 addresses each lie in a /64 of their own: the cost of counting
#             per /64. (Everything else runs with IPv6Prefix=128: the floor counts per address.)
# It prints a table and writes the results as JSON. It exits non-zero if any result is wrong
# (a missed or extra ban, a target that did not finish), never because of timing.
#
# Everything runs in private namespaces (tests/integration/lib.sh): the host's journal and
# ruleset are never touched. Without VPOPGUARD_BUILD_DIR it makes a release build in
# build-bench/ first. Generated journals are cached in /var/cache/vpopguard-bench/, keyed by
# the loadgen's arguments and source (systemd-journal-remote imports only ~10-20k entries/s).
# --with-fail2ban installs fail2ban and python3-systemd (apt-get) if they are missing.
# vpopguardd runs with stdout and stderr on a journal stream, as under systemd.
#
# Files: bench-lib.sh (helpers), bench-scenarios.sh, bench-services.sh and services-backlog.py,
# fail2ban.sh, bench-report.py (medians,
# table, JSON), charts (SVG charts from the JSON) and check-charts.py (what --smoke checks of
# them); floor.c and bench-match.c (the floor), bench-send.c (the live writer that
# records when each ban became due), bench-stamp.c (time stamps for `nft monitor` lines).
set -euo pipefail
. "$(dirname "$0")/../integration/lib.sh"

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)

arg_smoke=0
arg_f2b=0
arg_out=
arg_repeat=
arg_only=backlog,services,prefix,live,burst,idle,memory,contended,profile,scale
for a in "$@"; do
        case $a in
        --smoke) arg_smoke=1 ;;
        --with-fail2ban) arg_f2b=1 ;;
        --out=*) arg_out=${a#--out=} ;;
        --repeat=*) arg_repeat=${a#--repeat=} ;;
        --only=*) arg_only=${a#--only=} ;;
        -h | --help)
                awk 'NR > 2 && !/^#/ { exit } NR > 2 { sub(/^# ?/, ""); print }' "$0"
                exit 0
                ;;
        *)
                echo "run-bench.sh: unknown argument '$a' (see --help)" >&2
                exit 2
                ;;
        esac
done
[[ -z $arg_repeat || $arg_repeat =~ ^[1-9][0-9]*$ ]] || { echo "run-bench.sh: bad --repeat" >&2; exit 2; }
for a in ${arg_only//,/ }; do
        case $a in
        backlog | services | prefix | live | burst | idle | memory | contended | profile | scale) ;;
        *)
                echo "run-bench.sh: unknown scenario '$a' in --only (backlog, services, prefix, live, burst, idle, memory, contended, profile, scale)" >&2
                exit 2
                ;;
        esac
done
if [[ ,$arg_only, == *,profile,* && ,$arg_only, != *,backlog,* ]]; then
        echo "run-bench.sh: --only: profile needs backlog (it profiles that scenario's journal)" >&2
        exit 2
fi
# wanted SCENARIO: whether --only lists it.
wanted() { [[ ,$arg_only, == *,$1,* ]]; }

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
STATEGEN=$B/tests/bench/vpopguard-bench-state
REPORT=$BENCH_DIR/bench-report.py
for p in "$DAEMON" "$CTL" "$LOADGEN" "$FLOOR" "$SEND" "$STAMP" "$STATEGEN"; do
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
        SERVICES_ENTRIES=100000
        LIVE_RATES=(100) LIVE_SECONDS=(3)
        BURSTS=(2000)
        F2B_BURSTS=()
        IDLE_SECONDS=1
        MEMORY_SIZES=(10000 50000)
        CONTENDED_SECONDS=3
        SCALE_SIZES=(2000)
else
        REPEAT=${arg_repeat:-3}
        BACKLOG_ENTRIES=1000000 BACKLOG_ATTACKERS=20000 BACKLOG_INNOCENT=10000
        F2B_BACKLOG_ENTRIES=200000 F2B_BACKLOG_ATTACKERS=4000 F2B_BACKLOG_INNOCENT=2000
        SERVICES_ENTRIES=1000000
        # At 100/s a run of 20 s used 0.1-0.3 s of CPU, a quantity the host's moods move: 60 s.
        LIVE_RATES=(100 1000 10000) LIVE_SECONDS=(60 20 10)
        BURSTS=(10000 100000)
        F2B_BURSTS=(10000)
        IDLE_SECONDS=30
        MEMORY_SIZES=(100000 1000000)
        CONTENDED_SECONDS=20
        SCALE_SIZES=(100000 1000000)
fi
[[ -z ${VPOPGUARD_BENCH_SCALE_SIZES:-} ]] || read -ra SCALE_SIZES <<<"$VPOPGUARD_BENCH_SCALE_SIZES"

TARGETS=(vpopguardd floor)
# fail2ban runs a shell and an nft process per ban: one run per scenario, and only where the
# issue compares it (the backlog, live 100 and 1000/s, the 10 000-attacker burst).
F2B_REPEAT=1
if ((arg_smoke)); then F2B_LIVE_RATES=(100); else F2B_LIVE_RATES=(100 1000); fi
if ((arg_f2b)); then
        vg_require_commands fail2ban-server fail2ban-client
fi

. "$BENCH_DIR/bench-lib.sh"
. "$BENCH_DIR/bench-scenarios.sh"
. "$BENCH_DIR/bench-services.sh"
. "$BENCH_DIR/fail2ban.sh"
. "$BENCH_DIR/bench-scale.sh"

# The floor counts per address, and the loadgen's IPv6 addresses share two /64s: vpopguardd does
# the same work with IPv6Prefix=128 (the prefix scenario measures the default, 64).
CONF=$(make_config main IPv6Prefix=128)
CONF_MEMORY=$(make_config memory MaxTrackedAddresses=1000000 IPv6Prefix=128)
CONF_PREFIX128=$(make_config prefix128 IPv6Prefix=128)
CONF_PREFIX64=$(make_config prefix64)
CONF_SCALE=$(make_config scale IPv6Prefix=128)

# systemd as PID 1 raises the queue of every unix datagram socket, journald's among them, from the
# kernel's 10 to 512 datagrams; this network namespace starts with 10 like any other.
echo 512 >/proc/sys/net/unix/max_dgram_qlen || vg_fail "cannot set net.unix.max_dgram_qlen"

# ---- Run. ----

{
        echo "build=$VPOPGUARD_BUILD_DIR"
        echo "buildtype=${BENCH_BUILDTYPE:-unknown}"
        echo "smoke=$arg_smoke"
        echo "only=$arg_only"
        echo "repeat=$REPEAT"
        echo "fail2ban=$arg_f2b"
        echo "nproc=$(nproc)"
        echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
        echo "mem_total_kib=$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)"
        echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
        echo "kernel=$(uname -r)"
        echo "unix_max_dgram_qlen=$(cat /proc/sys/net/unix/max_dgram_qlen)"
        echo "commit=$(git -C "$VG_SRC_DIR" describe --always --dirty 2>/dev/null || echo unknown)"
        echo "started=$(date -u +%FT%TZ)"
} >"$T/meta"

vg_start_journald
if wanted backlog; then
        scenario_backlog
        if ((arg_f2b)); then
                f2b_scenario_backlog
        fi
fi
if wanted services; then scenario_services; fi
if wanted prefix; then scenario_prefix; fi
if wanted live; then scenario_live; fi
if wanted burst; then scenario_burst; fi
if wanted idle; then scenario_idle; fi
if wanted memory; then scenario_memory; fi
if wanted contended; then scenario_contended; fi
if wanted scale; then scenario_scale; fi
if ((!arg_smoke)) && wanted profile; then
        scenario_profile
fi
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$T/meta"

python3 "$REPORT" report "$RESULTS" "$T/meta" "$T" "${BENCH_OUT:-}" || ERRORS=$((ERRORS + 1))
# The smoke run also checks the charts (tests/bench/charts) made from its JSON.
if ((arg_smoke)) && [[ -s ${BENCH_OUT:-} ]]; then
        if ! "$BENCH_DIR/charts" "$BENCH_OUT" "$T/charts" >"$T/charts.log" 2>&1; then
                log "ERROR: tests/bench/charts failed: $(tail -n 3 "$T/charts.log")"
                ERRORS=$((ERRORS + 1))
        elif ! python3 "$BENCH_DIR/check-charts.py" "$BENCH_OUT" "$T/charts" >&2; then
                log "ERROR: the charts made from $BENCH_OUT are wrong (above)"
                ERRORS=$((ERRORS + 1))
        fi
fi
if ((ERRORS > 0)); then
        vg_fail "$ERRORS wrong or missing results (see ERROR lines above)"
fi
