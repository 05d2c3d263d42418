"""The window with its patient records and labour timeline (offscreen, real SQLite records, real mouse drags).

The ward flow end to end: three exams of one labour in the records; the first opened from the records panel at
its measured frame; a caliper dragged; the correction kept in the records at once (who, values, the AI row it
supersedes); the timeline turning that exam into a person's point; undo withdrawing it (the AI value current
again); redo and Accept; and the labour PDF naming who confirmed what. A screenshot of the whole window goes
to ``out/screenshots/window_records.png``.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from PySide6 import QtCore  # noqa: E402

from gui_support import OracleModel, make_window, mouse_drag, no_leftover_jobs  # noqa: E402,F401
from records_support import DEMO_FRAMES, three_exam_labor  # noqa: E402
from workstation.gui.panel import plain_text  # noqa: E402
from workstation.records import AI, CONFIRMATION, CORRECTION, Records, save_viewer_review  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_leftover_jobs")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"


def _open_and_wait(window, link, qtbot, exam_id) -> None:
    """Open the exam from the Patients panel, as a double-click does, and wait for its analysis to finish."""
    with qtbot.waitSignal(window.analysisFinished, timeout=60_000):
        link.panel.open_exam(exam_id)


def _open_and_accept(window, link, qtbot, records, exam_id):
    """Open the exam, accept the AI's values on screen, and return the confirmation the records now hold."""
    _open_and_wait(window, link, qtbot, exam_id)
    window.accept_frame()
    confirmed = records.current_measurement(exam_id)
    assert confirmed.kind == CONFIRMATION
    return confirmed


@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


@pytest.fixture
def ward(make_window, records, tmp_path, qtbot):
    """A window with the records attached, three exams of one labour, the labour selected."""
    from workstation.gui.records_link import attach_records

    exam_ids = three_exam_labor(records, tmp_path / "usb")
    oracle = OracleModel(n_frames=DEMO_FRAMES, seed=0)  # knows the first exam's frames (seed 0)
    window = make_window(model_provider=lambda: oracle, size=(1500, 950))
    link = attach_records(window, records, analyze=False)
    labor_id = records.exam(exam_ids[0]).labor_id
    assert link.panel.select_labor(labor_id)
    qtbot.waitUntil(lambda: link.timeline.labor_id == labor_id, timeout=5000)
    return window, link, exam_ids, labor_id


def test_a_correction_in_the_viewer_is_kept_in_the_records_and_drawn_as_a_persons_point(ward, records, qtbot):
    window, link, exam_ids, labor_id = ward
    exam_id = exam_ids[0]
    assert len(link.timeline.points("ai")) == 3 and not link.timeline.points("confirmed")
    ai_row = records.current_measurement(exam_id)
    assert ai_row.kind == AI and ai_row.frame_index == 0

    # Opening from the records panel opens the stored file at the measured frame, with the exam's id.
    _open_and_wait(window, link, qtbot, exam_id)
    assert window.exam_id == exam_id and window.current_frame == 0
    assert window.path == records.file_path(records.exam(exam_id))
    assert link.timeline.highlighted_exam_id == exam_id

    saved = []
    link.reviewSaved.connect(saved.append)
    start = window.handle_viewport_pos("tangent_point")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(-30, 45))
    state = window.current_state()
    assert state.is_corrected
    row = records.current_measurement(exam_id)
    assert saved and saved[-1].id == row.id
    assert row.kind == CORRECTION and row.by == "Dr Test" and row.supersedes_id == ai_row.id
    assert row.aop_deg == pytest.approx(state.corrected["aop_deg"]) and row.frame_index == 0
    assert row.calibration_source == "dicom_regions" and row.hsd_mm == pytest.approx(state.corrected["hsd_mm"])
    assert records.latest_ai_measurement(exam_id).id == ai_row.id  # the AI value is kept beside it
    persons = link.timeline.points("confirmed")
    assert [p["exam_id"] for p in persons] == [exam_id]
    assert persons[0]["aop_deg"] == pytest.approx(row.aop_deg)
    assert len(link.timeline.points("ai")) == 2

    # Undo withdraws the correction: an AI row superseding it, and the AI value is current again.
    window.undo_stack.undo()
    current = records.current_measurement(exam_id)
    assert current.kind == AI and current.supersedes_id == row.id
    assert current.note == "correction by Dr Test withdrawn in the viewer by Dr Test (undo); the AI value stands"
    assert current.aop_deg == pytest.approx(ai_row.aop_deg, abs=0.2)
    assert not link.timeline.points("confirmed")

    # Redo brings the correction back (a new row), Accept confirms it under the same name.
    window.undo_stack.redo()
    assert records.current_measurement(exam_id).kind == CORRECTION
    window.accept_frame()
    confirmed = records.current_measurement(exam_id)
    assert confirmed.kind == CONFIRMATION and confirmed.by == "Dr Test"
    assert confirmed.aop_deg == pytest.approx(row.aop_deg)
    kinds = [m.kind for m in records.measurements(exam_id)]
    assert kinds == [AI, CORRECTION, AI, CORRECTION, CONFIRMATION]  # nothing overwritten
    # The records panel shows the exam as a person's value.
    assert link.panel.exam_table.findItems("confirmed by Dr Test", QtCore.Qt.MatchFlag.MatchContains)

    window.go_to_frame(0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "window_records.png"))


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_the_labour_report_names_who_confirmed_the_corrected_exam(ward, records, qtbot, tmp_path):
    window, link, exam_ids, labor_id = ward
    with qtbot.waitSignal(window.analysisFinished, timeout=60_000):
        link.open_exam(exam_ids[0], 0)
    start = window.handle_viewport_pos("tangent_point")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(-30, 45))
    assert window.current_state().is_corrected  # the drag made a correction, which the acceptance confirms
    ai_value = window.current_state().ai["aop_deg"]
    window.accept_frame()
    value = records.current_measurement(exam_ids[0]).aop_deg
    assert value != pytest.approx(ai_value, abs=0.05)
    out = tmp_path / "labour.pdf"
    with qtbot.waitSignal(link.panel.reportFinished, timeout=60_000) as finished:
        link.panel.write_report("labor", labor_id, out)
    assert finished.args == [str(out), ""]
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "confirmation by Dr Test" in text and f"{value:.1f}" in text


def test_a_file_opened_outside_the_records_is_not_saved_to_them(make_window, records, qtbot, tmp_path):
    from gui_support import open_and_analyse, write_demo
    from workstation.gui.records_link import attach_records

    window = make_window()
    link = attach_records(window, records, analyze=False)
    open_and_analyse(qtbot, window, write_demo(tmp_path / "loose"))
    saved = []
    link.reviewSaved.connect(saved.append)
    window.accept_frame()
    assert window.current_state().confirmed and window.exam_id is None and not saved
    assert records.patients() == []


def test_a_review_of_an_unknown_exam_is_refused_with_a_clear_message(records):
    from workstation.records import RecordsError

    with pytest.raises(RecordsError, match="no exam with id 99"):
        save_viewer_review(records, {"exam_id": 99, "frame_index": 0, "confirmed": True, "confirmed_by": "A"})


def test_an_opened_exam_whose_file_is_gone_says_so(ward, records):
    window, link, exam_ids, _ = ward
    path = records.file_path(records.exam(exam_ids[1]))
    path.unlink()
    link.open_exam(exam_ids[1], 0)
    banner = window.error_banner.text
    assert "missing" in banner and window.cine is None
    # What to do, with commands that exist: put the original back where it belongs; the history is kept.
    assert records.exam(exam_ids[1]).original_path in banner and str(path) in banner
    assert "records check" not in banner and f"`workstation history --exam {exam_ids[1]}`" in banner


def test_viewer_reviews_are_appended_once_and_a_reset_without_a_persons_value_adds_nothing(records, tmp_path):
    exam_id = three_exam_labor(records, tmp_path / "usb")[0]
    ai = records.current_measurement(exam_id)
    values = {key: getattr(ai, key) for key in ("aop_deg", "hsd_px", "hsd_mm")}
    review = {"exam_id": exam_id, "frame_index": 0, "ai": values, "ai_geometry": ai.geometry, "corrected": None,
              "confirmed": False, "model": {"name": "tiny", "version": "0.0.1"}, "time_s": 0.0}
    assert save_viewer_review(records, review) is None  # back to the AI value when it already is current
    confirmed = save_viewer_review(records, {**review, "confirmed": True, "confirmed_by": "Midwife Jones"})
    assert confirmed.kind == CONFIRMATION and confirmed.supersedes_id == ai.id
    assert save_viewer_review(records, {**review, "confirmed": True, "confirmed_by": "Midwife Jones"}) is None
    # A new analysis does not displace the person's value; only a withdrawal does.
    records.add_measurement(exam_id, AI, "tiny 0.0.1", values, frame_index=0)
    assert records.current_measurement(exam_id).id == confirmed.id
    withdrawn = save_viewer_review(records, review)
    assert withdrawn.kind == AI and records.current_measurement(exam_id).id == withdrawn.id
    with pytest.raises(Exception, match="who made it"):
        save_viewer_review(records, {**review, "confirmed": True, "confirmed_by": ""})


def test_an_undo_by_one_person_of_a_review_says_who_acted(records, tmp_path):
    exam_id = three_exam_labor(records, tmp_path / "usb")[0]
    ai = records.current_measurement(exam_id)
    values = {key: getattr(ai, key) for key in ("aop_deg", "hsd_px", "hsd_mm")}
    corrected = {**values, "aop_deg": values["aop_deg"] + 3.0}
    review = {"exam_id": exam_id, "frame_index": 0, "ai": values, "ai_geometry": ai.geometry, "confirmed": False,
              "corrected": corrected, "corrected_geometry": ai.geometry, "corrected_by": "Alice",
              "model": {"name": "tiny", "version": "0.0.1"}, "time_s": 0.0}
    by_alice = save_viewer_review(records, {**review, "acting_user": "Alice", "change": "correction"})
    assert by_alice.kind == CORRECTION and by_alice.by == "Alice" and not by_alice.note
    by_bob = save_viewer_review(records, {**review, "confirmed": True, "confirmed_by": "Bob", "acting_user": "Bob",
                                          "change": "accept"})
    assert by_bob.kind == CONFIRMATION and by_bob.by == "Bob" and not by_bob.note
    # Bob undoes his acceptance: Alice's values stand again, under her name, and the row says Bob did it.
    undone = save_viewer_review(records, {**review, "acting_user": "Bob", "change": "undo"})
    assert (undone.kind, undone.by, undone.aop_deg) == (CORRECTION, "Alice", corrected["aop_deg"])
    assert undone.note == "correction by Alice restored in the viewer by Bob (undo); confirmation by Bob withdrawn"
    # Bob resets to the AI: the AI row names the model, its note names Bob and what he withdrew.
    reset = save_viewer_review(records, {**review, "corrected": None, "acting_user": "Bob", "change": "reset"})
    assert reset.kind == AI and reset.by == "tiny 0.0.1"
    assert reset.note == ("correction by Alice withdrawn in the viewer by Bob (Reset to AI or undo); "
                          "the AI value stands")


class HashedOracle(OracleModel):
    """The oracle with a model identity (name, version, sha256) as a real model's manifest gives."""

    def __init__(self, sha256: str):
        super().__init__(n_frames=DEMO_FRAMES, seed=0)
        self.sha256 = sha256

    def describe(self) -> dict:
        return {**super().describe(), "sha256": self.sha256, "version": self.sha256[:4]}


def test_an_exam_analysed_in_the_viewer_by_another_model_keeps_that_analysis(make_window, records, qtbot,
                                                                             tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    from workstation.gui.records_link import attach_records

    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        lambda *a, **k: QtWidgets.QMessageBox.StandardButton.Yes)  # "drop the window's reviews?"

    exam_id = three_exam_labor(records, tmp_path / "usb")[0]
    models = {"now": HashedOracle("a" * 64)}
    window = make_window(model_provider=lambda: models["now"])
    link = attach_records(window, records, analyze=False)
    saved = []
    link.analysisSaved.connect(saved.append)
    with qtbot.waitSignal(window.analysisFinished, timeout=60_000):
        link.open_exam(exam_id, 0)
    assert len(saved) == 1 and saved[0].model_sha256 == "a" * 64 and saved[0].n_frames == DEMO_FRAMES
    frames = records.frame_results(saved[0].id)
    assert len(frames) == DEMO_FRAMES and frames[0]["aop_deg"] == pytest.approx(
        window.analysis.states[0].ai["aop_deg"])
    ai_row = records.current_measurement(exam_id)
    assert ai_row.kind == AI and ai_row.analysis_id == saved[0].id and ai_row.frame_index == saved[0].chosen_frame

    window.accept_frame()  # a person's value, then the same model again: nothing new
    with qtbot.waitSignal(window.analysisFinished, timeout=60_000):
        window.reanalyse()
    assert len(saved) == 1
    models["now"] = HashedOracle("b" * 64)  # another model: its analysis is kept, the person's value stays current
    with qtbot.waitSignal(window.analysisFinished, timeout=60_000):
        window.reanalyse()
    assert [a.model_sha256[0] for a in records.analyses(exam_id)] == ["a", "b"]
    assert records.current_measurement(exam_id).kind == CONFIRMATION


def _headless_correction_by_unal(records, exam_id):
    """Dr Unal moves the tangent point of the exam's AI measurement headless (frame 0), as `workstation correct`."""
    from workstation.records.review import correct

    geometry = records.current_measurement(exam_id).geometry
    x, y = geometry["aop"]["tangent_point"]
    return correct(records, exam_id, 0, {"aop": {**geometry["aop"], "tangent_point": [x - 20, y + 20]}}, "Dr Unal")


def test_undoing_a_viewer_edit_over_an_earlier_persons_correction_keeps_that_correction_current(ward, records,
                                                                                                 qtbot):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    ai_row = records.current_measurement(exam_id)
    unal = _headless_correction_by_unal(records, exam_id)
    assert unal.aop_deg != pytest.approx(ai_row.aop_deg, abs=1.0)
    _open_and_wait(window, link, qtbot, exam_id)
    start = window.handle_viewport_pos("tangent_point")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(-30, 45))
    by_test = records.current_measurement(exam_id)
    assert by_test.kind == CORRECTION and by_test.by == "Dr Test" and by_test.supersedes_id == unal.id

    window.undo_stack.undo()
    # Back to the state before the drag: Dr Unal's correction is current, under his name (a new row; the
    # history keeps every row).
    current = records.current_measurement(exam_id)
    assert (current.kind, current.by) == (CORRECTION, "Dr Unal")
    assert current.aop_deg == pytest.approx(unal.aop_deg, abs=0.05)
    assert current.supersedes_id == by_test.id and "Dr Test" in current.note
    state = window.current_state()  # and the viewer shows what the records hold
    assert state.corrected_by == "Dr Unal" and state.current()["aop_deg"] == pytest.approx(unal.aop_deg, abs=0.05)
    assert [m.id for m in records.measurements(exam_id)][:3] == [ai_row.id, unal.id, by_test.id]


def test_an_undo_withdrawing_a_review_brings_back_the_persons_value_it_superseded(records, tmp_path):
    """The viewer undoes an edit it made over a person's value it did not show (saved meanwhile, headless): the
    records go back to that person's value, not to the AI's."""
    exam_id = three_exam_labor(records, tmp_path / "usb")[0]
    ai = records.current_measurement(exam_id)
    unal = _headless_correction_by_unal(records, exam_id)
    values = {key: getattr(ai, key) for key in ("aop_deg", "hsd_px", "hsd_mm")}
    review = {"exam_id": exam_id, "frame_index": 0, "ai": values, "ai_geometry": ai.geometry, "confirmed": False,
              "corrected": {**values, "aop_deg": values["aop_deg"] + 3.0}, "corrected_geometry": ai.geometry,
              "corrected_by": "Bob", "model": {"name": "tiny", "version": "0.0.1"}, "time_s": 0.0}
    by_bob = save_viewer_review(records, {**review, "acting_user": "Bob", "change": "correction"})
    assert by_bob.supersedes_id == unal.id
    # The viewer's undo names what was current before Bob's edit (the window's command kept it): Dr Unal's row.
    undone = save_viewer_review(records, {**review, "corrected": None, "acting_user": "Bob", "change": "undo",
                                          "restore_measurement_id": unal.id})
    assert (undone.kind, undone.by, undone.aop_deg) == (CORRECTION, "Dr Unal", unal.aop_deg)
    assert undone.geometry == unal.geometry and undone.supersedes_id == by_bob.id
    assert undone.note == ("correction by Dr Unal restored in the viewer by Bob (undo); "
                           "correction by Bob withdrawn")
    assert records.current_measurement(exam_id).id == undone.id
    # Undone again (the same row named): nothing changes; a restored row is never followed back to Bob's.
    assert save_viewer_review(records, {**review, "corrected": None, "acting_user": "Bob", "change": "undo",
                                        "restore_measurement_id": unal.id}) is None
    # Redone: Bob's correction is current again, under his name.
    redone = save_viewer_review(records, {**review, "acting_user": "Bob", "change": "correction",
                                          "restore_measurement_id": by_bob.id})
    assert (redone.kind, redone.by, redone.aop_deg) == (CORRECTION, "Bob", by_bob.aop_deg)
    assert redone.supersedes_id == undone.id and "(redo)" in redone.note
    # Undo naming the AI's row: the person's value now current is withdrawn, the AI's stands.
    withdrawn = save_viewer_review(records, {**review, "corrected": None, "acting_user": "Bob", "change": "undo",
                                             "restore_measurement_id": ai.id})
    assert withdrawn.kind == AI and withdrawn.supersedes_id == redone.id
    assert records.current_measurement(exam_id).id == withdrawn.id
    save_viewer_review(records, {**review, "acting_user": "Bob", "change": "correction"})
    # Reset to AI is a person's choice of the AI value on that frame: it stands.
    reset = save_viewer_review(records, {**review, "corrected": None, "acting_user": "Bob", "change": "reset"})
    assert reset.kind == AI and records.current_measurement(exam_id).id == reset.id


def test_a_reopened_exam_shows_the_persons_value_on_record_with_who_and_when(ward, records, qtbot):
    from workstation.gui.panel import plain_text
    from workstation.records import confirm

    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    unal = _headless_correction_by_unal(records, exam_id)
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    assert window.current_frame == 0 and state.is_corrected and state.corrected_by == "Dr Unal"
    assert state.corrected_at == unal.created_at and not state.confirmed
    assert state.current()["aop_deg"] == pytest.approx(unal.aop_deg, abs=0.05)
    assert state.ai["aop_deg"] != pytest.approx(unal.aop_deg, abs=1.0)  # the AI value stays beside it
    assert window.panel.value_text("corrected", "AoP") == f"{unal.aop_deg:.1f}°"
    provenance = plain_text(window.panel.provenance_label)
    assert "Corrected by Dr Unal" in provenance and "AI values, not corrected" not in provenance
    assert window.calipers.geometry()["aop"]["tangent_point"] == pytest.approx(unal.geometry["aop"]["tangent_point"])
    assert not window.error_banner.text
    rows = len(records.measurements(exam_id))

    # Confirmed headless by a midwife: reopened, the correction and the acceptance are both shown, each by name.
    midwife = confirm(records, exam_id, "Midwife Jones")
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    assert (state.corrected_by, state.confirmed_by, state.confirmed_at) == ("Dr Unal", "Midwife Jones",
                                                                            midwife.created_at)
    assert "Accepted by Midwife Jones" in plain_text(window.panel.provenance_label)
    assert len(records.measurements(exam_id)) == rows + 1  # opening saves nothing


def test_a_confirmation_on_record_of_values_this_analysis_does_not_give_is_named_not_shown_as_holding(ward, records,
                                                                                                     qtbot):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    ai = records.current_measurement(exam_id)
    # Confirmed AI values of another analysis (another model gave AoP 20 degrees more on that frame).
    records.add_measurement(exam_id, CONFIRMATION, "Midwife Jones", {"aop_deg": ai.aop_deg + 20.0},
                            supersedes_id=ai.id, frame_index=0, geometry=ai.geometry,
                            calibration_source="dicom_regions")
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    assert not state.confirmed and not state.is_corrected
    banner = window.error_banner.text
    assert "confirmation by Midwife Jones" in banner and f"AoP {ai.aop_deg + 20.0:.1f}" in banner
    assert "not shown as accepted" in banner


def _accept_a_moved_hsd_end(ward, qtbot):
    """Open the first exam, drag the HSD end and Accept: a person's accepted correction on frame 0."""
    window, link, exam_ids, _ = ward
    _open_and_wait(window, link, qtbot, exam_ids[0])
    start = window.handle_viewport_pos("hsd_end")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(10, 25))
    window.accept_frame()
    return window, exam_ids[0]


def test_an_undo_after_a_manual_calibration_saves_mm_of_that_calibration(ward, records, qtbot):
    window, exam_id = _accept_a_moved_hsd_end(ward, qtbot)
    window.set_calibration(window.file_calibration.with_manual(0.5, detail="test manual"))
    window.undo_stack.undo()  # the acceptance: the correction stands, unaccepted
    row = records.current_measurement(exam_id)
    assert (row.kind, row.by, row.calibration_source) == (CORRECTION, "Dr Test", "manual")
    assert row.hsd_mm == pytest.approx(0.5 * row.hsd_px, rel=1e-3)
    for m in records.measurements(exam_id):  # no row pairs mm of one scale with another's name
        if m.calibration_source == "manual" and m.hsd_mm is not None:
            assert m.hsd_mm == pytest.approx(0.5 * m.hsd_px, rel=1e-3)


def test_a_manual_calibration_that_withdraws_an_acceptance_on_screen_withdraws_it_in_the_records(ward, records,
                                                                                                 qtbot):
    window, exam_id = _accept_a_moved_hsd_end(ward, qtbot)
    confirmed = records.current_measurement(exam_id)
    assert confirmed.kind == CONFIRMATION and confirmed.calibration_source == "dicom_regions"

    window.set_calibration(window.file_calibration.with_manual(0.5, detail="test manual"))
    state = window.current_state()
    # The AoP's acceptance stays (an isotropic scale cannot change it), the HSD is Dr Test's correction in the manual
    # mm, not accepted: on screen as in the records (before: the viewer withdrew it all, AoP included).
    assert state.confirmed and state.whose() == {"aop": "confirmed", "hsd": "corrected", "head": "confirmed"}
    row = _screen_agrees_with_records(window, records, exam_id)
    assert (row.kind, row.by, row.calibration_source) == (CONFIRMATION, "Dr Test", "manual")
    assert row.supersedes_id == confirmed.id and "AoP stays confirmed" in row.note
    assert (row.sources["hsd"]["kind"], row.sources["hsd"]["by"]) == (CORRECTION, "Dr Test")
    assert row.hsd_px == pytest.approx(confirmed.hsd_px)
    assert row.hsd_mm == pytest.approx(state.corrected["hsd_mm"]) == pytest.approx(0.5 * row.hsd_px, rel=1e-3)
    # The same calibration again changes nothing; the file's back brings its mm back, saved as such.
    rows = len(records.measurements(exam_id))
    window.set_calibration(window.analysis.calibration)
    assert len(records.measurements(exam_id)) == rows
    window.set_calibration(window.file_calibration)
    row = _screen_agrees_with_records(window, records, exam_id)
    assert (row.kind, row.calibration_source) == (CONFIRMATION, "dicom_regions")
    assert row.sources["hsd"]["kind"] == CORRECTION
    assert row.hsd_mm == pytest.approx(confirmed.hsd_mm)


def test_a_manual_calibration_changing_accepted_ai_values_leaves_the_ai_value_standing_in_the_records(ward, records,
                                                                                                       qtbot):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    confirmed = _open_and_accept(window, link, qtbot, records, exam_id)
    window.set_calibration(window.file_calibration.with_manual(0.5, detail="test manual"))
    assert window.current_state().whose()["hsd"] == "AI"  # the AoP's acceptance stays, as in the records
    row = _screen_agrees_with_records(window, records, exam_id)
    assert (row.kind, row.supersedes_id) == (CONFIRMATION, confirmed.id) and "AoP stays confirmed" in row.note
    assert row.sources["hsd"]["kind"] == AI and row.calibration_source == "manual"
    assert row.hsd_mm == pytest.approx(0.5 * row.hsd_px, rel=1e-3)


def _by_id(records, exam_id, measurement_id):
    return next(m for m in records.measurements(exam_id) if m.id == measurement_id)


def _screen_agrees_with_records(window, records, exam_id, tolerance=1e-6):
    """What the records hold as current is what the screen shows: the AI's value when no frame shows a person's
    review as the exam's value on record; otherwise a person's row of the values shown on its frame, under the name
    shown there (``tolerance``: the AoP's; an exam just opened shows a value on record measured again, as its last shown
    digit). Every other frame showing a person's review says it is not the exam's value on record (review 30)."""
    current = records.current_measurement(exam_id)
    reviewed = {i: s for i, s in window.analysis.states.items() if s.is_corrected or s.confirmed}
    on_record = None if current.kind == AI else current.frame_index
    for frame in reviewed:
        said = window.review_not_on_record(frame)
        assert (said is None) == (frame == on_record), (frame, on_record, said)
    if current.kind == AI:
        assert current.frame_index not in reviewed, (
            f"frame {current.frame_index} shows a {reviewed[current.frame_index].corrected_by}'s review, the records "
            "the AI's value of it")
        shown = window.analysis.states.get(current.frame_index)
        _in_the_calibration_on_screen(window, records, exam_id, current, None if shown is None else shown.ai)
        return current
    assert current.frame_index in reviewed
    state = reviewed[current.frame_index]
    shown_by = state.confirmed_by if current.kind == CONFIRMATION else state.corrected_by
    assert current.by == shown_by and (current.kind == CONFIRMATION) == state.confirmed
    assert current.aop_deg == pytest.approx(state.current()["aop_deg"], abs=tolerance)
    _in_the_calibration_on_screen(window, records, exam_id, current, state.current())
    _whose_each_value_as_on_record(window, state, current)
    return current


def _whose_each_value_as_on_record(window, state, current):
    """Each value shown is whose the records say it is (``workstation.sources``: a confirmation a calibration withdrew
    in part keeps the AoP's acceptance only), and, on the frame on screen, its label on the image says so."""
    from workstation.sources import QUANTITY_KEYS, source_of, whose

    shown = state.sources()
    labels = {"aop": window.overlays.aop_text, "hsd": window.overlays.hsd_text, "head": window.overlays.hc_text}
    for q in [q for q, keys in QUANTITY_KEYS.items() if any(state.current().get(key) is not None for key in keys)]:
        on_record = source_of(current, q)
        assert shown[q]["kind"] == on_record["kind"], (q, shown[q], on_record, current.note)
        if on_record["kind"] != AI:
            assert shown[q]["by"] == on_record["by"], (q, shown[q], on_record)
        text = _label(labels[q])
        if window.current_state() is state and text:
            assert text.endswith(f"({whose(on_record)})"), (q, text, on_record)


def _in_the_calibration_on_screen(window, records, exam_id, current, shown):
    """The records' current row is in the calibration the screen is in, and that is the calibration on record: a
    person's row in the mm shown (its HSD as shown), the AI's in the same scale as the screen's AI values."""
    calibration = window.analysis.calibration
    manual = records.manual_calibration(exam_id)
    assert (manual is None) == (calibration.manual is None), "the screen's calibration is not the one on record"
    if manual is not None:
        assert manual.mm_per_px == pytest.approx(calibration.manual.mm_per_px_x, rel=1e-12)
    assert current.calibration_source == calibration.source, (current.kind, current.by, current.note)
    if current.hsd_px is not None and calibration.manual is not None:
        assert current.hsd_mm == pytest.approx(calibration.manual.mm_per_px_x * current.hsd_px, rel=1e-3)
    if shown is not None:
        assert (current.hsd_mm is None) == (shown.get("hsd_mm") is None)
        if current.hsd_mm is not None:
            assert current.hsd_mm == pytest.approx(shown["hsd_mm"], abs=0.05)


def _drag_tangent(window, qtbot, offset):
    start = window.handle_viewport_pos("tangent_point")
    mouse_drag(qtbot, window, start, start + offset)


@pytest.mark.parametrize("steps", ["correct,correct", "correct,accept", "accept,correct"])
def test_undoing_every_review_in_the_viewer_leaves_the_ai_value_current_and_redo_brings_the_last_back(ward, records,
                                                                                                     qtbot, steps):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    ai_row = records.current_measurement(exam_id)
    _open_and_wait(window, link, qtbot, exam_id)
    offsets = iter([QtCore.QPoint(-30, 45), QtCore.QPoint(-10, 15)])
    for step in steps.split(","):
        if step == "correct":
            _drag_tangent(window, qtbot, next(offsets))
        else:
            window.accept_frame()
        _screen_agrees_with_records(window, records, exam_id)
    last = records.current_measurement(exam_id)
    window.undo_stack.undo()
    _screen_agrees_with_records(window, records, exam_id)
    window.undo_stack.undo()
    state = window.current_state()
    assert not state.is_corrected and not state.confirmed
    current = _screen_agrees_with_records(window, records, exam_id)
    assert current.aop_deg == pytest.approx(ai_row.aop_deg, abs=1e-6) and "withdrawn" in current.note
    # Redo both: the records follow the screen again, back to the last review under its author's name.
    window.undo_stack.redo()
    _screen_agrees_with_records(window, records, exam_id)
    window.undo_stack.redo()
    current = _screen_agrees_with_records(window, records, exam_id)
    assert (current.kind, current.by, current.aop_deg) == (last.kind, last.by, pytest.approx(last.aop_deg, abs=1e-6))


def _correct_frames_0_and_2(ward, records, qtbot):
    """Open the first exam, correct frame 0, then frame 2 (the records' current value): window, exam id, frame 0's
    correction row."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45))
    on_frame_0 = records.current_measurement(exam_id)
    window.go_to_frame(2)
    _drag_tangent(window, qtbot, QtCore.QPoint(-20, 30))
    assert records.current_measurement(exam_id).frame_index == 2
    return window, exam_id, on_frame_0


def test_undoing_corrections_on_two_frames_leaves_the_ai_value_current(ward, records, qtbot):
    window, exam_id, on_frame_0 = _correct_frames_0_and_2(ward, records, qtbot)
    window.undo_stack.undo()
    # Frame 0's correction is what the screen still shows: it is current again.
    current = _screen_agrees_with_records(window, records, exam_id)
    assert (current.kind, current.frame_index, current.aop_deg) == (CORRECTION, 0, on_frame_0.aop_deg)
    window.undo_stack.undo()
    assert not any(s.is_corrected or s.confirmed for s in window.analysis.states.values())
    _screen_agrees_with_records(window, records, exam_id)
    window.undo_stack.redo()
    window.undo_stack.redo()
    assert records.current_measurement(exam_id).frame_index == 2
    _screen_agrees_with_records(window, records, exam_id)


def test_undoing_every_viewer_review_over_a_correction_on_record_goes_back_to_that_correction(ward, records, qtbot):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    unal = _headless_correction_by_unal(records, exam_id)
    _open_and_wait(window, link, qtbot, exam_id)
    assert window.current_state().corrected_by == "Dr Unal"
    _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45))
    window.accept_frame()
    _drag_tangent(window, qtbot, QtCore.QPoint(-10, 15))
    for _ in range(3):
        window.undo_stack.undo()
        _screen_agrees_with_records(window, records, exam_id)
    current = records.current_measurement(exam_id)
    assert (current.kind, current.by) == (CORRECTION, "Dr Unal")
    assert current.aop_deg == pytest.approx(unal.aop_deg, abs=0.05) and current.geometry == unal.geometry
    assert window.current_state().corrected_by == "Dr Unal"


def test_an_acceptance_of_ai_values_on_another_frame_reopens_as_an_acceptance_not_as_a_correction(ward, records,
                                                                                                 qtbot):
    from workstation.records import recorded_review

    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _headless_correction_by_unal(records, exam_id)
    _open_and_wait(window, link, qtbot, exam_id)
    window.go_to_frame(2)
    ai_values = dict(window.current_state().ai)
    window.accept_frame()
    recorded = recorded_review(records, exam_id)
    assert recorded["frame_index"] == 2 and recorded["confirmed_by"] == "Dr Test"
    assert recorded["corrected_by"] is None and recorded["corrected_geometry"] is None
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    assert window.current_frame == 2 and not state.is_corrected and state.corrected_by is None
    assert state.confirmed_by == "Dr Test" and state.current()["aop_deg"] == pytest.approx(ai_values["aop_deg"])


def test_a_confirmation_names_only_the_correction_it_accepted(records, tmp_path):
    """recorded_review: an earlier correction is the one accepted only on the same frame with the same values; the
    geometry shown is the correction's."""
    from workstation.records import confirm, recorded_review

    exam_id = three_exam_labor(records, tmp_path / "usb")[0]
    unal = _headless_correction_by_unal(records, exam_id)
    jones = confirm(records, exam_id, "Midwife Jones")
    recorded = recorded_review(records, exam_id)
    assert (recorded["corrected_by"], recorded["confirmed_by"]) == ("Dr Unal", "Midwife Jones")
    assert recorded["corrected_geometry"] == unal.geometry
    # A confirmation of other values on that frame (over Dr Unal's, e.g. another analysis' AI values): no
    # correction of Dr Unal's is shown as accepted.
    ai = records.latest_ai_measurement(exam_id)
    records.add_measurement(exam_id, CONFIRMATION, "Dr Roe", {"aop_deg": ai.aop_deg, "hsd_px": ai.hsd_px},
                            supersedes_id=jones.id, frame_index=0, geometry=ai.geometry,
                            calibration_source="dicom_regions")
    recorded = recorded_review(records, exam_id)
    assert recorded["confirmed_by"] == "Dr Roe" and recorded["corrected_by"] is None
    assert recorded["corrected_geometry"] is None


def test_a_persons_value_on_a_frame_not_analysed_here_is_named_in_the_banner(ward, records, qtbot):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    ai = records.current_measurement(exam_id)
    records.add_measurement(exam_id, CORRECTION, "Dr Unal", {"aop_deg": 99.0}, supersedes_id=ai.id, frame_index=3,
                            geometry=ai.geometry, calibration_source="dicom_regions")
    window.progress.valueChanged.connect(lambda done: done >= 1 and window.cancel_analysis())
    _open_and_wait(window, link, qtbot, exam_id)
    assert 3 not in window.analysis.states and window.current_frame == 3
    banner = window.error_banner.text
    assert "correction by Dr Unal" in banner and "frame 3" in banner and "AoP 99.0" in banner
    assert "not analysed" in banner and "stopped after" in banner
    assert records.current_measurement(exam_id).by == "Dr Unal"  # opening saves nothing


def test_undoing_a_correction_on_another_frame_brings_back_the_ai_value_on_record_unchanged(ward, records, qtbot):
    """The AI's value on record is on its chosen frame (0); a correction made and undone on frame 2 must leave
    the exam's point on the timeline where it was, not move it to frame 2's AI value."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    ai_row = records.current_measurement(exam_id)
    _open_and_wait(window, link, qtbot, exam_id)
    window.go_to_frame(2)
    _drag_tangent(window, qtbot, QtCore.QPoint(-20, 30))
    assert records.current_measurement(exam_id).frame_index == 2
    window.undo_stack.undo()
    back = records.current_measurement(exam_id)
    assert back.kind == AI and back.frame_index == ai_row.frame_index
    assert back.aop_deg == pytest.approx(ai_row.aop_deg) and back.hsd_mm == pytest.approx(ai_row.hsd_mm)
    window.undo_stack.redo()
    assert (records.current_measurement(exam_id).kind, records.current_measurement(exam_id).frame_index) == (
        CORRECTION, 2)


def test_an_accept_over_a_headless_correction_reopens_as_that_correction_accepted(ward, records, qtbot):
    """The headless correction also stored the head biometry of its label map; the viewer's acceptance keeps the
    AoP and HSD it showed. Reopened, it is still Dr Unal's correction, accepted by Dr Test."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _headless_correction_by_unal(records, exam_id)
    _open_and_wait(window, link, qtbot, exam_id)
    window.accept_frame()
    assert records.current_measurement(exam_id).kind == CONFIRMATION
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    assert (state.corrected_by, state.confirmed_by) == ("Dr Unal", "Dr Test") and not window.error_banner.text


def test_accept_reset_and_a_new_action_after_undo_keep_screen_and_records_together(ward, records, qtbot):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _headless_correction_by_unal(records, exam_id)
    _open_and_wait(window, link, qtbot, exam_id)
    steps = [lambda: _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45)), window.undo_stack.undo,
             window.accept_frame, window.undo_stack.undo, window.undo_stack.redo, window.reset_frame_to_ai,
             window.undo_stack.undo, window.undo_stack.undo]
    for step in steps:
        step()
        _screen_agrees_with_records(window, records, exam_id)
    qtbot.waitUntil(lambda: not window.undo_stack.canUndo(), timeout=2000)
    final = records.current_measurement(exam_id)
    assert (final.kind, final.by) == (CORRECTION, "Dr Unal")  # back to the value on record when the exam opened


def test_a_manual_calibration_set_in_the_viewer_is_kept_with_the_exam_when_it_is_opened_again(ward, records, qtbot,
                                                                                             make_window, tmp_path):
    """The sonographer draws a line over the depth scale (Tools > Manual calibration) and accepts the frame's values
    in that mm. The window is closed; a new window on the same records folder (as after a restart) opens the exam
    from the Patients panel: it is measured with that calibration from the start, so the AI's values are in the
    manual mm, the acceptance holds, and the panel and status bar say the calibration is manual and who set it.
    Going back to the file's calibration is kept too."""
    from workstation.gui.panel import plain_text
    from workstation.gui.records_link import attach_records

    window, link, exam_ids, labor_id = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    window.start_manual_calibration()
    line = window._calibration_line
    top, bottom = line.roi.getHandles()
    line.roi.movePoint(top, QtCore.QPointF(30.0, 100.0))
    line.roi.movePoint(bottom, QtCore.QPointF(30.0, 300.0))
    window.calibration_bar.mm_spin.setValue(50.0)  # 50 mm over 200 px: 0.25 mm per pixel
    qtbot.mouseClick(window.calibration_bar.apply_button, QtCore.Qt.MouseButton.LeftButton)
    assert window.analysis.calibration.source == "manual"
    window.accept_frame()
    accepted = records.current_measurement(exam_id)
    assert (accepted.kind, accepted.by, accepted.calibration_source) == (CONFIRMATION, "Dr Test", "manual")
    assert accepted.hsd_mm == pytest.approx(0.25 * accepted.hsd_px, rel=1e-3)
    window.close()  # the app closed (the fixture deletes the window at the end)

    # Another window on the same records folder, its own connection to it (a restart of the app).
    with Records(tmp_path / "data") as reopened:
        oracle = OracleModel(n_frames=DEMO_FRAMES, seed=0)
        again = make_window(model_provider=lambda: oracle, size=(1500, 950))
        link_again = attach_records(again, reopened, analyze=False)
        assert link_again.panel.select_labor(labor_id)
        _open_and_wait(again, link_again, qtbot, exam_id)
        calibration = again.analysis.calibration
        assert calibration.source == "manual" and calibration.manual.mm_per_px_x == pytest.approx(0.25)
        assert again.file_calibration.source == "dicom_regions"
        state = again.current_state()
        assert again.current_frame == accepted.frame_index
        assert state.ai["hsd_mm"] == pytest.approx(0.25 * state.ai["hsd_px"], rel=1e-3)
        assert state.confirmed and state.confirmed_by == "Dr Test" and not again.error_banner.text
        assert state.current()["hsd_mm"] == pytest.approx(accepted.hsd_mm, abs=0.05)
        panel_text = plain_text(again.panel.calibration_label)
        assert "manual" in panel_text and "drawn on the depth scale by Dr Test" in panel_text
        status = again.calibration_status.text()
        assert "manual" in status and "0.2500 mm/px" in status and "set by Dr Test" in status
        assert "line from (30, 100) to (30, 300)" in again.calibration_status.toolTip()
        assert "Accepted by Dr Test" in plain_text(again.panel.provenance_label)
        rows = len(reopened.measurements(exam_id))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert again.grab().save(str(SCREENSHOTS / "manual_calibration_reopened.png"))

        # Back to the file's calibration: recorded with who, and the next opening uses the file's.
        again.start_manual_calibration()
        qtbot.mouseClick(again.calibration_bar.file_button, QtCore.Qt.MouseButton.LeftButton)
        assert reopened.manual_calibration(exam_id) is None
        assert [(c.kind, c.by) for c in reopened.calibrations(exam_id)] == [("manual", "Dr Test"), ("file", "Dr Test")]
        assert len(reopened.measurements(exam_id)) > rows  # the acceptance of manual mm withdrawn, as on screen
        assert "the file's" in again.calibration_status.text()
        _open_and_wait(again, link_again, qtbot, exam_id)
        assert again.analysis.calibration.source == "dicom_regions"
        again.close()


def test_an_undo_back_to_the_ai_value_after_a_manual_calibration_keeps_the_ai_value_in_that_calibration(ward, records,
                                                                                                        qtbot):
    """A correction, then a manual calibration (kept with the exam), then undo of the correction: the AI's value
    made current again is the one in the manual mm, as the screen shows it, not the one from before the scale."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    start = window.handle_viewport_pos("hsd_end")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(10, 25))
    assert records.current_measurement(exam_id).kind == CORRECTION
    window.set_calibration(window.file_calibration.with_manual(0.5, detail="drawn by Dr Test"))
    window.undo_stack.undo()
    assert not window.current_state().is_corrected
    current = _screen_agrees_with_records(window, records, exam_id)
    assert current.kind == AI and current.calibration_source == "manual"
    assert current.hsd_mm == pytest.approx(0.5 * current.hsd_px, rel=1e-3)
    assert current.hsd_mm == pytest.approx(window.current_state().ai["hsd_mm"], abs=0.05)


# -- saves the records refuse: the screen goes back to what they hold ------------------------------------------------
DISK_FULL = "database or disk is full"


def _fill_the_disk(monkeypatch):
    """Every save from now on fails as on a full disk: its statements run, then the COMMIT fails with SQLite's own
    error and the transaction rolls back (as the reviewer's 4 MB tmpfs did). Returns a switch: ``full["on"] = False``
    frees the disk again."""
    import sqlite3
    from contextlib import contextmanager

    from workstation.records import database

    full = {"on": True}
    real = database.transaction

    @contextmanager
    def transaction(conn):
        if not full["on"]:
            with real(conn):
                yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            raise sqlite3.OperationalError(DISK_FULL)
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    monkeypatch.setattr(database, "transaction", transaction)
    return full


def _label(item) -> str:
    return item.textItem.toPlainText()


def test_an_acceptance_the_records_cannot_keep_is_withdrawn_on_screen_and_redo_tries_it_again(ward, records, qtbot,
                                                                                              monkeypatch):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    ai_row = records.current_measurement(exam_id)
    full = _fill_the_disk(monkeypatch)
    failed = []
    link.saveFailed.connect(failed.append)
    window.accept_frame()
    assert failed and DISK_FULL in failed[0]
    # Before: the panel kept "Accepted by Dr Test" and a disabled Accept over records holding only the AI row.
    state = window.current_state()
    assert not state.confirmed and window.panel.accept_button.isEnabled()
    assert "Not accepted yet" in window.panel.provenance_label.text()
    assert _label(window.overlays.aop_text).endswith("(AI)")
    assert records.current_measurement(exam_id).id == ai_row.id
    _screen_agrees_with_records(window, records, exam_id)
    banner = window.error_banner.text
    assert "not saved" in banner and DISK_FULL in banner and "acceptance of frame 0 by Dr Test" in banner
    assert "Redo" in banner
    # The step waits on the redo side of the stack: nothing to undo, Redo tries it again.
    assert not window.undo_stack.canUndo() and window.undo_stack.redoText() == "Accept frame 0"
    full["on"] = False
    window.undo_stack.redo()
    assert window.current_state().confirmed and records.current_measurement(exam_id).kind == CONFIRMATION
    _screen_agrees_with_records(window, records, exam_id)
    assert window.undo_stack.canUndo() and not window.undo_stack.canRedo()


def test_a_dragged_correction_the_records_cannot_keep_is_taken_back_on_screen_and_kept_for_redo(ward, records, qtbot,
                                                                                                monkeypatch):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    ai_tangent = state.ai["geometry"]["aop"]["tangent_point"]
    full = _fill_the_disk(monkeypatch)
    _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45))
    # The screen shows what the records hold: the AI's value, its calipers where the AI put them.
    assert not state.is_corrected and window.panel.value_text("corrected", "AoP") == ""
    assert window.calipers.geometry()["aop"]["tangent_point"] == pytest.approx(ai_tangent, abs=0.5)
    _screen_agrees_with_records(window, records, exam_id)
    banner = window.error_banner.text
    assert "correction of frame 0 (AoP " in banner and "Redo (Ctrl+Shift+Z) puts it back" in banner
    # The dragged correction is not lost: Redo, once the records can be written, puts it back and keeps it.
    assert window.undo_stack.redoText() == "Correct frame 0"
    full["on"] = False
    window.undo_stack.redo()
    assert state.is_corrected and state.corrected_by == "Dr Test"
    row = _screen_agrees_with_records(window, records, exam_id)
    assert row.kind == CORRECTION and f"AoP {row.aop_deg:.1f}°" in banner


def test_an_undo_the_records_cannot_keep_leaves_the_screen_and_the_stack_as_the_records_are(ward, records, qtbot,
                                                                                           monkeypatch):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    confirmed = _open_and_accept(window, link, qtbot, records, exam_id)
    full = _fill_the_disk(monkeypatch)
    window.undo_stack.undo()
    # The undo was not kept: the acceptance is on screen again, and the stack steps back over it.
    assert window.current_state().confirmed and "undo on frame 0" in window.error_banner.text
    qtbot.waitUntil(lambda: window.undo_stack.canUndo(), timeout=2000)
    assert window.undo_stack.undoText() == "Accept frame 0" and not window.undo_stack.canRedo()
    assert records.current_measurement(exam_id).id == confirmed.id
    _screen_agrees_with_records(window, records, exam_id)
    # A redo the records refuse is stepped back over the same way.
    full["on"] = False
    window.undo_stack.undo()
    assert not window.current_state().confirmed and records.current_measurement(exam_id).kind == AI
    full["on"] = True
    window.undo_stack.redo()
    assert not window.current_state().confirmed
    qtbot.waitUntil(lambda: window.undo_stack.canRedo(), timeout=2000)
    assert not window.undo_stack.canUndo()
    _screen_agrees_with_records(window, records, exam_id)


def test_a_calibration_the_records_cannot_keep_is_not_left_on_screen(ward, records, qtbot, monkeypatch):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    hsd_mm = state.ai["hsd_mm"]
    _fill_the_disk(monkeypatch)
    assert not window.set_calibration(window.file_calibration.with_manual(0.5, detail="test manual"))
    assert window.analysis.calibration.source == "dicom_regions" and state.ai["hsd_mm"] == pytest.approx(hsd_mm)
    assert records.manual_calibration(exam_id) is None
    assert "calibration was not saved" in window.error_banner.text and "back to the calibration on record" in \
        window.error_banner.text
    assert "manual" not in window.calibration_status.text()


# -- read-only records: viewed, never written ----------------------------------------------------------------------
def _read_only_ward(make_window, tmp_path, monkeypatch):
    """Three exams in records that the records layer finds read-only (its probe says so), a window on them, as the
    app attaches them (``attach_records_or_say_why``): window, link, exam ids, the records folder."""
    from workstation.gui.app import attach_records_or_say_why
    from workstation.records import database

    data = tmp_path / "data"
    with Records(data) as writable:
        exam_ids = three_exam_labor(writable, tmp_path / "usb")
    monkeypatch.setenv("WORKSTATION_DATA_DIR", str(data))
    monkeypatch.setattr(database, "write_problem", lambda _folder: "it is on a read-only file system")
    oracle = OracleModel(n_frames=DEMO_FRAMES, seed=0)
    window = make_window(model_provider=lambda: oracle, size=(1440, 900))
    link = attach_records_or_say_why(window)
    if link is not None:
        link.panel._model_provider = None  # no model load for imports (none are allowed here anyway)
    return window, link, exam_ids, data


def test_the_window_on_read_only_records_views_them_and_says_nothing_is_kept(make_window, qtbot, tmp_path,
                                                                             monkeypatch):
    """As root a chmod stops nothing, so the folder is made read-only for the records layer by its probe; the
    window attaches the records read-only, says so, and an acceptance is refused and not left on screen."""
    from PySide6 import QtWidgets

    window, link, exam_ids, data = _read_only_ward(make_window, tmp_path, monkeypatch)
    assert link is not None and link.read_only == "it is on a read-only file system"
    assert "read-only" in window.error_banner.text and "nothing is saved" in window.error_banner.text
    note = window.statusBar().findChild(QtWidgets.QLabel, "recordsReadOnly")
    assert note is not None and note.text() == "Records read-only"
    panel = link.panel
    assert not panel.import_button.isEnabled() and not panel.new_patient_button.isEnabled()
    assert not panel.new_labor_button.isEnabled() and panel.new_patient() is None
    _open_and_wait(window, link, qtbot, exam_ids[0])
    window.accept_frame()
    assert not window.current_state().confirmed and "read-only" in window.error_banner.text
    assert window.panel.accept_button.isEnabled()
    with Records(data) as check:
        assert [m.kind for m in check.measurements(exam_ids[0])] == [AI]


def test_the_app_starts_on_a_read_only_records_folder_and_lists_its_exams(tmp_path):
    """The reviewer's case end to end: a real read-only mount (skipped where mounting is not allowed). Before, the
    window exited 1 with "OSError: [Errno 30] Read-only file system" from the records folder's chmod."""
    from gui_support import read_only_bind_mount, start_the_app_on

    data = tmp_path / "data"
    with Records(data) as writable:
        three_exam_labor(writable, tmp_path / "usb")
    with read_only_bind_mount(data, tmp_path / "archive") as archive:
        run, banner = start_the_app_on(archive)
    assert "read-only" in banner and "could not be opened" not in banner, banner
    assert "READONLY Records read-only" in run.stdout and "NOTE None" in run.stdout
    assert "EXAMS 3" in run.stdout


# -- two people at once: a review made on a screen someone else's change has made stale is refused ------------------
def _dr_a_corrects(tmp_path, exam_id, shift=(-20, 20)):
    """Dr A moves the tangent point of frame 0 headless through her own connection to the same records folder (a
    second app copy, `workstation correct`), while the window has the exam open."""
    from workstation.records.review import correct

    with Records(tmp_path / "data") as elsewhere:
        geometry = next(m for m in reversed(elsewhere.measurements(exam_id)) if m.frame_index == 0).geometry
        x, y = geometry["aop"]["tangent_point"]
        return correct(elsewhere, exam_id, 0, {"aop": {**geometry["aop"],
                                                       "tangent_point": [x + shift[0], y + shift[1]]}}, "Dr A")


def _shows_dr_as_value(window, records, exam_id, dr_a):
    state = window.current_state()
    assert window.current_frame == dr_a.frame_index
    assert (state.corrected_by, state.confirmed) == ("Dr A", False)
    assert state.current()["aop_deg"] == pytest.approx(dr_a.aop_deg, abs=0.05)
    assert _label(window.overlays.aop_text).endswith("(corrected)")
    assert records.current_measurement(exam_id).id == dr_a.id
    _screen_agrees_with_records(window, records, exam_id)


def test_an_accept_on_a_screen_made_stale_by_someone_elses_correction_is_refused_and_shows_theirs(ward, records,
                                                                                                   qtbot, tmp_path):
    """The window opened the exam (the AI's value); Dr A corrects it headless meanwhile; the window's Accept of the
    AI's value it still shows is refused (it superseded Dr A's correction unseen before): the records keep Dr A's
    correction current, the banner gives the records' message naming Dr A, the screen shows her value, the undo
    history is gone. An Accept made then (on Dr A's value) is saved: Dr A's correction accepted by Dr Test."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    ai_row = records.current_measurement(exam_id)
    dr_a = _dr_a_corrects(tmp_path, exam_id)
    assert dr_a.aop_deg != pytest.approx(ai_row.aop_deg, abs=1.0)
    rows = [m.id for m in records.measurements(exam_id)]
    errors = []
    window.errorShown.connect(errors.append)

    window.accept_frame()
    assert [m.id for m in records.measurements(exam_id)] == rows  # nothing written
    assert errors and "Dr A" in errors[-1]
    banner = window.error_banner.text
    assert banner.startswith(f"Not saved: exam {exam_id} was changed since it was opened here: correction by Dr A")
    assert "undo history is cleared" in banner
    _shows_dr_as_value(window, records, exam_id, dr_a)
    assert not window.undo_stack.canUndo() and not window.undo_stack.canRedo()
    assert window.records_basis["measurement_id"] == dr_a.id
    assert link.panel.exam_table.findItems("Dr A", QtCore.Qt.MatchFlag.MatchContains)
    assert [p["exam_id"] for p in link.timeline.points("confirmed")] == [exam_id]

    window.accept_frame()  # now on Dr A's value: saved
    accepted = records.current_measurement(exam_id)
    assert (accepted.kind, accepted.by, accepted.supersedes_id) == (CONFIRMATION, "Dr Test", dr_a.id)
    assert accepted.aop_deg == pytest.approx(dr_a.aop_deg, abs=0.05)
    state = window.current_state()
    assert (state.corrected_by, state.confirmed_by) == ("Dr A", "Dr Test")
    _screen_agrees_with_records(window, records, exam_id)
    assert window.records_basis["measurement_id"] == accepted.id


def test_an_undo_over_someone_elses_later_correction_is_refused_and_the_undo_history_cleared(ward, records, qtbot,
                                                                                            tmp_path):
    """The window corrects frame 0; Dr A corrects it again headless; the window's undo (back to the AI's value) would
    have withdrawn Dr A's correction unseen: it is refused, the screen shows hers, the stack is emptied once the
    undo has returned, and the next correction dragged in the window is saved over hers."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45))
    ours = records.current_measurement(exam_id)
    assert (ours.kind, ours.by) == (CORRECTION, "Dr Test")
    dr_a = _dr_a_corrects(tmp_path, exam_id, shift=(15, -10))
    rows = [m.id for m in records.measurements(exam_id)]

    window.undo_stack.undo()
    assert [m.id for m in records.measurements(exam_id)] == rows
    assert "Dr A" in window.error_banner.text and "Not saved" in window.error_banner.text
    _shows_dr_as_value(window, records, exam_id, dr_a)
    qtbot.waitUntil(lambda: window.undo_stack.count() == 0, timeout=2000)

    _drag_tangent(window, qtbot, QtCore.QPoint(-10, 15))
    mine = records.current_measurement(exam_id)
    assert (mine.kind, mine.by, mine.supersedes_id) == (CORRECTION, "Dr Test", dr_a.id)
    _screen_agrees_with_records(window, records, exam_id)
    window.undo_stack.undo()  # the window's own undo: back to Dr A's correction, as the screen showed before
    current = records.current_measurement(exam_id)
    assert (current.kind, current.by) == (CORRECTION, "Dr A") and window.current_state().corrected_by == "Dr A"


def test_a_calibration_set_over_someone_elses_correction_does_not_make_it_seen(ward, records, qtbot, tmp_path):
    """The window corrects frame 0; Dr A corrects it headless; the window then sets a manual calibration, which
    measures Dr A's correction (current) again in the new mm. The window never showed it: the calibrated value of
    the window's own correction is refused, not saved over hers, and the screen shows hers in the new mm."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45))
    dr_a = _dr_a_corrects(tmp_path, exam_id, shift=(15, -10))
    window.set_calibration(window.file_calibration.with_manual(0.5, detail="test manual"))
    current = records.current_measurement(exam_id)
    assert (current.kind, current.by, current.calibration_source) == (CORRECTION, "Dr A", "manual")
    assert current.aop_deg == pytest.approx(dr_a.aop_deg, abs=0.05)
    assert "Dr A" in window.error_banner.text
    state = window.current_state()
    assert state.corrected_by == "Dr A" and state.current()["hsd_mm"] == pytest.approx(current.hsd_mm, abs=0.05)
    _screen_agrees_with_records(window, records, exam_id)
    assert window.records_basis["measurement_id"] == current.id


def test_the_windows_own_reviews_undo_redo_and_calibrations_are_never_refused(ward, records, qtbot, monkeypatch):
    """Each review the window sends names the exam's measurement its screen is based on, moved by each of its own
    saves (calibrations included, which measure rows again): none of its own steps is ever taken for someone
    else's change."""
    from workstation.gui import records_link

    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    sent = []
    real_save = records_link.save_viewer_review

    def save(opened, review):
        sent.append(dict(review))
        return real_save(opened, review)

    monkeypatch.setattr(records_link, "save_viewer_review", save)
    refused = []
    link.reviewConflict.connect(refused.append)
    link.saveFailed.connect(refused.append)
    _open_and_wait(window, link, qtbot, exam_id)
    stack = window.undo_stack
    steps = [lambda: _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45)), window.accept_frame, stack.undo,
             lambda: window.set_calibration(window.file_calibration.with_manual(0.5, detail="test manual")),
             stack.undo, stack.redo, window.accept_frame, lambda: window.set_calibration(window.file_calibration),
             lambda: _drag_tangent(window, qtbot, QtCore.QPoint(-10, 15)), stack.undo, stack.redo,
             window.accept_frame, window.reset_frame_to_ai, stack.undo]
    for number, step in enumerate(steps):
        step()
        assert not refused, (number, refused)
        _screen_agrees_with_records(window, records, exam_id)
    assert sent and all("based_on_measurement_id" in review for review in sent)
    assert not window.error_banner.text
    assert any(m.calibration_source == "manual" and m.supersedes_id is not None for m in records.measurements(exam_id))


# -- undo/redo across a calibration: the records hold what the screen shows, in the calibration in force ------------
def _manual(window, mm_per_px=0.5):
    assert window.set_calibration(window.file_calibration.with_manual(mm_per_px, detail="test manual"))


def test_a_redo_of_an_accept_a_calibration_withdrew_does_not_bring_back_the_old_mm(ward, records, qtbot):
    """Accept the AI's values, a manual calibration withdraws the HSD's acceptance, then undo and redo of the Accept:
    the screen shows the AoP accepted, the AI's HSD unaccepted in the manual mm (the acceptance was of other mm), and
    so must the records (before: the old confirmation came back in the file's mm)."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_accept(window, link, qtbot, records, exam_id)
    _manual(window)
    _screen_agrees_with_records(window, records, exam_id)
    window.undo_stack.undo()
    _screen_agrees_with_records(window, records, exam_id)
    window.undo_stack.redo()
    assert window.current_state().whose()["hsd"] == "AI"
    current = _screen_agrees_with_records(window, records, exam_id)
    assert current.kind == CONFIRMATION and current.calibration_source == "manual"
    assert current.sources["hsd"]["kind"] == AI and current.sources["aop"]["kind"] == CONFIRMATION


def test_a_redo_of_an_accept_of_a_correction_a_calibration_withdrew_keeps_the_correction_in_its_mm(ward, records,
                                                                                                  qtbot):
    window, exam_id = _accept_a_moved_hsd_end(ward, qtbot)
    _manual(window)
    window.undo_stack.undo()
    window.undo_stack.redo()
    state = window.current_state()
    assert state.corrected_by == "Dr Test" and state.whose()["hsd"] == "corrected"
    current = _screen_agrees_with_records(window, records, exam_id)
    assert (current.kind, current.calibration_source) == (CONFIRMATION, "manual")
    assert current.sources["hsd"]["kind"] == CORRECTION and current.hsd_mm == pytest.approx(0.5 * current.hsd_px,
                                                                                            rel=1e-3)


def test_a_calibration_after_undoing_a_reset_keeps_the_accepted_correction_in_the_records(ward, records, qtbot):
    """Correct, Accept, Reset to AI, undo (the accepted correction is back), then a manual calibration: the screen
    keeps the correction (the HSD's acceptance withdrawn: its mm changed), and so must the records (before: they
    withdrew to the AI, with the correction's values under the model's name)."""
    window, exam_id = _accept_a_moved_hsd_end(ward, qtbot)
    window.reset_frame_to_ai()
    window.undo_stack.undo()
    assert window.current_state().confirmed
    _screen_agrees_with_records(window, records, exam_id)
    _manual(window)
    state = window.current_state()
    assert state.corrected_by == "Dr Test" and state.whose()["hsd"] == "corrected"
    current = _screen_agrees_with_records(window, records, exam_id)
    assert (current.kind, current.by, current.calibration_source) == (CONFIRMATION, "Dr Test", "manual")
    assert (current.sources["hsd"]["kind"], current.sources["hsd"]["by"]) == (CORRECTION, "Dr Test")


def test_an_undo_back_to_a_correction_on_another_frame_after_a_calibration_is_in_its_mm(ward, records, qtbot):
    """Correct frame 0, correct frame 2, a manual calibration, then undo of frame 2's correction: frame 0's correction
    is current again, measured in the manual mm as the screen shows it (before: its old row's mm, under the file's
    calibration), and the row says who undid it."""
    window, exam_id, on_frame_0 = _correct_frames_0_and_2(ward, records, qtbot)
    _manual(window)
    window.undo_stack.undo()
    current = _screen_agrees_with_records(window, records, exam_id)
    assert (current.kind, current.by, current.frame_index) == (CORRECTION, "Dr Test", 0)
    assert current.calibration_source == "manual" and current.hsd_px == pytest.approx(on_frame_0.hsd_px)
    assert current.hsd_mm == pytest.approx(0.5 * current.hsd_px, rel=1e-3)
    assert "by Dr Test (undo)" in current.note
    window.undo_stack.redo()
    _screen_agrees_with_records(window, records, exam_id)


# -- a calibration set elsewhere makes the screen stale (item: AI rows only, which are no change of value) ----------
def test_a_calibration_set_elsewhere_while_the_ais_value_is_current_is_noticed_at_the_next_save(ward, records, qtbot,
                                                                                             tmp_path):
    """The window opened the exam (the AI's value, the file's calibration); `workstation calibrate` sets a manual
    scale meanwhile, which writes AI rows only. The window's Accept of the AI's values in the file's mm is refused
    with one line naming the calibration and who set it, nothing written; the screen is then in the calibration on
    record, and an Accept made then is saved in its mm. The same when the file's calibration comes back elsewhere."""
    from workstation.records import set_exam_calibration
    from workstation.records.calibration import exam_calibration

    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    with Records(tmp_path / "data") as elsewhere:
        set_exam_calibration(elsewhere, exam_id, 0.5, "Dr B")
    rows = [m.id for m in records.measurements(exam_id)]

    window.accept_frame()
    assert [m.id for m in records.measurements(exam_id)] == rows  # nothing written
    banner = window.error_banner.text
    assert banner.startswith(f"Not saved: the calibration of exam {exam_id} was changed since it was opened here: "
                             "manual 0.5000 mm/px") and "set by Dr B" in banner and "\n" not in banner
    calibration = window.analysis.calibration
    assert calibration.manual is not None and calibration.manual.mm_per_px_x == pytest.approx(0.5)
    assert calibration == exam_calibration(records, exam_id, window.file_calibration)
    assert "manual" in window.calibration_status.text() and "Dr B" in window.calibration_status.text()
    state = window.current_state()
    assert not state.confirmed and state.ai["hsd_mm"] == pytest.approx(0.5 * state.ai["hsd_px"], rel=1e-3)
    _screen_agrees_with_records(window, records, exam_id)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "calibration_set_elsewhere.png"))
    print(banner)

    window.accept_frame()  # on the screen in the calibration on record: saved
    current = _screen_agrees_with_records(window, records, exam_id)
    assert (current.kind, current.calibration_source) == (CONFIRMATION, "manual")

    with Records(tmp_path / "data") as elsewhere:
        set_exam_calibration(elsewhere, exam_id, None, "Dr B")  # the file's again: the HSD's acceptance withdrawn there
    errors = []
    window.errorShown.connect(errors.append)
    _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45))
    assert errors and errors[-1].startswith(f"Not saved: exam {exam_id} was changed since it was opened here: "
                                            "confirmation by Dr Test at ") and "its calibration" in errors[-1]
    assert window.analysis.calibration.manual is None and not window.current_state().is_corrected
    _screen_agrees_with_records(window, records, exam_id)


# -- a calibration's re-measured review the records refuse: the screen goes back to what they hold -----------------
def test_a_calibrated_review_the_records_cannot_keep_puts_the_screen_back_as_they_hold_it(ward, records, qtbot,
                                                                                         monkeypatch):
    from workstation.gui import records_link

    window, exam_id, _ = _correct_frames_0_and_2(ward, records, qtbot)
    real = records_link.set_exam_calibration

    def calibrate_then_the_disk_fills(*args, **kwargs):
        change = real(*args, **kwargs)
        _fill_the_disk(monkeypatch)
        return change

    monkeypatch.setattr(records_link, "set_exam_calibration", calibrate_then_the_disk_fills)
    saved = [m.id for m in records.measurements(exam_id)]
    assert window.set_calibration(window.file_calibration.with_manual(0.5, detail="test manual"))
    # The calibration itself is kept, as the records have it; nothing saved is lost.
    assert records.manual_calibration(exam_id).mm_per_px == 0.5
    assert window.analysis.calibration.manual.mm_per_px_x == pytest.approx(0.5)
    assert set(saved) <= {m.id for m in records.measurements(exam_id)}
    banner = window.error_banner.text
    assert DISK_FULL in banner and "what the records hold" in banner
    # The screen is what the records hold: frame 2's correction in the manual mm, frame 0's (superseded) not shown.
    assert not window.analysis.states[0].is_corrected and window.analysis.states[2].corrected_by == "Dr Test"
    _screen_agrees_with_records(window, records, exam_id)
    qtbot.waitUntil(lambda: not window.undo_stack.canUndo(), timeout=2000)


# -- read-only records: the banner stays --------------------------------------------------------------------------
def test_the_read_only_banner_stays_when_an_exam_is_opened(make_window, qtbot, tmp_path, monkeypatch):
    window, link, exam_ids, data = _read_only_ward(make_window, tmp_path, monkeypatch)
    _open_and_wait(window, link, qtbot, exam_ids[0])
    banner = window.error_banner.text
    assert "read-only" in banner and "nothing is saved" in banner and str(data) in banner
    window.close_cine()
    assert "read-only" in window.error_banner.text


def test_the_read_only_reason_is_kept_by_the_window_not_read_back_from_its_status_bar(make_window, qtbot, tmp_path,
                                                                                      monkeypatch):
    """The window keeps why the records are read-only (``records_read_only``) and says it again with each exam opened
    from that, not from the status-bar note's tooltip; the red notes about the records (read-only, unavailable) are
    built in one place (``MainWindow.add_status_note``)."""
    from PySide6 import QtWidgets

    from workstation.gui import app
    from workstation.gui.main_window import MainWindow
    from workstation.records import RecordsError

    notes = []
    real = MainWindow.add_status_note
    monkeypatch.setattr(MainWindow, "add_status_note",
                        lambda self, name, text, why: notes.append((name, text, why)) or real(self, name, text, why))
    window, link, exam_ids, data = _read_only_ward(make_window, tmp_path, monkeypatch)
    why = f"{link.records.root}: it is on a read-only file system; nothing is saved to these records"
    assert window.records_read_only == why and notes == [("recordsReadOnly", "Records read-only", why)]
    note = window.statusBar().findChild(QtWidgets.QLabel, "recordsReadOnly")
    assert note.toolTip() == why and note.styleSheet() == "color: #b3261e; font-weight: bold;"
    note.setToolTip("")  # the window does not read the reason back from its widget
    _open_and_wait(window, link, qtbot, exam_ids[0])
    assert window.error_banner.text == f"Records read-only: {why}."
    # Records that cannot be opened at all: the same kind of note, from the same place.
    other = make_window()

    def refuse(_window):
        raise RecordsError("records.sqlite3 is damaged")

    monkeypatch.setattr("workstation.gui.records_link.attach_records", refuse)
    assert app.attach_records_or_say_why(other) is None
    assert notes[-1] == ("recordsUnavailable", "Records unavailable (see the error)", "records.sqlite3 is damaged")
    unavailable = other.statusBar().findChild(QtWidgets.QLabel, "recordsUnavailable")
    assert unavailable.styleSheet() == note.styleSheet() and other.records_read_only is None


# -- each save reads the records' current measurement once (before it), besides the save's own check -------------
def test_a_review_step_reads_the_records_current_measurement_only_before_it(ward, records, qtbot):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    reads = []
    real = window.records_current
    window.records_current = lambda exam: reads.append(exam) or real(exam)
    window.accept_frame()
    assert reads == [exam_id]
    reads.clear()
    window.undo_stack.undo()
    window.undo_stack.redo()
    _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45))
    assert reads == [exam_id]  # the drag's; undo and redo restore the states their command kept
    _screen_agrees_with_records(window, records, exam_id)


# -- an acceptance a calibration withdrew in part: the screen shows it value by value, as the records hold it -------
def _calibrate_from_the_cli(records, exam_id, mm_per_px="0.3", user="Dr B"):
    from records_support import run_cli

    assert run_cli(["calibrate", "--data-dir", str(records.root.parent), "--exam", str(exam_id),
                    "--mm-per-px", mm_per_px, "--user", user]) == 0


def test_a_calibration_set_from_the_cli_after_an_acceptance_opens_with_the_aop_accepted_only(ward, records, qtbot):
    """Dr Test accepts the AI's values; `workstation calibrate` then sets a manual scale: the records keep the AoP's
    acceptance (an isotropic scale does not change it) and give the HSD back to the AI, in the new mm. Opened again,
    the viewer shows that: the AoP "(confirmed)", the HSD "(AI)" in the new mm (before: every value "(confirmed)",
    the HSD in mm nobody accepted), the panel saying which value the acceptance still holds; Accept confirms the HSD
    too."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_accept(window, link, qtbot, records, exam_id)
    _open_and_wait(window, link, qtbot, exam_ids[1])
    _calibrate_from_the_cli(records, exam_id)
    current = records.current_measurement(exam_id)
    assert current.kind == CONFIRMATION and current.sources["hsd"]["kind"] == AI
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    assert state.confirmed and state.whose()["aop"] == "confirmed" and state.whose()["hsd"] == "AI", state
    assert state.ai["hsd_mm"] == pytest.approx(0.3 * state.ai["hsd_px"], rel=1e-3)
    assert _label(window.overlays.aop_text).endswith("(confirmed)")
    assert _label(window.overlays.hsd_text).endswith("(AI)") and "confirmed" not in _label(window.overlays.hsd_text)
    provenance = plain_text(window.panel.provenance_label)
    assert "Accepted by Dr Test" in provenance and "the AoP only" in provenance
    assert "its acceptance of the HSD withdrawn (a calibration changed it), Accept to confirm it" in provenance
    assert window.panel.accept_button.isEnabled()
    _screen_agrees_with_records(window, records, exam_id, tolerance=1e-3)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "cli_calibration_after_acceptance.png"))

    window.accept_frame()  # the HSD in the new mm accepted too
    state = window.current_state()
    assert set(state.whose().values()) == {"confirmed"} and not window.panel.accept_button.isEnabled()
    accepted = _screen_agrees_with_records(window, records, exam_id)
    assert accepted.id != current.id and accepted.sources is None and accepted.hsd_mm == pytest.approx(current.hsd_mm)
    window.undo_stack.undo()  # back to the AoP's acceptance only, on screen and in the records
    assert window.current_state().whose()["hsd"] == "AI" and window.current_state().confirmed
    assert _screen_agrees_with_records(window, records, exam_id).sources["hsd"]["kind"] == AI
    window.undo_stack.redo()
    assert _screen_agrees_with_records(window, records, exam_id).sources is None


def test_a_calibration_set_from_the_cli_over_an_accepted_correction_opens_with_the_hsd_the_correctors(ward, records,
                                                                                                     qtbot):
    """The same over an accepted correction of the HSD end: reopened, the AoP is Dr Test's acceptance, the HSD his
    correction in the new mm, not accepted ("(corrected)" on the image, "not accepted" in the panel's column)."""
    window, exam_id = _accept_a_moved_hsd_end(ward, qtbot)
    _open_and_wait(window, ward[1], qtbot, ward[2][1])
    _calibrate_from_the_cli(records, exam_id)
    _open_and_wait(window, ward[1], qtbot, exam_id)
    state = window.current_state()
    assert state.confirmed and state.whose()["aop"] == "confirmed" and state.whose()["hsd"] == "corrected"
    assert state.corrected["hsd_mm"] == pytest.approx(0.3 * state.corrected["hsd_px"], rel=1e-3)
    assert _label(window.overlays.hsd_text).endswith("(corrected)")
    assert window.panel.value_text("corrected", "HSD").endswith("(corrected, not accepted)")
    assert "(" not in window.panel.value_text("corrected", "AoP")
    _screen_agrees_with_records(window, records, exam_id, tolerance=1e-3)


def test_a_manual_calibration_in_the_viewer_keeps_the_aops_acceptance_as_the_records_do(ward, records, qtbot):
    """(Before: the viewer withdrew the whole acceptance, AoP included, writing a row after the records' own that kept
    the AoP's.) A manual scale set in the viewer over an acceptance of the AI's values: the AoP stays accepted, the
    HSD goes back to the AI's, on screen and in the records, with no second row withdrawing the AoP's."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    confirmed = _open_and_accept(window, link, qtbot, records, exam_id)
    _manual(window)
    state = window.current_state()
    assert state.confirmed and state.whose()["aop"] == "confirmed" and state.whose()["hsd"] == "AI"
    assert _label(window.overlays.hsd_text).endswith("(AI)")
    current = _screen_agrees_with_records(window, records, exam_id)
    assert current.kind == CONFIRMATION and current.supersedes_id == confirmed.id
    assert "AoP stays confirmed" in current.note
    window.undo_stack.undo()  # the Accept: the AI's values, unaccepted, in the manual mm
    assert not window.current_state().confirmed
    _screen_agrees_with_records(window, records, exam_id)
    window.undo_stack.redo()
    _screen_agrees_with_records(window, records, exam_id)


def test_the_manual_calibration_bar_warns_where_a_drawn_scale_differs_from_the_files(ward, qtbot):
    """The window tells the bar the file's own scale when a manual calibration starts: a line giving 0.3 mm/px on a
    file of 0.2 mm/px is flagged before Apply (before: the bar never heard of the file's scale and said nothing)."""
    window, link, exam_ids, _ = ward
    _open_and_wait(window, link, qtbot, exam_ids[0])
    window.start_manual_calibration()
    bar = window.calibration_bar
    bar.set_length_px(200.0)
    bar.mm_spin.setValue(60.0)  # 0.3 mm/px
    assert "Warning" in bar.result_label.text() and "0.2000 mm/px" in bar.result_label.text()
    assert bar.apply_button.isEnabled()  # set all the same, once checked
    bar.mm_spin.setValue(40.0)  # 0.2 mm/px: the file's own
    assert "Warning" not in bar.result_label.text() and "0.2000 mm/px" in bar.result_label.text()
