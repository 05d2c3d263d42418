"""Review 30, findings 4, 6, 9 and 10 (bad date): a re-import under another MRN, refusal lines naming their file,
control characters in a file's text, and a DICOM whose dates cannot be read."""
from __future__ import annotations

import warnings

import pydicom
import pytest

from records_support import demo_exam_file, run_cli
from workstation.records import Records, import_scan


@pytest.fixture
def data(tmp_path):
    return tmp_path / "data"


def _edit(path, **attributes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the invalid values these tests write on purpose
        ds = pydicom.dcmread(path)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(path)
    return path


# -- finding 4: a re-import under another MRN -----------------------------------------------------------------------
def test_a_reimport_under_another_mrn_is_refused_and_a_duplicate_names_its_patient(tmp_path, data, capsys):
    """Before: 'demo2.dcm: already imported as exam 1 (same content); nothing added', exit 0, for --mrn
    SOMEONE-ELSE."""
    import cv2
    import numpy as np

    source = demo_exam_file(tmp_path / "usb", seed=0, patient_id="DEMO-0001")
    image = tmp_path / "usb" / "p1.png"
    cv2.imwrite(str(image), (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8))
    base = ["--data-dir", str(data), "--no-analyze", "--quiet"]
    assert run_cli(["import", str(source), *base]) == 0
    assert run_cli(["import", str(image), "--mrn", "P1", "--acquired", "2026-03-01T10:30", *base]) == 0
    capsys.readouterr()
    for file, mrn, filed in ((source, "SOMEONE-ELSE", "DEMO-0001"), (image, "P2", "P1")):
        assert run_cli(["import", str(file), "--mrn", mrn, *base]) == 2
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith(f"error: {file.name}: the same content is already filed as exam ")
        assert f"of MRN {filed}" in err[0] and f"not {mrn}" in err[0]
    assert run_cli(["import", str(source), "--mrn", "SOMEONE-ELSE", "--force-mrn", *base]) == 2  # no moving
    capsys.readouterr()
    assert run_cli(["import", str(source), "--mrn", "DEMO-0001", *base]) == 0
    assert "already imported as exam 1 of MRN DEMO-0001 (Doe, Jane), labour 1" in capsys.readouterr().out
    with Records(data) as records:
        assert sorted(p.mrn for p in records.patients()) == ["DEMO-0001", "P1"]


# -- finding 6: every import refusal names its file -----------------------------------------------------------------
def test_the_labour_gap_refusal_names_its_file(tmp_path, data, capsys):
    """Before: 'error: this exam is 744 h from every exam of labour 1 ...' with no file name."""
    first = demo_exam_file(tmp_path / "usb", seed=0)
    later = demo_exam_file(tmp_path / "usb", seed=1, hours=744)
    base = ["--data-dir", str(data), "--no-analyze", "--quiet"]
    assert run_cli(["import", str(first), *base]) == 0
    capsys.readouterr()
    assert run_cli(["import", str(later), *base]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"error: {later.name}: this exam is 744 h from every exam of labour 1 of MRN MRN-0042")
    assert run_cli(["import", str(later), "--labor", "99", *base]) == 2
    assert capsys.readouterr().err.startswith(f"error: {later.name}: no labour")


# -- finding 9: control characters in a file's text ----------------------------------------------------------------
def test_control_characters_in_a_dicoms_name_and_id_are_replaced_where_read_and_real_letters_kept(tmp_path, data,
                                                                                                capsys):
    """Before: `workstation patients` printed the raw ESC sequence (the terminal turned red) and the PDF a
    missing-glyph box."""
    from workstation.io import load
    from workstation.io.text import clean_text

    assert clean_text("Evil\x1b[31mRed^Line\nTwo") == "Evil?[31mRed^Line Two"
    assert clean_text("Müller^Ülrike=김^민지") == "Müller^Ülrike=김^민지"
    assert clean_text("a\u202eb\x00") == "a?b?" and clean_text("\t ") is None and clean_text(None) is None
    path = _edit(demo_exam_file(tmp_path / "usb", seed=0), PatientName="Evil\x1b[31mRed^Line\nTwo",
                 PatientID="ESC-1\x07", Manufacturer="Acme\x1b]0;pwned\x07")
    cine = load(path)
    info = cine.info
    cine.close()
    assert info.patient_name == "Evil?[31mRed^Line Two" and info.patient_id == "ESC-1?"
    assert info.manufacturer == "Acme?]0;pwned?"
    assert run_cli(["import", str(path), "--data-dir", str(data), "--no-analyze", "--quiet"]) == 0
    assert run_cli(["patients", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "Evil?[31mRed" in out


# -- finding 10: a DICOM whose dates cannot be read -----------------------------------------------------------------
def test_a_dicom_whose_dates_cannot_be_read_needs_acquired_and_a_file_time_is_said_plainly(tmp_path, data, capsys):
    """Before: filed at the file's modification time (the time it was copied), marked only '(file_mtime)'."""
    import cv2
    import numpy as np

    from workstation.io import load

    path = _edit(demo_exam_file(tmp_path / "usb", seed=0), StudyDate="20241399", AcquisitionDateTime="garbage",
                 AcquisitionDate="20241399", ContentDate="")
    cine = load(path)
    assert cine.info.acquisition_datetime is None and "StudyDate '20241399'" in cine.info.acquisition_problem
    cine.close()
    base = ["--data-dir", str(data), "--no-analyze", "--quiet"]
    assert run_cli(["import", str(path), *base]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"error: {path.name}: its dates cannot be read: AcquisitionDateTime 'garbage'")
    assert "--acquired" in err[0] and "nothing was imported" in err[0]
    with Records(data) as records:
        assert records.patients() == []
        # the window's import (no --acquired to give) still files it, at the file's time, which it names
        assert import_scan(records, path).exam.acquired_source == "file_mtime"
    path2 = _edit(demo_exam_file(tmp_path / "usb2", seed=1), StudyDate="20241399", AcquisitionDateTime="garbage",
                  AcquisitionDate="", ContentDate="")
    assert run_cli(["import", str(path2), "--acquired", "2026-03-01T11:00", "--new-labor", *base]) == 0
    assert "(user)" in capsys.readouterr().out
    # an image has no date at all: filed at its file time, which the line says is not the scan's
    image = tmp_path / "usb" / "p1.png"
    cv2.imwrite(str(image), (np.arange(64 * 64).reshape(64, 64) % 241).astype(np.uint8))
    assert run_cli(["import", str(image), "--mrn", "P1", *base]) == 0
    out = capsys.readouterr().out
    assert "(file_mtime: the file's modification time" in out and "not when it was scanned" in out
    assert "--acquired" in out
