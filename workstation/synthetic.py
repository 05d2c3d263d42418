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


def _acoustic_shadow(shape, apex, occluder: np.ndarray, radius: float) -> np.ndarray:
    """1 in the tissue that a bright bone (``occluder``) hides from a probe at ``apex``, 0 elsewhere."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    dx, dy = cols - apex[0], rows - apex[1]
    theta = np.degrees(np.arctan2(dx, dy))
    r = np.hypot(dx, dy)
    bins = np.round(theta * 2).astype(np.int32)  # half-degree beams
    beam_far_edge = np.full(721, np.inf, np.float32)
    occ_bins, occ_r = bins[occluder], r[occluder]
    np.maximum.at(beam_far_edge, occ_bins + 360, occ_r) if occ_bins.size else None
    beam_far_edge[~np.isin(np.arange(721), occ_bins + 360)] = np.inf
    shadow = r > beam_far_edge[np.clip(bins + 360, 0, 720)]
    return cv2.GaussianBlur(shadow.astype(np.float32), (0, 0), 3.0)


def make_transperineal_cine(n_frames: int = 48, shape: tuple[int, int] = (480, 640), seed: int = 0,
                            descent_deg: float = 25.0, size: float = 1.4) -> SyntheticCine:
    """Frames and exact labels of a descending fetal head; ``descent_deg`` is the head's rotation over the cine.

    Laid out as on PSFHS frames: the symphysis a small echogenic oval under the probe, rising to the right,
    with an acoustic shadow behind it; the head a tall hypoechoic ellipse below it whose skull echo is
    bright where it faces the probe and fades where the beam grazes it.
    """
    if n_frames < 1:
        raise ValueError("a cine needs at least one frame")
    rng = np.random.default_rng(seed)
    h, w = shape
    scale = min(h / 480.0, w / 640.0)
    anatomy = scale * size  # structures fill about as much of the frame as on PSFHS images
    apex = (w / 2.0, -0.03 * h)
    radius = 1.04 * h
    sector = _sector_mask(shape, apex, 60.0, radius)
    ps_center = (w * 0.40, h * 0.19)
    ps_axes = (50 * anatomy, 19 * anatomy)
    ps_angle = -22.0
    # The PS inferior end is the end of its long axis toward the head (to the right here).
    rad = np.radians(ps_angle)
    inferior = np.array([ps_center[0] + ps_axes[0] * np.cos(rad), ps_center[1] + ps_axes[0] * np.sin(rad)])
    head_axes = (92 * anatomy, 112 * anatomy)
    head_distance = 160 * anatomy
    rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    # Soft tissue: brighter in the near field, blotchy, with bright fascial bands under the probe.
    blotches = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), sigmaX=7 * scale, sigmaY=3 * scale)
    tissue = (0.55 + 0.9 * (blotches - blotches.mean()) / (blotches.std() + 1e-6) * 0.12) * (1.3 - 0.75 * rows)
    for _ in range(9):
        x0, y0 = rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.05 * h, 0.45 * h)
        cv2.ellipse(tissue, (int(x0), int(y0)), (int(rng.uniform(40, 120) * scale), int(rng.uniform(10, 40) * scale)),
                    float(rng.uniform(-35, 35)), 190, 350, float(rng.uniform(1.2, 1.9)), max(1, int(2.5 * scale)))
    for _ in range(3):  # hypoechoic vessels / bladder neck beside the symphysis
        x0, y0 = rng.uniform(0.2 * w, 0.38 * w), rng.uniform(0.15 * h, 0.35 * h)
        cv2.circle(tissue, (int(x0), int(y0)), int(rng.uniform(6, 14) * scale), 0.15, -1)
    tissue = cv2.GaussianBlur(tissue, (0, 0), 1.5 * scale)
    static_speckle = _speckle(rng, shape, 1.2)
    brain_echoes = np.zeros(shape, np.float32)
    frames = np.empty((n_frames, h, w), np.uint8)
    labels = np.empty((n_frames, h, w), np.uint8)
    row_grid, col_grid = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        # Head centre rotates about the inferior end of the symphysis as the head descends.
        bearing = np.radians(85.0 - descent_deg * t)
        head_center = (inferior[0] + head_distance * np.cos(bearing), inferior[1] + head_distance * np.sin(bearing))
        head_angle = 8.0 - 10.0 * t
        head = _ellipse_mask(shape, head_center, head_axes, head_angle) & sector
        ps_full = _ellipse_mask(shape, ps_center, ps_axes, ps_angle) & sector
        ps = ps_full & ~head
        label = np.zeros(shape, np.uint8)
        label[ps] = 1
        label[head] = 2
        speckle = 0.7 * static_speckle + 0.3 * _speckle(rng, shape, 1.2)
        echo = tissue.copy()
        # Brain: hypoechoic, a faint midline and a few internal echoes.
        brain_echoes[:] = 0
        cx, cy = int(head_center[0]), int(head_center[1])
        cv2.ellipse(brain_echoes, (cx, cy), (int(head_axes[0] * 0.08), int(head_axes[1] * 0.6)), head_angle,
                    120, 300, 0.25, max(1, int(2 * scale)))
        cv2.ellipse(brain_echoes, (cx, cy + int(10 * scale)), (int(head_axes[0] * 0.45), int(head_axes[1] * 0.3)),
                    head_angle, 200, 340, 0.3, max(1, int(2 * scale)))
        echo[head] = 0.22 + 0.15 * blotches[head] + brain_echoes[head]
        # Skull: a thick bright rim, brightest where it faces the probe (upward), fading where the beam grazes.
        inner = _ellipse_mask(shape, head_center, (head_axes[0] - 13 * scale, head_axes[1] - 13 * scale), head_angle)
        rim = head & ~inner
        facing = np.clip(-(row_grid - head_center[1]) / head_axes[1], -1, 1)
        echo[rim] = (0.35 + 2.1 * np.clip(0.15 + facing[rim], 0, 1) ** 1.5) * (0.8 + 0.4 * static_speckle[rim] / 2)
        # Symphysis: echogenic fibrocartilage with a bright bony outline, and the bone's shadow beneath.
        echo[ps] = 0.75 + 0.9 * blotches[ps]
        ps_rim = ps & ~_ellipse_mask(shape, ps_center, (ps_axes[0] - 6 * scale, ps_axes[1] - 6 * scale), ps_angle)
        echo[ps_rim & (row_grid < ps_center[1] + 4 * scale)] = 2.0  # the bone surface facing the probe
        echo *= 1.0 - 0.55 * _acoustic_shadow(shape, apex, ps_full, radius) * (~ps_full)
        image = echo * speckle * 70.0
        image = cv2.GaussianBlur(image, (0, 0), 0.8)
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
