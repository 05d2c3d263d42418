"""Helpers shared by the records and reports tests (no tests here): demo exams, AI rows, the CLI runner.

The tiny test model rarely finds an AoP on the demo cine, so tests that need values insert AI measurement
rows measured on the synthetic cine's exact label maps, through the records API.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from model_fixtures import build_tiny_onnx, write_manifest

LABOR_START = datetime(2026, 3, 1, 10, 0, 0)
DEMO_FRAMES = 4


def tiny_model_manifest(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_manifest(build_tiny_onnx(folder / "tiny.onnx"))


def tiny_model(folder: Path):
    from workstation.inference.engine import load_model

    return load_model(str(tiny_model_manifest(folder)), device="cpu")


def demo_exam_file(folder: Path, seed: int, hours: float = 0.0, patient_id: str = "MRN-0042",
                   patient_name: str = "Doe^Jane") -> Path:
    """A synthetic transperineal DICOM acquired ``hours`` after :data:`LABOR_START` (unique bytes every call)."""
    from workstation.synthetic import write_demo_cine

    folder.mkdir(parents=True, exist_ok=True)
    return write_demo_cine(folder / f"exam-{seed}-{hours:g}h.dcm", n_frames=DEMO_FRAMES, seed=seed,
                           patient_id=patient_id, patient_name=patient_name,
                           acquired=LABOR_START + timedelta(hours=hours))


@lru_cache(maxsize=1)
def _synthetic_labels():
    from workstation.synthetic import make_transperineal_cine

    return make_transperineal_cine(n_frames=DEMO_FRAMES, seed=0).labels


def synthetic_measurement(frame_index: int, calibration=None) -> dict:
    """The `measure` JSON of a demo frame's exact label map (AoP rises with the frame index)."""
    from workstation.measure import measure_labelmap

    return measure_labelmap(_synthetic_labels()[frame_index], calibration).to_json()


def add_ai_row(records, exam_id: int, frame_index: int):
    """An AI measurement row as the pipeline would store it, with the exam's own calibration."""
    from workstation.io import load

    cine = load(records.file_path(records.exam(exam_id)))
    values = synthetic_measurement(frame_index, cine.calibration)
    cine.close()
    return records.add_measurement(exam_id, "ai", "tiny 0.0.1", values, frame_index=frame_index,
                                   time_s=0.04 * frame_index, uncertainty=0.25,
                                   calibration_source=values["calibration"]["source"])


def three_exam_labor(records, folder: Path, model=None) -> list[int]:
    """The acceptance scenario: three exams of one labour at 0, 1.5 and 3 h, AI rows on frames 0, 1, 3."""
    from workstation.records import import_scan

    exam_ids = []
    for seed, (hours, frame_index) in enumerate(((0.0, 0), (1.5, 1), (3.0, 3))):
        result = import_scan(records, demo_exam_file(folder, seed, hours), model=model)
        add_ai_row(records, result.exam.id, frame_index)
        exam_ids.append(result.exam.id)
    return exam_ids


def run_cli(argv: list[str]) -> int:
    """``workstation.cli.main(argv)``: the records commands as a user runs them, wiring and error handling included."""
    from workstation import cli

    return cli.main(argv)


def save_analysis_with_uncertainties(records, exam_id: int, uncertainties: list[float], chosen: int = 0):
    """An analysis as the pipeline stores it (one result per demo frame, the synthetic label maps' values), each
    frame with its own uncertainty, and the AI row on frame ``chosen``."""
    from workstation.io import load

    cine = load(records.file_path(records.exam(exam_id)))
    calibration, times = cine.calibration, list(cine.times_s)
    cine.close()
    frames = []
    for index, uncertainty in enumerate(uncertainties):
        values = synthetic_measurement(index, calibration)
        frames.append({"index": index, "time_s": float(times[index]), "frame_class": "standard_plane",
                       "uncertainty": uncertainty, "calibration": values["calibration"],
                       **{k: values[k] for k in ("aop_deg", "hsd_px", "hsd_mm", "geometry", "reasons")}})
    model = {"name": "tiny", "version": "0.0.1", "sha256": "0" * 64, "placeholder": True}
    return records.save_analysis(exam_id, {"model": model, "frames": frames,
                                           "summary": {"chosen_frame": chosen, "why": "test"}})
