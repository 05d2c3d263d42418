"""The Qt binding does not over-release None/True/False.

PySide6 6.12.0 drops a reference to None (and True) on every call of a void method such as ``setVisible`` or
pyqtgraph's ``ImageItem.setImage``; a window that plays a cine makes thousands of such calls, and the process
then aborts with "Fatal Python error: bool_dealloc" (at exit, or sooner). pyproject.toml pins PySide6 below 6.12;
this test fails on any binding with the fault, whatever the pin says, before a user meets the crash.
"""
from __future__ import annotations

import gc
import sys

import numpy as np
import pytest


CALLS = 300
# A few references come and go with caches and the garbage collector; the fault loses one per call.
TOLERANCE = 20


def references_lost(call) -> dict[str, int]:
    gc.collect()
    before = {name: sys.getrefcount(obj) for name, obj in (("None", None), ("True", True), ("False", False))}
    for _ in range(CALLS):
        call()
    gc.collect()
    return {name: before[name] - sys.getrefcount(obj) for name, obj in (("None", None), ("True", True),
                                                                        ("False", False))}


def test_void_calls_keep_the_references_of_none_and_booleans(qapp):
    import pyqtgraph as pg
    from PySide6 import QtWidgets

    label = QtWidgets.QLabel()
    image = pg.ImageItem(axisOrder="row-major")
    frame = np.zeros((32, 32), np.uint8)
    for name, call in (("QLabel.setVisible", lambda: label.setVisible(False)),
                       ("QLabel.setText", lambda: label.setText("x")),
                       ("ImageItem.setImage", lambda: image.setImage(frame, autoLevels=False, levels=(0, 255)))):
        lost = references_lost(call)
        assert max(lost.values()) < TOLERANCE, (
            f"{name} lost references {lost} over {CALLS} calls: this Qt binding over-releases singletons and will "
            f"abort with 'Fatal Python error: bool_dealloc'; use the PySide6 version pyproject.toml pins")
