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
