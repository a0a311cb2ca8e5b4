"""Replay: a frozen model meets the bars after a date one at a time, as it would have traded them.

At each closed bar the streaming predictor (:class:`sandbox.stream.StreamPredictor`) predicts
the next bar's return from the last window, the strategy turns the prediction into a
position (:func:`sandbox.backtest.positions_from_predictions`: a pure function of the
prediction and the strategy), and a paper account fills it by the backtest's rules
(ARCHITECTURE "Paper trading semantics"), fresh (equity 1.0) at the first replayed bar:

- ``fill="next_open"``: the position decided at close ``t`` is held from open ``t+1`` to open
  ``t+2``, so row ``t``'s return is known at bar ``t+2``;
- ``fill="close"``: held from close ``t`` to close ``t+1``, known at bar ``t+1``;
- ``strategy_return[t] = s[t] * (exit / entry - 1) - c * |s[t] - s[t-1]|`` with ``s`` 0 before
  the first replayed row, ``equity`` the running product of ``1 + strategy_return``.

A :class:`ReplayStep` reports what is known at the close of its bar: this bar's prediction
and position, and the return and equity of the row this bar completed (``realised_date``).
:meth:`Replayer.frame` puts each return back on its own row, so the table equals the backtest
of the same positions on the same bars (:func:`sandbox.backtest.backtest`), its last rows
without a return like the backtest's.

The same :meth:`Replayer.step` serves history (:func:`replay_frame`, ``sandbox replay``) and a
live feed of closed bars. torch is imported only inside functions (by the predictor).
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.config import StrategyConfig
from sandbox.errors import Cancelled, ConfigError, DataError

#: columns of replay.csv after the ``date`` index
REPLAY_COLUMNS: tuple[str, ...] = (C.CLOSE, C.PREDICTED_RETURN, C.POSITION, C.STRATEGY_RETURN,
                                   C.EQUITY)
#: bars per year when neither the strategy nor enough history says (exchange daily bars)
DEFAULT_PERIODS_PER_YEAR = 252.0


@dataclass(frozen=True)
class Bar:
    """One closed OHLCV bar."""

    date: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float


def as_bar(bar: Any) -> Bar:
    """``bar`` as a :class:`Bar`: a Bar, a pandas Series whose ``name`` is the date (a row
    of a price frame, ``frame.iloc[i]``), or a mapping with ``date`` and the OHLCV keys."""
    if isinstance(bar, Bar):
        return bar
    if isinstance(bar, pd.Series):
        date, get = bar.name, bar.__getitem__
    elif isinstance(bar, Mapping):
        date, get = bar.get(C.INDEX_NAME), bar.__getitem__
    else:
        raise DataError(f"a bar must be a Bar, a row of a price frame or a mapping, not "
                        f"{type(bar).__name__}")
    try:
        values = [float(get(col)) for col in C.PRICE_COLUMNS]
        return Bar(pd.Timestamp(date), *values)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"not a bar ({exc}); it needs a date and "
                        f"{', '.join(C.PRICE_COLUMNS)}") from None


@dataclass(frozen=True)
class ReplayStep:
    """What is known at the close of one replayed bar.

    Attributes
    ----------
    index : int
        0 for the first replayed bar.
    date : pandas.Timestamp
        This bar.
    close : float
        Its close.
    predicted_return : float
        The next bar's log return, predicted at this close (NaN while the window fills).
    position : float
        Decided at this close by the strategy rule.
    realised_date : pandas.Timestamp or None
        The row whose return this bar completed (two bars back with ``next_open``, one with
        ``close``); None before any.
    strategy_return : float
        That row's return after costs; NaN when ``realised_date`` is None.
    equity : float
        The account after every realised row (1.0 before the first).
    buy_hold_equity : float
        Buy and hold over the same realised rows (long from the first replayed row; same
        fill and costs).
    sharpe_so_far : float
        Annualised Sharpe ratio of the realised returns (0 with fewer than 2, or none spread).
    hits_so_far, calls_so_far : int
        Rows whose predicted direction matched the actual return, of the rows scored (actual
        return known and not 0, prediction made).
    max_drawdown_so_far : float
        The deepest fall of equity from its running peak (the peak starts at 1.0), <= 0.
    n_trades_so_far : int
        Position changes decided so far (the entry on the first row counts).
    """

    index: int
    date: pd.Timestamp
    close: float
    predicted_return: float
    position: float
    realised_date: pd.Timestamp | None
    strategy_return: float
    equity: float
    buy_hold_equity: float
    sharpe_so_far: float
    hits_so_far: int
    calls_so_far: int
    max_drawdown_so_far: float
    n_trades_so_far: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: dates as ISO strings, NaN as None (for a pipe or a log)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, pd.Timestamp):
                out[key] = value.isoformat()
            elif isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


@dataclass
class _Row:
    """One replayed row as the account needs it until its return is known."""

    date: pd.Timestamp
    open: float
    close: float
    predicted: float
    position: float


class Replayer:
    """Step a model through closed bars one at a time; a fresh paper account at the first.

    Parameters
    ----------
    model_or_bundle : sandbox.export.Bundle or torch.nn.Module
        A loaded bundle (its feature state and strategy are the defaults), or a model.
    feature_state : dict, optional
        The model's feature state; required with a bare model.
    strategy : StrategyConfig, optional
        Rule, threshold, fill and costs (default: the bundle's, else the defaults).
    history : pandas.DataFrame, optional
        Bars before the first replayed bar; only the last ``window`` are used (to fill the
        predictor's window). Without enough of them the first steps predict NaN (flat).
    periods_per_year : float, optional
        Bars per year for ``sharpe_so_far``: this, else the strategy's override, else
        measured over ``history``, else 252.
    exact : bool
        Passed to :class:`sandbox.stream.StreamPredictor`.
    """

    def __init__(self, model_or_bundle: Any, feature_state: dict[str, Any] | None = None,
                 strategy: StrategyConfig | None = None, history: pd.DataFrame | None = None,
                 *, periods_per_year: float | None = None, exact: bool = True) -> None:
        from sandbox.stream import StreamPredictor

        model = model_or_bundle
        if hasattr(model_or_bundle, "feature_state") and hasattr(model_or_bundle, "config"):
            model = model_or_bundle.model
            feature_state = feature_state or model_or_bundle.feature_state
            strategy = strategy or model_or_bundle.config.strategy
        if feature_state is None:
            raise ConfigError("a replay of a bare model needs its feature_state")
        self.strategy = strategy or StrategyConfig()
        self.feature_state = feature_state
        self.predictor = StreamPredictor(model, feature_state, exact=exact)
        self.lag = 2 if self.strategy.fill == C.FILL_NEXT_OPEN else 1
        self._cost = float(self.strategy.cost_bps) / 10_000.0
        self.periods_per_year = _periods(periods_per_year, self.strategy, history)
        self._hit_lag, self._hit_on_open = _actual_horizon(feature_state)
        self._last_date: pd.Timestamp | None = None
        if history is not None and len(history):
            self.predictor.warm(history)
            self._last_date = pd.Timestamp(history.index[-1])
        self._recent: deque[_Row] = deque(maxlen=max(self.lag, self._hit_lag) + 2)
        # the table, column by column (8 bytes a value: a million bars stay small)
        self._dates = array("q")  # int64 nanoseconds (UTC for aware dates)
        self._tz: Any = None
        self._unit: str | None = None
        self._close, self._predicted, self._positions = array("d"), array("d"), array("d")
        self._returns, self._equities = array("d"), array("d")
        self.steps_done = 0
        self._equity = 1.0
        self._bh_equity = 1.0
        self._peak = 1.0
        self._drawdown = 0.0
        self._n_ret, self._mean, self._m2 = 0, 0.0, 0.0  # Welford's running moments
        self._hits = self._calls = self._trades = 0
        self._prev_position = 0.0

    # --- one bar -------------------------------------------------------------------------------

    def step(self, bar: Any) -> ReplayStep:
        """Handle one closed bar: predict, decide, fill what this bar completes.

        Parameters
        ----------
        bar : Bar, pandas.Series or mapping
            See :func:`as_bar`; its date must be after the last bar's.

        Returns
        -------
        ReplayStep

        Raises
        ------
        DataError
            The bar is not after the last one, or gives a non-finite feature.
        """
        b = as_bar(bar)
        if self._last_date is not None and not b.date > self._last_date:
            raise DataError(f"bar {b.date} is not after the last bar ({self._last_date}); "
                            "bars must come in time order, each once")
        predicted = self.predictor.push(b.open, b.high, b.low, b.close, b.volume)
        position = self._position(predicted)
        self._trades += int(position != self._prev_position)
        self._prev_position = position
        row = _Row(b.date, b.open, b.close, predicted, position)
        self._recent.append(row)
        self._record(row)
        self._last_date = b.date
        realised_date, ret = self._fill()
        self._score_hit()
        index = self.steps_done
        self.steps_done += 1
        return ReplayStep(
            index=index, date=b.date, close=b.close, predicted_return=predicted,
            position=position, realised_date=realised_date, strategy_return=ret,
            equity=self._equity, buy_hold_equity=self._bh_equity,
            sharpe_so_far=self._sharpe(), hits_so_far=self._hits, calls_so_far=self._calls,
            max_drawdown_so_far=self._drawdown, n_trades_so_far=self._trades,
        )

    def _position(self, predicted: float) -> float:
        """The strategy rule of the backtest, on one prediction (NaN is flat)."""
        from sandbox.backtest import positions_from_predictions

        s = positions_from_predictions(pd.Series([predicted]), strategy=self.strategy.strategy,
                                       threshold_bps=self.strategy.threshold_bps)
        return float(s.iloc[0])

    def _fill(self) -> tuple[pd.Timestamp | None, float]:
        """Fill the row this bar completes (``lag`` bars back), the backtest's formula term
        for term (the same float operations, so the same bits)."""
        n = self.steps_done + 1  # rows replayed, this one included
        if n <= self.lag:
            return None, math.nan
        recent = self._recent
        row = recent[-1 - self.lag]
        prev = recent[-2 - self.lag].position if n > self.lag + 1 else 0.0
        if self.lag == 2:  # next_open: open[k+1] -> open[k+2]
            entry, exit_ = recent[-2].open, recent[-1].open
        else:  # close: close[k] -> close[k+1]
            entry, exit_ = row.close, recent[-1].close
        move = exit_ / entry - 1.0
        ret = row.position * move - self._cost * abs(row.position - prev) + 0.0
        first = n == self.lag + 1
        bh = 1.0 * move - self._cost * (1.0 if first else 0.0) + 0.0
        self._equity *= 1.0 + ret
        self._bh_equity *= 1.0 + bh
        self._returns.append(ret)
        self._equities.append(self._equity)
        self._peak = max(self._peak, self._equity)
        self._drawdown = min(self._drawdown, self._equity / self._peak - 1.0)
        self._n_ret += 1
        delta = ret - self._mean
        self._mean += delta / self._n_ret
        self._m2 += delta * (ret - self._mean)
        return row.date, ret

    def _score_hit(self) -> None:
        """Score the prediction whose actual return this bar completed, as
        :func:`sandbox.evaluate.directional_accuracy` does (a prediction of 0 is a miss;
        actual returns of 0 are not scored; rows still warming up have no prediction)."""
        h, recent = self._hit_lag, self._recent
        if self.steps_done < h or len(recent) < h + 1:
            return
        row = recent[-1 - h]
        if math.isnan(row.predicted):
            return
        if self._hit_on_open:  # traded return, next-open fill: ln(open[k+2] / open[k+1])
            actual = math.log(recent[-1].open / recent[-2].open)
        else:  # ln(close[k+1] / close[k])
            actual = math.log(recent[-1].close / row.close)
        if actual == 0 or not math.isfinite(actual):
            return
        self._calls += 1
        self._hits += int(np.sign(row.predicted) == np.sign(actual))

    def _sharpe(self) -> float:
        if self._n_ret < 2:
            return 0.0
        std = math.sqrt(self._m2 / (self._n_ret - 1))
        if not std > 1e-12 * abs(self._mean):
            return 0.0
        return self._mean / std * math.sqrt(self.periods_per_year)

    # --- the table -----------------------------------------------------------------------------

    def _record(self, row: _Row) -> None:
        if self._unit is None:
            self._tz, self._unit = row.date.tz, row.date.unit
        self._dates.append(row.date.value)
        self._close.append(row.close)
        self._predicted.append(row.predicted)
        self._positions.append(row.position)

    def frame(self) -> pd.DataFrame:
        """Every replayed row: ``date`` index; ``close``, ``predicted_return``, ``position``,
        ``strategy_return``, ``equity`` (the last ``lag`` rows NaN: no return known yet)."""
        n, m = len(self._dates), len(self._returns)
        ret = np.full(n, np.nan)
        equity = np.full(n, np.nan)
        ret[:m] = _floats(self._returns)
        equity[:m] = _floats(self._equities)
        index = pd.DatetimeIndex(_floats(self._dates, np.int64).view("M8[ns]"))
        if self._tz is not None:
            index = index.tz_localize("UTC").tz_convert(self._tz)
        if self._unit is not None:
            index = index.as_unit(self._unit)
        return pd.DataFrame({
            C.CLOSE: _floats(self._close), C.PREDICTED_RETURN: _floats(self._predicted),
            C.POSITION: _floats(self._positions), C.STRATEGY_RETURN: ret, C.EQUITY: equity,
        }, index=index.rename(C.INDEX_NAME)).loc[:, list(REPLAY_COLUMNS)]


def _floats(values: array, dtype: Any = np.float64) -> np.ndarray:
    """A copy of an ``array.array`` as a numpy array (empty when it is)."""
    return np.frombuffer(values, dtype=dtype).copy() if len(values) else np.zeros(0, dtype)


def _periods(value: float | None, strategy: StrategyConfig,
             history: pd.DataFrame | None) -> float:
    if value is not None:
        return float(value)
    if strategy.periods_per_year is not None:
        return float(strategy.periods_per_year)
    if history is not None and len(history) >= 2:
        from sandbox.backtest import infer_periods_per_year

        return float(infer_periods_per_year(history.index))
    return DEFAULT_PERIODS_PER_YEAR


def _actual_horizon(state: dict[str, Any]) -> tuple[int, bool]:
    """Bars until a row's actual return is known, and whether it is the open-to-open one
    (:func:`sandbox.features.realised_return`)."""
    from sandbox.features import target_horizon

    target, fill = state["target"], state.get("target_fill")
    h = target_horizon(target, fill)
    return h, h == 2


# --- controls and the loop ----------------------------------------------------------------------


class ReplayControl:
    """Play / pause / step / speed / jump for a running replay (thread-safe).

    The app's buttons call these from any thread; the replay loop reads them between bars.

    Attributes
    ----------
    pause : threading.Event
        Set: the replay waits (between bars).
    cancel : threading.Event
        Set: the replay stops (:func:`replay_frame` raises :class:`~sandbox.errors.Cancelled`).
    speed : float
        Bars per second; 0 = as fast as possible. May be changed at any time.
    """

    def __init__(self, speed: float = 0.0, cancel: threading.Event | None = None) -> None:
        self.pause = threading.Event()
        self.cancel = cancel or threading.Event()
        self.speed = float(speed)
        self._lock = threading.Lock()
        self._allowance = 0
        self._jump: pd.Timestamp | None = None
        self._wake = threading.Event()

    def step_once(self) -> None:
        """While paused, let exactly one more bar through."""
        with self._lock:
            self._allowance += 1
        self._wake.set()

    def jump_to(self, date: Any) -> None:
        """Replay as fast as possible up to the first bar on or after ``date``, then pause
        there (a replay only goes forward: for an earlier date start a new one)."""
        with self._lock:
            self._jump = pd.Timestamp(date)
        self.pause.clear()
        self._wake.set()

    def resume(self) -> None:
        """Clear the pause."""
        self.pause.clear()
        self._wake.set()

    def stop(self) -> None:
        """Set the cancel event."""
        self.cancel.set()
        self._wake.set()

    # --- the loop's side -----------------------------------------------------------------------

    def _jump_target(self) -> pd.Timestamp | None:
        with self._lock:
            return self._jump

    def _reached(self, date: pd.Timestamp) -> None:
        """Called after each bar: a jump that reached its date pauses the replay."""
        with self._lock:
            if self._jump is not None and _comparable(date, self._jump) <= date:
                self._jump = None
                self.pause.set()

    def _wait_turn(self, flush: Callable[[], None]) -> None:
        """Block while paused (flushing first), until resumed, stepped or cancelled."""
        while self.pause.is_set() and not self.cancel.is_set():
            with self._lock:
                if self._allowance > 0:
                    self._allowance -= 1
                    return
            flush()
            self._wake.wait(0.05)
            self._wake.clear()


def _comparable(date: pd.Timestamp, other: pd.Timestamp) -> pd.Timestamp:
    """``other`` in ``date``'s timezone (naive dates taken as in it)."""
    if date.tz is not None and other.tz is None:
        return other.tz_localize(date.tz)
    if date.tz is None and other.tz is not None:
        return other.tz_convert(None)
    return other


def replay_start(bundle: Any, prices: pd.DataFrame, start: Any = None) -> int:
    """Position in ``prices`` of the first replayed bar.

    ``start`` (a date) or, by default, the bundle's test start (``run.json`` "splits"), else
    the first bar after the last one it was trained on; never before the first bar with a
    full window (earlier bars have no prediction in the batch path either).

    Raises
    ------
    ConfigError
        ``start`` is not a date, or no bar of ``prices`` is on or after it.
    """
    from sandbox import export
    from sandbox.features import in_rows_timezone

    window = int(bundle.feature_state["window"])
    splits = getattr(bundle, "splits", None) or {}
    what, side = f"--from {start}", "left"
    if start is None:
        start = splits.get(export.SPLIT_TEST_START)
        what = f"the model's test start ({str(start)[:10]})"
        if start is None and splits.get(export.SPLIT_LAST_BAR):
            start, side = splits[export.SPLIT_LAST_BAR], "right"
            what = f"the first bar after the model's data ({str(start)[:10]})"
        if start is None:
            return window - 1
    try:
        ts = pd.Timestamp(start)
    except (ValueError, TypeError):
        raise ConfigError(f"--from {start!r}: not a date (use YYYY-MM-DD)") from None
    i = int(prices.index.searchsorted(in_rows_timezone(prices.index, ts), side=side))
    if i >= len(prices):
        raise ConfigError(f"{what} is after the last bar ({prices.index[-1]}); nothing to "
                          "replay (give --from an earlier date)")
    return max(i, window - 1)


def replay_frame(
    bundle: Any,
    prices: pd.DataFrame,
    start: Any = None,
    strategy: StrategyConfig | None = None,
    *,
    on_step: Callable[[ReplayStep], None] | None = None,
    cancel: threading.Event | None = None,
    speed: float = 0.0,
    on_steps: Callable[[list[ReplayStep]], None] | None = None,
    control: ReplayControl | None = None,
    batch_ms: float = 20.0,
    batch_bars: int = 256,
    periods_per_year: float | None = None,
) -> pd.DataFrame:
    """Replay every bar of ``prices`` from ``start`` on; return the replay table.

    Parameters
    ----------
    bundle : sandbox.export.Bundle, path or run
        The saved model (a folder is loaded; a run as :func:`as_bundle` takes it).
    prices : pandas.DataFrame
        A validated price frame; the bars before the first replayed one fill the window.
    start : date, optional
        The first replayed bar (:func:`replay_start`; default the model's test start).
    strategy : StrategyConfig, optional
        Default: the bundle's own.
    on_step : callable, optional
        Called with each :class:`ReplayStep` as it is made.
    cancel : threading.Event, optional
        Set to stop (also ``control.cancel``).
    speed : float
        Bars per second, 0 = as fast as possible (``control.speed`` wins when given).
    on_steps : callable, optional
        Called with the steps made since its last call, every ``batch_ms`` milliseconds or
        ``batch_bars`` bars, before any wait (pause, pacing) and at the end: a UI can draw
        in batches while the loop runs as fast as possible.
    control : ReplayControl, optional
        Pause / step / speed / jump while running.
    periods_per_year : float, optional
        For the running Sharpe ratio; default the strategy's override, else measured over
        the whole of ``prices`` (as ``sandbox predict`` does).

    Returns
    -------
    pandas.DataFrame
        :meth:`Replayer.frame`.

    Raises
    ------
    Cancelled
        The replay was cancelled.
    """
    from sandbox import evaluate

    bundle = as_bundle(bundle)
    strategy = strategy or bundle.config.strategy
    control = control or ReplayControl(speed, cancel)
    if cancel is not None and control.cancel is not cancel:
        _chain(cancel, control)
    i0 = replay_start(bundle, prices, start)
    if periods_per_year is None:
        periods_per_year = evaluate.run_periods_per_year(prices, strategy)
    replayer = Replayer(bundle, strategy=strategy, history=prices.iloc[:i0],
                        periods_per_year=periods_per_year)
    pending: list[ReplayStep] = []
    last_flush = time.perf_counter()

    def flush() -> None:
        nonlocal last_flush
        last_flush = time.perf_counter()
        if pending and on_steps is not None:
            on_steps(list(pending))
        pending.clear()

    values = prices[list(C.PRICE_COLUMNS)].to_numpy(np.float64)
    dates = prices.index
    paced_from, paced_n, paced_speed = time.perf_counter(), 0, None
    for i in range(i0, len(prices)):
        control._wait_turn(flush)
        if control.cancel.is_set():
            flush()
            raise Cancelled(f"replay cancelled at {dates[i]}")
        speed_now = 0.0 if control._jump_target() is not None else control.speed
        if speed_now != paced_speed:  # a new speed paces from here
            paced_from, paced_n, paced_speed = time.perf_counter(), 0, speed_now
        if speed_now > 0:
            due = paced_from + paced_n / speed_now
            if due > time.perf_counter():
                flush()
                control.cancel.wait(max(0.0, due - time.perf_counter()))
        paced_n += 1
        step = replayer.step(Bar(dates[i], *values[i].tolist()))
        control._reached(step.date)
        if on_step is not None:
            on_step(step)
        pending.append(step)
        if (len(pending) >= batch_bars
                or (time.perf_counter() - last_flush) * 1000.0 >= batch_ms):
            flush()
    flush()
    return replayer.frame()


def stream_replay(
    source: Any,
    prices: pd.DataFrame,
    start: Any = None,
    strategy: StrategyConfig | None = None,
    *,
    on_result: Callable[[list[ReplayStep]], None] | None = None,
    on_steps: Callable[[list[ReplayStep]], None] | None = None,
    cancel: Any = None,
    control: ReplayControl | None = None,
    speed: float = 0.0,
    batch_ms: float = 20.0,
    batch_bars: int = 256,
    periods_per_year: float | None = None,
) -> pd.DataFrame:
    """:func:`replay_frame` as the app's torch process runs it: ``source`` may be a run
    (:class:`sandbox.pipeline.RunResult`, its model rebuilt from its weights when it comes
    without one), a bundle or a bundle folder, and ``on_result`` receives each batch of
    steps (a list of :class:`ReplayStep`; ``on_steps`` is the same)."""
    return replay_frame(as_bundle(source), prices, start, strategy,
                        on_steps=on_result or on_steps,
                        cancel=cancel, control=control, speed=speed, batch_ms=batch_ms,
                        batch_bars=batch_bars, periods_per_year=periods_per_year)


def as_bundle(source: Any) -> Any:
    """A :class:`sandbox.export.Bundle` for a bundle, a bundle folder or a run.

    Raises
    ------
    ConfigError
        The run keeps no model (a seed ensemble's average, say).
    """
    from sandbox import export

    if isinstance(source, export.Bundle):
        return source
    if isinstance(source, str | bytes) or hasattr(source, "__fspath__"):
        return export.load_bundle(source)
    from sandbox.audit import predictor_of

    if getattr(source, "model", None) is None and getattr(source, "weights", None) is None:
        raise ConfigError("this run keeps no single model to replay (an ensemble's average is "
                          "not one network): replay a run trained with Seeds 1 or a saved model")
    model = predictor_of(source).model  # its model, or one rebuilt from its weights
    splits = getattr(source, "trained_split", None)
    if not splits:
        try:
            splits = export.split_dates(source)
        except (AttributeError, KeyError, IndexError, TypeError):
            splits = None
    return export.Bundle(config=source.config, feature_state=source.feature_state,
                         model=model.eval(), splits=splits or None)


def _chain(cancel: threading.Event, control: ReplayControl) -> None:
    """Make ``control`` see ``cancel``: a watcher thread sets ``control.cancel`` when it is."""
    def watch() -> None:
        while not control.cancel.is_set():
            if cancel.wait(0.05):
                control.stop()
                return

    threading.Thread(target=watch, daemon=True, name="replay-cancel").start()


# --- command line ---------------------------------------------------------------------------------


def cli_replay(args: Any) -> int:
    """``sandbox replay``: replay a saved model over its data (or the given data) and write
    ``DIR/replay.csv`` atomically; print a short summary. Returns the exit code."""
    import sys

    from sandbox import atomic, cli
    from sandbox.data import load_prices

    speed = float(getattr(args, "speed", 0.0) or 0.0)
    if not (math.isfinite(speed) and speed >= 0):
        raise ConfigError(f"--speed {speed}: must be a number >= 0 (0 = as fast as possible)")
    out, bundle, spec = cli.bundle_and_data(args)
    strategy = bundle.config.strategy.replace(**cli._given(args, cli._STRATEGY_FLAGS))
    loaded = load_prices(spec, min_rows=int(bundle.feature_state["window"]))
    for warning in loaded.warnings:
        sys.stderr.write(f"{cli.PROG}: warning: {warning}\n")
    frame = loaded.frame
    start = getattr(args, "replay_from", None)
    first = replay_start(bundle, frame, start)
    if start is not None and first > _position_of(frame.index, start):
        _say(f"note: the first bar with a full {bundle.feature_state['window']}-bar window is "
             f"{frame.index[first]}; the replay starts there")
    cancel = threading.Event()
    printer = _step_printer() if speed > 0 else None
    with cli._sigint_sets(cancel):
        table = replay_frame(bundle, frame, frame.index[first], strategy, cancel=cancel,
                             speed=speed, on_step=printer)
    atomic.write_folder(out, lambda tmp: atomic.write_csv(tmp / C.REPLAY_CSV, table))
    for line in summary_lines(frame, table, strategy):
        _say(line)
    _count_look(frame, table, bundle)
    _say(str(out / C.REPLAY_CSV))
    return 0


def _count_look(frame: pd.DataFrame, table: pd.DataFrame, bundle: Any) -> None:
    """A replay that shows rows of the model's test split is a look at it, counted as
    ``sandbox predict`` counts one (shared with the app); say what it means."""
    import sys

    from sandbox import cli, looks
    from sandbox.errors import SandboxError
    from sandbox.pipeline import trained_labels

    test = trained_labels(table.index, bundle.splits) == C.TEST
    returns = table.loc[test, C.STRATEGY_RETURN].dropna()
    if returns.empty:
        return
    try:
        _, ev = looks.look_at_test(frame, returns)
    except SandboxError as exc:  # the counts file cannot be written: say so, keep the replay
        sys.stderr.write(f"{cli.PROG}: warning: this look at the test split was not counted: "
                         f"{exc}\n")
        return
    times = "once" if ev.count == 1 else "twice" if ev.count == 2 else f"{ev.count} times"
    _say(f"test split seen {times} on this data (this replay shows {len(returns)} of its "
         f"returns); PSR {cli._fmt(ev.psr)} (P[true Sharpe > 0])")


def _position_of(index: pd.DatetimeIndex, date: Any) -> int:
    from sandbox.features import in_rows_timezone

    return int(index.searchsorted(in_rows_timezone(index, pd.Timestamp(date)), side="left"))


def summary_lines(prices: pd.DataFrame, table: pd.DataFrame,
                  strategy: StrategyConfig) -> list[str]:
    """A few lines on a replay: its bars, the model's account and buy and hold's on the same
    rows (the backtest's metrics; Sharpe ratios scaled as ``sandbox predict`` scales them)."""
    from sandbox.backtest import backtest, trading_metrics
    from sandbox.evaluate import run_periods_per_year

    periods = run_periods_per_year(prices, strategy)
    model = trading_metrics(table[C.STRATEGY_RETURN], table[C.POSITION],
                            periods_per_year=periods)
    hold = backtest(prices, pd.Series(1.0, index=table.index), fill=strategy.fill,
                    cost_bps=strategy.cost_bps, periods_per_year=periods).metrics
    return [
        f"replayed {len(table)} bars {table.index[0]} .. {table.index[-1]} "
        f"({strategy.strategy}, fill {strategy.fill}, cost {strategy.cost_bps:g} bps)",
        f"model: total return {model[C.TOTAL_RETURN]:+.2%}, Sharpe {model[C.SHARPE]:.2f}, "
        f"max drawdown {model[C.MAX_DRAWDOWN]:.2%}, {model[C.N_TRADES]} trades; "
        f"buy & hold: total return {hold[C.TOTAL_RETURN]:+.2%}, Sharpe {hold[C.SHARPE]:.2f}",
    ]


def _say(line: str) -> None:
    """One line on stdout, flushed (the command's output)."""
    import sys

    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _step_printer() -> Callable[[ReplayStep], None]:
    """One line per bar on stdout (when replaying at a pace someone watches)."""
    def show(step: ReplayStep) -> None:
        pred = ("     n/a" if math.isnan(step.predicted_return)
                else f"{step.predicted_return:+.5f}")
        _say(f"{step.date}  close {step.close:.4f}  predicted {pred}  position "
             f"{step.position:+.0f}  equity {step.equity:.4f}")

    return show
