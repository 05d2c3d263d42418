"""The patient records and the labour timeline beside the viewer, and what ties them to it.

- Opening an exam (double-click in the exams table or on a timeline point) opens its file in the viewer at the
  frame of its current measurement, with the exam's id, so that every review made there belongs to that exam.
  When that measurement is a person's (a correction, a confirmation), the viewer shows it as such on that frame,
  with who and when (``workstation.records.recorded_review``); undo goes back to it.
- Every correction, acceptance, Reset to AI and undo in the viewer is kept in the records at once
  (``workstation.records.save_viewer_review``: a new row, nothing overwritten); an undo or redo makes current again
  exactly what the records held before or after that step (``records_current``), and the records panel and the
  timeline refresh, so a corrected exam turns into a person's point on the timeline and in the next report.
- A calibration set in the viewer on an exam (a manual scale drawn on the depth scale, or the file's again) is kept
  with the exam, with who and when (``workstation.records.set_exam_calibration``, which also measures the exam's
  values on record again in it), and an exam opened again is measured with it from the start, so that the AI's
  values and a person's on record are in the same mm as when they were saved.
- A save the records refuse (a full disk, read-only records) is announced to the window (``note_save_failure``),
  which puts the screen back as the records hold it: the screen never shows an acceptance, a correction or a
  calibration the records do not keep.
- Two people at once (a second app copy, ``workstation correct``): the window's reviews name the exam's measurement
  its screen was based on (``MainWindow.records_basis``: read with the review on record, moved by each of the window's
  own saves here, never by a refused one), and a review made on a screen someone else's change has made stale is
  refused by the records (``workstation.records.ReviewConflict``, nothing written); the window then shows what they
  hold now, with the records' own message, and the panel and timeline show it too.
- Records that can be read but not written (a read-only disk or mount, an archived copy) are attached read-only:
  everything can be viewed and opened, the window says once that nothing will be saved, and the panel's buttons that
  only write (new patient, new labour, import) are off.
- The panel analyses imported scans with the window's own model cache (one ONNX Runtime session per model).
- An exam analysed in the viewer by a model other than the one its records hold (a newer model, another
  device's choice in Settings) has that analysis saved too: a new analysis and AI row, which never displaces a
  person's value. The same model again saves nothing (its results would be the same).
"""
from __future__ import annotations

import logging

from PySide6 import QtCore

from workstation.calibration import describe_mm_per_px
from workstation.gui.records_dock import PatientRecordsWidget
from workstation.gui.timeline_dock import LaborTimelineWidget
from workstation.records import (AI, ExamCalibration, Records, RecordsError, ReviewConflict, recorded_review,
                                 save_viewer_review, set_exam_calibration)
from workstation.records.review import changes_since, record_state

log = logging.getLogger(__name__)

# The Patients dock's width when the window is first shown: this share of the window, within these bounds (px).
PATIENTS_DOCK_SHARE, PATIENTS_DOCK_MIN, PATIENTS_DOCK_MAX = 0.3, 430, 540


class RecordsLink(QtCore.QObject):
    """Owns the two panels of one window and the wiring between them and the viewer."""

    reviewSaved = QtCore.Signal(object)  # the new Measurement row (None rows are not announced)
    saveFailed = QtCore.Signal(str)
    reviewConflict = QtCore.Signal(object)  # the ReviewConflict of a review refused: someone else changed the exam
    analysisSaved = QtCore.Signal(object)  # the new Analysis row

    def __init__(self, window, records: Records, *, analyze: bool = True, model_provider=None):
        super().__init__(window)
        self.window = window
        self.records = records
        provider = model_provider or (lambda: window.models.get(window.settings.model, window.settings.device))
        self.panel = PatientRecordsWidget(records, model_provider=provider, analyze=analyze)
        self.timeline = LaborTimelineWidget(records)
        self.panel_dock = window.add_side_dock(self.panel, "Patients")
        self.timeline_dock = window.add_side_dock(self.timeline, "Labour timeline",
                                                  QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)
        self._docks_sized = False
        window.installEventFilter(self)
        if window.isVisible():
            self._size_docks()
        self.panel.laborSelected.connect(self.timeline.set_labor)
        self.panel.laborCleared.connect(self.timeline.clear)
        self.panel.recordsChanged.connect(self.timeline.refresh)
        self.panel.examOpenRequested.connect(self.open_exam)
        self.timeline.examOpenRequested.connect(self.open_exam)
        window.calibrationChanged.connect(self._calibration_changed)
        window.measurementEdited.connect(self._review_changed)
        window.frameAccepted.connect(self._review_changed)
        window.cineOpened.connect(self._cine_opened)
        window.analysisFinished.connect(self._analysis_finished)
        window.add_shutdown_step(self.shutdown)
        self.saveFailed.connect(window.note_save_failure)
        self.reviewConflict.connect(window.note_review_conflict)
        window.recorded_review = self.recorded_review
        window.records_current = self.records_current
        window.stored_calibration = self.stored_calibration
        if self.panel.selected_labor_id() is not None:
            self.timeline.set_labor(self.panel.selected_labor_id())
        if self.read_only is not None:
            self._say_read_only()

    @property
    def read_only(self) -> str | None:
        """Why these records cannot be written (None: they can), as the records were opened (``Records.read_only``):
        read-only records are viewed, never written."""
        return self.records.read_only

    def _say_read_only(self) -> None:
        """Read-only records: the banner says so once and a status-bar note stays (the panel's write-only buttons are
        off: it asks the records too)."""
        folder = self.records.root
        self.window.show_error(
            f"The patient records in {folder} are read-only ({self.read_only}). They can be viewed and their exams "
            "opened, but nothing is saved to them: corrections, acceptances, calibrations and imports stay undone "
            "there. To work on them, copy the records folder to a writable place (or make it writable) and start "
            "again.")
        self.window.note_records_read_only(f"{folder}: {self.read_only}; nothing is saved to these records")

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if obj is self.window and event.type() == QtCore.QEvent.Type.Show and not self._docks_sized:
            self._size_docks()
        return super().eventFilter(obj, event)

    def _size_docks(self) -> None:
        """The Patients dock as wide as its tables need to be read (their columns fit it: ``RecordsTable``), a
        little wider on a wide screen; set once, when the window is first shown at its size (a person's later
        resizing of the docks stands)."""
        self._docks_sized = True
        width = min(max(round(PATIENTS_DOCK_SHARE * self.window.width()), PATIENTS_DOCK_MIN), PATIENTS_DOCK_MAX)
        self.window.resizeDocks([self.panel_dock], [width], QtCore.Qt.Orientation.Horizontal)

    @QtCore.Slot(int, int)
    def open_exam(self, exam_id: int, frame: int) -> None:
        try:
            exam = self.records.exam(exam_id)
            path = self.records.file_path(exam)
        except RecordsError as exc:
            self.window.show_error(str(exc))
            return
        if not path.exists():
            self.window.show_error(
                f"The stored file of exam {exam_id} is missing ({path}), so it cannot be opened. Its saved values "
                f"and history are kept (`workstation history --exam {exam_id}`). To open it again, copy the "
                f"original scan ({exam.original_path}) or a backup of the records folder's copy back to that path.")
            return
        self.window.open_file(path, exam_id=exam_id, frame=frame)

    def recorded_review(self, exam_id: int) -> dict | None:
        """The person's review on record that the viewer shows when it opens the exam (None: the AI's value)."""
        try:
            return recorded_review(self.records, exam_id)
        except RecordsError as exc:
            self.window.show_error(f"The review on record for exam {exam_id} could not be read: {exc}")
            return None

    def records_current(self, exam_id: int) -> dict | None:
        """The exam's current measurement, ``{"measurement_id": id or None, "frame_index", "kind", "by", "values"}``
        (``record_state``), that a viewer's review command keeps so that its undo (redo) makes exactly the state before
        (after) it current again, and that says which frame's review is on record (None: unreadable)."""
        try:
            current = self.records.current_measurement(exam_id)
        except RecordsError as exc:
            log.warning("exam %s: the current measurement could not be read: %s", exam_id, exc)
            return None
        return record_state(current)

    def stored_calibration(self, exam_id: int) -> dict | None:
        """The manual calibration kept with the exam, ``{"mm_per_px", "detail", "by", "at", "id"}``, that the viewer
        applies before measuring it (None: the file's own, or unreadable, which the banner says)."""
        try:
            manual = self.records.manual_calibration(exam_id)
        except RecordsError as exc:
            self.window.show_error(f"The calibration on record for exam {exam_id} could not be read: {exc}; the "
                                   "file's calibration is used")
            return None
        return _as_stored(manual)

    @QtCore.Slot(object)
    def _calibration_changed(self, record: dict) -> None:
        """A calibration set in the viewer: kept with the exam, and the exam's values on record measured again in it
        (before the viewer announces its reviewed frames, which then find the records holding what they show)."""
        exam_id = record.get("exam_id")
        if exam_id is None or record.get("file_calibration") is None:
            return  # a file opened outside the records: the calibration lives in the viewer only
        try:
            basis = ({"based_on_calibration_id": record["based_on_calibration_id"]}
                     if "based_on_calibration_id" in record else {})
            change = set_exam_calibration(self.records, exam_id, record.get("mm_per_px"),
                                          record.get("acting_user") or "", record.get("detail"),
                                          file_calibration=record["file_calibration"], **basis)
        except ReviewConflict as exc:  # someone else set the exam's calibration since the screen read it
            self.reviewConflict.emit(exc)
            return
        except RecordsError as exc:
            message = (f"This calibration was not saved to the records: {exc}. Exam {exam_id} will open with the "
                       "calibration on record")
            self.window.show_error(message)
            self.saveFailed.emit(message)
            return
        if change.calibration is None:
            return
        self._move_basis_over(exam_id, change.measurements)
        row = change.calibration
        log.info("exam %s: calibration %s by %s saved (row %s, %d value(s) measured again)", exam_id, row.kind,
                 row.by, row.id, len(change.measurements))
        if self.window.exam_id == exam_id:
            self.window.show_calibration_status(_as_stored(row))  # the row just written: the calibration in force
        what = (f"manual calibration {describe_mm_per_px(row.mm_per_px)}" if row.is_manual
                else "the file's calibration")
        self.window.statusBar().showMessage(f"Saved to the records: {what} of exam {exam_id}, set by {row.by}", 8000)
        self.panel.refresh()
        self.timeline.refresh()
        self.timeline.highlight_exam(exam_id)

    def _move_basis_over(self, exam_id: int, written: list) -> None:
        """The window's own calibration measured rows on record again (``written``): its screen's reviews are based on
        the last of them from now on, unless someone else changed the exam's value before it (``changes_since`` the
        window's basis holds rows other than these): that change was never shown here, so the basis stays and the
        next review made on this screen is refused as a conflict."""
        basis = self.window.records_basis
        if not written or basis is None or self.window.exam_id != exam_id:
            return
        ours = {m.id for m in written}
        try:
            foreign = [m for m in changes_since(self.records, exam_id, basis.get("measurement_id")) if m.id not in ours]
        except RecordsError as exc:
            log.warning("exam %s: the changes since measurement %s could not be read: %s", exam_id,
                        basis.get("measurement_id"), exc)
            return
        if foreign:
            log.info("exam %s: changed by %s (row %s) before this calibration; the window's basis stays", exam_id,
                     foreign[-1].by, foreign[-1].id)
            return
        # The value on record now: a person's row measured again or its withdrawal where one was written, else the AI's
        # measured again where the AI's value was on record; a person's value that kept its values stays on record.
        now = next((m for m in reversed(written) if m.kind != AI or m.supersedes_id is not None), None)
        if now is None and basis.get("kind") in (None, AI):
            now = written[-1]
        self.window.note_records_saved(exam_id, max(ours), None if now is None else record_state(now))

    @QtCore.Slot(str)
    def _cine_opened(self, _path: str) -> None:
        self.timeline.highlight_exam(self.window.exam_id)

    @QtCore.Slot(bool)
    def _analysis_finished(self, cancelled: bool) -> None:
        exam_id, analysis = self.window.exam_id, self.window.analysis
        if cancelled or exam_id is None or analysis is None or not analysis.complete:
            return
        model = analysis.model_info or {}
        if not model.get("sha256"):
            log.info("exam %s: analysed by a model without a sha256 (%s); not saved", exam_id, model.get("name"))
            return
        try:
            latest = self.records.latest_analysis(exam_id)
            if latest is not None and latest.model_sha256 == model["sha256"]:
                return
            if self.read_only is not None:  # said once at the start: not again for every exam opened
                log.info("exam %s: read-only records (%s); this analysis is not saved", exam_id, self.read_only)
                return
            saved = self.records.save_analysis(exam_id, analysis.analyze_json())
        except RecordsError as exc:
            self.window.show_error(f"The analysis was not saved to the records: {exc}")
            return
        self.window.statusBar().showMessage(
            f"Saved to the records: analysis of exam {exam_id} by {saved.model_label}", 6000)
        self.panel.refresh()
        self.timeline.refresh()
        self.timeline.highlight_exam(exam_id)
        self.analysisSaved.emit(saved)

    @QtCore.Slot(int, object)
    def _review_changed(self, _frame_index: int, review: dict) -> None:
        if review.get("exam_id") is None:
            return  # a file opened outside the records: the review lives in the viewer only
        try:
            row = save_viewer_review(self.records, review)
        except ReviewConflict as exc:  # someone else changed the exam since the screen read it: nothing was written
            log.warning("exam %s: review of frame %s refused: %s", exc.exam_id, exc.frame_index, exc)
            self.reviewConflict.emit(exc)  # the window shows what the records hold now, with exc's own message
            self.panel.refresh()
            self.timeline.refresh()
            self.timeline.highlight_exam(exc.exam_id)
            return
        except RecordsError as exc:
            message = f"This review was not saved to the records: {exc}"
            self.window.show_error(message)
            self.saveFailed.emit(message)
            return
        if row is None:
            return
        self.window.note_records_saved(row.exam_id, row.id, record_state(row))  # a row written here is current
        log.info("exam %s: %s by %s saved (row %s)", row.exam_id, row.kind, row.by, row.id)
        self.window.statusBar().showMessage(
            f"Saved to the records: {row.kind} of exam {row.exam_id}, frame {row.frame_index}", 6000)
        self.panel.refresh()
        self.timeline.refresh()
        self.timeline.highlight_exam(row.exam_id)
        self.reviewSaved.emit(row)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        self.panel.cancel_jobs()
        return self.panel.wait_for_jobs(timeout_ms)


def _as_stored(calibration: ExamCalibration | None) -> dict | None:
    """An exam's calibration row as the viewer takes it (``stored_calibration``); None: the file's, not a manual one."""
    if calibration is None or not calibration.is_manual:
        return None
    return {"id": calibration.id, "mm_per_px": calibration.mm_per_px, "detail": calibration.detail,
            "by": calibration.by, "at": calibration.created_at}


def attach_records(window, records: Records | None = None, **options) -> RecordsLink:
    """Open the records of the data folder (default ``workstation.paths.data_dir()``) beside ``window``."""
    return RecordsLink(window, records if records is not None else Records(), **options)


__all__ = ["RecordsLink", "attach_records"]
