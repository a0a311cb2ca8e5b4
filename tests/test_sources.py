"""The three sources and load_prices: samples, CSV dialects and bad files, Yahoo (faked)."""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.config import DataSpec
from sandbox.data import (
    LoadedPrices,
    PriceCache,
    fetch_yahoo,
    list_samples,
    load_prices,
    read_price_csv,
    yahoo,
)
from sandbox.errors import ConfigError, DataError, NetworkError
from sandbox.events import DataLoaded

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def _check_contract(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(C.PRICE_COLUMNS)
    assert all(frame.dtypes == np.float64)
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == C.INDEX_NAME
    assert frame.index.is_monotonic_increasing and frame.index.is_unique


# --- samples -------------------------------------------------------------------------------------


def test_list_samples():
    assert list_samples() == ("GOOG", "GSPC")


@pytest.mark.parametrize(("name", "rows", "first", "last"), [
    ("GSPC", 5031, "1999-01-04", "2018-12-31"),
    ("GOOG", 2148, "2004-08-19", "2013-03-01"),
])
def test_sample_loads_with_the_contract(name, rows, first, last):
    loaded = load_prices(DataSpec(source=f"sample:{name}"))
    assert isinstance(loaded, LoadedPrices)
    assert (loaded.label, loaded.source, loaded.from_cache) == (name, f"sample:{name}", False)
    frame = loaded.frame
    _check_contract(frame)
    assert frame.index.tz is None
    assert len(frame) == rows
    assert frame.index[0] == pd.Timestamp(first) and frame.index[-1] == pd.Timestamp(last)
    assert loaded.warnings == ()


def test_sample_name_is_case_insensitive():
    assert load_prices(DataSpec(source="sample:gspc")).label == "GSPC"


def test_unknown_sample():
    with pytest.raises(DataError, match=r"unknown sample 'SPY'.*GOOG, GSPC"):
        load_prices(DataSpec(source="sample:SPY"))


def test_load_emits_data_loaded_and_applies_inclusive_dates():
    events = []
    spec = DataSpec(source="sample:GSPC", start="2010-01-04", end="2010-12-31")
    loaded = load_prices(spec, on_event=events.append)
    assert loaded.frame.index[0] == pd.Timestamp("2010-01-04")
    assert loaded.frame.index[-1] == pd.Timestamp("2010-12-31")  # the end date is kept
    assert len(loaded.frame) == 252
    assert events == [DataLoaded(label="GSPC", n_rows=252, first="2010-01-04",
                                 last="2010-12-31")]


def test_min_rows_after_trimming_names_the_source():
    spec = DataSpec(source="sample:GSPC", start="2018-11-01", end="2018-12-31")
    with pytest.raises(DataError, match=r"^sample GSPC has 40 rows .*at least 100"):
        load_prices(spec, min_rows=100)


def test_bad_dates_in_spec():
    with pytest.raises(ConfigError, match="--start 'yesterday'"):
        load_prices(DataSpec(source="sample:GSPC", start="yesterday"))
    with pytest.raises(ConfigError, match="is after --end"):
        load_prices(DataSpec(source="sample:GSPC", start="2010-01-01", end="2009-01-01"))
    with pytest.raises(DataError, match=r"no rows between 2030-01-01 .*1999-01-04 \.\. 2018-12-31"):
        load_prices(DataSpec(source="sample:GSPC", start="2030-01-01"))


# --- CSV dialects --------------------------------------------------------------------------------


@pytest.mark.parametrize(("file", "rows", "first", "close0", "warning"), [
    ("yahoo_export.csv", 12, "2020-01-02", 75.087502, None),
    ("broker_export.csv", 8, "2020-01-02", 3257.85, "newest first"),
    ("nasdaq_export.csv", 8, "2020-01-02", 3257.85, "newest first"),
    ("bom_no_volume.csv", 6, "2020-01-02", 75.0875, "volume set to 0"),
    ("semicolon_decimal_comma.csv", 3, "2020-01-02", 1.1217, None),
    ("yahoo_null_row.csv", 11, "2020-01-02", 75.087502, "line 6"),
    ("duplicate_dates.csv", 12, "2020-01-02", 75.087502, "lines 4, 5"),
    ("unsorted.csv", 12, "2020-01-02", 75.087502, "sorted 2 out-of-order rows"),
])
def test_csv_dialects(file, rows, first, close0, warning):
    frame, notes = read_price_csv(FIXTURES / file)
    _check_contract(frame)
    assert frame.index.tz is None
    assert len(frame) == rows
    assert frame.index[0] == pd.Timestamp(first)
    assert frame[C.CLOSE].iloc[0] == pytest.approx(close0)
    if warning is None:
        assert notes == ()
    else:
        assert any(warning in n for n in notes), notes


def test_broker_thousands_separators_and_us_dates():
    frame, _ = read_price_csv(FIXTURES / "broker_export.csv")
    first = frame.iloc[0]
    assert list(first) == [3244.67, 3258.14, 3235.53, 3257.85, 3_458_250_000.0]
    assert frame.index[-1] == pd.Timestamp("2020-01-13")


def test_duplicate_date_keeps_the_last_row():
    frame, _ = read_price_csv(FIXTURES / "duplicate_dates.csv")
    assert frame.loc["2020-01-06", C.CLOSE] == pytest.approx(74.9)


def test_intraday_with_one_offset_keeps_it():
    frame, notes = read_price_csv(FIXTURES / "intraday_tz.csv")
    _check_contract(frame)
    assert frame.index.tz is not None
    assert frame.index[0] == pd.Timestamp("2024-03-01 09:30:00-05:00")
    assert frame.index[0].utcoffset() == pd.Timedelta(hours=-5)
    assert notes == ()


def test_intraday_across_dst_is_converted_to_utc():
    frame, notes = read_price_csv(FIXTURES / "intraday_dst.csv")
    assert str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2024-03-08 20:00", tz="UTC")
    assert frame.index[2] == pd.Timestamp("2024-03-11 13:30", tz="UTC")
    assert any("UTC" in n for n in notes)


def test_adj_close_used_only_on_request():
    plain, _ = read_price_csv(FIXTURES / "yahoo_export.csv")
    adjusted, _ = read_price_csv(FIXTURES / "yahoo_export.csv", use_adj_close=True)
    assert plain[C.CLOSE].iloc[0] == pytest.approx(75.087502)
    assert adjusted[C.CLOSE].iloc[0] == pytest.approx(73.249016)
    factor = 73.249016 / 75.087502
    assert adjusted[C.OPEN].iloc[0] == pytest.approx(74.059998 * factor)
    assert adjusted[C.HIGH].iloc[0] == pytest.approx(75.150002 * factor)
    assert adjusted[C.LOW].iloc[0] == pytest.approx(73.797501 * factor)
    assert (adjusted[C.VOLUME] == plain[C.VOLUME]).all()


def test_adj_close_requested_but_absent_warns():
    _, notes = read_price_csv(FIXTURES / "broker_export.csv", use_adj_close=True)
    assert any("Adj Close" in n for n in notes)


def test_csv_via_load_prices_uses_the_file_stem_as_label(tmp_path):
    target = tmp_path / "My Prices.csv"
    target.write_bytes((FIXTURES / "yahoo_export.csv").read_bytes())
    loaded = load_prices(DataSpec(source=f"csv:{target}", end="2020-01-10"))
    assert loaded.label == "My Prices"
    assert loaded.frame.index[-1] == pd.Timestamp("2020-01-10")


def test_our_own_fetch_output_reads_back(tmp_path):
    frame = load_prices(DataSpec(source="sample:GOOG")).frame
    path = tmp_path / "goog.csv"
    frame.to_csv(path)
    back, notes = read_price_csv(path)
    pd.testing.assert_frame_equal(back, frame, check_freq=False, check_index_type=False)
    assert notes == ()


# --- CSV bad input: DataError naming the file, the line and the problem --------------------------


@pytest.mark.parametrize(("file", "pattern"), [
    ("empty.csv", r"empty\.csv is empty"),
    ("header_only.csv", r"header_only\.csv has a header but no data rows"),
    ("binary_junk.csv", r"binary_junk\.csv is not a CSV text file"),
    ("spreadsheet.xlsx", r"spreadsheet\.xlsx is a zip or Excel file"),
    ("missing_close.csv", r"missing_close\.csv: missing column close"),
    ("bad_date.csv", r"bad_date\.csv, line 5: cannot read the date '2020-13-45'"),
    ("nonpositive.csv", r"nonpositive\.csv, line 6 \(2020-01-08\): close is 0"),
    ("high_below.csv", r"high_below\.csv, line 7 \(2020-01-09\): high 76\.9 is below max"),
    ("low_above.csv", r"low_above\.csv, line 4 \(2020-01-06\): low 73\.5 is above min"),
    ("negative_volume.csv", r"negative_volume\.csv, line 3 \(2020-01-03\): volume -5"),
    ("not_a_number.csv", r"not_a_number\.csv, line 8: close 'abc' is not a number"),
    ("nan_run.csv", r"nan_run\.csv, lines 5-7: 3 consecutive rows with missing"),
    ("ragged.csv", r"ragged\.csv: cannot read the CSV .*line 3"),
])
def test_bad_csv(file, pattern):
    with pytest.raises(DataError, match=pattern):
        read_price_csv(FIXTURES / file)


def test_bad_csv_through_load_prices_too():
    with pytest.raises(DataError, match=r"nan_run\.csv, lines 5-7"):
        load_prices(DataSpec(source=f"csv:{FIXTURES / 'nan_run.csv'}"))


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=rf"^{missing}: no such file$"):
        read_price_csv(missing)


def test_directory(tmp_path):
    with pytest.raises(DataError, match=rf"^{tmp_path} is a folder, not a CSV file$"):
        read_price_csv(tmp_path)


def test_whitespace_only_file(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n\n   \n")
    with pytest.raises(DataError, match=r"blank\.csv is empty"):
        read_price_csv(path)


def test_no_date_column(tmp_path):
    path = tmp_path / "nodate.csv"
    path.write_text("Open,High,Low,Close\n1,2,0.5,1.5\n")
    with pytest.raises(DataError, match=r"nodate\.csv: no Date column"):
        read_price_csv(path)


# --- Yahoo (the yfinance call site is faked; no network) -----------------------------------------


def _yahoo_frame(n: int = 30, *, intraday: bool = False, adjust: bool = True) -> pd.DataFrame:
    """What ``Ticker.history(..., actions=False)`` returns: title case, exchange tz."""
    rng = np.random.default_rng(7)
    close = 150 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * (1 + rng.normal(0, 0.002, n))
    if intraday:
        index = pd.date_range("2024-03-01 09:30", periods=n, freq="5min",
                              tz="America/New_York", name="Datetime")
    else:
        index = pd.date_range("2024-01-02", periods=n, freq="B", tz="America/New_York",
                              name="Date")
    frame = pd.DataFrame({
        "Open": open_, "High": np.maximum(open_, close) * 1.003,
        "Low": np.minimum(open_, close) * 0.997, "Close": close,
        "Volume": rng.integers(1_000, 1_000_000, n),
    }, index=index)
    if not adjust:
        frame.insert(4, "Adj Close", close * 0.98)
    return frame


class FakeYahoo:
    """Stands in for ``yahoo._yf_history``: records calls, returns or raises."""

    def __init__(self, result):
        self.result = result
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, symbol, **kwargs):
        self.calls.append((symbol, kwargs))
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


@pytest.fixture
def fake_yahoo(monkeypatch):
    def install(result) -> FakeYahoo:
        fake = FakeYahoo(result)
        monkeypatch.setattr(yahoo, "_yf_history", fake)
        return fake

    return install


def _dns_error():
    from curl_cffi.requests.exceptions import DNSError

    return DNSError("Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo"
                    ".com. See https://curl.se/libcurl/c/libcurl-errors.html first for more "
                    "details.")


def test_yahoo_download_is_validated_and_cached(fake_yahoo, tmp_path):
    fake = fake_yahoo(_yahoo_frame(30))
    cache = PriceCache(tmp_path)
    loaded = load_prices(DataSpec(source="yahoo:aapl"), cache=cache)
    assert (loaded.label, loaded.source, loaded.from_cache) == ("AAPL", "yahoo:aapl", False)
    _check_contract(loaded.frame)
    assert loaded.frame.index.tz is None  # daily bars: dates without a timezone
    assert loaded.frame.index[0] == pd.Timestamp("2024-01-02")
    symbol, kwargs = fake.calls[0]
    assert symbol == "AAPL"
    assert kwargs["auto_adjust"] is True and kwargs["interval"] == "1d"
    assert kwargs["period"] == "max" and "start" not in kwargs  # not yfinance's 1 month
    cached, _ = cache.get("AAPL", "1d", True)
    pd.testing.assert_frame_equal(cached, loaded.frame, check_freq=False)


def test_yahoo_end_is_inclusive_and_adjustment_explicit(fake_yahoo, tmp_path):
    fake = fake_yahoo(_yahoo_frame(30, adjust=False))
    spec = DataSpec(source="yahoo:MSFT", start="2024-01-02", end="2024-01-31",
                    auto_adjust=False)
    loaded = load_prices(spec, cache=PriceCache(tmp_path))
    _, kwargs = fake.calls[0]
    assert kwargs["start"] == "2024-01-02"
    assert kwargs["end"] == "2024-02-01"  # yfinance's end is exclusive
    assert kwargs["auto_adjust"] is False
    assert loaded.frame.index[-1] == pd.Timestamp("2024-01-31")
    assert list(loaded.frame.columns) == list(C.PRICE_COLUMNS)  # Adj Close dropped


def test_yahoo_intraday_keeps_the_exchange_timezone(fake_yahoo, tmp_path):
    fake_yahoo(_yahoo_frame(40, intraday=True))
    loaded = fetch_yahoo("SPY", start=None, end=None, interval="5m", cache=PriceCache(tmp_path))
    assert str(loaded.frame.index.tz) == "America/New_York"
    assert loaded.frame.index[0] == pd.Timestamp("2024-03-01 09:30", tz="America/New_York")


def test_no_network_without_cache(fake_yahoo, tmp_path):
    fake_yahoo(_dns_error())
    with pytest.raises(NetworkError) as info:
        load_prices(DataSpec(source="yahoo:ZZZZ"), cache=PriceCache(tmp_path))
    message = str(info.value)
    assert message.startswith("could not reach the data provider for ZZZZ: "
                              "Could not resolve host")
    assert "Check your connection; cached data: none" in message


def test_no_network_falls_back_to_the_cache(fake_yahoo, tmp_path):
    cache = PriceCache(tmp_path)
    fake_yahoo(_yahoo_frame(30))
    first = load_prices(DataSpec(source="yahoo:AAPL"), cache=cache)
    fake_yahoo(_dns_error())
    events = []
    again = load_prices(DataSpec(source="yahoo:AAPL"), cache=cache, on_event=events.append)
    assert again.from_cache is True
    assert again.cached_at is not None and again.cached_at[:4].isdigit()
    pd.testing.assert_frame_equal(again.frame, first.frame, check_freq=False)
    assert any("Could not resolve host" in w and again.cached_at in w for w in again.warnings)
    assert events[0].from_cache and events[0].cached_at == again.cached_at


def test_cache_is_keyed_by_interval_and_adjustment(fake_yahoo, tmp_path):
    cache = PriceCache(tmp_path)
    fake_yahoo(_yahoo_frame(30))
    load_prices(DataSpec(source="yahoo:AAPL", auto_adjust=True), cache=cache)
    fake_yahoo(_dns_error())
    with pytest.raises(NetworkError, match="cached data: none"):
        load_prices(DataSpec(source="yahoo:AAPL", auto_adjust=False), cache=cache)
    with pytest.raises(NetworkError, match="cached data: none"):
        load_prices(DataSpec(source="yahoo:AAPL", interval="1wk"), cache=cache)


def test_offline_uses_the_cache_without_calling_yahoo(fake_yahoo, tmp_path):
    cache = PriceCache(tmp_path)
    fake_yahoo(_yahoo_frame(30))
    load_prices(DataSpec(source="yahoo:AAPL"), cache=cache)
    fake = fake_yahoo(AssertionError("offline must not download"))
    loaded = load_prices(DataSpec(source="yahoo:AAPL", start="2024-01-10"), cache=cache,
                         offline=True)
    assert fake.calls == []
    assert loaded.from_cache and loaded.frame.index[0] == pd.Timestamp("2024-01-10")
    with pytest.raises(DataError, match=r"^the cached copy of ticker AAPL \(from 2"):
        load_prices(DataSpec(source="yahoo:AAPL", start="2030-01-01"), cache=cache,
                    offline=True)
    with pytest.raises(NetworkError, match="offline and no cached data for MSFT"):
        load_prices(DataSpec(source="yahoo:MSFT"), cache=cache, offline=True)


def test_unknown_ticker_tz_missing(fake_yahoo, tmp_path):
    from yfinance.exceptions import YFTzMissingError

    fake_yahoo(YFTzMissingError("ZZZZNOTREAL123"))
    with pytest.raises(DataError, match=r"^unknown ticker ZZZZNOTREAL123: "):
        load_prices(DataSpec(source="yahoo:ZZZZNOTREAL123"), cache=PriceCache(tmp_path))


def test_unknown_ticker_prices_missing(fake_yahoo, tmp_path):
    from yfinance.exceptions import YFPricesMissingError

    fake_yahoo(YFPricesMissingError("ZZZZ", "(1d 1926-01-01 -> 2025-01-01)"))
    with pytest.raises(DataError, match=r"^unknown ticker ZZZZ: "):
        fetch_yahoo("ZZZZ", start=None, end=None, cache=PriceCache(tmp_path))


def test_yahoo_stated_reason_is_passed_on(fake_yahoo, tmp_path):
    from yfinance.exceptions import YFPricesMissingError

    reason = "5m data not available for startTime=1. The requested range must be within 60 days."
    fake_yahoo(YFPricesMissingError("SPY", "", yahoo_reason=reason))
    with pytest.raises(DataError, match=r"^no prices for SPY: 5m data not available"):
        fetch_yahoo("SPY", start="2001-01-01", end=None, interval="5m",
                    cache=PriceCache(tmp_path))


def test_silent_empty_frame_is_an_unknown_ticker(fake_yahoo, tmp_path):
    fake_yahoo(pd.DataFrame())
    with pytest.raises(DataError, match=r"^unknown ticker ZZZZ: Yahoo Finance returned no prices"):
        fetch_yahoo("ZZZZ", start=None, end=None, cache=PriceCache(tmp_path))


def test_rate_limit(fake_yahoo, tmp_path):
    from yfinance.exceptions import YFRateLimitError

    fake_yahoo(YFRateLimitError())
    with pytest.raises(NetworkError, match=r"rate-limiting requests for AAPL.*cached data: none"):
        load_prices(DataSpec(source="yahoo:AAPL"), cache=PriceCache(tmp_path))


def test_timeout_from_yfinance_is_a_network_error(fake_yahoo, tmp_path):
    from curl_cffi.requests.exceptions import Timeout

    fake_yahoo(Timeout("Failed to perform, curl: (28) Operation timed out after 10001 "
                       "milliseconds with 0 bytes received. See https://curl.se/x for more."))
    with pytest.raises(NetworkError, match=r"AAPL: Operation timed out after 10001 milliseconds"):
        fetch_yahoo("AAPL", start=None, end=None, cache=PriceCache(tmp_path))


def test_unexpected_yfinance_failure_is_reported_not_raised_raw(fake_yahoo, tmp_path):
    fake_yahoo(KeyError("chart"))
    with pytest.raises(NetworkError, match=r"could not be read \(KeyError"):
        fetch_yahoo("AAPL", start=None, end=None, cache=PriceCache(tmp_path))


def test_a_hanging_provider_is_cut_off(monkeypatch, tmp_path):
    release = threading.Event()

    def hang(symbol, **kwargs):
        release.wait(5)
        return _yahoo_frame(5)

    monkeypatch.setattr(yahoo, "_yf_history", hang)
    monkeypatch.setattr(yahoo, "DOWNLOAD_TIMEOUT_S", 0.2)
    try:
        with pytest.raises(NetworkError, match=r"no answer within 0\.2 s.*cached data: none"):
            fetch_yahoo("AAPL", start=None, end=None, cache=PriceCache(tmp_path))
    finally:
        release.set()


def test_bad_prices_from_yahoo_name_the_ticker_and_row(fake_yahoo, tmp_path):
    frame = _yahoo_frame(10)
    frame.iloc[3, frame.columns.get_loc("Close")] = -1.0
    fake_yahoo(frame)
    with pytest.raises(DataError, match=r"^ticker AAPL, row 2024-01-05: close is -1"):
        fetch_yahoo("AAPL", start=None, end=None, cache=PriceCache(tmp_path))


def test_warnings_from_yfinance_are_filtered_ours_are_not(monkeypatch, tmp_path):
    def noisy(symbol, **kwargs):
        warnings.warn_explicit("yfinance pandas noise", FutureWarning, "history.py", 1,
                               module="yfinance.scrapers.history")
        warnings.warn_explicit("our warning", UserWarning, "yahoo.py", 1,
                               module="sandbox.data.yahoo")
        return _yahoo_frame(5)

    monkeypatch.setattr(yahoo, "_yf_history", noisy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fetch_yahoo("AAPL", start=None, end=None, cache=PriceCache(tmp_path))
    messages = [str(w.message) for w in caught]
    assert "our warning" in messages
    assert "yfinance pandas noise" not in messages


def test_yfinance_configuration_is_quiet_and_raising(monkeypatch, tmp_path):
    import logging

    import yfinance as yf

    monkeypatch.setattr(yahoo, "_yf_configured", False)
    logger = logging.getLogger("yfinance")
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setattr(logger, "handlers", [])
    yahoo._configure_yfinance(yf)
    assert yf.config.debug.hide_exceptions is False
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    assert logger.level == logging.CRITICAL  # root logger is at WARNING in tests


def test_a_load_measures_its_bars_per_year():
    from sandbox.config import DataSpec
    from sandbox.data import load_prices

    # exchange-traded daily bars: 252 a year by convention
    assert load_prices(DataSpec(source="sample:GSPC")).periods_per_year == 252


# --- a damaged cached copy: never used, said in one line -----------------------------------------


def _damage(cache: PriceCache, symbol: str, interval: str = "1d", adjust: bool = True) -> None:
    """Store a real entry, then cut the file in half (what a full disk or a crash leaves)."""
    cache.put(symbol, interval, adjust, _yahoo_frame(30).rename(columns=str.lower)
              .rename_axis(C.INDEX_NAME).astype(float))
    path = cache.path(symbol, interval, adjust)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


_TRUNCATED = "the file cannot be read (Parquet magic bytes not found in footer)"


def test_no_network_and_a_damaged_copy_says_so_in_one_line(fake_yahoo, tmp_path, caplog):
    cache = PriceCache(tmp_path)
    _damage(cache, "AAPL")
    fake_yahoo(_dns_error())
    with caplog.at_level(logging.DEBUG), pytest.raises(NetworkError) as info:
        load_prices(DataSpec(source="yahoo:AAPL"), cache=cache)
    assert str(info.value) == (
        "could not reach the data provider for AAPL: Could not resolve host: "
        "query2.finance.yahoo.com. Check your connection; the cached copy of AAPL (1d bars) "
        f"is damaged and was ignored: {_TRUNCATED}")
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_offline_with_a_damaged_copy(fake_yahoo, tmp_path, caplog):
    cache = PriceCache(tmp_path)
    _damage(cache, "AAPL", "1h", adjust=False)
    fake = fake_yahoo(AssertionError("offline must not download"))
    spec = DataSpec(source="yahoo:AAPL", interval="1h", auto_adjust=False)
    with caplog.at_level(logging.DEBUG), pytest.raises(NetworkError) as info:
        load_prices(spec, cache=cache, offline=True)
    assert str(info.value) == (
        "offline, and the cached copy of AAPL (1h bars, unadjusted) is damaged and was "
        f"ignored: {_TRUNCATED}; connect to the internet to download it again")
    assert fake.calls == []
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_unknown_ticker_with_a_damaged_copy_names_both(fake_yahoo, tmp_path):
    from yfinance.exceptions import YFTzMissingError

    cache = PriceCache(tmp_path)
    _damage(cache, "ZZZZ")
    fake_yahoo(YFTzMissingError("ZZZZ"))
    with pytest.raises(DataError, match=r"^unknown ticker ZZZZ: .*; the cached copy of ZZZZ "
                                        r"\(1d bars\) is damaged and was ignored: the file"):
        load_prices(DataSpec(source="yahoo:ZZZZ"), cache=cache)


def test_a_download_replaces_a_damaged_copy_and_says_so(fake_yahoo, tmp_path, caplog):
    cache = PriceCache(tmp_path)
    _damage(cache, "AAPL")
    fake_yahoo(_yahoo_frame(30))
    with caplog.at_level(logging.DEBUG):
        loaded = load_prices(DataSpec(source="yahoo:AAPL"), cache=cache)
    assert loaded.from_cache is False
    assert loaded.warnings == ("the cached copy of AAPL (1d bars) was damaged and has been "
                               f"replaced by this download: {_TRUNCATED}",)
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []
    hit = cache.get("AAPL", "1d", True)
    pd.testing.assert_frame_equal(hit.frame, loaded.frame, check_exact=True, check_freq=False)
    # and from now on it is a good copy again: the next failed download falls back to it
    fake_yahoo(_dns_error())
    again = load_prices(DataSpec(source="yahoo:AAPL"), cache=cache)
    assert again.from_cache and len(again.warnings) == 1


def test_a_copy_from_before_the_checksum_is_refetched(fake_yahoo, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cache = PriceCache(tmp_path)
    old = _yahoo_frame(30).rename(columns=str.lower).rename_axis(C.INDEX_NAME).astype(float)
    table = pa.Table.from_pandas(old, preserve_index=True)
    table = table.replace_schema_metadata({**table.schema.metadata,
                                           b"sandbox.cached_at": b"2025-01-02T03:04:05+00:00",
                                           b"sandbox.key": b"AAPL|1d|True"})
    pq.write_table(table, cache.path("AAPL", "1d", True))
    fake_yahoo(_dns_error())
    with pytest.raises(NetworkError, match=r"; the cached copy of AAPL \(1d bars\) is damaged "
                                           r"and was ignored: it has no checksum \(written by "
                                           r"an older version of the app\)$"):
        load_prices(DataSpec(source="yahoo:AAPL"), cache=cache)
    fake_yahoo(_yahoo_frame(30))
    loaded = load_prices(DataSpec(source="yahoo:AAPL"), cache=cache)
    assert loaded.warnings == ("the cached copy of AAPL (1d bars) was damaged and has been "
                               "replaced by this download: it has no checksum (written by an "
                               "older version of the app)",)


# --- the command line, end to end in a fresh process (the download replaced, no network) ---------


_CLI = """
import socket, sys
import pandas as pd
from curl_cffi.requests.exceptions import DNSError
import sandbox.data.yahoo as yahoo

def no_network(self, address):
    raise RuntimeError(f"tried to reach the network: {address!r}")

socket.socket.connect = no_network

mode, download = sys.argv[1], sys.argv[2]

def history(symbol, **kwargs):
    if mode == "offline":
        raise DNSError("Failed to perform, curl: (6) Could not resolve host: "
                       "query2.finance.yahoo.com. See https://curl.se/x for more details.")
    return pd.read_pickle(download)

yahoo._yf_history = history
sys.argv = ["sandbox", *sys.argv[3:]]
import runpy
runpy.run_module("sandbox", run_name="__main__")
"""


def _sandbox(tmp_path: Path, mode: str, *args: str):
    import os
    import subprocess
    import sys

    _yahoo_frame(30).to_pickle(tmp_path / "download.pkl")
    env = {**os.environ, "SANDBOX_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-c", _CLI, mode, str(tmp_path / "download.pkl"),
                           *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)


def test_cli_fetch_offline_with_a_damaged_copy_prints_one_line(tmp_path):
    _damage(PriceCache(tmp_path / "cache" / "prices"), "^GSPC")
    proc = _sandbox(tmp_path, "offline", "fetch", "--ticker", "^GSPC")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "sandbox fetch: error: could not reach the data provider for ^GSPC: Could not resolve "
        "host: query2.finance.yahoo.com. Check your connection; the cached copy of ^GSPC "
        f"(1d bars) is damaged and was ignored: {_TRUNCATED}"]


def test_cli_train_offline_with_a_damaged_copy_prints_one_line(tmp_path):
    _damage(PriceCache(tmp_path / "cache" / "prices"), "^GSPC")
    proc = _sandbox(tmp_path, "offline", "train", "--ticker", "^GSPC", "--out", "run")
    assert proc.returncode == 2, proc.stderr
    # the progress line that starts every run, then the error: one line about the copy
    assert proc.stderr.splitlines() == [
        "loading yahoo:^GSPC",
        "sandbox train: error: could not reach the data provider for ^GSPC: Could not resolve "
        "host: query2.finance.yahoo.com. Check your connection; the cached copy of ^GSPC "
        f"(1d bars) is damaged and was ignored: {_TRUNCATED}"]
    assert not (tmp_path / "run").exists()


def test_cli_fetch_online_replaces_a_damaged_copy_with_one_warning(tmp_path):
    cache = PriceCache(tmp_path / "cache" / "prices")
    _damage(cache, "^GSPC")
    proc = _sandbox(tmp_path, "online", "fetch", "--ticker", "^GSPC")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "sandbox: warning: the cached copy of ^GSPC (1d bars) was damaged and has been "
        f"replaced by this download: {_TRUNCATED}"]
    assert proc.stdout.startswith("^GSPC: 30 bars, 2024-01-02")
    assert isinstance(cache.get("^GSPC", "1d", True), tuple)  # a good copy again
