"""The worker pool on its own: results by signal, cooperative cancel, bounded back-pressure, one session per model."""
from __future__ import annotations

import math

import pytest

from gui_support import DEMO_FRAMES, OracleModel, no_leftover_jobs, write_demo  # noqa: E402,F401
from workstation.calibration import Calibration  # noqa: E402
from workstation.inference.pipeline import FRAMES_PER_BATCH  # noqa: E402
from workstation.gui.workers import (AnalysisJob, LoadCineJob, ModelCache, WorkerPool,  # noqa: E402
                                     analysis_threads)

pytestmark = pytest.mark.usefixtures("no_leftover_jobs")


@pytest.fixture(scope="module")
def demo_dcm(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("cine"))


@pytest.fixture
def pool(qapp):
    pool = WorkerPool("test", 1)
    yield pool
    assert pool.shutdown(5000)
    pool.deleteLater()


def test_results_arrive_by_signal_compact_and_in_order(qtbot, pool, demo_dcm):
    job = AnalysisJob(demo_dcm, Calibration(), lambda: OracleModel())
    results = []
    job.signals.frameAnalysed.connect(lambda job_id, frame: (results.append(frame), job.consumed()))
    with qtbot.waitSignal(job.signals.finished, timeout=30_000) as finished:
        pool.start(job)
    assert finished.args == [job.id, False]
    assert [r.result.index for r in results] == list(range(DEMO_FRAMES))
    # Only compact maps cross to the UI thread: no full-resolution arrays in the result.
    assert all(r.result.labels is None and r.result.uncertainty_map is None for r in results)
    assert results[0].maps.labels().shape == (480, 640) and results[0].result.measurements["aop_deg"] is not None


def test_an_unconsumed_analysis_waits_at_its_bound_then_cancels(qtbot, pool, demo_dcm):
    job = AnalysisJob(demo_dcm, Calibration(), lambda: OracleModel(), max_pending=3)
    received = []
    job.signals.frameAnalysed.connect(lambda job_id, frame: received.append(frame))  # never consumed
    pool.start(job)
    qtbot.waitUntil(lambda: len(received) == 3, timeout=20_000)
    qtbot.wait(300)
    assert len(received) == 3  # held at the bound: the UI decides the pace, memory stays flat
    with qtbot.waitSignal(job.signals.finished, timeout=5000) as finished:
        job.cancel()
    assert finished.args == [job.id, True] and len(received) == 3
    qtbot.waitUntil(lambda: not pool.busy(), timeout=5000)


def test_a_load_error_comes_back_as_one_message(qtbot, pool, tmp_path):
    missing = tmp_path / "nowhere.dcm"
    job = LoadCineJob(missing)
    with qtbot.waitSignal(job.signals.failed, timeout=10_000) as failed:
        pool.start(job)
    assert failed.args == [job.id, f"{missing}: no such file or folder"]
    qtbot.waitUntil(lambda: not pool.busy(), timeout=5000)


def test_an_unexpected_exception_names_what_failed(qtbot, pool, demo_dcm):
    job = AnalysisJob(demo_dcm, Calibration(), lambda: OracleModel(fail_at=1))
    with qtbot.waitSignal(job.signals.failed, timeout=10_000) as failed:
        pool.start(job)
    assert failed.args[1] == "analysis failed: RuntimeError: the oracle was told to fail"
    qtbot.waitUntil(lambda: not pool.busy(), timeout=5000)


def test_shutdown_stops_a_running_job(qtbot, pool, demo_dcm):
    slow = OracleModel(delay_s=0.2)
    job = AnalysisJob(demo_dcm, Calibration(), lambda: slow)
    job.signals.frameAnalysed.connect(lambda job_id, frame: job.consumed())
    started = []
    job.signals.modelReady.connect(lambda *args: started.append(True))
    pool.start(job)
    qtbot.waitUntil(lambda: bool(started), timeout=10_000)
    assert pool.shutdown(5000) and job.is_cancelled() and not pool.busy()
    # The job saw the cancel: it stopped before asking for its last batch.
    assert slow.batches < math.ceil(DEMO_FRAMES / FRAMES_PER_BATCH)


def test_one_session_per_model_and_device_reused(qapp):
    cache = ModelCache()
    first = cache.get(None, "cpu")
    assert cache.get(None, "cpu") is first
    # Threads set explicitly, one core left to the UI.
    assert first.threads == analysis_threads() and first.session.get_session_options().intra_op_num_threads == \
        analysis_threads()
