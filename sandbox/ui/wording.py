"""What the app says about data, runs and sweeps: status bar and Log tab sentences.

Plain functions of a config, a result, a record or a progress dict that return strings, so
the wording is read and tested in one place without a widget (``tests/ui/test_wording.py``).
No Qt here: the views (:mod:`sandbox.ui.progress`, :mod:`sandbox.ui.main_window`) only put
these strings where they belong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from sandbox import constants as C
from sandbox.config import RunConfig
from sandbox.errors import SplitTooSmall
from sandbox.evaluate import TRADING_BASELINES, best_baseline, finite_number
from sandbox.events import format_hms

if TYPE_CHECKING:
    import pandas as pd

    from sandbox.looks import LookEvidence

__all__ = [
    "BASELINE_NAMES",
    "EXPORT_PREDICTIONS_TIP",
    "NO_MODEL_TIP",
    "SAVE_MODEL_TIP",
    "SHOW_TEST_TIP",
    "SHOW_VALIDATION_TIP",
    "TEST_HIDDEN_TIP",
    "TRADING_BASELINES",
    "bar_name",
    "batch_status",
    "best_baseline",
    "ensemble_log",
    "ensemble_started_log",
    "ensemble_started_status",
    "ensemble_status",
    "epoch_log",
    "epoch_status",
    "evidence_lines",
    "evidence_tip",
    "failure_text",
    "finite_number",
    "format_number",
    "format_percent",
    "loaded_source",
    "loaded_text",
    "loading_text",
    "look_text",
    "member_log",
    "model_loaded_log",
    "model_loaded_status",
    "periods_text",
    "retraded_log",
    "retraded_status",
    "run_started_log",
    "run_started_status",
    "settings_text",
    "signed_percent",
    "split_too_small_text",
    "stopped_after",
    "strategy_text",
    "sweep_done_status",
    "sweep_opened_log",
    "sweep_opened_status",
    "sweep_run_log",
    "sweep_started_log",
    "sweep_started_status",
    "test_looked_log",
    "trained_log",
    "trained_status",
    "why_no_sweep",
    "why_no_test",
]

PLUS_MINUS = "\u00b1"
MIDDLE_DOT = "\u00b7"

# tooltips of File actions, as they are enabled or not
EXPORT_PREDICTIONS_TIP = "Write the predictions table as CSV or Parquet"
TEST_HIDDEN_TIP = ("Its test split is hidden: open the configuration selected on validation "
                   "(\u2605) to export predictions")
SAVE_MODEL_TIP = "Save the trained model (weights and settings)"
SHOW_TEST_TIP = ("Show the test split's figures of the run on screen. Tune on validation: "
                 "every look at the test split is counted for this data, and the count "
                 "deflates the Sharpe ratio shown with them")
SHOW_VALIDATION_TIP = "Back to the validation split's figures (no look is counted)"
NO_MODEL_TIP = ("This run keeps no model to save (an ensemble, or a sweep's run): train with "
                "Seeds 1 to save one")


# ============================================================== numbers =================
def signed_percent(x: float) -> str:
    """A return as a signed percentage with two decimals: ``0.0123`` -> ``"+1.23%"``."""
    return f"{x * 100:+.2f}%"


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


#: baseline names in sentences
BASELINE_NAMES: dict[str, str] = {
    C.RANDOM_WALK: "the random walk",
    C.MOMENTUM: "momentum",
    C.DRIFT: "drift",
    C.BUY_AND_HOLD: "buy & hold",
}
def _split_metrics(result: Any, split: str = C.VAL) -> dict:
    return result.metrics_by_split.get(split, {})


# ============================================================== bars ====================
def bar_name(index: pd.DatetimeIndex) -> str:
    """What one bar of ``index`` spans, for "the next ...": ``"day"``, ``"hour"``,
    ``"4-hour bar"``, ``"5-minute bar"``, ``"week"``, ``"month"``, ``"quarter"``, or
    ``"bar"`` when the spacing is irregular or unknown.

    Reads the median spacing of the first 2,001 bars (cheap on any frame: the UI thread
    calls it).
    """
    import pandas as pd

    if len(index) < 2:
        return "bar"
    step = np.diff(pd.DatetimeIndex(index[:2001]).as_unit("ns").asi8)
    step = step[step > 0]
    if step.size == 0:
        return "bar"
    seconds = float(np.median(step)) / 1e9
    minutes, days = seconds / 60.0, seconds / 86_400.0
    if days >= 0.75:
        return ("day" if days < 4 else "week" if days < 11 else "month" if days < 45
                else "quarter" if days < 135 else "bar")
    if minutes >= 60 and math.isclose(minutes % 60, 0, abs_tol=1e-6):
        hours = round(minutes / 60)
        return "hour" if hours == 1 else f"{hours}-hour bar"
    if minutes >= 1 and math.isclose(minutes, round(minutes), abs_tol=1e-6):
        return "minute" if round(minutes) == 1 else f"{round(minutes)}-minute bar"
    return "bar"


def periods_text(periods: Any) -> str:
    """How the Sharpe ratio and the CAGR were annualised, for a tooltip."""
    p = finite_number(periods)
    if p is None:
        return "annualised with the bars per year measured from the data's spacing"
    return f"annualised with P = {p:,.4g} bars per year"


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


# ============================================================== failures ================
#: what to change in the app when a split is too small, by split (the Data box's fields)
_SPLIT_FIX = {
    C.TRAIN: "a later Validation from date in the Data box",
    C.VAL: "an earlier Validation from date in the Data box",
    C.TEST: "an earlier Test from date in the Data box",
}


def split_too_small_text(error: SplitTooSmall) -> str:
    """A too-small split in the app's words: what is too small, then the side panel's
    controls that fix it (the error's own text names the command line's flags)."""
    fix = _SPLIT_FIX.get(error.split, "other Validation from/Test from dates in the Data box")
    return (f"{error.problem}: use a shorter Window in the Model box, {fix}, or load more "
            "data")


def failure_text(error: BaseException) -> str:
    """The sentence the app shows for a user error: the error's own message, except where
    the app has its own controls to name (a too-small split)."""
    if isinstance(error, SplitTooSmall):
        return split_too_small_text(error)
    return str(error)


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


def _vs_best(metrics: Mapping[str, Any]) -> str:
    best = best_baseline(metrics, C.RMSE, lower=True)
    if best is None:
        return "vs the best baseline n/a"
    return f"vs {BASELINE_NAMES[best[0]]} {best[1]:.6f} (the best baseline)"


def trained_status(result: Any, seconds: float) -> str:
    """A single run's result in one sentence: the model against the best forecasting
    baseline on validation (the test split is shown on request only)."""
    metrics = _split_metrics(result)
    model = metrics.get(C.MODEL, {})
    return (f"Trained in {format_hms(seconds)}: validation RMSE "
            f"{format_number(model.get(C.RMSE), 6)} {_vs_best(metrics)}; total return "
            f"{format_percent(model.get(C.TOTAL_RETURN))} after costs.")


def member_log(record: Any) -> str:
    """One seed of an ensemble finished (or failed): a RunRecord in one line."""
    if record.error:
        return f"seed {record.seed} failed: {record.error}"
    return (f"seed {record.seed} trained in {record.seconds:.1f} s: best validation loss "
            f"{format_number(record.val_loss)} at epoch {record.best_epoch}; validation RMSE "
            f"{format_number(record.val_metrics.get(C.RMSE), 6)}")


def ensemble_log(result: Any, seconds: float) -> str:
    failed = "".join(f"; seed {s} failed: {e}" for s, e in sorted(result.failed.items()))
    return f"trained a {result.n_seeds}-seed ensemble in {seconds:.1f} s{failed}"


def ensemble_status(result: Any, seconds: float) -> str:
    """An ensemble's result in one sentence: mean +- std over the seeds on validation."""
    stats = result.stats[C.VAL]
    rmse, total = stats[C.RMSE], stats[C.TOTAL_RETURN]
    failed = (f"; {len(result.failed)} seed(s) failed (see the Log)." if result.failed
              else ".")
    return (f"Trained {result.n_seeds} seeds in {format_hms(seconds)}: validation RMSE "
            f"{format_number(rmse['mean'], 6)} {PLUS_MINUS} {format_number(rmse['std'], 6)} "
            f"{_vs_best(_split_metrics(result))}; total return "
            f"{format_percent(total['mean'])} {PLUS_MINUS} "
            f"{format_percent(total['std']).lstrip('+')} after costs{failed}")


def stopped_after(seeds: int, members_done: int, last_epoch: dict | None) -> str:
    """How far a stopped training got: `` after 2 seed(s)``, `` after epoch 3`` or ``""``."""
    if seeds > 1:
        return f" after {members_done} seed(s)"
    return f" after epoch {int(last_epoch['epoch'])}" if last_epoch else ""


# ============================================================== shown runs ==============
def retraded_log(result: Any) -> str:
    model = _split_metrics(result).get(C.MODEL, {})
    return (f"re-traded ({strategy_text(result.config.strategy)}): validation total return "
            f"{format_percent(model.get(C.TOTAL_RETURN))}, sharpe "
            f"{format_number(model.get(C.SHARPE))}")


def retraded_status(result: Any) -> str:
    model = _split_metrics(result).get(C.MODEL, {})
    return (f"Paper trading updated: {strategy_text(result.config.strategy)}; model total "
            f"return {format_percent(model.get(C.TOTAL_RETURN))} on validation.")


def model_loaded_log(result: Any, folder: str) -> str:
    return (f"predicted {result.data.label} with the model saved in {folder} (no training); "
            "rows are labelled by the dates the model was trained with: train and val rows "
            "were seen in training, test rows are out of sample")


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


# ============================================================== the test split ==========
def look_text(count: int) -> str:
    """``"test split seen 4 times on this data"``."""
    times = "once" if count == 1 else "twice" if count == 2 else f"{count:,} times"
    return f"test split seen {times} on this data"


def why_no_test(*, has_result: bool, test_hidden: bool, has_test_rows: bool,
                training: bool, task: bool) -> str:
    """Why Show test results cannot run now (its tooltip); "" when it can."""
    return ("train a model first" if not has_result
            else "training is running" if training
            else "this sweep configuration was not the one selected on validation: its test "
                 "split stays hidden" if test_hidden
            else "this data has no out-of-sample rows for the model" if not has_test_rows
            else "wait for the export or other task to finish" if task else "")


def test_looked_log(result: Any, evidence: LookEvidence) -> str:
    model = _split_metrics(result, C.TEST).get(C.MODEL, {})
    return (f"showed the test split of {result.data.label} ({look_text(evidence.count)}): "
            f"RMSE {format_number(model.get(C.RMSE), 6)}, total return "
            f"{format_percent(model.get(C.TOTAL_RETURN))}, PSR "
            f"{format_number(evidence.psr, 3)}, deflated Sharpe "
            f"{format_number(evidence.dsr, 3)}")


def _probability(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.2f}"


def evidence_lines(evidence: LookEvidence, periods: Any = None) -> list[str]:
    """What the PSR and the deflated Sharpe ratio of a look at the test split are the
    probabilities of, in words (the lines under the Metrics table)."""
    ev = evidence
    moments = (f"per-bar Sharpe {format_number(ev.sharpe_per_bar, 4)}, skewness "
               f"{format_number(ev.skewness, 2)}, kurtosis {format_number(ev.kurtosis, 2)}")
    lines = [f"PSR {_probability(ev.psr)}: the probability that the model's true Sharpe "
             f"ratio is above 0, judged from {ev.n_obs:,} test returns ({moments})."]
    if ev.count <= 1:
        lines.append("Deflated Sharpe: first look at this test split, so nothing to deflate "
                     "yet; later looks will be discounted.")
    elif ev.dsr is None:
        lines.append(f"Deflated Sharpe n/a: {look_text(ev.count)}, but fewer than two of the "
                     "looks recorded a Sharpe ratio to measure their spread.")
    else:
        p = finite_number(periods)
        yearly = ("" if p is None or ev.expected_max_sharpe is None
                  else f" ({ev.expected_max_sharpe * math.sqrt(p):.2f} annualised)")
        lines.append(f"Deflated Sharpe {_probability(ev.dsr)}: the probability that it is "
                     f"above {format_number(ev.expected_max_sharpe, 4)} per bar{yearly}, the "
                     f"best Sharpe that {ev.n_trials:,} looks at zero-skill strategies would "
                     f"show by luck ({look_text(ev.count)}).")
    return lines


def evidence_tip(evidence: LookEvidence) -> str:
    """The tooltip of the PSR / deflated Sharpe line: how they are computed."""
    return ("Probabilistic Sharpe ratio (Bailey & Lopez de Prado, 2012): the probability "
            "that the true per-bar Sharpe ratio of the model's strategy exceeds 0, given the "
            "number of test returns, their skewness and kurtosis. It is not the probability "
            "of a profit, and it assumes this was the only look.\n"
            "Deflated Sharpe ratio (2014): the same probability against the best Sharpe "
            "ratio that as many looks as the test split has had would give by luck (their "
            "number is the number of trials; the variance of the per-bar test Sharpe ratios "
            f"recorded at each look is the variance across trials). Trials: {evidence.n_trials:,}"
            "; shared with 'sandbox train', which counts its looks too.")


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
        f"val rmse {format_number(record.val_metrics.get(C.RMSE))}, val sharpe "
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
