"""Derive the floors behind the AI's head biometry from real heads, and show what they withhold on each HC18 split.

    python -m workstation.training.biometry_floors --data ../shared/data [--json OUT] [--write-manifest]

Two floors (``workstation.inference.pipeline.check_ai_biometry``):

- the skull-echo floors (``workstation.measure.skull_echo.SKULL_ECHO_FLOORS``): each echo feature's 5th percentile;
- the main model's plane floor (its manifest's ``head_biometry.min_plane_probability``): the 1st percentile of the
  probability it gives the axial-head-plane class. It belongs to one model, so ``--write-manifest`` writes it there.

Runs ``evaluate --dataset hc18`` on the training and validation splits, as ``workstation analyze`` outlines each
frame. The floors come from the training split only; the validation split is only reported. The skull-echo floors
are not written anywhere: a maintainer copies the printed ones into the code (and the figures into the model card).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from workstation.evaluate import evaluate_hc18, mean_of_known
from workstation.inference.engine import load_model
from workstation.measure.skull_echo import SKULL_ECHO_FLOORS, echo_missing

FEATURES = tuple(SKULL_ECHO_FLOORS)
ECHO_PERCENTILE = 5.0
PLANE_PERCENTILE = 1.0


def floors_from(cases: list[dict], percentile: float = ECHO_PERCENTILE) -> dict[str, float]:
    """Each skull-echo feature's ``percentile`` over the cases whose evidence was judged."""
    judged = [c["skull_echo"] for c in cases if c.get("skull_echo") and c["skull_echo"]["fraction"] is not None]
    if not judged:
        raise ValueError("no case has skull-echo evidence: is the HC18 folder right?")
    return {key: round(float(np.percentile([e[key] for e in judged], percentile)), 2) for key in FEATURES}


def plane_floor_from(cases: list[dict], percentile: float = PLANE_PERCENTILE) -> float:
    """The ``percentile`` of the probability the model gives the axial-head-plane class (floored to 3 decimals, so
    the rounding withholds no more than the percentile)."""
    probabilities = [c["plane_probability"] for c in cases if c.get("plane_probability") is not None]
    if not probabilities:
        raise ValueError("no case has a plane probability: does the model grade planes?")
    return float(np.floor(np.percentile(probabilities, percentile) * 1000) / 1000)


def withheld_under(cases: list[dict], floors: dict[str, float], plane_floor: float | None = None) -> list[dict]:
    """The cases the two checks, with these floors, withhold."""
    def withheld(case):
        echo = case.get("skull_echo")
        if echo and echo["fraction"] is not None and echo_missing(echo, floors):
            return True
        probability = case.get("plane_probability")
        return plane_floor is not None and probability is not None and probability < plane_floor
    return [c for c in cases if withheld(c)]


def report(by_split: dict[str, list[dict]], plane_floor_in_manifest: float | None) -> dict:
    out = {"skull_echo_floors_derived": floors_from(by_split["train"]),
           "skull_echo_floors_in_code": dict(SKULL_ECHO_FLOORS),
           "min_plane_probability_derived": plane_floor_from(by_split["train"]),
           "min_plane_probability_in_manifest": plane_floor_in_manifest}
    for split, cases in by_split.items():
        withheld = withheld_under(cases, SKULL_ECHO_FLOORS, plane_floor_in_manifest)
        kept = [c for c in cases if c not in withheld]
        out[split] = {
            "n": len(cases), "withheld": len(withheld),
            "withheld_no_skull_echo": len(withheld_under(cases, SKULL_ECHO_FLOORS)),
            "withheld_cases": {c["id"]: c["hc_pipeline_ungated_abs_error_mm"] for c in withheld},
            "hc_mae_mm_all_unchecked": mean_of_known((c["hc_pipeline_ungated_abs_error_mm"] for c in cases), digits=3),
            "hc_mae_mm_kept": mean_of_known((c["hc_pipeline_ungated_abs_error_mm"] for c in kept), digits=3),
            "hc_mae_mm_withheld": mean_of_known((c["hc_pipeline_ungated_abs_error_mm"] for c in withheld), digits=3),
        }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding hc18/")
    parser.add_argument("--model", default="psfh-multitask")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--write-manifest", action="store_true",
                        help="write the derived plane floor into the model's manifest (head_biometry)")
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
    head_biometry = dict(model.manifest.raw.get("head_biometry") or {})
    if args.write_manifest:
        from workstation.training.export import update_manifest

        head_biometry["min_plane_probability"] = plane_floor_from(by_split["train"])
        head_biometry["min_plane_probability_source"] = (
            f"{PLANE_PERCENTILE:g}st percentile over the HC18 training split ({len(by_split['train'])} frames), "
            "python -m workstation.training.biometry_floors")
        update_manifest(model.manifest.manifest_path, "head_biometry", head_biometry)
        print(f"wrote min_plane_probability {head_biometry['min_plane_probability']} into "
              f"{model.manifest.manifest_path}", file=sys.stderr)
    # What the floors withhold: the code's skull-echo floors and the manifest's plane floor (as just written).
    out = report(by_split, head_biometry.get("min_plane_probability"))
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
