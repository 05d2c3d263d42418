"""Fit a model's per-frame uncertainty to its AoP errors on the training split, and write it into its manifest.

    python -m workstation.training.calibrate_uncertainty --model psfh-multitask --data ../shared/data

Runs the pipeline exactly as ``workstation analyze`` does (test-time passes) on every PSFHS case of the training
split, scores each frame bad when its AoP is more than 10 degrees from the AoP of the expert labels (or
when it gives none), and fits a logistic regression of "bad" on the pipeline's uncertainty signals
(``workstation.inference.uncertainty``). The validation split is used only to report the AUROC of the
result beside the old blend's; nothing is chosen on it. The fit goes into the manifest's
``uncertainty_calibration``; the ONNX file, and so its sha256, are untouched.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from workstation.evaluate import BAD_AOP_THRESHOLD_DEG, auroc, dataset_images, read_gray
from workstation.inference.engine import load_model
from workstation.inference.pipeline import analyze_prediction
from workstation.inference.uncertainty import KNOWN_SIGNALS, UncertaintyCalibration, fit_logistic
from workstation.measure import load_labelmap, measure_labelmap
from workstation.training.export import update_manifest

FEATURES = KNOWN_SIGNALS  # every signal the pipeline reports; the fit weighs them
FILL = (1.0,) * len(FEATURES)  # a missing signal (no PS, no AoP) counts as the least trusted value


def collect(model, folder: Path, split: str, limit: int | None = None, progress=None) -> list[dict]:
    """Per case of ``split``: the pipeline's uncertainty signals, its blended uncertainty and whether it is bad."""
    rows = []
    cases = dataset_images(folder, split)[:limit]
    for n, image_path in enumerate(cases, 1):
        reference = measure_labelmap(load_labelmap(folder / "labels" / f"{image_path.stem}_label.png")).aop_deg
        if reference is None:
            continue
        frame = analyze_prediction(model.predict([read_gray(image_path)], tta=True)[0], model, None, 0, 0.0)
        aop = frame.measurements.get("aop_deg")
        rows.append({"id": image_path.stem, "parts": frame.uncertainty_parts, "frame_class": frame.frame_class,
                     "uncertainty": frame.uncertainty, "method": frame.uncertainty_method,
                     "bad": aop is None or abs(aop - reference) > BAD_AOP_THRESHOLD_DEG})
        if progress:
            progress(n, len(cases))
    return rows


def feature_matrix(rows: list[dict]) -> np.ndarray:
    return np.array([[fill if row["parts"].get(f) is None else row["parts"][f] for f, fill in zip(FEATURES, FILL)]
                     for row in rows], dtype=np.float64)


def fit(rows: list[dict], l2: float = 0.01) -> UncertaintyCalibration:
    mean, std, weights, bias = fit_logistic(feature_matrix(rows), np.array([r["bad"] for r in rows]), l2=l2)
    return UncertaintyCalibration(features=FEATURES, mean=tuple(map(float, mean)), std=tuple(map(float, std)),
                                  weights=tuple(map(float, weights)), bias=float(bias), fill=FILL,
                                  threshold_deg=BAD_AOP_THRESHOLD_DEG)


def score(calibration: UncertaintyCalibration, rows: list[dict]) -> dict:
    """AUROC of the calibrated probability and of the rows' own (blended) uncertainty, for telling bad frames."""
    bad = [r["bad"] for r in rows]
    calibrated = [calibration.probability(r["parts"]) if calibration.applies_to(r["frame_class"]) else r["uncertainty"]
                  for r in rows]
    blend = [r["uncertainty"] for r in rows]
    value, before = auroc(calibrated, bad), auroc(blend, bad)
    return {"n": len(rows), "n_bad": int(sum(bad)), "auroc": None if value is None else round(value, 4),
            "auroc_blend": None if before is None else round(before, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workstation.training.calibrate_uncertainty", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model name or manifest path (default: the shipped model)")
    parser.add_argument("--data", default="../shared/data", help="folder holding psfhs/")
    parser.add_argument("--limit", type=int, default=None, help="only the first N cases per split (smoke runs)")
    parser.add_argument("--dry-run", action="store_true", help="print the fit, leave the manifest alone")
    args = parser.parse_args(argv)
    folder = Path(args.data) / "psfhs"
    model = load_model(args.model, device="cpu")
    if model.manifest.uncertainty is not None:
        print("note: the manifest already has a calibration; the blend below is what the pipeline gives without it",
              file=sys.stderr)
        model.manifest = replace(model.manifest, uncertainty=None)

    def progress(split):
        return lambda n, total: print(f"\r{split}: {n}/{total}", end="" if n < total else "\n", file=sys.stderr)

    train = collect(model, folder, "train", args.limit, progress("train"))
    val = collect(model, folder, "val", args.limit, progress("val"))
    calibration = fit(train)
    metrics = {"train": score(calibration, train), "val": score(calibration, val)}
    record = calibration.to_json(
        fitted_on=f"PSFHS training split ({len(train)} frames, workstation.splits.split_of); test-time passes as analyze",
        command="python -m workstation.training.calibrate_uncertainty" + (f" --model {args.model}" if args.model else ""),
        auroc=metrics)
    print(json.dumps(record, indent=2))
    print(f"AUROC for AoP error > {BAD_AOP_THRESHOLD_DEG:g} deg: train {metrics['train']['auroc']} "
          f"(blend {metrics['train']['auroc_blend']}), val {metrics['val']['auroc']} "
          f"(blend {metrics['val']['auroc_blend']}; {metrics['val']['n_bad']} bad of {metrics['val']['n']})")
    if not args.dry_run:
        path = model.manifest.manifest_path
        update_manifest(path, "uncertainty_calibration", record)
        print(f"wrote uncertainty_calibration into {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
