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


class IMAP(imaplib.IMAP4):
    def __init__(self, source, server, port, timeout):
        self.source = source
        super().__init__(server, port, timeout)

    def _create_socket(self, timeout):
        return connect(self.source, self.host, self.port, timeout)


class POP3(poplib.POP3):
    def __init__(self, source, server, port, timeout):
        self.source = source
        super().__init__(server, port, timeout)

    def _create_socket(self, timeout):
        return connect(self.source, self.host, self.port, timeout)


def imap_session(args):
    client = IMAP(args.source, args.server, args.port, args.timeout)
    if args.mode == "imap-tls":
        client.starttls(tls_context())

    def attempt(user, password):
        try:
            if args.mode != "imap-plain":
                client.login(user, password)
            else:
                client.authenticate("PLAIN", lambda _: b"\0%s\0%s" % (user.encode(), password.encode()))
            return True
        except imaplib.IMAP4.error as e:
            if "AUTHENTICATIONFAILED" not in str(e):
                raise
            return False

    def end(how):
        if how == "logout":
            client.logout()
        else:
            client.sock.close()

    return client, attempt, end


def pop3_session(args):
    client = POP3(args.source, args.server, args.port, args.timeout)
    if args.mode == "pop3-tls":
        client.stls(tls_context())

    def attempt(user, password):
        try:
            client.user(user)
            client.pass_(password)
            return True
        except poplib.error_proto as e:
            if b"[AUTH]" not in e.args[0]:
                raise
            return False

    def end(how):
        if how == "logout":
            client.quit()
        else:
            client.sock.close()

    return client, attempt, end


def smtp_session(args):
    client = smtplib.SMTP(args.server, args.port, timeout=args.timeout,
                          source_address=(args.source, 0))
    client.ehlo("client.example.test")
    if not client.has_extn("auth"):
        raise RuntimeError("the server offers no AUTH")

    def attempt(user, password):
        client.user, client.password = user, password
        try:
            if args.mode == "smtp-plain":
                client.auth("PLAIN", client.auth_plain)
            else:
                client.auth("LOGIN", client.auth_login, initial_response_ok=False)
            return True
        except smtplib.SMTPAuthenticationError as e:
            # 535: the password was refused; 454: the server could not check it.
            if e.smtp_code == 454:
                return None
            if e.smtp_code != 535:
                raise
            return False

    def end(how):
        if how == "logout":
            client.quit()
        else:
            client.sock.close()

    return client, attempt, end


def wait_for(path, timeout):
    open(path + ".ready", "w").close()
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise RuntimeError("%s did not appear within %d s" % (path, timeout))
        time.sleep(0.05)


def session(args):
    opener = {"imap": imap_session, "imap-plain": imap_session, "imap-tls": imap_session,
              "pop3": pop3_session, "pop3-tls": pop3_session,
              "smtp-plain": smtp_session, "smtp-login": smtp_session}[args.mode]
    _, attempt, end = opener(args)
    if args.pause:
        wait_for(args.pause, 10 * args.timeout)
    results = []
    for credentials in args.attempts:
        user, _, password = credentials.partition(":")
        try:
            ok = attempt(user, password)
        except (OSError, EOFError, imaplib.IMAP4.abort, smtplib.SMTPServerDisconnected):
            results.append("cut")
            break
        results.append({True: "ok", False: "fail", None: "tempfail"}[ok])
        if ok is not False:
            break
    if results[-1] != "cut":
        end(args.end)
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
