"""A walk-forward run in the app: fold progress, each fold's curves in the Loss tab, fold
lines on the chart, the Folds tab's table and bars, the look it counts, Stop."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.config import WalkForwardSpec
from sandbox.ui.folds_view import TO, FoldsView, fold_rows, fold_summary
from tests.ui.conftest import SMALL

# 2014.. GSPC (~1,250 bars): predict from 2018-01-02, retrain every 63 bars, 1 epoch a fold
WALK = SMALL.replace(
    train=SMALL.train.replace(epochs=1),
    walk_forward=WalkForwardSpec(start="2018-01-02", retrain_every=63, val_length=60,
                                 warm_start=True, warm_epochs=1))


def _fold_record(fold: int, diff: float | None) -> dict:
    model = None if diff is None else 0.01 + diff
    return {"fold": fold, "train_start": "2014-01-02", "train_end": "2017-09-29",
            "val_start": "2017-10-02", "predict_start": "2018-01-02",
            "predict_end": "2018-04-03", "n_train": 900, "n_val": 60, "n_predict": 63,
            "seed": 0, "epochs": 3, "best_epoch": 2, "best_val_loss": 0.51, "seconds": 1.5,
            "metrics": {"model": {"rmse": model}, "random_walk": {"rmse": 0.01},
                        "rmse_diff": diff}}


def test_fold_rows_number_folds_from_one_and_sign_the_difference():
    rows = fold_rows([_fold_record(0, -0.0005), _fold_record(1, None)])
    assert rows[0][0] == "1" and rows[1][0] == "2"
    assert rows[0][1] == f"2014-01-02{TO}2017-09-29"
    assert rows[0][2] == f"2018-01-02{TO}2018-04-03"
    assert rows[0][5] == "0.009500" and rows[0][6] == "0.010000"
    assert rows[0][7] == "-0.000500"
    assert rows[1][7] == "n/a"


def test_fold_summary_counts_the_folds_below_the_random_walk():
    text = fold_summary([_fold_record(0, -0.001), _fold_record(1, 0.002),
                         _fold_record(2, -0.003)])
    assert "in 2 of 3 folds" in text
    assert "-0.000667" in text  # (-0.001 + 0.002 - 0.003) / 3


def test_the_bar_chart_has_one_bar_per_fold_with_its_difference(qtbot):
    from types import SimpleNamespace

    run = SimpleNamespace(folds=[_fold_record(0, -0.001), _fold_record(1, 0.002),
                                 _fold_record(2, None)])
    view = FoldsView()
    qtbot.addWidget(view)
    view.show_run(run)
    heights = view.bar_heights()
    assert heights[:2] == [-0.001, 0.002] and math.isnan(heights[2])
    assert view.table.rowCount() == 3
    assert view.table.item(1, 7).text() == "+0.002000"


@pytest.mark.slow
def test_a_walk_forward_run_shows_folds_lines_curves_and_counts_a_look(make_window, qtbot):
    from sandbox import looks

    window = make_window(WALK)
    assert window.model_panel.evaluation.is_walk_forward()
    with qtbot.waitSignal(window.test_shown, timeout=120_000) as shown:
        window.act_train.trigger()
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    result, evidence = shown.args
    folds = result.folds
    # the fold count: ceil(out-of-sample bars / retrain_every), counted independently
    index = window.prices.frame.index
    oos = int((index[SMALL.model.window - 1:] >= pd.Timestamp("2018-01-02")).sum())
    assert len(folds) == math.ceil(oos / 63) or len(folds) == math.ceil((oos - 1) / 63)
    # each fold's curves in the Loss tab, its lines on the chart, its row in the Folds tab
    assert sorted(window.loss_plot.folds()) == list(range(len(folds)))
    assert len(window.chart.fold_lines()) == len(folds)
    assert window.folds_view.table.rowCount() == len(folds)
    assert window.folds_view.table.item(0, 2).text().startswith(folds[0]["predict_start"][:10])
    assert len(window.folds_view.bar_heights()) == len(folds)
    # showing it counted a look, and the Metrics tab says so
    assert evidence.count == 1
    assert "counts a look" in window.metrics_view.caption.text()
    assert "seen once" in window.metrics_view.caption.text()
    assert window.metrics_view.table.rowCount() > 0
    assert not window.act_show_validation.isEnabled()
    assert not window.metrics_view.reveal_button.isEnabled()
    assert set(result.predictions[C.SPLIT]) == {C.TEST}
    # the Replay bar takes its model (the last fold's: replayed from that fold's bars on)
    assert window.replay_bar.play_button.isEnabled()
    assert window.replay_bar.start_date() >= pd.Timestamp(folds[-1]["predict_start"][:10])
    # another strategy shown on the same out-of-sample rows is another look
    with qtbot.waitSignal(window.test_shown, timeout=60_000) as again:
        window.strategy_panel.cost_spin.setValue(12.0)
    assert again.args[1].count == 2
    assert again.args[0].config.strategy.cost_bps == 12.0
    assert len(window.chart.fold_lines()) == len(folds)
    assert looks.looks_path().exists()


@pytest.mark.slow
def test_stop_ends_every_fold_and_keeps_nothing(make_window, qtbot, monkeypatch):
    from tests.ui.helpers import count_slow_batches

    count_slow_batches(monkeypatch, pause_s=0.01)
    window = make_window(WALK.replace(train=WALK.train.replace(epochs=50),
                                      walk_forward=WALK.walk_forward.replace(warm_epochs=50)))
    finished = []
    window.controller.fold_finished.connect(finished.append)
    with qtbot.waitSignal(window.run_ended, timeout=120_000) as ended:
        window.act_train.trigger()
        qtbot.waitUntil(lambda: window.fold_progress.is_active()
                        and window.loss_plot.points()["batch"] > 0, timeout=60_000)
        window.act_stop.trigger()
    assert ended.args[0] == "cancelled"
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert window.result is None
    assert len(finished) < 4
    assert "stopped" in window.folds_view.caption.text()
    assert window.folds_view.table.rowCount() == 0


@pytest.mark.slow
def test_save_model_writes_the_walk_forward_run_with_every_fold(make_window, qtbot, tmp_path):
    window = make_window(WALK.replace(walk_forward=WALK.walk_forward.replace(
        start="2018-04-02")))
    with qtbot.waitSignal(window.test_shown, timeout=120_000):
        window.act_train.trigger()
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    folds = window.result.folds
    out = tmp_path / "wf"
    with qtbot.waitSignal(window.task_ended, timeout=60_000) as ended:
        window.save_model_to(str(out))
    assert ended.args == ["save_model", True]
    assert sorted(p.name for p in (out / C.FOLDS_DIR).iterdir()) == [
        f"{i:03d}" for i in range(len(folds))]
    table = pd.read_csv(out / "predictions.csv")
    assert sorted(set(table[C.FOLD])) == list(range(len(folds)))
    assert (out / "model.safetensors").exists()


def test_the_evaluation_setting_is_remembered(make_window, qtbot):
    first = make_window(explicit=False)
    spec = WalkForwardSpec(start="2016-01-04", retrain_every=42, window_mode=C.ROLLING,
                           train_length=600, val_length=80, warm_start=True, warm_epochs=2)
    first.model_panel.evaluation.set_spec(spec)
    first.close()
    second = make_window(explicit=False)
    assert second.model_panel.evaluation.walk_forward() == spec
    second.model_panel.evaluation.mode_combo.setCurrentIndex(0)  # single split again
    second.close()
    third = make_window(explicit=False)
    assert third.model_panel.evaluation.walk_forward() is None
    assert third.model_panel.evaluation.spec() == spec  # the fields are kept for next time
    assert third.current_config().walk_forward is None


def test_a_sweep_is_refused_while_walk_forward_is_chosen(make_window):
    window = make_window()
    window.model_panel.evaluation.set_spec(WalkForwardSpec(start="2018-01-02"))
    window._update_actions()
    assert "Single split" in window.sweep_view.run_button.toolTip()
    assert not window.sweep_view.run_button.isEnabled()
