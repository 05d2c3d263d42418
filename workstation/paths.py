"""Where the workstation finds its models and resources and keeps per-user data.

Per-user data live in the platformdirs data folder; ``WORKSTATION_DATA_DIR`` overrides
it (tests and portable installs use that). Shipped models and resources sit beside the
package in a source checkout, or in the PyInstaller bundle's folder when frozen.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "workstation"


def install_root() -> Path:
    """The folder holding ``models/`` and ``resources/``: the bundle when frozen, else the checkout."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle)
    return Path(__file__).resolve().parents[1]


def data_dir(create: bool = True) -> Path:
    override = os.environ.get("WORKSTATION_DATA_DIR")
    if override:
        path = Path(override)
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    if create:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def shipped_models_dir() -> Path:
    return Path(os.environ.get("WORKSTATION_MODELS_DIR", install_root() / "models"))


def user_models_dir() -> Path:
    """Models a user dropped in (for example a LaborView export with its manifest)."""
    return data_dir(create=False) / "models"


def resources_dir() -> Path:
    return install_root() / "resources"
