"""Hyperparameter sweeps: grid parsing, expansion, honest selection and writing the results.

A grid such as ``"model=lstm,gru hidden=16,64 window=20,60 lr=1e-3"`` times N seeds is
expanded into :class:`~sandbox.runs.Task` objects, executed by :func:`sandbox.runs.run_all`
(in this process, loky worker processes or a Dask cluster), and streamed back as
:class:`~sandbox.runs.RunRecord` values in completion order.

Selection looks at the validation split only and at one quantity, the same for every
configuration (``summary.json`` ``selected_by: "val_rmse"``): the RMSE of the predicted
return (log return per bar, the target's units) on the validation dates every configuration
shares. A loss would not do: Huber is about half of MSE on the same errors, and a window
axis moves the split boundaries, so each configuration's own validation rows differ. Seeds
are averaged as the mean of each seed's RMSE (a configuration is judged as one trained
model, not as an ensemble of its seeds). The selected configuration's test figures are
computed on the test dates every configuration shares, with a probabilistic Sharpe ratio;
its validation Sharpe ratio is deflated (Bailey & Lopez de Prado, 2014) for the number of
distinct trained configurations tried. Test figures of every configuration are kept apart,
in a section labelled for reference only.

Grid axes that only re-trade the same models (``cost_bps``, ``fill``) are refused: selecting
among them would pick zero cost or the kinder fill. ``threshold_bps`` and ``strategy`` are
allowed; they re-trade the same model, so they are not new trials.

Every run uses one torch thread (``TrainConfig.threads = 1``), so workers do not
oversubscribe the cores and a run gives the same numbers whichever worker executes it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox import runs as _runs
from sandbox import stats
from sandbox.config import ModelConfig, RunConfig, StrategyConfig, TrainConfig
from sandbox.errors import Cancelled, ConfigError
from sandbox.runs import (
    OnResult,
    Runner,
    RunRecord,
    SplitRows,
    Task,
    check_jobs,
    check_seeds,
    run_all,
    seed_tasks,
)

SWEEP_CSV = C.SWEEP_CSV
SUMMARY_JSON = C.SUMMARY_JSON
TEST_FOR_REFERENCE = "test_all_configs_for_reference_only"

#: CLI spellings and short names accepted in a grid, mapped to config field names
_ALIASES = {"model": "kind", "network": "kind", "lr": "lr", "learning_rate": "lr"}
#: a field's name in a label where the app's words differ from the config's: the Sweep
#: form and the side panel say "Network", so a label says ``network=gru``, not ``kind=gru``
#: (``params`` and the ``sweep.csv`` columns keep the config's field names)
LABEL_NAMES = {"kind": "network"}
#: fields that a grid may not vary: seeds come from ``seeds=``, threads are fixed at 1, and
#: the strategy's costs, fill and bars per year only re-trade (or re-scale) the same models,
#: so a grid over them would "select" zero cost or the kinder fill, not a better model
_RETRADE = ("only re-trade the same trained models, so selecting among them picks the "
            "kindest assumption, not a better model; run one configuration with {flag} and "
            "read the cost-sensitivity figures of its evaluation (metrics.json "
            "significance.cost_sensitivity)")
_FORBIDDEN = {
    "seed": "seeds are not a grid parameter: use --seeds N (seed = base seed + 0 .. N-1)",
    "threads": "threads are fixed at 1 per run so parallel workers do not oversubscribe",
    "cost_bps": "trading costs " + _RETRADE.format(flag="--cost-bps"),
    "fill": "fills " + _RETRADE.format(flag="--fill"),
    "periods_per_year": "bars per year only rescale the annualised figures of the same "
                        "models; give --periods-per-year once",
}
#: the sections whose fields change the trained model; a strategy field (threshold_bps,
#: strategy) re-trades the same model, so it is not a new trial for the deflated Sharpe
_TRAINED_SECTIONS = ("model", "train")
_SECTIONS: tuple[tuple[str, type], ...] = (
    ("model", ModelConfig), ("train", TrainConfig), ("strategy", StrategyConfig),
)
_SCHEDULER_TIMEOUT_S = 5.0  # connecting to a Dask scheduler: give up (NetworkError) after this

# --- grid ------------------------------------------------------------------------------------


def _grid_fields() -> dict[str, tuple[str, type, str]]:
    """``{field name: (section, dataclass, annotation)}`` for every field a grid may vary."""
    out: dict[str, tuple[str, type, str]] = {}
    for section, cls in _SECTIONS:
        for f in dataclasses.fields(cls):
            out[f.name] = (section, cls, str(f.type))
    return out


def _parse_value(text: str, annotation: str) -> Any:
    """Parse one grid value to the type named by a field annotation (raises ValueError)."""
    optional = "None" in annotation
    if optional and text.lower() in ("none", "null", "auto"):
        return None
    if annotation.startswith("int"):
        try:
            return int(text)
        except ValueError:
            number = float(text)  # "1e3" is a whole number written as a float
            if not number.is_integer():
                raise
            return int(number)
    if annotation.startswith("float"):
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(text)
        return number
    if annotation.startswith("bool"):
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(text)
        return lowered in ("true", "1", "yes")
    return text


def _type_name(annotation: str) -> str:
    for prefix, name in (("int", "a whole number"), ("float", "a number"), ("bool", "true/false")):
        if annotation.startswith(prefix):
            return name
    return "text"


def parse_grid(text: str) -> dict[str, list]:
    """Parse a grid description into ``{config field: [values]}``.

    Parameters
    ----------
    text : str
        Space-separated ``NAME=V1,V2,...`` parts, e.g.
        ``"model=lstm,gru hidden=16,64 window=20,60 lr=1e-3"``. Names are fields of
        ``ModelConfig``, ``TrainConfig`` or ``StrategyConfig``; CLI spellings are accepted
        (``model`` for ``kind``, ``batch-size`` for ``batch_size``, ...). An empty text is an
        empty grid: the base configuration alone (a seed ensemble).

    Returns
    -------
    dict[str, list]
        Field name to its values, parsed to the field's type, in the order given.

    Raises
    ------
    ConfigError
        Naming the bad part: unknown parameter, empty list, a value of the wrong type or
        out of range, a parameter or value given twice, ``seed``/``threads`` in the grid,
        or an axis that only re-trades the same models (``cost_bps``, ``fill``,
        ``periods_per_year``).
    """
    known = _grid_fields()
    grid: dict[str, list] = {}
    for part in text.split():
        name_text, sep, values_text = part.partition("=")
        if not sep or not name_text:
            raise ConfigError(f"grid part {part!r}: expected NAME=VALUE1,VALUE2,...")
        name = name_text.strip().lstrip("-").lower().replace("-", "_")
        name = _ALIASES.get(name, name)
        if name in _FORBIDDEN:
            raise ConfigError(f"grid part {part!r}: {_FORBIDDEN[name]}")
        if name not in known:
            options = ", ".join([*sorted(n for n in known if n not in _FORBIDDEN), "model"])
            raise ConfigError(f"grid part {part!r}: unknown parameter {name_text!r} "
                              f"(known: {options})")
        if name in grid:
            raise ConfigError(f"grid part {part!r}: parameter {name!r} is given twice")
        raw = [v.strip() for v in values_text.split(",")]
        if not values_text.strip() or any(not v for v in raw):
            raise ConfigError(f"grid part {part!r}: empty value list (write {name_text}=V1,V2)")
        _section, cls, annotation = known[name]
        values: list = []
        for v in raw:
            try:
                value = _parse_value(v, annotation)
            except ValueError:
                raise ConfigError(f"grid part {part!r}: {name} value {v!r} is not "
                                  f"{_type_name(annotation)}") from None
            try:  # range and choice checks: the config class validates the value
                cls(**{name: value})
            except ConfigError as exc:
                raise ConfigError(f"grid part {part!r}: {exc}") from None
            if value in values:
                raise ConfigError(f"grid part {part!r}: value {v!r} is given twice")
            values.append(value)
        grid[name] = values
    return grid


def expand_grid(base: RunConfig, grid: dict[str, list], *, seeds: int = 1) -> list[Task]:
    """Every combination of ``grid`` values times ``seeds`` seeds, as tasks.

    Seeds are ``base.train.seed + 0 .. seeds - 1``; every run uses one torch thread.
    Configurations are numbered ``c01, c02, ...`` in grid order (first parameter slowest).
    """
    check_seeds(seeds)
    known = _grid_fields()
    for name in grid:
        if name not in known or name in _FORBIDDEN:
            raise ConfigError(f"grid parameter {name!r}: not a model, training or strategy field")
    combos = _distinct_combinations(base, grid)
    width = max(2, len(str(len(combos))))
    tasks: list[Task] = []
    for ci, params in enumerate(combos):
        changes: dict[str, dict[str, Any]] = {s: {} for s, _ in _SECTIONS}
        for name, value in params.items():
            changes[known[name][0]][name] = value
        config = RunConfig(
            data=base.data,
            split=base.split,
            model=base.model.replace(**changes["model"]),
            train=base.train.replace(**changes["train"]),
            strategy=base.strategy.replace(**changes["strategy"]),
        )
        tasks += [dataclasses.replace(t, label=format_params(params, t.seed))
                  for t in seed_tasks(config, seeds, first_index=len(tasks),
                                      config_id=f"c{ci + 1:0{width}d}", params=params)]
    return tasks


def _distinct_combinations(base: RunConfig, grid: dict[str, list]) -> list[dict[str, Any]]:
    """The grid's combinations in grid order, each one that trains a distinct model once.

    Only the Transformer has attention heads: a recurrent network's combination drops its
    ``heads`` value, so ``model=lstm,transformer heads=2,4`` trains the LSTM once (twice
    would be the same model counted as two trials).

    Raises
    ------
    ConfigError
        The grid varies ``heads`` but no combination is a Transformer.
    """
    names = list(grid)
    out: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    for combo in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, combo, strict=True))
        if params.get("kind", base.model.kind) != C.TRANSFORMER:
            params.pop("heads", None)
        key = tuple(params.items())
        if key not in seen:
            seen.add(key)
            out.append(params)
    if "heads" in grid and not any("heads" in p for p in out):
        raise ConfigError("grid part heads: only the Transformer has attention heads "
                          f"(add model={C.TRANSFORMER})")
    return out


def format_params(params: dict[str, Any], seed: int | None = None) -> str:
    """A configuration's or a run's label in the app's words, as the Sweep tab, the log,
    ``sweep.csv`` and ``summary.json`` show it: ``"network=gru hidden=16 lr=0.001 seed=3"``
    (``"base"`` for no params); see :data:`LABEL_NAMES`."""
    return _runs.format_params({LABEL_NAMES.get(k, k): v for k, v in params.items()}, seed)


# --- running ---------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """What a sweep produced: one row per run and the per-configuration summary."""

    runs: pd.DataFrame  # one row per run, in task order (sweep.csv)
    summary: dict  # aggregates, selection, n_trials, deflated Sharpe (summary.json)
    records: list[RunRecord] = field(default_factory=list)  # in completion order


def run_sweep(
    base: RunConfig,
    grid: dict[str, list],
    *,
    seeds: int = 5,
    jobs: int = 2,
    scheduler: str | None = None,
    on_result: OnResult = None,
    cancel: threading.Event | None = None,
    prices: Any = None,
    keep_predictions: bool = False,
    count_look: bool = False,
    _runner: Runner = None,
) -> SweepResult:
    """Run every configuration of ``grid`` (applied to ``base``) with ``seeds`` seeds.

    Parameters
    ----------
    base : RunConfig
        Data, split and every setting the grid does not vary.
    grid : dict[str, list]
        ``{field: values}`` as returned by :func:`parse_grid`; ``{}`` runs ``base`` alone
        (a seed ensemble).
    seeds : int
        Seeds per configuration: ``base.train.seed + 0 .. seeds - 1``.
    jobs, scheduler, on_result, cancel
        Where and how the runs execute, as :func:`sandbox.runs.run_all` (``jobs=1``: in
        this process; ``scheduler``: a Dask cluster; ``cancel``: raises :class:`Cancelled`).
    prices : LoadedPrices or None
        Prices already loaded for ``base.data`` (e.g. by the app); loaded here when None.
    keep_predictions : bool
        Bring each run's predictions frame back in :attr:`RunRecord.predictions` (a seed
        ensemble's mean and band); off by default to keep the transfer small.
    count_look : bool
        The caller shows the selection's test figures (the CLI's summary, the Sweep tab):
        count that look at the test split of this data (:mod:`sandbox.looks`, shared by
        every front end) and put the count in the summary as ``test_looks_on_this_data``.

    Returns
    -------
    SweepResult

    Raises
    ------
    ConfigError
        Bad grid, seeds or jobs; Dask requested but not installed.
    NetworkError
        The Dask scheduler could not be reached (within about 5 s).
    Cancelled
        ``cancel`` was set.
    DataError, NetworkError
        The prices could not be loaded (loaded once, here, before any run starts).
    """
    check_jobs(jobs)
    tasks = expand_grid(base, grid, seeds=seeds)
    cancel = cancel if cancel is not None else threading.Event()
    if cancel.is_set():
        raise Cancelled("sweep cancelled before it started")
    if prices is None:
        from sandbox.data import load_prices

        prices = load_prices(base.data)  # once, in the parent; every run gets this copy
    records = run_all(tasks, prices=prices, jobs=jobs, scheduler=scheduler,
                      on_result=on_result, cancel=cancel, keep_predictions=keep_predictions,
                      runner=_runner)
    position = {(t.config_id, t.seed): t.index for t in tasks}
    ordered = sorted(records, key=lambda r: position[r.config_id, r.seed])
    summary = summarize(ordered, base=base, grid=grid)
    if count_look:
        summary[TEST_LOOKS] = count_test_look(summary, prices)
    return SweepResult(runs=runs_frame(ordered), summary=summary, records=records)


#: summary key: how many times the test split of the sweep's data has been seen, this look
#: included (None when it could not be counted)
TEST_LOOKS = "test_looks_on_this_data"


def count_test_look(summary: dict[str, Any], prices: Any) -> int | None:
    """Count one look at the test split of ``prices`` for a summary that shows its
    selection's test figures (with their seed-mean per-bar Sharpe ratio); None when nothing
    was selected or the counts file cannot be written (the sweep's results stand)."""
    from sandbox import export, looks
    from sandbox.errors import SandboxError

    if summary.get("selected") is None:
        return None
    psr = summary.get("test_psr") or {}
    frame = getattr(prices, "frame", prices)
    try:
        return looks.record_look(export.fingerprint(frame),
                                 sharpe_per_bar=psr.get("sharpe_per_bar"),
                                 n=psr.get("n_returns"))
    except SandboxError:
        return None


# --- aggregation and selection ---------------------------------------------------------------

#: summary.json ``selected_by``: the one quantity every configuration is ranked by
SELECTED_BY = "val_rmse"
SELECTION_RULE = (
    "lowest validation RMSE of the predicted return (the target's units: log return per "
    "bar), computed for every configuration on the same dates, those every successful run "
    "has in its validation split with a prediction, an actual return and a strategy return; "
    "a configuration's figure is the mean over its seeds of each seed's RMSE on those dates; "
    "ties go to the higher mean validation Sharpe ratio on the same dates, then to grid "
    "order; a configuration with a failed seed only when none ran clean; the test split is "
    "not used to select"
)
SHARPE_PER_BAR = "sharpe_per_bar"
#: figures of one run on a set of dates (forecast, then trading): see :func:`run_figures`
_FIGURES = (C.RMSE, C.MAE, C.DIRECTIONAL_ACCURACY, C.TOTAL_RETURN, C.SHARPE, SHARPE_PER_BAR,
            C.MAX_DRAWDOWN, C.EXPOSURE, "skewness", "kurtosis", "n_returns")
_TABLE = (C.RMSE, C.SHARPE, C.TOTAL_RETURN)  # the figures a terminal line or a table shows


def _rows(record: RunRecord, split: str) -> SplitRows | None:
    if record.error is not None:
        return None
    return record.val_rows if split == C.VAL else record.test_rows


def common_dates(records: Sequence[RunRecord], split: str) -> np.ndarray:
    """The dates every successful run has in ``split`` with a prediction, an actual return
    and a strategy return (int64 nanoseconds, sorted).

    The window moves the split boundaries when they are fractions, and a purged row (one
    whose trading return uses the next split's prices) has no strategy return: the
    intersection is the one set of rows on which every configuration can be compared.
    Failed runs, records without rows and runs without a single usable row (e.g. a price
    target that predicted no positive level) do not narrow it; they have no figures.
    """
    common: np.ndarray | None = None
    for r in records:
        rows = _rows(r, split)
        if rows is None:
            continue
        dates = rows.dates[rows.usable()]
        if dates.size == 0:
            continue
        common = dates if common is None else np.intersect1d(common, dates, assume_unique=True)
    return np.empty(0, dtype=np.int64) if common is None else common


def _periods(record: RunRecord, dates: np.ndarray) -> float:
    if record.periods_per_year is not None:
        return float(record.periods_per_year)
    from sandbox.backtest import infer_periods_per_year

    return infer_periods_per_year(pd.DatetimeIndex(dates))


def run_figures(record: RunRecord, split: str, dates: np.ndarray) -> dict[str, Any]:
    """Forecast and trading figures of one run on ``dates`` of ``split``.

    ``rmse``, ``mae``, ``directional_accuracy`` of ``predicted_return`` against
    ``actual_return`` (as :func:`sandbox.evaluate.forecast_metrics`); the trading metrics of
    the run's own strategy returns on those rows (:func:`sandbox.backtest.trading_metrics`:
    the account as traded in the run's split, restricted to the dates); ``sharpe_per_bar``,
    ``skewness`` and (non-excess) ``kurtosis`` of those returns
    (:func:`sandbox.stats.return_moments`) and their count ``n_returns``. Empty when the run
    has no rows or misses one of the dates.
    """
    from sandbox.backtest import trading_metrics
    from sandbox.evaluate import forecast_metrics

    rows = _rows(record, split)
    if rows is None or dates.size == 0:
        return {}
    on = rows.on_dates(dates)
    if len(on) != dates.size:
        return {}
    out: dict[str, Any] = dict(forecast_metrics(on.predicted, on.actual))
    out.update(trading_metrics(on.strategy, on.position, periods_per_year=_periods(record, dates)))
    moments = stats.return_moments(on.strategy)
    out.update({SHARPE_PER_BAR: moments[SHARPE_PER_BAR], "skewness": moments["skewness"],
                "kurtosis": moments["kurtosis"], "n_returns": moments["n"]})
    return out


def _hold_figures(record: RunRecord, dates: np.ndarray) -> dict[str, Any]:
    """Buy and hold's total return and Sharpe ratio on the test ``dates`` (empty without)."""
    from sandbox.backtest import trading_metrics

    rows = _rows(record, C.TEST)
    if rows is None or rows.hold is None or dates.size == 0:
        return {}
    on = rows.on_dates(dates)
    metrics = trading_metrics(on.hold, np.ones(len(on)), periods_per_year=_periods(record, dates))
    return {k: metrics[k] for k in (C.TOTAL_RETURN, C.SHARPE)}


def _date_span(dates: np.ndarray) -> dict[str, Any]:
    def text(ns: int) -> str:
        ts = pd.Timestamp(int(ns))
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()

    if dates.size == 0:
        return {"first": None, "last": None, "n": 0}
    return {"first": text(dates[0]), "last": text(dates[-1]), "n": int(dates.size)}


def _trained_key(params: dict[str, Any]) -> tuple:
    """The grid values that change the trained model (a strategy field only re-trades it)."""
    fields = _grid_fields()
    return tuple((k, v) for k, v in params.items()
                 if k in fields and fields[k][0] in _TRAINED_SECTIONS)


def runs_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run: id, label, seed, grid values, error, seconds, val and test columns.

    Validation columns are prefixed ``val_`` (each run's own validation rows), test columns
    ``test_`` (never used to select); ``val_common_rmse`` and ``val_common_sharpe`` are the
    run's figures on the validation dates common to every run (the selection's dates).
    """
    rows = []
    param_names: list[str] = []
    for r in records:
        for k in r.params:
            if k not in param_names:
                param_names.append(k)
    val_dates = common_dates(records, C.VAL)
    for r in records:
        row: dict[str, Any] = {"config_id": r.config_id, "label": r.label, "seed": r.seed}
        row.update({k: r.params.get(k) for k in param_names})
        row["status"] = "failed" if r.error else "ok"
        row["error"] = r.error or ""
        row["seconds"] = r.seconds
        row["best_epoch"] = r.best_epoch
        row["val_loss"] = r.val_loss
        common = run_figures(r, C.VAL, val_dates)
        row["val_common_rmse"] = common.get(C.RMSE)
        row["val_common_sharpe"] = common.get(C.SHARPE)
        for k, v in r.val_metrics.items():
            row[f"val_{k}"] = v
        for k, v in r.test_metrics.items():
            row[f"test_{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)


def _selection_key(cfg: dict[str, Any]) -> tuple:
    rmse = cfg["val"][C.RMSE]["mean"]
    sharpe = cfg["val"][C.SHARPE]["mean"]
    return (
        cfg["n_failed"] > 0,  # a configuration with a failed seed only if nothing else ran clean
        math.inf if rmse is None else rmse,
        math.inf if sharpe is None else -sharpe,
        cfg["order"],
    )


def _seed_mean(figures: Sequence[dict[str, Any]], key: str) -> float | None:
    return stats.mean_std([f.get(key) for f in figures])["mean"]


def summarize(records: Sequence[RunRecord], *, base: RunConfig | None = None,
              grid: dict[str, list] | None = None) -> dict[str, Any]:
    """Per-configuration aggregates, the validation-only selection, its deflated Sharpe ratio
    and the probabilistic Sharpe ratio of its test returns.

    Selection (``selected_by: "val_rmse"``, see :data:`SELECTION_RULE`): the lowest
    validation RMSE of the predicted return on the validation dates every successful run
    shares (:func:`common_dates`), the mean over a configuration's seeds of each seed's
    RMSE; ties by higher mean validation Sharpe ratio on the same dates, then grid order.
    A configuration with a failed seed is chosen only when none ran clean. The test split
    is not looked at to select; the selected configuration's test figures are computed on
    the test dates every successful run shares (dates no configuration trained, stopped or
    was selected on), and every configuration's are in ``test_all_configs_for_reference_only``.

    Trials (for the deflated Sharpe ratio) are distinct trained configurations that ran:
    seeds are averaged, and configurations that differ only in a strategy field
    (``threshold_bps``, ``strategy``) re-trade the same model.
    """
    by_config: dict[str, list[RunRecord]] = {}
    for r in records:
        by_config.setdefault(r.config_id, []).append(r)
    dates = {split: common_dates(records, split) for split in (C.VAL, C.TEST)}
    figures = {split: {(r.config_id, r.seed): run_figures(r, split, dates[split])
                       for r in records if r.error is None}
               for split in dates}
    trial_ids: dict[tuple, str] = {}
    configs: list[dict[str, Any]] = []
    reference: list[dict[str, Any]] = []
    for order, (cid, runs) in enumerate(sorted(by_config.items())):
        ok = [r for r in runs if r.error is None]
        trial = trial_ids.setdefault(_trained_key(runs[0].params), f"t{len(trial_ids) + 1:02d}")
        val = stats.metric_stats([figures[C.VAL][cid, r.seed] for r in ok], _FIGURES)
        val["loss"] = stats.mean_std([r.val_loss for r in ok])  # each loss in its own units
        configs.append({
            "config_id": cid,
            "label": format_params(runs[0].params),
            "params": dict(runs[0].params),
            "trial_id": trial,
            "seeds": sorted(r.seed for r in runs),
            "n_runs": len(runs),
            "n_failed": len(runs) - len(ok),
            "errors": sorted({r.error for r in runs if r.error}),
            "val": val,
            "val_all_metrics": stats.metric_stats([r.val_metrics for r in ok]),
            "order": order,
        })
        reference.append({
            "config_id": cid,
            "label": format_params(runs[0].params),
            "test": stats.metric_stats([figures[C.TEST][cid, r.seed] for r in ok], _FIGURES),
        })
    eligible = [c for c in configs if c["n_runs"] > c["n_failed"]]
    trials: dict[str, list[dict[str, Any]]] = {}
    for c in eligible:
        trials.setdefault(c["trial_id"], []).append(c)
    n_trials = len(trials)
    selected: dict[str, Any] | None = None
    dsr: dict[str, Any] | None = None
    psr: dict[str, Any] | None = None
    note = None
    if eligible and dates[C.VAL].size == 0:
        note = ("no validation date is common to every configuration (windows too different "
                "for the data?): nothing is comparable, nothing selected")
    elif eligible:
        best = min(eligible, key=_selection_key)
        best_ok = [r for r in by_config[best["config_id"]] if r.error is None]
        test_figs = [figures[C.TEST][best["config_id"], r.seed] for r in best_ok]
        hold = [_hold_figures(r, dates[C.TEST]) for r in best_ok]
        selected = {
            "config_id": best["config_id"],
            "label": best["label"],
            "params": best["params"],
            "trial_id": best["trial_id"],
            "val": best["val"],
            "test": stats.metric_stats(test_figs, _FIGURES),
            "test_buy_and_hold": stats.metric_stats(hold, (C.TOTAL_RETURN, C.SHARPE)),
            "test_split_metrics": stats.metric_stats([r.test_metrics for r in best_ok]),
            "test_baselines": {
                name: stats.metric_stats([r.test_baselines.get(name, {}) for r in best_ok],
                                         (C.TOTAL_RETURN, C.SHARPE))
                for name in C.BASELINES
                if any(name in r.test_baselines for r in best_ok)
            },
        }
        # the Sharpe ratio each trained model brought to the selection: the variant the
        # rule takes among its re-trades (the same model, a different threshold)
        trial_sharpes = [min(group, key=_selection_key)["val"][SHARPE_PER_BAR]["mean"]
                         for group in trials.values()]
        val_figs = [figures[C.VAL][best["config_id"], r.seed] for r in best_ok]
        dsr = _deflated_summary(val_figs, trial_sharpes, n_trials, int(dates[C.VAL].size))
        psr = _test_psr_summary(test_figs, int(dates[C.TEST].size))
    spa = _spa_across_configs(eligible, by_config, dates[C.VAL])
    for c in configs:
        c.pop("order")
    return {
        "n_configs": len(configs),
        "n_runs": len(records),
        "n_failed": sum(1 for r in records if r.error),
        "n_trials": n_trials,
        "selected_by": SELECTED_BY,
        "selection_rule": SELECTION_RULE,
        "selection_note": note,
        "common_dates": {split: _date_span(d) for split, d in dates.items()},
        "grid": grid or {},
        "base_config": base.to_dict() if base is not None else None,
        "configs": configs,
        "selected": selected,
        "deflated_sharpe": dsr,
        "test_psr": psr,
        "spa": spa,
        TEST_FOR_REFERENCE: reference,
    }


def _spa_across_configs(eligible: Sequence[dict[str, Any]],
                        by_config: dict[str, list[RunRecord]],
                        dates: np.ndarray) -> dict[str, Any] | None:
    """Hansen's SPA on the common validation dates: is the best configuration's trading
    (each configuration's returns averaged over its seeds) better than buy & hold, allowing
    for how many configurations were tried? None without buy & hold's returns or dates."""
    columns, hold = [], None
    for c in eligible:
        rows = [r.on_dates(dates) for r in (_rows(rec, C.VAL) for rec in by_config[c["config_id"]])
                if r is not None]
        if not rows:
            continue
        columns.append(np.mean([r.strategy for r in rows], axis=0))
        if hold is None and rows[0].hold is not None:
            hold = rows[0].hold
    if hold is None or not columns or dates.size == 0:
        return None
    from sandbox import significance

    return significance.spa_members(hold, np.column_stack(columns), split=C.VAL,
                                    benchmark_name=C.BUY_AND_HOLD)


def _moments(figures: Sequence[dict[str, Any]], n_obs: int) -> dict[str, Any]:
    """Seed means of the per-bar Sharpe ratio, annualised Sharpe, skewness and kurtosis."""
    skew = _seed_mean(figures, "skewness")
    kurt = _seed_mean(figures, "kurtosis")
    return {"sharpe_per_bar": _seed_mean(figures, SHARPE_PER_BAR),
            "sharpe_annualized": _seed_mean(figures, C.SHARPE), "n_returns": n_obs,
            "skewness": 0.0 if skew is None else skew, "kurtosis": 3.0 if kurt is None else kurt}


def dsr_sentence(n_trials: int) -> str:
    """What the deflated Sharpe ratio of a sweep is the probability of."""
    tried = f"{n_trials} configuration{'s' if n_trials != 1 else ''} tried"
    return (f"probability that the selected configuration's true validation Sharpe ratio is "
            f"above 0, allowing for {tried} (distinct trained models; seeds averaged)")


PSR_SENTENCE = ("probability that the selected configuration's true test Sharpe ratio is "
                "above 0, given the test returns' length, skewness and kurtosis (one trial, "
                "benchmark 0: the test split selected nothing)")


def _deflated_summary(figures: Sequence[dict[str, Any]], trial_sharpes: Sequence[float | None],
                      n_trials: int, n_obs: int) -> dict[str, Any]:
    """DSR of the selected configuration's validation Sharpe ratio (seed mean, per bar, on
    the common validation dates) against ``n_trials`` trials whose Sharpe ratios (seed
    means, per bar, same dates) have the sample variance of ``trial_sharpes``."""
    spread = stats.mean_std(trial_sharpes)["std"]
    variance = spread**2 if spread is not None else 0.0
    out: dict[str, Any] = {
        "split": C.VAL,
        **_moments(figures, n_obs),
        "n_trials": n_trials,
        "trials_sharpe_variance": variance,
        "trials_sharpe_source": "per-bar validation Sharpe ratio on the common validation "
                                "dates of each distinct trained configuration, mean over its "
                                "seeds",
        "expected_max_sharpe_per_bar": stats.expected_max_sharpe(n_trials, variance),
        "probability_of": dsr_sentence(n_trials),
        "dsr": None,
    }
    if out["sharpe_per_bar"] is not None:
        out["dsr"] = stats.deflated_sharpe_ratio(
            out["sharpe_per_bar"], n_obs=n_obs, n_trials=n_trials, variance=variance,
            skewness=out["skewness"], kurtosis=out["kurtosis"])
    return out


def _test_psr_summary(figures: Sequence[dict[str, Any]], n_obs: int) -> dict[str, Any]:
    """PSR (benchmark 0, one trial) of the selected configuration's test Sharpe ratio (seed
    mean, per bar, on the common test dates)."""
    out: dict[str, Any] = {"split": C.TEST, **_moments(figures, n_obs),
                           "benchmark_sharpe_per_bar": 0.0, "n_trials": 1,
                           "probability_of": PSR_SENTENCE, "psr": None}
    if out["sharpe_per_bar"] is not None:
        out["psr"] = stats.probabilistic_sharpe_ratio(
            out["sharpe_per_bar"], n_obs=n_obs, skewness=out["skewness"],
            kurtosis=out["kurtosis"])
    return out


# --- output ----------------------------------------------------------------------------------


def write_sweep(result: SweepResult, out_dir: str | Path | Any) -> dict[str, Path]:
    """Write ``sweep.csv`` (one row per run) and ``summary.json`` into ``out_dir`` as one
    folder (:class:`sandbox.atomic.FolderWriter`; ``out_dir`` may be one the caller holds).

    Returns ``{"runs": path, "summary": path}``.
    """
    from sandbox import atomic

    def fill(tmp: Path) -> None:
        atomic.write_csv(tmp / SWEEP_CSV, result.runs, index=False)
        atomic.write_json(tmp / SUMMARY_JSON, result.summary)

    out = atomic.write_into(out_dir, fill)
    return {"runs": out / SWEEP_CSV, "summary": out / SUMMARY_JSON}


def _f(x: Any, spec: str = ".4g") -> str:
    return "n/a" if x is None else format(x, spec)


def format_mean_std(summary: dict[str, Any] | None, spec: str = ".4g",
                    std_spec: str | None = None) -> str:
    """``"mean ± std"`` of a :func:`sandbox.stats.mean_std` result (``"n/a"`` without a
    mean; the mean alone without a std). ``std_spec`` defaults to ``spec`` without a sign."""
    if not summary or summary.get("mean") is None:
        return "n/a"
    std = summary.get("std")
    text = format(summary["mean"], spec)
    return text if std is None else f"{text} ± {format(std, std_spec or spec.lstrip('+'))}"


def _span_text(summary: dict[str, Any], split: str) -> str:
    span = (summary.get("common_dates") or {}).get(split) or {}
    if not span.get("n"):
        return "no common dates"
    return f"{span['n']} common dates {span['first']} .. {span['last']}"


def describe(result: SweepResult) -> list[str]:
    """A few lines for a terminal: the selected configuration, its validation and test
    figures on the common dates, the number of trials, the deflated Sharpe ratio on
    validation and the probabilistic Sharpe ratio on test, each with what it is the
    probability of."""
    s = result.summary
    pm = format_mean_std
    lines = [f"{s['n_runs']} runs ({s['n_configs']} configurations), {s['n_failed']} failed"]
    sel = s.get("selected")
    if sel is None:
        lines.append(s.get("selection_note")
                     or "no configuration finished a run: nothing to select")
        return lines
    lines.append(f"selected on validation by {s['selected_by']} (lowest validation RMSE of "
                 f"the predicted return, mean over seeds): {sel['config_id']} {sel['label']}")
    v, t = sel["val"], sel["test"]
    lines.append(f"  val ({_span_text(s, C.VAL)}): rmse {pm(v.get(C.RMSE))}  total return "
                 f"{pm(v.get(C.TOTAL_RETURN))}  sharpe {pm(v.get(C.SHARPE))}")
    lines.append(f"  test ({_span_text(s, C.TEST)}): rmse {pm(t.get(C.RMSE))}  total return "
                 f"{pm(t.get(C.TOTAL_RETURN))}  sharpe {pm(t.get(C.SHARPE))}")
    bh = sel.get("test_buy_and_hold") or {}
    if (bh.get(C.TOTAL_RETURN) or {}).get("mean") is not None:
        lines.append(f"  test buy and hold (same dates): total return "
                     f"{pm(bh.get(C.TOTAL_RETURN))}  sharpe {pm(bh.get(C.SHARPE))}")
    d = s.get("deflated_sharpe") or {}
    p = s.get("test_psr") or {}
    lines.append(f"trials: {s['n_trials']} (distinct trained configurations)")
    lines.append(f"deflated Sharpe ratio (validation) DSR {_f(d.get('dsr'), '.3f')}: "
                 f"{dsr_sentence(s['n_trials'])}")
    lines.append(f"probabilistic Sharpe ratio (test) PSR {_f(p.get('psr'), '.3f')}: "
                 f"{PSR_SENTENCE}")
    spa = s.get("spa") or {}
    if spa.get("pvalue_consistent") is not None:
        lines.append(f"best of {spa['candidates']} configurations against buy and hold "
                     f"(validation, SPA): p {_f(spa['pvalue_consistent'], '.3f')}, "
                     + ("better than luck would make it" if spa["best_better"] else
                        "not better than the best of that many tries would be by luck"))
    return lines
