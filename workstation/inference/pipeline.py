"""Per-frame analysis of a cine: segmentation -> plane class -> ISUOG measurements -> uncertainty.

The same code serves the CLI (``workstation analyze``), the GUI's worker pool (which
iterates :func:`iter_frame_results` and sends each result by signal) and the records.

Per-frame uncertainty (0 = confident, 1 = do not trust) is made from these signals, each
reported on its own in ``uncertainty_parts`` so nothing is hidden:

* ``boundary_entropy``: mean normalised entropy of the class probabilities in a band
  around the predicted PS and FH outlines, where AoP and HSD are decided;
* ``ps_boundary_entropy``: the same along the pubic symphysis outline alone (its axis makes the AoP);
* ``flip_disagreement``: 1 - Dice between the plain and the mirrored pass;
* ``regression_gap``: |direct AoP regression - geometric AoP| / 20 degrees, capped at 1;
* ``tta_aop_spread``: the standard deviation of the AoP measured on each test-time pass (plain,
  mirrored, turned by +-8 degrees; ``workstation.inference.engine``) / 10 degrees, capped at 1.
  A pubic symphysis whose axis swings when the picture turns a little gives an unreliable AoP;
* ``averaged_regression_gap``: the ``regression_gap`` of the averaged segmentation, before the direct
  estimate chose the construction (below): how much the segmentation and the direct estimate disagreed.

Which segmentation the AoP is constructed on: the averaged one (what the overlay shows) or one of the
test-time passes, whichever gives the AoP nearest the model's direct AoP estimate (``_arbitrate_aop``).
The pubic symphysis axis carries most of the AoP error and swings between passes; the direct
estimate, trained on the reference AoP, picks the pass whose axis agrees with it. The lines drawn and
the value shown are always one real construction on one segmentation, never a blend, so a person's
correction starts from what was drawn; the HSD is measured on the same construction (its PS inferior end).
On the validation split this lowered the AoP error of psfh-multitask 1.1.0 (the model the rule was
chosen on) from 6.12 to 5.35 degrees (paired bootstrap 95% CI of the change -1.28 to -0.30). The frame's JSON says which
segmentation was used under ``aop_construction``.

When the model's manifest carries an ``uncertainty_calibration`` (``workstation.inference.uncertainty``,
fitted on the training split), the uncertainty of a transperineal frame is that calibration's
probability that the AoP is more than 10 degrees off (``uncertainty_method`` "calibrated"); otherwise it
is a fixed blend of the first, third and fourth signals ("blend").

The per-pixel map the viewer shows is the normalised entropy itself.

Head biometry (HC, BPD, OFD, GA) is given on axial head planes only, and the AI's is withheld, with the reason,
where its outline shows no fetal skull echo or the model is less sure of the plane than on 99% of real head planes
(``check_ai_biometry``); a person's own ellipse is measured as drawn.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import cv2
import numpy as np

from workstation.calibration import Calibration
from workstation.inference.engine import TTA_PASS_NAMES, FramePrediction, Model, labels_from_scores
from workstation.inference.planes import BIOMETRY_PLANE, NO_ANATOMY, ONE_STRUCTURE, STANDARD_PLANE, describe_plane
from workstation.measure import Ellipse, aop_of_labelmap, measure_labelmap
from workstation.measure.skull_echo import describe_missing_echo, skull_echo
from workstation.measure.transperineal import frame_aspect

NO_TRANSPERINEAL_VIEW = (BIOMETRY_PLANE, NO_ANATOMY)  # frame classes where no AoP or HSD is given
_MIN_STRUCTURE_FRACTION = 5e-4  # of the frame's pixels; smaller blobs are noise, not anatomy
_REGRESSION_GAP_FULL_DEG = 20.0
_TTA_SPREAD_FULL_DEG = 10.0
FRAMES_PER_BATCH = 4


@dataclass
class FrameResult:
    index: int
    time_s: float
    frame_class: str
    frame_class_probs: dict[str, float] | None
    ps_present: bool
    fh_present: bool
    measurements: dict  # the `measure` JSON of this frame (aop_deg, hsd_px, hsd_mm, hc_mm, ..., geometry, reasons)
    uncertainty: float
    uncertainty_parts: dict[str, float | None]
    regression: dict[str, float] | None
    labels: np.ndarray | None = field(default=None, repr=False)  # kept when asked (viewer overlays)
    uncertainty_map: np.ndarray | None = field(default=None, repr=False)
    uncertainty_method: str = "blend"  # "calibrated": P(AoP error > 10 deg) from the model's manifest
    segmented_by: str | None = None  # the head-biometry model that outlined this frame, when not the main model

    def to_json(self) -> dict:
        m = self.measurements
        return {
            "index": self.index,
            "time_s": round(self.time_s, 4),
            "frame_class": self.frame_class,
            "frame_class_probs": self.frame_class_probs,
            "ps_present": self.ps_present,
            "fh_present": self.fh_present,
            "aop_deg": m.get("aop_deg"),
            "hsd_px": m.get("hsd_px"),
            "hsd_mm": m.get("hsd_mm"),
            "hc_mm": m.get("hc_mm"),
            "bpd_mm": m.get("bpd_mm"),
            "ofd_mm": m.get("ofd_mm"),
            "ga_weeks": m.get("ga_weeks"),
            "uncertainty": round(self.uncertainty, 4),
            "uncertainty_parts": self.uncertainty_parts,
            "uncertainty_method": self.uncertainty_method,
            "segmented_by": self.segmented_by,
            "regression": self.regression,
            "geometry": m.get("geometry"),
            "aop_construction": m.get("aop_construction"),  # which segmentation the AoP lines were built on
            "skull_echo": m.get("skull_echo"),  # the echo evidence behind the AI's head biometry, where it had some
            "ai_biometry_withheld": m.get("ai_biometry_withheld"),  # why the AI's HC, BPD and GA are not shown
            "reasons": m.get("reasons", {}),
            "calibration": m.get("calibration"),
        }


def entropy_map(probs: np.ndarray) -> np.ndarray:
    """Per-pixel entropy of (C, H, W) probabilities, normalised to [0, 1]."""
    p = np.clip(probs, 1e-7, 1.0)
    return (-(p * np.log(p)).sum(axis=0) / np.log(probs.shape[0])).astype(np.float32)


def _band_entropy(regions: np.ndarray, entropy: np.ndarray) -> float | None:
    """Mean entropy in a 5-px band along the outlines of ``regions`` (uint8 codes, 0 = none)."""
    edges = cv2.morphologyEx(regions, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    if not edges.any():
        return None
    band = cv2.dilate(edges.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return float(entropy[band].mean())


def _boundary_entropy(labels: np.ndarray, entropy: np.ndarray) -> float | None:
    return _band_entropy((labels > 0).astype(np.uint8) + (labels == 1).astype(np.uint8), entropy)


_BLEND_WEIGHTS = {"boundary_entropy": 0.4, "flip_disagreement": 0.3, "regression_gap": 0.3}


def _combine(parts: dict[str, float | None], whole_frame_entropy: float) -> float:
    weights = _BLEND_WEIGHTS
    known = {k: v for k, v in parts.items() if v is not None and k in weights}
    if not known:
        return float(min(1.0, whole_frame_entropy))
    total = sum(weights[k] for k in known)
    return float(min(1.0, max(0.0, sum(weights[k] * v for k, v in known.items()) / total)))


def _tta_aop_spread(pass_aops: list[float | None] | None) -> float | None:
    """How much the AoP moves across the test-time passes; None without them or with fewer than two AoPs."""
    aops = [a for a in pass_aops or () if a is not None]
    if len(aops) < 2:
        return None
    return min(1.0, float(np.std(aops)) / _TTA_SPREAD_FULL_DEG)


def _regression_gap(prediction: FramePrediction, aop_deg: float | None) -> float | None:
    if aop_deg is None or not prediction.regression or "aop_deg" not in prediction.regression:
        return None
    return min(1.0, abs(prediction.regression["aop_deg"] - aop_deg) / _REGRESSION_GAP_FULL_DEG)


def _arbitrate_aop(prediction: FramePrediction, model: Model, averaged_aop: float | None,
                   pass_aops: list[float | None] | None) -> tuple[int | None, dict | None]:
    """Which segmentation to construct the AoP on: None (the averaged one) or a test-time pass's index, whichever
    AoP is nearest the model's direct estimate; and the record of that choice (None when there was no choice).

    Only for letterboxed inputs: the passes' AoPs are measured at input resolution, which keeps angles only
    when the frame is scaled the same both ways.
    """
    direct = (prediction.regression or {}).get("aop_deg")
    if direct is None or not pass_aops or model.manifest.input_spec.resize != "letterbox":
        return None, None
    candidates = [(None, "averaged", averaged_aop)] + [
        (i, name, aop) for i, (name, aop) in enumerate(zip(TTA_PASS_NAMES, pass_aops))]
    known = [c for c in candidates if c[2] is not None]
    if not known:
        return None, None
    index, name, _ = min(known, key=lambda c: abs(c[2] - direct))
    record = {"segmentation": name, "rule": "the segmentation whose AoP is nearest the model's direct AoP estimate",
              "direct_estimate_deg": round(float(direct), 2),
              "candidates_deg": {n: (None if a is None else round(float(a), 2)) for _, n, a in candidates}}
    return index, record


def describe_aop_construction(record: dict | None, degree: str = "°") -> str:
    """One sentence on which segmentation the AI's AoP lines were built on and why, from an ``aop_construction``
    record: the panel and the PDF report both say it so."""
    if not record:
        return ""
    direct = f"the model's direct AoP estimate ({record['direct_estimate_deg']:.1f}{degree})"
    if record["segmentation"] == "averaged":
        return f"The AI built the AoP lines on the averaged segmentation, whose AoP is the nearest to {direct}."
    averaged = record.get("candidates_deg", {}).get("averaged")
    instead = "" if averaged is None else f"; on the averaged segmentation it would be {averaged:.1f}{degree}"
    return (f"The AI built the AoP lines on the {record['segmentation']} segmentation (a single test-time pass), "
            f"whose AoP is the nearest to {direct}{instead}.")


def _frame_class(prediction: FramePrediction, classes: tuple[str, ...], ps: bool, fh: bool) -> tuple[str, dict | None]:
    if prediction.plane_probs is not None:
        probs = {name: round(float(p), 4) for name, p in zip(classes, prediction.plane_probs)}
        return classes[int(np.argmax(prediction.plane_probs))], probs
    # No plane head (a segmentation-only model): derive the class from what was segmented.
    if ps and fh:
        return STANDARD_PLANE, None
    return (ONE_STRUCTURE if (ps or fh) else NO_ANATOMY), None


_BIOMETRY_KEYS = ("hc_px", "hc_mm", "bpd_px", "bpd_mm", "ofd_px", "ofd_mm", "ga_weeks", "ga_range_weeks")
_TRANSPERINEAL_KEYS = ("aop_deg", "hsd_px", "hsd_mm")


_HC_DEPENDANTS = ("hc_mm", "bpd_px", "bpd_mm", "ofd_px", "ofd_mm", "ga_weeks")


def _withhold(measured: dict, keys: tuple[str, ...], reason: str) -> None:
    """Set the values of ``keys`` that are present to None, each with ``reason``. A withheld HC takes the values
    measured from its ellipse with it, those already absent too: their reason is its reason (a GA refused for the
    HC's size must not print the HC withheld)."""
    reasons = measured.setdefault("reasons", {})
    for key in keys:
        if measured.get(key) is not None:
            measured[key] = None
            reasons[key] = reason
            if key == "hc_px":
                reasons.update(dict.fromkeys(_HC_DEPENDANTS, reason))


def plane_policy_reason(key: str, frame_class: str) -> str | None:
    """Why the plane policy withholds the value ``key`` on a frame of ``frame_class``; None where it does not."""
    if key in _BIOMETRY_KEYS and frame_class != BIOMETRY_PLANE:
        return f"head biometry is taken on an axial head plane; this frame is classed {describe_plane(frame_class)}"
    if key in _TRANSPERINEAL_KEYS and frame_class in NO_TRANSPERINEAL_VIEW:
        return f"no transperineal view: this frame is classed {describe_plane(frame_class)}"
    return None


def apply_plane_policy(measured: dict, frame_class: str) -> dict:
    """Withhold values the frame's plane does not support, with the reason (:func:`plane_policy_reason`): head
    biometry only on an axial head plane, AoP and HSD only on a transperineal view. Also applied to values recomputed
    after a person's edit (``workstation.cine_review``), so an edit never shows a value the AI withheld."""
    measured.setdefault("reasons", {})
    for key in _BIOMETRY_KEYS + _TRANSPERINEAL_KEYS:
        reason = plane_policy_reason(key, frame_class)
        if reason is not None:
            _withhold(measured, (key,), reason)
    return measured


def check_ai_biometry(measured: dict, gray: np.ndarray | None, plane_probability: float | None,
                      plane_floor: float | None) -> dict:
    """Two checks before the AI's head biometry is shown, on a frame whose head ellipse gives it:

    - the model's own confidence that the frame is an axial head plane must reach ``plane_floor`` (from the main
      model's manifest, ``head_biometry.min_plane_probability``: the 1st percentile over real head planes);
    - the frame must show a fetal skull echo along the ellipse (``workstation.measure.skull_echo``), recorded
      under ``measured["skull_echo"]``.

    Where either fails, HC, BPD, OFD and GA are withheld and ``measured["ai_biometry_withheld"]`` says why."""
    ellipse = (measured.get("geometry") or {}).get("head_ellipse")
    if ellipse is None or measured.get("hc_px") is None:
        return measured
    reasons = []
    if plane_floor is not None and plane_probability is not None and plane_probability < plane_floor:
        reasons.append(f"the model is not sure this is an axial head plane (probability {plane_probability:.2f}; "
                       f"{plane_floor:.3f} or more on 99% of the real head planes it was checked on)")
    if gray is not None:
        measured["skull_echo"] = skull_echo(gray, Ellipse.from_json(ellipse))
        if measured["skull_echo"]["seen"] is False:
            reasons.append(describe_missing_echo(measured["skull_echo"]))
    if reasons:
        measured["ai_biometry_withheld"] = "; ".join(reasons)
    return keep_ai_biometry_withheld(measured)


def keep_ai_biometry_withheld(measured: dict) -> dict:
    """Withhold the AI's head biometry where ``check_ai_biometry`` found a reason; also applied when AI values are
    recomputed (a new calibration), so they never come back."""
    reason = measured.get("ai_biometry_withheld")
    if reason:
        _withhold(measured, _BIOMETRY_KEYS, reason)
    return measured


def analyze_prediction(prediction: FramePrediction, model: Model, calibration: Calibration | None, index: int,
                       time_s: float, keep_maps: bool = False, aspect: float | None = None) -> FrameResult:
    """Measurements and uncertainty for one frame's prediction. ``aspect``: the frame's pixel shape the model was
    shown (``transperineal.frame_aspect``, taken from ``calibration`` when not given); every AoP is built with it."""
    labels = labels_from_scores(prediction.probs)
    if aspect is None:
        aspect = frame_aspect(calibration, labels.shape)
    min_pixels = _MIN_STRUCTURE_FRACTION * labels.size
    ps_present = bool((labels == 1).sum() >= min_pixels)
    fh_present = bool((labels == 2).sum() >= min_pixels)
    frame_class, class_probs = _frame_class(prediction, model.manifest.outputs.plane_classes, ps_present, fh_present)
    outline_px = prediction.head_outline_width_px
    measured = measure_labelmap(labels, calibration, head_outline_width_px=outline_px, aspect=aspect).to_json()
    averaged_aop = measured.get("aop_deg")
    pass_aops = None
    if prediction.tta_labels and ps_present and fh_present:
        # The passes' maps are in the model's input, where the pixels are square in the patient (``preprocess.place``)
        pass_aops = [aop_of_labelmap(pass_labels) for pass_labels in prediction.tta_labels]
    if frame_class not in NO_TRANSPERINEAL_VIEW:  # where the plane policy keeps the AoP
        chosen, construction = _arbitrate_aop(prediction, model, averaged_aop, pass_aops)
        if chosen is not None:
            from_pass = measure_labelmap(prediction.pass_labels_in_frame(chosen), calibration,
                                         head_outline_width_px=outline_px, aspect=aspect).to_json()
            if from_pass.get("aop_deg") is not None:  # resampled to the frame, the pass might no longer give one
                measured = from_pass
            else:
                construction["note"] = f"the {construction['segmentation']} pass gave no AoP once mapped to the frame"
                construction["segmentation"] = "averaged"
        if construction is not None:
            measured["aop_construction"] = construction
    if outline_px and measured.get("hc_px") is not None:
        measured["head_outline_width_px"] = round(outline_px, 3)  # what the ellipse was moved in by half of
    apply_plane_policy(measured, frame_class)
    check_ai_biometry(measured, prediction.gray, (class_probs or {}).get(BIOMETRY_PLANE),
                      model.manifest.min_head_plane_probability)
    entropy = entropy_map(prediction.probs)
    parts = {"boundary_entropy": _boundary_entropy(labels, entropy),
             "ps_boundary_entropy": _band_entropy((labels == 1).astype(np.uint8), entropy) if ps_present else None,
             "flip_disagreement": prediction.flip_disagreement,
             "regression_gap": _regression_gap(prediction, measured.get("aop_deg")),
             "tta_aop_spread": _tta_aop_spread(pass_aops),
             # None where the plane policy withholds the AoP, as regression_gap
             "averaged_regression_gap": (_regression_gap(prediction, averaged_aop)
                                         if measured.get("aop_deg") is not None else None)}
    calibration = model.manifest.uncertainty
    tta_ran = prediction.tta_labels is not None
    if calibration is not None and calibration.applies_to(frame_class) and tta_ran:
        uncertainty, method = calibration.probability(parts), "calibrated"
    else:  # no calibration, another plane, or no test-time passes (the calibration was fitted with them)
        uncertainty, method = _combine(parts, float(entropy.mean())), "blend"
    regression = {k: round(v, 3) for k, v in prediction.regression.items()} if prediction.regression else None
    return FrameResult(index, float(time_s), frame_class, class_probs, ps_present, fh_present, measured, uncertainty,
                       {k: (None if v is None else round(float(v), 4)) for k, v in parts.items()}, regression,
                       labels if keep_maps else None, entropy if keep_maps else None, method, prediction.segmented_by)


def iter_frame_results(cine, model: Model, *, indices=None, tta: bool = True, keep_maps: bool = False,
                       cancelled: Callable[[], bool] | None = None) -> Iterator[FrameResult]:
    """Analyse frames in small batches, yielding one result per frame; stops early when ``cancelled()``."""
    indices = list(range(cine.n_frames)) if indices is None else list(indices)
    # Non-square pixels (the frame's scale has other mm per row than per column): the model is shown the anatomy in
    # its true shape, and the AoP and HSD are built and measured with the same number (``transperineal.frame_aspect``).
    aspect = frame_aspect(cine.calibration, cine.frame_shape)
    for start in range(0, len(indices), FRAMES_PER_BATCH):
        if cancelled is not None and cancelled():
            return
        chunk = indices[start:start + FRAMES_PER_BATCH]
        predictions = model.predict([cine.frame(i) for i in chunk], tta=tta, aspect=aspect)
        for i, prediction in zip(chunk, predictions):
            yield analyze_prediction(prediction, model, cine.calibration, i, float(cine.times_s[i]), keep_maps,
                                     aspect)


def choose_frame(results: list[FrameResult]) -> tuple[int | None, str]:
    """The frame to report: a standard plane with an AoP and the lowest uncertainty."""
    with_aop = [r for r in results if r.measurements.get("aop_deg") is not None]
    standard = [r for r in with_aop if r.frame_class == STANDARD_PLANE]
    if standard:
        best = min(standard, key=lambda r: r.uncertainty)
        return best.index, (f"frame {best.index}: standard transperineal plane with PS and FH, lowest uncertainty "
                            f"({best.uncertainty:.2f}) of {len(standard)} such frames")
    if with_aop:
        best = min(with_aop, key=lambda r: r.uncertainty)
        return best.index, (f"frame {best.index}: no frame was classed a standard plane; lowest uncertainty "
                            f"({best.uncertainty:.2f}) of {len(with_aop)} frames with an AoP")
    biometry = [r for r in results if r.measurements.get("hc_px") is not None]
    if biometry:
        best = min(biometry, key=lambda r: r.uncertainty)
        return best.index, f"frame {best.index}: axial head plane with a head ellipse, lowest uncertainty ({best.uncertainty:.2f})"
    withheld = sum(1 for r in results if r.measurements.get("ai_biometry_withheld"))
    if withheld:
        return None, (f"no frame of {len(results)} gave an AoP or head biometry; the AI's head biometry was "
                      f"withheld on {withheld} (no fetal skull echo, or not surely an axial head plane)")
    return None, f"no frame of {len(results)} gave an AoP or head biometry"


def summarize(results: list[FrameResult]) -> dict:
    chosen, why = choose_frame(results)
    summary = {"chosen_frame": chosen, "aop_deg": None, "hsd_mm": None, "hsd_px": None, "hc_mm": None,
               "ga_weeks": None, "uncertainty": None, "why": why}
    if chosen is not None:
        result = next(r for r in results if r.index == chosen)
        for key in ("aop_deg", "hsd_mm", "hsd_px", "hc_mm", "ga_weeks"):
            summary[key] = result.measurements.get(key)
        summary["uncertainty"] = round(result.uncertainty, 4)
        # why a value of the chosen frame is absent: above all an HSD in pixels with no mm
        summary["reasons"] = {key: why for key, why in (result.measurements.get("reasons") or {}).items()
                              if key in summary and summary[key] is None}
    return summary


def analyze_cine(cine, model: Model, *, progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None, tta: bool = True) -> dict:
    """The `analyze` JSON for one cine."""
    results = []
    for result in iter_frame_results(cine, model, tta=tta, cancelled=cancelled):
        results.append(result)
        if progress is not None:
            progress(len(results), cine.n_frames)
    return {
        "file": str(cine.source),
        "model": model.describe(),
        "placeholder_model": model.manifest.placeholder,
        "n_frames": cine.n_frames,
        "frame_shape": list(cine.frame_shape),
        "frame_time_source": cine.frame_time_source,
        "calibration_source": cine.calibration.source,
        "study": cine.info.to_dict(),
        "cancelled": len(results) < cine.n_frames,
        "frames": [r.to_json() for r in results],
        "summary": summarize(results),
    }
