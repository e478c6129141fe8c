#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The shipped sshd jail (conf.d/10-sshd.conf), switched on by the documented drop-in, against
# Debian's real sshd: sshd runs in the test's namespaces and logs through syslog(3) to the test's
# journald; real ssh clients (with sshpass, or SSH_ASKPASS for several tries in one connection)
# attack it from IPv4 and IPv6 addresses of a second network namespace. Every shipped jail is
# installed, as on a real host; [Defaults] MaxRetry=3; sshd has MaxAuthTries 2. Asserts:
#   - each attacker is banned by the sshd jail with exactly MaxRetry failures (ListBans), and
#     the nft sets hold exactly the attackers: one per kind of line the jail counts
#       192.0.2.11, 2001:db8::11  an unknown user, one password ("Invalid user", "Failed
#                                 password for invalid user", "Connection closed by invalid user")
#       192.0.2.12                three wrong passwords in one connection: two "Failed password",
#                                 then "Disconnecting authenticating user ...: Too many
#                                 authentication failures [preauth]"
#       2001:db8::12              a wrong keyboard-interactive (PAM) password, in two
#                                 connections: "error: PAM: Authentication failure for vgjoe
#                                 from ..." (sshd logs "Failed keyboard-interactive/pam" only at
#                                 VERBOSE for the first tries), "Connection closed by
#                                 authenticating user"
#       2001:db8::15              the same for an unknown user, once
#       192.0.2.13                three connections that leave without trying a password
#                                 ("Connection closed by authenticating user")
#       192.0.2.14, 2001:db8::14  an unknown user whose name holds a fake address ("x from
#                                 192.0.2.99 port 22"): the attacker is banned, the fake never
#                                 (sshd cuts a user name at ":", so no IPv6 address fits in one);
#   - nobody else: a correct login (192.0.2.20, 2001:db8::20) leaves no failure at all; one wrong
#     password (192.0.2.30) and two connections without a try (2001:db8::30) leave exactly 2
#     failures, and no ban;
#   - sshd's lines come from root, which the jail trusts: no untrusted failures.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/real-daemons.sh
. "$(dirname "$0")/real-daemons.sh"

vg_real_begin real-sshd "$@"
sshd=/usr/sbin/sshd
vg_require_commands nft jq journalctl ip nsenter ss openssl ssh ssh-keygen sshpass "$sshd"
T=60 # deadline of each wait, in seconds
user=$VG_REAL_USER password=$VG_REAL_PASSWORD server4=$VG_REAL_SERVER4 server6=$VG_REAL_SERVER6
good=(192.0.2.20 2001:db8::20)
attackers4=(192.0.2.11 192.0.2.12 192.0.2.13 192.0.2.14)
attackers6=(2001:db8::11 2001:db8::12 2001:db8::14 2001:db8::15)

# --- vpopguardd with every shipped jail, sshd switched on by a drop-in as the manual says.
vg_real_config sshd

vg_start_journald
# What sshd logged, for a failed run kept with VG_KEEP_TMPDIR=1.
vg_on_exit "journalctl -q --no-pager -o short-iso SYSLOG_IDENTIFIER=sshd >'$tmp/sshd-journal.txt' 2>&1"
vg_real_user
vg_real_network "${good[@]}" 192.0.2.30 2001:db8::30 \
        "${attackers4[@]}" "${attackers6[@]}"
vg_start_daemon "$log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock"

# --- sshd as Debian runs it, but with a configuration, host key and privilege separation
# directory of the test's own, in the foreground, logging to syslog (no -e).
dir=$(vg_tmpdir sshd)
ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519" || vg_fail "ssh-keygen failed"
cat >"$dir/sshd_config" <<EOF
ListenAddress $server4
ListenAddress $server6
Port 22
HostKey $dir/host_ed25519
PidFile none
UsePAM yes
PasswordAuthentication yes
KbdInteractiveAuthentication yes
PubkeyAuthentication yes
AuthorizedKeysFile none
PermitRootLogin no
MaxAuthTries 2
UseDNS no
PrintMotd no
SyslogFacility AUTH
LogLevel INFO
EOF
mkdir -m 0755 /run/sshd
"$sshd" -t -f "$dir/sshd_config" 2>"$dir/check.log" || vg_fail "sshd -t: $(cat "$dir/check.log")"
vg_spawn "$dir/sshd.log" "$sshd" -D -f "$dir/sshd_config"
sshd_pid=$VG_LAST_PID
sshd_listening() {
        vg_pid_alive "$sshd_pid" || vg_fail "sshd exited: $(cat "$dir/sshd.log")"
        vg_journal_has SYSLOG_IDENTIFIER=sshd "MESSAGE=Server listening on $server4 port 22." &&
                vg_journal_has SYSLOG_IDENTIFIER=sshd "MESSAGE=Server listening on $server6 port 22."
}
vg_poll "$T" sshd_listening

# --- The clients.
mkdir -p "$tmp/client-home"
printf '#!/bin/sh\necho wrong-password\n' >"$tmp/askpass"
chmod 0755 "$tmp/askpass"
ssh_opts=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
        -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=20)
client_ssh() { # FROM LOGIN PASSWORD|- SSH-OPTION...: one ssh connection; its exit status
        local from=$1 login=$2 pw=$3 to=$server4 pass=()
        shift 3
        [[ $from != *:* ]] || to=$server6
        [[ $pw == - ]] || pass=(sshpass -p "$pw")
        vg_client_timeout "$T" env HOME="$tmp/client-home" "${pass[@]}" \
                ssh "${ssh_opts[@]}" "$@" -b "$from" -l "$login" "$to" true \
                </dev/null >>"$tmp/clients.log" 2>&1
}
with_password() { # FROM LOGIN PASSWORD: one password try
        client_ssh "$1" "$2" "$3" -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1
}
with_kbdint() { # FROM LOGIN PASSWORD: one keyboard-interactive (PAM) try
        client_ssh "$1" "$2" "$3" -o PreferredAuthentications=keyboard-interactive \
                -o NumberOfPasswordPrompts=1
}
without_try() { # FROM LOGIN: offers no key and leaves
        client_ssh "$1" "$2" - -o BatchMode=yes -o PreferredAuthentications=publickey \
                -o IdentitiesOnly=yes -o IdentityFile="$tmp/no-such-key"
}
sshd_logged() { # ERE: sshd logged a line that matches it
        journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=sshd | grep -E -- "$1" >/dev/null # not -q: journalctl would die of SIGPIPE (pipefail)
}

# --- A correct login from each family: it works (so the account and PAM do), and sshd has
# logged the end of the session before the attacks begin.
for a in "${good[@]}"; do
        with_password "$a" "$user" "$password" || vg_fail "login from $a failed: $(tail -n 5 "$tmp/clients.log")"
        vg_poll "$T" sshd_logged "^Disconnected from user $user $a port [0-9]+$"
done

# --- Fewer failures than MaxRetry: one wrong password; two connections without a try.
with_password 192.0.2.30 "$user" wrong-password && vg_fail "a wrong password logged in"
vg_poll "$T" vg_real_failures_are sshd 192.0.2.30 2
without_try 2001:db8::30 "$user" && vg_fail "a client without keys logged in"
without_try 2001:db8::30 "$user" && vg_fail "a client without keys logged in"
vg_poll "$T" vg_real_failures_are sshd 2001:db8::30 2

# --- The attackers, one after the other.
for a in 192.0.2.11 2001:db8::11; do
        with_password "$a" admin wrong-password && vg_fail "admin logged in from $a"
done
# Three prompts, MaxAuthTries 2: sshd cuts the client off at its second wrong password.
SSH_ASKPASS=$tmp/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        client_ssh 192.0.2.12 "$user" - -o PreferredAuthentications=password -o NumberOfPasswordPrompts=3 &&
        vg_fail "a wrong password logged in from 192.0.2.12"
for i in 1 2; do
        with_kbdint 2001:db8::12 "$user" wrong-password && vg_fail "a wrong password logged in (try $i)"
done
with_kbdint 2001:db8::15 admin wrong-password && vg_fail "admin logged in from 2001:db8::15"
for i in 1 2 3; do
        without_try 192.0.2.13 "$user" && vg_fail "a client without keys logged in (try $i)"
done
with_password 192.0.2.14 "x from 192.0.2.99 port 22" wrong-password && vg_fail "x logged in"
with_password 2001:db8::14 "x from 192.0.2.98 port 22" wrong-password && vg_fail "x logged in"

for a in "${attackers4[@]}" "${attackers6[@]}"; do
        vg_poll "$T" vg_real_banned "$a"
done

# --- Each kind of line was logged by the real sshd (so each attacker was banned through it).
port='port [0-9]+'
for re in "^Invalid user admin from 192\.0\.2\.11 $port$" \
        "^Failed password for invalid user admin from 2001:db8::11 $port ssh2$" \
        "^Connection closed by invalid user admin 192\.0\.2\.11 $port \[preauth\]$" \
        "^Failed password for $user from 192\.0\.2\.12 $port ssh2$" \
        "^Disconnecting authenticating user $user 192\.0\.2\.12 $port: Too many authentication failures \[preauth\]$" \
        "^error: PAM: Authentication failure for $user from 2001:db8::12$" \
        "^error: PAM: Authentication failure for illegal user admin from 2001:db8::15$" \
        "^Connection closed by authenticating user $user 192\.0\.2\.13 $port \[preauth\]$" \
        "^Invalid user x from 192\.0\.2\.99 port 22 from 192\.0\.2\.14 $port$"; do
        sshd_logged "$re" || vg_fail "sshd logged no line like '$re'"
done

# --- Exactly the attackers are banned, each by the sshd jail at its MaxRetry-th failure. The
# daemon reads the journal in order, so it has judged every line of the clients above, which
# came before the attackers' last ones.
vg_real_assert_outcome sshd 3 "${attackers4[*]} ${attackers6[*]}" "${good[*]}" "192.0.2.30 2001:db8::30" 2

vg_term_daemon
vg_log "all checks passed"
