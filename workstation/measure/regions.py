"""Label maps and the outlines of their regions.

A label map is a 2D uint8 array: 0 background, 1 pubic symphysis (PS), 2 fetal head (FH). A region's outline is
traced along pixel edges (the midpoints of the edges between a region pixel and a non-region 4-neighbour), not
through its outermost pixel centres: a region's pixels end half a pixel beyond their centres, so edge points put
the outline where the structure ends and a fitted ellipse or a tangent carries no half-pixel inward bias.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from workstation.errors import InputError

BACKGROUND, PS_LABEL, FH_LABEL = 0, 1, 2
_VALID_LABELS = (BACKGROUND, PS_LABEL, FH_LABEL)


def check_labelmap(labels: np.ndarray) -> np.ndarray:
    """``labels`` as a 2D uint8 array, or an InputError saying what is wrong with it."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"a label map must be a 2D array, got shape {labels.shape}")
    if labels.size == 0:
        raise InputError("the label map is empty (zero pixels)")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"a label map must hold integers 0, 1, 2, got dtype {labels.dtype}")
    if labels.size and labels.min() >= BACKGROUND and labels.max() <= FH_LABEL:
        return labels.astype(np.uint8, copy=False)  # the usual case, without np.unique's cost on every frame
    extra = sorted(set(np.unique(labels).tolist()) - set(_VALID_LABELS))
    if extra:
        shown = ", ".join(str(v) for v in extra[:8]) + (" ..." if len(extra) > 8 else "")
        raise InputError(f"a label map holds only 0 (background), 1 (pubic symphysis) and 2 (fetal head); "
                         f"this one also holds {shown} (a display image or a 0/255 mask?)")
    return labels.astype(np.uint8, copy=False)


def load_labelmap(path) -> np.ndarray:
    """A PNG label map (0, 1, 2) from disk; InputError when it is unreadable or holds other values."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"label map not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"cannot read {path.name} as an image; measure takes a label map saved as PNG "
                         f"(0 background, 1 pubic symphysis, 2 fetal head); to measure a scan, use analyze")
    if image.ndim == 3:
        # Some tools save a label map with 3 identical channels; anything else is a picture, not labels.
        if image.shape[2] not in (3, 4) or not all(np.array_equal(image[..., 0], image[..., c]) for c in (1, 2)):
            raise InputError(f"{path.name} is a colour image, not a label map (expected one channel of 0, 1, 2)")
        image = image[..., 0]
    try:
        return check_labelmap(image)
    except InputError as error:
        raise InputError(f"{path.name}: {error}") from None


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a boolean mask (specks of a segmentation are not the structure)."""
    mask = np.asarray(mask, dtype=bool)
    box = bounding_box(mask)
    if box is None:
        return mask
    y0, y1, x0, x1 = box  # label the bounding box only: the rest of the frame holds no component
    count, components, stats, _ = cv2.connectedComponentsWithStats(mask[y0:y1, x0:x1].astype(np.uint8),
                                                                   connectivity=8)
    if count <= 2:
        return mask
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    largest = np.zeros_like(mask)
    largest[y0:y1, x0:x1] = components == biggest
    return largest


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1), end-exclusive, of a boolean mask's set pixels; None when there are none. Cheaper than
    ``np.nonzero`` over a whole frame, which the pipeline would otherwise do for every region of every pass."""
    rows, cols = mask.any(axis=1), mask.any(axis=0)
    if not rows.any():
        return None
    return (int(np.argmax(rows)), len(rows) - int(np.argmax(rows[::-1])),
            int(np.argmax(cols)), len(cols) - int(np.argmax(cols[::-1])))


def region_pixels(mask: np.ndarray) -> np.ndarray:
    """The (x, y) of a boolean mask's set pixels, (n, 2), in row-major order as ``np.nonzero`` gives them."""
    mask = np.asarray(mask, dtype=bool)
    box = bounding_box(mask)
    if box is None:
        return np.zeros((0, 2), dtype=np.intp)
    y0, y1, x0, x1 = box
    ys, xs = np.nonzero(mask[y0:y1, x0:x1])
    return np.stack([xs + x0, ys + y0], axis=1)


def edge_points(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The region's outline as pixel-edge midpoints, (n, 2) (x, y), and a flag per point for the frame edge.

    A point on the frame edge is where the image stops, not where the structure does.
    """
    mask = np.asarray(mask, dtype=bool)
    rows, cols = mask.shape
    box = bounding_box(mask)
    if box is None:
        return np.zeros((0, 2)), np.zeros(0, bool)
    # Work on the region's bounding box only: a head is small against a large frame.
    y0, y1, x0, x1 = box
    padded = np.pad(mask[y0:y1, x0:x1], 1)
    points, on_frame = [], []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        neighbour = np.roll(padded, (-dy, -dx), axis=(0, 1))
        ey, ex = np.nonzero(padded & ~neighbour)
        x = ex - 1 + x0 + dx / 2.0
        y = ey - 1 + y0 + dy / 2.0
        points.append(np.stack([x, y], axis=1))
        on_frame.append((x < 0) | (x > cols - 1) | (y < 0) | (y > rows - 1))
    return np.concatenate(points), np.concatenate(on_frame)
