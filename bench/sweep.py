"""Sweep scaling: 8 small configurations x 1 seed with 1 worker vs 2 workers, same run.

Prints the wall times, ``speedup_2_workers`` (1-worker wall / 2-worker wall; target >= 1.7
on 2 cores) and ``overhead_fraction`` of the parallel machinery for 2 workers:
``1 - sum(in-worker run seconds) / (wall x workers)`` (process start, imports, data
transfer, scheduling; target < 0.10). The 2-worker pool starts cold (fresh processes), as
a CLI sweep does. Each mode is timed ``--repeat`` times and the fastest kept (other programs
on a shared machine only ever make a round slower). Ends with one line of JSON.

Run: ``.venv/bin/python bench/sweep.py [--epochs 60] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import time

from sandbox import constants as C
from sandbox import sweep
from sandbox.config import DataSpec, ModelConfig, RunConfig, SplitSpec, TrainConfig
from sandbox.data import load_prices

GRID = "model=lstm,gru hidden=8,16 window=10,20"  # 2 x 2 x 2 = 8 configurations


def _timed(base: RunConfig, grid: dict, jobs: int, prices) -> tuple[float, list[float]]:
    seconds: list[float] = []

    def on_result(record: sweep.RunRecord) -> None:
        if record.error:
            raise SystemExit(f"run failed: {record.label}: {record.error}")
        seconds.append(record.seconds)

    started = time.perf_counter()
    sweep.run_sweep(base, grid, seeds=1, jobs=jobs, prices=prices, on_result=on_result)
    return time.perf_counter() - started, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60, help="epochs per run (no early stop)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="rounds of (2 workers, 1 worker); the fastest of each is kept, "
                             "which filters out other programs' bursts on a shared machine")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (2 epochs)")
    args = parser.parse_args()
    epochs = 2 if args.quick else args.epochs

    base = RunConfig(
        data=DataSpec(source=f"{C.SOURCE_SAMPLE}:{C.DEFAULT_SAMPLE}"),
        split=SplitSpec(),
        model=ModelConfig(layers=1, dropout=0.0),
        train=TrainConfig(epochs=epochs, patience=0, batch_size=64, seed=0),
    )
    grid = sweep.parse_grid(GRID)
    prices = load_prices(base.data)  # once, as run_sweep does

    from joblib.externals.loky import get_reusable_executor

    best_1: tuple[float, list[float]] | None = None
    best_2: tuple[float, list[float]] | None = None
    for _ in range(max(1, args.repeat)):
        # cold start for the 2-worker pool: no worker processes left from an earlier call
        get_reusable_executor(reuse=True).shutdown(wait=True, kill_workers=True)
        two = _timed(base, grid, 2, prices)
        one = _timed(base, grid, 1, prices)
        print(f"round: 2 workers {two[0]:.2f} s, 1 worker {one[0]:.2f} s")
        best_2 = two if best_2 is None or two[0] < best_2[0] else best_2
        best_1 = one if best_1 is None or one[0] < best_1[0] else best_1
    assert best_1 is not None and best_2 is not None
    (wall_1, runs_1), (wall_2, runs_2) = best_1, best_2

    speedup = wall_1 / wall_2
    busy = sum(runs_2)
    overhead = 1 - busy / (wall_2 * 2)
    print(f"cores: {os.cpu_count()}  configurations: {len(runs_1)} x 1 seed  epochs: {epochs}")
    print(f"1 worker : {wall_1:7.2f} s wall  (runs sum {sum(runs_1):.2f} s, "
          f"mean run {sum(runs_1) / len(runs_1):.2f} s)")
    print(f"2 workers: {wall_2:7.2f} s wall  (runs sum {busy:.2f} s, "
          f"mean run {busy / len(runs_2):.2f} s)")
    print(f"speedup with 2 workers: {speedup:.2f}x (target >= 1.7)")
    print(f"parallel overhead: {overhead:.1%} of worker time (target < 10%)")
    print(json.dumps({
        "bench": "sweep",
        "speedup_2_workers": round(speedup, 3),
        "overhead_fraction": round(overhead, 4),
        "wall_s_1_worker": round(wall_1, 3),
        "wall_s_2_workers": round(wall_2, 3),
        "run_s_mean_1_worker": round(sum(runs_1) / len(runs_1), 3),
        "run_s_mean_2_workers": round(busy / len(runs_2), 3),
        "n_runs": len(runs_2),
        "epochs": epochs,
        "repeat": max(1, args.repeat),
    }))


if __name__ == "__main__":
    main()
