#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The kernel's ruleset follows the daemon's state: a restart never removes the table (no
# unprotected window); after "nft flush ruleset" (with SIGTERM or SIGKILL before the start) the
# table, sets, chain and every active ban come back with the remaining time, not a new BanTime;
# a table deleted under the running daemon is rebuilt, old bans included, at the next ban; with
# CreateTable=no the daemon refuses sets that are missing or wrong, and bans into sets made by
# hand without adding anything to them.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin firewall "$@"
vg_require_commands nft jq logger journalctl timeout
state=$tmp/state
conf=$tmp/vpopguard.conf
BAN_MESSAGE_ID=7fc6f43d6e5d457ba31097a4cc519474
# Longer than the test can take however slow the machine (under valgrind too): a ban that ran out
# during the test would look like one the daemon failed to put back.
BAN_SEC=86400

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=10min "BanTime=${BAN_SEC}s"

vg_start_journald

# --- The daemon: ready once it sent READY=1; each start has its log.
start_daemon() { # [CONFIG]
        vg_start_daemon_n "$daemon" --config="${1:-$conf}" --state-directory="$state"
}

# A daemon that must refuse to start: its exit status (not 0, and not timeout's 124).
run_daemon_expecting_failure() { # CONFIG LOG
        local rc=0
        vg_timeout 20 "$daemon" --config="$1" --state-directory="$state" >"$2" 2>&1 </dev/null || rc=$?
        ((rc != 0)) || vg_fail "vpopguardd started with $1: $(cat "$2")"
        ((rc != 124)) || vg_fail "vpopguardd kept running with $1: $(cat "$2")"
}

# --- What an administrator checks.
ban() { # ADDRESS_AS_VCHKPW_PRINTS_IT: three failures
        local k
        for k in 1 2 3; do
                vg_log_vpopmail "vchkpw-pop3: password fail u$k@example.com:$1"
        done
}

banned_elements() {
        { vg_nft_set_elements banned4; vg_nft_set_elements banned6; } | LC_ALL=C sort
}

has_ban() {
        vg_nft_set_has banned4 "$1" || vg_nft_set_has banned6 "$1"
}

# The ban event follows the nft commit, so wait for both.
wait_for_ban() { # ADDRESS
        vg_poll 20 has_ban "$1"
        vg_poll 10 vg_journal_has "MESSAGE_ID=$BAN_MESSAGE_ID" "VPOPGUARD_ADDRESS=$1"
}

assert_banned_exactly() { # ADDRESS...
        printf '%s\n' "$@" | LC_ALL=C sort >"$tmp/want-banned"
        banned_elements >"$tmp/banned"
        vg_assert_files_eq "$tmp/want-banned" "$tmp/banned" "banned addresses"
}

# The table as the daemon creates it, elements left out (nft -t), compared with a golden dump.
cat >"$tmp/golden-table" <<'EOF'
table inet vpopguard {
	set banned4 {
		type ipv4_addr
		flags timeout
	}

	set banned6 {
		type ipv6_addr
		flags timeout
	}

	chain input {
		type filter hook input priority filter - 10; policy accept;
		ip saddr @banned4 drop
		ip6 saddr @banned6 drop
	}
}
EOF
assert_table_complete() { # WHAT
        nft -t list table inet vpopguard >"$tmp/table" 2>&1 || vg_fail "$1: no table inet vpopguard"
        vg_assert_files_eq "$tmp/golden-table" "$tmp/table" "$1: table inet vpopguard"
}

table_handles() { # the handles of the table, its sets and chain: new ones if it was recreated
        nft -a -j list table inet vpopguard |
                jq -r '.nftables[] | (.table // .set // .chain // empty) | "\(.name)=\(.handle)"' | LC_ALL=C sort
}

ban_field() { # ADDRESS FIELD: the field of the (last) ban event of ADDRESS
        journalctl -q --no-pager -o export "MESSAGE_ID=$BAN_MESSAGE_ID" "VPOPGUARD_ADDRESS=$1" |
                sed -n "s/^$2=//p" | tail -n 1
}

# Every ADDRESS is in the kernel for no longer than what is left of its ban: 0 < expires <=
# BanTime, and <= the time until VPOPGUARD_EXPIRES_USEC of its event (plus the second that
# libnftables rounds up). A ban put back with a fresh BanTime fails the second bound once a few
# seconds have passed since the ban (see ban_age_at_least).
assert_remaining_timeouts() { # WHAT ADDRESS...
        local what=$1 a now expires_usec expires
        # Fields of an export entry come in no particular order (journald sorts them by where
        # their data is stored), so each entry is read up to the blank line that ends it.
        local -A ends=() left=()
        shift
        vg_journal_sync
        while read -r a expires_usec; do
                ends[$a]=$expires_usec
        done < <(journalctl -q --no-pager -o export "MESSAGE_ID=$BAN_MESSAGE_ID" |
                awk '/^VPOPGUARD_ADDRESS=/ { a = substr($0, 19) } /^VPOPGUARD_EXPIRES_USEC=/ { e = substr($0, 24) }
                     /^$/ { print a, e; a = e = "" } END { if (a != "") print a, e }')
        now=${EPOCHREALTIME/[.,]/}
        while read -r a expires; do
                left[$a]=$expires
        done < <(nft -j list table inet vpopguard |
                jq -r '.nftables[] | .set.elem? // [] | .[] | .elem? // {val: .} | "\(.val) \(.expires // "none")"')
        for a in "$@"; do
                expires_usec=${ends[$a]:-}
                expires=${left[$a]:-}
                [[ -n $expires_usec ]] || vg_fail "$what: no ban event of $a"
                [[ $expires =~ ^[0-9]+$ ]] || vg_fail "$what: $a is not in the sets with a timeout: '$expires'"
                ((expires > 0 && expires <= BAN_SEC)) || vg_fail "$what: $a expires in ${expires}s, BanTime is ${BAN_SEC}s"
                ((expires * 1000000 <= 10#$expires_usec - 10#$now + 1000000)) ||
                        vg_fail "$what: $a expires in ${expires}s, but its ban ends in $(((10#$expires_usec - 10#$now) / 1000000))s"
        done
}

ban_age_at_least() { # SECONDS ADDRESS...: every ban is older than SECONDS
        local min=$1 a banned now=${EPOCHREALTIME/[.,]/}
        shift
        for a in "$@"; do
                banned=$(ban_field "$a" VPOPGUARD_BANNED_USEC)
                [[ -n $banned ]] || vg_fail "no ban event of $a"
                ((10#$now - 10#$banned >= min * 1000000)) || return 1
        done
}

# --- Bans to keep: three IPv4 addresses and one IPv6 address.
old=(198.51.100.1 198.51.100.2 2001:db8::1 203.0.113.3)
start_daemon
assert_table_complete "first start"
for a in "${old[@]}"; do ban "${a//:/_}"; done
for a in "${old[@]}"; do wait_for_ban "$a"; done
mapfile -t old < <(printf '%s\n' "${old[@]}" | LC_ALL=C sort)
assert_banned_exactly "${old[@]}"
handles=$(table_handles)

# --- 5. SIGTERM leaves the table and its elements alone, and the next start keeps them too.
vg_term_daemon
assert_banned_exactly "${old[@]}"
vg_assert_eq "$handles" "$(table_handles)" "table, set and chain handles after SIGTERM"
start_daemon
assert_banned_exactly "${old[@]}"
vg_assert_eq "$handles" "$(table_handles)" "table, set and chain handles after a restart"
assert_table_complete "restart" # in particular, the rules are not doubled

# Let the bans age, so that one put back with a new BanTime shows.
vg_poll 10 ban_age_at_least 3 "${old[@]}"

# --- 1. SIGTERM, nft flush ruleset, start: everything is back, with the time that was left.
vg_term_daemon
nft flush ruleset
nft list table inet vpopguard >/dev/null 2>&1 && vg_fail "nft flush ruleset left the table"
start_daemon
assert_table_complete "start after SIGTERM and nft flush ruleset"
assert_banned_exactly "${old[@]}"
assert_remaining_timeouts "start after SIGTERM and nft flush ruleset" "${old[@]}"

# --- 2. The same after SIGKILL.
vg_kill9_daemon
nft flush ruleset
start_daemon
assert_table_complete "start after SIGKILL and nft flush ruleset"
assert_banned_exactly "${old[@]}"
assert_remaining_timeouts "start after SIGKILL and nft flush ruleset" "${old[@]}"

# --- 3. The table deleted under the running daemon comes back at the next ban, old bans included.
nft delete table inet vpopguard
new=198.51.100.77
ban "$new"
wait_for_ban "$new"
vg_pid_alive "$VG_DAEMON_PID" || vg_fail "vpopguardd exited after the table was deleted: $(cat "$VG_DAEMON_LOG")"
assert_table_complete "after nft delete table and a new ban"
assert_banned_exactly "${old[@]}" "$new"
assert_remaining_timeouts "after nft delete table and a new ban" "${old[@]}" "$new"
vg_journal_sync
vg_assert_eq 1 "$(journalctl -q --no-pager -o export "MESSAGE_ID=$BAN_MESSAGE_ID" "VPOPGUARD_ADDRESS=$new" | grep -c '^__CURSOR=')" \
        "ban events of $new"
vg_term_daemon

# --- 4. CreateTable=no: the administrator owns the table.
nft flush ruleset
conf_no=$tmp/no-create.conf
mkdir -p "$conf_no.d"
cp "$conf.d/10-vpopmail.conf" "$conf_no.d/"
printf '[Defaults]\nMaxRetry=3\nBanTime=%ss\nIPv6Prefix=128\n[Firewall]\nCreateTable=no\n' "$BAN_SEC" >"$conf_no"

# No table at all: refused, naming the table, and nothing is created. (The saved bans stay in
# the state directory for the start below.)
run_daemon_expecting_failure "$conf_no" "$tmp/no-table.log"
grep -q 'inet vpopguard.* does not exist' "$tmp/no-table.log" ||
        vg_fail "the error does not name what is missing: $(cat "$tmp/no-table.log")"
nft list table inet vpopguard >/dev/null 2>&1 && vg_fail "CreateTable=no created the table"

# The table without the IPv6 set: refused, naming the missing set.
nft add table inet vpopguard
nft add set inet vpopguard banned4 '{ type ipv4_addr; flags timeout; }'
run_daemon_expecting_failure "$conf_no" "$tmp/no-set.log"
grep -q 'inet vpopguard banned6 does not exist' "$tmp/no-set.log" ||
        vg_fail "the error does not name the missing set banned6: $(cat "$tmp/no-set.log")"

# A set without timeouts cannot hold bans: refused, naming the set and the flag.
nft add set inet vpopguard banned6 '{ type ipv6_addr; }'
run_daemon_expecting_failure "$conf_no" "$tmp/no-timeout.log"
grep -q 'banned6.*timeout' "$tmp/no-timeout.log" ||
        vg_fail "the error does not name the set without timeouts: $(cat "$tmp/no-timeout.log")"

# Both sets made by hand: the daemon starts, puts the saved bans back into them, bans into them
# and adds no chain or rule.
nft delete set inet vpopguard banned6
nft add set inet vpopguard banned6 '{ type ipv6_addr; flags timeout; }'
nft -t list table inet vpopguard >"$tmp/hand-made"
start_daemon "$conf_no"
assert_banned_exactly "${old[@]}" "$new"
assert_remaining_timeouts "CreateTable=no, saved bans" "${old[@]}" "$new"
ban 203.0.113.9
ban 2001_db8__9
wait_for_ban 203.0.113.9
wait_for_ban 2001:db8::9
assert_banned_exactly "${old[@]}" "$new" 2001:db8::9 203.0.113.9
assert_remaining_timeouts "CreateTable=no, new bans" 203.0.113.9 2001:db8::9
nft -t list table inet vpopguard >"$tmp/hand-made-after"
vg_assert_files_eq "$tmp/hand-made" "$tmp/hand-made-after" "the hand-made table after bans with CreateTable=no"
vg_term_daemon
