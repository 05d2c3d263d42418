#!/bin/sh
# macOS: build dist/Workstation.app (the spec's BUNDLE branch) and a .dmg. NOT built or tried here (no Mac).
#   python3.11 -m venv .venv && .venv/bin/pip install -e ".[package]"
#   sh packaging/macos/build_app.sh
set -eu
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
ICONSET="build/workstation.iconset"
rm -rf "$ICONSET" && mkdir -p "$ICONSET"
for size in 16 32 128 256 512; do
    sips -z "$size" "$size" resources/icons/workstation-512.png --out "$ICONSET/icon_${size}x${size}.png" >/dev/null
done
iconutil -c icns "$ICONSET" -o resources/icons/workstation.icns
.venv/bin/python -m PyInstaller --noconfirm --clean packaging/workstation.spec
VERSION="$(.venv/bin/python -c 'import workstation; print(workstation.__version__)')"
hdiutil create -volname "Workstation" -srcfolder dist/Workstation.app -ov -format UDZO "dist/workstation-$VERSION.dmg"
dist/Workstation.app/Contents/MacOS/workstation --self-test
