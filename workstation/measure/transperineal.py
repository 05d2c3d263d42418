"""Angle of progression and head-symphysis distance on a transperineal frame.

Constructions follow the ISUOG Practice Guidelines: intrapartum ultrasound (Ghi et al., Ultrasound Obstet Gynecol
2018; 52:128-139) and Kalache et al. 2009 (Ultrasound Obstet Gynecol 33:326-330):

- PS long axis: the principal axis of the pubic symphysis (PCA of its pixels); its ends are the region's extreme
  projections on that axis. The inferior (caudal) end is the end nearer the fetal head.
- AoP: the angle at the inferior end between the ray to the superior end and the line from the inferior end
  tangent to the fetal skull; of the two tangents, the one that gives the larger angle (the leading edge of the skull).
- HSD: from the inferior end to the head along the perpendicular to the PS axis, towards the head.

Angles and perpendiculars are taken in the patient, not on the pixel grid: where the calibration gives a scale whose
rows and columns differ (non-square pixels), every construction runs on coordinates stretched to it
(``frame_aspect``) and its points are mapped back to pixels. Tangent points do not move under that stretch; the PS
axis, the AoP and the HSD perpendicular do. Without a scale the pixels are taken as square, as the frame is shown.

The head outline used for tangents and HSD is the convex hull of the head region. The fetal skull is convex; a
segmentation's notches (acoustic shadow, dropout, label noise) are not, and a tangent or ray caught in a notch would
give a wrong angle or distance. For a convex head the hull is the head outline itself.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import cv2
import numpy as np

from workstation.calibration import Calibration, Scale
from workstation.measure.geometry import (HSD_NEAREST, HSD_PERPENDICULAR, HSDLine, MeasurementRefused, Point,
                                          PSAxis, as_point)

MIN_PS_PIXELS = 20  # fewer pixels than this cannot define an axis
MIN_PS_ELONGATION = 1.2  # major/minor spread of the PS; a round blob has no long axis
AOP_PLAUSIBLE_DEG = (60.0, 180.0)  # intrapartum AoP lies well inside this band; outside it the geometry is wrong
SQUARE_PIXEL_TOLERANCE = 0.005  # rows and columns within 0.5% of each other in mm: square pixels


def _xy(points) -> np.ndarray:
    return np.asarray(points, dtype=float).reshape(-1, 2)


def frame_aspect(calibration: Calibration | None, frame_shape: Sequence[int]) -> float:
    """The frame's pixel shape: mm per pixel row over mm per pixel column of the scale the analysis measures in
    (``Calibration.frame_scale``: the manual one, else the 2D image region holding the frame's centre, else the
    largest, else Pixel Spacing); 1 (square) without one or where rows and columns agree within
    ``SQUARE_PIXEL_TOLERANCE``. The one rule for the model's input, the AoP and HSD constructions, the AoP value,
    the report's drawing and the viewer: computed once per cine and passed along."""
    scale = None if calibration is None else calibration.frame_scale(frame_shape)
    if scale is None:
        return 1.0
    aspect = scale.mm_per_px_y / scale.mm_per_px_x
    return 1.0 if abs(aspect - 1.0) <= SQUARE_PIXEL_TOLERANCE else float(aspect)


def _stretched(points, aspect: float) -> np.ndarray:
    """Pixel (x, y) to coordinates in which a pixel row is ``aspect`` times as tall as a column is wide."""
    return _xy(points) * (1.0, aspect)


def _unstretched(point, aspect: float) -> Point:
    return as_point(np.asarray(point, dtype=float) / (1.0, aspect))


def distance_to_polygon(p: Point, polygon) -> tuple[float, Point]:
    """Shortest distance from ``p`` to a closed polygon's edges, and the nearest point on them."""
    poly = _xy(polygon)
    a = poly
    b = np.roll(poly, -1, axis=0)
    ab = b - a
    length2 = np.maximum((ab * ab).sum(axis=1), 1e-12)
    t = np.clip(((np.asarray(p) - a) * ab).sum(axis=1) / length2, 0.0, 1.0)
    nearest = a + t[:, None] * ab
    d = np.hypot(*(nearest - np.asarray(p)).T)
    i = int(np.argmin(d))
    return float(d[i]), as_point(nearest[i])


def inside_polygon(p: Point, polygon) -> bool:
    """True when ``p`` is inside or on a closed polygon."""
    return cv2.pointPolygonTest(_xy(polygon).astype(np.float32).reshape(-1, 1, 2), as_point(p), False) >= 0


def ps_axis_from_region(ps_points: np.ndarray, ps_outline: np.ndarray, head_outline: np.ndarray,
                        aspect: float = 1.0) -> PSAxis:
    """The PS long axis from its pixel centres (PCA) and outline (extreme projections); inferior = nearer the head.
    ``aspect``: see ``frame_aspect``."""
    pts = _stretched(ps_points, aspect)
    if len(pts) < MIN_PS_PIXELS:
        raise MeasurementRefused(f"the pubic symphysis is too small to have an axis ({len(pts)} pixels, "
                                 f"at least {MIN_PS_PIXELS} needed)")
    centre = pts.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov((pts - centre).T))
    spread_minor, spread_major = np.sqrt(np.maximum(eigenvalues, 1e-12))
    if spread_major < MIN_PS_ELONGATION * spread_minor:
        raise MeasurementRefused(f"the pubic symphysis is not elongated (length/width spread "
                                 f"{spread_major / spread_minor:.2f} < {MIN_PS_ELONGATION}): no long axis")
    axis = eigenvectors[:, 1]
    projections = (_stretched(ps_outline, aspect) - centre) @ axis
    ends = [as_point(centre + projections.min() * axis), as_point(centre + projections.max() * axis)]
    head = _stretched(head_outline, aspect)
    d0, d1 = (distance_to_polygon(end, head)[0] for end in ends)
    inferior, superior = (ends[0], ends[1]) if d0 <= d1 else (ends[1], ends[0])
    return PSAxis(superior=_unstretched(superior, aspect), inferior=_unstretched(inferior, aspect))


def aop_from_points(superior: Sequence[float], inferior: Sequence[float], tangent_point: Sequence[float],
                    aspect: float = 1.0) -> float:
    """The angle (degrees, 0-180) at ``inferior`` between the rays to ``superior`` and to ``tangent_point``
    (``aspect``: see ``frame_aspect``)."""
    vertex, superior_end, tangent = _stretched([inferior, superior, tangent_point], aspect)
    u = superior_end - vertex
    t = tangent - vertex
    if np.hypot(*u) < 1e-9 or np.hypot(*t) < 1e-9:
        raise MeasurementRefused("the angle of progression needs three distinct points")
    return math.degrees(math.atan2(abs(u[0] * t[1] - u[1] * t[0]), float(u @ t)))


def check_aop_plausible(aop_deg: float) -> float:
    low, high = AOP_PLAUSIBLE_DEG
    if not (low <= aop_deg <= high):
        raise MeasurementRefused(f"angle of progression {aop_deg:.1f} deg is outside the plausible {low:.0f}-{high:.0f} "
                                 f"deg: the PS axis or the head outline is wrong")
    return aop_deg


def tangent_point_to_head(inferior: Sequence[float], superior: Sequence[float], head_contour,
                          aspect: float = 1.0) -> Point:
    """Where the tangent from ``inferior`` touches the head outline, the one giving the larger AoP.

    The tangents from an outside point touch the outline where the bearing of its points, seen from that point,
    is extreme. For a non-convex outline these are the tangents to its convex hull. They touch the same points
    whatever the pixels' ``aspect``; which of the two gives the larger AoP is decided in the patient.
    """
    vertex = np.asarray(as_point(inferior))
    outline = _xy(head_contour)
    if len(outline) < 3:
        raise MeasurementRefused("the head outline has fewer than 3 points: no tangent")
    if inside_polygon(vertex, convex_hull(outline)):
        raise MeasurementRefused("the PS inferior end lies inside the fetal head outline: no tangent exists "
                                 "(segmentation overlap?)")
    rays = outline - vertex
    reference = rays.mean(axis=0)  # towards the head; every bearing lies within 90 deg of it
    bearings = np.arctan2(reference[0] * rays[:, 1] - reference[1] * rays[:, 0], rays @ reference)
    candidates = [as_point(outline[int(np.argmin(bearings))]), as_point(outline[int(np.argmax(bearings))])]
    return max(candidates, key=lambda point: aop_from_points(superior, inferior, point, aspect))


def convex_hull(points) -> np.ndarray:
    hull = cv2.convexHull(_xy(points).astype(np.float32))
    return hull.reshape(-1, 2).astype(float)


def hsd_line_to_head(inferior: Sequence[float], superior: Sequence[float], head_contour,
                     aspect: float = 1.0) -> HSDLine:
    """The HSD segment: from the inferior end along the perpendicular to the PS axis, towards the head, to where
    it meets the head outline; when that line misses the head, to the nearest head point (method "nearest").
    Perpendicular and nearest in the patient (``aspect``: see ``frame_aspect``)."""
    start, superior_end = _stretched([inferior, superior], aspect)
    axis = superior_end - start
    if np.hypot(*axis) < 1e-9:
        raise MeasurementRefused("the PS axis has zero length: no perpendicular")
    outline = _stretched(head_contour, aspect)
    if len(outline) < 3:
        raise MeasurementRefused("the head outline has fewer than 3 points: no distance to it")
    if inside_polygon(start, outline):
        raise MeasurementRefused("the PS inferior end lies inside the fetal head outline: no distance")
    normal = np.array([-axis[1], axis[0]]) / np.hypot(*axis)
    if normal @ (outline.mean(axis=0) - start) < 0:
        normal = -normal
    hit = _ray_hits_polygon(start, normal, outline)
    if hit is not None:
        return HSDLine(_unstretched(start, aspect), _unstretched(start + hit * normal, aspect), HSD_PERPENDICULAR)
    _, nearest = distance_to_polygon(as_point(start), outline)
    return HSDLine(_unstretched(start, aspect), _unstretched(nearest, aspect), HSD_NEAREST)


def _ray_hits_polygon(origin: np.ndarray, direction: np.ndarray, polygon: np.ndarray) -> float | None:
    """Distance along the ray to its first crossing of a closed polygon's edges, or None."""
    a = polygon
    edge = np.roll(polygon, -1, axis=0) - a
    denom = direction[0] * edge[:, 1] - direction[1] * edge[:, 0]
    rel = a - origin
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (rel[:, 0] * edge[:, 1] - rel[:, 1] * edge[:, 0]) / denom  # along the ray
        t = (rel[:, 0] * direction[1] - rel[:, 1] * direction[0]) / denom  # along the edge
    ok = (np.abs(denom) > 1e-12) & (s > 0) & (t >= 0) & (t <= 1)
    return float(s[ok].min()) if ok.any() else None


class HSDValue(NamedTuple):
    px: float
    mm: float | None
    reason: str | None  # why there is no mm value
    scale: Scale | None  # the scale the mm value used


def hsd_from_points(start: Sequence[float], end: Sequence[float], calibration: Calibration | None,
                    frame_shape: Sequence[int]) -> HSDValue:
    """HSD in pixels, in mm when the calibration gives a scale for both points, else the reason it does not."""
    start, end = as_point(start), as_point(end)
    px = math.hypot(end[0] - start[0], end[1] - start[1])
    if calibration is None:
        return HSDValue(px, None, "no calibration: pixels only", None)
    lookup = calibration.scale_for([start, end], frame_shape)
    if lookup.scale is None:
        return HSDValue(px, None, lookup.reason or "no scale for these points: pixels only", None)
    return HSDValue(px, lookup.scale.length_mm(start, end), None, lookup.scale)
