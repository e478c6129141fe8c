#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Repeat offenders (BanTime=2s, BanTimeFactor=3): an address's second ban lasts 6s, also after
# the daemon was SIGKILLed and restarted in between (the history is in the state file), and its
# third ban, decided by another jail, lasts 18s (the history is per address across jails). Each
# ban event carries VPOPGUARD_BAN_COUNT= and the computed VPOPGUARD_BAN_USEC=; the element's
# timeout in the kernel is that length, less at most the seconds measured around the ban. An
# unban by hand pardons: the next ban is a first one again.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin escalation "$@"
vg_require_commands nft jq logger journalctl
state=$tmp/state
conf=$tmp/vpopguard.conf
sock=$tmp/io.vpopguard.Manager
EXPIRE_REASON=expired
T=30

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=10min BanTime=2s BanTimeFactor=3 BanTimeMax=1h BanHistory=1h
cat >"$conf.d/20-other.conf" <<'EOC'
[Jail]
Name=other
JournalMatch=SYSLOG_IDENTIFIER=othermail
FailRegex=^auth fail from <HOST>$
EOC
vg_start_journald

start_daemon() {
        vg_start_daemon_n "$daemon" --config="$conf" --state-directory="$state" --socket="$sock"
}

now_usec() { echo "${EPOCHREALTIME/[.,]/}"; }

# ADDRESS's timeout in banned4 as nft reports it (whole seconds).
element_timeout() { vg_nft_element_timeout banned4 "$1"; }
in_set() { [[ $(element_timeout "$1") != absent ]]; }
not_in_set() { vg_daemon_ok; ! in_set "$1"; }

# FIELD of the ban event number N (VPOPGUARD_BAN_COUNT=N) of ADDRESS.
ban_field() { # ADDRESS N FIELD
        journalctl -q --no-pager -o json "MESSAGE_ID=$VG_MESSAGE_BAN" "VPOPGUARD_ADDRESS=$1" "VPOPGUARD_BAN_COUNT=$2" |
                jq -r --arg f "$3" '.[$f]' | tail -n 1
}
has_ban_event() { vg_journal_has "MESSAGE_ID=$VG_MESSAGE_BAN" "VPOPGUARD_ADDRESS=$1" "VPOPGUARD_BAN_COUNT=$2"; }

# ban JAIL ADDRESS N SECONDS: three failures in JAIL make ban number N of ADDRESS, SECONDS long:
# its event says so, and its element's timeout is SECONDS less at most the whole seconds that
# passed between the first failure and seeing the element (never more than SECONDS).
ban() {
        local jail=$1 a=$2 n=$3 sec=$4 t0 t1 k timeout bound
        t0=$(now_usec)
        for k in 1 2 3; do
                if [[ $jail == vpopmail ]]; then
                        vg_log_vpopmail "vchkpw-pop3: password fail u$k@example.com:$a"
                else
                        logger --socket-errors=on -t othermail -- "auth fail from $a" || vg_fail "logger failed"
                fi
        done
        vg_poll "$T" in_set "$a"
        timeout=$(element_timeout "$a")
        t1=$(now_usec)
        bound=$(((10#$t1 - 10#$t0 + 999999) / 1000000))
        [[ $timeout =~ ^[0-9]+$ ]] || vg_fail "ban $n of $a: element timeout '$timeout'"
        ((timeout <= sec && timeout >= sec - bound)) ||
                vg_fail "ban $n of $a: element timeout ${timeout}s, expected ${sec}s (at most ${bound}s less)"
        vg_poll 10 has_ban_event "$a" "$n"
        vg_assert_eq "$((sec * 1000000))" "$(ban_field "$a" "$n" VPOPGUARD_BAN_USEC)" "VPOPGUARD_BAN_USEC of ban $n of $a"
        vg_assert_eq "$jail" "$(ban_field "$a" "$n" VPOPGUARD_JAIL)" "jail of ban $n of $a"
}

addr=192.0.2.60
start_daemon

# --- First ban: BanTime.
ban vpopmail "$addr" 1 2
vg_poll "$T" not_in_set "$addr"

# --- The history reaches the state file; SIGKILL; restart.
history_saved() { grep -qx "history $addr 1 [0-9]*" "$state/state" 2>/dev/null; }
vg_poll "$T" history_saved
vg_kill9_daemon
start_daemon

# --- Second ban: BanTime × 3.
ban vpopmail "$addr" 2 6
vg_poll "$T" not_in_set "$addr"

# --- Third ban, by the other jail: BanTime × 9. vpopguardctl bans shows its number and length.
ban other "$addr" 3 18
"$ctl" --socket="$sock" --json bans | jq -r --arg a "$addr" '.bans[] | select(.address == $a) | "\(.count) \(.permanent)"' >"$tmp/json"
vg_assert_eq "3 false" "$(cat "$tmp/json")" "ListBans count and permanent of $addr"
"$ctl" --socket="$sock" bans >"$tmp/bans"
grep -Eq "^${addr//./\\.} +other +3 +3 +18s .* journal *\$" "$tmp/bans" ||
        vg_fail "vpopguardctl bans does not show ban 3 of $addr, 18s long: $(cat "$tmp/bans")"

# --- Unban by hand: the next ban is a first one.
"$ctl" --socket="$sock" unban "$addr" >/dev/null || vg_fail "unban $addr failed"
vg_poll "$T" not_in_set "$addr"
ban vpopmail "$addr" 1 2

# Another address is not affected by any of this.
ban other 192.0.2.61 1 2
vg_term_daemon
