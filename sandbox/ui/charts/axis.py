"""An x axis in bar indices (no weekend or holiday gaps) labelled with dates, and value axes.

Bars sit at x = 0, 1, 2, ... so closed days take no room. The axis maps tick positions back
to the bars' timestamps and picks ticks on calendar boundaries (the first bar of a year, a
quarter, a month, a day, or a round number of minutes), choosing the finest level whose
labels still fit, the way a finance chart does.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyqtgraph as pg

from sandbox.ui.charts.candles import BackgroundCopy

__all__ = ["CompactAxis", "DateFields", "DateIndexAxis", "ValueAxis", "log_ticks"]

# Calendar levels, coarse to fine: (name, step). Year steps count years, month steps count
# months, day steps count days, minute steps count minutes.
_YEAR_STEPS = (100, 50, 25, 20, 10, 5, 2, 1)
_MONTH_STEPS = (6, 3, 1)
_DAY_STEPS = (14, 7, 1)  # 14 and 7 mean "the 1st and 15th" and "every Monday-ish week"
_MINUTE_STEPS = (720, 360, 240, 120, 60, 30, 15, 10, 5, 1)


_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}  # ticks of a datetime unit


class DateFields:
    """Bar timestamps with their wall-clock day and minute, and the bars that start each
    calendar period; one object shared by the chart's date axes, grown by :meth:`append`.

    Every field is computed with numpy on int64 times (a million bars in ~10 ms).
    Periods of a day or longer are found from the bars that start a day, which are cached
    and extended on append; minute periods are found over the bars asked for only (they are
    asked for while a few days are in view).

    Parameters
    ----------
    dates : pandas.DatetimeIndex
        One timestamp per bar, increasing (timezone-aware indexes keep their local time).
    """

    def __init__(self, dates: pd.DatetimeIndex | None = None) -> None:
        dates = pd.DatetimeIndex([] if dates is None else dates)
        self.tz = dates.tz
        self.name = dates.name
        self._index: pd.DatetimeIndex | None = dates
        self.unit = dates.unit  # the index's own (a far date may not fit nanoseconds)
        self._utc = np.array(dates.asi8)  # UTC (or naive) times in ``unit``, a buffer
        self._day = np.empty(0, dtype=np.int64)  # wall-clock days since 1970, a buffer
        self._minute = np.empty(0, dtype=np.int64)  # wall-clock minute of the day, a buffer
        self.n = 0
        self._day_starts = np.empty(0, dtype=np.int64)  # bars that start a day, a buffer
        self._n_starts = 0
        self._derived: dict[tuple[str, int], np.ndarray] = {}
        self._pending: BackgroundCopy | None = None  # bigger buffers being made (reserve)
        self._extend(dates, 0)

    def __len__(self) -> int:
        return self.n

    @property
    def index(self) -> pd.DatetimeIndex:
        """The timestamps as a ``DatetimeIndex`` (made again after an append, on demand)."""
        if self._index is None:
            index = pd.DatetimeIndex(self._utc[:self.n].view(f"M8[{self.unit}]"),
                                     name=self.name)
            if self.tz is not None:
                index = index.tz_localize("UTC").tz_convert(self.tz)
            self._index = index
        return self._index

    def timestamp(self, i: int) -> pd.Timestamp:
        """Timestamp of bar ``i``."""
        value = np.datetime64(int(self._utc[i]), self.unit)
        return pd.Timestamp(value, tz="UTC").tz_convert(self.tz) if self.tz is not None else (
            pd.Timestamp(value))

    @property
    def intraday(self) -> bool:
        """Some day holds more than one bar."""
        return self._n_starts < self.n

    def reserve(self, extra: int, *, background: bool = False) -> None:
        """Make room for ``extra`` more bars (appending them then copies nothing); with
        ``background`` on a worker thread, taken by the next append."""
        self._take_pending()
        need = self.n + max(0, int(extra))
        if self._utc.shape[0] >= need and self._day.shape[0] >= need:
            return
        self._pending = BackgroundCopy([self._utc, self._day, self._minute], self.n, need)
        if not background:
            self._take_pending()

    def _take_pending(self) -> None:
        if self._pending is not None:
            self._utc, self._day, self._minute = self._pending.result()
            self._pending = None

    def append(self, dates: pd.DatetimeIndex) -> None:
        """Append bars' timestamps (after the last one, in the same timezone)."""
        dates = pd.DatetimeIndex(dates)
        if len(dates) == 0:
            return
        if self.n == 0:
            self.__init__(dates.rename(self.name))
            return
        if (dates.tz is None) != (self.tz is None):
            raise ValueError("appended dates must share the chart's timezone (or lack of one)")
        old = self.n
        self._take_pending()
        self._utc = _grow(self._utc, old, dates.as_unit(self.unit).asi8)
        self._index = None
        self._extend(dates, old)

    def _extend(self, dates: pd.DatetimeIndex, old: int) -> None:
        if len(dates) == 0:
            return
        local = dates.tz_localize(None) if dates.tz is not None else dates
        wall = local.as_unit(self.unit).asi8
        per_day = 86_400 * _PER_SECOND[self.unit]
        day = wall // per_day
        minute = (wall - day * per_day) // (60 * _PER_SECOND[self.unit])
        self._day = _grow(self._day, old, day)
        self._minute = _grow(self._minute, old, minute)
        self.n = old + len(dates)
        change = np.empty(day.shape[0], dtype=bool)
        change[0] = old == 0 or day[0] != self._day[old - 1]
        change[1:] = day[1:] != day[:-1]
        new_starts = np.flatnonzero(change) + old
        if new_starts.size:
            self._day_starts = _grow(self._day_starts, self._n_starts, new_starts)
            self._n_starts += new_starts.size
            self._derived = {}

    def starts(self, level: str, step: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Indices in ``lo .. hi`` (inclusive; default all) of the bars that start a calendar
        period of ``level`` (``year``, ``month``, ``day``, ``minute``) and ``step``. The first
        bar counts only if it sits on its period's boundary."""
        hi = self.n - 1 if hi is None else min(hi, self.n - 1)
        lo = max(0, lo)
        if hi < lo:
            return np.empty(0, dtype=np.int64)
        if level == "minute":
            return self._minute_starts(step, lo, hi)
        every = self._coarse(level, step)
        a, b = np.searchsorted(every, [lo, hi + 1])
        return every[a:b]

    def _coarse(self, level: str, step: int) -> np.ndarray:
        key = (level, step)
        cached = self._derived.get(key)
        if cached is not None:
            return cached
        starts = self._day_starts[:self._n_starts]
        days = self._day[starts].astype("M8[D]")
        if level == "year":
            years = days.astype("M8[Y]").astype(np.int64) + 1970
            period, keep = years // step, years % step == 0
        elif level == "month":
            months = days.astype("M8[M]").astype(np.int64)  # months since 1970-01
            period, keep = months // step, (months % 12) % step == 0
        elif step == 1:
            period, keep = starts, np.ones(starts.shape[0], dtype=bool)
        elif step == 14:  # 1st and 15th of the month
            months = days.astype("M8[M]")
            mday = (days - months.astype("M8[D]")).astype(np.int64) + 1
            period = months.astype(np.int64) * 2 + (mday >= 15)
            keep = np.ones(starts.shape[0], dtype=bool)
        else:  # ISO weeks (start on Monday): days since the Monday 1970-01-05, by 7
            period = (days.astype(np.int64) - 4) // 7
            keep = np.ones(starts.shape[0], dtype=bool)
        change = np.empty(period.shape[0], dtype=bool)
        change[:1] = True
        change[1:] = period[1:] != period[:-1]
        out = starts[change & keep]
        if out.size and out[0] == 0 and not _on_boundary(self.timestamp(0), level, step):
            out = out[1:]
        self._derived[key] = out
        return out

    def _minute_starts(self, step: int, lo: int, hi: int) -> np.ndarray:
        a = max(0, lo - 1)
        day, minute = self._day[a:hi + 1], self._minute[a:hi + 1]
        period = day * 1440 + minute // step
        change = np.empty(period.shape[0], dtype=bool)
        change[:1] = a == 0
        change[1:] = period[1:] != period[:-1]
        out = np.flatnonzero(change & (minute % step == 0)) + a
        out = out[out >= lo]
        if out.size and out[0] == 0 and not _on_boundary(self.timestamp(0), "minute", step):
            out = out[1:]
        return out


def _grow(buffer: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """A buffer holding ``buffer[:n]`` followed by ``values``: ``buffer`` itself while it has
    room, else a copy grown by half (appends cost amortised O(1) per value)."""
    need = n + values.shape[0]
    if need > buffer.shape[0]:
        grown = np.empty(max(need, n * 3 // 2 + 1024), dtype=buffer.dtype)
        grown[:n] = buffer[:n]
        buffer = grown
    buffer[n:need] = values
    return buffer


class DateIndexAxis(pg.AxisItem):
    """Bottom axis for an integer bar-index x with date labels.

    Parameters
    ----------
    orientation : str
        Passed to :class:`pyqtgraph.AxisItem` (normally ``"bottom"``).
    min_label_px : float
        Minimum distance between two labels, in pixels.
    **kwargs
        Passed to :class:`pyqtgraph.AxisItem`.
    """

    def __init__(self, orientation: str = "bottom", *, min_label_px: float = 90.0,
                 **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self._min_label_px = min_label_px
        self._fields = DateFields()
        self._formats: dict[float, str] = {}

    # -- data --------------------------------------------------------------------------------
    def set_dates(self, dates: pd.DatetimeIndex | None) -> None:
        """Bar timestamps, one per x = 0 .. n-1 (None clears them)."""
        self.set_fields(DateFields(dates))

    def set_fields(self, fields: DateFields) -> None:
        """Bar timestamps as a :class:`DateFields` (shared by several axes, and grown by its
        owner: call :meth:`dates_appended` after an append)."""
        self._fields = fields
        self.dates_appended()

    def dates_appended(self) -> None:
        """The shared :class:`DateFields` grew: label the new bars too."""
        self.picture = None
        self.update()

    def date_at(self, x: float) -> pd.Timestamp | None:
        """Timestamp of the bar nearest to ``x``, or None outside the data."""
        i = round(x)
        if 0 <= i < self._fields.n:
            return self._fields.timestamp(i)
        return None

    def _levels(self) -> list[tuple[str, int, str]]:
        levels = [("year", s, "%Y") for s in _YEAR_STEPS]
        levels += [("month", s, "%b") for s in _MONTH_STEPS]
        levels += [("day", s, "%d") for s in _DAY_STEPS]
        if self._fields.intraday:
            levels += [("minute", s, "%H:%M") for s in _MINUTE_STEPS]
        return levels

    # -- pyqtgraph overrides -----------------------------------------------------------------
    def tickValues(self, minVal: float, maxVal: float, size: float):
        n = self._fields.n
        if n == 0:
            return super().tickValues(minVal, maxVal, size)
        lo = max(0, math.ceil(min(minVal, maxVal)))
        hi = min(n - 1, math.floor(max(minVal, maxVal)))
        self._formats = {}
        if hi < lo:
            return []
        bars_per_px = (max(minVal, maxVal) - min(minVal, maxVal)) / max(size, 1.0)
        # A label needs min_label_px; allow ticks at least that far apart on average.
        max_ticks = max(2, int(size / self._min_label_px))
        chosen: list[tuple[str, int, str, np.ndarray]] = []
        for level, step, fmt in self._levels():
            values = self._fields.starts(level, step, lo, hi)
            if values.size > max_ticks:
                break
            if values.size and values.size > 1:
                gaps = np.diff(values).min() / max(bars_per_px, 1e-12)
                if gaps < self._min_label_px * 0.6:
                    break
            chosen.append((level, step, fmt, values))
        if not chosen:  # even whole centuries are too dense: fall back to evenly spaced bars
            spacing = max(1, math.ceil(self._min_label_px * bars_per_px))
            values = np.arange(lo - lo % spacing + spacing, hi + 1, spacing)
            self._formats[float(spacing)] = "%Y"
            return [(float(spacing), values.astype(float).tolist())]
        # One level of ticks: the finest calendar level whose labels fit.
        level, step, fmt, values = chosen[-1]
        spacing = float(self._spacing(level, step))
        self._formats[spacing] = fmt
        return [(spacing, values.astype(float).tolist())]

    def tickStrings(self, values, scale, spacing):
        fields = self._fields
        n = fields.n
        if n == 0:
            return super().tickStrings(values, scale, spacing)
        fmt = self._formats.get(float(spacing), "%Y-%m-%d")
        index = np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)
        inside = (index >= 0) & (index < n)
        # A tick on the first bar of a larger period names that period instead: January
        # shows the year, the first day of a month the month, the first bar of a day the date.
        if fmt == "%b":
            larger = _member(index, fields.starts("year", 1))
        elif fmt == "%d":
            larger = _member(index, fields.starts("month", 1))
        elif fmt == "%H:%M":
            larger = _member(index, fields.starts("day", 1))
        else:
            larger = np.zeros(index.shape[0], dtype=bool)
        out = []
        previous_month = None
        for i, ok, big in zip(index.tolist(), inside.tolist(), larger.tolist(), strict=True):
            if not ok:
                out.append("")
                continue
            ts = fields.timestamp(i)
            label = _format(ts, fmt, larger=big)
            month = (ts.year, ts.month)
            if fmt == "%d" and not big and month != previous_month:
                label = ts.strftime("%d %b")  # name the month on its first labelled day
            previous_month = month
            out.append(label)
        return out

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _spacing(level: str, step: int) -> float:
        # Approximate width in bars (daily bars), only used to tell levels apart.
        base = {"year": 252.0, "month": 21.0, "day": 1.0, "minute": 1.0 / 390.0}[level]
        return base * step



def _member(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """``np.isin`` for a few values against a long sorted array (a binary search each)."""
    at = np.searchsorted(sorted_values, values)
    inside = at < sorted_values.shape[0]
    out = np.zeros(values.shape[0], dtype=bool)
    out[inside] = sorted_values[at[inside]] == values[inside]
    return out


def _on_boundary(ts: pd.Timestamp, level: str, step: int) -> bool:
    if level == "year":
        return ts.month == 1 and ts.day <= 7 and ts.year % step == 0
    if level == "month":
        return ts.day <= 7 and (ts.month - 1) % step == 0
    if level == "day":
        return step == 1 or (step == 14 and ts.day in (1, 15))
    return (ts.hour * 60 + ts.minute) % step == 0


def _format(ts: pd.Timestamp, fmt: str, *, larger: bool = False) -> str:
    if larger:
        if fmt == "%b":
            return ts.strftime("%Y")
        if fmt == "%d":
            return ts.strftime("%Y" if ts.month == 1 else "%b")
        if fmt == "%H:%M":
            return ts.strftime("%d %b")
    return ts.strftime(fmt)


class CompactAxis(pg.AxisItem):
    """A value axis that writes large numbers short: 1.5K, 20M, 3B (for volume)."""

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)  # the suffixes replace the "(x1e+09)" label

    def tickStrings(self, values, scale, spacing):
        return [_compact(v * scale, spacing * scale) for v in values]


def _compact(value: float, spacing: float) -> str:
    if value == 0:
        return "0"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= div or spacing >= div:
            digits = 0 if spacing >= div else max(0, min(3, math.ceil(-math.log10(spacing / div))))
            return f"{value / div:.{digits}f}{suffix}"
    return f"{value:g}"


# Ticks per decade of a log axis, coarse to fine: multiples of this step of the decade's
# first value (10: the decades only, 5: 1 and 5, 2: 1, 2, 4, 6, 8, ...).
_LOG_STEPS = (10.0, 5.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)
_LOG_MAX_CANDIDATES = 4000


def log_ticks(lo: float, hi: float, pixels: float, min_px: float = 20.0) -> list[float]:
    """Tick positions (log10 of round values) for a log10 axis showing ``lo`` .. ``hi``.

    The decades first, then their 5s, 2s and finer multiples, each tick kept only where it
    stands ``min_px`` from the ticks kept before it, on an axis ``pixels`` long; a range
    spanning more decades than fit gets every n-th decade.

    Parameters
    ----------
    lo, hi : float
        The visible range, in log10 units.
    pixels : float
        Length of the axis.
    min_px : float
        Least distance between two ticks.

    Returns
    -------
    list of float
        log10 of the tick values, increasing.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo or pixels <= 0:
        return []
    gap = min_px * (hi - lo) / pixels  # least distance between ticks, in log10 units
    most = max(2, int(pixels / min_px) + 1)
    decades = np.arange(math.floor(lo), math.floor(hi) + 1, dtype=np.float64)
    if gap >= 1.0:  # even the decades crowd: every n-th decade
        every = math.ceil(gap)
        return np.arange(math.ceil(lo / every) * every, hi + 1e-12, every).tolist()
    kept = np.empty(0)
    done = np.zeros(decades.size, dtype=bool)  # decades whose ticks are as fine as they fit
    for step in _LOG_STEPS:
        mantissas = np.arange(step, 10.0 - 1e-9, step) if step < 10.0 else np.empty(0)
        mantissas = np.r_[1.0, mantissas[mantissas > 1.0 + 1e-9]]
        if decades.size * mantissas.size > _LOG_MAX_CANDIDATES:
            break
        for d in np.flatnonzero(~done):
            # a decade takes a step's ticks only if all of them fit, so its ticks stay even
            values = decades[d] + np.log10(mantissas)
            values = values[(values >= lo - 1e-12) & (values <= hi + 1e-12)]
            merged = np.union1d(kept, values)
            if merged.size > most or (merged.size > 1 and np.diff(merged).min() < gap - 1e-12):
                done[d] = True
            else:
                kept = merged
        if done.all():
            break
    return kept.tolist()


def _plain(value: float) -> str:
    """A tick value written plainly: 0.5, 2, 150, 2,400, 1.25."""
    value = float(f"{value:.6g}")
    if abs(value) >= 1000:
        return f"{value:,.0f}" if value == round(value) else f"{value:,g}"
    return np.format_float_positional(value, trim="-")


class ValueAxis(pg.AxisItem):
    """A value axis that, on a log scale, labels plain values at their log10 positions.

    On a log scale the items of the pane draw ``log10(value)``; the axis then places its ticks
    on round values (:func:`log_ticks`) and writes the values, not their logarithms.
    """

    def __init__(self, orientation: str = "left", *, min_label_px: float = 20.0,
                 **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self._log = False
        self._min_label_px = min_label_px

    @property
    def log_scale(self) -> bool:
        return self._log

    def set_log_scale(self, on: bool) -> None:
        """Label a log10 scale (the data drawn is log10 of the values) or a linear one."""
        on = bool(on)
        if on == self._log:
            return
        self._log = on
        self.enableAutoSIPrefix(not on)
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):
        if not self._log:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = min(minVal, maxVal), max(minVal, maxVal)
        return [(1.0, log_ticks(lo, hi, size, self._min_label_px))]

    def tickStrings(self, values, scale, spacing):
        if not self._log:
            return super().tickStrings(values, scale, spacing)
        return [_plain(10.0 ** v) for v in values]
