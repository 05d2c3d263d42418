"""Pixel helpers shared by the readers: size limits and conversion of deeper data to uint8."""
from __future__ import annotations

import numpy as np

from workstation.errors import InputError
from workstation.io.cine import MAX_FRAMES, MAX_SIDE_PX


def check_dimensions(name: str, rows: int, cols: int, n_frames: int = 1) -> None:
    """Refuse absurd sizes before anything is allocated (a bad header must not exhaust memory)."""
    if rows <= 0 or cols <= 0:
        raise InputError(f"{name}: the image size {cols}x{rows} is empty or negative")
    if rows > MAX_SIDE_PX or cols > MAX_SIDE_PX:
        raise InputError(f"{name}: the image size {cols}x{rows} exceeds the {MAX_SIDE_PX}x{MAX_SIDE_PX} limit")
    if n_frames <= 0:
        raise InputError(f"{name}: the file declares {n_frames} frames")
    if n_frames > MAX_FRAMES:
        raise InputError(f"{name}: {n_frames} frames exceed the {MAX_FRAMES}-frame limit")


def to_uint8(values: np.ndarray, bits: int, signed: bool = False) -> np.ndarray:
    """Scale integer data with ``bits`` significant bits onto 0..255.

    Scaling by the declared bit depth, not by each frame's min/max, keeps the brightness
    of a cine steady from frame to frame.
    """
    if values.dtype == np.uint8 and bits >= 8 and not signed:
        return values
    if np.issubdtype(values.dtype, np.floating):
        data = np.nan_to_num(values.astype(np.float64))
        top = 1.0 if data.size and data.max() <= 1.0 else 255.0  # float images come as 0..1 or 0..255
        return np.clip(np.rint(data * (255.0 / top)), 0, 255).astype(np.uint8)
    bits = int(min(max(bits, 1), values.dtype.itemsize * 8))
    if not signed and np.issubdtype(values.dtype, np.unsignedinteger) and bits == values.dtype.itemsize * 8:
        return (values >> (bits - 8)).astype(np.uint8)  # the whole range in use: no clipping, no wide copy
    # Wide enough for the arithmetic, and no wider: an 8192 x 8192 RGBA 16-bit image is 0.5 GB as it comes.
    data = values.astype(np.int32 if values.dtype.itemsize <= 2 else np.int64)
    if signed:
        data += 1 << (bits - 1)  # two's complement range -> 0 .. 2**bits - 1
    top = (1 << bits) - 1
    np.clip(data, 0, top, out=data)
    if bits <= 8:
        return (data * 255 // top).astype(np.uint8) if bits < 8 else data.astype(np.uint8)
    data >>= bits - 8
    return data.astype(np.uint8)
