"""The workstation's main window: open a scan, watch it play, see and correct the AI's measurements.

Layout: the cine viewer in the centre with the frame slider, the per-frame strip and the playback controls under
it; the measurement panel in a dock on the right; the status bar with the analysis progress and Cancel. Other
panels (patient records, the labour timeline) come in through ``add_side_dock`` and talk to the window through
``open_file`` and the signals ``measurementEdited`` and ``frameAccepted``.

Everything slow runs in ``workers``; the UI thread only shows frames, draws overlays and records edits. A result
is shown as soon as it arrives; results of a cine that was closed are dropped.
"""
from __future__ import annotations

import gc
import logging
import math
from pathlib import Path
from typing import Callable

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from workstation.calibration import Calibration, describe_mm_per_px
from workstation.cine_review import (NO_VALUE_TO_CONFIRM, CineAnalysis, FrameMeasurementState, adopts_withheld_ai_ellipse,
                                     ps_moved, recompute_json)
from workstation.cine_review import changes_no_value, lost_value_problem
from workstation.gui.calibration_tool import CalibrationBar, CalibrationLine
from workstation.gui.calipers import Calipers
from workstation.gui.editing import ACCEPT, CALIBRATION, CORRECTION, NOT_SAVED, RESET, UNDO, ReviewCommand
from workstation.gui.overlays import OverlayLayer
from workstation.gui.panel import CALIBRATION_NAMES, MeasurementPanel, when_text
from workstation.gui.settings import OVERLAYS, Settings, SettingsDialog
from workstation.gui.strip import FrameStrip
from workstation.gui.viewer import SPEEDS, FrameView, Playback
from workstation.gui.workers import AnalysedFrame, AnalysisJob, LoadCineJob, ModelCache, WorkerPool
from workstation.io.images import IMAGE_EXTENSIONS
from workstation.io.video import VIDEO_EXTENSIONS
from workstation.measure.transperineal import frame_aspect
from workstation.paths import data_dir
from workstation.records.calibration import with_manual_on_record
from workstation.records.review import record_state
from workstation.sources import AI
from workstation.reports.overlays import aop_label, hsd_label
from workstation.reports.values import describe_head, hc_label

log = logging.getLogger(__name__)

FILE_FILTER = ("Scans (*.dcm *.dicom *.dic *.ima {video} {images});;DICOM (*.dcm *.dicom *.dic *.ima);;"
               "Video ({video});;Images ({images});;All files (*)").format(
    video=" ".join(f"*{e}" for e in sorted(VIDEO_EXTENSIONS)), images=" ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS)))

# A stored value's short name in messages about the records (the banner).
VALUE_NAMES = {"aop_deg": "AoP", "hsd_px": "HSD (px)", "hsd_mm": "HSD", "hc_mm": "HC", "bpd_mm": "BPD",
               "ofd_mm": "OFD", "ga_weeks": "GA"}


NOT_ON_RECORD = "not on record"  # follows a person's value on the image where the frame's review is not the exam's


def whose_values(state: FrameMeasurementState, on_record: bool = True) -> dict:
    """Whose each value on screen is, as each label on the image says it and the report's key frame does, per
    quantity (``workstation.sources``): "confirmed" (a person accepted them, the AI's or a correction), "corrected"
    (a person moved its calipers, not accepted), "AI" (the AI's, also in a correction that moved other calipers).
    ``on_record`` False: the frame's review is not the exam's value on record (``MainWindow.review_not_on_record``), and
    a person's value says so ("corrected, not on record")."""
    whose = state.whose()
    if on_record:
        return whose
    return {q: w if w == "AI" else f"{w}, {NOT_ON_RECORD}" for q, w in whose.items()}


def _values_text(values: dict, head: bool = False) -> str:
    """A review's values in one short phrase for a message, each written as the labels on the image and the report's
    key frame write it (``workstation.reports``): "AoP 121.3°, HSD 12.0 mm, HC 69.5 mm" (HC only where it has mm).
    ``head``: the head's HC, BPD, OFD and GA as the report writes them (``describe_head``) where it has any."""
    has_hsd = values.get("hsd_mm") is not None or values.get("hsd_px") is not None
    has_head = any(values.get(key) is not None for key in HEAD_VALUE_KEYS)
    return ", ".join(filter(None, (aop_label(values, degree="°") if values.get("aop_deg") is not None else None,
                                   hsd_label(values) if has_hsd else None,
                                   (describe_head(values) if has_head else None) if head
                                   else hc_label({"hc_mm": values.get("hc_mm")}))))


HEAD_VALUE_KEYS = ("hc_mm", "bpd_mm", "ofd_mm", "ga_weeks")  # the head's values a records row keeps


NOTE_STYLE = "color: #b3261e; font-weight: bold;"  # a status-bar note about what stands (``add_status_note``)

_UNREAD = object()  # records_basis without a calibration read yet


def _with_stored(file_calibration: Calibration, stored: dict) -> Calibration:
    """The file's calibration with the exam's manual one on record (a records layer's ``stored_calibration``) over it,
    as the records put it in force (``workstation.records.calibration``). ValueError: a scale that cannot be used."""
    return with_manual_on_record(file_calibration, stored["mm_per_px"], stored.get("detail"), stored["by"])


def _same_scale(a: Calibration | None, b: Calibration | None) -> bool:
    """Whether two calibrations give the same mm (the file's both, or the same manual scale), their wording aside."""
    manual_a, manual_b = (None if a is None else a.manual), (None if b is None else b.manual)
    if manual_a is None or manual_b is None:
        return manual_a is None and manual_b is None
    return math.isclose(manual_a.mm_per_px_x, manual_b.mm_per_px_x, rel_tol=1e-12)


def demo_path() -> Path:
    return data_dir() / "demo" / "demo-cine.dcm"


def settle_garbage() -> None:
    """Collect, then set every object alive now aside from the cyclic garbage collector (``gc.freeze``).

    With Qt, pyqtgraph, numpy and a cine's results the heap holds some 100 000 tracked objects, and a full
    collection walks them all: 60-100 ms with the UI thread stopped, the longest stalls measured while analysing.
    Frozen objects are still freed when their last reference goes; only cycles among them wait for ever, so this runs
    after a collection, at quiet moments (window built, analysis done), and a collection later walks only what is new.
    """
    gc.collect()
    gc.freeze()


class ErrorBanner(QtWidgets.QFrame):
    """The last error, in red above the viewer, until dismissed; the window goes on working under it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setStyleSheet("ErrorBanner { background: #6b1d1d; border: 1px solid #d04a4a; } "
                           "QLabel { color: #ffe0e0; }")
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        self.label = QtWidgets.QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        close = QtWidgets.QToolButton()
        close.setText("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class WelcomePage(QtWidgets.QWidget):
    """What a first start shows: open the demo cine, a file, a folder, or a recent file."""

    def __init__(self, window: "MainWindow"):
        super().__init__()
        # A column centred by stretches (alignment flags would break the wrapped text's height), 720 px where there
        # is room and narrower beside wide side docks (the patients' tables need their width more than this text).
        column = QtWidgets.QWidget()
        column.setMinimumWidth(440)
        column.setMaximumWidth(720)
        column.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Preferred)
        layout = QtWidgets.QVBoxLayout(column)
        title = QtWidgets.QLabel("<h1>Labour ward ultrasound workstation</h1>"
                                 "<p>Open a transperineal scan (DICOM, video, images or a folder of images). The AI "
                                 "finds the pubic symphysis and the fetal head and measures the angle of progression "
                                 "and the head-symphysis distance on every frame; you can correct and accept them."
                                 "</p><p>Nothing to open yet? The demo cine is a synthetic scan the workstation makes "
                                 "itself (no patient in it).</p>")
        title.setWordWrap(True)
        layout.addWidget(title)
        buttons = QtWidgets.QHBoxLayout()
        self.demo_button = QtWidgets.QPushButton("Open demo cine")
        self.demo_button.setDefault(True)
        self.demo_button.clicked.connect(window.open_demo)
        open_button = QtWidgets.QPushButton("Open file…")
        open_button.clicked.connect(window.choose_file)
        folder_button = QtWidgets.QPushButton("Open folder of images…")
        folder_button.clicked.connect(window.choose_folder)
        for button in (self.demo_button, open_button, folder_button):
            button.setMinimumHeight(36)
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.recent_title = QtWidgets.QLabel("<b>Recent</b>")
        layout.addWidget(self.recent_title)
        self.recent_list = QtWidgets.QListWidget()
        self.recent_list.setMaximumHeight(180)
        self.recent_list.itemActivated.connect(lambda item: window.open_file(item.text()))
        layout.addWidget(self.recent_list)
        row = QtWidgets.QHBoxLayout()
        row.addStretch(1)
        row.addWidget(column)
        row.addStretch(1)
        outer = QtWidgets.QVBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    def set_recent(self, files: list[str]) -> None:
        self.recent_list.clear()
        self.recent_list.addItems(files)
        self.recent_list.setVisible(bool(files))
        self.recent_title.setVisible(bool(files))


class MainWindow(QtWidgets.QMainWindow):
    """The window. ``model_provider`` returns the model to analyse with (default: the settings' model, one ONNX
    Runtime session per model and device, reused)."""

    measurementEdited = QtCore.Signal(int, object)  # frame index, review record (see review_record)
    frameAccepted = QtCore.Signal(int, object)  # frame index, review record
    calibrationChanged = QtCore.Signal(object)  # calibration record (see calibration_record), before the reviews
    cineOpened = QtCore.Signal(str)
    cineClosed = QtCore.Signal()
    analysisFinished = QtCore.Signal(bool)  # True when cancelled (or stopped by an error)
    frameShown = QtCore.Signal(int)
    errorShown = QtCore.Signal(str)

    def __init__(self, settings: Settings | None = None, model_provider: Callable[[], object] | None = None,
                 parent=None):
        super().__init__(parent)
        self.settings = settings or Settings(parent=self)
        self.models = ModelCache()
        self.model_provider = model_provider or (lambda: self.models.get(self.settings.model, self.settings.device))
        self.load_pool = WorkerPool("load", 2, self)
        self.analysis_pool = WorkerPool("analysis", 1, self)
        self.undo_stack = QtGui.QUndoStack(self)
        self.cine = None
        self.path: Path | None = None
        self.exam_id: int | None = None
        self.file_calibration: Calibration | None = None
        self.analysis: CineAnalysis | None = None
        self.model_info: dict = {}
        self.current_frame = 0
        self._load_job: LoadCineJob | None = None
        self._load_request: tuple[Path, int | None, int | None] | None = None
        self._analysis_job: AnalysisJob | None = None
        self._edit_before: tuple[int, dict] | None = None
        # ``recorded_review(exam_id)``: a person's review on record for an exam (a records panel sets it; see
        # ``workstation.records.recorded_review``), shown on its frame when that frame's analysis arrives.
        self.recorded_review: Callable[[int], dict | None] | None = None
        # ``records_current(exam_id)``: the records' current measurement of an exam, ``{"measurement_id": id or
        # None}`` (None: unknown), which a review command keeps so that its undo and redo put exactly that back.
        self.records_current: Callable[[int], dict | None] | None = None
        # ``stored_calibration(exam_id)``: the manual calibration kept with an exam, ``{"mm_per_px", "detail", "by",
        # "at"}`` or None (the file's), applied before the exam is measured (a records panel sets it).
        self.stored_calibration: Callable[[int], dict | None] | None = None
        self._recorded: dict | None = None
        # The records' state the screen's reviews are based on, ``{"measurement_id": id or None}`` (None: unknown, or
        # no records): the exam's current measurement read with its review on record (``_fetch_recorded``), moved
        # by each of this window's own saves (``note_records_saved``), never by a refused one. Each review record
        # names it (``based_on_measurement_id``), so the records refuse a review made on a screen someone else's
        # change has made stale (``workstation.records.ReviewConflict``) instead of superseding that change unseen.
        self.records_basis: dict | None = None
        # Where the records beside this window are and why they cannot be written (``note_records_read_only``), said
        # again in the banner with each new cine; None: none attached read-only.
        self.records_read_only: str | None = None
        # The head ellipse caliper's style drawn last (its colour, and the AI's reason where it is withheld): restyled
        # only when that changes, not on every frame shown during playback.
        self._ellipse_style: tuple | None = None
        # A records layer's refusal of the save just announced (``note_save_failure``), read back after each announce.
        self._save_failure: str | None = None
        # ... and when that refusal was a conflict (someone else changed the exam since): the records' ReviewConflict.
        self._save_conflict = None
        # The row a records layer wrote for the save just announced (``note_records_saved``), None: none written.
        self._saved_row: int | None = None
        self._clear_history_pending = False
        self._pushing = False
        self._calibration_line: CalibrationLine | None = None
        self._shut_down = False
        self._shutdown_steps: list[Callable[[int], bool]] = []
        self.setWindowTitle("Workstation")
        self.setAcceptDrops(True)
        self._build_central()
        self._build_panel_dock()
        self._build_status_bar()
        self._build_menus()
        self.settings.changed.connect(self._settings_changed)
        self.resize(1400, 880)
        self._show_welcome()
        settle_garbage()

    # ------------------------------------------------------------------------------------------- layout
    def _build_central(self) -> None:
        central = QtWidgets.QWidget()
        outer = QtWidgets.QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        self.error_banner = ErrorBanner()  # above the pages: seen on the welcome page too
        outer.addWidget(self.error_banner)
        self.pages = QtWidgets.QStackedWidget()
        outer.addWidget(self.pages, 1)
        self.welcome = WelcomePage(self)
        self.pages.addWidget(self.welcome)
        workspace = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(workspace)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        self.calibration_bar = CalibrationBar()
        self.calibration_bar.hide()
        self.calibration_bar.applied.connect(self._apply_manual_calibration)
        self.calibration_bar.fileCalibrationRequested.connect(self._use_file_calibration)
        self.calibration_bar.cancelled.connect(self._end_manual_calibration)
        layout.addWidget(self.calibration_bar)
        self.view = FrameView()
        self.view.setAcceptDrops(False)  # drops go to the window, which opens them
        layout.addWidget(self.view, 1)
        self.overlays = OverlayLayer(self.view.view_box, self.settings)
        self.calipers = Calipers(self.view.view_box, self.settings, self)
        self.calipers.editStarted.connect(self._edit_started)
        self.calipers.editPreview.connect(self._edit_preview)
        self.calipers.editFinished.connect(self._edit_finished)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self._slider_moved)
        self.slider.sliderPressed.connect(self._pause)
        layout.addWidget(self.slider)
        self.strip = FrameStrip()
        self.strip.frameRequested.connect(self.go_to_frame)
        layout.addWidget(self.strip)
        layout.addLayout(self._build_controls())
        self.pages.addWidget(workspace)
        self.workspace = workspace
        self.setCentralWidget(central)
        self.playback = Playback(self)
        self.playback.frameChanged.connect(self.show_frame)
        self.playback.playingChanged.connect(self._playing_changed)
        self.playback.loop = self.settings.loop

    def _build_controls(self) -> QtWidgets.QHBoxLayout:
        row = QtWidgets.QHBoxLayout()
        style = self.style()
        icons = QtWidgets.QStyle.StandardPixmap

        def button(icon, tip, slot):
            b = QtWidgets.QToolButton()
            b.setIcon(style.standardIcon(icon))
            b.setToolTip(tip)
            b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # keys stay the window's shortcuts
            b.clicked.connect(slot)
            row.addWidget(b)
            return b

        button(icons.SP_MediaSkipBackward, "First frame (Home)", lambda: self.playback.first())
        button(icons.SP_MediaSeekBackward, "Previous frame (Left)", lambda: self.playback.step(-1))
        self.play_button = button(icons.SP_MediaPlay, "Play / pause (Space)", lambda: self.playback.toggle())
        button(icons.SP_MediaSeekForward, "Next frame (Right)", lambda: self.playback.step(1))
        button(icons.SP_MediaSkipForward, "Last frame (End)", lambda: self.playback.last())
        row.addSpacing(12)
        row.addWidget(QtWidgets.QLabel("Speed"))
        self.speed_combo = QtWidgets.QComboBox()
        self.speed_combo.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        for speed in SPEEDS:
            self.speed_combo.addItem(f"{speed:g}×", speed)
        self.speed_combo.setCurrentIndex(SPEEDS.index(1.0))
        self.speed_combo.currentIndexChanged.connect(lambda i: self.set_speed(SPEEDS[i]))
        row.addWidget(self.speed_combo)
        self.loop_check = QtWidgets.QCheckBox("Loop")
        self.loop_check.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.loop_check.setChecked(self.settings.loop)
        self.loop_check.toggled.connect(self._set_loop)
        row.addWidget(self.loop_check)
        row.addSpacing(12)
        self.frame_label = QtWidgets.QLabel()
        row.addWidget(self.frame_label, 1)
        fit = QtWidgets.QToolButton()
        fit.setText("Fit")
        fit.setToolTip("Show the whole frame (F)")
        fit.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        fit.clicked.connect(self.view.fit)
        row.addWidget(fit)
        return row

    def _build_panel_dock(self) -> None:
        self.panel = MeasurementPanel()
        self.panel.resetRequested.connect(self.reset_frame_to_ai)
        self.panel.acceptRequested.connect(self.accept_frame)
        self.panel_dock = QtWidgets.QDockWidget("Measurements", self)
        self.panel_dock.setObjectName("measurements-dock")
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        # Text wraps to the dock's width; the dock never gets narrower than the panel needs.
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.panel_dock.setMinimumWidth(self.panel.minimumWidth() + 30)
        scroll.setWidget(self.panel)
        self.panel_dock.setWidget(scroll)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, self.panel_dock)
        self.resizeDocks([self.panel_dock], [340], QtCore.Qt.Orientation.Horizontal)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("analysed %v/%m")
        self.progress.hide()
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the analysis; frames analysed so far are kept")
        self.cancel_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.cancel_button.clicked.connect(self.cancel_analysis)
        self.cancel_button.hide()
        # The calibration in force, always in view: manual (who set it, when) or the file's.
        self.calibration_status = QtWidgets.QLabel()
        self.calibration_status.setObjectName("calibrationStatus")
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.calibration_status)

    def add_status_note(self, name: str, text: str, why: str) -> QtWidgets.QLabel:
        """A note in red kept at the right of the status bar about what stands while the window runs (records that
        are read-only or unavailable): ``text``, its tooltip ``why``, its object name ``name``."""
        note = QtWidgets.QLabel(text)
        note.setObjectName(name)
        note.setToolTip(why)
        note.setStyleSheet(NOTE_STYLE)
        self.statusBar().addPermanentWidget(note)
        return note

    def note_records_read_only(self, why: str) -> None:
        """The records beside the window cannot be written (``why``: where, and why): kept (``records_read_only``),
        said again in the banner with each new cine, and a status-bar note stays."""
        self.records_read_only = why
        self.add_status_note("recordsReadOnly", "Records read-only", why)

    def _action(self, menu: QtWidgets.QMenu, text: str, slot, shortcut=None, checkable=False, checked=False,
                tip: str | None = None) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        if checkable:
            action.setCheckable(True)
            action.setChecked(checked)
            action.toggled.connect(slot)
        else:
            action.triggered.connect(lambda _=False: slot())
        if tip:
            action.setStatusTip(tip)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open…", self.choose_file, QtGui.QKeySequence.StandardKey.Open,
                     tip="Open a DICOM file, a video or an image")
        self._action(file_menu, "Open &folder of images…", self.choose_folder)
        self._action(file_menu, "Open &demo cine", self.open_demo)
        self.recent_menu = file_menu.addMenu("&Recent")
        file_menu.addSeparator()
        self.close_action = self._action(file_menu, "&Close cine", self.close_cine, QtGui.QKeySequence.StandardKey.Close)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QtGui.QKeySequence.StandardKey.Quit)

        edit_menu = bar.addMenu("&Edit")
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QtGui.QKeySequence("Ctrl+Z"))
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QtGui.QKeySequence("Ctrl+Shift+Z"), QtGui.QKeySequence("Ctrl+Y")])
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        edit_menu.addSeparator()
        self._action(edit_menu, "Reset frame to &AI", self.reset_frame_to_ai)
        self._action(edit_menu, "&Accept frame", self.accept_frame, "Ctrl+Return")
        edit_menu.addSeparator()
        self._action(edit_menu, "&Settings…", self.open_settings, QtGui.QKeySequence.StandardKey.Preferences)

        view_menu = bar.addMenu("&View")
        self.overlay_actions: dict[str, QtGui.QAction] = {}
        for name, text in OVERLAYS.items():
            self.overlay_actions[name] = self._action(
                view_menu, text, lambda on, name=name: self.set_overlay_visible(name, on), checkable=True,
                checked=self.settings.overlay_visible(name))
        self.outline_action = self._action(view_menu, "Masks as outlines", self._set_mask_outlines, checkable=True,
                                           checked=self.settings.mask_outlines)
        view_menu.addSeparator()
        self._action(view_menu, "&Fit frame", self.view.fit, "F")
        self.panels_menu = view_menu.addMenu("&Panels")
        self.panels_menu.addAction(self.panel_dock.toggleViewAction())

        play_menu = bar.addMenu("&Playback")
        self.play_action = self._action(play_menu, "&Play / pause", self.playback.toggle, "Space")
        self._action(play_menu, "Pre&vious frame", lambda: self.playback.step(-1), "Left")
        self._action(play_menu, "&Next frame", lambda: self.playback.step(1), "Right")
        self._action(play_menu, "&First frame", self.playback.first, "Home")
        self._action(play_menu, "&Last frame", self.playback.last, "End")
        self._action(play_menu, "&Slower", lambda: self._change_speed(-1), "[")
        self._action(play_menu, "F&aster", lambda: self._change_speed(+1), "]")
        self.loop_action = self._action(play_menu, "L&oop", self.loop_check.setChecked, checkable=True,
                                        checked=self.settings.loop)
        self.loop_check.toggled.connect(self.loop_action.setChecked)

        analysis_menu = bar.addMenu("&Analysis")
        self._action(analysis_menu, "&Re-analyse", self.reanalyse,
                     tip="Analyse the cine again with the model and device in Settings")
        self._action(analysis_menu, "&Cancel analysis", self.cancel_analysis, "Esc")
        self._action(analysis_menu, "Go to &chosen frame", self.go_to_chosen_frame, "C")
        tools_menu = bar.addMenu("&Tools")
        self._action(tools_menu, "Manual &calibration from the depth scale…", self.start_manual_calibration)
        for action in self.findChildren(QtGui.QAction):
            # Window-wide keys work whatever has focus inside the window (not in dialogs).
            action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        self._update_recent_menu()

    # ------------------------------------------------------------------------------------------- extension points
    def add_side_dock(self, widget: QtWidgets.QWidget, title: str,
                      area: QtCore.Qt.DockWidgetArea = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
                      ) -> QtWidgets.QDockWidget:
        """Put another panel (records, timeline, ...) in a dock; View > Panels shows and hides it."""
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower().replace(' ', '-')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.panels_menu.addAction(dock.toggleViewAction())
        return dock

    def add_shutdown_step(self, step: Callable[[int], bool]) -> None:
        """``step(timeout_ms)`` runs at shutdown, before the window's own pools stop (a panel's jobs)."""
        self._shutdown_steps.append(step)

    def review_record(self, frame_index: int, change: str) -> dict:
        """What a records layer saves for a frame: the review state plus the file, exam and context."""
        state = self.analysis.states[frame_index]
        record = state.to_dict()
        record.update({
            "change": change, "file": str(self.path), "exam_id": self.exam_id,
            "time_s": float(self.cine.times_s[frame_index]) if self.cine is not None else None,
            "calibration_source": self.analysis.calibration.source if self.analysis.calibration else "none",
            "model": dict(self.model_info),
            "acting_user": self.settings.user_name.strip() or None,  # who did this (an undo may restore another's)
        })
        if self.exam_id is not None and self.records_basis is not None:
            # The exam's measurement this screen was based on: the records refuse the review if someone else changed
            # the exam's value since (``workstation.records.review.BASED_ON``).
            record["based_on_measurement_id"] = self.records_basis.get("measurement_id")
            if "calibration_id" in self.records_basis:  # the manual calibration row the screen is measured in
                record["based_on_calibration_id"] = self.records_basis["calibration_id"]
        return record

    # ------------------------------------------------------------------------------------------- files
    def choose_file(self) -> None:
        start = str(self.path.parent) if self.path else str(Path.home())
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open a scan", start, FILE_FILTER)
        if path:
            self.open_file(path)

    def choose_folder(self) -> None:
        start = str(self.path.parent) if self.path else str(Path.home())
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a folder of images", start)
        if path:
            self.open_file(path)

    def open_demo(self) -> None:
        self.open_file(demo_path(), make_demo=True)

    def open_file(self, path, exam_id: int | None = None, frame: int | None = None, *, make_demo: bool = False) -> None:
        """Open a scan in a worker; the cine on screen stays until the new one has loaded. ``exam_id`` is passed
        back in every review record; ``frame`` is shown first."""
        if self._load_job is not None:
            self._load_job.cancel()
        path = Path(path)
        job = LoadCineJob(path, make_demo=make_demo)
        job.signals.loaded.connect(self._cine_loaded)
        job.signals.failed.connect(self._job_failed)
        job.signals.finished.connect(self._load_finished)
        self._load_job = job
        self._load_request = (path, exam_id, frame)
        self.statusBar().showMessage(f"Opening {path.name}…" if not make_demo or path.exists()
                                     else "Making the demo cine…")
        self.load_pool.start(job)

    @QtCore.Slot(int, object)
    def _cine_loaded(self, job_id: int, cine) -> None:
        if self._load_job is None or job_id != self._load_job.id:
            cine.close()  # a newer request replaced this one
            return
        path, exam_id, frame = self._load_request
        self._install_cine(cine, path, exam_id, frame)

    @QtCore.Slot(int, bool)
    def _load_finished(self, job_id: int, cancelled: bool) -> None:
        if self._load_job is not None and job_id == self._load_job.id:
            self._load_job = None

    def _install_cine(self, cine, path: Path, exam_id: int | None, frame: int | None) -> None:
        self.close_cine(show_welcome=False)
        self._clear_banner()  # before the records are read: what they say about this exam stays in view
        self.cine = cine
        self.path = path
        self.exam_id = exam_id
        self._recorded = self._fetch_recorded()
        self.file_calibration = cine.calibration
        stored = self._apply_stored_calibration(cine)
        self.analysis = CineAnalysis(cine.n_frames, cine.frame_shape, cine.calibration)
        self._show_in_patient_shape()
        self.calipers.set_frame_shape(cine.frame_shape)
        self.playback.set_times(cine.times_s)
        self.slider.blockSignals(True)
        self.slider.setRange(0, cine.n_frames - 1)
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.strip.set_frame_count(cine.n_frames)
        self.pages.setCurrentWidget(self.workspace)
        self.setWindowTitle(f"{path.name} — Workstation")
        self.settings.add_recent_file(path)
        self._update_recent_menu()
        start = 0 if frame is None else int(min(max(0, frame), cine.n_frames - 1))
        self.playback.index = start
        self.show_frame(start)
        self.view.fit()
        fps = cine.fps
        timing = f"{fps:.1f} fps ({cine.frame_time_source})" if fps else "single frame"
        self.show_calibration_status(stored)
        calibration = (f"calibration {cine.calibration.source}" if stored is None else
                       f"the manual calibration kept with exam {exam_id} "
                       f"({describe_mm_per_px(stored['mm_per_px'])}, set by "
                       f"{stored['by']} {when_text(stored.get('at'))})")
        self.statusBar().showMessage(f"Opened {path.name}: {cine.n_frames} frames, {cine.frame_shape[1]}×"
                                     f"{cine.frame_shape[0]}, {timing}, {calibration}", 15000)
        self.cineOpened.emit(str(path))
        self.start_analysis()

    def _clear_banner(self) -> None:
        """The banner cleared for a new cine, but for what stands while the window runs: records that cannot be
        written (``records_read_only``: where and why) are said again."""
        if self.records_read_only is None:
            self.error_banner.hide()
        else:
            self.error_banner.show_message(f"Records read-only: {self.records_read_only}.")

    def _show_in_patient_shape(self) -> None:
        """Pixels drawn in the patient's shape: where the calibration in force says a pixel row is not as tall as a
        column is wide (``frame_aspect``, the one rule the analysis measures by), the view stretches
        rows by that much, so the frame, the lines and the angles on it look as they were measured (in the patient).
        Calipers and overlays keep pixel coordinates; square or unknown pixels stay square."""
        if self.analysis is None or self.cine is None:
            self.view.set_pixel_aspect(1.0)
            return
        self.view.set_pixel_aspect(frame_aspect(self.analysis.calibration, self.cine.frame_shape))

    def _apply_stored_calibration(self, cine) -> dict | None:
        """The manual calibration kept with the exam being opened, made the cine's before anything is measured, so
        that the AI's values and a person's on record are in the mm they were saved in. Returns it (None: the file's
        calibration stands)."""
        if self.exam_id is None or self.stored_calibration is None:
            return None
        stored = self.stored_calibration(self.exam_id)
        self._note_calibration_basis(stored)
        if stored is None:
            return None
        try:
            cine.calibration = _with_stored(cine.calibration, stored)
        except ValueError as exc:
            self.show_error(f"Exam {self.exam_id}: the manual calibration on record cannot be used ({exc}); the "
                            f"file's calibration is used. The records are unchanged.")
            return None
        return stored

    def show_calibration_status(self, stored: dict | None = None) -> None:
        """The status bar's calibration note for the cine on screen: a manual scale with who set it and when (from
        ``stored``, the exam's record of it, when there is one), else the file's own."""
        calibration = None if self.analysis is None else self.analysis.calibration
        if calibration is None:
            self.calibration_status.setText("")
            self.calibration_status.setToolTip("")
            return
        manual = calibration.manual
        if manual is None:
            text = f"Calibration: {CALIBRATION_NAMES.get(calibration.source, calibration.source)} (the file's)"
            tip = text
        elif stored is not None:
            text = (f"Calibration: manual, {describe_mm_per_px(manual.mm_per_px_x)}, set by {stored['by']} "
                    f"{when_text(stored.get('at'))}" + (f", kept with exam {self.exam_id}" if self.exam_id else ""))
            tip = f"{text}: {manual.detail}"
        else:
            text = f"Calibration: manual, {describe_mm_per_px(manual.mm_per_px_x)}"
            tip = f"{text}: {manual.detail}" + ("" if self.exam_id is not None
                                                else " (this file belongs to no exam: the scale is not kept)")
        self.calibration_status.setText(text)
        self.calibration_status.setToolTip(tip)

    def close_cine(self, show_welcome: bool = True) -> None:
        """Close the cine on screen: its analysis is cancelled, its edits' undo history dropped."""
        self._end_manual_calibration()
        self.playback.pause()
        self._cancel_analysis_job()
        had_cine = self.cine is not None
        if self.cine is not None:
            self.cine.close()
        self.cine = None
        self.analysis = None
        self.path = None
        self.exam_id = None
        self._recorded = None
        self.records_basis = None
        self.show_calibration_status()
        self.undo_stack.clear()
        self.view.clear()
        self.overlays.clear()
        self.calipers.set_geometry(None)
        self.calipers.set_frame_shape(None)
        self.panel.show_state(None)
        self.strip.set_frame_count(0)
        self.frame_label.setText("")
        self.setWindowTitle("Workstation")
        if show_welcome:
            self._show_welcome()
        if had_cine:
            self.cineClosed.emit()

    def _show_welcome(self) -> None:
        self.welcome.set_recent(self.settings.recent_files)
        self.pages.setCurrentWidget(self.welcome)

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files
        for path in files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        self.recent_menu.setEnabled(bool(files))

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            for extra in reversed(paths[1:]):  # the others wait in File > Recent
                self.settings.add_recent_file(extra)
            self.open_file(paths[0])
            event.acceptProposedAction()

    # ------------------------------------------------------------------------------------------- analysis
    def start_analysis(self) -> None:
        if self.cine is None:
            return
        self._cancel_analysis_job()
        job = AnalysisJob(self.path, self.analysis.calibration, self.model_provider)
        job.signals.modelReady.connect(self._model_ready)
        job.signals.frameAnalysed.connect(self._frame_analysed)
        job.signals.failed.connect(self._job_failed)
        job.signals.finished.connect(self._analysis_finished)
        self._analysis_job = job
        self.progress.setRange(0, self.cine.n_frames)
        self.progress.setValue(len(self.analysis.states))
        self.progress.show()
        self.cancel_button.show()
        self.analysis_pool.start(job)

    def reanalyse(self) -> None:
        """Analyse again (e.g. with another model): AI values are replaced, corrections of this cine dropped."""
        if self.cine is None:
            return
        if any(s.is_corrected or s.confirmed for s in self.analysis.states.values()):
            answer = QtWidgets.QMessageBox.question(
                self, "Re-analyse", "Re-analysing replaces the AI values and drops this cine's corrections and "
                "acceptances from the window (what a records panel saved stays saved). Go on?")
            if answer != QtWidgets.QMessageBox.StandardButton.Yes:
                return
        calibration = self.analysis.calibration
        self.undo_stack.clear()
        self._recorded = self._fetch_recorded()  # what the records hold now comes back on the new analysis
        self.analysis = CineAnalysis(self.cine.n_frames, self.cine.frame_shape, calibration)
        self.strip.set_frame_count(self.cine.n_frames)
        self.strip.set_current(self.current_frame)
        self.show_frame(self.current_frame)
        self.start_analysis()

    def cancel_analysis(self) -> None:
        if self._analysis_job is not None:
            self._analysis_job.cancel()
            self.statusBar().showMessage("Cancelling the analysis…")

    def _cancel_analysis_job(self) -> None:
        if self._analysis_job is not None:
            self._analysis_job.cancel()
            self._analysis_job = None
        self.progress.hide()
        self.cancel_button.hide()

    @property
    def analysing(self) -> bool:
        return self._analysis_job is not None

    @QtCore.Slot(int, object)
    def _model_ready(self, job_id: int, description: dict) -> None:
        if self._analysis_job is None or job_id != self._analysis_job.id:
            return
        self.model_info = dict(description or {})
        self.analysis.model_info = dict(self.model_info)
        self.panel.set_model(self.model_info)

    @QtCore.Slot(int, object)
    def _frame_analysed(self, job_id: int, frame: AnalysedFrame) -> None:
        job = self._analysis_job
        if job is None or job_id != job.id:
            stale = self.analysis_pool.job(job_id)
            if stale is not None:
                stale.consumed()  # let a cancelled job run to its end
            return
        try:
            state = self.analysis.add(frame.result, frame.maps)
            if frame.calibration != self.analysis.calibration:  # a manual calibration came in meanwhile
                state.recalibrate(self.analysis.calibration, self.analysis.frame_shape)
            if self._recorded is not None and state.frame_index == self._recorded["frame_index"]:
                self._show_recorded(state, self._recorded)
            self.strip.set_result(state.frame_index, state.uncertainty, state.frame_class)
            self.progress.setValue(len(self.analysis.states))
            if state.frame_index == self.current_frame and not self.calipers.dragging:
                self._show_analysis_of_frame()
        finally:
            job.consumed()

    @QtCore.Slot(int, bool)
    def _analysis_finished(self, job_id: int, cancelled: bool) -> None:
        if self._analysis_job is None or job_id != self._analysis_job.id:
            return
        self._analysis_job = None
        self.progress.hide()
        self.cancel_button.hide()
        done = len(self.analysis.states)
        self.analysis.complete = done == self.analysis.n_frames
        self.analysis.cancelled = not self.analysis.complete
        settle_garbage()
        chosen, why = self.analysis.chosen()
        self.strip.set_chosen(chosen)
        if self.analysis.complete:
            self.statusBar().showMessage(f"Analysis done. {why[0].upper()}{why[1:]}.")
        else:
            self.statusBar().showMessage(f"Analysis stopped after {done} of {self.analysis.n_frames} frames. "
                                         f"{why[0].upper()}{why[1:]}.")
        self._recorded_not_reached(done)
        self.analysisFinished.emit(not self.analysis.complete)

    @QtCore.Slot(int, str)
    def _job_failed(self, job_id: int, message: str) -> None:
        if self._load_job is not None and job_id == self._load_job.id:
            name = self._load_request[0].name if self._load_request else "the file"
            if message.startswith(f"{name}: "):  # the reader's messages start with the file's name already
                message = message[len(name) + 2:]
            self.show_error(f"Could not open {name}: {message}")
        elif self._analysis_job is not None and job_id == self._analysis_job.id:
            self.show_error(f"The analysis stopped: {message}")

    def show_error(self, message: str) -> None:
        log.warning("%s", message)
        self.error_banner.show_message(message)
        self.statusBar().showMessage(message, 15000)
        self.errorShown.emit(message)

    # ------------------------------------------------------------------------------------------- frames
    @QtCore.Slot(int)
    def show_frame(self, index: int) -> None:
        if self.cine is None:
            return
        index = int(min(max(0, index), self.cine.n_frames - 1))
        try:
            frame = self.cine.frame(index)
        except Exception as exc:  # a damaged frame in the middle of a file: say so, keep the rest usable
            self.playback.pause()
            self.show_error(f"Frame {index} of {self.path.name} cannot be decoded: {exc}")
            return
        self.current_frame = index
        if self.playback.index != index:
            self.playback.index = index
        self.view.set_frame(frame)
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self.strip.set_current(index)
        self._show_analysis_of_frame()
        time_s = float(self.cine.times_s[index])
        # Frames are numbered from 0, as in the analysis' JSON and its "why" text.
        self.frame_label.setText(f"Frame {index} [0–{self.cine.n_frames - 1}]   {time_s:.2f} s   "
                                 f"{self.playback.speed:g}×{'   ▶' if self.playback.playing else ''}")
        self.frameShown.emit(index)

    def go_to_frame(self, index: int) -> None:
        self.playback.pause()
        self.playback.go_to(index)

    def go_to_chosen_frame(self) -> None:
        if self.analysis is not None:
            chosen, _ = self.analysis.chosen()
            if chosen is not None:
                self.go_to_frame(chosen)

    def _fetch_recorded(self) -> dict | None:
        """The person's review on record to show (None: the AI's value), and with it the basis of this screen's
        reviews (``records_basis``): the exam's current measurement, read first, so that a row written between the
        two reads makes the first save a conflict rather than being taken as seen. The calibration the screen is
        based on stays (it is read where it is put in force: ``_note_calibration_basis``)."""
        calibration = (self.records_basis or {}).get("calibration_id", _UNREAD)
        self.records_basis = self._records_state()
        if self.records_basis is not None and calibration is not _UNREAD:
            self.records_basis["calibration_id"] = calibration
        if self.exam_id is None or self.recorded_review is None:
            return None
        return self.recorded_review(self.exam_id)

    def _show_recorded(self, state: FrameMeasurementState, recorded: dict) -> None:
        """The person's review on record, on its frame as the viewer state (nothing saved: it is saved already)."""
        differ = state.show_recorded(recorded, self.analysis.calibration, self.analysis.frame_shape)
        if not differ:
            return
        kept = recorded.get("values") or {}
        if adopts_withheld_ai_ellipse(recorded.get("corrected_geometry"), state.ai):
            self._show_adopted_withheld_ellipse(state, recorded)
            return
        on_record = ", ".join(f"{VALUE_NAMES.get(key, key)} {kept[key]:.1f}" for key in differ
                              if kept.get(key) is not None)
        self.show_error(
            f"Exam {self.exam_id}: the records hold a {recorded['kind']} by {recorded['by']} of frame "
            f"{state.frame_index} ({on_record or 'without ' + ', '.join(VALUE_NAMES.get(k, k) for k in differ)}, "
            f"calibration {recorded.get('calibration_source') or 'none'}); measured here with calibration "
            f"{self.analysis.calibration.source if self.analysis.calibration else 'none'} it gives other values"
            + (", so it is not shown as accepted" if recorded.get("confirmed_by") else "")
            + f". The records are unchanged (`workstation history --exam {self.exam_id}`).")

    def _show_adopted_withheld_ellipse(self, state: FrameMeasurementState, recorded: dict) -> None:
        """The person's review on record was saved by a version before review 29 on the AI's head outline whose
        biometry the AI withheld on this frame: its head values are on record (timeline, report) but the window never
        shows that outline's HC as anyone's value. The banner says so, and what to do: the outline stays on screen,
        dashed (``caliper_geometry``), to be moved to measure the head."""
        kept = recorded.get("values") or {}
        head = describe_head(kept) if any(kept.get(key) is not None for key in HEAD_VALUE_KEYS) else "head values"
        frame = state.frame_index
        self.show_error(
            f"Exam {self.exam_id}: the records hold a {recorded['kind']} by {recorded['by']} of frame {frame} with "
            f"{head}, measured on the AI's head outline, whose head biometry the AI withheld on this frame "
            f"({state.ai.get('ai_biometry_withheld')}); an earlier version of the workstation saved it so. The timeline "
            "and the report show those values; this window does not show them as anyone's"
            + (", so it is not shown as accepted" if recorded.get("confirmed_by") else "")
            + f". To measure the head, move or resize the dashed outline on frame {frame} (saved as your correction); "
            f"Reset to AI withdraws {recorded['by']}'s values. The records are unchanged "
            f"(`workstation history --exam {self.exam_id}`).")

    def _recorded_not_reached(self, done: int) -> None:
        """The person's review on record is on a frame this analysis never reached (stopped early): say so, so that
        nobody accepts another value over it unseen."""
        recorded = self._recorded
        if recorded is None or self.analysis is None or recorded["frame_index"] in self.analysis.states:
            return
        frame = recorded["frame_index"]
        values = _values_text(recorded.get("values") or {}, head=True)
        by = f"{recorded['kind']} by {recorded['by']}" + (f" ({recorded['at']})" if recorded.get("at") else "")
        self.show_error(
            f"Exam {self.exam_id}: the records hold a {by} of frame {frame}"
            + (f" ({values})" if values else "")
            + f"; frame {frame} was not analysed here ("
            + (f"the analysis stopped after {done} of {self.analysis.n_frames} frames" if not self.analysis.complete
               else f"this cine has frames 0 to {self.analysis.n_frames - 1}")
            + "), so that value is not shown. Analyse the whole cine (Analysis > Re-analyse) before accepting or "
            f"correcting a value of this exam. The records are unchanged (`workstation history --exam {self.exam_id}`).")

    def current_state(self) -> FrameMeasurementState | None:
        if self.analysis is None:
            return None
        return self.analysis.states.get(self.current_frame)

    def _show_analysis_of_frame(self) -> None:
        """Masks, geometry, calipers and panel of the frame on screen, from the review state."""
        state = self.current_state()
        maps = self.analysis.maps.get(self.current_frame) if self.analysis else None
        if maps is not None:
            self.overlays.show_maps(maps, self.analysis.frame_shape)
        else:
            self.overlays.clear()
        if state is None:
            self.calipers.set_geometry(None)
            self.overlays.show_geometry(None)
            if self.cine is None:
                message = None
            elif self.analysing:
                message = f"Frame {self.current_frame}: not analysed yet"
            else:
                message = f"Frame {self.current_frame}: not analysed (the analysis stopped; Analysis > Re-analyse)"
            self.panel.show_state(None, message=message)
            return
        self.calipers.set_geometry(state.caliper_geometry())
        self._mark_withheld_ellipse(state)
        not_on_record = self.review_not_on_record(state.frame_index)
        self.overlays.show_geometry(state.current(), whose_values(state, on_record=not_on_record is None))
        self.panel.show_state(state, self.analysis.calibration.source, not_on_record=not_on_record)

    def review_not_on_record(self, frame_index: int) -> str | None:
        """Why the review on screen of frame ``frame_index`` (a person's correction or acceptance) is not the exam's
        value on record, in one sentence naming what the records hold (whose, which frame, its values); None where it
        is, where the frame shows the AI's values, or where no records hold the exam. The records keep one current
        value per exam: the review saved last, or the AI's where a Reset to AI or a calibration withdrew it; the screen
        keeps each frame's review (undo goes back to it). Read from what the screen is based on (``records_basis``,
        moved by each save of this window): nothing is read from the records here."""
        state = None if self.analysis is None else self.analysis.states.get(frame_index)
        basis = self.records_basis
        if (state is None or not (state.is_corrected or state.confirmed) or self.exam_id is None or not basis
                or "kind" not in basis):
            return None
        if basis["kind"] not in (None, AI) and basis.get("frame_index") == frame_index:
            return None
        mine = f"acceptance by {state.confirmed_by}" if state.confirmed else f"correction by {state.corrected_by}"
        if basis["kind"] is None:
            held = "no value"
        else:
            whose = ("the AI's value" if basis["kind"] == AI else
                     f"the {'acceptance' if basis['kind'] == 'confirmation' else basis['kind']} by {basis['by']}")
            frame = "" if basis.get("frame_index") is None else f" of frame {basis['frame_index']}"
            values = _values_text(basis.get("values") or {})
            held = whose + frame + (f" ({values})" if values else "")
        return f"This frame's {mine} is not the exam's value on record: the records hold {held}."

    def _mark_withheld_ellipse(self, state: FrameMeasurementState) -> None:
        """The AI's head ellipse whose biometry it withheld is drawn thin and dashed, with a tooltip: an outline a
        person may move to measure their own head ellipse, not a value (an edit of other parts never adopts it; it
        stays on screen after such an edit, ``FrameMeasurementState.caliper_geometry``)."""
        roi = self.calipers.ellipse_roi
        colour = self.settings.colour("head_ellipse")
        style = (colour, state.ai.get("ai_biometry_withheld") if state.outlines_withheld_ellipse else None)
        if style == self._ellipse_style:
            return
        self._ellipse_style = style
        if state.outlines_withheld_ellipse:
            roi.setPen(pg.mkPen(colour, width=1, style=QtCore.Qt.PenStyle.DashLine))
            roi.setToolTip("The AI's head outline: its HC, BPD, OFD and GA are withheld "
                           f"({state.ai.get('ai_biometry_withheld')}). Move or resize it to measure the head "
                           "yourself; correcting other calipers leaves it out.")
        else:
            roi.set_colour(colour)
            roi.setToolTip("")

    # ------------------------------------------------------------------------------------------- playback
    def _pause(self) -> None:
        self.playback.pause()

    def _slider_moved(self, value: int) -> None:
        self.playback.go_to(value)

    def set_speed(self, speed: float) -> None:
        self.playback.set_speed(speed)
        index = SPEEDS.index(speed) if speed in SPEEDS else None
        if index is not None and self.speed_combo.currentIndex() != index:
            self.speed_combo.setCurrentIndex(index)

    def _change_speed(self, step: int) -> None:
        index = min(max(0, self.speed_combo.currentIndex() + step), len(SPEEDS) - 1)
        self.speed_combo.setCurrentIndex(index)

    def _set_loop(self, loop: bool) -> None:
        self.playback.loop = bool(loop)
        self.settings.loop = bool(loop)

    def _playing_changed(self, playing: bool) -> None:
        icon = QtWidgets.QStyle.StandardPixmap.SP_MediaPause if playing else QtWidgets.QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        # Calipers wait while the cine plays: a drag must land on the frame it started on.
        self.calipers.set_editable(not playing)

    # ------------------------------------------------------------------------------------------- review
    def _edit_started(self) -> None:
        state = self.current_state()
        self.playback.pause()
        self._edit_before = None if state is None else (state.frame_index, state.snapshot())

    def _edit_preview(self, geometry: dict) -> None:
        state = self.current_state()
        if state is None:
            return
        moved = ps_moved(geometry)
        preview = recompute_json(moved, self.analysis.calibration, self.analysis.frame_shape,
                                 state.frame_class, state.ai)
        self.overlays.show_geometry(preview, state.whose(moved))
        self.panel.show_state(state, self.analysis.calibration.source, preview=preview, preview_geometry=moved)

    def _edit_finished(self, geometry: dict) -> None:
        state = self.current_state()
        before, self._edit_before = self._edit_before, None
        if state is None or before is None or before[0] != state.frame_index:
            self._show_analysis_of_frame()
            return
        geometry = ps_moved(geometry)
        measured = recompute_json(geometry, self.analysis.calibration, self.analysis.frame_shape, state.frame_class,
                                  state.ai)
        problem = lost_value_problem(measured, state.current(), state.ai)
        if problem is not None or changes_no_value(state.current(), state.caliper_geometry(), measured):
            # A drop that breaks the geometry is put back as it was before the drag (nothing saved, no undo step); one
            # that changes no value is no correction: the screen stays as it was.
            state.restore(before[1], self.analysis.calibration, self.analysis.frame_shape)
            self._show_analysis_of_frame()  # calipers back where the values are
            if problem is not None:
                self.show_error(f"{problem}: the drag was undone; nothing saved.")
            return
        user = self._user_or_ask()
        if not user:
            self._show_analysis_of_frame()  # calipers back where the values are
            return
        state.correct(geometry, self.analysis.calibration, self.analysis.frame_shape, user)
        self._push_review(state, before[1], CORRECTION, f"Correct frame {state.frame_index}")

    def reset_frame_to_ai(self) -> None:
        state = self.current_state()
        if state is None or not (state.is_corrected or state.confirmed):
            return
        before = state.snapshot()
        state.reset_to_ai()
        self._push_review(state, before, RESET, f"Reset frame {state.frame_index} to AI")

    def accept_frame(self) -> None:
        state = self.current_state()
        if state is None or (state.confirmed and not state.unaccepted()
                             and self.review_not_on_record(state.frame_index) is None):
            return  # accepted already; an acceptance another frame's review superseded, or one a calibration
            # withdrew in part, can be given again
        if not state.can_accept:  # Ctrl+Return too: the button is disabled with the reason (records refuse it alike)
            self.statusBar().showMessage(f"Frame {state.frame_index}: {NO_VALUE_TO_CONFIRM}; Accept confirms a "
                                         "measured value", 8000)
            return
        user = self._user_or_ask()
        if not user:
            return
        before = state.snapshot()
        state.accept(user)
        self._push_review(state, before, ACCEPT, f"Accept frame {state.frame_index}")

    def _push_review(self, state: FrameMeasurementState, before: dict, kind: str, text: str) -> None:
        """One undo step of a review already made on ``state``; the records' current value from before it is kept
        with it (nothing is saved until the push applies it). Refused by the records, the frame is back as they hold
        it and the step waits on the redo side of the stack (Redo tries it again); refused because someone else
        changed the exam meanwhile, the screen shows what they hold now and the undo history is cleared."""
        if self._clear_history_pending:  # a conflict's clearing not yet run: before this step joins the history
            self._clear_stale_history()
        command = ReviewCommand(self._apply_review, state.frame_index, before, state.snapshot(), kind, text,
                                records_before=self._records_state())
        self._pushing = True
        try:
            self.undo_stack.push(command)
        finally:
            self._pushing = False
        if self._clear_history_pending:
            self._clear_stale_history()
        elif command.not_saved:
            command.step_back()
            self.undo_stack.undo()

    def _records_state(self) -> dict | None:
        if self.exam_id is None or self.records_current is None:
            return None
        return self.records_current(self.exam_id)

    def _user_or_ask(self) -> str:
        user = self.settings.user_name.strip()
        if not user:
            self.show_error("Enter your name in Edit > Settings first: every correction and acceptance is recorded "
                            "under a person's name.")
        return user

    def _apply_review(self, frame_index: int, snapshot: dict, change: str, restore: dict | None = None,
                      rollback: dict | None = None):
        """Undo/redo (and the first do) of a review command: restore the snapshot, show that frame as it is now,
        and announce it; ``restore`` (an undo or a later redo) names the records' current measurement to put back
        (see ``workstation.gui.editing``). Returns the records' current measurement after it (None: no records), or
        ``NOT_SAVED`` when the records refused to keep it: the frame is then put back to ``rollback`` (what the
        records still hold) and the banner says so."""
        if self.analysis is None or frame_index not in self.analysis.states:
            return None
        state = self.analysis.states[frame_index]
        state.restore(snapshot, self.analysis.calibration, self.analysis.frame_shape)
        if frame_index != self.current_frame:
            self.go_to_frame(frame_index)
        else:
            self._show_analysis_of_frame()
        record = self.review_record(frame_index, change)
        if restore is not None:
            record["restore_measurement_id"] = restore.get("measurement_id")
        basis = self.records_basis
        failure, stale = self._announce(self.frameAccepted if change == ACCEPT else self.measurementEdited,
                                        frame_index, record)
        if stale:
            return NOT_SAVED
        if failure is not None and rollback is not None:
            self._review_not_kept(state, failure, change, restore is not None, record, rollback)
            return NOT_SAVED
        if self.records_basis != basis:  # another value on record: the frame says whether its review is the exam's
            self._show_analysis_of_frame()
        if self._saved_row is not None:
            return {"measurement_id": self._saved_row}
        # Nothing written: an undo or redo has put ``restore`` back (its command keeps no state after it); a first do
        # leaves the records as they were, which are read (rare: the same review again).
        return restore if restore is not None else self._records_state()

    def _announce(self, signal, *args) -> tuple[str | None, bool]:
        """``signal(*args)`` emitted to the records layers (a review, a calibration), then what they made of it read
        back: the message of a save they refused (None: kept, or nothing to keep), and whether they refused it as made
        on a screen someone else's change has made stale (a ``ReviewConflict``: the screen then shows what they hold
        now, ``_show_records_now``)."""
        self._save_failure = self._save_conflict = self._saved_row = None
        signal.emit(*args)
        failure, self._save_failure = self._save_failure, None
        conflict, self._save_conflict = self._save_conflict, None
        if conflict is not None:
            self._show_records_now(conflict)
        return failure, conflict is not None

    def note_save_failure(self, message: str) -> None:
        """A records layer could not keep what the window just announced (a review, a calibration): the window puts
        the screen back as the records hold it (``_apply_review``, ``set_calibration``)."""
        self._save_failure = message

    def note_review_conflict(self, conflict) -> None:
        """A records layer refused the review just announced because someone else changed the exam's value since
        this screen read it (``workstation.records.ReviewConflict``: its one-line message, ``current``, ``recorded``):
        the window shows what the records hold now (``_show_records_now``)."""
        self._save_conflict = conflict

    def note_records_saved(self, exam_id: int, measurement_id: int, on_record: dict | None = None) -> None:
        """A records layer saved this window's own review or calibration as row ``measurement_id`` (the last one it
        wrote): the screen's reviews are based on it from now on (``records_basis``); ``on_record``: the exam's value
        on record after it (``workstation.records.review.record_state``; None: the one before stands), which says
        which frame's review is the exam's (``review_not_on_record``)."""
        self._saved_row = measurement_id
        if exam_id == self.exam_id and self.records_basis is not None:
            self.records_basis = {**self.records_basis, **(on_record or {}), "measurement_id": measurement_id}

    def _show_records_now(self, conflict) -> None:
        """Someone else changed the exam's value since this screen read it, and the records refused a review made on
        it: the screen shows what they hold now (their calibration, the person's review on record on its frame, the
        AI's values elsewhere), the undo history goes (its steps' records states are stale), the screen's reviews are
        based on the exam's current row from now on, and the banner gives the records' own message."""
        if self.analysis is None:
            return
        self.records_basis = {**(self.records_basis or {}), **record_state(conflict.current)}
        now = self._show_on_record(conflict.recorded)
        self.show_error(f"{conflict} This window now shows the value on record ({now}) and its undo history is "
                        "cleared; a review made here now is made on that value.")

    def _show_on_record(self, recorded: dict | None) -> str:
        """The screen as the records hold the exam (their calibration, the person's review on record ``recorded`` on
        its frame, the AI's values elsewhere), its undo history cleared (its steps' records states are stale); returns
        the value on record in a few words for the banner."""
        self._apply_calibration_on_record()
        for state in self.analysis.states.values():
            if state.is_corrected or state.confirmed:
                state.reset_to_ai()
        self._recorded = recorded
        frame = None if recorded is None else recorded["frame_index"]
        if frame is not None and frame in self.analysis.states:
            self._show_recorded(self.analysis.states[frame], recorded)
        if frame is not None and frame in self.analysis.states and frame != self.current_frame:
            self.go_to_frame(frame)
        else:
            self._show_analysis_of_frame()
        self._clear_history_pending = True
        if not self._pushing:  # a stack's undo/redo is running: clear once it has returned
            QtCore.QTimer.singleShot(0, self._clear_stale_history)
        if recorded is None:
            return "the AI's values"
        by = (f"accepted by {recorded['confirmed_by']}" if recorded.get("confirmed_by") else
              f"{recorded['kind']} by {recorded['by']}")
        return f"frame {frame}, {by}" + ("" if frame in self.analysis.states else " (not analysed here)")

    def _calibration_on_record(self) -> tuple[dict | None, Calibration | None] | None:
        """The exam's calibration on record now, read from the records (another person may have set one): the manual
        one they keep (``stored_calibration``, None: the file's) and the calibration that puts in force over the
        file's, None where its scale cannot be used (said when the exam was opened). None: no exam or no records."""
        if self.exam_id is None or self.stored_calibration is None or self.file_calibration is None:
            return None
        stored = self.stored_calibration(self.exam_id)
        try:
            return stored, self.file_calibration if stored is None else _with_stored(self.file_calibration, stored)
        except ValueError:
            return stored, None

    def _apply_calibration_on_record(self) -> None:
        """The screen in the calibration the records hold for the exam now (``_calibration_on_record``), which the
        screen's reviews are based on from now on."""
        on_record = self._calibration_on_record()
        if on_record is None:
            return
        stored, calibration = on_record
        self._note_calibration_basis(stored)
        if calibration is None or _same_scale(calibration, self.analysis.calibration):
            return  # unusable: the screen keeps its own; or the same scale: nothing to measure again
        self._put_calibration(calibration)
        self.show_calibration_status(stored)

    def _note_calibration_basis(self, stored: dict | None) -> None:
        """The screen is measured in the exam's calibration on record ``stored`` (the manual row read, None: the
        file's): its reviews are based on that row (``records_basis["calibration_id"]``), so that a calibration
        someone else sets after it makes the screen stale, as a change of the value on record does."""
        if self.records_basis is not None:
            self.records_basis = {**self.records_basis, "calibration_id": None if stored is None else stored.get("id")}

    def _clear_stale_history(self) -> None:
        """After a conflict: the undo history goes (run outside the stack's own undo/redo/push)."""
        if self._clear_history_pending:
            self._clear_history_pending = False
            self.undo_stack.clear()

    def _review_not_kept(self, state: FrameMeasurementState, failure: str, change: str, again: bool, record: dict,
                         rollback: dict) -> None:
        """The records refused a review step: the frame back as they hold it, the undo stack stepped back over the
        command (after the stack's own undo/redo has returned), and one banner saying what was not kept and how to
        get it back."""
        state.restore(rollback, self.analysis.calibration, self.analysis.frame_shape)
        if state.frame_index == self.current_frame:
            self._show_analysis_of_frame()
        else:
            self.go_to_frame(state.frame_index)
        frame = state.frame_index
        retry = "Redo again" if again else "Redo (Ctrl+Shift+Z) tries it again"
        if change == UNDO:
            what, retry = f"the undo on frame {frame}", "Undo again"
        elif change == ACCEPT:
            what = f"the acceptance of frame {frame} by {record.get('confirmed_by') or 'you'}"
        elif change == CORRECTION:
            values = _values_text(record.get("corrected") or {})
            what = f"the correction of frame {frame}" + (f" ({values})" if values else "")
            if not again:
                retry = "it is kept in the undo history: Redo (Ctrl+Shift+Z) puts it back and saves it"
        else:
            what = f"the reset of frame {frame} to the AI's values"
        now = ("accepted" if state.confirmed else "corrected, not accepted" if state.is_corrected
               else "the AI's values, not accepted")
        self.show_error(f"{failure}. {what[0].upper()}{what[1:]} is therefore not shown: frame {frame} is back as "
                        f"the records hold it ({now}); {retry} once the records can be written.")
        if not self._pushing:  # a stack's undo/redo: step its index back once it has returned
            QtCore.QTimer.singleShot(0, self._step_back_refused)

    def _step_back_refused(self) -> None:
        """After an undo or redo the records refused: move the stack's index back over that command without acting,
        so that the stack matches the screen (and the records) again."""
        stack = self.undo_stack
        index = stack.index()
        undone = stack.command(index) if index < stack.count() else None  # a refused undo: just past the index
        redone = stack.command(index - 1) if index > 0 else None  # a refused redo: just before it
        if isinstance(undone, ReviewCommand) and undone.not_saved:
            undone.step_back()
            stack.redo()
        elif isinstance(redone, ReviewCommand) and redone.not_saved:
            redone.step_back()
            stack.undo()

    # ------------------------------------------------------------------------------------------- calibration
    def start_manual_calibration(self) -> None:
        if self.cine is None or self._calibration_line is not None:
            return
        self.playback.pause()
        self._calibration_line = CalibrationLine(self.view.view_box, self.cine.frame_shape,
                                                 self.calibration_bar.set_length_px)
        # The file's own scale, which the bar compares a drawn one with (a warning where they differ by more than 5%).
        self.calibration_bar.set_file_calibration(self.file_calibration, self.cine.frame_shape)
        self.calibration_bar.show()

    def _end_manual_calibration(self) -> None:
        if self._calibration_line is not None:
            self._calibration_line.remove()
            self._calibration_line = None
        self.calibration_bar.hide()

    def _apply_manual_calibration(self, mm_per_px: float, mm: float, px: float) -> None:
        if self.cine is None:
            return
        user = self._user_or_ask()
        if not user:
            return
        line = ""
        if self._calibration_line is not None:
            (x0, y0), (x1, y1) = self._calibration_line.ends()
            line = f", line from ({x0:.0f}, {y0:.0f}) to ({x1:.0f}, {y1:.0f})"
        try:
            calibration = self.file_calibration.with_manual(
                mm_per_px, detail=f"drawn on the depth scale by {user}: {mm:g} mm over {px:.1f} px{line}")
        except ValueError as exc:
            self.show_error(f"Manual calibration refused: {exc}")
            return
        if not self.set_calibration(calibration):
            return  # not kept by the records: the line stays, to apply again once they can be written
        self._end_manual_calibration()
        self.statusBar().showMessage(f"Manual calibration: {describe_mm_per_px(mm_per_px)}; values recomputed", 8000)

    def _use_file_calibration(self) -> None:
        if self.cine is not None:
            if self.exam_id is not None and not self._user_or_ask():
                return  # an exam's records keep who went back to the file's calibration
            if not self.set_calibration(self.file_calibration):
                return
            self._end_manual_calibration()
            self.statusBar().showMessage(f"Calibration from the file ({self.file_calibration.source}); values "
                                         f"recomputed", 8000)

    def set_calibration(self, calibration: Calibration) -> bool:
        """A new calibration for this cine: every AI and corrected value recomputed from its geometry. Each frame a
        person reviewed is announced (``measurementEdited``, change "calibration"), so that a records panel keeps
        what the screen now shows: the new mm, and an acceptance withdrawn where its values changed. Before them,
        ``calibrationChanged`` announces the calibration itself, which a records panel keeps with the exam; where the
        records refuse it (a full disk, read-only records) the screen goes back to the calibration before, nothing
        else is announced, and False is returned; so too where someone else set the exam's calibration since the screen
        read it (a ``ReviewConflict``: the screen then shows the calibration and values on record)."""
        if self.analysis is None:
            return False
        reviewed = sorted(i for i, s in self.analysis.states.items() if s.is_corrected or s.confirmed)
        previous = self.analysis.calibration
        self._put_calibration(calibration)
        self._show_analysis_of_frame()
        self.show_calibration_status()
        failure, stale = self._announce(self.calibrationChanged, self.calibration_record(calibration))
        if stale:  # someone else set the exam's calibration meanwhile: the screen shows theirs
            return False
        if failure is not None:
            self._put_calibration(previous)
            self._show_analysis_of_frame()
            stored = (self.stored_calibration(self.exam_id)
                      if previous.manual is not None and self.exam_id is not None and self.stored_calibration else None)
            self.show_calibration_status(stored)
            self.show_error(f"{failure}. The screen is back to the calibration on record "
                            f"({CALIBRATION_NAMES.get(previous.source, previous.source)}) and its values.")
            return False
        self._calibration_saved(calibration)
        for frame_index in reviewed:
            failure, stale = self._announce(self.measurementEdited, frame_index,
                                            self.review_record(frame_index, CALIBRATION))
            if stale:  # someone else changed the exam meanwhile: the screen shows what is on record
                break
            if failure is not None:  # the calibration is kept; the screen goes back to what the records hold
                now = self._show_on_record(self._fetch_recorded())
                self.show_error(f"{failure}. The screen shows what the records hold: {now}, in the calibration on "
                                "record; its undo history is cleared.")
                break
        return True

    def _calibration_saved(self, calibration: Calibration) -> None:
        """A calibration set on screen was kept: where the exam's calibration on record now gives the same scale, the
        screen's reviews are based on it (someone else's set in between leaves the basis, and the next review is
        refused as made on a stale screen)."""
        on_record = None if self.records_basis is None else self._calibration_on_record()
        if on_record is not None and on_record[1] is not None and _same_scale(on_record[1], calibration):
            self._note_calibration_basis(on_record[0])

    def _put_calibration(self, calibration: Calibration) -> None:
        """The cine's calibration in force: its values measured in it, its pixels drawn in its shape."""
        self.analysis.set_calibration(calibration)
        self.cine.calibration = calibration
        self._show_in_patient_shape()

    def calibration_record(self, calibration: Calibration | None) -> dict:
        """What a records layer keeps of a calibration set on screen: the manual scale (None: the file's), how it was
        taken, who set it, and the file's own calibration it replaces."""
        manual = None if calibration is None else calibration.manual
        record = {"exam_id": self.exam_id, "file": None if self.path is None else str(self.path),
                  "mm_per_px": None if manual is None else manual.mm_per_px_x,
                  "detail": None if manual is None else manual.detail,
                  "acting_user": self.settings.user_name.strip() or None,
                  "file_calibration": self.file_calibration}
        if self.exam_id is not None and "calibration_id" in (self.records_basis or {}):
            # the calibration row the screen was measured in: one set elsewhere since makes this one stale
            record["based_on_calibration_id"] = self.records_basis["calibration_id"]
        return record

    # ------------------------------------------------------------------------------------------- settings
    def open_settings(self) -> None:
        SettingsDialog(self.settings, self).exec()

    def _settings_changed(self) -> None:
        self.overlays.apply_settings()
        self.calipers.apply_settings()
        self._ellipse_style = None  # apply_settings drew the ellipse solid: its style is set again below
        self.outline_action.setChecked(self.settings.mask_outlines)
        if self.cine is not None:
            self._show_analysis_of_frame()

    def set_overlay_visible(self, name: str, visible: bool) -> None:
        self.settings.set_overlay_visible(name, visible)
        self.overlays.set_visible(name, visible)
        self.calipers.set_visible(name, visible)
        action = self.overlay_actions.get(name)
        if action is not None and action.isChecked() != bool(visible):
            action.setChecked(bool(visible))

    def _set_mask_outlines(self, outlines: bool) -> None:
        self.settings.mask_outlines = outlines
        self.overlays.apply_settings()
        if self.cine is not None:
            self._show_analysis_of_frame()

    # ------------------------------------------------------------------------------------------- shutdown
    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop playback and every job (waiting for the threads), close the cine; safe to call twice."""
        if self._shut_down:
            return True
        self._shut_down = True
        self.playback.pause()
        if self._load_job is not None:
            self._load_job.cancel()
        self._cancel_analysis_job()
        stopped = all([step(timeout_ms) for step in self._shutdown_steps])
        stopped = self.load_pool.shutdown(timeout_ms) & self.analysis_pool.shutdown(timeout_ms) & stopped
        if self.cine is not None:
            self.cine.close()
        self.settings.sync()
        return stopped

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------------------------------------- for tests / tools
    def handle_viewport_pos(self, name: str) -> QtCore.QPoint:
        """Where a caliper handle is on the viewer's viewport (what a mouse would press)."""
        return self.view.mapFromScene(self.calipers.handle_scene_pos(name))

    def frame_to_viewport(self, x: float, y: float) -> QtCore.QPoint:
        return self.view.viewport_point(x, y)

