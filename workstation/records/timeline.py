"""The sonopartogram of one labour, Qt-free: AoP and HSD of each exam against hours since the labour started.

Each exam contributes its *current* measurement (``Records.current_measurement``): a person's latest
correction or confirmation when there is one, else the AI's. A point's ``source`` is whose its AoP is
(``workstation.sources.source_of``): "confirmed" where a person corrected or confirmed it, "ai" where it is the AI's,
also in a person's correction that moved other calipers only; ``hsd_source`` the same for the HSD.
Beside it, the AI's values on the frame that value stands on, a person's value too, since a person may measure a
frame other than the one the AI chose, where the AI was more or less sure: ``ai_aop_deg``, the AI's AoP on that
frame, and ``ai_uncertainty``, the AI's uncertainty there (:func:`ai_on_frame`, :func:`ai_uncertainty_of`);
``ai_frame_index`` (and ``ai_uncertainty_frame_index``, the same) names the frame. ``ai_on_record`` is the AI's own
value on record for the exam (``{"frame_index", "aop_deg", "uncertainty"}``, its chosen frame), with that frame's
uncertainty. An AI value never sits beside another frame's uncertainty.

* **120° line** (:data:`AOP_SVD_THRESHOLD_DEG`): Kalache et al. 2009 (Ultrasound Obstet Gynecol 33:326-330)
  found an AoP of 120° or more associated with spontaneous vaginal delivery in prolonged second stage.
* **Trend**: the least-squares slope of AoP over hours, across the exams with an AoP (needs two at
  different times), in degrees per hour.
* **Stalled**: the latest AoP has risen less than ``min_rise_deg`` over the most recent exam at least
  ``span_h`` hours earlier; an AoP that did not rise or fell is always stalled (a falling AoP is not progress),
  and the reason says "rose", "did not change" or "fell". No guideline gives an AoP-progress threshold: **2 h
  and 5° are configurable product defaults**, not clinical standards. 2 h echoes the time frame guidelines use
  to judge delay in the second stage (NICE CG190: delay diagnosed after 2 h of active second stage in a
  nulliparous woman);
  5° is meant to sit above the few degrees by which repeated AoP measurements of one head typically
  differ, so that measurement noise alone rarely raises (or clears) the flag. With less than ``span_h``
  of exams the flag is ``False`` and ``stall_check`` says why. The judgement never hides what it could not weigh: an
  exam without an AoP that it had to leave out (``aop_reason`` says why it has none), and a judged exam whose AoP is
  the AI's, unreviewed, on a frame the AI rates HIGH uncertainty (``ai_high_uncertainty``), are named in its reason,
  to be reviewed (``stall_check``'s ``caveats``).

Hours count from the labour's start by ``workstation.records.store.scanner_time``'s rule, one rule for the whole
labour, the same that orders its exams: when any of its times has a UTC offset, every time in it is an absolute
instant (a naive one this machine's local time; a daylight-saving night has its real hours), else all are on the
scanner's wall clock; ``acquired`` and ``start`` are shown as kept, in the offset they were given.

``labor_timeline(...)`` returns exactly the ``timeline --json`` document: ``labor_id``, ``start``,
``points`` (``exam_id``, ``acquired``, ``hours``, ``aop_deg``, ``hsd_mm``, ``source``, plus extras),
``trend_deg_per_h``, ``stalled``, plus extras (patient, threshold, rule, reasons).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from workstation.inference.uncertainty import uncertainty_level
from workstation.records.store import AI, Measurement, Records, current_of, hours_between, latest_ai_of
from workstation.sources import describe, sources_of

AOP_SVD_THRESHOLD_DEG = 120.0
DEFAULT_STALL_SPAN_H = 2.0
DEFAULT_STALL_MIN_RISE_DEG = 5.0


@dataclass(frozen=True)
class StallRule:
    span_h: float = DEFAULT_STALL_SPAN_H
    min_rise_deg: float = DEFAULT_STALL_MIN_RISE_DEG


def trend_deg_per_h(hours: list[float], aop_deg: list[float]) -> float | None:
    """Least-squares slope of AoP on hours; ``None`` with fewer than two distinct times."""
    if len(hours) < 2 or len(set(hours)) < 2:
        return None
    slope, _intercept = np.polyfit(np.asarray(hours, float), np.asarray(aop_deg, float), 1)
    return float(slope)


def unreviewed_high_uncertainty(point: dict) -> bool:
    """Whether a timeline point's AoP is the AI's, unreviewed by a person, on a frame the AI rates HIGH uncertainty
    (``workstation.inference.uncertainty.uncertainty_level``, the one definition of HIGH): the point's
    ``ai_high_uncertainty``, which the charts mark and the stall judgement names."""
    uncertainty = point.get("ai_uncertainty")
    return (point.get("source") == "ai" and point.get("aop_deg") is not None and uncertainty is not None
            and uncertainty_level(uncertainty) == "HIGH")


def _left_out(point: dict, latest: bool, judged: bool) -> str:
    why = point.get("aop_reason")
    return (f"exam {point['exam_id']} at {point['hours']:.1f} h{', the latest exam,' if latest else ''} has no AoP"
            f"{f' ({why})' if why else ''}: {'left out of this judgement' if judged else 'not counted'}, review it")


def stall_check(points: list[dict], rule: StallRule) -> dict:
    """``{"stalled", "reason", "finding", "reference_exam_id", "rise_deg", "left_out_exam_ids",
    "high_uncertainty_exam_ids", "caveats"}``; the latest exam is the one with the most hours, whatever the order of ``points`` (ties keep their
    order; points without hours are not judged).

    Progress is a rising AoP: an AoP that did not rise, or fell, is stalled whatever ``rule.min_rise_deg`` says (a
    rule of 0 or less does not make a flat or falling AoP progress). ``rise_deg`` is signed (negative: it fell);
    ``reason`` says "rose", "did not change" or "fell" with the size of the change (that alone: ``finding``), then its
    ``caveats``:

    * an exam without an AoP from the reference exam on (between the two judged, or after the latest with one; any,
      where progress is not judged yet) is named with why it has none (its ``aop_reason``): the judgement is made
      without it, and says so (``left_out_exam_ids``), never as if it were not there;
    * a judged exam (the latest or the reference) whose AoP is the AI's, unreviewed, with HIGH uncertainty
      (:func:`unreviewed_high_uncertainty`) is named, to be reviewed (``high_uncertainty_exam_ids``)."""
    timed = [p for p in points if p["hours"] is not None]
    with_aop = sorted((p for p in timed if p["aop_deg"] is not None), key=lambda p: p["hours"])
    missing = sorted((p for p in timed if p["aop_deg"] is None), key=lambda p: p["hours"])
    out = {"stalled": False, "reference_exam_id": None, "rise_deg": None, "left_out_exam_ids": [],
           "high_uncertainty_exam_ids": [], "caveats": []}

    def finish(reason: str, judged: list[dict], after: float | None) -> dict:
        last = max((p["hours"] for p in timed), default=None)
        left = [p for p in missing if after is None or p["hours"] >= after]
        high = [p for p in judged if unreviewed_high_uncertainty(p)]
        out["left_out_exam_ids"] = [p["exam_id"] for p in left]
        out["high_uncertainty_exam_ids"] = [p["exam_id"] for p in high]
        out["caveats"] = ([_left_out(p, p["hours"] == last and len(timed) > 1, bool(judged)) for p in left]
                          + [f"exam {p['exam_id']}'s AoP is the AI's with HIGH uncertainty ({p['ai_uncertainty']:.2f}), "
                             "not reviewed by a person: review it" for p in high])
        out["finding"] = reason  # the judgement's own words, without its caveats
        out["reason"] = "; ".join([reason] + out["caveats"])
        return out

    if not with_aop:
        return dict(out, reason="no exam has an AoP", finding="no exam has an AoP")
    latest = with_aop[-1]
    earlier = [p for p in with_aop if p["hours"] <= latest["hours"] - rule.span_h]
    if not earlier:
        return finish(f"the exams with an AoP span less than {rule.span_h:g} h; progress not judged yet", [], None)
    reference = earlier[-1]
    rise = round(latest["aop_deg"] - reference["aop_deg"], 2)
    shown = round(rise, 1)  # the change as the reason states it
    stalled = rise < rule.min_rise_deg or shown <= 0
    between = (f"from exam {reference['exam_id']} to exam {latest['exam_id']} over "
               f"{latest['hours'] - reference['hours']:.1f} h")
    asked = f"the {rule.min_rise_deg:g} deg per {rule.span_h:g} h the stall rule asks for"
    if shown > 0:
        size = f"{shown:.1f}" if (shown < rule.min_rise_deg) == stalled else f"{rise:.2f}"  # 4.96 is not "5.0"
        reason = f"AoP rose {size} deg {between}, {'less than' if stalled else 'at least'} {asked}"
    elif shown == 0:
        reason = f"AoP did not change {between}: no progress"
    else:
        reason = f"AoP fell {-shown:.1f} deg {between}: a falling AoP is not progress (check both exams' measurements)"
    out.update(stalled=stalled, reference_exam_id=reference["exam_id"], rise_deg=rise)
    return finish(reason, [reference, latest], reference["hours"])


def ai_on_frame(records: Records, exam_id: int, frame_index: int | None, rows=None) -> dict:
    """The AI's AoP on one frame of an exam, with the AI's uncertainty on that same frame: ``{"frame_index",
    "aop_deg", "uncertainty"}``, from the latest AI row on that frame (the AI's chosen frame, a value restored
    there), else that frame's result in the exam's latest analysis; the values are ``None`` where the AI never
    measured that frame. ``rows``: the exam's measurement rows, when the caller has them."""
    out = {"frame_index": frame_index, "aop_deg": None, "uncertainty": None}
    if frame_index is None:
        return out
    rows = records.measurements(exam_id) if rows is None else rows
    on_frame = [m for m in rows if m.kind == AI and m.frame_index == frame_index]
    if on_frame:
        out["aop_deg"] = on_frame[-1].aop_deg
        out["uncertainty"] = next((m.uncertainty for m in reversed(on_frame) if m.uncertainty is not None), None)
        if out["uncertainty"] is not None:
            return out
    analysis = records.latest_analysis(exam_id)
    frame = None if analysis is None else records.frame_result(analysis.id, frame_index)
    if frame is not None:
        out["uncertainty"] = frame.get("uncertainty")
        if not on_frame:
            out["aop_deg"] = frame.get("aop_deg")
    return out


def ai_uncertainty_of(records: Records, current, rows=None) -> float | None:
    """The AI's uncertainty on the frame ``current`` (a measurement row) stands on: the row's own (an AI row's, or
    the one a correction or confirmation kept from the AI's analysis of that frame); for a row without one, the
    AI's on that frame (:func:`ai_on_frame`); ``None`` where the AI never analysed that frame."""
    if current is None:
        return None
    if current.uncertainty is not None or current.frame_index is None:
        return current.uncertainty
    return ai_on_frame(records, current.exam_id, current.frame_index, rows)["uncertainty"]


def point_whose(point: dict) -> str:
    """Whose a timeline point's AoP is, and its HSD where that is someone else's (``workstation.sources``): the
    words the CLI's timeline and the window's timeline tooltip give."""
    sources = point.get("sources") or {}
    if not sources:
        return "AI" if point["source"] == "ai" else f"{point['kind']} by {point['by']}"
    aop, hsd = describe(sources.get("aop")), describe(sources.get("hsd"))
    return aop if aop == hsd or point.get("hsd_px") is None else f"AoP {aop}, HSD {hsd}"


def labor_timeline(records: Records, labor_id: int, rule: StallRule = StallRule(), *,
                   measurements: "Callable[[int], list[Measurement]] | None" = None) -> dict:
    """The sonopartogram JSON of a labour (see the module docstring). ``measurements``: how an exam's measurement rows
    are read, where the caller reads them once for more than the timeline (a report); else from the records."""
    measurements = records.measurements if measurements is None else measurements
    labor = records.labor(labor_id)
    patient = records.patient(labor.patient_id)
    points = []
    # The exams in order and the labour's one reading of its times that ordered them, by which hours are counted too.
    exams, reading = records.exams_with_reading(labor)
    for exam in exams:
        rows = measurements(exam.id)
        current, ai = current_of(rows), latest_ai_of(rows)
        hours = None if labor.start is None else hours_between(labor.start, exam.acquired, reading)
        # The AI's values on the frame the value in force stands on (also a person's, who may have measured a frame
        # other than the one the AI chose, where the AI was more or less sure), each beside its own frame's
        # uncertainty; the AI's own value on record (its chosen frame) beside that frame's.
        beside = ai_on_frame(records, exam.id, None if current is None else current.frame_index, rows)
        if current is not None and current.uncertainty is not None:
            beside["uncertainty"] = current.uncertainty  # kept with the row from the AI's analysis of its frame
        own = None if ai is None else {"frame_index": ai.frame_index, "aop_deg": ai.aop_deg,
                                       "uncertainty": ai_uncertainty_of(records, ai, rows)}
        points.append({
            "exam_id": exam.id,
            "acquired": exam.acquired.isoformat(),
            "hours": None if hours is None else round(hours, 4),
            "aop_deg": None if current is None else current.aop_deg,
            "hsd_mm": None if current is None else current.hsd_mm,
            # Whose the AoP is (the sonopartogram's value; ``workstation.sources``): a person's correction of the HSD
            # alone leaves the AI's AoP the AI's. ``hsd_source`` the same for the HSD; ``sources`` who and when, per
            # quantity.
            "source": "ai" if current is None else current.point_source("aop"),
            "hsd_source": "ai" if current is None else current.point_source("hsd"),
            "sources": None if current is None else sources_of(current),
            "hsd_px": None if current is None else current.hsd_px,
            "hsd_mm_reason": None if current is None or current.hsd_mm is not None else current.reasons.get("hsd_mm"),
            "kind": None if current is None else current.kind,
            "by": None if current is None else current.by,
            "measurement_id": None if current is None else current.id,
            "frame_index": None if current is None else current.frame_index,
            "ai_aop_deg": beside["aop_deg"],
            "ai_uncertainty": beside["uncertainty"],
            "ai_frame_index": beside["frame_index"],
            "ai_uncertainty_frame_index": beside["frame_index"],
            "ai_on_record": own,
            "acquired_source": exam.acquired_source,
            # Why there is no AoP ("not analysed" where the exam has no value yet), for the stall judgement's words.
            "aop_reason": ("not analysed" if current is None else
                           None if current.aop_deg is not None else current.reasons.get("aop_deg")),
        })
        points[-1]["ai_high_uncertainty"] = unreviewed_high_uncertainty(points[-1])
    measured = [p for p in points if p["aop_deg"] is not None]
    trend = trend_deg_per_h([p["hours"] for p in measured], [p["aop_deg"] for p in measured])
    stall = stall_check(points, rule)
    return {
        "labor_id": labor.id,
        "start": None if labor.start is None else labor.start.isoformat(),
        "points": points,
        "trend_deg_per_h": None if trend is None else round(trend, 3),
        "stalled": stall["stalled"],
        "start_source": labor.start_source,
        "patient": {"mrn": patient.mrn, "name": patient.name},
        "aop_threshold_deg": AOP_SVD_THRESHOLD_DEG,
        "stall_rule": asdict(rule),
        "stall_check": stall,
    }
