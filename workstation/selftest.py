"""``workstation --self-test``: prove an installation works, offline, in about a minute.

Run from source and from the built (PyInstaller) app. Each step is timed and printed; the exit status is 0
only when every step passed. Everything is written into a temporary folder that is removed afterwards, so
a ward laptop's records are never touched.

Steps: the shipped model's hash against its manifest; the DICOM decoders a scanner's compressed files need;
the demo cine analysed end to end; the exam filed in a scratch records database and its PDF report written;
the main window opened offscreen on the demo, analysed, screenshotted and closed. Meanwhile an audit hook
records every attempt to open an internet socket: any such attempt fails the self-test (the app must make
no network connection).
"""
from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

# Transfer syntaxes of the compressed ultrasound files the app must open (see workstation.io).
REQUIRED_DECODERS = {
    "JPEG baseline": "1.2.840.10008.1.2.4.50",
    "JPEG lossless": "1.2.840.10008.1.2.4.70",
    "JPEG-LS lossless": "1.2.840.10008.1.2.4.80",
    "JPEG 2000": "1.2.840.10008.1.2.4.91",
    "RLE lossless": "1.2.840.10008.1.2.5",
}
DEMO_FRAMES = 12


class NetworkWatch:
    """Records internet socket use through Python's audit hooks (an audit hook cannot be removed; it is
    switched off instead)."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.active = False

    def __call__(self, event: str, args) -> None:
        if not self.active:
            return
        if event in ("socket.connect", "socket.sendto", "socket.bind"):
            sock, address = args[0], args[1]
            if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
                self.attempts.append(f"{event} {address!r}")
        elif event == "socket.getaddrinfo":
            self.attempts.append(f"{event} {args[0]!r}")


def process_age_s() -> float | None:
    """Seconds since this process started (Linux), for the cold start figure."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
        return uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def step_model(ctx: dict) -> str:
    from workstation.inference.engine import load_model
    from workstation.inference.manifest import model_label

    model = load_model(None, device="cpu")  # verifies the sha256 against the manifest or raises
    ctx["model"] = model
    info = model.manifest.describe()
    placeholder = " (PLACEHOLDER model)" if info.get("placeholder") else ""
    head = model.head_specialist.manifest.describe() if model.head_specialist else None
    head_text = f"; head model {model_label(head['name'], head['version'])} sha256 {head['sha256'][:12]}... verified" if head else ""
    return f"{model_label(info['name'], info['version'])} sha256 {info['sha256'][:12]}... verified{placeholder}{head_text}"


def step_decoders(ctx: dict) -> str:
    from pydicom.pixels import get_decoder

    missing = [name for name, uid in REQUIRED_DECODERS.items() if not get_decoder(uid).is_available]
    if missing:
        raise RuntimeError(f"no working pixel decoder for {', '.join(missing)}")
    return f"{len(REQUIRED_DECODERS)} compressed transfer syntaxes decodable"


def step_analyze(ctx: dict) -> str:
    from workstation.inference.pipeline import analyze_cine
    from workstation.io import load
    from workstation.synthetic import write_demo_cine

    demo = write_demo_cine(ctx["tmp"] / "demo-cine.dcm", n_frames=DEMO_FRAMES)
    ctx["demo"] = Path(demo)
    cine = load(demo)
    try:
        result = analyze_cine(cine, ctx["model"])
    finally:
        cine.close()
    summary = result["summary"]
    if summary["chosen_frame"] is None or summary["aop_deg"] is None:
        raise RuntimeError(f"no AoP on the demo cine: {summary.get('why')}")
    return f"{len(result['frames'])} frames, chosen frame {summary['chosen_frame']}, AoP {summary['aop_deg']:.1f} deg"


def step_report(ctx: dict) -> str:
    from workstation.records.importer import import_scan
    from workstation.records.store import Records
    from workstation.reports import write_exam_report

    with Records(ctx["tmp"] / "data") as records:
        imported = import_scan(records, ctx["demo"], model=ctx["model"])  # filed under the demo's Patient ID
        pdf = write_exam_report(records, imported.exam.id, ctx["tmp"] / "selftest-report.pdf")
        problems = records.integrity_problems()
    if problems:
        raise RuntimeError(f"records database failed its integrity check: {problems}")
    head = Path(pdf).read_bytes()[:5]
    if head != b"%PDF-" or Path(pdf).stat().st_size < 2000:
        raise RuntimeError(f"{pdf} is not a complete PDF")
    return f"exam {imported.exam.id} filed, report {Path(pdf).stat().st_size // 1024} KiB"


def step_window(ctx: dict) -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from workstation.gui.app import main as gui_main

    shot = ctx["tmp"] / "selftest-window.png"
    said = io.StringIO()  # the screenshot's own line names its path: a scratch file, deleted when the self-test ends
    with contextlib.redirect_stdout(said):
        status = gui_main([str(ctx["demo"])], screenshot=str(shot))
    if status != 0:
        raise RuntimeError(f"the window exited with status {status}: {said.getvalue().strip()}")
    if not shot.exists() or shot.stat().st_size < 10_000:
        raise RuntimeError("the window's screenshot is missing or blank")
    where = f"screenshot kept at {shot}" if ctx.get("keep") else "screenshot checked"
    return f"opened offscreen on the demo, analysed, {where}, closed"


STEPS: list[tuple[str, Callable[[dict], str]]] = [
    ("model hash", step_model),
    ("DICOM decoders", step_decoders),
    ("analyse demo cine", step_analyze),
    ("records + PDF report", step_report),
    ("main window", step_window),
]


def run_self_test(out=sys.stdout, keep: str | None = None) -> int:
    """Run every step (a failed step does not stop the later ones that can still run); 0 when all passed."""
    watch = NetworkWatch()
    sys.addaudithook(watch)
    watch.active = True
    started = time.perf_counter()
    age = process_age_s()
    if age is not None:
        print(f"self-test: process start to self-test {age:.2f} s", file=out)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="workstation-selftest-") as tmp:
        ctx: dict = {"tmp": Path(keep) if keep else Path(tmp), "keep": bool(keep)}
        ctx["tmp"].mkdir(parents=True, exist_ok=True)
        os.environ["WORKSTATION_DATA_DIR"] = str(ctx["tmp"] / "data")  # never the ward's own records
        for name, step in STEPS:
            t0 = time.perf_counter()
            try:
                detail = step(ctx)
                status = "ok"
            except Exception as exc:  # a self-test reports every failure and carries on
                failures += 1
                status = "FAILED"
                detail = f"{type(exc).__name__}: {exc}"
                if os.environ.get("WORKSTATION_SELFTEST_TRACEBACK"):
                    traceback.print_exc()
            print(f"self-test: {status:6s} {name:22s} {time.perf_counter() - t0:6.2f} s  {detail}", file=out,
                  flush=True)
    watch.active = False
    if watch.attempts:
        failures += 1
        print(f"self-test: FAILED network               the app tried to use the network: {watch.attempts[:5]}",
              file=out)
    else:
        print("self-test: ok     network                 no internet socket opened", file=out)
    verdict = "PASSED" if failures == 0 else f"FAILED ({failures} step(s))"
    print(f"self-test: {verdict} in {time.perf_counter() - started:.1f} s", file=out, flush=True)
    return 0 if failures == 0 else 1
