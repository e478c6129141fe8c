# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# A throwaway Debian 12 machine with systemd as PID 1, for tests that check vpopguard as an admin
# would see it. Source after tests/integration/lib.sh (for vg_log, vg_fail, vg_poll, vg_skip).
#
#       ns_prepare_root DIR      # unpack the cached bookworm tree (debootstrap on first use)
#       ns_boot DIR NAME LOG     # boot it; NS_PID is the container's PID 1
#       ns_run CMD...            # run CMD inside it (all its namespaces, a clean environment)
#       ns_poweroff              # orderly shutdown, SIGKILL after a deadline
#
# Powers: the container has its own root directory, journal and (--private-network) network
# namespace, so nothing it does reaches the host's journal or nftables ruleset. The host keeps
# only the cached tarball under NS_CACHE_DIR. The test's EXIT trap calls ns_poweroff, then
# removes the tree.

NS_CACHE_DIR=${VPOPGUARD_TEST_CACHE:-/var/cache/vpopguard-test}
NS_MIRROR=${VPOPGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NS_SUITE=bookworm
NS_PACKAGES=(systemd systemd-sysv dbus nftables libnftables1 libsystemd0 libpcre2-8-0 libjansson4
        procps iproute2 bsdutils)
NS_PID=              # the container's PID 1, as seen from the host
NS_NSPAWN_PID=       # systemd-nspawn itself
NS_LOG=              # nspawn's output (the container's console)

# ns__tarball: the cache file for this suite and package list (a new list makes a new cache).
ns__tarball() {
        local key
        key=$(printf '%s\n' "$NS_SUITE" "$NS_MIRROR" "${NS_PACKAGES[@]}" | sha256sum | cut -c1-12)
        echo "$NS_CACHE_DIR/$NS_SUITE-minbase-$key.tar.zst"
}

# ns__build_tarball FILE: debootstrap a minbase tree with NS_PACKAGES and pack it into FILE.
# Only in a subshell (it sets an EXIT trap).
ns__build_tarball() {
        local tarball=$1 dir
        dir=$(mktemp -d "$NS_CACHE_DIR/debootstrap.XXXXXX")
        # Runs in the flock subshell: an interrupted run leaves no half-made tree behind.
        # shellcheck disable=SC2064 # expand now
        trap "rm -rf --one-file-system -- '$dir' '$dir.log' '$tarball.tmp'" EXIT
        vg_log "debootstrap $NS_SUITE into $dir (once; cached as $tarball)"
        debootstrap --variant=minbase --include="$(IFS=,; echo "${NS_PACKAGES[*]}")" \
                "$NS_SUITE" "$dir" "$NS_MIRROR" >"$dir.log" 2>&1 ||
                vg_fail "debootstrap failed: $(tail -n 5 "$dir.log")"
        # Each container makes up its own machine ID at boot; the journal then stays persistent
        # across a reboot of the same tree (/var/log/journal exists).
        : >"$dir/etc/machine-id"
        chmod 0755 "$dir" # mktemp's 0700 would become the mode of the container's /
        mkdir -p "$dir/var/log/journal"
        rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
        tar -C "$dir" --numeric-owner --xattrs -I 'zstd -T0 -3' -cf "$tarball.tmp" . ||
                vg_fail "cannot pack $dir"
        mv "$tarball.tmp" "$tarball"
}

# ns_prepare_root DIR: DIR (new or empty) becomes a fresh copy of the cached tree.
ns_prepare_root() {
        local root=$1 tarball
        vg_require_commands debootstrap zstd tar flock systemd-nspawn nsenter pgrep
        tarball=$(ns__tarball)
        mkdir -p "$NS_CACHE_DIR" "$root"
        # Parallel runs (two build directories, two CI jobs on one machine) build it once.
        (
                flock 9
                [[ -s $tarball ]] || ns__build_tarball "$tarball"
        ) 9>"$NS_CACHE_DIR/.lock" || vg_fail "no cached tree"
        tar -C "$root" --numeric-owner --xattrs -I zstd -xf "$tarball" || vg_fail "cannot unpack $tarball"
        chmod 0755 "$root"
}

# ns__find_init: the container's PID 1 (the child of nspawn that is PID 1 in its namespace).
ns__find_init() {
        local p nspid
        for p in $(pgrep -P "$NS_NSPAWN_PID"); do
                nspid=$(awk '$1 == "NSpid:" { print $NF }' "/proc/$p/status" 2>/dev/null) || continue
                if [[ $nspid == 1 ]]; then
                        NS_PID=$p
                        return 0
                fi
        done
        return 1
}

ns__nspawn_alive() {
        kill -0 "$NS_NSPAWN_PID" 2>/dev/null ||
                vg_fail "systemd-nspawn exited: $(tail -n 20 "$NS_LOG")"
}

ns__manager_up() {
        ns__nspawn_alive
        [[ -n $NS_PID ]] || ns__find_init || return 1
        [[ -S /proc/$NS_PID/root/run/systemd/private ]]
}

# ns_boot DIR NAME LOG: boots DIR and waits until its systemd has finished starting up; the
# container's console goes to LOG.
ns_boot() {
        local root=$1 name=$2 state
        NS_LOG=$3
        NS_PID=
        # --keep-unit and --register=no: no machined or host bus here.
        systemd-nspawn -b -D "$root" -M "$name" --register=no --keep-unit --private-network \
                --console=read-only </dev/null >"$NS_LOG" 2>&1 &
        NS_NSPAWN_PID=$!
        vg_poll 30 ns__manager_up
        state=$(ns_run timeout 60 systemctl is-system-running --wait 2>/dev/null) || true
        [[ $state == running || $state == degraded ]] ||
                vg_fail "container did not boot ($state): $(tail -n 20 "$NS_LOG")"
        if [[ $state != running ]]; then
                vg_log "container degraded; failed units: $(ns_run systemctl --failed --no-legend --plain | tr '\n' ' ')"
        fi
}

# ns_run CMD...: CMD inside the container as root, with a minimal environment (nothing of the
# host's leaks in, e.g. SYSTEMD_* or LANG).
ns_run() {
        nsenter -t "$NS_PID" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb "$@"
}

ns__nspawn_gone() {
        ! kill -0 "$NS_NSPAWN_PID" 2>/dev/null
}

# ns_poweroff [SECONDS]: asks the container's systemd to power off (SIGRTMIN+4 to its PID 1) and
# waits for nspawn to exit; after SECONDS (default 30) kills PID 1, which ends every process in
# the container's PID namespace, and then nspawn.
ns_poweroff() {
        local limit=${1:-30} end
        [[ -n $NS_NSPAWN_PID ]] || return 0
        if [[ -n $NS_PID ]]; then
                kill -s RTMIN+4 "$NS_PID" 2>/dev/null || true
        else
                kill -TERM "$NS_NSPAWN_PID" 2>/dev/null || true
        fi
        end=$((SECONDS + limit))
        while ! ns__nspawn_gone && ((SECONDS < end)); do
                sleep 0.1
        done
        if ! ns__nspawn_gone; then
                vg_log "container did not power off within ${limit}s, killing it"
                [[ -z $NS_PID ]] || kill -KILL "$NS_PID" 2>/dev/null || true
                end=$((SECONDS + 10))
                while ! ns__nspawn_gone && ((SECONDS < end)); do
                        sleep 0.1
                done
                kill -KILL "$NS_NSPAWN_PID" 2>/dev/null || true
        fi
        wait "$NS_NSPAWN_PID" 2>/dev/null || true
        NS_NSPAWN_PID=
        NS_PID=
}
