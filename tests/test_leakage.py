"""Nothing after a row's close may influence that row's prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_features import make_prices

from sandbox import constants as C
from sandbox import features, pipeline
from sandbox.config import ModelConfig, RunConfig, SplitSpec, TrainConfig

N = 360


def _perturb_after(prices: pd.DataFrame, date: pd.Timestamp, seed: int = 9) -> pd.DataFrame:
    """Scale every bar on or after ``date`` by its own random factor (still a valid frame)."""
    out = prices.copy()
    later = out.index >= date
    factor = np.exp(np.random.default_rng(seed).normal(0, 0.05, later.sum()))
    for col in (C.OPEN, C.HIGH, C.LOW, C.CLOSE):
        out.loc[later, col] = out.loc[later, col] * factor
    out.loc[later, C.VOLUME] = out.loc[later, C.VOLUME] * factor[::-1]
    return out


#: the networks the perturbation checks run on: the recurrent one and the attention one (which
#: sees its whole window at once)
KINDS = (C.LSTM, C.TRANSFORMER)


def _config(split: SplitSpec, kind: str = C.LSTM) -> RunConfig:
    return RunConfig(
        split=split,
        model=ModelConfig(kind=kind, window=12, hidden=8, layers=2, heads=2, dropout=0.1),
        train=TrainConfig(epochs=3, patience=2, batch_size=32, threads=1, seed=5),
    )


@pytest.fixture(scope="module")
def prices():
    return make_prices(N, seed=4, phi=0.3)


@pytest.fixture(scope="module", params=KINDS)
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def dated(prices, kind):
    spec = SplitSpec(val_start=str(prices.index[240].date()),
                     test_start=str(prices.index[300].date()))
    return spec, pipeline.run(_config(spec, kind), prices=prices)


@pytest.mark.parametrize("at", [300, 330])
def test_perturbing_prices_from_d_on_leaves_earlier_predictions_unchanged(prices, dated, kind,
                                                                          at):
    spec, base = dated
    d = prices.index[at]  # 300 = the first test bar: the targets of val's last row move too
    other = pipeline.run(_config(spec, kind), prices=_perturb_after(prices, d))
    before = base.predictions.index < d
    np.testing.assert_array_equal(other.predictions.loc[before, C.PREDICTED_RETURN],
                                  base.predictions.loc[before, C.PREDICTED_RETURN])
    assert not np.array_equal(other.predictions.loc[~before, C.PREDICTED_RETURN],
                              base.predictions.loc[~before, C.PREDICTED_RETURN])
    assert other.history.val_loss == base.history.val_loss


def test_fraction_splits_perturbed_in_test_leave_train_and_val_unchanged(prices, kind):
    spec = SplitSpec()
    base = pipeline.run(_config(spec, kind), prices=prices)
    first_test = base.predictions.index[base.predictions[C.SPLIT] == C.TEST][0]
    other = pipeline.run(_config(spec, kind), prices=_perturb_after(prices, first_test))
    before = base.predictions.index < first_test
    np.testing.assert_array_equal(other.predictions.loc[before, C.PREDICTED_RETURN],
                                  base.predictions.loc[before, C.PREDICTED_RETURN])


def test_data_cut_after_test_start_gives_identical_predictions(prices, dated, kind):
    spec, base = dated
    cut = prices.iloc[:320]  # leaves 18 test returns: below the default minimum of 20
    other = pipeline.run(_config(spec.replace(min_returns=10), kind), prices=cut)
    common = other.predictions.index
    assert len(common) == 320 - 11 and common.isin(base.predictions.index).all()
    np.testing.assert_array_equal(other.predictions[C.PREDICTED_RETURN],
                                  base.predictions.loc[common, C.PREDICTED_RETURN])
    assert other.feature_state["scaler"] == base.feature_state["scaler"]


def test_scaler_statistics_are_those_of_the_training_rows(prices, dated):
    _, base = dated
    last_train = base.predictions.index[base.predictions[C.SPLIT] == C.TRAIN][-1]
    assert last_train == prices.index[239]
    raw = features.bar_features(prices.loc[:last_train]).to_numpy()[1:]  # bar 0: no features
    scaler = features.Scaler.from_dict(base.feature_state["scaler"])
    np.testing.assert_allclose(scaler.mean, raw.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.std, raw.std(axis=0), rtol=1e-12)
    fit_rows = (base.predictions[C.SPLIT] == C.TRAIN).to_numpy().copy()
    fit_rows[np.flatnonzero(fit_rows)[-1]] = False  # its target is the first validation bar
    actual = base.predictions[C.ACTUAL_RETURN].to_numpy()[fit_rows]
    target = features.Scaler.from_dict(base.feature_state["target_scaler"])
    assert target.mean[0] == pytest.approx(actual.mean(), rel=1e-12)
    assert target.std[0] == pytest.approx(actual.std(), rel=1e-12)


@pytest.mark.parametrize("at", [13, 100, 250])
def test_feature_windows_never_read_later_bars(prices, at):
    fs = features.prepare(prices, window=12)
    d = prices.index[at]
    _, x = features.transform(_perturb_after(prices, d), fs.state)
    # feature row j belongs to bar j + 1; window of row t ends at feature row t - 1
    keep = at - 1
    np.testing.assert_array_equal(x[:keep], fs.x[:keep])
    assert not np.array_equal(x[keep], fs.x[keep])
