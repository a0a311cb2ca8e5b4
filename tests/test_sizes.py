"""Closed-form parameter counts against the models torch builds, and the equal-budget width."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from test_features import make_prices

from sandbox import constants as C
from sandbox import models, sizes
from sandbox.config import ModelConfig
from sandbox.errors import ConfigError
from sandbox.features import bar_features


def _built(config: ModelConfig, n_features: int) -> int:
    """The reference: what torch allocates for the model."""
    return sum(p.numel() for p in models.build_model(config, n_features).parameters())


RECURRENT_SHAPES = list(itertools.product((1, 2, 7, 33, 64), (1, 2, 3), (1, 5, 9)))


@pytest.mark.parametrize("kind", [C.LSTM, C.GRU, C.RNN])
def test_recurrent_counts_match_the_built_model(kind):
    for hidden, layers, n_features in RECURRENT_SHAPES:
        config = ModelConfig(kind=kind, hidden=hidden, layers=layers)
        assert sizes.parameter_count(config, n_features) == _built(config, n_features), \
            (hidden, layers, n_features)


TRANSFORMER_SHAPES = [(hidden, heads, layers, n_features)
                      for hidden, heads in ((1, 1), (6, 3), (9, 3), (16, 4), (64, 4), (64, 16),
                                            (96, 8))
                      for layers in (1, 2, 4) for n_features in (1, 5, 9)]


def test_transformer_counts_match_the_built_model():
    for hidden, heads, layers, n_features in TRANSFORMER_SHAPES:
        config = ModelConfig(kind=C.TRANSFORMER, hidden=hidden, heads=heads, layers=layers)
        assert sizes.parameter_count(config, n_features) == _built(config, n_features), \
            (hidden, heads, layers, n_features)


def test_default_counts_by_hand():
    # LSTM: 4 gates x 64 x (5 inputs + 64 + 2 biases), then 4 x 64 x (64 + 64 + 2), head 65
    assert sizes.parameter_count(ModelConfig(), 5) == 4 * 64 * 71 + 4 * 64 * 130 + 65 == 51_521
    # Transformer: embedding 5*64+64, two layers of 8*64^2 + 11*64, final norm 128, head 65
    expected = 384 + 2 * (8 * 64 * 64 + 11 * 64) + 128 + 65
    assert sizes.parameter_count(ModelConfig(kind=C.TRANSFORMER), 5) == expected == 67_521


def test_a_gru_is_about_three_quarters_of_an_lstm():
    lstm = sizes.parameter_count(ModelConfig(kind=C.LSTM), 5)
    gru = sizes.parameter_count(ModelConfig(kind=C.GRU), 5)
    rnn = sizes.parameter_count(ModelConfig(kind=C.RNN), 5)
    assert gru / lstm == pytest.approx(0.75, abs=0.01)
    assert rnn / lstm == pytest.approx(0.25, abs=0.01)


def test_heads_do_not_change_the_count():
    counts = {sizes.count_parameters(C.TRANSFORMER, 48, 2, 5, heads) for heads in (1, 2, 4, 16)}
    assert len(counts) == 1


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="nope"):
        sizes.count_parameters("nope", 8, 1, 5)


def test_n_features_for_each_target():
    prices = make_prices(40)
    for target in C.TARGETS:
        assert sizes.n_features_for(target) == bar_features(prices, target=target).shape[1]


@pytest.mark.parametrize("kind, heads", [(C.RNN, 4), (C.GRU, 4), (C.LSTM, 4),
                                         (C.TRANSFORMER, 4), (C.TRANSFORMER, 3)])
@pytest.mark.parametrize("budget", [500, 12_929, 51_521, 300_000])
def test_equal_budget_hidden_is_the_closest_width(kind, heads, budget):
    hidden = sizes.equal_budget_hidden(kind, budget, 5, layers=2, heads=heads)
    step = heads if kind == C.TRANSFORMER else 1
    assert hidden % step == 0 and step <= hidden <= C.MAX_HIDDEN

    def gap(h):  # distance to the budget of a model torch builds
        return abs(_built(ModelConfig(kind=kind, hidden=h, layers=2, heads=heads), 5) - budget)

    for neighbour in (hidden - step, hidden + step):
        if step <= neighbour <= C.MAX_HIDDEN:
            assert gap(hidden) <= gap(neighbour)


def test_equal_budget_of_the_default_lstm():
    budget = sizes.parameter_count(ModelConfig(), 5)
    assert sizes.equal_budget_hidden(C.LSTM, budget, 5) == 64
    rnn = sizes.equal_budget_hidden(C.RNN, budget, 5)
    assert rnn > 100  # the plain RNN needs about twice the width for the same budget


def test_sizes_does_not_import_torch_or_pandas():
    code = ("import sys, sandbox.sizes as s; s.parameter_count(s.ModelConfig(), 5); "
            "s.equal_budget_hidden('lstm', 10000, 5); "
            "print('torch' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]
