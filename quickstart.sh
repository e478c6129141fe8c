#!/bin/bash
# Installs what vpopguard needs (Debian 12, as root), builds and installs it under /usr, then
# starts it: `systemctl enable --now` where systemd runs the machine, otherwise in the
# foreground against the local journal (Ctrl-C stops it; bans stay in the kernel).
set -euo pipefail
cd "$(dirname "$0")"

.ci/install-packages .ci/packages-build
if [ -f build-release/build.ninja ]; then
        meson setup --reconfigure build-release --prefix=/usr --buildtype=release >/dev/null
else
        meson setup build-release --prefix=/usr --buildtype=release >/dev/null
fi
meson compile -C build-release
meson install -C build-release --quiet

if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
        systemctl daemon-reload
        journalctl --update-catalog 2>/dev/null || true
        systemctl enable --now vpopguard.service
        systemctl --no-pager status vpopguard.service
else
        echo "systemd is not PID 1 here: running vpopguardd in the foreground."
        exec /usr/sbin/vpopguardd "$@"
fi
