from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox import evaluate
from sandbox.backtest import backtest, infer_periods_per_year, trading_metrics
from sandbox.config import StrategyConfig


def test_directional_accuracy_counts_zero_predictions_as_misses():
    actual = np.array([0.01, -0.02, 0.03, 0.0, -0.01])
    predicted = np.array([0.5, 0.1, 0.0, 0.2, -0.3])
    # rows with actual != 0: hit, miss, miss (0 predicted), hit -> 2 / 4
    assert evaluate.directional_accuracy(predicted, actual) == 0.5


def test_directional_accuracy_is_none_for_a_predictor_that_is_always_zero():
    assert evaluate.directional_accuracy(np.zeros(3), np.array([0.1, -0.1, 0.2])) is None


def test_forecast_metrics_golden_numbers_and_unknown_rows_left_out():
    actual = np.array([0.01, -0.02, 0.03, np.nan])
    predicted = np.array([0.02, -0.01, 0.0, 5.0])
    m = evaluate.forecast_metrics(predicted, actual)
    assert m[C.RMSE] == pytest.approx(math.sqrt((1e-4 + 1e-4 + 9e-4) / 3))
    assert m[C.MAE] == pytest.approx((0.01 + 0.01 + 0.03) / 3)
    assert m[C.DIRECTIONAL_ACCURACY] == pytest.approx(2 / 3)
    assert m[C.THEIL_U2] == pytest.approx(math.sqrt(11e-4 / 14e-4))


def test_random_walk_has_theil_u2_of_one():
    actual = np.array([0.01, -0.02, 0.005])
    m = evaluate.forecast_metrics(np.zeros(3), actual)
    assert m[C.THEIL_U2] == 1.0 and m[C.DIRECTIONAL_ACCURACY] is None


def test_baseline_forecasts():
    b = evaluate.baseline_forecasts(np.array([0.1, -0.2]), 0.003, 2)
    assert set(b) == set(C.BASELINES)
    np.testing.assert_array_equal(b[C.RANDOM_WALK], [0.0, 0.0])
    np.testing.assert_array_equal(b[C.MOMENTUM], [0.1, -0.2])
    np.testing.assert_array_equal(b[C.DRIFT], [0.003, 0.003])
    assert np.isnan(b[C.BUY_AND_HOLD]).all()


def test_predictor_frame_has_the_contract_columns():
    rows = pd.bdate_range("2020-01-01", periods=3)
    f = evaluate.predictor_frame(rows, np.array([C.TRAIN, C.VAL, C.TEST]), np.ones(3),
                                 np.zeros(3), np.zeros(3))
    assert [f.index.name, *f.columns] == list(C.PREDICTION_COLUMNS)


def test_split_metrics_shape():
    rows = pd.bdate_range("2020-01-01", periods=4)
    split = np.array([C.TEST] * 4)
    actual = np.array([0.01, -0.01, 0.02, np.nan])
    frame = evaluate.predictor_frame(rows, split, np.ones(4), actual, np.array([1, 1, 1, 1.0]))
    base = {n: evaluate.predictor_frame(rows, split, np.ones(4), actual, v)
            for n, v in evaluate.baseline_forecasts(np.zeros(4), 0.0, 4).items()}
    trading = {C.TOTAL_RETURN: 0.1}
    m = evaluate.split_metrics(C.TEST, C.TARGET_RETURN, frame, trading, base,
                               {n: trading for n in C.BASELINES}, periods_per_year=252.0)
    assert m[evaluate.KEY_SPLIT] == C.TEST and m[evaluate.KEY_TARGET] == C.TARGET_RETURN
    assert m[evaluate.KEY_PERIODS_PER_YEAR] == 252.0
    assert list(m)[:3] == [evaluate.KEY_SPLIT, evaluate.KEY_TARGET, "periods_per_year"]
    assert set(m[C.MODEL]) == set(C.FORECAST_METRICS) | {C.TOTAL_RETURN}
    assert m[C.MODEL][C.DIRECTIONAL_ACCURACY] == pytest.approx(2 / 3)
    assert set(m[evaluate.KEY_BASELINES]) == set(C.BASELINES)
    assert m[evaluate.KEY_BASELINES][C.BUY_AND_HOLD] == trading
    assert m[evaluate.KEY_BASELINES][C.DRIFT][C.DIRECTIONAL_ACCURACY] is None


# --- splits trade on their own prices only ------------------------------------------------------
#
#   row  date        split  open  close  predicted  position (long_flat)
#   0    2024-01-01  train  100   100.5   0.01      1
#   1    2024-01-02  train  101   102    -0.01      0
#   2    2024-01-03  train  103   102.5   0.02      1
#   3    2024-01-04  train  102   104     0.01      1
#   4    2024-01-05  train  105   106     0.03      1
#   5    2024-01-08  val    107   105     0.01      1
#   6    2024-01-09  val    104   106    -0.02      0
#   7    2024-01-10  val    108   109     0.01      1
#   8    2024-01-11  val    110   109.5   0.01      1
#   9    2024-01-12  val    109   110     0.02      1
#   10   2024-01-15  test   111   113     0.01      1
#   11   2024-01-16  test   115   114     0.01      1
#   12   2024-01-17  test   113   115    -0.01      0
#   13   2024-01-18  test   116   117     0.01      1

OPENS = [100, 101, 103, 102, 105, 107, 104, 108, 110, 109, 111, 115, 113, 116]
CLOSES = [100.5, 102, 102.5, 104, 106, 105, 106, 109, 109.5, 110, 113, 114, 115, 117]
PREDICTED = [0.01, -0.01, 0.02, 0.01, 0.03, 0.01, -0.02, 0.01, 0.01, 0.02, 0.01, 0.01, -0.01,
             0.01]
LABELS = [C.TRAIN] * 5 + [C.VAL] * 5 + [C.TEST] * 4
COST = 10 / 10_000


def _tiny():
    index = pd.bdate_range("2024-01-01", periods=14, name=C.INDEX_NAME)
    prices = pd.DataFrame({C.OPEN: np.array(OPENS, dtype=float),
                           C.CLOSE: np.array(CLOSES, dtype=float)}, index=index)
    close = prices[C.CLOSE].to_numpy()
    actual = np.r_[np.log(close[1:] / close[:-1]), np.nan]
    frame = evaluate.predictor_frame(index, np.array(LABELS, dtype=object), close, actual,
                                     np.array(PREDICTED))
    return prices, frame


def _drawdown(equity) -> float:
    peak, worst = 1.0, 0.0
    for e in equity:
        peak = max(peak, e)
        worst = min(worst, e / peak - 1)
    return worst


def test_next_open_purges_the_last_two_rows_of_train_and_val():
    prices, frame = _tiny()
    strategy = StrategyConfig(cost_bps=10, fill=C.FILL_NEXT_OPEN)
    traded, metrics = evaluate.paper_trade(prices, frame, strategy)
    o = OPENS
    nan = math.nan
    expected = [
        1 * (o[2] / o[1] - 1) - COST,   # row 0: opens 1 -> 2, both train
        0.0 - COST,                     # row 1: exit
        1 * (o[4] / o[3] - 1) - COST,   # row 2: opens 3 -> 4, both train
        nan, nan,                       # rows 3, 4 would use val's opens 5 and 6
        1 * (o[7] / o[6] - 1) - COST,   # row 5: a fresh account, entry cost
        0.0 - COST,                     # row 6
        1 * (o[9] / o[8] - 1) - COST,   # row 7: opens 8 -> 9, both val
        nan, nan,                       # rows 8, 9 would use test's opens 10 and 11
        1 * (o[12] / o[11] - 1) - COST,  # row 10: the test split ends at the file end
        1 * (o[13] / o[12] - 1),        # row 11
        nan, nan,                       # rows 12, 13: no open[t+2] in the file
    ]
    np.testing.assert_allclose(traded[C.STRATEGY_RETURN], expected, rtol=0, atol=1e-12)
    # positions stay filled on purged rows
    np.testing.assert_array_equal(traded[C.POSITION], [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1])
    for split, rows in ((C.TRAIN, [0, 1, 2]), (C.VAL, [5, 6, 7]), (C.TEST, [10, 11])):
        equity = np.cumprod([1 + expected[i] for i in rows])
        got = traded[C.EQUITY].to_numpy()[[i for i, lab in enumerate(LABELS) if lab == split]]
        np.testing.assert_allclose(got[: len(rows)], equity, rtol=0, atol=1e-12)
        assert np.isnan(got[len(rows):]).all()

    # the validation metrics, worked out from rows 5, 6 and 7 only
    r = [expected[5], expected[6], expected[7]]
    equity = list(np.cumprod([1 + x for x in r]))
    val = metrics[C.VAL]
    assert val[C.TOTAL_RETURN] == pytest.approx(equity[-1] - 1, abs=1e-12)
    assert val[C.SHARPE] == pytest.approx(
        np.mean(r) / np.std(r, ddof=1) * math.sqrt(252), abs=1e-9)
    assert val[C.MAX_DRAWDOWN] == pytest.approx(_drawdown(equity), abs=1e-12)
    assert val[C.N_TRADES] == 3 and val[C.TURNOVER] == pytest.approx(3.0)
    assert val[C.EXPOSURE] == pytest.approx(2 / 3)
    assert val[C.WIN_RATE] == pytest.approx(1 / 2)  # row 5 gains, row 7 loses
    # row 5 (2024-01-08) to bar 9 (2024-01-12), where row 7's return is realised
    assert val[C.CAGR] == pytest.approx(equity[-1] ** (365.25 / 4) - 1, rel=1e-12)
    assert "periods_per_year" not in val  # one value per split object, at its top level


def test_close_fill_purges_the_last_row_of_train_and_val():
    prices, frame = _tiny()
    strategy = StrategyConfig(cost_bps=0, fill=C.FILL_CLOSE)
    traded, metrics = evaluate.paper_trade(prices, frame, strategy)
    missing = np.flatnonzero(traded[C.STRATEGY_RETURN].isna().to_numpy())
    np.testing.assert_array_equal(missing, [4, 9, 13])
    assert np.isnan(traded[C.EQUITY].to_numpy()[[4, 9, 13]]).all()
    c = CLOSES
    # val rows 5..8, positions 1 0 1 1: closes 5 -> 6, flat, 7 -> 8, 8 -> 9 (all val)
    assert metrics[C.VAL][C.TOTAL_RETURN] == pytest.approx(
        c[6] / c[5] * c[8] / c[7] * c[9] / c[8] - 1, abs=1e-12)
    # train rows 0..3, positions 1 0 1 1: closes 0 -> 1, flat, 2 -> 3, 3 -> 4
    assert metrics[C.TRAIN][C.TOTAL_RETURN] == pytest.approx(
        c[1] / c[0] * c[3] / c[2] * c[4] / c[3] - 1, abs=1e-12)


def test_the_test_split_trades_as_on_the_whole_file():
    prices, frame = _tiny()
    strategy = StrategyConfig(cost_bps=10)
    traded, metrics = evaluate.paper_trade(prices, frame, strategy)
    test = traded[C.SPLIT] == C.TEST
    alone = backtest(prices, traded.loc[test, C.POSITION], cost_bps=10)
    np.testing.assert_array_equal(traded.loc[test, C.EQUITY], alone.frame[C.EQUITY])
    assert metrics[C.TEST] == {k: v for k, v in alone.metrics.items()
                               if k != "periods_per_year"}


def test_baselines_are_purged_the_same_way():
    prices, frame = _tiny()
    rows, labels = frame.index, frame[C.SPLIT].to_numpy()
    base = evaluate.baseline_frames(rows, labels, frame[C.CLOSE].to_numpy(),
                                    frame[C.ACTUAL_RETURN].to_numpy(), np.zeros(14), 0.001)
    trades = evaluate.trade_all(prices, frame, base, StrategyConfig(cost_bps=10),
                                target=C.TARGET_RETURN)
    for name in (C.BUY_AND_HOLD, C.DRIFT):  # both long on every row
        missing = np.flatnonzero(trades.baselines[name][C.STRATEGY_RETURN].isna().to_numpy())
        np.testing.assert_array_equal(missing, [3, 4, 8, 9, 12, 13])
    o = OPENS
    hold = trades.metrics_by_split[C.VAL][evaluate.KEY_BASELINES][C.BUY_AND_HOLD]
    assert hold[C.TOTAL_RETURN] == pytest.approx(
        (o[7] / o[6] - COST) * o[8] / o[7] * o[9] / o[8] - 1, abs=1e-12)
    assert hold[C.N_TRADES] == 1 and hold[C.EXPOSURE] == 1.0


def test_every_split_carries_the_one_periods_per_year_of_the_run():
    # daily bars Monday to Thursday for three years: 208.7 a year, measured over the file;
    # validation and test span a few weeks each, too short to measure on their own
    days = pd.bdate_range("2020-01-06", "2022-12-30")
    index = pd.DatetimeIndex(days[days.day_of_week <= 3], name=C.INDEX_NAME)
    n = len(index)
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    prices = pd.DataFrame({C.OPEN: close * np.exp(rng.normal(0, 0.002, n)), C.CLOSE: close},
                          index=index)
    labels = np.array([C.TRAIN] * (n - 40) + [C.VAL] * 20 + [C.TEST] * 20, dtype=object)
    actual = np.r_[np.log(close[1:] / close[:-1]), np.nan]
    frame = evaluate.predictor_frame(index, labels, close, actual, rng.normal(0, 0.01, n))
    base = evaluate.baseline_frames(index, labels, close, actual, np.r_[0.0, actual[:-1]], 0.0)

    measured = infer_periods_per_year(index)
    assert measured == round((n - 1) / ((index[-1] - index[0]).days / 365.25))
    assert infer_periods_per_year(index[labels == C.VAL]) != measured
    trades = evaluate.trade_all(prices, frame, base, StrategyConfig(), target=C.TARGET_RETURN)
    for split in C.SPLITS:
        m = trades.metrics_by_split[split]
        assert m[evaluate.KEY_PERIODS_PER_YEAR] == measured
        rows = trades.predictions[trades.predictions[C.SPLIT] == split]
        again = trading_metrics(rows[C.STRATEGY_RETURN], rows[C.POSITION],
                                periods_per_year=measured)
        assert m[C.MODEL][C.SHARPE] == pytest.approx(again[C.SHARPE], rel=1e-12)
        hold = trades.baselines[C.BUY_AND_HOLD]
        hold = hold[hold[C.SPLIT] == split]
        again = trading_metrics(hold[C.STRATEGY_RETURN], hold[C.POSITION],
                                periods_per_year=measured)
        assert m[evaluate.KEY_BASELINES][C.BUY_AND_HOLD][C.SHARPE] == pytest.approx(
            again[C.SHARPE], rel=1e-12)

    # the user's override wins, also when only the trading figures are redone
    override = evaluate.trade_all(prices, frame, base, StrategyConfig(periods_per_year=300.0),
                                  target=C.TARGET_RETURN,
                                  forecast_metrics=trades.metrics_by_split)
    for split in C.SPLITS:
        m = override.metrics_by_split[split]
        assert m[evaluate.KEY_PERIODS_PER_YEAR] == 300.0
        before = trades.metrics_by_split[split][C.MODEL][C.SHARPE]
        assert m[C.MODEL][C.SHARPE] == pytest.approx(before * math.sqrt(300.0 / measured))
