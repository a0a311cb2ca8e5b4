"""The app is validation-first: the Metrics tab shows validation while the user tunes; Show
test results reveals the test split of the shown run and counts the look for this data
(sandbox.looks, shared with the CLI); retraining or a new strategy goes back to validation.

Tiny runs (window 10, hidden 8, 2 epochs, GSPC since 2014) in this process; the counts file
lives under tmp_path.
"""

from __future__ import annotations

import dataclasses
import json
import math
from statistics import NormalDist

import numpy as np
import pytest
from helpers import train_and_wait
from PySide6 import QtCore

from sandbox import constants as C
from sandbox import looks
from sandbox.config import DataSpec, RunConfig
from sandbox.export import fingerprint

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

USER = QtCore.Qt.ItemDataRole.UserRole


@pytest.fixture(autouse=True)
def looks_file(tmp_path, monkeypatch):
    path = tmp_path / "looks" / "looks.json"
    monkeypatch.setenv(looks.ENV_LOOKS_FILE, str(path))
    return path


def model_rmse_cell(window) -> float:
    return window.metrics_view.table.item(0, 0).data(USER)


def reveal(qtbot, window):
    with qtbot.waitSignal(window.test_shown, timeout=20_000) as shown:
        window.metrics_view.reveal_button.click()
    qtbot.waitUntil(window.is_idle, timeout=20_000)
    return shown.args[1]


def hand_psr(returns: np.ndarray) -> tuple[float, float]:
    """Per-bar Sharpe and PSR (benchmark 0) of ``returns``, written out from the formula."""
    r = returns[~np.isnan(returns)]
    n = r.size
    sr = r.mean() / r.std(ddof=1)
    d = r - r.mean()
    m2 = np.mean(d**2)
    skew, kurt = np.mean(d**3) / m2**1.5, np.mean(d**4) / m2**2
    z = sr * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return sr, NormalDist().cdf(z)


def test_test_figures_are_shown_on_request_and_every_look_is_counted(make_window, qtbot,
                                                                     looks_file):
    window = make_window()
    assert not window.act_show_test_results.isEnabled()  # nothing trained yet
    train_and_wait(qtbot, window)
    result, view = window.result, window.metrics_view
    # after training: validation figures, test hidden, nothing counted
    assert view.caption.text().startswith("Validation split")
    assert model_rmse_cell(window) == pytest.approx(result.metrics_by_split[C.VAL]["model"]
                                                    [C.RMSE])
    assert not view.evidence_label.isVisibleTo(view)
    assert "validation RMSE" in window.status_text.text()
    assert window.act_show_test_results.isEnabled() and view.reveal_button.isEnabled()
    assert not window.act_show_validation.isEnabled()
    assert not looks_file.exists()

    evidence = reveal(qtbot, window)
    fp = fingerprint(window.prices.frame)
    assert evidence.count == 1 and looks.look_count(fp) == 1
    assert json.loads(looks_file.read_text())["datasets"][fp]["count"] == 1
    assert view.caption.text().startswith("Test split")
    assert "Test split seen once on this data." in view.caption.text()
    assert model_rmse_cell(window) == pytest.approx(result.metrics_by_split[C.TEST]["model"]
                                                    [C.RMSE])
    assert "test split seen once on this data" in view.table.item(0, 3).toolTip()
    # the PSR of the model's test returns, from the formula
    test = result.predictions[result.predictions[C.SPLIT] == C.TEST]
    sr, psr = hand_psr(test[C.STRATEGY_RETURN].to_numpy(np.float64))
    assert looks.looks(fp)[0].sharpe_per_bar == pytest.approx(sr)
    assert evidence.psr == pytest.approx(psr)
    assert view.evidence_label.text().startswith(f"PSR {psr:.2f}: the probability that")
    assert "first look" in view.evidence_label.text()
    assert view.reveal_button.text() == "Back to validation"
    assert "showed the test split" in window.log_view.toPlainText()

    # back to validation and again: the same run's test split, no new look
    window.act_show_validation.trigger()
    assert view.caption.text().startswith("Validation split")
    assert reveal(qtbot, window).count == 1
    assert looks.look_count(fp) == 1

    # a new strategy is a new look: back to validation until asked again
    with qtbot.waitSignal(window.run_shown, timeout=20_000):
        window.strategy_panel.cost_spin.setValue(20.0)
    qtbot.waitUntil(window.is_idle, timeout=20_000)
    assert view.caption.text().startswith("Validation split")
    assert window.act_show_test_results.isEnabled()
    second = reveal(qtbot, window)
    assert second.count == 2 and looks.look_count(fp) == 2
    assert "Test split seen twice on this data." in view.caption.text()
    assert second.n_trials == 2 and second.dsr is not None
    assert "Deflated Sharpe" in view.evidence_label.text()
    assert "2 looks at zero-skill strategies would show by luck" in view.evidence_label.text()

    # retraining goes back to validation too
    train_and_wait(qtbot, window)
    assert view.caption.text().startswith("Validation split")
    assert reveal(qtbot, window).count == 3
    assert looks.look_count(fp) == 3


def test_a_hidden_test_split_is_not_revealed(make_window, qtbot, looks_file):
    window = make_window()
    train_and_wait(qtbot, window)
    hidden = dataclasses.replace(window.result, test_hidden=True)
    with qtbot.waitSignal(window.run_shown, timeout=20_000):
        window.controller._on_trained(hidden)  # as a sweep configuration not selected
    qtbot.waitUntil(window.is_idle, timeout=20_000)
    assert window.result is hidden
    assert not window.act_show_test_results.isEnabled()
    assert not window.metrics_view.reveal_button.isEnabled()
    assert "not the one selected" in window.metrics_view.reveal_button.toolTip()
    window.controller.show_test()
    assert window.controller.is_idle() and not looks_file.exists()
    assert window.metrics_view.caption.text().startswith("Validation split")


def test_a_saved_model_on_data_before_its_test_period_has_no_test_caption(make_window, qtbot,
                                                                          tmp_path):
    window = make_window()
    train_and_wait(qtbot, window)
    with qtbot.waitSignal(window.task_ended, timeout=20_000):
        window.save_model_to(str(tmp_path / "bundle"))
    test_start = window.result.predictions.index[
        window.result.predictions[C.SPLIT] == C.TEST][0]
    with qtbot.waitSignal(window.data_shown, timeout=20_000):
        window.load(DataSpec(source="sample:GSPC", start="2014-01-01", end="2018-01-31"))
    qtbot.waitUntil(window.is_idle, timeout=20_000)
    with qtbot.waitSignal(window.run_shown, timeout=20_000) as shown:
        window.load_model_from(str(tmp_path / "bundle"))
    loaded = shown.args[0]
    assert (loaded.predictions[C.SPLIT] != C.TEST).all()
    caption = window.metrics_view.caption.text()
    last = window.prices.frame.index[-1]
    assert caption.startswith(
        f"No out-of-sample rows: this data ends {last:%Y-%m-%d}, before the model's test "
        f"period (from {test_start:%Y-%m-%d}); every row here was seen in training or "
        "validation.")
    assert "The saved model's validation period" in caption
    assert "Test split" not in caption
    assert "saved model's validation period" in window.metrics_view.verdict_label.text()
    assert not window.act_show_test_results.isEnabled()
    assert "no out-of-sample rows" in window.act_show_test_results.toolTip()
    assert window.chart.note() == ""  # the model's own symbol and bar size: nothing to say
    # the same model on the other sample: the chart says whose model it is
    with qtbot.waitSignal(window.data_shown, timeout=20_000):
        window.load(DataSpec(source="sample:GOOG"))
    qtbot.waitUntil(window.is_idle, timeout=20_000)
    with qtbot.waitSignal(window.run_shown, timeout=20_000):
        window.load_model_from(str(tmp_path / "bundle"))
    assert window.chart.note() == "Predictions of a model trained on GSPC, applied to GOOG"


def test_the_run_menu_holds_the_test_actions(make_window):
    window = make_window(RunConfig(data=DataSpec(source="sample:GSPC", start="2014-01-01")))
    run_menu = next(a.menu() for a in window.menuBar().actions()
                    if a.text().replace("&", "") == "Run")
    texts = [a.text().replace("&", "") for a in run_menu.actions() if not a.isSeparator()]
    assert texts == ["Train", "Stop", "Show test results", "Back to validation",
                     "Audit for leakage..."]
    assert window.act_show_test_results.shortcut().toString() == "Ctrl+Shift+T"
    view_menu = next(a.menu() for a in window.menuBar().actions()
                     if a.text().replace("&", "") == "View")
    assert window.chart.return_view_action in view_menu.actions()
    assert window.chart.log_price_action in view_menu.actions()
    assert window.chart.log_equity_action in view_menu.actions()


def test_the_chart_draws_the_model_on_the_test_split_only_after_the_reveal(make_window, qtbot):
    window = make_window()
    train_and_wait(qtbot, window)
    result, chart = window.result, window.chart
    frame = window.prices.frame
    test_rows = result.predictions.index[result.predictions[C.SPLIT] == C.TEST]
    first_test_bar = int(frame.index.get_indexer([test_rows[0]])[0])

    def drawn_bars(curve) -> np.ndarray:
        x, _y = curve.getData()
        return np.asarray([] if x is None else x)

    # while tuning: no prediction or equity point at or after the test split's first bar
    assert drawn_bars(chart.predicted_curve).size > 0
    assert drawn_bars(chart.predicted_curve).max() <= first_test_bar
    assert drawn_bars(chart.equity.model).max() < first_test_bar
    with qtbot.waitSignal(window.run_shown, timeout=20_000):
        reveal(qtbot, window)
    assert drawn_bars(chart.predicted_curve).max() > first_test_bar
    assert drawn_bars(chart.equity.model).max() > first_test_bar
    with qtbot.waitSignal(window.run_shown, timeout=20_000):
        window.act_show_validation.trigger()
    assert drawn_bars(chart.predicted_curve).max() <= first_test_bar
