#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Who may call what on io.vpopguard.Manager, method by method, for callers as the kernel reports
# them on the socket (SO_PEERCRED, SO_PEERGROUPS):
#   - root may do everything;
#   - members of systemd-journal or adm (as a supplementary or the primary group) may read what
#     reveals client addresses: ListBans, ListFailures, Monitor, and GetStatus with its cursor;
#   - everybody else (UID 1000 without groups or with an unrelated one, UID 1, UID 999 in
#     nogroup) gets GetInfo, GetInterfaceDescription and GetStatus without the cursor, and
#     PermissionDenied for the rest; TestMessage, Ban, Unban and Reload are root's alone, and a
#     denied call changes nothing (the ban stays, no probe ban, no reload);
#   - vpopguardctl: status shows the cursor as withheld, bans says who may; test asks the daemon
#     as root (its running configuration) and judges locally from the files otherwise or with
#     --local/--config= (so an edit not yet reloaded shows the difference);
#   - a group that does not exist when the daemon starts grants nothing: without adm in the group
#     database, GID 4 reads nothing.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin permissions "$@"
vg_require_commands nft jq logger setpriv getent /usr/bin/python3
sock=/run/vpopguard/io.vpopguard.Manager
unset VPOPGUARD_SOCKET

# Other users run the client, vpopguardctl and the configuration from here (the temporary and
# build directories may be closed to them).
run=/run/vg-perm
conf=$run/vpopguard.conf
mkdir -p "$conf.d"
cp "$ctl" "$run/vpopguardctl"
cp "${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}/conf.d/10-vpopmail.conf" "$conf.d/"
printf '[Defaults]\nMaxRetry=3\nFindTime=10min\nBanTime=1h\nIgnoreAddress=198.51.100.0/28\n' >"$conf"

# A group database of our own (private to the mount namespace): the host's, with adm and
# systemd-journal for sure; a second one without adm for the last check.
cp /etc/group "$tmp/group"
for g in adm systemd-journal; do
        grep -q "^$g:" "$tmp/group" || echo "$g:x:$((64000 + ${#g})):" >>"$tmp/group"
done
grep -v '^adm:' "$tmp/group" >"$tmp/group-no-adm"
mount --bind "$tmp/group" /etc/group || vg_fail "cannot mount a private /etc/group"
JOURNAL_GID=$(getent group systemd-journal | cut -d: -f3)
ADM_GID=$(getent group adm | cut -d: -f3)
OTHER_GID=$(getent group users | cut -d: -f3) || OTHER_GID=100
[[ -n $JOURNAL_GID && -n $ADM_GID ]] || vg_fail "no systemd-journal or adm in $tmp/group"

# One call, its reply summed up on one line: "error NAME", or "ok" and what tells who saw what
# (GetStatus: whether the cursor came; ListBans/ListFailures: the addresses; TestMessage: the
# reason; Monitor: the first event, which the test brings about).
cat >"$run/call.py" <<'EOF'
import json, socket, sys

path, method = sys.argv[1], sys.argv[2]
params = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(120)
s.connect(path)
m = {"method": method, "parameters": params}
if method.endswith(".Monitor"):
    m["more"] = True
s.sendall(json.dumps(m).encode() + b"\0")
if method.endswith(".Monitor"):
    print("waiting", file=sys.stderr, flush=True)
buf = b""
while b"\0" not in buf:
    chunk = s.recv(65536)
    if not chunk:
        print("closed")
        sys.exit(0)
    buf += chunk
reply = json.loads(buf.split(b"\0")[0])
if "error" in reply:
    print("error " + reply["error"])
    sys.exit(0)
p = reply["parameters"]
name = method.rsplit(".", 1)[1]
if name == "GetStatus":
    print("ok cursor:" + ("null" if p.get("cursor") is None else "set"))
elif name == "ListBans":
    print("ok " + ",".join(sorted(b["address"] for b in p["bans"])))
elif name == "ListFailures":
    print("ok " + ",".join(sorted(f["address"] for f in p["failures"])))
elif name == "TestMessage":
    print("ok " + p["reason"])
elif name == "Monitor":
    print("ok " + p["event"])
else:
    print("ok")
EOF
chmod 0755 "$run" "$run/vpopguardctl" "$conf.d"
chmod 0644 "$run/call.py" "$conf" "$conf.d"/*

vg_start_journald

start_daemon() {
        vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state"
}
start_daemon
vg_log_failures 192.0.2.1
vg_log_failures 192.0.2.2 1
vg_poll 20 vg_banned banned4 192.0.2.1
has_failure() { "$ctl" --json failures 192.0.2.2 | jq -e '.failures | length == 1' >/dev/null; }
vg_poll 20 has_failure

# Identities: setpriv arguments, "" for root.
declare -A who=(
        [root]=""
        [u1000]="--reuid=1000 --regid=1000 --clear-groups"
        [u1000-users]="--reuid=1000 --regid=1000 --groups=$OTHER_GID"
        [u1000-journal]="--reuid=1000 --regid=1000 --groups=$JOURNAL_GID"
        [u1000-adm]="--reuid=1000 --regid=1000 --groups=$OTHER_GID,$ADM_GID"
        [u1000-primary-journal]="--reuid=1000 --regid=$JOURNAL_GID --clear-groups"
        [u1]="--reuid=1 --regid=1 --clear-groups"
        [u999]="--reuid=999 --regid=65534 --clear-groups"
)
# GID 999 is often systemd-journal itself; UID 999 stands for a system user outside the groups.
for g in 1 1000 65534 "$OTHER_GID"; do
        [[ $g != "$JOURNAL_GID" && $g != "$ADM_GID" ]] || vg_fail "GID $g is systemd-journal or adm here"
done
as() { # IDENTITY CMD...
        local id=$1
        shift
        if [[ -z ${who[$id]} ]]; then
                "$@"
        else
                # shellcheck disable=SC2086 # the arguments of setpriv
                setpriv ${who[$id]} "$@"
        fi
}

M=io.vpopguard.Manager
call() { # IDENTITY METHOD [PARAMETERS]: prints the summary line
        as "$1" /usr/bin/python3 "$run/call.py" "$sock" "${@:2}" || vg_fail "call.py $* as $1 failed"
}

# Monitor: allowed callers wait for an event, which a probe ban by root brings about.
monitor_answered() { # OUT: the call's summary is there; else a probe ban once it was sent
        [[ -s $1 ]] && return 0
        if grep -q waiting "$1.err"; then
                "$ctl" ban 203.0.113.99 --time=1min >/dev/null || vg_fail "probe ban failed"
                "$ctl" unban 203.0.113.99 >/dev/null || vg_fail "probe unban failed"
        fi
        return 1
}
monitor() { # IDENTITY
        local out=$tmp/monitor-$1 p
        as "$1" /usr/bin/python3 "$run/call.py" "$sock" "$M.Monitor" >"$out" 2>"$out.err" &
        p=$!
        vg_poll 60 monitor_answered "$out"
        wait "$p" || vg_fail "Monitor as $1: $(cat "$out.err")"
        cat "$out"
}

readers=(root u1000-journal u1000-adm u1000-primary-journal)
others=(u1000 u1000-users u1 u999)
denied="error $M.PermissionDenied"
declare -A want
for id in "${readers[@]}" "${others[@]}"; do
        want[$id GetInfo]=ok
        want[$id GetInterfaceDescription]=ok
        want[$id GetStatus]="ok cursor:null"
        want[$id ListBans]=$denied
        want[$id ListFailures]=$denied
        want[$id ListFailuresOf]=$denied
        want[$id Monitor]=$denied
        want[$id TestMessage]=$denied
        want[$id Ban]=$denied
        want[$id Unban]=$denied
        want[$id Reload]=$denied
done
for id in "${readers[@]}"; do
        want[$id GetStatus]="ok cursor:set"
        want[$id ListBans]="ok 192.0.2.1"
        want[$id ListFailures]="ok 192.0.2.2"
        want[$id ListFailuresOf]="ok 192.0.2.2"
        want[$id Monitor]="ok ban"
done
want[root TestMessage]="ok failure"
want[root Ban]=ok
want[root Unban]=ok
want[root Reload]=ok

test_message='{"message":"vchkpw-pop3: password fail joe@example.com:192.0.2.77","fields":{"SYSLOG_IDENTIFIER":"vpopmail","_UID":"0"}}'
check() { # IDENTITY NAME ACTUAL
        vg_assert_eq "${want[$1 $2]}" "$3" "$2 as $1"
}
# Root last: its Ban, Unban and Reload change things.
for id in "${others[@]}" u1000-journal u1000-adm u1000-primary-journal root; do
        check "$id" GetInfo "$(call "$id" org.varlink.service.GetInfo)"
        check "$id" GetInterfaceDescription "$(call "$id" org.varlink.service.GetInterfaceDescription '{"interface":"io.vpopguard.Manager"}')"
        check "$id" GetStatus "$(call "$id" $M.GetStatus)"
        check "$id" ListBans "$(call "$id" $M.ListBans)"
        check "$id" ListFailures "$(call "$id" $M.ListFailures)"
        check "$id" ListFailuresOf "$(call "$id" $M.ListFailures '{"address":"192.0.2.2"}')"
        check "$id" TestMessage "$(call "$id" $M.TestMessage "$test_message")"
        check "$id" Monitor "$(monitor "$id")"
        check "$id" Ban "$(call "$id" $M.Ban '{"address":"203.0.113.50"}')"
        check "$id" Unban "$(call "$id" $M.Unban '{"address":"192.0.2.1"}')"
        check "$id" Reload "$(call "$id" $M.Reload)"
        if [[ $id != root ]]; then
                # Denied calls changed nothing.
                vg_banned banned4 192.0.2.1 || vg_fail "$id lifted the ban of 192.0.2.1"
                ! vg_nft_set_has banned4 203.0.113.50 || vg_fail "$id banned 203.0.113.50"
                has_failure || vg_fail "the failure of 192.0.2.2 is gone after $id's calls"
        fi
done
# Root's calls took effect.
vg_banned banned4 203.0.113.50 || vg_fail "root's Ban of 203.0.113.50 is not in the set"
! vg_nft_set_has banned4 192.0.2.1 || vg_fail "root's Unban left 192.0.2.1 in the set"
grep -q 'Reloading configuration' "$tmp/daemon.log" || vg_fail "root's Reload did not reload"
vg_assert_eq 1 "$(grep -c 'Reloading configuration' "$tmp/daemon.log")" "reloads (only root's)"

# --- vpopguardctl as the user sees it.
ctl_as() { # IDENTITY WANT-RC ARGS...
        local id=$1 want_rc=$2 rc=0
        shift 2
        as "$id" "$run/vpopguardctl" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
        vg_assert_eq "$want_rc" "$rc" "vpopguardctl $* as $id ($(cat "$tmp/out" "$tmp/err"))"
}
ctl_as u1000 0 status
grep -qxF 'Cursor:           - (shown to root, systemd-journal and adm only)' "$tmp/out" ||
        vg_fail "status as UID 1000: $(cat "$tmp/out")"
ctl_as u1000-journal 0 status
grep -qE '^Cursor: +s=' "$tmp/out" || vg_fail "status as a member of systemd-journal: $(cat "$tmp/out")"
ctl_as u1000 1 bans
grep -qF "PermissionDenied: only root and members of the groups systemd-journal and adm may see addresses" "$tmp/err" ||
        vg_fail "bans as UID 1000: $(cat "$tmp/err")"
ctl_as u1000-adm 0 --no-legend bans
vg_assert_eq 203.0.113.50 "$(cut -d' ' -f1 "$tmp/out")" "bans as a member of adm"

# test: root asks the daemon, which runs the configuration it loaded; the files now also
# ignore 192.0.2.0/24, which only local judgements know of.
echo 'IgnoreAddress=192.0.2.0/24' >>"$conf"
line='vchkpw-pop3: password fail joe@example.com:192.0.2.77'
ctl_as root 0 --json test "$line"
vg_assert_eq failure "$(jq -r .reason "$tmp/out")" "test as root (the daemon's running configuration)"
ctl_as root 0 --json test --local --config="$conf" "$line"
vg_assert_eq ignored-address "$(jq -r .reason "$tmp/out")" "test --local as root (the files)"
ctl_as u1000 0 --json test --config="$conf" "$line"
vg_assert_eq ignored-address "$(jq -r .reason "$tmp/out")" "test --config= as UID 1000"
ctl_as u1000-journal 0 --json test --config="$conf" --field=_UID=1000 "$line"
vg_assert_eq untrusted-sender "$(jq -r .reason "$tmp/out")" "test --config= --field=_UID=1000 as systemd-journal"
# Without --config= other users read the default files, which the test system lacks.
if [[ ! -e /etc/vpopguard && ! -e /run/vpopguard/vpopguard.conf.d && ! -e /usr/lib/vpopguard ]]; then
        ctl_as u1000 1 test "$line"
        grep -qF "No jail is enabled in /etc/vpopguard/vpopguard.conf" "$tmp/err" || vg_fail "test as UID 1000: $(cat "$tmp/err")"
else
        vg_log "vpopguard's default configuration exists here: not checking test without --config= as UID 1000"
fi

# --- A group that does not exist when the daemon starts grants nothing.
vg_term_daemon
mount --bind "$tmp/group-no-adm" /etc/group || vg_fail "cannot mount the group file without adm"
start_daemon
vg_assert_eq "$denied" "$(call u1000-adm $M.ListBans)" "ListBans as GID $ADM_GID without a group adm"
vg_assert_eq "ok 203.0.113.50" "$(call u1000-journal $M.ListBans)" "ListBans as systemd-journal without a group adm"
vg_term_daemon

vg_log "all checks passed"
