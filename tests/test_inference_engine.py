"""The ONNX engine: manifests, hash verification, providers, predictions mapped back to the frame."""
from __future__ import annotations

import json

import numpy as np
import pytest

from model_fixtures import build_tiny_onnx, write_manifest
from workstation.errors import ModelError
from workstation.inference.engine import find_manifest, labels_from_scores, load_model, select_providers
from workstation.inference.manifest import read_manifest
from workstation.inference.pipeline import analyze_prediction

pytest.importorskip("onnx")


@pytest.fixture
def tiny_model_path(tmp_path):
    onnx_path = build_tiny_onnx(tmp_path / "tiny.onnx")
    return write_manifest(onnx_path)


def test_prediction_is_at_frame_resolution_and_sums_to_one(tiny_model_path):
    model = load_model(str(tiny_model_path), device="cpu", threads=1)
    frame = np.zeros((90, 160), np.uint8)
    frame[20:60, 100:150] = 250  # bright -> head
    prediction = model.predict([frame])[0]
    assert prediction.probs.shape == (3, 90, 160)
    assert np.allclose(prediction.probs.sum(0), 1.0, atol=1e-4)
    labels = prediction.probs.argmax(0)
    assert (labels[30:50, 110:140] == 2).all()
    assert (labels[70:, :50] == 0).all()
    assert prediction.plane_probs.shape == (4,)
    assert set(prediction.regression) == {"aop_deg", "hsd_px"}


def test_tta_reports_disagreement_and_rgb_frames_work(tiny_model_path):
    model = load_model(str(tiny_model_path), device="cpu", threads=1)
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[10:30, 5:20] = 255
    prediction = model.predict([frame], tta=True)[0]
    # a pixel-wise model is mirror-equivariant: both passes agree exactly
    assert prediction.flip_disagreement == pytest.approx(0.0, abs=1e-6)
    assert model.predict([frame])[0].tta_labels is None


def test_tta_rotated_passes_are_turned_back_onto_the_plain_pass(tiny_model_path):
    model = load_model(str(tiny_model_path), device="cpu", threads=1)
    frame = np.zeros((64, 64), np.uint8)
    frame[20:44, 12:30] = 250  # head
    frame[26:38, 40:52] = 150  # pubic symphysis
    predictions = model.predict([frame, np.zeros((64, 64), np.uint8)], tta=True)
    plain, mirrored, turned_left, turned_right = predictions[0].tta_labels
    assert plain.shape == (64, 64) and len(predictions[1].tta_labels) == 4
    assert set(np.unique(plain)) == {0, 1, 2}
    assert (mirrored == plain).all()
    def head_centre(labels):
        ys, xs = np.nonzero(labels == 2)
        return np.array([ys.mean(), xs.mean()])

    for turned in (turned_left, turned_right):
        # a pixel-wise model is rotation-equivariant too: turned back, each pass lies on the plain one, apart from
        # edges that resampling moves by a pixel
        assert (turned != plain).mean() < 0.04
        assert np.abs(head_centre(turned) - head_centre(plain)).max() < 0.5
    # and they were really turned: left turned, the head would sit about 2 px away
    import cv2
    unturned = cv2.warpAffine(turned_left, cv2.getRotationMatrix2D((32, 32), 8.0, 1.0), (64, 64), flags=cv2.INTER_NEAREST)
    assert np.abs(head_centre(unturned) - head_centre(plain)).max() > 1.5


def test_hash_mismatch_is_refused_with_a_clear_message(tmp_path):
    onnx_path = build_tiny_onnx(tmp_path / "tiny.onnx")
    manifest = write_manifest(onnx_path, sha256="0" * 64)
    with pytest.raises(ModelError, match="refused.*sha256"):
        load_model(str(manifest))


def test_changed_model_file_is_refused(tiny_model_path):
    onnx_path = tiny_model_path.with_suffix(".onnx")
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="file changed or corrupted"):
        load_model(str(tiny_model_path))


def test_missing_model_file_and_manifest(tmp_path, tiny_model_path):
    tiny_model_path.with_suffix(".onnx").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(str(tiny_model_path))
    with pytest.raises(ModelError, match="no model named 'nonexistent-model'"):
        find_manifest("nonexistent-model")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_manifest(tmp_path / "bad.json")


def test_manifest_naming_an_absent_output_is_refused(tmp_path):
    onnx_path = build_tiny_onnx(tmp_path / "tiny.onnx")
    manifest = write_manifest(onnx_path)
    data = json.loads(manifest.read_text())
    data["outputs"]["plane"]["name"] = "no_such_output"
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="lacks the outputs"):
        load_model(str(manifest))


def test_the_head_plane_floor_is_read_from_the_manifest_and_a_bad_one_refused(tmp_path):
    manifest = write_manifest(build_tiny_onnx(tmp_path / "tiny.onnx"))
    assert read_manifest(manifest).min_head_plane_probability is None
    data = json.loads(manifest.read_text())
    data["head_biometry"] = {"min_plane_probability": 0.956}
    manifest.write_text(json.dumps(data))
    assert read_manifest(manifest).min_head_plane_probability == 0.956
    from workstation.paths import shipped_models_dir
    assert read_manifest(shipped_models_dir() / "psfh-multitask.json").min_head_plane_probability == 0.987
    data["head_biometry"]["min_plane_probability"] = 1.5
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="must be a probability"):
        load_model(str(manifest))


def test_wrong_class_map_is_refused(tmp_path):
    onnx_path = build_tiny_onnx(tmp_path / "tiny.onnx")
    manifest = write_manifest(onnx_path, class_map={"0": "background", "1": "fetal_head", "2": "pubic_symphysis"})
    with pytest.raises(ModelError, match="class map"):
        load_model(str(manifest))


def test_the_head_outline_width_is_read_from_the_manifest_and_given_in_frame_pixels(tmp_path):
    onnx_path = build_tiny_onnx(tmp_path / "tiny.onnx")
    plain = load_model(str(write_manifest(onnx_path)), device="cpu", threads=1)
    frame = np.zeros((100, 160), np.uint8)  # letterboxed: 160 frame px across the 64 input px
    assert plain.predict([frame])[0].head_outline_width_px == 0.0  # no drawn outlines learnt: no correction
    manifest = write_manifest(onnx_path, outputs={"segmentation": {"name": "seg_logits",
                                                                   "head_outline_width_input_px": 0.8}})
    learnt = load_model(str(manifest), device="cpu", threads=1)
    assert learnt.manifest.outputs.head_outline_width_input_px == 0.8
    for prediction in learnt.predict([frame, frame], tta=True):
        assert prediction.head_outline_width_px == pytest.approx(0.8 * 160 / 64)
    for bad in (-1.0, 20.0):
        manifest = write_manifest(onnx_path, outputs={"segmentation": {"name": "seg_logits",
                                                                       "head_outline_width_input_px": bad}})
        with pytest.raises(ModelError, match="head_outline_width_input_px must be between 0 and"):
            read_manifest(manifest)


def test_laborview_contract_three_channels_stretched(tmp_path):
    onnx_path = build_tiny_onnx(tmp_path / "lv.onnx", channels=3, size=64)
    manifest = write_manifest(onnx_path, contract="laborview", channels=3, size=64, name="laborview-test")
    data = json.loads(manifest.read_text())
    data["input"] = {"name": "image", "shape": [1, 3, 64, 64]}  # LaborView manifests say only this
    manifest.write_text(json.dumps(data))
    model = load_model(str(manifest), device="cpu")
    assert model.manifest.input_spec.channels == 3 and model.manifest.input_spec.resize == "stretch"
    prediction = model.predict([np.full((40, 100), 255, np.uint8)])[0]
    assert prediction.probs.shape == (3, 40, 100)


def test_device_choice():
    assert select_providers("cpu") == ["CPUExecutionProvider"]
    assert select_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(ModelError, match="unknown device"):
        select_providers("tpu")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ModelError, match="no GPU execution provider"):
            select_providers("gpu")


# --------------------------------------------------------------------------- head-biometry specialist

# The main tiny model classes a bright frame (positive mean PS logit) as not_transperineal and a dark one as
# standard_plane; the specialist calls every pixel fetal head, so its outline is easy to tell from the main one's.
_BRIGHT_IS_AXIAL = [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def _main_with_specialist(tmp_path, plane="not_transperineal", specialist_name="tiny-head"):
    main = write_manifest(build_tiny_onnx(tmp_path / "tiny.onnx", plane_weights=_BRIGHT_IS_AXIAL),
                          head_biometry={"model": specialist_name, "plane": plane})
    head = build_tiny_onnx(tmp_path / "tiny-head.onnx", seg_bias=(0.0, -50.0, 50.0))
    write_manifest(head, name="tiny-head", role="head_biometry",
                   outputs={"segmentation": {"name": "seg_logits", "head_outline_width_input_px": 0.8}})
    return main


def test_head_specialist_outlines_the_frames_classed_as_axial_head_planes(tmp_path):
    model = load_model(str(_main_with_specialist(tmp_path)), device="cpu", threads=1)
    assert model.head_specialist is not None and model.describe()["head_biometry_model"]["name"] == "tiny-head"
    axial = np.full((64, 80), 240, np.uint8)  # bright: the main model classes it not_transperineal
    transperineal = np.zeros((64, 80), np.uint8)
    transperineal[20:40, 30:60] = 250
    for tta in (False, True):
        head_frame, tp_frame = model.predict([axial, transperineal], tta=tta)
        classes = model.manifest.outputs.plane_classes
        assert classes[int(np.argmax(head_frame.plane_probs))] == "not_transperineal"
        assert classes[int(np.argmax(tp_frame.plane_probs))] == "standard_plane"
        assert head_frame.segmented_by == "tiny-head 0.0.1" and tp_frame.segmented_by is None
        # the outline correction of the model that drew the head: the specialist's, not the main model's (none)
        assert head_frame.head_outline_width_px == pytest.approx(0.8 * 80 / 64) and tp_frame.head_outline_width_px == 0
        assert (head_frame.probs.argmax(0) == 2).all()  # the specialist's outline, not the main model's
        assert (tp_frame.probs.argmax(0)[:10, :10] == 0).all()  # the main model's own
        assert head_frame.regression == pytest.approx(model.predict([axial], tta=tta)[0].regression)
        assert (head_frame.tta_labels is not None) == tta
    shown = analyze_prediction(head_frame, model, None, 0, 0.0).to_json()  # what analyze and the viewer carry
    assert shown["frame_class"] == "not_transperineal" and shown["segmented_by"] == "tiny-head 0.0.1"
    assert analyze_prediction(tp_frame, model, None, 1, 0.0).to_json()["segmented_by"] is None


def test_head_specialist_problems_are_refused_with_clear_messages(tmp_path):
    with pytest.raises(ModelError, match="no model named 'absent-head'"):
        load_model(str(_main_with_specialist(tmp_path, specialist_name="absent-head")), device="cpu", threads=1)
    with pytest.raises(ModelError, match="does not grade"):
        load_model(str(_main_with_specialist(tmp_path, plane="axial")), device="cpu", threads=1)
    main = _main_with_specialist(tmp_path)
    (tmp_path / "tiny-head.onnx").write_bytes((tmp_path / "tiny-head.onnx").read_bytes() + b"x")
    with pytest.raises(ModelError, match="tiny-head refused"):
        load_model(str(main), device="cpu", threads=1)


def test_head_biometry_models_are_not_offered_as_main_models(tmp_path, monkeypatch):
    from workstation.inference import engine

    _main_with_specialist(tmp_path)
    monkeypatch.setattr(engine, "available_manifests", lambda: sorted(tmp_path.glob("*.json")))
    assert engine.main_model_names() == sorted({engine.DEFAULT_MODEL, "tiny"})
    assert engine.find_manifest("tiny-head") == tmp_path / "tiny-head.json"  # still found by name when named


def test_labels_from_scores_is_argmax_over_classes_ties_to_the_lower_class():
    rng = np.random.default_rng(0)
    for trial in range(100):
        # Small integer scores make ties common; the label must be the lowest tied class, as argmax gives.
        scores = (rng.integers(0, 3, (3, 12, 17)) if trial % 2 else rng.normal(size=(4, 12, 17))).astype(np.float32)
        labels = labels_from_scores(scores)
        assert labels.dtype == np.uint8 and np.array_equal(labels, scores.argmax(0)), trial
