"""Helpers shared by the UI test modules (a plain module they import, not a conftest)."""

from __future__ import annotations

import time

from sandbox import training


def count_slow_batches(monkeypatch, *, pause_s: float = 0.002) -> dict[str, int]:
    """Slow every training batch down and count the batches, so a test can press Stop
    mid-epoch and check that at most the batch in flight finishes.

    Replaces ``training.Callbacks`` (the default callbacks of every fit in this process)
    for the test's duration. Returns ``{"batches": n}``, updated as batches end.
    """
    counts = {"batches": 0}

    class Counting(training.Callbacks):
        def on_batch_end(self, epoch, batch, loss):
            counts["batches"] += 1
            time.sleep(pause_s)  # keep batches slow enough to stop mid-epoch

    monkeypatch.setattr(training, "Callbacks", Counting)
    return counts


def train_and_wait(qtbot, window, *, timeout: int = 60_000) -> str:
    """Train; wait until the run ended and its result is fully drawn. Returns how it ended
    (``"finished"``, ``"failed"`` or ``"cancelled"``)."""
    with qtbot.waitSignal(window.run_ended, timeout=timeout) as ended:
        window.act_train.trigger()
    qtbot.waitUntil(window.is_idle, timeout=timeout)
    return ended.args[0]


def chart_with_prices(qtbot, frame):
    """A dark PriceChart of 1000 x 700 px, painted once, showing ``frame``."""
    from sandbox.ui.charts import PriceChart

    widget = PriceChart(dark=True)
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.grab()
    widget.set_prices(frame)
    return widget


def drawn(item) -> tuple[list[float], list[float]]:
    """The finite points of a curve, as lists (none for an empty curve)."""
    import numpy as np

    x, y = item.getData()
    if x is None:
        return [], []
    keep = np.isfinite(y)
    return x[keep].tolist(), y[keep].tolist()
