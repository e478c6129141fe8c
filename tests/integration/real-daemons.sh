# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for the tests that run a real network daemon (sshd, Courier) and attack it with real
# clients. Sourced after lib.sh, used after vg_begin (they need the test's namespaces):
#
#       vg_real_user NAME UID PASSWORD       a local account, seen only by this test
#       vg_real_network SERVER4 SERVER6 CLIENT...
#                                            the clients' own network namespace, joined to ours
#       vg_client CMD...                     runs CMD there
#
# Powers: everything below changes only the test's mount and network namespaces (bind mounts over
# /etc files, a veth pair, a second network namespace whose holder process vg_spawn tracks).
#
# Why the clients need a namespace of their own: vpopguardd never counts failures from the host's
# own addresses (those on its interfaces), so an attacker address on lo would be exempt.

VG_CLIENT_NS_PID=

# vg_real_user NAME UID PASSWORD: an account NAME (UID, a group of the same number, /bin/sh,
# home /run/vg-home/NAME) whose password is PASSWORD, as PAM's pam_unix checks it. Copies of
# /etc/passwd, /etc/shadow and /etc/group with the account added are bind-mounted over the
# originals in the test's mount namespace; the host's files never change.
vg_real_user() {
        local name=$1 uid=$2 password=$3 dir hash f
        [[ -n $VG_TMPDIR ]] || vg_fail "vg_real_user: call vg_enter_namespaces first"
        vg_require_commands openssl
        dir=$(vg_tmpdir etc)
        hash=$(openssl passwd -6 -stdin <<<"$password") || vg_fail "openssl passwd failed"
        for f in passwd shadow group; do
                cp -p "/etc/$f" "$dir/$f" || vg_fail "cannot copy /etc/$f"
        done
        printf '%s:x:%s:%s::/run/vg-home/%s:/bin/sh\n' "$name" "$uid" "$uid" "$name" >>"$dir/passwd"
        printf '%s:%s:20000:0:99999:7:::\n' "$name" "$hash" >>"$dir/shadow"
        printf '%s:x:%s:\n' "$name" "$uid" >>"$dir/group"
        for f in passwd shadow group; do
                vg__mount --bind "$dir/$f" "/etc/$f"
        done
        mkdir -p "/run/vg-home/$name"
        chmod 0755 /run/vg-home
        chown "$uid:$uid" "/run/vg-home/$name"
        chmod 0700 "/run/vg-home/$name"
        [[ $(getent passwd "$name" | cut -d: -f3) == "$uid" ]] || vg_fail "account $name not visible"
}

# vg_real_network SERVER4/LEN SERVER6/LEN CLIENT...: a veth pair between the test's network
# namespace (the server's side, vg-srv, with SERVER4 and SERVER6) and a new one for the clients
# (vg-cli, with every CLIENT address, each of the same prefix length as the server address of
# its family). IPv6 addresses skip duplicate address detection, so they work at once.
vg_real_network() {
        local server4=$1 server6=$2 a own
        shift 2
        vg_require_commands ip unshare nsenter sleep
        vg_spawn "$VG_TMPDIR/client-netns.log" unshare --net sleep infinity
        VG_CLIENT_NS_PID=$VG_LAST_PID
        own=$(readlink /proc/self/ns/net)
        # Until unshare has run, the process is still in our namespace.
        vg_poll 10 vg__client_netns_apart "$own"
        ip link add vg-srv type veth peer name vg-cli || vg_skip "no veth interfaces here"
        ip link set vg-cli netns "$VG_CLIENT_NS_PID" || vg_fail "cannot move vg-cli"
        ip addr add "$server4" dev vg-srv || vg_fail "ip addr add $server4 failed"
        ip addr add "$server6" dev vg-srv nodad || vg_fail "ip addr add $server6 failed"
        ip link set vg-srv up || vg_fail "cannot bring up vg-srv"
        vg_client ip link set lo up || vg_fail "cannot bring up the clients' lo"
        for a in "$@"; do
                if [[ $a == *:* ]]; then
                        vg_client ip addr add "$a/${server6#*/}" dev vg-cli nodad
                else
                        vg_client ip addr add "$a/${server4#*/}" dev vg-cli
                fi || vg_fail "ip addr add $a (clients) failed"
        done
        vg_client ip link set vg-cli up || vg_fail "cannot bring up vg-cli"
        vg_poll 10 vg__link_up vg-srv
}

vg__client_netns_apart() {
        vg_pid_alive "$VG_CLIENT_NS_PID" || vg_fail "the clients' namespace holder exited"
        [[ $(readlink "/proc/$VG_CLIENT_NS_PID/ns/net") != "$1" ]]
}

vg__link_up() { # (/sys shows the host's interfaces: it was mounted in the host's namespace)
        [[ $(ip -o link show "$1" 2>/dev/null) == *"state UP"* ]]
}

# vg_client CMD...: runs CMD in the clients' network namespace (same mounts and PID namespace).
vg_client() {
        [[ -n $VG_CLIENT_NS_PID ]] || vg_fail "vg_client: call vg_real_network first"
        nsenter --net="/proc/$VG_CLIENT_NS_PID/ns/net" -- "$@"
}

# vg_listening PORT: something in our network namespace listens on TCP PORT (for vg_poll).
vg_listening() {
        [[ -n $(ss -Htln "sport = :$1") ]]
}

# vg_client_timeout SECONDS CMD...: vg_client under vg_timeout (CMD must be a program).
vg_client_timeout() {
        local limit=$1
        shift
        [[ -n $VG_CLIENT_NS_PID ]] || vg_fail "vg_client_timeout: call vg_real_network first"
        vg_timeout "$limit" nsenter --net="/proc/$VG_CLIENT_NS_PID/ns/net" -- "$@"
}
