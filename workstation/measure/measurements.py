"""Measurements of one frame's label map, and their recomputation from (edited) geometry.

``measure_labelmap`` derives the geometry from the label map (PS axis, tangent point, HSD line, head ellipse) and
hands it to ``recompute``, the one path from geometry to values; a person's edit of the geometry goes through the
same ``recompute``. Constructions: ISUOG intrapartum guideline 2018 and Kalache 2009 (see ``transperineal``),
Hadlock 1984 (see ``biometry``). Every absent value is ``None`` with a reason under ``reasons[key]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from workstation.calibration import Calibration, Scale
from workstation.measure.biometry import BIOMETRY_CONVENTION, ellipse_measurements, fit_head_ellipse
from workstation.measure.geometry import AoPLines, Geometry, MeasurementRefused, as_point
from workstation.measure.regions import (FH_LABEL, PS_LABEL, check_labelmap, edge_points, largest_component,
                                         region_pixels)
from workstation.measure.transperineal import (aop_from_points, check_aop_plausible, convex_hull, hsd_from_points,
                                               frame_aspect, hsd_line_to_head, ps_axis_from_region,
                                               tangent_point_to_head)

# Where a structure was looked for, in the reason for its absence: an image's frame (the analysis), or a label map the
# user gave (``workstation measure``).
IN_FRAME, IN_LABEL_MAP = "found in this frame", "in the label map"

_VALUE_KEYS = ("aop_deg", "hsd_px", "hsd_mm", "hc_px", "hc_mm", "bpd_px", "bpd_mm", "ofd_px", "ofd_mm", "ga_weeks")


def describe_hsd(hsd_mm: float | None, hsd_px: float | None, no_mm_reason: str | None = None) -> str:
    """HSD as every table and line shows it: mm where the calibration is trusted, else pixels marked so, with why
    there is no mm where that is known; "-" without an HSD. Never a mm value the calibration did not give."""
    if hsd_mm is not None:
        return f"{hsd_mm:.1f} mm"
    if hsd_px is not None:
        return f"{hsd_px:.0f} px (no mm" + (f": {no_mm_reason})" if no_mm_reason else ")")
    return "-"


def describe_aop_hsd(aop_deg: float | None, hsd_px: float | None, hsd_mm: float | None,
                     reasons: dict | None = None) -> str:
    """AoP and HSD on one line as the reports, the CLI and the records' refusals write them: 'AoP 127.6 deg, HSD
    14.0 mm', the HSD in pixels with why there is no mm (:func:`describe_hsd`), or why either is absent (said once
    where both are absent for the same reason). ``reasons``: a measurement's, by value key."""
    reasons = reasons or {}
    aop_why, hsd_why = reasons.get("aop_deg"), reasons.get("hsd_px")
    if aop_deg is None and hsd_px is None and aop_why and aop_why == hsd_why:
        return f"no AoP or HSD ({aop_why})"
    aop = f"AoP {aop_deg:.1f} deg" if aop_deg is not None else "AoP none" + (f" ({aop_why})" if aop_why else "")
    if hsd_px is None and hsd_mm is None:
        hsd = "HSD none" + (f" ({hsd_why})" if hsd_why else "")
    else:
        hsd = f"HSD {describe_hsd(hsd_mm, hsd_px, reasons.get('hsd_mm'))}"
    return f"{aop}, {hsd}"


@dataclass
class Measurements:
    aop_deg: float | None = None
    hsd_px: float | None = None
    hsd_mm: float | None = None
    hsd_method: str | None = None  # "perpendicular" or "nearest" (the perpendicular missed the head)
    hc_px: float | None = None
    hc_mm: float | None = None
    bpd_px: float | None = None
    bpd_mm: float | None = None
    ofd_px: float | None = None
    ofd_mm: float | None = None
    ga_weeks: float | None = None
    ga_range_weeks: list[float] | None = None
    geometry: Geometry = field(default_factory=Geometry)
    reasons: dict[str, str] = field(default_factory=dict)  # value key -> why it is absent
    calibration_source: str = "none"
    calibration_detail: str | None = None  # the scale the mm values used, e.g. "region 0 (2D, cm)"
    pixel_aspect: float = 1.0  # the frame's mm per row over mm per column (``frame_aspect``) the AoP and HSD were
    # built and measured with (1: square pixels)

    def to_json(self) -> dict:
        def num(v):
            return None if v is None else round(float(v), 4)

        out = {key: num(getattr(self, key)) for key in _VALUE_KEYS}
        out["hsd_method"] = self.hsd_method
        out["ga_range_weeks"] = None if self.ga_range_weeks is None else [num(v) for v in self.ga_range_weeks]
        out["biometry_convention"] = BIOMETRY_CONVENTION
        out["calibration"] = {"source": self.calibration_source, "detail": self.calibration_detail}
        out["pixel_aspect"] = round(self.pixel_aspect, 6)
        out["geometry"] = self.geometry.to_json()
        out["reasons"] = dict(self.reasons)
        return out


def _region_parts(labels: np.ndarray, label: int):
    region = largest_component(labels == label)
    if not region.any():
        return None, None
    points, _ = edge_points(region)
    return region, points


def _aop_construction(ps_region, ps_edge, fh_edge, reasons: dict[str, str], aspect: float = 1.0,
                      found: str = IN_FRAME):
    """Head contour, PS axis and AoP lines from the PS region and outlines (ISUOG / Kalache); what cannot be
    built is None, with its reason put in ``reasons`` (``found``: see ``measure_labelmap``). ``aspect``: see
    ``transperineal.frame_aspect``."""
    head_contour = None if fh_edge is None else convex_hull(fh_edge)
    ps_axis = aop = None
    if ps_region is None or head_contour is None:
        missing = " or ".join(name for name, part in (("pubic symphysis", ps_region), ("fetal head", head_contour))
                              if part is None)
        reasons["aop_deg"] = reasons["hsd_px"] = f"no {missing} {found}"
    else:
        try:
            ps_axis = ps_axis_from_region(region_pixels(ps_region), ps_edge, head_contour, aspect)
            tangent = tangent_point_to_head(ps_axis.inferior, ps_axis.superior, head_contour, aspect)
            aop = AoPLines(ps_axis.inferior, ps_axis.superior, tangent)
        except MeasurementRefused as refused:
            reasons.setdefault("aop_deg", str(refused))
    return head_contour, ps_axis, aop


def aop_of_labelmap(labels: np.ndarray) -> float | None:
    """The AoP alone (degrees, or None when it cannot be built or is implausible), by the same construction
    as ``measure_labelmap`` without the HSD and head ellipse, on square pixels: for the pipeline's checks across
    test-time passes (label maps in the model's input, whose pixels are square in the patient)."""
    labels = check_labelmap(labels)
    ps_region, ps_edge = _region_parts(labels, PS_LABEL)
    fh_edge = _region_parts(labels, FH_LABEL)[1] if ps_region is not None else None
    aop = _aop_construction(ps_region, ps_edge, fh_edge, {})[2]
    if aop is None:
        return None
    try:
        return check_aop_plausible(aop_from_points(aop.superior, aop.vertex, aop.tangent_point))
    except MeasurementRefused:
        return None


def measure_labelmap(labels: np.ndarray, calibration: Calibration | None = None, *,
                     head_outline_width_px: float = 0.0, aspect: float | None = None,
                     found: str = IN_FRAME) -> Measurements:
    """AoP, HSD and head biometry of a label map (0 background, 1 PS, 2 FH), with their geometry and reasons.

    ``head_outline_width_px``: see ``fit_head_ellipse`` (non-zero only for masks filled from drawn outlines).
    ``aspect``: the frame's pixel shape, ``frame_aspect(calibration, labels.shape)`` when not given (a caller that
    has it for the whole cine passes it). ``found``: where a missing structure was looked for, in its reason: "no
    pubic symphysis found in this frame" (:data:`IN_FRAME`, a frame of an image the model segmented), or "... in the
    label map" (:data:`IN_LABEL_MAP`, only for a label map the user gave).
    """
    labels = check_labelmap(labels)
    reasons: dict[str, str] = {}
    ps_region, ps_edge = _region_parts(labels, PS_LABEL)
    fh_region, fh_edge = _region_parts(labels, FH_LABEL)
    if aspect is None:
        aspect = frame_aspect(calibration, labels.shape)
    head_contour, ps_axis, aop = _aop_construction(ps_region, ps_edge, fh_edge, reasons, aspect, found)
    hsd = None
    if ps_axis is not None and "hsd_px" not in reasons:
        try:
            hsd = hsd_line_to_head(ps_axis.inferior, ps_axis.superior, head_contour, aspect)
        except MeasurementRefused as refused:
            reasons["hsd_px"] = str(refused)
    elif "hsd_px" not in reasons:
        reasons["hsd_px"] = reasons.get("aop_deg", "no PS axis")

    ellipse = None
    if fh_region is None:
        reasons["hc_px"] = f"no fetal head {found}"
    else:
        try:
            ellipse = fit_head_ellipse(fh_region, kind="filled", outline_width_px=head_outline_width_px)
        except MeasurementRefused as refused:
            reasons["hc_px"] = str(refused)

    geometry = Geometry(ps_axis, aop, hsd, ellipse,
                        None if head_contour is None else tuple(as_point(p) for p in head_contour))
    result = recompute(geometry, calibration, labels.shape, aspect=aspect)
    # The derivation's reasons say more than recompute's "no geometry"; keep them.
    for key, reason in reasons.items():
        result.reasons[key] = reason
    _propagate_reasons(result.reasons)
    return result


def _propagate_reasons(reasons: dict[str, str]) -> None:
    """A value absent for lack of geometry takes its dependants with it, for the same reason."""
    if "hsd_px" in reasons:
        reasons["hsd_mm"] = reasons["hsd_px"]
    if "hc_px" in reasons:
        for key in ("hc_mm", "bpd_px", "bpd_mm", "ofd_px", "ofd_mm", "ga_weeks"):
            reasons[key] = reasons["hc_px"]


# recompute's reasons for a value absent because its geometry is not there (a derivation, or an earlier
# measurement of the same geometry, may say why it is not: "no pubic symphysis found in this frame"), each with the value
# whose geometry it is (its dependants, e.g. HC's mm and GA, take the same reason)
NO_AOP_GEOMETRY = "no AoP geometry (PS axis and tangent point)"
NO_HSD_GEOMETRY = "no HSD geometry"
NO_HEAD_ELLIPSE = "no head ellipse"
NO_GEOMETRY_REASONS = {NO_AOP_GEOMETRY: "aop_deg", NO_HSD_GEOMETRY: "hsd_px", NO_HEAD_ELLIPSE: "hc_px"}


def recompute(geometry: Geometry, calibration: Calibration | None, frame_shape: Sequence[int], *,
              refit_dependents: bool = False, aspect: float | None = None) -> Measurements:
    """AoP, HSD and head biometry from geometry alone (the AI's, or a person's edit of it).

    The PS axis, when present, is the AoP vertex and superior point (one caliper moves both). With
    ``refit_dependents`` and a head contour, the tangent point and HSD end are re-derived from the (moved) PS axis,
    as the AI would; otherwise the tangent point and HSD line are taken as placed. ``aspect``: the frame's pixel
    shape, ``frame_aspect(calibration, frame_shape)`` when not given, as ``measure_labelmap`` built the geometry.
    """
    reasons: dict[str, str] = {}
    m = Measurements(geometry=geometry, reasons=reasons,
                     calibration_source="none" if calibration is None else calibration.source)
    aop, hsd, ps_axis = geometry.aop, geometry.hsd, geometry.ps_axis
    m.pixel_aspect = aspect = frame_aspect(calibration, frame_shape) if aspect is None else aspect
    try:
        if ps_axis is not None and aop is not None:
            tangent = aop.tangent_point
            if refit_dependents and geometry.head_contour:
                tangent = tangent_point_to_head(ps_axis.inferior, ps_axis.superior, geometry.head_contour, aspect)
            aop = AoPLines(ps_axis.inferior, ps_axis.superior, tangent)
        if refit_dependents and ps_axis is not None and geometry.head_contour:
            hsd = hsd_line_to_head(ps_axis.inferior, ps_axis.superior, geometry.head_contour, aspect)
    except MeasurementRefused as refused:
        reasons["aop_deg"] = reasons["hsd_px"] = str(refused)
        aop = hsd = None
    scales: list[Scale] = []

    if aop is None:
        reasons.setdefault("aop_deg", NO_AOP_GEOMETRY)
    else:
        try:
            m.aop_deg = check_aop_plausible(aop_from_points(aop.superior, aop.vertex, aop.tangent_point, aspect))
        except MeasurementRefused as refused:
            reasons["aop_deg"] = str(refused)

    if hsd is None:
        reasons.setdefault("hsd_px", NO_HSD_GEOMETRY)
    else:
        value = hsd_from_points(hsd.start, hsd.end, calibration, frame_shape)
        m.hsd_px, m.hsd_mm, m.hsd_method = value.px, value.mm, hsd.method
        if value.reason:
            reasons["hsd_mm"] = value.reason
        if value.scale is not None:
            scales.append(value.scale)

    if geometry.head_ellipse is None:
        reasons.setdefault("hc_px", NO_HEAD_ELLIPSE)
    else:
        values = ellipse_measurements(geometry.head_ellipse, calibration, frame_shape)
        for key in ("hc_px", "hc_mm", "bpd_px", "bpd_mm", "ofd_px", "ofd_mm", "ga_weeks", "ga_range_weeks"):
            setattr(m, key, values[key])
        reasons.update(values["reasons"])
        if values["scale"] is not None:
            scales.append(values["scale"])

    m.geometry = replace(geometry, aop=aop, hsd=hsd)
    _propagate_reasons(reasons)
    if scales:
        m.calibration_detail = "; ".join(sorted({f"{s.source}: {s.detail}" if s.detail else s.source for s in scales}))
    return m
