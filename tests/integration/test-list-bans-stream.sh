#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Thousands of bans from a state file (5000 of jail vpopmail, 100 of a second jail "strict"):
#   - a start puts every one into banned4;
#   - ListBans with "more" streams them in chunks (several replies, continues true on all but
#     the last), together exactly the active bans, and with jail= exactly that jail's;
#   - ListBans without "more" still answers with one reply holding all of them;
#   - vpopguardctl bans (which asks with "more") lists them all: with --json as one document,
#     as a table with one header and one footer counting them all.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

vg_begin list-bans-stream "$@"
vg_require_commands nft jq python3
conf=$tmp/vpopguard.conf
sock=$tmp/io.vpopguard.Manager
N=5000 # more than two chunks (BAN_LIST_CHUNK, manager-list-bans.c)
N_STRICT=100

vg_vpopmail_config "$conf"
cat >"$conf.d/20-strict.conf" <<'EOF'
[Jail]
Name=strict
JournalMatch=SYSLOG_IDENTIFIER=vpopmail
FailRegex=^vchkpw-[a-z0-9]+: password fail [^ ]*:<HOST>$
EOF

# The state file as the daemon writes it (state-file-internal.h): bans of 198.18.0.0/15.
mkdir -p "$tmp/state"
python3 - "$tmp/state/state" "$N" "$N_STRICT" "$tmp/expect" <<'EOF'
import sys, time
path, n, n_strict, expect = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
now = time.time_ns() // 1000
lines, addresses = ["vpopguard-state 3\n"], []
for i in range(n + n_strict):
    a = "198.18.%d.%d" % (i // 250, i % 250 + 1)
    jail = "vpopmail" if i < n else "strict"
    lines.append("ban %s %s 3 %d %d journal 1\n" % (jail, a, now, now + 86400 * 10**6))
    addresses.append((jail, a))
h = 0xcbf29ce484222325
for b in "".join(lines).encode():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
lines.append("end %d %016x\n" % (n + n_strict, h))
open(path, "w").write("".join(lines))
with open(expect, "w") as f:
    for jail, a in addresses:
        f.write("%s %s\n" % (jail, a))
EOF
LC_ALL=C sort -o "$tmp/expect" "$tmp/expect"
cut -d' ' -f2 "$tmp/expect" | LC_ALL=C sort >"$tmp/expect-all"
grep '^vpopmail ' "$tmp/expect" >"$tmp/expect-vpopmail"
grep '^strict ' "$tmp/expect" >"$tmp/expect-strict"

vg_start_journald
vg_start_daemon "$tmp/daemon.log" "$daemon" --config="$conf" --state-directory="$tmp/state" --socket="$sock"
vg_nft_set_elements banned4 >"$tmp/set"
vg_assert_files_eq "$tmp/expect-all" "$tmp/set" "banned4 after the start"

# A raw client: prints "REPLIES CONTINUES-FLAGS" on the first line, then "JAIL ADDRESS" of every
# ban listed, sorted.
list_bans() { # MORE(true|false) [JAIL]
        python3 - "$sock" "$@" <<'EOF'
import json, socket, sys
path, more = sys.argv[1], sys.argv[2] == "true"
params = {"jail": sys.argv[3]} if len(sys.argv) > 3 else {}
call = {"method": "io.vpopguard.Manager.ListBans", "parameters": params}
if more:
    call["more"] = True
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(json.dumps(call).encode() + b"\0")
buf, replies, flags, bans = b"", 0, [], []
while True:
    while b"\0" not in buf:
        data = s.recv(1 << 20)
        if not data:
            sys.exit("connection closed after %d replies" % replies)
        buf += data
    msg, buf = buf.split(b"\0", 1)
    reply = json.loads(msg)
    if "error" in reply:
        sys.exit("error: %s" % reply)
    replies += 1
    flags.append(str(reply.get("continues", False)).lower())
    bans += ["%s %s" % (b["jail"], b["address"]) for b in reply["parameters"]["bans"]]
    if not reply.get("continues", False):
        break
print(replies, ",".join(flags))
print("\n".join(sorted(bans)))
EOF
}

list_bans true >"$tmp/more"
read -r replies flags <"$tmp/more"
((replies >= 3)) || vg_fail "ListBans with more: $replies replies for $((N + N_STRICT)) bans, expected a stream of chunks"
[[ $flags == "$(printf 'true,%.0s' $(seq $((replies - 1))))false" ]] ||
        vg_fail "ListBans with more: continues flags $flags, expected true on all but the last"
tail -n +2 "$tmp/more" >"$tmp/listed"
vg_assert_files_eq "$tmp/expect" "$tmp/listed" "ListBans with more"

list_bans true strict | tail -n +2 >"$tmp/listed-strict"
vg_assert_files_eq "$tmp/expect-strict" "$tmp/listed-strict" "ListBans(jail: strict) with more"
list_bans true vpopmail | tail -n +2 >"$tmp/listed-vpopmail"
vg_assert_files_eq "$tmp/expect-vpopmail" "$tmp/listed-vpopmail" "ListBans(jail: vpopmail) with more"

list_bans false >"$tmp/one"
vg_assert_eq "1 false" "$(head -n 1 "$tmp/one")" "ListBans without more: replies and continues"
tail -n +2 "$tmp/one" >"$tmp/listed-one"
vg_assert_files_eq "$tmp/expect" "$tmp/listed-one" "ListBans without more"

"$ctl" --socket="$sock" --json bans >"$tmp/ctl.json" || vg_fail "vpopguardctl bans failed"
vg_assert_eq 1 "$(wc -l <"$tmp/ctl.json")" "lines of vpopguardctl --json bans"
jq -r '.bans[] | "\(.jail) \(.address)"' "$tmp/ctl.json" | LC_ALL=C sort >"$tmp/listed-ctl"
vg_assert_files_eq "$tmp/expect" "$tmp/listed-ctl" "vpopguardctl --json bans"

# The table, printed part by part as the replies arrive: one header, a line per ban, one footer.
"$ctl" --socket="$sock" bans >"$tmp/ctl.txt" || vg_fail "vpopguardctl bans failed"
vg_assert_eq 1 "$(grep -c '^ADDRESS  *JAIL  *FAILURES' "$tmp/ctl.txt")" "header lines of vpopguardctl bans"
vg_assert_eq "$((N + N_STRICT)) bans listed." "$(tail -n 1 "$tmp/ctl.txt")" "footer of vpopguardctl bans"
grep '^198\.18\.' "$tmp/ctl.txt" | awk '{ print $2, $1 }' | LC_ALL=C sort >"$tmp/listed-table"
vg_assert_files_eq "$tmp/expect" "$tmp/listed-table" "vpopguardctl bans"
"$ctl" --socket="$sock" --no-legend bans strict | awk '{ print $2, $1 }' | LC_ALL=C sort >"$tmp/listed-table-strict"
vg_assert_files_eq "$tmp/expect-strict" "$tmp/listed-table-strict" "vpopguardctl --no-legend bans strict"

vg_term_daemon
vg_log "all checks passed"
