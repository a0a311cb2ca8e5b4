"""What a new user trips over on the chart: exported pictures with the crosshair in them, an
SVG holding a bitmap, legends over the curves, no log scale, tick labels of two panes on top
of each other, a stale readout, an empty volume pane, no word on what the predictions are."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from PySide6 import QtCore, QtGui
from test_charts import fake_predictions

from sandbox.constants import (
    TRAIN,
    VAL,
)
from sandbox.ui.charts import PriceChart
from sandbox.ui.charts.axis import ValueAxis, log_ticks
from sandbox.ui.screenshot import StripGrab, svg_bytes


def bars(n: int = 600, *, start: float = 10.0, growth: float = 0.004,
         volume: bool = True) -> pd.DataFrame:
    """A steady climb (x ~11 over 600 bars): on a linear scale its early bars are flat."""
    rng = np.random.default_rng(4)
    close = start * np.exp(np.cumsum(growth + rng.normal(0.0, 0.01, n)))
    open_ = np.r_[start, close[:-1]]
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    vol = rng.integers(1, 1_000_000, n).astype(np.float64) if volume else np.zeros(n)
    index = pd.bdate_range("2001-01-01", periods=n, name="date")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": vol}, index=index)


def run(frame: pd.DataFrame) -> pd.DataFrame:
    n = len(frame)
    position = (np.arange(n) % 9 < 4).astype(np.float64)
    split = np.array([TRAIN] * (n * 3 // 4) + [VAL] * (n - n * 3 // 4))
    return fake_predictions(frame, position, split, seed=5)


@pytest.fixture
def chart(qtbot) -> PriceChart:
    widget = PriceChart(dark=True)
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    frame = bars()
    widget.set_prices(frame, title="TEST")
    widget.set_predictions(run(frame))
    for _ in range(2):  # lay out and paint; let the scene report its first changes
        widget.grab()
        qtbot.wait(50)
    return widget


def move_mouse(chart: PriceChart, qtbot, scene_pos: QtCore.QPointF) -> None:
    chart.graphics.scene().sigMouseMoved.emit(scene_pos)
    qtbot.wait(80)  # the crosshair is rate limited


def over_the_candles(chart: PriceChart) -> QtCore.QPointF:
    vb = chart.price_plot.getViewBox()
    return vb.sceneBoundingRect().center()


def strip_picture(chart: PriceChart, qtbot) -> QtGui.QImage:
    grab = StripGrab(chart, lambda: chart.revision)
    with qtbot.waitSignal(grab.grabbed, timeout=5000) as done:
        grab.start()
    return done.args[0].convertToFormat(QtGui.QImage.Format.Format_RGB32)


def differing_bytes(a: QtGui.QImage, b: QtGui.QImage) -> int:
    assert a.size() == b.size()

    def array(image: QtGui.QImage) -> np.ndarray:
        ptr = image.constBits()
        return np.frombuffer(ptr, np.uint8, image.sizeInBytes()).reshape(
            image.height(), image.bytesPerLine()).copy()

    return int(np.count_nonzero(array(a) != array(b)))


# ------------------------------------------------------------------- 7. export ---------------
def test_an_exported_png_leaves_the_crosshair_and_readout_out(chart, qtbot):
    move_mouse(chart, qtbot, over_the_candles(chart))
    assert chart.readout_label.text()  # the crosshair and its readout are up
    assert any(line.isVisible() for line in chart._vlines)
    with_mouse = strip_picture(chart, qtbot)
    assert chart.readout_label.text()  # and back after the picture
    move_mouse(chart, qtbot, QtCore.QPointF(2.0, 2.0))  # off the plots
    without_mouse = strip_picture(chart, qtbot)
    assert differing_bytes(with_mouse, without_mouse) == 0  # pixel for pixel


def test_a_mouse_move_during_the_export_waits_for_it(chart, qtbot):
    chart.hide_transients()
    move_mouse(chart, qtbot, over_the_candles(chart))
    assert chart.readout_label.text() == ""  # not in the picture being drawn
    chart.restore_transients()
    assert chart.readout_label.text()  # applied once the picture is done


def test_the_svg_holds_vector_paths_of_the_bars_in_view_and_no_bitmap(chart, qtbot):
    chart.show_range(100, 199)
    chart.grab()
    move_mouse(chart, qtbot, over_the_candles(chart))
    text = svg_bytes(chart, "chart").decode("utf-8")
    assert "<image" not in text  # no cached background, no marker bitmaps
    assert text.count("<path") >= 10
    # the candles in view only: a wick per bar, drawn from the bars of 100..199
    drawn = chart.candles.buckets_in_view()
    assert drawn is not None and drawn.first.tolist() == list(range(100, 200))
    assert chart.readout_label.text()  # the crosshair's readout is back after the export
    assert not chart.transients_hidden()
    assert not re.search(r"<image", svg_bytes(chart, "again").decode("utf-8"))


# ------------------------------------------------------------------- 10. legends, log --------
@pytest.mark.parametrize("pane", ["price", "equity", "returns"])
def test_legends_sit_above_the_plot_area(chart, qtbot, pane):
    chart.set_return_view(True)
    chart.grab()
    plot, legend = {"price": (chart.price_plot, chart.price_legend),
                    "equity": (chart.equity_plot, chart.equity.legend),
                    "returns": (chart.returns_plot, chart.returns_legend)}[pane]
    assert legend.items
    box = legend.sceneBoundingRect()
    area = plot.getViewBox().sceneBoundingRect()
    assert box.bottom() <= area.top() + 0.5, (box, area)  # not over the curves
    assert box.left() >= area.left() - 0.5


def test_log_price_scale_keeps_the_candles_and_labels_plain_prices(chart, qtbot):
    frame = bars()
    chart.show_range(0, len(frame) - 1)
    assert not chart.is_log_price()
    chart.log_price_action.trigger()
    assert chart.is_log_price()
    chart.grab()
    (_, _), (y0, y1) = chart.price_plot.getViewBox().viewRange()
    assert y0 < np.log10(frame["low"].min()) < np.log10(frame["high"].max()) < y1
    # the candles are drawn in log10 of the prices, bucketed the same way
    buckets = chart.candles.buckets_in_view()
    assert buckets is not None
    assert buckets.high.max() == pytest.approx(np.log10(frame["high"].max()))
    # the overlays and markers follow
    assert np.nanmax(chart.close_curve.yData) == pytest.approx(frame["close"].max())
    shown = chart.close_curve.curve.getData()[1]
    assert np.nanmax(shown) == pytest.approx(np.log10(frame["close"].max()), rel=1e-6)
    _, buy_y = chart.buy_markers.getData()
    assert np.nanmax(buy_y) < 3.0  # log10 of prices below 1000
    # the axis writes prices, not their logarithms
    axis = chart.price_plot.getAxis("left")
    (spacing, values), = axis.tickValues(y0, y1, 400)
    labels = axis.tickStrings(values, 1.0, spacing)
    assert len(labels) >= 3
    numbers = [float(label.replace(",", "")) for label in labels]
    assert numbers == pytest.approx([10 ** v for v in values], rel=1e-4)
    assert min(numbers) < 20 and max(numbers) >= 100  # a decade and more, in round prices
    chart.log_price_action.trigger()
    assert not chart.is_log_price()
    (_, _), (y0, y1) = chart.price_plot.getViewBox().viewRange()
    assert y0 < frame["low"].min() and y1 > frame["high"].max()


def test_log_equity_scale(chart, qtbot):
    chart.set_log_equity(True)
    chart.grab()
    (_, _), (e0, e1) = chart.equity_plot.getViewBox().viewRange()
    assert e0 < 0.0 < e1 < 1.0  # log10 of equity around 1.0
    assert chart.equity.one.value() == 0.0
    shown = chart.equity.model.curve.getData()[1]
    assert np.nanmax(shown) < 1.0
    assert chart.equity_plot.getAxis("left").log_scale
    chart.set_log_equity(False)
    assert chart.equity.one.value() == 1.0


def test_log_scale_is_refused_for_prices_at_or_below_zero(qtbot):
    chart = PriceChart(dark=True)
    qtbot.addWidget(chart)
    chart.set_log_price(True)
    frame = bars()
    frame.iloc[5, frame.columns.get_loc("low")] = -1.0
    chart.set_prices(frame)
    assert not chart.is_log_price() and not chart.log_price_action.isEnabled()
    chart.set_prices(bars())
    assert chart.is_log_price()  # the choice held


def test_log_ticks_are_round_values_that_fit():
    ticks = [round(10 ** v, 6) for v in log_ticks(np.log10(8), np.log10(900), 500)]
    assert ticks[0] >= 8 and ticks[-1] <= 900 and 10 in ticks and 100 in ticks
    dense = log_ticks(np.log10(2400), np.log10(2500), 400)
    assert len(dense) >= 3
    assert all(abs(round(10 ** v) - 10 ** v) < 1e-6 for v in dense)
    assert log_ticks(1.0, 1.0, 400) == []
    axis = ValueAxis()
    axis.set_log_scale(True)
    assert axis.tickStrings([np.log10(2400.0), np.log10(0.5)], 1.0, 1.0) == ["2,400", "0.5"]


# ------------------------------------------------------------------- 13. ticks, readout ------
def test_the_equity_panes_top_label_has_room_below_the_volume_pane(chart):
    chart.grab()
    font = chart.equity_plot.getAxis("left").style["tickFont"] or QtGui.QFont()
    text_height = QtGui.QFontMetricsF(font).height()
    volume = chart.volume_plot.getViewBox().sceneBoundingRect()
    equity = chart.equity_plot.getViewBox().sceneBoundingRect()
    assert equity.top() - volume.bottom() >= text_height
    price = chart.price_plot.getViewBox().sceneBoundingRect()
    assert volume.top() - price.bottom() >= text_height


def test_the_readout_clears_when_the_mouse_leaves_and_on_new_predictions(chart, qtbot):
    move_mouse(chart, qtbot, over_the_candles(chart))
    assert chart.readout_label.text()
    QtCore.QCoreApplication.sendEvent(chart.graphics, QtCore.QEvent(QtCore.QEvent.Type.Leave))
    assert chart.readout_label.text() == ""
    assert not any(line.isVisible() for line in [*chart._vlines, chart._hline])
    move_mouse(chart, qtbot, over_the_candles(chart))
    assert chart.readout_label.text()
    chart.set_predictions(run(bars()))  # e.g. a run finished while the mouse rested
    assert chart.readout_label.text() == ""
    move_mouse(chart, qtbot, over_the_candles(chart))
    chart.set_prices(bars())
    assert chart.readout_label.text() == ""


# ------------------------------------------------------------------- 3. volume ---------------
def test_no_volume_no_volume_pane(chart, qtbot):
    assert chart.volume_plot.isVisible() and chart.has_volume_pane()
    flat = bars(volume=False)
    flat.iloc[:10, flat.columns.get_loc("volume")] = np.nan
    chart.set_prices(flat)
    assert not chart.volume_plot.isVisible() and not chart.has_volume_pane()
    qtbot.waitUntil(lambda: chart.volume_plot.geometry().height() == 0, timeout=2000)
    chart.set_prices(bars())
    assert chart.volume_plot.isVisible()
    qtbot.waitUntil(lambda: chart.volume_plot.geometry().height() > 20, timeout=2000)


# ------------------------------------------------------------------- 6. note -----------------
def test_a_note_under_the_title_until_the_predictions_go(chart):
    text = "Predictions of a model trained on AAPL 1d, applied to GSPC"
    chart.set_note(text)
    assert chart.note() == text and chart.note_label.isVisibleTo(chart)
    chart.set_predictions(run(bars()))  # kept: the note may come before the overlays
    assert chart.note() == text
    chart.clear_predictions()
    assert chart.note() == "" and not chart.note_label.isVisibleTo(chart)
    chart.set_note(text)
    chart.set_prices(bars())
    assert chart.note() == ""


def test_the_svg_keeps_the_screen_s_text_size_and_page_size(qtbot):
    """Written at the widget's own dots per inch: a 9 pt font is 9 * dpi / 72 px in the SVG,
    as on screen, and the page is as many millimetres as the widget's pixels make."""
    from PySide6 import QtWidgets

    label = QtWidgets.QLabel("1,234.5")
    qtbot.addWidget(label)
    font = label.font()
    font.setPointSize(9)
    label.setFont(font)
    label.resize(300, 100)
    dpi = label.logicalDpiX()
    text = svg_bytes(label, "label").decode("utf-8")
    sizes = [float(v) for v in re.findall(r'font-size="([0-9.]+)"', text)]
    assert sizes and all(size == pytest.approx(9 * dpi / 72) for size in sizes), sizes
    width = float(re.search(r'<svg[^>]*width="([0-9.]+)mm"', text, re.S).group(1))
    assert width == pytest.approx(300 * 25.4 / dpi, rel=1e-3)
