#!/bin/sh
# Check the built app as a ward laptop would run it: the self-test with networking cut off (a network
# namespace with no interfaces, when the machine allows one), the folder's size against the 400 MB budget,
# and the cold start to the window.
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
APP="$ROOT/dist/workstation/workstation"
LIMIT_MB=400
[ -x "$APP" ] || { echo "no built app at $APP: run make package first" >&2; exit 1; }
export QT_QPA_PLATFORM=offscreen
NO_NET=""
if unshare --net --map-root-user true 2>/dev/null; then NO_NET="unshare --net --map-root-user"
elif unshare --net true 2>/dev/null; then NO_NET="unshare --net"
else echo "check: cannot cut networking here (no unshare); the self-test's socket audit still runs" >&2; fi
# A scratch data folder, so a check never writes into a person's records.
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
WORKSTATION_DATA_DIR="$SCRATCH" $NO_NET "$APP" --self-test
SIZE_MB=$(du -sm "$ROOT/dist/workstation" | cut -f1)
echo "check: built folder $SIZE_MB MB (budget $LIMIT_MB MB)"
[ "$SIZE_MB" -le "$LIMIT_MB" ] || { echo "check: FAILED the built folder is over $LIMIT_MB MB" >&2; exit 1; }
WORKSTATION_DATA_DIR="$SCRATCH" $NO_NET "$APP" --startup-time
