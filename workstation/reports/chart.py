"""The sonopartogram chart as a reportlab Drawing: AoP against hours since labour start.

AI values are hollow grey circles, values a person corrected or confirmed are filled dark-blue squares (shape
and fill differ, not only colour, so the chart reads in greyscale print); an AI value no person has reviewed whose
frame the AI rates HIGH uncertainty (the point's ``ai_high_uncertainty``) is a grey disc with a white "!", as in the
window's timeline; an exam without an AoP is an "x" on the floor of the plot at its time (it still happened); the
legend names each mark drawn. The 120° line is dashed; the least-squares trend is a thin line over the exams' span. Its text is set in the report's embedded font
(``workstation.reports.fonts``), so the PDF embeds every font it uses.
"""
from __future__ import annotations

import math

from reportlab.graphics.shapes import Circle, Drawing, Group, Line, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

from workstation.reports.fonts import FONT, FONT_BOLD, register_fonts

AI_COLOUR = colors.HexColor("#6b6b6b")
CONFIRMED_COLOUR = colors.HexColor("#0b3d91")
THRESHOLD_COLOUR = colors.HexColor("#b3261e")
GRID_COLOUR = colors.HexColor("#dddddd")
HIGH_COLOUR = colors.HexColor("#8a8a8a")  # the disc of an unreviewed AI value with HIGH uncertainty
MISSING_COLOUR = colors.HexColor("#9e9e9e")


def _nice_step(span: float, target_ticks: int) -> float:
    """A 1-2-5 step giving about ``target_ticks`` ticks over ``span``."""
    raw = max(span, 1e-9) / target_ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _ticks(low: float, high: float, target: int) -> list[float]:
    step = _nice_step(high - low, target)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _marker(x: float, y: float, source: str, size: float = 3.6, high: bool = False):
    """A point's mark: ``source`` "ai" or a person's; ``high``, an unreviewed AI value with HIGH uncertainty."""
    if high:
        return Group(Circle(x, y, size + 0.8, fillColor=HIGH_COLOUR, strokeColor=colors.black, strokeWidth=0.6),
                     String(x, y - 2.4, "!", fontName=FONT_BOLD, fontSize=7, fillColor=colors.white,
                            textAnchor="middle"))
    if source == "ai":
        return Circle(x, y, size, fillColor=colors.white, strokeColor=AI_COLOUR, strokeWidth=1.2)
    return Rect(x - size, y - size, 2 * size, 2 * size, fillColor=CONFIRMED_COLOUR, strokeColor=CONFIRMED_COLOUR)


def timeline_chart(timeline: dict, width: float = 480, height: float = 220,
                   highlight_exam_id: int | None = None) -> Drawing:
    """The ``labor_timeline`` JSON as a chart; ``highlight_exam_id`` rings one exam (the exam report's own)."""
    register_fonts()  # the labels are measured (anchored) in the embedded font
    drawing = Drawing(width, height, initialFontName=FONT)  # else the drawing starts in Helvetica
    left, right, bottom, top = 46.0, width - 12.0, 34.0, height - 26.0
    points = [p for p in timeline["points"] if p["aop_deg"] is not None and p["hours"] is not None]
    missing = [p for p in timeline["points"] if p["aop_deg"] is None and p["hours"] is not None]
    threshold = timeline.get("aop_threshold_deg", 120.0)
    aops = [p["aop_deg"] for p in points] + [threshold]
    y_low = 10 * math.floor((min(aops) - 8) / 10)
    y_high = 10 * math.ceil((max(aops) + 8) / 10)
    x_high = max([p["hours"] for p in points + missing] + [1.0])
    x_step = _nice_step(x_high, 6)
    x_high = x_step * math.ceil(x_high / x_step - 1e-9)  # end the axis on a tick

    inset = 8.0  # keeps markers at hour 0 and at the last tick off the frame

    def sx(hours: float) -> float:
        return left + inset + (right - left - 2 * inset) * hours / x_high

    def sy(deg: float) -> float:
        return bottom + (top - bottom) * (deg - y_low) / (y_high - y_low)

    for deg in _ticks(y_low, y_high, 6):
        drawing.add(Line(left, sy(deg), right, sy(deg), strokeColor=GRID_COLOUR, strokeWidth=0.5))
        drawing.add(String(left - 4, sy(deg) - 3, f"{deg:g}", fontName=FONT, fontSize=7, textAnchor="end"))
    for hours in _ticks(0.0, x_high, 8):
        drawing.add(Line(sx(hours), bottom, sx(hours), top, strokeColor=GRID_COLOUR, strokeWidth=0.5))
        drawing.add(String(sx(hours), bottom - 10, f"{hours:g}", fontName=FONT, fontSize=7, textAnchor="middle"))
    drawing.add(Rect(left, bottom, right - left, top - bottom, fillColor=None, strokeColor=colors.black,
                     strokeWidth=0.7))
    drawing.add(String((left + right) / 2, 6, "hours since labour start", fontName=FONT, fontSize=8,
                       textAnchor="middle"))
    # Rotated a quarter turn anticlockwise about its anchor, reading upwards along the axis.
    drawing.add(Group(String(0, 0, "AoP (deg)", fontName=FONT, fontSize=8, textAnchor="middle"),
                      transform=(0, 1, -1, 0, 12, (bottom + top) / 2)))
    drawing.add(Line(left, sy(threshold), right, sy(threshold), strokeColor=THRESHOLD_COLOUR, strokeWidth=1,
                     strokeDashArray=[4, 3]))
    drawing.add(String(right - 3, sy(threshold) + 3, f"{threshold:g} deg (Kalache 2009)", fontName=FONT,
                       fontSize=7, fillColor=THRESHOLD_COLOUR, textAnchor="end"))

    trend = timeline.get("trend_deg_per_h")
    if trend is not None and len(points) >= 2:
        hours = [p["hours"] for p in points]
        mean_h = sum(hours) / len(hours)
        mean_deg = sum(p["aop_deg"] for p in points) / len(points)
        ends = [(h, mean_deg + trend * (h - mean_h)) for h in (min(hours), max(hours))]
        drawing.add(Line(sx(ends[0][0]), sy(ends[0][1]), sx(ends[1][0]), sy(ends[1][1]), strokeColor=colors.black,
                         strokeWidth=0.6, strokeDashArray=[1, 2]))
    if len(points) >= 2:
        drawing.add(PolyLine([c for p in points for c in (sx(p["hours"]), sy(p["aop_deg"]))],
                             strokeColor=colors.HexColor("#9aa7bf"), strokeWidth=0.8))
    for p in points:
        x, y = sx(p["hours"]), sy(p["aop_deg"])
        if p["exam_id"] == highlight_exam_id:
            drawing.add(Circle(x, y, 7.5, fillColor=None, strokeColor=colors.black, strokeWidth=0.8))
        drawing.add(_marker(x, y, p["source"], high=bool(p.get("ai_high_uncertainty"))))
        lift = 10 if p["exam_id"] == highlight_exam_id else (7 if p.get("ai_high_uncertainty") else 6)
        drawing.add(String(x, y + lift, f"{p['aop_deg']:.0f}",
                           fontName=FONT, fontSize=6.5, textAnchor="middle"))

    for p in missing:  # an exam with no AoP still happened: an x on the floor of the plot, at its time
        x, y = sx(p["hours"]), bottom + 6
        drawing.add(Line(x - 3, y - 3, x + 3, y + 3, strokeColor=MISSING_COLOUR, strokeWidth=1.2))
        drawing.add(Line(x - 3, y + 3, x + 3, y - 3, strokeColor=MISSING_COLOUR, strokeWidth=1.2))
        drawing.add(String(x, y + 6, f"exam {p['exam_id']}: no AoP", fontName=FONT, fontSize=6,
                           fillColor=MISSING_COLOUR, textAnchor="middle"))

    # Legend along the top edge, outside the plot: each mark drawn.
    legend_y = height - 12
    entries = [("ai", False, "AI value"), ("confirmed", False, "corrected / confirmed by a person")]
    if any(p.get("ai_high_uncertainty") for p in points):
        entries.append(("ai", True, "AI value, HIGH uncertainty, not reviewed"))
    x = left + 4
    for source, high, text in entries:
        drawing.add(_marker(x, legend_y + 3, source, high=high))
        drawing.add(String(x + 8, legend_y, text, fontName=FONT, fontSize=7.5))
        x += 8 + stringWidth(text, FONT, 7.5) + 14
    if trend is not None:
        stalled = "   STALLED" if timeline.get("stalled") else ""
        drawing.add(String(right, legend_y, f"trend {trend:+.1f} deg/h{stalled}",
                           fontName=FONT, fontSize=7.5, textAnchor="end",
                           fillColor=THRESHOLD_COLOUR if timeline.get("stalled") else colors.black))
    return drawing
