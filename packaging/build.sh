#!/bin/sh
# Build the one-folder app with PyInstaller, then (Linux) the .tar.gz with the menu entry and icon.
#   packaging/build.sh            (what `make package` runs, from the project's venv)
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
    packaging/workstation.spec
if [ "$(uname -s)" = Linux ] && command -v strip >/dev/null; then
    # Debug symbols off the interpreter and the plain extension modules. Never the wheels' vendored
    # *.libs/ nor numpy/Qt/onnxruntime: stripping patchelf-edited libraries breaks them ("ELF load command
    # address/offset not page-aligned").
    for f in dist/workstation/_internal/libpython3*.so.* dist/workstation/_internal/python3*/lib-dynload/*.so \
             dist/workstation/_internal/_libjpeg*.so dist/workstation/_internal/_openjpeg*.so \
             dist/workstation/_internal/rle/*.so; do
        [ -f "$f" ] && strip --strip-unneeded "$f"
    done
fi
VERSION="$("$PY" -c 'import workstation; print(workstation.__version__)')"
case "$(uname -s)" in
Linux)
    NAME="workstation-$VERSION-linux-$(uname -m)"
    STAGE="build/$NAME"
    rm -rf "$STAGE" && mkdir -p "$STAGE"
    cp -a dist/workstation "$STAGE/workstation"
    cp packaging/linux/workstation.desktop packaging/linux/install.sh "$STAGE/"
    cp resources/icons/workstation.png "$STAGE/"
    tar -C build -czf "dist/$NAME.tar.gz" "$NAME"
    rm -rf "$STAGE"
    echo "built dist/workstation ($(du -sh dist/workstation | cut -f1)) and dist/$NAME.tar.gz ($(du -sh "dist/$NAME.tar.gz" | cut -f1))"
    ;;
*)
    echo "built dist/workstation; for an installer see packaging/windows or packaging/macos"
    ;;
esac
