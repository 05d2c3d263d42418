"""Where the workstation finds its models and resources and keeps per-user data.

Per-user data live in the platformdirs data folder; ``WORKSTATION_DATA_DIR`` overrides
it (tests and portable installs use that). Shipped models and resources sit beside the
package in a source checkout, or in the PyInstaller bundle's folder when frozen.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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


@contextmanager
def replacing(target: str | Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; it becomes ``target`` only when the block ends without an
    error, so a failed or interrupted write (a full disk, a pulled stick, a kill) leaves an earlier file whole."""
    target = Path(target)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        yield partial
        os.replace(partial, target)
    except OSError as exc:
        if exc.filename not in (str(partial), partial):
            raise
        # Name the file the person asked for, not the temporary one.
        raise type(exc)(exc.errno, exc.strerror, str(target)) from exc
    finally:
        partial.unlink(missing_ok=True)
