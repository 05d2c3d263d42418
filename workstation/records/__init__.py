"""Patient records of the workstation: patients, labours, exams, AI results, measurements and their history.

No Qt here: the GUI, the CLI (``workstation import``, ``timeline``, ``history``, ...) and the reports use
this package. See ``store`` for the layout and the append-only rule, ``importer`` for how a scan is filed,
``review`` for corrections and confirmations, ``calibration`` for a manual calibration kept with an exam,
``timeline`` for the sonopartogram.
"""
from workstation.records.calibration import CalibrationChange, exam_calibration, load_exam, set_exam_calibration
from workstation.records.database import SCHEMA_VERSION, RecordsError
from workstation.records.importer import ImportResult, import_scan
from workstation.records.review import ReviewConflict, confirm, correct, recorded_review, save_viewer_review
from workstation.records.store import (AI, CONFIRMATION, CORRECTION, Analysis, Exam, ExamCalibration, Labor,
                                       Measurement, Patient, Records)
from workstation.records.timeline import AOP_SVD_THRESHOLD_DEG, StallRule, labor_timeline

__all__ = ["AI", "AOP_SVD_THRESHOLD_DEG", "Analysis", "CONFIRMATION", "CORRECTION", "CalibrationChange", "Exam",
           "ExamCalibration", "ImportResult", "Labor", "Measurement", "Patient", "Records", "RecordsError",
           "ReviewConflict", "SCHEMA_VERSION", "StallRule", "confirm", "correct", "exam_calibration", "import_scan",
           "labor_timeline", "load_exam", "recorded_review", "save_viewer_review", "set_exam_calibration"]
