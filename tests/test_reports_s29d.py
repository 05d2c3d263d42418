"""Reports: an exam whose AI gave no value on its frame reads as plain words, never 'none ()' nor a garbled sentence.

The case from the user review: a real scanner DICOM (an axial head plane, no AoP, no frame chosen by the AI) analysed
by the shipped model, then a person's correction on frame 0. Needs poppler-utils (``pdftotext``)."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from fixtures_io import pydicom_test_file
from workstation.records import Records, correct, import_scan
from workstation.reports import write_exam_report, write_labor_report


def _raw_text(pdf) -> str:
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60).stdout
    return " ".join(text.split())


def test_an_exam_whose_ai_gave_no_value_reads_plainly_in_the_reports(tmp_path):
    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils (pdftotext) not installed: apt-get install -y poppler-utils")
    from workstation.inference.engine import load_model

    model = load_model(device="cpu")
    with Records(tmp_path / "data") as records:
        exam = import_scan(records, pydicom_test_file("gdcm-US-ALOKA-16.dcm"), mrn="R1", force_mrn=True,
                           model=model).exam
        ai = records.latest_ai_measurement(exam.id)
        assert ai.frame_index is None and ai.hsd_px is None and not ai.reasons.get("hsd_px")  # the case
        # The AI withheld its head biometry there (no skull echo): MW Rose measures an ellipse of her own.
        ellipse = records.frame_result(records.latest_analysis(exam.id).id, 0)["geometry"]["head_ellipse"]
        own = dict(ellipse, center=[ellipse["center"][0] + 4, ellipse["center"][1]])
        correct(records, exam.id, 0, {"head_ellipse": own}, "MW Rose")
        there = records.current_measurement(exam.id)
        assert there.frame_index == 0 and there.uncertainty is not None
        pdfs = [write_exam_report(records, exam.id, tmp_path / "exam.pdf"),
                write_labor_report(records, exam.labor_id, tmp_path / "labor.pdf")]
    for pdf in pdfs:
        raw = _raw_text(pdf)
        assert not re.search(r"\(\s*\)", raw), (pdf.name, raw)  # no empty reason anywhere
        assert "HSD none " in raw, (pdf.name, raw)  # the AI's HSD: plain 'none' where nothing says why
        assert "the AI's no" not in raw, (pdf.name, raw)
        assert (f"On frame 0, where the value in force was measured, the AI gave no AoP; its uncertainty there is "
                f"{there.uncertainty:.2f} (" in raw), (pdf.name, raw)
