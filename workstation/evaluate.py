"""Accuracy of the current model on a labelled folder laid out as in ``../shared/data``.

* psfhs: ``images/ID.png`` + ``labels/ID_label.png`` -> Dice and HD95 per class, and the
  AoP absolute error against the AoP computed from the reference labels with the same
  geometry code (``workstation.measure``); and how well the per-frame uncertainty that
  ``workstation analyze`` reports detects frames whose AoP is off by more than 10 degrees
  (``uncertainty_auroc``, see :func:`uncertainty_auroc`);
* hc18: ``images/NNN_HC.png``, ``masks/NNN_HC_mask.png`` and the csv of pixel sizes and
  reference HC -> Dice/HD95 of the head and the HC absolute error in mm; and how well the same
  uncertainty detects frames whose HC is off by more than 5 mm (``hc_uncertainty_auroc``).

For both, ``*_by_certainty`` gives the error over the most certain part of the frames (all, 90%, 75%, 50%, 25%
by the same uncertainty): what the uncertainty buys when a person, or ``choose_frame`` in a cine, keeps the
frames it trusts most (see :func:`error_by_certainty`).

The main figures score one plain pass of the model. The ``*_pipeline`` keys score what
``workstation analyze`` shows a user: the masks with the mirrored pass averaged in, its plane
policy, its AoP constructed on the segmentation the direct estimate chose
(``aop_constructed_on``), and (hc18) its HC, measured as the plain pass's with the half outline width
that the model learnt from HC18's masks taken off.

By default only the validation split (:mod:`workstation.splits`) is scored, since the
shipped model was trained on the rest.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from workstation.calibration import Calibration
from workstation.errors import InputError
from workstation.inference.engine import Model, labels_from_scores
from workstation.inference.manifest import model_label
from workstation.inference.pipeline import analyze_prediction
from workstation.inference.planes import BIOMETRY_PLANE
from workstation.measure import Geometry, load_labelmap, measure_labelmap, recompute
from workstation.splits import split_of

DATASETS = ("psfhs", "hc18")
BAD_AOP_THRESHOLD_DEG = 10  # the definition of a bad frame: AoP error above 10 degrees
BAD_HC_THRESHOLD_MM = 5  # a bad head-biometry frame: HC off by more than 5 mm (1.5% of a term head, 8% of a 65-mm one)
PIPELINE_TTA = True  # as `workstation analyze` runs by default (its --no-tta turns it off)


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


def mean_of_known(values, digits: int = 4) -> float | None:
    """The mean of the values that are not None (a case without the structure has no score), rounded; None when
    there are none."""
    kept = [v for v in values if v is not None]
    return round(float(np.mean(kept)), digits) if kept else None


def auroc(scores, positives) -> float | None:
    """Area under the ROC curve of ``scores`` for telling ``positives`` from the rest.

    Rank-based (Mann-Whitney U): the probability that a positive scores higher than a
    negative, a tie counting one half (tied scores get their average rank). None when
    there are no positives or no negatives.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = np.asarray(positives, dtype=bool).ravel()
    if scores.shape != positives.shape:
        raise ValueError(f"{scores.size} scores for {positives.size} labels")
    if np.isnan(scores).any():
        raise ValueError("a score is NaN")
    n_pos = int(positives.sum())
    n_neg = positives.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1  # 1-based rank of the first of each run of equal scores
    ranks = (first_rank + (counts - 1) / 2.0)[inverse.ravel()]
    u = ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def uncertainty_auroc(cases: list[dict], threshold_deg: float = BAD_AOP_THRESHOLD_DEG) -> dict:
    """How well the per-frame uncertainty detects bad frames, as an AUROC.

    A case is *bad* when the AoP that ``workstation analyze`` reports for it
    (``aop_pipeline``) is more than ``threshold_deg`` from the reference AoP, or when
    the pipeline gives no AoP at all (a missing AoP counts as bad, scored with its
    uncertainty). Cases without a reference AoP cannot be judged and are left out of
    ``n``. The score is the pipeline's scalar ``uncertainty`` (higher = less trusted), so
    1.0 means every bad frame is more uncertain than every good one and 0.5 is chance;
    ``auroc`` is None when there are no bad or no good cases.
    """
    return _detection_auroc(cases, "aop_pipeline", "aop_ref", threshold_deg, "deg")


def hc_uncertainty_auroc(cases: list[dict], threshold_mm: float = BAD_HC_THRESHOLD_MM) -> dict:
    """As :func:`uncertainty_auroc`, for head biometry: a case is bad when the HC that analyze reports
    (``hc_pipeline_mm``) is more than ``threshold_mm`` from the reference HC, or missing."""
    return _detection_auroc(cases, "hc_pipeline_mm", "hc_ref_mm", threshold_mm, "mm")


def _detection_auroc(cases: list[dict], shown_key: str, reference_key: str, threshold: float, unit: str) -> dict:
    judged = [c for c in cases if c.get(reference_key) is not None]
    bad = [c[shown_key] is None or abs(c[shown_key] - c[reference_key]) > threshold for c in judged]
    value = auroc([c["uncertainty"] for c in judged], bad)
    return {f"threshold_{unit}": threshold, "auroc": None if value is None else round(value, 4),
            "n_bad": int(sum(bad)), "n": len(judged)}


CERTAINTY_FRACTIONS = (1.0, 0.9, 0.75, 0.5, 0.25)


def error_by_certainty(cases: list[dict], shown_key: str, reference_key: str, threshold: float,
                       fractions: tuple[float, ...] = CERTAINTY_FRACTIONS) -> list[dict]:
    """The error of what analyze shows over the most certain frames, for each fraction of the judged frames.

    The judged frames (those with a reference) are ranked by their uncertainty; a fraction keeps the first
    ``round(fraction * n)`` of them, and any frame tied with the last one kept, so no frame is kept or dropped
    by the order of equal uncertainties. Each row gives how many were kept, the largest uncertainty kept (a
    threshold a user could set), the mean/median/p95 absolute error over those with a value, how many had no
    value (withheld or not found), and the share of kept frames that are bad as in the AUROC (error above
    ``threshold``, or no value).
    """
    judged = [c for c in cases if c.get(reference_key) is not None]
    if not judged:
        return []
    uncertainty = np.array([c["uncertainty"] for c in judged], dtype=np.float64)
    ordered = np.sort(uncertainty)
    rows = []
    for fraction in fractions:
        wanted = max(1, int(round(fraction * len(judged))))
        cut = float(ordered[wanted - 1])
        kept = [c for c, u in zip(judged, uncertainty) if u <= cut]
        errors = [abs(c[shown_key] - c[reference_key]) for c in kept if c[shown_key] is not None]
        bad = sum(1 for c in kept if c[shown_key] is None or abs(c[shown_key] - c[reference_key]) > threshold)
        rows.append({"fraction": fraction, "n": len(kept), "max_uncertainty": round(cut, 4),
                     "abs_error": _stats(errors), "missing": len(kept) - len(errors),
                     "share_bad": round(bad / len(kept), 4)})
    return rows


def read_gray(path: Path) -> np.ndarray:
    """A dataset image or label file as one grey channel; InputError when it cannot be read."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise InputError(f"cannot read image {path}")
    return image


def dataset_images(folder: Path, split: str) -> list[Path]:
    """The images of one split of a dataset folder laid out as in ../shared/data (``images/*.png``)."""
    images = sorted((folder / "images").glob("*.png"))
    if not images:
        raise InputError(f"no images/*.png under {folder}: not a dataset folder laid out as in ../shared/data")
    return [p for p in images if split == "all" or split_of(p.name) == split]


def evaluate_psfhs(model: Model, folder: Path, split: str = "val", limit: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    cases = dataset_images(folder, split)[:limit]
    dices = {"ps": [], "fh": []}
    pipeline_dices = {"ps": [], "fh": []}
    hds = {"ps": [], "fh": []}
    aop_errors, pipeline_errors, per_case = [], [], []
    for n, image_path in enumerate(cases, 1):
        label_path = folder / "labels" / f"{image_path.stem}_label.png"
        ref = load_labelmap(label_path)
        image = read_gray(image_path)
        prediction = model.predict([image])[0]
        pred = labels_from_scores(prediction.probs)
        # What `workstation analyze` reports for this frame (test-time passes, plane policy): its AoP and uncertainty.
        seen = model.predict([image], tta=PIPELINE_TTA)[0]
        frame = analyze_prediction(seen, model, None, 0, 0.0)
        aop_pipeline = frame.measurements.get("aop_deg")
        seen_labels = labels_from_scores(seen.probs)
        for key, cls in (("ps", 1), ("fh", 2)):
            dices[key].append(dice(pred == cls, ref == cls))
            pipeline_dices[key].append(dice(seen_labels == cls, ref == cls))
            hds[key].append(hd95(pred == cls, ref == cls))
        ref_aop = measure_labelmap(ref).aop_deg
        pred_aop = measure_labelmap(pred).aop_deg
        error = None if ref_aop is None or pred_aop is None else abs(pred_aop - ref_aop)
        if error is not None:
            aop_errors.append(error)
        pipeline_error = None if ref_aop is None or aop_pipeline is None else abs(aop_pipeline - ref_aop)
        if pipeline_error is not None:
            pipeline_errors.append(pipeline_error)
        per_case.append({"id": image_path.stem, "aop_ref": ref_aop, "aop_pred": pred_aop, "aop_abs_error": error,
                         "regression_aop": (prediction.regression or {}).get("aop_deg"),
                         "aop_pipeline": aop_pipeline, "aop_pipeline_abs_error": pipeline_error,
                         "aop_constructed_on": (frame.measurements.get("aop_construction") or {}).get("segmentation"),
                         "uncertainty": round(frame.uncertainty, 4)})
        if progress:
            progress(n, len(cases))
    with_ref = [c for c in per_case if c["aop_ref"] is not None]
    return {
        "dataset": "psfhs", "split": split, "n": len(cases),
        "dice": {k: mean_of_known(v) for k, v in dices.items()},
        "hd95_px": {k: mean_of_known(v) for k, v in hds.items()},
        "aop_abs_error_deg": _stats(aop_errors),
        "aop_cases_scored": len(aop_errors),
        "aop_missing_in_prediction": sum(1 for c in with_ref if c["aop_pred"] is None),
        "hc_abs_error_mm": _stats([]),
        # The figures above score one plain pass; these score what `workstation analyze` reports (test-time passes,
        # plane policy), which is also what the uncertainty describes.
        "dice_pipeline": {k: mean_of_known(v) for k, v in pipeline_dices.items()},
        "aop_abs_error_deg_pipeline": _stats(pipeline_errors),
        "aop_missing_in_pipeline": sum(1 for c in with_ref if c["aop_pipeline"] is None),
        # which segmentation analyze constructed each AoP on (the averaged one or a test-time pass; see pipeline)
        "aop_constructed_on": dict(Counter(str(c["aop_constructed_on"]) for c in per_case
                                           if c["aop_pipeline"] is not None)),
        "uncertainty_auroc": uncertainty_auroc(per_case),
        "aop_error_by_certainty": error_by_certainty(per_case, "aop_pipeline", "aop_ref", BAD_AOP_THRESHOLD_DEG),
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
    cases = dataset_images(folder, split)[:limit]
    dices, pipeline_dices, hds, hc_errors, pipeline_hc_errors, per_case = [], [], [], [], [], []
    ungated_hc_errors = []
    for n, image_path in enumerate(cases, 1):
        ref = read_gray(folder / "masks" / f"{image_path.stem}_mask.png") > 0
        image = read_gray(image_path)
        prediction = model.predict([image])[0]
        pred_labels = labels_from_scores(prediction.probs)
        head = pred_labels == 2
        dices.append(dice(head, ref))
        hds.append(hd95(head, ref))
        pixel_mm, ref_hc = reference.get(image_path.name, (None, None))
        hc = None
        if pixel_mm is not None:
            # Score the head alone: a stray PS blob on an axial plane must not hide the head's HC. The model
            # learnt HC18's filled masks, whose edge runs along the outside of the expert outline: half the
            # outline's width comes off, as analyze does (the manifest's head_outline_width_input_px).
            hc = measure_labelmap(np.where(head, 2, 0).astype(np.uint8), Calibration.manual_mm_per_px(pixel_mm),
                                  head_outline_width_px=prediction.head_outline_width_px).hc_mm
        error = None if hc is None or ref_hc is None else abs(hc - ref_hc)
        if error is not None:
            hc_errors.append(error)
        # What `workstation analyze` reports for this frame with the csv's pixel size as a manual calibration:
        # test-time passes, plane policy (HC only on a frame it classes an axial head plane), the same outline
        # correction.
        seen = model.predict([image], tta=PIPELINE_TTA)[0]
        pipeline_dices.append(dice(labels_from_scores(seen.probs) == 2, ref))
        seen_frame = analyze_prediction(seen, model, None if pixel_mm is None else
                                        Calibration.manual_mm_per_px(pixel_mm), 0, 0.0)
        hc_seen = seen_frame.measurements.get("hc_mm")
        pipeline_error = None if hc_seen is None or ref_hc is None else abs(hc_seen - ref_hc)
        if pipeline_error is not None:
            pipeline_hc_errors.append(pipeline_error)
        echo = seen_frame.measurements.get("skull_echo")
        withheld = seen_frame.measurements.get("ai_biometry_withheld")
        # The HC analyze would give without its biometry checks, so the figure stays comparable across versions.
        hc_ungated = hc_seen
        if withheld and pixel_mm is not None:
            hc_ungated = recompute(Geometry.from_json(seen_frame.measurements["geometry"]),
                                   Calibration.manual_mm_per_px(pixel_mm), image.shape).hc_mm
        ungated_error = None if hc_ungated is None or ref_hc is None else abs(hc_ungated - ref_hc)
        if ungated_error is not None:
            ungated_hc_errors.append(ungated_error)
        per_case.append({"id": image_path.stem, "hc_ref_mm": ref_hc, "hc_pred_mm": hc, "hc_abs_error_mm": error,
                         "hc_pipeline_mm": hc_seen, "hc_pipeline_abs_error_mm": pipeline_error,
                         "hc_pipeline_ungated_abs_error_mm": ungated_error, "skull_echo": echo,
                         "ai_biometry_withheld": withheld,
                         "plane_probability": (seen_frame.frame_class_probs or {}).get(BIOMETRY_PLANE),
                         "uncertainty": round(seen_frame.uncertainty, 4)})
        if progress:
            progress(n, len(cases))
    return {
        "dataset": "hc18", "split": split, "n": len(cases),
        "dice": {"ps": None, "fh": mean_of_known(dices)},
        "hd95_px": {"ps": None, "fh": mean_of_known(hds)},
        "aop_abs_error_deg": _stats([]),
        "hc_abs_error_mm": _stats(hc_errors),
        "hc_missing_in_prediction": sum(1 for c in per_case if c["hc_pred_mm"] is None),
        "dice_pipeline": {"ps": None, "fh": mean_of_known(pipeline_dices)},
        "hc_abs_error_mm_pipeline": _stats(pipeline_hc_errors),
        "hc_missing_in_pipeline": sum(1 for c in per_case if c["hc_pipeline_mm"] is None),
        "hc_withheld": sum(1 for c in per_case if c["ai_biometry_withheld"]),
        "hc_withheld_no_skull_echo": sum(1 for c in per_case if c["skull_echo"] and c["skull_echo"]["seen"] is False),
        "hc_abs_error_mm_pipeline_ungated": _stats(ungated_hc_errors),
        "hc_missing_in_pipeline_ungated": sum(1 for c in per_case if c["hc_pipeline_ungated_abs_error_mm"] is None),
        "hc_uncertainty_auroc": hc_uncertainty_auroc(per_case),
        "hc_error_by_certainty": error_by_certainty(per_case, "hc_pipeline_mm", "hc_ref_mm", BAD_HC_THRESHOLD_MM),
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


def _fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _error_lines(result: dict, rows) -> list[str]:
    """One line of mean/median/p95 per (key, label, missing-count key) whose figures the result holds."""
    lines = []
    for key, label, missing in rows:
        stats = result.get(key)
        if stats and stats.get("mean") is not None:
            lines.append(f"{label} mean {_fmt(stats['mean'])}, median {_fmt(stats['median'])}, p95 {_fmt(stats['p95'])}"
                         f" ({result.get(missing, 0)} missing)")
    return lines


def _auroc_line(roc: dict | None, what: str, unit: str) -> list[str]:
    if roc is None:
        return []
    return [f"uncertainty AUROC {_fmt(roc['auroc'], 3)} for {what} error > {roc[f'threshold_{unit}']} {unit} or missing "
            f"({roc['n_bad']} bad of {roc['n']})"]


def _certainty_lines(rows: list[dict] | None, what: str, unit: str) -> list[str]:
    """The error over the most certain frames, one line per fraction (all frames left out: that line is above)."""
    lines = []
    for row in rows or ():
        if row["fraction"] >= 1.0:
            continue
        err = row["abs_error"]
        lines.append(f"  most certain {row['fraction']:.0%} ({row['n']}, uncertainty <= {row['max_uncertainty']:.3f}): "
                     f"{what} mean {_fmt(err['mean'])}, median {_fmt(err['median'])}, p95 {_fmt(err['p95'])} {unit}"
                     f" ({row['missing']} missing, {row['share_bad']:.1%} bad)")
    return [f"{what} as analyze over the frames it is surest of:"] + lines if lines else []


def format_summary(result: dict) -> str:
    """The evaluate JSON as a few human-readable lines (``python -m workstation.evaluate RESULT.json``)."""
    model = result.get("model") or {}
    lines = [f"{result.get('dataset', '?')} {result.get('split', '')}: {result.get('n', '?')} cases, "
             f"model {model_label(model.get('name', '?'), model.get('version', ''))} ({model.get('device', '?')}, "
             f"{model.get('threads', '?')} threads)"]
    dice_, hd = result.get("dice") or {}, result.get("hd95_px") or {}
    lines.append(f"Dice              PS {_fmt(dice_.get('ps'), 4)}  FH {_fmt(dice_.get('fh'), 4)}")
    seen = result.get("dice_pipeline")
    if seen:
        lines.append(f"Dice as analyze   PS {_fmt(seen.get('ps'), 4)}  FH {_fmt(seen.get('fh'), 4)}")
    lines.append(f"HD95 (px)         PS {_fmt(hd.get('ps'))}  FH {_fmt(hd.get('fh'))}")
    lines += _error_lines(result, (("aop_abs_error_deg", "AoP error (deg)  ", "aop_missing_in_prediction"),
                                   ("aop_abs_error_deg_pipeline", "AoP as analyze   ", "aop_missing_in_pipeline")))
    constructed = result.get("aop_constructed_on")
    if constructed:
        lines.append("AoP constructed on " + ", ".join(f"{name} {count}" for name, count in
                                                       sorted(constructed.items(), key=lambda kv: -kv[1])))
    lines += _auroc_line(result.get("uncertainty_auroc"), "AoP", "deg")
    lines += _certainty_lines(result.get("aop_error_by_certainty"), "AoP", "deg")
    lines += _error_lines(result, (("hc_abs_error_mm", "HC error (mm)    ", "hc_missing_in_prediction"),
                                   ("hc_abs_error_mm_pipeline", "HC as analyze    ", "hc_missing_in_pipeline"),
                                   ("hc_abs_error_mm_pipeline_ungated", "HC, unchecked    ",
                                    "hc_missing_in_pipeline_ungated")))
    if result.get("hc_withheld"):
        lines.append(f"HC withheld by analyze's checks on {result['hc_withheld']} frames, "
                     f"{result.get('hc_withheld_no_skull_echo', 0)} of them for no skull echo (in 'HC as analyze' "
                     f"missing; 'unchecked' counts them at the value they would have had)")
    lines += _auroc_line(result.get("hc_uncertainty_auroc"), "HC", "mm")
    lines += _certainty_lines(result.get("hc_error_by_certainty"), "HC", "mm")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print saved evaluate JSON files (``workstation evaluate ... --json OUT``) as human-readable summaries."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m workstation.evaluate", description=main.__doc__)
    parser.add_argument("results", nargs="+", help="evaluate JSON files")
    args = parser.parse_args(argv)
    for i, path in enumerate(args.results):
        try:
            result = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"cannot read evaluate result {path}: {exc}", file=sys.stderr)
            return 2
        print(("\n" if i else "") + format_summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
