"""The composite price chart: candles + volume on top, equity below, x axes linked.

x is the integer bar index (no weekend gaps); :class:`~sandbox.ui.charts.axis.DateIndexAxis`
labels it with dates. The y ranges follow the visible bars as the user pans and zooms
(mouse drag pans, wheel zooms, both in x only). A crosshair, rate-limited to ~30 updates per
second, reads out the bar under the mouse in a label above the chart and through
:attr:`PriceChart.hovered`.

The predicted next close ``close[t] * exp(predicted_return[t])`` is the last close moved by a
fraction of a percent, so it hugs the candles whatever the model's skill. The chart says so
twice: the naive "no change" forecast (``close[t]``, on the same bar) is drawn faintly beside
it, and a toggle (:attr:`PriceChart.return_view_action`, a button in the chart's header)
swaps it for a pane of the predicted against the actual return of each bar.

Each pane's legend stands in a row above its plot area, never over the data. The price
and equity panes can be drawn on a log scale (:attr:`PriceChart.log_price_action`,
:attr:`PriceChart.log_equity_action`); the candles then draw log10 of the prices, bucketed
as before. The volume pane is left out when the data has no volume. :meth:`PriceChart.set_note`
shows a line under the title. Exported pictures leave out the crosshair and its readout
(:meth:`PriceChart.hide_transients`, :meth:`PriceChart.exporting`).

The chart grows (replay, live feeds): :meth:`PriceChart.start_replay` shows the bars before a
date, and :meth:`PriceChart.append_bar` / :meth:`PriceChart.append_bars` add bars with what a
replay decided at their close (predicted close, markers, equity). The level of detail is
updated, not rebuilt, so a bar costs about a pan step whatever the history's length. While
the last bar is in view the view moves along with the new bars; otherwise the user's x range
stays as it is. :meth:`PriceChart.set_fold_lines` marks walk-forward folds' first predicted
bars with thin numbered vertical lines.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from sandbox.constants import (
    ACTUAL_RETURN,
    CLOSE,
    EQUITY,
    FILL_NEXT_OPEN,
    HIGH,
    INDEX_NAME,
    LOW,
    OPEN,
    POSITION,
    PREDICTED_RETURN,
    SPLIT,
    SPLITS,
    TEST,
    TRAIN,
    VAL,
    VOLUME,
)
from sandbox.ui.charts.axis import CompactAxis, DateFields, DateIndexAxis, ValueAxis
from sandbox.ui.charts.candles import (
    DOWN_COLOR,
    UP_COLOR,
    CandleItem,
    OhlcSeries,
    VolumeItem,
)
from sandbox.ui.charts.equity import (
    MODEL_COLOR,
    Band,
    EquityPane,
    LegendRow,
    add_decimated,
    broken_line,
    finite_range,
    line_item,
    log10_positive,
    realised_lag,
)

if TYPE_CHECKING:
    from sandbox.results import ShownRun

__all__ = ["LOG_EQUITY_TEXT", "LOG_PRICE_TEXT", "RETURN_VIEW_NAME", "RETURN_VIEW_TEXT",
           "RETURN_VIEW_TIP", "SPLIT_COLORS", "PriceChart", "position_changes"]

SPLIT_COLORS: dict[str, tuple[int, int, int]] = {
    TRAIN: (66, 165, 245),  # blue
    VAL: (255, 202, 40),  # amber
    TEST: (171, 71, 188),  # purple
}
_SPLIT_ALPHA = {True: 34, False: 40}  # region fill alpha on a dark / light background
_PREDICTED_NAME = "predicted next close"
_NAIVE_NAME = "no change (last close)"
_BAND_NAME = "single-seed range"
RETURN_VIEW_TEXT = "Returns"
RETURN_VIEW_NAME = "Predicted vs actual return"
RETURN_VIEW_TIP = ("Show the predicted and the actual return of each bar in a pane of their own "
                   "instead of the predicted next close, which is the last close moved by a "
                   "fraction of a percent and so hugs the candles whatever the model's skill.")
LOG_PRICE_TEXT = "Log price"
LOG_PRICE_TIP = ("Draw the price pane on a log scale: equal percentage moves take equal "
                 "heights, so a long history's early years no longer flatten.")
LOG_EQUITY_TEXT = "Log equity"
LOG_EQUITY_TIP = ("Draw the equity pane on a log scale: equal percentage gains and losses take "
                  "equal heights, early or late in the run.")
_BUTTON_STYLE = (
    "QToolButton { padding: 1px 6px; border: 1px solid #5a6275; border-radius: 3px;"
    " color: %s; }"
    "QToolButton:checked { background: #ffb300; color: #101420; border-color: #ffb300; }"
    "QToolButton:disabled { color: #6b7280; }")  # %s: the header's text colour
_QWIDGETSIZE_MAX = float((1 << 24) - 1)  # Qt's "no maximum" size
_RETURNS_STRETCH = 3  # the returns pane's share of the height while shown (price pane: 6)
_VOLUME_STRETCH = 1  # the volume pane's share, while there is volume to show
_PANE_GAP_PX = 16  # room above a pane without a legend row, for the tick labels either side
_CROSSHAIR_RATE = 30  # crosshair updates per second, at most
_Y_PADDING = 0.06
_MARKER_PX = 7.0  # markers are shown while there is at least this many pixels per marker

Signal = QtCore.Signal


def _marker(up: bool) -> QtGui.QPainterPath:
    """A triangle drawn wholly below (buy, pointing up) or above (sell, pointing down) its
    anchor point, so markers placed at a bar's low / high never hide the bar. Symbol space is
    [-0.5, 0.5] with +y down on screen (pyqtgraph renders symbols into that square)."""
    path = QtGui.QPainterPath()
    if up:
        path.moveTo(0.0, 0.06)
        path.lineTo(0.3, 0.5)
        path.lineTo(-0.3, 0.5)
    else:
        path.moveTo(0.0, -0.06)
        path.lineTo(0.3, -0.5)
        path.lineTo(-0.3, -0.5)
    path.closeSubpath()
    return path


def position_changes(predictions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows where the position goes up (buy) and down (sell).

    Each split is a fresh account that starts flat, so the first row of a split trades if
    its position is not 0.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Has ``position`` and, optionally, ``split`` columns.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Boolean masks over the rows: buys, sells.
    """
    position = predictions[POSITION].to_numpy(dtype=np.float64)
    position = np.where(np.isfinite(position), position, 0.0)
    previous = np.empty_like(position)
    if position.size:
        previous[0] = 0.0
        previous[1:] = position[:-1]
    if SPLIT in predictions.columns and position.size:
        split = predictions[SPLIT].to_numpy()
        fresh = np.empty(position.size, dtype=bool)
        fresh[0] = True
        fresh[1:] = split[1:] != split[:-1]
        previous[fresh] = 0.0
    change = position - previous
    return change > 0, change < 0


def _is_dark(widget: QtWidgets.QWidget | None) -> bool:
    palette = widget.palette() if widget is not None else QtGui.QGuiApplication.palette()
    return palette.color(QtGui.QPalette.ColorRole.Window).lightness() < 128


_HOLD_EQUITY = "hold_equity"  # buy & hold's equity, a column of append_bars' frame
# rows of _LiveOverlays' bar-aligned values, and the overlays' keys that fill them
_PREDICTED_ROW, _POSITION_ROW, _ACTUAL_ROW, _EQUITY_ROW, _HOLD_ROW = range(5)
_LIVE_ROWS = {PREDICTED_RETURN: _PREDICTED_ROW, POSITION: _POSITION_ROW, EQUITY: _EQUITY_ROW,
              _HOLD_EQUITY: _HOLD_ROW}
# rows of the values drawn on the bar each row predicts (t + 1)
_AHEAD_PREDICTED, _AHEAD_NAIVE, _AHEAD_PREDICTED_PCT, _AHEAD_ACTUAL_PCT = range(4)


class _Growing:
    """Rows of floats that grow at their end in amortised O(1) per value (spare room NaN)."""

    def __init__(self, rows: int, n: int) -> None:
        self._buffer = np.full((rows, n + n // 2 + 256), np.nan)
        self.n = n

    def resize(self, n: int) -> np.ndarray:
        """Grow to ``n`` values per row (new ones NaN); returns :meth:`view`."""
        if n > self._buffer.shape[1]:
            grown = np.full((self._buffer.shape[0], n + n // 2 + 256), np.nan)
            grown[:, :self.n] = self._buffer[:, :self.n]
            self._buffer = grown
        self.n = n
        return self.view()

    def view(self) -> np.ndarray:
        return self._buffer[:, :self.n]


class _LiveOverlays:
    """A replay's overlays, grown bar by bar: bar-aligned values from bar 0 (NaN where there
    are none; rows ``_PREDICTED_ROW`` ..), the values drawn on the bar each row predicts
    (rows ``_AHEAD_PREDICTED`` ..), and the markers so far.

    Parameters
    ----------
    first : int
        The first bar of the replay (its account starts flat there).
    """

    def __init__(self, first: int) -> None:
        self.first = first
        # the buffers start at bar ``base`` (room for an equity line's 1.0 start point before
        # the first bar), not at bar 0: a long history costs nothing
        self.base = max(first - 1, 0)
        self._bars = _Growing(5, first - self.base)
        self._ahead = _Growing(4, first + 1 - self.base)
        self._marker_x = _Growing(1, 0)
        self._x = np.arange(self.base, first + 1024, dtype=np.float64)
        self.position = 0.0  # the last position decided (a fresh account is flat)
        self.marker_y: dict[bool, list[float]] = {True: [], False: []}  # buys, sells: price
        self._started = [False] * 5  # an equity line has its 1.0 start point
        self.styled = False  # the chart has shown its legend and return view for it

    def grow(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Room for ``n`` bars; the rows of bars ``base ..`` and those drawn one bar ahead
        (index ``i`` is bar ``base + i``)."""
        return self._bars.resize(n - self.base), self._ahead.resize(n + 1 - self.base)

    def views(self) -> tuple[np.ndarray, np.ndarray]:
        return self._bars.view(), self._ahead.view()

    def positions(self, n: int) -> np.ndarray:
        """``base .. n-1`` as floats (x of the bars), from a buffer grown by half when short."""
        if n - self.base > self._x.shape[0]:
            self._x = np.arange(self.base, n + n // 2, dtype=np.float64)
        return self._x[:n - self.base]

    def start_line(self, row: int, old: int) -> None:
        """Give equity row ``row`` its 1.0 start point, on the bar before its first value
        (the account before its first realised row)."""
        values = self._bars.view()[row]
        if self._started[row]:
            return
        at = np.flatnonzero(np.isfinite(values[old - self.base:]))
        if at.size == 0:
            return
        self._started[row] = True
        i = old - self.base + int(at[0])
        if i >= 1 and not np.isfinite(values[i - 1]):
            values[i - 1] = 1.0

    def add_marker_x(self, x: np.ndarray) -> None:
        view = self._marker_x.resize(self._marker_x.n + x.shape[0])
        view[0, -x.shape[0]:] = x

    def marker_x(self) -> np.ndarray:
        return self._marker_x.view()[0]


class _FoldLines(pg.GraphicsObject):
    """Thin vertical lines across a pane, at walk-forward folds' first predicted bars, and
    (in the price pane) each fold's number at the top: one item however many folds, drawing
    only the lines in view, so panning costs what one line costs."""

    def __init__(self, *, dark: bool) -> None:
        super().__init__()
        self._x = np.empty(0)
        self._labels: list[str] | None = None
        self.setZValue(-5)  # over the split shading, under the candles
        self.set_dark(dark)

    def set_lines(self, x: np.ndarray, labels: list[str] | None) -> None:
        """Lines at ``x`` (bar indices, increasing), labelled by ``labels`` (None: no labels)."""
        self._x = np.asarray(x, dtype=np.float64)
        self._labels = labels
        self.setVisible(bool(self._x.size))
        self.update()

    def set_dark(self, dark: bool) -> None:
        self._pen = pg.mkPen((190, 190, 200, 150) if dark else (70, 70, 80, 150), width=1,
                             style=QtCore.Qt.PenStyle.DashLine)
        self._pen.setCosmetic(True)
        self._text = QtGui.QColor("#d0d4dc" if dark else "#30343c")
        self.update()

    def viewRangeChanged(self) -> None:
        self.prepareGeometryChange()

    def boundingRect(self) -> QtCore.QRectF:
        rect = self.viewRect()
        return QtCore.QRectF() if rect is None else rect

    def paint(self, p, *args) -> None:
        rect = self.viewRect()
        if rect is None or self._x.size == 0:
            return
        a, b = np.searchsorted(self._x, [rect.left(), rect.right()])
        xs = self._x[a:b].tolist()
        if not xs:
            return
        top, bottom = rect.bottom(), rect.top()  # view y grows upwards
        p.setPen(self._pen)
        for x in xs:
            p.drawLine(QtCore.QPointF(x, bottom), QtCore.QPointF(x, top))
        if self._labels is None:
            return
        labels = self._labels[a:b]
        transform = p.transform()
        p.save()
        p.resetTransform()
        p.setPen(self._text)
        font = p.font()
        font.setPointSizeF(7.5)
        p.setFont(font)
        metrics = QtGui.QFontMetricsF(font)
        edge = -math.inf
        for x, label in zip(xs, labels, strict=True):
            point = transform.map(QtCore.QPointF(x, top))
            left = point.x() + 3.0
            if left < edge:  # crowded: skip labels that would overlap the previous one
                continue
            p.drawText(QtCore.QPointF(left, point.y() + metrics.ascent() + 2.0), label)
            edge = left + metrics.horizontalAdvance(label) + 6.0
        p.restore()


class PriceChart(QtWidgets.QWidget):
    """Linked-x panes: candles (+ volume) on top, equity below, and, while the return view is
    on, the predicted and actual returns under the candles. Integer bar index on x, dates
    as ticks.

    Parameters
    ----------
    parent : QWidget, optional
        Qt parent.
    dark : bool, optional
        Dark background; by default follows the application palette.

    Attributes
    ----------
    hovered : Signal(dict)
        The bar under the crosshair: ``index``, ``date``, ``open``, ``high``, ``low``,
        ``close``, ``volume`` and, where predictions are shown, ``predicted_return``,
        ``actual_return`` and ``position`` (of the row decided at that bar's close: the
        forecast of, and the return over, the next bar).
    return_view_changed : Signal(bool)
        The return view was switched on (True) or off, by the header's button, by
        :attr:`return_view_action` or by :meth:`set_return_view`.
    return_view_action : QAction
        Checkable: the return view. The header's button shows it; a window can add it to a
        menu as well (one state for both).
    log_price_action, log_equity_action : QAction
        Checkable: the price / equity pane on a log scale (header buttons too). The price
        scale is disabled for data with a price at or below 0.
    """

    hovered = Signal(dict)
    return_view_changed = Signal(bool)

    def __init__(self, parent: QtWidgets.QWidget | None = None, *,
                 dark: bool | None = None) -> None:
        super().__init__(parent)
        self._dark = _is_dark(parent) if dark is None else dark
        self._fields = DateFields(pd.DatetimeIndex([], name=INDEX_NAME))  # the bars' dates
        self._title = ""
        self._live: _LiveOverlays | None = None  # a replay's overlays, grown bar by bar
        self._replay = False
        self._fold_items: dict[int, _FoldLines] = {}  # by id of its pane
        self._fold_x = np.empty(0)  # the fold lines shown, and their labels
        self._fold_text: list[str] = []
        self._series: OhlcSeries | None = None
        self._pred: dict[str, np.ndarray] = {}  # bar-aligned prediction columns
        self._pred_offset = 0  # the bar at index 0 of the prediction arrays
        self._pred_close = np.empty(0)  # bar-aligned predicted close (at the predicted bar)
        self._naive_close = np.empty(0)  # bar-aligned last close, at the same bar
        self._return_values = np.empty((2, 0))  # bar-aligned predicted, actual return, in %
        self._regions: list[tuple[pg.PlotItem, pg.LinearRegionItem]] = []  # shown now
        self._split_spans: list[tuple[str, float, float]] = []  # (split, x0, x1) shaded now
        # every region made so far, by (id of its pane, split): kept in its pane and hidden
        # when not shown, because making one (with its lines and label) costs ~1 ms of the
        # UI thread
        self._region_items: dict[tuple[int, str], pg.LinearRegionItem] = {}
        self._labels: list[tuple[str, pg.InfLineLabel]] = []  # (split, its label)

        # -- header: title and crosshair readout --------------------------------------------
        self.title_label = QtWidgets.QLabel()
        self.title_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        font = self.title_label.font()
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_label.setMinimumWidth(40)  # may be cut short rather than widen the window
        self.readout_label = QtWidgets.QLabel()
        self.readout_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.readout_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight
                                        | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.readout_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                         QtWidgets.QSizePolicy.Policy.Preferred)
        self.return_view_action = QtGui.QAction(RETURN_VIEW_TEXT, self)
        self.return_view_action.setCheckable(True)
        self.return_view_action.setEnabled(False)  # until there are predictions to show
        self.return_view_action.setToolTip(RETURN_VIEW_TIP)
        self.return_view_action.setStatusTip(RETURN_VIEW_TIP)
        self.return_view_action.toggled.connect(self._on_return_view_toggled)
        self.return_view_button = QtWidgets.QToolButton()
        self.return_view_button.setDefaultAction(self.return_view_action)
        self.return_view_button.setAccessibleName(RETURN_VIEW_NAME)
        self.return_view_button.setAccessibleDescription(RETURN_VIEW_TIP)
        # the chart's dark header: make the checked state plain to see (amber, like the model)
        self.log_price_action = self._toggle_action(LOG_PRICE_TEXT, LOG_PRICE_TIP,
                                                    self._on_log_price_toggled)
        self.log_equity_action = self._toggle_action(LOG_EQUITY_TEXT, LOG_EQUITY_TIP,
                                                     self._on_log_equity_toggled)
        self.log_price_button = self._toggle_button(self.log_price_action)
        self.log_equity_button = self._toggle_button(self.log_equity_action)
        header = QtWidgets.QHBoxLayout()
        header.setContentsMargins(6, 2, 6, 0)
        header.addWidget(self.title_label)
        header.addWidget(self.readout_label, 1)
        header.addWidget(self.log_price_button)
        header.addWidget(self.log_equity_button)
        header.addWidget(self.return_view_button)
        # a short note under the title (what the predictions shown are), hidden while empty
        self.note_label = QtWidgets.QLabel()
        self.note_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.note_label.setWordWrap(True)
        self.note_label.setContentsMargins(6, 0, 6, 0)
        font = self.note_label.font()
        font.setItalic(True)
        self.note_label.setFont(font)
        self.note_label.hide()

        # -- plots -------------------------------------------------------------------------------
        self.graphics = _Graphics()
        self._revision = 0  # bumps whenever what the chart shows may have changed
        self.graphics.scene().changed.connect(self._bump_revision)
        self.graphics.ci.setContentsMargins(2, 2, 8, 2)
        self.graphics.ci.setSpacing(0)
        # Row 1 is the returns pane's (predicted vs actual return, under the candles). It is
        # built the first time it is needed (_returns_pane): a fifth of the chart's
        # construction, for a pane hidden until the return view is on. An empty grid row
        # takes no room.
        self.axes = [DateIndexAxis("bottom") for _ in range(3)]  # the returns pane's: 2nd
        self.price_plot: pg.PlotItem = self.graphics.addPlot(
            row=0, col=0, axisItems={"bottom": self.axes[0], "left": ValueAxis("left")})
        self.volume_plot: pg.PlotItem = self.graphics.addPlot(
            row=2, col=0, axisItems={"bottom": self.axes[1], "left": CompactAxis("left")})
        self.equity_plot: pg.PlotItem = self.graphics.addPlot(
            row=3, col=0, axisItems={"bottom": self.axes[2], "left": ValueAxis("left")})
        self._returns: _ReturnsPane | None = None
        layout = self.graphics.ci.layout
        layout.setRowStretchFactor(0, 6)
        layout.setRowStretchFactor(1, 0)  # the returns pane: _RETURNS_STRETCH while shown
        layout.setRowStretchFactor(2, 1)
        layout.setRowStretchFactor(3, 3)
        for plot in (self.price_plot, self.volume_plot):
            plot.hideAxis("bottom")
        for plot in self._plots():
            _fix_pane(plot)
        for plot in (self.volume_plot, self.equity_plot):  # the returns pane: while shown
            plot.setXLink(self.price_plot)
        self.price_plot.getAxis("left").setLabel("price")
        self.volume_plot.getAxis("left").setLabel("volume")
        self.equity_plot.getAxis("left").setLabel("equity")
        for plot in (self.volume_plot, self.equity_plot):  # short panes
            plot.getAxis("left").setStyle(maxTickLevel=0)
        self._x_limits: dict[str, float] = {}  # every pane's pan limits, for the data shown
        # The volume pane has no legend row: the same gap keeps its top tick label clear of
        # the lowest label of the pane above (the other panes' legend rows do that for them).
        self.volume_plot.layout.setRowFixedHeight(0, _PANE_GAP_PX)

        self.candles = CandleItem()
        self.volume = VolumeItem()
        self.price_plot.addItem(self.candles)
        self.volume_plot.addItem(self.volume)

        # Overlays: real close, predicted next close and the naive "no change" forecast beside
        # it, trade markers. Every line is clipped to the view and decimated (peak) when more
        # points than pixel columns are visible, like the candles' level of detail.
        self.close_curve = _overlay_curve()
        self.predicted_curve = _overlay_curve()
        self.naive_curve = _overlay_curve()
        self.naive_curve.setZValue(4)  # under the predicted close
        for curve in (self.close_curve, self.predicted_curve, self.naive_curve):
            add_decimated(self.price_plot, curve)
        # the return view's lines (predicted, actual return: x, y each), for the returns pane
        self._return_lines: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None
        self.predicted_band = Band(self.price_plot, MODEL_COLOR)  # seed ensembles' range
        self._band_close = np.empty((2, 0))  # bar-aligned band edges, for the y range
        self._overlay_rows: tuple | None = None  # index, bar, breaks, split of the rows
        self.buy_markers = pg.ScatterPlotItem(symbol=_marker(True), size=18, pxMode=True)
        self.sell_markers = pg.ScatterPlotItem(symbol=_marker(False), size=18, pxMode=True)
        self._marker_x = np.empty(0)  # sorted x of every marker, to thin them when crowded
        for markers in (self.buy_markers, self.sell_markers):
            markers.setZValue(6)
            self.price_plot.addItem(markers)
        self._price_legend_row = LegendRow(self.price_plot)  # above the candles
        self.price_legend = self._price_legend_row.legend
        # The markers hide while they crowd; the legend shows stand-ins so it never greys out.
        self._legend_buy = pg.ScatterPlotItem(symbol="t1", size=9)
        self._legend_sell = pg.ScatterPlotItem(symbol="t", size=9)
        # What the price legend shows now; filled when predictions first come (the legend is
        # hidden without them).
        self._legend_entries: list[tuple[Any, str]] = []
        self.price_legend.setVisible(False)
        self.equity = EquityPane(self.equity_plot)
        self._marker_y = (np.empty(0), np.empty(0))  # buy and sell markers' y, in price units
        self._log_price = False  # the price pane is drawn on a log scale now
        self._candle_series: OhlcSeries | None = None  # what the candles draw (log10 or not)
        self._has_volume = True
        self._shown_volume = True

        # Crosshair: a vertical line through every pane, a horizontal one in the price pane.
        # Transient: left out of exported pictures (see hide_transients).
        self._transients_hidden = 0
        self._transient_state = _TransientState()  # shared with the crosshair lines
        self._deferred_mouse: Any = None  # a mouse move (or leave) that came while hidden
        self._saved_readout = ""
        self._vlines: list[_CrosshairLine] = []
        for plot in self._plots():
            self._add_vline(plot)
        self._hline = _CrosshairLine(self._transient_state, angle=0, movable=False)
        self._hline.setZValue(20)
        self._hline.setVisible(False)
        self.price_plot.addItem(self._hline, ignoreBounds=True)
        self._mouse_proxy = pg.SignalProxy(self.graphics.scene().sigMouseMoved,
                                           rateLimit=_CROSSHAIR_RATE, slot=self._on_mouse_moved)
        self.graphics.mouse_left.connect(self._clear_crosshair)  # the readout ends with it

        self.price_plot.getViewBox().sigXRangeChanged.connect(self._on_x_range_changed)

        box = QtWidgets.QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addLayout(header)
        box.addWidget(self.note_label)
        box.addWidget(self.graphics, 1)
        self._styled_dark: bool | None = None  # the look set_dark last applied
        self.set_dark(self._dark)

    # ================================================================== public API ==========
    def set_prices(self, frame: pd.DataFrame, *, title: str = "") -> None:
        """Show a price frame (data contract: DatetimeIndex ``date``; open, high, low, close,
        volume). Clears predictions and splits; shows every bar.

        Parameters
        ----------
        frame : pandas.DataFrame
            The bars.
        title : str
            Shown above the chart (e.g. the symbol); the date span is appended.
        """
        self._replay = False
        self.clear_predictions()
        self.set_splits(None)
        self.set_fold_lines([])
        self._load_bars(frame, title)

    def _load_bars(self, frame: pd.DataFrame, title: str) -> None:
        """Show the bars of ``frame`` (overlays, splits and fold lines are the caller's)."""
        self._fields = DateFields(pd.DatetimeIndex(frame.index))
        n = len(self._fields)
        self._series = OhlcSeries(frame[OPEN], frame[HIGH], frame[LOW], frame[CLOSE],
                                  frame[VOLUME])
        # A log scale needs positive prices; the choice holds and applies to data that has them.
        self.log_price_action.setEnabled(self._log_price_possible())
        self._log_price = self.log_price_action.isChecked() and self._log_price_possible()
        for axis in self.axes:
            axis.set_fields(self._fields)
        self._title = title
        self._show_title()
        self._clear_crosshair()
        self._x_limits = {}
        self._grow_x_limits()
        volume = self._series.volume
        self._has_volume = bool(n and np.any(np.isfinite(volume) & (volume != 0)))
        self._show_volume_pane()
        self.price_plot.getAxis("left").set_log_scale(self._log_price)
        for curve in self._price_curves():
            curve.setLogMode(False, self._log_price)
        self.predicted_band.set_log(self._log_price)
        self._candle_series = self._price_series()
        self.candles.set_series(self._candle_series)
        self.volume.set_series(self._series if self._has_volume else None)
        if n:
            self.show_range(0, n - 1)

    # -- a chart that grows: replay and live feeds ---------------------------------------------
    def start_replay(self, frame: pd.DataFrame, start: Any = None, *, title: str = "",
                     fill: str = FILL_NEXT_OPEN) -> int:
        """Show the bars of ``frame`` dated before ``start`` and get ready to append the rest.

        Clears predictions, splits and fold lines; the replay's overlays (predicted close,
        markers, the model's and buy & hold's equity) start empty and grow with
        :meth:`append_bar` / :meth:`append_bars`, from a fresh account (position 0).

        Parameters
        ----------
        frame : pandas.DataFrame
            A price frame (DatetimeIndex ``date``; open, high, low, close, volume); may be
            empty (a live feed starting from nothing).
        start : date-like, optional
            The first bar not shown (None: every bar of ``frame`` is shown).
        title : str
            Shown above the chart.
        fill : str
            The strategy's fill (``next_open`` or ``close``); checked, and kept for the
            caller: equity points are drawn on the bar given to :meth:`append_bar`.

        Returns
        -------
        int
            Bars shown: the index the next appended bar gets.
        """
        realised_lag(fill)
        if start is not None and len(frame):
            index = pd.DatetimeIndex(frame.index)
            at = pd.Timestamp(start)
            if index.tz is not None and at.tz is None:
                at = at.tz_localize(index.tz)
            frame = frame.iloc[:int(index.searchsorted(at, side="left"))]
        self.set_prices(frame, title=title)
        self._replay = True
        self._start_live()
        self._reserve(self.bar_count() // 2 + 4096)
        return self.bar_count()

    def _reserve(self, extra: int) -> None:
        """Room for ``extra`` appended bars, made now on a worker thread (a copy of every
        column: a tenth of a second or more at a million bars) rather than by the first
        append on the UI thread."""
        for series in {id(s): s for s in (self._series, self._candle_series)
                       if s is not None}.values():
            series.reserve(extra, background=True)
        self._fields.reserve(extra, background=True)

    def is_replay(self) -> bool:
        """:meth:`start_replay` was called and no :meth:`set_prices` since."""
        return self._replay

    def bar_count(self) -> int:
        """Bars shown now."""
        return 0 if self._series is None else self._series.n

    def last_bar_in_view(self) -> bool:
        """The visible x range reaches the last bar, so appended bars move the view along."""
        n = self.bar_count()
        if n == 0:
            return True
        x0, x1 = self.visible_range()
        return x0 <= n - 1 <= x1 + 0.5

    def follow_last_bar(self, bars: int | None = None) -> None:
        """Move the view to the last bar, keeping its width (or showing the last ``bars``)."""
        n = self.bar_count()
        if n == 0:
            return
        x0, x1 = self.visible_range()
        width = float(bars) if bars is not None else x1 - x0
        self.set_x_range(n - 0.5 - width, n - 0.5)

    def append_bar(self, date: Any, open: float, high: float, low: float, close: float,
                   volume: float = 0.0, *, predicted_return: float | None = None,
                   position: float | None = None, equity: float | None = None,
                   hold_equity: float | None = None) -> int:
        """Append one bar and, optionally, what a replay decided and realised at its close.

        The level of detail is updated, not rebuilt. While the last bar is in view the view
        moves along with the new bar (its width kept); otherwise the user's x range stays.

        Parameters
        ----------
        date : date-like
            After the last bar's.
        open, high, low, close, volume : float
            The bar.
        predicted_return : float, optional
            The next bar's log return, predicted at this close: the predicted close
            ``close * exp(predicted_return)`` is drawn on the next bar, with the naive "no
            change" close beside it.
        position : float, optional
            Decided at this close: a buy (sell) marker when it is above (below) the previous
            appended position (0 before the first).
        equity, hold_equity : float, optional
            The model's and buy & hold's account equity as realised at this bar (drawn here;
            each line starts with a 1.0 point on the bar before its first value).

        Returns
        -------
        int
            The new bar's index.
        """
        dates = pd.DatetimeIndex([pd.Timestamp(date)])
        columns = {PREDICTED_RETURN: predicted_return, POSITION: position, EQUITY: equity,
                   _HOLD_EQUITY: hold_equity}
        overlays = {key: np.array([value], dtype=np.float64)
                    for key, value in columns.items() if value is not None}
        prices = [np.array([value], dtype=np.float64) for value in (open, high, low, close,
                                                                    volume)]
        return self._append(dates, prices, overlays)

    def append_bars(self, frame: pd.DataFrame) -> int:
        """Append many bars at once (a jump, or catching up), with one redraw.

        ``frame`` has the price columns and, optionally, ``predicted_return``, ``position``,
        ``equity`` and ``hold_equity`` columns, one row per bar (as in :meth:`append_bar`).
        Returns the index of the last bar (``bar_count() - 1``).
        """
        if len(frame) == 0:
            return self.bar_count() - 1
        prices = [frame[c].to_numpy(dtype=np.float64) for c in (OPEN, HIGH, LOW, CLOSE)]
        prices.append(frame[VOLUME].to_numpy(dtype=np.float64) if VOLUME in frame.columns
                      else np.zeros(len(frame)))
        overlays = {c: frame[c].to_numpy(dtype=np.float64)
                    for c in (PREDICTED_RETURN, POSITION, EQUITY, _HOLD_EQUITY)
                    if c in frame.columns}
        return self._append(pd.DatetimeIndex(frame.index), prices, overlays)

    # -- walk-forward folds ----------------------------------------------------------------
    def set_fold_lines(self, starts: Sequence[Any], labels: Sequence[str] | None = None) -> None:
        """Draw a thin vertical line at each fold's first predicted bar, numbered at the top of
        the price pane; an empty list clears them.

        Parameters
        ----------
        starts : sequence of date-like
            Each fold's first predicted bar. A date between two bars goes to the next bar;
            dates before the first or after the last bar are left out.
        labels : sequence of str, optional
            One per start (default ``"1"``, ``"2"``, ...).
        """
        starts = list(starts)
        if labels is not None and len(labels) != len(starts):
            raise ValueError("set_fold_lines: one label per start")
        names = [str(i + 1) for i in range(len(starts))] if labels is None else [
            str(label) for label in labels]
        x, text = np.empty(0), []
        n = self.bar_count()
        if starts and n:
            index = self._dates
            stamps = pd.DatetimeIndex([pd.Timestamp(s) for s in starts])
            if index.tz is not None and stamps.tz is None:
                stamps = stamps.tz_localize(index.tz)
            bars = index.searchsorted(stamps, side="left")
            keep = (stamps >= index[0]) & (bars < n)
            x = bars[keep].astype(np.float64)
            text = [name for name, k in zip(names, keep, strict=True) if k]
        for plot in self._plots():
            if x.size or id(plot) in self._fold_items:  # no items until there are folds
                self._fold_item(plot).set_lines(x, text if plot is self.price_plot else None)
        self._fold_x = x
        self._fold_text = text

    def fold_lines(self) -> list[float]:
        """x (bar index) of the fold lines shown."""
        return self._fold_x.tolist()

    def set_splits(self, splits: pd.Series | None) -> None:
        """Shade and label the train / val / test regions.

        Parameters
        ----------
        splits : pandas.Series or None
            Index: dates (as in the price frame); values: ``"train"``, ``"val"`` or ``"test"``.
            Dates not on the chart are ignored; None removes the regions.
        """
        for _plot, region in self._regions:
            region.hide()
        self._regions = []
        self._split_spans = []
        if splits is None or len(splits) == 0 or len(self._dates) == 0:
            return
        idx = self._dates.get_indexer(pd.DatetimeIndex(splits.index))
        keep = idx >= 0
        idx = idx[keep]
        names = np.asarray(splits.to_numpy()[keep], dtype=object)
        order = np.argsort(idx, kind="stable")
        idx, names = idx[order], names[order]
        for name in SPLITS:
            where = idx[names == name]
            if where.size == 0:
                continue
            lo, hi = float(where.min()) - 0.5, float(where.max()) + 0.5
            self._split_spans.append((name, lo, hi))
            for plot in self._plots():
                self._shade(plot, name, lo, hi)

    def _shade(self, plot: pg.PlotItem, name: str, lo: float, hi: float) -> None:
        """Shade split ``name`` over ``lo .. hi`` in pane ``plot`` (its region, made once)."""
        region = self._region_items.get((id(plot), name))
        if region is None:
            region = self._make_region(name, lo, hi, label=plot is self.price_plot)
            plot.addItem(region, ignoreBounds=True)
            self._region_items[id(plot), name] = region
        else:
            region.setRegion((lo, hi))
            region.show()
        self._regions.append((plot, region))

    def set_predictions(self, predictions: pd.DataFrame,
                        baselines: dict[str, pd.DataFrame] | None = None, *,
                        band: pd.DataFrame | None = None, model_label: str = "model",
                        fill: str = FILL_NEXT_OPEN, val_metrics: dict | None = None) -> None:
        """Overlay a run's predictions and paper-trading results.

        Parameters
        ----------
        predictions : pandas.DataFrame
            Index: date; columns ``split, close, actual_return, predicted_return, position,
            strategy_return, equity`` (all splits in one frame; equity restarts at 1.0 per
            split). Draws the predicted next close ``close * exp(predicted_return)`` on the bar
            it predicts with the naive forecast ``close`` (no change) beside it, the predicted
            and actual return on that same bar in the return view, buy / sell markers where
            the position changes, and the model's equity on the bars where it is realised.
        baselines : dict of str to pandas.DataFrame, optional
            Same layout per baseline (``buy_and_hold``, ``random_walk``, ...); the equity pane
            shows buy-and-hold and the naive baseline with the best validation total return.
        band : pandas.DataFrame, optional
            A seed ensemble's spread, one row per prediction row: ``predicted_close_min``,
            ``predicted_close_max`` (drawn around the predicted close, on the bar it predicts)
            and ``equity_min``, ``equity_max`` (around the model's equity).
        model_label : str
            The model's name in the equity legend.
        fill : str
            The strategy's fill, ``next_open`` (equity of row ``t`` drawn at bar ``t + 2``)
            or ``close`` (at bar ``t + 1``).
        val_metrics : dict, optional
            The validation split's ``metrics.json`` object: the best baseline is the one with
            the highest validation total return in it (else in the baselines' frames).

        Raises
        ------
        ValueError
            If no prices are shown yet (:meth:`set_prices` comes first).
        """
        if self._series is None:
            raise ValueError("set_prices must be called before set_predictions")
        realised_lag(fill)  # an unknown fill fails before anything is cleared
        self._clear_overlays()  # the note stays: it may be set before or after the overlays
        n = self._series.n
        bar = self._dates.get_indexer(pd.DatetimeIndex(predictions.index))
        keep = bar >= 0
        frame = predictions.loc[keep]
        bar = bar[keep]
        if bar.size == 0:
            return
        x = bar.astype(np.float64)
        close = (frame[CLOSE].to_numpy(dtype=np.float64) if CLOSE in frame.columns
                 else self._series.close[bar])
        predicted = frame[PREDICTED_RETURN].to_numpy(dtype=np.float64)
        split = frame[SPLIT].to_numpy() if SPLIT in frame.columns else np.zeros(bar.size)
        breaks = np.zeros(bar.size, dtype=bool)
        breaks[:-1] = (split[1:] != split[:-1]) | (np.diff(bar) != 1)
        # Real close on the prediction rows; predicted close on the bar it predicts (t + 1),
        # and beside it the naive forecast for that bar: no change from the last close.
        self.close_curve.setData(*broken_line(x, close, breaks))
        predicted_close = close * np.exp(predicted)
        self.predicted_curve.setData(*broken_line(x + 1.0, predicted_close, breaks))
        self.naive_curve.setData(*broken_line(x + 1.0, close, breaks))
        # The return view: the forecast and what happened, on the same bar (t + 1), in %.
        actual = (frame[ACTUAL_RETURN].to_numpy(dtype=np.float64) if ACTUAL_RETURN in frame.columns
                  else np.full(bar.size, np.nan))
        self._return_lines = (broken_line(x + 1.0, predicted * 100.0, breaks),
                              broken_line(x + 1.0, actual * 100.0, breaks))
        if self._returns is not None:  # else the pane takes them when it is built
            self._returns.set_lines(self._return_lines)
        self._return_values = np.full((2, n + 1), np.nan)
        self._return_values[0, bar + 1] = predicted * 100.0
        self._return_values[1, bar + 1] = actual * 100.0

        buys, sells = position_changes(frame)
        self._marker_y = (self._series.low[bar[buys]], self._series.high[bar[sells]])
        self.buy_markers.setData(x=x[buys], y=self._price_y(self._marker_y[0]))
        self.sell_markers.setData(x=x[sells], y=self._price_y(self._marker_y[1]))
        self._marker_x = np.sort(np.concatenate([x[buys], x[sells]]))

        self._pred = {}
        for column in (PREDICTED_RETURN, ACTUAL_RETURN, POSITION):
            if column in frame.columns:
                aligned = np.full(n, np.nan)
                aligned[bar] = frame[column].to_numpy(dtype=np.float64)
                self._pred[column] = aligned
        self._pred_close = np.full(n + 1, np.nan)
        self._pred_close[bar + 1] = predicted_close
        self._naive_close = np.full(n + 1, np.nan)
        self._naive_close[bar + 1] = close
        self._overlay_rows = (frame.index, bar, breaks, split)
        self.equity.set_data(bar, n, frame, baselines, self._dates, model_label=model_label,
                             fill=fill, val_metrics=val_metrics)

        self.return_view_action.setEnabled(True)
        self._show_return_view()
        self.price_legend.setVisible(True)
        self._apply_overlay_style()
        if band is not None:
            self.set_band(band)  # updates the y ranges
        else:
            self._update_y_ranges()

    def set_band(self, band: pd.DataFrame | None) -> None:
        """Shade a seed ensemble's spread around the predictions shown (None removes it).

        ``band`` has one row per prediction row: ``predicted_close_min`` /
        ``predicted_close_max`` (drawn on the bar each predicts, like the predicted close)
        and ``equity_min`` / ``equity_max`` (around the model's equity). A separate step from
        :meth:`set_predictions`, so the app can draw it in a turn of the event loop of its own.
        """
        self._remove_band()
        if band is None or self._overlay_rows is None:
            self._update_y_ranges()
            return
        from sandbox.ensemble import (
            BAND_EQUITY_HIGH,
            BAND_EQUITY_LOW,
            BAND_PREDICTED_HIGH,
            BAND_PREDICTED_LOW,
        )

        index, bar, breaks, split = self._overlay_rows
        n = self._series.n if self._series is not None else 0
        rows = band.reindex(index)
        low = rows[BAND_PREDICTED_LOW].to_numpy(np.float64)
        high = rows[BAND_PREDICTED_HIGH].to_numpy(np.float64)
        self.predicted_band.set_data(bar + 1.0, low, high, breaks)
        self._band_close = np.full((2, n + 1), np.nan)
        self._band_close[0, bar + 1] = low
        self._band_close[1, bar + 1] = high
        self._sync_price_legend()
        self.equity.set_band(bar, n, rows[BAND_EQUITY_LOW].to_numpy(np.float64),
                             rows[BAND_EQUITY_HIGH].to_numpy(np.float64), split)
        self._update_y_ranges()

    def _remove_band(self) -> None:
        self.predicted_band.clear()
        self._sync_price_legend()
        self._band_close = np.empty((2, 0))
        self.equity.clear_band()

    def show_run_steps(self, run: ShownRun, *, show_test: bool = True
                       ) -> list[Callable[[], None]]:
        """Drawing a shown run, as steps to take in separate turns of the event loop (none
        keeps the UI thread long): the split shading, the overlays (without the test split
        while it is hidden: ``show_test`` False, or a run whose test split stays hidden),
        and an ensemble's seed band."""
        predictions, baselines = run.predictions, run.baselines
        if run.test_hidden or not show_test:
            predictions = _without_test(predictions)
            baselines = {name: _without_test(frame) for name, frame in baselines.items()}
        label = f"model ({run.n_seeds}-seed average)" if run.is_ensemble else "model"
        fill = run.config.strategy.fill
        val_metrics = run.metrics_by_split.get(VAL)
        steps = [lambda: self.set_splits(run.predictions[SPLIT]),
                 lambda: self.set_predictions(predictions, baselines, model_label=label,
                                              fill=fill, val_metrics=val_metrics)]
        if run.is_ensemble:
            steps.append(lambda: self.set_band(run.band))
        return steps

    def clear_predictions(self) -> None:
        """Remove the prediction overlays, markers and equity curves (candles stay), and the
        note (:meth:`set_note`)."""
        self._clear_overlays()
        self.set_note("")

    def set_note(self, text: str) -> None:
        """Show a short note under the chart's title, e.g. what the predictions shown are
        ("Predictions of a model trained on AAPL 1d, applied to GSPC"); "" removes it.
        :meth:`clear_predictions` and :meth:`set_prices` remove it too;
        :meth:`set_predictions` keeps it, so it may be set before or after the overlays."""
        text = " ".join(str(text).split())
        self.note_label.setText(text)
        self.note_label.setVisible(bool(text))

    def note(self) -> str:
        """The note shown under the title ("" when there is none)."""
        return self.note_label.text()

    def is_log_price(self) -> bool:
        """The price pane is drawn on a log scale now (chosen, and the prices are all > 0)."""
        return self._log_price

    def is_log_equity(self) -> bool:
        """The equity pane is drawn on a log scale."""
        return self.log_equity_action.isChecked()

    def set_log_price(self, on: bool) -> None:
        """Draw the price pane on a log scale (``on``) or a linear one. The choice holds
        across data; it applies while every price shown is above 0."""
        self.log_price_action.setChecked(bool(on))

    def set_log_equity(self, on: bool) -> None:
        """Draw the equity pane on a log scale (``on``) or a linear one."""
        self.log_equity_action.setChecked(bool(on))

    def has_volume_pane(self) -> bool:
        """The volume pane is shown (the data has volume)."""
        return self._shown_volume

    def hide_transients(self) -> None:
        """Leave the crosshair and the hover readout out of what the chart paints, e.g. for
        an exported picture drawn over several turns of the event loop; mouse moves wait
        until :meth:`restore_transients`. Calls nest; the scene does not change (the
        crosshair lines skip their paint), so :attr:`revision` stays."""
        self._transients_hidden += 1
        self._transient_state.hidden = True
        if self._transients_hidden == 1:
            self._saved_readout = self.readout_label.text()
            self.readout_label.setText("")

    def restore_transients(self) -> None:
        """Undo one :meth:`hide_transients`; the last, deferred, mouse move then applies."""
        if self._transients_hidden == 0:
            return
        self._transients_hidden -= 1
        if self._transients_hidden:
            return
        self._transient_state.hidden = False
        self.readout_label.setText(self._saved_readout)
        for line in [*self._vlines, self._hline]:
            if line.isVisible():
                line.update()
        deferred, self._deferred_mouse = self._deferred_mouse, None
        if deferred == "leave":
            self._clear_crosshair()
        elif deferred is not None:
            self._on_mouse_moved(deferred)

    def transients_hidden(self) -> bool:
        """The crosshair and the readout are left out now (:meth:`hide_transients`)."""
        return self._transients_hidden > 0

    @contextlib.contextmanager
    def exporting(self, *, vector: bool = False) -> Iterator[None]:
        """Paint for an exported picture while inside: no crosshair, no hover readout and,
        with ``vector`` (SVG), every item as vector shapes clipped to its pane: the candles
        and volume bars in view as paths, markers as paths rather than cached bitmaps, each
        line as one path, and a plain background rather than the view's cached bitmap of
        it."""
        self.hide_transients()
        view = self.graphics
        items = [item for item in view.scene().items() if hasattr(item, "setExportMode")]
        cache = view.cacheMode()
        # wide opaque lines are drawn a segment at a time on screen (faster): one SVG
        # element per segment; one path per line while exporting
        curves = [item for item in items if isinstance(item, pg.PlotCurveItem)]
        modes = [curve.opts.get("segmentedLineMode") for curve in curves]
        if vector:
            for item in items:
                item.setExportMode(True, {"antialias": True})
            for curve in curves:
                curve.opts["segmentedLineMode"] = "off"
            view.setCacheMode(QtWidgets.QGraphicsView.CacheModeFlag.CacheNone)
        try:
            yield
        finally:
            if vector:
                for curve, mode in zip(curves, modes, strict=True):
                    curve.opts["segmentedLineMode"] = mode
                for item in items:
                    item.setExportMode(False)
                view.setCacheMode(cache)
                view.resetCachedContent()
            self.restore_transients()

    def _clear_overlays(self) -> None:
        for curve in (self.close_curve, self.predicted_curve, self.naive_curve):
            curve.setData([], [])
        self._return_lines = None
        if self._returns is not None:
            self._returns.set_lines(None)
        self.buy_markers.clear()
        self.sell_markers.clear()
        self._marker_x = np.empty(0)
        self.equity.clear()
        self._remove_band()
        self._overlay_rows = None
        self._live = None
        self._pred = {}
        self._pred_offset = 0
        self._pred_close = np.empty(0)
        self._naive_close = np.empty(0)
        self._return_values = np.empty((2, 0))
        self.return_view_action.setEnabled(False)
        self._marker_y = (np.empty(0), np.empty(0))
        self._show_return_view()
        self.price_legend.setVisible(False)
        self._clear_crosshair()

    def set_return_view(self, on: bool) -> None:
        """Show the predicted and actual return of each bar in a pane under the candles
        (``on``), or the predicted next close with the naive forecast in the price pane.
        Emits :attr:`return_view_changed` when the view changes. The choice holds across
        runs; the pane is shown while there are predictions."""
        self.return_view_action.setChecked(bool(on))

    def is_return_view(self) -> bool:
        """The return view is chosen (whether or not predictions are shown yet)."""
        return self.return_view_action.isChecked()

    def show_range(self, first: int, last: int) -> None:
        """Show bars ``first`` .. ``last`` (bar indices, inclusive); y follows the visible bars."""
        if last < first:
            first, last = last, first
        self.set_x_range(first - 0.5, last + 0.5)

    def set_x_range(self, x0: float, x1: float) -> None:
        """Show the x range ``[x0, x1]`` (fractional bar indices); y follows the visible bars."""
        before = self.visible_range()
        self.price_plot.getViewBox().setXRange(x0, x1, padding=0.0)
        if self.visible_range() == before:  # no sigXRangeChanged: y may still be stale
            self._update_y_ranges()

    def visible_range(self) -> tuple[float, float]:
        """The x range shown, in bar indices."""
        (x0, x1), _ = self.price_plot.getViewBox().viewRange()
        return float(x0), float(x1)

    def items_drawn(self) -> int:
        """Candles (or OHLC buckets, when zoomed out) drawn in the visible range."""
        x0, x1 = self.visible_range()
        return self.candles.items_in(x0, x1)

    def readout(self, index: int) -> dict[str, Any]:
        """What the crosshair reads out for bar ``index`` (empty outside the data)."""
        if self._series is None or not 0 <= index < self._series.n:
            return {}
        s = self._series
        out: dict[str, Any] = {
            "index": int(index),
            INDEX_NAME: self._fields.timestamp(index),
            OPEN: float(s.open[index]),
            HIGH: float(s.high[index]),
            LOW: float(s.low[index]),
            CLOSE: float(s.close[index]),
            VOLUME: float(s.volume[index]),
        }
        at = index - self._pred_offset
        for column, values in self._pred.items():
            value = values[at] if 0 <= at < values.shape[0] else np.nan
            if np.isfinite(value):
                out[column] = float(value)
        return out

    def set_dark(self, dark: bool) -> None:
        """Switch between a dark and a light background."""
        dark = bool(dark)
        self._dark = dark
        if dark == self._styled_dark:
            return  # already so: what comes later is styled as it is made
        self._styled_dark = dark
        background = QtGui.QColor("#131722") if dark else QtGui.QColor("#ffffff")
        foreground = QtGui.QColor("#b2b5be") if dark else QtGui.QColor("#333333")
        self.graphics.setBackground(background)
        self.volume.set_background(background)
        for plot in self._plots():
            self._style_axes(plot)
        cross = self._crosshair_pen()
        for line in [*self._vlines, self._hline]:
            line.setPen(cross)
        palette = self.palette()
        for role in (QtGui.QPalette.ColorRole.Window,):
            palette.setColor(role, background)
        palette.setColor(QtGui.QPalette.ColorRole.WindowText, foreground)
        for button in (self.log_price_button, self.log_equity_button, self.return_view_button):
            button.setStyleSheet(_BUTTON_STYLE % foreground.name())
        palette.setColor(QtGui.QPalette.ColorRole.ButtonText, foreground)
        palette.setColor(QtGui.QPalette.ColorRole.Button, background.lighter(160) if dark
                         else background.darker(110))
        self.setAutoFillBackground(True)
        self.setPalette(palette)
        legends = [self.price_legend, self.equity.legend]
        if self._returns is not None:
            legends.append(self._returns.legend)
        for legend in legends:
            self._style_legend(legend)
        self._apply_overlay_style()
        for region in self._region_items.values():
            name = region.property("split")
            region.setBrush(self._region_brush(name))
        for name, label in self._labels:
            label.setColor(self._label_color(name))
        for item in self._fold_items.values():
            item.set_dark(dark)

    # ================================================================== internals ==========
    # -- a chart that grows (internals) ----------------------------------------------------
    @property
    def _dates(self) -> pd.DatetimeIndex:
        """The bars' timestamps."""
        return self._fields.index

    def _show_title(self) -> None:
        n = self.bar_count()
        if n:
            first, last = self._fields.timestamp(0), self._fields.timestamp(n - 1)
            span = f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}  ({n:,} bars)"
        else:
            span = "no bars"
        self.title_label.setText(f"{self._title}  {span}" if self._title else span)

    def _grow_x_limits(self) -> None:
        """Pan limits a little past both ends; renewed once the data outgrows them (every
        2 % of growth, not on every appended bar)."""
        n = self.bar_count()
        x_max = self._x_limits.get("xMax")
        if x_max is not None and n + 4 <= x_max:
            return
        pad = max(5.0, n * 0.02)
        self._x_limits = {"xMin": -pad, "xMax": n - 1 + pad, "minXRange": 5}
        for plot in self._plots():
            plot.getViewBox().setLimits(**self._x_limits)

    def _append(self, dates: pd.DatetimeIndex, prices: list[np.ndarray],
                overlays: dict[str, np.ndarray]) -> int:
        k = len(dates)
        if k == 0:
            return self.bar_count() - 1
        if any(p.shape != (k,) for p in [*prices, *overlays.values()]):
            raise ValueError("append: one value per bar in every column")
        if not all(np.isfinite(p).all() for p in prices[:4]):
            raise ValueError("append: open, high, low and close must be numbers (not NaN)")
        prices[4] = np.where(np.isfinite(prices[4]), prices[4], 0.0)  # no volume known: 0
        if self.bar_count() == 0:
            self._append_first(dates, prices, overlays)
            return self.bar_count() - 1
        last = self._fields.timestamp(self._fields.n - 1)
        try:
            ordered = bool(dates[0] > last) and (k == 1 or bool(
                (np.diff(dates.asi8) > 0).all() and dates.is_monotonic_increasing))
        except TypeError:  # timezone-aware against naive
            ordered = False
        if not ordered:
            raise ValueError(f"appended bars must come after the last bar ({last}), in date "
                             f"order, in the same timezone")
        follow = self.last_bar_in_view()
        x0, x1 = self.visible_range()
        series = self._series
        old = series.n
        series.append(*prices)
        if self._candle_series is not None and self._candle_series is not series:
            if all((p > 0).all() for p in prices[:4]):
                self._candle_series.append(*[np.log10(p) for p in prices[:4]], prices[4])
            else:  # a price at or below 0 has no place on a log scale: draw linear
                self.log_price_action.setEnabled(False)
                self._on_log_price_toggled(False)
        self._fields.append(dates)
        for axis in self.axes:
            axis.dates_appended()
        if self._has_volume:
            self.volume.bars_appended(old)
        elif np.any(np.isfinite(prices[4]) & (prices[4] != 0)):
            self._has_volume = True
            self._show_volume_pane()
            self.volume.set_series(series)
        self.candles.bars_appended(old)
        if overlays or self._live is not None:
            self._append_live(old, overlays)
        self._grow_x_limits()
        self._show_title()
        if follow:
            self.set_x_range(x0 + k, x1 + k)
        else:
            self._update_y_ranges()
        return series.n - 1

    def _append_first(self, dates: pd.DatetimeIndex, prices: list[np.ndarray],
                      overlays: dict[str, np.ndarray]) -> None:
        """The first bars of an empty chart: shown as a frame, the overlays grown on them."""
        frame = pd.DataFrame(dict(zip((OPEN, HIGH, LOW, CLOSE, VOLUME), prices, strict=True)),
                             index=dates.rename(INDEX_NAME))
        live = self._live is not None or bool(overlays)
        self._load_bars(frame, self._title)
        if live:
            self._start_live(first=0)
            self._append_live(0, overlays)
            self._update_y_ranges()

    def _start_live(self, first: int | None = None) -> None:
        """Empty replay overlays from bar ``first`` (default: the next bar appended)."""
        self._clear_overlays()
        self._live = _LiveOverlays(self.bar_count() if first is None else first)

    def _append_live(self, old: int, overlays: dict[str, np.ndarray]) -> None:
        """Grow the replay overlays over bars ``old ..`` (:meth:`append_bar`)."""
        if self._live is None:
            self._start_live(first=old)
        live = self._live
        series = self._series
        n = series.n
        rows, ahead = live.grow(n)
        b = live.base  # buffer index = bar - b
        for key, row in _LIVE_ROWS.items():
            if key in overlays:
                rows[row, old - b:n - b] = overlays[key]
        for row in (_EQUITY_ROW, _HOLD_ROW):
            live.start_line(row, old)
        close = series.close
        predicted = rows[_PREDICTED_ROW, old - b:n - b]
        ahead[_AHEAD_PREDICTED, old + 1 - b:n + 1 - b] = close[old:n] * np.exp(predicted)
        ahead[_AHEAD_NAIVE, old + 1 - b:n + 1 - b] = np.where(np.isfinite(predicted),
                                                              close[old:n], np.nan)
        ahead[_AHEAD_PREDICTED_PCT, old + 1 - b:n + 1 - b] = predicted * 100.0
        lo = max(old - 1, live.first)  # rows whose next close is known now
        if n - 1 > lo:
            with np.errstate(divide="ignore", invalid="ignore"):
                actual = np.log(close[lo + 1:n] / close[lo:n - 1])
            rows[_ACTUAL_ROW, lo - b:n - 1 - b] = actual
            ahead[_AHEAD_ACTUAL_PCT, lo + 1 - b:n - b] = actual * 100.0
        self._add_live_markers(old, rows[_POSITION_ROW, old - b:n - b])
        self._draw_live()

    def _add_live_markers(self, old: int, positions: np.ndarray) -> None:
        live = self._live
        at = np.flatnonzero(np.isfinite(positions))
        if at.size == 0:
            return
        values = positions[at]
        change = values - np.r_[live.position, values[:-1]]
        live.position = float(values[-1])
        bars = at + old
        buys, sells = bars[change > 0], bars[change < 0]
        if buys.size == 0 and sells.size == 0:
            return
        series = self._series
        for markers, x, y, up in ((self.buy_markers, buys, series.low, True),
                                  (self.sell_markers, sells, series.high, False)):
            if x.size:
                live.marker_y[up].extend(y[x].tolist())
                markers.addPoints(x=x.astype(np.float64), y=self._price_y(y[x]))
        live.add_marker_x(np.sort(np.concatenate([buys, sells])).astype(np.float64))
        self._marker_x = live.marker_x()
        self._marker_y = (np.asarray(live.marker_y[True]), np.asarray(live.marker_y[False]))

    def _draw_live(self) -> None:
        """Hand the replay overlays' current views to the curves and the y-range arrays."""
        live = self._live
        n = self._series.n
        rows, ahead = live.views()
        first, b = live.first, live.base  # buffer index = bar - b
        x = live.positions(n + 1)  # x[i] = b + i
        f = first - b
        self.close_curve.setData(x[f:n - b], self._series.close[first:n])
        self.predicted_curve.setData(x[f + 1:], ahead[_AHEAD_PREDICTED, f + 1:])
        self.naive_curve.setData(x[f + 1:], ahead[_AHEAD_NAIVE, f + 1:])
        self._return_lines = ((x[f + 1:], ahead[_AHEAD_PREDICTED_PCT, f + 1:]),
                              (x[f + 1:], ahead[_AHEAD_ACTUAL_PCT, f + 1:]))
        if self._returns is not None:
            self._returns.set_lines(self._return_lines)
        self._pred = {PREDICTED_RETURN: rows[_PREDICTED_ROW], ACTUAL_RETURN: rows[_ACTUAL_ROW],
                      POSITION: rows[_POSITION_ROW]}
        self._pred_close = ahead[_AHEAD_PREDICTED]
        self._naive_close = ahead[_AHEAD_NAIVE]
        self._return_values = ahead[_AHEAD_PREDICTED_PCT:_AHEAD_ACTUAL_PCT + 1]
        self._pred_offset = b
        self.equity.show_live(x[:n - b], rows[_EQUITY_ROW], rows[_HOLD_ROW], offset=b)
        if not live.styled:
            live.styled = True
            self.return_view_action.setEnabled(True)
            self._show_return_view()
            self.price_legend.setVisible(True)
            self._apply_overlay_style()

    def _fold_item(self, plot: pg.PlotItem) -> _FoldLines:
        """The fold lines of pane ``plot`` (one item for all its lines, made on first use)."""
        item = self._fold_items.get(id(plot))
        if item is None:
            item = _FoldLines(dark=self._dark)
            plot.addItem(item, ignoreBounds=True)
            self._fold_items[id(plot)] = item
        return item

    def _plots(self) -> tuple[pg.PlotItem, ...]:
        """The panes built so far, top to bottom (the returns pane once it is built)."""
        if self._returns is None:
            return self.price_plot, self.volume_plot, self.equity_plot
        return self.price_plot, self._returns.plot, self.volume_plot, self.equity_plot

    # -- the returns pane, built on first use -------------------------------------------------
    @property
    def returns_plot(self) -> pg.PlotItem:
        """The returns pane (predicted vs actual return, under the candles), hidden while
        the return view is off or there are no predictions."""
        return self._returns_pane().plot

    @property
    def predicted_return_curve(self) -> pg.PlotDataItem:
        """The predicted return of each bar, in %, in the returns pane."""
        return self._returns_pane().predicted

    @property
    def actual_return_curve(self) -> pg.PlotDataItem:
        """The actual return of each bar, in %, in the returns pane."""
        return self._returns_pane().actual

    @property
    def zero_line(self) -> pg.InfiniteLine:
        """The returns pane's zero line."""
        return self._returns_pane().zero_line

    @property
    def returns_legend(self) -> pg.LegendItem:
        """The returns pane's legend (in a row above its plot area)."""
        return self._returns_pane().legend

    def _returns_pane(self) -> _ReturnsPane:
        """The returns pane, built now if it is not yet: hidden, styled, shaded and filled
        like the panes built with the chart."""
        if self._returns is not None:
            return self._returns
        axis = DateIndexAxis("bottom")
        axis.set_fields(self._fields)
        self.axes.insert(1, axis)
        pane = _ReturnsPane(axis)  # hidden, no height, no x link: see _show_return_view
        plot = pane.plot
        self.graphics.addItem(plot, row=1, col=0)  # laid out as it is: no room taken
        self._returns = pane
        plot.hideAxis("bottom")
        _fix_pane(plot)
        if self._x_limits:
            plot.getViewBox().setLimits(**self._x_limits)
        self._add_vline(plot).setPen(self._crosshair_pen())
        self._style_axes(plot)
        self._style_legend(pane.legend)
        pane.set_style(dark=self._dark)
        for name, lo, hi in self._split_spans:
            self._shade(plot, name, lo, hi)
        if self._return_lines is not None:
            pane.set_lines(self._return_lines)
        if self._fold_x.size:
            self._fold_item(plot).set_lines(self._fold_x, None)
        return pane

    def _add_vline(self, plot: pg.PlotItem) -> _CrosshairLine:
        """The crosshair's vertical line in ``plot``."""
        line = _CrosshairLine(self._transient_state, angle=90, movable=False)
        line.setZValue(20)
        line.setVisible(False)
        plot.addItem(line, ignoreBounds=True)
        self._vlines.append(line)
        return line

    def _foreground(self) -> QtGui.QColor:
        return QtGui.QColor("#b2b5be") if self._dark else QtGui.QColor("#333333")

    def _style_axes(self, plot: pg.PlotItem) -> None:
        foreground = self._foreground()
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(pg.mkPen(foreground))
            axis.setTextPen(pg.mkPen(foreground))

    def _style_legend(self, legend: pg.LegendItem) -> None:
        background = QtGui.QColor("#131722") if self._dark else QtGui.QColor("#ffffff")
        legend.setLabelTextColor(self._foreground())
        for _sample, label in legend.items:  # setLabelTextColor does not re-render them
            label.setText(label.text)
        legend.setBrush(pg.mkBrush(background.red(), background.green(), background.blue(),
                                   200))

    def _crosshair_pen(self) -> QtGui.QPen:
        return pg.mkPen((200, 200, 200, 150) if self._dark else (60, 60, 60, 150), width=1,
                        style=QtCore.Qt.PenStyle.DashLine)

    def _returns_shown(self) -> bool:
        return self._returns is not None and self._returns.plot.isVisible()

    def _toggle_action(self, text: str, tip: str, slot: Callable[[bool], None]) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        action.setCheckable(True)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.toggled.connect(slot)
        return action

    @staticmethod
    def _toggle_button(action: QtGui.QAction) -> QtWidgets.QToolButton:
        button = QtWidgets.QToolButton()
        button.setDefaultAction(action)
        button.setAccessibleName(action.text())
        button.setAccessibleDescription(action.toolTip())
        return button

    def _price_curves(self) -> tuple[pg.PlotDataItem, ...]:
        return self.close_curve, self.predicted_curve, self.naive_curve

    def _log_price_possible(self) -> bool:
        s = self._series
        if s is None or s.n == 0:
            return True
        return bool(min(s.low.min(), s.open.min(), s.close.min()) > 0)

    def _price_series(self) -> OhlcSeries | None:
        """The bars as the candles draw them: log10 of the prices on a log scale."""
        s = self._series
        if s is None or not self._log_price:
            return s
        return OhlcSeries(np.log10(s.open), np.log10(s.high), np.log10(s.low),
                          np.log10(s.close), s.volume)

    def _price_y(self, values: np.ndarray) -> np.ndarray:
        """Prices as the price pane draws them (log10 on a log scale)."""
        return log10_positive(values) if self._log_price else np.asarray(values, np.float64)

    def _on_log_price_toggled(self, on: bool) -> None:
        log = bool(on) and self._log_price_possible()
        if log == self._log_price:
            return
        self._log_price = log
        self.price_plot.getAxis("left").set_log_scale(log)
        for curve in self._price_curves():
            curve.setLogMode(False, log)
        self.predicted_band.set_log(log)
        if self._marker_y[0].size or self._marker_y[1].size:
            for markers, y in zip((self.buy_markers, self.sell_markers), self._marker_y,
                                  strict=True):
                x, _ = markers.getData()
                markers.setData(x=x, y=self._price_y(y))
        self._hline.setVisible(False)
        self._candle_series = self._price_series()
        self.candles.set_series(self._candle_series)
        self._update_y_ranges()

    def _on_log_equity_toggled(self, on: bool) -> None:
        self.equity_plot.getAxis("left").set_log_scale(bool(on))
        self.equity.set_log(bool(on))
        self._update_y_ranges()

    def _show_volume_pane(self) -> None:
        """The volume pane while the data has volume; no empty pane (and no x link) without."""
        shown = self._has_volume
        if shown == self._shown_volume:
            return
        self._shown_volume = shown
        self.volume_plot.setVisible(shown)
        self.graphics.ci.layout.setRowStretchFactor(2, _VOLUME_STRETCH if shown else 0)
        self.volume_plot.setMaximumHeight(_QWIDGETSIZE_MAX if shown else 0.0)
        self.volume_plot.setXLink(self.price_plot if shown else None)

    def _clear_crosshair(self) -> None:
        """Hide the crosshair and empty the readout (the mouse left, or the data changed)."""
        self._mouse_proxy.args = None  # a move still waiting in the rate limiter is stale
        self._mouse_proxy.timer.stop()
        if self._transients_hidden:
            self._deferred_mouse = "leave"
            self._saved_readout = ""
        for line in [*self._vlines, self._hline]:
            line.setVisible(False)
        self.readout_label.setText("")


    def _on_return_view_toggled(self, on: bool) -> None:
        self._show_return_view()
        self._update_y_ranges()
        self.return_view_changed.emit(bool(on))

    def _show_return_view(self) -> None:
        """Show what the return view's state asks for: the returns pane, or the predicted
        close with the naive forecast (and an ensemble's range of it) in the price pane."""
        returns = self.is_return_view() and bool(self._pred)
        plot = self._returns_pane().plot if returns else (
            self._returns.plot if self._returns is not None else None)
        if plot is not None and returns != plot.isVisible():  # relayouts only when it changes
            plot.setVisible(returns)
            # A hidden item keeps its place in a QGraphicsGridLayout (an empty band between
            # the candles and the volume): while hidden the pane gets no stretch, no height,
            # and no x link (a hidden linked pane still follows every pan step).
            self.graphics.ci.layout.setRowStretchFactor(1, _RETURNS_STRETCH if returns else 0)
            plot.setMaximumHeight(_QWIDGETSIZE_MAX if returns else 0.0)
            plot.setXLink(self.price_plot if returns else None)
        for item in (self.predicted_curve, self.naive_curve, self.predicted_band.fill,
                     self.predicted_band.low, self.predicted_band.high):
            item.setVisible(not returns)
        self._sync_price_legend()

    def _sync_price_legend(self) -> None:
        """The price legend lists what the price pane shows, always in the same order."""
        if not self._pred and not self._legend_entries:
            return  # hidden without predictions: filled when they come
        returns = self.is_return_view() and bool(self._pred)
        entries: list[tuple[Any, str]] = [(self.close_curve, "close")]
        if not returns:
            entries += [(self.predicted_curve, _PREDICTED_NAME), (self.naive_curve, _NAIVE_NAME)]
            if not self.predicted_band.is_empty():
                entries.append((self.predicted_band.legend_sample, _BAND_NAME))
        entries += [(self._legend_buy, "buy"), (self._legend_sell, "sell")]
        if [(id(item), name) for item, name in entries] == [
                (id(item), name) for item, name in self._legend_entries]:
            return
        self.price_legend.clear()
        for item, name in entries:
            self.price_legend.addItem(item, name)
        self._price_legend_row.fit()
        self._legend_entries = entries

    def _apply_overlay_style(self) -> None:
        neutral = (220, 220, 220, 170) if self._dark else (40, 40, 40, 170)
        self.close_curve.setPen(pg.mkPen(neutral, width=1))
        model = QtGui.QColor(MODEL_COLOR)
        model.setAlpha(220)
        self.predicted_curve.setPen(pg.mkPen(model, width=1.3))
        # the naive forecast: faint, so it sits beside the prediction without competing
        naive = (120, 200, 255, 120) if self._dark else (20, 100, 180, 120)
        self.naive_curve.setPen(pg.mkPen(naive, width=1))
        if self._returns is not None:
            self._returns.set_style(dark=self._dark)
        edge = pg.mkPen("#131722" if self._dark else "#ffffff", width=0.8)
        for markers in (self.buy_markers, self._legend_buy):
            markers.setPen(edge)
            markers.setBrush(pg.mkBrush(UP_COLOR))
        for markers in (self.sell_markers, self._legend_sell):
            markers.setPen(edge)
            markers.setBrush(pg.mkBrush(DOWN_COLOR))

    def _region_brush(self, name: str) -> QtGui.QBrush:
        r, g, b = SPLIT_COLORS.get(name, (128, 128, 128))
        return pg.mkBrush(r, g, b, _SPLIT_ALPHA[self._dark])

    def _make_region(self, name: str, lo: float, hi: float, *, label: bool) -> pg.LinearRegionItem:
        r, g, b = SPLIT_COLORS.get(name, (128, 128, 128))
        region = pg.LinearRegionItem(values=(lo, hi), orientation="vertical", movable=False,
                                     brush=self._region_brush(name),
                                     pen=pg.mkPen(r, g, b, 110, width=1))
        region.setProperty("split", name)
        region.setZValue(-10)  # behind the candles
        if label:
            text = pg.InfLineLabel(region.lines[0], text=name, position=0.97,
                                   anchors=[(0, 0), (0, 0)], color=self._label_color(name),
                                   fill=None)
            font = QtGui.QFont()
            font.setBold(True)
            text.setFont(font)
            self._labels.append((name, text))
        return region

    def _label_color(self, name: str) -> QtGui.QColor:
        color = QtGui.QColor(*SPLIT_COLORS.get(name, (128, 128, 128)))
        return color.lighter(135) if self._dark else color.darker(135)

    def _on_x_range_changed(self, *_args) -> None:
        self._update_y_ranges()

    def _update_y_ranges(self) -> None:
        series = self._series
        if series is None or series.n == 0:
            return
        x0, x1 = self.visible_range()
        prices = series.price_range(x0, x1)
        if prices is None:
            return
        lo, hi = prices
        s = series.visible_slice(x0, x1)
        returns = self._returns_shown()
        off = self._pred_offset  # the overlays' arrays start at this bar
        w = slice(max(s.start - off, 0), max(s.stop - off, 0))
        if self._pred_close.size and not returns:
            parts = [self._pred_close[w], self._naive_close[w]]
            if self._band_close.size:
                parts.append(self._band_close[:, s.start:s.stop])
            overlay = finite_range(parts)
            if overlay is not None:
                lo, hi = min(lo, overlay[0]), max(hi, overlay[1])
        if self._log_price:
            lo = math.log10(lo if lo > 0 else prices[0])
            hi = math.log10(hi if hi > 0 else prices[1])
        pad = (hi - lo) * _Y_PADDING or abs(hi) * 0.01 or 1.0
        # Extra room at the bottom and top for the buy / sell markers (drawn beyond the bars).
        marker_pad = pad if self._pred else 0.0
        _set_y_range(self.price_plot, lo - pad - marker_pad, hi + pad + marker_pad)
        if self._marker_x.size:
            # Markers are for reading trades, not for texture: hide them while they crowd.
            shown = (np.searchsorted(self._marker_x, x1, side="right")
                     - np.searchsorted(self._marker_x, x0))
            room = self.price_plot.getViewBox().width() / _MARKER_PX
            for markers in (self.buy_markers, self.sell_markers):
                markers.setVisible(bool(shown <= room))
        if returns and self._return_values.size:
            window = finite_range([self._return_values[:, w]])
            rlo = min(window[0], 0.0) if window else -1.0
            rhi = max(window[1], 0.0) if window else 1.0
            rpad = (rhi - rlo) * 0.08 or 0.1
            _set_y_range(self.returns_plot, rlo - rpad, rhi + rpad)
        if self._shown_volume:
            vmax = series.volume_max(x0, x1, size=max(1, self.volume.bucket_size))
            self.volume_plot.getViewBox().setYRange(0.0, vmax * 1.08 if vmax > 0 else 1.0,
                                                    padding=0.0)
        log = self.is_log_equity()
        equity = self.equity.y_range(s.start, s.stop, positive=log) or (1.0, 1.0)  # 1.0 centred
        elo, ehi = min(equity[0], 1.0), max(equity[1], 1.0)
        if log:
            elo, ehi = math.log10(elo), math.log10(ehi)
        epad = (ehi - elo) * 0.08 or (0.02 if log else 0.1)
        _set_y_range(self.equity_plot, elo - epad, ehi + epad)

    def _on_mouse_moved(self, event) -> None:
        if self._transients_hidden:  # an export is being drawn: apply the move after it
            self._deferred_mouse = event
            return
        pos = event[0]
        series = self._series
        if series is None or series.n == 0:
            return
        inside = None
        for plot in self._plots():
            if plot.isVisible() and plot.getViewBox().sceneBoundingRect().contains(pos):
                inside = plot
                break
        if inside is None:
            self._clear_crosshair()
            return
        point = inside.getViewBox().mapSceneToView(pos)
        index = min(max(round(point.x()), 0), series.n - 1)
        for line in self._vlines:
            line.setPos(index)
            line.setVisible(True)
        if inside is self.price_plot:
            self._hline.setPos(point.y())
            self._hline.setVisible(True)
        else:
            self._hline.setVisible(False)
        info = self.readout(index)
        self.readout_label.setText(_format_readout(info))
        self.hovered.emit(info)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._bump_revision()
        self._update_y_ranges()

    @property
    def revision(self) -> int:
        """A number that changes whenever the picture may have changed (the scene changed,
        the widget was resized), e.g. for an export drawn over several turns of the event loop
        to tell that it must start again."""
        return self._revision

    def _bump_revision(self, *_args: Any) -> None:
        self._revision += 1


def _set_y_range(plot: pg.PlotItem, lo: float, hi: float) -> None:
    """Show ``lo .. hi`` in ``plot``; a range that is not finite (values beyond float's
    range, e.g. equity compounded over a million bars) leaves the pane as it was."""
    if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
        plot.getViewBox().setYRange(lo, hi, padding=0.0)


def _fix_pane(plot: pg.PlotItem) -> None:
    """What every pane shares: no menu or buttons, a fixed left axis width, panned and
    zoomed in x only, y ranges set by the chart."""
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.getAxis("left").setWidth(68)
    vb = plot.getViewBox()
    vb.setMouseEnabled(x=True, y=False)
    vb.disableAutoRange()
    vb.setDefaultPadding(0.0)


class _ReturnsPane:
    """The return view's pane: the predicted and the actual return of each bar, in %, around
    a zero line, with its legend in a row above. Made hidden, with no height (see
    :meth:`PriceChart._show_return_view`)."""

    def __init__(self, bottom: pg.AxisItem) -> None:
        self.plot = plot = pg.PlotItem(axisItems={"bottom": bottom})
        plot.hide()
        plot.setMaximumHeight(0.0)
        left = plot.getAxis("left")
        left.setLabel("return %")
        left.setStyle(maxTickLevel=0)  # a short pane
        self.zero_line = pg.InfiniteLine(pos=0.0, angle=0, movable=False)
        plot.addItem(self.zero_line, ignoreBounds=True)
        self.actual = _overlay_curve()
        self.predicted = _overlay_curve()
        self.predicted.setZValue(6)  # the forecast on top
        for curve in (self.actual, self.predicted):
            add_decimated(plot, curve)
        self.legend_row = LegendRow(plot)  # above the curves
        self.legend = self.legend_row.legend
        self.legend_row.add(self.predicted, "predicted return")
        self.legend_row.add(self.actual, "actual return")

    def set_lines(self, lines: tuple[tuple[np.ndarray, np.ndarray], ...] | None) -> None:
        """Draw the predicted and the actual return (``(x, y)`` each; None: no lines)."""
        if lines is None:
            self.predicted.setData([], [])
            self.actual.setData([], [])
        else:
            self.predicted.setData(*lines[0])
            self.actual.setData(*lines[1])

    def set_style(self, *, dark: bool) -> None:
        # 1 px: a wider pen goes through Qt's stroker, ~10x slower on a jagged series
        self.predicted.setPen(pg.mkPen(MODEL_COLOR, width=1))
        # what happened, fainter than the forecast drawn over it (zoomed out it is a dense band)
        actual = (220, 220, 220, 110) if dark else (40, 40, 40, 110)
        self.actual.setPen(pg.mkPen(actual, width=1))
        self.zero_line.setPen(pg.mkPen((128, 128, 128), width=1,
                                       style=QtCore.Qt.PenStyle.DashLine))


class _Graphics(pg.GraphicsLayoutWidget):
    """The chart's plots; says when the mouse leaves them."""

    mouse_left = Signal()

    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        self.mouse_left.emit()


class _TransientState:
    """Whether the chart's transient items (the crosshair) are left out of the picture."""

    hidden = False


class _CrosshairLine(pg.InfiniteLine):
    """A crosshair line that paints nothing while its chart hides its transient items (an
    export is drawn), without a visibility change that would alter the scene."""

    def __init__(self, state: _TransientState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._state = state

    def paint(self, p, *args) -> None:
        if self._state.hidden:
            return
        super().paint(p, *args)


def _overlay_curve() -> pg.PlotDataItem:
    """A line over the bars (added with :func:`add_decimated`, so it follows the chart's
    level of detail)."""
    curve = line_item()
    curve.setZValue(5)
    return curve


def _format_readout(info: dict[str, Any]) -> str:
    if not info:
        return ""
    date = info[INDEX_NAME]
    when = f"{date:%Y-%m-%d %H:%M}" if (date.hour or date.minute) else f"{date:%Y-%m-%d}"
    parts = [when]
    for key, short in ((OPEN, "O"), (HIGH, "H"), (LOW, "L"), (CLOSE, "C")):
        parts.append(f"{short} {_price(info[key])}")
    # the row decided at this bar's close: a forecast of the next bar, and what it did
    if PREDICTED_RETURN in info:
        parts.append(f"next bar: pred {info[PREDICTED_RETURN] * 100:+.2f}%")
    if ACTUAL_RETURN in info:
        parts.append(f"actual {info[ACTUAL_RETURN] * 100:+.2f}%")
    if POSITION in info:
        parts.append(f"pos {info[POSITION]:g}")
    return "   ".join(parts)


def _price(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def _without_test(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without its test-split rows (a run whose test split stays hidden)."""
    return frame[frame[SPLIT].to_numpy() != TEST]
