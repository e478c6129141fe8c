#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The shipped courier jail (conf.d/10-courier.conf), switched on by the documented drop-in,
# against Debian's real Courier-IMAP and Courier POP3: couriertcpd, imaplogin/courierpop3login
# and authdaemond (PAM) run in the test's namespaces as Debian's init scripts start them, under
# courierlogger, which passes their lines to the test's journald through syslog(3). Python's
# imaplib and poplib attack them from IPv4 addresses (which Courier prints as ::ffff:a.b.c.d) and
# IPv6 addresses of a second network namespace. Every shipped jail is installed, as on a real
# host; [Defaults] MaxRetry=3. Asserts:
#   - each attacker is banned by the courier jail with exactly MaxRetry failures (ListBans), and
#     the nft sets hold exactly the attackers:
#       192.0.2.11    IMAP LOGIN, a wrong password for a real user, three times
#       2001:db8::11  POP3 USER/PASS, an unknown user, three times
#       192.0.2.12    POP3 USER/PASS, a wrong password, three times
#       2001:db8::12  IMAP LOGIN as "x, ip=[192.0.2.99], port=[1]" three times: the attacker is
#                     banned, the fake address never
#       192.0.2.13    IMAP AUTHENTICATE PLAIN ("LOGIN FAILED, method=PLAIN"), three times
#       192.0.2.14    two IMAP and one POP3 failure: one jail counts both services;
#   - nobody else: a correct IMAP login (192.0.2.20) and POP3 login (2001:db8::20) leave no
#     failure; 192.0.2.30 (two IMAP failures) and 2001:db8::30 (one IMAP, one POP3) keep exactly 2
#     failures and no ban;
#   - Courier's lines come from root (courierlogger), which the jail trusts.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/real-daemons.sh
. "$(dirname "$0")/real-daemons.sh"

# Courier's IMAP and POP3 servers: courier-imap and courier-pop conflict with dovecot-imapd and
# dovecot-pop3d (Conflicts: imap-server, pop3-server), which the dovecot test needs installed.
# Unless they are installed, their packages (the candidates of the installed courier-base's
# version) are unpacked once into /var/cache/vpopguard-test/, and the programs and configuration
# files run from there; what they need besides (courier-base, courier-authdaemon) is installed.
# The download happens before vg_begin, in the host's namespaces: the test's have no network.
courier_root() { # prints where Courier's IMAP and POP3 files are, or nothing
        local version
        if [[ -x /usr/lib/courier/courier/imaplogin && -x /usr/lib/courier/courier/courierpop3login ]]; then
                echo /
        elif version=$(dpkg-query -W -f='${Version}' courier-base 2>/dev/null); then
                echo "/var/cache/vpopguard-test/courier-imap-pop-$version"
        fi
}
courier_unpack() { # DIR: downloads courier-imap and courier-pop, unpacks them into DIR
        local dir=$1 deb
        [[ ! -x $dir/usr/lib/courier/courier/courierpop3login ]] || return 0
        vg_require_commands apt-get dpkg-deb
        rm -rf "$dir.new"
        mkdir -p "$dir.new/debs"
        (cd "$dir.new/debs" && apt-get -q download courier-imap courier-pop) >"$dir.new/download.log" 2>&1 ||
                vg_skip "cannot download courier-imap and courier-pop: $(grep -v '^W:' "$dir.new/download.log" | tail -n 2)"
        for deb in "$dir.new"/debs/*.deb; do
                dpkg-deb -x "$deb" "$dir.new/root" || vg_fail "dpkg-deb -x $deb failed"
        done
        mv "$dir.new/root" "$dir" || vg_fail "cannot move $dir.new/root"
        rm -rf "$dir.new"
}
if [[ ${VG_IN_NAMESPACES:-} != 1 && $(id -u) -eq 0 ]]; then
        courier_root=$(courier_root)
        [[ -n $courier_root ]] || vg_skip "courier-base is not installed"
        courier_unpack "$courier_root"
fi

vg_real_begin real-courier "$@"
vg_require_commands nft jq journalctl ip nsenter ss openssl python3 setpriv dpkg-query \
        /usr/sbin/courierlogger /usr/sbin/couriertcpd /usr/lib/courier/courier-authlib/authdaemond
[[ -r /etc/courier/authdaemonrc ]] || vg_skip "no /etc/courier/authdaemonrc (courier-authdaemon)"
courier_root=$(courier_root)
imapd=$courier_root/usr/bin/imapd
libexec=$courier_root/usr/lib/courier/courier
vg_require_commands "$imapd" "$libexec/imaplogin" "$libexec/courierpop3login" "$libexec/courierpop3d"
[[ -r $courier_root/etc/courier/imapd && -r $courier_root/etc/courier/pop3d ]] ||
        vg_skip "Courier's configuration files are missing in $courier_root/etc/courier"
T=60 # deadline of each wait, in seconds
user=$VG_REAL_USER password=$VG_REAL_PASSWORD server4=$VG_REAL_SERVER4 server6=$VG_REAL_SERVER6
good=(192.0.2.20 2001:db8::20)
attackers4=(192.0.2.11 192.0.2.12 192.0.2.13 192.0.2.14)
attackers6=(2001:db8::11 2001:db8::12)

# --- vpopguardd with every shipped jail, courier switched on by a drop-in as the manual says.
vg_real_config courier

vg_start_journald
# What Courier logged, for a failed run kept with VG_KEEP_TMPDIR=1.
vg_on_exit "journalctl -q --no-pager -o short-iso SYSLOG_IDENTIFIER=imapd SYSLOG_IDENTIFIER=pop3d SYSLOG_IDENTIFIER=authdaemond >'$tmp/courier-journal.txt' 2>&1"
vg_real_user
mkdir -p "/run/vg-home/$user/Maildir/"{cur,new,tmp} # what maildirmake makes
chown -R "$VG_REAL_UID:$VG_REAL_UID" "/run/vg-home/$user/Maildir"
vg_real_network "${good[@]}" 192.0.2.30 2001:db8::30 \
        "${attackers4[@]}" "${attackers6[@]}"
vg_start_daemon "$log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock"

# --- Courier as Debian's scripts start it (/usr/sbin/authdaemond, /usr/lib/courier/imapd and
# pop3d), with the package's configuration files, but in the foreground: courierlogger without
# -pid/-start (and so, for authdaemond, with -name=: without -start and a name, courierlogger
# reads its standard input instead of starting the program). imapd's -access file is left out:
# the init script would create it in /etc.
# authdaemond's socket directory is in the private /run, as systemd-tmpfiles makes it.
mkdir -m 0775 /run/courier
mkdir -m 0750 /run/courier/authdaemon
chgrp courier /run/courier
chown courier:courier /run/courier/authdaemon
courier_env=(env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin)
# shellcheck disable=SC2016 # for the shell that starts Courier
vg_spawn "$tmp/authdaemond.log" "${courier_env[@]}" /bin/sh -c '
        set -a; . /etc/courier/authdaemonrc
        exec /usr/sbin/courierlogger -name=authdaemond $LOGGEROPTS /usr/lib/courier/courier-authlib/authdaemond'
# shellcheck disable=SC2016
vg_spawn "$tmp/imapd.log" "${courier_env[@]}" C="$courier_root" /bin/sh -c '
        set -a; prefix=/usr; exec_prefix=/usr; sbindir=/usr/sbin; bindir=/usr/bin
        . $C/etc/courier/imapd; . $C/etc/courier/imapd-ssl
        IMAP_STARTTLS=$IMAPDSTARTTLS
        exec /usr/sbin/courierlogger $LOGGEROPTS /usr/sbin/couriertcpd -address=$ADDRESS \
                -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP $TCPDOPTS \
                $PORT $C/usr/lib/courier/courier/imaplogin $C/usr/bin/imapd $MAILDIRPATH'
# shellcheck disable=SC2016
vg_spawn "$tmp/pop3d.log" "${courier_env[@]}" C="$courier_root" /bin/sh -c '
        set -a; prefix=/usr; exec_prefix=/usr; sbindir=/usr/sbin; bindir=/usr/bin
        libexecdir=/usr/lib/courier
        . $C/etc/courier/pop3d; . $C/etc/courier/pop3d-ssl
        exec /usr/sbin/courierlogger $LOGGEROPTS /usr/sbin/couriertcpd -address=$ADDRESS \
                -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP $TCPDOPTS \
                $PORT $C/usr/lib/courier/courier/courierpop3login \
                $C/usr/lib/courier/courier/courierpop3d $MAILDIRPATH'
courier_up() {
        [[ -S /run/courier/authdaemon/socket ]] && vg_listening 143 && vg_listening 110
}
vg_poll "$T" courier_up

# --- The clients: one login each, from a given source address; exit status 0 if it worked, 1
# if the server refused it. Courier answers a failed login after 5 seconds, so the clients of
# one step run at the same time.
# shellcheck disable=SC2016 # Python, not shell
client_py='
import imaplib, poplib, socket, sys
source, proto, user, password, server = sys.argv[1:]
def connect(self, timeout):
    return socket.create_connection((self.host, self.port), timeout, source_address=(source, 0))
def quote(s):  # imaplib sends the user name as it is
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\""
if proto in ("imap", "imap-plain"):
    class Client(imaplib.IMAP4):
        _create_socket = connect
    c = Client(server, 143, timeout=60)
    try:
        if proto == "imap":
            c.login(quote(user), password)
        else:
            c.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (user, password)).encode())
    except imaplib.IMAP4.error as e:
        print("refused:", e)
        sys.exit(1)
    c.logout()
else:
    class Client(poplib.POP3):
        _create_socket = connect
    c = Client(server, 110, timeout=60)
    try:
        c.user(user)
        c.pass_(password)
    except poplib.error_proto as e:
        print("refused:", e)
        sys.exit(1)
    c.quit()
'
client() { # FROM imap|imap-plain|pop3 USER PASSWORD: one login
        local to=$server4
        [[ $1 != *:* ]] || to=$server6
        vg_client_timeout "$T" python3 -c "$client_py" "$@" "$to" >>"$tmp/clients.log" 2>&1
}
pids=()
client_spawn() { # ARGS of client, in the background
        vg_spawn "$tmp/client.$((${#pids[@]})).log" vg_client_timeout "$T" python3 -c "$client_py" "$@" \
                "$([[ $1 == *:* ]] && echo "$server6" || echo "$server4")"
        pids+=("$VG_LAST_PID")
}
clients_refused() { # every spawned client ended, each refused (exit status 1)
        local pid rc
        for pid in "${pids[@]}"; do
                rc=0
                wait "$pid" || rc=$?
                vg_kill "$pid" 1 # only forgets it: it has been reaped
                ((rc == 1)) || vg_fail "a client exited with $rc, not refused: $(cat "$tmp"/client.*.log)"
        done
        pids=()
}
courier_logged() { # ERE: imapd or pop3d logged a line that matches it
        journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=imapd SYSLOG_IDENTIFIER=pop3d | grep -E -- "$1" >/dev/null # not -q: journalctl would die of SIGPIPE (pipefail)
}

# --- A correct login of each kind: it works (so the account, PAM and the Maildir do), and
# Courier has logged it before the attacks begin.
client 192.0.2.20 imap "$user" "$password" || vg_fail "IMAP login failed: $(tail -n 5 "$tmp/clients.log")"
client 2001:db8::20 pop3 "$user" "$password" || vg_fail "POP3 login failed: $(tail -n 5 "$tmp/clients.log")"
vg_poll "$T" courier_logged "^LOGIN, user=$user, ip=\[::ffff:192\.0\.2\.20\], port=\[[0-9]+\], protocol=IMAP$"
vg_poll "$T" courier_logged "^LOGIN, user=$user, ip=\[2001:db8::20\], port=\[[0-9]+\]$"

# --- Fewer failures than MaxRetry.
client_spawn 192.0.2.30 imap "$user" wrong-password
client_spawn 192.0.2.30 imap "$user" wrong-password
client_spawn 2001:db8::30 imap "$user" wrong-password
client_spawn 2001:db8::30 pop3 "$user" wrong-password
clients_refused
vg_poll "$T" vg_real_failures_are courier 192.0.2.30 2
vg_poll "$T" vg_real_failures_are courier 2001:db8::30 2

# --- The attackers, all at once. Their last failure may be logged after the ban, when the
# client's packets are dropped: then it only waits for its deadline, so the test does not.
for i in 1 2 3; do
        client_spawn 192.0.2.11 imap "$user" wrong-password
        client_spawn 2001:db8::11 pop3 admin wrong-password
        client_spawn 192.0.2.12 pop3 "$user" wrong-password
        client_spawn 2001:db8::12 imap "x, ip=[192.0.2.99], port=[1]" wrong-password
        client_spawn 192.0.2.13 imap-plain "$user" wrong-password
done
client_spawn 192.0.2.14 imap "$user" wrong-password
client_spawn 192.0.2.14 imap "$user" wrong-password
client_spawn 192.0.2.14 pop3 "$user" wrong-password
for a in "${attackers4[@]}" "${attackers6[@]}"; do
        vg_poll "$T" vg_real_banned "$a"
done

# --- Each kind of line was logged by the real Courier.
port='port=\[[0-9]+\]'
for re in "^LOGIN FAILED, user=$user, ip=\[::ffff:192\.0\.2\.11\], $port$" \
        "^LOGIN FAILED, user=admin, ip=\[2001:db8::11\], $port$" \
        "^LOGIN FAILED, user=$user, ip=\[::ffff:192\.0\.2\.12\], $port$" \
        "^LOGIN FAILED, user=x, ip=\[192\.0\.2\.99\], port=\[1\], ip=\[2001:db8::12\], $port$" \
        "^LOGIN FAILED, method=PLAIN, ip=\[::ffff:192\.0\.2\.13\], $port$"; do
        courier_logged "$re" || vg_fail "Courier logged no line like '$re'"
done

# --- Exactly the attackers are banned, each by the courier jail at its MaxRetry-th failure. The
# daemon reads the journal in order, so it has judged every line of the clients above.
vg_real_assert_outcome courier 3 "${attackers4[*]} ${attackers6[*]}" "${good[*]}" "192.0.2.30 2001:db8::30" 2

vg_term_daemon
vg_log "all checks passed"
