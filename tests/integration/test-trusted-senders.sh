#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Only the mail service can cause a ban. With the shipped jail (TrustedUser=root vpopmail
# qmaild), vchkpw's lines count when root, vpopmail or qmaild logs them (qmaild resolved by its
# name), and never when the web server (www-data, UID 33), a user (UID 1000) or a system UID with
# no account (777) logs the same lines. Those are not dropped in silence: the daemon warns,
# naming the UID, the account and the setting to change, and GetStatus and `vpopguardctl status`
# count them per jail. --test-config shows what each name resolved to.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin trusted-senders "$@"
vg_require_commands nft jq logger journalctl setpriv
conf=$tmp/vpopguard.conf
T=30
VPOPMAIL_UID=889
QMAILD_UID=888
NO_ACCOUNT_UID=777

# The accounts of a vpopmail/qmail install, in this test's mount namespace only.
awk -F: -v a="$VPOPMAIL_UID" -v b="$QMAILD_UID" -v c="$NO_ACCOUNT_UID" \
        '$3 == a || $3 == b || $3 == c || $1 == "vpopmail" || $1 == "qmaild" { bad = 1 } END { exit bad }' /etc/passwd ||
        vg_fail "/etc/passwd already has the UIDs or names this test adds"
getent passwd 33 | grep -q '^www-data:' || vg_fail "no www-data account with UID 33"
cp /etc/passwd "$tmp/passwd"
printf 'vpopmail:x:%s:%s::/home/vpopmail:/usr/sbin/nologin\nqmaild:x:%s:%s::/var/qmail:/usr/sbin/nologin\n' \
        "$VPOPMAIL_UID" "$VPOPMAIL_UID" "$QMAILD_UID" "$QMAILD_UID" >>"$tmp/passwd"
vg__mount --bind "$tmp/passwd" /etc/passwd

vg_vpopmail_config "$conf" MaxRetry=3 BanTime=1h

# --- What the names stand for.
"$daemon" --config="$conf" --test-config >"$tmp/test-config.out" 2>&1 ||
        vg_fail "--test-config failed: $(cat "$tmp/test-config.out")"
for line in 'TrustedUser=root' '# root: UID 0' 'TrustedUser=vpopmail' "# vpopmail: UID $VPOPMAIL_UID" \
        'TrustedUser=qmaild' "# qmaild: UID $QMAILD_UID"; do
        grep -qxF "$line" "$tmp/test-config.out" || vg_fail "--test-config lacks '$line': $(cat "$tmp/test-config.out")"
done

vg_start_journald
vg_spawn "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state"
pid=$VG_LAST_PID
ctl_answers() {
        "$ctl" status >/dev/null 2>&1
}
vg_poll $T ctl_answers

log_failures_as() { # UID ADDRESS
        local i
        for i in 1 2 3; do
                vg_log_vpopmail_as_uid "$1" "vchkpw-pop3: password fail joe@example.com:$2"
        done
}

banned() {
        vg_nft_set_has banned4 "$1"
}

# --- Senders that are not trusted: first, so that once the trusted ones below are banned, every
# line of theirs has been read.
log_failures_as 33 192.0.2.33
log_failures_as 1000 192.0.2.100
log_failures_as "$NO_ACCOUNT_UID" 192.0.2.77
vg_journal_sync
for u in 33 1000 "$NO_ACCOUNT_UID"; do
        vg_assert_eq 3 "$(journalctl -q --no-pager -o export SYSLOG_IDENTIFIER=vpopmail "_UID=$u" | grep -c '^MESSAGE=')" \
                "lines in the journal as UID $u"
done

# --- The mail service's accounts.
log_failures_as 0 192.0.2.1
log_failures_as "$VPOPMAIL_UID" 192.0.2.89
log_failures_as "$QMAILD_UID" 192.0.2.88
for a in 192.0.2.1 192.0.2.89 192.0.2.88; do
        vg_poll $T banned "$a"
done
for a in 192.0.2.33 192.0.2.100 192.0.2.77; do
        banned "$a" && vg_fail "$a was banned from lines of a sender the jail does not trust"
done
"$ctl" --json failures >"$tmp/failures.json"
vg_assert_eq 0 "$(jq '.failures | length' "$tmp/failures.json")" "failures tracked from untrusted senders"

# --- Reported, not dropped in silence.
"$ctl" --json status >"$tmp/status.json"
vg_assert_eq 9 "$(jq '.jails[] | select(.name == "vpopmail") | .untrustedFailures' "$tmp/status.json")" \
        "untrustedFailures of the vpopmail jail"
vg_assert_eq 9 "$(jq '.jails[] | select(.name == "vpopmail") | .failuresTotal' "$tmp/status.json")" \
        "failuresTotal of the vpopmail jail (the trusted ones)"
"$ctl" status >"$tmp/status.txt"
grep -qF 'Jail vpopmail: 9 failure lines from senders it does not trust, not counted' "$tmp/status.txt" ||
        vg_fail "vpopguardctl status does not report them: $(cat "$tmp/status.txt")"
# One warning a minute at most: the first names the web server's account and what to change.
grep -F 'UID 33 (www-data)' "$tmp/daemon.log" | grep -qF 'TrustedUser=www-data' ||
        vg_fail "no warning naming UID 33, www-data and TrustedUser=: $(cat "$tmp/daemon.log")"
vg_assert_eq 1 "$(grep -c 'was not counted' "$tmp/daemon.log")" "warnings about untrusted senders within a minute"

vg_stop_daemon "$pid" "$tmp/daemon.log"
vg_log "PASS"
