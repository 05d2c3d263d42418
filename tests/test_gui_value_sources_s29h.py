"""Review 29 finding 2 in the window: dragging only the HSD end leaves the AI's AoP labelled "(AI)" on the image, in
the panel's Corrected column, in the records and on the labour timeline dock (a hollow AI circle, not a person's
square; the footer names no person for it). Offscreen, real SQLite records, a real mouse drag. Screenshots go to
``out/screenshots/value_sources_*.png``."""
from __future__ import annotations

from pathlib import Path

import pytest

from PySide6 import QtCore  # noqa: E402

from gui_support import OracleModel, make_window, mouse_drag, no_leftover_jobs  # noqa: E402,F401
from records_support import DEMO_FRAMES, three_exam_labor  # noqa: E402
from workstation.records import CORRECTION, Records  # noqa: E402
from workstation.sources import source_of  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_leftover_jobs")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"


@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


def test_dragging_only_the_hsd_end_leaves_the_ais_aop_the_ais_on_screen_and_timeline(make_window, records, tmp_path,
                                                                                    qtbot):
    from workstation.gui.records_link import attach_records

    exam_ids = three_exam_labor(records, tmp_path / "usb")
    oracle = OracleModel(n_frames=DEMO_FRAMES, seed=0)
    window = make_window(model_provider=lambda: oracle, size=(1500, 950))
    link = attach_records(window, records, analyze=False)
    labor_id = records.exam(exam_ids[0]).labor_id
    assert link.panel.select_labor(labor_id)
    qtbot.waitUntil(lambda: link.timeline.labor_id == labor_id, timeout=5000)
    with qtbot.waitSignal(window.analysisFinished, timeout=60_000):
        link.panel.open_exam(exam_ids[0])
    state = window.current_state()
    ai_aop = state.ai["aop_deg"]
    assert ai_aop is not None and state.ai["hsd_px"] is not None

    start = window.handle_viewport_pos("hsd_end")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(12, 30))
    assert state.is_corrected and state.corrected["aop_deg"] == pytest.approx(ai_aop)
    assert state.corrected["hsd_px"] != pytest.approx(state.ai["hsd_px"])
    aop_label = window.overlays.aop_text.textItem.toPlainText()
    hsd_label = window.overlays.hsd_text.textItem.toPlainText()
    assert aop_label == f"AoP {ai_aop:.1f}° (AI)", aop_label
    assert hsd_label.endswith("(corrected)"), hsd_label
    assert window.panel.value_text("corrected", "AoP") == f"{ai_aop:.1f}° (AI)"
    assert not window.panel.value_text("corrected", "HSD").endswith("(AI)")
    row = records.current_measurement(exam_ids[0])
    assert row.kind == CORRECTION and source_of(row, "aop")["kind"] == "ai"
    assert source_of(row, "hsd") == {"kind": "correction", "by": "Dr Test", "at": row.created_at}
    # The timeline dock: exam 1's AoP stays a hollow AI circle; its HSD is a person's.
    qtbot.waitUntil(lambda: not link.timeline.points("confirmed") and len(link.timeline.points("ai")) == 3,
                    timeout=5000)
    assert "by a person" not in link.timeline.summary_label.text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "value_sources_hsd_only.png"))

    # Then the tangent too: now the AoP is the person's.
    start = window.handle_viewport_pos("tangent_point")
    mouse_drag(qtbot, window, start, start + QtCore.QPoint(-20, 30))
    assert window.overlays.aop_text.textItem.toPlainText().endswith("(corrected)")
    assert window.panel.value_text("corrected", "AoP").endswith("°")
    qtbot.waitUntil(lambda: [p["exam_id"] for p in link.timeline.points("confirmed")] == [exam_ids[0]], timeout=5000)
