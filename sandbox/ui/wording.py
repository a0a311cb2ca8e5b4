"""What the app says about data, runs and sweeps: status bar and Log tab sentences, and the
Metrics tab's words on the tests of significance (p-values, intervals, the cost curve).

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
    "SAVE_WALK_FORWARD_TIP",
    "SHOW_TEST_TIP",
    "SHOW_VALIDATION_TIP",
    "TEST_HIDDEN_TIP",
    "TRADING_BASELINES",
    "WALK_FORWARD_COUNTING",
    "WALK_FORWARD_NO_VALIDATION",
    "bar_name",
    "batch_status",
    "best_baseline",
    "cost_text",
    "dm_cell",
    "dm_phrase",
    "dm_tip",
    "echo_tip",
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
    "hit_rate_tip",
    "interval_text",
    "loaded_source",
    "loaded_text",
    "loading_text",
    "look_text",
    "member_log",
    "model_loaded_log",
    "model_loaded_status",
    "p_text",
    "periods_text",
    "retraded_log",
    "retraded_status",
    "run_started_log",
    "run_started_status",
    "settings_text",
    "sharpe_tip",
    "signed_percent",
    "significance_of",
    "spa_tip",
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
    "tests_legend",
    "tests_text",
    "total_return_tip",
    "trained_log",
    "trained_status",
    "walk_forward_text",
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


#: the Metrics and Folds tabs of a walk-forward run before its look is counted
WALK_FORWARD_COUNTING = ("Walk-forward: counting the look at its out-of-sample predictions "
                         "before they are shown...")
#: File > Save model... for a walk-forward run
SAVE_WALK_FORWARD_TIP = ("Save the walk-forward run into a folder, as sandbox train "
                         "--walk-forward --out writes it: the newest fold's model (loadable "
                         "with Load model), every fold's model under folds/, "
                         "predictions.csv with each row's fold, and metrics.json")
#: why a walk-forward run has no Back to validation
WALK_FORWARD_NO_VALIDATION = ("a walk-forward run predicts out-of-sample bars only: each "
                              "fold validated on its own bars, and there is no validation "
                              "split to go back to")


def walk_forward_text(config: RunConfig) -> str:
    """A walk-forward run's settings in words ("" for a single split)."""
    walk = config.walk_forward
    if walk is None:
        return ""
    start = (f"{walk.start:.0%} of the way through the rows" if isinstance(walk.start, float)
             else walk.start)
    window = ("expanding window" if walk.train_length is None
              else f"rolling {walk.train_length:,}-bar window")
    warm = (f"warm start (at most {walk.warm_epochs} epochs a fold, folds in sequence)"
            if walk.warm_start else "cold folds in parallel")
    return (f"walk-forward from {start}, retrained every {walk.retrain_every} bars, "
            f"{window}, {walk.val_length} validation bars a fold, {warm}")


def run_started_status(config: RunConfig) -> str:
    """The status of a single run (or a walk-forward run) that just started."""
    model, train = config.model, config.train
    if config.walk_forward is not None:
        return (f"Walk-forward: training {model.kind.upper()} models fold by fold "
                f"({walk_forward_text(config).removeprefix('walk-forward ')})...")
    return (f"Training {model.kind.upper()} (window {model.window}, hidden {model.hidden}, "
            f"{model.layers} layer(s)) for up to {train.epochs} epochs...")


def run_started_log(config: RunConfig, data_label: str) -> str:
    walk = f"; {walk_forward_text(config)}" if config.walk_forward is not None else ""
    return f"training {settings_text(config)} seed={config.train.seed} on {data_label}{walk}"


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
    folds = getattr(result, "folds", None)
    if getattr(result, "walk_forward", None) and folds is not None:
        bars = len(result.predictions)
        return (f"Walk-forward done in {format_hms(seconds)}: {len(folds)} folds predicted "
                f"{bars:,} out-of-sample bars. Showing them counts a look at this data...")
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
    what = ("the walk-forward out-of-sample rows" if getattr(result, "walk_forward", None)
            else "the test split")
    return (f"showed {what} of {result.data.label} ({look_text(evidence.count)}): "
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
                 form_error: str | None, walk_forward: bool = False) -> str:
    """Why the Sweep tab cannot run now (its Run button's tooltip); "" when it can."""
    return ("load data first" if not has_data else "training is running" if training
            else "data is loading" if loading
            else "a sweep chooses on one validation split: set Evaluation to Single split "
                 "in the Model box" if walk_forward
            else "wait for the export or other task to finish" if task
            else f"fix the side panel: {form_error}" if form_error else "")


# ============================================================== tests of significance ===
# The Metrics tab's words on a split's "significance" object (sandbox.significance): what
# each p-value and interval says, in plain words. Every figure may be None (too few rows, a
# test that is undefined); a function then says so or returns "".


def significance_of(metrics: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A split's tests of significance (``metrics["significance"]``), or None: for results
    saved before there were any, for a split without a row to test, and for an object of
    another split than the figures' (one split's tests never stand beside another's)."""
    sig = metrics.get(C.SIGNIFICANCE)
    if not isinstance(sig, Mapping):
        return None
    split, own = sig.get(C.SPLIT), metrics.get(C.SPLIT)
    if split is not None and own is not None and split != own:
        return None
    rows = sig.get("rows")
    if not isinstance(rows, Mapping) or not any((finite_number(rows.get(k)) or 0) > 0
                                                for k in ("forecast", "trading")):
        return None
    return sig


def _level(sig: Mapping[str, Any]) -> float:
    level = finite_number(sig.get("level"))
    return level if level is not None and 0 < level < 1 else 0.95


def _rows(sig: Mapping[str, Any], kind: str) -> int:
    rows = sig.get("rows")
    return int(finite_number(rows.get(kind)) or 0) if isinstance(rows, Mapping) else 0


def p_text(p: Any) -> str:
    """A p-value for a cell or a sentence: ``"0.41"``, ``"0.003"``, ``"< 0.001"``; "n/a"
    when it is not a number."""
    v = finite_number(p)
    if v is None:
        return "n/a"
    return "< 0.001" if v < 0.001 else f"{v:.3f}" if v < 0.01 else f"{v:.2f}"


def _p_is(p: Any) -> str:
    text = p_text(p)
    return text if text.startswith("<") else f"= {text}"


def _dm(sig: Mapping[str, Any], name: str, loss: str = "mse") -> Mapping[str, Any]:
    return ((sig.get("dm") or {}).get(name) or {}).get(loss) or {}


def _dm_figures(test: Mapping[str, Any]) -> tuple[float, float, float] | None:
    two, better, stat = (finite_number(test.get(k))
                         for k in ("pvalue", "pvalue_better", "statistic"))
    if two is None or better is None or stat is None:
        return None
    return two, better, stat


def _dm_outcome(test: Mapping[str, Any], alpha: float) -> str | None:
    """"better", "worse" or "" (no difference at ``alpha``) as significance.verdict reads a
    DM test: better on the one-sided p, worse on the two-sided; None: no test."""
    figures = _dm_figures(test)
    if figures is None:
        return None
    two, better, stat = figures
    return "better" if better < alpha else "worse" if two < alpha and stat > 0 else ""


def dm_cell(sig: Mapping[str, Any], name: str) -> str:
    """The "DM p" cell of baseline ``name``'s row: the two-sided p-value of the model's
    squared errors against the baseline's, with "better" / "worse" when the model's are
    significantly smaller / larger; "n/a" when there is no test."""
    test = _dm(sig, name)
    outcome = _dm_outcome(test, 1 - _level(sig))
    if outcome is None:
        return "n/a"
    p = p_text(test.get("pvalue"))
    return f"{p} {outcome}" if outcome else p


def _dm_reading(outcome: str) -> str:
    return {"better": "the model's errors are significantly smaller",
            "worse": "the model's errors are significantly larger"}.get(
        outcome, "the difference could well be luck")


def dm_phrase(sig: Mapping[str, Any], name: str) -> str | None:
    """The DM test against ``name`` in a clause for the verdict: "Diebold-Mariano p = 0.41,
    two-sided: the difference could well be luck"; None when there is no test."""
    test = _dm(sig, name)
    outcome = _dm_outcome(test, 1 - _level(sig))
    if outcome is None:
        return None
    p, side = ((test.get("pvalue_better"), "one-sided") if outcome == "better"
               else (test.get("pvalue"), "two-sided"))
    return f"Diebold-Mariano p {_p_is(p)}, {side}: {_dm_reading(outcome)}"


def dm_tip(sig: Mapping[str, Any], name: str) -> str:
    """The tooltip of baseline ``name``'s "DM p" cell: both losses, both p-values, in words."""
    who = BASELINE_NAMES.get(name, name)
    whose = f"{who}'s"
    level = _level(sig)
    test = _dm(sig, name)
    outcome = _dm_outcome(test, 1 - level)
    n = _rows(sig, "forecast")
    if outcome is None:
        why = (f"fewer than 3 rows to compare ({n})" if n < 3 else
               f"the model's squared errors equal {whose} on every row (it forecasts the "
               "same)")
        return f"No Diebold-Mariano test against {who}: {why}."
    text = (f"Diebold-Mariano test of the model's squared errors against {whose}, "
            f"HLN-corrected, on {n:,} rows: p {_p_is(test.get('pvalue'))} (two-sided) \u2014 "
            f"{'significant' if outcome else 'not significant'} at {1 - level:.0%}: "
            f"{_dm_reading(outcome)}. The one-sided p that the model's errors are smaller: "
            f"{p_text(test.get('pvalue_better'))}.")
    absolute = _dm_figures(_dm(sig, name, "mae"))
    if absolute is not None:
        text += (f" With absolute errors: p {_p_is(absolute[0])} (two-sided), "
                 f"{p_text(absolute[1])} (one-sided).")
    return text


def _pair(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    lo, hi = (finite_number(v) for v in value)
    return None if lo is None or hi is None else (lo, hi)


def interval_text(value: Any, fmt: Any) -> str:
    """An interval ``[low, high]`` in a cell, each end written by ``fmt``; "" when there is
    none."""
    pair = _pair(value)
    return "" if pair is None else f"[{fmt(pair[0])}, {fmt(pair[1])}]"


def _zero_reading(pair: tuple[float, float], gain: str, loss: str) -> str:
    lo, hi = pair
    if lo > 0:
        return f"above 0 throughout: {gain} is unlikely to be luck"
    if hi < 0:
        return f"below 0 throughout: {loss} is unlikely to be luck"
    return f"it includes 0: {gain} or {loss} could well be luck"


def _bootstrap_how(sig: Mapping[str, Any]) -> str:
    reps = int(finite_number(sig.get("reps")) or 0)
    block = int(finite_number(sig.get("block_length")) or 1)
    return (f"stationary bootstrap of the {_rows(sig, 'trading'):,} trading returns, "
            f"{reps:,} resamples, mean block {block} bar{'s' if block != 1 else ''}")


def hit_rate_tip(sig: Mapping[str, Any]) -> str:
    """The model's Direction cell: the Wilson interval of the hit rate and the
    Pesaran-Timmermann test of the calls against chance."""
    level = _level(sig)
    parts = []
    pair = _pair(sig.get("hit_rate_ci"))
    if pair is not None:
        parts.append(f"{level:.0%} Wilson interval of the hit rate: {pair[0] * 100:.1f}% .. "
                     f"{pair[1] * 100:.1f}% over {_rows(sig, 'direction'):,} bars with a move")
    pt = sig.get("pesaran_timmermann") or {}
    two, better = finite_number(pt.get("pvalue")), finite_number(pt.get("pvalue_better"))
    if two is None or better is None:
        parts.append("no Pesaran-Timmermann test (every actual or every predicted direction "
                     "is the same, or too few rows)")
    else:
        alpha = 1 - level
        stat = finite_number(pt.get("statistic")) or 0.0
        reading = ("the model calls directions better than chance" if better < alpha
                   else "its calls are significantly worse than chance" if two < alpha
                   and stat < 0 else "no evidence that it calls directions better than "
                   "chance")
        parts.append(f"Pesaran-Timmermann test of the calls against chance: p {_p_is(better)} "
                     f"(one-sided, better than chance), p {_p_is(two)} (two-sided) \u2014 "
                     f"{reading}")
    return "; ".join(parts) + "."


def total_return_tip(sig: Mapping[str, Any]) -> str:
    """The model's Total return cell: its bootstrap interval and the share of resamples in
    which it beats buy & hold and the best baseline."""
    level = _level(sig)
    pair = _pair(sig.get("total_return_ci"))
    if pair is None:
        return "No bootstrap interval of the total return (too few trading returns)."
    text = (f"{level:.0%} bootstrap interval of the total return: {signed_percent(pair[0])} .. "
            f"{signed_percent(pair[1])} ({_zero_reading(pair, 'a gain', 'a loss')}; "
            f"{_bootstrap_how(sig)}).")
    share = sig.get("share_better") or {}
    hold = finite_number(share.get(C.BUY_AND_HOLD))
    best = finite_number(share.get("best_baseline"))
    name = sig.get("best_baseline")
    if hold is not None:
        text += f" It beats buy & hold in {hold:.0%} of the resamples"
        if best is not None and name in BASELINE_NAMES and name != C.BUY_AND_HOLD:
            text += f" and {BASELINE_NAMES[name]}, the best baseline, in {best:.0%}"
        text += "."
    return text


def _diff_text(pair: tuple[float, float] | None, level: float) -> str:
    if pair is None:
        return "n/a"
    lo, hi = pair
    strength = ("significantly higher" if lo > 0 else "significantly lower" if hi < 0
                else "not significant")
    return f"{lo:+.2f} .. {hi:+.2f} ({strength} at {1 - level:.0%})"


def sharpe_tip(sig: Mapping[str, Any]) -> str:
    """The model's Sharpe cell: its bootstrap interval and those of its difference from buy
    & hold's and from the best baseline's."""
    level = _level(sig)
    pair = _pair(sig.get("sharpe_ci"))
    if pair is None:
        return "No bootstrap interval of the Sharpe ratio (too few trading returns)."
    text = (f"{level:.0%} bootstrap interval of the Sharpe ratio: {pair[0]:+.2f} .. "
            f"{pair[1]:+.2f} ({_zero_reading(pair, 'a positive Sharpe', 'a negative one')}; "
            f"{_bootstrap_how(sig)}).")
    diffs = sig.get("sharpe_diff_ci") or {}
    text += (" The model's Sharpe minus buy & hold's: "
             f"{_diff_text(_pair(diffs.get(C.BUY_AND_HOLD)), level)}")
    name = sig.get("best_baseline")
    if name in BASELINE_NAMES and name != C.BUY_AND_HOLD:
        text += (f"; minus {BASELINE_NAMES[name]}'s, the best baseline: "
                 f"{_diff_text(_pair(diffs.get('best_baseline')), level)}")
    return text + "."


def spa_tip(sig: Mapping[str, Any]) -> str:
    """Hansen's SPA test of the model against every trading baseline at once; "" when there
    is none."""
    spa = sig.get("spa") or {}
    p = finite_number(spa.get("pvalue_consistent"))
    if p is None:
        return ""
    said = ("better than every baseline" if spa.get("better_than_all")
            else "not shown to be better than every baseline")
    return (f"Hansen's SPA test of the model's trading returns against every baseline at "
            f"once: p {_p_is(p)} \u2014 {said} at {1 - _level(sig):.0%}.")


def echo_tip(sig: Mapping[str, Any]) -> str:
    """The model's RMSE cell: is the forecast just the last observation?"""
    echo = sig.get("echo") or {}
    parts = []
    corr = finite_number(echo.get("corr_with_last_return"))
    if corr is not None:
        parts.append(f"the predicted return's correlation with the last return is {corr:+.2f}")
    ratio = finite_number(echo.get("std_ratio"))
    if ratio is not None:
        parts.append(f"it moves {ratio:.0%} as much as the actual return")
    lag = echo.get("best_lag")
    if isinstance(lag, int) and not isinstance(lag, bool):
        where = ("lag 0, the bar it forecasts, as a real forecast should" if lag == 0
                 else "lag +1: it repeats the last close, one bar late" if lag == 1
                 else f"lag +{lag}: {lag} bars late" if lag > 1
                 else f"lag {lag}: ahead of the bar it forecasts (check for a leak)")
        parts.append(f"the predicted close matches the actual close best at {where}")
    if not parts:
        return ""
    text = "Echo check: " + "; ".join(parts) + "."
    if echo.get("echo"):
        text += (" Flagged as an echo: the Diebold-Mariano test cannot tell it from the "
                 f"random walk or momentum at {1 - _level(sig):.0%}.")
    return text


def tests_text(sig: Mapping[str, Any] | None, *, where: str, seeds: int = 1) -> str:
    """The verdict of the tests (:func:`sandbox.significance.verdict`) as a sentence of the
    Metrics tab; for a seed ensemble, of the averaged forecast. "" when there is none."""
    from sandbox.significance import verdict as tests_verdict  # not on the start-up path

    line = tests_verdict(sig) if sig else None
    if not line:
        return ""
    whose = (f"of the {seeds} seeds' averaged forecast (not of any single seed) "
             if seeds > 1 else "")
    return f"Tests of significance {whose}on {where}: {line}."


def tests_legend(sig: Mapping[str, Any]) -> str:
    """The line under the table saying what the brackets and the DM p column are."""
    level = _level(sig)
    return (f"[low, high]: {level:.0%} intervals of the model's figures (hit rate: Wilson; "
            f"total return, Sharpe: bootstrap of {_rows(sig, 'trading'):,} trading returns). "
            "DM p: the model's squared errors against the row's baseline, two-sided "
            f"(better / worse: at {1 - level:.0%}). Hover a cell for the tests in words.")


def _bps(x: float) -> str:
    return f"{x:,.1f} bps"


def cost_text(costs: Mapping[str, Any] | None) -> str:
    """The line under the cost plot: the break-even costs and the run's own, in words."""
    if not costs:
        return ""
    shown = [c for c in (finite_number(x) for x in costs.get("costs_bps") or []) if c is not None]
    top = max(shown) if shown else None
    parts = []
    even = finite_number(costs.get("break_even_bps"))
    if even is None:
        parts.append("No break-even cost: the model makes no gain even at zero cost")
    else:
        beyond = f", beyond the {top:g} bps drawn" if top is not None and even > top else ""
        parts.append(f"Break-even cost {_bps(even)}{beyond}: there the model's net total "
                     "return falls to 0")
    vs = finite_number(costs.get("break_even_vs_buy_and_hold_bps"))
    model = costs.get("total_return") or []
    hold = costs.get("buy_and_hold_total_return") or []
    at_zero = (finite_number(model[0]), finite_number(hold[0])) if model and hold else (None,
                                                                                          None)
    ahead = (None if None in at_zero or not shown or shown[0] != 0
             else "same" if math.isclose(at_zero[0], at_zero[1], rel_tol=1e-9, abs_tol=1e-12)
             else at_zero[0] > at_zero[1])
    if vs is not None:
        parts.append(f"it stays ahead of buy & hold up to {_bps(vs)}")
    elif ahead == "same":
        parts.append("at zero cost it earns what buy & hold earns")
    elif ahead is False:
        parts.append("it trails buy & hold even at zero cost")
    elif ahead:
        parts.append("it stays ahead of buy & hold at every cost up to 10,000 bps")
    run = finite_number(costs.get("run_cost_bps"))
    text = "; ".join(parts) + "."
    if run is not None:
        text += f" This run trades at {run:g} bps a unit of position change."
    return text
