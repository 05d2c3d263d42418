"""How a measurement's values are written in the reports and on the command line, Qt-free: one copy for the PDF's
tables and key-frame labels and the records commands (``history``, ``import``, ``correct``, ``confirm``).

- AoP in degrees; HSD by :func:`workstation.measure.describe_hsd` (mm where the calibration gives mm, else pixels
  with why there is no mm).
- Head biometry (HC, BPD, OFD): mm only where the row has mm (a row keeps mm only where its calibration gave them:
  never a mm value whose calibration is in doubt), else pixels measured on the row's head ellipse with why there is
  no mm; GA (Hadlock 1984) with its +-2 week range; a value withheld (or never measured) with its reason.

A records row keeps HC, BPD and OFD in mm only; their pixels are measured again here from the row's head ellipse,
unless the row says they were withheld (``reasons["hc_px"]``: the frame's plane, no skull echo), which stands.
"""
from __future__ import annotations

from typing import Any, Mapping

from workstation.measure import Ellipse, MeasurementRefused, describe_aop_hsd, describe_hsd, ellipse_measurements
from workstation.measure.biometry import GA_RANGE_WEEKS

HEAD_ROWS = (("HC", "hc"), ("BPD", "bpd"), ("OFD", "ofd"), ("GA", "ga"))  # name, key stem
HEAD_KEYS = ("hc_px", "hc_mm", "bpd_px", "bpd_mm", "ofd_px", "ofd_mm", "ga_weeks")
_ROW_KEYS = ("aop_deg", "hsd_px", "hsd_mm", *HEAD_KEYS)


def values_of(row: Any) -> dict:
    """The values, reasons and geometry of a records ``Measurement``, a history event or a ``measure`` JSON, as one
    dict (keys a row does not have are None)."""
    if isinstance(row, Mapping):
        out = {key: row.get(key) for key in _ROW_KEYS}
        out.update(reasons=dict(row.get("reasons") or {}), geometry=row.get("geometry"))
        return out
    out = {key: getattr(row, key, None) for key in _ROW_KEYS}
    out.update(reasons=dict(getattr(row, "reasons", None) or {}), geometry=getattr(row, "geometry", None))
    return out


def head_values(row: Any) -> dict:
    """HC, BPD, OFD (mm and px) and GA of ``row`` (see :func:`values_of`), with its reasons; the pixels measured on
    its head ellipse where it keeps none and did not withhold them."""
    values = values_of(row)
    reasons = values["reasons"]
    out = {key: values[key] for key in HEAD_KEYS}
    ellipse = (values["geometry"] or {}).get("head_ellipse")
    if ellipse and out["hc_px"] is None and "hc_px" not in reasons:
        try:
            measured = ellipse_measurements(Ellipse.from_json(ellipse), None, (0, 0))
        except (MeasurementRefused, KeyError, TypeError, ValueError):
            measured = None  # a damaged ellipse: no pixels (the mm, if any, stand as kept)
        if measured is not None:
            out.update({key: measured[key] for key in ("hc_px", "bpd_px", "ofd_px")})
    out["reasons"] = reasons
    return out


def has_head_biometry(row: Any) -> bool:
    """Whether ``row`` has any head biometry to show (in mm, or in pixels on its head ellipse)."""
    if row is None:
        return False
    values = head_values(row)
    return any(values[key] is not None for key in HEAD_KEYS)


def describe_ga(ga_weeks: float) -> str:
    """GA with its range: '12.7 wk (+-2 wk: 10.7-14.7)'."""
    return (f"{ga_weeks:.1f} wk (+-{GA_RANGE_WEEKS:g} wk: {ga_weeks - GA_RANGE_WEEKS:.1f}-"
            f"{ga_weeks + GA_RANGE_WEEKS:.1f})")


def _head_item(values: dict, stem: str) -> tuple[str | None, str | None, bool]:
    """(the value as shown or None, the reason it is absent or only in pixels, whether it is in pixels)."""
    reasons = values["reasons"]
    if stem == "ga":
        ga = values["ga_weeks"]
        return (None, reasons.get("ga_weeks"), False) if ga is None else (describe_ga(ga), None, False)
    mm, px = values[f"{stem}_mm"], values[f"{stem}_px"]
    text = _length(mm, px)
    if text is None:
        return None, reasons.get(f"{stem}_px") or reasons.get(f"{stem}_mm"), False
    in_px = mm is None
    return text, reasons.get(f"{stem}_mm") if in_px else None, in_px


def _length(mm: float | None, px: float | None) -> str | None:
    """A head length as the labels and table write it: '69.5 mm', else '412 px'; None without either."""
    if mm is not None:
        return f"{mm:.1f} mm"
    return None if px is None else f"{px:.0f} px"


def describe_head_value(row: Any, name: str) -> str:
    """One table cell: HC, BPD or OFD as ``describe_hsd`` writes a length (mm, else px with why no mm), GA with its
    range; 'none (why)' where the value is absent, '-' where nothing says why."""
    values = head_values(row)
    stem = dict(HEAD_ROWS)[name]
    if stem != "ga" and (values[f"{stem}_mm"] is not None or values[f"{stem}_px"] is not None):
        return describe_hsd(values[f"{stem}_mm"], values[f"{stem}_px"], values["reasons"].get(f"{stem}_mm"))
    text, why, _ = _head_item(values, stem)
    if text is not None:
        return text
    return f"none ({why})" if why else "-"


def describe_head(row: Any) -> str:
    """HC, BPD, OFD and GA on one line, each reason said once: 'HC 69.5 mm, BPD 20.2 mm, OFD 24.0 mm, GA 12.7 wk
    (+-2 wk: 10.7-14.7)', or 'HC 412 px, BPD 130 px, OFD 155 px, GA - (no mm, no GA: why)', or 'no HC, BPD, OFD,
    GA: why'."""
    values = head_values(row)
    shown, missing = [], {}  # missing: reason -> what it holds back, in order
    for name, stem in HEAD_ROWS:
        text, why, in_px = _head_item(values, stem)
        shown.append(f"{name} {text or '-'}")
        if text is None or in_px:
            what = "mm" if in_px else name
            names = missing.setdefault(why or "not measured", [])
            if what not in names:
                names.append(what)
    if all(text.endswith(" -") for text in shown):
        return "; ".join(f"no {', '.join(names)}: {why}" for why, names in missing.items())
    notes = "; ".join(f"no {', no '.join(_grouped(names))}: {why}" for why, names in missing.items())
    return ", ".join(shown) + (f" ({notes})" if notes else "")


def _grouped(names: list[str]) -> list[str]:
    """'mm' alone, the value names together: ['mm', 'GA'] -> ['mm', 'GA']; ['HC', 'GA'] -> ['HC, GA']."""
    values = [n for n in names if n != "mm"]
    return (["mm"] if "mm" in names else []) + ([", ".join(values)] if values else [])


def hc_label(values: Mapping, whose: str | None = None) -> str | None:
    """The HC printed beside the head ellipse in the report: 'HC 69.5 mm' where calibrated, else
    'HC 412 px' (the table says why there is no mm), followed by whose it is; None without an HC."""
    length = _length(values.get("hc_mm"), values.get("hc_px"))
    if length is None:
        return None
    return f"HC {length}" if not whose else f"HC {length} ({whose})"


def head_labels(row: Any, whose: str | None = None) -> list[str]:
    """The head biometry printed beside the ellipse on a key frame, line by line: 'HC 69.5 mm (confirmed)',
    'BPD 20.2 mm, OFD 24.0 mm', 'GA 12.7 wk +-2'; pixels where there is no mm (the table says why); 'HC withheld'
    where there is no HC at all."""
    values = head_values(row)
    lines = [hc_label(values, whose) or "HC withheld"]
    diameters = [f"{name} {text}" for name, stem in (("BPD", "bpd"), ("OFD", "ofd"))
                 if (text := _length(values[f"{stem}_mm"], values[f"{stem}_px"]))]
    if diameters:
        lines.append(", ".join(diameters))
    if values["ga_weeks"] is not None:
        lines.append(f"GA {values['ga_weeks']:.1f} wk +-{GA_RANGE_WEEKS:g}")
    return lines


def describe_transperineal(row: Any) -> str:
    """AoP and HSD of ``row`` (see :func:`values_of`) on one line: 'AoP 127.6 deg, HSD 14.0 mm', pixels with why there
    is no mm, or why either is absent (said once where both are absent for the same reason):
    ``workstation.measure.describe_aop_hsd``, the one formatter the records' refusals use too."""
    values = values_of(row)
    return describe_aop_hsd(values["aop_deg"], values["hsd_px"], values["hsd_mm"], values["reasons"])


def shows_head_biometry(records, rows, classes=None) -> bool:
    """Whether an exam's head biometry belongs in its table, label or history: the AI classed some row's frame an axial
    head plane (where a value withheld is shown with its reason), or a row on a frame no analysis classed has some (AI
    or a person's). A frame classed transperineal has none to show: the pipeline withholds it there, for the AI and
    for a person's correction alike. ``classes``: the exam's plane classes (``Records.frame_classes``) where the
    caller has read them; else they are read once here, never a frame per row."""
    from workstation.inference.planes import BIOMETRY_PLANE

    for row in rows:
        if row is None:
            continue
        if classes is None or classes.exam_id != row.exam_id:
            classes = records.frame_classes(row.exam_id)
        frame_class = classes.of(row)
        if frame_class == BIOMETRY_PLANE or (frame_class is None and has_head_biometry(row)):
            return True
    return False

__all__ = ["HEAD_KEYS", "HEAD_ROWS", "describe_ga", "describe_head", "describe_head_value", "describe_transperineal",
           "has_head_biometry", "hc_label", "head_labels", "head_values", "shows_head_biometry",
           "values_of"]
