# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # shares the variables of run-bench.sh
#
# The "services" scenario of run-bench.sh (sourced in its namespaces): a whole mail host's
# backlog (services-backlog.py: vpopmail, sshd, dovecot, postfix and courier lines, 10 % of them
# failures spread over all five), read by vpopguardd --no-follow twice in each run: with every
# shipped jail enabled, and with the vpopmail jail alone. Issue #12 wants the first to keep 0.8
# of the second's throughput.
#
# Two throughputs are recorded per target: entries_per_sec counts every entry of the journal;
# jail_entries_per_sec only those for the enabled jails (all of them with every jail, the
# vpopmail fifth with one), the entries each daemon actually judges. The per-run ratios of both
# go to the pseudo-target "-" of scenario "services", and that of judged entries per CPU second
# of the daemon, which a busy machine disturbs less than the wall clock.

# services_config NAME ENABLED-JAIL...: the shipped jails, those named enabled and the others
# disabled, MaxRetry=3 everywhere (what services-backlog.py assumes).
services_config() {
        local dir=$T/conf-services-$1 name
        shift
        mkdir -p "$dir/vpopguard.conf.d"
        cp "$VG_SRC_DIR"/conf.d/10-*.conf "$dir/vpopguard.conf.d/"
        printf '[Defaults]\nFindTime=14d\nBanTime=1h\nIPv6Prefix=128\n' >"$dir/vpopguard.conf"
        for name in vpopmail sshd dovecot postfix-sasl courier; do
                printf '[Jail]\nName=%s\nMaxRetry=3\nEnabled=%s\n' "$name" \
                        "$([[ " $* " == *" $name "* ]] && echo yes || echo no)"
                # Without a postfix account the generator logs postfix's lines as root.
                [[ $name != postfix-sasl || -n $SERVICES_POSTFIX_ACCOUNT ]] || echo TrustedUID=0
        done >"$dir/vpopguard.conf.d/90-bench.conf"
        echo "$dir/vpopguard.conf"
}

# make_services_dataset DIR NAME ARGS...: services-backlog.py's entries into DIR/journal/, and
# its expect-all, expect-vpopmail and counts into DIR.
make_services_dataset() {
        local tmp=$1 name=$2
        shift 2
        python3 "$BENCH_DIR/services-backlog.py" --out="$tmp" "$@" |
                "$VG_JOURNAL_REMOTE_BIN" --output="$tmp/journal/bench.journal" - 2>"$tmp/remote.log" ||
                vg_fail "generating $name failed: $(tail -n 3 "$tmp/remote.log")"
}

# services_dataset ARGS...: the cached directory made by make_services_dataset, keyed by the
# arguments and the generator's source.
services_dataset() {
        local key
        key=$(printf '%s\n' "$(sha256sum "$BENCH_DIR/services-backlog.py" | cut -c1-16)" "$@" | sha256sum | cut -c1-16)
        cached_dataset services "$key" make_services_dataset "$@"
}

# services_once DATASET MODE RUN: MODE all or vpopmail; sets SERVICES_TOTAL_EPS,
# SERVICES_JAIL_EPS and SERVICES_JAIL_EPCPU (judged entries per CPU second; empty if the run
# failed).
services_once() {
        local ds=$1 mode=$2 run=$3 scen=services-$2 log=$T/services-$2-$3.log conf real user sys jail_entries
        SERVICES_TOTAL_EPS='' SERVICES_JAIL_EPS='' SERVICES_JAIL_EPCPU=''
        if [[ $mode == all ]]; then
                conf=$SERVICES_CONF_ALL
                jail_entries=$(floor_value "$ds/counts" entries)
        else
                conf=$SERVICES_CONF_VPOPMAIL
                jail_entries=$(floor_value "$ds/counts" entries_vpopmail)
        fi
        fresh_journald
        nft_reset
        rm -rf "$T/state-services"
        daemon_cmd "vpopguardd-$scen-$run" --config="$conf" --state-directory="$T/state-services" \
                --journal-directory="$ds/journal" --no-follow
        TIMEFORMAT='%3R %3U %3S'
        if ! { time "${DAEMON_CMD[@]}" >"$log" 2>&1; } 2>"$T/time"; then
                daemon_log "vpopguardd-$scen-$run" >>"$log"
                error "$scen" vpopguardd "exited with an error: $(tail -n 3 "$log")"
                return
        fi
        read -r real user sys <"$T/time"
        check_bans "$scen" vpopguardd "$ds/expect-$mode"
        SERVICES_TOTAL_EPS=$(calc "$SERVICES_ENTRIES / $real")
        SERVICES_JAIL_EPS=$(calc "$jail_entries / $real")
        SERVICES_JAIL_EPCPU=$(calc "$jail_entries / ($user + $sys)")
        record "$scen" vpopguardd wall_sec "$real"
        record "$scen" vpopguardd entries_per_sec "$SERVICES_TOTAL_EPS"
        record "$scen" vpopguardd jail_entries_per_sec "$SERVICES_JAIL_EPS"
        record "$scen" vpopguardd cpu_sec "$(calc "$user + $sys")"
        record "$scen" vpopguardd jail_entries_per_cpu_sec "$SERVICES_JAIL_EPCPU"
}

scenario_services() {
        local ds run mode all_total all_jail all_cpu vp_total vp_jail vp_cpu postfix_uid
        if postfix_uid=$(id -u postfix 2>/dev/null); then
                SERVICES_POSTFIX_ACCOUNT=postfix
        else
                SERVICES_POSTFIX_ACCOUNT='' postfix_uid=0
        fi
        SERVICES_CONF_ALL=$(services_config all vpopmail sshd dovecot postfix-sasl courier)
        SERVICES_CONF_VPOPMAIL=$(services_config vpopmail vpopmail)
        ds=$(services_dataset --seed=1 --entries="$SERVICES_ENTRIES" --start-usec="$ANCHOR_USEC" \
                --postfix-uid="$postfix_uid")
        log "services: $SERVICES_ENTRIES entries of 5 services, $(floor_value "$ds/counts" failures) failures," \
                "$(wc -l <"$ds/expect-all") bans with every jail, $(wc -l <"$ds/expect-vpopmail") with vpopmail's"
        record services - entries "$SERVICES_ENTRIES"
        record services - vpopmail_entries "$(floor_value "$ds/counts" entries_vpopmail)"
        record services - expected_bans_all "$(wc -l <"$ds/expect-all")"
        record services - expected_bans_vpopmail "$(wc -l <"$ds/expect-vpopmail")"
        for ((run = 1; run <= REPEAT; run++)); do
                all_total='' vp_total=''
                # Alternating, so that neither always runs first on a cold page cache.
                for mode in $( ((run % 2)) && echo all vpopmail || echo vpopmail all); do
                        services_once "$ds" "$mode" "$run"
                        if [[ $mode == all ]]; then
                                all_total=$SERVICES_TOTAL_EPS all_jail=$SERVICES_JAIL_EPS all_cpu=$SERVICES_JAIL_EPCPU
                        else
                                vp_total=$SERVICES_TOTAL_EPS vp_jail=$SERVICES_JAIL_EPS vp_cpu=$SERVICES_JAIL_EPCPU
                        fi
                done
                if [[ -n $all_total && -n $vp_total ]]; then
                        record services - all_vs_vpopmail_jail_entries_per_sec "$(calc "$all_jail / $vp_jail")"
                        record services - all_vs_vpopmail_entries_per_sec "$(calc "$all_total / $vp_total")"
                        record services - all_vs_vpopmail_jail_entries_per_cpu_sec "$(calc "$all_cpu / $vp_cpu")"
                fi
        done
}
