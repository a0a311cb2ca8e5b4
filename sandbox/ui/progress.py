"""What the app is doing, as it goes: the status bar and the Log tab.

:class:`RunProgress` owns the status bar's widgets (the status text, the progress bar and
the source label) and follows a :class:`~sandbox.ui.controller.RunController`: each of its
signals (loading, training, seed ensembles, sweeps, exports) moves the bar, says where the
job is (with an ETA) and adds a line to the :class:`LogView`; a single run's losses go to
the Loss tab as they arrive. What the sentences say is in :mod:`sandbox.ui.wording`. The
window keeps what touches its other widgets (the chart, the tabs, dialogs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from sandbox.config import DataSpec, RunConfig
from sandbox.events import format_hms
from sandbox.ui import wording
from sandbox.ui.charts import LossPlot
from sandbox.ui.controller import CANCELLED, FINISHED
from sandbox.ui.dialogs import Failure
from sandbox.ui.sweep_view import summary_lines

__all__ = ["PROGRESS_STEPS", "LogView", "RunProgress"]

PROGRESS_STEPS = 1000
LOG_LINES = 5000  # the Log tab keeps this many lines
TICK_MS = 1000  # between two finished runs of an ensemble or a sweep, the ETA counts down


class LogView(QtWidgets.QPlainTextEdit):
    """The Log tab: read-only lines in a fixed-width font, each with the time of day."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(LOG_LINES)
        self.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))

    def log(self, message: str) -> None:
        """Add a line."""
        self.appendPlainText(f"{time.strftime('%H:%M:%S')}  {message}")


def _label() -> QtWidgets.QLabel:
    label = QtWidgets.QLabel()
    label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    return label


class RunProgress(QtCore.QObject):
    """The status text, the progress bar and the source label of a status bar.

    Parameters
    ----------
    status_bar : QStatusBar
        Where the widgets go (text on the left, the bar and the source on the right).
    loss_plot : LossPlot
        The Loss tab: a single run's batches and epochs, an ensemble's members.
    log : callable
        Adds a line to the Log tab.
    """

    def __init__(self, status_bar: QtWidgets.QStatusBar, loss_plot: LossPlot,
                 log: Callable[[str], None], parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.status_text = _label()
        # a long message is cut at the window's edge; it never widens the window
        self.status_text.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                       QtWidgets.QSizePolicy.Policy.Preferred)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, PROGRESS_STEPS)
        self.bar.setValue(0)
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(True)
        self.source_label = _label()
        status_bar.addWidget(self.status_text, 1)
        status_bar.addPermanentWidget(self.bar)
        status_bar.addPermanentWidget(self.source_label)
        self._loss_plot = loss_plot
        # The grid costs ~9 ms per repaint (of ~12): too much for a plot redrawn many times
        # a second while training runs.
        loss_plot.plot.showGrid(x=False, y=False)
        self._log = log
        self._controller: Any = None
        self._started = 0.0  # when the training or the sweep began (time.monotonic)
        self._seeds = 1
        self._members_done = 0
        self._last_epoch: dict[str, float] | None = None
        self._summary: str | None = None  # the finished run's status line
        # an ensemble's or a sweep's runs: how many are done, of how many, in how many
        # processes, and when the runs at this pace should all be done (s after _started)
        self._count: tuple[str, int, int] | None = None  # ("{done}/{total} ...", k, N)
        self._jobs = 1
        self._finish_s = 0.0
        self._count_text = ""  # the last count line shown; a tick replaces only it
        self._ticker = QtCore.QTimer(self)
        self._ticker.setInterval(TICK_MS)
        self._ticker.timeout.connect(self._on_tick)

    def attach(self, controller: Any) -> None:
        """Follow ``controller``'s loads, trainings and sweeps (connect before the window's
        own handlers, so that a job's last signal finds the bar already updated)."""
        self._controller = controller
        controller.follow(self, "load_started", "prices_loaded", "load_failed", "load_ended",
                          "run_started", "stage_started", "batch_done", "epoch_done",
                          "member_done", "result_ready", "ensemble_ready", "run_failed",
                          "run_ended", "sweep_started", "sweep_run_done", "sweep_done",
                          "sweep_failed", "sweep_ended", "retraded", "model_loaded",
                          "sweep_config_opened", "written", "task_failed", "task_refused")

    def set_status(self, text: str) -> None:
        self.status_text.setText(text)

    def _set_fraction(self, done: float) -> None:
        self.bar.setValue(round(PROGRESS_STEPS * min(1.0, done)))

    def _reset(self) -> None:
        """An empty bar that shows progress again (not busy)."""
        self._stop_counting()
        self.bar.setValue(0)
        self.bar.setRange(0, PROGRESS_STEPS)

    # ============================================================== run counts ==========
    def _count_run_done(self, what: str, record: Any) -> None:
        """One run of an ensemble or a sweep finished (``record.done`` of ``record.total``;
        ``what`` says it, e.g. ``"{done}/{total} seeds trained"``): a determinate bar from
        now on, the percent and the ETA at the pace so far; until the next run finishes, the
        ETA counts down each second and the bar moves on at that pace, never past the runs
        in flight (the runs report nothing before they end)."""
        total = max(int(record.total), 1)
        done = min(max(int(record.done), 0), total)
        self._count = (what, done, total)
        elapsed = time.monotonic() - self._started
        self._finish_s = elapsed * total / done if done else float("nan")
        if self.bar.maximum() == 0:
            self.bar.setRange(0, PROGRESS_STEPS)  # busy until the first run is back
        self._show_count(elapsed)
        if done < total:
            self._ticker.start()
        else:
            self._ticker.stop()

    @QtCore.Slot()
    def _on_tick(self) -> None:
        if self.status_text.text() != self._count_text:
            self._ticker.stop()  # something else was said meanwhile (e.g. "Stopping...")
            return
        self._show_count()

    def _show_count(self, elapsed: float | None = None) -> None:
        if self._count is None:
            return
        what, done, total = self._count
        if elapsed is None:
            elapsed = time.monotonic() - self._started
        fraction = done / total
        if done < total and self._finish_s > 0:
            in_flight = min(self._jobs, total - done)
            fraction = max(fraction, min(elapsed / self._finish_s, (done + in_flight) / total))
        value = max(self.bar.value(), round(PROGRESS_STEPS * fraction))  # never backwards
        percent = round(100 * value / PROGRESS_STEPS)
        if done < total:
            value, percent = min(value, PROGRESS_STEPS - 1), min(percent, 99)
        self.bar.setValue(value)
        eta = max(0.0, self._finish_s - elapsed) if done < total else 0.0
        self._count_text = (f"{what.format(done=done, total=total)}, {percent}%, "
                            f"ETA {format_hms(eta)}")
        self.set_status(self._count_text)

    def _stop_counting(self) -> None:
        self._ticker.stop()
        self._count = None
        self._count_text = ""

    # ============================================================== loading =============
    @QtCore.Slot(object)
    def _on_load_started(self, spec: DataSpec) -> None:
        text = wording.loading_text(spec)
        self.set_status(text[:1].upper() + text[1:])
        if not self._controller.is_training():
            self.bar.setRange(0, 0)

    @QtCore.Slot(object)
    def _on_prices_loaded(self, loaded: Any) -> None:
        self._loss_plot.reset()
        self.source_label.setText(wording.loaded_source(loaded))
        self._log(wording.loaded_text(loaded).replace("\n", "; "))
        for warning in loaded.warnings:
            self._log(f"warning: {warning}")
        self.set_status(f"Loaded {loaded.label}. Press Train (Ctrl+R) to fit the model.")

    @QtCore.Slot(object, object)
    def _on_load_failed(self, _failure: Failure, _spec: DataSpec) -> None:
        self.set_status("Loading failed.")

    @QtCore.Slot(str)
    def _on_load_ended(self, how: str) -> None:
        if how == CANCELLED:
            self.set_status("Loading stopped.")
            self._log("loading stopped")
        if not self._controller.is_training():
            self.bar.setRange(0, PROGRESS_STEPS)

    # ============================================================== training ============
    @QtCore.Slot(object, object, int, int)
    def _on_run_started(self, _worker: Any, config: RunConfig, seeds: int, jobs: int) -> None:
        self._last_epoch = None
        self._seeds, self._members_done = seeds, 0
        self._jobs = max(int(jobs), 1)
        self._started = time.monotonic()
        self._loss_plot.reset()
        self._reset()
        label = self._controller.prices.label
        if seeds > 1:
            self.bar.setRange(0, 0)  # busy until the first member is back
            self.set_status(wording.ensemble_started_status(config, seeds, jobs))
            self._log(wording.ensemble_started_log(config, seeds, jobs, label))
        else:
            self.set_status(wording.run_started_status(config))
            self._log(wording.run_started_log(config, label))

    @QtCore.Slot(str, str)
    def _on_stage_started(self, _stage: str, message: str) -> None:
        self._log(message)
        if self._last_epoch is None:
            self.set_status(message[:1].upper() + message[1:] + "...")

    @QtCore.Slot(float, float, float, int)
    def _on_batch_done(self, position: float, loss: float, samples_per_s: float,
                       epochs: int) -> None:
        self._loss_plot.add_batch(position, loss)
        self._set_fraction(position / max(epochs, 1))
        elapsed = time.monotonic() - self._started
        eta = elapsed / position * (epochs - position) if position > 0 else float("nan")
        self.set_status(wording.batch_status(position, loss, samples_per_s, epochs, eta,
                                             self._last_epoch))

    @QtCore.Slot(dict)
    def _on_epoch_done(self, info: dict) -> None:
        self._last_epoch = info
        epoch, epochs = int(info["epoch"]), int(info["epochs"])
        self._loss_plot.add_epoch(epoch, info["train_loss"], info["val_loss"])
        self._set_fraction(epoch / max(epochs, 1))
        self.set_status(wording.epoch_status(info))
        self._log(wording.epoch_log(info))

    @QtCore.Slot(object)
    def _on_member_done(self, record: Any) -> None:
        """One seed of an ensemble finished (or failed); its curves join the Loss tab."""
        self._members_done = int(record.done)
        if not record.error:
            self._loss_plot.add_member(list(record.train_losses), list(record.val_losses))
        self._log(wording.member_log(record))
        self._count_run_done("{done}/{total} seeds trained", record)

    @QtCore.Slot(object)
    def _on_result_ready(self, result: Any) -> None:
        self._stop_counting()
        self._loss_plot.flush()
        seconds = time.monotonic() - self._started
        folds = getattr(result, "folds", None) if getattr(result, "walk_forward", None) else None
        if folds:  # its history is the last fold's; each fold was logged as it finished
            self._log(f"walk-forward: {len(folds)} folds trained in {seconds:.1f} s")
        else:
            self._log(wording.trained_log(result.history, seconds))
        self._summary = wording.trained_status(result, seconds)
        self.set_status(self._summary)
        self.bar.setValue(PROGRESS_STEPS)

    @QtCore.Slot(object)
    def _on_ensemble_ready(self, result: Any) -> None:
        self._stop_counting()
        seconds = time.monotonic() - self._started
        self._log(wording.ensemble_log(result, seconds))
        self._summary = wording.ensemble_status(result, seconds)
        self.set_status(self._summary)
        self.bar.setValue(PROGRESS_STEPS)

    @QtCore.Slot(object)
    def _on_run_failed(self, _failure: Failure) -> None:
        self._stop_counting()
        self.set_status("Training failed.")
        self.bar.setValue(0)

    @QtCore.Slot(str)
    def _on_run_ended(self, how: str) -> None:
        self._stop_counting()
        summary, self._summary = self._summary, None
        if how == FINISHED and summary is not None:
            self.set_status(summary)  # a Stop that came as the run finished said "Stopping..."
        if how == CANCELLED:
            after = wording.stopped_after(self._seeds, self._members_done, self._last_epoch)
            self.set_status(f"Training stopped{after}. Nothing was kept.")
            self._log(f"training stopped{after}")
            self.bar.setValue(0)
        self.bar.setRange(0, PROGRESS_STEPS)  # an ensemble stopped early was "busy"

    # ============================================================== sweep ===============
    @QtCore.Slot(int, object, int, int)
    def _on_sweep_started(self, n_runs: int, grid: dict, seeds: int, jobs: int) -> None:
        self._started = time.monotonic()
        self._reset()
        self._jobs = max(int(jobs), 1)
        self.bar.setRange(0, 0)  # busy until the first run is back
        self.set_status(wording.sweep_started_status(n_runs, grid, seeds, jobs))
        self._log(wording.sweep_started_log(n_runs, grid, seeds, jobs,
                                            self._controller.prices.label))

    @QtCore.Slot(object)
    def _on_sweep_run_done(self, record: Any) -> None:
        self._log(wording.sweep_run_log(record))
        self._count_run_done("Sweep: {done}/{total} runs", record)

    @QtCore.Slot(object)
    def _on_sweep_done(self, result: Any) -> None:
        self._stop_counting()
        for line in summary_lines(result.summary):
            self._log(f"sweep: {line}")
        self.bar.setValue(PROGRESS_STEPS)
        self.set_status(wording.sweep_done_status(result.summary,
                                                  time.monotonic() - self._started))

    @QtCore.Slot(object)
    def _on_sweep_failed(self, _failure: Failure) -> None:
        self._stop_counting()
        self.bar.setValue(0)
        self.set_status("The sweep failed.")

    @QtCore.Slot(str)
    def _on_sweep_ended(self, how: str) -> None:
        self._stop_counting()
        if how == CANCELLED:
            self.bar.setValue(0)
            self.set_status("Sweep stopped. Nothing was kept.")
            self._log("sweep stopped")
        self.bar.setRange(0, PROGRESS_STEPS)

    # ============================================================== tasks ===============
    @QtCore.Slot(object)
    def _on_retraded(self, result: Any) -> None:
        self._log(wording.retraded_log(result))
        self.set_status(wording.retraded_status(result))

    @QtCore.Slot(object, str)
    def _on_model_loaded(self, result: Any, folder: str) -> None:
        self._loss_plot.reset()  # no training: no losses
        self._log(wording.model_loaded_log(result, folder))
        self.set_status(wording.model_loaded_status(result, folder))

    @QtCore.Slot(object, str)
    def _on_sweep_config_opened(self, result: Any, config_id: str) -> None:
        self._loss_plot.reset()
        for seed in result.seeds:  # its seeds' curves, as an ensemble's members
            history = result.histories.get(seed, {})
            self._loss_plot.add_member(history.get("train_loss", []),
                                       history.get("val_loss", []))
        self._log(wording.sweep_opened_log(result, config_id))
        self.set_status(wording.sweep_opened_status(result, config_id))

    @QtCore.Slot(str)
    def _on_written(self, paths: str) -> None:
        self._log(f"wrote {paths}")
        self.set_status(f"Wrote {paths}")

    @QtCore.Slot(str, object)
    def _on_task_failed(self, title: str, _failure: Failure) -> None:
        self.set_status(f"{title}.")

    @QtCore.Slot(str)
    def _on_task_refused(self, why: str) -> None:
        self.set_status(why)
