"""The evidence beside every comparison (sandbox.significance).

Reference values come from outside this code: R's ``forecast::dm.test`` for the
Diebold-Mariano test, a Pesaran-Timmermann statistic worked by hand from the paper's
formulas, Wilson intervals from Newcombe's (1998) table, and a break-even cost solved by
hand. The rest checks behaviour: a forecast that knows the next return is called
significant, a random one is not, the cost curve meets the trading metrics exactly, the
figures are reproducible and JSON-safe on degenerate inputs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox import evaluate
from sandbox import significance as sig
from sandbox.backtest import trading_metrics
from sandbox.config import ModelConfig, RunConfig, StrategyConfig
from sandbox.data import LoadedPrices

# --- helpers -------------------------------------------------------------------------------------


def _prices(n: int, *, seed: int, gap: float = 0.0005) -> pd.DataFrame:
    """Seeded geometric random walk of daily bars (open = previous close times a small gap)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, gap, n))
    index = pd.bdate_range("2015-01-05", periods=n, name=C.INDEX_NAME)
    return pd.DataFrame({C.OPEN: open_, C.HIGH: np.maximum(open_, close) * 1.001,
                         C.LOW: np.minimum(open_, close) * 0.999, C.CLOSE: close,
                         C.VOLUME: np.full(n, 1e6)}, index=index)


def _frames(prices: pd.DataFrame, predicted: np.ndarray, labels: np.ndarray, *,
            drift: float = 0.0002) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Model and baseline frames on every bar but the first (which has no last return)."""
    close = prices[C.CLOSE].to_numpy()
    rows = prices.index[1:]
    c = close[1:]
    actual = np.r_[np.log(close[2:] / close[1:-1]), np.nan]
    momentum = np.log(close[1:] / close[:-1])
    model = evaluate.predictor_frame(rows, labels, c, actual, predicted)
    return model, evaluate.baseline_frames(rows, labels, c, actual, momentum, drift)


def _labels(n: int, train: int, val: int) -> np.ndarray:
    return np.array([C.TRAIN] * train + [C.VAL] * val + [C.TEST] * (n - train - val),
                    dtype=object)


def _traded(prices, model, baselines, strategy):
    trades = evaluate.trade_all(prices, model, baselines, strategy, target=C.TARGET_RETURN)
    return trades


def _run(prices, predicted, labels, strategy, *, split=C.TEST, **kwargs):
    model, baselines = _frames(prices, predicted, labels)
    trades = _traded(prices, model, baselines, strategy)
    metrics = trades.metrics_by_split[split]
    out = sig.significance(prices, trades.predictions, trades.baselines, strategy, split=split,
                           horizon=1, periods_per_year=metrics[C.PERIODS_PER_YEAR], **kwargs)
    return out, metrics, trades


def _actual(prices: pd.DataFrame) -> np.ndarray:
    close = prices[C.CLOSE].to_numpy()
    return np.r_[np.log(close[2:] / close[1:-1]), np.nan]


# --- import cost ---------------------------------------------------------------------------------


def test_importing_the_module_loads_neither_statsmodels_nor_arch():
    code = ("import sys, sandbox.significance; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'statsmodels', 'arch'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --- Diebold-Mariano: R's forecast::dm.test ---------------------------------------------------

#: one-step out-of-sample errors of ets() and auto.arima() on WWWusage[81:100], as quoted in
#: JuliaStats/HypothesisTests.jl PR #180 (test/diebold_mariano.jl) with R's dm.test p-values
E_ETS = np.array([0.002241270, -0.000661906, -1.200002613, -4.000218178, 3.799373533,
                  3.401005111, -1.199692125, -0.800490048, -1.200048999, 3.399847229,
                  7.000708948, 2.200989241, -4.800165569, -1.201043375, 3.400167556,
                  3.000709085, 0.400267950, -6.800169207, -2.401259050, 1.200112198])
E_ARIMA = np.array([0.1209998, 8.0622269, -0.9189429, -1.7952436, 5.3431277, 2.0459823,
                    -0.6073261, 0.5516816, -0.7633238, 4.1229472, 5.8785333, 1.2828331,
                    -3.4854233, 1.1971370, 3.1709314, 2.3408457, 0.4962286, -5.9841362,
                    0.1537114, 0.4207951])


@pytest.mark.parametrize(("loss", "two_sided", "less"), [
    # dm.test(e1, e2, h=1): p-value = 0.8871; alternative="less": 0.4435
    ("mse", 0.8871, 0.4435),
    # dm.test(e1, e2, h=1, power=1): p-value = 0.7818; alternative="less": 0.6091
    ("mae", 0.7818, 0.6091),
])
def test_diebold_mariano_matches_r_forecast_dm_test(loss, two_sided, less):
    # errors e = actual - forecast: with actual 0 the forecasts are -e
    zero = np.zeros(E_ETS.size)
    out = sig.diebold_mariano(zero, -E_ETS, -E_ARIMA, horizon=1, loss=loss)
    assert out["pvalue"] == pytest.approx(two_sided, abs=5e-5)
    # R's "less": method 1 (here the model) is more accurate, our pvalue_better
    assert out["pvalue_better"] == pytest.approx(less, abs=5e-5)


def test_diebold_mariano_sign_the_model_with_smaller_errors_has_a_negative_statistic():
    rng = np.random.default_rng(4)
    actual = rng.normal(0, 1, 200)
    good = actual + rng.normal(0, 0.1, 200)
    out = sig.diebold_mariano(actual, good, np.zeros(200))
    assert out["statistic"] < 0 and out["pvalue_better"] < 1e-6
    back = sig.diebold_mariano(actual, np.zeros(200), good)
    assert back["statistic"] == pytest.approx(-out["statistic"])
    assert back["pvalue_better"] > 1 - 1e-6


def test_diebold_mariano_with_identical_losses_is_no_test():
    a = np.array([0.01, -0.02, 0.03, 0.0])
    assert sig.diebold_mariano(a, a * 0, a * 0) == {
        "statistic": None, "pvalue": None, "pvalue_better": None}


# --- Pesaran-Timmermann: worked by hand -------------------------------------------------------


def test_pesaran_timmermann_worked_by_hand():
    # A 2 x 2 table of directions over n = 20 rows (actual by predicted):
    #                 predicted up   predicted down
    #   actual up          9               3          (12)
    #   actual down        1               7          ( 8)
    #                     (10)            (10)
    actual = np.array([1.0] * 9 + [2.0] * 3 + [-1.0] * 1 + [-2.0] * 7)
    predicted = np.array([0.5] * 9 + [-0.5] * 3 + [0.5] * 1 + [-0.5] * 7)
    n = 20
    p_hat = (9 + 7) / n  # 0.8, share of directions called right
    p_y, p_x = 12 / n, 10 / n  # 0.6 actual up, 0.5 predicted up
    p_star = p_y * p_x + (1 - p_y) * (1 - p_x)  # 0.5 expected under independence
    var_p = p_star * (1 - p_star) / n  # 0.25 / 20 = 0.0125
    var_p_star = ((2 * p_y - 1) ** 2 * p_x * (1 - p_x)
                  + (2 * p_x - 1) ** 2 * p_y * (1 - p_y)) / n  # 0.04 * 0.25 / 20 = 0.0005
    s_n = (p_hat - p_star) / math.sqrt(var_p - var_p_star)  # 0.3 / sqrt(0.012)
    assert s_n == pytest.approx(math.sqrt(7.5), rel=1e-12)  # 2.7386
    upper = 0.5 * math.erfc(s_n / math.sqrt(2))  # 1 - Phi(S_n) = 0.00308
    out = sig.pesaran_timmermann(actual, predicted)
    assert out["statistic"] == pytest.approx(s_n, rel=1e-12)
    assert out["pvalue_better"] == pytest.approx(upper, rel=1e-9)
    assert out["pvalue"] == pytest.approx(2 * upper, rel=1e-9)
    # The paper's variance of P* has a further 4 py px (1 - py)(1 - px) / n**2 = 0.0006;
    # statsmodels leaves it out (asymptotically nil): with it S_n would be sqrt(0.09 / 0.0114).
    exact = 0.3 / math.sqrt(var_p - var_p_star - 4 * p_y * p_x * (1 - p_y) * (1 - p_x) / n**2)
    assert exact == pytest.approx(math.sqrt(0.09 / 0.0114)) and exact > out["statistic"]


def test_pesaran_timmermann_is_none_when_every_prediction_points_the_same_way():
    out = sig.pesaran_timmermann(np.array([1.0, -1.0, 2.0, -3.0]), np.ones(4))
    assert out == {"statistic": None, "pvalue": None, "pvalue_better": None}


# --- Wilson intervals: Newcombe (1998) ---------------------------------------------------------


@pytest.mark.parametrize(("hits", "n", "low", "high"), [
    # Newcombe, Statistics in Medicine 17:857-872 (1998), Table II, method 3 (score interval
    # without continuity correction), 95 %; the same four cases R's meta::metaprop examples use
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_newcombe_1998(hits, n, low, high):
    lo, hi = sig.wilson_interval(hits, n, level=0.95)
    assert round(lo, 4) == low and round(hi, 4) == high


def test_wilson_interval_of_nothing_is_none():
    assert sig.wilson_interval(0, 0) is None


# --- the whole object on synthetic runs -----------------------------------------------------------


N_BARS = 800
LABELS = _labels(N_BARS - 1, 400, 150)  # test: 249 rows


def test_a_forecast_that_knows_the_next_return_is_significant():
    prices = _prices(N_BARS, seed=1)
    noise = np.random.default_rng(2).normal(0.0, 0.001, N_BARS - 1)
    predicted = np.nan_to_num(_actual(prices)) + noise
    out, _, _ = _run(prices, predicted, LABELS, StrategyConfig(cost_bps=5, fill=C.FILL_CLOSE))
    for name in C.FORECAST_BASELINES:
        assert out["dm"][name]["mse"]["pvalue_better"] < 0.01
        assert out["dm"][name]["mae"]["pvalue_better"] < 0.01
        assert out["dm"][name]["mse"]["statistic"] < 0
    assert out["pesaran_timmermann"]["pvalue_better"] < 1e-6
    assert out["spa"]["better_than_all"] is True
    assert out["spa"]["pvalue_consistent"] < 0.01
    assert out["sharpe_diff_ci"]["buy_and_hold"][0] > 0
    assert out["hit_rate_ci"][0] > 0.8
    assert out["echo"]["best_lag"] == 0 and out["echo"]["echo"] is False


def test_a_random_forecast_is_not_significant():
    prices = _prices(N_BARS, seed=1)
    predicted = np.random.default_rng(3).normal(0.0, 0.01, N_BARS - 1)
    out, _, _ = _run(prices, predicted, LABELS, StrategyConfig(cost_bps=5))
    for name in C.FORECAST_BASELINES:
        assert out["dm"][name]["mse"]["pvalue_better"] > 0.05
    assert out["pesaran_timmermann"]["pvalue_better"] > 0.05
    assert out["spa"]["better_than_all"] is False
    assert out["echo"]["best_lag"] == 1  # yesterday's price plus noise
    assert out["hit_rate_ci"][0] < 0.5 < out["hit_rate_ci"][1]


def test_a_forecast_of_zero_is_an_echo_of_the_random_walk():
    prices = _prices(300, seed=5)
    out, _, _ = _run(prices, np.zeros(299), _labels(299, 150, 50), StrategyConfig())
    assert out["dm"][C.RANDOM_WALK]["mse"]["pvalue"] is None  # identical: no test
    assert out["echo"]["echo"] is True
    assert out["echo"]["best_lag"] == 1
    assert out["echo"]["corr_with_constant"] is None
    assert out["hit_rate"] is None and out["hit_rate_ci"] is None
    # it never trades: the same returns as the random walk, no evidence either way
    assert out["spa"]["pvalues"][C.RANDOM_WALK] == 1.0
    assert out["spa"]["better_than_all"] is False


def test_momentum_as_the_forecast_is_an_echo_with_correlation_one():
    prices = _prices(300, seed=6)
    close = prices[C.CLOSE].to_numpy()
    out, _, _ = _run(prices, np.log(close[1:] / close[:-1]), _labels(299, 150, 50),
                     StrategyConfig())
    assert out["echo"]["corr_with_last_return"] == pytest.approx(1.0)
    assert out["echo"]["echo"] is True


def test_the_rows_are_those_of_the_split():
    prices = _prices(N_BARS, seed=1)
    predicted = np.random.default_rng(3).normal(0.0, 0.01, N_BARS - 1)
    out, metrics, trades = _run(prices, predicted, LABELS, StrategyConfig())
    test = trades.predictions[trades.predictions[C.SPLIT] == C.TEST]
    assert out["rows"]["forecast"] == int(test[C.ACTUAL_RETURN].notna().sum())  # 248
    assert out["rows"]["trading"] == int(test[C.STRATEGY_RETURN].notna().sum())  # 247
    actual = test[C.ACTUAL_RETURN].dropna()
    assert out["rows"]["direction"] == int((actual != 0).sum())
    assert out["hit_rate"] == metrics[C.MODEL][C.DIRECTIONAL_ACCURACY]


# --- cost sensitivity ---------------------------------------------------------------------------


@pytest.mark.parametrize("split", [C.VAL, C.TEST])
@pytest.mark.parametrize("strategy", [
    StrategyConfig(cost_bps=5),
    StrategyConfig(cost_bps=7.5, fill=C.FILL_CLOSE),
    StrategyConfig(strategy=C.LONG_SHORT, threshold_bps=2, cost_bps=20),
])
def test_cost_curve_at_the_runs_cost_is_the_runs_trading_metrics(split, strategy):
    prices = _prices(N_BARS, seed=7)
    predicted = 0.5 * np.nan_to_num(_actual(prices)) + np.random.default_rng(8).normal(
        0.0, 0.008, N_BARS - 1)
    out, metrics, _ = _run(prices, predicted, LABELS, strategy, split=split)
    curve = out["cost_sensitivity"]
    i = curve["costs_bps"].index(float(strategy.cost_bps))
    assert curve["total_return"][i] == metrics[C.MODEL][C.TOTAL_RETURN]  # exactly
    assert curve["sharpe"][i] == pytest.approx(metrics[C.MODEL][C.SHARPE], rel=1e-12)
    hold = metrics[evaluate.KEY_BASELINES][C.BUY_AND_HOLD]
    assert curve["buy_and_hold_total_return"][i] == hold[C.TOTAL_RETURN]
    assert curve["buy_and_hold_sharpe"][i] == pytest.approx(hold[C.SHARPE], rel=1e-12)
    assert curve["costs_bps"][:3] == [0.0, 1.0, 2.0] and curve["costs_bps"][-1] == 50.0
    assert all(a >= b for a, b in zip(curve["total_return"], curve["total_return"][1:],
                                      strict=False))


def _tiny_run(closes: list[float], predicted: list[float], cost_bps: float = 0.0):
    index = pd.bdate_range("2024-01-01", periods=len(closes), name=C.INDEX_NAME)
    close = np.array(closes, dtype=float)
    prices = pd.DataFrame({C.OPEN: close, C.HIGH: close, C.LOW: close, C.CLOSE: close,
                           C.VOLUME: np.ones(len(close))}, index=index)
    labels = np.array([C.TEST] * len(close), dtype=object)
    actual = np.r_[np.log(close[1:] / close[:-1]), np.nan]
    momentum = np.r_[0.0, np.log(close[1:] / close[:-1])]
    model = evaluate.predictor_frame(index, labels, close, actual, np.array(predicted))
    base = evaluate.baseline_frames(index, labels, close, actual, momentum, 0.0)
    strategy = StrategyConfig(cost_bps=cost_bps, fill=C.FILL_CLOSE)
    return sig.significance(prices, model, base, strategy, horizon=1, periods_per_year=252.0)


def test_break_even_costs_solved_by_hand():
    # close fill; long on row 0 only: r0 = 101/100 - 1 - c = 0.01 - c, r1 = -c (the exit),
    # the rest flat; buy & hold: r0 = 0.01 - c, then 101 -> 99, then flat.
    out = _tiny_run([100, 101, 101, 99, 99, 99, 99, 99], [1, -1, -1, -1, -1, -1, -1, -1])
    curve = out["cost_sensitivity"]
    # model: (1.01 - c)(1 - c) = 1  ->  c^2 - 2.01 c + 0.01 = 0
    c_model = (2.01 - math.sqrt(2.01**2 - 4 * 0.01)) / 2
    assert curve["break_even_bps"] == pytest.approx(c_model * 1e4, abs=1e-6)  # 49.88 bps
    # model vs hold: (1.01 - c)(1 - c) = (1.01 - c) * 99 / 101  ->  c = 2 / 101
    assert curve["break_even_vs_buy_and_hold_bps"] == pytest.approx(2 / 101 * 1e4, abs=1e-6)
    assert curve["total_return"][0] == pytest.approx(0.01, abs=1e-15)
    assert curve["total_return"][10] == pytest.approx((1.01 - 1e-3) * (1 - 1e-3) - 1, abs=1e-15)


def test_break_even_is_none_when_the_model_loses_before_costs():
    out = _tiny_run([100, 99, 99, 99, 99, 99], [1, -1, -1, -1, -1, -1])
    assert out["cost_sensitivity"]["total_return"][0] < 0
    assert out["cost_sensitivity"]["break_even_bps"] is None
    assert out["cost_sensitivity"]["break_even_vs_buy_and_hold_bps"] is None


# --- SPA across many candidates (sweeps, ensembles) ----------------------------------------------


def test_spa_finds_the_one_good_candidate_among_many_and_none_among_noise():
    rng = np.random.default_rng(1)  # (the size holds: 5 of 100 seeds reject at 5 %)
    bench = rng.normal(0.0, 0.01, 500)
    noise = rng.normal(0.0, 0.01, (500, 8))
    good = np.column_stack([noise, bench + 0.004 + rng.normal(0, 0.002, 500)])
    found = sig.spa_pvalues(bench, good, block_length=3, reps=500, seed=0)
    assert found["consistent"] < 0.01
    none = sig.spa_pvalues(bench, noise, block_length=3, reps=500, seed=0)
    assert none["consistent"] > 0.1
    assert none["lower"] <= none["consistent"] <= none["upper"]
    # a candidate that is the benchmark is no evidence (arch alone would say p = 0)
    same = sig.spa_pvalues(bench, bench[:, None], block_length=3, reps=100, seed=0)
    assert same == {"lower": 1.0, "consistent": 1.0, "upper": 1.0}


# --- Sharpe ratios as the trading metrics compute them -----------------------------------------


def test_sharpe_ratios_match_the_trading_metrics():
    rng = np.random.default_rng(9)
    draws = np.vstack([rng.normal(0.001, 0.01, (5, 40)), np.full((1, 40), 0.002),
                       np.zeros((1, 40))])
    got = sig.sharpe_ratios(draws, 252.0)
    for row, value in zip(draws, got, strict=True):
        want = trading_metrics(row, np.ones(row.size), periods_per_year=252.0)[C.SHARPE]
        assert value == pytest.approx(want, rel=1e-12, abs=0)
    assert got[-2] == 0.0 and got[-1] == 0.0  # constant returns: 0, as the metrics say


# --- reproducible and JSON-safe ------------------------------------------------------------------


def test_the_same_seed_gives_the_same_figures_and_another_seed_other_intervals():
    prices = _prices(N_BARS, seed=1)
    predicted = np.random.default_rng(3).normal(0.0, 0.01, N_BARS - 1)
    first, _, _ = _run(prices, predicted, LABELS, StrategyConfig(), seed=11, reps=300)
    again, _, _ = _run(prices, predicted, LABELS, StrategyConfig(), seed=11, reps=300)
    other, _, _ = _run(prices, predicted, LABELS, StrategyConfig(), seed=12, reps=300)
    assert json.dumps(first, allow_nan=False) == json.dumps(again, allow_nan=False)
    assert first["sharpe_ci"] != other["sharpe_ci"]
    assert first["dm"] == other["dm"]  # the tests themselves draw nothing
    assert first["reps"] == 300 and first["seed"] == 11


@pytest.mark.parametrize("case", ["zeros", "five_rows", "constant_prices"])
def test_json_safe_on_degenerate_inputs(case):
    if case == "zeros":
        prices = _prices(120, seed=3)
        out, _, _ = _run(prices, np.zeros(119), _labels(119, 60, 20), StrategyConfig())
    elif case == "five_rows":
        prices = _prices(6, seed=3)
        out, _, _ = _run(prices, np.full(5, 0.01), np.array([C.TEST] * 5, dtype=object),
                         StrategyConfig())
    else:
        prices = _prices(60, seed=3)
        for col in (C.OPEN, C.HIGH, C.LOW, C.CLOSE):
            prices[col] = 100.0
        out, _, _ = _run(prices, np.random.default_rng(0).normal(0, 0.01, 59),
                         _labels(59, 30, 10), StrategyConfig())
        assert out["pesaran_timmermann"]["pvalue"] is None  # no actual direction at all
        assert out["cost_sensitivity"]["break_even_bps"] is None
    text = json.dumps(out, allow_nan=False)
    assert set(json.loads(text)) >= {
        "dm", "pesaran_timmermann", "hit_rate_ci", "sharpe_ci", "total_return_ci",
        "sharpe_diff_ci", "spa", "echo", "cost_sensitivity", "rows", "level", "reps",
        "block_length"}


def test_an_empty_split_gives_the_full_shape_with_nothing_in_it():
    prices = _prices(60, seed=3)
    out, _, _ = _run(prices, np.full(59, 0.01), _labels(59, 40, 19), StrategyConfig())
    assert out["rows"] == {"forecast": 0, "direction": 0, "trading": 0}
    assert out["sharpe_ci"] is None and out["spa"]["pvalue_consistent"] is None
    json.dumps(out, allow_nan=False)


def test_bad_arguments_are_refused():
    prices = _prices(60, seed=3)
    model, baselines = _frames(prices, np.zeros(59), _labels(59, 30, 10))
    kwargs = {"horizon": 1, "periods_per_year": 252.0}
    with pytest.raises(ValueError, match="missing momentum"):
        sig.significance(prices, model, {k: v for k, v in baselines.items() if k != C.MOMENTUM},
                         StrategyConfig(), **kwargs)
    with pytest.raises(ValueError, match="level"):
        sig.significance(prices, model, baselines, StrategyConfig(), level=1.0, **kwargs)
    with pytest.raises(ValueError, match="split"):
        sig.significance(prices, model, baselines, StrategyConfig(), split="oos", **kwargs)
    with pytest.raises(ValueError, match="best_baseline"):
        sig.significance(prices, model, baselines, StrategyConfig(), best_baseline="model",
                         **kwargs)


# --- from a finished run -------------------------------------------------------------------------


def test_of_run_reads_the_runs_own_settings():
    prices = _prices(N_BARS, seed=1)
    predicted = np.random.default_rng(3).normal(0.0, 0.01, N_BARS - 1)
    strategy = StrategyConfig(cost_bps=3, fill=C.FILL_CLOSE)
    model, baselines = _frames(prices, predicted, LABELS)
    trades = _traded(prices, model, baselines, strategy)
    run = SimpleNamespace(
        config=RunConfig(model=ModelConfig(target=C.TARGET_RETURN), strategy=strategy),
        data=LoadedPrices(frame=prices, label="walk", source="frame"),
        predictions=trades.predictions, baselines=trades.baselines,
        metrics_by_split=trades.metrics_by_split)
    got = sig.of_run(run, split=C.VAL, reps=200)
    best = evaluate.best_baseline(trades.metrics_by_split[C.VAL], C.TOTAL_RETURN, lower=False,
                                  names=evaluate.TRADING_BASELINES)[0]
    want = sig.significance(prices, trades.predictions, trades.baselines, strategy,
                            split=C.VAL, horizon=1, reps=200, best_baseline=best,
                            periods_per_year=trades.metrics_by_split[C.VAL][C.PERIODS_PER_YEAR])
    assert got == want and got[C.SPLIT] == C.VAL and got["best_baseline"] == best
