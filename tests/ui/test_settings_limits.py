"""Stored settings go through the config's limits before the form or Train sees them.

A damaged store (a hand edit, an older version, a broken file) must not start the app with a
value Train would choke on: numbers above the size limits are clamped to them, anything else
that does not validate falls back to its default.
"""

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
)
from sandbox.runs import usable_cores
from sandbox.ui import settings as S
from sandbox.ui.options import GuiOptions
from sandbox.ui.panels import ModelPanel, StrategyPanel
from sandbox.ui.settings import Settings, resolve_config


def _store(**parts: object) -> Settings:
    """Settings whose run parts hold ``parts`` (dicts as JSON, anything else as it is)."""
    keys = {"data": S.KEY_DATA, "split": S.KEY_SPLIT, "model": S.KEY_MODEL,
            "train": S.KEY_TRAIN, "strategy": S.KEY_STRATEGY}
    settings = Settings()
    for name, value in parts.items():
        settings.q.setValue(keys[name], json.dumps(value) if isinstance(value, dict) else value)
    settings.sync()
    return Settings()  # a fresh reader of the same file, as at the next start


def _restored(**parts: object) -> RunConfig:
    return _store(**parts).load_config(RunConfig())


def _assert_within_limits(config: RunConfig) -> None:
    model = config.model
    assert 2 <= model.window <= C.MAX_WINDOW
    assert 1 <= model.hidden <= C.MAX_HIDDEN
    assert 1 <= model.layers <= C.MAX_LAYERS
    assert math.isfinite(model.dropout) and 0 <= model.dropout < 1
    train = config.train
    assert train.epochs >= 1 and train.patience >= 0 and train.batch_size >= 1
    assert math.isfinite(train.lr) and train.lr > 0
    assert train.threads is None or 1 <= train.threads <= usable_cores()
    strategy = config.strategy
    assert math.isfinite(strategy.threshold_bps) and strategy.threshold_bps >= 0
    assert math.isfinite(strategy.cost_bps) and strategy.cost_bps >= 0
    assert strategy.periods_per_year is None or (
        math.isfinite(strategy.periods_per_year) and strategy.periods_per_year > 0)
    # and the config's own validation accepts every part again
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_huge_sizes_are_clamped_to_the_limits_and_the_rest_falls_back():
    config = _restored(
        model={"kind": C.GRU, "window": -5, "hidden": 10**9, "layers": 20_000,
               "dropout": float("nan"), "target": C.TARGET_PRICE},
        train={"epochs": "abc", "patience": -1, "batch_size": 0, "lr": float("inf"),
               "seed": 7, "threads": 10**9, "loss": "huber"},
        strategy={"strategy": C.LONG_SHORT, "threshold_bps": float("-inf"), "cost_bps": "5",
                  "periods_per_year": float("nan"), "fill": C.FILL_CLOSE},
    )
    _assert_within_limits(config)
    default = RunConfig()
    # above the limit: the limit; damaged: the default; sound neighbours are kept
    assert config.model == ModelConfig(kind=C.GRU, window=default.model.window,
                                       hidden=C.MAX_HIDDEN, layers=C.MAX_LAYERS,
                                       dropout=default.model.dropout, target=C.TARGET_PRICE)
    assert config.train == TrainConfig(seed=7, threads=min(10**9, usable_cores()), loss="huber")
    assert config.strategy == StrategyConfig(strategy=C.LONG_SHORT, fill=C.FILL_CLOSE)


@pytest.mark.parametrize("field, value, expected", [
    ("window", 10**12, C.MAX_WINDOW),
    ("window", C.MAX_WINDOW + 1, C.MAX_WINDOW),
    ("window", 1, ModelConfig().window),
    ("window", True, ModelConfig().window),
    ("window", 12.5, ModelConfig().window),
    ("window", None, ModelConfig().window),
    ("window", [30], ModelConfig().window),
    ("hidden", C.MAX_HIDDEN + 1, C.MAX_HIDDEN),
    ("hidden", -64, ModelConfig().hidden),
    ("hidden", "64", ModelConfig().hidden),
    ("layers", C.MAX_LAYERS + 1, C.MAX_LAYERS),
    ("layers", 0, ModelConfig().layers),
    ("dropout", 1.5, ModelConfig().dropout),
    ("dropout", -0.1, ModelConfig().dropout),
    ("dropout", "0.3", ModelConfig().dropout),
    ("kind", 5, ModelConfig().kind),
])
def test_one_damaged_model_setting(field, value, expected):
    config = _restored(model={**ModelConfig(window=40, hidden=32, layers=3, dropout=0.1,
                                            kind=C.RNN).to_dict(), field: value})
    _assert_within_limits(config)
    assert getattr(config.model, field) == expected
    kept = {"window": 40, "hidden": 32, "layers": 3, "dropout": 0.1, "kind": C.RNN}
    for name, stored in kept.items():
        if name != field:
            assert getattr(config.model, name) == stored, name


def test_values_at_the_limits_are_kept():
    stored = ModelConfig(window=C.MAX_WINDOW, hidden=C.MAX_HIDDEN, layers=C.MAX_LAYERS,
                         dropout=0.999)
    assert _restored(model=stored.to_dict()).model == stored


def test_damaged_split_and_source_fall_back_without_breaking_the_start():
    config = _restored(
        split={"train_frac": 0.8, "val_frac": 0.1, "min_returns": "many",
               "val_start": None, "test_start": None},
        data={"source": 5, "interval": "1d"},
    )
    _assert_within_limits(config)
    assert config.split == SplitSpec(train_frac=0.8, val_frac=0.1)
    assert config.data == DataSpec()


def test_fractions_valid_alone_but_not_together_give_the_default_split():
    config = _restored(split={"train_frac": 0.9, "val_frac": 0.5})
    assert config.split == SplitSpec()


def test_unknown_names_are_dropped_and_the_known_ones_kept():
    config = _restored(train={"epochs": 3, "momentum": 0.9})
    assert config.train == TrainConfig(epochs=3)


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", "12", "null", ""])
def test_unreadable_parts_keep_the_base(raw):
    base = RunConfig(model=ModelConfig(hidden=16))
    settings = _store(model=raw)
    assert settings.load_config(base) == base


def test_the_command_line_is_the_default_of_a_damaged_setting():
    """What ``--hidden`` / ``--window`` asked for is the fallback, as for a missing setting."""
    base = RunConfig(model=ModelConfig(window=20, hidden=16))
    settings = _store(model={"window": "abc", "hidden": 10**9, "layers": 3})
    assert settings.load_config(base).model == ModelConfig(window=20, hidden=C.MAX_HIDDEN,
                                                           layers=3)


@pytest.mark.parametrize("stored, expected", [
    (10**9, C.MAX_ENSEMBLE_SEEDS), (C.MAX_ENSEMBLE_SEEDS + 1, C.MAX_ENSEMBLE_SEEDS),
    (0, 1), (-3, 1), ("abc", 1), ("nan", 1), ("inf", 1), (3, 3),
])
def test_seeds_are_within_the_ensemble_limit(stored, expected):
    settings = Settings()
    settings.q.setValue(S.KEY_SEEDS, stored)
    settings.sync()
    assert Settings().seeds() == expected


def test_the_form_shows_the_restored_values_unchanged(qtbot):
    """The side panel's fields hold what was restored, so Train gets exactly that."""
    settings = _store(
        model={"window": 10**9, "hidden": 10**9, "layers": 10**9, "dropout": float("nan")},
        train={"epochs": "abc", "batch_size": -5, "lr": "fast", "seed": -1},
        strategy={"threshold_bps": float("nan"), "cost_bps": -1.0, "periods_per_year": 0},
    )
    config = resolve_config(GuiOptions(), settings)
    _assert_within_limits(config)
    model_panel = ModelPanel()
    strategy_panel = StrategyPanel()
    qtbot.addWidget(model_panel)
    qtbot.addWidget(strategy_panel)
    model_panel.set_configs(config.model, config.train)
    strategy_panel.set_config(config.strategy)
    assert model_panel.model_config() == config.model
    assert model_panel.train_config() == config.train
    assert strategy_panel.strategy_config() == config.strategy
    assert (config.model.window, config.model.hidden, config.model.layers) == (
        C.MAX_WINDOW, C.MAX_HIDDEN, C.MAX_LAYERS)


def test_a_damaged_store_still_opens_the_window(make_window):
    _store(model={"window": -5, "hidden": 10**9, "layers": 20_000, "dropout": float("nan")},
           train={"epochs": "abc", "threads": 10**9})
    window = make_window(explicit=False, start=False)
    config = window.side_panel.run_config(DataSpec())
    _assert_within_limits(config)
    assert config.model.hidden == C.MAX_HIDDEN and config.model.layers == C.MAX_LAYERS


def test_transformer_heads_are_clamped_and_a_width_they_do_not_divide_falls_back():
    stored = ModelConfig(kind=C.TRANSFORMER, hidden=32, heads=4).to_dict()
    assert _restored(model={**stored, "heads": 10**6}).model.heads == C.MAX_HEADS  # 32 % 16 == 0
    config = _restored(model={**stored, "heads": 5})  # 32 is not a multiple of 5
    _assert_within_limits(config)
    assert config.model.kind == C.TRANSFORMER and config.model.hidden % config.model.heads == 0


def test_damaged_walk_forward_fields_fall_back_one_by_one():
    from sandbox.config import WalkForwardSpec

    settings = Settings()
    settings.q.setValue(S.KEY_EVALUATION, C.WALK_FORWARD)
    settings.q.setValue(S.KEY_WALK_FORWARD, json.dumps(
        {"start": "2015-01-02", "retrain_every": -3, "window_mode": "sideways",
         "val_length": 90, "warm_start": True, "unknown": 1}))
    settings.sync()
    config = Settings().load_config(RunConfig())
    assert config.walk_forward == WalkForwardSpec(start="2015-01-02", val_length=90,
                                                  warm_start=True)
    settings.q.setValue(S.KEY_EVALUATION, "split")
    settings.sync()
    assert Settings().load_config(RunConfig()).walk_forward is None
