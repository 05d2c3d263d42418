"""Review 29, finding 3: one rule for a confirmation, in the window and headless: a frame with no measured value
has nothing to accept. The window's Accept is disabled there (its tooltip says why), Ctrl+Return saves nothing,
and the records refuse a viewer's confirmation of no value as ``workstation confirm`` does."""
from __future__ import annotations

import pytest

from gui_support import OracleModel, make_window, no_leftover_jobs  # noqa: F401
from records_support import demo_exam_file
from workstation.records import Records, RecordsError, confirm, import_scan, save_viewer_review

pytestmark = pytest.mark.usefixtures("no_leftover_jobs")


@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


def test_accept_is_disabled_on_a_frame_with_no_value_and_nothing_is_saved(make_window, records, qtbot, tmp_path):
    from workstation.gui.records_link import attach_records

    # The oracle knows seed 0's frames only: this exam's frames (seed 7) show no anatomy, so no value at all.
    exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=7)).exam
    oracle = OracleModel()
    window = make_window(model_provider=lambda: oracle)
    link = attach_records(window, records, analyze=False)
    assert link.panel.select_labor(exam.labor_id)
    with qtbot.waitSignal(window.analysisFinished, timeout=60_000):
        link.panel.open_exam(exam.id)
    state = window.current_state()
    assert state is not None and state.current().get("aop_deg") is None
    button = window.panel.accept_button
    assert not button.isEnabled()
    assert "no measured value" in button.toolTip()
    window.accept_frame()  # Edit > Accept frame, Ctrl+Return
    assert not state.confirmed
    assert all(m.kind == "ai" for m in records.measurements(exam.id))
    assert "no measured value to confirm" in window.statusBar().currentMessage()
    with pytest.raises(RecordsError, match="no measured value to confirm"):
        confirm(records, exam.id, "Dr Lee")  # the CLI's rule: the same


def test_the_records_refuse_a_viewers_confirmation_of_no_value(records, tmp_path):
    exam = import_scan(records, demo_exam_file(tmp_path, seed=0)).exam
    review = {"exam_id": exam.id, "frame_index": 0, "confirmed": True, "confirmed_by": "Dr Gui", "corrected": None,
              "ai": {"aop_deg": None, "hsd_px": None, "reasons": {"aop_deg": "no fetal head in the label map"}},
              "ai_geometry": {}, "time_s": 0.0, "calibration_source": "none"}
    with pytest.raises(RecordsError, match="exam 1 has no measured value to confirm on frame 0"):
        save_viewer_review(records, review)
    assert records.measurements(exam.id) == []
