"""The parallel runner: many ``pipeline.run`` calls, in this process or in worker processes.

Sweeps and seed ensembles both hand their runs to :func:`run_all`; it executes them one after
another in this process (``jobs=1``), in local loky worker processes (``joblib.Parallel``), or
on a Dask distributed cluster (joblib's ``dask`` backend), and streams each finished run back
as a :class:`RunRecord` in completion order. Setting the cancel event stops dispatching,
ends the workers and raises :class:`~sandbox.errors.Cancelled`.

Every run uses one torch thread (``TrainConfig.threads = 1``), so workers do not
oversubscribe the cores and a run gives the same numbers whichever worker executes it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox import stats
from sandbox.config import RunConfig
from sandbox.errors import Cancelled, ConfigError, NetworkError, SandboxError, TrainingError
from sandbox.evaluate import KEY_BASELINES

if TYPE_CHECKING:
    from sandbox.pipeline import RunResult

__all__ = [
    "OnResult",
    "RunRecord",
    "Runner",
    "SplitRows",
    "Task",
    "check_jobs",
    "check_seeds",
    "format_params",
    "map_calls",
    "parallel_jobs",
    "run_all",
    "seed_tasks",
    "usable_cores",
]

#: the key a split's metrics carry its bars per year under (metrics.json)
PERIODS_PER_YEAR = C.PERIODS_PER_YEAR
_SCHEDULER_TIMEOUT_S = 5.0  # connecting to a Dask scheduler: give up (NetworkError) after this


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where there is one, e.g. a container).

    Returns
    -------
    int
        At least 1.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def parallel_jobs(runs: int) -> int:
    """Worker processes for ``runs`` parallel trainings: one per core, at most one per run.

    Every core, unlike in-process training (all but one): the workers are other processes,
    so the UI thread never waits for their interpreter lock (bench/ui_stall.py measures it).

    Parameters
    ----------
    runs : int
        Runs to execute.

    Returns
    -------
    int
        Between 1 and ``min(runs, usable_cores())``.
    """
    return max(1, min(runs, usable_cores()))


@dataclass(frozen=True)
class Task:
    """One run to execute: a configuration (of a sweep's grid) with one seed."""

    index: int  # position in the list given to run_all; records are matched back by it
    config_id: str  # the configuration (c01, c02, ...), shared by its seeds
    params: dict[str, Any]  # the grid values of this configuration
    seed: int
    config: RunConfig
    label: str  # e.g. "kind=gru hidden=16 lr=0.001 seed=3"


@dataclass(frozen=True, eq=False)
class SplitRows:
    """One split's rows of one run as plain numpy arrays (small to send between processes).

    Enough to recompute forecast and trading figures on any subset of dates, e.g. the
    dates every configuration of a sweep has in its validation split. All arrays have one
    entry per row of the split, in date order.
    """

    dates: np.ndarray  # int64 nanoseconds since the epoch (UTC for tz-aware bars)
    predicted: np.ndarray  # float64 predicted_return
    actual: np.ndarray  # float64 actual_return (NaN on the last bar of the data)
    position: np.ndarray  # float64 position decided at the row's close
    strategy: np.ndarray  # float64 strategy_return; NaN where the row has none (purged)
    #: buy and hold's strategy_return on the same rows (same fill and costs), or None
    hold: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.dates.size)

    def usable(self) -> np.ndarray:
        """Mask of the rows with a finite prediction, actual return and strategy return."""
        return (np.isfinite(self.predicted) & np.isfinite(self.actual)
                & np.isfinite(self.strategy))

    def on_dates(self, dates: np.ndarray) -> SplitRows:
        """The rows whose date is in ``dates`` (int64 ns, sorted), in date order."""
        keep = np.isin(self.dates, dates, assume_unique=True)
        return SplitRows(dates=self.dates[keep], predicted=self.predicted[keep],
                         actual=self.actual[keep], position=self.position[keep],
                         strategy=self.strategy[keep],
                         hold=None if self.hold is None else self.hold[keep])

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, hold: pd.DataFrame | None = None) -> SplitRows:
        """The rows of a predictions frame (``date`` index; ``predicted_return``,
        ``actual_return``, ``position``, ``strategy_return``) and, optionally, buy and
        hold's frame on the same split (matched by date)."""
        index = pd.DatetimeIndex(frame.index)

        def column(f: pd.DataFrame, name: str) -> np.ndarray:
            if name not in f:
                return np.full(len(f), np.nan)
            return f[name].to_numpy(np.float64, copy=True)

        held = None
        if hold is not None and C.STRATEGY_RETURN in hold:
            held = hold[C.STRATEGY_RETURN].reindex(index).to_numpy(np.float64, copy=True)
        return cls(dates=index.as_unit("ns").asi8.copy(),
                   predicted=column(frame, C.PREDICTED_RETURN),
                   actual=column(frame, C.ACTUAL_RETURN), position=column(frame, C.POSITION),
                   strategy=column(frame, C.STRATEGY_RETURN), hold=held)


@dataclass(frozen=True)
class RunRecord:
    """One finished (or failed) run, streamed to ``on_result`` in completion order.

    Plain data only (floats, ints, strings, dicts of them), so a GUI worker can forward it
    across threads as it is.
    """

    done: int  # runs finished so far, this one included
    total: int  # runs in this run_all call (the whole sweep or ensemble)
    label: str  # e.g. "kind=gru hidden=16 window=20 lr=0.001 seed=3"
    config_id: str  # the grid configuration (c01, c02, ...), shared by its seeds
    seed: int
    params: dict  # the grid values of this configuration
    error: str | None  # why the run failed (e.g. NaN loss); None when it succeeded
    val_loss: float | None  # best validation loss (the early-stopping criterion)
    val_metrics: dict  # model metrics on the validation split
    test_metrics: dict  # model metrics on the test split (never used for selection)
    seconds: float  # wall time of the run inside its worker
    test_baselines: dict = field(default_factory=dict)  # {baseline: metrics} on the test split
    test_returns: dict = field(default_factory=dict)  # n, mean, std, skewness, kurtosis
    best_epoch: int | None = None
    config: dict = field(default_factory=dict)  # the full RunConfig.to_dict() of this run
    #: the run's predictions frame (pipeline ``RunResult.predictions``) with
    #: ``run_all(keep_predictions=True)``, e.g. to draw a seed ensemble's band; else None
    predictions: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    train_losses: tuple = ()  # mean training loss per epoch
    val_losses: tuple = ()  # validation loss per epoch
    #: the validation and test rows (predictions, actual and strategy returns), so a sweep
    #: can score every configuration on the same dates; None for a failed run
    val_rows: SplitRows | None = field(default=None, compare=False, repr=False)
    test_rows: SplitRows | None = field(default=None, compare=False, repr=False)
    periods_per_year: float | None = None  # bars per year the run's Sharpe ratios use


OnResult = Callable[[RunRecord], None] | None
#: runs one configuration: ``runner(config, cancel=..., prices=...) -> pipeline.RunResult``
Runner = Callable[..., Any] | None


def check_jobs(jobs: Any) -> None:
    """Raise :class:`ConfigError` unless ``jobs`` is a whole number >= 1."""
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ConfigError(f"jobs {jobs!r}: must be a whole number >= 1")


def format_params(params: dict[str, Any], seed: int | None = None) -> str:
    """A run's label: ``"kind=gru hidden=16 lr=0.001 seed=3"`` (``"base"`` for no params).

    Parameters
    ----------
    params : dict
        The grid values of the run's configuration, in grid order.
    seed : int, optional
        Appended as ``seed=N``.

    Returns
    -------
    str
    """
    parts = [f"{k}={v}" for k, v in params.items()]
    if seed is not None:
        parts.append(f"seed={seed}")
    return " ".join(parts) if parts else "base"


def check_seeds(seeds: Any) -> None:
    """Raise :class:`ConfigError` unless ``seeds`` is a whole number >= 1."""
    if not (isinstance(seeds, int) and seeds >= 1):
        raise ConfigError(f"seeds {seeds!r}: must be a whole number >= 1")


def seed_tasks(config: RunConfig, seeds: int, *, first_index: int = 0,
               config_id: str = "c01", params: dict[str, Any] | None = None) -> list[Task]:
    """``seeds`` runs of ``config`` that differ only in their seed, one torch thread each.

    Parameters
    ----------
    config : RunConfig
        The configuration; its seed is the first one.
    seeds : int
        Runs (>= 1): seeds ``config.train.seed + 0 .. seeds - 1``.
    first_index : int
        :attr:`Task.index` of the first run (the position in the caller's list of tasks).
    config_id : str
        The configuration's id, shared by its seeds.
    params : dict, optional
        The grid values that make this configuration (its label names them).

    Returns
    -------
    list of Task

    Raises
    ------
    ConfigError
        ``seeds`` is not a whole number >= 1.
    """
    check_seeds(seeds)
    params = dict(params or {})
    tasks = []
    for k in range(seeds):
        seed = config.train.seed + k
        tasks.append(Task(
            index=first_index + k, config_id=config_id, params=params, seed=seed,
            config=config.replace(train=config.train.replace(seed=seed, threads=1)),
            label=format_params(params, seed),
        ))
    return tasks


def run_all(
    tasks: Sequence[Task],
    *,
    prices: Any,
    jobs: int = 1,
    scheduler: str | None = None,
    on_result: OnResult = None,
    cancel: threading.Event | None = None,
    keep_predictions: bool = False,
    runner: Runner = None,
) -> list[RunRecord]:
    """Execute every task and return its record, in completion order.

    Parameters
    ----------
    tasks : sequence of Task
        The runs; ``task.index`` must be its position in ``tasks``.
    prices : LoadedPrices
        The prices every run uses (loaded once by the caller, sent to every worker).
    jobs : int
        Worker processes (loky). ``1`` runs in this process, one run after another.
    scheduler : str or None
        ``tcp://HOST:PORT`` of a Dask distributed scheduler: run there through joblib's
        ``dask`` backend instead of local processes (needs the ``cluster`` extra).
    on_result : callable or None
        Called with each :class:`RunRecord` as its run finishes (completion order), in the
        calling thread.
    cancel : threading.Event or None
        When set: stop dispatching, terminate the workers, raise :class:`Cancelled`.
    keep_predictions : bool
        Bring each run's predictions frame back in :attr:`RunRecord.predictions`; off by
        default to keep the transfer small.
    runner : callable or None
        Runs one configuration (``pipeline.run`` when None; tests pass a fast stand-in).

    Returns
    -------
    list of RunRecord
        One per task, in completion order; a failed run is a record with ``error`` set.

    Raises
    ------
    ConfigError
        Bad jobs; Dask requested but not installed; a malformed scheduler address.
    NetworkError
        The Dask scheduler could not be reached (within about 5 s).
    TrainingError
        A worker process ended unexpectedly.
    Cancelled
        ``cancel`` was set.
    """
    check_jobs(jobs)
    cancel = cancel if cancel is not None else threading.Event()
    if cancel.is_set():
        raise Cancelled("sweep cancelled before it started")
    run_one = functools.partial(_execute, runner=runner, keep_predictions=keep_predictions)
    total = len(tasks)
    records: list[RunRecord] = []

    def consume(stream: Iterator[dict[str, Any]]) -> None:
        for payload in stream:
            record = _record(tasks[payload["index"]], payload, len(records) + 1, total)
            records.append(record)
            if on_result is not None:
                on_result(record)
            if cancel.is_set():
                raise Cancelled("sweep cancelled")

    if scheduler is not None:
        _run_dask(scheduler, tasks, prices, consume, cancel, run_one)
    elif jobs == 1:
        _run_sequential(tasks, prices, consume, cancel, run_one)
    else:
        _run_loky(jobs, tasks, prices, consume, cancel, run_one)
    if cancel.is_set():
        raise Cancelled("sweep cancelled")
    return records


def map_calls(
    fn: Callable[..., Any],
    items: Sequence[Any],
    *,
    jobs: int = 1,
    on_result: Callable[[int, Any], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[Any]:
    """``fn(item)`` for every item, in this process (``jobs=1``) or in ``jobs`` loky worker
    processes (the runner of :func:`run_all`, one torch thread per call).

    For independent pieces of one run, e.g. the cold-started folds of a walk-forward run.
    ``fn`` must be a module-level function (it is pickled by reference); in this process it
    is called as ``fn(item, cancel)`` so it can stop within a batch; in a worker as
    ``fn(item, None)`` (the worker is killed instead). A :class:`SandboxError` raised by a
    call ends the whole map with the same message.

    Parameters
    ----------
    fn : callable
        ``fn(item, cancel) -> value`` (plain, picklable data).
    items : sequence
        The arguments, one call each.
    jobs : int
        Worker processes; ``1`` runs the calls here, one after another.
    on_result : callable, optional
        ``on_result(index, value)`` as each call finishes (completion order), in the
        calling thread.
    cancel : threading.Event, optional
        When set: stop dispatching, kill the workers, raise :class:`Cancelled`.

    Returns
    -------
    list
        The values, in the order of ``items``.

    Raises
    ------
    Cancelled
        ``cancel`` was set.
    SandboxError
        A call failed (its message; a :class:`TrainingError` when its class cannot travel).
    TrainingError
        A worker process ended unexpectedly.
    """
    check_jobs(jobs)
    cancel = cancel if cancel is not None else threading.Event()
    if cancel.is_set():
        raise Cancelled("run cancelled before it started")
    values: list[Any] = [None] * len(items)

    def consume(stream: Iterator[tuple[int, Any, str | None]]) -> None:
        for index, value, error in stream:
            if error is not None:
                raise TrainingError(error)
            values[index] = value
            if on_result is not None:
                on_result(index, value)
            if cancel.is_set():
                raise Cancelled("run cancelled")

    if jobs == 1:
        torch_threads = _torch_threads()
        try:
            consume(_call(fn, i, item, cancel) for i, item in enumerate(items)
                    if not cancel.is_set())
        finally:
            if torch_threads is not None:
                import torch

                torch.set_num_threads(torch_threads)
    else:
        _map_loky(fn, items, jobs, consume, cancel)
    if cancel.is_set():
        raise Cancelled("run cancelled")
    return values


def _call(fn: Callable[..., Any], index: int, item: Any,
          cancel: threading.Event | None = None) -> tuple[int, Any, str | None]:
    """One call of :func:`map_calls` with one torch thread; a SandboxError becomes its
    message (exception classes with their own arguments do not always unpickle)."""
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(1)
    try:
        return index, fn(item, cancel), None
    except Cancelled:
        raise
    except SandboxError as exc:
        return index, None, str(exc)


def _map_loky(fn: Callable[..., Any], items: Sequence[Any], jobs: int,
              consume: Callable[..., None], cancel: threading.Event) -> None:
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    def kill_workers() -> None:
        get_reusable_executor(reuse=True).shutdown(wait=False, kill_workers=True)

    def calls() -> Iterator[Any]:
        for i, item in enumerate(items):
            if cancel.is_set():
                return
            yield delayed(_call)(fn, i, item)

    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered",
                        batch_size=1, pre_dispatch="2*n_jobs")
    with _on_cancel(cancel, kill_workers):
        try:
            consume(parallel(calls()))
        except TerminatedWorkerError:
            if cancel.is_set():
                raise
            raise TrainingError("a worker process ended unexpectedly (out of memory?); try "
                                "fewer processes or a smaller model") from None


# --- one run ---------------------------------------------------------------------------------


def _result_payload(result: RunResult) -> dict[str, Any]:
    """The plain-data part of a ``pipeline.RunResult`` a record keeps."""
    by_split = result.metrics_by_split or {}
    val = by_split.get(C.VAL) or {}
    test = by_split.get(C.TEST) or result.metrics or {}
    history = result.history
    val_losses = [float(v) for v in history.val_loss]
    finite = [v for v in val_losses if math.isfinite(v)]
    moments: dict[str, Any] = {}
    rows: dict[str, SplitRows | None] = {C.VAL: None, C.TEST: None}
    predictions = result.predictions
    if isinstance(predictions, pd.DataFrame) and C.STRATEGY_RETURN in predictions:
        test_rows = predictions
        if C.SPLIT in predictions:
            test_rows = predictions[predictions[C.SPLIT] == C.TEST]
            hold = (result.baselines or {}).get(C.BUY_AND_HOLD)
            for split in rows:
                rows[split] = SplitRows.from_frame(
                    predictions[predictions[C.SPLIT] == split],
                    hold if isinstance(hold, pd.DataFrame) else None)
        moments = stats.return_moments(test_rows[C.STRATEGY_RETURN])
    return {
        "val_loss": min(finite) if finite else None,
        "best_epoch": None if history.best_epoch is None else int(history.best_epoch),
        "val_metrics": dict(val.get(C.MODEL) or {}),
        "test_metrics": dict(test.get(C.MODEL) or {}),
        "test_baselines": {k: dict(v) for k, v in (test.get(KEY_BASELINES) or {}).items()},
        "test_returns": moments,
        "train_losses": tuple(float(v) for v in history.train_loss),
        "val_losses": tuple(val_losses),
        "val_rows": rows[C.VAL],
        "test_rows": rows[C.TEST],
        "periods_per_year": _periods_per_year(result, val, test),
    }


def _periods_per_year(result: RunResult, *metrics: dict) -> float | None:
    """Bars per year of the run's Sharpe ratios: as its metrics say, else the value paper
    trading uses (the override, or measured over the whole price frame)."""
    for m in metrics:
        for where in (m, m.get(C.MODEL) or {}):
            value = where.get(PERIODS_PER_YEAR)
            if isinstance(value, int | float) and math.isfinite(value) and value > 0:
                return float(value)
    frame = getattr(result.data, "frame", None)
    if isinstance(frame, pd.DataFrame) and isinstance(frame.index, pd.DatetimeIndex):
        from sandbox.evaluate import run_periods_per_year

        return float(run_periods_per_year(frame, result.config.strategy))
    override = result.config.strategy.periods_per_year
    if override is not None:
        return float(override)
    if isinstance(result.predictions, pd.DataFrame) and isinstance(
            result.predictions.index, pd.DatetimeIndex):  # no price frame at hand
        from sandbox.backtest import infer_periods_per_year

        return float(infer_periods_per_year(result.predictions.index))
    return None


def _execute(task: Task, prices: Any, cancel: threading.Event | None = None,
             runner: Runner = None, keep_predictions: bool = False) -> dict[str, Any]:
    """Run one task (in a worker process, or in-process for ``jobs=1``); never raises
    except :class:`Cancelled`. Returns plain data."""
    if runner is None:
        import functools

        from sandbox import pipeline

        # A member's own tests of significance are not reported: the sweep's selection and
        # the ensemble's averaged forecast get theirs, once.
        runner = functools.partial(pipeline.run, evidence=False)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(1)
    start = time.perf_counter()
    out: dict[str, Any] = {"index": task.index, "error": None}
    try:
        result = runner(task.config, cancel=cancel, prices=prices)
        out.update(_result_payload(result))
        if keep_predictions:
            out["predictions"] = result.predictions
    except Cancelled:
        raise
    except SandboxError as exc:
        out["error"] = str(exc)
    except Exception as exc:  # an unexpected failure of one run must not end the others
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["seconds"] = time.perf_counter() - start
    return out


def _record(task: Task, payload: dict[str, Any], done: int, total: int) -> RunRecord:
    return RunRecord(
        done=done,
        total=total,
        label=task.label,
        config_id=task.config_id,
        seed=task.seed,
        params=dict(task.params),
        error=payload.get("error"),
        val_loss=payload.get("val_loss"),
        val_metrics=payload.get("val_metrics", {}) or {},
        test_metrics=payload.get("test_metrics", {}) or {},
        seconds=float(payload.get("seconds", 0.0)),
        test_baselines=payload.get("test_baselines", {}) or {},
        test_returns=payload.get("test_returns", {}) or {},
        best_epoch=payload.get("best_epoch"),
        config=task.config.to_dict(),
        predictions=payload.get("predictions"),
        train_losses=tuple(payload.get("train_losses", ())),
        val_losses=tuple(payload.get("val_losses", ())),
        val_rows=payload.get("val_rows"),
        test_rows=payload.get("test_rows"),
        periods_per_year=payload.get("periods_per_year"),
    )


# --- backends --------------------------------------------------------------------------------


#: rough relative cost per step, measured on CPU with torch 2.13 (small models, 1 thread)
_KIND_COST = {C.LSTM: 1.0, C.GRU: 1.7, C.RNN: 0.5}


def _estimated_cost(task: Task) -> float:
    """A rough relative cost of a run: epochs x window (sequence length) x layers x width."""
    m, t = task.config.model, task.config.train
    return (t.epochs * (m.window + 10) * m.layers * (m.hidden + 32)
            * _KIND_COST.get(m.kind, 1.0) / t.batch_size**0.5)


def _tasks_until_cancelled(tasks: Sequence[Task], prices: Any, cancel: threading.Event,
                           run_one: Callable[..., dict]) -> Iterator[Any]:
    """Lazily yield ``delayed`` calls, longest estimated runs first (so no worker is left
    with a long run at the end while the others idle); stops once ``cancel`` is set."""
    from joblib import delayed

    for task in sorted(tasks, key=lambda t: (-_estimated_cost(t), t.index)):
        if cancel.is_set():
            return
        yield delayed(run_one)(task, prices)


def _run_sequential(tasks: Sequence[Task], prices: Any, consume: Callable[..., None],
                    cancel: threading.Event, run_one: Callable[..., dict]) -> None:
    """``jobs=1``: in this process, one run after another (cancel reaches the run itself)."""
    torch_threads = _torch_threads()
    try:
        consume(run_one(task, prices, cancel) for task in tasks if not cancel.is_set())
    finally:
        if torch_threads is not None:  # leave the caller's torch as it was
            import torch

            torch.set_num_threads(torch_threads)


def _torch_threads() -> int | None:
    import sys

    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())


@contextlib.contextmanager
def _on_cancel(cancel: threading.Event, action: Callable[[], None]) -> Iterator[None]:
    """While the block runs, a watcher thread calls ``action()`` once ``cancel`` is set
    (the consumer is blocked waiting for a result; ``action`` makes that wait end).
    An exception leaving the block after a cancel becomes :class:`Cancelled`."""
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.05):
            if cancel.is_set():
                with contextlib.suppress(Exception):  # best effort: the workers may be gone
                    action()
                return

    watcher = threading.Thread(target=watch, name="runs-cancel-watcher", daemon=True)
    watcher.start()
    try:
        yield
    except Cancelled:
        raise
    except Exception:
        if cancel.is_set():  # the workers were stopped on purpose
            raise Cancelled("sweep cancelled") from None
        raise
    finally:
        finished.set()
        watcher.join()


def _run_loky(jobs: int, tasks: Sequence[Task], prices: Any, consume: Callable[..., None],
              cancel: threading.Event, run_one: Callable[..., dict]) -> None:
    """Local worker processes; they are killed when ``cancel`` is set."""
    from joblib import Parallel
    from joblib.externals.loky import get_reusable_executor

    def kill_workers() -> None:  # the pending result then raises in the consumer
        get_reusable_executor(reuse=True).shutdown(wait=False, kill_workers=True)

    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered",
                        batch_size=1, pre_dispatch="2*n_jobs")
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    with _on_cancel(cancel, kill_workers):
        try:
            consume(parallel(_tasks_until_cancelled(tasks, prices, cancel, run_one)))
        except TerminatedWorkerError:
            if cancel.is_set():
                raise  # stopped on purpose: _on_cancel makes it Cancelled
            raise TrainingError("a worker process ended unexpectedly (out of memory?); try "
                                "fewer processes or a smaller model") from None


def _run_dask(address: str, tasks: Sequence[Task], prices: Any, consume: Callable[..., None],
              cancel: threading.Event, run_one: Callable[..., dict]) -> None:
    """The same runs on an existing Dask distributed cluster (joblib's ``dask`` backend).

    On cancel the client's pending work is cancelled; a run already executing on a worker
    finishes there (Dask cannot interrupt it) but its result is dropped.
    """
    if "://" not in address and ":" not in address:
        raise ConfigError(f"--scheduler {address!r}: expected tcp://HOST:PORT")
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "--scheduler needs Dask distributed: install the 'cluster' extra "
            "(pip install 'trading-signal-sandbox[cluster]')"
        ) from None
    from joblib import Parallel, parallel_config

    try:
        client = distributed.Client(address, timeout=_SCHEDULER_TIMEOUT_S, set_as_default=True)
    except (OSError, TimeoutError, ValueError):
        raise NetworkError(f"could not reach the Dask scheduler at {address} within "
                           f"{_SCHEDULER_TIMEOUT_S:g} s: is it running, and is the address "
                           "right?") from None
    try:
        workers = client.scheduler_info().get("workers", {}).values()
        n_workers = max(1, sum(int(w.get("nthreads", 1)) for w in workers))
        with parallel_config(backend="dask"), _on_cancel(cancel, client.close):
            consume(Parallel(n_jobs=n_workers, return_as="generator_unordered", batch_size=1,
                             pre_dispatch="2*n_jobs")(
                _tasks_until_cancelled(tasks, prices, cancel, run_one)))
    finally:
        client.close()
