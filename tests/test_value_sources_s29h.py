"""Review 29 finding 2: a correction that moves some calipers only leaves the other values whose they were.

Moving only the HSD caliper must not make the AI's untouched AoP read "(corrected)" by that person: not in the
records (``workstation.sources.source_of``), the CLI's ``correct``/``history``/``timeline`` lines, the timeline JSON
(a point's ``source`` is its AoP's), the exam PDF's Source/By, nor the window's labels, panel and timeline dock. Real
SQLite records, real Qt widgets offscreen, real mouse drags; a schema-2 records file made by this code is migrated.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from records_support import demo_exam_file, run_cli, save_analysis_with_uncertainties
from test_records_review import exam, records  # noqa: F401 (the fixtures: an exam analysed on four frames)
from workstation.records import Records, confirm, correct, database, import_scan, labor_timeline



def _sources(row) -> dict:
    from workstation.sources import source_of

    return {q: (source_of(row, q)["kind"], source_of(row, q)["by"]) for q in ("aop", "hsd", "head")}


def _moved_hsd(ai) -> dict:
    end = ai.geometry["hsd"]["end"]
    return {"hsd": {"end": [end[0], end[1] + 8]}}


def _moved_tangent(ai) -> dict:
    x, y = ai.geometry["aop"]["tangent_point"]
    return {"aop": {"tangent_point": [x + 6, y - 4]}}


def test_an_hsd_only_correction_leaves_the_ais_aop_the_ais_everywhere_headless(records, exam, tmp_path, capsys):
    ai = records.current_measurement(exam.id)
    row = correct(records, exam.id, 0, _moved_hsd(ai), "MW Rose")
    assert row.aop_deg == pytest.approx(ai.aop_deg) and row.hsd_px != pytest.approx(ai.hsd_px)
    assert _sources(row)["aop"] == ("ai", "tiny 0.0.1")
    assert _sources(row)["hsd"] == ("correction", "MW Rose")
    point = labor_timeline(records, exam.labor_id)["points"][0]
    assert point["source"] == "ai" and point["hsd_source"] == "confirmed"  # the sonopartogram's AoP is the AI's
    assert point["sources"]["aop"]["kind"] == "ai" and point["sources"]["hsd"]["by"] == "MW Rose"

    data = str(tmp_path / "data")
    assert run_cli(["timeline", "--data-dir", data, "--labor", str(exam.labor_id)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.strip().startswith("exam"))
    assert "AoP AI, HSD correction by MW Rose" in line
    assert run_cli(["history", "--data-dir", data, "--exam", str(exam.id)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if " correction " in l)
    assert "values: AoP the AI's (unchanged), HSD correction by MW Rose" in line
    # A correction made from the command line says the same.
    end = ai.geometry["hsd"]["end"]
    assert run_cli(["correct", "--data-dir", data, "--exam", str(exam.id), "--frame", "0", "--user", "MW Rose",
                    "--geometry", json.dumps({"hsd": {"end": [end[0], end[1] + 9]}})]) == 0
    assert "values: AoP the AI's (unchanged), HSD correction by MW Rose" in capsys.readouterr().out
    assert run_cli(["history", "--data-dir", data, "--exam", str(exam.id), "--json"]) == 0
    events = [e for e in json.loads(capsys.readouterr().out) if e["event"] == "correction"]
    assert all(e["sources"]["aop"]["kind"] == "ai" and e["sources"]["hsd"]["kind"] == "correction" for e in events)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_the_exam_pdf_gives_each_value_its_own_source_and_author(records, exam, tmp_path):
    from workstation.reports import write_exam_report

    ai = records.current_measurement(exam.id)
    correct(records, exam.id, 0, _moved_hsd(ai), "MW Rose")
    path = write_exam_report(records, exam.id, tmp_path / "exam.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    aop_row = next(l for l in text.splitlines() if l.strip().startswith("AoP") and "deg" in l)
    hsd_row = next(l for l in text.splitlines() if l.strip().startswith("HSD") and "MW Rose" in l)
    assert " AI " in aop_row and "MW Rose" not in aop_row and "corrected" not in aop_row
    assert "corrected" in hsd_row


def test_a_tangent_only_correction_leaves_the_ais_hsd_the_ais(records, exam):
    ai = records.current_measurement(exam.id)
    row = correct(records, exam.id, 0, _moved_tangent(ai), "Dr B")
    assert row.aop_deg != pytest.approx(ai.aop_deg) and row.hsd_px == pytest.approx(ai.hsd_px)
    assert _sources(row)["aop"] == ("correction", "Dr B") and _sources(row)["hsd"] == ("ai", "tiny 0.0.1")
    point = labor_timeline(records, exam.labor_id)["points"][0]
    assert point["source"] == "confirmed" and point["hsd_source"] == "ai"


def test_each_value_keeps_its_author_through_corrections_a_calibration_and_a_confirmation(records, exam):
    from workstation.records import set_exam_calibration

    ai = records.current_measurement(exam.id)
    first = correct(records, exam.id, 0, _moved_hsd(ai), "Alice")
    second = correct(records, exam.id, 0, _moved_tangent(ai), "Bob")
    assert _sources(second)["aop"] == ("correction", "Bob") and _sources(second)["hsd"] == ("correction", "Alice")
    assert _sources(first)["aop"][0] == "ai"
    # A calibration measures Bob's row again: its values keep their authors.
    change = set_exam_calibration(records, exam.id, 0.3, "Dr Cal")
    again = records.current_measurement(exam.id)
    assert again.id != second.id and again in change.measurements and again.kind == "correction"
    assert _sources(again)["aop"] == ("correction", "Bob") and _sources(again)["hsd"] == ("correction", "Alice")
    # A confirmation makes every value the confirmer's.
    confirmed = confirm(records, exam.id, "Carol")
    assert set(_sources(confirmed).values()) == {("confirmation", "Carol")}
    # A later correction of the HSD alone keeps the AoP Carol's.
    third = correct(records, exam.id, 0, {"hsd": {"end": [ai.geometry["hsd"]["end"][0] + 3,
                                                           ai.geometry["hsd"]["end"][1] + 12]}}, "Dan")
    assert _sources(third)["aop"] == ("confirmation", "Carol") and _sources(third)["hsd"] == ("correction", "Dan")


def test_a_viewer_correction_of_the_hsd_alone_is_saved_with_the_ais_aop(records, exam):
    """The window's path: ``FrameMeasurementState.correct`` and ``save_viewer_review``, the same core rule."""
    from test_records_review import Viewer

    viewer = Viewer(records, exam.id, "Dr Gui")
    state = viewer.states[0]
    geometry = json.loads(json.dumps(state.ai_geometry))
    geometry["hsd"]["end"] = [geometry["hsd"]["end"][0], geometry["hsd"]["end"][1] + 8]
    state.correct(geometry, viewer.calibration, viewer.frame_shape, "Dr Gui")
    assert state.whose() == {"aop": "AI", "hsd": "corrected", "head": "AI"}
    _, row = viewer.save(0, "correction")
    assert _sources(row)["aop"][0] == "ai" and _sources(row)["hsd"] == ("correction", "Dr Gui")
    # Undo and redo restore the row with its sources.
    viewer.save(0, "undo", restore_measurement_id=None)
    state.correct(geometry, viewer.calibration, viewer.frame_shape, "Dr Gui")
    _, redone = viewer.save(0, "redo", restore_measurement_id=row.id)
    assert _sources(redone)["aop"][0] == "ai" and _sources(redone)["hsd"] == ("correction", "Dr Gui")


def _schema_2_records(tmp_path, monkeypatch) -> tuple[Path, int, int]:
    """A records folder as the workstation with schema 2 wrote it (this code's first two steps): an exam with an AI
    row and a correction of the HSD alone."""
    with monkeypatch.context() as old_workstation:
        old_workstation.setattr(database, "MIGRATIONS", database.MIGRATIONS[:2])
        with Records(tmp_path / "old") as records:
            exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0)).exam
            save_analysis_with_uncertainties(records, exam.id, [0.3, 0.2, 0.3, 0.7], chosen=0)
            ai = records.current_measurement(exam.id)
            # A correction as schema 2 kept it: one author for the whole row.
            row = records.add_measurement(exam.id, "correction", "MW Old", {"aop_deg": ai.aop_deg, "hsd_px": 99.0},
                                          supersedes_id=ai.id, frame_index=0, geometry=ai.geometry,
                                          calibration_source=ai.calibration_source)
            assert database.schema_version(records._conn) == 2
            records._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return tmp_path / "old", exam.id, row.id


def test_a_schema_2_records_file_is_migrated_in_place_its_rows_read_as_before(tmp_path, monkeypatch):
    folder, exam_id, old_row = _schema_2_records(tmp_path, monkeypatch)
    path = folder / "records" / database.DATABASE_NAME
    columns = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(measurements)")]
    assert "sources_json" not in columns
    with Records(folder) as records:
        assert database.schema_version(records._conn) == database.SCHEMA_VERSION == 3
        assert records.integrity_problems() == []
        kept = records.measurement(old_row)
        assert kept.sources is None  # written before: every value reads as the row's own, as it did
        assert set(_sources(kept).values()) == {("correction", "MW Old")}
        ai = records.latest_ai_measurement(exam_id)
        new = correct(records, exam_id, 0, _moved_tangent(ai), "MW New")
        assert _sources(new)["aop"] == ("correction", "MW New") and _sources(new)["hsd"] == ("correction", "MW Old")
        with pytest.raises(Exception, match="append-only"):
            records._conn.execute("UPDATE measurements SET sources_json = '{}'")
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 3


def test_a_read_only_schema_2_archive_is_viewed_without_upgrading_it(tmp_path, monkeypatch, capsys):
    folder, exam_id, old_row = _schema_2_records(tmp_path, monkeypatch)
    path = folder / "records" / database.DATABASE_NAME
    before = path.read_bytes()
    monkeypatch.setattr(database, "write_problem", lambda _folder: "it is on a read-only file system")
    with Records(folder) as records:
        assert database.is_read_only(records._conn)
        assert records.current_measurement(exam_id).id == old_row
        assert set(_sources(records.measurement(old_row)).values()) == {("correction", "MW Old")}
        assert labor_timeline(records, records.exam(exam_id).labor_id)["points"][0]["source"] == "confirmed"
    assert run_cli(["history", "--data-dir", str(folder), "--exam", str(exam_id)]) == 0
    assert "MW Old" in capsys.readouterr().out
    assert path.read_bytes() == before
