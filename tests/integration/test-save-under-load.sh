#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The state file is written in the background (a child process of the daemon) while banning
# goes on. With 100 000 saved bans, so that each save takes a while, 300 new addresses are
# banned in 6 batches, each logged while a save is under way. Asserts what an admin would check:
#   - the state file comes to hold every ban, and its cursor is not behind the last failure
#     (journalctl finds no failure after it);
#   - 300 more in the same way, the daemon killed with SIGKILL during a save after half of
#     them, the rest logged while it is down, the kernel's sets flushed (as by a reboot), and the
#     daemon started again: the sets hold exactly the saved bans and all 600 new ones (what the
#     killed daemon had not saved it reads again and bans again: nothing is lost).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin save-under-load "$@"
vg_require_commands nft python3 logger journalctl awk
conf=$tmp/vpopguard.conf
state=$tmp/state
N=100000

vg_vpopmail_config "$conf" MaxRetry=1 FindTime=1h BanTime=1d

# Saved bans of IPv6 addresses, in the format the daemon writes (state-file-internal.h).
mkdir -p "$state"
python3 - "$state/state" "$N" "$tmp/expect6" <<'EOF'
import ipaddress, sys, time
path, n, expect6 = sys.argv[1], int(sys.argv[2]), sys.argv[3]
now = time.time_ns() // 1000
v6 = [str(ipaddress.ip_address(int(ipaddress.ip_address("2001:db8:100::")) + i)) for i in range(n)]
text = "vpopguard-state 3\n" + "".join(
    "ban vpopmail %s 3 %d %d journal 1\n" % (a, now, now + 86400 * 10**6) for a in v6)
h = 0xcbf29ce484222325
for b in text.encode():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
open(path, "w").write(text + "end %d %016x\n" % (n, h))
open(expect6, "w").write("".join(a + "\n" for a in v6))
EOF
LC_ALL=C sort -o "$tmp/expect6" "$tmp/expect6"

addresses() { # ROUND: the 300 IPv4 addresses banned in round ROUND (1 or 2)
        local i
        for ((i = 0; i < 300; i++)); do echo "100.$((63 + $1)).$((i / 250)).$((i % 250 + 1))"; done
}
addresses 1 >"$tmp/round1"
addresses 2 >"$tmp/round2"
LC_ALL=C sort "$tmp/round1" "$tmp/round2" >"$tmp/expect4"

# One failure per address, as vchkpw logs them; lines FROM..TO of FILE (1-based), one logger
# process.
attack() { # FILE FROM TO
        sed -n "$2,$3p" "$1" | sed 's/^/vchkpw-pop3: password fail joe@example.com:/' |
                logger --socket-errors=on --id -p mail.notice -t vpopmail || vg_fail "logger failed"
}
# A save is under way: the daemon has a child process (read without starting one).
save_running() {
        local children
        children=$(<"/proc/$VG_DAEMON_PID/task/$VG_DAEMON_PID/children") 2>/dev/null || return 1
        [[ -n $children ]]
}
state_inode() {
        stat -c %i "$state/state"
}
# Waits until a save is under way, or has ended since the state file had inode INODE (a fast one
# may be missed in between two looks). A save lasts a fraction of a second, shorter than
# vg_poll's longer pauses: this looks every 10 ms.
wait_for_save() { # INODE
        local end=$(($(vg__now_ms) + 30000 * VG_TIMEOUT_FACTOR))
        until save_running || [[ $(state_inode) != "$1" ]]; do
                vg_daemon_ok
                (($(vg__now_ms) < end)) || vg_fail "timed out waiting for a save of the state"
                sleep 0.01
        done
}
# Batch K of FILE (50 lines) as soon as the save that batch K-1 made due runs.
overlaps=0
attack_during_save() { # FILE K INODE
        wait_for_save "$3"
        ! save_running || ((++overlaps))
        attack "$1" $(($2 * 50 - 49)) $(($2 * 50))
}
# Batches 1-K of FILE: each but the first while a save runs, most likely.
attack_in_batches() { # FILE K
        local inode k
        inode=$(state_inode)
        attack "$1" 1 50
        for ((k = 2; k <= $2; k++)); do
                attack_during_save "$1" "$k" "$inode"
                inode=$(state_inode)
        done
}

banned4_count() {
        vg__nft_set_elements banned4 | wc -l
}
banned4_at_least() { # N
        vg_daemon_ok
        (($(banned4_count) >= $1))
}
# The saved bans of the addresses in FILE.
saved_of() { # FILE
        awk 'NR == FNR { want[$1] = 1; next } $1 == "ban" && ($3 in want) { print $3 }' "$1" "$state/state" | LC_ALL=C sort
}
state_holds() { # FILE
        vg_daemon_ok
        [[ $(saved_of "$1" | wc -l) -eq $(wc -l <"$1") ]]
}

vg_start_journald
nft flush ruleset
vg_start_daemon_n "$daemon" --config="$conf" --state-directory="$state"

attack_in_batches "$tmp/round1" 6
vg_poll 60 banned4_at_least 300
vg_poll 120 state_holds "$tmp/round1"
LC_ALL=C sort "$tmp/round1" >"$tmp/expect-round1"
saved_of "$tmp/round1" >"$tmp/saved-round1"
vg_assert_files_eq "$tmp/expect-round1" "$tmp/saved-round1" "bans of round 1 in the state file"
cursor=$(awk '$1 == "cursor" { print substr($0, 8) }' "$state/state")
[[ -n $cursor ]] || vg_fail "the state file has no cursor"
after=$(journalctl -q --no-pager -o cat --after-cursor="$cursor" SYSLOG_IDENTIFIER=vpopmail) ||
        vg_fail "journalctl does not take the saved cursor $cursor"
vg_assert_eq "" "$after" "failures after the saved cursor"

# Round 2, killed part way.
attack_in_batches "$tmp/round2" 3
wait_for_save "$(state_inode)"
vg_kill9_daemon
attack "$tmp/round2" 151 300
nft flush ruleset
vg_start_daemon_n "$daemon" --config="$conf" --state-directory="$state"
vg_poll 120 banned4_at_least 600
vg_nft_set_elements banned4 >"$tmp/set4"
vg_assert_files_eq "$tmp/expect4" "$tmp/set4" "banned4 after SIGKILL and a restart"
vg_nft_set_elements banned6 >"$tmp/set6"
vg_assert_files_eq "$tmp/expect6" "$tmp/set6" "banned6 after SIGKILL and a restart"

vg_log "$overlaps of 7 batches were logged while a save ran"
vg_term_daemon
saved_of "$tmp/expect4" >"$tmp/saved-all"
vg_assert_files_eq "$tmp/expect4" "$tmp/saved-all" "bans of both rounds in the state file after SIGTERM"
vg_assert_eq "" "$(find "$state" -name '.#state.*')" "temporary files left in the state directory"
vg_log "all checks passed"
