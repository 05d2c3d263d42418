"""Start the window (``workstation [FILE...]``) or take a screenshot of it (``workstation --screenshot OUT.png``).

Shutdown is ordered, so the process exits cleanly: the window stops playback and every worker and waits for the
threads, then the widgets are deleted (deferred deletes processed), the garbage collected, and only then does
Python exit. (With a PySide6 that over-releases None/True, 6.12.0, even this order ends in "Fatal Python error:
bool_dealloc"; pyproject.toml pins a version without that fault and tests/test_gui_qt_binding.py checks it.)
"""
from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

SCREENSHOT_SIZE = (1440, 900)


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    # Frames are (rows, columns) arrays; antialiasing keeps thin caliper lines legible.
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


def _drop_offscreen_noise() -> None:
    """The offscreen platform warns that it cannot apply size hints on every dock and dialog; nothing is wrong, so
    that one message is dropped and every other Qt message goes where it went before."""
    from PySide6 import QtCore

    previous = None

    def handler(mode, context, message):
        if "propagateSizeHints" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            sys.stderr.write(message + "\n")

    previous = QtCore.qInstallMessageHandler(handler)


def application():
    """The QApplication, created once (tests get theirs from pytest-qt)."""
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication([sys.argv[0] if sys.argv else "workstation"])
        app.setApplicationName("workstation")
        app.setApplicationDisplayName("Workstation")
        if app.platformName() == "offscreen":
            _drop_offscreen_noise()
    configure_pyqtgraph()
    return app


def attach_records_or_say_why(window):
    """The records of the data folder beside ``window``; where they cannot be opened (a damaged file, a newer
    schema, a lock, a folder that cannot be made or read) the window still starts, says why in its error banner and
    keeps a "Records unavailable" note in its status bar, and the viewer works without them (nothing is written to
    the records file). Records that can be read but not written (a read-only disk or folder) are attached read-only,
    and the window says so (``RecordsLink``). Returns the ``RecordsLink``, or None."""
    from workstation.gui.records_link import attach_records
    from workstation.records import RecordsError

    try:
        return attach_records(window)
    except (RecordsError, OSError) as exc:
        why = str(exc) if isinstance(exc, RecordsError) else (
            f"{exc.filename or 'the data folder'}: {exc.strerror or exc}")
        window.show_error(f"The patient records could not be opened: {why}. Scans can still be opened and analysed "
                          "here; nothing is saved to the records.")
        window.add_status_note("recordsUnavailable", "Records unavailable (see the error)", why)
        return None


def close_window(app, window) -> None:
    """Workers stopped and waited for, then widgets deleted and the garbage collected, in that order."""
    from PySide6 import QtCore

    window.shutdown()
    window.close()
    window.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    app.processEvents()
    gc.collect()


def wait_for(app, condition, timeout_s: float) -> bool:
    """Run the event loop until ``condition()`` or the timeout; True when the condition came true."""
    from PySide6 import QtCore

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)
    return True


def take_screenshot(app, window, file: str | None, out: str | Path, timeout_s: float = 600.0) -> int:
    """Open ``file`` (or the demo), wait for the analysis, show the chosen frame with overlays, save a PNG."""
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    finished, errors = [], []
    window.analysisFinished.connect(finished.append)
    window.errorShown.connect(errors.append)
    if file:
        window.open_file(file)
    else:
        window.open_demo()
    # Done when the analysis ends, or when the file never opened (an error and no cine).
    if not wait_for(app, lambda: finished or (errors and window.cine is None), timeout_s):
        print(f"error: the analysis did not finish within {timeout_s:.0f} s", file=sys.stderr)
        return 1
    if window.cine is None:
        print(f"error: {errors[-1]}", file=sys.stderr)
        return 1
    if errors:
        print(f"error: {errors[-1]}", file=sys.stderr)
        return 1
    window.go_to_chosen_frame()
    for _ in range(5):  # let layouts settle and the viewport paint
        app.processEvents()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out), "PNG"):
        print(f"error: cannot write {out}", file=sys.stderr)
        return 1
    chosen, why = window.analysis.chosen()
    print(f"{out}: {why}")
    return 0


def report_startup_time(out=None, timeout_s: float = 60.0) -> int:
    """``workstation --startup-time``: start the window as a person's start does (welcome page, records panels),
    wait until it has been painted once, print one line with the seconds since the process started, close in
    order and return 0 (1 if it never painted within ``timeout_s``).

    The platform is the real one when there is a display (the window flashes up for a moment); on Linux with
    neither DISPLAY nor WAYLAND_DISPLAY set, and no QT_QPA_PLATFORM chosen, it is ``offscreen``. The figures:
    ``import`` is process start to Qt and the window's modules loaded (interpreter, the app's imports, the
    QApplication), ``built`` the window and its records panels constructed, ``painted`` shown to first paint.
    It builds the window the way ``main()`` does; keep the two in step.
    """
    from workstation.selftest import process_age_s

    out = out or sys.stdout
    entered = time.perf_counter()
    age_at_entry = process_age_s()

    def age() -> float:
        """Seconds since the process started (where the OS says), else since this function was entered."""
        return (age_at_entry if age_at_entry is not None else 0.0) + time.perf_counter() - entered

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = application()
    from PySide6 import QtCore

    from workstation.gui.main_window import MainWindow

    imported = age()
    window = MainWindow()
    try:
        attach_records_or_say_why(window)  # as main() does: the records of the data folder
        built = age()

        painted: list[bool] = []

        class FirstPaint(QtCore.QObject):
            def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
                if event.type() == QtCore.QEvent.Type.Paint:
                    painted.append(True)
                return False

        watcher = FirstPaint()
        window.installEventFilter(watcher)
        window.show()
        # The backing store paints the window and all its children in one pass; a zero timer queued after the
        # first paint fires once that pass (and the flush to the screen) has returned to the event loop.
        settled: list[bool] = []
        ok = wait_for(app, lambda: bool(painted) and window.windowHandle() is not None
                      and window.windowHandle().isExposed(), timeout_s)
        if ok:
            QtCore.QTimer.singleShot(0, lambda: settled.append(True))
            ok = wait_for(app, lambda: bool(settled), timeout_s)
        shown = age()
        window.removeEventFilter(watcher)
        if not ok:
            print(f"error: the window was not painted within {timeout_s:.0f} s", file=sys.stderr)
            return 1
        if window.grab().isNull():  # the window renders (not timed)
            print("error: the window rendered nothing", file=sys.stderr)
            return 1
        since = "the process started" if age_at_entry is not None else "the window code started (no process age here)"
        print(f"startup: window shown {shown:.2f} s after {since} (import {imported:.2f} s, built "
              f"{built - imported:.2f} s, painted {shown - built:.2f} s; platform {app.platformName()})", file=out,
              flush=True)
        return 0
    finally:
        close_window(app, window)


def main(files: list[str] | None = None, screenshot: str | None = None,
         startup_time: bool = False) -> int:
    """The window on ``files`` (the first opened, the rest in File > Recent), or the welcome page with the demo
    offered; with ``screenshot``, offscreen: open, analyse, save the window as a PNG, exit 0; with ``startup_time``,
    show the window, time its first paint, print it and exit (``report_startup_time``)."""
    if startup_time:
        return report_startup_time()
    if screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no display
    app = application()
    from workstation.gui.main_window import MainWindow

    window = MainWindow()
    if not screenshot:
        attach_records_or_say_why(window)  # the records of the data folder (WORKSTATION_DATA_DIR, or the user's)
    try:
        if screenshot:
            return take_screenshot(app, window, files[0] if files else None, screenshot)
        files = list(files or [])
        for extra in reversed(files[1:]):
            window.settings.add_recent_file(extra)
        window.show()
        if files:
            window.open_file(files[0])
        return app.exec()
    finally:
        close_window(app, window)
