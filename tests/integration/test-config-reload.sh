#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Configuration as an admin meets it: --test-config prints the effective configuration or every
# error with its file:line; an invalid configuration stops the daemon from starting; SIGHUP with
# a broken configuration keeps the old one running, SIGHUP with a good one applies it and keeps
# the open failure counts. Along the way the sd_notify protocol of a Type=notify service:
# READY=1, STATUS=, RELOADING=1 then READY=1 for each reload, STOPPING=1 on SIGTERM.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin reload "$@"
vg_require_commands nft jq journalctl timeout

# Deadline of each wait, in seconds: generous, as a busy machine is no failure.
T=20
conf=$tmp/vpopguard.conf
vg_vpopmail_config "$conf" MaxRetry=3

has_line_with() { # FILE TEXT1 TEXT2: a line of FILE holds both texts
        grep -F -- "$2" "$1" | grep -F -- "$3" >/dev/null
}

# --- 1. --test-config on a valid configuration: the effective configuration, exit 0.
"$daemon" --config="$conf" --test-config >"$tmp/test-config.out" 2>"$tmp/test-config.err" ||
        vg_fail "--test-config rejected a valid configuration: $(cat "$tmp/test-config.err")"
grep -qx 'Name=vpopmail' "$tmp/test-config.out" || vg_fail "no Name=vpopmail in: $(cat "$tmp/test-config.out")"
grep -qx 'MaxRetry=3' "$tmp/test-config.out" || vg_fail "no MaxRetry=3 in: $(cat "$tmp/test-config.out")"

# Two errors in two files: exit 1, both printed with file:line and key=value.
bad=$tmp/bad.conf
mkdir -p "$bad.d"
cp "$VG_SRC_DIR/conf.d/10-vpopmail.conf" "$bad.d/"
printf '[Defaults]\nMaxRetry=3\nFindTime=banana\n' >"$bad"
printf '[Jail]\nName=vpopmail\n\nMaxRetry=0\n' >"$bad.d/50-local.conf"
rc=0
"$daemon" --config="$bad" --test-config >"$tmp/bad.out" 2>&1 || rc=$?
vg_assert_eq 1 "$rc" "exit status of --test-config on an invalid configuration"
has_line_with "$tmp/bad.out" "$bad:3:" "FindTime=banana" || vg_fail "error 1 not located: $(cat "$tmp/bad.out")"
has_line_with "$tmp/bad.out" "$bad.d/50-local.conf:4:" "MaxRetry=0" || vg_fail "error 2 not located: $(cat "$tmp/bad.out")"

# --- 2. The daemon refuses to start with it, before it touches nftables or the state.
empty=$(vg_tmpdir empty-journal)
rc=0
vg_timeout 20 "$daemon" --config="$bad" --journal-directory="$empty" --state-directory="$tmp/bad-state" --no-follow \
        >"$tmp/bad-start.log" 2>&1 </dev/null || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || vg_fail "vpopguardd with an invalid configuration: exit status $rc"
has_line_with "$tmp/bad-start.log" "$bad:3:" "FindTime=banana" || vg_fail "start: error 1 not located: $(cat "$tmp/bad-start.log")"
has_line_with "$tmp/bad-start.log" "$bad.d/50-local.conf:4:" "MaxRetry=0" ||
        vg_fail "start: error 2 not located: $(cat "$tmp/bad-start.log")"
vg_assert_eq "" "$(nft list tables)" "nftables tables after the refused start"
[[ ! -e $tmp/bad-state ]] || vg_fail "the refused start created its state directory"

# --- 3 and 4. The running daemon; the test reads its NOTIFY_SOCKET.
vg_start_journald

protocol() { # the lifecycle fields, in order
        vg_notify_fields "$pid" | grep -xE 'READY=1|RELOADING=1|STOPPING=1' | paste -sd' ' -
}
logged=0
fail() { # ADDRESS COUNT
        local i
        for ((i = 0; i < $2; i++)); do
                vg_log_vpopmail "vchkpw-smtp: password fail joe$i@example.com:$1"
                logged=$((logged + 1))
        done
}
banned() {
        vg_nft_set_has banned4 "$1"
}
not_banned() {
        if banned "$1"; then vg_fail "$1 is banned"; fi
}

log=$tmp/daemon.log
vg_start_daemon "$log" "$daemon" --config="$conf" --state-directory="$tmp/state"
pid=$VG_DAEMON_PID
vg_notify_fields | grep -q '^STATUS=.*jail' || vg_fail "no STATUS= naming the jails: $(vg_notify_fields)"

# MaxRetry=3 to begin with.
fail 192.0.2.1 3
vg_poll "$T" banned 192.0.2.1

# A broken drop-in (one good line, one bad): logged with file:line, nothing of it applied.
printf '[Defaults]\nMaxRetry=2\nFindTime=banana\n' >"$conf.d/90-local.conf"
vg_reload_daemon
vg_assert_eq "READY=1 RELOADING=1 READY=1" "$(protocol)" "notifications after the broken reload"
vg_poll "$T" has_line_with "$log" "$conf.d/90-local.conf:3:" "FindTime=banana"
vg_poll "$T" grep -q 'Keeping the previous configuration' "$log"
# Still MaxRetry=3: two failures are not enough, the sentinel's three are.
fail 192.0.2.2 2
fail 192.0.2.31 1 # its first failure, before the good reload
fail 192.0.2.9 3
vg_poll "$T" banned 192.0.2.9
not_banned 192.0.2.2
not_banned 192.0.2.31
vg_assert_eq "$(printf '%s\n' 192.0.2.1 192.0.2.9)" "$(vg_nft_set_elements banned4)" "banned4 after the broken reload"

# A good drop-in: MaxRetry=2 from now on, and 192.0.2.31's first failure still counts.
printf '[Defaults]\nMaxRetry=2\n' >"$conf.d/90-local.conf"
vg_reload_daemon
vg_assert_eq "READY=1 RELOADING=1 READY=1 RELOADING=1 READY=1" "$(protocol)" "notifications after the good reload"
vg_poll "$T" grep -q 'Configuration reloaded' "$log"
fail 192.0.2.31 1
fail 192.0.2.32 1 # one failure, none before: not enough
fail 192.0.2.3 2
vg_poll "$T" banned 192.0.2.3
vg_poll "$T" banned 192.0.2.31
not_banned 192.0.2.32
grep -qxF 'Banned 192.0.2.31 for 1h (jail vpopmail): 2 failures within 10min.' "$log" ||
        vg_fail "no ban line for 192.0.2.31: $(cat "$log")"
# The reloads reread nothing: "entries read" is what was logged.
reads() { # the "entries read" of every STATUS= so far, one a line
        vg_notify_fields | sed -n 's/^STATUS=.* \([0-9]*\) entries read.*/\1/p'
}
read_reached() { # N: the last STATUS= says N or more entries read
        local n
        n=$(reads | tail -n 1)
        [[ -n $n ]] && ((n >= $1))
}
vg_poll "$T" read_reached "$logged"
vg_assert_eq "$logged" "$(reads | sort -n | tail -n 1)" "entries read"

# SIGTERM: STOPPING=1, exit status 0.
vg_term_daemon "$T"
stopping() { vg_notify_fields "$pid" | grep -qx STOPPING=1; }
vg_poll "$T" stopping
vg_assert_eq "READY=1 RELOADING=1 READY=1 RELOADING=1 READY=1 STOPPING=1" "$(protocol)" "notifications at the end"

vg_log "all checks passed"
