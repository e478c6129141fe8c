#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The shipped dovecot jail against Debian's real Dovecot (imap-login, pop3-login, auth), attacked
# by Python's imaplib and poplib from IPv4 and IPv6 addresses of another network namespace
# (real-mail.sh). The jail is switched on by a drop-in with MaxRetry=3. Asserts what an admin
# would check:
#   - with Dovecot's defaults (auth_verbose=no) each connection that failed to log in counts
#     once, however many passwords it tried: wrong passwords and unknown users, LOGIN,
#     AUTHENTICATE PLAIN and POP3 USER/PASS, in clear and after STARTTLS, clients that log out
#     and clients that just close the connection; every attacker is banned at its 3rd such
#     connection and not at its 2nd, and its packets are then dropped;
#   - the valid user, also one who mistypes and then logs in, and clients with 2 failed
#     connections stay out: the sets hold exactly the attackers;
#   - with auth_verbose=yes the auth process's own lines ("unknown user", "Password mismatch",
#     which the journal must hold) count too, once per attempt, on top of the connection's:
#     one connection with two wrong attempts bans; a mistyped password that is then right
#     counts once;
#   - so do the lines of the auth-worker processes that ask PAM ("pam_authenticate() failed:
#     Authentication failure (Password mismatch?)"): one wrong password counts twice.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/real-daemons.sh
. "$(dirname "$0")/real-daemons.sh"
# shellcheck source=tests/integration/real-mail.sh
. "$(dirname "$0")/real-mail.sh"

vg_real_begin real-dovecot "$@"
rm_require
T=30 # deadline of each wait, in seconds
right=$RM_RIGHT wrong=$RM_WRONG
unknown=nosuch:wrong-password

# Attackers (a*), clients that fail less (few*), the valid user (ok*, typo*); 2nd part: v*.
a4=192.0.2.10 b4=192.0.2.11 c4=192.0.2.12 a6=2001:db8::10 b6=2001:db8::11 c6=2001:db8::12
few4=192.0.2.20 few6=2001:db8::20
ok4=192.0.2.30 ok6=2001:db8::30 typo4=192.0.2.31 typo6=2001:db8::31
v4=192.0.2.40 v6=2001:db8::40 vtypo4=192.0.2.41 vfew6=2001:db8::42 pam4=192.0.2.50 pam6=2001:db8::50
vg_real_network $a4 $b4 $c4 $a6 $b6 $c6 $few4 $few6 $ok4 $ok6 $typo4 $typo6 $v4 $v6 $vtypo4 $vfew6 $pam4 $pam6

rm_vpopguard_config "$conf" dovecot=3
vg_start_journald
vg_start_daemon "$log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock"
rm_dovecot_start "$tmp/dovecot"

# --- The valid user, also after a typo, over both protocols and families.
rm_session "ok" imap $ok4 logout "$right"
rm_session "ok" pop3 $ok4 logout "$right"
rm_session "ok" imap-plain $ok6 logout "$right"
rm_session "ok" pop3 $ok6 drop "$right"
rm_session "ok" imap-tls $ok4 logout "$right"
rm_session "ok" pop3-tls $ok6 logout "$right"
rm_sessions 3 "fail ok" imap $typo4 logout "$wrong" "$right"
rm_sessions 3 "fail ok" pop3 $typo6 logout "$wrong" "$right"

# --- Two failed connections each: not banned.
rm_sessions 2 "fail" imap $few4 drop "$wrong"
rm_sessions 2 "fail fail" pop3 $few6 logout "$unknown" "$wrong"
rm_not_banned_at $few4 "dovecot 2"
rm_not_banned_at $few6 "dovecot 2"

# --- Attackers: counted per connection, banned at the 3rd.
rm_sessions 2 "fail" imap $a4 logout "$wrong"
rm_not_banned_at $a4 "dovecot 2"
rm_session "fail" imap $a4 logout "$unknown"
vg_poll "$T" vg_real_banned $a4

rm_sessions 2 "fail fail" pop3 $b4 drop "$unknown" "admin:123456"
rm_not_banned_at $b4 "dovecot 2"
rm_session "fail" pop3 $b4 drop "$wrong"
vg_poll "$T" vg_real_banned $b4

rm_sessions 2 "fail fail" imap-plain $a6 drop "$unknown" "$wrong"
rm_not_banned_at $a6 "dovecot 2"
rm_session "fail" imap-plain $a6 drop "$wrong"
vg_poll "$T" vg_real_banned $a6

rm_sessions 2 "fail" pop3 $b6 logout "$wrong"
rm_not_banned_at $b6 "dovecot 2"
rm_session "fail" pop3 $b6 logout "$wrong"
vg_poll "$T" vg_real_banned $b6

rm_sessions 2 "fail" imap-tls $c4 drop "$wrong"
rm_not_banned_at $c4 "dovecot 2"
rm_session "fail" imap-tls $c4 logout "$unknown"
vg_poll "$T" vg_real_banned $c4

rm_sessions 2 "fail fail" pop3-tls $c6 drop "$wrong" "$unknown"
rm_not_banned_at $c6 "dovecot 2"
rm_session "fail" pop3-tls $c6 drop "$wrong"
vg_poll "$T" vg_real_banned $c6

vg_assert_eq "$(printf '%s dovecot\n' $a4 $b4 $c4 $a6 $b6 $c6 | LC_ALL=C sort)" "$(rm_bans)" "ListBans"
vg_real_assert_sets $a4 $b4 $c4 $a6 $b6 $c6
rm_dropped $a4 143
rm_dropped $a6 110
rm_connects $ok4 143
rm_connects $ok6 110
vg_assert_eq "" "$(vg_real_windows $ok4)$(vg_real_windows $ok6)$(vg_real_windows $typo4)$(vg_real_windows $typo6)" \
        "failures of the valid user's addresses"

# --- auth_verbose=yes: the auth process logs each failed attempt.
rm_dovecot_stop
rm_dovecot_start "$tmp/dovecot" verbose

rm_session "fail ok" imap $vtypo4 logout "$wrong" "$right"
rm_not_banned_at $vtypo4 "dovecot 1"

rm_session "fail" pop3 $vfew6 logout "$wrong"
rm_not_banned_at $vfew6 "dovecot 2"

rm_session "fail fail" imap $v4 logout "$unknown" "$wrong"
vg_poll "$T" vg_real_banned $v4
rm_session "fail fail" imap-plain $v6 drop "$wrong" "$unknown"
vg_poll "$T" vg_real_banned $v6

auth_line() { # PATTERN: the journal holds a line of Dovecot's auth process that matches PATTERN
        journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=dovecot | grep -qE "^auth: $1\$"
}
session='<[A-Za-z0-9+/]+>'
vg_poll "$T" auth_line "passwd-file\(nosuch,$v4,$session\): unknown user"
vg_poll "$T" auth_line "passwd-file\($RM_USER,$v4,$session\): Password mismatch"
vg_poll "$T" auth_line "passwd-file\(nosuch,$v6,$session\): unknown user"
vg_poll "$T" auth_line "passwd-file\($RM_USER,$vtypo4,$session\): Password mismatch"

# --- auth_verbose=yes and PAM, which refuses every password.
rm_dovecot_stop
rm_dovecot_start "$tmp/dovecot" verbose pam
rm_session "fail" imap $pam4 logout "$right"
rm_not_banned_at $pam4 "dovecot 2"
rm_session "fail" pop3 $pam6 drop "$wrong"
rm_not_banned_at $pam6 "dovecot 2"
worker_line() { # PATTERN: the journal holds a line of an auth-worker process that matches PATTERN
        journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=dovecot | grep -qE "^auth-worker\([0-9]+\): (.*: )?$1\$"
}
pam_failure='pam_authenticate\(\) failed: Authentication failure \(Password mismatch\?\)'
vg_poll "$T" worker_line "pam\($RM_USER,$pam4,$session\): $pam_failure"
vg_poll "$T" worker_line "pam\($RM_USER,$pam6,$session\): $pam_failure"

vg_real_assert_sets $a4 $b4 $c4 $v4 $a6 $b6 $c6 $v6
vg_assert_eq "$(printf '%s dovecot\n' $a4 $b4 $c4 $a6 $b6 $c6 $v4 $v6 | LC_ALL=C sort)" "$(rm_bans)" "ListBans at the end"
vg_assert_eq "dovecot 0" "$(vg_real_ctl --json status | jq -r '.jails[] | "\(.name) \(.untrustedFailures)"')" \
        "failures from untrusted senders"

rm_dovecot_stop
vg_term_daemon
vg_log "all checks passed"
