"""Forecast metrics, naive baselines and per-split paper trading of every predictor.

All P&L goes through :mod:`sandbox.backtest` (one fresh account per split, traded only on
the split's own prices: see :func:`paper_trade`). The metrics dictionaries have the
``metrics.json`` shape::

    {"split": "test", "target": "return", "periods_per_year": 252.0,
     "model": {rmse, mae, directional_accuracy, theil_u2, <trading metrics>},
     "baselines": {"random_walk": {...}, "momentum": {...}, "drift": {...},
                   "buy_and_hold": {<trading metrics>}}}

``periods_per_year`` is the one value every Sharpe ratio of the run is scaled with: the
strategy's override, else bars per year measured over the whole price frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.config import StrategyConfig

#: keys of a metrics dictionary not (yet) in sandbox.constants
KEY_SPLIT = C.SPLIT
KEY_TARGET = "target"
KEY_PERIODS_PER_YEAR = C.PERIODS_PER_YEAR
KEY_MODEL = C.MODEL
KEY_BASELINES = "baselines"

#: columns of a predictions frame (index "date"), i.e. predictions.csv without the date
FRAME_COLUMNS: tuple[str, ...] = tuple(c for c in C.PREDICTION_COLUMNS if c != C.INDEX_NAME)


# --- forecast metrics -----------------------------------------------------------------------------


def directional_accuracy(predicted: np.ndarray, actual: np.ndarray) -> float | None:
    """Share of rows where ``sign(predicted) == sign(actual)``, over rows with ``actual != 0``.

    A prediction of exactly 0 is a miss. ``None`` for a predictor that is 0 on every row
    (it never calls a direction) or when no row has a non-zero actual return.
    """
    p, a = _finite_pairs(predicted, actual)
    if p.size == 0 or not np.any(p != 0):
        return None
    moved = a != 0
    if not np.any(moved):
        return None
    return float(np.mean(np.sign(p[moved]) == np.sign(a[moved])))


def forecast_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float | None]:
    """``rmse``, ``mae``, ``directional_accuracy`` and Theil's U2 of ``predicted``.

    Rows where the actual value is unknown (NaN, the last bar) are left out. Theil's U2 is
    the RMSE divided by that of the random walk (predicting a return of 0), so below 1 beats
    the random walk. Undefined values are ``None``.
    """
    p, a = _finite_pairs(predicted, actual)
    if p.size == 0:
        return {C.RMSE: None, C.MAE: None, C.DIRECTIONAL_ACCURACY: None, C.THEIL_U2: None}
    err = p - a
    rmse = math.sqrt(float(np.mean(err**2)))
    rw = math.sqrt(float(np.mean(a**2)))
    return {
        C.RMSE: rmse,
        C.MAE: float(np.mean(np.abs(err))),
        C.DIRECTIONAL_ACCURACY: directional_accuracy(p, a),
        C.THEIL_U2: rmse / rw if rw > 0 else None,
    }


def _finite_pairs(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    known = np.isfinite(a)
    return p[known], a[known]


# --- baselines ------------------------------------------------------------------------------------


#: baselines whose total return may be the best one, in the order that wins a tie
TRADING_BASELINES: tuple[str, ...] = (C.BUY_AND_HOLD, C.RANDOM_WALK, C.MOMENTUM, C.DRIFT)


def best_baseline(metrics: Mapping[str, Any], key: str, *, lower: bool,
                  names: Sequence[str] = C.FORECAST_BASELINES) -> tuple[str, float] | None:
    """The baseline with the best ``key`` in a split's metrics, and its value.

    Parameters
    ----------
    metrics : mapping
        A split's metrics.json object.
    key : str
        The metric (``rmse``, ``total_return``, ...).
    lower : bool
        Lower is better (RMSE) or higher is (total return).
    names : sequence of str
        The baselines that compete, in the order that wins a tie (e.g. the random walk
        before drift for RMSE; buy & hold first for the total return).

    Returns
    -------
    (str, float) or None
        None when no baseline has a finite value.
    """
    baselines = metrics.get(KEY_BASELINES, {})
    best: tuple[str, float] | None = None
    for name in names:
        value = finite_number(baselines.get(name, {}).get(key))
        if value is None:
            continue
        if best is None or ((value < best[1] if lower else value > best[1])
                            and not math.isclose(value, best[1], rel_tol=1e-12,
                                                 abs_tol=1e-15)):
            best = (name, value)  # a tie keeps the earlier name
    return best


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (Python or numpy, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return None
    return float(value) if math.isfinite(value) else None


def baseline_forecasts(
    momentum: np.ndarray, drift: float, n: int
) -> dict[str, np.ndarray]:
    """Predicted returns of the naive forecasters on ``n`` rows.

    ``random_walk`` predicts 0; ``momentum`` the last log return ``ln(close[t]/close[t-1])``;
    ``drift`` the mean training target. ``buy_and_hold`` has no forecast (NaN): it is long
    on every row.
    """
    return {
        C.RANDOM_WALK: np.zeros(n),
        C.MOMENTUM: np.asarray(momentum, dtype=np.float64),
        C.DRIFT: np.full(n, float(drift)),
        C.BUY_AND_HOLD: np.full(n, np.nan),
    }


def baseline_frames(rows: pd.DatetimeIndex, split: np.ndarray, close: np.ndarray,
                    actual: np.ndarray, momentum: np.ndarray, drift: float
                    ) -> dict[str, pd.DataFrame]:
    """Every baseline's predictions frame (not yet traded) on the model's rows."""
    forecasts = baseline_forecasts(momentum, drift, len(rows))
    return {name: predictor_frame(rows, split, close, actual, values)
            for name, values in forecasts.items()}


def trade_baselines(prices: pd.DataFrame, baselines: Mapping[str, pd.DataFrame],
                    strategy: StrategyConfig, *, periods_per_year: float | None = None
                    ) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, dict[str, Any]]]]:
    """:func:`paper_trade` every baseline (buy and hold: always long); frames and
    ``{baseline: {split: trading metrics}}``."""
    if periods_per_year is None:
        periods_per_year = run_periods_per_year(prices, strategy)
    frames: dict[str, pd.DataFrame] = {}
    trading: dict[str, dict[str, dict[str, Any]]] = {}
    for name, frame in baselines.items():
        frames[name], trading[name] = paper_trade(prices, frame, strategy,
                                                  always_long=name == C.BUY_AND_HOLD,
                                                  periods_per_year=periods_per_year)
    return frames, trading


def all_split_metrics(target: str, model: pd.DataFrame,
                      model_trading: Mapping[str, Mapping[str, Any]],
                      baselines: Mapping[str, pd.DataFrame],
                      baseline_trading: Mapping[str, Mapping[str, Mapping[str, Any]]],
                      *, periods_per_year: float
                      ) -> dict[str, dict[str, Any]]:
    """:func:`split_metrics` of every split: ``{split: metrics.json object}``."""
    return {
        split: split_metrics(split, target, model, model_trading.get(split, {}), baselines,
                             {name: t.get(split, {}) for name, t in baseline_trading.items()},
                             periods_per_year=periods_per_year)
        for split in C.SPLITS
    }


def predictor_frame(rows: pd.DatetimeIndex, split: np.ndarray, close: np.ndarray,
                    actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """A predictions frame without P&L (position, strategy_return and equity are NaN)."""
    nan = np.full(len(rows), np.nan)
    frame = pd.DataFrame({
        C.SPLIT: np.asarray(split, dtype=object), C.CLOSE: close, C.ACTUAL_RETURN: actual,
        C.PREDICTED_RETURN: np.asarray(predicted, dtype=np.float64),
        C.POSITION: nan, C.STRATEGY_RETURN: nan.copy(), C.EQUITY: nan.copy(),
    }, index=pd.DatetimeIndex(rows, name=C.INDEX_NAME))
    return frame.loc[:, list(FRAME_COLUMNS)]


# --- paper trading ------------------------------------------------------------------------------


def run_periods_per_year(prices: pd.DataFrame, strategy: StrategyConfig) -> float:
    """The bars per year of a run: the strategy's override when set, else measured over the
    whole price frame (:func:`sandbox.backtest.infer_periods_per_year`)."""
    if strategy.periods_per_year is not None:
        return float(strategy.periods_per_year)
    from sandbox.backtest import infer_periods_per_year

    return float(infer_periods_per_year(prices.index))


def paper_trade(
    prices: pd.DataFrame,
    frame: pd.DataFrame,
    strategy: StrategyConfig,
    *,
    always_long: bool = False,
    periods_per_year: float | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Positions, strategy returns and equity for each split, each a fresh account.

    A row's return belongs to its split only if every price it uses lies in that split: a
    split followed by another one is traded on the prices up to and including its own last
    row, so with ``next_open`` its last two rows (with ``close`` its last row) have no
    return. They keep their position, have NaN ``strategy_return`` and ``equity`` and are
    left out of the split's metrics, like the last rows of the file. The last split (test)
    is traded on the whole price frame.

    Parameters
    ----------
    prices : pandas.DataFrame
        The full price frame.
    frame : pandas.DataFrame
        A predictions frame (:func:`predictor_frame`).
    strategy : StrategyConfig
        Rule, threshold, fill, costs.
    always_long : bool
        Buy and hold: position 1 on every row instead of the strategy rule.
    periods_per_year : float, optional
        Bars per year for every split; :func:`run_periods_per_year` when omitted (the
        override, else measured over the whole of ``prices``, never over a split).

    Returns
    -------
    frame : pandas.DataFrame
        A copy with ``position``, ``strategy_return`` and ``equity`` filled.
    metrics : dict
        Split name -> trading metrics of that split.
    """
    from sandbox.backtest import PERIODS_PER_YEAR, backtest, positions_from_predictions

    if periods_per_year is None:
        periods_per_year = run_periods_per_year(prices, strategy)
    out = frame.copy()
    metrics: dict[str, dict[str, Any]] = {}
    labels = out[C.SPLIT].to_numpy()
    dates = out.index
    in_a_split = np.isin(labels, C.SPLITS)
    for split in C.SPLITS:
        mask = labels == split
        if not mask.any():
            continue
        rows = dates[mask]
        if always_long:
            positions = pd.Series(1.0, index=rows, name=C.POSITION)
        else:
            positions = positions_from_predictions(
                out.loc[mask, C.PREDICTED_RETURN], strategy=strategy.strategy,
                threshold_bps=strategy.threshold_bps,
            )
        own = prices
        if bool(np.any((dates > rows[-1]) & in_a_split & (labels != split))):  # one follows
            own = prices.iloc[: int(prices.index.searchsorted(rows[-1], side="right"))]
        result = backtest(own, positions, fill=strategy.fill, cost_bps=strategy.cost_bps,
                          periods_per_year=periods_per_year)
        bt = result.frame.reindex(rows)
        for col in (C.POSITION, C.STRATEGY_RETURN, C.EQUITY):
            out.loc[mask, col] = bt[col].to_numpy(np.float64)
        metrics[split] = {k: v for k, v in result.metrics.items() if k != PERIODS_PER_YEAR}
    return out, metrics


def split_metrics(
    split: str,
    target: str,
    model: pd.DataFrame,
    model_trading: Mapping[str, Any],
    baselines: Mapping[str, pd.DataFrame],
    baseline_trading: Mapping[str, Mapping[str, Any]],
    *,
    periods_per_year: float,
) -> dict[str, Any]:
    """The ``metrics.json`` object of one split.

    Parameters
    ----------
    split : str
        ``train``, ``val`` or ``test``.
    target : str
        The model's target kind (``return`` or ``price``), recorded as a label.
    model, baselines : pandas.DataFrame
        Predictions frames (all splits); only the rows of ``split`` are used.
    model_trading, baseline_trading : mapping
        Trading metrics of ``split`` for the model and for each baseline.
    periods_per_year : float
        The bars per year their Sharpe ratios were scaled with (the same for every split).
    """

    def forecast(frame: pd.DataFrame) -> dict[str, Any]:
        rows = frame[frame[C.SPLIT] == split]
        return forecast_metrics(rows[C.PREDICTED_RETURN].to_numpy(),
                                rows[C.ACTUAL_RETURN].to_numpy())

    out: dict[str, Any] = {
        KEY_SPLIT: split,
        KEY_TARGET: target,
        KEY_PERIODS_PER_YEAR: float(periods_per_year),
        KEY_MODEL: {**forecast(model), **dict(model_trading)},
        KEY_BASELINES: {},
    }
    for name in C.BASELINES:
        trading = dict(baseline_trading.get(name, {}))
        if name in C.FORECAST_BASELINES:
            out[KEY_BASELINES][name] = {**forecast(baselines[name]), **trading}
        else:
            out[KEY_BASELINES][name] = trading
    return out


def replace_trading(metrics: Mapping[str, Any], model_trading: Mapping[str, Any],
                    baseline_trading: Mapping[str, Mapping[str, Any]], *,
                    periods_per_year: float) -> dict[str, Any]:
    """A copy of a split's metrics with new trading figures (scaled with
    ``periods_per_year``) and the same forecast figures."""

    def merge(old: Mapping[str, Any], trading: Mapping[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in old.items() if k in C.FORECAST_METRICS}
        return {**kept, **dict(trading)}

    return {
        **metrics,
        KEY_PERIODS_PER_YEAR: float(periods_per_year),
        KEY_MODEL: merge(metrics[KEY_MODEL], model_trading),
        KEY_BASELINES: {name: merge(metrics[KEY_BASELINES].get(name, {}),
                                    baseline_trading.get(name, {}))
                        for name in C.BASELINES},
    }


# --- the model and every baseline ---------------------------------------------------------------


@dataclass
class Trades:
    """What :func:`trade_all` produced: traded frames and ``metrics.json`` objects by split."""

    predictions: pd.DataFrame  # the model's frame with position, strategy_return, equity
    metrics_by_split: dict[str, dict[str, Any]]  # split -> metrics.json object
    baselines: dict[str, pd.DataFrame]  # baseline -> its traded frame
    members: dict[Any, pd.DataFrame] = field(default_factory=dict)  # key -> traded frame
    member_metrics: dict[Any, dict[str, dict[str, Any]]] = field(default_factory=dict)


def trade_all(
    prices: pd.DataFrame,
    model_frame: pd.DataFrame,
    baselines: Mapping[str, pd.DataFrame],
    strategy: StrategyConfig,
    *,
    target: str,
    members: Mapping[Any, pd.DataFrame] | None = None,
    forecast_metrics: Mapping[str, Mapping[str, Any]] | None = None,
) -> Trades:
    """Paper-trade the model and every baseline, and compute the metrics of every split.

    The one place where a forecast meets its baselines: a trained run, a saved model applied
    to new prices and a seed ensemble all trade through here, so their figures agree.

    Parameters
    ----------
    prices : pandas.DataFrame
        The full price frame.
    model_frame : pandas.DataFrame
        The model's predictions frame (:func:`predictor_frame`).
    baselines : mapping of str to pandas.DataFrame
        The baselines' predictions frames on the same rows (:func:`baseline_frames`), traded
        once and compared with the model and with every member.
    strategy : StrategyConfig
        Rule, threshold, fill and costs.
    target : str
        The model's target kind (recorded in the metrics).
    members : mapping, optional
        More predictions frames on the same rows (an ensemble's seeds), each traded and
        measured against the same baselines.
    forecast_metrics : mapping, optional
        The model's metrics by split from an earlier trading of the same forecasts: their
        forecast figures are kept and only the trading figures are replaced (re-trading).

    Returns
    -------
    Trades
        Every ``metrics.json`` object carries ``periods_per_year``: measured once over the
        whole of ``prices`` (or the strategy's override) and used for every split, the
        model, every member and every baseline alike.
    """
    periods = run_periods_per_year(prices, strategy)
    frames, base_trading = trade_baselines(prices, baselines, strategy,
                                           periods_per_year=periods)

    def trade(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
        traded, trading = paper_trade(prices, frame, strategy, periods_per_year=periods)
        return traded, all_split_metrics(target, traded, trading, frames, base_trading,
                                         periods_per_year=periods)

    member_frames: dict[Any, pd.DataFrame] = {}
    member_metrics: dict[Any, dict[str, dict[str, Any]]] = {}
    for key, frame in (members or {}).items():
        member_frames[key], member_metrics[key] = trade(frame)
    if forecast_metrics is None:
        traded, by_split = trade(model_frame)
    else:
        traded, trading = paper_trade(prices, model_frame, strategy, periods_per_year=periods)
        by_split = {
            split: replace_trading(forecast_metrics[split], trading.get(split, {}),
                                   {name: t.get(split, {}) for name, t in base_trading.items()},
                                   periods_per_year=periods)
            for split in C.SPLITS
        }
    return Trades(predictions=traded, metrics_by_split=by_split, baselines=frames,
                  members=member_frames, member_metrics=member_metrics)
