"""The cine viewer: one pyqtgraph ImageItem in an aspect-locked ViewBox, and playback at the file's frame rate.

Coordinates: the ViewBox shows frame pixels with y (rows) downwards, and the image is placed so that pixel
centres sit on integer coordinates, as in ``workstation.measure`` geometry: every overlay and caliper then uses
the core's (x, y) = (column, row) points as they are.

The aspect lock follows the pixels' shape in the patient (``FrameView.set_pixel_aspect``: mm per row over mm per
column): a scan whose rows are taller than its columns are wide is drawn stretched to match, as its AoP and HSD are
built (``workstation.measure.transperineal.frame_aspect``, one number for the frame), so the angle drawn is the angle
measured.

Frames are decoded on demand through the cine's own small LRU cache (``workstation.io.cine.FrameSequence``);
the analysis reads the same file through a cine of its own, so playback never waits for the analysis' decoder.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

SPEEDS = (0.25, 0.5, 1.0, 1.5, 2.0)


def frame_rect(frame_shape: tuple[int, ...]) -> QtCore.QRectF:
    """Where a frame of this (rows, cols) shape lies in the view: pixel centres on integer coordinates."""
    return QtCore.QRectF(-0.5, -0.5, frame_shape[1], frame_shape[0])


class CineImageItem(pg.ImageItem):
    """The frame on screen; counts its paints so the display frame rate can be measured, not assumed."""

    def __init__(self):
        super().__init__(axisOrder="row-major")
        self.paint_count = 0

    def paint(self, painter, *args):
        self.paint_count += 1
        super().paint(painter, *args)


class FrameView(pg.GraphicsView):
    """Zoom (wheel), pan (drag on the background), aspect ratio kept; ``fit`` shows the whole frame."""

    def __init__(self, parent=None):
        super().__init__(parent, background="k")
        self.view_box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.setCentralItem(self.view_box)
        self.image = CineImageItem()
        self.view_box.addItem(self.image)
        self.frame_shape: tuple[int, int] | None = None
        self.pixel_aspect = 1.0

    def set_pixel_aspect(self, aspect: float) -> None:
        """Show a pixel row ``aspect`` times as tall as a column is wide (mm per row over mm per column; 1: square).
        pyqtgraph's lock ratio is x scale over y scale (screen pixels per view unit), so it is 1 / aspect."""
        aspect = float(aspect) if aspect and aspect > 0 and np.isfinite(aspect) else 1.0
        if aspect == self.pixel_aspect:
            return
        self.pixel_aspect = aspect
        self.view_box.setAspectLocked(True, ratio=1.0 / aspect)
        self.fit()

    def aspect_ratio(self) -> float:
        """The view's locked ratio as pyqtgraph keeps it (x scale over y scale)."""
        return float(self.view_box.state["aspectLocked"])

    def set_frame(self, frame: np.ndarray) -> None:
        shape = frame.shape[:2]
        # Fixed levels: no per-frame histogram (that would cost time and make the grey scale flicker).
        self.image.setImage(frame, autoLevels=False, levels=(0, 255))
        if shape != self.frame_shape:
            self.frame_shape = (int(shape[0]), int(shape[1]))
            self.image.setRect(frame_rect(shape))
            self.fit()

    def clear(self) -> None:
        self.image.clear()
        self.frame_shape = None

    def fit(self) -> None:
        if self.frame_shape is not None:
            self.view_box.setRange(frame_rect(self.frame_shape), padding=0.01)

    def viewport_point(self, x: float, y: float) -> QtCore.QPoint:
        """Where a frame point (x, y) is on this widget's viewport (for tests and tools)."""
        scene = self.view_box.mapViewToScene(QtCore.QPointF(x, y))
        return self.mapFromScene(scene)


class Playback(QtCore.QObject):
    """Which frame is shown, and playing at the cine's real frame times (times_s), at a speed, with loop.

    The timer ticks at half the frame interval and the frame is chosen from the elapsed wall time, so the
    rate holds on average whatever the timer's jitter, and a slow frame is skipped rather than slowing the clock.
    """

    frameChanged = QtCore.Signal(int)
    playingChanged = QtCore.Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self._clock = QtCore.QElapsedTimer()
        self.times = np.zeros(1)
        self.index = 0
        self.speed = 1.0
        self.loop = True
        self._start_time = 0.0

    @property
    def n_frames(self) -> int:
        return len(self.times)

    @property
    def frame_interval_s(self) -> float:
        if self.n_frames < 2:
            return 0.04
        return float(self.times[-1] - self.times[0]) / (self.n_frames - 1) or 0.04

    @property
    def duration_s(self) -> float:
        """The last frame is shown for one frame interval too."""
        return float(self.times[-1] - self.times[0]) + self.frame_interval_s

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def set_times(self, times_s) -> None:
        self.pause()
        self.times = np.asarray(times_s, dtype=np.float64) - float(times_s[0])
        self.index = 0

    def set_speed(self, speed: float) -> None:
        self.speed = float(speed)
        if self.playing:  # keep the current frame, change only the rate from here on
            self._anchor()
            self.timer.setInterval(self._interval_ms())

    def _interval_ms(self) -> int:
        return max(4, int(self.frame_interval_s / self.speed * 1000 / 2))

    def _anchor(self) -> None:
        self._start_time = float(self.times[self.index])
        self._clock.restart()

    def play(self) -> None:
        if self.n_frames < 2 or self.playing:
            return
        if self.index == self.n_frames - 1 and not self.loop:
            self.go_to(0)
        self._anchor()
        self.timer.start(self._interval_ms())
        self.playingChanged.emit(True)

    def pause(self) -> None:
        if self.playing:
            self.timer.stop()
            self.playingChanged.emit(False)

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def go_to(self, index: int) -> None:
        index = int(min(max(0, index), self.n_frames - 1))
        if self.playing:
            self.index = index
            self._anchor()
        if index != self.index or not self.playing:
            self.index = index
            self.frameChanged.emit(index)

    def step(self, delta: int) -> None:
        self.pause()
        self.go_to(self.index + delta)

    def first(self) -> None:
        self.pause()
        self.go_to(0)

    def last(self) -> None:
        self.pause()
        self.go_to(self.n_frames - 1)

    def _tick(self) -> None:
        t = self._start_time + self._clock.elapsed() / 1000.0 * self.speed
        if t >= self.duration_s:
            if not self.loop:
                self.pause()
                if self.index != self.n_frames - 1:
                    self.index = self.n_frames - 1
                    self.frameChanged.emit(self.index)
                return
            t %= self.duration_s
            self._start_time = t
            self._clock.restart()
        index = int(np.searchsorted(self.times, t, side="right") - 1)
        if index != self.index:
            self.index = index
            self.frameChanged.emit(index)
