"""Frame <-> model-input geometry, shared by the inference engine and the training code.

One implementation on purpose: a model trained with one resize and run with another
sees distorted anatomy, and angles (AoP) are not invariant to anisotropic stretching.

``letterbox`` pads the frame to a square (centred, black) and resizes it, keeping the
aspect ratio; ``stretch`` resizes straight to the input size (for contracts that ask
for it, such as LaborView's).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from workstation.io.cine import to_gray


@dataclass(frozen=True)
class InputSpec:
    """What a model wants: size, channels, resize mode and normalisation x = (p / scale - mean) / std."""

    height: int
    width: int
    channels: int = 1  # 1 = grayscale, 3 = grayscale repeated (ultrasound is grey)
    resize: str = "letterbox"  # or "stretch"
    scale: float = 255.0
    mean: float = 0.5
    std: float = 0.5

    def __post_init__(self):
        if self.resize not in ("letterbox", "stretch"):
            raise ValueError(f"unknown resize mode {self.resize!r} (letterbox or stretch)")
        if self.channels not in (1, 3):
            raise ValueError(f"a model input needs 1 or 3 channels, not {self.channels}")


@dataclass(frozen=True)
class Placement:
    """Where the frame sits inside the model input, to map outputs back."""

    frame_height: int
    frame_width: int
    pad_top: int  # padding in frame pixels (letterbox), before resizing
    pad_left: int
    side_h: int  # padded size in frame pixels
    side_w: int


def place(frame_shape: tuple[int, ...], spec: InputSpec, aspect: float = 1.0) -> Placement:
    """Letterbox: the frame centred on a padded area that is square in the patient, so that the model sees anatomy
    in its true shape. ``aspect``: mm per pixel row over mm per pixel column (1 for square pixels)."""
    h, w = int(frame_shape[0]), int(frame_shape[1])
    if spec.resize == "stretch":
        return Placement(h, w, 0, 0, h, w)
    side_w = max(w, int(math.ceil(h * aspect)))  # in columns' widths (square pixels: max(h, w) both ways)
    side_h = max(h, int(round(side_w / aspect)))
    return Placement(h, w, (side_h - h) // 2, (side_w - w) // 2, side_h, side_w)


def frame_to_input(frame: np.ndarray, spec: InputSpec, aspect: float = 1.0) -> tuple[np.ndarray, Placement]:
    """(C, H, W) float32 model input for one frame, and its placement (``aspect``: see ``place``)."""
    gray = to_gray(frame)
    placement = place(gray.shape, spec, aspect)
    if placement.pad_top or placement.pad_left or placement.side_h != gray.shape[0] or placement.side_w != gray.shape[1]:
        canvas = np.zeros((placement.side_h, placement.side_w), np.uint8)
        canvas[placement.pad_top:placement.pad_top + gray.shape[0], placement.pad_left:placement.pad_left + gray.shape[1]] = gray
        gray = canvas
    resized = cv2.resize(gray, (spec.width, spec.height), interpolation=cv2.INTER_AREA
                         if gray.shape[0] > spec.height else cv2.INTER_LINEAR)
    x = (resized.astype(np.float32) / spec.scale - spec.mean) / spec.std
    x = np.repeat(x[None], spec.channels, axis=0)
    return x, placement


def labels_to_input(labels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A label map placed like its image (nearest neighbour), for training targets."""
    placement = place(labels.shape, spec)
    canvas = np.zeros((placement.side_h, placement.side_w), labels.dtype)
    canvas[placement.pad_top:placement.pad_top + labels.shape[0], placement.pad_left:placement.pad_left + labels.shape[1]] = labels
    return cv2.resize(canvas, (spec.width, spec.height), interpolation=cv2.INTER_NEAREST)


def labels_to_frame(labels: np.ndarray, placement: Placement) -> np.ndarray:
    """A label map at model resolution -> at frame resolution (nearest neighbour); the inverse of labels_to_input."""
    full = cv2.resize(labels, (placement.side_w, placement.side_h), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(full[placement.pad_top:placement.pad_top + placement.frame_height,
                                     placement.pad_left:placement.pad_left + placement.frame_width])


def maps_to_frame(maps: np.ndarray, placement: Placement) -> np.ndarray:
    """(C, h, w) per-pixel maps at model resolution -> (C, H, W) at frame resolution (bilinear)."""
    out = []
    for channel in maps:
        full = cv2.resize(channel.astype(np.float32), (placement.side_w, placement.side_h), interpolation=cv2.INTER_LINEAR)
        out.append(full[placement.pad_top:placement.pad_top + placement.frame_height,
                        placement.pad_left:placement.pad_left + placement.frame_width])
    return np.stack(out)


def input_px_to_frame_px(length_px: float, spec: InputSpec, placement: Placement) -> float:
    """A length measured in model-input pixels, in frame pixel columns (letterbox keeps the patient's shape)."""
    return float(length_px) * placement.side_w / spec.width
