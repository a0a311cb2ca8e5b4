"""The main window end to end: load, train, stop, close, retrade, exports, errors, settings.

Runs offscreen with tiny models (window 10, hidden 8, 2 epochs, GSPC since 2014). Qt
warnings fail the tests (pyproject: ``qt_log_level_fail = WARNING``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import count_slow_batches, train_and_wait

from sandbox import constants as C
from sandbox import training
from sandbox.config import DataSpec, RunConfig, TrainConfig
from sandbox.errors import TrainingError

# The offscreen platform warns on show() of any window with a layout: not our message.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"


# ------------------------------------------------------------------------------ loading -----
def test_loading_the_sample_draws_one_candle_per_bar(make_window):
    window = make_window(RunConfig(data=DataSpec(source="sample:GSPC")))
    frame = window.prices.frame
    raw = pd.read_csv(Path(__file__).resolve().parents[2] / "resources" / "sample_data"
                      / "GSPC.csv")
    assert len(frame) == len(raw) == 5031
    x0, x1 = window.chart.visible_range()
    assert x0 <= 0 and x1 >= len(frame) - 1  # every bar is on screen
    window.chart.show_range(len(frame) - 200, len(frame) - 1)
    assert window.chart.items_drawn() == 200  # one candle per bar when zoomed in
    window.chart.show_range(0, len(frame) - 1)
    assert window.chart.items_drawn() <= 3000
    assert "GSPC" in window.chart.title_label.text()
    assert "5,031 bars" in window.source_label.text()
    assert window.act_train.isEnabled()
    assert "torch" not in window.log_view.toPlainText()


# ------------------------------------------------------------------------------ training ----
def test_two_epochs_send_loss_points_through_signals(make_window, qtbot, recorder):
    window = make_window()
    window.run_started.connect(recorder.attach)
    with qtbot.waitSignal(window.run_shown, timeout=60_000) as shown:
        window.act_train.trigger()
    result = shown.args[0]
    qtbot.waitUntil(lambda: not window.is_training())
    assert [e["epoch"] for e in recorder.epochs] == [1, 2]
    assert all(np.isfinite(e["train_loss"]) and np.isfinite(e["val_loss"])
               for e in recorder.epochs)
    assert recorder.threads == {threading.main_thread().name}  # delivered on the UI thread
    assert window.loss_plot.points()["train"] == 2
    assert window.loss_plot.points()["val"] == 2
    assert all(type(v) is float for b in recorder.batches for v in b[:3])  # plain data only
    # overlays and metrics are on screen
    assert window.result is result
    assert window.chart.predicted_curve.getData()[0] is not None
    assert window.metrics_view.table.rowCount() == 5
    assert window.metrics_view.verdict_label.text()
    assert "epoch 2/2" in window.log_view.toPlainText()
    assert window.act_export_predictions.isEnabled()
    assert window.act_save_model.isEnabled()


def test_stop_answers_within_one_batch(make_window, qtbot, monkeypatch, small, dialogs_shown):
    counts = count_slow_batches(monkeypatch)
    config = small.replace(train=small.train.replace(epochs=200, batch_size=16))
    window = make_window(config)
    with qtbot.waitSignal(window.run_started, timeout=10_000):
        window.act_train.trigger()
    qtbot.waitUntil(lambda: counts["batches"] >= 5, timeout=60_000)
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        at_stop = counts["batches"]
        started = time.perf_counter()
        window.act_stop.trigger()  # Esc
    assert ended.args == ["cancelled"]
    assert counts["batches"] - at_stop <= 1  # the batch in flight finishes, no more
    assert time.perf_counter() - started < 2.0
    assert window.result is None
    assert window.act_train.isEnabled()
    assert dialogs_shown == []  # stopping is not an error


@pytest.mark.parametrize("round_", range(20))
def test_closing_mid_training_is_clean(make_window, qtbot, small, round_):
    window = make_window(small.replace(train=small.train.replace(epochs=50)), show=True)
    with qtbot.waitSignal(window.run_started, timeout=10_000) as started:
        window.act_train.trigger()
    worker = started.args[0]
    if round_ % 2:  # half the time close once batches are coming in
        qtbot.waitUntil(lambda: window.loss_plot.points()["batch"] > 0, timeout=60_000)
    thread = worker.thread()
    window.close()
    assert not window.isVisible()
    assert thread.isFinished()
    assert not window.pool.is_busy()


def test_export_matches_sandbox_train(make_window, qtbot, tmp_path):
    from sandbox.cli import main as cli_main

    window = make_window()
    assert train_and_wait(qtbot, window) == "finished"
    csv_path, parquet_path = tmp_path / "gui.csv", tmp_path / "gui.parquet"
    for path in (csv_path, parquet_path):
        with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
            window.export_predictions_to(str(path))
        assert ended.args == ["export_predictions", True]

    out = tmp_path / "cli"
    code = cli_main(["train", "--sample", "GSPC", "--start", "2014-01-01", "--window", "10",
                     "--hidden", "8", "--layers", "1", "--dropout", "0", "--epochs", "2",
                     "--patience", "0", "--batch-size", "64", "--seed", "0", "--out", str(out)])
    assert code == 0
    assert csv_path.read_bytes() == (out / C.PREDICTIONS_CSV).read_bytes()
    from_cli = pd.read_csv(out / C.PREDICTIONS_CSV, index_col=C.INDEX_NAME, parse_dates=True)
    from_gui = pd.read_parquet(parquet_path)
    pd.testing.assert_frame_equal(from_gui, from_cli, check_dtype=False, check_freq=False,
                                  check_index_type=False)


def test_strategy_change_retrades_without_training(make_window, qtbot, monkeypatch):
    from sandbox import pipeline

    window = make_window()
    train_and_wait(qtbot, window)
    before = window.result
    runs = []
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: runs.append(1))
    with qtbot.waitSignal(window.run_shown, timeout=10_000) as shown:
        window.strategy_panel.cost_spin.setValue(50.0)
    after = shown.args[0]
    assert not runs  # no training
    assert after.config.strategy.cost_bps == 50.0
    assert after.model is before.model
    pd.testing.assert_series_equal(after.predictions[C.PREDICTED_RETURN],
                                   before.predictions[C.PREDICTED_RETURN])
    assert after.metrics[C.MODEL][C.TOTAL_RETURN] != before.metrics[C.MODEL][C.TOTAL_RETURN]
    assert window.result is after


def test_save_and_load_model_predicts_without_training(make_window, qtbot, tmp_path):
    window = make_window()
    train_and_wait(qtbot, window)
    trained = window.result
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        window.save_model_to(str(tmp_path / "bundle"))
    assert ended.args == ["save_model", True]
    assert (tmp_path / "bundle" / C.MODEL_WEIGHTS).is_file()
    with qtbot.waitSignal(window.run_shown, timeout=20_000) as shown:
        window.load_model_from(str(tmp_path / "bundle"))
    loaded = shown.args[0]
    assert loaded is not trained
    np.testing.assert_allclose(loaded.predictions[C.PREDICTED_RETURN].to_numpy(),
                               trained.predictions[C.PREDICTED_RETURN].to_numpy(),
                               rtol=1e-6, atol=1e-9)
    assert (loaded.predictions[C.SPLIT] == trained.predictions[C.SPLIT]).all()


def test_chart_exports_png_and_svg(make_window, qtbot, tmp_path):
    window = make_window()
    for name in ("chart.png", "chart.svg"):
        with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
            window.export_chart_to(str(tmp_path / name))
        assert ended.args == ["export_chart", True]
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "chart.svg").read_bytes()[:2000]


# ------------------------------------------------------------------------------ errors ------
def assert_usable(window, qtbot):
    """After an error the window still loads data and can train."""
    with qtbot.waitSignal(window.data_shown, timeout=20_000):
        window.load(DataSpec(source="sample:GSPC", start="2014-01-01"))
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=20_000)
    assert window.act_train.isEnabled()
    assert not window.pool.is_busy() or window.is_loading() is False


def test_bad_csv_shows_a_dialog_and_stays_usable(make_window, qtbot, dialogs_shown):
    window = make_window()
    with qtbot.waitSignal(window.failure_reported, timeout=20_000):
        window.load(DataSpec(source=f"csv:{FIXTURES / 'high_below.csv'}"))
    title, failure = dialogs_shown[-1]
    assert title == "Could not load the data"
    assert "high_below.csv" in failure.message and not failure.is_bug
    assert "Traceback" not in failure.message
    qtbot.waitUntil(lambda: not window.is_loading())
    assert window.prices.label == "GSPC"  # the chart keeps the data it had
    assert_usable(window, qtbot)


def test_offline_download_shows_a_dialog(make_window, qtbot, dialogs_shown, monkeypatch):
    from sandbox.data import yahoo

    def offline(*args, **kwargs):
        raise OSError("Could not resolve host: query1.finance.yahoo.com")

    monkeypatch.setattr(yahoo, "_yf_history", offline)
    window = make_window()
    with qtbot.waitSignal(window.failure_reported, timeout=40_000):
        window.load(DataSpec(source="yahoo:AAPL"))
    _title, failure = dialogs_shown[-1]
    assert "AAPL" in failure.message and not failure.is_bug
    qtbot.waitUntil(lambda: not window.is_loading())
    assert_usable(window, qtbot)


@pytest.mark.parametrize("error", [TrainingError("training diverged at epoch 1 (loss is NaN); "
                                                 "try a lower learning rate, e.g. 0.0001"),
                                   RuntimeError("an unexpected bug")])
def test_training_errors_show_a_dialog(make_window, qtbot, dialogs_shown, monkeypatch, error):
    from sandbox import pipeline

    def fail(*args, **kwargs):
        raise error

    window = make_window()
    monkeypatch.setattr(pipeline, "run", fail)
    assert train_and_wait(qtbot, window) == "failed"
    title, failure = dialogs_shown[-1]
    assert title == "Training failed"
    if isinstance(error, TrainingError):
        assert failure.message == str(error) and failure.details is None
    else:
        assert failure.is_bug and "RuntimeError" in failure.message
        assert "Traceback" in failure.details and "Traceback" not in failure.message
    assert window.act_train.isEnabled()
    monkeypatch.undo()
    assert train_and_wait(qtbot, window) == "finished"  # usable again


def test_export_to_an_unwritable_place_leaves_no_file(make_window, qtbot, dialogs_shown,
                                                      tmp_path):
    window = make_window()
    train_and_wait(qtbot, window)
    import os

    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    targets = [tmp_path / "missing" / "p.csv", a_file / "p.csv"]
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:  # root writes anywhere
        locked.chmod(0o500)
        targets.append(locked / "p.csv")
    before = sorted(tmp_path.rglob("*"))
    try:
        for target in targets:
            with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
                window.export_predictions_to(str(target))
            assert ended.args == ["export_predictions", False]
            title, failure = dialogs_shown[-1]
            assert title == "Could not export the predictions"
            assert str(target) in failure.message and not failure.is_bug
        assert sorted(tmp_path.rglob("*")) == before  # no file, no temp file left behind
    finally:
        locked.chmod(0o700)
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        window.export_predictions_to(str(tmp_path / "ok.csv"))
    assert ended.args == ["export_predictions", True]


def test_loading_a_missing_model_shows_a_dialog(make_window, qtbot, dialogs_shown, tmp_path):
    window = make_window()
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        window.load_model_from(str(tmp_path))
    assert ended.args == ["load_model", False]
    title, failure = dialogs_shown[-1]
    assert title == "Could not predict with the saved model"
    assert str(tmp_path) in failure.message
    assert window.result is None
    assert window.act_train.isEnabled()


def test_invalid_values_are_refused_in_the_form(make_window):
    window = make_window()
    window.model_panel.lr_edit.setText("fast")
    assert not window.act_train.isEnabled() and not window.train_button.isEnabled()
    assert "learning rate 'fast'" in window.form_error.text()
    window.model_panel.lr_edit.setText("0")
    assert "learning rate 0" in window.form_error.text()
    window.model_panel.lr_edit.setText("1e-3")
    window.model_panel.dropout_spin.setValue(0.999)
    window.model_panel.dropout_spin.setValue(0.2)
    assert window.act_train.isEnabled()
    window.model_panel.window_spin.setValue(5000)  # more than the ~1,250 bars loaded
    assert "window 5000" in window.form_error.text()
    assert not window.act_train.isEnabled()
    window.model_panel.window_spin.setValue(10)
    assert window.act_train.isEnabled() and not window.form_error.isVisibleTo(window)


def test_a_data_form_error_is_shown_not_loaded(make_window):
    window = make_window()
    window.data_panel.ticker_radio.setChecked(True)
    window.data_panel.load_button.click()
    assert "ticker" in window.data_panel.note.text()
    window.data_panel.sample_radio.setChecked(True)
    window.data_panel.start_edit.setText("2014-13-01")
    window.data_panel.load_button.click()
    assert "not a date" in window.data_panel.note.text()
    assert not window.is_loading()


# ------------------------------------------------------------------------------ settings ----
def test_settings_restore_source_hyperparameters_and_geometry(make_window, qtbot):
    first = make_window(explicit=False, show=True)
    with qtbot.waitSignal(first.data_shown, timeout=20_000):
        first.load(DataSpec(source="sample:GOOG", start="2010-01-01"))
    first.model_panel.hidden_spin.setValue(24)
    first.model_panel.lr_edit.setText("0.003")
    first.strategy_panel.cost_spin.setValue(2.5)
    first.resize(790, 590)  # inside the offscreen platform's 800x600 screen
    first.close()

    second = make_window(RunConfig(), explicit=False, show=True)
    assert second.prices.label == "GOOG"
    assert second.prices.frame.index[0] >= pd.Timestamp("2010-01-01")
    assert second.model_panel.model_config().hidden == 24
    assert second.model_panel.train_config().lr == 0.003
    assert second.strategy_panel.strategy_config().cost_bps == 2.5
    assert (second.width(), second.height()) == (790, 590)


def test_command_line_source_wins_over_settings(make_window, qtbot):
    first = make_window(explicit=False)
    with qtbot.waitSignal(first.data_shown, timeout=20_000):
        first.load(DataSpec(source="sample:GOOG"))
    first.close()
    second = make_window(RunConfig(data=DataSpec(source="sample:GSPC")), explicit=True)
    assert second.prices.label == "GSPC"


def test_a_missing_remembered_file_falls_back_to_the_sample(make_window, qtbot, dialogs_shown,
                                                              tmp_path):
    from sandbox.ui.settings import Settings

    Settings().save_data(DataSpec(source=f"csv:{tmp_path / 'gone.csv'}"))
    window = make_window(RunConfig(), explicit=False, start=False)
    with qtbot.waitSignal(window.data_shown, timeout=20_000):
        window.start()
    assert dialogs_shown and "gone.csv" in dialogs_shown[0][1].message
    assert window.prices.label == C.DEFAULT_SAMPLE


def test_train_config_threads_default_keeps_a_core_for_the_ui():
    assert TrainConfig().threads is None
    assert training.default_threads() == max(1, (__import__("os").cpu_count() or 1) - 1)


def test_closing_mid_download_returns_at_once(make_window, qtbot, monkeypatch):
    from sandbox.data import yahoo

    release = threading.Event()

    def hanging(*args, **kwargs):  # a provider that does not answer
        release.wait(30)
        raise OSError("timed out")

    monkeypatch.setattr(yahoo, "_yf_history", hanging)
    window = make_window(show=True)
    window.load(DataSpec(source="yahoo:AAPL"))
    assert window.is_loading() and window.act_stop.isEnabled()
    qtbot.wait(100)
    started = time.perf_counter()
    window.close()
    assert time.perf_counter() - started < 1.0
    assert not window.pool.is_busy()
    release.set()


def test_menus_and_shortcuts(make_window, dialogs_shown):
    window = make_window()
    menus = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions()}
    assert list(menus) == ["File", "Run", "View", "Help"]
    shortcuts = {a.text().replace("&", ""): a.shortcut().toString()
                 for menu in menus.values() for a in menu.actions() if not a.isSeparator()}
    assert shortcuts["Open CSV..."] == "Ctrl+O"
    assert shortcuts["Export predictions..."] == "Ctrl+E"
    assert shortcuts["Train"] == "Ctrl+R"
    assert shortcuts["Stop"] == "Esc"
    assert shortcuts["Quit"] == "Ctrl+Q"
    for name in ("Export chart...", "Save model...", "Load model...", "About"):
        assert name in shortcuts
    window.act_about.trigger()
    assert dialogs_shown == [("about", None)]
    window.act_dark.trigger()  # light chart and back
    assert not window.act_dark.isChecked()
    window.act_dark.trigger()
    assert window.act_dark.isChecked()


def test_open_csv_loads_the_chosen_file(make_window, qtbot, monkeypatch):
    from sandbox.ui import dialogs

    monkeypatch.setattr(dialogs, "ask_open_path",
                        lambda *a: str(FIXTURES / "yahoo_export.csv"))
    window = make_window()
    with qtbot.waitSignal(window.data_shown, timeout=20_000):
        window.act_open_csv.trigger()
    assert window.prices.label == "yahoo_export"
    assert window.data_panel.csv_radio.isChecked()


@pytest.mark.parametrize(("kind", "call", "title"), [
    ("export_chart", lambda w, p: w.export_chart_to(str(p / "chart.png")),
     "Could not export the chart"),
    ("export_chart", lambda w, p: w.export_chart_to(str(p / "chart.svg")),
     "Could not export the chart"),
    ("save_model", lambda w, p: w.save_model_to(str(p / "bundle")), "Could not save the model"),
])
def test_other_writes_to_a_bad_place_show_a_dialog(make_window, qtbot, dialogs_shown, tmp_path,
                                                   kind, call, title):
    window = make_window()
    train_and_wait(qtbot, window)
    out = tmp_path / "out"
    out.mkdir()
    a_file = out / "a_file"
    a_file.write_text("not a folder")
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        call(window, a_file)  # a path under a file: cannot be written
    assert ended.args == [kind, False]
    assert dialogs_shown[-1][0] == title
    assert not dialogs_shown[-1][1].is_bug
    assert sorted(p.name for p in out.iterdir()) == ["a_file"]
    assert window.act_export_chart.isEnabled() and window.act_train.isEnabled()


# ------------------------------------------------------------- Memory tab and Replay bar ----
def test_stop_ends_the_memory_lab_and_closing_mid_work_exits_cleanly(make_window, qtbot):
    window = make_window()
    view = window.memory_view
    assert window.tabs.indexOf(view) >= 0 and window.tabs.indexOf(window.folds_view) >= 0
    assert view.run_experiment(kinds=["rnn"], lags=[5], steps=1_000_000)
    qtbot.waitUntil(view.is_busy, timeout=10_000)
    assert window.act_stop.isEnabled()
    assert not window.act_train.isEnabled()  # the lab holds the torch process
    assert "Memory tab" in window.act_train.toolTip()
    window.act_stop.trigger()
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=30_000)
    qtbot.waitUntil(lambda: window.act_train.isEnabled(), timeout=10_000)
    # again, then close the window while it runs: every thread ends, nothing is reported
    assert view.run_experiment(kinds=["rnn"], lags=[5], steps=1_000_000)
    qtbot.waitUntil(view.is_busy, timeout=10_000)
    window.close()
    assert not window.pool.is_busy()


def test_stop_stops_a_replay_and_the_window_hands_the_bar_each_shown_run(make_window, qtbot,
                                                                         monkeypatch):
    window = make_window()
    bar = window.replay_bar
    handed = []
    monkeypatch.setattr(bar, "set_run", handed.append)
    stopped = []
    monkeypatch.setattr(bar, "stop", lambda: stopped.append(True) or True)
    assert train_and_wait(qtbot, window) == "finished"
    assert handed[-1] is window.result  # the trained run can be replayed
    window.stop()
    assert stopped == [True]


@pytest.mark.slow
def test_a_stopped_replay_gives_the_chart_back_to_the_shown_run(make_window, qtbot):
    window = make_window()
    assert train_and_wait(qtbot, window) == "finished"
    bars = len(window.prices.frame)
    bar = window.replay_bar
    with qtbot.waitSignal(bar.replay_started, timeout=60_000):
        bar.step()  # needs a counted look first: the test split is replayed
    assert window.chart.is_replay() and window.chart.bar_count() < bars
    assert window.act_stop.isEnabled()
    with qtbot.waitSignal(window.run_shown, timeout=30_000):
        window.act_stop.trigger()
    assert not window.chart.is_replay()
    assert window.chart.bar_count() == bars
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert window.act_train.isEnabled()
