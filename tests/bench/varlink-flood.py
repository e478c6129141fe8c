#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A local user who asks vpopguardd as much as it can: CONNECTIONS connections to SOCKET, each
# keeping DEPTH calls pipelined (a new call for every reply), until STOPFILE exists. Used by the
# benchmark (run-bench.sh, scenario contended) and tests/integration/test-varlink-contended.sh.
#
#   varlink-flood.py SOCKET CONNECTIONS DEPTH STOPFILE KIND...
#
# The calls cycle through the KINDs:
#   status    GetStatus(): open to everyone; its cost grows with bans times jails
#   describe  GetInterfaceDescription(): the largest constant reply
#   parse     a message as large as a user other than root may send (8 KiB with its NUL) that is
#             as slow to parse as JSON gets ("[],[],..."); refused after parsing
#   bans      ListBans(): the largest reply, for members of systemd-journal or adm
#   failures  ListFailures()
#   regex     TestMessage() of a 64 KiB MESSAGE that runs the shipped jail's regular expressions
#             into PCRE2's match limit: the worst call before TestMessage became root's, and
#             before messages of other users were limited to 8 KiB (now the daemon hangs up
#             after 8 KiB)
#
# Prints "ready" once every connection had a reply, and at the end
#   "replies N errors E closed C min M"
# (M: the fewest replies any one connection got; a connection the daemon closed is opened again).
# Errors other than PermissionDenied and InvalidParameter, or a connection that cannot be opened,
# end it with "FAIL ..." and status 1.

import json
import os
import select
import socket
import sys
import time

UNPRIVILEGED_MESSAGE_MAX = 8 * 1024  # VARLINK_MESSAGE_UNPRIVILEGED_MAX, NUL included


def message(method, parameters=None):
    m = {"method": method}
    if parameters is not None:
        m["parameters"] = parameters
    return json.dumps(m, separators=(",", ":")).encode() + b"\0"


def parse_bomb():
    head = b'{"method":"io.vpopguard.Manager.GetStatus","parameters":{"x":['
    tail = b"[]]}}\0"
    n = (UNPRIVILEGED_MESSAGE_MAX - len(head) - len(tail)) // 3
    return head + b"[]," * n + tail


def regex_bomb():
    text = "vchkpw-pop3: invalid user/domain characters " + ":" * (64 * 1024 - 100)
    return message("io.vpopguard.Manager.TestMessage",
                   {"message": text, "fields": {"SYSLOG_IDENTIFIER": "vpopmail", "_UID": "0"}})


KINDS = {
    "status": message("io.vpopguard.Manager.GetStatus"),
    "describe": message("org.varlink.service.GetInterfaceDescription", {"interface": "io.vpopguard.Manager"}),
    "parse": parse_bomb(),
    "bans": message("io.vpopguard.Manager.ListBans"),
    "failures": message("io.vpopguard.Manager.ListFailures"),
    "regex": regex_bomb(),
}
EXPECTED_ERRORS = (b'"error":"io.vpopguard.Manager.PermissionDenied"', b'"error":"org.varlink.service.InvalidParameter"')


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


class Conn:
    def __init__(self, path):
        self.path = path
        self.replies = 0
        self.open()

    def open(self):
        try:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.connect(self.path)
        except OSError as e:
            fail("connect: %s" % e)
        self.s.setblocking(False)
        self.buf = b""
        self.out = b""
        self.in_flight = 0


def main(path, connections, depth, stopfile, *kinds):
    if not kinds or any(k not in KINDS for k in kinds):
        fail("usage: varlink-flood.py SOCKET CONNECTIONS DEPTH STOPFILE %s..." % "|".join(KINDS))
    calls = [KINDS[k] for k in kinds]
    conns = [Conn(path) for _ in range(int(connections))]
    depth = int(depth)
    turn = 0
    replies = errors = closed = 0
    ready = False
    last_check = 0.0

    def refill(c):
        nonlocal turn
        while c.in_flight < depth:
            c.out += calls[turn % len(calls)]
            turn += 1
            c.in_flight += 1

    for c in conns:
        refill(c)
    while True:
        now = time.monotonic()
        if now - last_check > 0.1:
            last_check = now
            if os.path.exists(stopfile):
                break
        by_fd = {c.s.fileno(): c for c in conns}
        rl = list(by_fd)
        wl = [fd for fd, c in by_fd.items() if c.out]
        r, w, _ = select.select(rl, wl, [], 0.1)
        for fd in w:
            c = by_fd[fd]
            try:
                n = c.s.send(c.out)
                c.out = c.out[n:]
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                pass  # the read side sees the end
        for fd in r:
            c = by_fd[fd]
            try:
                chunk = c.s.recv(1 << 20)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                closed += 1
                c.s.close()
                c.open()
                refill(c)
                continue
            c.buf += chunk
            while b"\0" in c.buf:
                msg, _, c.buf = c.buf.partition(b"\0")
                c.in_flight -= 1
                c.replies += 1
                replies += 1
                if b'"error"' in msg[:80]:
                    if not any(e in msg for e in EXPECTED_ERRORS):
                        fail("unexpected reply %r" % msg[:200])
                    errors += 1
            refill(c)
        if not ready and all(c.replies > 0 for c in conns):
            ready = True
            print("ready", flush=True)
    print("replies %d errors %d closed %d min %d" % (replies, errors, closed, min(c.replies for c in conns)),
          flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 6:
        fail("usage: varlink-flood.py SOCKET CONNECTIONS DEPTH STOPFILE KIND...")
    main(*sys.argv[1:])
