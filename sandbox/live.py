"""Live paper trading: Yahoo Finance's price stream -> bars -> decisions -> an append-only log.

The pieces, each usable and testable alone:

- :func:`parse_message` turns one message dict of yfinance 1.x's streaming client
  (``yf.WebSocket.listen(handler)``: a protobuf ``PricingData`` decoded with ``MessageToDict``,
  so int64 fields such as ``time`` (ms since the epoch), ``day_volume`` and ``last_size`` are
  strings and fields at their default value are absent) into a :class:`Tick`.
- :class:`TickBarBuilder` aggregates ticks into bars of a fixed interval: open/high/low/close
  of the ticks in time order, volume from the cumulative day volume, differenced (a day's
  reset handled, never negative). A bar closes when a tick of a later bar arrives, or on a
  timer (:meth:`TickBarBuilder.flush`) in a quiet market. Ticks of a bar already closed are
  ignored, exact repeats are dropped.
- :class:`LiveFeed` runs the streaming client on a worker thread and reconnects with capped,
  jittered exponential back-off; it reports its connection state (connecting, live,
  reconnecting, stopped) and the gap since the last tick through callbacks.
- :class:`DecisionLog` appends each closed bar and its decision to a CSV with a flush and an
  ``os.fsync`` per bar, so a crash loses at most the bar still open; reopening it drops a torn
  last line and continues after the last complete one.
- :func:`cli_live` is ``sandbox live``: the bundle, recent history to warm the model, the
  feed, one printed line per closed bar. Paper trading only: nothing here places an order.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sandbox import constants as C
from sandbox.errors import ConfigError, ExportError, SandboxError

__all__ = [
    "CLIENT_FACTORY",
    "LOG_COLUMNS",
    "Backoff",
    "Bar",
    "DecisionLog",
    "FeedState",
    "LiveFeed",
    "Tick",
    "TickBarBuilder",
    "bar_rule",
    "cli_live",
    "parse_message",
]

log = logging.getLogger(__name__)

PAPER_ONLY = "paper trading only: nothing here places an order"

#: ``sandbox live`` notes a quiet stream after this many seconds without a tick (then 2x, 4x..)
QUIET_NOTE_S = 60.0

#: connection states reported by :class:`LiveFeed`
CONNECTING = "connecting"
LIVE = "live"
RECONNECTING = "reconnecting"
STOPPED = "stopped"

#: yfinance bar sizes that are a fixed length of time, as pandas offsets
_RULES: dict[str, str] = {
    "1m": "1min", "2m": "2min", "5m": "5min", "15m": "15min", "30m": "30min", "60m": "60min",
    "90m": "90min", "1h": "1h", "1d": "1D",
}


def bar_rule(interval: str) -> str:
    """The pandas offset of a bar size (``"5m"`` -> ``"5min"``).

    Raises
    ------
    ConfigError
        The bar size is not a fixed length of time (``5d``, ``1wk``, ``1mo``, ``3mo``): a live
        stream cannot cut such bars.
    """
    try:
        return _RULES[interval]
    except KeyError:
        raise ConfigError(f"--interval {interval}: live bars must be one of "
                          f"{', '.join(_RULES)}") from None


# --- ticks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """One trade print of the stream."""

    time: pd.Timestamp  # tz-aware UTC
    price: float
    #: the cumulative volume of the trading day so far; None when the message has none
    day_volume: int | None = None
    #: printed in the regular session (``market_hours`` 1); False before or after it
    regular: bool = True


#: ``market_hours`` of a message in the regular session (Yahoo's MarketHoursType: 0 pre-market,
#: absent from the dict as proto3 leaves defaults out; 1 regular; 2 post-market; 3 extended)
REGULAR_MARKET = 1


def parse_message(message: Any, symbol: str | None = None, *, regular_only: bool = False
                  ) -> Tick | None:
    """One message dict of the streaming client -> a :class:`Tick`, or None to ignore it.

    Ignored: undecodable frames (yfinance passes ``{"error": ..., "raw_base64": ...}``),
    another symbol's message, a missing or non-positive price, a missing time; and with
    ``regular_only``, a print outside the regular session (``market_hours`` not 1), as
    Yahoo's intraday history leaves pre- and post-market trades out.
    """
    if not isinstance(message, dict) or "error" in message:
        return None
    if symbol is not None and str(message.get("id", "")).upper() != symbol.upper():
        return None
    if regular_only and message.get("market_hours", 0) != REGULAR_MARKET:
        return None
    try:
        price = float(message["price"])
        millis = int(message["time"])
    except (KeyError, TypeError, ValueError):
        return None
    if not math.isfinite(price) or price <= 0:
        return None
    volume = message.get("day_volume")
    try:
        day_volume = int(volume) if volume is not None else None
    except (TypeError, ValueError):
        day_volume = None
    return Tick(pd.Timestamp(millis, unit="ms", tz="UTC"), price, day_volume,
                regular=message.get("market_hours", 0) == REGULAR_MARKET)


# --- bars ----------------------------------------------------------------------------------


@dataclass
class Bar:
    """A bar built from ticks; ``start`` is the bar's label (its first instant)."""

    start: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    ticks: int = 0
    #: True for the first bar of a stream: ticks before the stream joined are not in it
    partial: bool = False
    first_time: pd.Timestamp | None = field(default=None, repr=False)
    last_time: pd.Timestamp | None = field(default=None, repr=False)


class TickBarBuilder:
    """Aggregates ticks into bars of one fixed interval.

    Parameters
    ----------
    interval : str
        A yfinance bar size (``1m``, ``5m``, ``1h``, ``1d``, ...; see :func:`bar_rule`).
    tz : str
        Timezone the bars are cut in (bars of a day start at its midnight there); bar starts
        are returned in it. Minute and hour bars are the same in any whole-hour timezone.
    after : Timestamp, optional
        Bars starting at or before this instant are never built (they are already logged).

    Notes
    -----
    The open is the earliest tick of the bar by time and the close the latest (a repeat of the
    same time keeps the first arrival as open, the last as close), so a bar equals
    ``pd.Series(prices, index=times).sort_index(kind="stable").resample(rule).ohlc()`` of its
    ticks. Volume is the increase of the cumulative day volume over the bar, in time order:
    a tick on a new date (in ``tz``), or a drop to below half the level, starts a new day,
    whose volume counts from zero; a smaller drop within the day is a correction that adds
    nothing (the level is kept); a tick older than the newest one seen adds nothing (the newer
    figure already holds its trade). Never negative. The stream's very
    first tick only sets the starting level, so the first bar (``partial``) misses the volume
    and the prices traded before the stream joined.
    """

    def __init__(self, interval: str, *, tz: str = "UTC", after: pd.Timestamp | None = None
                 ) -> None:
        self.rule = bar_rule(interval)
        self.step = pd.Timedelta(pd.tseries.frequencies.to_offset(self.rule))
        self.tz = tz
        self.current: Bar | None = None
        self.last_closed: pd.Timestamp | None = None if after is None else _in_tz(after, tz)
        self.late = 0  # ticks ignored because their bar was closed
        self.repeats = 0  # exact repeats ignored
        self._seen: set[tuple[int, float, int | None]] = set()
        self._cum: int | None = None
        self._cum_time: pd.Timestamp | None = None
        self._first = True

    def start_of(self, when: pd.Timestamp) -> pd.Timestamp:
        """The start of the bar holding instant ``when``."""
        return _in_tz(when, self.tz).floor(self.rule, ambiguous=False,
                                            nonexistent="shift_backward")

    def add(self, tick: Tick) -> list[Bar]:
        """Take one tick; return the bars it closed (zero or one)."""
        start = self.start_of(tick.time)
        newest = self.current.start if self.current is not None else self.last_closed
        if newest is not None and (start < newest or (self.current is None and start == newest)):
            self.late += 1  # its bar is closed, or older than the open one
            return []
        key = (tick.time.value, tick.price, tick.day_volume)
        if self.current is not None and start == self.current.start and key in self._seen:
            self.repeats += 1
            return []
        closed = [self._close()] if self.current is not None and start > self.current.start \
            else []
        if self.current is None:
            self.current = Bar(start, tick.price, tick.price, tick.price, tick.price,
                               partial=self._first, first_time=tick.time, last_time=tick.time)
            self._first = False
            self._seen = set()
        else:
            self._update(self.current, tick)
        self._seen.add(key)
        self.current.ticks += 1
        self.current.volume += self._volume(tick)
        return closed

    def level(self, tick: Tick) -> None:
        """Take a tick's day volume as the level the next bar counts from, without making it
        part of a bar (a pre- or post-market print when bars hold the regular session only):
        so the day's first regular bar does not count the pre-market volume."""
        self._volume(tick)

    def flush(self, now: pd.Timestamp, *, grace: pd.Timedelta | None = None) -> list[Bar]:
        """Close the open bar when ``now`` is past its end plus ``grace`` (a quiet market)."""
        end = None if self.current is None else self.current.start + self.step
        if end is None or now < end + (grace if grace is not None else pd.Timedelta(0)):
            return []
        return [self._close()]

    def _close(self) -> Bar:
        bar = self.current
        assert bar is not None
        self.current = None
        self.last_closed = bar.start
        return bar

    @staticmethod
    def _update(bar: Bar, tick: Tick) -> None:
        bar.high = max(bar.high, tick.price)
        bar.low = min(bar.low, tick.price)
        if tick.time < bar.first_time:
            bar.open, bar.first_time = tick.price, tick.time
        if tick.time >= bar.last_time:
            bar.close, bar.last_time = tick.price, tick.time

    def _volume(self, tick: Tick) -> float:
        dv = tick.day_volume
        if dv is None:
            return 0.0
        if self._cum is None or self._cum_time is None:
            self._cum, self._cum_time = dv, tick.time
            return 0.0
        if tick.time < self._cum_time:
            return 0.0
        if self._new_day(tick.time) or dv < self._cum / 2:
            added = dv  # the day's count restarted
        elif dv >= self._cum:
            added = dv - self._cum
        else:
            return 0.0  # a small correction within the day: keep the level, add nothing
        self._cum, self._cum_time = dv, tick.time
        return float(added)

    def _new_day(self, when: pd.Timestamp) -> bool:
        assert self._cum_time is not None
        return _in_tz(when, self.tz).date() != _in_tz(self._cum_time, self.tz).date()


def _in_tz(when: pd.Timestamp, tz: str) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    return ts.tz_localize("UTC").tz_convert(tz) if ts.tzinfo is None else ts.tz_convert(tz)


# --- reconnecting feed ---------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off: ``base * factor**(attempt-1)`` capped at ``cap`` seconds, times a
    random factor in ``[1 - jitter, 1]`` (so reconnecting clients do not all retry at once)."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.25

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before reconnect ``attempt`` (1, 2, ...)."""
        raw = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        u = (rng or random).random()
        return raw * (1.0 - self.jitter * u)


@dataclass(frozen=True)
class FeedState:
    """What the feed is doing, for the status line."""

    status: str  # connecting / live / reconnecting / stopped
    attempt: int = 0  # reconnect attempt (reconnecting, connecting after a drop)
    retry_in_s: float | None = None  # reconnecting: seconds until the next try
    gap_s: float | None = None  # seconds since the last tick; None before the first
    reason: str = ""  # why the connection ended (reconnecting / stopped)

    def describe(self) -> str:
        """One line: "reconnecting (attempt 2, next try in 3.8 s): connection closed"."""
        text = self.status
        if self.status == RECONNECTING:
            text += f" (attempt {self.attempt}, next try in {self.retry_in_s:.1f} s)"
        elif self.status == CONNECTING and self.attempt:
            text += f" (attempt {self.attempt})"
        if self.gap_s is not None and self.status in (CONNECTING, RECONNECTING):
            text += f"; last tick {self.gap_s:.0f} s ago"
        return text + (f": {self.reason}" if self.reason else "")


def _yfinance_client() -> Any:
    import yfinance as yf

    return yf.WebSocket(verbose=False)


#: builds a streaming client (``subscribe(symbols)``, ``listen(handler)``, ``close()``); tests
#: replace it with a client that replays a recorded stream
CLIENT_FACTORY: Callable[[], Any] = _yfinance_client


class LiveFeed:
    """The streaming client on a worker thread, with reconnects; closed bars to ``on_bar``.

    Parameters
    ----------
    symbol, interval : str
        What to subscribe to and the bar size.
    on_bar : callable
        Called with each closed :class:`Bar`, in order, never twice for one start; from the
        worker or the timer thread, one call at a time. An exception stops the feed and is
        kept in :attr:`error`.
    on_state : callable, optional
        Called with a :class:`FeedState` whenever the connection state changes.
    on_tick : callable, optional
        Called after each usable tick with the tick and a copy of the bar still forming (None
        when the tick was ignored as late), e.g. to draw the forming candle.
    client_factory : callable, optional
        Makes a new client for each connection (default :data:`CLIENT_FACTORY`).
    backoff : Backoff
        Delays between reconnects; the attempt count restarts once a tick arrives.
    clock : callable
        Wall-clock seconds since the epoch (``time.time``); ages and the quiet-bar timer use it.
    sleep : callable, optional
        ``sleep(seconds)`` between reconnects; the default waits on the stop event, so
        :meth:`stop` cuts a wait short.
    tz : str
        Timezone the bars are cut in (see :class:`TickBarBuilder`).
    after : Timestamp, optional
        Bars at or before this start are skipped (already in the log).
    close_after_s : float or None
        A bar with no tick of a later bar closes this many seconds after its end (a quiet
        market); None = only a later tick closes it.
    resubscribe_s : float or None
        While connected, the subscription is sent again this often (a heartbeat); None = never.
    regular_only : bool
        Bars hold regular-session prints only; the others just set the day volume's level
        (see :meth:`TickBarBuilder.level`).
    rng : random.Random, optional
        Jitter source (seeded in tests).
    """

    def __init__(self, symbol: str, interval: str, *, on_bar: Callable[[Bar], Any],
                 on_state: Callable[[FeedState], Any] | None = None,
                 on_tick: Callable[[Tick, Bar | None], Any] | None = None,
                 client_factory: Callable[[], Any] | None = None,
                 backoff: Backoff = Backoff(), clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Any] | None = None, tz: str = "UTC",
                 after: pd.Timestamp | None = None, close_after_s: float | None = 10.0,
                 resubscribe_s: float | None = 15.0, regular_only: bool = False,
                 rng: random.Random | None = None) -> None:
        self.symbol = symbol.strip().upper()
        self.builder = TickBarBuilder(interval, tz=tz, after=after)
        self.on_bar, self.on_state, self.on_tick = on_bar, on_state, on_tick
        self.client_factory = client_factory
        self.backoff, self.clock, self.rng = backoff, clock, rng or random.Random()
        self.close_after_s = close_after_s
        self.resubscribe_s = resubscribe_s
        self.regular_only = regular_only
        self._subscribed_at = 0.0
        self._sleep = sleep
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the builder and on_bar: one tick or flush at a time
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._timer: threading.Thread | None = None
        self._last_tick: float | None = None  # clock() when the last tick arrived
        self._newest: tuple[pd.Timestamp, float] | None = None  # newest tick time, its arrival
        self._got_tick = False
        self.state = FeedState(STOPPED)
        self.error: BaseException | None = None
        self.connections = 0
        self.bars = 0

    # -- lifecycle --

    def start(self) -> LiveFeed:
        """Start the worker (and the quiet-bar timer) threads."""
        if self._thread is not None:
            raise RuntimeError("LiveFeed.start: already started")
        self._thread = threading.Thread(target=self._run, name=f"live-{self.symbol}",
                                        daemon=True)
        self._thread.start()
        self._timer = threading.Thread(target=self._tick_timer, name="live-timer", daemon=True)
        self._timer.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """End the feed: close the connection, wait for the threads (the open bar is dropped)."""
        self._stop.set()
        self._close_client()
        for thread in (self._thread, self._timer):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)

    @property
    def stopped(self) -> bool:
        """True once the worker has ended (a stop, or an error in ``on_bar``)."""
        return self._thread is not None and not self._thread.is_alive()

    def gap_s(self) -> float | None:
        """Seconds since the last tick arrived; None before the first."""
        return None if self._last_tick is None else max(0.0, self.clock() - self._last_tick)

    def flush(self, now: pd.Timestamp | None = None) -> None:
        """Close the open bar if ``now`` is past its end plus ``close_after_s``.

        ``now`` defaults to the stream's own time: the newest tick's time plus the seconds
        the clock says have passed since it arrived. So a computer clock that is off, or a
        feed that lags, never closes a bar early; only silence does.
        """
        if now is None:
            if self._newest is None:
                return
            newest, arrived = self._newest
            now = newest + pd.Timedelta(seconds=max(0.0, self.clock() - arrived))
        grace = pd.Timedelta(seconds=self.close_after_s or 0.0)
        with self._lock:
            self._emit(self.builder.flush(now, grace=grace))

    # -- worker --

    def _run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                self._set_state(CONNECTING, attempt=attempt)
                reason = self._session()
                if self._stop.is_set():
                    break
                if self._got_tick:
                    attempt = 0
                attempt += 1
                delay = self.backoff.delay(attempt, self.rng)
                self._set_state(RECONNECTING, attempt=attempt, retry_in_s=delay, reason=reason)
                (self._sleep or self._stop.wait)(delay)
        finally:
            self._close_client()
            self._set_state(STOPPED, reason=_one_line(self.error) if self.error else "")

    def _session(self) -> str:
        """One connection: subscribe and listen until it ends; returns why it ended."""
        self._got_tick = False
        try:
            client = (self.client_factory or CLIENT_FACTORY)()
            with self._client_lock:
                self._client = client
            if self._stop.is_set():
                return "stopped"
            client.subscribe([self.symbol])
            self._subscribed_at = self.clock()
            if self._stop.is_set():
                return "stopped"
            self.connections += 1
            self._set_state(LIVE)
            client.listen(self._on_message)
            return "connection closed"
        except Exception as exc:  # a drop, a refused connection, a DNS failure, ...
            if self.error is not None:
                return _one_line(self.error)
            return _one_line(exc) or type(exc).__name__
        finally:
            self._close_client()

    def _on_message(self, message: Any) -> None:
        if self._stop.is_set():
            raise _Stopping
        tick = parse_message(message, self.symbol)
        if tick is None:
            return
        self._last_tick = self.clock()
        if self._newest is None or tick.time >= self._newest[0]:
            self._newest = (tick.time, self._last_tick)
        first = not self._got_tick
        self._got_tick = True
        with self._lock:
            if self.regular_only and not tick.regular:
                self.builder.level(tick)
            else:
                late = self.builder.late
                self._emit(self.builder.add(tick))
                forming = self.builder.current
                if self.on_tick is not None:
                    with contextlib.suppress(Exception):  # a display hook never stops the feed
                        self.on_tick(tick, None if forming is None or self.builder.late > late
                                     else dataclasses.replace(forming))
        if first and self.state.status != LIVE:
            self._set_state(LIVE)

    def _emit(self, bars: list[Bar]) -> None:
        for bar in bars:
            if self.error is not None:
                return
            try:
                self.on_bar(bar)
            except BaseException as exc:
                self.error = exc
                self._stop.set()
                threading.Thread(target=self._close_client, daemon=True).start()
                raise _Stopping from exc
            self.bars += 1

    def _tick_timer(self) -> None:
        """Once a second while connected: close a quiet bar (not during an outage, when ticks
        may be missing) and renew the subscription when it is due."""
        while not self._stop.wait(1.0):
            if self.state.status != LIVE:
                continue
            if self.close_after_s is not None:
                with contextlib.suppress(_Stopping):
                    self.flush()
            self._resubscribe()

    def _resubscribe(self) -> None:
        """Send the subscription again every ``resubscribe_s`` (yfinance's async client does
        the same as a heartbeat; its sync client does not)."""
        if self.resubscribe_s is None or self.clock() - self._subscribed_at < self.resubscribe_s:
            return
        with self._client_lock:
            client = self._client
        if client is not None:
            with contextlib.suppress(Exception):
                client.subscribe([self.symbol])
            self._subscribed_at = self.clock()

    def _close_client(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def _set_state(self, status: str, **kw: Any) -> None:
        self.state = FeedState(status, gap_s=self.gap_s(), **kw)
        if self.on_state is not None:
            with contextlib.suppress(Exception):
                self.on_state(self.state)


class _Stopping(Exception):
    """Raised inside the client's handler to leave ``listen`` when the feed stops."""


def _one_line(exc: BaseException | None) -> str:
    return " ".join(str(exc or "").split())[:200]


# --- append-only decision log --------------------------------------------------------------

#: the log's column naming the earlier bar whose return this bar completed (``strategy_return``
#: and ``equity`` on the same line are that bar's: two bars back with the next-open fill, one
#: with the close fill; empty before the first)
REALISED_DATE = "realised_date"
#: the decision log's columns, in order
LOG_COLUMNS: tuple[str, ...] = (
    C.INDEX_NAME, C.OPEN, C.HIGH, C.LOW, C.CLOSE, C.VOLUME, C.PREDICTED_RETURN, C.POSITION,
    C.STRATEGY_RETURN, C.EQUITY, REALISED_DATE, "ticks", "partial", "logged_at",
)


class DecisionLog:
    """A CSV that only grows: one line per closed bar, flushed and fsynced before returning.

    Opening an existing log checks its header, drops a torn last line (a crash in the middle
    of a write leaves a line without its newline) and remembers the last logged bar's date, so
    a restarted feed continues after it instead of writing it twice.

    Parameters
    ----------
    path : path-like
        The log file; created with the header when missing or empty.
    columns : tuple of str
        The header (default :data:`LOG_COLUMNS`).
    """

    def __init__(self, path: str | os.PathLike[str], columns: tuple[str, ...] = LOG_COLUMNS
                 ) -> None:
        self.path = Path(path)
        self.columns = columns
        self.last_date: pd.Timestamp | None = None
        self.rows = 0  # complete data lines in the file
        self.dropped: str | None = None  # the torn line found at the end, if any
        self._file: io.BufferedWriter | None = None

    def open(self) -> DecisionLog:
        """Open for appending (see the class notes); returns self."""
        try:
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            if fresh:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            else:
                self._recover()
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open while the feed runs
            if fresh:
                self._write_line(self.columns)
                _fsync_dir(self.path.parent)
        except OSError as exc:
            raise ExportError(f"{self.path}: cannot write the decision log "
                              f"({exc.strerror or exc})") from None
        return self

    def append(self, row: dict[str, Any]) -> None:
        """Write one line (columns missing from ``row`` are empty), then flush and fsync."""
        if self._file is None:
            raise RuntimeError("DecisionLog.append: the log is not open")
        values = [_cell(row.get(name)) for name in self.columns]
        try:
            self._write_line(values)
        except OSError as exc:
            raise ExportError(f"{self.path}: cannot append to the decision log "
                              f"({exc.strerror or exc})") from None
        self.rows += 1
        when = row.get(C.INDEX_NAME)
        if when is not None:
            self.last_date = pd.Timestamp(when)

    def close(self) -> None:
        """Close the file (every line is already on disk)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> DecisionLog:
        return self.open() if self._file is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_line(self, values: Any) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        assert self._file is not None
        self._file.write(buffer.getvalue().encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def _recover(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a torn last line: cut it off so the next line starts clean
            self.dropped = data[end:].decode("utf-8", "replace")
            with open(self.path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
            data = data[:end]
        lines = data.decode("utf-8", "replace").splitlines()
        if not lines:  # only a torn header was there
            raise ConfigError(f"{self.path}: holds no header; remove it or choose another --log")
        header = tuple(next(csv.reader([lines[0]])))
        if header != self.columns:
            raise ConfigError(f"{self.path}: not a decision log of this version (its columns "
                              f"are {', '.join(header)}); choose another --log")
        self.rows = len(lines) - 1
        if self.rows:
            first = next(csv.reader([lines[-1]]))[0]
            try:
                self.last_date = pd.Timestamp(first)
            except ValueError:
                raise ConfigError(f"{self.path}: line {len(lines)}: {first!r} is not a date; "
                                  "choose another --log") from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def bar_row(bar: Bar, decision: dict[str, Any] | None = None, *,
            logged_at: pd.Timestamp | None = None) -> dict[str, Any]:
    """A log row: the bar's fields, the decision's (``predicted_return``, ``position``, ...)."""
    row: dict[str, Any] = {
        C.INDEX_NAME: bar.start, C.OPEN: bar.open, C.HIGH: bar.high, C.LOW: bar.low,
        C.CLOSE: bar.close, C.VOLUME: bar.volume, "ticks": bar.ticks, "partial": bar.partial,
        "logged_at": logged_at,
    }
    row.update(decision or {})
    return row


# --- sandbox live --------------------------------------------------------------------------


def cli_live(args: Any) -> int:
    """``sandbox live``: paper-trade a saved model on the live stream until Ctrl+C.

    Returns 0 after a stop by the user; errors become :class:`SandboxError` (exit 2).
    """
    from sandbox import export

    bundle_dir = Path(args.model)
    if not bundle_dir.is_dir():
        raise ConfigError(f"--model {bundle_dir}: no such folder")
    symbol = str(args.ticker).strip().upper()
    if not symbol:
        raise ConfigError("--ticker: the symbol is empty")
    if getattr(args, "interval", None):
        bar_rule(args.interval)  # refused before the bundle is loaded
    bundle = export.load_bundle(bundle_dir)
    trained = bundle.config.data.interval
    interval = getattr(args, "interval", None) or trained  # default: the model's bar size
    if interval not in _RULES:
        raise ConfigError(f"the model was trained on {interval} bars; live bars must be one of "
                          f"{', '.join(_RULES)}")
    if trained != interval:
        _say(f"note: the model was trained on {trained} bars; these are {interval} bars, a kind "
             f"it has not seen (--interval {trained} streams its own)")
    history = _history(symbol, interval, int(bundle.feature_state["window"]))
    decide, history_end = _decider(bundle, history, args)
    path = Path(args.log) if args.log else Path(f"live-{symbol}.csv")
    with DecisionLog(path) as book:
        if book.dropped is not None:
            _say(f"note: {path}: dropped an incomplete last line left by a crash")
        after = max((_in_tz(d, "UTC") for d in (book.last_date, history_end) if d is not None),
                    default=None)
        _say(PAPER_ONLY)
        _say(f"{symbol} {interval} bars; decisions appended to {path}"
              + (f" after {book.rows} logged bars" if book.rows else ""))
        return _run_feed(symbol, interval, decide, book, after=after,
                         tz=_tz_of(history))


def _run_feed(symbol: str, interval: str, decide: Callable[[Bar], dict[str, Any]],
              book: DecisionLog, *, after: pd.Timestamp | None, tz: str) -> int:
    previous = after

    def on_bar(bar: Bar) -> None:
        nonlocal previous
        if previous is not None and bar.start > previous + feed.builder.step:
            _say(f"note: no bars from {_in_tz(previous + feed.builder.step, tz).isoformat()} to "
                 f"{bar.start.isoformat()} (the market was closed, or no trade reached the "
                 "stream); the model sees this bar next")
        previous = bar.start
        decision = decide(bar)
        book.append(bar_row(bar, decision, logged_at=pd.Timestamp.now(tz="UTC")))
        _say(_bar_line(bar, decision))

    def on_state(state: FeedState) -> None:
        _say(f"[{state.describe()}]")

    feed = LiveFeed(symbol, interval, on_bar=on_bar, on_state=on_state, tz=tz, after=after,
                    regular_only=True)
    quiet = QUIET_NOTE_S
    with _stop_on_sigint() as stop:
        feed.start()
        while not stop.wait(0.5) and not feed.stopped:
            gap = feed.gap_s()
            if gap is None or gap < QUIET_NOTE_S:
                quiet = QUIET_NOTE_S
            elif gap >= quiet and feed.state.status == LIVE:
                _say(f"[live; no tick for {gap:.0f} s]")
                quiet *= 2
        feed.stop()
    if feed.error is not None:
        if isinstance(feed.error, SandboxError):
            raise feed.error
        raise RuntimeError(f"live: handling a bar failed: {feed.error}") from feed.error
    _say(f"stopped; {feed.bars} closed bars logged to {book.path} ({PAPER_ONLY})")
    return 0


def _say(text: str, stream: Any = None) -> None:
    """A line on the terminal (stdout unless ``stream``), flushed at once."""
    out = sys.stdout if stream is None else stream
    out.write(text + "\n")
    out.flush()


def _bar_line(bar: Bar, decision: dict[str, Any]) -> str:
    pred = decision.get(C.PREDICTED_RETURN)
    pos = decision.get(C.POSITION)
    what = ("warming up" if pred is None or (isinstance(pred, float) and math.isnan(pred))
            else f"predicted {pred:+.5f}  position {pos:g}")
    note = "  (first bar: joined mid-bar)" if bar.partial else ""
    return (f"{bar.start.isoformat()}  O {bar.open:.4f} H {bar.high:.4f} L {bar.low:.4f} "
            f"C {bar.close:.4f} V {bar.volume:.0f}  {what}{note}")


@contextlib.contextmanager
def _stop_on_sigint() -> Iterator[threading.Event]:
    """While active, Ctrl+C sets the yielded event (a second one raises KeyboardInterrupt)."""
    event = threading.Event()
    previous: Any = None

    def handler(signum: int, frame: Any) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


#: how far back the warm-up history reaches per bar size (Yahoo's limits for intraday bars)
_HISTORY_DAYS = {"1m": 7, "2m": 59, "5m": 59, "15m": 59, "30m": 59, "60m": 700, "90m": 59,
                 "1h": 700, "1d": 3650}


def _history(symbol: str, interval: str, window: int) -> pd.DataFrame:
    """Recent bars to warm the model (through the download cache), the bar in progress cut."""
    from sandbox.config import DataSpec
    from sandbox.data import load_prices
    from sandbox.errors import NetworkError

    start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=_HISTORY_DAYS[interval])).date()
    spec = DataSpec(source=f"{C.SOURCE_YAHOO}:{symbol}", start=str(start), interval=interval)
    try:
        loaded = load_prices(spec, min_rows=window + 1,
                             min_rows_reason=f"the model's window of {window}")
    except NetworkError as exc:
        raise NetworkError(f"live needs recent {interval} bars of {symbol} to warm the model: "
                           f"{exc}") from None
    for warning in loaded.warnings:
        _say(f"warning: {warning}", sys.stderr)
    frame = loaded.frame
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(bar_rule(interval)))
    if len(frame) and _in_tz(frame.index[-1], "UTC") + step > pd.Timestamp.now(tz="UTC"):
        frame = frame.iloc[:-1]  # Yahoo's last bar is still forming
    return frame


def _tz_of(history: pd.DataFrame) -> str:
    tz = getattr(history.index, "tz", None)
    return str(tz) if tz is not None else "UTC"


def _decider(bundle: Any, history: pd.DataFrame, args: Any
             ) -> tuple[Callable[[Bar], dict[str, Any]], pd.Timestamp | None]:
    """Each closed bar handled like a replay step (:class:`sandbox.replay.Replayer`, warmed
    with ``history``, the paper account fresh at the first live bar); and history's last bar."""
    from sandbox import replay

    strategy = bundle.config.strategy.replace(**{
        name: getattr(args, name) for name in ("strategy", "threshold_bps", "fill", "cost_bps",
                                               "periods_per_year")
        if getattr(args, name, None) is not None})
    replayer = replay.Replayer(bundle, strategy=strategy, history=history)
    tz = getattr(history.index, "tz", None)

    def decide(bar: Bar) -> dict[str, Any]:
        date = bar.start.tz_convert(tz) if tz is not None else bar.start.tz_localize(None)
        step = replayer.step(replay.Bar(date, bar.open, bar.high, bar.low, bar.close,
                                        bar.volume))
        return {C.PREDICTED_RETURN: step.predicted_return, C.POSITION: step.position,
                C.STRATEGY_RETURN: step.strategy_return, C.EQUITY: step.equity,
                REALISED_DATE: step.realised_date}

    return decide, (history.index[-1] if len(history) else None)
