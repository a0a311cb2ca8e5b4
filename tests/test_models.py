from __future__ import annotations

import pytest
import torch
from torch import nn

from sandbox import constants as C
from sandbox import models
from sandbox.config import ModelConfig
from sandbox.errors import ConfigError


@pytest.mark.parametrize("kind, cell", [(C.LSTM, nn.LSTM), (C.GRU, nn.GRU), (C.RNN, nn.RNN)])
def test_every_kind_maps_windows_to_one_number(kind, cell):
    torch.manual_seed(0)
    model = models.build_model(ModelConfig(kind=kind, hidden=8, layers=2, dropout=0.1), 5)
    assert isinstance(model.rnn, cell)
    assert model.rnn.hidden_size == 8 and model.rnn.num_layers == 2 and model.rnn.batch_first
    out = model(torch.randn(4, 12, 5))
    assert out.shape == (4,)


def test_seed_stockpredictor_shape_is_the_default():
    model = models.build_model(ModelConfig(), 5)
    assert isinstance(model, models.LSTMPredictor)
    assert (model.rnn.hidden_size, model.rnn.num_layers) == (64, 2)
    assert model.head.in_features == 64 and model.head.out_features == 1


def test_single_layer_ignores_dropout_without_warning(recwarn):
    model = models.build_model(ModelConfig(layers=1, dropout=0.5), 3)
    assert model.rnn.dropout == 0.0
    assert not [w for w in recwarn if "dropout" in str(w.message)]


def test_a_new_model_is_one_name_in_the_constants_and_one_registered_class(monkeypatch):
    monkeypatch.setattr(models, "REGISTRY", dict(models.REGISTRY))
    monkeypatch.setattr(C, "MODEL_KINDS", (*C.MODEL_KINDS, "mean"))

    @models.register("mean")
    class MeanPredictor(models.Predictor):
        def __init__(self, n_features):
            super().__init__()
            self.head = nn.Linear(n_features, 1)

        @classmethod
        def from_config(cls, config, n_features):
            return cls(n_features)

        def forward(self, x):
            return self.head(x.mean(dim=1)).squeeze(-1)

    model = models.build_model(ModelConfig(kind="mean"), 4)  # the config accepts it too
    assert isinstance(model, MeanPredictor) and model(torch.randn(2, 3, 4)).shape == (2,)


def test_every_listed_kind_has_a_class_and_every_class_is_listed():
    assert set(models.REGISTRY) == set(C.MODEL_KINDS)
    assert all(models.REGISTRY[k].kind == k for k in C.MODEL_KINDS)


def test_registering_a_kind_the_constants_do_not_list_is_refused():
    with pytest.raises(ValueError, match="MODEL_KINDS"):
        models.register("mean")


def test_a_listed_kind_without_a_class_fails_the_import_check(monkeypatch):
    monkeypatch.setattr(C, "MODEL_KINDS", (*C.MODEL_KINDS, "mean"))
    with pytest.raises(ImportError, match="mean"):
        models._check_registry()


def test_unknown_kind_is_a_config_error():
    config = ModelConfig()
    object.__setattr__(config, "kind", "nope")
    with pytest.raises(ConfigError, match="nope"):
        models.build_model(config, 4)


@pytest.mark.parametrize("bad", [dict(window=1), dict(hidden=0), dict(dropout=1.0),
                                 dict(dropout=-0.1), dict(layers=0)])
def test_bad_model_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        ModelConfig(**bad)
