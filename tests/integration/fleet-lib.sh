# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# A vpopguard fleet for tests and benchmarks: a collector and hosts, each in network and mount
# namespaces of its own (one bridge between them) with its own journald, vpopguardd and nft set,
# wired with systemd-journal-upload and systemd-journal-remote over HTTPS with certificates made
# here. Sourced after lib.sh and vg_begin (it uses $tmp, $daemon and $ctl); fleet_up starts it.

T=30
NET=10.77.0
COLLECTOR=$NET.1
HOSTS=(host1 host2 host3)
declare -A IP=([collector]=$NET.1 [host1]=$NET.11 [host2]=$NET.12 [host3]=$NET.13 [intruder]=$NET.99)
declare -A HOLDER=() # node -> PID whose mount and network namespaces are the node's
declare -A GUARD=()  # node -> vpopguardd's PID
declare -A REMOTE=() # node -> systemd-journal-remote's PID
declare -A UPLOAD=() # "from>to" -> systemd-journal-upload's PID

vg_require_commands nft jq logger journalctl setpriv openssl ip nsenter "$VG_JOURNAL_REMOTE_BIN" \
        /lib/systemd/systemd-journal-upload

# --- Certificates: a test CA, one certificate per node for its address (the uploads check the
# receiver's; the receivers cannot check the senders').
pki=$tmp/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=vg-fleet-ca \
        -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>"$pki/openssl.log" || vg_fail "openssl: $(cat "$pki/openssl.log")"
for node in "${!IP[@]}"; do
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$node" \
                -keyout "$pki/$node.key" -out "$pki/$node.csr" 2>>"$pki/openssl.log" &&
                printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "${IP[$node]}" >"$pki/$node.ext" &&
                openssl x509 -req -in "$pki/$node.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
                        -days 2 -extfile "$pki/$node.ext" -out "$pki/$node.pem" 2>>"$pki/openssl.log" ||
                vg_fail "openssl for $node: $(cat "$pki/openssl.log")"
done

# --- Nodes.
ip link add vgfleet type bridge || vg_fail "cannot create a bridge"
ip link set vgfleet up

# on NODE CMD...: runs CMD in NODE's namespaces.
on() {
        local node=$1
        shift
        nsenter -t "${HOLDER[$node]}" -m -n -- "$@"
}

# node_up NODE: its network namespace on the bridge, its mount namespace (a private /run, journal
# directories, journald.conf and machine ID), and its journald.
node_up() {
        local node=$1 dir
        dir=$tmp/$node
        mkdir -p "$dir"
        ip netns add "$node" || vg_fail "ip netns add $node"
        ip link add "vg-$node" type veth peer name eth0 netns "$node" || vg_fail "veth for $node"
        ip link set "vg-$node" master vgfleet up
        ip -n "$node" addr add "${IP[$node]}/24" dev eth0
        ip -n "$node" link set eth0 up
        ip -n "$node" link set lo up
        printf '[Journal]\nStorage=persistent\nRateLimitIntervalSec=0\nRateLimitBurst=0\nReadKMsg=no\n' >"$dir/journald.conf"
        printf 'ForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\n' >>"$dir/journald.conf"
        od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$dir/machine-id"
        echo >>"$dir/machine-id"
        # The holder sets the mounts up in a mount namespace of its own, then waits to be used. Not
        # ip netns exec: it mounts a sysfs without /sys/fs/cgroup, and journald needs that.
        vg_spawn "$dir/holder.log" nsenter --net="/run/netns/$node" -- unshare --mount --propagation private -- bash -c '
                set -e
                for d in /run/systemd /run/log /run/vpopguard /var/log/journal; do
                        mkdir -p "$d"
                        mount -t tmpfs -o mode=0755 "fleet-$d" "$d"
                done
                mkdir -p /run/systemd/journal /var/log/journal/remote
                touch /run/systemd/journal/flushed
                if [[ -e /etc/systemd/journald.conf ]]; then
                        mount --bind "$1/journald.conf" /etc/systemd/journald.conf
                else
                        mount -t tmpfs -o mode=0755 fleet-etc-systemd /etc/systemd
                        cp "$1/journald.conf" /etc/systemd/journald.conf
                fi
                for d in /etc/systemd/journald.conf.d /usr/lib/systemd/journald.conf.d /lib/systemd/journald.conf.d; do
                        [[ ! -d $d ]] || mount -t tmpfs -o ro fleet-empty "$d"
                done
                mount --bind "$1/machine-id" /etc/machine-id
                touch "$1/ready"
                exec sleep infinity' fleet-holder "$dir"
        HOLDER[$node]=$VG_LAST_PID
        vg_poll $T test -e "$dir/ready"
        vg_spawn "$dir/journald.log" nsenter -t "${HOLDER[$node]}" -m -n -- "$VG_JOURNALD_BIN"
        vg_poll $T on "$node" test -S /run/systemd/journal/socket -a -S /run/systemd/journal/dev-log
}

# remote_up NODE: its systemd-journal-remote, one file per sender in /var/log/journal/remote.
remote_up() {
        local node=$1
        vg_spawn "$tmp/$node/remote.log" nsenter -t "${HOLDER[$1]}" -m -n -- "$VG_JOURNAL_REMOTE_BIN" \
                --listen-https="${IP[$node]}:19532" --key="$pki/$node.key" --cert="$pki/$node.pem" \
                --split-mode=host --output=/var/log/journal/remote/
        REMOTE[$node]=$VG_LAST_PID
}

# upload_up FROM TO: FROM's journal to TO's journal-remote, resuming after the cursor it saved.
upload_up() {
        local from=$1 to=$2
        vg_spawn "$tmp/$from/upload-$to.log" nsenter -t "${HOLDER[$from]}" -m -n -- \
                /lib/systemd/systemd-journal-upload --url="https://${IP[$to]}:19532" --key="$pki/$from.key" \
                --cert="$pki/$from.pem" --trust="$pki/ca.pem" --save-state="$tmp/$from/upload-$to.state" --follow
        UPLOAD[$from>$to]=$VG_LAST_PID
}

# guard_up NODE [OPTION...]: its vpopguardd; returns once it answers.
guard_up() {
        local node=$1
        shift
        # The newest log is daemon.log, the earlier ones are kept as daemon.log.N.
        [[ ! -e $tmp/$node/daemon.log ]] || mv "$tmp/$node/daemon.log" "$tmp/$node/daemon.log.$((++starts))"
        vg_spawn "$tmp/$node/daemon.log" nsenter -t "${HOLDER[$node]}" -m -n -- "$daemon" \
                --config="$tmp/$node/vpopguard.conf" --state-directory="$tmp/$node/state" "$@"
        GUARD[$node]=$VG_LAST_PID
        vg_poll $T guard_answers "$node"
}
starts=0

guard_answers() {
        vg_daemon_alive "${GUARD[$1]}" "$tmp/$1/daemon.log"
        on "$1" "$ctl" status >/dev/null 2>&1
}

# --- Checks, for vg_poll.
banned_on() { # NODE ADDRESS
        vg_daemon_alive "${GUARD[$1]}" "$tmp/$1/daemon.log"
        on "$1" nft -j list set inet vpopguard banned4 2>/dev/null |
                jq -e --arg a "$2" '[.nftables[] | .set.elem? // [] | .[] | .elem?.val // .] | index($a) != null' >/dev/null
}
not_banned_on() {
        ! banned_on "$@"
}
banned_everywhere() {
        local node
        for node in collector "${HOSTS[@]}"; do
                banned_on "$node" "$1" || return 1
        done
}
banned_nowhere() {
        local node
        for node in collector "${HOSTS[@]}"; do
                not_banned_on "$node" "$1" || return 1
        done
}
# ban_events NODE ADDRESS: how many ban events NODE's vpopguardd logged for ADDRESS.
ban_events() {
        on "$1" journalctl -q -o cat MESSAGE_ID=$VG_MESSAGE_BAN VPOPGUARD_ADDRESS="$2" | wc -l
}
# ban_field NODE ADDRESS FIELD: FIELD of the ban of ADDRESS in NODE's ListBans.
ban_field() {
        on "$1" "$ctl" --json bans | jq -r --arg a "$2" --arg f "$3" '.bans[] | select(.address == $a) | .[$f]'
}
has_file() { # NODE SENDER
        on "$1" test -s "/var/log/journal/remote/remote-${IP[$2]}.journal"
}

fail_on() { # NODE ADDRESS COUNT
        local i
        for ((i = 0; i < $3; i++)); do
                on "$1" logger --socket-errors=on -u /run/systemd/journal/dev-log --id -p mail.notice -t vpopmail \
                        -- "vchkpw-pop3: password fail joe@example.com:$2" || vg_fail "logger on $1 failed"
        done
}

# forge NODE UID ADDRESS: a ban event for ADDRESS as vpopguardd would log it, by UID on NODE.
forge() {
        local now
        now=$(date +%s%6N)
        printf '%s\n' "MESSAGE_ID=$VG_MESSAGE_BAN" "MESSAGE=Banned $3 for 1h (jail vpopmail): forged." \
                "VPOPGUARD_JAIL=vpopmail" "VPOPGUARD_ADDRESS=$3" "VPOPGUARD_PREFIX=$3/32" "VPOPGUARD_FAILURES=5" \
                "VPOPGUARD_BAN_USEC=3600000000" "VPOPGUARD_BANNED_USEC=$now" \
                "VPOPGUARD_EXPIRES_USEC=$((now + 3600000000))" "VPOPGUARD_ORIGIN=journal" "SYSLOG_IDENTIFIER=vpopguardd" |
                on "$1" setpriv --reuid="$2" --regid="$2" --clear-groups logger --journald ||
                vg_fail "forging on $1 as $2 failed"
}

# fleet_up [SETTING...]: every node up with the SETTINGs in each vpopguardd's [Defaults] (the
# vpopmail jail); the collector lists the hosts (CountFailures=yes, Relay=yes), the hosts the
# collector; returns once each side has the other's file.
fleet_up() {
        local node peers=
        for node in collector "${HOSTS[@]}" intruder; do
                node_up "$node"
        done
        for node in "${HOSTS[@]}"; do
                peers+=" ${IP[$node]}"
        done
        for node in collector "${HOSTS[@]}"; do
                vg_vpopmail_config "$tmp/$node/vpopguard.conf" "$@"
                {
                        printf '\n[Fleet]\n'
                        if [[ $node == collector ]]; then
                                printf 'Peer=%s\nRelay=yes\nCountFailures=yes\n' "$peers"
                        else
                                printf 'Peer=%s\n' "$COLLECTOR"
                        fi
                } >>"$tmp/$node/vpopguard.conf"
        done
        for node in collector "${HOSTS[@]}"; do
                remote_up "$node"
        done
        guard_up collector
        for node in "${HOSTS[@]}"; do
                guard_up "$node"
        done
        for node in "${HOSTS[@]}"; do
                upload_up "$node" collector
                upload_up collector "$node"
        done
        # The collector logs nothing by itself yet: a first entry opens each host's file of it.
        on collector logger --socket-errors=on -u /run/systemd/journal/dev-log -t fleet-test "the collector is up" ||
                vg_fail "logger on the collector failed"
        for node in "${HOSTS[@]}"; do
                vg_poll $T has_file collector "$node"
                vg_poll $T has_file "$node" collector
        done
}
