"""Per-bar features, the target, chronological splits, a train-only scaler and windows.

Conventions (see ARCHITECTURE "Modelling and honesty"):

- Row ``t`` is the bar at whose close the decision is made. The input window of row ``t``
  covers the ``W`` bars ``t-W+1 .. t`` and nothing later.
- Default features (``target="return"``), one vector per bar ``k``, all stationary and all
  computed from bars ``k-1`` and ``k`` only:

  ============  ============================================  ==========================
  name          formula                                       meaning
  ============  ============================================  ==========================
  ret_close     ln(close[k] / close[k-1])                     the bar's log return
  gap_open      ln(open[k] / close[k-1])                      overnight gap
  ret_high      ln(high[k] / close[k-1])                      high vs previous close
  ret_low       ln(low[k] / close[k-1])                       low vs previous close
  dlog_volume   log1p(volume[k]) - log1p(volume[k-1])         volume change (finite at 0)
  ============  ============================================  ==========================

  The first bar of a window has no previous close inside the window, so a window of ``W``
  bars is a sequence of ``W - 1`` feature vectors (bars ``t-W+2 .. t``); this is why the
  smallest window is 2.
- ``target="price"`` (teaching only, the seed article's set-up): the features are the raw
  levels ``open, high, low, close, log1p(volume)`` of each bar (``W`` vectors per window)
  and the target is the next close level. Both are standardised with training statistics.
- The default target is ``ln(close[t+1] / close[t])``. The last bar has a window, hence a
  prediction (the next bar's signal), but no known target: its ``actual_return`` is NaN and
  it is left out of every forecast metric.
- ``target="traded_return"`` forecasts the return the strategy earns instead: with the
  next-open fill ``ln(open[t+2] / open[t+1])`` (the position decided at close ``t`` is held
  from the next open to the open after it), with the close fill ``ln(close[t+1] /
  close[t])``. The features are the same as for ``"return"``; ``actual_return`` is then this
  traded return (NaN on the last two bars with the next-open fill).
- Splits are chronological over the rows that have a prediction: by dates, or 70/15/15.
  A row is used to fit (or to early-stop) only when its target bar lies in the same split,
  so the last row of train and of validation (whose target is the next split's first bar)
  is predicted and evaluated but never learned from.
- The scaler is fitted on the feature rows of the training split alone: every bar from the
  first bar with features up to the last training row (the bars training windows can see).
- Validation and test must each hold at least ``SplitSpec.min_returns`` *usable returns*:
  rows whose actual return and trading return use only prices of their own split (see
  :func:`usable_returns`). Fewer would make every figure of the split noise (a 2-row test
  split scores 0.00 everywhere), so :func:`prepare` refuses them with
  :class:`~sandbox.errors.SplitTooSmall`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.config import SplitSpec
from sandbox.errors import ConfigError, DataError, SplitTooSmall

RETURN_FEATURES: tuple[str, ...] = ("ret_close", "gap_open", "ret_high", "ret_low", "dlog_volume")
PRICE_FEATURES: tuple[str, ...] = ("open", "high", "low", "close", "log_volume")

#: fewest rows each split needs to be usable: train/validation rows to fit on, test rows
#: (validation and test also need ``SplitSpec.min_returns`` usable returns)
MIN_FIT_ROWS = {C.TRAIN: 2, C.VAL: 1, C.TEST: 1}


def feature_names(target: str) -> tuple[str, ...]:
    """Names of the per-bar features used for ``target`` (``"return"`` or ``"price"``)."""
    _check_target(target)
    return PRICE_FEATURES if target == C.TARGET_PRICE else RETURN_FEATURES


def first_feature_row(target: str) -> int:
    """Position of the first bar that has features (1 for returns: it needs a previous close)."""
    _check_target(target)
    return 0 if target == C.TARGET_PRICE else 1


def bar_features(prices: pd.DataFrame, *, target: str = C.TARGET_RETURN) -> pd.DataFrame:
    """Per-bar feature frame (float64, same index as ``prices``; NaN where undefined).

    Parameters
    ----------
    prices : pandas.DataFrame
        A price frame obeying the data contract.
    target : {"return", "price"}
        Which feature set: stationary returns (default) or raw levels (teaching).

    Returns
    -------
    pandas.DataFrame
        One column per name of :func:`feature_names`. For ``"return"`` the first row is NaN.
    """
    names = feature_names(target)
    o, h, lo, c, v = (prices[col].to_numpy(np.float64) for col in C.PRICE_COLUMNS)
    logv = np.log1p(np.maximum(v, 0.0))
    if target == C.TARGET_PRICE:
        data = np.column_stack([o, h, lo, c, logv])
    else:
        prev = np.empty_like(c)
        prev[0] = np.nan
        prev[1:] = c[:-1]
        dlogv = np.empty_like(logv)
        dlogv[0] = np.nan
        dlogv[1:] = np.diff(logv)
        with np.errstate(divide="ignore", invalid="ignore"):
            data = np.column_stack([
                np.log(c / prev), np.log(o / prev), np.log(h / prev), np.log(lo / prev), dlogv,
            ])
    return pd.DataFrame(data, index=prices.index, columns=list(names))


def next_log_return(prices: pd.DataFrame) -> np.ndarray:
    """``ln(close[t+1] / close[t])`` for every bar; NaN for the last one."""
    c = prices[C.CLOSE].to_numpy(np.float64)
    out = np.full(c.shape, np.nan)
    out[:-1] = np.log(c[1:] / c[:-1])
    return out


def traded_log_return(prices: pd.DataFrame, fill: str) -> np.ndarray:
    """The log return a position decided at close ``t`` earns, for every bar.

    ``fill="next_open"``: ``ln(open[t+2] / open[t+1])`` (NaN on the last two bars);
    ``fill="close"``: ``ln(close[t+1] / close[t])`` (NaN on the last bar).
    """
    if fill not in C.FILLS:
        raise ConfigError(f"fill {fill!r}: expected one of {', '.join(C.FILLS)}")
    if fill == C.FILL_CLOSE:
        return next_log_return(prices)
    o = prices[C.OPEN].to_numpy(np.float64)
    out = np.full(o.shape, np.nan)
    out[:-2] = np.log(o[2:] / o[1:-1])
    return out


def realised_return(prices: pd.DataFrame, target: str, fill: str | None = None) -> np.ndarray:
    """The return a forecast of ``target`` is scored against (``actual_return``), per bar.

    ``"traded_return"`` with the fill the target was defined for; every other target the
    next close-to-close log return.
    """
    _check_target(target)
    if target == C.TARGET_TRADED:
        return traded_log_return(prices, fill or C.FILL_NEXT_OPEN)
    return next_log_return(prices)


def target_horizon(target: str, fill: str | None = None) -> int:
    """Bars after row ``t`` whose prices its target uses (2 for next-open traded returns)."""
    return 2 if target == C.TARGET_TRADED and (fill or C.FILL_NEXT_OPEN) == C.FILL_NEXT_OPEN else 1


def trade_horizon(fill: str) -> int:
    """Bars after row ``t`` whose prices its trading return uses: 2 with the next-open fill
    (``open[t+1]``, ``open[t+2]``), 1 with the close fill (``close[t+1]``)."""
    if fill not in C.FILLS:
        raise ConfigError(f"fill {fill!r}: expected one of {', '.join(C.FILLS)}")
    return 2 if fill == C.FILL_NEXT_OPEN else 1


def usable_returns(labels: np.ndarray, *, fill: str = C.FILL_NEXT_OPEN,
                   target: str = C.TARGET_RETURN) -> dict[str, int]:
    """Usable returns of each split: rows whose actual return and trading return can both be
    computed from prices of the row's own split.

    A row's returns use the bars up to ``t + h`` (``h`` the longer of :func:`trade_horizon`
    and :func:`target_horizon`), so the last ``h`` rows of every split have none there:
    with the next-open fill a split of ``n`` rows has ``n - 2`` usable returns, with the
    close fill ``n - 1`` (the last rows of the data have no later bar at all).

    Parameters
    ----------
    labels : numpy.ndarray
        Split name of each prediction row, chronological (:func:`split_labels`).
    fill : {"next_open", "close"}
        The strategy's fill.
    target : str
        The model's target kind.

    Returns
    -------
    dict
        ``{"train": n, "val": n, "test": n}``.
    """
    labels = np.asarray(labels, dtype=object)
    h = max(trade_horizon(fill), target_horizon(target, fill))
    runs = _runs(labels)
    return {s: _rows_ahead_in_split(labels, runs, h, s) for s in C.SPLITS}


def _runs(labels: np.ndarray) -> list[tuple[Any, int, int]]:
    """``(label, start, stop)`` of each run of equal labels: one comparison of the whole
    array (labels come in a few long runs), so a form can ask on every edit of 2M rows."""
    n = len(labels)
    cuts = (np.flatnonzero(labels[1:] != labels[:-1]) + 1).tolist() if n else []
    starts, stops = [0, *cuts], [*cuts, n]
    return [(labels[a], a, b) for a, b in zip(starts, stops, strict=True) if b > a]


def _rows_ahead_in_split(labels: np.ndarray, runs: list[tuple[Any, int, int]], h: int,
                         split: str) -> int:
    """Rows ``t`` labelled ``split`` whose row ``t + h`` exists and is labelled ``split``
    too, counted from the ``runs`` of ``labels`` (:func:`_runs`)."""
    n = len(labels)
    count = 0
    for label, start, stop in runs:
        if label != split:
            continue
        count += max(0, stop - start - h)  # t + h inside the same run
        for t in range(max(start, stop - h), stop):  # t + h in a later run, if any
            count += int(t + h < n and labels[t + h] == split)
    return count


def check_split_sizes(labels: np.ndarray, split: SplitSpec, *, window: int, n_bars: int,
                      name: str = "prices", fill: str = C.FILL_NEXT_OPEN,
                      target: str = C.TARGET_RETURN) -> None:
    """Refuse splits too small to learn from or to measure: training needs 2 rows to fit
    on, validation and test ``split.min_returns`` usable returns (:func:`usable_returns`).

    Parameters
    ----------
    labels : numpy.ndarray
        Split name of each prediction row (:func:`split_labels` of the rows with a full
        ``window`` of ``n_bars`` bars).
    split : SplitSpec
        The split asked for (its ``min_returns``).
    window, n_bars : int
        Bars per window and in the data, for the message.
    name : str
        Label of the data, for the message.
    fill, target : str
        The strategy's fill and the model's target (which rows have returns).

    Raises
    ------
    SplitTooSmall
        The first split (in time order) that is too small.
    """
    labels = np.asarray(labels, dtype=object)
    usable = usable_returns(labels, fill=fill, target=target)
    runs = _runs(labels)
    fit_train = _rows_ahead_in_split(labels, runs, target_horizon(target, fill), C.TRAIN)
    for s in C.SPLITS:
        # training needs rows to fit on; validation and test enough returns to measure
        have, least = ((fit_train, MIN_FIT_ROWS[C.TRAIN]) if s == C.TRAIN
                       else (usable[s], max(MIN_FIT_ROWS[s], split.min_returns)))
        if have < least:
            raise SplitTooSmall(name, s, have, least, window, n_bars,
                                sum(b - a for label, a, b in runs if label == s))


def _check_target(target: str) -> None:
    if target not in C.TARGETS:
        raise ConfigError(f"target {target!r}: expected one of {', '.join(C.TARGETS)}")


# --- scaler ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scaler:
    """Per-column standardisation ``(x - mean) / std`` (population std; 1 where std is 0)."""

    mean: np.ndarray  # (F,)
    std: np.ndarray  # (F,)

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaler:
        """Fit on the rows of ``x`` (N, F), which must all be finite."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        return cls(mean=mean, std=std)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.std

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) * self.std + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(m) for m in self.mean], "std": [float(s) for s in self.std]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaler:
        return cls(mean=np.asarray(data["mean"], dtype=np.float64),
                   std=np.asarray(data["std"], dtype=np.float64))


# --- splits --------------------------------------------------------------------------------------


def split_labels(rows: pd.DatetimeIndex, spec: SplitSpec) -> np.ndarray:
    """Label each prediction row ``train``, ``val`` or ``test``, chronologically.

    A boundary given as a date (``val_start`` / ``test_start``) puts every row on or after
    that date in the later split; a boundary not given falls at the fraction of the rows
    (``train_frac``, ``train_frac + val_frac``).

    Returns
    -------
    numpy.ndarray
        Object array of split names, one per row.
    """
    n = len(rows)
    val_at = _boundary(rows, spec.val_start, round(n * spec.train_frac), "--val-start")
    test_at = _boundary(rows, spec.test_start, round(n * (spec.train_frac + spec.val_frac)),
                        "--test-start")
    if test_at < val_at:
        raise ConfigError(
            f"the test split would start ({_date(rows, test_at)}) before the validation split "
            f"({_date(rows, val_at)}); give both --val-start and --test-start"
        )
    labels = np.empty(n, dtype=object)
    labels[:val_at] = C.TRAIN
    labels[val_at:test_at] = C.VAL
    labels[test_at:] = C.TEST
    return labels


def _boundary(rows: pd.DatetimeIndex, date: str | None, default: int, flag: str) -> int:
    if date is None:
        return int(default)
    try:
        ts = pd.Timestamp(date)
    except (ValueError, TypeError):
        raise ConfigError(f"{flag} {date!r}: not a date (use YYYY-MM-DD)") from None
    return int(rows.searchsorted(in_rows_timezone(rows, ts), side="left"))


def in_rows_timezone(rows: pd.DatetimeIndex, ts: pd.Timestamp) -> pd.Timestamp:
    """``ts`` comparable with ``rows``: a naive date is taken in their timezone, an aware one
    converted to naive when the rows are naive."""
    if rows.tz is not None and ts.tz is None:
        return ts.tz_localize(rows.tz)
    if rows.tz is None and ts.tz is not None:
        return ts.tz_convert(None)
    return ts


def _date(rows: pd.DatetimeIndex, i: int) -> str:
    return str(rows[min(i, len(rows) - 1)].date()) if len(rows) else "?"


# --- the prepared data set -----------------------------------------------------------------------


@dataclass
class FeatureSet:
    """Everything a run needs from the prices, as plain numpy arrays.

    Row ``i`` of the per-row arrays is prediction row ``t = window - 1 + i`` of the prices.
    """

    rows: pd.DatetimeIndex  # dates of the rows that have a full window (and a prediction)
    split: np.ndarray  # (N,) object: train / val / test
    close: np.ndarray  # (N,) close[t]
    actual_return: np.ndarray  # (N,) ln(close[t+1]/close[t]); NaN on the last bar
    momentum: np.ndarray  # (N,) ln(close[t]/close[t-1])
    x: np.ndarray  # (N + seq_len - 1, F) float32 scaled feature rows; windows are views of it
    y: np.ndarray  # (N,) float32 scaled target; NaN where unknown
    fit_rows: dict[str, np.ndarray]  # split -> row positions usable for fitting (target in split)
    scaler: Scaler  # features, fitted on training rows
    target_scaler: Scaler  # target, fitted on training fit rows
    state: dict[str, Any]  # JSON-able: everything needed to rebuild x for new prices

    @property
    def seq_len(self) -> int:
        return int(self.state["seq_len"])



def prepare(
    prices: pd.DataFrame,
    *,
    window: int,
    target: str = C.TARGET_RETURN,
    split: SplitSpec | None = None,
    name: str = "prices",
    fill: str = C.FILL_NEXT_OPEN,
) -> FeatureSet:
    """Features, target, splits and train-only scalers for one run.

    Parameters
    ----------
    prices : pandas.DataFrame
        A validated price frame.
    window : int
        Bars per input window (>= 2).
    target : {"return", "traded_return", "price"}
        ``"return"``: next log return (default); ``"traded_return"``: the return the fill
        earns (see :func:`traded_log_return`); ``"price"``: next close level (teaching).
    split : SplitSpec, optional
        Chronological split (default 70/15/15 of the rows with a prediction) and the fewest
        usable returns validation and test need (``min_returns``).
    name : str
        Label of the data used in error messages.
    fill : {"next_open", "close"}
        The strategy's fill; it defines the ``"traded_return"`` target (ignored otherwise).

    Returns
    -------
    FeatureSet

    Raises
    ------
    DataError
        Too few bars for the window and three non-empty splits.
    SplitTooSmall
        Training has fewer than 2 rows to fit on, or validation or test fewer than
        ``split.min_returns`` usable returns (:func:`usable_returns`).
    """
    split = split or SplitSpec()
    if not isinstance(window, int) or window < 2:
        raise ConfigError(f"window {window!r}: must be a whole number >= 2")
    n_bars = len(prices)
    n_rows = n_bars - window + 1
    need = window - 1 + sum(MIN_FIT_ROWS.values()) + 2
    if n_rows < sum(MIN_FIT_ROWS.values()) + 2:
        raise DataError(
            f"{name}: {n_bars} bars are too few for a {window}-bar window and train/validation/"
            f"test splits; need at least {need} (use a shorter --window or more data)"
        )
    first = first_feature_row(target)
    seq_len = window - first
    feats = bar_features(prices, target=target).to_numpy(np.float64)[first:]  # (n_bars-first, F)
    rows = prices.index[window - 1:]
    labels = split_labels(rows, split)

    close_all = prices[C.CLOSE].to_numpy(np.float64)
    close = close_all[window - 1:]
    actual = realised_return(prices, target, fill)[window - 1:]
    momentum = np.log(close / close_all[window - 2:-1])
    level = np.full(n_rows, np.nan)
    level[:-1] = close[1:]
    y_raw = level if target == C.TARGET_PRICE else actual

    # a row may be fitted on only when every bar its target uses (t+1, and t+2 for the
    # next-open traded return) is in the row's own split
    horizon = target_horizon(target, fill)
    same_next = np.zeros(n_rows, dtype=bool)
    same_next[:-horizon] = labels[horizon:] == labels[:-horizon]
    fit_rows = {s: np.flatnonzero((labels == s) & same_next) for s in (C.TRAIN, C.VAL)}
    check_split_sizes(labels, split, window=window, n_bars=n_bars, name=name, fill=fill,
                      target=target)

    last_train = int(np.flatnonzero(labels == C.TRAIN)[-1])
    train_feature_rows = feats[: last_train + seq_len]  # bars first .. the last training row
    scaler = Scaler.fit(train_feature_rows)
    target_scaler = Scaler.fit(y_raw[fit_rows[C.TRAIN]])
    x = scaler.transform(feats).astype(np.float32)
    y = target_scaler.transform(y_raw).ravel().astype(np.float32)
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0]) + first
        raise DataError(f"{name}: row {bad} ({prices.index[bad]}) gives a non-finite feature; "
                        "check that prices are positive and volume is not negative")
    state = {
        "target": target,
        "target_fill": fill if target == C.TARGET_TRADED else None,
        "window": window,
        "seq_len": seq_len,
        "first_feature_row": first,
        "feature_names": list(feature_names(target)),
        "scaler": scaler.to_dict(),
        "target_scaler": target_scaler.to_dict(),
        "drift": float(np.mean(actual[fit_rows[C.TRAIN]])),
    }
    return FeatureSet(
        rows=rows, split=labels, close=close, actual_return=actual, momentum=momentum,
        x=x, y=y, fit_rows=fit_rows, scaler=scaler, target_scaler=target_scaler, state=state,
    )


def transform(prices: pd.DataFrame, state: dict[str, Any]) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Scaled feature rows of new ``prices`` with a saved ``state`` (no refitting).

    Returns
    -------
    rows : pandas.DatetimeIndex
        Dates of the rows with a full window.
    x : numpy.ndarray
        (len(rows) + seq_len - 1, F) float32 feature rows; windows are views of it.
    """
    target, window = state["target"], int(state["window"])
    if len(prices) < window:
        raise DataError(f"{len(prices)} bars are fewer than the model's {window}-bar window")
    first = int(state["first_feature_row"])
    feats = bar_features(prices, target=target).to_numpy(np.float64)[first:]
    x = Scaler.from_dict(state["scaler"]).transform(feats).astype(np.float32)
    return prices.index[window - 1:], x


def windows(x: Any, seq_len: int) -> Any:
    """Sliding windows of feature rows as one strided view (no copy).

    Parameters
    ----------
    x : torch.Tensor
        (R, F) feature rows.
    seq_len : int
        Feature vectors per window.

    Returns
    -------
    torch.Tensor
        (R - seq_len + 1, seq_len, F) view: window ``i`` is rows ``i .. i + seq_len - 1``.
    """
    return x.unfold(0, seq_len, 1).transpose(1, 2)
