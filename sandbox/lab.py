"""The memory lab: how far back a network's gradients reach, on a toy task and on real data.

Two experiments on what a sequence model can remember:

- **The memory task** (:func:`run_memory`): every input sequence is noise with one marked
  step; the target is the value at that step, ``lag`` steps before the last one. RNN, GRU,
  LSTM and Transformer are built with about the same number of parameters
  (:func:`sandbox.sizes.equal_budget_hidden`) and trained for a fixed number of steps on
  fresh sequences; per kind and lag it records the error on held-out sequences
  (``final_mse``; predicting 0 scores 1.0, the variance of the value) and the gradient
  norm that reaches the marked step, ``|d y_hat / d x[t - lag]|``, at initialisation and
  after training. Everything is seeded: the same seed writes the same ``memory.csv``.
- **Gradient reach** (:func:`reach_of`): for a trained model and its validation windows,
  the mean absolute gradient of the prediction with respect to each input bar,
  ``|d y_hat / d x[t - k]|`` for ``k = 0 .. W - 1``, per feature and averaged over them.

Both take ``on_progress`` and ``cancel`` (a :class:`threading.Event`, checked between
optimiser steps and between batches of windows), so the app runs them in its torch process
with streaming progress, like the leakage audit. This module imports neither torch nor Qt
at import time: the app's UI process imports it for its result types and constants.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.errors import Cancelled, ConfigError

if TYPE_CHECKING:
    import argparse

    import torch

__all__ = [
    "BATCH",
    "BUDGET_LSTM_HIDDEN",
    "DEFAULT_LAGS",
    "FEATURE_MARKER",
    "FEATURE_VALUE",
    "KINDS",
    "LEAD",
    "MAX_LAG",
    "MEMORY_COLUMNS",
    "STEPS",
    "MemoryCell",
    "MemoryProgress",
    "MemoryResult",
    "ReachProgress",
    "ReachResult",
    "cli_memory",
    "cli_reach",
    "gradient_reach",
    "marked_gradient_norm",
    "memory_frame",
    "memory_task",
    "parse_kinds",
    "parse_lags",
    "reach_frame",
    "reach_of",
    "read_memory",
    "run_memory",
    "write_memory",
    "write_reach",
]

# --- the memory task -------------------------------------------------------------------------

#: the kinds the lab compares, in the order its table and plots list them
KINDS: tuple[str, ...] = (C.RNN, C.GRU, C.LSTM, C.TRANSFORMER)
DEFAULT_LAGS: tuple[int, ...] = (5, 10, 20, 40, 80)
#: the longest lag the task accepts (sequences are ``lag + LEAD`` steps long)
MAX_LAG = 500
#: noise steps before the marked one, so the marked step is never the first
LEAD = 10
#: the two inputs per step: the value (standard normal noise) and the marker (1 at the step
#: to remember, 0 elsewhere)
FEATURE_VALUE = "value"
FEATURE_MARKER = "marker"
N_FEATURES = 2
#: the parameter budget every kind is sized to: about that of a one-layer LSTM with 16 units
#: on the task's two inputs (1,169 parameters); each kind gets the hidden size whose count is
#: closest (:func:`sandbox.sizes.equal_budget_hidden`)
BUDGET_LSTM_HIDDEN = 16
LAYERS = 1
HEADS = 2
#: optimiser steps per kind and lag (each on a fresh batch), sequences per step, Adam's rate
STEPS = 1000
BATCH = 32
LR = 1e-2
GRAD_CLIP = 1.0
#: held-out sequences the error is measured on, and those the gradient norms average over
EVAL_SEQUENCES = 1024
PROBE_SEQUENCES = 256
#: how often (steps) the task reports its progress
PROGRESS_EVERY = 25

MEMORY_COLUMNS: tuple[str, ...] = ("kind", "lag", "final_mse", "grad_norm_init",
                                   "grad_norm_trained")


@dataclass(frozen=True)
class MemoryCell:
    """One kind at one lag: held-out error and the gradient reaching the marked step."""

    kind: str
    lag: int
    final_mse: float  # on EVAL_SEQUENCES fresh sequences; predicting 0 scores about 1.0
    grad_norm_init: float  # mean over PROBE_SEQUENCES of |d y_hat / d x[t - lag]|, untrained
    grad_norm_trained: float  # the same after training
    hidden: int = 0  # the hidden size (d_model) that gives the parameter budget
    parameters: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class MemoryProgress:
    """What :func:`run_memory` passes to ``on_progress``: the cell being trained (``index``
    of ``total``, counted from 0), its optimiser ``step`` of ``steps`` and its running loss;
    ``cell`` is set once when the cell is done (then ``step == steps``)."""

    index: int
    total: int
    kind: str
    lag: int
    step: int
    steps: int
    loss: float = math.nan
    cell: MemoryCell | None = None

    @property
    def fraction(self) -> float:
        """How much of the whole experiment is done (0..1)."""
        return (self.index + self.step / max(self.steps, 1)) / max(self.total, 1)


@dataclass
class MemoryResult:
    """The experiment's outcome: one cell per kind and lag (kinds in the order asked)."""

    cells: list[MemoryCell]
    seed: int = 0
    steps: int = STEPS
    budget: int = 0  # the parameter budget the kinds were sized to
    seconds: float = 0.0

    @property
    def kinds(self) -> list[str]:
        return list(dict.fromkeys(c.kind for c in self.cells))

    @property
    def lags(self) -> list[int]:
        return sorted({c.lag for c in self.cells})

    def cell(self, kind: str, lag: int) -> MemoryCell | None:
        return next((c for c in self.cells if c.kind == kind and c.lag == lag), None)

    def series(self, kind: str, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(lags, values of ``column``) of one kind, by lag."""
        cells = sorted((c for c in self.cells if c.kind == kind), key=lambda c: c.lag)
        return (np.array([c.lag for c in cells], dtype=np.float64),
                np.array([getattr(c, column) for c in cells], dtype=np.float64))


def parse_kinds(text: str | Sequence[str]) -> list[str]:
    """``"rnn,lstm"`` as a list of kinds (order kept, repeats dropped).

    Raises
    ------
    ConfigError
        An unknown kind, or none.
    """
    items = [k.strip().lower() for k in (text.split(",") if isinstance(text, str) else text)]
    items = [k for k in items if k]
    bad = [k for k in items if k not in C.MODEL_KINDS]
    if bad or not items:
        raise ConfigError(f"--kinds {','.join(bad) if bad else repr(text)}: expected a comma-"
                          f"separated list of {', '.join(C.MODEL_KINDS)}")
    return list(dict.fromkeys(items))


def parse_lags(text: str | Sequence[int]) -> list[int]:
    """``"5,10,40"`` as a sorted list of distinct lags, each 1..:data:`MAX_LAG`.

    Raises
    ------
    ConfigError
        A lag that is not a whole number in range, or none.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    lags: list[int] = []
    for item in items:
        value = item.strip() if isinstance(item, str) else item
        if value == "":
            continue
        try:
            lag = int(value)
            ok = 1 <= lag <= MAX_LAG and str(lag) == str(value).lstrip("+")
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"--lags {value!r}: each lag must be a whole number from 1 to "
                              f"{MAX_LAG}")
        lags.append(lag)
    if not lags:
        raise ConfigError(f"--lags {text!r}: give at least one lag, e.g. 5,10,20,40,80")
    return sorted(set(lags))


def memory_task(n: int, lag: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of the task at ``lag``.

    Returns
    -------
    x : numpy.ndarray
        (n, lag + LEAD, 2) float32: column 0 standard normal noise, column 1 the marker,
        1.0 at step ``lag + LEAD - 1 - lag`` (``lag`` steps before the last) and 0 elsewhere.
    y : numpy.ndarray
        (n,) float32: the value at the marked step.
    """
    length = lag + LEAD
    x = np.zeros((n, length, N_FEATURES), dtype=np.float32)
    x[:, :, 0] = rng.standard_normal((n, length), dtype=np.float32)
    marked = length - 1 - lag
    x[:, marked, 1] = 1.0
    return x, x[:, marked, 0].copy()


def budget() -> int:
    """The parameter budget of the task's models (see :data:`BUDGET_LSTM_HIDDEN`)."""
    from sandbox import sizes

    return sizes.count_parameters(C.LSTM, BUDGET_LSTM_HIDDEN, LAYERS, N_FEATURES, HEADS)


def task_model_config(kind: str) -> Any:
    """The ModelConfig of ``kind`` on the task: one layer, no dropout, sized to :func:`budget`."""
    from sandbox import sizes
    from sandbox.config import ModelConfig

    hidden = sizes.equal_budget_hidden(kind, budget(), N_FEATURES, layers=LAYERS, heads=HEADS)
    return ModelConfig(kind=kind, window=MAX_LAG + LEAD, hidden=hidden, layers=LAYERS,
                       dropout=0.0, heads=HEADS)


def _kind_code(kind: str) -> int:
    return C.MODEL_KINDS.index(kind)


def marked_gradient_norm(model: Any, x: torch.Tensor, lag: int) -> float:
    """Mean over the sequences ``x`` (B, L, F) of the norm (over the inputs) of
    ``d y_hat / d x[:, L - 1 - lag]``: how strongly the marked step moves the prediction."""
    import torch

    was_training = model.training
    model.eval()
    inputs = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(model(inputs).sum(), inputs)
    model.train(was_training)
    step = grad[:, x.shape[1] - 1 - lag, :]  # (B, F)
    return float(step.double().norm(dim=1).mean())


def _train_cell(kind: str, lag: int, *, seed: int, steps: int, index: int, total: int,
                on_progress: Callable[[MemoryProgress], None] | None,
                cancel: threading.Event | None) -> MemoryCell:
    import torch

    from sandbox import models, sizes

    started = time.perf_counter()
    config = task_model_config(kind)
    code = _kind_code(kind)
    torch.manual_seed(int(np.random.SeedSequence([seed, lag, code]).generate_state(1)[0]))
    model = models.build_model(config, N_FEATURES)
    data_rng = np.random.default_rng([seed, lag, code, 1])
    # held-out sequences: the same for every kind at this lag
    eval_x, eval_y = memory_task(EVAL_SEQUENCES, lag, np.random.default_rng([seed, lag, 2]))
    probe_x = torch.from_numpy(eval_x[:PROBE_SEQUENCES])
    grad_init = marked_gradient_norm(model, probe_x, lag)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.MSELoss()
    model.train()
    running = math.nan
    for step in range(steps):
        _stop_if(cancel)
        x, y = memory_task(BATCH, lag, data_rng)
        loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        value = float(loss.item())
        running = value if math.isnan(running) else 0.9 * running + 0.1 * value
        if on_progress is not None and (step + 1) % PROGRESS_EVERY == 0 and step + 1 < steps:
            on_progress(MemoryProgress(index, total, kind, lag, step + 1, steps, running))
    _stop_if(cancel)
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(eval_x)).double().numpy()
    final = float(np.mean((pred - eval_y.astype(np.float64)) ** 2))
    grad_trained = marked_gradient_norm(model, probe_x, lag)
    return MemoryCell(kind=kind, lag=lag, final_mse=final, grad_norm_init=grad_init,
                      grad_norm_trained=grad_trained, hidden=config.hidden,
                      parameters=sizes.parameter_count(config, N_FEATURES),
                      seconds=time.perf_counter() - started)


def run_memory(kinds: Sequence[str] = KINDS, lags: Sequence[int] = DEFAULT_LAGS, *,
               seed: int = 0, steps: int = STEPS, threads: int | None = 1,
               on_progress: Callable[[MemoryProgress], None] | None = None,
               cancel: threading.Event | None = None) -> MemoryResult:
    """Train every kind at every lag on the memory task and measure what reaches back.

    Parameters
    ----------
    kinds : sequence of str
        Network kinds (default rnn, gru, lstm, transformer).
    lags : sequence of int
        Steps between the marked value and the last step (default 5, 10, 20, 40, 80).
    seed : int
        Seeds the weights, the training sequences and the held-out ones. Each cell's seed
        depends on (seed, kind, lag) only, so a subset of kinds or lags repeats its cells.
    steps : int
        Optimiser steps per cell (default :data:`STEPS`, a few seconds per cell on 2 cores).
    threads : int or None
        Torch threads (1 by default: the same numbers on every machine with the same torch);
        None leaves torch's setting as it is.
    on_progress : callable, optional
        Receives a :class:`MemoryProgress` every :data:`PROGRESS_EVERY` steps and once per
        finished cell (with ``cell`` set).
    cancel : threading.Event, optional
        Set it to stop between two optimiser steps (raises :class:`~sandbox.errors.Cancelled`).

    Returns
    -------
    MemoryResult
    """
    import torch

    kinds, lags = parse_kinds(kinds), parse_lags(lags)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"steps {steps!r}: must be a whole number >= 1")
    started = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    cells: list[MemoryCell] = []
    total = len(kinds) * len(lags)
    for kind in kinds:
        for lag in lags:
            index = len(cells)
            _stop_if(cancel)
            if on_progress is not None:
                on_progress(MemoryProgress(index, total, kind, lag, 0, steps))
            cell = _train_cell(kind, lag, seed=seed, steps=steps, index=index, total=total,
                               on_progress=on_progress, cancel=cancel)
            cells.append(cell)
            if on_progress is not None:
                on_progress(MemoryProgress(index, total, kind, lag, steps, steps,
                                           cell.final_mse, cell))
    return MemoryResult(cells=cells, seed=seed, steps=steps, budget=budget(),
                        seconds=time.perf_counter() - started)


def memory_frame(result: MemoryResult) -> pd.DataFrame:
    """memory.csv as a frame: one row per kind and lag (:data:`MEMORY_COLUMNS`)."""
    return pd.DataFrame([[getattr(c, name) for name in MEMORY_COLUMNS] for c in result.cells],
                        columns=list(MEMORY_COLUMNS))


def read_memory(path: str | Path) -> MemoryResult:
    """A :class:`MemoryResult` from a ``memory.csv`` (or its folder) written by
    :func:`write_memory`; the cells keep the file's order.

    Raises
    ------
    DataError
        The file is missing or lacks the memory.csv columns.
    """
    from sandbox.errors import DataError

    path = Path(path)
    if path.is_dir():
        path = path / C.MEMORY_CSV
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not readable as {C.MEMORY_CSV} ({exc})") from None
    missing = [c for c in MEMORY_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: not a {C.MEMORY_CSV} (no column {', '.join(missing)})")
    cells = [MemoryCell(kind=str(r.kind), lag=int(r.lag), final_mse=float(r.final_mse),
                        grad_norm_init=float(r.grad_norm_init),
                        grad_norm_trained=float(r.grad_norm_trained))
             for r in frame.itertuples(index=False)]
    return MemoryResult(cells=cells)


def _csv_text(frame: pd.DataFrame) -> str:
    # six significant digits: the same text wherever the same float32 arithmetic ran
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def write_memory(result: MemoryResult, out: str | Path) -> Path:
    """Write ``out/memory.csv`` (the folder replaced as a whole, :mod:`sandbox.atomic`)."""
    from sandbox import atomic

    text = _csv_text(memory_frame(result))
    atomic.write_folder(out, lambda tmp: (tmp / C.MEMORY_CSV).write_text(text, encoding="utf-8"))
    return Path(out) / C.MEMORY_CSV


# --- gradient reach of a trained model --------------------------------------------------------

#: windows per backward pass of :func:`gradient_reach`
REACH_CHUNK = 256
#: what :attr:`ReachResult.split` says when the model's data has no validation rows
ALL_ROWS = "all"


@dataclass(frozen=True)
class ReachProgress:
    """What :func:`reach_of` passes to ``on_progress``: ``done`` of ``total`` windows."""

    done: int
    total: int


@dataclass
class ReachResult:
    """How strongly each bar of the window moves a trained model's prediction.

    ``per_feature[k, f]`` is the mean over the windows of ``|d y_hat / d x[t - k, f]|`` for
    the scaled feature ``f`` of the bar ``k`` bars before the last (``k = 0`` is the bar the
    prediction is made at); :attr:`mean_abs_grad` averages it over the features.
    """

    kind: str
    feature_names: list[str]
    per_feature: np.ndarray  # (W, F)
    n_windows: int
    split: str  # C.VAL, or ALL_ROWS when the data has no validation rows
    label: str = ""  # the data's name

    @property
    def lags(self) -> np.ndarray:
        return np.arange(self.per_feature.shape[0])

    @property
    def mean_abs_grad(self) -> np.ndarray:
        return self.per_feature.mean(axis=1)

    def lag_below(self, fraction: float) -> int | None:
        """The first lag whose :attr:`mean_abs_grad` is below ``fraction`` of lag 0's, or
        None when none is."""
        curve = self.mean_abs_grad
        below = np.flatnonzero(curve < fraction * curve[0]) if curve[0] > 0 else []
        return int(below[0]) if len(below) else None


def gradient_reach(model: Any, windows: torch.Tensor, *, chunk: int = REACH_CHUNK,
                   on_progress: Callable[[ReachProgress], None] | None = None,
                   cancel: threading.Event | None = None) -> np.ndarray:
    """Mean ``|d y_hat / d x|`` over ``windows`` (N, W, F), by lag and feature.

    Each window's prediction depends on its own window only, so one backward pass of the
    summed predictions of a chunk gives every window's gradient at once.

    Returns
    -------
    numpy.ndarray
        (W, F) float64; row ``k`` is the bar ``k`` steps before the window's last bar.
    """
    import torch

    n, width, n_feat = windows.shape
    if n == 0:
        raise ConfigError("no windows to measure the gradient reach on")
    was_training = model.training
    model.eval()
    total = torch.zeros((width, n_feat), dtype=torch.float64)
    try:
        for start in range(0, n, chunk):
            _stop_if(cancel, "the gradient reach was stopped")
            if on_progress is not None:
                on_progress(ReachProgress(start, n))
            inputs = windows[start:start + chunk].detach().clone().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(model(inputs).sum(), inputs)
            total += grad.abs().double().sum(dim=0)
    finally:
        model.train(was_training)
    if on_progress is not None:
        on_progress(ReachProgress(n, n))
    return (total / n).flip(0).numpy()


def _validation_mask(run_or_bundle: Any, rows: pd.DatetimeIndex) -> np.ndarray:
    """Which ``rows`` the model's run called validation: a run's own split column, else
    (a saved model) its stored split dates (:func:`sandbox.pipeline.trained_labels`)."""
    predictions = getattr(run_or_bundle, "predictions", None)
    if isinstance(predictions, pd.DataFrame) and C.SPLIT in predictions:
        labels = predictions[C.SPLIT].reindex(rows).to_numpy()
    else:
        from sandbox.pipeline import trained_labels

        labels = trained_labels(rows, getattr(run_or_bundle, "splits", None))
    return labels == C.VAL


def reach_of(run_or_bundle: Any, prices: pd.DataFrame | None = None, *,
             on_progress: Callable[[ReachProgress], None] | None = None,
             cancel: threading.Event | None = None) -> ReachResult:
    """The gradient reach of a trained model on its validation windows.

    Parameters
    ----------
    run_or_bundle : RunResult or Bundle
        A single trained run (its model, or its safetensors weights when the model lives in
        another process) or a loaded bundle (:func:`sandbox.export.load_bundle`).
    prices : pandas.DataFrame, optional
        The prices to build windows from; by default the run's own (``data.frame``).
    on_progress, cancel
        As for :func:`run_memory`.

    Returns
    -------
    ReachResult
        Over the windows of the rows the run called validation (a bundle: by its stored
        split dates); over every row when there are none.

    Raises
    ------
    ConfigError
        It keeps no single model (an ensemble), or no prices were given for a bundle.
    """
    import torch

    from sandbox import features
    from sandbox.audit import predictor_of

    bundle = predictor_of(run_or_bundle)
    if prices is None:
        data = getattr(run_or_bundle, "data", None)
        prices = getattr(data, "frame", None)
        if prices is None:
            raise ConfigError("no prices to measure the gradient reach on")
    _stop_if(cancel, "the gradient reach was stopped")
    state = bundle.feature_state
    rows, x = features.transform(prices, state)
    windows = features.windows(torch.from_numpy(x), int(state["seq_len"]))
    chosen = np.flatnonzero(_validation_mask(run_or_bundle, rows))
    split = C.VAL
    if not chosen.size:
        chosen, split = np.arange(len(rows)), ALL_ROWS
    per_feature = gradient_reach(bundle.model, windows[torch.from_numpy(chosen)],
                                 on_progress=on_progress, cancel=cancel)
    data = getattr(run_or_bundle, "data", None)
    label = getattr(data, "label", "") or bundle.config.data.label
    return ReachResult(kind=bundle.config.model.kind, feature_names=list(state["feature_names"]),
                       per_feature=per_feature, n_windows=int(chosen.size), split=split,
                       label=str(label))


#: reach.csv's first columns; one ``abs_grad_<feature>`` column per feature follows
REACH_COLUMNS: tuple[str, ...] = ("lag", "mean_abs_grad")
FEATURE_PREFIX = "abs_grad_"


def reach_frame(result: ReachResult) -> pd.DataFrame:
    """reach.csv as a frame: one row per lag (:data:`REACH_COLUMNS`, then per feature)."""
    frame = pd.DataFrame({"lag": result.lags, "mean_abs_grad": result.mean_abs_grad})
    for f, name in enumerate(result.feature_names):
        frame[FEATURE_PREFIX + name] = result.per_feature[:, f]
    return frame


def write_reach(result: ReachResult, out: str | Path) -> Path:
    """Write ``out/reach.csv`` (the folder replaced as a whole, :mod:`sandbox.atomic`)."""
    from sandbox import atomic

    text = _csv_text(reach_frame(result))
    atomic.write_folder(out, lambda tmp: (tmp / C.REACH_CSV).write_text(text, encoding="utf-8"))
    return Path(out) / C.REACH_CSV


def reach_summary(result: ReachResult) -> str:
    """The reach in a sentence: where the curve falls to 10% and 1% of lag 0's gradient."""
    curve = result.mean_abs_grad
    where = ("validation" if result.split == C.VAL else "all")
    text = (f"{result.label + ', ' if result.label else ''}{result.kind} model: mean |dy/dx| "
            f"over {result.n_windows:,} {where} windows is {curve[0]:.3g} at the last bar "
            f"(lag 0) and {curve[-1]:.3g} at the window's first (lag {len(curve) - 1})")
    parts = []
    for fraction in (0.1, 0.01):
        lag = result.lag_below(fraction)
        parts.append(f"below {fraction:.0%} of it from lag {lag}" if lag is not None
                     else f"never below {fraction:.0%} of it")
    return text + "; " + ", ".join(parts) + "."


# --- command line ------------------------------------------------------------------------------


def memory_table(result: MemoryResult) -> str:
    """memory.csv as an aligned text table."""
    lines = [f"{'kind':<12}{'lag':>5}{'final_mse':>12}{'grad_init':>12}{'grad_trained':>14}"]
    for c in result.cells:
        lines.append(f"{c.kind:<12}{c.lag:>5}{c.final_mse:>12.4g}{c.grad_norm_init:>12.3g}"
                     f"{c.grad_norm_trained:>14.3g}")
    return "\n".join(lines)


def cli_memory(args: argparse.Namespace) -> int:
    """``sandbox lab memory``: run the memory task and write ``--out/memory.csv``.

    Raises
    ------
    ConfigError
        Bad ``--kinds``, ``--lags`` or ``--seed``, or ``--out`` names a file (exit 2).
    """
    kinds, lags = parse_kinds(args.kinds), parse_lags(args.lags)
    seed = args.seed
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed {seed!r}: must be a whole number >= 0")
    out = _out_dir(args.out)
    steps = getattr(args, "steps", None) or STEPS

    def progress(p: MemoryProgress) -> None:
        if p.cell is not None:
            _say(f"{p.index + 1}/{p.total} {p.kind} lag {p.lag}: mse {p.cell.final_mse:.4g} "
                 f"({p.cell.seconds:.1f} s)", err=True)

    result = run_memory(kinds, lags, seed=seed, steps=steps, on_progress=progress)
    path = write_memory(result, out)
    _say(f"memory task, seed {seed}, {steps} steps per cell, about {result.budget:,} "
         "parameters per network (predicting 0 scores mse 1):")
    _say(memory_table(result))
    _say(str(path))
    return 0


def cli_reach(args: argparse.Namespace) -> int:
    """``sandbox lab reach``: the gradient reach of a saved model, ``--out/reach.csv``.

    The data flags choose the prices; without one, the model's own data (as ``sandbox
    predict`` does).
    """
    from sandbox.cli import bundle_and_data
    from sandbox.data import load_prices

    out, bundle, spec = bundle_and_data(args)
    loaded = load_prices(spec, min_rows=int(bundle.feature_state["window"]))
    result = reach_of(bundle, loaded.frame)
    result.label = loaded.label
    path = write_reach(result, out)
    _say(reach_summary(result))
    _say(str(path))
    return 0


def _say(text: str, *, err: bool = False) -> None:
    """One line for the user: the command's output on stdout, progress on stderr."""
    import sys

    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def _out_dir(value: str) -> Path:
    out = Path(value)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    return out


def _stop_if(cancel: threading.Event | None, message: str = "the memory lab was stopped") -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled(message)
