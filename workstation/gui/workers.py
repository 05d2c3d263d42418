"""File loading and analysis off the UI thread: QRunnable jobs on QThreadPools, results by signal.

A job's signals live on a small QObject (``JobSignals``) created on the UI thread, so every emit from a pool
thread arrives on the UI thread as a queued call (the superqt/napari pattern: a QRunnable cannot carry signals
itself). Every signal carries the job's id, so results of a job that was cancelled (a closed cine) are told apart
from the current one's and dropped.

Cancellation is cooperative: ``Job.cancel()`` sets an event the work checks between frames (the pipeline takes a
``cancelled`` callable). Back-pressure: an analysis job holds at most ``max_pending`` results the UI has not yet
taken (a semaphore the UI releases per result), and emits them compact (label map PNG, quarter-size uncertainty),
so a long cine neither floods the event queue nor grows memory with full-resolution maps.

One ONNX Runtime session per model and device (``ModelCache``), opened on first use in a pool thread with its
intra-op threads set to leave one core for the UI, then reused. Analysis runs on a pool of one thread, so a single
session never serves two cines at once; a new cine's analysis starts once the cancelled one has stopped (at most
one batch of frames later).
"""
from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6 import QtCore

from workstation.calibration import Calibration
from workstation.cine_review import FrameMaps, compact
from workstation.errors import WorkstationError
from workstation.inference.pipeline import FrameResult, iter_frame_results

log = logging.getLogger(__name__)
_job_ids = itertools.count(1)


def analysis_threads() -> int:
    """ONNX Runtime intra-op threads for the window: every core but one (kept for the UI), at most 4."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def lower_thread_priority(niceness: int = 10) -> None:
    """Make the calling thread yield the CPU to the UI thread when both want it (Linux: a thread has its own nice
    value; elsewhere nothing happens). The analysis still gets every core the UI leaves idle."""
    if not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), max(current, niceness))
    except OSError:  # not allowed here: run at the normal priority
        pass


class ModelCache:
    """One model (one InferenceSession) per (name, device), created once and reused; thread-safe."""

    def __init__(self, threads: int | None = None):
        self.threads = threads or analysis_threads()
        self._models: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def get(self, name: str | None, device: str = "auto"):
        from workstation.inference.engine import load_model

        key = (name or "", device)
        with self._lock:  # two jobs asking at once still open one session
            model = self._models.get(key)
            if model is None:
                model = load_model(name, device=device, threads=self.threads)
                self._models[key] = model
            return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


@dataclass
class AnalysedFrame:
    """One frame's result as it crosses to the UI thread: no full-resolution maps."""

    result: FrameResult
    maps: FrameMaps | None
    calibration: Calibration  # the calibration its mm values were computed with


class JobSignals(QtCore.QObject):
    """The signals of one job; the first argument of each is the job's id."""

    loaded = QtCore.Signal(int, object)  # LoadCineJob: the Cine
    modelReady = QtCore.Signal(int, object)  # AnalysisJob: the model's description (name, version, placeholder, ...)
    frameAnalysed = QtCore.Signal(int, object)  # AnalysisJob: an AnalysedFrame
    failed = QtCore.Signal(int, str)  # a one-line message for the user
    finished = QtCore.Signal(int, bool)  # always last; True when the job was cancelled


class Job(QtCore.QRunnable):
    """A unit of work for a pool thread; subclasses implement ``work``."""

    title = "work"

    def __init__(self):
        super().__init__()
        # The pool never deletes a job: WorkerPool keeps it until no pool thread can touch it any more.
        self.setAutoDelete(False)
        self.id = next(_job_ids)
        self.signals = JobSignals()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def is_cancelled(self) -> bool:
        return self._cancelled.is_set()

    def run(self) -> None:
        try:
            if not self.is_cancelled():
                self.work()
        except WorkstationError as exc:  # a bad file, a refused model: the message is for the user as it is
            self.signals.failed.emit(self.id, str(exc))
        except Exception as exc:  # anything else is a bug; say what failed and keep the window alive
            log.exception("%s failed", self.title)
            self.signals.failed.emit(self.id, f"{self.title} failed: {type(exc).__name__}: {exc}")
        finally:
            self.signals.finished.emit(self.id, self.is_cancelled())

    def work(self) -> None:
        raise NotImplementedError


class LoadCineJob(Job):
    """Open a scan (and decode its first frame, so a damaged pixel stream fails here, not on screen)."""

    title = "opening the file"

    def __init__(self, path: str | Path, make_demo: bool = False):
        super().__init__()
        self.path = Path(path)
        self.make_demo = make_demo

    def work(self) -> None:
        from workstation.io import load

        if self.make_demo and not self.path.exists():
            from workstation.synthetic import write_demo_cine

            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(self.path.name + ".part")
            write_demo_cine(partial)
            partial.replace(self.path)  # a crash mid-write never leaves a half demo under the real name
        cine = load(self.path)
        try:
            cine.frame(0)
        except Exception:
            cine.close()
            raise
        if self.is_cancelled():
            cine.close()
            return
        self.signals.loaded.emit(self.id, cine)


class AnalysisJob(Job):
    """Analyse every frame of a file, sending each result by signal as it is ready."""

    title = "analysis"

    def __init__(self, path: str | Path, calibration: Calibration, model_provider: Callable[[], object],
                 tta: bool = True, max_pending: int = 8, indices=None):
        super().__init__()
        self.path = Path(path)
        self.calibration = calibration
        self.model_provider = model_provider
        self.tta = tta
        self.indices = indices
        self._room = threading.Semaphore(max_pending)

    def consumed(self) -> None:
        """The UI took one result: room for another."""
        self._room.release()

    def _wait_for_room(self) -> bool:
        while not self.is_cancelled():
            if self._room.acquire(timeout=0.05):
                return True
        return False

    def work(self) -> None:
        from workstation.io import load

        lower_thread_priority()
        model = self.model_provider()
        describe = getattr(model, "describe", None)
        self.signals.modelReady.emit(self.id, describe() if describe else {})
        # Its own decoder: the viewer's frame cache and file handle stay the UI's alone.
        cine = load(self.path)
        cine.calibration = self.calibration
        try:
            for result in iter_frame_results(cine, model, indices=self.indices, tta=self.tta,
                                             keep_maps=True, cancelled=self.is_cancelled):
                result, maps = compact(result)
                if not self._wait_for_room():
                    break
                self.signals.frameAnalysed.emit(self.id, AnalysedFrame(result, maps, self.calibration))
        finally:
            cine.close()


class WorkerPool(QtCore.QObject):
    """A QThreadPool of its own (so shutdown can wait for exactly this work) and the jobs it runs."""

    _live: "weakref.WeakSet[WorkerPool]" = weakref.WeakSet()

    def __init__(self, name: str, max_threads: int, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.pool = QtCore.QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.pool.setObjectName(f"workstation-{name}")
        self.jobs: dict[int, Job] = {}
        self._retired: list[Job] = []
        WorkerPool._live.add(self)

    @classmethod
    def live_pools(cls) -> list["WorkerPool"]:
        return list(cls._live)

    def start(self, job: Job) -> Job:
        self.jobs[job.id] = job
        job.signals.finished.connect(self._job_finished)
        self.pool.start(job)
        return job

    def job(self, job_id: int) -> Job | None:
        return self.jobs.get(job_id)

    @QtCore.Slot(int, bool)
    def _job_finished(self, job_id: int, cancelled: bool) -> None:
        job = self.jobs.pop(job_id, None)
        if job is not None:
            self._retired.append(job)
        self._drop_retired()

    def _drop_retired(self) -> None:
        # A job's run() may still be returning when its finished signal arrives; drop it only once no thread runs.
        if self.pool.activeThreadCount() == 0:
            self._retired.clear()

    def cancel_all(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel()

    def busy(self) -> bool:
        return bool(self.jobs) or self.pool.activeThreadCount() > 0

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything and wait for the threads; True when all stopped in time."""
        self.cancel_all()
        self.pool.clear()  # jobs not yet started never start
        done = self.pool.waitForDone(timeout_ms)
        # Queued finished signals will find nothing: the jobs are over.
        self.jobs.clear()
        if done:
            self._retired.clear()
        return done
