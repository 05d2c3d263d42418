"""Video reader (mp4, avi, ... through OpenCV's FFmpeg backend), decoded lazily.

Frames are read sequentially from one open ``cv2.VideoCapture``; a jump backwards or far
ahead seeks. Times come from the container's frame rate (``frame_time_source="video"``).
Screen recordings of grey B-mode are usually stored as colour video; when the first and
last frames have (nearly) equal channels the cine is delivered as grey ``(H, W)``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from workstation.calibration import Calibration
from workstation.errors import InputError
from workstation.io.cine import DEFAULT_FPS, MAX_FRAMES, Cine, FrameSequence, times_at_fps
from workstation.io.images import file_study_info
from workstation.io.pixels import check_dimensions

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".wmv", ".mpg", ".mpeg"})

# Lossy codecs put a few levels of chroma noise on grey content: tolerate that much when
# deciding a video is grey; colour Doppler or coloured annotations differ by far more.
_GRAY_CHANNEL_TOLERANCE = 12
_SEQUENTIAL_SKIP_LIMIT = 8  # reading up to this many frames forward is cheaper than a seek


def load_video(path: Path) -> Cine:
    frames = VideoFrames(path)
    n = len(frames)
    fps = frames.container_fps
    if n == 1:
        times, source = np.zeros(1), "single_frame"
    elif fps is not None:
        times, source = times_at_fps(n, fps), "video"
    else:
        times, source = times_at_fps(n, DEFAULT_FPS), "default"
    info = file_study_info(path, photometric="MONOCHROME2" if frames.is_gray else "RGB")
    return Cine(frames=frames, times_s=times, frame_time_source=source, calibration=Calibration(),
                info=info, source=path)


class VideoFrames(FrameSequence):
    """Frames of a video file; opening checks the first and last frame and the true frame count."""

    def __init__(self, path: Path):
        self._path = path
        self._next_index = 0  # the frame the capture decodes next
        self._capture = self._open()
        first = self._read_next()
        if first is None:
            self._capture.release()
            raise InputError(f"{path.name}: the video has no decodable frames")
        rows, cols = first.shape[:2]
        check_dimensions(path.name, rows, cols)
        # Kept: frame 0 is shown first, and a one-frame file cannot always seek back to it.
        self._first_raw = first
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.container_fps = float(fps) if np.isfinite(fps) and 0 < fps <= 1000 else None
        n_frames, last = self._frame_count_and_last_frame(first)
        self.is_gray = _nearly_gray(first) and _nearly_gray(last)
        super().__init__(n_frames, (rows, cols), cache_size=32)

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self._path))
        if not capture.isOpened():
            raise InputError(f"{self._path.name}: cannot be opened as a video (damaged file or unsupported codec)")
        return capture

    def _frame_count_and_last_frame(self, first: np.ndarray) -> tuple[int, np.ndarray]:
        """The header's frame count if its last frame decodes, else the count found by reading through.

        Container frame counts are estimates for some formats; a count that is too high would
        make the last frames fail during playback, so it is checked once here.
        """
        declared = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if declared == 1:
            return 1, first
        if 1 < declared <= MAX_FRAMES:
            self._seek(declared - 1)
            last = self._read_next()
            if last is not None:
                return declared, last
        self._seek(0)
        count, last = 0, first
        while True:
            frame = self._read_next()
            if frame is None:
                break
            count, last = count + 1, frame
            if count > MAX_FRAMES:
                raise InputError(f"{self._path.name}: more than {MAX_FRAMES} frames exceed the limit")
        return max(count, 1), last

    def _seek(self, index: int) -> None:
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        self._next_index = index

    def _read_next(self) -> np.ndarray | None:
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        self._next_index += 1
        return frame

    def _raw(self, index: int) -> np.ndarray:
        """The frame as OpenCV decodes it (BGR), reading on or seeking as is cheaper."""
        if index == 0:
            return self._first_raw
        if not (self._next_index <= index <= self._next_index + _SEQUENTIAL_SKIP_LIMIT):
            self._seek(index)
        while self._next_index < index:
            if not self._capture.grab():
                break
            self._next_index += 1
        frame = self._read_next() if self._next_index == index else None
        if frame is None:
            raise InputError(f"{self._path.name}: frame {index} of the video cannot be decoded")
        return frame

    def _decode(self, index: int) -> np.ndarray:
        frame = self._raw(index)
        if frame.shape[:2] != self.frame_shape:
            raise InputError(f"{self._path.name}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
                             f"frame 0 is {self.frame_shape[1]}x{self.frame_shape[0]}")
        if frame.ndim == 2:
            return frame
        if self.is_gray:
            return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        with self._lock:
            self._capture.release()

    def __del__(self):
        capture = getattr(self, "_capture", None)
        if capture is not None:
            capture.release()


def _nearly_gray(bgr: np.ndarray) -> bool:
    if bgr.ndim == 2:
        return True
    channels = bgr.astype(np.int16)
    spread = channels.max(axis=2) - channels.min(axis=2)
    # A percentile, not the maximum: a few codec-noisy pixels must not make a grey clip colour.
    return float(np.percentile(spread, 99.9)) <= _GRAY_CHANNEL_TOLERANCE
