"""The parallel runner: many ``pipeline.run`` calls, in this process or in worker processes.

Sweeps and seed ensembles both hand their runs to :func:`run_all`; it executes them one after
another in this process (``jobs=1``), in local loky worker processes (``joblib.Parallel``), or
on a Dask distributed cluster (joblib's ``dask`` backend), and streams each finished run back
as a :class:`RunRecord` in completion order. Setting the cancel event stops dispatching,
ends the workers and raises :class:`~sandbox.errors.Cancelled`.

Every run uses one torch thread (``TrainConfig.threads = 1``), so workers do not
oversubscribe the cores and a run gives the same numbers whichever worker executes it.
"""

from __future__ import annotations

import os

__all__ = ["parallel_jobs", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where there is one, e.g. a container).

    Returns
    -------
    int
        At least 1.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def parallel_jobs(runs: int) -> int:
    """Worker processes for ``runs`` parallel trainings: one per core, at most one per run.

    Every core, unlike in-process training (all but one): the workers are other processes,
    so the UI thread never waits for their interpreter lock (bench/ui_stall.py measures it).

    Parameters
    ----------
    runs : int
        Runs to execute.

    Returns
    -------
    int
        Between 1 and ``min(runs, usable_cores())``.
    """
    return max(1, min(runs, usable_cores()))
