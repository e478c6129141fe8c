#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `vpopguardctl metrics` against a real vpopguardd, read by real parsers (python3-prometheus-
# client: its OpenMetrics parser, and its parser of the older Prometheus text format, the one
# node_exporter's textfile collector reads):
#   - after failures from three addresses, two bans, one unban by hand and a ban by hand that
#     ran out, the per-jail samples are exactly failures 7, bans 2 (bans by hand are not
#     counted), unbans 1, expired 1, active 1, tracked 1, untrusted,
#     unreadable and suppressed 0; the daemon read and matched 7 entries; once it has read
#     everything the journal lag is 0 and the last entry's timestamp is that of the last line;
#   - a user outside the journal groups (UID 1000, GID 65534) gets the same samples;
#   - --output=FILE replaces FILE by a rename (a reader holding the old file still sees all of
#     it, and no temporary file stays), mode 0644; a missing directory or one the user may not
#     write to fails with exit status 1, a message naming the file and the file unchanged; so
#     does a daemon that cannot be reached (exit status 3).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin metrics "$@"
vg_require_commands nft jq logger setpriv stat /usr/bin/python3
/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' 2>/dev/null ||
        vg_skip "no python3-prometheus-client"
unset VPOPGUARD_SOCKET

# Other users run vpopguardctl and the parser from here (the build and temporary directories
# may be closed to them).
run=/run/vg-metrics
mkdir -p "$run"
cp "$ctl" "$run/vpopguardctl"
conf=$tmp/vpopguard.conf
vg_vpopmail_config "$conf" MaxRetry=3 FindTime=10min BanTime=1h

# The samples, one "NAME{LABELS} VALUE" line each, sorted, from the OpenMetrics parser; the
# older format's parser must find the same values (it types counters as unknown, which is fine).
cat >"$run/parse.py" <<'EOF'
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus

text = sys.stdin.read()
def samples(families):
    return sorted("%s%s %r" % (s.name, "".join("{%s=%s}" % kv for kv in sorted(s.labels.items())), float(s.value))
                  for f in families for s in f.samples)
om = samples(openmetrics(text))
if samples(prometheus(text)) != om:
    sys.exit("the two parsers disagree")
print("\n".join(om))
EOF
chmod 0755 "$run" "$run/vpopguardctl"
chmod 0644 "$run/parse.py"

parse() { /usr/bin/python3 "$run/parse.py" || vg_fail "the metrics do not parse"; }
sample() { # NAME: its value in the parsed samples on stdin
        awk -v n="$1" '$1 == n { print $2 }'
}

vg_start_journald
vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state"
vg_log_failures 192.0.2.1
vg_log_failures 192.0.2.2
vg_log_failures 192.0.2.3 1
vg_poll 20 vg_banned banned4 192.0.2.1
vg_poll 20 vg_banned banned4 192.0.2.2
"$ctl" unban 192.0.2.2 >/dev/null || vg_fail "unban failed"
"$ctl" ban 198.51.100.9 --time=1s >/dev/null || vg_fail "ban failed"
expired() { [[ $("$ctl" --json status | jq '.jails[0].expiredTotal') == 1 ]]; }
vg_poll 20 expired
last_usec=$(journalctl -q -n 1 -o json SYSLOG_IDENTIFIER=vpopmail | jq -r .__REALTIME_TIMESTAMP)
read_everything() {
        [[ $("$ctl" --json status | jq '[.entriesRead, .journalLagUSec] == [7, 0]') == true ]]
}
vg_poll 20 read_everything

"$ctl" metrics >"$tmp/metrics" || vg_fail "vpopguardctl metrics failed"
[[ $(tail -n 1 "$tmp/metrics") == "# EOF" ]] || vg_fail "the text does not end in # EOF"
parse <"$tmp/metrics" >"$tmp/samples"
grep '{jail=' "$tmp/samples" >"$tmp/jail-samples" || true
vg_assert_eq "vpopguard_active_bans{jail=vpopmail} 1.0
vpopguard_bans_total{jail=vpopmail} 2.0
vpopguard_expired_bans_total{jail=vpopmail} 1.0
vpopguard_failures_total{jail=vpopmail} 7.0
vpopguard_fleet_bans_applied_total{jail=vpopmail} 0.0
vpopguard_journald_suppressed_messages_total{jail=vpopmail} 0.0
vpopguard_tracked_addresses{jail=vpopmail} 1.0
vpopguard_unbans_total{jail=vpopmail} 1.0
vpopguard_unreadable_entries_total{jail=vpopmail} 0.0
vpopguard_untrusted_failures_total{jail=vpopmail} 0.0" "$(cat "$tmp/jail-samples")" "per-jail samples"
vg_assert_eq 7.0 "$(sample vpopguard_journal_entries_read_total <"$tmp/samples")" "entries read"
vg_assert_eq 7.0 "$(sample vpopguard_journal_entries_matched_total <"$tmp/samples")" "entries matched"
vg_assert_eq 0.0 "$(sample vpopguard_journal_lag_seconds <"$tmp/samples")" "journal lag"
vg_assert_eq 0.0 "$(sample vpopguard_fleet_peers <"$tmp/samples")" "fleet peers"
vg_assert_eq 0.0 "$(sample vpopguard_fleet_untrusted_entries_total <"$tmp/samples")" "untrusted fleet entries"
# A parser's double keeps the microseconds only approximately: the text has them exactly.
vg_assert_eq "vpopguard_journal_last_entry_timestamp_seconds $((last_usec / 1000000)).$(printf %06d $((last_usec % 1000000)))" \
        "$(grep '^vpopguard_journal_last_entry_timestamp_seconds ' "$tmp/metrics")" "last entry's timestamp"
started=$(sample vpopguard_start_time_seconds <"$tmp/samples")
[[ -n $started ]] || vg_fail "no start time"

# --- The same for a user outside systemd-journal and adm (GID 999 is systemd-journal here).
setpriv --reuid=1000 --regid=65534 --clear-groups "$run/vpopguardctl" metrics >"$tmp/metrics-user" ||
        vg_fail "vpopguardctl metrics as UID 1000 failed"
parse <"$tmp/metrics-user" >"$tmp/samples-user"
grep '{jail=' "$tmp/samples-user" >"$tmp/jail-samples-user" || true
vg_assert_files_eq "$tmp/jail-samples" "$tmp/jail-samples-user" "per-jail samples for UID 1000"

# --- --output=: a rename over the old file.
out=$tmp/textfile/vpopguard.prom
mkdir "$tmp/textfile"
echo old >"$out"
exec {old_fd}<"$out"
old_inode=$(stat -c %i "$out")
"$ctl" metrics --output="$out" || vg_fail "metrics --output= failed"
[[ $(stat -c %i "$out") != "$old_inode" ]] || vg_fail "--output= rewrote the file in place"
vg_assert_eq old "$(cat <&"$old_fd")" "what a reader of the old file sees"
exec {old_fd}<&-
vg_assert_eq 644 "$(stat -c %a "$out")" "mode of the written file"
vg_assert_eq vpopguard.prom "$(ls -A "$tmp/textfile")" "files in the directory (no temporary left)"
parse <"$out" >"$tmp/samples-file"
grep '{jail=' "$tmp/samples-file" >"$tmp/jail-samples-file" || true
vg_assert_files_eq "$tmp/jail-samples" "$tmp/jail-samples-file" "per-jail samples in the file"

# expect_failure STATUS MESSAGE CMD...: CMD exits with STATUS and says MESSAGE on stderr.
expect_failure() {
        local status=$1 message=$2 rc=0
        shift 2
        "$@" 2>"$tmp/err" >/dev/null || rc=$?
        vg_assert_eq "$status" "$rc" "exit status of $*"
        grep -qF -- "$message" "$tmp/err" || vg_fail "$* said: $(cat "$tmp/err")"
}
cp "$out" "$tmp/before"
expect_failure 1 "Failed to write the metrics to $tmp/nope/x.prom: No such file or directory" \
        "$ctl" metrics --output="$tmp/nope/x.prom"
# The test's directory is root's, mode 0700.
expect_failure 1 "Failed to write the metrics to $tmp/textfile/vpopguard.prom: Permission denied" \
        setpriv --reuid=1000 --regid=65534 --clear-groups "$run/vpopguardctl" metrics --output="$out"
expect_failure 3 "" "$ctl" --socket="$tmp/no-socket" metrics --output="$out"
vg_assert_files_eq "$tmp/before" "$out" "the file after the failed writes"
vg_assert_eq vpopguard.prom "$(ls -A "$tmp/textfile")" "files in the directory after the failures"
expect_failure 2 "--output= needs a file" "$ctl" metrics --output=
expect_failure 2 "status: option --output does not apply" "$ctl" status --output="$out"
vg_daemon_ok
vg_log "metrics: $(wc -l <"$tmp/samples") samples, parsed by both parsers, the same for UID 1000"
