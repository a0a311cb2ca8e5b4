"""validate_prices: the data contract, its repairs (with warnings) and its refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import constants as C
from sandbox.data.validate import parse_dates, read_dates, validate_prices
from sandbox.errors import DataError


def _frame(n: int = 6, *, start: str = "2020-01-02", freq: str = "B", tz: str | None = None,
           seed: int = 0) -> pd.DataFrame:
    """A valid OHLCV frame of ``n`` bars (contract names, float64, index named date)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    volume = rng.integers(0, 1_000_000, n).astype(np.float64)
    index = pd.date_range(start, periods=n, freq=freq, tz=tz, name=C.INDEX_NAME)
    return pd.DataFrame({C.OPEN: open_, C.HIGH: high, C.LOW: low, C.CLOSE: close,
                         C.VOLUME: volume}, index=index)


# --- valid frames --------------------------------------------------------------------------------


def test_valid_frame_passes_unchanged_without_warnings():
    frame = _frame(30)
    out, warnings = validate_prices(frame, name="test")
    pd.testing.assert_frame_equal(out, frame, check_freq=False)
    assert warnings == ()
    assert out is not frame  # a copy: the caller's frame is never modified


def test_columns_matched_case_insensitively_extra_columns_dropped():
    frame = _frame(5)
    raw = frame.rename(columns=str.title).assign(Dividends=0.0, Symbol="X")
    raw.index.name = "Date"
    out, _ = validate_prices(raw, name="test")
    assert list(out.columns) == list(C.PRICE_COLUMNS)
    assert out.index.name == C.INDEX_NAME
    assert all(out.dtypes == np.float64)


def test_zero_volume_is_valid():
    frame = _frame(5).assign(volume=0.0)
    out, warnings = validate_prices(frame, name="index")
    assert (out[C.VOLUME] == 0).all() and warnings == ()


def test_missing_volume_becomes_zero_with_warning():
    out, warnings = validate_prices(_frame(5).drop(columns=C.VOLUME), name="fx")
    assert (out[C.VOLUME] == 0).all()
    assert out[C.VOLUME].dtype == np.float64
    assert any("volume" in w for w in warnings)


def test_daily_bars_with_timezone_become_naive_dates():
    frame = _frame(5, tz="America/New_York")
    out, _ = validate_prices(frame, name="t")
    assert out.index.tz is None
    assert list(out.index) == list(frame.index.tz_localize(None))


def test_intraday_bars_keep_their_timezone():
    frame = _frame(8, start="2024-03-01 09:30", freq="5min", tz="America/New_York")
    out, _ = validate_prices(frame, name="t")
    assert str(out.index.tz) == "America/New_York"
    pd.testing.assert_index_equal(out.index, frame.index)


def test_string_index_and_numeric_strings_are_parsed():
    frame = _frame(4)
    raw = frame.astype(str)
    raw.index = frame.index.strftime("%Y-%m-%d")
    out, _ = validate_prices(raw, name="t")
    pd.testing.assert_frame_equal(out, frame, check_exact=False, rtol=1e-12, check_freq=False)
    assert isinstance(out.index, pd.DatetimeIndex)


def test_rounding_slack_is_clamped_not_refused():
    frame = _frame(5)
    frame.iloc[2, 1] = max(frame.iloc[2, 0], frame.iloc[2, 3]) * (1 - 1e-9)  # high a hair low
    out, _ = validate_prices(frame, name="t")
    row = out.iloc[2]
    assert row[C.HIGH] >= max(row[C.OPEN], row[C.CLOSE])


# --- repairs with warnings -----------------------------------------------------------------------


def test_unsorted_rows_are_sorted_with_warning():
    frame = _frame(10)
    shuffled = frame.iloc[[0, 2, 1, 3, 4, 5, 7, 6, 8, 9]]
    out, warnings = validate_prices(shuffled, name="t")
    pd.testing.assert_frame_equal(out, frame, check_freq=False)
    assert warnings == ("sorted 2 out-of-order rows",)


def test_newest_first_is_reversed_with_warning():
    frame = _frame(10)
    out, warnings = validate_prices(frame.iloc[::-1], name="t")
    pd.testing.assert_frame_equal(out, frame, check_freq=False)
    assert "newest first" in warnings[0]


def test_duplicate_dates_keep_the_last_row_with_warning():
    frame = _frame(5)
    dup = pd.concat([frame.iloc[:3], frame.iloc[[2]] * 1.01, frame.iloc[3:]])
    out, warnings = validate_prices(dup, name="t", lines=[2, 3, 4, 5, 6, 7])
    assert len(out) == 5 and out.index.is_unique
    assert out.iloc[2][C.CLOSE] == pytest.approx(frame.iloc[2][C.CLOSE] * 1.01)
    assert "dropped 1 duplicate date" in warnings[0]
    assert "lines 4, 5" in warnings[0]


def test_single_missing_row_is_dropped_with_warning():
    frame = _frame(8)
    frame.iloc[4, 3] = np.nan
    out, warnings = validate_prices(frame, name="t")
    assert len(out) == 7 and frame.index[4] not in out.index
    assert "dropped 1 row with a missing value" in warnings[0]
    assert frame.index[4].strftime("%Y-%m-%d") in warnings[0]


# --- refusals: DataError naming the data, the row and the problem ------------------------------


def test_missing_close_column():
    with pytest.raises(DataError, match=r"^prices\.csv: missing column close"):
        validate_prices(_frame(5).drop(columns=C.CLOSE), name="prices.csv")


def test_run_of_missing_rows_names_the_lines():
    frame = _frame(8)
    frame.iloc[3:6, :] = np.nan
    with pytest.raises(DataError, match=r"^p\.csv, lines 5-7: 3 consecutive rows with missing"):
        validate_prices(frame, name="p.csv", lines=range(2, 10))


def test_run_of_missing_rows_names_dates_without_lines():
    frame = _frame(8)
    frame.iloc[3:5, 0] = np.nan
    with pytest.raises(DataError, match=r"ticker X, rows 2020-01-07 \.\. 2020-01-08"):
        validate_prices(frame, name="ticker X")


@pytest.mark.parametrize("column", [C.OPEN, C.HIGH, C.LOW, C.CLOSE])
def test_non_positive_price(column):
    frame = _frame(6)
    frame.iloc[3, frame.columns.get_loc(column)] = 0.0
    with pytest.raises(DataError, match=rf"t, row 2020-01-07: {column} is 0; prices must be"):
        validate_prices(frame, name="t")


def test_high_below_open_or_close():
    frame = _frame(6)
    frame.iloc[2, 1] = min(frame.iloc[2, 0], frame.iloc[2, 3]) * 0.99
    with pytest.raises(DataError, match=r"f\.csv, line 4 \(2020-01-06\): high .* below max"):
        validate_prices(frame, name="f.csv", lines=range(2, 8))


def test_low_above_open_or_close():
    frame = _frame(6)
    frame.iloc[5, 2] = max(frame.iloc[5, 0], frame.iloc[5, 3]) * 1.01
    with pytest.raises(DataError, match=r"row 2020-01-09: low .* above min"):
        validate_prices(frame, name="t")


def test_negative_volume():
    frame = _frame(6)
    frame.iloc[1, 4] = -1.0
    with pytest.raises(DataError, match=r"row 2020-01-03: volume -1 is negative"):
        validate_prices(frame, name="t")


def test_infinite_price():
    frame = _frame(6)
    frame.iloc[1, 3] = np.inf
    with pytest.raises(DataError, match=r"row 2020-01-03: close is inf"):
        validate_prices(frame, name="t")


def test_non_number_text():
    frame = _frame(4).astype(object)
    frame.iloc[2, 3] = "n/a!"
    with pytest.raises(DataError, match=r"row 2020-01-06: close 'n/a!' is not a number"):
        validate_prices(frame, name="t")


def test_too_few_rows_names_counts_and_need():
    with pytest.raises(DataError, match=r"^GSPC has 40 rows .*at least 100"):
        validate_prices(_frame(40), name="GSPC", min_rows=100)
    with pytest.raises(DataError, match=r"; the window of 30 plus splits needs at least 100"):
        validate_prices(_frame(40), name="GSPC", min_rows=100,
                        min_rows_reason="the window of 30 plus splits")
    out, _ = validate_prices(_frame(40), name="GSPC", min_rows=40)
    assert len(out) == 40


def test_empty_frame_and_non_frame():
    with pytest.raises(DataError, match="no data rows"):
        validate_prices(_frame(3).iloc[:0], name="t")
    with pytest.raises(DataError, match="expected a table"):
        validate_prices([1, 2, 3], name="t")  # type: ignore[arg-type]


def test_unparsable_date_in_index():
    frame = _frame(3)
    raw = frame.copy()
    raw.index = ["2020-01-02", "soon", "2020-01-06"]
    with pytest.raises(DataError, match=r"t, line 3: cannot read the date 'soon'"):
        validate_prices(raw, name="t")


def test_parse_dates_formats():
    iso = parse_dates(pd.Series(["2020-01-02", "2020-01-03"]), name="t")
    us = parse_dates(pd.Series(["01/02/2020", "01/03/2020"]), name="t")
    dayfirst = parse_dates(pd.Series(["02/01/2020", "13/01/2020"]), name="t")
    assert list(iso) == list(us) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]
    assert list(dayfirst) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-13")]
    with pytest.raises(DataError, match=r"line 7: the date is missing"):
        parse_dates(pd.Series(["2020-01-02", " "]), name="t", lines=[3, 7])


# --- properties ----------------------------------------------------------------------------------


@st.composite
def valid_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=40))
    price = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
    frac = st.floats(min_value=0.0, max_value=0.5, allow_nan=False)
    opens = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    closes = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    up = np.array(draw(st.lists(frac, min_size=n, max_size=n)))
    down = np.array(draw(st.lists(frac, min_size=n, max_size=n)))
    volume = np.array(draw(st.lists(st.integers(0, 10**12), min_size=n, max_size=n)), float)
    gaps = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    index = pd.DatetimeIndex(pd.Timestamp("2000-01-03") + pd.to_timedelta(np.cumsum(gaps), "D"),
                             name=C.INDEX_NAME)
    return pd.DataFrame({
        C.OPEN: opens, C.HIGH: np.maximum(opens, closes) * (1 + up),
        C.LOW: np.minimum(opens, closes) * (1 - down), C.CLOSE: closes, C.VOLUME: volume,
    }, index=index)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(valid_frames())
def test_property_valid_frames_pass_unchanged(frame):
    out, warnings = validate_prices(frame, name="prop")
    pd.testing.assert_frame_equal(out, frame, check_freq=False)
    assert warnings == ()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(valid_frames(), st.randoms(use_true_random=False))
def test_property_shuffled_frames_come_back_sorted(frame, rnd):
    order = list(range(len(frame)))
    rnd.shuffle(order)
    out, warnings = validate_prices(frame.iloc[order], name="prop")
    pd.testing.assert_frame_equal(out, frame, check_freq=False)
    assert bool(warnings) == (order != sorted(order))


# --- day/month order and bar spacing -------------------------------------------------------------


def test_read_dates_refuses_an_order_it_cannot_decide():
    with pytest.raises(DataError, match=r"^t: the dates 01/02/2020 \.\. 01/03/2020 read as "
                                         r"day/month \(monthly bars, 2020-02-01 \.\. 2020-03-01\) "
                                         r"or as month/day \(daily bars, 2020-01-02 \.\. "
                                         r"2020-01-03\): say which with --date-format"):
        read_dates(pd.Series(["01/02/2020", "01/03/2020"]), name="t")
    same, notes = read_dates(pd.Series(["01/01/2020", "02/02/2020", "03/03/2020"]), name="t")
    assert list(same.month) == [1, 2, 3] and notes == ()  # both orders agree


def test_many_out_of_order_rows_warn_with_the_first_one():
    frame = _frame(20)
    pasted = pd.concat([frame.iloc[10:], frame.iloc[:10]])
    out, warnings = validate_prices(pasted, name="t")
    pd.testing.assert_frame_equal(out, frame, check_freq=False)
    assert warnings == (
        "sorted 10 out-of-order rows (first: 2020-01-02 after 2020-01-29); that many usually "
        "means the dates are misread or several files were pasted together: check the dates "
        "(--date-format sets the day/month order)",
    )


def test_bar_spacing_change_is_a_warning():
    daily = _frame(20, start="2019-01-02")
    monthly = _frame(12, start="2019-03-01", freq="MS", seed=1)
    out, warnings = validate_prices(pd.concat([daily, monthly]), name="t")
    assert len(out) == 32
    assert warnings == (
        "the bar spacing changes: daily bars 2019-01-02 .. 2019-01-29, then monthly bars "
        "2019-03-01 .. 2020-02-01; every row counts as one bar, so returns and yearly figures "
        "mix the two (keep one stretch with --start/--end)",
    )
    # overnight and weekend gaps between intraday sessions are no change of spacing
    sessions = [_frame(78, start=f"2024-03-{d:02d} 09:30", freq="5min", tz="America/New_York",
                       seed=d) for d in (4, 5, 6, 7, 8, 11)]
    _, quiet = validate_prices(pd.concat(sessions), name="t")
    assert quiet == ()
