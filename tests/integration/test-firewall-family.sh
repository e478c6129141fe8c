#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# [Firewall] Family=ip and Family=ip6 end to end, as vpopguard.conf(5) describes them: the table
# of that family has one set and one drop rule; an attacker of that family is banned in it; an
# attacker of the other family is banned on paper only (ban event, ListBans, a warning that it is
# not enforced) and never reaches nftables; a manual ban of the other family is refused
# (InvalidAddress); nothing crashes, also when a restart restores both kinds of bans.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin family "$@"
vg_require_commands nft jq journalctl
BAN_ID=7fc6f43d6e5d457ba31097a4cc519474
T=30 # deadline of each wait, in seconds

vchkpw_address() { # ADDRESS: as vchkpw prints a short IPv6 address, with '_' for ':'
        echo "${1//:/_}"
}

# check_family FAMILY SET OTHER-KIND ENFORCED MANUAL UNENFORCED REFUSED: ENFORCED (an attacker of
# FAMILY) and MANUAL (a manual ban) end up in SET; UNENFORCED (an attacker of the other kind) and
# REFUSED (a manual ban) do not. Attackers' addresses are logged as vchkpw prints them.
check_family() {
        local fam=$1 set=$2 other=$3 good=$4 manual=$5 bad=$6 refused=$7
        local dir conf sock log rc
        # A journal of its own: a first start reads the failures of the last FindTime.
        [[ -z $VG_JOURNALD_PID ]] || vg_stop_journald
        rm -rf /var/log/journal/*
        vg_start_journald
        dir=$(vg_tmpdir "$fam")
        conf=$dir/vpopguard.conf sock=$dir/sock log=$dir/daemon.log
        vg_vpopmail_config "$conf" MaxRetry=3
        printf '[Firewall]\nFamily=%s\n' "$fam" >>"$conf"

        banned() { vg_daemon_ok && VG_NFT_FAMILY=$fam vg_nft_set_has "$set" "$1"; }
        ban_logged() { vg_daemon_ok && vg_journal_has "MESSAGE_ID=$BAN_ID" "VPOPGUARD_ADDRESS=$1"; }
        listed_bans() {
                "$ctl" --socket="$sock" --json bans | jq -r '.bans[].address' | LC_ALL=C sort
        }

        vg_start_daemon "$log" "$daemon" --config="$conf" --state-directory="$dir/state" --socket="$sock"

        # The table: only this family, one set, one rule.
        vg_assert_eq "table $fam vpopguard" "$(nft list tables)" "tables with Family=$fam"
        vg_assert_eq "$set" "$(nft -j list sets "$fam" | jq -r '.nftables[] | select(.set) | .set.name')" \
                "sets of $fam vpopguard"
        vg_assert_eq "ip${fam#ip} saddr @$set drop" \
                "$(nft list chain "$fam" vpopguard input | grep -o 'ip6\? saddr @[a-z0-9]* drop')" \
                "drop rule of $fam vpopguard input"

        # The other family first, then the sentinel: once it is banned, both were judged.
        vg_log_failures "$(vchkpw_address "$bad")"
        vg_log_failures "$(vchkpw_address "$good")"
        vg_poll "$T" banned "$good"
        vg_poll "$T" ban_logged "$bad"
        vg_poll "$T" grep -qF "No nftables set for $other addresses (Family=$fam): ban of jail vpopmail not enforced." "$log"
        vg_assert_eq "$good" "$(VG_NFT_FAMILY=$fam vg_nft_set_elements "$set")" "$set with Family=$fam"
        # A ban that cannot be enforced is no error: nothing failed, nothing needs a repair.
        if grep -Ei 'failed|error|checking the table' "$log"; then
                vg_fail "errors logged with Family=$fam (above)"
        fi
        vg_assert_eq "table $fam vpopguard" "$(nft list tables)" "tables after a ban of $bad"
        vg_assert_eq "$(printf '%s\n' "$good" "$bad" | LC_ALL=C sort)" "$(listed_bans)" "ListBans with Family=$fam"

        # Manual bans: this family is enforced, the other refused.
        "$ctl" --socket="$sock" ban "$manual" >/dev/null || vg_fail "manual ban of $manual failed"
        banned "$manual" || vg_fail "manual ban of $manual is not in $set"
        rc=0
        "$ctl" --socket="$sock" ban "$refused" >"$dir/ban.out" 2>&1 || rc=$?
        vg_assert_eq 1 "$rc" "exit status of a manual ban of the other family ($(cat "$dir/ban.out"))"
        grep -q 'io.vpopguard.Manager.InvalidAddress' "$dir/ban.out" ||
                vg_fail "manual ban of the other family: $(cat "$dir/ban.out")"
        vg_assert_eq "$(printf '%s\n' "$good" "$manual" | LC_ALL=C sort)" \
                "$(VG_NFT_FAMILY=$fam vg_nft_set_elements "$set")" "$set after the manual bans"

        # As after a reboot: the kernel forgot everything; the restart restores what it can.
        vg_term_daemon
        nft delete table "$fam" vpopguard
        vg_start_daemon "$log" "$daemon" --config="$conf" --state-directory="$dir/state" --socket="$sock"
        vg_poll "$T" banned "$good"
        vg_assert_eq "$(printf '%s\n' "$good" "$manual" | LC_ALL=C sort)" \
                "$(VG_NFT_FAMILY=$fam vg_nft_set_elements "$set")" "$set after the restart"
        vg_assert_eq "table $fam vpopguard" "$(nft list tables)" "tables after the restart"
        vg_assert_eq "$(printf '%s\n' "$good" "$manual" "$bad" | LC_ALL=C sort)" "$(listed_bans)" \
                "ListBans after the restart"
        vg_term_daemon
        nft delete table "$fam" vpopguard
        vg_log "Family=$fam: ok"
}

check_family ip banned4 IPv6 192.0.2.1 192.0.2.2 2001:db8::1 2001:db8::99
check_family ip6 banned6 IPv4 2001:db8::2 2001:db8::3 192.0.2.3 192.0.2.99

vg_log "all checks passed"
