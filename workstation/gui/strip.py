"""The per-frame strip under the frame slider: each frame's uncertainty (bar height) and plane class (colour).

Frames fill in as the analysis reaches them; frames not analysed yet are an empty track. A white line marks the
frame on screen, a gold triangle the frame the analysis chose. Clicking or dragging on the strip jumps there.
"""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from workstation.inference.planes import BIOMETRY_PLANE, NO_ANATOMY, ONE_STRUCTURE, STANDARD_PLANE, describe_plane

CLASS_COLOURS = {
    STANDARD_PLANE: QtGui.QColor(60, 200, 120),
    ONE_STRUCTURE: QtGui.QColor(240, 170, 40),
    BIOMETRY_PLANE: QtGui.QColor(80, 150, 255),
    NO_ANATOMY: QtGui.QColor(140, 140, 140),
}
CHOSEN_COLOUR = QtGui.QColor(255, 215, 0)


class FrameStrip(QtWidgets.QWidget):
    frameRequested = QtCore.Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(46)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.setToolTip("Per-frame uncertainty (bar height) and plane class (colour); click to go to a frame")
        self.set_frame_count(0)

    def set_frame_count(self, n: int) -> None:
        self.n = int(n)
        self.uncertainty = np.full(self.n, np.nan)
        self.classes: list[str | None] = [None] * self.n
        self.current = 0
        self.chosen: int | None = None
        self.update()

    def set_result(self, index: int, uncertainty: float, frame_class: str) -> None:
        if 0 <= index < self.n:
            self.uncertainty[index] = uncertainty
            self.classes[index] = frame_class
            self.update(self._column_rect(index).toAlignedRect().adjusted(-1, 0, 1, 0))

    def set_current(self, index: int) -> None:
        if index != self.current:
            old = self.current
            self.current = index
            for i in (old, index):
                self.update(self._column_rect(i).toAlignedRect().adjusted(-3, 0, 3, 0))

    def set_chosen(self, index: int | None) -> None:
        self.chosen = index
        self.update()

    @property
    def analysed(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.uncertainty)))

    def _bar_area(self) -> QtCore.QRectF:
        return QtCore.QRectF(self.rect()).adjusted(4, 8, -4, -3)

    def _column_rect(self, index: int) -> QtCore.QRectF:
        area = self._bar_area()
        width = area.width() / max(1, self.n)
        return QtCore.QRectF(area.left() + index * width, area.top(), width, area.height())

    def index_at(self, x: float) -> int:
        area = self._bar_area()
        fraction = (x - area.left()) / max(1.0, area.width())
        return int(min(max(0, fraction * self.n), max(0, self.n - 1)))

    def paintEvent(self, event) -> None:
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), QtGui.QColor(24, 24, 24))
        if self.n == 0:
            return
        area = self._bar_area()
        painter.fillRect(area, QtGui.QColor(45, 45, 45))
        # Only the columns in the region being repainted (one frame's column during playback).
        dirty = event.rect()
        first, last = self.index_at(dirty.left() - 2), self.index_at(dirty.right() + 2)
        for i in range(first, last + 1):
            if np.isnan(self.uncertainty[i]):
                continue
            column = self._column_rect(i)
            height = max(2.0, float(self.uncertainty[i]) * area.height())
            bar = QtCore.QRectF(column.left(), area.bottom() - height, max(1.0, column.width() - 0.5), height)
            painter.fillRect(bar, CLASS_COLOURS.get(self.classes[i], QtGui.QColor(200, 200, 200)))
        if self.chosen is not None and 0 <= self.chosen < self.n:
            x = self._column_rect(self.chosen).center().x()
            triangle = QtGui.QPolygonF([QtCore.QPointF(x - 6, 0), QtCore.QPointF(x + 6, 0), QtCore.QPointF(x, 8)])
            painter.setPen(QtCore.Qt.PenStyle.NoPen)
            painter.setBrush(CHOSEN_COLOUR)
            painter.drawPolygon(triangle)
        x = self._column_rect(self.current).center().x()
        painter.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), 2))
        painter.drawLine(QtCore.QPointF(x, area.top() - 2), QtCore.QPointF(x, area.bottom() + 2))

    def mousePressEvent(self, event) -> None:
        if event.button() == QtCore.Qt.MouseButton.LeftButton and self.n:
            self.frameRequested.emit(self.index_at(event.position().x()))

    def mouseMoveEvent(self, event) -> None:
        if not self.n:
            return
        index = self.index_at(event.position().x())
        if event.buttons() & QtCore.Qt.MouseButton.LeftButton:
            self.frameRequested.emit(index)
        if np.isnan(self.uncertainty[index]):
            text = f"frame {index}: not analysed yet"
        else:
            text = (f"frame {index}: {describe_plane(self.classes[index])}, "
                    f"uncertainty {self.uncertainty[index]:.2f}")
        if index == self.chosen:
            text += " (chosen frame)"
        QtWidgets.QToolTip.showText(event.globalPosition().toPoint(), text, self)
