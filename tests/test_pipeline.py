"""The analysis pipeline over a cine: per-frame JSON contract, chosen frame, cancellation, calibration."""
from __future__ import annotations

import numpy as np
import pytest

from model_fixtures import build_tiny_onnx, write_manifest
from workstation.inference.engine import load_model
from workstation.inference.pipeline import analyze_cine, choose_frame, entropy_map, iter_frame_results
from workstation.io import Cine
from workstation.synthetic import make_transperineal_cine

pytest.importorskip("onnx")

FRAME_KEYS = {"index", "time_s", "frame_class", "aop_deg", "hsd_px", "hsd_mm", "uncertainty", "geometry"}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    return load_model(str(write_manifest(build_tiny_onnx(folder / "tiny.onnx"))), device="cpu", threads=1)


def label_cine(n=5, **kw):
    """A cine whose pixels ARE the synthetic labels scaled to grey, which the tiny model segments exactly."""
    synthetic = make_transperineal_cine(n_frames=n, shape=(240, 320), seed=2)
    grey = np.choose(synthetic.labels, [0, 150, 255]).astype(np.uint8)
    return Cine.from_arrays(grey, frame_time_ms=40.0, source="labels", **kw), synthetic


def test_analyze_json_contract_and_geometry(tiny_model):
    cine, synthetic = label_cine()
    result = analyze_cine(cine, tiny_model)
    assert {"file", "model", "frames", "summary"} <= set(result)
    assert set(result["model"]) >= {"name", "version", "sha256"}
    assert result["model"]["placeholder"] is True
    assert len(result["frames"]) == 5
    for frame in result["frames"]:
        assert FRAME_KEYS <= set(frame)
        assert 0.0 <= frame["uncertainty"] <= 1.0
    times = [f["time_s"] for f in result["frames"]]
    assert times == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16])
    assert {"chosen_frame", "aop_deg", "hsd_mm", "why"} <= set(result["summary"])


def test_pixels_only_without_calibration(tiny_model):
    cine, _ = label_cine(n=2)
    frame = analyze_cine(cine, tiny_model)["frames"][0]
    if frame["hsd_px"] is not None:
        assert frame["hsd_mm"] is None and frame["reasons"].get("hsd_mm")


def test_cancel_stops_between_batches(tiny_model):
    cine, _ = label_cine(n=12)
    seen = []
    for result in iter_frame_results(cine, tiny_model, cancelled=lambda: len(seen) >= 4):
        seen.append(result.index)
    assert 4 <= len(seen) < 12
    partial = analyze_cine(cine, tiny_model, cancelled=lambda: True)
    assert partial["cancelled"] is True and partial["frames"] == []


def test_maps_are_kept_when_asked(tiny_model):
    cine, _ = label_cine(n=1)
    result = next(iter_frame_results(cine, tiny_model, keep_maps=True))
    assert result.labels.shape == cine.frame_shape and result.uncertainty_map.shape == cine.frame_shape


def test_entropy_map_bounds():
    uniform = np.full((3, 4, 4), 1 / 3, np.float32)
    certain = np.zeros((3, 4, 4), np.float32)
    certain[0] = 1
    assert np.allclose(entropy_map(uniform), 1.0, atol=1e-5)
    assert np.allclose(entropy_map(certain), 0.0, atol=1e-5)


def test_choose_frame_says_why_when_nothing_qualifies():
    assert choose_frame([]) == (None, "no frame of 0 gave an AoP or a head ellipse")
