"""``workstation --self-test``: every step runs for real, and the network watch really catches a connection."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from workstation.selftest import NetworkWatch


def test_network_watch_catches_an_internet_connection_attempt():
    watch = NetworkWatch()
    sys.addaudithook(watch)
    watch.active = True
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(("127.0.0.1", 9))  # discard port: refused or not, the attempt is what counts
            except OSError:
                pass
    finally:
        watch.active = False
    assert any("socket.connect" in attempt and "127.0.0.1" in attempt for attempt in watch.attempts)


def _no_network_prefix() -> list[str]:
    if shutil.which("unshare"):
        for prefix in (["unshare", "--net", "--map-root-user"], ["unshare", "--net"]):
            if subprocess.run(prefix + ["true"], capture_output=True).returncode == 0:
                return prefix
    return []


def test_self_test_passes_from_source_with_networking_cut_off(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "WORKSTATION_DATA_DIR": str(tmp_path / "data")}
    prefix = _no_network_prefix()
    run = subprocess.run(prefix + [sys.executable, "-m", "workstation", "--self-test"], env=env,
                         capture_output=True, text=True, timeout=300)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    steps = [line for line in run.stdout.splitlines() if line.startswith("self-test: ok")]
    assert len(steps) == 6, report  # model, decoders, analysis, report, window, network
    # Where unshare cannot cut the network, the self-test's own watch is what proves no socket was opened.
    assert any(line.split()[2:3] == ["network"] and "no internet socket opened" in line for line in steps), report
    assert "FAILED" not in run.stdout
    # Review 30: no path is printed to a file the self-test has already deleted with its scratch folder.
    assert "selftest-window.png" not in report and "workstation-selftest-" not in report, report
    # the self-test works in a scratch folder: nothing lands in the person's data folder
    assert not (tmp_path / "data" / "records").exists()


def test_the_window_step_names_its_screenshot_only_where_it_is_kept(tmp_path, monkeypatch, capsys):
    """The screenshot lies in the self-test's scratch folder, deleted at its end: its path is printed only where the
    folder is kept (``run_self_test(keep=...)``), never a path that no longer exists."""
    import workstation.gui.app as app
    from workstation import selftest

    def fake_main(files, screenshot):
        from pathlib import Path

        Path(screenshot).write_bytes(b"\x89PNG" + bytes(20_000))
        print(f"{screenshot}: the chosen frame")  # as take_screenshot prints it
        return 0

    monkeypatch.setattr(app, "main", fake_main)
    detail = selftest.step_window({"tmp": tmp_path, "demo": tmp_path / "demo.dcm"})
    assert str(tmp_path) not in detail + capsys.readouterr().out and "screenshot" in detail
    kept = selftest.step_window({"tmp": tmp_path, "demo": tmp_path / "demo.dcm", "keep": True})
    assert str(tmp_path / "selftest-window.png") in kept and (tmp_path / "selftest-window.png").exists()
