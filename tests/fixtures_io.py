"""Helpers for the io tests: the pydicom test files and small DICOM files built on the spot."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from conftest import SHARED_DATA
from workstation.io import write_multiframe_us


def pydicom_test_file(name: str) -> Path:
    """A file from pydicom's own test data or the pydicom-data package (never downloaded); without the package,
    the same file from ../shared/data/dicom_us, which holds copies of both."""
    found = get_testdata_file(name, download=False)
    if found is not None:
        return Path(found)
    for folder in ("pydicom-data", "pydicom"):
        copy = SHARED_DATA / "dicom_us" / folder / name
        if copy.is_file():
            return copy
    pytest.skip(f"{name} is not installed (it comes with the pydicom-data package of the dev extras) and "
                f"{SHARED_DATA / 'dicom_us'} has no copy")


def synthetic_frames(n_frames: int = 3, rows: int = 40, cols: int = 60) -> np.ndarray:
    """Grey frames whose pixel (r, c) of frame k is (r + c + 10 k) mod 256: every value is checkable."""
    r, c = np.mgrid[0:rows, 0:cols]
    return np.stack([((r + c + 10 * k) % 256).astype(np.uint8) for k in range(n_frames)])


def write_small_us(path: Path, n_frames: int = 3, rows: int = 40, cols: int = 60, **kwargs) -> Path:
    """A valid multi-frame ultrasound DICOM (FrameTime 40 ms, 0.2 mm/px) unless kwargs say otherwise."""
    options = dict(frame_time_ms=40.0, mm_per_px=0.2, patient_id="P001", patient_name="Doe^Jane",
                   study_datetime=datetime(2024, 3, 5, 14, 30, 15, 250000))
    options.update(kwargs)
    return write_multiframe_us(path, synthetic_frames(n_frames, rows, cols), **options)


def rewrite(path: Path, **changes) -> Path:
    """Change attributes of a DICOM file in place; a value of None deletes the attribute."""
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path)
    return path
