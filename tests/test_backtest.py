"""Paper trading: golden numbers worked by hand, properties, input checks, a cross-check.

The golden tests use tests/fixtures/backtest/prices.csv (8 daily bars):

    row  date        open  close
    0    2024-01-02  100   102
    1    2024-01-03  102   105
    2    2024-01-04  104    99
    3    2024-01-05  100   103
    4    2024-01-08  104   108
    5    2024-01-09  107   101
    6    2024-01-10  100    96
    7    2024-01-11   97    99
"""

from __future__ import annotations

import math
import statistics
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import constants as C
from sandbox.backtest import (
    BacktestResult,
    backtest,
    check_positions,
    infer_periods_per_year,
    positions_from_predictions,
    read_signals,
    trading_metrics,
)
from sandbox.errors import ConfigError, DataError

FIXTURES = Path(__file__).parent / "fixtures" / "backtest"
SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "sample_data"
NAN = math.nan


@pytest.fixture
def prices() -> pd.DataFrame:
    frame = pd.read_csv(FIXTURES / "prices.csv", index_col="date", parse_dates=True)
    frame.index.name = C.INDEX_NAME
    return frame.astype(np.float64)


def _positions(prices: pd.DataFrame, rows: list[int], values: list[float]) -> pd.Series:
    return pd.Series(values, index=prices.index[rows], name=C.POSITION, dtype=np.float64)


def _assert_close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64),
                               np.asarray(expected, dtype=np.float64), rtol=0, atol=1e-12)


def _drawdown(equity: list[float]) -> float:
    peak, worst = 1.0, 0.0
    for e in equity:
        peak = max(peak, e)
        worst = min(worst, e / peak - 1)
    return worst


# --- golden numbers -------------------------------------------------------------------------------


def test_next_open_long_only_no_costs_to_the_end_of_the_prices(prices):
    s = [1, 1, 0, 0, 1, 1, 1, 0]
    result = backtest(prices, _positions(prices, list(range(8)), s))
    # r[t] = s[t] * (open[t+2] / open[t+1] - 1); opens 100 102 104 100 104 107 100 97
    r = [
        1 * (104 / 102 - 1),  # row 0: held open 1 -> open 2
        1 * (100 / 104 - 1),  # row 1
        0.0,                  # row 2: flat
        0.0,                  # row 3
        1 * (100 / 107 - 1),  # row 4: open 5 -> open 6
        1 * (97 / 100 - 1),   # row 5: open 6 -> open 7
        NAN, NAN,             # rows 6, 7: no open[t+2]
    ]
    equity = [104 / 102, 100 / 102, 100 / 102, 100 / 102, 100 / 102 * 100 / 107,
              100 / 102 * 100 / 107 * 97 / 100, NAN, NAN]
    frame = result.frame
    assert list(frame.columns) == [C.POSITION, C.STRATEGY_RETURN, C.EQUITY]
    assert frame.index.name == C.INDEX_NAME
    assert frame.index.equals(prices.index)
    _assert_close(frame[C.POSITION], s)
    _assert_close(frame[C.STRATEGY_RETURN], r)
    _assert_close(frame[C.EQUITY], equity)

    m = result.metrics
    rr = r[:6]  # the rows that have a return
    assert m[C.TOTAL_RETURN] == pytest.approx(equity[5] - 1, abs=1e-12)
    assert m[C.SHARPE] == pytest.approx(
        statistics.mean(rr) / statistics.stdev(rr) * math.sqrt(252), abs=1e-9)
    # peak 104/102 after row 0, trough after row 5
    assert m[C.MAX_DRAWDOWN] == pytest.approx(100 / 104 * 100 / 107 * 97 / 100 - 1, abs=1e-12)
    assert m[C.N_TRADES] == 3  # rows 0 (0 -> 1), 2 (1 -> 0), 4 (0 -> 1); row 7's exit has no return
    assert m[C.TURNOVER] == pytest.approx(3.0)
    assert m[C.EXPOSURE] == pytest.approx(4 / 6)
    assert m[C.WIN_RATE] == pytest.approx(1 / 4)  # in the market rows 0, 1, 4, 5: only row 0 gains
    # calendar years: row 0 (2024-01-02) to bar 7 (2024-01-11), where row 5's return is realised
    assert m[C.CAGR] == pytest.approx(equity[5] ** (365.25 / 9) - 1, rel=1e-12)
    assert set(m) == set(C.TRADING_METRICS) | {"periods_per_year"}
    assert m["periods_per_year"] == 252  # 8 daily bars: too few to measure, classified daily


def test_next_open_long_short_fractional_with_costs_uses_prices_after_the_period(prices):
    # period = rows 1..4; rows 5 and 6 lie after it and still fill its last rows
    result = backtest(prices, _positions(prices, [1, 2, 3, 4], [0.5, 1, -1, -0.25]),
                      cost_bps=10)
    c = 10 / 10_000
    r = [
        0.5 * (100 / 104 - 1) - c * abs(0.5 - 0),    # row 1: entry cost on the first row
        1.0 * (104 / 100 - 1) - c * abs(1 - 0.5),    # row 2
        -1.0 * (107 / 104 - 1) - c * abs(-1 - 1),    # row 3: flip long -> short
        -0.25 * (100 / 107 - 1) - c * abs(-0.25 + 1),  # row 4: open 5 -> open 6 (after the period)
    ]
    equity = np.cumprod([1 + x for x in r])  # no exit cost for the -0.25 still open
    assert list(result.frame.index) == list(prices.index[1:5])
    _assert_close(result.frame[C.STRATEGY_RETURN], r)
    _assert_close(result.frame[C.EQUITY], equity)
    m = result.metrics
    assert m[C.TOTAL_RETURN] == pytest.approx(equity[-1] - 1, abs=1e-12)
    assert m[C.SHARPE] == pytest.approx(
        statistics.mean(r) / statistics.stdev(r) * math.sqrt(252), abs=1e-9)
    assert m[C.MAX_DRAWDOWN] == pytest.approx(_drawdown(list(equity)), abs=1e-12)
    assert m[C.N_TRADES] == 4
    assert m[C.TURNOVER] == pytest.approx(0.5 + 0.5 + 2 + 0.75)
    assert m[C.EXPOSURE] == 1.0
    assert m[C.WIN_RATE] == pytest.approx(2 / 4)  # rows 2 and 4 gain


def test_close_fill_with_costs_and_missing_rows_flat(prices):
    # dates of rows 1, 4 and 5 are absent from the series: flat; period rows 0..6
    result = backtest(prices, _positions(prices, [0, 2, 3, 6], [1, -0.5, 1, 1]),
                      fill=C.FILL_CLOSE, cost_bps=25)
    c = 25 / 10_000
    # r[t] = s[t] * (close[t+1] / close[t] - 1) - c |s[t] - s[t-1]|
    # closes 102 105 99 103 108 101 96 99
    r = [
        1 * (105 / 102 - 1) - c * 1,           # row 0: enter long
        0.0 - c * 1,                           # row 1: missing -> flat, pays the exit
        -0.5 * (103 / 99 - 1) - c * 0.5,       # row 2
        1 * (108 / 103 - 1) - c * 1.5,         # row 3
        0.0 - c * 1,                           # row 4: missing -> flat
        0.0,                                   # row 5: still flat, no cost
        1 * (99 / 96 - 1) - c * 1,             # row 6: close 7 lies after the period
    ]
    frame = result.frame
    assert list(frame.index) == list(prices.index[:7])
    _assert_close(frame[C.POSITION], [1, 0, -0.5, 1, 0, 0, 1])
    _assert_close(frame[C.STRATEGY_RETURN], r)
    _assert_close(frame[C.EQUITY], np.cumprod([1 + x for x in r]))
    m = result.metrics
    assert m[C.N_TRADES] == 6
    assert m[C.TURNOVER] == pytest.approx(1 + 1 + 0.5 + 1.5 + 1 + 1)
    assert m[C.EXPOSURE] == pytest.approx(4 / 7)
    assert m[C.WIN_RATE] == pytest.approx(3 / 4)  # rows 0, 3 and 6 gain; row 2 loses


def test_close_fill_last_row_has_no_return_and_buy_and_hold_telescopes(prices):
    result = backtest(prices, _positions(prices, list(range(8)), [1.0] * 8), fill=C.FILL_CLOSE)
    closes = [102, 105, 99, 103, 108, 101, 96, 99]
    expected = [closes[t + 1] / closes[0] for t in range(7)] + [NAN]
    _assert_close(result.frame[C.EQUITY], expected)
    assert math.isnan(result.frame[C.STRATEGY_RETURN].iloc[-1])
    assert result.metrics[C.TOTAL_RETURN] == pytest.approx(99 / 102 - 1, abs=1e-12)
    assert result.metrics[C.N_TRADES] == 1 and result.metrics[C.EXPOSURE] == 1.0


def test_short_entry_cost_on_the_first_row_without_exit_cost(prices):
    result = backtest(prices, _positions(prices, [3], [-1.0]), fill=C.FILL_CLOSE, cost_bps=5)
    r = -1 * (108 / 103 - 1) - 0.0005
    _assert_close(result.frame[C.STRATEGY_RETURN], [r])
    assert result.metrics[C.TOTAL_RETURN] == pytest.approx(r, abs=1e-15)
    assert result.metrics[C.SHARPE] == 0.0  # a single return has no standard deviation
    # close fill: row 3 (2024-01-05) is realised at the close of bar 4 (2024-01-08), 3 days on
    assert result.metrics[C.CAGR] == pytest.approx((1 + r) ** (365.25 / 3) - 1)


def test_a_period_with_no_return_keeps_its_rows(prices):
    result = backtest(prices, _positions(prices, [6, 7], [1.0, 1.0]))
    assert len(result.frame) == 2
    assert result.frame[C.EQUITY].isna().all()
    assert result.metrics[C.TOTAL_RETURN] == 0.0
    assert result.metrics[C.N_TRADES] == 0
    assert result.metrics[C.CAGR] is None and result.metrics[C.WIN_RATE] is None


def test_no_negative_zero_returns(prices):
    result = backtest(prices, _positions(prices, list(range(6)), [0.0] * 6))
    r = result.frame[C.STRATEGY_RETURN].to_numpy()[:6]
    assert not np.signbit(r).any()
    assert result.metrics[C.WIN_RATE] is None and result.metrics[C.SHARPE] == 0.0


def test_result_is_frozen(prices):
    result = backtest(prices, _positions(prices, [0], [1.0]))
    assert isinstance(result, BacktestResult)
    with pytest.raises(AttributeError):
        result.metrics = {}  # type: ignore[misc]


def test_trading_metrics_match_the_engine_and_skip_rows_without_return(prices):
    result = backtest(prices, _positions(prices, list(range(8)), [1, -1, 0.5, 0, 0, 1, -1, 1]),
                      cost_bps=7)
    # rows 0..5 have a return; row 5's is realised at bar 7: 2024-01-02 -> 2024-01-11
    again = trading_metrics(result.frame[C.STRATEGY_RETURN], result.frame[C.POSITION],
                            periods_per_year=252, years=9 / 365.25)
    assert {**again, "periods_per_year": 252.0} == pytest.approx(result.metrics)


def test_sharpe_uses_the_given_periods_per_year(prices):
    pos = _positions(prices, list(range(6)), [1, -1, 1, 1, -1, 1])
    daily = backtest(prices, pos, periods_per_year=252).metrics[C.SHARPE]
    weekly = backtest(prices, pos, periods_per_year=52).metrics[C.SHARPE]
    assert weekly == pytest.approx(daily * math.sqrt(52 / 252))


def test_constant_returns_have_zero_sharpe():
    m = trading_metrics(np.full(5, 0.1), np.ones(5), periods_per_year=252)
    assert m[C.SHARPE] == 0.0
    assert m[C.TOTAL_RETURN] == pytest.approx(1.1**5 - 1)


# --- options and input checks ---------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"fill": "open"}, "fill 'open'"),
    ({"cost_bps": -1.0}, "cost -1.0"),
    ({"cost_bps": math.nan}, "cost nan"),
    ({"periods_per_year": 0}, "periods per year 0"),
])
def test_bad_options_raise_config_error(prices, kwargs, words):
    with pytest.raises(ConfigError, match=words):
        backtest(prices, _positions(prices, [0], [1.0]), **kwargs)


@pytest.mark.parametrize(("values", "dates", "words"), [
    ([], [], "there are no positions"),
    ([1.0, math.nan], ["2024-01-02", "2024-01-03"], "2024-01-03: the position is missing"),
    ([1.0, 1.5], ["2024-01-02", "2024-01-03"], r"2024-01-03: position 1.5 is outside \[-1, 1\]"),
    ([-2.0], ["2024-01-03"], "outside"),
    ([1.0, 0.0], ["2024-01-02", "2024-01-06"], r"1 date is not in the price data \(2024-01-06\)"),
    ([1.0, 0.0], ["2024-01-02", "2024-01-02"], "appears more than once"),
])
def test_check_positions_refuses_bad_series(prices, values, dates, words):
    series = pd.Series(values, index=pd.DatetimeIndex(dates), dtype=np.float64)
    with pytest.raises(DataError, match=f"^signals.csv, .*{words}|^signals.csv: {words}"):
        check_positions(series, prices_index=prices.index, name="signals.csv")
    with pytest.raises(DataError):
        backtest(prices, series)


def test_check_positions_names_a_timezone_mismatch(prices):
    series = pd.Series([1.0], index=pd.DatetimeIndex(["2024-01-02"]).tz_localize("UTC"))
    with pytest.raises(DataError, match="timezone"):
        check_positions(series, prices_index=prices.index, name="s.csv")


def test_check_positions_accepts_a_good_series_in_any_order(prices):
    series = pd.Series([0.0, -1.0, 1.0], index=prices.index[[5, 0, 2]])
    check_positions(series, prices_index=prices.index, name="s.csv")
    result = backtest(prices, series)
    _assert_close(result.frame[C.POSITION], [-1, 0, 1, 0, 0, 0])


# --- positions from predictions -------------------------------------------------------------------


def test_positions_from_predictions_long_flat_and_long_short():
    pred = pd.Series([0.002, 0.0005, 0.0001, 0.0, -0.0001, -0.0005, -0.002, math.nan],
                     index=pd.date_range("2024-01-01", periods=8))
    flat = positions_from_predictions(pred)
    assert flat.tolist() == [1, 1, 1, 0, 0, 0, 0, 0]  # strictly above 0
    assert flat.name == C.POSITION and flat.index.equals(pred.index)
    banded = positions_from_predictions(pred, strategy=C.LONG_SHORT, threshold_bps=5)
    assert banded.tolist() == [1, 0, 0, 0, 0, 0, -1, 0]  # +-5 bps is inside the band
    flat5 = positions_from_predictions(pred, strategy=C.LONG_FLAT, threshold_bps=5)
    assert flat5.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ConfigError):
        positions_from_predictions(pred, strategy="short_only")
    with pytest.raises(ConfigError):
        positions_from_predictions(pred, threshold_bps=-1)


# --- bars per year --------------------------------------------------------------------------------


def _session(days: pd.DatetimeIndex, minutes: int) -> pd.DatetimeIndex:
    """Intraday bars of an equity session: every ``minutes`` from 09:30 to before 16:00."""
    offsets = pd.to_timedelta(np.arange(9 * 60 + 30, 16 * 60, minutes), unit="min")
    return pd.DatetimeIndex([d + o for d in days for o in offsets])


@pytest.mark.parametrize(("index", "expected"), [
    (pd.bdate_range("2020-01-01", periods=300), 252),
    (pd.date_range("2020-01-03", periods=100, freq="W-FRI"), 52),
    (pd.date_range("2020-01-31", periods=40, freq="ME"), 12),
    (pd.date_range("2020-03-31", periods=40, freq="QE"), 4),
    # equities: 1-minute bars of a 6.5 h session, one Monday -> 390 a day, 252 days
    (pd.date_range("2024-01-08 09:30", periods=390, freq="min", tz="America/New_York"), 252 * 390),
    # 5-minute bars of a session, four weeks of weekdays -> 78 a day
    (_session(pd.bdate_range("2024-01-08", periods=20), 5), 252 * 78),
    # around the clock (weekend bars present): 24 hourly bars every calendar day
    (pd.date_range("2024-01-01", periods=24 * 14, freq="h", tz="UTC"), 365 * 24),
    (pd.DatetimeIndex(["2024-01-02"]), 252),
])
def test_infer_periods_per_year(index, expected):
    assert infer_periods_per_year(index) == pytest.approx(expected)


def test_infer_periods_per_year_on_the_sample_and_equity_hours():
    goog = pd.read_csv(SAMPLES / "GOOG.csv", index_col=0, parse_dates=True)
    assert infer_periods_per_year(goog.index) == 252
    # hourly equity bars (09:30, 10:30, ..., 15:30) over four weeks, weekdays only: 7 a day
    stamps = _session(pd.bdate_range("2024-01-08", periods=20), 60)
    assert infer_periods_per_year(stamps) == 7 * 252


def test_backtest_infers_periods_per_year(prices):
    pos = _positions(prices, list(range(6)), [1, -1, 1, 1, -1, 1])
    assert backtest(prices, pos).metrics == backtest(prices, pos, periods_per_year=252).metrics


# --- signals files --------------------------------------------------------------------------------


def test_read_signals_fixture():
    s = read_signals(FIXTURES / "signals.csv")
    assert s.name == C.POSITION and s.index.name == C.INDEX_NAME
    assert s.dtype == np.float64 and s.index.tz is None
    assert list(s.index.strftime("%Y-%m-%d")) == ["2024-01-03", "2024-01-04", "2024-01-05",
                                                    "2024-01-08"]
    assert s.tolist() == [0.5, 1.0, -1.0, -0.25]


def test_read_signals_sorts_and_accepts_other_headers(tmp_path, prices):
    path = tmp_path / "s.csv"
    path.write_text("Date,Position\n01/05/2024,-1\n01/03/2024,0.5\n\n")
    s = read_signals(path)
    assert list(s.index) == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-05")]
    check_positions(s, prices_index=prices.index, name=str(path))


@pytest.mark.parametrize(("text", "words"), [
    ("", "is empty"),
    ("date,position\n", "header but no rows"),
    ("day,weight\n2024-01-02,1\n", "expected columns date, position"),
    ("date,position\n2024-01-02,1\nnot a date,1\n", "line 3"),
    ("date,position\n2024-01-02,1\n2024-01-03,long\n", "line 3: the position is 'long', not a"),
    ("date,position\n2024-01-02,\n", "line 2: the position is missing"),
    ("date,position\n2024-01-02,1\n2024-01-03,2\n", r"line 3: position 2 is outside \[-1, 1\]"),
    ("date,position\n2024-01-02,1\n2024-01-02,0\n", "line 3: the date 2024-01-02 appears more"),
])
def test_read_signals_refuses_bad_files(tmp_path, text, words):
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=words) as info:
        read_signals(path)
    assert str(path) in str(info.value)


def test_read_signals_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_signals(tmp_path / "nope.csv")


# --- properties -----------------------------------------------------------------------------------


@st.composite
def markets(draw, *, fractional: bool = True):
    """Prices with bar moves within +-40 % (a short never loses more than the account in a
    bar) and a position series on a sub-period, with some of its dates missing."""
    n = draw(st.integers(3, 40))
    moves = st.floats(-0.4, 0.4, allow_nan=False)
    gaps = draw(st.lists(moves, min_size=n, max_size=n))  # close[t-1] -> open[t]
    bodies = draw(st.lists(moves, min_size=n, max_size=n))  # open[t] -> close[t]
    log_open = np.cumsum(np.log1p(gaps)) + np.r_[0.0, np.cumsum(np.log1p(bodies))[:-1]]
    opens = 100 * np.exp(log_open)
    closes = opens * (1 + np.asarray(bodies))
    index = pd.bdate_range("2020-01-01", periods=n, name=C.INDEX_NAME)
    prices = pd.DataFrame({C.OPEN: opens, C.HIGH: np.maximum(opens, closes) * 1.01,
                           C.LOW: np.minimum(opens, closes) * 0.99, C.CLOSE: closes,
                           C.VOLUME: 1.0}, index=index)
    a = draw(st.integers(0, n - 1))
    b = draw(st.integers(a, n - 1))
    inner = [i for i in range(a + 1, b) if draw(st.booleans())]
    rows = sorted({a, b, *inner})
    value = (st.floats(-1, 1, allow_nan=False) if fractional
             else st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]))
    values = draw(st.lists(value, min_size=len(rows), max_size=len(rows)))
    return prices, pd.Series(values, index=index[rows], name=C.POSITION)


fills = st.sampled_from(C.FILLS)
costs = st.floats(0, 100, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(markets(), fills, costs)
def test_zero_positions_give_flat_equity_and_no_trades(market, fill, cost):
    prices, pos = market
    result = backtest(prices, pos * 0.0, fill=fill, cost_bps=cost)
    equity = result.frame[C.EQUITY].dropna()
    assert (equity == 1.0).all()
    assert result.metrics[C.N_TRADES] == 0 and result.metrics[C.TURNOVER] == 0.0
    assert result.metrics[C.TOTAL_RETURN] == 0.0 and result.metrics[C.MAX_DRAWDOWN] == 0.0


@settings(max_examples=60, deadline=None)
@given(markets(), fills, costs, costs)
def test_costs_never_increase_total_return(market, fill, cost_a, cost_b):
    prices, pos = market
    low, high = sorted((cost_a, cost_b))
    cheap = backtest(prices, pos, fill=fill, cost_bps=low).metrics[C.TOTAL_RETURN]
    dear = backtest(prices, pos, fill=fill, cost_bps=high).metrics[C.TOTAL_RETURN]
    assert dear <= cheap + 1e-12


@settings(max_examples=60, deadline=None)
@given(markets(), fills, costs)
def test_max_drawdown_is_between_minus_one_and_zero(market, fill, cost):
    prices, pos = market
    m = backtest(prices, pos, fill=fill, cost_bps=cost).metrics
    assert -1.0 <= m[C.MAX_DRAWDOWN] <= 0.0
    assert 0.0 <= m[C.EXPOSURE] <= 1.0
    assert m[C.TURNOVER] <= 2 * m[C.N_TRADES] + 1e-12  # one change moves at most 2 units


@settings(max_examples=60, deadline=None)
@given(markets(), fills)
def test_always_long_without_costs_is_buy_and_hold(market, fill):
    prices, pos = market
    full = pd.Series(1.0, index=prices.index[prices.index.get_loc(pos.index[0]):
                                             prices.index.get_loc(pos.index[-1]) + 1])
    result = backtest(prices, full, fill=fill)
    first = prices.index.get_loc(full.index[0])
    lag = 2 if fill == C.FILL_NEXT_OPEN else 1
    px = prices[C.OPEN if fill == C.FILL_NEXT_OPEN else C.CLOSE].to_numpy()
    equity = result.frame[C.EQUITY].to_numpy()
    for k in range(len(full)):
        t = first + k
        if t + lag < len(prices):  # held from the fill at t+lag-1 to t+lag
            assert equity[k] == pytest.approx(px[t + lag] / px[first + lag - 1], rel=1e-9)
        else:
            assert math.isnan(equity[k])


@settings(max_examples=60, deadline=None)
@given(markets(fractional=False), fills, costs, st.data())
def test_no_row_uses_prices_before_its_decision_bar(market, fill, cost, data):
    prices, pos = market
    later = pd.Series(pos.to_numpy(), index=prices.index[
        [min(prices.index.get_loc(d) + 1, len(prices) - 1) for d in pos.index]])
    later = later[~later.index.duplicated(keep="first")]  # shift the signals one bar later
    for signals in (pos, later):
        cut = data.draw(st.integers(0, len(prices) - 1), label="first untouched bar")
        base = backtest(prices, signals, fill=fill, cost_bps=cost).frame
        garbled = prices.copy()
        garbled.iloc[:cut] = garbled.iloc[:cut] * 7.0  # every price before bar `cut`
        moved = backtest(garbled, signals, fill=fill, cost_bps=cost).frame
        keep = base.index >= prices.index[cut]  # rows decided at bar `cut` or later
        pd.testing.assert_series_equal(base.loc[keep, C.STRATEGY_RETURN],
                                       moved.loc[keep, C.STRATEGY_RETURN])


# --- an independent event-driven implementation ---------------------------------------------------


def test_equity_matches_backtesting_py_on_goog():
    """backtesting.py (long only, no costs, trade_on_close=False) against ``next_open``.

    Where the semantics coincide: an order placed at the close of bar t fills at open[t+1]
    in both. Differences, all accounted for below:
    - backtesting.py marks equity at each bar's close; ours is marked at the opens, so its
      equity at open j is ``equity[j - 2]`` and, when long through bar j, the close-marked
      value is that times ``close[j] / open[j]``;
    - it buys whole shares: with cash 1e15 the unspent remainder is < 1e-12 of equity;
    - it first asks the strategy at bar 1 (our period starts there);
    - it never fills orders placed on the last bar and leaves open trades open; our last two
      rows have no return (no open[t+2]).
    """
    backtesting = pytest.importorskip("backtesting")
    prices = pd.read_csv(SAMPLES / "GOOG.csv", index_col=0, parse_dates=True)
    prices.columns = [c.lower() for c in prices.columns]
    prices.index.name = C.INDEX_NAME
    close, open_ = prices[C.CLOSE].to_numpy(), prices[C.OPEN].to_numpy()
    n = len(prices)
    # long when the close is above its 20-bar-old value: 79 round trips on GOOG
    signal = np.r_[np.zeros(20), (close[20:] > close[:-20]).astype(float)]

    class Follow(backtesting.Strategy):
        def init(self):
            pass

        def next(self):
            want = signal[len(self.data) - 1]
            if want > 0 and not self.position:
                self.buy()
            elif want == 0 and self.position:
                self.position.close()

    cash = 1e15
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = backtesting.Backtest(
            prices.rename(columns=str.capitalize), Follow, cash=cash, commission=0.0,
            trade_on_close=False, exclusive_orders=False,
        ).run()
    theirs = stats["_equity_curve"]["Equity"].to_numpy() / cash

    ours = backtest(prices, pd.Series(signal[1:], index=prices.index[1:]), fill=C.FILL_NEXT_OPEN)
    equity = ours.frame[C.EQUITY].to_numpy()  # rows 1 .. n-1
    at_open = np.ones(n)
    at_open[3:] = equity[: n - 3]  # equity at open j = equity of row j-2
    long_through = np.r_[0.0, signal[:-1]] > 0  # decided at j-1, filled at open j
    marked = at_open * np.where(long_through, close / open_, 1.0)

    assert len(stats["_trades"]) >= 50
    np.testing.assert_allclose(marked, theirs, rtol=0, atol=1e-9)
    # each round trip: exit / entry price is our equity growth over the held rows
    trades = stats["_trades"]
    for entry_bar, exit_bar, ret in trades[["EntryBar", "ExitBar", "ReturnPct"]].itertuples(
            index=False):
        growth = at_open[exit_bar] / at_open[entry_bar]
        assert growth - 1 == pytest.approx(ret, abs=1e-9)
