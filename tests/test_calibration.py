"""Calibration rules: a mm value only when the scale for the measurement's points is beyond doubt."""
from __future__ import annotations

import pytest

from workstation.calibration import Calibration, Scale, UltrasoundRegion


def region(index=0, x0=0, y0=0, x1=99, y1=79, spatial=1, data_type=1, units=3, delta=0.02):
    return UltrasoundRegion(index, x0, y0, x1, y1, spatial, data_type, units, units, delta, delta)


FRAME = (100, 200)  # rows, cols


def test_points_in_one_2d_cm_region_get_mm():
    lookup = Calibration(regions=(region(),)).scale_for([(10, 10), (40, 50)], FRAME)
    assert lookup.reason is None
    assert lookup.scale.mm_per_px_x == pytest.approx(0.2)
    assert lookup.scale.length_mm((10, 10), (40, 50)) == pytest.approx(10.0)  # 50 px * 0.2 mm
    assert lookup.scale.source == "dicom_region"


def test_points_split_across_regions_are_refused():
    calibration = Calibration(regions=(region(0, x1=99), region(1, x0=100, x1=199)))
    lookup = calibration.scale_for([(10, 10), (150, 10)], FRAME)
    assert lookup.scale is None and "different ultrasound regions" in lookup.reason


def test_point_outside_every_region_is_refused():
    lookup = Calibration(regions=(region(x1=50),)).scale_for([(120, 10)], FRAME)
    assert lookup.scale is None and "outside every" in lookup.reason


@pytest.mark.parametrize("kwargs, words", [
    ({"spatial": 4, "data_type": 10}, "not tissue"),
    ({"units": 4}, "no length units"),
    ({"units": 0, "delta": 0.0}, "no length units"),
    ({"delta": 0.0}, "non-positive"),
])
def test_regions_that_cannot_calibrate_explain_why(kwargs, words):
    lookup = Calibration(regions=(region(**kwargs),)).scale_for([(5, 5), (20, 20)], FRAME)
    assert lookup.scale is None and words in lookup.reason


def test_region_larger_than_the_frame_is_refused():
    # A resized file that kept its old regions: the delta no longer describes these pixels.
    lookup = Calibration(regions=(region(x1=600, y1=500),)).scale_for([(5, 5), (20, 20)], FRAME)
    assert lookup.scale is None and "does not fit inside the 200x100 frame" in lookup.reason


def test_regions_never_fall_back_to_pixel_spacing():
    calibration = Calibration(regions=(region(spatial=4),), pixel_spacing=Scale(0.1, 0.1, "pixel_spacing"))
    assert calibration.scale_for([(5, 5)], FRAME).scale is None


def test_pixel_spacing_and_no_scale():
    assert Calibration(pixel_spacing=Scale(0.1, 0.2, "pixel_spacing")).scale_for([(0, 0)], FRAME).scale.mm_per_px_y == 0.2
    lookup = Calibration().scale_for([(0, 0), (3, 4)], FRAME)
    assert lookup.scale is None and "pixels only" in lookup.reason
    assert Calibration().source == "none"


def test_manual_calibration_wins_and_is_validated():
    calibration = Calibration(regions=(region(units=4),)).with_manual(0.25)  # a region with no length units
    assert calibration.source == "manual"
    assert calibration.scale_for([(0, 0), (0, 4)], FRAME).scale.length_mm((0, 0), (0, 4)) == pytest.approx(1.0)
    for bad in (0, -1, float("nan"), 50):
        with pytest.raises(ValueError):
            Calibration.manual_mm_per_px(bad)


def test_a_manual_scale_still_gives_no_mm_where_the_regions_say_it_is_no_tissue_length():
    image, doppler = region(0, x1=99, y1=59), region(1, y0=60, x1=99, y1=79, spatial=4, data_type=10)
    calibration = Calibration(regions=(image, doppler, region(2, x0=100, x1=199))).with_manual(0.25)
    assert calibration.scale_for([(5, 5), (20, 20)], FRAME).scale.source == "manual"  # within the image
    on_trace = calibration.scale_for([(5, 5), (20, 70)], FRAME)
    assert on_trace.scale is None and "not tissue" in on_trace.reason
    across = calibration.scale_for([(5, 5), (150, 5)], FRAME)
    assert across.scale is None and "different ultrasound regions" in across.reason
    # Regions that do not fit the frame (a resized file) say nothing about where things are: the manual scale holds.
    resized = Calibration(regions=(region(x1=600, y1=500, spatial=4),)).with_manual(0.25)
    assert resized.scale_for([(5, 5), (20, 20)], FRAME).scale.source == "manual"


def test_anisotropic_scale_length():
    scale = Scale(0.1, 0.3, "pixel_spacing")
    assert scale.length_mm((0, 0), (30, 10)) == pytest.approx((3.0 ** 2 + 3.0 ** 2) ** 0.5)
