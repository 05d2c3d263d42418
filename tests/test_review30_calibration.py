"""Review 30, findings 3 and 5: a manual scale's one plausible range (CLI, records and the viewer's bar), its
disagreement with the file's own, its digits; a calibration withdrawing only the acceptances of values it changes."""
from __future__ import annotations

import warnings

import pydicom
import pytest

from records_support import add_ai_row, demo_exam_file, run_cli
from workstation.calibration import (MANUAL_MM_PER_PX_RANGE, Calibration, Scale, describe_mm_per_px,
                                     manual_scale_disagreement, manual_scale_problem)
from workstation.records import AI, CONFIRMATION, CORRECTION, Records, import_scan, set_exam_calibration
from workstation.records.review import confirm, correct
from workstation.sources import source_of


@pytest.fixture
def data(tmp_path):
    return tmp_path / "data"


# -- finding 3: the manual scale's one plausible range, its disagreement with the file's, its digits -----------------
@pytest.mark.parametrize("value", [1e-9, 0.0099, 2.01, 9.99, 0.0, -0.2, float("nan"), float("inf"), "x"])
def test_a_manual_scale_no_ultrasound_image_has_is_refused_by_the_one_rule(value):
    problem = manual_scale_problem(value)
    assert problem is not None and "\n" not in problem
    with pytest.raises(ValueError):
        Calibration.manual_mm_per_px(value)
    with pytest.raises(ValueError):
        Calibration().with_manual(value)


@pytest.mark.parametrize("value", [MANUAL_MM_PER_PX_RANGE[0], 0.0125, 0.2, 1.0, MANUAL_MM_PER_PX_RANGE[1]])
def test_a_plausible_manual_scale_is_taken(value):
    assert manual_scale_problem(value) is None
    assert Calibration.manual_mm_per_px(value).manual.mm_per_px_x == value


def test_a_scale_is_written_with_four_significant_digits():
    assert describe_mm_per_px(0.0125) == "0.01250 mm/px" and describe_mm_per_px(0.2) == "0.2000 mm/px"
    assert describe_mm_per_px(1e-9) == "1.000e-09 mm/px"  # never 0.0000


def test_a_manual_scale_far_from_the_files_is_named_with_by_how_much():
    file_calibration = Calibration(pixel_spacing=Scale(0.2, 0.2, "pixel_spacing"))
    assert manual_scale_disagreement(file_calibration, 0.204, (100, 100)) is None  # 2%: a hand-laid line
    assert "50% more than the file's own 0.2000 mm/px" in manual_scale_disagreement(file_calibration, 0.3, (100, 100))
    assert "1/4 of the file's own" in manual_scale_disagreement(file_calibration, 0.05, (100, 100))
    assert manual_scale_disagreement(Calibration(), 0.3, (100, 100)) is None  # the file has no scale of its own
    # a file's scale already overridden by a manual one is compared by the file's own
    assert "50% more" in manual_scale_disagreement(file_calibration.with_manual(0.25), 0.3, (100, 100))


def test_calibrate_refuses_an_absurd_scale_and_warns_of_one_far_from_the_files(tmp_path, data, capsys):
    """Before: 1e-9 was taken ('manual 0.0000 mm/px ... HSD 0.0 mm'), 9.99 too, and 0.3 against the file's 0.2 was
    set without a word."""
    with Records(data) as records:
        exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0)).exam
        add_ai_row(records, exam.id, 1)
    base = ["--exam", str(exam.id), "--user", "Ann", "--data-dir", str(data)]
    for bad in ("1e-9", "9.99"):
        assert run_cli(["calibrate", "--mm-per-px", bad, *base]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: exam {exam.id}: a manual calibration of ")
        assert "outside the plausible range for an ultrasound image (0.01 to 2 mm per pixel)" in err[0]
    with Records(data) as records:
        assert records.calibrations(exam.id) == []
    assert run_cli(["calibrate", "--mm-per-px", "0.0125", *base]) == 0
    captured = capsys.readouterr()
    assert "manual 0.01250 mm/px" in captured.out and "0.0000" not in captured.out
    assert captured.err.startswith(f"warning: exam {exam.id}: the manual 0.01250 mm/px is 1/")
    assert run_cli(["calibrate", "--mm-per-px", "0.21", *base]) == 0  # within 5% of the file's 0.2: no warning
    assert capsys.readouterr().err == ""


def test_a_stored_scale_outside_the_range_is_named_with_what_to_do(tmp_path, data, monkeypatch):
    """A manual calibration kept before the range was checked is never applied: one line says which, and how to
    mend it; the rows stay."""
    from workstation.records import store
    from workstation.records.calibration import exam_calibration
    from workstation.records.database import RecordsError

    with Records(data) as records:
        exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0)).exam
        with monkeypatch.context() as patched:  # a row kept when only "above 0" was checked
            patched.setattr(store, "checked_mm_per_px", float)
            records.add_calibration(exam.id, "manual", "Ann", mm_per_px=1e-9, detail="entered by Ann")
        with pytest.raises(RecordsError, match=r"--file-calibration"):
            exam_calibration(records, exam.id, Calibration())


def test_the_gui_calibration_bar_uses_the_core_range_and_warns(qtbot):
    from workstation.gui.calibration_tool import CalibrationBar

    bar = CalibrationBar()
    qtbot.addWidget(bar)
    bar.mm_spin.setValue(0.5)
    bar.set_length_px(400.0)  # 0.00125 mm/px: the GUI's old bounds (0.5-500 mm over >= 5 px) let it through
    assert not bar.apply_button.isEnabled() and "0.01 to 2 mm per pixel" in bar.result_label.text()
    bar.mm_spin.setValue(500.0)
    bar.set_length_px(5.0)  # 100 mm/px
    assert not bar.apply_button.isEnabled()
    applied = []
    bar.applied.connect(lambda *args: applied.append(args))
    bar._apply()
    assert applied == []
    bar.set_file_calibration(Calibration(pixel_spacing=Scale(0.2, 0.2, "pixel_spacing")), (100, 100))
    bar.mm_spin.setValue(60.0)
    bar.set_length_px(200.0)  # 0.3 mm/px
    assert bar.apply_button.isEnabled() and "50% more than the file's own 0.2000 mm/px" in bar.result_label.text()
    bar._apply()
    assert applied and applied[0][0] == pytest.approx(0.3)


# -- finding 5: a calibration withdraws only the acceptances of values it changes -------------------------------------
def _confirmed_exam(tmp_path, records, path=None):
    exam = import_scan(records, path or demo_exam_file(tmp_path / "usb", seed=0)).exam
    add_ai_row(records, exam.id, 1)
    confirm(records, exam.id, "Dr Test")
    return exam


def test_an_isotropic_scale_keeps_the_aops_acceptance_and_withdraws_the_hsds(tmp_path, data, capsys):
    """Before: 'confirmation by Dr Test withdrawn (its values changed)' and the exam an AI point, though its AoP
    cannot change with an isotropic scale."""
    from workstation.records.timeline import labor_timeline

    with Records(data) as records:
        exam = _confirmed_exam(tmp_path, records)
        before = records.current_measurement(exam.id)
        change = set_exam_calibration(records, exam.id, 0.3, "Cal")
        current = records.current_measurement(exam.id)
        assert change.measurements[-1].id == current.id
        assert (current.kind, current.by) == (CONFIRMATION, "Dr Test")
        assert current.aop_deg == pytest.approx(before.aop_deg)
        assert current.hsd_mm == pytest.approx(0.3 * current.hsd_px, rel=1e-3)
        assert (source_of(current, "aop")["kind"], source_of(current, "aop")["by"]) == (CONFIRMATION, "Dr Test")
        assert source_of(current, "hsd")["kind"] == AI
        assert "its acceptance of the HSD" in current.note and "the AoP stays confirmed" in current.note
        point = labor_timeline(records, exam.labor_id)["points"][0]
        assert (point["source"], point["hsd_source"]) == ("confirmed", "ai")
        # back to the file's: the HSD is back to the mm Dr Test saw, but nobody accepted it again; the AoP's holds
        set_exam_calibration(records, exam.id, None, "Cal")
        again = records.current_measurement(exam.id)
        assert again.kind == CONFIRMATION and source_of(again, "aop")["kind"] == CONFIRMATION
        assert source_of(again, "hsd")["kind"] == AI
    assert run_cli(["timeline", "--labor", str(exam.labor_id), "--data-dir", str(data)]) == 0
    assert "AoP confirmation by Dr Test, HSD AI" in capsys.readouterr().out


def test_an_accepted_correction_keeps_the_aops_acceptance_and_the_hsd_goes_back_to_the_corrector(tmp_path, data):
    with Records(data) as records:
        exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0)).exam
        ai = add_ai_row(records, exam.id, 1)
        end = ai.geometry["hsd"]["end"]
        correct(records, exam.id, 1, {"hsd": {"end": [end[0] + 4, end[1] + 3]}}, "Dr A")
        confirm(records, exam.id, "Dr B")
        set_exam_calibration(records, exam.id, 0.3, "Cal")
        current = records.current_measurement(exam.id)
        assert (current.kind, current.by) == (CONFIRMATION, "Dr B")
        assert (source_of(current, "aop")["kind"], source_of(current, "aop")["by"]) == (CONFIRMATION, "Dr B")
        assert (source_of(current, "hsd")["kind"], source_of(current, "hsd")["by"]) == (CORRECTION, "Dr A")
        # a second scale: the HSD is measured again from Dr A's line, still hers; the AoP's acceptance still holds
        set_exam_calibration(records, exam.id, 0.35, "Cal")
        current = records.current_measurement(exam.id)
        assert current.kind == CONFIRMATION and current.hsd_mm == pytest.approx(0.35 * current.hsd_px, rel=1e-3)
        assert (source_of(current, "hsd")["kind"], source_of(current, "hsd")["by"]) == (CORRECTION, "Dr A")
        assert source_of(current, "aop")["kind"] == CONFIRMATION


def test_a_scale_that_changes_the_pixels_shape_withdraws_the_aops_acceptance_too(tmp_path, data):
    """A file whose rows are 1.25 times as tall as its columns: a square manual scale changes the AoP, so its
    acceptance goes with the HSD's (the AI's values stand)."""
    path = demo_exam_file(tmp_path / "usb", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        region = ds.SequenceOfUltrasoundRegions[0]
        region.PhysicalDeltaY = 1.25 * float(region.PhysicalDeltaX)
        ds.save_as(path)
    with Records(data) as records:
        exam = _confirmed_exam(tmp_path, records, path)
        before = records.current_measurement(exam.id)
        set_exam_calibration(records, exam.id, 10 * float(region.PhysicalDeltaX), "Cal")
        current = records.current_measurement(exam.id)
        assert abs(current.aop_deg - before.aop_deg) >= 0.05
        assert current.kind == AI and "confirmation by Dr Test withdrawn" in current.note
