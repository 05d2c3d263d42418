"""The measurement panel: the frame's AoP, HSD, HC, BPD, OFD and GA, the AI value beside the corrected one, with
units, the calibration they rest on, the reason for every value withheld, who corrected and who accepted, and the
frame's uncertainty. Reset to AI and Accept act on the frame on screen.
"""
from __future__ import annotations

import re
from html import escape
from datetime import datetime

from PySide6 import QtCore, QtGui, QtWidgets

from workstation.cine_review import FrameMeasurementState, quantities_shown
from workstation.sources import AI, CONFIRMATION, QUANTITIES, QUANTITY_NAMES
from workstation.inference.manifest import model_label
from workstation.inference.pipeline import describe_aop_construction
from workstation.inference.planes import describe_plane
from workstation.inference.uncertainty import uncertainty_level

CALIBRATION_NAMES = {
    "dicom_regions": "DICOM ultrasound regions",
    "pixel_spacing": "DICOM Pixel Spacing",
    "imager_pixel_spacing": "DICOM Imager Pixel Spacing",
    "manual": "manual",
    "none": "none: pixels only",
}
# Rows: name, the value keys it prefers in order (mm before px), and how each is written.
# The quantity (``workstation.sources``) each row's value belongs to.
ROW_QUANTITY = {"AoP": "aop", "HSD": "hsd", "HC": "head", "BPD": "head", "OFD": "head", "GA": "head"}
ROWS = (
    ("AoP", (("aop_deg", "{:.1f}°"),)),
    ("HSD", (("hsd_mm", "{:.1f} mm"), ("hsd_px", "{:.0f} px"))),
    ("HC", (("hc_mm", "{:.1f} mm"), ("hc_px", "{:.0f} px"))),
    ("BPD", (("bpd_mm", "{:.1f} mm"), ("bpd_px", "{:.0f} px"))),
    ("OFD", (("ofd_mm", "{:.1f} mm"), ("ofd_px", "{:.0f} px"))),
    ("GA", (("ga_weeks", "{:.1f} wk ±2"),)),
)
NO_VALUE = "—"
REASON_KEYS = {"AoP": "aop_deg", "HSD": "hsd_px", "HC": "hc_px", "BPD": "bpd_px", "OFD": "ofd_px", "GA": "ga_weeks"}
MM_KEYS = {"HSD": "hsd_mm", "HC": "hc_mm", "BPD": "bpd_mm", "OFD": "ofd_mm"}


def format_value(values: dict | None, row: str) -> tuple[str, str]:
    """The text of one row's value and, when it is absent or only in pixels, why."""
    if not values:
        return NO_VALUE, ""
    formats = dict(ROWS)[row]
    reasons = values.get("reasons") or {}
    for key, fmt in formats:
        if values.get(key) is not None:
            mm_key = MM_KEYS.get(row)
            why = "" if key == mm_key or mm_key is None else reasons.get(mm_key, "")
            return fmt.format(values[key]), why
    return NO_VALUE, reasons.get(REASON_KEYS[row], "not measured")


def when_text(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def construction_text(ai: dict | None) -> str:
    """Which segmentation the AI's AoP lines were drawn on, and why; nothing once the AoP is gone."""
    if (ai or {}).get("aop_deg") is None:
        return ""
    return describe_aop_construction((ai or {}).get("aop_construction"))


def calibration_text(values: dict | None, fallback_source: str) -> str:
    """The calibration line's text: the source's name, then the scale's detail. The core writes each scale it used
    as "source: detail" (``Measurements.calibration_detail``); the source already named is not repeated, another is
    named as the panel names it ("manual (drawn on the depth scale ...)", not "manual (manual: drawn ...)")."""
    calibration = (values or {}).get("calibration") or {}
    source = calibration.get("source") or fallback_source
    text = CALIBRATION_NAMES.get(source, source)
    detail = calibration.get("detail")
    if detail:
        parts = []
        for part in _SCALE_PARTS.split(detail):
            name, sep, rest = part.partition(": ")
            scale_source = _SCALE_SOURCES.get(name) if sep else _SCALE_SOURCES.get(part)
            if scale_source is None:
                parts.append(part)
            elif scale_source != source:
                parts.append(f"{CALIBRATION_NAMES.get(scale_source, scale_source)}: {rest}" if sep
                             else CALIBRATION_NAMES.get(scale_source, scale_source))
            elif rest:
                parts.append(rest)
        if parts:
            text += f" ({'; '.join(parts)})"
    return text


# A scale's own source name (``workstation.calibration.Scale.source``) and the calibration source it belongs to.
_SCALE_SOURCES = {"manual": "manual", "dicom_region": "dicom_regions", "dicom_regions": "dicom_regions",
                  "pixel_spacing": "pixel_spacing", "imager_pixel_spacing": "imager_pixel_spacing"}
# Where one scale's "source: detail" ends and the next begins ("; " before a source's name).
_SCALE_PARTS = re.compile("; (?=(?:" + "|".join(map(re.escape, _SCALE_SOURCES)) + ")(?:: |;|$))")


ACCEPT_TIP = "Confirm this frame's values under your name from Settings (undoable)"
CORRECTED, NOT_ON_RECORD = "Corrected", "Not on record"  # the corrected column's title
NOT_ON_RECORD_STYLE = "background: #5a4a12; color: #ffe9a8; border: 1px solid #c9a227; padding: 4px;"


class MeasurementPanel(QtWidgets.QWidget):
    resetRequested = QtCore.Signal()
    acceptRequested = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        self.model_label = QtWidgets.QLabel()
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)
        self.frame_label = QtWidgets.QLabel("No frame analysed")
        self.frame_label.setWordWrap(True)
        layout.addWidget(self.frame_label)
        # Shown where the frame's review is not the exam's value on record (another frame's review was saved after
        # it, or a Reset to AI or a calibration withdrew that one): what the records hold instead.
        self.record_label = QtWidgets.QLabel()
        self.record_label.setObjectName("notOnRecord")
        self.record_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.record_label.setWordWrap(True)
        self.record_label.setStyleSheet(NOT_ON_RECORD_STYLE)
        self.record_label.hide()
        layout.addWidget(self.record_label)
        self.grid = grid = QtWidgets.QGridLayout()
        bold = QtGui.QFont()
        bold.setBold(True)
        for column, title in enumerate(("", "AI", CORRECTED)):
            header = QtWidgets.QLabel(title)
            header.setFont(bold)
            grid.addWidget(header, 0, column)
        self.corrected_header = header
        self.ai_labels: dict[str, QtWidgets.QLabel] = {}
        self.corrected_labels: dict[str, QtWidgets.QLabel] = {}
        for row, (name, _) in enumerate(ROWS, start=1):
            grid.addWidget(QtWidgets.QLabel(name), row, 0)
            for column, store in ((1, self.ai_labels), (2, self.corrected_labels)):
                label = QtWidgets.QLabel("—")
                label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
                store[name] = label
                grid.addWidget(label, row, column)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        layout.addLayout(grid)
        # the lines under the table, top to bottom
        (self.calibration_label, self.uncertainty_label, self.construction_label, self.provenance_label,
         self.reasons_label) = self._text_lines = [QtWidgets.QLabel() for _ in range(5)]
        for label in self._text_lines:
            label.setWordWrap(True)
            layout.addWidget(label)
        self.reasons_label.setStyleSheet("color: #bbbbbb;")
        buttons = QtWidgets.QHBoxLayout()
        self.reset_button = QtWidgets.QPushButton("Reset to AI")
        self.reset_button.setToolTip("Discard the correction of this frame (undoable)")
        self.accept_button = QtWidgets.QPushButton("Accept")
        self.accept_button.setToolTip(ACCEPT_TIP)
        for button in (self.reset_button, self.accept_button):
            button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # Space stays play/pause
            buttons.addWidget(button)
        self.reset_button.clicked.connect(self.resetRequested)
        self.accept_button.clicked.connect(self.acceptRequested)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self.setMinimumWidth(300)
        self.set_model(None)
        self.show_state(None)

    def set_model(self, model: dict | None) -> None:
        if not model:
            self.model_label.setText("Model: not loaded yet")
            self.model_label.setStyleSheet("")
            return
        text = f"Model: {model_label(model.get('name', '?'), model.get('version', ''))} on {model.get('device', '?')}"
        head = model.get("head_biometry_model")
        if head:  # a second model outlines the head on axial head planes: say which
            text += f"<br>Head outline on axial head planes: {model_label(head.get('name', '?'), head.get('version', ''))}"
        if model.get("placeholder"):
            text += ("<br><b>PLACEHOLDER MODEL</b>: shipped so the pipeline runs end to end; its values are not "
                     "clinically meaningful.")
            self.model_label.setStyleSheet("background: #5a1a1a; color: #ffd0d0; border: 1px solid #c04040; "
                                           "padding: 4px;")
        else:
            self.model_label.setStyleSheet("")
        self.model_label.setText(text)

    def show_state(self, state: FrameMeasurementState | None, calibration_source: str = "none",
                   preview: dict | None = None, message: str | None = None, preview_geometry: dict | None = None,
                   not_on_record: str | None = None) -> None:
        """One frame's values; ``preview``: values of a drag in progress, shown as the corrected column
        (``preview_geometry``: the geometry dragged to, which says whose each of them would be). In the corrected
        column a value the person did not change says whose it still is ("(AI)", or an earlier person's name).
        ``not_on_record``: why the frame's review is not the exam's value on record (what the records hold instead),
        said above the table, in the corrected column's title and beside who reviewed it."""
        superseded = state is not None and preview is None and not_on_record is not None
        self.record_label.setVisible(superseded)
        self.record_label.setText(f"<b>{escape(not_on_record, quote=False)}</b> Accept this frame"
                                  f"{' again' if state.confirmed else ''} (or correct it again) to make its values the "
                                  "exam's." if superseded else "")
        self.corrected_header.setText(NOT_ON_RECORD if superseded else CORRECTED)
        if state is None:
            self.frame_label.setText(message or "No analysed frame on screen")
            for store in (self.ai_labels, self.corrected_labels):
                for label in store.values():
                    label.setText("—")
                    label.setToolTip("")
            for label in self._text_lines:
                label.setText("")
            self.reset_button.setEnabled(False)
            self.accept_button.setEnabled(False)
            self._fit_height()
            return
        corrected = preview if preview is not None else state.corrected
        current = corrected if corrected is not None else state.ai
        self.frame_label.setText(f"<b>Frame {state.frame_index}</b>: "
                                 f"{describe_plane(state.frame_class)}")
        reasons: dict[str, list[str]] = {}  # reason -> the rows it holds back, said once
        sources = (state.sources() if preview is None
                   else state.edit_sources(preview_geometry or preview.get("geometry") or {}))
        for name, _ in ROWS:
            text, why = format_value(state.ai, name)
            self.ai_labels[name].setText(text)
            self.ai_labels[name].setToolTip(why)
            if corrected is None:
                self.corrected_labels[name].setText("")
                self.corrected_labels[name].setToolTip("")
            else:
                ctext, cwhy = format_value(corrected, name)
                cell = f"<b>{ctext}</b>" if ctext != text else ctext
                src = sources[ROW_QUANTITY[name]]
                if ctext != "—" and src["kind"] != CONFIRMATION:
                    whose = None
                    if src["kind"] == AI:
                        whose = "AI"  # untouched by the correction: still the AI's value
                    elif preview is None and src["by"] != state.corrected_by:
                        whose = escape(str(src["by"]))  # an earlier person's, untouched
                    if state.confirmed and preview is None:  # its acceptance withdrawn by a calibration
                        whose = f"{whose or 'corrected'}, not accepted"
                    if whose:
                        cell += f" ({whose})"
                self.corrected_labels[name].setText(cell)
                self.corrected_labels[name].setToolTip(cwhy)
            _, current_why = format_value(current, name)
            if current_why:
                reasons.setdefault(current_why, []).append(name)
        self.calibration_label.setText(f"Calibration: {calibration_text(current, calibration_source)}")
        level = uncertainty_level(state.uncertainty)
        meaning = ("the model's chance that this frame's AoP is missing or more than 10° off"
                   if state.uncertainty_method == "calibrated"
                   else "0 confident, 1 do not trust")
        self.uncertainty_label.setText(f"Uncertainty: {state.uncertainty:.2f} ({level}; {meaning})")
        self.construction_label.setText(construction_text(state.ai))
        lines = []
        if preview is not None:
            lines.append("Moving a caliper: values recomputed live; drop to record the correction.")
        elif state.corrected is not None:
            lines.append(f"Corrected by <b>{state.corrected_by}</b> at {when_text(state.corrected_at)}"
                         + (" (not on record)" if superseded and not state.confirmed else ""))
        else:
            lines.append("AI values, not corrected")
        if state.confirmed:
            lines.append(f"Accepted by <b>{state.confirmed_by}</b> at {when_text(state.confirmed_at)}"
                         + (" (not on record)" if superseded else "") + _withdrawn_in_part(state))
        else:
            lines.append("Not accepted yet")
        self.provenance_label.setText("<br>".join(lines))
        self.reasons_label.setText("<br>".join(f"{', '.join(names)}: {why}" for why, names in reasons.items()))
        self.reset_button.setEnabled(state.corrected is not None or state.confirmed)
        can_accept = state.can_accept  # the records' rule: a confirmation needs a measured value
        # An acceptance another frame's review superseded can be given again: it makes this frame's values the exam's.
        self.accept_button.setEnabled((not state.confirmed or superseded or bool(state.unaccepted())) and can_accept)
        self.accept_button.setToolTip(ACCEPT_TIP if can_accept else
                                      "Nothing to accept: this frame has no measured value (AoP, HSD or head "
                                      "biometry); correct it or choose a frame with a value")
        self._fit_height()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        """At least as tall as the wrapped lines need at this width: the scroll area around the panel then scrolls
        instead of squeezing a long line (the not-on-record note, a reason) to fewer lines than its text takes."""
        needed = self.layout().totalHeightForWidth(self.width())
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)

    def value_text(self, column: str, row: str) -> str:
        """The plain text of one cell (tests and accessibility)."""
        return plain_text((self.ai_labels if column == "ai" else self.corrected_labels)[row])


def _withdrawn_in_part(state: FrameMeasurementState) -> str:
    """Where a calibration withdrew an acceptance in part (``FrameMeasurementState.unaccepted``): which values it still
    holds and which not, e.g. ": the AoP only; its acceptance of the HSD withdrawn (a calibration changed it), Accept
    to confirm it"; empty otherwise."""
    unaccepted = state.unaccepted()
    if not unaccepted:
        return ""
    held = [QUANTITY_NAMES[q] for q in QUANTITIES if q not in unaccepted and state.sources()[q]["kind"] == CONFIRMATION
            and q in quantities_shown(state.current())]
    names = " and the ".join(QUANTITY_NAMES[q] for q in unaccepted)
    return (f": the {' and the '.join(held)} only; its acceptance of the {names} withdrawn (a calibration changed "
            f"{'them' if len(unaccepted) > 1 else 'it'}), Accept to confirm {'them' if len(unaccepted) > 1 else 'it'}")


def plain_text(label: QtWidgets.QLabel) -> str:
    """A label's text without its markup."""
    return QtGui.QTextDocumentFragment.fromHtml(label.text()).toPlainText()
