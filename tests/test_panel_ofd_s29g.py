"""The measurement panel gives OFD beside BPD, as the CLI, the history and the PDF do: same units, decimals and
withheld wording, in the AI and the Corrected columns; every row of the panel is readable (none clipped)."""
from __future__ import annotations

import pytest
from PySide6 import QtCore

from gui_support import make_window  # noqa: F401 (a fixture)
from workstation.cine_review import FrameMeasurementState
from workstation.gui.panel import ROWS, MeasurementPanel, format_value, plain_text


def _panel(qtbot) -> MeasurementPanel:
    panel = MeasurementPanel()
    qtbot.addWidget(panel)
    return panel


def test_the_panel_has_an_ofd_row_right_after_bpd():
    names = [name for name, _ in ROWS]
    assert names == ["AoP", "HSD", "HC", "BPD", "OFD", "GA"]


def test_ofd_is_written_as_bpd_is_in_mm_in_pixels_and_withheld():
    both = {"bpd_mm": 80.04, "bpd_px": 400.2, "ofd_mm": 101.26, "ofd_px": 506.3, "reasons": {}}
    assert format_value(both, "OFD") == ("101.3 mm", "")
    assert format_value(both, "BPD") == ("80.0 mm", "")
    why = "no calibration: pixels only"
    px_only = {"bpd_px": 400.2, "ofd_px": 506.3, "reasons": {"bpd_mm": why, "ofd_mm": why}}
    assert format_value(px_only, "OFD") == ("506 px", why)
    assert format_value(px_only, "BPD") == ("400 px", why)
    echo = "no fetal skull echo along the head outline"
    withheld = {"reasons": {"bpd_px": echo, "ofd_px": echo}}
    assert format_value(withheld, "OFD") == ("—", echo)
    assert format_value({"reasons": {}}, "OFD") == ("—", "not measured")


def test_the_panel_shows_the_ai_and_corrected_ofd_and_names_it_among_the_withheld(qtbot):
    panel = _panel(qtbot)
    ai = {"hc_mm": 290.0, "hc_px": 1450.0, "bpd_mm": 80.0, "bpd_px": 400.0, "ofd_mm": 101.3, "ofd_px": 506.5,
          "ga_weeks": 31.8, "geometry": {}, "reasons": {}}
    corrected = {**ai, "ofd_mm": 104.0, "ofd_px": 520.0}
    panel.show_state(FrameMeasurementState(0, "not_transperineal", 0.1, ai, corrected=corrected,
                                           corrected_by="Dr A", corrected_at="2024-01-01T10:00:00"))
    assert panel.value_text("ai", "OFD") == "101.3 mm"
    assert panel.value_text("corrected", "OFD") == "104.0 mm"
    assert panel.corrected_labels["OFD"].text() == "<b>104.0 mm</b>"  # a changed value stands out, as BPD's does
    # The head withheld: OFD is named with HC, BPD and GA, the reason said once.
    echo = "no fetal skull echo along the head outline"
    withheld = {"geometry": {}, "reasons": {k: echo for k in ("hc_px", "hc_mm", "bpd_px", "bpd_mm", "ofd_px",
                                                               "ofd_mm", "ga_weeks")}}
    panel.show_state(FrameMeasurementState(0, "not_transperineal", 0.1, withheld))
    assert panel.value_text("ai", "OFD") == "—" and panel.ai_labels["OFD"].toolTip() == echo
    assert plain_text(panel.reasons_label).endswith(f"HC, BPD, OFD, GA: {echo}")
    panel.show_state(None)
    assert panel.value_text("ai", "OFD") == "—"


@pytest.mark.parametrize("size", [(1280, 820), (1024, 600)])
def test_every_row_of_the_panel_is_readable_in_the_window(make_window, qtbot, size):
    """In the window's Measurements dock at its narrowest, on a laptop-sized window too, no row's name or value is
    cut (no cell smaller than the text it holds) and no row overlaps the next."""
    window = make_window(size=size)
    window.resizeDocks([window.panel_dock], [window.panel_dock.minimumWidth()], QtCore.Qt.Orientation.Horizontal)
    ai = {"aop_deg": 128.4, "hsd_mm": 23.1, "hsd_px": 115.0, "hc_mm": 290.0, "hc_px": 1450.0, "bpd_mm": 80.0,
          "bpd_px": 400.0, "ofd_mm": 101.3, "ofd_px": 506.5, "ga_weeks": 31.8, "geometry": {}, "reasons": {}}
    panel = window.panel
    panel.show_state(FrameMeasurementState(0, "standard_plane", 0.1, ai, corrected={**ai, "ofd_mm": 104.0},
                                           corrected_by="Dr A", corrected_at="2024-01-01T10:00:00"))
    qtbot.wait(50)
    cells = []
    for row, (name, _) in enumerate(ROWS, start=1):
        row_labels = [panel.grid.itemAtPosition(row, 0).widget(), panel.ai_labels[name], panel.corrected_labels[name]]
        assert plain_text(row_labels[0]) == name
        for label in row_labels:
            assert label.isVisible()
            hint = label.sizeHint()
            assert label.width() >= hint.width() and label.height() >= hint.height(), (name, label.text())
        cells.append(panel.ai_labels[name].geometry())
    for above, below in zip(cells, cells[1:]):
        assert above.bottom() < below.top()
    assert window.panel_dock.width() <= window.panel_dock.minimumWidth() + 40  # it was at its narrowest


@pytest.mark.parametrize("column", ["ai", "corrected"])
def test_value_text_reads_the_ofd_cell(qtbot, column):
    panel = _panel(qtbot)
    values = {"ofd_px": 506.5, "geometry": {}, "reasons": {"ofd_mm": "no calibration: pixels only"}}
    panel.show_state(FrameMeasurementState(0, "not_transperineal", 0.1, values, corrected=dict(values)))
    assert panel.value_text(column, "OFD") == "506 px"
