#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The scale benchmark's view of the kernel, asked one element at a time (NFT_MSG_GETSETELEM with
# a key: a hash lookup each) in the inet table TABLE with sets SET4 and SET6:
#
#   nft-probe.py count TABLE SET4 SET6 <ADDRESSES    prints "present N" and "absent N"
#   nft-probe.py wait TABLE SET4 SET6 SECONDS ADDRESS...
#        polls until every ADDRESS is present; prints "at USEC" (CLOCK_REALTIME), exit 1 on timeout
#   nft-probe.py bans TABLE SET4 SET6 STOPFILE OUT
#        the ban path's latency, one ban at a time until STOPFILE exists: three vpopmail failures
#        of a new address (from 198.18.0.1) into journald's socket, then polls until the address
#        is in the set; writes "WRITE_USEC LATENCY_USEC" lines to OUT.
#
# Why not nft: listing a set costs time quadratic in its size (the kernel walks the hash table
# from the start for each dump message: 1.7 s for 100 000 elements, 25-38 s for 500 000), and
# `nft get element` loads the whole set first.
import ipaddress
import os
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWSETELEM = 12
NFT_MSG_GETSETELEM = 13
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NFPROTO_INET = 1
NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_SET_ELEM_LIST_ELEMENTS = 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_DATA_VALUE = 1
NLA_F_NESTED = 0x8000
BATCH = 512


def attr(kind, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * ((4 - n % 4) % 4)


def request(seq, table, set_name, key):
    elem = attr(NFTA_SET_ELEM_KEY | NLA_F_NESTED, attr(NFTA_DATA_VALUE, key))
    body = (struct.pack("=BBH", NFPROTO_INET, 0, 0)
            + attr(NFTA_SET_ELEM_LIST_TABLE, table + b"\0")
            + attr(NFTA_SET_ELEM_LIST_SET, set_name + b"\0")
            + attr(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, attr(NFTA_LIST_ELEM | NLA_F_NESTED, elem)))
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM,
                       NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


class Kernel:
    def __init__(self, table, set4, set6):
        self.table, self.set4, self.set6 = table.encode(), set4.encode(), set6.encode()
        self.s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.s.bind((0, 0))
        self.seq = 0
        self.buf = bytearray(1 << 20)

    def present(self, addresses):
        """How many of the ip_address objects are elements."""
        present = 0
        for i in range(0, len(addresses), BATCH):
            chunk = addresses[i:i + BATCH]
            reqs = []
            for a in chunk:
                self.seq += 1
                reqs.append(request(self.seq, self.table, self.set4 if a.version == 4 else self.set6, a.packed))
            self.s.sendall(b"".join(reqs))
            # Each request gets its element (NEWSETELEM) and an ack, or an error (ENOENT: absent).
            acks = 0
            while acks < len(chunk):
                size = self.s.recv_into(self.buf)
                data = self.buf
                off = 0
                while off + 16 <= size:
                    length, kind = struct.unpack_from("=IH", data, off)
                    if kind == NLMSG_ERROR:
                        err = struct.unpack_from("=i", data, off + 16)[0]
                        acks += 1
                        if err not in (0, -2):
                            sys.exit(f"nft-probe.py: the kernel says {os.strerror(-err)}")
                    elif kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM:
                        present += 1
                    off += (length + 3) & ~3
        return present


def now_usec():
    return time.clock_gettime_ns(time.CLOCK_REALTIME) // 1000


def wait_for(k, addresses, deadline):
    while k.present(addresses) < len(addresses):
        if time.monotonic() > deadline:
            return None
        time.sleep(0.001)
    return now_usec()


def bans(k, stopfile, out):
    j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    j.connect("/run/systemd/journal/socket")
    n = 0
    with open(out, "w") as f:
        while not os.path.exists(stopfile):
            a = ipaddress.ip_address(int(ipaddress.ip_address("198.18.0.1")) + n)
            n += 1
            msg = f"MESSAGE=vchkpw-smtp: password fail probe{n}@example.com:{a}\nSYSLOG_IDENTIFIER=vpopmail\nPRIORITY=5\n"
            for _ in range(3):
                j.send(msg.encode())
            written = now_usec()
            at = wait_for(k, [a], time.monotonic() + 120)
            if at is None:
                sys.exit(f"nft-probe.py: {a} not banned within 120 s")
            f.write(f"{written} {at - written}\n")
            f.flush()
            time.sleep(0.02)


def main():
    mode, table, set4, set6 = sys.argv[1:5]
    k = Kernel(table, set4, set6)
    if mode == "count":
        addresses = [ipaddress.ip_address(line.strip()) for line in sys.stdin if line.strip()]
        n = k.present(addresses)
        print(f"present {n}\nabsent {len(addresses) - n}")
    elif mode == "wait":
        at = wait_for(k, [ipaddress.ip_address(a) for a in sys.argv[6:]], time.monotonic() + float(sys.argv[5]))
        if at is None:
            sys.exit(1)
        print(f"at {at}")
    elif mode == "bans":
        bans(k, sys.argv[5], sys.argv[6])
    else:
        sys.exit(f"nft-probe.py: unknown mode {mode}")


main()
