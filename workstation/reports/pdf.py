"""PDF reports (reportlab) of one exam or a whole labour, Qt-free.

Every page carries the patient (MRN, name) and labour in its header, so a loose page is never anonymous,
and the decision-support disclaimer with the page number in its footer. A report holds: the patient
header; the exam's times and sources, with the calibration in force (a manual one set on the exam: its scale, who set
it and when); the key frame (the measured frame) with its overlays (``render_overlays``; drawn in the patient's
shape where the pixels are not square); the measurement table (AoP, HSD and, where the exam's frame has head
biometry, HC, BPD, OFD and GA: the AI's value beside the AI's uncertainty on that value's own frame, the frame named,
then the value in force, by whom, when, calibration; mm only when calibrated, else px with the reason; GA with its
range; values are written by ``workstation.reports.values``), and where the value in force stands on another frame,
what the AI measured on that frame beside that frame's uncertainty; the measurement history; the sonopartogram chart;
the model name, version and hash, with a PLACEHOLDER warning when the model is one. An AI value never sits beside
another frame's uncertainty.

Text is set in fonts embedded in the PDF from ``resources/fonts`` (DejaVu Sans Condensed; Droid Sans Fallback for the
characters DejaVu lacks, CJK among them; ``workstation.reports.fonts``, which the chart uses too), so a name or MRN
prints as written on any viewer; a character neither font has prints as U+FFFD, never as an empty box. Person
names are shown readable (``Family, Given``: ``workstation.records.store.display_name``); the page header cuts a
long name short with an ellipsis so that the MRN, the labour and the print date stay clear (the patient block
gives it whole).
"""
from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

import cv2
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle)

from workstation.inference.manifest import model_label
from workstation.inference.pipeline import describe_aop_construction
from workstation.inference.uncertainty import describe_uncertainty
from workstation.measure import describe_hsd
from workstation.measure.transperineal import frame_aspect
from workstation.paths import replacing
from workstation.records.store import (Exam, FrameClasses, Measurement, Records, current_of, describe_acquired,
                                       display_name, latest_ai_of, now_iso)
from workstation.records.timeline import ai_on_frame, ai_uncertainty_of, labor_timeline
from workstation.sources import AI, describe, source_of, values_note, whose, whose_of
from workstation.reports.chart import timeline_chart
from workstation.reports.fonts import FONT, FONT_BOLD, draw_text, markup, register_fonts, text_width
from workstation.reports.overlays import render_overlays
from workstation.reports.values import (HEAD_ROWS, describe_head_value, hc_label, head_values, shows_head_biometry,
                                        values_of)

DISCLAIMER = ("Decision support only. AoP, HSD, the trend and the stalled flag are computed by software from "
              "ultrasound images and can be wrong; they do not replace clinical examination and judgement. "
              "Values marked AI have not been reviewed by a person.")
REPORT_FRAME_MIN_SIDE = 480  # smaller frames are enlarged before drawing, so labels keep scanner-frame proportions
_MARGIN = 1.6 * cm
_PAGE_W, _PAGE_H = A4
_BODY_W = _PAGE_W - 2 * _MARGIN
_STYLES = getSampleStyleSheet()
_BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontName=FONT)
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=8, leading=10)
_CELL = ParagraphStyle("cell", parent=_BODY, fontSize=7.5, leading=9)
_HEAD = ParagraphStyle("head", parent=_CELL, fontName=FONT_BOLD)
_WARNING = ParagraphStyle("warning", parent=_BODY, fontSize=9, leading=12, textColor=colors.white,
                          backColor=colors.HexColor("#b3261e"), borderPadding=5)
_HEADINGS = {level: ParagraphStyle(f"heading{level}", parent=_STYLES[f"Heading{level}"], fontName=FONT_BOLD)
             for level in (1, 2, 3)}
_FOOTER = ParagraphStyle("footer", fontName=FONT, fontSize=6.5, leading=8, textColor=colors.HexColor("#444444"))
_HEADER_SIZE = 7.5
_TABLE_STYLE = TableStyle([
    ("FONT", (0, 0), (-1, -1), FONT, 7.5),
    ("FONT", (0, 0), (-1, 0), FONT_BOLD, 7.5),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf3")),
    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b0b8c8")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
])
_KEY_VALUE_STYLE = TableStyle([
    ("FONT", (0, 0), (-1, -1), FONT, 8.5),
    ("FONT", (0, 0), (0, -1), FONT_BOLD, 8.5),
    ("FONT", (2, 0), (2, -1), FONT_BOLD, 8.5),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5), ("TOPPADDING", (0, 0), (-1, -1), 1.5),
])


def _shortened(text: str, width: float, size: float) -> str:
    """``text``, cut short with an ellipsis so that it fits ``width`` points."""
    if text_width(text, size) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        middle = (low + high + 1) // 2
        if text_width(text[:middle].rstrip() + "…", size) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"


def _p(text: str, style=_CELL) -> Paragraph:
    return Paragraph(markup(text), style)


_WHEN_FORMAT = "%Y-%m-%d %H:%M"  # how the report writes a time of the records


def _when(iso: str | None) -> str:
    """An ISO time as ``2026-03-01 14:30``, the offset dropped (the audit trail keeps it)."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).strftime(_WHEN_FORMAT)


def _value(m: Measurement | None, quantity: str) -> str:
    """AoP in degrees; HSD in mm when calibrated, else in pixels with the reason mm is missing."""
    if m is None:
        return "-"
    if quantity == "aop":
        why = (m.reasons or {}).get("aop_deg")
        return (f"- ({why})" if why else "-") if m.aop_deg is None else f"{m.aop_deg:.1f} deg"
    return describe_hsd(m.hsd_mm, m.hsd_px, m.reasons.get("hsd_mm"))


def _ai_value(ai: Measurement | None, quantity: str, key: str) -> str:
    """The AI's AoP or HSD, or 'none (why)' where it has none; plain 'none' where nothing says why (an analysis that
    chose no frame gives its reason once, under AoP)."""
    if ai is None or getattr(ai, key) is not None:
        return _value(ai, quantity)
    why = _why_absent(ai, key)
    return f"none ({why})" if why else "none"


def _head_short(m: Measurement) -> str:
    """HC and GA of a history row, short (the measurement table gives the rest and the reasons)."""
    values = head_values(m)
    hc = hc_label(values)
    parts = [hc or ("HC withheld" if values["reasons"].get("hc_px") else "HC -")]
    if values["ga_weeks"] is not None:
        parts.append(f"GA {values['ga_weeks']:.1f} wk")
    return ", ".join(parts)


def _uncertainty(uncertainty: float | None, frame_index: int | None) -> str:
    """The AI's uncertainty on one frame (the frame of the AI value beside it), naming that frame."""
    text = describe_uncertainty(uncertainty)
    return text if uncertainty is None or frame_index is None else f"{text}, frame {frame_index}"


def _whose(m: Measurement, quantity: str) -> str:
    """Whose one quantity of the values in force is ("aop", "hsd", "head"), as the measurement table says it
    (``workstation.sources``: a correction's untouched values stay the AI's or an earlier person's)."""
    return whose(source_of(m, quantity))


def _by(m: Measurement, quantity: str) -> str:
    """Who made one quantity of the values in force: a person's name, or the model's for the AI's."""
    return source_of(m, quantity)["by"] or "-"


def _at(m: Measurement, quantity: str) -> str | None:
    return source_of(m, quantity)["at"]  # none on record: no time, never the row's (a person's) for the AI's


def _point_by(p: dict, quantity: str) -> str:
    """Whose a timeline point's AoP or HSD is (``workstation.sources``; each value its own, a correction of one
    caliper leaves the other value whose it was): "AI (model)", "correction by NAME", "confirmation by NAME"."""
    if p.get(quantity + "_deg" if quantity == "aop" else "hsd_px") is None:
        why = p.get("aop_reason") if quantity == "aop" else None
        return f"- ({why})" if why else "-"
    src = (p.get("sources") or {}).get(quantity)
    if src is None:  # no value in force on record
        return "-"
    return describe(src) + (f" ({src['by']})" if src["kind"] == AI and src.get("by") else "")


def _ai_aop_of_point(p: dict) -> str:
    """A timeline point's AI AoP (on the frame its value in force stands on), the frame named where it is not the
    one the AI chose (``ai_on_record``): "118.2 deg (frame 3)"."""
    if p.get("ai_aop_deg") is None:
        return "-"
    chosen = (p.get("ai_on_record") or {}).get("frame_index")
    frame = p.get("ai_frame_index")
    return f"{p['ai_aop_deg']:.1f} deg" + ("" if frame is None or frame == chosen else f" (frame {frame})")


def _why_absent(m: Measurement | None, key: str) -> str:
    return "" if m is None or getattr(m, key) is not None else m.reasons.get(key, "")


class _ReportDoc:
    """Page furniture (header naming the patient, footer with the disclaimer and page number).

    ``header`` is (MRN, name, labour) parts: the name is cut short to keep the header on one line clear of the
    print date."""

    def __init__(self, out: Path, title: str, header: tuple[str, str, str]):
        self.out, self.title, self.header = out, title, header

    def header_line(self, printed: str) -> str:
        mrn, name, labor = self.header
        fixed = f"{mrn}  |    |  {labor}"
        room = _BODY_W - text_width(printed, _HEADER_SIZE) - 0.6 * cm - text_width(fixed, _HEADER_SIZE)
        line = f"{mrn}  |  {_shortened(name, max(room, 0.0), _HEADER_SIZE)}  |  {labor}"
        return _shortened(line, _BODY_W - text_width(printed, _HEADER_SIZE) - 0.6 * cm, _HEADER_SIZE)

    def _decorate(self, canvas, doc) -> None:
        canvas.saveState()
        canvas.setFillColor(colors.HexColor("#444444"))
        printed = f"printed {_when(now_iso())}"
        draw_text(canvas, _MARGIN, _PAGE_H - _MARGIN + 0.1 * cm, self.header_line(printed), _HEADER_SIZE)
        canvas.setFont(FONT, _HEADER_SIZE)
        canvas.drawRightString(_PAGE_W - _MARGIN, _PAGE_H - _MARGIN + 0.1 * cm, printed)
        footer = Paragraph(escape(DISCLAIMER), _FOOTER)
        _, h = footer.wrap(_BODY_W - 1.5 * cm, _MARGIN)
        footer.drawOn(canvas, _MARGIN, _MARGIN - h + 0.2 * cm)
        canvas.drawRightString(_PAGE_W - _MARGIN, _MARGIN - 0.3 * cm, f"page {doc.page}")
        canvas.restoreState()

    def build(self, story: list) -> None:
        register_fonts()
        with replacing(self.out) as partial:  # an earlier report of that name stays whole if this one fails
            doc = SimpleDocTemplate(str(partial), pagesize=A4, leftMargin=_MARGIN, rightMargin=_MARGIN,
                                    topMargin=_MARGIN + 0.4 * cm, bottomMargin=_MARGIN + 0.6 * cm, title=self.title,
                                    author="workstation", subject="Intrapartum ultrasound (decision support)",
                                    initialFontName=FONT)  # else each page names Helvetica, which is not embedded
            doc.build(story, onFirstPage=self._decorate, onLaterPages=self._decorate)


class _ReportBuilder:
    """The flowables of a report, from the records; each exam's measurement rows and plane classes are read once for
    the whole report (its timeline, key frame, tables and history)."""

    def __init__(self, records: Records):
        self.records = records
        self._rows: dict[int, list[Measurement]] = {}
        self._classes: dict[int, FrameClasses] = {}

    def rows(self, exam_id: int) -> list[Measurement]:
        """The exam's measurement rows, oldest first (read at their first use in this report)."""
        if exam_id not in self._rows:
            self._rows[exam_id] = self.records.measurements(exam_id)
        return self._rows[exam_id]

    def shows_head(self, exam: Exam, rows) -> bool:
        """``shows_head_biometry`` of some of the exam's rows, on its plane classes read once for this report."""
        if exam.id not in self._classes:
            self._classes[exam.id] = self.records.frame_classes(exam.id)
        return shows_head_biometry(self.records, rows, self._classes[exam.id])

    def patient_block(self, labor_id: int, timeline: dict) -> Table:
        labor = self.records.labor(labor_id)
        patient = self.records.patient(labor.patient_id)
        start = "-" if labor.start is None else describe_acquired(labor.start)
        start_how = "set by a person" if labor.start_source == "explicit" else "time of the first exam"
        rows = [["MRN", patient.mrn, "Labour", f"{labor.id}, started {start} ({start_how})"],
                ["Name", display_name(patient.name) or "-", "Exams", str(len(timeline["points"]))],
                ["Birth date", patient.birth_date or "-", "Notes", labor.notes or "-"]]
        table = Table([[_p(c, _SMALL) if i % 2 else c for i, c in enumerate(r)] for r in rows],
                      colWidths=[2.2 * cm, 6.0 * cm, 1.6 * cm, _BODY_W - 9.8 * cm])
        table.setStyle(_KEY_VALUE_STYLE)
        return table

    def exam_block(self, exam: Exam) -> Table:
        acquired_how = {"user": "entered by a person", "file_mtime": "file modification time (no DICOM time)"}
        rows = [["Acquired", f"{describe_acquired(exam.acquired, seconds=True)} ("
                             f"{acquired_how.get(exam.acquired_source, 'DICOM ' + exam.acquired_source)})"],
                ["Imported", _when(exam.imported_at)],
                ["Source file", f"{exam.original_path} (sha256 {exam.file_sha256[:16]}...)"],
                ["Cine", f"{exam.n_frames} frame{'s' if exam.n_frames != 1 else ''}, "
                         f"{exam.frame_shape[1]} x {exam.frame_shape[0]} px; "
                         f"calibration: {self.calibration_in_force(exam)}"]]
        if exam.dicom_patient_id and exam.dicom_patient_id != self.records.patient_of_exam(exam).mrn:
            rows.append(["Patient ID", f"the file says {exam.dicom_patient_id!r}; filed under this MRN by a person"])
        table = Table([[r[0], _p(r[1], _SMALL)] for r in rows], colWidths=[2.2 * cm, _BODY_W - 2.2 * cm])
        table.setStyle(_KEY_VALUE_STYLE)
        return table

    def calibration_in_force(self, exam: Exam) -> str:
        """The calibration the exam's values are measured in: a manual one set on the exam (its scale, how it was
        taken, who set it when), the file's own again after one (who went back to it, when), else the file's."""
        row = self.records.current_calibration(exam.id)
        if row is None:
            return f"{exam.calibration_source} (the file's)"
        if row.is_manual:
            return f"{row.describe(_WHEN_FORMAT)}; the file's own: {exam.calibration_source}"
        return (f"{exam.calibration_source} (the file's; back to it from a manual calibration, by {row.by} at "
                f"{_when(row.created_at)})")

    def key_frame(self, exam: Exam, width: float) -> list:
        """The measured frame with its overlays, or a line saying why there is none. A frame whose pixels are not
        square (in the calibration in force) is drawn in the patient's shape, as its AoP and HSD are measured."""
        from workstation.records.calibration import load_exam

        rows = self.rows(exam.id)
        current, ai = current_of(rows), latest_ai_of(rows)
        if current is None or current.frame_index is None:
            why = "not analysed" if current is None else current.reasons.get("aop_deg", "no frame was measured")
            return [_p(f"No key frame: {why}.", _SMALL)]
        cine = load_exam(self.records, exam)
        try:
            frame = cine.frame(current.frame_index)
            aspect = frame_aspect(cine.calibration, frame.shape[:2])  # as the values on record were measured
        finally:
            cine.close()
        head = self.shows_head(exam, [current, ai])
        image = render_overlays(frame, current.geometry, values=values_of(current), min_side=REPORT_FRAME_MIN_SIDE,
                                whose=whose_of(current), aspect=aspect, head=head)
        ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        rows, cols = image.shape[:2]
        picture = Image(io.BytesIO(png.tobytes()), width=width, height=width * rows / cols)
        who = "AI" if current.kind == "ai" else f"{current.kind} by {current.by}"
        shape = ("" if aspect == 1.0 else f" Drawn in the patient's shape: its pixels are {aspect:.3f} times as tall "
                 "as they are wide (the calibration), and the AoP and HSD are measured so.")
        caption = (f"Frame {current.frame_index}" + ("" if current.time_s is None else f" ({current.time_s:.2f} s)")
                   + f", measurement of {who}. Amber: pubic symphysis axis (red dot: inferior end); blue: tangent "
                   "to the fetal skull and AoP; magenta: HSD; green: head ellipse"
                   + (" (HC, BPD, OFD, GA)" if head else "") + "." + shape + self._construction_note(ai, current))
        return [picture, _p(caption, _SMALL)]

    def _construction_note(self, ai: Measurement | None, current: Measurement) -> str:
        """Which segmentation the AI built the drawn AoP lines on (``workstation.inference.pipeline``), when the lines
        drawn are still the AI's (``ai``: the exam's latest AI row)."""
        if ai is None or ai.analysis_id is None or ai.geometry != current.geometry or current.aop_deg is None:
            return ""
        frame = self.records.frame_result(ai.analysis_id, ai.frame_index) or {}
        text = describe_aop_construction(frame.get("aop_construction"), degree=" deg")
        return f" {text}" if text else ""

    def measurements(self, exam: Exam) -> list:
        """The measurement table, and below it, where the value in force stands on another frame than the AI's value
        in the table, what the AI measured on that frame (:meth:`other_frame_note`)."""
        rows = self.rows(exam.id)
        note = self.other_frame_note(exam, rows)
        return [self.measurement_table(exam, rows)] + ([Spacer(1, 2), _p(note, _SMALL)] if note else [])

    def measurement_table(self, exam: Exam, rows: list[Measurement]) -> Table:
        """AoP and HSD, and where the exam's frame has head biometry (AI or a person's) HC, BPD, OFD and GA: the AI's
        value on record with the AI's uncertainty on that value's own frame beside it (both name the frame), then the
        value in force (its frame named where it is another), whose it is and when, the calibration. An AI value never
        sits beside another frame's uncertainty (a person may have measured a frame other than the one the AI chose)."""
        ai, current = latest_ai_of(rows), current_of(rows)
        ai_frame = "" if ai is None or ai.frame_index is None else f" (frame {ai.frame_index})"
        current_frame = ("" if current is None or current.frame_index is None or ai is None
                         or current.frame_index == ai.frame_index else f" (frame {current.frame_index})")
        header = ["", f"AI value{ai_frame}", "AI uncertainty", f"Current value{current_frame}", "Source", "By", "When",
                  "Calibration"]
        uncertainty = _uncertainty(ai_uncertainty_of(self.records, ai, rows), None if ai is None else ai.frame_index)
        table_rows = [[_p(h, _HEAD) for h in header]]
        cells = [(label, _ai_value(ai, quantity, key), _value(current, quantity), quantity)
                 for label, quantity, key in (("AoP", "aop", "aop_deg"), ("HSD", "hsd", "hsd_px"))]
        if self.shows_head(exam, [ai, current]):
            cells += [(name, "-" if ai is None else describe_head_value(ai, name),
                       "-" if current is None else describe_head_value(current, name), "head")
                      for name, _ in HEAD_ROWS]
        for label, ai_text, current_text, quantity in cells:
            table_rows.append([label, _p(ai_text), _p(uncertainty), _p(current_text),
                               _p("-" if current is None else _whose(current, quantity)),
                               _p("-" if current is None else _by(current, quantity)),
                               _p(_when(None if current is None else _at(current, quantity))),
                               _p((current.calibration_source if current else None) or exam.calibration_source)])
        widths = [1.0, 2.9, 2.6, 2.9, 1.5, 2.2, 2.2]
        table = Table(table_rows, colWidths=[w * cm for w in widths] + [_BODY_W - sum(widths) * cm], repeatRows=1)
        table.setStyle(_TABLE_STYLE)
        return table

    def other_frame_note(self, exam: Exam, rows: list[Measurement]) -> str:
        """Where the value in force stands on another frame than the AI's value on record: the AI's AoP on that frame
        beside the AI's uncertainty there (``workstation.records.timeline.ai_on_frame``, as the timeline pairs them),
        or that the AI did not measure it; empty otherwise."""
        ai, current = latest_ai_of(rows), current_of(rows)
        if current is None or current.frame_index is None or (ai is not None and ai.frame_index == current.frame_index):
            return ""
        frame = current.frame_index
        there = ai_on_frame(self.records, exam.id, frame, rows)
        if current.uncertainty is not None:
            there["uncertainty"] = current.uncertainty  # kept with the row from the AI's analysis of its frame
        if there["aop_deg"] is None and there["uncertainty"] is None:
            return f"The value in force was measured on frame {frame}, which the AI did not measure."
        aop = "the AI gave no AoP" if there["aop_deg"] is None else f"the AI's AoP was {there['aop_deg']:.1f} deg"
        uncertainty = ("it has no uncertainty on record there" if there["uncertainty"] is None
                       else f"its uncertainty there is {describe_uncertainty(there['uncertainty'])}")
        return f"On frame {frame}, where the value in force was measured, {aop}; {uncertainty}."

    def history_table(self, exam: Exam) -> Table:
        measurements = self.rows(exam.id)
        head = self.shows_head(exam, measurements)
        rows = [["#", "Kind", "By", "When", "Frame", "AoP", "HSD", *(["HC / GA"] if head else []), "Acts on", "Note"]]
        for m in measurements:
            rows.append([str(m.id), m.kind, _p(m.by), _p(_when(m.created_at)),
                         "-" if m.frame_index is None else str(m.frame_index), _p(_value(m, "aop")),
                         _p(_value(m, "hsd")), *([_p(_head_short(m))] if head else []),
                         "-" if m.supersedes_id is None else f"#{m.supersedes_id}",
                         # Whose each value is where a correction moved some calipers only (as ``workstation history``).
                         _p("; ".join(t for t in (values_note(m, head), m.note) if t))])
        widths = ([0.8, 2.0, 2.4, 2.4, 1.1, 1.8, 3.2, 1.3] if not head
                  else [0.7, 1.9, 2.2, 2.0, 1.0, 1.6, 2.6, 2.3, 1.1])
        table = Table(rows, colWidths=[w * cm for w in widths] + [_BODY_W - sum(widths) * cm], repeatRows=1)
        table.setStyle(_TABLE_STYLE)
        return table

    def points_table(self, timeline: dict) -> Table:
        """One row per exam: the value in force, and the AI's AoP on the frame it stands on beside the AI's
        uncertainty there, naming the frame; the AI AoP names it too where it is not the frame the AI chose."""
        rows = [["Exam", "Acquired", "Hours", "AoP", "AoP by", "HSD", "HSD by", "AI AoP", "AI uncertainty"]]
        for p in timeline["points"]:
            rows.append([str(p["exam_id"]), _p(describe_acquired(datetime.fromisoformat(p["acquired"]))),
                         "-" if p["hours"] is None else f"{p['hours']:.2f}",
                         "-" if p["aop_deg"] is None else f"{p['aop_deg']:.1f} deg", _p(_point_by(p, "aop")),
                         _p(describe_hsd(p["hsd_mm"], p["hsd_px"], p.get("hsd_mm_reason"))), _p(_point_by(p, "hsd")),
                         _p(_ai_aop_of_point(p)),
                         _p(_uncertainty(p.get("ai_uncertainty"), p.get("ai_uncertainty_frame_index")))])
        widths = [0.9, 2.0, 1.0, 1.5, 2.2, 3.0, 2.2, 1.8]
        table = Table(rows, colWidths=[w * cm for w in widths] + [_BODY_W - sum(widths) * cm], repeatRows=1)
        table.setStyle(_TABLE_STYLE)
        return table

    @staticmethod
    def timeline_summary(timeline: dict) -> Paragraph:
        """The trend and the stall judgement; what the judgement left out or rests on that needs review (its
        ``caveats``: an exam without an AoP, an unreviewed AI value with HIGH uncertainty) in bold after it."""
        trend = timeline["trend_deg_per_h"]
        check = timeline["stall_check"]
        caveats = check.get("caveats") or []
        text = (f"Trend: {'-' if trend is None else f'{trend:+.1f} deg/h'} (least-squares over the exams). "
                f"Stalled: {'YES' if timeline['stalled'] else 'no'} ({check.get('finding', check['reason'])}; rule: a "
                f"rise of at least {timeline['stall_rule']['min_rise_deg']:g} deg per "
                f"{timeline['stall_rule']['span_h']:g} h, a configurable product default, not a guideline value). ")
        caution = f"Before relying on it: {'; '.join(caveats)}. " if caveats else ""
        after = (f"An AoP of {timeline['aop_threshold_deg']:g} deg or more was associated with spontaneous vaginal "
                 "delivery (Kalache et al. 2009).")
        return Paragraph(markup(text) + (f"<b>{markup(caution)}</b>" if caution else "") + markup(after), _SMALL)

    def model_block(self, exam_ids: list[int]) -> list:
        analyses = [a for exam_id in exam_ids for a in self.records.analyses(exam_id)]
        models = sorted({(a.model_name, a.model_version, a.model_sha256, a.model_placeholder) for a in analyses})
        if not models:
            return [_p("Model: no AI analysis stored for these exams.", _SMALL)]
        out = [_p("Model: " + "; ".join(f"{model_label(name, version)} (sha256 {sha[:12]}...)"
                                        for name, version, sha, _ in models), _SMALL)]
        placeholders = [model_label(name, version) for name, version, _, placeholder in models if placeholder]
        if placeholders:
            out += [Spacer(1, 4), _p(f"PLACEHOLDER MODEL ({', '.join(placeholders)}): its values are not clinically "
                                     "meaningful and must not be used for care.", _WARNING), Spacer(1, 4)]
        return out


def _heading(text: str, level: int = 2) -> Paragraph:
    return Paragraph(markup(text), _HEADINGS[level])


def _page_header(records: Records, labor_id: int) -> tuple[str, str, str]:
    labor = records.labor(labor_id)
    patient = records.patient(labor.patient_id)
    return f"MRN {patient.mrn}", display_name(patient.name) or "-", f"labour {labor.id}"


def write_exam_report(records: Records, exam_id: int, out: str | Path) -> Path:
    """A PDF report of one exam, with the sonopartogram of its labour (this exam ringed)."""
    out = Path(out)
    exam = records.exam(exam_id)
    build = _ReportBuilder(records)
    timeline = labor_timeline(records, exam.labor_id, measurements=build.rows)
    story = [_heading(f"Intrapartum ultrasound: exam {exam.id}", 1), build.patient_block(exam.labor_id, timeline),
             Spacer(1, 6), build.exam_block(exam), Spacer(1, 4), *build.model_block([exam.id]),
             _heading("Key frame"), *build.key_frame(exam, 12 * cm), _heading("Measurements"),
             *build.measurements(exam), Spacer(1, 8),
             KeepTogether([_heading("Measurement history (nothing is overwritten)", 3), build.history_table(exam)]),
             KeepTogether([_heading("Labour timeline (this exam ringed)"),
                           timeline_chart(timeline, width=_BODY_W, highlight_exam_id=exam.id),
                           build.timeline_summary(timeline)]),
             Spacer(1, 8), _p(DISCLAIMER, _SMALL)]
    _ReportDoc(out, f"Exam {exam.id} report", _page_header(records, exam.labor_id)).build(story)
    return out


def write_labor_report(records: Records, labor_id: int, out: str | Path) -> Path:
    """A PDF report of a labour: the sonopartogram, then each exam's key frame and measurements."""
    out = Path(out)
    build = _ReportBuilder(records)
    timeline = labor_timeline(records, labor_id, measurements=build.rows)
    exams = records.exams(labor_id)
    story = [_heading(f"Intrapartum ultrasound: labour {labor_id}", 1), build.patient_block(labor_id, timeline),
             Spacer(1, 4), *build.model_block([e.id for e in exams]),
             _heading("Sonopartogram"), timeline_chart(timeline, width=_BODY_W), build.timeline_summary(timeline),
             Spacer(1, 6), build.points_table(timeline)]
    for exam in exams:
        story.append(KeepTogether([_heading(f"Exam {exam.id}: {describe_acquired(exam.acquired)}"),
                                   build.exam_block(exam),
                                   Spacer(1, 4), *build.key_frame(exam, 7.5 * cm), Spacer(1, 4),
                                   *build.measurements(exam)]))
    story += [Spacer(1, 8), _p(DISCLAIMER, _SMALL)]
    _ReportDoc(out, f"Labour {labor_id} report", _page_header(records, labor_id)).build(story)
    return out
