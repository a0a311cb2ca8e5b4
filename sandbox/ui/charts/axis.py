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

__all__ = ["CompactAxis", "DateIndexAxis", "ValueAxis", "log_ticks"]

# Calendar levels, coarse to fine: (name, step). Year steps count years, month steps count
# months, day steps count days, minute steps count minutes.
_YEAR_STEPS = (100, 50, 25, 20, 10, 5, 2, 1)
_MONTH_STEPS = (6, 3, 1)
_DAY_STEPS = (14, 7, 1)  # 14 and 7 mean "the 1st and 15th" and "every Monday-ish week"
_MINUTE_STEPS = (720, 360, 240, 120, 60, 30, 15, 10, 5, 1)


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
        self._dates: pd.DatetimeIndex = pd.DatetimeIndex([])
        self._ns = np.empty(0, dtype=np.int64)
        self._boundaries: dict[tuple[str, int], np.ndarray] = {}
        self._formats: dict[float, str] = {}
        self._intraday = False

    # -- data --------------------------------------------------------------------------------
    def set_dates(self, dates: pd.DatetimeIndex | None) -> None:
        """Bar timestamps, one per x = 0 .. n-1 (None clears them)."""
        if dates is None:
            dates = pd.DatetimeIndex([])
        self._dates = pd.DatetimeIndex(dates)
        self._boundaries = {}
        n = len(self._dates)
        if n:
            # Wall-clock fields (timezone-aware indexes keep their local time).
            self._years = np.asarray(self._dates.year, dtype=np.int64)
            self._months = np.asarray(self._dates.month, dtype=np.int64)
            self._days = np.asarray(self._dates.day, dtype=np.int64)
            self._minutes = (np.asarray(self._dates.hour, dtype=np.int64) * 60
                             + np.asarray(self._dates.minute, dtype=np.int64))
            ordinal_day = self._years * 400 + self._months * 32 + self._days
            self._ordinal_day = ordinal_day
            self._intraday = bool(n > 1 and np.any(ordinal_day[1:] == ordinal_day[:-1]))
        self.picture = None
        self.update()

    def date_at(self, x: float) -> pd.Timestamp | None:
        """Timestamp of the bar nearest to ``x``, or None outside the data."""
        i = round(x)
        if 0 <= i < len(self._dates):
            return self._dates[i]
        return None

    # -- boundaries --------------------------------------------------------------------------
    def _starts(self, level: str, step: int) -> np.ndarray:
        """Indices of the first bar of each calendar period of ``level`` / ``step``."""
        key = (level, step)
        cached = self._boundaries.get(key)
        if cached is not None:
            return cached
        if level == "year":
            period = self._years // step
            keep = self._years % step == 0
        elif level == "month":
            period = self._years * 12 + (self._months - 1) // step
            keep = (self._months - 1) % step == 0
        elif level == "day":
            if step == 1:
                period = self._ordinal_day
                keep = np.ones_like(period, dtype=bool)
            elif step == 14:  # 1st and 15th of the month
                period = self._years * 24 + self._months * 2 + (self._days >= 15)
                keep = np.ones_like(period, dtype=bool)
            else:  # weeks, numbered from the epoch
                iso = self._dates.isocalendar()  # ISO weeks start on Monday
                period = (iso["year"].to_numpy(dtype=np.int64) * 100
                          + iso["week"].to_numpy(dtype=np.int64))
                keep = np.ones_like(period, dtype=bool)
        else:  # minutes within a day
            period = self._ordinal_day * 1440 + self._minutes // step
            keep = self._minutes % step == 0
        change = np.empty(period.shape[0], dtype=bool)
        change[0] = True
        change[1:] = period[1:] != period[:-1]
        starts = np.flatnonzero(change & keep)
        # The very first bar starts a period only if it really sits on its boundary; otherwise a
        # label would claim "2005" on a bar in mid-July.
        if starts.size and starts[0] == 0 and not _on_boundary(self._dates[0], level, step):
            starts = starts[1:]
        self._boundaries[key] = starts
        return starts

    def _levels(self) -> list[tuple[str, int, str]]:
        levels = [("year", s, "%Y") for s in _YEAR_STEPS]
        levels += [("month", s, "%b") for s in _MONTH_STEPS]
        levels += [("day", s, "%d") for s in _DAY_STEPS]
        if self._intraday:
            levels += [("minute", s, "%H:%M") for s in _MINUTE_STEPS]
        return levels

    # -- pyqtgraph overrides -----------------------------------------------------------------
    def tickValues(self, minVal: float, maxVal: float, size: float):
        n = len(self._dates)
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
            starts = self._starts(level, step)
            a, b = np.searchsorted(starts, [lo, hi + 1])
            values = starts[a:b]
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
        n = len(self._dates)
        if n == 0:
            return super().tickStrings(values, scale, spacing)
        fmt = self._formats.get(float(spacing), "%Y-%m-%d")
        index = np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)
        inside = (index >= 0) & (index < n)
        # A tick on the first bar of a larger period names that period instead: January
        # shows the year, the first day of a month the month, the first bar of a day the date.
        if fmt == "%b":
            larger = np.isin(index, self._starts("year", 1))
        elif fmt == "%d":
            larger = np.isin(index, self._starts("month", 1))
        elif fmt == "%H:%M":
            larger = np.isin(index, self._starts("day", 1))
        else:
            larger = np.zeros(index.shape[0], dtype=bool)
        out = []
        previous_month = None
        for i, ok, big in zip(index.tolist(), inside.tolist(), larger.tolist(), strict=True):
            if not ok:
                out.append("")
                continue
            ts = self._dates[i]
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
