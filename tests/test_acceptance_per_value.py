"""The one rule for an acceptance whose values a new calibration changed (``cine_review.acceptance_after``), which the
records' calibration (``records.calibration._restate``) and the viewer's state (``FrameMeasurementState``) both follow:
value by value, the AoP's acceptance stays where an isotropic scale leaves it as it was."""
from __future__ import annotations

from workstation.cine_review import FrameMeasurementState, acceptance_after
from workstation.sources import AI, CONFIRMATION, CORRECTION, ai_sources, source

CONFIRMED = {q: source(CONFIRMATION, "Dr Test", "t1") for q in ("aop", "hsd", "head")}
BEFORE = ai_sources("model 1", "t0")


def test_an_hsd_shown_in_other_mm_goes_back_to_the_ai_and_the_aop_stays_accepted():
    after = acceptance_after(CONFIRMED, {"aop_deg": 120.0, "hsd_mm": 14.4}, {"aop_deg": 120.0, "hsd_mm": 21.7}, BEFORE)
    assert after["aop"] == CONFIRMED["aop"] and after["hsd"] == BEFORE["hsd"]
    assert after["head"] == CONFIRMED["head"]  # no head value shown: nothing changed there


def test_no_accepted_value_left_withdraws_the_acceptance_and_an_unchanged_one_keeps_it():
    assert acceptance_after(CONFIRMED, {"hsd_mm": 14.4}, {"hsd_mm": 21.7}, BEFORE) is None
    assert acceptance_after(CONFIRMED, {"aop_deg": 120.0}, {"aop_deg": 121.0}, BEFORE) is None
    assert acceptance_after(CONFIRMED, {"aop_deg": 120.0}, {"aop_deg": 120.01}, BEFORE) == CONFIRMED  # same digit


def test_a_value_already_withdrawn_keeps_whose_it_is():
    partial = {**CONFIRMED, "hsd": source(CORRECTION, "Dr A", "t0")}
    after = acceptance_after(partial, {"aop_deg": 120.0, "hsd_mm": 14.4}, {"aop_deg": 120.0, "hsd_mm": 9.0}, BEFORE)
    assert after["hsd"] == partial["hsd"]


def test_the_viewer_state_withdraws_value_by_value_and_accept_confirms_them_all_again():
    ai = {"aop_deg": 120.0, "hsd_px": 72.0, "hsd_mm": 14.4, "geometry": {}}
    state = FrameMeasurementState(0, "standard_plane", 0.1, ai)
    state.accept("Dr Test", "t1")
    shown = state._shown()
    state.ai = {**ai, "hsd_mm": 21.6}  # a new scale (recalibrate measures the geometry; here the values only)
    state._keep_acceptance_of(shown)
    assert state.confirmed and state.whose() == {"aop": "confirmed", "hsd": "AI", "head": "confirmed"}
    assert state.unaccepted() == ["hsd"] and state.sources()["hsd"]["kind"] == AI
    restored = state.snapshot()
    state.accept("Dr Test", "t2")
    assert set(state.whose().values()) == {"confirmed"} and state.unaccepted() == []
    state.restore(restored, None, (10, 10))  # undo: back to the AoP's acceptance only
    assert state.unaccepted() == ["hsd"]
