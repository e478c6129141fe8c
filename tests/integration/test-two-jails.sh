#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# One journal entry, two jails: the shipped vpopmail jail (MaxRetry=3, BanTime=1h) and a jail
# "strict" of our own whose JournalMatch= and FailRegex= accept the same "password fail" lines
# (MaxRetry=2, BanTime=2h, and it ignores 192.0.2.20). Asserts what an admin would check:
#   - each entry counts once in each jail: GetStatus failuresTotal per jail (and banned, the
#     active bans of each) and vpopguardctl
#     failures (one window per jail), while entriesMatched counts the entry once;
#   - each jail bans by its own MaxRetry= and BanTime=: strict bans 192.0.2.10 at its 2nd
#     failure, vpopmail bans 192.0.2.20 (which strict ignores) at its 3rd and not before;
#   - both bans are in the one shared set banned4, each with its jail's BanTime as timeout.
# The jails judge an entry in the order they are configured (vpopmail's file sorts first), so
# vpopmail counts 192.0.2.10's 2nd failure before strict bans it.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin two-jails "$@"
vg_require_commands nft jq journalctl
conf=$tmp/vpopguard.conf
sock=$tmp/io.vpopguard.Manager
log=$tmp/daemon.log
BAN_ID=7fc6f43d6e5d457ba31097a4cc519474
T=30 # deadline of each wait, in seconds

vg_vpopmail_config "$conf" MaxRetry=3 BanTime=1h
cat >"$conf.d/20-strict.conf" <<'EOF'
[Jail]
Name=strict
JournalMatch=SYSLOG_IDENTIFIER=vpopmail
FailRegex=^vchkpw-[a-z0-9]+: password fail [^ ]*:<HOST>$
MaxRetry=2
BanTime=2h
IgnoreAddress=192.0.2.20
EOF
"$daemon" --config="$conf" --test-config >"$tmp/effective.conf" 2>&1 ||
        vg_fail "configuration refused: $(cat "$tmp/effective.conf")"

vg_start_journald
vg_start_daemon "$log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock"

ctl() { # ARGS...: vpopguardctl's stdout
        vg_daemon_ok
        "$ctl" --socket="$sock" "$@" || vg_fail "vpopguardctl $* failed"
}
windows() { # ADDRESS: "JAIL COUNT" of each of its failure windows
        ctl --json failures "$1" | jq -r '.failures[] | "\(.jail) \(.count)"' | LC_ALL=C sort
}
windows_are() { # ADDRESS EXPECTED
        [[ $(windows "$1") == "$2" ]]
}
status() { # the counters: "entriesRead entriesMatched" then "JAIL failuresTotal bansTotal banned" per jail
        ctl --json status | jq -r '"\(.entriesRead) \(.entriesMatched)", (.jails[] | "\(.name) \(.failuresTotal) \(.bansTotal) \(.banned)")'
}
ban_event() { # ADDRESS FIELD: FIELD of its ban event
        journalctl -q --no-pager -o export "MESSAGE_ID=$BAN_ID" "VPOPGUARD_ADDRESS=$1" | sed -n "s/^$2=//p"
}
timeout_of() { # ADDRESS: the timeout of its element in banned4, in seconds
        nft -j list set inet vpopguard banned4 |
                jq -r --arg a "$1" '.nftables[] | select(.set) | .set.elem // [] | .[]
                        | select(type == "object" and .elem.val == $a) | .elem.timeout'
}

# --- One failure of 192.0.2.10: one window in each jail.
vg_log_failures 192.0.2.10 1
vg_poll "$T" windows_are 192.0.2.10 "$(printf '%s\n' 'strict 1' 'vpopmail 1')"
vg_assert_eq "1 1
vpopmail 1 0 0
strict 1 0 0" "$(status)" "counters after one entry"
ctl failures 192.0.2.10 >"$tmp/failures.txt"
grep -qE '^192\.0\.2\.10 +vpopmail +1 ' "$tmp/failures.txt" || vg_fail "failures table, vpopmail: $(cat "$tmp/failures.txt")"
grep -qE '^192\.0\.2\.10 +strict +1 ' "$tmp/failures.txt" || vg_fail "failures table, strict: $(cat "$tmp/failures.txt")"

# --- Its second: strict (MaxRetry=2) bans it, for 2h; vpopmail counted it too.
vg_log_failures 192.0.2.10 1
vg_poll "$T" vg_banned banned4 192.0.2.10
vg_poll "$T" vg_journal_has "MESSAGE_ID=$BAN_ID" VPOPGUARD_ADDRESS=192.0.2.10
vg_assert_eq "strict 2 7200000000" \
        "$(ban_event 192.0.2.10 VPOPGUARD_JAIL) $(ban_event 192.0.2.10 VPOPGUARD_FAILURES) $(ban_event 192.0.2.10 VPOPGUARD_BAN_USEC)" \
        "ban event of 192.0.2.10 (jail failures duration)"
vg_assert_eq "2 2
vpopmail 2 0 0
strict 2 1 1" "$(status)" "counters after the strict ban"

# --- 192.0.2.20, which strict ignores: vpopmail alone counts it, and bans at 3, not at 2.
vg_log_failures 192.0.2.20 2
vg_poll "$T" windows_are 192.0.2.20 "vpopmail 2"
if vg_banned banned4 192.0.2.20; then
        vg_fail "192.0.2.20 banned after 2 failures"
fi
[[ -z $(ctl --json bans | jq -r '.bans[] | select(.address == "192.0.2.20")') ]] ||
        vg_fail "192.0.2.20 in ListBans after 2 failures"
vg_log_failures 192.0.2.20 1
vg_poll "$T" vg_banned banned4 192.0.2.20
vg_poll "$T" vg_journal_has "MESSAGE_ID=$BAN_ID" VPOPGUARD_ADDRESS=192.0.2.20
vg_assert_eq "vpopmail 3 3600000000" \
        "$(ban_event 192.0.2.20 VPOPGUARD_JAIL) $(ban_event 192.0.2.20 VPOPGUARD_FAILURES) $(ban_event 192.0.2.20 VPOPGUARD_BAN_USEC)" \
        "ban event of 192.0.2.20 (jail failures duration)"
vg_assert_eq "5 5
vpopmail 5 1 1
strict 2 1 1" "$(status)" "counters at the end"

# --- One shared set, each element with its jail's BanTime.
vg_assert_eq "$(printf '%s\n' 192.0.2.10 192.0.2.20)" "$(vg_nft_set_elements banned4)" "banned4"
vg_assert_eq "192.0.2.10 strict
192.0.2.20 vpopmail" "$(ctl --json bans | jq -r '.bans[] | "\(.address) \(.jail)"' | LC_ALL=C sort)" "ListBans"
t=$(timeout_of 192.0.2.10)
((t > 3600 && t <= 7200)) || vg_fail "timeout of 192.0.2.10 is ${t}s, not strict's BanTime=2h"
t=$(timeout_of 192.0.2.20)
((t > 0 && t <= 3600)) || vg_fail "timeout of 192.0.2.20 is ${t}s, not vpopmail's BanTime=1h"

vg_term_daemon
vg_log "all checks passed"
