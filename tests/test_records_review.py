"""Two people reviewing one exam at once: a review made on a screen that no longer shows the exam's value on record
is refused (``ReviewConflict``), nothing written; and a headless correction of part of another frame's geometry."""
from __future__ import annotations

import pytest

from records_support import demo_exam_file, save_analysis_with_uncertainties, synthetic_measurement
from workstation.records import (AI, Records, RecordsError, ReviewConflict, confirm, correct, import_scan,
                                 labor_timeline, save_viewer_review)
from workstation.records.review import BASED_ON, changes_since, check_unchanged


@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


@pytest.fixture
def exam(records, tmp_path):
    """An exam analysed on its four frames (uncertainties 0.46, 0.2, 0.3, 0.74), the AI's row on frame 0."""
    exam = import_scan(records, demo_exam_file(tmp_path, seed=0)).exam
    save_analysis_with_uncertainties(records, exam.id, [0.46, 0.2, 0.3, 0.74], chosen=0)
    return exam


class Viewer:
    """What the window sends ``save_viewer_review`` (``review_record``: a frame's ``FrameMeasurementState`` plus the
    exam, time, calibration, model and who acts), and the measurement its screen was based on: the exam's current
    one when it opened the exam, then the one after each of its own saves, as the window keeps it."""

    def __init__(self, records: Records, exam_id: int, user: str):
        from workstation.cine_review import FrameMeasurementState
        from workstation.records.calibration import load_exam

        self.records, self.exam_id, self.user = records, exam_id, user
        cine = load_exam(records, exam_id)
        self.calibration, self.frame_shape, self.times = cine.calibration, cine.frame_shape, list(cine.times_s)
        cine.close()
        analysis = records.latest_analysis(exam_id)
        self.states = {f["index"]: FrameMeasurementState(f["index"], f["frame_class"], f["uncertainty"], f)
                       for f in records.frame_results(analysis.id)}
        self.basis = self.current_id()
        self.model = {"name": analysis.model_name, "version": analysis.model_version}

    def current_id(self) -> int | None:
        current = self.records.current_measurement(self.exam_id)
        return None if current is None else current.id

    def record(self, frame: int, change: str, **extra) -> dict:
        record = self.states[frame].to_dict()
        record.update(change=change, exam_id=self.exam_id, time_s=self.times[frame], model=self.model,
                      calibration_source=self.calibration.source, acting_user=self.user, **extra)
        record[BASED_ON] = self.basis
        return record

    def save(self, frame: int, change: str, **extra):
        before = self.current_id()
        row = save_viewer_review(self.records, self.record(frame, change, **extra))
        self.basis = self.current_id()  # what this screen now shows is on record
        return before, row

    def accept(self, frame: int):
        self.states[frame].accept(self.user)
        return self.save(frame, "accept")

    def move_hsd_end(self, frame: int, dy: float = 12.0):
        state = self.states[frame]
        geometry = {**state.current_geometry()}
        hsd = geometry["hsd"]
        geometry["hsd"] = dict(hsd, end=[hsd["end"][0], hsd["end"][1] + dy])
        state.correct(geometry, self.calibration, self.frame_shape, self.user)
        return self.save(frame, "correction")

    def undo(self, frame: int, snapshot: dict, restore_id: int | None):
        self.states[frame].restore(snapshot, self.calibration, self.frame_shape)
        return self.save(frame, "undo", restore_measurement_id=restore_id)


def _dr_a_corrects_the_aop(records, exam_id: int, frame: int = 0):
    aop = synthetic_measurement(frame)["geometry"]["aop"]
    tangent = [aop["tangent_point"][0] + 6.0, aop["tangent_point"][1] + 4.0]
    return correct(records, exam_id, frame, {"aop": dict(aop, tangent_point=tangent)}, "Dr A")


def test_a_stale_accept_from_a_second_window_is_refused_and_overwrites_nothing(records, exam):
    """Midwife B's window shows the AI's AoP; meanwhile Dr A corrects it headless; B's Accept (of the AI's value she
    still sees) is refused, saying who changed it and what it is now; Dr A's correction stays current."""
    window = Viewer(records, exam.id, "Midwife B")
    ai = records.current_measurement(exam.id)
    assert window.basis == ai.id
    dr_a = _dr_a_corrects_the_aop(records, exam.id)
    window.states[0].accept("Midwife B")
    with pytest.raises(ReviewConflict) as refused:
        save_viewer_review(records, window.record(0, "accept"))
    conflict = refused.value
    assert isinstance(conflict, RecordsError)
    message = str(conflict)
    assert "\n" not in message and message.startswith(f"Not saved: exam {exam.id} was changed since it was opened")
    assert f"correction by Dr A at {dr_a.created_at} of frame 0 (AoP {dr_a.aop_deg:.1f} deg" in message
    assert "that is the value on record now" in message and "Nothing was saved or overwritten" in message
    assert conflict.exam_id == exam.id and conflict.frame_index == 0 and conflict.based_on_measurement_id == ai.id
    assert [m.id for m in conflict.changes] == [dr_a.id] and conflict.latest_change.id == dr_a.id
    assert conflict.current.id == dr_a.id
    assert conflict.recorded["measurement_id"] == dr_a.id and conflict.recorded["corrected_by"] == "Dr A"
    assert [m.id for m in records.measurements(exam.id)] == [ai.id, dr_a.id]  # nothing written
    assert records.current_measurement(exam.id).id == dr_a.id
    point = labor_timeline(records, exam.labor_id)["points"][0]
    assert point["by"] == "Dr A" and point["aop_deg"] == dr_a.aop_deg


def test_a_stale_correction_from_a_second_window_is_refused(records, exam):
    window = Viewer(records, exam.id, "Midwife B")
    dr_a = _dr_a_corrects_the_aop(records, exam.id, frame=2)  # on another frame than the one B corrects
    with pytest.raises(ReviewConflict, match=f"correction by Dr A at .* of frame 2 .*AoP {dr_a.aop_deg:.1f} deg"):
        window.move_hsd_end(0)
    assert records.current_measurement(exam.id).id == dr_a.id and len(records.measurements(exam.id)) == 2


def test_a_stale_undo_or_redo_is_refused_and_a_windows_own_steps_are_not(records, exam):
    """B's own correction, undo and redo go through (each save moves what her screen is based on); after Dr A's
    correction lands, her undo (back to the AI) and her redo are refused, Dr A's value kept."""
    window = Viewer(records, exam.id, "Midwife B")
    ai_id = window.basis
    before = window.states[0].snapshot()
    _, mine = window.move_hsd_end(0)
    after = window.states[0].snapshot()
    assert mine.kind == "correction" and window.basis == mine.id
    _, withdrawal = window.undo(0, before, ai_id)  # her own undo: no one else wrote since
    assert withdrawal.kind == AI and withdrawal.supersedes_id == mine.id
    _, redone = window.undo(0, after, mine.id)  # a redo restores her correction
    assert redone.kind == "correction" and redone.by == "Midwife B"
    dr_a = _dr_a_corrects_the_aop(records, exam.id)
    rows = len(records.measurements(exam.id))
    with pytest.raises(ReviewConflict, match="correction by Dr A") as refused:
        window.undo(0, before, withdrawal.id)
    assert refused.value.current.id == dr_a.id
    with pytest.raises(ReviewConflict, match="correction by Dr A"):
        window.undo(0, after, redone.id)
    assert len(records.measurements(exam.id)) == rows and records.current_measurement(exam.id).id == dr_a.id


def test_a_withdrawal_by_someone_else_is_a_change_and_a_new_analysis_is_not(records, exam):
    """Dr A withdraws her own correction in her window (an AI row superseding it): B's screen, opened while it stood,
    is stale. A new analysis (an AI row that never displaces a person's value) does not make a screen stale."""
    dr_a = _dr_a_corrects_the_aop(records, exam.id)
    window = Viewer(records, exam.id, "Midwife B")  # opened while Dr A's correction stands
    other = Viewer(records, exam.id, "Dr A")
    other.states[0].reset_to_ai()
    _, withdrawn = other.save(0, "reset")
    assert withdrawn.kind == AI and withdrawn.supersedes_id == dr_a.id
    window.states[0].accept("Midwife B")
    with pytest.raises(ReviewConflict, match="correction by Dr A withdrawn in the viewer by Dr A") as refused:
        save_viewer_review(records, window.record(0, "accept"))
    assert "on record now" in str(refused.value) and refused.value.recorded is None  # the AI's value is current

    fresh = Viewer(records, exam.id, "Midwife B")
    save_analysis_with_uncertainties(records, exam.id, [0.4, 0.2, 0.3, 0.7], chosen=1)  # a re-analysis meanwhile
    assert changes_since(records, exam.id, fresh.basis) == []
    _, accepted = fresh.accept(0)
    assert accepted.kind == "confirmation" and accepted.by == "Midwife B"


def test_without_a_basis_nothing_is_checked_and_a_wrong_basis_is_an_error(records, exam):
    window = Viewer(records, exam.id, "Midwife B")
    _dr_a_corrects_the_aop(records, exam.id)
    window.states[0].accept("Midwife B")
    record = window.record(0, "accept")
    with pytest.raises(RecordsError, match="measurement 999 is not of exam"):
        save_viewer_review(records, dict(record, **{BASED_ON: 999}))
    del record[BASED_ON]
    assert save_viewer_review(records, record).kind == "confirmation"  # a caller that does not track it


def test_headless_correct_and_confirm_refuse_a_stale_basis(records, exam):
    ai = records.current_measurement(exam.id)
    dr_a = _dr_a_corrects_the_aop(records, exam.id)
    with pytest.raises(ReviewConflict, match="correction by Dr A"):
        confirm(records, exam.id, "Midwife B", based_on_measurement_id=ai.id)
    with pytest.raises(ReviewConflict, match="correction by Dr A"):
        correct(records, exam.id, 1, synthetic_measurement(1)["geometry"], "Midwife B", based_on_measurement_id=ai.id)
    assert records.current_measurement(exam.id).id == dr_a.id
    assert confirm(records, exam.id, "Midwife B", based_on_measurement_id=dr_a.id).supersedes_id == dr_a.id


def test_a_value_written_while_a_correction_is_measured_is_not_superseded_unseen(records, exam, monkeypatch):
    """``correct`` reads the exam's value, then the scan (slow); a correction saved by someone else in between makes
    it refuse rather than supersede a value it never read."""
    import workstation.records.calibration as calibration

    load_exam = calibration.load_exam
    rival = []

    def slow_load(records_, exam_, *args, **kwargs):
        if not rival:
            rival.append(None)  # Dr A's own correction reads the scan too
            rival[0] = _dr_a_corrects_the_aop(records, exam.id)
        return load_exam(records_, exam_, *args, **kwargs)

    monkeypatch.setattr(calibration, "load_exam", slow_load)
    with pytest.raises(ReviewConflict, match="correction by Dr A"):
        correct(records, exam.id, 1, synthetic_measurement(1)["geometry"], "Dr B")
    assert records.current_measurement(exam.id).id == rival[0].id


def test_a_partial_correction_on_another_frame_keeps_that_frames_ai_geometry(records, exam):
    """``workstation correct --frame 2 --geometry '{"hsd": ...}'`` while the AI's value is on frame 0: the AoP is
    frame 2's AI AoP (the analysis' geometry of frame 2), not dropped; the timeline shows it beside frame 2's AI
    values."""
    frame2 = synthetic_measurement(2)["geometry"]
    hsd = dict(frame2["hsd"], end=[frame2["hsd"]["end"][0], frame2["hsd"]["end"][1] + 10.0])
    row = correct(records, exam.id, 2, {"hsd": hsd}, "Dr B")
    assert row.aop_deg == pytest.approx(synthetic_measurement(2)["aop_deg"], abs=1e-3)
    assert row.geometry["aop"] == frame2["aop"] and row.geometry["hsd"] == hsd and row.uncertainty == 0.3
    point = labor_timeline(records, exam.labor_id)["points"][0]
    assert point["aop_deg"] == row.aop_deg and point["frame_index"] == 2
    assert (point["ai_frame_index"], point["ai_uncertainty"]) == (2, 0.3)
    assert point["ai_aop_deg"] == pytest.approx(synthetic_measurement(2)["aop_deg"], abs=1e-3)
    assert point["ai_on_record"]["frame_index"] == 0 and point["ai_on_record"]["uncertainty"] == 0.46
    # A person's correction on that frame is what a later partial correction there builds on.
    again = correct(records, exam.id, 2, {"aop": synthetic_measurement(3)["geometry"]["aop"]}, "Dr C")
    assert again.geometry["hsd"]["end"] == [hsd["end"][0], hsd["end"][1]]


def test_a_refusal_writes_the_values_as_the_reports_and_the_cli_write_them(records, exam):
    """The values in a refusal's line are written by the one formatter of the reports and the CLI
    (``describe_transperineal``): an HSD without mm in pixels with why there is none, an AoP the row lacks with its
    reason, the HC where the row has one (before: its own short form, 'HSD 31.4 px', the AoP left out)."""
    from workstation.reports.values import describe_transperineal

    ai = records.current_measurement(exam.id)
    no_mm = "no calibration: pixels only"
    dr_a = records.add_measurement(exam.id, "correction", "Dr A", {"aop_deg": 120.04, "hsd_px": 31.4},
                                   frame_index=0, reasons={"hsd_mm": no_mm})
    with pytest.raises(ReviewConflict) as refused:
        check_unchanged(records, exam.id, ai.id, 0)
    assert f"of frame 0 (AoP 120.0 deg, HSD 31 px (no mm: {no_mm}))" in str(refused.value)
    assert describe_transperineal(dr_a) == f"AoP 120.0 deg, HSD 31 px (no mm: {no_mm})"
    plane = "not a transperineal plane"
    dr_b = records.add_measurement(exam.id, "correction", "Dr B", {"hc_mm": 301.26}, frame_index=0,
                                   reasons={"aop_deg": plane, "hsd_px": plane})
    with pytest.raises(ReviewConflict) as refused:
        check_unchanged(records, exam.id, dr_a.id, 0)
    assert f"of frame 0 ({describe_transperineal(dr_b)}, HC 301.3 mm)" in str(refused.value)
    assert describe_transperineal(dr_b) == f"no AoP or HSD ({plane})"
