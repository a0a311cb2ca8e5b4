"""The app's run lifecycle: the loaded data, the shown result, the sweep and their workers.

:class:`RunController` is the window's engine room, without a widget. It starts every slow
job on a worker thread (:mod:`sandbox.ui.workers`), keeps at most one job of each kind
(load, training, sweep, task), owns what they produced (the prices on the chart, the result
shown, the last sweep) and reports through signals named as past events. Each kind of job
has its own handlers, so following one (Stop, say) means reading one method and the slots
it connects. The window turns the signals into view updates (``MainWindow._on_<event>``).

Validation first: a new result (trained, re-traded, loaded, opened) is shown on its
validation split; :meth:`RunController.show_test` counts a look at its test split for this
data (:mod:`sandbox.looks`, on a worker thread) before ``test_shown`` lets the Metrics tab
show it.

Stop answers within one batch: :meth:`RunController.stop` sets the running workers' cancel
events straight from the UI thread, and the core checks them between batches.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtGui

from sandbox import constants as C
from sandbox.config import DataSpec, RunConfig, StrategyConfig
from sandbox.runs import parallel_jobs, usable_cores
from sandbox.ui import workers
from sandbox.ui.dialogs import Failure
from sandbox.ui.screenshot import png_bytes
from sandbox.ui.workers import (
    LoadWorker,
    PendingLoad,
    StreamWorker,
    TaskWorker,
    TrainWorker,
    Worker,
    WorkerPool,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunController", "can_audit", "has_test_rows", "is_walk_forward", "split_bounds"]

Signal = QtCore.Signal

FINISHED, FAILED, CANCELLED = "finished", "failed", "cancelled"  # how a job ended
AUDIT = "audit"  # the leakage audit's task kind


def _open_sweep_run(config: RunConfig, prices: Any, records: list, *, hide_test: bool) -> Any:
    """A sweep configuration's runs as an ensemble (worker thread); ``hide_test`` keeps its
    test split out of sight (it was not the configuration selected on validation)."""
    import dataclasses

    from sandbox import ensemble

    return dataclasses.replace(ensemble.from_records(config, prices, records),
                               test_hidden=hide_test)


def _look_at_test(result: Any, fingerprint: str | None) -> tuple[str, Any]:
    """Count a look at ``result``'s test split and measure its evidence (worker thread: the
    fingerprint of a million bars takes ~50 ms, the counts file is file I/O)."""
    from sandbox import looks

    start, stop = split_bounds(result.predictions, C.TEST)
    test = result.predictions[C.STRATEGY_RETURN].iloc[start:stop]
    return looks.look_at_test(result.data.frame, test, fingerprint=fingerprint)


def _ignore(_value: Any) -> None:
    """The result handler while no task runs."""


#: splits in time order: a run's labels never go back in this order
_SPLIT_ORDER = {C.TRAIN: 0, C.VAL: 1, C.TEST: 2}


def split_bounds(predictions: pd.DataFrame, split: str) -> tuple[int, int]:
    """Positions ``[start, stop)`` of ``split``'s rows in a predictions table.

    Splits are chronological, so each is one block: two binary searches instead of
    comparing every label (on a million rows that took ~0.1 s, of the UI thread or, through
    the interpreter lock, away from it).
    """
    labels = predictions[C.SPLIT].array
    rank = _SPLIT_ORDER[split]

    def order(label: Any) -> int:
        return _SPLIT_ORDER.get(label, len(_SPLIT_ORDER))

    return bisect_left(labels, rank, key=order), bisect_right(labels, rank, key=order)


def has_test_rows(result: Any) -> bool:
    """The shown run ``result`` has rows labelled test (its last row is one)."""
    labels = result.predictions[C.SPLIT]
    return len(labels) > 0 and labels.iat[-1] == C.TEST


def is_walk_forward(result: Any) -> bool:
    """``result`` is a walk-forward run: only out-of-sample rows, one block per fold."""
    return result is not None and bool(getattr(result, "walk_forward", None))


def can_audit(result: Any) -> bool:
    """The shown run ``result`` has one fitted model to audit for leakage: a single trained
    run or a saved model's predictions (an ensemble averages several and keeps none)."""
    return result is not None and bool(result.can_save)


def _write_picture(path: str, picture: bytes | QtGui.QImage) -> Path:
    """Write an image file: encoded bytes as they are, a QImage as PNG (worker thread)."""
    from sandbox import atomic

    data = picture if isinstance(picture, bytes) else png_bytes(picture)
    return atomic.write_bytes(path, data)


class RunController(QtCore.QObject):
    """Loads data, trains, sweeps and runs the app's short tasks on worker threads.

    Signals
    -------
    load_started(DataSpec)
        Loading (or downloading) ``spec`` began.
    prices_loaded(LoadedPrices)
        New prices are in :attr:`prices`; the shown result and the sweep were dropped.
    load_failed(Failure, DataSpec)
        Loading this spec failed.
    load_ended(str)
        ``"finished"``, ``"failed"`` or ``"cancelled"`` (emitted last).
    run_started(Worker, RunConfig, int, int)
        Training began: its worker (a TrainWorker, or a StreamWorker for seeds), the
        configuration, the number of seeds and of worker processes.
    stage_started(str, str), batch_done(float, float, float, int), epoch_done(dict)
        A single run's progress (see :class:`~sandbox.ui.workers.TrainWorker`).
    fold_started(dict), fold_finished(dict)
        A walk-forward run's folds (see :class:`~sandbox.ui.workers.TrainWorker`).
    fold_batch_done(float, float, float, int), fold_epoch_done(dict)
        A walk-forward fold's batches and epochs (warm start: folds train here in turn;
        cold folds train in other processes and report only when they finish).
    member_done(RunRecord)
        One seed of an ensemble finished or failed.
    result_ready(RunResult)
        A single run was trained; it is :attr:`result` now.
    ensemble_ready(EnsembleResult)
        A seed ensemble was trained; it is :attr:`result` now.
    run_failed(Failure)
    run_ended(str)
        Training ended: ``"finished"``, ``"failed"`` or ``"cancelled"`` (emitted last).
    sweep_started(int, dict, int, int)
        A sweep began: number of runs, grid, seeds, worker processes.
    sweep_run_done(RunRecord)
    sweep_done(SweepResult)
        The sweep finished; it is :attr:`sweep_result` now.
    sweep_failed(Failure)
    sweep_ended(str)
        ``"finished"``, ``"failed"`` or ``"cancelled"`` (emitted last).
    retraded(ShownRun)
        The shown run, paper-traded again with a new strategy; it is :attr:`result` now.
    model_loaded(RunResult, str)
        A saved model's predictions (and its folder); it is :attr:`result` now.
    sweep_config_opened(EnsembleResult, str)
        A sweep configuration's runs (and its id); it is :attr:`result` now.
    test_shown(ShownRun, LookEvidence)
        The shown run's test split may be shown: the look was counted for this data
        (:mod:`sandbox.looks`); the evidence holds the count, the PSR and deflated Sharpe.
    test_concealed(ShownRun)
        Back to the shown run's validation split.
    written(str)
        An export or a save wrote these file(s).
    result_dropped(str)
        A task's result arrived after the data or the run changed: not shown, and why.
    task_failed(str, Failure)
        A task failed; the title says which.
    task_refused(str)
        A task was not started (another one runs): why.
    task_cancelled(str)
        A task was stopped (Stop, for the leakage audit); its kind.
    task_ended(str, bool)
        A task ended (emitted last): its kind and whether it succeeded.
    audit_progress(int, int)
        The leakage audit has checked this many of its cut dates, of so many.
    audited(AuditResult, ShownRun)
        The leakage audit of this run ended with this outcome.
    busy_changed()
        A job started or ended (what may be started has changed).
    """

    load_started = Signal(object)
    prices_loaded = Signal(object)
    load_failed = Signal(object, object)
    load_ended = Signal(str)
    run_started = Signal(object, object, int, int)
    stage_started = Signal(str, str)
    batch_done = Signal(float, float, float, int)
    epoch_done = Signal(dict)
    fold_started = Signal(dict)
    fold_finished = Signal(dict)
    fold_batch_done = Signal(float, float, float, int)
    fold_epoch_done = Signal(dict)
    member_done = Signal(object)
    result_ready = Signal(object)
    ensemble_ready = Signal(object)
    run_failed = Signal(object)
    run_ended = Signal(str)
    sweep_started = Signal(int, object, int, int)
    sweep_run_done = Signal(object)
    sweep_done = Signal(object)
    sweep_failed = Signal(object)
    sweep_ended = Signal(str)
    retraded = Signal(object)
    model_loaded = Signal(object, str)
    sweep_config_opened = Signal(object, str)
    test_shown = Signal(object, object)
    test_concealed = Signal(object)
    written = Signal(str)
    result_dropped = Signal(str)
    task_failed = Signal(str, object)
    task_refused = Signal(str)
    task_cancelled = Signal(str)
    task_ended = Signal(str, bool)
    audit_progress = Signal(int, int)
    audited = Signal(object, object)
    busy_changed = Signal()

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = WorkerPool(self)
        self._prices: Any = None  # LoadedPrices
        self._loaded_spec: DataSpec | None = None
        self._shown: Any = None  # the ShownRun on screen
        #: (run, evidence) of the last counted look at a run's test split, and whether that
        #: run is showing its test split now; both forgotten with the run
        self._look: tuple[Any, Any] | None = None
        self._showing_test = False
        self._fingerprint: tuple[Any, str] | None = None  # (price frame, its sha256)
        self._sweep_result: Any = None  # the last finished sweep (sweep.SweepResult)
        self._closing = False
        self._load_worker: LoadWorker | None = None
        self._loading_spec: DataSpec | None = None
        self._load_ended = FINISHED
        self._train_worker: Worker | None = None  # a TrainWorker, or a StreamWorker (seeds)
        self._run_ended = FINISHED
        self._sweep_worker: StreamWorker | None = None
        self._sweep_ended = FINISHED
        self._task_worker: TaskWorker | None = None
        self._task_kind = ""
        self._task_title = ""
        self._task_context: Any = None
        self._task_handler: Callable[[Any], None] = _ignore  # the running task's result slot
        self._task_ok = False
        self._retrade_pending: StrategyConfig | None = None
        self._show_test_pending = False  # a walk-forward run's look, once the task ends
        #: jobs of other views holding the torch process (the Replay bar's, the Memory tab's)
        self._external: dict[str, str] = {}

    # ============================================================== state ===============
    @property
    def prices(self) -> Any:
        """The LoadedPrices loaded last, or None."""
        return self._prices

    @property
    def loaded_spec(self) -> DataSpec | None:
        """Where :attr:`prices` came from."""
        return self._loaded_spec

    @property
    def result(self) -> Any:
        """The ShownRun on screen (a run, an ensemble or a saved model's), or None."""
        return self._result

    @property
    def _result(self) -> Any:
        return self._shown

    @_result.setter
    def _result(self, result: Any) -> None:
        # every new result (trained, re-traded, loaded, opened) starts on validation
        if result is not self._shown:
            self._showing_test = False
            self._show_test_pending = False
            if self._look is not None and self._look[0] is not result:
                self._look = None
        self._shown = result

    def shown_look(self) -> Any:
        """The evidence of the counted look when the shown run is showing its test split,
        else None (it shows validation)."""
        if self._showing_test and self._look is not None and self._look[0] is self._shown:
            return self._look[1]
        return None

    @property
    def sweep_result(self) -> Any:
        """The last finished sweep on the loaded prices, or None."""
        return self._sweep_result

    def is_loading(self) -> bool:
        return self._load_worker is not None

    def is_training(self) -> bool:
        return self._train_worker is not None

    def is_sweeping(self) -> bool:
        return self._sweep_worker is not None

    def is_running_task(self) -> bool:
        return self._task_worker is not None

    def is_auditing(self) -> bool:
        """The leakage audit runs (it holds the torch process, as training does)."""
        return self._task_worker is not None and self._task_kind == AUDIT

    def is_busy(self) -> bool:
        """True while any worker thread runs (a job that just ended included)."""
        return self.pool.is_busy()

    def is_idle(self) -> bool:
        """No load, training, sweep, task or other view's torch job running."""
        return not (self.is_loading() or self.is_training() or self.is_sweeping()
                    or self.is_running_task() or self._external)

    def set_external_job(self, name: str, what: str | None) -> None:
        """Another view's job holds the torch process (``what`` says it, e.g. "the Replay
        bar is computing its steps") or let it go (None). While one does, training, sweeps,
        the audit and Load model are not started: they would wait behind it in silence."""
        if what:
            changed = self._external.get(name) != what
            self._external[name] = what
        else:
            changed = self._external.pop(name, None) is not None
        if changed:
            self.busy_changed.emit()

    def external_job(self) -> str:
        """What holds the torch process for another view ("" when nothing does)."""
        return next(iter(self._external.values()), "")

    def follow(self, view: QtCore.QObject, *events: str) -> None:
        """Connect each of these signals to the ``view._on_<event>`` of the same name: how
        views that only follow the app's jobs (the status bar, the Data panel, the Metrics
        and Sweep tabs) attach themselves."""
        for event in events:
            getattr(self, event).connect(getattr(view, f"_on_{event}"))

    # ============================================================== loading =============
    def load(self, spec: DataSpec, *, pending: PendingLoad | None = None) -> bool:
        """Load ``spec`` on a worker thread; False when a load, training or sweep runs."""
        if self._closing or self.is_training() or self.is_loading() or self.is_sweeping():
            return False
        worker = LoadWorker(spec, pending=pending)
        worker.loaded.connect(self._on_loaded)
        worker.failed.connect(self._on_load_failed)
        worker.cancelled.connect(self._on_load_cancelled)
        worker.finished.connect(self._on_load_finished)
        self._load_worker = worker
        self._loading_spec = spec
        self._load_ended = FINISHED
        self.pool.start(worker, name="sandbox-load")
        self.load_started.emit(spec)
        self.busy_changed.emit()
        return True

    @QtCore.Slot(object)
    def _on_loaded(self, loaded: Any) -> None:
        self._prices = loaded
        self._fingerprint = None
        self._loaded_spec = self._loading_spec
        self._result = None
        self._sweep_result = None  # a sweep's runs belong to the data they were trained on
        self.prices_loaded.emit(loaded)

    @QtCore.Slot(object)
    def _on_load_failed(self, failure: Failure) -> None:
        self._load_ended = FAILED
        self.load_failed.emit(failure, self._loading_spec)

    @QtCore.Slot()
    def _on_load_cancelled(self) -> None:
        self._load_ended = CANCELLED

    @QtCore.Slot()
    def _on_load_finished(self) -> None:
        self._load_worker = None
        self.busy_changed.emit()
        self.load_ended.emit(self._load_ended)

    def warm_up(self) -> None:
        """Get training ready in the background before the first Train (returns at once)."""
        if not self._closing:
            workers.warm_up()

    # ============================================================== training ============
    def train(self, config: RunConfig, seeds: int = 1) -> bool:
        """Train ``config`` on the loaded prices: one model, or ``seeds`` models (seeds
        ``seed .. seed + N - 1``) in parallel worker processes whose forecasts are averaged.
        False when there is no data or a load, training or sweep runs."""
        if (self._closing or self._prices is None or self.is_training() or self.is_loading()
                or self.is_sweeping() or self.is_auditing() or self._external):
            return False
        jobs = 1
        walk = config.walk_forward is not None
        if walk:
            seeds = 1  # one model per fold
            if not config.walk_forward.warm_start:
                jobs = max(1, usable_cores())
        if seeds > 1:
            from sandbox import ensemble

            jobs = parallel_jobs(seeds)
            worker: Worker = StreamWorker(ensemble.run_ensemble, config, seeds=seeds, jobs=jobs,
                                          prices=self._prices, result_arg="on_member", remote=True)
            worker.streamed.connect(self.member_done)
            worker.returned.connect(self._on_ensemble_trained)
            name = "sandbox-ensemble"
        else:
            worker = TrainWorker(config, prices=self._prices)
            worker.stage_started.connect(self.stage_started)
            # a walk-forward run's epochs are its folds' (the Folds progress follows them)
            worker.batch_done.connect(self.fold_batch_done if walk else self.batch_done)
            worker.epoch_done.connect(self.fold_epoch_done if walk else self.epoch_done)
            worker.fold_started.connect(self.fold_started)
            worker.fold_finished.connect(self.fold_finished)
            worker.trained.connect(self._on_trained)
            name = "sandbox-walk-forward" if walk else "sandbox-train"
        worker.failed.connect(self._on_train_failed)
        worker.cancelled.connect(self._on_train_cancelled)
        worker.finished.connect(self._on_train_finished)
        self._train_worker = worker
        self._run_ended = FINISHED
        self._result = None
        self.pool.start(worker, name=name)
        self.run_started.emit(worker, config, seeds, jobs)
        self.busy_changed.emit()
        return True

    @QtCore.Slot(object)
    def _on_trained(self, result: Any) -> None:
        self._result = result
        self.result_ready.emit(result)

    @QtCore.Slot(object)
    def _on_ensemble_trained(self, result: Any) -> None:
        self._result = result
        self.ensemble_ready.emit(result)

    @QtCore.Slot(object)
    def _on_train_failed(self, failure: Failure) -> None:
        self._run_ended = FAILED
        self.run_failed.emit(failure)

    @QtCore.Slot()
    def _on_train_cancelled(self) -> None:
        self._run_ended = CANCELLED

    @QtCore.Slot()
    def _on_train_finished(self) -> None:
        self._train_worker = None
        self.busy_changed.emit()
        self.run_ended.emit(self._run_ended)
        self._show_pending_test()

    # ============================================================== sweep ===============
    def run_sweep(self, base: RunConfig, grid: dict, seeds: int, jobs: int) -> bool:
        """Train every configuration of ``grid`` over ``base`` x ``seeds`` in ``jobs`` worker
        processes; records stream in as runs finish. False when it cannot start now.

        Raises
        ------
        ConfigError
            The grid does not expand (a bad value for its field).
        """
        if (self._closing or self._prices is None or self.is_training() or self.is_loading()
                or self.is_sweeping() or self.is_auditing() or self._external):
            return False
        from sandbox import sweep

        n_runs = len(sweep.expand_grid(base, grid, seeds=seeds))
        worker = StreamWorker(sweep.run_sweep, base, grid, seeds=seeds, jobs=jobs,
                              prices=self._prices, keep_predictions=True, count_look=True,
                              remote=True)
        worker.streamed.connect(self.sweep_run_done)
        worker.returned.connect(self._on_sweep_returned)
        worker.failed.connect(self._on_sweep_failed)
        worker.cancelled.connect(self._on_sweep_cancelled)
        worker.finished.connect(self._on_sweep_finished)
        self._sweep_worker = worker
        self._sweep_ended = FINISHED
        self._sweep_result = None
        self.pool.start(worker, name="sandbox-sweep")
        self.sweep_started.emit(n_runs, grid, seeds, jobs)
        self.busy_changed.emit()
        return True

    @QtCore.Slot(object)
    def _on_sweep_returned(self, result: Any) -> None:
        self._sweep_result = result
        self.sweep_done.emit(result)

    @QtCore.Slot(object)
    def _on_sweep_failed(self, failure: Failure) -> None:
        self._sweep_ended = FAILED
        self.sweep_failed.emit(failure)

    @QtCore.Slot()
    def _on_sweep_cancelled(self) -> None:
        self._sweep_ended = CANCELLED

    @QtCore.Slot()
    def _on_sweep_finished(self) -> None:
        self._sweep_worker = None
        self.busy_changed.emit()
        self.sweep_ended.emit(self._sweep_ended)

    # ============================================================== stopping ============
    def stop(self) -> bool:
        """Stop loading, training, the sweep and the leakage audit (training answers within
        one batch, the audit between two predictions).

        Returns True when training, a sweep or the audit was running (it ends a moment later).
        """
        audit = self._task_worker if self.is_auditing() else None
        for worker in (self._train_worker, self._load_worker, self._sweep_worker, audit):
            if worker is not None:
                worker.cancel()  # sets an Event: a direct call from the UI thread
        return (self._train_worker is not None or self._sweep_worker is not None
                or audit is not None)

    def shutdown(self) -> None:
        """Cancel every job and wait for its thread; no signal is emitted afterwards."""
        self._closing = True
        self._retrade_pending = None
        self.blockSignals(True)  # what the ending jobs still report goes nowhere
        if self.pool.is_busy():
            self.pool.shutdown()

    # ============================================================== tasks ===============
    def retrade(self, strategy: StrategyConfig) -> None:
        """Paper-trade the shown run again with ``strategy`` (no training); once the running
        task has ended if there is one."""
        result = self._result
        if (self._closing or result is None or self.is_training()
                or strategy == result.config.strategy):
            return
        if self._task_worker is not None:
            self._retrade_pending = strategy
            return
        self._start_task("retrade", "Could not re-run the paper trading",
                         TaskWorker(result.retrade, strategy), self._on_retraded,
                         context=result)

    def _on_retraded(self, result: Any) -> None:
        if self._task_context is self._result:  # still the run on screen
            self._result = result
            self.retraded.emit(result)

    def export_predictions_to(self, path: str) -> None:
        """Write the shown run's predictions table to ``path`` (.csv or .parquet)."""
        if self._result is None:
            return
        from sandbox import export

        self._start_task("export_predictions", "Could not export the predictions",
                         TaskWorker(export.write_predictions, self._result, path),
                         self._on_written)

    def export_chart(self, path: str, picture: bytes | QtGui.QImage) -> None:
        """Write a rendered chart to ``path``: SVG (or other encoded) bytes as they are, a
        QImage encoded as PNG on the worker thread."""
        self._start_task("export_chart", "Could not export the chart",
                         TaskWorker(_write_picture, path, picture), self._on_written)

    def save_model_to(self, folder: str) -> None:
        """Save the shown run's model (weights and settings) as a bundle in ``folder``; a
        walk-forward run's as ``sandbox train --walk-forward --out`` writes it: the newest
        fold's bundle, every fold's under ``folds/``, the predictions and metrics.json."""
        if self._result is None:
            return
        from sandbox import export

        write = export.write_run if is_walk_forward(self._result) else export.save_bundle
        self._start_task("save_model", "Could not save the model",
                         TaskWorker(write, self._result, folder), self._on_written)

    def export_sweep_to(self, folder: str) -> None:
        """Write the last sweep's sweep.csv and summary.json into ``folder``."""
        if self._sweep_result is None:
            return
        from sandbox import sweep

        self._start_task("export_sweep", "Could not export the sweep's results",
                         TaskWorker(sweep.write_sweep, self._sweep_result, folder),
                         self._on_written)

    def show_test(self) -> None:
        """Show the shown run's test split: count the look (on a worker thread: fingerprint
        and file), then ``test_shown``. A run whose look was counted already shows it again
        without counting; a hidden test split (a sweep configuration not selected) or data
        without test rows never does."""
        result = self._result
        if (not self._closing and is_walk_forward(result)
                and (self._task_worker is not None or self.is_training())):
            # its run is ending or a task holds the slot: counted as soon as they end
            self._show_test_pending = True
            return
        if (self._closing or result is None or result.test_hidden or self.is_training()
                or not has_test_rows(result)):
            return
        if self._look is not None and self._look[0] is result:
            self._showing_test = True
            self.test_shown.emit(result, self._look[1])
            return
        known = self._fingerprint
        fingerprint = known[1] if known is not None and known[0] is result.data.frame else None
        self._start_task("show_test", "Could not count the look at the test split",
                         TaskWorker(_look_at_test, result, fingerprint), self._on_test_looked,
                         context=result)

    def _on_test_looked(self, value: tuple[str, Any]) -> None:
        fingerprint, evidence = value
        result = self._task_context
        self._fingerprint = (result.data.frame, fingerprint)
        if result is not self._result:
            self.result_dropped.emit(
                f"the look at the test split was counted ({evidence.count} on this data), "
                "but the run changed meanwhile: not shown")
            return
        self._look = (result, evidence)
        self._showing_test = True
        self.test_shown.emit(result, evidence)

    def show_validation(self) -> None:
        """Back to the shown run's validation split (nothing is counted); a walk-forward
        run has none (its rows are all out of sample)."""
        if self._showing_test and self._result is not None and not is_walk_forward(
                self._result):
            self._showing_test = False
            self.test_concealed.emit(self._result)

    def _on_written(self, value: Any) -> None:
        paths = value.values() if isinstance(value, dict) else [value]
        self.written.emit(", ".join(str(p) for p in paths))

    def load_model_from(self, folder: str, strategy: StrategyConfig) -> None:
        """Predict the loaded prices with the model saved in ``folder`` (no training) and
        paper-trade it with ``strategy``. Not while training or a sweep runs: both hold the
        torch process, and the task would wait for them."""
        if self._prices is None or self.is_training() or self.is_sweeping() or self._external:
            return
        from sandbox import pipeline

        worker = TaskWorker(pipeline.predict, folder, self._prices, self._loaded_spec,
                            strategy, remote=True)
        self._start_task("load_model", "Could not predict with the saved model", worker,
                         self._on_model_loaded, context=folder)

    def _on_model_loaded(self, result: Any) -> None:
        if (self.is_training() or self._prices is None
                or result.data.frame is not self._prices.frame):
            self.result_dropped.emit("not showing the saved model's predictions: the data "
                                     "changed meanwhile")
            return
        self._result = result
        self.model_loaded.emit(result, str(self._task_context))

    def open_sweep_config(self, config_id: str, records: list, *, hide_test: bool) -> None:
        """Show a finished sweep configuration: its runs (``records``) as an ensemble;
        ``hide_test`` keeps its test split hidden (it was not the one selected)."""
        if not records or self._prices is None or self.is_training() or self.is_sweeping():
            return
        done = [r for r in records if r.error is None] or records
        first = min(done, key=lambda r: r.seed)
        config = RunConfig.from_dict(first.config)
        worker = TaskWorker(_open_sweep_run, config, self._prices, records, hide_test=hide_test)
        self._start_task("open_sweep", "Could not open the sweep's run", worker,
                         self._on_sweep_config_opened, context=config_id)

    def _on_sweep_config_opened(self, result: Any) -> None:
        if self.is_training() or result.data is not self._prices:
            self.result_dropped.emit(f"not showing sweep configuration {self._task_context}: "
                                     "the data or the run changed meanwhile")
            return
        self._result = result
        self.sweep_config_opened.emit(result, str(self._task_context))

    def audit_leakage(self, *, cuts: int | None = None, seed: int | None = None) -> bool:
        """Audit the shown run's model for leakage (:func:`sandbox.audit.audit_leakage`) in
        the torch process: re-predict with the data cut at ``cuts`` random dates (5 by
        default) and with the prices after each scrambled. ``seed`` draws the dates (a new
        one each time by default, so a second audit checks other dates); it is in the
        outcome. False when it cannot start now: no single model is shown, or training, a
        sweep or another task runs (the audit would wait for the torch process, or the task
        slot is taken)."""
        result = self._result
        if (self._closing or not can_audit(result) or self.is_training() or self.is_sweeping()
                or self.is_loading() or self._task_worker is not None or self._external):
            return False
        import secrets

        from sandbox import audit

        worker = StreamWorker(audit.audit_leakage, result, result.data.frame,
                              cuts=audit.DEFAULT_CUTS if cuts is None else cuts,
                              seed=secrets.randbelow(2**31) if seed is None else seed,
                              result_arg="on_progress", remote=True)
        worker.streamed.connect(self._on_audit_progress)
        self._start_task(AUDIT, "Could not audit the model for leakage", worker,
                         self._on_audited, context=result)
        return True

    @QtCore.Slot(object)
    def _on_audit_progress(self, progress: Any) -> None:
        if self.is_auditing():
            self.audit_progress.emit(int(progress.done), int(progress.total))

    def _on_audited(self, outcome: Any) -> None:
        self.audited.emit(outcome, self._task_context)

    def _start_task(self, kind: str, title: str, worker: TaskWorker,
                    on_returned: Callable[[Any], None], *, context: Any = None) -> None:
        """Run one short job; ``on_returned`` (this task's handler) takes its value."""
        if self._closing:
            return
        if self._task_worker is not None:
            self.task_refused.emit("Another task (an export, a model or a re-trade) is still "
                                   "running; try again in a moment.")
            return
        worker.returned.connect(self._on_task_returned)
        worker.failed.connect(self._on_task_failed)
        worker.cancelled.connect(self._on_task_cancelled)
        worker.finished.connect(self._on_task_finished)
        self._task_worker = worker
        self._task_kind, self._task_title, self._task_context = kind, title, context
        self._task_handler = on_returned
        self._task_ok = False
        self.pool.start(worker, name=f"sandbox-{kind}")
        self.busy_changed.emit()

    @QtCore.Slot(object)
    def _on_task_returned(self, value: Any) -> None:
        self._task_ok = True
        self._task_handler(value)

    @QtCore.Slot(object)
    def _on_task_failed(self, failure: Failure) -> None:
        self.task_failed.emit(self._task_title, failure)

    @QtCore.Slot()
    def _on_task_cancelled(self) -> None:
        self.task_cancelled.emit(self._task_kind)

    @QtCore.Slot()
    def _on_task_finished(self) -> None:
        kind, ok = self._task_kind, self._task_ok
        self._task_worker = None
        self._task_kind, self._task_title, self._task_context = "", "", None
        self._task_handler = _ignore
        self.busy_changed.emit()
        pending, self._retrade_pending = self._retrade_pending, None
        if pending is not None:
            self.retrade(pending)
        self._show_pending_test()
        self.task_ended.emit(kind, ok)

    def _show_pending_test(self) -> None:
        """Count the look a walk-forward run waited for (its run or a task had to end)."""
        if self._show_test_pending and self._task_worker is None and not self.is_training():
            self._show_test_pending = False
            if is_walk_forward(self._result):
                self.show_test()

