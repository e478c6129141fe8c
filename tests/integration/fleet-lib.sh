# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# A vpopguard fleet for tests and benchmarks: a collector and hosts, each in network and mount
# namespaces of its own (one bridge between them) with its own journald, vpopguardd and nft set,
# wired over HTTPS with certificates made here, in one of two ways:
#   push: systemd-journal-upload to systemd-journal-remote --split-mode=host (peers by address);
#   pull: systemd-journal-remote with our getter from systemd-journal-gatewayd (peers by name).
# Sourced after lib.sh and vg_begin (it uses $tmp, $daemon and $ctl); fleet_up starts it.

T=30
NET=10.77.0
HOSTS=(host1 host2 host3)
declare -A IP=([collector]=$NET.1 [host1]=$NET.11 [host2]=$NET.12 [host3]=$NET.13 [intruder]=$NET.99)
declare -A HOLDER=() # node -> PID whose mount and network namespaces are the node's
declare -A GUARD=()  # node -> vpopguardd's PID
declare -A REMOTE=() # node -> systemd-journal-remote's PID
declare -A UPLOAD=() # "from>to" -> systemd-journal-upload's PID
declare -A GATEWAY=() # node -> systemd-journal-gatewayd's PID
declare -A PULL=()   # "reader<peer" -> the PID of the loop that runs (and restarts) that pull
FLEET_MODE=push
getter=${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}/src/vpopguard-fleet-pull.sh

vg_require_commands nft jq logger journalctl setpriv openssl ip nsenter curl "$VG_JOURNAL_REMOTE_BIN" \
        /lib/systemd/systemd-journal-upload /lib/systemd/systemd-journal-gatewayd

# --- Certificates: a test CA, one certificate per node for its name and address (the uploads
# and the pulls check the server's; the servers cannot check the clients'). Besides, a CA that
# every node's system trusts (/etc/ssl/certs), as it trusts the public ones: not the fleet's.
pki=$tmp/pki
mkdir -p "$pki" "$pki/system"
# make_ca NAME: $pki/NAME.pem and .key.
make_ca() {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=vg-$1" \
                -keyout "$pki/$1.key" -out "$pki/$1.pem" 2>"$pki/openssl.log" || vg_fail "openssl: $(cat "$pki/openssl.log")"
}
# make_cert NAME CA SAN: $pki/NAME.pem and .key, signed by CA, for the subjectAltName SAN.
make_cert() {
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
                -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>>"$pki/openssl.log" &&
                printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$pki/$1.ext" &&
                openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" -CAcreateserial \
                        -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>>"$pki/openssl.log" ||
                vg_fail "openssl for $1: $(cat "$pki/openssl.log")"
}
make_ca ca
make_ca system-ca
for node in "${!IP[@]}"; do
        make_cert "$node" ca "DNS:$node,IP:${IP[$node]}"
done
cp "$pki/system-ca.pem" "$pki/system/ca-certificates.crt"
cp "$pki/system-ca.pem" "$pki/system/vg-system-ca.pem"
openssl rehash "$pki/system" 2>>"$pki/openssl.log" || vg_fail "openssl rehash: $(cat "$pki/openssl.log")"
# Every node's /etc/hosts: the nodes by name, and host4, a name in the fleet that nobody holds a
# certificate for, at the intruder's address (as a forged DNS answer would have it).
for node in "${!IP[@]}"; do
        printf '%s %s\n' "${IP[$node]}" "$node"
done >"$tmp/hosts"
printf '127.0.0.1 localhost\n%s host4\n' "${IP[intruder]}" >>"$tmp/hosts"

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
                mount --bind "$2" /etc/hosts
                mount --bind "$3" /etc/ssl/certs
                touch "$1/ready"
                exec sleep infinity' fleet-holder "$dir" "$tmp/hosts" "$pki/system"
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

# gateway_up NODE [CERT]: its systemd-journal-gatewayd on port 19531, over HTTPS with the
# certificate CERT ($pki/CERT.pem and .key; by default the node's own); returns once it listens.
gateway_up() {
        local node=$1 cert=${2:-$1}
        vg_spawn "$tmp/$node/gatewayd.log" nsenter -t "${HOLDER[$node]}" -m -n -- /lib/systemd/systemd-journal-gatewayd \
                --cert="$pki/$cert.pem" --key="$pki/$cert.key"
        GATEWAY[$node]=$VG_LAST_PID
        vg_poll $T listens "$node" 19531
}
listens() { # NODE PORT
        on "$1" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "${IP[$1]}" "$2" 2>/dev/null
}

# pull_up READER PEER [GETTER-OPTION...]: READER's systemd-journal-remote writing what our
# getter pulls from PEER's gatewayd (https://PEER:19531, checked against the fleet's CA) to
# remote-PEER.journal, as vpopguard-fleet-pull@PEER.service does; started again when it ends
# (Restart=always), stopped with vg_kill.
pull_up() {
        local reader=$1 peer=$2 out=/var/log/journal/remote/remote-$2.journal
        shift 2
        vg_spawn "$tmp/$reader/pull-$peer.log" nsenter -t "${HOLDER[$reader]}" -m -n -- bash -c '
                trap "kill \$child 2>/dev/null; wait \$child; exit 0" TERM
                while :; do
                        "$@" &
                        child=$!
                        wait $child || :
                        sleep 0.5 & # RestartSec=
                        child=$!
                        wait $child
                done' fleet-pull "$VG_JOURNAL_REMOTE_BIN" --split-mode=none --output="$out" \
                --getter="$getter --trust=$pki/ca.pem $* https://$peer:19531 $out"
        PULL[$reader<$peer]=$VG_LAST_PID
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
# peer_name NODE: how the others list NODE in [Fleet] Peer= (the name of its file): pushed
# files are named after the sender's address, pulled ones after the name in its certificate.
peer_name() {
        if [[ $FLEET_MODE == pull ]]; then
                echo "$1"
        else
                echo "${IP[$1]}"
        fi
}
has_file() { # NODE SENDER
        on "$1" test -s "/var/log/journal/remote/remote-$(peer_name "$2").journal"
}
# copy_entries NODE PEER [MATCH...]: how many entries NODE's copy of PEER's journal holds.
copy_entries() {
        on "$1" journalctl -q -o export --output-fields=_BOOT_ID --file="/var/log/journal/remote/remote-$(peer_name "$2").journal" \
                "${@:3}" 2>/dev/null | grep -c '^__CURSOR=' || :
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

# link_up FROM TO, link_down FROM TO: the way FROM's journal reaches TO, started or stopped. A
# pull of the collector by a host takes only its ban events.
link_up() {
        if [[ $FLEET_MODE == push ]]; then
                upload_up "$1" "$2"
        elif [[ $1 == collector ]]; then
                pull_up "$2" "$1" --bans-only
        else
                pull_up "$2" "$1"
        fi
}
link_down() {
        if [[ $FLEET_MODE == push ]]; then
                vg_kill "${UPLOAD[$1>$2]}"
        else
                vg_kill "${PULL[$2<$1]}"
        fi
}

# fleet_up [--pull] [SETTING...]: every node up with the SETTINGs in each vpopguardd's [Defaults]
# (the vpopmail jail); the collector lists the hosts (CountFailures=yes, Relay=yes), the hosts the
# collector. Push (the default): each node uploads its journal to the others' journal-remote.
# --pull: each node serves its journal with gatewayd; the collector pulls all of each host's, each
# host only the collector's ban events (--bans-only). Returns once each side has the other's file.
fleet_up() {
        local node peers=
        if [[ ${1:-} == --pull ]]; then
                FLEET_MODE=pull
                shift
        fi
        for node in collector "${HOSTS[@]}" intruder; do
                node_up "$node"
        done
        for node in "${HOSTS[@]}"; do
                peers+=" $(peer_name "$node")"
        done
        for node in collector "${HOSTS[@]}"; do
                vg_vpopmail_config "$tmp/$node/vpopguard.conf" "$@"
                {
                        printf '\n[Fleet]\n'
                        if [[ $node == collector ]]; then
                                printf 'Peer=%s\nRelay=yes\nCountFailures=yes\n' "$peers"
                        else
                                printf 'Peer=%s\n' "$(peer_name collector)"
                        fi
                } >>"$tmp/$node/vpopguard.conf"
        done
        for node in collector "${HOSTS[@]}"; do
                if [[ $FLEET_MODE == pull ]]; then
                        gateway_up "$node"
                else
                        remote_up "$node"
                fi
        done
        guard_up collector
        for node in "${HOSTS[@]}"; do
                guard_up "$node"
        done
        for node in "${HOSTS[@]}"; do
                link_up "$node" collector
                link_up collector "$node"
        done
        # The collector logs nothing by itself yet: a first entry opens each host's file of it.
        on collector logger --socket-errors=on -u /run/systemd/journal/dev-log -t fleet-test "the collector is up" ||
                vg_fail "logger on the collector failed"
        for node in "${HOSTS[@]}"; do
                vg_poll $T has_file collector "$node"
                vg_poll $T has_file "$node" collector
        done
}

# --- Checks that both ways of wiring the fleet pass the same way.

# check_spread ADDRESS: two failures on each of three hosts (MaxRetry=5): banned on every host,
# by the collector.
check_spread() {
        local node
        for node in "${HOSTS[@]}"; do
                fail_on "$node" "$1" 2
        done
        vg_poll $T banned_everywhere "$1"
        for node in "${HOSTS[@]}"; do
                vg_assert_eq fleet "$(ban_field "$node" "$1" origin)" "origin of the spread attacker's ban on $node"
        done
        vg_assert_eq journal "$(ban_field collector "$1" origin)" "origin of the spread attacker's ban on the collector"
}

# check_own_ban ADDRESS NEXT: host2's own ban of ADDRESS reaches the others, once, and does not
# come back to it. Its ban of NEXT is a barrier: it took the same ways, after the first one's
# echoes, if any.
check_own_ban() {
        local node
        fail_on host2 "$1" 5
        vg_poll $T banned_everywhere "$1"
        vg_assert_eq journal "$(ban_field host2 "$1" origin)" "origin of host2's ban on host2"
        fail_on host2 "$2" 5
        vg_poll $T banned_everywhere "$2"
        for node in collector "${HOSTS[@]}"; do
                vg_assert_eq 1 "$(ban_events "$node" "$1")" "ban events of host2's ban on $node"
        done
}

# attack_meanwhile SPREAD OWN: while the collector is away, two failures of SPREAD on each host,
# and host1 bans OWN on its own.
attack_meanwhile() {
        local node
        for node in "${HOSTS[@]}"; do
                fail_on "$node" "$1" 2
        done
        fail_on host1 "$2" 5
        vg_poll $T banned_on host1 "$2"
        # The outage outlasts host1's ban by more than the second within which a ban that comes
        # back counts as the same (FLEET_SLACK_USEC): a ban the collector decides when it is back,
        # from host1's failures of OWN, must not pass for a longer one on host1.
        local outage_end
        outage_end=$(($(date +%s) + 3))
        vg_poll $T eval '(($(date +%s) >= outage_end))'
}

# check_cut_off SHORT LONG: host3 cut off from the collector for longer than a ban: the collector
# bans SHORT for a few seconds and LONG for an hour. Back, host3 gets only LONG, ending when it
# ends on the collector (same clock here), not an hour after it arrived.
check_cut_off() {
        local node expires
        link_down collector host3
        on collector "$ctl" ban "$1" --time=2s >/dev/null || vg_fail "short ban on the collector failed"
        on collector "$ctl" ban "$2" --time=1h >/dev/null || vg_fail "long ban on the collector failed"
        vg_poll $T banned_on host1 "$2"
        vg_poll $T not_banned_on collector "$1"
        link_up collector host3
        vg_poll $T banned_on host3 "$2"
        vg_assert_eq 0 "$(ban_events host3 "$1")" "ban events on host3 of the ban that ran out while it was away"
        expires=$(ban_field collector "$2" expiresUSec)
        for node in "${HOSTS[@]}"; do
                vg_assert_eq "$expires" "$(ban_field "$node" "$2" expiresUSec)" "end of the collector's ban on $node"
        done
}
