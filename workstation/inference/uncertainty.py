"""A model's calibrated per-frame uncertainty: the chance that a frame's AoP is badly wrong.

The raw signals the pipeline measures (``workstation.inference.pipeline``: entropy along the outlines,
flip disagreement, regression-versus-geometry gap, entropy along the pubic symphysis outline) each say
a little about error, on scales of their own. A model's manifest may carry an
``uncertainty_calibration``: a logistic regression over some of those signals, fitted on the *training*
split (``python -m workstation.training.calibrate_uncertainty``), that turns them into the probability
that the frame's AoP is more than ``threshold_deg`` from the expert's. That number is what the user sees
as the frame's uncertainty; a model without one falls back to the pipeline's fixed blend.

Only numpy: the fit needs no torch and the app reads the result from JSON.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workstation.errors import ModelError
from workstation.inference.planes import AOP_PLANES


def uncertainty_level(uncertainty: float) -> str:
    """The word shown beside a frame's uncertainty (panel, timeline, report): low, moderate or HIGH."""
    return "low" if uncertainty < 0.3 else ("moderate" if uncertainty < 0.6 else "HIGH")


def describe_uncertainty(uncertainty: float | None) -> str:
    """'0.56 (moderate)', or '-' where there is none (a person's value has no AI uncertainty of its own)."""
    return "-" if uncertainty is None else f"{uncertainty:.2f} ({uncertainty_level(uncertainty)})"


KNOWN_SIGNALS = ("boundary_entropy", "flip_disagreement", "regression_gap", "ps_boundary_entropy", "tta_aop_spread",
                 "averaged_regression_gap")


@dataclass(frozen=True)
class UncertaintyCalibration:
    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    fill: tuple[float, ...]  # a missing signal (no PS, no AoP) counts as this value: the least trusted end
    threshold_deg: float = 10.0
    frame_classes: tuple[str, ...] = AOP_PLANES

    def applies_to(self, frame_class: str) -> bool:
        return frame_class in self.frame_classes

    def probability(self, parts: dict[str, float | None]) -> float:
        """P(AoP error > threshold) for one frame's signals."""
        values = [parts.get(name) for name in self.features]
        x = np.array([fill if v is None else float(v) for v, fill in zip(values, self.fill)], dtype=np.float64)
        logit = float(np.dot((x - np.array(self.mean)) / np.array(self.std), self.weights) + self.bias)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))

    def to_json(self, **extra) -> dict:
        return {"kind": "logistic", "target": f"P(AoP error > {self.threshold_deg:g} deg)",
                "threshold_deg": self.threshold_deg, "features": list(self.features),
                "mean": [round(v, 6) for v in self.mean], "std": [round(v, 6) for v in self.std],
                "weights": [round(v, 6) for v in self.weights], "bias": round(self.bias, 6),
                "fill": list(self.fill), "frame_classes": list(self.frame_classes), **extra}


def calibration_from_manifest(raw: dict, where: str) -> UncertaintyCalibration | None:
    """The manifest's ``uncertainty_calibration``, checked; None when it has none."""
    spec = raw.get("uncertainty_calibration")
    if spec is None:
        return None
    try:
        if spec.get("kind") != "logistic":
            raise ValueError(f"kind {spec.get('kind')!r} is not 'logistic'")
        features = tuple(str(f) for f in spec["features"])
        unknown = [f for f in features if f not in KNOWN_SIGNALS]
        if unknown:
            raise ValueError(f"unknown signals {unknown} (known: {', '.join(KNOWN_SIGNALS)})")
        vectors = {key: tuple(float(v) for v in spec[key]) for key in ("mean", "std", "weights", "fill")}
        if any(len(v) != len(features) for v in vectors.values()):
            raise ValueError(f"mean, std, weights and fill need {len(features)} values each")
        if any(not s > 0 for s in vectors["std"]) or not all(map(math.isfinite, sum(vectors.values(), ()))):
            raise ValueError("std must be positive and every value finite")
        return UncertaintyCalibration(features=features, bias=float(spec["bias"]),
                                      threshold_deg=float(spec.get("threshold_deg", 10.0)),
                                      frame_classes=tuple(spec.get("frame_classes", AOP_PLANES)),
                                      **vectors)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"model manifest {where} has an unusable uncertainty_calibration: {exc}") from None


def fit_logistic(features: np.ndarray, bad: np.ndarray, l2: float = 0.01, steps: int = 4000,
                 learning_rate: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Logistic regression of ``bad`` (bool per row) on standardised ``features`` (rows x signals), by
    full-batch gradient descent with a small L2 penalty; returns (mean, std, weights, bias)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(bad, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y) or len(y) == 0:
        raise ValueError(f"need rows x signals features and one label per row, got {x.shape} and {y.shape}")
    if y.min() == y.max():
        raise ValueError("need both bad and good frames to fit")
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std < 1e-9] = 1.0
    z = (x - mean) / std
    weights, bias = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ weights + bias)))
        weights -= learning_rate * (z.T @ (p - y) / len(y) + l2 * weights)
        bias -= learning_rate * float((p - y).mean())
    return mean, std, weights, bias
