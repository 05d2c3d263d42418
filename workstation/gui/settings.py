"""Per-user settings (QSettings in an INI file in the data folder) and the Settings dialog.

The file lives in ``workstation.paths.data_dir()``, so ``WORKSTATION_DATA_DIR`` moves it with the rest of the
user's data (the tests give every test its own). Settings: the user name that corrections and acceptances are
recorded under, the analysis device and model, overlay colours, opacity and visibility, recent files.
"""
from __future__ import annotations

import getpass
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from workstation.inference.engine import DEFAULT_MODEL, DEVICES, main_model_names
from workstation.paths import data_dir
from workstation.reports.overlays import COLOURS

# Overlay elements a person can switch on and off, with their menu text (View menu, in this order).
OVERLAYS = {
    "masks": "PS and FH masks",
    "ps_axis": "PS long axis and inferior end",
    "aop": "AoP tangent and angle",
    "hsd": "HSD line",
    "head_ellipse": "Head ellipse",
    "uncertainty": "Uncertainty map",
}
# Colours a person can change: the report overlays' palette (PDF and screen agree) plus the two mask tints.
DEFAULT_COLOURS = {**COLOURS, "ps_mask": (255, 200, 0), "fh_mask": (60, 230, 120)}
COLOUR_NAMES = {
    "ps_axis": "PS long axis", "inferior_end": "PS inferior end", "tangent": "AoP tangent and arc", "hsd": "HSD line",
    "head_ellipse": "Head ellipse", "ps_mask": "PS mask", "fh_mask": "FH mask",
}
MAX_RECENT = 10


def _as_bool(value, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _as_float(value, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


class Settings(QtCore.QObject):
    """Typed access to the settings file; ``changed`` fires after the dialog saves."""

    changed = QtCore.Signal()

    def __init__(self, path: str | Path | None = None, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.path = Path(path) if path else data_dir() / "settings.ini"
        self._q = QtCore.QSettings(str(self.path), QtCore.QSettings.Format.IniFormat)

    def sync(self) -> None:
        self._q.sync()

    # -- who ----------------------------------------------------------------------------------------
    @property
    def user_name(self) -> str:
        value = self._q.value("user/name")
        if value is None:
            try:
                return getpass.getuser()
            except (KeyError, OSError):  # no login name (a container, a service account)
                return ""
        return str(value)

    @user_name.setter
    def user_name(self, name: str) -> None:
        self._q.setValue("user/name", name.strip())

    # -- analysis -----------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        value = str(self._q.value("analysis/device", "auto"))
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, device: str) -> None:
        if device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}")
        self._q.setValue("analysis/device", device)

    @property
    def model(self) -> str:
        return str(self._q.value("analysis/model", DEFAULT_MODEL) or DEFAULT_MODEL)

    @model.setter
    def model(self, name: str) -> None:
        self._q.setValue("analysis/model", name.strip() or DEFAULT_MODEL)

    # -- overlays -----------------------------------------------------------------------------------
    def colour(self, element: str) -> tuple[int, int, int]:
        value = self._q.value(f"overlay/colour/{element}")
        colour = QtGui.QColor(str(value)) if value else None
        if colour is None or not colour.isValid():
            return DEFAULT_COLOURS[element]
        return (colour.red(), colour.green(), colour.blue())

    def set_colour(self, element: str, rgb: tuple[int, int, int]) -> None:
        self._q.setValue(f"overlay/colour/{element}", QtGui.QColor(*rgb).name())

    @property
    def mask_opacity(self) -> float:
        return min(1.0, max(0.0, _as_float(self._q.value("overlay/mask_opacity"), 0.35)))

    @mask_opacity.setter
    def mask_opacity(self, value: float) -> None:
        self._q.setValue("overlay/mask_opacity", round(min(1.0, max(0.0, float(value))), 3))

    @property
    def uncertainty_opacity(self) -> float:
        return min(1.0, max(0.0, _as_float(self._q.value("overlay/uncertainty_opacity"), 0.6)))

    @uncertainty_opacity.setter
    def uncertainty_opacity(self, value: float) -> None:
        self._q.setValue("overlay/uncertainty_opacity", round(min(1.0, max(0.0, float(value))), 3))

    @property
    def mask_outlines(self) -> bool:
        """Masks drawn as outlines instead of tinted fills."""
        return _as_bool(self._q.value("overlay/mask_outlines"), False)

    @mask_outlines.setter
    def mask_outlines(self, value: bool) -> None:
        self._q.setValue("overlay/mask_outlines", bool(value))

    def overlay_visible(self, name: str) -> bool:
        # The uncertainty map covers the anatomy, so it starts hidden; every measurement overlay starts shown.
        return _as_bool(self._q.value(f"overlay/visible/{name}"), name != "uncertainty")

    def set_overlay_visible(self, name: str, visible: bool) -> None:
        self._q.setValue(f"overlay/visible/{name}", bool(visible))

    # -- files and playback -------------------------------------------------------------------------
    @property
    def recent_files(self) -> list[str]:
        value = self._q.value("files/recent")
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value else []
        return [str(v) for v in value if v]

    def add_recent_file(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        files = [path] + [f for f in self.recent_files if f != path]
        self._q.setValue("files/recent", files[:MAX_RECENT])

    @property
    def loop(self) -> bool:
        return _as_bool(self._q.value("playback/loop"), True)

    @loop.setter
    def loop(self, value: bool) -> None:
        self._q.setValue("playback/loop", bool(value))


class ColourButton(QtWidgets.QPushButton):
    """A button showing a colour; clicking it opens a colour chooser."""

    def __init__(self, rgb: tuple[int, int, int], title: str, parent=None):
        super().__init__(parent)
        self.title = title
        self.setFixedWidth(64)
        self.set_rgb(rgb)
        self.clicked.connect(self._choose)

    def set_rgb(self, rgb: tuple[int, int, int]) -> None:
        self.rgb = tuple(int(c) for c in rgb)
        self.setStyleSheet(f"background-color: {QtGui.QColor(*self.rgb).name()}; border: 1px solid #888;")
        self.setToolTip(f"{self.title}: {QtGui.QColor(*self.rgb).name()}")

    def _choose(self) -> None:
        colour = QtWidgets.QColorDialog.getColor(QtGui.QColor(*self.rgb), self, self.title)
        if colour.isValid():
            self.set_rgb((colour.red(), colour.green(), colour.blue()))


class SettingsDialog(QtWidgets.QDialog):
    """User name, device, model, overlay colours and opacities; OK saves and tells the window."""

    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Settings")
        form = QtWidgets.QFormLayout()
        self.user_edit = QtWidgets.QLineEdit(settings.user_name)
        self.user_edit.setPlaceholderText("the name corrections and acceptances are recorded under")
        form.addRow("User name", self.user_edit)
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.addItems(["auto", "cpu", "gpu"])
        self.device_combo.setCurrentText(settings.device)
        form.addRow("Analysis device", self.device_combo)
        self.model_combo = QtWidgets.QComboBox()
        self.model_combo.setEditable(True)  # a manifest path also works
        self.model_combo.addItems(main_model_names())
        self.model_combo.setCurrentText(settings.model)
        form.addRow("Model", self.model_combo)
        self.mask_opacity = self._percent_spin(settings.mask_opacity)
        form.addRow("Mask opacity", self.mask_opacity)
        self.uncertainty_opacity = self._percent_spin(settings.uncertainty_opacity)
        form.addRow("Uncertainty map opacity", self.uncertainty_opacity)
        self.outlines_check = QtWidgets.QCheckBox("Draw masks as outlines")
        self.outlines_check.setChecked(settings.mask_outlines)
        form.addRow("", self.outlines_check)
        colours = QtWidgets.QGridLayout()
        self.colour_buttons: dict[str, ColourButton] = {}
        for row, (element, name) in enumerate(COLOUR_NAMES.items()):
            button = ColourButton(settings.colour(element), name)
            self.colour_buttons[element] = button
            colours.addWidget(QtWidgets.QLabel(name), row // 2, 2 * (row % 2))
            colours.addWidget(button, row // 2, 2 * (row % 2) + 1)
        reset = QtWidgets.QPushButton("Default colours")
        reset.clicked.connect(self._default_colours)
        colours.addWidget(reset, (len(COLOUR_NAMES) + 1) // 2, 0, 1, 2)
        box = QtWidgets.QGroupBox("Overlay colours")
        box.setLayout(colours)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(box)
        note = QtWidgets.QLabel("A new device or model applies to the next analysis (Analysis > Re-analyse).")
        note.setWordWrap(True)
        layout.addWidget(note)
        layout.addWidget(buttons)

    @staticmethod
    def _percent_spin(value: float) -> QtWidgets.QSpinBox:
        spin = QtWidgets.QSpinBox()
        spin.setRange(0, 100)
        spin.setSuffix(" %")
        spin.setValue(round(value * 100))
        return spin

    def _default_colours(self) -> None:
        for element, button in self.colour_buttons.items():
            button.set_rgb(DEFAULT_COLOURS[element])

    def accept(self) -> None:
        self.settings.user_name = self.user_edit.text()
        self.settings.device = self.device_combo.currentText()
        self.settings.model = self.model_combo.currentText()
        self.settings.mask_opacity = self.mask_opacity.value() / 100.0
        self.settings.uncertainty_opacity = self.uncertainty_opacity.value() / 100.0
        self.settings.mask_outlines = self.outlines_check.isChecked()
        for element, button in self.colour_buttons.items():
            self.settings.set_colour(element, button.rgb)
        self.settings.sync()
        self.settings.changed.emit()
        super().accept()
