"""An exam's calibration in the records (``workstation.records.calibration``) on an exam with no analysed frame result
(imported without a model): a person's value absent for its scale says why it is absent now, and comes back in a
scale that gives it."""
from __future__ import annotations

import pytest

from records_support import three_exam_labor
from workstation.records import CORRECTION, Records, set_exam_calibration
from workstation.records.review import correct


@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


def test_a_recalibrated_persons_ga_absent_for_its_hc_says_the_current_reason_and_comes_back(records, tmp_path):
    exam_id = three_exam_labor(records, tmp_path / "usb")[0]
    assert records.latest_analysis(exam_id) is None  # no frame result: the row itself is all there is
    geometry = records.current_measurement(exam_id).geometry
    x, y = geometry["aop"]["tangent_point"]
    unal = correct(records, exam_id, 0, {"aop": {**geometry["aop"], "tangent_point": [x - 20, y + 20]}}, "Dr Unal")
    assert unal.ga_weeks is not None

    set_exam_calibration(records, exam_id, 0.5, "Dr B")  # HC 451 mm: outside the Hadlock range
    row = records.current_measurement(exam_id)
    assert (row.kind, row.by, row.ga_weeks) == (CORRECTION, "Dr Unal", None)
    assert f"HC {row.hc_mm:.1f} mm is outside the Hadlock" in row.reasons["ga_weeks"]

    set_exam_calibration(records, exam_id, 0.02, "Dr B")  # HC 18 mm: outside too, the other way
    row = records.current_measurement(exam_id)
    assert row.ga_weeks is None and row.hc_mm == pytest.approx(unal.hc_mm / 10, rel=1e-3)
    assert f"HC {row.hc_mm:.1f} mm is outside the Hadlock" in row.reasons["ga_weeks"], row.reasons

    set_exam_calibration(records, exam_id, None, "Dr B")  # the file's again: its GA is back
    row = records.current_measurement(exam_id)
    assert row.ga_weeks == pytest.approx(unal.ga_weeks, abs=1e-3) and "ga_weeks" not in row.reasons
