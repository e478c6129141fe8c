#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vpopguard-fleet-pull: the getter of systemd-journal-remote --getter= for a vpopguard fleet.
# It writes to stdout, in journal export format, the journal of one fleet peer as that peer's
# systemd-journal-gatewayd serves it over HTTPS, following it, from after the last entry that
# the local copy already holds (so that no entry is pulled twice across restarts).
#
#   vpopguard-fleet-pull --trust=CA.pem [--cert=CERT.pem --key=KEY.pem] [--bans-only] URL FILE
#
# URL is the peer's gatewayd (https://NAME:19531): its server certificate must be signed by
# CA.pem, and by no other CA, and name NAME (subjectAltName), or nothing is read. FILE is the
# local copy (journal-remote's --output=; rotated into FILE's stem@*.journal). --bans-only asks
# for vpopguardd's ban and unban events only. --cert and --key are a client certificate, for a
# gatewayd that checks them (--trust=; not in Debian 12's build).
set -euo pipefail

usage() {
        echo "usage: vpopguard-fleet-pull --trust=CA.pem [--cert=CERT.pem --key=KEY.pem] [--bans-only] URL FILE" >&2
        exit 2
}

trust='' query='' client=()
while (($#)); do
        case $1 in
        --trust=?*) trust=${1#*=} ;;
        --cert=?*) client+=(--cert "${1#*=}") ;;
        --key=?*) client+=(--key "${1#*=}") ;;
        # The MESSAGE_IDs of journal-events.h: matches on one field are OR'ed.
        --bans-only) query='&MESSAGE_ID=7fc6f43d6e5d457ba31097a4cc519474&MESSAGE_ID=16f9f8826ed04c4b9f2a2591444632bc' ;;
        --) shift; break ;;
        -*) usage ;;
        *) break ;;
        esac
        shift
done
if (($# != 2)) || [[ -z $trust || $1 != https://* || $2 != /*.journal ]]; then
        usage
fi
url=${1%/} file=$2

# --capath=/dev/null: the fleet's CA only, not also every CA in /etc/ssl/certs. --fail: an HTTP
# error writes nothing to journal-remote. --no-buffer: each entry as soon as it comes.
get=(curl --silent --show-error --fail --no-buffer --proto '=https' --cacert "$trust" --capath /dev/null
        "${client[@]}" --header 'Accept: application/vnd.fdo.journal')

# The local copy's last entry. Its cursor is the copy's own, but gatewayd finds the same entry
# by its boot ID and monotonic time (or its realtime) and content; ":1:" skips that entry.
files=()
shopt -s nullglob
for f in "$file" "${file%.journal}"@*.journal; do
        [[ ! -e $f ]] || files+=(--file="$f")
done
range=()
if ((${#files[@]})); then
        last=$(journalctl "${files[@]}" --quiet --lines=1 --output=export --output-fields=_BOOT_ID) ||
                { echo "vpopguard-fleet-pull: cannot read the last entry of $file" >&2; exit 1; }
        cursor=$(sed -n 's/^__CURSOR=//p' <<<"$last")
        if [[ -n $cursor ]]; then
                # While no entry follows that one, gatewayd serves it again in spite of ":1:": wait
                # until one does (that entry and the next, then the answer ends; thrown away).
                "${get[@]}" --header "Range: entries=$cursor:0:2" "$url/entries?follow$query" >/dev/null &
                trap 'kill $!' TERM # journal-remote's end (its death signal) ends the wait too
                wait $!
                trap - TERM
                range=(--header "Range: entries=$cursor:1:18446744073709551615")
        fi
fi
exec "${get[@]}" "${range[@]}" "$url/entries?follow$query"
