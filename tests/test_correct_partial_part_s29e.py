"""Review 29, finding 8: ``workstation correct`` with a part given without some of its entries (moving only the
tangent point: ``{"aop": {"tangent_point": [x, y]}}``) takes the rest from the frame's value in force, as it does
whole parts; where there is none, one line names the part and the entries it needs."""
from __future__ import annotations

import json

import pytest

from records_support import demo_exam_file, run_cli, save_analysis_with_uncertainties


@pytest.fixture
def exam_id(tmp_path, monkeypatch):
    from workstation.records import Records, import_scan

    monkeypatch.setenv("WORKSTATION_DATA_DIR", str(tmp_path / "data"))
    with Records(tmp_path / "data") as records:
        exam = import_scan(records, demo_exam_file(tmp_path, seed=0)).exam
        save_analysis_with_uncertainties(records, exam.id, [0.46, 0.2, 0.3, 0.74], chosen=0)
        bare = import_scan(records, demo_exam_file(tmp_path, seed=1, hours=1.0)).exam  # never analysed
    return exam.id, bare.id


def _ai_aop(exam):
    from workstation.records import Records

    with Records() as records:
        return records.current_measurement(exam).geometry["aop"]


def test_only_the_tangent_point_moves_the_rest_from_the_value_in_force(exam_id, capsys):
    exam, _ = exam_id
    aop = _ai_aop(exam)
    tangent = [aop["tangent_point"][0], aop["tangent_point"][1] + 15]
    assert run_cli(["correct", "--exam", str(exam), "--frame", "0", "--user", "A", "--json",
                    "--geometry", json.dumps({"aop": {"tangent_point": tangent}})]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "correction"
    from workstation.records import Records

    with Records() as records:
        m = records.current_measurement(exam)
    assert m.kind == "correction" and m.aop_deg is not None
    assert m.geometry["aop"]["vertex"] == aop["vertex"] and m.geometry["aop"]["superior"] == aop["superior"]
    assert m.geometry["aop"]["tangent_point"] == tangent


def test_a_part_that_cannot_be_completed_names_its_entries(exam_id, capsys):
    _, bare = exam_id
    assert run_cli(["correct", "--exam", str(bare), "--frame", "0", "--user", "A",
                    "--geometry", '{"aop": {"tangent_point": [200, 120]}}']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the 'aop' part needs vertex, superior and tangent_point")
    assert "vertex and superior are not given" in err and "lacks its" not in err
    assert len(err.splitlines()) == 1


def test_help_says_a_part_may_be_given_in_part(capsys):
    with pytest.raises(SystemExit):
        run_cli(["correct", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "so do the entries a part is given without" in text and "tangent_point" in text
