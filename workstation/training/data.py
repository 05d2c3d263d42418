"""Training data: PSFHS and HC18 loaded through the inference preprocessing, augmented, with weak frame classes.

Split
-----
``split_of(case_id)`` is :func:`workstation.splits.split_of` (re-exported so training and
``workstation evaluate`` share one rule): a case is validation when sha1 of its key, read as
an integer, is divisible by 5 (about 20%); the key is the image id for PSFHS and the fetus
number for HC18, so ``NNN_2HC`` always sits with ``NNN_HC``. Hashing ids (not shuffling)
keeps the split stable when files are added or removed.

Preprocessing
-------------
Every image goes through :func:`workstation.inference.preprocess.frame_to_input` and every
label map through :func:`labels_to_input` (letterbox to 256x256, grey, (p/255 - 0.5)/0.5), the
same code the inference engine runs, so training and inference see identical geometry.
Augmentation happens after that, on the 256x256 letterboxed frame in [0, 1].

Segmentation targets
--------------------
PSFHS: the label map as is (0 background, 1 PS, 2 FH). HC18: the filled head mask -> class 2,
everything else 0 (an axial head plane shows no pubic symphysis, so "no PS" is a true label).
Synthetic ``no_anatomy`` frames: all background.

Weak frame-class labels (4 classes; no person graded planes, so they are derived)
---------------------------------------------------------------------------------
0 ``standard_plane``   a PSFHS frame whose (augmented) label map still shows PS >= 30 px and
                       FH >= 300 px (every PSFHS image here has both; checked on all 1087).
1 ``one_structure``    a PSFHS frame where one structure is gone: (a) "probe moved": the frame is
                       cropped to the largest window beside the bounding box of one structure
                       (left, right, above or below) and letterboxed back to 256, so that
                       structure is out of view while the other stays; when no window keeps
                       enough of the other structure, (b) the structure is inpainted away
                       (OpenCV Telea on its dilated mask) and its label set to background.
                       Also any PSFHS frame whose label lacks one structure (none at present,
                       but a future PSFHS drop may have some) or loses one to augmentation.
2 ``not_transperineal`` HC18 axial head planes (a different view of the head; no PS).
3 ``no_anatomy``       generated on the fly: a blank frame (dark constant + faint noise), pure
                       speckle (Rayleigh noise, optionally smoothed, sometimes inside a fan),
                       or a real frame blurred beyond recognition (Gaussian sigma 12-25).
A PSFHS frame where augmentation leaves a structure partly visible (1..threshold px) gets no
frame class (ignored by the loss) rather than a guessed one.

Regression targets
------------------
[AoP / 180, HSD_px / 256] from the reference label map through the project's geometry
(:func:`workstation.measure.measure_labelmap`, imported lazily). The geometric augmentation
is a similarity (rotation, isotropic scale, shift, mirror): AoP is invariant and HSD scales
with the zoom, so targets follow analytically; the target is masked out when the frame is not
a standard plane, when augmentation cut off part of either structure, or when the geometry
refuses to measure.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from workstation.evaluate import read_gray
from workstation.inference.planes import (BIOMETRY_PLANE, DEFAULT_PLANE_CLASSES, NO_ANATOMY, ONE_STRUCTURE,
                                           STANDARD_PLANE)
from workstation.inference.preprocess import InputSpec, frame_to_input, labels_to_input
from workstation.measure import HC18_OUTLINE_WIDTH_PX, measure_labelmap
from workstation.splits import VALIDATION_MODULUS, case_key, split_of

__all__ = ["INPUT_SPEC", "SPLIT_RULE", "split_of", "case_key", "psfhs_cases", "hc18_cases", "TrainingMix", "ValidationSet",
           "frame_class_from_labels", "make_one_structure", "make_no_anatomy", "reference_targets"]

INPUT_SPEC = InputSpec(height=256, width=256, channels=1, resize="letterbox")
SPLIT_RULE = (f"sha1(case key) as an integer mod {VALIDATION_MODULUS} == 0 -> val, else train; key = PSFHS image id, "
              "HC18 fetus number (NNN_2HC shares NNN_HC's split) - workstation.splits.split_of")

# Frame-class targets: each class's index in the plane output, whose order the names in planes.py fix.
STANDARD_PLANE_INDEX, ONE_STRUCTURE_INDEX, BIOMETRY_PLANE_INDEX, NO_ANATOMY_INDEX = (
    DEFAULT_PLANE_CLASSES.index(name) for name in (STANDARD_PLANE, ONE_STRUCTURE, BIOMETRY_PLANE, NO_ANATOMY))
IGNORE = -1
MIN_PS_PX, MIN_FH_PX = 30, 300  # below these a structure counts as "partly visible" (frame class ignored)
REGRESSION_SCALE = (180.0, 256.0)
# The HC18 outlines' width (workstation.measure.HC18_OUTLINE_WIDTH_PX, in its 800-px-wide frames) in model-input
# pixels: a model trained on HC18's filled masks draws the head's edge half of it outside the reference ellipse.
HC18_FRAME_WIDTH_PX = 800
HC18_OUTLINE_WIDTH_INPUT_PX = round(HC18_OUTLINE_WIDTH_PX * INPUT_SPEC.width / HC18_FRAME_WIDTH_PX, 3)


# --------------------------------------------------------------------------- cases and loading

@dataclass(frozen=True)
class Case:
    case_id: str
    image: Path
    label: Path  # PSFHS label map or HC18 filled mask
    source: str  # "psfhs" | "hc18"


def psfhs_cases(root: Path, split: str = "all") -> list[Case]:
    folder = Path(root) / "psfhs"
    cases = [Case(p.stem, p, folder / "labels" / f"{p.stem}_label.png", "psfhs")
             for p in sorted((folder / "images").glob("*.png"))]
    return [c for c in cases if split == "all" or split_of(c.case_id) == split]


def hc18_cases(root: Path, split: str = "all") -> list[Case]:
    folder = Path(root) / "hc18"
    cases = [Case(p.stem, p, folder / "masks" / f"{p.stem}_mask.png", "hc18")
             for p in sorted((folder / "images").glob("*.png"))]
    return [c for c in cases if split == "all" or split_of(c.case_id) == split]


def to_unit(gray: np.ndarray, spec: InputSpec = INPUT_SPEC) -> np.ndarray:
    """A frame through the inference preprocessing, then back to [0, 1] for augmentation (H, W) float32."""
    x, _ = frame_to_input(gray, spec)
    return np.clip(x[0] * spec.std + spec.mean, 0.0, 1.0).astype(np.float32)


def normalise(unit: np.ndarray, spec: InputSpec = INPUT_SPEC) -> np.ndarray:
    """[0, 1] frame -> the model's normalisation, (1, H, W) float32."""
    return ((unit.astype(np.float32) - spec.mean) / spec.std)[None]


def load_case(case: Case, spec: InputSpec = INPUT_SPEC) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 HxW letterboxed to the input size, labels uint8 0/1/2) of one case."""
    image = np.round(to_unit(read_gray(case.image), spec) * 255.0).astype(np.uint8)
    raw = read_gray(case.label)
    if case.source == "hc18":
        raw = np.where(raw > 0, 2, 0).astype(np.uint8)  # filled head -> FH; no PS on an axial head plane
    return image, labels_to_input(raw, spec)


def reference_targets(labels: np.ndarray) -> tuple[float, float] | None:
    """(AoP degrees, HSD pixels) of a reference label map with the project's geometry, or None when undefined."""
    try:
        m = measure_labelmap(labels)
    except Exception:  # a label map the geometry refuses is simply unlabelled for regression
        return None
    if m.aop_deg is None or m.hsd_px is None:
        return None
    return float(m.aop_deg), float(m.hsd_px)


# --------------------------------------------------------------------------- weak frame classes

def frame_class_from_labels(labels: np.ndarray) -> int:
    """Standard plane / one structure from a PSFHS-style label map; IGNORE when a structure is only partly there."""
    ps, fh = int((labels == 1).sum()), int((labels == 2).sum())
    ps_present, fh_present = ps >= MIN_PS_PX, fh >= MIN_FH_PX
    ps_absent, fh_absent = ps == 0, fh == 0
    if ps_present and fh_present:
        return STANDARD_PLANE_INDEX
    if (ps_present and fh_absent) or (fh_present and ps_absent):
        return ONE_STRUCTURE_INDEX
    return IGNORE


def _crop_beside(unit: np.ndarray, labels: np.ndarray, remove: int, keep: int) -> tuple[np.ndarray, np.ndarray] | None:
    """'Probe moved': the largest window beside the removed structure's bounding box that keeps the other one."""
    ys, xs = np.nonzero(labels == remove)
    if len(xs) == 0:
        return None
    h, w = labels.shape
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    windows = [(0, h, 0, x0), (0, h, x1, w), (0, y0, 0, w), (y1, h, 0, w)]  # (top, bottom, left, right)
    keep_total = max(int((labels == keep).sum()), 1)
    best, best_kept = None, 0.0
    for top, bottom, left, right in windows:
        if bottom - top < 64 or right - left < 64:  # too small a view to be a plausible frame
            continue
        kept = int((labels[top:bottom, left:right] == keep).sum()) / keep_total
        if kept > best_kept:
            best, best_kept = (top, bottom, left, right), kept
    if best is None or best_kept < 0.4:
        return None
    top, bottom, left, right = best
    crop_image = np.round(unit[top:bottom, left:right] * 255.0).astype(np.uint8)
    crop_labels = labels[top:bottom, left:right]
    return to_unit(crop_image), labels_to_input(crop_labels, INPUT_SPEC)


def _inpaint_away(unit: np.ndarray, labels: np.ndarray, remove: int) -> tuple[np.ndarray, np.ndarray]:
    mask = cv2.dilate((labels == remove).astype(np.uint8), np.ones((9, 9), np.uint8))
    image = np.round(unit * 255.0).astype(np.uint8)
    filled = cv2.inpaint(image, mask, 5, cv2.INPAINT_TELEA)
    new_labels = labels.copy()
    new_labels[labels == remove] = 0
    return filled.astype(np.float32) / 255.0, new_labels


def make_one_structure(unit: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Remove PS or FH from a standard plane (crop beside it, else inpaint it) -> a one_structure frame."""
    remove = int(rng.integers(1, 3))
    keep = 3 - remove
    cropped = _crop_beside(unit, labels, remove, keep) if rng.random() < 0.7 else None
    if cropped is not None and frame_class_from_labels(cropped[1]) == ONE_STRUCTURE_INDEX:
        return cropped
    return _inpaint_away(unit, labels, remove)


def make_no_anatomy(rng: np.random.Generator, size: int = 256, real: np.ndarray | None = None) -> np.ndarray:
    """A frame with nothing to measure: blank, pure speckle, or a real frame blurred beyond recognition."""
    kind = rng.choice(["blank", "speckle", "blur"] if real is not None else ["blank", "speckle"])
    if kind == "blank":
        image = np.full((size, size), rng.uniform(0.0, 0.25), np.float32)
        image += rng.normal(0.0, rng.uniform(0.0, 0.03), image.shape).astype(np.float32)
    elif kind == "speckle":
        image = rng.rayleigh(rng.uniform(0.1, 0.3), (size, size)).astype(np.float32)
        if rng.random() < 0.6:
            image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.8, 3.0)))
        if rng.random() < 0.5:  # inside an ultrasound fan, black outside, as a probe in air would show
            fan = np.zeros((size, size), np.uint8)
            cv2.ellipse(fan, (size // 2, int(-size * 0.1)), (int(size * 1.05), int(size * 1.05)), 90,
                        -float(rng.uniform(25, 40)), float(rng.uniform(25, 40)), 1, -1)
            image *= fan
    else:
        image = cv2.GaussianBlur(real.astype(np.float32), (0, 0), float(rng.uniform(12.0, 25.0)))
    return np.clip(image, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- augmentation

def random_similarity(unit: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, max_rotation: float = 15.0,
                      scale_range: tuple[float, float] = (0.85, 1.15), max_shift: float = 0.08,
                      flip: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """Rotate +-15 deg, zoom, shift, mirror (same warp for image and labels); returns the zoom factor.

    A mirror swaps which side PS and head are on; fine for segmentation, and AoP is unchanged.
    """
    h, w = labels.shape
    angle = float(rng.uniform(-max_rotation, max_rotation))
    scale = float(rng.uniform(*scale_range))
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    matrix[:, 2] += rng.uniform(-max_shift, max_shift, 2) * np.array([w, h])
    if flip and rng.random() < 0.5:
        matrix = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0.0, 0.0, 1.0]])
    image = cv2.warpAffine(unit, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    warped = cv2.warpAffine(labels, matrix, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0)
    return image, warped, scale


def random_intensity(unit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gain, contrast, gamma, speckle and slight blur: machines and presets differ in all of these."""
    image = unit.astype(np.float32)
    if rng.random() < 0.8:
        image = (image - image.mean()) * rng.uniform(0.75, 1.3) + image.mean() + rng.uniform(-0.1, 0.1)
    image = np.clip(image, 0.0, 1.0)
    if rng.random() < 0.5:
        image = image ** float(np.exp(rng.uniform(-0.4, 0.4)))
    if rng.random() < 0.4:  # multiplicative speckle
        image = image * rng.normal(1.0, rng.uniform(0.03, 0.15), image.shape).astype(np.float32)
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.5, 1.2)))
    return np.clip(image, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- datasets

def _sample(unit, labels, plane, regression=None, regression_valid=False) -> dict:
    return {"image": normalise(unit), "seg": labels.astype(np.int64), "plane": np.int64(plane),
            "regression": np.asarray(regression if regression is not None else (0.0, 0.0), np.float32),
            "regression_mask": np.bool_(regression_valid)}


class _Preloaded:
    """Cases decoded once (uint8, letterboxed) - PSFHS + HC18 fit in ~120 MB and re-reading PNGs would dominate."""

    def __init__(self, cases: list[Case], with_targets: bool):
        self.cases = cases
        loaded = [load_case(c) for c in cases]
        self.images = [image for image, _ in loaded]
        self.labels = [labels for _, labels in loaded]
        self.targets = [reference_targets(labels) if with_targets else None for labels in self.labels]


class TrainingMix:
    """One epoch = every PSFHS training case + a fresh random subset of HC18, with weak classes made on the fly.

    Per PSFHS item: with ``p_no_anatomy`` it becomes a no_anatomy frame, with ``p_one_structure`` a
    one_structure frame, otherwise a (geometrically augmented) standard plane. Randomness comes
    from (seed, epoch, index), so a run is reproducible whatever the loader's worker count.
    """

    def __init__(self, psfhs: list[Case], hc18: list[Case], *, hc18_per_epoch: int | None = None, seed: int = 0,
                 p_one_structure: float = 0.15, p_no_anatomy: float = 0.08, augment: bool = True):
        self.psfhs = _Preloaded(psfhs, with_targets=True)
        self.hc18 = _Preloaded(hc18, with_targets=False)
        self.hc18_per_epoch = len(hc18) if hc18_per_epoch is None else min(hc18_per_epoch, len(hc18))
        self.seed, self.epoch = seed, 0
        self.p_one_structure, self.p_no_anatomy, self.augment = p_one_structure, p_no_anatomy, augment

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.psfhs.cases) + self.hc18_per_epoch

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> dict:
        rng = self._rng(index)
        n_psfhs = len(self.psfhs.cases)
        if index >= n_psfhs:
            order = np.random.default_rng([self.seed, self.epoch, 10**9]).permutation(len(self.hc18.cases))
            k = int(order[index - n_psfhs])
            unit = self.hc18.images[k].astype(np.float32) / 255.0
            labels = self.hc18.labels[k]
            if self.augment:
                unit, labels, _ = random_similarity(unit, labels, rng)
                unit = random_intensity(unit, rng)
            return _sample(unit, labels, BIOMETRY_PLANE_INDEX)

        unit = self.psfhs.images[index].astype(np.float32) / 255.0
        labels = self.psfhs.labels[index]
        target = self.psfhs.targets[index]
        draw = rng.random()
        if draw < self.p_no_anatomy:
            image = make_no_anatomy(rng, unit.shape[0], real=unit)
            image = random_intensity(image, rng) if self.augment else image
            return _sample(image, np.zeros_like(labels), NO_ANATOMY_INDEX)
        synthetic_one = draw < self.p_no_anatomy + self.p_one_structure
        if synthetic_one:
            unit, labels = make_one_structure(unit, labels, rng)
        scale = 1.0
        counts_before = ((labels == 1).sum(), (labels == 2).sum())
        if self.augment:
            unit, labels, scale = random_similarity(unit, labels, rng)
            unit = random_intensity(unit, rng)
        plane = frame_class_from_labels(labels)
        regression, valid = None, False
        if target is not None and not synthetic_one and plane == STANDARD_PLANE_INDEX:
            # Valid only when the warp kept (almost) every pixel of both structures: a cut structure moves the geometry.
            kept = all((labels == c).sum() >= 0.97 * n * scale * scale for c, n in zip((1, 2), counts_before))
            if kept:
                regression = (target[0] / REGRESSION_SCALE[0], target[1] * scale / REGRESSION_SCALE[1])
                valid = True
        return _sample(unit, labels, plane, regression, valid)


class ValidationSet:
    """Un-augmented validation frames: PSFHS val (standard planes), HC18 val, and a fixed set of synthetic frames.

    ``kind`` per item tells the metrics which frames the segmentation / regression scores use.
    """

    def __init__(self, psfhs: list[Case], hc18: list[Case], *, synthetic_each: int = 40, seed: int = 12345):
        self.psfhs = _Preloaded(psfhs, with_targets=True)
        self.hc18 = _Preloaded(hc18, with_targets=False)
        rng = np.random.default_rng(seed)
        self.synthetic: list[dict] = []
        n = len(self.psfhs.cases)
        for i in range(synthetic_each if n else 0):
            k = int(rng.integers(n))
            unit = self.psfhs.images[k].astype(np.float32) / 255.0
            image, labels = make_one_structure(unit, self.psfhs.labels[k], rng)
            self.synthetic.append(_sample(image, labels, frame_class_from_labels(labels)) | {"kind": "one_structure"})
            k = int(rng.integers(n))
            real = self.psfhs.images[k].astype(np.float32) / 255.0
            blank = make_no_anatomy(rng, real.shape[0], real=real)
            blank_sample = _sample(blank, np.zeros(real.shape, np.uint8), NO_ANATOMY_INDEX)
            self.synthetic.append(blank_sample | {"kind": "no_anatomy"})

    def __len__(self) -> int:
        return len(self.psfhs.cases) + len(self.hc18.cases) + len(self.synthetic)

    def __getitem__(self, index: int) -> dict:
        n_psfhs, n_hc18 = len(self.psfhs.cases), len(self.hc18.cases)
        if index < n_psfhs:
            target = self.psfhs.targets[index]
            regression = None if target is None else (target[0] / REGRESSION_SCALE[0], target[1] / REGRESSION_SCALE[1])
            return _sample(self.psfhs.images[index].astype(np.float32) / 255.0, self.psfhs.labels[index],
                           frame_class_from_labels(self.psfhs.labels[index]), regression, target is not None) | {
                "kind": "psfhs"}
        if index < n_psfhs + n_hc18:
            k = index - n_psfhs
            image = self.hc18.images[k].astype(np.float32) / 255.0
            return _sample(image, self.hc18.labels[k], BIOMETRY_PLANE_INDEX) | {"kind": "hc18"}
        return self.synthetic[index - n_psfhs - n_hc18]

