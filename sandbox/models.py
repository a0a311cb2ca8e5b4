"""Sequence predictors: RNN, GRU, LSTM and a small Transformer over a window of per-bar features.

The LSTM is the seed article's ``StockPredictor`` (``nn.LSTM`` over the window, hidden 64,
2 layers, ``batch_first``, the last step's output -> ``nn.Linear`` -> one number). Models
are found through a registry, so a new architecture is one class under a name listed in
:data:`sandbox.constants.MODEL_KINDS`::

    @register(C.TRANSFORMER)
    class TransformerPredictor(Predictor):
        ...

The names live in the constants (torch-free: the config's validation, the CLI and the app
list them without loading torch); the classes live here. The two cannot drift apart:
:func:`register` refuses a name the constants do not list, and importing this module fails
if a listed name has no class.

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
from sandbox.sizes import TRANSFORMER_FF_MULT

#: model kind -> class; filled by :func:`register`
REGISTRY: dict[str, type[Predictor]] = {}


def register(kind: str) -> Callable[[type[Predictor]], type[Predictor]]:
    """Class decorator adding a :class:`Predictor` subclass to :data:`REGISTRY` as ``kind``.

    Raises
    ------
    ValueError
        ``kind`` is not in :data:`sandbox.constants.MODEL_KINDS` (add it there: the config,
        the CLI and the app offer the kinds listed there).
    """
    if kind not in C.MODEL_KINDS:
        raise ValueError(f"model kind {kind!r} is not in constants.MODEL_KINDS; add it there "
                         "so the config, the CLI and the app offer it")

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


class SinusoidalPositions(nn.Module):
    """Adds the fixed sine/cosine position code of "Attention Is All You Need" to (B, L, D).

    Position ``p`` (0 = the window's oldest bar) gets ``sin(p / 10000^(2i/D))`` in column
    ``2i`` and ``cos(...)`` in column ``2i + 1``. No weights: the code is a function of the
    shape, computed in float64 and kept as a non-persistent buffer (not in the bundle),
    rebuilt for a longer window when one comes.
    """

    def __init__(self, width: int, length: int) -> None:
        super().__init__()
        self.width = width
        self.register_buffer("code", self.table(length, width), persistent=False)

    @staticmethod
    def table(length: int, width: int) -> torch.Tensor:
        """The (length, width) code, float32."""
        pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)
        rate = torch.pow(10000.0, -torch.arange(0, width, 2, dtype=torch.float64) / width)
        code = torch.zeros(length, width, dtype=torch.float64)
        code[:, 0::2] = torch.sin(pos * rate)
        code[:, 1::2] = torch.cos(pos * rate[: width // 2])
        return code.to(torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        if length > self.code.shape[0] or self.code.device != x.device:
            self.code = self.table(max(length, self.code.shape[0]), self.width).to(x.device)
        return x + self.code[:length].to(x.dtype)


@register(C.TRANSFORMER)
class TransformerPredictor(Predictor):
    """Encoder-only Transformer: linear embedding of each bar's features to ``hidden``
    (d_model), the sinusoidal position code, ``layers`` pre-norm encoder layers with ``heads``
    attention heads (feed-forward width ``2 * hidden``, ``dropout`` on each block's output
    before the residual sum), a final layer norm, and the last bar's output -> ``nn.Linear``
    -> one number.

    Every bar of the window attends to every other (no causal mask): the whole window is the
    past of the bar being predicted.
    """

    #: feed-forward width per unit of d_model (sandbox.sizes counts parameters with it)
    FF_MULT = TRANSFORMER_FF_MULT

    def __init__(self, n_features: int, hidden: int = 64, layers: int = 2, heads: int = 4,
                 dropout: float = 0.0, window: int = 30) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, hidden)
        self.positions = SinusoidalPositions(hidden, window)
        layer = nn.TransformerEncoderLayer(
            d_model=hidden, nhead=heads, dim_feedforward=self.FF_MULT * hidden,
            dropout=0.0, batch_first=True, norm_first=True,
        )
        # the 2017 paper's residual dropout: on each block's output before it is added back,
        # not on the attention weights or inside the feed-forward block (dropping those costs
        # the most time on a CPU: torch draws a mask for every (query, key) pair)
        layer.dropout1 = nn.Dropout(dropout)
        layer.dropout2 = nn.Dropout(dropout)
        # enable_nested_tensor only helps padded batches (there are none) and warns with
        # norm_first
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, norm=nn.LayerNorm(hidden),
                                             enable_nested_tensor=False)
        self.head = nn.Linear(hidden, 1)

    @classmethod
    def from_config(cls, config: ModelConfig, n_features: int) -> Predictor:
        return cls(n_features, hidden=config.hidden, layers=config.layers, heads=config.heads,
                   dropout=config.dropout, window=config.window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.positions(self.embed(x))  # (B, L, D)
        *early, last = self.encoder.layers
        for layer in early:
            h = layer(h)
        out = self.encoder.norm(self._last_position(last, h))  # (B, D)
        return self.head(out).squeeze(-1)  # (B, D) -> (B,)

    @staticmethod
    def _last_position(layer: nn.TransformerEncoderLayer, h: torch.Tensor) -> torch.Tensor:
        """``layer(h)[:, -1]`` computed for the last position alone (pre-norm layer).

        A position's output depends on its own query and every position's key and value,
        so the last layer needs one query, not L: the same numbers with the attention's
        query rows and the feed-forward block cut from L to 1 (a test checks it equals the
        full layer).
        """
        z = layer.norm1(h)
        attended, _ = layer.self_attn(z[:, -1:], z, z, need_weights=False)
        y = h[:, -1] + layer.dropout1(attended[:, 0])
        ff = layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm2(y)))))
        return y + layer.dropout2(ff)


def _check_registry() -> None:
    """Every kind the constants list has a class (see the module docstring)."""
    missing = [kind for kind in C.MODEL_KINDS if kind not in REGISTRY]
    if missing:
        raise ImportError(f"model kinds without a class: {', '.join(missing)}")


_check_registry()


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
