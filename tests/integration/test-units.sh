#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The systemd units as `meson install` ships them:
#   - the service, the socket and the catalog are installed, and the service's ExecStart= is
#     where the daemon is installed;
#   - `systemd-analyze verify` prints nothing at all for the service and the socket (it only
#     warns about unknown keys or missing man pages, so any output counts as a failure);
#   - `systemd-analyze security --offline=yes` rates the service at 1.2 or lower, and the
#     hardening that analyze does not rate (PrivateIPC=, MemoryMax=, TasksMax=) is there;
#   - the same for vpopguard-metrics.service and .timer (vpopguardctl metrics --output= into
#     node_exporter's textfile directory, the one directory it may write to);
#   - the fleet's upload and pull templates are verified too, and the pull runs the getter where
#     it is installed.
# verify checks that ExecStart= exists, so the units are verified from a `meson install
# --destdir` tree, with only ExecStart= pointed into that tree. Needs no root and no namespaces.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_require_commands systemd-analyze jq meson
build=${VPOPGUARD_BUILD_DIR:-}
[[ -n $build && -f $build/build.ninja ]] || vg_skip "no build directory (set VPOPGUARD_BUILD_DIR)"
build=$(cd "$build" && pwd)
max_exposure=1.2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vpopguard-units.XXXXXX")
trap 'rm -rf --one-file-system -- "$tmp"' EXIT
root=$tmp/root

# --- What meson installs, and where.
meson install -C "$build" --destdir "$root" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
        vg_fail "meson install failed: $(tail -n 5 "$tmp/install.log")"
meson introspect "$build" --installed >"$tmp/installed.json" || vg_fail "meson introspect failed"

# installed_path SUFFIX: where the file whose build or source path ends in SUFFIX is installed.
installed_path() {
        local p
        p=$(jq -r --arg s "$1" 'to_entries[] | select(.key | endswith($s)) | .value' "$tmp/installed.json")
        [[ -n $p && $p != *$'\n'* ]] || vg_fail "meson installs no single file ending in $1"
        [[ -e $root$p ]] || vg_fail "$p is not in the installed tree"
        echo "$p"
}
daemon=$(installed_path /src/vpopguardd)
service=$(installed_path /units/vpopguard.service)
socket=$(installed_path /units/vpopguard.socket)
catalog=$(installed_path /units/vpopguard.catalog)
ctl=$(installed_path /src/vpopguardctl)
metrics_service=$(installed_path /units/vpopguard-metrics.service)
metrics_timer=$(installed_path /units/vpopguard-metrics.timer)
fleet_upload=$(installed_path /units/vpopguard-fleet-upload@.service)
fleet_pull=$(installed_path /units/vpopguard-fleet-pull@.service)
fleet_getter=$(installed_path /src/vpopguard-fleet-pull.sh)
# The pull's getter is where the unit runs it (inside its --getter= word), and executable.
grep -qF "\"--getter=$fleet_getter " "$root$fleet_pull" || vg_fail "the fleet pull unit does not run $fleet_getter"
[[ -x $root$fleet_getter ]] || vg_fail "$fleet_getter is not executable"
vg_assert_eq "$(dirname "$service")" "$(dirname "$metrics_service")" "service and metrics service unit directory"
vg_assert_eq "$(dirname "$service")" "$(dirname "$metrics_timer")" "service and metrics timer unit directory"
textfile_dir=/var/lib/prometheus/node-exporter
vg_assert_eq "ExecStart=$ctl metrics --output=$textfile_dir/vpopguard.prom" \
        "$(grep '^ExecStart=' "$root$metrics_service")" "ExecStart= of the installed metrics service"
vg_assert_eq "ReadWritePaths=-$textfile_dir" "$(grep '^ReadWritePaths=' "$root$metrics_service")" \
        "the metrics service's one writable directory"
vg_assert_eq "$(dirname "$service")" "$(dirname "$socket")" "service and socket unit directory"
vg_assert_eq /usr/lib/systemd/catalog/vpopguard.catalog "$catalog" "catalog path (journalctl reads only there)"
vg_assert_eq "$(cat "$build/units/vpopguard.service")" "$(cat "$root$service")" "installed service"
vg_assert_eq "ExecStart=$daemon" "$(grep '^ExecStart=' "$root$service")" "ExecStart= of the installed service"

# --- The units to check: as installed, with ExecStart= pointed at the installed daemon. Both in
# one directory, which verify adds to its unit search path, so the service finds its socket.
mkdir "$tmp/units"
sed "s|^ExecStart=$daemon\$|ExecStart=$root$daemon|" "$root$service" >"$tmp/units/vpopguard.service"
cp "$root$socket" "$tmp/units/vpopguard.socket"
grep -qxF "ExecStart=$root$daemon" "$tmp/units/vpopguard.service" || vg_fail "ExecStart= was not rewritten"
sed "s|^ExecStart=$ctl |ExecStart=$root$ctl |" "$root$metrics_service" >"$tmp/units/vpopguard-metrics.service"
cp "$root$metrics_timer" "$tmp/units/vpopguard-metrics.timer"
grep -q "^ExecStart=$root$ctl " "$tmp/units/vpopguard-metrics.service" || vg_fail "the metrics ExecStart= was not rewritten"

# verify runs man(1) for each man: link of Documentation=; let it find the pages just installed.
verify_args=()
man8=$(jq -r 'to_entries[] | select(.key | endswith("/man/vpopguardd.8")) | .value' "$tmp/installed.json")
if [[ -n $man8 ]] && command -v man >/dev/null; then
        export MANPATH=$root${man8%/man8/*}
else
        vg_skip_part "the man pages of Documentation= (none in this build, or no man(1)): verify runs with --man=no"
        verify_args+=(--man=no)
fi

# verify_output FILE...: everything systemd-analyze verify prints, stdout and stderr.
verify_output() {
        systemd-analyze verify "${verify_args[@]}" "$@" 2>&1 || true
}

# The check must be able to fail: a unit with an unknown key makes verify talk.
sed 's/^\[Service\]$/&\nNoSuchSetting=yes/' "$tmp/units/vpopguard.service" >"$tmp/broken.service"
[[ -n $(verify_output "$tmp/broken.service") ]] || vg_fail "verify is silent about an unknown key"

out=$(verify_output "$tmp/units/vpopguard.service" "$tmp/units/vpopguard.socket")
[[ -z $out ]] || vg_fail "systemd-analyze verify printed:"$'\n'"$out"
out=$(verify_output "$tmp/units/vpopguard-metrics.service" "$tmp/units/vpopguard-metrics.timer")
[[ -z $out ]] || vg_fail "systemd-analyze verify printed for the metrics units:"$'\n'"$out"
# verify_fleet_template TEMPLATE INSTANCE PROGRAM: the installed TEMPLATE as an instance, if the
# systemd program it runs is here. Its Documentation= names that program's man page too: the
# system's man pages as well.
verify_fleet_template() {
        local unit=$tmp/units/${1##*/}
        unit=${unit/@.service/@$2.service}
        if [[ -x $3 ]]; then
                cp "$root$1" "$unit"
                out=$(MANPATH=${MANPATH:-}: verify_output "$unit")
                [[ -z $out ]] || vg_fail "systemd-analyze verify printed for ${unit##*/}:"$'\n'"$out"
        else
                vg_skip_part "no $3: ${1##*/} is not verified"
        fi
}
# The fleet's templates: the upload to one host, the pull of one peer.
verify_fleet_template "$fleet_upload" 192.0.2.1 /lib/systemd/systemd-journal-upload
verify_fleet_template "$fleet_pull" collector /lib/systemd/systemd-journal-remote

# --- Exposure score.
# exposure UNIT: its overall exposure level, which must be at most max_exposure.
exposure() {
        local out tenths max_tenths score
        out=$(systemd-analyze security --offline=yes --no-pager "$tmp/units/$1" 2>&1) ||
                vg_fail "systemd-analyze security failed:"$'\n'"$out"
        [[ $out =~ Overall\ exposure\ level\ for\ ${1//./\\.}:\ ([0-9]+)\.([0-9]) ]] ||
                vg_fail "no exposure level in:"$'\n'"$out"
        score=${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
        tenths=$((10#${BASH_REMATCH[1]} * 10 + 10#${BASH_REMATCH[2]}))
        max_tenths=$((10#${max_exposure%.*} * 10 + 10#${max_exposure#*.}))
        ((tenths <= max_tenths)) || vg_fail "exposure level $score of $1 is above $max_exposure:"$'\n'"$out"
        echo "$score"
}
score=$(exposure vpopguard.service)
metrics_score=$(exposure vpopguard-metrics.service)
for setting in PrivateIPC=yes MemoryMax= TasksMax= 'RestrictAddressFamilies=AF_UNIX AF_NETLINK'; do
        grep -q "^$setting" "$tmp/units/vpopguard.service" || vg_fail "the service lacks $setting"
done
for setting in PrivateIPC=yes MemoryMax= TasksMax= 'RestrictAddressFamilies=AF_UNIX$' 'CapabilityBoundingSet=CAP_DAC_OVERRIDE$'; do
        grep -q "^$setting" "$tmp/units/vpopguard-metrics.service" || vg_fail "the metrics service lacks $setting"
done
vg_log "verify printed nothing; exposure level $score, of the metrics service $metrics_score"
