"""The Sweep tab: a grid form, a live sortable table of configurations, "Open this run".

The form turns its fields into a grid text for :func:`sandbox.sweep.parse_grid` (so the
checks and messages are the command line's); blank fields keep the side panel's value, and
the Other field takes any further ``NAME=V1,V2`` parts. A field the grid refuses (e.g.
``cost_bps=0,5``: costs only re-trade the same models) says why right under it. The
controller runs the sweep on a worker thread; :meth:`SweepView.attach` follows it and hands
each finished run to :meth:`SweepView.add_record`; the table shows one row per configuration
with its validation figures only (mean and std over the seeds, as they come in, on each
run's own validation rows). Once the sweep ends, :meth:`SweepView.set_result` puts in the
figures on the validation dates every configuration shares (what selection compares), marks
the configuration selected on validation and shows its test figures, the deflated Sharpe
ratio (validation) and the probabilistic Sharpe ratio (test) below the table, each with what
it is the probability of: the test split never ranks the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from sandbox import constants as C
from sandbox.errors import ConfigError
from sandbox.stats import mean_std
from sandbox.sweep import PSR_SENTENCE, dsr_sentence, format_mean_std, format_params
from sandbox.ui.controller import CANCELLED
from sandbox.ui.layout import vertical_scroll
from sandbox.ui.wording import finite_number

__all__ = ["GRID_FIELDS", "MORE", "SweepView", "grid_text", "summary_lines"]

Signal = QtCore.Signal

#: (grid name, form label, tip) of the fields the form offers, in order
GRID_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("model", "Networks", "e.g. lstm,gru,rnn"),
    ("window", "Windows", "e.g. 20,60"),
    ("hidden", "Hidden", "e.g. 16,64"),
    ("layers", "Layers", "e.g. 1,2"),
    ("dropout", "Dropout", "e.g. 0,0.2"),
    ("lr", "Learning rates", "e.g. 1e-3,3e-4"),
    ("epochs", "Epochs", "e.g. 10,30"),
    ("threshold_bps", "Threshold bps", "e.g. 0,10 (the strategy's threshold; it re-trades "
                                       "the same models, so it is not a new trial)"),
)
#: the form's free field: any further grid parts, as on the command line
MORE = "more"
MORE_LABEL = "Other"
MORE_TIP = ("Further grid parts, as `sandbox sweep --grid` takes them, e.g. "
            "loss=mse,huber batch_size=32,64")
SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
SELECTED_MARK = "\u2605"


def grid_text(values: dict[str, str]) -> str:
    """The grid text of the form's fields (``{grid name: "v1,v2"}``, and :data:`MORE`: whole
    ``NAME=V1,V2`` parts); blanks are left out."""
    parts = []
    for name, _label, _tip in GRID_FIELDS:
        text = "".join(values.get(name, "").split())
        if text:
            parts.append(f"{name}={text}")
    parts.extend(values.get(MORE, "").split())
    return " ".join(parts)


@dataclass
class _Row:
    config_id: str
    params: dict
    seeds: int  # seeds per configuration
    records: list


class SweepView(QtWidgets.QWidget):
    """The Sweep tab's widgets; the controller owns the worker and the data.

    Signals
    -------
    run_requested(dict, int, int)
        Run the grid (``{field: [values]}``) with this many seeds and worker processes.
    stop_requested()
        Stop the running sweep.
    open_requested(str)
        Show the finished configuration with this id on the chart.
    export_requested()
        Write the finished sweep's ``sweep.csv`` and ``summary.json``.
    """

    run_requested = Signal(object, int, int)  # object: a dict keeps its order
    stop_requested = Signal()
    open_requested = Signal(str)
    export_requested = Signal()

    HEADERS = ("", "Configuration", "Seeds", "Val RMSE", "Val Sharpe", "Val total return",
               "Failed")
    _DATES = ("; while the sweep runs: on each run's own validation rows; once it has "
              "finished: on the validation dates every configuration has")
    TIPS = (
        f"{SELECTED_MARK}: selected on validation (lowest validation RMSE on the dates every "
        "configuration has) once the sweep has finished",
        "The grid values of this configuration (everything else: the side panel's settings)",
        "Seeds finished / seeds asked for",
        "Validation RMSE of the predicted return (log return per bar), mean \u00b1 std over "
        "the seeds: the selection criterion, the same for every configuration" + _DATES,
        "Annualised Sharpe ratio on the validation split, mean \u00b1 std over the seeds"
        + _DATES,
        "Total return on the validation split after costs, mean \u00b1 std over the seeds"
        + _DATES,
        "Seeds that failed (hover for the reason)",
    )

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: dict[str, _Row] = {}
        self._seeds = 1
        self._running = False
        self._finished = False
        self._selected: str | None = None  # the configuration selected on validation
        self._can_run = False  # the window allows a sweep now (set_enabled_to_run)
        self._why_not = ""  # why not, for the Run button's tooltip
        self._grid_error: str | None = None  # what is wrong with the form, if anything

        # -- form ---------------------------------------------------------------------------
        # The grid fields in two columns (a field's message spans the row under it), then
        # Seeds, Processes, the plan and Run/Stop pinned below them: in a short tab (the
        # window's lower pane) the fields scroll, the Run button stays in sight.
        fields = QtWidgets.QGridLayout()
        fields.setContentsMargins(0, 0, 0, 0)
        fields.setVerticalSpacing(4)
        fields.setColumnStretch(1, 1)
        fields.setColumnStretch(3, 1)
        self.edits: dict[str, QtWidgets.QLineEdit] = {}
        #: under each field, why the grid refuses it (hidden while the field is fine)
        self.field_errors: dict[str, QtWidgets.QLabel] = {}
        specs = [(name, label, f"Comma-separated values to try, {tip}; blank: the side "
                               "panel's value") for name, label, tip in GRID_FIELDS]
        specs.append((MORE, MORE_LABEL, MORE_TIP))
        errors_under: QtWidgets.QVBoxLayout | None = None
        for i, (name, label, tip) in enumerate(specs):
            edit = QtWidgets.QLineEdit()
            edit.setPlaceholderText("e.g. loss=mse,huber" if name == MORE
                                    else "side panel")  # blank: the side panel's value
            edit.setToolTip(tip)
            edit.setMinimumWidth(70)
            edit.textChanged.connect(self._validate)
            self.edits[name] = edit
            caption = QtWidgets.QLabel(label)
            caption.setBuddy(edit)
            caption.setToolTip(tip)
            row, column = 2 * (i // 2), 2 * (i % 2)
            fields.addWidget(caption, row, column)
            if name == MORE:  # the free field takes the whole row
                fields.addWidget(edit, row, 1, 1, 3)
            else:
                fields.addWidget(edit, row, column + 1)
            if column == 0:  # the messages of this row's fields, under both
                errors_under = QtWidgets.QVBoxLayout()
                errors_under.setSpacing(0)
                fields.addLayout(errors_under, row + 1, 0, 1, 4)
            error = QtWidgets.QLabel()
            error.setWordWrap(True)
            error.setTextFormat(QtCore.Qt.TextFormat.PlainText)
            error.setStyleSheet("color: #c62828;")
            error.setVisible(False)
            self.field_errors[name] = error
            assert errors_under is not None
            errors_under.addWidget(error)
        fields_box = QtWidgets.QWidget()
        fields_box.setLayout(fields)
        # scrolls rather than making the tab (and so the window's lower pane) tall
        self.fields_scroll = vertical_scroll(fields_box)
        # no taller than the fields: Seeds and Run follow right under them
        self.fields_scroll.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred,
                                         QtWidgets.QSizePolicy.Policy.Maximum)

        self.seeds_spin = QtWidgets.QSpinBox()
        self.seeds_spin.setRange(1, C.MAX_ENSEMBLE_SEEDS)
        self.seeds_spin.setValue(1)
        self.seeds_spin.setToolTip("Seeds per configuration (seed, seed + 1, ...): results are "
                                   "averaged over them and selection uses the mean")
        self.seeds_spin.valueChanged.connect(self._validate)
        self.jobs_spin = QtWidgets.QSpinBox()
        self.jobs_spin.setRange(1, 256)
        self.jobs_spin.setToolTip("Worker processes training in parallel (one torch thread "
                                  "each); one per core is the fastest")
        counts = QtWidgets.QHBoxLayout()
        for text, spin in (("Seeds", self.seeds_spin), ("Processes", self.jobs_spin)):
            caption = QtWidgets.QLabel(text)
            caption.setBuddy(spin)
            caption.setToolTip(spin.toolTip())
            counts.addWidget(caption)
            counts.addWidget(spin)
            counts.addSpacing(8)
        counts.addStretch(1)
        self.plan_label = QtWidgets.QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.plan_label.setToolTip("Each run trains with one torch thread")
        self.run_button = QtWidgets.QPushButton("Run sweep")
        self.run_button.setToolTip("Train every configuration x seed in parallel processes")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setToolTip("Stop the sweep: the workers are ended, nothing is kept")
        self.run_button.clicked.connect(self._on_run_clicked)
        self.stop_button.clicked.connect(self.stop_requested)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        left_box = QtWidgets.QWidget()
        left = QtWidgets.QVBoxLayout(left_box)
        left.setContentsMargins(0, 0, 0, 0)
        left.setSpacing(4)
        left.addWidget(self.fields_scroll)
        left.addLayout(counts)
        left.addWidget(self.plan_label)
        left.addLayout(buttons)
        left.addStretch(1)
        left_box.setMinimumWidth(260)
        left_box.setMaximumWidth(340)  # the table's Configuration column needs the room

        # -- table --------------------------------------------------------------------------
        self.model = QtGui.QStandardItemModel(0, len(self.HEADERS), self)
        for c, (text, tip) in enumerate(zip(self.HEADERS, self.TIPS, strict=True)):
            item = QtGui.QStandardItem(text)
            item.setToolTip(tip)
            self.model.setHorizontalHeaderItem(c, item)
        self.proxy = QtCore.QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, QtCore.Qt.SortOrder.AscendingOrder)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        # every label in full, on one line (two configurations may differ in any part of
        # it); a narrow tab scrolls the table sideways instead of cutting labels short
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda _index: self._on_open_clicked())
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._sync_buttons())
        self.open_button = QtWidgets.QPushButton("Open this run")
        self.open_button.setToolTip("Show the selected configuration's predictions (averaged "
                                    "over its seeds) on the chart, with its metrics")
        self.open_button.clicked.connect(self._on_open_clicked)
        self.export_button = QtWidgets.QPushButton("Export results...")
        self.export_button.setToolTip("Write sweep.csv (one row per run) and summary.json (per "
                                      "configuration, the selection, the deflated Sharpe) "
                                      "into a folder, as `sandbox sweep` does")
        self.export_button.clicked.connect(self.export_requested)
        self.result_label = QtWidgets.QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.result_label.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        # the summary scrolls in its own pane under the table, so a long selection summary
        # never squeezes the table below a few rows; the user can move the boundary
        result_box = vertical_scroll(self.result_label)
        self.result_box = result_box
        under_widget = QtWidgets.QWidget()
        under = QtWidgets.QHBoxLayout(under_widget)
        under.setContentsMargins(0, 0, 0, 0)
        under.addWidget(result_box, 1)
        side = QtWidgets.QVBoxLayout()
        side.addWidget(self.open_button)
        side.addWidget(self.export_button)
        side.addStretch(1)
        under.addLayout(side)
        row = self.table.verticalHeader().defaultSectionSize()
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height() + 4 * row)
        under_widget.setMinimumHeight(3 * self.fontMetrics().lineSpacing())
        self.right_splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.right_splitter.setChildrenCollapsible(False)
        self.right_splitter.addWidget(self.table)
        self.right_splitter.addWidget(under_widget)
        self.right_splitter.setStretchFactor(0, 1)
        self.right_splitter.setStretchFactor(1, 1)

        box = QtWidgets.QHBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.addWidget(left_box)
        box.addWidget(self.right_splitter, 1)
        self.clear()
        self._validate()

    # -- the form ------------------------------------------------------------------------
    def form_values(self) -> dict[str, str]:
        return {name: edit.text() for name, edit in self.edits.items()}

    def set_form_values(self, values: dict[str, str]) -> None:
        for name, edit in self.edits.items():
            edit.setText(values.get(name, ""))

    def saved_state(self) -> dict[str, str]:
        """The form to remember between sessions: the fields, the seeds and the processes."""
        return {**self.form_values(), "_seeds": str(self.seeds_spin.value()),
                "_jobs": str(self.jobs_spin.value())}

    def restore_state(self, state: dict[str, str]) -> None:
        """Put back what :meth:`saved_state` returned (unknown or bad values are skipped)."""
        self.set_form_values(state)
        for key, spin in (("_seeds", self.seeds_spin), ("_jobs", self.jobs_spin)):
            text = state.get(key, "")
            if text.isdigit() and spin.minimum() <= int(text) <= spin.maximum():
                spin.setValue(int(text))

    def grid(self) -> dict[str, list]:
        """The form's grid (raises ConfigError naming the bad field)."""
        grid, _field, error = self._checked_grid()
        if error is not None:
            raise error
        assert grid is not None
        return grid

    @staticmethod
    def _labels() -> list[tuple[str, str]]:
        """(field name, form label) of every field, the Other field last."""
        return [(name, label) for name, label, _tip in GRID_FIELDS] + [(MORE, MORE_LABEL)]

    def _checked_grid(self) -> tuple[dict[str, list] | None, str | None, ConfigError | None]:
        """``(grid, None, None)``, or ``(None, field name, ConfigError naming the field)``."""
        from sandbox.sweep import parse_grid

        labels = dict(self._labels())
        values = self.form_values()
        for name, text in values.items():
            try:
                parse_grid(grid_text({name: text}))
            except ConfigError as exc:
                return None, name, ConfigError(f"{labels[name]}: {exc}")
        try:
            return parse_grid(grid_text(values)), None, None
        except ConfigError as exc:  # only a clash of the Other field with a named one
            return None, MORE, ConfigError(f"{MORE_LABEL}: {exc}")

    def set_jobs(self, jobs: int) -> None:
        self.jobs_spin.setValue(jobs)

    def set_enabled_to_run(self, can_run: bool, why: str = "") -> None:
        """Whether a sweep may start now (data loaded, no training running)."""
        self._can_run = can_run
        self._why_not = why
        self._sync_buttons()

    def attach(self, controller: Any) -> None:
        """Follow ``controller``'s sweeps (a RunController): the table fills in as runs
        finish and empties when new data is loaded."""
        controller.follow(self, "sweep_started", "sweep_run_done", "sweep_done", "sweep_failed",
                          "sweep_ended", "prices_loaded")

    @QtCore.Slot(int, object, int, int)
    def _on_sweep_started(self, _n_runs: int, _grid: dict, seeds: int, _jobs: int) -> None:
        self.start(seeds)
        self.set_running(True)

    @QtCore.Slot(object)
    def _on_sweep_run_done(self, record: Any) -> None:
        self.add_record(record)

    @QtCore.Slot(object)
    def _on_sweep_done(self, result: Any) -> None:
        self.set_result(result.summary)

    @QtCore.Slot(object)
    def _on_sweep_failed(self, failure: Any) -> None:
        self.clear(f"The sweep failed: {failure.message}")

    @QtCore.Slot(object)
    def _on_prices_loaded(self, _loaded: Any) -> None:
        self.clear()  # a sweep's runs belong to the data they were trained on

    @QtCore.Slot(str)
    def _on_sweep_ended(self, how: str) -> None:
        if how == CANCELLED:
            self.clear("The sweep was stopped; its runs were dropped.")
        self.set_running(False)

    # -- results -------------------------------------------------------------------------
    def clear(self, text: str = "") -> None:
        """Forget every result (new data, or a new sweep)."""
        self.model.removeRows(0, self.model.rowCount())
        self._rows = {}
        self._finished = False
        self._selected = None
        self.result_label.setText(text or "Fill in the values to try and press Run sweep. "
                                          "Configurations are ranked on the validation split; "
                                          "the test split is shown only for the one selected.")
        self._sync_buttons()

    def set_running(self, running: bool) -> None:
        self._running = running
        for edit in self.edits.values():
            edit.setEnabled(not running)
        self.seeds_spin.setEnabled(not running)
        self.jobs_spin.setEnabled(not running)
        self._sync_buttons()

    def start(self, seeds: int) -> None:
        """A sweep with ``seeds`` seeds per configuration started: an empty table."""
        self.clear("Running...")
        self._seeds = seeds

    def add_record(self, record: Any) -> None:
        """One run finished (a :class:`sandbox.sweep.RunRecord`): update its row."""
        row = self._rows.get(record.config_id)
        if row is None:
            row = _Row(record.config_id, dict(record.params), self._seeds, [])
            self._rows[record.config_id] = row
            self.model.appendRow([QtGui.QStandardItem() for _ in self.HEADERS])
            self.model.item(self.model.rowCount() - 1, 1).setData(record.config_id,
                                                                  QtCore.Qt.ItemDataRole.UserRole)
        row.records.append(record)
        self._fill(self._source_row(record.config_id), row)
        self.result_label.setText(f"{record.done}/{record.total} runs finished.")
        self._sync_buttons()

    def set_result(self, summary: dict[str, Any]) -> None:
        """The sweep ended: the validation figures on the common dates, the selection, its
        test figures, the deflated and probabilistic Sharpe ratios."""
        self._finished = True
        selected = (summary.get("selected") or {}).get("config_id")
        self._selected = selected
        for config in summary.get("configs", []):
            r = self._source_row(config["config_id"])
            if r >= 0:
                val = config.get("val", {})
                self._fill_figures(r, val.get(C.RMSE) or {}, val.get(C.SHARPE) or {},
                                   val.get(C.TOTAL_RETURN) or {})
        for r in range(self.model.rowCount()):
            item = self.model.item(r, 0)
            is_selected = self._row_id(r) == selected
            item.setText(SELECTED_MARK if is_selected else "")
            item.setData(0 if is_selected else 1, SORT_ROLE)
            item.setToolTip("selected on validation" if is_selected else "")
        self.result_label.setText("\n".join(summary_lines(summary)))
        if selected is not None:
            self.select(selected)
        self._sync_buttons()

    def select(self, config_id: str) -> None:
        r = self._source_row(config_id)
        if r < 0:
            return
        index = self.proxy.mapFromSource(self.model.index(r, 1))
        self.table.selectRow(index.row())

    def selected_config_id(self) -> str | None:
        """The configuration selected on validation (None until a sweep has finished)."""
        return self._selected

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows(1)
        if not rows:
            return None
        return self._row_id(self.proxy.mapToSource(rows[0]).row())

    def records(self, config_id: str) -> list[Any]:
        """The finished runs of a configuration (failed ones too)."""
        row = self._rows.get(config_id)
        return list(row.records) if row else []

    def row_ids(self) -> list[str]:
        """Configuration ids in the table's current (sorted) order."""
        return [self._row_id(self.proxy.mapToSource(self.proxy.index(r, 0)).row())
                for r in range(self.proxy.rowCount())]

    # -- internals -----------------------------------------------------------------------
    def _row_id(self, source_row: int) -> str:
        return str(self.model.item(source_row, 1).data(QtCore.Qt.ItemDataRole.UserRole))

    def _source_row(self, config_id: str) -> int:
        for r in range(self.model.rowCount()):
            if self._row_id(r) == config_id:
                return r
        return -1

    def _fill(self, r: int, row: _Row) -> None:
        """A row as its runs come in: validation figures on each run's own rows."""
        ok = [x for x in row.records if x.error is None]
        failed = [x for x in row.records if x.error is not None]
        label = format_params(row.params) if row.params else "side panel settings"
        cells: list[tuple[str, Any]] = [
            ("", 1),
            (f"{row.config_id}  {label}", row.config_id),
            (f"{len(row.records)}/{row.seeds}", len(row.records)),
        ]
        self._set_cells(r, 0, cells)
        self.model.item(r, 1).setToolTip(cells[1][0])  # in full, when the column is narrow
        self._fill_figures(r, *(mean_std([x.val_metrics.get(k) for x in ok])
                                for k in (C.RMSE, C.SHARPE, C.TOTAL_RETURN)))
        self._set_cells(r, 6, [(str(len(failed)) if failed else "", len(failed))])
        if failed:
            self.model.item(r, 6).setToolTip("\n".join(f"seed {x.seed}: {x.error}"
                                                       for x in failed))

    def _fill_figures(self, r: int, rmse: dict, sharpe: dict, total: dict) -> None:
        """The validation columns of row ``r`` (``mean_std`` results)."""
        self._set_cells(r, 3, [
            (format_mean_std(rmse, ".5g", ".2g"), _sortable(rmse.get("mean"))),
            (format_mean_std(sharpe, ".2f"), _sortable(sharpe.get("mean"), descending=True)),
            (_pct_pm(total), _sortable(total.get("mean"), descending=True)),
        ])

    def _set_cells(self, r: int, first: int, cells: list[tuple[str, Any]]) -> None:
        for c, (text, key) in enumerate(cells, start=first):
            item = self.model.item(r, c)
            if c == 0 and item.text():
                continue  # the selection mark stays
            item.setText(text)
            item.setData(key, SORT_ROLE)
            if c >= 2:
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight
                                      | QtCore.Qt.AlignmentFlag.AlignVCenter)

    def _validate(self) -> None:
        grid, bad_field, error = self._checked_grid()
        for name, label in self.field_errors.items():
            label.setText(str(error) if name == bad_field else "")
            label.setVisible(name == bad_field)
        if error is not None:
            self._grid_error = str(error)
            label = dict(self._labels())[bad_field]
            self.plan_label.setText(f"Cannot run: {label}: see the message under the field.")
            self.plan_label.setStyleSheet("color: #c62828;")
        else:
            assert grid is not None
            self._grid_error = None
            n = math.prod(len(v) for v in grid.values()) if grid else 1
            seeds = self.seeds_spin.value()
            self.plan_label.setText(f"{_count(n, 'configuration')} x {_count(seeds, 'seed')} "
                                    f"= {_count(n * seeds, 'run')}; each run uses one torch "
                                    "thread.")
            self.plan_label.setStyleSheet("")
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        can_run, error = self._can_run, self._grid_error
        self.run_button.setEnabled(can_run and not self._running and error is None)
        why = self._why_not
        self.run_button.setToolTip(why if not can_run and why else
                                   "Train every configuration x seed in parallel processes")
        self.stop_button.setEnabled(self._running)
        chosen = self.selected_id()
        usable = chosen is not None and any(
            x.error is None and x.predictions is not None for x in self.records(chosen))
        self.open_button.setEnabled(usable and not self._running and can_run)
        self.export_button.setEnabled(self._finished and not self._running)

    def _on_run_clicked(self) -> None:
        grid, _field, error = self._checked_grid()
        if error is None and grid is not None:
            self.run_requested.emit(grid, self.seeds_spin.value(), self.jobs_spin.value())

    def _on_open_clicked(self) -> None:
        chosen = self.selected_id()
        if chosen is not None and self.open_button.isEnabled():
            self.open_requested.emit(chosen)


def _sortable(value: float | None, *, descending: bool = False) -> float:
    """A sort key: missing values last whichever way is better."""
    if value is None:
        return math.inf
    return -value if descending else value


def _dates_text(summary: dict[str, Any], split: str) -> str:
    span = (summary.get("common_dates") or {}).get(split) or {}
    if not span.get("n"):
        return "no date common to every configuration"
    return (f"the {span['n']} {'validation' if split == C.VAL else 'test'} dates every "
            f"configuration has, {span['first']} .. {span['last']}")


def _probability(name: str, value: Any, sentence: str, missing: str) -> str:
    number = finite_number(value)
    if number is None:
        return f"{name} n/a ({missing})."
    return f"{name} {number:.3f}: {sentence}."


def _count(n: int, noun: str) -> str:
    """ "1 run", "4 runs" """
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """What the tab says under the table once a sweep ended (from ``summary.json``)."""
    lines = [f"{_count(summary.get('n_runs', 0), 'run')} of "
             f"{_count(summary.get('n_configs', 0), 'configuration')}, "
             f"{summary.get('n_failed', 0)} failed."]
    sel = summary.get("selected")
    if not sel:
        note = summary.get("selection_note")
        lines.append(f"Nothing selected: {note}." if note
                     else "No configuration finished a run: nothing to select.")
        return lines
    test = sel.get("test", {})
    lines.append(f"Selected on validation: {sel['config_id']} {sel['label']}, the lowest "
                 "validation RMSE of the predicted return (mean over its seeds) on "
                 f"{_dates_text(summary, C.VAL)}.")
    parts = ["Test split of the selected configuration only (mean over its seeds, on "
             f"{_dates_text(summary, C.TEST)}): RMSE "
             f"{format_mean_std(test.get(C.RMSE, {}), '.4g', '.2g')}, total return "
             f"{_pct_pm(test.get(C.TOTAL_RETURN, {}))}, Sharpe "
             f"{format_mean_std(test.get(C.SHARPE, {}), '.2f')}"]
    hold = sel.get("test_buy_and_hold") or {}
    # the same for every seed: no spread to show
    mean = finite_number((hold.get(C.TOTAL_RETURN) or {}).get("mean"))
    if mean is not None:
        parts.append(f"buy & hold {mean * 100:+.2f}% on the same dates")
    lines.append("; ".join(parts) + ".")
    n = int(summary.get("n_trials", 0))
    lines.append(f"Trials: {n} distinct trained {'configuration' if n == 1 else 'configurations'}"
                 " (seeds are averaged; a "
                 "threshold or strategy variant re-trades the same model).")
    lines.append(_probability("DSR (validation)",
                              (summary.get("deflated_sharpe") or {}).get("dsr"),
                              dsr_sentence(n), "too few validation returns"))
    lines.append(_probability("PSR (test)", (summary.get("test_psr") or {}).get("psr"),
                              PSR_SENTENCE, "too few test returns"))
    looks = summary.get("test_looks_on_this_data")
    if isinstance(looks, int) and not isinstance(looks, bool):
        times = "once" if looks == 1 else "twice" if looks == 2 else f"{looks:,} times"
        lines.append(f"Test split seen {times} on this data (these test figures count as a "
                     "look, like Show test results).")
    spa = summary.get("spa") or {}
    p = spa.get("pvalue_consistent")
    if p is not None:
        k = int(spa.get("candidates", 0))
        lines.append(f"Best of {_count(k, 'configuration')} against buy & hold on validation "
                     f"(Hansen's SPA, allowing for how many were tried): p = {p:.2f}, "
                     + ("better than luck would make it." if spa.get("best_better") else
                        "no better than the best of that many tries would be by luck."))
    return lines


def _pct_pm(stats: dict[str, Any]) -> str:
    scaled = {k: (v * 100 if isinstance(v, float) and k in ("mean", "std") else v)
              for k, v in stats.items()}
    text = format_mean_std(scaled, "+.2f")
    return text if text == "n/a" else text + "%"
