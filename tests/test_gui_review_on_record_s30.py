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

import numpy as np
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
    # The HSD's acceptance withdrawn (its mm changed), the AoP's kept: still the acceptance of frame 2 on record.
    assert current.kind == CONFIRMATION and current.frame_index == 2 and current.sources["hsd"]["kind"] == AI
    assert window.analysis.states[2].whose()["hsd"] == "AI" and window.analysis.states[2].confirmed
    assert "acceptance by Dr Test of frame 2" in _not_on_record(window, 0)
    window.go_to_frame(0)
    assert "acceptance by Dr Test of frame 2" in _says_not_on_record(window)
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


# -- B. an older version's row that adopted the AI's withheld head outline --------------------------------------
class HeadPlaneOracle(OracleModel):
    """The oracle's label maps on frames it classes an axial head plane, less sure of that than the manifest's floor:
    the AI fits the head ellipse and withholds its HC, BPD, OFD and GA ("not sure this is an axial head plane")."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.manifest.min_head_plane_probability = 0.9

    def predict(self, frames, tta: bool = False, aspect: float = 1.0):
        from workstation.inference.engine import FramePrediction

        plane = np.array([0.1, 0.1, 0.7, 0.1], np.float32)  # not_transperineal, 0.7 < 0.9
        return [FramePrediction(p.probs, plane, None, 0.0) for p in super().predict(frames, tta, aspect)]


def _old_row_adopting_the_withheld_outline(window, records, exam_id):
    """A correction of the HSD end on frame 0 as versions before review 29 saved it: the AI's withheld head ellipse
    adopted with the rest of the geometry and measured as the person's (HC, BPD, OFD, GA), no sources (schema 2)."""
    from workstation.cine_review import recompute_json

    ai = window.analysis.states[0].ai
    geometry = {**ai["geometry"], "hsd": {**ai["geometry"]["hsd"],
                                          "end": [ai["geometry"]["hsd"]["end"][0], ai["geometry"]["hsd"]["end"][1] + 6]}}
    values = recompute_json(geometry, window.analysis.calibration, window.analysis.frame_shape, "not_transperineal")
    assert values["hc_mm"] is not None and values["ga_weeks"] is not None
    current = records.current_measurement(exam_id)
    return records.add_measurement(exam_id, CORRECTION, "Dr Old", values, supersedes_id=current.id, frame_index=0,
                                   geometry=geometry, calibration_source=values["calibration"]["source"],
                                   reasons=values["reasons"])


@pytest.fixture
def head_plane_ward(make_window, records, tmp_path, qtbot):
    from workstation.gui.records_link import attach_records

    exam_ids = three_exam_labor(records, tmp_path / "usb")
    oracle = HeadPlaneOracle(n_frames=DEMO_FRAMES, seed=0)
    window = make_window(model_provider=lambda: oracle, size=(1500, 950))
    link = attach_records(window, records, analyze=False)
    return window, link, exam_ids[0]


def test_an_old_row_that_adopted_the_ais_withheld_head_outline_is_named_and_the_head_can_be_measured(
        head_plane_ward, records, qtbot):
    window, link, exam_id = head_plane_ward
    _open_and_wait(window, link, qtbot, exam_id)
    ai = window.current_state().ai
    assert ai["ai_biometry_withheld"] and ai["geometry"]["head_ellipse"] and ai["hc_mm"] is None
    old = _old_row_adopting_the_withheld_outline(window, records, exam_id)
    rows = len(records.measurements(exam_id))

    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    assert window.current_frame == 0 and state.corrected_by == "Dr Old"
    assert state.corrected["hc_mm"] is None  # never shown as Dr Old's: the AI withheld it
    banner = window.error_banner.text
    assert "Dr Old" in banner and f"HC {old.hc_mm:.1f} mm" in banner, banner
    assert "withheld" in banner and "not sure this is an axial head plane" in banner, banner
    assert "head outline" in banner and len(records.measurements(exam_id)) == rows  # opening saves nothing
    # The AI's outline stays on screen, dashed, to measure the head without a Reset to AI first.
    roi = window.calipers.ellipse_roi
    assert roi.isVisible() and "withheld" in roi.toolTip()
    assert roi.pen.style() == QtCore.Qt.PenStyle.DashLine
    _shot(window, "old_row_adopting_the_withheld_outline")

    ellipse = ai["geometry"]["head_ellipse"]
    centre = window.frame_to_viewport(*ellipse["center"])
    offset = QtCore.QPoint(0, 40)
    mouse_drag(qtbot, window, centre + offset, centre + offset + QtCore.QPoint(12, 8))
    state = window.current_state()
    assert state.corrected["geometry"]["head_ellipse"]["center"][0] > ellipse["center"][0] + 3
    assert state.corrected["hc_mm"] is not None and state.sources()["head"]["by"] == "Dr Test"
    row = records.current_measurement(exam_id)
    assert (row.kind, row.by, row.supersedes_id) == (CORRECTION, "Dr Test", old.id)
    assert row.hc_mm == pytest.approx(state.corrected["hc_mm"])
    _shot(window, "withheld_outline_measured")


def test_a_correction_of_other_calipers_on_a_withheld_head_plane_keeps_the_outline_to_move(head_plane_ward, records,
                                                                                         qtbot):
    """In the viewer now: moving another caliper never adopts the AI's outline, and the outline stays on screen (dashed)
    to be moved, rather than disappearing with the drop. (On this axial head plane the HSD is withheld, so moving its
    end changes no value and is no correction at all: review 30, finding 10.)"""
    window, link, exam_id = head_plane_ward
    _open_and_wait(window, link, qtbot, exam_id)
    rows = len(records.measurements(exam_id))
    start = window.handle_viewport_pos("hsd_end")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(8, 20))
    state = window.current_state()
    assert not state.is_corrected and window.undo_stack.count() == 0 and len(records.measurements(exam_id)) == rows
    assert state.current()["hc_mm"] is None
    roi = window.calipers.ellipse_roi
    assert roi.isVisible() and "withheld" in roi.toolTip()
    # the head stays the AI's (withheld), not the person's
    assert state.sources()["head"]["kind"] == AI
    assert records.current_measurement(exam_id).kind == AI  # nothing written
