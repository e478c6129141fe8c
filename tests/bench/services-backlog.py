#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A mail host's journal for the benchmark's "services" scenario (run-bench.sh).

  services-backlog.py --entries=N --seed=S --start-usec=USEC --postfix-uid=UID --out=DIR

Writes journal export format on stdout: N entries of the five services the shipped jails guard
(vpopmail, sshd, dovecot, postfix-sasl, courier), a fifth each, with FAILURE_PERCENT of them
failures spread over all five and the rest the services' everyday lines (logins, logouts,
connects). The line shapes are those of tests/*-lines.txt. Every address has one role:
attackers fail 1-6 times in one service, innocents only appear in everyday lines (each often
enough that a daemon which wrongly counted them would ban them). Into DIR it writes
expect-all and expect-vpopmail (the addresses a correct daemon bans with every jail enabled,
and with the vpopmail jail alone, sorted like `nft list` output through LC_ALL=C sort) and
counts ("key=value": entries, failures, and entries per service). The same arguments give the
same bytes.
"""

import argparse
import ipaddress
import os
import random
import sys

FAILURE_PERCENT = 10
MAX_RETRY = 3  # the shipped jails leave MaxRetry= at its default
INNOCENTS = 2000

# identifier, _UID (None: the postfix user), failure lines, everyday lines. {a} is the address,
# {u} a user name, {p} a port, {s} a dovecot session id.
SERVICES = {
    "vpopmail": (["vpopmail"], 0, [
        "vchkpw-pop3: password fail {u}@example.com:{a}",
        "vchkpw-smtp: vpopmail user not found {u}@example.com:{a}",
        "vchkpw-submission: password fail (pass: 'hunter2') {u}@example.com:{a}",
    ], [
        "vchkpw-pop3: (PLAIN) login success joe@example.com:{a}",
        "vchkpw-imap: (LOGIN) login success info@example.com:{a}",
    ]),
    "sshd": (["sshd", "sshd-session"], 0, [
        "Failed password for root from {a} port {p} ssh2",
        "Failed password for invalid user {u} from {a} port {p} ssh2",
        "Invalid user {u} from {a} port {p}",
        "Connection closed by invalid user {u} {a} port {p} [preauth]",
    ], [
        "Accepted publickey for joe from {a} port {p} ssh2: ED25519 SHA256:3q2+7w/abcdefghijklmnopqrstuvwxyz0123456789",
        "Received disconnect from {a} port {p}:11: disconnected by user",
        "Disconnected from user joe {a} port {p}",
        "pam_unix(sshd:session): session opened for user joe(uid=1000) by (uid=0)",
    ]),
    "dovecot": (["dovecot"], 0, [
        "imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 2 secs): user=<{u}>, method=PLAIN, rip={a}, lip=192.0.2.1, TLS, session=<{s}>",
        "pop3-login: Login aborted: Connection closed (auth failed, 3 attempts in 15 secs) (auth_failed): user=<{u}>, method=PLAIN, rip={a}, lip=192.0.2.1, TLS, session=<{s}>",
        "auth: passwd-file({u},{a},<{s}>): unknown user",
    ], [
        "imap-login: Login: user=<joe@example.com>, method=PLAIN, rip={a}, lip=192.0.2.1, mpid=4242, TLS, session=<{s}>",
        "imap(joe@example.com)<4242><{s}>: Logged out in=120 out=2048 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0",
        "pop3-login: Disconnected: Connection closed (no auth attempts in 0 secs): user=<>, rip={a}, lip=192.0.2.1, TLS, session=<{s}>",
    ]),
    "postfix-sasl": (["postfix/smtpd", "postfix/submission/smtpd"], None, [
        "warning: unknown[{a}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username={u}@example.com",
        "warning: unknown[{a}]: SASL PLAIN authentication failed: authentication failure, sasl_username={u}",
    ], [
        "connect from unknown[{a}]",
        "disconnect from unknown[{a}] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6",
        "3F1A21234: client=unknown[{a}], sasl_method=PLAIN, sasl_username=joe",
        "lost connection after AUTH from unknown[{a}]",
    ]),
    "courier": (["imapd", "pop3d-ssl"], 0, [
        "LOGIN FAILED, user={u}, ip=[::ffff:{a}], port=[{p}]",
        "LOGIN FAILED, method=PLAIN, ip=[::ffff:{a}], port=[{p}]",
    ], [
        "LOGIN, user=joe, ip=[::ffff:{a}], port=[{p}], protocol=IMAP",
        "LOGOUT, user=joe, ip=[::ffff:{a}], headers=0, body=0, rcvd=20, sent=300, time=5",
        "Connection, ip=[::ffff:{a}], port=[{p}]",
    ]),
}
USERS = ["admin", "info", "test", "oracle", "support", "sales", "postmaster", "ubnt"]
# Services that print IPv6 in the standard form (vpopmail prints its own, courier's lines here
# are IPv4-mapped): a share of their attackers is IPv6.
IPV6_SERVICES = {"sshd", "dovecot", "postfix-sasl"}


def address(rng, index, ipv6):
    """The index-th address of a role: distinct for distinct indices."""
    if ipv6:
        return ipaddress.IPv6Address((0x20010db8 << 96) | (index << 16) | rng.randrange(1, 0xffff))
    # 100.64.0.0/10 for attackers and innocents alike: the index keeps them apart.
    return ipaddress.IPv4Address(((100 << 24) | (64 << 16)) + index)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start-usec", type=int, required=True)
    ap.add_argument("--spacing-usec", type=int, default=1001)
    ap.add_argument("--postfix-uid", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    names = list(SERVICES)

    # Innocents first (indices 0..INNOCENTS-1), attackers after them.
    innocents = [address(rng, i, False) for i in range(INNOCENTS)]
    n_failures = args.entries * FAILURE_PERCENT // 100
    events = []  # (service, address or None for an everyday line)
    banned = {name: [] for name in names}
    attacker = 0
    while len(events) < n_failures:
        service = rng.choice(names)
        k = min(rng.randint(1, 6), n_failures - len(events))
        a = address(rng, INNOCENTS + attacker, service in IPV6_SERVICES and rng.random() < 0.2)
        attacker += 1
        events += [(service, a)] * k
        if k >= MAX_RETRY:
            banned[service].append(a)
    while len(events) < args.entries:
        events.append((rng.choice(names), None))
    rng.shuffle(events)

    counts = {name: 0 for name in names}
    out = sys.stdout
    for i, (service, a) in enumerate(events):
        identifiers, uid, failures, everyday = SERVICES[service]
        template = rng.choice(failures if a is not None else everyday)
        message = template.format(a=a if a is not None else rng.choice(innocents), u=rng.choice(USERS),
                                  p=rng.randrange(1024, 65536), s="%016x" % rng.getrandbits(64))
        counts[service] += 1
        out.write("__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n_TRANSPORT=syslog\n"
                  "_UID=%d\nPRIORITY=%d\nSYSLOG_IDENTIFIER=%s\nMESSAGE=%s\n\n" %
                  (args.start_usec + i * args.spacing_usec, 10_000_000 + i * args.spacing_usec,
                   "6c0f2f1b8a8e4c4f9d5b2d7e3a1c0b9e", args.postfix_uid if uid is None else uid,
                   4 if a is not None else 6, rng.choice(identifiers), message))

    os.makedirs(args.out, exist_ok=True)

    def write_expect(path, services):
        lines = sorted(str(a) for s in services for a in banned[s])
        with open(path, "w") as f:
            f.writelines(x + "\n" for x in sorted(lines, key=lambda x: x.encode()))

    write_expect(os.path.join(args.out, "expect-all"), names)
    write_expect(os.path.join(args.out, "expect-vpopmail"), ["vpopmail"])
    with open(os.path.join(args.out, "counts"), "w") as f:
        f.write("entries=%d\nfailures=%d\nattackers=%d\n" % (len(events), n_failures, attacker))
        for name in names:
            f.write("entries_%s=%d\n" % (name.replace("-", "_"), counts[name]))


if __name__ == "__main__":
    main()
