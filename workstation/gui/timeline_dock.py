"""The labour timeline (sonopartogram) panel: AoP of each exam against hours since the labour started.

``LaborTimelineWidget`` draws :func:`workstation.records.labor_timeline` with pyqtgraph and adds nothing to
its numbers: AI values as hollow grey circles, values a person corrected or confirmed as filled blue
squares, an AI value no person has reviewed on a frame the AI rates HIGH uncertainty (the point's
``ai_high_uncertainty``) as a grey disc with a "!" (as the PDF's chart marks it), the 120 degree line of Kalache et
al. 2009, the least-squares trend (line and deg/h), and the stalled flag with the rule that raised it and what the
judgement left out or rests on that needs review (its ``caveats``, one line each; amber where it is not stalled). HSD (mm, right axis) is drawn on request; an exam with no mm
calibration has no HSD point (px are not comparable between exams). Clicking a point asks to open that
exam at its measured frame (``examOpenRequested``). Call :meth:`refresh` after an exam is imported,
analysed or corrected.
"""
from __future__ import annotations

from datetime import datetime
from functools import cache
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal, Slot
from PySide6.QtGui import QFont, QPainterPath, QPalette, QTransform
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workstation.errors import WorkstationError
from workstation.inference.uncertainty import describe_uncertainty
from workstation.measure import describe_hsd
from workstation.records import Records, StallRule, labor_timeline
from workstation.records.store import describe_acquired, display_name
from workstation.records.timeline import point_whose

AI_PEN, AI_SIZE = pg.mkPen("#7d7d7d", width=2), 12
HIGH_SIZE = 17  # the grey disc with a "!" (an unreviewed AI value with HIGH uncertainty)
PERSON_PEN, PERSON_BRUSH, PERSON_SIZE = pg.mkPen("#0d3c78", width=1.5), pg.mkBrush("#1f6fd1"), 12
PATH_PEN = pg.mkPen("#b8b8b8", width=1)
TREND_PEN = pg.mkPen("#e06c00", width=2, style=Qt.PenStyle.DashLine)
THRESHOLD_COLOR = "#2e7d32"
THRESHOLD_PEN = pg.mkPen(THRESHOLD_COLOR, width=1.5, style=Qt.PenStyle.DashLine)
HSD_COLOR = "#ad1457"
HSD_AI_PEN, HSD_PERSON_BRUSH = pg.mkPen(HSD_COLOR, width=2), pg.mkBrush(HSD_COLOR)
HIGHLIGHT_PEN = pg.mkPen("#000000", width=2)
MISSING_COLOR = "#9e9e9e"
HIGH_COLOR = "#8a8a8a"  # the disc of an unreviewed AI value with HIGH uncertainty (the PDF chart's too)
LEGEND = [("○", "#7d7d7d", "AI"), ("■", "#1f6fd1", "person (corrected/confirmed)"),
          ("╌╌", "#e06c00", "trend"), ("╌╌", THRESHOLD_COLOR, "120° (Kalache 2009)")]
LEGEND_MISSING = [("×", MISSING_COLOR, "no AoP")]
LEGEND_HIGH = [(f'<span style="color:white; background-color:{HIGH_COLOR}; font-weight:bold">&nbsp;!&nbsp;</span>',
                None, "AI, HIGH uncertainty, not reviewed")]
LEGEND_HSD = [("▽", HSD_COLOR, "HSD, AI"), ("▼", HSD_COLOR, "HSD, person")]
STALLED_STYLE = "color: white; background: #b3261e; padding: 4px; font-weight: bold;"
PROGRESS_STYLE = "padding: 4px;"
CAVEAT_STYLE = "color: #3d2e00; background: #ffe08a; padding: 4px;"  # not stalled, but judged without something


@cache
def exclamation_symbol() -> QPainterPath:
    """A "!" in the unit square pyqtgraph scales a symbol into, drawn in white over the grey disc of an unreviewed AI
    value with HIGH uncertainty (built once the application is up: text paths need its fonts)."""
    mark = QPainterPath()
    font = QFont()
    font.setBold(True)
    font.setPixelSize(100)
    mark.addText(0, 0, font, "!")
    box = mark.boundingRect()
    scale = 0.7 / box.height()
    mark = QTransform().scale(scale, scale).map(mark)
    return mark.translated(-mark.boundingRect().center())



def _aop_source(point: dict) -> dict:
    """Who made a point's AoP (``workstation.sources``: a correction of the HSD alone leaves the AI's AoP the AI's)."""
    return (point.get("sources") or {}).get("aop") or {"kind": point["kind"], "by": point["by"]}


def _tip(x: float, y: float, data) -> str:
    point = data["point"]
    who = "not analysed" if point["kind"] is None else point_whose(point)
    hsd = describe_hsd(point["hsd_mm"], point["hsd_px"], point.get("hsd_mm_reason"))
    aop = "-" if point["aop_deg"] is None else f"{point['aop_deg']:.1f}°"
    return (f"exam {point['exam_id']} at {point['hours']:.2f} h ({point['acquired'].replace('T', ' ')})\n"
            f"AoP {aop}, HSD {hsd}\n{who}\nAI uncertainty {describe_uncertainty(point.get('ai_uncertainty'))}\n"
            "click to open")


class LaborTimelineWidget(QWidget):
    """The sonopartogram of one labour; ``set_labor(id)`` shows one, ``refresh()`` re-reads it."""

    examOpenRequested = Signal(int, int)  # exam id, frame index of its current measurement

    def __init__(self, records: Records, parent: QWidget | None = None, *, rule: StallRule = StallRule()):
        super().__init__(parent)
        self.records = records
        self.rule = rule
        self.labor_id: int | None = None
        self.timeline: dict | None = None
        self.highlighted_exam_id: int | None = None
        self._build()
        self.refresh()

    # -- layout ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.header_label = QLabel()
        self.header_label.setWordWrap(True)
        self.flag_label = QLabel()
        self.flag_label.setWordWrap(True)
        self.flag_label.setTextFormat(Qt.TextFormat.RichText)
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        foreground = palette.color(QPalette.ColorRole.Text)
        self.plot = pg.PlotWidget(background=background)
        self.plot.setMinimumHeight(150)
        item = self.plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.showGrid(x=True, y=True, alpha=0.25)
        item.setLabel("bottom", "hours since labour start")
        item.setLabel("left", "AoP (°)")
        for name in ("bottom", "left", "right"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(foreground))
            axis.setTextPen(pg.mkPen(foreground))
        self.path_curve = pg.PlotDataItem(pen=PATH_PEN)
        self.trend_curve = pg.PlotDataItem(pen=TREND_PEN)
        self.ai_scatter = pg.ScatterPlotItem(symbol="o", size=AI_SIZE, pen=AI_PEN, brush=pg.mkBrush(None),
                                             hoverable=True, tip=_tip)
        self.person_scatter = pg.ScatterPlotItem(symbol="s", size=PERSON_SIZE, pen=PERSON_PEN, brush=PERSON_BRUSH,
                                                 hoverable=True, tip=_tip)
        self.high_scatter = pg.ScatterPlotItem(symbol="o", size=HIGH_SIZE, pen=pg.mkPen("#000000", width=1),
                                               brush=pg.mkBrush(HIGH_COLOR), hoverable=True, tip=_tip)
        self.high_mark = pg.ScatterPlotItem(symbol=exclamation_symbol(), size=HIGH_SIZE, pen=pg.mkPen(None),
                                            brush=pg.mkBrush("#ffffff"), hoverable=True, tip=_tip)
        self.missing_scatter = pg.ScatterPlotItem(symbol="x", size=11, pen=pg.mkPen(None), brush=pg.mkBrush(MISSING_COLOR),
                                                  hoverable=True, tip=_tip)
        self.highlight = pg.ScatterPlotItem(symbol="o", size=22, pen=HIGHLIGHT_PEN, brush=pg.mkBrush(None))
        self.threshold_line = pg.InfiniteLine(
            pos=120.0, angle=0, pen=THRESHOLD_PEN, movable=False, label="120° (Kalache 2009)",
            labelOpts={"position": 0.02, "anchors": [(0, 1), (0, 1)], "color": THRESHOLD_COLOR})
        self.trend_text = pg.TextItem(color="#e06c00", anchor=(1, 1))
        for graphic in (self.path_curve, self.trend_curve, self.threshold_line, self.highlight, self.ai_scatter,
                        self.person_scatter, self.high_scatter, self.high_mark, self.missing_scatter,
                        self.trend_text):
            item.addItem(graphic)
        self.ai_scatter.sigClicked.connect(self._point_clicked)
        self.person_scatter.sigClicked.connect(self._point_clicked)
        self.high_scatter.sigClicked.connect(self._point_clicked)
        self.high_mark.sigClicked.connect(self._point_clicked)
        self.missing_scatter.sigClicked.connect(self._point_clicked)

        # HSD on a right axis, in a second view box that shares the x axis.
        self.hsd_view = pg.ViewBox()
        self.hsd_view.setMouseEnabled(x=False, y=False)
        item.scene().addItem(self.hsd_view)
        item.getAxis("right").linkToView(self.hsd_view)
        self.hsd_view.setXLink(item)
        item.getAxis("right").setLabel("HSD (mm)", color=HSD_COLOR)
        self.hsd_ai = pg.ScatterPlotItem(symbol="t", size=11, pen=HSD_AI_PEN, brush=pg.mkBrush(None), hoverable=True,
                                         tip=_tip)
        self.hsd_person = pg.ScatterPlotItem(symbol="t", size=11, pen=HSD_AI_PEN, brush=HSD_PERSON_BRUSH,
                                             hoverable=True, tip=_tip)
        self.hsd_view.addItem(self.hsd_ai)
        self.hsd_view.addItem(self.hsd_person)
        self.hsd_ai.sigClicked.connect(self._point_clicked)
        self.hsd_person.sigClicked.connect(self._point_clicked)
        item.vb.sigResized.connect(self._sync_hsd_view)

        # The legend sits under the plot, where it can never hide a point.
        self.legend_label = QLabel()
        self.legend_label.setWordWrap(True)
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.hsd_check = QCheckBox("HSD (mm)")
        self.hsd_check.setToolTip("HSD in mm on a right axis (exams without a mm calibration have no HSD point)")
        self.hsd_check.toggled.connect(self._show_hsd)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.legend_label.setToolTip(
            "Hollow grey circles: AoP as the AI measured it. Filled blue squares: AoP a person corrected or "
            "confirmed. Dashed orange: least-squares trend. Dashed green: 120°, above which spontaneous vaginal "
            "delivery was more likely (Kalache et al. 2009). Grey disc with '!': an AI value no person has reviewed, "
            "on a frame the AI rates HIGH uncertainty: review it. Grey x: an exam with no AoP. Triangles: HSD.")
        options = QHBoxLayout()
        options.addWidget(self.legend_label, 1)
        options.addWidget(self.hsd_check, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header_label)
        layout.addWidget(self.flag_label)
        layout.addWidget(self.plot, 1)
        layout.addLayout(options)
        layout.addWidget(self.summary_label)
        self._show_hsd(False)

    def _sync_hsd_view(self) -> None:
        vb = self.plot.getPlotItem().vb
        self.hsd_view.setGeometry(vb.sceneBoundingRect())
        self.hsd_view.linkedViewChanged(vb, self.hsd_view.XAxis)

    @Slot(bool)
    def _show_hsd(self, shown: bool) -> None:
        item = self.plot.getPlotItem()
        item.showAxis("right", shown)
        self.hsd_view.setVisible(shown)
        self._update_legend()
        self._sync_hsd_view()

    def _update_legend(self) -> None:
        missing = self.timeline is not None and any(p["aop_deg"] is None for p in self.timeline["points"])
        high = any(p.get("ai_high_uncertainty") for p in self.points())
        entries = (LEGEND + (LEGEND_HIGH if high else []) + (LEGEND_MISSING if missing else [])
                   + (LEGEND_HSD if self.hsd_check.isChecked() else []))
        self.legend_label.setText("&nbsp;&nbsp; ".join(
            (symbol if color is None else f'<span style="color:{color}; font-size:large">{symbol}</span>')
            + f"&nbsp;{escape(text)}" for symbol, color, text in entries))

    # -- data --------------------------------------------------------------------------------------------
    @Slot(int)
    def set_labor(self, labor_id: int | None) -> None:
        """Show a labour's timeline (``None`` clears it)."""
        labor_id = None if labor_id is None else int(labor_id)
        if labor_id != self.labor_id:
            self.highlighted_exam_id = None
        self.labor_id = labor_id
        self.refresh()

    @Slot()
    def clear(self) -> None:
        self.set_labor(None)

    @Slot(int)
    def highlight_exam(self, exam_id: int | None) -> None:
        """Ring one exam's points (e.g. the exam open in the viewer); ``None`` removes the ring."""
        self.highlighted_exam_id = exam_id
        self._draw_highlight()

    @Slot()
    def refresh(self) -> None:
        """Re-read the timeline from the records and redraw it."""
        self.timeline = None
        if self.labor_id is not None:
            try:
                self.timeline = labor_timeline(self.records, self.labor_id, self.rule)
            except WorkstationError as exc:
                self._draw_empty(f"Labour {self.labor_id}: {exc}")
                return
        if self.timeline is None:
            self._draw_empty("No labour selected: select one in the patient records.")
            return
        self._draw(self.timeline)

    def points(self, source: str | None = None) -> list[dict]:
        """The points drawn (those with an AoP), all or of one source ("ai" or "confirmed")."""
        if self.timeline is None:
            return []
        return [p for p in self.timeline["points"] if p["aop_deg"] is not None and p["hours"] is not None
                and (source is None or p["source"] == source)]

    # -- drawing -----------------------------------------------------------------------------------------
    def _draw_empty(self, text: str) -> None:
        self.header_label.setText(text)
        self.flag_label.clear()
        self.flag_label.setStyleSheet(PROGRESS_STYLE)
        self.summary_label.clear()
        self._update_legend()
        for scatter in (self.ai_scatter, self.person_scatter, self.high_scatter, self.high_mark, self.missing_scatter,
                        self.hsd_ai, self.hsd_person, self.highlight):
            scatter.setData([], [])
        self.path_curve.setData([], [])
        self.trend_curve.setData([], [])
        self.trend_text.setText("")
        self.plot.getPlotItem().vb.setRange(xRange=(0, 4), yRange=(100, 140), padding=0)

    @staticmethod
    def _spots(points: list[dict], key: str) -> dict:
        return {"x": [p["hours"] for p in points], "y": [p[key] for p in points],
                "data": [{"point": p} for p in points]}

    def _draw(self, timeline: dict) -> None:
        patient = timeline["patient"]
        start = "-" if timeline["start"] is None else describe_acquired(datetime.fromisoformat(timeline["start"]))
        how = "set by a person" if timeline["start_source"] == "explicit" else "first exam"
        self.header_label.setText(f"<b>MRN {escape(patient['mrn'])}</b> {escape(display_name(patient['name']) or '')} · "
                                  f"labour {timeline['labor_id']} · start {start} ({how})")
        drawn = self.points()
        ai, person = self.points("ai"), self.points("confirmed")
        # An unreviewed AI value with HIGH uncertainty has its own mark (``ai_high_uncertainty``), never a plain circle.
        self.ai_scatter.setData(**self._spots([p for p in ai if not p.get("ai_high_uncertainty")], "aop_deg"))
        high = self._spots([p for p in ai if p.get("ai_high_uncertainty")], "aop_deg")
        self.high_scatter.setData(**high)
        self.high_mark.setData(**high)
        self.person_scatter.setData(**self._spots(person, "aop_deg"))
        self.path_curve.setData([p["hours"] for p in drawn], [p["aop_deg"] for p in drawn])
        hsd = [p for p in timeline["points"] if p["hsd_mm"] is not None and p["hours"] is not None]
        self.hsd_ai.setData(**self._spots([p for p in hsd if p.get("hsd_source", p["source"]) == "ai"], "hsd_mm"))
        self.hsd_person.setData(**self._spots([p for p in hsd if p.get("hsd_source", p["source"]) != "ai"],
                                              "hsd_mm"))
        self._draw_trend(timeline, drawn)
        self._draw_flag(timeline)
        self._draw_summary(timeline, drawn)
        self._draw_highlight()
        self._set_ranges(timeline, drawn, hsd)
        self._update_legend()

    def _draw_trend(self, timeline: dict, drawn: list[dict]) -> None:
        slope = timeline["trend_deg_per_h"]
        if slope is None or len(drawn) < 2:
            self.trend_curve.setData([], [])
            self.trend_text.setText("")
            return
        hours = np.array([p["hours"] for p in drawn], float)
        aop = np.array([p["aop_deg"] for p in drawn], float)
        intercept = aop.mean() - slope * hours.mean()  # the least-squares line through the same points
        xs = np.array([hours.min(), hours.max()])
        self.trend_curve.setData(xs, intercept + slope * xs)
        self.trend_text.setText(f"{slope:+.1f}°/h")
        self.trend_text.setPos(float(xs[1]), float(intercept + slope * xs[1]) + 1.5)

    def _draw_flag(self, timeline: dict) -> None:
        rule = timeline["stall_rule"]
        check = timeline["stall_check"]
        rule_text = (f"rule: AoP must rise ≥ {rule['min_rise_deg']:g}° per {rule['span_h']:g} h "
                     "(configurable default, not a guideline value)")
        # What the judgement left out or rests on that needs review, a line each (``stall_check``'s caveats).
        caveats = "".join(f"<br>⚠ {escape(c)}" for c in check.get("caveats") or [])
        finding = escape(check.get("finding", check["reason"]))
        if timeline["stalled"]:
            self.flag_label.setText(f"⚠ STALLED: {finding}.{caveats}<br><small>{escape(rule_text)}</small>")
            self.flag_label.setStyleSheet(STALLED_STYLE)
        else:
            self.flag_label.setText(f"Not stalled: {finding}.{caveats}<br><small>{escape(rule_text)}</small>")
            self.flag_label.setStyleSheet(CAVEAT_STYLE if caveats else PROGRESS_STYLE)

    def _draw_summary(self, timeline: dict, drawn: list[dict]) -> None:
        slope = timeline["trend_deg_per_h"]
        trend = ("Trend: -, needs two exams with an AoP at different times" if slope is None else
                 f"Trend: <b>{slope:+.1f}°/h</b> (least squares over {len(drawn)} exams)")
        parts = [trend]
        people = [p for p in drawn if p["source"] != "ai"]
        if people:
            parts.append("by a person: " + ", ".join(f"exam {p['exam_id']} ({escape(_aop_source(p)['kind'])} by "
                                                     f"{escape(str(_aop_source(p)['by']))})" for p in people))
        missing = [p for p in timeline["points"] if p["aop_deg"] is None]
        for p in missing:
            why = p.get("aop_reason") or "no AoP"
            hours = "-" if p["hours"] is None else f"{p['hours']:.1f} h"
            parts.append(f"exam {p['exam_id']} at {hours}: no AoP ({escape(why)})")
        if not timeline["points"]:
            parts.append("no exam yet: import scans into this labour")
        self.summary_label.setText("<br>".join(parts))

    def _draw_highlight(self) -> None:
        shown = [p for p in self.points() if p["exam_id"] == self.highlighted_exam_id]
        self.highlight.setData([p["hours"] for p in shown], [p["aop_deg"] for p in shown])

    def _set_ranges(self, timeline: dict, drawn: list[dict], hsd: list[dict]) -> None:
        hours = [p["hours"] for p in timeline["points"] if p["hours"] is not None]
        x_low, x_high = min(hours + [0.0]), max(hours + [1.0])
        pad = 0.08 * (x_high - x_low) + 0.15
        aop = [p["aop_deg"] for p in drawn] + [timeline["aop_threshold_deg"]]
        y_pad = max(5.0, 0.12 * (max(aop) - min(aop)))
        if self.trend_text.textItem.toPlainText():  # room above the trend's end for its deg/h text
            aop.append(self.trend_text.pos().y() + 0.5 * y_pad)
        vb = self.plot.getPlotItem().vb
        y_low, y_high = min(aop) - y_pad, max(aop) + y_pad
        vb.setRange(xRange=(x_low - pad, x_high + pad), yRange=(y_low, y_high), padding=0)
        missing = [p for p in timeline["points"] if p["aop_deg"] is None and p["hours"] is not None]
        # An exam with no AoP still happened: an x on the floor of the plot, at its time.
        self.missing_scatter.setData(x=[p["hours"] for p in missing],
                                     y=[y_low + 0.04 * (y_high - y_low)] * len(missing),
                                     data=[{"point": p} for p in missing])
        values = [p["hsd_mm"] for p in hsd]
        if values:
            span = max(values) - min(values)
            self.hsd_view.setYRange(max(0.0, min(values) - 0.3 * span - 2), max(values) + 0.3 * span + 2, padding=0)
        self._sync_hsd_view()

    # -- clicks ------------------------------------------------------------------------------------------
    def _point_clicked(self, _scatter, points, _event=None) -> None:
        if len(points) == 0:
            return
        point = points[0].data()["point"]
        frame = point.get("frame_index")
        self.examOpenRequested.emit(int(point["exam_id"]), 0 if frame is None else int(frame))

    def point_scene_pos(self, exam_id: int, hsd: bool = False):
        """Where an exam's AoP (or HSD) point is drawn, in scene coordinates (tests click there)."""
        point = next(p for p in self.timeline["points"] if p["exam_id"] == exam_id)
        view = self.hsd_view if hsd else self.plot.getPlotItem().vb
        return view.mapViewToScene(QPointF(point["hours"], point["hsd_mm"] if hsd else point["aop_deg"]))


__all__ = ["LaborTimelineWidget"]
