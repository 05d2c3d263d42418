"""Measurement overlays drawn with OpenCV on a frame, Qt-free: for PDF reports, exports and thumbnails.

``render_overlays(frame, geometry)`` draws the geometry JSON of ``workstation.measure`` (frame-pixel (x, y)
points): the PS long axis with its inferior end marked, the tangent line from that end to the fetal skull
with the AoP arc and value, the HSD line with its value, and the fitted head ellipse. Colours are chosen to
stay distinct on grey ultrasound and for the commonest colour-vision deficiencies (no red/green pair carries
meaning on its own; every element is also labelled or shaped differently).
"""
from __future__ import annotations

import math

import cv2
import numpy as np


# RGB colours of each element (the legend in the reports uses the same).
COLOURS = {
    "ps_axis": (255, 200, 0),  # amber
    "inferior_end": (255, 64, 64),  # red dot, also larger than any other mark
    "tangent": (0, 200, 255),  # sky blue: tangent line and AoP arc
    "hsd": (255, 80, 255),  # magenta
    "head_ellipse": (60, 230, 120),  # green: the only ellipse drawn
}
_LABEL_TINTS = {1: (255, 200, 0), 2: (60, 230, 120)}  # label map: 1 pubic symphysis, 2 fetal head
_TINT_ALPHA = 0.28
_SHIFT = 4  # OpenCV sub-pixel drawing: coordinates carry 4 fractional bits
_SUB = 1 << _SHIFT


def _fixed(p) -> tuple[int, int]:
    return int(round(float(p[0]) * _SUB)), int(round(float(p[1]) * _SUB))


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"render_overlays needs a uint8 frame, got {frame.dtype}")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame.copy()  # cached cine frames are read-only
    raise ValueError(f"render_overlays needs an (H, W) or (H, W, 3) frame, got shape {frame.shape}")


def _tint_labels(image: np.ndarray, labels: np.ndarray) -> None:
    if labels.shape != image.shape[:2]:
        raise ValueError(f"label map {labels.shape} does not match the frame {image.shape[:2]}")
    for label, colour in _LABEL_TINTS.items():
        mask = labels == label
        if mask.any():
            image[mask] = ((1 - _TINT_ALPHA) * image[mask] + _TINT_ALPHA * np.array(colour)).astype(np.uint8)


class _Painter:
    """Lines, marks and outlined text scaled to the frame, so overlays read the same on any frame size."""

    def __init__(self, image: np.ndarray, zoom: int = 1):
        self.image = image
        self.zoom = zoom  # the image was enlarged this many times; geometry stays in frame pixels
        self.unit = max(1.0, min(image.shape[:2]) / 360.0)
        self.thickness = max(1, round(1.5 * self.unit))
        self.placed: list[tuple[int, int, int, int]] = []  # boxes (x0, y0, x1, y1) of the labels drawn so far

    def at(self, p) -> tuple[int, int]:
        return _fixed(np.asarray(p, float) * self.zoom)

    def line(self, p, q, colour) -> None:
        cv2.line(self.image, self.at(p), self.at(q), colour, self.thickness, cv2.LINE_AA, _SHIFT)

    def dot(self, p, colour, radius: float) -> None:
        cv2.circle(self.image, self.at(p), int(radius * self.unit * _SUB), colour, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(self.image, self.at(p), int(radius * self.unit * _SUB), (0, 0, 0), 1, cv2.LINE_AA, _SHIFT)

    def text(self, anchor, text: str, colour, away=None) -> None:
        """Text centred on ``anchor``, or wholly beyond it along the unit vector ``away``; kept inside the frame,
        with a dark outline for contrast on bright tissue."""
        anchor = np.asarray(anchor, float) * self.zoom
        scale = 0.62 * self.unit  # readable when a 640-px frame is printed 7.5 cm wide
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, self.thickness)
        if away is not None:  # push the box's centre out until its near edge sits at the anchor
            anchor = np.asarray(anchor, float) + np.asarray(away) * (abs(away[0]) * w / 2 + abs(away[1]) * h / 2)
        rows, cols = self.image.shape[:2]
        x = int(min(max(2, anchor[0] - w / 2), cols - w - 2))
        y = int(min(max(h + 2, anchor[1] + h / 2), rows - base - 2))
        # Two labels pushed against the same edge could land on each other: move this one clear, below (or, at
        # the bottom edge, above) each label it would cover.
        pad = self.thickness + 2
        for _ in range(len(self.placed) + 1):
            box = (x - pad, y - h - pad, x + w + pad, y + base + pad)
            hit = next((b for b in self.placed if box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]),
                       None)
            if hit is None:
                break
            below = hit[3] + h + pad
            y = below if below + base + 2 <= rows else hit[1] - base - pad
        self.placed.append((x - pad, y - h - pad, x + w + pad, y + base + pad))
        cv2.putText(self.image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), self.thickness + 2,
                    cv2.LINE_AA)
        cv2.putText(self.image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, self.thickness, cv2.LINE_AA)


def _unit_vector(p, q) -> np.ndarray:
    d = np.asarray(q, float) - np.asarray(p, float)
    n = float(np.hypot(*d))
    return d / n if n > 0 else np.zeros(2)


def aop_label(values: dict, whose: str | None = None, degree: str = " deg") -> str:
    """The AoP printed beside its lines, in the report and in the viewer (``degree="°"``; OpenCV cannot draw
    it): the stored value (followed by whose it is), or "withheld" where it is None. Never one recomputed from
    the lines, which could be a value the pipeline refused (implausible) or withheld (the frame's plane)."""
    if values.get("aop_deg") is None:
        return "AoP withheld"
    return label_with_whose(f"AoP {values['aop_deg']:.1f}{degree}", whose)


def hsd_label(values: dict, whose: str | None = None) -> str:
    """The HSD printed beside its line: mm where calibrated, else pixels (the reason is in the report's table),
    else "withheld"; as for the AoP, never measured again from the line."""
    if values.get("hsd_mm") is not None:
        return label_with_whose(f"HSD {values['hsd_mm']:.1f} mm", whose)
    if values.get("hsd_px") is not None:
        return label_with_whose(f"HSD {values['hsd_px']:.0f} px", whose)
    return "HSD withheld"


def label_with_whose(text: str, whose: str | None) -> str:
    """A value's label followed by whose value it is ("AI", "corrected", "confirmed"), so an AI value never
    reads as a person's."""
    return text if not whose else f"{text} ({whose})"


def _draw_aop(painter: _Painter, aop: dict, values: dict | None, whose: str | None) -> None:
    vertex, superior, tangent = (np.asarray(aop[k], float) for k in ("vertex", "superior", "tangent_point"))
    reach = float(np.hypot(*(tangent - vertex)))
    # The tangent line runs on past the skull a little, as it is drawn on the scanner.
    line_end = vertex + _unit_vector(vertex, tangent) * reach * 1.25
    painter.line(vertex, line_end, COLOURS["tangent"])
    start = math.degrees(math.atan2(*(superior - vertex)[::-1]))
    end = math.degrees(math.atan2(*(tangent - vertex)[::-1]))
    sweep = (end - start + 540.0) % 360.0 - 180.0  # the angle itself, never its 360-degree complement
    radius = min(28.0 * painter.unit, 0.6 * reach * painter.zoom)
    cv2.ellipse(painter.image, painter.at(vertex), (int(radius * _SUB), int(radius * _SUB)), 0.0, start, start + sweep,
                COLOURS["tangent"], painter.thickness, cv2.LINE_AA, _SHIFT)
    if values is None:
        return
    # At the far end of the tangent line: inside the angle is where the HSD line and its label run.
    direction = _unit_vector(vertex, tangent)
    painter.text(line_end + direction * 6 * painter.unit / painter.zoom, aop_label(values, whose), COLOURS["tangent"],
                 direction)


def _draw_hsd(painter: _Painter, hsd: dict, values: dict | None, away_from: np.ndarray | None,
              whose: str | None) -> None:
    start, end = np.asarray(hsd["start"], float), np.asarray(hsd["end"], float)
    painter.line(start, end, COLOURS["hsd"])
    across = _unit_vector(start, end)[::-1] * np.array([1.0, -1.0])
    for p in (start, end):  # end ticks make a caliper of the line
        tick = across * 5 * painter.unit / painter.zoom
        painter.line(p - tick, p + tick, COLOURS["hsd"])
    if values is None:
        return
    text = hsd_label(values, whose)
    middle = (start + end) / 2
    # Label on the side of the line away from the tangent line, so the two labels never meet.
    if away_from is not None and np.dot(across, np.asarray(away_from, float) - middle) > 0:
        across = -across
    painter.text(middle + across * 8 * painter.unit / painter.zoom, text, COLOURS["hsd"], across)


def render_overlays(frame: np.ndarray, geometry: dict | None, labels: np.ndarray | None = None,
                    values: dict | None = None, min_side: int = 0, whose: str | None = None) -> np.ndarray:
    """An RGB copy of ``frame`` with the measurement geometry drawn on it.

    ``geometry``: the ``workstation.measure`` geometry JSON (any part may be absent or ``None``).
    ``labels``: an optional label map (0 background, 1 PS, 2 fetal head) tinted under the lines.
    ``values``: the stored values to print beside the lines (``aop_deg``, ``hsd_mm``, ``hsd_px``); a value that
    is None there was refused or withheld and is labelled so. Without ``values`` no numbers are printed.
    ``whose``: "AI", "corrected" or "confirmed", printed after each value, so an AI value never reads as a person's.
    ``min_side``: a frame smaller than this is first enlarged by a whole factor (a 256-px PSFHS frame is
    doubled for a report), so that lines and labels keep the proportions they have on a scanner-sized frame.
    """
    image = _as_rgb(frame)
    if labels is not None:
        _tint_labels(image, np.asarray(labels))
    zoom = max(1, math.ceil(min_side / min(image.shape[:2]))) if min_side else 1
    if zoom > 1:
        image = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    geometry = geometry or {}
    painter = _Painter(image, zoom)
    ellipse = geometry.get("head_ellipse")
    if ellipse:
        axes = (int(ellipse["semi_axes"][0] * zoom * _SUB), int(ellipse["semi_axes"][1] * zoom * _SUB))
        cv2.ellipse(image, painter.at(ellipse["center"]), axes, float(ellipse["angle_deg"]), 0, 360,
                    COLOURS["head_ellipse"], painter.thickness, cv2.LINE_AA, _SHIFT)
    if geometry.get("hsd"):
        tangent = (geometry.get("aop") or {}).get("tangent_point")
        _draw_hsd(painter, geometry["hsd"], values, tangent, whose)
    if geometry.get("aop"):
        _draw_aop(painter, geometry["aop"], values, whose)
    ps_axis = geometry.get("ps_axis")
    if ps_axis:
        painter.line(ps_axis["superior"], ps_axis["inferior"], COLOURS["ps_axis"])
        painter.dot(ps_axis["superior"], COLOURS["ps_axis"], 2.5)
        painter.dot(ps_axis["inferior"], COLOURS["inferior_end"], 4.0)
    return image
