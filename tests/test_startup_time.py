"""``workstation --startup-time``: the real window starts, is painted once, and the time since the process started is
printed as one line; the process closes in order and exits 0. No timing threshold: machines differ (the packaged
app's figure is reported by ``make package-check``)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

LINE = re.compile(r"^startup: window shown (\d+(?:\.\d+)?) s after the process started \(import (\d+(?:\.\d+)?) s")


def test_startup_time_prints_the_seconds_to_the_first_paint_and_exits_cleanly(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "WORKSTATION_DATA_DIR": str(tmp_path / "data")}
    run = subprocess.run([sys.executable, "-m", "workstation", "--startup-time"], env=env, capture_output=True,
                         text=True, timeout=180)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    lines = [line for line in run.stdout.splitlines() if line.startswith("startup:")]
    assert len(lines) == 1, report
    match = LINE.match(lines[0])
    assert match, lines[0]
    shown, imported = float(match.group(1)), float(match.group(2))
    assert shown > 0 and imported > 0, lines[0]
    assert imported <= shown, lines[0]
    assert "Traceback" not in run.stderr and "Fatal Python error" not in run.stderr, report
    # it ran on the data folder it was given (the window's settings live there), never the person's own
    assert (tmp_path / "data").is_dir()


def test_startup_time_is_in_the_help():
    run = subprocess.run([sys.executable, "-m", "workstation", "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    assert "--startup-time" in run.stdout
