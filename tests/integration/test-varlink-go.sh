#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# io.vpopguard.Manager against clients that are not ours:
#   - tests/varlink-go/main.go, built offline on the reference Go implementation of varlink
#     (Debian's golang-github-varlink-go-dev): GetInfo, GetInterfaceDescription (parsed by the
#     reference IDL parser; every reply and error is checked against it), InterfaceNotFound,
#     MethodNotFound, parameters omitted/null/{}, InvalidParameter, the interface's own errors,
#     a oneway call, pipelined calls, and Monitor() streaming the ban of failures this script logs;
#   - hostile local clients (python3 sockets): malformed calls and 10 MiB without a NUL get
#     their connection closed without a reply, 200 connections from UID 1000 are cut to the
#     per-UID limit of 64, and through all of it other clients are answered and the daemon
#     keeps banning from the journal.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin varlink-go "$@"
vg_require_commands nft jq logger setpriv /usr/bin/python3
src=${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}
conf=$tmp/vpopguard.conf
sock=/run/vpopguard/io.vpopguard.Manager
version=$("$daemon" --version | awk '{ print $2 }')
unset VPOPGUARD_SOCKET

# --- The Go client, built offline from Debian's packages into the temporary directory.
command -v go >/dev/null || vg_skip "no go (package golang-go)"
[[ -d /usr/share/gocode/src/github.com/varlink/go/varlink ]] ||
        vg_skip "no varlink Go library (package golang-github-varlink-go-dev)"
mkdir -p "$tmp/go"
(cd "$src/tests/varlink-go" &&
        GOPATH=/usr/share/gocode GO111MODULE=off GOPROXY=off GOFLAGS='' GOCACHE="$tmp/go/cache" \
                go build -o "$tmp/go/varlink-go-client" main.go) >"$tmp/go/build.log" 2>&1 ||
        vg_fail "building the Go client failed: $(cat "$tmp/go/build.log")"

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=10min BanTime=1h

vg_start_journald

banned() { # ADDRESS
        vg_daemon_ok
        vg_nft_set_has banned4 "$1"
}

has_line() { # FILE LINE
        grep -qxF -- "$2" "$1"
}

vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state" --log-level=debug

# --- The Go client. It says "monitoring" once its Monitor() call is sure to see new bans.
vg_spawn "$tmp/go/client.log" "$tmp/go/varlink-go-client" -socket="$sock" -version="$version" \
        -monitor-address=192.0.2.77
client=$VG_LAST_PID
client_ready() {
        has_line "$tmp/go/client.log" monitoring && return 0
        vg_pid_alive "$client" || vg_fail "the Go client ended early: $(cat "$tmp/go/client.log")"
        return 1
}
vg_poll 30 client_ready
vg_log_failures 192.0.2.77
vg_poll 40 vg_pid_exited "$client"
rc=0
wait "$client" || rc=$?
vg_kill "$client" 1 # only stops tracking it
vg_assert_eq 0 "$rc" "exit status of the Go client ($(cat "$tmp/go/client.log"))"
for check in GetInfo GetInterfaceDescription GetInterfaceDescription-service InterfaceNotFound MethodNotFound \
        InterfaceNotFound-call GetStatus-omitted GetStatus-null GetStatus-empty InvalidParameter-unknown \
        InvalidParameter-type InvalidParameter-missing NoSuchJail InvalidAddress NotBanned ExpectedMore oneway \
        pipelining Monitor; do
        has_line "$tmp/go/client.log" "ok $check" || vg_fail "the Go client did not check $check: $(cat "$tmp/go/client.log")"
done
banned 192.0.2.77 || vg_fail "the ban the Go client saw is not in banned4"

# --- Hostile clients. UID 1000 runs them too, so the script lives where it can read it.
mkdir -p /run/vg-py
cat >/run/vg-py/hostile.py <<'EOF'
import os, select, socket, sys, time

SOCK = sys.argv[2]
GET_STATUS = b'{"method":"io.vpopguard.Manager.GetStatus"}\0'


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    return s


def closed_within(s, seconds):
    """True once the peer has closed s (EOF or reset) without sending anything."""
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return False
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return True
        if data == b"":
            return True
        fail("got a reply where the connection should have been closed: %r" % data[:200])


def answered(s):
    s.settimeout(10)
    s.sendall(GET_STATUS)
    reply = b""
    while not reply.endswith(b"\0"):
        chunk = s.recv(65536)
        if not chunk:
            return False
        reply += chunk
    return b'"version"' in reply


def garbage():
    bad = {
        "not JSON": b"\x01\x02garbage{{{\xff\0",
        "a JSON array": b'["io.vpopguard.Manager.GetStatus"]\0',
        "method not a string": b'{"method":5}\0',
        "no method": b'{"parameters":{}}\0',
        "parameters a string": b'{"method":"io.vpopguard.Manager.GetStatus","parameters":"x"}\0',
        "more and oneway": b'{"method":"io.vpopguard.Manager.GetStatus","more":true,"oneway":true}\0',
        "more not a boolean": b'{"method":"io.vpopguard.Manager.GetStatus","more":1}\0',
        "upgrade": b'{"method":"io.vpopguard.Manager.GetStatus","upgrade":true}\0',
        "invalid UTF-8": b'{"method":"io.vpopguard.Manager.\xc3\x28"}\0',
        "a NUL alone": b"\0",
    }
    for name, message in bad.items():
        good, evil = connect(), connect()
        evil.sendall(message)
        if not closed_within(evil, 10):
            fail("garbage (%s): the connection stays open" % name)
        if not answered(good):
            fail("garbage (%s): another client is not answered" % name)
        good.close()
        evil.close()
        print("ok garbage: " + name, flush=True)


def big():
    good, evil = connect(), connect()
    evil.settimeout(20)
    sent = 0
    chunk = b"a" * 65536
    try:
        while sent < 10 * 1024 * 1024:
            evil.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    except socket.timeout:
        fail("10 MiB without NUL: the daemon stopped reading after %d bytes but kept the connection" % sent)
    if not closed_within(evil, 10):
        fail("10 MiB without NUL: the connection stays open after %d bytes" % sent)
    if not answered(good):
        fail("10 MiB without NUL: another client is not answered")
    print("ok 10 MiB without NUL: closed after %d bytes sent" % sent, flush=True)


def flood():
    n, limit, release = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    conns = [connect() for _ in range(n)]
    end = time.monotonic() + 10
    closed = set()
    while len(closed) < n - limit and time.monotonic() < end:
        for i, s in enumerate(conns):
            if i not in closed and closed_within(s, 0.001):
                closed.add(i)
    if len(closed) != n - limit:
        fail("flood: %d of %d connections closed, expected %d" % (len(closed), n, n - limit))
    if closed != set(range(limit, n)):
        fail("flood: closed were not the ones over the limit: %s" % sorted(closed))
    print("holding %d of %d" % (limit, n), flush=True)
    end = time.monotonic() + 60
    while not os.path.exists(release):
        if time.monotonic() > end:
            fail("flood: never released")
        time.sleep(0.02)
    for i in range(limit):
        if not answered(conns[i]):
            fail("flood: connection %d within the limit is not answered" % i)
    print("ok flood: %d answered, %d closed" % (limit, n - limit), flush=True)


{"garbage": garbage, "big": big, "flood": flood}[sys.argv[1]]()
EOF
chmod 0755 /run/vg-py
chmod 0644 /run/vg-py/hostile.py
# The temporary directory (0700) and the build directory may be closed to other users.
cp "$ctl" /run/vg-py/vpopguardctl
chmod 0755 /run/vg-py/vpopguardctl
hostile() { # MODE ARGS...: as UID 1000
        setpriv --reuid=1000 --regid=1000 --clear-groups /usr/bin/python3 /run/vg-py/hostile.py "$1" "$sock" "${@:2}"
}

hostile garbage >"$tmp/garbage.log" 2>&1 || vg_fail "garbage: $(cat "$tmp/garbage.log")"
hostile big >"$tmp/big.log" 2>&1 || vg_fail "10 MiB: $(cat "$tmp/big.log")"
grep -q '^ok 10 MiB' "$tmp/big.log" || vg_fail "10 MiB: $(cat "$tmp/big.log")"
vg_assert_eq 10 "$(grep -c '^ok garbage' "$tmp/garbage.log")" "garbage variants closed ($(cat "$tmp/garbage.log"))"
vg_daemon_ok

# 200 connections from UID 1000, held while the journal brings an attack.
vg_spawn "$tmp/flood.log" setpriv --reuid=1000 --regid=1000 --clear-groups \
        /usr/bin/python3 /run/vg-py/hostile.py flood "$sock" 200 64 /run/vg-py/release
flood=$VG_LAST_PID
flood_holding() {
        has_line "$tmp/flood.log" "holding 64 of 200" && return 0
        vg_pid_alive "$flood" || vg_fail "flood: $(cat "$tmp/flood.log")"
        return 1
}
vg_poll 20 flood_holding
vg_log_failures 192.0.2.88
vg_poll 20 banned 192.0.2.88
# Root and another user are still answered while UID 1000 is at its limit.
"$ctl" --json bans >"$tmp/bans.json" || vg_fail "root is not answered during the flood"
jq -e 'any(.bans[]; .address == "192.0.2.88")' "$tmp/bans.json" >/dev/null || vg_fail "ListBans during the flood: $(cat "$tmp/bans.json")"
setpriv --reuid=1001 --regid=1001 --clear-groups /run/vg-py/vpopguardctl status >/dev/null 2>"$tmp/uid1001.err" ||
        vg_fail "UID 1001 is not answered during the flood: $(cat "$tmp/uid1001.err")"
: >/run/vg-py/release
vg_poll 20 vg_pid_exited "$flood"
rc=0
wait "$flood" || rc=$?
vg_kill "$flood" 1
vg_assert_eq 0 "$rc" "flood client ($(cat "$tmp/flood.log"))"
has_line "$tmp/flood.log" "ok flood: 64 answered, 136 closed" || vg_fail "flood: $(cat "$tmp/flood.log")"

# After all of it, UID 1000 can connect again and the daemon still bans.
setpriv --reuid=1000 --regid=1000 --clear-groups /run/vg-py/vpopguardctl status >/dev/null 2>"$tmp/uid1000.err" ||
        vg_fail "UID 1000 is not answered after its connections closed: $(cat "$tmp/uid1000.err")"
vg_log_failures 192.0.2.89
vg_poll 20 banned 192.0.2.89

vg_log "all checks passed"
