"""``load(path)``: any supported scan into a :class:`~workstation.io.cine.Cine`.

Dispatch is on content first (a DICOM file is recognised by its ``DICM`` marker whatever
its name), then on the extension. Every failure the user can cause (missing, empty,
damaged or unsupported file) raises :class:`~workstation.errors.InputError` with one line.
"""
from __future__ import annotations

import os
from pathlib import Path

from workstation.errors import InputError
from workstation.io.cine import Cine
from workstation.io.dicom import load_dicom
from workstation.io.images import IMAGE_EXTENSIONS, load_image, load_image_folder
from workstation.io.video import VIDEO_EXTENSIONS, load_video

DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic", ".ima", ""})


def load(path: str | os.PathLike, *, mm_per_px: float | None = None) -> Cine:
    """Load a DICOM file, a video, an image or a folder of images.

    ``mm_per_px``, when given, is a manual calibration that overrides what the file says.
    """
    if not str(path).strip():
        raise InputError("no file or folder given")
    return with_manual_calibration(_load_by_kind(Path(path)), mm_per_px)


def with_manual_calibration(cine: Cine, mm_per_px: float | None) -> Cine:
    """``cine`` with a manual calibration of ``mm_per_px`` overriding what its file (or its exam) says; as it is
    without one. A value no scale can have closes the cine and is an ``InputError``."""
    if mm_per_px is None:
        return cine
    try:
        cine.calibration = cine.calibration.with_manual(float(mm_per_px))
    except (TypeError, ValueError) as exc:
        cine.close()
        raise InputError(str(exc)) from None
    return cine


def _load_by_kind(path: Path) -> Cine:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return load_image_folder(path)
    if not path.is_file():  # a pipe or a device would block or never end
        raise InputError(f"{path.name}: not a regular file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError as exc:
        raise InputError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise InputError(f"{path.name}: the file is empty (0 bytes)")
    extension = path.suffix.lower()
    if head[128:132] == b"DICM" or (extension in DICOM_EXTENSIONS and _looks_like_bare_dicom(head)):
        return load_dicom(path)
    if extension in VIDEO_EXTENSIONS:
        return load_video(path)
    if extension in IMAGE_EXTENSIONS:
        return load_image(path)
    if extension in DICOM_EXTENSIONS:
        raise InputError(f"{path.name}: not a DICOM file (no DICM marker and no DICOM data elements at the start)")
    raise InputError(f"{path.name}: unsupported file type '{extension}' (supported: DICOM; video "
                     f"{', '.join(sorted(VIDEO_EXTENSIONS))}; images {', '.join(sorted(IMAGE_EXTENSIONS))}; "
                     f"a folder of images)")


def _looks_like_bare_dicom(head: bytes) -> bool:
    """A DICOM data set written without preamble starts with a group 0002 or 0008 tag (little endian)."""
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00")
