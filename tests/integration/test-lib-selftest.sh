#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shows that lib.sh gives the integration tests what they rely on: a private journald that takes
# entries from logger (syslog socket), from unprivileged users and from the load generator over
# both transports, a journal that survives a journald restart and can be rotated and vacuumed,
# export files that become journal files with our timestamps, and an nftables ruleset that the
# host never sees.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_require_root_or_skip
vg_enter_namespaces "$@"
vg_require_commands nft jq nsenter
loadgen=$(vg_loadgen)
tmp=$(vg_tmpdir selftest)

# --- The helpers themselves fail when they should.
if (vg_poll 0.2 false) 2>/dev/null; then vg_fail "vg_poll did not fail"; fi
if (vg_assert_eq a b "mismatch") 2>/dev/null; then vg_fail "vg_assert_eq did not fail"; fi
bash -euo pipefail -c '. "$1"' _ "$VG_LIB_DIR/lib.sh" || vg_fail "lib.sh cannot be sourced under set -euo pipefail"
vg_spawn "$tmp/sleep.log" sleep 1000
sleeper=$VG_LAST_PID
vg_kill "$sleeper"
if vg_pid_alive "$sleeper"; then vg_fail "vg_kill left $sleeper running"; fi
if (CI=true vg_skip_part "a check") 2>/dev/null; then vg_fail "vg_skip_part passed under CI=true"; fi
(CI='' vg_skip_part "a check") 2>/dev/null || vg_fail "vg_skip_part failed without CI=true"

# --- The daemon helpers, with stand-ins: python3 sends its arguments to NOTIFY_SOCKET.
notify=(/usr/bin/python3 -c 'import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto("\n".join(sys.argv[2:]).encode(), os.environ["NOTIFY_SOCKET"])
time.sleep(float(sys.argv[1]))')
# A READY=1 from another process (here a child) does not make the daemon ready.
vg_spawn_daemon "$tmp/other.log" bash -c '"$@"; exec sleep 1000' _ "${notify[@]}" 0 READY=1
vg_poll 10 grep -q ' READY=1$' "$VG_NOTIFY_LOG"
if vg_daemon_ready; then vg_fail "a child's READY=1 made the daemon ready"; fi
vg_kill9_daemon
# Its own READY=1 does, and its fields are its own.
vg_start_daemon "$tmp/own.log" "${notify[@]}" 1000 READY=1 STATUS=up
vg_assert_eq "$(printf '%s\n' READY=1 STATUS=up)" "$(vg_notify_fields)" "fields of the stand-in daemon"
vg_kill9_daemon
# SIGKILL must be what ends the daemon: one that exited on its own is an error.
if (
        vg_spawn_daemon "$tmp/gone.log" true
        vg_poll 10 vg_pid_exited "$VG_DAEMON_PID"
        vg_kill9_daemon
) 2>/dev/null; then
        vg_fail "vg_kill9_daemon accepted a daemon that had exited on its own"
fi

# --- Private journald: logger as root, over the syslog socket like vchkpw.
vg_start_journald
tag=selftest$RANDOM$RANDOM
vg_log_vpopmail "vchkpw-pop3: password fail $tag@example.com:192.0.2.1"
vg_log_vpopmail_as_uid 1000 "vchkpw-pop3: password fail $tag-user@example.com:192.0.2.2"
vg_journal_sync

export_of() {
        journalctl -q --no-pager -o export SYSLOG_IDENTIFIER=vpopmail "MESSAGE=$1"
}
field_of() { # MESSAGE FIELD: the field's value in the entry with that message
        export_of "$1" | sed -n "s/^$2=//p"
}
vg_assert_eq 0 "$(field_of "vchkpw-pop3: password fail $tag@example.com:192.0.2.1" _UID)" "_UID of root's entry"
vg_assert_eq syslog "$(field_of "vchkpw-pop3: password fail $tag@example.com:192.0.2.1" _TRANSPORT)" "transport"
vg_assert_eq 2 "$(field_of "vchkpw-pop3: password fail $tag@example.com:192.0.2.1" SYSLOG_FACILITY)" "facility"
vg_assert_eq 1000 "$(field_of "vchkpw-pop3: password fail $tag-user@example.com:192.0.2.2" _UID)" "_UID of the user's entry"
vg_poll 5 vg_journal_has SYSLOG_IDENTIFIER=vpopmail _UID=1000

# --- The load generator, live over both transports, sends exactly what --export writes.
opts=(--seed=11 --attackers=5 --failures=1-4 --noise=60 --decoys=4 --successes=3 --benign=6 --ipv6=50)
"$loadgen" --export "${opts[@]}" | sed -n 's/^MESSAGE=//p' >"$tmp/want-messages"
"$loadgen" --export "${opts[@]}" | sed -n 's/^SYSLOG_IDENTIFIER=//p' >"$tmp/want-identifiers"
[[ -s $tmp/want-messages ]] || vg_fail "the load generator wrote nothing"
n_vpopmail=$(grep -cx vpopmail "$tmp/want-identifiers")

for transport in journal syslog; do
        "$loadgen" --live --transport="$transport" "${opts[@]}" &
        pid=$!
        wait "$pid" || vg_fail "loadgen --live --transport=$transport failed"
        vg_journal_sync
        journalctl -q --no-pager -o cat "_PID=$pid" >"$tmp/got-messages"
        vg_assert_files_eq "$tmp/want-messages" "$tmp/got-messages" "messages over $transport"
        journalctl -q --no-pager -o export "_PID=$pid" | sed -n 's/^SYSLOG_IDENTIFIER=//p' >"$tmp/got-identifiers"
        vg_assert_files_eq "$tmp/want-identifiers" "$tmp/got-identifiers" "identifiers over $transport"
        vg_assert_eq "$n_vpopmail" \
                "$(journalctl -q --no-pager -o export "_PID=$pid" SYSLOG_IDENTIFIER=vpopmail _UID=0 "_TRANSPORT=$transport" | grep -c '^MESSAGE=')" \
                "vpopmail entries with _UID=0 and _TRANSPORT=$transport"
done

# --- The journal survives a restart of journald, and rotation and vacuuming work.
vg_restart_journald
vg_log_vpopmail "vchkpw-smtp: password fail $tag-after@example.com:192.0.2.3"
vg_journal_sync
vg_assert_eq 0 "$(field_of "vchkpw-pop3: password fail $tag@example.com:192.0.2.1" _UID)" "entry from before the restart"
vg_assert_eq 0 "$(field_of "vchkpw-smtp: password fail $tag-after@example.com:192.0.2.3" _UID)" "entry after the restart"
timeout 10 journalctl --rotate || vg_fail "journalctl --rotate failed"
archived=(/var/log/journal/*/system@*.journal)
[[ -e ${archived[0]} ]] || vg_fail "rotation archived nothing"
journalctl --vacuum-files=1 >/dev/null 2>&1 || vg_fail "journalctl --vacuum-files failed"
if compgen -G '/var/log/journal/*/system@*.journal' >/dev/null; then vg_fail "vacuum left archived files"; fi

# --- Export format becomes a journal file that keeps the generator's timestamps.
"$loadgen" --export --seed=3 --attackers=3 --failures=3 --start-usec=1600000000000000 --spacing-usec=1000000 \
        --expect="$tmp/expect" | vg_export_to_journal "$tmp/gen.journal"
vg_assert_eq 1600000000000000 \
        "$(journalctl -q --no-pager -D "$tmp" -o export | sed -n 's/^__REALTIME_TIMESTAMP=//p' | sed -n 1p)" \
        "first timestamp of the generated journal"
vg_assert_eq "$(grep -c '^SYSLOG_IDENTIFIER=vpopmail$' < <("$loadgen" --export --seed=3 --attackers=3 --failures=3))" \
        "$(journalctl -q --no-pager -D "$tmp" -o cat SYSLOG_IDENTIFIER=vpopmail | wc -l)" "vpopmail entries in the generated journal"
vg_assert_eq 3 "$(wc -l <"$tmp/expect")" "attackers to ban (3 failures each)"
"$loadgen" --seed=3 --attackers=3 --failures=2 --expect="$tmp/expect2"
vg_assert_eq 0 "$(wc -l <"$tmp/expect2")" "attackers to ban (2 failures each)"

# --- nftables: the helpers read sets, and nothing is visible on the host.
[[ $(readlink /proc/self/ns/net) != $(readlink "/proc/self/fd/$VG_HOST_NETNS_FD") ]] ||
        vg_fail "still in the host's network namespace"
table=vpopguard_selftest_$tag
vg_host_nft_tables >"$tmp/host-tables" || vg_fail "cannot list the host's tables"
nft add table inet "$table"
nft list table inet "$table" >/dev/null || vg_fail "table not visible inside the namespace"
vg_host_nft_tables >"$tmp/host-tables-after"
vg_assert_files_eq "$tmp/host-tables" "$tmp/host-tables-after" "host tables"
if grep -q "$table" "$tmp/host-tables-after"; then vg_fail "table $table leaked to the host"; fi

nft -f - <<EOF
table inet $VG_NFT_TABLE {
        set banned4 { type ipv4_addr; flags timeout; }
        set banned6 { type ipv6_addr; flags interval, timeout; }
}
add element inet $VG_NFT_TABLE banned4 { 192.0.2.7 timeout 1h, 198.51.100.1 timeout 10m comment "a, b", 203.0.113.9 }
add element inet $VG_NFT_TABLE banned6 { 2001:db8::7 timeout 1h, 2001:db8:1::/48 }
EOF
vg_assert_eq "$(printf '%s\n' 192.0.2.7 198.51.100.1 203.0.113.9)" "$(vg_nft_set_elements banned4)" "banned4"
vg_assert_eq "$(printf '%s\n' 2001:db8:1::/48 2001:db8::7)" "$(vg_nft_set_elements banned6)" "banned6"
vg_nft_set_has banned4 198.51.100.1 || vg_fail "vg_nft_set_has misses 198.51.100.1"
if vg_nft_set_has banned4 198.51.100.10; then vg_fail "vg_nft_set_has finds 198.51.100.10"; fi
if (vg_nft_set_elements nosuchset) 2>/dev/null; then vg_fail "vg_nft_set_elements accepted a missing set"; fi
if vg_nft_set_has nosuchset 192.0.2.7; then vg_fail "vg_nft_set_has found an element of a missing set"; fi

# A set larger than a pipe buffer: membership must not depend on who closes the pipe first.
nft add set inet "$VG_NFT_TABLE" big "{ type ipv4_addr; }"
for ((i = 0; i < 40000; i++)); do
        echo "add element inet $VG_NFT_TABLE big { 10.$((i >> 16)).$(((i >> 8) & 255)).$((i & 255)) }"
done | nft -f -
vg_assert_eq 40000 "$(vg_nft_set_elements big | wc -l)" "elements of the big set"
vg_nft_set_has big 10.0.0.0 || vg_fail "first element of the big set missing"
vg_nft_set_has big 10.0.156.63 || vg_fail "last element of the big set missing"

vg_log "all checks passed"
