#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-charts.py BENCH.json DIR: what the smoke run checks of tests/bench/charts' output.

Each chart whose data BENCH.json has is in DIR, parses as SVG, and its text names every series
the JSON has a value for ("vpopguardd", "floor", "floor+events", "fail2ban") and the machine
("N CPUs", the kernel). Prints what is wrong and exits 1, else exits 0.
"""

import json
import os
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
LABELS = {"vpopguardd": "vpopguardd", "floor": "floor", "floor-events": "floor+events", "fail2ban": "fail2ban"}
CHARTS = {  # file: (scenario prefix, metric)
    "latency-cdf.svg": ("live-", "latency_p99_ms"),
    "burst-latency-cdf.svg": ("burst-", "latency_p99_ms"),
    "burst-all-banned.svg": ("burst-", "all_banned_sec"),
    "backlog-throughput.svg": ("backlog", "entries_per_sec"),
    "memory.svg": ("memory-", "bytes_per_address"),
}


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        doc = json.load(f)
    results, meta = doc["results"], doc["meta"]
    wrong = []
    for name, (prefix, metric) in CHARTS.items():
        # The latency CDF shows one live rate: any live rate with a target's values suffices for
        # the bar charts, the CDF's series are those of the scenario it shows.
        want = [label for t, label in LABELS.items()
                if any(s.startswith(prefix) and t in m.get(metric, {}) for s, m in results.items())]
        if not want:
            continue
        try:
            root = ET.parse(os.path.join(argv[2], name)).getroot()
        except (OSError, ET.ParseError) as e:
            wrong.append("%s: %s" % (name, e))
            continue
        if root.tag != SVG + "svg":
            wrong.append("%s: the root element is %s, not svg" % (name, root.tag))
        text = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
        for label in want:
            if not any(t == label or t.startswith(label + " (") for t in text):
                wrong.append("%s: no series %r" % (name, label))
        for fact in ("%s CPUs" % meta.get("nproc"), "Linux %s" % meta.get("kernel")):
            if not any(fact in t for t in text):
                wrong.append("%s: does not say %r" % (name, fact))
    for w in wrong:
        print(w)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
