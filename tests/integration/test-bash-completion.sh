#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# src/vpopguardctl.bash under Debian's bash-completion, as bash calls it at a prompt: each
# command's options (test: --jail=, --local, --config=), jail names after --jail= (from
# `vpopguardctl status`, a stand-in function here), files after --config=, and an option's
# argument never taken for the command.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
src=${VPOPGUARD_SOURCE_DIR:-$VG_SRC_DIR}
bc=/usr/share/bash-completion/bash_completion
[[ -r $bc ]] || vg_skip "missing $bc (package bash-completion)"

# shellcheck disable=SC1090
. "$bc"
# shellcheck source=src/vpopguardctl.bash
. "$src/src/vpopguardctl.bash"

# What `vpopguardctl --no-legend status` prints: its jail table follows the first empty line.
vpopguardctl() {
        printf 'Version:          0.1.0\nBans active:      0\n\nvpopmail  yes  3\nsshd      no   3\n'
}

# completions LINE: the words offered at the end of LINE, sorted, on one line. readline splits
# words at spaces and around "=", which bash-completion puts together again.
completions() {
        local line=$1 split
        COMP_LINE=$line
        COMP_POINT=${#line}
        split=${line//=/ = }
        read -ra COMP_WORDS <<<"$split"
        [[ $line != *[\ =] ]] || COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        _vpopguardctl
        printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort | xargs
}

check() { # LINE EXPECTED
        vg_assert_eq "$2" "$(completions "$1")" "completions of '$1'"
}

check "vpopguardctl " "ban bans failures metrics monitor reload status test unban"
check "vpopguardctl test --" \
        "--config= --field= --help --identifier= --jail= --json --local --no-legend --socket= --version"
check "vpopguardctl test --lo" "--local"
check "vpopguardctl test --jail=" "sshd vpopmail"
check "vpopguardctl test --jail=ss" "sshd"
check "vpopguardctl test --config=$src/conf.d/10-ss" "$src/conf.d/10-sshd.conf"
check "vpopguardctl test --config=$src/READ" ""
check "vpopguardctl bans --" "--help --jail= --json --no-legend --socket= --version"
check "vpopguardctl bans --jail=" "sshd vpopmail"
check "vpopguardctl status --" "--help --json --no-legend --socket= --version"
check "vpopguardctl metrics --" "--help --json --no-legend --output= --socket= --version"
# The argument of an option is not the command: "t" here starts one.
check "vpopguardctl --config=$src/conf.d/10-sshd.conf t" "test"
check "vpopguardctl --jail=sshd t" "test"
check "vpopguardctl --config $src/conf.d/10-sshd.conf t" "test"
check "vpopguardctl --jail sshd t" "test"
vg_log "ok"
