"""What the predicted close really shows: the naive "no change" forecast beside it, and a return
view with the predicted and the actual return of each bar.

Reference values are written out by hand: the row decided at bar ``t`` predicts bar ``t+1``,
so its predicted close, the naive forecast ``close[t]`` and both returns are drawn at ``t+1``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import chart_with_prices, drawn
from pyqtgraph.Qt import QtCore, QtWidgets

from sandbox.constants import (
    ACTUAL_RETURN,
    CLOSE,
    EQUITY,
    POSITION,
    PREDICTED_RETURN,
    SPLIT,
    STRATEGY_RETURN,
    TRAIN,
    VAL,
)
from sandbox.ui.charts import PriceChart
from sandbox.ui.charts.candles import MAX_ITEMS

CLOSES = [100.0, 102.0, 101.0, 104.0, 103.0, 105.0, 106.0, 104.0]
# rows decided at bars 2..6 (train 2..4, validation 5..6)
PREDICTED = [0.004, -0.002, 0.001, 0.003, -0.001]
ACTUAL = [0.0296, -0.0097, 0.0192, 0.0095, -0.0190]


def prices(closes: list[float]) -> pd.DataFrame:
    close = np.asarray(closes, dtype=np.float64)
    index = pd.date_range("2024-01-01", periods=close.size, name="date")
    return pd.DataFrame({"open": close, "high": close + 1.0, "low": close - 1.0,
                         "close": close, "volume": np.ones(close.size)}, index=index)


def predictions(frame: pd.DataFrame) -> pd.DataFrame:
    part = frame.iloc[2:7]
    return pd.DataFrame({
        SPLIT: [TRAIN] * 3 + [VAL] * 2,
        CLOSE: part["close"].to_numpy(),
        ACTUAL_RETURN: ACTUAL,
        PREDICTED_RETURN: PREDICTED,
        POSITION: [1.0, 0.0, 1.0, 1.0, 0.0],
        STRATEGY_RETURN: [0.01, 0.0, np.nan, 0.01, np.nan],
        EQUITY: [1.01, 1.01, np.nan, 1.01, np.nan],
    }, index=part.index)


@pytest.fixture
def chart(qtbot) -> PriceChart:
    return chart_with_prices(qtbot, prices(CLOSES))


def legend(chart: PriceChart) -> list[str]:
    return [label.text for _sample, label in chart.price_legend.items]


def test_the_naive_forecast_is_the_last_close_at_the_predicted_closes_bar(chart):
    chart.set_predictions(predictions(prices(CLOSES)))
    px, py = drawn(chart.predicted_curve)
    nx, ny = drawn(chart.naive_curve)
    assert px == nx == [3, 4, 5, 6, 7]
    # close[t] of the rows decided at bars 2..6, each drawn where its prediction is
    assert ny == [101.0, 104.0, 103.0, 105.0, 106.0]
    assert py == pytest.approx([101.0 * np.exp(0.004), 104.0 * np.exp(-0.002),
                                103.0 * np.exp(0.001), 105.0 * np.exp(0.003),
                                106.0 * np.exp(-0.001)])
    assert "no change (last close)" in legend(chart)
    assert chart.naive_curve.isVisible() and not chart.returns_plot.isVisible()


def test_the_return_view_shows_predicted_and_actual_return_on_the_same_bar(chart, qtbot):
    chart.set_predictions(predictions(prices(CLOSES)))
    assert chart.return_view_action.isEnabled() and not chart.is_return_view()
    with qtbot.waitSignal(chart.return_view_changed, timeout=1000) as switched:
        qtbot.mouseClick(chart.return_view_button, QtCore.Qt.MouseButton.LeftButton)
    assert switched.args == [True] and chart.is_return_view()
    assert chart.returns_plot.isVisible()
    px, py = drawn(chart.predicted_return_curve)
    ax, ay = drawn(chart.actual_return_curve)
    assert px == ax == [3, 4, 5, 6, 7]
    assert py == pytest.approx([0.4, -0.2, 0.1, 0.3, -0.1])  # in percent
    assert ay == pytest.approx([2.96, -0.97, 1.92, 0.95, -1.90])
    assert chart.zero_line.value() == 0.0
    # the two accounts are not joined: train | validation
    _, full = chart.predicted_return_curve.getData()
    assert np.isnan(full).sum() == 1
    # the y range holds both series and zero
    (_, _), (y0, y1) = chart.returns_plot.getViewBox().viewRange()
    assert y0 < -1.90 and y1 > 2.96
    # in the return view the predicted close and the naive line leave the price pane
    assert not chart.predicted_curve.isVisible() and not chart.naive_curve.isVisible()
    assert "predicted next close" not in legend(chart)
    assert legend(chart) == ["close", "buy", "sell"]
    chart.set_return_view(False)
    assert not chart.returns_plot.isVisible() and chart.predicted_curve.isVisible()
    assert legend(chart) == ["close", "predicted next close", "no change (last close)", "buy",
                             "sell"]


def test_the_toggle_explains_itself_and_waits_for_predictions(chart):
    button = chart.return_view_button
    assert button.accessibleName() == "Predicted vs actual return"
    tip = button.toolTip()
    assert "actual return" in tip and tip.count(".") == 1 and tip.endswith(".")
    assert button.isCheckable() or chart.return_view_action.isCheckable()
    assert not chart.return_view_action.isEnabled()  # nothing to show yet
    chart.set_return_view(True)  # chosen before a run: the pane waits for predictions
    assert not chart.returns_plot.isVisible()
    chart.set_predictions(predictions(prices(CLOSES)))
    assert chart.returns_plot.isVisible()
    chart.set_prices(prices(CLOSES))  # new prices clear the predictions
    assert not chart.returns_plot.isVisible() and chart.is_return_view()
    assert not chart.return_view_action.isEnabled()


def test_the_hidden_returns_pane_leaves_no_gap(chart):
    chart.set_predictions(predictions(prices(CLOSES)))

    def gap() -> float:
        QtWidgets.QApplication.processEvents()  # the layout request
        chart.grab()
        return chart.volume_plot.geometry().top() - chart.price_plot.geometry().bottom()

    def heights() -> tuple[float, float]:
        return gap(), chart.returns_plot.geometry().height()

    assert chart._returns is None and gap() < 3  # not built yet: an empty grid row
    gap_now, returns_height = heights()  # built, hidden
    assert returns_height == 0 and gap_now < 3
    chart.set_return_view(True)
    gap_now, returns_height = heights()
    assert returns_height > 50 and gap_now >= returns_height
    chart.set_return_view(False)
    gap_now, returns_height = heights()
    assert returns_height == 0 and gap_now < 3


def test_the_returns_pane_is_built_when_first_shown_like_the_others(qtbot):
    frame = prices(CLOSES)
    chart = PriceChart(dark=False)
    qtbot.addWidget(chart)
    chart.resize(1000, 700)
    chart.set_prices(frame)
    chart.set_splits(pd.Series([TRAIN] * 5 + [VAL] * 3, index=frame.index))
    chart.set_predictions(predictions(frame))
    assert chart._returns is None and len(chart._plots()) == 3  # no return view asked for
    chart.set_return_view(True)
    plot = chart._returns.plot
    assert chart._plots() == (chart.price_plot, plot, chart.volume_plot, chart.equity_plot)
    assert plot.isVisible() and plot.getViewBox().linkedView(0) is chart.price_plot.getViewBox()
    # what the other panes got when the chart was made, and since
    assert plot.getViewBox().state["limits"]["xLimits"] == \
        chart.volume_plot.getViewBox().state["limits"]["xLimits"]
    assert [r.property("split") for p, r in chart._regions if p is plot] == [TRAIN, VAL]
    assert chart.axes[1] is plot.getAxis("bottom") and len(chart._vlines) == 4
    light = chart.volume_plot.getAxis("left").pen().color().name()
    assert plot.getAxis("left").pen().color().name() == light
    assert [label.text for _s, label in chart.returns_legend.items] == [
        "predicted return", "actual return"]
    assert drawn(chart.predicted_return_curve)[1] == pytest.approx([0.4, -0.2, 0.1, 0.3, -0.1])
    chart.set_dark(True)
    assert plot.getAxis("left").pen().color().name() != light
    assert chart.actual_return_curve.opts["pen"].color().name() == "#dcdcdc"


def test_the_readout_says_the_return_is_the_next_bars(chart):
    chart.set_predictions(predictions(prices(CLOSES)))
    info = chart.readout(2)
    assert info[PREDICTED_RETURN] == 0.004 and info[ACTUAL_RETURN] == 0.0296
    from sandbox.ui.charts.price_chart import _format_readout
    assert "next bar: pred +0.40%   actual +2.96%" in _format_readout(info)


def test_the_new_lines_follow_the_level_of_detail_on_100k_bars(qtbot):
    n = 100_000
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    frame = prices(list(close))
    frame.index = pd.bdate_range("1850-01-01", periods=n, name="date")
    actual = np.r_[np.log(close[1:] / close[:-1]), np.nan]
    rows = pd.DataFrame({SPLIT: [TRAIN] * n, CLOSE: close, ACTUAL_RETURN: actual,
                         PREDICTED_RETURN: rng.normal(0.0, 0.001, n), POSITION: np.ones(n),
                         STRATEGY_RETURN: np.nan_to_num(actual)}, index=frame.index)
    rows[EQUITY] = np.cumprod(1.0 + rows[STRATEGY_RETURN])
    chart = PriceChart(dark=True)
    qtbot.addWidget(chart)
    chart.resize(1400, 900)
    chart.grab()
    chart.set_prices(frame)
    chart.set_predictions(rows)
    chart.set_return_view(True)
    curves = (chart.naive_curve, chart.predicted_return_curve, chart.actual_return_curve)
    for curve in curves:
        assert curve.opts["clipToView"] and curve.opts["autoDownsample"]
    for first, last in [(0, n - 1), (n - 2000, n - 1), (5_000, 35_000)]:
        chart.show_range(first, last)
        chart.grab()
        for curve in curves:
            shown, _ = curve.curve.getData()  # what is handed to the painter
            assert len(shown) <= MAX_ITEMS
    chart.set_return_view(False)
    chart.show_range(0, n - 1)
    chart.grab()
    shown, _ = chart.naive_curve.curve.getData()
    assert len(shown) <= MAX_ITEMS
