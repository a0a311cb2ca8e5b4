"""Live loss curves: train and validation loss per epoch, and the smoothed per-batch loss.

A seed ensemble's members and a walk-forward run's folds join as thin finished curves
(:meth:`LossPlot.add_member`, :meth:`LossPlot.add_fold`); a fold's curves are drawn fainter
the earlier the fold, so the newest folds stand out.

Points arrive through :meth:`LossPlot.add_batch` and :meth:`LossPlot.add_epoch` (connected to
a training worker's signals); they are stored at once but the curves are redrawn at most
``REDRAW_HZ`` times per second, so a fast stream of batches never floods the UI thread.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

__all__ = ["REDRAW_HZ", "LossPlot"]

REDRAW_HZ = 30
EMA_ALPHA = 0.05  # weight of the newest batch in the smoothed batch loss
TRAIN_COLOR = "#42a5f5"
VAL_COLOR = "#ffb300"
BATCH_COLOR = (150, 150, 150)


class LossPlot(QtWidgets.QWidget):
    """Training curves against the epoch (fractional epochs for batches).

    Parameters
    ----------
    parent : QWidget, optional
        Qt parent.
    log_y : bool
        Plot the loss on a log scale.
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, log_y: bool = False) -> None:
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "loss")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLogMode(y=log_y)
        self.plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.batch_curve = self.plot.plot(pen=pg.mkPen(BATCH_COLOR, width=1),
                                          name="train (per batch, smoothed)")
        self.batch_curve.setDownsampling(auto=True, method="mean")
        self.batch_curve.setClipToView(True)
        self.train_curve = self.plot.plot(pen=pg.mkPen(TRAIN_COLOR, width=2), symbol="o",
                                          symbolSize=5, symbolBrush=TRAIN_COLOR,
                                          symbolPen=None, name="train")
        self.val_curve = self.plot.plot(pen=pg.mkPen(VAL_COLOR, width=2), symbol="o",
                                        symbolSize=5, symbolBrush=VAL_COLOR, symbolPen=None,
                                        name="validation")
        box = QtWidgets.QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.plot_widget)

        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(1000 / REDRAW_HZ))
        self._timer.timeout.connect(self._redraw)
        self.reset()

    # -- public ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every point (a new run starts)."""
        self._batch_x: list[float] = []
        self._batch_y: list[float] = []
        self._ema: float | None = None
        self._epochs: list[float] = []
        self._train: list[float] = []
        self._val: list[float] = []
        for item in getattr(self, "_members", []):
            self.plot.removeItem(item)
        key = getattr(self, "_fold_key", None)
        if key is not None and self.plot.legend is not None:
            self.plot.legend.removeItem(key)
        self._fold_key: pg.PlotDataItem | None = None
        self._members: list[pg.PlotDataItem] = []
        self._n_members = 0
        self._folds: dict[int, int] = {}  # fold -> epochs drawn
        self._timer.stop()
        self._redraw()

    def start_fold(self) -> None:
        """A new walk-forward fold trains here: its live curves start afresh (the finished
        folds' curves stay)."""
        self._batch_x, self._batch_y = [], []
        self._ema = None
        self._epochs, self._train, self._val = [], [], []
        self._schedule()

    def add_fold(self, fold: int, n_folds: int, train_loss: list[float],
                 val_loss: list[float]) -> None:
        """Add walk-forward fold ``fold``'s (0-based, of ``n_folds``) finished curves, drawn at
        once: thin, fainter the earlier the fold."""
        if fold in self._folds:
            return
        alpha = round(70 + 185 * (fold + 1) / max(n_folds, 1))
        x = np.arange(1, max(len(train_loss), len(val_loss)) + 1, dtype=np.float64)
        for values, color in ((train_loss, TRAIN_COLOR), (val_loss, VAL_COLOR)):
            if not len(values):
                continue
            rgb = pg.mkColor(color)
            rgb.setAlpha(min(255, alpha))
            item = pg.PlotDataItem(x[:len(values)], _finite_or_nan(list(values)),
                                   pen=pg.mkPen(rgb, width=1))
            self.plot.addItem(item)
            self._members.append(item)
        self._folds[fold] = max(len(train_loss), len(val_loss))
        if len(self._folds) == 1 and self.plot.legend is not None:
            self._fold_key = pg.PlotDataItem(pen=pg.mkPen(VAL_COLOR, width=1))
            self.plot.legend.addItem(self._fold_key, "each fold (earlier: fainter)")

    def folds(self) -> list[int]:
        """Walk-forward folds whose curves are drawn, in the order they came."""
        return list(self._folds)

    def add_batch(self, epoch_float: float, loss: float) -> None:
        """Add one batch's training loss at fractional epoch ``epoch_float`` (EMA-smoothed,
        bias-corrected so the first points are not pulled toward 0)."""
        if not math.isfinite(loss):
            return
        self._ema = loss if self._ema is None else (1 - EMA_ALPHA) * self._ema + EMA_ALPHA * loss
        self._batch_x.append(float(epoch_float))
        self._batch_y.append(self._ema)
        self._schedule()

    def add_epoch(self, epoch: int, train_loss: float, val_loss: float) -> None:
        """Add the mean train and validation loss of epoch ``epoch`` (1-based, at x = epoch)."""
        self._epochs.append(float(epoch))
        self._train.append(float(train_loss))
        self._val.append(float(val_loss))
        self._schedule()

    def add_member(self, train_loss: list[float], val_loss: list[float]) -> None:
        """Add one seed ensemble member's finished curves (thin, per epoch), drawn at once."""
        x = np.arange(1, len(train_loss) + 1, dtype=np.float64)
        for values, color in ((train_loss, TRAIN_COLOR), (val_loss, VAL_COLOR)):
            if not len(values):
                continue
            pen = pg.mkPen(color, width=1)
            item = pg.PlotDataItem(x[:len(values)], _finite_or_nan(list(values)), pen=pen,
                                   symbol="o", symbolSize=3, symbolBrush=color, symbolPen=None)
            self.plot.addItem(item)
            self._members.append(item)
        self._n_members += 1

    def members(self) -> int:
        """Ensemble members drawn."""
        return self._n_members

    def points(self) -> dict[str, int]:
        """How many points each curve holds (batch, train, val)."""
        return {"batch": len(self._batch_x), "train": len(self._train), "val": len(self._val)}

    def flush(self) -> None:
        """Redraw now (instead of at the next tick)."""
        self._timer.stop()
        self._redraw()

    # -- internals ---------------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _redraw(self) -> None:
        self.batch_curve.setData(np.asarray(self._batch_x), np.asarray(self._batch_y))
        self.train_curve.setData(np.asarray(self._epochs), np.asarray(self._train))
        self.val_curve.setData(np.asarray(self._epochs), _finite_or_nan(self._val))


def _finite_or_nan(values: list[float]) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out
