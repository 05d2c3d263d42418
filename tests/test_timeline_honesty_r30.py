"""Review 30, findings 1 (stall part) and 2: the stall judgement says when it leaves out an exam without an AoP, and
when it rests on an AI value the AI rates HIGH uncertainty that no person has reviewed; the charts mark such points."""
from __future__ import annotations

import re

import pytest

from records_support import LABOR_START, demo_exam_file, run_cli, synthetic_measurement
from workstation.records import Records, StallRule, import_scan, labor_timeline
from workstation.records.timeline import stall_check

RULE = StallRule(span_h=2.0, min_rise_deg=5.0)


def _point(exam_id, hours, aop, source="confirmed", uncertainty=None, why=None):
    return {"exam_id": exam_id, "hours": hours, "aop_deg": aop, "source": source, "ai_uncertainty": uncertainty,
            "aop_reason": why}


# -- finding 1: an exam without an AoP inside the judged window --------------------------------------------------

def test_an_exam_without_an_aop_between_the_judged_exams_is_named_with_why():
    points = [_point(1, 0.0, 110.0), _point(2, 2.0, None, why="the angle of progression needs three distinct points"),
              _point(3, 4.0, 120.0)]
    check = stall_check(points, RULE)
    assert check["stalled"] is False  # the rest rose 10 deg: the verdict stands on them, but says what it left out
    assert "exam 2 at 2.0 h has no AoP (the angle of progression needs three distinct points)" in check["reason"]
    assert "left out" in check["reason"] and check["left_out_exam_ids"] == [2]
    assert check["reason"].startswith("AoP rose 10.0 deg from exam 1 to exam 3")


def test_a_latest_exam_without_an_aop_is_named_as_the_latest():
    points = [_point(1, 0.0, 110.0), _point(2, 2.5, 118.0), _point(3, 3.0, None, why="not analysed")]
    check = stall_check(points, RULE)
    assert check["left_out_exam_ids"] == [3]
    assert "exam 3 at 3.0 h, the latest exam, has no AoP (not analysed)" in check["reason"]


def test_an_exam_without_an_aop_that_could_have_been_the_reference_is_named():
    # With an AoP, exam 2 (1.0 h) would have been the reference for exam 3 (3.5 h): the judgement skipped it.
    check = stall_check([_point(1, 0.0, 110.0), _point(2, 1.0, None), _point(3, 3.5, 120.0)], RULE)
    assert check["reference_exam_id"] == 1 and check["left_out_exam_ids"] == [2]
    assert "exam 2 at 1.0 h has no AoP:" in check["reason"]


def test_exams_without_an_aop_before_the_reference_are_not_in_the_judgement():
    check = stall_check([_point(1, 0.0, None), _point(2, 0.5, 110.0), _point(3, 3.0, 120.0)], RULE)
    assert check["left_out_exam_ids"] == [] and "no AoP" not in check["reason"]
    assert check["reason"] == ("AoP rose 10.0 deg from exam 2 to exam 3 over 2.5 h, at least the 5 deg per 2 h the "
                               "stall rule asks for")


def test_a_judgement_not_made_yet_still_names_an_exam_without_an_aop():
    check = stall_check([_point(1, 0.0, 110.0), _point(2, 2.5, None, why="no pubic symphysis found in this frame")],
                        RULE)
    assert check["stalled"] is False and "progress not judged yet" in check["reason"]
    assert ("exam 2 at 2.5 h, the latest exam, has no AoP (no pubic symphysis found in this frame): not counted, "
            "review it") in check["reason"] and check["left_out_exam_ids"] == [2]


# -- finding 2: HIGH-uncertainty AI values --------------------------------------------------------------------------

def test_a_judgement_resting_on_an_unreviewed_high_uncertainty_ai_value_says_so():
    points = [_point(2, 2.0, 139.0, "ai", 0.33), _point(3, 4.5, 135.2, "ai", 0.61)]
    check = stall_check(points, RULE)
    assert check["stalled"] is True and check["high_uncertainty_exam_ids"] == [3]
    assert ("exam 3's AoP is the AI's with HIGH uncertainty (0.61), not reviewed by a person: review it"
            in check["reason"])
    assert "exam 2" not in check["reason"].split(";", 1)[1]  # moderate: not named


def test_the_reference_exam_is_named_too_and_a_persons_value_never():
    check = stall_check([_point(1, 0.0, 110.0, "ai", 0.9), _point(2, 3.0, 130.0, "confirmed", 0.9)], RULE)
    assert check["high_uncertainty_exam_ids"] == [1]
    assert "exam 1's AoP is the AI's with HIGH uncertainty (0.90)" in check["reason"]
    plain = stall_check([_point(1, 0.0, 110.0, "ai", 0.59), _point(2, 3.0, 130.0, "ai", None)], RULE)
    assert plain["high_uncertainty_exam_ids"] == [] and "HIGH" not in plain["reason"]


def test_high_is_the_one_definition_of_the_uncertainty_level(monkeypatch):
    from workstation.records import timeline

    monkeypatch.setattr(timeline, "uncertainty_level", lambda u: "HIGH" if u > 0.1 else "low")
    check = stall_check([_point(1, 0.0, 110.0, "ai", 0.2), _point(2, 3.0, 130.0, "ai", 0.05)], RULE)
    assert check["high_uncertainty_exam_ids"] == [1]


# -- through the records: the timeline JSON, the CLI, the PDF ------------------------------------------------------

@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


def _labor(records, tmp_path, high_on_latest=True, latest_without_aop=False):
    """Three exams at 0, 2.5 and 3 h (AI rows on frames 0, 1, 3); the latest's AI uncertainty HIGH or not."""
    ids = []
    for seed, (hours, frame) in enumerate(((0.0, 0), (1.0, 1), (3.0, 3))):
        exam = import_scan(records, demo_exam_file(tmp_path / "scans", seed, hours)).exam
        values = synthetic_measurement(frame)
        if latest_without_aop and seed == 2:
            values = dict(values, aop_deg=None, reasons={"aop_deg": "no pubic symphysis found in this frame"})
        records.add_measurement(exam.id, "ai", "tiny 0.0.1", values, frame_index=frame, time_s=0.0,
                                uncertainty=0.72 if (high_on_latest and seed == 2) else 0.2)
        ids.append(exam.id)
    return ids


def test_the_timeline_marks_high_uncertainty_ai_points_and_gives_why_an_aop_is_absent(records, tmp_path):
    ids = _labor(records, tmp_path)
    timeline = labor_timeline(records, records.exam(ids[0]).labor_id)
    high = {p["exam_id"]: p["ai_high_uncertainty"] for p in timeline["points"]}
    assert high == {ids[0]: False, ids[1]: False, ids[2]: True}
    assert f"exam {ids[2]}'s AoP is the AI's with HIGH uncertainty (0.72)" in timeline["stall_check"]["reason"]
    ids2 = _labor(records, tmp_path / "b", high_on_latest=False, latest_without_aop=True)
    timeline = labor_timeline(records, records.exam(ids2[0]).labor_id)
    last = timeline["points"][-1]
    assert last["aop_deg"] is None and last["aop_reason"] == "no pubic symphysis found in this frame"
    assert last["ai_high_uncertainty"] is False
    assert "the latest exam, has no AoP (no pubic symphysis found in this frame)" in timeline["stall_check"]["reason"]


def test_the_cli_timeline_says_the_judgement_rests_on_a_high_uncertainty_ai_value(records, tmp_path, capsys):
    ids = _labor(records, tmp_path)
    labor = records.exam(ids[0]).labor_id
    assert run_cli(["timeline", "--data-dir", str(tmp_path / "data"), "--labor", str(labor)]) == 0
    out = capsys.readouterr().out
    stall_line = next(line for line in out.splitlines() if "stalled:" in line)
    assert re.search(rf"exam {ids[2]}'s AoP is the AI's with HIGH uncertainty \(0\.72\), not reviewed by a "
                     r"person: review it", stall_line)


def test_the_labour_pdf_says_so_and_marks_the_point(records, tmp_path):
    from workstation.reports import write_labor_report
    from workstation.reports.chart import timeline_chart

    ids = _labor(records, tmp_path)
    labor = records.exam(ids[0]).labor_id
    timeline = labor_timeline(records, labor)
    drawing = timeline_chart(timeline)
    texts = [s.text for s in _strings(drawing)]
    assert "!" in texts and any("HIGH uncertainty" in t for t in texts)  # the mark and its legend entry
    low = labor_timeline(records, labor)
    for p in low["points"]:
        p["ai_high_uncertainty"] = False
    assert "!" not in [s.text for s in _strings(timeline_chart(low))]
    out = write_labor_report(records, labor, tmp_path / "labour.pdf")
    text = _pdf_text(out)
    assert f"exam {ids[2]}'s AoP is the AI's with HIGH uncertainty (0.72), not reviewed by a person: review it" in text


def _strings(drawing):
    from reportlab.graphics.shapes import Group, String

    def walk(node):
        for child in getattr(node, "contents", []):
            if isinstance(child, String):
                yield child
            elif isinstance(child, Group):
                yield from walk(child)
    return list(walk(drawing))


def _pdf_text(path) -> str:
    import subprocess

    raw = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(raw.split())
