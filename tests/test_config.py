from __future__ import annotations

import json
import math

import pytest

from sandbox import constants as C
from sandbox.config import (
    DataSpec,
    ModelConfig,
    RunConfig,
    SplitSpec,
    StrategyConfig,
    TrainConfig,
    WalkForwardSpec,
)
from sandbox.errors import ConfigError


def test_defaults_match_the_seed_model():
    cfg = RunConfig()
    assert cfg.data.source == "sample:GSPC"
    assert (cfg.model.kind, cfg.model.hidden, cfg.model.layers) == (C.LSTM, 64, 2)
    assert cfg.strategy.fill == C.FILL_NEXT_OPEN and cfg.strategy.strategy == C.LONG_FLAT


def test_json_round_trip_is_exact():
    cfg = RunConfig(
        data=DataSpec(source="csv:/tmp/prices.csv", start="2001-01-01"),
        split=SplitSpec(val_start="2010-01-01", test_start="2014-01-01"),
        model=ModelConfig(kind=C.GRU, window=20, hidden=16, layers=1, dropout=0.0),
        train=TrainConfig(epochs=3, lr=5e-4, seed=7, threads=1),
        strategy=StrategyConfig(strategy=C.LONG_SHORT, threshold_bps=2.5, cost_bps=1.0),
    )
    text = json.dumps(cfg.to_dict())
    assert RunConfig.from_dict(json.loads(text)) == cfg


@pytest.mark.parametrize(
    ("factory", "words"),
    [
        (lambda: ModelConfig(window=1), "window"),
        (lambda: ModelConfig(hidden=0), "hidden"),
        (lambda: ModelConfig(layers=0), "layers"),
        (lambda: ModelConfig(dropout=1.0), "dropout"),
        (lambda: ModelConfig(dropout=-0.1), "dropout"),
        (lambda: ModelConfig(kind="cnn"), "model"),
        (lambda: ModelConfig(kind="transformer", hidden=30, heads=4), "multiple of its heads"),
        (lambda: ModelConfig(heads=0), "heads"),
        (lambda: WalkForwardSpec(start=1.5), "walk-forward start"),
        (lambda: WalkForwardSpec(retrain_every=0), "retrain every"),
        (lambda: WalkForwardSpec(window_mode="rolling"), "rolling train length"),
        (lambda: WalkForwardSpec(train_length=500), "rolling window mode only"),
        (lambda: WalkForwardSpec(window_mode="sliding"), "window mode"),
        (lambda: TrainConfig(epochs=0), "epochs"),
        (lambda: TrainConfig(lr=0.0), "learning rate"),
        (lambda: TrainConfig(lr=math.nan), "learning rate"),
        (lambda: TrainConfig(lr=math.inf), "learning rate"),
        (lambda: TrainConfig(batch_size=0), "batch size"),
        (lambda: TrainConfig(threads=0), "threads"),
        (lambda: StrategyConfig(fill="vwap"), "fill"),
        (lambda: StrategyConfig(cost_bps=-1), "cost"),
        (lambda: StrategyConfig(threshold_bps=math.nan), "threshold"),
        (lambda: SplitSpec(train_frac=0.9, val_frac=0.1), "split"),
        (lambda: SplitSpec(val_start="2015-01-01", test_start="2014-01-01"), "val-start"),
        (lambda: DataSpec(source="ftp:thing"), "data source"),
        (lambda: DataSpec(source="sample:"), "data source"),
        (lambda: DataSpec(interval="7d"), "interval"),
    ],
)
def test_bad_values_are_refused_with_a_reason(factory, words):
    with pytest.raises(ConfigError, match=words):
        factory()


def test_from_dict_rejects_unknown_and_mistyped_settings():
    with pytest.raises(ConfigError, match="unknown setting"):
        RunConfig.from_dict({"model": {"kind": "lstm", "depth": 3}})
    with pytest.raises(ConfigError, match="window"):
        RunConfig.from_dict({"model": {"window": "30"}})
    with pytest.raises(ConfigError, match="expected an object"):
        RunConfig.from_dict({"train": [1, 2]})


def test_data_spec_parts():
    spec = DataSpec(source="csv:/data/My Prices.csv")
    assert (spec.kind, spec.value, spec.label) == ("csv", "/data/My Prices.csv", "My Prices")
    assert DataSpec(source="yahoo:aapl").label == "AAPL"
