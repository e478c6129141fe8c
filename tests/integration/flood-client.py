#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Clients for the flood tests (test-flood-addresses.sh, test-varlink-floods.sh). Each mode prints
# what it saw, one fact per line, and exits 1 with a "FAIL ..." line on anything unexpected, so
# that the shell scripts assert on its output. Varlink: JSON messages ended by NUL on a unix
# stream socket.
#
#   poll SOCKET PID STOPFILE
#       GetStatus on a new connection, again and again until STOPFILE exists. Prints per reply
#       "reply ENTRIES_READ RSS_ANON_KB SECONDS" (RssAnon of PID, read right after the reply; the
#       call's duration, for the log only), then "calls N". Every call must be answered; a
#       silent daemon fails it after 300 s.
#   pending SOCKET SENTFILE
#       One GetStatus call on a new connection; creates SENTFILE once the call is sent, then
#       prints "reply ENTRIES_READ" when it is answered.
#   attackers FILE TICK_MS
#       Logs three failures (journal native protocol, as root: _UID=0) for each address of FILE,
#       one "ADDRESS TEXT" per line, where TEXT is the address as vchkpw prints it. Each tick
#       logs the first failure of one address, the second of the one before and the third of the
#       one before that, so other traffic lands between an address's failures.
#   evict KEPT LOST N
#       Logs, in this order: two failures of LOST, two of KEPT, one failure each of N new
#       addresses (2001:db8:0:1::1 on), the third failure of KEPT, the third of LOST.
#   hold SOCKET N RELEASEFILE
#       Opens N connections and sorts each into "answered" (GetStatus replied: the daemon kept
#       it) or "closed" (the daemon hung up), printing "resolved ANSWERED CLOSED". Holds the
#       answered ones until RELEASEFILE exists, checks that each still answers, prints "released".
#   stall SOCKET RELEASEFILE SENTINEL
#       Calls Monitor with "more", reads until an event arrives (the test bans and unbans a probe
#       address until one does), prints "stalled" and reads nothing more until RELEASEFILE
#       exists. Then reads the events queued meanwhile up to the ban of SENTINEL and prints
#       "bans N" (journal bans among them, SENTINEL's included).
#   pipeline SOCKET N METHOD DONEFILE
#       Sends N calls of METHOD at once and reads nothing until DONEFILE exists; then reads until
#       the N replies are in or the daemon closed the connection, and prints "replies R bytes B
#       end EOF|RESET|OPEN" (OPEN: all N replies came, and the connection is still open).

import ipaddress
import json
import os
import select
import socket
import sys
import time

CALL_TIMEOUT = 300.0


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(CALL_TIMEOUT)
    s.connect(path)
    return s


def call(method, parameters=None, more=False):
    m = {"method": method}
    if parameters is not None:
        m["parameters"] = parameters
    if more:
        m["more"] = True
    return json.dumps(m).encode() + b"\0"


def read_reply(s, buf, deadline):
    """One NUL-terminated message from s: (message bytes, rest of buffer), or (None, buf) at
    EOF or reset, or ("timeout", buf)."""
    while b"\0" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", buf
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            chunk = s.recv(1 << 16)
        except ConnectionResetError:
            return None, buf
        if not chunk:
            return None, buf
        buf += chunk
    msg, _, rest = buf.partition(b"\0")
    return msg, rest


def rss_anon_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    fail("no RssAnon in /proc/%d/status" % pid)


def get_status(path, n, sentfile=None):
    """GetStatus call N on a new connection: the reply's parameters. Creates SENTFILE once the
    call is sent."""
    s = connect(path)
    s.sendall(call("io.vpopguard.Manager.GetStatus"))
    if sentfile:
        open(sentfile, "w").close()
    msg, _ = read_reply(s, b"", time.monotonic() + CALL_TIMEOUT)
    if msg is None:
        fail("GetStatus call %d: connection closed without a reply" % n)
    if msg == "timeout":
        fail("GetStatus call %d: no reply within %d s" % (n, CALL_TIMEOUT))
    reply = json.loads(msg)
    if "error" in reply:
        fail("GetStatus call %d: %s" % (n, msg))
    s.close()
    return reply["parameters"]


def mode_poll(path, pid, stopfile):
    pid = int(pid)
    n = 0
    while not os.path.exists(stopfile):
        t = time.monotonic()
        status = get_status(path, n)
        print("reply %d %d %.3f" % (status["entriesRead"], rss_anon_kb(pid), time.monotonic() - t), flush=True)
        n += 1
        time.sleep(0.05)
    print("calls %d" % n, flush=True)


def mode_pending(path, sentfile):
    print("reply %d" % get_status(path, 0, sentfile)["entriesRead"], flush=True)


def failure_logger():
    """A function that logs one failure of an address (as vchkpw prints it) to the journal."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect("/run/systemd/journal/socket")

    def log(text):
        s.send(("MESSAGE=vchkpw-pop3: password fail joe@example.com:%s\n"
                "SYSLOG_IDENTIFIER=vpopmail\nSYSLOG_FACILITY=2\nPRIORITY=5\n" % text).encode())
    return log


def mode_attackers(listfile, tick_ms):
    texts = []
    with open(listfile) as f:
        for line in f:
            texts.append(line.split()[1])
    log = failure_logger()
    for tick in range(len(texts) + 2):
        for k in (tick, tick - 1, tick - 2):
            if 0 <= k < len(texts):
                log(texts[k])
        time.sleep(float(tick_ms) / 1000)
    print("logged %d" % (3 * len(texts)), flush=True)


def mode_evict(kept, lost, n):
    log = failure_logger()
    for text in (lost, lost, kept, kept):
        log(text)
    for i in range(1, int(n) + 1):
        # Short IPv6 text: vchkpw writes '_' for ':'.
        log(str(ipaddress.IPv6Address((0x20010db8000000010000000000000000) + i)).replace(":", "_"))
    log(kept)
    log(lost)
    print("logged %d" % (int(n) + 6), flush=True)


def mode_hold(path, n, releasefile):
    n = int(n)
    conns = []
    for i in range(n):
        try:
            conns.append(connect(path))
        except OSError as e:
            fail("connection %d: connect failed: %s" % (i, e))
    # Ask on every connection at once, then collect: a kept connection answers, a refused one
    # has been closed by the daemon (EOF, or a reset because we wrote to it).
    for s in conns:
        try:
            s.sendall(call("io.vpopguard.Manager.GetStatus"))
        except (BrokenPipeError, ConnectionResetError):
            pass
    answered, closed = [], 0
    deadline = time.monotonic() + CALL_TIMEOUT
    for i, s in enumerate(conns):
        msg, _ = read_reply(s, b"", deadline)
        if msg == "timeout":
            fail("connection %d: neither answered nor closed within %d s" % (i, CALL_TIMEOUT))
        if msg is None:
            closed += 1
            s.close()
            continue
        if b'"entriesRead"' not in msg:
            fail("connection %d: unexpected reply %r" % (i, msg[:200]))
        answered.append(s)
    print("resolved %d %d" % (len(answered), closed), flush=True)
    while not os.path.exists(releasefile):
        time.sleep(0.05)
    for i, s in enumerate(answered):
        s.sendall(call("io.vpopguard.Manager.GetStatus"))
        msg, _ = read_reply(s, b"", time.monotonic() + CALL_TIMEOUT)
        if msg is None or msg == "timeout" or b'"entriesRead"' not in msg:
            fail("held connection %d no longer answers: %r" % (i, msg))
    print("released", flush=True)


def mode_stall(path, releasefile, sentinel):
    s = connect(path)
    s.sendall(call("io.vpopguard.Manager.Monitor", {}, more=True))
    msg, buf = read_reply(s, b"", time.monotonic() + CALL_TIMEOUT)
    if msg is None or msg == "timeout":
        fail("Monitor: no first event: %r" % msg)
    if b'"continues":true' not in msg:
        fail("Monitor: unexpected reply %r" % msg[:200])
    print("stalled", flush=True)
    while not os.path.exists(releasefile):
        time.sleep(0.05)
    bans = 0
    deadline = time.monotonic() + CALL_TIMEOUT
    while True:
        msg, buf = read_reply(s, buf, deadline)
        if msg is None or msg == "timeout":
            fail("Monitor: the stream ended (%r) after %d bans, before the ban of %s" % (msg, bans, sentinel))
        p = json.loads(msg)["parameters"]
        if p["event"] == "ban" and p["ban"]["origin"] == "journal":
            bans += 1
            if p["ban"]["address"] == sentinel:
                break
    print("bans %d" % bans, flush=True)


def mode_pipeline(path, n, method, donefile):
    s = connect(path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    s.sendall(call(method, {}) * int(n))
    print("sent %s" % n, flush=True)
    while not os.path.exists(donefile):
        time.sleep(0.05)
    replies, total, end = 0, 0, "OPEN"
    s.setblocking(False)
    deadline = time.monotonic() + CALL_TIMEOUT
    while replies < int(n):
        left = deadline - time.monotonic()
        if left <= 0:
            fail("pipeline: %d of %s replies, and the connection still open after %d s" % (replies, n, CALL_TIMEOUT))
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            end = "RESET"
            break
        if not chunk:
            end = "EOF"
            break
        total += len(chunk)
        replies += chunk.count(b"\0")
    print("replies %d bytes %d end %s" % (replies, total, end), flush=True)


MODES = {
    "poll": mode_poll,
    "pending": mode_pending,
    "attackers": mode_attackers,
    "evict": mode_evict,
    "hold": mode_hold,
    "stall": mode_stall,
    "pipeline": mode_pipeline,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        fail("usage: flood-client.py %s ARGS..." % "|".join(MODES))
    MODES[sys.argv[1]](*sys.argv[2:])
