"""The window never freezes: the longest UI-thread stall and the display frame rate while the shipped model
analyses a cine and the cine plays. The figures are printed (``-s``) and are what ``python -m workstation.gui.bench``
reports for the full demo; the bounds asserted are generous, so a loaded two-core CI machine does not fail them."""
from __future__ import annotations

import pytest

from gui_support import make_window, no_leftover_jobs, open_and_analyse, write_demo  # noqa: E402,F401
from workstation.gui.panel import plain_text  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_leftover_jobs")

# Bounds that only catch a freeze or a stopped playback, so a loaded two-core CI machine (a training job, other
# test runs) does not fail them. The aim is a stall of 50 ms or less; the printed figures say how close a run came.
STALL_BOUND_MS = 500  # the analysis alone (window paused on a frame)
PLAYING_STALL_BOUND_MS = 1000  # playing: the UI thread's own per-frame work (decode, overlays, paint) adds to it
MIN_DISPLAY_FPS = 8.0  # the file plays at 25 frames/s


def test_the_ui_stays_responsive_while_the_shipped_model_analyses(make_window, qtbot, qapp, tmp_path):
    from workstation.gui.bench import measure_while_analysing
    from workstation.gui.workers import ModelCache

    cine = write_demo(tmp_path, n_frames=24)
    models = ModelCache()
    window = make_window(model_provider=lambda: models.get(None, "cpu"))
    open_and_analyse(qtbot, window, cine)  # the first run opens the session; the measured runs reuse it
    paused = measure_while_analysing(qapp, window, speed=0.0, timeout_s=120)
    playing = measure_while_analysing(qapp, window, speed=1.0, timeout_s=120)
    print(f"\nUI while the shipped model analyses {playing['frames_analysed']} frames: paused, longest stall "
          f"{paused['longest_stall_ms']:.0f} ms (p99 {paused['stall_p99_ms']:.0f} ms); playing at 1x, longest stall "
          f"{playing['longest_stall_ms']:.0f} ms (p99 {playing['stall_p99_ms']:.0f} ms), display "
          f"{playing['frames_shown_per_s']:.1f} frames/s shown, {playing['frames_painted_per_s']:.1f} painted "
          f"(asked {playing['target_fps']:.0f})")
    for run in (paused, playing):
        assert run["analysis_complete"] and run["frames_analysed"] == 24
    # The panel names the shipped model, and says PLACEHOLDER exactly when its manifest does.
    label = plain_text(window.panel.model_label)
    assert window.model_info["name"] in label and window.model_info["version"] in label
    assert ("PLACEHOLDER MODEL" in label) == bool(window.model_info["placeholder"])
    head = window.model_info["head_biometry_model"]  # the shipped model names its head-biometry model; so does the panel
    assert f"Head outline on axial head planes: {head['name']} {head['version']}" in label
    assert paused["longest_stall_ms"] < STALL_BOUND_MS
    assert playing["longest_stall_ms"] < PLAYING_STALL_BOUND_MS
    assert playing["frames_shown_per_s"] > MIN_DISPLAY_FPS and playing["frames_painted_per_s"] > MIN_DISPLAY_FPS
