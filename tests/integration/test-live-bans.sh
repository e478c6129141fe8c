#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vpopguardd following a live journal, as on a real server: a private journald, lines written
# over the syslog socket like vchkpw writes them (logger), the shipped jail, and an nftables
# table in a private network namespace. Asserts what an admin would check:
#   - failures logged before the first start (within FindTime) count;
#   - every failure format vpopmail logs, under every kind of service prefix, IPv4, underscore
#     IPv6 and long colon IPv6, under both identifiers, bans exactly its client address;
#   - nothing else is banned: MaxRetry-1 failures, lines from an ordinary user, IgnoreAddress=,
#     loopback, fake addresses inside passwords and raw login names, "access denied" and
#     "login success" lines, vpopmail text under another identifier;
#   - the ban event names its three causes by cursor, and each leads to the failure entry;
#   - after SIGTERM the state file holds the cursor of the last entry the jail's filter matches,
#     and the table with its elements outlives the daemon.
# Negatives are proven with a later sentinel ban: entries are judged in journal order.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin live "$@"
vg_require_commands nft jq logger setpriv
src=${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}
state=$tmp/state
ban_id=7fc6f43d6e5d457ba31097a4cc519474

# --- Configuration: the shipped jail, explicit limits and addresses to ignore.
mkdir -p "$tmp/vpopguard.conf.d"
cp "$src/conf.d/10-vpopmail.conf" "$tmp/vpopguard.conf.d/"
cat >"$tmp/vpopguard.conf" <<'EOF'
[Defaults]
MaxRetry=3
FindTime=10min
BanTime=1h
IPv6Prefix=128
IgnoreAddress=198.51.100.0/28
IgnoreAddress=2001:db8:ffff::/48
EOF
"$daemon" --config="$tmp/vpopguard.conf" --test-config >"$tmp/effective.conf" 2>&1 ||
        vg_fail "test configuration refused: $(cat "$tmp/effective.conf")"

# log_as IDENT FACILITY MESSAGE: like vg_log_vpopmail, under another identifier.
log_as() {
        logger --socket-errors=on --id -p "$2.notice" -t "$1" -- "$3" || vg_fail "logger -t $1 failed"
}

# log_times N MESSAGE: N failures from root, as vchkpw logs them.
log_times() {
        local i
        for ((i = 0; i < $1; i++)); do
                vg_log_vpopmail "$2"
        done
}

# The cursor of the newest entry that the shipped jail's journal filter matches.
last_filter_cursor() {
        journalctl -q --no-pager -n 1 -o export SYSLOG_IDENTIFIER=vpopmail SYSLOG_IDENTIFIER=vchkpw |
                sed -n 's/^__CURSOR=//p'
}

state_cursor() {
        sed -n 's/^cursor //p' "$state/state" 2>/dev/null
}


vg_start_journald

# --- Failures logged before the first start, within FindTime, count.
log_times 2 "vchkpw-smtp: vpopmail user not found early@:192.0.2.101"
log_times 3 "vchkpw-pop3: password fail early@example.com:192.0.2.100"
vg_journal_sync
[[ ! -e $state/state ]] || vg_fail "a state file exists before the first start"
if nft list table "$VG_NFT_FAMILY" "$VG_NFT_TABLE" >/dev/null 2>&1; then
        vg_fail "the table exists before the daemon started"
fi

vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$tmp/vpopguard.conf" --state-directory="$state" --log-level=debug
vg_poll 20 vg_banned banned4 192.0.2.100 # also the sentinel for 192.0.2.101
if vg_nft_set_has banned4 192.0.2.101; then
        vg_fail "192.0.2.101 banned after 2 failures"
fi
# Two failures before the start and one after it make three.
vg_log_vpopmail "vchkpw-smtp: vpopmail user not found early@:192.0.2.101"
vg_poll 20 vg_banned banned4 192.0.2.101

# --- Every failure format, each with its own address: SET ADDRESS IDENTIFIER FACILITY MESSAGE.
cases=(
        "banned4|192.0.2.1|vpopmail|mail|vchkpw-smtp: vpopmail user not found www@:192.0.2.1"
        "banned4|192.0.2.2|vpopmail|mail|vchkpw-pop3: password fail info@example.com:192.0.2.2"
        "banned4|192.0.2.3|vpopmail|mail|vchkpw-imap: password fail (pass: 'hunter 2') joe@example.com:192.0.2.3"
        "banned4|192.0.2.4|vpopmail|mail|vchkpw-submission: invalid user/domain characters bad name:here:192.0.2.4"
        "banned4|192.0.2.5|vpopmail|mail|vchkpw-pop3s: null user name given :192.0.2.5"
        "banned4|192.0.2.6|vpopmail|mail|vchkpw-2525: null password given postmaster:192.0.2.6"
        "banned4|192.0.2.7|vpopmail|mail|vchkpw: system user not found joe:192.0.2.7"
        "banned4|192.0.2.8|vpopmail|mail|vchkpw-smtp: system user shadow entry not found joe:192.0.2.8"
        "banned4|192.0.2.9|vpopmail|mail|vchkpw-pop3: system password fail joe@example.com:192.0.2.9"
        "banned4|192.0.2.10|vpopmail|mail|vchkpw-imap: system password fail (pass: 'x y') joe:192.0.2.10"
        "banned4|192.0.2.11|vpopmail|mail|vchkpw: password fail info@example.com:192.0.2.11"
        "banned4|192.0.2.12|vpopmail|mail|vchkpw-0: vpopmail user not found a.b+c@example.com:192.0.2.12"
        "banned4|192.0.2.13|vchkpw|user|vchkpw-pop3: password fail bob@example.com:192.0.2.13"
        "banned4|192.0.2.14|vchkpw|user|vchkpw: null password given bob:192.0.2.14"
        "banned4|192.0.2.15|vpopmail|mail|vchkpw-smtps: password fail joe@example.com:192.0.2.15"
        "banned4|192.0.2.16|vpopmail|mail|vchkpw-imaps: null user name given :192.0.2.16"
        "banned4|192.0.2.17|vpopmail|mail|vchkpw-webmail: password fail joe@example.com:192.0.2.17"
        "banned4|192.0.2.18|vpopmail|mail|vchkpw-pop3: password fail joe@example.com:__ffff_192.0.2.18"
        "banned6|2001:db8::7|vpopmail|mail|vchkpw-submission: vpopmail user not found admin@example.org:2001_db8__7"
        "banned6|2001:db8:85a3::8a2e:370:7334|vpopmail|mail|vchkpw-pop3s: password fail sales@example.net:2001:0db8:85a3:0000:0000:8a2e:0370:7334"
        "banned6|2001:db8::42|vpopmail|mail|vchkpw-imap: invalid user/domain characters bad:name:2001:0db8:0000:0000:0000:0000:0000:0042"
        "banned6|2001:db8:1111:2222:3333:0:4444:5555|vpopmail|mail|vchkpw-pop3: null password given bob:2001:db8:1111:2222:3333::4444:5555"
        "banned6|2001:db8:0:1::14|vpopmail|mail|vchkpw-2525: null password given x_y:2001_db8_0_1__14"
        "banned6|2001:db8:aaaa::15|vchkpw|user|vchkpw-smtp: system password fail joe:2001_db8_aaaa__15"
        # A fake address in attacker text never wins over the real one at the end.
        "banned4|192.0.2.20|vpopmail|mail|vchkpw-smtp: password fail (pass: 'x@y.example:203.0.113.66') joe@example.com:192.0.2.20"
        "banned4|192.0.2.21|vpopmail|mail|vchkpw-imap: invalid user/domain characters evil x@y.example:203.0.113.67:192.0.2.21"
        "banned4|192.0.2.22|vpopmail|mail|vchkpw-pop3: password fail (pass: '') a@b.example:203.0.113.68') joe@example.com:192.0.2.22"
        "banned4|192.0.2.23|vpopmail|mail|vchkpw-pop3: null password given 2001_db8__66:192.0.2.23"
        "banned4|192.0.2.24|vpopmail|mail|vchkpw-pop3: system password fail (pass: 'p:203.0.113.69') joe:192.0.2.24"
        "banned4|192.0.2.25|vpopmail|mail|vchkpw-imap: invalid user/domain characters a b:2001:0db8:0000:0000:0000:0000:0000:0066:192.0.2.25"
)
want4=(192.0.2.100 192.0.2.101)
want6=()
for c in "${cases[@]}"; do
        IFS='|' read -r set address ident facility message <<<"$c"
        for i in 1 2 3; do
                log_as "$ident" "$facility" "$message"
        done
        if [[ $set == banned4 ]]; then want4+=("$address"); else want6+=("$address"); fi
done

# --- Never banned. Where a line must not count, two real failures of the same address come
# first, so that counting it once would ban.
log_times 2 "vchkpw-pop3: password fail short@example.com:192.0.2.50"
for i in 1 2 3; do
        vg_log_vpopmail_as_uid 1000 "vchkpw-pop3: password fail mallory@example.com:192.0.2.51"
done
log_times 2 "vchkpw-pop3: password fail mallory@example.com:192.0.2.52"
vg_log_vpopmail_as_uid 1000 "vchkpw-pop3: password fail mallory@example.com:192.0.2.52"
log_times 3 "vchkpw-smtp: password fail office@example.com:198.51.100.9"
log_times 3 "vchkpw-smtp: password fail office@example.com:2001_db8_ffff__9"
log_times 3 "vchkpw-webmail: password fail joe@example.com:127.0.0.1"
log_times 3 "vchkpw-pop3: password fail joe@example.com:__1"
log_times 3 "vchkpw-pop3: vpopmail user not found test@:"
log_times 2 "vchkpw-pop3: password fail joe@example.com:192.0.2.60"
vg_log_vpopmail "vchkpw-pop3: pop access denied joe@example.com:192.0.2.60"
vg_log_vpopmail "vchkpw-smtp: smtp access denied joe@example.com:192.0.2.60"
vg_log_vpopmail "vchkpw-imap: imap access denied joe@example.com:192.0.2.60"
vg_log_vpopmail "vchkpw-webmail: webmail access denied joe@example.com:192.0.2.60"
log_times 2 "vchkpw-pop3: password fail joe@example.com:192.0.2.61"
vg_log_vpopmail "vchkpw-pop3: (PLAIN) login success joe@example.com:192.0.2.61"
vg_log_vpopmail "vchkpw-smtp: (CRAM-MD5) login success joe@example.com:192.0.2.61"
vg_log_vpopmail "vchkpw-pop3: (APOP) login success joe@example.com:192.0.2.61"
vg_log_vpopmail "vchkpw-pop3: system password login success joe:192.0.2.61"
for i in 1 2 3; do
        log_as sshd auth "vchkpw-pop3: password fail root@example.com:192.0.2.62"
done
log_times 2 "vchkpw-pop3: password fail joe@example.com:192.0.2.63"
log_as sshd auth "vchkpw-pop3: password fail joe@example.com:192.0.2.63"
log_as vpopmail-test mail "vchkpw-pop3: password fail joe@example.com:192.0.2.63"
log_as VPOPMAIL mail "vchkpw-pop3: password fail joe@example.com:192.0.2.63"

# The sentinel: once it is banned, everything above has been judged.
log_times 3 "vchkpw-pop3: password fail sentinel@example.com:192.0.2.99"
want4+=(192.0.2.99)
vg_poll 30 vg_banned banned4 192.0.2.99
# The lines of UID 1000 reached the journal as such: otherwise that nothing was banned for them
# would prove nothing.
vg_journal_sync
forged() { # ADDRESS: its failure lines in the journal from UID 1000
        journalctl -q --no-pager -o export SYSLOG_IDENTIFIER=vpopmail _UID=1000 \
                "MESSAGE=vchkpw-pop3: password fail mallory@example.com:$1" | grep -c '^__CURSOR=' || true
}
vg_assert_eq 3 "$(forged 192.0.2.51)" "entries of 192.0.2.51 from UID 1000"
vg_assert_eq 1 "$(forged 192.0.2.52)" "entries of 192.0.2.52 from UID 1000"

vg_assert_eq "$(printf '%s\n' "${want4[@]}" | LC_ALL=C sort)" "$(vg_nft_set_elements banned4)" "elements of banned4"
vg_assert_eq "$(printf '%s\n' "${want6[@]}" | LC_ALL=C sort)" "$(vg_nft_set_elements banned6)" "elements of banned6"

# --- The ban event names its causes; each cursor leads to the failure entry.
vg_poll 10 vg_journal_has "MESSAGE_ID=$ban_id" VPOPGUARD_ADDRESS=192.0.2.99
vg_journal_sync
journalctl -q --no-pager -o export "MESSAGE_ID=$ban_id" VPOPGUARD_ADDRESS=192.0.2.2 >"$tmp/ban-event"
vg_assert_eq 1 "$(grep -c '^__CURSOR=' "$tmp/ban-event")" "ban events of 192.0.2.2"
vg_assert_eq vpopmail "$(sed -n 's/^VPOPGUARD_JAIL=//p' "$tmp/ban-event")" "VPOPGUARD_JAIL"
vg_assert_eq 3 "$(sed -n 's/^VPOPGUARD_FAILURES=//p' "$tmp/ban-event")" "VPOPGUARD_FAILURES"
vg_assert_eq journal "$(sed -n 's/^VPOPGUARD_ORIGIN=//p' "$tmp/ban-event")" "VPOPGUARD_ORIGIN"
sed -n 's/^VPOPGUARD_CAUSE_CURSOR=//p' "$tmp/ban-event" >"$tmp/causes"
vg_assert_eq 3 "$(wc -l <"$tmp/causes")" "VPOPGUARD_CAUSE_CURSOR fields"
vg_assert_eq 3 "$(sort -u "$tmp/causes" | wc -l)" "distinct cause cursors"
sed -n 's/^VPOPGUARD_CAUSE_REALTIME_USEC=//p' "$tmp/ban-event" | sort >"$tmp/cause-times"
: >"$tmp/entry-times"
while read -r cursor; do
        journalctl -q --no-pager --cursor="$cursor" -n 1 -o export >"$tmp/cause" ||
                vg_fail "journalctl --cursor=$cursor failed"
        vg_assert_eq "$cursor" "$(sed -n 's/^__CURSOR=//p' "$tmp/cause")" "entry found by the cause cursor"
        vg_assert_eq vpopmail "$(sed -n 's/^SYSLOG_IDENTIFIER=//p' "$tmp/cause")" "identifier of the cause"
        vg_assert_eq 0 "$(sed -n 's/^_UID=//p' "$tmp/cause")" "_UID of the cause"
        message=$(sed -n 's/^MESSAGE=//p' "$tmp/cause")
        [[ $message == *:192.0.2.2 ]] || vg_fail "cause $cursor is '$message', not a line of 192.0.2.2"
        sed -n 's/^__REALTIME_TIMESTAMP=//p' "$tmp/cause" >>"$tmp/entry-times"
done <"$tmp/causes"
vg_assert_files_eq "$tmp/cause-times" <(sort "$tmp/entry-times") "cause timestamps"

# --- The saved cursor is that of the last entry the jail's filter matches, also when that
# entry is no failure; lines outside the filter after it do not move it.
log_as sshd auth "Accepted publickey for root from 192.0.2.200 port 22 ssh2"
vg_log_vpopmail "vchkpw-pop3: (PLAIN) login success joe@example.com:192.0.2.201"
log_as sshd auth "vchkpw-pop3: password fail joe@example.com:192.0.2.202"
vg_journal_sync
last=$(last_filter_cursor)
[[ -n $last ]] || vg_fail "no entry matches the jail's filter"
vg_assert_eq "vchkpw-pop3: (PLAIN) login success joe@example.com:192.0.2.201" \
        "$(journalctl -q --no-pager --cursor="$last" -n 1 -o cat)" "last entry of the filter"
# The state is saved after every batch (manager.h), so the daemon has read that entry once the
# file names it; SIGTERM must then keep it.
state_has_last() {
        vg_daemon_ok
        [[ $(state_cursor) == "$last" ]]
}
vg_poll 20 state_has_last
elements4=$(vg_nft_set_elements banned4)
elements6=$(vg_nft_set_elements banned6)

vg_term_daemon
grep -q 'Received SIGTERM' "$tmp/daemon.log" || vg_fail "no SIGTERM message in the daemon's log"

vg_assert_eq "vpopguard-state 4" "$(head -n 1 "$state/state")" "state file header"
[[ $(tail -n 1 "$state/state") == "end "* ]] || vg_fail "state file has no end line"
vg_assert_eq "$last" "$(state_cursor)" "saved cursor after SIGTERM"
nft list table "$VG_NFT_FAMILY" "$VG_NFT_TABLE" >/dev/null || vg_fail "the table is gone after the daemon exited"
vg_assert_eq "$elements4" "$(vg_nft_set_elements banned4)" "banned4 after the daemon exited"
vg_assert_eq "$elements6" "$(vg_nft_set_elements banned6)" "banned6 after the daemon exited"

vg_log "all checks passed"
