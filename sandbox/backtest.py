"""Vectorised paper trading: positions -> strategy returns -> equity -> metrics.

This module implements "Paper trading semantics" of the architecture exactly. For a price
frame and a position series ``s[t]`` in [-1, 1] (row ``t`` = decided at the close of bar
``t``), with ``c = cost_bps / 10_000`` and ``s[first - 1] = 0`` (every account is fresh)::

    next_open (default):  r[t] = s[t] * (open[t+2] / open[t+1] - 1) - c * |s[t] - s[t-1]|
    close:                r[t] = s[t] * (close[t+1] / close[t] - 1) - c * |s[t] - s[t-1]|
    equity[t] = prod(1 + r[k] for k <= t)          (the account holds 1.0 before the first row)

The period runs from the first to the last date of the position series; price rows inside
it that the series does not name are flat (0). Prices after the period still fill its last
rows, so a row has no return only when the price frame itself ends too early: the last two
bars of the price frame for ``next_open``, the last bar for ``close``. Such rows stay in the
output with NaN ``strategy_return`` and ``equity`` and are left out of every metric. No exit
cost is charged for a position still open at the end. (A caller that must keep a period off
later prices, e.g. a validation split off the test split's opens, passes the price frame cut
after the period's last bar, with ``periods_per_year`` given so the cut does not change it.)

Annual figures come from the calendar: the Sharpe ratio is scaled by the bars per year
measured over the span of the price data (:func:`infer_periods_per_year`) unless given, and
the CAGR by the calendar years the account was held (:func:`trading_metrics`).

Everything is numpy arithmetic over whole arrays (no per-bar Python loop): a million bars
take a few tens of milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.errors import ConfigError, DataError

#: how many offending dates a message lists before it says "and N more"
_MAX_LISTED = 3

#: metrics key of the bars per year behind the Sharpe ratio (what :func:`backtest` used)
PERIODS_PER_YEAR = C.PERIODS_PER_YEAR  # the metrics key of the bars per year used

#: calendar days per year: spans of dates are turned into years with this
DAYS_PER_YEAR = 365.25
#: trading days of an exchange year, and days of a market that trades every day
_TRADING_DAYS = 252.0
_CALENDAR_DAYS = 365.0
#: an equity session (09:30-16:00) in minutes: hourly bars 09:30 .. 15:30 make 7 a day
_SESSION_MINUTES = 390
#: a measurement within this much below / above the well-known value of its bar size is that
#: value. Above is wider: a weekday calendar without holidays has 365.25 * 5 / 7 = 260.9
#: days, 3.5 % above 252, and a span of weeks straddles one weekend more or less.
_SNAP_BELOW = 0.03
_SNAP_ABOVE = 0.05
#: shorter spans than these (days) are not measured but classified by the bar spacing: a
#: few weeks of bars over- or under-count the weekends they happen to straddle
_MIN_SPAN_INTRADAY = 28.0
_MIN_SPAN_DAILY = DAYS_PER_YEAR
#: a gap longer than this many median spacings is a hole in daily or coarser data
_HOLE_SPACINGS = 30.0

#: column names a signals file may use for its dates (case-insensitive)
_DATE_HEADERS: tuple[str, ...] = (C.INDEX_NAME, "datetime", "time", "timestamp")


@dataclass(frozen=True)
class BacktestResult:
    """The outcome of :func:`backtest`.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per price bar of the period (index ``date``), columns ``position``,
        ``strategy_return`` and ``equity``; the last rows are NaN where prices end.
    metrics : dict
        The trading metrics of :func:`trading_metrics`, and ``periods_per_year``: the bars
        per year the Sharpe ratio was scaled with.
    """

    frame: pd.DataFrame
    metrics: dict[str, float | int | None]


# --- the engine -------------------------------------------------------------------------------


def backtest(
    prices: pd.DataFrame,
    positions: pd.Series,
    *,
    fill: str = "next_open",
    cost_bps: float = 0.0,
    periods_per_year: float | None = None,
) -> BacktestResult:
    """Paper-trade ``positions`` on ``prices`` (see the module docstring for the exact rules).

    Parameters
    ----------
    prices : pandas.DataFrame
        A validated price frame (data contract): strictly increasing ``DatetimeIndex``,
        float columns ``open`` and ``close`` at least.
    positions : pandas.Series
        Position decided at the close of each dated bar, in [-1, 1] (1 fully long, -1 fully
        short, fractions allowed). Every date must be a bar of ``prices``; bars of the
        period that are missing from the series are flat.
    fill : {"next_open", "close"}
        ``next_open`` holds the position from the next bar's open to the open after it;
        ``close`` holds it from this bar's close to the next bar's close.
    cost_bps : float
        Cost per unit of position change, in basis points (1 = 0.01 %); charged on the row
        where the position changes, entry included, exit at the end excluded.
    periods_per_year : float, optional
        Bars per year for the Sharpe ratio (a user override); measured over the whole price
        index (:func:`infer_periods_per_year`) when omitted.

    Returns
    -------
    BacktestResult
        ``frame`` has every bar of the period; ``metrics`` (:func:`trading_metrics`) count
        only the rows that have a return, ``n_trades``, ``turnover`` and ``exposure`` too,
        plus ``periods_per_year`` (the value used). The CAGR's years are the calendar time
        from the date of the period's first row to the date of the bar at which its last
        return is realised: bar ``t + 2`` of the last row ``t`` that has a return with
        ``next_open``, bar ``t + 1`` with ``close``.

    Raises
    ------
    DataError
        Positions that are empty, NaN, outside [-1, 1], duplicated or dated off the price
        index (see :func:`check_positions`).
    ConfigError
        An unknown ``fill``, a negative or non-finite ``cost_bps`` or ``periods_per_year``.
    """
    if fill not in C.FILLS:
        raise ConfigError(f"fill {fill!r}: expected one of {', '.join(C.FILLS)}")
    if not (_is_number(cost_bps) and math.isfinite(cost_bps) and cost_bps >= 0):
        raise ConfigError(f"cost {cost_bps!r} bps: must be a finite number >= 0")
    if periods_per_year is None:
        periods_per_year = infer_periods_per_year(prices.index)
    elif not (_is_number(periods_per_year) and math.isfinite(periods_per_year)
              and periods_per_year > 0):
        raise ConfigError(f"periods per year {periods_per_year!r}: must be a number > 0")
    rows, values = _locate(positions, prices.index, name="positions")

    first, last = int(rows.min()), int(rows.max())
    n = last - first + 1
    s = np.zeros(n)
    s[rows - first] = values  # rows of the period the series does not name stay flat

    lag = 2 if fill == C.FILL_NEXT_OPEN else 1
    price = prices[C.OPEN if fill == C.FILL_NEXT_OPEN else C.CLOSE].to_numpy(np.float64)
    m = max(0, min(n, len(price) - lag - first))  # rows that have a return: a prefix
    entry = price[first + lag - 1: first + lag - 1 + m]  # open[t+1] / close[t]
    exit_ = price[first + lag: first + lag + m]  # open[t+2] / close[t+1]

    traded = np.abs(np.diff(s, prepend=0.0))  # |s[t] - s[t-1]|, s[first-1] = 0
    c = float(cost_bps) / 10_000.0
    ret = np.full(n, np.nan)
    ret[:m] = s[:m] * (exit_ / entry - 1.0) - c * traded[:m] + 0.0  # + 0.0: no "-0.0"
    equity = np.full(n, np.nan)
    equity[:m] = np.cumprod(1.0 + ret[:m])

    index = pd.DatetimeIndex(prices.index[first: last + 1], name=C.INDEX_NAME)
    frame = pd.DataFrame({C.POSITION: s, C.STRATEGY_RETURN: ret, C.EQUITY: equity}, index=index)
    years = None
    if m:  # first row's date -> date of the bar that realises the last return
        years = _years(prices.index[first], prices.index[first + m - 1 + lag])
    metrics = _metrics(ret[:m], s[:m], traded[:m], equity[:m], float(periods_per_year), years)
    metrics[PERIODS_PER_YEAR] = float(periods_per_year)
    return BacktestResult(frame=frame, metrics=metrics)


def trading_metrics(
    strategy_return: pd.Series | np.ndarray,
    position: pd.Series | np.ndarray,
    *,
    periods_per_year: float,
    years: float | None = None,
) -> dict[str, float | int | None]:
    """Trading metrics of one account, over the rows that have a return.

    ``position`` holds every row of the period in order (the position before the first
    row is 0); rows whose ``strategy_return`` is NaN (no price to fill them) are left out.
    Equity is rebuilt as ``cumprod(1 + r)`` from 1.0.

    Parameters
    ----------
    strategy_return : array-like of float
        Per-row returns after costs, NaN where the row has none.
    position : array-like of float
        Per-row positions, same length.
    periods_per_year : float
        Bars per year (252 for exchange-traded daily bars), for the Sharpe ratio.
    years : float, optional
        Calendar years the account was held, for the CAGR: from the date of the first row
        to the date of the bar that realises the last return, in days / 365.25
        (:func:`backtest` passes exactly that). Without dates, ``n / periods_per_year``:
        the bar count read as time.

    Returns
    -------
    dict
        With ``r`` the returns of the ``n`` rows that have one and ``s`` their positions:

        - ``total_return``: ``equity[-1] - 1`` (0 when ``n`` is 0);
        - ``sharpe``: ``mean(r) / std(r, ddof=1) * sqrt(P)``; 0 when the standard
          deviation is 0 (up to rounding: below 1e-12 of ``|mean(r)|``) or ``n < 2``;
        - ``max_drawdown``: ``min(equity / running_max - 1)`` with the running maximum
          starting at 1.0 (<= 0; it can fall below -1 only if a short loses more than the
          whole account in one bar);
        - ``n_trades``: rows where ``s[t] != s[t-1]``, ``turnover``: ``sum |s[t] - s[t-1]|``,
          ``exposure``: mean of ``|s[t]| > 0``, all counted over the same ``n`` rows (the
          entry on the first row counts, a final exit never happens);
        - ``cagr``: ``equity[-1] ** (1 / years) - 1`` (-1 once equity is <= 0; ``None``
          when ``n`` is 0 or the power overflows);
        - ``win_rate``: share of the rows with ``s != 0`` whose return (after costs) is
          > 0; ``None`` when never in the market.
    """
    r = np.asarray(strategy_return, dtype=np.float64)
    s = np.asarray(position, dtype=np.float64)
    if r.shape != s.shape or r.ndim != 1:
        raise ValueError(f"strategy_return {r.shape} and position {s.shape}: need equal 1-D shapes")
    if not (_is_number(periods_per_year) and periods_per_year > 0):
        raise ConfigError(f"periods per year {periods_per_year!r}: must be a number > 0")
    if years is not None and not (_is_number(years) and math.isfinite(years) and years > 0):
        raise ConfigError(f"years {years!r}: must be a finite number > 0")
    traded = np.abs(np.diff(s, prepend=0.0))
    known = ~np.isnan(r)
    r, s, traded = r[known], s[known], traded[known]
    if years is None:
        years = r.size / float(periods_per_year)
    return _metrics(r, s, traded, np.cumprod(1.0 + r), float(periods_per_year), years)


def _years(start: Any, end: Any) -> float:
    """Calendar years from ``start`` to ``end`` (days / 365.25)."""
    return (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / 86_400.0 / DAYS_PER_YEAR


def sharpe_ratios(returns: np.ndarray, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe ratio of each row of ``returns`` (one sample a row), the rule of the
    trading metrics' ``sharpe``: ``mean / std(ddof=1) * sqrt(P)``, 0 when the standard
    deviation is 0 (below 1e-12 of ``|mean|``: constant returns leave a rounding-level std)
    or a row has fewer than 2 returns. One row or thousands of bootstrap draws alike.

    Parameters
    ----------
    returns : numpy.ndarray
        ``(n,)`` or ``(k, n)`` per-bar returns, all finite.
    periods_per_year : float
        Bars per year ``P``.

    Returns
    -------
    numpy.ndarray
        ``(k,)`` Sharpe ratios (``(1,)`` for a 1-D input).
    """
    r = np.atleast_2d(np.asarray(returns, dtype=np.float64))
    out = np.zeros(r.shape[0])
    if r.shape[1] < 2:
        return out
    mean = r.mean(axis=1)
    std = r.std(axis=1, ddof=1)
    ok = std > 1e-12 * np.abs(mean)
    out[ok] = mean[ok] / std[ok] * math.sqrt(float(periods_per_year))
    return out


def _metrics(
    r: np.ndarray, s: np.ndarray, traded: np.ndarray, equity: np.ndarray, periods: float,
    years: float | None,
) -> dict[str, float | int | None]:
    """The metrics of rows that all have a return (see :func:`trading_metrics`); ``years``
    held, for the CAGR."""
    n = r.size
    if n == 0:
        return {C.TOTAL_RETURN: 0.0, C.SHARPE: 0.0, C.MAX_DRAWDOWN: 0.0, C.N_TRADES: 0,
                C.TURNOVER: 0.0, C.EXPOSURE: 0.0, C.CAGR: None, C.WIN_RATE: None}
    final = float(equity[-1])
    sharpe = float(sharpe_ratios(r, periods)[0])
    running_max = np.maximum(np.maximum.accumulate(equity), 1.0)
    drawdown = float(np.min(equity / running_max - 1.0))
    in_market = s != 0
    held = int(np.count_nonzero(in_market))
    cagr: float | None = -1.0
    if final > 0:
        try:
            cagr = final ** (1.0 / years) - 1.0 if years and years > 0 else None
        except OverflowError:  # a huge gain over a few intraday bars: no meaningful rate
            cagr = None
    return {
        C.TOTAL_RETURN: final - 1.0,
        C.SHARPE: sharpe,
        C.MAX_DRAWDOWN: min(drawdown, 0.0) + 0.0,
        C.N_TRADES: int(np.count_nonzero(traded)),
        C.TURNOVER: float(np.sum(traded)),
        C.EXPOSURE: held / n,
        C.CAGR: cagr,
        C.WIN_RATE: float(np.count_nonzero(r[in_market] > 0)) / held if held else None,
    }


# --- bars per year ----------------------------------------------------------------------------


def infer_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year, measured over the calendar span of ``index``.

    The measurement is ``(len(index) - 1) / (span in days / 365.25)``, the span running from
    the first to the last bar. Within 3 % below or 5 % above a well-known value for bars of
    its median spacing it is that value: 12 monthly, 52 weekly, 252 exchange daily (a weekday
    calendar without holidays measures 260.9), 365 daily every day, 7 * 252 = 1764 hourly
    equity (7 bars a session, 09:30-15:30), 365 * 24 = 8760 hourly around the clock, ...
    (:func:`_known_periods`); otherwise it is rounded to a whole number (3 significant
    figures below 10). Hourly FX (24 hours from Sunday evening to Friday evening) thus
    gives what its file has, about 6,200.

    Data too short to measure, or with holes, is classified by its median bar spacing:

    - daily or coarser spanning less than a year, or with a gap longer than 30 spacings:
      daily 252 (365 when more than a tenth of the bars fall on a weekend), weekly 52,
      monthly 12, quarterly 4, longer ``365.25 / days``;
    - intraday spanning less than 28 days: the median number of bars on a date times the
      days a year it trades: 252 without weekend bars, 365.25 with Saturday bars, and
      365.25 * 5 / 7 with Sunday but no Saturday bars (FX's Sunday-evening open), then
      snapped and rounded as above.

    Fewer than two bars: 252.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        The bar timestamps, increasing (the whole loaded price frame, not a split of it).

    Returns
    -------
    float
    """
    idx = pd.DatetimeIndex(index)
    n = len(idx)
    if n < 2:
        return _TRADING_DAYS
    ns = idx.as_unit("ns").asi8
    step = np.diff(ns)
    step = np.sort(step[step > 0])  # sort, not np.median: its selection crawls on few values
    k = step.size
    if k == 0:
        return _TRADING_DAYS
    spacing = (float(step[(k - 1) // 2]) + float(step[k // 2])) / 2 / 86_400e9  # days
    span = float(ns[-1] - ns[0]) / 86_400e9
    if spacing < 0.75:  # intraday
        if span < _MIN_SPAN_INTRADAY:
            return _snap(_intraday_by_calendar(idx), spacing)
    elif span < _MIN_SPAN_DAILY or float(step[-1]) / 86_400e9 > _HOLE_SPACINGS * spacing:
        return _by_spacing(idx, spacing)
    return _snap((n - 1) / (span / DAYS_PER_YEAR), spacing)


def _snap(measured: float, spacing: float) -> float:
    """``measured`` bars per year as the well-known value of bars ``spacing`` days apart
    that it is close to (:func:`_known_periods`), else rounded."""
    known = np.asarray(_known_periods(spacing))
    ratio = measured / known
    close = (ratio >= 1.0 - _SNAP_BELOW) & (ratio <= 1.0 + _SNAP_ABOVE)
    if close.any():
        return float(known[close][np.argmin(np.abs(np.log(ratio[close])))])
    if measured >= 10.0:
        return float(round(measured))
    return float(f"{measured:.3g}")


def _known_periods(spacing: float) -> tuple[float, ...]:
    """The well-known bars per year of bars ``spacing`` days apart: for intraday bars an
    equity session of 252 days (``ceil(390 min / bar)`` bars a day: 7 hourly, 13 of 30 min,
    78 of 5 min, ...) and a market open around the clock every day (365 * 24 hourly); 252 and
    365 daily; 52 weekly; 12 monthly; 4 quarterly; 1 yearly."""
    if spacing < 0.75:
        minutes = max(1, round(spacing * 1440.0))
        return (_TRADING_DAYS * math.ceil(_SESSION_MINUTES / minutes),
                _CALENDAR_DAYS * 1440.0 / minutes)
    if spacing < 4.0:
        return (_TRADING_DAYS, _CALENDAR_DAYS)
    if spacing < 11.0:
        return (52.0,)
    if spacing < 45.0:
        return (12.0,)
    if spacing < 135.0:
        return (4.0,)
    return (1.0,)


def _by_spacing(idx: pd.DatetimeIndex, days: float) -> float:
    """Bars per year of daily or coarser bars from their median spacing in ``days``."""
    if days < 4.0:  # daily: 1 day apart, 3 over a weekend
        weekend = float(np.mean(idx.day_of_week >= 5))
        return _CALENDAR_DAYS if weekend > 0.1 else _TRADING_DAYS
    if days < 11.0:  # weekly (and Yahoo's 5-day bars)
        return 52.0
    if days < 45.0:
        return 12.0
    if days < 135.0:
        return 4.0
    return float(f"{DAYS_PER_YEAR / days:.3g}")


def _intraday_by_calendar(idx: pd.DatetimeIndex) -> float:
    """Bars per year of a few days or weeks of intraday bars: bars on a date times the
    days a year the market trades (see :func:`infer_periods_per_year`)."""
    _, per_date = np.unique(idx.normalize().as_unit("ns").asi8, return_counts=True)
    bars = float(np.median(per_date))
    dow = idx.day_of_week
    if not bool(np.any(dow >= 5)):
        return bars * _TRADING_DAYS
    if bool(np.any(dow == 5)):
        return bars * DAYS_PER_YEAR
    return bars * DAYS_PER_YEAR * 5.0 / 7.0


# --- positions from predictions ---------------------------------------------------------------


def positions_from_predictions(
    predicted: pd.Series, *, strategy: str = "long_flat", threshold_bps: float = 0.0
) -> pd.Series:
    """Turn predicted returns into positions.

    Parameters
    ----------
    predicted : pandas.Series
        Predicted next-bar return per row (a NaN prediction gives a flat row).
    strategy : {"long_flat", "long_short"}
        ``long_flat``: 1 where the prediction exceeds the threshold, else 0.
        ``long_short``: +1 above ``+threshold``, -1 below ``-threshold``, else 0.
    threshold_bps : float
        Threshold / dead band in basis points of return (5 = 0.0005), >= 0.

    Returns
    -------
    pandas.Series
        float64 positions named ``position`` on the index of ``predicted``.
    """
    if strategy not in C.STRATEGIES:
        raise ConfigError(f"strategy {strategy!r}: expected one of {', '.join(C.STRATEGIES)}")
    if not (_is_number(threshold_bps) and math.isfinite(threshold_bps) and threshold_bps >= 0):
        raise ConfigError(f"threshold {threshold_bps!r} bps: must be a finite number >= 0")
    p = np.asarray(predicted, dtype=np.float64)
    th = float(threshold_bps) / 10_000.0
    s = (p > th).astype(np.float64)
    if strategy == C.LONG_SHORT:
        s -= (p < -th).astype(np.float64)
    return pd.Series(s, index=predicted.index, name=C.POSITION)


# --- input checks -----------------------------------------------------------------------------


def check_positions(positions: pd.Series, *, prices_index: pd.DatetimeIndex, name: str) -> None:
    """Refuse a position series the engine cannot trade, with a message that says how to fix it.

    Parameters
    ----------
    positions : pandas.Series
        Positions indexed by date.
    prices_index : pandas.DatetimeIndex
        The bars of the price frame.
    name : str
        What the user calls the signals ("signals.csv"); every message starts with it.

    Raises
    ------
    DataError
        No rows; an index that is not dates; duplicate dates; a position that is not a
        number, NaN or outside [-1, 1]; dates that are not bars of the price data.
    """
    _locate(positions, prices_index, name=name)


def _locate(
    positions: pd.Series, prices_index: pd.DatetimeIndex, *, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Check ``positions``; return (row of each date in ``prices_index``, float64 values)."""
    if not isinstance(positions, pd.Series):
        raise TypeError(f"{name}: expected a pandas Series of positions indexed by date, "
                        f"got {type(positions).__name__}")
    if len(positions) == 0:
        raise DataError(f"{name}: there are no positions; give at least one dated position")
    if not isinstance(positions.index, pd.DatetimeIndex):
        raise DataError(f"{name}: positions must be indexed by date (got "
                        f"{type(positions.index).__name__}); parse the dates first")
    dates = positions.index
    try:
        values = positions.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        values = pd.to_numeric(positions, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        bad = np.flatnonzero(np.isnan(values) & positions.notna().to_numpy())
        raise DataError(f"{name}, {_fmt(dates[bad[0]])}: position {positions.iloc[bad[0]]!r} "
                        "is not a number; use a number from -1 (short) to 1 (long)") from None
    nan = np.isnan(values)
    if nan.any():
        raise DataError(f"{name}, {_list(dates[nan])}: the position is missing (NaN); "
                        "write 0 for a flat row")
    outside = (values < -1.0) | (values > 1.0)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{name}, {_list(dates[outside])}: position {values[first]:g} is outside [-1, 1]; "
            "use 1 for fully long, -1 for fully short and fractions in between"
        )
    if dates.hasnans:
        raise DataError(f"{name}: a date is missing; give every position a date")
    if dates.has_duplicates:
        raise DataError(f"{name}, {_list(dates[dates.duplicated()])}: the date appears more "
                        "than once; keep one position per date")
    if (dates.tz is None) != (prices_index.tz is None):
        have = "without" if dates.tz is None else f"with timezone {dates.tz}"
        want = "without a timezone" if prices_index.tz is None else f"in {prices_index.tz}"
        raise DataError(f"{name}: dates are {have} a timezone but the price bars are {want}; "
                        "write the signal dates the way the price file writes them")
    rows = _rows_in(dates, pd.DatetimeIndex(prices_index))
    missing = rows < 0
    if missing.any():
        k = int(np.count_nonzero(missing))
        span = (f"the prices run {_fmt(prices_index[0])} .. {_fmt(prices_index[-1])}; "
                if len(prices_index) else "")
        raise DataError(
            f"{name}: {k} date{'s are' if k > 1 else ' is'} not in the price data "
            f"({_list(dates[missing])}); {span}use only dates that have a price row "
            "(no weekends or holidays)"
        )
    return rows, values


def _rows_in(dates: pd.DatetimeIndex, bars: pd.DatetimeIndex) -> np.ndarray:
    """Position of each of ``dates`` in the increasing ``bars`` (-1 when absent)."""
    if dates is bars or dates.equals(bars):
        return np.arange(len(bars))
    if not bars.is_monotonic_increasing:
        return bars.get_indexer(dates)
    keys = bars.as_unit("ns").asi8
    want = dates.as_unit("ns").asi8
    start = int(np.searchsorted(keys, want[0]))
    if start + want.size <= keys.size and np.array_equal(keys[start: start + want.size], want):
        return np.arange(start, start + want.size)  # the usual case: a run of consecutive bars
    rows = np.searchsorted(keys, want)
    inside = rows < keys.size
    found = np.zeros(want.size, dtype=bool)
    found[inside] = keys[rows[inside]] == want[inside]
    return np.where(found, rows, -1)


# --- signals files ----------------------------------------------------------------------------


def read_signals(path: str | Path) -> pd.Series:
    """Read a signals CSV with columns ``date, position`` into a position series.

    Headers are matched case-insensitively (``Date``/``Datetime`` accepted); dates are read
    like price files (ISO, ``MM/DD/YYYY``, timestamps with UTC offsets); rows are sorted by
    date. Dates at midnight become tz-naive, as in the price data contract.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file.

    Returns
    -------
    pandas.Series
        float64 positions named ``position``, indexed by a ``DatetimeIndex`` named ``date``.

    Raises
    ------
    DataError
        A missing, empty or unreadable file; missing columns; an unreadable date; a
        position that is missing, not a number or outside [-1, 1]; a repeated date. The
        message names the file and the line (header = line 1).
    """
    from sandbox.data.csv import require_file

    p = require_file(path)
    name = str(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{name} is not a CSV text file; save it as UTF-8 CSV") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip()]
    if not lines:
        raise DataError(f"{name} is empty; expected a header 'date,position' and one row per date")
    import io

    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, skip_blank_lines=True,
                          keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise DataError(f"{name}: cannot read the CSV ({detail})") from None
    headers = {str(c).strip().lower(): c for c in raw.columns}
    date_col = next((headers[h] for h in _DATE_HEADERS if h in headers), None)
    if date_col is None or C.POSITION not in headers:
        found = ", ".join(str(c) for c in raw.columns) or "none"
        raise DataError(f"{name}: expected columns date, position (found: {found})")
    line_of = np.asarray(lines[1:], dtype=np.int64)
    if line_of.size != len(raw):  # quoted line breaks: name rows by position instead
        line_of = np.arange(len(raw), dtype=np.int64) + 2
    raw = raw.fillna("")
    blank = (raw.apply(lambda col: col.str.strip()) == "").all(axis=1).to_numpy()
    raw, line_of = raw[~blank].reset_index(drop=True), line_of[~blank]
    if len(raw) == 0:
        raise DataError(f"{name} has a header but no rows; add one 'date,position' row per date")

    from sandbox.data.validate import parse_dates

    dates = parse_dates(raw[date_col], name=name, lines=line_of)
    local = dates.tz_localize(None) if dates.tz is not None else dates
    if bool((local == local.normalize()).all()):
        dates = local  # daily signals: tz-naive dates, as in the price data contract
    text_pos = raw[headers[C.POSITION]].str.strip()
    values = pd.to_numeric(text_pos, errors="coerce").to_numpy(np.float64)
    bad = np.isnan(values) | ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "missing" if text_pos.iloc[i] in ("", "nan", "NaN", "NA") else (
            f"{text_pos.iloc[i]!r}, not a number")
        raise DataError(f"{name}, line {line_of[i]}: the position is {what}; "
                        "write a number from -1 (short) to 1 (long), 0 for flat")
    outside = (values < -1.0) | (values > 1.0)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise DataError(f"{name}, line {line_of[i]}: position {values[i]:g} is outside "
                        "[-1, 1]; use 1 for fully long, -1 for fully short, fractions between")
    dup = dates.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(f"{name}, line {line_of[i]}: the date {_fmt(dates[i])} appears "
                        "more than once; keep one position per date")
    series = pd.Series(values, index=pd.DatetimeIndex(dates, name=C.INDEX_NAME), name=C.POSITION)
    return series.sort_index(kind="stable")


# --- helpers ----------------------------------------------------------------------------------


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _fmt(ts: Any) -> str:
    """2020-01-31 for a tz-naive midnight, else the ISO timestamp."""
    t = pd.Timestamp(ts)
    if t.tz is None and t == t.normalize():
        return t.strftime("%Y-%m-%d")
    return t.isoformat()


def _list(dates: pd.DatetimeIndex) -> str:
    """'2020-01-04' / '2020-01-04, 2020-01-05 and 7 more' (the dates a message names)."""
    shown = ", ".join(_fmt(d) for d in dates[:_MAX_LISTED])
    more = len(dates) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown
