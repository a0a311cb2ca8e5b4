"""The Metrics tab: the model beside every baseline on the test split.

Pure helpers (:func:`table_rows`, :func:`best_rows`, :func:`verdict`) hold the logic the tests
check; :class:`MetricsView` only fills a ``QTableWidget`` and a label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtGui, QtWidgets

from sandbox import constants as C
from sandbox.evaluate import KEY_BASELINES
from sandbox.stats import mean_std
from sandbox.ui.controller import CANCELLED
from sandbox.ui.wording import (
    finite_number,
    format_number,
    format_percent,
    signed_percent,
    strategy_text,
)

if TYPE_CHECKING:
    from sandbox.results import ShownRun

__all__ = [
    "COLUMNS",
    "MEMBERS",
    "Column",
    "MetricsView",
    "best_rows",
    "finite_number",
    "format_number",
    "format_percent",
    "member_cells",
    "seeds_verdict",
    "strategy_text",
    "table_rows",
    "verdict",
]


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
           "Root mean squared error of the predicted next log return (lower is better)"),
    Column(C.DIRECTIONAL_ACCURACY, "Direction", "high", lambda x: f"{x * 100:.1f}%",
           "Share of days with the right sign (0 moves left out; 50% is a coin toss; "
           "empty for a predictor that always says 0)"),
    Column(C.TOTAL_RETURN, "Total return", "high", signed_percent,
           "Growth of the account over the split, after costs"),
    Column(C.SHARPE, "Sharpe", "high", lambda x: f"{x:.2f}",
           "Annualised Sharpe ratio of the strategy returns (no risk-free rate)"),
    Column(C.MAX_DRAWDOWN, "Max drawdown", "high", lambda x: f"{x * 100:.2f}%",
           "Worst fall from a running peak (closer to 0 is better)"),
    Column(C.N_TRADES, "Trades", None, lambda x: f"{x:,.0f}",
           "Days on which the position changed (neither more nor fewer is better by itself, "
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
MEMBERS = "members"  # row key of a seed ensemble's members (mean +- std over the seeds)
PLUS_MINUS = "\u00b1"


def table_rows(metrics: Mapping[str, Any]) -> list[tuple[str, dict[str, float | None]]]:
    """(predictor, {column key: value or None}) for the model and every baseline."""
    rows = [(C.MODEL, dict(metrics.get(C.MODEL, {})))]
    baselines = metrics.get(KEY_BASELINES, {})
    for name in C.BASELINES:
        if name in baselines:
            rows.append((name, dict(baselines[name])))
    return [(name, {col.key: finite_number(values.get(col.key)) for col in COLUMNS})
            for name, values in rows]


def best_rows(rows: list[tuple[str, dict[str, float | None]]]) -> dict[str, set[str]]:
    """Column key -> the predictors holding the best value (ties all marked)."""
    out: dict[str, set[str]] = {}
    for col in COLUMNS:
        if col.better is None:
            continue
        values = {name: v[col.key] for name, v in rows if v[col.key] is not None}
        if not values:
            continue
        pick = min if col.better == "low" else max
        best = pick(values.values())
        out[col.key] = {name for name, v in values.items() if math.isclose(v, best,
                                                                           rel_tol=1e-12,
                                                                           abs_tol=1e-15)}
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


def seeds_verdict(members: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> str:
    """How many seeds beat the random walk's RMSE and buy & hold's return (one split)."""
    baselines = metrics.get(KEY_BASELINES, {})
    rw = finite_number(baselines.get(C.RANDOM_WALK, {}).get(C.RMSE))
    hold = finite_number(baselines.get(C.BUY_AND_HOLD, {}).get(C.TOTAL_RETURN))
    n = len(members)
    parts = []
    if rw is not None:
        wins = sum(1 for m in members
                   if (v := finite_number(m.get(C.RMSE))) is not None and v < rw)
        parts.append(f"{wins} of {n} seeds beat the random walk's RMSE")
    if hold is not None:
        wins = sum(1 for m in members
                   if (v := finite_number(m.get(C.TOTAL_RETURN))) is not None and v > hold)
        parts.append(f"{wins} of {n} beat buy & hold after costs")
    if not parts:
        return ""
    return "Across the seeds: " + "; ".join(parts) + "."


def verdict(metrics: Mapping[str, Any], *, seeds: int = 1) -> str:
    """Plain-language reading of the test split: does the model beat the random walk?

    ``seeds`` > 1: the model is a seed ensemble's averaged forecast (the advice to check
    other seeds is then replaced by the per-seed count of :func:`seeds_verdict`).
    """
    model = metrics.get(C.MODEL, {})
    baselines = metrics.get(KEY_BASELINES, {})
    where = {C.TRAIN: "training", C.VAL: "validation"}.get(metrics.get(C.SPLIT), "test")
    rmse = finite_number(model.get(C.RMSE))
    rw = finite_number(baselines.get(C.RANDOM_WALK, {}).get(C.RMSE))
    parts: list[str] = []
    if rmse is None or rw is None:
        parts.append("Not enough test rows to compare the model with the random walk.")
    elif rmse >= rw:
        parts.append(
            f"The model does not beat the random walk: on the {where} split its RMSE "
            f"({rmse:.6f}) is no better than always predicting \"no change\" ({rw:.6f})."
        )
    else:
        gain = (1 - rmse / rw) * 100
        if seeds > 1:
            caution = ("a gap this small is usually noise" if gain < 1
                       else "see below how many single seeds manage it")
        else:
            caution = ("a gap this small is usually noise; check other seeds before trusting it"
                       if gain < 1 else "check that this holds for other seeds before trusting it")
        parts.append(
            f"The model's RMSE ({rmse:.6f}) is {gain:.2f}% below the random walk's "
            f"({rw:.6f}) on the {where} split: {caution}."
        )
    total = finite_number(model.get(C.TOTAL_RETURN))
    hold = finite_number(baselines.get(C.BUY_AND_HOLD, {}).get(C.TOTAL_RETURN))
    if total is not None and hold is not None:
        if math.isclose(total, hold, rel_tol=1e-9, abs_tol=1e-12):
            word = "matches"  # e.g. a model that is long every day
        else:
            word = "beats" if total > hold else "trails"
        parts.append(f"After costs the model returned {signed_percent(total)}; it {word} "
                     f"buy & hold ({signed_percent(hold)}).")
    return " ".join(parts)


class MetricsView(QtWidgets.QWidget):
    """Table of the test-split metrics plus the plain-language verdict."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QtWidgets.QLabel()
        self.caption.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.caption.setWordWrap(True)  # a long caption must not widen the window
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        for i, col in enumerate(COLUMNS):
            item = QtWidgets.QTableWidgetItem(col.header)
            item.setToolTip(col.tip)
            self.table.setHorizontalHeaderItem(i, item)
        self.verdict_label = QtWidgets.QLabel()
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.verdict_label.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QtWidgets.QVBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.addWidget(self.caption)
        box.addWidget(self.table, 1)
        box.addWidget(self.verdict_label)
        self.clear()

    def clear(self, text: str = "Train a model to compare it with the baselines.") -> None:
        self.table.setRowCount(0)
        self.caption.setText(text)
        self.verdict_label.setText("")

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
                    members_label: str = "") -> None:
        """Fill the table from a metrics.json object (one split).

        ``members``: a seed ensemble's per-seed model metrics on the same split; a row
        ``members_label`` then shows their mean and std (``mean ± std``) under the model's row,
        and the best-of-column marks consider its means.
        """
        rows = table_rows(metrics)
        spread: dict[str, tuple[float | None, float | None]] = {}
        if members:
            spread = member_cells(members)
            rows.insert(1, (MEMBERS, {k: mean for k, (mean, _std) in spread.items()}))
        best = best_rows(rows)
        self.table.setRowCount(len(rows))
        bold = QtGui.QFont(self.table.font())
        bold.setBold(True)
        labels = {C.MODEL: model_label, MEMBERS: members_label or "seeds (mean \u00b1 std)"}
        for r, (name, values) in enumerate(rows):
            label = labels.get(name) or PREDICTOR_LABELS.get(name, name)
            head = QtWidgets.QTableWidgetItem(label)
            if name in (C.MODEL, MEMBERS):
                head.setFont(bold)
            self.table.setVerticalHeaderItem(r, head)
            for c, col in enumerate(COLUMNS):
                value = values[col.key]
                is_best = name in best.get(col.key, set())
                text = "n/a" if value is None else col.fmt(value)
                if name == MEMBERS and value is not None:
                    std = spread[col.key][1]
                    text += f" {PLUS_MINUS} " + ("n/a" if std is None else _spread(col, std))
                item = QtWidgets.QTableWidgetItem(f"{text} {BEST_MARK}" if is_best else text)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight
                                      | QtCore.Qt.AlignmentFlag.AlignVCenter)
                if is_best:
                    item.setFont(bold)
                    item.setToolTip(f"best {col.header.lower()} of the table")
                item.setData(QtCore.Qt.ItemDataRole.UserRole, value)
                self.table.setItem(r, c, item)
        self.caption.setText(caption or f"{metrics.get(C.SPLIT, C.TEST)} split "
                             f"({BEST_MARK} = best of the column)")
        text = verdict(metrics, seeds=len(members or ()))
        if members:
            text = f"{text} {seeds_verdict(members, metrics)}".strip()
        self.verdict_label.setText(text)

    def show_run(self, run: ShownRun) -> None:
        """Fill the table with a shown run's test split (validation while its test split is
        hidden), with a caption that says which rows and strategy; an ensemble adds the row of
        its seeds' mean ± std."""
        predictions = run.predictions
        split = C.VAL if run.test_hidden else C.TEST
        rows = predictions.index[predictions[C.SPLIT].to_numpy() == split]
        span = (f"{rows[0]:%Y-%m-%d} .. {rows[-1]:%Y-%m-%d}, {len(rows):,} rows"
                if len(rows) else "no rows")
        name = "Validation" if split == C.VAL else "Test"
        caption = (f"{name} split ({span}); {strategy_text(run.config.strategy)}. "
                   f"{BEST_MARK} = best of the column.")
        if split == C.VAL:
            caption += (" The test split stays hidden: this configuration was not the one "
                        f"selected on validation (open the {BEST_MARK} row to see its test "
                        "split).")
        if run.failed:
            caption += (f" Left out: seed(s) {', '.join(map(str, sorted(run.failed)))} failed "
                        "(see the Log).")
        metrics, kind = run.metrics_by_split[split], run.config.model.kind
        if not run.is_ensemble:
            self.set_metrics(metrics, caption=caption, model_label=f"model ({kind})")
            return
        members = [run.member_metrics[s][split].get(C.MODEL, {}) for s in run.seeds]
        self.set_metrics(metrics, caption=f"{run.n_seeds} seeds ({run.seeds[0]}.."
                         f"{run.seeds[-1]}). {caption}", model_label=f"{kind} averaged forecast",
                         members=members, members_label=f"{kind} seeds (mean {PLUS_MINUS} std)")

    def best_cells(self) -> dict[str, list[str]]:
        """Column header -> row labels marked best (for tests and screen readers)."""
        out: dict[str, list[str]] = {}
        for c, col in enumerate(COLUMNS):
            for r in range(self.table.rowCount()):
                item = self.table.item(r, c)
                if item is not None and item.text().endswith(BEST_MARK):
                    out.setdefault(col.header, []).append(
                        self.table.verticalHeaderItem(r).text())
        return out


def _spread(col: Column, std: float) -> str:
    """A standard deviation in the column's units (no sign for percentages)."""
    text = col.fmt(std)
    return text[1:] if text.startswith("+") else text
