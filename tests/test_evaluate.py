"""Evaluate: the rank-based AUROC, the uncertainty-vs-bad-AoP block, and its place in the evaluate JSON."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import shared_path
from workstation.evaluate import (auroc, error_by_certainty, evaluate, format_summary, hc_uncertainty_auroc,
                                  main as summary_main, uncertainty_auroc)

AUROC_KEYS = {"threshold_deg", "auroc", "n_bad", "n"}


# --- auroc: hand-computed cases -------------------------------------------------------------------------------

def test_auroc_perfect_separation_is_one():
    assert auroc([0.1, 0.2, 0.3, 0.8, 0.9], [False, False, False, True, True]) == 1.0


def test_auroc_reversed_separation_is_zero():
    assert auroc([0.9, 0.8, 0.3, 0.2, 0.1], [False, False, False, True, True]) == 0.0


def test_auroc_all_tied_is_one_half():
    assert auroc([0.4] * 6, [True, False, True, False, False, False]) == 0.5


def test_auroc_small_known_example():
    # Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 beats 0.1 only, 0.8 beats both -> 3 of 4 pairs.
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)


def test_auroc_ties_between_classes_count_one_half():
    # Positives 0.5 and 0.9, negatives 0.2 and 0.5: 0.5 beats 0.2 and ties 0.5 (1.5), 0.9 beats both (2) -> 3.5/4.
    assert auroc([0.2, 0.5, 0.5, 0.9], [False, True, False, True]) == pytest.approx(0.875)


def test_auroc_is_none_without_both_classes():
    assert auroc([0.1, 0.2], [False, False]) is None
    assert auroc([0.1, 0.2], [True, True]) is None
    assert auroc([], []) is None


def test_auroc_rejects_nan_and_mismatched_lengths():
    with pytest.raises(ValueError):
        auroc([0.1, float("nan")], [True, False])
    with pytest.raises(ValueError):
        auroc([0.1, 0.2, 0.3], [True, False])


def test_auroc_matches_pairwise_counting_on_random_data_with_ties():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, 200) / 5.0  # few distinct values: many ties
    positives = rng.random(200) < 0.3
    pos, neg = scores[positives], scores[~positives]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert auroc(scores, positives) == pytest.approx(pairs / (pos.size * neg.size))


# --- uncertainty_auroc: which cases are bad ------------------------------------------------------------------

def test_missing_pipeline_aop_counts_as_bad_and_missing_reference_is_left_out():
    cases = [
        {"aop_ref": 120.0, "aop_pipeline": 121.0, "uncertainty": 0.1},   # good
        {"aop_ref": 120.0, "aop_pipeline": 135.0, "uncertainty": 0.7},   # bad: 15 deg off
        {"aop_ref": 120.0, "aop_pipeline": None, "uncertainty": 0.9},    # bad: no AoP
        {"aop_ref": 110.0, "aop_pipeline": 120.0, "uncertainty": 0.2},   # good: exactly 10 deg is not above 10
        {"aop_ref": None, "aop_pipeline": 120.0, "uncertainty": 0.95},   # cannot be judged
    ]
    assert uncertainty_auroc(cases) == {"threshold_deg": 10, "auroc": 1.0, "n_bad": 2, "n": 4}


def test_a_head_frame_is_bad_when_its_hc_is_over_5_mm_off_or_missing():
    cases = [
        {"hc_ref_mm": 300.0, "hc_pipeline_mm": 303.0, "uncertainty": 0.30},  # good
        {"hc_ref_mm": 300.0, "hc_pipeline_mm": 294.0, "uncertainty": 0.45},  # bad: 6 mm off
        {"hc_ref_mm": 65.0, "hc_pipeline_mm": None, "uncertainty": 0.31},    # bad: withheld, yet little uncertainty
        {"hc_ref_mm": 65.0, "hc_pipeline_mm": 70.0, "uncertainty": 0.40},    # good: exactly 5 mm is not above 5
        {"hc_ref_mm": None, "hc_pipeline_mm": 200.0, "uncertainty": 0.99},   # cannot be judged
    ]
    # bad (0.45, 0.31) against good (0.30, 0.40): 3 of the 4 pairs ranked right
    assert hc_uncertainty_auroc(cases) == {"threshold_mm": 5, "auroc": 0.75, "n_bad": 2, "n": 4}


def test_uncertainty_auroc_is_null_with_no_bad_case():
    cases = [{"aop_ref": 120.0, "aop_pipeline": 121.0, "uncertainty": u} for u in (0.1, 0.5)]
    assert uncertainty_auroc(cases) == {"threshold_deg": 10, "auroc": None, "n_bad": 0, "n": 2}


# --- error_by_certainty: the error over the frames the uncertainty trusts most ----------------------------------

def _aop_case(error, uncertainty, reference=120.0):
    return {"aop_ref": reference, "aop_pipeline": None if error is None else reference + error,
            "uncertainty": uncertainty}


def test_error_by_certainty_keeps_the_most_certain_frames_and_their_ties():
    cases = [_aop_case(1.0, 0.05), _aop_case(-3.0, 0.10), _aop_case(12.0, 0.10), _aop_case(None, 0.40),
             _aop_case(20.0, 0.90), {"aop_ref": None, "aop_pipeline": 100.0, "uncertainty": 0.01}]
    rows = error_by_certainty(cases, "aop_pipeline", "aop_ref", 10, fractions=(1.0, 0.5, 0.2))
    every, half, fifth = rows
    # all five judged frames (the one without a reference is not judged); four have an AoP
    assert (every["n"], every["missing"], every["max_uncertainty"]) == (5, 1, 0.9)
    assert every["abs_error"]["mean"] == pytest.approx((1 + 3 + 12 + 20) / 4)
    assert every["share_bad"] == pytest.approx(3 / 5)  # 12 and 20 deg off, and the missing one
    # half of five rounds to two, but the third is tied with the second at 0.10: both stay
    assert (half["n"], half["missing"], half["max_uncertainty"]) == (3, 0, 0.1)
    assert half["abs_error"]["mean"] == pytest.approx((1 + 3 + 12) / 3, abs=1e-4) and half["share_bad"] == pytest.approx(1 / 3, abs=1e-4)
    assert (fifth["n"], fifth["abs_error"]["mean"], fifth["share_bad"]) == (1, 1.0, 0.0)


def test_error_by_certainty_of_a_withheld_hc_counts_it_missing_and_bad():
    cases = [{"hc_ref_mm": 300.0, "hc_pipeline_mm": None, "uncertainty": 0.1},
             {"hc_ref_mm": 300.0, "hc_pipeline_mm": 302.0, "uncertainty": 0.3}]
    first, = error_by_certainty(cases, "hc_pipeline_mm", "hc_ref_mm", 5, fractions=(0.5,))
    assert (first["n"], first["missing"], first["share_bad"], first["abs_error"]["mean"]) == (1, 1, 1.0, None)
    assert error_by_certainty([{"hc_ref_mm": None, "hc_pipeline_mm": 1.0, "uncertainty": 0.1}],
                              "hc_pipeline_mm", "hc_ref_mm", 5) == []


# --- the evaluate JSON of a tiny run -------------------------------------------------------------------------

def _psfhs_folder(root, n=6):
    from workstation.synthetic import make_transperineal_cine

    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    cine = make_transperineal_cine(n, shape=(256, 256), seed=5)
    for i in range(n):
        cv2.imwrite(str(root / "images" / f"{i:05d}.png"), np.choose(cine.labels[i], [0, 150, 255]).astype(np.uint8))
        cv2.imwrite(str(root / "labels" / f"{i:05d}_label.png"), cine.labels[i])
    return root


@pytest.fixture
def tiny_model(tmp_path):
    pytest.importorskip("onnx")
    from model_fixtures import build_tiny_onnx, write_manifest
    from workstation.inference.engine import load_model

    return load_model(str(write_manifest(build_tiny_onnx(tmp_path / "tiny.onnx", size=256), size=256)), device="cpu")


def _consistent(result):
    block = result["uncertainty_auroc"]
    assert set(block) == AUROC_KEYS and block["threshold_deg"] == 10
    judged = [c for c in result["cases"] if c["aop_ref"] is not None]
    assert block["n"] == len(judged)
    assert block["n_bad"] == sum(1 for c in judged if c["aop_pipeline"] is None or c["aop_pipeline_abs_error"] > 10)
    assert block["auroc"] is None or 0.0 <= block["auroc"] <= 1.0
    assert all(0.0 <= c["uncertainty"] <= 1.0 for c in result["cases"])
    rows = result["aop_error_by_certainty"]
    assert [r["fraction"] for r in rows] == [1.0, 0.9, 0.75, 0.5, 0.25]
    assert rows[0]["n"] == len(judged) and rows[0]["abs_error"] == result["aop_abs_error_deg_pipeline"]
    assert all(later["n"] <= earlier["n"] and later["max_uncertainty"] <= earlier["max_uncertainty"]
               for earlier, later in zip(rows, rows[1:]))


def test_evaluate_json_of_a_tiny_run_has_the_uncertainty_auroc(tmp_path, tiny_model, capsys):
    folder = _psfhs_folder(tmp_path / "psfhs")
    result = evaluate(tiny_model, "psfhs", folder, split="all")
    assert result["n"] == 6
    _consistent(result)
    # The grey-level model reproduces these labels: no bad frame, so the AUROC is undefined, not a number.
    assert result["uncertainty_auroc"]["n_bad"] == 0 and result["uncertainty_auroc"]["auroc"] is None
    assert result["aop_abs_error_deg_pipeline"]["mean"] < 2.0
    # Through the CLI, without --cases, the block is still there and JSON-clean.
    from workstation.cli import main

    assert main(["evaluate", "--dataset", "psfhs", str(folder), "--split", "all", "--model",
                 str(tmp_path / "tiny.json"), "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["uncertainty_auroc"] == result["uncertainty_auroc"] and "cases" not in out


def test_the_summary_prints_the_uncertainty_auroc(tmp_path, capsys):
    result = {"dataset": "psfhs", "split": "val", "n": 4, "dice": {"ps": 0.9, "fh": 0.95},
              "hd95_px": {"ps": 6.0, "fh": 8.0}, "aop_abs_error_deg": {"mean": 8.4, "median": 6.2, "p95": 21.0},
              "hc_abs_error_mm": {"mean": None, "median": None, "p95": None},
              "uncertainty_auroc": {"threshold_deg": 10, "auroc": 0.62, "n_bad": 1, "n": 4}}
    text = format_summary(result)
    assert "uncertainty AUROC 0.620 for AoP error > 10 deg" in text and "1 bad of 4" in text
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(result))
    assert summary_main([str(path)]) == 0
    assert "uncertainty AUROC 0.620" in capsys.readouterr().out
    result.update(dataset="hc18", uncertainty_auroc=None,
                  hc_abs_error_mm_pipeline={"mean": 2.4, "median": 1.6, "p95": 6.3},
                  hc_uncertainty_auroc={"threshold_mm": 5, "auroc": 0.74, "n_bad": 15, "n": 151})
    text = format_summary(result)
    assert "HC as analyze     mean 2.40" in text and "uncertainty AUROC 0.740 for HC error > 5 mm" in text
    assert "15 bad of 151" in text and "for AoP error" not in text
    result.update(hc_abs_error_mm_pipeline_ungated={"mean": 2.45, "median": 1.63, "p95": 6.26},
                  hc_withheld=5, hc_withheld_no_skull_echo=4, hc_missing_in_pipeline=5)
    text = format_summary(result)
    assert "HC, unchecked     mean 2.45" in text and "(5 missing)" in text
    assert "HC withheld by analyze's checks on 5 frames, 4 of them for no skull echo" in text
    result["hc_error_by_certainty"] = [
        {"fraction": 1.0, "n": 151, "max_uncertainty": 0.455, "abs_error": {"mean": 2.06, "median": 1.59, "p95": 5.52},
         "missing": 5, "share_bad": 0.1126},
        {"fraction": 0.5, "n": 76, "max_uncertainty": 0.314, "abs_error": {"mean": 1.89, "median": 1.46, "p95": 4.6},
         "missing": 0, "share_bad": 0.04}]
    text = format_summary(result)
    assert ("HC as analyze over the frames it is surest of:\n  most certain 50% (76, uncertainty <= 0.314): HC mean "
            "1.89, median 1.46, p95 4.60 mm (0 missing, 4.0% bad)") in text
    assert "most certain 100%" not in text  # the whole set is the 'HC as analyze' line already


def test_uncertainty_auroc_on_real_psfhs(tiny_model):
    folder = shared_path("psfhs")
    _consistent(evaluate(tiny_model, "psfhs", folder, limit=5))
