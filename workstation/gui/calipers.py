"""Calipers: the measurement geometry as pyqtgraph ROI handles a person drags.

- PS long axis: a ``LineSegmentROI`` (its two ends; dragging the line moves both). The AoP vertex and the HSD
  start are the axis' inferior end, so they follow it.
- AoP tangent point and HSD end: one free handle each (a ``PointROI``).
- Head ellipse: an ``EllipseROI`` (drag inside to move the centre, the round handle rotates, the square handles
  scale both axes, the major axis only or the minor axis only).

Dragging is pyqtgraph's own, kept on the image: a handle a person drags stops at the frame's edge, and so do the
PS axis' ends and the ellipse's centre when the line or the ellipse is dragged whole (a point off the image would
still be measured, into a value that means nothing). Geometry set from code is shown as given.

This module only converts between ROI state and the geometry JSON of
``workstation.measure`` and reports drags: ``editStarted`` when one begins (the caller snapshots its state),
``editPreview`` while it runs (the caller recomputes through the core), ``editFinished`` at the drop (the caller
records one undoable edit). Setting the geometry from code (a new frame, undo, redo) never emits them.
"""
from __future__ import annotations

import copy
import math

import pyqtgraph as pg
from pyqtgraph import Point
from pyqtgraph.graphicsItems.ROI import Handle
from PySide6 import QtCore, QtGui

from workstation.gui.settings import Settings
from workstation.gui.viewer import frame_rect

HANDLE_RADIUS = 7  # screen pixels: easy to grab on a touch screen, small beside the anatomy
Z_CALIPERS = 30


def style_handle(handle: Handle, colour) -> None:
    """A larger handle in the caliper's colour, white while the mouse is over it."""
    handle.radius = HANDLE_RADIUS
    handle.buildPath()
    handle.pen = handle.currentPen = pg.mkPen(colour, width=2)
    handle.hoverPen = pg.mkPen("w", width=3)
    handle.update()


def _xy(point: QtCore.QPointF) -> list[float]:
    return [round(float(point.x()), 3), round(float(point.y()), 3)]


class OnFrame:
    """Mixed into a caliper's ROI: what a person drags stays within ``frame_rect`` (the image, in frame pixels;
    None before a frame is shown). Drags reach ``movePoint`` in scene coordinates; code places handles in parent
    (frame) coordinates, and those are left alone."""

    frame_rect: QtCore.QRectF | None = None
    bounded_handle_types = ("f", "s")  # free and scale handles; a rotate handle turns the ROI, it marks no point

    def kept_on_frame(self, point) -> Point:
        r = self.frame_rect
        return Point(min(max(point.x(), r.left()), r.right()), min(max(point.y(), r.top()), r.bottom()))

    def movePoint(self, handle, pos, modifiers=None, finish=True, coords="parent"):
        if coords == "scene" and self.frame_rect is not None and \
                self.handles[self.indexOfHandle(handle)]["type"] in self.bounded_handle_types:
            pos, coords = self.kept_on_frame(self.mapSceneToParent(Point(pos))), "parent"
        super().movePoint(handle, pos, modifiers, finish=finish, coords=coords)

    def kept_shift(self, points, shift) -> Point:
        """``shift`` cut short so that every one of ``points`` (frame coordinates) stays on the frame."""
        r = self.frame_rect
        if r is None or not points:
            return Point(shift)
        xs, ys = [p.x() for p in points], [p.y() for p in points]
        dx, dy = float(shift[0]), float(shift[1])
        low_x, high_x = r.left() - min(xs), r.right() - max(xs)
        low_y, high_y = r.top() - min(ys), r.bottom() - max(ys)
        if low_x <= high_x:  # else the points span more than the frame (set from code): not bounded
            dx = min(max(dx, low_x), high_x)
        if low_y <= high_y:
            dy = min(max(dy, low_y), high_y)
        return Point(dx, dy)


class PointROI(OnFrame, pg.ROI):
    """One draggable point: an ROI that is nothing but a free handle (at the ROI origin with size 1, the handle's
    position is the frame point itself)."""

    def __init__(self, xy, colour):
        super().__init__((0, 0), (1, 1), movable=False, rotatable=False, resizable=False, removable=False)
        self.handle = self.addFreeHandle(xy)
        style_handle(self.handle, colour)

    def point(self) -> list[float]:
        return _xy(self.mapToParent(self.handle.pos()))

    def set_point(self, xy) -> None:
        self.movePoint(self.handle, QtCore.QPointF(float(xy[0]), float(xy[1])), finish=False)

    def set_colour(self, colour) -> None:
        style_handle(self.handle, colour)

    # No body: only the handle is drawn and only the handle takes the mouse.
    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF()

    def shape(self) -> QtGui.QPainterPath:
        return QtGui.QPainterPath()

    def paint(self, painter, *args) -> None:
        pass


class PSAxisROI(OnFrame, pg.LineSegmentROI):
    """The PS long axis; handle 0 is the superior end, handle 1 the inferior end."""

    def __init__(self, colour, inferior_colour):
        super().__init__([[0, 0], [1, 1]], pen=pg.mkPen(colour, width=2), hoverPen=pg.mkPen(colour, width=4))
        self.set_colours(colour, inferior_colour)

    def translate(self, *args, **kwargs):
        # Dragging the line moves both ends; neither leaves the frame.
        shift = args[0] if len(args) == 1 else args
        ends = [self.mapToParent(h.pos()) for h in self.getHandles()]
        super().translate(self.kept_shift(ends, shift), **kwargs)

    def ends(self) -> tuple[list[float], list[float]]:
        superior, inferior = (self.mapToParent(h.pos()) for h in self.getHandles())
        return _xy(superior), _xy(inferior)

    def set_ends(self, superior, inferior) -> None:
        self.setState({"pos": (0.0, 0.0), "size": (1.0, 1.0), "angle": 0.0,
                       "points": [tuple(map(float, superior)), tuple(map(float, inferior))]})

    def set_colours(self, colour, inferior_colour) -> None:
        self.setPen(pg.mkPen(colour, width=2))
        self.hoverPen = pg.mkPen(colour, width=4)
        for handle, c in zip(self.getHandles(), (colour, inferior_colour)):
            style_handle(handle, c)


class HeadEllipseROI(OnFrame, pg.EllipseROI):
    """An EllipseROI with a handle for each axis as well as the usual rotate and scale-both handles. Its scale
    handles and its centre stay on the frame; its outline may pass the edge (a head the sector cuts)."""

    def translate(self, *args, **kwargs):
        shift = args[0] if len(args) == 1 else args
        centre = Point(*self.ellipse()["center"])
        super().translate(self.kept_shift([centre], shift), **kwargs)

    def _addHandles(self):
        self.handleSize = HANDLE_RADIUS  # EllipseROI makes its handles here, at this size
        super()._addHandles()
        self.addScaleHandle([0.0, 0.5], [0.5, 0.5])  # major axis (the ROI's width) only
        self.addScaleHandle([0.5, 1.0], [0.5, 0.5])  # minor axis (the ROI's height) only

    def ellipse(self) -> dict:
        """centre, semi-axes and angle of the ellipse drawn in the ROI's rectangle (frame pixels, degrees)."""
        state = self.getState()
        w, h = float(state["size"][0]), float(state["size"][1])
        angle = float(state["angle"])
        th = math.radians(angle)
        x0, y0 = float(state["pos"][0]), float(state["pos"][1])
        cx = x0 + (w / 2) * math.cos(th) - (h / 2) * math.sin(th)
        cy = y0 + (w / 2) * math.sin(th) + (h / 2) * math.cos(th)
        return {"center": [round(cx, 3), round(cy, 3)], "semi_axes": [round(abs(w) / 2, 3), round(abs(h) / 2, 3)],
                "angle_deg": round(angle % 360.0, 3)}

    def set_ellipse(self, ellipse: dict) -> None:
        (cx, cy), (a, b) = ellipse["center"], ellipse["semi_axes"]
        angle = float(ellipse["angle_deg"])
        th = math.radians(angle)
        x0 = cx - a * math.cos(th) + b * math.sin(th)
        y0 = cy - a * math.sin(th) - b * math.cos(th)
        self.setState({"pos": (x0, y0), "size": (2 * a, 2 * b), "angle": angle})

    def set_colour(self, colour) -> None:
        self.setPen(pg.mkPen(colour, width=2))
        self.hoverPen = pg.mkPen(colour, width=4)
        for handle in self.getHandles():
            handle.pen = handle.currentPen = pg.mkPen(colour, width=2)
            handle.hoverPen = pg.mkPen("w", width=3)
            handle.update()


class Calipers(QtCore.QObject):
    """The four calipers of one frame's geometry in a ViewBox."""

    editStarted = QtCore.Signal()
    editPreview = QtCore.Signal(object)  # geometry JSON while a handle moves
    editFinished = QtCore.Signal(object)  # geometry JSON at the drop

    def __init__(self, view_box: pg.ViewBox, settings: Settings, parent=None):
        super().__init__(parent)
        self.view_box = view_box
        self.settings = settings
        colour = settings.colour
        self.ps_roi = PSAxisROI(colour("ps_axis"), colour("inferior_end"))
        self.tangent_roi = PointROI((0, 0), colour("tangent"))
        self.hsd_roi = PointROI((0, 0), colour("hsd"))
        self.ellipse_roi = HeadEllipseROI((0, 0), (2, 2), pen=pg.mkPen(colour("head_ellipse"), width=2))
        self.ellipse_roi.set_colour(colour("head_ellipse"))
        self.rois = {"ps_axis": self.ps_roi, "aop": self.tangent_roi, "hsd": self.hsd_roi,
                     "head_ellipse": self.ellipse_roi}
        self.visible = {name: settings.overlay_visible(name) for name in self.rois}
        self.editable = True
        self._geometry: dict = {}
        self._setting = False  # True while code (not a person) moves the ROIs
        self._dragging = False
        for roi in self.rois.values():
            roi.setZValue(Z_CALIPERS)
            view_box.addItem(roi)
            roi.sigRegionChangeStarted.connect(self._started)
            roi.sigRegionChanged.connect(self._changed)
            roi.sigRegionChangeFinished.connect(self._finished)
        self.set_geometry(None)

    @property
    def dragging(self) -> bool:
        return self._dragging

    def apply_settings(self) -> None:
        colour = self.settings.colour
        self.ps_roi.set_colours(colour("ps_axis"), colour("inferior_end"))
        self.tangent_roi.set_colour(colour("tangent"))
        self.hsd_roi.set_colour(colour("hsd"))
        self.ellipse_roi.set_colour(colour("head_ellipse"))

    def set_frame_shape(self, frame_shape: tuple[int, int] | None) -> None:
        """Bound the drags to the image on screen, where the viewer places it."""
        rect = None if frame_shape is None else frame_rect(frame_shape)
        for roi in self.rois.values():
            roi.frame_rect = rect

    def set_visible(self, name: str, visible: bool) -> None:
        if name in self.visible:
            self.visible[name] = bool(visible)
            self._apply_visibility()

    def set_editable(self, editable: bool) -> None:
        self.editable = bool(editable)
        for roi in self.rois.values():
            roi.setAcceptedMouseButtons(QtCore.Qt.MouseButton.LeftButton if editable
                                        else QtCore.Qt.MouseButton.NoButton)
            for handle in roi.getHandles():
                handle.setAcceptedMouseButtons(QtCore.Qt.MouseButton.LeftButton if editable
                                               else QtCore.Qt.MouseButton.NoButton)

    def _present(self, name: str) -> bool:
        g = self._geometry
        if name == "aop":
            return bool(g.get("aop") and g.get("ps_axis"))
        if name == "hsd":
            return bool(g.get("hsd") and g.get("ps_axis"))
        return bool(g.get(name))

    def _apply_visibility(self) -> None:
        for name, roi in self.rois.items():
            roi.setVisible(self.visible[name] and self._present(name))

    def set_geometry(self, geometry: dict | None) -> None:
        """Show ``geometry`` (a measurement's geometry JSON); a part that is absent hides its caliper."""
        # Kept as given (no copy: this runs for every frame during playback); geometry() copies before it edits.
        self._geometry = geometry or {}
        g = self._geometry
        self._setting = True
        try:
            for roi in self.rois.values():
                roi.blockSignals(True)
            if g.get("ps_axis"):
                self.ps_roi.set_ends(g["ps_axis"]["superior"], g["ps_axis"]["inferior"])
            if g.get("aop"):
                self.tangent_roi.set_point(g["aop"]["tangent_point"])
            if g.get("hsd"):
                self.hsd_roi.set_point(g["hsd"]["end"])
            if g.get("head_ellipse"):
                self.ellipse_roi.set_ellipse(g["head_ellipse"])
        finally:
            for roi in self.rois.values():
                roi.blockSignals(False)
            self._setting = False
            self._dragging = False
        self._apply_visibility()

    def geometry(self) -> dict:
        """The geometry as the calipers now place it: parts without a caliper (the head contour, the HSD method)
        kept; the AoP vertex and superior point and the HSD start taken from the PS axis."""
        g = copy.deepcopy(self._geometry)
        if g.get("ps_axis"):
            superior, inferior = self.ps_roi.ends()
            g["ps_axis"] = {"superior": superior, "inferior": inferior}
            if g.get("aop"):
                g["aop"] = {"vertex": inferior, "superior": superior, "tangent_point": self.tangent_roi.point()}
            if g.get("hsd"):
                g["hsd"] = {**g["hsd"], "start": inferior, "end": self.hsd_roi.point()}
        if g.get("head_ellipse"):
            g["head_ellipse"] = self.ellipse_roi.ellipse()
        return g

    def handle_points(self) -> dict[str, list[float]]:
        """Every handle's frame point, by name (what a person sees; tests compare them across undo)."""
        points = {}
        if self._geometry.get("ps_axis"):
            points["ps_superior"], points["ps_inferior"] = self.ps_roi.ends()
        if self._geometry.get("aop"):
            points["tangent_point"] = self.tangent_roi.point()
        if self._geometry.get("hsd"):
            points["hsd_end"] = self.hsd_roi.point()
        if self._geometry.get("head_ellipse"):
            e = self.ellipse_roi.ellipse()
            points["ellipse_center"] = e["center"]
            points["ellipse_axes"] = e["semi_axes"]
        return points

    def handle_scene_pos(self, name: str) -> QtCore.QPointF:
        """Scene position of a named handle: ps_superior, ps_inferior, tangent_point, hsd_end."""
        handle = {"ps_superior": lambda: self.ps_roi.getHandles()[0], "ps_inferior": lambda: self.ps_roi.getHandles()[1],
                  "tangent_point": lambda: self.tangent_roi.handle, "hsd_end": lambda: self.hsd_roi.handle}[name]()
        return handle.scenePos()

    # -- a person's drag ----------------------------------------------------------------------------
    def _started(self, roi) -> None:
        if self._setting or self._dragging:
            return
        self._dragging = True
        self.editStarted.emit()

    def _changed(self, roi) -> None:
        if self._setting or not self._dragging:
            return
        self.editPreview.emit(self.geometry())

    def _finished(self, roi) -> None:
        if self._setting or not self._dragging:
            return
        self._dragging = False
        geometry = self.geometry()
        self._geometry = copy.deepcopy(geometry)
        self.editFinished.emit(geometry)

    def remove(self) -> None:
        for roi in self.rois.values():
            self.view_box.removeItem(roi)
