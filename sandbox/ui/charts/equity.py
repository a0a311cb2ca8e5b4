"""The equity pane: the model's account against buy-and-hold and the best naive baseline.

Every split is a fresh account that starts at 1.0, so each curve is broken at split
boundaries. Pure helpers (:func:`best_baseline`, :func:`bar_aligned`) hold the logic the
tests check; :class:`EquityPane` only owns the pyqtgraph items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from sandbox.constants import (
    BUY_AND_HOLD,
    EQUITY,
    FORECAST_BASELINES,
    MODEL,
    SPLIT,
    TEST,
)

__all__ = [
    "Band",
    "EquityPane",
    "add_decimated",
    "band_lines",
    "band_polygons",
    "bar_aligned",
    "best_baseline",
    "broken_line",
    "line_item",
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


def best_baseline(baselines: dict[str, pd.DataFrame] | None, *, split: str = TEST) -> str | None:
    """Name of the naive forecast baseline with the highest total return on ``split``.

    Only the forecast baselines (random walk, momentum, drift) compete; buy-and-hold is shown
    on its own. Ties keep the first in ``FORECAST_BASELINES`` order.

    Parameters
    ----------
    baselines : dict of str to pandas.DataFrame, or None
        Per-baseline frames with ``split`` and ``equity`` columns.
    split : str
        The split that decides.

    Returns
    -------
    str or None
        None when no forecast baseline has a return on that split.
    """
    best: tuple[float, str] | None = None
    for name in FORECAST_BASELINES:
        frame = (baselines or {}).get(name)
        if frame is None:
            continue
        total = split_total_return(frame, split)
        if total is not None and (best is None or total > best[0]):
            best = (total, name)
    return None if best is None else best[1]


def bar_aligned(values: pd.Series, bar_index: np.ndarray, n: int) -> np.ndarray:
    """Spread ``values`` onto ``n`` bars (NaN where a bar has no value).

    Parameters
    ----------
    values : pandas.Series
        One value per row.
    bar_index : numpy.ndarray
        Bar position of each row (-1 for rows that are not on the chart).
    n : int
        Number of bars.

    Returns
    -------
    numpy.ndarray
    """
    out = np.full(n, np.nan)
    keep = bar_index >= 0
    out[bar_index[keep]] = values.to_numpy(dtype=np.float64)[keep]
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

    def set_data(self, x: np.ndarray, low: np.ndarray, high: np.ndarray,
                 breaks: np.ndarray) -> None:
        bx, blow, bhigh = band_lines(x, low, high, breaks)
        self.low.setData(bx, blow)
        self.high.setData(bx, bhigh)
        self.fill.setPath(band_polygons(bx, blow, bhigh))
        self.points = int(np.isfinite(blow).sum())

    def clear(self) -> None:
        if self.points == 0:
            return
        self.low.setData([], [])
        self.high.setData([], [])
        self.fill.setPath(QtGui.QPainterPath())
        self.points = 0

    def is_empty(self) -> bool:
        return self.points == 0


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
        self.legend = plot.addLegend(offset=(8, 2), labelTextSize="8pt", colCount=3)
        self.legend.setVisible(False)  # an empty legend is a stray box over the axis
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
        self.baseline_name: str | None = None

    def set_data(self, bar_index: np.ndarray, n: int, predictions: pd.DataFrame,
                 baselines: dict[str, pd.DataFrame] | None, dates: pd.DatetimeIndex, *,
                 model_label: str = "model") -> None:
        """Draw model, buy-and-hold and best-baseline equity, one account per split."""
        self.clear()
        rows: list[np.ndarray] = []
        series = [(MODEL, self.model, model_label, predictions)]
        if baselines and BUY_AND_HOLD in baselines:
            series.append((BUY_AND_HOLD, self.hold, "buy & hold", baselines[BUY_AND_HOLD]))
        self.baseline_name = best_baseline(baselines)
        if self.baseline_name is not None:
            series.append((self.baseline_name, self.baseline,
                           f"best baseline: {self.baseline_name.replace('_', ' ')}",
                           baselines[self.baseline_name]))
        for key, item, label, frame in series:
            if EQUITY not in frame.columns:
                continue
            idx = dates.get_indexer(frame.index) if frame is not predictions else bar_index
            keep = idx >= 0
            if not keep.any():
                continue
            x = idx[keep].astype(np.float64)
            y = frame[EQUITY].to_numpy(dtype=np.float64)[keep]
            split = (frame[SPLIT].to_numpy()[keep] if SPLIT in frame.columns
                     else np.zeros(x.shape[0], dtype=object))
            breaks = np.zeros(x.shape[0], dtype=bool)
            breaks[:-1] = (split[1:] != split[:-1]) | (np.diff(x) != 1)
            bx, by = broken_line(x, y, breaks)
            item.setData(bx, by)
            self.legend.addItem(item, label)
            self.curves[key] = item
            rows.append(bar_aligned(frame[EQUITY], idx, n))
        self._stack = np.vstack(rows) if rows else np.empty((0, n))
        self.legend.setVisible(bool(self.curves))

    def set_band(self, bar_index: np.ndarray, n: int, low: np.ndarray, high: np.ndarray,
                 breaks: np.ndarray, label: str = "single-seed range") -> None:
        """Shade ``low`` .. ``high`` (a seed ensemble's lowest and highest equity per row of
        the model's predictions, at bars ``bar_index``) behind the model's curve."""
        self.clear_band()
        self.band.set_data(bar_index.astype(np.float64), low, high, breaks)
        self.legend.addItem(self.band.legend_sample, label)
        self.curves["band"] = self.band.legend_sample
        self._band_stack = np.vstack([bar_aligned(pd.Series(values), bar_index, n)
                                      for values in (low, high)])
        self.legend.setVisible(True)

    def clear_band(self) -> None:
        if "band" in self.curves:
            self.legend.removeItem(self.curves.pop("band"))
        self.band.clear()
        self._band_stack = np.empty((0, 0))
        self.legend.setVisible(bool(self.curves))

    def clear(self) -> None:
        """Remove every curve (the pane stays, empty)."""
        self.clear_band()
        for item in self.curves.values():
            self.legend.removeItem(item)
            item.setData([], [])
        self.curves = {}
        self.legend.setVisible(False)
        self._stack = np.empty((0, 0))
        self.baseline_name = None

    def y_range(self, start: int, stop: int) -> tuple[float, float] | None:
        """Lowest and highest equity of the drawn curves over bars ``start .. stop-1``."""
        if self._stack.size == 0 or stop <= start:
            return None
        values = self._stack[:, start:stop]
        if self._band_stack.size:
            values = np.vstack([values, self._band_stack[:, start:stop]])
        values = values[np.isfinite(values)]
        if values.size == 0:
            return None
        return float(values.min()), float(values.max())
