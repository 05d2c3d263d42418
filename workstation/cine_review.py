"""One cine's analysis and a person's review of it, Qt-free: the state behind the window's calipers and undo.

``FrameMeasurementState`` holds, per analysed frame, the AI measurement JSON (kept), the geometry a person moved
the calipers to, who did it and when, and whether a person accepted the frame's values (value by value where a
calibration withdrew the acceptance of some: :func:`acceptance_after`, the records' rule too); ``snapshot``/``restore``
give an undo stack everything it needs. Values after an edit come from :func:`workstation.measure.recompute` and
the pipeline's plane rule only (:func:`recompute_json`); this module never computes geometry itself. The records
(``workstation.records.review``) correct measurements through the same :func:`recompute_json`.

``CineAnalysis`` keeps the per-frame results of one cine compactly: the label map PNG-encoded and the uncertainty
map at a quarter of the resolution as uint8, so a long cine keeps memory flat.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cv2
import numpy as np

from workstation.calibration import Calibration
from workstation.inference.pipeline import (FrameResult, apply_plane_policy, choose_frame, keep_ai_biometry_withheld,
                                          plane_policy_reason, summarize)
from workstation.measure import Geometry, MeasurementRefused, recompute
from workstation.measure.measurements import NO_GEOMETRY_REASONS
from workstation.sources import (CONFIRMATION, CORRECTION, QUANTITIES, QUANTITY_KEYS, ai_sources, source,
                                  sources_after, whose)

__all__ = ["CineAnalysis", "FrameMaps", "FrameMeasurementState", "UNCERTAINTY_MAP_STEP", "VALUE_KEYS",
           "NO_VALUE_TO_CONFIRM", "acceptance_after", "adopts_withheld_ai_ellipse", "apply_plane_policy", "compact", "has_measured_value", "now_iso", "ps_moved", "recompute_json", "withheld_ai_ellipse",
           "without_withheld_ai_ellipse"]

UNCERTAINTY_MAP_STEP = 4  # the kept uncertainty map has 1/4 of the frame's rows and columns
VALUE_KEYS = ("aop_deg", "hsd_px", "hsd_mm", "hc_px", "hc_mm", "bpd_px", "bpd_mm", "ofd_px", "ofd_mm", "ga_weeks")


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def recompute_json(geometry: dict, calibration: Calibration | None, frame_shape, frame_class: str | None,
                   previous: dict | None = None) -> dict:
    """Measurement JSON of ``geometry`` through ``workstation.measure.recompute`` and the plane rule
    (``frame_class`` None: the frame was never classed, so no value is withheld for its plane).

    The reasons are the recomputation's: a value absent because of how it is measured now (no calibration, a scale
    that puts HC outside the Hadlock range, a refused construction) says why it is absent now, not why it was before
    (``previous``, the values this recomputation replaces). For a value absent before and after, ``previous``'s
    reason stays where it says what the geometry cannot:

    - why a part of the geometry is not there, where the recomputation only says it is not and it was not there
      before either (``NO_GEOMETRY_REASONS``; "no pubic symphysis in the label map" over "no AoP geometry"), as
      ``measure_labelmap`` keeps its derivation's reasons;
    - the plane policy's for this frame's class (``plane_policy_reason``: head biometry on a transperineal frame is
      withheld whatever the scale);
    - the AI's head biometry withheld (``previous["ai_biometry_withheld"]``: no skull echo, or not surely a head
      plane) where ``geometry`` is the very geometry ``previous`` was measured on (the AI's values measured again,
      e.g. in a new calibration; a person's own ellipse is measured as drawn).

    The AI's head ellipse whose biometry it withheld (``previous["ai_biometry_withheld"]``) is never measured in
    another geometry (a person's edit of other parts, which kept it untouched): it is dropped
    (:func:`without_withheld_ai_ellipse`), so HC, BPD, OFD and GA stay absent with the AI's reason.
    """
    if previous and geometry != previous.get("geometry"):
        geometry = without_withheld_ai_ellipse(geometry, previous)
    try:
        measured = recompute(Geometry.from_json(geometry), calibration, tuple(frame_shape)).to_json()
    except (MeasurementRefused, ValueError, KeyError, TypeError) as exc:
        measured = {key: None for key in VALUE_KEYS}
        measured["geometry"] = copy.deepcopy(geometry)
        measured["reasons"] = {key: f"the edited geometry cannot be measured: {exc}" for key in VALUE_KEYS}
        measured["calibration"] = {"source": "none" if calibration is None else calibration.source, "detail": None}
    if frame_class is not None:
        apply_plane_policy(measured, frame_class)
    if previous:
        withheld = previous.get("ai_biometry_withheld") if geometry == previous.get("geometry") else None
        for key, reason in (previous.get("reasons") or {}).items():
            if measured.get(key) is not None or previous.get(key) is not None:
                continue
            lacking = NO_GEOMETRY_REASONS.get(measured["reasons"].get(key))  # the value whose geometry is not there
            if ((lacking is not None and previous.get(lacking) is None) or (withheld and reason == withheld)
                    or (frame_class is not None and reason == plane_policy_reason(key, frame_class))):
                measured["reasons"][key] = reason
    return measured


NO_VALUE_TO_CONFIRM = "no measured value to confirm"


def has_measured_value(values: dict | None) -> bool:
    """Whether a measurement holds a value a person could confirm (any of its value keys present). The one rule for
    a confirmation: ``workstation confirm``, a review saved from the viewer (``workstation.records.review``) and the
    window's Accept (disabled where it is False) all follow it."""
    return bool(values) and any(values.get(key) is not None for key in VALUE_KEYS)


LOSABLE = (("aop_deg", "AoP"), ("hsd_px", "HSD"))  # values a correction may not lose (refused, nothing saved)


def lost_value_problem(measured: dict, *bases: dict | None) -> str | None:
    """Why a correction measuring ``measured`` (:func:`recompute_json`'s JSON of the edited geometry) is refused, or
    None: an AoP or HSD that one of its ``bases`` (the AI's on the frame, the value in force there: dicts of value
    keys) had and the edited geometry cannot measure (a tangent point laid on the PS end, a construction withheld as
    implausible). One rule for ``workstation correct``, a review saved from the viewer and the window's caliper drop,
    so that a slip of the hand never replaces a value with none. The text names the value and why, e.g. "AoP cannot
    be measured with the tangent point on the PS end (the angle of progression needs three distinct points)"."""
    geometry = measured.get("geometry") or {}
    for key, name in LOSABLE:
        if measured.get(key) is not None or not any(b and b.get(key) is not None for b in bases):
            continue
        why = (measured.get("reasons") or {}).get(key)
        return f"{name} cannot be measured{_where_broken(key, geometry)}" + (f" ({why})" if why else "")
    return None


def _where_broken(key: str, geometry: dict) -> str:
    """Which caliper lies on another, in the words a person reads on screen ("" where none does)."""
    def near(a, b) -> bool:
        return a is not None and b is not None and float(np.hypot(a[0] - b[0], a[1] - b[1])) < 2.0

    aop, ps, hsd = geometry.get("aop") or {}, geometry.get("ps_axis") or {}, geometry.get("hsd") or {}
    if key == "aop_deg" and (near(aop.get("tangent_point"), aop.get("vertex"))
                             or near(aop.get("tangent_point"), ps.get("inferior"))):
        return " with the tangent point on the PS end"
    if key == "aop_deg" and near(ps.get("superior"), ps.get("inferior")):
        return " with both PS ends on one point"
    if key == "hsd_px" and near(hsd.get("end"), hsd.get("start")):
        return " with the HSD end on the PS end"
    return ""


def changes_no_value(before: dict, before_geometry: dict | None, measured: dict) -> bool:
    """Whether an edit measuring ``measured`` (its geometry and values) changes nothing a person could see, against
    the values in force ``before`` and the calipers' geometry ``before_geometry``: no value appears, goes or moves,
    and no geometry part whose value is shown (before or after) moved (e.g. the head ellipse moved on a transperineal
    frame, where head biometry is withheld, or a drag that ends where it started). Such a drop is no correction."""
    from workstation.sources import QUANTITY_KEYS, changed_quantities

    def differs(a, b) -> bool:  # recomputing the same geometry may move a stored value's fourth decimal
        return (a is None) != (b is None) or (a is not None and abs(float(a) - float(b)) > 1e-3)

    if any(differs(measured.get(key), before.get(key)) for key in VALUE_KEYS):
        return False
    moved = changed_quantities(before_geometry, measured.get("geometry"))
    return not any(before.get(key) is not None or measured.get(key) is not None
                   for q in moved for key in QUANTITY_KEYS[q] if key in VALUE_KEYS)


def withheld_ai_ellipse(ai: dict | None) -> dict | None:
    """The AI's head ellipse on a frame where the AI withheld its head biometry (``ai["ai_biometry_withheld"]``: no
    skull echo, or not surely a head plane; "this may not be a fetal head"), else None."""
    if not ai or not ai.get("ai_biometry_withheld"):
        return None
    return (ai.get("geometry") or {}).get("head_ellipse") or None


def without_withheld_ai_ellipse(geometry: dict, ai: dict | None) -> dict:
    """``geometry`` without the AI's withheld head ellipse (:func:`withheld_ai_ellipse`): a person's row never adopts
    it (the viewer draws it dashed, an outline to move, not a value). An ellipse other than the AI's (a person's own,
    or the AI's moved by a person) is kept and measured as drawn."""
    if not adopts_withheld_ai_ellipse(geometry, ai):
        return geometry
    return {**geometry, "head_ellipse": None}


def adopts_withheld_ai_ellipse(geometry: dict | None, ai: dict | None) -> bool:
    """``geometry``'s head ellipse is the AI's withheld one (:func:`withheld_ai_ellipse`), untouched: a person's row
    of it is measured without it (:func:`without_withheld_ai_ellipse`; rows saved before review 29 measured it)."""
    ellipse = withheld_ai_ellipse(ai)
    return ellipse is not None and bool(geometry) and geometry.get("head_ellipse") == ellipse


def ps_moved(geometry: dict) -> dict:
    """Geometry after a PS-axis edit: the HSD starts at the PS inferior end (the AoP vertex follows in recompute)."""
    g = copy.deepcopy(geometry)
    ps, hsd = g.get("ps_axis"), g.get("hsd")
    if ps and hsd:
        hsd["start"] = list(ps["inferior"])
    return g


def _shown_differently(new: float | None, old: float | None) -> bool:
    """Whether a person would see another value: one appears or goes, or it moves by more than the panel's last
    digit (recomputing from the stored geometry may move the fourth decimal)."""
    if new is None or old is None:
        return (new is None) != (old is None)
    return abs(float(new) - float(old)) >= 0.05


# Each quantity's value keys (``workstation.sources``): what a person sees of it.
QUANTITY_VALUE_KEYS = {q: tuple(key for key in QUANTITY_KEYS[q] if key in VALUE_KEYS) for q in QUANTITIES}


def quantities_shown(*values: dict) -> list[str]:
    """The quantities with a value in any of ``values`` (value dicts)."""
    return [q for q, keys in QUANTITY_VALUE_KEYS.items() if any(v.get(key) is not None for v in values for key in keys)]


def quantities_shown_differently(accepted: dict, now: dict) -> set[str]:
    """The quantities of which a person would see other values in ``now`` than in ``accepted`` (a value appears or
    goes, or moves by its last shown digit), key by key."""
    return {q for q, keys in QUANTITY_VALUE_KEYS.items()
            if any(_shown_differently(now.get(key), accepted.get(key)) for key in keys)}


def acceptance_after(sources: dict, accepted: dict, now: dict, before: dict) -> dict | None:
    """The one rule for a confirmation whose values something the person did not see changed (a new calibration; the
    records' and the viewer's alike): ``sources``, whose each value was (``workstation.sources``); ``accepted``, the
    values as they were; ``now``, as they are measured now. The acceptance of each confirmed value shown otherwise
    now is withdrawn, that value going back to whose it was before the confirmation (``before``: the accepted
    correction's sources, else the AI's); each other value keeps its source (an isotropic scale never changes the
    AoP, whose acceptance stays). None: no accepted value shown holds, and the confirmation goes as a whole."""
    changed = quantities_shown_differently(accepted, now)
    confirmed = {q for q in QUANTITIES if (sources.get(q) or {}).get("kind") == CONFIRMATION}
    if not any(q in confirmed and q not in changed for q in quantities_shown(accepted, now)):
        return None
    return {q: copy.deepcopy(dict(before[q] if q in changed and q in confirmed else sources[q])) for q in QUANTITIES}


@dataclass
class FrameMeasurementState:
    """One frame's AI measurement and a person's correction and confirmation of it (plain data)."""

    frame_index: int
    frame_class: str
    uncertainty: float
    ai: dict  # the pipeline's measurement JSON: aop_deg, hsd_px, hsd_mm, ..., geometry, reasons, calibration
    corrected: dict | None = None  # recomputed measurement JSON of the corrected geometry
    corrected_by: str | None = None
    corrected_at: str | None = None  # ISO 8601 with offset
    confirmed: bool = False
    confirmed_by: str | None = None
    confirmed_at: str | None = None
    uncertainty_method: str = "blend"  # "calibrated": the chance the AoP is more than 10 degrees off
    # Whose each corrected value is (``workstation.sources``): the corrector's where they moved its calipers, else
    # the AI's or an earlier person's; None: all the corrector's.
    corrected_sources: dict | None = None
    # An acceptance a new calibration withdrew in part (:func:`acceptance_after`): whose each value is, the values it
    # changed back to the correction's or the AI's; None: every value the confirmer's.
    confirmed_sources: dict | None = None

    @property
    def ai_geometry(self) -> dict:
        return self.ai.get("geometry") or {}

    @property
    def corrected_geometry(self) -> dict | None:
        return None if self.corrected is None else self.corrected.get("geometry")

    @property
    def is_corrected(self) -> bool:
        return self.corrected is not None

    def current(self) -> dict:
        """The values in force: the correction when there is one, else the AI's."""
        return self.corrected if self.corrected is not None else self.ai

    def current_geometry(self) -> dict:
        return self.current().get("geometry") or {}

    def sources(self) -> dict:
        """Whose each value in force is (``workstation.sources``; quantity -> {"kind", "by", "at"}): all the
        accepting person's once accepted; a correction's as :meth:`correct` worked them out; else the AI's."""
        if self.confirmed:
            if self.confirmed_sources:
                return copy.deepcopy(self.confirmed_sources)
            return {q: source(CONFIRMATION, self.confirmed_by, self.confirmed_at) for q in QUANTITIES}
        return self._unconfirmed_sources()

    def _unconfirmed_sources(self) -> dict:
        """Whose each value in force would be without the acceptance: the correction's, else the AI's."""
        if self.corrected is not None:
            kept = self.corrected_sources or {}
            return {q: dict(kept[q]) if kept.get(q) else source(CORRECTION, self.corrected_by, self.corrected_at)
                    for q in QUANTITIES}
        return ai_sources(None)

    def unaccepted(self) -> list[str]:
        """Under an acceptance withdrawn in part (:attr:`confirmed_sources`), the quantities with a value on screen
        that it no longer holds (Accept confirms them); empty otherwise."""
        if not self.confirmed or not self.confirmed_sources:
            return []
        return [q for q in quantities_shown(self.current()) if self.confirmed_sources[q]["kind"] != CONFIRMATION]

    def whose(self, geometry: dict | None = None) -> dict:
        """How each quantity's value follows it on screen ("AI", "corrected", "confirmed"): of the values in force,
        or (``geometry``: a drag in progress) of the values that geometry would give."""
        sources = self.sources() if geometry is None else self.edit_sources(geometry, None, None)
        return {q: whose(sources[q]) for q in QUANTITIES}

    def edit_sources(self, geometry: dict, user: str | None = None, when: str | None = None) -> dict:
        """The sources of a correction to ``geometry`` made from the calipers as they stood (:meth:`caliper_geometry`:
        the geometry in force, with the AI's withheld outline where it has no ellipse; ``workstation.sources``)."""
        return sources_after(self.sources(), self.caliper_geometry(), geometry, CORRECTION, user, when)

    @property
    def shows_withheld_ellipse(self) -> bool:
        """The ellipse in force is the AI's whose head biometry it withheld (:func:`withheld_ai_ellipse`): an outline a
        person may move to measure their own, no value (an edit of other parts never adopts it)."""
        ellipse = withheld_ai_ellipse(self.ai)
        return ellipse is not None and self.current_geometry().get("head_ellipse") == ellipse

    def caliper_geometry(self) -> dict:
        """The geometry the calipers show: the one in force and, where it has no head ellipse (a correction of other
        parts dropped the AI's withheld outline, :func:`without_withheld_ai_ellipse`), the AI's withheld outline, to be
        moved to measure the head (never a value: an edit that leaves it where it is leaves it out again)."""
        geometry = self.current_geometry()
        ellipse = withheld_ai_ellipse(self.ai)
        if ellipse is None or geometry.get("head_ellipse"):
            return geometry
        return {**geometry, "head_ellipse": ellipse}

    @property
    def outlines_withheld_ellipse(self) -> bool:
        """The calipers' ellipse is the AI's whose head biometry it withheld (:meth:`caliper_geometry`): drawn as an
        outline to move, not a value."""
        ellipse = withheld_ai_ellipse(self.ai)
        return ellipse is not None and self.caliper_geometry().get("head_ellipse") == ellipse

    def snapshot(self) -> dict:
        """The review as it stands (for undo): who corrected and accepted, the corrected geometry, and the values
        shown, which an acceptance in it was of."""
        snapshot = copy.deepcopy({k: getattr(self, k) for k in ("corrected", "corrected_by", "corrected_at",
                                                                 "corrected_sources", "confirmed", "confirmed_by",
                                                                 "confirmed_at", "confirmed_sources")})
        snapshot["shown"] = self._shown()
        return snapshot

    def restore(self, snapshot: dict, calibration: Calibration | None, frame_shape) -> None:
        """Back to a snapshot's review, its corrected geometry measured with ``calibration``, the one in force now:
        mm of a scale replaced since (a manual calibration) never come back under the new one's name. With the same
        calibration the values are those the snapshot shows. An acceptance in it holds only where the values shown
        are still those it was of (as ``recalibrate``)."""
        snapshot = copy.deepcopy(snapshot)
        shown = snapshot.pop("shown", None)
        for key, value in snapshot.items():
            setattr(self, key, value)
        self._measure_correction(calibration, frame_shape)
        if shown is not None:
            self._keep_acceptance_of(shown)

    def correct(self, geometry: dict, calibration: Calibration | None, frame_shape, user: str,
                when: str | None = None) -> None:
        """Record a person's geometry; a confirmation of earlier values no longer holds. Each value is the person's
        where they moved its calipers, else it keeps whose it was (``workstation.sources``)."""
        when = when or now_iso()
        self.corrected_sources = self.edit_sources(geometry, user, when)
        self.corrected = recompute_json(geometry, calibration, frame_shape, self.frame_class, self.ai)
        self.corrected_by, self.corrected_at = user, when
        self._withdraw_acceptance()

    def reset_to_ai(self) -> None:
        self.corrected = self.corrected_by = self.corrected_at = self.corrected_sources = None
        self._withdraw_acceptance()

    def _withdraw_acceptance(self) -> None:
        self.confirmed, self.confirmed_by, self.confirmed_at, self.confirmed_sources = False, None, None, None

    @property
    def can_accept(self) -> bool:
        """A value is on screen to accept (:func:`has_measured_value`); a frame without one has nothing to confirm."""
        return has_measured_value(self.current())

    def accept(self, user: str, when: str | None = None) -> None:
        self.confirmed, self.confirmed_by, self.confirmed_at = True, user, when or now_iso()
        self.confirmed_sources = None  # every value on screen the confirmer's

    def recalibrate(self, calibration: Calibration | None, frame_shape) -> None:
        """New calibration (e.g. manual): AI and corrected values recomputed from their own geometry. Where the
        values in force change (mm where there were pixels only, or other mm), an acceptance of the old ones no
        longer holds: the person has not seen these."""
        shown_before = self._shown()
        if self.ai.get("geometry"):
            previous = self.ai
            self.ai = recompute_json(previous["geometry"], calibration, frame_shape, self.frame_class, previous)
            for key in ("skull_echo", "ai_biometry_withheld", "aop_construction", "head_outline_width_px"):
                if key in previous:  # what the geometry cannot say
                    self.ai[key] = previous[key]
            keep_ai_biometry_withheld(self.ai)
        self._measure_correction(calibration, frame_shape)
        self._keep_acceptance_of(shown_before)

    def _shown(self) -> dict:
        """The values in force as the panel shows them, which an acceptance is of."""
        return {key: self.current().get(key) for key in VALUE_KEYS}

    def _measure_correction(self, calibration: Calibration | None, frame_shape) -> None:
        """The corrected geometry, if any, measured again with ``calibration``."""
        if self.corrected is not None:
            self.corrected = recompute_json(self.corrected["geometry"], calibration, frame_shape, self.frame_class,
                                            self.corrected)

    def _keep_acceptance_of(self, shown: dict) -> None:
        """An acceptance holds only for the values in force shown as they were (``shown``) when it was given: where
        one appears, goes or moves, the person has not seen it and its acceptance is withdrawn, value by value as the
        records withdraw it (:func:`acceptance_after`); where no accepted value holds, the acceptance goes."""
        if not self.confirmed:
            return
        sources = acceptance_after(self.sources(), shown, self._shown(), self._unconfirmed_sources())
        if sources is None:
            self._withdraw_acceptance()
        else:
            self.confirmed_sources = (sources if any(s["kind"] != CONFIRMATION for s in sources.values())
                                      else self.confirmed_sources)

    def show_recorded(self, recorded: dict, calibration: Calibration | None, frame_shape) -> list[str]:
        """Put a person's review kept in the records (``workstation.records.recorded_review``) on this frame: their
        corrected geometry, measured here with ``calibration`` (the one in force), and their acceptance, each under
        its author's name and time. An acceptance holds only where the values on screen are the ones accepted (a
        value shown now that was not on record, or is shown otherwise, was never seen by that person). Returns the
        value keys shown otherwise than on record (empty when the review shows as it was kept): shown with another
        value, shown but not on record, or on record but not shown where the record's head ellipse is the AI's withheld
        outline (head biometry versions before review 29 measured on it; :func:`adopts_withheld_ai_ellipse`)."""
        self.reset_to_ai()
        if recorded.get("corrected_geometry"):
            self.corrected = recompute_json(recorded["corrected_geometry"], calibration, frame_shape,
                                            self.frame_class, self.ai)
            self.corrected_by, self.corrected_at = recorded.get("corrected_by"), recorded.get("corrected_at")
            self.corrected_sources = copy.deepcopy(recorded.get("corrected_sources"))
        kept = recorded.get("values") or {}
        # A value on record that is not shown counts only where the AI's withheld outline it was measured on is left
        # out here; elsewhere the plane rule may withhold what a headless correction's label map gave.
        dropped = adopts_withheld_ai_ellipse(recorded.get("corrected_geometry"), self.ai)
        differ = [key for key, value in kept.items() if (dropped or self.current().get(key) is not None)
                  and _shown_differently(self.current().get(key), value)]
        if recorded.get("confirmed_by") and not differ:
            self.confirmed, self.confirmed_by, self.confirmed_at = (True, recorded["confirmed_by"],
                                                                    recorded.get("confirmed_at"))
            # Whose each value on record is: a calibration set since may have withdrawn the acceptance of some.
            kept = recorded.get("sources") or {}
            if any((kept.get(q) or {}).get("kind") not in (None, CONFIRMATION) for q in QUANTITIES):
                self.confirmed_sources = {q: copy.deepcopy(kept.get(q)) or source(CONFIRMATION, self.confirmed_by,
                                                                                    self.confirmed_at)
                                          for q in QUANTITIES}
        return differ

    def to_dict(self) -> dict:
        """JSON-safe record of this frame for a records layer."""
        return {
            "frame_index": self.frame_index, "frame_class": self.frame_class, "uncertainty": self.uncertainty,
            "ai": copy.deepcopy(self.ai), "ai_geometry": copy.deepcopy(self.ai_geometry),
            "corrected": copy.deepcopy(self.corrected), "corrected_geometry": copy.deepcopy(self.corrected_geometry),
            "corrected_by": self.corrected_by, "corrected_at": self.corrected_at,
            "corrected_sources": copy.deepcopy(self.corrected_sources), "confirmed": self.confirmed,
            "confirmed_by": self.confirmed_by, "confirmed_at": self.confirmed_at,
            "confirmed_sources": copy.deepcopy(self.confirmed_sources),
        }


@dataclass
class FrameMaps:
    """The per-pixel outputs kept for one frame, compact."""

    labels_png: bytes
    uncertainty_small: np.ndarray  # uint8, 0..255 = normalised entropy 0..1, 1/UNCERTAINTY_MAP_STEP resolution

    @staticmethod
    def from_arrays(labels: np.ndarray | None, uncertainty: np.ndarray | None) -> "FrameMaps | None":
        if labels is None:
            return None
        ok, png = cv2.imencode(".png", np.ascontiguousarray(labels, dtype=np.uint8))
        if not ok:
            return None
        if uncertainty is None:
            small = np.zeros((1, 1), np.uint8)
        else:
            h, w = uncertainty.shape
            size = (max(1, w // UNCERTAINTY_MAP_STEP), max(1, h // UNCERTAINTY_MAP_STEP))
            small = cv2.resize(uncertainty.astype(np.float32), size, interpolation=cv2.INTER_AREA)
            small = np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return FrameMaps(png.tobytes(), small)

    def labels(self) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(self.labels_png, np.uint8), cv2.IMREAD_UNCHANGED)

    @property
    def nbytes(self) -> int:
        return len(self.labels_png) + self.uncertainty_small.nbytes


def compact(result: FrameResult) -> tuple[FrameResult, FrameMaps | None]:
    """The result without its full-resolution maps, and the maps in compact form."""
    maps = FrameMaps.from_arrays(result.labels, result.uncertainty_map)
    result.labels = None
    result.uncertainty_map = None
    return result, maps


@dataclass
class CineAnalysis:
    """Everything analysed so far for one cine (Qt-free)."""

    n_frames: int
    frame_shape: tuple[int, int]
    calibration: Calibration | None
    model_info: dict = field(default_factory=dict)
    results: dict[int, FrameResult] = field(default_factory=dict)
    maps: dict[int, FrameMaps] = field(default_factory=dict)
    states: dict[int, FrameMeasurementState] = field(default_factory=dict)
    complete: bool = False
    cancelled: bool = False

    def add(self, result: FrameResult, maps: FrameMaps | None) -> FrameMeasurementState:
        self.results[result.index] = result
        if maps is not None:
            self.maps[result.index] = maps
        state = FrameMeasurementState(result.index, result.frame_class, float(result.uncertainty),
                                      copy.deepcopy(result.measurements),
                                      uncertainty_method=result.uncertainty_method)
        self.states[result.index] = state
        return state

    def chosen(self) -> tuple[int | None, str]:
        return choose_frame([self.results[i] for i in sorted(self.results)])

    def set_calibration(self, calibration: Calibration | None) -> None:
        self.calibration = calibration
        for state in self.states.values():
            state.recalibrate(calibration, self.frame_shape)

    @property
    def maps_nbytes(self) -> int:
        return sum(m.nbytes for m in self.maps.values())

    def analyze_json(self) -> dict[str, Any]:
        """The AI's results in the ``analyze`` contract (model, frames, summary), as the pipeline computed them
        (with the file's calibration; a manual calibration applies to the review states only)."""
        results = [self.results[i] for i in sorted(self.results)]
        return {"model": dict(self.model_info), "n_frames": self.n_frames, "cancelled": not self.complete,
                "calibration_source": self.calibration.source if self.calibration else "none",
                "frames": [r.to_json() for r in results], "summary": summarize(results)}

    def to_dict(self) -> dict[str, Any]:
        chosen, why = self.chosen()
        return {"n_frames": self.n_frames, "model": self.model_info, "chosen_frame": chosen, "why": why,
                "complete": self.complete, "frames": [self.states[i].to_dict() for i in sorted(self.states)]}
