"""The Metrics tab's evidence: DM p-values beside the baselines' RMSE, the model's intervals
and the Pesaran-Timmermann test under its figures, the verdict of the tests, the
cost-sensitivity plot; all of the split shown (never the test split before it is revealed)
and nothing of it for results without tests.

The significance objects here are hand-made (values chosen, not computed), shaped like
sandbox.significance's; the last test trains a tiny model through the window.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import train_and_wait

from sandbox import constants as C
from sandbox import looks
from sandbox.config import StrategyConfig
from sandbox.looks import evidence
from sandbox.significance import verdict as sig_verdict
from sandbox.ui.metrics_view import DM_COLUMN, MetricsView
from sandbox.ui.wording import dm_cell, p_text

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

COSTS = [float(c) for c in range(51)]


def significance(split: str = C.VAL, *, rw_p: float = 0.41, break_even: float | None = 20.0,
                 vs_hold: float | None = 7.5) -> dict:
    """A hand-made significance object of ``split``: the model not distinguishable from the
    random walk (DM p ``rw_p``), better than momentum, worse than drift."""
    def dm(stat, two, better):
        return {"statistic": stat, "pvalue": two, "pvalue_better": better}

    return {
        "split": split, "level": 0.95, "reps": 1000, "seed": 0, "horizon": 1,
        "block_length": 3, "rows": {"forecast": 250, "direction": 240, "trading": 249},
        "dm": {
            C.RANDOM_WALK: {"mse": dm(-0.83, rw_p, 0.21), "mae": dm(-0.5, 0.62, 0.31)},
            C.MOMENTUM: {"mse": dm(-3.2, 0.0016, 0.0008), "mae": dm(-2.9, 0.004, 0.002)},
            C.DRIFT: {"mse": dm(2.7, 0.0074, 0.9963), "mae": dm(2.1, 0.037, 0.98)},
        },
        "pesaran_timmermann": {"statistic": 1.1, "pvalue": 0.27, "pvalue_better": 0.14},
        "hit_rate": 0.55, "hit_rate_ci": [0.487, 0.612],
        "sharpe_ci": [-0.42, 1.91], "total_return_ci": [-0.031, 0.156],
        "sharpe_diff_ci": {C.BUY_AND_HOLD: [-0.42, 0.91], "best_baseline": [-0.6, 0.8]},
        "share_better": {C.BUY_AND_HOLD: 0.62, "best_baseline": 0.55},
        "best_baseline": C.DRIFT,
        "spa": {"pvalue_consistent": 0.37, "better_than_all": False,
                "pvalues": {C.BUY_AND_HOLD: 0.37, C.RANDOM_WALK: 0.2, C.MOMENTUM: 0.1,
                            C.DRIFT: 0.3}},
        "echo": {"corr_with_last_return": 0.12, "corr_with_constant": 0.3, "std_ratio": 0.2,
                 "best_lag": 0, "lags": list(range(-5, 6)), "lag_rmse": [0.01] * 11,
                 "echo": False},
        "cost_sensitivity": {
            "costs_bps": COSTS,
            "total_return": [0.08 - 0.004 * c for c in COSTS],
            "sharpe": [1.0 - 0.05 * c for c in COSTS],
            "buy_and_hold_total_return": [0.05 - 0.00001 * c for c in COSTS],
            "buy_and_hold_sharpe": [0.6] * len(COSTS),
            "run_cost_bps": 5.0, "break_even_bps": break_even,
            "break_even_vs_buy_and_hold_bps": vs_hold,
        },
    }


def metrics(split: str = C.VAL, sig: dict | None = None) -> dict:
    """One split's metrics: the model's RMSE just below the random walk's (the best
    baseline), its return above buy & hold's; ``sig`` as its significance (none: None)."""
    def trading(total, sharpe, dd, trades):
        return {C.TOTAL_RETURN: total, C.SHARPE: sharpe, C.MAX_DRAWDOWN: dd, C.N_TRADES: trades}

    out = {
        "split": split, "periods_per_year": 252.0,
        C.MODEL: {C.RMSE: 0.00995, C.DIRECTIONAL_ACCURACY: 0.55,
                  **trading(0.06, 0.8, -0.1, 40)},
        "baselines": {
            C.RANDOM_WALK: {C.RMSE: 0.0100, C.DIRECTIONAL_ACCURACY: None,
                            **trading(0.0, 0.0, 0.0, 0)},
            C.MOMENTUM: {C.RMSE: 0.014, C.DIRECTIONAL_ACCURACY: 0.47,
                         **trading(-0.08, -0.3, -0.2, 200)},
            C.DRIFT: {C.RMSE: 0.0101, C.DIRECTIONAL_ACCURACY: 0.54,
                      **trading(0.05, 0.6, -0.19, 1)},
            C.BUY_AND_HOLD: trading(0.05, 0.6, -0.19, 1),
        },
    }
    if sig is not None:
        out[C.SIGNIFICANCE] = sig
    return out


ROW = {C.MODEL: 0, C.RANDOM_WALK: 1, C.MOMENTUM: 2, C.DRIFT: 3, C.BUY_AND_HOLD: 4}
COL = {C.RMSE: 0, C.DIRECTIONAL_ACCURACY: 1, C.TOTAL_RETURN: 2, C.SHARPE: 3}


@pytest.fixture
def view(qtbot) -> MetricsView:
    widget = MetricsView()
    qtbot.addWidget(widget)
    return widget


def texts_and_tips(view: MetricsView) -> str:
    """Everything the tab says: cells, their tooltips, labels and the cost plot's note."""
    t = view.table
    out = [view.caption.text(), view.verdict_label.text(), view.tests_label.text(),
           view.cost_plot.note.text()]
    for r in range(t.rowCount()):
        out.append(t.verticalHeaderItem(r).toolTip())
        for c in range(t.columnCount()):
            item = t.item(r, c)
            if item is not None:
                out += [item.text(), item.toolTip()]
    return "\n".join(out)


# ------------------------------------------------------------------ beside the figures -----
def test_dm_p_values_stand_on_the_forecasting_baselines_rows_beside_rmse(view):
    view.set_metrics(metrics(sig=significance()), model_label="model (lstm)")
    t = view.table
    assert not t.isColumnHidden(DM_COLUMN)
    assert t.horizontalHeaderItem(DM_COLUMN).text() == "DM p"
    assert t.horizontalHeader().visualIndex(DM_COLUMN) == 1  # right after RMSE
    assert "Diebold-Mariano" in t.horizontalHeaderItem(DM_COLUMN).toolTip()
    assert t.item(ROW[C.RANDOM_WALK], DM_COLUMN).text() == "0.41"
    assert t.item(ROW[C.MOMENTUM], DM_COLUMN).text() == "0.002 better"
    assert t.item(ROW[C.DRIFT], DM_COLUMN).text() == "0.007 worse"
    assert t.item(ROW[C.BUY_AND_HOLD], DM_COLUMN).text() == ""  # no forecast, no test
    assert t.item(ROW[C.MODEL], DM_COLUMN).text() == ""
    tip = t.item(ROW[C.RANDOM_WALK], DM_COLUMN).toolTip()
    assert tip.startswith("Diebold-Mariano test of the model's squared errors against the "
                          "random walk's, HLN-corrected, on 250 rows: p = 0.41 (two-sided) "
                          "\u2014 not significant at 5%: the difference could well be luck.")
    assert "The one-sided p that the model's errors are smaller: 0.21." in tip
    assert "With absolute errors: p = 0.62 (two-sided), 0.31 (one-sided)." in tip
    assert "significantly smaller" in t.item(ROW[C.MOMENTUM], DM_COLUMN).toolTip()
    assert "significantly larger" in t.item(ROW[C.DRIFT], DM_COLUMN).toolTip()
    # the metric columns keep their places, values and best marks
    assert t.item(ROW[C.MODEL], COL[C.RMSE]).text() == "0.009950 \u2605"
    assert view.best_cells()["RMSE"] == ["model (lstm)"]
    assert view.best_cells()["Total return"] == ["model (lstm)"]


def test_the_model_row_carries_its_intervals_and_the_tests_in_words(view):
    view.set_metrics(metrics(sig=significance()), model_label="model (lstm)")
    t = view.table
    model = ROW[C.MODEL]
    direction = t.item(model, COL[C.DIRECTIONAL_ACCURACY])
    assert direction.text() == "55.0% \u2605\n[48.7%, 61.2%]"
    assert ("95% Wilson interval of the hit rate: 48.7% .. 61.2% over 240 bars with a move"
            in direction.toolTip())
    assert ("Pesaran-Timmermann test of the calls against chance: p = 0.14 (one-sided, "
            "better than chance), p = 0.27 (two-sided)") in direction.toolTip()
    total = t.item(model, COL[C.TOTAL_RETURN])
    assert total.text() == "+6.00% \u2605\n[-3.1%, +16%]"
    assert ("95% bootstrap interval of the total return: -3.10% .. +15.60% (it includes 0"
            in total.toolTip())
    assert "1,000 resamples, mean block 3 bars" in total.toolTip()
    assert ("It beats buy & hold in 62% of the resamples and drift, the best baseline, in 55%"
            in total.toolTip())
    sharpe = t.item(model, COL[C.SHARPE])
    assert sharpe.text().split("\n")[1] == "[-0.42, +1.91]"
    assert "The model's Sharpe minus buy & hold's: -0.42 .. +0.91 (not significant at 5%)" in (
        sharpe.toolTip())
    assert "Echo check" in t.item(model, COL[C.RMSE]).toolTip()
    assert "\n" not in t.item(model, COL[C.RMSE]).text()  # no interval of its own
    assert "SPA test" in t.verticalHeaderItem(model).toolTip()
    # the model row holds two lines; the others one; the table is as tall as its rows
    assert t.rowHeight(model) > t.rowHeight(ROW[C.RANDOM_WALK])
    assert t.height() >= sum(t.rowHeight(r) for r in range(t.rowCount()))
    # the baselines' cells have no interval
    assert all("\n" not in t.item(r, c).text() for r in range(1, 5) for c in COL.values())
    assert view.tests_label.isVisibleTo(view)
    assert view.tests_label.text().startswith("[low, high]: 95% intervals of the model's "
                                              "figures (hit rate: Wilson; total return, "
                                              "Sharpe: bootstrap of 249 trading returns)")


def test_the_verdict_is_worded_from_the_tests(view):
    sig = significance()
    view.set_metrics(metrics(sig=sig))
    text = view.verdict_label.text()
    sentence = sig_verdict(sig)
    assert sentence and f"Tests of significance on the validation split: {sentence}." in text
    assert "forecast not distinguishable from the random walk (DM p = 0.41)" in text
    assert "beats buy & hold in 62% of bootstrap resamples, not significant" in text
    assert "not better than every baseline (SPA p = 0.37)" in text
    # the RMSE comparison says what the DM test makes of the gap, instead of "usually noise"
    assert ("below the random walk's (0.010000, always predicting \"no change\"), the best "
            "baseline on the validation split: Diebold-Mariano p = 0.41, two-sided: the "
            "difference could well be luck.") in text
    assert "usually noise" not in text


def test_an_ensemble_s_tests_are_of_its_averaged_forecast(view):
    members = [{C.RMSE: 0.0099, C.TOTAL_RETURN: 0.07}, {C.RMSE: 0.0102, C.TOTAL_RETURN: 0.04}]
    view.set_metrics(metrics(sig=significance()), members=members,
                     model_label="lstm averaged forecast")
    text = view.verdict_label.text()
    assert ("Tests of significance of the 2 seeds' averaged forecast (not of any single seed) "
            "on the validation split: forecast not distinguishable") in text
    assert text.index("Across the seeds") < text.index("Tests of significance")
    assert view.table.rowCount() == 6
    assert view.table.item(1, DM_COLUMN).text() == ""  # the members' row: no test
    assert view.cost_plot.model_curve.name() == "lstm averaged forecast"


# ------------------------------------------------------------------ the cost plot ----------
def test_the_cost_plot_draws_both_curves_and_marks_break_even_and_the_run_s_cost(view):
    sig = significance()
    view.set_metrics(metrics(sig=sig))
    plot = view.cost_plot
    assert plot.isVisibleTo(view)
    x, y = plot.model_curve.getData()
    np.testing.assert_allclose(x, COSTS)
    np.testing.assert_allclose(y, [100 * v for v in sig["cost_sensitivity"]["total_return"]])
    hx, hy = plot.hold_curve.getData()
    np.testing.assert_allclose(hx, COSTS)
    np.testing.assert_allclose(
        hy, [100 * v for v in sig["cost_sensitivity"]["buy_and_hold_total_return"]])
    assert plot.lines() == {"break_even": 20.0, "vs_buy_and_hold": 7.5, "run_cost": 5.0}
    assert plot.break_even_line.label.toPlainText() == "break-even 20.0 bps"
    assert plot.run_cost_line.label.toPlainText() == "this run 5 bps"
    assert plot.note.text() == (
        "Break-even cost 20.0 bps: there the model's net total return falls to 0; it stays "
        "ahead of buy & hold up to 7.5 bps. This run trades at 5 bps a unit of position "
        "change.")
    # light or dark as the window's chart; the labels on the background's colour
    view.set_dark(False)
    assert plot.plot_widget.backgroundBrush().color().name() == "#ffffff"
    assert plot.break_even_line.label.fill.color().name() == "#ffffff"
    view.set_dark(True)
    assert plot.plot_widget.backgroundBrush().color().name() == "#131722"


def test_a_break_even_beyond_the_drawn_costs_is_named_not_drawn(view):
    view.set_metrics(metrics(sig=significance(break_even=312.5, vs_hold=None)))
    plot = view.cost_plot
    assert plot.lines()["break_even"] is None and plot.lines()["vs_buy_and_hold"] is None
    assert plot.note.text().startswith("Break-even cost 312.5 bps, beyond the 50 bps drawn")
    assert "it stays ahead of buy & hold at every cost up to 10,000 bps" in plot.note.text()
    view.set_metrics(metrics(sig=significance(break_even=None, vs_hold=None)))
    assert plot.note.text().startswith("No break-even cost: the model makes no gain even at "
                                       "zero cost")


# ------------------------------------------------------------------ nothing to show --------
def assert_no_evidence(view: MetricsView) -> None:
    t = view.table
    assert t.isColumnHidden(DM_COLUMN)
    assert all(t.item(r, DM_COLUMN).text() == "" for r in range(t.rowCount()))
    assert all("\n" not in t.item(r, c).text() for r in range(t.rowCount())
               for c in range(DM_COLUMN))
    said = texts_and_tips(view)
    for word in ("Diebold", "bootstrap", "Wilson", "Pesaran", "Tests of significance", "SPA",
                 "Echo", "[low, high]", "Break-even"):
        assert word not in said, word
    assert not view.tests_label.isVisibleTo(view)
    assert not view.cost_plot.isVisibleTo(view)
    assert len({t.rowHeight(r) for r in range(t.rowCount())}) == 1


def test_results_without_tests_show_no_extra_figures(view):
    view.set_metrics(metrics(sig=significance()))  # first with, then without: all cleared
    view.set_metrics(metrics())
    assert view.table.rowCount() == 5
    assert "below the random walk's" in view.verdict_label.text()
    assert_no_evidence(view)


def test_a_split_without_rows_or_with_another_split_s_tests_shows_none(view):
    empty = significance()
    empty["rows"] = {"forecast": 0, "direction": 0, "trading": 0}
    for key in ("hit_rate_ci", "sharpe_ci", "total_return_ci"):
        empty[key] = None
    empty["dm"] = {name: {"mse": {"statistic": None, "pvalue": None, "pvalue_better": None}}
                   for name in C.FORECAST_BASELINES}
    empty["cost_sensitivity"] = {"costs_bps": COSTS, "total_return": [None] * 51,
                                 "buy_and_hold_total_return": [None] * 51,
                                 "run_cost_bps": 5.0, "break_even_bps": None,
                                 "break_even_vs_buy_and_hold_bps": None}
    view.set_metrics(metrics(sig=empty))
    assert_no_evidence(view)
    # validation figures never stand beside the test split's tests
    view.set_metrics(metrics(C.VAL, sig=significance(C.TEST)))
    assert_no_evidence(view)
    # a damaged object: no crash, no figures
    view.set_metrics(metrics(sig={"rows": "?", "dm": None}))
    assert_no_evidence(view)


def test_a_split_without_a_cost_curve_hides_only_the_plot(view):
    sig = significance()
    del sig["cost_sensitivity"]
    view.set_metrics(metrics(sig=sig))
    assert not view.cost_plot.isVisibleTo(view)
    assert view.table.item(ROW[C.RANDOM_WALK], DM_COLUMN).text() == "0.41"
    view.clear()
    assert view.table.rowCount() == 0 and view.table.isColumnHidden(DM_COLUMN)
    assert not view.cost_plot.isVisibleTo(view) and not view.tests_label.isVisibleTo(view)


# ------------------------------------------------------------------ validation first -------
LOOK = evidence([0.01, 0.03, -0.01, 0.01], count=4, trial_sharpes=[0.2, 0.4, 0.6, 0.8])


def shown_run() -> SimpleNamespace:
    """A trained run whose validation and test splits carry different tests (test: DM p
    0.77 against the random walk, break-even 33 bps)."""
    labels = ["train"] * 100 + ["val"] * 80 + ["test"] * 80
    idx = pd.bdate_range("2012-01-02", periods=len(labels), name="date")
    predictions = pd.DataFrame({C.SPLIT: labels, C.STRATEGY_RETURN: 0.001}, index=idx)
    run = SimpleNamespace(
        config=SimpleNamespace(strategy=StrategyConfig(), model=SimpleNamespace(kind="lstm")),
        predictions=predictions, data=SimpleNamespace(frame=pd.DataFrame(
            {C.CLOSE: 1.0}, index=idx), label="GSPC"),
        test_hidden=False, trained_split=None, trained_data=None, is_ensemble=False,
        failed={})
    test_sig = significance(C.TEST, rw_p=0.77, break_even=33.0, vs_hold=None)
    test_sig["sharpe_ci"] = [0.333, 0.456]
    run.metrics_by_split = {C.VAL: metrics(C.VAL, significance()),
                            C.TEST: metrics(C.TEST, test_sig)}
    run.metrics = run.metrics_by_split[C.TEST]
    return run


def test_the_test_split_s_tests_show_only_once_it_is_revealed(view):
    run = shown_run()
    test_sig = run.metrics_by_split[C.TEST][C.SIGNIFICANCE]
    view.show_run(run)
    said = texts_and_tips(view)
    assert view.table.item(ROW[C.RANDOM_WALK], DM_COLUMN).text() == "0.41"
    assert view.cost_plot.lines()["break_even"] == 20.0
    for figure in ("0.77", "+0.33", "33.0 bps", sig_verdict(test_sig)):
        assert figure not in said, figure
    assert "Tests of significance on the validation split" in view.verdict_label.text()

    view.show_run(run, LOOK)  # Show test results
    assert view.table.item(ROW[C.RANDOM_WALK], DM_COLUMN).text() == "0.77"
    assert "test split seen 4 times on this data" in (
        view.table.item(ROW[C.RANDOM_WALK], DM_COLUMN).toolTip())
    assert view.table.item(ROW[C.MODEL], COL[C.SHARPE]).text().endswith("[+0.33, +0.46]")
    assert view.cost_plot.lines()["break_even"] == 33.0
    assert f"Tests of significance on the test split: {sig_verdict(test_sig)}." in (
        view.verdict_label.text())

    view.show_run(run)  # Back to validation
    assert view.table.item(ROW[C.RANDOM_WALK], DM_COLUMN).text() == "0.41"
    assert "0.77" not in texts_and_tips(view)


def test_a_hidden_test_split_never_shows_its_tests(view):
    run = shown_run()
    run.test_hidden = True  # a sweep configuration that was not selected
    view.show_run(run, LOOK)
    assert view.table.item(ROW[C.RANDOM_WALK], DM_COLUMN).text() == "0.41"
    assert "0.77" not in texts_and_tips(view)


def test_an_older_result_without_tests_shows_as_before(view):
    run = shown_run()
    old = copy.deepcopy(run.metrics_by_split)
    for m in old.values():
        del m[C.SIGNIFICANCE]
    run.metrics_by_split = old
    view.show_run(run)
    assert_no_evidence(view)
    view.show_run(run, LOOK)
    assert_no_evidence(view)


# ------------------------------------------------------------------ end to end -------------
def test_a_trained_run_shows_the_dm_p_of_its_validation_split(make_window, qtbot, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv(looks.ENV_LOOKS_FILE, str(tmp_path / "looks.json"))
    window = make_window()
    assert train_and_wait(qtbot, window) == "finished"
    view, result = window.metrics_view, window.result
    sig = result.metrics_by_split[C.VAL][C.SIGNIFICANCE]
    assert sig["split"] == C.VAL
    assert view.caption.text().startswith("Validation split")
    cell = view.table.item(ROW[C.RANDOM_WALK], DM_COLUMN)
    assert not view.table.isColumnHidden(DM_COLUMN)
    assert cell.text() == dm_cell(sig, C.RANDOM_WALK)
    p = sig["dm"][C.RANDOM_WALK]["mse"]["pvalue"]
    if p is not None:
        assert cell.text().startswith(p_text(p))
        assert f"p {'' if p < 0.001 else '= '}{p_text(p)} (two-sided)" in cell.toolTip()
    sentence = sig_verdict(sig)
    assert sentence and f"on the validation split: {sentence}." in view.verdict_label.text()
    test_sentence = sig_verdict(result.metrics_by_split[C.TEST][C.SIGNIFICANCE])
    if test_sentence != sentence:
        assert test_sentence not in view.verdict_label.text()
    costs = sig["cost_sensitivity"]
    if any(v is not None for v in costs["total_return"]):
        x, _y = view.cost_plot.model_curve.getData()
        np.testing.assert_allclose(x, costs["costs_bps"])
        assert view.cost_plot.lines()["run_cost"] == pytest.approx(costs["run_cost_bps"])


def test_the_wheel_over_the_cost_plot_scrolls_the_tab(view, qtbot):
    from PySide6 import QtCore, QtGui, QtWidgets

    view.resize(900, 300)  # shorter than its content: the tab scrolls
    view.set_metrics(metrics(sig=significance()))
    view.show()
    qtbot.waitExposed(view)
    bar = view.scroll.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == 0
    viewport = view.cost_plot.plot_widget.viewport()
    at = QtCore.QPointF(50, 50)
    wheel = QtGui.QWheelEvent(at, viewport.mapToGlobal(at), QtCore.QPoint(0, 0),
                              QtCore.QPoint(0, -120), QtCore.Qt.MouseButton.NoButton,
                              QtCore.Qt.KeyboardModifier.NoModifier,
                              QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    x_range = view.cost_plot.plot.viewRange()[0]
    QtWidgets.QApplication.sendEvent(viewport, wheel)
    assert bar.value() > 0  # the page moved
    assert view.cost_plot.plot.viewRange()[0] == x_range  # the plot did not zoom
