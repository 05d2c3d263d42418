"""The one in-memory type every scan becomes: a :class:`Cine` of lazily decoded frames.

DICOM, video, a single image and a folder of images all load into a ``Cine``: frames
(uint8, ``(H, W)`` grey or ``(H, W, 3)`` RGB), their times in seconds, the calibration
the file gives, and study information.

Frames are decoded on demand and kept in a small cache, because a 120-frame cine
decoded up front costs seconds and hundreds of MB that a user scrubbing to one frame
never needs. Cached frames are read-only: copy a frame before drawing on it.

Frame timing when a file says nothing: ``DEFAULT_FPS = 25``. Transperineal B-mode
sector imaging runs at roughly 15-40 frames per second, and 25 fps is the PAL video
rate many ultrasound machines record their cine/video output at, so a clip played at
25 fps looks close to real time. The default only affects playback speed and time
labels, never a spatial measurement, and is flagged ``frame_time_source="default"`` so
the user can be told the timing is assumed.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from workstation.calibration import Calibration

DEFAULT_FPS = 25.0

# Largest scan we accept; checked from headers before anything is allocated. 8192 x 8192 is
# far above any ultrasound screen capture, 10000 frames is minutes of cine at high frame rates.
MAX_SIDE_PX = 8192
MAX_FRAMES = 10_000

FRAME_TIME_SOURCES = ("FrameTime", "FrameTimeVector", "CineRate", "RecommendedDisplayFrameRate",
                      "video", "default", "single_frame")


@dataclass
class StudyInfo:
    """Who and what a scan is, as far as the file tells. Every field may be ``None``."""

    patient_id: str | None = None
    patient_name: str | None = None
    patient_birth_date: date | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    acquisition_datetime: datetime | None = None
    # Which attribute gave acquisition_datetime: "AcquisitionDateTime", "AcquisitionDate",
    # "ContentDate", "StudyDate", "file_mtime" (non-DICOM: the file's modification time) or "none".
    acquisition_source: str = "none"
    # Where no acquisition time was read although the file has date fields: which, and that they cannot be read
    # (a damaged or hand-edited file); None otherwise.
    acquisition_problem: str | None = None
    manufacturer: str | None = None
    model_name: str | None = None
    modality: str | None = None
    sop_class_name: str | None = None
    transfer_syntax_name: str | None = None
    photometric: str | None = None

    def to_dict(self) -> dict:
        """JSON-safe copy: dates and datetimes as ISO 8601 strings."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, (date, datetime)):
                out[key] = value.isoformat()
        return out


class FrameSequence(Sequence):
    """Frames decoded on demand, with a small LRU cache; safe to read from several threads.

    Subclasses implement ``_decode(index)`` returning a uint8 ``(H, W)`` or ``(H, W, 3)`` array.
    """

    def __init__(self, n_frames: int, frame_shape: tuple[int, int], cache_size: int = 16):
        self._n_frames = int(n_frames)
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = max(1, cache_size)
        # One lock for cache and decoder: a video capture or a file handle is not thread-safe.
        self._lock = threading.RLock()
        self.decode_count = 0  # frames actually decoded (cache misses); tests check laziness with it

    def __len__(self) -> int:
        return self._n_frames

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n_frames))]
        i = int(index)
        if i < 0:
            i += self._n_frames
        if not 0 <= i < self._n_frames:
            raise IndexError(f"frame {index} out of range (the cine has {self._n_frames} frames)")
        with self._lock:
            frame = self._cache.get(i)
            if frame is not None:
                self._cache.move_to_end(i)
                return frame
            frame = self._decode(i)
            self.decode_count += 1
            frame.flags.writeable = False  # a caller drawing on a cached frame would corrupt it
            self._cache[i] = frame
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return frame

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self._n_frames):
            yield self[i]

    def _decode(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release files or decoders held open; the default holds none."""


class ArrayFrames(FrameSequence):
    """Frames already in memory (a single image, or frames built by a program)."""

    def __init__(self, frames: Sequence[np.ndarray] | np.ndarray):
        self._frames = [np.asarray(f) for f in frames]
        if not self._frames:
            raise ValueError("ArrayFrames needs at least one frame")
        for f in self._frames:
            if f.dtype != np.uint8 or f.ndim not in (2, 3) or f.shape != self._frames[0].shape:
                raise ValueError("ArrayFrames needs uint8 frames of one shape, (H, W) or (H, W, 3)")
        super().__init__(len(self._frames), self._frames[0].shape[:2], cache_size=1)

    def _decode(self, index: int) -> np.ndarray:
        return self._frames[index].copy()


def times_at_fps(n_frames: int, fps: float) -> np.ndarray:
    """Evenly spaced frame times in seconds, the first at 0."""
    return np.arange(n_frames, dtype=np.float64) / float(fps)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W): RGB converted with OpenCV's BT.601 weights (0.299 R + 0.587 G + 0.114 B)."""
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


@dataclass
class Cine:
    """A loaded scan: frames, their times, calibration and study information."""

    frames: FrameSequence
    times_s: np.ndarray  # float64 (n,), first 0.0
    frame_time_source: str  # one of FRAME_TIME_SOURCES
    calibration: Calibration
    info: StudyInfo
    source: Path

    def __post_init__(self) -> None:
        self.times_s = np.asarray(self.times_s, dtype=np.float64)
        if self.times_s.shape != (len(self.frames),):
            raise ValueError(f"times_s has shape {self.times_s.shape}, expected ({len(self.frames)},)")
        if self.frame_time_source not in FRAME_TIME_SOURCES:
            raise ValueError(f"unknown frame_time_source {self.frame_time_source!r}")
        self.source = Path(self.source)

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(rows, columns) of every frame, known from the header without decoding."""
        return self.frames.frame_shape

    @property
    def fps(self) -> float | None:
        """Mean frame rate; ``None`` for a single frame."""
        if self.n_frames < 2:
            return None
        duration = float(self.times_s[-1] - self.times_s[0])
        return (self.n_frames - 1) / duration if duration > 0 else None

    def frame(self, index: int) -> np.ndarray:
        return self.frames[index]

    def gray(self, index: int) -> np.ndarray:
        return to_gray(self.frames[index])

    def close(self) -> None:
        self.frames.close()

    @classmethod
    def from_arrays(cls, frames, *, frame_time_ms: float | None = None, source: str | Path = "memory",
                    calibration: Calibration | None = None, info: StudyInfo | None = None) -> "Cine":
        """A cine of frames a program made (synthetic data, tests); timing from ``frame_time_ms`` or the default."""
        sequence = ArrayFrames(frames)
        n = len(sequence)
        if n == 1:
            times, timing = np.zeros(1), "single_frame"
        elif frame_time_ms:
            times, timing = np.arange(n, dtype=np.float64) * frame_time_ms / 1000.0, "FrameTime"
        else:
            times, timing = times_at_fps(n, DEFAULT_FPS), "default"
        return cls(sequence, times, timing, calibration or Calibration(), info or StudyInfo(), Path(source))
