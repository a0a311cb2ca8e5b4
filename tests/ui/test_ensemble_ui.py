"""Seed ensembles in the app: train N seeds, the band, the members row, re-trade, stop, close.

Tiny models (window 10, hidden 4, 1-2 epochs) on the GSPC sample since 2016 (~750 bars).
Two tests train in real loky worker processes (the controller's ``parallel_jobs``); the others
patch ``parallel_jobs`` to 1 so the members train one after another on the worker thread.
Qt warnings fail the tests (pyproject: ``qt_log_level_fail = WARNING``).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from helpers import count_slow_batches, train_and_wait
from PySide6 import QtCore

from sandbox import constants as C
from sandbox import ensemble, stats
from sandbox.config import DataSpec, ModelConfig, RunConfig, StrategyConfig, TrainConfig
from sandbox.ui.charts import PriceChart
from sandbox.ui.charts.equity import band_lines
from sandbox.ui.metrics_view import (
    BEST_MARK,
    COLUMNS,
    MetricsView,
    member_cells,
    seeds_verdict,
)

# The offscreen platform warns on show() of any window with a layout: not our message.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

TINY = RunConfig(
    data=DataSpec(source="sample:GSPC", start="2016-01-01"),
    model=ModelConfig(window=10, hidden=4, layers=1, dropout=0.0),
    train=TrainConfig(epochs=2, patience=0, batch_size=64, seed=0),
    strategy=StrategyConfig(),
)
PM = "\u00b1"


def in_process(monkeypatch) -> None:
    """Members train one after another on the worker thread (no worker processes)."""
    from sandbox.ui import controller

    monkeypatch.setattr(controller, "parallel_jobs", lambda runs: 1)


def row_of(view: MetricsView, label: str) -> int:
    labels = [view.table.verticalHeaderItem(r).text() for r in range(view.table.rowCount())]
    assert label in labels, labels
    return labels.index(label)


def cell_texts(view: MetricsView, row: int) -> list[str]:
    return [view.table.item(row, c).text().removesuffix(f" {BEST_MARK}")
            for c in range(len(COLUMNS))]


def expected_member_texts(members: list[dict]) -> list[str]:
    """What the members row should say: ``mean ± std`` in each column's own format."""
    out = []
    for col in COLUMNS:
        spread = stats.mean_std([m.get(col.key) for m in members])
        if spread["mean"] is None:
            out.append("n/a")
            continue
        std = "n/a" if spread["std"] is None else col.fmt(spread["std"]).removeprefix("+")
        out.append(f"{col.fmt(spread['mean'])} {PM} {std}")
    return out


def assert_same(a, b, path: str = "") -> None:
    """Nested dicts / lists of numbers are equal (NaN equals NaN, floats to 1e-12)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12,
                                                                 abs_tol=1e-15), path
    else:
        assert a == b, path


# ------------------------------------------------------------------ a real ensemble -----
def test_two_seeds_in_worker_processes_show_mean_band_and_members(make_window, qtbot,
                                                                  tmp_path, dialogs_shown):
    window = make_window(TINY, seeds=2)
    assert window.model_panel.seeds() == 2
    assert train_and_wait(qtbot, window, timeout=120_000) == "finished"
    assert dialogs_shown == []
    result = window.result
    assert result.seeds == [0, 1] and result.n_seeds == 2 and not result.failed
    assert "2-seed ensemble" in window.log_view.toPlainText()
    # the Loss tab: one pair of curves per member
    assert window.loss_plot.members() == 2
    # the chart: the averaged forecast with the seeds' range around it
    assert not window.chart.predicted_band.is_empty()
    assert "band" in window.chart.equity.curves
    legend = [label.text for _sample, label in window.chart.price_legend.items]
    assert "single-seed range" in legend
    x, _y = window.chart.predicted_curve.getData()
    assert x is not None and len(x) > 0
    # the metrics: the averaged forecast's row, then the members' mean +- std
    view = window.metrics_view
    assert view.table.verticalHeaderItem(0).text() == "lstm averaged forecast"
    r = row_of(view, f"lstm seeds (mean {PM} std)")
    assert r == 1
    texts = cell_texts(view, r)
    assert all(PM in t for t in texts if t != "n/a") and any(PM in t for t in texts)
    # validation-first: the tab shows the validation split until test is asked for
    members = [result.member_metrics[s][C.VAL][C.MODEL] for s in result.seeds]
    assert texts == expected_member_texts(members)
    # the seeds are counted against the best forecasting baseline on the shown split
    val_baselines = result.metrics_by_split[C.VAL]["baselines"]
    best = min(C.FORECAST_BASELINES, key=lambda name: val_baselines[name][C.RMSE])
    best_word = {C.RANDOM_WALK: "the random walk", C.MOMENTUM: "momentum", C.DRIFT: "drift"}[best]
    assert "of 2 seeds beat" in view.verdict_label.text()
    assert best_word in view.verdict_label.text()
    # actions: nothing to save (no fitted model), but the averaged forecast exports
    assert not window.act_save_model.isEnabled()
    assert "Seeds 1" in window.act_save_model.toolTip()
    assert window.act_export_predictions.isEnabled()
    path = tmp_path / "ensemble.csv"
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        window.export_predictions_to(str(path))
    assert ended.args == ["export_predictions", True]
    written = pd.read_csv(path, index_col=C.INDEX_NAME, parse_dates=True)
    stack = np.vstack([result.members[s][C.PREDICTED_RETURN].to_numpy(np.float64)
                       for s in result.seeds])
    assert len(written) == stack.shape[1]
    np.testing.assert_allclose(written[C.PREDICTED_RETURN].to_numpy(), stack.mean(axis=0),
                               rtol=1e-12, atol=1e-15)
    assert (written.index == result.members[0].index).all()


def test_strategy_change_retrades_the_ensemble(make_window, qtbot, monkeypatch):
    from sandbox import pipeline

    in_process(monkeypatch)
    window = make_window(TINY, seeds=2)
    assert train_and_wait(qtbot, window) == "finished"
    old = window.result
    assert old.n_seeds == 2
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: pytest.fail("retrained"))
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        window.strategy_panel.cost_spin.setValue(40.0)
    assert ended.args == ["retrade", True]
    qtbot.waitUntil(window.is_idle, timeout=20_000)
    new = window.result
    assert new is not old and new.config.strategy.cost_bps == 40.0
    strategy = window.strategy_panel.strategy_config()
    expected = ensemble.retrade(old, strategy)
    assert_same(new.metrics, expected.metrics)
    assert_same(new.stats, expected.stats)
    assert new.metrics[C.MODEL][C.TOTAL_RETURN] != old.metrics[C.MODEL][C.TOTAL_RETURN]
    pd.testing.assert_series_equal(new.predictions[C.PREDICTED_RETURN],
                                   old.predictions[C.PREDICTED_RETURN])
    # still drawn as an ensemble
    assert not window.chart.predicted_band.is_empty()
    assert window.metrics_view.table.verticalHeaderItem(1).text() == f"lstm seeds (mean {PM} std)"


def test_stop_during_an_ensemble_keeps_nothing(make_window, qtbot, monkeypatch, dialogs_shown):
    counts = count_slow_batches(monkeypatch)
    in_process(monkeypatch)
    window = make_window(TINY.replace(train=TINY.train.replace(epochs=200)), seeds=2)
    with qtbot.waitSignal(window.run_started, timeout=10_000):
        window.act_train.trigger()
    assert not window.act_train.isEnabled() and window.act_stop.isEnabled()
    qtbot.waitUntil(lambda: counts["batches"] >= 3, timeout=60_000)
    started = time.perf_counter()
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.act_stop.trigger()
    assert ended.args == ["cancelled"]
    assert time.perf_counter() - started < 5.0
    assert window.result is None
    assert window.loss_plot.members() == 0
    assert window.chart.predicted_band.is_empty()
    assert "training stopped after 0 seed(s)" in window.log_view.toPlainText()
    assert window.progress.maximum() > 0  # not left in the busy animation
    assert dialogs_shown == []
    assert window.act_train.isEnabled()
    # and it trains again
    window.model_panel.epochs_spin.setValue(1)
    assert train_and_wait(qtbot, window) == "finished"
    assert window.result.seeds == [0, 1]
    assert window.loss_plot.members() == 2


def _loky_workers() -> list:
    """This process's loky worker processes still alive (not the resource trackers)."""
    import os

    import psutil

    out = []
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "LokyProcess" in " ".join(child.cmdline()) and child.status() != "zombie":
                out.append(child)
        except psutil.Error:
            pass
    return out


def _has_torch(process) -> bool:
    import psutil

    try:
        return any("libtorch" in m.path for m in process.memory_maps())
    except psutil.Error:
        return False


def test_closing_mid_ensemble_is_prompt_and_clean(make_window, qtbot, dialogs_shown):
    pytest.importorskip("psutil")
    from joblib.externals.loky import get_reusable_executor

    # End idle workers left by other tests: the workers seen below are this run's, and one
    # with torch loaded is executing a member (torch is imported by the run, not the worker).
    get_reusable_executor().shutdown(wait=True)
    qtbot.waitUntil(lambda: not _loky_workers(), timeout=15_000)
    window = make_window(TINY.replace(train=TINY.train.replace(epochs=100)), seeds=2,
                         show=True)
    failures = []
    window.failure_reported.connect(lambda title, failure: failures.append(title))
    with qtbot.waitSignal(window.run_started, timeout=10_000) as started:
        window.act_train.trigger()
    worker = started.args[0]
    thread = worker.thread()
    # wait until a worker process has torch loaded: a member is training
    qtbot.waitUntil(lambda: any(_has_torch(p) for p in _loky_workers()), timeout=60_000)
    t0 = time.perf_counter()
    window.close()
    assert time.perf_counter() - t0 < 5.0
    assert not window.isVisible()
    assert thread.isFinished()
    assert not window.pool.is_busy()
    assert dialogs_shown == [] and failures == []
    assert window.result is None
    # the workers were ended, not left training
    qtbot.waitUntil(lambda: not _loky_workers(), timeout=15_000)


# ------------------------------------------------------------------------ widgets -------
def trading_metrics(rmse: float, total: float, sharpe: float = 0.4, dd: float = -0.1,
                    trades: int = 30, direction: float | None = 0.52) -> dict:
    return {C.RMSE: rmse, C.DIRECTIONAL_ACCURACY: direction, C.TOTAL_RETURN: total,
            C.SHARPE: sharpe, C.MAX_DRAWDOWN: dd, C.N_TRADES: trades}


def split_metrics(model: dict) -> dict:
    def trading(total):
        return {C.TOTAL_RETURN: total, C.SHARPE: 0.5, C.MAX_DRAWDOWN: -0.2, C.N_TRADES: 1}

    return {
        "split": "test",
        C.MODEL: model,
        "baselines": {
            C.RANDOM_WALK: {C.RMSE: 0.0100, C.DIRECTIONAL_ACCURACY: None, **trading(0.0)},
            C.MOMENTUM: {C.RMSE: 0.014, C.DIRECTIONAL_ACCURACY: 0.47, **trading(-0.08)},
            C.DRIFT: {C.RMSE: 0.0101, C.DIRECTIONAL_ACCURACY: 0.54, **trading(0.10)},
            C.BUY_AND_HOLD: trading(0.10),
        },
    }


def test_metrics_view_members_row_and_seeds_verdict(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    members = [trading_metrics(0.009, 0.20, trades=30),
               trading_metrics(0.011, 0.05, trades=50),
               trading_metrics(0.0095, 0.12, trades=40, direction=None)]
    mean_model = trading_metrics(0.0098, 0.13)
    metrics = split_metrics(mean_model)
    view.set_metrics(metrics, model_label="lstm averaged forecast", members=members,
                     members_label="lstm seeds (mean \u00b1 std)")
    assert view.table.rowCount() == 6  # model, members, 4 baselines
    r = row_of(view, "lstm seeds (mean \u00b1 std)")
    assert r == 1
    texts = cell_texts(view, r)
    assert texts == expected_member_texts(members)
    # RMSE mean 0.0098333, sample std 0.0010408; direction: the two members that have one
    assert texts[0] == f"0.009833 {PM} 0.001041"
    assert texts[1] == f"52.0% {PM} 0.0%"
    assert texts[2] == f"+12.33% {PM} 7.51%"  # no sign on the spread
    assert texts[5] == f"40 {PM} 10"
    cells = member_cells(members)
    assert cells[C.RMSE][0] == pytest.approx(np.mean([0.009, 0.011, 0.0095]))
    assert cells[C.RMSE][1] == pytest.approx(np.std([0.009, 0.011, 0.0095], ddof=1))
    user = QtCore.Qt.ItemDataRole.UserRole
    assert view.table.item(r, 0).data(user) == pytest.approx(cells[C.RMSE][0])
    # 2 of 3 seeds beat the random walk's 0.0100; 2 of 3 beat buy & hold's +10%
    verdict = seeds_verdict(members, metrics)
    assert verdict == ("Across the seeds: 2 of 3 seeds beat the random walk's RMSE; "
                       "2 of 3 beat buy & hold after costs.")
    assert verdict in view.verdict_label.text()
    # one member: no spread to show
    view.set_metrics(metrics, members=members[:1])
    r = row_of(view, "seeds (mean \u00b1 std)")  # the default label
    assert cell_texts(view, r)[0] == f"0.009000 {PM} n/a"
    assert "1 of 1 seeds beat the random walk's RMSE" in view.verdict_label.text()
    # no members: no members row
    view.set_metrics(metrics, model_label="model (lstm)")
    assert view.table.rowCount() == 5
    assert "Across the seeds" not in view.verdict_label.text()


def test_seeds_verdict_counts_only_strict_wins_and_skips_missing_baselines():
    members = [trading_metrics(0.0100, 0.10), trading_metrics(float("nan"), 0.11),
               trading_metrics(0.0099, float("nan"))]
    text = seeds_verdict(members, split_metrics(trading_metrics(0.01, 0.1)))
    assert "1 of 3 seeds beat the random walk's RMSE" in text  # a tie is no win, NaN neither
    assert "1 of 3 beat buy & hold" in text
    assert seeds_verdict(members, {"baselines": {}}) == ""


def test_band_lines_share_their_gaps():
    x = np.arange(6.0)
    low = np.array([1.0, np.nan, 1.0, 1.0, 1.0, 1.0])
    high = np.array([2.0, 2.0, np.inf, 2.0, 2.0, 2.0])
    breaks = np.array([False, False, False, True, False, False])
    bx, blow, bhigh = band_lines(x, low, high, breaks)
    assert len(bx) == len(blow) == len(bhigh) == 7  # one gap point after the break
    assert np.all(np.diff(bx) > 0)
    gaps = [1, 2, 4]  # either edge unknown (rows 1, 2) and the break after row 3
    np.testing.assert_array_equal(np.flatnonzero(np.isnan(blow)), gaps)
    np.testing.assert_array_equal(np.flatnonzero(np.isnan(bhigh)), gaps)
    assert np.isnan(low[1]) and high[2] == np.inf  # the inputs are left alone


def _prices(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    index = pd.bdate_range("2001-01-01", periods=n, name="date")
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.004,
                         "low": np.minimum(open_, close) * 0.996, "close": close,
                         "volume": np.full(n, 1000.0)}, index=index)


def _predictions(frame: pd.DataFrame, splits: np.ndarray) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    close = frame["close"].to_numpy()
    actual = np.r_[np.log(close[1:] / close[:-1]), np.nan]
    out = pd.DataFrame({C.SPLIT: splits, C.CLOSE: close, C.ACTUAL_RETURN: actual,
                        C.PREDICTED_RETURN: rng.normal(0, 0.01, len(frame)),
                        C.POSITION: (np.arange(len(frame)) % 5 < 2).astype(np.float64)},
                       index=frame.index)
    out[C.STRATEGY_RETURN] = out[C.POSITION] * np.nan_to_num(actual)
    out[C.EQUITY] = (1 + out[C.STRATEGY_RETURN]).groupby(out[C.SPLIT], sort=False).cumprod()
    return out


def test_price_chart_band_comes_and_goes(qtbot):
    chart = PriceChart(dark=True)
    qtbot.addWidget(chart)
    chart.resize(1000, 700)
    frame = _prices(200)
    chart.set_prices(frame)
    splits = np.array([C.TRAIN] * 140 + [C.VAL] * 30 + [C.TEST] * 30)
    predictions = _predictions(frame, splits)
    predicted_close = predictions[C.CLOSE] * np.exp(predictions[C.PREDICTED_RETURN])
    band = pd.DataFrame({
        ensemble.BAND_PREDICTED_LOW: predicted_close * 0.99,
        ensemble.BAND_PREDICTED_HIGH: predicted_close * 1.01,
        ensemble.BAND_EQUITY_LOW: predictions[C.EQUITY] * 0.98,
        ensemble.BAND_EQUITY_HIGH: predictions[C.EQUITY] * 1.02,
    }, index=predictions.index)
    band.iloc[50, 0] = np.nan  # one unknown low edge

    def price_legend() -> list[str]:
        return [label.text for _sample, label in chart.price_legend.items]

    def equity_legend() -> list[str]:
        return [label.text for _sample, label in chart.equity.legend.items]

    chart.set_predictions(predictions, band=band, model_label="model (3-seed average)")
    assert not chart.predicted_band.is_empty()
    assert chart.predicted_band.points == 200 - 1  # every row but the unknown one
    assert price_legend().count("single-seed range") == 1
    assert "band" in chart.equity.curves and not chart.equity.band.is_empty()
    assert "model (3-seed average)" in equity_legend() and "single-seed range" in equity_legend()
    _, low = chart.predicted_band.low.getData()
    _, high = chart.predicted_band.high.getData()
    np.testing.assert_array_equal(np.isnan(low), np.isnan(high))
    # the same again: the legend entry is not doubled
    chart.set_predictions(predictions, band=band)
    assert price_legend().count("single-seed range") == 1
    chart.clear_predictions()
    assert chart.predicted_band.is_empty() and chart.equity.band.is_empty()
    assert "single-seed range" not in price_legend()
    assert chart.equity.curves == {} and "single-seed range" not in equity_legend()
    _, low = chart.predicted_band.low.getData()
    assert low is None or len(low) == 0
    # a single model afterwards: no band at all
    chart.set_predictions(predictions)
    assert chart.predicted_band.is_empty() and "band" not in chart.equity.curves
    assert "single-seed range" not in price_legend()


# ---------------------------------------------------------------------- command line ----
@pytest.mark.parametrize("argv", [["gui", "--seeds", "0"], ["--seeds", "0"],
                                  ["gui", "--seeds", "65"]])
def test_gui_refuses_bad_seeds_before_opening(argv, monkeypatch, capsys):
    from sandbox import cli
    from sandbox.ui import app

    opened = []
    monkeypatch.setattr(app, "main", lambda *a, **k: opened.append(a) or 0)
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert opened == []
    seeds = argv[-1]
    assert f"--seeds {seeds}: must be a whole number from 1 to {C.MAX_ENSEMBLE_SEEDS}" in err
    assert "Traceback" not in err


def test_a_failed_seed_is_reported_and_left_out(make_window, qtbot, monkeypatch, dialogs_shown):
    from sandbox import pipeline
    from sandbox.errors import TrainingError

    real_run = pipeline.run

    def run(config, *args, **kwargs):
        if config.train.seed == 1:
            raise TrainingError("training loss became NaN at epoch 1")
        return real_run(config, *args, **kwargs)

    monkeypatch.setattr(pipeline, "run", run)
    in_process(monkeypatch)
    window = make_window(TINY, seeds=2)
    assert train_and_wait(qtbot, window) == "finished"
    assert window.result.seeds == [0] and 1 in window.result.failed
    status = window.status_text.text()
    assert "1 seed(s) failed" in status and "/a" not in status.replace("n/a", "")
    assert "seed(s) 1 failed" in window.metrics_view.caption.text()
    assert "seed 1 failed: training loss became NaN" in window.log_view.toPlainText()
    assert dialogs_shown == []
