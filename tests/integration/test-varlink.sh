#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# io.vpopguard.Manager through vpopguardctl, as an administrator uses it: a private journald,
# vpopguardd on its default socket (in the test's private /run) and nftables in a private
# network namespace. Every method is checked against what can be seen elsewhere:
#   - status: the version, the cursor (the journal's last entry that the jail's filter matches),
#     the entry counts and the jail's counters, in the table and in --json;
#   - bans and failures after failures in the journal, with the entries' own timestamps;
#   - ban --time=30min: the nft element with its timeout, the ban event (VPOPGUARD_ORIGIN=manual)
#     and ListBans; unban: the element is gone, the unban event says VPOPGUARD_UNBAN_REASON=manual;
#     NotBanned, NoSuchJail, a loopback ban refused, invalid addresses refused without contact;
#   - test MESSAGE for a failure, an ignored address, an untrusted sender and no match; with
#     --jail=, in that jail alone (a disabled one too, without -t), NoSuchJail for an unknown one;
#   - reload takes effect; a broken configuration is refused naming FILE:LINE and the running
#     one keeps banning;
#   - UIDs 1, 999 and 1000 (in neither systemd-journal nor adm) get root's counters from status
#     (without the cursor) and PermissionDenied from bans, failures, ban, unban and reload,
#     changing nothing (test-varlink-permissions has every method and group);
#   - monitor (--json and human) reports a ban from the journal and a manual unban, and ends with
#     3 when the daemon dies;
#   - after kill -9, a flushed set and a restart: an address unbanned by hand is not banned again
#     from its earlier failures, and a manual ban is back in ListBans and in the set.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin varlink "$@"
vg_require_commands nft jq logger setpriv journalctl
src=${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}
state=$tmp/state
conf=$tmp/vpopguard.conf
sock=/run/vpopguard/io.vpopguard.Manager
BAN_ID=7fc6f43d6e5d457ba31097a4cc519474
UNBAN_ID=16f9f8826ed04c4b9f2a2591444632bc
unset VPOPGUARD_SOCKET

# Other users cannot enter the test's temporary directory (mode 0700): they run a copy in /run.
mkdir -p /run/vg-bin
cp "$ctl" /run/vg-bin/vpopguardctl
chmod 0755 /run/vg-bin /run/vg-bin/vpopguardctl

mkdir -p "$conf.d"
cp "$src/conf.d/10-vpopmail.conf" "$conf.d/"
write_config() { # MAXRETRY
        printf '[Defaults]\nMaxRetry=%s\nFindTime=10min\nBanTime=1h\nIPv6Prefix=128\nIgnoreAddress=198.51.100.0/28\n' "$1" >"$conf"
}
write_config 3

# --- Helpers. ctl RC ARGS...: runs vpopguardctl as root with the default socket, stdout in
# $tmp/out, stderr in $tmp/err, and fails unless it exits with RC. ctl_as UID RC ARGS...: the
# same as UID.
ctl() {
        local want=$1 rc=0
        shift
        "$ctl" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
        [[ $rc == "$want" ]] || vg_fail "vpopguardctl $* exited with $rc, not $want: $(cat "$tmp/out" "$tmp/err")"
}

ctl_as() {
        local uid=$1 want=$2 rc=0
        shift 2
        # Primary group nogroup: GID 999 is often systemd-journal itself, which may read addresses.
        setpriv --reuid="$uid" --regid=65534 --clear-groups /run/vg-bin/vpopguardctl "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
        [[ $rc == "$want" ]] || vg_fail "vpopguardctl $* as UID $uid exited with $rc, not $want: $(cat "$tmp/out" "$tmp/err")"
}

out_is() { # EXPECTED MESSAGE: the whole stdout of the last ctl
        vg_assert_eq "$1" "$(cat "$tmp/out")" "$2"
}

err_has() { # TEXT MESSAGE: stderr of the last ctl contains TEXT
        grep -qF -- "$1" "$tmp/err" || vg_fail "$2: no '$1' in: $(cat "$tmp/err")"
}

jq_out() { # FILTER: applied to the --json stdout of the last ctl
        jq -r "$1" "$tmp/out" || vg_fail "jq '$1' failed on: $(cat "$tmp/out")"
}

# Counters of what was logged under the jail's identifiers: read = entries, failed = failures.
n_read=0 n_failed=0
fail() { # ADDRESS [N]: N failures as vchkpw logs them (as root)
        local i
        for ((i = 0; i < ${2:-1}; i++)); do
                vg_log_vpopmail "vchkpw-pop3: password fail joe@example.com:$1"
        done
        n_read=$((n_read + ${2:-1})) n_failed=$((n_failed + ${2:-1}))
}

banned() { # ADDRESS, failing the test if the daemon died
        vg_daemon_ok
        vg_nft_set_has banned4 "$1"
}

start_daemon() {
        vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$state"
}

last_filter_cursor() {
        journalctl -q --no-pager -n 1 -o export SYSLOG_IDENTIFIER=vpopmail SYSLOG_IDENTIFIER=vchkpw |
                sed -n 's/^__CURSOR=//p'
}

status_cursor_is_last() {
        "$ctl" --json status >"$tmp/status.json" 2>/dev/null || return 1
        [[ $(jq -r .cursor "$tmp/status.json") == "$(last_filter_cursor)" ]]
}

realtimes_of() { # MESSAGE: __REALTIME_TIMESTAMP of each entry with it, oldest first
        journalctl -q --no-pager -o export SYSLOG_IDENTIFIER=vpopmail "MESSAGE=$1" |
                sed -n 's/^__REALTIME_TIMESTAMP=//p'
}

event_field() { # FILE FIELD: the value of FIELD in a journalctl -o export dump
        sed -n "s/^$2=//p" "$1"
}

# The nft element of ADDRESS in banned4 as JSON ({"val":..,"timeout":..,"expires":..}).
nft_element() {
        nft -j list set "$VG_NFT_FAMILY" "$VG_NFT_TABLE" banned4 |
                jq -c --arg a "$1" '.nftables[] | select(.set) | .set.elem // [] | .[]
                        | select(type == "object" and .elem.val == $a) | .elem'
}

# Wall clock in microseconds, as the daemon's *USec fields; read before and after a call, it
# bounds the moment the call happened, whatever the machine's speed.
usec_now() {
        date +%s%6N
}

# table_row ADDRESS: the row of ADDRESS in the last ctl's table, one column a line (columns are
# two or more spaces apart; a time span has single spaces, as in "1h 5min").
table_row() {
        grep "^$1 " "$tmp/out" | sed 's/  \+/\n/g'
}

# assert_relative TEXT LOW HIGH WHAT: TEXT is a time vpopguardctl printed relative to its "now"
# ("now", "3s ago", "in 1h 5min"), and the true offset (the time minus that "now") lies between
# LOW and HIGH microseconds. vpopguardctl rounds to the second under a minute, to the minute under
# a day, else to the hour; "now" is under half a second.
assert_relative() {
        local text=$1 span sign=1 part unit offset=0
        case $text in
        now) span= ;;
        "in "*) span=${text#in } ;;
        *" ago") span=${text% ago} sign=-1 ;;
        *) vg_fail "$4: '$text' is not a relative time" ;;
        esac
        for part in $span; do
                [[ $part =~ ^([0-9]+)(d|h|min|s)$ ]] || vg_fail "$4: '$text' is not a relative time"
                case ${BASH_REMATCH[2]} in
                d) unit=86400000000 ;; h) unit=3600000000 ;; min) unit=60000000 ;; s) unit=1000000 ;;
                esac
                offset=$((offset + 10#${BASH_REMATCH[1]} * unit))
        done
        unit=1000000
        ((offset < 60000000)) || unit=60000000
        ((offset < 86400000000)) || unit=3600000000
        offset=$((sign * offset))
        ((offset + unit / 2 >= $2 && offset - unit / 2 <= $3)) ||
                vg_fail "$4: '$text', but it was $(($2 / 1000000))s to $(($3 / 1000000))s from then"
}

ban_of() { # ADDRESS: its entry in ListBans (--json), or nothing
        "$ctl" --json bans >"$tmp/bans.json" || vg_fail "vpopguardctl --json bans failed"
        jq -c --arg a "$1" '.bans[] | select(.address == $a)' "$tmp/bans.json"
}

# --- Nobody is listening yet: exit 3, naming the socket.
ctl 3 status
err_has "$sock" "error without a daemon"
err_has "is vpopguardd running?" "error without a daemon"

vg_start_journald

# Failures before the start (inside FindTime) count once it runs.
fail 192.0.2.2 2
fail 192.0.2.1 3
vg_journal_sync
before_start=$(date +%s%6N)
start_daemon
after_start=$(date +%s%6N)
vg_poll 20 banned 192.0.2.1

vg_log_vpopmail "vchkpw-pop3: (PLAIN) login success joe@example.com:192.0.2.2"
n_read=$((n_read + 1))
fail 192.0.2.3
fail 192.0.2.4 3 # the sentinel: everything above has been judged once it is banned
vg_poll 20 banned 192.0.2.4
vg_journal_sync
vg_poll 10 status_cursor_is_last

# --- status
ctl 0 --json status
vg_assert_eq "$("$daemon" --version | awk '{ print $2 }')" "$(jq_out .version)" "version"
vg_assert_eq "$(last_filter_cursor)" "$(jq_out .cursor)" "cursor"
started=$(jq_out .startedUSec)
((started >= before_start && started <= after_start)) ||
        vg_fail "startedUSec $started is not between $before_start and $after_start"
vg_assert_eq "$n_read" "$(jq_out .entriesRead)" "entriesRead"
vg_assert_eq "$n_failed" "$(jq_out .entriesMatched)" "entriesMatched"
vg_assert_eq 2 "$(jq_out .bansActive)" "bansActive"
vg_assert_eq 1 "$(jq_out '.jails | length')" "number of jails"
vg_assert_eq "vpopmail true 3 600000000 3600000000 2 2 $n_failed 2" \
        "$(jq_out '.jails[0] | "\(.name) \(.enabled) \(.maxRetry) \(.findTimeUSec) \(.banTimeUSec) \(.tracked) \(.banned) \(.failuresTotal) \(.bansTotal)"')" \
        "GetStatus jail (name enabled maxRetry findTime banTime tracked banned failures bans)"
cursor=$(jq_out .cursor)
ctl 0 status
grep -qxF "Version:          $("$daemon" --version | awk '{ print $2 }')" "$tmp/out" || vg_fail "status: no version line: $(cat "$tmp/out")"
grep -qxF "Cursor:           $cursor" "$tmp/out" || vg_fail "status: no cursor line: $(cat "$tmp/out")"
grep -qxF "Entries read:     $n_read" "$tmp/out" || vg_fail "status: entries read: $(cat "$tmp/out")"
grep -qxF "Entries matched:  $n_failed" "$tmp/out" || vg_fail "status: entries matched: $(cat "$tmp/out")"
grep -qxF "Bans active:      2" "$tmp/out" || vg_fail "status: bans active: $(cat "$tmp/out")"
grep -qE "^vpopmail +yes +3 +10min +1h +2 +2 +$n_failed +2$" "$tmp/out" || vg_fail "status: jail row: $(cat "$tmp/out")"

# --- bans after failures in the journal
ctl 0 --json bans
vg_assert_eq "192.0.2.1 vpopmail 3 3600000000 journal
192.0.2.4 vpopmail 3 3600000000 journal" \
        "$(jq_out '.bans | sort_by(.address)[] | "\(.address) \(.jail) \(.failures) \(.expiresUSec - .bannedUSec) \(.origin)"')" \
        "ListBans after journal bans"
ctl 0 bans
vg_assert_eq "192.0.2.1 vpopmail 3 journal
192.0.2.4 vpopmail 3 journal" "$(awk 'NR > 1 && NF { print $1, $2, $3, $NF }' "$tmp/out" | grep -v listed | sort)" "bans table"
grep -qxF "2 bans listed." "$tmp/out" || vg_fail "bans: no footer: $(cat "$tmp/out")"

# --- failures [ADDRESS]: open windows with the entries' timestamps; banned addresses have none.
ctl 0 --json failures 192.0.2.2
mapfile -t times < <(realtimes_of "vchkpw-pop3: password fail joe@example.com:192.0.2.2")
vg_assert_eq 2 "${#times[@]}" "failure entries of 192.0.2.2 in the journal"
vg_assert_eq "192.0.2.2 vpopmail 2 ${times[0]} ${times[1]}" \
        "$(jq_out '.failures[] | "\(.address) \(.jail) \(.count) \(.firstUSec) \(.lastUSec)"')" "ListFailures 192.0.2.2"
t0=$(usec_now)
ctl 0 failures 192.0.2.2
t1=$(usec_now)
mapfile -t row < <(table_row 192.0.2.2)
vg_assert_eq "192.0.2.2 vpopmail 2" "${row[*]:0:3}" "failures table: $(cat "$tmp/out")"
vg_assert_eq 5 "${#row[@]}" "columns of the failures table: $(cat "$tmp/out")"
assert_relative "${row[3]}" $((times[0] - t1)) $((times[0] - t0)) "failures table, FIRST of 192.0.2.2"
assert_relative "${row[4]}" $((times[1] - t1)) $((times[1] - t0)) "failures table, LAST of 192.0.2.2"
grep -qxF "1 failure window listed." "$tmp/out" || vg_fail "failures footer: $(cat "$tmp/out")"
ctl 0 --json failures
vg_assert_eq "192.0.2.2 2,192.0.2.3 1" "$(jq_out '[.failures | sort_by(.address)[] | "\(.address) \(.count)"] | join(",")')" "ListFailures"
ctl 0 failures 192.0.2.1
out_is "No open failure windows." "failures of a banned address"

# --- ban ADDRESS --time=30min
t0=$(usec_now)
ctl 0 ban 203.0.113.5 --time=30min
t1=$(usec_now)
[[ $(cat "$tmp/out") =~ ^Banned\ 203\.0\.113\.5\ in\ jail\ vpopmail,\ expires\ (in\ [0-9a-z\ ]+)\.$ ]] ||
        vg_fail "ban output: $(cat "$tmp/out")"
# Banned, and printed, between t0 and t1: 30min from the ban is at most 30min from the print.
assert_relative "${BASH_REMATCH[1]}" $((1800000000 - (t1 - t0))) 1800000000 "ban output, expiry"
elem=$(nft_element 203.0.113.5)
[[ -n $elem ]] || vg_fail "203.0.113.5 is not in banned4 after ban"
timeout=$(jq -r '.timeout' <<<"$elem") expires=$(jq -r '.expires' <<<"$elem")
# The element's timeout is what was left of the 30min when it was added (whole seconds, rounded up).
((timeout <= 1800 && timeout * 1000000 >= 1800000000 - (t1 - t0) - 1000000)) ||
        vg_fail "timeout of the manual ban is ${timeout}s, not what is left of 30min: $elem"
((expires <= timeout)) || vg_fail "the manual ban expires after its timeout: $elem"
vg_poll 10 vg_journal_has "MESSAGE_ID=$BAN_ID" VPOPGUARD_ADDRESS=203.0.113.5
journalctl -q --no-pager -o export "MESSAGE_ID=$BAN_ID" VPOPGUARD_ADDRESS=203.0.113.5 >"$tmp/ban-event"
vg_assert_eq 1 "$(grep -c '^__CURSOR=' "$tmp/ban-event")" "ban events of 203.0.113.5"
vg_assert_eq manual "$(event_field "$tmp/ban-event" VPOPGUARD_ORIGIN)" "VPOPGUARD_ORIGIN"
vg_assert_eq 0 "$(event_field "$tmp/ban-event" VPOPGUARD_FAILURES)" "VPOPGUARD_FAILURES of a manual ban"
vg_assert_eq 1800000000 "$(event_field "$tmp/ban-event" VPOPGUARD_BAN_USEC)" "VPOPGUARD_BAN_USEC"
vg_assert_eq vpopmail "$(event_field "$tmp/ban-event" VPOPGUARD_JAIL)" "VPOPGUARD_JAIL"
vg_assert_eq vpopguardd "$(event_field "$tmp/ban-event" SYSLOG_IDENTIFIER)" "SYSLOG_IDENTIFIER of the event"
b=$(ban_of 203.0.113.5)
vg_assert_eq "vpopmail 0 manual 1800000000 $(event_field "$tmp/ban-event" VPOPGUARD_BANNED_USEC)" \
        "$(jq -r '"\(.jail) \(.failures) \(.origin) \(.expiresUSec - .bannedUSec) \(.bannedUSec)"' <<<"$b")" \
        "ListBans entry of the manual ban"
t0=$(usec_now)
ctl 0 bans
t1=$(usec_now)
mapfile -t row < <(table_row 203.0.113.5)
vg_assert_eq "203.0.113.5 vpopmail 0 1 30min manual" "${row[*]:0:5} ${row[7]:-}" "bans table, manual ban: $(cat "$tmp/out")"
vg_assert_eq 8 "${#row[@]}" "columns of the bans table: $(cat "$tmp/out")"
read -r banned_usec expires_usec < <(jq -r '"\(.bannedUSec) \(.expiresUSec)"' <<<"$b")
assert_relative "${row[5]}" $((banned_usec - t1)) $((banned_usec - t0)) "bans table, BANNED of the manual ban"
assert_relative "${row[6]}" $((expires_usec - t1)) $((expires_usec - t0)) "bans table, EXPIRES of the manual ban"

# --- unban ADDRESS
ctl 0 unban 203.0.113.5
out_is "Unbanned 203.0.113.5." "unban output"
[[ -z $(nft_element 203.0.113.5) ]] || vg_fail "203.0.113.5 still in banned4 after unban"
[[ -z $(ban_of 203.0.113.5) ]] || vg_fail "203.0.113.5 still in ListBans after unban"
vg_poll 10 vg_journal_has "MESSAGE_ID=$UNBAN_ID" VPOPGUARD_ADDRESS=203.0.113.5
journalctl -q --no-pager -o export "MESSAGE_ID=$UNBAN_ID" VPOPGUARD_ADDRESS=203.0.113.5 >"$tmp/unban-event"
vg_assert_eq manual "$(event_field "$tmp/unban-event" VPOPGUARD_UNBAN_REASON)" "VPOPGUARD_UNBAN_REASON"
vg_assert_eq vpopmail "$(event_field "$tmp/unban-event" VPOPGUARD_JAIL)" "VPOPGUARD_JAIL of the unban"

ctl 1 unban 203.0.113.5
err_has "io.vpopguard.Manager.NotBanned" "unban of an address that is not banned"
err_has '"address":"203.0.113.5"' "NotBanned names the address"
[[ ! -s $tmp/out ]] || vg_fail "unban of an unbanned address printed: $(cat "$tmp/out")"

# A journal ban lifted by hand (its failures must not ban it again after a restart, below).
ctl 0 unban 192.0.2.1
banned 192.0.2.1 && vg_fail "192.0.2.1 still in banned4 after unban"

# --- invalid addresses are refused before anything is sent; loopback by the daemon
for a in 300.1.2.3 192.0.2 not-an-address 2001:db8::g; do
        ctl 2 ban "$a"
        err_has "Invalid address" "ban $a"
        ctl 2 --socket=/run/nobody-listens-here ban "$a" # exit 2, not 3: no connection tried
done
ctl 1 ban 127.0.0.1
err_has "io.vpopguard.Manager.InvalidAddress" "ban of loopback"
vg_assert_eq "" "$(nft_element 127.0.0.1)" "loopback in banned4"
ctl 2 ban 192.0.2.9 --time=0
banned 192.0.2.9 && vg_fail "192.0.2.9 banned by a refused command"

# --- test MESSAGE (counts nothing)
ctl 0 test "vchkpw-pop3: password fail joe@example.com:192.0.2.7"
out_is "jail vpopmail, address 192.0.2.7: counts as a failure" "test of a failure"
ctl 0 --json test "vchkpw-pop3: password fail joe@example.com:192.0.2.7"
vg_assert_eq "vpopmail 192.0.2.7 false failure" "$(jq_out '"\(.jail) \(.address) \(.ignored) \(.reason)"')" "TestMessage failure"
ctl 0 --json test "vchkpw-smtp: vpopmail user not found www@:198.51.100.5"
vg_assert_eq "vpopmail 198.51.100.5 true ignored-address" "$(jq_out '"\(.jail) \(.address) \(.ignored) \(.reason)"')" "TestMessage ignored address"
ctl 0 test "vchkpw-smtp: vpopmail user not found www@:198.51.100.5"
out_is "jail vpopmail, address 198.51.100.5: does not count: the address is ignored (IgnoreAddress= or loopback) (ignored-address)" "test of an ignored address"
ctl 0 --json test --field=_UID=1000 "vchkpw-pop3: password fail joe@example.com:192.0.2.7"
vg_assert_eq "vpopmail false untrusted-sender" "$(jq_out '"\(.jail) \(.ignored) \(.reason)"')" "TestMessage untrusted"
ctl 0 test --field=_UID=1000 "vchkpw-pop3: password fail joe@example.com:192.0.2.7"
out_is "jail vpopmail: does not count: the sender is not trusted (TrustedUser=, TrustedUID=) (untrusted-sender)" "test of an untrusted sender"
ctl 0 --json test "vchkpw-pop3: (PLAIN) login success joe@example.com:192.0.2.7"
vg_assert_eq "null null false no-match" "$(jq_out '"\(.jail) \(.address) \(.ignored) \(.reason)"')" "TestMessage no-match"
ctl 0 test "vchkpw-pop3: (PLAIN) login success joe@example.com:192.0.2.7"
out_is "no jail: does not count: no FailRegex= matches (no-match)" "test of a success line"
ctl 0 --json failures 192.0.2.7
vg_assert_eq 0 "$(jq_out '.failures | length')" "failures of 192.0.2.7 after test"

# --- reload
write_config 2
ctl 0 reload
out_is "Reloaded the configuration." "reload output"
ctl 0 --json status
vg_assert_eq 2 "$(jq_out '.jails[0].maxRetry')" "maxRetry after reload"
fail 192.0.2.40 2
vg_poll 20 banned 192.0.2.40

printf '[Defaults]\nMaxRetry=lots\n' >"$conf.d/60-broken.conf"
ctl 1 reload
err_has "io.vpopguard.Manager.ConfigurationError" "reload of a broken configuration"
err_has "$conf.d/60-broken.conf:2" "ConfigurationError names file and line"
[[ ! -s $tmp/out ]] || vg_fail "failed reload printed: $(cat "$tmp/out")"
vg_pid_alive "$VG_DAEMON_PID" || vg_fail "vpopguardd exited after a broken reload: $(tail -n 20 "$VG_DAEMON_LOG")"
ctl 0 --json status
vg_assert_eq 2 "$(jq_out '.jails[0].maxRetry')" "maxRetry after a refused reload"
fail 192.0.2.41 2
vg_poll 20 banned 192.0.2.41
rm "$conf.d/60-broken.conf"

# --- Other users, system accounts included: the counters as root sees them, no addresses, and
# Ban, Unban and Reload are root's only (a "UID < 1000" check would let UIDs 1 and 999 in).
ctl 0 --json status
jq -S 'del(.cursor)' "$tmp/out" >"$tmp/root-status.json"
write_config 4 # a reload that went through would show as maxRetry 4
for uid in 1 999 1000; do
        ctl_as "$uid" 0 --json status
        vg_assert_eq null "$(jq_out '.cursor')" "cursor in the status of UID $uid"
        jq -S 'del(.cursor)' "$tmp/out" >"$tmp/user-status.json"
        vg_assert_files_eq "$tmp/root-status.json" "$tmp/user-status.json" "status as UID $uid"
        ctl_as "$uid" 0 status
        grep -qE "^vpopmail +yes +2 " "$tmp/out" || vg_fail "status as UID $uid: $(cat "$tmp/out")"
        for verb in bans failures; do
                ctl_as "$uid" 1 "$verb"
                err_has "io.vpopguard.Manager.PermissionDenied" "$verb as UID $uid"
                [[ ! -s $tmp/out ]] || vg_fail "$verb as UID $uid printed: $(cat "$tmp/out")"
        done
        ctl_as "$uid" 1 ban 203.0.113.50
        err_has "io.vpopguard.Manager.PermissionDenied" "ban as UID $uid"
        [[ -z $(nft_element 203.0.113.50) && -z $(ban_of 203.0.113.50) ]] || vg_fail "UID $uid banned 203.0.113.50"
        ctl_as "$uid" 1 unban 192.0.2.4
        err_has "io.vpopguard.Manager.PermissionDenied" "unban as UID $uid"
        banned 192.0.2.4 || vg_fail "UID $uid unbanned 192.0.2.4"
        [[ -n $(ban_of 192.0.2.4) ]] || vg_fail "UID $uid removed 192.0.2.4 from ListBans"
        ctl_as "$uid" 1 reload
        err_has "io.vpopguard.Manager.PermissionDenied" "reload as UID $uid"
        ctl 0 --json status
        vg_assert_eq 2 "$(jq_out '.jails[0].maxRetry')" "maxRetry after a reload by UID $uid"
done
write_config 2
ctl 0 --json status
jq -S 'del(.cursor)' "$tmp/out" >"$tmp/root-status-after.json"
vg_assert_files_eq "$tmp/root-status.json" "$tmp/root-status-after.json" "status after the refused calls"

# --- NoSuchJail
ctl 1 bans nosuchjail
err_has "io.vpopguard.Manager.NoSuchJail" "bans nosuchjail"
err_has '"jail":"nosuchjail"' "NoSuchJail names the jail"
ctl 0 --json bans vpopmail
vg_assert_eq 3 "$(jq_out '.bans | length')" "bans of jail vpopmail"

# --- test --jail=: that jail alone, enabled or not, with its own identifier (the daemon builds
# a disabled one for the call)
cp "$src/conf.d/10-sshd.conf" "$conf.d/" # Enabled=no
ctl 0 reload
sshd_line="Failed password for root from 192.0.2.77 port 22 ssh2"
ctl 0 test -t sshd "$sshd_line"
out_is "no jail: does not count: no FailRegex= matches (no-match)" "an sshd line while the sshd jail is off"
ctl 0 test --jail=sshd "$sshd_line"
out_is "jail sshd, address 192.0.2.77: counts as a failure" "test --jail= of a disabled jail"
ctl 0 --json test --jail=sshd --field=_UID=1000 "$sshd_line"
vg_assert_eq "sshd untrusted-sender" "$(jq_out '"\(.jail) \(.reason)"')" "test --jail= checks TrustedUser="
ctl 0 test --jail=sshd "vchkpw-pop3: password fail joe@example.com:192.0.2.7"
out_is "no jail: does not count: no FailRegex= matches (no-match)" "test --jail= tries no other jail"
ctl 0 test --jail=vpopmail "vchkpw-pop3: password fail joe@example.com:192.0.2.7"
out_is "jail vpopmail, address 192.0.2.7: counts as a failure" "test --jail= of an enabled jail"
ctl 1 test --jail=nosuchjail x
err_has "io.vpopguard.Manager.NoSuchJail" "test --jail=nosuchjail"
err_has '"jail":"nosuchjail"' "NoSuchJail of test names the jail"
ctl 0 --json failures 192.0.2.77
vg_assert_eq 0 "$(jq_out '.failures | length')" "failures of 192.0.2.77 after test --jail="
rm "$conf.d/10-sshd.conf"
ctl 0 reload

# --- monitor: follows bans from the journal and manual unbans
vg_spawn "$tmp/monitor.json" "$ctl" --json monitor
monitor_json=$VG_LAST_PID
vg_spawn "$tmp/monitor.txt" "$ctl" monitor
monitor_txt=$VG_LAST_PID
# Both are listening once a probe ban reaches both; until then, ban and unban the probe again.
monitors_listen() {
        grep -q '"address":"203.0.113.99"' "$tmp/monitor.json" && grep -q ' 203\.0\.113\.99 ' "$tmp/monitor.txt" && return 0
        "$ctl" ban --time=1min 203.0.113.99 >/dev/null || vg_fail "probe ban failed"
        "$ctl" unban 203.0.113.99 >/dev/null || vg_fail "probe unban failed"
        return 1
}
vg_poll 10 monitors_listen
fail 192.0.2.30 2
json_event() { # EVENT ADDRESS: prints the ban of the first such line of the --json monitor
        grep '^{' "$tmp/monitor.json" | jq -c --arg e "$1" --arg a "$2" 'select(.event == $e and .ban.address == $a) | .ban' | head -n 1
}
has_json_event() {
        [[ -n $(json_event "$1" "$2") ]]
}
vg_poll 20 has_json_event ban 192.0.2.30
vg_assert_eq "vpopmail 2 journal 3600000000" \
        "$(json_event ban 192.0.2.30 | jq -r '"\(.jail) \(.failures) \(.origin) \(.expiresUSec - .bannedUSec)"')" "monitor ban event"
banned 192.0.2.30 || vg_fail "monitor reported a ban of 192.0.2.30 that is not in banned4"
ctl 0 unban 192.0.2.30
vg_poll 10 has_json_event unban 192.0.2.30
vg_assert_eq "vpopmail journal" "$(json_event unban 192.0.2.30 | jq -r '"\(.jail) \(.origin)"')" "monitor unban event"
has_txt() { grep -qE "$1" "$tmp/monitor.txt"; }
vg_poll 10 has_txt '^[0-9]{2}:[0-9]{2}:[0-9]{2} unban 192\.0\.2\.30 in jail vpopmail$'
t1=$(usec_now)
line=$(grep ' ban 192\.0\.2\.30 ' "$tmp/monitor.txt") || vg_fail "human monitor, no ban line: $(cat "$tmp/monitor.txt")"
[[ $line =~ ^[0-9]{2}:[0-9]{2}:[0-9]{2}\ ban\ 192\.0\.2\.30\ in\ jail\ vpopmail,\ 2\ failures,\ expires\ (in\ [0-9a-z\ ]+),\ origin\ journal$ ]] ||
        vg_fail "human monitor, ban line: $line"
# Printed between the ban and now (t1): the expiry is at most 1h, and at least 1h - (t1 - ban) away.
read -r banned_usec expires_usec < <(json_event ban 192.0.2.30 | jq -r '"\(.bannedUSec) \(.expiresUSec)"')
assert_relative "${BASH_REMATCH[1]}" $((expires_usec - t1)) $((expires_usec - banned_usec)) "human monitor, expiry"
vg_kill "$monitor_txt"

# --- Restart: an address unbanned by hand stays unbanned, a manual ban stays.
ctl 0 ban 203.0.113.60 --time=2h
manual_before=$(ban_of 203.0.113.60)
fail 192.0.2.50 2
vg_poll 20 banned 192.0.2.50
ctl 0 unban 192.0.2.50 # the last change before the crash
vg_kill9_daemon
# A monitor ends with 3 when the daemon goes away.
vg_poll 10 vg_pid_exited "$monitor_json"
rc=0
wait "$monitor_json" || rc=$?
vg_kill "$monitor_json"
vg_assert_eq 3 "$rc" "exit status of monitor when the daemon dies"
# As after a reboot: the kernel forgot the elements; the daemon must put back what is banned.
nft flush set "$VG_NFT_FAMILY" "$VG_NFT_TABLE" banned4
nft flush set "$VG_NFT_FAMILY" "$VG_NFT_TABLE" banned6
t_restart=$(usec_now)
start_daemon
# One new failure each: with their earlier failures they would reach MaxRetry=2.
fail 192.0.2.50
fail 192.0.2.1
fail 192.0.2.51 2 # the sentinel
vg_poll 20 banned 192.0.2.51
for a in 192.0.2.50 192.0.2.1; do
        banned "$a" && vg_fail "$a banned again after an unban by hand and a restart"
        [[ -z $(ban_of "$a") ]] || vg_fail "$a in ListBans after an unban by hand and a restart"
        ctl 0 --json failures "$a"
        vg_assert_eq 1 "$(jq_out '.failures[0].count')" "failures of $a after the restart"
done
vg_assert_eq "$manual_before" "$(ban_of 203.0.113.60)" "the manual ban in ListBans after the restart"
elem=$(nft_element 203.0.113.60)
t1=$(usec_now)
[[ -n $elem ]] || vg_fail "the manual ban 203.0.113.60 is not back in banned4 after the restart"
timeout=$(jq -r '.timeout' <<<"$elem")
# What was left of it when the restarted daemon put it back (between t_restart and t1), rounded up.
expires_usec=$(jq -r .expiresUSec <<<"$manual_before")
((timeout * 1000000 <= expires_usec - t_restart + 1000000 && timeout * 1000000 >= expires_usec - t1)) ||
        vg_fail "timeout of the restored manual ban is ${timeout}s, its ban ends in $(((expires_usec - t1) / 1000000))s: $elem"
banned 192.0.2.4 || vg_fail "the journal ban of 192.0.2.4 is not back in banned4 after the restart"

vg_log "all checks passed"
