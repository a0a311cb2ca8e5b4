"""Splits too small to measure anything are refused, in words each front end can act on.

Usable returns by hand: a split of ``n`` rows has ``n - 2`` with the next-open fill (its
last two rows need the next split's opens, or bars after the data) and ``n - 1`` with the
close fill.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox import features
from sandbox.cli import main
from sandbox.config import SplitSpec
from sandbox.errors import DataError, SplitTooSmall


def prices(n: int, *, freq: str = "B") -> pd.DataFrame:
    """``n`` bars of a seeded random walk, every row valid."""
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    index = pd.date_range("2000-01-03", periods=n, freq=freq, name=C.INDEX_NAME)
    return pd.DataFrame({C.OPEN: open_, C.HIGH: np.maximum(open_, close) * 1.001,
                         C.LOW: np.minimum(open_, close) * 0.999, C.CLOSE: close,
                         C.VOLUME: np.full(n, 1000.0)}, index=index)


def dates(p: pd.DataFrame, val_bar: int, test_bar: int) -> SplitSpec:
    return SplitSpec(val_start=str(p.index[val_bar].date()),
                     test_start=str(p.index[test_bar].date()))


def test_usable_returns_leave_out_each_split_s_last_rows():
    labels = np.array([C.TRAIN] * 3 + [C.VAL] * 4 + [C.TEST] * 3, dtype=object)
    assert features.usable_returns(labels, fill=C.FILL_NEXT_OPEN) == {
        C.TRAIN: 1, C.VAL: 2, C.TEST: 1}
    assert features.usable_returns(labels, fill=C.FILL_CLOSE) == {
        C.TRAIN: 2, C.VAL: 3, C.TEST: 2}
    # the next-open traded return needs t+2 whatever the trading fill
    assert features.usable_returns(labels, fill=C.FILL_CLOSE, target=C.TARGET_TRADED) == {
        C.TRAIN: 2, C.VAL: 3, C.TEST: 2}


def test_a_two_row_test_split_is_refused_with_the_flags_that_fix_it():
    p = prices(100)
    # window 10: row t is bar t; validation bars 40..97 (58 rows), test bars 98, 99
    with pytest.raises(SplitTooSmall) as caught:
        features.prepare(p, window=10, split=dates(p, 40, 98), name="GSPC")
    assert str(caught.value) == (
        "GSPC: with a 10-bar window on 100 bars the test split has 0 usable returns (2 rows; "
        "need 20): move --val-start/--test-start, use a shorter --window or more data "
        "(or lower --min-returns)")
    assert isinstance(caught.value, DataError)


def test_the_issue_s_145_bar_window_on_156_monthly_bars_is_refused():
    p = prices(156, freq="MS")
    # 12 rows with a window: 70/15/15 puts rows 8, 9 in validation (round(8.4), round(10.2))
    with pytest.raises(SplitTooSmall) as caught:
        features.prepare(p, window=145)
    e = caught.value
    assert (e.split, e.count, e.minimum, e.rows, e.window, e.n_bars) == (C.VAL, 0, 20, 2,
                                                                         145, 156)


@pytest.mark.parametrize(("fill", "test_rows", "refused"), [
    (C.FILL_NEXT_OPEN, 22, False),  # 20 usable
    (C.FILL_NEXT_OPEN, 21, True),  # 19
    (C.FILL_CLOSE, 21, False),  # 20
    (C.FILL_CLOSE, 20, True),  # 19
])
def test_the_test_split_needs_min_returns_usable_returns(fill, test_rows, refused):
    p = prices(200)
    spec = dates(p, 100, 200 - test_rows)
    if not refused:
        fs = features.prepare(p, window=10, split=spec, fill=fill)
        assert int(np.sum(fs.split == C.TEST)) == test_rows
        return
    with pytest.raises(SplitTooSmall) as caught:
        features.prepare(p, window=10, split=spec, fill=fill)
    assert (caught.value.split, caught.value.count, caught.value.rows) == (C.TEST, 19,
                                                                           test_rows)


@pytest.mark.parametrize(("val_rows", "refused"), [(22, False), (21, True)])
def test_the_validation_split_needs_min_returns_after_its_purged_rows(val_rows, refused):
    p = prices(200)
    spec = dates(p, 150 - val_rows, 150)
    if not refused:
        features.prepare(p, window=10, split=spec)
        return
    with pytest.raises(SplitTooSmall, match="the validation split has 19 usable returns "
                                            r"\(21 rows; need 20\)"):
        features.prepare(p, window=10, split=spec)


def test_min_returns_sets_the_bar():
    p = prices(100)
    with pytest.raises(SplitTooSmall, match="test split has 0 usable returns"):
        features.prepare(p, window=10, split=SplitSpec(
            val_start=str(p.index[40].date()), test_start=str(p.index[98].date()),
            min_returns=1))
    fs = features.prepare(p, window=10, split=SplitSpec(
        val_start=str(p.index[40].date()), test_start=str(p.index[97].date()),
        min_returns=1))  # 3 test rows: 1 usable return
    assert int(np.sum(fs.split == C.TEST)) == 3


def test_the_error_pickles_with_its_fields():
    # the app trains in a child process and gets the exception back pickled
    e = SplitTooSmall("GSPC", C.TEST, 2, 20, 145, 156, 4)
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is SplitTooSmall
    assert (back.name, back.split, back.count, back.minimum, back.window, back.n_bars,
            back.rows) == ("GSPC", C.TEST, 2, 20, 145, 156, 4)
    assert str(back) == str(e) == (
        "GSPC: with a 145-bar window on 156 bars the test split has 2 usable returns (4 rows; "
        "need 20): move --val-start/--test-start, use a shorter --window or more data "
        "(or lower --min-returns)")
    assert back.exit_code == 2


def test_train_exits_2_with_the_message(tmp_path, capsys):
    p = prices(156, freq="MS")
    csv = tmp_path / "monthly.csv"
    p.to_csv(csv)
    code = main(["train", "--csv", str(csv), "--window", "145", "--epochs", "1",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        "sandbox train: error: monthly: with a 145-bar window on 156 bars the "
        "validation split has 0 usable returns (2 rows; need 20): move --val-start/"
        "--test-start, use a shorter --window or more data (or lower --min-returns)")
    assert list((tmp_path / "out").glob("*")) == []  # no partial file


def test_split_sizes_can_be_checked_before_any_feature_is_built():
    # what a form can ask about the rows a model would predict, without the prices
    labels = np.array([C.TRAIN] * 30 + [C.VAL] * 5 + [C.TEST] * 4, dtype=object)
    # next-open fill: validation 5 - 2 = 3 usable returns, test 4 - 2 = 2
    features.check_split_sizes(labels, SplitSpec(min_returns=2), window=10, n_bars=48)
    with pytest.raises(SplitTooSmall) as caught:
        features.check_split_sizes(labels, SplitSpec(min_returns=3), window=10, n_bars=48)
    assert (caught.value.split, caught.value.count, caught.value.rows) == (C.TEST, 2, 4)
    # close fill: 4 and 3
    features.check_split_sizes(labels, SplitSpec(min_returns=3), window=10, n_bars=48,
                               fill=C.FILL_CLOSE)


def test_min_returns_is_a_flag_and_one_return_is_said_so(tmp_path, capsys):
    """Test bars 87..99: 13 rows, 11 usable returns with the next-open fill (n - 2)."""
    p = prices(100)
    csv = tmp_path / "p.csv"
    p.to_csv(csv)
    args = ["train", "--csv", str(csv), "--window", "10", "--epochs", "1", "--hidden", "4",
            "--layers", "1", "--val-start", str(p.index[40].date()),
            "--test-start", str(p.index[87].date())]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "test split has 11 usable returns (13 rows; need 20)" in capsys.readouterr().err
    assert main([*args, "--min-returns", "11", "--out", str(tmp_path / "b")]) == 0
    assert "caution: only 11 test returns: figures this small swing widely by chance" in (
        capsys.readouterr().out)
    assert main([*args, "--min-returns", "0", "--out", str(tmp_path / "c")]) == 2
    with pytest.raises(SplitTooSmall, match=r"test split has 1 usable return \(3 rows; need 20\)"):
        features.prepare(p, window=10, split=dates(p, 40, 97), name="x")
