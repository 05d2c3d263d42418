#!/bin/sh
# Install the unpacked workstation folder for this user: a menu entry pointing at it. No root, no network.
#   tar xzf workstation-*-linux-x86_64.tar.gz && ./workstation-*/install.sh
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
APPS="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
mkdir -p "$APPS"
sed "s#@INSTALL_DIR@#$HERE/workstation#g" "$HERE/workstation.desktop" > "$APPS/workstation.desktop"
chmod 0644 "$APPS/workstation.desktop"
echo "menu entry written to $APPS/workstation.desktop; run $HERE/workstation/workstation --self-test to check"
