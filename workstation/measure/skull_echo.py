"""Is there a fetal skull along a head outline? The echo evidence behind the AI's head biometry.

The fetal skull is bone: on an axial head plane it shows as a bright ring, brighter than the brain inside it and
than the tissue around it. A segmentation model outlines a "head" on whatever it is shown, and on images unlike
its training data (a heart, a bladder, an empty sector) it outlines blobs that have no such ring, then the ellipse
gives an HC, a BPD and a gestational age that look plausible. Before those AI values are shown, the frame is
checked along the fitted ellipse:

- 120 rays from the ellipse's centre through points spread evenly in its parameter; on each ray the grey level
  is sampled from 0.5 to 1.3 times the ellipse's radius in that direction (41 samples, bilinear). Rays that leave
  the frame are not used.
- per ray: the rim, the brightest sample within 0.88-1.12 of the radius; the inside (0.5-0.8) and the outside
  (1.18-1.3) bands; all divided by the grey range (1st to 99.5th percentile) of the frame within two major
  semi-axes of the centre. Not the whole frame's: a scanner's burned-in text, grey bar and black border would set
  it (HC18 heads framed with such overlays: 5 of 130 lost their echo with the whole frame's range, 2 with this one).
  Not the ring's own samples either, with which no overlay matters but the pelvis below passes.
- Echo features: ``fraction``, the share of rays whose rim stands out (more than 0.15 of the range above the
  inside's median and 0.05 above the outside's); ``inside_contrast``, the median over rays of rim minus the
  inside's median; ``rim_level``, the median rim above the range's floor.
- Ridge features (bone is brighter than both sides; the edge of a dark blob in brighter tissue is only a step):
  ``ridge_over_outside``, the median over rays of rim minus the outside band's 90th percentile;
  ``ridge_fraction``, the share of rays whose rim exceeds both bands' 90th percentiles by 0.10 of the range.

The echo is called missing when all three echo features lie below their floors (a faint or absent rim), or both
ridge features do (no ridge). The floors, ``SKULL_ECHO_FLOORS``, are the 5th percentile of each feature over the
HC18 training split, outlined as ``workstation analyze`` outlines it (``python -m
workstation.training.biometry_floors``; figures in ``models/psfh-head.md``). Real heads are seldom low on a whole
group at once (about 2% of the training split, mostly faint first-trimester skulls); the rimless synthetic heads
the tests use are, and so are some frames of non-fetal scanner images (pydicom-data), not all: an adult heart's
myocardium around a dark chamber is, to these features, a bright wall around a darker inside as a skull is. This
is a check of the outline, frame by frame, not a detector of non-fetal images. It judges the AI's outline only:
a person who draws the ellipse takes over that judgement.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from workstation.measure.geometry import Ellipse

RAYS = 120
RADIAL_SAMPLES = np.linspace(0.5, 1.3, 41)  # multiples of the ellipse's radius along each ray
RIM_BAND = (0.88, 1.12)
INSIDE_BAND = (0.5, 0.8)
OUTSIDE_FROM = 1.18
RIM_OVER_INSIDE, RIM_OVER_OUTSIDE = 0.15, 0.05  # a ray's rim "stands out" (fractions of the grey range)
RIDGE_MARGIN = 0.10  # a ray's rim is a ridge: above both bands' 90th percentiles by this much
GREY_RANGE_PERCENTILES = (1.0, 99.5)
NEIGHBOURHOOD_RADII = 2.0  # the grey range is taken this many major semi-axes around the centre
ECHO_FEATURES = ("fraction", "inside_contrast", "rim_level")
RIDGE_FEATURES = ("ridge_over_outside", "ridge_fraction")
# 5th percentiles over the HC18 training split (649 frames, shipped models psfh-multitask 1.2.0 + psfh-head 1.1.0,
# as analyze outlines them): python -m workstation.training.biometry_floors --data ../shared/data
SKULL_ECHO_FLOORS = {"fraction": 0.56, "inside_contrast": 0.23, "rim_level": 0.42,
                     "ridge_over_outside": 0.19, "ridge_fraction": 0.43}


def echo_missing(evidence: dict, floors: dict[str, float] = SKULL_ECHO_FLOORS) -> bool:
    """The rule: every echo feature below its floor, or every ridge feature."""
    return any(all(evidence[key] < floors[key] for key in group) for group in (ECHO_FEATURES, RIDGE_FEATURES))


def skull_echo(gray: np.ndarray, ellipse: Ellipse) -> dict:
    """The echo evidence along ``ellipse`` in a grey frame: the five features, ``rays_used``, the floors and
    ``seen`` (False: no skull echo by the rule above; None: too few rays inside the frame to judge)."""
    image = np.asarray(gray, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"skull_echo needs a grey frame (H, W), got shape {image.shape}")
    a, b = ellipse.semi_axes
    theta = math.radians(ellipse.angle_deg)
    t = np.linspace(0.0, 2.0 * np.pi, RAYS, endpoint=False)
    # Offsets of the ellipse's points from its centre; scaling them walks each ray.
    dx = a * np.cos(t) * math.cos(theta) - b * np.sin(t) * math.sin(theta)
    dy = a * np.cos(t) * math.sin(theta) + b * np.sin(t) * math.cos(theta)
    s = RADIAL_SAMPLES
    map_x = (ellipse.center[0] + s[None, :] * dx[:, None]).astype(np.float32)
    map_y = (ellipse.center[1] + s[None, :] * dy[:, None]).astype(np.float32)
    profiles = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
    inside_frame = ~np.isnan(profiles).any(axis=1)
    result = {key: None for key in (*ECHO_FEATURES, *RIDGE_FEATURES)}
    result.update(rays_used=int(inside_frame.sum()), floors=dict(SKULL_ECHO_FLOORS), seen=None)
    if inside_frame.sum() < RAYS // 4:  # a head mostly outside the frame: not judged
        return result
    low, high = np.percentile(_neighbourhood(image, ellipse), GREY_RANGE_PERCENTILES)
    grey_range = max(float(high - low), 1.0)
    profiles = (profiles[inside_frame] - low) / grey_range
    rim = profiles[:, (s >= RIM_BAND[0]) & (s <= RIM_BAND[1])].max(axis=1)
    inside = np.median(profiles[:, (s >= INSIDE_BAND[0]) & (s <= INSIDE_BAND[1])], axis=1)
    outside = np.median(profiles[:, s >= OUTSIDE_FROM], axis=1)
    stands_out = (rim - inside > RIM_OVER_INSIDE) & (rim - outside > RIM_OVER_OUTSIDE)
    inside_high = np.percentile(profiles[:, (s >= INSIDE_BAND[0]) & (s <= INSIDE_BAND[1])], 90, axis=1)
    outside_high = np.percentile(profiles[:, s >= OUTSIDE_FROM], 90, axis=1)
    ridge = (rim - inside_high > RIDGE_MARGIN) & (rim - outside_high > RIDGE_MARGIN)
    result.update(fraction=float(stands_out.mean()), inside_contrast=float(np.median(rim - inside)),
                  rim_level=float(np.median(rim)), ridge_over_outside=float(np.median(rim - outside_high)),
                  ridge_fraction=float(ridge.mean()))
    for key in (*ECHO_FEATURES, *RIDGE_FEATURES):
        result[key] = round(result[key], 4)
    result["seen"] = not echo_missing(result)
    return result


def _neighbourhood(image: np.ndarray, ellipse: Ellipse) -> np.ndarray:
    """The frame within NEIGHBOURHOOD_RADII major semi-axes of the ellipse's centre: the tissue around the head,
    and seldom the scanner's text, grey bar or black border at the frame's edges."""
    reach = NEIGHBOURHOOD_RADII * ellipse.semi_axes[0]
    cx, cy = ellipse.center
    rows = slice(max(int(cy - reach), 0), max(int(cy + reach), 0) + 1)
    cols = slice(max(int(cx - reach), 0), max(int(cx + reach), 0) + 1)
    region = image[rows, cols]
    return region if region.size else image


def describe_missing_echo(evidence: dict) -> str:
    """Why the AI's head biometry is withheld, in words for the panel and the report."""
    faint = all(evidence[key] < evidence["floors"][key] for key in ECHO_FEATURES)
    what = (f"a bright rim on {100 * evidence['fraction']:.0f}% of it, fainter than on 95% of real heads" if faint else
            f"a ridge brighter than both sides on {100 * evidence['ridge_fraction']:.0f}% of it, less than on 95% "
            f"of real heads")
    return (f"no fetal skull echo along the AI's head outline ({what}): this may not be a fetal head. "
            f"Draw the ellipse by hand if it is one")
