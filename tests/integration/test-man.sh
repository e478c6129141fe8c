#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The man pages built by meson render without a single warning from man(1)/groff.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
vg_require_commands man
build=${VPOPGUARD_BUILD_DIR:?}
pages=(man/vpopguardd.8 man/vpopguard.conf.5 man/vpopguardctl.1)
for p in "${pages[@]}"; do
        [[ -s $build/$p ]] || vg_fail "$p was not built (is scdoc installed?)"
        warnings=$(MANWIDTH=80 man -l --warnings "$build/$p" 2>&1 >/dev/null)
        [[ -z $warnings ]] || vg_fail "$p: $warnings"
        text=$(MANWIDTH=80 man -l "$build/$p" 2>/dev/null)
        grep -q "^NAME" <<<"$text" || vg_fail "$p renders no NAME section"
done
vg_log "ok: ${pages[*]}"
