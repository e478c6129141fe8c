# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# shellcheck disable=SC2154 # tmp is vg_begin's
#
# Real mail daemons for vpopguard's integration tests (test-real-dovecot.sh,
# test-real-postfix-sasl.sh), sourced after lib.sh and real-daemons.sh, used after
# vg_real_begin. Debian's own dovecot and postfix run in the test's namespaces with private
# configuration files, log through syslog (/dev/log) to the test's journald, and face real
# clients (mail-client.py) in a second network namespace:
#
#   server namespace (the test's own): vg-srv 192.0.2.1/24, 2001:db8::1/64; dovecot, postfix,
#       vpopguardd and its nftables table
#   the clients' namespace (vg_real_network): vg-cli with the attackers' addresses
#
# The clients must be outside: the daemon never counts failures from addresses of its own host.
# Powers: nothing here touches the host. /run, /dev/log and the journal are the test's (lib.sh),
# the namespaces die with the test, and the daemons write only below $tmp and /run.

RM_USER=joe
RM_PASSWORD=Right-Pass-1
# shellcheck disable=SC2034 # for the tests: USER:PASSWORD of mail-client.py
RM_RIGHT=$RM_USER:$RM_PASSWORD RM_WRONG=$RM_USER:wrong-password
RM_MAIL_UID=5000 # owns the valid user's mail; needs no account
RM_PY=/usr/bin/python3
RM_DOVECOT_BASE=/run/rm-dovecot
RM_DOVECOT_AUTH_SOCKET=$RM_DOVECOT_BASE/auth-postfix # for smtpd (rm_dovecot_start DIR VERBOSE postfix)
RM_DOVECOT_PID=
RM_DOVECOT_CONF=
RM_POSTFIX_DIR=
RM_POSTFIX_CHROOT_SOCKET=
RM_POSTFIX_PID= # postfix start-fg, the shell that waits for the master

# rm_require: what the tests need; skips (fails under CI=true) without it.
rm_require() {
        local u
        [[ -x $RM_PY ]] || RM_PY=python3
        vg_require_commands nft jq journalctl ip ss openssl "$RM_PY" dovecot doveconf postfix postconf
        for u in dovecot dovenull postfix; do
                getent passwd "$u" >/dev/null || vg_skip "no user $u (install dovecot-core and postfix)"
        done
        # The daemons' users must reach their files below the test's directory.
        chmod 0711 "$VG_TMPDIR" "$tmp" || vg_fail "chmod of $tmp failed"
        # What the daemons logged, for a failure's post-mortem (VG_KEEP_TMPDIR keeps it).
        vg_on_exit "journalctl -q --no-pager -o short-precise >'$tmp/journal.txt' 2>&1"
}

# rm_client MODE SOURCE END|PORT [USER:PASSWORD...]: runs mail-client.py in the client namespace
# against our IPv4 or IPv6 address (the family of SOURCE); prints what it prints. Its options
# come from RM_CLIENT_TIMEOUT (seconds, default 30, times VPOPGUARD_TIMEOUT_FACTOR),
# RM_CLIENT_PAUSE (--pause=FILE) and RM_CLIENT_PORT (--port=N).
rm_client() {
        local server=$VG_REAL_SERVER4 options=()
        [[ $2 != *:* ]] || server=$VG_REAL_SERVER6
        options+=(--timeout="$((${RM_CLIENT_TIMEOUT:-30} * VG_TIMEOUT_FACTOR))")
        [[ -z ${RM_CLIENT_PAUSE:-} ]] || options+=(--pause="$RM_CLIENT_PAUSE")
        [[ -z ${RM_CLIENT_PORT:-} ]] || options+=(--port="$RM_CLIENT_PORT")
        vg_client "$RM_PY" "$VG_LIB_DIR/mail-client.py" "${options[@]}" "$1" "$2" "$server" "${@:3}"
}

# rm_session EXPECTED MODE SOURCE END USER:PASSWORD...: one session; fails the test unless the
# server answered the attempts as EXPECTED ("fail fail", "fail ok", ...).
rm_session() {
        local expected=$1 out
        shift
        out=$(rm_client "$@") || vg_fail "client $* failed"
        vg_assert_eq "$expected" "$out" "answers to $*"
}

# rm_sessions N EXPECTED MODE SOURCE END USER:PASSWORD...: rm_session N times.
rm_sessions() {
        local i
        for ((i = 0; i < $1; i++)); do
                rm_session "${@:2}"
        done
}

# rm_banning_attempt MODE SOURCE USER:PASSWORD: the failed attempt that gets SOURCE banned
# (smtpd logs the failure before it answers), alone on its connection, which it then drops;
# waits for the ban. The answer may come too late: once SOURCE is banned its packets are
# dropped ("cut").
rm_banning_attempt() {
        local out
        out=$(rm_client "$1" "$2" drop "$3") || vg_fail "client $* failed"
        [[ $out == fail || $out == cut ]] ||
                vg_fail "answer to the banning attempt $*: expected 'fail' or 'cut', got '$out'"
        vg_poll 30 vg_real_banned "$2"
}

# rm_listening PORT...: each PORT has a listening TCP socket for IPv4 and one for IPv6.
rm_listening() {
        local p
        for p in "$@"; do
                ss -Hltn "sport = :$p" | grep -q '^LISTEN .* 0\.0\.0\.0:' || return 1
                ss -Hltn "sport = :$p" | grep -q '^LISTEN .* \[::\]:' || return 1
        done
}

# rm_dovecot_start DIR [OPTION...]: Dovecot with IMAP and POP3 (STARTTLS optional, with a
# self-signed certificate) and one user, $RM_USER, in a passwd-file. OPTIONs:
#   verbose  auth_verbose=yes: the auth process logs each failed attempt
#   postfix  auth sockets for smtpd at RM_DOVECOT_AUTH_SOCKET and RM_POSTFIX_CHROOT_SOCKET
#            (after rm_postfix_setup)
#   pam      passwords are checked by PAM (in auth-worker processes) instead, with a PAM stack
#            that refuses every password: pam_deny (bound over /etc/pam.d/dovecot in the
#            test's mount namespace)
# The auth penalty (anvil's delay of each further attempt from an address that failed; off when
# its socket is) and the failure delay are off, so that the tests need not wait for Dovecot's
# delays; neither changes what is logged.
rm_dovecot_start() {
        local dir=$1 verbose=no postfix='' passdb
        [[ " ${*:2} " != *" verbose "* ]] || verbose=yes
        [[ " ${*:2} " != *" postfix "* ]] || postfix=postfix
        passdb="driver = passwd-file
  args = scheme=PLAIN $dir/users"
        if [[ " ${*:2} " == *" pam "* ]]; then
                passdb="driver = pam"
                if [[ $(findmnt -n -o TARGET /etc/pam.d/dovecot) != /etc/pam.d/dovecot ]]; then
                        printf 'auth requisite pam_deny.so\naccount required pam_permit.so\n' >"$dir/pam"
                        mount --bind "$dir/pam" /etc/pam.d/dovecot || vg_fail "cannot bind a PAM stack over /etc/pam.d/dovecot"
                fi
        fi
        mkdir -p "$dir/state" "$dir/home/$RM_USER"
        chown "$RM_MAIL_UID:$RM_MAIL_UID" "$dir/home/$RM_USER"
        chmod 0755 "$dir"
        printf '%s:{PLAIN}%s:%s:%s::%s::\n' "$RM_USER" "$RM_PASSWORD" "$RM_MAIL_UID" "$RM_MAIL_UID" \
                "$dir/home/$RM_USER" >"$dir/users"
        chmod 0644 "$dir/users"
        if [[ ! -s $dir/cert.pem ]]; then
                openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mail.example.test \
                        -keyout "$dir/key.pem" -out "$dir/cert.pem" >"$dir/openssl.log" 2>&1 ||
                        vg_fail "openssl req failed: $(cat "$dir/openssl.log")"
        fi
        RM_DOVECOT_CONF=$dir/dovecot.conf
        cat >"$RM_DOVECOT_CONF" <<EOF
base_dir = $RM_DOVECOT_BASE
state_dir = $dir/state
protocols = imap pop3
listen = *, ::
ssl = yes
ssl_cert = <$dir/cert.pem
ssl_key = <$dir/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = $verbose
log_path = syslog
syslog_facility = mail
mail_location = maildir:~/Maildir
passdb {
  $passdb
}
userdb {
  driver = passwd-file
  args = $dir/users
}
service imap-login {
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3s {
    port = 0
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
        if [[ $postfix == postfix ]]; then
                cat >>"$RM_DOVECOT_CONF" <<EOF
service auth {
  unix_listener ${RM_DOVECOT_AUTH_SOCKET#"$RM_DOVECOT_BASE"/} {
    mode = 0660
    user = postfix
    group = postfix
  }
  unix_listener $RM_POSTFIX_CHROOT_SOCKET {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
        fi
        doveconf -c "$RM_DOVECOT_CONF" -n >/dev/null 2>"$dir/doveconf.log" ||
                vg_fail "dovecot refuses its configuration: $(cat "$dir/doveconf.log")"
        [[ ! -s $dir/doveconf.log ]] || vg_fail "dovecot warns about its configuration: $(cat "$dir/doveconf.log")"
        vg_spawn "$dir/dovecot.log" dovecot -F -c "$RM_DOVECOT_CONF"
        RM_DOVECOT_PID=$VG_LAST_PID
        vg_poll 30 rm_dovecot_up "$dir/dovecot.log" 143 110
}

rm_dovecot_up() { # LOG PORT...
        vg_pid_alive "$RM_DOVECOT_PID" || vg_fail "dovecot exited: $(cat "$1") $(rm_journal_tail dovecot)"
        rm_listening "${@:2}"
}

# rm_dovecot_stop: SIGTERM to Dovecot's master, then to what is left of its processes (its auth
# process outlives it while smtpd is connected); waits until all are gone.
rm_dovecot_stop() {
        local pid
        vg_kill "$RM_DOVECOT_PID" 30
        RM_DOVECOT_PID=
        for pid in $(rm_dovecot_pids); do
                kill -TERM "$pid" 2>/dev/null || true
        done
        vg_poll 30 rm_dovecot_gone
}

# rm_dovecot_pids: Dovecot's processes (in the test's PID namespace, all started by the test).
rm_dovecot_pids() {
        local p
        for p in /proc/[0-9]*; do
                [[ $(readlink "$p/exe" 2>/dev/null) != /usr/lib/dovecot/* ]] || echo "${p#/proc/}"
        done
}

rm_dovecot_gone() {
        [[ -z $(rm_dovecot_pids) ]] && ! vg_listening 143
}

# rm_journal_tail WORD: the journal's last lines whose identifier holds WORD, for failure messages
# (postfix(1) logs its errors only there when its stderr is not a terminal).
rm_journal_tail() {
        journalctl -q --no-pager -o short -n 200 2>/dev/null | grep -F "$1" | tail -n 20
}

# rm_postfix_setup DIR: Postfix's configuration and queue in DIR, for two smtpd services with
# SMTP AUTH through Dovecot's auth process:
#   smtp        port 25, not chrooted, through RM_DOVECOT_AUTH_SOCKET
#   submission  port 587, chrooted to the queue directory as Debian ships smtpd, logging as
#               postfix/submission, through the socket in its chroot, private/auth
#               (RM_POSTFIX_CHROOT_SOCKET): Dovecot must be started after this, with "postfix".
rm_postfix_setup() {
        local dir=$1
        RM_POSTFIX_DIR=$dir
        RM_POSTFIX_CHROOT_SOCKET=$dir/spool/private/auth
        mkdir -p "$dir/etc" "$dir/spool" # post-install creates the rest, with their owners
        cat >"$dir/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
myhostname = mail.example.test
mydestination =
alias_maps =
alias_database =
inet_interfaces = all
inet_protocols = all
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $RM_DOVECOT_AUTH_SOCKET
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
EOF
        cat >"$dir/etc/master.cf" <<'EOF'
smtp       inet  n       -       n       -       -       smtpd
submission inet  n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_path=private/auth
anvil      unix  -       -       n       -       1       anvil
proxymap   unix  -       -       n       -       -       proxymap
rewrite    unix  -       -       n       -       -       trivial-rewrite
EOF
        # Creates the queue directories, with their owners, and checks the configuration.
        postfix -c "$dir/etc" check >"$dir/check.log" 2>&1 ||
                vg_fail "postfix check failed: $(cat "$dir/check.log") $(rm_journal_tail postfix)"
}

# rm_postfix_start: starts the Postfix of rm_postfix_setup.
rm_postfix_start() {
        local dir=$RM_POSTFIX_DIR
        vg_spawn "$dir/postfix.log" postfix -c "$dir/etc" start-fg
        RM_POSTFIX_PID=$VG_LAST_PID
        vg_on_exit rm_postfix_stop
        vg_poll 30 rm_postfix_up 25 587
}

rm_postfix_up() { # PORT...
        local pid
        vg_pid_alive "$RM_POSTFIX_PID" ||
                vg_fail "postfix start-fg exited: $(cat "$RM_POSTFIX_DIR/postfix.log") $(rm_journal_tail postfix)"
        pid=$(rm_postfix_master)
        [[ -n $pid ]] && vg_pid_alive "$pid" || return 1
        rm_listening "$@"
}

# rm_postfix_master: the PID of Postfix's master, or nothing.
rm_postfix_master() {
        local file=$RM_POSTFIX_DIR/spool/pid/master.pid
        [[ ! -r $file ]] || tr -dc 0-9 <"$file"
}

# rm_postfix_stop: SIGTERM to Postfix's master (postfix start-fg runs it as a child of a shell),
# which stops smtpd; waits until it is gone.
rm_postfix_stop() {
        local pid
        pid=$(rm_postfix_master)
        [[ -n $pid ]] && vg_pid_alive "$pid" || return 0
        kill -TERM "$pid"
        vg_poll 30 vg_pid_exited "$pid"
}

# rm_vpopguard_config CONF JAIL=MAXRETRY...: CONF with the shipped files of the JAILs in CONF.d/,
# each switched on by a drop-in as the jail's comment says, with its MaxRetry=.
rm_vpopguard_config() {
        local conf=$1 j name
        shift
        mkdir -p "$conf.d"
        : >"$conf"
        for j in "$@"; do
                name=${j%=*}
                cp "${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}/conf.d/10-$name.conf" "$conf.d/" ||
                        vg_fail "cannot copy the shipped jail $name"
                printf '[Jail]\nName=%s\nEnabled=yes\nMaxRetry=%s\n' "$name" "${j#*=}" \
                        >"$conf.d/50-$name-local.conf"
        done
}

# rm_not_banned_at ADDRESS WINDOWS: once the daemon has counted WINDOWS ("JAIL COUNT" lines) for
# ADDRESS, ADDRESS is in no set.
rm_not_banned_at() {
        vg_poll 30 vg_real_windows_are "$1" "$2"
        if vg_real_banned "$1"; then
                vg_fail "$1 banned at $2"
        fi
}

# rm_bans: "ADDRESS JAIL" of each ban (ListBans), sorted.
rm_bans() {
        vg_real_bans | cut -d' ' -f1,2 | LC_ALL=C sort
}

# rm_dropped ADDRESS PORT: a banned ADDRESS's connection to PORT times out (its packets are
# dropped); the deadline only decides how long that takes to see.
rm_dropped() {
        vg_assert_eq timeout "$(RM_CLIENT_TIMEOUT=3 rm_client probe "$1" "$2")" "connection from $1 to port $2"
}

rm_connects() { # ADDRESS PORT
        vg_assert_eq connected "$(rm_client probe "$1" "$2")" "connection from $1 to port $2"
}
