"""workstation.measure on real expert labels: PSFHS transperineal label maps (AoP) and HC18 head outlines (HC).

PSFHS ships no reference AoP, so the check is plausibility of the distribution; HC18 ships the experts' HC, so
the check is agreement. Run with ``-s`` to see the figures.
"""
from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from conftest import shared_path
from workstation.measure import (HC18_OUTLINE_WIDTH_PX, fit_head_ellipse, load_labelmap, measure_labelmap,
                                 ramanujan_perimeter)

pytestmark = pytest.mark.shared_data


def test_psfhs_aop_distribution_is_plausible():
    files = sorted(shared_path("psfhs", "labels").glob("*_label.png"))
    assert len(files) > 1000
    results = [measure_labelmap(load_labelmap(f)) for f in files]
    aops = np.array([m.aop_deg for m in results if m.aop_deg is not None])
    p5, median, p95 = np.percentile(aops, [5, 50, 95])
    in_band = np.mean((aops >= 80) & (aops <= 180))
    print(f"\nPSFHS AoP over {len(aops)}/{len(files)} label maps: min {aops.min():.1f}, p5 {p5:.1f}, "
          f"median {median:.1f}, p95 {p95:.1f}, max {aops.max():.1f} deg; {100 * in_band:.1f}% in 80-180")
    assert len(aops) >= 0.95 * len(files)  # expert labels of standard planes: nearly all must be measurable
    assert in_band >= 0.95
    assert 95 <= median <= 160
    with_hsd = [m for m in results if m.hsd_px is not None]
    assert len(with_hsd) >= 0.95 * len(files)
    assert all(m.hsd_mm is None and "calibration" in m.reasons["hsd_mm"] for m in with_hsd)  # PSFHS has no scale


@pytest.fixture(scope="module")
def hc18_errors():
    """Per case: HC (mm) from the outline, from the filled mask raw and corrected, minus the experts' HC."""
    root = shared_path("hc18")
    with open(root / "training_set_pixel_size_and_HC.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    errors = {"outline": [], "mask_raw": [], "mask_corrected": [], "outline_width_px": []}
    for row in rows:
        stem = row["filename"][:-len(".png")]
        mm_per_px, reference = float(row["pixel size(mm)"]), float(row["head circumference (mm)"])
        outline = cv2.imread(str(root / "annotations" / f"{stem}_Annotation.png"), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(root / "masks" / f"{stem}_mask.png"), cv2.IMREAD_GRAYSCALE)
        fitted = fit_head_ellipse(outline, kind="outline")
        hc_px = ramanujan_perimeter(*fitted.semi_axes)
        errors["outline"].append(hc_px * mm_per_px - reference)
        errors["outline_width_px"].append(np.count_nonzero(outline) / hc_px)  # line area / its length
        for key, width in (("mask_raw", 0.0), ("mask_corrected", HC18_OUTLINE_WIDTH_PX)):
            ellipse = fit_head_ellipse(mask, kind="filled", outline_width_px=width)
            errors[key].append(ramanujan_perimeter(*ellipse.semi_axes) * mm_per_px - reference)
    return {key: np.array(values) for key, values in errors.items()}


def _summary(name, err):
    return f"{name}: mean {err.mean():+.3f} mm, MAE {np.abs(err).mean():.3f} mm, max |e| {np.abs(err).max():.3f} mm"


def test_hc18_outline_fit_reproduces_the_expert_hc(hc18_errors):
    err = hc18_errors["outline"]
    print(f"\nHC18 ({len(err)} cases) " + _summary("outline", err))
    assert len(err) == 800
    assert np.abs(err).mean() <= 0.1
    assert np.abs(err).max() <= 0.5


def test_hc18_filled_masks_after_the_outline_width_correction(hc18_errors):
    raw, corrected = hc18_errors["mask_raw"], hc18_errors["mask_corrected"]
    width = hc18_errors["outline_width_px"].mean()
    print(f"\nHC18 masks, {_summary('raw edge fit', raw)}\nHC18 masks, {_summary('corrected', corrected)}"
          f"\nHC18 outline width measured {width:.2f} px (constant {HC18_OUTLINE_WIDTH_PX})")
    # The masks end at the outer edge of the experts' line: the raw fit is biased outwards.
    assert raw.mean() > 0.5
    assert np.abs(corrected).mean() <= 0.2
    assert np.abs(corrected).mean() < 0.25 * np.abs(raw).mean()
    assert width == pytest.approx(HC18_OUTLINE_WIDTH_PX, abs=0.1)


def test_hc18_mask_through_measure_labelmap_with_calibration():
    """The CLI path: a head-only label map and a manual scale give HC in mm and a gestational age."""
    from workstation.calibration import Calibration

    root = shared_path("hc18")
    mask = cv2.imread(str(root / "masks" / "010_HC_mask.png"), cv2.IMREAD_GRAYSCALE)
    with open(root / "training_set_pixel_size_and_HC.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["filename"] == "010_HC.png")
    labels = np.where(mask > 0, 2, 0).astype(np.uint8)
    m = measure_labelmap(labels, Calibration.manual_mm_per_px(float(row["pixel size(mm)"])),
                         head_outline_width_px=HC18_OUTLINE_WIDTH_PX)
    assert m.hc_mm == pytest.approx(float(row["head circumference (mm)"]), abs=0.5)
    assert m.aop_deg is None and "pubic symphysis" in m.reasons["aop_deg"]
    # Hadlock 1984 worked by hand at the reference HC, 7.191 cm: 8.96 + 0.540c - 0.0040c^2 + 0.000399c^3 = 12.79 weeks
    assert m.ga_weeks == pytest.approx(12.79, abs=0.1) and "ga_weeks" not in m.reasons


def test_the_models_input_size_costs_hc_almost_nothing():
    """A perfect head mask squeezed to the shipped model's input (256x256 letterbox) and mapped back the way its
    output is (bilinear, argmax) still gives the experts' HC: the model's HC error is in its segmentation, not in
    the input size or the mapping back."""
    from workstation.calibration import Calibration
    from workstation.evaluate import _reference_hc
    from workstation.inference.engine import find_manifest, read_manifest
    from workstation.inference.preprocess import maps_to_frame, place
    from workstation.training.data import to_unit

    spec = read_manifest(find_manifest("psfh-multitask")).input_spec
    root = shared_path("hc18")
    reference = sorted(_reference_hc(root).items())[::10]  # 100 cases of all sizes and ages
    errors = []
    for filename, (mm_per_px, reference_hc) in reference:
        mask = cv2.imread(str(root / "masks" / filename.replace(".png", "_mask.png")), cv2.IMREAD_GRAYSCALE)
        head_probability = to_unit(np.where(mask > 0, 255, 0).astype(np.uint8), spec)
        probs = np.stack([1.0 - head_probability, np.zeros_like(head_probability), head_probability])
        head = maps_to_frame(probs, place(mask.shape, spec)).argmax(0) == 2
        assert head.shape == mask.shape
        hc = measure_labelmap(np.where(head, 2, 0).astype(np.uint8), Calibration.manual_mm_per_px(mm_per_px),
                              head_outline_width_px=HC18_OUTLINE_WIDTH_PX).hc_mm
        errors.append(hc - reference_hc)
    errors = np.array(errors)
    print("\n" + _summary(f"HC18 masks through the {spec.height}x{spec.width} input and back", errors))
    assert np.abs(errors).mean() < 0.2 and np.abs(errors).max() < 0.6
