"""Accuracy of the current model on a labelled folder laid out as in ``../shared/data``.

* psfhs: ``images/ID.png`` + ``labels/ID_label.png`` -> Dice and HD95 per class, and the
  AoP absolute error against the AoP computed from the reference labels with the same
  geometry code (``workstation.measure``);
* hc18: ``images/NNN_HC.png``, ``masks/NNN_HC_mask.png`` and the csv of pixel sizes and
  reference HC -> Dice/HD95 of the head and the HC absolute error in mm.

By default only the validation split (:mod:`workstation.splits`) is scored, since the
shipped model was trained on the rest.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from workstation.calibration import Calibration
from workstation.errors import InputError
from workstation.inference.engine import Model
from workstation.measure import HC18_OUTLINE_WIDTH_PX, load_labelmap, measure_labelmap
from workstation.splits import split_of

DATASETS = ("psfhs", "hc18")


def dice(pred: np.ndarray, ref: np.ndarray) -> float | None:
    total = int(pred.sum()) + int(ref.sum())
    return None if total == 0 else 2.0 * int((pred & ref).sum()) / total


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def hd95(pred: np.ndarray, ref: np.ndarray) -> float | None:
    """95th percentile symmetric surface distance in pixels; None when either mask is empty."""
    if not pred.any() or not ref.any():
        return None
    pred_surface, ref_surface = _surface(pred), _surface(ref)
    to_ref = cv2.distanceTransform((~ref_surface).astype(np.uint8), cv2.DIST_L2, 5)
    to_pred = cv2.distanceTransform((~pred_surface).astype(np.uint8), cv2.DIST_L2, 5)
    distances = np.concatenate([to_ref[pred_surface], to_pred[ref_surface]])
    return float(np.percentile(distances, 95))


def _stats(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "median": None, "p95": None}
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": round(float(arr.mean()), 4), "median": round(float(np.median(arr)), 4),
            "p95": round(float(np.percentile(arr, 95)), 4)}


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(float(np.mean(kept)), 4) if kept else None


def _read_gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise InputError(f"cannot read image {path}")
    return image


def _cases(folder: Path, split: str) -> list[Path]:
    images = sorted((folder / "images").glob("*.png"))
    if not images:
        raise InputError(f"no images/*.png under {folder}: not a dataset folder laid out as in ../shared/data")
    return [p for p in images if split == "all" or split_of(p.name) == split]


def evaluate_psfhs(model: Model, folder: Path, split: str = "val", limit: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    cases = _cases(folder, split)[:limit]
    dices = {"ps": [], "fh": []}
    hds = {"ps": [], "fh": []}
    aop_errors, per_case = [], []
    for n, image_path in enumerate(cases, 1):
        label_path = folder / "labels" / f"{image_path.stem}_label.png"
        ref = load_labelmap(label_path)
        prediction = model.predict([_read_gray(image_path)])[0]
        pred = prediction.probs.argmax(0).astype(np.uint8)
        for key, cls in (("ps", 1), ("fh", 2)):
            dices[key].append(dice(pred == cls, ref == cls))
            hds[key].append(hd95(pred == cls, ref == cls))
        ref_aop = measure_labelmap(ref).aop_deg
        pred_aop = measure_labelmap(pred).aop_deg
        error = None if ref_aop is None or pred_aop is None else abs(pred_aop - ref_aop)
        if error is not None:
            aop_errors.append(error)
        per_case.append({"id": image_path.stem, "aop_ref": ref_aop, "aop_pred": pred_aop, "aop_abs_error": error,
                         "regression_aop": (prediction.regression or {}).get("aop_deg")})
        if progress:
            progress(n, len(cases))
    with_ref = [c for c in per_case if c["aop_ref"] is not None]
    return {
        "dataset": "psfhs", "split": split, "n": len(cases),
        "dice": {k: _mean(v) for k, v in dices.items()},
        "hd95_px": {k: _mean(v) for k, v in hds.items()},
        "aop_abs_error_deg": _stats(aop_errors),
        "aop_cases_scored": len(aop_errors),
        "aop_missing_in_prediction": sum(1 for c in with_ref if c["aop_pred"] is None),
        "hc_abs_error_mm": _stats([]),
        "cases": per_case,
    }


def _reference_hc(folder: Path) -> dict[str, tuple[float, float]]:
    tables = sorted(folder.glob("*.csv"))
    if not tables:
        raise InputError(f"no csv of pixel sizes and reference HC in {folder}")
    table = {}
    with open(tables[0], newline="") as handle:
        for row in csv.reader(handle):
            try:
                table[row[0]] = (float(row[1]), float(row[2]))
            except (ValueError, IndexError):
                continue  # the header
    return table


def evaluate_hc18(model: Model, folder: Path, split: str = "val", limit: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    reference = _reference_hc(folder)
    cases = _cases(folder, split)[:limit]
    dices, hds, hc_errors, per_case = [], [], [], []
    for n, image_path in enumerate(cases, 1):
        ref = _read_gray(folder / "masks" / f"{image_path.stem}_mask.png") > 0
        prediction = model.predict([_read_gray(image_path)])[0]
        pred_labels = prediction.probs.argmax(0).astype(np.uint8)
        head = pred_labels == 2
        dices.append(dice(head, ref))
        hds.append(hd95(head, ref))
        pixel_mm, ref_hc = reference.get(image_path.name, (None, None))
        hc = None
        if pixel_mm is not None:
            # Score the head alone: a stray PS blob on an axial plane must not hide the head's HC. The model
            # learnt HC18's filled masks, whose edge runs along the outside of the expert outline: take half
            # the outline's width off, as for the reference masks themselves (workstation.measure.biometry).
            hc = measure_labelmap(np.where(head, 2, 0).astype(np.uint8), Calibration.manual_mm_per_px(pixel_mm),
                                  head_outline_width_px=HC18_OUTLINE_WIDTH_PX).hc_mm
        error = None if hc is None or ref_hc is None else abs(hc - ref_hc)
        if error is not None:
            hc_errors.append(error)
        per_case.append({"id": image_path.stem, "hc_ref_mm": ref_hc, "hc_pred_mm": hc, "hc_abs_error_mm": error})
        if progress:
            progress(n, len(cases))
    return {
        "dataset": "hc18", "split": split, "n": len(cases),
        "dice": {"ps": None, "fh": _mean(dices)},
        "hd95_px": {"ps": None, "fh": _mean(hds)},
        "aop_abs_error_deg": _stats([]),
        "hc_abs_error_mm": _stats(hc_errors),
        "hc_missing_in_prediction": sum(1 for c in per_case if c["hc_pred_mm"] is None),
        "cases": per_case,
    }


def evaluate(model: Model, dataset: str, folder: str | Path, split: str = "val", limit: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict:
    folder = Path(folder)
    if dataset not in DATASETS:
        raise InputError(f"unknown dataset {dataset!r}: choose psfhs or hc18")
    if not folder.is_dir():
        raise InputError(f"dataset folder not found: {folder}")
    run = evaluate_psfhs if dataset == "psfhs" else evaluate_hc18
    result = run(model, folder, split, limit, progress)
    result["model"] = model.describe()
    return result
