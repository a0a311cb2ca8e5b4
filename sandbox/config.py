"""Run configuration: frozen dataclasses with validation and a JSON round trip.

Each dataclass checks its own values in ``__post_init__`` and raises
:class:`~sandbox.errors.ConfigError` with a message that names the setting, the value and
the allowed range, so a bad value is refused before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Self

from sandbox import constants as C
from sandbox.errors import ConfigError


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class _JsonMixin:
    """``to_dict`` / ``from_dict`` for a (possibly nested) frozen dataclass."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        _check(not unknown, f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            sub = _NESTED.get((cls.__name__, name))
            kwargs[name] = sub.from_dict(value) if sub is not None and value is not None else value
        try:
            return cls(**kwargs)
        except TypeError as exc:  # wrong types reach the validators as TypeError
            raise ConfigError(f"{cls.__name__}: {exc}") from None

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class DataSpec(_JsonMixin):
    """Where the prices come from.

    ``source`` is ``"sample:NAME"``, ``"csv:PATH"`` or ``"yahoo:SYMBOL"``.
    """

    source: str = f"{C.SOURCE_SAMPLE}:{C.DEFAULT_SAMPLE}"  # bundled sample: works offline
    start: str | None = None  # first date to keep (inclusive, ISO), None = all
    end: str | None = None  # last date to keep (inclusive for every source)
    interval: str = "1d"  # bar size; yfinance intervals
    auto_adjust: bool = True  # yfinance: prices adjusted for splits and dividends
    use_adj_close: bool = False  # CSV: take "Adj Close" as close (and scale O/H/L with it)
    #: CSV dates: None = the order is decided from the whole column; "dayfirst" / "monthfirst"
    #: for slashed or dotted dates; or a strftime format such as "%d.%m.%Y"
    date_format: str | None = None

    def __post_init__(self) -> None:
        kind, sep, value = self.source.partition(":")
        _check(
            bool(sep) and kind in C.SOURCE_KINDS and bool(value.strip()),
            f"data source {self.source!r}: expected sample:NAME, csv:PATH or yahoo:SYMBOL",
        )
        _check(
            self.interval in C.INTERVALS,
            f"interval {self.interval!r}: expected one of {', '.join(C.INTERVALS)}",
        )
        _check(
            self.date_format is None or self.date_format in C.DATE_ORDERS
            or (isinstance(self.date_format, str) and "%" in self.date_format),
            f"date format {self.date_format!r}: expected {', '.join(C.DATE_ORDERS)} or a "
            "strftime format such as %d.%m.%Y",
        )

    @property
    def kind(self) -> str:
        return self.source.partition(":")[0]

    @property
    def value(self) -> str:
        return self.source.partition(":")[2]

    @property
    def label(self) -> str:
        """Short name for titles: the sample or ticker name, or the CSV file's stem."""
        if self.kind == C.SOURCE_CSV:
            from pathlib import Path

            return Path(self.value).stem
        return self.value.upper()


@dataclass(frozen=True)
class SplitSpec(_JsonMixin):
    """Chronological train < validation < test split, by dates or by fractions."""

    val_start: str | None = None  # first validation date; None = by fraction
    test_start: str | None = None  # first test date; None = by fraction
    train_frac: float = 0.70  # share of rows for training when dates are not given
    val_frac: float = 0.15  # share for validation; the rest (0.15) is test
    #: fewest usable returns the validation and test splits need (fewer: refused)
    min_returns: int = 20

    def __post_init__(self) -> None:
        _check(
            _finite(self.train_frac) and _finite(self.val_frac)
            and self.train_frac > 0 and self.val_frac > 0
            and self.train_frac + self.val_frac < 1,
            f"split fractions train={self.train_frac}, val={self.val_frac}: each must be > 0 "
            "and together < 1 so the test split is not empty",
        )
        _check(_is_int(self.min_returns) and self.min_returns >= 1,
               f"minimum returns per split {self.min_returns!r}: must be a whole number >= 1")
        if self.val_start is not None and self.test_start is not None:
            _check(
                str(self.val_start) < str(self.test_start),
                f"--val-start {self.val_start} must come before --test-start {self.test_start}",
            )


@dataclass(frozen=True)
class ModelConfig(_JsonMixin):
    """Network shape (the seed's StockPredictor: LSTM, hidden 64, 2 layers).

    For the Transformer, ``hidden`` is the model width (d_model), ``layers`` the encoder
    layers and ``heads`` the attention heads (``hidden`` must be a multiple of ``heads``);
    the recurrent kinds ignore ``heads``.
    """

    kind: str = C.LSTM  # lstm | gru | rnn | transformer
    window: int = 30  # bars per input window (features of t-W+1 .. t)
    hidden: int = 64  # hidden units per recurrent layer; the Transformer's d_model
    layers: int = 2  # stacked recurrent (or encoder) layers
    dropout: float = 0.2  # between recurrent layers (ignored by torch when layers == 1)
    #: "return" (the next bar's close-to-close log return), "traded_return" (the return the
    #: fill earns: open t+1 -> open t+2 with the next-open fill) or "price" (teaching only)
    target: str = C.TARGET_RETURN
    heads: int = 4  # Transformer attention heads (hidden must be a multiple of it)

    def __post_init__(self) -> None:
        _check(self.kind in C.MODEL_KINDS,
               f"model {self.kind!r}: expected one of {', '.join(C.MODEL_KINDS)}")
        _check(_is_int(self.window) and 2 <= self.window <= C.MAX_WINDOW,
               f"window {self.window!r}: must be a whole number from 2 to {C.MAX_WINDOW:,}")
        _check(_is_int(self.hidden) and 1 <= self.hidden <= C.MAX_HIDDEN,
               f"hidden {self.hidden!r}: must be a whole number from 1 to {C.MAX_HIDDEN:,}")
        _check(_is_int(self.layers) and 1 <= self.layers <= C.MAX_LAYERS,
               f"layers {self.layers!r}: must be a whole number from 1 to {C.MAX_LAYERS}")
        _check(_finite(self.dropout) and 0 <= self.dropout < 1,
               f"dropout {self.dropout!r}: must be in [0, 1)")
        _check(self.target in C.TARGETS,
               f"target {self.target!r}: expected one of {', '.join(C.TARGETS)}")
        _check(_is_int(self.heads) and 1 <= self.heads <= C.MAX_HEADS,
               f"heads {self.heads!r}: must be a whole number from 1 to {C.MAX_HEADS}")
        _check(self.kind != C.TRANSFORMER or self.hidden % self.heads == 0,
               f"hidden {self.hidden} with {self.heads} heads: the Transformer's width "
               "(hidden) must be a multiple of its heads")


@dataclass(frozen=True)
class TrainConfig(_JsonMixin):
    """Optimisation settings."""

    epochs: int = 50  # upper bound; early stopping usually ends sooner
    patience: int = 5  # epochs without validation improvement before stopping (0 = never)
    batch_size: int = 64  # windows per optimiser step
    lr: float = 1e-3  # Adam learning rate
    seed: int = 0  # torch/numpy seed; same seed + data + threads = identical predictions
    threads: int | None = None  # torch threads; None = all cores but one
    loss: str = "mse"  # "mse" or "huber"
    grad_clip: float = 1.0  # max gradient norm (0 = off)
    weight_decay: float = 0.0  # Adam L2 penalty

    def __post_init__(self) -> None:
        _check(_is_int(self.epochs) and self.epochs >= 1,
               f"epochs {self.epochs!r}: must be a whole number >= 1")
        _check(_is_int(self.patience) and self.patience >= 0,
               f"patience {self.patience!r}: must be a whole number >= 0")
        _check(_is_int(self.batch_size) and self.batch_size >= 1,
               f"batch size {self.batch_size!r}: must be a whole number >= 1")
        _check(_finite(self.lr) and self.lr > 0,
               f"learning rate {self.lr!r}: must be a finite number > 0")
        _check(_is_int(self.seed) and self.seed >= 0,
               f"seed {self.seed!r}: must be a whole number >= 0")
        _check(self.threads is None or (_is_int(self.threads) and self.threads >= 1),
               f"threads {self.threads!r}: must be a whole number >= 1")
        _check(self.loss in ("mse", "huber"), f"loss {self.loss!r}: expected mse or huber")
        _check(_finite(self.grad_clip) and self.grad_clip >= 0,
               f"gradient clip {self.grad_clip!r}: must be >= 0")
        _check(_finite(self.weight_decay) and self.weight_decay >= 0,
               f"weight decay {self.weight_decay!r}: must be >= 0")


@dataclass(frozen=True)
class StrategyConfig(_JsonMixin):
    """How predictions become positions and how positions are filled."""

    strategy: str = C.LONG_FLAT  # long_flat: 1 above threshold else 0; long_short: +-1 outside band
    threshold_bps: float = 0.0  # threshold / dead band on the predicted return, in basis points
    fill: str = C.FILL_NEXT_OPEN  # next_open (default) or close
    cost_bps: float = 5.0  # cost per unit of position change, in basis points
    #: bars per year for the Sharpe ratio; None = measured from the data (bars over the
    #: calendar span, see backtest.infer_periods_per_year)
    periods_per_year: float | None = None

    def __post_init__(self) -> None:
        _check(self.strategy in C.STRATEGIES,
               f"strategy {self.strategy!r}: expected one of {', '.join(C.STRATEGIES)}")
        _check(_finite(self.threshold_bps) and self.threshold_bps >= 0,
               f"threshold {self.threshold_bps!r} bps: must be a finite number >= 0")
        _check(self.fill in C.FILLS, f"fill {self.fill!r}: expected one of {', '.join(C.FILLS)}")
        _check(_finite(self.cost_bps) and self.cost_bps >= 0,
               f"cost {self.cost_bps!r} bps: must be a finite number >= 0")
        _check(self.periods_per_year is None
               or (_finite(self.periods_per_year) and self.periods_per_year > 0),
               f"periods per year {self.periods_per_year!r}: must be > 0")


@dataclass(frozen=True)
class WalkForwardSpec(_JsonMixin):
    """Walk-forward evaluation: retrain every ``retrain_every`` bars on the bars seen so far.

    ``start`` is where out-of-sample predictions begin: an ISO date, or a fraction of the
    rows (0 < f < 1). A fraction moves with the data's length, so a run resolves it to a
    date once and writes that date into run.json (``walk_forward.start``).
    """

    start: str | float = 0.7  # first out-of-sample date (ISO) or fraction of the rows
    retrain_every: int = 63  # bars each fold predicts before the next retraining
    window_mode: str = C.EXPANDING  # expanding: all bars so far; rolling: the last train_length
    train_length: int | None = None  # rolling: bars of training data per fold (incl. val_length)
    val_length: int = 126  # bars at the end of each fold's training data for early stopping
    warm_start: bool = False  # a fold starts from the previous fold's weights
    warm_epochs: int = 5  # warm start: most epochs a fold after the first trains

    def __post_init__(self) -> None:
        if isinstance(self.start, str):
            _check(bool(self.start.strip()), "walk-forward start: empty date")
        else:
            _check(_finite(self.start) and 0 < self.start < 1,
                   f"walk-forward start {self.start!r}: expected a date or a fraction in (0, 1)")
        _check(_is_int(self.retrain_every) and self.retrain_every >= 1,
               f"retrain every {self.retrain_every!r}: must be a whole number of bars >= 1")
        _check(self.window_mode in C.WINDOW_MODES,
               f"window mode {self.window_mode!r}: expected one of {', '.join(C.WINDOW_MODES)}")
        _check(_is_int(self.val_length) and self.val_length >= 1,
               f"validation length {self.val_length!r}: must be a whole number of bars >= 1")
        if self.window_mode == C.ROLLING:
            _check(_is_int(self.train_length) and self.train_length > self.val_length + 1,
                   f"rolling train length {self.train_length!r}: must be a whole number of "
                   f"bars greater than the validation length + 1 ({self.val_length + 1})")
        else:
            _check(self.train_length is None,
                   "train length is for the rolling window mode only")
        _check(isinstance(self.warm_start, bool),
               f"warm start {self.warm_start!r}: expected true or false")
        _check(_is_int(self.warm_epochs) and self.warm_epochs >= 1,
               f"warm epochs {self.warm_epochs!r}: must be a whole number >= 1")


@dataclass(frozen=True)
class RunConfig(_JsonMixin):
    """Everything one run needs; the single input of :func:`sandbox.pipeline.run`."""

    data: DataSpec = field(default_factory=DataSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    #: None: one train/val/test split (``split``); set: walk-forward evaluation
    walk_forward: WalkForwardSpec | None = None


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


_NESTED: dict[tuple[str, str], type[_JsonMixin]] = {
    ("RunConfig", "data"): DataSpec,
    ("RunConfig", "split"): SplitSpec,
    ("RunConfig", "model"): ModelConfig,
    ("RunConfig", "train"): TrainConfig,
    ("RunConfig", "strategy"): StrategyConfig,
    ("RunConfig", "walk_forward"): WalkForwardSpec,
}
