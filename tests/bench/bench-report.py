#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Arithmetic for run-bench.sh.

  bench-report.py latency TRIGGERS MONITOR TABLE SENTINEL
      Joins the sender's "USEC ADDRESS" lines (when each MaxRetry-th failure was written) with
      the stamped `nft monitor` lines of TABLE, and prints "metric value" lines.
  bench-report.py report RESULTS META DIR [OUT.json]
      Medians of the runs per scenario, metric and target; prints the table, the issue's targets
      and the profiles; writes OUT.json. Exits 1 if any result is wrong (missed or extra bans,
      errors), never because of timing.
"""

import json
import math
import os
import re
import statistics
import sys

TARGETS = ("vpopguardd", "floor", "floor-events", "fail2ban")


def percentile(values, p):
    """Nearest rank."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def latency(triggers, monitor, table, sentinel):
    written = {}
    with open(triggers) as f:
        for line in f:
            usec, addr = line.split()
            if addr != sentinel:
                written[addr] = int(usec)
    seen = {}
    pattern = re.compile(r"^(\d+) add element inet " + re.escape(table) + r" \S+ \{ (\S+) ")
    with open(monitor, errors="replace") as f:
        for line in f:
            m = pattern.match(line)
            if m and m.group(2) not in seen:
                seen[m.group(2)] = int(m.group(1))
    lat = [(seen[a] - t) / 1000 for a, t in written.items() if a in seen]
    if lat:
        print("latency_p50_ms %.3f" % percentile(lat, 50))
        print("latency_p99_ms %.3f" % percentile(lat, 99))
        print("latency_max_ms %.3f" % max(lat))
    print("latency_samples %d" % len(lat))
    print("latency_unseen %d" % (len(written) - len(lat)))


def number(v):
    try:
        return float(v)
    except ValueError:
        return None


def fmt(v):
    if v is None:
        return "-"
    if v == 0 or abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3g" % v


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def report(results_path, meta_path, directory, out):
    meta = {}
    with open(meta_path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v

    scenarios = []  # in order of appearance
    metrics = {}    # scenario -> [metric, ...]
    values = {}     # (scenario, metric, target) -> [value, ...]
    errors = []
    with open(results_path) as f:
        for line in f:
            scen, target, metric, value = line.rstrip("\n").split("\t", 3)
            if metric == "error":
                errors.append({"scenario": scen, "target": target, "message": value})
                continue
            if scen not in metrics:
                scenarios.append(scen)
                metrics[scen] = []
            if metric not in metrics[scen]:
                metrics[scen].append(metric)
            v = number(value)
            if v is not None:
                values.setdefault((scen, metric, target), []).append(v)

    def median(scen, metric, target):
        v = values.get((scen, metric, target))
        return statistics.median(v) if v else None

    # Marginal memory per tracked address, between the two sizes.
    mem = sorted((int(s.split("-")[1]), s) for s in scenarios if re.fullmatch(r"memory-\d+", s))
    if len(mem) >= 2:
        (n0, s0), (n1, s1) = mem[0], mem[-1]
        scenarios.append("memory")
        metrics["memory"] = ["marginal_bytes_per_address"]
        for t in TARGETS:
            a, b = median(s0, "rss_anon_kib", t), median(s1, "rss_anon_kib", t)
            if a is not None and b is not None:
                values[("memory", "marginal_bytes_per_address", t)] = [(b - a) * 1024 / (n1 - n0)]

    rows = []
    doc = {"meta": meta, "results": {}, "targets": [], "errors": errors, "profile": {}}
    for scen in scenarios:
        doc["results"][scen] = {}
        for metric in metrics[scen]:
            entry = {}
            for t in TARGETS + ("-",):
                v = values.get((scen, metric, t))
                if v:
                    entry[t] = {"median": statistics.median(v), "runs": v}
            d, fl, fb = median(scen, metric, "vpopguardd"), median(scen, metric, "floor"), median(scen, metric, "fail2ban")
            fe = median(scen, metric, "floor-events")
            if d is None and fl is None and fb is None:
                d = median(scen, metric, "-")
            entry["ratio_vs_floor"] = ratio(d, fl)
            entry["ratio_vs_floor_events"] = ratio(d, fe)
            entry["ratio_vs_fail2ban"] = ratio(d, fb)
            doc["results"][scen][metric] = entry
            rows.append((scen, metric, d, fl, ratio(d, fl), fe, ratio(d, fe), fb, ratio(d, fb)))

    def target(name, value, op, limit):
        ok = None if value is None else (value <= limit if op == "<=" else value >= limit)
        doc["targets"].append({"target": name, "value": value, "op": op, "limit": limit, "met": ok})

    target("backlog entries/s vs floor", ratio(median("backlog", "entries_per_sec", "vpopguardd"),
                                               median("backlog", "entries_per_sec", "floor")), ">=", 0.8)
    # Not a target of the issue: the floor that also logs one journal entry per ban, as the
    # daemon must; journald's intake of those entries bounds both.
    target("(backlog entries/s vs floor+events)", ratio(median("backlog", "entries_per_sec", "vpopguardd"),
                                                        median("backlog", "entries_per_sec", "floor-events")), ">=", 0.8)
    if "services" in metrics:
        # Issue #12: every shipped jail enabled vs the vpopmail jail alone, same backlog, same
        # run; per entry each daemon judges (with one jail, sd-journal skips the other fifths).
        target("services all jails vs vpopmail-only, judged entries/s",
               median("services", "all_vs_vpopmail_jail_entries_per_sec", "-"), ">=", 0.8)
        target("(services all jails vs vpopmail-only, judged entries/CPU s)",
               median("services", "all_vs_vpopmail_jail_entries_per_cpu_sec", "-"), ">=", 0.8)
        target("(services all jails vs vpopmail-only, journal entries/s)",
               median("services", "all_vs_vpopmail_entries_per_sec", "-"), ">=", 0.8)
    if "backlog-ipv4" in metrics:
        target("backlog entries/s vs fail2ban", ratio(median("backlog-ipv4", "entries_per_sec", "vpopguardd"),
                                                      median("backlog-ipv4", "entries_per_sec", "fail2ban")), ">=", 300)
    for scen in scenarios:
        if scen.startswith("live-"):
            target(scen + " latency p50 ms", median(scen, "latency_p50_ms", "vpopguardd"), "<=", 10)
            target(scen + " latency p99 ms", median(scen, "latency_p99_ms", "vpopguardd"), "<=", 20)
            target(scen + " CPU per failure vs floor", ratio(median(scen, "cpu_us_per_failure", "vpopguardd"),
                                                             median(scen, "cpu_us_per_failure", "floor")), "<=", 1.5)
    if "burst-10000" in metrics:
        target("burst-10000 all banned vs floor", ratio(median("burst-10000", "all_banned_sec", "vpopguardd"),
                                                        median("burst-10000", "all_banned_sec", "floor")), "<=", 1.2)
    if "burst-100000" in metrics:
        target("burst-100000 s after the last write", median("burst-100000", "after_last_write_sec", "vpopguardd"), "<=", 2)
    target("backlog CPU per failure vs floor", ratio(median("backlog", "cpu_us_per_failure", "vpopguardd"),
                                                     median("backlog", "cpu_us_per_failure", "floor")), "<=", 1.5)
    if "backlog-ipv6prefix64" in metrics:
        target("backlog entries/s IPv6Prefix=64 vs 128", ratio(median("backlog-ipv6prefix64", "entries_per_sec", "vpopguardd"),
                                                             median("backlog-ipv6prefix128", "entries_per_sec", "vpopguardd")),
               ">=", 0.9)
    if "memory" in metrics:
        target("memory bytes per tracked address", median("memory", "marginal_bytes_per_address", "vpopguardd"), "<=", 256)

    wrong = list(errors)
    for (scen, metric, t), v in values.items():
        if metric in ("missed", "extra") and any(x > 0 for x in v):
            wrong.append({"scenario": scen, "target": t, "message": "%s %s" % (fmt(max(v)), metric)})
    doc["correct"] = not wrong

    for name in sorted(os.listdir(directory)):
        m = re.fullmatch(r"profile-(.+)-(self|children)\.txt", name)
        if m:
            with open(os.path.join(directory, name)) as f:
                doc["profile"].setdefault(m.group(1), {})[m.group(2)] = [l.rstrip() for l in f if l.strip()]

    # The table.
    have_fe = any(r[5] is not None for r in rows)
    have_f2b = any(r[7] is not None for r in rows)
    head = (["scenario", "metric", "vpopguardd", "floor", "ratio"] + (["floor+ev", "ratio"] if have_fe else []) +
            (["fail2ban", "ratio"] if have_f2b else []))
    lines = [head]
    for scen, metric, d, fl, rf, fe, re_, fb, rb in rows:
        lines.append([scen, metric, fmt(d), fmt(fl), fmt(rf)] + ([fmt(fe), fmt(re_)] if have_fe else []) +
                     ([fmt(fb), fmt(rb)] if have_f2b else []))
    widths = [max(len(l[i]) for l in lines) for i in range(len(head))]
    print()
    print("vpopguard benchmark (%s, medians of %s run(s); ratio = vpopguardd / other)" %
          (meta.get("buildtype", "?"), meta.get("repeat", "?")))
    print("load average %s at the start, %s at the end; %s CPUs" %
          (meta.get("loadavg", "?"), meta.get("loadavg_end", "?"), meta.get("nproc", "?")))
    for i, l in enumerate(lines):
        print("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(l, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print("Targets of the issue (informational: timing never fails the run):")
    for t in doc["targets"]:
        state = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        print("  %-42s %10s  %s %-6s %s" % (t["target"], fmt(t["value"]), t["op"], fmt(t["limit"]), state))
    for target_name, p in sorted(doc["profile"].items()):
        print()
        print("Profile of %s over the backlog (self time, top 12):" % target_name)
        for l in p.get("self", [])[:12]:
            print("  " + l.strip())
    print()
    if wrong:
        print("WRONG RESULTS:")
        for w in wrong:
            print("  %s %s: %s" % (w["scenario"], w["target"], w["message"]))
    else:
        print("Correctness: every scenario banned exactly the expected addresses.")

    if out:
        with open(out, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        print("Results written to %s" % out)
    return 0 if not wrong else 1


def main(argv):
    if len(argv) == 6 and argv[1] == "latency":
        latency(*argv[2:])
        return 0
    if len(argv) in (5, 6) and argv[1] == "report":
        return report(argv[2], argv[3], argv[4], argv[5] if len(argv) == 6 and argv[5] else None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
