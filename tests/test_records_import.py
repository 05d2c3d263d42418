"""Importing scans: patient and labour rules, acquisition time sources, duplicates, copies outliving the stick."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from records_support import LABOR_START, demo_exam_file, tiny_model
from workstation.errors import InputError
from workstation.inference.manifest import file_sha256
from workstation.records import Records, RecordsError, import_scan


@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


def test_import_copies_the_scan_under_its_hash_and_survives_the_source_going(records, tmp_path):
    source = demo_exam_file(tmp_path / "usb", seed=0)
    sha = file_sha256(source)
    result = import_scan(records, source, model=tiny_model(tmp_path / "model"))
    copy = records.file_path(result.exam)
    assert copy == records.root / "files" / sha[:2] / f"{sha}.dcm"
    assert file_sha256(copy) == sha and result.exam.original_path == str(source.resolve())
    source.unlink()  # the stick is pulled
    from workstation.io import load

    assert load(copy).n_frames == result.exam.n_frames
    assert result.patient.mrn == "MRN-0042" and result.patient.name == "Doe, Jane"
    assert result.analysis is not None and result.analysis.model_placeholder
    assert len(records.frame_results(result.analysis.id)) == result.exam.n_frames
    ai = records.current_measurement(result.exam.id)
    assert ai.kind == "ai" and ai.by == "tiny 0.0.1" and ai.analysis_id == result.analysis.id


def test_importing_the_same_bytes_twice_does_not_duplicate(records, tmp_path):
    source = demo_exam_file(tmp_path / "usb", seed=0)
    first = import_scan(records, source)
    renamed = source.with_name("copy-on-another-stick.dcm")
    renamed.write_bytes(source.read_bytes())
    again = import_scan(records, renamed)
    assert again.duplicate and again.exam.id == first.exam.id
    assert len(records.exams(first.labor.id)) == 1
    assert len(list((records.root / "files").rglob("*.dcm"))) == 1


def test_the_file_patient_id_wins_unless_a_different_mrn_is_forced(records, tmp_path):
    source = demo_exam_file(tmp_path / "usb", seed=0, patient_id="MRN-FILE")
    with pytest.raises(RecordsError, match="Patient ID is 'MRN-FILE' but --mrn is 'MRN-TYPED'.*--force-mrn"):
        import_scan(records, source, mrn="MRN-TYPED")
    assert records.patients() == []  # nothing saved, nothing copied
    assert not list((records.root / "files").rglob("*.dcm"))
    assert import_scan(records, demo_exam_file(tmp_path, seed=1, patient_id="MRN-FILE"), mrn="MRN-FILE").patient.mrn \
        == "MRN-FILE"  # the same MRN given explicitly is fine
    forced = import_scan(records, source, mrn="MRN-TYPED", force_mrn=True)
    assert forced.patient.mrn == "MRN-TYPED" and forced.exam.dicom_patient_id == "MRN-FILE"


def test_a_file_without_patient_id_needs_an_mrn_and_its_time_comes_from_the_file(records, tmp_path):
    image = tmp_path / "usb" / "still.png"
    image.parent.mkdir()
    cv2.imwrite(str(image), np.full((64, 80), 90, np.uint8))
    mtime = datetime(2026, 3, 1, 12, 30, 0)
    os.utime(image, (mtime.timestamp(), mtime.timestamp()))
    with pytest.raises(RecordsError, match="no Patient ID; give the patient's MRN with --mrn"):
        import_scan(records, image)
    result = import_scan(records, image, mrn="MRN-7", name="Roe, Ann")
    assert result.patient.name == "Roe, Ann" and result.exam.acquired == mtime
    assert result.exam.acquired_source == "file_mtime" and result.exam.file_relpath.endswith(".png")


def test_acquisition_time_given_by_a_person_overrides_the_dicom_one(records, tmp_path):
    dicom_time = import_scan(records, demo_exam_file(tmp_path, seed=0, hours=1.0)).exam
    assert (dicom_time.acquired, dicom_time.acquired_source) == (LABOR_START + timedelta(hours=1),
                                                                   "AcquisitionDateTime")
    typed = datetime(2026, 3, 1, 11, 45, tzinfo=timezone.utc)
    overridden = import_scan(records, demo_exam_file(tmp_path, seed=1), acquired=typed).exam
    assert overridden.acquired_source == "user"
    # kept with the offset it was given: an absolute instant (workstation.records.store.scanner_time)
    assert overridden.acquired == typed and overridden.acquired.utcoffset() == timedelta(0)
    assert overridden.to_json()["acquired"] == "2026-03-01T11:45:00+00:00"


def test_labour_rules_first_exam_explicit_new_and_far_away(records, tmp_path):
    first = import_scan(records, demo_exam_file(tmp_path, seed=0, hours=0.0))
    second = import_scan(records, demo_exam_file(tmp_path, seed=1, hours=2.0))
    assert second.labor.id == first.labor.id and first.labor.start == LABOR_START
    fresh = import_scan(records, demo_exam_file(tmp_path, seed=2, hours=3.0), new_labor=True)
    assert fresh.labor.id != first.labor.id
    chosen = import_scan(records, demo_exam_file(tmp_path, seed=3, hours=4.0), labor_id=first.labor.id)
    assert chosen.labor.id == first.labor.id
    copies = len(list((records.root / "files").rglob("*.dcm")))
    with pytest.raises(RecordsError, match=r"from every exam of labour \d+.*--new-labor"):
        import_scan(records, demo_exam_file(tmp_path, seed=4, hours=24 * 30))
    assert len(list((records.root / "files").rglob("*.dcm"))) == copies  # refused before the copy
    other = import_scan(records, demo_exam_file(tmp_path, seed=5, patient_id="MRN-OTHER"))
    with pytest.raises(RecordsError, match="belongs to another patient"):
        import_scan(records, demo_exam_file(tmp_path, seed=6), labor_id=other.labor.id)
    with pytest.raises(RecordsError, match="belongs to another patient"):
        import_scan(records, demo_exam_file(tmp_path, seed=8, patient_id="MRN-NEW"), labor_id=other.labor.id)
    with pytest.raises(RecordsError, match="no labour with id 404"):
        import_scan(records, demo_exam_file(tmp_path, seed=7), labor_id=404)


def test_bad_input_is_refused_before_anything_is_saved(records, tmp_path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"this is not a scan")
    with pytest.raises(InputError):
        import_scan(records, broken, mrn="MRN-1")
    with pytest.raises(RecordsError, match="is a folder"):
        import_scan(records, tmp_path, mrn="MRN-1")
    assert records.patients() == []


def test_a_blank_mrn_is_refused_as_blank(records, tmp_path):
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), np.full((64, 80), 90, np.uint8))
    with pytest.raises(RecordsError, match=r"still.png: --mrn is blank; give the patient's MRN$"):
        import_scan(records, image, mrn="   ")
    assert records.patients() == []


def test_an_acquisition_time_after_now_is_refused_before_anything_is_saved(records, tmp_path):
    """A mistyped year (or a scanner clock set ahead) would put the exam years ahead on the labour's timeline."""
    now = datetime.now()
    with pytest.raises(RecordsError, match=r"--acquired 2030-01-01T00:00 is \d+ days after this workstation's "
                                           r"clock; check the date and time; nothing was imported"):
        import_scan(records, demo_exam_file(tmp_path, seed=0), acquired=datetime(2030, 1, 1))
    ahead = datetime.now(timezone.utc) + timedelta(hours=5)
    with pytest.raises(RecordsError, match=r"is 5\.0 h after this workstation's clock"):
        import_scan(records, demo_exam_file(tmp_path, seed=1), acquired=ahead)
    scanner_ahead = demo_exam_file(tmp_path / "scanner", seed=2, hours=(now - LABOR_START).total_seconds() / 3600 + 30)
    with pytest.raises(RecordsError, match=r"the file's AcquisitionDateTime .* is 30\.0 h after this workstation's "
                                           r"clock; check the scanner's clock, then give the time with --acquired"):
        import_scan(records, scanner_ahead)
    assert records.patients() == [] and not list((records.root / "files").rglob("*.dcm"))
    # within the clock skew allowed (scanner and workstation clocks a few minutes apart) it is filed
    soon = import_scan(records, demo_exam_file(tmp_path, seed=3), acquired=now + timedelta(minutes=20))
    assert soon.exam.acquired_source == "user"
