"""Measurement overlays drawn with OpenCV on a frame, Qt-free: for PDF reports, exports and thumbnails.

``render_overlays(frame, geometry)`` draws the geometry JSON of ``workstation.measure`` (frame-pixel (x, y)
points): the PS long axis with its inferior end marked, the tangent line from that end to the fetal skull
with the AoP arc and value, the HSD line with its value, and the fitted head ellipse with its HC, BPD, OFD and GA.
Labels are drawn after every line, each on a dark backing, so no line runs through a value. A frame whose pixels are
not square is drawn in the patient's shape (``aspect``), so that the angle drawn is the angle printed. Colours are
chosen to stay distinct on grey ultrasound and for the commonest colour-vision deficiencies (no red/green pair
carries meaning on its own; every element is also labelled or shaped differently).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from workstation.measure import Ellipse
from workstation.reports.values import HEAD_KEYS, head_labels
from workstation.sources import whose_for


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
_BACKING_ALPHA = 170 / 255  # a label's dark backing, as the window's label fill (black, alpha 170)
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
    """Lines, marks and labels scaled to the image, so overlays read the same on any frame size.

    ``scale``: display pixels per frame pixel along x and y (an enlarged frame, or one drawn in the patient's shape
    where its pixels are not square); :meth:`map` takes frame (x, y) to display coordinates, in which every other
    method works. Labels are placed as they come (clear of those already placed) and drawn by :meth:`finish`, after
    every line, each on a dark backing (as the window's labels are), so that no line runs through a value."""

    def __init__(self, image: np.ndarray, scale: tuple[float, float] = (1.0, 1.0)):
        self.image = image
        self.scale = (float(scale[0]), float(scale[1]))
        self.unit = max(1.0, min(image.shape[:2]) / 360.0)
        self.thickness = max(1, round(1.5 * self.unit))
        self.placed: list[tuple[int, int, int, int]] = []  # boxes (x0, y0, x1, y1) of the labels placed so far
        self._labels: list[tuple[int, int, list[str], tuple, float, int, int]] = []
        self._clear: list[np.ndarray] = []  # display points labels keep clear of (keep_clear)

    def map(self, p) -> np.ndarray:
        """Frame (x, y), pixel centres at integers, to display coordinates (an image resized by ``scale``)."""
        return (np.asarray(p, float) + 0.5) * self.scale - 0.5

    @staticmethod
    def at(p) -> tuple[int, int]:
        return _fixed(p)

    def line(self, p, q, colour) -> None:
        cv2.line(self.image, self.at(p), self.at(q), colour, self.thickness, cv2.LINE_AA, _SHIFT)

    def polyline(self, points, colour) -> None:
        fixed = np.round(np.asarray(points, float) * _SUB).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(self.image, [fixed], True, colour, self.thickness, cv2.LINE_AA, _SHIFT)

    def dot(self, p, colour, radius: float) -> None:
        cv2.circle(self.image, self.at(p), int(radius * self.unit * _SUB), colour, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(self.image, self.at(p), int(radius * self.unit * _SUB), (0, 0, 0), 1, cv2.LINE_AA, _SHIFT)

    def keep_clear(self, points) -> None:
        """Display points a label must not cover where it can move clear of them (the calipers' ends: the PS axis
        ends, the tangent point, the HSD end), so that a label's backing never hides where a line starts or ends."""
        self._clear.extend(np.asarray(p, float) for p in points)

    def _metrics(self, lines: list[str]) -> tuple[float, int, int, int, int, int]:
        """(font scale, width, first line's height above its baseline, descent, baseline pitch, block height)."""
        scale = 0.62 * self.unit  # readable when a 640-px frame is printed 7.5 cm wide
        sizes = [cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, self.thickness) for line in lines]
        w = max(size[0][0] for size in sizes)
        h = max(size[0][1] for size in sizes)
        base = max(size[1] for size in sizes)
        pitch = h + base + self.thickness + 2  # baseline to baseline
        return scale, w, h, base, pitch, h + (len(lines) - 1) * pitch + base

    def block_size(self, lines: list[str]) -> tuple[int, int]:
        """The width and height a label of ``lines`` takes (its backing's pad aside)."""
        _, w, _, _, _, height = self._metrics(lines)
        return w, height

    def text(self, anchor, text: str | list[str], colour, away=None) -> None:
        """A label (one line, or several under each other) centred on ``anchor``, or wholly beyond it along the unit
        vector ``away``; kept inside the image, clear of the labels placed before it and, where a nearby place is
        free, of the points of :meth:`keep_clear`; drawn by :meth:`finish`."""
        lines = [text] if isinstance(text, str) else list(text)
        scale, w, h, base, pitch, height = self._metrics(lines)
        rows, cols = self.image.shape[:2]
        pad = self.thickness + 2

        def place(point) -> tuple[int, int]:
            point = np.asarray(point, float)
            if away is not None:  # push the block's centre out until its near edge sits at the point
                point = point + np.asarray(away) * (abs(away[0]) * w / 2 + abs(away[1]) * height / 2)
            return (int(min(max(2, point[0] - w / 2), cols - w - 2)),
                    int(min(max(2, point[1] - height / 2), rows - height - 2)))

        def box(x: int, top: int) -> tuple[int, int, int, int]:
            return x - pad, top - pad, x + w + pad, top + height + pad

        def hit(b) -> tuple | None:
            return next((o for o in self.placed if b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3]), None)

        def free(b) -> bool:
            reach = 4.0 * self.unit
            return hit(b) is None and not any(b[0] - reach < p[0] < b[2] + reach and b[1] - reach < p[1] < b[3] + reach
                                              for p in self._clear)

        anchor = np.asarray(anchor, float)
        x, top = place(anchor)
        if self._clear and not free(box(x, top)):
            # The nearest free place a few steps off: further out along ``away``, or along either side of it.
            out = np.asarray(away, float) if away is not None else np.array([0.0, 1.0])
            side = np.array([-out[1], out[0]])
            step = 6.0 * self.unit
            for k in range(1, 7):
                spot = next((place(anchor + d * k * step) for d in (out, side, -side)
                             if free(box(*place(anchor + d * k * step)))), None)
                if spot is not None:
                    x, top = spot
                    break
        # Two labels pushed against the same edge could land on each other: move this one clear, below (or, at
        # the bottom edge, above) each label it would cover.
        for _ in range(len(self.placed) + 1):
            covered = hit(box(x, top))
            if covered is None:
                break
            below = covered[3] + pad
            top = below if below + height + 2 <= rows else covered[1] - pad - height
        self.placed.append(box(x, top))
        self._labels.append((x, top, lines, colour, scale, h, pitch))

    def finish(self) -> None:
        """Draw the labels placed: a dark backing (lines under it dimmed, as the window's label fill does), then the
        text; after every line, so nothing is drawn across a value."""
        rows, cols = self.image.shape[:2]
        margin = self.thickness + 1  # inside the box's pad, so two labels' backings never overlap
        for (x0, y0, x1, y1), (x, top, lines, colour, scale, h, pitch) in zip(self.placed, self._labels):
            pad = self.thickness + 2
            left, right = max(0, x0 + pad - margin), min(cols, x1 - pad + margin)
            upper, lower = max(0, y0 + pad - margin), min(rows, y1 - pad + margin)
            backing = self.image[upper:lower, left:right]
            backing[:] = (backing.astype(np.float32) * (1.0 - _BACKING_ALPHA)).astype(np.uint8)
            for i, line in enumerate(lines):
                cv2.putText(self.image, line, (x, top + h + i * pitch), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                            self.thickness, cv2.LINE_AA)
        self._labels.clear()


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
    vertex, superior, tangent = (painter.map(aop[k]) for k in ("vertex", "superior", "tangent_point"))
    reach = float(np.hypot(*(tangent - vertex)))
    # The tangent line runs on past the skull a little, as it is drawn on the scanner.
    line_end = vertex + _unit_vector(vertex, tangent) * reach * 1.25
    painter.line(vertex, line_end, COLOURS["tangent"])
    # In display coordinates, which are the patient's where the pixels are not square: the arc spans the angle printed.
    start = math.degrees(math.atan2(*(superior - vertex)[::-1]))
    end = math.degrees(math.atan2(*(tangent - vertex)[::-1]))
    sweep = (end - start + 540.0) % 360.0 - 180.0  # the angle itself, never its 360-degree complement
    radius = min(28.0 * painter.unit, 0.6 * reach)
    cv2.ellipse(painter.image, painter.at(vertex), (int(radius * _SUB), int(radius * _SUB)), 0.0, start, start + sweep,
                COLOURS["tangent"], painter.thickness, cv2.LINE_AA, _SHIFT)
    if values is None:
        return
    # At the far end of the tangent line: inside the angle is where the HSD line and its label run.
    direction = _unit_vector(vertex, tangent)
    painter.text(line_end + direction * 6 * painter.unit, aop_label(values, whose_for(whose, "aop")), COLOURS["tangent"],
                 direction)


def _draw_hsd(painter: _Painter, hsd: dict, values: dict | None, away_from, whose: str | None) -> None:
    start, end = painter.map(hsd["start"]), painter.map(hsd["end"])
    painter.line(start, end, COLOURS["hsd"])
    across = _unit_vector(start, end)[::-1] * np.array([1.0, -1.0])
    for p in (start, end):  # end ticks make a caliper of the line
        tick = across * 5 * painter.unit
        painter.line(p - tick, p + tick, COLOURS["hsd"])
    if values is None:
        return
    text = hsd_label(values, whose_for(whose, "hsd"))
    middle = (start + end) / 2
    # Label on the side of the line away from the tangent line, so the two labels never meet.
    if away_from is not None and np.dot(across, painter.map(away_from) - middle) > 0:
        across = -across
    painter.text(middle + across * 8 * painter.unit, text, COLOURS["hsd"], across)


def _draw_head(painter: _Painter, ellipse: dict, values: dict | None, geometry: dict, whose: str | None,
               head: bool | None) -> None:
    outline = painter.map(Ellipse.from_json(ellipse).points(360))
    painter.polyline(outline, COLOURS["head_ellipse"])
    if values is None or head is False:
        return
    if head is None and all(values.get(key) is None for key in HEAD_KEYS):
        return  # values without head biometry (a transperineal frame's): the ellipse alone
    lines = head_labels({**values, "geometry": geometry}, whose_for(whose, "head"))
    # Under the head where the block fits, else inside it: never over it, where the AoP and HSD run.
    _, height = painter.block_size(lines)
    gap = 6 * painter.unit
    bottom = outline[int(np.argmax(outline[:, 1]))]
    if bottom[1] + gap + height + 2 <= painter.image.shape[0]:
        painter.text(bottom + np.array([0.0, gap]), lines, COLOURS["head_ellipse"], np.array([0.0, 1.0]))
    else:
        painter.text(outline.mean(axis=0), lines, COLOURS["head_ellipse"])


def render_overlays(frame: np.ndarray, geometry: dict | None, labels: np.ndarray | None = None,
                    values: dict | None = None, min_side: int = 0, whose: str | None = None, aspect: float = 1.0,
                    head: bool | None = None) -> np.ndarray:
    """An RGB copy of ``frame`` with the measurement geometry drawn on it.

    ``geometry``: the ``workstation.measure`` geometry JSON (any part may be absent or ``None``).
    ``labels``: an optional label map (0 background, 1 PS, 2 fetal head) tinted under the lines.
    ``values``: the stored values to print beside the lines (``aop_deg``, ``hsd_mm``, ``hsd_px``, and the head
    biometry with its ``reasons``: ``workstation.reports.values``); a value that is None there was refused or
    withheld and is labelled so. Without ``values`` no numbers are printed.
    ``whose``: "AI", "corrected" or "confirmed", printed after each value, so an AI value never reads as a person's;
    one word for all, or one per quantity (``workstation.sources.whose_of``: a correction's untouched values stay the
    AI's).
    ``head``: whether the head biometry is labelled beside the ellipse: True (as "HC withheld" where there is none),
    False, or None: where ``values`` hold some.
    ``aspect``: mm per pixel row over mm per pixel column (``workstation.measure.transperineal.frame_aspect``); where
    it is not 1 the frame is drawn in the patient's shape (rows stretched by it, the geometry mapped the same way), so
    that the angle drawn is the AoP printed, which is measured in the patient.
    ``min_side``: a frame smaller than this is first enlarged by a whole factor (a 256-px PSFHS frame is
    doubled for a report), so that lines and labels keep the proportions they have on a scanner-sized frame.
    Labels are drawn last, each on a dark backing, so no line crosses a value.
    """
    image = _as_rgb(frame)
    if labels is not None:
        _tint_labels(image, np.asarray(labels))
    aspect = float(aspect) if aspect and math.isfinite(aspect) and aspect > 0 else 1.0
    stretch = (1.0, aspect) if aspect >= 1.0 else (1.0 / aspect, 1.0)  # never fewer display pixels than frame pixels
    rows, cols = image.shape[:2]
    zoom = max(1, math.ceil(min_side / min(rows * stretch[1], cols * stretch[0]))) if min_side else 1
    size = (max(1, round(cols * stretch[0] * zoom)), max(1, round(rows * stretch[1] * zoom)))
    if size != (cols, rows):
        image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    geometry = geometry or {}
    painter = _Painter(image, (size[0] / cols, size[1] / rows))
    ends = [(geometry.get("ps_axis") or {}).get(k) for k in ("superior", "inferior")]
    ends += [(geometry.get("aop") or {}).get("tangent_point"), (geometry.get("hsd") or {}).get("end")]
    painter.keep_clear(painter.map(p) for p in ends if p is not None)
    ellipse = geometry.get("head_ellipse")
    if ellipse:
        _draw_head(painter, ellipse, values, geometry, whose, head)
    if geometry.get("hsd"):
        tangent = (geometry.get("aop") or {}).get("tangent_point")
        _draw_hsd(painter, geometry["hsd"], values, tangent, whose)
    if geometry.get("aop"):
        _draw_aop(painter, geometry["aop"], values, whose)
    ps_axis = geometry.get("ps_axis")
    if ps_axis:
        superior, inferior = painter.map(ps_axis["superior"]), painter.map(ps_axis["inferior"])
        painter.line(superior, inferior, COLOURS["ps_axis"])
        painter.dot(superior, COLOURS["ps_axis"], 2.5)
        painter.dot(inferior, COLOURS["inferior_end"], 4.0)
    painter.finish()
    return image
