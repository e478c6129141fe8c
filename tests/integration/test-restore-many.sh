#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# 120 000 active bans (IPv4 and IPv6 addresses, IPv6Prefix=128) in a state file and nothing in
# nftables, as after a reboot: more than two of the transactions a full restore is split into
# (MANAGER_RESTORE_CHUNK). Asserts what an admin would check:
#   - at READY=1 the sets hold exactly the saved bans;
#   - after `nft flush ruleset` they hold exactly those again, but for what changed while they
#     were put back (in steps, with banning going on between them): an address banned by hand
#     and 20 saved bans lifted by hand right after the flush.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin restore-many "$@"
vg_require_commands nft jq python3
conf=$tmp/vpopguard.conf
sock=$tmp/io.vpopguard.Manager
N=120000

vg_vpopmail_config "$conf"

# The state file as the daemon writes it (state-file-internal.h).
mkdir -p "$tmp/state"
python3 - "$tmp/state/state" "$N" "$tmp/expect4" "$tmp/expect6" <<'EOF'
import ipaddress, sys, time
path, n, expect4, expect6 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
now = time.time_ns() // 1000
v4, v6 = [], []
for i in range(n):
    if i % 2:
        v6.append(str(ipaddress.ip_address(int(ipaddress.ip_address("2001:db8:100::")) + i)))
    else:
        v4.append(str(ipaddress.ip_address(int(ipaddress.ip_address("198.18.0.0")) + i)))
text = "vpopguard-state 3\n" + "".join(
    "ban vpopmail %s 3 %d %d journal 1\n" % (a, now, now + 86400 * 10**6) for a in v4 + v6)
h = 0xcbf29ce484222325
for b in text.encode():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
open(path, "w").write(text + "end %d %016x\n" % (n, h))
open(expect4, "w").write("".join(a + "\n" for a in v4))
open(expect6, "w").write("".join(a + "\n" for a in v6))
EOF
# The last 10 saved bans of each family, lifted during the restore after a flush: among the last
# to be put back, if the restore goes in the order of the file.
tail -n 10 "$tmp/expect4" | LC_ALL=C sort >"$tmp/lifted4"
tail -n 10 "$tmp/expect6" | LC_ALL=C sort >"$tmp/lifted6"
LC_ALL=C sort -o "$tmp/expect4" "$tmp/expect4"
LC_ALL=C sort -o "$tmp/expect6" "$tmp/expect6"

sets_hold_the_bans() { # WHEN
        vg_nft_set_elements banned4 >"$tmp/set4"
        vg_nft_set_elements banned6 >"$tmp/set6"
        vg_assert_files_eq "$tmp/expect4" "$tmp/set4" "banned4 $1"
        vg_assert_files_eq "$tmp/expect6" "$tmp/set6" "banned6 $1"
}

vg_start_journald
nft flush ruleset
vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock"
sets_hold_the_bans "at READY=1"

nft flush ruleset
"$ctl" --socket="$sock" ban 192.0.2.77 --jail=vpopmail >/dev/null || vg_fail "vpopguardctl ban failed"
cat "$tmp/lifted4" "$tmp/lifted6" | while read -r a; do
        "$ctl" --socket="$sock" unban "$a" >/dev/null || vg_fail "vpopguardctl unban $a failed"
done
{ LC_ALL=C comm -23 "$tmp/expect4" "$tmp/lifted4"; echo 192.0.2.77; } | LC_ALL=C sort >"$tmp/expect4-after"
LC_ALL=C comm -23 "$tmp/expect6" "$tmp/lifted6" >"$tmp/expect6-after"
# Elements only come back during the restore: once there are as many as expected, it is over.
sets_back() {
        vg_daemon_ok
        [[ $(vg__nft_set_elements banned4 | wc -l) -ge $(wc -l <"$tmp/expect4-after") &&
                $(vg__nft_set_elements banned6 | wc -l) -ge $(wc -l <"$tmp/expect6-after") ]]
}
vg_poll 120 sets_back
vg_nft_set_elements banned4 >"$tmp/set4"
vg_nft_set_elements banned6 >"$tmp/set6"
vg_assert_files_eq "$tmp/expect4-after" "$tmp/set4" "banned4 after nft flush ruleset, a ban and 10 unbans"
vg_assert_files_eq "$tmp/expect6-after" "$tmp/set6" "banned6 after nft flush ruleset and 10 unbans"

vg_term_daemon
vg_log "all checks passed"
