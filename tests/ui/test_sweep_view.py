"""The Sweep tab: the grid form, the live table of configurations, the selection, Open.

The view alone is fed hand-made :class:`sandbox.sweep.RunRecord` values; the window runs
real (tiny) sweeps in-process (``jobs=1`` through the view's Processes field): window 10,
hidden 4, 1-2 epochs on the GSPC sample since 2016. Qt warnings fail the tests.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from helpers import count_slow_batches
from PySide6 import QtCore, QtGui

from sandbox import constants as C
from sandbox import runs, sweep
from sandbox.config import DataSpec, ModelConfig, RunConfig, StrategyConfig, TrainConfig
from sandbox.errors import ConfigError
from sandbox.ui.sweep_view import MORE, SELECTED_MARK, SweepView, grid_text

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

TINY = RunConfig(
    data=DataSpec(source="sample:GSPC", start="2016-01-01"),
    model=ModelConfig(window=10, hidden=4, layers=1, dropout=0.0),
    train=TrainConfig(epochs=1, patience=0, batch_size=64, seed=0),
    strategy=StrategyConfig(),
)
PM = "\u00b1"
# table columns
MARK, CONFIG, SEEDS, VAL_RMSE, VAL_SHARPE, VAL_TOTAL, FAILED = range(7)


@pytest.fixture
def view(qtbot) -> SweepView:
    widget = SweepView()
    qtbot.addWidget(widget)
    return widget


def cell(view: SweepView, config_id: str, column: int):
    """The source model's item of ``config_id``'s row."""
    for r in range(view.model.rowCount()):
        if view.model.item(r, CONFIG).data(QtCore.Qt.ItemDataRole.UserRole) == config_id:
            return view.model.item(r, column)
    raise AssertionError(f"no row {config_id}")


# ------------------------------------------------------------------------ the form ------
def test_grid_text_keeps_the_form_order_and_drops_blanks():
    text = grid_text({"hidden": " 4, 8 ", "model": "lstm,gru", "lr": "", "layers": "  ",
                      MORE: "  loss=mse,huber   batch_size=32 "})
    assert text == "model=lstm,gru hidden=4,8 loss=mse,huber batch_size=32"
    assert grid_text({}) == ""


def test_form_gives_an_ordered_grid_and_a_plan(view):
    view.set_enabled_to_run(True)
    assert view.run_button.isEnabled()  # an empty form: the side panel's settings alone
    assert view.grid() == {}
    view.edits["hidden"].setText("4,8")
    view.edits["model"].setText("lstm, gru")
    view.edits["lr"].setText("1e-3")
    view.seeds_spin.setValue(3)
    grid = view.grid()
    assert list(grid) == ["kind", "hidden", "lr"]  # the form's order, not the typing order
    assert grid == {"kind": ["lstm", "gru"], "hidden": [4, 8], "lr": [0.001]}
    assert view.plan_label.text().startswith("4 configurations x 3 seeds = 12 runs")
    assert view.run_button.isEnabled()


@pytest.mark.parametrize(("field", "text", "label", "reason"), [
    ("hidden", "abc", "Hidden", "not a whole number"),
    ("model", "lstm,foo", "Networks", "foo"),
    ("lr", "1e-3,,3e-4", "Learning rates", "empty value list"),
    ("dropout", "0.2,0.2", "Dropout", "given twice"),
    ("window", "0", "Windows", "window"),
    (MORE, "loss=mae", "Other", "loss 'mae'"),
    (MORE, "hidden=4,8", "Other", "'hidden' is given twice"),  # the Hidden field has it too
    (MORE, "fill=close,next_open", "Other", "--fill"),
])
def test_a_bad_field_is_named_and_blocks_run(view, field, text, label, reason):
    view.set_enabled_to_run(True)
    view.edits["model"].setText("lstm")
    view.edits["hidden"].setText("4")
    requests = []
    view.run_requested.connect(lambda *args: requests.append(args))
    view.edits[field].setText(text)
    assert view.plan_label.text() == f"Cannot run: {label}: see the message under the field."
    # said right under the field, and only there
    assert not view.field_errors[field].isHidden()
    assert view.field_errors[field].text().startswith(f"{label}: ")
    assert reason in view.field_errors[field].text()
    assert all(view.field_errors[f].isHidden() for f in view.field_errors if f != field)
    assert not view.run_button.isEnabled()
    with pytest.raises(ConfigError, match=label):
        view.grid()
    view.run_button.click()
    assert requests == []
    view.edits[field].setText("")  # blank: the side panel's value again
    assert "Cannot run" not in view.plan_label.text()
    assert view.field_errors[field].isHidden()
    assert view.run_button.isEnabled()


def test_a_grid_over_costs_is_refused_inline_with_the_way_out(view, dialogs_shown):
    view.set_enabled_to_run(True)
    view.edits[MORE].setText("cost_bps=0,5")
    message = view.field_errors[MORE].text()
    assert not view.field_errors[MORE].isHidden()
    assert message.startswith("Other: grid part 'cost_bps=0,5': ")
    assert "only re-trade the same trained models" in message
    assert "--cost-bps" in message and "cost-sensitivity" in message
    assert "Traceback" not in message
    assert not view.run_button.isEnabled()
    assert dialogs_shown == []
    view.edits[MORE].setText("loss=mse,huber")
    assert view.field_errors[MORE].isHidden() and view.run_button.isEnabled()
    assert view.grid() == {"loss": ["mse", "huber"]}


def test_run_button_follows_the_window_and_emits_the_grid(view):
    requests = []
    view.run_requested.connect(lambda *args: requests.append(args))
    view.set_enabled_to_run(False, "load data first")
    assert not view.run_button.isEnabled()
    assert view.run_button.toolTip() == "load data first"
    view.set_enabled_to_run(True)
    view.edits["epochs"].setText("1,2")
    view.seeds_spin.setValue(2)
    view.jobs_spin.setValue(1)
    view.run_button.click()
    assert requests == [({"epochs": [1, 2]}, 2, 1)]
    view.set_running(True)
    assert not view.run_button.isEnabled() and view.stop_button.isEnabled()
    assert not view.edits["epochs"].isEnabled() and not view.seeds_spin.isEnabled()


# ----------------------------------------------------------------------- the table ------
DAYS = pd.bdate_range("2021-01-04", periods=40, name=C.INDEX_NAME)


def split_rows(days: pd.DatetimeIndex, error: float, strategy: np.ndarray) -> runs.SplitRows:
    """Rows whose predictions all miss by ``error`` (so the RMSE is ``error``)."""
    actual = np.linspace(-0.01, 0.01, len(days))
    return runs.SplitRows(dates=days.as_unit("ns").asi8, predicted=actual + error,
                          actual=actual, position=np.ones(len(days)), strategy=strategy,
                          hold=np.full(len(days), 0.001))


def record(config_id: str, seed: int, *, rmse: float | None = None, params: dict,
           error: str | None = None, done: int = 1, total: int = 6, sharpe: float = 0.0,
           test_total: float = 0.0, predictions: pd.DataFrame | None = None
           ) -> sweep.RunRecord:
    """A finished run: validation RMSE ``rmse`` on its own rows and on the common dates; its
    test account gains ``test_total`` on the first common test day, nothing after."""
    ok = error is None
    wobble = np.random.default_rng(seed).normal(0.0005 * (1 + sharpe), 0.01, 20)
    gain = np.zeros(20)
    gain[0] = test_total
    return sweep.RunRecord(
        done=done, total=total, label=sweep.format_params(params, seed), config_id=config_id,
        seed=seed, params=params, error=error, val_loss=2 * rmse if ok and rmse else None,
        val_metrics={C.RMSE: rmse, C.SHARPE: sharpe, C.TOTAL_RETURN: 0.01 * (seed + 1)}
        if ok else {},
        test_metrics={C.TOTAL_RETURN: test_total, C.SHARPE: 0.3} if ok else {},
        seconds=0.5,
        predictions=predictions if ok else None,
        val_rows=split_rows(DAYS[:20], rmse or 0.0, wobble) if ok else None,
        test_rows=split_rows(DAYS[20:], 0.001, gain) if ok else None,
        periods_per_year=252.0,
    )


@pytest.fixture
def records() -> list[sweep.RunRecord]:
    frame = pd.DataFrame({C.PREDICTED_RETURN: [0.0]})
    c01, c02, c03 = {"hidden": 4}, {"hidden": 8}, {"hidden": 16}
    return [
        record("c01", 0, rmse=0.5, params=c01, sharpe=1.0, test_total=0.1111,
               predictions=frame, done=1),
        record("c02", 0, rmse=0.3, params=c02, sharpe=2.0, test_total=0.2222, done=2),
        record("c01", 1, rmse=0.7, params=c01, sharpe=0.0, test_total=0.1111, done=3),
        record("c02", 1, params=c02, error="training diverged (loss is NaN)", done=4),
        record("c03", 0, rmse=0.4, params=c03, sharpe=0.5, test_total=0.3333, done=5),
        record("c03", 1, rmse=0.6, params=c03, sharpe=1.5, test_total=0.3333, done=6),
    ]


def test_records_fill_one_row_per_configuration(view, records):
    view.start(2)
    view.set_running(True)
    for r in records[:3]:
        view.add_record(r)
    assert view.model.rowCount() == 2
    assert cell(view, "c01", SEEDS).text() == "2/2"
    assert cell(view, "c02", SEEDS).text() == "1/2"
    assert view.result_label.text() == "3/6 runs finished."
    for r in records[3:]:
        view.add_record(r)
    assert view.model.rowCount() == 3
    assert cell(view, "c01", CONFIG).text() == "c01  hidden=4"
    # val RMSE: mean +- sample std over the seeds that finished
    assert cell(view, "c01", VAL_RMSE).text() == f"0.6 {PM} 0.14"  # std 0.1414
    assert cell(view, "c03", VAL_RMSE).text() == f"0.5 {PM} 0.14"
    assert cell(view, "c02", VAL_RMSE).text() == "0.3"  # one seed: no spread
    assert cell(view, "c01", VAL_SHARPE).text() == f"0.50 {PM} 0.71"
    assert cell(view, "c01", VAL_TOTAL).text() == f"+1.50 {PM} 0.71%"
    # the failed seed: counted, with its reason on hover, and left out of the figures
    assert cell(view, "c02", SEEDS).text() == "2/2"
    assert cell(view, "c02", FAILED).text() == "1"
    assert cell(view, "c02", FAILED).toolTip() == "seed 1: training diverged (loss is NaN)"
    assert cell(view, "c01", FAILED).text() == ""
    assert [r.seed for r in view.records("c02")] == [0, 1]
    assert view.records("c99") == []


def test_sorting_by_validation_loss_orders_by_the_mean(view, records):
    view.start(2)
    for r in records:
        view.add_record(r)
    assert view.row_ids() == ["c01", "c02", "c03"]  # by configuration at first
    view.table.sortByColumn(VAL_RMSE, QtCore.Qt.SortOrder.AscendingOrder)
    assert view.row_ids() == ["c02", "c03", "c01"]  # 0.3, 0.5, 0.6
    view.table.sortByColumn(VAL_RMSE, QtCore.Qt.SortOrder.DescendingOrder)
    assert view.row_ids() == ["c01", "c03", "c02"]
    view.table.sortByColumn(VAL_SHARPE, QtCore.Qt.SortOrder.AscendingOrder)
    assert view.row_ids() == ["c02", "c03", "c01"]  # best Sharpe first: 2.0, 1.0, 0.5
    # a row that grows keeps its place in the sorted order
    view.table.sortByColumn(VAL_RMSE, QtCore.Qt.SortOrder.AscendingOrder)
    view.add_record(record("c04", 0, rmse=0.1, params={"hidden": 32}, done=7, total=7))
    assert view.row_ids() == ["c04", "c02", "c03", "c01"]


def test_result_marks_the_selection_and_shows_only_its_test_figures(view, records):
    view.start(2)
    view.set_running(True)
    for r in records:
        view.add_record(r)
    assert not view.open_button.isEnabled()
    summary = sweep.summarize(records)
    # c02 has the lowest mean RMSE but a failed seed: c03 (0.5) is chosen over c01 (0.6)
    assert summary["selected"]["config_id"] == "c03"
    view.set_result(summary)
    view.set_running(False)
    # the validation columns now hold the figures on the common dates (here the same RMSE)
    assert cell(view, "c01", VAL_RMSE).text() == f"0.6 {PM} 0.14"
    by_id = {c["config_id"]: c for c in summary["configs"]}
    assert cell(view, "c01", VAL_SHARPE).text() == sweep.format_mean_std(
        by_id["c01"]["val"][C.SHARPE], ".2f")
    assert cell(view, "c03", MARK).text() == SELECTED_MARK
    assert cell(view, "c01", MARK).text() == "" and cell(view, "c02", MARK).text() == ""
    assert view.selected_id() == "c03"
    text = view.result_label.text()
    assert "c03" in text and "hidden=16" in text
    assert "lowest validation RMSE" in text and "the 20 validation dates every" in text
    assert "Trials: 3 distinct trained configurations" in text
    assert sweep.summarize(records)["spa"]["candidates"] == 3
    dsr = summary["deflated_sharpe"]["dsr"]
    assert (f"DSR (validation) {dsr:.3f}: probability that the selected configuration's true "
            "validation Sharpe ratio is above 0, allowing for 3 configurations tried") in text
    psr = summary["test_psr"]["psr"]
    assert (f"PSR (test) {psr:.3f}: probability that the selected configuration's true test "
            "Sharpe ratio is above 0, given the test returns' length, skewness and "
            "kurtosis") in text
    assert "total return +33.33" in text  # the selected configuration's test figures
    assert "buy & hold +2.02% on the same dates" in text
    assert "+11.11" not in text and "+22.22" not in text  # nobody else's
    spa = summary["spa"]
    if spa is not None and spa["pvalue_consistent"] is not None:
        assert (f"Best of 3 configurations against buy & hold on validation (Hansen's SPA, "
                f"allowing for how many were tried): p = {spa['pvalue_consistent']:.2f}") in text
    assert "c01" not in text and "c02" not in text
    # Open: only for a row with a finished run that kept its predictions
    assert not view.open_button.isEnabled()  # c03 kept none
    opened = []
    view.open_requested.connect(opened.append)
    view.open_button.click()
    assert opened == []
    view.select("c01")
    assert not view.open_button.isEnabled()  # the window has not allowed it (no data yet)
    view.set_enabled_to_run(True)
    assert view.selected_id() == "c01" and view.open_button.isEnabled()
    view.open_button.click()
    assert opened == ["c01"]
    view.set_enabled_to_run(False, "training is running")  # e.g. Train was pressed
    assert not view.open_button.isEnabled()
    assert view.run_button.toolTip() == "training is running"
    view.set_enabled_to_run(True)
    view.select("c02")
    assert not view.open_button.isEnabled()
    # the mark sorts first on its column
    view.table.sortByColumn(MARK, QtCore.Qt.SortOrder.AscendingOrder)
    assert view.row_ids()[0] == "c03"
    view.clear()
    assert view.model.rowCount() == 0 and view.selected_id() is None
    assert not view.open_button.isEnabled()


def test_a_sweep_where_every_run_failed_selects_nothing(view):
    failed = [record("c01", s, params={}, error="boom", done=s + 1, total=2) for s in (0, 1)]
    view.start(2)
    for r in failed:
        view.add_record(r)
    assert cell(view, "c01", VAL_RMSE).text() == "n/a"
    assert cell(view, "c01", CONFIG).text() == "c01  side panel settings"
    view.set_result(sweep.summarize(failed))
    assert "nothing to select" in view.result_label.text()
    assert cell(view, "c01", MARK).text() == ""
    assert not view.open_button.isEnabled()


# ---------------------------------------------------------------------- the window ------
def run_sweep_and_wait(qtbot, window, *, timeout: int = 60_000) -> str:
    with qtbot.waitSignal(window.sweep_ended, timeout=timeout) as ended:
        window.sweep_view.run_button.click()
    qtbot.waitUntil(window.is_idle, timeout=timeout)
    return ended.args[0]


def test_window_runs_a_sweep_and_opens_the_selected_configuration(make_window, qtbot,
                                                                  dialogs_shown):
    window = make_window(TINY)
    view = window.sweep_view
    assert view.run_button.isEnabled()
    view.edits["model"].setText("lstm,gru")
    view.seeds_spin.setValue(1)
    view.jobs_spin.setValue(1)  # in this process, on the worker thread
    assert run_sweep_and_wait(qtbot, window) == "finished"
    assert dialogs_shown == []
    assert view.model.rowCount() == 2
    assert sorted(view.row_ids()) == ["c01", "c02"]
    # the form's and the side panel's word, not the config's field name (kind)
    assert cell(view, "c01", CONFIG).text() == "c01  network=lstm"
    assert cell(view, "c02", CONFIG).text() == "c02  network=gru"
    assert cell(view, "c01", SEEDS).text() == "1/1"
    log = window.log_view.toPlainText()
    assert "sweep started: 2 runs" in log and "sweep run 2/2" in log
    assert "grid network=lstm,gru" in log and "kind=" not in log
    assert "sweep: Selected on validation" in log and "sweep: DSR (validation)" in log
    assert window.act_train.isEnabled() and not window.act_stop.isEnabled()
    selected = view.selected_id()
    assert selected in ("c01", "c02")
    assert f"Selected on validation: {selected} network=" in view.result_label.text()
    assert cell(view, selected, MARK).text() == SELECTED_MARK
    assert "DSR (validation)" in view.result_label.text()
    assert "PSR (test)" in view.result_label.text()
    assert view.open_button.isEnabled()

    records = view.records(selected)
    kind = records[0].config["model"]["kind"]
    assert kind == ("lstm" if selected == "c01" else "gru")
    shown = []
    window.run_shown.connect(shown.append)
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        view.open_button.click()
    assert ended.args == ["open_sweep", True]
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=20_000)
    result = shown[0]
    assert window.result is result
    assert result.seeds == [r.seed for r in records] == [0]
    assert window.model_panel.model_config().kind == kind
    assert window.model_panel.seeds() == 1
    # sweep runs used one torch thread each; the side panel keeps the user's choice
    assert records[0].config["train"]["threads"] == 1
    assert window.model_panel.train_config().threads is None
    x, _ = window.chart.predicted_curve.getData()
    assert x is not None and len(x) > 0
    assert window.loss_plot.members() == 1
    assert window.metrics_view.table.rowCount() == 5
    assert f"opened sweep configuration {selected}" in window.log_view.toPlainText()
    pd.testing.assert_series_equal(result.predictions[C.PREDICTED_RETURN],
                                   records[0].predictions[C.PREDICTED_RETURN],
                                   check_names=False)
    assert not window.act_save_model.isEnabled()  # no fitted model came back

    # new data: the sweep's runs belonged to the old data
    with qtbot.waitSignal(window.data_shown, timeout=20_000):
        window.load(DataSpec(source="sample:GSPC", start="2017-01-01"))
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=20_000)
    assert view.model.rowCount() == 0 and view.selected_id() is None
    assert not view.open_button.isEnabled()


def test_stop_during_a_sweep_drops_its_runs(make_window, qtbot, monkeypatch, dialogs_shown):
    counts = count_slow_batches(monkeypatch)
    window = make_window(TINY)
    view = window.sweep_view
    view.edits["epochs"].setText("200,201")
    view.seeds_spin.setValue(1)
    view.jobs_spin.setValue(1)
    view.run_button.click()
    assert window.is_sweeping()
    qtbot.waitUntil(lambda: counts["batches"] >= 3, timeout=60_000)
    # while sweeping: no training, no new data, no second sweep
    assert not window.act_train.isEnabled() and not window.train_button.isEnabled()
    assert not window.act_open_csv.isEnabled() and not window.act_load_model.isEnabled()
    assert not window.model_panel.isEnabled() and not window.data_panel.isEnabled()
    assert not view.run_button.isEnabled() and view.stop_button.isEnabled()
    assert window.act_stop.isEnabled()
    window.train()
    window.load(DataSpec(source="sample:GSPC", start="2017-01-01"))
    assert not window.is_training() and not window.is_loading()
    started = time.perf_counter()
    with qtbot.waitSignal(window.sweep_ended, timeout=10_000) as ended:
        view.stop_button.click()
    assert ended.args == ["cancelled"]
    assert time.perf_counter() - started < 5.0
    assert view.model.rowCount() == 0
    assert "stopped" in view.result_label.text()
    assert "sweep stopped" in window.log_view.toPlainText()
    assert dialogs_shown == []
    assert window.act_train.isEnabled() and view.run_button.isEnabled()
    assert not view.stop_button.isEnabled() and view.edits["epochs"].isEnabled()
    assert window.result is None


def test_run_seeds_and_processes_are_in_sight_at_the_default_size(make_window, qtbot):
    """At 1400x900 with the default splitter, nothing to scroll to reach Run: Seeds,
    Processes, the plan and Run/Stop sit in the tab's visible area; the fields too."""
    window = make_window(TINY, show=True)
    qtbot.waitExposed(window)
    assert (window.width(), window.height()) == (1400, 900)
    view = window.sweep_view
    window.tabs.setCurrentWidget(view)
    qtbot.waitUntil(view.isVisible)
    qtbot.wait(20)  # the layouts settle
    for widget in (view.run_button, view.stop_button, view.seeds_spin, view.jobs_spin,
                   view.plan_label, *view.edits.values()):
        assert widget.isVisible()
        # the whole widget is drawn: no scroll area or the tab's edge cuts it
        assert widget.visibleRegion().boundingRect() == widget.rect(), widget
        corner = widget.mapTo(view, QtCore.QPoint(0, 0))
        assert view.rect().contains(QtCore.QRect(corner, widget.size())), widget
    assert view.fields_scroll.verticalScrollBar().maximum() == 0


def test_seeds_default_to_one(view, make_window):
    assert view.seeds_spin.value() == 1
    assert view.plan_label.text().startswith("1 configuration x 1 seed = 1 run;")
    window = make_window(TINY, start=False)  # fresh settings: nothing remembered
    assert window.sweep_view.seeds_spin.value() == 1


def test_a_long_configuration_label_is_in_full_on_hover(view):
    params = {"kind": "lstm", "window": 20, "hidden": 64, "layers": 2, "dropout": 0.2,
              "lr": 0.0003, "epochs": 30, "threshold_bps": 10.0}
    view.start(1)
    view.add_record(record("c01", 0, rmse=0.5, params=params, total=1))
    text = ("c01  network=lstm window=20 hidden=64 layers=2 dropout=0.2 lr=0.0003 epochs=30 "
            "threshold_bps=10.0")
    assert cell(view, "c01", CONFIG).text() == text
    assert cell(view, "c01", CONFIG).toolTip() == text


def test_a_bad_side_panel_blocks_the_sweep(make_window, dialogs_shown):
    window = make_window(TINY)
    view = window.sweep_view
    window.model_panel.lr_edit.setText("fast")
    assert not view.run_button.isEnabled()
    assert "learning rate 'fast'" in view.run_button.toolTip()
    window.run_sweep({}, 1, 1)  # called directly anyway: refused with a reason
    assert not window.is_sweeping()
    assert dialogs_shown and dialogs_shown[-1][0] == "Cannot run the sweep"
    window.model_panel.lr_edit.setText("1e-3")
    assert view.run_button.isEnabled()


def test_sweep_form_persists_through_settings(make_window):
    values = {"model": "lstm,gru", "window": "10,20", "hidden": "4,8", "layers": "",
              "dropout": "0,0.1", "lr": "1e-3", "epochs": "1", "threshold_bps": "0,5",
              MORE: "loss=mse,huber"}
    first = make_window(TINY, start=False)
    first.sweep_view.set_form_values(values)
    assert first.sweep_view.form_values() == values
    first.sweep_view.seeds_spin.setValue(4)
    first.sweep_view.jobs_spin.setValue(1)
    first.close()

    second = make_window(TINY, start=False)
    assert second.sweep_view.form_values() == values
    assert second.sweep_view.seeds_spin.value() == 4
    assert second.sweep_view.jobs_spin.value() == 1
    assert "64 configurations" in second.sweep_view.plan_label.text()


def test_export_writes_the_cli_files_and_refuses_an_unwritable_folder(make_window, qtbot,
                                                                      tmp_path, dialogs_shown):
    import json
    import os

    window = make_window(TINY)
    view = window.sweep_view
    assert not view.export_button.isEnabled()  # nothing finished yet
    view.edits["hidden"].setText("4,8")
    view.seeds_spin.setValue(1)
    view.jobs_spin.setValue(1)
    assert run_sweep_and_wait(qtbot, window) == "finished"
    assert view.export_button.isEnabled()
    # the summary shows the selection's test figures: one look at this data's test split
    from sandbox import export, looks

    assert looks.look_count(export.fingerprint(window.controller.prices.frame)) == 1
    assert "Test split seen once on this data" in view.result_label.text()
    out = tmp_path / "sweep"  # a folder of its own: an output folder is replaced as a whole
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        window.export_sweep_to(str(out))
    assert ended.args == ["export_sweep", True]
    runs = pd.read_csv(out / sweep.SWEEP_CSV)
    assert sorted(runs["config_id"]) == ["c01", "c02"] and list(runs["hidden"]) == [4, 8]
    summary = json.loads((out / sweep.SUMMARY_JSON).read_text(encoding="utf-8"))
    assert summary["selected"]["config_id"] == view.selected_id()
    assert summary["n_trials"] == 2 and summary["selected_by"] == "val_rmse"
    assert summary["common_dates"][C.VAL]["n"] > 0

    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
            window.export_sweep_to(str(locked))
        assert ended.args == ["export_sweep", False]
        assert dialogs_shown[-1][0] == "Could not export the sweep's results"
        assert "Traceback" not in dialogs_shown[-1][1].message
        assert list(locked.iterdir()) == []
    missing = tmp_path / "file.txt"
    missing.write_text("x")
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        window.export_sweep_to(str(missing / "sub"))  # a path under a file: cannot exist
    assert ended.args == ["export_sweep", False]
    assert "Traceback" not in dialogs_shown[-1][1].message
    # new data forgets the sweep: nothing left to export
    with qtbot.waitSignal(window.data_shown, timeout=20_000):
        window.load(DataSpec(source="sample:GSPC", start="2017-01-01"))
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=20_000)
    assert not view.export_button.isEnabled()


def test_a_configuration_not_selected_opens_without_its_test_split(make_window, qtbot,
                                                                   dialogs_shown, tmp_path,
                                                                   monkeypatch):
    from sandbox import looks

    monkeypatch.setenv(looks.ENV_LOOKS_FILE, str(tmp_path / "looks.json"))
    window = make_window(TINY)
    view = window.sweep_view
    view.edits["hidden"].setText("4,8")
    view.seeds_spin.setValue(1)
    view.jobs_spin.setValue(1)
    assert run_sweep_and_wait(qtbot, window) == "finished"
    chosen = view.selected_config_id()
    other = next(i for i in view.row_ids() if i != chosen)

    def open_config(config_id: str):
        shown = []
        window.run_shown.connect(shown.append)
        view.select(config_id)
        with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
            view.open_button.click()
        assert ended.args == ["open_sweep", True]
        qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
        window.run_shown.disconnect(shown.append)
        return shown[0]

    result = open_config(other)
    assert result.test_hidden
    caption = window.metrics_view.caption.text()
    assert caption.startswith("Validation split") and "test split stays hidden" in caption
    first_test = result.predictions.index[result.predictions[C.SPLIT] == C.TEST][0]
    first_test_bar = window.prices.frame.index.get_loc(first_test)
    x, _ = window.chart.predicted_curve.getData()
    assert len(x) > 0 and float(x.max()) <= first_test_bar  # nothing drawn in the test split
    ex, _ = window.chart.equity.model.getData()
    assert float(ex.max()) < first_test_bar
    assert not window.act_export_predictions.isEnabled()
    assert "validation only" in window.status_text.text()
    # the model row holds the validation figures of the run, not the test ones
    row = [window.metrics_view.table.item(0, c).data(QtCore.Qt.ItemDataRole.UserRole)
           for c in range(window.metrics_view.table.columnCount())]
    assert row[0] == pytest.approx(result.metrics_by_split[C.VAL]["model"][C.RMSE])

    assert not window.act_show_test_results.isEnabled()  # never, for one not selected

    result = open_config(chosen)
    assert not result.test_hidden
    # validation first, as after training; its test split is there on request (a look)
    assert window.metrics_view.caption.text().startswith("Validation split")
    assert window.act_show_test_results.isEnabled()
    with qtbot.waitSignal(window.test_shown, timeout=20_000):
        window.metrics_view.reveal_button.click()
    qtbot.waitUntil(window.is_idle, timeout=20_000)
    assert window.metrics_view.caption.text().startswith("Test split")
    x, _ = window.chart.predicted_curve.getData()
    assert float(x.max()) > first_test_bar
    assert window.act_export_predictions.isEnabled()
    assert dialogs_shown == []


def test_a_run_opened_on_data_that_has_since_changed_is_not_drawn(make_window, qtbot,
                                                                 monkeypatch):
    import threading

    from sandbox.ui import controller

    window = make_window(TINY)
    view = window.sweep_view
    view.seeds_spin.setValue(1)
    view.jobs_spin.setValue(1)
    assert run_sweep_and_wait(qtbot, window) == "finished"
    release = threading.Event()
    real = controller._open_sweep_run

    def slow_open(*args, **kwargs):
        release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(controller, "_open_sweep_run", slow_open)
    shown = []
    window.run_shown.connect(shown.append)
    window.open_sweep_config(view.selected_id())
    with qtbot.waitSignal(window.data_shown, timeout=20_000):
        window.load(DataSpec(source="sample:GSPC", start="2017-01-01"))
    with qtbot.waitSignal(window.task_ended, timeout=20_000):
        release.set()
    assert shown == [] and window.result is None
    assert "the data or the run changed meanwhile" in window.log_view.toPlainText()


def test_a_long_summary_scrolls_instead_of_squeezing_the_table(qtbot):
    view = SweepView()
    qtbot.addWidget(view)
    view.resize(1000, 230)  # the tab's height in a 900 px window
    view.show()
    qtbot.waitExposed(view)
    view.result_label.setText("\n".join(f"summary line {i}" for i in range(12)))
    qtbot.wait(20)
    row = view.table.verticalHeader().defaultSectionSize()
    header = view.table.horizontalHeader().height()
    assert view.table.height() >= header + 4 * row  # four configurations stay in sight
    assert view.result_box.verticalScrollBar().maximum() > 0  # the summary scrolls


def test_configuration_labels_are_shown_in_full(qtbot):
    view = SweepView()
    qtbot.addWidget(view)
    view.resize(700, 300)
    view.show()
    qtbot.waitExposed(view)
    label = "c01  network=lstm hidden=16 window=60 lr=0.001"
    view.model.appendRow([QtGui.QStandardItem(label if c == 1 else "x")
                          for c in range(len(view.HEADERS))])
    qtbot.wait(20)
    needed = view.table.fontMetrics().horizontalAdvance(label)
    assert view.table.horizontalHeader().sectionSize(1) >= needed  # nothing cut short
    assert not view.table.wordWrap()
