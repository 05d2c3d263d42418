"""Review 30 finding 1 and finding 10's first bullet in the window (offscreen, real SQLite records, real mouse drags):
a caliper dropped so that the geometry breaks (the tangent point on the PS inferior end) is put back as it was before
the drag, the banner says why, and nothing is saved or pushed onto the undo stack; a drop that changes no value (the
head ellipse moved on a transperineal frame, where head biometry is withheld) is no correction either; a move of the
AI's withheld outline on an axial head plane that now measures HC is one. Screenshots go to
``out/screenshots/broken_drag_*.png``."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtCore

from gui_support import OracleModel, make_window, mouse_drag, no_leftover_jobs  # noqa: F401 (fixtures)
from test_gui_review_on_record_s30 import head_plane_ward  # noqa: F401 (fixture)
from test_gui_window_records import _open_and_wait, records, ward  # noqa: F401 (fixtures)
from workstation.records import CORRECTION

pytestmark = pytest.mark.usefixtures("no_leftover_jobs")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"


def _shot(window, name: str) -> Path:
    from PySide6 import QtWidgets

    for _ in range(3):
        QtWidgets.QApplication.processEvents()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"broken_drag_{name}.png"
    assert window.grab().save(str(path))
    return path


def test_the_tangent_point_dropped_on_the_ps_end_is_undone_and_nothing_saved(ward, records, qtbot):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    ai_aop = state.ai["aop_deg"]
    assert ai_aop is not None
    rows = len(records.measurements(exam_id))
    handles = window.calipers.handle_points()
    saved = []
    window.measurementEdited.connect(lambda frame, record: saved.append(record))

    start, end = window.handle_viewport_pos("tangent_point"), window.handle_viewport_pos("ps_inferior")
    mouse_drag(qtbot, window, start, end, steps=12)

    assert not state.is_corrected and state.current()["aop_deg"] == ai_aop
    assert window.calipers.handle_points() == handles  # the drag put back
    assert window.undo_stack.count() == 0 and not saved
    assert len(records.measurements(exam_id)) == rows
    banner = window.error_banner.text
    assert banner.startswith("AoP cannot be measured with the tangent point on the PS end"), banner
    assert banner.endswith(": the drag was undone; nothing saved."), banner
    assert window.overlays.aop_text.textItem.toPlainText() == f"AoP {ai_aop:.1f}° (AI)"
    _shot(window, "tangent_on_ps_end")

    # A good drag afterwards is saved as ever.
    start = window.handle_viewport_pos("tangent_point")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(-20, 30))
    assert state.is_corrected and window.undo_stack.count() == 1
    assert records.current_measurement(exam_id).kind == CORRECTION


def test_a_drag_that_changes_no_value_is_no_correction(ward, records, qtbot):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    assert state.frame_class == "standard_plane" and state.ai["hc_mm"] is None  # head biometry withheld here
    ellipse = state.caliper_geometry().get("head_ellipse")
    assert ellipse and window.calipers.ellipse_roi.isVisible()
    rows = len(records.measurements(exam_id))
    panel_before = window.panel.value_text("corrected", "AoP")

    centre = window.frame_to_viewport(*ellipse["center"])
    offset = QtCore.QPoint(0, 30)
    mouse_drag(qtbot, window, centre + offset, centre + offset + QtCore.QPoint(15, 10))
    assert not state.is_corrected and state.corrected_by is None
    assert window.undo_stack.count() == 0 and len(records.measurements(exam_id)) == rows
    assert window.panel.value_text("corrected", "AoP") == panel_before
    assert window.calipers.handle_points()  # the calipers back on the AI's geometry
    assert state.caliper_geometry()["head_ellipse"] == ellipse
    _shot(window, "ellipse_moved_on_transperineal")


def test_a_move_of_the_withheld_outline_that_measures_hc_is_a_correction(head_plane_ward, records, qtbot):
    window, link, exam_id = head_plane_ward
    _open_and_wait(window, link, qtbot, exam_id)
    state = window.current_state()
    ai = state.ai
    assert ai["ai_biometry_withheld"] and ai["hc_mm"] is None
    ellipse = ai["geometry"]["head_ellipse"]
    centre = window.frame_to_viewport(*ellipse["center"])
    offset = QtCore.QPoint(0, 40)
    mouse_drag(qtbot, window, centre + offset, centre + offset + QtCore.QPoint(12, 8))
    assert state.is_corrected and state.corrected["hc_mm"] is not None
    assert window.undo_stack.count() == 1
    assert records.current_measurement(exam_id).kind == CORRECTION


def test_no_value_changed_rule():
    from workstation.cine_review import changes_no_value

    ellipse = {"center": [50.0, 50.0], "semi_axes": [30.0, 20.0], "angle_deg": 0.0}
    moved = {**ellipse, "center": [60.0, 50.0]}
    before = {"aop_deg": 120.0, "hsd_px": 40.0, "hc_mm": None}
    # the ellipse moved where head biometry is withheld before and after: nothing a person could see changed
    assert changes_no_value(before, {"head_ellipse": ellipse},
                            {"aop_deg": 120.0, "hsd_px": 40.0, "geometry": {"head_ellipse": moved}})
    # ... but where HC now appears, it is a correction
    assert not changes_no_value(before, {"head_ellipse": ellipse},
                                {"aop_deg": 120.0, "hsd_px": 40.0, "hc_mm": 80.0, "geometry": {"head_ellipse": moved}})
    # a caliper of a shown value moved, even if the value rounds the same: a correction
    hsd = {"start": [0.0, 0.0], "end": [0.0, 40.0]}
    assert not changes_no_value(before, {"hsd": hsd},
                                {"aop_deg": 120.0, "hsd_px": 40.0, "geometry": {"hsd": {**hsd, "end": [0.0, 40.0 + 1e-2]}}})
    # a drag that ends where it started
    assert changes_no_value(before, {"hsd": hsd}, {"aop_deg": 120.0, "hsd_px": 40.0, "geometry": {"hsd": hsd}})
