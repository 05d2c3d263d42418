"""Head biometry from an ellipse fitted to the fetal skull: HC, BPD, OFD and gestational age.

- Ellipse: a least-squares fit (``cv2.fitEllipse``, Fitzgibbon's direct method) to the head outline.
- HC: Ramanujan's approximation of the ellipse perimeter, pi * (3(a+b) - sqrt((3a+b)(a+3b))), a >= b semi-axes.
- BPD and OFD, convention used here: outer-to-outer diameters of the same fitted ellipse, BPD = minor axis 2b,
  OFD = major axis 2a. (ISUOG fetal biometry usually calls BPD outer-to-inner, a skull thickness, 2-3 mm, smaller.)
- In mm, the ellipse is mapped through the pixel scale before its axes are taken: with anisotropic pixels the
  physical ellipse's semi-axes are the singular values of diag(sx, sy) R(angle) diag(a, b), not a*sx and b*sy.
- GA: Hadlock et al. 1984 (Radiology 152:497-501), GA (weeks) = 8.96 + 0.540 HC - 0.0040 HC^2 + 0.000399 HC^3,
  HC in cm, given only for HC within the published table's range widened to term, 6.8-36.0 cm (about 12-42 weeks),
  with a +-2 week range around it.

Outline thickness (HC18, van den Heuvel et al. 2018): the experts drew each skull ellipse as a line about 2.5 px
wide (annotation pixels per unit of ellipse perimeter, measured 2.54 px over the 800 cases); the reference HC is
that line's mid-line. A filled mask made from such an outline (HC18 ``masks/``) ends at the line's outer edge, half
a line width outside the reference, so an ellipse fitted to the mask's edge overestimates HC: +1.20 mm on average
with this module's pixel-edge outline (+0.78 mm with OpenCV's pixel-centre contour, which sits half a pixel further
in). ``fit_head_ellipse(mask, kind="filled", outline_width_px=HC18_OUTLINE_WIDTH_PX)`` fits the mask's edge and moves
it in by half the line width (semi-axes minus w/2: the parallel curve of an ellipse is, to this accuracy, the ellipse
with both semi-axes changed by the offset), which brings the mean absolute difference to 0.10 mm. A segmentation
whose edge is the skull's outer edge needs no correction (width 0, the default). A model trained on such masks
learns their edge, so its outlines need the same correction: its manifest gives the width in model-input pixels
(``head_outline_width_input_px``), and the engine hands it on in frame pixels
(``FramePrediction.head_outline_width_px``).
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from workstation.calibration import Calibration, Scale
from workstation.measure.geometry import Ellipse, MeasurementRefused
from workstation.measure.regions import edge_points, largest_component, region_pixels

HC18_OUTLINE_WIDTH_PX = 2.5  # the HC18 expert outlines' mean width (annotation pixels / ellipse perimeter)
MIN_HEAD_PIXELS = 200  # a smaller head region cannot carry an ellipse worth reporting
MIN_FIT_POINTS = 20
MAX_FRAME_EDGE_SHARE = 0.15  # more of the outline on the frame edge than this: the head is cut off
HADLOCK_HC_RANGE_CM = (6.8, 36.0)
GA_RANGE_WEEKS = 2.0
BIOMETRY_CONVENTION = ("ellipse least-squares fit to the outer skull outline; HC = Ramanujan perimeter; "
                       "BPD = minor axis 2b, OFD = major axis 2a (outer-to-outer); GA = Hadlock 1984 from HC, +-2 weeks")


def ramanujan_perimeter(a: float, b: float) -> float:
    return math.pi * (3.0 * (a + b) - math.sqrt((3.0 * a + b) * (a + 3.0 * b)))


def fit_head_ellipse(mask_or_outline: np.ndarray, kind: str = "filled", outline_width_px: float = 0.0) -> Ellipse:
    """Fit the head ellipse to a filled head mask or to a drawn outline (any non-zero pixel is head/outline).

    ``kind="filled"``: the largest region's edge (pixel-edge points, frame-edge points left out), moved inwards by
    ``outline_width_px / 2`` when the mask was filled from a drawn outline whose mid-line is the reference (HC18:
    ``HC18_OUTLINE_WIDTH_PX``); 0 for a segmentation whose edge is the skull's outer edge.
    ``kind="outline"``: all outline pixel centres; the line's mid-line is the ellipse.
    """
    image = np.asarray(mask_or_outline) > 0
    if kind == "filled":
        region = largest_component(image)
        if region.sum() < MIN_HEAD_PIXELS:
            raise MeasurementRefused(f"the fetal head is too small for an ellipse ({int(region.sum())} pixels, "
                                     f"at least {MIN_HEAD_PIXELS} needed)")
        points, on_frame = edge_points(region)
        if on_frame.mean() > MAX_FRAME_EDGE_SHARE:
            raise MeasurementRefused(f"the head is cut off by the frame edge ({100 * on_frame.mean():.0f}% of its "
                                     f"outline): no reliable ellipse")
        points = points[~on_frame]
        shrink = outline_width_px / 2.0
    elif kind == "outline":
        points = region_pixels(image).astype(float)
        shrink = 0.0
    else:
        raise ValueError(f"kind must be 'filled' or 'outline', got {kind!r}")
    if len(points) < MIN_FIT_POINTS:
        raise MeasurementRefused(f"too few head outline points for an ellipse ({len(points)})")
    box = cv2.fitEllipse(points.astype(np.float32))
    try:
        ellipse = Ellipse.from_cv(box)
        a, b = ellipse.semi_axes
        ellipse = Ellipse(ellipse.center, (a - shrink, b - shrink), ellipse.angle_deg)
    except MeasurementRefused:
        raise MeasurementRefused("the head ellipse fit failed (degenerate outline)") from None
    if not all(math.isfinite(v) for v in (*ellipse.center, ellipse.angle_deg)):
        raise MeasurementRefused("the head ellipse fit failed (not a finite ellipse)")
    rows, cols = image.shape
    cx, cy = ellipse.center
    if not (-0.5 <= cx <= cols - 0.5 and -0.5 <= cy <= rows - 0.5) or ellipse.semi_axes[0] > 2 * max(rows, cols):
        raise MeasurementRefused("the head ellipse fit does not fit the frame (its centre lies outside or it is "
                                 "far larger than the image): outline too incomplete")
    return ellipse


def ellipse_in_mm(ellipse: Ellipse, scale: Scale) -> tuple[float, float]:
    """The physical ellipse's semi-axes (a >= b) in mm under a possibly anisotropic pixel scale."""
    theta = math.radians(ellipse.angle_deg)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    mapping = np.diag([scale.mm_per_px_x, scale.mm_per_px_y]) @ rotation @ np.diag(ellipse.semi_axes)
    a_mm, b_mm = np.linalg.svd(mapping, compute_uv=False)
    return float(a_mm), float(b_mm)


def hadlock_ga_weeks(hc_mm: float) -> float:
    """Gestational (menstrual) age in weeks from HC by Hadlock 1984; refused outside the formula's range."""
    hc_cm = hc_mm / 10.0
    low, high = HADLOCK_HC_RANGE_CM
    if not (low <= hc_cm <= high):  # said in mm, as every length the user sees
        raise MeasurementRefused(f"HC {hc_mm:.1f} mm is outside the Hadlock 1984 range ({10 * low:g}-{10 * high:g} mm, "
                                 f"about 12-42 weeks): no gestational age")
    return 8.96 + 0.540 * hc_cm - 0.0040 * hc_cm ** 2 + 0.000399 * hc_cm ** 3


def ellipse_measurements(ellipse: Ellipse, calibration: Calibration | None, frame_shape: Sequence[int]) -> dict:
    """HC, BPD, OFD in px and mm, and GA, from a head ellipse.

    Returns {"hc_px", "bpd_px", "ofd_px", "hc_mm", "bpd_mm", "ofd_mm", "ga_weeks", "ga_range_weeks", "scale",
    "reasons"}; absent values are None with their reason in ``reasons``.
    """
    a, b = ellipse.semi_axes
    out = {"hc_px": ramanujan_perimeter(a, b), "bpd_px": 2.0 * b, "ofd_px": 2.0 * a, "hc_mm": None, "bpd_mm": None,
           "ofd_mm": None, "ga_weeks": None, "ga_range_weeks": None, "scale": None, "reasons": {}}
    if calibration is None:
        reason = "no calibration: pixels only"
    else:
        lookup = calibration.scale_for([tuple(p) for p in ellipse.points(72)], frame_shape)
        reason = lookup.reason or "no scale for the ellipse: pixels only"
        if lookup.scale is not None:
            a_mm, b_mm = ellipse_in_mm(ellipse, lookup.scale)
            out.update(hc_mm=ramanujan_perimeter(a_mm, b_mm), bpd_mm=2.0 * b_mm, ofd_mm=2.0 * a_mm, scale=lookup.scale)
            reason = None
    if reason is not None:
        out["reasons"].update({key: reason for key in ("hc_mm", "bpd_mm", "ofd_mm", "ga_weeks")})
        return out
    try:
        ga = hadlock_ga_weeks(out["hc_mm"])
        out.update(ga_weeks=ga, ga_range_weeks=[ga - GA_RANGE_WEEKS, ga + GA_RANGE_WEEKS])
    except MeasurementRefused as refused:
        out["reasons"]["ga_weeks"] = str(refused)
    return out
