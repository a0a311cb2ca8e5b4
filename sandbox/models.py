"""Sequence predictors: RNN, GRU and LSTM over a window of per-bar features.

The LSTM is the seed article's ``StockPredictor`` (``nn.LSTM`` over the window, hidden 64,
2 layers, ``batch_first``, the last step's output -> ``nn.Linear`` -> one number). Models
are found through a registry, so a new architecture is one class::

    @register("transformer")
    class TransformerPredictor(Predictor):
        ...

This is the module that imports torch: the rest of the core imports it lazily (inside
functions), so importing :mod:`sandbox.pipeline` or starting the app does not load torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from sandbox import constants as C
from sandbox.config import ModelConfig
from sandbox.errors import ConfigError

#: model kind -> class; filled by :func:`register`
REGISTRY: dict[str, type[Predictor]] = {}


def register(kind: str) -> Callable[[type[Predictor]], type[Predictor]]:
    """Class decorator adding a :class:`Predictor` subclass to :data:`REGISTRY` as ``kind``."""

    def decorate(cls: type[Predictor]) -> type[Predictor]:
        REGISTRY[kind] = cls
        cls.kind = kind
        return cls

    return decorate


class Predictor(nn.Module):
    """Base class: maps windows (B, L, F) to one prediction per window (B,)."""

    kind: str = ""

    @classmethod
    def from_config(cls, config: ModelConfig, n_features: int) -> Predictor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, F) -> (B,)
        raise NotImplementedError


class RecurrentPredictor(Predictor):
    """A stacked recurrent layer; the last step's hidden output goes through a linear head."""

    cell: type[nn.Module] = nn.LSTM

    def __init__(self, n_features: int, hidden: int = 64, layers: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.rnn = self.cell(
            input_size=n_features,
            hidden_size=hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,  # torch warns on dropout with one layer
        )
        self.head = nn.Linear(hidden, 1)

    @classmethod
    def from_config(cls, config: ModelConfig, n_features: int) -> Predictor:
        return cls(n_features, hidden=config.hidden, layers=config.layers,
                   dropout=config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # (B, L, H)
        return self.head(out[:, -1]).squeeze(-1)  # (B, H) -> (B,)


@register(C.LSTM)
class LSTMPredictor(RecurrentPredictor):
    """The seed's StockPredictor."""

    cell = nn.LSTM


@register(C.GRU)
class GRUPredictor(RecurrentPredictor):
    cell = nn.GRU


@register(C.RNN)
class RNNPredictor(RecurrentPredictor):
    """Elman RNN (tanh)."""

    cell = nn.RNN


def build_model(config: ModelConfig, n_features: int) -> Predictor:
    """A fresh model of ``config.kind`` for ``n_features`` inputs per step.

    Seed torch first (:func:`sandbox.training.configure_torch`) for reproducible weights.

    Raises
    ------
    ConfigError
        ``config.kind`` is not registered.
    """
    try:
        cls = REGISTRY[config.kind]
    except KeyError:
        raise ConfigError(
            f"model {config.kind!r}: expected one of {', '.join(sorted(REGISTRY))}"
        ) from None
    return cls.from_config(config, n_features)
