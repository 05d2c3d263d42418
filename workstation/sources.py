"""Whose each value of a measurement is: the one rule every display and every written row follows (Qt-free).

A measurement row is written by one actor (the AI, a corrector, a confirmer), but a person's correction moves some
calipers only: the values of the calipers they did not move are still the AI's (or an earlier person's). So each
quantity has its own source, ``{"kind", "by", "at"}`` (kind "ai", "correction" or "confirmation"):

* ``aop``: the AoP, from the PS axis and the tangent point (``ps_axis``, ``aop`` parts);
* ``hsd``: the HSD (px and mm), from its own line (``hsd``; moving a PS end in the viewer moves the HSD's start with
  it, ``cine_review.ps_moved``, so both quantities are then the person's);
* ``head``: HC, BPD, OFD and GA together, from the head ellipse (``head_ellipse``).

Writing (:func:`sources_after`): a correction compares each quantity's geometry parts with the basis (the geometry
in force on that frame the person started from); a quantity whose parts the person changed is theirs, an unchanged
one keeps the basis's source. A confirmation makes every value the confirmer's (its row needs no sources). Rows
that measure again or restore another row (a calibration change, an undo) carry that row's sources.

Reading (:func:`source_of`): a row's stored sources (``Measurement.sources``) where it has them; without them (rows
written before schema 3, AI rows, confirmations) every value is the row's own kind and author.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

AI, CORRECTION, CONFIRMATION = "ai", "correction", "confirmation"
QUANTITIES = ("aop", "hsd", "head")
# The geometry parts each quantity is measured from (``workstation.measure.recompute``).
QUANTITY_PARTS = {"aop": ("ps_axis", "aop"), "hsd": ("hsd",), "head": ("head_ellipse",)}
# The measurement JSON keys of each quantity.
QUANTITY_KEYS = {"aop": ("aop_deg",), "hsd": ("hsd_px", "hsd_mm"),
                 "head": ("hc_px", "hc_mm", "bpd_px", "bpd_mm", "ofd_px", "ofd_mm", "ga_weeks", "ga_range_weeks")}
# The entries of each geometry part (``workstation.measure.Geometry``); the head contour is a list of points.
PART_ENTRIES = {"ps_axis": ("superior", "inferior"), "aop": ("vertex", "superior", "tangent_point"),
                "hsd": ("start", "end"), "head_ellipse": ("center", "semi_axes", "angle_deg")}
# The quantities as a line of text names them.
QUANTITY_NAMES = {"aop": "AoP", "hsd": "HSD", "head": "HC, BPD, OFD, GA"}
# How a source's kind follows a value on screen and in a report.
WHOSE = {AI: "AI", CORRECTION: "corrected", CONFIRMATION: "confirmed"}


def source(kind: str, by: str | None, at: str | None) -> dict:
    return {"kind": kind, "by": by, "at": at}


def _get(m: Any, name: str):
    return m.get(name) if isinstance(m, Mapping) else getattr(m, name, None)


def source_of(measurement: Any, quantity: str) -> dict:
    """Whose ``quantity`` ("aop", "hsd", "head") of a measurement row is: ``{"kind", "by", "at"}``. ``measurement``:
    a ``Measurement`` or a dict with its ``kind``, ``by``, ``created_at`` and ``sources``. An AI row's values are
    the AI's; a person's row's are as its ``sources`` say, each value the row's own where it has none."""
    if quantity not in QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r} (one of {', '.join(QUANTITIES)})")
    kind, by, at = _get(measurement, "kind"), _get(measurement, "by"), _get(measurement, "created_at")
    if kind != AI:
        kept = (_get(measurement, "sources") or {}).get(quantity)
        if kept and kept.get("kind") in WHOSE:
            return source(kept["kind"], kept.get("by"), kept.get("at"))
    return source(kind, by, at)


def sources_of(measurement: Any) -> dict:
    """Every quantity's :func:`source_of`."""
    return {q: source_of(measurement, q) for q in QUANTITIES}


def _same_point(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=1e-3)  # a thousandth of a pixel: no caliper is dragged so finely
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_point(x, y) for x, y in zip(a, b))
    return a == b


def _same_part(part: str, a, b) -> bool:
    if not a or not b:
        return not a and not b
    return all(_same_point(a.get(entry), b.get(entry)) for entry in PART_ENTRIES[part])


def changed_quantities(before: dict | None, after: dict | None) -> set[str]:
    """The quantities whose geometry parts differ between ``before`` (the basis) and ``after`` (a person's)."""
    before, after = before or {}, after or {}
    return {q for q, parts in QUANTITY_PARTS.items()
            if not all(_same_part(part, before.get(part), after.get(part)) for part in parts)}


def sources_after(basis: Mapping[str, dict], before: dict | None, after: dict | None, kind: str, by: str,
                  at: str | None) -> dict:
    """The sources of a person's row (``kind``, ``by``, ``at``) whose geometry ``after`` was made from the basis
    geometry ``before``, whose values' sources are ``basis`` (:func:`sources_of` of the basis row): each quantity
    the person changed is theirs, each other keeps the basis's."""
    changed = changed_quantities(before, after)
    return {q: source(kind, by, at) if q in changed or not basis.get(q) else dict(basis[q]) for q in QUANTITIES}


def ai_sources(by: str | None, at: str | None = None) -> dict:
    """Every quantity the AI's."""
    return {q: source(AI, by, at) for q in QUANTITIES}


def whose(src: Mapping | None) -> str:
    """A source as it follows a value: "AI", "corrected" or "confirmed"."""
    return WHOSE.get((src or {}).get("kind"), "AI")


def describe(src: Mapping | None) -> str:
    """A source in words: "AI", "correction by NAME", "confirmation by NAME"."""
    if not src or src.get("kind") == AI:
        return "AI"
    return f"{src['kind']} by {src.get('by')}"


def whose_of(measurement: Any) -> dict:
    """How each quantity of a measurement row follows its value on screen and in a report: {"aop": "AI", ...}."""
    return {q: whose(source_of(measurement, q)) for q in QUANTITIES}


def whose_for(whose_: "str | Mapping | None", quantity: str) -> str | None:
    """A label's "AI"/"corrected"/"confirmed" for ``quantity``, from one word for all or a per-quantity mapping."""
    return whose_.get(quantity) if isinstance(whose_, Mapping) else whose_


def values_note(m: Any, head: bool = True) -> str:
    """Whose each value of a person's row is, where they are not all the row's own (a correction that moved some
    calipers only): "values: AoP the AI's (unchanged), HSD correction by MW Rose"; empty otherwise (an AI row, a row
    whose values are all its author's). ``head``: the head biometry is shown too. The CLI's ``history`` and
    ``correct`` lines and the exam PDF's history table say it in these words."""
    if m is None or _get(m, "kind") == AI:
        return ""
    kind, by = _get(m, "kind"), _get(m, "by")
    shown = [q for q in ("aop", "hsd") + (("head",) if head else ())
             if any(_get(m, key) is not None for key in QUANTITY_KEYS[q])]
    sources = {q: source_of(m, q) for q in shown}
    # A correction of the head ellipse says whose the head biometry is, as the AoP and HSD ones say theirs (the
    # report marks them "corrected, NAME"), even where every value shown is the corrector's.
    head_corrected = "head" in sources and kind == CORRECTION
    if not head_corrected and all((s["kind"], s["by"]) == (kind, by) for s in sources.values()):
        return ""
    return "values: " + ", ".join(
        f"{QUANTITY_NAMES[q]} " + ("the AI's (unchanged)" if s["kind"] == AI else describe(s)
                                   + ("" if (s["kind"], s["by"]) == (kind, by) else " (unchanged)"))
        for q, s in sources.items())
