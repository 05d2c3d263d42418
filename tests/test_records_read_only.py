"""Records that can be read but not written (a read-only disk or mount, an archived copy, a folder or file without
write permission): opened read-only, every command that only reads works, every save is refused with one line, and
nothing is created, chmodded or migrated there.

Tests run as root here, where permission bits do not stop writes: the real case is a read-only bind mount (skipped
with the reason where mounting is not allowed), and the rule itself (``database.write_problem``) is checked by
monkeypatching it where a folder cannot be made read-only.
"""
from __future__ import annotations

import json
import sqlite3

import pytest

from gui_support import read_only_bind_mount
from records_support import demo_exam_file, run_cli, three_exam_labor
from workstation.records import Records, RecordsError, confirm
from workstation.records import database
from workstation.records.database import RecordsReadOnly


def _filed(tmp_path):
    """A data folder with three exams of one labour, closed (its WAL checkpointed away, as a copy would be made)."""
    data = tmp_path / "data"
    with Records(data) as records:
        exam_ids = three_exam_labor(records, tmp_path / "usb")
        labor_id = records.exam(exam_ids[0]).labor_id
    assert not (data / "records" / "records.sqlite3-wal").exists()
    return data, exam_ids, labor_id


def _snapshot(folder):
    return {p.relative_to(folder): (p.stat().st_mode, p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def test_records_on_a_read_only_mount_are_viewed_and_every_save_is_refused_in_one_line(tmp_path, capsys):
    data, exam_ids, labor_id = _filed(tmp_path)
    data.chmod(0o755)  # as an archived copy might be: the owner-only chmod must not be needed to read it
    before = _snapshot(data)
    with read_only_bind_mount(data, tmp_path / "archive") as archive:
        # Before the fix: secure_dir's os.chmod raised "OSError: [Errno 30] Read-only file system".
        with Records(archive) as records:
            assert [e.id for e in records.exams(labor_id)] == exam_ids
            assert records.current_measurement(exam_ids[0]).kind == "ai"
            with pytest.raises(RecordsReadOnly) as refused:
                confirm(records, exam_ids[0], "Dr Test")
            assert "read-only" in str(refused.value) and "\n" not in str(refused.value)

        # The commands that only read work on it, as they do on the original.
        assert run_cli(["patients", "--data-dir", str(archive), "--json"]) == 0
        assert [p["mrn"] for p in json.loads(capsys.readouterr().out)] == ["MRN-0042"]
        assert run_cli(["timeline", "--data-dir", str(archive), "--labor", str(labor_id), "--json"]) == 0
        assert len(json.loads(capsys.readouterr().out)["points"]) == 3
        assert run_cli(["history", "--data-dir", str(archive), "--exam", str(exam_ids[0])]) == 0
        assert "ai" in capsys.readouterr().out
        out = tmp_path / "report.pdf"
        assert run_cli(["report", "--data-dir", str(archive), "--exam", str(exam_ids[0]), str(out)]) == 0
        assert out.read_bytes().startswith(b"%PDF")
        capsys.readouterr()
        # A command that writes ends in one line saying the records are read-only, exit 2.
        assert run_cli(["confirm", "--data-dir", str(archive), "--exam", str(exam_ids[0]), "--user", "Dr T"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "read-only" in err[0] and "Traceback" not in err[0], err
    assert _snapshot(data) == before  # nothing written, chmodded or left beside it


def test_an_older_schema_on_a_read_only_mount_is_viewed_without_upgrading_it(tmp_path, capsys):
    """A schema-1 archive (before exam calibrations) is read as it is: the later tables exist, empty, in the
    connection only; the file is not migrated (it cannot be)."""
    data, exam_ids, _ = _filed(tmp_path)
    path = data / "records" / "records.sqlite3"
    with sqlite3.connect(path) as conn:  # back to what a version-1 workstation wrote
        for name in ("exam_calibrations_no_update", "exam_calibrations_no_delete"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE exam_calibrations")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    before = path.read_bytes()
    with read_only_bind_mount(data, tmp_path / "archive") as archive:
        with Records(archive) as records:
            assert records.manual_calibration(exam_ids[0]) is None
            assert records.current_measurement(exam_ids[0]) is not None
        assert run_cli(["calibrate", "--data-dir", str(archive), "--exam", str(exam_ids[0])]) == 0
        assert "the file's own calibration" in capsys.readouterr().out
    assert path.read_bytes() == before


def test_records_that_cannot_be_written_open_read_only_where_the_probe_says_so(tmp_path, monkeypatch):
    """The rule without a mount (as root a chmod stops nothing): where ``write_problem`` names a reason, the database
    is opened with SQLite's mode=ro, nothing is migrated or chmodded, and a save is refused before it starts."""
    data, exam_ids, _ = _filed(tmp_path)
    folder = data / "records"
    folder.chmod(0o750)
    monkeypatch.setattr(database, "write_problem", lambda _folder: "its folder cannot be written")
    with Records(data) as records:
        assert database.is_read_only(records._conn)
        assert folder.stat().st_mode & 0o777 == 0o750  # no chmod where nothing may be written
        assert records.current_measurement(exam_ids[0]).kind == "ai"
        with pytest.raises(RecordsReadOnly, match="read-only .its folder cannot be written."):
            confirm(records, exam_ids[0], "Dr Test")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # SQLite itself refuses too (mode=ro)
            records._conn.execute("INSERT INTO patients (mrn, created_at) VALUES ('X', 'now')")
    with Records(data) as records:  # nothing was written
        assert [m.kind for m in records.measurements(exam_ids[0])] == ["ai"]


def test_a_stale_import_temporary_that_cannot_be_removed_does_not_stop_the_records_opening(tmp_path, monkeypatch,
                                                                                          caplog):
    """A killed import's temporary copy left in a records folder that is now read-only (an archived copy, a read-only
    mount): the sweep at opening cannot delete it (EROFS). The records open all the same, the file is left where it
    is, and the log says why."""
    import errno
    import logging
    import os
    import time
    from pathlib import Path

    from workstation.records import filestore

    data, exam_ids, _ = _filed(tmp_path)
    stale = data / "records" / filestore.FILES_DIR / "ab" / f"{filestore._TEMP_PREFIX}killed-import"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a scan")
    old = time.time() - 2 * filestore._STALE_TEMP_S
    os.utime(stale, (old, old))
    real_unlink = Path.unlink

    def unlink(path, *args, **kwargs):
        if path.name.startswith(filestore._TEMP_PREFIX):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink)
    with caplog.at_level(logging.WARNING, logger=filestore.__name__):
        with Records(data) as records:
            assert records.current_measurement(exam_ids[0]).kind == "ai"
    assert stale.exists()
    assert any("could not be removed" in r.getMessage() and "Read-only file system" in r.getMessage()
               for r in caplog.records)
    monkeypatch.setattr(Path, "unlink", real_unlink)  # once it can be written, the next opening sweeps it
    with Records(data):
        assert not stale.exists()


def test_a_read_only_folder_without_records_says_so_and_creates_nothing(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    (empty / "records").mkdir(parents=True)
    monkeypatch.setattr(database, "write_problem", lambda _folder: "it is on a read-only file system")
    with pytest.raises(RecordsError, match="no records here .* none can be created"):
        Records(empty)
    assert list((empty / "records").iterdir()) == []


def test_a_records_folder_that_cannot_be_created_is_one_records_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RecordsError, match="cannot be created"):
        Records(blocker / "data")


@pytest.mark.parametrize("analyze", [True, False], ids=["analysed", "no-analyze"])
def test_an_import_into_read_only_records_is_refused_in_one_line(tmp_path, capsys, monkeypatch, analyze):
    """The records' own read-only line, said first: the scan is not analysed and no copy is tried (before: the scan
    was analysed, then its copy failed with "records/files/b6: this records folder cannot be created (Read-only file
    system)")."""
    from workstation.inference import pipeline

    analysed = []
    monkeypatch.setattr(pipeline, "analyze_cine", lambda *a, **k: analysed.append(1) or pytest.fail("analysed"))
    data, _, _ = _filed(tmp_path)
    scan = demo_exam_file(tmp_path / "new", seed=7, hours=5.0)
    with read_only_bind_mount(data, tmp_path / "archive") as archive:
        argv = ["import", "--data-dir", str(archive), "--quiet", str(scan)]
        assert run_cli(argv if analyze else argv[:-1] + ["--no-analyze", str(scan)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert err == [f"error: {archive / 'records'}: the records are read-only (it is on a read-only file system): "
                       "they can be viewed, nothing can be saved to them"], err
        assert analysed == []
        with Records(archive) as records:
            assert len(records.patients()) == 1
    with Records(data) as records:
        with pytest.raises(RecordsError):
            records.exam(4)


@pytest.mark.parametrize("analyze", [True, False], ids=["analysed", "no-analyze"])
def test_an_import_into_read_only_records_is_refused_before_the_model_is_loaded(tmp_path, capsys, monkeypatch,
                                                                                analyze):
    """The records are opened, and refused in their one line, before the (slow) model load: no engine is built for
    an import that could never be filed (before: the model was loaded first, then each file was refused)."""
    from workstation.inference import engine

    monkeypatch.setattr(engine, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    data, _, _ = _filed(tmp_path)
    scan = demo_exam_file(tmp_path / "new", seed=7, hours=5.0)
    monkeypatch.setattr(database, "write_problem", lambda _folder: "its folder cannot be written")
    argv = ["import", "--data-dir", str(data), "--quiet", *([] if analyze else ["--no-analyze"]), str(scan),
            str(scan)]
    assert run_cli(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {data / 'records'}: the records are read-only (its folder cannot be written): they can be viewed, "
        "nothing can be saved to them"]
    with Records(data) as records:
        assert len(records.patients()) == 1 and len(records.exams(records.labors(records.patients()[0].id)[0])) == 3


def test_a_damaged_records_file_on_a_read_only_mount_is_refused_as_damaged(tmp_path):
    from workstation.records.database import RecordsDamaged

    data, _, _ = _filed(tmp_path)
    path = data / "records" / "records.sqlite3"
    path.write_text("not a database\n" * 100)
    with read_only_bind_mount(data, tmp_path / "archive") as archive:
        with pytest.raises(RecordsDamaged, match="damaged"):
            Records(archive)
