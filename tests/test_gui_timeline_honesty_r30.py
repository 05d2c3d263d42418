"""Review 30, findings 1 (stall part) and 2, in the window's timeline dock: the flag names the exam it left out and
the unreviewed HIGH-uncertainty AI value it rests on, a line each; such a point has its own mark, in the legend."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QApplication  # noqa: E402

from records_support import demo_exam_file, synthetic_measurement  # noqa: E402
from workstation.gui.timeline_dock import CAVEAT_STYLE, STALLED_STYLE, LaborTimelineWidget  # noqa: E402
from workstation.records import Records, import_scan  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"


@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


@pytest.fixture
def timeline(qtbot, records):
    widget = LaborTimelineWidget(records)
    qtbot.addWidget(widget)
    widget.resize(760, 520)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _labor(records, folder, rows):
    """Exams at the given hours, each with an AI row (frame, uncertainty; values None: no AoP, with why)."""
    ids = []
    for seed, (hours, frame, uncertainty) in enumerate(rows):
        exam = import_scan(records, demo_exam_file(folder, seed, hours)).exam
        values = synthetic_measurement(frame if frame is not None else 0)
        if frame is None:
            values = dict(values, aop_deg=None, reasons={"aop_deg": "the angle of progression needs three distinct "
                                                                    "points"})
        records.add_measurement(exam.id, "ai", "tiny 0.0.1", values, frame_index=frame or 0, time_s=0.0,
                                uncertainty=uncertainty)
        ids.append(exam.id)
    return ids


def _shot(widget, name):
    QApplication.sendPostedEvents()
    QApplication.processEvents()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"gui_timeline_r30_{name}.png"
    assert widget.grab().save(str(path))
    return path


def test_a_high_uncertainty_ai_point_has_its_own_mark_and_the_flag_names_it(qtbot, timeline, records, tmp_path):
    # The AoP falls from exam 2 to exam 3 (frames 3 -> 0): stalled, resting on exam 3, which the AI rates HIGH.
    ids = _labor(records, tmp_path / "usb", [(0.0, 0, 0.2), (2.0, 3, 0.33), (4.5, 0, 0.61)])
    timeline.set_labor(records.exam(ids[0]).labor_id)
    assert timeline.timeline["stalled"] is True
    high_x, _ = timeline.high_scatter.getData()
    ai_x, _ = timeline.ai_scatter.getData()
    assert list(high_x) == [4.5] and list(ai_x) == [0.0, 2.0]  # never drawn as a plain circle as well
    assert list(timeline.high_mark.getData()[0]) == [4.5]  # a white "!" on a grey disc
    assert "HIGH uncertainty, not reviewed" in timeline.legend_label.text()
    flag = timeline.flag_label.text()
    assert flag.startswith("⚠ STALLED") and timeline.flag_label.styleSheet() == STALLED_STYLE
    assert (f"<br>⚠ exam {ids[2]}&#x27;s AoP is the AI&#x27;s with HIGH uncertainty (0.61), not reviewed by a person: "
            "review it") in flag
    _shot(timeline, "high_uncertainty")


def test_not_stalled_without_an_exam_says_so_in_amber(qtbot, timeline, records, tmp_path):
    ids = _labor(records, tmp_path / "usb", [(0.0, 0, 0.2), (2.0, None, 0.33), (4.5, 3, 0.2)])
    timeline.set_labor(records.exam(ids[0]).labor_id)
    assert timeline.timeline["stalled"] is False
    flag = timeline.flag_label.text()
    assert flag.startswith("Not stalled") and timeline.flag_label.styleSheet() == CAVEAT_STYLE
    assert (f"⚠ exam {ids[1]} at 2.0 h has no AoP (the angle of progression needs three distinct points): left out "
            "of this judgement, review it") in flag
    assert "HIGH" not in timeline.legend_label.text() and "no AoP" in timeline.legend_label.text()
    assert f"exam {ids[1]} at 2.0 h: no AoP (the angle of progression needs three" in timeline.summary_label.text()
    _shot(timeline, "left_out")
