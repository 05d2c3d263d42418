"""The app's own start and exit, in a process of its own: opened on a file, closed by the user, exit status 0
with nothing on stderr about a crash (the ordered shutdown, the pinned PySide6)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from gui_support import write_demo


CLOSE_AFTER_ANALYSIS = """
import sys
from PySide6 import QtCore, QtWidgets
from workstation.gui import app

app.application()

def close_when_analysed():
    window = next(w for w in QtWidgets.QApplication.topLevelWidgets() if w.inherits("QMainWindow"))
    def done(cancelled):
        print("analysed", window.analysis.complete, len(window.analysis.states), flush=True)
        QtCore.QTimer.singleShot(200, window.close)
    window.analysisFinished.connect(done)

QtCore.QTimer.singleShot(0, close_when_analysed)
sys.exit(app.main([sys.argv[1]]))
"""


def test_the_window_opens_a_file_and_exits_cleanly_when_closed(tmp_path):
    dcm = write_demo(tmp_path)
    done = subprocess.run([sys.executable, "-c", CLOSE_AFTER_ANALYSIS, str(dcm)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
    assert "Fatal Python error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "analysed True 12" in done.stdout
