"""Crash safety for real: a child process saving in a loop is SIGKILLed at random moments, several times.

After each kill the database must pass ``PRAGMA integrity_check`` (and the foreign-key check), hold every
save the child reported committed, never shrink, keep every analysis whole (all its frame rows), and
reference only complete scan copies (content hash verified).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from records_support import add_ai_row, demo_exam_file, synthetic_measurement
from workstation.inference.manifest import file_sha256
from workstation.records import Records, import_scan

KILLS_PER_MODE = 4

# The child: opens the records, prints "ready", then saves in a loop, appending each committed id to LOG.
CHILD = r"""
import os, sys, time, json
from pathlib import Path
from workstation.records import Records, import_scan, correct

mode, data_dir, base_file, exam_id, log_path, geometry = sys.argv[1:7]
records = Records(data_dir)
log = open(log_path, "a")
print("ready", flush=True)
base = Path(base_file).read_bytes()
geometry = json.loads(geometry)
frames = [{"index": i, "time_s": i * 0.04, "frame_class": "standard_plane", "aop_deg": 110 + i * 0.01,
           "hsd_px": 50.0, "hsd_mm": 10.0, "uncertainty": 0.2, "geometry": geometry, "reasons": {}}
          for i in range(400)]
analysis = {"model": {"name": "crash", "version": "1", "sha256": "0" * 64, "placeholder": True},
            "summary": {"chosen_frame": 3, "why": "test"}, "frames": frames}
pool = Path(log_path).with_suffix(".pool")
pool.mkdir(exist_ok=True)
while True:
    if mode == "import":
        # A new scan every time: the base file with its last pixels changed (still a valid DICOM).
        variant = pool / f"{time.time_ns()}.dcm"
        variant.write_bytes(base[:-8] + time.time_ns().to_bytes(8, "little"))
        saved = import_scan(records, variant).exam.id
    elif mode == "analysis":
        saved = records.save_analysis(int(exam_id), analysis).id
    else:
        saved = correct(records, int(exam_id), 1, geometry, "Dr Crash").id
    log.write(f"{saved}\n")
    log.flush()
"""

SAVED_TABLE = {"import": "exams", "analysis": "analyses", "measurement": "measurements"}


def _child_env() -> dict:
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run_and_kill(argv: list[str], delay_s: float) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=_child_env(), text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "ready", f"child did not start: {line!r} {child.stderr.read()}"
        time.sleep(delay_s)
        assert child.poll() is None, f"child died by itself: {child.stderr.read()}"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


def _check_consistent(records: Records) -> None:
    assert records.integrity_problems() == []
    conn = records._conn
    for analysis_id, n_frames, stored in conn.execute(
            "SELECT a.id, a.n_frames, (SELECT COUNT(*) FROM frame_results f WHERE f.analysis_id = a.id) "
            "FROM analyses a"):
        assert stored == n_frames, f"analysis {analysis_id} holds {stored} of its {n_frames} frame rows"
    for (exam_id,) in conn.execute("SELECT id FROM exams"):
        exam = records.exam(exam_id)
        assert ".partial-" not in exam.file_relpath
        assert file_sha256(records.file_path(exam)) == exam.file_sha256, f"exam {exam_id}: copy incomplete"
    orphan_ai = conn.execute("SELECT COUNT(*) FROM measurements m WHERE m.analysis_id IS NOT NULL AND NOT EXISTS "
                             "(SELECT 1 FROM analyses a WHERE a.id = m.analysis_id)").fetchone()[0]
    assert orphan_ai == 0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["import", "analysis", "measurement"])
def test_sigkill_mid_save_loses_nothing_committed_and_corrupts_nothing(tmp_path, mode):
    data = tmp_path / "data"
    base = demo_exam_file(tmp_path / "usb", seed=0)
    with Records(data) as records:
        exam = import_scan(records, base).exam
        add_ai_row(records, exam.id, 1)
    geometry = synthetic_measurement(3)["geometry"]
    log = tmp_path / f"{mode}.log"
    rng = random.Random(f"crash-{mode}")
    argv = [mode, str(data), str(base), str(exam.id), str(log), json.dumps(geometry)]
    previous = 0
    for _ in range(KILLS_PER_MODE):
        _run_and_kill(argv, rng.uniform(0.15, 0.6))
        committed = [int(x) for x in log.read_text().split()] if log.exists() else []
        with Records(data) as records:  # opening recovers the WAL, as the next app start would
            _check_consistent(records)
            ids = {r[0] for r in records._conn.execute(f"SELECT id FROM {SAVED_TABLE[mode]}")}
        count = len(ids)
        assert set(committed) <= ids, "a save the child reported committed is missing"
        assert count >= previous, "the records shrank"
        previous = count
    assert previous > 1 + KILLS_PER_MODE, f"the child saved too little to test anything ({previous} rows)"
