"""Workers and their threads: results, errors, cancellation, shutdown."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6 import QtCore

from sandbox.config import DataSpec
from sandbox.errors import Cancelled, DataError
from sandbox.ui.workers import PendingLoad, TaskWorker, WorkerPool


class Collector(QtCore.QObject):
    """Receives a worker's signals on the UI thread. (pytest-qt's waitSignal connects a
    plain callable, which PySide6 calls on the emitting worker thread.)"""

    def __init__(self, worker) -> None:
        super().__init__()
        self.returned, self.failed, self.finished, self.threads = [], [], [], set()
        worker.returned.connect(self.on_returned)
        worker.failed.connect(self.on_failed)
        worker.finished.connect(self.on_finished)

    @QtCore.Slot(object)
    def on_returned(self, value) -> None:
        self.returned.append(value)
        self.threads.add(threading.current_thread().name)

    @QtCore.Slot(object)
    def on_failed(self, failure) -> None:
        self.failed.append(failure)

    @QtCore.Slot()
    def on_finished(self) -> None:
        self.finished.append(1)


def run(qtbot, pool, worker) -> Collector:
    seen = Collector(worker)
    pool.start(worker)
    qtbot.waitUntil(lambda: bool(seen.finished), timeout=5000)
    return seen


@pytest.fixture
def pool(qtbot):
    pool = WorkerPool()
    yield pool
    assert pool.shutdown(timeout_s=10)


def test_task_result_arrives_on_the_ui_thread(qtbot, pool):
    worker = TaskWorker(lambda a, b=0: (a + b, threading.current_thread().name), 2, b=3)
    seen = run(qtbot, pool, worker)
    value, thread_name = seen.returned[0]
    assert value == 5 and thread_name != threading.main_thread().name
    assert seen.threads == {threading.main_thread().name} and not seen.failed


def test_a_user_error_fails_with_its_message_only(qtbot, pool):
    def fail():
        raise DataError("prices.csv row 3: high is below the close")

    failure = run(qtbot, pool, TaskWorker(fail)).failed[0]
    assert failure.message == "prices.csv row 3: high is below the close"
    assert failure.details is None and not failure.is_bug


def test_a_bug_fails_with_the_traceback_as_details(qtbot, pool):
    failure = run(qtbot, pool, TaskWorker(lambda: {}["missing"])).failed[0]
    assert failure.is_bug and "KeyError" in failure.message
    assert "Traceback" in failure.details and "Traceback" not in failure.message


def test_shutdown_cancels_and_waits_for_a_busy_python_worker(qtbot):
    pool = WorkerPool()
    started = threading.Event()

    def spin(worker_ref):
        started.set()
        while not worker_ref[0].is_cancelled:  # pure Python: needs the GIL to notice
            sum(range(100))
        raise Cancelled("stopped")

    ref: list = []
    worker = TaskWorker(spin, ref)
    ref.append(worker)
    pool.start(worker)
    assert started.wait(5)
    t0 = time.perf_counter()
    assert pool.shutdown(timeout_s=10)
    assert time.perf_counter() - t0 < 1.0
    assert not pool.is_busy()


def test_pending_load_returns_or_is_cancelled(monkeypatch):
    loaded = PendingLoad(DataSpec(source="sample:GOOG")).result()
    assert loaded.label == "GOOG" and len(loaded.frame) > 1000

    from sandbox.data import yahoo

    release = threading.Event()

    def slow(*args, **kwargs):
        release.wait(10)
        raise OSError("no route to host")

    monkeypatch.setattr(yahoo, "_yf_history", slow)
    cancel = threading.Event()
    pending = PendingLoad(DataSpec(source="yahoo:AAPL"))
    cancel.set()
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        pending.result(cancel)
    assert time.perf_counter() - t0 < 0.5
    release.set()


def test_freeze_startup_takes_what_lives_now_out_of_full_collections():
    """A full collection over the start-up objects (~100,000 of pandas, Qt and pyqtgraph)
    holds the UI thread ~35 ms; once frozen, collections no longer visit them."""
    import gc

    from sandbox.ui.workers import MainThreadGC

    startup_object = [["lives as long as the app"]]  # lists are always tracked
    collector = MainThreadGC(interval_ms=60_000)
    try:
        assert any(o is startup_object for o in gc.get_objects())
        collector.freeze_startup()
        collector.freeze_startup()  # once only
        assert not any(o is startup_object for o in gc.get_objects())
        later = [["created after start-up"]]
        assert any(o is later for o in gc.get_objects())  # still collected as usual
    finally:
        collector.stop()
    assert any(o is startup_object for o in gc.get_objects())  # handed back
