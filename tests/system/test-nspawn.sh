#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vpopguard installed into a Debian 12 machine with systemd as PID 1 (systemd-nspawn), checked
# the way an admin would after `meson install`:
#   - `systemctl enable --now vpopguard.socket vpopguard.service` starts it as a dynamic user
#     with the systemd-journal group and CAP_NET_ADMIN only, and the control socket is 0666;
#   - three vchkpw failures logged with logger ban the address in `inet vpopguard banned4`;
#   - `systemctl status` shows the daemon's STATUS= line, `systemctl reload` reloads it in place,
#     `journalctl -u` shows its log, and `journalctl -x` explains the ban with the catalog;
#   - `systemctl restart` keeps the ban and the journal cursor, and judges nothing twice;
#   - after a reboot the service is up without anyone asking (WantedBy=multi-user.target), the
#     bans are back in the new network namespace's sets, and nothing is judged twice;
#   - with the service stopped, a status query by an unprivileged user over the socket starts it
#     (socket activation).
# The container has its own tree, journal and network namespace: the host's are never touched.
# The bookworm tree is debootstrapped once and cached in /var/cache/vpopguard-test/.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"
# shellcheck source=tests/system/nspawn-lib.sh
. "$(dirname "$0")/nspawn-lib.sh"

vg_require_root_or_skip
vg_require_commands systemd-nspawn debootstrap nsenter zstd meson ninja jq
src=${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}
src=$(cd "$src" && pwd)
ban_id=7fc6f43d6e5d457ba31097a4cc519474
missed_id=a88198937379434e853764a891c2a4cf
sock=/run/vpopguard/io.vpopguard.Manager

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/vpopguard-nspawn.XXXXXX")
root=$tmp/root
cleanup() {
        local rc=$?
        set +e
        ns_poweroff 20
        if [[ $rc -ne 0 && -n ${VG_KEEP_TMPDIR:-} ]]; then
                vg_log "keeping $tmp"
        else
                rm -rf --one-file-system -- "$tmp"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Build for /usr, as a distribution would, without sanitizers: the container has no
# libasan, and the test's own build directory may use a prefix other than /usr.
meson setup "$tmp/build" "$src" --prefix=/usr -Db_sanitize=none >"$tmp/build.log" 2>&1 ||
        vg_fail "meson setup failed: $(tail -n 20 "$tmp/build.log")"
# Only what gets installed: the unit tests and the load generator are not needed here.
mapfile -t installed < <(meson introspect "$tmp/build" --targets |
        jq -r --arg b "$tmp/build/" '.[] | select(.installed) | .filename[] | ltrimstr($b)')
((${#installed[@]} > 0)) || vg_fail "meson installs no targets"
ninja -C "$tmp/build" "${installed[@]}" >>"$tmp/build.log" 2>&1 ||
        vg_fail "build failed: $(tail -n 20 "$tmp/build.log")"
ns_prepare_root "$root"
meson install -C "$tmp/build" --destdir "$root" --no-rebuild --quiet >>"$tmp/build.log" 2>&1 ||
        vg_fail "meson install failed: $(tail -n 20 "$tmp/build.log")"

name=vpopguard-test-$$
ns_boot "$root" "$name" "$tmp/console.log"

# --- Helpers that look inside the container.

# set_has SET ADDRESS: ADDRESS is an element of inet vpopguard SET.
set_has() {
        local json
        json=$(ns_run nft -j list set inet vpopguard "$1" 2>/dev/null) || return 1
        jq -e --arg a "$2" '[.nftables[] | select(.set) | .set.elem // [] | .[]
                | if type == "object" and has("elem") then .elem.val else . end] | index($a) != null' \
                <<<"$json" >/dev/null
}

# ban_events ADDRESS: how many ban events the journal holds for ADDRESS.
ban_events() {
        ns_run journalctl -q --no-pager -o json "MESSAGE_ID=$ban_id" "VPOPGUARD_ADDRESS=$1" | wc -l
}

fail_n() { # ADDRESS COUNT: vchkpw's failure line, as root over the syslog socket
        local i
        for ((i = 0; i < $2; i++)); do
                ns_run logger --socket-errors=on --id -p mail.notice -t vpopmail -- \
                        "vchkpw-pop3: password fail joe@example.com:$1" || vg_fail "logger failed"
        done
}

prop() { # UNIT PROPERTY
        ns_run systemctl show -p "$2" --value "$1"
}

state_cursor() {
        sed -n 's/^cursor //p' "$root/var/lib/private/vpopguard/state" 2>/dev/null
}

# The cursor of the last entry the shipped jail's filter matches.
last_vpopmail_cursor() {
        ns_run journalctl -q --no-pager -n 1 -o export SYSLOG_IDENTIFIER=vpopmail \
                SYSLOG_IDENTIFIER=vchkpw | sed -n 's/^__CURSOR=//p'
}

state_is_current() {
        local c
        c=$(last_vpopmail_cursor)
        [[ -n $c && $(state_cursor) == "$c" ]]
}

journal_cursor() { # the cursor of the newest entry, to look only at what follows it
        ns_run journalctl -q --no-pager -n 1 -o export | sed -n 's/^__CURSOR=//p'
}

# unit_logged_after CURSOR MESSAGE: the service logged exactly MESSAGE after CURSOR. (journalctl
# 252 finds nothing for --after-cursor with a MESSAGE= match, hence the grep.)
unit_logged_after() {
        ns_run journalctl -q --no-pager -o cat --after-cursor="$1" _SYSTEMD_UNIT=vpopguard.service |
                grep -qxF -- "$2"
}

is_active() { # UNIT
        [[ $(ns_run systemctl is-active "$1") == active ]]
}

# --- An admin installs and starts it.
ns_run systemctl daemon-reload || vg_fail "daemon-reload failed"
ns_run journalctl --update-catalog || vg_fail "journalctl --update-catalog failed"
ns_run systemctl enable --now vpopguard.socket vpopguard.service >"$tmp/enable.log" 2>&1 ||
        vg_fail "systemctl enable --now failed: $(cat "$tmp/enable.log"; ns_run journalctl -q --no-pager -n 30 -u vpopguard.service)"
vg_assert_eq active "$(ns_run systemctl is-active vpopguard.service)" "vpopguard.service"
vg_assert_eq active "$(ns_run systemctl is-active vpopguard.socket)" "vpopguard.socket"
vg_assert_eq enabled "$(ns_run systemctl is-enabled vpopguard.service)" "service enabled"
vg_assert_eq "socket 666" "$(ns_run stat -c '%F %a' "$sock")" "control socket"

# A dynamic user, with the journal group and CAP_NET_ADMIN, and nothing else.
pid=$(prop vpopguard.service MainPID)
[[ $pid -gt 0 ]] || vg_fail "no main PID"
status=$(ns_run cat "/proc/$pid/status")
uids=$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' <<<"$status")
read -r uid _ <<<"$uids"
vg_assert_eq "$uid $uid $uid $uid" "$uids" "real, effective, saved and fs UID"
[[ $uid -ne 0 ]] || vg_fail "the daemon runs as root"
journal_gid=$(ns_run getent group systemd-journal | cut -d: -f3)
groups=" $(awk '$1 == "Groups:" { $1 = ""; print }' <<<"$status") "
[[ -n $journal_gid && $groups == *" $journal_gid "* ]] ||
        vg_fail "not in systemd-journal ($journal_gid): groups$groups"
vg_assert_eq 0000000000001000 "$(awk '$1 == "CapEff:" { print $2 }' <<<"$status")" "effective capabilities (CAP_NET_ADMIN)"
vg_assert_eq 0000000000001000 "$(awk '$1 == "CapBnd:" { print $2 }' <<<"$status")" "bounding set"
# PCRE2's JIT code lives in writable and executable memory, which the unit allows on purpose
# (failregex.c would silently fall back to the interpreter).
# (Read first, then grep: with pipefail, grep -q ending early can fail the pipeline.)
maps=$(ns_run cat "/proc/$pid/maps")
grep -q ' rwxp ' <<<"$maps" || vg_fail "no JIT memory: is MemoryDenyWriteExecute= set?"

# --- It reads the system journal and bans.
fail_n 192.0.2.7 3
vg_poll 30 set_has banned4 192.0.2.7
vg_poll 10 state_is_current

ns_run systemctl status --no-pager vpopguard.service >"$tmp/status.txt" 2>&1 || true
grep -q '^ *Status: ".*jail' "$tmp/status.txt" ||
        vg_fail "systemctl status shows no STATUS= line:"$'\n'"$(cat "$tmp/status.txt")"

ns_run journalctl -q --no-pager -u vpopguard.service -o cat >"$tmp/unit.log"
grep -q '^vpopguardd .* running: 1 jail' "$tmp/unit.log" ||
        vg_fail "journalctl -u vpopguard shows no start-up line:"$'\n'"$(cat "$tmp/unit.log")"
grep -qF 'Banned 192.0.2.7 for 1h (jail vpopmail): 3 failures' "$tmp/unit.log" ||
        vg_fail "journalctl -u vpopguard shows no ban:"$'\n'"$(cat "$tmp/unit.log")"

ns_run journalctl -q --no-pager -x VPOPGUARD_ADDRESS=192.0.2.7 >"$tmp/explained.txt"
if ! grep -qF 'Subject: vpopguard banned 192.0.2.7 (jail vpopmail)' "$tmp/explained.txt" ||
        ! grep -qF 'Failures counted: 3.' "$tmp/explained.txt" ||
        grep -q '@VPOPGUARD_' "$tmp/explained.txt"; then
        vg_fail "journalctl -x does not explain the ban:"$'\n'"$(cat "$tmp/explained.txt")"
fi

# --- Reload in place.
mark=$(journal_cursor)
ns_run systemctl reload vpopguard.service || vg_fail "systemctl reload failed"
vg_poll 10 unit_logged_after "$mark" "Configuration reloaded: 1 jail."
vg_assert_eq active "$(ns_run systemctl is-active vpopguard.service)" "after reload"
vg_assert_eq "$pid" "$(prop vpopguard.service MainPID)" "main PID after reload"

# --- Restart: the ban and the cursor survive, and nothing is judged twice: an address with
# MaxRetry-1 failures before the restart would be banned if they were read again after it.
state_failures() { # ADDRESS: its failures in the saved state (0 if none)
        awk -v a="$1" '$1 == "fail" && $3 == a { n = NF - 3 } END { print n + 0 }' \
                "$root/var/lib/private/vpopguard/state" 2>/dev/null || echo 0
}
fail_n 192.0.2.9 2
vg_poll 30 eval '[[ $(state_failures 192.0.2.9) == 2 ]]'
cursor=$(state_cursor)
ns_run systemctl restart vpopguard.service || vg_fail "systemctl restart failed"
vg_assert_eq active "$(ns_run systemctl is-active vpopguard.service)" "after restart"
[[ $(prop vpopguard.service MainPID) != "$pid" ]] || vg_fail "restart kept the old process"
vg_assert_eq "$cursor" "$(state_cursor)" "state cursor after restart"
set_has banned4 192.0.2.7 || vg_fail "the ban is gone after a restart"
# Everything before the sentinel's ban has been judged once it shows.
fail_n 192.0.2.8 3
vg_poll 30 set_has banned4 192.0.2.8
vg_poll 10 state_is_current
vg_assert_eq 1 "$(ban_events 192.0.2.7)" "ban events for 192.0.2.7 after restart"
vg_assert_eq 1 "$(ban_events 192.0.2.8)" "ban events for the sentinel"
set_has banned4 192.0.2.9 && vg_fail "192.0.2.9 banned after the restart: its 2 failures were judged twice"
vg_assert_eq 2 "$(state_failures 192.0.2.9)" "saved failures of 192.0.2.9 after the restart"

# --- Reboot: nobody starts it, yet it runs and the bans are back in the new network namespace.
ns_poweroff
ns_boot "$root" "$name" "$tmp/console2.log"
vg_poll 10 is_active vpopguard.service
vg_poll 10 set_has banned4 192.0.2.7
vg_poll 10 set_has banned4 192.0.2.8
fail_n 192.0.2.9 3
vg_poll 30 set_has banned4 192.0.2.9
vg_assert_eq 1 "$(ban_events 192.0.2.7)" "ban events for 192.0.2.7 after reboot"
vg_assert_eq 1 "$(ban_events 192.0.2.8)" "ban events for 192.0.2.8 after reboot"
vg_assert_eq 0 "$(ns_run journalctl -q --no-pager -o json "MESSAGE_ID=$missed_id" | wc -l)" \
        "'entries missed' events"

# --- Socket activation: a status query by any local user starts the stopped service. (The
# container's vpopguardctl is the one installed from $tmp/build, which meson always builds.)
ctl=$(meson introspect "$tmp/build" --installed |
        jq -r 'to_entries[] | select(.key | endswith("/src/vpopguardctl")) | .value')
[[ -n $ctl ]] || vg_fail "vpopguardctl is not installed"
# systemctl warns that the socket can still start the service: that is the point.
ns_run systemctl stop vpopguard.service 2>/dev/null || vg_fail "systemctl stop failed"
vg_assert_eq inactive "$(ns_run systemctl is-active vpopguard.service)" "service stopped"
vg_assert_eq active "$(ns_run systemctl is-active vpopguard.socket)" "socket still listening"
out=$(ns_run timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$ctl" --socket="$sock" status 2>&1) ||
        vg_fail "vpopguardctl status as nobody failed: $out"$'\n'"$(ns_run journalctl -q --no-pager -n 30 -u vpopguard.service)"
[[ -n $out ]] || vg_fail "vpopguardctl status printed nothing"
vg_poll 10 is_active vpopguard.service

vg_log "all checks passed"
