"""``ShownRun``: what every result the app shows has, whatever produced it.

A single trained run (:class:`sandbox.pipeline.RunResult`), a seed ensemble or a sweep
configuration averaged over its seeds (:class:`sandbox.ensemble.EnsembleResult`) and a saved
model applied to new data (a ``RunResult`` without training history) all satisfy it. The
front ends read results through this protocol only, so they never ask which kind they hold
(no ``hasattr`` checks): a field that does not apply has an empty value (``band`` is None for
one model, ``failed`` is empty, ``can_save`` is False where no single fitted model exists).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from sandbox.config import RunConfig, StrategyConfig
    from sandbox.data import LoadedPrices

__all__ = ["ShownRun"]


class ShownRun(Protocol):
    """A run's predictions, baselines and metrics, as the app draws and exports them."""

    config: RunConfig  # the settings it was trained (or traded) with
    data: LoadedPrices  # the prices it predicts; data.frame has every bar
    #: rows with a prediction: the predictions contract columns (split, close, ..., equity)
    predictions: pd.DataFrame
    baselines: dict[str, pd.DataFrame]  # random_walk, momentum, drift, buy_and_hold
    metrics: dict  # the metrics.json object of the test split
    metrics_by_split: dict[str, dict]  # the same for train, val and test
    member_metrics: dict[int, dict[str, dict]]  # seed -> split -> metrics (ensembles only)
    failed: dict[int, str]  # seed -> why it failed (ensembles; empty otherwise)
    histories: dict[int, dict[str, list[float]]]  # seed -> train_loss / val_loss per epoch
    #: the test split stays out of sight (a sweep configuration that was not selected)
    test_hidden: bool
    #: a saved model applied to data: the split dates it was trained with (see RunResult)
    trained_split: dict | None
    #: a saved model applied to data: what it was trained on (run.json "data"), else None
    trained_data: dict | None

    @property
    def seeds(self) -> list[int]:
        """The seeds whose models make the forecast (one for a single run)."""
        ...

    @property
    def all_seeds(self) -> list[int]:
        """Every seed that was run, the failed ones too."""
        ...

    @property
    def n_seeds(self) -> int:
        ...

    @property
    def is_ensemble(self) -> bool:
        """Two or more models averaged (one member draws like a single model)."""
        ...

    @property
    def band(self) -> pd.DataFrame | None:
        """Per row, min and max over the seeds of predicted close and equity; None for one
        model."""
        ...

    @property
    def can_save(self) -> bool:
        """One fitted model is there to save as a bundle."""
        ...

    def retrade(self, strategy: StrategyConfig) -> ShownRun:
        """The same forecasts paper-traded with ``strategy`` (no training)."""
        ...
