"""Records database: schema and migrations, permissions, append-only measurements, current value, history."""
from __future__ import annotations

import sqlite3
import stat
from datetime import datetime

import pytest

from records_support import add_ai_row, demo_exam_file
from workstation.records import Records, RecordsError, import_scan
from workstation.records import database


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_database_is_migrated_wal_with_foreign_keys(tmp_path):
    with Records(tmp_path) as records:
        conn = records._conn
        assert database.schema_version(conn) == database.SCHEMA_VERSION == len(database.MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert records.integrity_problems() == []
        with pytest.raises(sqlite3.IntegrityError):  # no labour of a patient that does not exist
            conn.execute("INSERT INTO labors (patient_id, created_at) VALUES (999, 'now')")


def test_migrations_apply_in_order_once_and_refuse_a_newer_database(tmp_path):
    conn = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    steps = [["CREATE TABLE a (x)"], ["CREATE TABLE b (y)", "INSERT INTO b VALUES (1)"]]
    assert database.migrate(conn, steps[:1]) == 1
    assert database.migrate(conn, steps) == 2
    assert database.migrate(conn, steps) == 2  # nothing re-applied
    assert conn.execute("SELECT COUNT(*) FROM b").fetchone()[0] == 1
    with pytest.raises(RecordsError, match="newer than this workstation"):
        database.migrate(conn, steps[:1])


def test_a_failing_migration_step_leaves_the_previous_version(tmp_path):
    conn = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        database.migrate(conn, [["CREATE TABLE a (x)"], ["CREATE TABLE b (y)", "NOT SQL"]])
    assert database.schema_version(conn) == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'b'").fetchone() is None


def test_folders_are_0700_and_files_0600(tmp_path):
    with Records(tmp_path) as records:
        result = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0))
        copy = records.file_path(result.exam)
        assert _mode(records.root) == 0o700
        assert _mode(records.root / "files") == 0o700 and _mode(copy.parent) == 0o700
        assert _mode(copy) == 0o600
        for name in ("records.sqlite3", "records.sqlite3-wal", "records.sqlite3-shm"):
            assert _mode(records.root / name) == 0o600, name


def test_measurements_are_append_only_and_the_current_value_prefers_a_person(tmp_path):
    with Records(tmp_path) as records:
        exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0)).exam
        assert records.current_measurement(exam.id) is None
        first_ai = add_ai_row(records, exam.id, 1)
        assert records.current_measurement(exam.id).id == first_ai.id
        confirmed = records.add_measurement(exam.id, "confirmation", "Dr A", {"aop_deg": first_ai.aop_deg},
                                            supersedes_id=first_ai.id)
        later_ai = add_ai_row(records, exam.id, 3)  # a re-analysis does not override a person's value
        assert records.current_measurement(exam.id).id == confirmed.id
        assert records.latest_ai_measurement(exam.id).id == later_ai.id
        assert [m.kind for m in records.measurements(exam.id)] == ["ai", "confirmation", "ai"]
        _assert_append_only(records, "UPDATE measurements SET aop_deg = 1", "DELETE FROM measurements")
        assert records.measurement(first_ai.id).aop_deg == first_ai.aop_deg


def _assert_append_only(records, *statements):
    for sql in statements:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            records._conn.execute(sql)


def test_add_measurement_refuses_unknown_kind_missing_user_and_unknown_exam(tmp_path):
    with Records(tmp_path) as records:
        exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0)).exam
        with pytest.raises(RecordsError, match="kind"):
            records.add_measurement(exam.id, "guess", "Dr A", {})
        with pytest.raises(RecordsError, match="who"):
            records.add_measurement(exam.id, "correction", "  ", {})
        with pytest.raises(RecordsError, match="no exam with id 99"):
            records.add_measurement(99, "correction", "Dr A", {})


def test_a_failed_save_inside_a_transaction_saves_nothing(tmp_path):
    with Records(tmp_path) as records:
        with pytest.raises(RuntimeError):
            with records.transaction():
                records.get_or_create_patient("MRN-1", "A")
                raise RuntimeError("crash mid-save")
        assert records.patients() == []


def test_a_database_that_refuses_writes_is_a_records_error_and_keeps_what_was_saved(tmp_path):
    with Records(tmp_path) as records:
        exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0)).exam
        saved = add_ai_row(records, exam.id, 1)
        records._conn.execute("PRAGMA query_only = ON")  # sqlite itself now refuses every write, as a read-only disk
        with pytest.raises(RecordsError, match="could not be saved .*readonly.* earlier records are unchanged"):
            records.add_measurement(exam.id, "correction", "Dr A", {"aop_deg": 120.0}, supersedes_id=saved.id)
        records._conn.execute("PRAGMA query_only = OFF")
        assert [m.id for m in records.measurements(exam.id)] == [saved.id]
        assert not records._conn.in_transaction  # the failed save left no transaction open
        later = records.add_measurement(exam.id, "correction", "Dr A", {"aop_deg": 120.0}, supersedes_id=saved.id)
        assert records.current_measurement(exam.id).id == later.id
        records._conn.close()
        with pytest.raises(RecordsError, match="could not be read"):
            records.exam(exam.id)


def test_history_lists_import_analysis_and_every_row_in_order(tmp_path):
    from records_support import tiny_model

    with Records(tmp_path / "data") as records:
        model = tiny_model(tmp_path)
        exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0), model=model).exam
        label = records.latest_analysis(exam.id).model_label
        add_ai_row(records, exam.id, 2)
        records.add_measurement(exam.id, "correction", "Dr A", {"aop_deg": 130.0}, note="moved")
        events = records.history(exam.id)
        _assert_append_only(records, "UPDATE frame_results SET aop_deg = 1", "DELETE FROM frame_results",
                            "UPDATE analyses SET why = ''", "DELETE FROM analyses")
    assert [e["event"] for e in events] == ["import", "analysis", "ai", "ai", "correction"]
    assert events[1]["by"] == "tiny 0.0.1" and "PLACEHOLDER" in events[1]["detail"]
    assert events[2]["by"] == label == model.manifest.label == "tiny 0.0.1"  # the model's name, one definition
    assert events[-1]["by"] == "Dr A" and events[-1]["note"] == "moved" and events[-1]["source"] == "confirmed"
    times = [datetime.fromisoformat(e["when"]) for e in events]
    assert times == sorted(times)


def test_a_labor_without_a_set_start_starts_at_its_earliest_exam(tmp_path):
    with Records(tmp_path / "data") as records:
        later = import_scan(records, demo_exam_file(tmp_path, seed=1, hours=2.0))
        earlier = import_scan(records, demo_exam_file(tmp_path, seed=2, hours=0.5))  # imported out of order
        labor = records.labor(later.labor.id)
        assert earlier.labor.id == labor.id and labor.start_source == "first_exam"
        assert labor.start == earlier.exam.acquired
        explicit = records.create_labor(labor.patient_id, start=datetime(2026, 3, 1, 6, 0), notes="induction")
        assert records.labor(explicit.id).start == datetime(2026, 3, 1, 6, 0)
        assert records.labors(labor.patient_id)[0].id == labor.id  # most recent start first


def test_display_name_reads_dicom_person_names_as_people_write_them():
    from workstation.records.store import display_name

    assert display_name("Иванова^Мария") == "Иванова, Мария"
    assert display_name("Doe^Jane^Q") == "Doe, Jane Q" and display_name("Doe, Jane") == "Doe, Jane"
    assert display_name("Yamada^Tarou=山田^太郎") == "Yamada, Tarou = 山田, 太郎"
    assert display_name("李") == "李" and display_name("  Smith   John ") == "Smith John"
    assert display_name("^Jane") == "Jane" and display_name(None) is None and display_name("") is None


def test_a_records_file_of_the_first_schema_opens_migrated_with_everything_kept(tmp_path, monkeypatch):
    """A records file written before exam calibrations were kept (schema version 1, as a ward's existing records
    are): it opens, is migrated to the current version in place, keeps every row, and takes a manual calibration."""
    from workstation.records import set_exam_calibration

    with monkeypatch.context() as old_workstation:  # the workstation as it was: the first schema step only
        old_workstation.setattr(database, "MIGRATIONS", database.MIGRATIONS[:1])
        with Records(tmp_path) as records:
            exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0)).exam
            ai = add_ai_row(records, exam.id, 1)
            confirmed = records.add_measurement(exam.id, "confirmation", "Dr A", {"aop_deg": ai.aop_deg},
                                                supersedes_id=ai.id, frame_index=1, geometry=ai.geometry,
                                                calibration_source=ai.calibration_source)
            assert database.schema_version(records._conn) == 1
            assert not records._conn.execute("SELECT name FROM sqlite_master WHERE name = 'exam_calibrations'"
                                              ).fetchone()
            records._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = tmp_path / "records" / database.DATABASE_NAME
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1

    with Records(tmp_path) as records:
        assert database.schema_version(records._conn) == database.SCHEMA_VERSION >= 2
        assert records.integrity_problems() == []
        assert records.exam(exam.id) == exam
        assert [m.id for m in records.measurements(exam.id)] == [ai.id, confirmed.id]
        assert records.current_measurement(exam.id) == records.measurement(confirmed.id)
        assert records.calibrations(exam.id) == [] and records.manual_calibration(exam.id) is None
        assert [e["event"] for e in records.history(exam.id)] == ["import", "ai", "confirmation"]
        change = set_exam_calibration(records, exam.id, 0.25, "Dr B")
        assert change.calibration.kind == "manual" and change.calibration.after_measurement_id == confirmed.id
        _assert_append_only(records, "UPDATE exam_calibrations SET mm_per_px = 1", "DELETE FROM exam_calibrations")
    with Records(tmp_path) as records:  # and it is kept: the next opening finds it in force
        assert records.manual_calibration(exam.id).mm_per_px == 0.25
        assert database.schema_version(records._conn) == database.SCHEMA_VERSION
