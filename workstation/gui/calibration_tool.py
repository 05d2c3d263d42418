"""Manual calibration: a person lays a line on the scanner's depth scale and types the distance it spans.

The line is a pyqtgraph ``LineSegmentROI`` (drag its ends onto two scale marks); the bar under the menu shows its
length in pixels and the resulting mm per pixel. Apply hands ``mm / px`` to the window, which makes it the cine's
manual calibration (``Calibration.with_manual``) and recomputes every value from its geometry.
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

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

    def set_length_px(self, px: float) -> None:
        self.length_px = float(px)
        if self.length_px < 5:
            self.result_label.setText("line too short")
            self.apply_button.setEnabled(False)
            return
        mm_per_px = self.mm_spin.value() / self.length_px
        self.result_label.setText(f"= {self.length_px:.1f} px: {mm_per_px:.4f} mm/px")
        self.apply_button.setEnabled(True)

    def _apply(self) -> None:
        if self.length_px >= 5:
            self.applied.emit(self.mm_spin.value() / self.length_px, self.mm_spin.value(), self.length_px)


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
