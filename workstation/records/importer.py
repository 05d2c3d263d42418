"""Importing a scan into the records: which patient, which labour, when it was acquired, and its AI analysis.

Rules (the CLI's ``workstation import`` follows them; the GUI calls :func:`import_scan` too):

* **Patient.** The file's DICOM Patient ID files the exam when present. ``mrn`` (``--mrn``) is used when the
  file has none. When both are present and differ, the import is refused: filing a scan under the wrong
  patient is the costliest error a record can make, and a silent choice either way would hide it. A person
  who knows better passes ``force_mrn`` (``--force-mrn``): ``mrn`` wins and the file's Patient ID is kept on
  the exam (``dicom_patient_id``) so the override stays visible. A new patient takes ``name`` or the file's
  Patient's Name, and the file's birth date; an existing patient is never changed.
* **Acquisition time.** ``acquired`` (``--acquired``) wins, then the file's DICOM date-time (the attribute is
  recorded, e.g. ``AcquisitionDateTime``), then the file's modification time (``file_mtime``: when the file was
  last written, often when it was copied off the scanner, not when it was scanned; the import line says so). A DICOM
  whose date fields are there but none can be read (``StudyInfo.acquisition_problem``) is a red flag; with
  ``refuse_unreadable_date`` (the CLI) it is refused unless ``acquired`` is given. A time more than
  :data:`MAX_FUTURE_SKEW_H` after this workstation's clock is refused (a mistyped year, a scanner clock set wrong):
  it would put the exam hours or years ahead on the labour's timeline.
* **Labour.** ``labor_id`` (``--labor``) files into that labour (it must be the patient's). ``new_labor``
  starts one. Otherwise the patient's most recent labour is used, or one is created for the first exam.
  An automatic labour starts at its earliest exam's acquisition time (not stored: it follows exams imported
  out of order). An exam more than :data:`MAX_EXAM_GAP_H` from every exam of that labour is refused,
  because it most likely belongs to another labour.
* **Duplicates.** A file whose bytes (sha256) are already in the records is not imported again; the
  existing exam is returned with ``duplicate=True``. ``mrn`` naming another patient than the one it is filed under
  is refused as for a new file: the same content cannot be filed for two patients, and "already imported" must not
  read as "filed for" the patient asked for.
* **Read-only records** (``Records.read_only``) refuse an import first, in their one line (``read_only_error``):
  the scan is not read, analysed or copied.
* **Atomicity.** Patient and labour are checked first; then the scan is analysed and copied in (see
  ``filestore``); then patient, labour, exam, analysis and AI measurement are saved in one transaction.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from workstation.inference.manifest import file_sha256
from workstation.records.database import RecordsError
from workstation.records.filestore import store_copy
from workstation.records.store import (Analysis, Exam, Labor, Patient, Records, chronological_key, display_name,
                                       hours_between, scanner_time)

# Exams of one labour are hours apart; one a couple of days from all the others is another labour
# (or another pregnancy) far more often than a very long labour with no scan in between.
MAX_EXAM_GAP_H = 48.0
# Scanner and workstation clocks differ by minutes, a daylight-saving change by an hour: a time further ahead of
# this workstation's clock than this is a mistake, not an acquisition.
MAX_FUTURE_SKEW_H = 2.0


@dataclass(frozen=True)
class ImportResult:
    exam: Exam
    patient: Patient
    labor: Labor
    analysis: Analysis | None
    duplicate: bool  # True: the same bytes were imported before; nothing new was saved

    def to_json(self) -> dict:
        return {"exam": self.exam.to_json(), "patient": self.patient.to_json(), "labor": self.labor.to_json(),
                "analysis": None if self.analysis is None else self.analysis.to_json(), "duplicate": self.duplicate}


def resolve_mrn(dicom_patient_id: str | None, mrn: str | None, force_mrn: bool, file_name: str) -> str:
    """The MRN to file under, by the rule in the module docstring."""
    dicom_id = (dicom_patient_id or "").strip() or None
    if mrn is not None and not mrn.strip():
        raise RecordsError(f"{file_name}: --mrn is blank; give the patient's MRN")
    given = (mrn or "").strip() or None
    if given and dicom_id and given != dicom_id and not force_mrn:
        raise RecordsError(f"{file_name}: the file's Patient ID is {dicom_id!r} but --mrn is {given!r}; "
                           f"check the patient, then pass --force-mrn to file it under {given!r}")
    if given:
        return given
    if dicom_id:
        return dicom_id
    raise RecordsError(f"{file_name}: the file has no Patient ID; give the patient's MRN with --mrn")


def resolve_acquired(info, path: Path, acquired: datetime | None,
                     refuse_unreadable_date: bool = False) -> tuple[datetime, str]:
    """(acquisition time, where it came from): the user's, the file's DICOM attribute, or the file's mtime.
    ``refuse_unreadable_date``: a file whose date fields cannot be read (``info.acquisition_problem``) is refused
    unless ``acquired`` is given, rather than filed at its modification time."""
    if acquired is not None:
        when, source = scanner_time(acquired), "user"
    elif info.acquisition_datetime is not None:
        when, source = info.acquisition_datetime, info.acquisition_source
    else:
        when, source = datetime.fromtimestamp(path.stat().st_mtime), "file_mtime"
        problem = getattr(info, "acquisition_problem", None)
        if problem and refuse_unreadable_date:
            raise RecordsError(f"{path.name}: {problem}, so when it was scanned is unknown (its modification time "
                               f"{when.isoformat(timespec='minutes')} is when it was copied, not scanned); give the "
                               "scan's time with --acquired; nothing was imported")
    _refuse_future(when, source, path.name)
    return when, source


def _refuse_future(when: datetime, source: str, file_name: str) -> None:
    """A time later than now (beyond clock skew) cannot be an acquisition: one line saying whose time it is."""
    now = datetime.now(when.tzinfo) if when.tzinfo is not None else datetime.now()
    ahead_h = (when - now).total_seconds() / 3600.0
    if ahead_h <= MAX_FUTURE_SKEW_H:
        return
    ahead = f"{ahead_h / 24:.0f} days" if ahead_h >= 48 else f"{ahead_h:.1f} h"
    whose = ("--acquired" if source == "user" else
             "the file's modification time" if source == "file_mtime" else f"the file's {source}")
    fix = "check the date and time" if source == "user" else "check the scanner's clock, then give the time with --acquired"
    raise RecordsError(f"{file_name}: {whose} {when.isoformat(timespec='minutes')} is {ahead} after this "
                       f"workstation's clock; {fix}; nothing was imported")


def resolve_labor(records: Records, patient: Patient, acquired: datetime, labor_id: int | None,
                  new_labor: bool, file_name: str) -> int | None:
    """The labour id to file into; ``None`` means: create an automatic labour. A refusal names ``file_name``."""
    if labor_id is not None:
        labor = _labor(records, labor_id, file_name)
        if labor.patient_id != patient.id:
            raise RecordsError(f"{file_name}: labour {labor_id} belongs to another patient, not MRN {patient.mrn}")
        return labor_id
    if new_labor:
        return None
    labors = records.labors(patient.id)
    if not labors:
        return None
    latest = labors[0]
    times = [e.acquired for e in records.exams(latest)] or ([latest.start] if latest.start else [])
    # the labour's one reading of its times (scanner_time), this exam's among them
    reading = chronological_key([*times, *([latest.start] if latest.start else []), acquired])
    gap_h = min((abs(hours_between(t, acquired, reading)) for t in times), default=0.0)
    if gap_h > MAX_EXAM_GAP_H:
        raise RecordsError(f"{file_name}: this exam is {gap_h:.0f} h from every exam of labour {latest.id} of MRN "
                           f"{patient.mrn}; pass --labor {latest.id} to add it there or --new-labor to start a new "
                           "labour")
    return latest.id


def _labor(records: Records, labor_id: int, file_name: str) -> Labor:
    try:
        return records.labor(labor_id)
    except RecordsError as exc:  # "no labour with id N", said of this file
        raise RecordsError(f"{file_name}: {exc}") from None


def import_scan(records: Records, path: str | os.PathLike, *, mrn: str | None = None, name: str | None = None,
                acquired: datetime | None = None, labor_id: int | None = None, new_labor: bool = False,
                force_mrn: bool = False, model=None, progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None, refuse_unreadable_date: bool = False) -> ImportResult:
    """Import one scan file (see the module docstring for the rules); with ``model``, analyse it too.
    ``refuse_unreadable_date``: see the module docstring's acquisition time."""
    from workstation.inference.pipeline import analyze_cine
    from workstation.io import load

    if records.read_only is not None:  # first: nothing read, analysed or copied that could never be filed
        raise records.read_only_error()
    path = Path(path)
    if path.is_dir():
        raise RecordsError(f"{path.name}: is a folder; import scan files one by one")
    cine = load(path)  # refuses a bad file before anything is copied or saved
    try:
        sha256 = file_sha256(path)
        existing = records.exam_by_sha256(sha256)
        if existing is not None:
            return _existing(records, existing, mrn, path.name)
        info = cine.info
        patient_mrn = resolve_mrn(info.patient_id, mrn, force_mrn, path.name)
        when, when_source = resolve_acquired(info, path, acquired, refuse_unreadable_date)
        _refuse_labor_early(records, patient_mrn, when, labor_id, new_labor, path.name)
        analysis = None
        if model is not None:
            analysis = analyze_cine(cine, model, progress=progress, cancelled=cancelled)
            if analysis["cancelled"]:
                raise RecordsError(f"{path.name}: analysis cancelled; nothing was imported")
        stored = store_copy(path, records.root, sha256)
        with records.transaction():
            if records.exam_by_sha256(sha256) is not None:  # another process imported it meanwhile
                return _existing(records, records.exam_by_sha256(sha256), mrn, path.name)
            patient = records.get_or_create_patient(patient_mrn, name or display_name(info.patient_name),
                                                    info.patient_birth_date)
            target = resolve_labor(records, patient, when, labor_id, new_labor, path.name)
            labor_id_used = target if target is not None else records.create_labor(patient.id).id
            exam = records.insert_exam(
                labor_id_used, stored, original_path=str(path.resolve()), acquired=when, acquired_source=when_source,
                n_frames=cine.n_frames, frame_shape=cine.frame_shape, calibration_source=cine.calibration.source,
                dicom_patient_id=info.patient_id, study_instance_uid=info.study_instance_uid,
                sop_instance_uid=info.sop_instance_uid)
            saved = None if analysis is None else records.save_analysis(exam.id, analysis)
            return ImportResult(exam, patient, records.labor(labor_id_used), saved, duplicate=False)
    finally:
        cine.close()


def _refuse_labor_early(records: Records, mrn: str, acquired: datetime, labor_id: int | None,
                        new_labor: bool, file_name: str) -> None:
    """The labour checks, before minutes of analysis and a copy that a refusal would leave unreferenced."""
    patient = records.patient_by_mrn(mrn)
    if patient is not None:
        resolve_labor(records, patient, acquired, labor_id, new_labor, file_name)
    elif labor_id is not None:
        _labor(records, labor_id, file_name)  # "no labour with id N" when there is none
        raise RecordsError(f"{file_name}: labour {labor_id} belongs to another patient, not MRN {mrn}")


def _existing(records: Records, exam: Exam, mrn: str | None, file_name: str) -> ImportResult:
    """The exam already holding the file's content; refused where ``mrn`` names another patient (see the module
    docstring's duplicates)."""
    labor = records.labor(exam.labor_id)
    patient = records.patient(labor.patient_id)
    given = (mrn or "").strip() or None
    if given is not None and given != patient.mrn:
        raise RecordsError(f"{file_name}: the same content is already filed as exam {exam.id} of MRN {patient.mrn} "
                           f"({display_name(patient.name) or 'no name'}), not {given}; check the patient (an exam is "
                           "filed for one patient only); nothing was imported")
    return ImportResult(exam, patient, labor, records.latest_analysis(exam.id), duplicate=True)
