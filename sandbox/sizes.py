"""Parameter counts of the networks, in closed form (no torch).

The app shows a network's size beside its choice (a GRU has about 3/4 of the parameters of an
LSTM of the same hidden size, a plain RNN about 1/4) and the memory lab compares kinds at an
equal parameter budget, so both need the count without building a model (the UI process never
imports torch). The formulas follow the layers :mod:`sandbox.models` builds; a test checks
them against ``sum(p.numel() for p in build_model(...).parameters())`` over many shapes.

Recurrent kinds (``g`` gates: RNN 1, GRU 3, LSTM 4; torch keeps two bias vectors per gate)::

    layer 1:       g * H * (F + H + 2)
    layers 2..N:   g * H * (2H + 2)        each
    head:          H + 1

Transformer (``D`` = hidden, feed-forward width ``FF = 2D``)::

    embedding:     F * D + D
    each layer:    attention 4 * (D*D + D) + feed-forward 2 * D * FF + FF + D
                   + two layer norms 4 * D
    final norm:    2 * D
    head:          D + 1

The heads do not change the count (they split the same projections), only which widths are
allowed (a multiple of the heads).
"""

from __future__ import annotations

from sandbox import constants as C
from sandbox.config import ModelConfig
from sandbox.errors import ConfigError

#: gates per recurrent kind: one weight block each in torch's (input, hidden) matrices
GATES: dict[str, int] = {C.RNN: 1, C.GRU: 3, C.LSTM: 4}
#: the Transformer's feed-forward width per unit of its model width (sandbox.models uses it)
TRANSFORMER_FF_MULT = 2


def count_parameters(kind: str, hidden: int, layers: int, n_features: int,
                     heads: int = 4) -> int:
    """Trainable parameters of a ``kind`` network of this shape (no validation of the shape).

    Parameters
    ----------
    kind : str
        One of :data:`sandbox.constants.MODEL_KINDS`.
    hidden, layers : int
        Hidden units per recurrent layer (the Transformer's width d_model) and layers.
    n_features : int
        Inputs per bar.
    heads : int
        The Transformer's attention heads; they do not change the count.

    Raises
    ------
    ConfigError
        ``kind`` is not a known network kind.
    """
    del heads  # the heads split the projections; the count is the same
    h, f = hidden, n_features
    head = h + 1
    if kind in GATES:
        g = GATES[kind]
        return g * h * (f + h + 2) + (layers - 1) * g * h * (2 * h + 2) + head
    if kind == C.TRANSFORMER:
        ff = TRANSFORMER_FF_MULT * h
        per_layer = 4 * (h * h + h) + 2 * h * ff + ff + h + 4 * h
        return (f * h + h) + layers * per_layer + 2 * h + head
    raise ConfigError(f"model {kind!r}: expected one of {', '.join(C.MODEL_KINDS)}")


def parameter_count(config: ModelConfig, n_features: int) -> int:
    """Trainable parameters of ``build_model(config, n_features)``, without building it."""
    return count_parameters(config.kind, config.hidden, config.layers, n_features,
                            config.heads)


def n_features_for(target: str = C.TARGET_RETURN) -> int:
    """Inputs per bar of a model predicting ``target`` (``len(feature_names(target))``)."""
    from sandbox.features import feature_names  # pandas-free callers need not load pandas

    return len(feature_names(target))


def equal_budget_hidden(kind: str, budget: int, n_features: int, layers: int = 2,
                        heads: int = 4) -> int:
    """The hidden size whose parameter count is closest to ``budget``.

    Parameters
    ----------
    kind : str
        Network kind.
    budget : int
        Wanted number of parameters (e.g. :func:`parameter_count` of a reference model).
    n_features, layers, heads : int
        The rest of the shape. For the Transformer the answer is a multiple of ``heads``.

    Returns
    -------
    int
        A hidden size from 1 (``heads`` for the Transformer) to
        :data:`sandbox.constants.MAX_HIDDEN`; of two equally close, the smaller.
    """
    step = heads if kind == C.TRANSFORMER else 1
    candidates = range(step, C.MAX_HIDDEN + 1, step)
    return min(candidates, key=lambda h: (
        abs(count_parameters(kind, h, layers, n_features, heads) - budget), h))
