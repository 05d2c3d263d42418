"""The patient-records and labour-timeline panels (pytest-qt, offscreen) over real records.

The acceptance flow of issue 6 in the window: three exams of one labour imported through the panel's
worker, one corrected by a person, the timeline drawing that point as a person's, a click on a point asking
to open the exam at its frame, and the labour PDF written by the worker. Screenshots go to
``out/screenshots/gui_records_*.png`` (look at them when the panels change).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
from datetime import date
from pathlib import Path

import pytest

from PySide6.QtCore import QDate, Qt  # noqa: E402
from PySide6.QtGui import QPainter, QPalette, QPixmap  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QWidget  # noqa: E402

from gui_support import make_window, start_the_app_on  # noqa: E402,F401
from records_support import (add_ai_row, demo_exam_file, synthetic_measurement,  # noqa: E402
                             three_exam_labor, tiny_model)
from workstation.gui.records_dock import NewPatientDialog, PatientRecordsWidget  # noqa: E402
from workstation.gui import timeline_dock  # noqa: E402
from workstation.gui.timeline_dock import LaborTimelineWidget  # noqa: E402
from workstation.records import Records, correct, import_scan  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"
WORKER_TIMEOUT_MS = 30_000


def screenshot(widget: QWidget, name: str) -> Path:
    QApplication.sendPostedEvents()  # pending re-layouts (new texts) first, as the screen would show them
    QApplication.processEvents()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"gui_records_{name}.png"
    assert widget.grab().save(str(path)), f"could not save {path}"
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


@pytest.fixture
def scans(tmp_path) -> list[Path]:
    """Three scans of MRN-0042 taken 0, 1.5 and 3 h into the labour (4-frame demo cines, distinct seeds)."""
    return [demo_exam_file(tmp_path / "usb", seed, hours) for seed, hours in ((0, 0.0), (1, 1.5), (2, 3.0))]


@pytest.fixture
def panel(qtbot, records, model):
    widget = PatientRecordsWidget(records, model_provider=lambda: model)
    qtbot.addWidget(widget)
    widget.resize(560, 780)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    assert widget.wait_for_jobs(WORKER_TIMEOUT_MS), "a worker job was still running at the end of the test"
    qtbot.wait(10)  # deliver the jobs' last queued signals while the widget is alive


@pytest.fixture
def timeline(qtbot, records):
    widget = LaborTimelineWidget(records)
    qtbot.addWidget(widget)
    widget.resize(640, 480)
    widget.show()
    qtbot.waitExposed(widget)  # laid out: points are where a click maps them
    return widget


def screenshot_side_by_side(widgets: list[QWidget], name: str) -> Path:
    QApplication.sendPostedEvents()
    QApplication.processEvents()
    pixmaps = [w.grab() for w in widgets]
    canvas = QPixmap(sum(p.width() for p in pixmaps), max(p.height() for p in pixmaps))
    canvas.fill(widgets[0].palette().color(QPalette.ColorRole.Window))
    painter = QPainter(canvas)
    x = 0
    for pixmap in pixmaps:
        painter.drawPixmap(x, 0, pixmap)
        x += pixmap.width()
    painter.end()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"gui_records_{name}.png"
    assert canvas.save(str(path)), f"could not save {path}"
    return path


def _cell(table, row: int, column: int) -> str:
    return table.item(row, column).text()


def _column(table, column: int) -> list[str]:
    return [_cell(table, row, column) for row in range(table.rowCount())]


def _visible_mrns(panel) -> list[str]:
    table = panel.patient_table
    return [_cell(table, row, 0) for row in range(table.rowCount()) if not table.isRowHidden(row)]


def test_new_patient_dialog_refuses_bad_values_then_creates_the_patient_and_search_filters(panel, qtbot, records):
    records.get_or_create_patient("MRN-0001", "Roe, Ann")
    panel.refresh()
    assert _column(panel.patient_table, 0) == ["MRN-0001"]

    qtbot.mouseClick(panel.new_patient_button, Qt.MouseButton.LeftButton)
    dialog = panel.dialog
    assert isinstance(dialog, NewPatientDialog) and dialog.isVisible()
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)  # no MRN
    assert dialog.isVisible() and dialog.error_label.isVisible()
    assert "Enter the patient's MRN" in dialog.error_label.text()
    qtbot.keyClicks(dialog.mrn_edit, "MRN-0001")  # taken
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "already exists (Roe, Ann)" in dialog.error_label.text()
    dialog.resize(420, dialog.sizeHint().height())
    screenshot(dialog, "new_patient_refused")

    dialog.mrn_edit.clear()
    qtbot.keyClicks(dialog.mrn_edit, "  MRN-0077 ")
    qtbot.keyClicks(dialog.name_edit, "Doe, Jane")
    qtbot.mouseClick(dialog.birth_known, Qt.MouseButton.LeftButton)
    dialog.birth_edit.setDate(QDate(1994, 5, 6))
    with qtbot.waitSignal(panel.recordsChanged, timeout=2000):
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    created = records.patient_by_mrn("MRN-0077")
    assert created is not None and created.name == "Doe, Jane" and created.birth_date == date(1994, 5, 6).isoformat()
    assert panel.selected_patient_id() == created.id
    assert _column(panel.patient_table, 0) == ["MRN-0001", "MRN-0077"]

    qtbot.keyClicks(panel.search_edit, "jane")  # by name, any case
    assert _visible_mrns(panel) == ["MRN-0077"] and panel.selected_patient_id() == created.id
    panel.search_edit.clear()
    qtbot.keyClicks(panel.search_edit, "0001")  # by MRN; the hidden patient is no longer selected
    assert _visible_mrns(panel) == ["MRN-0001"] and panel.selected_patient_id() is None
    panel.search_edit.clear()
    assert _visible_mrns(panel) == ["MRN-0001", "MRN-0077"]


def test_new_labour_dialog_refuses_a_start_in_the_future_and_creates_the_labour(panel, qtbot, records):
    patient = records.get_or_create_patient("MRN-0042", "Doe, Jane")
    panel.refresh()
    assert not panel.new_labor_button.isEnabled()  # no patient selected
    panel.select_patient(patient.id)
    qtbot.mouseClick(panel.new_labor_button, Qt.MouseButton.LeftButton)
    dialog = panel.dialog
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    dialog.explicit.setChecked(True)
    dialog.start_edit.setDateTime(dialog.start_edit.dateTime().addDays(1))
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "in the future" in dialog.error_label.text()
    dialog.start_edit.setDateTime(dialog.start_edit.dateTime().addDays(-1).addSecs(-3 * 3600))
    qtbot.keyClicks(dialog.notes_edit, "G1P0, epidural")
    with qtbot.waitSignal(panel.laborSelected, timeout=2000) as selected:
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    labor = records.labors(patient.id)[0]
    assert selected.args == [labor.id] and panel.selected_labor_id() == labor.id
    assert labor.start_source == "explicit" and labor.notes == "G1P0, epidural"
    assert _column(panel.labor_table, 3) == ["G1P0, epidural"]


def test_import_through_the_worker_then_open_and_history(panel, qtbot, records, scans, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(p) for p in scans], ""))
    with qtbot.waitSignal(panel.importFinished, timeout=WORKER_TIMEOUT_MS) as finished:
        qtbot.mouseClick(panel.import_button, Qt.MouseButton.LeftButton)
        assert panel.busy and not panel.import_button.isEnabled()  # the work is in the pool, not in this call
    outcome = finished.args[0]
    assert len(outcome.imported) == 3 and not outcome.failures and not outcome.mismatches
    qtbot.waitUntil(lambda: not panel.busy and panel.exam_table.rowCount() == 3, timeout=2000)

    patient = records.patient_by_mrn("MRN-0042")  # filed under the files' Patient ID
    assert _column(panel.patient_table, 0) == ["MRN-0042"] and _column(panel.patient_table, 1) == ["Doe, Jane"]
    assert panel.selected_patient_id() == patient.id and panel.labor_table.rowCount() == 1
    exams = records.exams(panel.selected_labor_id())
    assert _column(panel.exam_table, 0) == [str(e.id) for e in exams]
    assert _column(panel.exam_table, 1) == ["2026-03-01 10:00", "2026-03-01 11:30", "2026-03-01 13:00"]
    assert _column(panel.exam_table, 5) == ["4", "4", "4"] and _column(panel.exam_table, 3) == ["AI"] * 3
    assert panel.placeholder_label.isVisibleTo(panel)  # the tiny model is a placeholder: said on screen
    assert "Imported 3 exams" in panel.status_label.text()

    # Importing the same files again files nothing new.
    with qtbot.waitSignal(panel.importFinished, timeout=WORKER_TIMEOUT_MS) as again:
        panel.import_files(scans)
    assert not again.args[0].imported and "3 already in the records" in panel.status_label.text()

    # Values (the tiny model finds no AoP on the demo cine) and one person's correction.
    for exam, frame in zip(exams, (0, 1, 3)):
        add_ai_row(records, exam.id, frame)
    correct(records, exams[1].id, 1, {"aop": synthetic_measurement(2)["geometry"]["aop"]}, "Dr Smith",
            note="tangent on the skull")
    panel.refresh()
    aops = _column(panel.exam_table, 2)
    assert all(text.endswith("°") for text in aops)
    assert aops[1] == f"{records.current_measurement(exams[1].id).aop_deg:.1f}°"
    # Only the AoP parts were corrected: the HSD is still the AI's (review 29 finding 2).
    assert _column(panel.exam_table, 3) == ["AI", "AoP corrected by Dr Smith, HSD AI", "AI"]
    assert all(text.endswith(" mm") for text in _column(panel.exam_table, 4))  # the demo DICOM is calibrated
    screenshot(panel, "panel")

    # Double-click opens the exam at its current measurement's frame.
    where = panel.exam_table.visualItemRect(panel.exam_table.item(2, 2)).center()
    with qtbot.waitSignal(panel.examOpenRequested, timeout=2000) as opened:
        QTest.mouseClick(panel.exam_table.viewport(), Qt.MouseButton.LeftButton, pos=where)  # a view needs the press
        QTest.mouseDClick(panel.exam_table.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert opened.args == [exams[2].id, 3]

    # History: every row of the audit trail, the person's marked so.
    panel.select_exam(exams[1].id)
    qtbot.mouseClick(panel.history_button, Qt.MouseButton.LeftButton)
    history = panel.dialog
    rows = records.history(exams[1].id)
    table = history.table
    assert table.rowCount() == len(rows) == 5  # import, analysis, AI (model), AI (row), correction
    assert _column(table, 1) == ["import", "analysis", "AI measurement", "AI measurement", "correction"]
    assert _cell(table, 4, 2) == "Dr Smith" and _cell(table, 2, 3) == "AI"
    assert _cell(table, 4, 3) == "AoP correction by Dr Smith, HSD the AI's (unchanged)"  # whose each value is
    assert _cell(table, 4, 9) == "tangent on the skull" and table.item(4, 0).font().bold()
    screenshot(history, "history")
    history.close()


def test_import_problems_are_messages_and_another_patients_file_is_asked_about(panel, qtbot, records, tmp_path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not a DICOM file at all")
    with qtbot.waitSignal(panel.importFinished, timeout=WORKER_TIMEOUT_MS) as finished:
        panel.import_files([broken])
    assert len(finished.args[0].failures) == 1 and not records.patients()
    message = panel.last_message
    assert message.isVisible() and "broken.dcm" in message.text() and "not imported" in message.text()
    message.close()

    other = records.get_or_create_patient("MRN-0099", "Other, Olive")
    panel.refresh()
    panel.select_patient(other.id)
    scan = demo_exam_file(tmp_path / "usb", seed=5)  # Patient ID MRN-0042
    with qtbot.waitSignal(panel.importFinished, timeout=WORKER_TIMEOUT_MS) as finished:
        panel.import_files([scan])
    assert finished.args[0].mismatches == [(str(scan), "MRN-0042")] and not finished.args[0].results
    question = panel.last_message
    assert "MRN-0042" in question.text() and "MRN-0099" in question.text()
    screenshot(question, "another_patient")
    with qtbot.waitSignal(panel.importFinished, timeout=WORKER_TIMEOUT_MS) as forced:
        question.button(QMessageBox.StandardButton.Yes).click()  # a person decides: file it under MRN-0099
    exam = forced.args[0].imported[0].exam
    assert records.patient_of_exam(exam).mrn == "MRN-0099" and exam.dicom_patient_id == "MRN-0042"
    assert records.patient_by_mrn("MRN-0042") is None



def test_a_model_that_does_not_load_and_a_cancelled_import_leave_nothing_half_done(qtbot, records, scans, model):
    from workstation.errors import ModelError

    def broken():
        raise ModelError("manifest sha256 does not match the weights")

    panel = PatientRecordsWidget(records, model_provider=broken)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.importFinished, timeout=WORKER_TIMEOUT_MS):
        panel.import_files(scans)
    assert "could not be loaded, so nothing was imported" in panel.last_message.text()
    assert "sha256 does not match" in panel.last_message.text() and not records.patients()
    assert panel.wait_for_jobs(WORKER_TIMEOUT_MS)

    release = threading.Event()

    def slow():
        release.wait(WORKER_TIMEOUT_MS / 1000)
        return model

    panel = PatientRecordsWidget(records, model_provider=slow)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.importFinished, timeout=WORKER_TIMEOUT_MS) as finished:
        panel.import_files(scans)
        assert panel.cancel_button.isVisibleTo(panel)
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
        release.set()
    assert finished.args[0].cancelled and not finished.args[0].results and not records.patients()
    assert "cancelled" in panel.status_label.text()
    assert panel.wait_for_jobs(WORKER_TIMEOUT_MS)

def test_timeline_marks_the_correction_as_a_persons_and_a_click_opens_the_exam(qtbot, panel, timeline, records,
                                                                               tmp_path, model):
    exam_ids = three_exam_labor(records, tmp_path / "usb", model=model)
    labor_id = records.exam(exam_ids[0]).labor_id
    panel.laborSelected.connect(timeline.set_labor)  # as the window wires them
    panel.examOpenRequested.connect(timeline.highlight_exam)
    panel.refresh()
    with qtbot.waitSignal(panel.laborSelected, timeout=2000):
        panel.select_patient(records.patient_by_mrn("MRN-0042").id)
    assert timeline.labor_id == labor_id
    assert len(timeline.points("ai")) == 3 and not timeline.points("confirmed")

    row = correct(records, exam_ids[1], 1, {"aop": synthetic_measurement(2)["geometry"]["aop"]}, "Dr Smith")
    timeline.refresh()
    panel.refresh()
    ai_x, ai_y = timeline.ai_scatter.getData()
    person_x, person_y = timeline.person_scatter.getData()
    assert list(ai_x) == [0.0, 3.0] and list(person_x) == [1.5] and person_y[0] == pytest.approx(row.aop_deg)
    assert timeline.person_scatter.opts["symbol"] == "s" and timeline.ai_scatter.opts["symbol"] == "o"
    assert "correction by Dr Smith" in timeline.summary_label.text()
    trend = timeline.timeline["trend_deg_per_h"]
    assert trend > 0 and f"{trend:+.1f}°/h" in timeline.summary_label.text()
    assert timeline.trend_text.textItem.toPlainText() == f"{trend:+.1f}°/h"
    assert timeline.flag_label.text().startswith("Not stalled")
    assert "120° (Kalache 2009)" in timeline.threshold_line.label.format
    from workstation.gui.timeline_dock import _tip

    tip = _tip(1.5, row.aop_deg, {"point": timeline.timeline["points"][1]})
    # A person's point keeps the AI's uncertainty on the frame it was measured on (the correction row's own, from
    # the model's analysis of frame 1), not that of the AI row the fixture added.
    assert row.uncertainty is not None and row.uncertainty != 0.25
    assert "correction by Dr Smith" in tip and f"AI uncertainty {row.uncertainty:.2f} (" in tip
    point = timeline.timeline["points"][1]
    assert f"HSD {point['hsd_mm']:.1f} mm" in tip
    assert "HSD 61 px (no mm: no scale)" in _tip(1.5, 1.0, {"point": {**point, "hsd_mm": None, "hsd_px": 61.0,
                                                                      "hsd_mm_reason": "no scale"}})

    # A real click on the corrected point opens that exam at the corrected frame.
    qtbot.wait(20)  # the new texts above the plot re-laid it out: let the layout settle before mapping
    plot = timeline.plot
    pos = plot.mapFromScene(timeline.point_scene_pos(exam_ids[1]))
    assert plot.viewport().rect().contains(pos)
    with qtbot.waitSignal(timeline.examOpenRequested, timeout=2000) as opened:
        QTest.mouseMove(plot.viewport(), pos)
        QTest.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert opened.args == [exam_ids[1], 1]
    timeline.highlight_exam(exam_ids[1])
    ringed = [p for p in timeline.points() if p["exam_id"] == exam_ids[1]]
    assert ringed and list(timeline.highlight.getData()[1]) == [p["aop_deg"] for p in ringed]

    # Both panels side by side, as docks beside the viewer would show them.
    timeline.resize(680, 780)
    qtbot.wait(20)
    screenshot_side_by_side([panel, timeline], "records_and_timeline")

    timeline.hsd_check.setChecked(True)  # HSD on the right axis: calibrated demo scans, so mm
    qtbot.wait(20)
    assert timeline.plot.getPlotItem().getAxis("right").isVisible()
    # Dr Smith moved the AoP's calipers only: each exam's HSD is still the AI's (review 29 finding 2).
    assert len(timeline.hsd_ai.getData()[0]) == 3 and len(timeline.hsd_person.getData()[0]) == 0
    pos = plot.mapFromScene(timeline.point_scene_pos(exam_ids[2], hsd=True))
    with qtbot.waitSignal(timeline.examOpenRequested, timeout=2000) as opened:
        QTest.mouseMove(plot.viewport(), pos)
        QTest.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert opened.args == [exam_ids[2], 3]
    screenshot(timeline, "timeline_hsd")


def test_timeline_flags_a_stalled_labour_and_says_why_points_are_missing(qtbot, timeline, records, tmp_path):
    exam_ids = []
    for seed, hours in ((0, 0.0), (1, 1.0), (2, 2.5), (3, 3.0)):
        exam_ids.append(import_scan(records, demo_exam_file(tmp_path / "usb", seed, hours)).exam.id)
    for exam_id in exam_ids[:3]:
        add_ai_row(records, exam_id, 2)  # the same AoP at 0, 1 and 2.5 h: no progress
    timeline.set_labor(records.exam(exam_ids[0]).labor_id)
    assert timeline.timeline["stalled"] is True
    flag = timeline.flag_label.text()
    assert flag.startswith("⚠ STALLED") and "rise ≥ 5° per 2 h" in flag and "not a guideline" in flag
    assert f"exam {exam_ids[3]} at 3.0 h: no AoP (not analysed)" in timeline.summary_label.text()
    assert len(timeline.points()) == 3 and list(timeline.missing_scatter.getData()[0]) == [3.0]  # an x at 3 h
    screenshot(timeline, "timeline_stalled")

    timeline.set_labor(None)
    assert "No labour selected" in timeline.header_label.text() and not timeline.points()


def test_export_labour_report_in_the_worker(panel, qtbot, records, tmp_path, model, monkeypatch):
    exam_ids = three_exam_labor(records, tmp_path / "usb", model=model)
    correct(records, exam_ids[1], 1, {"aop": synthetic_measurement(2)["geometry"]["aop"]}, "Dr Smith")
    panel.refresh()
    assert panel.select_labor(records.exam(exam_ids[0]).labor_id)
    out = tmp_path / "reports" / "labour"
    out.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "PDF (*.pdf)"))
    with qtbot.waitSignal(panel.reportFinished, timeout=WORKER_TIMEOUT_MS) as written:
        panel.export_labor_action.trigger()
    path, error = written.args
    assert error == "" and path == str(out.with_suffix(".pdf")) and Path(path).stat().st_size > 10_000
    assert Path(path).read_bytes().startswith(b"%PDF")

    # A report that cannot be written is a message, not a traceback.
    with qtbot.waitSignal(panel.reportFinished, timeout=WORKER_TIMEOUT_MS) as failed:
        panel.write_report("labor", panel.selected_labor_id(), tmp_path / "no-such-folder" / "x.pdf")
    assert failed.args[0] == "" and "not" in failed.args[1]
    assert panel.last_message.isVisible() and failed.args[1] in panel.last_message.text()

    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) not installed: apt-get install -y poppler-utils")
    text = subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True, check=True).stdout
    assert "MRN-0042" in text and "Dr Smith" in text and f"labour {records.exam(exam_ids[0]).labor_id}" in text



@pytest.mark.parametrize("damage", ["truncated", "text"])
def test_the_window_starts_on_damaged_records_and_says_so(tmp_path, damage):
    """A damaged records file: the window still starts (exit 0 when closed), says the records are damaged and
    names the file, and leaves the file as it was."""
    data = tmp_path / "data"
    with Records(data) as records:
        import_scan(records, demo_exam_file(tmp_path / "usb", seed=0))
        records._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = data / "records" / "records.sqlite3"
    if damage == "truncated":
        os.truncate(path, path.stat().st_size // 2)
    else:
        path.write_text("not a database\n" * 100)
    before = path.read_bytes()
    run, banner = start_the_app_on(data)
    assert "records could not be opened" in banner and "damaged" in banner and str(path) in banner, banner
    assert "NOTE Records unavailable" in run.stdout
    assert path.read_bytes() == before



def test_the_window_starts_on_a_deleted_records_file_beside_stored_scans_and_says_so(tmp_path):
    """The records file deleted while its scans are still stored: the window still starts (exit 0 when closed), says
    the records index is missing and names the folder, and creates no fresh database."""
    data = tmp_path / "data"
    with Records(data) as records:
        import_scan(records, demo_exam_file(tmp_path / "usb", seed=0))
    folder = data / "records"
    for leftover in folder.glob("records.sqlite3*"):
        leftover.unlink()
    run, banner = start_the_app_on(data)
    assert "records could not be opened" in banner and "missing" in banner and str(folder) in banner, banner
    assert "NOTE Records unavailable" in run.stdout
    assert not list(folder.glob("records.sqlite3*"))


def test_names_read_as_people_write_them_and_times_keep_their_utc_offset(panel, qtbot, records, tmp_path):
    from datetime import datetime, timedelta, timezone

    # The night the clocks go back: the same wall-clock time an hour apart, told apart only by the offset.
    summer, winter = timezone(timedelta(hours=1)), timezone.utc
    for seed, acquired in ((0, datetime(2026, 10, 25, 1, 30, tzinfo=summer)),
                           (1, datetime(2026, 10, 25, 1, 30, tzinfo=winter))):
        import_scan(records, demo_exam_file(tmp_path / "usb", seed, 0.0), mrn="MRN-7", force_mrn=True,
                    name="Иванова^Мария^<b>", acquired=acquired)
    panel.refresh()
    panel.patient_table.selectRow(0)
    qtbot.waitUntil(lambda: panel.exam_table.rowCount() == 2, timeout=2000)
    assert _column(panel.patient_table, 1) == ["Иванова, Мария <b>"]
    assert _column(panel.exam_table, 1) == ["2026-10-25 01:30 +01:00", "2026-10-25 01:30 +00:00"]


def _ward_records_with_long_texts(records, folder):
    """A labour as the reviewer's: a correction and an acceptance under longer names, HSD in pixels with its reason,
    labour notes."""
    exam_ids = three_exam_labor(records, folder)
    correct(records, exam_ids[0], 0, {"aop": synthetic_measurement(2)["geometry"]["aop"]}, "Dr Bartholomew")
    records.add_measurement(exam_ids[1], "confirmation", "Midwife Rosalind", {"aop_deg": 128.2, "hsd_px": 31.0},
                            frame_index=1, reasons={"hsd_mm": "the file gives no physical scale (no ultrasound "
                                                    "regions, no pixel spacing): pixels only"})
    labor = records.labor(records.exam(exam_ids[0]).labor_id)
    records.create_labor(labor.patient_id, notes="Induced at 39+2 weeks; epidural at 14:00, oxytocin since 16:30")
    return exam_ids, labor.id


def test_a_resize_reuses_the_column_limits_measured_when_the_table_was_filled(panel, qtbot, records, tmp_path,
                                                                              monkeypatch):
    """The Patients tables measure their cells when they are filled (``refit``), not on every resize: a dock dragged
    narrower and wider again fits the columns from the limits of that fill, as a fresh measuring would."""
    from workstation.gui.records_dock import RecordsTable

    exam_ids, _ = _ward_records_with_long_texts(records, tmp_path / "usb")
    panel.refresh()
    assert panel.select_labor(records.exam(exam_ids[0]).labor_id)
    qtbot.wait(20)
    tables = (panel.patient_table, panel.labor_table, panel.exam_table)
    assert all(table.rowCount() for table in tables)
    measured = []
    for name in ("column_limits", "_word_width"):
        real = getattr(RecordsTable, name)
        monkeypatch.setattr(RecordsTable, name,
                            lambda self, *args, _real=real, _name=name: measured.append(_name) or _real(self, *args))
    widths_seen = set()
    for width in (430, 700, 500):
        panel.resize(width, 780)
        qtbot.wait(20)
        widths_seen.add(tuple(panel.exam_table.horizontalHeader().sectionSize(c)
                              for c in range(panel.exam_table.columnCount())))
    assert len(widths_seen) == 3  # each resize fitted the columns again
    assert measured == []
    panel.search_edit.setText("MRN")  # a search hides or shows patients: the next resize measures that table again
    panel.resize(460, 780)
    qtbot.wait(20)
    assert measured.count("column_limits") == 1
    panel.search_edit.setText("")
    monkeypatch.undo()
    for table in tables:  # the columns fit as a fresh measuring fits them
        header = table.horizontalHeader()
        widths = [header.sectionSize(c) for c in range(table.columnCount())]
        assert sum(widths) == table.viewport().width() or table.horizontalScrollBar().maximum() > 0
        table.refit()
        assert [header.sectionSize(c) for c in range(table.columnCount())] == widths, table.policies


@pytest.mark.parametrize("size", [(1440, 900), (1920, 1080)])
def test_the_patients_dock_shows_every_column_readably(records, make_window, qtbot, tmp_path, size):
    """At the window sizes of the ward's screens every column of the three tables is in view (no horizontal scroll),
    no header is cut, nothing wraps inside a word, and a cell cut short ("…") has its whole text in its tooltip.
    Before: at 1440 px the Source column read "corrected by Dr", HSD and Frames sat behind a scroll bar and the
    Labours header "Notes" showed as "ote". (``records`` before ``make_window``: the window is closed before its
    records, as in the app.)"""
    from PySide6.QtGui import QFontMetrics

    from workstation.gui.records_dock import ELIDE, FIXED
    from workstation.gui.records_link import attach_records

    exam_ids, labor_id = _ward_records_with_long_texts(records, tmp_path / "usb")
    window = make_window(size=size)
    link = attach_records(window, records, analyze=False)
    panel = link.panel
    first_labor = records.exam(exam_ids[0]).labor_id
    assert panel.select_labor(first_labor)
    qtbot.wait(50)
    shots = SCREENSHOTS / f"gui_records_patients_dock_{size[0]}.png"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(shots))
    assert panel.labor_table.rowCount() == 2 and panel.exam_table.rowCount() == 3
    for table in (panel.patient_table, panel.labor_table, panel.exam_table):
        header = table.horizontalHeader()
        widths = [header.sectionSize(c) for c in range(table.columnCount())]
        assert table.horizontalScrollBar().maximum() == 0, (table.policies, widths, table.viewport().width())
        assert sum(widths) <= table.viewport().width()
        for column, policy in enumerate(table.policies):
            title = table.horizontalHeaderItem(column).text()
            assert widths[column] >= header.sectionSizeFromContents(column).width(), title  # the header reads whole
            for row in range(table.rowCount()):
                item = table.item(row, column)
                if item is None or not item.text():
                    continue
                metrics = QFontMetrics(item.font())
                if policy == FIXED:
                    assert widths[column] >= metrics.horizontalAdvance(item.text()), (title, item.text())
                elif policy == ELIDE:
                    assert item.text() in item.toolTip(), (title, item.text())
                else:  # wraps between words, never inside one; the whole text is in the tooltip too
                    longest = max(metrics.horizontalAdvance(word) for word in item.text().split())
                    assert widths[column] >= longest, (title, item.text())
                    assert item.text() in item.toolTip()
    # The person's name reads whole in the Source column (wrapped if need be, never cut).
    sources = _column(panel.exam_table, 3)
    assert "AoP corrected by Dr Bartholomew, HSD AI" in sources and "confirmed by Midwife Rosalind" in sources
    hsd = panel.exam_table.item(sources.index("confirmed by Midwife Rosalind"), 4)
    assert hsd.text().startswith("31 px (no mm") and "pixels only" in hsd.toolTip()
    # The dock is as wide as its tables need at 1440 px, wider on a wider screen, and leaves the viewer room.
    dock = link.panel_dock.width()
    assert dock >= 420 and window.centralWidget().width() >= 560
    if size[0] >= 1920:
        assert dock >= 500


# Review 30, findings 1 (stall part) and 2: the flag names the exam it left out and the unreviewed HIGH-uncertainty AI
# value it rests on, a line each; such a point has its own mark (a grey disc with a white "!"), in the legend.

def _labor_with_rows(records, folder, rows):
    """Exams at the given hours, each with an AI row (frame, uncertainty; values None: no AoP, with why)."""
    ids = []
    for seed, (hours, frame, uncertainty) in enumerate(rows):
        exam = import_scan(records, demo_exam_file(folder, seed, hours)).exam
        values = synthetic_measurement(frame if frame is not None else 0)
        if frame is None:
            values = dict(values, aop_deg=None, reasons={"aop_deg": "the angle of progression needs three distinct "
                                                                    "points"})
        records.add_measurement(exam.id, "ai", "tiny 0.0.1", values, frame_index=frame or 0, time_s=0.0,
                                uncertainty=uncertainty)
        ids.append(exam.id)
    return ids


def test_timeline_marks_a_high_uncertainty_ai_point_and_the_flag_names_it(qtbot, timeline, records, tmp_path):
    # The AoP falls from exam 2 to exam 3 (frames 3 -> 0): stalled, resting on exam 3, which the AI rates HIGH.
    ids = _labor_with_rows(records, tmp_path / "usb", [(0.0, 0, 0.2), (2.0, 3, 0.33), (4.5, 0, 0.61)])
    timeline.set_labor(records.exam(ids[0]).labor_id)
    assert timeline.timeline["stalled"] is True
    high_x, _ = timeline.high_scatter.getData()
    ai_x, _ = timeline.ai_scatter.getData()
    assert list(high_x) == [4.5] and list(ai_x) == [0.0, 2.0]  # never drawn as a plain circle as well
    assert list(timeline.high_mark.getData()[0]) == [4.5]  # a white "!" on a grey disc
    assert "HIGH uncertainty, not reviewed" in timeline.legend_label.text()
    flag = timeline.flag_label.text()
    assert flag.startswith("⚠ STALLED") and timeline.flag_label.styleSheet() == timeline_dock.STALLED_STYLE
    assert (f"<br>⚠ exam {ids[2]}&#x27;s AoP is the AI&#x27;s with HIGH uncertainty (0.61), not reviewed by a person: "
            "review it") in flag
    screenshot(timeline, "timeline_high_uncertainty_r30")


def test_timeline_not_stalled_without_an_exam_says_so_in_amber(qtbot, timeline, records, tmp_path):
    ids = _labor_with_rows(records, tmp_path / "usb", [(0.0, 0, 0.2), (2.0, None, 0.33), (4.5, 3, 0.2)])
    timeline.set_labor(records.exam(ids[0]).labor_id)
    assert timeline.timeline["stalled"] is False
    flag = timeline.flag_label.text()
    assert flag.startswith("Not stalled") and timeline.flag_label.styleSheet() == timeline_dock.CAVEAT_STYLE
    assert (f"⚠ exam {ids[1]} at 2.0 h has no AoP (the angle of progression needs three distinct points): left out "
            "of this judgement, review it") in flag
    assert "HIGH" not in timeline.legend_label.text() and "no AoP" in timeline.legend_label.text()
    assert f"exam {ids[1]} at 2.0 h: no AoP (the angle of progression needs three" in timeline.summary_label.text()
    screenshot(timeline, "timeline_left_out_r30")
