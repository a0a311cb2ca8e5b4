"""The Folds tab: a walk-forward run fold by fold, and the progress of one while it trains.

:class:`FoldsView` holds a table (fold, the bars it trained on, the bars it predicted,
epochs, best validation loss, the model's and the random walk's RMSE on its predicted bars
and their difference) and a small bar chart of that difference per fold (below zero: the
model forecast that fold's bars better than "no change"). While a walk-forward run trains,
rows appear as folds are queued and fill in as they finish; the finished run's fold records
(``RunResult.folds``) replace them.

:class:`FoldProgress` follows a :class:`~sandbox.ui.controller.RunController`'s walk-forward
run: the status line and progress bar count the folds, each fold's loss curves join the
Loss tab as it finishes, and a warm-started fold's live curves restart with it.

Pure helpers (:func:`fold_rows`, :func:`fold_summary`) hold what the tests check.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from sandbox.events import format_hms
from sandbox.ui.controller import CANCELLED, FINISHED
from sandbox.ui.progress import PROGRESS_STEPS

__all__ = ["COLUMNS", "FoldProgress", "FoldsView", "fold_rows", "fold_summary"]

#: (header, tooltip) of the table's columns, in order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Fold", "Fold number (1 = the first out-of-sample bars; the chart's fold lines carry "
             "the same numbers)"),
    ("Trained on", "First and last bar of the fold's training data (its validation bars, "
                   "held out for early stopping, follow them: see the tooltip)"),
    ("Predicted", "The out-of-sample bars this fold's model predicted"),
    ("Epochs", "Epochs trained (early stopping may end a fold sooner)"),
    ("Best val", "Lowest validation loss of the fold (the weights kept)"),
    ("Model RMSE", "RMSE of the model's forecasts on the fold's predicted bars"),
    ("RW RMSE", "RMSE of the random walk (\"no change\") on the same bars"),
    ("Model \u2212 RW", "Model RMSE minus the random walk's: below 0, the model forecast "
                        "this fold's bars better than \"no change\""),
)
TO = "\u2009\u2192\u2009"  # between the first and the last date of a range (thin spaces)
EMPTY_TEXT = ("Choose Evaluation: Walk-forward in the Model box and train: each fold's "
              "training, predicted bars and errors show here.")
BETTER_COLOUR = "#26a69a"
WORSE_COLOUR = "#ef5350"


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _fmt(value: Any, spec: str) -> str:
    x = _number(value)
    return "n/a" if x is None else format(x, spec)


def _date(value: Any) -> str:
    return str(value)[:10] if value else "?"


def fold_rows(folds: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """The table's cells, one row per fold record (``RunResult.folds``), fold numbers
    1-based."""
    rows = []
    for f in folds:
        metrics = f.get("metrics") or {}
        model = (metrics.get("model") or {}).get("rmse")
        walk = (metrics.get("random_walk") or {}).get("rmse")
        rows.append([
            str(int(f.get("fold", 0)) + 1),
            f"{_date(f.get('train_start'))}{TO}{_date(f.get('train_end'))}",
            f"{_date(f.get('predict_start'))}{TO}{_date(f.get('predict_end'))}",
            str(f.get("epochs", "")),
            _fmt(f.get("best_val_loss"), ".3g"),
            _fmt(model, ".6f"),
            _fmt(walk, ".6f"),
            _fmt(metrics.get("rmse_diff"), "+.6f"),
        ])
    return rows


def fold_diffs(folds: Sequence[Mapping[str, Any]]) -> list[float | None]:
    """Model minus random-walk RMSE per fold (None where undefined)."""
    return [_number((f.get("metrics") or {}).get("rmse_diff")) for f in folds]


def fold_summary(folds: Sequence[Mapping[str, Any]]) -> str:
    """One line on the folds: how many beat the random walk's RMSE."""
    diffs = [d for d in fold_diffs(folds) if d is not None]
    if not folds:
        return ""
    n = len(folds)
    if not diffs:
        return f"{n} fold{'s' if n != 1 else ''}; no fold has a forecast to score."
    wins = sum(1 for d in diffs if d < 0)
    return (f"The model's RMSE was below the random walk's in {wins} of {len(diffs)} folds "
            f"(mean difference {np.mean(diffs):+.6f}). Folds are short: one fold's gap says "
            "little on its own; the Metrics tab scores all folds' bars together.")


class FoldsView(QtWidgets.QWidget):
    """The per-fold table and bar chart of a walk-forward run (see the module docstring)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QtWidgets.QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        for c, (header, tip) in enumerate(COLUMNS):
            item = QtWidgets.QTableWidgetItem(header)
            item.setToolTip(tip)
            self.table.setHorizontalHeaderItem(c, item)
        self.table.horizontalHeader().setSectionResizeMode(
            QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "fold")
        self.plot.setTitle("model \u2212 RW RMSE", size="9pt")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.addLine(y=0, pen=pg.mkPen((128, 128, 128), width=1))
        self.plot_widget.setToolTip("Model RMSE minus the random walk's, per fold: a bar below "
                                    "0 is a fold the model forecast better than \"no change\"")
        self.bars: pg.BarGraphItem | None = None
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        left = QtWidgets.QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.caption)
        left.addWidget(self.table, 1)
        left.addWidget(self.summary)
        right = QtWidgets.QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.plot_widget)
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(6, 6, 6, 6)
        self.plot_widget.setMinimumWidth(180)
        self.plot_widget.setMaximumWidth(210)
        row.addLayout(left, 1)
        row.addLayout(right, 0)
        self._folds: list[dict] = []
        self.clear()

    # -- public ------------------------------------------------------------------------------
    def clear(self, text: str = "") -> None:
        text = text or EMPTY_TEXT
        self._folds = []
        self.table.setRowCount(0)
        self.caption.setText(text)
        self.summary.setText("")
        self._draw_bars([])

    def set_dark(self, dark: bool) -> None:
        self.plot_widget.setBackground("#131722" if dark else "w")

    def start(self, n_folds: int, text: str) -> None:
        """A walk-forward run of ``n_folds`` began (0: not known yet)."""
        self.clear(text)
        self.table.setRowCount(max(0, int(n_folds)))

    def fold_started(self, info: Mapping[str, Any]) -> None:
        """A fold was queued or began: its row shows the bars it predicts."""
        row = self._row(info)
        self._set(row, 0, str(int(info["fold"]) + 1))
        self._set(row, 2, f"{_date(info.get('predict_start'))}{TO}"
                          f"{_date(info.get('predict_end'))}")

    def fold_finished(self, info: Mapping[str, Any]) -> None:
        """A fold finished: its epochs and best validation loss (the errors come with the
        run's result)."""
        row = self._row(info)
        self._set(row, 0, str(int(info["fold"]) + 1))
        self._set(row, 3, str(len(info.get("val_loss") or ())))
        self._set(row, 4, _fmt(info.get("best_val_loss"), ".3g"))

    def show_run(self, result: Any, caption: str = "") -> None:
        """Fill the table and the bars from a walk-forward result's fold records."""
        folds = [dict(f) for f in getattr(result, "folds", None) or ()]
        self._folds = folds
        rows = fold_rows(folds)
        self.table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                self._set(r, c, text)
            f = folds[r]
            tip = (f"fold {r + 1}: trained on {f.get('n_train', '?')} rows from "
                   f"{_date(f.get('train_start'))}, validated on {f.get('n_val', '?')} from "
                   f"{_date(f.get('val_start'))}; predicted {f.get('n_predict', '?')} bars; "
                   f"best epoch {f.get('best_epoch', '?')}; seed {f.get('seed', '?')}; "
                   f"{_fmt(f.get('seconds'), '.1f')} s")
            for c in range(len(COLUMNS)):
                self.table.item(r, c).setToolTip(tip)
            diff = _number((f.get("metrics") or {}).get("rmse_diff"))
            if diff is not None:
                self.table.item(r, len(COLUMNS) - 1).setForeground(
                    pg.mkColor(BETTER_COLOUR if diff < 0 else WORSE_COLOUR))
        self.caption.setText(caption)
        self.summary.setText(fold_summary(folds))
        self._draw_bars(fold_diffs(folds))

    def folds(self) -> list[dict]:
        """The fold records shown (empty while a run trains or none is shown)."""
        return list(self._folds)

    def bar_heights(self) -> list[float]:
        """The bars drawn (NaN for a fold without a difference), in fold order."""
        if self.bars is None:
            return []
        return [float(h) for h in self.bars.opts["height"]]

    # -- internals ---------------------------------------------------------------------------
    def _row(self, info: Mapping[str, Any]) -> int:
        row = int(info["fold"])
        n = int(info.get("n_folds") or 0)
        if self.table.rowCount() < max(row + 1, n):
            self.table.setRowCount(max(row + 1, n))
        return row

    def _set(self, row: int, col: int, text: str) -> None:
        item = QtWidgets.QTableWidgetItem(text)
        align = QtCore.Qt.AlignmentFlag.AlignRight if col in (0, 3, 4, 5, 6, 7) \
            else QtCore.Qt.AlignmentFlag.AlignLeft
        item.setTextAlignment(align | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.table.setItem(row, col, item)

    def _draw_bars(self, diffs: Sequence[float | None]) -> None:
        if self.bars is not None:
            self.plot.removeItem(self.bars)
            self.bars = None
        if not diffs:
            return
        x = np.arange(1, len(diffs) + 1, dtype=np.float64)
        heights = np.array([np.nan if d is None else d for d in diffs], dtype=np.float64)
        brushes = [pg.mkBrush(BETTER_COLOUR if (d is not None and d < 0) else WORSE_COLOUR)
                   for d in diffs]
        self.bars = pg.BarGraphItem(x=x, height=np.nan_to_num(heights), width=0.7,
                                    brushes=brushes, pen=None)
        self.bars.opts["height"] = heights  # NaN kept for bar_heights(); drawn as 0
        self.plot.addItem(self.bars)
        self.plot.setXRange(0.4, len(diffs) + 0.6, padding=0)
        step = max(1, math.ceil(len(diffs) / 6))  # whole fold numbers, six at most
        self.plot.getAxis("bottom").setTicks(
            [[(float(i), str(i)) for i in range(1, len(diffs) + 1, step)]])
        self.plot.enableAutoRange(axis="y")


class FoldProgress(QtCore.QObject):
    """A walk-forward run's progress: folds counted in the status bar and its bar, each
    fold's curves in the Loss tab, its rows in the Folds tab, a line per fold in the Log.

    Parameters
    ----------
    set_status : callable
        Shows a status line.
    bar : QProgressBar
        The status bar's progress bar (range 0 .. its maximum).
    loss_plot : LossPlot
        The Loss tab.
    folds_view : FoldsView
        The Folds tab.
    log : callable
        Adds a line to the Log tab.
    """

    def __init__(self, set_status: Callable[[str], None], bar: QtWidgets.QProgressBar,
                 loss_plot: Any, folds_view: FoldsView, log: Callable[[str], None],
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._status, self._bar = set_status, bar
        self._loss_plot, self._view, self._log = loss_plot, folds_view, log
        self._active = False
        self._warm = False
        self._n = 0
        self._done: set[int] = set()
        self._current: dict | None = None  # the fold training here (warm start)
        self._started = 0.0

    def attach(self, controller: Any) -> None:
        """Follow ``controller``'s walk-forward runs (after the status bar's own progress)."""
        controller.follow(self, "run_started", "fold_started", "fold_finished",
                          "fold_batch_done", "fold_epoch_done", "run_ended")

    def is_active(self) -> bool:
        return self._active

    def done(self) -> int:
        """Folds finished in the running (or last) walk-forward run."""
        return len(self._done)

    @QtCore.Slot(object, object, int, int)
    def _on_run_started(self, _worker: Any, config: Any, _seeds: int, jobs: int) -> None:
        walk = config.walk_forward
        self._active = walk is not None
        if walk is None:
            return
        self._warm = bool(walk.warm_start)
        self._n, self._done, self._current = 0, set(), None
        self._started = time.monotonic()
        how = ("warm start: folds train one after another" if self._warm
               else f"cold folds in parallel on up to {jobs} process{'es' if jobs > 1 else ''}")
        self._view.start(0, f"Walk-forward ({how}): folds appear as they are queued and fill "
                            "in as they finish.")

    @QtCore.Slot(dict)
    def _on_fold_started(self, info: dict) -> None:
        if not self._active:
            return
        self._n = int(info["n_folds"])
        self._view.fold_started(info)
        if self._warm or int(info["fold"]) == 0:
            self._current = info
            self._loss_plot.start_fold()
            self._show()
        if self._warm:
            self._log(f"fold {int(info['fold']) + 1}/{self._n}: predicting "
                      f"{_date(info['predict_start'])} .. {_date(info['predict_end'])}")

    @QtCore.Slot(dict)
    def _on_fold_finished(self, info: dict) -> None:
        if not self._active:
            return
        fold = int(info["fold"])
        self._n = int(info["n_folds"])
        self._done.add(fold)
        self._view.fold_finished(info)
        self._loss_plot.add_fold(fold, self._n, info["train_loss"], info["val_loss"])
        self._log(f"fold {fold + 1}/{self._n} finished: {len(info['val_loss'])} epochs, best "
                  f"validation loss {_fmt(info['best_val_loss'], '.4g')}")
        self._show()

    @QtCore.Slot(float, float, float, int)
    def _on_fold_batch_done(self, position: float, loss: float, _samples_per_s: float,
                            epochs: int) -> None:
        if self._active:
            self._loss_plot.add_batch(position, loss)
            self._show(within=position / max(epochs, 1))

    @QtCore.Slot(dict)
    def _on_fold_epoch_done(self, info: dict) -> None:
        if self._active:
            self._loss_plot.add_epoch(int(info["epoch"]), info["train_loss"], info["val_loss"])
            self._show(within=int(info["epoch"]) / max(int(info["epochs"]), 1))

    @QtCore.Slot(str)
    def _on_run_ended(self, how: str) -> None:
        if not self._active:
            return
        self._active = False
        if how == CANCELLED:
            self._view.clear(f"Walk-forward stopped after {len(self._done)} of "
                             f"{self._n or '?'} folds: every fold was stopped and nothing "
                             "was kept.")
        elif how != FINISHED:
            self._view.clear("Walk-forward failed (see the Log).")

    def _show(self, within: float = 0.0) -> None:
        """Folds done (and the running warm fold's share) in the bar; the count, the fold
        training and an ETA at the pace so far in the status line."""
        n = max(self._n, 1)
        done = len(self._done)
        fraction = min(1.0, (done + (within if self._warm and done < n else 0.0)) / n)
        self._bar.setRange(0, PROGRESS_STEPS)
        self._bar.setValue(max(self._bar.value(), round(PROGRESS_STEPS * fraction))
                           if done else round(PROGRESS_STEPS * fraction))
        elapsed = time.monotonic() - self._started
        eta = elapsed / fraction * (1 - fraction) if fraction > 0 else float("nan")
        text = f"Walk-forward: {done}/{self._n} folds done"
        if self._warm and self._current is not None and done < self._n:
            text += (f"; fold {int(self._current['fold']) + 1} trains (predicts "
                     f"{_date(self._current['predict_start'])} .. "
                     f"{_date(self._current['predict_end'])}, warm start)")
        elif done < self._n:
            text += "; cold folds train in parallel"
        if math.isfinite(eta) and done < self._n:
            text += f", ETA {format_hms(eta)}"
        self._status(text)
