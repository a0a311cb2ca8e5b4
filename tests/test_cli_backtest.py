"""`sandbox backtest`: the files it writes, and exit code 2 with nothing written on bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.backtest import backtest, read_signals
from sandbox.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "backtest"
PRICES = FIXTURES / "prices.csv"
SIGNALS = FIXTURES / "signals.csv"
BAD_PRICES = Path(__file__).parent / "fixtures" / "data" / "high_below.csv"


def _prices() -> pd.DataFrame:
    frame = pd.read_csv(PRICES, index_col="date", parse_dates=True).astype(np.float64)
    frame.index.name = C.INDEX_NAME
    return frame


@pytest.mark.parametrize(("fill", "cost"), [(C.FILL_NEXT_OPEN, "0"), (C.FILL_CLOSE, "12.5")])
def test_backtest_writes_csv_and_metrics(tmp_path, capsys, fill, cost):
    out = tmp_path / "out"
    code = main(["backtest", "--csv", str(PRICES), "--signals", str(SIGNALS), "--fill", fill,
                 "--cost-bps", cost, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    expected = backtest(_prices(), read_signals(SIGNALS), fill=fill, cost_bps=float(cost))

    text = (out / C.BACKTEST_CSV).read_text()
    assert text.splitlines()[0] == ",".join(C.BACKTEST_COLUMNS)
    written = pd.read_csv(out / C.BACKTEST_CSV, index_col=C.INDEX_NAME, parse_dates=True)
    assert list(written.index) == list(expected.frame.index)  # one row per row of the period
    for col in (C.POSITION, C.STRATEGY_RETURN, C.EQUITY):
        # full precision: the floats read back are the very same numbers
        np.testing.assert_array_equal(written[col].to_numpy(), expected.frame[col].to_numpy())

    metrics = json.loads((out / C.METRICS_JSON).read_text())
    assert set(metrics) == set(C.TRADING_METRICS) | {"periods_per_year"}
    assert metrics["periods_per_year"] == 252  # 8 daily bars: classified as exchange daily
    for key, value in expected.metrics.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            assert metrics[key] is None
        else:
            assert metrics[key] == value
    assert metrics[C.N_TRADES] == 4 and metrics[C.TURNOVER] == pytest.approx(3.75)


def test_periods_per_year_override_is_written_and_used(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["backtest", "--csv", str(PRICES), "--signals", str(SIGNALS),
                 "--periods-per-year", "365", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / C.METRICS_JSON).read_text())
    assert metrics["periods_per_year"] == 365
    daily = backtest(_prices(), read_signals(SIGNALS), periods_per_year=252).metrics
    assert metrics[C.SHARPE] == pytest.approx(daily[C.SHARPE] * math.sqrt(365 / 252))


def test_rows_without_return_are_written_as_empty_cells(tmp_path):
    signals = tmp_path / "s.csv"
    signals.write_text("date,position\n2024-01-08,1\n2024-01-11,1\n")  # rows 4..7
    out = tmp_path / "out"
    assert main(["backtest", "--csv", str(PRICES), "--signals", str(signals),
                 "--out", str(out)]) == 0
    lines = (out / C.BACKTEST_CSV).read_text().splitlines()
    assert len(lines) == 1 + 4
    assert lines[-1] == "2024-01-11,1.0,,"  # next_open: the last two rows have no return
    assert lines[-2] == "2024-01-10,0.0,,"  # a missing row inside the period is flat
    # row 2024-01-08: long from open 01-09 (107) to open 01-10 (100)
    assert float(lines[1].split(",")[2]) == 100 / 107 - 1


@pytest.mark.parametrize(("signals_text", "words"), [
    ("date,position\n2024-01-03,1\n2024-01-06,1\n", "1 date is not in the price data (2024-01-06)"),
    ("date,position\n2024-01-03,1.5\n", "outside [-1, 1]"),
    ("date,position\n2024-01-03,\n", "the position is missing"),
    ("date,position\n", "no rows"),
    ("", "is empty"),
])
def test_bad_signals_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, signals_text,
                                                            words):
    signals = tmp_path / "signals.csv"
    signals.write_text(signals_text)
    out = tmp_path / "out"
    code = main(["backtest", "--csv", str(PRICES), "--signals", str(signals), "--out", str(out)])
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "Traceback" not in err[0]
    assert words in err[0] and "signals.csv" in err[0]
    assert not out.exists()


def test_prices_failing_validation_exit_2_and_write_nothing(tmp_path, capsys):
    prices = tmp_path / "prices.csv"
    shutil.copy(BAD_PRICES, prices)
    out = tmp_path / "out"
    code = main(["backtest", "--csv", str(prices), "--signals", str(SIGNALS), "--out", str(out)])
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and str(prices) in err[0]
    assert not out.exists()


def test_an_ambiguous_price_file_needs_date_format_and_takes_it(tmp_path, capsys):
    prices = Path(__file__).parent / "fixtures" / "data" / "european_monthly.csv"
    signals = tmp_path / "signals.csv"
    signals.write_text("date,position\n2012-03-01,1\n2012-06-01,0\n")
    args = ["backtest", "--csv", str(prices), "--signals", str(signals)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "--date-format dayfirst|monthfirst" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--date-format", "dayfirst", "--out", str(tmp_path / "b")]) == 0
    frame = pd.read_csv(tmp_path / "b" / C.BACKTEST_CSV, parse_dates=["date"])
    # read day first, the file is monthly: the period runs March .. June, one row a month
    assert list(frame["date"].dt.strftime("%Y-%m-%d")) == [
        "2012-03-01", "2012-04-01", "2012-05-01", "2012-06-01"]
