"""The project's own synthetic transperineal cine: demo data and test fixtures, no patient in it.

A probe at the top of a fan-shaped sector, the pubic symphysis as an echogenic oval
near the probe, and the fetal head as a large ellipse with a bright skull rim that
descends (rotates about the symphysis' inferior end, away from the probe) over the cine,
so the angle of progression rises from frame to frame as it does in the second stage.
Each frame comes with its exact label map (0 background, 1 PS, 2 FH).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

DEMO_MM_PER_PX = 0.2  # a 480-row frame then spans 9.6 cm, a usual transperineal depth
DEMO_FRAME_TIME_MS = 40.0  # 25 frames per second


@dataclass(frozen=True)
class SyntheticCine:
    frames: np.ndarray  # (n, H, W) uint8
    labels: np.ndarray  # (n, H, W) uint8
    mm_per_px: float
    frame_time_ms: float


def _sector_mask(shape: tuple[int, int], apex: tuple[float, float], half_angle_deg: float, radius: float) -> np.ndarray:
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    dx, dy = cols - apex[0], rows - apex[1]
    r = np.hypot(dx, dy)
    theta = np.degrees(np.arctan2(dx, dy))
    return (np.abs(theta) <= half_angle_deg) & (r <= radius) & (r >= radius * 0.12)


def _ellipse_mask(shape, center, axes, angle_deg) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (round(center[0] * 16), round(center[1] * 16)), (round(axes[0] * 16), round(axes[1] * 16)),
                angle_deg, 0, 360, 1, -1, cv2.LINE_8, 4)
    return mask.astype(bool)


def _speckle(rng: np.random.Generator, shape, smooth: float) -> np.ndarray:
    # Rayleigh-distributed speckle, blurred more along x than y as a beam pattern is.
    noise = rng.rayleigh(1.0, size=shape).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), sigmaX=smooth * 1.6, sigmaY=smooth)


def make_transperineal_cine(n_frames: int = 48, shape: tuple[int, int] = (480, 640), seed: int = 0,
                            descent_deg: float = 25.0, size: float = 1.4) -> SyntheticCine:
    """Frames and exact labels of a descending fetal head; ``descent_deg`` is the head's rotation over the cine."""
    if n_frames < 1:
        raise ValueError("a cine needs at least one frame")
    rng = np.random.default_rng(seed)
    h, w = shape
    scale = min(h / 480.0, w / 640.0)
    anatomy = scale * size  # structures fill about as much of the frame as on PSFHS images
    apex = (w / 2.0, -0.05 * h)
    sector = _sector_mask(shape, apex, 45.0, 1.08 * h)
    ps_center = (w * 0.42, h * 0.17)
    ps_axes = (50 * anatomy, 19 * anatomy)
    ps_angle = -12.0
    # The PS inferior end is the end of its long axis toward the head (to the right here).
    rad = np.radians(ps_angle)
    inferior = np.array([ps_center[0] + ps_axes[0] * np.cos(rad), ps_center[1] + ps_axes[0] * np.sin(rad)])
    head_axes = (105 * anatomy, 90 * anatomy)
    head_distance = 150 * anatomy
    tissue = 0.45 + 0.5 * cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 12) ** 2 * 4
    # A few bright tissue interfaces (fascia, vaginal walls) so the scene is not a plain texture.
    for _ in range(6):
        x0, y0 = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.3 * h, 0.9 * h)
        cv2.ellipse(tissue, (int(x0), int(y0)), (int(rng.uniform(30, 90) * scale), int(rng.uniform(8, 25) * scale)),
                    float(rng.uniform(-60, 60)), 200, 340, 1.4, max(1, int(3 * scale)))
    static_speckle = _speckle(rng, shape, 1.2)
    frames = np.empty((n_frames, h, w), np.uint8)
    labels = np.empty((n_frames, h, w), np.uint8)
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        # Head centre rotates about the inferior end of the symphysis as the head descends.
        bearing = np.radians(97.0 - descent_deg * t)
        head_center = (inferior[0] + head_distance * np.cos(bearing), inferior[1] + head_distance * np.sin(bearing))
        head_angle = 20.0 - 10.0 * t
        head = _ellipse_mask(shape, head_center, head_axes, head_angle) & sector
        ps = _ellipse_mask(shape, ps_center, ps_axes, ps_angle) & sector & ~head
        label = np.zeros(shape, np.uint8)
        label[ps] = 1
        label[head] = 2
        # Echo texture: tissue, a darker brain inside a bright skull rim, an echogenic symphysis.
        speckle = 0.7 * static_speckle + 0.3 * _speckle(rng, shape, 1.2)
        echo = tissue.copy()
        echo[head] = 0.8 * tissue[head]  # brain: a little darker than the tissue around
        rim = head & ~_ellipse_mask(shape, head_center, (head_axes[0] - 7 * scale, head_axes[1] - 7 * scale), head_angle)
        echo[rim] = 1.9
        echo[ps] = 1.15
        ps_rim = ps & ~_ellipse_mask(shape, ps_center, (ps_axes[0] - 4 * scale, ps_axes[1] - 4 * scale), ps_angle)
        echo[ps_rim] = 1.6
        image = echo * speckle * 110.0
        depth = np.linspace(1.0, 0.55, h, dtype=np.float32)[:, None]  # attenuation with depth
        image = cv2.GaussianBlur(image * depth, (0, 0), 0.8)
        image[~sector] = 0
        frames[i] = np.clip(image, 0, 255).astype(np.uint8)
        labels[i] = label
    return SyntheticCine(frames, labels, DEMO_MM_PER_PX, DEMO_FRAME_TIME_MS)


def write_demo_cine(path: str | Path, n_frames: int = 48, seed: int = 0, patient_id: str = "DEMO-0001",
                    patient_name: str = "Demo^Patient", acquired: datetime | None = None) -> Path:
    """A multi-frame ultrasound DICOM of the synthetic cine, with one calibrated 2D region."""
    from workstation.io.dicom_write import write_multiframe_us

    cine = make_transperineal_cine(n_frames=n_frames, seed=seed)
    sector_rows, sector_cols = np.nonzero(cine.frames.max(axis=0))
    region = (int(sector_cols.min()), int(sector_rows.min()), int(sector_cols.max()), int(sector_rows.max()))
    return write_multiframe_us(Path(path), cine.frames, frame_time_ms=cine.frame_time_ms, mm_per_px=cine.mm_per_px,
                               region=region, patient_id=patient_id, patient_name=patient_name,
                               study_datetime=acquired or datetime(2026, 1, 1, 8, 0, 0),
                               manufacturer="Workstation synthetic",
                               series_description="Synthetic transperineal cine (demo, not a patient)")
