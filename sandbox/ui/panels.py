"""The side panel: its forms (Data, Model and training, Strategy), the form's error line and
the Train / Stop buttons; and the small builders of the window's layout (lower tabs, chart
splitter, actions and menus).

Each panel turns its widgets into the matching config dataclasses; building them is the
validation (a :class:`~sandbox.errors.ConfigError` carries the reason the form shows).
Panels emit ``changed`` whenever a value changes and know nothing about runs or threads;
the Data panel only follows a controller's loads (:meth:`DataPanel.attach`) to say what
happens to the data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from PySide6 import QtCore, QtGui, QtWidgets

from sandbox import constants as C
from sandbox.config import (
    DataSpec,
    ModelConfig,
    RunConfig,
    SplitSpec,
    StrategyConfig,
    TrainConfig,
    WalkForwardSpec,
)
from sandbox.errors import ConfigError
from sandbox.ui import wording
from sandbox.ui.controller import CANCELLED, FINISHED
from sandbox.ui.layout import vertical_scroll

__all__ = [
    "DataPanel",
    "EvaluationFields",
    "ModelPanel",
    "SidePanel",
    "StrategyPanel",
    "chart_splitter",
    "fill_menu_bar",
    "make_action",
    "size_text",
    "split_preview",
    "tab_widget",
    "walk_forward_plan",
    "walk_forward_preview",
]

Signal = QtCore.Signal

_STRATEGY_LABELS = {C.LONG_FLAT: "long / flat", C.LONG_SHORT: "long / short"}
_FILL_LABELS = {C.FILL_NEXT_OPEN: "next open", C.FILL_CLOSE: "same close"}
#: the network choice's words (every kind of C.MODEL_KINDS)
_KIND_LABELS = {C.LSTM: "LSTM", C.GRU: "GRU", C.RNN: "RNN", C.TRANSFORMER: "Transformer"}
_TARGET_LABELS = {C.TARGET_RETURN: "next return (close \u2192 close)",
                  C.TARGET_TRADED: "traded return (as filled)",
                  C.TARGET_PRICE: "next price (teaching)"}

#: the span of prices each fill holds a position over (decided at close t)
#: (no-break spaces: a wrapped note keeps each span on one line)
_FILL_SPANS = {C.FILL_NEXT_OPEN: "open\u00a0t+1\u00a0\u2192\u00a0t+2",
               C.FILL_CLOSE: "close\u00a0t\u00a0\u2192\u00a0t+1"}
#: the span the target "return" forecasts (the teaching price target implies it too)
_RETURN_SPAN = _FILL_SPANS[C.FILL_CLOSE]
#: the fill's horizon, said under the Fill choice
_FILL_NOTES = {
    C.FILL_NEXT_OPEN: f"held {_FILL_SPANS[C.FILL_NEXT_OPEN]} (\u2018next return\u2019: "
                      f"{_RETURN_SPAN})",
    C.FILL_CLOSE: f"held {_FILL_SPANS[C.FILL_CLOSE]}, the span of \u2018next return\u2019",
}
#: said instead of the target's horizon when the forecast and the traded span differ
TARGET_CAUTION = (f"\u26a0 Forecasts {_RETURN_SPAN}, but the fill trades "
                  f"{_FILL_SPANS[C.FILL_NEXT_OPEN]} (GSPC test: correlation ~0.85)")
_CAUTION_TIP = ("The model forecasts the next close-to-close return, but with the next-open "
                "fill a position decided at close t is held from open t+1 to open t+2: a "
                "different return (on GSPC's test split the two correlate only ~0.85). The "
                "target \u2018traded return\u2019 forecasts the return that is traded.")
AUTO_PERIODS = "auto (measured)"
#: the Dates choice for CSV files: how slashed or dotted dates are read ("" = auto)
_DATE_ORDER_LABELS = {"": "auto", C.DATE_DAYFIRST: "day first (31/12)",
                      C.DATE_MONTHFIRST: "month first (12/31)"}
#: what an empty validation or test start means
AUTO_SPLIT = "auto (70/15/15)"
_WARNING_COLOUR = "#b35c00"


def target_note(target: str, fill: str) -> str:
    """Which horizon a model of ``target`` forecasts and whether the ``fill`` trades it
    (:data:`TARGET_CAUTION` when they differ for the default target)."""
    traded = _FILL_SPANS.get(fill, _FILL_SPANS[C.FILL_NEXT_OPEN])
    if target == C.TARGET_PRICE:
        return f"Forecasts the close at t+1 (teaching); fill: {traded}"
    span = traded if target == C.TARGET_TRADED else _RETURN_SPAN
    return f"Forecasts {span}, the span the fill trades" if span == traded else TARGET_CAUTION


def _note(text: str = "") -> QtWidgets.QLabel:
    """A small word-wrapped line of explanation under a field."""
    label = QtWidgets.QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    label.setForegroundRole(QtGui.QPalette.ColorRole.PlaceholderText)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 0.9)
    label.setFont(font)
    return label


def _combo(items: dict[str, str] | tuple[str, ...], tip: str) -> QtWidgets.QComboBox:
    box = QtWidgets.QComboBox()
    pairs = items.items() if isinstance(items, dict) else ((v, v) for v in items)
    for value, label in pairs:
        box.addItem(label, value)
    box.setToolTip(tip)
    return box


def _select(box: QtWidgets.QComboBox, value: str) -> None:
    index = box.findData(value)
    if index >= 0:
        box.setCurrentIndex(index)


def _spin(low: int, high: int, tip: str, *, step: int = 1) -> QtWidgets.QSpinBox:
    box = QtWidgets.QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setToolTip(tip)
    box.setAccelerated(True)
    return box


def _dspin(low: float, high: float, step: float, decimals: int, tip: str,
           *, suffix: str = "") -> QtWidgets.QDoubleSpinBox:
    box = QtWidgets.QDoubleSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    return box


class BarsPerYearSpin(QtWidgets.QDoubleSpinBox):
    """Bars per year, or "auto" (its minimum, 0): measured from the data's bar spacing.

    Values show without trailing zeros (252, 6240, 365.25). Stepping up from auto starts
    at the measured value when one is known (:meth:`set_measured`).
    """

    def __init__(self, tip: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(0.0, 1_000_000.0)
        self.setDecimals(2)
        self.setSingleStep(1.0)
        self.setAccelerated(True)
        self.setToolTip(tip)
        self.measured: float | None = None
        self.setSpecialValueText(AUTO_PERIODS)

    def periods(self) -> float | None:
        """The value, None for auto."""
        value = self.value()
        return None if value <= self.minimum() else value

    def set_periods(self, periods: float | None) -> None:
        """Show ``periods`` (None: auto)."""
        self.setValue(self.minimum() if periods is None else max(0.01, float(periods)))

    def set_measured(self, periods: float | None) -> None:
        """Say the measured value in the auto text (None: not measured yet)."""
        self.measured = periods
        self.setSpecialValueText(AUTO_PERIODS if periods is None
                                 else f"auto: {self._plain(periods)} (measured)")

    def textFromValue(self, value: float) -> str:
        return self._plain(value)

    def stepBy(self, steps: int) -> None:
        if steps > 0 and self.periods() is None and self.measured is not None:
            self.setValue(self.measured)
            self.selectAll()
            return
        super().stepBy(steps)

    def _plain(self, value: float) -> str:
        locale = self.locale()
        locale.setNumberOptions(locale.numberOptions()
                                | QtCore.QLocale.NumberOption.OmitGroupSeparator)
        text = locale.toString(float(value), "f", self.decimals())
        point = locale.decimalPoint()
        return text.rstrip("0").rstrip(point) if point in text else text


class _DateEdit(QtWidgets.QLineEdit):
    """A line edit for a YYYY-MM-DD date: asks for the width of one (or of its placeholder,
    when longer), not a line edit's."""

    def __init__(self, placeholder: str, tip: str) -> None:
        super().__init__()
        self.setPlaceholderText(placeholder)
        self.setToolTip(tip)

    def sizeHint(self) -> QtCore.QSize:
        hint = super().sizeHint()
        metrics = self.fontMetrics()
        width = max(metrics.horizontalAdvance(text)
                    for text in ("YYYY-MM-DD", self.placeholderText())) + 16
        return QtCore.QSize(min(hint.width(), width), hint.height())


def _form() -> QtWidgets.QFormLayout:
    form = QtWidgets.QFormLayout()
    form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
    form.setHorizontalSpacing(8)
    form.setVerticalSpacing(4)
    return form


def _pair(first: QtWidgets.QWidget, between: str,
          second: QtWidgets.QWidget) -> QtWidgets.QHBoxLayout:
    """Two fields on one row with a word between them (the column is narrow, not long)."""
    row = QtWidgets.QHBoxLayout()
    row.setSpacing(6)
    row.addWidget(first, 1)
    row.addWidget(QtWidgets.QLabel(between))
    row.addWidget(second, 1)
    return row


def _check_date(text: str, what: str) -> str | None:
    """``text`` as a YYYY-MM-DD date (None when empty); ConfigError naming ``what``."""
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ConfigError(f"{what} {text!r}: not a date (use YYYY-MM-DD, or leave it empty)"
                          ) from None


# ============================================================================== Data ======
class DataPanel(QtWidgets.QGroupBox):
    """Where the prices come from: a bundled sample, a CSV file or a ticker; how a file is
    read (Adj Close, the order of its dates); and where the validation and test splits
    start.

    Under the Load button, a note says what was loaded (or why not) and a warning line what
    the load repaired or assumed (:attr:`warning_text`), until the next load.

    Signals
    -------
    load_requested(DataSpec)
        The user pressed Load with a valid source.
    open_csv_requested()
        The user pressed "Open CSV..." (the window shows the file dialog).
    changed()
        Any field changed.
    split_changed()
        The validation or test start changed (no load needed: they apply to training).
    prices_loaded(LoadedPrices)
        The followed controller loaded prices (see :meth:`attach`).
    """

    load_requested = Signal(object)
    open_csv_requested = Signal()
    changed = Signal()
    split_changed = Signal()
    prices_loaded = Signal(object)

    def __init__(self, samples: tuple[str, ...],
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Data", parent)
        self.sample_radio = QtWidgets.QRadioButton("Sample")
        self.csv_radio = QtWidgets.QRadioButton("CSV file")
        self.ticker_radio = QtWidgets.QRadioButton("Ticker")
        self.kind_group = QtWidgets.QButtonGroup(self)
        for button, kind in ((self.sample_radio, C.SOURCE_SAMPLE), (self.csv_radio, C.SOURCE_CSV),
                             (self.ticker_radio, C.SOURCE_YAHOO)):
            button.setProperty("kind", kind)
            self.kind_group.addButton(button)

        self.sample_combo = _combo(samples, "Bundled price history (works offline)")
        self.csv_edit = QtWidgets.QLineEdit()
        self.csv_edit.setPlaceholderText("no file chosen")
        self.csv_edit.setToolTip("A CSV of OHLCV bars: Date, Open, High, Low, Close, Volume")
        self.csv_button = QtWidgets.QPushButton("Open CSV...")
        self.csv_button.setToolTip("Choose a CSV file of prices (Ctrl+O)")
        self.adj_close_check = QtWidgets.QCheckBox("Adj Close")
        self.adj_close_check.setToolTip(
            "Use the file's \u2018Adj Close\u2019 column as the close, with open, high and low "
            "scaled to match: prices adjusted for splits and dividends, so a split is not a "
            "crash. For CSV files and the samples (a ticker's download is always adjusted); "
            "a file without the column keeps its close, with a warning. Applies on Load "
            "(the command line's --adj-close)")
        self.date_order_combo = _combo(
            _DATE_ORDER_LABELS,
            "How the CSV file's slashed or dotted dates are read. auto: from the whole column "
            "(a day above 12 decides; a file where it cannot be told is refused with a "
            "message); day first: 31/12/2024; month first: 12/31/2024. ISO dates "
            "(2024-12-31) read the same either way. Applies on Load")
        self.date_order_combo.setMinimumWidth(  # may show cut in a narrow column
            self.date_order_combo.fontMetrics().horizontalAdvance("day first") + 32)
        self.date_order_label = QtWidgets.QLabel("Dates")
        self.date_order_label.setBuddy(self.date_order_combo)
        self.ticker_edit = QtWidgets.QLineEdit()
        self.ticker_edit.setPlaceholderText("e.g. AAPL, ^GSPC, EURUSD=X")
        self.ticker_edit.setToolTip("A Yahoo Finance symbol; downloads are cached and the "
                                    "cached copy is used when offline")
        self.interval_combo = _combo(C.INTERVALS, "Bar size of the download")
        _select(self.interval_combo, "1d")
        self.start_edit = _DateEdit("YYYY-MM-DD", "Keep bars from this date on, YYYY-MM-DD "
                                                  "(empty: from the first)")
        self.end_edit = _DateEdit("YYYY-MM-DD", "Keep bars up to this date, YYYY-MM-DD (empty: "
                                                "up to the last)")
        self.load_button = QtWidgets.QPushButton("Load")
        self.load_button.setToolTip("Load the chosen data (downloads run in the background)")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 0)  # busy indicator
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.progress.setVisible(False)
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        self.note.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.note.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning_box, self.warning_label = self._warning_line()
        self.val_start_edit = _DateEdit(AUTO_SPLIT, "First date of the validation split, "
                                                    "YYYY-MM-DD (empty: the rows are split "
                                                    "70 / 15 / 15 in time order). Applies to "
                                                    "the next training; no Load needed")
        self.test_start_edit = _DateEdit(AUTO_SPLIT, "First date of the test split, "
                                                     "YYYY-MM-DD, after the validation start "
                                                     "(empty: the last 15% of the rows). "
                                                     "Applies to the next training")
        self._split = SplitSpec()  # fields without a widget (fractions, minimum returns)
        self._warnings: tuple[str, ...] = ()  # of the prices shown

        grid = QtWidgets.QGridLayout()
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(4)
        grid.addWidget(self.sample_radio, 0, 0)
        grid.addWidget(self.sample_combo, 0, 1, 1, 2)
        grid.addWidget(self.csv_radio, 1, 0)
        grid.addWidget(self.csv_edit, 1, 1)
        grid.addWidget(self.csv_button, 1, 2)
        # how the file is read, under it
        grid.addWidget(self.adj_close_check, 2, 0)
        reading = QtWidgets.QHBoxLayout()
        reading.setSpacing(6)
        reading.addWidget(self.date_order_label)
        reading.addWidget(self.date_order_combo, 1)
        grid.addLayout(reading, 2, 1, 1, 2)
        grid.addWidget(self.ticker_radio, 3, 0)
        grid.addWidget(self.ticker_edit, 3, 1)
        grid.addWidget(self.interval_combo, 3, 2)
        grid.addWidget(QtWidgets.QLabel("From"), 4, 0, QtCore.Qt.AlignmentFlag.AlignRight)
        grid.addLayout(_pair(self.start_edit, "to", self.end_edit), 4, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        splits = QtWidgets.QGridLayout()
        splits.setHorizontalSpacing(6)
        splits.setVerticalSpacing(4)
        self._split_labels = (QtWidgets.QLabel("Validation from"), QtWidgets.QLabel("Test from"))
        splits.addWidget(self._split_labels[0], 0, 0, QtCore.Qt.AlignmentFlag.AlignRight)
        splits.addWidget(self.val_start_edit, 0, 1)
        splits.addWidget(self._split_labels[1], 1, 0, QtCore.Qt.AlignmentFlag.AlignRight)
        splits.addWidget(self.test_start_edit, 1, 1)
        splits.setColumnStretch(1, 1)
        box = QtWidgets.QVBoxLayout(self)
        box.addLayout(grid)
        box.addWidget(self.load_button)
        box.addWidget(self.progress)
        box.addWidget(self.note)
        box.addWidget(self.warning_box)
        box.addLayout(splits)

        self.sample_radio.setChecked(True)
        self.kind_group.buttonToggled.connect(self._on_kind_toggled)
        self.csv_button.clicked.connect(self.open_csv_requested)
        self.load_button.clicked.connect(self._on_load_clicked)
        self.ticker_edit.returnPressed.connect(self._on_load_clicked)
        self.sample_combo.activated.connect(self._on_sample_activated)
        for edit in (self.csv_edit, self.ticker_edit, self.start_edit, self.end_edit,
                     self.val_start_edit, self.test_start_edit):
            edit.textChanged.connect(self.changed)
        for edit in (self.val_start_edit, self.test_start_edit):
            edit.textChanged.connect(self.split_changed)
        for combo in (self.sample_combo, self.interval_combo, self.date_order_combo):
            combo.currentIndexChanged.connect(self.changed)
        self.adj_close_check.toggled.connect(self.changed)
        self._sync_enabled()

    # -- public -------------------------------------------------------------------------------
    def kind(self) -> str:
        button = self.kind_group.checkedButton()
        return str(button.property("kind")) if button is not None else C.SOURCE_SAMPLE

    def spec(self) -> DataSpec:
        """The source described by the form.

        Raises
        ------
        ConfigError
            A field is missing or not valid (the message says which and why).
        """
        kind = self.kind()
        start = _check_date(self.start_edit.text(), "From")
        end = _check_date(self.end_edit.text(), "To")
        if start and end and start > end:
            raise ConfigError(f"From {start} is after To {end}")
        interval = "1d"
        date_format = None
        if kind == C.SOURCE_SAMPLE:
            value = str(self.sample_combo.currentData() or C.DEFAULT_SAMPLE)
        elif kind == C.SOURCE_CSV:
            value = self.csv_edit.text().strip()
            if not value:
                raise ConfigError("choose a CSV file first (File > Open CSV...)")
            date_format = self.date_format()
        else:
            value = self.ticker_edit.text().strip().upper()
            if not value:
                raise ConfigError("type a ticker symbol first, e.g. AAPL")
            if any(ch.isspace() for ch in value):
                raise ConfigError(f"ticker {value!r}: a symbol has no spaces")
            interval = str(self.interval_combo.currentData())
        return DataSpec(source=f"{kind}:{value}", start=start, end=end, interval=interval,
                        use_adj_close=self.adj_close_check.isEnabled()
                        and self.adj_close_check.isChecked(),
                        date_format=date_format)

    def set_spec(self, spec: DataSpec) -> None:
        """Show ``spec`` in the form (without emitting load_requested)."""
        kind, value = spec.kind, spec.value
        if kind == C.SOURCE_SAMPLE:
            _select(self.sample_combo, value.upper())
            self.sample_radio.setChecked(True)
        elif kind == C.SOURCE_CSV:
            self.csv_edit.setText(value)
            self.csv_radio.setChecked(True)
        else:
            self.ticker_edit.setText(value)
            _select(self.interval_combo, spec.interval)
            self.ticker_radio.setChecked(True)
        self.start_edit.setText(spec.start or "")
        self.end_edit.setText(spec.end or "")
        self.adj_close_check.setChecked(spec.use_adj_close)
        self.set_date_format(spec.date_format)
        self._sync_enabled()

    def date_format(self) -> str | None:
        """The Dates choice as a DataSpec.date_format (None: auto)."""
        return str(self.date_order_combo.currentData() or "") or None

    def set_date_format(self, date_format: str | None) -> None:
        """Choose ``date_format`` (None: auto); a strftime format (from the command line or
        the settings) gets an entry of its own."""
        value = date_format or ""
        if self.date_order_combo.findData(value) < 0:
            self.date_order_combo.addItem(f"format {value}", value)
        _select(self.date_order_combo, value)

    def split_spec(self) -> SplitSpec:
        """The validation and test starts over the split settings without a field
        (raises ConfigError with the reason when a date is not valid)."""
        val = _check_date(self.val_start_edit.text(), "Validation from")
        test = _check_date(self.test_start_edit.text(), "Test from")
        if val and test and val >= test:
            raise ConfigError(f"validation from {val} must come before test from {test}")
        return self._split.replace(val_start=val, test_start=test)

    def set_split(self, split: SplitSpec) -> None:
        """Show ``split``'s validation and test starts (empty: auto); its other fields are
        kept for :meth:`split_spec`."""
        self._split = split
        self.val_start_edit.setText(split.val_start or "")
        self.test_start_edit.setText(split.test_start or "")

    def set_split_enabled(self, enabled: bool) -> None:
        """Enable the validation and test starts (a walk-forward run has no such split:
        each fold holds out its own validation bars)."""
        for edit in (self.val_start_edit, self.test_start_edit):
            edit.setEnabled(enabled)
        for label in self._split_labels:
            label.setEnabled(enabled)
            label.setToolTip("" if enabled else "Not used by walk-forward evaluation: each "
                             "fold holds out its own validation bars (Model box)")

    def set_csv_path(self, path: str) -> None:
        """Select the CSV source with ``path``."""
        self.csv_edit.setText(path)
        self.csv_radio.setChecked(True)

    def set_busy(self, busy: bool) -> None:
        """Show the busy bar and lock the Load button while a load runs."""
        self.progress.setVisible(busy)
        self.load_button.setEnabled(not busy)

    def set_note(self, text: str) -> None:
        self.note.setText(text)

    def warning_text(self) -> str:
        """The warnings shown under the note (empty: none)."""
        return self.warning_label.text() if self.warning_box.isVisibleTo(self) else ""

    def show_warnings(self, warnings: Sequence[str]) -> None:
        """Show what a load repaired or assumed, one line each (none: hide the line)."""
        lines = [str(w) for w in warnings if str(w).strip()]
        self.warning_label.setText("\n".join(lines))
        self.warning_box.setVisible(bool(lines))

    def attach(self, controller: Any) -> None:
        """Follow ``controller``'s loads (a RunController): busy while one runs, and a note
        on what was loaded, what failed or that it stopped, with the load's warnings."""
        controller.follow(self, "load_started", "prices_loaded", "load_failed", "load_ended")

    @QtCore.Slot(object)
    def _on_load_started(self, spec: DataSpec) -> None:
        self.set_busy(True)
        self.set_note(wording.loading_text(spec))
        self.show_warnings(())

    @QtCore.Slot(object)
    def _on_prices_loaded(self, loaded: Any) -> None:
        self._warnings = tuple(loaded.warnings)
        self.set_note(wording.loaded_text(loaded))
        self.show_warnings(self._warnings)
        self.prices_loaded.emit(loaded)

    @QtCore.Slot(object, object)
    def _on_load_failed(self, failure: Any, _spec: DataSpec) -> None:
        self.set_note(failure.message)

    @QtCore.Slot(str)
    def _on_load_ended(self, how: str) -> None:
        if how == CANCELLED:
            self.set_note("loading stopped")
        if how != FINISHED:  # the prices shown are still those of the last load
            self.show_warnings(self._warnings)
        self.set_busy(False)

    # -- internals ----------------------------------------------------------------------------
    def _warning_line(self) -> tuple[QtWidgets.QWidget, QtWidgets.QLabel]:
        """A warning icon beside a word-wrapped label, hidden while there is nothing to say."""
        line = QtWidgets.QWidget()
        line.setObjectName("data_warnings")
        icon = QtWidgets.QLabel()
        size = self.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_SmallIconSize)
        icon.setPixmap(self.style().standardIcon(
            QtWidgets.QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(size, size))
        icon.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)
        label = QtWidgets.QLabel()
        label.setWordWrap(True)
        label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setStyleSheet(f"color: {_WARNING_COLOUR};")
        label.setToolTip("What loading the data repaired or assumed (also in the Log tab); "
                         "cleared by the next load")
        row = QtWidgets.QHBoxLayout(line)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(icon, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        row.addWidget(label, 1)
        line.setVisible(False)
        return line, label

    def _sync_enabled(self) -> None:
        kind = self.kind()
        self.sample_combo.setEnabled(kind == C.SOURCE_SAMPLE)
        self.csv_edit.setEnabled(kind == C.SOURCE_CSV)
        self.adj_close_check.setEnabled(kind in (C.SOURCE_CSV, C.SOURCE_SAMPLE))
        self.date_order_label.setEnabled(kind == C.SOURCE_CSV)
        self.date_order_combo.setEnabled(kind == C.SOURCE_CSV)
        self.ticker_edit.setEnabled(kind == C.SOURCE_YAHOO)
        self.interval_combo.setEnabled(kind == C.SOURCE_YAHOO)

    def _on_kind_toggled(self, _button: QtWidgets.QAbstractButton, checked: bool) -> None:
        if checked:
            self._sync_enabled()
            self.changed.emit()

    def _on_sample_activated(self, _index: int) -> None:
        self.sample_radio.setChecked(True)

    def _on_load_clicked(self) -> None:
        try:
            spec = self.spec()
        except ConfigError as exc:
            self.set_note(str(exc))
            return
        self.load_requested.emit(spec)


def size_text(kind: str, hidden: int, layers: int, target: str = C.TARGET_RETURN,
              heads: int = 4) -> tuple[str, str]:
    """The parameter count shown with the network choice and its tooltip: e.g.
    ``"39,809 parameters"``, and for a GRU or a plain RNN its size against an LSTM of the
    same hidden size and layers (``"0.75x an LSTM"``). Empty where it cannot be counted."""
    try:
        from sandbox.sizes import count_parameters, n_features_for
    except ImportError:  # pragma: no cover - the counting module is part of the package
        return "", ""
    try:
        n = n_features_for(target)
        count = count_parameters(kind, hidden, layers, n, heads=heads)
        lstm = count_parameters(C.LSTM, hidden, layers, n) if kind in (C.GRU, C.RNN) else 0
    except (ValueError, KeyError, ConfigError):
        return "", ""
    text = f"{count:,} parameters"
    gates = {C.GRU: "A GRU has 3 weight blocks per layer to the LSTM's 4 (no separate "
                    "cell state, no output gate): about 3/4 of its parameters",
             C.RNN: "A plain RNN has 1 weight block per layer to the LSTM's 4: about 1/4 of "
                    "its parameters, and no gate to keep a memory from fading"}
    tip = (f"Trainable weights and biases of this network with {n} features per bar "
           "(the same for every window length; the window sets how many bars it reads)")
    if lstm:
        text += f"{SIZE_SEPARATOR}{count / lstm:.2f}x an LSTM"
        tip += (f". An LSTM of the same size ({hidden} hidden, {layers} layer"
                f"{'s' if layers > 1 else ''}) has {lstm:,}. {gates[kind]}")
    elif kind == C.TRANSFORMER:
        tip += (f". Encoder: width d_model {hidden}, {layers} layer{'s' if layers > 1 else ''}, "
                f"{heads} head{'s' if heads > 1 else ''} (the heads split the width and add "
                "no parameters), feed-forward 2 x d_model")
    return text, tip + "."


#: between the parameter count and the size against an LSTM
SIZE_SEPARATOR = " \u00b7 "
#: the Evaluation choice's words
SINGLE_SPLIT, WALK_FORWARD_LABEL = "Single split", "Walk-forward"
_WINDOW_MODE_LABELS = {C.EXPANDING: "expanding", C.ROLLING: "rolling"}
WARM_NOTE = ("Warm-started folds run one after another (each starts from the fold before's "
             "weights); cold folds train from scratch, in parallel.")


class EvaluationFields(QtWidgets.QWidget):
    """How a run is judged: on one train / validation / test split (the Data box's dates), or
    walk-forward: retrain every N bars on the bars seen so far and predict the next N, from
    a start date (or fraction of the rows) on.

    Signals
    -------
    changed()
        Any field changed.
    """

    changed = Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode_combo = _combo({"split": SINGLE_SPLIT, C.WALK_FORWARD: WALK_FORWARD_LABEL},
                                 "Single split: train once, judge on the validation and test "
                                 "splits of the Data box. Walk-forward: retrain every N bars on "
                                 "the bars seen so far and predict the next N, from the start "
                                 "on; the predictions of all folds are judged as one "
                                 "out-of-sample series")
        self.start_edit = _DateEdit("0.7 of the rows", "First bar predicted out of sample: a "
                                    "date (YYYY-MM-DD) or a fraction of the rows such as 0.7 "
                                    "(resolved to a date once, when the run starts, and "
                                    "written into run.json)")
        self.every_spin = _spin(1, 1_000_000, "Bars each fold predicts before the model is "
                                              "trained again (63: about a quarter of daily bars)")
        self.every_spin.setSuffix(" bars")
        self.window_combo = _combo(_WINDOW_MODE_LABELS, "expanding: each fold trains on every "
                                                        "bar before it; rolling: on the last "
                                                        "N bars only")
        self.train_spin = _spin(3, 10_000_000, "Rolling: bars of training data per fold, the "
                                               "validation bars included", step=100)
        self.train_spin.setSuffix(" bars")
        self.val_spin = _spin(1, 1_000_000, "Bars at the end of each fold's training data held "
                                            "out for early stopping", step=21)
        self.val_spin.setSuffix(" bars")
        self.warm_check = QtWidgets.QCheckBox("Warm start")
        self.warm_check.setToolTip("Each fold after the first starts from the previous fold's "
                                   "weights and trains at most the warm epochs (off: every "
                                   "fold from scratch with its own seed)")
        self.warm_spin = _spin(1, 1_000_000, "Most epochs a warm-started fold trains")
        self.warm_spin.setSuffix(" epochs")
        self.note = _note(WARM_NOTE)
        self.fields = QtWidgets.QWidget()
        form = _form()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Predict from", self.start_edit)
        form.addRow("Retrain every", self.every_spin)
        form.addRow("Training", _pair(self.window_combo, "of", self.train_spin))
        form.addRow("Validation", self.val_spin)
        form.addRow(self.warm_check, self.warm_spin)
        form.addRow(self.note)
        self.fields.setLayout(form)
        outer = _form()
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addRow("Evaluation", self.mode_combo)
        outer.addRow(self.fields)
        self.setLayout(outer)
        self._extra = WalkForwardSpec()
        self.set_spec(WalkForwardSpec(), walk_forward=False)
        self.mode_combo.currentIndexChanged.connect(self._on_edited)
        self.window_combo.currentIndexChanged.connect(self._on_edited)
        self.warm_check.toggled.connect(self._on_edited)
        self.start_edit.textChanged.connect(self.changed)
        for spin in (self.every_spin, self.train_spin, self.val_spin, self.warm_spin):
            spin.valueChanged.connect(self.changed)

    def is_walk_forward(self) -> bool:
        return self.mode_combo.currentData() == C.WALK_FORWARD

    def set_spec(self, spec: WalkForwardSpec | None, *, walk_forward: bool | None = None) -> None:
        """Show ``spec``'s fields; walk-forward is chosen when ``walk_forward`` says so (by
        default: when a spec is given)."""
        on = spec is not None if walk_forward is None else walk_forward
        spec = spec or self._extra
        self._extra = spec
        _select(self.mode_combo, C.WALK_FORWARD if on else "split")
        start = spec.start
        self.start_edit.setText("" if start == WalkForwardSpec().start else
                                f"{start:g}" if isinstance(start, float) else str(start))
        self.every_spin.setValue(spec.retrain_every)
        _select(self.window_combo, spec.window_mode)
        self.train_spin.setValue(spec.train_length or max(1000, spec.val_length * 4))
        self.val_spin.setValue(spec.val_length)
        self.warm_check.setChecked(spec.warm_start)
        self.warm_spin.setValue(spec.warm_epochs)
        self._sync()

    def spec(self) -> WalkForwardSpec:
        """The walk-forward fields as a spec, whether or not walk-forward is chosen (raises
        ConfigError with the reason when a field is not valid)."""
        rolling = self.window_combo.currentData() == C.ROLLING
        return WalkForwardSpec(
            start=self._start(), retrain_every=self.every_spin.value(),
            window_mode=str(self.window_combo.currentData()),
            train_length=self.train_spin.value() if rolling else None,
            val_length=self.val_spin.value(), warm_start=self.warm_check.isChecked(),
            warm_epochs=self.warm_spin.value())

    def walk_forward(self) -> WalkForwardSpec | None:
        """The spec when walk-forward is chosen, None for a single split."""
        return self.spec() if self.is_walk_forward() else None

    def _start(self) -> str | float:
        text = self.start_edit.text().strip()
        if not text:
            return WalkForwardSpec().start
        try:
            value = float(text)
        except ValueError:
            date = _check_date(text, "Predict from")
            assert date is not None
            return date
        if not 0 < value < 1:
            raise ConfigError(f"predict from {text!r}: a date (YYYY-MM-DD) or a fraction of "
                              "the rows between 0 and 1")
        return value

    def _sync(self) -> None:
        self.fields.setVisible(self.is_walk_forward())
        self.train_spin.setEnabled(self.window_combo.currentData() == C.ROLLING)
        self.warm_spin.setEnabled(self.warm_check.isChecked())

    def _on_edited(self, *_args: Any) -> None:
        self._sync()
        self.changed.emit()


# ============================================================================== Model =====
class ModelPanel(QtWidgets.QGroupBox):
    """Network shape and training settings.

    Under the target, a line says which horizon the model forecasts and whether the fill
    (:meth:`set_fill`, the Strategy panel's) trades that span; a caution replaces it when
    the target is the next close-to-close return and the fill is the next open.
    """

    changed = Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Model", parent)
        self.kind_combo = _combo({k: _KIND_LABELS.get(k, k.upper()) for k in C.MODEL_KINDS},
                                 "Network: LSTM, GRU or plain RNN (recurrent: a memory carried "
                                 "bar to bar), or a small Transformer encoder (attention: "
                                 "looks every bar of the window up at once)")
        #: the trainable parameters of the network as set, beside the choice
        self.size_label = _note()
        self.size_label.setObjectName("parameter_count")
        self.window_spin = _spin(2, C.MAX_WINDOW, "Bars per input window (features of t-W+1 .. t)")
        self.hidden_spin = _spin(1, C.MAX_HIDDEN, "Hidden units per recurrent layer")
        self.layers_spin = _spin(1, C.MAX_LAYERS, "Stacked recurrent layers")
        self.heads_spin = _spin(1, C.MAX_HEADS, "Attention heads of the Transformer; its width "
                                                "(d_model) must be a multiple of them")
        self.dropout_spin = _dspin(0.0, 0.999, 0.05, 3,
                                   "Dropout between recurrent layers (not used with 1 layer)")
        self.epochs_spin = _spin(1, 1_000_000, "Most epochs; early stopping usually ends sooner")
        self.patience_spin = _spin(0, 1_000_000, "Epochs without a better validation loss before "
                                            "stopping (off = never stop early)")
        self.patience_spin.setSpecialValueText("off")
        self.batch_spin = _spin(1, 10_000_000, "Windows per optimiser step", step=16)
        self.lr_edit = QtWidgets.QLineEdit()
        self.lr_edit.setToolTip("Adam learning rate, e.g. 0.001 or 1e-3")
        self.seed_spin = _spin(0, 2**31 - 1, "Random seed: the same seed, data and settings "
                                             "give the same predictions")
        self.seeds_spin = _spin(1, C.MAX_ENSEMBLE_SEEDS,
                                "Models to train, each with its own seed (seed, seed + 1, ...), "
                                "in parallel processes. With 2 or more the chart shows their "
                                "averaged forecast with the range of the single seeds, and the "
                                "metrics their mean \u00b1 std")
        self.seeds_spin.setValue(1)
        self._seeds_tip = self.seeds_spin.toolTip()
        self.target_combo = _combo(_TARGET_LABELS, "What the network forecasts: the next "
                                                   "close-to-close log return (default); the "
                                                   "traded return, the span the Strategy's fill "
                                                   "holds a position (open t+1 \u2192 open t+2 "
                                                   "with next open, close t \u2192 close t+1 with "
                                                   "same close), fixed when the model is "
                                                   "trained; or, for teaching, the next close "
                                                   "level")
        # the labels are long: the box may show them cut, its list shows them whole
        self.target_combo.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.target_combo.setMinimumContentsLength(14)
        self.target_note = _note()
        self.target_caution = _note(TARGET_CAUTION)
        self.target_caution.setForegroundRole(QtGui.QPalette.ColorRole.WindowText)
        self.target_caution.setStyleSheet("color: #b35c00;")
        self.target_caution.setToolTip(_CAUTION_TIP)
        self._fill = C.FILL_NEXT_OPEN
        form = _form()
        form.addRow("Network", self.kind_combo)
        form.addRow("", self.size_label)  # under the choice, as narrow as the column
        form.addRow("Window", self.window_spin)
        self.hidden_label = QtWidgets.QLabel("Hidden")
        form.addRow(self.hidden_label, self.hidden_spin)
        form.addRow("Layers", self.layers_spin)
        self.heads_label = QtWidgets.QLabel("Heads")
        form.addRow(self.heads_label, self.heads_spin)
        form.addRow("Dropout", self.dropout_spin)
        form.addRow("Target", self.target_combo)
        form.addRow(self.target_note)
        form.addRow(self.target_caution)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Patience", self.patience_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Learning rate", self.lr_edit)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Seeds", self.seeds_spin)
        self.evaluation = EvaluationFields()
        form.addRow(self.evaluation)
        self.setLayout(form)
        self._form = form
        self._extra_train: TrainConfig = TrainConfig()  # fields without a widget (threads, ...)
        self.set_configs(ModelConfig(), TrainConfig())
        for spin in (self.window_spin, self.hidden_spin, self.layers_spin, self.heads_spin,
                     self.epochs_spin,
                     self.patience_spin, self.batch_spin, self.seed_spin, self.seeds_spin):
            spin.valueChanged.connect(self.changed)
        self.dropout_spin.valueChanged.connect(self.changed)
        self.lr_edit.textChanged.connect(self.changed)
        for combo in (self.kind_combo, self.target_combo):
            combo.currentIndexChanged.connect(self.changed)
        self.target_combo.currentIndexChanged.connect(self._sync_target_note)
        self.evaluation.changed.connect(self.changed)
        self.evaluation.changed.connect(self._sync_seeds)
        self.changed.connect(self._sync_kind)
        self._sync_target_note()
        self._sync_kind()
        self._sync_seeds()

    def set_fill(self, fill: str) -> None:
        """The fill the strategy trades with: what the target's horizon is compared to."""
        self._fill = fill
        self._sync_target_note()

    def _sync_target_note(self) -> None:
        note = target_note(str(self.target_combo.currentData()), self._fill)
        caution = note == TARGET_CAUTION
        self.target_note.setText("" if caution else note)
        self.target_note.setVisible(not caution)
        self.target_caution.setVisible(caution)

    def set_configs(self, model: ModelConfig, train: TrainConfig) -> None:
        """Show ``model`` and ``train`` in the form."""
        _select(self.kind_combo, model.kind)
        self.window_spin.setValue(model.window)
        self.hidden_spin.setValue(model.hidden)
        self.layers_spin.setValue(model.layers)
        self.heads_spin.setValue(model.heads)
        self.dropout_spin.setValue(model.dropout)
        _select(self.target_combo, model.target)
        self.epochs_spin.setValue(train.epochs)
        self.patience_spin.setValue(train.patience)
        self.batch_spin.setValue(train.batch_size)
        self.lr_edit.setText(f"{train.lr:g}")
        self.seed_spin.setValue(train.seed)
        self._extra_train = train
        self._sync_kind()

    def kind(self) -> str:
        """The network kind chosen."""
        return str(self.kind_combo.currentData())

    def _sync_kind(self) -> None:
        """Heads for the Transformer only; Hidden named as its width there; the parameter
        count of the network as set."""
        transformer = self.kind() == C.TRANSFORMER
        self._form.setRowVisible(self.heads_spin, transformer)
        self.hidden_label.setText("Width (d_model)" if transformer else "Hidden")
        self.hidden_spin.setToolTip(
            "The Transformer's model width d_model: each bar's features are embedded into "
            "this many numbers (a multiple of Heads)" if transformer
            else "Hidden units per recurrent layer")
        self.layers_spin.setToolTip("Stacked encoder layers" if transformer
                                    else "Stacked recurrent layers")
        self.dropout_spin.setToolTip(
            "Dropout inside each encoder layer" if transformer
            else "Dropout between recurrent layers (not used with 1 layer)")
        text, tip = size_text(self.kind(), self.hidden_spin.value(), self.layers_spin.value(),
                              str(self.target_combo.currentData()), self.heads_spin.value())
        self.size_label.setText(text)
        self.size_label.setToolTip(tip)
        self.size_label.setVisible(bool(text))

    def _sync_seeds(self) -> None:
        walk = self.evaluation.is_walk_forward()
        self.seeds_spin.setEnabled(not walk)
        self.seeds_spin.setToolTip(
            "Walk-forward trains one model per fold (one seed); Seeds applies to a single "
            "split" if walk else self._seeds_tip)

    def seeds(self) -> int:
        """Models to train (a seed ensemble when > 1; one with walk-forward evaluation)."""
        if self.evaluation.is_walk_forward():
            return 1
        return self.seeds_spin.value()

    def set_seeds(self, seeds: int) -> None:
        self.seeds_spin.setValue(max(1, min(C.MAX_ENSEMBLE_SEEDS, int(seeds))))

    def model_config(self) -> ModelConfig:
        """The network settings (raises ConfigError with the reason when invalid)."""
        return ModelConfig(
            kind=str(self.kind_combo.currentData()),
            window=self.window_spin.value(),
            hidden=self.hidden_spin.value(),
            layers=self.layers_spin.value(),
            dropout=round(self.dropout_spin.value(), 4),
            target=str(self.target_combo.currentData()),
            heads=self.heads_spin.value(),
        )

    def train_config(self) -> TrainConfig:
        """The training settings (raises ConfigError with the reason when invalid)."""
        text = self.lr_edit.text().strip()
        try:
            lr = float(text)
        except ValueError:
            raise ConfigError(f"learning rate {text!r}: not a number (e.g. 0.001 or 1e-3)"
                              ) from None
        return self._extra_train.replace(
            epochs=self.epochs_spin.value(),
            patience=self.patience_spin.value(),
            batch_size=self.batch_spin.value(),
            lr=lr,
            seed=self.seed_spin.value(),
        )


# ============================================================================== Strategy ==
class StrategyPanel(QtWidgets.QGroupBox):
    """How predictions become positions and how they are filled (paper trading only),
    and the bars per year the Sharpe ratio and CAGR are annualised with.

    Signals
    -------
    changed()
        Any field changed.
    fill_changed(str)
        The fill changed (the Model panel says whether its target's horizon matches).
    """

    changed = Signal()
    fill_changed = Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Strategy", parent)
        self.strategy_combo = _combo(_STRATEGY_LABELS, "long / flat: long when the predicted "
                                                       "return is above the threshold, else "
                                                       "flat; long / short: +1 / -1 outside a "
                                                       "dead band of +-threshold")
        self.threshold_spin = _dspin(0.0, 10_000.0, 1.0, 2, "Threshold (dead band) on the "
                                                            "predicted return, in basis points",
                                     suffix=" bps")
        self.cost_spin = _dspin(0.0, 10_000.0, 0.5, 2, "Cost per unit of position change, in "
                                                       "basis points (charged to every "
                                                       "predictor alike)", suffix=" bps")
        self.fill_combo = _combo(_FILL_LABELS, "next open: decided at close t, held from open "
                                               "t+1 to open t+2 (default, tradable); same "
                                               "close: held close t to close t+1 (textbook)")
        self.fill_note = _note()
        self.periods_spin = BarsPerYearSpin(
            "Bars per year the Sharpe ratio and CAGR are annualised with. auto: measured "
            "from the spacing of the bars (about 252 for daily exchange bars, 365 for crypto, "
            "52 weekly, 12 monthly); the measured value is shown in the Metrics tab. Type a "
            "number to override it")
        form = _form()
        form.addRow("Rule", self.strategy_combo)
        form.addRow("Threshold", self.threshold_spin)
        form.addRow("Cost", self.cost_spin)
        form.addRow("Fill", self.fill_combo)
        form.addRow(self.fill_note)
        form.addRow("Bars/year", self.periods_spin)
        self.setLayout(form)
        self._extra = StrategyConfig()
        self.set_config(StrategyConfig())
        self._sync_fill_note()
        self.strategy_combo.currentIndexChanged.connect(self.changed)
        self.fill_combo.currentIndexChanged.connect(self._on_fill_changed)
        self.threshold_spin.valueChanged.connect(self.changed)
        self.cost_spin.valueChanged.connect(self.changed)
        self.periods_spin.valueChanged.connect(self.changed)

    def set_config(self, strategy: StrategyConfig) -> None:
        _select(self.strategy_combo, strategy.strategy)
        self.threshold_spin.setValue(strategy.threshold_bps)
        self.cost_spin.setValue(strategy.cost_bps)
        _select(self.fill_combo, strategy.fill)
        self._extra = strategy
        self.periods_spin.set_periods(strategy.periods_per_year)

    def fill(self) -> str:
        return str(self.fill_combo.currentData())

    def set_measured_periods(self, periods: float | None) -> None:
        """Show the bars per year measured from the loaded data in the "auto" text (None:
        no data)."""
        self.periods_spin.set_measured(periods)

    def strategy_config(self) -> StrategyConfig:
        """The strategy settings (raises ConfigError with the reason when invalid)."""
        periods = self.periods_spin.periods()
        shown = self._extra.periods_per_year
        if periods is not None and shown is not None and self.periods_spin.valueFromText(
                self.periods_spin.textFromValue(shown)) == periods:
            periods = shown  # the spin box rounds: keep the value it was given
        return self._extra.replace(
            strategy=str(self.strategy_combo.currentData()),
            threshold_bps=round(self.threshold_spin.value(), 6),
            cost_bps=round(self.cost_spin.value(), 6),
            fill=self.fill(),
            periods_per_year=periods,
        )

    def _sync_fill_note(self) -> None:
        self.fill_note.setText(_FILL_NOTES.get(self.fill(), ""))

    def _on_fill_changed(self, _index: int) -> None:
        self._sync_fill_note()
        self.fill_changed.emit(self.fill())
        self.changed.emit()


def csv_filters() -> str:
    """File dialog filters for price files."""
    return "CSV files (*.csv *.txt);;All files (*)"


class SidePanel(QtWidgets.QWidget):
    """The Data, Model and Strategy panels in one scrolling column, with the reason the form
    cannot train and the Train and Stop buttons pinned under it (in sight however short the
    window is)."""

    def __init__(self, samples: list[str], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.data_panel = DataPanel(samples)
        self.model_panel = ModelPanel()
        self.strategy_panel = StrategyPanel()
        self.form_error = QtWidgets.QLabel()
        self.form_error.setWordWrap(True)
        self.form_error.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.form_error.setStyleSheet("color: #c62828;")
        self.form_error.setVisible(False)
        self.train_button = QtWidgets.QPushButton("Train")
        self.train_button.setToolTip("Train the model on the loaded data (Ctrl+R)")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setToolTip("Stop training or loading (Esc)")
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.stop_button)

        forms = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(forms)
        column.setContentsMargins(6, 6, 6, 6)
        for widget in (self.data_panel, self.model_panel, self.strategy_panel):
            column.addWidget(widget)
        column.addStretch(1)
        self.scroll = vertical_scroll(forms)
        # as narrow as the forms can be (a short, narrow window), as wide as they ask
        self._scrollbar = self.scroll.verticalScrollBar().sizeHint().width()
        self.scroll.setMinimumWidth(forms.minimumSizeHint().width() + self._scrollbar)
        pinned = QtWidgets.QVBoxLayout()
        pinned.setContentsMargins(6, 4, 6, 6)
        pinned.addWidget(self.form_error)
        pinned.addLayout(buttons)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.scroll, 1)
        layout.addLayout(pinned)
        self.strategy_panel.fill_changed.connect(self.model_panel.set_fill)
        self.model_panel.set_fill(self.strategy_panel.fill())
        self.data_panel.prices_loaded.connect(self._on_prices_loaded)
        self.model_panel.evaluation.changed.connect(self._sync_split_fields)
        self._sync_split_fields()

    def _sync_split_fields(self) -> None:
        """The Data box's split dates apply to a single split only."""
        self.data_panel.set_split_enabled(not self.model_panel.evaluation.is_walk_forward())

    def sizeHint(self) -> QtCore.QSize:
        hint = super().sizeHint()
        forms = self.scroll.widget().sizeHint().width() + self._scrollbar
        return QtCore.QSize(max(hint.width(), forms), hint.height())

    def make_dock(self, parent: QtWidgets.QWidget) -> QtWidgets.QDockWidget:
        """This panel in a closable, movable dock (left or right) titled "Settings"."""
        dock = QtWidgets.QDockWidget("Settings", parent)
        dock.setObjectName("settings_dock")
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setAllowedAreas(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
                             | QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        dock.setWidget(self)
        return dock

    def set_state(self, *, can_train: bool, can_stop: bool, locked: bool,
                  loading: bool) -> None:
        """Enable Train and Stop; ``locked`` (training or a sweep runs) keeps the data and
        the model as they are; ``loading`` shows the data panel busy."""
        self.train_button.setEnabled(can_train)
        self.stop_button.setEnabled(can_stop)
        self.data_panel.setEnabled(not locked)
        self.data_panel.set_busy(loading)
        self.model_panel.setEnabled(not locked)

    def show_form_error(self, error: str | None) -> None:
        """Say why the form cannot train (None: it can)."""
        self.form_error.setText(f"Cannot train: {error}" if error else "")
        self.form_error.setVisible(error is not None)

    def set_run(self, config: RunConfig, seeds: int) -> None:
        """Fill the forms with ``config`` (its data, split, model, training and strategy) and
        the number of seeds."""
        self.data_panel.set_spec(config.data)
        self.data_panel.set_split(config.split)
        self.model_panel.set_configs(config.model, config.train)
        self.model_panel.set_seeds(seeds)
        self.model_panel.evaluation.set_spec(config.walk_forward)
        self.strategy_panel.set_config(config.strategy)

    def check(self, index: pd.DatetimeIndex | None = None) -> str | None:
        """Show and return why the form cannot train on the loaded bars of ``index`` (None:
        it can)."""
        error = None
        try:
            window = self.model_panel.model_config().window
            self.model_panel.train_config()
            split = self.data_panel.split_spec()
            self.strategy_panel.strategy_config()
            walk = self.model_panel.evaluation.walk_forward()
            if walk is not None and index is not None:
                model = self.model_panel.model_config()
                walk_forward_plan(index, walk, window=window, target=model.target,
                                  fill=self.strategy_panel.strategy_config().fill)
            elif index is not None:
                bars = len(index)
                if window >= bars:
                    raise ConfigError(f"window {window}: longer than the {bars:,} bars "
                                      "loaded; use a shorter window or more data")
                model = self.model_panel.model_config()
                _check_split_dates(index[window - 1:], split, window=window, n_bars=bars,
                                   fill=self.strategy_panel.strategy_config().fill,
                                   target=model.target)
        except ConfigError as exc:
            error = str(exc)
        self.show_form_error(error)
        return error

    def _on_prices_loaded(self, loaded: Any) -> None:
        periods = loaded.periods_per_year  # measured by the load, on its worker thread
        if periods is None:  # prices that did not come through load_prices
            from sandbox.backtest import infer_periods_per_year

            periods = infer_periods_per_year(loaded.frame.index)
        self.strategy_panel.set_measured_periods(periods)

    def run_config(self, data: DataSpec, split: SplitSpec | None = None) -> RunConfig:
        """The form's settings on ``data``, split as the form says unless ``split`` is given
        (raises ConfigError when the form is invalid)."""
        if split is None:
            split = self.data_panel.split_spec()
        return RunConfig(data=data, split=split, model=self.model_panel.model_config(),
                         train=self.model_panel.train_config(),
                         strategy=self.strategy_panel.strategy_config(),
                         walk_forward=self.model_panel.evaluation.walk_forward())

    def adopt(self, config: RunConfig, seeds: list[int]) -> None:
        """Put a shown run's settings (trained with ``seeds``) in the forms, so Train
        reproduces it; the form's torch thread count stays (sweep runs use one each)."""
        try:
            threads = self.model_panel.train_config().threads
        except ConfigError:
            threads = None
        self.model_panel.set_configs(config.model, config.train.replace(threads=threads))
        self.model_panel.evaluation.set_spec(config.walk_forward)
        self.model_panel.seed_spin.setValue(min(seeds))
        self.model_panel.set_seeds(len(seeds))
        try:
            same = self.strategy_panel.strategy_config() == config.strategy
        except ConfigError:  # the panel holds an invalid edit: the run's strategy replaces it
            same = False
        if not same:
            self.strategy_panel.set_config(config.strategy)


#: the command line's words in the walk-forward planner's refusals, and the form's
_FLAG_WORDS = {"--val-length": "Validation", "--rolling": "rolling length",
               "--window": "Window"}


#: more folds than this are not planned in the form (the run plans them) nor drawn as lines
MAX_PLANNED_FOLDS = 2_000
MAX_PREVIEW_LINES = 300


def walk_forward_plan(index: pd.DatetimeIndex, walk: WalkForwardSpec, *, window: int,
                      target: str = C.TARGET_RETURN, fill: str = C.FILL_NEXT_OPEN) -> Any:
    """The folds a walk-forward run of ``walk`` will train on bars ``index``, planned as the
    run plans them (:func:`sandbox.walkforward.plan`; no training); ConfigError in the app's
    words when the spec cannot work on these bars; None when it has more than
    :data:`MAX_PLANNED_FOLDS` folds (the run checks those)."""
    from sandbox import walkforward

    try:
        first = walkforward.resolve_start(index, walk, window=window)
        if walkforward.fold_count(len(index) - first, walk.retrain_every) > MAX_PLANNED_FOLDS:
            return None  # planned when the run starts (a plan this long takes a while)
        return walkforward.plan(index, walk, window=window, target=target, fill=fill)
    except ConfigError as exc:
        text = str(exc)
        for flag, words in _FLAG_WORDS.items():
            text = text.replace(flag, words)
        raise ConfigError(text) from None


def _check_split_dates(rows: pd.DatetimeIndex, split: SplitSpec, *, window: int = 2,
                       n_bars: int = 0, fill: str = C.FILL_NEXT_OPEN,
                       target: str = C.TARGET_RETURN) -> None:
    """Refuse validation / test starts that leave a split of ``rows`` (the rows a model
    predicts) empty, out of order, or with fewer returns than training would accept
    (ConfigError with the reason, in the app's words)."""
    if split.val_start is None and split.test_start is None:
        return  # fractions always split in order
    from sandbox.features import split_labels

    try:
        labels = split_labels(rows, split)
    except ConfigError:
        given = (f"validation from {split.val_start}" if split.test_start is None
                 else f"test from {split.test_start}")
        raise ConfigError(f"{given} leaves the splits out of order on these bars; give both "
                          "the validation and the test start") from None
    first, last = f"{rows[0]:%Y-%m-%d}", f"{rows[-1]:%Y-%m-%d}"
    for name, what in ((C.TRAIN, "training"), (C.VAL, "validation"), (C.TEST, "test")):
        if not (labels == name).any():
            raise ConfigError(f"the {what} split is empty: the predicted bars run "
                              f"{first} .. {last}; move the validation or test start")
    from sandbox.errors import SplitTooSmall
    from sandbox.features import check_split_sizes

    try:  # the check training makes, said before Train rather than after it
        check_split_sizes(labels, split, window=window, n_bars=n_bars or len(rows),
                          name="the data", fill=fill, target=target)
    except SplitTooSmall as exc:
        raise ConfigError(wording.split_too_small_text(exc)) from None


def split_preview(index: pd.DatetimeIndex, window: int, split: SplitSpec) -> pd.Series | None:
    """Where the splits will fall for a model of ``window`` bars before any training: the
    split of each row it would predict, or None when the rows are too few to split."""
    from sandbox.features import split_labels

    rows = index[window - 1:]
    try:
        labels = split_labels(rows, split) if len(rows) >= 3 else None
    except ConfigError:
        labels = None
    return None if labels is None else pd.Series(labels, index=rows)


def walk_forward_preview(index: pd.DatetimeIndex, window: int, walk: WalkForwardSpec, *,
                         target: str = C.TARGET_RETURN, fill: str = C.FILL_NEXT_OPEN
                         ) -> tuple[pd.Series | None, list[pd.Timestamp]]:
    """Where a walk-forward run will predict, before any training: the rows a model predicts
    labelled train before its start and test from it (each fold's own validation bars are
    its last training bars), and the first bar of each fold (the chart's fold lines); None
    and no folds when the spec cannot work on these bars."""
    rows = index[window - 1:]
    if len(rows) < 3:
        return None, []
    try:
        planned = walk_forward_plan(index, walk, window=window, target=target, fill=fill)
    except ConfigError:
        return None, []
    if planned is None:
        return None, []
    first = planned.start - (window - 1)
    labels = np.empty(len(rows), dtype=object)  # filled by reference: cheap on 2M rows
    labels[:first] = C.TRAIN
    labels[first:] = C.TEST
    lines = planned.folds if len(planned.folds) <= MAX_PREVIEW_LINES else ()
    return pd.Series(labels, index=rows), [index[f.predict_start] for f in lines]


def tab_widget(pages: dict[str, QtWidgets.QWidget]) -> QtWidgets.QTabWidget:
    """The window's lower tabs, in order, titled by the keys of ``pages``."""
    tabs = QtWidgets.QTabWidget()
    tabs.setDocumentMode(True)
    for title, page in pages.items():
        tabs.addTab(page, title)
    return tabs


def chart_splitter(chart: QtWidgets.QWidget, tabs: QtWidgets.QWidget) -> QtWidgets.QSplitter:
    """The chart above the tabs, three to one; neither can be collapsed."""
    splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
    splitter.setObjectName("chart_splitter")
    splitter.addWidget(chart)
    splitter.addWidget(tabs)
    splitter.setStretchFactor(0, 3)
    splitter.setStretchFactor(1, 1)
    splitter.setSizes([620, 260])
    splitter.setChildrenCollapsible(False)
    return splitter


def make_action(parent: QtWidgets.QWidget, text: str, slot: Callable[..., Any],
                shortcut: Any = None, tip: str = "", *,
                checkable: bool = False) -> QtGui.QAction:
    """An action of ``parent`` calling ``slot``; its shortcut works while the menu bar is
    hidden too (the action is added to ``parent`` itself)."""
    action = QtGui.QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(QtGui.QKeySequence(shortcut))
        action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.setCheckable(checkable)
    action.triggered.connect(slot)
    parent.addAction(action)
    return action


def fill_menu_bar(bar: QtWidgets.QMenuBar,
                  menus: dict[str, Sequence[QtGui.QAction | None]]) -> None:
    """One menu per title, with its actions in order (None: a separator)."""
    for title, actions in menus.items():
        menu = bar.addMenu(title)
        for action in actions:
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
