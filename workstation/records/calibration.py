"""An exam's calibration in the records: a manual scale a person set on it, kept with the exam until they change it.

A manual calibration (the viewer's line on the depth scale, or ``workstation calibrate --mm-per-px``) is a row of
``exam_calibrations`` with who, when and how it was taken; a return to the file's own scale is a row too, so the
history keeps every scale that was in force. Whatever reads a stored exam measures it with the calibration in force
(:func:`exam_calibration`, :func:`load_exam`): the viewer opening it, a headless correction, ``analyze --exam``.

Setting one (:func:`set_exam_calibration`) also measures the exam's values on record again in the new mm, as the
viewer does on screen, so that the timeline and the reports show the same mm as the viewer:

* the latest AI row, from its own geometry (and the analysis' per-frame result where it is kept, so that head
  biometry the AI withheld stays withheld): a new AI row, which never displaces a person's value;
* a person's correction in force: a new correction row under the corrector's name, in the new mm;
* a person's confirmation in force: its acceptance of each value the new scale changes is withdrawn, since nobody
  accepted these values (value by value, ``workstation.sources``: an isotropic scale changes the HSD and the head's mm,
  never the AoP, whose acceptance stays; a scale that changes the pixels' shape can change the AoP too, and then
  its acceptance goes as well). Where some accepted value still holds, a confirmation row under the same name says
  so, each withdrawn value going back to whose it was before (the accepted correction's, else the AI's); where none
  does, the correction it accepted stands in the new mm, else the AI's value.

Rows only: nothing is overwritten, and a row whose values and scale do not change is not written again.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

from workstation.calibration import Calibration, manual_scale_disagreement, manual_scale_problem
from workstation.records.database import RecordsError
from workstation.records.review import _UNCHECKED, accepted_correction, check_calibration_unchanged
from workstation.records.store import (AI, CONFIRMATION, CORRECTION, FILE, MANUAL, VALUE_KEYS, Exam,
                                       ExamCalibration, Measurement, Records, checked_mm_per_px, current_of,
                                       latest_ai_of)
from workstation.sources import QUANTITIES, QUANTITY_NAMES, ai_sources, source_of, sources_of


@dataclass(frozen=True)
class CalibrationChange:
    """What :func:`set_exam_calibration` wrote: the calibration row (None: that calibration was in force already,
    nothing written) and the measurement rows measured again in it."""

    calibration: ExamCalibration | None
    measurements: list[Measurement] = field(default_factory=list)
    # Where a manual scale differs from the file's own by more than a few percent: by how much, to check it
    # (``workstation.calibration.manual_scale_disagreement``); it is set all the same.
    warning: str | None = None

    def to_json(self) -> dict:
        return {"calibration": None if self.calibration is None else self.calibration.to_json(),
                "measurements": [m.to_json() for m in self.measurements], "warning": self.warning}


def exam_calibration(records: Records, exam_id: int, file_calibration: Calibration) -> Calibration:
    """The calibration in force on the exam: the manual one set on it, over the file's (whose ultrasound regions
    still refuse a line on a Doppler strip or across two images), else the file's own."""
    manual = records.manual_calibration(exam_id)
    if manual is None:
        return file_calibration
    try:
        return with_manual_on_record(file_calibration, manual.mm_per_px, manual.detail, manual.by)
    except ValueError as exc:  # kept before the plausible range was checked, or hand-edited: named, never applied
        raise RecordsError(f"exam {exam_id}: the manual calibration on record (#{manual.id}, set by {manual.by}) "
                           f"cannot be used: {exc}; set another (workstation calibrate --exam {exam_id} --mm-per-px "
                           f"X) or go back to the file's (--file-calibration)") from None


def with_manual_on_record(file_calibration: Calibration, mm_per_px: float, detail: str | None,
                          by: str) -> Calibration:
    """The file's calibration with the manual scale a calibration row keeps (``mm_per_px``, how it was taken, who set
    it) over it: the one way a stored manual calibration is put in force (here, and the viewer's). ValueError: a
    scale the calibration refuses."""
    return file_calibration.with_manual(mm_per_px, detail or f"set by {by}")


def load_exam(records: Records, exam: Exam | int):
    """The exam's stored scan as a ``Cine`` with the exam's calibration in force (see :func:`exam_calibration`)."""
    from workstation.io import load

    exam = records.exam(exam) if isinstance(exam, int) else exam
    cine = load(records.file_path(exam))
    try:
        cine.calibration = exam_calibration(records, exam.id, cine.calibration)
    except BaseException:
        cine.close()
        raise
    return cine


def _file_calibration(records: Records, exam: Exam) -> Calibration:
    from workstation.io import load

    cine = load(records.file_path(exam))
    try:
        return cine.calibration
    finally:
        cine.close()


def set_exam_calibration(records: Records, exam_id: int, mm_per_px: float | None, user: str,
                         detail: str | None = None, *, note: str | None = None,
                         file_calibration: Calibration | None = None,
                         based_on_calibration_id=_UNCHECKED) -> CalibrationChange:
    """Set the exam's manual calibration (``mm_per_px``), or go back to the file's own (``mm_per_px`` None), as
    ``user``; the exam's values on record are measured again in it (see the module docstring), all in one
    transaction. ``detail`` says how the scale was taken (default: entered by ``user``); ``file_calibration`` is the
    file's own (read from the stored scan when not given). Nothing is written when that calibration is in force
    already. ``based_on_calibration_id``: the manual calibration row the caller's screen was measured in (None: the
    file's own); where someone else has set another since, :class:`ReviewConflict` is raised and nothing written, as
    for a review made on a stale screen (not given: not checked, as for ``workstation calibrate``)."""
    user = (user or "").strip()
    if not user:
        raise RecordsError("a calibration needs who set it (a user name)")
    exam = records.exam(exam_id)
    if mm_per_px is not None:
        problem = manual_scale_problem(mm_per_px)
        if problem is not None:
            raise RecordsError(f"exam {exam_id}: {problem}; nothing was changed")
        mm_per_px = checked_mm_per_px(mm_per_px)
        detail = (detail or "").strip() or f"entered by {user}"
        if user not in detail:  # the panel and reports show the detail: it names who set the scale
            detail = f"{detail}, entered by {user}"
    if file_calibration is None:
        file_calibration = _file_calibration(records, exam)
    warning = None
    if mm_per_px is None:
        calibration = file_calibration
        detail = (detail or "").strip() or f"{file_calibration.source}"
    else:
        calibration = file_calibration.with_manual(mm_per_px, detail)
        warning = manual_scale_disagreement(file_calibration, mm_per_px, exam.frame_shape)
    with records.transaction():
        if based_on_calibration_id is not _UNCHECKED:
            check_calibration_unchanged(records, exam_id, based_on_calibration_id)
        current = records.current_calibration(exam_id)
        if mm_per_px is None and (current is None or not current.is_manual):
            return CalibrationChange(None)
        if (mm_per_px is not None and current is not None and current.is_manual and current.detail == detail
                and math.isclose(current.mm_per_px, mm_per_px, rel_tol=1e-12)):
            return CalibrationChange(None)
        rows = records.measurements(exam_id)  # once: the calibration's place among them, and its re-measuring
        row = records.add_calibration(exam_id, MANUAL if mm_per_px is not None else FILE, user,
                                      mm_per_px=mm_per_px, detail=detail, note=note, rows=rows)
        return CalibrationChange(row, _measure_again(records, exam, calibration, row, rows), warning)


# -- measuring the values on record again ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Restated:
    """A person's row as it stands in a new calibration: the row that says so (``kind``, ``by``, ``values``), whether
    that differs from the row (``changed``: a new row is due), and whose confirmation it withdraws (``withdrawn``)."""

    kind: str
    by: str
    values: dict
    changed: bool
    withdrawn: str | None = None
    sources: dict | None = None  # whose each value is: those of the row it measures again (``workstation.sources``)
    kept: tuple[str, ...] = ()  # a confirmation withdrawn in part: the quantities whose acceptance stays
    dropped: tuple[str, ...] = ()  # and those whose acceptance it withdraws

    def note(self, how: str) -> str:
        """The new row's note; ``how``: the calibration it was measured with."""
        if self.kind == AI:
            return f"confirmation by {self.withdrawn} withdrawn: {how} changed its values; the AI value stands"
        note = f"{self.kind} by {self.by} measured again with {how}"
        if self.dropped:
            return (note + f"; its acceptance of the {' and of the '.join(QUANTITY_NAMES[q] for q in self.dropped)} "
                    f"withdrawn (the new scale changed {'them' if len(self.dropped) > 1 else 'it'}); the "
                    f"{' and the '.join(QUANTITY_NAMES[q] for q in self.kept)} stays confirmed (the new scale does "
                    "not change it)")
        return note + (f"; confirmation by {self.withdrawn} withdrawn (its values changed)" if self.withdrawn else "")


def _restate(records: Records, exam: Exam, row: Measurement, calibration: Calibration,
             rows: list[Measurement]) -> _Restated:
    """A person's correction or confirmation in ``calibration`` (the module docstring's rules): a correction measured
    again; a confirmation measured again where its values are shown as they were, else withdrawn: the correction it
    accepted stands in the new mm, or the AI's value (the exam's latest AI row, whose name it goes under). ``rows``:
    the exam's measurement rows."""
    from workstation.cine_review import acceptance_after, quantities_shown, quantities_shown_differently

    if row.kind == CORRECTION:
        again = _person_again(records, exam, row.geometry, row, calibration)
        return _Restated(CORRECTION, row.by, again, _changed(row, again), sources=row.sources)
    accepted = accepted_basis(records, row, rows)
    again = (_person_again(records, exam, accepted.geometry, row, calibration) if accepted is not None
             else _ai_again(records, exam, row, calibration))
    was, now = _values_of(row), {key: again.get(key) for key in VALUE_KEYS}
    if not quantities_shown_differently(was, now):
        return _Restated(CONFIRMATION, row.by, again, False, sources=row.sources)
    ai = latest_ai_of(rows)
    ai_by = ai.by if ai is not None else _model_of(records, exam.id)
    before = (sources_of(accepted) if accepted is not None
              else ai_sources(ai_by, None if ai is None else ai.created_at))
    # Value by value (the viewer's rule too): the acceptance of each value the scale changes is withdrawn.
    sources = acceptance_after(sources_of(row), was, now, before)
    if sources is None:  # no accepted value holds: the confirmation goes
        if accepted is not None:
            return _Restated(CORRECTION, accepted.by, again, True, withdrawn=row.by, sources=accepted.sources)
        return _Restated(AI, ai_by, again, True, withdrawn=row.by)
    shown = quantities_shown(was, now)
    kept = tuple(q for q in shown if sources[q]["kind"] == CONFIRMATION)
    dropped = tuple(q for q in shown
                    if source_of(row, q)["kind"] == CONFIRMATION and sources[q]["kind"] != CONFIRMATION)
    return _Restated(CONFIRMATION, row.by, again, True, withdrawn=row.by if dropped else None, sources=sources,
                     kept=kept, dropped=dropped)


def accepted_basis(records: Records, row: Measurement, rows: list[Measurement]) -> Measurement | None:
    """The correction a confirmation accepted (``review.accepted_correction``); for a confirmation a calibration
    wrote in part (its sources name a correction, its values measured again so they no longer match that row's),
    the latest correction before it on its frame with its geometry."""
    accepted = accepted_correction(records, row, rows)
    if accepted is not None or not row.geometry or not any(
            source_of(row, q)["kind"] == CORRECTION for q in QUANTITIES):
        return accepted
    return next((m for m in reversed(rows) if m.id < row.id and m.kind == CORRECTION
                 and m.frame_index == row.frame_index and m.geometry == row.geometry), None)


def _values_of(row: Measurement) -> dict:
    """A row's values (``VALUE_KEYS``): what a person sees of it."""
    return {key: getattr(row, key) for key in VALUE_KEYS}


def in_force(records: Records, row: Measurement,
             rows: list[Measurement] | None = None) -> tuple[str, str, dict, dict | None] | None:
    """A person's row as it stands in the calibration in force on its exam, where one was set since the row was
    written: ``(kind, by, values, sources)`` (``sources``: whose each value is, ``workstation.sources``; see :func:`set_exam_calibration`'s rules: a correction measured again, a
    confirmation whose values that calibration changes withdrawn); None where none was set since (the row's values
    are in force as they are). The viewer's undo back to a person's row on a frame it does not show measures it so.
    ``rows``: the exam's measurement rows, where the caller has read them (else they are read)."""
    if not any((c.after_measurement_id or 0) >= row.id for c in records.calibrations(row.exam_id)):
        return None
    exam = records.exam(row.exam_id)
    calibration = exam_calibration(records, exam.id, _file_calibration(records, exam))
    rows = records.measurements(exam.id) if rows is None else rows
    restated = _restate(records, exam, row, calibration, rows)
    return restated.kind, restated.by, restated.values, restated.sources


def _measure_again(records: Records, exam: Exam, calibration: Calibration, row: ExamCalibration,
                   rows: list[Measurement]) -> list[Measurement]:
    """The exam's values on record (``rows``, read in the calibration's transaction) measured again in it."""
    scale = "manual" if row.is_manual else f"file's ({calibration.source})"
    by_whom = f"the {scale} calibration set by {row.by}"
    added: list[Measurement] = []
    current, ai = current_of(rows), latest_ai_of(rows)
    restated = None
    if current is not None and current.kind != AI and current.geometry:
        restated = _restate(records, exam, current, calibration, rows)
    withdrawn_by_ai = current if restated is not None and restated.kind == AI else None
    if ai is not None and ai.geometry:
        again = _ai_again(records, exam, ai, calibration)
        same_as_withdrawal = (withdrawn_by_ai is not None and withdrawn_by_ai.frame_index == ai.frame_index
                              and withdrawn_by_ai.geometry == ai.geometry)
        if _changed(ai, again) and not same_as_withdrawal:
            added.append(records.add_measurement(
                exam.id, AI, ai.by, again, analysis_id=ai.analysis_id, frame_index=ai.frame_index, time_s=ai.time_s,
                uncertainty=ai.uncertainty, calibration_source=again["calibration"]["source"],
                reasons=again.get("reasons"), note=f"the AI value measured again with {by_whom}"))
    if restated is not None and restated.changed:
        added.append(_add_like(records, current, restated.kind, restated.by, restated.values, current.id,
                               restated.note(by_whom), restated.sources))
    return added


def _add_like(records: Records, like: Measurement, kind: str, by: str, values: dict, supersedes_id: int,
              note: str, sources: dict | None = None) -> Measurement:
    """A row of ``values`` on ``like``'s frame (its time and the AI's uncertainty there); ``sources``: whose each
    value is, those of the row measured again."""
    return records.add_measurement(
        like.exam_id, kind, by, values, supersedes_id=supersedes_id, frame_index=like.frame_index,
        analysis_id=like.analysis_id if kind == AI else None,
        time_s=like.time_s, uncertainty=like.uncertainty, calibration_source=values["calibration"]["source"],
        reasons=values.get("reasons"), note=note, sources=sources)


def _model_of(records: Records, exam_id: int) -> str:
    analysis = records.latest_analysis(exam_id)
    return "AI" if analysis is None else analysis.model_label


def _row_json(row: Measurement) -> dict:
    return {**{key: getattr(row, key) for key in VALUE_KEYS}, "geometry": copy.deepcopy(row.geometry),
            "reasons": dict(row.reasons or {}), "calibration": {"source": row.calibration_source, "detail": None}}


def _person_again(records: Records, exam: Exam, geometry: dict, row: Measurement, calibration: Calibration) -> dict:
    """A person's geometry measured with ``calibration``: ``recompute_json`` and the frame's plane class, the
    viewer's and ``correct``'s path."""
    from workstation.cine_review import recompute_json

    frame_class = records.frame_result_of(row).get("frame_class")
    measured = recompute_json(geometry, calibration, exam.frame_shape, frame_class, _row_json(row))
    return measured if frame_class is not None else _keep_absent(measured, row)


def _ai_again(records: Records, exam: Exam, row: Measurement, calibration: Calibration) -> dict:
    """The AI's values of ``row`` (an AI row, or a confirmation of the AI's values) measured with ``calibration``.

    Where the analysis' per-frame result of that geometry is kept, it is recalibrated as the viewer recalibrates
    the AI's values (``FrameMeasurementState.recalibrate``: head biometry the AI withheld stays withheld). Without
    it, from the row itself (:func:`_keep_absent`)."""
    from workstation.cine_review import FrameMeasurementState, recompute_json

    frame = records.frame_result_of(row)
    if frame and frame.get("geometry") == row.geometry:
        state = FrameMeasurementState(row.frame_index, frame.get("frame_class"), float(frame.get("uncertainty") or 0.0),
                                      copy.deepcopy(frame))
        state.recalibrate(calibration, exam.frame_shape)
        return state.ai
    measured = recompute_json(row.geometry, calibration, exam.frame_shape, frame.get("frame_class"), _row_json(row))
    return _keep_absent(measured, row)


def _keep_absent(measured: dict, row: Measurement) -> dict:
    """Without the analysis' word on the frame (its plane class, what the AI withheld), a new scale only turns
    pixels into mm: a value the row did not have stays absent, with its reason, unless its scale alone kept it out
    (:func:`_absent_for_its_scale`); such a value is as the new scale measures it: there, or absent with the reason
    that holds now."""
    for key in VALUE_KEYS:
        if getattr(row, key) is None and not _absent_for_its_scale(row, key):
            measured[key] = None
            if key in (row.reasons or {}):
                measured.setdefault("reasons", {})[key] = row.reasons[key]
    return measured


def _absent_for_its_scale(row: Measurement, key: str) -> bool:
    """Whether the row lacks ``key`` for its scale alone: an HSD's mm beside its pixels, a GA beside its HC in mm (HC
    outside the Hadlock range), or a value whose reason is that there was no scale (``workstation.calibration``'s
    "...: pixels only")."""
    return ((key == "hsd_mm" and row.hsd_px is not None) or (key == "ga_weeks" and row.hc_mm is not None)
            or (row.reasons or {}).get(key, "").endswith("pixels only"))


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def _changed(row: Measurement, values: dict) -> bool:
    """Whether ``values`` differ from the row's at all, or rest on another scale."""
    return (any(not _close(getattr(row, key), values.get(key)) for key in VALUE_KEYS)
            or row.calibration_source != values["calibration"]["source"])


__all__ = ["CalibrationChange", "exam_calibration", "in_force", "load_exam", "set_exam_calibration",
           "with_manual_on_record"]
