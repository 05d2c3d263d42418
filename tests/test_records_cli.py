"""The records subcommands end to end: import, patients, timeline, correct, confirm, history, report, errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from records_support import add_ai_row, demo_exam_file, run_cli, synthetic_measurement, tiny_model_manifest
from workstation.records import Records


def _json_out(capsys, argv):
    assert run_cli(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def imported(tmp_path, capsys):
    """Three exams of MRN-0042 imported through the CLI (analysed by the tiny model), with AI values added."""
    data = tmp_path / "data"
    files = [str(demo_exam_file(tmp_path / "usb", seed, hours)) for seed, hours in enumerate((0.0, 1.5, 3.0))]
    manifest = tiny_model_manifest(tmp_path / "model")
    results = _json_out(capsys, ["import", *files, "--data-dir", str(data), "--model", str(manifest),
                                 "--device", "cpu", "--json"])
    exam_ids = [r["exam"]["id"] for r in results]
    with Records(data) as records:
        for exam_id, frame_index in zip(exam_ids, (0, 1, 3)):
            add_ai_row(records, exam_id, frame_index)
    return data, exam_ids


def test_import_patients_timeline_correct_confirm_history(imported, capsys, tmp_path):
    data, exam_ids = imported
    base = ["--data-dir", str(data)]
    patients = _json_out(capsys, ["patients", "--json", *base])
    assert [(p["mrn"], p["n_exams"]) for p in patients] == [("MRN-0042", 3)]

    geometry = tmp_path / "edit.json"
    geometry.write_text(json.dumps({"aop": synthetic_measurement(2)["geometry"]["aop"]}))
    corrected = _json_out(capsys, ["correct", "--exam", str(exam_ids[1]), "--frame", "1", "--geometry",
                                   f"@{geometry}", "--user", "Dr Smith", "--json", *base])
    assert corrected["kind"] == "correction" and corrected["by"] == "Dr Smith"
    with Records(data) as records:  # the AI's uncertainty on that frame stays with the correction, as in the viewer
        frames = records.frame_results(records.latest_analysis(exam_ids[1]).id)
    assert corrected["uncertainty"] == next(f["uncertainty"] for f in frames if f["index"] == 1) is not None
    assert run_cli(["confirm", "--exam", str(exam_ids[2]), "--user", "Midwife B", *base]) == 0
    assert "confirmation by Midwife B" in capsys.readouterr().out

    timeline = _json_out(capsys, ["timeline", "--mrn", "MRN-0042", "--json", *base])
    assert [p["source"] for p in timeline["points"]] == ["ai", "confirmed", "confirmed"]
    assert timeline["points"][1]["aop_deg"] == corrected["aop_deg"]
    assert run_cli(["timeline", "--mrn", "MRN-0042", *base]) == 0
    text = capsys.readouterr().out
    assert "correction by Dr Smith" in text and "confirmation by Midwife B" in text and "stalled: no" in text
    exam_lines = [line for line in text.splitlines() if line.lstrip().startswith("exam ")]
    uncertainties = [p["ai_uncertainty"] for p in timeline["points"]]
    assert len(exam_lines) == 3 and all(u is not None for u in uncertainties)
    assert all(f"(AI uncertainty {u:.2f} (" in line for line, u in zip(exam_lines, uncertainties))

    history = _json_out(capsys, ["history", "--exam", str(exam_ids[1]), "--json", *base])
    assert [e["event"] for e in history] == ["import", "analysis", "ai", "ai", "correction"]
    assert run_cli(["history", "--exam", str(exam_ids[1]), *base]) == 0
    assert "supersedes" in capsys.readouterr().out


def test_import_text_output_and_duplicates(tmp_path, capsys):
    source = str(demo_exam_file(tmp_path / "usb", seed=0))
    base = ["--data-dir", str(tmp_path / "data"), "--no-analyze"]
    assert run_cli(["import", source, *base]) == 0
    assert "exam 1 <- " in capsys.readouterr().out
    assert run_cli(["import", source, *base]) == 0
    assert "already imported as exam 1" in capsys.readouterr().out


def test_a_fault_on_one_file_of_a_batch_import_does_not_stop_the_others(tmp_path, capsys, monkeypatch):
    from workstation.records import importer

    files = [str(demo_exam_file(tmp_path / "usb", seed, hours)) for seed, hours in enumerate((0.0, 1.5, 3.0))]
    real_import = importer.import_scan

    def faulty_on_the_second(records, file, **kwargs):  # a fault no check foresaw, on one file only
        if str(file) == files[1]:
            raise NotImplementedError("Unknown Value Representation '0x43 0xff'")
        return real_import(records, file, **kwargs)

    monkeypatch.setattr(importer, "import_scan", faulty_on_the_second)
    assert run_cli(["import", *files, "--data-dir", str(tmp_path / "data"), "--no-analyze"]) == 2
    captured = capsys.readouterr()
    assert captured.out.count(" <- ") == 2 and "Traceback" not in captured.err
    assert f"error: {Path(files[1]).name}: could not be imported (NotImplementedError: Unknown Value" in captured.err
    assert "1 of 3 file(s) not imported" in captured.err
    with Records(tmp_path / "data") as records:
        assert len(records.exams(records.labors(records.patients()[0].id)[0].id)) == 2


def test_report_of_exam_labor_and_mrn(imported, capsys, tmp_path):
    data, exam_ids = imported
    for which in (["--exam", str(exam_ids[0])], ["--labor", "1"], ["--mrn", "MRN-0042"]):
        out = tmp_path / f"report-{which[0][2:]}.pdf"
        assert run_cli(["report", *which, str(out), "--data-dir", str(data)]) == 0
        assert out.read_bytes().startswith(b"%PDF") and str(out) in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["timeline", "--mrn", "NOBODY"], "no patient with MRN 'NOBODY'"),
    (["timeline"], "give --mrn"),
    (["history", "--exam", "7"], "no exam with id 7"),
    (["confirm", "--exam", "7", "--user", "A"], "no exam with id 7"),
    (["correct", "--exam", "1", "--frame", "0", "--geometry", "{oops", "--user", "A"], "--geometry is not valid JSON"),
    (["import", "missing.dcm", "--no-analyze"], "1 of 1 file(s) not imported"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    assert run_cli([*argv, "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]


def _damaged_records(tmp_path, damage: str) -> Path:
    """Records of one analysed exam, checkpointed into the main file, which is then damaged as ``damage`` says."""
    import os

    from workstation.records import import_scan

    data = tmp_path / "data"
    with Records(data) as records:
        exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0)).exam
        add_ai_row(records, exam.id, 0)
        records._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = data / "records" / "records.sqlite3"
    if damage == "truncated":
        os.truncate(path, path.stat().st_size // 2)
    elif damage == "text":
        path.write_text("these are not the records you are looking for\n" * 50)
    else:  # "emptied": zero bytes, while the scans it indexed are still stored beside it
        os.truncate(path, 0)
    return path


@pytest.mark.parametrize("damage", ["truncated", "text", "emptied"])
def test_a_damaged_records_file_is_one_error_line_naming_it_and_is_left_as_it_is(tmp_path, capsys, damage):
    path = _damaged_records(tmp_path, damage)
    before = path.read_bytes()
    data = str(tmp_path / "data")
    for argv in (["patients"], ["timeline", "--labor", "1"], ["history", "--exam", "1"],
                 ["report", "--exam", "1", str(tmp_path / "x.pdf")], ["confirm", "--exam", "1", "--user", "dave"],
                 ["import", str(demo_exam_file(tmp_path / "usb", seed=1, hours=1.0)), "--no-analyze"]):
        assert run_cli([*argv, "--data-dir", data]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err and err[-1].startswith("error: ") and str(path) in err[-1] and "damaged" in err[-1], (argv, err)
        assert path.read_bytes() == before, argv  # never overwritten, "repaired" or migrated over
    assert not (tmp_path / "x.pdf").exists()


def test_a_damaged_records_file_through_the_real_command_has_no_traceback(tmp_path):
    import os
    import subprocess
    import sys

    path = _damaged_records(tmp_path, "truncated")
    run = subprocess.run([sys.executable, "-m", "workstation", "patients", "--data-dir", str(tmp_path / "data")],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines() == [run.stderr.strip()] and str(path) in run.stderr


def test_a_deleted_records_file_beside_stored_scans_is_refused_and_nothing_is_created(tmp_path, capsys):
    """The records file (and its -wal/-shm) deleted while the scans it indexed are still stored: every command is
    refused in one line naming the folder, and no fresh empty database is made that later runs could not tell
    from a real one."""
    from workstation.records import RecordsError, import_scan

    data = tmp_path / "data"
    with Records(data) as records:
        import_scan(records, demo_exam_file(tmp_path / "usb", seed=0))
    folder = data / "records"
    assert any((folder / "files").rglob("*.dcm"))
    for leftover in folder.glob("records.sqlite3*"):
        leftover.unlink()
    for argv in (["patients"], ["patients", "--json"], ["timeline", "--labor", "1"], ["history", "--exam", "1"],
                 ["import", str(demo_exam_file(tmp_path / "usb", seed=1, hours=1.0)), "--no-analyze"]):
        assert run_cli([*argv, "--data-dir", str(data)]) == 2, argv
        captured = capsys.readouterr()
        err = captured.err.strip().splitlines()
        assert err and err[-1].startswith("error: ") and str(folder) in err[-1], (argv, err)
        assert "records index" in err[-1] and "missing" in err[-1] and "stored scans" in err[-1], err[-1]
        assert "no patients yet" not in captured.out
        assert not list(folder.glob("records.sqlite3*")), argv  # nothing created
    with pytest.raises(RecordsError, match="missing"):
        Records(data)
    assert not list(folder.glob("records.sqlite3*"))
    assert len(list((folder / "files").rglob("*.dcm"))) == 1  # the stored scans are left as they are


def test_a_fresh_data_folder_still_creates_its_records(tmp_path, capsys):
    """No records file and no stored scans (a new folder, or one with an empty files/): the database is created."""
    data = tmp_path / "data"
    assert run_cli(["patients", "--data-dir", str(data)]) == 0
    assert "no patients yet" in capsys.readouterr().out
    assert (data / "records" / "records.sqlite3").is_file()
    other = tmp_path / "other"
    (other / "records" / "files" / "ab").mkdir(parents=True)  # folders, but no scan in them
    with Records(other) as records:
        assert records.patients() == []
    assert (other / "records" / "records.sqlite3").is_file()
