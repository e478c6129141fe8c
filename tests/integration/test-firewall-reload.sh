#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# SIGHUP with a changed [Firewall] section, as vpopguard.conf(5) describes it:
#   - another Table= and set names: once the reload is done, the new table has its sets, the
#     chain that drops their addresses and every active ban (journal and manual, IPv4 and IPv6);
#     the old table is left as it was; new bans land in the new sets only;
#   - a [Firewall] change that cannot be applied (CreateTable=no naming a table that does not
#     exist) is refused as a whole: logged, the rest of the file not applied either (MaxRetry=),
#     the daemon keeps running and keeps banning into the sets it had; vpopguardctl reload
#     reports it as ConfigurationError.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin fw-reload "$@"
vg_require_commands nft jq
conf=$tmp/vpopguard.conf
sock=$tmp/io.vpopguard.Manager
log=$tmp/daemon.log
T=30 # deadline of each wait, in seconds

vg_vpopmail_config "$conf" MaxRetry=3
write_config() { # MAXRETRY [FIREWALL-LINE...]
        printf '[Defaults]\nMaxRetry=%s\nIPv6Prefix=128\n' "$1" >"$conf"
        shift
        if (($#)); then
                printf '[Firewall]\n' >>"$conf"
                printf '%s\n' "$@" >>"$conf"
        fi
        "$daemon" --config="$conf" --test-config >"$tmp/test-config.out" 2>&1 ||
                vg_fail "configuration refused by --test-config: $(cat "$tmp/test-config.out")"
}

in_set() { # TABLE SET ADDRESS
        vg_daemon_ok
        VG_NFT_TABLE=$1 vg_nft_set_has "$2" "$3"
}
elements() { # TABLE SET
        VG_NFT_TABLE=$1 vg_nft_set_elements "$2"
}
log_count() { # TEXT: lines of the daemon's log holding TEXT
        grep -cF -- "$1" "$log" || true
}
max_retry() {
        "$ctl" --socket="$sock" --json status | jq -r '.jails[0].maxRetry'
}

vg_start_journald

# --- The default firewall: inet vpopguard, banned4 and banned6.
write_config 3
vg_start_daemon "$log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock"
vg_log_failures 192.0.2.1
"$ctl" --socket="$sock" ban 2001:db8::1 >/dev/null || vg_fail "manual ban of 2001:db8::1 failed"
vg_poll "$T" in_set vpopguard banned4 192.0.2.1
vg_poll "$T" in_set vpopguard banned6 2001:db8::1

# --- Another table and other set names.
write_config 3 Table=guard2 IPv4Set=bad4 IPv6Set=bad6
reloads=$(log_count 'Configuration reloaded')
vg_reload_daemon
# The reload is over (READY=1): it was applied, and the new sets hold every active ban already.
vg_assert_eq $((reloads + 1)) "$(log_count 'Configuration reloaded')" "reloads applied"
vg_assert_eq 192.0.2.1 "$(elements guard2 bad4)" "bad4 right after the reload"
vg_assert_eq 2001:db8::1 "$(elements guard2 bad6)" "bad6 right after the reload"
nft list chain inet guard2 input >"$tmp/chain" || vg_fail "no chain inet guard2 input"
grep -q 'hook input' "$tmp/chain" || vg_fail "chain inet guard2 input is not hooked: $(cat "$tmp/chain")"
vg_assert_eq "ip saddr @bad4 drop
ip6 saddr @bad6 drop" "$(grep -o 'ip6\? saddr @[a-z0-9_]* drop' "$tmp/chain")" "rules of inet guard2 input"
# The old table is left as it was.
vg_assert_eq 192.0.2.1 "$(elements vpopguard banned4)" "old banned4 after the reload"
vg_assert_eq 2001:db8::1 "$(elements vpopguard banned6)" "old banned6 after the reload"

# New bans go to the new sets only.
vg_log_failures 192.0.2.2
"$ctl" --socket="$sock" ban 2001:db8::2 >/dev/null || vg_fail "manual ban of 2001:db8::2 failed"
vg_poll "$T" in_set guard2 bad4 192.0.2.2
vg_assert_eq "$(printf '%s\n' 2001:db8::1 2001:db8::2)" "$(elements guard2 bad6)" "bad6 after a manual ban"
vg_assert_eq 192.0.2.1 "$(elements vpopguard banned4)" "old banned4 after a new ban"
vg_assert_eq 2001:db8::1 "$(elements vpopguard banned6)" "old banned6 after a new ban"

# --- A [Firewall] change that cannot be applied, with a MaxRetry= change next to it.
write_config 2 Table=nosuch CreateTable=no
refused=$(log_count 'New [Firewall] settings cannot be applied')
vg_reload_daemon
vg_assert_eq $((refused + 1)) "$(log_count 'New [Firewall] settings cannot be applied')" "reloads refused"
grep -F 'New [Firewall] settings cannot be applied' "$log" | tail -n 1 | grep -q nosuch ||
        vg_fail "the refusal does not name the missing table: $(grep -F '[Firewall]' "$log")"
vg_daemon_ok
if nft list table inet nosuch >/dev/null 2>&1; then
        vg_fail "CreateTable=no created table inet nosuch"
fi
vg_assert_eq 3 "$(max_retry)" "MaxRetry after the refused reload"
# Still banning, into guard2, with MaxRetry=3: 2 failures are not enough, the sentinel's 3 are.
vg_log_failures 192.0.2.3 2
vg_log_failures 192.0.2.4
vg_poll "$T" in_set guard2 bad4 192.0.2.4
"$ctl" --socket="$sock" ban 2001:db8::4 >/dev/null || vg_fail "manual ban after the refused reload failed"
vg_assert_eq "$(printf '%s\n' 192.0.2.1 192.0.2.2 192.0.2.4)" "$(elements guard2 bad4)" "bad4 after the refused reload"
vg_assert_eq "$(printf '%s\n' 2001:db8::1 2001:db8::2 2001:db8::4)" "$(elements guard2 bad6)" \
        "bad6 after the refused reload"

# The same through varlink: refused with the reason, nothing changes.
rc=0
"$ctl" --socket="$sock" reload >"$tmp/reload.out" 2>&1 || rc=$?
vg_assert_eq 1 "$rc" "exit status of vpopguardctl reload ($(cat "$tmp/reload.out"))"
grep -q 'io.vpopguard.Manager.ConfigurationError' "$tmp/reload.out" ||
        vg_fail "vpopguardctl reload: no ConfigurationError: $(cat "$tmp/reload.out")"
grep -qF '[Firewall] settings cannot be applied' "$tmp/reload.out" ||
        vg_fail "vpopguardctl reload: no reason: $(cat "$tmp/reload.out")"
vg_assert_eq 3 "$(max_retry)" "MaxRetry after the refused varlink reload"
vg_log_failures 192.0.2.5
vg_poll "$T" in_set guard2 bad4 192.0.2.5

vg_term_daemon
vg_log "all checks passed"
