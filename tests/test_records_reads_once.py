"""Each save reads the exam's measurement rows once per transaction, and an exam PDF reads them once: counted as the
SQL statements the records' connection runs (sqlite3's ``set_trace_callback``).

Before: a viewer's correction read the exam's rows 3 times in its write transaction (its current row, the AI basis of
its sources, the conflict check), a stale one refused 4 times, ``correct`` 4 times (twice in its transaction), a
calibration set on a screen's basis 3 times and their max(id) (through the measurement check, silenced with the
current row's id); an exam PDF 6 times, and its head-biometry rule read a frame result per row shown."""
from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

from records_support import synthetic_measurement
from test_records_review import Viewer, _dr_a_corrects_the_aop, exam, records  # noqa: F401 (fixtures)
from workstation.records import Records, ReviewConflict, correct, save_viewer_review
from workstation.records.calibration import set_exam_calibration
from workstation.records.review import BASED_ON_CALIBRATION
from workstation.reports.pdf import write_exam_report


class Reads:
    """The SQL statements run on the records' connection inside a ``with``."""

    def __init__(self, exam_id: int):
        self.exam_id, self.statements = exam_id, []

    def _selects(self, table: str) -> list[str]:
        return [s for s in self.statements if re.match(r"\s*SELECT\b", s) and re.search(rf"\bFROM {table}\b", s)]

    @property
    def measurements(self) -> int:
        """Every read of the measurements table (the exam's rows, or one row written, read back)."""
        return len(self._selects("measurements"))

    @property
    def exam_rows(self) -> int:
        """Reads of the exam's measurement rows."""
        return len([s for s in self._selects("measurements") if re.search(rf"\bexam_id = {self.exam_id}\b", s)])

    @property
    def frame_results(self) -> int:
        return len(self._selects("frame_results"))


@contextmanager
def counted(records: Records, exam_id: int):
    reads = Reads(exam_id)
    records._conn.set_trace_callback(reads.statements.append)
    try:
        yield reads
    finally:
        records._conn.set_trace_callback(None)


def test_a_viewers_save_reads_the_exams_rows_once(records, exam):
    window = Viewer(records, exam.id, "Midwife B")
    state = window.states[0]
    geometry = dict(state.current_geometry())
    geometry["hsd"] = dict(geometry["hsd"], end=[geometry["hsd"]["end"][0], geometry["hsd"]["end"][1] + 12.0])
    state.correct(geometry, window.calibration, window.frame_shape, "Midwife B")
    record = window.record(0, "correction", **{BASED_ON_CALIBRATION: None})
    with counted(records, exam.id) as reads:
        row = save_viewer_review(records, record)
    assert row.kind == "correction" and row.sources["aop"]["by"] == "tiny 0.0.1"  # the AI basis named, as before
    # Once for the transaction (the current row, the AI basis, the check), once the row written read back (was 3 + 1).
    assert (reads.exam_rows, reads.measurements) == (1, 2), reads.statements


def test_a_stale_save_is_refused_on_one_read_of_the_exams_rows(records, exam):
    window = Viewer(records, exam.id, "Midwife B")
    dr_a = _dr_a_corrects_the_aop(records, exam.id, 0)
    window.states[0].accept("Midwife B")
    with counted(records, exam.id) as reads:
        with pytest.raises(ReviewConflict, match="correction by Dr A") as refused:
            save_viewer_review(records, window.record(0, "accept"))
    assert refused.value.current.id == dr_a.id and refused.value.recorded["corrected_by"] == "Dr A"
    assert (reads.exam_rows, reads.measurements) == (1, 1), reads.statements  # was 4


def test_a_headless_correction_reads_the_rows_once_before_the_scan_and_once_in_its_transaction(records, exam):
    ai = records.current_measurement(exam.id)
    with counted(records, exam.id) as reads:
        row = _dr_a_corrects_the_aop(records, exam.id, 1)
    assert row.kind == "correction" and row.supersedes_id == ai.id
    assert (reads.exam_rows, reads.measurements) == (2, 3), reads.statements  # was 4 and 5
    with counted(records, exam.id) as reads:
        correct(records, exam.id, 1, synthetic_measurement(1)["geometry"], "Dr B", based_on_measurement_id=row.id)
    assert reads.exam_rows == 2, reads.statements


def test_a_calibration_checked_against_its_screens_basis_reads_the_rows_once(records, exam):
    with counted(records, exam.id) as reads:
        change = set_exam_calibration(records, exam.id, 0.2, "Dr C", based_on_calibration_id=None)
    assert change.calibration is not None and change.measurements
    assert reads.exam_rows == 1, reads.statements  # was 4: 3 reads of the rows, and their max(id)
    with counted(records, exam.id) as reads:
        with pytest.raises(ReviewConflict, match="the calibration of exam"):
            set_exam_calibration(records, exam.id, 0.3, "Dr D", based_on_calibration_id=None)
    assert reads.exam_rows == 1, reads.statements


def test_an_exam_pdf_reads_its_rows_once_and_the_frames_plane_classes_once(records, exam, tmp_path):
    with counted(records, exam.id) as reads:
        write_exam_report(records, exam.id, tmp_path / "ai.pdf")
    assert reads.exam_rows == 1, reads.statements  # was 6 (the timeline's, the key frame's 3, the tables' 2)
    for frame in (1, 2):
        _dr_a_corrects_the_aop(records, exam.id, frame)
    with counted(records, exam.id) as reads:
        write_exam_report(records, exam.id, tmp_path / "two.pdf")
    assert reads.exam_rows == 1, reads.statements
    few = reads.frame_results
    for frame in (3, 1, 2):  # a longer history, the value in force on the same frame
        _dr_a_corrects_the_aop(records, exam.id, frame)
    with counted(records, exam.id) as reads:
        write_exam_report(records, exam.id, tmp_path / "five.pdf")
    assert reads.exam_rows == 1, reads.statements
    assert reads.frame_results == few, reads.statements  # before: a frame result read for each row shown
