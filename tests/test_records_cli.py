"""The records subcommands end to end: import, patients, timeline, correct, confirm, history, report, errors."""
from __future__ import annotations

import json
import re
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
    assert run_cli(["patients", *base]) == 0  # labour ids named as ids, not read as a count of labours
    assert re.search(rf"MRN-0042 .* labour {patients[0]['labors'][0]} +exams 3 ", capsys.readouterr().out)

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
    assert "already imported as exam 1 of MRN MRN-0042 (Doe, Jane), labour 1" in capsys.readouterr().out


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


def test_a_manual_calibration_set_headless_is_kept_with_the_exam_and_used_wherever_it_is_read(imported, capsys,
                                                                                           tmp_path):
    """``workstation calibrate``: the exam's values on record, a headless correction, ``analyze --exam``, the timeline
    and the exam's PDF all use the manual scale set on the exam, until someone goes back to the file's; bad values
    are one line and change nothing; the history keeps every scale with who set it."""
    import shutil
    import subprocess

    data, exam_ids = imported
    exam_id, base = exam_ids[0], ["--data-dir", str(data)]
    with Records(data) as records:
        file_ai = records.current_measurement(exam_id)
    assert file_ai.calibration_source == "dicom_regions" and file_ai.hsd_px is not None
    assert file_ai.hsd_mm != pytest.approx(0.25 * file_ai.hsd_px, rel=1e-3)

    # Bad values: one line each, exit 2, nothing recorded.
    for bad in ("0", "-0.3", "nan", "12", "1e-9", "9.99"):
        assert run_cli(["calibrate", "--exam", str(exam_id), "--mm-per-px", bad, "--user", "Dr Lee", *base]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: exam {exam_id}: ") and "0.01 to 2 mm per pixel" in err[0], err
    assert run_cli(["calibrate", "--exam", str(exam_id), "--mm-per-px", "0.25", *base]) == 2
    assert "--user is needed" in capsys.readouterr().err
    with Records(data) as records:
        assert records.calibrations(exam_id) == [] and len(records.measurements(exam_id)) == 2

    changed = _json_out(capsys, ["calibrate", "--exam", str(exam_id), "--mm-per-px", "0.25", "--user", "Dr Lee",
                                 "--detail", "50 mm over 200 px on the depth scale", "--json", *base])
    assert changed["changed"] and changed["manual"] and changed["calibration"]["by"] == "Dr Lee"
    assert changed["calibration"]["mm_per_px"] == 0.25 and "Dr Lee" in changed["calibration"]["detail"]
    [again] = changed["measurements"]  # the AI's value on record, measured again in the manual mm
    assert again["kind"] == "ai" and again["calibration_source"] == "manual" and again["hsd_px"] == file_ai.hsd_px
    assert again["hsd_mm"] == pytest.approx(0.25 * file_ai.hsd_px, rel=1e-3)
    # The same scale again changes nothing.
    assert run_cli(["calibrate", "--exam", str(exam_id), "--mm-per-px", "0.25", "--user", "Dr Lee", "--detail",
                    "50 mm over 200 px on the depth scale", *base]) == 0
    assert "nothing changed" in capsys.readouterr().out

    timeline = _json_out(capsys, ["timeline", "--mrn", "MRN-0042", "--json", *base])
    point = next(p for p in timeline["points"] if p["exam_id"] == exam_id)
    assert point["hsd_mm"] == pytest.approx(0.25 * point["hsd_px"], rel=1e-3)

    # A headless correction of that exam is measured in the manual mm, as the viewer would.
    geometry = json.dumps({"hsd": {"start": file_ai.geometry["hsd"]["start"], "end": [352.0, 140.0]}})
    corrected = _json_out(capsys, ["correct", "--exam", str(exam_id), "--frame", "0", "--geometry", geometry,
                                   "--user", "Dr Smith", "--json", *base])
    assert corrected["calibration_source"] == "manual"
    assert corrected["hsd_mm"] == pytest.approx(0.25 * corrected["hsd_px"], rel=1e-3)

    # analyze --exam analyses the stored scan with the exam's scale.
    out = tmp_path / "exam.json"
    assert run_cli(["analyze", "--exam", str(exam_id), "--json", str(out), "--model",
                    str(tiny_model_manifest(tmp_path / "model")), "--device", "cpu", "--quiet", *base]) == 0
    assert json.loads(out.read_text())["calibration_source"] == "manual"
    assert run_cli(["analyze", "--exam", str(exam_id), str(out), *base]) == 2
    assert "not both" in capsys.readouterr().err

    # The exam's PDF shows the values on record: the correction in the manual mm.
    pdf = tmp_path / "exam.pdf"
    assert run_cli(["report", "--exam", str(exam_id), str(pdf), *base]) == 0
    if shutil.which("pdftotext"):
        text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True,
                                       timeout=60).stdout.split())
        assert f"{corrected['hsd_mm']:.1f} mm" in text and "manual" in text

    # Back to the file's: recorded with who; the correction stands in the file's mm again; the history keeps both.
    assert run_cli(["calibrate", "--exam", str(exam_id), "--file-calibration", "--user", "Dr Kay", *base]) == 0
    assert "the file's own calibration (dicom_regions)" in capsys.readouterr().out
    shown = _json_out(capsys, ["calibrate", "--exam", str(exam_id), "--json", *base])
    assert not shown["manual"] and [(c["kind"], c["by"]) for c in shown["history"]] == [("manual", "Dr Lee"),
                                                                                          ("file", "Dr Kay")]
    with Records(data) as records:
        current = records.current_measurement(exam_id)
        assert (current.kind, current.by, current.calibration_source) == ("correction", "Dr Smith", "dicom_regions")
        assert current.hsd_px == corrected["hsd_px"] and current.hsd_mm != pytest.approx(corrected["hsd_mm"])
        assert records.latest_ai_measurement(exam_id).hsd_mm == pytest.approx(file_ai.hsd_mm)
    history = _json_out(capsys, ["history", "--exam", str(exam_id), "--json", *base])
    calibrations = [e for e in history if e["event"] == "calibration"]
    assert [(e["by"], e["kind"]) for e in calibrations] == [("Dr Lee", "manual"), ("Dr Kay", "file")]
    assert "0.2500 mm/px" in calibrations[0]["detail"] and "50 mm over 200 px" in calibrations[0]["detail"]


def test_a_persons_head_biometry_leaves_the_records_through_history_confirm_calibrate_and_the_report(tmp_path,
                                                                                                     capsys):
    """The reviewer's case through the commands: an axial head plane without a scale, ``calibrate`` (manual mm),
    ``confirm``: every command that prints a value prints HC, BPD, OFD and GA (pixels with why before the scale, mm
    after, GA with its range), ``history`` the AI's rows apart from the person's, and the exam's PDF shows them."""
    import re
    import shutil
    import subprocess

    from test_reports_pdf import head_plane_exam

    data = tmp_path / "data"
    base = ["--data-dir", str(data)]
    with Records(data) as records:
        exam_id = head_plane_exam(records, tmp_path / "usb").id
    assert run_cli(["calibrate", "--exam", str(exam_id), "--mm-per-px", "0.062032562715", "--user", "Midwife R",
                    *base]) == 0
    out = capsys.readouterr().out
    assert re.search(r"measured again \(manual\): #2 ai by tiny 0.0.1, frame 0: no AoP or HSD \(no pubic symphysis "
                     r"found in this frame\); HC \d+\.\d mm, BPD \d+\.\d mm, OFD \d+\.\d mm, GA \d+\.\d wk \(\+-2 wk: ",
                     out), out
    assert run_cli(["confirm", "--exam", str(exam_id), "--user", "Midwife R", *base]) == 0
    out = capsys.readouterr().out
    with Records(data) as records:
        confirmed = records.current_measurement(exam_id)
    hc, bpd, ofd, ga = confirmed.hc_mm, confirmed.bpd_mm, confirmed.ofd_mm, confirmed.ga_weeks
    head = (f"HC {hc:.1f} mm, BPD {bpd:.1f} mm, OFD {ofd:.1f} mm, GA {ga:.1f} wk (+-2 wk: {ga - 2:.1f}-"
            f"{ga + 2:.1f})")
    assert f"measurement 3 (confirmation by Midwife R) on exam {exam_id} frame 0:" in out and head in out, out
    assert "; AI uncertainty 0.33 (moderate)" in out  # the AI's, on that frame: not the person's certainty

    assert run_cli(["history", "--exam", str(exam_id), *base]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split("#")[1].split()[0]: line for line in lines if " #" in line}
    assert re.search(r"HC \d+ px, BPD \d+ px, OFD \d+ px, GA - \(no mm, no GA: no calibration: pixels only\)",
                     rows["1"]), rows["1"]
    assert "ai " in rows["2"] and head in rows["2"] and "tiny 0.0.1" in rows["2"]
    assert "confirmation Midwife R" in rows["3"] and head in rows["3"] and "supersedes #2" in rows["3"]

    pdf = tmp_path / "exam.pdf"
    assert run_cli(["report", "--exam", str(exam_id), str(pdf), *base]) == 0
    if shutil.which("pdftotext"):
        text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True,
                                       timeout=60).stdout.split())
        # the AI's value with its own frame's uncertainty beside it, then the value in force
        assert f"HC {hc:.1f} mm 0.33 (moderate), frame 0 {hc:.1f} mm confirmed Midwife R" in text, text
        assert f"GA {ga:.1f} wk (+-2 wk: {ga - 2:.1f}-{ga + 2:.1f})" in text
        assert "calibration: manual 0.06203 mm/px" in text


def test_the_import_line_gives_the_chosen_frames_aop_hsd_and_uncertainty_as_the_panel_does(tmp_path, capsys):
    """``import`` printed "AoP 127.6 deg (AI)" alone; it gives the chosen frame's AoP, its HSD (pixels with why there
    is no mm where the file has no scale) and the AI's uncertainty there with its level word."""
    import cv2
    import numpy as np

    from workstation.inference.uncertainty import uncertainty_level
    from workstation.synthetic import make_transperineal_cine

    labels = make_transperineal_cine(n_frames=1, shape=(240, 320), seed=2).labels[0]
    image = tmp_path / "labels.png"  # grey levels the tiny model segments exactly (background 0, PS 150, head 255)
    cv2.imwrite(str(image), np.choose(labels, [0, 150, 255]).astype(np.uint8))
    data = tmp_path / "data"
    assert run_cli(["import", str(image), "--mrn", "MRN-5", "--data-dir", str(data), "--model",
                    str(tiny_model_manifest(tmp_path / "model")), "--device", "cpu", "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    with Records(data) as records:
        ai = records.current_measurement(1)
    assert ai.aop_deg is not None and ai.hsd_mm is None and ai.hsd_px is not None and ai.uncertainty is not None
    assert (f"; AI, frame {ai.frame_index}: AoP {ai.aop_deg:.1f} deg, HSD {ai.hsd_px:.0f} px (no mm: "
            f"{ai.reasons['hsd_mm']}); AI uncertainty {ai.uncertainty:.2f} ({uncertainty_level(ai.uncertainty)})"
            ) in line, line
    assert line.startswith("exam 1 <- labels.png: MRN MRN-5, labour 1")


def test_correct_and_confirm_based_on_a_stale_measurement_are_refused_with_one_line_and_write_nothing(imported, capsys):
    """A script reads the exam's value (its measurement id), someone corrects it meanwhile, and the script's own
    correction or confirmation ``--based-on`` that id is refused: exit 2, the ReviewConflict's one line (who changed
    it), nothing written. Based on the value now on record, both go through."""
    data, exam_ids = imported
    base = ["--data-dir", str(data)]
    exam = str(exam_ids[1])
    read = _json_out(capsys, ["timeline", "--mrn", "MRN-0042", "--json", *base])["points"][1]["measurement_id"]
    hsd = json.dumps({"hsd": synthetic_measurement(1)["geometry"]["hsd"]})
    dr_a = _json_out(capsys, ["correct", "--exam", exam, "--frame", "1", "--geometry", hsd, "--user", "Dr A",
                              "--json", *base])
    with Records(data) as records:
        before = [m.id for m in records.measurements(exam_ids[1])]
    stale = {"correct": ["correct", "--exam", exam, "--frame", "1", "--geometry", hsd, "--user", "Dr B"],
             "confirm": ["confirm", "--exam", exam, "--user", "Dr B"]}
    for name, argv in stale.items():
        assert run_cli([*argv, "--based-on", str(read), *base]) == 2, name
        captured = capsys.readouterr()
        err = captured.err.strip().splitlines()
        assert captured.out == "" and len(err) == 1, (name, captured)
        assert err[0].startswith("error: Not saved: exam") and "correction by Dr A" in err[0], err
        assert "Nothing was saved or overwritten" in err[0]
    with Records(data) as records:
        assert [m.id for m in records.measurements(exam_ids[1])] == before  # nothing written
    # An id that is not of this exam is one line too.
    assert run_cli([*stale["confirm"], "--based-on", "999", *base]) == 2
    assert "measurement 999 is not of exam" in capsys.readouterr().err
    # Based on what is on record now (Dr A's correction): saved.
    confirmed = _json_out(capsys, [*stale["confirm"], "--based-on", str(dr_a["id"]), "--json", *base])
    assert confirmed["kind"] == "confirmation" and confirmed["supersedes_id"] == dr_a["id"]
    corrected = _json_out(capsys, [*stale["correct"], "--based-on", str(confirmed["id"]), "--json", *base])
    assert corrected["kind"] == "correction" and corrected["by"] == "Dr B"
    # "none": read when no person had reviewed the exam (only the AI's values), which still holds for exam 1.
    assert run_cli(["confirm", "--exam", str(exam_ids[0]), "--user", "Dr B", "--based-on", "none", *base]) == 0
    assert "confirmation by Dr B" in capsys.readouterr().out


def test_correct_help_says_parts_not_given_come_from_that_frames_value_in_force_and_offers_based_on(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli(["correct", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "kept from the current value" not in text
    assert "parts not given come from that frame's value in force" in text, text
    assert "--based-on MEASUREMENT_ID" in text and "ReviewConflict" not in text
    with pytest.raises(SystemExit):
        run_cli(["confirm", "--help"])
    assert "--based-on MEASUREMENT_ID" in capsys.readouterr().out
