"""The calibrated per-frame uncertainty: the logistic fit, the manifest's record of it, and the pipeline using it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_path
from model_fixtures import build_tiny_onnx, write_manifest
from workstation.errors import ModelError
from workstation.evaluate import auroc
from workstation.inference.engine import load_model
from workstation.inference.pipeline import iter_frame_results
from workstation.inference.uncertainty import UncertaintyCalibration, calibration_from_manifest, fit_logistic
from workstation.io import Cine
from workstation.synthetic import make_transperineal_cine

FEATURES = ["boundary_entropy", "flip_disagreement", "regression_gap", "ps_boundary_entropy", "tta_aop_spread",
            "averaged_regression_gap"]


def calibration_record(**changes) -> dict:
    record = {"kind": "logistic", "features": FEATURES, "mean": [0.2, 0.05, 0.3, 0.3, 0.2, 0.3],
              "std": [0.1, 0.05, 0.2, 0.1, 0.15, 0.2], "weights": [0.2, -0.1, 0.5, 0.5, 0.3, 0.2], "bias": -1.3,
              "fill": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], "threshold_deg": 10}
    record.update(changes)
    return record


def test_fit_logistic_learns_which_signal_tells_bad_frames_and_generalises():
    rng = np.random.default_rng(0)

    def sample(n):
        bad = rng.random(n) < 0.25
        informative = rng.normal(0.3, 0.1, n) + 0.25 * bad  # bad frames have a higher value
        noise = rng.normal(0.5, 0.2, n)
        return np.stack([noise, informative], 1), bad

    x, bad = sample(800)
    mean, std, weights, bias = fit_logistic(x, bad)
    assert weights[1] > 1.0 and abs(weights[0]) < 0.3
    x_new, bad_new = sample(400)
    scores = ((x_new - mean) / std) @ weights + bias
    assert auroc(scores, bad_new) > 0.9
    # The mean probability matches the rate of bad frames it was fitted on (it is a probability, not a score).
    p = 1 / (1 + np.exp(-(((x - mean) / std) @ weights + bias)))
    assert abs(p.mean() - bad.mean()) < 0.02


def test_fit_logistic_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="both bad and good"):
        fit_logistic(np.ones((10, 2)), np.zeros(10, bool))
    with pytest.raises(ValueError, match="rows x signals"):
        fit_logistic(np.ones(10), np.zeros(10, bool))


def test_probability_fills_a_missing_signal_with_the_least_trusted_value():
    calibration = calibration_from_manifest({"uncertainty_calibration": calibration_record()}, "m.json")
    parts = {"boundary_entropy": 0.2, "flip_disagreement": 0.05, "regression_gap": 0.3, "ps_boundary_entropy": 0.3,
             "tta_aop_spread": 0.2, "averaged_regression_gap": 0.3}
    at_mean = calibration.probability(parts)
    assert at_mean == pytest.approx(1 / (1 + np.exp(1.3)))
    assert calibration.probability({**parts, "regression_gap": None}) > calibration.probability(
        {**parts, "regression_gap": 0.9}) > at_mean
    assert calibration.applies_to("standard_plane") and not calibration.applies_to("not_transperineal")
    assert calibration_from_manifest({}, "m.json") is None


@pytest.mark.parametrize("change, message", [
    ({"features": FEATURES[:3] + ["pixel_count"]}, "unknown signals"),
    ({"weights": [0.1, 0.2]}, "6 values each"),
    ({"std": [0.1, 0.0, 0.2, 0.1, 0.1, 0.1]}, "std must be positive"),
    ({"kind": "isotonic"}, "not 'logistic'"),
    ({"bias": None}, "uncertainty_calibration"),
])
def test_a_broken_calibration_is_refused_with_its_reason(tmp_path, change, message):
    manifest = write_manifest(build_tiny_onnx(tmp_path / "tiny.onnx"), uncertainty_calibration=calibration_record(**change))
    with pytest.raises(ModelError, match=message):
        load_model(str(manifest), device="cpu", threads=1)


def label_cine():
    synthetic = make_transperineal_cine(n_frames=4, shape=(240, 320), seed=2)
    return Cine.from_arrays(np.choose(synthetic.labels, [0, 150, 255]).astype(np.uint8), frame_time_ms=40.0,
                            source="labels")


def test_pipeline_reports_the_calibrated_probability_where_it_applies(tmp_path):
    onnx = build_tiny_onnx(tmp_path / "tiny.onnx")
    plain = load_model(str(write_manifest(onnx)), device="cpu", threads=1)
    calibrated = load_model(str(write_manifest(onnx, uncertainty_calibration=calibration_record())), device="cpu",
                            threads=1)
    cine = label_cine()
    before = list(iter_frame_results(cine, plain))
    after = list(iter_frame_results(cine, calibrated))
    assert {r.uncertainty_method for r in before} == {"blend"}
    for old, new in zip(before, after):
        assert new.uncertainty_parts == old.uncertainty_parts  # the same signals, reported as before
        assert new.uncertainty_parts["ps_boundary_entropy"] is not None
        if new.measurements["aop_deg"] is not None:
            # the tiny model is pixel-wise, so the test-time passes agree on the AoP but for resampling, which moves
            # the edges of a PS a few pixels long at its 64-px input by a few degrees
            assert 0.0 < new.uncertainty_parts["tta_aop_spread"] < 0.5
        if new.frame_class in ("standard_plane", "one_structure"):
            assert new.uncertainty_method == "calibrated"
            # (the reported parts are rounded to 4 decimals)
            assert new.uncertainty == pytest.approx(calibrated.manifest.uncertainty.probability(new.uncertainty_parts),
                                                    abs=1e-3)
        else:
            assert new.uncertainty_method == "blend" and new.uncertainty == pytest.approx(old.uncertainty)
        assert new.to_json()["uncertainty_method"] == new.uncertainty_method
    assert any(r.uncertainty_method == "calibrated" for r in after)
    # Without the test-time passes the calibration (fitted with them) does not apply.
    assert {r.uncertainty_method for r in iter_frame_results(cine, calibrated, tta=False)} == {"blend"}


def test_tta_aop_spread_is_the_spread_of_the_passes_aops_capped():
    from workstation.inference.pipeline import _tta_aop_spread
    from workstation.measure import aop_of_labelmap

    synthetic = make_transperineal_cine(n_frames=24, shape=(240, 320), seed=2)
    maps = [synthetic.labels[i].astype(np.uint8) for i in (0, 2, 4, 8)]
    aops = [aop_of_labelmap(m) for m in maps]
    assert None not in aops and 5 < max(aops) - min(aops) < 15  # the head descends, so the AoP opens

    def spread(label_maps):
        return _tta_aop_spread(None if label_maps is None else [aop_of_labelmap(m) for m in label_maps])

    assert spread([maps[0]] * 4) == pytest.approx(0.0)
    assert spread(maps) == pytest.approx(min(1.0, float(np.std(aops)) / 10.0))
    empty = np.zeros_like(maps[0])
    assert spread([maps[0], maps[3], empty, empty]) == pytest.approx(abs(aops[0] - aops[3]) / 2 / 10.0)
    assert spread([maps[0], empty, empty, empty]) is None  # one AoP has no spread: the calibration's fill applies
    assert spread(None) is None
    far = synthetic.labels[23].astype(np.uint8)  # 26 deg more open: a std over 10 deg is capped at 1
    assert spread([maps[0], far, maps[0], far]) == 1.0


def test_the_shipped_model_carries_a_calibration_fitted_on_the_training_split():
    model = load_model(device="cpu", threads=1)
    calibration = model.manifest.uncertainty
    assert isinstance(calibration, UncertaintyCalibration)
    record = model.manifest.raw["uncertainty_calibration"]
    assert "training split" in record["fitted_on"]
    assert "tta_aop_spread" in calibration.features
    assert record["auroc"]["val"]["auroc"] > record["auroc"]["val"]["auroc_blend"]


def test_calibration_command_fits_on_real_labels_and_leaves_the_manifest_alone_on_dry_run(tmp_path, capsys):
    data = shared_path("psfhs").parent
    from workstation.training.calibrate_uncertainty import main

    shipped = load_model(device="cpu", threads=1).manifest.manifest_path
    before = shipped.read_bytes()
    assert main(["--data", str(data), "--limit", "60", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert shipped.read_bytes() == before
    assert "AUROC for AoP error > 10 deg: train" in out
    record = json.loads(out[:out.rindex("}") + 1])
    assert record["features"] == FEATURES and len(record["weights"]) == len(FEATURES)
    assert record["auroc"]["train"]["n"] > 30


def test_the_uncertainty_words_are_one_rule_for_every_view():
    from workstation.inference.uncertainty import describe_uncertainty, uncertainty_level

    assert [uncertainty_level(u) for u in (0.0, 0.29, 0.3, 0.59, 0.6, 1.0)] == [
        "low", "low", "moderate", "moderate", "HIGH", "HIGH"]
    assert describe_uncertainty(0.564) == "0.56 (moderate)" and describe_uncertainty(None) == "-"
