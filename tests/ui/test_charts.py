"""Chart widgets: level of detail, bucket maths, date ticks, overlays, crosshair, loss plot."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pandas as pd
import pytest
from pyqtgraph.Qt import QtCore  # PYQTGRAPH_QT_LIB=PySide6 comes from conftest / sandbox.ui

from sandbox.constants import (
    ACTUAL_RETURN,
    BUY_AND_HOLD,
    CLOSE,
    DRIFT,
    EQUITY,
    MOMENTUM,
    POSITION,
    PREDICTED_RETURN,
    RANDOM_WALK,
    SPLIT,
    STRATEGY_RETURN,
    TEST,
    TRAIN,
    VAL,
)
from sandbox.ui.charts import LossPlot, PriceChart
from sandbox.ui.charts.axis import DateIndexAxis
from sandbox.ui.charts.candles import (
    LOD_VISIBLE,
    MAX_ITEMS,
    OhlcSeries,
    aggregate_ohlcv,
    bucket_size_for,
)
from sandbox.ui.charts.equity import best_baseline, broken_line
from sandbox.ui.charts.price_chart import position_changes

WIDTH, HEIGHT = 1400, 900


# ------------------------------------------------------------------------------- data -------
@pytest.fixture(scope="module")
def gspc() -> pd.DataFrame:
    path = importlib.resources.files("sandbox.resources") / "sample_data" / "GSPC.csv"
    with importlib.resources.as_file(path) as csv:
        raw = pd.read_csv(csv, parse_dates=["Date"], index_col="Date")
    frame = raw.rename(columns=str.lower)[["open", "high", "low", "close", "volume"]]
    frame.index.name = "date"
    return frame.astype(np.float64)


def random_walk(n: int, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.005, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.005, n)))
    volume = rng.integers(0, 1_000_000, n).astype(np.float64)
    index = pd.bdate_range("1900-01-01", periods=n, name="date")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=index)


def fake_predictions(frame: pd.DataFrame, positions: np.ndarray, splits: np.ndarray,
                     *, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = frame["close"].to_numpy()
    actual = np.r_[np.log(close[1:] / close[:-1]), np.nan]
    out = pd.DataFrame({
        SPLIT: splits,
        CLOSE: close,
        ACTUAL_RETURN: actual,
        PREDICTED_RETURN: rng.normal(0, 0.01, len(frame)),
        POSITION: positions.astype(np.float64),
    }, index=frame.index)
    out[STRATEGY_RETURN] = out[POSITION] * np.nan_to_num(actual)
    out[EQUITY] = (1 + out[STRATEGY_RETURN]).groupby(out[SPLIT], sort=False).cumprod()
    return out


@pytest.fixture
def chart(qtbot) -> PriceChart:
    widget = PriceChart(dark=True)
    qtbot.addWidget(widget)
    widget.resize(WIDTH, HEIGHT)
    # Not shown: the offscreen platform warns on show() ("propagateSizeHints"), and grab()
    # lays the hidden widget out at its size just the same.
    widget.grab()
    return widget


# ------------------------------------------------------------------------- candles ----------
def test_gspc_zoomed_in_draws_one_candle_per_row(chart, gspc):
    chart.set_prices(gspc, title="GSPC")
    n = len(gspc)
    # Everything: too many bars for the pixels, so they are bucketed, yet nothing is lost.
    assert chart.items_drawn() < n
    assert chart.candles.bucket_size > 1
    # Zoomed in: one candle per row, exactly the rows in view.
    chart.show_range(1000, 1299)
    assert chart.candles.bucket_size == 1
    assert chart.items_drawn() == 300
    chart.show_range(n - 200, n - 1)
    assert chart.items_drawn() == 200
    chart.grab()


def test_item_count_stays_bounded_on_100k_bars(chart):
    frame = random_walk(100_000)
    chart.set_prices(frame)
    n = len(frame)
    for first, last in [(0, n - 1), (n - 2000, n - 1), (n - 1500, n - 1), (5_000, 35_000),
                        (n - 300, n - 1)]:
        chart.show_range(first, last)
        chart.grab()
        assert chart.items_drawn() <= MAX_ITEMS
        assert chart.candles.cached_items <= MAX_ITEMS
        assert chart.volume.cached_items <= MAX_ITEMS
    chart.show_range(0, n - 1)
    assert 100 <= chart.items_drawn() <= MAX_ITEMS


def test_pan_reuses_the_cached_picture(chart):
    frame = random_walk(20_000)
    chart.set_prices(frame)
    chart.show_range(10_000, 11_999)
    chart.grab()
    before = chart.candles.rebuilds
    for step in range(1, 21):  # 20 steps of 1%: well inside the cached margin
        chart.set_x_range(10_000 - 0.5 - 20 * step, 11_999.5 - 20 * step)
    assert chart.candles.rebuilds == before
    chart.show_range(2_000, 3_999)  # far away: a new picture
    assert chart.candles.rebuilds == before + 1


@pytest.mark.parametrize(("start", "stop", "size"), [
    (0, 1000, 1), (0, 1000, 8), (3, 997, 8), (123, 877, 64), (0, 1000, 1000), (999, 1000, 4),
])
def test_bucket_ohlc_matches_direct_computation(start, stop, size):
    frame = random_walk(1000, seed=3)
    series = OhlcSeries(frame["open"], frame["high"], frame["low"], frame["close"],
                        frame["volume"])
    b = aggregate_ohlcv(series, start=start, stop=stop, size=size)
    o, h, lo, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    first = (start // size) * size
    expected_starts = list(range(first, stop, size))
    assert b.first.tolist() == expected_starts
    for i, s in enumerate(expected_starts):
        e = min(s + size, stop)
        assert b.open[i] == o[s]
        assert b.close[i] == c[e - 1]
        assert b.high[i] == h[s:e].max()
        assert b.low[i] == lo[s:e].min()
        assert b.volume[i] == pytest.approx(v[s:e].sum())
        assert b.x[i] == pytest.approx((s + e - 1) / 2)


def test_bucket_size_grows_in_powers_of_two_and_respects_the_limits():
    assert bucket_size_for(100, 1300) == 1
    assert bucket_size_for(LOD_VISIBLE, 1600) == 1
    assert bucket_size_for(LOD_VISIBLE + 1, 1600) == 2
    assert bucket_size_for(2000, 1300) == 2
    previous = 1
    for visible in np.geomspace(10, 1_000_000, 60):
        size = bucket_size_for(visible, 1300)
        assert size & (size - 1) == 0 and size >= previous
        assert visible / size <= LOD_VISIBLE and 2 * visible / size <= MAX_ITEMS
        previous = size


def test_y_follows_the_visible_bars(chart, gspc):
    chart.set_prices(gspc)
    chart.show_range(2000, 2100)
    (_, _), (y0, y1) = chart.price_plot.getViewBox().viewRange()
    visible = gspc.iloc[2000:2101]
    lo, hi = visible["low"].min(), visible["high"].max()
    assert y0 < lo and y1 > hi
    assert (y1 - y0) < 1.5 * (hi - lo)  # fitted to these bars, not to all 20 years
    (_, _), (v0, v1) = chart.volume_plot.getViewBox().viewRange()
    assert v0 == 0 and v1 >= visible["volume"].max()


# ----------------------------------------------------------------------------- axis ---------
def test_date_ticks_follow_the_zoom(qtbot, gspc):
    axis = DateIndexAxis()
    axis.set_dates(gspc.index)
    dates = gspc.index

    def labelled(lo, hi):
        (spacing, values), = axis.tickValues(lo, hi, 1300)
        return values, axis.tickStrings(values, 1.0, spacing)

    values, labels = labelled(0, len(gspc) - 1)  # 20 years: years
    assert labels and all(label.isdigit() and len(label) == 4 for label in labels)
    for v, label in zip(values, labels, strict=True):
        i = int(v)
        assert dates[i].year == int(label) and (i == 0 or dates[i - 1].year < dates[i].year)

    values, labels = labelled(2000, 2250)  # one year: months, January shows the year
    months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
              "Dec"}
    assert labels and all(label in months or label.isdigit() for label in labels)
    for v, label in zip(values, labels, strict=True):
        i = int(v)
        assert dates[i].month != dates[i - 1].month  # on the first bar of a month
        assert label == (str(dates[i].year) if dates[i].month == 1 else dates[i].strftime("%b"))

    values, labels = labelled(3000, 3020)  # a month: days
    assert labels and any(label.isdigit() and int(label) <= 31 for label in labels)
    assert axis.date_at(3000.4) == dates[3000] and axis.date_at(-3) is None


# ------------------------------------------------------------------------ overlays ----------
def test_markers_where_the_position_changes(chart, gspc):
    frame = gspc.iloc[:600]
    chart.set_prices(frame)
    splits = np.array([TRAIN] * 400 + [VAL] * 100 + [TEST] * 100)
    positions = np.zeros(600)
    positions[10:20] = 1  # buy at 10, sell at 20
    positions[50:60] = 1  # buy at 50, sell at 60
    positions[390:450] = 1  # buy 390; val starts fresh: buy again at 400; sell at 450
    positions[500:505] = 1  # the test account starts flat, so being long at 500 is a buy
    predictions = fake_predictions(frame, positions, splits)
    chart.set_splits(pd.Series(splits, index=frame.index))
    chart.set_predictions(predictions)
    buys, sells = chart.buy_markers.getData(), chart.sell_markers.getData()
    assert buys[0].tolist() == [10, 50, 390, 400, 500]
    assert sells[0].tolist() == [20, 60, 450, 505]
    # Markers sit at the bar's low (buy) / high (sell).
    assert buys[1].tolist() == frame["low"].to_numpy()[[10, 50, 390, 400, 500]].tolist()
    assert sells[1].tolist() == frame["high"].to_numpy()[[20, 60, 450, 505]].tolist()
    # The predicted close is drawn on the bar it predicts (t + 1), broken at split changes.
    x, y = chart.predicted_curve.getData()
    finite = np.isfinite(y)
    assert x[finite][0] == 1.0
    expected = predictions[CLOSE].iloc[0] * np.exp(predictions[PREDICTED_RETURN].iloc[0])
    assert y[finite][0] == pytest.approx(expected)
    assert (~finite).sum() == 2  # train|val and val|test
    assert len(chart._regions) == 3 * len(chart._plots())  # three splits in every pane
    chart.clear_predictions()
    assert len(chart.buy_markers.getData()[0]) == 0
    x, _ = chart.predicted_curve.getData()
    assert x is None or len(x) == 0


def test_position_changes_restart_flat_per_split():
    frame = pd.DataFrame({POSITION: [1, 1, 0, 1, 1, -1], SPLIT: [TRAIN] * 3 + [VAL] * 3})
    buys, sells = position_changes(frame)
    assert np.flatnonzero(buys).tolist() == [0, 3]
    assert np.flatnonzero(sells).tolist() == [2, 5]


def test_equity_pane_shows_model_buy_and_hold_and_best_baseline(chart, gspc):
    frame = gspc.iloc[:300]
    chart.set_prices(frame)
    splits = np.array([TRAIN] * 200 + [VAL] * 50 + [TEST] * 50)
    model = fake_predictions(frame, np.ones(300), splits)
    baselines = {}
    for name, flat_from in ((BUY_AND_HOLD, 300), (RANDOM_WALK, 0), (MOMENTUM, 280),
                            (DRIFT, 260)):
        positions = np.ones(300)
        positions[flat_from:] = 0
        baselines[name] = fake_predictions(frame, positions, splits)
    expected = best_baseline(baselines)  # on validation
    chart.set_predictions(model, baselines)
    assert set(chart.equity.curves) == {"model", BUY_AND_HOLD, expected}
    assert expected in (RANDOM_WALK, MOMENTUM, DRIFT)
    _, y = chart.equity.curves["model"].getData()
    assert np.isnan(y).sum() >= 2  # one account per split
    (_, _), (e0, e1) = chart.equity_plot.getViewBox().viewRange()
    assert e0 < 1.0 < e1


def test_best_baseline_by_validation_total_return():
    def frame(equity_val, equity_test):
        return pd.DataFrame({SPLIT: [TRAIN, VAL, VAL, TEST, TEST],
                             EQUITY: [5.0, 1.0, equity_val, 1.0, equity_test]})
    # validation and test disagree: momentum leads on validation, drift on test
    baselines = {RANDOM_WALK: frame(1.0, 1.0), MOMENTUM: frame(1.10, 0.90),
                 DRIFT: frame(1.05, 1.30), BUY_AND_HOLD: frame(2.0, 2.0)}
    assert best_baseline(baselines) == MOMENTUM  # buy-and-hold does not compete
    assert best_baseline(baselines, split=TEST) == DRIFT
    assert best_baseline({}) is None


def test_broken_line_inserts_gaps_and_keeps_x_sorted():
    x = np.arange(6.0)
    y = np.arange(6.0)
    bx, by = broken_line(x, y, np.array([False, True, False, False, True, False]))
    assert np.all(np.diff(bx) > 0)
    assert np.isnan(by).sum() == 2 and np.isnan(by[2]) and np.isnan(by[6])


def test_overlay_lines_are_clipped_to_the_view_and_decimated(chart):
    # PlotItem.addItem resets a line's clip-to-view and downsampling: they must survive it
    frame = random_walk(100_000)
    chart.set_prices(frame)
    splits = np.array([TRAIN] * len(frame))
    chart.set_predictions(fake_predictions(frame, np.ones(len(frame)), splits))
    for first, last in [(0, len(frame) - 1), (5_000, 35_000)]:
        chart.show_range(first, last)
        chart.grab()
        for curve in (chart.close_curve, chart.predicted_curve, chart.equity.model):
            assert curve.opts["clipToView"] and curve.opts["autoDownsample"]
            shown, _ = curve.curve.getData()  # what is handed to the painter
            assert len(shown) <= MAX_ITEMS


# ------------------------------------------------------------------------ crosshair ---------
def test_hover_emits_the_bar_under_the_mouse(chart, qtbot, gspc):
    frame = gspc.iloc[:500]
    chart.set_prices(frame)
    splits = np.array([TRAIN] * 500)
    positions = (np.arange(500) % 7 < 3).astype(float)
    chart.set_predictions(fake_predictions(frame, positions, splits))
    chart.show_range(100, 199)
    vb = chart.price_plot.getViewBox()
    target = 150
    scene_pos = vb.mapViewToScene(QtCore.QPointF(target + 0.2, float(frame["close"].iloc[target])))
    with qtbot.waitSignal(chart.hovered, timeout=2000) as blocker:
        chart.graphics.scene().sigMouseMoved.emit(scene_pos)
    info = blocker.args[0]
    assert info["index"] == target
    assert info["date"] == frame.index[target]
    assert info["close"] == frame["close"].iloc[target]
    assert info[POSITION] == positions[target]
    assert PREDICTED_RETURN in info and ACTUAL_RETURN in info
    assert frame.index[target].strftime("%Y-%m-%d") in chart.readout_label.text()


# ------------------------------------------------------------------------ loss plot ---------
def test_loss_plot_collects_batches_and_epochs(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    for i in range(50):
        plot.add_batch(i / 25, 1.0 + (i % 2))
    plot.add_epoch(1, 1.4, 1.6)
    plot.add_epoch(2, 1.2, float("nan"))
    plot.flush()
    assert plot.points() == {"batch": 50, "train": 2, "val": 2}
    _, y = plot.batch_curve.getData()
    assert y[0] == 1.0 and 1.0 < y[-1] < 2.0  # smoothed, starts at the first loss
    assert plot.train_curve.getData()[1].tolist() == [1.4, 1.2]
    plot.reset()
    assert plot.points() == {"batch": 0, "train": 0, "val": 0}


def test_loss_plot_redraws_at_most_at_the_frame_rate(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    calls = []
    original = plot.batch_curve.setData
    plot.batch_curve.setData = lambda *a, **k: (calls.append(1), original(*a, **k))
    for i in range(500):
        plot.add_batch(i / 100, 1.0)
    assert len(calls) == 0  # nothing drawn synchronously
    qtbot.waitUntil(lambda: len(calls) >= 1, timeout=1000)
    assert len(calls) <= 2


def test_finite_range_skips_nan_and_infinity_without_copying_clean_parts():
    from sandbox.ui.charts.equity import finite_range

    parts = [np.array([np.nan, 1.0, 5.0]), np.array([[np.inf, -2.0], [np.nan, 3.0]]),
             np.array([np.nan, np.nan]), np.empty(0)]
    assert finite_range(parts) == (-2.0, 5.0)
    assert finite_range([np.array([np.nan]), np.array([-np.inf, np.inf])]) is None
    assert finite_range([]) is None
