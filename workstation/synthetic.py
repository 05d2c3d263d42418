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

# Appearance of the synthetic frames (echo levels relative to soft tissue ~1), tuned by eye and against the shipped
# model so that the demo looks like PSFHS frames; none of these touch the label maps.
_LOOK = dict(
    tissue_patches=0.385, tissue_layers=0.15, tissue_layers_near=0.0, tissue_top=1.099, tissue_drop=0.4,
    lateral=1.5, subcutaneous=0.253, ps_base=1.13, ps_blobs=1.13, ps_streaks=0.537, ps_line_low=1.788,
    ps_line_up=1.5, ps_line_px=2.384, ps_halo=0.6, ps_halo_px=17.542, ps_halo_low=1.0, shadow=0.677,
    skull_near=3.5, skull_far=1.43, brain=0.398, brain_mottle=0.314, gain=50.839, gamma=1.246, speckle=0.861,
    ps_core=0.285, shadow_blur=6.266,
    head_edge_px=1.5, skull_floor=0.08, ps_halo_gap=14.0,
)


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


def _smooth_noise(rng: np.random.Generator, shape, sigma_x: float, sigma_y: float | None = None) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian noise smoothed to blobs of about ``sigma`` pixels."""
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigmaX=max(sigma_x, 0.1),
                             sigmaY=max(sigma_y if sigma_y is not None else sigma_x, 0.1))
    return (noise - noise.mean()) / (noise.std() + 1e-6)


class _Fan:
    """Beam geometry of a sector probe: per-pixel range and angle, and a polar grid for beam-shaped textures.

    Speckle and tissue layers are drawn on the polar (range x angle) grid and scan-converted with
    ``cv2.remap``, so grains lengthen across the beam and grow with depth as on a real sector image.
    """

    def __init__(self, shape, apex, half_angle_deg: float, radius: float, scale: float):
        h, w = shape
        self.shape, self.apex, self.half_angle, self.radius = shape, apex, half_angle_deg, radius
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
        self.rows, self.cols = rows, cols
        dx, dy = cols - apex[0], rows - apex[1]
        self.r = np.hypot(dx, dy)
        self.theta = np.degrees(np.arctan2(dx, dy))
        self.under = self.r - radius * 0.12  # px below the probe face (the sector's inner arc)
        self.beam = np.stack([dx / np.maximum(self.r, 1e-3), dy / np.maximum(self.r, 1e-3)])  # unit vector from apex
        self.n_r = int(np.ceil(radius)) + 2
        self.n_t = max(64, int(round(520 * scale)))
        self.map_r = self.r.copy()
        self.map_t = ((self.theta + half_angle_deg) / (2 * half_angle_deg) * (self.n_t - 1)).astype(np.float32)

    def to_image(self, polar: np.ndarray) -> np.ndarray:
        return cv2.remap(polar, self.map_t, self.map_r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def speckle(self, rng: np.random.Generator, grain: float) -> np.ndarray:
        """Fully developed speckle: the envelope of band-limited complex noise (Rayleigh, mean 1), grains about
        ``grain`` px along the beam and ~2.5x that across it."""
        re, im = rng.standard_normal((2, self.n_r, self.n_t), dtype=np.float32)
        sx, sy = 1.3 * grain, 0.55 * grain
        re = cv2.GaussianBlur(re, (0, 0), sigmaX=sx, sigmaY=sy)
        im = cv2.GaussianBlur(im, (0, 0), sigmaX=sx, sigmaY=sy)
        envelope = np.sqrt(re * re + im * im)
        return self.to_image(envelope / envelope.mean())


def _local(fan: _Fan, center, axes, angle_deg: float, box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ellipse-local coordinates (u, v) in units of the semi-axes, and rho = |(u, v)|, over the slice ``box``."""
    a = np.radians(angle_deg)
    dx = fan.cols[box] - center[0]
    dy = fan.rows[box] - center[1]
    u = (np.cos(a) * dx + np.sin(a) * dy) / axes[0]
    v = (-np.sin(a) * dx + np.cos(a) * dy) / axes[1]
    return u, v, np.sqrt(u * u + v * v)


def _box(shape, center, axes, margin: float):
    h, w = shape
    ext = max(axes) + margin
    return (slice(int(max(0, np.floor(center[1] - ext))), int(min(h, np.ceil(center[1] + ext + 1)))),
            slice(int(max(0, np.floor(center[0] - ext))), int(min(w, np.ceil(center[0] + ext + 1)))))


def _outward_echo(fan: _Fan, u, v, axes, angle_deg: float, box) -> np.ndarray:
    """Signed cosine between the beam and an ellipse's outward normal: -1 facing the probe, +1 facing away."""
    a = np.radians(angle_deg)
    nu, nv = u / axes[0], v / axes[1]
    nx, ny = np.cos(a) * nu - np.sin(a) * nv, np.sin(a) * nu + np.cos(a) * nv
    norm = np.sqrt(nx * nx + ny * ny) + 1e-6
    return (fan.beam[0][box] * nx + fan.beam[1][box] * ny) / norm


def _angular_profile(rng: np.random.Generator, n: int, smooth: float, low: float, high: float) -> np.ndarray:
    """A random periodic profile over ``n`` angular bins, between ``low`` and ``high``."""
    noise = np.tile(rng.standard_normal(n).astype(np.float32), 3)  # periodic: no seam at +-180 deg
    k = int(6 * smooth) | 1
    kernel = cv2.getGaussianKernel(k, smooth).ravel().astype(np.float32)
    noise = np.convolve(noise, kernel, mode="same")[n:2 * n]
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-6)
    return low + (high - low) * noise


def _acoustic_shadow(fan: _Fan, occluder: np.ndarray, blur: float) -> np.ndarray:
    """1 in the tissue that a bright bone (``occluder``) hides from the probe, 0 elsewhere (soft-edged)."""
    bins = np.round(fan.theta * 2).astype(np.int32)  # half-degree beams
    beam_far_edge = np.full(721, np.inf, np.float32)
    occ_bins, occ_r = bins[occluder] + 360, fan.r[occluder]
    if occ_bins.size:
        near = np.full(721, -np.inf, np.float32)
        np.maximum.at(near, occ_bins, occ_r)
        hit = np.isfinite(near)
        beam_far_edge[hit] = near[hit]
    shadow = fan.r > beam_far_edge[np.clip(bins + 360, 0, 720)]
    return cv2.GaussianBlur(shadow.astype(np.float32), (0, 0), blur)


def _tissue(rng: np.random.Generator, fan: _Fan, scale: float) -> np.ndarray:
    """Static echogenicity of the maternal soft tissue (1 ~ a mid-grey), before speckle.

    As on PSFHS frames: a bright skin line and a darker subcutaneous layer right under the probe, then
    layered, moderately bright perineal tissue with a few thin bright fascial lines, darker and more
    uniform with depth, broad patches, a brighter lateral zone on the right, a few hypoechoic vessels.
    """
    h, w = fan.shape
    depth = np.clip(fan.r / fan.radius, 0.0, 1.0)
    under = fan.under / max(scale, 0.25)  # px below the probe face, at 480-row scale
    near = np.clip(1.0 - (depth - 0.12) / 0.33, 0.0, 1.0)  # 1 under the probe, 0 beyond ~45% of the range
    layers = cv2.GaussianBlur(rng.standard_normal((fan.n_r, fan.n_t)).astype(np.float32), (0, 0),
                              sigmaX=14.0 * max(scale, 0.3), sigmaY=2.8 * scale)
    layers = fan.to_image(layers / (layers.std() + 1e-6))
    patches = _smooth_noise(rng, (h, w), 30 * scale)
    look = _LOOK
    tissue = np.maximum(look['tissue_top'] - look['tissue_drop'] * np.clip((depth - 0.12) / 0.88, 0, 1) ** 0.7, 0.1) \
        * np.exp(look['tissue_patches'] * patches + (look['tissue_layers'] + look['tissue_layers_near'] * near) * layers)
    tissue *= 1.0 - look['subcutaneous'] * np.exp(-((under - 16.0) / 12.0) ** 2)  # subcutaneous fat, darker
    tissue += 0.9 * np.exp(-((under - 2.5) / 2.0) ** 2)  # skin / gel interface
    lateral = np.clip((fan.cols - 0.66 * w) / (0.12 * w), 0, 1) * np.clip((fan.rows - 0.30 * h) / (0.15 * h), 0, 1)
    tissue *= 1.0 + look['lateral'] * cv2.GaussianBlur(lateral.astype(np.float32), (0, 0), 12 * scale)
    # A few thin bright fascial lines roughly parallel to the skin, in the near field.
    bands = np.zeros((h, w), np.float32)
    for _ in range(6):
        x0, y0 = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.12 * h, 0.45 * h)
        cv2.ellipse(bands, (int(x0), int(y0)), (int(rng.uniform(60, 170) * scale), int(rng.uniform(12, 45) * scale)),
                    float(rng.uniform(-30, 30)), float(rng.uniform(195, 235)), float(rng.uniform(305, 345)),
                    float(rng.uniform(0.4, 0.9)), max(1, int(round(rng.uniform(1.5, 3.0) * scale))))
    tissue += cv2.GaussianBlur(bands, (0, 0), 1.3 * scale) * (0.3 + 0.7 * near)
    for _ in range(3):  # hypoechoic vessels / urethra beside the symphysis
        x0, y0 = rng.uniform(0.15 * w, 0.36 * w), rng.uniform(0.2 * h, 0.38 * h)
        vessel = np.zeros((h, w), np.float32)
        cv2.ellipse(vessel, (int(x0), int(y0)), (int(rng.uniform(6, 16) * scale), int(rng.uniform(4, 9) * scale)),
                    float(rng.uniform(-40, 40)), 0, 360, 1.0, -1)
        tissue *= 1.0 - 0.6 * cv2.GaussianBlur(vessel, (0, 0), 2.0 * scale)
    return tissue.astype(np.float32)


def _warp_local(texture: np.ndarray, center, angle_deg: float, box) -> np.ndarray:
    """Place a texture drawn in an ellipse's own frame (its centre at the texture's middle, x along the
    long axis) into the image slice ``box``, rotated by ``angle_deg`` about ``center``."""
    a = np.radians(angle_deg)
    to_image = np.array([[np.cos(a), -np.sin(a), center[0]], [np.sin(a), np.cos(a), center[1]]])
    to_image[:, 2] -= to_image[:, :2] @ np.array([texture.shape[1] / 2.0, texture.shape[0] / 2.0])
    to_image[:, 2] -= (box[1].start, box[0].start)
    height, width = box[0].stop - box[0].start, box[1].stop - box[1].start
    return cv2.warpAffine(texture, to_image, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _symphysis(rng: np.random.Generator, fan: _Fan, center, axes, angle_deg: float, scale: float):
    """Echo of the pubic symphysis over its box, as on PSFHS frames: echogenic bone and fibrocartilage,
    brighter than the tissue around it, with clusters of bright clumps and streaks along its long axis and
    darker gaps between them, a bright, broken cortical line along its lower (fetal) side, a fainter one
    along its upper side, and a soft, irregular outline.
    Returns (box, echo, weight, halo): the image slice, the echo there, its blending weight, and the factor that
    darkens the tissue around it (hypoechoic fat and ligament, darker toward the probe)."""
    look = _LOOK
    box = _box(fan.shape, center, axes, (look['ps_halo_px'] + 14) * scale)
    u, v, rho = _local(fan, center, axes, angle_deg, box)
    phi = np.arctan2(v, u)
    side = int(2 * max(axes) + 60 * scale)
    blobs = _smooth_noise(rng, (side, side), 5.0 * scale, 2.6 * scale)  # x: along the long axis
    streaks = _smooth_noise(rng, (side, side), 9.0 * scale, 1.6 * scale)
    coarse = _smooth_noise(rng, (side, side), 12.0 * scale, 6.0 * scale)
    texture = look['ps_base'] * np.exp(0.25 * coarse) * np.where(blobs < -1.0, 0.6, 1.0) \
        + look['ps_blobs'] * np.clip(blobs - 0.3, 0, None) + look['ps_streaks'] * np.clip(streaks - 1.0, 0, None)
    echo = _warp_local(texture.astype(np.float32), center, angle_deg, box)
    echo = echo * (1.0 + look['ps_core'] * np.exp(-(u / 0.8) ** 2 - (v / 0.55) ** 2))  # brightest along its axis
    bins = ((phi + np.pi) / (2 * np.pi) * 359).astype(np.int32)
    wobble = _angular_profile(rng, 360, 8.0, -2.5, 2.5)[bins] * scale
    edge = (1.0 - rho) * min(axes) + wobble  # ~ px inside the (irregular) outline
    # Cortex: a bright, broken line just inside the lower outline; a fainter one inside the upper outline.
    lower = np.clip(v * 1.5 + 0.4, 0, 1)
    upper = np.clip(-v * 1.5, 0, 1)
    gain_low = _angular_profile(rng, 360, 7.0, 0.5, 1.5)[bins]
    gain_up = _angular_profile(rng, 360, 7.0, 0.0, 1.0)[bins]
    line = np.exp(-((edge - look['ps_line_px'] * scale) / (2.4 * scale)) ** 2)
    echo = echo + line * (look['ps_line_low'] * gain_low * lower + look['ps_line_up'] * gain_up * upper)
    weight = np.clip(edge / (4.0 * scale) + 0.5, 0.0, 1.0)
    out = np.clip(-edge, 0, None)  # px outside the outline
    ring = np.exp(-(np.clip(out - look['ps_halo_gap'] * scale, 0, None) / (look['ps_halo_px'] * scale)) ** 2)
    ring *= np.clip(out / (max(look['ps_halo_gap'], 0.5) * scale), 0, 1)  # normal tissue right at the outline
    halo = 1.0 - look['ps_halo'] * ring * (look['ps_halo_low'] + (1 - look['ps_halo_low']) * np.clip(-v, 0, 1))
    return box, echo.astype(np.float32), weight.astype(np.float32), halo.astype(np.float32)


def _brain_texture(rng: np.random.Generator, axes, scale: float) -> np.ndarray:
    """The head's interior in head-local pixels (centre at the middle): hypoechoic, mottled, a few faint echoes."""
    hh, hw = int(2 * axes[1] + 8), int(2 * axes[0] + 8)
    mottle = _smooth_noise(rng, (hh, hw), 5.0 * scale, 3.5 * scale)
    coarse = _smooth_noise(rng, (hh, hw), 14.0 * scale)
    brain = _LOOK['brain'] * np.exp(_LOOK['brain_mottle'] * mottle + 0.4 * coarse)
    echoes = np.zeros((hh, hw), np.float32)
    for _ in range(6):  # short faint curvilinear echoes (sulci, choroid, sutures) - no midline
        cx, cy = rng.uniform(0.25, 0.75) * hw, rng.uniform(0.25, 0.75) * hh
        start = float(rng.uniform(0, 360))
        cv2.ellipse(echoes, (int(cx), int(cy)), (int(rng.uniform(8, 30) * scale), int(rng.uniform(4, 16) * scale)),
                    float(rng.uniform(0, 180)), start, start + float(rng.uniform(40, 120)),
                    float(rng.uniform(0.5, 1.5) * _LOOK['brain']), max(1, int(round(1.5 * scale))))
    return (brain + cv2.GaussianBlur(echoes, (0, 0), 1.0 * scale)).astype(np.float32)


def make_transperineal_cine(n_frames: int = 48, shape: tuple[int, int] = (480, 640), seed: int = 0,
                            descent_deg: float = 25.0, size: float = 1.4) -> SyntheticCine:
    """Frames and exact labels of a descending fetal head; ``descent_deg`` is the head's rotation over the cine.

    Laid out as on PSFHS frames: the symphysis a bright, clumpy, irregularly outlined structure just under the
    probe, rising to the right, inside bright layered near-field tissue and casting an acoustic shadow; the head a
    tall hypoechoic, mottled ellipse below it whose skull echo is bright where it faces the probe, fainter at the
    far side and fading where the beam grazes it. Grey levels and speckle are tuned to look like PSFHS images.
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
    ps_full = _ellipse_mask(shape, ps_center, ps_axes, ps_angle) & sector

    fan = _Fan(shape, apex, 60.0, radius, scale)
    tissue = _tissue(rng, fan, scale)
    ps_box, ps_echo, ps_weight, ps_halo = _symphysis(rng, fan, ps_center, ps_axes, ps_angle, scale)
    brain = _brain_texture(rng, head_axes, scale)
    rim_gain = _angular_profile(rng, 360, 10.0, 0.75, 1.3)
    rim_thick = _angular_profile(rng, 360, 14.0, 8.0, 14.0) * scale
    # The bone hides what lies behind it; the shadow is static (the symphysis does not move).
    look = _LOOK
    shadow = 1.0 - look['shadow'] * _acoustic_shadow(fan, ps_full, look['shadow_blur'] * scale) * (~ps_full)
    tissue[ps_box] *= ps_halo
    base = tissue * shadow
    static_speckle = fan.speckle(rng, 1.3 * scale)

    frames = np.empty((n_frames, h, w), np.uint8)
    labels = np.empty((n_frames, h, w), np.uint8)
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        # Head centre rotates about the inferior end of the symphysis as the head descends.
        bearing = np.radians(85.0 - descent_deg * t)
        head_center = (inferior[0] + head_distance * np.cos(bearing), inferior[1] + head_distance * np.sin(bearing))
        head_angle = 8.0 - 10.0 * t
        head = _ellipse_mask(shape, head_center, head_axes, head_angle) & sector
        ps = ps_full & ~head
        label = np.zeros(shape, np.uint8)
        label[ps] = 1
        label[head] = 2

        echo = base.copy()
        ps_region = echo[ps_box]
        ps_region += ps_weight * (ps_echo * shadow[ps_box] - ps_region)
        # Head: mottled hypoechoic brain (moved with the head) inside a thick, irregular skull echo.
        box = _box(shape, head_center, head_axes, 6 * scale)
        u, v, rho = _local(fan, head_center, head_axes, head_angle, box)
        inside = _warp_local(brain, head_center, head_angle, box)
        facing = _outward_echo(fan, u, v, head_axes, head_angle, box)
        bins = ((np.arctan2(v, u) + np.pi) / (2 * np.pi) * 359).astype(np.int32)
        thick = rim_thick[bins]
        edge = (1.0 - rho) * np.sqrt(head_axes[0] * head_axes[1])  # ~ px inside the skull's outer surface
        skull = np.exp(-((edge - 0.4 * thick) / (0.38 * thick)) ** 2)
        # Specular bone: bright where the beam meets it square-on from the probe side, fainter at the far side.
        skull *= rim_gain[bins] * (look['skull_floor'] + look['skull_near'] * np.clip(-facing, 0, 1) ** 1.6
                                   + look['skull_far'] * np.clip(facing, 0, 1) ** 3)
        head_echo = inside * shadow[box] * (0.55 + 0.45 * np.clip(edge / (3 * thick), 0, 1)) + skull
        inner = np.clip(edge / (look['head_edge_px'] * scale) + 0.5, 0.0, 1.0)  # soft edge of the head
        region = echo[box]
        region += inner * (head_echo - region) + np.clip(skull - 0.3, 0, None) * (1 - inner) * (edge > -3 * scale)
        speckle = 0.75 * static_speckle + 0.25 * fan.speckle(rng, 1.3 * scale)
        image = echo * speckle ** look['speckle']
        image = cv2.GaussianBlur(image, (0, 0), 0.6 * max(scale, 0.5))
        image = look['gain'] * image ** look['gamma']  # display gain and log-like compression
        image = np.where(sector, np.maximum(image, 1.0), 0.0)  # never 0 inside: the imaged area stays exact
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
