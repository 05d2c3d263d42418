"""The command line's one JSON writer: every command's ``--json`` output goes through ``emit_json``."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from workstation.paths import replacing


def _clean(value):
    """JSON-safe: NaN/inf become null, numpy scalars and paths plain values."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _clean(value.item())
    return value


def emit_json(payload, out: str | None) -> None:
    text = json.dumps(_clean(payload), indent=2, allow_nan=False)
    if out:
        with replacing(out) as partial:  # a failed write keeps an earlier file of that name
            partial.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
