"""Workers: QObjects that run one job on a QThread and report through signals.

The pattern is superqt's ``qthreading``: the worker is moved to a fresh ``QThread``,
``thread.started -> worker.run``, ``worker.finished -> thread.quit``, and both are deleted
later once the thread has ended. Signals are named as past events and carry plain Python
or numpy data (never tensors):

- ``finished()`` is emitted last, whatever the outcome (the thread quits on it);
- the result comes through ``loaded`` / ``trained`` / ``returned``;
- ``failed(Failure)`` on an error, ``cancelled()`` when stopped.

``cancel()`` only sets a :class:`threading.Event`; call it straight from the UI thread (a
queued call would wait behind the running job). The core checks the event between batches.

Torch work (training, ensembles, sweeps, predicting with a saved model) runs in the app's
torch process, a child process (:class:`sandbox.engine.ChildEngine`): the worker thread
calls the engine, which blocks that thread as the function would, forwards its progress
and passes Stop on. So the UI process never imports torch and the UI thread never waits
for torch's interpreter lock. :func:`warm_up` starts that process when the app starts;
:func:`use_engine` swaps it (an in-process engine for tests that replace core functions).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore

from sandbox.config import DataSpec, RunConfig
from sandbox.engine import ChildEngine, Engine, InProcessEngine
from sandbox.errors import Cancelled
from sandbox.events import BatchEnd, EpochEnd, FoldFinished, FoldStarted, StageStarted
from sandbox.ui.dialogs import failure_from

__all__ = [
    "LoadWorker",
    "MainThreadGC",
    "PendingLoad",
    "StreamWorker",
    "TaskWorker",
    "TrainWorker",
    "Worker",
    "WorkerPool",
    "app_engine",
    "shutdown_engine",
    "use_engine",
    "warm_up",
]

#: how often a load waiting on a download looks at its cancel event (seconds)
_CANCEL_POLL_S = 0.05

Signal = QtCore.Signal

_engine: Engine | None = None
_engine_lock = threading.Lock()


def app_engine() -> Engine:
    """The app's torch process (one per app; started on first use or by :func:`warm_up`)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = ChildEngine()
        return _engine


def use_engine(engine: Engine | None) -> Engine | None:
    """Make ``engine`` the app's engine (None: a fresh child process on next use); returns
    the one it replaces, which the caller shuts down if it wants to."""
    global _engine
    with _engine_lock:
        previous, _engine = _engine, engine
        return previous


def warm_up() -> None:
    """Start the app's torch process now, in the background, so the first Train does not
    wait for torch's import (returns at once)."""
    app_engine().start()


def shutdown_engine() -> None:
    """End the app's torch process (at exit; a later call starts a new one)."""
    engine = use_engine(None)
    if engine is not None:
        engine.shutdown()


class Worker(QtCore.QObject):
    """One job on a worker thread. Subclasses implement :meth:`work` and emit its result."""

    finished = Signal()  # always, last
    failed = Signal(object)  # a dialogs.Failure
    cancelled = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._engine: Engine | None = None  # set while the job runs in the engine

    def cancel(self) -> None:
        """Ask the job to stop (thread-safe; returns at once)."""
        self._cancel.set()
        engine = self._engine
        if engine is not None:
            engine.cancel(self._cancel)  # at once, not at the engine's next poll

    def _call_engine(self, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any], *,
                     stream_arg: str | None = None,
                     on_stream: Callable[[Any], None] | None = None,
                     cancellable: bool = True, here: bool = False) -> Any:
        """``fn(*args, **kwargs)`` in the app's torch process (``here``: on this worker
        thread), from the worker thread."""
        self._engine = engine = InProcessEngine() if here else app_engine()
        try:
            return engine.call(fn, args, kwargs, stream_arg=stream_arg, on_stream=on_stream,
                               cancel=self._cancel if cancellable else None)
        finally:
            self._engine = None

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    @QtCore.Slot()
    def run(self) -> None:
        """Run :meth:`work` and emit the outcome (connected to ``QThread.started``)."""
        try:
            result = self.work()
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # every failure becomes a dialog, never a crash
            self.failed.emit(failure_from(exc))
        else:
            if self._cancel.is_set():
                self.cancelled.emit()
            else:
                self._emit_result(result)
        finally:
            self.finished.emit()

    def work(self) -> Any:
        """The job (runs on the worker thread)."""
        raise NotImplementedError

    def _emit_result(self, result: Any) -> None:
        """Emit the job's result through the subclass's result signal."""


class TaskWorker(Worker):
    """Run ``fn(*args, **kwargs)`` on a worker thread; ``returned`` carries its result.

    Used for short jobs: exports, model bundles, re-running the paper trading. With
    ``remote=True``, ``fn`` (a module-level function) runs in the app's torch process
    instead, e.g. predicting with a saved model.
    """

    returned = Signal(object)

    def __init__(self, fn: Callable[..., Any], *args: Any, remote: bool = False,
                 **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.remote = remote

    def work(self) -> Any:
        return self._call_engine(self.fn, self.args, self.kwargs, cancellable=False,
                                 here=not self.remote)

    def _emit_result(self, result: Any) -> None:
        self.returned.emit(result)


class StreamWorker(TaskWorker):
    """Run a job that streams partial results: ``fn(*args, on_result=..., cancel=...,
    **kwargs)``.

    Each value passed to ``on_result`` (on the worker thread) arrives as ``streamed``; the
    return value as ``returned``. Used for seed ensembles and sweeps, whose runs finish one
    by one in worker processes (:func:`sandbox.sweep.run_sweep`).
    """

    streamed = Signal(object)

    def __init__(self, fn: Callable[..., Any], *args: Any, result_arg: str = "on_result",
                 remote: bool = False, **kwargs: Any) -> None:
        super().__init__(fn, *args, remote=remote, **kwargs)
        self.result_arg = result_arg

    def work(self) -> Any:
        return self._call_engine(self.fn, self.args, self.kwargs, stream_arg=self.result_arg,
                                 on_stream=self.streamed.emit, here=not self.remote)


class PendingLoad:
    """A :func:`sandbox.data.load_prices` call running on a plain helper thread.

    The app starts one for the initial data before it imports the chart code, so reading
    the file overlaps with the start-up; :class:`LoadWorker` waits on it with cancellation.
    No Qt is involved (it may start before the QApplication exists).
    """

    def __init__(self, spec: DataSpec, *, min_rows: int = 0) -> None:
        self.spec = spec
        self._box: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._load, args=(min_rows,),
                                        name="sandbox-load", daemon=True)
        self._thread.start()

    def _load(self, min_rows: int) -> None:
        from sandbox.data import load_prices

        try:
            self._box["result"] = load_prices(self.spec, min_rows=min_rows)
        except BaseException as exc:  # handed over to the waiting thread
            self._box["error"] = exc

    def result(self, cancel: threading.Event | None = None) -> Any:
        """Wait for the prices; raise what the load raised, or Cancelled when ``cancel`` is
        set first (the helper thread is then abandoned; its result is dropped)."""
        while self._thread.is_alive():
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"loading {self.spec.source} was stopped")
            self._thread.join(_CANCEL_POLL_S)
        if "error" in self._box:
            raise self._box["error"]
        return self._box["result"]


class LoadWorker(Worker):
    """Load and validate prices (a sample, a CSV file or a Yahoo download).

    The load runs on a helper thread (:class:`PendingLoad`) that this worker watches, so
    Stop or closing the window answers within ~50 ms even while a download waits on the
    network; an abandoned download ends on its own (the data layer puts a deadline on it).
    """

    loaded = Signal(object)  # sandbox.data.LoadedPrices

    def __init__(self, spec: DataSpec, *, min_rows: int = 0,
                 pending: PendingLoad | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.min_rows = min_rows
        self.pending = pending if pending is not None and pending.spec == spec else None

    def work(self) -> Any:
        pending = self.pending or PendingLoad(self.spec, min_rows=self.min_rows)
        return pending.result(self._cancel)

    def _emit_result(self, result: Any) -> None:
        self.loaded.emit(result)


class TrainWorker(Worker):
    """Run :func:`sandbox.pipeline.run` in the app's torch process and forward its progress.

    Signals
    -------
    stage_started(str, str)
        Stage name and message.
    batch_done(float, float, float, int)
        Fractional epoch, batch loss, samples per second, total epochs (training sends at
        most :data:`sandbox.training.BATCH_EVENTS_PER_S` a second).
    epoch_done(dict)
        The fields of :class:`~sandbox.events.EpochEnd` (every epoch).
    fold_started(dict), fold_finished(dict)
        A walk-forward run's folds: the fields of :class:`~sandbox.events.FoldStarted` and
        :class:`~sandbox.events.FoldFinished` (losses as lists).
    trained(RunResult)
        The run's result (its model stays in the torch process: ``weights`` carries it).
    """

    stage_started = Signal(str, str)
    batch_done = Signal(float, float, float, int)
    epoch_done = Signal(dict)
    fold_started = Signal(dict)
    fold_finished = Signal(dict)
    trained = Signal(object)

    def __init__(self, config: RunConfig, *, prices: Any = None) -> None:
        super().__init__()
        self.config = config
        self.prices = prices

    def work(self) -> Any:
        from sandbox import pipeline

        return self._call_engine(pipeline.run, (self.config,), {"prices": self.prices},
                                 stream_arg="on_event", on_stream=self._on_event)

    def _on_event(self, event: Any) -> None:  # worker thread
        if isinstance(event, BatchEnd):
            position = event.epoch - 1 + event.batch / max(event.n_batches, 1)
            self.batch_done.emit(float(position), float(event.train_loss),
                                 float(event.samples_per_s), int(event.epochs))
        elif isinstance(event, EpochEnd):
            self.epoch_done.emit({
                "epoch": int(event.epoch), "epochs": int(event.epochs),
                "train_loss": float(event.train_loss), "val_loss": float(event.val_loss),
                "best_val_loss": float(event.best_val_loss),
                "samples_per_s": float(event.samples_per_s),
                "elapsed_s": float(event.elapsed_s), "eta_s": float(event.eta_s),
            })
        elif isinstance(event, StageStarted):
            self.stage_started.emit(event.stage, event.message)
        elif isinstance(event, FoldStarted):
            self.fold_started.emit({
                "fold": int(event.fold), "n_folds": int(event.n_folds),
                "predict_start": str(event.predict_start),
                "predict_end": str(event.predict_end)})
        elif isinstance(event, FoldFinished):
            self.fold_finished.emit({
                "fold": int(event.fold), "n_folds": int(event.n_folds),
                "train_loss": [float(x) for x in event.train_loss],
                "val_loss": [float(x) for x in event.val_loss],
                "best_val_loss": float(event.best_val_loss)})

    def _emit_result(self, result: Any) -> None:
        self.trained.emit(result)


class WorkerPool(QtCore.QObject):
    """Starts workers on their own threads and keeps them alive until their thread ends.

    Python owns both the worker and the ``QThread`` (no ``deleteLater``): they are dropped
    on the UI thread once the thread has fully ended. (With ``deleteLater`` the worker
    would be deleted on its own thread while the UI thread drops the last Python
    reference: a double delete.) :meth:`shutdown` cancels every running worker and waits
    for its thread, so closing a window never destroys a running ``QThread``.
    """

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[QtCore.QThread, Worker] = {}
        self._reaper = QtCore.QTimer(self)
        self._reaper.setSingleShot(True)
        self._reaper.setInterval(20)
        self._reaper.timeout.connect(self._release_ended)

    def start(self, worker: Worker, *, name: str = "sandbox-worker") -> QtCore.QThread:
        """Move ``worker`` to a new thread and start it."""
        thread = QtCore.QThread()
        thread.setObjectName(name)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Direct: the worker thread ends its own event loop (QThread.quit is thread-safe), so
        # the thread can finish while the UI thread is blocked in shutdown().
        worker.finished.connect(thread.quit, QtCore.Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._release_ended)  # queued: runs on our thread
        self._running[thread] = worker
        thread.start()
        return thread

    def running(self) -> list[Worker]:
        """Workers whose thread has not ended yet."""
        return [w for t, w in self._running.items() if not t.isFinished()]

    def is_busy(self) -> bool:
        return bool(self.running())

    def shutdown(self, *, timeout_s: float = 60.0) -> bool:
        """Cancel every worker and wait for every thread; True when all ended in time.

        Waits in Python (``time.sleep`` releases the GIL): PySide6's ``QThread.wait()``
        keeps the GIL, so a worker with Python left to run could never finish.
        """
        for worker in list(self._running.values()):
            worker.cancel()
        deadline = time.monotonic() + timeout_s
        threads = list(self._running)
        while not all(_ended(t) for t in threads) and time.monotonic() < deadline:
            time.sleep(0.005)
        self._release_ended()
        return all(_ended(t) for t in threads)

    @QtCore.Slot()
    def _release_ended(self) -> None:
        for thread in list(self._running):
            if _ended(thread):
                del self._running[thread]  # last references: deleted here, on our thread
        if any(t.isFinished() for t in self._running):
            self._reaper.start()  # finishing right now: look again in a moment


def _ended(thread: QtCore.QThread) -> bool:
    """True once ``thread`` has fully ended (``isFinished`` is true a little earlier, while
    the thread still runs its last cleanup). Does not block."""
    return bool(thread.wait(0)) if thread.isFinished() else False


class MainThreadGC(QtCore.QObject):
    """Run Python's cyclic garbage collector on the UI thread only.

    With automatic collection, a worker thread that happens to trigger it destroys whatever
    unreachable Qt wrappers exist at that moment on the wrong thread, and Qt crashes. This
    turns automatic collection off and collects from a timer on the UI thread instead, with
    CPython's generation thresholds (the recipe of pyqtgraph's ``GarbageCollector``). The
    oldest generation is collected at most every ``full_every_s`` seconds: a full pass over
    the objects of torch, pandas and Qt takes tens of milliseconds.

    Parameters
    ----------
    interval_ms : int
        How often the counts are checked.
    full_every_s : float
        Least time between two full (generation 2) collections.
    """

    def __init__(self, parent: QtCore.QObject | None = None, *, interval_ms: int = 250,
                 full_every_s: float = 10.0) -> None:
        super().__init__(parent)
        import gc

        self._gc = gc
        self._was_enabled = gc.isenabled()
        self._threshold = gc.get_threshold()
        self._full_every_s = full_every_s
        self._last_full = time.monotonic()
        self._frozen = False
        gc.disable()
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect)
        self._timer.start()

    @QtCore.Slot()
    def collect(self) -> None:
        """Collect the generations whose counts passed their threshold."""
        gc = self._gc
        t0, t1, _t2 = self._threshold
        c0, c1, c2 = gc.get_count()
        if c0 <= t0:
            return
        if c1 > t1 and c2 > self._threshold[2]:
            now = time.monotonic()
            if now - self._last_full >= self._full_every_s:
                self._last_full = now
                gc.collect(2)
                return
        gc.collect(1 if c1 > t1 else 0)

    def freeze_startup(self) -> None:
        """Move every object alive now out of the collector's view (once).

        Call it once the app has started: what the imports and the window's build created
        (~100,000 objects of pandas, Qt and pyqtgraph) lives as long as the app, and a full
        collection over them holds the interpreter lock on the UI thread for ~35 ms
        (``bench/ui_stall.py`` saw it as the longest stall of every phase). Objects created
        later are collected as usual.
        """
        if not self._frozen:
            self._frozen = True
            self._gc.freeze()

    def stop(self) -> None:
        """Stop collecting here and give collection back to Python."""
        self._timer.stop()
        if self._frozen:
            self._frozen = False
            self._gc.unfreeze()
        if self._was_enabled:
            self._gc.enable()
