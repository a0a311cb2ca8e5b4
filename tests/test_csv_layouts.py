"""CSV layouts users bring: day/month order, investing.com, European Excel, MetaTrader.

Each fixture under tests/fixtures/data reproduces a file as the program that wrote it does.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.cli import build_parser, data_spec_from_args, main
from sandbox.config import DataSpec
from sandbox.data import load_prices, read_price_csv
from sandbox.errors import ConfigError, DataError

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def _read(file: str, **kwargs) -> tuple[pd.DataFrame, tuple[str, ...]]:
    return read_price_csv(FIXTURES / file, **kwargs)


def _rewrite_dates(tmp_path: Path, file: str, fmt: str, *, reverse: bool = False) -> Path:
    """A copy of ``file`` with its dates written in ``fmt`` (rows reversed on request)."""
    frame, _ = _read(file)
    out = frame.copy()
    out.index = out.index.strftime(fmt)
    out.index.name = "Date"
    if reverse:
        out = out.iloc[::-1]
    path = tmp_path / f"rewritten_{Path(file).stem}.csv"
    out.to_csv(path)
    return path


# --- day/month order ---------------------------------------------------------------------------


def test_european_monthly_year_is_refused_naming_both_readings():
    with pytest.raises(DataError) as info:
        _read("european_monthly.csv")
    assert str(info.value) == (
        f"{FIXTURES / 'european_monthly.csv'}: the dates 01/01/2012 .. 01/12/2012 read as "
        "day/month (monthly bars, 2012-01-01 .. 2012-12-01) or as month/day (daily bars, "
        "2012-01-01 .. 2012-01-12): say which with --date-format dayfirst|monthfirst "
        "(in the app: Dates in the Data box)"
    )


def test_european_monthly_loads_when_the_order_is_given():
    frame, notes = _read("european_monthly.csv", date_format=C.DATE_DAYFIRST)
    assert list(frame.index) == list(pd.date_range("2012-01-01", periods=12, freq="MS"))
    assert frame[C.CLOSE].iloc[0] == pytest.approx(1300.05)  # "1300,05": decimal comma
    assert notes == ()
    loaded = load_prices(DataSpec(source=f"csv:{FIXTURES / 'european_monthly.csv'}",
                                  date_format=C.DATE_DAYFIRST))
    assert loaded.frame.index[-1] == pd.Timestamp("2012-12-01")
    forced, _ = _read("european_monthly.csv", date_format=C.DATE_MONTHFIRST)
    assert forced.index[-1] == pd.Timestamp("2012-01-12")  # the user's call, taken as given


def test_european_monthly_over_years_is_read_day_first_from_the_spacing():
    frame, notes = _read("european_monthly_3y.csv")
    assert list(frame.index) == list(pd.date_range("2010-01-01", periods=36, freq="MS"))
    assert notes == (
        "the dates 01/01/2010 .. 01/12/2012 have no day above 12: read as day/month "
        "(monthly bars, 2010-01-01 .. 2012-12-01), the order with evenly spaced bars; "
        "use --date-format monthfirst if that is wrong",
    )


def test_daily_file_with_days_up_to_12_is_read_in_the_order_that_sorts_it():
    frame, notes = _read("daily_days_1_to_12_dayfirst.csv")
    assert len(frame) == 102
    assert frame.index[0] == pd.Timestamp("2012-01-02")
    assert frame.index[-1] == pd.Timestamp("2012-12-12")
    assert (frame.index.day <= 12).all()
    assert not any("out-of-order" in n for n in notes)  # before: "sorted 11 out-of-order rows"
    assert notes == (
        "the dates 02/01/2012 .. 12/12/2012 have no day above 12: read as day/month "
        "(daily bars, 2012-01-02 .. 2012-12-12), the only order that keeps them sorted; "
        "use --date-format monthfirst if that is wrong",
    )


@pytest.mark.parametrize("reverse", [False, True])
def test_the_same_file_written_month_first_reads_the_same(tmp_path, reverse):
    european, _ = _read("daily_days_1_to_12_dayfirst.csv")
    path = _rewrite_dates(tmp_path, "daily_days_1_to_12_dayfirst.csv", "%m/%d/%Y",
                          reverse=reverse)
    frame, notes = read_price_csv(path)
    pd.testing.assert_frame_equal(frame, european, check_freq=False)
    assert "read as month/day" in notes[0]
    assert ("newest first" in notes[-1]) == reverse


def test_forced_order_that_does_not_fit_names_the_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Date,Open,High,Low,Close\n12/01/2020,1,2,0.5,1.5\n13/01/2020,1,2,0.5,1.5\n")
    with pytest.raises(DataError, match=r"p\.csv, line 3: cannot read the date '13/01/2020' "
                                         r"as month/day/year \(--date-format\)$"):
        read_price_csv(path, date_format=C.DATE_MONTHFIRST)


def test_mixed_orders_are_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Date,Open,High,Low,Close\n"
                    "13/01/2020,1,2,0.5,1.5\n01/14/2020,1,2,0.5,1.5\n")
    with pytest.raises(DataError, match=r"p\.csv: the dates mix day/month and month/day: "
                                         r"line 2 has '13/01/2020', line 3 has '01/14/2020'"):
        read_price_csv(path)
    # one day above 12 settles the order for the whole column, without a note
    path.write_text("Date,Open,High,Low,Close\n"
                    "10/01/2020,1,2,0.5,1.5\n11/01/2020,1,2,0.5,1.5\n13/01/2020,1,2,0.5,1.5\n")
    frame, notes = read_price_csv(path)
    assert list(frame.index.strftime("%Y-%m-%d")) == ["2020-01-10", "2020-01-11", "2020-01-13"]
    assert notes == ("no volume column: volume set to 0",)


def test_strftime_date_format(tmp_path):
    frame, _ = _read("european_excel.csv", date_format="%d.%m.%Y")
    assert frame.index[0] == pd.Timestamp("2020-01-02")
    assert frame[C.OPEN].iloc[0] == pytest.approx(13250.0)  # "13.250,00"
    with pytest.raises(DataError, match=r"european_excel\.csv, line 2: the date '02\.01\.2020' "
                                         r"does not match the date format '%Y-%m-%d' "
                                         r"\(10 such rows\)"):
        _read("european_excel.csv", date_format="%Y-%m-%d")


def test_iso_dates_ignore_the_order_setting():
    frame, notes = _read("yahoo_export.csv", date_format=C.DATE_DAYFIRST)
    assert frame.index[0] == pd.Timestamp("2020-01-02") and notes == ()


def _train_args(*words: str):
    return build_parser().parse_args(["train", "--out", "runs/x", *words])


def test_cli_date_format_flag_reaches_the_data_spec():
    args = _train_args("--csv", "p.csv", "--date-format", "dayfirst")
    assert data_spec_from_args(args).date_format == C.DATE_DAYFIRST
    args = _train_args("--csv", "p.csv", "--date-format", "%d.%m.%Y")
    assert data_spec_from_args(args).date_format == "%d.%m.%Y"
    assert data_spec_from_args(_train_args()).date_format is None
    with pytest.raises(ConfigError, match="date format 'european'"):
        data_spec_from_args(_train_args("--csv", "p.csv", "--date-format", "european"))


def test_cli_reports_the_ambiguous_file(capsys, tmp_path):
    code = main(["train", "--csv", str(FIXTURES / "european_monthly.csv"), "--epochs", "1",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code != 0
    assert "read as day/month (monthly bars, 2012-01-01 .. 2012-12-01)" in err
    assert "--date-format dayfirst|monthfirst" in err


# --- warnings the user sees --------------------------------------------------------------------


def test_bar_spacing_that_changes_mid_file_is_a_warning():
    frame, notes = _read("daily_then_monthly.csv")
    assert len(frame) == 42
    assert notes == (
        "the bar spacing changes: daily bars 2019-01-02 .. 2019-02-12, then monthly bars "
        "2019-03-01 .. 2020-02-01; every row counts as one bar, so returns and yearly figures "
        "mix the two (keep one stretch with --start/--end)",
    )


def test_many_rows_re_sorted_is_a_warning_that_explains_itself():
    frame, notes = _read("pasted_out_of_order.csv")
    assert frame.index.is_monotonic_increasing and len(frame) == 12
    assert notes == (
        "sorted 6 out-of-order rows (first: line 8, 2020-01-02 after 2020-02-10); that many "
        "usually means the dates are misread or several files were pasted together: check "
        "the dates (--date-format sets the day/month order)",
    )


def test_warnings_reach_load_prices():
    loaded = load_prices(DataSpec(source=f"csv:{FIXTURES / 'daily_then_monthly.csv'}"))
    assert any(w.startswith("the bar spacing changes") for w in loaded.warnings)


@pytest.mark.parametrize("file", ["investing_export.csv", "metatrader5_h1.csv"])
def test_pandas_warnings_never_escape(file):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _read(file)


def test_pandas_warnings_never_escape_from_refusals_and_two_digit_years(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Date,Open,High,Low,Close\n"
                    "02/01/12,1,2,0.5,1.5\n03/01/12,1,2,0.5,1.5\n13/01/12,1,2,0.5,1.5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame, _ = read_price_csv(path)
        with pytest.raises(DataError, match="say which"):
            _read("european_monthly.csv")
    assert frame.index[-1] == pd.Timestamp("2012-01-13")


# --- investing.com ------------------------------------------------------------------------------


def test_investing_com_export():
    frame, notes = _read("investing_export.csv")
    assert len(frame) == 17
    assert frame.index[0] == pd.Timestamp("2020-01-02")
    assert frame.index[-1] == pd.Timestamp("2020-01-24")
    last = frame.iloc[-1]  # "01/24/2020","3,365.77","3,317.15","3,388.80","3,297.97","3.08M"
    assert last[C.CLOSE] == pytest.approx(3365.77)  # Price is the close
    assert last[C.OPEN] == pytest.approx(3317.15)
    assert last[C.VOLUME] == 3_080_000
    assert frame.loc["2020-01-23", C.VOLUME] == 221_630  # "221.63K"
    assert list(frame.columns) == list(C.PRICE_COLUMNS)  # Change % ignored
    assert notes == ("dates were newest first: reversed 17 rows",)


def test_price_is_the_close_only_when_there_is_no_close(tmp_path):
    path = tmp_path / "both.csv"
    path.write_text("Date,Price,Open,High,Low,Close\n2020-01-02,9,1,2,0.5,1.5\n")
    assert read_price_csv(path)[0][C.CLOSE].iloc[0] == 1.5
    path.write_text("Date,Price,Open,High,Low\n2020-01-02,1.5,1,2,0.5\n")
    assert read_price_csv(path)[0][C.CLOSE].iloc[0] == 1.5


def test_investing_com_index_without_volume():
    frame, notes = _read("investing_no_volume.csv")
    assert (frame[C.VOLUME] == 0).all() and len(frame) == 17
    assert notes[0] == "no volume in the file ('-'): volume set to 0"


def test_some_rows_without_volume_and_billions(tmp_path):
    path = tmp_path / "inv.csv"
    path.write_text('"Date","Price","Open","High","Low","Vol.","Change %"\n'
                    '"01/14/2020","3,234.85","3,226.36","3,246.15","3,222.34","2.1B","-0.71%"\n'
                    '"01/13/2020","3,257.85","3,244.67","3,258.14","3,235.53","-","0.84%"\n')
    frame, notes = read_price_csv(path)
    assert list(frame[C.VOLUME]) == [0.0, 2.1e9]
    assert "volume '-' (none reported) on 1 row (first: line 3): set to 0" in notes
    path.write_text('Date,Price,Open,High,Low,Vol.\n01/13/2020,2,1,2.5,0.5,1.2X\n')
    with pytest.raises(DataError, match=r"inv\.csv, line 2: volume '1\.2X' is not a number"):
        read_price_csv(path)




def test_missing_column_lists_every_column_found():
    with pytest.raises(DataError) as info:
        _read("investing_no_price.csv")
    assert str(info.value) == (
        f"{FIXTURES / 'investing_no_price.csv'}: missing column close (found: Date, Open, "
        "High, Low, Vol., Change %); expected Date, Open, High, Low, Close (or Price) and "
        "optionally Volume"
    )


# --- MetaTrader ---------------------------------------------------------------------------------


def test_metatrader5_export_with_separate_date_and_time():
    frame, notes = _read("metatrader5_h1.csv")
    assert len(frame) == 24
    assert frame.index[1] == pd.Timestamp("2012-01-02 01:00")
    assert frame[C.OPEN].iloc[0] == pytest.approx(1.3)
    assert (frame[C.VOLUME] == 0).all()  # <VOL>: real volume, 0 for FX
    assert np.isfinite(frame.to_numpy()).all() and notes == ()


def test_metatrader4_file_without_header_is_explained():
    with pytest.raises(DataError, match=r"metatrader4_no_header\.csv: the first line holds "
                                         r"prices, not column names \(it starts with "
                                         r"'2012\.01\.02'\); add a header line such as "
                                         r"Date,Time,Open,High,Low,Close,Volume"):
        _read("metatrader4_no_header.csv")


def test_stooq_bulk_file_with_numeric_date_and_time(tmp_path):
    frame, notes = _read("stooq_bulk.csv")  # <DATE> 20120103, <TIME> 000000 (read as 0)
    assert list(frame.index.strftime("%Y-%m-%d")) == ["2012-01-03", "2012-01-04", "2012-01-05"]
    assert frame[C.CLOSE].iloc[0] == pytest.approx(14.69) and notes == ()
    path = tmp_path / "intraday.csv"
    path.write_text("<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>\n"
                    "AAPL.US,5,20120103,93000,1,2,0.5,1.5,10\n"
                    "AAPL.US,5,20120103,93500,1,2,0.5,1.5,10\n")
    assert read_price_csv(path)[0].index[0] == pd.Timestamp("2012-01-03 09:30")
