"""The window end to end (offscreen): open a multi-frame DICOM, analyse it in the worker pool, correct by dragging
calipers with real mouse events, undo/redo, accept, keyboard playback, cancel, errors from workers."""
from __future__ import annotations

import math

import pytest

from PySide6 import QtCore  # noqa: E402

from gui_support import (DEMO_FRAMES, OracleModel, make_window, mouse_drag, no_leftover_jobs,  # noqa: E402,F401
                         open_and_analyse, synthetic_demo, write_demo)
from workstation.cine_review import recompute_json  # noqa: E402
from workstation.gui.panel import plain_text  # noqa: E402
from workstation.inference.pipeline import FRAMES_PER_BATCH  # noqa: E402
from workstation.measure import measure_labelmap  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_leftover_jobs")
Qt = QtCore.Qt


@pytest.fixture(scope="module")
def demo_dcm(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("cine"))


@pytest.fixture
def analysed(make_window, qtbot, demo_dcm):
    window = make_window()
    open_and_analyse(qtbot, window, demo_dcm)
    return window


def test_a_multiframe_dicom_is_analysed_frame_by_frame(analysed):
    window = analysed
    assert window.cine.n_frames == DEMO_FRAMES and window.analysis.complete
    assert len(window.analysis.states) == DEMO_FRAMES and window.strip.analysed == DEMO_FRAMES
    # The values on screen are the core's values for the frame's anatomy.
    expected = measure_labelmap(synthetic_demo().labels[0], window.analysis.calibration)
    assert window.current_frame == 0
    assert window.panel.value_text("ai", "AoP") == f"{expected.aop_deg:.1f}°"
    assert window.panel.value_text("ai", "HSD") == f"{expected.hsd_mm:.1f} mm"
    assert "DICOM ultrasound regions" in window.panel.calibration_label.text()
    # The plane is named as a person reads it, in the frame line and in why HC is withheld here.
    assert "standard plane (PS and FH)" in plain_text(window.panel.frame_label)
    assert "classed standard plane (PS and FH)" in plain_text(window.panel.reasons_label)
    assert "standard_plane" not in plain_text(window.panel.reasons_label)
    chosen, why = window.analysis.chosen()
    assert window.strip.chosen == chosen is not None and "standard transperineal plane" in why
    assert "Analysis done" in window.statusBar().currentMessage()
    assert not window.progress.isVisible() and not window.cancel_button.isVisible()
    # Every overlay of a standard plane is drawn: masks, PS axis, tangent with its value, HSD line, ellipse.
    assert window.overlays.mask_item.isVisible() and window.overlays.aop_text.isVisible()
    assert window.overlays.aop_text.textItem.toPlainText() == f"AoP {expected.aop_deg:.1f}° (AI)"
    assert all(window.calipers.rois[name].isVisible() for name in ("ps_axis", "aop", "hsd", "head_ellipse"))


def test_dragging_the_tangent_point_recomputes_aop_and_undo_redo_restore_it(analysed, qtbot):
    window = analysed
    window.go_to_frame(5)
    state = window.current_state()
    ai_aop = state.ai["aop_deg"]
    handles_before = window.calipers.handle_points()
    edits = []
    window.measurementEdited.connect(lambda frame, record: edits.append((frame, record)))
    start = window.handle_viewport_pos("tangent_point")
    end = start + QtCore.QPoint(-30, 45)
    mouse_drag(qtbot, window, start, end)

    assert state.is_corrected and state.corrected_by == "Dr Test"
    corrected = state.corrected["aop_deg"]
    assert corrected is not None and abs(corrected - ai_aop) > 1.0
    assert state.ai["aop_deg"] == ai_aop  # the AI value is kept beside the correction
    # The value is the core's for the geometry the calipers now hold.
    geometry = window.calipers.geometry()
    again = recompute_json(geometry, window.analysis.calibration, window.analysis.frame_shape, state.frame_class)
    assert corrected == pytest.approx(again["aop_deg"], abs=1e-3)
    assert window.calipers.handle_points()["tangent_point"] != handles_before["tangent_point"]
    assert window.undo_stack.count() == 1  # one drag, one undoable edit
    assert [e[0] for e in edits] == [5] and edits[0][1]["change"] == "correction"
    assert edits[0][1]["corrected"]["aop_deg"] == corrected and edits[0][1]["ai"]["aop_deg"] == ai_aop
    assert window.panel.value_text("corrected", "AoP") == f"{corrected:.1f}°"
    # On the image too, the value says whose it is.
    assert window.overlays.aop_text.textItem.toPlainText() == f"AoP {corrected:.1f}° (corrected)"
    handles_after = window.calipers.handle_points()

    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not state.is_corrected and state.current()["aop_deg"] == ai_aop
    assert window.overlays.aop_text.textItem.toPlainText() == f"AoP {ai_aop:.1f}° (AI)"
    assert window.calipers.handle_points() == handles_before
    assert window.panel.value_text("corrected", "AoP") == ""

    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert state.is_corrected and state.corrected["aop_deg"] == corrected
    assert window.calipers.handle_points() == handles_after
    assert [e[1]["change"] for e in edits] == ["correction", "undo", "correction"]


def test_undo_brings_back_the_frame_it_edited(analysed, qtbot):
    window = analysed
    window.go_to_frame(3)
    start = window.handle_viewport_pos("hsd_end")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(25, 30))
    edited = window.analysis.states[3]
    assert edited.is_corrected and edited.corrected["hsd_px"] != edited.ai["hsd_px"]
    window.go_to_frame(8)
    window.undo_stack.undo()
    assert window.current_frame == 3 and not edited.is_corrected


def test_moving_the_ps_inferior_end_moves_the_aop_vertex_and_hsd_start(analysed, qtbot):
    window = analysed
    window.go_to_frame(2)
    state = window.current_state()
    start = window.handle_viewport_pos("ps_inferior")
    previews = []
    window.calipers.editPreview.connect(previews.append)
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(-35, -20))
    assert previews, "values are recomputed while the handle moves"
    geometry = state.corrected["geometry"]
    inferior = geometry["ps_axis"]["inferior"]
    assert geometry["aop"]["vertex"] == inferior and geometry["hsd"]["start"] == inferior
    assert inferior != state.ai["geometry"]["ps_axis"]["inferior"]
    assert state.corrected["aop_deg"] != state.ai["aop_deg"]


def test_the_head_ellipse_is_moved_and_resized_by_its_handles(analysed, qtbot):
    """The handles move and resize the ellipse; on a transperineal frame, where head biometry is withheld whatever the
    ellipse, such a drop changes no value and is no correction (review 30, finding 10): nothing saved, no undo step."""
    window = analysed
    window.go_to_frame(4)
    state = window.current_state()
    roi = window.calipers.ellipse_roi
    ai_ellipse = state.ai["geometry"]["head_ellipse"]
    dropped = []
    window.calipers.editFinished.connect(lambda geometry: dropped.append(geometry["head_ellipse"]))
    # Drag the body (inside the ellipse, away from the other calipers): the centre moves.
    centre = window.frame_to_viewport(*ai_ellipse["center"])
    offset = QtCore.QPoint(0, 40)
    mouse_drag(qtbot, window, centre + offset, centre + offset + QtCore.QPoint(20, 15))
    moved = dropped[-1]
    assert moved["center"][0] > ai_ellipse["center"][0] + 5 and moved["semi_axes"] == pytest.approx(
        ai_ellipse["semi_axes"], abs=0.05)
    # No value changed (head biometry withheld on a transperineal plane, with the reason): no correction.
    assert not state.is_corrected and window.undo_stack.count() == 0
    assert state.ai["hc_px"] is None and "axial head plane" in state.ai["reasons"]["hc_px"]
    assert window.calipers.handle_points()  # the calipers back on the AI's geometry
    # The minor-axis handle (the last scale handle) changes only that axis.
    handle = roi.getHandles()[-1]
    start = window.view.mapFromScene(handle.scenePos())
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(0, 30))
    resized = dropped[-1]
    changed = [abs(new - old) > 1.0 for new, old in zip(resized["semi_axes"], ai_ellipse["semi_axes"])]
    assert changed.count(True) == 1, (ai_ellipse, resized)
    kept = changed.index(False)
    assert resized["semi_axes"][kept] == pytest.approx(ai_ellipse["semi_axes"][kept], abs=0.05)
    assert not state.is_corrected and window.undo_stack.count() == 0


def test_calipers_dragged_past_the_image_stop_at_its_edge(analysed, qtbot):
    """A handle let go beyond the image is measured where the image ends, not off it (a point off the frame
    would still give an angle, a meaningless one); dragged whole, the PS axis keeps its length."""
    window = analysed
    window.go_to_frame(6)
    state = window.current_state()
    rows, cols = window.analysis.frame_shape
    left, top, right, bottom = -0.5, -0.5, cols - 0.5, rows - 0.5
    window.view.view_box.scaleBy((2.5, 2.5))  # zoomed out: black all round the image, for the mouse to reach
    qtbot.wait(20)
    viewport = window.view.viewport().rect()

    def beyond(x, y):
        point = window.frame_to_viewport(x, y)
        assert viewport.contains(point), "the target must be on the viewport, off the image"
        return point

    # The tangent point, dragged 60 pixels past the right edge.
    tangent = state.ai["geometry"]["aop"]["tangent_point"]
    mouse_drag(qtbot, window, window.handle_viewport_pos("tangent_point"), beyond(cols + 60, tangent[1]))
    point = state.corrected["geometry"]["aop"]["tangent_point"]
    assert point[0] == pytest.approx(right, abs=0.01) and state.corrected["aop_deg"] is not None

    # The PS axis, dragged by its line far above the top: it stops with its higher end on the edge, unbent.
    superior, inferior = (state.current()["geometry"]["ps_axis"][k] for k in ("superior", "inferior"))
    grip = [superior[0] + (inferior[0] - superior[0]) / 3, superior[1] + (inferior[1] - superior[1]) / 3]
    mouse_drag(qtbot, window, window.frame_to_viewport(*grip), beyond(grip[0], -80))
    moved = state.corrected["geometry"]["ps_axis"]
    assert min(moved["superior"][1], moved["inferior"][1]) == pytest.approx(top, abs=0.01)
    assert math.dist(moved["superior"], moved["inferior"]) == pytest.approx(math.dist(superior, inferior), abs=0.01)
    assert moved["inferior"][0] - moved["superior"][0] == pytest.approx(inferior[0] - superior[0], abs=0.01)

    # The HSD end, past the bottom left corner: it stops in the corner.
    mouse_drag(qtbot, window, window.handle_viewport_pos("hsd_end"), beyond(-50, rows + 50))
    assert state.corrected["geometry"]["hsd"]["end"] == pytest.approx([left, bottom], abs=0.01)

    # The ellipse dragged by its body past the left edge: its centre stops on the edge, its size kept.
    ellipse = state.current()["geometry"]["head_ellipse"]
    centre = window.frame_to_viewport(*ellipse["center"])
    offset = QtCore.QPoint(0, 40)
    target = beyond(ellipse["center"][0] - cols, ellipse["center"][1])
    dropped = []
    window.calipers.editFinished.connect(lambda geometry: dropped.append(geometry["head_ellipse"]))
    mouse_drag(qtbot, window, centre + offset, QtCore.QPoint(target.x(), centre.y() + offset.y()))
    dragged = dropped[-1]  # head biometry is withheld on this transperineal frame: no value changed, no correction
    assert state.current()["geometry"]["head_ellipse"] == ellipse
    assert dragged["center"][0] == pytest.approx(left, abs=0.01)
    assert dragged["semi_axes"] == pytest.approx(ellipse["semi_axes"], abs=0.05)
    # Every point a person placed is one the core accepts as on the frame.
    for x, y in (point, moved["superior"], moved["inferior"], dragged["center"]):
        assert left <= x <= right and top <= y <= bottom


def test_accept_records_the_user_and_reset_goes_back_to_the_ai(make_window, qtbot, demo_dcm):
    window = make_window(user="Midwife Jones")
    open_and_analyse(qtbot, window, demo_dcm, exam_id=42, frame=6)
    assert window.current_frame == 6
    accepted = []
    window.frameAccepted.connect(lambda frame, record: accepted.append((frame, record)))
    qtbot.mouseClick(window.panel.accept_button, Qt.MouseButton.LeftButton)
    state = window.current_state()
    assert state.confirmed and state.confirmed_by == "Midwife Jones" and state.confirmed_at
    assert accepted and accepted[0][0] == 6
    record = accepted[0][1]
    assert record["exam_id"] == 42 and record["confirmed_by"] == "Midwife Jones" and record["file"] == str(demo_dcm)
    assert record["calibration_source"] == "dicom_regions" and record["model"]["name"] == "oracle"
    assert "Accepted by Midwife Jones" in plain_text(window.panel.provenance_label)
    assert not window.panel.accept_button.isEnabled()
    qtbot.mouseClick(window.panel.reset_button, Qt.MouseButton.LeftButton)
    assert not state.confirmed and not state.is_corrected
    window.undo_stack.undo()
    assert state.confirmed_by == "Midwife Jones"


def test_without_a_user_name_nothing_is_recorded(make_window, qtbot, demo_dcm):
    window = make_window(user="")
    open_and_analyse(qtbot, window, demo_dcm)
    window.accept_frame()
    assert not window.current_state().confirmed
    assert "Enter your name" in window.error_banner.text
    start = window.handle_viewport_pos("tangent_point")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(0, 40))
    assert not window.current_state().is_corrected and window.undo_stack.count() == 0
    # The caliper went back to where the recorded values are.
    assert window.calipers.handle_points()["tangent_point"] == window.current_state().ai["geometry"]["aop"][
        "tangent_point"]


def test_keyboard_plays_steps_and_jumps(analysed, qtbot):
    window = analysed
    window.go_to_frame(0)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.current_frame == 1
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert window.current_frame == 0
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.current_frame == DEMO_FRAMES - 1
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.current_frame == 0
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert window.playback.speed == 1.5
    window.set_speed(1.0)
    shown = []
    window.frameShown.connect(shown.append)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.playback.playing
    assert not window.calipers.editable  # while playing the calipers cannot be grabbed
    qtbot.wait(400)  # 10 frames' time at the file's 25 frames/s
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.playback.playing
    assert len(set(shown)) >= 4, shown
    assert window.calipers.editable  # paused, they can


def test_playback_without_loop_stops_on_the_last_frame(analysed, qtbot):
    window = analysed
    window.loop_check.setChecked(False)
    window.set_speed(2.0)
    window.go_to_frame(DEMO_FRAMES - 4)
    window.playback.play()
    qtbot.waitUntil(lambda: not window.playback.playing, timeout=3000)
    assert window.current_frame == DEMO_FRAMES - 1


def test_the_strip_and_slider_jump_to_a_frame(analysed, qtbot):
    window = analysed
    strip = window.strip
    x = round(strip._column_rect(7).center().x())
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QtCore.QPoint(x, strip.height() // 2))
    assert window.current_frame == 7 and strip.current == 7
    window.slider.setValue(9)
    assert window.current_frame == 9
    window.go_to_chosen_frame()
    assert window.current_frame == window.analysis.chosen()[0]


def test_cancel_stops_the_analysis_and_keeps_what_was_done(make_window, qtbot, demo_dcm):
    slow = OracleModel(delay_s=0.25)
    window = make_window(model_provider=lambda: slow)
    window.open_file(demo_dcm)
    qtbot.waitUntil(lambda: window.analysis is not None and len(window.analysis.states) >= 1, timeout=20_000)
    assert window.cancel_button.isVisible()
    with qtbot.waitSignal(window.analysisFinished, timeout=10_000) as finished:
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert finished.args == [True]
    analysed = len(window.analysis.states)
    assert 1 <= analysed < DEMO_FRAMES and not window.analysis.complete
    assert "stopped after" in window.statusBar().currentMessage()
    window.go_to_frame(DEMO_FRAMES - 1)
    assert window.current_state() is None and "not analysed" in plain_text(window.panel.frame_label)


def test_closing_a_cine_cancels_its_analysis(make_window, qtbot, demo_dcm):
    slow = OracleModel(delay_s=0.25)
    window = make_window(model_provider=lambda: slow)
    window.open_file(demo_dcm)
    qtbot.waitUntil(lambda: window.analysing, timeout=20_000)
    window.close_cine()
    assert window.cine is None and window.pages.currentWidget() is window.welcome
    qtbot.waitUntil(lambda: not window.analysis_pool.busy(), timeout=5000)
    # Uncancelled, the job would have asked for every batch; cancelled, it stops after the one in flight.
    assert slow.batches < math.ceil(DEMO_FRAMES / FRAMES_PER_BATCH)


def test_a_broken_file_is_reported_and_the_window_keeps_working(analysed, qtbot, tmp_path, demo_dcm):
    window = analysed
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 20)
    with qtbot.waitSignal(window.errorShown, timeout=10_000) as error:
        window.open_file(broken)
    assert "Could not open broken.dcm" in error.args[0] and window.error_banner.text == error.args[0]
    assert window.cine is not None and window.path == demo_dcm  # the cine on screen stays
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.current_frame == 1
    open_and_analyse(qtbot, window, demo_dcm)
    assert window.analysis.complete and not window.error_banner.isVisible()


def test_an_analysis_error_is_reported_and_the_cine_still_plays(make_window, qtbot, demo_dcm):
    failing = OracleModel(fail_at=2)
    window = make_window(model_provider=lambda: failing)
    with qtbot.waitSignal(window.errorShown, timeout=20_000) as error:
        window.open_file(demo_dcm)
    assert "The analysis stopped" in error.args[0] and "told to fail" in error.args[0]
    qtbot.waitUntil(lambda: not window.analysing, timeout=5000)
    assert 0 < len(window.analysis.states) < DEMO_FRAMES
    window.go_to_frame(DEMO_FRAMES - 1)
    assert window.current_frame == DEMO_FRAMES - 1


def test_a_refused_model_is_reported(make_window, qtbot, demo_dcm):
    from workstation.errors import ModelError

    def refuse():
        raise ModelError("no model named 'missing' (available: psfh-multitask)")

    window = make_window(model_provider=refuse)
    with qtbot.waitSignal(window.errorShown, timeout=20_000) as error:
        window.open_file(demo_dcm)
    assert error.args[0] == "The analysis stopped: no model named 'missing' (available: psfh-multitask)"


def test_manual_calibration_from_the_depth_scale_recomputes_mm(analysed, qtbot):
    window = analysed
    state = window.current_state()
    window.start_manual_calibration()
    assert window.calibration_bar.isVisible()
    line = window._calibration_line
    superior, inferior = line.roi.getHandles()
    line.roi.movePoint(superior, QtCore.QPointF(30.0, 100.0))
    line.roi.movePoint(inferior, QtCore.QPointF(30.0, 300.0))
    assert window.calibration_bar.length_px == pytest.approx(200.0)
    window.calibration_bar.mm_spin.setValue(50.0)
    qtbot.mouseClick(window.calibration_bar.apply_button, Qt.MouseButton.LeftButton)
    assert window.analysis.calibration.source == "manual" and not window.calibration_bar.isVisible()
    assert state.ai["hsd_mm"] == pytest.approx(state.ai["hsd_px"] * 0.25, rel=1e-3)
    assert "manual" in plain_text(window.panel.calibration_label) and "Dr Test" in plain_text(
        window.panel.calibration_label)
    window.start_manual_calibration()
    qtbot.mouseClick(window.calibration_bar.file_button, Qt.MouseButton.LeftButton)
    assert window.analysis.calibration.source == "dicom_regions"


def test_undo_and_redo_after_a_manual_calibration_give_mm_of_the_calibration_in_force(analysed, qtbot):
    window = analysed
    window.go_to_frame(0)
    state = window.current_state()
    start = window.handle_viewport_pos("hsd_end")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(10, 25))
    assert state.is_corrected and window.analysis.calibration.source == "dicom_regions"
    window.set_calibration(window.file_calibration.with_manual(0.5, detail="test"))
    assert state.corrected["hsd_mm"] == pytest.approx(0.5 * state.corrected["hsd_px"], rel=1e-3)

    window.undo_stack.undo()
    assert not state.is_corrected and state.ai["hsd_mm"] == pytest.approx(0.5 * state.ai["hsd_px"], rel=1e-3)
    window.undo_stack.redo()
    corrected = state.corrected
    # The corrected geometry again, measured with the manual scale in force (not the file's, undone to).
    assert corrected["hsd_mm"] == pytest.approx(0.5 * corrected["hsd_px"], rel=1e-3)
    assert corrected["calibration"]["source"] == "manual"
    assert window.panel.value_text("corrected", "HSD") == f"{corrected['hsd_mm']:.1f} mm"
    assert "manual" in plain_text(window.panel.calibration_label)
    assert "DICOM" not in plain_text(window.panel.calibration_label)


def test_overlays_switch_on_and_off_and_the_choice_is_kept(analysed):
    window = analysed
    window.overlay_actions["masks"].trigger()
    assert not window.overlays.mask_item.isVisible() and not window.settings.overlay_visible("masks")
    window.overlay_actions["aop"].trigger()
    assert not window.overlays.tangent_line.isVisible() and not window.calipers.tangent_roi.isVisible()
    window.overlay_actions["uncertainty"].trigger()
    assert window.overlays.uncertainty_item.isVisible()
    window.outline_action.trigger()
    window.overlay_actions["masks"].trigger()
    assert window.overlays.fh_outline.isVisible() and not window.overlays.mask_item.isVisible()
    window.go_to_frame(1)
    assert not window.calipers.tangent_roi.isVisible()  # stays off on the next frame


def test_settings_dialog_saves_name_device_model_and_colours(analysed):
    from workstation.gui.settings import SettingsDialog

    window = analysed
    dialog = SettingsDialog(window.settings, window)
    dialog.user_edit.setText("Dr Who")
    dialog.device_combo.setCurrentText("cpu")
    dialog.mask_opacity.setValue(50)
    dialog.colour_buttons["hsd"].set_rgb((10, 20, 30))
    dialog.accept()
    assert window.settings.user_name == "Dr Who" and window.settings.device == "cpu"
    assert window.settings.mask_opacity == 0.5 and window.settings.colour("hsd") == (10, 20, 30)
    assert window.overlays.hsd_line.opts["pen"].color().getRgb()[:3] == (10, 20, 30)
    assert "psfh-multitask" in [dialog.model_combo.itemText(i) for i in range(dialog.model_combo.count())]


def test_first_start_offers_the_demo_cine(make_window, qtbot):
    window = make_window()
    assert window.pages.currentWidget() is window.welcome
    with qtbot.waitSignal(window.cineOpened, timeout=30_000):
        qtbot.mouseClick(window.welcome.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.analysing, timeout=30_000)
    assert window.cine.n_frames == 48 and window.path.name == "demo-cine.dcm"
    assert window.settings.recent_files[0] == str(window.path.resolve())


def test_dropping_a_file_opens_it(make_window, qtbot, demo_dcm):
    from PySide6 import QtGui

    window = make_window()
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(demo_dcm))])
    event = QtGui.QDropEvent(QtCore.QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                             Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.analysisFinished, timeout=30_000):
        window.dropEvent(event)
    assert window.path == demo_dcm


def test_other_panels_dock_beside_the_viewer(make_window):
    from PySide6 import QtWidgets

    window = make_window()
    panel = QtWidgets.QLabel("records")
    dock = window.add_side_dock(panel, "Patient records")
    assert dock.widget() is panel and window.dockWidgetArea(dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert dock.toggleViewAction() in window.panels_menu.actions()


def test_panel_says_what_a_calibrated_uncertainty_means(qtbot):
    from workstation.cine_review import FrameMeasurementState
    from workstation.gui.panel import MeasurementPanel

    panel = MeasurementPanel()
    qtbot.addWidget(panel)
    values = {"aop_deg": 128.0, "hsd_px": 30.0, "geometry": {}, "reasons": {}}
    panel.show_state(FrameMeasurementState(0, "standard_plane", 0.72, dict(values), uncertainty_method="calibrated"))
    assert plain_text(panel.uncertainty_label) == (
        "Uncertainty: 0.72 (HIGH; the model's chance that this frame's AoP is missing or more than 10° off)")
    panel.show_state(FrameMeasurementState(0, "standard_plane", 0.2, dict(values)))
    assert plain_text(panel.uncertainty_label) == "Uncertainty: 0.20 (low; 0 confident, 1 do not trust)"


def test_panel_says_which_segmentation_the_ai_aop_was_drawn_on(qtbot):
    from workstation.cine_review import FrameMeasurementState
    from workstation.gui.panel import MeasurementPanel

    panel = MeasurementPanel()
    qtbot.addWidget(panel)
    construction = {"segmentation": "turned +8°", "direct_estimate_deg": 127.34,
                    "candidates_deg": {"averaged": 133.0, "plain": 134.1, "mirrored": 132.2, "turned +8°": 127.9,
                                       "turned -8°": 135.5}}
    values = {"aop_deg": 127.9, "hsd_px": 30.0, "geometry": {}, "reasons": {}, "aop_construction": construction}
    panel.show_state(FrameMeasurementState(0, "standard_plane", 0.2, dict(values)))
    assert plain_text(panel.construction_label) == (
        "The AI built the AoP lines on the turned +8° segmentation (a single test-time pass), whose AoP is the "
        "nearest to the model's direct AoP estimate (127.3°); on the averaged segmentation it would be 133.0°.")
    averaged = {**construction, "segmentation": "averaged"}
    panel.show_state(FrameMeasurementState(0, "standard_plane", 0.2, {**values, "aop_construction": averaged}))
    assert plain_text(panel.construction_label) == (
        "The AI built the AoP lines on the averaged segmentation, whose AoP is the nearest to the model's direct "
        "AoP estimate (127.3°).")
    # no AoP (withheld, or none built), or no record (a model without a direct estimate): nothing to say
    panel.show_state(FrameMeasurementState(0, "one_structure", 0.2, {**values, "aop_deg": None}))
    assert plain_text(panel.construction_label) == ""
    panel.show_state(FrameMeasurementState(0, "standard_plane", 0.2, {k: v for k, v in values.items()
                                                                      if k != "aop_construction"}))
    assert plain_text(panel.construction_label) == ""
    panel.show_state(None)
    assert plain_text(panel.construction_label) == ""


def test_a_non_fetal_image_shows_no_ai_head_biometry_but_a_person_can_measure_the_ellipse(make_window, qtbot):
    """A real pelvis scan (pydicom-data): the shipped models outline a "head" with no skull echo along it. The
    panel withholds HC, BPD, OFD and GA and says why once; the ellipse stays, and a person's edit of it is measured."""
    from fixtures_io import pydicom_test_file
    from workstation.gui.workers import ModelCache

    models = ModelCache()
    window = make_window(model_provider=lambda: models.get(None, "cpu"))
    open_and_analyse(qtbot, window, pydicom_test_file("gdcm-US-ALOKA-16.dcm"))
    state = window.current_state()
    assert state.frame_class == "not_transperineal" and state.ai["skull_echo"]["seen"] is False
    assert window.panel.value_text("ai", "HC") == "—" and window.panel.value_text("ai", "GA") == "—"
    reasons = plain_text(window.panel.reasons_label)
    assert "HC, BPD, OFD, GA: no fetal skull echo" in reasons and reasons.count("no fetal skull echo") == 1
    assert window.calipers.rois["head_ellipse"].isVisible() and not window.overlays.hc_text.isVisible()
    # Drawn as an outline to move, not a value: dashed, its tooltip saying the AI's HC is withheld and why.
    roi = window.calipers.rois["head_ellipse"]
    assert roi.pen.style() == QtCore.Qt.PenStyle.DashLine and "no fetal skull echo" in roi.toolTip()
    assert "head biometry was withheld on 1" in window.statusBar().currentMessage()
    # The sonographer drags the ellipse: their ellipse is measured, in mm from the file's ultrasound regions.
    ai_ellipse = state.ai["geometry"]["head_ellipse"]
    centre = window.frame_to_viewport(*ai_ellipse["center"])
    mouse_drag(qtbot, window, centre, centre + QtCore.QPoint(10, 5))
    assert state.corrected is not None and state.corrected["hc_mm"] is not None
    assert roi.pen.style() == QtCore.Qt.PenStyle.SolidLine and not roi.toolTip()  # the person's ellipse now
    assert window.panel.value_text("corrected", "HC").endswith("mm")
    # The label on the image writes HC as the panel does (one decimal), whose value it is after it.
    assert window.overlays.hc_text.textItem.toPlainText() == f"HC {window.panel.value_text('corrected', 'HC')} " \
        "(corrected)"


def _label(item) -> str:
    return item.textItem.toPlainText()


def test_the_labels_on_the_image_say_whose_values_they_are(analysed, qtbot):
    """"(AI)" until a person acts; "(corrected)" for a person's edit; "(confirmed)" once a person accepted the
    values, the AI's or a correction, as the report's key frame says it."""
    window = analysed
    window.go_to_frame(0)
    assert _label(window.overlays.aop_text).endswith("(AI)") and _label(window.overlays.hsd_text).endswith("(AI)")
    window.accept_frame()  # the AI's values, vouched for by Dr Test
    assert _label(window.overlays.aop_text) == f"AoP {window.current_state().ai['aop_deg']:.1f}° (confirmed)"
    assert _label(window.overlays.hsd_text).endswith("(confirmed)")
    window.undo_stack.undo()
    assert _label(window.overlays.aop_text).endswith("(AI)")
    start = window.handle_viewport_pos("tangent_point")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(-30, 45))
    assert _label(window.overlays.aop_text).endswith("(corrected)")
    window.accept_frame()
    state = window.current_state()
    assert _label(window.overlays.aop_text) == f"AoP {state.corrected['aop_deg']:.1f}° (confirmed)"
    assert _label(window.overlays.hsd_text).endswith("(confirmed)")


def test_hc_is_written_alike_on_the_image_in_the_panel_and_in_the_report(qtbot, tmp_path, monkeypatch):
    """The HC beside the ellipse on the image is the report's label (``workstation.reports.values.hc_label``, the one
    formatter), whose value it is after it; the panel writes the value as it does (one decimal in mm, whole px)."""
    import pyqtgraph as pg

    from workstation.gui import overlays
    from workstation.gui.panel import format_value
    from workstation.gui.settings import Settings
    from workstation.reports.values import hc_label

    for values in ({"hc_mm": 69.54, "hc_px": 348.0}, {"hc_mm": 70.0}, {"hc_px": 347.6}):
        assert hc_label(values) == f"HC {format_value(values, 'HC')[0]}"
    calls = []
    monkeypatch.setattr(overlays, "hc_label", lambda values, whose=None: calls.append(whose) or hc_label(values, whose))
    view = pg.GraphicsLayoutWidget()
    qtbot.addWidget(view)
    layer = overlays.OverlayLayer(view.addViewBox(), Settings(tmp_path / "settings.ini"))
    layer.frame_shape = (360, 360)
    ellipse = {"center": [180.0, 150.0], "semi_axes": [60.0, 45.0], "angle_deg": 10.0}
    for values, whose, text in (({"hc_mm": 69.54, "hc_px": 348.0}, "corrected", "HC 69.5 mm (corrected)"),
                                ({"hc_px": 347.6}, "AI", "HC 348 px (AI)")):
        layer.show_geometry({**values, "geometry": {"head_ellipse": ellipse}}, whose)
        assert layer.hc_text.textItem.toPlainText() == text
    assert calls == ["corrected", "AI"]
    layer.show_geometry({"hc_mm": None, "hc_px": None, "geometry": {"head_ellipse": ellipse}}, "AI")
    assert calls[-1] == "AI" and not layer.hc_text.isVisible()


def test_the_calibration_line_names_its_source_once():
    from workstation.gui.panel import calibration_text

    def text(source, detail):
        return calibration_text({"calibration": {"source": source, "detail": detail}}, "none")

    drawn = "drawn on the depth scale by Dr A: 50 mm over 200.0 px, line from (30, 100) to (30, 300)"
    assert text("manual", f"manual: {drawn}") == f"manual ({drawn})"
    assert text("dicom_regions", "dicom_region: region 0 (2D, cm)") == "DICOM ultrasound regions (region 0 (2D, cm))"
    assert text("pixel_spacing", "pixel_spacing") == "DICOM Pixel Spacing"
    assert text("manual", "entered by the user") == "manual (entered by the user)"  # a detail without a source
    # Two scales: the one in force is not repeated, another is named as the panel names it.
    assert text("manual", f"manual: {drawn}; dicom_region: region 1 (2D, cm)") == \
        f"manual ({drawn}; DICOM ultrasound regions: region 1 (2D, cm))"


def test_a_manual_calibration_is_named_once_in_the_panel(analysed, qtbot):
    window = analysed
    window.start_manual_calibration()
    line = window._calibration_line
    superior, inferior = line.roi.getHandles()
    line.roi.movePoint(superior, QtCore.QPointF(30.0, 100.0))
    line.roi.movePoint(inferior, QtCore.QPointF(30.0, 300.0))
    window.calibration_bar.mm_spin.setValue(50.0)
    qtbot.mouseClick(window.calibration_bar.apply_button, Qt.MouseButton.LeftButton)
    text = plain_text(window.panel.calibration_label)
    assert text.startswith("Calibration: manual (drawn on the depth scale by Dr Test: 50 mm over 200.0 px"), text
    assert "manual (manual" not in text and text.count("manual") == 1


def _non_square_demo(folder, mm_per_row: float):
    """The demo cine with its ultrasound region giving 0.2 mm per column and ``mm_per_row`` per row."""
    import pydicom

    path = write_demo(folder)
    ds = pydicom.dcmread(path)
    region = ds.SequenceOfUltrasoundRegions[0]
    region.PhysicalDeltaX, region.PhysicalDeltaY = 0.02, mm_per_row / 10.0  # cm per pixel
    ds.save_as(path)
    return path


def _screen_pixels_per_frame_pixel(window) -> tuple[float, float]:
    """How many screen pixels 100 frame columns and 100 frame rows take, divided by 100."""
    origin = window.frame_to_viewport(100.0, 100.0)
    across, down = window.frame_to_viewport(200.0, 100.0), window.frame_to_viewport(100.0, 200.0)
    return (across.x() - origin.x()) / 100.0, (down.y() - origin.y()) / 100.0


def test_a_cine_with_non_square_pixels_is_drawn_in_the_patients_shape(make_window, qtbot, tmp_path, demo_dcm):
    """Scale(0.2, 0.25): a row is 1.25 times as tall in the patient as a column is wide, and the AoP and HSD are built
    so (``pixel_aspect``); the view shows it so (pyqtgraph's lock ratio, x scale over y scale, is 1 / 1.25), and the
    calipers still sit on the geometry's pixel coordinates."""
    from workstation.calibration import Scale

    window = make_window(size=(1440, 900))
    open_and_analyse(qtbot, window, _non_square_demo(tmp_path / "rows", 0.25))
    scale = window.analysis.calibration.scale_for([(320.0, 240.0)], window.cine.frame_shape).scale
    assert (scale.mm_per_px_x, scale.mm_per_px_y) == pytest.approx((0.2, 0.25)) and isinstance(scale, Scale)
    assert window.view.pixel_aspect == pytest.approx(1.25) and window.view.aspect_ratio() == pytest.approx(0.8)
    across, down = _screen_pixels_per_frame_pixel(window)
    assert down / across == pytest.approx(1.25, rel=0.03)
    # The whole frame stays in view, and a caliper is drawn where its pixel coordinates are.
    (x0, x1), (y0, y1) = window.view.view_box.viewRange()
    rows, cols = window.cine.frame_shape[:2]
    assert x0 <= -0.5 and x1 >= cols - 0.5 and y0 <= -0.5 and y1 >= rows - 0.5
    window.go_to_frame(0)
    end = window.current_state().current_geometry()["hsd"]["end"]
    handle, drawn = window.handle_viewport_pos("hsd_end"), window.frame_to_viewport(*end)
    assert abs(handle.x() - drawn.x()) <= 1 and abs(handle.y() - drawn.y()) <= 1
    start = window.handle_viewport_pos("tangent_point")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(-20, 30))
    state = window.current_state()
    assert state.is_corrected
    moved = window.frame_to_viewport(*state.corrected["geometry"]["aop"]["tangent_point"])
    assert abs(moved.x() - (start.x() - 20)) <= 3 and abs(moved.y() - (start.y() + 30)) <= 3
    # A manual scale is square: the view goes back to square pixels.
    window.set_calibration(window.file_calibration.with_manual(0.2, detail="test"))
    assert window.view.aspect_ratio() == pytest.approx(1.0)


def test_a_cine_with_square_pixels_is_drawn_square(analysed):
    window = analysed
    assert window.view.pixel_aspect == 1.0 and window.view.aspect_ratio() == pytest.approx(1.0)
    across, down = _screen_pixels_per_frame_pixel(window)
    assert down == pytest.approx(across, rel=0.02)


def test_a_reviews_values_in_a_message_are_written_as_the_labels_write_them():
    """The banner's short phrase for a review's values (a correction the records did not keep) writes each value as
    the labels on the image and the report's key frame do (``workstation.reports``): HC only where it has mm."""
    from workstation.gui.main_window import _values_text

    assert _values_text({"aop_deg": 121.26, "hsd_mm": 12.04, "hsd_px": 60.0, "hc_mm": 69.54, "hc_px": 348.0}) == \
        "AoP 121.3°, HSD 12.0 mm, HC 69.5 mm"
    assert _values_text({"aop_deg": None, "hsd_mm": None, "hsd_px": 60.4, "hc_mm": None, "hc_px": 348.0}) == "HSD 60 px"
    assert _values_text({}) == ""
