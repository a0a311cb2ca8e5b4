from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
from test_features import make_prices

from sandbox import constants as C
from sandbox import evaluate, pipeline
from sandbox.config import (
    ModelConfig,
    RunConfig,
    SplitSpec,
    StrategyConfig,
    TrainConfig,
)
from sandbox.errors import Cancelled, ConfigError, DataError, TrainingError
from sandbox.events import DataLoaded, EpochEnd, StageStarted


def small_config(**train) -> RunConfig:
    return RunConfig(
        model=ModelConfig(kind=C.GRU, window=10, hidden=8, layers=1, dropout=0.0),
        train=TrainConfig(**{"epochs": 3, "batch_size": 32, "threads": 1, **train}),
        strategy=StrategyConfig(cost_bps=5.0),
    )


@pytest.fixture(scope="module")
def prices():
    return make_prices(400, seed=1, phi=0.2)


@pytest.fixture(scope="module")
def result(prices):
    return pipeline.run(small_config(), prices=prices)


def test_predictions_have_the_contract_columns_and_rows(result, prices):
    p = result.predictions
    assert [p.index.name, *p.columns] == list(C.PREDICTION_COLUMNS)
    assert p.index[0] == prices.index[9] and p.index[-1] == prices.index[-1]
    assert np.isnan(p[C.ACTUAL_RETURN].iloc[-1])  # the last bar: a signal, no outcome yet
    assert np.isfinite(p[C.PREDICTED_RETURN]).all()
    np.testing.assert_array_equal(p[C.CLOSE], prices[C.CLOSE].iloc[9:])
    assert list(dict.fromkeys(p[C.SPLIT])) == list(C.SPLITS)


def test_each_split_is_a_fresh_account(result):
    p = result.predictions
    for split in C.SPLITS:
        rows = p[p[C.SPLIT] == split]
        first = rows.iloc[0]
        assert first[C.EQUITY] == pytest.approx(1 + first[C.STRATEGY_RETURN])
        r = rows[C.STRATEGY_RETURN].dropna()
        np.testing.assert_allclose(rows[C.EQUITY].dropna(), np.cumprod(1 + r), rtol=1e-12)
    assert p[C.POSITION].isin([0.0, 1.0]).all()  # long_flat


def test_baselines_share_the_rows_and_follow_their_rules(result, prices):
    assert set(result.baselines) == set(C.BASELINES)
    for frame in result.baselines.values():
        assert frame.index.equals(result.predictions.index)
        assert (frame[C.SPLIT] == result.predictions[C.SPLIT]).all()
    close = prices[C.CLOSE].to_numpy()
    mom = result.baselines[C.MOMENTUM][C.PREDICTED_RETURN].to_numpy()
    np.testing.assert_allclose(mom, np.log(close[9:] / close[8:-1]))
    assert (result.baselines[C.RANDOM_WALK][C.PREDICTED_RETURN] == 0).all()
    assert (result.baselines[C.RANDOM_WALK][C.POSITION] == 0).all()
    assert (result.baselines[C.BUY_AND_HOLD][C.POSITION] == 1).all()
    drift = result.baselines[C.DRIFT][C.PREDICTED_RETURN]
    assert drift.nunique() == 1 and drift.iloc[0] == result.feature_state["drift"]


def test_metrics_shape(result):
    m = result.metrics
    assert m is result.metrics_by_split[C.TEST]
    assert set(result.metrics_by_split) == set(C.SPLITS)
    assert m[evaluate.KEY_SPLIT] == C.TEST and m[evaluate.KEY_TARGET] == C.TARGET_RETURN
    assert set(C.FORECAST_METRICS) <= set(m[C.MODEL])
    assert set(m[evaluate.KEY_BASELINES]) == set(C.BASELINES)
    assert m[evaluate.KEY_BASELINES][C.RANDOM_WALK][C.THEIL_U2] == 1.0
    assert m[evaluate.KEY_BASELINES][C.RANDOM_WALK][C.DIRECTIONAL_ACCURACY] is None
    assert C.RMSE not in m[evaluate.KEY_BASELINES][C.BUY_AND_HOLD]
    test = result.predictions[result.predictions[C.SPLIT] == C.TEST].dropna(
        subset=[C.ACTUAL_RETURN])
    rmse = np.sqrt(np.mean((test[C.PREDICTED_RETURN] - test[C.ACTUAL_RETURN]) ** 2))
    assert m[C.MODEL][C.RMSE] == pytest.approx(rmse, rel=1e-12)


def test_retrade_changes_only_the_trading(result):
    new = pipeline.retrade(result, StrategyConfig(strategy=C.LONG_SHORT, cost_bps=0.0))
    assert new.model is result.model and new.history is result.history
    assert new.config.strategy.strategy == C.LONG_SHORT
    assert result.config.strategy.strategy == C.LONG_FLAT  # the old result is untouched
    np.testing.assert_array_equal(new.predictions[C.PREDICTED_RETURN],
                                  result.predictions[C.PREDICTED_RETURN])
    assert set(new.predictions[C.POSITION].unique()) <= {-1.0, 0.0, 1.0}
    assert (new.predictions[C.POSITION] == -1).any()
    for name in C.FORECAST_METRICS:
        assert new.metrics[C.MODEL][name] == result.metrics[C.MODEL][name]
    assert new.metrics[C.MODEL] != result.metrics[C.MODEL]


def test_events_and_timings(prices):
    events = []
    r = pipeline.run(small_config(epochs=2), on_event=events.append, prices=prices)
    stages = [e.stage for e in events if isinstance(e, StageStarted)]
    assert stages == ["load", "features", "fit", "predict", "backtest"]
    assert sum(isinstance(e, DataLoaded) for e in events) == 1
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    assert set(stages) | {"total"} <= set(r.timings)


def test_whole_run_is_deterministic(prices, result):
    again = pipeline.run(small_config(), prices=prices)
    np.testing.assert_array_equal(again.predictions[C.PREDICTED_RETURN],
                                  result.predictions[C.PREDICTED_RETURN])


def test_lstm_learns_an_ar1_signal():
    prices = make_prices(2500, seed=3, phi=0.5)
    config = RunConfig(
        model=ModelConfig(kind=C.LSTM, window=10, hidden=16, layers=1, dropout=0.0),
        train=TrainConfig(epochs=8, patience=3, batch_size=64, lr=3e-3, threads=1),
    )
    r = pipeline.run(config, prices=prices)
    model_rmse = r.metrics[C.MODEL][C.RMSE]
    rw_rmse = r.metrics[evaluate.KEY_BASELINES][C.RANDOM_WALK][C.RMSE]
    # the best possible forecast has RMSE sqrt(1 - phi^2) = 0.87 of the random walk's
    assert model_rmse < 0.92 * rw_rmse
    assert r.metrics[C.MODEL][C.DIRECTIONAL_ACCURACY] > 0.6


def test_price_target_is_labelled(prices):
    config = small_config()
    config = config.replace(model=config.model.replace(target=C.TARGET_PRICE))
    r = pipeline.run(config, prices=prices)
    assert r.metrics[evaluate.KEY_TARGET] == C.TARGET_PRICE
    assert r.feature_state["target"] == C.TARGET_PRICE
    assert np.isfinite(r.predictions[C.PREDICTED_RETURN]).all()


def test_too_little_history_is_a_data_error():
    with pytest.raises(DataError):
        pipeline.run(small_config(), prices=make_prices(14))


def test_split_dates_outside_the_data_are_a_data_error(prices):
    config = small_config().replace(split=SplitSpec(val_start="1990-01-01",
                                                    test_start="1991-01-01"))
    with pytest.raises(DataError, match="training split"):
        pipeline.run(config, prices=prices)


def test_a_set_cancel_event_raises_cancelled(prices):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        pipeline.run(small_config(), cancel=cancel, prices=prices)


def test_divergence_surfaces_as_training_error(prices, monkeypatch):
    from sandbox import features

    real = features.prepare

    def poisoned(*args, **kwargs):
        fs = real(*args, **kwargs)
        fs.y[fs.fit_rows[C.TRAIN][0]] = np.inf
        return fs

    monkeypatch.setattr(features, "prepare", poisoned)
    with pytest.raises(TrainingError, match="epoch 1"):
        pipeline.run(small_config(), prices=prices)


@pytest.mark.parametrize("bad", [dict(window=1), dict(hidden=0), dict(dropout=1.0)])
def test_bad_hyperparameters_are_config_errors(bad):
    with pytest.raises(ConfigError):
        RunConfig(model=ModelConfig(**bad))


def test_importing_the_pipeline_loads_neither_torch_nor_qt():
    code = "import sys, sandbox.pipeline; print(sorted({'torch','PySide6'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.strip()
    assert out == "[]"


def test_predict_with_a_saved_bundle_reproduces_the_run(result, prices, tmp_path):
    import pandas as pd

    from sandbox import export
    from sandbox.config import DataSpec
    from sandbox.data import LoadedPrices

    folder = export.save_bundle(result, tmp_path / "bundle")
    loaded = LoadedPrices(frame=prices, label="prices", source="frame")
    spec = DataSpec(source=f"{C.SOURCE_SAMPLE}:GOOG")
    got = pipeline.predict(folder, loaded, spec, result.config.strategy)
    pd.testing.assert_frame_equal(got.predictions, result.predictions, check_exact=True)
    assert got.metrics_by_split == result.metrics_by_split
    for name, frame in result.baselines.items():
        pd.testing.assert_frame_equal(got.baselines[name], frame, check_exact=True)
    assert got.config.data == spec and got.history.epochs_run == 0 and got.model is not None
    other = StrategyConfig(strategy=C.LONG_SHORT, cost_bps=1.0)
    assert pipeline.predict(folder, loaded, spec, other).metrics == (
        pipeline.retrade(result, other).metrics)


def test_a_single_split_run_has_no_walk_forward_parts(result):
    assert result.walk_forward is None and not result.is_walk_forward
    assert result.folds == [] and result.fold_histories == {} and result.fold_weights == []
    assert C.FOLD not in result.predictions
    assert list(result.histories) == [result.config.train.seed]
    assert result.metrics[C.SPLIT] == C.TEST
