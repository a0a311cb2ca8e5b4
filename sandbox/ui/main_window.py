"""The main window: side panel (Data, Model, Strategy), chart, Loss / Metrics / Log / Sweep tabs.

The window holds the widgets, actions and menus and turns what happens into view updates
(``_on_<event>``). The run lifecycle (loading, training, sweeps, exports, model bundles and
re-trading, each on a worker thread) lives in :class:`~sandbox.ui.controller.RunController`:
the window asks it to start a job and draws what its signals report. Views that only
follow the controller attach to it themselves: the status bar, the progress bar, the Loss
and Log tabs (:class:`~sandbox.ui.progress.RunProgress`), the Data panel's note, the
Metrics and the Sweep tabs. The window keeps what involves several widgets: drawing a run,
which actions are enabled, the split preview, dialogs and remembered settings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from PySide6 import QtCore, QtGui, QtWidgets

from sandbox import constants as C
from sandbox.config import DataSpec, RunConfig
from sandbox.errors import ConfigError
from sandbox.pipeline import foreign_data
from sandbox.runs import usable_cores
from sandbox.ui import dialogs, wording
from sandbox.ui.charts import LossPlot, PriceChart
from sandbox.ui.controller import (
    AUDIT,
    RunController,
    can_audit,
    has_test_rows,
    is_walk_forward,
)
from sandbox.ui.dialogs import Failure
from sandbox.ui.folds_view import FoldProgress, FoldsView
from sandbox.ui.memory_view import MemoryView
from sandbox.ui.metrics_view import MetricsView
from sandbox.ui.options import GuiOptions
from sandbox.ui.panels import (
    MAX_PREVIEW_LINES,
    SidePanel,
    chart_splitter,
    csv_filters,
    fill_menu_bar,
    make_action,
    split_preview,
    tab_widget,
    walk_forward_preview,
)
from sandbox.ui.progress import PROGRESS_STEPS, LogView, RunProgress
from sandbox.ui.replay_bar import ReplayBar
from sandbox.ui.screenshot import StripGrab, png_bytes, svg_bytes
from sandbox.ui.settings import Settings, resolve_config
from sandbox.ui.sweep_view import SweepView
from sandbox.ui.workers import PendingLoad

__all__ = ["MainWindow"]

Signal = QtCore.Signal

DEFAULT_SIZE = (1400, 900)
RETRADE_DELAY_MS = 120  # strategy edits are re-traded once the user pauses this long
WARM_UP_DELAY_MS = 400  # the torch process starts this long after the data shows

AUDIT_TITLE = "Audit for leakage"
#: why Train, Sweep, the audit and Load model wait (another view holds the torch process)
REPLAY_HOLDS = "the Replay bar is computing its steps"
MEMORY_HOLDS = "the Memory tab is measuring or training"
AUDIT_TIP = ("Check that no prediction uses later prices: predict again with the data cut at "
             "5 random dates, and with every price after each cut scrambled; a prediction "
             "at or before a cut that changes is a leak")
#: why Run > Audit for leakage... cannot run now (its tooltip says so)
AUDIT_NO_MODEL = ("an ensemble averages several models and keeps none of them: audit a run "
                  "trained with Seeds 1, or a saved model")
AUDIT_HOW = ("At each cut date the model predicted every row again, once on the data cut "
             "there and once with every later bar shuffled and rescaled; a prediction dated "
             "at or before the cut may use only prices up to it, so it must not change.")


class MainWindow(QtWidgets.QMainWindow):
    """The app's window.

    Parameters
    ----------
    options : GuiOptions, optional
        Command line choices (source, settings, autotrain).
    persist : bool
        Read and write QSettings (off for ``--screenshot`` runs).
    headless : bool
        Report failures through :attr:`failure_reported` only, never a modal dialog.
    settings : Settings, optional
        The settings store (the user's by default).
    pending : PendingLoad, optional
        The initial data, already loading (the app starts it before building the window).

    Signals
    -------
    data_shown(LoadedPrices)
        New prices are on the chart.
    run_started(Worker)
        Training started (tests connect to the worker's signals).
    run_shown(ShownRun)
        A run's overlays and metrics are drawn (after training, re-trading or Load model);
        the Metrics tab shows its validation split.
    test_shown(ShownRun, LookEvidence)
        The Metrics tab shows the run's test split (the look was counted).
    run_ended(str)
        Training ended: ``"finished"``, ``"failed"`` or ``"cancelled"``.
    close_refused()
        The user chose to keep a running training or sweep when asked on closing.
    sweep_ended(str)
        A sweep (Sweep tab) ended: ``"finished"``, ``"failed"`` or ``"cancelled"``.
    task_ended(str, bool)
        A background task (export, save, load model, re-trade) ended; kind and success.
    audit_shown(AuditResult)
        The leakage audit's outcome is in the Log tab and (unless headless) its message box.
    failure_reported(str, Failure)
        Something failed (also shown as a dialog unless headless).
    """

    data_shown = Signal(object)
    run_started = Signal(object)
    run_shown = Signal(object)
    test_shown = Signal(object, object)
    run_ended = Signal(str)
    sweep_ended = Signal(str)
    task_ended = Signal(str, bool)
    audit_shown = Signal(object)
    failure_reported = Signal(str, object)
    close_refused = Signal()

    def __init__(self, options: GuiOptions | None = None, *, persist: bool = True,
                 headless: bool = False, settings: Settings | None = None,
                 pending: PendingLoad | None = None) -> None:
        super().__init__()
        self.options = options or GuiOptions()
        self.persist = persist
        self.headless = headless
        self.settings = settings if settings is not None else Settings()
        self.controller = RunController(self)

        config = resolve_config(self.options, self.settings if persist else None)
        self._config: RunConfig = config
        self._pending = pending
        self._form_error: str | None = None
        self._closing = False
        self._asking = False  # the question on closing during a run is open
        self._ask_discard = self.settings.ask_before_discarding_run() if persist else True
        self._autotrain_pending = self.options.autotrain
        self._fallback_to_default = persist and not self.options.explicit_source
        #: what is shaded: (window, split), or (window, walk-forward spec, (target, fill))
        self._preview_key: tuple[Any, ...] | None = None
        self._preview: pd.Series | None = None
        self._show_token = 0  # bumps with every result drawn; stale drawing steps stop
        self._drawing = False
        self._grabs: set[StripGrab] = set()  # chart pictures being drawn for Export chart
        self.audit_box: QtWidgets.QMessageBox | None = None  # the last audit's outcome

        self._build_ui()
        self._build_actions()
        self._build_menus()
        seeds = self.options.seeds
        self.side_panel.set_run(config, seeds if seeds is not None
                                else self.settings.seeds() if persist else 1)
        if persist and config.walk_forward is None:  # the fields as last left, not chosen
            self.model_panel.evaluation.set_spec(self.settings.walk_forward_fields(),
                                                 walk_forward=False)
        self._connect_panels()
        self._connect_controller()
        self._restore_window()
        self._validate_form()
        self._update_actions()

    # ============================================================== building ============
    def _build_ui(self) -> None:
        self.setWindowTitle(dialogs.APP_TITLE)
        dark = self.settings.dark_chart() if self.persist else None
        self._dark = True if dark is None else dark

        from sandbox.data import list_samples

        self.side_panel = SidePanel(list_samples())
        self.data_panel = self.side_panel.data_panel
        self.model_panel = self.side_panel.model_panel
        self.strategy_panel = self.side_panel.strategy_panel
        self.form_error = self.side_panel.form_error
        self.train_button = self.side_panel.train_button
        self.stop_button = self.side_panel.stop_button
        self.dock = self.side_panel.make_dock(self)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)

        self.chart = PriceChart(dark=self._dark)
        self.loss_plot = LossPlot()
        self.metrics_view = MetricsView()
        self.log_view = LogView()
        self.sweep_view = SweepView()
        self.sweep_view.set_jobs(usable_cores())
        self.folds_view = FoldsView()
        self.memory_view = MemoryView(self.controller)
        self.tabs = tab_widget({"Loss": self.loss_plot, "Metrics": self.metrics_view,
                                "Log": self.log_view, "Sweep": self.sweep_view,
                                "Folds": self.folds_view, "Memory": self.memory_view})
        # the Replay bar under the chart: the shown model trading bar by bar
        self.replay_bar = ReplayBar(self.controller, self.chart)
        chart_box = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(chart_box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.chart, 1)
        column.addWidget(_sideways_scroll(self.replay_bar))
        self.splitter = chart_splitter(chart_box, self.tabs)
        self.setCentralWidget(self.splitter)
        self._apply_dark(self._dark)

        # the status bar: what runs and how far it got, and the data shown
        self.run_progress = RunProgress(self.statusBar(), self.loss_plot, self.log, self)
        self.progress = self.run_progress.bar
        self.status_text = self.run_progress.status_text
        self.source_label = self.run_progress.source_label
        # a walk-forward run's folds: counted in the status bar, curves in the Loss tab
        self.fold_progress = FoldProgress(self.run_progress.set_status, self.progress,
                                          self.loss_plot, self.folds_view, self.log, self)
        # what loading the data on the chart repaired or assumed, until other data loads
        self.data_warning = QtWidgets.QLabel()
        self.data_warning.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.data_warning.setStyleSheet("color: #b35c00;")
        self.data_warning.setVisible(False)
        self.statusBar().addPermanentWidget(self.data_warning)

        self._retrade_timer = QtCore.QTimer(self)
        self._retrade_timer.setSingleShot(True)
        self._retrade_timer.setInterval(RETRADE_DELAY_MS)
        self._retrade_timer.timeout.connect(self._retrade)

    def _build_actions(self) -> None:
        act = functools.partial(make_action, self)
        self.act_open_csv = act("&Open CSV...", self.open_csv, "Ctrl+O",
                                "Load prices from a CSV file")
        self.act_export_predictions = act("&Export predictions...", self.export_predictions,
                                          "Ctrl+E", wording.EXPORT_PREDICTIONS_TIP)
        self.act_export_chart = act("Export &chart...", self.export_chart, "Ctrl+Shift+E",
                                    "Save the chart as a PNG or SVG image")
        self.act_save_model = act("&Save model...", self.save_model, "Ctrl+S",
                                  wording.SAVE_MODEL_TIP)
        self.act_load_model = act("&Load model...", self.load_model, "Ctrl+L",
                                  "Predict on the loaded data with a saved model, without "
                                  "training")
        self.act_quit = act("&Quit", self.close, "Ctrl+Q", "Quit the app")
        self.act_train = act("&Train", self.train, "Ctrl+R", "Train the model on the loaded data")
        self.act_stop = act("&Stop", self.stop, QtCore.Qt.Key.Key_Escape,
                            "Stop training or loading")
        self.act_show_test_results = act("Show test &results", self.show_test_results,
                                         "Ctrl+Shift+T", wording.SHOW_TEST_TIP)
        self.act_show_validation = act("Back to &validation", self.show_validation, None,
                                       wording.SHOW_VALIDATION_TIP)
        self.act_audit = act("&Audit for leakage...", self.audit_leakage, None, AUDIT_TIP)
        self.act_dark = act("&Dark chart", self._on_dark_toggled, None,
                            "Dark or light chart background", checkable=True)
        self.act_dark.setChecked(self._dark)
        self.act_show_all = act("Show &all bars", self.show_all, "Ctrl+0", "Zoom out to every bar")
        self.act_show_test = act("Zoom to the &test split", self.show_test_split, "Ctrl+T",
                                 "Zoom the chart to the test split's bars (the Metrics "
                                 "tab stays where it is)")
        self.act_about = act("&About", self._on_about, None,
                             "Versions of the app and its libraries")
        self.act_ask_discard = act("&Ask before discarding a run", self._set_ask_discard, None,
                                   "Closing the window while training or a sweep runs asks "
                                   "first", checkable=True)
        self.act_ask_discard.setChecked(self._ask_discard)
        self.act_tabs = [act(f"{self.tabs.tabText(i)} tab",
                             lambda _=False, i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}")
                         for i in range(self.tabs.count())]
        self.train_button.clicked.connect(self.act_train.trigger)
        self.stop_button.clicked.connect(self.act_stop.trigger)

    def _build_menus(self) -> None:
        toggle = self.dock.toggleViewAction()
        toggle.setText("Settings &panel")
        toggle.setShortcut(QtGui.QKeySequence("Ctrl+B"))
        menus = {  # None: a separator
            "&File": [self.act_open_csv, None, self.act_export_predictions, self.act_export_chart,
                      None, self.act_save_model, self.act_load_model, None,
                      self.act_ask_discard, self.act_quit],
            "&Run": [self.act_train, self.act_stop, None, self.act_show_test_results,
                     self.act_show_validation, None, self.act_audit],
            "&View": [toggle, self.act_dark, None, self.act_show_all, self.act_show_test,
                      self.chart.return_view_action, self.chart.log_price_action,
                      self.chart.log_equity_action, None, *self.act_tabs],
            "&Help": [self.act_about],
        }
        fill_menu_bar(self.menuBar(), menus)

    def _connect_panels(self) -> None:
        self.data_panel.load_requested.connect(self.load)
        self.data_panel.open_csv_requested.connect(self.open_csv)
        self.data_panel.split_changed.connect(self._on_split_changed)
        self.model_panel.changed.connect(self._on_model_changed)
        self.strategy_panel.changed.connect(self._on_strategy_changed)
        self.sweep_view.run_requested.connect(self.run_sweep)
        self.sweep_view.stop_requested.connect(self.stop)
        self.sweep_view.open_requested.connect(self.open_sweep_config)
        self.sweep_view.export_requested.connect(self.export_sweep)
        self.metrics_view.reveal_requested.connect(self.act_show_test_results.trigger)
        self.replay_bar.busy_changed.connect(self._on_replay_busy)
        self.replay_bar.replay_ended.connect(self._on_replay_ended)
        self.replay_bar.replay_failed.connect(functools.partial(self._report,
                                                                "The replay failed"))
        self.memory_view.busy_changed.connect(self._on_memory_busy)
        self.metrics_view.validation_requested.connect(self.act_show_validation.trigger)

    def _connect_controller(self) -> None:
        c = self.controller
        # the status bar, the Log, the Data panel, the Metrics and Sweep tabs follow the
        # controller themselves (first, so that the window's handlers below, which emit the
        # window's own signals, find them up to date)
        for view in (self.run_progress, self.fold_progress, self.data_panel, self.metrics_view,
                     self.sweep_view):
            view.attach(c)
        c.follow(self, "prices_loaded", "load_failed", "run_started", "sweep_config_opened")
        c.result_ready.connect(self._on_trained)
        c.ensemble_ready.connect(self._on_trained)
        c.run_failed.connect(functools.partial(self._report, "Training failed"))
        c.run_ended.connect(self.run_ended)
        c.sweep_started.connect(self._save_sweep_form)
        c.sweep_failed.connect(functools.partial(self._report, "The sweep failed"))
        c.sweep_ended.connect(self.sweep_ended)
        c.retraded.connect(self._on_retraded)
        c.model_loaded.connect(self._show_in_metrics)
        c.test_shown.connect(self._on_test_shown)
        c.test_concealed.connect(self._on_test_concealed)
        c.result_dropped.connect(self.log)
        c.task_failed.connect(self._report)
        c.task_ended.connect(self.task_ended)
        c.follow(self, "audit_progress", "audited", "task_cancelled")
        c.busy_changed.connect(self._update_actions)

    def _restore_window(self) -> None:
        geometry = self.settings.geometry() if self.persist else None
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(*DEFAULT_SIZE)
        if self.persist:
            state = self.settings.window_state()
            if state is not None:
                self.restoreState(state)
            splitter = self.settings.splitter_state()
            if splitter is not None:
                self.splitter.restoreState(splitter)
            self.sweep_view.restore_state(self.settings.sweep_form())

    # ============================================================== public API ==========
    def start(self) -> None:
        """Load the initial data (call once the window is shown)."""
        self.log(f"{dialogs.APP_TITLE} started")
        pending, self._pending = self._pending, None
        self.load(self._config.data, pending=pending)

    @property
    def pool(self) -> Any:
        """The controller's WorkerPool (every worker thread of the window)."""
        return self.controller.pool

    @property
    def prices(self) -> Any:
        """The LoadedPrices on the chart, or None."""
        return self.controller.prices

    @property
    def result(self) -> Any:
        """The ShownRun on screen (a run, an ensemble or a saved model's), or None."""
        return self.controller.result

    def is_training(self) -> bool:
        return self.controller.is_training()

    def is_loading(self) -> bool:
        return self.controller.is_loading()

    def is_sweeping(self) -> bool:
        return self.controller.is_sweeping()

    def is_busy(self) -> bool:
        """True while any worker thread runs."""
        return self.controller.is_busy()

    def is_idle(self) -> bool:
        """No load, training, sweep, task, replay job or memory lab job running and no result
        half drawn."""
        return (self.controller.is_idle() and not self._drawing and not self._grabs
                and not self.replay_bar.is_computing() and not self.memory_view.is_busy())

    def load(self, spec: DataSpec, *, pending: PendingLoad | None = None) -> None:
        """Load ``spec`` on a worker thread; the chart shows it when it arrives."""
        if not self._closing:
            self.controller.load(spec, pending=pending)

    def train(self) -> None:
        """Train with the form's settings on the loaded data (on a worker thread)."""
        if self._form_error is not None and self.prices is not None and not self._closing:
            # reached through --autotrain or a shortcut: say why nothing happens
            self._report("Cannot train", Failure(message=self._form_error, kind="ConfigError"))
            return
        if not self._can_train():
            return
        config = self.side_panel.run_config(self.controller.loaded_spec)
        self._config = config
        self.controller.train(config, self.model_panel.seeds())

    def stop(self) -> None:
        """Stop training, loading, the sweep or the leakage audit (training answers within
        one batch)."""
        replaying = self.replay_bar.stop()
        lab = self.memory_view.stop()
        if self.controller.stop() or lab:
            self.run_progress.set_status("Stopping...")
        elif replaying:
            self.run_progress.set_status("Replay stopped.")

    def show_all(self) -> None:
        if self.prices is not None:
            self.chart.show_range(0, len(self.prices.frame) - 1)

    def show_test_split(self) -> None:
        splits = self._split_series()
        if splits is None or self.prices is None:
            return
        test = splits.index[splits.to_numpy() == C.TEST]
        if len(test):
            first, last = self.prices.frame.index.get_indexer([test[0], test[-1]])
            self.chart.show_range(int(first), int(last))

    def show_test_results(self) -> None:
        """Run > Show test results: the shown run's test figures in the Metrics tab. The
        look is counted for this data (shared with ``sandbox train``); retraining or a new
        strategy goes back to validation."""
        if self.result is not None and not self._closing:
            self.tabs.setCurrentWidget(self.metrics_view)
            self.controller.show_test()

    def show_validation(self) -> None:
        """Run > Back to validation: the shown run's validation figures again."""
        self.controller.show_validation()

    def audit_leakage(self, *, seed: int | None = None) -> None:
        """Run > Audit for leakage...: re-predict with the shown model on the data cut at 5
        random dates and with the prices after each scrambled, in the torch process; the
        outcome goes to the Log tab and a message box. ``seed`` draws the dates (a new one
        each time by default)."""
        if self._closing or not self.controller.audit_leakage(seed=seed):
            return
        self.progress.setValue(0)
        self.run_progress.set_status("Auditing the model for leakage: predicting every row "
                                     "again with later prices removed and scrambled...")
        self.log(f"{AUDIT_TITLE}: started")

    @QtCore.Slot(int, int)
    def _on_audit_progress(self, done: int, total: int) -> None:
        self.progress.setValue(round(PROGRESS_STEPS * done / max(total, 1)))
        if done < total:
            self.run_progress.set_status(f"Auditing the model for leakage: cut {done + 1} of "
                                         f"{total} (later prices removed, then scrambled)...")

    @QtCore.Slot(str)
    def _on_task_cancelled(self, kind: str) -> None:
        if kind == AUDIT:
            self.run_progress.set_status("Audit for leakage stopped: nothing was checked to "
                                         "the end.")
            self.log(f"{AUDIT_TITLE}: stopped")

    @QtCore.Slot(object, object)
    def _on_audited(self, outcome: Any, run: Any) -> None:
        label = run.data.label if run is not None else "the model"
        self.progress.setValue(PROGRESS_STEPS)
        self.run_progress.set_status(outcome.message)
        self.log(f"{AUDIT_TITLE} of {label} (seed {outcome.seed}, {outcome.seconds:.1f} s): "
                 f"{outcome.message}")
        if not self.headless and not self._closing:
            self._show_audit_box(outcome, label)
        self.audit_shown.emit(outcome)

    def _show_audit_box(self, outcome: Any, label: str) -> None:
        """The outcome in a message box, opened without blocking (window-modal)."""
        from sandbox import audit

        if self.audit_box is not None:
            self.audit_box.close()
        box = QtWidgets.QMessageBox(self)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowTitle(AUDIT_TITLE)
        box.setIcon(QtWidgets.QMessageBox.Icon.Information if outcome.passed
                    else QtWidgets.QMessageBox.Icon.Warning)
        box.setText(outcome.message)
        box.setInformativeText(f"{AUDIT_HOW} Model of {label}; seed {outcome.seed}; "
                               f"{outcome.seconds:.1f} s.")
        box.setDetailedText("\n".join(audit.check_line(c) for c in outcome.cuts))
        box.destroyed.connect(self._forget_audit_box)
        self.audit_box = box
        box.open()

    @QtCore.Slot()
    def _forget_audit_box(self) -> None:
        self.audit_box = None

    def open_csv(self) -> None:
        """File > Open CSV...: choose a file and load it."""
        if self.is_training() or self.is_loading() or self.is_sweeping():
            return
        path = self._ask(dialogs.ask_open_path, "Open a price CSV", csv_filters())
        if not path:
            return
        self.data_panel.set_csv_path(path)
        try:
            spec = self.data_panel.spec()
        except ConfigError as exc:
            self._report("Could not load the data", dialogs.failure_from(exc))
            return
        self.load(spec)

    def export_predictions(self) -> None:
        """File > Export predictions...: CSV or Parquet."""
        if self.result is not None and (path := self._ask(
                dialogs.ask_export_path, "Export predictions",
                f"{self.result.data.label}_predictions", {"CSV": ".csv", "Parquet": ".parquet"})):
            self.export_predictions_to(path)

    def export_predictions_to(self, path: str) -> None:
        """Write the predictions table to ``path`` (.csv or .parquet) on a worker thread."""
        self.controller.export_predictions_to(path)

    def export_chart(self) -> None:
        """File > Export chart...: PNG or SVG."""
        if self.prices is not None and (path := self._ask(
                dialogs.ask_export_path, "Export chart", f"{self.prices.label}_chart",
                {"PNG image": ".png", "SVG image": ".svg"})):
            self.export_chart_to(path)

    def export_chart_to(self, path: str) -> None:
        """Render the chart (UI thread; a PNG a strip per turn of the event loop) and write it
        to ``path`` (worker thread; a PNG is encoded there too)."""
        if Path(path).suffix.lower() == ".svg":
            self.controller.export_chart(path, svg_bytes(self.chart, dialogs.APP_TITLE))
            return
        grab = StripGrab(self.chart, lambda: self.chart.revision)
        grab.grabbed.connect(lambda image: self._on_chart_grabbed(grab, path, image))
        self._grabs.add(grab)  # drawing counts as busy: no second export meanwhile
        self._update_actions()
        grab.start()

    def _on_chart_grabbed(self, grab: StripGrab, path: str, image: Any) -> None:
        self._grabs.discard(grab)
        self.controller.export_chart(path, image)
        self._update_actions()

    def save_model(self) -> None:
        """File > Save model...: the trained model's bundle into a folder."""
        if self.result is not None and (folder := self._ask(dialogs.ask_directory,
                                                            "Save the model into a folder")):
            self.save_model_to(folder)

    def save_model_to(self, folder: str) -> None:
        self.controller.save_model_to(folder)

    def load_model(self) -> None:
        """File > Load model...: predict the loaded data with a saved model, no training."""
        if self.prices is not None and (folder := self._ask(dialogs.ask_existing_directory,
                                                            "Load a saved model (its folder)")):
            self.load_model_from(folder)

    def load_model_from(self, folder: str) -> None:
        try:
            strategy = self.strategy_panel.strategy_config()
        except ConfigError as exc:
            self._report("Could not predict with the saved model", dialogs.failure_from(exc))
            return
        self.controller.load_model_from(folder, strategy)

    def run_sweep(self, grid: dict, seeds: int, jobs: int) -> None:
        """Sweep tab: train every configuration of ``grid`` (over the side panel's settings)
        x ``seeds`` in ``jobs`` worker processes; rows fill in as runs finish."""
        if not self._can_train():
            if self._form_error is not None:
                self._report("Cannot run the sweep",
                             Failure(message=self._form_error, kind="ConfigError"))
            return
        try:
            self.controller.run_sweep(self.current_config(), grid, seeds, jobs)
        except ConfigError as exc:
            self._report("Cannot run the sweep", dialogs.failure_from(exc))

    def export_sweep(self) -> None:
        """Sweep tab > Export results...: sweep.csv and summary.json into a folder."""
        if self.controller.sweep_result is not None and (
                folder := self._ask(dialogs.ask_directory,
                                    "Export the sweep's results into a folder")):
            self.export_sweep_to(folder)

    def export_sweep_to(self, folder: str) -> None:
        self.controller.export_sweep_to(folder)

    def open_sweep_config(self, config_id: str) -> None:
        """Show a finished sweep configuration (averaged over its seeds) on the chart."""
        hide_test = config_id != self.sweep_view.selected_config_id()
        self.controller.open_sweep_config(config_id, self.sweep_view.records(config_id),
                                          hide_test=hide_test)

    def png_bytes(self) -> bytes:
        """The whole window as PNG bytes (for ``--screenshot``)."""
        return png_bytes(self.grab().toImage())

    def log(self, message: str) -> None:
        """Add a line to the Log tab."""
        self.log_view.log(message)

    # ============================================================== loading =============
    @QtCore.Slot(object)
    def _on_prices_loaded(self, loaded: Any) -> None:
        self._fallback_to_default = False
        self.replay_bar.set_run(None)
        self.chart.set_prices(loaded.frame, title=loaded.label)
        self.setWindowTitle(f"{loaded.label} - {dialogs.APP_TITLE}")
        self._show_load_warnings(loaded)
        if self.persist and self.controller.loaded_spec is not None:
            self.settings.save_data(self.controller.loaded_spec)
        # The split shading in a turn of the event loop of its own, after due timers and input:
        # with the candles' first paint it kept the UI thread ~65 ms (bench/ui_stall.py,
        # warm-up; now ~30). 1 ms, not 0: a 0 ms single shot is a posted event, run ahead of
        # timers that are already due.
        QtCore.QTimer.singleShot(1, lambda: self._show_split_preview(loaded))

    def _show_split_preview(self, loaded: Any) -> None:
        """The rest of showing new prices: split shading, form check, ``data_shown``."""
        if self._closing or self.prices is not loaded:
            return  # closed, or newer prices arrived meanwhile
        self._preview_key = None
        self._update_split_preview()
        self._validate_form()
        self.data_shown.emit(loaded)
        if self._autotrain_pending:
            self._autotrain_pending = False
            QtCore.QTimer.singleShot(0, self.train)
        elif not self.headless:
            QtCore.QTimer.singleShot(WARM_UP_DELAY_MS, self.controller.warm_up)

    def _show_load_warnings(self, loaded: Any) -> None:
        """Say in the status bar what loading repaired or assumed (the Data panel lists it
        too): in the status text now, and as a lasting note while these prices are shown."""
        warnings = [str(w) for w in loaded.warnings]
        self.data_warning.setVisible(bool(warnings))
        if not warnings:
            self.data_warning.setText("")
            self.data_warning.setToolTip("")
            return
        several = len(warnings) > 1
        count = f"{len(warnings)} warning{'s' if several else ''}"
        self.data_warning.setText(f"\u26a0 {len(warnings)} data {count.split()[1]}")
        self.data_warning.setToolTip("\n".join(warnings))
        more = f"; {len(warnings) - 1} more in the Data box" if several else ""
        self.run_progress.set_status(f"Loaded {loaded.label} with {count}: {warnings[0]}{more}. "
                                     "Press Train (Ctrl+R) to fit the model.")

    @QtCore.Slot(object, object)
    def _on_load_failed(self, failure: Failure, spec: DataSpec) -> None:
        self._report("Could not load the data", failure)
        if self._fallback_to_default and spec != DataSpec():
            # the remembered source is gone (a moved file, say): fall back to the sample
            self._fallback_to_default = False
            self.log("falling back to the bundled sample")
            default = DataSpec()
            self.data_panel.set_spec(default)
            QtCore.QTimer.singleShot(0, lambda: self.load(default))

    # ============================================================== training ============
    @QtCore.Slot(object, object, int, int)
    def _on_run_started(self, worker: Any, _config: RunConfig, _seeds: int,
                        _jobs: int) -> None:
        self._show_token += 1  # a re-trade still being drawn stops here
        self._drawing = False
        self.replay_bar.set_run(None)
        self._leave_replay()
        self.chart.clear_predictions()
        self.tabs.setCurrentWidget(self.loss_plot)
        self.run_started.emit(worker)

    @QtCore.Slot(object)
    def _on_trained(self, result: Any) -> None:
        """A run or an ensemble is in: show it, and re-trade it if the strategy was edited
        while it trained."""
        self._show_in_metrics(result)
        try:
            if self.strategy_panel.strategy_config() != result.config.strategy:
                self._retrade_timer.start()
        except ConfigError:
            pass

    # ============================================================== showing a run =======
    def _show_result(self, result: Any) -> None:
        """Draw a run's overlays and fill the metrics table, then emit ``run_shown``.

        Done in turns of the event loop (chart steps, then the table) so that no single step
        keeps the UI thread busy for long; a newer result supersedes an older one. Each step
        waits for a 1 ms timer, so timers and input already due (and the repaint of the step
        before) come first; see :meth:`_on_prices_loaded`.
        """
        self._show_token += 1
        self._drawing = True
        token = self._show_token
        look = self.controller.shown_look()
        note = foreign_data(result)  # a saved model on data that is not its own
        # validation-first: the chart draws the model on the test split only once the user
        # has asked for the test results (and the look is counted), like the Metrics tab
        # a replay owns the chart while it is on it: the figures only
        chart = [] if self.chart.is_replay() else [
            *self.chart.show_run_steps(result, show_test=look is not None),
            lambda: self.chart.set_note(f"Predictions of {note}" if note else "")]
        steps = [*chart, lambda: self._show_folds(result, look),
                 lambda: self.metrics_view.show_run(result, look)]

        def step() -> None:
            if self._closing or token != self._show_token:
                return
            steps.pop(0)()
            if steps:
                QtCore.QTimer.singleShot(1, step)
            else:
                self._drawing = False
                self._update_actions()
                self.run_shown.emit(result)

        step()

    def _show_folds(self, result: Any, look: Any) -> None:
        """A walk-forward run's fold lines on the chart and its Folds tab (its out-of-sample
        figures once the look is counted); none for other runs."""
        if not is_walk_forward(result):
            if not self.chart.is_replay():
                self.chart.set_fold_lines([])
            if not self.fold_progress.is_active():
                self.folds_view.clear()
            return
        folds = result.folds
        step = max(1, -(-len(folds) // MAX_PREVIEW_LINES))  # every fold, or every step-th
        self.chart.set_fold_lines([pd.Timestamp(f["predict_start"]) for f in folds[::step]],
                                  [str(int(f["fold"]) + 1) for f in folds[::step]])
        if look is None:
            self.folds_view.clear(wording.WALK_FORWARD_COUNTING)
        else:
            seen = wording.look_text(look.count)
            self.folds_view.show_run(result, f"{len(folds)} folds, "
                                             f"{wording.walk_forward_text(result.config)}. "
                                             f"Out-of-sample rows: {seen}.")

    @QtCore.Slot(object, object)
    def _on_test_shown(self, result: Any, evidence: Any) -> None:
        if self._closing or result is not self.result:
            return
        walk = is_walk_forward(result)
        self.metrics_view.show_run(result, evidence)
        self._show_result(result)  # the chart draws the model on the test split too
        self.tabs.setCurrentWidget(self.folds_view if walk else self.metrics_view)
        self.log(wording.test_looked_log(result, evidence))
        self.run_progress.set_status(
            f"Showing the walk-forward out-of-sample predictions: "
            f"{wording.look_text(evidence.count)} (out of sample by construction; each "
            "showing is counted)." if walk else
            f"Showing the test split: {wording.look_text(evidence.count)}"
            ". Back to validation to keep tuning.")
        self._update_actions()
        self.test_shown.emit(result, evidence)

    @QtCore.Slot(object)
    def _on_test_concealed(self, result: Any) -> None:
        if not self._closing and result is self.result:
            self.metrics_view.show_run(result)
            self._show_result(result)  # the chart hides the model on the test split again
            self._update_actions()

    def _show_in_metrics(self, result: Any, _source: str = "") -> None:
        """Show a result that was not on screen yet, with the Metrics tab in front; a
        walk-forward run's out-of-sample rows once its look is counted. The Replay bar and
        the Memory tab take its model."""
        self._hand_over(result)
        if is_walk_forward(result):
            self._show_result(result)  # fold lines, the Folds tab waiting for the look
            self.controller.show_test()
            return
        self._show_result(result)
        self.tabs.setCurrentWidget(self.metrics_view)

    def _hand_over(self, result: Any) -> None:
        """The Replay bar and the Memory tab take a newly shown run's model. A walk-forward
        run's is its last fold's: the bar replays it from that fold's first predicted bar
        only; its reach is not measured (the fold has no validation split of its own)."""
        self._leave_replay()
        self.replay_bar.set_run(result)
        if not is_walk_forward(result):
            self.memory_view.show_run(result)

    def _leave_replay(self) -> None:
        """Back from a replay's chart to the loaded prices (the shown run is drawn again by
        whoever called)."""
        if self.prices is not None and self.chart.is_replay():
            self.chart.set_prices(self.prices.frame, title=self.prices.label)
            self._preview_key = None

    @QtCore.Slot()
    def _on_replay_ended(self) -> None:
        """A replay stopped: the chart shows the loaded prices and the shown run again."""
        if self._closing or not self.chart.is_replay() or self.is_training():
            return
        QtCore.QTimer.singleShot(0, self._redraw_after_replay)

    def _redraw_after_replay(self) -> None:
        if (self._closing or self.replay_bar.is_replaying() or self.prices is None
                or not self.chart.is_replay()):
            return
        self._leave_replay()
        if self.result is not None:
            self._show_result(self.result)
        else:
            self._update_split_preview()

    @QtCore.Slot(object)
    def _on_retraded(self, result: Any) -> None:
        """The shown run paper-traded again: a walk-forward run's new figures are another
        look at its out-of-sample rows (counted, then shown)."""
        self._leave_replay()
        self.replay_bar.set_run(result)  # the replay trades with the new strategy
        self._show_result(result)
        if is_walk_forward(result):
            self.controller.show_test()

    @QtCore.Slot(object, str)
    def _on_sweep_config_opened(self, result: Any, config_id: str) -> None:
        # its settings go to the side panel, so Train reproduces it
        self.side_panel.adopt(result.config, result.all_seeds)
        self._config = result.config
        self._show_in_metrics(result)

    def _save_sweep_form(self, *_sweep: Any) -> None:
        if self.persist:
            self.settings.set_sweep_form(self.sweep_view.saved_state())

    # ============================================================== strategy ============
    @QtCore.Slot()
    def _on_model_changed(self) -> None:
        self._validate_form()
        self._update_split_preview()

    @QtCore.Slot()
    def _on_split_changed(self) -> None:
        self._validate_form()
        self._update_split_preview()

    @QtCore.Slot()
    def _on_strategy_changed(self) -> None:
        self._validate_form()
        self._update_split_preview()  # a walk-forward preview's folds depend on the fill
        if self.result is not None and self._form_error is None and not self.is_training():
            self._retrade_timer.start()  # restarts: one re-trade once the edits pause

    def _retrade(self) -> None:
        if self._closing:
            return
        try:
            strategy = self.strategy_panel.strategy_config()
        except ConfigError:
            return
        self.controller.retrade(strategy)

    # ============================================================== form & state ========
    def _validate_form(self) -> None:
        self._form_error = self.side_panel.check(
            None if self.prices is None else self.prices.frame.index)
        self._update_actions()

    def _can_train(self) -> bool:
        return (not self._closing and self.prices is not None and self._form_error is None
                and not self.is_training() and not self.is_loading()
                and not self.is_sweeping() and not self.controller.is_auditing()
                and not self._torch_held())

    def _torch_held(self) -> bool:
        """The Replay bar's or the Memory tab's job holds the torch process."""
        return self.replay_bar.is_computing() or self.memory_view.is_busy()

    @QtCore.Slot()
    def _on_replay_busy(self) -> None:
        self.controller.set_external_job(
            "replay", REPLAY_HOLDS if self.replay_bar.is_computing() else None)
        self._update_actions()

    @QtCore.Slot(bool)
    def _on_memory_busy(self, busy: bool) -> None:
        self.controller.set_external_job("memory", MEMORY_HOLDS if busy else None)
        self._update_actions()

    def _update_actions(self) -> None:
        training, loading = self.is_training(), self.is_loading()
        sweeping, task = self.is_sweeping(), self.controller.is_running_task()
        result = self.result
        has_data, has_result = self.prices is not None, result is not None
        auditing = self.controller.is_auditing()
        self.act_train.setEnabled(self._can_train())
        held = (REPLAY_HOLDS if self.replay_bar.is_computing()
                else MEMORY_HOLDS if self.memory_view.is_busy() else "")
        self.act_train.setToolTip("Train the model on the loaded data"
                                  + (f" (not now: {held}; Stop ends it)" if held else ""))
        self.train_button.setToolTip(self.act_train.toolTip() + " (Ctrl+R)")
        self.act_stop.setEnabled(training or loading or sweeping or auditing
                                 or self.replay_bar.is_replaying() or self._torch_held())
        self.act_open_csv.setEnabled(not training and not loading and not sweeping)
        test_hidden = has_result and result.test_hidden
        self.act_export_predictions.setEnabled(has_result and not task and not test_hidden)
        self.act_export_predictions.setToolTip(
            wording.TEST_HIDDEN_TIP if test_hidden else wording.EXPORT_PREDICTIONS_TIP)
        self.act_save_model.setEnabled(has_result and not task and result.can_save)
        self.act_save_model.setToolTip(
            wording.NO_MODEL_TIP if has_result and not result.can_save
            else wording.SAVE_WALK_FORWARD_TIP if is_walk_forward(result)
            else wording.SAVE_MODEL_TIP)
        self.act_export_chart.setEnabled(has_data and not task and not self._grabs)
        self.act_load_model.setEnabled(has_data and not training and not task and not sweeping
                                       and not held)
        self.act_show_test.setEnabled(has_data)
        showing_test = self.controller.shown_look() is not None
        why = wording.why_no_test(has_result=has_result,
                                  test_hidden=has_result and result.test_hidden,
                                  has_test_rows=has_result and has_test_rows(result),
                                  training=training, task=task)
        self.act_show_test_results.setEnabled(not showing_test and not why)
        self.act_show_test_results.setToolTip(
            wording.SHOW_TEST_TIP + (f" (not now: {why})" if why else ""))
        walk = is_walk_forward(result)
        self.act_show_validation.setEnabled(showing_test and not walk)
        if walk:  # all its rows are out of sample: no validation split to go back to
            why = wording.WALK_FORWARD_NO_VALIDATION
        self.metrics_view.set_reveal(showing_test=showing_test,
                                     enabled=(showing_test or not why) and not walk,
                                     why_not=why)
        why = ("train a model first" if not has_result
               else AUDIT_NO_MODEL if not can_audit(result)
               else "training is running" if training
               else "a sweep is running" if sweeping
               else "data is loading" if loading
               else "the audit is running" if auditing
               else held if held
               else "wait for the export or other task to finish" if task else "")
        self.act_audit.setEnabled(not why)
        self.act_audit.setToolTip(AUDIT_TIP + (f" (not now: {why})" if why else ""))
        self.act_show_all.setEnabled(has_data)
        self.progress.setTextVisible(training)
        self.side_panel.set_state(can_train=self.act_train.isEnabled(),
                                  can_stop=self.act_stop.isEnabled(),
                                  locked=training or sweeping, loading=loading)
        why = held or wording.why_no_sweep(has_data=has_data, training=training, loading=loading,
                                           task=task, form_error=self._form_error,
                                           walk_forward=self.model_panel.evaluation
                                           .is_walk_forward())
        self.sweep_view.set_enabled_to_run(
            not why and not sweeping and self._form_error is None, why)

    def _split_series(self) -> pd.Series | None:
        if self.result is not None:
            return self.result.predictions[C.SPLIT]
        return self._preview

    def _update_split_preview(self) -> None:
        """Shade where the splits will fall before any training (they depend on the window)."""
        self._preview = None
        if self.prices is None or self.result is not None or self.is_training():
            return
        try:
            window = self.model_panel.model_config().window
            split = self.data_panel.split_spec()
            walk = self.model_panel.evaluation.walk_forward()
        except ConfigError:
            return
        if walk is not None:
            self._show_walk_forward_preview(window, walk)
            return
        if self._preview_key is not None and len(self._preview_key) == 3:
            self.chart.set_fold_lines([])  # the walk-forward preview's
        self._preview = split_preview(self.prices.frame.index, window, split)
        if self._preview is None:
            self._preview_key = None
            self.chart.set_splits(None)
        elif (window, split) != self._preview_key:
            self._preview_key = (window, split)
            self.chart.set_splits(self._preview)

    def _show_walk_forward_preview(self, window: int, walk: Any) -> None:
        """Shade where a walk-forward run will predict and draw its folds' lines, as the run
        will plan them (before any training)."""
        try:
            model = self.model_panel.model_config()
            fill = self.strategy_panel.strategy_config().fill
        except ConfigError:
            return
        key: Any = (window, walk, (model.target, fill))
        if key == self._preview_key:
            return
        self._preview, starts = walk_forward_preview(self.prices.frame.index, window, walk,
                                                     target=model.target, fill=fill)
        self._preview_key = key if self._preview is not None else None
        self.chart.set_splits(self._preview)
        self.chart.set_fold_lines(starts)

    def _report(self, title: str, failure: Failure) -> None:
        """Log a failure and show it as a dialog (unless headless)."""
        self.log(f"{title}: {failure.message}")
        if failure.details:
            self.log(failure.details.rstrip())
        self.failure_reported.emit(title, failure)
        if not self.headless and not self._closing:
            dialogs.show_error(self, title, failure)

    def _ask(self, ask: Callable[..., str | None], title: str, *args: Any) -> str | None:
        """Ask for a file or folder with ``ask`` (a ``dialogs.ask_*``: None when cancelled)
        in the last folder used; remember the folder of the answer."""
        path = ask(self, title, self.settings.last_folder() if self.persist else "", *args)
        if path and self.persist:
            p = Path(path)
            self.settings.set_last_folder(str(p if p.is_dir() else p.parent))
        return path

    def _on_dark_toggled(self, checked: bool) -> None:
        self._apply_dark(checked)
        if self.persist:
            self.settings.set_dark_chart(checked)

    def _apply_dark(self, dark: bool) -> None:
        self._dark = dark
        self.chart.set_dark(dark)
        self.loss_plot.plot_widget.setBackground("#131722" if dark else "w")
        self.metrics_view.set_dark(dark)
        self.folds_view.set_dark(dark)
        self.memory_view.set_dark(dark)

    def _on_about(self) -> None:
        dialogs.show_about(self)

    # ============================================================== closing =============
    def current_config(self) -> RunConfig:
        """The form's settings as a RunConfig (the last valid ones when the form is invalid)."""
        try:
            return self.side_panel.run_config(self.controller.loaded_spec or self._config.data)
        except ConfigError:
            return self._config

    def _walk_forward_fields(self) -> Any:
        """The form's walk-forward fields (kept while a single split is chosen), or None
        when they are not valid."""
        try:
            return self.model_panel.evaluation.spec()
        except ConfigError:
            return None

    def running_job(self) -> str | None:
        """What closing the window would discard: ``"training"`` (a single run or a seed
        ensemble), ``"sweep"``, or None."""
        if self.is_training():
            return "training"
        return "sweep" if self.is_sweeping() else None

    def ask_discard_run(self, job: str) -> tuple[bool, bool]:
        """Ask whether closing may discard the running ``job`` (see :meth:`running_job`).

        Returns ``(discard, dont_ask_again)``. Without a screen to show the question on
        (Qt's offscreen platform, a hidden window) the run is discarded without asking.
        """
        if not _can_ask(self):
            return True, False
        box, discard = discard_question(self, job)
        box.exec()
        answer = box.clickedButton() is discard, box.checkBox().isChecked()
        box.deleteLater()
        return answer

    def _may_close(self) -> bool:
        """Whether closing may go on: a running training or sweep is discarded only once the
        user said so (never asked when headless, when nothing runs or when the user turned
        the question off)."""
        job = self.running_job()
        if self._asking:
            return False  # the question is open already
        if job is None or self.headless or not self._ask_discard:
            return True
        self._asking = True
        try:
            discard, dont_ask = self.ask_discard_run(job)
        finally:
            self._asking = False
        if discard and dont_ask:
            self._set_ask_discard(False)
        return discard

    def _set_ask_discard(self, ask: bool) -> None:
        self._ask_discard = bool(ask)
        self.act_ask_discard.setChecked(self._ask_discard)
        if self.persist:
            self.settings.set_ask_before_discarding_run(self._ask_discard)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if not self._closing and not self._may_close():
            event.ignore()
            self.close_refused.emit()
            return
        if not self._closing:
            self._closing = True
            self._retrade_timer.stop()
            self._save_sweep_form()
            if self.persist:
                self.settings.save_config(self.current_config(), self._walk_forward_fields())
                self.settings.set_seeds(self.model_panel.seeds())
                self.settings.save_window(self.saveGeometry(), self.saveState(),
                                          self.splitter.saveState())
                self.settings.sync()
            if self.controller.is_busy():
                self.hide()  # feels closed at once; training stops within one batch
            self.replay_bar.shutdown()
            self.memory_view.shutdown()
            self.controller.shutdown()
        event.accept()


def _sideways_scroll(widget: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """``widget`` (a row of controls) in a frameless area as tall as it is, that scrolls
    sideways when the window is narrower than the row (it never widens the window)."""
    area = QtWidgets.QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    area.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    bar = area.horizontalScrollBar().sizeHint().height()
    area.setMinimumHeight(widget.sizeHint().height())
    area.setMaximumHeight(widget.sizeHint().height() + bar)
    area.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                       QtWidgets.QSizePolicy.Policy.Fixed)
    return area


def _can_ask(window: QtWidgets.QWidget) -> bool:
    """A question can be shown and answered: the window is on a real screen."""
    return window.isVisible() and QtGui.QGuiApplication.platformName() != "offscreen"


def discard_question(parent: QtWidgets.QWidget, job: str
                     ) -> tuple[QtWidgets.QMessageBox, QtWidgets.QAbstractButton]:
    """The question asked on closing while ``job`` (``"training"`` or ``"sweep"``) runs, and
    its Discard button; the other keeps the run. Its "Don't ask again" is remembered when
    the answer is Discard."""
    sweep = job == "sweep"
    box = QtWidgets.QMessageBox(parent)
    box.setIcon(QtWidgets.QMessageBox.Icon.Question)
    box.setWindowTitle(dialogs.APP_TITLE)
    box.setText("A sweep is still running." if sweep else "Training is still running.")
    box.setInformativeText("Closing the window stops it and discards its results.")
    discard = box.addButton("Discard", QtWidgets.QMessageBox.ButtonRole.DestructiveRole)
    keep = box.addButton("Keep the sweep" if sweep else "Keep training",
                         QtWidgets.QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    dont_ask = QtWidgets.QCheckBox("Don't ask again", box)  # owned by the box
    dont_ask.setToolTip("Close without asking from now on (File > Ask before discarding a run "
                        "turns the question back on)")
    box.setCheckBox(dont_ask)
    return box, discard
