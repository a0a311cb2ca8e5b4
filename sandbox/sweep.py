"""Hyperparameter sweeps: grid parsing, expansion, honest selection and writing the results.

A grid such as ``"model=lstm,gru hidden=16,64 window=20,60 lr=1e-3"`` times N seeds is
expanded into :class:`~sandbox.runs.Task` objects, executed by :func:`sandbox.runs.run_all`
(in this process, loky worker processes or a Dask cluster), and streamed back as
:class:`~sandbox.runs.RunRecord` values in completion order. Aggregation is per configuration
(mean and std over seeds). The selection looks at the validation split only; the test
split is reported for the selected configuration, with a deflated Sharpe ratio
(Bailey & Lopez de Prado, 2014) that accounts for the number of trials. Test figures of
every configuration are kept apart, in a section labelled for reference only.

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

import pandas as pd

from sandbox import constants as C
from sandbox import stats
from sandbox.config import ModelConfig, RunConfig, StrategyConfig, TrainConfig
from sandbox.errors import Cancelled, ConfigError
from sandbox.runs import (
    OnResult,
    Runner,
    RunRecord,
    Task,
    check_jobs,
    check_seeds,
    format_params,
    run_all,
    seed_tasks,
)

SWEEP_CSV = "sweep.csv"
SUMMARY_JSON = "summary.json"
TEST_FOR_REFERENCE = "test_all_configs_for_reference_only"

#: CLI spellings and short names accepted in a grid, mapped to config field names
_ALIASES = {"model": "kind", "lr": "lr", "learning_rate": "lr"}
#: fields that a grid may not vary: seeds come from ``seeds=``, threads are fixed at 1
_FORBIDDEN = {
    "seed": "seeds are not a grid parameter: use --seeds N (seed = base seed + 0 .. N-1)",
    "threads": "threads are fixed at 1 per run so parallel workers do not oversubscribe",
}
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
        out of range, a parameter or value given twice, or ``seed``/``threads`` in the grid.
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
    names = list(grid)
    combos = list(itertools.product(*(grid[n] for n in names)))
    width = max(2, len(str(len(combos))))
    tasks: list[Task] = []
    for ci, combo in enumerate(combos):
        params = dict(zip(names, combo, strict=True))
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
        tasks += seed_tasks(config, seeds, first_index=len(tasks),
                            config_id=f"c{ci + 1:0{width}d}", params=params)
    return tasks


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
    return SweepResult(runs=runs_frame(ordered), summary=summarize(ordered, base=base, grid=grid),
                       records=records)


# --- aggregation and selection ---------------------------------------------------------------

_VAL_KEYS = (C.TOTAL_RETURN, C.SHARPE)


def runs_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run: id, label, seed, grid values, error, seconds, val and test columns.

    Validation columns are prefixed ``val_``, test columns ``test_`` (never used to select).
    """
    rows = []
    param_names: list[str] = []
    for r in records:
        for k in r.params:
            if k not in param_names:
                param_names.append(k)
    for r in records:
        row: dict[str, Any] = {"config_id": r.config_id, "label": r.label, "seed": r.seed}
        row.update({k: r.params.get(k) for k in param_names})
        row["status"] = "failed" if r.error else "ok"
        row["error"] = r.error or ""
        row["seconds"] = r.seconds
        row["best_epoch"] = r.best_epoch
        row["val_loss"] = r.val_loss
        for k, v in r.val_metrics.items():
            row[f"val_{k}"] = v
        for k, v in r.test_metrics.items():
            row[f"test_{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)


def _selection_key(cfg: dict[str, Any]) -> tuple:
    loss = cfg["val"]["loss"]["mean"]
    sharpe = cfg["val"][C.SHARPE]["mean"]
    return (
        cfg["n_failed"] > 0,  # a configuration with a failed seed only if nothing else ran clean
        math.inf if loss is None else loss,
        math.inf if sharpe is None else -sharpe,
        cfg["order"],
    )


def summarize(records: Sequence[RunRecord], *, base: RunConfig | None = None,
              grid: dict[str, list] | None = None) -> dict[str, Any]:
    """Per-configuration aggregates, the validation-only selection and the deflated Sharpe.

    Selection: the configuration with the lowest mean validation loss over its seeds
    (ties: higher mean validation Sharpe, then grid order); one with a failed seed is
    chosen only when no configuration ran clean. The test split is not looked at to
    select; test figures of every configuration are in ``test_all_configs_for_reference_only``.
    """
    by_config: dict[str, list[RunRecord]] = {}
    for r in records:
        by_config.setdefault(r.config_id, []).append(r)
    configs: list[dict[str, Any]] = []
    reference: list[dict[str, Any]] = []
    for order, (cid, runs) in enumerate(sorted(by_config.items())):
        ok = [r for r in runs if r.error is None]
        val = {"loss": stats.mean_std([r.val_loss for r in ok])}
        val.update(stats.metric_stats([r.val_metrics for r in ok], _VAL_KEYS))
        configs.append({
            "config_id": cid,
            "label": format_params(runs[0].params),
            "params": dict(runs[0].params),
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
            "test": stats.metric_stats([r.test_metrics for r in ok]),
        })
    eligible = [c for c in configs if c["n_runs"] > c["n_failed"]]
    selected: dict[str, Any] | None = None
    dsr: dict[str, Any] | None = None
    n_trials = len(records)
    if eligible:
        best = min(eligible, key=_selection_key)
        best_ok = [r for r in by_config[best["config_id"]] if r.error is None]
        selected = {
            "config_id": best["config_id"],
            "label": best["label"],
            "params": best["params"],
            "val": best["val"],
            "test": stats.metric_stats([r.test_metrics for r in best_ok]),
            "test_baselines": {
                name: stats.metric_stats([r.test_baselines.get(name, {}) for r in best_ok],
                                    (C.TOTAL_RETURN, C.SHARPE))
                for name in C.BASELINES
                if any(name in r.test_baselines for r in best_ok)
            },
        }
        dsr = _deflated_summary(best_ok, [r for r in records if r.error is None], n_trials)
    for c in configs:
        c.pop("order")
    return {
        "n_configs": len(configs),
        "n_runs": len(records),
        "n_failed": sum(1 for r in records if r.error),
        "n_trials": n_trials,
        "selection_rule": "lowest mean validation loss over seeds; ties by higher mean "
                          "validation sharpe; the test split is not used to select",
        "grid": grid or {},
        "base_config": base.to_dict() if base is not None else None,
        "configs": configs,
        "selected": selected,
        "deflated_sharpe": dsr,
        TEST_FOR_REFERENCE: reference,
    }


def _deflated_summary(selected_runs: Sequence[RunRecord], trial_runs: Sequence[RunRecord],
                      n_trials: int) -> dict[str, Any]:
    """DSR of the selected configuration's test Sharpe (mean over its seeds, per bar),
    with the variance of every trial's per-bar test Sharpe and the selected runs' mean
    skewness and kurtosis."""
    def per_bar(runs: Sequence[RunRecord], key: str) -> list[float]:
        return [float(r.test_returns[key]) for r in runs
                if r.test_returns.get(key) is not None and math.isfinite(r.test_returns[key])]

    sharpes = per_bar(selected_runs, "sharpe_per_bar")
    trials = per_bar(trial_runs, "sharpe_per_bar")
    n_obs = [int(r.test_returns.get("n", 0)) for r in selected_runs]
    skews = per_bar(selected_runs, "skewness")
    kurts = per_bar(selected_runs, "kurtosis")
    variance = stats.mean_std(trials)["std"]
    variance = variance**2 if variance is not None else 0.0
    out: dict[str, Any] = {
        "sharpe_annualized": stats.mean_std(
            [r.test_metrics.get(C.SHARPE) for r in selected_runs])["mean"],
        "sharpe_per_bar": None, "n_returns": min(n_obs) if n_obs else 0,
        "n_trials": n_trials, "trials_sharpe_variance": variance,
        "trials_sharpe_source": "per-bar test sharpe of every successful run",
        "expected_max_sharpe_per_bar": stats.expected_max_sharpe(n_trials, variance),
        "skewness": None, "kurtosis": None, "dsr": None,
    }
    if not sharpes:
        return out
    sr = math.fsum(sharpes) / len(sharpes)
    skew = math.fsum(skews) / len(skews) if skews else 0.0
    kurt = math.fsum(kurts) / len(kurts) if kurts else 3.0
    out.update(sharpe_per_bar=sr, skewness=skew, kurtosis=kurt,
               dsr=stats.deflated_sharpe_ratio(sr, n_obs=out["n_returns"], n_trials=n_trials,
                                         variance=variance, skewness=skew, kurtosis=kurt))
    return out


# --- output ----------------------------------------------------------------------------------


def write_sweep(result: SweepResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``sweep.csv`` (one row per run) and ``summary.json`` atomically into ``out_dir``.

    Returns ``{"runs": path, "summary": path}``.
    """
    from sandbox import atomic

    out = Path(out_dir)
    csv_path = atomic.write_csv(out / SWEEP_CSV, result.runs, index=False)
    json_path = atomic.write_json(out / SUMMARY_JSON, result.summary)
    return {"runs": csv_path, "summary": json_path}


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


def describe(result: SweepResult) -> list[str]:
    """A few lines for a terminal: the selected configuration, its validation and test
    figures, the number of trials and the deflated Sharpe ratio."""
    s = result.summary
    pm = format_mean_std
    lines = [f"{s['n_runs']} runs ({s['n_configs']} configurations), {s['n_failed']} failed"]
    sel = s.get("selected")
    if sel is None:
        lines.append("no configuration finished a run: nothing to select")
        return lines
    lines.append(f"selected on validation: {sel['config_id']} {sel['label']}")
    v, t = sel["val"], sel["test"]
    lines.append(f"  val:  loss {pm(v.get('loss'))}  total return "
                 f"{pm(v.get(C.TOTAL_RETURN))}  sharpe {pm(v.get(C.SHARPE))}")
    lines.append(f"  test: total return {pm(t.get(C.TOTAL_RETURN))}  sharpe "
                 f"{pm(t.get(C.SHARPE))}  rmse {pm(t.get(C.RMSE))}")
    bh = sel.get("test_baselines", {}).get(C.BUY_AND_HOLD)
    if bh:
        lines.append(f"  test buy and hold: total return {pm(bh.get(C.TOTAL_RETURN))}  "
                     f"sharpe {pm(bh.get(C.SHARPE))}")
    d = s.get("deflated_sharpe") or {}
    lines.append(f"trials: {s['n_trials']}; deflated Sharpe ratio (probability the test "
                 f"sharpe beats {s['n_trials']} zero-skill trials): {_f(d.get('dsr'), '.3f')}")
    return lines
