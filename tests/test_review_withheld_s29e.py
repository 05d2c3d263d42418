"""Review 29, finding 1: a person's correction never adopts the head ellipse the AI withheld ("no fetal skull echo
... this may not be a fetal head"), headless (``workstation correct``) or in the window; the head values stay absent
with the AI's reason unless the person gives a head ellipse themselves."""
from __future__ import annotations

import pytest

from records_support import demo_exam_file, run_cli, synthetic_measurement
from workstation.records import Records, RecordsError, correct, import_scan

ECHO = "no fetal skull echo along the AI's head outline; this may not be a fetal head"


def withheld_frame(exam, frame_class):
    """The AI's frame 0: the synthetic transperineal geometry plus a head ellipse whose biometry the AI withheld."""
    values = synthetic_measurement(0)
    rows, cols = exam.frame_shape
    geometry = dict(values["geometry"], head_ellipse={"center": [cols / 2, rows / 2],
                                                      "semi_axes": [cols / 4, rows / 5], "angle_deg": 10.0})
    reasons = dict(values["reasons"], **{k: ECHO for k in ("hc_mm", "bpd_mm", "ofd_mm", "ga_weeks", "hc_px")})
    frame = {"index": 0, "time_s": 0.0, "frame_class": frame_class, "uncertainty": 0.3,
             "calibration": values["calibration"], "aop_deg": values["aop_deg"], "hsd_px": values["hsd_px"],
             "hsd_mm": values["hsd_mm"], "geometry": geometry, "reasons": reasons, "ai_biometry_withheld": ECHO}
    return frame


@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


def analysed_exam(records, tmp_path, frame_class):
    exam = import_scan(records, demo_exam_file(tmp_path, seed=0)).exam
    frame = withheld_frame(exam, frame_class)
    model = {"name": "tiny", "version": "0.0.1", "sha256": "0" * 64, "placeholder": True}
    records.save_analysis(exam.id, {"model": model, "frames": [frame], "summary": {"chosen_frame": 0, "why": "t"}})
    return exam, frame


def moved_hsd(frame):
    hsd = frame["geometry"]["hsd"]
    return {"hsd": {"start": hsd["start"], "end": [hsd["end"][0], hsd["end"][1] + 6]}}


def test_an_hsd_correction_on_a_head_plane_the_ai_withheld_is_refused_not_given_the_ais_hc(records, tmp_path):
    """The finding's exact case: an axial-head-plane frame (AoP and HSD voided), the AI's head biometry withheld; a
    correction of the HSD alone used to be written with HC/BPD/OFD/GA under the person's name."""
    exam, frame = analysed_exam(records, tmp_path, "not_transperineal")
    with pytest.raises(RecordsError, match="gives no measurement"):
        correct(records, exam.id, 0, moved_hsd(frame), "MW Rose")
    assert all(m.kind == "ai" for m in records.measurements(exam.id))


def test_the_head_values_stay_absent_with_the_ais_reason_and_the_ellipse_is_not_adopted(records, tmp_path, capsys):
    exam, frame = analysed_exam(records, tmp_path, None)  # never classed: no plane rule, only the AI's withholding
    row = correct(records, exam.id, 0, moved_hsd(frame), "MW Rose")
    assert row.hsd_px is not None
    assert row.hc_mm is None and row.bpd_mm is None and row.ofd_mm is None and row.ga_weeks is None
    assert row.reasons["hc_mm"] == ECHO and row.reasons["ga_weeks"] == ECHO
    assert not row.geometry.get("head_ellipse")  # never the person's
    # A later correction on top of it (the person's row is then the basis) keeps them absent, with that reason.
    again = correct(records, exam.id, 0, {"aop": frame["geometry"]["aop"]}, "MW Rose")
    assert again.hc_mm is None and again.reasons["ga_weeks"] == ECHO
    # The person draws an ellipse themselves: measured as drawn, theirs.
    drawn = dict(frame["geometry"]["head_ellipse"], semi_axes=[150.0, 120.0])
    own = correct(records, exam.id, 0, {"head_ellipse": drawn}, "MW Rose")
    assert own.geometry["head_ellipse"] == drawn


def test_the_viewer_marks_a_withheld_ellipse_and_an_edit_of_other_parts_never_adopts_it(records, tmp_path):
    from workstation.cine_review import FrameMeasurementState
    from workstation.records.calibration import load_exam

    exam, frame = analysed_exam(records, tmp_path, None)
    state = FrameMeasurementState(0, None, 0.3, frame)
    assert state.current_geometry()["head_ellipse"]  # the AI's outline, for a person to move if it is a head
    assert state.shows_withheld_ellipse
    cine = load_exam(records, exam.id)
    # The window's calipers send the whole geometry, the AI's untouched ellipse with it: never measured as theirs.
    geometry = dict(frame["geometry"], **moved_hsd(frame))
    state.correct(geometry, cine.calibration, cine.frame_shape, "Dr Gui")
    cine.close()
    assert state.corrected["hc_px"] is None and state.corrected["reasons"]["ga_weeks"] == ECHO
    assert not state.corrected["geometry"].get("head_ellipse") and not state.shows_withheld_ellipse
