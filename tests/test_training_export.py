"""ONNX export round trip (ONNX Runtime vs torch) and the manifest the engine reads (the shipped models' own check:
test_shipped_models.py, which needs no torch)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from model_fixtures import MANIFEST_REQUIRED_KEYS as REQUIRED_KEYS  # noqa: E402
from workstation.inference.manifest import file_sha256, read_manifest, verify  # noqa: E402
from workstation.training import export as E  # noqa: E402
from workstation.training.model import PSFHMultiTaskNet  # noqa: E402


def _tiny_model():
    torch.manual_seed(0)
    model = PSFHMultiTaskNet(widths=(8, 8, 16, 16, 16))
    # a few steps of BN statistics so the exported graph is not a trivial identity BN
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 1, 256, 256))
    return model.eval()


def test_export_round_trip_and_manifest(tmp_path):
    model = _tiny_model()
    manifest = E.export_model(model, tmp_path, name="tiny-multitask", version="0.0.1", placeholder=True,
                              cases={"PSFHS": (3, 1), "HC18": (2, 0)},
                              training={"command": "test", "seed": 0, "epochs": 0, "minutes": 0, "device": "cpu",
                                        "torch": torch.__version__},
                              metrics={"val": {"dice_ps": 0.0, "dice_fh": 0.0, "aop_mae_deg": None}},
                              measure_latency=False)
    onnx_path = tmp_path / "tiny-multitask.onnx"
    assert REQUIRED_KEYS <= set(manifest)
    written = json.loads((tmp_path / "tiny-multitask.json").read_text())
    assert written == json.loads(json.dumps(manifest))
    assert written["sha256"] == file_sha256(onnx_path) and written["size_bytes"] == onnx_path.stat().st_size
    assert written["input"]["shape"] == [None, 1, 256, 256]
    assert [d["name"] for d in written["training_data"]] == ["PSFHS", "HC18"]
    assert "PLACEHOLDER" in (tmp_path / "tiny-multitask.md").read_text()

    # dynamic batch and numerical agreement with torch
    x = np.random.default_rng(0).uniform(-1, 1, (3, 1, 256, 256)).astype(np.float32)
    got = E.ort_session(onnx_path).run(None, {"image": x})
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(x))]
    for a, b in zip(got, expected):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4

    # the inference engine's reader accepts it as is
    parsed = read_manifest(tmp_path / "tiny-multitask.json")
    verify(parsed)
    assert parsed.placeholder and parsed.outputs.regression_scale == (180.0, 256.0)
    # trained on HC18's filled masks: the head edge it learnt lies half an outline width (2.5 of 800 px) outside
    assert parsed.outputs.head_outline_width_input_px == pytest.approx(2.5 * 256 / 800)


def test_a_model_that_never_saw_hc18_declares_no_outline_width(tmp_path):
    manifest = E.export_model(_tiny_model(), tmp_path, name="psfhs-only", version="0.0.1", placeholder=True,
                              cases={"PSFHS": (3, 1), "HC18": (0, 2)},
                              training={"command": "test", "seed": 0, "epochs": 0, "minutes": 0, "device": "cpu",
                                        "torch": torch.__version__},
                              metrics={"val": {}}, measure_latency=False)
    assert "head_outline_width_input_px" not in manifest["outputs"]["segmentation"]
    assert read_manifest(tmp_path / "psfhs-only.json").outputs.head_outline_width_input_px == 0.0


def test_verify_onnx_catches_a_different_model(tmp_path):
    path = E.export_onnx(_tiny_model(), tmp_path / "a.onnx")
    other = PSFHMultiTaskNet(widths=(8, 8, 16, 16, 16)).eval()
    with pytest.raises(RuntimeError, match="differs"):
        E.verify_onnx(other, path)


def test_a_head_biometry_export_declares_only_its_segmentation(tmp_path):
    manifest = E.export_model(_tiny_model(), tmp_path, name="tiny-head", version="0.0.1", placeholder=True,
                              cases={"PSFHS": (0, 0), "HC18": (4, 2)},
                              training={"command": "test", "seed": 0, "epochs": 0, "minutes": 0, "device": "cpu",
                                        "torch": torch.__version__},
                              metrics={"val": {"dice_fh_hc18": 0.5}}, measure_latency=False, task="head")
    assert manifest["role"] == "head_biometry" and set(manifest["outputs"]) == {"segmentation"}
    assert manifest["outputs"]["segmentation"]["head_outline_width_input_px"] == pytest.approx(0.8)
    assert manifest["intended_use"].startswith("Head-biometry specialist")
    parsed = read_manifest(tmp_path / "tiny-head.json")
    assert parsed.outputs.plane is None and parsed.outputs.regression is None


def test_a_run_stopped_before_its_export_can_still_be_exported_and_says_so(tmp_path):
    run = tmp_path / "runs" / "m"
    run.mkdir(parents=True)
    records = [{"t_s": 20.0, "event": "data", "cases": {"PSFHS": [10, 4], "HC18": [6, 2]}, "device": "cpu"},
               {"t_s": 200.0, "event": "epoch", "epoch": 0}, {"t_s": 400.0, "event": "epoch", "epoch": 1}]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    checkpoint = {"epoch": 1, "metrics": {"dice_ps": 0.5, "dice_fh": 0.7}}
    with pytest.raises(SystemExit, match="give --name and --version"):
        E.info_for_stopped_run(run / "best.pt", checkpoint, name=None, version=None, command=None)
    info = E.info_for_stopped_run(run / "best.pt", checkpoint, name="m", version="1.0.0",
                                  command="python -m workstation.training.train --seed 3 --minutes 125")
    assert info["placeholder"] is False and info["cases"]["PSFHS"] == (10, 4)
    training = info["training"]
    assert training["seed"] == "3" and training["minutes"] == "125" and training["epochs"] == 2
    assert "stopped after epoch 1" in training["stopped_early"]
    assert info["metrics"]["val"]["dice_fh"] == 0.7


def test_a_shipped_style_onnx_becomes_a_trainable_network_that_starts_where_the_file_is(tmp_path):
    torch.manual_seed(1)
    model = PSFHMultiTaskNet()
    model.train()
    with torch.no_grad():  # BatchNorm statistics far from the identity, so folding them changes the weights
        model(torch.randn(4, 1, 256, 256) * 2.0 + 0.5)
    model.eval()
    onnx_path = E.export_onnx(model, tmp_path / "full.onnx")
    rng = np.random.default_rng(0)
    calibration = torch.from_numpy(rng.uniform(-1, 1, (3, 1, 256, 256)).astype(np.float32))
    recovered = E.model_from_onnx(onnx_path, calibration=calibration)

    x = rng.uniform(-1, 1, (2, 1, 256, 256)).astype(np.float32)
    from_file = E.ort_session(onnx_path).run(None, {"image": x})
    with torch.no_grad():
        from_recovered = [t.numpy() for t in recovered.eval()(torch.from_numpy(x))]
        original = [t.numpy() for t in model(torch.from_numpy(x))]
    for a, b, c in zip(from_file, from_recovered, original):
        assert np.abs(a - b).max() < 1e-4 and np.abs(b - c).max() < 1e-4
    # its BatchNorms are real again: trainable, and a train-mode pass over the calibration batch normalises it
    # as the file does, so a fine-tune starts from the exported model rather than from a disturbed one
    norms = [m for m in recovered.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.weight.requires_grad for m in norms)
    assert not all(torch.allclose(m.running_var, torch.ones_like(m.running_var)) for m in norms)
    with torch.no_grad():
        in_eval = [t.numpy() for t in recovered.eval()(calibration)]
        in_train = [t.numpy() for t in recovered.train()(calibration)]
    for index in (0, 2):  # segmentation and regression; the plane head has dropout in train mode
        assert np.abs(in_eval[index] - in_train[index]).max() < 1e-3


def test_an_onnx_of_other_widths_comes_back_at_its_widths(tmp_path):
    model = _tiny_model()
    onnx_path = E.export_onnx(model, tmp_path / "tiny.onnx")
    recovered = E.model_from_onnx(onnx_path).eval()
    assert recovered.widths == (8, 8, 16, 16, 16)
    x = torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, (1, 1, 256, 256)).astype(np.float32))
    with torch.no_grad():
        for a, b in zip(recovered(x), model(x)):
            assert torch.allclose(a, b, atol=1e-4)


def test_an_onnx_of_another_architecture_is_refused_clearly(tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU()).eval()
    onnx_path = tmp_path / "other.onnx"
    torch.onnx.export(other, torch.zeros(1, 1, 32, 32), str(onnx_path), input_names=["image"], dynamo=False)
    with pytest.raises(ValueError, match="not a PSFHMultiTaskNet export"):
        E.model_from_onnx(onnx_path)


def test_an_int8_copy_is_calibrated_on_training_frames_and_loads_like_the_float_model(tmp_path):
    pytest.importorskip("onnxruntime.quantization")
    from test_training_data import _write_fake_dataset
    from workstation.inference.engine import load_model
    from workstation.training import quantize as Q

    _write_fake_dataset(tmp_path / "data")
    torch.manual_seed(0)
    E.export_model(PSFHMultiTaskNet().eval(), tmp_path / "float", name="full", version="0.0.1", placeholder=True,
                   cases={"PSFHS": (3, 0), "HC18": (2, 0)},
                   training={"command": "test", "seed": 0, "epochs": 0, "minutes": 0, "device": "cpu",
                             "torch": torch.__version__}, metrics={"val": {}}, measure_latency=False)
    written = Q.quantize(tmp_path / "float" / "full.json", tmp_path / "data", tmp_path / "int8")

    manifest = read_manifest(written)
    verify(manifest)  # the hash is the int8 file's own
    assert manifest.name == "full-int8" and manifest.file.name == "full-int8.onnx"
    import onnx
    ops = {node.op_type for node in onnx.load(str(manifest.file)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert manifest.file.stat().st_size < (tmp_path / "float" / "full.onnx").stat().st_size / 2
    assert "calibration" in json.loads(written.read_text())["quantization"]

    frame = np.random.default_rng(0).integers(0, 255, (240, 320)).astype(np.uint8)
    quantized = load_model(str(written), threads=1).predict([frame])[0]
    floating = load_model(str(tmp_path / "float" / "full.json"), threads=1).predict([frame])[0]
    assert quantized.probs.shape == floating.probs.shape
    assert floating.probs.std() > 0.01  # the float model's output is not flat, so agreeing with it says something
    assert np.abs(quantized.probs - floating.probs).mean() < 0.05
    assert quantized.regression["aop_deg"] == pytest.approx(floating.regression["aop_deg"], abs=10.0)
