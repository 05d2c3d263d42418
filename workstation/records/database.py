"""The records database: one SQLite file, its schema migrations, and the transaction every save runs in.

Durability choices (a labour ward record must survive a killed process or a pulled plug):

* WAL journal: readers (the GUI's timeline) never block the writer, and a killed writer leaves the last
  committed state intact; ``synchronous=FULL`` so a committed save survives a power cut too.
* Foreign keys on: no exam without its labour, no measurement without its exam.
* Schema versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` is applied in order, each step in its
  own transaction together with the version bump, so a crash mid-migration leaves the previous version.
* Measurements, analyses, per-frame results and exam calibrations are append-only: triggers refuse UPDATE and
  DELETE, so a correction can only ever be a new row and the audit trail cannot be rewritten by a bug.
* The database file is created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the
  database file's permissions.
* A damaged file (truncated, overwritten, not SQLite at all, or emptied while the scans it indexed are still
  stored beside it) is a :class:`RecordsDamaged` naming the file, raised before anything is written to it: it is
  never migrated over, "repaired" or replaced here, so whatever it still holds can be recovered from it or its
  backup.
* A records folder that cannot be written (a read-only disk or mount, an archived copy, a folder or file without
  write permission) is opened read-only (SQLite ``mode=ro``; where SQLite cannot make the WAL index beside it,
  ``immutable=1`` as long as no WAL journal still holds commits): everything can be read, and
  every save is refused before it starts with one :class:`RecordsReadOnly` line. Nothing is created, chmodded or
  migrated there.
* A missing file is created only in a folder that stores no scans yet. Where scans are stored but the file is gone
  (deleted, moved away), :class:`RecordsMissing` says so and nothing is created: a fresh empty database there would
  hide, from this run and every later one, that those scans lost their index.
"""
from __future__ import annotations

import os
import re
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from workstation.errors import WorkstationError

DATABASE_NAME = "records.sqlite3"
BUSY_TIMEOUT_MS = 10_000  # the GUI and a CLI import may write at the same time; wait rather than fail


class RecordsError(WorkstationError):
    """A records operation the user can fix: an unknown id, a patient mismatch, a newer database..."""


class RecordsDamaged(RecordsError):
    """The records file is damaged or is not a records database; it was left exactly as it was."""


class RecordsMissing(RecordsError):
    """The records file is missing while scans it indexed are stored beside it; nothing was created."""


class RecordsReadOnly(RecordsError):
    """The records can be read but not written (a read-only disk, mount or folder); nothing was saved."""


class RecordsConnection(sqlite3.Connection):
    """A records connection; ``read_only`` when it was opened read-only (every transaction is refused)."""

    read_only = False
    records_path: Path | None = None
    read_only_reason = ""


_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def is_damage(exc: BaseException) -> bool:
    """Whether a sqlite3 error says the file itself is damaged (not locked, full or read-only)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def damaged(path: Path, exc: BaseException | str) -> RecordsDamaged:
    """The one-line error for a damaged records file (``exc``: SQLite's own words)."""
    return RecordsDamaged(f"{path}: the records file is damaged ({exc}); it was left as it is, nothing was "
                          "written to it. Restore it from a backup or have it recovered; do not delete it")


def sqlite_failure(path: Path, exc: sqlite3.Error, message: str) -> RecordsError:
    """A sqlite3 error on the records file ``path`` as one line: :func:`damaged` where the file itself is damaged
    (:func:`is_damage`), else ``message``."""
    return damaged(path, exc) if is_damage(exc) else RecordsError(message)


def _append_only(table: str) -> list[str]:
    return [f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END"]


# Each step: the statements that take the schema from version i to i + 1. Never edit a released step;
# append a new one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE patients (
            id INTEGER PRIMARY KEY,
            mrn TEXT NOT NULL UNIQUE CHECK (length(trim(mrn)) > 0),
            name TEXT,
            birth_date TEXT,                -- ISO date or NULL
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE labors (
            id INTEGER PRIMARY KEY,
            patient_id INTEGER NOT NULL REFERENCES patients(id),
            start_time TEXT,                -- NULL: the labour starts at its earliest exam (automatic labours)
            notes TEXT,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX labors_patient ON labors(patient_id)",
        """CREATE TABLE files (
            sha256 TEXT PRIMARY KEY CHECK (length(sha256) = 64),
            relpath TEXT NOT NULL,          -- under the records folder, e.g. files/ab/abcdef....dcm
            size_bytes INTEGER NOT NULL,
            stored_at TEXT NOT NULL
        )""",
        """CREATE TABLE exams (
            id INTEGER PRIMARY KEY,
            labor_id INTEGER NOT NULL REFERENCES labors(id),
            file_sha256 TEXT NOT NULL UNIQUE REFERENCES files(sha256),
            original_path TEXT NOT NULL,
            acquired_at TEXT NOT NULL,      -- ISO date-time, the scanner's clock (naive local time)
            acquired_source TEXT NOT NULL,  -- "user", "AcquisitionDateTime", ..., "file_mtime"
            dicom_patient_id TEXT,          -- as the file said, kept when --force-mrn filed it elsewhere
            study_instance_uid TEXT,
            sop_instance_uid TEXT,
            n_frames INTEGER NOT NULL,
            frame_rows INTEGER NOT NULL,
            frame_cols INTEGER NOT NULL,
            calibration_source TEXT NOT NULL,
            imported_at TEXT NOT NULL
        )""",
        "CREATE INDEX exams_labor ON exams(labor_id, acquired_at)",
        """CREATE TABLE analyses (
            id INTEGER PRIMARY KEY,
            exam_id INTEGER NOT NULL REFERENCES exams(id),
            model_name TEXT NOT NULL,
            model_version TEXT NOT NULL,
            model_sha256 TEXT NOT NULL,
            model_placeholder INTEGER NOT NULL,
            n_frames INTEGER NOT NULL,      -- frame_results rows this analysis holds (a consistency check)
            chosen_frame INTEGER,
            why TEXT,
            analyzed_at TEXT NOT NULL
        )""",
        "CREATE INDEX analyses_exam ON analyses(exam_id)",
        """CREATE TABLE frame_results (
            analysis_id INTEGER NOT NULL REFERENCES analyses(id),
            frame_index INTEGER NOT NULL,
            time_s REAL,
            frame_class TEXT,
            aop_deg REAL,
            hsd_px REAL,
            hsd_mm REAL,
            uncertainty REAL,
            geometry_json TEXT,
            detail_json TEXT NOT NULL,      -- the whole per-frame `analyze` JSON, for anything not in a column
            PRIMARY KEY (analysis_id, frame_index)
        )""",
        """CREATE TABLE measurements (
            id INTEGER PRIMARY KEY,
            exam_id INTEGER NOT NULL REFERENCES exams(id),
            analysis_id INTEGER REFERENCES analyses(id),
            kind TEXT NOT NULL CHECK (kind IN ('ai', 'correction', 'confirmation')),
            supersedes_id INTEGER REFERENCES measurements(id),  -- the row a correction/confirmation acted on
            by TEXT NOT NULL,               -- a person's name, or the model ("tiny 0.0.1") for AI rows
            created_at TEXT NOT NULL,
            frame_index INTEGER,
            time_s REAL,
            aop_deg REAL,
            hsd_px REAL,
            hsd_mm REAL,
            hc_mm REAL,
            bpd_mm REAL,
            ofd_mm REAL,
            ga_weeks REAL,
            uncertainty REAL,               -- the AI's; NULL for a person's correction
            calibration_source TEXT,
            geometry_json TEXT,
            reasons_json TEXT NOT NULL DEFAULT '{}',
            note TEXT
        )""",
        "CREATE INDEX measurements_exam ON measurements(exam_id, id)",
        *_append_only("analyses"),
        *_append_only("frame_results"),
        *_append_only("measurements"),
    ],
    [
        # Version 2: an exam's calibration as a person set it (a manual scale drawn on the depth scale or entered
        # headless), or a return to the file's own; the latest row is in force (none: the file's). Append-only like
        # the measurements, so who set which scale and when stays on record.
        """CREATE TABLE exam_calibrations (
            id INTEGER PRIMARY KEY,
            exam_id INTEGER NOT NULL REFERENCES exams(id),
            kind TEXT NOT NULL CHECK (kind IN ('manual', 'file')),
            mm_per_px REAL CHECK ((kind = 'manual' AND mm_per_px > 0) OR (kind = 'file' AND mm_per_px IS NULL)),
            detail TEXT,                    -- e.g. "drawn on the depth scale by Dr A: 50 mm over 200.0 px, ..."
            by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            after_measurement_id INTEGER REFERENCES measurements(id),  -- the exam's latest row then (history order)
            note TEXT
        )""",
        "CREATE INDEX exam_calibrations_exam ON exam_calibrations(exam_id, id)",
        *_append_only("exam_calibrations"),
    ],
    [
        # Version 3: whose each value of a person's row is (``workstation.sources``): a correction moves some calipers
        # only, and the values of the others stay the AI's (or an earlier person's). JSON {"aop"|"hsd"|"head":
        # {"kind", "by", "at"}}; NULL (rows written before, AI rows, confirmations): every value is the row's own.
        "ALTER TABLE measurements ADD COLUMN sources_json TEXT",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


def secure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it owner-only: patient data must not be readable by others.

    A folder that exists but cannot be written (a read-only disk or mount, an archived copy) is left as it is: its
    records are opened read-only (:func:`connect`). One that cannot be created is a :class:`RecordsError` naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise RecordsError(f"{path}: this records folder cannot be created ({exc.strerror or exc}); nothing was "
                           "written") from None
    if not path.is_dir():
        raise RecordsError(f"{path}: the records folder is not a folder")
    if write_problem(path) is None:
        try:
            os.chmod(path, 0o700)  # mkdir's mode is cut by the umask and ignored for a folder that already existed
        except PermissionError:
            pass  # someone else's folder we may write to: its owner keeps its permissions
    return path


def write_problem(folder: Path) -> str | None:
    """Why the records in ``folder`` cannot be written (a read-only file system, a folder or database file without
    write permission), or None when they can. ``os.access`` asks the kernel as this process, so a read-only mount
    refuses even root, whom permission bits do not stop."""
    folder = Path(folder)
    if _read_only_file_system(folder):
        return "it is on a read-only file system"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "its folder cannot be written"
    path = folder / DATABASE_NAME
    if path.exists() and not os.access(path, os.W_OK):
        return f"{DATABASE_NAME} cannot be written"
    return None


def _read_only_file_system(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows) or no folder: os.access decides
        return False


def is_read_only(conn: sqlite3.Connection) -> bool:
    """Whether ``conn`` was opened read-only (:func:`connect` on records that cannot be written)."""
    return bool(getattr(conn, "read_only", False))


def read_only_reason(conn: sqlite3.Connection) -> str | None:
    """Why ``conn`` was opened read-only (the :func:`write_problem` its opening found), or None: it can be written."""
    if not is_read_only(conn):
        return None
    return getattr(conn, "read_only_reason", "") or "they cannot be written"


def read_only_error(conn: sqlite3.Connection) -> RecordsReadOnly:
    """The one line for a save refused on read-only records."""
    where = getattr(conn, "records_path", None)
    why = read_only_reason(conn) or "they cannot be written"
    return RecordsReadOnly(f"{where.parent if where else 'the records'}: the records are read-only ({why}): they can "
                           "be viewed, nothing can be saved to them")


def connect(folder: Path) -> sqlite3.Connection:
    """Open (creating and migrating as needed) the records database in ``folder``; read-only (no creation, chmod or
    migration, every transaction refused) where the records cannot be written (:func:`write_problem`)."""
    secure_dir(folder)
    path = folder / DATABASE_NAME
    problem = write_problem(folder)
    if problem is not None:
        return _connect_read_only(folder, path, problem)
    if not path.exists():
        stored = _stored_file_count(folder)
        if stored:
            # A new database is only ever made before the first scan is filed: these scans lost their index.
            raise RecordsMissing(f"{folder}: the records index {DATABASE_NAME} is missing, but stored scans are there "
                                 f"({stored} file(s) under files/); nothing was created. Restore {DATABASE_NAME} "
                                 "into this folder from a backup; the stored scans were left as they are")
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    elif path.stat().st_size == 0 and _stored_file_count(folder):
        # A new database starts empty, but never beside scans already filed: this one lost what indexed them.
        raise damaged(path, "it is empty, but scans are stored beside it")
    os.chmod(path, 0o600)
    # isolation_level=None: no implicit transactions; every save opens its own with transaction().
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                           factory=RecordsConnection)
    conn.records_path = path
    try:
        conn.row_factory = sqlite3.Row
        # Read before anything is written (journal_mode and a migration write): a damaged file is refused untouched.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise sqlite_failure(path, exc, f"{path}: the records could not be opened ({exc})") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_read_only(folder: Path, path: Path, problem: str) -> sqlite3.Connection:
    """The records of a folder that cannot be written, opened read-only (see the module's notes)."""
    if not path.exists():
        raise RecordsError(f"{folder}: there are no records here ({DATABASE_NAME} is missing) and none can be created: "
                           f"{problem}")
    if path.stat().st_size == 0:
        raise damaged(path, "it is empty") if _stored_file_count(folder) else RecordsError(
            f"{path}: the records file is empty (never written) and the folder is read-only ({problem})")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    wal = path.with_name(path.name + "-wal")
    try:
        try:
            conn = _open_read_only(uri)
        except sqlite3.OperationalError as exc:
            # A WAL database needs its index (-shm) beside it, which SQLite cannot make in a folder it may not write.
            # Without a WAL journal still holding commits (a database closed by its last writer has none, and no
            # writer has it open: that one would keep the journal there), the file alone is the whole of the records:
            # read it as immutable (no locks, no journal).
            if is_damage(exc) or (wal.exists() and wal.stat().st_size > 0):
                raise
            conn = _open_read_only(f"{uri}&immutable=1")
    except sqlite3.Error as exc:
        raise sqlite_failure(path, exc, f"{path}: the records could not be opened read-only ({exc}; {problem}). Copy "
                                        "the whole records folder to a writable place to view it") from None
    conn.records_path, conn.read_only, conn.read_only_reason = path, True, problem
    try:
        version = schema_version(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise sqlite_failure(path, exc, f"{path}: the records could not be opened read-only ({exc})") from None
    if version > SCHEMA_VERSION:
        conn.close()
        raise RecordsError(f"the records database has schema version {version}, newer than this workstation "
                           f"knows ({SCHEMA_VERSION}); update the workstation before opening it")
    if version < SCHEMA_VERSION and not _view_older_schema(conn, version):
        conn.close()
        raise RecordsError(f"{path}: the records have schema version {version} and need upgrading to "
                           f"{SCHEMA_VERSION}, which cannot be done here ({problem}); open a writable copy of the "
                           "records folder once to upgrade it")
    return conn


def _view_older_schema(conn: sqlite3.Connection, version: int) -> bool:
    """Read-only records of an older schema, viewed without upgrading the file: where the later steps only add tables
    (their rows did not exist then: schema 2's exam calibrations), each is made empty in this connection's TEMP
    schema, which the file's own tables resolve beside; where they add a nullable column to a table (schema 3's
    measurement sources), its rows read it as NULL, as the readers take a column that is not there
    (``Records._measurement``). False when a step changes an existing table otherwise."""
    statements = [statement for step in MIGRATIONS[version:] for statement in step]
    if not all(re.match(r"\s*CREATE\s+(TABLE|INDEX|TRIGGER)\b", st, re.IGNORECASE) or _adds_nullable_column(st)
               for st in statements):
        return False
    try:
        for statement in statements:  # an empty table needs neither its index nor its append-only triggers
            if re.match(r"\s*CREATE\s+TABLE\b", statement, re.IGNORECASE):
                conn.execute(re.sub(r"^\s*CREATE\s+TABLE\b", "CREATE TEMP TABLE", statement, flags=re.IGNORECASE))
    except sqlite3.Error:
        return False
    return True


def _adds_nullable_column(statement: str) -> bool:
    """``ALTER TABLE t ADD COLUMN c TYPE`` with no constraint or default: rows written before read it as NULL."""
    return re.fullmatch(r"\s*ALTER\s+TABLE\s+\w+\s+ADD\s+COLUMN\s+\w+\s+\w+\s*", statement, re.IGNORECASE) is not None


def _open_read_only(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                           check_same_thread=False, factory=RecordsConnection)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the file: a failure is raised here
    except BaseException:
        conn.close()
        raise
    return conn


def _stored_file_count(folder: Path) -> int:
    """How many files are stored under ``folder/files`` (the imported scans); 0 for a new folder."""
    files = folder / "files"
    return sum(1 for p in files.rglob("*") if p.is_file()) if files.is_dir() else 0


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: list[list[str]] | None = None) -> int:
    """Apply the steps past the database's version, one transaction each; returns the final version."""
    migrations = MIGRATIONS if migrations is None else migrations
    version = schema_version(conn)
    if version > len(migrations):
        raise RecordsError(f"the records database has schema version {version}, newer than this workstation "
                           f"knows ({len(migrations)}); update the workstation before opening it")
    for number in range(version, len(migrations)):
        with transaction(conn):
            # Re-read inside the lock: another process may have migrated meanwhile.
            if schema_version(conn) > number:
                continue
            for statement in migrations[number]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
    return schema_version(conn)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One save: BEGIN IMMEDIATE (take the write lock up front, so no deadlock on upgrade), COMMIT or ROLLBACK."""
    if is_read_only(conn):  # refused before it starts: one line saying why, not SQLite's "readonly database"
        raise read_only_error(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT (disk full, locked) leaves it open: undo it whole
            conn.execute("ROLLBACK")
        raise


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """``PRAGMA integrity_check`` and ``foreign_key_check``; an empty list when the database is sound."""
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    problems = [] if rows == ["ok"] else rows
    problems += [f"foreign key: {tuple(r)}" for r in conn.execute("PRAGMA foreign_key_check").fetchall()]
    return problems
