"""How responsive the window stays while it analyses: the longest UI-thread stall and the display frame rate.

``python -m workstation.gui.bench`` (or ``workstation bench --gui``) opens the window (offscreen unless
``--show``) on the demo cine or a file, plays it while the analysis runs, and reports:

- the longest UI-thread stall: a 5 ms timer on the UI thread records the gaps between its ticks; the longest gap
  is the longest time the window could not react (the timer's own 5 ms included);
- the display frame rate: frames put on screen per second (``frameShown``) and frames the viewer actually
  painted per second, against the rate asked for (the file's frame rate times the playback speed).

Each speed is measured over one full analysis of the cine (the analysis is restarted for the next speed). Speed 0
is the window paused on a frame: the stall then is the analysis' cost to the UI alone; while playing, the UI
thread's own work per displayed frame (decode, overlays, paint) adds to it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from workstation.inference.manifest import model_label


class StallProbe:
    """Gaps between the ticks of a timer on the UI thread (a stalled UI thread delays the next tick)."""

    def __init__(self, interval_ms: int = 5):
        from PySide6 import QtCore

        self.interval_ms = interval_ms
        self.timer = QtCore.QTimer()
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps_s: list[float] = []
        self._last = 0.0

    def start(self) -> None:
        self.gaps_s.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self._tick()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps_s.append(now - self._last)
        self._last = now

    @property
    def longest_ms(self) -> float:
        return 1000.0 * max(self.gaps_s, default=0.0)

    def percentile_ms(self, q: float) -> float:
        return 1000.0 * float(np.percentile(self.gaps_s, q)) if self.gaps_s else 0.0


def measure_while_analysing(app, window, speed: float, timeout_s: float = 600.0) -> dict:
    """Play ``window``'s cine at ``speed`` while its analysis runs from the start; stall and frame-rate figures."""
    from workstation.gui.app import wait_for

    shown: list[int] = []
    finished: list[bool] = []
    window.frameShown.connect(shown.append)
    window.analysisFinished.connect(finished.append)
    if speed:
        window.set_speed(speed)
    window.playback.loop = True
    probe = StallProbe()
    paints_before = window.view.image.paint_count
    window.reanalyse()
    if speed:
        window.playback.play()
    probe.start()
    start = time.perf_counter()
    completed = wait_for(app, lambda: bool(finished), timeout_s)
    elapsed = time.perf_counter() - start
    probe.stop()
    window.playback.pause()
    window.frameShown.disconnect(shown.append)
    window.analysisFinished.disconnect(finished.append)
    target = (window.cine.fps or 0.0) * speed
    shown_per_s = round(len(shown) / elapsed, 1) if elapsed > 0 and speed else None
    painted_per_s = round((window.view.image.paint_count - paints_before) / elapsed, 1) if elapsed > 0 and speed \
        else None
    return {
        "speed": speed,
        "analysis_complete": completed and window.analysis.complete,
        "frames_analysed": len(window.analysis.states),
        "analysis_s": round(elapsed, 3),
        "longest_stall_ms": round(probe.longest_ms, 1),
        "stall_p99_ms": round(probe.percentile_ms(99), 1),
        "target_fps": round(target, 1),
        "frames_shown_per_s": shown_per_s,
        "frames_painted_per_s": painted_per_s,
    }


def run_gui_bench(file: str | None = None, speeds=(0.0, 1.0, 2.0), model_provider=None, frames: int = 48,
                  timeout_s: float = 600.0) -> dict:
    """Open ``file`` (default: a demo cine of ``frames`` frames) and measure at each speed."""
    from workstation.gui.app import application, close_window, wait_for
    from workstation.gui.main_window import MainWindow

    app = application()
    window = MainWindow(model_provider=model_provider)
    try:
        window.resize(1440, 900)
        window.show()
        if file is None:
            from workstation.paths import data_dir
            from workstation.synthetic import write_demo_cine

            path = data_dir() / "bench" / f"demo-{frames}.dcm"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_demo_cine(path, n_frames=frames)
            file = str(path)
        first: list[bool] = []
        window.analysisFinished.connect(first.append)
        window.open_file(file)
        # The first analysis also opens the model's session: wait it out, so it is not counted as a stall.
        if not wait_for(app, lambda: bool(first) or (window.cine is None and window.error_banner.text), timeout_s):
            raise RuntimeError("the first analysis did not finish")
        if window.cine is None:
            raise RuntimeError(window.error_banner.text)
        window.analysisFinished.disconnect(first.append)
        cine = window.cine
        runs = [measure_while_analysing(app, window, speed, timeout_s) for speed in speeds]
        return {"file": file, "frames": cine.n_frames, "frame_shape": list(cine.frame_shape),
                "file_fps": round(cine.fps or 0.0, 2), "model": window.model_info,
                "platform": app.platformName(), "cpu_count": os.cpu_count(), "runs": runs}
    finally:
        close_window(app, window)


def print_report(result: dict) -> None:
    model = result.get("model") or {}
    print(f"cine      {result['file']}: {result['frames']} frames {result['frame_shape'][1]}x{result['frame_shape'][0]}"
          f" at {result['file_fps']:g} fps")
    print(f"model     {model_label(model.get('name', '?'), model.get('version', ''))} on {model.get('device', '?')}, "
          f"{model.get('threads', '?')} threads ({result['cpu_count']} cores, Qt platform {result['platform']})")
    for run in result["runs"]:
        what = f"playing at {run['speed']:g}x" if run["speed"] else "paused    "
        line = (f"{what}  analysis {run['frames_analysed']} frames in {run['analysis_s']:.1f} s; "
                f"longest UI stall {run['longest_stall_ms']:.0f} ms (p99 {run['stall_p99_ms']:.0f} ms)")
        if run["speed"]:
            line += (f"; display {run['frames_shown_per_s']:.1f} frames/s shown, {run['frames_painted_per_s']:.1f} "
                     f"painted (asked {run['target_fps']:.1f})")
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workstation.gui.bench", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="a scan to play (default: the demo cine)")
    parser.add_argument("--frames", type=int, default=48, help="frames of the demo cine (default 48)")
    parser.add_argument("--speeds", default="0,1,2",
                        help="playback speeds to measure, comma-separated; 0 = paused (default 0,1,2)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--show", action="store_true", help="show the window (default: offscreen)")
    args = parser.parse_args(argv)
    if not args.show:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    speeds = tuple(float(s) for s in args.speeds.split(",") if s.strip())
    result = run_gui_bench(args.file, speeds=speeds, frames=args.frames)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
