"""The geometry a measurement was computed from, in a form a viewer can draw and a person can edit.

Every value of ``workstation.measure`` comes with the points, lines and ellipse it used. A GUI shows them as
calipers; after a person moves one, ``workstation.measure.recompute`` turns the edited geometry back into values
through the same functions that produced the AI values. Coordinates are (x, y) = (column, row) frame pixels,
pixel centres at integers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

Point = tuple[float, float]


class MeasurementRefused(ValueError):
    """A value cannot be given honestly; ``str(error)`` is the reason a user is shown."""


def as_point(p: Sequence[float]) -> Point:
    return (float(p[0]), float(p[1]))


def _json_point(p: Point | None) -> list[float] | None:
    return None if p is None else [round(float(p[0]), 3), round(float(p[1]), 3)]


@dataclass(frozen=True)
class PSAxis:
    """The long axis of the pubic symphysis between its two ends; the inferior end is the one near the head."""

    superior: Point
    inferior: Point

    def to_json(self) -> dict:
        return {"superior": _json_point(self.superior), "inferior": _json_point(self.inferior)}

    @staticmethod
    def from_json(d: dict) -> "PSAxis":
        return PSAxis(as_point(d["superior"]), as_point(d["inferior"]))


@dataclass(frozen=True)
class AoPLines:
    """The two rays of the angle of progression, both from ``vertex`` (the PS inferior end)."""

    vertex: Point
    superior: Point
    tangent_point: Point

    def to_json(self) -> dict:
        return {"vertex": _json_point(self.vertex), "superior": _json_point(self.superior),
                "tangent_point": _json_point(self.tangent_point)}

    @staticmethod
    def from_json(d: dict) -> "AoPLines":
        return AoPLines(as_point(d["vertex"]), as_point(d["superior"]), as_point(d["tangent_point"]))


HSD_PERPENDICULAR = "perpendicular"  # along the perpendicular to the PS axis (ISUOG)
HSD_NEAREST = "nearest"  # the perpendicular missed the head: shortest distance instead, flagged


@dataclass(frozen=True)
class HSDLine:
    start: Point
    end: Point
    method: str  # HSD_PERPENDICULAR or HSD_NEAREST

    def to_json(self) -> dict:
        return {"start": _json_point(self.start), "end": _json_point(self.end), "method": self.method}

    @staticmethod
    def from_json(d: dict) -> "HSDLine":
        method = d.get("method", HSD_PERPENDICULAR)
        if method not in (HSD_PERPENDICULAR, HSD_NEAREST):
            raise ValueError(f"unknown HSD method {method!r}")
        return HSDLine(as_point(d["start"]), as_point(d["end"]), method)


@dataclass(frozen=True)
class Ellipse:
    """centre, semi-axes a >= b (pixels) and the angle of the major axis, degrees from +x towards +y (rows down)."""

    center: Point
    semi_axes: tuple[float, float]
    angle_deg: float

    def __post_init__(self):
        a, b = float(self.semi_axes[0]), float(self.semi_axes[1])
        if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
            raise MeasurementRefused(f"an ellipse needs two positive semi-axes, got {self.semi_axes}")
        angle = float(self.angle_deg)
        if b > a:  # keep a >= b: the same ellipse, named from its major axis
            a, b, angle = b, a, angle + 90.0
        object.__setattr__(self, "center", as_point(self.center))
        object.__setattr__(self, "semi_axes", (a, b))
        object.__setattr__(self, "angle_deg", angle % 180.0)

    @staticmethod
    def from_cv(box) -> "Ellipse":
        """From ``cv2.fitEllipse``'s ((cx, cy), (width, height), angle): the width axis lies at ``angle``."""
        (cx, cy), (w, h), angle = box
        return Ellipse((cx, cy), (w / 2.0, h / 2.0), angle)

    def points(self, n: int = 72) -> np.ndarray:
        """``n`` points on the ellipse, (n, 2) as (x, y)."""
        t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
        th = math.radians(self.angle_deg)
        a, b = self.semi_axes
        x = self.center[0] + a * np.cos(t) * math.cos(th) - b * np.sin(t) * math.sin(th)
        y = self.center[1] + a * np.cos(t) * math.sin(th) + b * np.sin(t) * math.cos(th)
        return np.stack([x, y], axis=1)

    def to_json(self) -> dict:
        return {"center": _json_point(self.center), "semi_axes": [round(self.semi_axes[0], 3), round(self.semi_axes[1], 3)],
                "angle_deg": round(self.angle_deg, 3)}

    @staticmethod
    def from_json(d: dict) -> "Ellipse":
        return Ellipse(as_point(d["center"]), (float(d["semi_axes"][0]), float(d["semi_axes"][1])), float(d["angle_deg"]))


@dataclass(frozen=True)
class Geometry:
    """All the geometry of one frame's measurements; absent parts are ``None``."""

    ps_axis: PSAxis | None = None
    aop: AoPLines | None = None
    hsd: HSDLine | None = None
    head_ellipse: Ellipse | None = None
    head_contour: tuple[Point, ...] | None = None  # the convex outline the tangent and HSD were taken to

    def to_json(self) -> dict:
        return {
            "ps_axis": None if self.ps_axis is None else self.ps_axis.to_json(),
            "aop": None if self.aop is None else self.aop.to_json(),
            "hsd": None if self.hsd is None else self.hsd.to_json(),
            "head_ellipse": None if self.head_ellipse is None else self.head_ellipse.to_json(),
            "head_contour": None if self.head_contour is None else [_json_point(p) for p in self.head_contour],
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> "Geometry":
        def part(key, cls):
            return None if d.get(key) is None else cls.from_json(d[key])

        contour = d.get("head_contour")
        return Geometry(part("ps_axis", PSAxis), part("aop", AoPLines), part("hsd", HSDLine),
                        part("head_ellipse", Ellipse),
                        None if contour is None else tuple(as_point(p) for p in contour))
