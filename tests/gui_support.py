"""Helpers for the window tests (no tests here): a short demo DICOM, an oracle model, real mouse drags through the
scene, and a guard that fails a test which leaves a worker running.

The oracle model knows every demo frame's exact label map (found by the frame's pixels), so the window's values
can be checked against ``workstation.measure`` on known anatomy and every frame has an AoP; the shipped model is
used where its real cost matters (the responsiveness test, the screenshot).
"""
from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from workstation.inference.engine import FramePrediction
from workstation.inference.planes import DEFAULT_PLANE_CLASSES
from workstation.io import to_gray

DEMO_FRAMES = 12
PLANE_CLASSES = DEFAULT_PLANE_CLASSES


def frame_key(frame: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(to_gray(frame)).tobytes()).hexdigest()


@lru_cache(maxsize=2)
def synthetic_demo(n_frames: int = DEMO_FRAMES, seed: int = 0):
    from workstation.synthetic import make_transperineal_cine

    return make_transperineal_cine(n_frames=n_frames, seed=seed)


class OracleModel:
    """A stand-in for the ONNX model that returns the synthetic cine's exact labels as probabilities.

    ``delay_s`` per batch makes the analysis slow enough to cancel; ``fail_at`` raises on that batch.
    """

    def __init__(self, n_frames: int = DEMO_FRAMES, seed: int = 0, delay_s: float = 0.0, fail_at: int | None = None):
        cine = synthetic_demo(n_frames, seed)
        self.labels = {frame_key(f): l for f, l in zip(cine.frames, cine.labels)}
        self.manifest = SimpleNamespace(name="oracle", version="test", placeholder=False, uncertainty=None,
                                        min_head_plane_probability=None,
                                        outputs=SimpleNamespace(plane_classes=PLANE_CLASSES))
        self.delay_s = delay_s
        self.fail_at = fail_at
        self.batches = 0

    def describe(self) -> dict:
        return {"name": "oracle", "version": "test", "placeholder": False, "device": "cpu", "threads": 1}

    def predict(self, frames, tta: bool = False, aspect: float = 1.0):
        # ``aspect`` (the pixels' shape, as the real engine takes it): the oracle's labels are the frame's own.
        self.batches += 1
        if self.fail_at is not None and self.batches >= self.fail_at:
            raise RuntimeError("the oracle was told to fail")
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for frame in frames:
            labels = self.labels.get(frame_key(frame))
            if labels is None:
                labels = np.zeros(frame.shape[:2], np.uint8)
            probs = (np.eye(3, dtype=np.float32)[labels].transpose(2, 0, 1) * 0.94 + 0.02)
            out.append(FramePrediction(probs, None, None, 0.0))
        return out


def write_demo(folder: Path, n_frames: int = DEMO_FRAMES, name: str = "demo.dcm") -> Path:
    from workstation.synthetic import write_demo_cine

    folder.mkdir(parents=True, exist_ok=True)
    return write_demo_cine(folder / name, n_frames=n_frames)


@pytest.fixture
def no_leftover_jobs(qapp):
    """Fails the test if it leaves a pool job or thread running (a window not shut down, a job not cancelled)."""
    yield
    import shiboken6
    from PySide6 import QtCore

    from workstation.gui.workers import WorkerPool

    qapp.processEvents()
    busy = [p.name for p in WorkerPool.live_pools() if shiboken6.isValid(p) and p.busy()]
    global_active = QtCore.QThreadPool.globalInstance().activeThreadCount()
    for pool in WorkerPool.live_pools():  # do not let one test's leftovers fail the next
        if shiboken6.isValid(pool):
            pool.shutdown(5000)
    if busy or global_active:
        pytest.fail(f"the test left work running: pools {busy}, {global_active} global pool thread(s)")


@pytest.fixture
def make_window(qtbot, qapp, tmp_path):
    """``make_window(model_provider=None, user="Dr Test")``: a shown window analysing with the oracle model."""
    from workstation.gui.app import close_window, configure_pyqtgraph
    from workstation.gui.main_window import MainWindow
    from workstation.gui.settings import Settings

    configure_pyqtgraph()
    windows = []

    def make(model_provider=None, user: str | None = "Dr Test", size=(1280, 820)):
        settings = Settings(tmp_path / f"settings-{len(windows)}.ini")
        if user is not None:
            settings.user_name = user
        oracle = OracleModel()
        window = MainWindow(settings=settings, model_provider=model_provider or (lambda: oracle))
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        windows.append(window)
        return window

    yield make
    for window in windows:
        close_window(qapp, window)


def open_and_analyse(qtbot, window, path, timeout_ms: int = 60_000, **kwargs) -> None:
    with qtbot.waitSignal(window.analysisFinished, timeout=timeout_ms):
        window.open_file(path, **kwargs)


def mouse_drag(qtbot, window, start, end, steps: int = 8) -> None:
    """Press, move in steps and release the left button on the viewer's viewport, as a hand would: pyqtgraph
    takes at most 100 mouse moves a second, so the moves are spaced."""
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    viewport = window.view.viewport()
    left, none = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
    QTest.mouseMove(viewport, start)
    qtbot.wait(15)
    QTest.mousePress(viewport, left, none, start)
    for k in range(1, steps + 1):
        qtbot.wait(15)
        point = QtCore.QPoint(round(start.x() + (end.x() - start.x()) * k / steps),
                              round(start.y() + (end.y() - start.y()) * k / steps))
        QTest.mouseMove(viewport, point)
    qtbot.wait(15)
    QTest.mouseRelease(viewport, left, none, end)
    qtbot.wait(5)


APP_START_REPORT = """
import sys
from PySide6 import QtCore, QtWidgets
from workstation.gui import app

app.application()

def report_and_close():
    window = next(w for w in QtWidgets.QApplication.topLevelWidgets() if w.inherits("QMainWindow"))
    note = window.statusBar().findChild(QtWidgets.QLabel, "recordsUnavailable")
    read_only = window.statusBar().findChild(QtWidgets.QLabel, "recordsReadOnly")
    print("BANNER", window.error_banner.text, flush=True)
    print("NOTE", None if note is None else note.text(), flush=True)
    print("READONLY", None if read_only is None else read_only.text(), flush=True)
    docks = [d for d in window.findChildren(QtWidgets.QDockWidget) if d.windowTitle() == "Patients"]
    if docks:
        panel = docks[0].widget()
        panel.select_labor(1) if panel.labor_table.rowCount() == 0 else None
        print("EXAMS", panel.exam_table.rowCount(), flush=True)
    QtCore.QTimer.singleShot(100, window.close)

QtCore.QTimer.singleShot(500, report_and_close)
sys.exit(app.main([]))
"""


def start_the_app_on(data: Path):
    """Start the real app (a fresh process, as ``workstation`` starts it) on the data folder, let it report its banner
    (and its status-bar notes, and how many exams its Patients panel lists) and close; it must start and close cleanly
    whatever state the records are in. Returns the run and its banner line."""
    import os
    import subprocess
    import sys

    from conftest import REPO_ROOT

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "WORKSTATION_DATA_DIR": str(data)}
    run = subprocess.run([sys.executable, "-c", APP_START_REPORT], capture_output=True, text=True, cwd=REPO_ROOT,
                         timeout=300, env=env)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    return run, next(line for line in run.stdout.splitlines() if line.startswith("BANNER"))


def read_only_bind_mount(source: Path, target: Path):
    """``source`` bind-mounted read-only at ``target`` (a real read-only file system: even root cannot write there,
    as on an archived copy or a write-protected disk). A context manager; skips the test, with the reason, where this
    machine does not allow mounting (not root, no mount namespace)."""
    import contextlib
    import os
    import shutil
    import subprocess

    @contextlib.contextmanager
    def mounted():
        if os.name != "posix" or shutil.which("mount") is None or os.geteuid() != 0:
            pytest.skip("a read-only bind mount needs root and mount(8) on Linux")
        target.mkdir(parents=True, exist_ok=True)
        bind = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True)
        if bind.returncode != 0:
            pytest.skip(f"mount --bind is not permitted here: {bind.stderr.strip()}")
        try:
            ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True, text=True)
            if ro.returncode != 0:
                pytest.skip(f"a read-only remount is not permitted here: {ro.stderr.strip()}")
            probe = target / ".write-probe"
            try:
                probe.write_text("x")
            except OSError:
                pass
            else:
                probe.unlink()
                pytest.skip("the read-only bind mount can still be written here")
            yield target
        finally:
            subprocess.run(["umount", str(target)], capture_output=True)

    return mounted()
