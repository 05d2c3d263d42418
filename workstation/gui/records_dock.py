"""The patient-records panel: patients (search, new), their labours (new) and exams (import, history, report).

``PatientRecordsWidget`` is a plain ``QWidget`` over a :class:`workstation.records.Records`, meant for a side
dock. Everything slow (importing and analysing scans, writing a PDF) runs in a ``QThreadPool`` worker whose
results come back through signals, so the window never freezes; errors come back as messages, never as a
traceback. The records rules (which patient and labour a scan is filed under, duplicates, the audit trail)
live in ``workstation.records``; this module only asks and shows.

Importing files a scan under the selected patient (a DICOM Patient ID that names someone else is asked
about, never silently overridden) and into the selected labour, else into the patient's latest labour as
``import_scan`` decides.
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QDate, QDateTime, QEvent, QObject, QRunnable, Qt, QThreadPool, QTime, Signal, Slot
from PySide6.QtGui import QAction, QFont, QFontMetrics
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QCheckBox, QDateEdit, QDateTimeEdit, QDialog,
                               QDialogButtonBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QMenu, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QRadioButton,
                               QSplitter, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTableWidget,
                               QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)

from workstation.sources import source_of, values_note
from workstation.errors import WorkstationError
from workstation.measure import describe_hsd
from workstation.records import ImportResult, Measurement, Records, RecordsError, import_scan
from workstation.records.store import describe_acquired, display_name

log = logging.getLogger(__name__)

SCAN_FILTER = ("Scans (*.dcm *.dicom *.DCM *.mp4 *.avi *.mov *.mkv *.png *.jpg *.jpeg *.bmp *.tif *.tiff);;"
               "DICOM (*.dcm *.dicom *.DCM);;All files (*)")
MRN_MAX_LEN = 64  # DICOM Patient ID (LO) holds 64 characters
LABOR_START_MAX_AHEAD = timedelta(minutes=10)  # a start "now" typed a little late is fine; tomorrow is a typo
_ID_ROLE = Qt.ItemDataRole.UserRole
_TIP_ROLE = Qt.ItemDataRole.UserRole + 1


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else describe_acquired(moment)


def _when_iso(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def format_aop(m: Measurement | None) -> str:
    if m is None:
        return "not analysed"
    return "-" if m.aop_deg is None else f"{m.aop_deg:.1f}°"


def format_hsd(m: Measurement | None) -> str:
    """HSD in mm when calibrated, else in pixels marked so (never a mm value without a calibration)."""
    return "-" if m is None else describe_hsd(m.hsd_mm, m.hsd_px, m.reasons.get("hsd_mm"))


def format_source(m: Measurement | None) -> str:
    """Where the current values come from: "AI", or the person and what they did; per value where a correction moved
    some calipers only ("AoP AI, HSD corrected by X": ``workstation.sources``)."""
    if m is None:
        return "-"

    def text(src: dict) -> str:
        return "AI" if src["kind"] == "ai" else f"{'corrected' if src['kind'] == 'correction' else 'confirmed'} by " \
                                                f"{src['by']}"

    aop, hsd = source_of(m, "aop"), source_of(m, "hsd")
    if m.aop_deg is None and m.hsd_px is not None:  # never the HSD's source for an AoP that is not there
        why = (m.reasons or {}).get("aop_deg")
        return f"no AoP{f' ({why})' if why else ''}; HSD {text(hsd)}"
    if (aop["kind"], aop["by"]) == (hsd["kind"], hsd["by"]) or m.hsd_px is None or m.aop_deg is None:
        return text(aop if m.aop_deg is not None or m.hsd_px is None else hsd)
    return f"AoP {text(aop)}, HSD {text(hsd)}"


def _event_source(event: dict) -> str:
    """A history row's Source: "AI" for the AI's row, "person" for a person's whose values are all theirs, else whose
    each value is ("AoP the AI's (unchanged), HSD correction by X": ``workstation.sources.values_note``)."""
    if event["event"] == "ai":
        return "AI"
    return values_note(event, head=False).removeprefix("values: ") or "person"


def validate_mrn(mrn: str) -> str | None:
    """Why ``mrn`` (already stripped) cannot be an MRN, or ``None`` when it can."""
    if not mrn:
        return "Enter the patient's MRN (medical record number)."
    if len(mrn) > MRN_MAX_LEN:
        return f"An MRN has at most {MRN_MAX_LEN} characters; this one has {len(mrn)}."
    if any(ord(c) < 32 or c == "\\" for c in mrn):
        return "An MRN cannot contain a backslash or control characters."
    return None


# -- workers ------------------------------------------------------------------------------------------------
class JobSignals(QObject):
    """Signals of one worker job; they live in the GUI thread, so slots run there (queued)."""

    progress = Signal(int, int, int, int, str)  # file index, files, frames done, frames, file name
    finished = Signal(object)  # the job's outcome object
    failed = Signal(str)  # a message for the user (the job did nothing)


@dataclass
class ImportOutcome:
    results: list[ImportResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    mismatches: list[tuple[str, str]] = field(default_factory=list)  # (path, the file's Patient ID)
    cancelled: bool = False
    mrn: str | None = None
    labor_id: int | None = None

    @property
    def imported(self) -> list[ImportResult]:
        return [r for r in self.results if not r.duplicate]


class ImportJob(QRunnable):
    """Import (and analyse) scan files one by one; one bad file does not stop the others."""

    def __init__(self, records: Records, paths: list[str], *, mrn: str | None, labor_id: int | None,
                 force_mrn: bool, model_provider: Callable[[], Any] | None, cancel: threading.Event):
        super().__init__()
        self.setAutoDelete(False)  # the widget keeps it until its signals have been delivered
        self.signals = JobSignals()
        self.records, self.paths, self.mrn, self.labor_id = records, list(paths), mrn, labor_id
        self.force_mrn, self.model_provider, self.cancel = force_mrn, model_provider, cancel

    def run(self) -> None:
        outcome = ImportOutcome(mrn=self.mrn, labor_id=self.labor_id)
        try:
            model = None
            if self.model_provider is not None:
                try:
                    model = self.model_provider()
                except WorkstationError as exc:
                    self.signals.failed.emit(f"The AI model could not be loaded, so nothing was imported: {exc}")
                    return
            for index, path in enumerate(self.paths):
                if self.cancel.is_set():
                    outcome.cancelled = True
                    break
                name = Path(path).name
                self.signals.progress.emit(index, len(self.paths), 0, 0, name)
                try:
                    file_patient_id = self._mismatched_patient_id(path)
                    if file_patient_id is not None:
                        outcome.mismatches.append((path, file_patient_id))
                        continue
                    result = import_scan(
                        self.records, path, mrn=self.mrn, labor_id=self.labor_id, force_mrn=self.force_mrn,
                        model=model, cancelled=self.cancel.is_set,
                        progress=lambda done, total, i=index, n=name: self.signals.progress.emit(
                            i, len(self.paths), done, total, n))
                    outcome.results.append(result)
                except WorkstationError as exc:
                    if self.cancel.is_set():
                        outcome.cancelled = True
                        break
                    outcome.failures.append(str(exc))
                except Exception as exc:  # a bug must not kill the worker thread silently
                    log.exception("import of %s failed", path)
                    outcome.failures.append(f"{name}: unexpected error ({type(exc).__name__}: {exc})")
        except Exception as exc:
            log.exception("import job failed")
            self.signals.failed.emit(f"The import stopped: {type(exc).__name__}: {exc}")
            return
        self.signals.finished.emit(outcome)

    def _mismatched_patient_id(self, path: str) -> str | None:
        """The file's Patient ID when it names someone other than the selected patient (asked about first)."""
        if self.mrn is None or self.force_mrn:
            return None
        from workstation.io import load

        cine = load(path)
        try:
            file_id = (cine.info.patient_id or "").strip()
        finally:
            cine.close()
        return file_id if file_id and file_id != self.mrn else None


class ReportJob(QRunnable):
    """Write an exam or labour PDF report."""

    def __init__(self, records: Records, kind: str, record_id: int, out: str):
        super().__init__()
        self.setAutoDelete(False)
        self.signals = JobSignals()
        self.records, self.kind, self.record_id, self.out = records, kind, record_id, out

    def run(self) -> None:
        from workstation.reports.pdf import write_exam_report, write_labor_report

        try:
            write = write_labor_report if self.kind == "labor" else write_exam_report
            path = write(self.records, self.record_id, self.out)
        except WorkstationError as exc:
            self.signals.failed.emit(f"The report was not written: {exc}")
            return
        except OSError as exc:
            self.signals.failed.emit(f"The report could not be saved to {self.out}: {exc.strerror or exc}")
            return
        except Exception as exc:
            log.exception("report %s %s failed", self.kind, self.record_id)
            self.signals.failed.emit(f"The report was not written: {type(exc).__name__}: {exc}")
            return
        self.signals.finished.emit(str(path))


def shipped_model_provider() -> Any:
    """The shipped model on the best device (``workstation.inference.engine.load_model``'s default)."""
    from workstation.inference.engine import load_model

    return load_model(None, device="auto")


# -- dialogs ------------------------------------------------------------------------------------------------
class _ErrorLabel(QLabel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet("color: #b3261e; font-weight: bold;")
        self.hide()

    def show_error(self, text: str | None) -> None:
        self.setText(text or "")
        self.setVisible(bool(text))


class NewPatientDialog(QDialog):
    """MRN (required, unique), name, optional birth date. OK only closes the dialog when the values are valid."""

    def __init__(self, mrn_taken: Callable[[str], str | None], parent=None):
        super().__init__(parent)
        self.setWindowTitle("New patient")
        self._mrn_taken = mrn_taken
        self.mrn_edit = QLineEdit()
        self.mrn_edit.setPlaceholderText("required, as on the wristband")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("optional, e.g. Doe, Jane")
        self.birth_known = QCheckBox("Birth date known")
        self.birth_edit = QDateEdit()
        self.birth_edit.setCalendarPopup(True)
        self.birth_edit.setDisplayFormat("yyyy-MM-dd")
        self.birth_edit.setDateRange(QDate(1900, 1, 1), QDate.currentDate())
        self.birth_edit.setDate(QDate.currentDate().addYears(-30))
        self.birth_edit.setEnabled(False)
        self.birth_known.toggled.connect(self.birth_edit.setEnabled)
        self.error_label = _ErrorLabel()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("MRN", self.mrn_edit)
        form.addRow("Name", self.name_edit)
        birth = QHBoxLayout()
        birth.addWidget(self.birth_known)
        birth.addWidget(self.birth_edit, 1)
        form.addRow("Birth date", birth)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.mrn_edit.textEdited.connect(lambda _text: self.error_label.show_error(None))

    def values(self) -> tuple[str, str | None, date | None]:
        name = self.name_edit.text().strip() or None
        birth = self.birth_edit.date().toPython() if self.birth_known.isChecked() else None
        return self.mrn_edit.text().strip(), name, birth

    def problem(self) -> str | None:
        mrn, _name, birth = self.values()
        problem = validate_mrn(mrn)
        if problem is None:
            taken_by = self._mrn_taken(mrn)
            if taken_by is not None:
                problem = f"A patient with MRN {mrn} already exists ({taken_by}); select her in the list instead."
        if problem is None and birth is not None and birth > date.today():
            problem = "The birth date is in the future."
        return problem

    def accept(self) -> None:
        problem = self.problem()
        self.error_label.show_error(problem)
        if problem is None:
            super().accept()
        else:
            self.mrn_edit.setFocus()


class NewLaborDialog(QDialog):
    """Start of labour (a time a person gives, or the first exam's acquisition time) and notes."""

    def __init__(self, patient_text: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("New labour")
        self.from_first_exam = QRadioButton("when the first exam was acquired")
        self.explicit = QRadioButton("at")
        group = QButtonGroup(self)
        group.addButton(self.from_first_exam)
        group.addButton(self.explicit)
        self.from_first_exam.setChecked(True)
        self.start_edit = QDateTimeEdit()
        self.start_edit.setCalendarPopup(True)
        self.start_edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        now = QDateTime.currentDateTime()
        self.start_edit.setDateTime(QDateTime(now.date(), QTime(now.time().hour(), now.time().minute())))
        self.start_edit.setEnabled(False)
        self.explicit.toggled.connect(self.start_edit.setEnabled)
        self.notes_edit = QPlainTextEdit()
        self.notes_edit.setPlaceholderText("optional, e.g. parity, induction, epidural")
        self.notes_edit.setMaximumHeight(70)
        self.error_label = _ErrorLabel()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for_whom = QLabel(f"New labour for {patient_text}")
        for_whom.setTextFormat(Qt.TextFormat.PlainText)  # a name is text, never markup
        layout.addWidget(for_whom)
        form = QFormLayout()
        starts = QVBoxLayout()
        starts.addWidget(self.from_first_exam)
        explicit_row = QHBoxLayout()
        explicit_row.addWidget(self.explicit)
        explicit_row.addWidget(self.start_edit, 1)
        starts.addLayout(explicit_row)
        form.addRow("Labour started", starts)
        form.addRow("Notes", self.notes_edit)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

    def values(self) -> tuple[datetime | None, str | None]:
        start = self.start_edit.dateTime().toPython().replace(second=0, microsecond=0) \
            if self.explicit.isChecked() else None
        return start, self.notes_edit.toPlainText().strip() or None

    def problem(self) -> str | None:
        start, _notes = self.values()
        if start is not None and start > datetime.now() + LABOR_START_MAX_AHEAD:
            return f"The start ({_when(start)}) is in the future."
        return None

    def accept(self) -> None:
        problem = self.problem()
        self.error_label.show_error(problem)
        if problem is None:
            super().accept()


HISTORY_COLUMNS = ("When", "Event", "By", "Source", "Frame", "AoP", "HSD", "Uncertainty", "Calibration",
                   "Note / detail")


class ExamHistoryDialog(QDialog):
    """The audit trail of one exam: its import, each analysis and every measurement row, oldest first."""

    def __init__(self, records: Records, exam_id: int, parent=None):
        super().__init__(parent)
        exam = records.exam(exam_id)
        patient = records.patient_of_exam(exam)
        self.setWindowTitle(f"History of exam {exam_id}")
        self.resize(980, 320)
        header = QLabel(f"<b>Exam {exam_id}</b> of MRN {escape(patient.mrn)} ({escape(display_name(patient.name) or 'no name')}), "
                        f"acquired {_when(exam.acquired)}. Nothing is overwritten: the current value is the latest row by "
                        "a person, else the latest AI row.")
        header.setWordWrap(True)
        self.table = QTableWidget(0, len(HISTORY_COLUMNS))
        self.table.setHorizontalHeaderLabels(HISTORY_COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.rows = records.history(exam_id)
        current = records.current_measurement(exam_id)
        bold = QFont()
        bold.setBold(True)
        for event in self.rows:
            row = self.table.rowCount()
            self.table.insertRow(row)
            measurement = event["event"] in ("ai", "correction", "confirmation")
            if measurement:
                hsd = describe_hsd(event.get("hsd_mm"), event.get("hsd_px"))  # the reason is in the last column
                cells = [_when_iso(event["when"]), {"ai": "AI measurement"}.get(event["event"], event["event"]),
                         event["by"], _event_source(event),
                         "-" if event["frame_index"] is None else str(event["frame_index"]),
                         "-" if event["aop_deg"] is None else f"{event['aop_deg']:.1f}°", hsd,
                         "-" if event["uncertainty"] is None else f"{event['uncertainty']:.2f}",
                         event.get("calibration_source") or "-",
                         event.get("note") or ("; ".join(f"{k}: {v}" for k, v in (event.get("reasons") or {}).items()
                                                         if k == "aop_deg"))]
            else:
                cells = [_when_iso(event["when"]), event["event"], event["by"] or "-", "", "", "", "", "", "",
                         event.get("detail") or ""]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                item.setToolTip(str(text))
                if measurement and current is not None and event["id"] == current.id:
                    item.setFont(bold)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(len(HISTORY_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(False)
        note = QLabel("Bold: the current measurement.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(header)
        layout.addWidget(self.table, 1)
        layout.addWidget(note)
        layout.addWidget(buttons)


# -- the panel ----------------------------------------------------------------------------------------------
# How a column of a records table meets a narrow dock (``RecordsTable.fit_columns``): FIXED keeps its one line (ids,
# counts, an angle), WRAP breaks between words onto more lines (dates with times, names, who did what), ELIDE stays on
# one line ending in "…" (a long reason), its whole text in the tooltip. The STRETCH column takes the room left over.
FIXED, WRAP, ELIDE, STRETCH = "fixed", "wrap", "elide", "stretch"


class _OneLineDelegate(QStyledItemDelegate):
    """An ELIDE column's cells: one line, cut with "…" (the table wraps the others)."""

    def initStyleOption(self, option, index) -> None:  # noqa: N802 (Qt's name)
        super().initStyleOption(option, index)
        option.features &= ~QStyleOptionViewItem.ViewItemFeature.WrapText
        option.textElideMode = Qt.TextElideMode.ElideRight


class RecordsTable(QTableWidget):
    """A table of the records panel whose columns fit the dock it is in: every column at least as wide as its header
    and its longest word (an ELIDE column: its header and ``elide_min`` text), as wide as its text where there is room,
    the STRETCH column taking what is left; where the dock is narrower, WRAP columns break onto more lines and ELIDE
    columns end in "…" with the whole text in their tooltip. A horizontal scroll bar appears only when even the
    minima do not fit. The cells are measured once per fill (``refit``); a resize fits the columns from those limits."""

    def __init__(self, columns: tuple[str, ...], policies: tuple[str, ...], stretch: int,
                 elide_min: dict[int, str] | None = None):
        super().__init__(0, len(columns))
        assert len(policies) == len(columns)
        self.policies, self.stretch_column, self.elide_min = policies, stretch, dict(elide_min or {})
        self._fitting = False
        # Each column's (least, natural) width and its header's, measured when the table was last filled (``refit``);
        # None: not measured yet.
        self._limits: tuple[list[tuple[int, int]], list[int]] | None = None
        self.setHorizontalHeaderLabels(columns)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalHeader().setVisible(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header.setStretchLastSection(False)
        header.setTextElideMode(Qt.TextElideMode.ElideRight)
        header.setMinimumSectionSize(8)
        self._one_line = _OneLineDelegate(self)
        for column, policy in enumerate(policies):
            if policy == ELIDE:
                self.setItemDelegateForColumn(column, self._one_line)
        self.viewport().installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if obj is self.viewport() and event.type() == QEvent.Type.Resize:
            self.fit_columns()
        return super().eventFilter(obj, event)

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self.forget_limits()  # the text measures otherwise now: the next fit measures it again
        super().changeEvent(event)

    def _padding(self) -> int:
        """What a cell adds around its text (margins and the focus frame)."""
        margin = self.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self) + 1
        return 2 * margin + 6

    def _word_width(self, column: int) -> int:
        """The widest word of a column's cells (a WRAP column never breaks inside a word)."""
        widest = 0
        for row in range(self.rowCount()):
            item = self.item(row, column)
            if item is None or not item.text():
                continue
            metrics = QFontMetrics(item.font())
            widest = max(widest, max(metrics.horizontalAdvance(word) for word in item.text().split()))
        return widest + self._padding() if widest else 0

    def _header_widths(self) -> list[int]:
        header = self.horizontalHeader()
        return [header.sectionSizeFromContents(c).width() for c in range(self.columnCount())]

    def column_limits(self) -> list[tuple[int, int]]:
        """(least, natural) width of each column, in pixels."""
        header = self.horizontalHeader()
        limits = []
        for column, policy in enumerate(self.policies):
            title = header.sectionSizeFromContents(column).width()
            natural = max(title, self.sizeHintForColumn(column))
            if policy == WRAP or policy == STRETCH:
                least = max(title, self._word_width(column))
            elif policy == ELIDE:
                text = self.elide_min.get(column, "")
                least = max(title, self.fontMetrics().horizontalAdvance(text) + self._padding() if text else 0)
            else:
                least = natural
            limits.append((min(least, natural), natural))
        return limits

    def fit_columns(self) -> None:
        """Columns set to the viewport's width (see the class) from the limits measured when the table was filled;
        rows as tall as their wrapped text."""
        if self._fitting or self.columnCount() == 0:
            return
        self._fitting = True
        try:
            if self._limits is None:
                self._limits = (self.column_limits(), self._header_widths())
            limits, floors = self._limits
            room = max(0, self.viewport().width())
            widths = [natural for _, natural in limits]
            total = sum(widths)
            if total <= room:
                widths[self.stretch_column] += room - total
            else:
                # ELIDE columns give way first (their whole text is in the tooltip), then the ones that wrap, down to
                # their longest word, then (a dock narrower still) those down to their header, breaking a long word
                # (its whole text in the tooltip); within each step every column gives up the same share it can.
                excess = total - room
                steps = (((ELIDE,), [least for least, _ in limits]), ((WRAP, STRETCH), [least for least, _ in limits]),
                         ((WRAP, STRETCH), floors))
                for group, lowest in steps:
                    columns = [c for c, policy in enumerate(self.policies) if policy in group]
                    slack = sum(max(0, widths[c] - lowest[c]) for c in columns)
                    if slack <= 0:
                        continue
                    share = min(1.0, excess / slack)
                    for c in columns:
                        give = min(max(0, widths[c] - lowest[c]), math.ceil(max(0, widths[c] - lowest[c]) * share))
                        widths[c] -= give
                        excess -= give
                    if excess <= 0:
                        break
                widths[self.stretch_column] += max(0, room - sum(widths))
            header = self.horizontalHeader()
            for column, width in enumerate(widths):
                if header.sectionSize(column) != width:
                    header.resizeSection(column, width)
            self.resizeRowsToContents()
        finally:
            self._fitting = False

    def forget_limits(self) -> None:
        """Rows hidden or shown since the table was filled (a search): the next fit measures the cells again."""
        self._limits = None

    def refit(self) -> None:
        """After the rows changed: every cell's whole text in its tooltip where the column may cut or wrap it, then
        the cells measured again and the columns fitted."""
        for column, policy in enumerate(self.policies):
            if policy == FIXED:
                continue
            for row in range(self.rowCount()):
                item = self.item(row, column)
                if item is None or not item.text():
                    continue
                extra = item.data(_TIP_ROLE)
                item.setToolTip(item.text() if not extra or extra == item.text() else f"{item.text()}\n{extra}")
        self.forget_limits()
        self.fit_columns()


def _item(text: str, record_id: int | None = None, tooltip: str | None = None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if record_id is not None:
        item.setData(_ID_ROLE, record_id)
    if tooltip:
        item.setToolTip(tooltip)
        item.setData(_TIP_ROLE, tooltip)  # the cell's own tooltip, kept when its whole text is added (refit)
    return item


PATIENT_COLUMNS = ("MRN", "Name", "Birth date")
PATIENT_POLICIES = (ELIDE, STRETCH, FIXED)
LABOR_COLUMNS = ("Labour", "Started", "Exams", "Notes")
LABOR_POLICIES = (FIXED, WRAP, FIXED, STRETCH)
EXAM_COLUMNS = ("Exam", "Acquired", "AoP", "Source", "HSD", "Frames")  # AoP and its source first: a narrow dock
EXAM_POLICIES = (FIXED, WRAP, FIXED, STRETCH, ELIDE, FIXED)


class PatientRecordsWidget(QWidget):
    """Patients, their labours and exams; new patient, new labour, import, history, PDF report.

    ``model_provider`` returns the model that analyses imported scans (called once, in a worker; default:
    the shipped model); ``None`` with ``analyze=False`` imports without analysis. ``pool`` runs the jobs
    (default: a pool of the widget's own, so :meth:`wait_for_jobs` waits only for this panel's work).
    """

    examOpenRequested = Signal(int, int)  # exam id, frame index (the current measurement's frame)
    laborSelected = Signal(int)  # the labour shown in the exams table changed (show its timeline)
    laborCleared = Signal()  # no labour is selected any more (e.g. a patient with none): clear the timeline
    recordsChanged = Signal()  # a patient, labour or exam was added (refresh other views)
    importFinished = Signal(object)  # ImportOutcome
    reportFinished = Signal(str, str)  # path written ("" on failure), error message ("" on success)

    def __init__(self, records: Records, parent: QWidget | None = None, *, pool: QThreadPool | None = None,
                 model_provider: Callable[[], Any] | None = shipped_model_provider, analyze: bool = True):
        super().__init__(parent)
        self.records = records
        self.pool = pool if pool is not None else QThreadPool(self)
        self._model_provider = model_provider if analyze else None
        self._model = None
        self._model_lock = threading.Lock()
        self._jobs: set[QRunnable] = set()
        self._cancel = threading.Event()
        self.last_message: QMessageBox | None = None
        self.dialog: QDialog | None = None  # the open New patient / New labour / History dialog
        self._patients_shown: list = []
        self._updating = False
        self._announced_labor: int | None = None
        self._build()
        self._show_read_only()
        self.refresh()

    # -- layout ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search MRN or name")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.textChanged.connect(self._apply_filter)
        self.patient_table = RecordsTable(PATIENT_COLUMNS, PATIENT_POLICIES, 1, {0: "MRN-0000…"})
        self.patient_table.itemSelectionChanged.connect(self._patient_changed)
        self.new_patient_button = QPushButton("New patient…")
        self.new_patient_button.clicked.connect(self.new_patient)
        patients_box = QGroupBox("Patients")
        patients = QVBoxLayout(patients_box)
        patients.setContentsMargins(4, 6, 4, 4)  # the tables' columns need the width more than a margin
        top = QHBoxLayout()
        top.addWidget(self.search_edit, 1)
        top.addWidget(self.new_patient_button)
        patients.addLayout(top)
        patients.addWidget(self.patient_table)

        self.labor_table = RecordsTable(LABOR_COLUMNS, LABOR_POLICIES, 3)
        self.labor_table.itemSelectionChanged.connect(self._labor_changed)
        self.new_labor_button = QPushButton("New labour…")
        self.new_labor_button.clicked.connect(self.new_labor)
        labors_box = QGroupBox("Labours of the selected patient")
        labors = QVBoxLayout(labors_box)
        labors.setContentsMargins(4, 6, 4, 4)  # the tables' columns need the width more than a margin
        labors.addWidget(self.labor_table)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.new_labor_button)
        labors.addLayout(row)

        self.exam_table = RecordsTable(EXAM_COLUMNS, EXAM_POLICIES, 3, {4: "00.0 mm"})
        self.exam_table.itemSelectionChanged.connect(self._update_buttons)
        self.exam_table.itemDoubleClicked.connect(
            lambda item: self.open_exam(self.exam_table.item(item.row(), 0).data(_ID_ROLE)))
        self.exam_table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.exam_table.customContextMenuRequested.connect(self._exam_menu)
        self.placeholder_label = QLabel("AI values come from a PLACEHOLDER model: not clinically meaningful.")
        self.placeholder_label.setWordWrap(True)
        self.placeholder_label.setStyleSheet("color: white; background: #b3261e; padding: 3px;")
        self.placeholder_label.hide()
        self.import_button = QPushButton("Import scans…")
        self.import_button.clicked.connect(self.import_scans)
        self.history_button = QPushButton("History…")
        self.history_button.clicked.connect(lambda: self.show_history())
        self.report_button = QToolButton()
        self.report_button.setText("Export report…")
        self.report_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        report_menu = QMenu(self.report_button)
        self.export_labor_action = QAction("Labour report (PDF)…", self)
        self.export_labor_action.triggered.connect(lambda: self.export_report("labor"))
        self.export_exam_action = QAction("Exam report (PDF)…", self)
        self.export_exam_action.triggered.connect(lambda: self.export_report("exam"))
        report_menu.addAction(self.export_labor_action)
        report_menu.addAction(self.export_exam_action)
        self.report_button.setMenu(report_menu)
        exams_box = QGroupBox("Exams of the selected labour (double-click to open)")
        exams = QVBoxLayout(exams_box)
        exams.setContentsMargins(4, 6, 4, 4)  # the tables' columns need the width more than a margin
        exams.addWidget(self.exam_table)
        exams.addWidget(self.placeholder_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.history_button)
        buttons.addWidget(self.report_button)
        buttons.addStretch(1)
        exams.addLayout(buttons)

        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_jobs)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        busy = QHBoxLayout()
        busy.addWidget(self.progress_bar, 1)
        busy.addWidget(self.cancel_button)
        self.progress_bar.hide()
        self.cancel_button.hide()

        splitter = QSplitter(Qt.Orientation.Vertical)
        for box in (patients_box, labors_box, exams_box):
            splitter.addWidget(box)
        splitter.setStretchFactor(0, 2)  # the exams (what a person opens) get the most of the height
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 5)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter, 1)
        layout.addLayout(busy)
        layout.addWidget(self.status_label)

    # -- selection ---------------------------------------------------------------------------------------
    @staticmethod
    def _selected_id(table: QTableWidget) -> int | None:
        rows = table.selectionModel().selectedRows()
        if not rows:
            return None
        item = table.item(rows[0].row(), 0)
        return None if item is None else item.data(_ID_ROLE)

    def selected_patient_id(self) -> int | None:
        return self._selected_id(self.patient_table)

    def selected_labor_id(self) -> int | None:
        return self._selected_id(self.labor_table)

    def selected_exam_id(self) -> int | None:
        return self._selected_id(self.exam_table)

    @staticmethod
    def _select_id(table: QTableWidget, record_id: int | None) -> bool:
        for row in range(table.rowCount()):
            if table.item(row, 0).data(_ID_ROLE) == record_id and not table.isRowHidden(row):
                table.selectRow(row)
                table.scrollToItem(table.item(row, 0))
                return True
        return False

    def select_patient(self, patient_id: int) -> bool:
        if self.search_edit.text() and not self._select_id(self.patient_table, patient_id):
            self.search_edit.clear()  # a filter must not hide the patient asked for
        return self._select_id(self.patient_table, patient_id)

    def select_labor(self, labor_id: int) -> bool:
        """Select a labour (and its patient)."""
        try:
            labor = self.records.labor(labor_id)
        except RecordsError:
            return False
        if self.selected_patient_id() != labor.patient_id:
            self.select_patient(labor.patient_id)
        return self._select_id(self.labor_table, labor_id)

    def select_exam(self, exam_id: int) -> bool:
        try:
            exam = self.records.exam(exam_id)
        except RecordsError:
            return False
        if self.selected_labor_id() != exam.labor_id:
            self.select_labor(exam.labor_id)
        return self._select_id(self.exam_table, exam_id)

    # -- filling the tables --------------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Re-read everything from the records, keeping the selection."""
        patient_id, labor_id, exam_id = self.selected_patient_id(), self.selected_labor_id(), self.selected_exam_id()
        self._updating = True
        try:
            table = self.patient_table
            table.setRowCount(0)
            self._patients_shown = self.records.patients()
            for patient in self._patients_shown:
                row = table.rowCount()
                table.insertRow(row)
                table.setItem(row, 0, _item(patient.mrn, patient.id))
                table.setItem(row, 1, _item(display_name(patient.name) or ""))
                table.setItem(row, 2, _item(patient.birth_date or ""))
            self._apply_filter(self.search_edit.text())
            table.refit()
            if patient_id is None or not self._select_id(table, patient_id):
                table.clearSelection()
            self._fill_labors(prefer=labor_id)
            self._fill_exams(prefer=exam_id)
        finally:
            self._updating = False
        self._update_buttons()
        self._announce_labor()

    def _announce_labor(self) -> None:
        """``laborSelected`` / ``laborCleared`` once per change of the selected labour."""
        labor_id = self.selected_labor_id()
        if labor_id == self._announced_labor:
            return
        self._announced_labor = labor_id
        if labor_id is None:
            self.laborCleared.emit()
        else:
            self.laborSelected.emit(labor_id)

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().casefold()
        for row, patient in enumerate(self._patients_shown):
            haystack = f"{patient.mrn}\n{patient.name or ''}".casefold()
            self.patient_table.setRowHidden(row, bool(needle) and needle not in haystack)
        self.patient_table.forget_limits()  # its rows shown changed: a resize measures them again, as a fill does
        rows = self.patient_table.selectionModel().selectedRows()
        if rows and self.patient_table.isRowHidden(rows[0].row()):
            self.patient_table.clearSelection()  # never act on a patient the list does not show

    def _fill_labors(self, prefer: int | None = None) -> None:
        """The selected patient's labours, most recent first; ``prefer`` (else the most recent) selected."""
        table = self.labor_table
        table.setRowCount(0)
        patient_id = self.selected_patient_id()
        labors = [] if patient_id is None else self.records.labors(patient_id)
        for labor in labors:
            row = table.rowCount()
            table.insertRow(row)
            how = "set by a person" if labor.start_source == "explicit" else "first exam"
            table.setItem(row, 0, _item(str(labor.id), labor.id))
            table.setItem(row, 1, _item(f"{_when(labor.start)} ({how})", tooltip=f"start: {how}"))
            table.setItem(row, 2, _item(str(len(self.records.exams(labor.id)))))
            table.setItem(row, 3, _item(labor.notes or "", tooltip=labor.notes))
        table.refit()
        if labors and not (prefer is not None and self._select_id(table, prefer)):
            table.selectRow(0)

    def _fill_exams(self, prefer: int | None = None) -> None:
        table = self.exam_table
        table.setRowCount(0)
        labor_id = self.selected_labor_id()
        exams = [] if labor_id is None else self.records.exams(labor_id)
        placeholder = False
        bold = QFont()
        bold.setBold(True)
        for exam in exams:
            current = self.records.current_measurement(exam.id)
            analysis = self.records.latest_analysis(exam.id)
            placeholder |= bool(analysis is not None and analysis.model_placeholder)
            row = table.rowCount()
            table.insertRow(row)
            why = None
            if current is not None and current.aop_deg is None:
                why = current.reasons.get("aop_deg")
            table.setItem(row, 0, _item(str(exam.id), exam.id, tooltip=exam.original_path))
            table.setItem(row, 1, _item(_when(exam.acquired), tooltip=f"acquired time from {exam.acquired_source}"))
            table.setItem(row, 2, _item(format_aop(current), tooltip=why))
            source = _item(format_source(current),
                           tooltip=None if current is None else f"{current.kind} by {current.by}, {current.created_at}")
            if current is not None and current.kind != "ai":
                source.setFont(bold)
            table.setItem(row, 3, source)
            manual = self.records.manual_calibration(exam.id)
            scale = (f"calibration: {exam.calibration_source} (the file's)" if manual is None else
                     f"calibration: {manual.describe()}; the file's own: {exam.calibration_source}")
            table.setItem(row, 4, _item(format_hsd(current), tooltip=scale))
            table.setItem(row, 5, _item(str(exam.n_frames)))
        table.refit()
        if prefer is not None:
            self._select_id(table, prefer)
        self.placeholder_label.setVisible(placeholder)

    def _patient_changed(self) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            self._fill_labors()
            self._fill_exams()
        finally:
            self._updating = False
        self._update_buttons()
        self._announce_labor()

    def _labor_changed(self) -> None:
        if self._updating:
            return
        self._fill_exams()
        self._update_buttons()
        self._announce_labor()

    @property
    def read_only(self) -> str | None:
        """Why the records cannot be written, as they were opened (``Records.read_only``); None: they can."""
        return self.records.read_only

    def _show_read_only(self) -> None:
        """Records that cannot be written: the buttons that only write (New patient, New labour, Import) are off,
        their tooltips say why; viewing, History and reports work as before."""
        why = self.read_only
        for button in (self.new_patient_button, self.new_labor_button, self.import_button):
            button.setToolTip("" if why is None else f"The records are read-only ({why}): nothing can be added")
        self._update_buttons()

    def _refuse_read_only(self, title: str) -> bool:
        if self.read_only is None:
            return False
        self.show_message(QMessageBox.Icon.Information, title, f"The records are read-only ({self.read_only}): "
                          "nothing can be added to them.")
        return True

    def _update_buttons(self) -> None:
        busy = bool(self._jobs)
        writable = self.read_only is None
        self.new_patient_button.setEnabled(writable)
        self.new_labor_button.setEnabled(writable and self.selected_patient_id() is not None)
        self.history_button.setEnabled(self.selected_exam_id() is not None)
        self.export_exam_action.setEnabled(self.selected_exam_id() is not None)
        self.export_labor_action.setEnabled(self.selected_labor_id() is not None)
        self.report_button.setEnabled(self.selected_labor_id() is not None)
        self.import_button.setEnabled(writable and not busy)

    def _exam_menu(self, pos) -> None:
        item = self.exam_table.itemAt(pos)
        if item is None:
            return
        self.exam_table.selectRow(item.row())
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_exam())
        menu.addAction("History…", lambda: self.show_history())
        menu.addAction("Exam report (PDF)…", lambda: self.export_report("exam"))
        menu.popup(self.exam_table.viewport().mapToGlobal(pos))

    # -- actions -----------------------------------------------------------------------------------------
    def frame_to_open(self, exam_id: int) -> int:
        """The frame an exam opens at: its current measurement's frame, else the analysis' chosen frame, else 0."""
        current = self.records.current_measurement(exam_id)
        if current is not None and current.frame_index is not None:
            return int(current.frame_index)
        analysis = self.records.latest_analysis(exam_id)
        if analysis is not None and analysis.chosen_frame is not None:
            return int(analysis.chosen_frame)
        return 0

    @Slot()
    def open_exam(self, exam_id: int | None = None) -> None:
        exam_id = self.selected_exam_id() if exam_id is None else exam_id
        if exam_id is not None:
            self.examOpenRequested.emit(int(exam_id), self.frame_to_open(exam_id))

    def _mrn_taken(self, mrn: str) -> str | None:
        patient = self.records.patient_by_mrn(mrn)
        return None if patient is None else (display_name(patient.name) or "no name recorded")

    @Slot()
    def new_patient(self) -> NewPatientDialog | None:
        """Open the New patient dialog (not blocking); OK with valid values creates and selects the patient."""
        if self._refuse_read_only("New patient"):
            return None
        dialog = NewPatientDialog(self._mrn_taken, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._create_patient(*dialog.values()))
        self.dialog = dialog
        dialog.open()
        return dialog

    def _create_patient(self, mrn: str, name: str | None, birth: date | None) -> None:
        try:
            patient = self.records.get_or_create_patient(mrn, name, birth)
        except WorkstationError as exc:
            self.show_message(QMessageBox.Icon.Warning, "New patient", f"The patient was not created: {exc}")
            return
        self.search_edit.clear()
        self.refresh()
        self.select_patient(patient.id)
        self.status_label.setText(f"Patient {patient.mrn} created.")
        self.recordsChanged.emit()

    @Slot()
    def new_labor(self) -> NewLaborDialog | None:
        if self._refuse_read_only("New labour"):
            return None
        patient_id = self.selected_patient_id()
        if patient_id is None:
            self.show_message(QMessageBox.Icon.Information, "New labour", "Select the patient first.")
            return None
        patient = self.records.patient(patient_id)
        dialog = NewLaborDialog(f"MRN {patient.mrn} ({display_name(patient.name) or 'no name'})", self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._create_labor(patient_id, *dialog.values()))
        self.dialog = dialog
        dialog.open()
        return dialog

    def _create_labor(self, patient_id: int, start: datetime | None, notes: str | None) -> None:
        try:
            labor = self.records.create_labor(patient_id, start, notes)
        except WorkstationError as exc:
            self.show_message(QMessageBox.Icon.Warning, "New labour", f"The labour was not created: {exc}")
            return
        self.refresh()
        self.select_labor(labor.id)
        self.status_label.setText(f"Labour {labor.id} created; scans imported now go into it.")
        self.recordsChanged.emit()

    @Slot()
    def show_history(self, exam_id: int | None = None) -> ExamHistoryDialog | None:
        exam_id = self.selected_exam_id() if exam_id is None else exam_id
        if exam_id is None:
            return None
        try:
            dialog = ExamHistoryDialog(self.records, exam_id, self)
        except WorkstationError as exc:
            self.show_message(QMessageBox.Icon.Warning, "History", str(exc))
            return None
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = dialog
        dialog.show()
        return dialog

    def show_message(self, icon: QMessageBox.Icon, title: str, text: str,
                     buttons=QMessageBox.StandardButton.Ok, on_finished: Callable[[int], None] | None = None
                     ) -> QMessageBox:
        """A window-modal message that does not block the event loop (workers keep reporting)."""
        box = QMessageBox(icon, title, text, buttons, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if on_finished is not None:
            box.finished.connect(lambda _result: on_finished(box.clickedButton() and box.standardButton(
                box.clickedButton())))
        self.last_message = box
        box.open()
        return box

    # -- import ------------------------------------------------------------------------------------------
    @Slot()
    def import_scans(self) -> None:
        """Ask for scan files, then import them in a worker."""
        paths, _filter = QFileDialog.getOpenFileNames(self, "Import scans", "", SCAN_FILTER)
        if paths:
            self.import_files(paths)

    def import_files(self, paths: list[str | Path], *, force_mrn: bool = False) -> ImportJob | None:
        """Import ``paths`` under the selected patient and labour in a worker; ``importFinished`` reports."""
        if self._jobs:
            self.show_message(QMessageBox.Icon.Information, "Import", "Wait for the running task to finish.")
            return None
        if self._refuse_read_only("Import"):
            return None
        patient_id, labor_id = self.selected_patient_id(), self.selected_labor_id()
        mrn = None if patient_id is None else self.records.patient(patient_id).mrn
        self._cancel.clear()
        job = ImportJob(self.records, [str(p) for p in paths], mrn=mrn, labor_id=labor_id, force_mrn=force_mrn,
                        model_provider=None if self._model_provider is None else self._cached_model,
                        cancel=self._cancel)
        job.signals.progress.connect(self._import_progress)
        job.signals.finished.connect(lambda outcome, j=job: self._import_done(j, outcome))
        job.signals.failed.connect(lambda message, j=job: self._import_failed(j, message))
        where = "files' own Patient IDs" if mrn is None else f"MRN {mrn}"
        self._start(job, f"Importing {len(paths)} file{'s' if len(paths) != 1 else ''} under {where}…")
        return job

    def _cached_model(self):
        with self._model_lock:  # called in the worker
            if self._model is None:
                self._model = self._model_provider()
            return self._model

    def _start(self, job: QRunnable, text: str) -> None:
        self._jobs.add(job)
        self.status_label.setText(text)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self.cancel_button.setVisible(isinstance(job, ImportJob))
        self._update_buttons()
        self.pool.start(job)

    def _finish(self, job: QRunnable) -> None:
        self._jobs.discard(job)
        if not self._jobs:
            self.progress_bar.hide()
            self.cancel_button.hide()
        self._update_buttons()

    def _import_progress(self, index: int, files: int, done: int, frames: int, name: str) -> None:
        if frames:
            self.progress_bar.setRange(0, frames)
            self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{name} ({index + 1}/{files}) %p%")
        self.status_label.setText(f"Importing {name} ({index + 1} of {files})…")

    def _import_failed(self, job: ImportJob, message: str) -> None:
        self._finish(job)
        self.status_label.setText("Import failed.")
        self.show_message(QMessageBox.Icon.Warning, "Import", message)
        self.importFinished.emit(ImportOutcome(failures=[message]))

    def _import_done(self, job: ImportJob, outcome: ImportOutcome) -> None:
        self._finish(job)
        imported, duplicates = outcome.imported, [r for r in outcome.results if r.duplicate]
        self.refresh()
        if outcome.results:
            self.select_exam(outcome.results[-1].exam.id)
        parts = [f"Imported {len(imported)} exam{'s' if len(imported) != 1 else ''}" if imported else "No new exam"]
        if duplicates:
            parts.append(f"{len(duplicates)} already in the records (not imported again)")
        if outcome.failures:
            parts.append(f"{len(outcome.failures)} failed")
        if outcome.cancelled:
            parts.append("cancelled")
        placeholder = any(r.analysis is not None and r.analysis.model_placeholder for r in imported)
        self.status_label.setText(", ".join(parts) + "." + (" Analysed with a PLACEHOLDER model." if placeholder
                                                            else ""))
        if imported:
            self.recordsChanged.emit()
        if outcome.failures:
            self.show_message(QMessageBox.Icon.Warning, "Import",
                              "Some files were not imported:\n\n" + "\n".join(outcome.failures))
        elif outcome.mismatches:
            self._ask_about_mismatches(outcome)
        self.importFinished.emit(outcome)

    def _ask_about_mismatches(self, outcome: ImportOutcome) -> None:
        lines = "\n".join(f"{Path(path).name}: Patient ID {pid!r}" for path, pid in outcome.mismatches)
        paths = [path for path, _pid in outcome.mismatches]
        mrn = outcome.mrn

        def answered(button) -> None:
            if button == QMessageBox.StandardButton.Yes:
                self.import_files(paths, force_mrn=True)

        self.show_message(
            QMessageBox.Icon.Question, "Import: another patient?",
            f"These files name another patient than the selected one (MRN {mrn}):\n\n{lines}\n\n"
            f"File them under MRN {mrn} anyway? The file's own Patient ID stays recorded on the exam. "
            "Choose No, then select the right patient (or none, to file them under their own Patient ID).",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, on_finished=answered)

    @Slot()
    def cancel_jobs(self) -> None:
        """Stop a running import after its current frame (reports cannot be cancelled; they are quick)."""
        self._cancel.set()
        self.status_label.setText("Cancelling…")

    def wait_for_jobs(self, msecs: int = -1) -> bool:
        """Block until this panel's jobs are done (for closing and tests); ``True`` when none is left."""
        done = self.pool.waitForDone(msecs)
        return bool(done)

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    # -- reports -----------------------------------------------------------------------------------------
    @Slot()
    def export_report(self, kind: str = "labor") -> None:
        """Ask where to save the selected labour's (``"labor"``) or exam's (``"exam"``) PDF, then write it."""
        record_id = self.selected_labor_id() if kind == "labor" else self.selected_exam_id()
        if record_id is None:
            self.show_message(QMessageBox.Icon.Information, "Export report",
                              f"Select {'a labour' if kind == 'labor' else 'an exam'} first.")
            return
        patient = self.records.patient(self.selected_patient_id())
        suggested = f"{patient.mrn}-{'labour' if kind == 'labor' else 'exam'}-{record_id}.pdf"
        out, _filter = QFileDialog.getSaveFileName(self, "Export report", suggested, "PDF (*.pdf)")
        if out:
            self.write_report(kind, record_id, out if out.lower().endswith(".pdf") else out + ".pdf")

    def write_report(self, kind: str, record_id: int, out: str | Path) -> ReportJob:
        """Write the PDF in a worker; ``reportFinished(path, "")`` or ``("", message)`` reports."""
        if kind not in ("labor", "exam"):
            raise ValueError(f"kind must be 'labor' or 'exam', not {kind!r}")
        job = ReportJob(self.records, kind, int(record_id), str(out))
        job.signals.finished.connect(lambda path, j=job: self._report_done(j, path))
        job.signals.failed.connect(lambda message, j=job: self._report_failed(j, message))
        self._start(job, f"Writing the {'labour' if kind == 'labor' else 'exam'} report…")
        return job

    def _report_done(self, job: ReportJob, path: str) -> None:
        self._finish(job)
        self.status_label.setText(f"Report saved: {path}")
        self.reportFinished.emit(path, "")

    def _report_failed(self, job: ReportJob, message: str) -> None:
        self._finish(job)
        self.status_label.setText("The report was not written.")
        self.show_message(QMessageBox.Icon.Warning, "Export report", message)
        self.reportFinished.emit("", message)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self._cancel.set()
        super().closeEvent(event)


__all__ = ["ExamHistoryDialog", "ImportJob", "ImportOutcome", "NewLaborDialog", "NewPatientDialog",
           "PatientRecordsWidget", "ReportJob", "format_aop", "format_hsd", "format_source", "shipped_model_provider",
           "validate_mrn"]
