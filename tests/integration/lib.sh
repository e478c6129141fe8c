# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Shared helpers for vpopguard's integration tests. A test script does:
#
#       set -euo pipefail
#       . "$(dirname "$0")/lib.sh"
#       vg_require_root_or_skip
#       vg_enter_namespaces "$@"      # re-executes the script; all below runs in private namespaces
#       vg_start_journald
#       vg_start_daemon "$tmp/daemon.log" "$(vg_daemon)" --config=...  # returns at its READY=1
#       ...                           # vg_daemon_ok, vg_reload_daemon, vg_kill9_daemon, vg_term_daemon
#
# Powers: after vg_enter_namespaces the script runs in its own mount, network and PID namespaces.
# The host's journal, nftables ruleset, /dev and /etc are never changed: every mount below is
# private to the mount namespace, and when the script (PID 1 of its PID namespace) exits, the
# kernel ends whatever it left behind and drops the namespaces with their mounts and rules.
#
# Do not install your own EXIT trap (it would replace the cleanup); use vg_on_exit instead.
# Exit codes follow meson/automake: 0 pass, 77 skip, anything else fail. Under CI=true nothing
# may be skipped: vg_skip and vg_skip_part fail the test instead.
#
# vpopguardd and vpopguardctl under a wrapper (tests/valgrind.sh sets these; without them
# nothing changes). Tests start both only through the paths vg_daemon and vg_ctl print.
#   VPOPGUARD_VALGRIND=1           run them under valgrind's memcheck, one log per process,
#                                  collected at exit into VPOPGUARD_VALGRIND_DIR (default
#                                  ${TMPDIR:-/tmp}/vpopguard-valgrind) as TEST.RUN.PROGRAM.PID.log;
#                                  suppressions from VPOPGUARD_VALGRIND_SUPP (default
#                                  tests/valgrind.supp), more options in VPOPGUARD_VALGRIND_OPTIONS
#   VPOPGUARD_WRAPPER="CMD ARG..." any other wrapper (split at blanks), e.g. "strace -o /tmp/st"
#   VPOPGUARD_TIMEOUT_FACTOR=N     multiplies the deadlines of vg_poll, vg_kill and vg_timeout
#                                  (default 1; 10 under valgrind, which is 20-50 times slower)

VG_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VG_SRC_DIR=$(cd "$VG_LIB_DIR/../.." && pwd) # the source tree, for fixtures
export VG_SRC_DIR
# The MESSAGE_ID= of the daemon's ban and unban events (src/journal-events.h).
VG_MESSAGE_BAN=7fc6f43d6e5d457ba31097a4cc519474
VG_MESSAGE_UNBAN=16f9f8826ed04c4b9f2a2591444632bc
VG_NFT_FAMILY=${VG_NFT_FAMILY:-inet}
VG_NFT_TABLE=${VG_NFT_TABLE:-vpopguard}
VG_JOURNALD_BIN=${VG_JOURNALD_BIN:-/lib/systemd/systemd-journald}
VG_JOURNAL_REMOTE_BIN=${VG_JOURNAL_REMOTE_BIN:-/lib/systemd/systemd-journal-remote}

VG_PIDS=()       # processes this script started, stopped at exit in reverse order
VG_MOUNTS=()     # mount points this script mounted, unmounted at exit in reverse order
VG_ON_EXIT=()    # commands registered with vg_on_exit, run first
VG_JOURNALD_CONF_LINES=()
VG_TMPDIR=${VG_TMPDIR:-}
VG_JOURNALD_PID=${VG_JOURNALD_PID:-}
VG_VALGRIND=${VPOPGUARD_VALGRIND:-}
[[ $VG_VALGRIND != 0 ]] || VG_VALGRIND=
VG_WRAP_DIR=/run/vg-wrap # in the private /run: wrapper scripts, copies of the programs, logs
VG_TIMEOUT_FACTOR=${VPOPGUARD_TIMEOUT_FACTOR:-}
if [[ -z $VG_TIMEOUT_FACTOR ]]; then
        VG_TIMEOUT_FACTOR=1
        [[ -z $VG_VALGRIND ]] || VG_TIMEOUT_FACTOR=10
fi

vg_log() {
        printf '%s: %s\n' "${0##*/}" "$*" >&2
}

vg_fail() {
        printf '%s: FAIL: %s\n' "${0##*/}" "$*" >&2
        exit 1
}

vg_skip() {
        if [[ ${CI:-} == true ]]; then
                vg_fail "would skip, but CI=true: $*"
        fi
        printf '%s: SKIP: %s\n' "${0##*/}" "$*" >&2
        exit 77
}

# vg_skip_part WHAT: part of the checks cannot run here (WHAT says which, and why); the rest goes
# on. Under CI=true, where nothing may be skipped, the test fails instead.
vg_skip_part() {
        if [[ ${CI:-} == true ]]; then
                vg_fail "would not check $*, but CI=true"
        fi
        printf '%s: SKIP (part): %s\n' "${0##*/}" "$*" >&2
}

[[ $VG_TIMEOUT_FACTOR =~ ^[1-9][0-9]{0,2}$ ]] ||
        vg_fail "VPOPGUARD_TIMEOUT_FACTOR='$VG_TIMEOUT_FACTOR' is not a whole number from 1 to 999"

vg_require_root_or_skip() {
        [[ $(id -u) -eq 0 ]] || vg_skip "needs root"
}

# vg_require_commands CMD...: skip (fail in CI) unless every CMD is available.
vg_require_commands() {
        local c
        for c in "$@"; do
                command -v "$c" >/dev/null 2>&1 || [[ -x $c ]] || vg_skip "missing $c"
        done
}

vg_assert_eq() {
        [[ $# -eq 3 ]] || vg_fail "usage: vg_assert_eq EXPECTED ACTUAL MESSAGE"
        [[ $1 == "$2" ]] || vg_fail "$3: expected '$1', got '$2'"
}

# vg_assert_files_eq EXPECTED_FILE ACTUAL_FILE MESSAGE: prints a diff on mismatch.
vg_assert_files_eq() {
        diff -u "$1" "$2" >&2 || vg_fail "$3: $1 and $2 differ"
}

# vg_on_exit COMMAND: runs COMMAND (a string for eval) at exit, before the processes are stopped.
vg_on_exit() {
        VG_ON_EXIT+=("$*")
}

# Milliseconds on the monotonic-enough bash clock, without forking date(1).
vg__now_ms() {
        local t=${EPOCHREALTIME/[.,]/}
        echo $((10#$t / 1000))
}

# vg_poll SECONDS CMD...: runs CMD until it succeeds; fails the test after SECONDS (may have a
# fraction, e.g. 0.5) times VPOPGUARD_TIMEOUT_FACTOR. Waits a little longer between tries, from
# 10 ms up to 200 ms.
vg_poll() {
        local limit=$1 end delay=0.01 scaled=
        shift
        [[ $limit =~ ^([0-9]+)(\.([0-9]{1,3}))?$ ]] || vg_fail "vg_poll: bad deadline '$limit'"
        local frac=${BASH_REMATCH[3]:-0}
        while ((${#frac} < 3)); do frac+=0; done
        end=$(($(vg__now_ms) + (10#${BASH_REMATCH[1]} * 1000 + 10#$frac) * VG_TIMEOUT_FACTOR))
        ((VG_TIMEOUT_FACTOR == 1)) || scaled=" x $VG_TIMEOUT_FACTOR"
        while :; do
                if "$@"; then
                        return 0
                fi
                (($(vg__now_ms) < end)) || vg_fail "timed out after ${limit}s$scaled waiting for: $*"
                sleep "$delay"
                case $delay in
                0.01) delay=0.02 ;; 0.02) delay=0.05 ;; 0.05) delay=0.1 ;; *) delay=0.2 ;;
                esac
        done
}

# vg_pid_alive PID: the process exists and is not a zombie (one that exited but was not reaped).
vg_pid_alive() {
        local state
        [[ -r /proc/$1/stat ]] || return 1
        state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
        [[ -n $state && $state != Z ]]
}

# vg_pid_exited PID: the opposite, for vg_poll.
vg_pid_exited() {
        ! vg_pid_alive "$1"
}

# vg_daemon_alive PID LOGFILE: fails the test, with the end of LOGFILE, if vpopguardd PID exited.
vg_daemon_alive() {
        vg_pid_alive "$1" || vg_fail "vpopguardd exited: $(tail -n 20 "$2" 2>/dev/null)"
}

# vg_stop_daemon PID LOGFILE [SECONDS]: SIGTERM to vpopguardd; it must exit with status 0 within
# SECONDS (default 10; it saves its state on the way out, and under the sanitizers a leak or error
# fails it). Reaps and untracks it.
vg_stop_daemon() {
        local pid=$1 log=$2 rc=0
        kill -TERM "$pid"
        vg_poll "${3:-10}" vg_pid_exited "$pid"
        wait "$pid" || rc=$?
        vg_kill "$pid" 1 # only forgets it: it has been reaped
        vg_assert_eq 0 "$rc" "exit status of vpopguardd after SIGTERM ($(tail -n 5 "$log" 2>/dev/null))"
}

# --- The daemon under test, one at a time: VG_DAEMON_PID and VG_DAEMON_LOG. Readiness is its
# READY=1 on a NOTIFY_SOCKET that the test reads, as systemd waits for a Type=notify service;
# never a line of its log.
VG_DAEMON_PID=
VG_DAEMON_LOG=
VG_NOTIFY_SOCKET=
VG_NOTIFY_LOG=

# Starts (once) the listener on VG_NOTIFY_SOCKET: each field of each datagram becomes a line
# "PID FIELD" of VG_NOTIFY_LOG, PID being the sender's, from its credentials.
vg__notify_listen() {
        local py=/usr/bin/python3
        [[ -z $VG_NOTIFY_SOCKET ]] || return 0
        [[ -n $VG_TMPDIR ]] || vg_fail "vg__notify_listen: call vg_enter_namespaces first"
        # Debian's python3 starts at once; a version manager's shim in front of it may take seconds.
        [[ -x $py ]] || py=python3
        vg_require_commands "$py"
        VG_NOTIFY_SOCKET=$VG_TMPDIR/notify.socket
        VG_NOTIFY_LOG=$VG_TMPDIR/notify.log
        : >"$VG_NOTIFY_LOG"
        # It closes what it inherited: a test's FIFO, say, must see EOF when the test closes it.
        vg_spawn "$VG_TMPDIR/notify-listener.log" "$py" -c '
import os, socket, struct, sys
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        data, ancillary, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(12))
        pid = 0
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", value[:12])[0]
        for field in data.decode(errors="replace").split("\n"):
            if field:
                f.write("%d %s\n" % (pid, field))
        f.flush()
' "$VG_NOTIFY_SOCKET" "$VG_NOTIFY_LOG"
        vg_poll 30 test -S "$VG_NOTIFY_SOCKET"
}

# vg_notify_fields [PID]: the fields that PID (default: the daemon) sent to NOTIFY_SOCKET, in
# order, one a line (READY=1, STATUS=..., ...).
# shellcheck disable=SC2120 # PID is optional
vg_notify_fields() {
        local pid=${1:-$VG_DAEMON_PID}
        [[ -n $VG_NOTIFY_LOG ]] || return 0
        sed -n "s/^$pid //p" "$VG_NOTIFY_LOG"
}

# vg_spawn_daemon LOGFILE CMD...: starts CMD, which is or execs vpopguardd (see vg_daemon), with
# NOTIFY_SOCKET set, as the daemon of the test; does not wait for it.
vg_spawn_daemon() {
        local log=$1
        shift
        vg__notify_listen
        vg_spawn "$log" env NOTIFY_SOCKET="$VG_NOTIFY_SOCKET" "$@"
        VG_DAEMON_PID=$VG_LAST_PID
        VG_DAEMON_LOG=$log
}

# vg_start_daemon LOGFILE CMD...: vg_spawn_daemon, then waits for its READY=1.
vg_start_daemon() {
        vg_spawn_daemon "$@"
        vg_poll 20 vg_daemon_running
}

# vg_start_daemon_n CMD...: vg_start_daemon with a log of its own for each start of the test,
# $tmp/daemon.N.log (N = 1, 2, ...), so that a restart keeps the earlier logs to read.
VG_DAEMON_STARTS=0
vg_start_daemon_n() {
        vg_start_daemon "$tmp/daemon.$((++VG_DAEMON_STARTS)).log" "$@"
}

# vg_daemon_ok: fails the test, with the end of its log, if the daemon exited.
vg_daemon_ok() {
        vg_daemon_alive "$VG_DAEMON_PID" "$VG_DAEMON_LOG"
}

# vg_daemon_ready: the daemon has sent READY=1.
vg_daemon_ready() {
        vg_notify_fields | grep -qx READY=1
}

# vg_daemon_running: the daemon has not exited (else the test fails) and has sent READY=1.
vg_daemon_running() {
        vg_daemon_ok
        vg_daemon_ready
}

# vg_daemon_readies: how many times the daemon has sent READY=1 (once at start, once after each
# reload, applied or refused).
vg_daemon_readies() {
        vg_notify_fields | grep -cx READY=1 || true
}

# vg_daemon_readies_above N: the daemon has sent READY=1 more than N times (and has not exited).
vg_daemon_readies_above() {
        vg_daemon_ok
        (($(vg_daemon_readies) > $1))
}

# vg_reload_daemon: SIGHUP, then waits until the reload is over (its READY=1).
vg_reload_daemon() {
        local n
        n=$(vg_daemon_readies)
        kill -HUP "$VG_DAEMON_PID"
        vg_poll 20 vg_daemon_readies_above "$n"
}

# vg_daemon_answers: the daemon has not exited (else the test fails) and answers vpopguardctl status.
vg_daemon_answers() {
        vg_daemon_ok
        "$ctl" status >/dev/null 2>&1
}

# vg_banned SET ADDRESS: the daemon has not exited (else the test fails) and ADDRESS is in SET.
vg_banned() {
        vg_daemon_ok
        vg_nft_set_has "$1" "$2"
}

# vg_kill9_daemon: SIGKILL to the daemon, which must die of it (not have exited on its own
# before); reaps and untracks it.
vg_kill9_daemon() {
        local rc=0
        kill -KILL "$VG_DAEMON_PID" 2>/dev/null || true
        wait "$VG_DAEMON_PID" 2>/dev/null || rc=$?
        vg_kill "$VG_DAEMON_PID" 1 # only forgets it: it has been reaped
        ((rc == 128 + 9)) ||
                vg_fail "vpopguardd exited with status $rc before SIGKILL: $(tail -n 20 "$VG_DAEMON_LOG" 2>/dev/null)"
        VG_DAEMON_PID=
}

# vg_term_daemon [SECONDS]: vg_stop_daemon for the daemon (SIGTERM, exit status 0).
# shellcheck disable=SC2120 # SECONDS is optional
vg_term_daemon() {
        vg_stop_daemon "$VG_DAEMON_PID" "$VG_DAEMON_LOG" "$@"
        VG_DAEMON_PID=
}

# vg_vpopmail_config CONF [SETTING...]: CONF with the SETTINGs (e.g. MaxRetry=3) in [Defaults],
# and the shipped vpopmail jail in CONF.d/. Unless a SETTING says IPv6Prefix=, IPv6 addresses
# count one by one (IPv6Prefix=128): the tests written before prefix bans check what happens to
# single addresses, several of them in one /64; test-ban-policy-prefix checks prefixes.
vg_vpopmail_config() {
        local conf=$1
        shift
        mkdir -p "$conf.d"
        cp "${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}/conf.d/10-vpopmail.conf" "$conf.d/" ||
                vg_fail "cannot copy the shipped jail"
        printf '[Defaults]\n' >"$conf"
        [[ " $* " == *" IPv6Prefix="* ]] || printf 'IPv6Prefix=128\n' >>"$conf"
        if (($#)); then
                printf '%s\n' "$@" >>"$conf"
        fi
}

# vg_timeout SECONDS CMD...: timeout(1) with SECONDS times VPOPGUARD_TIMEOUT_FACTOR.
vg_timeout() {
        local limit=$1
        shift
        [[ $limit =~ ^[0-9]+$ ]] || vg_fail "vg_timeout: bad deadline '$limit'"
        timeout "$((limit * VG_TIMEOUT_FACTOR))" "$@"
}

# vg_kill PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10, times
# VPOPGUARD_TIMEOUT_FACTOR); reaps and untracks it. Only for processes this script started (see
# vg_spawn).
vg_kill() {
        local pid=$1 limit=${2:-10} end i
        end=$(($(vg__now_ms) + limit * 1000 * VG_TIMEOUT_FACTOR))
        kill -TERM "$pid" 2>/dev/null || true
        while vg_pid_alive "$pid" && (($(vg__now_ms) < end)); do
                sleep 0.02
        done
        if vg_pid_alive "$pid"; then
                vg_log "process $pid ignored SIGTERM for ${limit}s, killing it"
                kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        for i in "${!VG_PIDS[@]}"; do
                [[ ${VG_PIDS[i]} != "$pid" ]] || unset 'VG_PIDS[i]'
        done
        VG_PIDS=("${VG_PIDS[@]}")
}

# vg_spawn LOGFILE CMD...: starts CMD in the background with stdout+stderr in LOGFILE and
# tracks it for cleanup. Its PID is in VG_LAST_PID (not printed: a $(...) would lose track).
vg_spawn() {
        local logfile=$1
        shift
        if [[ -n ${VG_HOST_NETNS_FD:-} ]]; then
                "$@" >"$logfile" 2>&1 </dev/null {VG_HOST_NETNS_FD}<&- &
        else
                "$@" >"$logfile" 2>&1 </dev/null &
        fi
        VG_LAST_PID=$!
        VG_PIDS+=("$VG_LAST_PID")
}

vg__cleanup() {
        local rc=$? i
        set +e
        trap - EXIT INT TERM
        # In subshells, so that a failing command cannot end the cleanup early.
        for ((i = ${#VG_ON_EXIT[@]} - 1; i >= 0; i--)); do
                (eval "${VG_ON_EXIT[i]}") || vg_log "exit command failed: ${VG_ON_EXIT[i]}"
        done
        for ((i = ${#VG_PIDS[@]} - 1; i >= 0; i--)); do
                vg_kill "${VG_PIDS[i]}" 5
        done
        vg__collect_wrapper_logs
        for ((i = ${#VG_MOUNTS[@]} - 1; i >= 0; i--)); do
                umount -l "${VG_MOUNTS[i]}" 2>/dev/null
        done
        if [[ -n $VG_TMPDIR && -d $VG_TMPDIR ]]; then
                if [[ $rc -ne 0 && $rc -ne 77 && -n ${VG_KEEP_TMPDIR:-} ]]; then
                        vg_log "keeping $VG_TMPDIR"
                else
                        # Never follow a bind mount that survived into the host's files.
                        rm -rf --one-file-system -- "$VG_TMPDIR"
                fi
        fi
        exit "$rc"
}

vg__mount() {
        local target=${*: -1}
        mount "$@" || vg_fail "mount $* failed"
        VG_MOUNTS+=("$target")
}

# vg_enter_namespaces "$@": re-executes the calling script in new mount (private propagation),
# network and PID namespaces, brings up lo, creates VG_TMPDIR and installs the cleanup trap.
# A file descriptor on the host's network namespace stays open as VG_HOST_NETNS_FD, so that
# tests can show (read only) that nothing leaked to the host; vg_spawn'ed processes do not get it.
vg_enter_namespaces() {
        if [[ ${VG_IN_NAMESPACES:-} != 1 ]]; then
                vg_require_commands unshare ip
                exec {VG_HOST_NETNS_FD}</proc/self/ns/net
                export VG_HOST_NETNS_FD VG_IN_NAMESPACES=1
                exec unshare --mount --propagation private --net --pid --fork --kill-child --mount-proc \
                        -- "$BASH" "$0" "$@"
        fi
        # A test started from inside another test gets namespaces of its own.
        unset VG_IN_NAMESPACES
        trap vg__cleanup EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        ip link set lo up || vg_fail "cannot bring up lo"
        # A private /run: the daemon binds its varlink socket under /run/vpopguard by default,
        # and journald lives under /run/systemd and /run/log; none of it may reach the host.
        mount -t tmpfs -o mode=0755 vg-run /run || vg_fail "cannot mount a private /run"
        mkdir -p /run/systemd /run/log /run/vpopguard
        VG_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/vpopguard-test.XXXXXX") || vg_fail "mktemp failed"
        export VG_TMPDIR
}

# vg_begin NAME "$@": how a test that runs vpopguardd begins: root (else it skips), namespaces
# of its own (vg_enter_namespaces), then the variables every such test uses: daemon (vg_daemon),
# ctl (vg_ctl) and tmp (vg_tmpdir NAME).
vg_begin() {
        local name=$1
        shift
        vg_require_root_or_skip
        vg_enter_namespaces "$@"
        daemon=$(vg_daemon)
        ctl=$(vg_ctl)
        tmp=$(vg_tmpdir "$name")
}

# vg_tmpdir [NAME]: prints the per-test temporary directory, or a new subdirectory NAME of it.
# Everything in it is removed at exit (kept on failure if VG_KEEP_TMPDIR is set).
vg_tmpdir() {
        [[ -n $VG_TMPDIR ]] || vg_fail "vg_tmpdir: call vg_enter_namespaces first"
        if [[ $# -eq 0 ]]; then
                echo "$VG_TMPDIR"
                return
        fi
        mkdir -p -- "$VG_TMPDIR/$1" && echo "$VG_TMPDIR/$1"
}

# Gives the namespace a /dev/log that leads to our journald without touching the host's /dev:
# an overlay on /dev whose upper layer holds the symlink, with /dev's submounts moved on top.
vg__setup_dev_log() {
        local dir=$VG_TMPDIR/.dev-overlay sub i=0 subs=()
        [[ $(readlink /dev/log 2>/dev/null) != /run/systemd/journal/dev-log ]] || return 0
        mkdir -p "$dir"
        vg__mount -t tmpfs -o mode=0755 vg-dev "$dir"
        mkdir -p "$dir/upper" "$dir/work"
        while read -r sub; do
                [[ ${sub%/*} == /dev && $sub != /dev ]] || continue
                [[ " ${subs[*]} " != *" $sub "* ]] || continue
                subs+=("$sub")
                mkdir -p "$dir/sub$i"
                vg__mount --rbind "$sub" "$dir/sub$((i++))"
        done < <(findmnt -rn -o TARGET -R /dev)
        vg__mount -t overlay vg-dev -o "lowerdir=/dev,upperdir=$dir/upper,workdir=$dir/work" /dev
        for i in "${!subs[@]}"; do
                mount --move "$dir/sub$i" "${subs[i]}" || vg_fail "cannot move ${subs[i]}"
        done
        ln -sfn /run/systemd/journal/dev-log /dev/log
}

vg__hide_dir() {
        [[ -d $1 ]] || return 0
        vg__mount -t tmpfs -o mode=0755,ro vg-empty "$1"
}

# vg_start_journald [LINE...]: a private systemd-journald with RateLimitBurst=0 and
# Storage=persistent (files in /var/log/journal/MACHINE-ID/, so journalctl --rotate, --sync,
# --vacuum-* and the daemon see what a real system has). Each LINE is added to [Journal], e.g.
# "SystemMaxFileSize=1M"; without LINEs the previous call's are kept. The first call sets up the
# mounts; later calls (after vg_stop_journald) reuse them and keep the journal files. Exports
# VG_JOURNALD_PID.
# shellcheck disable=SC2120 # LINEs are optional
vg_start_journald() {
        local conf=$VG_TMPDIR/journald.conf line
        [[ -n $VG_TMPDIR ]] || vg_fail "vg_start_journald: call vg_enter_namespaces first"
        [[ -z $VG_JOURNALD_PID ]] || vg_fail "journald is already running as $VG_JOURNALD_PID"
        vg_require_commands "$VG_JOURNALD_BIN" journalctl logger setpriv findmnt timeout

        [[ $# -eq 0 ]] || VG_JOURNALD_CONF_LINES=("$@")
        {
                echo "[Journal]"
                echo "Storage=persistent"
                echo "RateLimitIntervalSec=0"
                echo "RateLimitBurst=0"
                echo "ReadKMsg=no"
                echo "ForwardToSyslog=no"
                echo "ForwardToKMsg=no"
                echo "ForwardToConsole=no"
                echo "ForwardToWall=no"
                for line in "${VG_JOURNALD_CONF_LINES[@]}"; do
                        echo "$line"
                done
        } >"$conf"

        if [[ -z ${VG_JOURNALD_MOUNTED:-} ]]; then
                vg__mount -t tmpfs -o mode=0755 vg-run-systemd /run/systemd
                vg__mount -t tmpfs -o mode=0755 vg-run-log /run/log
                if [[ -d /var/log/journal ]]; then
                        vg__mount -t tmpfs -o mode=2755 vg-journal /var/log/journal
                else
                        vg__mount -t tmpfs -o mode=0755 vg-var-log /var/log
                        mkdir -p /var/log/journal
                fi
                if [[ -e /etc/systemd/journald.conf ]]; then
                        vg__mount --bind "$conf" /etc/systemd/journald.conf
                else
                        vg__mount -t tmpfs -o mode=0755 vg-etc-systemd /etc/systemd
                        ln -s "$conf" /etc/systemd/journald.conf
                fi
                for line in /etc/systemd/journald.conf.d /usr/lib/systemd/journald.conf.d \
                        /usr/local/lib/systemd/journald.conf.d /lib/systemd/journald.conf.d; do
                        vg__hide_dir "$line"
                done
                vg__setup_dev_log
                VG_JOURNALD_MOUNTED=1
        fi

        mkdir -p /run/systemd/journal
        # Sockets left by a previous instance would make the wait below pass too early.
        rm -f /run/systemd/journal/{socket,stdout,dev-log,io.systemd.journal}
        # Write to /var/log/journal at once, as after systemd-journal-flush.service.
        touch /run/systemd/journal/flushed
        vg_spawn "$VG_TMPDIR/journald.log" "$VG_JOURNALD_BIN"
        VG_JOURNALD_PID=$VG_LAST_PID
        export VG_JOURNALD_PID
        vg_poll 10 vg__journald_listening
        timeout 10 journalctl --sync || vg_fail "journald does not answer (see $VG_TMPDIR/journald.log)"
}

vg__journald_listening() {
        vg_pid_alive "$VG_JOURNALD_PID" || vg_fail "journald exited: $(cat "$VG_TMPDIR/journald.log")"
        [[ -S /run/systemd/journal/socket && -S /run/systemd/journal/stdout &&
                -S /run/systemd/journal/dev-log && -S /run/systemd/journal/io.systemd.journal ]]
}

vg_stop_journald() {
        [[ -n $VG_JOURNALD_PID ]] || vg_fail "vg_stop_journald: journald is not running"
        vg_kill "$VG_JOURNALD_PID"
        VG_JOURNALD_PID=
}

vg_restart_journald() {
        vg_stop_journald
        # shellcheck disable=SC2119 # keeps the LINEs of the previous start
        vg_start_journald
}

# Everything logged before this returns is in the journal files (journald's Synchronize call).
vg_journal_sync() {
        timeout 10 journalctl --sync || vg_fail "journalctl --sync failed"
}

# vg_log_vpopmail MESSAGE: logs like vchkpw (syslog socket, mail.notice, with PID) as root.
vg_log_vpopmail() {
        logger --socket-errors=on --id -p mail.notice -t vpopmail -- "$1" ||
                vg_fail "logger failed"
}

# vg_log_failures ADDRESS [COUNT]: COUNT (default 3, the tests' MaxRetry) failed logins from
# ADDRESS, as vchkpw logs them.
vg_log_failures() {
        local i
        for ((i = 0; i < ${2:-3}; i++)); do
                vg_log_vpopmail "vchkpw-pop3: password fail joe@example.com:$1"
        done
}

# vg_log_vpopmail_as_uid UID MESSAGE: the same line written by an unprivileged local user.
vg_log_vpopmail_as_uid() {
        setpriv --reuid="$1" --regid="$1" --clear-groups \
                logger --socket-errors=on --id -p mail.notice -t vpopmail -- "$2" ||
                vg_fail "logger as uid $1 failed"
}

# vg_journal_has MATCH...: true if journalctl finds at least one entry for the matches
# (e.g. SYSLOG_IDENTIFIER=vpopmail "MESSAGE=..."). For vg_poll.
vg_journal_has() {
        [[ -n $(journalctl -q --no-pager -n 1 -o export "$@" 2>/dev/null) ]]
}

# vg_loadgen: path of the load generator, from VPOPGUARD_LOADGEN or VPOPGUARD_BUILD_DIR.
vg_loadgen() {
        local p=${VPOPGUARD_LOADGEN:-${VPOPGUARD_BUILD_DIR:-}/tests/loadgen/vpopguard-loadgen}
        [[ -x $p ]] || vg_skip "no load generator at '$p' (set VPOPGUARD_BUILD_DIR or VPOPGUARD_LOADGEN)"
        echo "$p"
}

# vg_daemon: path of vpopguardd, from VPOPGUARD_BUILD_DIR (or of its wrapper, see the top).
vg_daemon() {
        local p=${VPOPGUARD_BUILD_DIR:-}/src/vpopguardd
        [[ -x $p ]] || vg_skip "no daemon at '$p' (set VPOPGUARD_BUILD_DIR)"
        vg__wrapped vpopguardd "$p"
}

# vg_ctl: path of vpopguardctl, from VPOPGUARD_BUILD_DIR (or of its wrapper, see the top).
vg_ctl() {
        local p=${VPOPGUARD_BUILD_DIR:-}/src/vpopguardctl
        [[ -x $p ]] || vg_skip "no vpopguardctl at '$p' (set VPOPGUARD_BUILD_DIR)"
        vg__wrapped vpopguardctl "$p"
}

# vg__wrapped NAME PATH: prints PATH, or under a wrapper the path of a script that runs a copy
# of PATH under it. All of it lives in the private /run, where every user may run it (the build
# and temporary directories may be closed to them); valgrind's logs and temporary files go there
# too (mode 1777, as vpopguardctl also runs as other UIDs), the logs until vg__cleanup copies them
# out. Runs in $(...): it keeps nothing but files.
vg__wrapped() {
        local name=$1 real=$2 dir=$VG_WRAP_DIR run cmd=() supp opts=()
        if [[ -z $VG_VALGRIND && -z ${VPOPGUARD_WRAPPER:-} ]]; then
                echo "$real"
                return
        fi
        [[ -n $VG_TMPDIR ]] || vg_fail "$name under a wrapper: call vg_enter_namespaces first"
        if [[ ! -x $dir/$name ]]; then
                mkdir -p "$dir/bin" "$dir/log" "$dir/tmp" || vg_fail "cannot create $dir"
                chmod 0755 "$dir" "$dir/bin" || vg_fail "chmod in $dir failed"
                chmod 1777 "$dir/log" "$dir/tmp" || vg_fail "chmod in $dir failed"
                cp "$real" "$dir/bin/$name" || vg_fail "cannot copy $real"
                if [[ -n $VG_VALGRIND ]]; then
                        vg_require_commands valgrind
                        supp=${VPOPGUARD_VALGRIND_SUPP:-$VG_SRC_DIR/tests/valgrind.supp}
                        [[ -r $supp ]] || vg_fail "no valgrind suppressions at '$supp'"
                        # A copy in /run: UID 1000 cannot read the temporary directory.
                        cp "$supp" "$dir/valgrind.supp" || vg_fail "cannot copy $supp"
                        chmod 0644 "$dir/valgrind.supp"
                        run=${VG_TMPDIR##*.}
                        read -ra opts <<<"${VPOPGUARD_VALGRIND_OPTIONS:-}"
                        # Every error, definite leaks included, comes with a suppression block:
                        # tests/valgrind.sh counts those, which works in the logs of processes
                        # killed before their ERROR SUMMARY, too. No vgdb: a killed process would
                        # leave its FIFOs in $TMPDIR.
                        cmd=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite
                                --errors-for-leak-kinds=definite --track-origins=yes --num-callers=30
                                --gen-suppressions=all --vgdb=no --suppressions="$dir/valgrind.supp"
                                --log-file="$dir/log/${0##*/}.$run.$name.%p.log" "${opts[@]}")
                        # valgrind writes files to $TMPDIR at start; a TMPDIR of root's would
                        # stop it as UID 1000.
                        cmd=(env TMPDIR="$dir/tmp" "$(command -v valgrind)" "${cmd[@]:1}")
                else
                        read -ra cmd <<<"$VPOPGUARD_WRAPPER"
                fi
                {
                        printf '#!/bin/bash\nexec'
                        printf ' %q' "${cmd[@]}" "$dir/bin/$name"
                        printf ' "$@"\n'
                } >"$dir/.$name" || vg_fail "cannot write $dir/$name"
                chmod 0755 "$dir/.$name" || vg_fail "cannot write $dir/$name"
                mv "$dir/.$name" "$dir/$name" || vg_fail "cannot write $dir/$name"
        fi
        echo "$dir/$name"
}

# Copies valgrind's logs out of the private /run before it goes away (in vg__cleanup, once the
# processes are stopped).
vg__collect_wrapper_logs() {
        local out=${VPOPGUARD_VALGRIND_DIR:-${TMPDIR:-/tmp}/vpopguard-valgrind} logs
        [[ -n $VG_VALGRIND && -n $VG_TMPDIR && -d $VG_WRAP_DIR/log ]] || return 0
        logs=("$VG_WRAP_DIR"/log/*.log)
        [[ -e ${logs[0]} ]] || return 0
        if ! mkdir -p -- "$out" || ! cp -- "${logs[@]}" "$out/"; then
                vg_log "cannot copy valgrind's logs to $out"
        fi
}

# vg_comm PID: the program name of PID as /proc/PID/comm gives it, also under valgrind (whose
# process is named after the tool, memcheck-amd64-): empty if PID is gone.
vg_comm() {
        local comm a args=()
        comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 0
        if [[ -n $VG_VALGRIND && $comm == memcheck-* ]]; then
                mapfile -d '' -t args 2>/dev/null <"/proc/$1/cmdline" || true
                # valgrind's options, then the program.
                for a in "${args[@]:1}"; do
                        [[ $a == -* ]] || { comm=${a##*/}; break; }
                done
        fi
        echo "${comm:0:15}"
}

# vg_export_to_journal FILE.journal: journal export format on stdin into a journal file
# (systemd-journal-remote rotates large outputs into FILE@....journal next to it).
vg_export_to_journal() {
        vg_require_commands "$VG_JOURNAL_REMOTE_BIN"
        "$VG_JOURNAL_REMOTE_BIN" --output="$1" - 2>"$1.log" ||
                vg_fail "systemd-journal-remote failed: $(tail -n 5 "$1.log")"
}

# Prints the elements of SET, or returns 1 if there is no such set.
vg__nft_set_elements() {
        local json
        json=$(nft -j list set "$VG_NFT_FAMILY" "$VG_NFT_TABLE" "$1" 2>/dev/null) || return 1
        jq -r '.nftables[] | select(.set) | .set.elem // [] | .[]
                | if type == "object" and has("elem") then .elem.val else . end
                | if type == "object" and has("prefix") then "\(.prefix.addr)/\(.prefix.len)" else . end
                | tostring' <<<"$json" | LC_ALL=C sort
}

# vg_nft_set_elements SET: the elements of SET in table $VG_NFT_FAMILY $VG_NFT_TABLE, one per
# line, sorted as LC_ALL=C sort does (prefixes as ADDR/LEN). Fails if the set does not exist.
vg_nft_set_elements() {
        vg_require_commands nft jq
        vg__nft_set_elements "$1" || vg_fail "no set $VG_NFT_FAMILY $VG_NFT_TABLE $1"
}

# vg_nft_set_has SET ADDRESS: true if ADDRESS (as nft prints it) is an element of SET; false
# also while the set does not exist yet, so that it can be polled.
vg_nft_set_has() {
        local elements
        vg_require_commands nft jq
        elements=$(vg__nft_set_elements "$1") || return 1
        grep -qxF -- "$2" <<<"$elements"
}

# vg_nft_element_timeout SET ADDRESS: ADDRESS's timeout in SET as nft reports it (whole
# seconds), "none" for an element without one, "absent" if SET has no such element (or no SET).
vg_nft_element_timeout() {
        vg_require_commands nft jq
        nft -j list set "$VG_NFT_FAMILY" "$VG_NFT_TABLE" "$1" 2>/dev/null |
                jq -r --arg a "$2" '[.nftables[] | .set.elem? // [] | .[] | .elem? // {val: .}
                        | select(.val == $a) | (.timeout // "none" | tostring)] | first // "absent"'
}

# vg_host_nft_tables: the host's tables as "FAMILY NAME" lines, read only (nft list tables).
vg_host_nft_tables() {
        [[ -n ${VG_HOST_NETNS_FD:-} ]] || vg_fail "no handle on the host network namespace"
        nsenter --net="/proc/self/fd/$VG_HOST_NETNS_FD" nft list tables |
                sed -n 's/^table \([a-z0-9]*\) \(.*\)$/\1 \2/p'
}
