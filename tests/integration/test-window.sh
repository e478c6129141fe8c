#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Failures are counted by the journal entries' own timestamps, not by when the daemon reads them:
# journal files are made from export format with __REALTIME_TIMESTAMP= under our control and read
# with --journal-directory= --no-follow, so every entry has been judged when the daemon exits
# (no sentinel needed for the negative cases). FindTime=1min for every jail; the "strict" jail
# takes MaxRetry=5 from its own drop-in. Then: --dry-run touches neither nftables nor the state,
# and further runs with the same state directory resume at the saved cursor and read nothing twice.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin window "$@"
vg_require_commands nft jq journalctl

# No journald here: hide any journal socket, so that the daemon's ban events cannot reach a
# journal outside this test (they fail quietly; its stderr carries the "Banned ..." lines).
if [[ -d /run/systemd ]]; then
        mount -t tmpfs -o mode=0755 vg-no-journald /run/systemd || vg_fail "cannot hide /run/systemd"
fi

# --- Configuration: the shipped jail with MaxRetry=3, FindTime=1min for all jails, a second jail
# with MaxRetry=5, and a third whose bans last 1 s: once its ban is over, an entry read a second
# time would ban its address again, so a reread becomes visible.
conf=$tmp/vpopguard.conf
vg_vpopmail_config "$conf" MaxRetry=3
printf '[Defaults]\nFindTime=1min\n' >"$conf.d/50-window.conf"
printf '[Jail]\nName=strict\nJournalMatch=SYSLOG_IDENTIFIER=strictd\nTrustedUID=0\nMaxRetry=5\nFailRegex=^auth failure from <HOST>$\n' \
        >"$conf.d/60-strict.conf"
printf '[Jail]\nName=short\nJournalMatch=SYSLOG_IDENTIFIER=shortd\nTrustedUID=0\nBanTime=1s\nFailRegex=^auth failure from <HOST>$\n' \
        >"$conf.d/70-short.conf"
"$daemon" --config="$conf" --test-config >"$tmp/effective.conf" || vg_fail "the test configuration is invalid"
vg_assert_eq 3 "$(grep -cx 'FindTime=1min' "$tmp/effective.conf")" "jails with FindTime=1min"
vg_assert_eq "$(printf '%s\n' MaxRetry=3 MaxRetry=5 MaxRetry=3)" "$(grep '^MaxRetry=' "$tmp/effective.conf")" "MaxRetry of the jails"

# --- The journal. Each line of the plan: OFFSET_USEC IDENTIFIER ADDRESS, offsets relative to now
# (the moment the journal is written). At first start the daemon reads from (its) now - FindTime:
# entries at -30 s or later are read if it starts less than 30 s after "now"; entries at -65 s or
# earlier never are.
s=1000000
boot=5a0b1f0c7e6d4c3b9a8f7e6d5c4b3a29
plan=$tmp/plan
{
        # Not read at first start (older than now - FindTime), though 3 failures within 20 s.
        printf '%s vpopmail 192.0.2.10\n' $((-200 * s)) $((-190 * s)) $((-180 * s))
        # Two failures before the start window and one inside: 3 within 55 s, but only 1 is read.
        printf '%s vpopmail 192.0.2.11\n' $((-70 * s)) $((-65 * s)) $((-15 * s))
        # 3 failures within 10 s: banned.
        printf '%s vpopmail 192.0.2.1\n' $((-25 * s)) $((-20 * s)) $((-15 * s))
        # 3 failures spanning 65 s > FindTime: the first has left the window at the third.
        printf '%s vpopmail 192.0.2.2\n' $((-30 * s)) $((5 * s)) $((35 * s))
        # Exactly FindTime apart: at t + 60 s the failure at t no longer counts.
        printf '%s vpopmail 192.0.2.3\n' $((-25 * s)) $((5 * s)) $((35 * s))
        # One microsecond less: all three count.
        printf '%s vpopmail 192.0.2.4\n' $((-24 * s)) $((6 * s)) $((36 * s - 1))
        # 4 failures, only the last 2 within FindTime of each other.
        printf '%s vpopmail 192.0.2.5\n' $((-30 * s)) $((-27 * s)) $((35 * s)) $((40 * s))
        # Timestamps in the future are just timestamps; IPv6 as vpopmail prints it.
        printf '%s vpopmail 2001_db8__a2\n' $((100 * s)) $((105 * s)) $((110 * s))
        # The strict jail: 4 failures within 15 s are not enough, 5 are.
        printf '%s strictd 198.51.100.4\n' $((-20 * s)) $((-15 * s)) $((-10 * s)) $((-5 * s))
        printf '%s strictd 198.51.100.5\n' $((-20 * s)) $((-15 * s)) $((-10 * s)) $((-5 * s)) 0
        # The short jail: banned for 1 s.
        printf '%s shortd 203.0.113.7\n' $((-20 * s)) $((-15 * s)) $((-10 * s))
        # Two failures left open at the end of the first file; a second file adds the third.
        printf '%s vpopmail 192.0.2.20\n' $((150 * s)) $((160 * s))
        # Not ours: the cursor must stay on the last entry that matched the filter.
        printf '%s sshd -\n' $((170 * s))
} | sort -n -k1,1 >"$plan"

to_export() { # reads a plan, writes export format
        local off ident addr t message
        while read -r off ident addr; do
                t=$((now + off))
                case $ident in
                vpopmail) message="vchkpw-pop3: password fail joe@example.com:$addr" ;;
                strictd | shortd) message="auth failure from $addr" ;;
                *) message="Accepted publickey for joe from 192.0.2.99" ;;
                esac
                printf '__REALTIME_TIMESTAMP=%s\n__MONOTONIC_TIMESTAMP=%s\n_BOOT_ID=%s\n_UID=0\nSYSLOG_IDENTIFIER=%s\nMESSAGE=%s\n\n' \
                        "$t" "$((t - 1500000000000000))" "$boot" "$ident" "$message"
        done
}
journal=$(vg_tmpdir journal)
write_journal() { # the plan, from a new "now", as the only journal file
        now=$(date +%s%6N)
        rm -f "$journal"/a.journal*
        to_export <"$plan" | vg_export_to_journal "$journal/a.journal"
        vg_assert_eq "$(wc -l <"$plan")" "$(journalctl -q --no-pager -D "$journal" -o cat | wc -l)" "entries in the journal file"
}

sorted() {
        printf '%s\n' "$@" | LC_ALL=C sort
}
banned4=(192.0.2.1 192.0.2.4 198.51.100.5)
expected4=$(sorted "${banned4[@]}")
expected6=2001:db8::a2
expected_bans=$(sorted "${banned4[@]}" "$expected6" 203.0.113.7)

banned_on_stderr() { # LOG: the addresses of the "Banned ..." lines, sorted
        sed -n 's/^\(\[dry run\] \)\{0,1\}Banned \([^ ]*\) for .*/\2/p' "$1" | LC_ALL=C sort
}
state_cursor() {
        sed -n 's/^cursor //p' "$state/state"
}
last_matching_cursor() {
        journalctl -q --no-pager -D "$journal" -n 1 -o export SYSLOG_IDENTIFIER=vpopmail \
                SYSLOG_IDENTIFIER=vchkpw SYSLOG_IDENTIFIER=strictd SYSLOG_IDENTIFIER=shortd |
                sed -n 's/^__CURSOR=//p'
}
banned4_but_short() { # banned4 without the 1 s ban, which may be gone already
        vg_nft_set_elements banned4 | grep -vxF 203.0.113.7 || true
}
run_daemon() { # LOG ARGS...: one --no-follow run over the journal directory
        local log=$1
        shift
        "$daemon" --config="$conf" --journal-directory="$journal" --state-directory="$state" \
                --no-follow "$@" >"$log" 2>&1 </dev/null || vg_fail "vpopguardd $* failed: $(cat "$log")"
        ended=$(date +%s%6N)
}
# in_time WHAT: the first start of the last run (no state yet) began less than 30 s after "now",
# as the plan assumes: it ended so. Otherwise the plan is written again from a new "now" (the
# machine was busy; how long it takes is not what this test checks).
in_time() {
        ((ended - now < 30 * s)) && return 0
        vg_log "$1 ended $(((ended - now) / s)) s after the journal's \"now\", too late for the plan: again"
        return 1
}

# --- Dry run: the same decisions, printed, but no nftables table and no state. Then the real run.
state=$tmp/state
for attempt in 1 2 3 4 5 6; do
        ((attempt < 6)) || vg_fail "no first start came within 30 s of writing the journal in 5 attempts"
        rm -rf "$state"
        nft delete table inet vpopguard 2>/dev/null || true
        write_journal
        run_daemon "$tmp/dry-run.log" --dry-run
        in_time "the dry run" || continue
        vg_assert_eq "$expected_bans" "$(banned_on_stderr "$tmp/dry-run.log")" "addresses banned by the dry run"
        grep -qxF '[dry run] Banned 192.0.2.1 for 1h (jail vpopmail): 3 failures within 1min.' "$tmp/dry-run.log" ||
                vg_fail "dry run: no ban line for 192.0.2.1: $(cat "$tmp/dry-run.log")"
        vg_assert_eq "" "$(nft list tables)" "nftables tables after the dry run"
        [[ ! -e $state/state ]] || vg_fail "the dry run wrote a state file"

        run_daemon "$tmp/run1.log"
        in_time "the first real run" && break
done
vg_assert_eq "$expected_bans" "$(banned_on_stderr "$tmp/run1.log")" "addresses banned (stderr)"
vg_assert_eq "$expected4" "$(banned4_but_short)" "banned4"
vg_assert_eq "$expected6" "$(vg_nft_set_elements banned6)" "banned6"
grep -qxF 'Banned 192.0.2.1 for 1h (jail vpopmail): 3 failures within 1min.' "$tmp/run1.log" ||
        vg_fail "no ban line for 192.0.2.1: $(cat "$tmp/run1.log")"
grep -qxF 'Banned 198.51.100.5 for 1h (jail strict): 5 failures within 1min.' "$tmp/run1.log" ||
        vg_fail "no ban line for 198.51.100.5: $(cat "$tmp/run1.log")"
grep -qxF 'Banned 203.0.113.7 for 1s (jail short): 3 failures within 1min.' "$tmp/run1.log" ||
        vg_fail "no ban line for 203.0.113.7: $(cat "$tmp/run1.log")"
[[ -s $state/state ]] || vg_fail "no state file after the first run"
vg_assert_eq "$(last_matching_cursor)" "$(state_cursor)" "saved cursor"
grep -q '^fail vpopmail 192\.0\.2\.20 [0-9]*@[^ ]* [0-9]*@[^ ]*$' "$state/state" ||
        vg_fail "the two open failures of 192.0.2.20 are not in the state: $(cat "$state/state")"
cp "$state/state" "$tmp/state.after-run1"

# Wait until the 1 s ban is over (by the expiry the state file recorded).
short_expires=$(awk '$1 == "ban" && $3 == "203.0.113.7" { print $6 }' "$state/state")
[[ -n $short_expires ]] || vg_fail "no ban of 203.0.113.7 in the state: $(cat "$state/state")"
short_ban_over() {
        (($(date +%s%6N) > short_expires))
}
vg_poll 10 short_ban_over

# --- Again with the same state: nothing new, nothing read twice, the state unchanged.
run_daemon "$tmp/run2.log"
vg_assert_eq "" "$(banned_on_stderr "$tmp/run2.log")" "addresses banned by the second run"
vg_assert_eq "$(sed -n 's/^cursor //p' "$tmp/state.after-run1")" "$(state_cursor)" "cursor after the second run"
vg_assert_eq "$(grep -E '^(ban|fail) ' "$tmp/state.after-run1" | grep -v '^ban short ' | LC_ALL=C sort)" \
        "$(grep -E '^(ban|fail) ' "$state/state" | grep -v '^ban short ' | LC_ALL=C sort)" \
        "bans and open failures after the second run"
vg_assert_eq "$expected4" "$(banned4_but_short)" "banned4 after the second run"

# --- A newer journal file: only its entries are read, and 192.0.2.20's open window was kept.
cat >"$tmp/plan2" <<EOF
$((180 * s)) vpopmail 192.0.2.20
$((181 * s)) vpopmail 192.0.2.21
EOF
to_export <"$tmp/plan2" | vg_export_to_journal "$journal/b.journal"
run_daemon "$tmp/run3.log"
vg_assert_eq 192.0.2.20 "$(banned_on_stderr "$tmp/run3.log")" "addresses banned by the third run"
grep -qxF 'Banned 192.0.2.20 for 1h (jail vpopmail): 3 failures within 1min.' "$tmp/run3.log" ||
        vg_fail "no ban line for 192.0.2.20: $(cat "$tmp/run3.log")"
vg_assert_eq "$(sorted "${banned4[@]}" 192.0.2.20)" "$(banned4_but_short)" "banned4 after the third run"
vg_assert_eq "$(last_matching_cursor)" "$(state_cursor)" "saved cursor after the third run"

vg_log "all checks passed"
