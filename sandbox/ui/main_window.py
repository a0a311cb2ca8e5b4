"""The main window: side panel (Data, Model, Strategy), chart, Loss / Metrics / Log / Sweep tabs.

The window holds the widgets, actions and menus and turns what happens into view updates
(``_on_<event>``). The run lifecycle (loading, training, sweeps, exports, model bundles and
re-trading, each on a worker thread) lives in :class:`~sandbox.ui.controller.RunController`:
the window asks it to start a job and draws what its signals report.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pandas as pd
from PySide6 import QtCore, QtGui, QtWidgets

from sandbox import constants as C
from sandbox.config import DataSpec, RunConfig
from sandbox.errors import ConfigError
from sandbox.evaluate import KEY_BASELINES
from sandbox.events import format_hms
from sandbox.runs import usable_cores
from sandbox.ui import dialogs
from sandbox.ui.charts import LossPlot, PriceChart
from sandbox.ui.controller import CANCELLED, RunController
from sandbox.ui.dialogs import Failure
from sandbox.ui.metrics_view import MetricsView, format_number, format_percent, strategy_text
from sandbox.ui.options import GuiOptions
from sandbox.ui.panels import SidePanel, csv_filters
from sandbox.ui.screenshot import png_bytes, svg_bytes
from sandbox.ui.settings import Settings, resolve_config
from sandbox.ui.sweep_view import SweepView, summary_lines
from sandbox.ui.workers import PendingLoad

__all__ = ["MainWindow"]

Signal = QtCore.Signal

DEFAULT_SIZE = (1400, 900)
RETRADE_DELAY_MS = 120  # strategy edits are re-traded once the user pauses this long
WARM_UP_DELAY_MS = 400  # the torch process starts this long after the data shows
PROGRESS_STEPS = 1000


def _settings_text(config: RunConfig) -> str:
    """The model and training settings of a run, for the log."""
    model, train = config.model, config.train
    return (f"{model.kind} window={model.window} hidden={model.hidden} layers={model.layers} "
            f"dropout={model.dropout:g} epochs={train.epochs} patience={train.patience} "
            f"batch={train.batch_size} lr={train.lr:g}")


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
        A run's overlays and metrics are drawn (after training, re-trading or Load model).
    run_ended(str)
        Training ended: ``"finished"``, ``"failed"`` or ``"cancelled"``.
    sweep_ended(str)
        A sweep (Sweep tab) ended: ``"finished"``, ``"failed"`` or ``"cancelled"``.
    task_ended(str, bool)
        A background task (export, save, load model, re-trade) ended; kind and success.
    failure_reported(str, Failure)
        Something failed (also shown as a dialog unless headless).
    """

    data_shown = Signal(object)
    run_started = Signal(object)
    run_shown = Signal(object)
    run_ended = Signal(str)
    sweep_ended = Signal(str)
    task_ended = Signal(str, bool)
    failure_reported = Signal(str, object)

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
        self._autotrain_pending = self.options.autotrain
        self._fallback_to_default = persist and not self.options.explicit_source
        self._train_started = 0.0
        self._run_seeds = 1
        self._members_done = 0
        self._sweep_started = 0.0
        self._last_epoch: dict[str, float] | None = None
        self._preview_window: int | None = None
        self._preview: pd.Series | None = None
        self._show_token = 0  # bumps with every result drawn; stale drawing steps stop
        self._drawing = False

        self._build_ui()
        self._build_actions()
        self._build_menus()
        self.data_panel.set_spec(config.data)
        self.model_panel.set_configs(config.model, config.train)
        seeds = self.options.seeds
        if seeds is None:
            seeds = self.settings.seeds() if persist else 1
        self.model_panel.set_seeds(seeds)
        self.strategy_panel.set_config(config.strategy)
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
        self.dock = QtWidgets.QDockWidget("Settings", self)
        self.dock.setObjectName("settings_dock")
        self.dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
                              | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.dock.setAllowedAreas(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
                                  | QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        self.dock.setWidget(self.side_panel)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)

        self.chart = PriceChart(dark=self._dark)
        self.loss_plot = LossPlot()
        # The grid costs ~9 ms per repaint (of ~12): too much for a plot redrawn many times
        # a second while training runs.
        self.loss_plot.plot.showGrid(x=False, y=False)
        self.metrics_view = MetricsView()
        self.log_view = QtWidgets.QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setFont(QtGui.QFontDatabase.systemFont(
            QtGui.QFontDatabase.SystemFont.FixedFont))
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.loss_plot, "Loss")
        self.tabs.addTab(self.metrics_view, "Metrics")
        self.tabs.addTab(self.log_view, "Log")
        self.sweep_view = SweepView()
        self.sweep_view.set_jobs(usable_cores())
        self.tabs.addTab(self.sweep_view, "Sweep")
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.splitter.setObjectName("chart_splitter")
        self.splitter.addWidget(self.chart)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([620, 260])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)
        self._apply_dark(self._dark)

        self.status_text = QtWidgets.QLabel()
        self.status_text.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        # a long message is cut at the window's edge; it never widens the window
        self.status_text.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                       QtWidgets.QSizePolicy.Policy.Preferred)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(0)
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(True)
        self.source_label = QtWidgets.QLabel()
        self.source_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        status = self.statusBar()
        status.addWidget(self.status_text, 1)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.source_label)

        self._retrade_timer = QtCore.QTimer(self)
        self._retrade_timer.setSingleShot(True)
        self._retrade_timer.setInterval(RETRADE_DELAY_MS)
        self._retrade_timer.timeout.connect(self._retrade)

    def _action(self, text: str, slot: Any, *, shortcut: Any = None, tip: str = "",
                checkable: bool = False) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QtGui.QKeySequence(shortcut))
            action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work while the menu bar is hidden too
        return action

    def _build_actions(self) -> None:
        self.act_open_csv = self._action("&Open CSV...", self.open_csv, shortcut="Ctrl+O",
                                         tip="Load prices from a CSV file")
        self.act_export_predictions = self._action(
            "&Export predictions...", self.export_predictions, shortcut="Ctrl+E",
            tip="Write the predictions table as CSV or Parquet")
        self.act_export_chart = self._action("Export &chart...", self.export_chart,
                                             shortcut="Ctrl+Shift+E",
                                             tip="Save the chart as a PNG or SVG image")
        self.act_save_model = self._action("&Save model...", self.save_model, shortcut="Ctrl+S",
                                           tip="Save the trained model (weights and settings)")
        self.act_load_model = self._action("&Load model...", self.load_model,
                                           shortcut="Ctrl+L",
                                           tip="Predict on the loaded data with a saved model, "
                                               "without training")
        self.act_quit = self._action("&Quit", self.close, shortcut="Ctrl+Q", tip="Quit the app")
        self.act_train = self._action("&Train", self.train, shortcut="Ctrl+R",
                                      tip="Train the model on the loaded data")
        self.act_stop = self._action("&Stop", self.stop, shortcut=QtCore.Qt.Key.Key_Escape,
                                     tip="Stop training or loading")
        self.act_dark = self._action("&Dark chart", self._on_dark_toggled, checkable=True,
                                     tip="Dark or light chart background")
        self.act_dark.setChecked(self._dark)
        self.act_show_all = self._action("Show &all bars", self.show_all, shortcut="Ctrl+0",
                                         tip="Zoom out to every bar")
        self.act_show_test = self._action("Show the &test split", self.show_test_split,
                                          shortcut="Ctrl+T", tip="Zoom to the test split")
        self.act_about = self._action("&About", self._on_about,
                                      tip="Versions of the app and its libraries")
        self.act_tabs = []
        for i in range(self.tabs.count()):
            action = self._action(f"{self.tabs.tabText(i)} tab",
                                  lambda _=False, i=i: self.tabs.setCurrentIndex(i),
                                  shortcut=f"Ctrl+{i + 1}")
            self.act_tabs.append(action)
        self.train_button.clicked.connect(self.act_train.trigger)
        self.stop_button.clicked.connect(self.act_stop.trigger)

    def _build_menus(self) -> None:
        toggle = self.dock.toggleViewAction()
        toggle.setText("Settings &panel")
        toggle.setShortcut(QtGui.QKeySequence("Ctrl+B"))
        menus = {  # None: a separator
            "&File": [self.act_open_csv, None, self.act_export_predictions, self.act_export_chart,
                      None, self.act_save_model, self.act_load_model, None, self.act_quit],
            "&Run": [self.act_train, self.act_stop],
            "&View": [toggle, self.act_dark, None, self.act_show_all, self.act_show_test, None,
                      *self.act_tabs],
            "&Help": [self.act_about],
        }
        for title, actions in menus.items():
            menu = self.menuBar().addMenu(title)
            for action in actions:
                if action is None:
                    menu.addSeparator()
                else:
                    menu.addAction(action)

    def _connect_panels(self) -> None:
        self.data_panel.load_requested.connect(self.load)
        self.data_panel.open_csv_requested.connect(self.open_csv)
        self.model_panel.changed.connect(self._on_model_changed)
        self.strategy_panel.changed.connect(self._on_strategy_changed)
        self.sweep_view.run_requested.connect(self.run_sweep)
        self.sweep_view.stop_requested.connect(self.stop)
        self.sweep_view.open_requested.connect(self.open_sweep_config)
        self.sweep_view.export_requested.connect(self.export_sweep)

    def _connect_controller(self) -> None:
        c = self.controller
        c.load_started.connect(self._on_load_started)
        c.prices_loaded.connect(self._on_prices_loaded)
        c.load_failed.connect(self._on_load_failed)
        c.load_ended.connect(self._on_load_ended)
        c.run_started.connect(self._on_run_started)
        c.stage_started.connect(self._on_stage_started)
        c.batch_done.connect(self._on_batch_done)
        c.epoch_done.connect(self._on_epoch_done)
        c.member_done.connect(self._on_member_done)
        c.result_ready.connect(self._on_result_ready)
        c.ensemble_ready.connect(self._on_ensemble_ready)
        c.run_failed.connect(self._on_run_failed)
        c.run_ended.connect(self._on_run_ended)
        c.sweep_started.connect(self._on_sweep_started)
        c.sweep_run_done.connect(self._on_sweep_run_done)
        c.sweep_done.connect(self._on_sweep_done)
        c.sweep_failed.connect(self._on_sweep_failed)
        c.sweep_ended.connect(self._on_sweep_ended)
        c.retraded.connect(self._on_retraded)
        c.model_loaded.connect(self._on_model_loaded)
        c.sweep_config_opened.connect(self._on_sweep_config_opened)
        c.written.connect(self._on_written)
        c.result_dropped.connect(self.log)
        c.task_failed.connect(self._on_task_failed)
        c.task_refused.connect(self._set_status)
        c.task_ended.connect(self.task_ended)
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
        """No load, training, sweep or task running and no result half drawn."""
        return self.controller.is_idle() and not self._drawing

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
        config = RunConfig(data=self.controller.loaded_spec, split=self._config.split,
                           model=self.model_panel.model_config(),
                           train=self.model_panel.train_config(),
                           strategy=self.strategy_panel.strategy_config())
        self._config = config
        self.controller.train(config, self.model_panel.seeds())

    def stop(self) -> None:
        """Stop training, loading or the sweep (training answers within one batch)."""
        if self.controller.stop():
            self._set_status("Stopping...")

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

    def open_csv(self) -> None:
        """File > Open CSV...: choose a file and load it."""
        if self.is_training() or self.is_loading() or self.is_sweeping():
            return
        path = dialogs.ask_open_path(self, "Open a price CSV", self._folder(), csv_filters())
        if not path:
            return
        self._remember_folder(path)
        self.data_panel.set_csv_path(path)
        try:
            spec = self.data_panel.spec()
        except ConfigError as exc:
            self._report("Could not load the data", dialogs.failure_from(exc))
            return
        self.load(spec)

    def export_predictions(self) -> None:
        """File > Export predictions...: CSV or Parquet."""
        if self.result is None:
            return
        path = self._ask_export_path("Export predictions", f"{self.result.data.label}_predictions",
                                     {"CSV": ".csv", "Parquet": ".parquet"})
        if path is not None:
            self.export_predictions_to(path)

    def export_predictions_to(self, path: str) -> None:
        """Write the predictions table to ``path`` (.csv or .parquet) on a worker thread."""
        self.controller.export_predictions_to(path)

    def export_chart(self) -> None:
        """File > Export chart...: PNG or SVG."""
        if self.prices is None:
            return
        path = self._ask_export_path("Export chart", f"{self.prices.label}_chart",
                                     {"PNG image": ".png", "SVG image": ".svg"})
        if path is not None:
            self.export_chart_to(path)

    def export_chart_to(self, path: str) -> None:
        """Render the chart (UI thread) and write it to ``path`` (worker thread; a PNG is
        encoded there too)."""
        svg = Path(path).suffix.lower() == ".svg"
        self.controller.export_chart(path, svg_bytes(self.chart, dialogs.APP_TITLE) if svg
                                     else self.chart.grab().toImage())

    def save_model(self) -> None:
        """File > Save model...: the trained model's bundle into a folder."""
        if self.result is None:
            return
        folder = dialogs.ask_directory(self, "Save the model into a folder", self._folder())
        if folder:
            self._remember_folder(folder)
            self.save_model_to(folder)

    def save_model_to(self, folder: str) -> None:
        self.controller.save_model_to(folder)

    def load_model(self) -> None:
        """File > Load model...: predict the loaded data with a saved model, no training."""
        if self.prices is None:
            return
        folder = dialogs.ask_directory(self, "Load a saved model (its folder)", self._folder())
        if folder:
            self._remember_folder(folder)
            self.load_model_from(folder)

    def load_model_from(self, folder: str) -> None:
        if self.prices is None or self.is_training():
            return
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
        if self.controller.sweep_result is None:
            return
        folder = dialogs.ask_directory(self, "Export the sweep's results into a folder",
                                       self._folder())
        if folder:
            self._remember_folder(folder)
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
        self.log_view.appendPlainText(f"{time.strftime('%H:%M:%S')}  {message}")

    # ============================================================== loading =============
    @QtCore.Slot(object)
    def _on_load_started(self, spec: DataSpec) -> None:
        self.data_panel.set_busy(True)
        what = "downloading" if spec.kind == C.SOURCE_YAHOO else "loading"
        self.data_panel.set_note(f"{what} {spec.label}...")
        self._set_status(f"{what.capitalize()} {spec.label}...")
        if not self.is_training():
            self.progress.setRange(0, 0)

    @QtCore.Slot(object)
    def _on_prices_loaded(self, loaded: Any) -> None:
        self._fallback_to_default = False
        frame = loaded.frame
        self.chart.set_prices(frame, title=loaded.label)
        self._preview_window = None
        self._update_split_preview()
        self.loss_plot.reset()
        self.metrics_view.clear()
        self.sweep_view.clear()  # a sweep's runs belong to the data they were trained on
        first, last = frame.index[0], frame.index[-1]
        text = f"{loaded.label}: {len(frame):,} bars, {first:%Y-%m-%d} .. {last:%Y-%m-%d}"
        source = f"{loaded.label} \u00b7 {len(frame):,} bars"
        if loaded.from_cache:
            when = str(loaded.cached_at or "an earlier download")[:16].replace("T", " ")
            text += f"\ncached data from {when} (the download failed)"
            source += f" \u00b7 cached data from {when}"
        self.data_panel.set_note(text)
        self.source_label.setText(source)
        self.setWindowTitle(f"{loaded.label} - {dialogs.APP_TITLE}")
        self.log(text.replace("\n", "; "))
        for warning in loaded.warnings:
            self.log(f"warning: {warning}")
        self._set_status(f"Loaded {loaded.label}. Press Train (Ctrl+R) to fit the model.")
        if self.persist and self.controller.loaded_spec is not None:
            self.settings.save_data(self.controller.loaded_spec)
        self._validate_form()
        self.data_shown.emit(loaded)
        if self._autotrain_pending:
            self._autotrain_pending = False
            QtCore.QTimer.singleShot(0, self.train)
        elif not self.headless:
            QtCore.QTimer.singleShot(WARM_UP_DELAY_MS, self.controller.warm_up)

    @QtCore.Slot(object, object)
    def _on_load_failed(self, failure: Failure, spec: DataSpec) -> None:
        self.data_panel.set_note(failure.message)
        self._set_status("Loading failed.")
        self._report("Could not load the data", failure)
        if self._fallback_to_default and spec != DataSpec():
            # the remembered source is gone (a moved file, say): fall back to the sample
            self._fallback_to_default = False
            self.log("falling back to the bundled sample")
            default = DataSpec()
            self.data_panel.set_spec(default)
            QtCore.QTimer.singleShot(0, lambda: self.load(default))

    @QtCore.Slot(str)
    def _on_load_ended(self, how: str) -> None:
        if how == CANCELLED:
            self.data_panel.set_note("loading stopped")
            self._set_status("Loading stopped.")
            self.log("loading stopped")
        self.data_panel.set_busy(False)
        if not self.is_training():
            self.progress.setRange(0, PROGRESS_STEPS)

    # ============================================================== training ============
    @QtCore.Slot(object, object, int, int)
    def _on_run_started(self, worker: Any, config: RunConfig, seeds: int, jobs: int) -> None:
        self._show_token += 1  # a re-trade still being drawn stops here
        self._drawing = False
        self._last_epoch = None
        self._run_seeds, self._members_done = seeds, 0
        self._train_started = time.monotonic()
        self.chart.clear_predictions()
        self.loss_plot.reset()
        self.metrics_view.clear("Training...")
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(0)
        self.tabs.setCurrentWidget(self.loss_plot)
        model, train = config.model, config.train
        if seeds > 1:
            self.progress.setRange(0, 0)  # busy until the first member is back
            last = train.seed + seeds - 1
            self._set_status(f"Training {seeds} {model.kind.upper()} models (seeds "
                             f"{train.seed}..{last}) in {jobs} worker process(es); each shows "
                             "up as it finishes...")
            self.log(f"training a {seeds}-seed ensemble: {_settings_text(config)} "
                     f"seeds={train.seed}..{last} in {jobs} process(es), 1 torch thread each, "
                     f"on {self.prices.label}")
        else:
            self._set_status(f"Training {model.kind.upper()} (window {model.window}, hidden "
                             f"{model.hidden}, {model.layers} layer(s)) for up to "
                             f"{train.epochs} epochs...")
            self.log(f"training {_settings_text(config)} seed={train.seed} on "
                     f"{self.prices.label}")
        self.run_started.emit(worker)

    @QtCore.Slot(str, str)
    def _on_stage_started(self, _stage: str, message: str) -> None:
        self.log(message)
        if self._last_epoch is None:
            self._set_status(message[:1].upper() + message[1:] + "...")

    @QtCore.Slot(float, float, float, int)
    def _on_batch_done(self, position: float, loss: float, samples_per_s: float,
                       epochs: int) -> None:
        self.loss_plot.add_batch(position, loss)
        self.progress.setValue(round(PROGRESS_STEPS * min(1.0, position / max(epochs, 1))))
        elapsed = time.monotonic() - self._train_started
        eta = elapsed / position * (epochs - position) if position > 0 else float("nan")
        text = f"epoch {math.ceil(position)}/{epochs}  batch loss {loss:.4g}"
        if self._last_epoch is not None:
            text += (f"  train {self._last_epoch['train_loss']:.4g}"
                     f"  val {self._last_epoch['val_loss']:.4g}")
        self._set_status(f"{text}  {samples_per_s:,.0f} samples/s  ETA {format_hms(eta)}")

    @QtCore.Slot(dict)
    def _on_epoch_done(self, info: dict) -> None:
        self._last_epoch = info
        epoch, epochs = int(info["epoch"]), int(info["epochs"])
        self.loss_plot.add_epoch(epoch, info["train_loss"], info["val_loss"])
        self.progress.setValue(round(PROGRESS_STEPS * epoch / max(epochs, 1)))
        self._set_status(f"epoch {epoch}/{epochs}  train {info['train_loss']:.4g}  "
                         f"val {info['val_loss']:.4g}  {info['samples_per_s']:,.0f} samples/s  "
                         f"ETA {format_hms(info['eta_s'])}")
        best = " (best)" if info["val_loss"] <= info["best_val_loss"] else ""
        self.log(f"epoch {epoch}/{epochs}: train {info['train_loss']:.5g}, "
                 f"val {info['val_loss']:.5g}{best}, {info['samples_per_s']:,.0f} samples/s")

    @QtCore.Slot(object)
    def _on_result_ready(self, result: Any) -> None:
        self.loss_plot.flush()
        hist = result.history
        seconds = time.monotonic() - self._train_started
        stopped = " (early stop)" if hist.stopped_early else ""
        self.log(f"trained {hist.epochs_run} epoch(s){stopped} in {seconds:.1f} s; best "
                 f"validation loss {hist.best_val_loss:.5g} at epoch {hist.best_epoch}")
        self._show_result(result)
        self.tabs.setCurrentWidget(self.metrics_view)
        model = result.metrics.get(C.MODEL, {})
        rw = result.metrics.get(KEY_BASELINES, {}).get(C.RANDOM_WALK, {})
        self._set_status(
            f"Trained in {format_hms(seconds)}: test RMSE {format_number(model.get(C.RMSE), 6)} vs "
            f"random walk {format_number(rw.get(C.RMSE), 6)}; total return "
            f"{format_percent(model.get(C.TOTAL_RETURN))} after costs.")
        self._after_training(result)

    @QtCore.Slot(object)
    def _on_member_done(self, record: Any) -> None:
        """One seed of an ensemble finished (or failed); its curves join the Loss tab."""
        self._members_done = int(record.done)
        eta = self._count_run_done(record, self._train_started)
        if record.error:
            self.log(f"seed {record.seed} failed: {record.error}")
        else:
            self.loss_plot.add_member(list(record.train_losses), list(record.val_losses))
            self.log(f"seed {record.seed} trained in {record.seconds:.1f} s: best validation "
                     f"loss {format_number(record.val_loss)} at epoch {record.best_epoch}; "
                     f"test RMSE {format_number(record.test_metrics.get(C.RMSE), 6)}")
        self._set_status(f"{record.done}/{record.total} seeds trained  ETA {format_hms(eta)}")

    def _count_run_done(self, record: Any, started: float) -> float:
        """Move the progress bar to ``record.done / record.total``; return the ETA (s)."""
        total = max(int(record.total), 1)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, PROGRESS_STEPS)  # busy until the first run is back
        self.progress.setValue(round(PROGRESS_STEPS * record.done / total))
        elapsed = time.monotonic() - started
        return elapsed / max(record.done, 1) * (total - record.done)

    @QtCore.Slot(object)
    def _on_ensemble_ready(self, result: Any) -> None:
        seconds = time.monotonic() - self._train_started
        failed = "".join(f"; seed {s} failed: {e}" for s, e in sorted(result.failed.items()))
        self.log(f"trained a {result.n_seeds}-seed ensemble in {seconds:.1f} s{failed}")
        self._show_result(result)
        self.tabs.setCurrentWidget(self.metrics_view)
        stats = result.stats[C.TEST]
        rmse, total = stats[C.RMSE], stats[C.TOTAL_RETURN]
        rw = result.metrics.get(KEY_BASELINES, {}).get(C.RANDOM_WALK, {})
        self._set_status(
            f"Trained {result.n_seeds} seeds in {format_hms(seconds)}: test RMSE "
            f"{format_number(rmse['mean'], 6)} \u00b1 {format_number(rmse['std'], 6)} vs "
            f"random walk {format_number(rw.get(C.RMSE), 6)}; total return "
            f"{format_percent(total['mean'])} \u00b1 {format_percent(total['std']).lstrip('+')} "
            "after costs"
            + (f"; {len(result.failed)} seed(s) failed (see the Log)." if result.failed
               else "."))
        self._after_training(result)

    def _after_training(self, result: Any) -> None:
        """A run is in: a full progress bar, and a re-trade if the strategy was edited while
        it trained."""
        self.progress.setValue(PROGRESS_STEPS)
        try:
            if self.strategy_panel.strategy_config() != result.config.strategy:
                self._retrade_timer.start()
        except ConfigError:
            pass

    @QtCore.Slot(object)
    def _on_run_failed(self, failure: Failure) -> None:
        self._set_status("Training failed.")
        self.progress.setValue(0)
        self.metrics_view.clear()
        self._report("Training failed", failure)

    @QtCore.Slot(str)
    def _on_run_ended(self, how: str) -> None:
        if how == CANCELLED:
            if self._run_seeds > 1:
                after = f" after {self._members_done} seed(s)"
            else:
                after = (f" after epoch {int(self._last_epoch['epoch'])}" if self._last_epoch
                         else "")
            self._set_status(f"Training stopped{after}. Nothing was kept.")
            self.log(f"training stopped{after}")
            self.metrics_view.clear("Training was stopped; press Train to start again.")
            self.progress.setValue(0)
        self.progress.setRange(0, PROGRESS_STEPS)  # an ensemble stopped early was "busy"
        self.run_ended.emit(how)

    # ============================================================== showing a run =======
    def _show_result(self, result: Any) -> None:
        """Draw a run's overlays and fill the metrics table, then emit ``run_shown``.

        Done in turns of the event loop (chart steps, then the table) so that no single step
        keeps the UI thread busy for long; a newer result supersedes an older one.
        """
        self._show_token += 1
        self._drawing = True
        token = self._show_token
        steps = [*self.chart.show_run_steps(result), lambda: self.metrics_view.show_run(result)]

        def step() -> None:
            if self._closing or token != self._show_token:
                return
            steps.pop(0)()
            if steps:
                QtCore.QTimer.singleShot(0, step)
            else:
                self._drawing = False
                self._update_actions()
                self.run_shown.emit(result)

        step()

    # ============================================================== tasks ===============
    @QtCore.Slot(object)
    def _on_retraded(self, result: Any) -> None:
        self._show_result(result)
        model = result.metrics.get(C.MODEL, {})
        strategy = strategy_text(result.config.strategy)
        self.log(f"re-traded ({strategy}): total return "
                 f"{format_percent(model.get(C.TOTAL_RETURN))}, sharpe "
                 f"{format_number(model.get(C.SHARPE))}")
        self._set_status(f"Paper trading updated: {strategy}; model total return "
                         f"{format_percent(model.get(C.TOTAL_RETURN))}.")

    @QtCore.Slot(object, str)
    def _on_model_loaded(self, result: Any, folder: str) -> None:
        self.loss_plot.reset()
        self._show_result(result)
        self.tabs.setCurrentWidget(self.metrics_view)
        self.log(f"predicted {result.data.label} with the model saved in {folder} (no "
                 "training); rows are labelled with the model's own split rule, so on data it "
                 "never saw every row is out of sample")
        self._set_status(f"Predictions from the saved {result.config.model.kind.upper()} "
                         f"model in {folder}.")

    @QtCore.Slot(object, str)
    def _on_sweep_config_opened(self, result: Any, config_id: str) -> None:
        self._adopt_config(result)
        self.loss_plot.reset()
        for seed in result.seeds:
            history = result.histories.get(seed, {})
            self.loss_plot.add_member(history.get("train_loss", []), history.get("val_loss", []))
        self._show_result(result)
        self.tabs.setCurrentWidget(self.metrics_view)
        self.log(f"opened sweep configuration {config_id} (seeds "
                 f"{', '.join(map(str, result.seeds))}); the side panel now holds its settings")
        hidden = ("; validation only: its test split stays hidden because another "
                  "configuration was selected" if result.test_hidden else "")
        self._set_status(f"Showing sweep configuration {config_id}: {result.n_seeds} seed(s) "
                         f"averaged{hidden}.")

    @QtCore.Slot(str)
    def _on_written(self, paths: str) -> None:
        self.log(f"wrote {paths}")
        self._set_status(f"Wrote {paths}")

    @QtCore.Slot(str, object)
    def _on_task_failed(self, title: str, failure: Failure) -> None:
        self._set_status(f"{title}.")
        self._report(title, failure)

    # ============================================================== sweep ===============
    @QtCore.Slot(int, object, int, int)
    def _on_sweep_started(self, n_runs: int, grid: dict, seeds: int, jobs: int) -> None:
        from sandbox import sweep

        self._sweep_started = time.monotonic()
        self.sweep_view.start(seeds)
        self.sweep_view.set_running(True)
        self.progress.setRange(0, 0)
        text = sweep.format_params({k: ",".join(map(str, v)) for k, v in grid.items()})
        self._set_status(f"Sweep: {n_runs} runs ({text}, {seeds} seed(s)) in {jobs} "
                         "process(es)...")
        self.log(f"sweep started: {n_runs} runs, grid {text}, {seeds} seed(s) per "
                 f"configuration, {jobs} process(es), on {self.prices.label}")
        if self.persist:
            self.settings.set_sweep_form(self.sweep_view.saved_state())

    @QtCore.Slot(object)
    def _on_sweep_run_done(self, record: Any) -> None:
        self.sweep_view.add_record(record)
        eta = self._count_run_done(record, self._sweep_started)
        outcome = f"failed: {record.error}" if record.error else (
            f"val loss {format_number(record.val_loss)}, val sharpe "
            f"{format_number(record.val_metrics.get(C.SHARPE))}")
        self.log(f"sweep run {record.done}/{record.total} {record.config_id} {record.label}: "
                 f"{outcome} ({record.seconds:.1f} s)")
        self._set_status(f"Sweep: {record.done}/{record.total} runs  ETA {format_hms(eta)}")

    @QtCore.Slot(object)
    def _on_sweep_done(self, result: Any) -> None:
        self.sweep_view.set_result(result.summary)
        for line in summary_lines(result.summary):
            self.log(f"sweep: {line}")
        self.progress.setValue(PROGRESS_STEPS)
        selected = (result.summary.get("selected") or {}).get("config_id")
        self._set_status(f"Sweep finished in {format_hms(time.monotonic() - self._sweep_started)}"
                         + (f"; {selected} selected on validation. Open it to see it on the "
                            "chart." if selected else "; no run finished."))

    @QtCore.Slot(object)
    def _on_sweep_failed(self, failure: Failure) -> None:
        self.progress.setValue(0)
        self._set_status("The sweep failed.")
        self.sweep_view.clear(f"The sweep failed: {failure.message}")
        self._report("The sweep failed", failure)

    @QtCore.Slot(str)
    def _on_sweep_ended(self, how: str) -> None:
        if how == CANCELLED:
            self.progress.setValue(0)
            self._set_status("Sweep stopped. Nothing was kept.")
            self.log("sweep stopped")
            self.sweep_view.clear("The sweep was stopped; its runs were dropped.")
        self.sweep_view.set_running(False)
        self.progress.setRange(0, PROGRESS_STEPS)
        self.sweep_ended.emit(how)

    # ============================================================== strategy ============
    @QtCore.Slot()
    def _on_model_changed(self) -> None:
        self._validate_form()
        self._update_split_preview()

    def _adopt_config(self, result: Any) -> None:
        """Put a shown run's settings in the side panel, so Train reproduces it."""
        config = result.config
        try:  # sweep runs use one torch thread each; Train keeps the user's thread count
            threads = self.model_panel.train_config().threads
        except ConfigError:
            threads = None
        self.model_panel.set_configs(config.model, config.train.replace(threads=threads))
        self.model_panel.seed_spin.setValue(min(result.all_seeds))
        self.model_panel.set_seeds(len(result.all_seeds))
        try:
            same = self.strategy_panel.strategy_config() == config.strategy
        except ConfigError:  # the panel holds an invalid edit: the run's strategy replaces it
            same = False
        if not same:
            self.strategy_panel.set_config(config.strategy)
        self._config = config

    @QtCore.Slot()
    def _on_strategy_changed(self) -> None:
        self._validate_form()
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
        error = None
        try:
            model = self.model_panel.model_config()
            self.model_panel.train_config()
            self.strategy_panel.strategy_config()
            prices = self.prices
            if prices is not None and model.window >= len(prices.frame):
                raise ConfigError(f"window {model.window}: longer than the "
                                  f"{len(prices.frame):,} bars loaded; use a shorter "
                                  "window or more data")
        except ConfigError as exc:
            error = str(exc)
        self._form_error = error
        self.side_panel.show_form_error(error)
        self._update_actions()

    def _can_train(self) -> bool:
        return (not self._closing and self.prices is not None and self._form_error is None
                and not self.is_training() and not self.is_loading()
                and not self.is_sweeping())

    def _update_actions(self) -> None:
        training, loading = self.is_training(), self.is_loading()
        sweeping, task = self.is_sweeping(), self.controller.is_running_task()
        result = self.result
        has_data, has_result = self.prices is not None, result is not None
        self.act_train.setEnabled(self._can_train())
        self.act_stop.setEnabled(training or loading or sweeping)
        self.act_open_csv.setEnabled(not training and not loading and not sweeping)
        test_hidden = has_result and result.test_hidden
        self.act_export_predictions.setEnabled(has_result and not task and not test_hidden)
        self.act_export_predictions.setToolTip(
            "Its test split is hidden: open the configuration selected on validation (\u2605) "
            "to export predictions" if test_hidden
            else "Write the predictions table as CSV or Parquet")
        self.act_save_model.setEnabled(has_result and not task and result.can_save)
        self.act_save_model.setToolTip(
            "This run keeps no model to save (an ensemble, or a sweep's run): train with "
            "Seeds 1 to save one" if has_result and not result.can_save
            else "Save the trained model (weights and settings)")
        self.act_export_chart.setEnabled(has_data and not task)
        self.act_load_model.setEnabled(has_data and not training and not task and not sweeping)
        self.act_show_test.setEnabled(has_data)
        self.act_show_all.setEnabled(has_data)
        self.progress.setTextVisible(training)
        self.train_button.setEnabled(self.act_train.isEnabled())
        self.stop_button.setEnabled(self.act_stop.isEnabled())
        self.data_panel.setEnabled(not training and not sweeping)
        self.data_panel.set_busy(loading)
        self.model_panel.setEnabled(not training and not sweeping)
        why = ("load data first" if not has_data else "training is running" if training
               else "data is loading" if loading
               else "wait for the export or other task to finish" if task
               else f"fix the side panel: {self._form_error}" if self._form_error else "")
        self.sweep_view.set_enabled_to_run(
            has_data and not training and not loading and not sweeping and not task
            and self._form_error is None, why)

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
        except ConfigError:
            return
        from sandbox.features import split_labels

        rows = self.prices.frame.index[window - 1:]
        try:
            labels = split_labels(rows, self._config.split) if len(rows) >= 3 else None
        except ConfigError:
            labels = None
        if labels is None:
            self.chart.set_splits(None)
            return
        self._preview = pd.Series(labels, index=rows)
        if window != self._preview_window:
            self._preview_window = window
            self.chart.set_splits(self._preview)

    def _set_status(self, text: str) -> None:
        self.status_text.setText(text)

    def _report(self, title: str, failure: Failure) -> None:
        """Log a failure and show it as a dialog (unless headless)."""
        self.log(f"{title}: {failure.message}")
        if failure.details:
            self.log(failure.details.rstrip())
        self.failure_reported.emit(title, failure)
        if not self.headless and not self._closing:
            dialogs.show_error(self, title, failure)

    def _ask_export_path(self, title: str, stem: str, kinds: dict[str, str]) -> str | None:
        """Ask where to save (see :func:`dialogs.ask_export_path`); remembers the folder."""
        path = dialogs.ask_export_path(self, title, self._folder(), stem, kinds)
        if path is not None:
            self._remember_folder(path)
        return path

    def _folder(self) -> str:
        return self.settings.last_folder() if self.persist else ""

    def _remember_folder(self, path: str) -> None:
        if self.persist:
            p = Path(path)
            self.settings.set_last_folder(str(p if p.is_dir() else p.parent))

    def _on_dark_toggled(self, checked: bool) -> None:
        self._apply_dark(checked)
        if self.persist:
            self.settings.set_dark_chart(checked)

    def _apply_dark(self, dark: bool) -> None:
        self._dark = dark
        self.chart.set_dark(dark)
        self.loss_plot.plot_widget.setBackground("#131722" if dark else "w")

    def _on_about(self) -> None:
        dialogs.show_about(self)

    # ============================================================== closing =============
    def current_config(self) -> RunConfig:
        """The form's settings as a RunConfig (the last valid ones when the form is invalid)."""
        try:
            return RunConfig(data=self.controller.loaded_spec or self._config.data,
                             split=self._config.split,
                             model=self.model_panel.model_config(),
                             train=self.model_panel.train_config(),
                             strategy=self.strategy_panel.strategy_config())
        except ConfigError:
            return self._config

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if not self._closing:
            self._closing = True
            self._retrade_timer.stop()
            if self.persist:
                self.settings.save_config(self.current_config())
                self.settings.set_seeds(self.model_panel.seeds())
                self.settings.set_sweep_form(self.sweep_view.saved_state())
                self.settings.save_window(self.saveGeometry(), self.saveState(),
                                          self.splitter.saveState())
                self.settings.sync()
            if self.controller.is_busy():
                self.hide()  # feels closed at once; training stops within one batch
            self.controller.shutdown()
        event.accept()
