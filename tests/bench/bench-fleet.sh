#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The fleet's ban latency: a collector and three hosts as in test-fleet (tests/integration/
# fleet-lib.sh: namespaces, journald, journal-upload and journal-remote over HTTPS), host1
# attacked at RATE bans per second (each attacker's MaxRetry=5 failures back to back, by the
# loadgen through host1's journald). For each ban: from the journal timestamp of the failure
# that completes MaxRetry= on host1 to the address in each host's nft set (`nft monitor`, each
# line stamped when it arrived). Prints p50, p99 and max for host1 itself, for every host (the
# latest of the three), and the number of bans; exits non-zero if a ban did not reach every host,
# never because of timing.
#
#   tests/bench/bench-fleet.sh [--rate=BANS_PER_SECOND] [--seconds=N] [--pull]    (default 100, 10)
#
# --pull wires the fleet by pulls from each node's gatewayd (fleet_up --pull, as test-fleet-pull)
# instead of uploads.
#
# Needs VPOPGUARD_BUILD_DIR (vpopguardd, the loadgen and vpopguard-bench-stamp). Runs in private
# namespaces: the host's journal and ruleset are never touched.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

rate=100
seconds=10
wiring=()
for arg in "$@"; do
        case $arg in
        --rate=*) rate=${arg#--rate=} ;;
        --seconds=*) seconds=${arg#--seconds=} ;;
        --pull) wiring=(--pull) ;;
        *) vg_fail "unknown argument '$arg'" ;;
        esac
done
[[ $rate =~ ^[1-9][0-9]*$ && $seconds =~ ^[1-9][0-9]*$ ]] || vg_fail "--rate= and --seconds= take positive numbers"

vg_begin bench-fleet "$@"
# shellcheck source=tests/integration/fleet-lib.sh
. "$(dirname "$0")/../integration/fleet-lib.sh"
loadgen=$(vg_loadgen)
stamp=${VPOPGUARD_BUILD_DIR:-}/tests/bench/vpopguard-bench-stamp
[[ -x $stamp ]] || vg_skip "no $stamp (set VPOPGUARD_BUILD_DIR)"
vg_require_commands python3

fleet_up "${wiring[@]}" MaxRetry=5 BanTime=1h

# `nft monitor` in each host, started once the sets exist (nft 1.0.6 ignores sets created after
# it loaded its cache), and proven to listen with a probe set.
monitor_sees_probe() {
        grep -q vgprobe "$tmp/$1/monitor.log"
}
for node in "${HOSTS[@]}"; do
        on "$node" nft "add table inet vgprobe; add set inet vgprobe s { type ipv4_addr; }"
        vg_spawn "$tmp/$node/monitor.log" nsenter -t "${HOLDER[$node]}" -m -n -- "$stamp" nft monitor new elements
        probe() {
                on "$1" nft "flush set inet vgprobe s; add element inet vgprobe s { 10.0.0.1 }"
                monitor_sees_probe "$1"
        }
        vg_poll $T probe "$node"
        on "$node" nft delete table inet vgprobe
done

attackers=$((rate * seconds))
vg_log "fleet: $attackers bans at $rate/s on host1 (MaxRetry=5: $((rate * 5)) failures/s)"
on host1 "$loadgen" --live --transport=journal --rate=$((rate * 5)) --attackers="$attackers" --failures=5 --cluster=5 \
        --noise=0 --decoys=0 --successes=0 --benign=0 --ipv6=0 --seed=7 >"$tmp/loadgen.log" 2>&1 ||
        vg_fail "the loadgen failed: $(cat "$tmp/loadgen.log")"

# Every attacker once in every host's monitor (or the deadline).
all_arrived() {
        local node
        for node in "${HOSTS[@]}"; do
                (($(grep -c ' add element inet vpopguard banned4 ' "$tmp/$node/monitor.log") >= attackers)) || return 1
        done
}
# Not vg_poll: a ban that never arrives is reported below, with the others' latencies.
deadline=$((SECONDS + 60 + seconds))
until all_arrived || ((SECONDS >= deadline)); do
        sleep 0.2
done

on host1 journalctl -q -o json SYSLOG_IDENTIFIER=vpopmail >"$tmp/failures.json"
python3 - "$tmp" 5 "${HOSTS[@]}" <<'EOF'
import json, re, sys
tmp, max_retry, hosts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
# The failure that completes MaxRetry=: each address's max_retry-th line, by journal timestamp.
seen, due = {}, {}
for line in open(f"{tmp}/failures.json"):
    e = json.loads(line)
    m = re.search(r":([0-9.]+)$", e.get("MESSAGE", "") if isinstance(e.get("MESSAGE"), str) else "")
    if not m:
        continue
    a = m.group(1)
    seen[a] = seen.get(a, 0) + 1
    if seen[a] == max_retry:
        due[a] = int(e["__REALTIME_TIMESTAMP"])
arrived = {}
for h in hosts:
    arrived[h] = {}
    for line in open(f"{tmp}/{h}/monitor.log"):
        m = re.match(r"(\d+) add element inet vpopguard banned4 \{ ([0-9.]+)", line)
        if m and m.group(2) not in arrived[h]:
            arrived[h][m.group(2)] = int(m.group(1))
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] / 1000
own, every, missing = [], [], 0
for a, t in due.items():
    if a in arrived[hosts[0]]:
        own.append(arrived[hosts[0]][a] - t)
    if all(a in arrived[h] for h in hosts):
        every.append(max(arrived[h][a] for h in hosts) - t)
    else:
        missing += 1
print(f"bans due: {len(due)}, in every host's set: {len(every)}, missing: {missing}")
for name, v in (("host1 (its own ban)", own), ("every host", every)):
    if v:
        print(f"{name:20s} p50 {pct(v, 50):8.1f} ms  p99 {pct(v, 99):8.1f} ms  max {max(v) / 1000:8.1f} ms")
sys.exit(1 if missing or not due else 0)
EOF
