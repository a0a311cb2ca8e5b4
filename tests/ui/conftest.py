"""Fixtures for the app tests: private QSettings, patched dialogs, small fast windows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6 import QtCore

from sandbox.config import DataSpec, ModelConfig, RunConfig, StrategyConfig, TrainConfig

# A small, fast run: 2 epochs of a 1-layer LSTM with 8 units on 10-bar windows over the
# GSPC bars since 2014 (about 1,250 bars).
SMALL_DATA = DataSpec(source="sample:GSPC", start="2014-01-01")
SMALL = RunConfig(
    data=SMALL_DATA,
    model=ModelConfig(window=10, hidden=8, layers=1, dropout=0.0),
    train=TrainConfig(epochs=2, patience=0, batch_size=64, seed=0),
    strategy=StrategyConfig(),
)


@pytest.fixture
def small() -> RunConfig:
    """A small, fast run configuration (see SMALL)."""
    return SMALL


@pytest.fixture(autouse=True, scope="session")
def main_thread_gc(qapp):
    """As in the app: cyclic garbage is collected on the UI thread only (a worker thread
    collecting a test's leftover Qt wrappers would crash Qt)."""
    from sandbox.ui.workers import MainThreadGC

    collector = MainThreadGC(interval_ms=100)
    yield collector
    collector.stop()


@pytest.fixture(autouse=True)
def in_process_engine():
    """Torch work on the worker thread itself, as before the app had a torch process: most
    app tests replace core functions (``pipeline.run``, ``training.Callbacks``) with fakes,
    which a child process would not see. Tests of the child process use ``child_engine``."""
    from sandbox.engine import InProcessEngine
    from sandbox.ui import workers

    previous = workers.use_engine(InProcessEngine())
    yield
    workers.use_engine(previous)


@pytest.fixture(scope="session")
def shared_child_engine():
    """One torch child process for the app tests that use it (it takes a few seconds to
    import torch); ended after the last test."""
    from sandbox.engine import ChildEngine

    engine = ChildEngine()
    engine.start()
    yield engine
    engine.shutdown()


@pytest.fixture
def child_engine(shared_child_engine, in_process_engine):
    """The app's torch work in a real child process, as the app does it."""
    from sandbox.ui import workers

    workers.use_engine(shared_child_engine)
    yield shared_child_engine


@pytest.fixture(autouse=True)
def collect_on_teardown():
    """Collect each test's garbage here, on the main thread, before the next test starts."""
    yield
    import gc

    gc.collect()


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    """QSettings in an ini file under tmp_path: the user's real settings are never touched."""
    folder = tmp_path / "settings"
    folder.mkdir()
    for fmt in (QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Format.NativeFormat):
        QtCore.QSettings.setPath(fmt, QtCore.QSettings.Scope.UserScope, str(folder))
        QtCore.QSettings.setPath(fmt, QtCore.QSettings.Scope.SystemScope, str(folder / "sys"))
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
    return folder


@pytest.fixture(autouse=True)
def dialogs_shown(monkeypatch) -> list[tuple[str, object]]:
    """Every error dialog the app tries to show, as (title, Failure); none blocks."""
    from sandbox.ui import dialogs

    shown: list[tuple[str, object]] = []
    monkeypatch.setattr(dialogs, "show_error",
                        lambda parent, title, failure: shown.append((title, failure)))
    monkeypatch.setattr(dialogs, "show_about", lambda parent: shown.append(("about", None)))
    return shown


@pytest.fixture
def make_window(qtbot) -> Callable[..., object]:
    """Build a MainWindow (not shown unless asked) with private settings; closed at teardown."""
    from sandbox.ui.app import GuiOptions
    from sandbox.ui.main_window import MainWindow
    from sandbox.ui.settings import Settings

    def make(config: RunConfig = SMALL, *, explicit: bool = True, show: bool = False,
             start: bool = True, **options) -> MainWindow:
        window = MainWindow(
            GuiOptions(config=config, explicit_source=explicit, explicit_settings=explicit,
                       **options),
            settings=Settings(),
        )
        qtbot.addWidget(window)
        if show:
            window.show()
        if start:
            with qtbot.waitSignal(window.data_shown, timeout=20_000):
                window.start()
            # data_shown comes before the load worker's thread has ended
            qtbot.waitUntil(lambda: not window.is_loading(), timeout=20_000)
        return window

    return make


class Recorder(QtCore.QObject):
    """Collects a worker's progress signals on the UI thread (a QObject slot, so the
    connection is queued like the window's own; a plain lambda would run on the worker)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple] = []
        self.epochs: list[dict] = []
        self.threads: set[str] = set()

    @QtCore.Slot(float, float, float, int)
    def on_batch(self, *args) -> None:
        import threading

        self.threads.add(threading.current_thread().name)
        self.batches.append(args)

    @QtCore.Slot(dict)
    def on_epoch(self, info: dict) -> None:
        import threading

        self.threads.add(threading.current_thread().name)
        self.epochs.append(info)

    @QtCore.Slot(object)
    def attach(self, worker) -> None:
        worker.batch_done.connect(self.on_batch)
        worker.epoch_done.connect(self.on_epoch)


@pytest.fixture
def recorder(qtbot) -> Recorder:
    """Connect ``window.run_started`` to ``recorder.attach`` to see a run's progress signals."""
    return Recorder()
