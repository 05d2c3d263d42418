"""Review 30: what the window shows against what the records hold (offscreen, real SQLite records, real mouse drags).

A. Two frames reviewed on one exam. The records keep one current measurement per exam (the last review saved, with
   its frame); the window keeps a review per frame. A frame whose review is not the exam's value on record (another
   frame's review was saved after it, or a Reset to AI / a calibration withdrew that one and the AI's value stands)
   says so plainly, on the image and in the panel, and never reads as the exam's current correction.
B. A row saved by an older version that adopted the AI's head outline whose biometry the AI withheld: its HC, GA stay
   in the records (timeline, PDF), the window does not show them as anyone's value, so the banner says so, and the
   outline stays on screen (dashed) to measure the head without a Reset to AI first.

Screenshots go to ``out/screenshots/review_on_record_*.png``.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtCore

from gui_support import OracleModel, make_window, mouse_drag, no_leftover_jobs  # noqa: F401 (fixtures)
from records_support import DEMO_FRAMES, three_exam_labor
from test_gui_window_records import (_correct_frames_0_and_2, _drag_tangent, _open_and_wait,  # noqa: F401
                                     _screen_agrees_with_records, records, ward)
from workstation.gui.panel import plain_text
from workstation.records import AI, CONFIRMATION, CORRECTION

pytestmark = pytest.mark.usefixtures("no_leftover_jobs")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"


def _shot(window, name: str) -> None:
    from PySide6 import QtWidgets

    for _ in range(3):  # the panel's layout settles (its wrapped lines take their height) before the grab
        QtWidgets.QApplication.processEvents()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / f"review_on_record_{name}.png"))


def _says_not_on_record(window) -> str:
    """What the panel says about the frame on screen not being the exam's value on record ('' where it says nothing)."""
    label = getattr(window.panel, "record_label", None)
    return plain_text(label) if label is not None and label.isVisibleTo(window.panel) else ""


def _not_on_record(window, frame: int) -> str | None:
    """Why the window says frame ``frame``'s review is not the exam's value on record (None: it says nothing)."""
    said = getattr(window, "review_not_on_record", None)
    return None if said is None else said(frame)


# -- A. two frames reviewed on one exam ---------------------------------------------------------------------------
def test_a_correction_superseded_by_another_frames_review_says_it_is_not_the_value_on_record(ward, records, qtbot):
    window, exam_id, on_frame_0 = _correct_frames_0_and_2(ward, records, qtbot)
    on_frame_2 = records.current_measurement(exam_id)
    assert (on_frame_2.kind, on_frame_2.frame_index) == (CORRECTION, 2)
    # Frame 2's correction is the exam's value on record: nothing more is said there.
    assert window.current_frame == 2 and not _says_not_on_record(window)
    assert _not_on_record(window, 2) is None
    assert "(corrected)" in window.overlays.aop_text.toPlainText()

    # Frame 0 still shows its own correction (nothing saved is lost), but not as the exam's current value.
    window.go_to_frame(0)
    state = window.current_state()
    assert state.is_corrected and state.corrected_by == "Dr Test"
    label = window.overlays.aop_text.toPlainText()
    assert "not on record" in label and not label.endswith("(corrected)"), label
    note = _says_not_on_record(window)
    assert "not the exam's value on record" in note and "correction by Dr Test of frame 2" in note, note
    assert f"{on_frame_2.aop_deg:.1f}°" in note  # the value the records hold, as the labels write it
    assert note.startswith(_not_on_record(window, 0)) and "Accept this frame" in note
    assert window.panel.corrected_header.text() == "Not on record"
    _shot(window, "superseded_by_frame_2")

    # Reset frame 2 to AI: the records hold the AI's value; frame 0's older correction does not become current.
    window.go_to_frame(2)
    window.reset_frame_to_ai()
    current = records.current_measurement(exam_id)
    assert current.kind == AI and current.frame_index == 2
    assert _not_on_record(window, 2) is None  # frame 2 shows the AI's values: nothing to say
    window.go_to_frame(0)
    note = _says_not_on_record(window)
    assert "not the exam's value on record" in note and "the AI's value of frame 2" in note, note
    assert "not on record" in window.overlays.aop_text.toPlainText()
    _shot(window, "after_reset_of_frame_2")
    _screen_agrees_with_records(window, records, exam_id)

    # Undo the reset, then frame 2's correction: frame 0's correction is on record again and says nothing more.
    window.undo_stack.undo()
    assert "correction by Dr Test of frame 2" in _not_on_record(window, 0)
    window.undo_stack.undo()
    current = _screen_agrees_with_records(window, records, exam_id)
    assert (current.kind, current.frame_index) == (CORRECTION, 0)
    assert _not_on_record(window, 0) is None
    window.go_to_frame(0)
    assert not _says_not_on_record(window) and "(corrected)" in window.overlays.aop_text.toPlainText()
    # Redo both: frame 0 is superseded again.
    window.undo_stack.redo()
    window.undo_stack.redo()
    current = records.current_measurement(exam_id)
    assert (current.kind, current.frame_index) == (AI, 2)  # the reset redone
    assert "the AI's value of frame 2" in _not_on_record(window, 0)
    _screen_agrees_with_records(window, records, exam_id)


def test_accepting_the_superseded_frame_makes_it_the_value_on_record_and_the_other_says_so(ward, records, qtbot):
    window, exam_id, _ = _correct_frames_0_and_2(ward, records, qtbot)
    window.go_to_frame(0)
    window.accept_frame()
    current = records.current_measurement(exam_id)
    assert (current.kind, current.frame_index, current.by) == (CONFIRMATION, 0, "Dr Test")
    assert not _says_not_on_record(window)
    assert "acceptance by Dr Test of frame 0" in _not_on_record(window, 2)
    _screen_agrees_with_records(window, records, exam_id)


def test_a_calibration_withdrawing_another_frames_acceptance_leaves_this_frames_correction_named(ward, records,
                                                                                                  qtbot):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45))
    window.go_to_frame(2)
    window.accept_frame()  # the AI's values of frame 2, accepted: the exam's value on record
    assert records.current_measurement(exam_id).kind == CONFIRMATION
    assert "acceptance by Dr Test of frame 2" in _not_on_record(window, 0)
    window.set_calibration(window.file_calibration.with_manual(0.5, detail="test manual"))
    current = records.current_measurement(exam_id)
    assert current.kind == AI and current.frame_index == 2  # the acceptance withdrawn: its values changed
    assert not window.analysis.states[2].confirmed
    assert "the AI's value of frame 2" in _not_on_record(window, 0)
    window.go_to_frame(0)
    assert "the AI's value of frame 2" in _says_not_on_record(window)
    _screen_agrees_with_records(window, records, exam_id)


def test_a_file_outside_the_records_never_says_a_review_is_not_on_record(make_window, qtbot, tmp_path):
    from gui_support import open_and_analyse, write_demo

    window = make_window()
    open_and_analyse(qtbot, window, write_demo(tmp_path / "scans"))
    _drag_tangent(window, qtbot, QtCore.QPoint(-30, 45))
    window.go_to_frame(2)
    _drag_tangent(window, qtbot, QtCore.QPoint(-20, 30))
    assert _not_on_record(window, 0) is None and _not_on_record(window, 2) is None
    window.go_to_frame(0)
    assert not _says_not_on_record(window) and "(corrected)" in window.overlays.aop_text.toPlainText()
