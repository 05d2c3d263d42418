"""Offline sonographer workstation for labor ward (intrapartum transperineal) ultrasound.

Everything except :mod:`workstation.gui` is Qt-free (an import-linter contract in
pyproject.toml enforces it), so every operation is reachable headless.
"""

__version__ = "0.1.0"
