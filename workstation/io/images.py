"""Still images (PNG, JPEG, TIFF, BMP) as a one-frame cine, and a folder of images as a cine.

Images are decoded with OpenCV from bytes (``cv2.imdecode``), which also works for paths
with non-ASCII characters on Windows, where ``cv2.imread`` fails. 16-bit images are scaled
to 8 bits, an alpha channel is dropped (ultrasound exports carry no meaningful
transparency), grey stays ``(H, W)``.

A folder is a cine of its images in natural name order (``frame2`` before ``frame10``)
with the default frame rate. Every image is decoded once at load to check that all share
one shape (OpenCV has no header-only read); the pixels are not kept. Before any decoding, the size in the
file's header is checked (Pillow reads headers alone), so a 20000 x 20000 image or a header claiming 65535 x
65535 is refused before gigabytes are allocated.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import cv2
import cv2.utils.logging as cv2_logging
import numpy as np

from workstation.calibration import Calibration
from workstation.errors import InputError
from workstation.io.cine import (DEFAULT_FPS, MAX_FRAMES, MAX_SIDE_PX, ArrayFrames, Cine, FrameSequence, StudyInfo,
                                 times_at_fps)
from workstation.io.pixels import check_dimensions, to_uint8

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})


def load_image(path: Path) -> Cine:
    frame = read_image(path)
    info = file_study_info(path, photometric=_photometric(frame))
    return Cine(frames=ArrayFrames([frame]), times_s=np.zeros(1), frame_time_source="single_frame",
                calibration=Calibration(), info=info, source=path)


def load_image_folder(folder: Path) -> Cine:
    paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                    and p.is_file() and not p.name.startswith(".")), key=natural_sort_key)
    if not paths:
        raise InputError(f"{folder.name}: the folder contains no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    if len(paths) > MAX_FRAMES:
        raise InputError(f"{folder.name}: {len(paths)} images exceed the {MAX_FRAMES}-frame limit")
    first = read_image(paths[0])
    for path in paths[1:]:
        shape = read_image(path).shape
        if shape != first.shape:
            raise InputError(f"{folder.name}: all images must share one size and colour type; "
                             f"{paths[0].name} is {_describe(first.shape)}, {path.name} is {_describe(shape)}")
    n = len(paths)
    times, source = (np.zeros(1), "single_frame") if n == 1 else (times_at_fps(n, DEFAULT_FPS), "default")
    info = file_study_info(paths[0], photometric=_photometric(first))
    return Cine(frames=ImageFileFrames(paths, first.shape[:2]), times_s=times, frame_time_source=source,
                calibration=Calibration(), info=info, source=folder)


class ImageFileFrames(FrameSequence):
    """One image file per frame, decoded on demand."""

    def __init__(self, paths: list[Path], frame_shape: tuple[int, int]):
        super().__init__(len(paths), frame_shape)
        self._paths = list(paths)

    def _decode(self, index: int) -> np.ndarray:
        return read_image(self._paths[index])


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 (H, W) grey or (H, W, 3) RGB; InputError if it cannot be decoded."""
    try:
        encoded = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    if encoded.size == 0:
        raise InputError(f"{path.name}: the file is empty")
    size = _header_size(path)
    if size is not None:
        check_dimensions(path.name, size[1], size[0])
    try:
        with _decoder_warnings_silenced():
            image = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. OpenCV's own pixel-count limit
        why = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path.name}: cannot be decoded as an image ({why})") from None
    if image is None:
        raise InputError(f"{path.name}: cannot be decoded as an image (damaged file or unsupported encoding)")
    check_dimensions(path.name, image.shape[0], image.shape[1])
    return _to_display(image, path.name)


@contextmanager
def _decoder_warnings_silenced():
    """OpenCV's own warnings about a damaged image ("PNG input buffer is incomplete") go straight to stderr; the
    file's one InputError line says the same, so only OpenCV's errors are let through while it decodes."""
    level = cv2_logging.getLogLevel()
    cv2_logging.setLogLevel(cv2_logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2_logging.setLogLevel(level)


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header without decoding its pixels; None where Pillow cannot tell (OpenCV
    then decides)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(image.size[0]), int(image.size[1])
    except Image.DecompressionBombError:  # Pillow's own guard, for headers far beyond any scan
        raise InputError(f"{path.name}: the image's header claims over {2 * Image.MAX_IMAGE_PIXELS} pixels, far "
                         f"beyond the {MAX_SIDE_PX}x{MAX_SIDE_PX} limit") from None
    except Exception:  # noqa: BLE001 - not an image Pillow knows: leave the verdict to OpenCV
        return None


def _to_display(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint16:
        image = to_uint8(image, 16)
    elif np.issubdtype(image.dtype, np.floating):
        image = to_uint8(image, 8)
    elif image.dtype != np.uint8:
        raise InputError(f"{name}: {image.dtype} pixels are not supported (8-bit, 16-bit or float images only)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise InputError(f"{name}: {image.shape[2]} colour channels are not supported")


def file_study_info(path: Path, photometric: str) -> StudyInfo:
    """What a non-DICOM file tells: only its modification time, flagged as such."""
    try:
        modified = datetime.fromtimestamp(path.stat().st_mtime)
    except OSError:
        return StudyInfo(photometric=photometric)
    return StudyInfo(acquisition_datetime=modified, acquisition_source="file_mtime", photometric=photometric)


def natural_sort_key(path: Path) -> list:
    """``frame2.png`` before ``frame10.png``: digit runs compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", path.name)]


def _photometric(frame: np.ndarray) -> str:
    return "MONOCHROME2" if frame.ndim == 2 else "RGB"


def _describe(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]} {'grey' if len(shape) == 2 else 'colour'}"
