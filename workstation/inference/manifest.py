"""Model manifests: the JSON beside each ONNX file that says what the model expects and gives.

The engine trusts nothing it has not checked: the file must exist and its sha256 must
match the manifest, or the model is refused with a message naming both.

Two contracts are read:

* the project's own (``schema: 1``), written by :mod:`workstation.training.export`;
* the LaborView contract (``"contract": "laborview"``): input ``image`` 1x3xHxW scaled
  to [-1, 1], outputs plane logits, 3-class segmentation, optionally [AoP, HSD]. A user
  drops such a model in by writing a short manifest that names its output tensors.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from workstation.errors import ModelError
from workstation.inference.planes import DEFAULT_PLANE_CLASSES
from workstation.inference.preprocess import InputSpec
from workstation.inference.uncertainty import UncertaintyCalibration, calibration_from_manifest

SEGMENTATION_CLASSES = {0: "background", 1: "pubic_symphysis", 2: "fetal_head"}


def model_label(name: str, version: str) -> str:
    """A model as people read it, and the name the AI's values go under in the records: its name and version,
    "psfh-multitask 1.2.0" (:attr:`ModelManifest.label`; a records analysis' ``model_label``)."""
    return f"{name} {version}".strip()
MAX_HEAD_OUTLINE_WIDTH_INPUT_PX = 8.0  # wider would move a head's edge by more than any drawn line


@dataclass(frozen=True)
class OutputSpec:
    segmentation: str
    plane: str | None = None
    plane_classes: tuple[str, ...] = DEFAULT_PLANE_CLASSES
    regression: str | None = None
    regression_fields: tuple[str, ...] = ("aop_deg", "hsd_px")
    regression_scale: tuple[float, ...] = (1.0, 1.0)
    hsd_units: str = "input_px"
    # Width, in model-input pixels, of the drawn outlines the model's head masks were filled from (HC18): its head
    # edge lies half of it outside the outline's mid-line, which is the reference. 0: the edge is the skull's edge.
    head_outline_width_input_px: float = 0.0


@dataclass(frozen=True)
class ModelManifest:
    name: str
    version: str
    file: Path
    sha256: str
    input_name: str
    input_spec: InputSpec
    outputs: OutputSpec
    placeholder: bool = False
    contract: str = "workstation"
    uncertainty: UncertaintyCalibration | None = None  # None: the pipeline's fixed blend of signals
    # Below this probability of the axial-head-plane class the AI's head biometry is withheld
    # (head_biometry.min_plane_probability; workstation.inference.pipeline.check_ai_biometry). None: no floor.
    min_head_plane_probability: float | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        """"psfh-multitask 1.2.0" (:func:`model_label`)."""
        return model_label(self.name, self.version)

    @property
    def manifest_path(self) -> Path:
        return self.file.with_suffix(".json")

    def describe(self) -> dict:
        """The model identity every output carries."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "placeholder": self.placeholder,
                "contract": self.contract}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _require(mapping: dict, key: str, where: str):
    if key not in mapping:
        raise ModelError(f"model manifest {where} lacks the key {key!r}")
    return mapping[key]


def read_manifest(path: str | Path) -> ModelManifest:
    """Parse a manifest; raises ModelError with a one-line reason when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model manifest not found: {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"model manifest {path.name} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelError(f"model manifest {path.name} must be a JSON object")
    where = path.name
    contract = raw.get("contract", "workstation")
    model_file = path.parent / _require(raw, "file", where)
    name = str(_require(raw, "name", where))
    version = str(_require(raw, "version", where))
    sha256 = str(_require(raw, "sha256", where)).lower()
    inputs = _require(raw, "input", where)
    outputs = _require(raw, "outputs", where)
    try:
        if contract == "laborview":
            # LaborView: 1x3xHxW, scaled to [-1, 1], resized straight to the input size.
            shape = inputs.get("shape", [1, 3, 256, 256])
            spec = InputSpec(height=int(shape[2]), width=int(shape[3]), channels=3, resize=inputs.get("resize", "stretch"),
                             scale=255.0, mean=0.5, std=0.5)
            input_name = inputs.get("name", "image")
        elif contract == "workstation":
            shape = _require(inputs, "shape", where + " input")
            norm = inputs.get("normalisation", {})
            spec = InputSpec(height=int(shape[2]), width=int(shape[3]), channels=int(inputs.get("channels", shape[1])),
                             resize=inputs.get("resize", "letterbox"), scale=float(norm.get("scale", 255.0)),
                             mean=float(norm.get("mean", 0.5)), std=float(norm.get("std", 0.5)))
            input_name = _require(inputs, "name", where + " input")
        else:
            raise ModelError(f"model manifest {where} names an unknown contract {contract!r} (workstation or laborview)")
        seg = _require(outputs, "segmentation", where + " outputs")
        plane = outputs.get("plane") or {}
        regression = outputs.get("regression") or {}
        fields = tuple(regression.get("fields", ("aop_deg", "hsd_px")))
        output_spec = OutputSpec(
            segmentation=seg["name"],
            plane=plane.get("name"),
            plane_classes=tuple(plane.get("classes", DEFAULT_PLANE_CLASSES)),
            regression=regression.get("name"),
            regression_fields=fields,
            regression_scale=tuple(float(s) for s in regression.get("scale", [1.0] * len(fields))),
            hsd_units=regression.get("hsd_units", "input_px"),
            head_outline_width_input_px=float(seg.get("head_outline_width_input_px", 0.0)),
        )
        if not 0.0 <= output_spec.head_outline_width_input_px <= MAX_HEAD_OUTLINE_WIDTH_INPUT_PX:
            raise ModelError(f"model manifest {where}: head_outline_width_input_px must be between 0 and "
                             f"{MAX_HEAD_OUTLINE_WIDTH_INPUT_PX} input pixels, not "
                             f"{output_spec.head_outline_width_input_px}")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"model manifest {where} is malformed: {exc}") from None
    class_map = raw.get("class_map", {str(k): v for k, v in SEGMENTATION_CLASSES.items()})
    if {int(k): v for k, v in class_map.items()} != SEGMENTATION_CLASSES:
        raise ModelError(f"model manifest {where} has class map {class_map}; the workstation needs "
                         "0 background, 1 pubic_symphysis, 2 fetal_head")
    return ModelManifest(name=name, version=version, file=model_file, sha256=sha256, input_name=input_name,
                         input_spec=spec, outputs=output_spec, placeholder=bool(raw.get("placeholder", False)),
                         contract=contract, uncertainty=calibration_from_manifest(raw, where),
                         min_head_plane_probability=_head_plane_floor(raw, where), raw=raw)


def _head_plane_floor(raw: dict, where: str) -> float | None:
    floor = (raw.get("head_biometry") or {}).get("min_plane_probability")
    if floor is None:
        return None
    if not isinstance(floor, (int, float)) or not 0.0 <= floor <= 1.0:
        raise ModelError(f"model manifest {where}: head_biometry.min_plane_probability must be a probability, "
                         f"got {floor!r}")
    return float(floor)


def verify(manifest: ModelManifest) -> None:
    """Refuse a model whose file is missing or whose bytes are not the ones the manifest describes."""
    if not manifest.file.is_file():
        raise ModelError(f"model file {manifest.file} named by {manifest.manifest_path.name} is missing")
    actual = file_sha256(manifest.file)
    if actual != manifest.sha256:
        raise ModelError(f"model {manifest.name} refused: {manifest.file.name} has sha256 {actual[:12]}..., "
                         f"its manifest says {manifest.sha256[:12]}... (file changed or corrupted)")
