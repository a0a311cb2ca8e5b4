"""``fit()``: a plain training loop with callbacks, cancellation and early stopping.

The data are one tensor of windows (a strided view of the feature rows) and one target
tensor; a batch is ``windows[idx]`` for a slice ``idx`` of a shuffled index, so there is
no per-sample Dataset or DataLoader on the hot path. torch is imported inside functions.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.config import TrainConfig
from sandbox.errors import Cancelled, TrainingError
from sandbox.events import BatchEnd, EpochEnd, OnEvent

if TYPE_CHECKING:
    import numpy as np
    import torch

#: at most this many BatchEnd events per second
BATCH_EVENTS_PER_S = 20.0
#: windows per forward pass when predicting or computing the validation loss; the last chunk
#: is padded to this size so every row goes through the same kernels whatever the row count
PREDICT_CHUNK = 1024


@dataclass
class TrainHistory:
    """What happened during :func:`fit`, as plain data."""

    train_loss: list[float] = field(default_factory=list)  # mean batch loss per epoch
    val_loss: list[float] = field(default_factory=list)  # validation loss per epoch
    batch_loss: list[float] = field(default_factory=list)  # every batch, all epochs
    epoch_seconds: list[float] = field(default_factory=list)  # per epoch; 1st from the call
    samples_per_s: list[float] = field(default_factory=list)  # training windows/s per epoch
    best_epoch: int | None = None  # 1-based epoch whose weights were kept
    best_val_loss: float | None = None
    stopped_early: bool = False
    epochs_run: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """Small JSON-able summary (no per-batch list) for run.json."""
        d = self.to_dict()
        d.pop("batch_loss")
        return d


class Callbacks:
    """Named hooks called by :func:`fit`; each does nothing by default. Subclass and override.

    :func:`fit` calls the hooks of every callback it runs, in order: the one given as
    ``callbacks`` (a plain ``Callbacks()`` when none) and, when ``on_event`` is given,
    :class:`ProgressEvents`, which turns the same hooks into progress events.
    """

    def on_train_begin(self, *, n_samples: int, n_batches: int, epochs: int) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, epoch: int) -> None:
        """Before each epoch (1-based)."""

    def on_batch_end(self, epoch: int, batch: int, loss: float) -> None:
        """After every optimiser step (not throttled; keep it cheap)."""

    def on_epoch_end(self, epoch: int, train_loss: float, val_loss: float, improved: bool) -> None:
        """After the validation pass of each epoch."""

    def on_train_end(self, history: TrainHistory) -> None:
        """After the best weights were restored."""


class ProgressEvents(Callbacks):
    """The hooks as progress events: :class:`~sandbox.events.BatchEnd` (throttled here, the
    one place, to at most :data:`BATCH_EVENTS_PER_S` a second) and
    :class:`~sandbox.events.EpochEnd` (every epoch), sent to ``on_event``.

    Parameters
    ----------
    on_event : callable
        Receives the events, in the training thread.
    batch_size : int
        Windows per batch (for the samples/s of a batch event).
    history : TrainHistory
        The history :func:`fit` fills; read for the best loss, speed and elapsed time.
    """

    def __init__(self, on_event: Callable[[Any], None], *, batch_size: int,
                 history: TrainHistory) -> None:
        self.on_event = on_event
        self.batch_size = batch_size
        self.history = history
        self.n_samples = self.n_batches = self.epochs = 0
        self.epoch_start = self.last_event = 0.0

    def on_train_begin(self, *, n_samples: int, n_batches: int, epochs: int) -> None:
        self.n_samples, self.n_batches, self.epochs = n_samples, n_batches, epochs

    def on_epoch_begin(self, epoch: int) -> None:
        self.epoch_start = time.perf_counter()

    def on_batch_end(self, epoch: int, batch: int, loss: float) -> None:
        now = time.perf_counter()
        if now - self.last_event < 1.0 / BATCH_EVENTS_PER_S:
            return
        self.last_event = now
        done = min(self.n_samples, batch * self.batch_size)
        self.on_event(BatchEnd(epoch, self.epochs, batch, self.n_batches, loss,
                               done / max(now - self.epoch_start, 1e-9)))

    def on_epoch_end(self, epoch: int, train_loss: float, val_loss: float, improved: bool) -> None:
        h = self.history
        elapsed = math.fsum(h.epoch_seconds)  # the first epoch counts from the call of fit
        self.on_event(EpochEnd(epoch, self.epochs, train_loss, val_loss, float(h.best_val_loss),
                               h.samples_per_s[-1], elapsed,
                               elapsed / epoch * (self.epochs - epoch)))


class _All(Callbacks):
    """Several callbacks as one: each hook calls theirs, in order."""

    def __init__(self, callbacks: Sequence[Callbacks]) -> None:
        self.callbacks = tuple(callbacks)

    def on_train_begin(self, *, n_samples: int, n_batches: int, epochs: int) -> None:
        for c in self.callbacks:
            c.on_train_begin(n_samples=n_samples, n_batches=n_batches, epochs=epochs)

    def on_epoch_begin(self, epoch: int) -> None:
        for c in self.callbacks:
            c.on_epoch_begin(epoch)

    def on_batch_end(self, epoch: int, batch: int, loss: float) -> None:
        for c in self.callbacks:
            c.on_batch_end(epoch, batch, loss)

    def on_epoch_end(self, epoch: int, train_loss: float, val_loss: float, improved: bool) -> None:
        for c in self.callbacks:
            c.on_epoch_end(epoch, train_loss, val_loss, improved)

    def on_train_end(self, history: TrainHistory) -> None:
        for c in self.callbacks:
            c.on_train_end(history)


def default_threads() -> int:
    """All usable cores but one (at least one), so a UI thread keeps a core."""
    from sandbox.runs import usable_cores

    return max(1, usable_cores() - 1)


def configure_torch(config: TrainConfig) -> None:
    """Threads, deterministic algorithms and seeds for a reproducible run.

    Call before building the model so its initial weights depend only on ``config.seed``.
    These are process-wide torch settings.
    """
    import torch

    torch.set_num_threads(config.threads or default_threads())
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(config.seed)


def fit(
    model: torch.nn.Module,
    windows: torch.Tensor,
    targets: torch.Tensor,
    train_rows: torch.Tensor,
    val_rows: torch.Tensor,
    config: TrainConfig,
    *,
    on_event: OnEvent = None,
    cancel: threading.Event | None = None,
    callbacks: Callbacks | None = None,
) -> TrainHistory:
    """Train ``model`` in place; keep the weights of the best validation epoch.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (B, L, F) windows to (B,) predictions.
    windows : torch.Tensor
        (N, L, F) float32 windows of every row (may be a strided view).
    targets : torch.Tensor
        (N,) float32 scaled targets (NaN allowed on rows never used).
    train_rows, val_rows : torch.Tensor
        int64 row indices to fit on and to early-stop on.
    config : TrainConfig
        Epochs, patience, batch size, learning rate, seed, loss, clipping.
    on_event : callable, optional
        Receives :class:`~sandbox.events.BatchEnd` (at most ~20/s) and
        :class:`~sandbox.events.EpochEnd`, through a :class:`ProgressEvents` callback.
    cancel : threading.Event, optional
        Checked before every batch.
    callbacks : Callbacks, optional
        Named hooks, called before the progress events of the same hook.

    Returns
    -------
    TrainHistory

    Raises
    ------
    Cancelled
        ``cancel`` was set.
    TrainingError
        The loss became NaN or infinite.
    """
    import torch

    # --- setup ------------------------------------------------------------------------------
    start = time.perf_counter()
    _prime_allocator()
    gen = torch.Generator().manual_seed(config.seed)  # shuffling only
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = torch.nn.HuberLoss() if config.loss == "huber" else torch.nn.MSELoss()
    params = [p for p in model.parameters() if p.requires_grad]
    n, bs, epochs = len(train_rows), config.batch_size, config.epochs
    n_batches = math.ceil(n / bs)
    y_val = targets[val_rows]  # (V,)
    hist = TrainHistory()
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs = 0
    hooks = [callbacks if callbacks is not None else Callbacks()]  # a no-op unless given
    if on_event is not None:
        hooks.append(ProgressEvents(on_event, batch_size=bs, history=hist))
    cb = hooks[0] if len(hooks) == 1 else _All(hooks)
    cb.on_train_begin(n_samples=n, n_batches=n_batches, epochs=epochs)

    for epoch in range(1, epochs + 1):
        # --- train one epoch on shuffled batches ------------------------------------------------
        cb.on_epoch_begin(epoch)
        t0 = time.perf_counter()
        model.train()
        order = train_rows[torch.randperm(n, generator=gen)]  # (n,)
        total = 0.0
        for b in range(n_batches):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"training cancelled at epoch {epoch}, batch {b + 1}")
            idx = order[b * bs:(b + 1) * bs]  # (B,)
            loss = loss_fn(model(windows[idx]), targets[idx])  # (B, L, F) -> (B,) -> ()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
            value = loss.item()
            if not math.isfinite(value):
                raise _diverged(epoch, value, config.lr)
            total += value * len(idx)
            hist.batch_loss.append(value)
            cb.on_batch_end(epoch, b + 1, value)
        train_seconds = time.perf_counter() - t0
        train_loss = total / n

        # --- validate; keep the best weights -----------------------------------------------
        val_loss = evaluate_loss(model, windows, y_val, val_rows, loss_fn)
        if not math.isfinite(val_loss):
            raise _diverged(epoch, val_loss, config.lr)
        improved = hist.best_val_loss is None or val_loss < hist.best_val_loss
        if improved:
            hist.best_val_loss, hist.best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1

        # --- record the epoch, report it, stop early ---------------------------------------
        now = time.perf_counter()
        hist.train_loss.append(train_loss)
        hist.val_loss.append(val_loss)
        hist.epoch_seconds.append(now - (start if epoch == 1 else t0))
        hist.samples_per_s.append(n / max(train_seconds, 1e-9))
        hist.epochs_run = epoch
        cb.on_epoch_end(epoch, train_loss, val_loss, improved)
        if config.patience and bad_epochs >= config.patience and epoch < epochs:
            hist.stopped_early = True
            break

    # --- finish: the best epoch's weights, in eval mode --------------------------------------
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist.seconds = time.perf_counter() - start
    cb.on_train_end(hist)
    return hist


def _prime_allocator() -> None:
    """Allocate and free one 30 MiB block so the first epoch runs at steady-state speed.

    glibc's malloc serves large blocks with mmap until one such block is freed; only then
    does it raise its mmap threshold and keep big buffers on the heap. Without this, every
    batch of the first epoch page-faults its activations afresh (~1.5x slower epoch).
    Cheap (no page is touched) and harmless with other allocators.
    """
    import torch

    block = torch.empty(30 * 2**20, dtype=torch.uint8)
    del block


def _diverged(epoch: int, value: float, lr: float) -> TrainingError:
    what = "NaN" if math.isnan(value) else "infinite"
    return TrainingError(
        f"training diverged at epoch {epoch} (loss is {what}); "
        f"try a lower learning rate, e.g. {_short(lr / 10)}"
    )


def _short(x: float) -> str:
    """1e-4 rather than 0.0001 or 1e-04."""
    mantissa, exp = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exp)}"


def _chunks(model: torch.nn.Module, windows: torch.Tensor, rows: torch.Tensor | None, *,
            pad: bool):
    """Yield (outputs, n_real) per chunk of PREDICT_CHUNK windows; ``pad``: zero-pad the last."""
    import torch

    total = len(windows) if rows is None else len(rows)
    for s in range(0, total, PREDICT_CHUNK):
        idx = (torch.arange(s, min(s + PREDICT_CHUNK, total)) if rows is None
               else rows[s:s + PREDICT_CHUNK])
        xb = windows[idx]  # (b, L, F)
        k = len(xb)
        if pad and k < PREDICT_CHUNK:
            pad = xb.new_zeros((PREDICT_CHUNK - k, *xb.shape[1:]))
            xb = torch.cat([xb, pad])
        yield model(xb)[:k], k


def evaluate_loss(model: torch.nn.Module, windows: torch.Tensor, targets: torch.Tensor,
                  rows: torch.Tensor, loss_fn: Any) -> float:
    """Mean ``loss_fn`` of ``model`` on ``windows[rows]`` against ``targets`` (eval mode)."""
    import torch

    if len(rows) == 0:
        return math.nan
    was_training = model.training
    model.eval()
    total, start = 0.0, 0
    with torch.no_grad():
        for out, k in _chunks(model, windows, rows, pad=False):
            total += loss_fn(out, targets[start:start + k]).item() * k
            start += k
    model.train(was_training)
    return total / len(rows)


def predict(model: torch.nn.Module, windows: torch.Tensor) -> np.ndarray:
    """Model outputs for every window, in eval mode and fixed-size chunks.

    A row's output depends only on its own window: chunks have one fixed shape (the last
    one is padded), so cutting or extending the data leaves other rows' outputs bit-identical.

    Returns
    -------
    numpy.ndarray
        (N,) float32.
    """
    import numpy as np
    import torch

    model.eval()
    with torch.no_grad():
        parts = [out.numpy().copy() for out, _ in _chunks(model, windows, None, pad=True)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
