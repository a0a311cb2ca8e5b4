"""What the app says about data, runs and sweeps: status bar and Log tab sentences.

Plain functions of a config, a result, a record or a progress dict that return strings, so
the wording is read and tested in one place without a widget (``tests/ui/test_wording.py``).
No Qt here: the views (:mod:`sandbox.ui.progress`, :mod:`sandbox.ui.main_window`) only put
these strings where they belong.
"""

from __future__ import annotations

import math
from typing import Any

from sandbox import constants as C
from sandbox.config import RunConfig
from sandbox.evaluate import KEY_BASELINES
from sandbox.events import format_hms

__all__ = [
    "EXPORT_PREDICTIONS_TIP",
    "NO_MODEL_TIP",
    "SAVE_MODEL_TIP",
    "TEST_HIDDEN_TIP",
    "batch_status",
    "ensemble_log",
    "ensemble_started_log",
    "ensemble_started_status",
    "ensemble_status",
    "epoch_log",
    "epoch_status",
    "finite_number",
    "format_number",
    "format_percent",
    "loaded_source",
    "loaded_text",
    "loading_text",
    "member_log",
    "model_loaded_log",
    "model_loaded_status",
    "retraded_log",
    "retraded_status",
    "run_started_log",
    "run_started_status",
    "settings_text",
    "signed_percent",
    "stopped_after",
    "strategy_text",
    "sweep_done_status",
    "sweep_opened_log",
    "sweep_opened_status",
    "sweep_run_log",
    "sweep_started_log",
    "sweep_started_status",
    "trained_log",
    "trained_status",
    "why_no_sweep",
]

PLUS_MINUS = "\u00b1"
MIDDLE_DOT = "\u00b7"

# tooltips of File actions, as they are enabled or not
EXPORT_PREDICTIONS_TIP = "Write the predictions table as CSV or Parquet"
TEST_HIDDEN_TIP = ("Its test split is hidden: open the configuration selected on validation "
                   "(\u2605) to export predictions")
SAVE_MODEL_TIP = "Save the trained model (weights and settings)"
NO_MODEL_TIP = ("This run keeps no model to save (an ensemble, or a sweep's run): train with "
                "Seeds 1 to save one")


# ============================================================== numbers =================
def signed_percent(x: float) -> str:
    """A return as a signed percentage with two decimals: ``0.0123`` -> ``"+1.23%"``."""
    return f"{x * 100:+.2f}%"


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite int or float (not a bool); else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def format_number(value: Any, decimals: int | None = None) -> str:
    """A metric for a sentence: ``decimals`` places, or 4 significant digits; "n/a" when it
    is not a finite number."""
    if finite_number(value) is None:
        return "n/a"
    if decimals is not None:
        return f"{value:.{decimals}f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_percent(value: Any) -> str:
    """A return as a signed percentage; "n/a" when it is not a finite number."""
    return "n/a" if finite_number(value) is None else signed_percent(value)


def strategy_text(strategy: Any) -> str:
    """A StrategyConfig in words: rule, threshold, cost and fill."""
    rule = "long/flat" if strategy.strategy == C.LONG_FLAT else "long/short"
    fill = "next open" if strategy.fill == C.FILL_NEXT_OPEN else "same close"
    return (f"{rule}, threshold {strategy.threshold_bps:g} bps, cost {strategy.cost_bps:g} bps, "
            f"fill at {fill}")


def _random_walk(result: Any) -> dict:
    return result.metrics.get(KEY_BASELINES, {}).get(C.RANDOM_WALK, {})


# ============================================================== data ====================
def loading_text(spec: Any) -> str:
    """The data panel's note while ``spec`` (a DataSpec) loads: "downloading ..." or
    "loading ..."."""
    what = "downloading" if spec.kind == C.SOURCE_YAHOO else "loading"
    return f"{what} {spec.label}..."


def _cached_when(loaded: Any) -> str:
    return str(loaded.cached_at or "an earlier download")[:16].replace("T", " ")


def loaded_text(loaded: Any) -> str:
    """The data panel's note on loaded prices (two lines when they came from the cache)."""
    frame = loaded.frame
    first, last = frame.index[0], frame.index[-1]
    text = f"{loaded.label}: {len(frame):,} bars, {first:%Y-%m-%d} .. {last:%Y-%m-%d}"
    if loaded.from_cache:
        text += f"\ncached data from {_cached_when(loaded)} (the download failed)"
    return text


def loaded_source(loaded: Any) -> str:
    """The status bar's permanent note on the prices shown."""
    source = f"{loaded.label} {MIDDLE_DOT} {len(loaded.frame):,} bars"
    if loaded.from_cache:
        source += f" {MIDDLE_DOT} cached data from {_cached_when(loaded)}"
    return source


# ============================================================== training ================
def settings_text(config: RunConfig) -> str:
    """The model and training settings of a run, for the log."""
    model, train = config.model, config.train
    return (f"{model.kind} window={model.window} hidden={model.hidden} layers={model.layers} "
            f"dropout={model.dropout:g} epochs={train.epochs} patience={train.patience} "
            f"batch={train.batch_size} lr={train.lr:g}")


def run_started_status(config: RunConfig) -> str:
    """The status of a single run that just started."""
    model, train = config.model, config.train
    return (f"Training {model.kind.upper()} (window {model.window}, hidden {model.hidden}, "
            f"{model.layers} layer(s)) for up to {train.epochs} epochs...")


def run_started_log(config: RunConfig, data_label: str) -> str:
    return f"training {settings_text(config)} seed={config.train.seed} on {data_label}"


def ensemble_started_status(config: RunConfig, seeds: int, jobs: int) -> str:
    """The status of a seed ensemble that just started."""
    first = config.train.seed
    return (f"Training {seeds} {config.model.kind.upper()} models (seeds {first}.."
            f"{first + seeds - 1}) in {jobs} worker process(es); each shows up as it "
            "finishes...")


def ensemble_started_log(config: RunConfig, seeds: int, jobs: int, data_label: str) -> str:
    first = config.train.seed
    return (f"training a {seeds}-seed ensemble: {settings_text(config)} "
            f"seeds={first}..{first + seeds - 1} in {jobs} process(es), 1 torch thread each, "
            f"on {data_label}")


def batch_status(position: float, loss: float, samples_per_s: float, epochs: int,
                 eta_s: float, last_epoch: dict | None = None) -> str:
    """The status while an epoch runs: where it is, the batch loss, the last epoch's losses
    (once there is one), the speed and the ETA."""
    text = f"epoch {math.ceil(position)}/{epochs}  batch loss {loss:.4g}"
    if last_epoch is not None:
        text += f"  train {last_epoch['train_loss']:.4g}  val {last_epoch['val_loss']:.4g}"
    return f"{text}  {samples_per_s:,.0f} samples/s  ETA {format_hms(eta_s)}"


def epoch_status(info: dict) -> str:
    """The status once an epoch ended (``info``: a TrainWorker's ``epoch_done`` dict)."""
    return (f"epoch {int(info['epoch'])}/{int(info['epochs'])}  train {info['train_loss']:.4g}"
            f"  val {info['val_loss']:.4g}  {info['samples_per_s']:,.0f} samples/s  "
            f"ETA {format_hms(info['eta_s'])}")


def epoch_log(info: dict) -> str:
    best = " (best)" if info["val_loss"] <= info["best_val_loss"] else ""
    return (f"epoch {int(info['epoch'])}/{int(info['epochs'])}: train {info['train_loss']:.5g}, "
            f"val {info['val_loss']:.5g}{best}, {info['samples_per_s']:,.0f} samples/s")


def trained_log(history: Any, seconds: float) -> str:
    """The log line once a single run was trained (``history``: its TrainHistory)."""
    stopped = " (early stop)" if history.stopped_early else ""
    return (f"trained {history.epochs_run} epoch(s){stopped} in {seconds:.1f} s; best "
            f"validation loss {history.best_val_loss:.5g} at epoch {history.best_epoch}")


def trained_status(result: Any, seconds: float) -> str:
    """A single run's result in one sentence: the model against the random walk on test."""
    model = result.metrics.get(C.MODEL, {})
    return (f"Trained in {format_hms(seconds)}: test RMSE "
            f"{format_number(model.get(C.RMSE), 6)} vs random walk "
            f"{format_number(_random_walk(result).get(C.RMSE), 6)}; total return "
            f"{format_percent(model.get(C.TOTAL_RETURN))} after costs.")


def member_log(record: Any) -> str:
    """One seed of an ensemble finished (or failed): a RunRecord in one line."""
    if record.error:
        return f"seed {record.seed} failed: {record.error}"
    return (f"seed {record.seed} trained in {record.seconds:.1f} s: best validation loss "
            f"{format_number(record.val_loss)} at epoch {record.best_epoch}; test RMSE "
            f"{format_number(record.test_metrics.get(C.RMSE), 6)}")


def ensemble_log(result: Any, seconds: float) -> str:
    failed = "".join(f"; seed {s} failed: {e}" for s, e in sorted(result.failed.items()))
    return f"trained a {result.n_seeds}-seed ensemble in {seconds:.1f} s{failed}"


def ensemble_status(result: Any, seconds: float) -> str:
    """An ensemble's result in one sentence: mean +- std over the seeds on test."""
    stats = result.stats[C.TEST]
    rmse, total = stats[C.RMSE], stats[C.TOTAL_RETURN]
    failed = (f"; {len(result.failed)} seed(s) failed (see the Log)." if result.failed
              else ".")
    return (f"Trained {result.n_seeds} seeds in {format_hms(seconds)}: test RMSE "
            f"{format_number(rmse['mean'], 6)} {PLUS_MINUS} {format_number(rmse['std'], 6)} vs "
            f"random walk {format_number(_random_walk(result).get(C.RMSE), 6)}; total return "
            f"{format_percent(total['mean'])} {PLUS_MINUS} "
            f"{format_percent(total['std']).lstrip('+')} after costs{failed}")


def stopped_after(seeds: int, members_done: int, last_epoch: dict | None) -> str:
    """How far a stopped training got: `` after 2 seed(s)``, `` after epoch 3`` or ``""``."""
    if seeds > 1:
        return f" after {members_done} seed(s)"
    return f" after epoch {int(last_epoch['epoch'])}" if last_epoch else ""


# ============================================================== shown runs ==============
def retraded_log(result: Any) -> str:
    model = result.metrics.get(C.MODEL, {})
    return (f"re-traded ({strategy_text(result.config.strategy)}): total return "
            f"{format_percent(model.get(C.TOTAL_RETURN))}, sharpe "
            f"{format_number(model.get(C.SHARPE))}")


def retraded_status(result: Any) -> str:
    model = result.metrics.get(C.MODEL, {})
    return (f"Paper trading updated: {strategy_text(result.config.strategy)}; model total "
            f"return {format_percent(model.get(C.TOTAL_RETURN))}.")


def model_loaded_log(result: Any, folder: str) -> str:
    return (f"predicted {result.data.label} with the model saved in {folder} (no training); "
            "rows are labelled with the model's own split rule, so on data it never saw every "
            "row is out of sample")


def model_loaded_status(result: Any, folder: str) -> str:
    return (f"Predictions from the saved {result.config.model.kind.upper()} model in "
            f"{folder}.")


def sweep_opened_log(result: Any, config_id: str) -> str:
    return (f"opened sweep configuration {config_id} (seeds "
            f"{', '.join(map(str, result.seeds))}); the side panel now holds its settings")


def sweep_opened_status(result: Any, config_id: str) -> str:
    hidden = ("; validation only: its test split stays hidden because another configuration "
              "was selected" if result.test_hidden else "")
    return (f"Showing sweep configuration {config_id}: {result.n_seeds} seed(s) "
            f"averaged{hidden}.")


# ============================================================== sweeps ==================
def _grid_text(grid: dict) -> str:
    from sandbox import sweep

    return sweep.format_params({k: ",".join(map(str, v)) for k, v in grid.items()})


def sweep_started_status(n_runs: int, grid: dict, seeds: int, jobs: int) -> str:
    return (f"Sweep: {n_runs} runs ({_grid_text(grid)}, {seeds} seed(s)) in {jobs} "
            "process(es)...")


def sweep_started_log(n_runs: int, grid: dict, seeds: int, jobs: int, data_label: str) -> str:
    return (f"sweep started: {n_runs} runs, grid {_grid_text(grid)}, {seeds} seed(s) per "
            f"configuration, {jobs} process(es), on {data_label}")


def sweep_run_log(record: Any) -> str:
    """One run of a sweep finished (or failed): a RunRecord in one line."""
    outcome = f"failed: {record.error}" if record.error else (
        f"val loss {format_number(record.val_loss)}, val sharpe "
        f"{format_number(record.val_metrics.get(C.SHARPE))}")
    return (f"sweep run {record.done}/{record.total} {record.config_id} {record.label}: "
            f"{outcome} ({record.seconds:.1f} s)")


def sweep_done_status(summary: dict, seconds: float) -> str:
    """A finished sweep in one sentence (``summary``: its summary.json)."""
    selected = (summary.get("selected") or {}).get("config_id")
    return (f"Sweep finished in {format_hms(seconds)}"
            + (f"; {selected} selected on validation. Open it to see it on the chart."
               if selected else "; no run finished."))


def why_no_sweep(*, has_data: bool, training: bool, loading: bool, task: bool,
                 form_error: str | None) -> str:
    """Why the Sweep tab cannot run now (its Run button's tooltip); "" when it can."""
    return ("load data first" if not has_data else "training is running" if training
            else "data is loading" if loading
            else "wait for the export or other task to finish" if task
            else f"fix the side panel: {form_error}" if form_error else "")
