"""Progress events reported by the core through an ``on_event`` callback.

Plain frozen dataclasses holding plain floats and ints (never tensors), so a front end
can forward them across threads as they are. ``on_event`` may be ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StageStarted:
    """A pipeline stage began: ``load``, ``features``, ``fit``, ``predict``, ``backtest``."""

    stage: str
    message: str


@dataclass(frozen=True)
class DataLoaded:
    """Prices are ready. ``cached_at`` is set when they came from the download cache."""

    label: str
    n_rows: int
    first: str
    last: str
    from_cache: bool = False
    cached_at: str | None = None  # ISO timestamp of the cached download
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchEnd:
    """Throttled (about 20 per second at most): the running train loss inside an epoch."""

    epoch: int  # 1-based
    epochs: int
    batch: int  # 1-based
    n_batches: int
    train_loss: float  # mean loss of this batch
    samples_per_s: float


@dataclass(frozen=True)
class EpochEnd:
    """One epoch finished."""

    epoch: int  # 1-based
    epochs: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    samples_per_s: float
    elapsed_s: float
    eta_s: float  # estimate for the remaining epochs (upper bound: early stopping may end sooner)


@dataclass(frozen=True)
class FoldStarted:
    """A walk-forward fold began (warm start: in fold order) or was queued (cold folds run
    in parallel: every fold is announced when queued)."""

    fold: int  # 0-based
    n_folds: int
    predict_start: str  # ISO date of the first bar the fold predicts
    predict_end: str  # ISO date of the last bar the fold predicts


@dataclass(frozen=True)
class FoldFinished:
    """A walk-forward fold finished training and predicting (cold folds: completion order)."""

    fold: int  # 0-based
    n_folds: int
    train_loss: tuple[float, ...]  # mean training loss per epoch
    val_loss: tuple[float, ...]  # validation loss per epoch
    best_val_loss: float


Event = StageStarted | DataLoaded | BatchEnd | EpochEnd | FoldStarted | FoldFinished
OnEvent = Callable[[Event], None] | None


def emit(on_event: OnEvent, event: Event) -> None:
    """Call ``on_event(event)`` when a callback was given."""
    if on_event is not None:
        on_event(event)


def format_hms(seconds: float) -> str:
    """A duration (an ETA, an elapsed time) as ``M:SS``, or ``H:MM:SS`` from one hour.

    Parameters
    ----------
    seconds : float
        Rounded to whole seconds; negative, NaN or infinite (an ETA not known yet) read
        ``0:00``.

    Returns
    -------
    str
        e.g. ``"0:42"``, ``"12:05"``, ``"1:02:03"``.
    """
    s = max(0, round(seconds)) if math.isfinite(seconds) else 0
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"
