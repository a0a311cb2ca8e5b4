"""Evidence beside every comparison of the model with a baseline, for one split.

:func:`significance` turns what a run already has (the price frame, the model's and the
baselines' predictions frames, the strategy) into the ``"significance"`` object of a split's
``metrics.json``; :func:`of_run` does the same from a finished run. Everything is computed
on exactly the rows the comparison uses, with statsmodels and arch (imported inside the
functions that need them, so importing this module stays cheap and the app's start-up never
loads them), and the result is plain JSON: floats, ints, bools, strings, lists and None,
never NaN.

Rows
----
- *forecast rows*: the split's rows where the actual return, the model's predicted return
  and every forecasting baseline's (random walk, momentum, drift) are finite. The
  Diebold-Mariano tests and the echo check use them.
- *direction rows*: the forecast rows whose actual return is not 0 (a zero return has no
  direction), as ``directional_accuracy`` counts them. The hit rate, its Wilson interval
  and the Pesaran-Timmermann test use them.
- *trading rows*: the split's rows where the model and every trading baseline (buy & hold,
  random walk, momentum, drift) have a trading return, i.e. the rows the split's trading
  metrics are computed on (purged rows and the last rows of the file have none). The
  bootstrap intervals, the SPA test and the cost sensitivity use them.

The tests
---------
- ``dm[baseline][loss]``: statsmodels' ``diebold_mariano_test(actual, model, baseline,
  lags=horizon - 1, horizon=horizon, harvey_adj=True, criterion=loss)`` on the predicted
  returns, ``loss`` ``"mse"`` (squared error) or ``"mae"`` (absolute error). Its loss
  differential is ``loss(model) - loss(baseline)``, so a negative ``statistic`` means the
  model's errors are smaller. With the Harvey-Leybourne-Newbold correction the statistic is
  scaled by ``sqrt((n + 1 - 2h + h(h - 1) / n) / n)`` and referred to Student's t with
  ``n - 1`` degrees of freedom: ``pvalue`` is two-sided (equal accuracy), ``pvalue_better``
  the one-sided ``P(t <= statistic)`` of "the model's loss is lower". The long-run variance
  is Newey-West's (Bartlett weights) with ``h - 1`` lags: for ``h = 1`` this is R's
  ``forecast::dm.test``; for ``h > 1`` R weighs the autocovariances uniformly instead.
  Identical losses on every row (a model that is the baseline) give no test: all None.
- ``pesaran_timmermann``: statsmodels' ``stats.diagnostic.pesaran_timmermann`` on the
  direction rows (a direction is ``> 0`` or not). ``pvalue`` is two-sided, ``pvalue_better``
  one-sided for "better than chance" (PT 1992 report this one). statsmodels' variance of
  ``P*`` omits the ``4 py pz (1 - py)(1 - pz) / n**2`` term of the paper, an ``O(1/n)``
  relative difference. None when every actual or every predicted direction is the same.
- ``hit_rate`` and ``hit_rate_ci``: ``directional_accuracy`` (a prediction of exactly 0 is a
  miss) and its Wilson score interval at ``level`` (``proportion_confint(method="wilson")``).
- Bootstrap intervals: arch's ``StationaryBootstrap`` with a fixed seed (a numpy
  ``Generator`` from ``seed``) draws ``reps`` index arrays over the trading rows once; every
  statistic is computed on all of them at once (paired: the model and a baseline share each
  draw). The expected block length is the ``"stationary"`` column of arch's
  ``optimal_block_length`` (Politis-White with the Patton-Politis-White correction) of the
  model's trading returns, rounded up to a whole number of bars (1 when it is undefined).
  Intervals are percentile intervals (numpy's linear quantiles at ``(1 - level) / 2`` and
  ``(1 + level) / 2``). ``sharpe_ci`` and ``total_return_ci`` are the model's;
  ``sharpe_diff_ci`` the model's Sharpe ratio minus buy & hold's and minus the best
  baseline's; ``share_better`` the share of draws whose total return beats theirs. Sharpe
  ratios follow the trading metrics exactly (the one rule, :func:`sandbox.backtest.sharpe_ratios`).
- ``spa``: Hansen's SPA (arch ``bootstrap.SPA``, losses = minus the trading returns, same
  block length, reps and seed) of the model against each trading baseline in turn. "Better
  than all" is an intersection of nulls, so its p-value is the largest of the per-baseline
  consistent p-values (an intersection-union test needs no multiplicity correction):
  ``better_than_all`` is ``pvalue_consistent < 1 - level``. :func:`spa_pvalues` is the
  general test (one benchmark, many candidates: a sweep's configurations, an ensemble's
  members).
- ``echo``: is the forecast just the last observation? ``corr_with_last_return`` is the
  Pearson correlation of the predicted return with the last return (the momentum
  baseline's forecast). A correlation with a constant is undefined, so
  ``corr_with_constant`` is the uncentred one, ``mean(p) / sqrt(mean(p**2))``: +-1 for a
  forecast that is a non-zero constant (the drift), near 0 for one that moves around 0, None
  for the random walk's 0; ``std_ratio`` is ``std(p) / std(actual)`` (near 0: the forecast
  hardly moves). ``best_lag`` is the lag ``k`` in -5..+5 at which the predicted close
  ``close[t] * exp(p[t])`` (the forecast of bar ``t + 1``) is closest, in root mean squared
  log difference (``lag_rmse``), to the actual close of bar ``t + 1 - k``: 0 for a perfect
  forecast, +1 for one that is yesterday's price. ``echo`` is True when the squared-error
  DM test cannot tell the model from the random walk or from momentum at ``1 - level``
  (two-sided ``pvalue >= 1 - level``, or identical losses), None when neither test exists.
- ``cost_sensitivity``: the positions the strategy takes are paper-traded once at zero cost
  with the run's own :func:`sandbox.evaluate.paper_trade`; the net return at cost ``c`` is
  then ``gross - c * |s[t] - s[t-1]|`` per row, the arithmetic of
  :func:`sandbox.backtest.backtest`, so the figures at the run's own cost equal its trading
  metrics exactly. ``costs_bps`` is 0, 1, ..., 50 (and the run's cost when it is not one of
  them). ``break_even_bps`` is the smallest cost at which the model's total return is 0:
  None when it is not positive at zero cost, else found on a grid from 0 to 10,000 bps and
  refined by Brent's method (while every factor ``1 + r[t]`` is positive the total return
  falls strictly with the cost, so the first crossing is the only one before the account
  is wiped out). ``break_even_vs_buy_and_hold_bps`` is the smallest cost, found the same
  way, at which the model's total return falls to buy & hold's at the same cost: None when
  the model is not ahead at zero cost or stays ahead up to 10,000 bps.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox import evaluate
from sandbox.backtest import sharpe_ratios
from sandbox.config import StrategyConfig

if TYPE_CHECKING:
    from sandbox.results import ShownRun

__all__ = [
    "COSTS_BPS",
    "LAGS",
    "diebold_mariano",
    "of_run",
    "pesaran_timmermann",
    "sharpe_ratios",
    "significance",
    "spa_pvalues",
    "wilson_interval",
]

#: the cost axis of the sensitivity curve, in basis points (the run's own cost is added)
COSTS_BPS: tuple[float, ...] = tuple(float(c) for c in range(51))
#: lags of the echo check: the predicted close against the actual close k bars earlier
LAGS: tuple[int, ...] = tuple(range(-5, 6))
#: the losses of the Diebold-Mariano tests (statsmodels' criterion names)
LOSSES: tuple[str, ...] = ("mse", "mae")
#: the highest cost a break-even is looked for at: 100 % of each unit of position change
MAX_BREAK_EVEN_BPS = 10_000.0

# keys of the "significance" object (the metrics.json contract)
KEY_DM = "dm"
KEY_PT = "pesaran_timmermann"
KEY_HIT_RATE = "hit_rate"
KEY_HIT_RATE_CI = "hit_rate_ci"
KEY_SHARPE_CI = "sharpe_ci"
KEY_TOTAL_RETURN_CI = "total_return_ci"
KEY_SHARPE_DIFF_CI = "sharpe_diff_ci"
KEY_SHARE_BETTER = "share_better"
KEY_SPA = "spa"
KEY_ECHO = "echo"
KEY_COSTS = "cost_sensitivity"
KEY_BEST_BASELINE = "best_baseline"
KEY_STATISTIC = "statistic"
KEY_PVALUE = "pvalue"
KEY_PVALUE_BETTER = "pvalue_better"
KEY_PVALUE_CONSISTENT = "pvalue_consistent"
KEY_BETTER_THAN_ALL = "better_than_all"

#: fewest rows a test is computed on (fewer: its figures are None)
_MIN_ROWS = 3


# --- the whole object ---------------------------------------------------------------------------


def significance(
    prices: pd.DataFrame,
    model: pd.DataFrame,
    baselines: Mapping[str, pd.DataFrame],
    strategy: StrategyConfig,
    *,
    split: str = C.TEST,
    horizon: int,
    periods_per_year: float,
    best_baseline: str | None = None,
    seed: int = 0,
    reps: int = 1000,
    level: float = 0.95,
) -> dict[str, Any]:
    """The ``"significance"`` object of one split (see the module docstring for every figure).

    Parameters
    ----------
    prices : pandas.DataFrame
        The run's full price frame (``RunResult.data.frame``).
    model : pandas.DataFrame
        The model's predictions frame, every split (``RunResult.predictions``); traded or
        not: its positions are re-derived from ``predicted_return`` by the strategy rule.
    baselines : mapping of str to pandas.DataFrame
        The predictions frames of ``random_walk``, ``momentum``, ``drift`` and
        ``buy_and_hold`` on the same rows (``RunResult.baselines``).
    strategy : StrategyConfig
        The run's rule, threshold, fill and cost.
    split : {"train", "val", "test"}
        The split to report.
    horizon : int
        Bars ahead the target looks (:func:`sandbox.features.target_horizon`: 1, or 2 for
        next-open traded returns); the DM tests use ``horizon - 1`` lags.
    periods_per_year : float
        The run's bars per year (``metrics["periods_per_year"]``), for every Sharpe ratio.
    best_baseline : str, optional
        The trading baseline ``sharpe_diff_ci["best_baseline"]`` compares with (the app's
        best by total return). Default: the one with the highest total return on the
        trading rows, ties to the earlier of :data:`sandbox.evaluate.TRADING_BASELINES`.
    seed : int
        Seed of the bootstraps (the same seed gives the same figures).
    reps : int
        Bootstrap draws (and SPA draws).
    level : float
        Confidence level of the intervals; ``1 - level`` is the significance level of
        ``better_than_all`` and of the echo flag.

    Returns
    -------
    dict
        ``{"split", "level", "reps", "seed", "horizon", "block_length", "rows": {"forecast",
        "direction", "trading"}, "dm", "pesaran_timmermann", "hit_rate", "hit_rate_ci",
        "sharpe_ci", "total_return_ci", "sharpe_diff_ci", "share_better", "best_baseline",
        "spa", "echo", "cost_sensitivity"}``; undefined figures are None.

    Raises
    ------
    ValueError
        A baseline frame is missing, ``split``, ``horizon``, ``reps`` or ``level`` is out of
        range, or the frames do not share their rows.
    """
    _check_arguments(model, baselines, split=split, horizon=horizon, reps=reps, level=level,
                     periods_per_year=periods_per_year, best_baseline=best_baseline)
    alpha = 1.0 - float(level)
    in_split = model[C.SPLIT].to_numpy() == split

    # --- forecasts: DM, PT, hit rate, echo ---------------------------------------------------
    actual = model[C.ACTUAL_RETURN].to_numpy(np.float64)
    predicted = model[C.PREDICTED_RETURN].to_numpy(np.float64)
    forecasts = {name: baselines[name][C.PREDICTED_RETURN].to_numpy(np.float64)
                 for name in C.FORECAST_BASELINES}
    finite = in_split & np.isfinite(actual) & np.isfinite(predicted)
    for values in forecasts.values():
        finite &= np.isfinite(values)
    a, p = actual[finite], predicted[finite]
    dm = {name: {loss: diebold_mariano(a, p, values[finite], horizon=horizon, loss=loss)
                 for loss in LOSSES}
          for name, values in forecasts.items()}

    moved = a != 0
    hit_rate = evaluate.directional_accuracy(p, a)
    hits = int(np.count_nonzero(np.sign(p[moved]) == np.sign(a[moved])))
    n_direction = int(np.count_nonzero(moved))
    pt = pesaran_timmermann(a[moved], p[moved])

    echo = _echo(model, finite, forecasts, dm, alpha=alpha)

    # --- trading: bootstrap, SPA, costs -----------------------------------------------------------
    trades = _gross_trades(prices, model, baselines, strategy, split=split,
                           periods_per_year=periods_per_year)
    usable = np.ones(len(trades[C.MODEL].gross), dtype=bool)
    for t in trades.values():
        usable &= np.isfinite(t.gross)
    c_run = float(strategy.cost_bps) / 10_000.0
    net = {name: t.net(c_run)[usable] for name, t in trades.items()}
    r_model = net[C.MODEL]
    if best_baseline is None:
        best_baseline = _best_trading_baseline(net)

    block = _block_length(r_model)
    boot = _bootstrap(r_model, net[C.BUY_AND_HOLD], net[best_baseline],
                      block=block, reps=reps, seed=seed, level=level,
                      periods_per_year=periods_per_year)
    spa: dict[str, float | None] = {}
    done: dict[bytes, float | None] = {}  # drift is often always long: buy & hold's returns
    for name in evaluate.TRADING_BASELINES:
        key = net[name].tobytes()
        if key not in done:
            done[key] = spa_pvalues(net[name], r_model[:, None], block_length=block,
                                    reps=reps, seed=seed)["consistent"]
        spa[name] = done[key]
    spa_p = None if any(v is None for v in spa.values()) else max(spa.values())

    costs = _cost_sensitivity(trades[C.MODEL], trades[C.BUY_AND_HOLD], usable,
                              cost_bps=float(strategy.cost_bps),
                              periods_per_year=periods_per_year)

    return {
        C.SPLIT: split,
        "level": float(level),
        "reps": int(reps),
        "seed": int(seed),
        "horizon": int(horizon),
        "block_length": int(block),
        "rows": {"forecast": int(a.size), "direction": n_direction,
                 "trading": int(r_model.size)},
        KEY_DM: dm,
        KEY_PT: pt,
        KEY_HIT_RATE: _num(hit_rate),
        KEY_HIT_RATE_CI: wilson_interval(hits, n_direction, level=level)
        if hit_rate is not None else None,
        KEY_SHARPE_CI: boot["sharpe_ci"],
        KEY_TOTAL_RETURN_CI: boot["total_return_ci"],
        KEY_SHARPE_DIFF_CI: {C.BUY_AND_HOLD: boot["diff_hold"],
                             KEY_BEST_BASELINE: boot["diff_best"]},
        KEY_SHARE_BETTER: {C.BUY_AND_HOLD: boot["share_hold"],
                           KEY_BEST_BASELINE: boot["share_best"]},
        KEY_BEST_BASELINE: best_baseline,
        KEY_SPA: {KEY_PVALUE_CONSISTENT: spa_p,
                  KEY_BETTER_THAN_ALL: None if spa_p is None else bool(spa_p < alpha),
                  "pvalues": spa},
        KEY_ECHO: echo,
        KEY_COSTS: costs,
    }


def of_run(run: ShownRun, *, split: str = C.TEST, seed: int = 0, reps: int = 1000,
           level: float = 0.95) -> dict[str, Any]:
    """:func:`significance` of a finished run (a trained run, a saved model applied to data, an
    ensemble's averaged forecast): its prices, frames, strategy, target horizon, bars per
    year and best baseline by total return, as its metrics report them.

    Parameters
    ----------
    run : ShownRun
        The result (``pipeline.run``, ``pipeline.predict``, an ensemble).
    split : {"train", "val", "test"}
        The split to report.
    seed, reps, level
        As for :func:`significance`.
    """
    from sandbox.features import target_horizon

    metrics = run.metrics_by_split[split]
    strategy = run.config.strategy
    best = evaluate.best_baseline(metrics, C.TOTAL_RETURN, lower=False,
                                  names=evaluate.TRADING_BASELINES)
    return significance(
        run.data.frame, run.predictions, run.baselines, strategy, split=split,
        horizon=target_horizon(run.config.model.target, strategy.fill),
        periods_per_year=float(metrics[C.PERIODS_PER_YEAR]),
        best_baseline=best[0] if best is not None else None,
        seed=seed, reps=reps, level=level,
    )


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"= {value:.3f}" if value < 0.01 else f"= {value:.2f}"


def verdict(sig: Mapping[str, Any]) -> str | None:
    """One sentence worded from the tests of a ``"significance"`` object: the forecast
    against the random walk (DM, squared error), the echo flag, the trading against buy &
    hold (bootstrap share and interval of the Sharpe difference) and against every baseline
    at once (SPA). None when the split had no rows to test.

    Examples: "forecast not distinguishable from the random walk (DM p = 0.41), an echo of
    the last price; beats buy & hold in 62% of bootstrap resamples, not significant (Sharpe
    difference 95% interval -0.42 .. 0.91); not better than every baseline (SPA p = 0.37)".
    """
    if not sig or not (sig.get("rows") or {}).get("forecast"):
        return None
    level = float(sig.get("level", 0.95))
    alpha = 1.0 - level
    parts: list[str] = []
    dm = ((sig.get("dm") or {}).get(C.RANDOM_WALK) or {}).get("mse") or {}
    two, better, stat = dm.get("pvalue"), dm.get("pvalue_better"), dm.get("statistic")
    if two is None or better is None or stat is None:
        forecast = "forecast the same as the random walk's on every row"
    elif better < alpha:
        forecast = f"forecast better than the random walk (DM p {_p(better)}, one-sided)"
    elif two < alpha and stat > 0:
        forecast = f"forecast worse than the random walk (DM p {_p(two)})"
    else:
        forecast = f"forecast not distinguishable from the random walk (DM p {_p(two)})"
    echo = sig.get("echo") or {}
    if echo.get("echo"):
        lag = echo.get("best_lag")
        forecast += (", an echo of the last price (it matches the close one bar late)"
                     if lag == 1 else ", an echo: no better than the random walk or momentum")
    parts.append(forecast)
    share = (sig.get("share_better") or {}).get(C.BUY_AND_HOLD)
    interval = (sig.get("sharpe_diff_ci") or {}).get(C.BUY_AND_HOLD)
    if interval and interval[0] == interval[1] == 0.0:
        parts.append("trades as buy & hold does on every row")
    elif share is not None and interval and None not in interval:
        lo, hi = interval
        strength = ("significant" if lo > 0 else "significantly worse" if hi < 0
                    else "not significant")
        parts.append(f"beats buy & hold in {share:.0%} of bootstrap resamples, {strength} "
                     f"(Sharpe difference {level:.0%} interval {lo:+.2f} .. {hi:+.2f})")
    spa = sig.get("spa") or {}
    p_all = spa.get("pvalue_consistent")
    if p_all is not None:
        parts.append(("better than every baseline" if spa.get("better_than_all")
                      else "not better than every baseline") + f" (SPA p {_p(p_all)})")
    return "; ".join(parts)


#: the splits whose metrics carry the tests of significance (train is in-sample: a test of
#: a forecast on the rows it was fitted to means nothing)
EVIDENCE_SPLITS: tuple[str, ...] = (C.VAL, C.TEST)


def add_evidence(run: ShownRun, *, splits: Sequence[str] = EVIDENCE_SPLITS) -> None:
    """Put ``"significance"`` (:func:`of_run`) into the metrics of ``splits`` of ``run`` (a
    trained run, a saved model applied to data, an ensemble), so ``metrics.json`` and the app
    carry it beside the figures it tests.

    A walk-forward run (its predictions carry a ``fold`` column) has only out-of-sample
    rows, labelled ``test``: its evidence is that of those rows; its empty splits get none."""
    if C.FOLD in run.predictions:
        splits = [s for s in splits if s == C.TEST]
    for split in splits:
        run.metrics_by_split[split] = {**run.metrics_by_split[split],
                                       C.SIGNIFICANCE: of_run(run, split=split)}
    run.metrics = run.metrics_by_split[C.TEST]


def _check_arguments(model: pd.DataFrame, baselines: Mapping[str, pd.DataFrame], *,
                     split: str, horizon: int, reps: int, level: float,
                     periods_per_year: float, best_baseline: str | None) -> None:
    missing = [name for name in C.BASELINES if name not in baselines]
    if missing:
        raise ValueError(f"baselines: missing {', '.join(missing)}; pass every frame of "
                         "evaluate.baseline_frames")
    for name in C.BASELINES:
        if not baselines[name].index.equals(model.index):
            raise ValueError(f"baseline {name}: its rows differ from the model's; build both "
                             "on the same rows")
    if split not in C.SPLITS:
        raise ValueError(f"split {split!r}: expected one of {', '.join(C.SPLITS)}")
    if not (isinstance(horizon, int | np.integer) and horizon >= 1):
        raise ValueError(f"horizon {horizon!r}: must be a whole number >= 1")
    if not (isinstance(reps, int | np.integer) and reps >= 1):
        raise ValueError(f"reps {reps!r}: must be a whole number >= 1")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level {level!r}: must lie strictly between 0 and 1")
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ValueError(f"periods_per_year {periods_per_year!r}: must be a number > 0")
    if best_baseline is not None and best_baseline not in evaluate.TRADING_BASELINES:
        raise ValueError(f"best_baseline {best_baseline!r}: expected one of "
                         f"{', '.join(evaluate.TRADING_BASELINES)}")


# --- forecast tests ---------------------------------------------------------------------------


def diebold_mariano(actual: np.ndarray, predicted: np.ndarray, baseline: np.ndarray, *,
                    horizon: int = 1, loss: str = "mse") -> dict[str, float | None]:
    """Diebold-Mariano test of ``predicted`` against ``baseline`` (HLN-corrected, lag
    ``horizon - 1``).

    Parameters
    ----------
    actual, predicted, baseline : numpy.ndarray
        The realised values and the two forecasts, same rows, all finite.
    horizon : int
        Forecast horizon ``h``: ``h - 1`` Newey-West lags and the HLN factor's ``h``.
    loss : {"mse", "mae"}
        Squared or absolute error.

    Returns
    -------
    dict
        ``statistic`` (negative: ``predicted`` has the smaller loss), ``pvalue`` (two-sided)
        and ``pvalue_better`` (one-sided, "``predicted``'s loss is lower"); all None with
        fewer than 3 rows or identical losses on every row.
    """
    from scipy import stats
    from statsmodels.tsa.stattools import diebold_mariano_test

    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(predicted, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    none: dict[str, float | None] = {KEY_STATISTIC: None, KEY_PVALUE: None,
                                     KEY_PVALUE_BETTER: None}
    if a.size < _MIN_ROWS:
        return none
    power = 2 if loss == "mse" else 1
    if np.array_equal(np.abs(a - f) ** power, np.abs(a - b) ** power):
        return none  # the same loss on every row: nothing to test
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = diebold_mariano_test(a, f, b, lags=horizon - 1, horizon=horizon,
                                      criterion=loss, harvey_adj=True)
        statistic = float(result.statistic)
        if math.isnan(statistic):
            return none
        better = float(stats.t.cdf(statistic, df=a.size - 1))
    return {KEY_STATISTIC: _num(statistic), KEY_PVALUE: _num(result.pvalue),
            KEY_PVALUE_BETTER: _num(better)}


def pesaran_timmermann(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """Pesaran-Timmermann test of directional accuracy (statsmodels).

    Parameters
    ----------
    actual, predicted : numpy.ndarray
        Realised and predicted values on the same rows; a direction is ``> 0`` or not.

    Returns
    -------
    dict
        ``statistic`` (standard normal under independence), ``pvalue`` (two-sided) and
        ``pvalue_better`` (one-sided: directions called better than chance); all None with
        fewer than 3 rows or when the test is undefined (every actual or every predicted
        direction the same).
    """
    from statsmodels.stats.diagnostic import pesaran_timmermann as pt

    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    none: dict[str, float | None] = {KEY_STATISTIC: None, KEY_PVALUE: None,
                                     KEY_PVALUE_BETTER: None}
    if a.size < _MIN_ROWS:
        return none
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            two = pt(a, p, alternative="two-sided")
            one = pt(a, p, alternative="larger")
    except ValueError:  # zero variance: a single direction on one side
        return none
    return {KEY_STATISTIC: _num(two.statistic), KEY_PVALUE: _num(two.pvalue),
            KEY_PVALUE_BETTER: _num(one.pvalue)}


def wilson_interval(hits: int, n: int, *, level: float = 0.95) -> list[float] | None:
    """Wilson score interval ``[low, high]`` of a proportion ``hits / n`` (statsmodels'
    ``proportion_confint(method="wilson")``); None when ``n`` is 0."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return None
    low, high = proportion_confint(int(hits), int(n), alpha=1.0 - float(level),
                                   method="wilson")
    return _pair(low, high)


# --- the echo check -----------------------------------------------------------------------------


def _echo(model: pd.DataFrame, rows: np.ndarray, forecasts: Mapping[str, np.ndarray],
          dm: Mapping[str, Mapping[str, Mapping[str, float | None]]], *,
          alpha: float) -> dict[str, Any]:
    """The echo figures on the forecast ``rows`` of ``model`` (a boolean mask over its rows);
    ``forecasts``: the forecasting baselines' predicted returns on all rows."""
    p = model[C.PREDICTED_RETURN].to_numpy(np.float64)[rows]
    a = model[C.ACTUAL_RETURN].to_numpy(np.float64)[rows]
    m = forecasts[C.MOMENTUM][rows]
    corr_last = _corr(p, m)
    rms = math.sqrt(float(np.mean(p**2))) if p.size else 0.0
    corr_constant = float(np.mean(p)) / rms if rms > 0 else None
    std_a = float(np.std(a)) if a.size > 1 else 0.0
    std_ratio = float(np.std(p)) / std_a if std_a > 0 else None

    # predicted log close of bar t + 1 against the actual log close of bar t + 1 - k
    log_close = np.log(model[C.CLOSE].to_numpy(np.float64))
    at = np.flatnonzero(rows)
    lo, hi = min(LAGS), max(LAGS)
    keep = (at + 1 - hi >= 0) & (at + 1 - lo < log_close.size)
    at, p_kept = at[keep], p[keep]
    lag_rmse: list[float | None] = [None] * len(LAGS)
    best_lag = None
    if at.size:
        forecast = log_close[at] + p_kept
        errors = np.array([math.sqrt(float(np.mean((forecast - log_close[at + 1 - k]) ** 2)))
                           for k in LAGS])
        lag_rmse = [_num(e) for e in errors]
        if np.all(np.isfinite(errors)):
            best_lag = int(LAGS[int(np.argmin(errors))])

    flags = []
    for name in (C.RANDOM_WALK, C.MOMENTUM):
        pvalue = dm[name]["mse"][KEY_PVALUE]
        if pvalue is not None:
            flags.append(pvalue >= alpha)
        elif a.size >= _MIN_ROWS and np.array_equal((a - p) ** 2, (a - forecasts[name][rows]) ** 2):
            flags.append(True)  # the same squared error on every row: no test, no difference
    known = flags
    return {
        "corr_with_last_return": corr_last,
        "corr_with_constant": _num(corr_constant),
        "std_ratio": _num(std_ratio),
        "best_lag": best_lag,
        "lags": list(LAGS),
        "lag_rmse": lag_rmse,
        "echo": any(known) if known else None,
    }


def _corr(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation; None when either side is constant or there are < 3 rows."""
    if x.size < _MIN_ROWS:
        return None
    sx, sy = float(np.std(x)), float(np.std(y))
    if not (sx > 0 and sy > 0):
        return None
    return _num(float(np.mean((x - x.mean()) * (y - y.mean()))) / (sx * sy))


# --- trading: gross returns, bootstrap, SPA, costs ----------------------------------------------


class _Gross:
    """One predictor's split traded at zero cost: positions ``s``, gross returns (NaN where
    the row has no return) and position changes ``|s[t] - s[t-1]|`` (``s`` 0 before the
    first row)."""

    def __init__(self, position: np.ndarray, gross: np.ndarray) -> None:
        self.position = position
        self.gross = gross
        self.traded = np.abs(np.diff(position, prepend=0.0))

    def net(self, c: float) -> np.ndarray:
        """Net returns at cost ``c`` (a fraction, not bps): the arithmetic of
        :func:`sandbox.backtest.backtest` (``+ 0.0``: no ``-0.0``)."""
        return self.gross - c * self.traded + 0.0


def _gross_trades(prices: pd.DataFrame, model: pd.DataFrame,
                  baselines: Mapping[str, pd.DataFrame], strategy: StrategyConfig, *,
                  split: str, periods_per_year: float) -> dict[str, _Gross]:
    """The model and every trading baseline traded at zero cost on ``split``'s rows with the
    run's own :func:`sandbox.evaluate.paper_trade` (same positions, fill and purging)."""
    free = strategy.replace(cost_bps=0.0)
    labels = model[C.SPLIT].to_numpy()
    in_split = labels == split
    out: dict[str, _Gross] = {}
    if not in_split.any():
        empty = np.empty(0)
        return {name: _Gross(empty, empty) for name in (C.MODEL, *evaluate.TRADING_BASELINES)}
    start = int(np.flatnonzero(in_split)[0])  # earlier splits do not change this one's trading
    frames = {C.MODEL: model, **{name: baselines[name] for name in evaluate.TRADING_BASELINES}}
    for name, frame in frames.items():
        traded, _ = evaluate.paper_trade(prices, frame.iloc[start:], free,
                                         always_long=name == C.BUY_AND_HOLD,
                                         periods_per_year=periods_per_year)
        rows = traded[C.SPLIT].to_numpy() == split
        s = traded[C.POSITION].to_numpy(np.float64)[rows]
        gross = traded[C.STRATEGY_RETURN].to_numpy(np.float64)[rows]
        out[name] = _Gross(s, gross)
    return out


def _best_trading_baseline(net: Mapping[str, np.ndarray]) -> str:
    """The trading baseline with the highest total return on these rows (ties: the earlier
    of TRADING_BASELINES), by :func:`sandbox.evaluate.best_baseline`."""
    totals = {name: {C.TOTAL_RETURN: float(np.prod(1.0 + net[name]) - 1.0)}
              for name in evaluate.TRADING_BASELINES}
    best = evaluate.best_baseline({evaluate.KEY_BASELINES: totals}, C.TOTAL_RETURN, lower=False,
                                  names=evaluate.TRADING_BASELINES)
    return best[0] if best is not None else C.BUY_AND_HOLD


def _block_length(returns: np.ndarray) -> int:
    """Expected block length of the stationary bootstrap: arch's ``optimal_block_length``
    (its ``"stationary"`` column) rounded up, at most the number of rows; 1 when it is
    undefined (constant returns, too few rows for its lag search)."""
    if returns.size < _MIN_ROWS or not float(np.std(returns)) > 0:
        return 1
    from arch.bootstrap import optimal_block_length

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            b = float(optimal_block_length(returns)["stationary"].iloc[0])
    except (ValueError, IndexError):  # a handful of rows: fewer than the lags it looks at
        return 1
    if not math.isfinite(b) or b < 1.0:
        return 1
    return min(math.ceil(b), int(returns.size))


def _bootstrap(model: np.ndarray, hold: np.ndarray, best: np.ndarray, *, block: int,
               reps: int, seed: int, level: float,
               periods_per_year: float) -> dict[str, Any]:
    """Percentile intervals from one set of stationary-bootstrap draws of the trading rows."""
    none = {"sharpe_ci": None, "total_return_ci": None, "diff_hold": None, "diff_best": None,
            "share_hold": None, "share_best": None}
    n = model.size
    if n < _MIN_ROWS:
        return none
    from arch.bootstrap import StationaryBootstrap

    bs = StationaryBootstrap(block, np.arange(n), seed=np.random.default_rng(seed))
    index = np.stack([bs.update_indices() for _ in range(reps)])  # (reps, n) rows of each draw
    q = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]

    def stats(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        drawn = r[index]  # (reps, n)
        return sharpe_ratios(drawn, periods_per_year), np.prod(1.0 + drawn, axis=1) - 1.0

    sharpe_m, total_m = stats(model)
    sharpe_h, total_h = stats(hold)
    sharpe_b, total_b = stats(best)

    def interval(values: np.ndarray) -> list[float] | None:
        if not np.all(np.isfinite(values)):
            return None
        low, high = np.quantile(values, q)
        return _pair(low, high)

    return {
        "sharpe_ci": interval(sharpe_m),
        "total_return_ci": interval(total_m),
        "diff_hold": interval(sharpe_m - sharpe_h),
        "diff_best": interval(sharpe_m - sharpe_b),
        "share_hold": _num(float(np.mean(total_m > total_h))),
        "share_best": _num(float(np.mean(total_m > total_b))),
    }


def spa_members(benchmark: np.ndarray, candidates: np.ndarray, *, benchmark_name: str,
                split: str, level: float = 0.95, reps: int = 1000,
                seed: int = 0) -> dict[str, Any]:
    """Is the best of many trading strategies (a sweep's configurations, an ensemble's
    seeds) better than ``benchmark``, allowing for how many were tried? Hansen's SPA on the
    rows where the benchmark and every candidate have a trading return.

    Returns ``{"split", "benchmark", "candidates", "rows", "block_length",
    "pvalue_consistent", "best_better"}``: ``best_better`` is ``pvalue_consistent < 1 -
    level`` (None without a test).
    """
    b = np.asarray(benchmark, dtype=np.float64)
    m = np.asarray(candidates, dtype=np.float64).reshape(b.size, -1)
    keep = np.isfinite(b) & np.isfinite(m).all(axis=1)
    b, m = b[keep], m[keep]
    block = _block_length(m.mean(axis=1)) if b.size else 1
    p = spa_pvalues(b, m, block_length=block, reps=reps, seed=seed)["consistent"]
    return {"split": split, "benchmark": benchmark_name, "candidates": int(m.shape[1]),
            "rows": int(b.size), "block_length": int(block), "pvalue_consistent": _num(p),
            "best_better": None if p is None else bool(p < 1.0 - level)}


def spa_pvalues(benchmark: np.ndarray, candidates: np.ndarray, *, block_length: int,
                reps: int = 1000, seed: int = 0) -> dict[str, float | None]:
    """Hansen's SPA test: does the best of ``candidates`` earn more than ``benchmark``?

    Parameters
    ----------
    benchmark : numpy.ndarray
        ``(n,)`` per-bar trading returns of the benchmark (e.g. buy & hold).
    candidates : numpy.ndarray
        ``(n, k)`` per-bar trading returns of ``k`` candidates on the same rows (a sweep's
        configurations, an ensemble's members, or one model as ``(n, 1)``).
    block_length : int
        Expected block length of arch's stationary bootstrap.
    reps : int
        Bootstrap draws.
    seed : int
        Seed of a numpy ``Generator`` handed to arch.

    Returns
    -------
    dict
        ``{"lower", "consistent", "upper"}`` p-values of "no candidate beats the benchmark"
        (arch ``SPA.pvalues``; losses are minus the returns); all None with fewer than 3
        rows, all 1.0 when every candidate earns the benchmark's return on every row (arch
        would answer 0 there).
    """
    b = np.asarray(benchmark, dtype=np.float64)
    m = np.asarray(candidates, dtype=np.float64)
    if b.size < _MIN_ROWS or m.size == 0:
        return {"lower": None, "consistent": None, "upper": None}
    m = m.reshape(b.size, -1)
    if np.array_equal(m, np.broadcast_to(b[:, None], m.shape)):
        return {"lower": 1.0, "consistent": 1.0, "upper": 1.0}
    from arch.bootstrap import SPA

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        spa = SPA(-b, -m, block_size=int(block_length), reps=int(reps),
                  seed=np.random.default_rng(seed))
        spa.compute()
        pvalues = spa.pvalues
    return {key: _num(float(pvalues[key])) for key in ("lower", "consistent", "upper")}


def _cost_sensitivity(model: _Gross, hold: _Gross, usable: np.ndarray, *, cost_bps: float,
                      periods_per_year: float) -> dict[str, Any]:
    """Net total return and Sharpe of the model and buy & hold over :data:`COSTS_BPS` (and
    the run's cost), and the break-even costs."""
    from sandbox.backtest import trading_metrics

    costs = sorted({*COSTS_BPS, float(cost_bps)})
    curves: dict[str, list[float | None]] = {"total_return": [], "sharpe": [],
                                             "buy_and_hold_total_return": [],
                                             "buy_and_hold_sharpe": []}
    for bps in costs:
        c = bps / 10_000.0
        for prefix, t in (("", model), ("buy_and_hold_", hold)):
            metrics = trading_metrics(t.net(c)[usable], t.position[usable],
                                      periods_per_year=periods_per_year)
            curves[f"{prefix}total_return"].append(_num(metrics[C.TOTAL_RETURN]))
            curves[f"{prefix}sharpe"].append(_num(metrics[C.SHARPE]))

    g_m, d_m = model.gross[usable], model.traded[usable]
    g_h, d_h = hold.gross[usable], hold.traded[usable]

    def total(g: np.ndarray, d: np.ndarray, bps: np.ndarray) -> np.ndarray:
        return np.prod(1.0 + g[None, :] - (bps[:, None] / 10_000.0) * d[None, :], axis=1) - 1.0

    def model_minus_hold(bps: np.ndarray) -> np.ndarray:
        return total(g_m, d_m, bps) - total(g_h, d_h, bps)

    return {
        "costs_bps": [float(c) for c in costs],
        **curves,
        "run_cost_bps": float(cost_bps),
        "break_even_bps": _first_root(lambda bps: total(g_m, d_m, bps)) if g_m.size else None,
        "break_even_vs_buy_and_hold_bps": _first_root(model_minus_hold) if g_m.size else None,
    }


#: where a break-even is looked for first: fine below 100 bps, then geometric to 10,000
_SEARCH_BPS = np.unique(np.r_[np.linspace(0.0, 100.0, 401),
                              np.geomspace(100.0, MAX_BREAK_EVEN_BPS, 200)])


def _first_root(f: Callable[[np.ndarray], np.ndarray]) -> float | None:
    """The smallest cost in [0, 10,000] bps where ``f`` (vectorised over bps) falls from
    above 0 to 0: None when ``f(0) <= 0`` or it never falls to 0."""
    values = f(_SEARCH_BPS)
    if not np.isfinite(values[0]) or values[0] <= 0:
        return None
    below = np.flatnonzero(~(values > 0))
    if below.size == 0:
        return None
    j = int(below[0])
    lo, hi = float(_SEARCH_BPS[j - 1]), float(_SEARCH_BPS[j])
    if values[j] == 0:
        return hi
    from scipy.optimize import brentq

    return _num(brentq(lambda x: float(f(np.array([x]))[0]), lo, hi, xtol=1e-9, rtol=1e-12))


# --- JSON helpers -------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    """A finite float, else None (JSON has no NaN)."""
    return evaluate.finite_number(value)


def _pair(low: Any, high: Any) -> list[float] | None:
    lo, hi = _num(low), _num(high)
    return None if lo is None or hi is None else [lo, hi]


