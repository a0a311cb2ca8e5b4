"""``run(config) -> RunResult``: the single path from a config to predictions and metrics.

load -> features -> fit -> predict -> evaluate -> backtest. The CLI and the GUI are two
thin front ends over :func:`run`; :func:`retrade` re-runs only the paper trading when the
user moves a strategy slider; :func:`predict` applies a saved model bundle without training.
Importing this module loads neither torch nor Qt.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox import evaluate
from sandbox.config import DataSpec, RunConfig, StrategyConfig
from sandbox.events import DataLoaded, OnEvent, StageStarted, emit

if TYPE_CHECKING:
    from sandbox.data import LoadedPrices
    from sandbox.export import Bundle
    from sandbox.training import TrainHistory

#: pipeline stage names (StageStarted.stage and keys of RunResult.timings)
STAGE_LOAD = "load"
STAGE_FEATURES = "features"
STAGE_FIT = "fit"
STAGE_PREDICT = "predict"
STAGE_BACKTEST = "backtest"
TIMING_TOTAL = "total"


@dataclass
class RunResult:
    """Everything one run produced. Frames are indexed by ``date``."""

    config: RunConfig
    data: LoadedPrices  # data.frame: the validated prices, all rows
    #: rows with a prediction (all splits): split, close, actual_return, predicted_return,
    #: position, strategy_return, equity (equity restarts at 1.0 in each split)
    predictions: pd.DataFrame
    baselines: dict[str, pd.DataFrame]  # random_walk, momentum, drift, buy_and_hold
    metrics: dict  # metrics.json of the test split
    metrics_by_split: dict[str, dict]  # the same for train, val and test
    history: TrainHistory
    #: the fitted torch module, in eval mode; None where the model lives in another process
    #: (the app trains in a child process: :attr:`weights` then carries it)
    model: Any
    feature_state: dict  # scalers, feature names, window, target kind (JSON-able)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    #: the model's weights as safetensors bytes, when :attr:`model` is not in this process
    weights: bytes | None = None
    test_hidden: bool = False  # see sandbox.results.ShownRun
    failed: dict[int, str] = field(default_factory=dict)  # always empty: one model
    member_metrics: dict[int, dict[str, dict]] = field(default_factory=dict)  # always empty
    band: None = None  # one model has no seed range
    #: a saved model applied to data (:func:`predict`): the trained run's split dates,
    #: ``{"train_end", "val_start", "test_start", "last_bar"}`` as ISO strings (None
    #: when the bundle predates them); None for a run trained here
    trained_split: dict[str, str | None] | None = None
    #: a saved model applied to data: run.json's "data" of the run that trained it (label,
    #: source, interval, rows, first, last, sha256), to tell whether the data is its own
    trained_data: dict[str, Any] | None = None
    #: walk-forward: one record per fold (dates, sizes, epochs, losses, forecast metrics;
    #: see :mod:`sandbox.walkforward`); empty for a single split
    folds: list[dict[str, Any]] = field(default_factory=list)
    #: walk-forward: fold -> {"train_loss": [...], "val_loss": [...]}
    fold_histories: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    #: walk-forward: the spec with ``start`` resolved to an ISO date; None for a single split
    walk_forward: dict[str, Any] | None = None
    #: walk-forward: each fold's weights (safetensors bytes) and feature state, fold order
    fold_weights: list[bytes] = field(default_factory=list, repr=False)
    fold_states: list[dict[str, Any]] = field(default_factory=list, repr=False)

    # --- sandbox.results.ShownRun --------------------------------------------------------------
    @property
    def seeds(self) -> list[int]:
        return [self.config.train.seed]

    @property
    def all_seeds(self) -> list[int]:
        return self.seeds

    @property
    def n_seeds(self) -> int:
        return 1

    @property
    def is_ensemble(self) -> bool:
        return False

    @property
    def can_save(self) -> bool:
        return self.model is not None or self.weights is not None

    @property
    def is_walk_forward(self) -> bool:
        return self.walk_forward is not None

    @property
    def histories(self) -> dict[int, dict[str, list[float]]]:
        """Loss curves: by seed (one run), or by fold for a walk-forward run."""
        if self.walk_forward is not None:
            return {k: {name: list(v) for name, v in h.items()}
                    for k, h in self.fold_histories.items()}
        return {self.config.train.seed: {"train_loss": list(self.history.train_loss),
                                         "val_loss": list(self.history.val_loss)}}

    def retrade(self, strategy: StrategyConfig) -> RunResult:
        """The same forecasts paper-traded with ``strategy`` (see :func:`retrade`)."""
        return retrade(self, strategy)


def run(
    config: RunConfig,
    on_event: OnEvent = None,
    cancel: threading.Event | None = None,
    *,
    prices: LoadedPrices | pd.DataFrame | None = None,
    evidence: bool = True,
    jobs: int | None = None,
) -> RunResult:
    """Load the data, train the model, predict every row and paper-trade it with baselines.

    With ``config.walk_forward`` set, the model is retrained fold by fold instead
    (:mod:`sandbox.walkforward`) and only the out-of-sample rows are predicted: they are
    labelled ``test`` and scored exactly as a test split, with a ``fold`` column.

    Parameters
    ----------
    config : RunConfig
        Data, split, model, training and strategy settings.
    on_event : callable, optional
        Receives StageStarted, DataLoaded, BatchEnd (throttled) and EpochEnd events.
    cancel : threading.Event, optional
        Set it to stop; checked before every batch.
    prices : LoadedPrices or pandas.DataFrame, optional
        Use these prices instead of loading ``config.data`` (a frame is validated first).
    evidence : bool
        Add the tests of significance to the validation and test metrics
        (:func:`sandbox.significance.add_evidence`); the parallel runner turns it off for
        the members of sweeps and ensembles, whose evidence is computed once for the whole.
    jobs : int, optional
        Walk-forward with cold folds: worker processes (default one per core, at most one
        per fold). Ignored otherwise.

    Returns
    -------
    RunResult

    Raises
    ------
    Cancelled
        ``cancel`` was set.
    TrainingError
        The loss became NaN or infinite.
    DataError
        Too little history for the window and the splits (or unusable data).
    """
    from sandbox import features

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    _check_cancel(cancel, "before loading data")

    emit(on_event, StageStarted(STAGE_LOAD, f"loading {config.data.source}"))
    t = time.perf_counter()
    loaded = _load(config, prices, on_event)
    frame = loaded.frame
    timings[STAGE_LOAD] = time.perf_counter() - t
    _check_cancel(cancel, "after loading data")
    if config.walk_forward is not None:
        return _run_walk_forward(config, loaded, on_event, cancel, timings, t_start,
                                 evidence=evidence, jobs=jobs)

    emit(on_event, StageStarted(STAGE_FEATURES, "building features and splits"))
    t = time.perf_counter()
    fs = features.prepare(frame, window=config.model.window, target=config.model.target,
                          split=config.split, name=loaded.label, fill=config.strategy.fill)
    timings[STAGE_FEATURES] = time.perf_counter() - t

    model, history, predicted, t_fit, t_pred = _fit_and_predict(config, fs, on_event, cancel)
    timings[STAGE_FIT], timings[STAGE_PREDICT] = t_fit, t_pred

    emit(on_event, StageStarted(STAGE_BACKTEST, "paper trading the model and the baselines"))
    t = time.perf_counter()
    model_frame = evaluate.predictor_frame(fs.rows, fs.split, fs.close, fs.actual_return,
                                           predicted)
    baseline_frames = evaluate.baseline_frames(fs.rows, fs.split, fs.close, fs.actual_return,
                                               fs.momentum, fs.state["drift"])
    result = RunResult(
        config=config, data=loaded, predictions=model_frame, baselines=baseline_frames,
        metrics={}, metrics_by_split={}, history=history, model=model,
        feature_state=fs.state, timings=timings,
    )
    result = _trade(result, config.strategy, recompute_forecast=True, evidence=evidence)
    timings[STAGE_BACKTEST] = time.perf_counter() - t
    timings[TIMING_TOTAL] = time.perf_counter() - t_start
    return result


def _run_walk_forward(config: RunConfig, loaded: LoadedPrices, on_event: OnEvent,
                      cancel: threading.Event | None, timings: dict[str, float],
                      t_start: float, *, evidence: bool, jobs: int | None) -> RunResult:
    """:func:`run` for a walk-forward config: fit the folds, stitch, trade as a test split."""
    from sandbox import features, walkforward

    frame = loaded.frame
    spec = config.walk_forward
    assert spec is not None
    emit(on_event, StageStarted(
        STAGE_FIT, f"walk-forward: {config.model.kind} retrained every {spec.retrain_every} "
                   f"bars ({'warm-started, in sequence' if spec.warm_start else 'cold folds'})"))
    t = time.perf_counter()
    wf = walkforward.run(frame, config, on_event=on_event, cancel=cancel, jobs=jobs)
    timings[STAGE_FIT] = time.perf_counter() - t
    timings[STAGE_PREDICT] = 0.0  # each fold predicted its own bars while fitting

    emit(on_event, StageStarted(STAGE_BACKTEST, "paper trading the model and the baselines"))
    t = time.perf_counter()
    close_all = frame[C.CLOSE].to_numpy(np.float64)
    p0 = wf.plan.start
    close = close_all[p0:]
    actual = features.realised_return(frame, config.model.target, config.strategy.fill)[p0:]
    momentum = np.log(close / close_all[p0 - 1:-1])
    labels = np.full(len(wf.rows), C.TEST, dtype=object)
    model_frame = evaluate.predictor_frame(wf.rows, labels, close, actual, wf.predicted)
    model_frame[C.FOLD] = wf.fold
    forecasts = evaluate.baseline_forecasts(momentum, 0.0, len(wf.rows))
    forecasts[C.DRIFT] = wf.drift
    baseline_frames = {name: evaluate.predictor_frame(wf.rows, labels, close, actual, values)
                       for name, values in forecasts.items()}
    last = wf.outputs[-1]
    result = RunResult(
        config=config, data=loaded, predictions=model_frame, baselines=baseline_frames,
        metrics={}, metrics_by_split={}, history=last.history, model=None,
        feature_state=last.state, timings=timings, weights=last.weights,
        folds=wf.folds,
        fold_histories={o.fold: {"train_loss": [float(v) for v in o.history.train_loss],
                                 "val_loss": [float(v) for v in o.history.val_loss]}
                        for o in wf.outputs},
        walk_forward=wf.spec, fold_weights=[o.weights for o in wf.outputs],
        fold_states=[o.state for o in wf.outputs],
    )
    result = _trade(result, config.strategy, recompute_forecast=True, evidence=evidence)
    timings[STAGE_BACKTEST] = time.perf_counter() - t
    timings[TIMING_TOTAL] = time.perf_counter() - t_start
    return result


#: what the run's machine chose rather than its data and settings: kept out of metrics.json
#: (which is then the same wherever the run is repeated), recorded in run.json
_MACHINE_FOLD_KEYS = ("seconds",)
_MACHINE_WALK_KEYS = ("jobs",)


def walk_forward_metrics(result: RunResult) -> dict[str, Any]:
    """metrics.json of a walk-forward run: the out-of-sample ("test") metrics with
    ``"split": "walk_forward"``, then ``"folds"`` and the resolved ``"walk_forward"`` spec
    (without the wall times and worker count, which run.json keeps)."""
    folds = [{k: v for k, v in f.items() if k not in _MACHINE_FOLD_KEYS} for f in result.folds]
    walk = {k: v for k, v in (result.walk_forward or {}).items() if k not in _MACHINE_WALK_KEYS}
    return {**result.metrics_by_split[C.TEST], evaluate.KEY_SPLIT: C.WALK_FORWARD,
            "folds": folds, C.WALK_FORWARD: walk}


def retrade(result: RunResult, strategy: StrategyConfig) -> RunResult:
    """Re-run only positions, P&L and trading metrics with a new strategy (fast).

    Forecasts and forecast metrics are kept; the returned result shares the model,
    the data and the training history with ``result``.
    """
    t = time.perf_counter()
    new = dataclasses.replace(result, config=result.config.replace(strategy=strategy),
                              timings=dict(result.timings))
    new = _trade(new, strategy, recompute_forecast=False)
    new.timings["retrade"] = time.perf_counter() - t
    return new


def predict(folder: str | os.PathLike[str] | Bundle, prices: LoadedPrices, spec: DataSpec,
            strategy: StrategyConfig | None = None) -> RunResult:
    """Apply a saved model bundle to ``prices`` without training, and paper-trade it.

    The result is a :class:`RunResult` like a trained run's, so the chart, the metrics table,
    re-trading and the exports treat both alike. Rows are labelled by the dates of the run
    that trained the model (``run.json`` "splits", :func:`trained_labels`): only rows on or
    after its test start are called ``test`` (out-of-sample), whatever data is loaded.
    Qt-free; the app calls it on a worker.

    Parameters
    ----------
    folder : path or Bundle
        A folder written by Save model... or ``sandbox train --out`` (or it, loaded).
    prices : LoadedPrices
        The prices to predict (e.g. those on the chart).
    spec : DataSpec
        Where ``prices`` came from (recorded in the result's config).
    strategy : StrategyConfig, optional
        Rule, threshold, fill and costs to trade the predictions with (default: the
        bundle's own).

    Returns
    -------
    RunResult
        With an empty training history and :attr:`RunResult.trained_split` set.

    Raises
    ------
    ExportError
        The bundle is missing, unreadable or does not fit its config.
    DataError
        The prices are too short for the model's window.
    """
    from sandbox import export
    from sandbox.training import TrainHistory

    bundle = folder if isinstance(folder, export.Bundle) else export.load_bundle(folder)
    strategy = strategy or bundle.config.strategy
    frame = prices.frame
    predicted = bundle.predict(frame)  # rows with a full window: close, actual, predicted
    rows = predicted.index
    labels = trained_labels(rows, bundle.splits)
    window = int(bundle.feature_state["window"])
    close_all = frame[C.CLOSE].to_numpy(np.float64)
    close = predicted[C.CLOSE].to_numpy(np.float64)
    actual = predicted[C.ACTUAL_RETURN].to_numpy(np.float64)
    momentum = np.log(close / close_all[window - 2:len(close_all) - 1])

    model_frame = evaluate.predictor_frame(rows, labels, close, actual,
                                           predicted[C.PREDICTED_RETURN].to_numpy(np.float64))
    baselines = evaluate.baseline_frames(rows, labels, close, actual, momentum,
                                         float(bundle.feature_state["drift"]))
    result = RunResult(
        config=bundle.config.replace(data=spec, strategy=strategy), data=prices,
        predictions=model_frame, baselines=baselines, metrics={}, metrics_by_split={},
        history=TrainHistory(), model=bundle.model, feature_state=bundle.feature_state,
        timings={}, trained_split=bundle.splits or {}, trained_data=bundle.data,
    )
    return _trade(result, strategy, recompute_forecast=True)


def foreign_data(result: RunResult) -> str | None:
    """For a saved model applied to data that is not its own (another symbol or file, or
    another bar size), a short sentence that says so; None otherwise (or for a run trained
    here). The bar size is compared by bars per year, measured on each data set."""
    trained = result.trained_data
    if not trained:
        return None
    here = result.data.label
    there = str(trained.get("label") or "?")
    other_symbol = there.upper() != str(here).upper()
    p_then = trained.get(C.PERIODS_PER_YEAR)
    p_now = result.metrics.get(C.PERIODS_PER_YEAR)
    other_bars = (isinstance(p_then, int | float) and isinstance(p_now, int | float)
                  and p_then > 0 and p_now > 0 and not 0.8 <= p_now / p_then <= 1.25)
    if not (other_symbol or other_bars):
        return None
    then = f"{there} ({_bar_words(p_then)})" if other_bars else there
    now = f"{here} ({_bar_words(p_now)})" if other_bars else str(here)
    return f"a model trained on {then}, applied to {now}"


def _bar_words(periods: Any) -> str:
    if not isinstance(periods, int | float) or periods <= 0:
        return "unknown bars"
    for limit, words in ((2, "yearly bars"), (6, "quarterly bars"), (24, "monthly bars"),
                         (100, "weekly bars"), (500, "daily bars")):
        if periods < limit:
            return words
    return f"intraday bars, {periods:,.0f} a year"


def trained_labels(rows: pd.DatetimeIndex, splits: dict[str, str | None] | None) -> np.ndarray:
    """Split labels of ``rows`` by the dates of the run that trained a model.

    Rows up to its last training row are ``train``, rows before its test start ``val``,
    rows from its test start on ``test``. A bundle that predates the stored dates
    (``splits`` empty or None) only knows the last bar it was trained on: every row up to
    that bar is labelled ``train`` (seen, in some split, while training), later rows
    ``test``.

    Parameters
    ----------
    rows : pandas.DatetimeIndex
        Dates of the rows to label.
    splits : dict or None
        ``run.json`` "splits" (see :data:`sandbox.export.SPLIT_KEYS`).
    """
    from sandbox import export

    splits = splits or {}
    labels = np.full(len(rows), C.TEST, dtype=object)
    train_end = _at(rows, splits.get(export.SPLIT_TRAIN_END))
    test_start = _at(rows, splits.get(export.SPLIT_TEST_START))
    if train_end is None or test_start is None:
        last = _at(rows, splits.get(export.SPLIT_LAST_BAR))
        if last is not None:
            labels[rows <= last] = C.TRAIN
        return labels
    labels[rows < test_start] = C.VAL
    labels[rows <= train_end] = C.TRAIN
    return labels


def _at(rows: pd.DatetimeIndex, value: str | None) -> pd.Timestamp | None:
    """``value`` as a timestamp comparable with ``rows`` (their timezone), or None."""
    from sandbox.features import in_rows_timezone

    return in_rows_timezone(rows, pd.Timestamp(value)) if value else None


# --- steps -----------------------------------------------------------------------------------


def _load(config: RunConfig, prices: Any, on_event: OnEvent) -> LoadedPrices:
    from sandbox.data import LoadedPrices, load_prices, validate_prices

    min_rows = config.model.window + 5
    if prices is None:
        return load_prices(config.data, min_rows=min_rows, on_event=on_event)
    if isinstance(prices, pd.DataFrame):
        frame, warnings = validate_prices(prices, name="prices", min_rows=min_rows)
        prices = LoadedPrices(frame=frame, label="prices", source="frame", warnings=warnings)
    frame = prices.frame
    emit(on_event, DataLoaded(
        label=prices.label, n_rows=len(frame), first=str(frame.index[0]),
        last=str(frame.index[-1]), from_cache=prices.from_cache, cached_at=prices.cached_at,
        warnings=tuple(prices.warnings),
    ))
    return prices


def _fit_and_predict(config: RunConfig, fs: Any, on_event: OnEvent,
                     cancel: threading.Event | None) -> tuple[Any, Any, np.ndarray, float, float]:
    import torch

    from sandbox import features, models, training

    emit(on_event, StageStarted(STAGE_FIT, f"training {config.model.kind} on "
                                           f"{len(fs.fit_rows[C.TRAIN])} windows"))
    t = time.perf_counter()
    training.configure_torch(config.train)
    x = torch.from_numpy(fs.x)  # (R, F)
    windows = features.windows(x, fs.seq_len)  # (N, L, F) view
    targets = torch.from_numpy(fs.y)  # (N,)
    model = models.build_model(config.model, x.shape[1])
    history = training.fit(
        model, windows, targets,
        torch.from_numpy(fs.fit_rows[C.TRAIN]), torch.from_numpy(fs.fit_rows[C.VAL]),
        config.train, on_event=on_event, cancel=cancel,
    )
    t_fit = time.perf_counter() - t

    emit(on_event, StageStarted(STAGE_PREDICT, "predicting every row (test split: once)"))
    t = time.perf_counter()
    predicted = predicted_returns(training.predict(model, windows), fs.state, fs.close)
    return model, history, predicted, t_fit, time.perf_counter() - t


def predicted_returns(outputs: np.ndarray, state: dict[str, Any],
                      close: np.ndarray) -> np.ndarray:
    """Model outputs (scaled) -> predicted log returns.

    For the teaching ``price`` target the output is the next close level, and the predicted
    return is ``ln(predicted_close / close[t])`` (NaN if a level <= 0 is predicted).
    """
    from sandbox.features import Scaler

    values = Scaler.from_dict(state["target_scaler"]).inverse(
        np.asarray(outputs, dtype=np.float64)).ravel()
    if state["target"] == C.TARGET_PRICE:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(values > 0, np.log(values / close), np.nan)
    return values


def _trade(result: RunResult, strategy: StrategyConfig, *, recompute_forecast: bool,
           evidence: bool = True) -> RunResult:
    trades = evaluate.trade_all(
        result.data.frame, result.predictions, result.baselines, strategy,
        target=result.feature_state["target"],
        forecast_metrics=None if recompute_forecast else result.metrics_by_split,
    )
    result.predictions = trades.predictions
    result.baselines = trades.baselines
    result.metrics_by_split = trades.metrics_by_split
    result.metrics = trades.metrics_by_split[C.TEST]
    if evidence:
        from sandbox import significance

        significance.add_evidence(result)
    if result.walk_forward is not None:
        result.metrics = walk_forward_metrics(result)
    return result


def _check_cancel(cancel: threading.Event | None, where: str) -> None:
    if cancel is not None and cancel.is_set():
        from sandbox.errors import Cancelled

        raise Cancelled(f"run cancelled {where}")
