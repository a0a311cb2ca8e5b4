"""Streaming inference: one closed bar in, one prediction out, at a cost that does not grow.

A :class:`StreamPredictor` keeps the scaled feature rows of the last ``W`` bars in a ring
buffer and predicts each new bar with one forward pass over that window, so the work per
bar is the same after 100 bars of history as after a million. The features are local
(each bar's row uses only that bar and the one before it, :func:`sandbox.features.bar_features`)
and are scaled with the bundle's saved training statistics, so the window a stream holds is
exactly the window the batch path (:meth:`sandbox.export.Bundle.predict`) builds for the
same bar.

Exactness. The batch path runs the model on fixed chunks of
:data:`sandbox.training.PREDICT_CHUNK` windows, and a BLAS may round a one-row product
differently from a many-row one (float32, ~1e-7 of the scaled output). With ``exact=True``
(default) the predictor finds, once, the smallest number of copies of the window
(:data:`EXACT_ROWS`) whose forward pass gives the batch path's outputs bit for bit, and runs
that many rows per bar; when none does (it depends on the BLAS and the layer sizes) it runs
one row and :attr:`StreamPredictor.bit_exact` is False: predictions then agree with the
batch path to float32 rounding of the model's output.

torch is imported here (this module runs where the model runs, never in the app's UI
process).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from sandbox import constants as C
from sandbox.errors import DataError
from sandbox.features import Scaler, feature_names, first_feature_row

#: copies of the window tried, in order, for a forward pass equal to the batch path's
EXACT_ROWS: tuple[int, ...] = (1, 4, 8, 16)
#: windows compared when choosing the number of rows
_CALIBRATION_WINDOWS = 64


class StreamPredictor:
    """Predict each new bar from a ring buffer of the last window's scaled features.

    Parameters
    ----------
    model : torch.nn.Module
        Maps windows ``(B, L, F)`` to ``(B,)`` scaled outputs (any registered kind).
    feature_state : dict
        The run's feature state (``run.json`` "feature_state": window, seq_len, target,
        scalers).
    exact : bool
        Choose the rows per forward pass that reproduce the batch path bit for bit (see the
        module docstring); False runs one row.

    Attributes
    ----------
    window : int
        Bars per input window.
    seq_len : int
        Feature rows per window (``window - 1`` for return targets, ``window`` for price).
    rows : int
        Copies of the window in each forward pass.
    bit_exact : bool
        Whether :attr:`rows` was found to reproduce the batch path bit for bit.
    n_pushed : int
        Bars pushed since the start (or :meth:`reset`).
    """

    def __init__(self, model: Any, feature_state: dict[str, Any], *, exact: bool = True) -> None:
        self.model = model.eval()
        self.state = feature_state
        self.target = str(feature_state["target"])
        self.window = int(feature_state["window"])
        self.seq_len = int(feature_state["seq_len"])
        self._first = first_feature_row(self.target)
        self._scaler = Scaler.from_dict(feature_state["scaler"])
        self.n_features = len(feature_names(self.target))
        self._buf = np.zeros((2 * self.seq_len, self.n_features), dtype=np.float32)
        self._tensor = torch.from_numpy(self._buf)  # shares memory with the buffer
        self.rows, self.bit_exact = (self._calibrate() if exact else (1, False))
        self.reset()

    @classmethod
    def from_bundle(cls, bundle: Any, **kwargs: Any) -> StreamPredictor:
        """A predictor for a loaded :class:`sandbox.export.Bundle`."""
        return cls(bundle.model, bundle.feature_state, **kwargs)

    # --- state ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every bar pushed (the buffer keeps its size)."""
        self.n_pushed = 0
        self._n_rows = 0  # feature rows written
        self._prev_close = math.nan
        self._prev_logv = math.nan

    @property
    def ready(self) -> bool:
        """True once a full window of feature rows is held."""
        return self._n_rows >= self.seq_len

    @property
    def buffer_rows(self) -> int:
        """Feature rows the ring buffer holds: ``seq_len``, whatever the history."""
        return self._buf.shape[0] // 2

    # --- bars ----------------------------------------------------------------------------------

    def push(self, open_: float, high: float, low: float, close: float, volume: float,
             *, predict: bool = True) -> float:
        """Add one closed bar; return the predicted log return of the next bar.

        Parameters
        ----------
        open_, high, low, close, volume : float
            The bar's prices and volume.
        predict : bool
            False only fills the buffer (warming up) and returns NaN.

        Returns
        -------
        float
            ``predicted_return`` of this bar's row, as the batch path computes it; NaN
            until a full window has been pushed.

        Raises
        ------
        DataError
            The bar gives a non-finite feature (a price <= 0, a negative volume).
        """
        row = self._feature_row(float(open_), float(high), float(low), float(close),
                                float(volume))
        self.n_pushed += 1
        if row is not None:
            i = self._n_rows % self.seq_len
            self._buf[i] = row
            self._buf[i + self.seq_len] = row
            self._n_rows += 1
        if not (predict and self.ready):
            return math.nan
        return self._predict(float(close))

    def warm(self, frame: pd.DataFrame) -> None:
        """Push the last ``window`` bars of a price frame without predicting (a window's
        worth of work whatever the frame's length)."""
        tail = frame.iloc[-self.window:]
        for o, h, lo, c, v in tail[list(C.PRICE_COLUMNS)].to_numpy(np.float64):
            self.push(o, h, lo, c, v, predict=False)

    def window_rows(self) -> np.ndarray:
        """The scaled feature rows of the current window, oldest first ((seq_len, F) copy)."""
        start = self._n_rows % self.seq_len
        return self._buf[start:start + self.seq_len].copy()

    # --- internals -----------------------------------------------------------------------------

    def _feature_row(self, o: float, h: float, lo: float, c: float,
                     v: float) -> np.ndarray | None:
        """The bar's scaled feature row, computed as :func:`sandbox.features.bar_features`
        does (same numpy operations), or None for the first bar of a return target."""
        logv = float(np.log1p(np.maximum(np.array([v]), 0.0))[0])
        if self._first == 0:  # the teaching price target: raw levels
            raw = np.array([o, h, lo, c, logv])
        else:
            prev, prev_logv = self._prev_close, self._prev_logv
            self._prev_close, self._prev_logv = c, logv
            if math.isnan(prev):
                return None
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.log(np.array([c, o, h, lo]) / prev)
            raw = np.append(logs, logv - prev_logv)
        row = self._scaler.transform(raw).astype(np.float32)
        if not np.isfinite(row).all():
            raise DataError(f"a bar (open {o}, high {h}, low {lo}, close {c}, volume {v}) gives "
                            "a non-finite feature; check that prices are positive and volume "
                            "is not negative")
        return row

    def _forward(self) -> float:
        start = self._n_rows % self.seq_len
        x = self._tensor[start:start + self.seq_len].unsqueeze(0)
        if self.rows > 1:
            x = x.expand(self.rows, -1, -1).contiguous()
        with torch.no_grad():
            return float(self.model(x)[0])

    def _predict(self, close: float) -> float:
        from sandbox.pipeline import predicted_returns

        out = np.array([self._forward()], dtype=np.float32)
        return float(predicted_returns(out, self.state, np.array([close]))[0])

    def _calibrate(self) -> tuple[int, bool]:
        """The fewest copies of a window (:data:`EXACT_ROWS`) whose forward pass equals the
        batch path (:func:`sandbox.training.predict`) bit for bit on random windows; the
        kernels a BLAS picks depend on the shapes only, so random values tell, and the answer
        is remembered for the same shapes and thread count."""
        key = (type(self.model).__name__, self.seq_len, self.n_features,
               torch.get_num_threads(),
               tuple((name, tuple(p.shape)) for name, p in self.model.named_parameters()))
        if key not in _CALIBRATED:
            _CALIBRATED[key] = self._measure_rows()
        return _CALIBRATED[key]

    def _measure_rows(self) -> tuple[int, bool]:
        from sandbox import training

        gen = torch.Generator().manual_seed(0)
        windows = torch.randn((_CALIBRATION_WINDOWS, self.seq_len, self.n_features),
                              generator=gen)
        reference = training.predict(self.model, windows)
        with torch.no_grad():
            for rows in EXACT_ROWS:
                if all(np.float32(self.model(w.unsqueeze(0).expand(rows, -1, -1)
                                             .contiguous())[0]) == expected
                       for w, expected in zip(windows, reference, strict=True)):
                    return rows, True
        return 1, False


#: rows per pass found for a model's shapes and thread count (see StreamPredictor._calibrate)
_CALIBRATED: dict[tuple, tuple[int, bool]] = {}
