"""Seed ensembles: N models of one configuration that differ only in their seed.

One training run on one seed proves little; an ensemble shows how far the seed alone moves
the forecasts and the P&L. The members train in parallel through :func:`sandbox.runs.run_all`
(one configuration, ``seeds`` seeds, one torch thread per run), and come back as
predictions frames. From them :func:`from_members` builds an :class:`EnsembleResult`:

- ``predictions``: the *averaged forecast*: the mean predicted return over the seeds, traded
  by the strategy like any single model. It is what the chart draws as the prediction line,
  markers and model equity, and what Export writes (the predictions contract).
- ``members``: each seed's own frame, traded by the same strategy; ``member_metrics`` their
  metrics per split, and ``stats`` the mean and sample std over the seeds of every metric.
- ``band``: per row, the lowest and highest predicted close and equity over the seeds.

Baselines depend on the data, the window and the split only, so they are computed once here,
on the same rows as the members. Every number is derived from the members' forecasts and the
prices by :mod:`sandbox.evaluate`, so re-trading with a new strategy (:func:`retrade`) gives
the figures a fresh ensemble would. Importing this module loads neither torch nor Qt.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox import evaluate, stats
from sandbox.config import RunConfig, StrategyConfig
from sandbox.errors import ConfigError, TrainingError

if TYPE_CHECKING:
    from sandbox.data import LoadedPrices
    from sandbox.runs import RunRecord

__all__ = [
    "BAND_EQUITY_HIGH",
    "BAND_EQUITY_LOW",
    "BAND_PREDICTED_HIGH",
    "BAND_PREDICTED_LOW",
    "STAT_KEYS",
    "EnsembleResult",
    "from_members",
    "member_stats",
    "retrade",
    "run_ensemble",
]

#: columns of :attr:`EnsembleResult.band` (per row, over the seeds)
BAND_PREDICTED_LOW = "predicted_close_min"
BAND_PREDICTED_HIGH = "predicted_close_max"
BAND_EQUITY_LOW = "equity_min"
BAND_EQUITY_HIGH = "equity_max"

#: metrics whose mean and std over the seeds are reported
STAT_KEYS: tuple[str, ...] = (
    C.RMSE, C.DIRECTIONAL_ACCURACY, C.TOTAL_RETURN, C.SHARPE, C.MAX_DRAWDOWN, C.N_TRADES,
)


@dataclass
class EnsembleResult:
    """A seed ensemble of one configuration. Frames are indexed by ``date``.

    Shaped like :class:`sandbox.pipeline.RunResult` where the app and the exporters read it
    (``config``, ``data``, ``predictions``, ``baselines``, ``metrics``, ``metrics_by_split``);
    it has no fitted model (the members were trained in other processes).
    """

    config: RunConfig  # the configuration; members use seeds ``seeds`` and one thread each
    data: LoadedPrices
    seeds: list[int]  # the members' seeds, ascending
    predictions: pd.DataFrame  # the averaged forecast, traded (predictions contract columns)
    baselines: dict[str, pd.DataFrame]
    metrics: dict  # metrics.json object of the test split, for the averaged forecast
    metrics_by_split: dict[str, dict]
    members: dict[int, pd.DataFrame]  # seed -> that member's predictions, traded
    member_metrics: dict[int, dict[str, dict]]  # seed -> split -> metrics.json object
    stats: dict[str, dict[str, dict[str, float | None]]]  # split -> metric -> mean, std, n
    band: pd.DataFrame  # per row: predicted close and equity, min and max over the seeds
    failed: dict[int, str] = field(default_factory=dict)  # seed -> why it failed
    histories: dict[int, dict[str, list[float]]] = field(default_factory=dict)  # loss curves
    model: Any = None  # never a fitted model: there are ``len(seeds)`` of them, not kept
    #: the test split stays hidden (a sweep configuration that was not selected: showing its
    #: test figures would let the test split choose between configurations)
    test_hidden: bool = False
    trained_split: dict | None = None  # an ensemble is trained here: always None
    trained_data: dict | None = None

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    # --- sandbox.results.ShownRun --------------------------------------------------------------
    @property
    def is_ensemble(self) -> bool:
        return len(self.seeds) > 1

    @property
    def can_save(self) -> bool:
        return False  # no single fitted model: the members were trained elsewhere

    def retrade(self, strategy: StrategyConfig) -> EnsembleResult:
        """The same forecasts paper-traded with ``strategy`` (see :func:`retrade`)."""
        return retrade(self, strategy)

    @property
    def all_seeds(self) -> list[int]:
        """Every seed that was run, the failed ones too."""
        return sorted({*self.seeds, *self.failed})


# --- building --------------------------------------------------------------------------------


def baseline_frames(config: RunConfig, prices: LoadedPrices) -> tuple[dict[str, pd.DataFrame],
                                                                      str]:
    """The naive baselines' predictions frames (not yet traded) on the rows a model of
    ``config`` predicts, and the target kind. Needs no training: data, window and split only.
    """
    from sandbox import features

    fs = features.prepare(prices.frame, window=config.model.window, target=config.model.target,
                          split=config.split, name=prices.label, fill=config.strategy.fill)
    frames = evaluate.baseline_frames(fs.rows, fs.split, fs.close, fs.actual_return,
                                      fs.momentum, fs.state["drift"])
    return frames, str(fs.state["target"])


def from_members(
    config: RunConfig,
    prices: LoadedPrices,
    members: Mapping[int, pd.DataFrame],
    *,
    failed: Mapping[int, str] | None = None,
    histories: Mapping[int, dict[str, list[float]]] | None = None,
) -> EnsembleResult:
    """Build the ensemble from each seed's predictions frame.

    Parameters
    ----------
    config : RunConfig
        The members' shared configuration (its strategy is the one traded).
    prices : LoadedPrices
        The prices the members were trained on.
    members : mapping of int to pandas.DataFrame
        Seed -> predictions frame (``split, close, actual_return, predicted_return``, ...), as
        :func:`sandbox.pipeline.run` returns it. All on the same rows.
    failed : mapping of int to str, optional
        Seeds whose run failed, and why (reported, left out of every figure).
    histories : mapping, optional
        Seed -> ``{"train_loss": [...], "val_loss": [...]}`` per epoch.

    Raises
    ------
    ConfigError
        No members, or members on different rows.
    """
    if not members:
        raise ConfigError("an ensemble needs at least one finished member")
    seeds = sorted(members)
    first = members[seeds[0]]
    rows = first.index
    for seed in seeds[1:]:
        if not members[seed].index.equals(rows):
            raise ConfigError(f"ensemble member seed {seed}: predicts other rows than seed "
                              f"{seeds[0]}; members must share data, window and split")
    base_frames, target = baseline_frames(config, prices)
    if not base_frames[C.RANDOM_WALK].index.equals(rows):
        raise ConfigError("ensemble members do not predict the rows the configuration gives; "
                          "were they trained on other data?")
    labels = first[C.SPLIT].to_numpy()
    if not np.array_equal(labels, base_frames[C.RANDOM_WALK][C.SPLIT].to_numpy()):
        raise ConfigError("ensemble members were split into train/validation/test differently "
                          "from the configuration; were they trained with another split?")
    for seed in seeds[1:]:
        if not np.array_equal(members[seed][C.SPLIT].to_numpy(), labels):
            raise ConfigError(f"ensemble member seed {seed}: split differently from seed "
                              f"{seeds[0]}")
    forecasts = np.vstack([members[s][C.PREDICTED_RETURN].to_numpy(np.float64) for s in seeds])
    with np.errstate(invalid="ignore"):
        mean = forecasts.mean(axis=0)  # NaN where any member has no forecast
    averaged = evaluate.predictor_frame(rows, first[C.SPLIT].to_numpy(), first[C.CLOSE].to_numpy(),
                                        first[C.ACTUAL_RETURN].to_numpy(), mean)
    raw_members = {
        s: evaluate.predictor_frame(rows, first[C.SPLIT].to_numpy(), first[C.CLOSE].to_numpy(),
                                    first[C.ACTUAL_RETURN].to_numpy(), forecasts[i])
        for i, s in enumerate(seeds)
    }
    result = EnsembleResult(
        config=config, data=prices, seeds=seeds, predictions=averaged, baselines=base_frames,
        metrics={}, metrics_by_split={}, members=raw_members, member_metrics={}, stats={},
        band=pd.DataFrame(index=rows), failed=dict(failed or {}),
        histories={int(k): dict(v) for k, v in (histories or {}).items()},
    )
    return _trade(result, config.strategy, target=target)


def retrade(result: EnsembleResult, strategy: StrategyConfig) -> EnsembleResult:
    """The same ensemble paper-traded with another strategy (forecasts are kept)."""
    new = dataclasses.replace(result, config=result.config.replace(strategy=strategy),
                              members=dict(result.members), baselines=dict(result.baselines),
                              seeds=list(result.seeds), failed=dict(result.failed),
                              histories={k: dict(v) for k, v in result.histories.items()})
    return _trade(new, strategy,
                  target=str(result.metrics.get(evaluate.KEY_TARGET, C.TARGET_RETURN)))


def _trade(result: EnsembleResult, strategy: StrategyConfig, *, target: str) -> EnsembleResult:
    trades = evaluate.trade_all(result.data.frame, result.predictions, result.baselines,
                                strategy, target=target,
                                members={seed: result.members[seed] for seed in result.seeds})
    result.predictions, result.metrics_by_split = trades.predictions, trades.metrics_by_split
    result.metrics = result.metrics_by_split[C.TEST]
    result.baselines = trades.baselines
    result.members = trades.members
    result.member_metrics = trades.member_metrics
    result.stats = member_stats(trades.member_metrics)
    result.band = _band(trades.members)
    from sandbox import significance

    significance.add_evidence(result)  # of the averaged forecast, the one the app shows
    for split in significance.EVIDENCE_SPLITS:  # and is the best seed more than luck?
        rows = (result.predictions[C.SPLIT] == split).to_numpy()
        hold = result.baselines[C.BUY_AND_HOLD][C.STRATEGY_RETURN].to_numpy(float)[rows]
        members = np.column_stack([result.members[seed][C.STRATEGY_RETURN].to_numpy(float)[rows]
                                   for seed in result.seeds]) if result.seeds else None
        if members is not None:
            result.metrics_by_split[split][C.SIGNIFICANCE]["spa_members"] = (
                significance.spa_members(hold, members, benchmark_name=C.BUY_AND_HOLD,
                                         split=split))
    return result


def member_stats(member_metrics: Mapping[int, Mapping[str, Mapping[str, Any]]]
                 ) -> dict[str, dict[str, dict[str, float | None]]]:
    """Split -> metric -> ``{"mean", "std", "n"}`` of the model's metric over the seeds.

    ``std`` is the sample standard deviation (ddof 1; None for one seed); values that are
    missing or not finite (e.g. no directional accuracy) are left out and ``n`` says how
    many seeds counted.
    """
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for split in C.SPLITS:
        model = [m.get(split, {}).get(C.MODEL, {}) for m in member_metrics.values()]
        out[split] = {key: stats.mean_std([d.get(key) for d in model]) for key in STAT_KEYS}
    return out


def _band(members: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """Per row: min and max over the seeds of the predicted close and of the equity."""
    frames = list(members.values())
    close = frames[0][C.CLOSE].to_numpy(np.float64)
    predicted = np.vstack([f[C.PREDICTED_RETURN].to_numpy(np.float64) for f in frames])
    equity = np.vstack([f[C.EQUITY].to_numpy(np.float64) for f in frames])
    with np.errstate(invalid="ignore", over="ignore"):
        predicted_close = close * np.exp(predicted)
    return pd.DataFrame({
        BAND_PREDICTED_LOW: _nanreduce(np.nanmin, predicted_close),
        BAND_PREDICTED_HIGH: _nanreduce(np.nanmax, predicted_close),
        BAND_EQUITY_LOW: _nanreduce(np.nanmin, equity),
        BAND_EQUITY_HIGH: _nanreduce(np.nanmax, equity),
    }, index=frames[0].index)


def _nanreduce(fn: Callable[..., np.ndarray], values: np.ndarray) -> np.ndarray:
    """``fn`` over axis 0, NaN (without a warning) where every value is NaN."""
    out = np.full(values.shape[1], np.nan)
    known = np.isfinite(values).any(axis=0)
    if known.any():
        out[known] = fn(values[:, known], axis=0)
    return out


# --- running ---------------------------------------------------------------------------------


def run_ensemble(
    config: RunConfig,
    *,
    seeds: int,
    jobs: int = 2,
    prices: LoadedPrices | None = None,
    on_member: Callable[[RunRecord], None] | None = None,
    cancel: threading.Event | None = None,
) -> EnsembleResult:
    """Train ``seeds`` members of ``config`` in parallel and build the ensemble.

    Seeds are ``config.train.seed + 0 .. seeds - 1``; each member uses one torch thread (so a
    member equals ``pipeline.run`` of its config with ``threads=1``, bit for bit).

    Parameters
    ----------
    config : RunConfig
        Everything but the seed.
    seeds : int
        Members (>= 1).
    jobs : int
        Worker processes; ``1`` trains the members one after another in this process.
    prices : LoadedPrices, optional
        Prices already loaded for ``config.data`` (loaded when None).
    on_member : callable, optional
        Called with each member's :class:`~sandbox.runs.RunRecord` as it finishes.
    cancel : threading.Event, optional
        Set it to stop every member (raises :class:`~sandbox.errors.Cancelled`).

    Raises
    ------
    TrainingError
        Every member failed (each seed's reason is given).
    ConfigError, DataError, Cancelled
        As :func:`sandbox.runs.run_all`.
    """
    from sandbox import runs

    runs.check_jobs(jobs)
    tasks = runs.seed_tasks(config, seeds)
    if prices is None:
        from sandbox.data import load_prices

        prices = load_prices(config.data, min_rows=config.model.window + 5)
    records = runs.run_all(tasks, prices=prices, jobs=min(jobs, seeds), on_result=on_member,
                           cancel=cancel, keep_predictions=True)
    return from_records(config, prices, records)


def from_records(config: RunConfig, prices: LoadedPrices,
                 records: Sequence[RunRecord]) -> EnsembleResult:
    """The ensemble of finished runs of one configuration (failed ones are reported).

    ``config`` is the configuration with its first seed (as the sweep ran it, or as the user
    set it); the members' strategy is replaced by ``config.strategy``.

    Raises
    ------
    TrainingError
        No run succeeded.
    """
    members: dict[int, pd.DataFrame] = {}
    failed: dict[int, str] = {}
    histories: dict[int, dict[str, list[float]]] = {}
    for r in records:
        if r.error is not None:
            failed[int(r.seed)] = str(r.error)
        elif r.predictions is None:
            failed[int(r.seed)] = "no predictions came back (run the sweep with keep_predictions)"
        else:
            members[int(r.seed)] = r.predictions
            histories[int(r.seed)] = {"train_loss": list(r.train_losses),
                                      "val_loss": list(r.val_losses)}
    if not members:
        reasons = "; ".join(f"seed {s}: {e}" for s, e in sorted(failed.items()))
        raise TrainingError(f"every seed failed ({reasons or 'no runs'})")
    return from_members(config, prices, members, failed=failed, histories=histories)
