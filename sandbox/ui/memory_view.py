"""The Memory tab: how far back a network's gradients reach, on the shown model and on a toy task.

Two halves, each computed in the app's torch process (:mod:`sandbox.engine`) by
:mod:`sandbox.lab`, through :class:`~sandbox.ui.workers.StreamWorker` on the controller's
worker pool:

- **Gradient reach of the shown model** (:meth:`MemoryView.show_run`): the mean absolute
  gradient of the prediction with respect to each bar of the input window,
  ``|d y_hat / d x[t - k]|``, over the run's validation windows, as a curve (log scale) per
  network kind shown since the tab was made (the newest run of each kind), and as a heat map
  of lag against feature for the run shown.
- **The memory task** (Run): every kind chosen, at an equal parameter budget, trained to
  recall the value marked ``k`` steps before the last; final error against lag per kind, and
  the gradient norm reaching the marked step at initialisation (dashed) and after training
  (solid), both on log scales. Cells arrive one by one while it runs; Stop ends it between
  two optimiser steps and keeps the cells already done.

The text under each half is computed from the numbers drawn (which kinds learned which lags,
where a curve falls below a tenth of its start); it says what the plot shows, not what it
was expected to show. Qt and pyqtgraph only: torch stays in the torch process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from sandbox import constants as C
from sandbox import lab
from sandbox.errors import ConfigError
from sandbox.ui.layout import vertical_scroll
from sandbox.ui.workers import StreamWorker

__all__ = ["KIND_COLORS", "LEARNED_MSE", "MemoryView", "memory_reading", "reach_reading"]

Signal = QtCore.Signal

DARK_BACKGROUND = "#131722"
KIND_COLORS: dict[str, str] = {C.RNN: "#ef5350", C.GRU: "#ffa726", C.LSTM: "#42a5f5",
                               C.TRANSFORMER: "#ab47bc"}
KIND_NAMES: dict[str, str] = {C.RNN: "RNN", C.GRU: "GRU", C.LSTM: "LSTM",
                              C.TRANSFORMER: "Transformer"}
#: a cell "learned" its lag when its held-out error is below this (predicting 0 scores 1.0)
LEARNED_MSE = 0.1
PLOT_HEIGHT = 250
#: the smallest gradient drawn on a log axis (an exact 0 is an underflow: left out)
TINY = 1e-38


def _name(kind: str) -> str:
    return KIND_NAMES.get(kind, kind)


def _positive(values: np.ndarray) -> np.ndarray:
    """``values`` with what a log axis cannot show (0, negative, NaN) as NaN."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(values) & (values > TINY), values, np.nan)


def _lag_list(lags: Sequence[int]) -> str:
    """5, 10, 20 -> "5, 10 and 20"."""
    items = [str(int(v)) for v in lags]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --- reading the plots -----------------------------------------------------------------------


def memory_reading(result: lab.MemoryResult) -> str:
    """What the memory task's plots show, computed from its cells.

    Per kind: the lags it learned (held-out error below :data:`LEARNED_MSE`) and those it did
    not, with the errors; then, at the lag that tells the kinds apart best (the longest lag
    some kind learned and another did not, else the longest), the gradient reaching the
    marked step after training, largest first.
    """
    if not result.cells:
        return ""
    lines = []
    for kind in result.kinds:
        lags, mse = result.series(kind, "final_mse")
        learned, failed = lags[mse < LEARNED_MSE], lags[~(mse < LEARNED_MSE)]
        name = _name(kind)
        if not failed.size:
            lines.append(f"{name} learned every lag shown (error {mse.max():.2g} or less, "
                         "against 1.0 for predicting 0).")
        elif not learned.size:
            lines.append(f"{name} learned none of the lags shown: its error stays "
                         f"{_span(mse)}, about that of predicting 0 (1.0).")
        else:
            bad = mse[~(mse < LEARNED_MSE)]
            lines.append(f"{name} learned {_lags_word(learned)} {_lag_list(learned)} (error below "
                         f"{LEARNED_MSE:g}) but not {_lag_list(failed)} (error {_span(bad)}).")
    lag = _telling_lag(result)
    cells = sorted((c for c in result.cells if c.lag == lag),
                   key=lambda c: -c.grad_norm_trained)
    if len(cells) > 1:
        parts = [f"{_name(c.kind)} {_grad(c.grad_norm_trained)}" for c in cells]
        top, bottom = cells[0].grad_norm_trained, cells[-1].grad_norm_trained
        ratio = (f"; the largest is {top / bottom:.2g} times the smallest" if bottom > 0
                 and top > 0 else "")
        lines.append(f"At lag {lag}, the gradient reaching the marked step after training: "
                     + ", ".join(parts) + ratio + ".")
        init = [c.grad_norm_init for c in cells]
        lines.append(f"Before training it was {_grad(min(init))} to {_grad(max(init))} there.")
    return " ".join(lines)


def _lags_word(lags: Sequence[int]) -> str:
    return "lag" if len(lags) == 1 else "lags"


def _span(values: np.ndarray) -> str:
    """"0.96" or "0.96-1.1": the range of ``values`` at two significant digits."""
    lo, hi = f"{np.nanmin(values):.2g}", f"{np.nanmax(values):.2g}"
    return lo if lo == hi else f"{lo}-{hi}"


def _grad(value: float) -> str:
    return "0 (below the smallest float)" if value == 0 else f"{value:.2g}"


def _telling_lag(result: lab.MemoryResult) -> int:
    """The longest lag some kind learned and another did not; else the longest lag."""
    for lag in sorted(result.lags, reverse=True):
        learned = [c.final_mse < LEARNED_MSE for c in result.cells if c.lag == lag]
        if any(learned) and not all(learned):
            return lag
    return max(result.lags)


def reach_reading(reaches: dict[str, lab.ReachResult], shown: str | None) -> str:
    """What the reach plots show: for the shown run's kind, the gradient at the last bar, the
    lags where it falls below 10% and 1% of it, and the feature that moves the prediction
    most; then, with several kinds drawn, which one keeps the largest share of its gradient
    at the window's first bar."""
    if shown is None or shown not in reaches:
        return ""
    r = reaches[shown]
    curve = r.mean_abs_grad
    width = len(curve)
    text = (f"{_name(shown)} ({r.label}, {r.n_windows:,} "
            f"{'validation' if r.split == C.VAL else ''} windows of {width} bars): the "
            f"prediction moves {curve[0]:.2g} per unit of the last bar's scaled features")
    marks = []
    for fraction in (0.1, 0.01):
        lag = r.lag_below(fraction)
        if lag is not None:
            marks.append(f"below {fraction:.0%} of that from {lag} bar{'s' if lag != 1 else ''} "
                         "back")
    text += ("; " + " and ".join(marks) if marks
             else f"; it stays above 10% of that over the whole window ("
                  f"{curve[-1] / curve[0]:.0%} at the first bar)" if curve[0] > 0 else "")
    text = text.replace("  ", " ") + "."
    if r.per_feature.size:
        f = int(np.argmax(r.per_feature.sum(axis=0)))
        text += (" The feature with the largest gradient summed over the window: "
                 f"{r.feature_names[f]}.")
    if len(reaches) > 1:
        kept = {k: (v.mean_abs_grad[-1] / v.mean_abs_grad[0]) if v.mean_abs_grad[0] > 0 else 0.0
                for k, v in reaches.items()}
        order = sorted(kept, key=lambda k: -kept[k])
        text += (" At the window's first bar, as a share of the last bar's gradient: "
                 + ", ".join(f"{_name(k)} {kept[k]:.2g}" for k in order) + ".")
    return text


# --- the widget --------------------------------------------------------------------------------


class _Plot(pg.PlotWidget):
    """A fixed picture (no pan or zoom) with a legend; the wheel scrolls the tab."""

    def __init__(self, bottom: str, left: str, *, log_x: bool = False,
                 log_y: bool = True) -> None:
        super().__init__()
        self.setFixedHeight(PLOT_HEIGHT)
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        item.setLabel("bottom", bottom)
        item.setLabel("left", left)
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLogMode(x=log_x, y=log_y)
        for side in ("left", "bottom"):
            item.getAxis(side).enableAutoSIPrefix(False)

    def wheelEvent(self, event: Any) -> None:
        event.ignore()


class MemoryView(QtWidgets.QWidget):
    """The Memory tab. The lab's work runs in the torch process through ``controller.pool``.

    Parameters
    ----------
    controller : RunController
        Its worker pool runs the jobs; its state says when the torch process is free.
    parent : QWidget, optional

    Signals
    -------
    busy_changed(bool)
        A job of the tab (the memory task or a reach) started (True) or ended (False).
    memory_done(object)
        The memory task ended with all its cells (a :class:`sandbox.lab.MemoryResult`).
    reach_done(object)
        The reach of a shown run was computed (a :class:`sandbox.lab.ReachResult`).
    """

    busy_changed = Signal(bool)
    memory_done = Signal(object)
    reach_done = Signal(object)

    def __init__(self, controller: Any, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._closing = False
        self._memory_worker: StreamWorker | None = None
        self._reach_worker: StreamWorker | None = None
        self._pending_run: Any = None  # a shown run whose reach waits for a free moment
        self._shown_kind: str | None = None
        self.reaches: dict[str, lab.ReachResult] = {}  # kind -> the newest reach of that kind
        self.memory = lab.MemoryResult(cells=[])
        self._planned = 0
        self._build()
        for name in ("run_started", "run_ended", "sweep_started", "sweep_ended",
                     "load_started", "load_ended", "busy_changed"):
            signal = getattr(controller, name, None)
            if signal is not None:
                signal.connect(self._sync)
        self._sync()

    # -- building --------------------------------------------------------------------------------
    def _build(self) -> None:
        body = QtWidgets.QWidget()
        box = QtWidgets.QVBoxLayout(body)
        box.addWidget(self._title("Gradient reach of the shown model"))
        self.reach_status = self._note("Train a model (Seeds 1) or load a saved one: its "
                                       "gradient reach is measured here.")
        box.addWidget(self.reach_status)
        row = QtWidgets.QHBoxLayout()
        self.reach_plot = _Plot("bars back from the last bar of the window (k)",
                                "mean |d y_hat / d x[t-k]|")
        self.reach_plot.setToolTip(
            "How much the prediction moves per unit change of each bar of its input window "
            "(scaled features, averaged over them and over the validation windows); one curve "
            "per network kind, the newest run of each")
        self.heat_plot = pg.PlotWidget()
        self.heat_plot.setFixedHeight(PLOT_HEIGHT)
        heat = self.heat_plot.getPlotItem()
        heat.setMenuEnabled(False)
        heat.setMouseEnabled(x=False, y=False)
        heat.hideButtons()
        heat.setLabel("bottom", "bars back (k)")
        self.heat_image = pg.ImageItem()
        self.heat_image.setColorMap(pg.colormap.get("viridis"))
        heat.addItem(self.heat_image)
        self.heat_bar = pg.ColorBarItem(values=(-6, 0), colorMap=pg.colormap.get("viridis"),
                                        label="log10 mean |dy/dx|", interactive=False)
        self.heat_bar.setImageItem(self.heat_image, insert_in=heat)
        self.heat_plot.setToolTip("The same gradient per feature (rows) and bar (columns) for "
                                  "the shown run, on a log colour scale")
        row.addWidget(self.reach_plot, 3)
        row.addWidget(self.heat_plot, 2)
        self.reach_legend = self._legend("")
        box.addWidget(self.reach_legend)
        box.addLayout(row)
        self.reach_text = self._note("")
        box.addWidget(self.reach_text)

        box.addSpacing(12)
        box.addWidget(self._title("The memory task: remember a value from k steps ago"))
        box.addWidget(self._note(
            "Each input sequence is noise with one marked step; the target is the value at that "
            f"step, k steps before the last. Every network has about {self._budget_words()} "
            "parameters and is trained on fresh sequences with the same seed; the error is "
            "measured on held-out ones (predicting 0 scores 1.0)."))
        box.addLayout(self._controls())
        self.memory_legend = self._legend(" \u2003dashed: at initialisation, solid: after "
                                          "training (right)")
        box.addWidget(self.memory_legend)
        plots = QtWidgets.QHBoxLayout()
        self.error_plot = _Plot("lag k", "held-out error (mse)", log_x=True)
        self.grad_plot = _Plot("lag k", "|d y_hat / d x[t-k]|", log_x=True)
        self.grad_plot.setToolTip("The gradient of the prediction reaching the marked step: "
                                  "dashed at initialisation, solid after training")
        plots.addWidget(self.error_plot)
        plots.addWidget(self.grad_plot)
        box.addLayout(plots)
        self.memory_text = self._note("")
        box.addWidget(self.memory_text)
        box.addStretch(1)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(vertical_scroll(body))
        self.error_curves: dict[str, pg.PlotDataItem] = {}
        self.grad_curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self.reach_curves: dict[str, pg.PlotDataItem] = {}
        self.set_dark(True)

    @staticmethod
    def _budget_words() -> str:
        from sandbox import sizes

        return f"{sizes.count_parameters(C.LSTM, lab.BUDGET_LSTM_HIDDEN, lab.LAYERS, 2):,}"

    @staticmethod
    def _title(text: str) -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(text)
        font = label.font()
        font.setBold(True)
        label.setFont(font)
        return label

    @staticmethod
    def _legend(tail: str) -> QtWidgets.QLabel:
        """A row of coloured kind names (the plots' shared legend), then ``tail``."""
        label = QtWidgets.QLabel()
        label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        label.setProperty("tail", tail)
        label.hide()
        return label

    @staticmethod
    def _show_legend(label: QtWidgets.QLabel, kinds: Sequence[str]) -> None:
        import html

        parts = [f'<span style="color:{KIND_COLORS.get(k, "#888")}">\u25a0 {_name(k)}</span>'
                 for k in kinds]
        tail = html.escape(str(label.property("tail") or ""))
        label.setText("\u2003".join(parts) + (tail if parts else ""))
        label.setVisible(bool(parts))

    @staticmethod
    def _note(text: str) -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(text)
        label.setWordWrap(True)
        label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def _controls(self) -> QtWidgets.QLayout:
        row = QtWidgets.QHBoxLayout()
        self.kind_boxes: dict[str, QtWidgets.QCheckBox] = {}
        for kind in lab.KINDS:
            box = QtWidgets.QCheckBox(_name(kind))
            box.setChecked(True)
            box.toggled.connect(self._sync)
            self.kind_boxes[kind] = box
            row.addWidget(box)
        row.addSpacing(8)
        row.addWidget(QtWidgets.QLabel("Lags"))
        self.lags_edit = QtWidgets.QLineEdit(",".join(str(v) for v in lab.DEFAULT_LAGS))
        self.lags_edit.setToolTip(f"Comma-separated lags, each 1 to {lab.MAX_LAG}")
        self.lags_edit.setMaximumWidth(130)
        self.lags_edit.textChanged.connect(self._sync)
        row.addWidget(self.lags_edit)
        row.addWidget(QtWidgets.QLabel("Steps"))
        self.steps_spin = QtWidgets.QSpinBox()
        self.steps_spin.setRange(1, 100_000)
        self.steps_spin.setSingleStep(100)
        self.steps_spin.setValue(lab.STEPS)
        self.steps_spin.setToolTip("Optimiser steps per network and lag (32 fresh sequences "
                                   "each)")
        row.addWidget(self.steps_spin)
        row.addWidget(QtWidgets.QLabel("Seed"))
        self.seed_spin = QtWidgets.QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        row.addWidget(self.seed_spin)
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.clicked.connect(self._on_run_clicked)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        row.addWidget(self.run_button)
        row.addWidget(self.stop_button)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(160)
        row.addWidget(self.progress)
        self.progress_label = QtWidgets.QLabel("")
        row.addWidget(self.progress_label, 1)
        return row

    def set_dark(self, dark: bool) -> None:
        """Dark or light plot backgrounds, as the window's chart."""
        for w in (self.reach_plot, self.heat_plot, self.error_plot, self.grad_plot):
            w.setBackground(DARK_BACKGROUND if dark else "#ffffff")

    # -- state -----------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """The memory task runs."""
        return self._memory_worker is not None

    def is_busy(self) -> bool:
        """A job of the tab runs (the memory task or a reach): it holds the torch process."""
        return self._memory_worker is not None or self._reach_worker is not None

    def chosen_kinds(self) -> list[str]:
        return [k for k, box in self.kind_boxes.items() if box.isChecked()]

    def _why_not(self) -> str:
        """Why Run is disabled now ("" when it may run)."""
        if self._closing:
            return "closing"
        if self.is_running():
            return "it is running"
        if not self.chosen_kinds():
            return "choose at least one network"
        try:
            lab.parse_lags(self.lags_edit.text())
        except ConfigError as exc:
            return str(exc).replace("--lags ", "Lags ")
        if not self.controller.is_idle() or self._reach_worker is not None:
            return "the app is training or running another job"
        return ""

    def _sync(self, *_args: Any) -> None:
        why = self._why_not()
        self.run_button.setEnabled(not why)
        self.run_button.setToolTip("Train every chosen network at every lag" +
                                   (f" (not now: {why})" if why else ""))
        self.stop_button.setEnabled(self.is_running())
        if self._pending_run is not None and self._can_reach_now():
            self._start_reach(self._pending_run)

    # -- the memory task -----------------------------------------------------------------------
    def run_experiment(self, kinds: Sequence[str] | None = None,
                       lags: Sequence[int] | str | None = None, *, steps: int | None = None,
                       seed: int | None = None) -> bool:
        """Start the memory task (arguments default to the form's); False when it cannot run
        now (see the Run button's tooltip)."""
        if kinds is not None:
            for kind, box in self.kind_boxes.items():
                box.setChecked(kind in kinds)
        if lags is not None:
            self.lags_edit.setText(lags if isinstance(lags, str) else ",".join(map(str, lags)))
        if steps is not None:
            self.steps_spin.setValue(steps)
        if seed is not None:
            self.seed_spin.setValue(seed)
        if self._why_not():
            return False
        kinds_list, lag_list = self.chosen_kinds(), lab.parse_lags(self.lags_edit.text())
        self.memory = lab.MemoryResult(cells=[], seed=self.seed_spin.value(),
                                       steps=self.steps_spin.value())
        self._planned = len(kinds_list) * len(lag_list)
        self._draw_memory()
        worker = StreamWorker(lab.run_memory, kinds_list, lag_list,
                              seed=self.seed_spin.value(), steps=self.steps_spin.value(),
                              result_arg="on_progress", remote=True)
        worker.streamed.connect(self._on_memory_progress)
        worker.returned.connect(self._on_memory_returned)
        worker.failed.connect(self._on_memory_failed)
        worker.cancelled.connect(self._on_memory_cancelled)
        worker.finished.connect(self._on_memory_finished)
        self._memory_worker = worker
        self.progress.setValue(0)
        self.progress_label.setText("Starting...")
        self.controller.pool.start(worker, name="sandbox-memory")
        self._busy()
        return True

    @QtCore.Slot()
    def _on_run_clicked(self) -> None:
        self.run_experiment()

    @QtCore.Slot(object)
    def _on_memory_progress(self, p: lab.MemoryProgress) -> None:
        if self._memory_worker is None:
            return
        self.progress.setValue(round(1000 * p.fraction))
        loss = "" if math.isnan(p.loss) else f", loss {p.loss:.3g}"
        self.progress_label.setText(f"{_name(p.kind)} at lag {p.lag} ({p.index + 1} of "
                                    f"{p.total}): step {p.step:,} of {p.steps:,}{loss}")
        if p.cell is not None:
            self.memory.cells.append(p.cell)
            self._draw_memory()

    @QtCore.Slot(object)
    def _on_memory_returned(self, result: lab.MemoryResult) -> None:
        self.memory = result
        self._draw_memory()
        self.progress.setValue(1000)
        self.progress_label.setText(f"Done: {len(result.cells)} networks trained in "
                                    f"{result.seconds:.0f} s")
        self.memory_done.emit(result)

    @QtCore.Slot(object)
    def _on_memory_failed(self, failure: Any) -> None:
        self.progress_label.setText(f"Failed: {failure.message}")

    @QtCore.Slot()
    def _on_memory_cancelled(self) -> None:
        self.progress_label.setText(f"Stopped: {len(self.memory.cells)} of {self._planned} "
                                    "cells done (shown)")

    @QtCore.Slot()
    def _on_memory_finished(self) -> None:
        self._memory_worker = None
        self._busy()

    def show_memory(self, result: lab.MemoryResult) -> None:
        """Draw a finished memory task (e.g. :func:`sandbox.lab.read_memory` of a saved
        ``memory.csv``) without running it."""
        if not self.is_running():
            self.memory = result
            self._draw_memory()

    def _draw_memory(self) -> None:
        result = self.memory
        for curve in [*self.error_curves.values(), *self.grad_curves.values()]:
            curve.setData([], [])
        for kind in result.kinds:
            color = KIND_COLORS.get(kind, "#cccccc")
            lags, mse = result.series(kind, "final_mse")
            self._curve(self.error_plot, self.error_curves, kind, color, _name(kind)).setData(
                lags, _positive(mse), connect="finite")
            for column, style, label in (("grad_norm_init", QtCore.Qt.PenStyle.DashLine,
                                          " (init)"),
                                         ("grad_norm_trained", QtCore.Qt.PenStyle.SolidLine, "")):
                _, values = result.series(kind, column)
                self._curve(self.grad_plot, self.grad_curves, (kind, column), color,
                            _name(kind) + label, style).setData(lags, _positive(values),
                                                                connect="finite")
        self._show_legend(self.memory_legend, result.kinds)
        ticks = [[(math.log10(lag), str(lag)) for lag in result.lags]] if result.lags else None
        for plot in (self.error_plot, self.grad_plot):
            plot.getPlotItem().getAxis("bottom").setTicks(ticks)
        self.memory_text.setText(memory_reading(result))

    @staticmethod
    def _curve(plot: _Plot, curves: dict, key: Any, color: str, name: str,
               style: QtCore.Qt.PenStyle = QtCore.Qt.PenStyle.SolidLine) -> pg.PlotDataItem:
        curve = curves.get(key)
        if curve is None:
            curve = plot.getPlotItem().plot(pen=pg.mkPen(color, width=2, style=style),
                                            symbol="o", symbolSize=5, symbolBrush=color,
                                            symbolPen=None, name=name)
            curves[key] = curve
        return curve

    # -- gradient reach of the shown run -------------------------------------------------------
    def show_run(self, result: Any) -> None:
        """Measure the gradient reach of the run now shown (a trained run or a saved model's
        predictions; an ensemble keeps no single model and is said so). Runs at once when the
        torch process is free, else as soon as it is."""
        if self._closing:
            return
        if result is None or not bool(getattr(result, "can_save", False)):
            self._pending_run = None
            self.reach_status.show()
            self.reach_status.setText("The shown run keeps no single model (an ensemble "
                                      "averages several): its gradient reach is not measured.")
            return
        self._pending_run = result
        self.reach_status.show()
        if self._can_reach_now():
            self._start_reach(result)
        else:
            self.reach_status.setText("The shown model's gradient reach is measured once the "
                                      "app is free.")

    def _can_reach_now(self) -> bool:
        return (not self._closing and self._reach_worker is None and self._memory_worker is None
                and not self.controller.is_training() and not self.controller.is_sweeping()
                and not getattr(self.controller, "is_auditing", lambda: False)())

    def _start_reach(self, result: Any) -> None:
        self._pending_run = None
        worker = StreamWorker(lab.reach_of, result, result_arg="on_progress", remote=True)
        worker.returned.connect(self._on_reach_returned)
        worker.failed.connect(self._on_reach_failed)
        worker.finished.connect(self._on_reach_finished)
        self._reach_worker = worker
        self.reach_status.setText("Measuring the shown model's gradient reach...")
        self.controller.pool.start(worker, name="sandbox-reach")
        self._busy()

    @QtCore.Slot(object)
    def _on_reach_returned(self, reach: lab.ReachResult) -> None:
        self.reaches[reach.kind] = reach
        self._shown_kind = reach.kind
        self.reach_status.setText("")
        self.reach_status.hide()
        self._draw_reach()
        self.reach_done.emit(reach)

    @QtCore.Slot(object)
    def _on_reach_failed(self, failure: Any) -> None:
        self.reach_status.show()
        self.reach_status.setText(f"The gradient reach could not be measured: {failure.message}")

    @QtCore.Slot()
    def _on_reach_finished(self) -> None:
        self._reach_worker = None
        self._busy()

    def _draw_reach(self) -> None:
        for kind, reach in self.reaches.items():
            color = KIND_COLORS.get(kind, "#cccccc")
            curve = self._curve(self.reach_plot, self.reach_curves, kind, color, _name(kind))
            curve.setData(reach.lags.astype(np.float64), _positive(reach.mean_abs_grad),
                          connect="finite")
        self._show_legend(self.reach_legend, list(self.reaches))
        shown = self.reaches.get(self._shown_kind) if self._shown_kind else None
        if shown is not None:
            logs = np.log10(np.maximum(shown.per_feature, TINY))
            finite = shown.per_feature > TINY
            lo = float(logs[finite].min()) if finite.any() else -6.0
            hi = float(logs[finite].max()) if finite.any() else 0.0
            self.heat_image.setImage(logs, autoLevels=False)
            # pixel centres on whole lags: the column of lag k spans k - 0.5 .. k + 0.5
            self.heat_image.setRect(QtCore.QRectF(-0.5, 0.0, logs.shape[0], logs.shape[1]))
            self.heat_bar.setLevels((lo, max(hi, lo + 1e-6)))
            heat = self.heat_plot.getPlotItem()
            heat.getAxis("left").setTicks([[(i + 0.5, name) for i, name in
                                            enumerate(shown.feature_names)]])
            heat.setTitle(f"{_name(shown.kind)}, per feature", size="9pt")
        self.reach_text.setText(reach_reading(self.reaches, self._shown_kind))

    # -- stopping ----------------------------------------------------------------------------------
    def stop(self) -> bool:
        """Stop the memory task and a reach being measured (they end a moment later, between
        two optimiser steps or batches); True when something was running."""
        running = [w for w in (self._memory_worker, self._reach_worker) if w is not None]
        for worker in running:
            worker.cancel()
        self._pending_run = None
        return bool(running)

    def shutdown(self) -> None:
        """Stop everything before the window closes (the controller's pool waits for the
        threads); nothing starts afterwards and nothing more is reported."""
        self._closing = True
        self.stop()
        self.blockSignals(True)

    def _busy(self) -> None:
        self._sync()
        self.busy_changed.emit(self.is_busy())


def _screenshot(out: str, steps: int, memory_csv: str | None = None) -> None:
    """Show the tab after a small run of each kind and a memory task of ``steps`` steps per
    cell (or the one saved in ``memory_csv``), save it as ``out`` (PNG) and quit. The
    training runs in the torch process."""
    import sys

    from sandbox import pipeline
    from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig
    from sandbox.ui.controller import RunController
    from sandbox.ui.workers import TaskWorker, shutdown_engine

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv)
    controller = RunController()
    view = MemoryView(controller)
    view.resize(1280, 800)
    view.show()
    pending = list(lab.KINDS)

    def train_next() -> None:
        if not pending:
            if memory_csv:
                view.show_memory(lab.read_memory(memory_csv))
                view.memory_done.emit(view.memory)
            else:
                view.run_experiment(lags=lab.DEFAULT_LAGS, steps=steps)
            return
        kind = pending.pop(0)
        config = RunConfig(data=DataSpec(source="sample:GSPC", start="2014-01-01"),
                           model=ModelConfig(kind=kind, window=30, hidden=16, layers=1),
                           train=TrainConfig(epochs=3, threads=1))
        worker = TaskWorker(pipeline.run, config, remote=True)
        worker.returned.connect(view.show_run)
        controller.pool.start(worker, name="sandbox-train")

    def save() -> None:
        view.grab().save(out)
        app.quit()

    view.reach_done.connect(lambda _r: QtCore.QTimer.singleShot(0, train_next))
    view.memory_done.connect(lambda _r: QtCore.QTimer.singleShot(500, save))
    QtCore.QTimer.singleShot(0, train_next)
    app.exec()
    controller.shutdown()
    shutdown_engine()


if __name__ == "__main__":  # python -m sandbox.ui.memory_view OUT.png [STEPS | MEMORY_CSV]
    import sys

    _arg = sys.argv[2] if len(sys.argv) > 2 else "200"
    _screenshot(sys.argv[1] if len(sys.argv) > 1 else "memory_tab.png",
                int(_arg) if _arg.isdigit() else 0, None if _arg.isdigit() else _arg)
