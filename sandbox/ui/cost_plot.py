"""The cost-sensitivity plot of the Metrics tab: net total return against the trading cost.

It draws a split's ``significance["cost_sensitivity"]`` (:mod:`sandbox.significance`): the
model's and buy & hold's net total return at each cost from 0 to 50 bps a unit of position
change, a dashed vertical line at the model's break-even cost (its net total return falls to
0) and a dotted one where it falls to buy & hold's, each labelled, and a line at the run's
own cost. A line beyond the costs drawn is left out (the note under the plot names it). With
nothing to draw (results saved before the tests existed, a split without trading rows) the
widget hides itself.

The plot is a picture, not a control: the mouse neither pans nor zooms it, and the wheel
scrolls the Metrics tab it sits in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from sandbox.ui.charts.equity import HOLD_COLOR, MODEL_COLOR
from sandbox.ui.wording import cost_text, finite_number

__all__ = ["CostPlot", "curve_points"]

DARK_BACKGROUND = "#131722"  # the Loss tab's and the price chart's dark background
BREAK_EVEN_COLOR = "#ef5350"  # red: where the gain is gone
VS_HOLD_COLOR = "#9e9e9e"
RUN_COST_COLOR = "#66bb6a"  # green: this run
PLOT_HEIGHT = 210


def curve_points(costs: Mapping[str, Any], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(cost in bps, net total return in %) of curve ``key`` (``"total_return"`` or
    ``"buy_and_hold_total_return"``); NaN where a figure is None. Empty when the lists are
    missing or of different lengths."""
    x = costs.get("costs_bps") or []
    y = costs.get(key) or []
    if not x or len(x) != len(y):
        return np.empty(0), np.empty(0)
    xs = np.array([np.nan if finite_number(v) is None else float(v) for v in x])
    ys = np.array([np.nan if finite_number(v) is None else float(v) * 100.0 for v in y])
    keep = np.isfinite(xs)
    return xs[keep], ys[keep]


class _Picture(pg.PlotWidget):
    """A PlotWidget that hands the wheel to the scroll area around it (pyqtgraph's view
    would take it even with the mouse disabled)."""

    def wheelEvent(self, event: Any) -> None:
        parent = self.parentWidget()
        while parent is not None and not isinstance(parent, QtWidgets.QAbstractScrollArea):
            parent = parent.parentWidget()
        if parent is None:
            event.ignore()
            return
        QtWidgets.QApplication.sendEvent(parent.verticalScrollBar(), event)


class CostPlot(QtWidgets.QWidget):
    """Net total return vs cost for the model and buy & hold, break-even and run cost marked.

    Parameters
    ----------
    parent : QWidget, optional
        Qt parent.
    dark : bool
        Dark background (as the window's dark chart); :meth:`set_dark` switches it.
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, dark: bool = True) -> None:
        super().__init__(parent)
        self.title = QtWidgets.QLabel("Net total return against the trading cost")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.plot_widget = _Picture()
        self.plot_widget.setMinimumHeight(PLOT_HEIGHT)
        self.plot_widget.setMaximumHeight(PLOT_HEIGHT)
        self.plot_widget.setToolTip(
            "The model's and buy & hold's net total return on the split shown if every unit "
            "of position change cost this many basis points (the same positions, traded once "
            "at zero cost and charged per change)")
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "cost per unit of position change (bps)")
        self.plot.setLabel("left", "net total return (%)")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.legend = self.plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.zero_line = pg.InfiniteLine(pos=0.0, angle=0, movable=False,
                                         pen=pg.mkPen((128, 128, 128), width=1))
        self.plot.addItem(self.zero_line, ignoreBounds=True)
        self.model_curve = self.plot.plot(pen=pg.mkPen(MODEL_COLOR, width=2), name="model")
        self.hold_curve = self.plot.plot(pen=pg.mkPen(HOLD_COLOR, width=1.5), name="buy & hold")
        # labels at different heights (the run's cost near the foot), on the background's
        # colour so that the curves behind them do not strike them through
        self.break_even_line = self._vline(BREAK_EVEN_COLOR, QtCore.Qt.PenStyle.DashLine, 0.9)
        self.vs_hold_line = self._vline(VS_HOLD_COLOR, QtCore.Qt.PenStyle.DotLine, 0.7)
        self.run_cost_line = self._vline(RUN_COST_COLOR, QtCore.Qt.PenStyle.SolidLine, 0.1)
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        self.note.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.note.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QtWidgets.QVBoxLayout(self)
        box.setContentsMargins(0, 6, 0, 0)
        box.addWidget(self.title)
        box.addWidget(self.plot_widget)
        box.addWidget(self.note)
        self.set_dark(dark)
        self.clear()

    def _vline(self, color: str, style: QtCore.Qt.PenStyle, where: float) -> pg.InfiniteLine:
        line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(color, width=1.5,
                                                                     style=style),
                               label="", labelOpts={"position": where, "color": color,
                                                    "anchors": [(0, 0.5), (0, 0.5)]})
        line.label.setColor(color)
        self.plot.addItem(line, ignoreBounds=True)
        return line

    # -- public ------------------------------------------------------------------------------
    def clear(self) -> None:
        """Draw nothing and hide."""
        self.model_curve.setData([], [])
        self.hold_curve.setData([], [])
        for line in (self.break_even_line, self.vs_hold_line, self.run_cost_line):
            line.hide()
        self.note.setText("")
        self.hide()

    def set_costs(self, costs: Mapping[str, Any] | None, *, model_label: str = "model") -> bool:
        """Draw a ``cost_sensitivity`` object; hide when it is missing or has no finite point
        (returns whether the plot is shown). ``model_label`` names the model's curve."""
        self.clear()
        if not isinstance(costs, Mapping):
            return False
        mx, my = curve_points(costs, "total_return")
        hx, hy = curve_points(costs, "buy_and_hold_total_return")
        if not (np.isfinite(my).any() or np.isfinite(hy).any()):
            return False
        self.model_curve.setData(mx, my, connect="finite")
        self.hold_curve.setData(hx, hy, connect="finite")
        self._rename(self.model_curve, model_label)
        top = float(np.nanmax(np.r_[mx, hx])) if mx.size or hx.size else 0.0
        self._place(self.break_even_line, costs.get("break_even_bps"), top, "break-even")
        self._place(self.vs_hold_line, costs.get("break_even_vs_buy_and_hold_bps"), top,
                    "= buy & hold")
        self._place(self.run_cost_line, costs.get("run_cost_bps"), top, "this run")
        self.plot.setXRange(0.0, max(top, 1.0), padding=0.02)
        self.plot.enableAutoRange(axis="y")
        self.note.setText(cost_text(costs))
        self.show()
        return True

    def set_dark(self, dark: bool) -> None:
        """Dark or light background, as the window's chart."""
        background = DARK_BACKGROUND if dark else "#ffffff"
        self.plot_widget.setBackground(background)
        for line in (self.break_even_line, self.vs_hold_line, self.run_cost_line):
            line.label.fill = pg.mkBrush(background)
            line.label.update()

    def lines(self) -> dict[str, float | None]:
        """The x of each vertical line shown (None: hidden), for tests and screen readers."""
        return {name: (float(line.value()) if line.isVisible() else None)
                for name, line in (("break_even", self.break_even_line),
                                   ("vs_buy_and_hold", self.vs_hold_line),
                                   ("run_cost", self.run_cost_line))}

    # -- internals ---------------------------------------------------------------------------
    def _place(self, line: pg.InfiniteLine, value: Any, top: float, what: str) -> None:
        x = finite_number(value)
        if x is None or x < 0 or x > top or not math.isfinite(top):
            line.hide()
            return
        line.setValue(x)
        line.show()  # first: a hidden label does not take a new text
        line.label.setFormat(f"{what} {x:,.1f} bps" if what != "this run"
                             else f"{what} {x:g} bps")

    def _rename(self, curve: pg.PlotDataItem, name: str) -> None:
        curve.opts["name"] = name
        for sample, label in self.legend.items:
            if sample.item is curve:
                label.setText(name)
