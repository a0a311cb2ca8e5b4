"""The Metrics tab: the model beside every baseline, validation first.

While the user tunes, the tab shows the validation split. The test split is shown on request
(Show test results): the window asks the controller, which counts the look for this data
(:mod:`sandbox.looks`) and hands back the PSR and deflated Sharpe ratio shown under the
table. A sweep configuration that was not selected (``ShownRun.test_hidden``) never shows
its test split. A saved model applied to data (Load model) has its rows labelled by the
dates it was trained with: its train and val rows were seen in training and are captioned
so, and data without a test row says that there are no out-of-sample rows; data other than
its own (another symbol or bar size, :func:`sandbox.pipeline.foreign_data`) is named first.
A split with fewer than :data:`SMALL_SAMPLE` returns comes with a caution, and a column
whose values all tie marks no best.

Beside the figures stand the tests of significance of the split shown (its metrics'
``"significance"``, :mod:`sandbox.significance`): a "DM p" column on the forecasting
baselines' rows (the model against that baseline), the model's 95% intervals under its hit
rate, total return and Sharpe ratio, every test in plain words in the cells' tooltips, the
verdict of the tests after the verdict of the figures, and the cost-sensitivity plot
(:class:`~sandbox.ui.cost_plot.CostPlot`) under the table. Results without the tests
(saved before them) and splits without a row to test show none of it.

Pure helpers (:func:`table_rows`, :func:`best_rows`, :func:`verdict`, :func:`plan`) hold
the logic the tests check; :class:`MetricsView` only fills a ``QTableWidget`` and labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from sandbox import constants as C
from sandbox.errors import SPLIT_WORDS
from sandbox.evaluate import KEY_BASELINES, KEY_PERIODS_PER_YEAR, KEY_TARGET
from sandbox.export import SPLIT_TEST_START
from sandbox.pipeline import foreign_data
from sandbox.stats import mean_std
from sandbox.ui.controller import CANCELLED, has_test_rows, is_walk_forward, split_bounds
from sandbox.ui.cost_plot import CostPlot
from sandbox.ui.layout import vertical_scroll
from sandbox.ui.wording import (
    BASELINE_NAMES,
    SHOW_TEST_TIP,
    SHOW_VALIDATION_TIP,
    TRADING_BASELINES,
    WALK_FORWARD_COUNTING,
    bar_name,
    best_baseline,
    dm_cell,
    dm_phrase,
    dm_tip,
    echo_tip,
    evidence_lines,
    evidence_tip,
    finite_number,
    format_number,
    format_percent,
    hit_rate_tip,
    interval_text,
    look_text,
    periods_text,
    sharpe_tip,
    signed_percent,
    significance_of,
    spa_tip,
    strategy_text,
    tests_legend,
    tests_text,
    total_return_tip,
)

if TYPE_CHECKING:
    from sandbox.looks import LookEvidence
    from sandbox.results import ShownRun

__all__ = [
    "COLUMNS",
    "DM_COLUMN",
    "MEMBERS",
    "SMALL_SAMPLE",
    "Column",
    "MetricsView",
    "Plan",
    "best_rows",
    "column_tip",
    "finite_number",
    "format_number",
    "format_percent",
    "interval_cells",
    "member_cells",
    "plan",
    "seeds_verdict",
    "small_sample_text",
    "split_returns",
    "strategy_text",
    "table_rows",
    "verdict",
]

SHOW_TEST_TEXT = "Show test results"
SHOW_VALIDATION_TEXT = "Back to validation"


@dataclass(frozen=True)
class Column:
    """One metric column: key in metrics.json, header, which way is better, format."""

    key: str
    header: str
    better: str | None  # "low", "high" or None (no best)
    fmt: Callable[[float], str]
    tip: str


COLUMNS: tuple[Column, ...] = (
    Column(C.RMSE, "RMSE", "low", lambda x: f"{x:.6f}",
           "Root mean squared error of the predicted log return of the next bar "
           "(lower is better)"),
    Column(C.DIRECTIONAL_ACCURACY, "Direction", "high", lambda x: f"{x * 100:.1f}%",
           "Share of bars whose next move got the right sign (bars with no move left out; "
           "50% is a coin toss; empty for a predictor that always says 0)"),
    Column(C.TOTAL_RETURN, "Total return", "high", signed_percent,
           "Growth of the account over the split, after costs"),
    Column(C.SHARPE, "Sharpe", "high", lambda x: f"{x:.2f}",
           "Annualised Sharpe ratio of the strategy's per-bar returns, mean / std x sqrt(P) "
           "(no risk-free rate)"),
    Column(C.MAX_DRAWDOWN, "Max drawdown", "high", lambda x: f"{x * 100:.2f}%",
           "Worst fall from a running peak (closer to 0 is better)"),
    Column(C.N_TRADES, "Trades", None, lambda x: f"{x:,.0f}",
           "Bars on which the position changed (neither more nor fewer is better by itself, "
           "so no best is marked; costs already show in the returns)"),
)

#: row labels, in table order
PREDICTOR_LABELS: dict[str, str] = {
    C.MODEL: "model",
    C.RANDOM_WALK: "random walk",
    C.MOMENTUM: "momentum",
    C.DRIFT: "drift",
    C.BUY_AND_HOLD: "buy & hold",
}
BEST_MARK = "\u2605"  # a star after the best value of a column
#: the table's column of Diebold-Mariano p-values (after the metric columns, shown beside RMSE)
DM_COLUMN = len(COLUMNS)
DM_HEADER = "DM p"
DM_HEADER_TIP = ("Diebold-Mariano test of the model's squared errors against this row's "
                 "baseline (HLN-corrected): the two-sided p-value; \"better\" / \"worse\": "
                 "the model's errors are significantly smaller / larger at 5%. A large p means "
                 "the difference in RMSE could well be luck. Empty without the tests (results "
                 "saved before them)")
MEMBERS = "members"  # row key of a seed ensemble's members (mean +- std over the seeds)
PLUS_MINUS = "\u00b1"


def column_tip(col: Column, metrics: Mapping[str, Any], bar: str = "bar") -> str:
    """A column's header tooltip for one split's metrics: what a bar is here (``bar``, e.g.
    "hour", from the data's spacing), the target the RMSE measures, and the bars per year
    the Sharpe ratio was annualised with."""
    size = "" if bar == "bar" else f" (here a bar is one {bar.removesuffix(' bar')})"
    if col.key == C.RMSE:
        target = metrics.get(KEY_TARGET)
        what = ("the traded return (the log return the position earns: next open to the open "
                "after with the next-open fill, close to next close with the close fill)"
                if target == C.TARGET_TRADED
                else "the next bar's log return implied by the predicted close (price target)"
                if target == C.TARGET_PRICE else f"the log return of the next {bar}")
        return f"Root mean squared error of the predicted {what} (lower is better){size}"
    if col.key == C.SHARPE:
        return f"{col.tip}; {periods_text(metrics.get(KEY_PERIODS_PER_YEAR))}{size}"
    if col.key in (C.DIRECTIONAL_ACCURACY, C.N_TRADES):
        return col.tip + size
    return col.tip


def table_rows(metrics: Mapping[str, Any]) -> list[tuple[str, dict[str, float | None]]]:
    """(predictor, {column key: value or None}) for the model and every baseline."""
    rows = [(C.MODEL, dict(metrics.get(C.MODEL, {})))]
    baselines = metrics.get(KEY_BASELINES, {})
    for name in C.BASELINES:
        if name in baselines:
            rows.append((name, dict(baselines[name])))
    return [(name, {col.key: finite_number(values.get(col.key)) for col in COLUMNS})
            for name, values in rows]


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def best_rows(rows: list[tuple[str, dict[str, float | None]]]) -> dict[str, set[str]]:
    """Column key -> the predictors holding the best value (ties all marked).

    A column whose values all tie (e.g. 0.00 on every row of a split without trades, or a
    single value) has no best: nothing is marked there.
    """
    out: dict[str, set[str]] = {}
    for col in COLUMNS:
        if col.better is None:
            continue
        values = {name: v[col.key] for name, v in rows if v[col.key] is not None}
        if not values or _same(min(values.values()), max(values.values())):
            continue
        pick = min if col.better == "low" else max
        best = pick(values.values())
        out[col.key] = {name for name, v in values.items() if _same(v, best)}
    return out


def member_cells(members: Sequence[Mapping[str, Any]]
                 ) -> dict[str, tuple[float | None, float | None]]:
    """Column key -> (mean, sample std) over a seed ensemble's members (each a model metrics
    dict of one split); None where no member has a finite value (std: fewer than two)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for col in COLUMNS:
        stats = mean_std([m.get(col.key) for m in members])
        out[col.key] = (stats["mean"], stats["std"])
    return out


#: the model's intervals: key in the significance object and how an end is written, by column
_INTERVALS: dict[str, tuple[str, Callable[[float], str]]] = {
    C.DIRECTIONAL_ACCURACY: ("hit_rate_ci", lambda x: f"{x * 100:.1f}%"),
    C.TOTAL_RETURN: ("total_return_ci", lambda x: _short_percent(x)),
    C.SHARPE: ("sharpe_ci", lambda x: f"{x:+.2f}"),
}
_TIPS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    C.RMSE: echo_tip,
    C.DIRECTIONAL_ACCURACY: hit_rate_tip,
    C.TOTAL_RETURN: total_return_tip,
    C.SHARPE: sharpe_tip,
}


def interval_cells(sig: Mapping[str, Any] | None) -> dict[str, tuple[str, str]]:
    """Column key -> (the line under the model's figure, its tooltip in words) from a
    split's significance object: the hit rate's Wilson interval and the Pesaran-Timmermann
    test, the total return's and the Sharpe ratio's bootstrap intervals, the echo check by
    the RMSE. Empty without one."""
    if not sig:
        return {}
    out: dict[str, tuple[str, str]] = {}
    for key, tip in _TIPS.items():
        text = ""
        if key in _INTERVALS:
            field, fmt = _INTERVALS[key]
            text = interval_text(sig.get(field), fmt)
        words = tip(sig)
        if text or words:
            out[key] = (text, words)
    return out


def _possessive(name: str) -> str:
    return f"{BASELINE_NAMES[name]}'s"


def seeds_verdict(members: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> str:
    """How many seeds beat the best baseline's RMSE and the best baseline's return (one
    split; a tie names the random walk first for RMSE, buy & hold first for returns)."""
    rmse = best_baseline(metrics, C.RMSE, lower=True)
    hold = best_baseline(metrics, C.TOTAL_RETURN, lower=False, names=TRADING_BASELINES)
    n = len(members)
    parts = []
    if rmse is not None:
        wins = sum(1 for m in members
                   if (v := finite_number(m.get(C.RMSE))) is not None and v < rmse[1])
        parts.append(f"{wins} of {n} seeds beat {_possessive(rmse[0])} RMSE")
    if hold is not None:
        wins = sum(1 for m in members
                   if (v := finite_number(m.get(C.TOTAL_RETURN))) is not None and v > hold[1])
        parts.append(f"{wins} of {n} beat {BASELINE_NAMES[hold[0]]} after costs")
    if not parts:
        return ""
    return "Across the seeds: " + "; ".join(parts) + "."


def verdict(metrics: Mapping[str, Any], *, seeds: int = 1, where: str | None = None,
            tests: bool = True) -> str:
    """Plain-language reading of one split: does the model beat the best baseline?

    The forecast is compared with the baseline of lowest RMSE among the random walk,
    momentum and drift (not only the random walk: drift or momentum may forecast better),
    the trading with the best total return among all baselines, buy & hold included. With
    the split's tests of significance, the RMSE comparison says what the Diebold-Mariano
    test of the two makes of it, and (``tests``) the verdict of the tests follows
    (:func:`sandbox.ui.wording.tests_text`).

    Parameters
    ----------
    metrics : mapping
        A split's metrics.json object.
    seeds : int
        > 1: the model is a seed ensemble's averaged forecast (the advice to check other
        seeds is then replaced by the per-seed count of :func:`seeds_verdict`).
    where : str, optional
        What the rows are, for the sentence ("the validation split" by default for a
        ``val`` split; e.g. "the saved model's validation period").
    tests : bool
        End with the verdict of the tests of significance (when the split has them).
    """
    model = metrics.get(C.MODEL, {})
    sig = significance_of(metrics)
    where = where or _where(metrics)
    rmse = finite_number(model.get(C.RMSE))
    best = best_baseline(metrics, C.RMSE, lower=True)
    rw = finite_number(metrics.get(KEY_BASELINES, {}).get(C.RANDOM_WALK, {}).get(C.RMSE))
    parts: list[str] = []
    if rmse is None or best is None:
        parts.append(f"Not enough rows in {where} to compare the model with the baselines.")
    else:
        name, value = best
        what = (f"{_possessive(name)} ({value:.6f}, always predicting \"no change\")"
                if name == C.RANDOM_WALK else f"{_possessive(name)} ({value:.6f})")
        dm = dm_phrase(sig, name) if sig else None
        if rmse >= value:
            text = (f"The model does not beat the best baseline: on {where} its RMSE "
                    f"({rmse:.6f}) is no better than {what}, the lowest of the baselines")
            if name != C.RANDOM_WALK and rw is not None and rmse < rw:
                text += (f", although it is {(1 - rmse / rw) * 100:.2f}% below the random "
                         f"walk's ({rw:.6f})")
            parts.append(text + (f" ({dm})." if dm else "."))
        else:
            gain = (1 - rmse / value) * 100
            if dm:  # the test says what a gap this size is worth
                caution = dm + ("; see below how many single seeds manage it" if seeds > 1
                                else "")
            elif seeds > 1:
                caution = ("a gap this small is usually noise" if gain < 1
                           else "see below how many single seeds manage it")
            else:
                caution = ("a gap this small is usually noise; check other seeds before "
                           "trusting it" if gain < 1
                           else "check that this holds for other seeds before trusting it")
            parts.append(f"The model's RMSE ({rmse:.6f}) is {gain:.2f}% below {what}, the "
                         f"best baseline on {where}: {caution}.")
    total = finite_number(model.get(C.TOTAL_RETURN))
    hold = best_baseline(metrics, C.TOTAL_RETURN, lower=False, names=TRADING_BASELINES)
    if total is not None and hold is not None:
        if math.isclose(total, hold[1], rel_tol=1e-9, abs_tol=1e-12):
            word = "matches"  # e.g. a model that is long on every bar
        else:
            word = "beats" if total > hold[1] else "trails"
        parts.append(f"After costs the model returned {signed_percent(total)}; it {word} "
                     f"{BASELINE_NAMES[hold[0]]} ({signed_percent(hold[1])}), the best "
                     "return of the baselines.")
    text = " ".join(parts)
    said = tests_text(sig, where=where, seeds=seeds) if tests else ""
    return f"{text}\n{said}" if said else text


# ============================================================== what the tab shows ========
#: fewer returns than this in the shown split: the tab warns that its figures are noisy
#: (a Sharpe ratio's standard error is about 1 / sqrt(n) per bar: 0.13 at 60 returns)
SMALL_SAMPLE = 60


@dataclass(frozen=True)
class Plan:
    """What the Metrics tab shows for a run: which split, with what words."""

    split: str | None  # the split whose figures fill the table; None: no table
    caption: str
    where: str  # what the rows are, for the verdict
    can_reveal: bool  # Show test results applies (there are test rows to reveal)
    showing_test: bool
    caution: str = ""  # the shown split has few returns (:func:`small_sample_text`)


def split_returns(run: ShownRun, split: str) -> int:
    """The trading returns of ``split`` in a shown run: its rows with a strategy return
    (purged rows at the split's end and the data's last rows have none)."""
    start, stop = split_bounds(run.predictions, split)
    returns = run.predictions[C.STRATEGY_RETURN].to_numpy(dtype=float)[start:stop]
    return int(np.isfinite(returns).sum())


def small_sample_text(n: int, what: str) -> str:
    """A caution when ``n`` returns (of ``what``: "test", "validation", ...) are fewer than
    :data:`SMALL_SAMPLE`; "" otherwise."""
    if n >= SMALL_SAMPLE:
        return ""
    if n == 0:
        return f"No {what} returns: there is nothing to measure here."
    return f"Only {n:,} {what} returns: figures this small swing widely by chance."


def _span(run: ShownRun, split: str) -> tuple[str, int]:
    start, stop = split_bounds(run.predictions, split)
    if stop <= start:
        return "no rows", 0
    index = run.predictions.index
    return (f"{index[start]:%Y-%m-%d} .. {index[stop - 1]:%Y-%m-%d}, {stop - start:,} rows",
            stop - start)


def _trained_split(run: ShownRun) -> dict | None:
    # a saved model's split dates (RunResult.trained_split); None for a run trained here
    return run.trained_split


def _date(iso: Any) -> str:
    return str(iso)[:10] if iso else ""


def plan(run: ShownRun, look: LookEvidence | None = None) -> Plan:
    """What the Metrics tab shows for ``run``: the test split when ``look`` (the evidence
    of a counted look at it) is given and the run may show it, else validation (or, for a
    saved model on data before its validation period, its training rows). A split with
    fewer than :data:`SMALL_SAMPLE` returns comes with a caution."""
    shown = _plan(run, look)
    if shown.split is None:
        return shown
    what = ("out-of-sample" if shown.showing_test and (_trained_split(run) is not None
                                                       or is_walk_forward(run))
            else SPLIT_WORDS[shown.split])
    return replace(shown, caution=small_sample_text(split_returns(run, shown.split), what))


def _plan(run: ShownRun, look: LookEvidence | None) -> Plan:
    strategy = f"{strategy_text(run.config.strategy)}. {BEST_MARK} = best of the column."
    if is_walk_forward(run):
        # out of sample by construction: nothing to tune on here, so nothing is hidden, but
        # every showing is a look at this data and is counted as one
        where = "the walk-forward out-of-sample bars"
        if look is None:
            return Plan(None, WALK_FORWARD_COUNTING, where, True, False)
        span, _ = _span(run, C.TEST)
        n = len(getattr(run, "folds", None) or ())
        return Plan(C.TEST, f"Walk-forward: the out-of-sample predictions of {n} folds, "
                    f"scored as one series ({span}); {strategy} Out of sample by "
                    "construction (each fold trained only on bars before those it "
                    "predicted), and showing them counts a look: "
                    f"{look_text(look.count)}.", where, True, True)
    has_test = has_test_rows(run)
    trained = _trained_split(run)
    if trained is None:  # a run trained here
        if look is not None and has_test and not run.test_hidden:
            span, _ = _span(run, C.TEST)
            return Plan(C.TEST, f"Test split ({span}); {strategy} "
                        f"{look_text(look.count).capitalize()}.", "the test split", True, True)
        span, _ = _span(run, C.VAL)
        caption = f"Validation split ({span}); {strategy}"
        if run.test_hidden:
            caption += (" The test split stays hidden: this configuration was not the one "
                        f"selected on validation (open the {BEST_MARK} row to see its test "
                        "split).")
        else:
            caption += (" The test split stays hidden while you tune: Show test results "
                        "reveals it, and every look is counted.")
        return Plan(C.VAL, caption, "the validation split", has_test and not run.test_hidden,
                    False)
    # a saved model applied to the loaded data: rows labelled by its training dates; on
    # data other than its own (another symbol or bar size) the dates are all they share
    foreign = foreign_data(run)
    other = "" if foreign is None else (
        f"{foreign[:1].upper()}{foreign[1:]}: every figure here is about data it was not "
        "trained on. ")
    test_from = _date(trained.get(SPLIT_TEST_START))
    if look is not None and has_test:
        span, _ = _span(run, C.TEST)
        return Plan(C.TEST, f"{other}Out-of-sample rows: the saved model's test period "
                    f"({span}); {strategy} {look_text(look.count).capitalize()}.",
                    "the out-of-sample rows", True, True)
    span, n_val = _span(run, C.VAL)
    split, where = C.VAL, "the saved model's validation period"
    what = (f"The saved model's validation period ({span}): these rows chose which "
            "epoch's weights it kept, so they are not out of sample" if foreign is None
            else f"The saved model's validation period ({span}): on these dates its own data "
            "chose which epoch's weights it kept, so they are not out of sample in time")
    if not n_val:
        span, _ = _span(run, C.TRAIN)
        split, where = C.TRAIN, "the saved model's training period"
        what = (f"The saved model's training period ({span}): the model was fitted on these "
                "rows, so they are in sample" if foreign is None
                else f"The saved model's training period ({span}): it was fitted on its own "
                "data of these dates, so they are not out of sample in time")
    caption = f"{what}; {strategy}"
    if has_test:
        caption += (f" Its out-of-sample rows (from {_date(_first_test(run))}) stay hidden: "
                    "Show test results reveals them, and every look is counted.")
    else:
        ends = _date(run.data.frame.index[-1].isoformat())
        period = f" (from {test_from})" if test_from else ""
        seen = ("every row here was seen in training or validation" if foreign is None
                else "every date here lies in its training or validation period")
        caption = (f"No out-of-sample rows: this data ends {ends}, before the model's test "
                   f"period{period}; {seen}. " + caption)
    return Plan(split, other + caption, where, has_test, False)


def _first_test(run: ShownRun) -> str:
    start, stop = split_bounds(run.predictions, C.TEST)
    return run.predictions.index[start].isoformat() if stop > start else ""


class MetricsView(QtWidgets.QWidget):
    """Table of one split's metrics with the tests of significance beside them, the verdict,
    for the test split what the PSR and the deflated Sharpe ratio say, and the
    cost-sensitivity plot.

    Signals
    -------
    reveal_requested()
        Show test results was pressed.
    validation_requested()
        Back to validation was pressed.
    """

    reveal_requested = QtCore.Signal()
    validation_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QtWidgets.QLabel()
        self.caption.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.caption.setWordWrap(True)  # a long caption must not widen the window
        self.reveal_button = QtWidgets.QPushButton(SHOW_TEST_TEXT)
        self.reveal_button.setToolTip(SHOW_TEST_TIP)
        self.reveal_button.setEnabled(False)
        self.reveal_button.clicked.connect(self._on_reveal_clicked)
        self._showing_test = False
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS) + 1)  # + the DM p column
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        for i, col in enumerate(COLUMNS):
            item = QtWidgets.QTableWidgetItem(col.header)
            item.setToolTip(col.tip)
            self.table.setHorizontalHeaderItem(i, item)
        item = QtWidgets.QTableWidgetItem(DM_HEADER)
        item.setToolTip(DM_HEADER_TIP)
        self.table.setHorizontalHeaderItem(DM_COLUMN, item)
        header.moveSection(DM_COLUMN, 1)  # shown beside the RMSE it tests; cells keep indices
        # Texts like "0.008136 ± 0.000004" (seeds) and "[-0.39, +1.97]" need their width:
        # every column gets its contents' width and an equal share of the rest (_fit_columns)
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Fixed)
        self.table.viewport().installEventFilter(self)  # its width is the room to share
        # what the brackets and the DM p column are (shown with the tests only)
        self.tests_label = QtWidgets.QLabel()
        self.tests_label.setWordWrap(True)
        self.tests_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.tests_label.setStyleSheet("color: palette(placeholder-text);")
        self.cost_plot = CostPlot()
        self.evidence_label = QtWidgets.QLabel()
        self.evidence_label.setWordWrap(True)
        self.evidence_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.evidence_label.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict_label = QtWidgets.QLabel()
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.verdict_label.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QtWidgets.QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.caption, 1)
        top.addWidget(self.reveal_button, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        content = QtWidgets.QWidget()
        box = QtWidgets.QVBoxLayout(content)
        box.setContentsMargins(6, 6, 6, 6)
        box.addLayout(top)
        box.addWidget(self.table)
        box.addWidget(self.tests_label)
        box.addWidget(self.verdict_label)
        box.addWidget(self.evidence_label)
        box.addWidget(self.cost_plot)
        box.addStretch(1)
        # The table is exactly as tall as its rows; in a short tab the whole page scrolls,
        # so no row hides in the table and the lines under it never overlap it.
        self.scroll = vertical_scroll(content)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.clear()

    def clear(self, text: str = "Train a model to compare it with the baselines.") -> None:
        self.table.setRowCount(0)
        self._show_tests(None)
        self._fit_table()
        self.caption.setText(text)
        self.evidence_label.setText("")
        self.evidence_label.setToolTip("")
        self.evidence_label.hide()
        self.verdict_label.setText("")

    def _show_tests(self, sig: Mapping[str, Any] | None, model_label: str = "model") -> None:
        """The DM p column, the legend line and the cost plot for ``sig`` (None: hidden)."""
        self.table.setColumnHidden(DM_COLUMN, sig is None)
        self.tests_label.setText(tests_legend(sig) if sig else "")
        self.tests_label.setVisible(sig is not None)
        if sig is None or not self.cost_plot.set_costs(sig.get("cost_sensitivity"),
                                                       model_label=model_label):
            self.cost_plot.clear()

    def set_dark(self, dark: bool) -> None:
        """The cost plot's background, as the window's dark chart."""
        self.cost_plot.set_dark(dark)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if watched is self.table.viewport() and event.type() == QtCore.QEvent.Type.Resize:
            self._fit_columns()
        return super().eventFilter(watched, event)

    def _fit_columns(self) -> None:
        """Each column as wide as its widest cell or header, the spare width shared equally
        (a column never cuts its text short when the table has the room)."""
        header = self.table.horizontalHeader()
        n = self.table.columnCount()
        needs = [max(self.table.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in range(n)]
        spare = self.table.viewport().width() - sum(needs)
        extra = max(0, spare) // max(1, n)
        for c, need in enumerate(needs):
            header.resizeSection(c, need + extra)

    def _fit_table(self) -> None:
        """Make the table exactly as tall as its header and rows."""
        self._fit_columns()
        rows = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        height = (self.table.horizontalHeader().sizeHint().height() + rows
                  + 2 * self.table.frameWidth() + 2)
        self.table.setFixedHeight(height)

    def set_reveal(self, *, showing_test: bool, enabled: bool, why_not: str = "") -> None:
        """The Show test results / Back to validation button's state (the window's
        actions decide it)."""
        self._showing_test = showing_test
        self.reveal_button.setText(SHOW_VALIDATION_TEXT if showing_test else SHOW_TEST_TEXT)
        self.reveal_button.setEnabled(enabled)
        tip = SHOW_VALIDATION_TIP if showing_test else SHOW_TEST_TIP
        self.reveal_button.setToolTip(f"{tip} (not now: {why_not})" if why_not and not enabled
                                      else tip)

    def is_showing_test(self) -> bool:
        return self._showing_test

    def _on_reveal_clicked(self) -> None:
        (self.validation_requested if self._showing_test else self.reveal_requested).emit()

    def attach(self, controller: Any) -> None:
        """Empty the table when ``controller`` (a RunController) loads new data or starts,
        fails or stops a training; the window fills it when a run is shown."""
        controller.follow(self, "prices_loaded", "run_started", "run_failed", "run_ended")

    @QtCore.Slot(object)
    def _on_prices_loaded(self, _loaded: Any) -> None:
        self.clear()

    @QtCore.Slot(object)
    def _on_run_failed(self, _failure: Any) -> None:
        self.clear()

    @QtCore.Slot(object, object, int, int)
    def _on_run_started(self, _worker: Any, _config: Any, _seeds: int, _jobs: int) -> None:
        self.clear("Training...")

    @QtCore.Slot(str)
    def _on_run_ended(self, how: str) -> None:
        if how == CANCELLED:
            self.clear("Training was stopped; press Train to start again.")

    def set_metrics(self, metrics: Mapping[str, Any], *, caption: str = "",
                    model_label: str = "model",
                    members: Sequence[Mapping[str, Any]] | None = None,
                    members_label: str = "", where: str | None = None, bar: str = "bar",
                    look: LookEvidence | None = None) -> None:
        """Fill the table from a metrics.json object (one split).

        ``members``: a seed ensemble's per-seed model metrics on the same split; a row
        ``members_label`` then shows their mean and std (``mean ± std``) under the model's row,
        and the best-of-column marks consider its means. ``where`` names the rows for the
        verdict, ``bar`` what one bar spans (header tooltips); ``look``: these are test
        figures, shown after a counted look (its count goes into every cell's tooltip and
        its PSR / deflated Sharpe under the table).
        """
        rows = table_rows(metrics)
        sig = significance_of(metrics)
        under = interval_cells(sig)  # the model's intervals and their words
        spread: dict[str, tuple[float | None, float | None]] = {}
        if members:
            spread = member_cells(members)
            rows.insert(1, (MEMBERS, {k: mean for k, (mean, _std) in spread.items()}))
        best = best_rows(rows)
        self.table.setRowCount(len(rows))
        bold = QtGui.QFont(self.table.font())
        bold.setBold(True)
        labels = {C.MODEL: model_label, MEMBERS: members_label or "seeds (mean \u00b1 std)"}
        seen = f" ({look_text(look.count)})" if look is not None else ""
        periods = metrics.get(KEY_PERIODS_PER_YEAR)
        for c, col in enumerate(COLUMNS):
            self.table.horizontalHeaderItem(c).setToolTip(column_tip(col, metrics, bar))
        for r, (name, values) in enumerate(rows):
            label = labels.get(name) or PREDICTOR_LABELS.get(name, name)
            head = QtWidgets.QTableWidgetItem(label)
            if name in (C.MODEL, MEMBERS):
                head.setFont(bold)
            if name == C.MODEL and sig:
                head.setToolTip(spa_tip(sig))
            self.table.setVerticalHeaderItem(r, head)
            self.table.setItem(r, DM_COLUMN, self._dm_item(name, sig, seen))
            two_lines = name == C.MODEL and any(text for text, _tip in under.values())
            self.table.setRowHeight(r, self.table.verticalHeader().defaultSectionSize()
                                    * (2 if two_lines else 1) - (4 if two_lines else 0))
            for c, col in enumerate(COLUMNS):
                value = values[col.key]
                is_best = name in best.get(col.key, set())
                text = "n/a" if value is None else col.fmt(value)
                if name == MEMBERS and value is not None:
                    std = spread[col.key][1]
                    text += f" {PLUS_MINUS} " + ("n/a" if std is None else _spread(col, std))
                if is_best:
                    text = f"{text} {BEST_MARK}"
                line, words = under.get(col.key, ("", "")) if name == C.MODEL else ("", "")
                if line:
                    text = f"{text}\n{line}"
                item = QtWidgets.QTableWidgetItem(text)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight
                                      | QtCore.Qt.AlignmentFlag.AlignVCenter)
                tips = []
                if is_best:
                    item.setFont(bold)
                    tips.append(f"best {col.header.lower()} of the table")
                if words:
                    tips.append(words)
                if col.key == C.TOTAL_RETURN and name != MEMBERS:
                    cagr = _cagr(metrics, name)
                    if cagr is not None:
                        tips.append(f"CAGR {signed_percent(cagr)} a year "
                                    f"({periods_text(periods)})")
                if seen:
                    tips.append(seen.strip(" ()"))
                item.setToolTip("; ".join(tips))
                item.setData(QtCore.Qt.ItemDataRole.UserRole, value)
                self.table.setItem(r, c, item)
        self._fit_table()
        self.caption.setText(caption or f"{metrics.get(C.SPLIT, C.TEST)} split "
                             f"({BEST_MARK} = best of the column)")
        seeds = len(members or ())
        text = verdict(metrics, seeds=seeds, where=where, tests=False)
        if members:
            text = f"{text} {seeds_verdict(members, metrics)}".strip()
        where = where or _where(metrics)
        said = tests_text(sig, where=where, seeds=seeds)
        self.verdict_label.setText(f"{text}\n{said}" if said else text)
        self._show_tests(sig, model_label)
        if look is None:
            self.evidence_label.setText("")
            self.evidence_label.setToolTip("")
            self.evidence_label.hide()
        else:
            self.evidence_label.setText("\n".join(evidence_lines(look, periods)))
            self.evidence_label.setToolTip(evidence_tip(look))
            self.evidence_label.show()

    def show_run(self, run: ShownRun, look: LookEvidence | None = None) -> None:
        """Fill the table with a shown run's validation split, or its test split when
        ``look`` (the evidence of a counted look at it) is given; a caption says which rows
        and strategy; an ensemble adds the row of its seeds' mean ± std."""
        shown = plan(run, look)
        if shown.split is None:
            self.clear(shown.caption)
            return
        caption = f"{shown.caption} {shown.caution}".rstrip()
        if run.failed:
            caption += (f" Left out: seed(s) {', '.join(map(str, sorted(run.failed)))} failed "
                        "(see the Log).")
        split = shown.split or C.VAL
        look = look if shown.showing_test else None
        metrics, kind = run.metrics_by_split[split], run.config.model.kind
        bar = bar_name(run.data.frame.index)
        if not run.is_ensemble:
            self.set_metrics(metrics, caption=caption, model_label=f"model ({kind})",
                             where=shown.where, bar=bar, look=look)
            return
        members = [run.member_metrics[s][split].get(C.MODEL, {}) for s in run.seeds]
        self.set_metrics(metrics, caption=f"{run.n_seeds} seeds ({run.seeds[0]}.."
                         f"{run.seeds[-1]}). {caption}", model_label=f"{kind} averaged forecast",
                         members=members, members_label=f"{kind} seeds (mean {PLUS_MINUS} std)",
                         where=shown.where, bar=bar, look=look)

    def _dm_item(self, name: str, sig: Mapping[str, Any] | None,
                 seen: str) -> QtWidgets.QTableWidgetItem:
        """Row ``name``'s DM p cell: the model against that forecasting baseline."""
        item = QtWidgets.QTableWidgetItem("")
        item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight
                              | QtCore.Qt.AlignmentFlag.AlignVCenter)
        if not sig:
            return item
        if name in C.FORECAST_BASELINES:
            item.setText(dm_cell(sig, name))
            tip = dm_tip(sig, name)
        elif name == C.BUY_AND_HOLD:
            tip = "Buy & hold makes no forecast: no Diebold-Mariano test"
        else:
            tip = "Each baseline's row holds the Diebold-Mariano test of the model against it"
        item.setToolTip(f"{tip}; {seen.strip(' ()')}" if seen else tip)
        return item

    def best_cells(self) -> dict[str, list[str]]:
        """Column header -> row labels marked best (for tests and screen readers)."""
        out: dict[str, list[str]] = {}
        for c, col in enumerate(COLUMNS):
            for r in range(self.table.rowCount()):
                item = self.table.item(r, c)
                if item is not None and item.text().split("\n")[0].endswith(BEST_MARK):
                    out.setdefault(col.header, []).append(
                        self.table.verticalHeaderItem(r).text())
        return out


def _short_percent(x: float) -> str:
    """A signed percentage short enough for an interval in a cell: +5.7%, -12%, +140%."""
    return f"{x * 100:+.1f}%" if abs(x) < 0.1 else f"{x * 100:+.0f}%"


def _where(metrics: Mapping[str, Any]) -> str:
    return {C.TRAIN: "the training split", C.VAL: "the validation split"}.get(
        metrics.get(C.SPLIT), "the test split")


def _cagr(metrics: Mapping[str, Any], name: str) -> float | None:
    values = (metrics.get(C.MODEL, {}) if name == C.MODEL
              else metrics.get(KEY_BASELINES, {}).get(name, {}))
    return finite_number(values.get(C.CAGR))


def _spread(col: Column, std: float) -> str:
    """A standard deviation in the column's units (no sign for percentages)."""
    text = col.fmt(std)
    return text[1:] if text.startswith("+") else text
