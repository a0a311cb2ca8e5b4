"""The equity pane: the model's account against buy-and-hold and the best naive baseline.

Every split is a fresh account that starts at 1.0, so each curve is broken at split
boundaries. A row's equity is drawn on the bar where it is realised, not on the bar where
the position was decided: ``equity[t]`` is known at the open of bar ``t + 2`` with the
default next-open fill and at the close of bar ``t + 1`` with the close fill
(:func:`realised_lag`); each account's 1.0 start sits one bar before its first realised
point, on the bar where its first position is taken. The best baseline is picked on the
validation split, never on the test split it is then compared on.

Pure helpers (:func:`best_baseline`, :func:`account_points`, :func:`bar_aligned`) hold the
logic the tests check; :class:`EquityPane` only owns the pyqtgraph items.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from sandbox.constants import (
    BUY_AND_HOLD,
    EQUITY,
    FILL_CLOSE,
    FILL_NEXT_OPEN,
    FORECAST_BASELINES,
    MODEL,
    SPLIT,
    TEST,
    TOTAL_RETURN,
    VAL,
)
from sandbox.evaluate import KEY_BASELINES

__all__ = [
    "LEGEND_ROW_PX",
    "Band",
    "EquityPane",
    "LegendRow",
    "account_points",
    "add_decimated",
    "band_lines",
    "band_polygons",
    "bar_aligned",
    "baseline_label",
    "best_baseline",
    "broken_line",
    "finite_range",
    "line_item",
    "log10_positive",
    "realised_lag",
    "split_total_return",
]

MODEL_COLOR = "#ffb300"  # amber: the model, everywhere in the chart
HOLD_COLOR = "#42a5f5"  # blue
BASELINE_COLOR = "#ab47bc"  # purple


def split_total_return(frame: pd.DataFrame, split: str = TEST) -> float | None:
    """Total return of ``frame``'s equity over one split (last finite equity - 1), or None.

    Parameters
    ----------
    frame : pandas.DataFrame
        Has an ``equity`` column and, optionally, a ``split`` column (all rows count without it).
    split : str
        Which split to read.

    Returns
    -------
    float or None
    """
    if EQUITY not in frame.columns:
        return None
    rows = frame[frame[SPLIT] == split] if SPLIT in frame.columns else frame
    equity = rows[EQUITY].to_numpy(dtype=np.float64)
    equity = equity[np.isfinite(equity)]
    if equity.size == 0:
        return None
    return float(equity[-1] - 1.0)


def best_baseline(baselines: dict[str, pd.DataFrame] | None, *, split: str = VAL,
                  metrics: dict | None = None) -> str | None:
    """Name of the naive forecast baseline with the highest total return on ``split``.

    Only the forecast baselines (random walk, momentum, drift) compete; buy-and-hold is shown
    on its own. Ties keep the first in ``FORECAST_BASELINES`` order. The choice is made on
    the validation split by default: a baseline picked on the test split would be the best
    of three by construction there, a comparison the model never gets.

    Parameters
    ----------
    baselines : dict of str to pandas.DataFrame, or None
        Per-baseline frames with ``split`` and ``equity`` columns (read when ``metrics``
        is not given, or has no total return for a baseline).
    split : str
        The split that decides.
    metrics : dict, optional
        The ``metrics.json`` object of ``split`` (e.g. ``metrics_by_split["val"]``): its
        ``baselines.<name>.total_return`` decides when it is there.

    Returns
    -------
    str or None
        None when no forecast baseline has a return on that split.
    """
    figures = (metrics or {}).get(KEY_BASELINES) or {}
    best: tuple[float, str] | None = None
    for name in FORECAST_BASELINES:
        total = (figures.get(name) or {}).get(TOTAL_RETURN)
        if total is None or not np.isfinite(total):
            frame = (baselines or {}).get(name)
            total = None if frame is None else split_total_return(frame, split)
        if total is not None and (best is None or total > best[0]):
            best = (float(total), name)
    return None if best is None else best[1]


def baseline_label(name: str, split: str = VAL) -> str:
    """The legend entry of the best baseline, saying which split chose it, e.g.
    ``"momentum (best baseline on validation)"``."""
    where = {VAL: "validation", TEST: "test"}.get(split, split)
    return f"{name.replace('_', ' ')} (best baseline on {where})"


def realised_lag(fill: str) -> int:
    """Bars from the bar where a position is decided to the bar where its return is realised:
    2 for the next-open fill (held from open ``t+1`` to open ``t+2``), 1 for the close fill
    (close ``t`` to close ``t+1``).

    Raises
    ------
    ValueError
        For a fill that is neither.
    """
    if fill == FILL_NEXT_OPEN:
        return 2
    if fill == FILL_CLOSE:
        return 1
    raise ValueError(f"fill {fill!r}: expected {FILL_NEXT_OPEN!r} or {FILL_CLOSE!r}")


def account_points(bar: np.ndarray, values: np.ndarray, split: np.ndarray | None, *,
                   lag: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where each row's equity is drawn: on the bar where it is realised.

    A row decided at bar ``b`` is drawn at ``b + lag``. Rows without a value (the last rows
    of a split, which have no return) and rows realised past the last bar are left out.
    Each account (a run of rows of one split) gets a 1.0 start point one bar before its
    first drawn row, where the account takes its first position.

    Parameters
    ----------
    bar : numpy.ndarray
        Bar index of each row (increasing; -1 for rows not on the chart).
    values : numpy.ndarray
        One value per row, or a 2-D array of several series (one per line) over the rows;
        a row is drawn while any of its values is known.
    split : numpy.ndarray or None
        Split of each row (None: one account).
    lag : int
        :func:`realised_lag` of the fill.
    n : int
        Number of bars on the chart.

    Returns
    -------
    x : numpy.ndarray
        Bar positions, start points included (non-decreasing).
    y : numpy.ndarray
        The values at ``x``, shaped like ``values`` (1-D or 2-D).
    breaks : numpy.ndarray
        True after the last point of an account and before a gap in the bars (for
        :func:`broken_line`).
    start : numpy.ndarray
        True at the inserted 1.0 start points.
    """
    flat = np.ndim(values) == 1
    y = np.atleast_2d(np.asarray(values, dtype=np.float64))
    bar = np.asarray(bar, dtype=np.int64)
    accounts = (np.zeros(bar.shape[0], dtype=object) if split is None
                else np.asarray(split, dtype=object))
    x = bar + int(lag)
    keep = (bar >= 0) & (x <= n - 1) & np.isfinite(y).any(axis=0)
    bar, x, y, accounts = bar[keep], x[keep], y[:, keep], accounts[keep]
    if x.size == 0:
        empty = np.empty(0)
        none = np.empty(0, dtype=bool)
        return empty, (empty if flat else np.empty((y.shape[0], 0))), none, none
    first = np.ones(x.size, dtype=bool)
    first[1:] = accounts[1:] != accounts[:-1]
    gap = np.zeros(x.size, dtype=bool)
    gap[1:] = np.diff(bar) != 1
    segment = np.cumsum(first | gap)
    where = np.flatnonzero(first)
    x = np.insert(x.astype(np.float64), where, x[where] - 1.0)
    y = np.insert(y, where, 1.0, axis=1)
    segment = np.insert(segment, where, segment[where])
    start = np.zeros(x.size, dtype=bool)
    start[where + np.arange(where.size)] = True
    breaks = np.zeros(x.size, dtype=bool)
    breaks[:-1] = segment[1:] != segment[:-1]
    return x, (y[0] if flat else y), breaks, start


def bar_aligned(values: pd.Series | np.ndarray, bar_index: np.ndarray, n: int) -> np.ndarray:
    """Spread ``values`` onto ``n`` bars (NaN where a bar has no value).

    Parameters
    ----------
    values : pandas.Series or numpy.ndarray
        One value per row.
    bar_index : numpy.ndarray
        Bar position of each row (rows outside ``0 .. n-1`` are not on the chart).
    n : int
        Number of bars.

    Returns
    -------
    numpy.ndarray
    """
    out = np.full(n, np.nan)
    bar_index = np.asarray(bar_index)
    keep = (bar_index >= 0) & (bar_index < n)
    out[bar_index[keep].astype(np.int64)] = np.asarray(values, dtype=np.float64)[keep]
    return out


def broken_line(x: np.ndarray, y: np.ndarray, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN point after every ``True`` in ``breaks`` so a ``connect="finite"`` curve
    stops there. ``x`` stays increasing (the NaN point sits half-way), as clip-to-view needs.
    """
    where = np.flatnonzero(breaks[:-1]) + 1 if breaks.size else np.empty(0, dtype=np.int64)
    if where.size == 0:
        return x.astype(np.float64), y.astype(np.float64)
    mid = (x[where - 1] + x[where]) * 0.5
    return (np.insert(x.astype(np.float64), where, mid),
            np.insert(y.astype(np.float64), where, np.nan))


def band_lines(x: np.ndarray, low: np.ndarray, high: np.ndarray, breaks: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, low and high ready for a filled band: NaN in both edges wherever either is unknown
    and after every break, so the two edges have the same gaps (pyqtgraph fills between
    matching pieces)."""
    low = np.asarray(low, dtype=np.float64).copy()
    high = np.asarray(high, dtype=np.float64).copy()
    unknown = ~(np.isfinite(low) & np.isfinite(high))
    low[unknown] = np.nan
    high[unknown] = np.nan
    bx, blow = broken_line(x, low, breaks)
    _, bhigh = broken_line(x, high, breaks)
    return bx, blow, bhigh


def band_polygons(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> QtGui.QPainterPath:
    """The filled area between ``low`` and ``high``: one closed polygon per run of rows where
    both are finite (along ``low``, back along ``high``), built with numpy in one go."""
    known = np.isfinite(low) & np.isfinite(high)
    if not known.any():
        return QtGui.QPainterPath()
    edges = np.diff(np.concatenate([[0], known.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    xs, ys, connect = [], [], []
    for a, b in zip(starts, stops, strict=True):
        xs += [x[a:b], x[a:b][::-1]]
        ys += [low[a:b], high[a:b][::-1]]
        run = np.ones(2 * (b - a), dtype=np.int32)
        run[-1] = 0  # the next polygon starts a new subpath
        connect.append(run)
    return pg.arrayToQPath(np.concatenate(xs), np.concatenate(ys),
                           connect=np.concatenate(connect))


class Band:
    """A filled band between two edges (e.g. the lowest and highest value over seeds).

    The fill is a plain path item built with :func:`band_polygons` (pyqtgraph's
    ``FillBetweenItem`` rebuilds its path from both curves on every change: ~10 ms per
    edge for a few thousand rows, on the UI thread).

    Parameters
    ----------
    plot : pyqtgraph.PlotItem
        Where the band is drawn (behind the curves).
    color : str
        Colour of the fill (translucent) and of the edges.
    """

    def __init__(self, plot: pg.PlotItem, color: str) -> None:
        edge = QtGui.QColor(color)
        edge.setAlpha(90)
        fill = QtGui.QColor(color)
        fill.setAlpha(55)
        self.low = pg.PlotCurveItem(pen=pg.mkPen(edge, width=0.8), connect="finite")
        self.high = pg.PlotCurveItem(pen=pg.mkPen(edge, width=0.8), connect="finite")
        self.fill = QtWidgets.QGraphicsPathItem()
        self.fill.setPen(QtGui.QPen(QtCore.Qt.PenStyle.NoPen))
        self.fill.setBrush(pg.mkBrush(fill))
        for item in (self.fill, self.low, self.high):
            item.setZValue(1)
            plot.addItem(item, ignoreBounds=True)
        # what a legend shows for the band (a legend cannot draw a path item itself)
        self.legend_sample = pg.BarGraphItem(x=[0.0], height=[0.0], width=1.0,
                                             brush=pg.mkBrush(fill), pen=pg.mkPen(edge))
        self.points = 0
        self.log = False  # draw log10 of the edges (the pane is on a log scale)
        self._data: tuple[np.ndarray, ...] | None = None  # the edges as given, for set_log

    def set_data(self, x: np.ndarray, low: np.ndarray, high: np.ndarray,
                 breaks: np.ndarray) -> None:
        self._data = (x, low, high, breaks)
        if self.log:
            low, high = log10_positive(low), log10_positive(high)
        bx, blow, bhigh = band_lines(x, low, high, breaks)
        self.low.setData(bx, blow)
        self.high.setData(bx, bhigh)
        self.fill.setPath(band_polygons(bx, blow, bhigh))
        self.points = int(np.isfinite(blow).sum())

    def set_log(self, on: bool) -> None:
        """Draw the band on a log10 scale (``on``) or a linear one."""
        if bool(on) == self.log:
            return
        self.log = bool(on)
        if self._data is not None:
            self.set_data(*self._data)

    def clear(self) -> None:
        self._data = None
        if self.points == 0:
            return
        self.low.setData([], [])
        self.high.setData([], [])
        self.fill.setPath(QtGui.QPainterPath())
        self.points = 0

    def is_empty(self) -> bool:
        return self.points == 0


def finite_range(parts: list[np.ndarray]) -> tuple[float, float] | None:
    """Lowest and highest finite value of all ``parts`` (None if there is none), without
    copying them: NaN-skipping reductions over each, a copy only where one holds an
    infinity."""
    lows, highs = [], []
    for part in parts:
        if part.size == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN part: NaN, skipped
            lo, hi = np.nanmin(part), np.nanmax(part)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            finite = part[np.isfinite(part)]
            if finite.size == 0:
                continue
            lo, hi = finite.min(), finite.max()
        lows.append(float(lo))
        highs.append(float(hi))
    return (min(lows), max(highs)) if lows else None


def log10_positive(values: np.ndarray) -> np.ndarray:
    """``log10`` of ``values``, NaN where a value is not positive (a log scale has no place
    for it; lines break there)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    positive = values > 0
    np.log10(values, out=out, where=positive)
    return out


def line_item(**kwargs) -> pg.PlotDataItem:
    """A line over the bars, broken at NaN, decimated to one min / max pair per pixel column
    (pyqtgraph's default keeps five) once :func:`add_decimated` has added it."""
    return pg.PlotDataItem(connect="finite", autoDownsampleFactor=1.0, **kwargs)


def add_decimated(plot: pg.PlotItem, item: pg.PlotDataItem, **kwargs) -> None:
    """Add a line to ``plot`` so that only its visible part is drawn, decimated (peaks kept)
    when more points than pixel columns are visible: the lines' level of detail, like the
    candles' buckets.

    ``PlotItem.addItem`` overwrites a ``PlotDataItem``'s clip-to-view and downsampling with
    the plot's own defaults (off), so they are set after adding it.
    """
    plot.addItem(item, **kwargs)
    item.setClipToView(True)
    item.setDownsampling(auto=True, method="peak")


LEGEND_ROW_PX = 22  # height of a row of legend entries (8 pt labels are 21 px high)
LEGEND_LEFT_PX = 72  # legend rows start over the plot area (left axes are 68 px wide)


class LegendRow:
    """A pane's legend in a row of its own above the plot area, where it never covers data.

    The legend sits in the :class:`pyqtgraph.PlotItem`'s title row (unused: the chart's title
    is in its header), which keeps its height whether or not the legend has entries, so the
    pane does not jump, and which keeps the pane's top tick label clear of the pane above.
    The entries stand in one row.

    Parameters
    ----------
    plot : pyqtgraph.PlotItem
        The pane.
    """

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.legend = pg.LegendItem(offset=None, labelTextSize="8pt", colCount=16, frame=False)
        self.legend.layout.setContentsMargins(0, 0, 0, 0)
        self.legend.setParentItem(plot)
        self.legend.anchor(itemPos=(0, 0), parentPos=(0, 0), offset=(LEGEND_LEFT_PX, 0))
        self.legend.setZValue(30)
        self._height = -1.0
        self.fit()

    def fit(self) -> None:
        """Keep the legend's row height in the pane's title row."""
        if self._height != LEGEND_ROW_PX:
            self._height = float(LEGEND_ROW_PX)
            self.plot.layout.setRowFixedHeight(0, self._height)

    def add(self, item, name: str) -> None:
        self.legend.addItem(item, name)
        self.fit()

    def remove(self, item) -> None:
        self.legend.removeItem(item)
        self.fit()

    def clear(self) -> None:
        self.legend.clear()
        self.fit()


def _curve(color: str, width: float) -> pg.PlotDataItem:
    # No ``name``: the pane's legend is filled by hand, with the best baseline's name in it.
    return line_item(pen=pg.mkPen(color, width=width))


class EquityPane:
    """The curves of the equity pane, on a :class:`pyqtgraph.PlotItem` it does not own.

    Parameters
    ----------
    plot : pyqtgraph.PlotItem
        The pane (x linked to the price pane by the caller).
    """

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.legend_row = LegendRow(plot)  # above the curves, never over them
        self.legend = self.legend_row.legend
        self.one = pg.InfiniteLine(pos=1.0, angle=0, movable=False,
                                   pen=pg.mkPen((128, 128, 128), width=1,
                                                style=pg.QtCore.Qt.PenStyle.DashLine))
        plot.addItem(self.one, ignoreBounds=True)
        self.model = _curve(MODEL_COLOR, 1.6)
        self.hold = _curve(HOLD_COLOR, 1.1)
        self.baseline = _curve(BASELINE_COLOR, 1.1)
        self.model.setZValue(3)  # the model on top
        for item in (self.model, self.hold, self.baseline):
            add_decimated(plot, item)  # added once, empty; data comes and goes with setData
        self.band = Band(plot, MODEL_COLOR)  # a seed ensemble's lowest .. highest equity
        self._band_stack = np.empty((0, 0))  # its bar-aligned edges, for the y range
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._stack = np.empty((0, 0))  # bar-aligned values of the visible curves, for y range
        self._stack_offset = 0  # the bar of the rows' first value
        self.baseline_name: str | None = None
        self._lag = realised_lag(FILL_NEXT_OPEN)  # bars from a decision to its realised equity

    def set_data(self, bar_index: np.ndarray, n: int, predictions: pd.DataFrame,
                 baselines: dict[str, pd.DataFrame] | None, dates: pd.DatetimeIndex, *,
                 model_label: str = "model", fill: str = FILL_NEXT_OPEN,
                 val_metrics: dict | None = None) -> None:
        """Draw model, buy-and-hold and best-baseline equity, one account per split, each
        row's equity on the bar where it is realised.

        Parameters
        ----------
        bar_index : numpy.ndarray
            Bar of each row of ``predictions``.
        n : int
            Number of bars.
        predictions, baselines : pandas.DataFrame, dict of them
            Frames with ``split`` and ``equity`` columns, indexed by date.
        dates : pandas.DatetimeIndex
            The chart's bars (to place the baselines' rows).
        model_label : str
            The model's legend entry.
        fill : str
            The strategy's fill (``next_open`` or ``close``): how many bars after its
            decision a row's return is realised.
        val_metrics : dict, optional
            The validation split's ``metrics.json`` object, to pick the best baseline on;
            without it the baselines' validation equity decides.
        """
        self.clear()
        self._lag = realised_lag(fill)
        rows: list[np.ndarray] = []
        series = [(MODEL, self.model, model_label, predictions)]
        if baselines and BUY_AND_HOLD in baselines:
            series.append((BUY_AND_HOLD, self.hold, "buy & hold", baselines[BUY_AND_HOLD]))
        self.baseline_name = best_baseline(baselines, split=VAL, metrics=val_metrics)
        if self.baseline_name is not None:
            series.append((self.baseline_name, self.baseline, baseline_label(self.baseline_name),
                           baselines[self.baseline_name]))
        for key, item, label, frame in series:
            if EQUITY not in frame.columns:
                continue
            idx = dates.get_indexer(frame.index) if frame is not predictions else bar_index
            equity = frame[EQUITY].to_numpy(dtype=np.float64)
            split = frame[SPLIT].to_numpy() if SPLIT in frame.columns else None
            x, y, breaks, start = account_points(idx, equity, split, lag=self._lag, n=n)
            if x.size == 0:
                continue
            item.setData(*broken_line(x, y, breaks))
            self.legend_row.add(item, label)
            self.curves[key] = item
            rows.append(bar_aligned(y[~start], x[~start].astype(np.int64), n))
        self._stack = np.vstack(rows) if rows else np.empty((0, n))

    def show_live(self, x: np.ndarray, model: np.ndarray, hold: np.ndarray, *,
                  offset: int, model_label: str = "model") -> None:
        """Draw a replay's equity as it grows: the model's and buy & hold's values at bars
        ``x`` = ``offset, offset + 1, ...`` (NaN where there is none yet). Called again with
        longer arrays on every appended bar."""
        for key, item, label, values in ((MODEL, self.model, model_label, model),
                                         (BUY_AND_HOLD, self.hold, "buy & hold", hold)):
            if not np.isfinite(values).any():
                continue
            item.setData(x, values)
            if key not in self.curves:
                self.legend_row.add(item, label)
                self.curves[key] = item
        self._stack = (model, hold)
        self._stack_offset = offset

    def set_band(self, bar_index: np.ndarray, n: int, low: np.ndarray, high: np.ndarray,
                 split: np.ndarray | None, label: str = "single-seed range") -> None:
        """Shade ``low`` .. ``high`` (a seed ensemble's lowest and highest equity per row of
        the model's predictions, decided at bars ``bar_index``) behind the model's curve,
        on the bars where they are realised, like the curves (the fill of the last
        :meth:`set_data`)."""
        self.clear_band()
        x, (blow, bhigh), breaks, start = account_points(
            bar_index, np.vstack([low, high]), split, lag=self._lag, n=n)
        if x.size == 0:
            return
        self.band.set_data(x, blow, bhigh, breaks)
        self.legend_row.add(self.band.legend_sample, label)
        self.curves["band"] = self.band.legend_sample
        at = x[~start].astype(np.int64)
        self._band_stack = np.vstack([bar_aligned(values[~start], at, n)
                                      for values in (blow, bhigh)])

    def clear_band(self) -> None:
        if "band" in self.curves:
            self.legend_row.remove(self.curves.pop("band"))
        self.band.clear()
        self._band_stack = np.empty((0, 0))

    def clear(self) -> None:
        """Remove every curve (the pane stays, empty)."""
        self.clear_band()
        for key, item in self.curves.items():
            self.legend_row.remove(item)
            if key != "band":
                item.setData([], [])
        self.curves = {}
        self._stack = np.empty((0, 0))
        self._stack_offset = 0
        self.baseline_name = None

    def set_log(self, on: bool) -> None:
        """Draw the curves on a log10 scale (``on``: a long history's early years no longer
        flatten) or a linear one. Equity at or below 0 has no place on a log scale: the
        curves break there."""
        for item in (self.model, self.hold, self.baseline):
            item.setLogMode(False, bool(on))
        self.band.set_log(on)
        self.one.setPos(0.0 if on else 1.0)

    def y_range(self, start: int, stop: int, *, positive: bool = False
                ) -> tuple[float, float] | None:
        """Lowest and highest equity of the drawn curves over bars ``start .. stop-1`` (only
        the values above 0 when ``positive``: those a log scale shows)."""
        if len(self._stack) == 0 or stop <= start:
            return None
        off = self._stack_offset  # the curves' rows start at this bar
        parts = [row[max(start - off, 0):max(stop - off, 0)] for row in self._stack]
        if self._band_stack.size:
            parts.append(self._band_stack[:, start:stop])
        if not positive:
            return finite_range(parts)
        values = np.concatenate([part.ravel() for part in parts])
        values = values[np.isfinite(values) & (values > 0)]
        if values.size == 0:
            return None
        return float(values.min()), float(values.max())
