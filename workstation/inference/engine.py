"""ONNX Runtime engine: one session per model, threads set explicitly, hash checked first.

``load_model()`` finds a manifest by name (shipped ``models/`` first, then the user's
models folder), verifies the ONNX file's sha256, and opens one InferenceSession.
``Model.predict`` turns frames into per-class probabilities at frame resolution, the
plane-class probabilities and the direct AoP/HSD regression when the model has them.

With ``tta`` (test-time augmentation, as the pipeline runs by default) each frame also goes
through a mirrored pass, averaged into the probabilities, and two passes rotated by
``ROTATION_TTA_DEG``. The rotated passes are not averaged in (on the validation split that did not
lower the AoP error). They are kept as label maps so that the pipeline can measure how far the
AoP moves when the picture turns a little. That spread is the best single predictor of a bad
AoP that was found. The pipeline also lets the model's direct AoP estimate choose which pass's
segmentation the AoP is constructed on (``workstation.inference.pipeline``); ``pass_labels_in_frame``
maps a pass's label map to the frame for that.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

import cv2

from workstation.errors import ModelError
from workstation.inference.manifest import ModelManifest, read_manifest, verify
from workstation.inference.planes import BIOMETRY_PLANE
from workstation.inference.preprocess import (Placement, frame_to_input, input_px_to_frame_px, labels_to_frame,
                                              maps_to_frame)
from workstation.io.cine import to_gray
from workstation.paths import shipped_models_dir, user_models_dir

DEFAULT_MODEL = "psfh-multitask"
DEVICES = ("auto", "cpu", "gpu")
_GPU_PROVIDERS = ("CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider")
ROTATION_TTA_DEG = (8.0, -8.0)  # about the input's centre; small enough to stay inside the training augmentation
TTA_PASS_NAMES = ("plain", "mirrored") + tuple(f"turned {a:+g}°" for a in ROTATION_TTA_DEG)  # order of tta_labels


@dataclass
class FramePrediction:
    probs: np.ndarray  # (3, H, W) float32 softmax at frame resolution
    plane_probs: np.ndarray | None  # (K,) softmax over the manifest's plane classes
    regression: dict[str, float] | None  # {"aop_deg": .., "hsd_px": .. (frame pixels)}
    flip_disagreement: float | None = None  # 1 - mean Dice (PS, FH) between plain and mirrored passes
    # With tta: the label map of each pass (TTA_PASS_NAMES: plain, mirrored, rotated by ROTATION_TTA_DEG), mapped
    # back into the model's input space (input resolution, letterboxed), for the AoP's stability across passes.
    # Kept at input resolution because measuring four maps at frame resolution would cost more than the passes.
    tta_labels: list[np.ndarray] | None = None
    # "name version" of the model whose segmentation `probs` holds when it is not the main model
    # (the head-biometry specialist on axial head planes); None: the main model's own.
    segmented_by: str | None = None
    placement: Placement | None = None  # where the frame sits in the model input (for pass_labels_in_frame)
    # In frame pixels, the segmenting model's head_outline_width_input_px (see OutputSpec): the head ellipse is
    # fitted to the mask's edge moved in by half of it.
    head_outline_width_px: float = 0.0
    # The frame in grey, as it was segmented: the skull-echo check of head biometry reads it
    # (workstation.measure.skull_echo). None for predictions made up without a frame (tests).
    gray: np.ndarray | None = field(default=None, repr=False)

    def pass_labels_in_frame(self, index: int) -> np.ndarray:
        """Test-time pass ``index``'s label map at frame resolution (nearest neighbour)."""
        if self.tta_labels is None or self.placement is None:
            raise ValueError("this prediction has no test-time passes")
        return labels_to_frame(self.tta_labels[index], self.placement)


def default_threads() -> int:
    """Intra-op threads: all cores up to 4 (more rarely helps a small CNN and starves the UI)."""
    return max(1, min(os.cpu_count() or 1, 4))


def available_manifests() -> list[Path]:
    found = []
    for folder in (shipped_models_dir(), user_models_dir()):
        if folder.is_dir():
            found.extend(sorted(folder.glob("*.json")))
    return found


def main_model_names() -> list[str]:
    """Models a person can choose (shipped and user-added, by manifest file name): not the head-biometry models,
    which only serve the main model that names them."""
    names = {DEFAULT_MODEL}
    for path in available_manifests():
        try:
            if read_manifest(path).raw.get("role") == "head_biometry":
                continue
        except ModelError:
            pass  # listed all the same: choosing it gives the clear error
        names.add(path.stem)
    return sorted(names)


def find_manifest(name_or_path: str | None = None) -> Path:
    """A manifest path from a model name, a manifest path or an ONNX path (its .json beside it)."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    candidate = Path(name_or_path)
    if candidate.suffix in (".json", ".onnx") or candidate.exists():
        manifest = candidate.with_suffix(".json")
        if not manifest.is_file():
            raise ModelError(f"no manifest {manifest.name} beside {candidate}: a model needs its JSON manifest")
        return manifest
    for manifest in available_manifests():
        try:
            if read_manifest(manifest).name == name_or_path:
                return manifest
        except ModelError:
            continue  # a broken manifest elsewhere must not hide the one asked for
    names = ", ".join(sorted({p.stem for p in available_manifests()})) or "none"
    raise ModelError(f"no model named {name_or_path!r} (available: {names})")


def select_providers(device: str) -> list[str]:
    import onnxruntime as ort

    if device not in DEVICES:
        raise ModelError(f"unknown device {device!r}: choose auto, cpu or gpu")
    available = ort.get_available_providers()
    gpus = [p for p in _GPU_PROVIDERS if p in available]
    if device == "gpu" and not gpus:
        raise ModelError("no GPU execution provider is available in this ONNX Runtime (asked for --device gpu)")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    return gpus[:1] + ["CPUExecutionProvider"]


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def labels_from_scores(scores: np.ndarray) -> np.ndarray:
    """The label map (uint8, H x W) of per-class scores (C x H x W): the highest class, the lowest index on a tie,
    exactly as ``scores.argmax(0)``, which is several times slower (it walks the class axis with a stride)."""
    labels = np.zeros(scores.shape[1:], np.uint8)
    best = scores[0]
    for c in range(1, len(scores)):
        higher = scores[c] > best
        labels[higher] = c
        best = np.where(higher, scores[c], best)
    return labels


def _rotation(angle_deg: float, height: int, width: int) -> np.ndarray:
    return cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle_deg, 1.0)


def _rotate_inputs(batch: np.ndarray, angle_deg: float, black: float) -> np.ndarray:
    """(N, C, H, W) model inputs turned about their centre; the corners filled with black (as the letterbox)."""
    n, c, h, w = batch.shape
    matrix = _rotation(angle_deg, h, w)
    flat = batch.reshape(n * c, h, w)
    turned = [cv2.warpAffine(x, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=black) for x in flat]
    return np.stack(turned).reshape(n, c, h, w).astype(np.float32)


def _unrotate_labels(labels: np.ndarray, angle_deg: float) -> np.ndarray:
    h, w = labels.shape
    matrix = cv2.invertAffineTransform(_rotation(angle_deg, h, w))
    return cv2.warpAffine(labels, matrix, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _mean_structure_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Dice of PS and FH between two label maps; a class absent from both counts as agreement."""
    scores = []
    for cls in (1, 2):
        in_a, in_b = a == cls, b == cls
        total = int(in_a.sum()) + int(in_b.sum())
        scores.append(1.0 if total == 0 else 2.0 * int((in_a & in_b).sum()) / total)
    return float(np.mean(scores))


class Model:
    """One verified ONNX model and its single InferenceSession.

    A manifest may name a head-biometry specialist (``"head_biometry": {"model": NAME, "plane": CLASS}``): a
    second model, verified and opened the same way, whose segmentation replaces the main model's on the
    frames the main model classes as that plane (axial head planes, where HC is measured). The main model
    still grades the plane, so the specialist never decides where it is used.
    """

    def __init__(self, manifest: ModelManifest, device: str = "auto", threads: int | None = None,
                 with_head_specialist: bool = True):
        import onnxruntime as ort

        verify(manifest)
        self.manifest = manifest
        self.threads = threads or default_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = select_providers(device)
        try:
            self.session = ort.InferenceSession(str(manifest.file), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
            raise ModelError(f"model {manifest.name} could not be opened by ONNX Runtime: {str(exc).splitlines()[0]}") from None
        self.device = "gpu" if self.session.get_providers()[0] in _GPU_PROVIDERS else "cpu"
        outputs = {o.name for o in self.session.get_outputs()}
        wanted = [n for n in (manifest.outputs.segmentation, manifest.outputs.plane, manifest.outputs.regression) if n]
        missing = [n for n in wanted if n not in outputs]
        if missing:
            raise ModelError(f"model {manifest.name} lacks the outputs {missing} that its manifest names (has {sorted(outputs)})")
        self._output_names = wanted
        self.head_specialist: Model | None = None
        self.head_specialist_plane: str | None = None
        specialist = manifest.raw.get("head_biometry") if with_head_specialist else None
        if specialist:
            plane = specialist.get("plane", BIOMETRY_PLANE)
            if not manifest.outputs.plane or plane not in manifest.outputs.plane_classes:
                raise ModelError(f"model {manifest.name} names a head-biometry model for the plane {plane!r}, "
                                 f"which it does not grade")
            name = str(specialist.get("model", ""))
            beside = manifest.manifest_path.parent / f"{name}.json"
            self.head_specialist = Model(read_manifest(beside if beside.is_file() else find_manifest(name)), device,
                                         threads, with_head_specialist=False)
            self.head_specialist_plane = plane

    def describe(self) -> dict:
        described = {**self.manifest.describe(), "device": self.device, "threads": self.threads}
        if self.head_specialist is not None:
            described["head_biometry_model"] = {**self.head_specialist.manifest.describe(),
                                                "used_on": self.head_specialist_plane}
        return described

    def run_inputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs for an (N, C, H, W) float32 batch already in the model's input space."""
        values = self.session.run(self._output_names, {self.manifest.input_name: batch})
        return dict(zip(self._output_names, values))

    def predict(self, frames: list[np.ndarray], tta: bool = False, aspect: float = 1.0) -> list[FramePrediction]:
        """Predictions for frames of any size; with ``tta`` also the mirrored pass (averaged) and the rotated
        passes (kept as label maps). ``aspect``: the frames' mm per pixel row over mm per column, so that the model
        sees the anatomy in its true shape (``preprocess.place``)."""
        spec = self.manifest.input_spec
        grays = [to_gray(f) for f in frames]  # once per frame: the input and the skull-echo check both read it
        prepared = [frame_to_input(g, spec, aspect) for g in grays]
        batch = np.stack([x for x, _ in prepared]).astype(np.float32)
        n = len(batch)
        outs = self.manifest.outputs
        if tta:
            passes = [batch, np.ascontiguousarray(batch[..., ::-1])] + [
                _rotate_inputs(batch, a, (0.0 - spec.mean) / spec.std) for a in ROTATION_TTA_DEG]
            # One run per pass, not one batch of all: ONNX Runtime's arena grows with the batch (peak RSS doubled).
            raw, mirrored, *turned = [self.run_inputs(x) for x in passes]
            rotated = [t[outs.segmentation] for t in turned]
        else:
            raw = self.run_inputs(batch)
        results = []
        for i, (_, placement) in enumerate(prepared):
            seg = _softmax(raw[outs.segmentation][i].astype(np.float32), axis=0)
            disagreement, tta_labels = None, None
            if tta:
                seg_mirrored = _softmax(mirrored[outs.segmentation][i][..., ::-1].astype(np.float32), axis=0)
                plain_labels = labels_from_scores(seg)
                mirrored_labels = labels_from_scores(seg_mirrored)
                disagreement = 1.0 - _mean_structure_dice(plain_labels, mirrored_labels)
                tta_labels = [plain_labels, mirrored_labels] + [
                    _unrotate_labels(labels_from_scores(r[i]), a) for r, a in zip(rotated, ROTATION_TTA_DEG)]
                seg = 0.5 * (seg + seg_mirrored)
            plane = None
            if outs.plane:
                plane = _softmax(raw[outs.plane][i].astype(np.float32).ravel(), axis=0)
                if len(plane) != len(outs.plane_classes):
                    raise ModelError(f"model {self.manifest.name} gives {len(plane)} plane classes, its manifest names "
                                     f"{len(outs.plane_classes)}")
            regression = None
            if outs.regression:
                values = raw[outs.regression][i].astype(np.float64).ravel()
                regression = {}
                for name, value, scale in zip(outs.regression_fields, values, outs.regression_scale):
                    value = float(value) * scale
                    if name == "hsd_px" and outs.hsd_units == "input_px":
                        value = input_px_to_frame_px(value, spec, placement)
                    regression[name] = value
            outline_px = input_px_to_frame_px(outs.head_outline_width_input_px, spec, placement)
            results.append(FramePrediction(maps_to_frame(seg, placement), plane, regression, disagreement, tta_labels,
                                           placement=placement, head_outline_width_px=outline_px,
                                           gray=grays[i]))
        if self.head_specialist is not None:
            self._segment_heads(frames, results, tta, aspect)
        return results

    def _segment_heads(self, frames: list[np.ndarray], results: list[FramePrediction], tta: bool,
                       aspect: float = 1.0) -> None:
        """On frames classed as the specialist's plane, its segmentation (and test-time passes) replace ours."""
        classes = self.manifest.outputs.plane_classes
        chosen = [i for i, r in enumerate(results)
                  if r.plane_probs is not None and classes[int(np.argmax(r.plane_probs))] == self.head_specialist_plane]
        if not chosen:
            return
        specialist = self.head_specialist
        by = specialist.manifest.label
        for i, head in zip(chosen, specialist.predict([frames[i] for i in chosen], tta=tta, aspect=aspect)):
            # the specialist's segmentation and passes; our plane class and direct estimate
            results[i] = replace(head, plane_probs=results[i].plane_probs, regression=results[i].regression,
                                 segmented_by=by)


def load_model(name_or_path: str | None = None, device: str = "auto", threads: int | None = None) -> Model:
    """Find, verify and open a model; ModelError with a clear message when anything is off."""
    return Model(read_manifest(find_manifest(name_or_path)), device=device, threads=threads)
