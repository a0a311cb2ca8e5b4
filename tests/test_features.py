from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sandbox import constants as C
from sandbox import features
from sandbox.config import SplitSpec
from sandbox.errors import DataError

#: splits of a short synthetic frame: these tests are about features, not sample sizes
TINY = SplitSpec(min_returns=1)


def make_prices(n: int = 300, *, seed: int = 0, phi: float = 0.0, zero_volume: bool = False
                ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    r = np.zeros(n)
    eps = rng.normal(0, 0.01, n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + eps[t]
    close = 100 * np.exp(np.cumsum(r))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.002, n))  # overnight gaps
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    volume = np.zeros(n) if zero_volume else rng.integers(1_000, 5_000, n).astype(float)
    index = pd.bdate_range("2000-01-03", periods=n, name=C.INDEX_NAME)
    return pd.DataFrame({C.OPEN: open_, C.HIGH: high, C.LOW: low, C.CLOSE: close,
                         C.VOLUME: volume}, index=index)


def test_return_features_follow_their_formulas():
    p = make_prices(10)
    f = features.bar_features(p)
    assert list(f.columns) == list(features.RETURN_FEATURES)
    assert f.iloc[0].isna().all()
    t = 5
    c, o, h, lo, v = (p[k].to_numpy() for k in (C.CLOSE, C.OPEN, C.HIGH, C.LOW, C.VOLUME))
    expected = [np.log(c[t] / c[t - 1]), np.log(o[t] / c[t - 1]), np.log(h[t] / c[t - 1]),
                np.log(lo[t] / c[t - 1]), np.log1p(v[t]) - np.log1p(v[t - 1])]
    np.testing.assert_allclose(f.iloc[t].to_numpy(), expected, rtol=0, atol=1e-15)


def test_zero_volume_gives_finite_features():
    fs = features.prepare(make_prices(200, zero_volume=True), window=10)
    assert np.isfinite(fs.x).all()


def test_target_is_next_log_return_and_last_bar_has_none():
    p = make_prices(50)
    fs = features.prepare(p, window=10, split=TINY)
    c = p[C.CLOSE].to_numpy()
    assert fs.rows[0] == p.index[9]  # first row with a full 10-bar window
    assert fs.rows[-1] == p.index[-1]
    np.testing.assert_allclose(fs.actual_return[:-1], np.log(c[10:] / c[9:-1]))
    assert np.isnan(fs.actual_return[-1])
    np.testing.assert_allclose(fs.momentum, np.log(c[9:] / c[8:-1]))


def test_windows_are_a_view_with_the_right_rows():
    p = make_prices(60)
    fs = features.prepare(p, window=8, split=TINY)
    x = torch.from_numpy(fs.x)
    w = features.windows(x, fs.seq_len)
    assert w.shape == (len(fs.rows), 7, len(features.RETURN_FEATURES))
    assert w.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()  # no copy
    i = 17
    assert torch.equal(w[i], x[i:i + 7])
    # window of row t uses feature rows of bars t-6 .. t, i.e. bars t-7 .. t (8 bars)
    raw = features.bar_features(p).to_numpy()[1:]
    scaled = fs.scaler.transform(raw[i:i + 7]).astype(np.float32)
    np.testing.assert_array_equal(w[i].numpy(), scaled)


def test_fraction_splits_are_chronological_70_15_15():
    fs = features.prepare(make_prices(1009), window=10)
    n = len(fs.rows)
    counts = {s: int(np.sum(fs.split == s)) for s in C.SPLITS}
    assert counts == {C.TRAIN: 700, C.VAL: 150, C.TEST: 150} and n == 1000
    order = [C.SPLITS.index(s) for s in fs.split]
    assert order == sorted(order)


def test_date_splits_and_boundary_rows_are_not_fitted():
    p = make_prices(300)
    spec = SplitSpec(val_start=str(p.index[200].date()), test_start=str(p.index[250].date()))
    fs = features.prepare(p, window=10, split=spec)
    assert fs.rows[fs.split == C.VAL][0] == p.index[200]
    assert fs.rows[fs.split == C.TEST][0] == p.index[250]
    last_train = int(np.flatnonzero(fs.split == C.TRAIN)[-1])
    last_val = int(np.flatnonzero(fs.split == C.VAL)[-1])
    assert last_train not in fs.fit_rows[C.TRAIN]  # its target is the first val bar
    assert last_val not in fs.fit_rows[C.VAL]
    assert fs.fit_rows[C.TRAIN][-1] == last_train - 1
    assert len(fs.fit_rows[C.VAL]) == 49


def test_scaler_uses_training_rows_only():
    p = make_prices(300)
    fs = features.prepare(p, window=10)
    last_train_date = fs.rows[fs.split == C.TRAIN][-1]
    raw = features.bar_features(p.loc[:last_train_date]).to_numpy()[1:]
    np.testing.assert_allclose(fs.scaler.mean, raw.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(fs.scaler.std, raw.std(axis=0), rtol=1e-12)
    train_targets = fs.actual_return[fs.fit_rows[C.TRAIN]]
    assert fs.state["drift"] == pytest.approx(train_targets.mean(), rel=1e-12)


def test_price_target_uses_levels_and_full_window():
    p = make_prices(100)
    fs = features.prepare(p, window=10, target=C.TARGET_PRICE, split=TINY)
    assert fs.seq_len == 10 and fs.rows[0] == p.index[9]
    assert fs.state["target"] == C.TARGET_PRICE
    y = fs.target_scaler.inverse(fs.y[:-1].astype(np.float64)).ravel()
    np.testing.assert_allclose(y, p[C.CLOSE].to_numpy()[10:], rtol=1e-5)


def test_too_little_history_is_a_data_error():
    with pytest.raises(DataError, match="window"):
        features.prepare(make_prices(40), window=30)


def test_transform_reproduces_the_fitted_rows():
    p = make_prices(120)
    fs = features.prepare(p, window=10, split=TINY)
    rows, x = features.transform(p, fs.state)
    assert rows.equals(fs.rows)
    np.testing.assert_array_equal(x, fs.x)


def test_traded_return_rows_are_fitted_only_when_both_fill_opens_are_in_their_split():
    p = make_prices(120)
    spec = SplitSpec(val_start=str(p.index[70].date()), test_start=str(p.index[95].date()))
    fs = features.prepare(p, window=5, target=C.TARGET_TRADED, split=spec,
                          fill=C.FILL_NEXT_OPEN)
    o = p[C.OPEN].to_numpy()
    # row i is bar i + 4; its target ln(open[bar+2] / open[bar+1]) by hand
    i = 30
    assert fs.actual_return[i] == pytest.approx(np.log(o[i + 6] / o[i + 5]), abs=1e-15)
    last_train = int(np.flatnonzero(fs.split == C.TRAIN)[-1])
    # the last two training rows use the validation split's first opens: never fitted
    assert fs.fit_rows[C.TRAIN][-1] == last_train - 2
    close_fs = features.prepare(p, window=5, target=C.TARGET_TRADED, split=spec,
                                fill=C.FILL_CLOSE)
    assert close_fs.fit_rows[C.TRAIN][-1] == last_train - 1
    np.testing.assert_array_equal(close_fs.actual_return, features.next_log_return(p)[4:])
