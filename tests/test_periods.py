"""Calendar time: bars per year measured over the span of the data, and CAGR over the
calendar time an account was held.

References are computed here from the generated dates themselves: the measurement is
``(number of bars - 1) / (span in days / 365.25)``, and a well-known value (252, 365,
7 * 252, 365 * 24, 52, 12) is expected where the measurement lies within a few percent of it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pandas.tseries.holiday import USFederalHolidayCalendar
from pandas.tseries.offsets import CustomBusinessDay

from sandbox import constants as C
from sandbox.backtest import backtest, infer_periods_per_year, trading_metrics
from sandbox.errors import ConfigError


def _measured(index: pd.DatetimeIndex) -> float:
    """Bars per year over the span of ``index``, worked out independently of the engine."""
    days = (index[-1] - index[0]) / pd.Timedelta(days=1)
    return (len(index) - 1) / (days / 365.25)


def _equity_hours(days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """7 hourly bars a session: 09:30, 10:30, ..., 15:30."""
    return pd.DatetimeIndex([d + pd.Timedelta(hours=9, minutes=30 + 60 * h)
                             for d in days for h in range(7)])


def _fx_hours(start: str, end: str) -> pd.DatetimeIndex:
    """Hourly FX, 24 x 5: opens Sunday 22:00 UTC, last bar Friday 21:00 UTC."""
    every = pd.date_range(start, end, freq="h", tz="UTC", inclusive="left")
    dow, hour = every.day_of_week, every.hour
    open_ = (dow <= 3) | ((dow == 4) & (hour < 22)) | ((dow == 6) & (hour >= 22))
    return every[open_]


# --- bars per year ----------------------------------------------------------------------------


def test_daily_equity_over_years_is_252():
    holiday_free = pd.bdate_range("2015-01-01", "2019-12-31")
    assert 258 < _measured(holiday_free) < 262  # 365.25 * 5 / 7 weekdays, no holidays
    assert infer_periods_per_year(holiday_free) == 252
    with_holidays = pd.date_range("2015-01-01", "2019-12-31",
                                  freq=CustomBusinessDay(calendar=USFederalHolidayCalendar()))
    assert abs(_measured(with_holidays) / 252 - 1) < 0.03
    assert infer_periods_per_year(with_holidays) == 252


def test_daily_crypto_every_day_is_365():
    index = pd.date_range("2021-03-01", periods=1000, freq="D")
    assert _measured(index) == pytest.approx(365.25)
    assert infer_periods_per_year(index) == 365
    # a few weeks of crypto: still every day of the week
    assert infer_periods_per_year(pd.date_range("2024-05-01", periods=30, freq="D")) == 365


def test_hourly_equity_with_7_bars_a_session_is_7_x_252():
    days = pd.date_range("2022-01-03", "2023-12-29",
                         freq=CustomBusinessDay(calendar=USFederalHolidayCalendar()))
    index = _equity_hours(days)
    assert abs(_measured(index) / (7 * 252) - 1) < 0.03
    assert infer_periods_per_year(index) == 1764
    assert infer_periods_per_year(_equity_hours(pd.bdate_range("2022-01-03", "2023-12-29"))) \
        == 1764  # no holidays: 3.9 % more bars, still 7 a session


@pytest.mark.parametrize(("start", "end"), [
    ("2023-01-01", "2025-01-01"),  # two years
    ("2024-03-03", "2024-04-18"),  # 46 calendar days, as in a short hourly download
])
def test_hourly_fx_24x5_is_what_the_file_has(start, end):
    index = _fx_hours(start, end)
    assert (index.day_of_week == 6).any()  # Sunday-evening bars
    expected = _measured(index)
    assert 6000 < expected < 6500  # far from 365 * 24 = 8760
    assert infer_periods_per_year(index) == round(expected)


def test_weekly_and_monthly():
    weekly = pd.date_range("2015-01-02", "2024-12-27", freq="W-FRI")
    assert _measured(weekly) == pytest.approx(52.18, abs=0.01)
    assert infer_periods_per_year(weekly) == 52
    monthly = pd.date_range("2010-01-31", "2024-12-31", freq="ME")
    assert _measured(monthly) == pytest.approx(12.0, abs=0.05)
    assert infer_periods_per_year(monthly) == 12


def test_unusual_spacing_is_rounded_not_snapped():
    # daily bars Monday to Thursday only: 4 a week, 208.7 a year
    days = pd.bdate_range("2018-01-01", "2023-12-31")
    index = days[days.day_of_week <= 3]
    assert infer_periods_per_year(index) == round(_measured(index))
    assert infer_periods_per_year(index) == pytest.approx(365.25 * 4 / 7, abs=1)


def test_short_data_is_classified_by_spacing():
    assert infer_periods_per_year(pd.DatetimeIndex([])) == 252
    assert infer_periods_per_year(pd.DatetimeIndex(["2024-01-02"])) == 252
    # three weeks of weekdays measure 284 a year (Monday .. Friday): too short to measure
    three_weeks = pd.bdate_range("2024-01-08", "2024-01-26")
    assert _measured(three_weeks) > 280
    assert infer_periods_per_year(three_weeks) == 252
    # a week of hourly FX: 24 bars a date, on the 5 weekdays' worth of days a year
    assert infer_periods_per_year(_fx_hours("2024-03-03", "2024-03-09")) == round(
        24 * 365.25 * 5 / 7)


def test_a_hole_in_daily_data_falls_back_on_the_spacing():
    days = pd.bdate_range("2010-01-01", "2019-12-31")
    holed = days[(days < "2012-01-01") | (days >= "2016-01-01")]  # four years missing
    assert _measured(holed) < 170
    assert infer_periods_per_year(holed) == 252


def test_backtest_reports_the_measured_value_unless_overridden():
    index = pd.date_range("2021-01-01", periods=800, freq="D", name=C.INDEX_NAME)
    prices = pd.DataFrame({C.OPEN: np.linspace(100, 120, 800),
                           C.CLOSE: np.linspace(100.5, 120.5, 800)}, index=index)
    pos = pd.Series(1.0, index=index[:100])
    assert backtest(prices, pos).metrics["periods_per_year"] == 365
    assert backtest(prices, pos, periods_per_year=300).metrics["periods_per_year"] == 300


# --- CAGR from calendar time ------------------------------------------------------------------


def _hourly_prices(index: pd.DatetimeIndex, growth: float) -> pd.DataFrame:
    level = growth ** np.arange(len(index))
    return pd.DataFrame({C.OPEN: 100.0 * level, C.CLOSE: 100.0 * level},
                        index=pd.DatetimeIndex(index, name=C.INDEX_NAME))


def test_cagr_of_46_calendar_days_of_hourly_bars():
    index = _fx_hours("2024-03-04", "2024-04-20")  # Monday 00:00 .. Friday 21:00
    index = index[index <= pd.Timestamp("2024-04-19", tz="UTC")]  # exactly 46 days
    assert (index[-1] - index[0]) == pd.Timedelta(days=46)
    prices = _hourly_prices(index, 1.00005)
    result = backtest(prices, pd.Series(1.0, index=index), fill=C.FILL_CLOSE)
    final = prices[C.CLOSE].iloc[-1] / prices[C.CLOSE].iloc[0]  # buy and hold, close to close
    assert result.metrics[C.TOTAL_RETURN] == pytest.approx(final - 1, rel=1e-9)
    assert result.metrics[C.CAGR] == pytest.approx(final ** (365.25 / 46) - 1, rel=1e-9)
    assert result.metrics[C.CAGR] == pytest.approx(0.38, abs=0.005)
    # reading the bar count as time at 365 * 24 bars a year gives far more
    assert final ** (365 * 24 / (len(index) - 1)) - 1 > 0.5


def test_cagr_ends_at_the_bar_that_realises_the_last_return():
    index = pd.bdate_range("2024-01-01", periods=30, name=C.INDEX_NAME)
    prices = _hourly_prices(index, 1.001)
    pos = pd.Series(1.0, index=index[:10])  # rows 0..9; prices go on after the period
    opened = backtest(prices, pos)  # next_open: row 9 is realised at the open of bar 11
    final = prices[C.OPEN].iloc[11] / prices[C.OPEN].iloc[1]
    days = (index[11] - index[0]).days
    assert opened.metrics[C.CAGR] == pytest.approx(final ** (365.25 / days) - 1, rel=1e-9)
    closed = backtest(prices, pos, fill=C.FILL_CLOSE)  # close: at the close of bar 10
    final = prices[C.CLOSE].iloc[10] / prices[C.CLOSE].iloc[0]
    days = (index[10] - index[0]).days
    assert closed.metrics[C.CAGR] == pytest.approx(final ** (365.25 / days) - 1, rel=1e-9)


def test_trading_metrics_takes_years_and_defaults_to_bars_over_periods():
    r = np.array([0.01, 0.02, -0.005, 0.0])
    s = np.ones(4)
    final = float(np.prod(1 + r))
    given = trading_metrics(r, s, periods_per_year=252, years=0.5)
    assert given[C.CAGR] == pytest.approx(final ** 2 - 1)
    default = trading_metrics(r, s, periods_per_year=252)
    assert default[C.CAGR] == pytest.approx(final ** (252 / 4) - 1)
    with pytest.raises(ConfigError, match="years"):
        trading_metrics(r, s, periods_per_year=252, years=0)


def test_cagr_none_on_overflow_and_minus_one_when_wiped_out():
    up = trading_metrics(np.array([1.0, 1.0]), np.ones(2), periods_per_year=252, years=1e-6)
    assert up[C.CAGR] is None
    down = trading_metrics(np.array([-1.0, 0.5]), np.ones(2), periods_per_year=252, years=1.0)
    assert down[C.CAGR] == -1.0
    assert math.isfinite(down[C.TOTAL_RETURN])
