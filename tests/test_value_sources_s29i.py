"""Review 29b: each value says whose it is everywhere a correction is shown or stored.

1. The labour PDF's exam table gives the HSD its own source and author, not the AoP's.
2. A correction saved from the viewer keeps the AI's model name and time for the values it left the AI's; the exam
   PDF never prints a person's row time as the AI's When.
3. The measurement JSON's row-level ``source`` follows the AoP's source, as the timeline's does.
4. The exam PDF's history table says whose each value of a person's row is, as ``workstation history`` does.
5. ``workstation correct`` moving the PS inferior end moves the HSD's start with it, as the window does.
Real SQLite records; the CLI through ``run_cli``.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from records_support import run_cli, three_exam_labor
from test_records_review import exam, records  # noqa: F401 (the fixtures: an exam analysed on four frames)
from workstation.records import correct
from workstation.sources import source_of

needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext is not installed")


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _moved_hsd(row, dy=8) -> dict:
    end = row.geometry["hsd"]["end"]
    return {"hsd": {"end": [end[0], end[1] + dy]}}


def _moved_tangent(row) -> dict:
    x, y = row.geometry["aop"]["tangent_point"]
    return {"aop": {"tangent_point": [x + 6, y - 4]}}


def _cells(table) -> list[list[str]]:
    return [[getattr(c, "text", c) for c in row] for row in table._cellvalues]


def test_the_labour_pdfs_exam_table_gives_the_hsd_its_own_source(records, tmp_path):
    from workstation.records import labor_timeline
    from workstation.reports import write_labor_report
    from workstation.reports.pdf import _ReportBuilder

    exam_ids = three_exam_labor(records, tmp_path / "usb")
    first, second = (records.current_measurement(e) for e in exam_ids[:2])
    correct(records, exam_ids[0], first.frame_index, _moved_hsd(first), "hsdA")
    correct(records, exam_ids[1], second.frame_index, _moved_tangent(second), "tanA")
    labor_id = records.exam(exam_ids[0]).labor_id
    rows = _cells(_ReportBuilder(records).points_table(labor_timeline(records, labor_id)))
    header = rows[0]
    aop_by, hsd_by = header.index("AoP by"), header.index("HSD by")
    by_exam = {row[0]: row for row in rows[1:]}
    one, two = by_exam[str(exam_ids[0])], by_exam[str(exam_ids[1])]
    assert one[aop_by].startswith("AI") and "tiny 0.0.1" in one[aop_by] and "hsdA" not in one[aop_by]
    assert "hsdA" in one[hsd_by] and not one[hsd_by].startswith("AI")
    assert "tanA" in two[aop_by] and two[hsd_by].startswith("AI") and "tanA" not in two[hsd_by]
    if shutil.which("pdftotext"):
        text = _pdf_text(write_labor_report(records, labor_id, tmp_path / "labour.pdf"))
        assert "hsdA" in text and "tanA" in text


def test_a_viewer_correction_keeps_the_ais_model_and_time_for_untouched_values(records, exam):
    from test_records_review import Viewer

    ai = records.current_measurement(exam.id)
    viewer = Viewer(records, exam.id, "Dr Gui")
    state = viewer.states[0]
    geometry = json.loads(json.dumps(state.ai_geometry))
    geometry["hsd"]["end"] = [geometry["hsd"]["end"][0], geometry["hsd"]["end"][1] + 8]
    state.correct(geometry, viewer.calibration, viewer.frame_shape, "Dr Gui")
    _, row = viewer.save(0, "correction")
    cli_row = correct(records, exam.id, 0, _moved_hsd(ai, 9), "Dr Cli")
    for saved in (row, cli_row):
        assert source_of(saved, "aop") == {"kind": "ai", "by": ai.by, "at": ai.created_at}
        assert source_of(saved, "head") == {"kind": "ai", "by": ai.by, "at": ai.created_at}


@needs_pdftotext
def test_the_exam_pdf_never_dates_the_ais_value_with_a_persons_row_time(records, exam, tmp_path):
    from workstation.records.store import AI
    from workstation.reports import write_exam_report
    from workstation.reports.pdf import _at

    ai = records.current_measurement(exam.id)
    row = correct(records, exam.id, 0, _moved_hsd(ai), "MW Rose")
    # A row whose AI source has no time on record (as the viewer once saved them): no When, never the row's.
    bare = row.__class__(**{**row.__dict__, "sources": {**row.sources, "aop": {"kind": AI, "by": None, "at": None}}})
    assert _at(bare, "aop") is None
    assert _at(row, "aop") == ai.created_at
    write_exam_report(records, exam.id, tmp_path / "exam.pdf")


def test_the_measurement_json_source_follows_the_aop(records, exam, tmp_path, capsys):
    ai = records.current_measurement(exam.id)
    hsd_only = correct(records, exam.id, 0, _moved_hsd(ai), "MW Rose")
    assert hsd_only.source == "ai" and hsd_only.to_json()["source"] == "ai"
    assert hsd_only.to_json()["sources"]["hsd"]["kind"] == "correction"
    data = str(tmp_path / "data")
    assert run_cli(["history", "--data-dir", data, "--exam", str(exam.id), "--json"]) == 0
    event = [e for e in json.loads(capsys.readouterr().out) if e["event"] == "correction"][-1]
    assert event["source"] == "ai"
    tangent = correct(records, exam.id, 0, _moved_tangent(hsd_only), "Tan")
    assert tangent.source == "confirmed" and tangent.to_json()["source"] == "confirmed"
    from workstation.records import labor_timeline

    point = labor_timeline(records, exam.labor_id)["points"][0]
    assert point["source"] == tangent.to_json()["source"]


@needs_pdftotext
def test_the_exam_pdf_history_says_whose_each_value_of_a_persons_row_is(records, exam, tmp_path):
    from workstation.reports import write_exam_report

    ai = records.current_measurement(exam.id)
    correct(records, exam.id, 0, _moved_hsd(ai), "MW Rose")
    text = _pdf_text(write_exam_report(records, exam.id, tmp_path / "exam.pdf"))
    history = text[text.index("Measurement history"):]
    flat = " ".join(history.split())
    assert "AoP the AI's (unchanged)" in flat and "HSD correction by MW Rose" in flat


def test_moving_the_ps_inferior_end_from_the_cli_moves_the_hsd_start_too(records, exam, tmp_path, capsys):
    ai = records.current_measurement(exam.id)
    x, y = ai.geometry["ps_axis"]["inferior"]
    data = str(tmp_path / "data")
    assert run_cli(["correct", "--data-dir", data, "--exam", str(exam.id), "--frame", "0", "--user", "psInf", "--json",
                    "--geometry", json.dumps({"ps_axis": {"inferior": [x + 3, y + 4]}})]) == 0
    capsys.readouterr()
    row = records.current_measurement(exam.id)
    assert row.geometry["hsd"]["start"] == pytest.approx([x + 3, y + 4])
    assert row.geometry["aop"]["vertex"] == pytest.approx([x + 3, y + 4])
    assert source_of(row, "hsd")["by"] == "psInf" and source_of(row, "aop")["by"] == "psInf"
    # The person's own HSD start stands.
    sx, sy = row.geometry["hsd"]["start"]
    again = correct(records, exam.id, 0, {"ps_axis": {"inferior": [x + 5, y + 5]},
                                          "hsd": {"start": [sx - 1, sy - 1]}}, "psInf")
    assert again.geometry["hsd"]["start"] == pytest.approx([sx - 1, sy - 1])
    # Moving the superior end leaves the HSD as it was.
    sup = correct(records, exam.id, 0, {"ps_axis": {"superior": [c + 2 for c in ai.geometry["ps_axis"]["superior"]]}},
                  "psSup")
    assert sup.geometry["hsd"] == again.geometry["hsd"] and source_of(sup, "hsd")["by"] == "psInf"
