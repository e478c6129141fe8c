#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The saved state never runs ahead of the ban events in the journal, whatever path a change takes:
# 1. Bans are decided while journald is stopped (their events wait in the daemon's queue), then
#    an admin bans by hand and the daemon is killed. After a restart, every attacker's ban event
#    is in the journal exactly once: the manual ban did not save a cursor past events that never
#    reached journald.
# 2. A dry run's ban events never stand in for a real ban: a real run after a dry run on the same
#    journal logs its own ban events.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin events-state "$@"
vg_require_commands nft jq logger journalctl
conf=$tmp/vpopguard.conf
T=30

vg_vpopmail_config "$conf" MaxRetry=3 FindTime=1h BanTime=1h
vg_start_journald

# Real ban events (not a dry run's) naming ADDRESS.
real_ban_events() { # ADDRESS
        journalctl -q --no-pager -o export "MESSAGE_ID=$VG_MESSAGE_BAN" "VPOPGUARD_ADDRESS=$1" |
                awk '/^VPOPGUARD_DRY_RUN=1$/ { dry = 1 } /^$/ { if (!dry) n++; dry = 0 } END { print n + 0 }'
}

all_have_events() { # ADDRESS...: each has a real ban event
        local a
        for a in "$@"; do
                (($(real_ban_events "$a") >= 1)) || return 1
        done
}

n_banned() {
        { vg_nft_set_elements banned4; vg_nft_set_elements banned6; } | wc -l
}

at_least_banned() { # N
        (($(n_banned) >= $1))
}

# journald has read everything sent to its native socket before this (the socket is in order).
journald_caught_up() {
        local marker=caught-up-$RANDOM$RANDOM
        printf 'MESSAGE=%s\n' "$marker" | logger --journald || vg_fail "logger --journald failed"
        vg_poll $T vg_journal_has "MESSAGE=$marker"
}

# --- 1. A manual ban while journald holds back the events of earlier bans.
attackers=()
for i in $(seq 1 40); do
        attackers+=("192.0.2.$i")
done
for a in "${attackers[@]}"; do
        vg_log_failures "$a"
done
vg_journal_sync

# journald stops reading: its socket takes a few events, the rest wait in the daemon's queue.
kill -STOP "$VG_JOURNALD_PID"
state=$tmp/state-1
vg_start_daemon "$tmp/daemon-1.log" "$daemon" --config="$conf" --state-directory="$state"
vg_poll $T at_least_banned 40
"$ctl" ban 203.0.113.9 >"$tmp/ban.out" 2>&1 || vg_fail "manual ban failed: $(cat "$tmp/ban.out")"
# The state may record those bans only once their events are in journald's socket, and that
# cannot be while journald is stopped.
[[ ! -e $state/state ]] || vg_fail "the state was saved while ban events were still queued: $(head -n 3 "$state/state")"
vg_kill9_daemon

kill -CONT "$VG_JOURNALD_PID"
journald_caught_up
vg_start_daemon "$tmp/daemon-2.log" "$daemon" --config="$conf" --state-directory="$state"
vg_poll $T all_have_events "${attackers[@]}"
vg_term_daemon
vg_journal_sync
for a in "${attackers[@]}"; do
        vg_assert_eq 1 "$(real_ban_events "$a")" "ban events of $a after the crash and the restart"
done

# --- 2. A dry run, then the real thing, on a journal nobody has read yet.
nft flush ruleset
dry=(198.51.100.1 198.51.100.2 198.51.100.3)
for a in "${dry[@]}"; do
        vg_log_failures "$a"
done
vg_journal_sync
state=$tmp/state-2
vg_timeout $T "$daemon" --config="$conf" --state-directory="$state" --dry-run --no-follow >"$tmp/dry.log" 2>&1 ||
        vg_fail "dry run failed: $(tail -n 5 "$tmp/dry.log")"
vg_journal_sync
for a in "${dry[@]}"; do
        vg_journal_has "MESSAGE_ID=$VG_MESSAGE_BAN" "VPOPGUARD_ADDRESS=$a" VPOPGUARD_DRY_RUN=1 ||
                vg_fail "the dry run logged no ban event for $a: $(tail -n 5 "$tmp/dry.log")"
        vg_assert_eq 0 "$(real_ban_events "$a")" "real ban events of $a after the dry run"
done
vg_timeout $T "$daemon" --config="$conf" --state-directory="$state" --no-follow >"$tmp/real.log" 2>&1 ||
        vg_fail "real run failed: $(tail -n 5 "$tmp/real.log")"
vg_journal_sync
for a in "${dry[@]}"; do
        vg_nft_set_has banned4 "$a" || vg_fail "$a not banned by the real run"
        vg_assert_eq 1 "$(real_ban_events "$a")" "real ban events of $a after the real run"
done
vg_log "PASS"
