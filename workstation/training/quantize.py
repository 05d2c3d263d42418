"""An int8 copy of an exported model, for comparing its accuracy and speed with the float32 one.

    python -m workstation.training.quantize --model models/psfh-multitask.json --data ../shared/data --out out/int8

Static quantization with ONNX Runtime (QDQ format: int8 weights per output channel, uint8 activations), the
activation ranges calibrated on PSFHS and HC18 frames of the training split only, as the engine prepares them.
It writes ``<name>-int8.onnx`` and a manifest beside it (the float32 manifest with the new file, size and
sha256, named ``<name>-int8``), so ``workstation evaluate --model out/int8/<name>-int8.json`` and
``workstation bench`` score it as they score the shipped model. Nothing in ``models/`` is touched.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from workstation.inference.manifest import file_sha256, read_manifest
from workstation.training import data as D

CALIBRATION_FRAMES = 96  # per dataset; enough for stable min/max ranges, a minute of calibration on 2 cores


def calibration_inputs(data_root: Path, frames: int = CALIBRATION_FRAMES, seed: int = 0) -> np.ndarray:
    """(N, 1, 256, 256) float32 model inputs from training-split frames of both datasets, chosen with ``seed``."""
    rng = np.random.default_rng(seed)
    chosen = []
    for cases in (D.psfhs_cases(data_root, "train"), D.hc18_cases(data_root, "train")):
        if not cases:
            continue
        for k in rng.choice(len(cases), size=min(frames, len(cases)), replace=False):
            image, _ = D.load_case(cases[int(k)])
            chosen.append(D.normalise(image.astype(np.float32) / 255.0))
    if not chosen:
        raise SystemExit(f"no training frames under {data_root} (is --data right?)")
    return np.stack(chosen).astype(np.float32)


def quantize(manifest_path: Path, data_root: Path, out_dir: Path) -> Path:
    """Write the int8 model and its manifest into ``out_dir``; returns the manifest's path."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = read_manifest(manifest_path)
    inputs = calibration_inputs(data_root)

    class Frames(CalibrationDataReader):
        def __init__(self):
            self._batches = (inputs[i:i + 1] for i in range(len(inputs)))

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {source.input_name: batch}

    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{source.name}-int8"
    target = out_dir / f"{name}.onnx"
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source.file), str(prepared))  # shape inference and graph clean-up, as ORT advises
        quantize_static(str(prepared), str(target), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    raw.update({"name": name, "file": target.name, "sha256": file_sha256(target),
                "size_bytes": target.stat().st_size,
                "quantization": {"from": f"{source.name} {source.version} ({source.sha256[:12]})",
                                 "method": "ONNX Runtime static QDQ: int8 weights per channel, uint8 activations",
                                 "calibration": f"{len(inputs)} training-split frames (PSFHS and HC18)"}})
    raw.pop("head_biometry", None)  # the int8 copy stands alone; its scores are the main model's alone
    target_manifest = out_dir / f"{name}.json"
    target_manifest.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    return target_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workstation.training.quantize",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/psfh-multitask.json"), help="the manifest to copy")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with psfhs/ and hc18/")
    parser.add_argument("--out", type=Path, default=Path("out/int8"))
    args = parser.parse_args(argv)
    written = quantize(args.model, args.data, args.out)
    print(json.dumps({"manifest": str(written), "size_bytes": json.loads(written.read_text())["size_bytes"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
