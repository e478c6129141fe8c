#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A mail client for the real-daemon tests (test-real-dovecot.sh, test-real-postfix-sasl.sh), on
# Python's own imaplib, poplib and smtplib, connecting FROM a given local address:
#
#   mail-client.py [--timeout S] [--pause FILE] [--port N] MODE SOURCE SERVER END USER:PASSWORD...
#
# MODE is one of (the port, unless --port says otherwise)
#   imap        IMAP LOGIN (Dovecot logs it as method=PLAIN)
#   imap-plain  IMAP AUTHENTICATE PLAIN
#   imap-tls    IMAP STARTTLS, then LOGIN (the server's certificate is not checked)
#   pop3        POP3 USER and PASS
#   pop3-tls    POP3 STLS, then USER and PASS
#   smtp-plain  SMTP AUTH PLAIN with the initial response
#   smtp-login  SMTP AUTH LOGIN
# Each USER:PASSWORD is one login attempt on the one connection, in order, until one succeeds.
# Prints one word per attempt on one line: "ok", "fail", "tempfail" (SMTP's 454) or "cut" (no
# answer: the connection broke or timed out, as when the attempt got the client banned); the
# last two end the attempts. Then it ends the session as END says: "logout" (LOGOUT, QUIT) or
# "drop" (closes the socket without a word); not after "cut". With --pause FILE it creates
# FILE.ready once connected (after EHLO), and waits for FILE to exist before the first attempt.
# Anything else (no connection, an answer that is neither) prints "error: ..." to stderr and
# exits 1.
#
#   mail-client.py [--timeout S] probe SOURCE SERVER PORT
#
# Connects to PORT and prints "connected" (the greeting came), "refused" or "timeout" (within S
# seconds, default 30): a banned address's packets are dropped, so its connection times out.

import argparse
import imaplib
import os
import poplib
import smtplib
import socket
import ssl
import sys
import time

PORTS = {"imap": 143, "imap-plain": 143, "imap-tls": 143, "pop3": 110, "pop3-tls": 110,
         "smtp-plain": 25, "smtp-login": 25}


def tls_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def connect(source, server, port, timeout):
    return socket.create_connection((server, port), timeout, source_address=(source, 0))


def from_source(library_class):
    """library_class (imaplib's or poplib's), connecting from a given source address."""
    class Client(library_class):
        def __init__(self, source, server, port, timeout):
            self.source = source
            super().__init__(server, port, timeout)

        def _create_socket(self, timeout):
            return connect(self.source, self.host, self.port, timeout)

    return Client


IMAP = from_source(imaplib.IMAP4)
POP3 = from_source(poplib.POP3)


def open_smtp(source, server, port, timeout):
    client = smtplib.SMTP(server, port, timeout=timeout, source_address=(source, 0))
    client.ehlo("client.example.test")
    if not client.has_extn("auth"):
        raise RuntimeError("the server offers no AUTH")
    return client


def imap_login(client, mode, user, password):
    if mode != "imap-plain":
        client.login(user, password)
    else:
        client.authenticate("PLAIN", lambda _: b"\0%s\0%s" % (user.encode(), password.encode()))


def pop3_login(client, mode, user, password):
    client.user(user)
    client.pass_(password)


def smtp_login(client, mode, user, password):
    client.user, client.password = user, password
    if mode == "smtp-plain":
        client.auth("PLAIN", client.auth_plain)
    else:
        client.auth("LOGIN", client.auth_login, initial_response_ok=False)


def imap_refusal(e):
    if isinstance(e, imaplib.IMAP4.error) and "AUTHENTICATIONFAILED" in str(e):
        return "fail"
    return None


def pop3_refusal(e):
    if isinstance(e, poplib.error_proto) and b"[AUTH]" in e.args[0]:
        return "fail"
    return None


def smtp_refusal(e):
    # 535: the password was refused; 454: the server could not check it.
    if isinstance(e, smtplib.SMTPAuthenticationError):
        return {535: "fail", 454: "tempfail"}.get(e.smtp_code)
    return None


# Per protocol: how to connect, the STARTTLS method, one login attempt, what an exception of
# the attempt answers ("fail", "tempfail", or None: no answer), and how to log out.
PROTOCOLS = {
    "imap": (IMAP, "starttls", imap_login, imap_refusal, "logout"),
    "pop3": (POP3, "stls", pop3_login, pop3_refusal, "quit"),
    "smtp": (open_smtp, None, smtp_login, smtp_refusal, "quit"),
}
CUT = (OSError, EOFError, imaplib.IMAP4.abort, smtplib.SMTPServerDisconnected)


def wait_for(path, timeout):
    open(path + ".ready", "w").close()
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise RuntimeError("%s did not appear within %d s" % (path, timeout))
        time.sleep(0.05)


def session(args):
    opener, starttls, login, refusal, logout = PROTOCOLS[args.mode.split("-")[0]]
    client = opener(args.source, args.server, args.port, args.timeout)
    if args.mode.endswith("-tls"):
        getattr(client, starttls)(tls_context())
    if args.pause:
        wait_for(args.pause, 10 * args.timeout)
    results = []
    for credentials in args.attempts:
        user, _, password = credentials.partition(":")
        try:
            login(client, args.mode, user, password)
            answer = "ok"
        except Exception as e:  # an answer first: smtplib's errors are OSErrors too
            answer = refusal(e)
            if answer is None:
                if not isinstance(e, CUT):
                    raise
                answer = "cut"
        results.append(answer)
        if answer != "fail":
            break
    if results[-1] != "cut":
        if args.end == "logout":
            getattr(client, logout)()
        else:
            client.sock.close()
    print(" ".join(results))


def probe(args):
    try:
        with connect(args.source, args.server, int(args.end), args.timeout) as s:
            if not s.recv(1):
                raise RuntimeError("closed before the greeting")
        print("connected")
    except ConnectionRefusedError:
        print("refused")
    except socket.timeout:
        print("timeout")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--pause")
    parser.add_argument("--port", type=int)
    parser.add_argument("mode", choices=sorted(PORTS) + ["probe"])
    parser.add_argument("source")
    parser.add_argument("server")
    parser.add_argument("end", help="logout or drop; for probe, the port")
    parser.add_argument("attempts", nargs="*")
    args = parser.parse_args()
    if args.port is None and args.mode != "probe":
        args.port = PORTS[args.mode]
    try:
        if args.mode == "probe":
            probe(args)
        else:
            if args.end not in ("logout", "drop") or not args.attempts:
                parser.error("END is logout or drop, and at least one USER:PASSWORD follows")
            session(args)
    except Exception as e:  # anything else is not what the test asked for
        print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)


main()
