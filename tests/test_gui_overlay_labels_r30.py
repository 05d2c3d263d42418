"""Review 30, finding 8: the labels on the image never cover one another (the withheld AoP's label sat under the HSD's
when the tangent point lay on the PS inferior end)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from workstation.gui.overlays import OverlayLayer  # noqa: E402
from workstation.gui.settings import Settings  # noqa: E402
from workstation.gui.viewer import frame_rect  # noqa: E402

SHAPE = (480, 640)
SCREENSHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"
VERTEX, SUPERIOR = [318.206, 76.687], [184.185, 102.353]  # review 30's exam 4 (demo seed 4), frame 4


@pytest.fixture
def layer(qtbot, tmp_path):
    view = pg.GraphicsLayoutWidget()
    qtbot.addWidget(view)
    view.resize(560, 430)  # the frame at about the scale the window showed it
    box = view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
    image = pg.ImageItem(np.full(SHAPE, 40, np.uint8), axisOrder="row-major")
    image.setRect(frame_rect(SHAPE))
    box.addItem(image)
    box.setRange(frame_rect(SHAPE), padding=0)
    view.show()
    qtbot.waitExposed(view)
    overlay = OverlayLayer(box, Settings(tmp_path / "settings.ini"))
    overlay.show_maps(None, SHAPE)
    overlay.view = view
    return overlay


def _rect(item):
    QApplication.processEvents()
    return item.sceneBoundingRect()


def _geometry(tangent, hsd_end):
    return {"ps_axis": {"inferior": VERTEX, "superior": SUPERIOR},
            "aop": {"vertex": VERTEX, "superior": SUPERIOR, "tangent_point": tangent},
            "hsd": {"start": VERTEX, "end": hsd_end, "method": "perpendicular"}}


@pytest.mark.parametrize("tangent, hsd_end", [
    ([318.023, 77.067], [329.331, 134.779]),  # review 30: the tangent point dragged onto the PS inferior end
    ([318.5, 76.2], [329.331, 134.779]),
    ([314.5, 74.5], [290.0, 128.0]),
    ([320.0, 60.0], [330.0, 95.0]),    # a short HSD beside a short tangent line
])
def test_the_aop_and_hsd_labels_never_overlap(layer, qtbot, tangent, hsd_end):
    layer.show_geometry({"aop_deg": None, "hsd_mm": 11.8, "hsd_px": 59.0, "geometry": _geometry(tangent, hsd_end)})
    qtbot.wait(20)
    aop, hsd = _rect(layer.aop_text), _rect(layer.hsd_text)
    assert layer.aop_text.isVisible() and layer.hsd_text.isVisible()
    assert layer.aop_text.textItem.toPlainText() == "AoP withheld"
    assert not aop.intersects(hsd), (aop, hsd)
    # Both stay on the frame.
    frame = layer.view_box.mapViewToScene(frame_rect(SHAPE)).boundingRect()
    assert frame.contains(aop) and frame.contains(hsd), (frame, aop, hsd)
    # After a zoom (labels keep their size on screen) they are placed again, still apart.
    layer.view_box.scaleBy((0.6, 0.6), center=pg.Point(*VERTEX))
    qtbot.wait(20)
    assert not _rect(layer.aop_text).intersects(_rect(layer.hsd_text))


def test_labels_that_do_not_meet_stay_where_they_are_put(layer, qtbot):
    geometry = _geometry([420.0, 250.0], [300.0, 200.0])
    layer.show_geometry({"aop_deg": 128.0, "hsd_mm": 20.0, "geometry": geometry})
    qtbot.wait(20)
    placed = layer.hsd_text.pos()
    layer._position(layer.hsd_text, *layer._placed[id(layer.hsd_text)][1:])
    assert layer.hsd_text.pos() == placed  # no shift was needed


def test_screenshot_of_the_review_30_case(layer, qtbot):
    layer.show_geometry({"aop_deg": None, "hsd_mm": 11.8, "hsd_px": 59.0,
                         "geometry": _geometry([318.023, 77.067], [329.331, 134.779])}, "AI")
    qtbot.wait(20)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert layer.view.grab().save(str(SCREENSHOTS / "gui_overlay_labels_r30.png"))
