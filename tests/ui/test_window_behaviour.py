"""How the window behaves as a window: closing during a run asks first, and a short window
keeps the Train and Stop buttons in sight."""

from __future__ import annotations

import pytest
from helpers import count_slow_batches, train_and_wait
from PySide6 import QtCore, QtWidgets

from sandbox.ui import main_window

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def slow(monkeypatch, small):
    """A run that takes long enough to close the window while it trains."""
    count_slow_batches(monkeypatch, pause_s=0.005)
    return small.replace(train=small.train.replace(epochs=200, batch_size=16))


def start_training(qtbot, window) -> None:
    with qtbot.waitSignal(window.run_started, timeout=10_000):
        window.act_train.trigger()
    assert window.is_training()


def answers(*replies: tuple[bool, bool]):
    """A stand-in for ``ask_discard_run``: the replies in turn, recording each question."""
    asked: list[str] = []
    queue = list(replies)

    def ask(job: str) -> tuple[bool, bool]:
        asked.append(job)
        return queue.pop(0)

    return ask, asked


# ------------------------------------------------------------------------------ closing -----
def test_closing_while_training_asks_and_keep_training_keeps_it(make_window, qtbot,
                                                                monkeypatch, slow):
    window = make_window(slow, show=True)
    ask, asked = answers((False, False))
    monkeypatch.setattr(window, "ask_discard_run", ask)
    start_training(qtbot, window)
    with qtbot.waitSignal(window.close_refused, timeout=5_000):
        assert not window.close()
    assert asked == ["training"]
    assert window.isVisible() and window.is_training()  # the run goes on
    assert window.settings.ask_before_discarding_run()
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.act_stop.trigger()
    assert ended.args == ["cancelled"]


def test_discard_closes_cleanly_and_dont_ask_again_is_remembered(make_window, qtbot,
                                                                 monkeypatch, slow):
    from sandbox.ui.settings import Settings

    window = make_window(slow, show=True)
    ask, asked = answers((True, True))
    monkeypatch.setattr(window, "ask_discard_run", ask)
    start_training(qtbot, window)
    thread = window.controller._train_worker.thread()
    assert window.close()
    assert asked == ["training"]
    assert not window.isVisible()
    assert thread.isFinished() and not window.pool.is_busy()  # the clean shutdown as before
    assert Settings().ask_before_discarding_run() is False
    assert not window.act_ask_discard.isChecked()

    # the next window closes during a run without asking
    second = make_window(slow, show=True)
    assert not second.act_ask_discard.isChecked()
    monkeypatch.setattr(second, "ask_discard_run", lambda job: pytest.fail("asked"))
    start_training(qtbot, second)
    assert second.close()
    assert not second.pool.is_busy()
    # File > Ask before discarding a run turns the question back on
    third = make_window(slow, start=False)
    third.act_ask_discard.trigger()
    assert third.act_ask_discard.isChecked() and Settings().ask_before_discarding_run()


def test_discard_without_dont_ask_again_keeps_asking(make_window, qtbot, monkeypatch, slow):
    window = make_window(slow, show=True)
    ask, asked = answers((True, False))
    monkeypatch.setattr(window, "ask_discard_run", ask)
    start_training(qtbot, window)
    assert window.close()
    assert asked == ["training"]
    assert window.settings.ask_before_discarding_run()


def test_no_question_when_nothing_runs_or_the_run_finished(make_window, qtbot, monkeypatch,
                                                           small):
    window = make_window(small, show=True)
    monkeypatch.setattr(window, "ask_discard_run", lambda job: pytest.fail("asked"))
    assert train_and_wait(qtbot, window) == "finished"
    assert window.close()


def test_no_question_when_headless(qtbot, monkeypatch, slow):
    from sandbox.ui.app import GuiOptions
    from sandbox.ui.settings import Settings

    window = main_window.MainWindow(
        GuiOptions(config=slow, explicit_source=True, explicit_settings=True),
        settings=Settings(), headless=True)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.data_shown, timeout=20_000):
        window.start()
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=20_000)
    monkeypatch.setattr(window, "ask_discard_run", lambda job: pytest.fail("asked"))
    start_training(qtbot, window)
    assert window.close()
    assert not window.pool.is_busy()


def test_closing_during_a_sweep_asks_about_the_sweep(make_window, monkeypatch):
    window = make_window(show=True)
    monkeypatch.setattr(window.controller, "is_sweeping", lambda: True)
    ask, asked = answers((False, False), (True, False))
    monkeypatch.setattr(window, "ask_discard_run", ask)
    assert not window.close()
    monkeypatch.undo()
    monkeypatch.setattr(window.controller, "is_sweeping", lambda: True)
    monkeypatch.setattr(window, "ask_discard_run", ask)
    assert window.close()
    assert asked == ["sweep", "sweep"]


@pytest.mark.parametrize(("button", "tick", "closes", "asks_later"), [
    ("Keep training", False, False, True),
    ("Keep training", True, False, True),  # "don't ask again" counts with Discard only
    ("Discard", False, True, True),
    ("Discard", True, True, False),
])
def test_the_question_box(make_window, qtbot, monkeypatch, slow, button, tick, closes,
                          asks_later):
    shown = []

    def exec_(box):
        shown.append((box.text(), sorted(b.text() for b in box.buttons()),
                      box.checkBox().text()))
        box.checkBox().setChecked(tick)
        next(b for b in box.buttons() if b.text() == button).click()
        return 0

    monkeypatch.setattr(main_window, "_can_ask", lambda window: True)
    monkeypatch.setattr(QtWidgets.QMessageBox, "exec", exec_)
    window = make_window(slow, show=True)
    start_training(qtbot, window)
    assert window.close() is closes
    assert shown == [("Training is still running.", ["Discard", "Keep training"],
                      "Don't ask again")]
    assert window.settings.ask_before_discarding_run() is asks_later
    if not closes:
        with qtbot.waitSignal(window.run_ended, timeout=10_000):
            window.act_stop.trigger()


def test_escape_keeps_training():
    box, discard = main_window.discard_question(None, "training")
    assert box.escapeButton().text() == "Keep training"
    assert box.defaultButton() is box.escapeButton() is not discard
    box.deleteLater()


# ------------------------------------------------------------------------------ size --------
@pytest.mark.parametrize("size", [(800, 500), (640, 400)])
def test_train_and_stop_stay_in_sight_in_a_short_window(make_window, qtbot, size):
    window = make_window(show=True)
    window.resize(*size)
    qtbot.waitUntil(lambda: window.height() == size[1])
    qtbot.wait(50)
    shown = window.rect()
    for button in (window.train_button, window.stop_button):
        rect = QtCore.QRect(button.mapTo(window, QtCore.QPoint(0, 0)), button.size())
        assert shown.contains(rect), (size, rect, shown)
        assert button.visibleRegion().boundingRect() == button.rect()  # not scrolled away
        screen = window.screen().availableGeometry()
        assert screen.contains(QtCore.QRect(button.mapToGlobal(QtCore.QPoint(0, 0)),
                                            button.size()))
    # the forms scroll instead
    scrollbar = window.side_panel.scroll.verticalScrollBar()
    assert scrollbar.maximum() > 0
    scrollbar.setValue(scrollbar.maximum())
    strategy = window.strategy_panel
    assert strategy.visibleRegion().boundingRect().bottom() == strategy.rect().bottom()


def test_a_too_small_split_names_the_apps_controls_not_flags(make_window, qtbot, tmp_path):
    import numpy as np
    import pandas as pd

    from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig

    n = 156  # monthly bars: a 145-bar window leaves 2 rows to validate and test on
    close = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0.005, 0.05, n)))
    path = tmp_path / "monthly.csv"
    pd.DataFrame({"Date": pd.date_range("2010-01-31", periods=n, freq="ME").strftime("%Y-%m-%d"),
                  "Open": close, "High": close * 1.02, "Low": close * 0.98, "Close": close,
                  "Volume": 1000.0}).to_csv(path, index=False)
    config = RunConfig(data=DataSpec(source=f"csv:{path}"), model=ModelConfig(window=145),
                       train=TrainConfig(epochs=1))
    window = make_window(config)
    with qtbot.waitSignal(window.failure_reported, timeout=20_000) as failed:
        window.train()
    title, failure = failed.args
    assert title == "Training failed"
    assert "the validation split has 0 usable returns (2 rows; need 20)" in failure.message
    assert "Window in the Model box" in failure.message
    assert "--window" not in failure.message and "--val-start" not in failure.message
