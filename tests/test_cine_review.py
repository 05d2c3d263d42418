"""The Qt-free review state behind the window: corrections recomputed by the core, undo snapshots, compact maps."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from workstation.calibration import Calibration
from workstation.cine_review import (CineAnalysis, FrameMaps, FrameMeasurementState, compact, ps_moved,
                                     recompute_json)
from workstation.inference.pipeline import FrameResult
from workstation.measure import Geometry, measure_labelmap, recompute
from workstation.synthetic import make_transperineal_cine

SHAPE = (480, 640)


@pytest.fixture(scope="module")
def synthetic():
    return make_transperineal_cine(n_frames=3, seed=0)


def frame_result(synthetic, index, frame_class="standard_plane", uncertainty=0.3, keep_maps=True):
    labels = synthetic.labels[index]
    entropy = np.full(labels.shape, 0.5, np.float32)
    measured = measure_labelmap(labels, Calibration.manual_mm_per_px(0.2)).to_json()
    return FrameResult(index, index * 0.04, frame_class, None, True, True, measured, uncertainty,
                       {"boundary_entropy": 0.3, "flip_disagreement": None, "regression_gap": None}, None,
                       labels if keep_maps else None, entropy if keep_maps else None)


def moved_tangent(geometry: dict, dy: float = 25.0) -> dict:
    edited = copy.deepcopy(geometry)
    x, y = edited["aop"]["tangent_point"]
    edited["aop"]["tangent_point"] = [x, y + dy]
    return edited


def test_a_correction_is_recomputed_by_the_core_and_clears_a_confirmation(synthetic):
    calibration = Calibration.manual_mm_per_px(0.2)
    result = frame_result(synthetic, 1)
    state = FrameMeasurementState(1, "standard_plane", 0.3, copy.deepcopy(result.measurements))
    state.accept("Midwife A", when="2026-01-01T08:00:00+00:00")
    edited = moved_tangent(state.ai_geometry)
    state.correct(edited, calibration, SHAPE, "Dr B")
    expected = recompute(Geometry.from_json(edited), calibration, SHAPE).to_json()
    assert state.current()["aop_deg"] == expected["aop_deg"] != state.ai["aop_deg"]
    assert state.ai["aop_deg"] == result.measurements["aop_deg"]  # the AI value is kept
    assert state.corrected_by == "Dr B" and state.corrected_at
    assert state.confirmed is False and state.confirmed_by is None  # the edit voids the earlier confirmation
    record = state.to_dict()
    assert record["ai"]["aop_deg"] == result.measurements["aop_deg"] and record["corrected"]["aop_deg"] == expected["aop_deg"]


def test_an_acceptance_of_pixel_values_does_not_carry_over_to_the_mm_a_calibration_brings(synthetic):
    labels = synthetic.labels[1]
    measured = measure_labelmap(labels, None).to_json()
    pixels_only = recompute_json(measured["geometry"], None, labels.shape, "standard_plane", measured)
    state = FrameMeasurementState(1, "standard_plane", 0.3, pixels_only)
    state.accept("Alice", when="2026-01-01T08:00:00+00:00")
    assert state.current()["hsd_mm"] is None
    # The same (absent) calibration again: nothing she saw changes, her acceptance stands.
    state.recalibrate(None, labels.shape)
    assert state.confirmed and state.confirmed_by == "Alice"
    # A manual calibration: HSD now in mm, which Alice never saw, so its acceptance is withdrawn (value by value,
    # ``acceptance_after``): the HSD is the AI's again; the AoP, which a scale does not change, stays accepted.
    state.recalibrate(Calibration.manual_mm_per_px(0.25), labels.shape)
    assert state.current()["hsd_mm"] == pytest.approx(0.25 * state.current()["hsd_px"], rel=1e-3)
    assert state.confirmed_by == "Alice" and state.whose()["aop"] == "confirmed" and state.whose()["hsd"] == "AI"
    assert "hsd" in state.unaccepted()
    # Accepted again under this calibration, re-applying it keeps the acceptance.
    state.accept("Alice")
    state.recalibrate(Calibration.manual_mm_per_px(0.25), labels.shape)
    assert state.confirmed and state.confirmed_by == "Alice"


def test_snapshot_and_restore_undo_an_edit_and_an_acceptance(synthetic):
    state = FrameMeasurementState(0, "standard_plane", 0.2, frame_result(synthetic, 0).measurements)
    before = state.snapshot()
    state.correct(moved_tangent(state.ai_geometry), None, SHAPE, "Dr B")
    state.accept("Dr B")
    after = state.snapshot()
    corrected = copy.deepcopy(state.corrected)
    state.restore(before, None, SHAPE)
    assert state.corrected is None and not state.confirmed and state.current() is state.ai
    state.restore(after, None, SHAPE)
    assert state.is_corrected and state.confirmed_by == "Dr B"
    assert state.corrected == corrected  # the same calibration: exactly the values that were shown
    state.reset_to_ai()
    assert state.corrected is None and state.confirmed is False


def test_a_snapshot_restored_under_another_calibration_is_measured_with_it(synthetic):
    """Undo/redo after a manual calibration: the corrected geometry in the new mm, and an acceptance of the old
    values no longer holds (the person never saw these)."""
    result = frame_result(synthetic, 0)
    analysis = CineAnalysis(3, SHAPE, Calibration.manual_mm_per_px(0.2))
    state = analysis.add(*compact(result))
    state.correct(moved_tangent(state.ai_geometry), analysis.calibration, SHAPE, "Dr B")
    state.accept("Dr B")
    accepted = state.snapshot()
    analysis.set_calibration(Calibration.manual_mm_per_px(0.5))
    # The recalibration withdrew the acceptance of the HSD (back to whose it was in Dr B's correction of the tangent:
    # the AI's), not of the AoP.
    assert state.whose()["aop"] == "confirmed" and state.whose()["hsd"] == "AI"
    state.restore(accepted, analysis.calibration, SHAPE)
    assert state.corrected["hsd_mm"] == pytest.approx(0.5 * state.corrected["hsd_px"], rel=1e-3)
    assert state.corrected_by == "Dr B" and state.unaccepted() == ["hsd"]
    assert state.whose() == {"aop": "confirmed", "hsd": "AI", "head": "confirmed"}
    # An acceptance of AI values: the AI's mm changed with the calibration, so the HSD's does not come back either.
    state.reset_to_ai()
    state.accept("Midwife C")
    ai_accepted = state.snapshot()
    analysis.set_calibration(Calibration.manual_mm_per_px(0.2))
    state.restore(ai_accepted, analysis.calibration, SHAPE)
    assert not state.is_corrected and state.whose()["hsd"] == "AI" and state.whose()["aop"] == "confirmed"
    # Restored under the calibration it was accepted with, it holds.
    analysis.set_calibration(Calibration.manual_mm_per_px(0.5))
    state.restore(ai_accepted, analysis.calibration, SHAPE)
    assert state.confirmed_by == "Midwife C"


def test_an_edit_never_shows_a_value_the_plane_withholds(synthetic):
    result = frame_result(synthetic, 0)
    withheld = recompute_json(result.measurements["geometry"], None, SHAPE, "not_transperineal")
    assert withheld["aop_deg"] is None and "no transperineal view" in withheld["reasons"]["aop_deg"]
    # The reason names the plane as a person reads it, not the model's class id.
    assert "axial head plane" in withheld["reasons"]["aop_deg"]
    assert "not_transperineal" not in withheld["reasons"]["aop_deg"]
    biometry = recompute_json(result.measurements["geometry"], None, SHAPE, "standard_plane")
    assert "classed standard plane (PS and FH)" in biometry["reasons"]["hc_px"]
    unclassed = recompute_json(result.measurements["geometry"], None, SHAPE, None)
    assert unclassed["aop_deg"] == pytest.approx(result.measurements["aop_deg"], abs=1e-3)


def test_unmeasurable_geometry_gives_reasons_not_an_exception():
    measured = recompute_json({"head_ellipse": {"center": [1, 1], "semi_axes": [0, 0], "angle_deg": 0}}, None, SHAPE,
                              "standard_plane")
    assert measured["hc_px"] is None and "cannot be measured" in measured["reasons"]["hc_px"]


def test_moving_the_ps_axis_moves_the_hsd_start(synthetic):
    geometry = copy.deepcopy(frame_result(synthetic, 0).measurements["geometry"])
    geometry["ps_axis"]["inferior"] = [300.0, 100.0]
    assert ps_moved(geometry)["hsd"]["start"] == [300.0, 100.0]


def test_a_manual_calibration_recomputes_ai_and_corrected_mm(synthetic):
    result = frame_result(synthetic, 2)
    analysis = CineAnalysis(3, SHAPE, None)
    state = analysis.add(*compact(result))
    state.correct(moved_tangent(state.ai_geometry), None, SHAPE, "Dr B")
    assert state.current()["hsd_mm"] is None
    analysis.set_calibration(Calibration.manual_mm_per_px(0.25))
    assert state.ai["hsd_mm"] == pytest.approx(state.ai["hsd_px"] * 0.25, rel=1e-3)
    assert state.corrected["hsd_mm"] == pytest.approx(state.corrected["hsd_px"] * 0.25, rel=1e-3)
    assert state.corrected["calibration"]["source"] == "manual"


def test_cine_analysis_keeps_compact_maps_and_chooses_a_frame(synthetic):
    analysis = CineAnalysis(3, SHAPE, Calibration.manual_mm_per_px(0.2))
    for index, uncertainty in ((0, 0.5), (1, 0.2), (2, 0.4)):
        result, maps = compact(frame_result(synthetic, index, uncertainty=uncertainty))
        assert result.labels is None and result.uncertainty_map is None  # the full maps leave with `compact`
        analysis.add(result, maps)
    assert analysis.chosen()[0] == 1
    assert np.array_equal(analysis.maps[1].labels(), synthetic.labels[1])
    assert analysis.maps[1].uncertainty_small.shape == (SHAPE[0] // 4, SHAPE[1] // 4)
    assert analysis.maps[1].uncertainty_small.dtype == np.uint8 and int(analysis.maps[1].uncertainty_small[0, 0]) == 128
    # Compact: a label map PNG and a 1/16-size uncertainty map, far below one float32 map of the frame.
    assert analysis.maps_nbytes < 3 * SHAPE[0] * SHAPE[1] * 4 / 8
    summary = analysis.to_dict()
    assert summary["chosen_frame"] == 1 and len(summary["frames"]) == 3


def test_frame_maps_need_a_label_map():
    assert FrameMaps.from_arrays(None, None) is None
    maps = FrameMaps.from_arrays(np.zeros((8, 8), np.uint8), None)
    assert maps.labels().shape == (8, 8) and maps.uncertainty_small.shape == (1, 1)


def test_a_new_calibration_recomputes_the_ai_values_and_keeps_what_geometry_cannot_say(synthetic):
    result = frame_result(synthetic, 1)
    ai = copy.deepcopy(result.measurements)
    ai["aop_construction"] = {"segmentation": "mirrored", "direct_estimate_deg": 120.0}
    state = FrameMeasurementState(1, "standard_plane", 0.3, ai)
    state.recalibrate(Calibration.manual_mm_per_px(0.4), synthetic.labels[1].shape)
    assert state.ai["hsd_mm"] == pytest.approx(2.0 * result.measurements["hsd_mm"], rel=1e-3)
    assert state.ai["aop_deg"] == pytest.approx(result.measurements["aop_deg"], abs=1e-6)
    assert state.ai["aop_construction"] == ai["aop_construction"]  # the panel still says which segmentation


def test_a_review_on_record_is_shown_under_its_authors_and_an_acceptance_only_of_the_values_on_screen(synthetic):
    calibration = Calibration.manual_mm_per_px(0.2)
    state = FrameMeasurementState(1, "standard_plane", 0.3, frame_result(synthetic, 1).measurements)
    edited = moved_tangent(state.ai_geometry)
    on_record = recompute_json(edited, calibration, SHAPE, "standard_plane")
    values = {key: on_record[key] for key in ("aop_deg", "hsd_px", "hsd_mm")}
    recorded = {"kind": "confirmation", "by": "Midwife C", "values": values, "corrected_geometry": edited,
                "corrected_by": "Dr B", "corrected_at": "2026-01-01T08:00:00+00:00",
                "confirmed_by": "Midwife C", "confirmed_at": "2026-01-01T09:00:00+00:00"}
    assert state.show_recorded(recorded, calibration, SHAPE) == []
    assert state.current()["aop_deg"] == on_record["aop_deg"] != state.ai["aop_deg"]
    assert (state.corrected_by, state.corrected_at) == ("Dr B", "2026-01-01T08:00:00+00:00")
    assert (state.confirmed_by, state.confirmed_at) == ("Midwife C", "2026-01-01T09:00:00+00:00")
    # Other mm on screen (another calibration in force): the correction is shown, measured with the calibration
    # in force; the acceptance of other values is not.
    differ = state.show_recorded(recorded, Calibration.manual_mm_per_px(0.5), SHAPE)
    assert differ == ["hsd_mm"] and state.corrected_by == "Dr B" and not state.confirmed
    assert state.current()["hsd_mm"] == pytest.approx(0.5 * state.current()["hsd_px"], rel=1e-3)
    # A confirmation of AI values: no correction shown.
    ai_values = {key: state.ai[key] for key in ("aop_deg", "hsd_px", "hsd_mm")}
    assert state.show_recorded({**recorded, "values": ai_values, "corrected_geometry": None, "corrected_by": None},
                               calibration, SHAPE) == []
    assert not state.is_corrected and state.confirmed_by == "Midwife C"


HEAD = {"head_ellipse": {"center": [320.0, 240.0], "semi_axes": [180.0, 140.0], "angle_deg": 10.0}}  # HC ~1012 px
SMALL_HEAD_SCALE = 0.05  # mm/px: HC ~51 mm, below the Hadlock range's 68 mm


def test_after_a_manual_calibration_the_reasons_are_the_recomputations(synthetic):
    """Pixels only, GA says "no calibration"; after a manual calibration that puts HC below the Hadlock range, GA
    says so (it kept "no calibration: pixels only", absent before and after), while HC, BPD and OFD are in mm."""
    pixels = recompute_json(HEAD, None, SHAPE, "not_transperineal")
    assert pixels["ga_weeks"] is None and pixels["reasons"]["ga_weeks"] == "no calibration: pixels only"
    manual = Calibration.manual_mm_per_px(SMALL_HEAD_SCALE)
    again = recompute_json(HEAD, manual, SHAPE, "not_transperineal", pixels)
    assert again["hc_mm"] == pytest.approx(SMALL_HEAD_SCALE * again["hc_px"], rel=1e-6) and again["hc_mm"] < 68
    assert again["ga_weeks"] is None and "outside the Hadlock 1984 range" in again["reasons"]["ga_weeks"]
    assert not any("no calibration" in reason for reason in again["reasons"].values()), again["reasons"]
    # Why a part of the geometry is not there stays: the frame had no pubic symphysis (recompute only says
    # "no AoP geometry").
    import cv2

    labels = np.zeros(SHAPE, np.uint8)
    cv2.ellipse(labels, (320, 240), (180, 140), 10, 0, 360, 2, -1)
    head_only = measure_labelmap(labels, None).to_json()
    assert head_only["reasons"]["aop_deg"] == "no pubic symphysis found in this frame"
    again = recompute_json(head_only["geometry"], manual, SHAPE, "not_transperineal", head_only)
    assert again["reasons"]["aop_deg"] == again["reasons"]["hsd_mm"] == "no pubic symphysis found in this frame"
    assert "outside the Hadlock 1984 range" in again["reasons"]["ga_weeks"]
    # The viewer's path (a calibration set on screen): the AI's values and a person's alike.
    state = FrameMeasurementState(0, "not_transperineal", 0.3, copy.deepcopy(pixels))
    state.correct({"head_ellipse": {**HEAD["head_ellipse"], "semi_axes": [170.0, 135.0]}}, None, SHAPE, "Dr B")
    state.recalibrate(manual, SHAPE)
    for values in (state.ai, state.corrected):
        assert "outside the Hadlock 1984 range" in values["reasons"]["ga_weeks"], values["reasons"]


def test_reasons_not_about_measuring_survive_the_recomputation(synthetic):
    """What the geometry cannot say stays: the AI's head biometry withheld (no skull echo) keeps that reason for GA
    even where the new scale would refuse GA anyway, and so does a value the frame's plane withholds; a person's own
    ellipse on that frame is measured as drawn, its GA's reason its own (never the AI's withholding)."""
    from workstation.inference.pipeline import keep_ai_biometry_withheld

    echo = "no fetal skull echo along the outline"
    in_range = Calibration.manual_mm_per_px(0.2)  # HC ~202 mm: a GA
    ai = keep_ai_biometry_withheld({**recompute_json(HEAD, in_range, SHAPE, "not_transperineal"),
                                    "ai_biometry_withheld": echo})
    assert ai["ga_weeks"] is None and ai["reasons"]["ga_weeks"] == echo
    state = FrameMeasurementState(0, "not_transperineal", 0.3, ai)
    state.correct({"head_ellipse": {**HEAD["head_ellipse"], "semi_axes": [170.0, 135.0]}}, in_range, SHAPE, "Dr B")
    assert state.corrected["ga_weeks"] is not None
    state.recalibrate(Calibration.manual_mm_per_px(SMALL_HEAD_SCALE), SHAPE)
    assert state.ai["hc_mm"] is None and state.ai["reasons"]["hc_mm"] == echo
    assert state.ai["ga_weeks"] is None and state.ai["reasons"]["ga_weeks"] == echo
    assert state.corrected["hc_mm"] is not None
    assert "outside the Hadlock 1984 range" in state.corrected["reasons"]["ga_weeks"]
    # A person's ellipse out of the range, measured against the AI's withheld values: the range, not the echo.
    person = recompute_json({"head_ellipse": {**HEAD["head_ellipse"], "semi_axes": [50.0, 40.0]}}, in_range, SHAPE,
                            "not_transperineal", ai)
    assert "outside the Hadlock 1984 range" in person["reasons"]["ga_weeks"]
    # The plane policy: on a transperineal frame the head biometry is withheld for the plane, whatever the scale.
    result = frame_result(synthetic, 0)
    transperineal = recompute_json(result.measurements["geometry"], in_range, SHAPE, "standard_plane")
    plane = transperineal["reasons"]["ga_weeks"]
    assert transperineal["ga_weeks"] is None and "axial head plane" in plane
    again = recompute_json(result.measurements["geometry"], Calibration.manual_mm_per_px(0.01), SHAPE,
                           "standard_plane", transperineal)
    assert again["reasons"]["ga_weeks"] == plane and again["reasons"]["hc_mm"] == plane
