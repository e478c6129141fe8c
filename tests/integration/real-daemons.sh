# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# shellcheck disable=SC2154 # tmp and ctl are vg_begin's, sock is vg_real_begin's
#
# Helpers for the tests that run a real network daemon (sshd, Courier, Dovecot, Postfix) and
# attack it with real clients; real-mail.sh adds what only the mail daemons need. Sourced after
# lib.sh:
#
#       vg_real_begin NAME "$@"              vg_begin, and the paths conf, sock and log
#       vg_real_config JAIL                  every shipped jail, JAIL switched on
#       vg_real_user                         a local account, seen only by this test
#       vg_real_network CLIENT...            the clients' own network namespace, joined to ours
#       vg_client CMD...                     runs CMD there
#       vg_real_ctl, vg_real_windows, vg_real_failures, vg_real_banned, vg_real_bans, ...
#                                            what vpopguardd and nftables say of an address
#       vg_real_assert_outcome ...           the end of a run: exactly the attackers are banned
#
# Powers: everything below changes only the test's mount and network namespaces (bind mounts over
# /etc files, a veth pair, a second network namespace whose holder process vg_spawn tracks).
#
# Why the clients need a namespace of their own: vpopguardd never counts failures from the host's
# own addresses (those on its interfaces), so an attacker address on lo would be exempt.

VG_REAL_SERVER4=192.0.2.1 # the server's addresses (vg_real_network), in 192.0.2.0/24
VG_REAL_SERVER6=2001:db8::1 # and 2001:db8::/64
VG_REAL_USER=vgjoe VG_REAL_UID=4242 VG_REAL_PASSWORD=Correct-Horse-7 # vg_real_user's account
VG_CLIENT_NS_PID=

# vg_real_begin NAME "$@": vg_begin NAME "$@", then the daemon's configuration file (conf), its
# varlink socket (sock) and its log (log), in the test's directory.
# shellcheck disable=SC2034 # the test's variables
vg_real_begin() {
        vg_begin "$@"
        conf=$tmp/vpopguard.conf
        sock=$tmp/io.vpopguard.Manager
        log=$tmp/daemon.log
}

# vg_real_config JAIL: $conf with every shipped jail in $conf.d/, as on a real host, [Defaults]
# MaxRetry=3 and BanTime=1h, and JAIL switched on by a drop-in as the manual says; the daemon
# must accept it.
vg_real_config() {
        mkdir -p "$conf.d"
        cp "${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}"/conf.d/*.conf "$conf.d/" || vg_fail "cannot copy the shipped jails"
        printf '[Defaults]\nMaxRetry=3\nBanTime=1h\n' >"$conf"
        printf '[Jail]\nName=%s\nEnabled=yes\n' "$1" >"$conf.d/50-$1-local.conf"
        "$daemon" --config="$conf" --test-config >"$tmp/effective.conf" 2>&1 ||
                vg_fail "configuration refused: $(cat "$tmp/effective.conf")"
}

# vg_real_user: an account VG_REAL_USER (VG_REAL_UID, a group of the same number, /bin/sh, home
# /run/vg-home/VG_REAL_USER) whose password is VG_REAL_PASSWORD, as PAM's pam_unix checks it.
# Copies of /etc/passwd, /etc/shadow and /etc/group with the account added are bind-mounted over
# the originals in the test's mount namespace; the host's files never change.
vg_real_user() {
        local name=$VG_REAL_USER uid=$VG_REAL_UID password=$VG_REAL_PASSWORD dir hash f
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

# vg_real_network CLIENT...: a veth pair between the test's network namespace (the server's
# side, vg-srv, with VG_REAL_SERVER4/24 and VG_REAL_SERVER6/64) and a new one for the clients
# (vg-cli, with every CLIENT address, in the same prefix as the server address of its family).
# IPv6 addresses skip duplicate address detection, so they work at once.
vg_real_network() {
        local server4=$VG_REAL_SERVER4/24 server6=$VG_REAL_SERVER6/64 a own
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

# vg_real_ctl ARGS...: vpopguardctl's stdout, with the daemon at $sock.
vg_real_ctl() {
        vg_daemon_ok
        "$ctl" --socket="$sock" "$@" || vg_fail "vpopguardctl $* failed"
}

# vg_real_windows ADDRESS: "JAIL COUNT" of each of its failure windows, sorted.
vg_real_windows() {
        vg_real_ctl --json failures "$1" | jq -r '.failures[] | "\(.jail) \(.count)"' | LC_ALL=C sort
}

vg_real_windows_are() { # ADDRESS EXPECTED
        [[ $(vg_real_windows "$1") == "$2" ]]
}

# vg_real_failures JAIL ADDRESS: ADDRESS's failure count in JAIL ("" without a window).
vg_real_failures() {
        vg_real_ctl --json --jail="$1" failures "$2" | jq -r '.failures[] | .count'
}

vg_real_failures_are() { # JAIL ADDRESS COUNT
        [[ $(vg_real_failures "$1" "$2") == "$3" ]]
}

# vg_real_set ADDRESS: the set that holds ADDRESS's bans.
vg_real_set() {
        if [[ $1 == *:* ]]; then echo banned6; else echo banned4; fi
}

vg_real_banned() { # ADDRESS
        vg_daemon_ok
        vg_nft_set_has "$(vg_real_set "$1")" "$1"
}

# vg_real_bans: "ADDRESS JAIL FAILURES" of each ban (ListBans), sorted.
vg_real_bans() {
        vg_real_ctl --json bans | jq -r '.bans[] | "\(.address) \(.jail) \(.failures)"' | LC_ALL=C sort
}

# vg_real_untrusted JAIL: JAIL's count of failures from untrusted senders.
vg_real_untrusted() {
        vg_real_ctl --json status | jq -r --arg jail "$1" '.jails[] | select(.name == $jail) | .untrustedFailures'
}

# vg_real_assert_sets ADDRESS...: banned4 and banned6 hold exactly these addresses, each in the
# set of its family.
vg_real_assert_sets() {
        local a list4=() list6=()
        for a in "$@"; do
                if [[ $a == *:* ]]; then list6+=("$a"); else list4+=("$a"); fi
        done
        vg_assert_eq "$(printf '%s\n' "${list4[@]}" | LC_ALL=C sort)" "$(vg_nft_set_elements banned4)" "banned4"
        vg_assert_eq "$(printf '%s\n' "${list6[@]}" | LC_ALL=C sort)" "$(vg_nft_set_elements banned6)" "banned6"
}

# vg_real_assert_outcome JAIL MAXRETRY "ATTACKER..." "GOOD..." "FEW..." COUNT: how a run against
# a real daemon ends: ListBans holds exactly the ATTACKERs, each banned by JAIL at its
# MAXRETRY-th failure, and the sets hold exactly them; each GOOD address (it logged in) has no
# failure window at all, each FEW address COUNT failures in JAIL; JAIL counted no failure from
# an untrusted sender.
vg_real_assert_outcome() {
        local jail=$1 maxretry=$2 count=$6 attackers good few a
        read -ra attackers <<<"$3"
        read -ra good <<<"$4"
        read -ra few <<<"$5"
        vg_assert_eq "$(for a in "${attackers[@]}"; do echo "$a $jail $maxretry"; done | LC_ALL=C sort)" \
                "$(vg_real_bans)" "ListBans"
        vg_real_assert_sets "${attackers[@]}"
        for a in "${good[@]}"; do
                vg_assert_eq "" "$(vg_real_windows "$a")" "failures of $a (logged in)"
        done
        for a in "${few[@]}"; do
                vg_assert_eq "$count" "$(vg_real_failures "$jail" "$a")" "failures of $a"
        done
        vg_assert_eq 0 "$(vg_real_untrusted "$jail")" "untrusted failures of the $jail jail"
}
