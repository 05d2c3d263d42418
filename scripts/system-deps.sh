#!/bin/sh
# Debian packages the app and its tests need: Qt's runtime libraries (also offscreen), poppler-utils to
# render PDF reports to PNG in tests, binutils for PyInstaller. Installs only what is missing; needs root
# (or sudo) and apt-get, otherwise it says what to install and carries on.
set -eu
# the xcb libraries are what Qt needs on an X11/XWayland desktop; installed here so the frozen app bundles them
PACKAGES="libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xkb1 libxcb-shape0 libxcb-randr0 poppler-utils binutils"
missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: not a Debian system; please install:$missing" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "system-deps: not root; please run: apt-get install -y$missing" >&2
        exit 0
    fi
fi
echo "system-deps: installing$missing" >&2
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
