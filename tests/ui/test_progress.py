"""The status bar and the Log tab following a controller: RunProgress and LogView alone.

The controller's signals are emitted by hand (nothing trains); the Loss tab is a stand-in
that records what it is given. Qt warnings fail the tests.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from PySide6 import QtWidgets

from sandbox.config import RunConfig
from sandbox.ui import progress as progress_module
from sandbox.ui.controller import RunController
from sandbox.ui.progress import PROGRESS_STEPS, LogView, RunProgress


class Controller(RunController):
    """A controller with prices on hand and nothing running."""

    prices = SimpleNamespace(label="GSPC")


class LossStandIn:
    def __init__(self) -> None:
        self.plot = SimpleNamespace(showGrid=lambda **_: None)
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        return lambda *args: self.calls.append(name)


@pytest.fixture
def progress(qtbot):
    window = QtWidgets.QMainWindow()
    qtbot.addWidget(window)
    log = LogView()
    loss = LossStandIn()
    view = RunProgress(window.statusBar(), loss, log.log, window)
    controller = Controller(window)
    view.attach(controller)
    return SimpleNamespace(window=window, view=view, controller=controller, log=log, loss=loss)


class Clock:
    """Stands in for time.monotonic in sandbox.ui.progress: moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress_module, "time",
                        SimpleNamespace(monotonic=fake, strftime=time.strftime))
    return fake


def member(done: int, total: int, seed: int = 0) -> SimpleNamespace:
    """A finished seed of an ensemble (or a run of a sweep): a RunRecord's fields."""
    return SimpleNamespace(done=done, total=total, seed=seed, error=None, seconds=1.0,
                           val_loss=0.5, best_epoch=1, test_metrics={}, val_metrics={},
                           train_losses=[1.0], val_losses=[0.5], config_id="c01",
                           label=f"hidden=4 seed={seed}")


def log_lines(log: LogView) -> list[str]:
    return [line[10:] for line in log.toPlainText().splitlines()]  # without "HH:MM:SS  "


def test_a_stopped_run_says_after_which_epoch(progress):
    c, view = progress.controller, progress.view
    config = RunConfig()
    c.run_started.emit(None, config, 1, 1)
    assert view.bar.value() == 0 and view.bar.maximum() == PROGRESS_STEPS
    assert view.status_text.text().startswith("Training LSTM (window 30")
    c.epoch_done.emit({"epoch": 1, "epochs": 4, "train_loss": 0.5, "val_loss": 0.25,
                       "best_val_loss": 0.25, "samples_per_s": 1000.0, "eta_s": 3.0})
    assert view.bar.value() == PROGRESS_STEPS // 4
    assert view.status_text.text() == "epoch 1/4  train 0.5  val 0.25  1,000 samples/s  ETA 0:03"
    c.run_ended.emit("cancelled")
    assert view.status_text.text() == "Training stopped after epoch 1. Nothing was kept."
    assert view.bar.value() == 0
    assert log_lines(progress.log)[-2:] == [
        "epoch 1/4: train 0.5, val 0.25 (best), 1,000 samples/s",
        "training stopped after epoch 1",
    ]
    assert progress.loss.calls == ["reset", "add_epoch"]


def test_an_ensemble_is_busy_until_its_first_member(progress):
    c, view = progress.controller, progress.view
    c.run_started.emit(None, RunConfig(), 4, 2)
    assert view.bar.maximum() == 0  # busy
    c.member_done.emit(member(1, 4))
    assert view.bar.maximum() == PROGRESS_STEPS and view.bar.value() == PROGRESS_STEPS // 4
    assert view.status_text.text().startswith("1/4 seeds trained, 25%, ETA ")
    c.run_ended.emit("cancelled")
    assert view.status_text.text() == "Training stopped after 1 seed(s). Nothing was kept."
    assert progress.loss.calls == ["reset", "add_member"]


def test_loads_and_tasks_in_the_status_bar(progress):
    c, view = progress.controller, progress.view
    c.written.emit("/tmp/a.csv")
    assert view.status_text.text() == "Wrote /tmp/a.csv"
    assert log_lines(progress.log) == ["wrote /tmp/a.csv"]
    c.task_failed.emit("Could not export the chart", None)
    assert view.status_text.text() == "Could not export the chart."
    c.task_refused.emit("Another task is still running.")
    assert view.status_text.text() == "Another task is still running."
    c.load_ended.emit("cancelled")
    assert view.status_text.text() == "Loading stopped."
    assert view.bar.maximum() == PROGRESS_STEPS


def test_a_stop_that_comes_as_the_run_finishes_leaves_its_summary(progress, small):
    """Stop pressed between the result and the end of the run: the run finished all the
    same, so the status bar ends on its summary, not on "Stopping..."."""
    from sandbox import pipeline

    c, view = progress.controller, progress.view
    result = pipeline.run(small)
    c.run_started.emit(None, small, 1, 1)
    c.result_ready.emit(result)
    summary = view.status_text.text()
    assert summary.startswith("Trained in ")
    view.set_status("Stopping...")  # what the window says when Stop is pressed
    c.run_ended.emit("finished")
    assert view.status_text.text() == summary


def test_an_ensemble_shows_seeds_percent_and_eta(progress, clock, qtbot):
    """After its first seed, an ensemble says k/N, the percent and the ETA at the pace so
    far; between seeds the ETA counts down and the bar moves on, never past the seeds in
    flight; a finished ensemble ends on its summary, with nothing ticking."""
    c, view = progress.controller, progress.view
    c.run_started.emit(None, RunConfig(), 4, 2)  # 4 seeds in 2 processes
    assert view.bar.maximum() == 0  # busy: nothing to measure yet
    clock.now += 10
    c.member_done.emit(member(1, 4))
    assert view.status_text.text() == "1/4 seeds trained, 25%, ETA 0:30"
    assert view.bar.maximum() == PROGRESS_STEPS and view.bar.value() == 250
    view._ticker.setInterval(10)  # the countdown, sooner than once a second
    clock.now += 5
    qtbot.waitUntil(lambda: view.status_text.text() == "1/4 seeds trained, 38%, ETA 0:25")
    assert view.bar.value() == 375
    clock.now += 20  # late: held at the 3 seeds done or in flight
    qtbot.waitUntil(lambda: view.status_text.text() == "1/4 seeds trained, 75%, ETA 0:05")
    assert view.bar.value() == 750
    clock.now += 15  # 2 of 4 in 50 s: the bar never goes back
    c.member_done.emit(member(2, 4, seed=1))
    assert view.status_text.text() == "2/4 seeds trained, 75%, ETA 0:50"
    assert view.bar.value() == 750
    clock.now += 48
    c.member_done.emit(member(4, 4, seed=3))
    assert view.status_text.text() == "4/4 seeds trained, 100%, ETA 0:00"
    assert view.bar.value() == PROGRESS_STEPS and not view._ticker.isActive()


def test_a_stop_pressed_between_seeds_is_not_overwritten_by_the_countdown(progress, clock,
                                                                        qtbot):
    c, view = progress.controller, progress.view
    c.run_started.emit(None, RunConfig(), 3, 1)
    clock.now += 10
    c.member_done.emit(member(1, 3))
    assert view.status_text.text() == "1/3 seeds trained, 33%, ETA 0:20"
    view._ticker.setInterval(10)
    view.set_status("Stopping...")  # what the window says when Stop is pressed
    clock.now += 5
    qtbot.waitUntil(lambda: not view._ticker.isActive())
    assert view.status_text.text() == "Stopping..."
    c.run_ended.emit("cancelled")
    assert view.status_text.text() == "Training stopped after 1 seed(s). Nothing was kept."


def test_a_sweep_shows_runs_percent_and_eta(progress, clock):
    c, view = progress.controller, progress.view
    c.sweep_started.emit(6, {"hidden": [4, 8, 16]}, 2, 3)
    assert view.bar.maximum() == 0
    clock.now += 10
    c.sweep_run_done.emit(member(1, 6))
    assert view.status_text.text() == "Sweep: 1/6 runs, 17%, ETA 0:50"
    assert view.bar.maximum() == PROGRESS_STEPS and view.bar.value() == 167
    assert view._ticker.isActive()
    clock.now += 50
    c.sweep_run_done.emit(member(6, 6))
    assert view.status_text.text() == "Sweep: 6/6 runs, 100%, ETA 0:00"
    assert not view._ticker.isActive()
    c.sweep_ended.emit("finished")
    assert not view._ticker.isActive() and view.bar.maximum() == PROGRESS_STEPS
