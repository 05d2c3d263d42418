"""The fixed train/validation split, shared by training and ``workstation evaluate``.

A case goes to validation when sha1 of its key, read as an integer, is divisible by 5
(about 20%). Hashing the id rather than shuffling keeps the split stable when cases are
added or removed. HC18's second plane of a fetus (``NNN_2HC``) shares the key of
``NNN_HC`` so one fetus never sits on both sides.
"""
from __future__ import annotations

import hashlib
import re

VALIDATION_MODULUS = 5


def case_key(case_id: str) -> str:
    """The identity that decides the split: the fetus for HC18, the image for PSFHS."""
    stem = case_id.rsplit("/", 1)[-1].split(".", 1)[0]
    match = re.fullmatch(r"(\d+)_\d*HC(?:_.*)?", stem)
    if match:
        return f"hc18:{match.group(1)}"
    return stem.removesuffix("_label")


def split_of(case_id: str) -> str:
    digest = hashlib.sha1(case_key(case_id).encode("utf-8")).hexdigest()
    return "val" if int(digest, 16) % VALIDATION_MODULUS == 0 else "train"
