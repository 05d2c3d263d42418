"""Manual calibration: a person lays a line on the scanner's depth scale and types the distance it spans.

The line is a pyqtgraph ``LineSegmentROI`` (drag its ends onto two scale marks); the bar under the menu shows its
length in pixels and the resulting mm per pixel. Apply hands ``mm / px`` to the window, which makes it the cine's
manual calibration (``Calibration.with_manual``) and recomputes every value from its geometry.

The scale is judged by the core's one rule (``workstation.calibration.manual_scale_problem``: the plausible range of
an ultrasound image, as for ``workstation calibrate``): outside it Apply is disabled and the bar says why. Where the
window has told the bar the file's own calibration (:meth:`CalibrationBar.set_file_calibration`), a scale that differs
from it by more than a few percent is applied only with a warning in the bar saying by how much.
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from workstation.calibration import describe_mm_per_px, manual_scale_disagreement, manual_scale_problem

LINE_COLOUR = (0, 255, 255)


class CalibrationBar(QtWidgets.QFrame):
    """The tool's controls; ``applied(mm_per_px, mm, px)``, ``fileCalibrationRequested``, ``cancelled``."""

    applied = QtCore.Signal(float, float, float)
    fileCalibrationRequested = QtCore.Signal()
    cancelled = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.setStyleSheet("CalibrationBar { background: #103838; }")
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(8, 4, 8, 4)
        instructions = QtWidgets.QLabel("Manual calibration: drag the ends of the cyan line onto two marks of the "
                                        "scanner's depth scale and enter the distance between the marks.")
        instructions.setWordWrap(True)
        outer.addWidget(instructions)
        layout = QtWidgets.QHBoxLayout()
        outer.addLayout(layout)
        layout.addWidget(QtWidgets.QLabel("The marks are"))
        self.mm_spin = QtWidgets.QDoubleSpinBox()
        self.mm_spin.setRange(0.5, 500.0)
        self.mm_spin.setDecimals(1)
        self.mm_spin.setValue(50.0)
        self.mm_spin.setSuffix(" mm")
        self.mm_spin.setToolTip("The distance between the two marks, read off the depth scale")
        layout.addWidget(self.mm_spin)
        layout.addWidget(QtWidgets.QLabel("apart."))
        self.result_label = QtWidgets.QLabel()
        self.result_label.setMinimumWidth(60)
        self.result_label.setWordWrap(True)  # a refusal or a warning says why in words
        layout.addWidget(self.result_label, 1)
        self.apply_button = QtWidgets.QPushButton("Apply")
        self.file_button = QtWidgets.QPushButton("File's calibration")
        self.file_button.setToolTip("Drop the manual calibration: back to what the file says")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        for button in (self.apply_button, self.file_button, self.cancel_button):
            layout.addWidget(button)
        self.apply_button.clicked.connect(self._apply)
        self.file_button.clicked.connect(self.fileCalibrationRequested)
        self.cancel_button.clicked.connect(self.cancelled)
        self.mm_spin.valueChanged.connect(lambda _: self.set_length_px(self.length_px))
        self.length_px = 0.0
        self._file_calibration, self._frame_shape = None, None

    def set_file_calibration(self, calibration, frame_shape) -> None:
        """The file's own calibration (a ``workstation.calibration.Calibration``) and the frame's shape, which a
        manual scale is compared with (a warning where they differ by more than a few percent); None: not compared."""
        self._file_calibration, self._frame_shape = calibration, frame_shape
        self.set_length_px(self.length_px)

    def mm_per_px(self) -> float | None:
        """The scale the line and the distance give, None where the line is too short to give one."""
        return self.mm_spin.value() / self.length_px if self.length_px >= 5 else None

    def set_length_px(self, px: float) -> None:
        self.length_px = float(px)
        if self.length_px < 5:
            self.result_label.setText("line too short")
            self.apply_button.setEnabled(False)
            return
        mm_per_px = self.mm_per_px()
        text = f"= {self.length_px:.1f} px: {describe_mm_per_px(mm_per_px)}"
        problem = manual_scale_problem(mm_per_px)
        if problem is not None:
            self.result_label.setText(f"{text}: not applied: {problem}")
            self.apply_button.setEnabled(False)
            return
        warning = (None if self._file_calibration is None or self._frame_shape is None else
                   manual_scale_disagreement(self._file_calibration, mm_per_px, self._frame_shape))
        self.result_label.setText(text if warning is None else f"{text}. Warning: {warning}")
        self.apply_button.setEnabled(True)

    def _apply(self) -> None:
        mm_per_px = self.mm_per_px()
        if mm_per_px is not None and manual_scale_problem(mm_per_px) is None:
            self.applied.emit(mm_per_px, self.mm_spin.value(), self.length_px)


class CalibrationLine:
    """The line laid on the depth scale, in a ViewBox."""

    def __init__(self, view_box: pg.ViewBox, frame_shape: tuple[int, int], on_change):
        rows, cols = frame_shape
        # Start vertical near the left edge, where scanners usually draw the depth scale.
        x = 0.06 * cols
        self.roi = pg.LineSegmentROI([[x, 0.15 * rows], [x, 0.85 * rows]],
                                     pen=pg.mkPen(LINE_COLOUR, width=2, style=QtCore.Qt.PenStyle.DashLine))
        self.roi.setZValue(50)
        self.view_box = view_box
        view_box.addItem(self.roi)
        self.roi.sigRegionChanged.connect(lambda _: on_change(self.length_px()))
        on_change(self.length_px())

    def ends(self) -> tuple[tuple[float, float], tuple[float, float]]:
        p, q = (self.roi.mapToParent(h.pos()) for h in self.roi.getHandles())
        return (p.x(), p.y()), (q.x(), q.y())

    def length_px(self) -> float:
        (x0, y0), (x1, y1) = self.ends()
        return math.hypot(x1 - x0, y1 - y0)

    def remove(self) -> None:
        self.view_box.removeItem(self.roi)
