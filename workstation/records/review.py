"""A person's review of an exam's measurement: a correction (edited geometry) or a confirmation.

A correction goes through ``workstation.cine_review.recompute_json`` (``workstation.measure.recompute`` and the
pipeline's plane rule) with the exam's calibration in force (a manual one set on it, else the file's:
``workstation.records.calibration``) and the frame's class from its latest analysis: the same path the GUI's
calipers take, so a value corrected headless equals one corrected on screen. Each review is a new measurement row
that names the row it acted on (``supersedes_id``); nothing is overwritten.

Partial geometry: the parts given replace those of the frame's geometry in force, the current measurement's when
it is on the same frame, else the AI's geometry of that frame (its AI row there, or the frame's result in the exam's
latest analysis), as the viewer's calipers start from it; parts not given are kept from it, and so are the entries
a part is given without (``{"aop": {"tangent_point": [x, y]}}``: vertex and superior point kept). An ``aop`` given without
a ``ps_axis`` moves the PS axis with it (the AoP vertex and superior point are the PS axis' ends). Moving the PS
inferior end moves the HSD's start with it (the HSD starts there, as in the viewer), unless the HSD's start is given.

Two people at once (two app copies, or the window and ``workstation correct``): a review says which of the exam's
measurement rows the screen it was made on was based on (``review["based_on_measurement_id"]``, the
``based_on_measurement_id`` argument); when someone else changed the exam's value since (a correction, a
confirmation, a withdrawal), the review is refused with :class:`ReviewConflict`, nothing written, rather than
superseding a value its author never saw. The check and the write are one transaction.
"""
from __future__ import annotations

import math

from workstation.inference.manifest import model_label
from workstation.measure import describe_aop_hsd
from workstation.records.database import RecordsError
from workstation.records.store import (AI, CONFIRMATION, CORRECTION, VALUE_KEYS, ExamCalibration, Measurement, Records,
                                       current_of, now_iso)
from workstation.sources import PART_ENTRIES, QUANTITIES, ai_sources, source_of, sources_after, sources_of

GEOMETRY_PARTS = ("ps_axis", "aop", "hsd", "head_ellipse", "head_contour")
BASED_ON = "based_on_measurement_id"  # the review record's key: the exam's measurement the screen was based on
# ... and the exam's manual calibration row the screen was measured in (None: the file's own calibration)
BASED_ON_CALIBRATION = "based_on_calibration_id"
_UNCHECKED = object()
_AS_SHOWN = object()  # _restore: the records keep what the screen shows on the frame, not the row named


class ReviewConflict(RecordsError):
    """A review refused because the exam's value on record changed since the screen it was made on read it (someone
    else's correction, confirmation or withdrawal), or its calibration did (someone else set one, which may have
    written AI rows only); nothing was written. ``str(exc)`` is one line: who changed it, when, on which frame, to
    what, and what is on record now.

    Attributes: ``exam_id``; ``frame_index`` (the frame the refused review was of, or None); ``based_on_measurement_id``
    (the row the screen was based on; None: the exam had none); ``changes`` (the rows written since that changed the
    exam's value, oldest first; ``latest_change`` the last, None when only the calibration changed); ``calibration``
    (the exam's calibration row now when the calibration changed, else None); ``current`` (the exam's current
    measurement now, or None); ``recorded`` (what a viewer opening the exam now shows as a person's review,
    :func:`recorded_review`'s dict, None when the AI's value is current)."""

    def __init__(self, message: str, *, exam_id: int, frame_index: int | None, based_on_measurement_id: int | None,
                 changes: list[Measurement], current: Measurement | None, recorded: dict | None,
                 calibration: ExamCalibration | None = None):
        super().__init__(message)
        self.exam_id = exam_id
        self.frame_index = frame_index
        self.based_on_measurement_id = based_on_measurement_id
        self.changes = tuple(changes)
        self.calibration = calibration
        self.current = current
        self.recorded = recorded

    @property
    def latest_change(self) -> Measurement | None:
        return self.changes[-1] if self.changes else None


def record_state(current: Measurement | None) -> dict:
    """The exam's current measurement as a viewer keeps it (its ``records_basis``, a review command's records state):
    ``{"measurement_id", "frame_index", "kind", "by", "values"}`` (all None: the exam has none), so that it can say
    which frame's review is the exam's value on record, whose it is and what, without reading the records again."""
    if current is None:
        return {"measurement_id": None, "frame_index": None, "kind": None, "by": None, "values": {}}
    return {"measurement_id": current.id, "frame_index": current.frame_index, "kind": current.kind, "by": current.by,
            "values": {key: getattr(current, key) for key in VALUE_KEYS}}


def changes_since(records: Records, exam_id: int, based_on_measurement_id: int | None,
                  rows: list[Measurement] | None = None) -> list[Measurement]:
    """The exam's rows written after ``based_on_measurement_id`` (None: all) that changed whose value is on record: a
    person's correction or confirmation, or a withdrawal (an AI row superseding one). A new analysis, or the AI's
    value measured again in a new calibration, never displaces a person's value and is not one of them. ``rows``: the
    exam's measurement rows, oldest first, where the caller has read them in its transaction (else they are read)."""
    rows = records.measurements(exam_id) if rows is None else rows
    if based_on_measurement_id is not None and all(m.id != based_on_measurement_id for m in rows):
        raise RecordsError(f"measurement {based_on_measurement_id} is not of exam {exam_id}")
    return [m for m in rows if (based_on_measurement_id is None or m.id > based_on_measurement_id)
            and (m.kind != AI or m.supersedes_id is not None)]


def check_unchanged(records: Records, exam_id: int, based_on_measurement_id: int | None,
                    frame_index: int | None = None, based_on_calibration_id=_UNCHECKED, *,
                    rows: list[Measurement] | None = None) -> None:
    """Raise :class:`ReviewConflict` when someone changed the exam's value on record since the row
    ``based_on_measurement_id`` (see :func:`changes_since`), or its calibration in force is no longer the manual row
    ``based_on_calibration_id`` (None: the file's own; not given: not checked); call it in the transaction that writes
    the review, with the exam's measurement ``rows`` that transaction read (else they are read here)."""
    rows = records.measurements(exam_id) if rows is None else rows
    changes = changes_since(records, exam_id, based_on_measurement_id, rows)
    calibration = (None if based_on_calibration_id is _UNCHECKED
                   else _calibration_changed(records, exam_id, based_on_calibration_id))
    if changes or calibration is not None:
        raise _conflict(records, exam_id, frame_index, based_on_measurement_id, changes, calibration, rows)


def check_calibration_unchanged(records: Records, exam_id: int, based_on_calibration_id: int | None) -> None:
    """Raise :class:`ReviewConflict` when the exam's calibration in force is no longer the manual row
    ``based_on_calibration_id`` (None: the file's own): a calibration set on a screen someone else's calibration made
    stale. Its own comparison, in the transaction that writes the calibration; the exam's measurement rows are read
    only to say what is on record in the refusal."""
    calibration = _calibration_changed(records, exam_id, based_on_calibration_id)
    if calibration is None:
        return
    rows = records.measurements(exam_id)
    current = current_of(rows)
    raise _conflict(records, exam_id, None, None if current is None else current.id, [], calibration, rows)


def _calibration_changed(records: Records, exam_id: int, based_on_calibration_id: int | None) -> ExamCalibration | None:
    """The exam's calibration row now, where the manual calibration in force is not ``based_on_calibration_id`` (None:
    the file's own); None where it is."""
    now = records.current_calibration(exam_id)
    manual = now if now is not None and now.is_manual else None
    return now if (None if manual is None else manual.id) != based_on_calibration_id else None


def _conflict(records: Records, exam_id: int, frame_index: int | None, based_on_measurement_id: int | None,
              changes: list[Measurement], calibration: ExamCalibration | None,
              rows: list[Measurement]) -> ReviewConflict:
    """The refusal of a review made on a stale screen: its one line and what is on record (``rows``: the exam's)."""
    current = current_of(rows)
    latest = changes[-1] if changes else None
    if latest is None:
        text = (f"Not saved: the calibration of exam {exam_id} was changed since it was opened here: "
                f"{calibration.describe()}")
    else:
        text = f"Not saved: exam {exam_id} was changed since it was opened here: {_describe_change(latest, rows)}"
        if len(changes) > 1:
            text += f" ({len(changes)} changes since, this the latest)"
        if calibration is not None:
            text += f", and its calibration: {calibration.describe()}"
    if latest is not None and current is not None and current.id == latest.id:
        text += "; that is the value on record now"
    else:
        text += f"; on record now: {_describe_row(current)}"
    text += (f". Nothing was saved or overwritten: reopen the exam to see the value on record before reviewing it "
             f"again (`workstation history --exam {exam_id}`).")
    return ReviewConflict(text, exam_id=exam_id, frame_index=frame_index,
                          based_on_measurement_id=based_on_measurement_id, changes=changes, current=current,
                          recorded=recorded_review(records, exam_id, rows), calibration=calibration)


def _describe_values(m: Measurement) -> str:
    """A row's values in a refusal: AoP and HSD as the reports and the CLI write them (one formatter,
    ``workstation.measure.describe_aop_hsd``; ``workstation.reports.values`` cannot be imported here without a cycle:
    the reports import the records), and its HC where it has one."""
    text = describe_aop_hsd(m.aop_deg, m.hsd_px, m.hsd_mm, m.reasons)
    return text if m.hc_mm is None else f"{text}, HC {m.hc_mm:.1f} mm"


def _describe_row(m: Measurement | None) -> str:
    if m is None:
        return "no value"
    whose = "the AI's value" if m.kind == AI else f"{m.kind} by {m.by}"
    frame = "" if m.frame_index is None else f" of frame {m.frame_index}"
    return f"{whose}{frame} ({_describe_values(m)})"


def _describe_change(m: Measurement, rows: list[Measurement]) -> str:
    if m.kind != AI:
        return f"{m.kind} by {m.by} at {m.created_at} of frame {m.frame_index} ({_describe_values(m)})"
    withdrawn = next((r for r in rows if r.id == m.supersedes_id), None)
    what = m.note or ("a value withdrawn; the AI value stands" if withdrawn is None else
                      f"{withdrawn.kind} by {withdrawn.by} withdrawn; the AI value stands")
    return f"{what}, at {m.created_at}"


def _and(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def completed_parts(edited: dict, base: dict | None) -> dict:
    """The edited parts, each a whole part: the entries a part was given without (``{"aop": {"tangent_point":
    [x, y]}}``, the commonest AoP correction) are those of the same part in ``base``, the frame's geometry in force,
    as whole parts not given are (an ``aop``'s vertex and superior point from an edited ``ps_axis`` where one is
    given: they are the PS axis' ends). A part that cannot be completed is refused, naming its entries."""
    base = base or {}
    completed = {}
    for part, given in edited.items():
        entries = PART_ENTRIES.get(part)
        missing = [] if entries is None or not isinstance(given, dict) else [e for e in entries if e not in given]
        if not missing:
            completed[part] = given
            continue
        source = dict(base.get(part) or {})
        ps_axis = edited.get("ps_axis") if isinstance(edited.get("ps_axis"), dict) else None
        if part == "aop" and ps_axis and {"superior", "inferior"} <= set(ps_axis):
            source.update(vertex=ps_axis["inferior"], superior=ps_axis["superior"])
        lacking = [e for e in missing if source.get(e) is None]
        if lacking:
            raise RecordsError(
                f"the '{part}' part needs {_and(entries)}; {_and(lacking)} {'is' if len(lacking) == 1 else 'are'} "
                f"not given and the frame's value in force has no '{part}' part to take "
                f"{'it' if len(lacking) == 1 else 'them'} from")
        completed[part] = {**given, **{e: source[e] for e in missing}}
    return completed


def merged_geometry(edited: dict, base: dict | None) -> dict:
    """The edited parts (completed from the base, :func:`completed_parts`) over the base geometry (see the module
    docstring)."""
    unknown = sorted(set(edited) - set(GEOMETRY_PARTS))
    if unknown:
        raise RecordsError(f"unknown geometry part(s) {', '.join(unknown)}; expected {', '.join(GEOMETRY_PARTS)}")
    given_hsd = edited.get("hsd") if isinstance(edited.get("hsd"), dict) else {}
    edited = completed_parts(edited, base)
    merged = {part: (base or {}).get(part) for part in GEOMETRY_PARTS}
    merged.update(edited)
    if edited.get("aop") and "ps_axis" not in edited:
        merged["ps_axis"] = {"superior": edited["aop"]["superior"], "inferior": edited["aop"]["vertex"]}
    # The HSD starts at the PS inferior end: moving that end moves the HSD's start with it, as the viewer's calipers
    # do (``cine_review.ps_moved``, one rule), unless the person gives the HSD's start themselves.
    before = ((base or {}).get("ps_axis") or {}).get("inferior")
    after = (merged.get("ps_axis") or {}).get("inferior")
    if "start" not in given_hsd and after is not None and list(after) != list(before or []):
        from workstation.cine_review import ps_moved

        merged = ps_moved(merged)
    return merged


def correct(records: Records, exam_id: int, frame_index: int, geometry: dict, user: str,
            note: str | None = None, *, based_on_measurement_id=_UNCHECKED) -> Measurement:
    """A person's correction: values recomputed from ``geometry`` (frame-pixel points) on frame ``frame_index``,
    the parts not given kept from that frame's geometry in force (see the module docstring).

    ``based_on_measurement_id``: the exam's measurement the corrector saw (None: none); refused with
    :class:`ReviewConflict` when someone changed the exam's value since. Without it, the one read here, so that a
    value written by someone else while this correction was measured is not superseded unseen either."""
    from workstation.cine_review import recompute_json
    from workstation.measure import Geometry
    from workstation.records.calibration import load_exam

    exam = records.exam(exam_id)
    if not 0 <= frame_index < exam.n_frames:
        raise RecordsError(f"exam {exam_id} has frames 0 to {exam.n_frames - 1}, not {frame_index}")
    if not isinstance(geometry, dict):
        raise RecordsError("the geometry must be a JSON object such as {\"aop\": {...}, \"hsd\": {...}}")
    rows = records.measurements(exam_id)  # read once before the scan, once more in the transaction that writes
    current = current_of(rows)
    if based_on_measurement_id is not _UNCHECKED:  # early: before the scan is read
        check_unchanged(records, exam_id, based_on_measurement_id, frame_index, rows=rows)
    analysed = _analysed_frame(records, exam_id, frame_index)
    if current is not None and current.frame_index == frame_index and current.geometry:
        base, base_sources = current.geometry, sources_of(current)
    else:
        base, base_sources = _ai_basis(records, exam_id, frame_index, analysed, rows)
    try:
        merged = merged_geometry(geometry, base)
        Geometry.from_json(merged)
        edited = Geometry.from_json(completed_parts(geometry, base))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:  # MeasurementRefused: ValueError
        raise RecordsError(f"the geometry JSON is not usable: {_why(exc)}") from None
    cine = load_exam(records, exam)  # with the exam's calibration in force: a manual one set on it, else the file's
    try:
        _check_on_frame(edited, cine.frame_shape)
        # A refused construction comes back as values of None with the reason, reported just below.
        # Measured against the AI's result on the frame, as the viewer's calipers are: its head ellipse whose
        # biometry it withheld is never adopted into a person's row (unless the person gives a head ellipse).
        ai = analysed if "head_ellipse" not in geometry else {**analysed, "ai_biometry_withheld": None}
        measured = recompute_json(merged, cine.calibration, cine.frame_shape, analysed.get("frame_class"), ai)
        time_s = float(cine.times_s[frame_index])
    finally:
        cine.close()
    if all(measured.get(key) is None for key in VALUE_KEYS):
        reasons = "; ".join(f"{k}: {v}" for k, v in measured["reasons"].items() if k in ("aop_deg", "hsd_px"))
        raise RecordsError(f"the corrected geometry gives no measurement ({reasons})")
    _check_keeps_values(measured, current, frame_index, analysed, rows)
    with records.transaction():  # the check and the row together: nobody writes between them
        rows = records.measurements(exam_id)
        basis = None if current is None else current.id
        check_unchanged(records, exam_id, basis if based_on_measurement_id is _UNCHECKED else based_on_measurement_id,
                        frame_index, rows=rows)
        current = current_of(rows)  # the same person's value; a new analysis' AI row may be newer
        # Whose each value is: the person's where they changed its calipers, the basis's where they did not.
        at = now_iso()
        sources = sources_after(base_sources, base, merged, CORRECTION, user.strip(), at)
        return records.add_measurement(
            exam_id, CORRECTION, user, measured, supersedes_id=None if current is None else current.id,
            frame_index=frame_index, time_s=time_s, uncertainty=analysed.get("uncertainty"),
            calibration_source=measured["calibration"]["source"], note=note, sources=sources, created_at=at)


def _check_keeps_values(measured: dict, current: Measurement | None, frame_index: int, analysed: dict,
                        rows: list[Measurement]) -> None:
    """Refuse a correction that loses an AoP or HSD its basis had (``cine_review.lost_value_problem``): the AI's on
    the frame (its analysis, its AI rows there) or the value in force there; one line, nothing written."""
    from workstation.cine_review import lost_value_problem

    bases = [analysed] + [_values_of(m) for m in rows
                          if m.frame_index == frame_index and (m.kind == AI or m is current)]
    problem = lost_value_problem(measured, *bases)
    if problem:
        raise RecordsError(f"{problem}; nothing was saved")


def _values_of(m: Measurement) -> dict:
    return {key: getattr(m, key) for key in VALUE_KEYS}


def _ai_basis(records: Records, exam_id: int, frame_index: int, analysed: dict,
              rows: list[Measurement]) -> tuple[dict | None, dict]:
    """The AI's geometry of a frame and its values' sources (the AI's): its latest AI row on that frame (measured
    again in a calibration, restored) among the exam's ``rows``, else the frame's result in the exam's latest analysis
    (``analysed``); no geometry where the AI never measured it."""
    on_frame = [m for m in rows if m.kind == AI and m.frame_index == frame_index and m.geometry]
    if on_frame:
        return on_frame[-1].geometry, sources_of(on_frame[-1])
    analysis = records.latest_analysis(exam_id)
    model = None if analysis is None else analysis.model_label
    return analysed.get("geometry"), ai_sources(model, None if analysis is None else analysis.analyzed_at)


def _model_name(review: dict) -> str:
    """The name an AI row written from the viewer goes under: the model of the viewer's analysis, with its version."""
    model = review.get("model") or {}
    return model_label(model.get("name", "model"), model.get("version", ""))


def _restore(records: Records, review: dict, rows: list[Measurement], by_acting: str) -> dict | None:
    """An undo (redo) in the viewer: the row that makes ``review["restore_measurement_id"]`` current again (see
    ``save_viewer_review``), as :func:`_planned` arguments; None when it is current already. ``rows``: the exam's."""
    exam_id, frame_index = review["exam_id"], int(review["frame_index"])
    current = current_of(rows)
    target_id = review["restore_measurement_id"]
    target = None if target_id is None else _by_id(records, rows, target_id)
    if target is not None and target.exam_id != exam_id:
        raise RecordsError(f"measurement {target_id} is not of exam {exam_id}")
    step = "undo" if review.get("change") == "undo" else "redo"
    if target is not None and target.kind == AI:
        # Back to the AI's value as it was on record (its own frame: the AI's chosen one, which need not be the
        # frame undone, so that a step and its undo leave the exam's point on the timeline where it was), in the
        # calibration in force: measured again since by a calibration set on the exam, that row.
        target = _measured_again(target, rows)
        if current is not None and current.kind == AI and _same_values(target, current) \
                and current.frame_index == target.frame_index:
            return None  # that AI value is current already
        note = (f"{current.kind} by {current.by} withdrawn in the viewer{by_acting} ({step}); the AI value stands"
                if current is not None and current.kind != AI else f"the AI value restored in the viewer ({step})")
        return _planned(
            exam_id, AI, target.by, {key: getattr(target, key) for key in VALUE_KEYS},
            supersedes_id=None if current is None else current.id, analysis_id=target.analysis_id,
            frame_index=target.frame_index, time_s=target.time_s, uncertainty=target.uncertainty,
            calibration_source=target.calibration_source, geometry=target.geometry, reasons=target.reasons, note=note)
    if target is None:
        if current is None or current.kind == AI:
            return None  # the AI's value is current already
        return _planned(
            exam_id, AI, _model_name(review), review.get("ai") or {}, supersedes_id=current.id, frame_index=frame_index,
            time_s=review.get("time_s"), uncertainty=review.get("uncertainty"),
            calibration_source=review.get("calibration_source"), geometry=review.get("ai_geometry"),
            note=f"{current.kind} by {current.by} withdrawn in the viewer{by_acting} ({step}); the AI value stands")
    if current is not None and current.id == target.id:
        return None
    values = {key: getattr(target, key) for key in VALUE_KEYS}
    fields = {"analysis_id": target.analysis_id, "frame_index": target.frame_index, "time_s": target.time_s,
              "uncertainty": target.uncertainty, "calibration_source": target.calibration_source,
              "geometry": target.geometry, "reasons": target.reasons, "sources": target.sources}
    shown_by = review.get("confirmed_by") if review.get("confirmed") else review.get("corrected_by")
    shown_kind = CONFIRMATION if review.get("confirmed") else CORRECTION if review.get("corrected") else AI
    kind, by, measured_again = target.kind, target.by, ""
    if target.frame_index == frame_index and target.kind == CONFIRMATION and shown_kind != CONFIRMATION:
        return _AS_SHOWN  # an acceptance the screen withdrew on restoring it: its values changed (a calibration since)
    if target.frame_index == frame_index and (shown_kind, shown_by) == (target.kind, target.by):
        # The screen shows that review on its frame: its values as measured there (a calibration set since is in
        # force on screen too).
        values = review.get("corrected") or review.get("ai") or {}
        geometry = review.get("corrected_geometry") if review.get("corrected") else review.get("ai_geometry")
        fields.update(time_s=review.get("time_s"), calibration_source=review.get("calibration_source"),
                      geometry=geometry, reasons=None)
        fields["analysis_id"] = None
        if target.kind == CONFIRMATION:  # its acceptance as the screen holds it (withdrawn in part by a calibration)
            fields["sources"] = _with_ai_sources(records, exam_id, frame_index, review.get("confirmed_sources"), rows)
    else:
        # Another frame's (or one the screen does not show): measured in the calibration in force, where one was set
        # since it was written, as the screen shows a frame (an acceptance whose values it changed withdrawn).
        from workstation.records.calibration import in_force

        restated = in_force(records, target, rows)
        if restated is not None:
            kind, by, values, sources = restated
            fields.update(calibration_source=values["calibration"]["source"], geometry=values.get("geometry"),
                          reasons=values.get("reasons"), analysis_id=None, sources=sources)
            measured_again = ", measured again with the calibration in force"
    if (current is not None and (current.kind, current.by, current.frame_index) == (kind, by, fields["frame_index"])
            and all(getattr(current, key) == values.get(key) for key in VALUE_KEYS)
            and _same_whose(current, kind, by, fields["sources"])):
        return None  # that review is current already (a row of it restored before)
    note = f"{target.kind} by {target.by} restored in the viewer{by_acting} ({step}){measured_again}"
    if (kind, by) != (target.kind, target.by):
        note += (f"; {target.kind} by {target.by} withdrawn (its values changed)" +
                 ("; the AI value stands" if kind == AI else f"; {kind} by {by} stands"))
    if current is not None and current.kind != AI:
        note += f"; {current.kind} by {current.by} withdrawn"
    return _planned(exam_id, kind, by, values, supersedes_id=None if current is None else current.id, note=note,
                    **fields)


def _measured_again(ai: Measurement, rows: list[Measurement]) -> Measurement:
    """The latest AI row of the same geometry on the same frame as ``ai`` among its exam's ``rows`` (the AI's value
    measured again by a calibration set since, ``workstation.records.calibration``), or ``ai`` itself."""
    later = [m for m in rows if m.kind == AI and m.id > ai.id
             and m.frame_index == ai.frame_index and m.geometry == ai.geometry]
    return later[-1] if later else ai


def _by_id(records: Records, rows: list[Measurement], measurement_id: int) -> Measurement:
    """The row ``measurement_id`` among an exam's ``rows``, else as the records hold it (a row of another exam)."""
    return next((m for m in rows if m.id == measurement_id), None) or records.measurement(measurement_id)


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"a part lacks its {exc} entry"
    if isinstance(exc, IndexError):
        return "a point needs two coordinates, [x, y]"
    if isinstance(exc, AttributeError):
        return "each part must be a JSON object of named points, e.g. \"hsd\": {\"start\": [x, y], \"end\": [x, y]}"
    return str(exc)


def _check_on_frame(edited, frame_shape: tuple[int, ...]) -> None:
    """Refuse a given point that is not a finite position on the frame (a slip in typed JSON, not a correction:
    a point far off the image would still give an angle, a meaningless one)."""
    rows, cols = frame_shape[:2]
    points = [point for part in (edited.ps_axis, edited.aop, edited.hsd) if part is not None
              for point in vars(part).values() if isinstance(point, tuple)]
    if edited.head_ellipse is not None:
        points.append(edited.head_ellipse.center)
    points.extend(edited.head_contour or ())
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y) and -1 <= x <= cols and -1 <= y <= rows):
            raise RecordsError(f"the point ({x:g}, {y:g}) is not on the {cols} x {rows} frame; geometry is given in "
                               f"the frame's pixels, x across and y down from the top left corner")
    if edited.head_ellipse is not None and not math.isfinite(edited.head_ellipse.angle_deg):
        raise RecordsError("the head ellipse's angle_deg must be a finite number of degrees")


def _analysed_frame(records: Records, exam_id: int, frame_index: int) -> dict:
    """The frame's result in the exam's latest analysis (its plane class, and the AI's uncertainty there, which a
    correction keeps as the viewer's does); empty when the frame was never analysed."""
    analysis = records.latest_analysis(exam_id)
    if analysis is None:
        return {}
    return next((f for f in records.frame_results(analysis.id) if f.get("index") == frame_index), {})


def confirm(records: Records, exam_id: int, user: str, note: str | None = None, *,
            based_on_measurement_id=_UNCHECKED) -> Measurement:
    """A person confirms the exam's current measurement as it stands (a new row with the same values).
    ``based_on_measurement_id``: the exam's measurement the person saw (None: none); refused with
    :class:`ReviewConflict` when someone changed the exam's value since."""
    records.exam(exam_id)  # an unknown exam says so, rather than "nothing to confirm"
    with records.transaction():
        rows = records.measurements(exam_id)
        if based_on_measurement_id is not _UNCHECKED:
            check_unchanged(records, exam_id, based_on_measurement_id, rows=rows)
        current = current_of(rows)
        values = {} if current is None else {key: getattr(current, key) for key in VALUE_KEYS}
        _check_confirmable(exam_id, values)
        _check_lost_nothing(exam_id, current, rows)
        return records.add_measurement(
            exam_id, CONFIRMATION, user, values, analysis_id=current.analysis_id, supersedes_id=current.id,
            frame_index=current.frame_index, time_s=current.time_s, uncertainty=current.uncertainty,
            calibration_source=current.calibration_source, geometry=current.geometry, reasons=current.reasons,
            note=note)


def _check_confirmable(exam_id: int, values: dict, frame_index: int | None = None) -> None:
    """A confirmation needs a measured value (``cine_review.has_measured_value``, the one rule the window's Accept
    follows too); else one line, nothing written."""
    from workstation.cine_review import NO_VALUE_TO_CONFIRM, has_measured_value

    if not has_measured_value(values):
        where = "" if frame_index is None else f" on frame {frame_index}"
        raise RecordsError(f"exam {exam_id} has {NO_VALUE_TO_CONFIRM}{where}; analyse it or add a correction")


def _check_lost_nothing(exam_id: int, current: Measurement, rows: list[Measurement]) -> None:
    """A correction saved before such corrections were refused (``_check_keeps_values``) may lack an AoP or HSD the
    value it superseded had: it is not confirmed as it stands (one line why, nothing written)."""
    from workstation.cine_review import lost_value_problem

    if current.kind != CORRECTION or current.supersedes_id is None:
        return
    before = next((m for m in rows if m.id == current.supersedes_id), None)
    problem = None if before is None else lost_value_problem(
        {**_values_of(current), "geometry": current.geometry, "reasons": current.reasons}, _values_of(before))
    if problem:
        raise RecordsError(f"exam {exam_id}'s value in force, correction #{current.id} by {current.by}, has no "
                           f"{problem.split(' ', 1)[0]} where {before.kind} #{before.id} had one: {problem}; "
                           f"nothing was confirmed (correct it again or reset it to the AI's)")


def recorded_review(records: Records, exam_id: int, rows: list[Measurement] | None = None) -> dict | None:
    """What a viewer opening the exam shows as a person's review: its current measurement when that is a person's
    (None when it is the AI's). A confirmation names the correction it accepted, when it accepted one (the
    correction it superseded, through other confirmations, on the same frame with the same values), so that the
    viewer shows both, each under its author's name, with the correction's geometry; a confirmation of the AI's
    values names none, whatever corrections came before it::

        {"measurement_id", "frame_index", "kind", "values": {VALUE_KEYS}, "calibration_source",
         "corrected_geometry" (None: the AI's values were confirmed), "corrected_sources" (whose each corrected value
         is, ``workstation.sources``), "corrected_by", "corrected_at",
         "confirmed_by", "confirmed_at", "sources" (whose each value on record is: a confirmation's where a
         calibration set since withdrew the acceptance of some, the correction's or the AI's)}
    """
    from workstation.records.calibration import accepted_basis

    rows = records.measurements(exam_id) if rows is None else rows
    current = current_of(rows)
    if current is None or current.kind == AI or current.frame_index is None:
        return None
    corrected = current if current.kind == CORRECTION else accepted_basis(records, current, rows)
    confirmed = current if current.kind == CONFIRMATION else None
    if corrected is not None and not corrected.geometry:
        corrected = None  # nothing a viewer could draw; the values are then checked against the AI's
    return {"measurement_id": current.id, "frame_index": current.frame_index, "kind": current.kind,
            "by": current.by, "at": current.created_at,
            "values": {key: getattr(current, key) for key in VALUE_KEYS},
            "calibration_source": current.calibration_source,
            "corrected_geometry": None if corrected is None else corrected.geometry,
            "corrected_sources": None if corrected is None else sources_of(corrected),
            "corrected_by": None if corrected is None else corrected.by,
            "corrected_at": None if corrected is None else corrected.created_at,
            "confirmed_by": None if confirmed is None else confirmed.by,
            "confirmed_at": None if confirmed is None else confirmed.created_at,
            "sources": sources_of(current)}


def accepted_correction(records: Records, confirmation: Measurement,
                        rows: list[Measurement] | None = None) -> Measurement | None:
    """The correction a confirmation accepted: the correction it superseded (through other confirmations) on the same
    frame with the same values; None when it accepted other values (the AI's, another frame's).

    A confirmation an undo or redo restored (``save_viewer_review``) supersedes whatever was current then, e.g. the AI
    row of a Reset to AI: it accepted the correction whose geometry it carries, the latest one before it on its frame
    with its values. ``rows``: the exam's measurement rows, where the caller has read them (else they are read)."""
    rows = records.measurements(confirmation.exam_id) if rows is None else rows
    row = confirmation
    while row.kind == CONFIRMATION and row.supersedes_id is not None:
        row = _by_id(records, rows, row.supersedes_id)  # what was current when it was confirmed
        if row.kind == AI or row.frame_index != confirmation.frame_index or not _same_values(row, confirmation):
            break  # the confirmation accepted other values (the AI's, another frame's), unless it was restored
        if row.kind == CORRECTION:
            return row
    if not confirmation.geometry:
        return None
    return next((m for m in reversed(rows)
                 if m.id < confirmation.id and m.kind == CORRECTION and m.frame_index == confirmation.frame_index
                 and m.geometry == confirmation.geometry and _same_values(m, confirmation)), None)


def _same_values(a: Measurement, b: Measurement) -> bool:
    """``b`` holds ``a``'s values: every value ``b`` has is ``a``'s (rounding of the stored floats aside). Only
    ``b``'s: a confirmation made in the viewer keeps the AoP and HSD it showed, while the headless correction it
    accepted also stored the head biometry of its label map."""
    held = [key for key in VALUE_KEYS if getattr(b, key) is not None]
    return bool(held) and all(getattr(a, key) is not None
                              and math.isclose(getattr(a, key), getattr(b, key), rel_tol=1e-9, abs_tol=1e-6)
                              for key in held)


def save_viewer_review(records: Records, review: dict) -> Measurement | None:
    """Keep a review made in the viewer: ``review`` is the window's review record of one frame (its state as it
    now stands, ``workstation.cine_review.FrameMeasurementState.to_dict`` plus exam, time, calibration, model).

    Confirmed: a confirmation row of the values on screen. Corrected: a correction row. Neither (Reset to AI or
    an undo back to the AI value): when the exam's current value is a person's on that frame, an AI row that
    supersedes it (a withdrawal, see ``Records.current_measurement``); otherwise nothing. The values are those
    the viewer computed (same ``recompute_json`` path as ``correct``), so nothing is recomputed here. Returns the
    new row, or None when nothing changed (no exam, or the same row again).

    ``review["restore_measurement_id"]`` (an undo, or a redo after one): the id of the row that was current
    before (after) the step, which is made exactly current again, whoever wrote it: a person's row as a new row
    of it under that person's name (an undo over a value the viewer did not write, e.g. a correction saved
    headless, goes back to that value, never the AI's), the AI's (or None) as the withdrawal of the person's
    value now current. Never a chain of ``supersedes_id``: after a few undos the current row is itself a
    restored one, superseding the very row undone.

    ``review["change"] == "calibration"``: a calibration set in the viewer changed a reviewed frame's values; saved
    only where the exam's current value is a person's on that frame (a correction in the new mm, or the
    withdrawal of an acceptance whose values changed), with a note saying so.

    A row keeps the name of whoever made its values (the AI, the corrector, the confirmer). When the act was
    someone else's or an undo (``review["acting_user"]``, ``review["change"]``), e.g. Bob undoing his acceptance of
    Alice's correction, the row's note says who acted and what was withdrawn.

    ``review["based_on_measurement_id"]``: the exam's current measurement id (None: it had none) that the screen's
    state was based on: the one current when the viewer read the exam's review on record (opening it), then the
    exam's current one after each save of this viewer (the row it wrote, or the same one when nothing was written).
    When someone else changed the exam's value since (:func:`changes_since`: a correction, a confirmation or a
    withdrawal, e.g. ``workstation correct`` or a second app copy), a review that would write a row is refused with
    :class:`ReviewConflict` (who changed it, when, to what, what is on record now) and nothing is written: an
    Accept, a correction, Reset to AI, an undo or a redo alike. Without the key nothing is checked (a caller that
    does not track it). ``review["based_on_calibration_id"]`` (with it): the exam's manual calibration row the
    screen was measured in (None: the file's); a calibration set since by someone else (which may have written AI
    rows only, no change of whose value is on record) is refused the same way."""
    exam_id = review.get("exam_id")
    if exam_id is None:
        return None
    with records.transaction():  # the check and the row together: nobody writes between them
        records.exam(exam_id)
        rows = records.measurements(exam_id)  # once: the plan and the check read the same rows
        planned = _planned_viewer_row(records, review, rows)
        if planned is None:
            return None
        if BASED_ON in review:
            check_unchanged(records, exam_id, review[BASED_ON], int(review["frame_index"]),
                            review.get(BASED_ON_CALIBRATION, _UNCHECKED), rows=rows)
        return records.add_measurement(**planned)


def _planned(exam_id: int, kind: str, by: str, values: dict, **fields) -> dict:
    """The arguments of one ``Records.add_measurement`` call."""
    return {"exam_id": exam_id, "kind": kind, "by": by, "values": values, **fields}


def _planned_viewer_row(records: Records, review: dict, rows: list[Measurement]) -> dict | None:
    """The row ``save_viewer_review`` writes for ``review`` (``_planned`` arguments), or None: nothing changed.
    ``rows``: the exam's measurement rows."""
    exam_id = review["exam_id"]
    frame_index = int(review["frame_index"])
    current = current_of(rows)
    corrected = review.get("corrected")
    values = corrected or review.get("ai") or {}
    geometry = review.get("corrected_geometry") if corrected else review.get("ai_geometry")
    note = None
    # A new calibration set in the viewer (not a review): the values of a reviewed frame in its mm.
    recalibrated = review.get("change") == "calibration"
    if recalibrated and (current is None or current.kind == AI or current.frame_index != frame_index):
        return None  # the exam's current value is not of this frame, or not a person's: nothing changed there
    calibration = review.get("calibration_source") or "none"
    acting = (review.get("acting_user") or "").strip()
    by_acting = f" by {acting}" if acting else ""
    if "restore_measurement_id" in review and not recalibrated:
        restored = _restore(records, review, rows, by_acting)
        if restored is not _AS_SHOWN:
            return restored
        # The row to restore is of this frame, which the screen shows otherwise now (a calibration set since withdrew
        # its acceptance): the records keep what the screen shows, as for any review.
        step = "undo" if review.get("change") == "undo" else "redo"
        note = f"the {step} in the viewer{by_acting}, with the {calibration} calibration in force"
    if review.get("confirmed"):
        kind, by = CONFIRMATION, review.get("confirmed_by")
        _check_confirmable(exam_id, values, frame_index)
    elif corrected:
        kind, by = CORRECTION, review.get("corrected_by")
        if review.get("change") == CORRECTION and note is None:  # a new drop, not an undo, redo or calibration
            from workstation.cine_review import lost_value_problem

            problem = lost_value_problem(corrected, review.get("ai"))
            if problem:
                raise RecordsError(f"{problem}; nothing was saved")
    else:
        if current is None or current.kind == AI or current.frame_index != frame_index:
            return None
        if recalibrated and current.kind != CONFIRMATION:
            return None  # a calibration withdraws an acceptance of values it changes, never a correction
        kind, by = AI, _model_name(review)
        if recalibrated:
            note = (f"{current.kind} by {current.by} withdrawn in the viewer{by_acting}: the {calibration} "
                    f"calibration changed its values; the AI value stands")
        elif note is not None:  # restored as shown
            note = f"{current.kind} by {current.by} withdrawn by {note}; the AI value stands"
        else:
            note = (f"{current.kind} by {current.by} withdrawn in the viewer{by_acting} "
                    f"({'undo' if review.get('change') == 'undo' else 'Reset to AI or undo'}); the AI value stands")
    if not by:
        raise RecordsError("a correction or confirmation needs who made it (a user name)")
    # Whose each value is: a correction's as the viewer's core worked it out (``FrameMeasurementState.correct``); a
    # confirmation's all the confirmer's, but where a calibration withdrew its acceptance of some.
    sources = (_with_ai_sources(records, exam_id, frame_index, review.get("corrected_sources"), rows)
               if kind == CORRECTION else
               _with_ai_sources(records, exam_id, frame_index, review.get("confirmed_sources"), rows)
               if kind == CONFIRMATION else None)
    if (current is not None and current.kind == kind and current.by == by and current.frame_index == frame_index
            and all(getattr(current, key) == values.get(key) for key in VALUE_KEYS)
            and _same_whose(current, kind, by, sources)):
        return None  # the same review again (a redo of what is already kept)
    if kind != AI and current is not None and recalibrated:
        note = f"{kind} by {by} measured again in the viewer with the {calibration} calibration{by_acting}"
        if (current.kind, current.by) != (kind, by):
            note += f"; {current.kind} by {current.by} withdrawn (its values changed)"
    elif kind != AI and note is not None:  # restored as shown
        note = f"{kind} by {by} restored by {note}" + ("" if current is None or current.kind == AI
                                                      else f"; {current.kind} by {current.by} withdrawn")
    elif kind != AI and current is not None and (review.get("change") == "undo" or (acting and acting != by)):
        # An earlier review restored (an undo), or one person's values saved by another's act: say who did it.
        note = (f"{kind} by {by} restored in the viewer{by_acting} ({review.get('change') or 'review'}); "
                f"{current.kind} by {current.by} withdrawn")
    return _planned(
        exam_id, kind, by, values, supersedes_id=None if current is None else current.id, frame_index=frame_index,
        time_s=review.get("time_s"), uncertainty=review.get("uncertainty"),
        calibration_source=review.get("calibration_source"), geometry=geometry, note=note, sources=sources)


def _same_whose(row: Measurement, kind: str, by: str, sources: dict | None) -> bool:
    """The row's values are each of the same kind of source as a row of ``kind`` by ``by`` with ``sources`` would
    give them (``workstation.sources``): an acceptance given again over one a calibration withdrew in part differs."""
    other = {"kind": kind, "by": by, "created_at": None, "sources": sources}
    return all(source_of(row, q)["kind"] == source_of(other, q)["kind"] for q in QUANTITIES)


def _with_ai_sources(records: Records, exam_id: int, frame_index: int, sources: dict | None,
                     rows: list[Measurement]) -> dict | None:
    """A viewer's correction sources with each value it left the AI's named as :func:`correct` names it: the model and
    time of the frame's AI basis (:func:`_ai_basis`). The viewer knows the AI's values, not which row or analysis
    of the records they are, so it sends them without a name or time."""
    if not sources:
        return sources
    unnamed = [q for q, src in sources.items() if src and src.get("kind") == AI and not (src.get("by") and src.get("at"))]
    if not unnamed:
        return sources
    _, ai = _ai_basis(records, exam_id, frame_index, {}, rows)
    return {q: dict(ai[q]) if q in unnamed else src for q, src in sources.items()}
