"""One pixel shape per frame: the model's input, the AoP and HSD constructions, the AoP value, the report's drawing and
the viewer all take the frame's aspect (``transperineal.frame_aspect``) from the scale the analysis measures in.

The multi-region files here are ones where looking the aspect up at other points (the frame's centre, the PS and head
centroids, the PS axis ends) gives other numbers: each asserts the one number everywhere."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from test_measure_geometry import HEAD_DISTANCE, HEAD_RADIUS, transperineal_scene
from workstation.calibration import Calibration, Scale, UltrasoundRegion
from workstation.measure import measure_labelmap, recompute


def region(index, x0, y0, x1, y1, spatial=1, data_type=1, units=3, dx=0.02, dy=0.02):
    return UltrasoundRegion(index, x0, y0, x1, y1, spatial, data_type, units, units, dx, dy)


GREY_BAR = dict(spatial=0, data_type=13, units=0, dx=0.0, dy=0.0)


# --- the rule ----------------------------------------------------------------------------------------------------

FRAME = (100, 200)  # rows, cols; centre (99.5, 49.5)


@pytest.mark.parametrize("regions, expected", [
    ((region(0, 0, 0, 199, 99, dy=0.025),), 1.25),  # one region
    ((region(0, 0, 0, 89, 99, dy=0.025), region(1, 90, 0, 199, 99, dy=0.03)), 1.5),  # the one holding the centre
    ((region(0, 0, 0, 89, 99, dy=0.025), region(1, 110, 0, 169, 99, dy=0.03)), 1.25),  # none holds it: the largest
    ((region(0, 0, 0, 199, 99, data_type=2, dy=0.03), region(1, 0, 0, 199, 99, dy=0.025)), 1.25),  # tissue first
    ((region(0, 0, 0, 199, 99, dy=0.025), region(1, 90, 40, 110, 60, **GREY_BAR)), 1.25),  # a bar on the centre
    ((region(0, 0, 0, 399, 99, dy=0.03), region(1, 0, 0, 49, 49, dy=0.025)), 1.25),  # one too large for the frame
    ((region(0, 0, 0, 199, 99, units=4, dy=0.03),), 1.0),  # no length units: no scale, square
    ((region(0, 0, 0, 199, 99, dy=0.02004),), 1.0),  # within the tolerance
])
def test_the_frame_aspect_is_that_of_the_2d_region_the_analysis_measures_in(regions, expected):
    from workstation.measure.transperineal import frame_aspect

    assert frame_aspect(Calibration(regions=regions), FRAME) == pytest.approx(expected)


def test_the_frame_aspect_of_pixel_spacing_a_manual_scale_and_none():
    from workstation.measure.transperineal import frame_aspect

    spacing = Calibration(pixel_spacing=Scale(0.2, 0.3, "pixel_spacing"))
    assert frame_aspect(spacing, FRAME) == pytest.approx(1.5)
    assert frame_aspect(spacing.with_manual(0.25), FRAME) == 1.0  # a manual scale is square
    # Regions that cannot calibrate never fall back to Pixel Spacing.
    assert frame_aspect(Calibration(regions=(region(0, 0, 0, 199, 99, **GREY_BAR),),
                                    pixel_spacing=Scale(0.2, 0.3, "pixel_spacing")), FRAME) == 1.0
    assert frame_aspect(None, FRAME) == frame_aspect(Calibration(), FRAME) == 1.0
    # Two regions: the one holding the frame's centre, as the viewer (gui.main_window) takes it too.
    two = Calibration(regions=(region(0, 0, 0, 89, 99, dy=0.025), region(1, 90, 0, 199, 99, dy=0.03)))
    assert frame_aspect(two, FRAME) == pytest.approx(1.5)


# --- the AoP built is the AoP measured ---------------------------------------------------------------------------

def test_a_head_outside_the_2d_region_is_built_and_measured_with_the_frames_aspect():
    """Rows 1.5 times as tall as columns in the 2D region, which holds the frame's centre and the PS but not the
    head's centre (it reaches past the region's top edge; a grey bar is the file's other region). Looked up at the PS
    and head centroids the construction was square (PS ends 2.5 px off, AoP 1.9 deg off), looked up at the PS ends
    the angle was measured at 1.5."""
    aspect, shape = 1.5, (333, 500)
    labels, inferior, superior, head_centre = transperineal_scene(45, -100, shape=shape, aspect=aspect)
    assert head_centre[1] / aspect < 106 < inferior[1] / aspect  # pixel rows: the head's centre above the region
    calibration = Calibration(regions=(region(0, 0, 106, 499, 332, dy=0.02 * aspect),
                                       region(1, 480, 0, 499, 105, **GREY_BAR)))
    m = measure_labelmap(labels, calibration)
    assert m.pixel_aspect == pytest.approx(aspect) and m.to_json()["pixel_aspect"] == pytest.approx(aspect)
    expected = abs(-100) + math.degrees(math.asin(HEAD_RADIUS / HEAD_DISTANCE))
    assert m.aop_deg == pytest.approx(expected, abs=0.6)
    # The PS axis was built in the patient: its ends are the drawn rectangle's.
    to_pixels = np.array([1.0, 1.0 / aspect])
    assert np.hypot(*(np.array(m.geometry.ps_axis.inferior) - inferior * to_pixels)) < 1.0
    assert np.hypot(*(np.array(m.geometry.ps_axis.superior) - superior * to_pixels)) < 1.0
    # Built again from its PS axis (as an edit does), the same tangent and the same value.
    again = recompute(m.geometry, calibration, labels.shape, refit_dependents=True)
    assert again.geometry.aop.tangent_point == m.geometry.aop.tangent_point
    assert again.aop_deg == pytest.approx(m.aop_deg, abs=1e-9) and again.pixel_aspect == m.pixel_aspect


# --- the model is shown the aspect the values are built with -----------------------------------------------------

def test_the_model_sees_the_frame_in_the_aspect_its_values_are_built_with(monkeypatch, tmp_path):
    """A grey bar over the frame's centre of a one-image file with rows 1.25 times as tall: looked up at the centre,
    the model was shown square pixels while the AoP was built and measured at 1.25."""
    pytest.importorskip("onnx")
    from test_pipeline import label_cine
    from model_fixtures import build_tiny_onnx, write_manifest
    from workstation.inference.engine import Model, load_model
    from workstation.inference.pipeline import iter_frame_results
    from workstation.measure import Geometry

    rows, cols = 240, 320
    calibration = Calibration(regions=(region(0, 0, 0, cols - 1, rows - 1, dy=0.025),
                                       region(1, 150, 110, 169, 129, **GREY_BAR)))
    cine, _ = label_cine(n=3, calibration=calibration)
    model = load_model(str(write_manifest(build_tiny_onnx(tmp_path / "tiny.onnx"))), device="cpu", threads=1)
    shown = []
    predict = Model.predict

    def spy(self, frames, tta=False, aspect=1.0):
        shown.append(aspect)
        return predict(self, frames, tta=tta, aspect=aspect)

    monkeypatch.setattr(Model, "predict", spy)
    frames = [r.measurements for r in iter_frame_results(cine, model)]
    assert shown and shown == pytest.approx([1.25] * len(shown))
    with_aop = [f for f in frames if f["aop_deg"] is not None]
    assert with_aop
    for frame in frames:
        assert frame["pixel_aspect"] == pytest.approx(1.25)
    for frame in with_aop:  # measured as recorded: the same value from the same geometry
        again = recompute(Geometry.from_json(frame["geometry"]), calibration, (rows, cols))
        assert again.aop_deg == pytest.approx(frame["aop_deg"], abs=1e-3)


# --- the report draws the aspect its values are measured with ----------------------------------------------------

def test_the_report_draws_the_key_frame_in_the_aspect_its_aop_was_measured_with(tmp_path):
    """The demo cine with its 2D region (rows 1.25 times as tall) below the PS, and a grey bar: at the PS ends
    there was no scale, so the AoP was measured and drawn square while the model and the viewer took 1.25."""
    import pydicom

    from records_support import demo_exam_file, synthetic_measurement
    from test_reports_pdf import _key_frame_image, _poppler, raw_text
    from workstation.io import load
    from workstation.records import Records, import_scan
    from workstation.reports import write_exam_report

    _poppler()
    path = demo_exam_file(tmp_path / "usb", seed=5)
    ds = pydicom.dcmread(path)
    image = ds.SequenceOfUltrasoundRegions[0]
    bar = copy.deepcopy(image)
    image.RegionLocationMinY0, image.PhysicalDeltaY = 140, 0.025  # below the PS (rows 55-127 of frame 3)
    bar.RegionLocationMinX0, bar.RegionLocationMaxY1 = 600, 139
    bar.RegionSpatialFormat, bar.RegionDataType, bar.PhysicalUnitsXDirection, bar.PhysicalUnitsYDirection = 0, 13, 0, 0
    ds.SequenceOfUltrasoundRegions.append(bar)
    ds.save_as(path)
    with Records(tmp_path / "data") as records:
        exam = import_scan(records, path).exam
        cine = load(records.file_path(exam))
        calibration = cine.calibration
        cine.close()
        assert len(calibration.regions) == 2
        values = synthetic_measurement(3, calibration)
        assert values["pixel_aspect"] == pytest.approx(1.25)
        records.add_measurement(exam.id, "ai", "tiny 0.0.1", values, frame_index=3, time_s=0.12, uncertainty=0.25,
                                calibration_source=values["calibration"]["source"])
        pdf = write_exam_report(records, exam.id, tmp_path / "exam.pdf")
    drawn = _key_frame_image(pdf, tmp_path / "images")
    assert drawn.shape[0] / drawn.shape[1] == pytest.approx(480 * 1.25 / 640, abs=0.01)
    assert "1.250 times as tall" in raw_text(pdf)
