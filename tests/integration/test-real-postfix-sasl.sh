#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The shipped postfix-sasl jail against Debian's real Postfix: smtpd with SMTP AUTH through the
# auth socket of a real Dovecot (smtpd_sasl_type=dovecot), attacked by Python's smtplib (AUTH
# PLAIN and AUTH LOGIN) from IPv4 and IPv6 addresses of another network namespace
# (real-mail.sh); the dovecot jail runs beside it, IMAP being on the same host. Drop-ins switch
# both on: postfix-sasl with MaxRetry=4, dovecot with MaxRetry=3. Asserts:
#   - every refused AUTH counts once in postfix-sasl, whether the client tries again on the
#     same connection or not, on port 25 (postfix/smtpd) and on the submission port 587
#     (postfix/submission/smtpd, chrooted as Debian ships it); attackers are banned at their
#     4th failure, not at their 3rd, and their packets are then dropped;
#   - the valid user, also after a mistyped password, and a client with 3 failures stay out;
#   - an address that fails in both jails is counted per jail: 2 IMAP failures (dovecot) and 3
#     SMTP ones (postfix-sasl) ban it in neither, although 5 is more than either MaxRetry; its
#     next failure bans it in the jail where it reaches MaxRetry (postfix-sasl for one address,
#     dovecot for the other), into the one shared set;
#   - the sets hold exactly the attackers, each banned by its jail (ListBans);
#   - an AUTH that fails because Dovecot's auth process went away (454; smtpd logs
#     "authentication failed: (reason unavailable), sasl_username=(unavailable)") is not a
#     refused password: it does not count.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/real-daemons.sh
. "$(dirname "$0")/real-daemons.sh"
# shellcheck source=tests/integration/real-mail.sh
. "$(dirname "$0")/real-mail.sh"

vg_real_begin real-postfix-sasl "$@"
rm_require
T=30 # deadline of each wait, in seconds
right=$RM_RIGHT wrong=$RM_WRONG
unknown=nosuch@example.test:wrong-password

a4=192.0.2.10 a6=2001:db8::10 few6=2001:db8::20
ok4=192.0.2.30 ok6=2001:db8::30 typo4=192.0.2.31
x4=192.0.2.50 x6=2001:db8::50 # fail in both jails
lost4=192.0.2.60 mark4=192.0.2.61
s4=192.0.2.70 s6=2001:db8::70 # attack the chrooted submission service
vg_real_network $a4 $a6 $few6 $ok4 $ok6 $typo4 $x4 $x6 $lost4 $mark4 $s4 $s6

rm_vpopguard_config "$conf" dovecot=3 postfix-sasl=4
vg_start_journald
vg_start_daemon "$log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock"
rm_postfix_setup "$tmp/postfix"
rm_dovecot_start "$tmp/dovecot" postfix
rm_postfix_start

# --- The valid user, also after a typo.
rm_session "ok" smtp-plain $ok4 logout "$right"
rm_session "ok" smtp-login $ok6 logout "$right"
rm_session "fail ok" smtp-login $typo4 logout "$wrong" "$right"
rm_not_banned_at $typo4 "postfix-sasl 1"

# --- Three failures: not banned.
rm_session "fail fail" smtp-plain $few6 logout "$wrong" "$unknown"
rm_session "fail" smtp-login $few6 drop "$wrong"
rm_not_banned_at $few6 "postfix-sasl 3"

# --- Attackers: each refused AUTH counts; banned at the 4th.
rm_session "fail fail fail" smtp-login $a4 logout "$wrong" "$unknown" "admin:123456"
rm_not_banned_at $a4 "postfix-sasl 3"
rm_banning_attempt smtp-plain $a4 "$wrong"

rm_session "fail fail fail" smtp-plain $a6 drop "$unknown" "$wrong" "$wrong"
rm_not_banned_at $a6 "postfix-sasl 3"
rm_banning_attempt smtp-plain $a6 "$wrong"

# --- The chrooted submission service (port 587, postfix/submission/smtpd).
RM_CLIENT_PORT=587 rm_session "ok" smtp-plain $ok4 logout "$right"
RM_CLIENT_PORT=587 rm_session "fail fail fail" smtp-plain $s4 logout "$wrong" "$wrong" "$unknown"
rm_not_banned_at $s4 "postfix-sasl 3"
RM_CLIENT_PORT=587 rm_banning_attempt smtp-login $s4 "$wrong"
RM_CLIENT_PORT=587 rm_session "fail fail fail" smtp-login $s6 logout "$wrong" "$wrong" "$unknown"
RM_CLIENT_PORT=587 rm_banning_attempt smtp-login $s6 "$wrong"

# --- Failures in two jails are counted per jail.
for x in $x4 $x6; do
        rm_sessions 2 "fail" imap "$x" logout "$wrong"
        rm_session "fail fail fail" smtp-login "$x" logout "$wrong" "$wrong" "$unknown"
        rm_not_banned_at "$x" "$(printf '%s\n' 'dovecot 2' 'postfix-sasl 3')"
done
rm_banning_attempt smtp-plain $x4 "$wrong"
rm_session "fail" imap $x6 drop "$wrong"
vg_poll "$T" vg_real_banned $x6

vg_assert_eq "$(printf '%s\n' "$a4 postfix-sasl" "$a6 postfix-sasl" "$s4 postfix-sasl" "$s6 postfix-sasl" \
        "$x4 postfix-sasl" "$x6 dovecot" | LC_ALL=C sort)" "$(rm_bans)" "ListBans"
vg_real_assert_sets $a4 $s4 $x4 $a6 $s6 $x6
rm_dropped $a4 25
rm_dropped $x6 25
rm_connects $ok4 25
rm_connects $ok6 25
vg_assert_eq "" "$(vg_real_windows $ok4)$(vg_real_windows $ok6)" "failures of the valid user's addresses"

# --- Dovecot goes away between EHLO and AUTH: smtpd cannot reach its auth socket, answers 454
# and logs "authentication failed: (reason unavailable), sasl_username=(unavailable)", which
# must not count.
pause=$tmp/lost-pause
lost_client() { # logs in right, once it may (after EHLO, it waits for $pause)
        RM_CLIENT_PAUSE=$pause rm_client smtp-plain $lost4 logout "$right"
}
vg_spawn "$tmp/lost-client.log" lost_client
lost_pid=$VG_LAST_PID
vg_poll "$T" test -e "$pause.ready"
rm_dovecot_stop
touch "$pause"
vg_poll "$T" vg_pid_exited $lost_pid
rc=0
wait $lost_pid || rc=$?
vg_kill $lost_pid 1 # only forgets it: it has been reaped
vg_assert_eq "0 tempfail" "$rc $(cat "$tmp/lost-client.log")" "answer to AUTH without the auth server"
smtpd_line() { # PATTERN: the journal holds a line of smtpd's that matches PATTERN
        journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=postfix/smtpd | grep -qE "$1"
}
vg_poll "$T" smtpd_line "^warning: unknown\\[$lost4\\]: SASL PLAIN authentication failed: \\(reason unavailable\\), sasl_username=\\(unavailable\\)\$"
# A failure logged after it, from an address of its own, shows when the daemon has read it.
rm_dovecot_start "$tmp/dovecot" postfix
rm_session "fail" smtp-plain $mark4 logout "$wrong"
vg_poll "$T" vg_real_windows_are $mark4 "postfix-sasl 1"
vg_assert_eq "" "$(vg_real_windows $lost4)" "failures of $lost4"

vg_real_assert_sets $a4 $s4 $x4 $a6 $s6 $x6
vg_assert_eq "$(printf '%s\n' 'dovecot 0' 'postfix-sasl 0')" \
        "$(vg_real_ctl --json status | jq -r '.jails[] | "\(.name) \(.untrustedFailures)"' | LC_ALL=C sort)" \
        "failures from untrusted senders"
rm_postfix_stop
rm_dovecot_stop
vg_term_daemon
vg_log "all checks passed"
