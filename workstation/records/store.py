"""``Records``: patients, labours, exams, AI analyses and measurements in the per-user records database.

Layout under the data folder (``workstation.paths.data_dir()``, or ``data_dir=`` / ``--data-dir``)::

    records/                 0700
        records.sqlite3      0600 (WAL; see ``database``)
        files/ab/abcd....dcm 0600, the imported scans under their sha256 (see ``filestore``)

Nothing is overwritten or deleted. A measurement's AI value and every person's correction or confirmation
are rows of their own; an exam's *current* measurement is the latest row by a person if there is one, else
the latest AI row, and :meth:`Records.history` lists them all. Every public save is one transaction; saves
made inside ``with records.transaction():`` join it, so an import lands with its analysis or not at all.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from workstation.calibration import describe_mm_per_px, manual_scale_problem
from workstation.inference.manifest import model_label
from workstation.records import database
from workstation.records.database import RecordsError
from workstation.records.filestore import StoredFile, sweep_stale_temporaries
from workstation.sources import AI, CONFIRMATION, CORRECTION  # the measurement kinds: one definition

RECORDS_DIR = "records"
MEASUREMENT_KINDS = (AI, CORRECTION, CONFIRMATION)
# The values a measurement row keeps in columns (the `measure` JSON keys of the same name).
VALUE_KEYS = ("aop_deg", "hsd_px", "hsd_mm", "hc_mm", "bpd_mm", "ofd_mm", "ga_weeks")


def now_iso() -> str:
    """When a row was written: local time with its UTC offset, so an audit trail reads unambiguously."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def scanner_time(moment: datetime) -> datetime:
    """An acquisition time as it is kept, to the second.

    The rule for acquisition (and labour start) times:

    * A time with a UTC offset (``--acquired 2026-10-25T01:30+00:00``, a DICOM date-time with its own offset or the
      file's TimezoneOffsetFromUTC) is an absolute instant. It is kept with the offset it was given and shown in it,
      and it is ordered and subtracted as an instant, so a daylight-saving night counts its real hours.
    * A time without one (a DICOM time without an offset, a file's modification time, any time saved before
      offsets were kept) is the scanner's wall clock. It is kept and shown as it is.

    One rule holds for a whole labour (its start and all its exams), for ordering and for hours alike
    (:func:`chronological_key`): when none of its times has an offset, they are ordered and subtracted as wall-clock
    times, as they always were; once any of them has one, every time in it is read as an instant, a naive one as this
    workstation's local time (its zone's rules on that date), so two naive times across a daylight-saving change
    count their real hours too and the order always agrees with the hours."""
    return moment.replace(microsecond=0)


def as_instant(moment: datetime) -> datetime:
    """An aware datetime: a naive one (the scanner's wall clock) read as this workstation's local time."""
    return moment if moment.tzinfo is not None else moment.astimezone()


def chronological_key(moments) -> "Callable[[datetime], Any]":
    """How the times of one labour (``moments``: its start and every exam's acquisition) are read, by the rule of
    :func:`scanner_time`: as they are (wall clock) when none has an offset, else each as an instant. The same
    reading orders them (a sort key) and, through :func:`hours_between`, counts the hours between them."""
    moments = list(moments)
    if all(m.tzinfo is None for m in moments):
        return lambda moment: moment
    return as_instant


def hours_between(start: datetime, end: datetime, reading: "Callable[[datetime], Any] | None" = None) -> float:
    """Hours from ``start`` to ``end`` by the rule of :func:`scanner_time`. ``reading`` is the labour's
    :func:`chronological_key` over all its times, so that hours agree with the order; without it the rule is
    applied to these two times alone."""
    read = chronological_key((start, end)) if reading is None else reading
    return (read(end) - read(start)).total_seconds() / 3600.0


def scanner_time_iso(moment: datetime) -> str:
    return scanner_time(moment).isoformat(timespec="seconds")


def describe_acquired(moment: datetime, seconds: bool = False) -> str:
    """An acquisition (or labour start) time as kept: with its UTC offset when it was given one, so two exams an
    hour apart across a daylight-saving change do not read as the same time (``scanner_time``)."""
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    offset = moment.strftime("%z")
    return text if not offset else f"{text} {offset[:3]}:{offset[3:5]}"


def display_name(name: str | None) -> str | None:
    """A person's name as people read it. DICOM's ``Family^Given^Middle^Prefix^Suffix`` (as a file or ``--name``
    may give it) reads ``Family, Given Middle Prefix Suffix`` like the names the importer files from DICOM; its
    ``=`` component groups (alphabetic, ideographic, phonetic) are shown side by side. Other names are shown as
    stored, runs of spaces collapsed."""
    if name is None:
        return None
    groups = []
    for group in str(name).split("="):
        family, _, rest = group.partition("^")
        family = " ".join(family.split())
        rest = " ".join(" ".join(part.split()) for part in rest.split("^") if part.strip())
        text = f"{family}, {rest}" if family and rest else family or rest
        if text:
            groups.append(text)
    return " = ".join(groups) if groups else (" ".join(str(name).split()) or None)


def _json_or_none(text: str | None):
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class Patient:
    id: int
    mrn: str
    name: str | None
    birth_date: str | None
    created_at: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Labor:
    id: int
    patient_id: int
    start: datetime | None  # None only for an automatic labour that has no exam yet
    start_source: str  # "explicit" (given by a person) or "first_exam" (the earliest exam's acquisition)
    notes: str | None
    created_at: str

    def to_json(self) -> dict:
        out = asdict(self)
        out["start"] = None if self.start is None else self.start.isoformat()
        return out


@dataclass(frozen=True)
class Exam:
    id: int
    labor_id: int
    file_sha256: str
    file_relpath: str
    original_path: str
    acquired: datetime
    acquired_source: str
    dicom_patient_id: str | None
    study_instance_uid: str | None
    sop_instance_uid: str | None
    n_frames: int
    frame_shape: tuple[int, int]
    calibration_source: str
    imported_at: str

    def to_json(self) -> dict:
        out = asdict(self)
        out["acquired"] = self.acquired.isoformat()
        out["frame_shape"] = list(self.frame_shape)
        return out


@dataclass(frozen=True)
class Analysis:
    id: int
    exam_id: int
    model_name: str
    model_version: str
    model_sha256: str
    model_placeholder: bool
    n_frames: int
    chosen_frame: int | None
    why: str | None
    analyzed_at: str

    @property
    def model_label(self) -> str:
        """The model's name and version, the name its AI rows go under (``workstation.inference.manifest``)."""
        return model_label(self.model_name, self.model_version)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Measurement:
    id: int
    exam_id: int
    analysis_id: int | None
    kind: str  # "ai", "correction" or "confirmation"
    supersedes_id: int | None
    by: str
    created_at: str
    frame_index: int | None
    time_s: float | None
    aop_deg: float | None
    hsd_px: float | None
    hsd_mm: float | None
    hc_mm: float | None
    bpd_mm: float | None
    ofd_mm: float | None
    ga_weeks: float | None
    uncertainty: float | None
    calibration_source: str | None
    geometry: dict | None
    reasons: dict = field(default_factory=dict)
    note: str | None = None
    # Whose each value is (``workstation.sources``): {"aop"|"hsd"|"head": {"kind", "by", "at"}} as written; None
    # (rows written before schema 3, AI rows, confirmations): every value is the row's own. Read it through
    # ``workstation.sources.source_of``, never directly.
    sources: dict | None = None

    @property
    def source(self) -> str:
        """Whose the row's AoP is, as a timeline point's ``source`` says it (:meth:`point_source`)."""
        return self.point_source("aop")

    def point_source(self, quantity: str) -> str:
        """Whose one of the row's values is ("aop", "hsd", "head"), in a timeline point's words (its ``source``,
        ``hsd_source``): "ai" for the AI's (an AI row, or a correction that moved other calipers only), "confirmed"
        for a person's (corrected or confirmed). Who and when: ``sources`` in :meth:`to_json`,
        ``workstation.sources.source_of``."""
        from workstation.sources import source_of

        return "ai" if source_of(self, quantity)["kind"] == AI else "confirmed"

    def to_json(self) -> dict:
        from workstation.sources import sources_of

        out = asdict(self)
        out["source"] = self.source
        out["sources"] = sources_of(self)
        return out


MANUAL, FILE = "manual", "file"  # an exam calibration's kinds: a person's scale, or the file's own again


def checked_mm_per_px(mm_per_px) -> float:
    """A manual scale as a number the calibration accepts (``workstation.calibration.manual_scale_problem``: the
    plausible range of an ultrasound image), else a one-line :class:`RecordsError`."""
    problem = manual_scale_problem(mm_per_px)
    if problem is not None:
        raise RecordsError(problem)
    return float(mm_per_px)


@dataclass(frozen=True)
class ExamCalibration:
    """A calibration a person set on an exam: ``kind`` "manual" (``mm_per_px``, with the ``detail`` of how it was
    taken) or "file" (back to the file's own scale). The exam's latest row is in force; without one, the file's."""

    id: int
    exam_id: int
    kind: str
    mm_per_px: float | None
    detail: str | None
    by: str
    created_at: str
    after_measurement_id: int | None = None  # the exam's latest measurement row when it was set (orders the history)
    note: str | None = None

    @property
    def is_manual(self) -> bool:
        return self.kind == MANUAL

    def describe(self, time_format: str | None = None) -> str:
        """One line for a table or a terminal: the scale, how it was taken, who set it and when. ``time_format``: a
        ``strftime`` format that time is written in (the PDF's minutes, its offset dropped); None: as kept."""
        what = (f"manual {describe_mm_per_px(self.mm_per_px)}" + (f" ({self.detail})" if self.detail else "")
                if self.is_manual else "the file's own calibration again" + (f" ({self.detail})" if self.detail
                                                                             else ""))
        when = (self.created_at if time_format is None
                else datetime.fromisoformat(self.created_at).strftime(time_format))
        return f"{what}, set by {self.by} at {when}"

    def to_json(self) -> dict:
        return asdict(self)


class Records:
    """The records of one data folder. Safe to share between threads (one lock around the connection)."""

    def __init__(self, data_dir: str | Path | None = None):
        if data_dir is None:
            from workstation.paths import data_dir as default_data_dir

            data_dir = default_data_dir()
        self.root = database.secure_dir(Path(data_dir) / RECORDS_DIR)
        self._lock = threading.RLock()
        self._conn = database.connect(self.root)
        sweep_stale_temporaries(self.root)

    # -- plumbing ---------------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Records":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; nested calls join the outer one, so composed saves commit together."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            try:
                with database.transaction(self._conn):
                    yield self._conn
            except sqlite3.Error as exc:  # locked, full, read-only, damaged: a message, and nothing half-saved
                raise database.sqlite_failure(self.path, exc, f"the records could not be saved ({exc}); nothing of "
                                              "this change was written and earlier records are unchanged") from exc

    def _rows(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise database.sqlite_failure(self.path, exc, f"the records could not be read ({exc})") from exc

    def _row(self, sql: str, params: tuple = ()) -> sqlite3.Row | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    @property
    def path(self) -> Path:
        """The records database file."""
        return self.root / database.DATABASE_NAME

    @property
    def read_only(self) -> str | None:
        """Why these records were opened read-only (a read-only file system, a folder or file that cannot be written:
        the probe their opening ran, never asked again), or None where they can be written. Everything can be read;
        every save is refused with :meth:`read_only_error`'s line."""
        return database.read_only_reason(self._conn)

    def read_only_error(self) -> database.RecordsReadOnly:
        """The records' one line for a save refused because they are read-only (raise it)."""
        return database.read_only_error(self._conn)

    def integrity_problems(self) -> list[str]:
        with self._lock:
            return database.integrity_problems(self._conn)

    def file_path(self, exam: Exam) -> Path:
        """The exam's own copy of its scan."""
        return self.root / exam.file_relpath

    # -- patients ---------------------------------------------------------------------------------------
    def patient(self, patient_id: int) -> Patient:
        row = self._row("SELECT * FROM patients WHERE id = ?", (patient_id,))
        if row is None:
            raise RecordsError(f"no patient with id {patient_id}")
        return Patient(**dict(row))

    def patient_by_mrn(self, mrn: str) -> Patient | None:
        row = self._row("SELECT * FROM patients WHERE mrn = ?", (mrn.strip(),))
        return None if row is None else Patient(**dict(row))

    def require_patient(self, mrn: str) -> Patient:
        patient = self.patient_by_mrn(mrn)
        if patient is None:
            raise RecordsError(f"no patient with MRN {mrn!r}; import an exam with --mrn {mrn} first")
        return patient

    def patients(self) -> list[Patient]:
        return [Patient(**dict(r)) for r in self._rows("SELECT * FROM patients ORDER BY mrn")]

    def get_or_create_patient(self, mrn: str, name: str | None = None, birth_date: date | None = None) -> Patient:
        """The patient with this MRN, created with ``name`` and ``birth_date`` if new (an existing one is kept)."""
        mrn = mrn.strip()
        if not mrn:
            raise RecordsError("an MRN cannot be empty")
        with self.transaction() as conn:
            existing = self.patient_by_mrn(mrn)
            if existing is not None:
                return existing
            conn.execute("INSERT INTO patients (mrn, name, birth_date, created_at) VALUES (?, ?, ?, ?)",
                         (mrn, name, None if birth_date is None else birth_date.isoformat(), now_iso()))
            return self.require_patient(mrn)

    # -- labours ----------------------------------------------------------------------------------------
    # An automatic labour starts at its earliest exam, found in Python: with UTC offsets the text's order is not
    # the times' (see scanner_time).
    _LABOR_SQL = """SELECT l.*, (SELECT group_concat(e.acquired_at, '|') FROM exams e WHERE e.labor_id = l.id)
                           AS exam_times
                    FROM labors l"""

    @staticmethod
    def _labor(row: sqlite3.Row) -> Labor:
        if row["start_time"] is not None:
            start = datetime.fromisoformat(row["start_time"])
        else:
            times = [datetime.fromisoformat(t) for t in (row["exam_times"] or "").split("|") if t]
            start = min(times, key=chronological_key(times)) if times else None
        return Labor(row["id"], row["patient_id"], start,
                     "explicit" if row["start_time"] is not None else "first_exam", row["notes"], row["created_at"])

    def labor(self, labor_id: int) -> Labor:
        row = self._row(f"{self._LABOR_SQL} WHERE l.id = ?", (labor_id,))
        if row is None:
            raise RecordsError(f"no labour with id {labor_id}")
        return self._labor(row)

    def labors(self, patient_id: int) -> list[Labor]:
        """A patient's labours, the most recent first."""
        labors = [self._labor(r) for r in self._rows(f"{self._LABOR_SQL} WHERE l.patient_id = ?", (patient_id,))]
        key = chronological_key(labor.start for labor in labors if labor.start is not None)
        # Latest start first; a labour without a start (no exam yet) last, as SQL's NULLs sorted.
        return sorted(labors, key=lambda labor: (labor.start is not None, key(labor.start) if labor.start else 0,
                                                 labor.id), reverse=True)

    def create_labor(self, patient_id: int, start: datetime | None = None, notes: str | None = None) -> Labor:
        """A new labour; without ``start`` it starts at its earliest exam's acquisition time."""
        with self.transaction() as conn:
            cursor = conn.execute("INSERT INTO labors (patient_id, start_time, notes, created_at) VALUES (?, ?, ?, ?)",
                                  (patient_id, None if start is None else scanner_time_iso(start), notes, now_iso()))
            return self.labor(cursor.lastrowid)

    # -- exams ------------------------------------------------------------------------------------------
    _EXAM_SQL = "SELECT e.*, f.relpath FROM exams e JOIN files f ON f.sha256 = e.file_sha256"

    @staticmethod
    def _exam(row: sqlite3.Row) -> Exam:
        return Exam(row["id"], row["labor_id"], row["file_sha256"], row["relpath"], row["original_path"],
                    datetime.fromisoformat(row["acquired_at"]), row["acquired_source"], row["dicom_patient_id"],
                    row["study_instance_uid"], row["sop_instance_uid"], row["n_frames"],
                    (row["frame_rows"], row["frame_cols"]), row["calibration_source"], row["imported_at"])

    def exam(self, exam_id: int) -> Exam:
        row = self._row(f"{self._EXAM_SQL} WHERE e.id = ?", (exam_id,))
        if row is None:
            raise RecordsError(f"no exam with id {exam_id}")
        return self._exam(row)

    def exam_by_sha256(self, sha256: str) -> Exam | None:
        row = self._row(f"{self._EXAM_SQL} WHERE e.file_sha256 = ?", (sha256,))
        return None if row is None else self._exam(row)

    def exams(self, labor: "Labor | int") -> list[Exam]:
        """A labour's exams in acquisition order (``labor``: the labour, or its id)."""
        return self.exams_with_reading(labor)[0]

    def exams_with_reading(self, labor: "Labor | int") -> "tuple[list[Exam], Callable[[datetime], Any]]":
        """A labour's exams in acquisition order, and the one reading of its times that ordered them
        (:meth:`labor_reading`), by which their hours are counted too (``workstation.records.timeline``). ``labor``:
        the labour as read already (its start is not read again), or its id."""
        exams = self._labor_exams(labor.id if isinstance(labor, Labor) else labor)
        reading = self.labor_reading(labor, exams)
        return sorted(exams, key=lambda exam: (reading(exam.acquired), exam.id)), reading

    def _labor_exams(self, labor_id: int) -> list[Exam]:
        return [self._exam(r) for r in self._rows(f"{self._EXAM_SQL} WHERE e.labor_id = ? ORDER BY e.id", (labor_id,))]

    def labor_reading(self, labor: "Labor | int", exams: "list[Exam] | None" = None) -> "Callable[[datetime], Any]":
        """The one reading of a labour's times (its set start, if any, and its exams'), for its exams' order and
        their hours alike (:func:`chronological_key`). ``labor``: the labour as read already (no query for its
        start), or its id; ``exams`` its exams, when the caller has them. A start taken from the first exam is one
        of the exams' times, so only a set start is added."""
        if isinstance(labor, Labor):
            labor_id, start = labor.id, [labor.start] if labor.start_source == "explicit" else []
        else:
            labor_id = labor
            row = self._row("SELECT start_time FROM labors WHERE id = ?", (labor_id,))
            start = [] if row is None or row["start_time"] is None else [datetime.fromisoformat(row["start_time"])]
        if exams is None:
            exams = self._labor_exams(labor_id)
        return chronological_key([*start, *(exam.acquired for exam in exams)])

    def patient_of_exam(self, exam: Exam) -> Patient:
        return self.patient(self.labor(exam.labor_id).patient_id)

    def insert_exam(self, labor_id: int, stored: StoredFile, *, original_path: str, acquired: datetime,
                    acquired_source: str, n_frames: int, frame_shape: tuple[int, int], calibration_source: str,
                    dicom_patient_id: str | None = None, study_instance_uid: str | None = None,
                    sop_instance_uid: str | None = None) -> Exam:
        """The exam row of a scan already copied in by ``filestore.store_copy`` (the file first, then its row)."""
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO files (sha256, relpath, size_bytes, stored_at) VALUES (?, ?, ?, ?)",
                         (stored.sha256, stored.relpath, stored.size_bytes, now_iso()))
            cursor = conn.execute(
                """INSERT INTO exams (labor_id, file_sha256, original_path, acquired_at, acquired_source,
                       dicom_patient_id, study_instance_uid, sop_instance_uid, n_frames, frame_rows, frame_cols,
                       calibration_source, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (labor_id, stored.sha256, original_path, scanner_time_iso(acquired), acquired_source,
                 dicom_patient_id, study_instance_uid, sop_instance_uid, int(n_frames), int(frame_shape[0]),
                 int(frame_shape[1]), calibration_source, now_iso()))
            return self.exam(cursor.lastrowid)

    # -- analyses ---------------------------------------------------------------------------------------
    def save_analysis(self, exam_id: int, analysis: dict) -> Analysis:
        """An ``analyze_cine`` result: the analysis, its per-frame results and the AI measurement row."""
        model = analysis["model"]
        summary = analysis.get("summary") or {}
        frames = analysis.get("frames") or []
        with self.transaction() as conn:
            cursor = conn.execute(
                """INSERT INTO analyses (exam_id, model_name, model_version, model_sha256, model_placeholder,
                       n_frames, chosen_frame, why, analyzed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (exam_id, model["name"], model["version"], model["sha256"], int(bool(model.get("placeholder"))),
                 len(frames), summary.get("chosen_frame"), summary.get("why"), now_iso()))
            analysis_id = cursor.lastrowid
            conn.executemany(
                """INSERT INTO frame_results (analysis_id, frame_index, time_s, frame_class, aop_deg, hsd_px, hsd_mm,
                       uncertainty, geometry_json, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [(analysis_id, f["index"], f.get("time_s"), f.get("frame_class"), f.get("aop_deg"), f.get("hsd_px"),
                  f.get("hsd_mm"), f.get("uncertainty"), _dumps(f.get("geometry")), _dumps(f)) for f in frames])
            chosen = summary.get("chosen_frame")
            frame = next((f for f in frames if f["index"] == chosen), None)
            reasons = dict(frame.get("reasons") or {}) if frame else {}
            if frame is None:
                reasons["aop_deg"] = summary.get("why") or "no frame chosen"
            self.add_measurement(
                exam_id, AI, model_label(model["name"], model["version"]), frame or {}, analysis_id=analysis_id,
                frame_index=chosen, time_s=None if frame is None else frame.get("time_s"),
                uncertainty=None if frame is None else frame.get("uncertainty"),
                calibration_source=((frame or {}).get("calibration") or {}).get("source")
                or analysis.get("calibration_source"),
                reasons=reasons)
            return self.analysis(analysis_id)

    @staticmethod
    def _analysis(row: sqlite3.Row) -> Analysis:
        values = dict(row)
        values["model_placeholder"] = bool(values["model_placeholder"])
        return Analysis(**values)

    def analysis(self, analysis_id: int) -> Analysis:
        row = self._row("SELECT * FROM analyses WHERE id = ?", (analysis_id,))
        if row is None:
            raise RecordsError(f"no analysis with id {analysis_id}")
        return self._analysis(row)

    def analyses(self, exam_id: int) -> list[Analysis]:
        rows = self._rows("SELECT * FROM analyses WHERE exam_id = ? ORDER BY id", (exam_id,))
        return [self._analysis(r) for r in rows]

    def latest_analysis(self, exam_id: int) -> Analysis | None:
        analyses = self.analyses(exam_id)
        return analyses[-1] if analyses else None

    def frame_results(self, analysis_id: int) -> list[dict]:
        """The per-frame `analyze` JSON of an analysis, in frame order."""
        rows = self._rows("SELECT detail_json FROM frame_results WHERE analysis_id = ? ORDER BY frame_index",
                          (analysis_id,))
        return [json.loads(r[0]) for r in rows]

    def frame_result(self, analysis_id: int, frame_index: int | None) -> dict | None:
        """The `analyze` JSON of one frame of an analysis, or None when it was not kept."""
        row = self._row("SELECT detail_json FROM frame_results WHERE analysis_id = ? AND frame_index = ?",
                        (analysis_id, frame_index))
        return None if row is None else json.loads(row[0])

    def frame_result_of(self, row: "Measurement") -> dict:
        """The per-frame result on a measurement row's frame: from the row's own analysis, else the exam's latest;
        empty where no analysis kept that frame (or the row names none)."""
        def latest() -> int | None:
            analysis = self.latest_analysis(row.exam_id)
            return None if analysis is None else analysis.id

        return on_row_frame(row, self.frame_result, latest) or {}

    def frame_classes(self, exam_id: int) -> "FrameClasses":
        """The plane class the AI gave each frame the exam's analyses kept, read in one query: a row's
        (:meth:`FrameClasses.of`) is ``frame_result_of(row).get("frame_class")`` without a query per row."""
        kept = {(a, i): c for a, i, c in self._rows(
            "SELECT f.analysis_id, f.frame_index, f.frame_class FROM frame_results f JOIN analyses a "
            "ON a.id = f.analysis_id WHERE a.exam_id = ?", (exam_id,))}
        latest = self._row("SELECT max(id) FROM analyses WHERE exam_id = ?", (exam_id,))[0]
        return FrameClasses(exam_id, kept, latest)

    # -- measurements -----------------------------------------------------------------------------------
    def add_measurement(self, exam_id: int, kind: str, by: str, values: dict[str, Any], *,
                        analysis_id: int | None = None, supersedes_id: int | None = None,
                        frame_index: int | None = None, time_s: float | None = None, uncertainty: float | None = None,
                        calibration_source: str | None = None, geometry: dict | None = None,
                        reasons: dict | None = None, note: str | None = None,
                        sources: dict | None = None, created_at: str | None = None) -> Measurement:
        """Append one measurement row. ``values`` is a `measure` JSON (or any dict with its value keys);
        its ``geometry`` is used when ``geometry`` is not given. ``sources``: whose each value is
        (``workstation.sources``), for a person's row whose values are not all theirs; None: all the row's own."""
        if kind not in MEASUREMENT_KINDS:
            raise RecordsError(f"unknown measurement kind {kind!r} (one of {', '.join(MEASUREMENT_KINDS)})")
        if not by or not by.strip():
            raise RecordsError("a measurement needs who made it (a user name)")
        geometry = values.get("geometry") if geometry is None else geometry
        with self.transaction() as conn:
            self.exam(exam_id)  # a clear error for an unknown exam, rather than a foreign-key failure
            row = {"exam_id": exam_id, "analysis_id": analysis_id, "kind": kind, "supersedes_id": supersedes_id,
                   "by": by.strip(), "created_at": created_at or now_iso(), "frame_index": frame_index, "time_s": time_s,
                   **{key: values.get(key) for key in VALUE_KEYS}, "uncertainty": uncertainty,
                   "calibration_source": calibration_source, "geometry_json": _dumps(geometry),
                   "reasons_json": json.dumps(reasons if reasons is not None else values.get("reasons") or {}),
                   "note": note}
            if kind != AI and sources:
                row["sources_json"] = _dumps(sources)
            cursor = conn.execute(f"INSERT INTO measurements ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                  tuple(row.values()))
            return self.measurement(cursor.lastrowid)

    @staticmethod
    def _measurement(row: sqlite3.Row) -> Measurement:
        values = dict(row)
        values["geometry"] = _json_or_none(values.pop("geometry_json"))
        values["reasons"] = json.loads(values.pop("reasons_json") or "{}")
        values["sources"] = _json_or_none(values.pop("sources_json", None))  # a read-only schema-2 archive has none
        return Measurement(**values)

    def measurement(self, measurement_id: int) -> Measurement:
        row = self._row("SELECT * FROM measurements WHERE id = ?", (measurement_id,))
        if row is None:
            raise RecordsError(f"no measurement with id {measurement_id}")
        return self._measurement(row)

    def measurements(self, exam_id: int) -> list[Measurement]:
        """Every measurement row of an exam, oldest first: the audit trail."""
        return [self._measurement(r) for r in self._rows("SELECT * FROM measurements WHERE exam_id = ? ORDER BY id",
                                                         (exam_id,))]

    def current_measurement(self, exam_id: int) -> Measurement | None:
        """The latest row by a person (correction or confirmation) if any, else the latest AI row.

        A new analysis never displaces a person's value. A person can withdraw their own (Reset to AI, or undo,
        in the viewer): that appends an AI row whose ``supersedes_id`` names the withdrawn row, and the AI value
        is current again."""
        return current_of(self.measurements(exam_id))

    def latest_ai_measurement(self, exam_id: int) -> Measurement | None:
        return latest_ai_of(self.measurements(exam_id))

    # -- calibrations ------------------------------------------------------------------------------------
    def add_calibration(self, exam_id: int, kind: str, by: str, *, mm_per_px: float | None = None,
                        detail: str | None = None, note: str | None = None,
                        rows: "list[Measurement] | None" = None) -> ExamCalibration:
        """Append one calibration row (see :class:`ExamCalibration`); its values are checked, never re-measured here
        (``workstation.records.calibration.set_exam_calibration`` does both). ``rows``: the exam's measurement rows,
        where the caller has read them in this transaction (the row is placed after the latest)."""
        if kind not in (MANUAL, FILE):
            raise RecordsError(f"unknown calibration kind {kind!r} (manual or file)")
        if not by or not by.strip():
            raise RecordsError("a calibration needs who set it (a user name)")
        if kind == MANUAL:
            mm_per_px = checked_mm_per_px(mm_per_px)
        elif mm_per_px is not None:
            raise RecordsError("the file's calibration takes no mm-per-pixel value")
        with self.transaction() as conn:
            self.exam(exam_id)
            after = (conn.execute("SELECT max(id) FROM measurements WHERE exam_id = ?", (exam_id,)).fetchone()[0]
                     if rows is None else max((m.id for m in rows), default=None))
            cursor = conn.execute(
                "INSERT INTO exam_calibrations (exam_id, kind, mm_per_px, detail, by, created_at, after_measurement_id,"
                " note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (exam_id, kind, mm_per_px, (detail or "").strip() or None, by.strip(), now_iso(), after, note))
            return self._calibration(self._row("SELECT * FROM exam_calibrations WHERE id = ?", (cursor.lastrowid,)))

    @staticmethod
    def _calibration(row: sqlite3.Row) -> ExamCalibration:
        return ExamCalibration(**dict(row))

    def calibrations(self, exam_id: int) -> list[ExamCalibration]:
        """Every calibration a person set on the exam, oldest first."""
        return [self._calibration(r) for r in self._rows("SELECT * FROM exam_calibrations WHERE exam_id = ? "
                                                         "ORDER BY id", (exam_id,))]

    def current_calibration(self, exam_id: int) -> ExamCalibration | None:
        """The exam's latest calibration row (manual, or the file's again); None when nobody set one."""
        row = self._row("SELECT * FROM exam_calibrations WHERE exam_id = ? ORDER BY id DESC LIMIT 1", (exam_id,))
        return None if row is None else self._calibration(row)

    def manual_calibration(self, exam_id: int) -> ExamCalibration | None:
        """The manual calibration in force on the exam, or None when the file's own is (never set, or set back)."""
        current = self.current_calibration(exam_id)
        return current if current is not None and current.is_manual else None

    def history(self, exam_id: int) -> list[dict]:
        """The exam's audit trail, oldest first: its import, each analysis, each calibration a person set and each
        measurement row."""
        exam = self.exam(exam_id)
        events = [{"when": exam.imported_at, "event": "import", "by": None, "id": exam.id,
                   "detail": f"{exam.original_path} (sha256 {exam.file_sha256[:12]}), acquired "
                             f"{exam.acquired.isoformat()} from {exam.acquired_source}"}]
        for a in self.analyses(exam_id):
            placeholder = " [PLACEHOLDER model]" if a.model_placeholder else ""
            events.append({"when": a.analyzed_at, "event": "analysis", "by": a.model_label,
                           "id": a.id, "detail": (a.why or "") + placeholder})
        calibrations = self.calibrations(exam_id)

        def calibrations_before(measurement_id: int | None) -> None:
            # The calibrations set before that measurement row (None: all left), in the order they were written.
            while calibrations and (measurement_id is None
                                    or (calibrations[0].after_measurement_id or 0) < measurement_id):
                c = calibrations.pop(0)
                events.append({"when": c.created_at, "event": "calibration", "by": c.by, "id": c.id,
                               "detail": c.describe(), "kind": c.kind, "mm_per_px": c.mm_per_px, "note": c.note})

        for m in self.measurements(exam_id):
            calibrations_before(m.id)
            event = m.to_json()
            event.pop("geometry")
            events.append({"when": m.created_at, "event": m.kind, **event})
        calibrations_before(None)
        # Chronological (a re-analysis may follow a correction); the sort is stable for same-second rows.
        events.sort(key=lambda e: datetime.fromisoformat(e["when"]).timestamp())
        return events


def on_row_frame(row: Measurement, kept: "Callable[[int, int], Any]", latest: "Callable[[], int | None]") -> Any:
    """What an analysis kept of a measurement row's frame (``kept(analysis_id, frame_index)``, None where it kept
    nothing): the row's own analysis's, else the exam's latest analysis's (``latest()``: its id, None without one);
    None where neither kept that frame (or the row names none). The one rule :meth:`Records.frame_result_of` and
    :class:`FrameClasses` follow."""
    if row.frame_index is None:
        return None
    if row.analysis_id is not None:
        found = kept(row.analysis_id, row.frame_index)
        if found is not None:
            return found
    latest_id = latest()
    return None if latest_id is None else kept(latest_id, row.frame_index)


@dataclass(frozen=True)
class FrameClasses:
    """The plane classes of one exam's analysed frames (:meth:`Records.frame_classes`): ``kept`` maps (analysis id,
    frame index) to the class the AI gave that frame; ``latest_analysis_id`` is the exam's latest analysis."""

    exam_id: int
    kept: dict
    latest_analysis_id: int | None

    def of(self, row: Measurement | None) -> str | None:
        """The plane class the AI gave ``row``'s frame (a row of this exam), by :func:`on_row_frame`'s rule; None
        where no analysis classed that frame."""
        if row is None:
            return None
        found = on_row_frame(row, lambda a, i: (self.kept[(a, i)],) if (a, i) in self.kept else None,
                             lambda: self.latest_analysis_id)
        return None if found is None else found[0]


def current_of(rows: "list[Measurement]") -> Measurement | None:
    """The current measurement among an exam's rows, oldest first (:meth:`Records.current_measurement`'s rule)."""
    by_person = None
    for m in rows:
        if m.kind != AI:
            by_person = m
        elif by_person is not None and m.supersedes_id == by_person.id:
            by_person = None
    return by_person if by_person is not None else latest_ai_of(rows)


def latest_ai_of(rows: "list[Measurement]") -> Measurement | None:
    """The latest AI row among an exam's rows, oldest first."""
    return next((m for m in reversed(rows) if m.kind == AI), None)


def _plain(value):
    """numpy scalars (the pipeline's rounded regression values) as plain numbers for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json_text(value, indent: int | None = None) -> str:
    """JSON of records data (numpy scalars as plain numbers)."""
    return json.dumps(value, indent=indent, default=_plain)


def _dumps(value) -> str | None:
    return None if value is None else to_json_text(value)
