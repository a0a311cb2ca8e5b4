"""The streaming predictor: the batch path's predictions, bar by bar, at a cost that does not
grow with history."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from test_features import make_prices

from sandbox import constants as C
from sandbox import export, features, models
from sandbox.config import ModelConfig, RunConfig
from sandbox.errors import DataError
from sandbox.stream import StreamPredictor

WINDOW = 10
KINDS = [k for k in C.MODEL_KINDS if k in models.REGISTRY]


def _bundle(kind: str, target: str = C.TARGET_RETURN, prices=None) -> export.Bundle:
    """An untrained model of ``kind`` (weights seeded) with the feature state of ``prices``:
    exactness does not depend on training."""
    prices = make_prices(300, seed=1) if prices is None else prices
    config = ModelConfig(kind=kind, window=WINDOW, hidden=16, layers=2, heads=2, target=target)
    fs = features.prepare(prices, window=WINDOW, target=target)
    torch.manual_seed(0)
    model = models.build_model(config, fs.x.shape[1]).eval()
    return export.Bundle(config=RunConfig(model=config), feature_state=fs.state, model=model)


def _push_all(predictor: StreamPredictor, prices) -> np.ndarray:
    rows = prices[list(C.PRICE_COLUMNS)].to_numpy(np.float64)
    return np.array([predictor.push(*row) for row in rows])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", [C.TARGET_RETURN, C.TARGET_PRICE, C.TARGET_TRADED])
def test_stream_equals_the_batch_prediction(kind, target):
    prices = make_prices(300, seed=1)
    bundle = _bundle(kind, target, prices)
    batch = bundle.predict(prices)[C.PREDICTED_RETURN].to_numpy()  # the batch path
    predictor = StreamPredictor.from_bundle(bundle)
    streamed = _push_all(predictor, prices)
    assert np.isnan(streamed[:WINDOW - 1]).all()  # no full window yet
    got = streamed[WINDOW - 1:]
    assert np.isfinite(batch).all()
    np.testing.assert_allclose(got, batch, rtol=0, atol=1e-9)
    if predictor.bit_exact:
        assert np.array_equal(got, batch)


def test_calibrated_rows_are_bit_exact_at_the_default_sizes():
    # on this machine's BLAS the default LSTM is reproduced bit for bit (measured)
    prices = make_prices(200, seed=2)
    fs = features.prepare(prices, window=30)
    torch.manual_seed(0)
    model = models.build_model(ModelConfig(), fs.x.shape[1])
    bundle = export.Bundle(config=RunConfig(), feature_state=fs.state, model=model)
    predictor = StreamPredictor.from_bundle(bundle)
    got = _push_all(predictor, prices)[29:]
    expected = bundle.predict(prices)[C.PREDICTED_RETURN].to_numpy()
    assert predictor.bit_exact
    assert np.array_equal(got, expected)


def test_window_rows_are_the_batch_feature_rows():
    prices = make_prices(300, seed=4)
    bundle = _bundle(C.LSTM, prices=prices)
    predictor = StreamPredictor(bundle.model, bundle.feature_state, exact=False)
    _push_all(predictor, prices.iloc[:80])
    _, x = features.transform(prices.iloc[:80], bundle.feature_state)
    assert np.array_equal(predictor.window_rows(), x[-predictor.seq_len:])


def test_warm_uses_only_the_last_window_and_matches_a_full_push():
    prices = make_prices(400, seed=5)
    bundle = _bundle(C.GRU, prices=prices)
    full = StreamPredictor.from_bundle(bundle)
    expected = _push_all(full, prices)[-1]
    warmed = StreamPredictor.from_bundle(bundle)
    warmed.warm(prices.iloc[:-1])
    assert warmed.n_pushed == WINDOW  # a window's worth of bars, not 399
    last = prices.iloc[-1]
    assert warmed.push(*(last[c] for c in C.PRICE_COLUMNS)) == expected


def test_the_buffer_stays_one_window_long():
    prices = make_prices(10_000, seed=6)
    bundle = _bundle(C.RNN, prices=prices.iloc[:300])
    predictor = StreamPredictor(bundle.model, bundle.feature_state, exact=False)
    shape = predictor._buf.shape
    rows = prices[list(C.PRICE_COLUMNS)].to_numpy(np.float64)
    for row in rows:
        predictor.push(*row, predict=False)
    assert predictor.n_pushed == 10_000
    assert predictor.buffer_rows == WINDOW - 1 == predictor.seq_len
    assert predictor._buf.shape == shape


def test_cost_per_bar_does_not_grow_with_history():
    prices = make_prices(10_200, seed=7)
    bundle = _bundle(C.LSTM, prices=prices.iloc[:300])
    predictor = StreamPredictor(bundle.model, bundle.feature_state, exact=False)
    rows = prices[list(C.PRICE_COLUMNS)].to_numpy(np.float64)

    def best_of(part: np.ndarray) -> float:
        times = []
        for row in part:
            t = time.perf_counter()
            predictor.push(*row)
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    for row in rows[:100]:
        predictor.push(*row, predict=False)
    early = best_of(rows[100:300])
    for row in rows[300:10_000]:
        predictor.push(*row, predict=False)
    late = best_of(rows[10_000:10_200])
    assert late < 3 * early, (early, late)


def test_a_bad_bar_is_refused_with_one_line():
    bundle = _bundle(C.LSTM)
    predictor = StreamPredictor(bundle.model, bundle.feature_state, exact=False)
    predictor.push(100.0, 101.0, 99.0, 100.0, 1000.0)
    with pytest.raises(DataError, match="non-finite feature"):
        predictor.push(100.0, 101.0, 99.0, -1.0, 1000.0)
