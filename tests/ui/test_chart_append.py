"""A chart that grows: bars appended one at a time (replay, live feeds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sandbox.constants import ACTUAL_RETURN, EQUITY, POSITION, PREDICTED_RETURN
from sandbox.ui.charts import PriceChart
from sandbox.ui.charts.axis import DateFields
from sandbox.ui.charts.candles import OhlcSeries, aggregate_ohlcv

WIDTH, HEIGHT = 1200, 800
PRICE_COLUMNS = ["open", "high", "low", "close", "volume"]


def random_walk(n: int, *, seed: int = 0, freq: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.005, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.005, n)))
    volume = rng.integers(1, 1_000_000, n).astype(np.float64)
    index = (pd.date_range("2021-03-01 09:30", periods=n, freq=freq, name="date") if freq
             else pd.bdate_range("1990-01-01", periods=n, name="date"))
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=index)


@pytest.fixture
def make_chart(qtbot):
    def make() -> PriceChart:
        widget = PriceChart(dark=True)
        qtbot.addWidget(widget)
        widget.resize(WIDTH, HEIGHT)
        widget.grab()
        return widget
    return make


def append_rows(chart: PriceChart, frame: pd.DataFrame) -> None:
    for date, row in zip(frame.index, frame[PRICE_COLUMNS].to_numpy(), strict=True):
        chart.append_bar(date, *row)


# --------------------------------------------------------------------------- the view -------
def test_a_zoomed_view_keeps_its_x_range_while_100_bars_are_appended(make_chart):
    frame = random_walk(600)
    chart = make_chart()
    chart.set_prices(frame.iloc[:500])
    chart.show_range(100, 199)
    before = chart.visible_range()
    append_rows(chart, frame.iloc[500:])
    chart.grab()
    assert chart.bar_count() == 600
    assert chart.visible_range() == before
    assert not chart.last_bar_in_view()


def test_the_view_follows_the_new_bars_while_the_last_bar_is_in_view(make_chart):
    frame = random_walk(600)
    chart = make_chart()
    chart.set_prices(frame.iloc[:500])
    chart.show_range(400, 499)  # the last bar in view
    append_rows(chart, frame.iloc[500:])
    chart.grab()
    assert chart.visible_range() == (499.5, 599.5)  # moved by 100 bars, width kept
    assert chart.last_bar_in_view()
    # y follows the bars now in view (their extremes, from the frame itself)
    shown = frame.iloc[500:600]
    (_, _), (y0, y1) = chart.price_plot.getViewBox().viewRange()
    assert y0 < shown["low"].min() and y1 > shown["high"].max()
    assert (y1 - y0) < 2 * (shown["high"].max() - shown["low"].min())


def test_follow_last_bar_jumps_back_to_the_end(make_chart):
    frame = random_walk(300)
    chart = make_chart()
    chart.set_prices(frame)
    chart.show_range(10, 59)
    chart.follow_last_bar()
    assert chart.visible_range() == (249.5, 299.5)
    chart.follow_last_bar(20)
    assert chart.visible_range() == (279.5, 299.5)


def test_bars_must_come_after_the_last_one(make_chart):
    frame = random_walk(50)
    chart = make_chart()
    chart.set_prices(frame)
    last = frame.iloc[-1]
    with pytest.raises(ValueError, match="after the last bar"):
        chart.append_bar(frame.index[-1], *last[PRICE_COLUMNS])
    with pytest.raises(ValueError, match="after the last bar"):
        chart.append_bars(random_walk(3).set_axis(
            [frame.index[-1] + pd.Timedelta(days=d) for d in (2, 1, 3)]))
    assert chart.bar_count() == 50


# ----------------------------------------------------------------- same as built whole -------
def test_appended_bars_equal_a_chart_built_from_the_full_frame(make_chart):
    frame = random_walk(3001, seed=3)
    whole, grown = make_chart(), make_chart()
    whole.set_prices(frame)
    grown.set_prices(frame.iloc[:1000])
    grown.show_range(0, 999)  # everything in view: bucketed, and the view follows
    rng = np.random.default_rng(5)
    i = 1000
    while i < len(frame):  # single bars and chunks of various sizes
        k = int(rng.choice([1, 1, 1, 7, 64, 300]))
        if k == 1:
            append_rows(grown, frame.iloc[i:i + 1])
        else:
            grown.append_bars(frame.iloc[i:i + k])
        i += k
    assert grown.bar_count() == whole.bar_count() == len(frame)
    a, b = whole.candles._series, grown.candles._series
    for column in PRICE_COLUMNS:
        assert np.array_equal(getattr(b, column), frame[column].to_numpy())
    # every level of detail: bucket for bucket, against numpy over the frame itself
    high, low, volume = (frame[c].to_numpy() for c in ("high", "low", "volume"))
    for size in (2, 4, 8, 16, 64, 256, 2048):
        starts = np.arange(0, len(frame), size)
        for series in (a, b):
            got = aggregate_ohlcv(series, start=0, stop=len(frame), size=size)
            assert np.array_equal(got.high, np.maximum.reduceat(high, starts))
            assert np.array_equal(got.low, np.minimum.reduceat(low, starts))
            assert np.allclose(got.volume, np.add.reduceat(volume, starts), rtol=1e-12)
            assert np.array_equal(got.open, frame["open"].to_numpy()[starts])
        for x, y in zip(a.buckets(size), b.buckets(size), strict=True):
            assert np.array_equal(x, y)
    # the same view shows the same candles, and the date axis labels the same ticks
    for first, last in ((0, 3000), (2500, 3000), (1200, 1260)):
        whole.show_range(first, last)
        grown.show_range(first, last)
        seen_a, seen_b = whole.candles.buckets_in_view(), grown.candles.buckets_in_view()
        assert seen_a.size == seen_b.size
        for field in ("x", "open", "high", "low", "close"):
            assert np.array_equal(getattr(seen_a, field), getattr(seen_b, field))
        axis_a, axis_b = whole.axes[-1], grown.axes[-1]
        ticks_a = axis_a.tickValues(first, last, 1000)
        assert ticks_a == axis_b.tickValues(first, last, 1000)
        values = ticks_a[0][1]
        assert axis_a.tickStrings(values, 1, ticks_a[0][0]) == axis_b.tickStrings(
            values, 1, ticks_a[0][0])
    assert grown.readout(2999)["date"] == frame.index[2999]
    assert grown.title_label.text() == whole.title_label.text()


def test_the_picture_shows_a_bar_appended_into_a_partial_bucket(make_chart):
    frame = random_walk(4001, seed=8)
    chart = make_chart()
    chart.set_prices(frame.iloc[:4000])
    assert chart.candles.bucket_size > 1
    spike = frame.iloc[4000:].copy()
    spike["high"] = frame["high"].max() * 2  # the new bar's high tops everything
    chart.append_bars(spike)
    chart.grab()
    drawn = chart.candles.buckets_in_view()
    assert drawn.high[-1] == spike["high"].iloc[0]
    assert chart.candles._bounds.bottom() >= spike["high"].iloc[0]  # recorded in the picture


def test_series_and_dates_grow_like_their_whole_counterparts():
    frame = random_walk(5000, seed=2, freq="7min")
    index = frame.index.tz_localize("UTC").tz_convert("America/New_York")
    whole = DateFields(index)
    grown = DateFields(index[:10])
    grown.reserve(100, background=True)  # made on a worker thread, taken by the append
    series = OhlcSeries(*(frame[c].to_numpy()[:10] for c in PRICE_COLUMNS))
    series.reserve(3000, background=True)
    for i in range(10, 5000, 37):
        grown.append(index[i:i + 37])
        series.append(*(frame[c].to_numpy()[i:i + 37] for c in PRICE_COLUMNS))
    assert grown.index.equals(index) and grown.intraday
    for level, step in (("year", 1), ("month", 1), ("day", 1), ("day", 7), ("minute", 60)):
        assert np.array_equal(grown.starts(level, step), whole.starts(level, step))
    # the first bar of each day, from pandas
    local = index.tz_localize(None).normalize()
    expected = np.flatnonzero(np.r_[True, local[1:] != local[:-1]])
    assert np.array_equal(whole.starts("day", 1)[1:], expected[1:])
    assert series.low_high(17, 4983) == (frame["low"].iloc[17:4983].min(),
                                         frame["high"].iloc[17:4983].max())


# --------------------------------------------------------------------------- replay ---------
def test_a_replay_shows_history_then_grows_with_its_overlays(make_chart):
    frame = random_walk(400, seed=4)
    chart = make_chart()
    start = frame.index[300]
    assert chart.start_replay(frame, start, title="walk") == 300
    assert chart.is_replay() and chart.bar_count() == 300
    close = frame["close"].to_numpy()
    predicted = np.full(400, np.nan)
    predicted[300:] = np.linspace(-0.01, 0.01, 100)
    position = np.zeros(400)
    position[305:310] = 1.0  # buy at 305, sell at 310
    position[320:] = -1.0  # short from 320: a sell
    equity = np.full(400, np.nan)
    equity[302:] = 1.0 + np.arange(98) * 0.001  # realised from bar 302 on
    for i in range(300, 400):
        row = frame.iloc[i]
        chart.append_bar(frame.index[i], *row[PRICE_COLUMNS], predicted_return=predicted[i],
                         position=position[i],
                         equity=None if np.isnan(equity[i]) else equity[i])
    chart.grab()
    # the predicted close on the bar it predicts (t + 1), the naive close beside it
    x, y = chart.predicted_curve.getOriginalDataset()
    assert x[0] == 301 and x[-1] == 400
    assert y[0] == pytest.approx(close[300] * np.exp(-0.01))
    assert y[-1] == pytest.approx(close[399] * np.exp(0.01))
    x, y = chart.naive_curve.getOriginalDataset()
    assert y.tolist() == close[300:400].tolist()
    # markers where the position changes, from a flat account
    assert chart.buy_markers.getData()[0].tolist() == [305]
    assert chart.sell_markers.getData()[0].tolist() == [310, 320]
    assert chart.buy_markers.getData()[1].tolist() == [frame["low"].iloc[305]]
    # equity from bar 302, with its 1.0 start point on bar 301
    x, y = chart.equity.model.getOriginalDataset()
    finite = np.isfinite(y)
    assert x[finite][0] == 301 and y[finite][0] == 1.0
    assert y[finite][1:].tolist() == equity[302:].tolist()
    info = chart.readout(350)
    assert info[PREDICTED_RETURN] == predicted[350] and info[POSITION] == -1.0
    assert info[ACTUAL_RETURN] == pytest.approx(np.log(close[351] / close[350]))
    assert ACTUAL_RETURN not in chart.readout(399)  # the next close is not known yet
    assert EQUITY not in info
    chart.set_prices(frame)
    assert not chart.is_replay()


def test_a_replay_can_start_from_no_bars(make_chart):
    frame = random_walk(30)
    chart = make_chart()
    assert chart.start_replay(frame.iloc[:0]) == 0
    chart.append_bars(frame.iloc[:10].assign(predicted_return=0.001))
    append_rows(chart, frame.iloc[10:])
    assert chart.bar_count() == 30
    assert np.array_equal(chart.candles._series.close, frame["close"].to_numpy())
    x, y = chart.predicted_curve.getOriginalDataset()
    assert x[np.isfinite(y)].tolist() == list(range(1, 11))
    assert chart.visible_range()[1] == 29.5


def test_appending_while_on_a_log_scale_draws_log_prices(make_chart):
    frame = random_walk(200)
    chart = make_chart()
    chart.set_log_price(True)
    chart.set_prices(frame.iloc[:150])
    chart.append_bars(frame.iloc[150:])
    assert np.allclose(chart.candles._series.high, np.log10(frame["high"].to_numpy()))


def test_a_price_at_or_below_zero_turns_the_log_scale_off_and_nan_prices_are_refused(make_chart):
    frame = random_walk(100)
    chart = make_chart()
    chart.set_log_price(True)
    chart.set_prices(frame.iloc[:90])
    assert chart.is_log_price()
    chart.append_bar(frame.index[90], 1.0, 2.0, -0.5, 1.5, np.nan)  # a negative low
    assert not chart.is_log_price() and not chart.log_price_action.isEnabled()
    assert chart.candles._series.low[-1] == -0.5  # drawn on the linear scale
    assert chart.volume._series.volume[-1] == 0.0  # unknown volume counts as none
    (_, _), (y0, y1) = chart.price_plot.getViewBox().viewRange()
    assert np.isfinite([y0, y1]).all()
    with pytest.raises(ValueError, match="not NaN"):
        chart.append_bar(frame.index[91], np.nan, 2.0, 0.5, 1.5)
    assert chart.bar_count() == 91
