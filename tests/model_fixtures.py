"""Tiny ONNX models built in the test, so the engine is tested without the shipped weights."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from workstation.inference.manifest import file_sha256

# What every shipped manifest must say (the list: hash, input contract, classes, data, metrics, licence...).
MANIFEST_REQUIRED_KEYS = {"schema", "name", "version", "placeholder", "file", "sha256", "size_bytes", "input",
                          "class_map", "outputs", "training_data", "split_rule", "training", "metrics", "licence",
                          "created", "intended_use"}


def build_tiny_onnx(path: Path, channels: int = 1, size: int = 64, names=("image", "seg_logits", "plane_logits", "aop_hsd"),
                    seg_bias=(0.0, -0.5, -19.0), plane_weights=None):
    """A 1x1-conv 'segmenter' of grey levels, with a plane head and a regression head.

    ``plane_weights`` (3x4) maps the frame's mean class logits to the plane logits; by default all
    classes tie (the first, standard_plane, wins)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    input_name, seg_name, plane_name, reg_name = names
    weights = np.zeros((3, channels, 1, 1), np.float32)
    # Normalised input x in [-1, 1]: black -> background, mid-grey (x ~ 0.2) -> PS, white -> fetal head.
    weights[1, :, 0, 0] = 10.0 / channels
    weights[2, :, 0, 0] = 30.0 / channels
    bias = np.array(seg_bias, np.float32)
    gemm_plane = np.full((3, 4), 0.1, np.float32) if plane_weights is None else np.asarray(plane_weights, np.float32)
    gemm_reg = np.array([[0.5, 0.2], [0.1, 0.1], [0.2, 0.3]], np.float32)
    nodes = [
        helper.make_node("Conv", [input_name, "w", "b"], [seg_name]),
        helper.make_node("GlobalAveragePool", [seg_name], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wp"], [plane_name]),
        helper.make_node("Gemm", ["flat", "wr"], [reg_name]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", channels, size, size])],
        [helper.make_tensor_value_info(seg_name, TensorProto.FLOAT, ["N", 3, size, size]),
         helper.make_tensor_value_info(plane_name, TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info(reg_name, TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b"),
         numpy_helper.from_array(gemm_plane, "wp"), numpy_helper.from_array(gemm_reg, "wr")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def write_manifest(onnx_path: Path, *, contract: str = "workstation", channels: int = 1, size: int = 64,
                   name: str = "tiny", sha256: str | None = None, **extra) -> Path:
    manifest = {
        "schema": 1, "name": name, "version": "0.0.1", "placeholder": True, "file": onnx_path.name,
        "sha256": sha256 or file_sha256(onnx_path),
        "input": {"name": "image", "shape": [None, channels, size, size], "channels": channels, "resize": "letterbox",
                  "normalisation": {"scale": 255.0, "mean": 0.5, "std": 0.5}},
        "class_map": {"0": "background", "1": "pubic_symphysis", "2": "fetal_head"},
        "outputs": {"segmentation": {"name": "seg_logits"},
                    "plane": {"name": "plane_logits",
                              "classes": ["standard_plane", "one_structure", "not_transperineal", "no_anatomy"]},
                    "regression": {"name": "aop_hsd", "fields": ["aop_deg", "hsd_px"], "scale": [180.0, float(size)],
                                   "hsd_units": "input_px"}},
    }
    if contract != "workstation":
        manifest["contract"] = contract
    manifest.update(extra)
    path = onnx_path.with_suffix(".json")
    path.write_text(json.dumps(manifest))
    return path
