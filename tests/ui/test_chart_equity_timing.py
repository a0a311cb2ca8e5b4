"""The equity pane draws each row's equity on the bar where it is realised, and picks the best
baseline on validation.

Reference values are written out by hand from the paper-trading rules (ARCHITECTURE.md,
"Paper trading semantics"): with the next-open fill the position decided at close ``t`` is held
from open ``t+1`` to open ``t+2``, so ``equity[t]`` is known at bar ``t+2``; with the close fill
it is held from close ``t`` to close ``t+1``, known at bar ``t+1``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import chart_with_prices, drawn

from sandbox import ensemble
from sandbox.constants import (
    ACTUAL_RETURN,
    BUY_AND_HOLD,
    CLOSE,
    DRIFT,
    EQUITY,
    FILL_CLOSE,
    FILL_NEXT_OPEN,
    MOMENTUM,
    POSITION,
    PREDICTED_RETURN,
    RANDOM_WALK,
    SPLIT,
    STRATEGY_RETURN,
    TEST,
    TOTAL_RETURN,
    TRAIN,
    VAL,
)
from sandbox.ui.charts import PriceChart
from sandbox.ui.charts.equity import account_points, best_baseline, realised_lag

N = 12  # bars on the chart
FIRST = 2  # the first bar with a prediction (bars 0 and 1 fill the model's window)
NAN = np.nan

# Ten rows decided at bars 2..11: train at bars 2..6, validation at bars 7..11. Equity as the
# backtest writes it: the rows whose return would use the next split's prices (or prices past
# the last bar) are empty.
SPLITS = [TRAIN] * 5 + [VAL] * 5
EQUITY_NEXT_OPEN = [1.01, 1.02, 1.03, NAN, NAN, 0.99, 0.98, 0.97, NAN, NAN]
EQUITY_CLOSE = [1.01, 1.02, 1.03, 1.04, NAN, 0.99, 0.98, 0.97, 0.96, NAN]


def prices() -> pd.DataFrame:
    close = 100.0 + np.arange(N, dtype=np.float64)
    index = pd.date_range("2024-01-01", periods=N, name="date")
    return pd.DataFrame({"open": close - 0.5, "high": close + 1.0, "low": close - 1.0,
                         "close": close, "volume": np.full(N, 1000.0)}, index=index)


def rows(frame: pd.DataFrame, equity: list[float], splits: list[str] = SPLITS) -> pd.DataFrame:
    """A predictions frame on bars FIRST.. with the given equity (other columns plausible)."""
    part = frame.iloc[FIRST:FIRST + len(equity)]
    n = len(part)
    return pd.DataFrame({
        SPLIT: splits,
        CLOSE: part["close"].to_numpy(),
        ACTUAL_RETURN: np.full(n, 0.01),
        PREDICTED_RETURN: np.full(n, 0.002),
        POSITION: np.ones(n),
        STRATEGY_RETURN: np.full(n, 0.01),
        EQUITY: equity,
    }, index=part.index)


@pytest.fixture
def chart(qtbot) -> PriceChart:
    return chart_with_prices(qtbot, prices())


# ------------------------------------------------------------------------- item 8 -----------
def test_next_open_equity_of_row_t_is_drawn_at_bar_t_plus_2(chart):
    frame = prices()
    chart.set_predictions(rows(frame, EQUITY_NEXT_OPEN), fill=FILL_NEXT_OPEN)
    x, y = drawn(chart.equity.model)
    # train: 1.0 at bar 3 (the first position is taken at the open of bar 3), then rows
    # 2, 3, 4 at bars 4, 5, 6; validation: 1.0 at bar 8, rows 7, 8, 9 at bars 9, 10, 11
    assert x == [3, 4, 5, 6, 8, 9, 10, 11]
    assert y == pytest.approx([1.0, 1.01, 1.02, 1.03, 1.0, 0.99, 0.98, 0.97])
    # the two accounts are not joined
    full_x, full_y = chart.equity.model.getData()
    gap = np.flatnonzero(np.isnan(full_y))
    assert gap.size >= 1 and all(6 < full_x[i] < 8 for i in gap)


def test_close_fill_equity_of_row_t_is_drawn_at_bar_t_plus_1(chart):
    frame = prices()
    chart.set_predictions(rows(frame, EQUITY_CLOSE), fill=FILL_CLOSE)
    x, y = drawn(chart.equity.model)
    assert x == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert y == pytest.approx([1.0, 1.01, 1.02, 1.03, 1.04, 1.0, 0.99, 0.98, 0.97, 0.96])
    full_x, full_y = chart.equity.model.getData()
    assert np.all(np.diff(full_x) >= 0)  # clip-to-view needs sorted x
    gap = np.flatnonzero(np.isnan(full_y))
    assert gap.size == 1 and 6 < full_x[gap[0]] < 7


def test_every_account_stays_inside_its_split_shading(chart):
    frame = prices()
    predictions = rows(frame, EQUITY_NEXT_OPEN)
    chart.set_splits(predictions[SPLIT])
    chart.set_predictions(predictions)
    spans = {region.property("split"): region.getRegion()
             for plot, region in chart._regions if plot is chart.equity_plot}
    assert spans[TRAIN] == (1.5, 6.5) and spans[VAL] == (6.5, 11.5)
    x, _ = drawn(chart.equity.model)
    assert all(1.5 < v < 6.5 for v in x[:4]) and all(6.5 < v < 11.5 for v in x[4:])


def test_baselines_and_the_seed_band_move_with_the_model(chart):
    frame = prices()
    predictions = rows(frame, EQUITY_NEXT_OPEN)
    hold = rows(frame, [1.05, 1.10, 1.15, NAN, NAN, 1.02, 1.04, 1.06, NAN, NAN])
    baselines = {BUY_AND_HOLD: hold, RANDOM_WALK: rows(frame, EQUITY_NEXT_OPEN),
                 MOMENTUM: rows(frame, EQUITY_NEXT_OPEN), DRIFT: rows(frame, EQUITY_NEXT_OPEN)}
    low = predictions[EQUITY] - 0.005
    high = predictions[EQUITY] + 0.005
    band = pd.DataFrame({ensemble.BAND_PREDICTED_LOW: predictions[CLOSE] * 0.99,
                         ensemble.BAND_PREDICTED_HIGH: predictions[CLOSE] * 1.01,
                         ensemble.BAND_EQUITY_LOW: low, ensemble.BAND_EQUITY_HIGH: high},
                        index=predictions.index)
    chart.set_predictions(predictions, baselines, band=band)
    x, y = drawn(chart.equity.curves[BUY_AND_HOLD])
    assert x == [3, 4, 5, 6, 8, 9, 10, 11]
    assert y == pytest.approx([1.0, 1.05, 1.10, 1.15, 1.0, 1.02, 1.04, 1.06])
    x, y = drawn(chart.equity.curves[RANDOM_WALK])  # the best baseline (all tie: the first)
    assert x == [3, 4, 5, 6, 8, 9, 10, 11]
    bx, blow = drawn(chart.equity.band.low)
    _, bhigh = drawn(chart.equity.band.high)
    assert bx == [3, 4, 5, 6, 8, 9, 10, 11]
    assert blow == pytest.approx([1.0, 1.005, 1.015, 1.025, 1.0, 0.985, 0.975, 0.965])
    assert bhigh == pytest.approx([1.0, 1.015, 1.025, 1.035, 1.0, 0.995, 0.985, 0.975])


def test_the_equity_y_range_reads_the_bars_where_equity_is_drawn(chart):
    frame = prices()
    chart.set_predictions(rows(frame, EQUITY_NEXT_OPEN))
    # bar 9 holds row 7's equity (0.99); bar 7 holds none (row 5 is purged)
    assert chart.equity.y_range(9, 10) == pytest.approx((0.99, 0.99))
    assert chart.equity.y_range(7, 8) is None
    assert chart.equity.y_range(0, N) == pytest.approx((0.97, 1.03))


def test_show_run_steps_use_the_runs_fill_and_validation_metrics(chart):
    frame = prices()
    predictions = rows(frame, EQUITY_CLOSE)
    baselines = {name: rows(frame, EQUITY_CLOSE) for name in (RANDOM_WALK, MOMENTUM, DRIFT)}
    val = {"baselines": {RANDOM_WALK: {TOTAL_RETURN: 0.01}, MOMENTUM: {TOTAL_RETURN: -0.02},
                         DRIFT: {TOTAL_RETURN: 0.03}}}
    run = SimpleNamespace(
        predictions=predictions, baselines=baselines, test_hidden=False, is_ensemble=False,
        n_seeds=1, band=None, metrics_by_split={VAL: val},
        config=SimpleNamespace(strategy=SimpleNamespace(fill=FILL_CLOSE)))
    for step in chart.show_run_steps(run):
        step()
    x, _ = drawn(chart.equity.model)
    assert x == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert chart.equity.baseline_name == DRIFT  # the metrics' validation figures decide


def test_account_points_by_hand():
    bar = np.array([5, 6, 7, 8, 9, 10])
    equity = np.array([1.1, NAN, 2.0, 2.2, 2.4, NAN])
    split = np.array([TRAIN, TRAIN, VAL, VAL, VAL, VAL])
    x, y, breaks, start = account_points(bar, equity, split, lag=2, n=20)
    assert x.tolist() == [6, 7, 8, 9, 10, 11]
    assert y.tolist() == [1.0, 1.1, 1.0, 2.0, 2.2, 2.4]
    assert breaks.tolist() == [False, True, False, False, False, False]
    assert start.tolist() == [True, False, True, False, False, False]
    # past the last bar nothing is drawn (its return is not realised on the chart)
    x, *_ = account_points(bar, equity, split, lag=2, n=11)
    assert x.tolist() == [6, 7, 8, 9, 10]
    assert realised_lag(FILL_NEXT_OPEN) == 2 and realised_lag(FILL_CLOSE) == 1
    with pytest.raises(ValueError, match="fill"):
        realised_lag("noon")


# ------------------------------------------------------------------------- item 9 -----------
def _disagreeing_baselines(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Momentum leads on validation, drift on test."""
    splits = [TRAIN] * 3 + [VAL] * 3 + [TEST] * 3

    def one(val_end: float, test_end: float) -> pd.DataFrame:
        return rows(frame, [1.0, 1.0, NAN, 1.0, val_end, NAN, 1.0, test_end, NAN], splits)

    return {RANDOM_WALK: one(1.00, 1.00), MOMENTUM: one(1.08, 0.95), DRIFT: one(1.03, 1.20),
            BUY_AND_HOLD: one(1.10, 1.10)}


def test_the_best_baseline_is_the_validation_one_and_the_legend_says_so(chart):
    frame = prices()
    baselines = _disagreeing_baselines(frame)
    splits = [TRAIN] * 3 + [VAL] * 3 + [TEST] * 3
    chart.set_predictions(rows(frame, [1.0] * 9, splits), baselines)
    assert chart.equity.baseline_name == MOMENTUM
    assert set(chart.equity.curves) == {"model", BUY_AND_HOLD, MOMENTUM}
    labels = [label.text for _sample, label in chart.equity.legend.items]
    assert "momentum (best baseline on validation)" in labels
    assert not any("drift" in label for label in labels)


def test_validation_metrics_decide_when_given():
    frame = prices()
    baselines = _disagreeing_baselines(frame)
    metrics = {"split": VAL, "baselines": {RANDOM_WALK: {TOTAL_RETURN: 0.30},
                                           MOMENTUM: {TOTAL_RETURN: 0.08},
                                           DRIFT: {TOTAL_RETURN: 0.03},
                                           BUY_AND_HOLD: {TOTAL_RETURN: 0.50}}}
    assert best_baseline(baselines, metrics=metrics) == RANDOM_WALK
    assert best_baseline(baselines) == MOMENTUM  # without metrics: validation equity
    assert best_baseline(baselines, split=TEST) == DRIFT
    # no validation rows at all: no baseline is called best
    only_test = {name: f[f[SPLIT] == TEST] for name, f in baselines.items()}
    assert best_baseline(only_test) is None
