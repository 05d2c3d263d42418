"""Review 30, finding 1 (and finding 10's first two bullets): a correction that breaks the geometry (the tangent point
laid on the PS end, the HSD end on its start) is refused, nothing saved, rather than saved as the exam's value with
its AoP or HSD gone; ``confirm`` does not confirm such a row saved before; the reports say why an AoP is absent; and
a head-ellipse correction's history line says whose its values are."""
from __future__ import annotations

import json

import pytest

from records_support import run_cli
from test_correct_partial_part_s29e import exam_id  # noqa: F401 (fixture)


@pytest.fixture
def exam(exam_id):
    return exam_id[0]  # analysed, the AI's row on frame 0


def _rows(exam_id):
    from workstation.records import Records

    with Records() as records:
        return records.measurements(exam_id)


def _ai_geometry(exam_id):
    return _rows(exam_id)[-1].geometry


def test_tangent_point_on_the_ps_end_is_refused_nothing_saved(exam, capsys):
    before = _rows(exam)
    vertex = _ai_geometry(exam)["aop"]["vertex"]
    rc = run_cli(["correct", "--exam", str(exam), "--frame", "0", "--user", "Ann",
                  "--geometry", json.dumps({"aop": {"tangent_point": vertex}})])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("error: AoP cannot be measured with the tangent point on the PS end (")
    assert err.endswith("; nothing was saved")
    assert [m.id for m in _rows(exam)] == [m.id for m in before]


def test_an_hsd_lost_is_refused_where_the_basis_had_one():
    from workstation.cine_review import lost_value_problem

    measured = {"aop_deg": 130.0, "hsd_px": None, "reasons": {"hsd_px": "no HSD line"},
                "geometry": {"hsd": {"start": [10.0, 10.0], "end": [10.5, 10.0]}}}
    assert lost_value_problem(measured, {"hsd_px": 40.0}) == \
        "HSD cannot be measured with the HSD end on the PS end (no HSD line)"


def test_an_implausible_aop_is_refused_where_the_basis_had_one():
    from workstation.cine_review import lost_value_problem

    measured = {"aop_deg": None, "hsd_px": 40.0, "geometry": {},
                "reasons": {"aop_deg": "an AoP of 53.4 deg is outside the plausible 60-180 deg"}}
    assert lost_value_problem(measured, {"aop_deg": 139.0}) == \
        "AoP cannot be measured (an AoP of 53.4 deg is outside the plausible 60-180 deg)"
    assert lost_value_problem(measured, {"aop_deg": None}, None) is None  # the basis had none: nothing lost


def test_a_good_correction_still_saves(exam, capsys):
    aop = _ai_geometry(exam)["aop"]
    tangent = [aop["tangent_point"][0], aop["tangent_point"][1] + 15]
    assert run_cli(["correct", "--exam", str(exam), "--frame", "0", "--user", "Ann",
                    "--geometry", json.dumps({"aop": {"tangent_point": tangent}})]) == 0
    assert _rows(exam)[-1].kind == "correction"


def _legacy_broken_correction(exam_id):
    """A correction without an AoP, as saved before such corrections were refused."""
    from workstation.records import Records
    from workstation.sources import ai_sources, source

    with Records() as records:
        ai = records.measurements(exam_id)[-1]
        geometry = json.loads(json.dumps(ai.geometry))
        geometry["aop"]["tangent_point"] = geometry["aop"]["vertex"]
        why = "the angle of progression needs three distinct points"
        sources = {**ai_sources("tiny 0.0.1"), "aop": source("correction", "Ann", "2026-03-01T10:00:00+00:00")}
        return records.add_measurement(
            exam_id, "correction", "Ann",
            {"aop_deg": None, "hsd_px": ai.hsd_px, "hsd_mm": ai.hsd_mm, "reasons": {"aop_deg": why}},
            supersedes_id=ai.id, frame_index=0, time_s=0.0, geometry=geometry,
            calibration_source=ai.calibration_source, sources=sources)


def test_confirm_refuses_a_correction_that_lost_the_aop(exam, capsys):
    row = _legacy_broken_correction(exam)
    assert run_cli(["confirm", "--exam", str(exam), "--user", "Dr C"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"correction #{row.id} by Ann, has no AoP" in err
    assert "the angle of progression needs three distinct points" in err and "nothing was confirmed" in err
    assert _rows(exam)[-1].id == row.id


def test_confirm_refuses_an_exam_without_any_value(exam_id, capsys):
    bare = exam_id[1]  # never analysed
    assert run_cli(["confirm", "--exam", str(bare), "--user", "Dr C"]) == 2
    assert "no measured value to confirm" in capsys.readouterr().err


def test_missing_aop_gives_its_reason_in_history_source_and_pdf(exam, capsys):
    _legacy_broken_correction(exam)
    why = "the angle of progression needs three distinct points"
    assert run_cli(["history", "--exam", str(exam)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"AoP - ({why})" in last

    from workstation.gui.records_dock import format_source
    from workstation.records import Records

    with Records() as records:
        m = records.current_measurement(exam)
    assert format_source(m) == f"no AoP ({why}); HSD AI"

    from workstation.reports import pdf
    assert pdf._value(m, "aop") == f"- ({why})"  # the exam page's Current value and history
    assert pdf._point_by({"aop_deg": None, "aop_reason": why}, "aop") == f"- ({why})"  # the labour's "AoP by"


def test_head_ellipse_correction_history_says_whose_values():
    from workstation.sources import values_note

    row = {"kind": "correction", "by": "Dr U", "created_at": "t", "aop_deg": None, "hsd_px": None, "hc_mm": 83.0,
           "sources": {"head": {"kind": "correction", "by": "Dr U", "at": "t"}}}
    assert values_note(row, head=True) == "values: HC, BPD, OFD, GA correction by Dr U"
    assert values_note(row, head=False) == ""
