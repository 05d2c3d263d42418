"""The AI's per-pixel and geometric results drawn over the frame with pyqtgraph items, each switchable.

Masks (PS and FH, tinted fills or outlines), the uncertainty map (a heat map, transparent where the model is
confident), and what is drawn from the measurement geometry around the calipers: the AoP tangent line with its
arc and value, the HSD line with its value, the PS inferior end, the head-ellipse value; a label that would cover
another is moved clear of it (``_separate``). The calipers themselves
(the editable PS axis, tangent point, HSD end and ellipse) are in ``calipers``. Layout rules follow the report
overlays (``workstation.reports.overlays``) so screen and PDF look alike.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from workstation.cine_review import FrameMaps
from workstation.gui.settings import Settings
from workstation.gui.viewer import frame_rect
from workstation.reports.overlays import aop_label, hsd_label
from workstation.reports.values import hc_label
from workstation.sources import whose_for

Z_UNCERTAINTY, Z_MASKS, Z_LINES, Z_TEXT = 4, 5, 20, 40
LABEL_GAP_PX = 3.0  # screen pixels kept between two labels moved apart


def unit_vector(p, q) -> np.ndarray:
    d = np.asarray(q, float) - np.asarray(p, float)
    n = float(np.hypot(*d))
    return d / n if n > 0 else np.zeros(2)


def outline_path(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y of every outline of ``mask``, closed, separated by NaN (one curve item draws them all)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    xs, ys = [], []
    for contour in contours:
        points = contour[:, 0, :].astype(float)
        points = np.vstack([points, points[:1], [np.nan, np.nan]])
        xs.append(points[:, 0])
        ys.append(points[:, 1])
    if not xs:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(xs), np.concatenate(ys)


def label_text(text: str, colour) -> pg.TextItem:
    item = pg.TextItem(text, color=colour, fill=pg.mkBrush(0, 0, 0, 170), anchor=(0.5, 0.5))
    font = QtGui.QFont()
    font.setPointSizeF(10.5)
    font.setBold(True)
    item.setFont(font)
    item.setZValue(Z_TEXT)
    return item


class OverlayLayer:
    """Masks, uncertainty and the drawn parts of the geometry for the frame on screen."""

    def __init__(self, view_box: pg.ViewBox, settings: Settings):
        self._whose = "AI"  # whose values the labels show (see show_geometry)
        self.view_box = view_box
        self.settings = settings
        self.frame_shape: tuple[int, int] | None = None
        self.visible = {name: settings.overlay_visible(name) for name in
                        ("masks", "ps_axis", "aop", "hsd", "head_ellipse", "uncertainty")}
        self.mask_item = pg.ImageItem(axisOrder="row-major")
        self.mask_item.setZValue(Z_MASKS)
        self.ps_outline = pg.PlotCurveItem(connect="finite")
        self.fh_outline = pg.PlotCurveItem(connect="finite")
        self.uncertainty_item = pg.ImageItem(axisOrder="row-major")
        self.uncertainty_item.setZValue(Z_UNCERTAINTY)
        self.tangent_line = pg.PlotCurveItem()
        self.aop_arc = pg.PlotCurveItem()
        self.hsd_line = pg.PlotCurveItem(connect="finite")
        self.inferior_end = pg.ScatterPlotItem(size=13, pxMode=True)
        self.aop_text = label_text("", (255, 255, 255))
        self.hsd_text = label_text("", (255, 255, 255))
        self.hc_text = label_text("", (255, 255, 255))
        for item in (self.ps_outline, self.fh_outline):
            item.setZValue(Z_MASKS)
        for item in (self.tangent_line, self.aop_arc, self.hsd_line, self.inferior_end):
            item.setZValue(Z_LINES)
        self.items = [self.mask_item, self.ps_outline, self.fh_outline, self.uncertainty_item, self.tangent_line,
                      self.aop_arc, self.hsd_line, self.inferior_end, self.aop_text, self.hsd_text, self.hc_text]
        for item in self.items:
            view_box.addItem(item)
        self._maps: FrameMaps | None = None
        self._drawn: dict[str, bool] = {}
        self._placed: dict[int, tuple] = {}  # each label's item, anchor point and direction (see _place)
        view_box.sigTransformChanged.connect(self._view_changed)
        self.apply_settings()
        self.clear()

    # -- settings -----------------------------------------------------------------------------------
    def apply_settings(self) -> None:
        colour = self.settings.colour
        self._mask_lut = np.zeros((256, 4), np.uint8)
        alpha = round(255 * self.settings.mask_opacity)
        self._mask_lut[1] = (*colour("ps_mask"), alpha)
        self._mask_lut[2] = (*colour("fh_mask"), alpha)
        heat = pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=False).astype(np.uint8)
        # Transparent where the model is confident, more opaque as the entropy rises.
        strength = np.clip((np.arange(256) / 255.0 - 0.1) / 0.9, 0.0, 1.0)
        self._heat_lut = np.column_stack([heat, np.round(255 * strength * self.settings.uncertainty_opacity)]
                                         ).astype(np.uint8)
        self.ps_outline.setPen(pg.mkPen(colour("ps_mask"), width=2))
        self.fh_outline.setPen(pg.mkPen(colour("fh_mask"), width=2))
        self.tangent_line.setPen(pg.mkPen(colour("tangent"), width=2))
        self.aop_arc.setPen(pg.mkPen(colour("tangent"), width=2))
        self.hsd_line.setPen(pg.mkPen(colour("hsd"), width=2, style=QtCore.Qt.PenStyle.DashLine))
        self.inferior_end.setBrush(pg.mkBrush(colour("inferior_end")))
        self.inferior_end.setPen(pg.mkPen("k", width=1))
        self.aop_text.setColor(colour("tangent"))
        self.hsd_text.setColor(colour("hsd"))
        self.hc_text.setColor(colour("head_ellipse"))
        self.mask_outlines = self.settings.mask_outlines
        if self._maps is not None and self.frame_shape is not None:
            self.show_maps(self._maps, self.frame_shape)

    def set_visible(self, name: str, visible: bool) -> None:
        self.visible[name] = bool(visible)
        self._apply_visibility()

    def _apply_visibility(self) -> None:
        has_maps = self._maps is not None
        self.mask_item.setVisible(has_maps and self.visible["masks"] and not self.mask_outlines)
        for item in (self.ps_outline, self.fh_outline):
            item.setVisible(has_maps and self.visible["masks"] and self.mask_outlines)
        self.uncertainty_item.setVisible(has_maps and self.visible["uncertainty"])
        for item in (self.tangent_line, self.aop_arc, self.aop_text):
            item.setVisible(self.visible["aop"] and self._drawn.get("aop", False))
        for item in (self.hsd_line, self.hsd_text):
            item.setVisible(self.visible["hsd"] and self._drawn.get("hsd", False))
        self.inferior_end.setVisible(self.visible["ps_axis"] and self._drawn.get("ps_axis", False))
        self.hc_text.setVisible(self.visible["head_ellipse"] and self._drawn.get("head_ellipse", False))
        self._separate()

    # -- per frame ----------------------------------------------------------------------------------
    def clear(self) -> None:
        self._maps = None
        self._drawn: dict[str, bool] = {}
        self._apply_visibility()

    def show_maps(self, maps: FrameMaps | None, frame_shape: tuple[int, int]) -> None:
        self._maps = maps
        self.frame_shape = frame_shape
        if maps is not None:
            rect = frame_rect(frame_shape)
            labels = maps.labels()
            if self.mask_outlines:
                self.ps_outline.setData(*outline_path(labels == 1))
                self.fh_outline.setData(*outline_path(labels == 2))
            else:
                # The label map with a colour table (an indexed image): no per-pixel colouring in Python.
                self.mask_item.setImage(labels, lut=self._mask_lut, autoLevels=False, levels=(0, 255))
                self.mask_item.setRect(rect)
            self.uncertainty_item.setImage(maps.uncertainty_small, lut=self._heat_lut, autoLevels=False,
                                           levels=(0, 255))
            self.uncertainty_item.setRect(rect)
        self._apply_visibility()

    def show_geometry(self, measured: dict | None, whose: "str | dict" = "AI") -> None:
        """Lines and values from a measurement JSON (AI, corrected or a live preview during a drag); ``whose``
        ("AI", "corrected", "confirmed"; one for all, or one per quantity, ``FrameMeasurementState.whose``) follows
        each value on the image, so an AI value never reads as a person's (an AoP untouched by a correction of the HSD
        stays "(AI)")."""
        self._whose = whose
        measured = measured or {}
        geometry = measured.get("geometry") or {}
        self._drawn = {}
        unit = max(1.0, min(self.frame_shape or (360, 360)) / 360.0)
        ps_axis, aop, hsd, ellipse = (geometry.get(k) for k in ("ps_axis", "aop", "hsd", "head_ellipse"))
        if ps_axis:
            self.inferior_end.setData([ps_axis["inferior"][0]], [ps_axis["inferior"][1]])
            self._drawn["ps_axis"] = True
        if aop:
            self._draw_aop(aop, measured, unit)
            self._drawn["aop"] = True
        if hsd:
            self._draw_hsd(hsd, measured, (aop or {}).get("tangent_point"), unit)
            self._drawn["hsd"] = True
        if ellipse:
            text = hc_label(measured, whose_for(self._whose, "head"))  # as the report's key frame writes it
            if text:
                centre = np.asarray(ellipse["center"], float)
                a, b = ellipse["semi_axes"]
                # Under the ellipse's lowest point, where no transperineal line runs.
                self._place(self.hc_text, text, centre + np.array([0.0, max(a, b) * 0.55]), np.array([0.0, 1.0]))
                self._drawn["head_ellipse"] = True
        self._apply_visibility()

    def _place(self, item: pg.TextItem, text: str, anchor_point: np.ndarray, away: np.ndarray) -> None:
        """Text with its near edge at ``anchor_point``, beyond it along ``away``, the whole text kept inside the frame
        (placed again whenever the view's scale changes, as the text keeps its size on screen)."""
        item.setText(text)
        self._placed[id(item)] = (item, np.asarray(anchor_point, float), np.asarray(away, float))
        self._position(item, *self._placed[id(item)][1:])

    def _position(self, item: pg.TextItem, anchor_point: np.ndarray, away: np.ndarray) -> None:
        rows, cols = self.frame_shape or (1, 1)
        x = min(max(anchor_point[0], 0.04 * cols), 0.96 * cols)
        y = min(max(anchor_point[1], 0.04 * rows), 0.96 * rows)
        ax, ay = 0.5 - 0.5 * float(away[0]), 0.5 - 0.5 * float(away[1])
        # The text's size in frame pixels at the view's scale now: keep all of it on the frame, not only its anchor.
        size = item.textItem.boundingRect()
        try:
            per_x, per_y = (abs(float(v)) for v in self.view_box.viewPixelSize())
        except (TypeError, AttributeError, ZeroDivisionError):  # not in a shown view yet: the anchor alone is kept in
            per_x = per_y = float("nan")
        if np.isfinite(per_x) and np.isfinite(per_y) and per_x > 0 and per_y > 0:
            width, height = size.width() * per_x, size.height() * per_y
            if width < cols:
                x = min(max(x, -0.5 + ax * width), cols - 0.5 - (1 - ax) * width)
            if height < rows:
                y = min(max(y, -0.5 + ay * height), rows - 0.5 - (1 - ay) * height)
        item.setAnchor((ax, ay))
        item.setPos(float(x), float(y))

    def _view_changed(self, *_args) -> None:
        self._separate()

    def _separate(self) -> None:
        """Place the shown labels (AoP, HSD, head), each where ``_place`` put it unless it would cover one placed
        before it: then moved clear of it by the smallest step up, down, left or right that keeps it on the frame and
        off the others (e.g. a withheld AoP's label by the HSD's, when the tangent point lies on the PS inferior
        end). In screen pixels, as the labels keep their size on screen."""
        taken: list[QtCore.QRectF] = []
        for item in (self.aop_text, self.hsd_text, self.hc_text):
            if not item.isVisible() or id(item) not in self._placed:
                continue
            self._position(item, *self._placed[id(item)][1:])
            rect = item.sceneBoundingRect()
            if any(rect.intersects(other) for other in taken):
                self._move_clear(item, rect, taken)
            taken.append(item.sceneBoundingRect())

    def _move_clear(self, item: pg.TextItem, rect: QtCore.QRectF, taken: list[QtCore.QRectF]) -> None:
        gap = LABEL_GAP_PX
        frame = self.view_box.mapViewToScene(frame_rect(self.frame_shape or (1, 1))).boundingRect()
        steps = [(0.0, other.bottom() - rect.top() + gap) for other in taken] + \
                [(0.0, other.top() - rect.bottom() - gap) for other in taken] + \
                [(other.right() - rect.left() + gap, 0.0) for other in taken] + \
                [(other.left() - rect.right() - gap, 0.0) for other in taken]
        clear = [(dx, dy) for dx, dy in steps
                 if not any(rect.translated(dx, dy).intersects(other) for other in taken)]
        inside = [(dx, dy) for dx, dy in clear if frame.contains(rect.translated(dx, dy))]
        if not (inside or clear):
            return
        dx, dy = min(inside or clear, key=lambda step: math.hypot(*step))
        origin = self.view_box.mapSceneToView(QtCore.QPointF(0.0, 0.0))
        moved = self.view_box.mapSceneToView(QtCore.QPointF(dx, dy))
        item.setPos(item.pos() + (moved - origin))

    def _draw_aop(self, aop: dict, measured: dict, unit: float) -> None:
        vertex, superior, tangent = (np.asarray(aop[k], float) for k in ("vertex", "superior", "tangent_point"))
        reach = float(np.hypot(*(tangent - vertex)))
        direction = unit_vector(vertex, tangent)
        line_end = vertex + direction * reach * 1.25  # on past the skull a little, as drawn on the scanner
        self.tangent_line.setData([vertex[0], line_end[0]], [vertex[1], line_end[1]])
        start = math.atan2(*(superior - vertex)[::-1])
        end = math.atan2(*(tangent - vertex)[::-1])
        sweep = (end - start + 3 * math.pi) % (2 * math.pi) - math.pi  # the angle itself, not its complement
        radius = min(28.0 * unit, 0.6 * reach)
        t = start + np.linspace(0.0, sweep, 48)
        self.aop_arc.setData(vertex[0] + radius * np.cos(t), vertex[1] + radius * np.sin(t))
        text = aop_label(measured, whose_for(self._whose, "aop"), degree="°")
        self._place(self.aop_text, text, line_end + direction * 6 * unit, direction)

    def _draw_hsd(self, hsd: dict, measured: dict, tangent_point, unit: float) -> None:
        start, end = np.asarray(hsd["start"], float), np.asarray(hsd["end"], float)
        across = unit_vector(start, end)[::-1] * np.array([1.0, -1.0])
        tick = across * 5 * unit
        points = [start, end, [np.nan, np.nan], start - tick, start + tick, [np.nan, np.nan], end - tick, end + tick]
        xy = np.array(points, float)
        self.hsd_line.setData(xy[:, 0], xy[:, 1])
        middle = (start + end) / 2
        # On the side of the line away from the tangent line, so the two labels never meet.
        if tangent_point is not None and np.dot(across, np.asarray(tangent_point, float) - middle) > 0:
            across = -across
        self._place(self.hsd_text, hsd_label(measured, whose_for(self._whose, "hsd")), middle + across * 8 * unit, across)

    def remove(self) -> None:
        for item in self.items:
            self.view_box.removeItem(item)
