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

    def predict(self, frames, tta: bool = False):
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
