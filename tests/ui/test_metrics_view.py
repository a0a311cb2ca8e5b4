"""The Metrics tab: best-of-column marks and the plain-language verdict."""

from __future__ import annotations

import pytest

from sandbox import constants as C
from sandbox.ui.metrics_view import BEST_MARK, MetricsView, best_rows, table_rows, verdict


def metrics(model_rmse: float, rw_rmse: float = 0.01, model_total: float = 0.05,
            hold_total: float = 0.10) -> dict:
    def trading(total, sharpe, dd, trades):
        return {C.TOTAL_RETURN: total, C.SHARPE: sharpe, C.MAX_DRAWDOWN: dd, C.N_TRADES: trades}

    return {
        "split": "test",
        C.MODEL: {C.RMSE: model_rmse, C.DIRECTIONAL_ACCURACY: 0.52,
                  **trading(model_total, 0.4, -0.12, 40)},
        "baselines": {
            C.RANDOM_WALK: {C.RMSE: rw_rmse, C.DIRECTIONAL_ACCURACY: None,
                            **trading(0.0, 0.0, 0.0, 0)},
            C.MOMENTUM: {C.RMSE: 0.014, C.DIRECTIONAL_ACCURACY: 0.47,
                         **trading(-0.08, -0.3, -0.2, 200)},
            C.DRIFT: {C.RMSE: 0.0101, C.DIRECTIONAL_ACCURACY: 0.54,
                      **trading(hold_total, 0.7, -0.19, 1)},
            C.BUY_AND_HOLD: trading(hold_total, 0.7, -0.19, 1),
        },
    }


def test_rows_hold_the_model_and_every_baseline():
    rows = table_rows(metrics(0.011))
    assert [name for name, _ in rows] == [C.MODEL, *C.BASELINES]
    assert rows[-1][1][C.RMSE] is None  # buy & hold has no forecast


def test_best_of_each_column_ties_included():
    best = best_rows(table_rows(metrics(0.009)))
    assert best[C.RMSE] == {C.MODEL}
    assert best[C.DIRECTIONAL_ACCURACY] == {C.DRIFT}
    assert best[C.TOTAL_RETURN] == {C.DRIFT, C.BUY_AND_HOLD}
    assert best[C.MAX_DRAWDOWN] == {C.RANDOM_WALK}  # closest to 0
    assert C.N_TRADES not in best  # neither more nor fewer trades is better by itself


@pytest.mark.parametrize("model_rmse", [0.0100, 0.0120])
def test_verdict_says_when_the_model_does_not_beat_the_random_walk(model_rmse):
    text = verdict(metrics(model_rmse, rw_rmse=0.0100))
    assert text.startswith("The model does not beat the random walk")
    assert "trails buy & hold" in text


def test_verdict_when_the_model_beats_the_random_walk():
    text = verdict(metrics(0.0095, rw_rmse=0.0100, model_total=0.2, hold_total=0.1))
    assert "5.00% below the random walk" in text
    assert "beats buy & hold" in text


def test_view_marks_the_best_cells(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    view.set_metrics(metrics(0.009), model_label="model (lstm)")
    assert view.table.rowCount() == 5
    best = view.best_cells()
    assert best["RMSE"] == ["model (lstm)"]
    assert sorted(best["Total return"]) == ["buy & hold", "drift"]
    assert "Trades" not in best
    assert view.table.item(1, 1).text() == "n/a"  # random walk: direction undefined
    assert view.table.item(0, 0).text().endswith(BEST_MARK)
    assert "below the random walk" in view.verdict_label.text()


def test_the_verdict_names_the_split_it_reads():
    metrics = {"split": "val", "model": {"rmse": 0.02},
               "baselines": {"random_walk": {"rmse": 0.01}}}
    assert "on the validation split" in verdict(metrics)
    metrics["split"] = "test"
    assert "on the test split" in verdict(metrics)


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_long_texts_never_widen_the_window(qtbot):
    from sandbox.ui.main_window import MainWindow

    window = MainWindow(persist=False, headless=True)
    qtbot.addWidget(window)
    window.resize(780, 560)  # inside the offscreen platform's 800x600 screen
    window.show()
    qtbot.waitExposed(window)
    long_text = "a very long message " * 40
    window.status_text.setText(long_text)
    window.metrics_view.caption.setText(long_text)
    window.metrics_view.verdict_label.setText(long_text)
    window.tabs.setCurrentWidget(window.metrics_view)
    qtbot.wait(50)
    assert window.width() == 780
