"""Walk-forward evaluation: retrain every ``retrain_every`` bars on the bars seen so far.

Folds are anchored at the walk-forward start ``P0`` (the first out-of-sample bar) and step
by ``R = retrain_every`` bars: fold ``k`` predicts the bars ``P = P0 + k R .. P + R - 1``
(the last fold may be shorter). Nothing about a fold depends on where the data ends, so
the prediction of a bar is the same whether the data stops at that bar or runs on.

Fold ``k`` is trained at the close of bar ``P - 1`` and uses nothing later. With ``W`` the
window, ``V = val_length``, ``h`` the longer of the target's and the trading return's
horizon (:func:`sandbox.features.target_horizon`, :func:`~sandbox.features.trade_horizon`)
and ``r0`` its first training row (``W - 1`` expanding; ``P - train_length`` rolling):

- validation rows ``t`` in ``[P - V, P - 1 - h]`` (early stopping; their targets end at
  ``P - 1`` at the latest);
- training rows ``t`` in ``[r0, P - V - 1 - h]`` (their targets end before the validation
  rows; the ``h`` rows before each boundary are purged);
- the feature scaler is fitted on the feature bars the training rows' windows see (up to
  bar ``P - V - 1``), the target scaler and the drift baseline on the training rows'
  targets, all fold by fold;
- predictions for the rows ``[P, min(P + R, n) - 1]``, in fixed-size chunks that start at
  ``P`` (:func:`sandbox.training.predict`).

The number of fits is ``ceil(out-of-sample bars / R)``. Cold folds (``warm_start`` off)
are independent: each starts from its own seed (:func:`fold_seed`) and they run in parallel
on :func:`sandbox.runs.map_calls` with one torch thread each. Warm folds run in sequence:
fold ``k`` starts from fold ``k - 1``'s weights and trains at most ``warm_epochs``.

A fractional ``start`` is resolved once to the date of the prediction row at that fraction
(as a single split's fractions are); the date is what run.json records.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox import features
from sandbox.config import ModelConfig, RunConfig, TrainConfig, WalkForwardSpec
from sandbox.errors import ConfigError, DataError
from sandbox.events import FoldFinished, FoldStarted, OnEvent, emit

if TYPE_CHECKING:
    from sandbox.training import TrainHistory

log = logging.getLogger(__name__)

#: fewest rows a fold fits on (training) and early-stops on (validation)
MIN_TRAIN_ROWS = features.MIN_FIT_ROWS[C.TRAIN]
MIN_VAL_ROWS = features.MIN_FIT_ROWS[C.VAL]

#: keys of each fold's record (RunResult.folds, metrics.json "folds")
KEY_FOLD = C.FOLD
KEY_RMSE_DIFF = "rmse_diff"  # model rmse - random walk rmse on the fold's rows
KEY_START_GIVEN = "start_given"  # the start as the user gave it (date or fraction)
KEY_N_FOLDS = "n_folds"
KEY_OOS_BARS = "oos_bars"
KEY_JOBS = "jobs"


# --- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldPlan:
    """One fold's rows as bar positions of the price frame (stops are exclusive)."""

    fold: int
    first_row: int  # r0: the first training row
    val_start: int  # P - V: the first validation row
    predict_start: int  # P: the first bar the fold predicts
    predict_stop: int  # one past the last bar it predicts


@dataclass(frozen=True)
class Plan:
    """Every fold of a walk-forward run over one price frame."""

    folds: tuple[FoldPlan, ...]
    start: int  # P0: position of the first out-of-sample bar
    start_date: str  # P0's date (ISO)
    horizon: int  # h: bars a row's target or trading return looks ahead
    n_bars: int

    @property
    def oos_bars(self) -> int:
        return self.n_bars - self.start


def fold_count(oos_bars: int, retrain_every: int) -> int:
    """Fits of a walk-forward run: ``ceil(oos_bars / retrain_every)``."""
    return math.ceil(oos_bars / retrain_every)


def fold_seed(seed: int, fold: int) -> int:
    """The seed of fold ``fold`` of a run seeded ``seed`` (numpy ``SeedSequence`` with the
    fold as its spawn key: distinct for every fold and run seed, the same every time)."""
    return int(np.random.SeedSequence(seed, spawn_key=(fold,)).generate_state(1)[0])


def resolve_start(index: pd.DatetimeIndex, spec: WalkForwardSpec, *, window: int) -> int:
    """Position of the first out-of-sample bar.

    A date: the first bar on or after it. A fraction ``f``: the prediction row at ``f`` of
    the rows that have a full window (``round(N f)``, as the single split's fractions).

    Raises
    ------
    ConfigError
        Not a date, or no bar on or after it.
    """
    n = len(index)
    if isinstance(spec.start, str):
        try:
            ts = pd.Timestamp(spec.start)
        except (ValueError, TypeError):
            raise ConfigError(f"walk-forward start {spec.start!r}: not a date (use "
                              "YYYY-MM-DD) or a fraction such as 0.7") from None
        pos = int(index.searchsorted(features.in_rows_timezone(index, ts), side="left"))
        if pos >= n:
            raise ConfigError(f"walk-forward start {spec.start}: after the last bar of the "
                              f"data ({index[-1].date()}); choose an earlier start")
        return pos
    n_rows = n - window + 1
    return min(n - 1, window - 1 + round(n_rows * float(spec.start)))


def plan(index: pd.DatetimeIndex, spec: WalkForwardSpec, *, window: int, target: str,
         fill: str) -> Plan:
    """The folds of ``spec`` over bars ``index``.

    Raises
    ------
    ConfigError
        The spec cannot work on this data: too few bars before the start for the window,
        the validation bars and two training rows (or for the rolling length), or too few
        validation bars to leave one after purging.
    """
    n = len(index)
    h = max(features.target_horizon(target, fill), features.trade_horizon(fill))
    p0 = resolve_start(index, spec, window=window)
    start_date = _iso(index[p0])
    v, r = spec.val_length, spec.retrain_every
    if v - h < MIN_VAL_ROWS:
        raise ConfigError(f"--val-length {v}: must be at least {h + MIN_VAL_ROWS} bars (each "
                          f"row's returns look {h} bars ahead, so the last {h} are purged)")
    if spec.window_mode == C.ROLLING:
        length = int(spec.train_length or 0)
        if length - v - h < MIN_TRAIN_ROWS:
            raise ConfigError(f"--rolling {length}: must be at least {v + h + MIN_TRAIN_ROWS} "
                              f"bars ({v} validation bars, {h} purged, {MIN_TRAIN_ROWS} to "
                              "train on)")
        if p0 - length < window - 1:
            raise ConfigError(
                f"--rolling {length}: the first fold needs {length + window - 1} bars before "
                f"the walk-forward start {start_date[:10]} ({length} training bars and a "
                f"{window}-bar window), the data has {p0}; start later or roll fewer bars")
    else:
        need = window + v + h + MIN_TRAIN_ROWS - 1
        if p0 < need:
            raise ConfigError(
                f"walk-forward start {start_date[:10]}: needs at least {need} bars before it "
                f"(a {window}-bar window, {v} validation bars, {h} purged, {MIN_TRAIN_ROWS} "
                f"to train on), the data has {p0}; start later or use a shorter --window or "
                "--val-length")
    folds = []
    for k in range(fold_count(n - p0, r)):
        p = p0 + k * r
        first = p - int(spec.train_length) if spec.window_mode == C.ROLLING else window - 1
        folds.append(FoldPlan(fold=k, first_row=first, val_start=p - v, predict_start=p,
                              predict_stop=min(p + r, n)))
    return Plan(folds=tuple(folds), start=p0, start_date=start_date, horizon=h, n_bars=n)


# --- one fold ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldJob:
    """Everything one fold needs, as plain arrays (small enough to send to a worker).

    Row arrays start at the fold's first training row ``r0``; ``feats`` starts at the first
    bar of that row's window (``r0 - seq_len + 1`` of the feature bars).
    """

    plan: FoldPlan
    horizon: int
    model: ModelConfig
    train: TrainConfig  # seed: the fold's; epochs: warm folds' limit
    state_base: dict[str, Any]  # target, target_fill, window, seq_len, first_feature_row, names
    feats: np.ndarray  # (seq_len - 1 + rows, F) float64 per-bar features
    y_raw: np.ndarray  # (rows,) unscaled target per row
    actual: np.ndarray  # (rows,) realised return per row (drift baseline)
    close: np.ndarray  # (rows,) close per row
    init: bytes | None = None  # safetensors weights to start from (warm start)


@dataclass
class FoldOutput:
    """What one fold returns (plain data)."""

    fold: int
    seed: int
    predicted: np.ndarray  # (n_predict,) float64 predicted returns
    state: dict[str, Any]  # feature state (scalers, drift): a bundle's run.json
    weights: bytes  # safetensors
    history: TrainHistory
    n_train: int
    n_val: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def fit_fold(job: FoldJob, cancel: threading.Event | None = None,
             on_event: OnEvent = None) -> FoldOutput:
    """Fit one fold's scalers and model on its own rows and predict its out-of-sample bars.

    Parameters
    ----------
    job : FoldJob
        The fold's rows and settings.
    cancel : threading.Event, optional
        Checked before every batch.
    on_event : callable, optional
        Receives the fold's BatchEnd / EpochEnd events (warm folds, in this process).

    Returns
    -------
    FoldOutput
    """
    import time

    import torch
    from safetensors.torch import load as load_weights
    from safetensors.torch import save as save_weights

    from sandbox import models, training
    from sandbox.pipeline import predicted_returns

    started = time.perf_counter()
    p, r0, h = job.plan, job.plan.first_row, job.horizon
    seq_len = int(job.state_base["seq_len"])
    train_rows = np.arange(0, p.val_start - h - r0, dtype=np.int64)
    val_rows = np.arange(p.val_start - r0, p.predict_start - h - r0, dtype=np.int64)
    scaler_bars = p.val_start - r0 + seq_len - 1  # feature bars up to the last training row
    scaler = features.Scaler.fit(job.feats[:scaler_bars])
    target_scaler = features.Scaler.fit(job.y_raw[train_rows])
    x = scaler.transform(job.feats).astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"fold {p.fold}: a feature is not finite; check that prices are "
                        "positive and volume is not negative")
    y = target_scaler.transform(job.y_raw).ravel().astype(np.float32)
    state = {**job.state_base, "scaler": scaler.to_dict(),
             "target_scaler": target_scaler.to_dict(),
             "drift": float(np.mean(job.actual[train_rows]))}

    training.configure_torch(job.train)
    xt = torch.from_numpy(x)  # (R, F)
    windows = features.windows(xt, seq_len)  # (rows, L, F) view
    model = models.build_model(job.model, x.shape[1])
    if job.init is not None:
        model.load_state_dict(load_weights(job.init))
    history = training.fit(model, windows, torch.from_numpy(y), torch.from_numpy(train_rows),
                           torch.from_numpy(val_rows), job.train, on_event=on_event,
                           cancel=cancel)
    a, b = p.predict_start - r0, p.predict_stop - r0
    outputs = training.predict(model, windows[a:b])
    predicted = predicted_returns(outputs, state, job.close[a:b])
    weights = save_weights({k: v.detach().contiguous().cpu()
                            for k, v in model.state_dict().items()})
    history.batch_loss = []  # not needed across processes
    return FoldOutput(fold=p.fold, seed=job.train.seed, predicted=predicted, state=state,
                      weights=weights, history=history, n_train=len(train_rows),
                      n_val=len(val_rows), seconds=time.perf_counter() - started)


def _fit_cold(job: FoldJob, cancel: threading.Event | None) -> FoldOutput:
    """:func:`fit_fold` as :func:`sandbox.runs.map_calls` calls it (module level: it is
    pickled by reference)."""
    return fit_fold(job, cancel)


# --- the whole walk ------------------------------------------------------------------------------


@dataclass
class WalkForward:
    """The stitched out-of-sample predictions and every fold's record."""

    plan: Plan
    rows: pd.DatetimeIndex  # the out-of-sample bars
    fold: np.ndarray  # (n,) int64 fold of each row
    predicted: np.ndarray  # (n,) float64
    drift: np.ndarray  # (n,) the fold's training mean target, per row
    outputs: list[FoldOutput]  # in fold order
    folds: list[dict[str, Any]]  # RunResult.folds
    spec: dict[str, Any]  # RunResult.walk_forward
    jobs: int


def job_base(frame: pd.DataFrame, config: RunConfig) -> dict[str, Any]:
    """Per-bar arrays every fold slices: features, target, realised return, close."""
    target, fill, window = config.model.target, config.strategy.fill, config.model.window
    first = features.first_feature_row(target)
    close = frame[C.CLOSE].to_numpy(np.float64)
    actual = features.realised_return(frame, target, fill)
    if target == C.TARGET_PRICE:
        y_raw = np.full(len(close), np.nan)
        y_raw[:-1] = close[1:]
    else:
        y_raw = actual
    return {
        "feats": features.bar_features(frame, target=target).to_numpy(np.float64),
        "y_raw": y_raw, "actual": actual, "close": close,
        "state": {"target": target, "target_fill": fill if target == C.TARGET_TRADED else None,
                  "window": window, "seq_len": window - first, "first_feature_row": first,
                  "feature_names": list(features.feature_names(target))},
    }


def make_job(base: dict[str, Any], fold: FoldPlan, config: RunConfig, horizon: int, *,
             seed: int, epochs: int, threads: int | None) -> FoldJob:
    """The :class:`FoldJob` of ``fold`` (arrays sliced from :func:`job_base`)."""
    seq_len = int(base["state"]["seq_len"])
    r0, stop = fold.first_row, fold.predict_stop
    rows = slice(r0, stop)
    return FoldJob(
        plan=fold, horizon=horizon, model=config.model,
        train=config.train.replace(seed=seed, epochs=epochs, threads=threads),
        state_base=dict(base["state"]),
        feats=np.ascontiguousarray(base["feats"][r0 - seq_len + 1:stop]),
        y_raw=base["y_raw"][rows].copy(), actual=base["actual"][rows].copy(),
        close=base["close"][rows].copy(),
    )


def run(frame: pd.DataFrame, config: RunConfig, *, on_event: OnEvent = None,
        cancel: threading.Event | None = None, jobs: int | None = None) -> WalkForward:
    """Fit every fold of ``config.walk_forward`` on ``frame`` and stitch the predictions.

    Parameters
    ----------
    frame : pandas.DataFrame
        A validated price frame.
    config : RunConfig
        With ``walk_forward`` set.
    on_event : callable, optional
        FoldStarted / FoldFinished (and, for warm folds, BatchEnd / EpochEnd).
    cancel : threading.Event, optional
        Stops the folds (the workers of parallel cold folds are killed).
    jobs : int, optional
        Worker processes for cold folds (default one per core, at most one per fold).

    Returns
    -------
    WalkForward

    Raises
    ------
    ConfigError
        The spec does not fit the data (see :func:`plan`).
    Cancelled
        ``cancel`` was set.
    """
    from sandbox import runs

    spec = config.walk_forward
    if spec is None:
        raise ConfigError("walk-forward settings are missing")
    pl = plan(frame.index, spec, window=config.model.window, target=config.model.target,
              fill=config.strategy.fill)
    n_folds = len(pl.folds)
    log.info("walk-forward: %d fits = ceil(%d out-of-sample bars / %d), from %s",
             n_folds, pl.oos_bars, spec.retrain_every, pl.start_date[:10])
    base = job_base(frame, config)
    dates = frame.index

    def started(f: FoldPlan) -> None:
        emit(on_event, FoldStarted(f.fold, n_folds, _iso(dates[f.predict_start]),
                                   _iso(dates[f.predict_stop - 1])))

    def finished(out: FoldOutput) -> None:
        hist = out.history
        emit(on_event, FoldFinished(out.fold, n_folds, tuple(map(float, hist.train_loss)),
                                    tuple(map(float, hist.val_loss)),
                                    math.nan if hist.best_val_loss is None
                                    else float(hist.best_val_loss)))

    seed = config.train.seed
    outputs: list[FoldOutput] = []
    if spec.warm_start:
        used_jobs = 1
        init: bytes | None = None
        for f in pl.folds:
            started(f)
            epochs = config.train.epochs if f.fold == 0 else min(config.train.epochs,
                                                                 spec.warm_epochs)
            job = make_job(base, f, config, pl.horizon, seed=fold_seed(seed, f.fold),
                           epochs=epochs, threads=config.train.threads)
            job = dataclasses.replace(job, init=init)
            out = fit_fold(job, cancel, on_event)
            init = out.weights
            outputs.append(out)
            finished(out)
    else:
        used_jobs = jobs if jobs is not None else runs.parallel_jobs(n_folds)
        used_jobs = max(1, min(used_jobs, n_folds))
        # the longest folds first, so no worker is left with a long one at the end
        order = sorted(pl.folds, key=lambda f: (f.first_row - f.val_start, f.fold))
        cold = [make_job(base, f, config, pl.horizon, seed=fold_seed(seed, f.fold),
                         epochs=config.train.epochs, threads=1) for f in order]
        for f in pl.folds:
            started(f)
        done = runs.map_calls(_fit_cold, cold, jobs=used_jobs,
                              on_result=lambda _i, out: finished(out), cancel=cancel)
        outputs = sorted(done, key=lambda out: out.fold)
    return _stitch(frame, pl, spec, outputs, base, used_jobs)


def _stitch(frame: pd.DataFrame, pl: Plan, spec: WalkForwardSpec, outputs: list[FoldOutput],
            base: dict[str, Any], jobs: int) -> WalkForward:
    from sandbox import evaluate

    dates = frame.index
    actual = base["actual"]
    fold_ids, predicted, drift, records = [], [], [], []
    for f, out in zip(pl.folds, outputs, strict=True):
        n = f.predict_stop - f.predict_start
        fold_ids.append(np.full(n, f.fold, dtype=np.int64))
        predicted.append(np.asarray(out.predicted, dtype=np.float64))
        drift.append(np.full(n, out.state["drift"]))
        a = actual[f.predict_start:f.predict_stop]
        model = evaluate.forecast_metrics(out.predicted, a)
        walk = evaluate.forecast_metrics(np.zeros(n), a)
        diff = (model[C.RMSE] - walk[C.RMSE]
                if model[C.RMSE] is not None and walk[C.RMSE] is not None else None)
        hist = out.history
        records.append({
            KEY_FOLD: f.fold,
            "train_start": _iso(dates[f.first_row]),
            "train_end": _iso(dates[f.val_start - 1]),
            "val_start": _iso(dates[f.val_start]),
            "predict_start": _iso(dates[f.predict_start]),
            "predict_end": _iso(dates[f.predict_stop - 1]),
            "seen_end": _iso(dates[f.predict_start - 1]),  # the last bar the fold saw
            "n_train": out.n_train,
            "n_val": out.n_val,
            "n_predict": n,
            "seed": out.seed,
            "epochs": int(hist.epochs_run),
            "best_epoch": hist.best_epoch,
            "best_val_loss": hist.best_val_loss,
            "seconds": out.seconds,
            "metrics": {C.MODEL: model, C.RANDOM_WALK: walk, KEY_RMSE_DIFF: diff},
        })
    resolved = {**spec.to_dict(), "start": pl.start_date, KEY_START_GIVEN: spec.start,
                KEY_N_FOLDS: len(pl.folds), KEY_OOS_BARS: pl.oos_bars, KEY_JOBS: jobs}
    return WalkForward(
        plan=pl, rows=dates[pl.start:], fold=np.concatenate(fold_ids),
        predicted=np.concatenate(predicted), drift=np.concatenate(drift), outputs=outputs,
        folds=records, spec=resolved, jobs=jobs,
    )


def fold_splits(record: dict[str, Any]) -> dict[str, str | None]:
    """A fold's bundle "splits" (run.json): its training end, validation start and first
    predicted bar (``test_start``), so ``sandbox predict`` labels its rows by them."""
    from sandbox import export

    return {export.SPLIT_TRAIN_END: record["train_end"],
            export.SPLIT_VAL_START: record["val_start"],
            export.SPLIT_TEST_START: record["predict_start"],
            export.SPLIT_LAST_BAR: record["seen_end"]}


def _iso(ts: Any) -> str:
    return pd.Timestamp(ts).isoformat()
