"""A calibration the window sets on an exam whose calibration someone else changed meanwhile (a second app copy,
`workstation calibrate`) must not be saved silently over theirs: it is refused as a review on a stale screen is.
``set_exam_calibration(..., based_on_calibration_id=...)``: the window passes the calibration row its screen was
measured in."""
from __future__ import annotations

import pytest

from gui_support import OracleModel, make_window, no_leftover_jobs  # noqa: F401 (fixtures)
from records_support import DEMO_FRAMES, three_exam_labor
from workstation.records import Records

pytestmark = pytest.mark.usefixtures("no_leftover_jobs")


def test_a_calibration_set_on_a_screen_made_stale_by_someone_elses_calibration_is_refused(make_window, qtbot,
                                                                                         tmp_path):
    from workstation.gui.records_link import attach_records
    from workstation.records import set_exam_calibration

    with Records(tmp_path / "data") as records:
        exam_ids = three_exam_labor(records, tmp_path / "usb")
        exam_id = exam_ids[0]
        oracle = OracleModel(n_frames=DEMO_FRAMES, seed=0)
        window = make_window(model_provider=lambda: oracle, size=(1500, 950))
        link = attach_records(window, records, analyze=False)
        with qtbot.waitSignal(window.analysisFinished, timeout=60_000):
            link.panel.open_exam(exam_id)
        assert window.analysis.calibration.manual is None  # the file's own, as on record
        with Records(tmp_path / "data") as elsewhere:  # `workstation calibrate` meanwhile
            theirs = set_exam_calibration(elsewhere, exam_id, 0.5, "Dr B").calibration
        rows = [m.id for m in records.measurements(exam_id)]

        window.set_calibration(window.file_calibration.with_manual(0.3, detail="drawn on the depth scale"))

        kept = records.manual_calibration(exam_id)
        assert (kept.id, kept.mm_per_px, kept.by) == (theirs.id, 0.5, "Dr B")  # theirs is not overwritten
        assert [m.id for m in records.measurements(exam_id)] == rows  # nothing written
        banner = window.error_banner.text
        assert banner.startswith(f"Not saved: the calibration of exam {exam_id} was changed since it was opened here: "
                                 "manual 0.5000 mm/px") and "Dr B" in banner and "\n" not in banner
        # the screen shows the calibration on record, whose values the next review is saved in
        assert window.analysis.calibration.manual.mm_per_px_x == pytest.approx(0.5)
