"""Derive the skull-echo floors (``workstation.measure.skull_echo.SKULL_ECHO_FLOORS``) from real heads, and show
what the floors in the code withhold on each HC18 split.

    python -m workstation.training.skull_echo_floors --data ../shared/data [--percentile 5] [--json OUT]

Runs ``evaluate --dataset hc18`` on the training and validation splits, as ``workstation analyze`` outlines each
frame, and reads each frame's skull-echo evidence. The floors are each feature's percentile over the training
split only; the validation split is only reported. Nothing is written into the code: a maintainer copies the
printed floors into ``SKULL_ECHO_FLOORS`` (and the figures into the model card) when the models change.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from workstation.evaluate import evaluate_hc18
from workstation.inference.engine import load_model
from workstation.measure.skull_echo import SKULL_ECHO_FLOORS, echo_missing

FEATURES = tuple(SKULL_ECHO_FLOORS)


def floors_from(cases: list[dict], percentile: float) -> dict[str, float]:
    """Each feature's ``percentile`` over the cases whose evidence was judged."""
    judged = [c["skull_echo"] for c in cases if c.get("skull_echo") and c["skull_echo"]["fraction"] is not None]
    if not judged:
        raise ValueError("no case has skull-echo evidence: is the HC18 folder right?")
    return {key: round(float(np.percentile([e[key] for e in judged], percentile)), 2) for key in FEATURES}


def withheld_under(cases: list[dict], floors: dict[str, float]) -> list[dict]:
    """The cases whose evidence the rule, with these floors, calls missing."""
    return [c for c in cases if c.get("skull_echo") and c["skull_echo"]["fraction"] is not None
            and echo_missing(c["skull_echo"], floors)]


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 3) if values else None


def report(by_split: dict[str, list[dict]], percentile: float) -> dict:
    derived = floors_from(by_split["train"], percentile)
    out = {"percentile": percentile, "floors_derived": derived, "floors_in_code": dict(SKULL_ECHO_FLOORS)}
    for split, cases in by_split.items():
        out[f"{split}_withheld_under_derived_floors"] = len(withheld_under(cases, derived))
        withheld = withheld_under(cases, SKULL_ECHO_FLOORS)
        kept = [c for c in cases if c not in withheld]
        out[split] = {
            "n": len(cases), "withheld": len(withheld),
            "withheld_cases": {c["id"]: c["hc_pipeline_ungated_abs_error_mm"] for c in withheld},
            "hc_mae_mm_all_unchecked": _mean(c["hc_pipeline_ungated_abs_error_mm"] for c in cases),
            "hc_mae_mm_kept": _mean(c["hc_pipeline_ungated_abs_error_mm"] for c in kept),
            "hc_mae_mm_withheld": _mean(c["hc_pipeline_ungated_abs_error_mm"] for c in withheld),
        }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding hc18/")
    parser.add_argument("--model", default="psfh-multitask")
    parser.add_argument("--percentile", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    folder = args.data / "hc18"
    if not folder.is_dir():
        print(f"no HC18 folder at {folder}", file=sys.stderr)
        return 2
    model = load_model(args.model, threads=args.threads)
    by_split = {}
    for split in ("train", "val"):
        by_split[split] = evaluate_hc18(model, folder, split)["cases"]
        print(f"{split}: {len(by_split[split])} cases", file=sys.stderr, flush=True)
    out = report(by_split, args.percentile)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
