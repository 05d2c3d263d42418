"""Physical scale read from files: ultrasound regions, Pixel Spacing, manual values, and the refusals."""
from __future__ import annotations

import csv
import dataclasses

import pytest

from conftest import shared_path
from fixtures_io import pydicom_test_file, rewrite, write_small_us
from workstation.calibration import UltrasoundRegion
from workstation.io import load

# Burned-in calipers and the scanner's own readout (see ../shared/data/dicom_us/PROVENANCE.md).
CALIPERS = [
    ("OBXXXX1A.dcm", (459.5, 290.5), (498.5, 301.5), 1.06),  # "Dist Mag 1.06 cm"
    ("JPGLosslessP14SV1_1s_1f_8b.dcm", (629.0, 319.0), (689.0, 435.0), 3.3),  # "Asc Ao Diam 3.3 cm"
]


@pytest.mark.parametrize("name, p1, p2, expected_cm", CALIPERS, ids=[c[0] for c in CALIPERS])
def test_burned_in_calipers_reproduce_the_scanner_readout(name, p1, p2, expected_cm):
    cine = load(pydicom_test_file(name))
    lookup = cine.calibration.scale_for([p1, p2], cine.frame_shape)
    assert lookup.scale is not None, lookup.reason
    assert lookup.scale.source == "dicom_region"
    assert lookup.scale.length_mm(p1, p2) / 10 == pytest.approx(expected_cm, abs=0.03)


@pytest.mark.shared_data
def test_calibration_checks_table_from_shared_data():
    folder = shared_path("dicom_us")
    with open(folder / "calibration_checks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        cine = load(folder / row["file"])
        p1 = (float(row["caliper1_x"]), float(row["caliper1_y"]))
        p2 = (float(row["caliper2_x"]), float(row["caliper2_y"]))
        lookup = cine.calibration.scale_for([p1, p2], cine.frame_shape)
        assert lookup.scale is not None, f"{row['file']}: {lookup.reason}"
        assert lookup.scale.detail.startswith(f"region {row['region_index']}")
        readout_cm = float(row["on_screen_readout"].split()[-2])
        assert lookup.scale.length_mm(p1, p2) / 10 == pytest.approx(readout_cm, abs=0.03), row["file"]


def test_regions_are_parsed_in_sequence_order():
    regions = load(pydicom_test_file("gdcm-US-ALOKA-16.dcm")).calibration.regions
    assert [r.index for r in regions] == [0, 1, 2]
    assert regions[0] == UltrasoundRegion(index=0, x0=32, y0=24, x1=335, y1=415, spatial_format=1, data_type=1,
                                          units_x=3, units_y=3, delta_x=pytest.approx(0.0382653),
                                          delta_y=pytest.approx(0.0382653))
    assert regions[2].data_type == 13 and regions[2].units_x == 0  # the grey bar


def test_region_ending_one_past_the_last_column_is_clamped():
    # OBXXXX1A writes RegionLocationMaxX1 = 800 on an 800-column image (an exclusive bound).
    region = load(pydicom_test_file("OBXXXX1A.dcm")).calibration.regions[0]
    assert region.x1 == 799


@pytest.mark.parametrize("name", ["examples_palette.dcm", "examples_ybr_color.dcm"])
def test_regions_of_a_resized_file_do_not_fit_and_give_no_scale(name):
    cine = load(pydicom_test_file(name))
    rows, cols = cine.frame_shape
    lookup = cine.calibration.scale_for([(cols / 2, rows / 2), (cols / 2 + 10, rows / 2)], cine.frame_shape)
    assert lookup.scale is None
    assert "does not fit" in lookup.reason


def test_ecg_region_refuses_a_length():
    cine = load(pydicom_test_file("OBXXXX1A.dcm"))
    ecg = cine.calibration.regions[1]
    assert ecg.index == 1 and ecg.data_type == 10
    lookup = cine.calibration.scale_for([(300, 540), (400, 560)], cine.frame_shape)
    assert lookup.scale is None and "not tissue" in lookup.reason


def test_points_split_across_two_regions_refuse():
    cine = load(pydicom_test_file("gdcm-US-ALOKA-16.dcm"))
    lookup = cine.calibration.scale_for([(200, 200), (500, 200)], cine.frame_shape)
    assert lookup.scale is None and "different ultrasound regions" in lookup.reason
    # Both points in the right-hand 2D region: a scale.
    inside = cine.calibration.scale_for([(400, 200), (500, 200)], cine.frame_shape)
    assert inside.scale is not None and inside.scale.length_mm((400, 200), (500, 200)) == pytest.approx(38.2653, abs=1e-3)


def test_grey_bar_region_refuses():
    calibration = load(pydicom_test_file("gdcm-US-ALOKA-16.dcm")).calibration
    bar = calibration.regions[2]  # x 32-63, y 40-103: drawn over the left 2D region
    assert (bar.spatial_format, bar.data_type, bar.units_x) == (0, 13, 0)
    # Alone, the bar cannot calibrate.
    bar_only = dataclasses.replace(calibration, regions=(bar,))
    lookup = bar_only.scale_for([(40, 50), (40, 90)], (480, 640))
    assert lookup.scale is None and "region 2" in lookup.reason
    # Drawn over the left 2D region, a caliper touching the bar is refused too: the bar is not tissue.
    lookup = calibration.scale_for([(40, 50), (200, 300)], (480, 640))
    assert lookup.scale is None and "region 2" in lookup.reason and "not tissue" in lookup.reason
    # The same 2D region away from the bar keeps its scale.
    assert calibration.scale_for([(100, 150), (200, 300)], (480, 640)).scale.source == "dicom_region"


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "examples_rgb_color.dcm", "ExplVR_BigEnd.dcm"])
def test_files_without_regions_have_no_physical_scale(name):
    cine = load(pydicom_test_file(name))
    lookup = cine.calibration.scale_for([(10, 10), (20, 20)], cine.frame_shape)
    assert cine.calibration.source == "none"
    assert lookup.scale is None and "no physical scale" in lookup.reason


def test_pixel_spacing_gives_row_and_column_spacing(tmp_path):
    path = rewrite(write_small_us(tmp_path / "ps.dcm"), SequenceOfUltrasoundRegions=None, PixelSpacing=[0.3, 0.2])
    cine = load(path)
    lookup = cine.calibration.scale_for([(0, 0), (10, 0)], cine.frame_shape)
    assert cine.calibration.source == "pixel_spacing"
    assert (lookup.scale.mm_per_px_x, lookup.scale.mm_per_px_y) == (0.2, 0.3)  # (row, col) in the file
    assert lookup.scale.length_mm((0, 0), (10, 0)) == pytest.approx(2.0)


def test_imager_pixel_spacing_is_the_last_resort(tmp_path):
    path = rewrite(write_small_us(tmp_path / "ips.dcm"), SequenceOfUltrasoundRegions=None,
                   ImagerPixelSpacing=[0.5, 0.5])
    assert load(path).calibration.source == "imager_pixel_spacing"


def test_manual_mm_per_px_overrides_the_file():
    cine = load(pydicom_test_file("US1_UNCR.dcm"), mm_per_px=0.25)
    lookup = cine.calibration.scale_for([(0, 0), (100, 0)], cine.frame_shape)
    assert cine.calibration.source == "manual"
    assert lookup.scale.source == "manual" and lookup.scale.length_mm((0, 0), (100, 0)) == pytest.approx(25.0)
    # It also overrides regions that would refuse.
    palette = load(pydicom_test_file("examples_palette.dcm"), mm_per_px=0.1)
    assert palette.calibration.scale_for([(400, 100), (410, 100)], palette.frame_shape).scale.source == "manual"
