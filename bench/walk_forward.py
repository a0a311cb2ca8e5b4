"""Walk-forward: warm-started folds vs cold ones, and cold folds on 1 vs 2 worker processes.

GSPC sample, retrain every 63 bars from 2010-01-01 (expanding window), in one process:

- ``cold_s``: every fold from scratch with its own seed, 1 worker process (in this
  process, one torch thread);
- ``warm_s``: each fold from the previous fold's weights, at most ``--warm-epochs`` epochs
  (fold 0 trains normally), in sequence, one torch thread;
- ``cold_2_workers_s``: the cold folds on 2 loky worker processes (started cold, as a CLI
  run does: their start-up and imports are counted).

``speedup_warm = cold_s / warm_s`` (target >= 3), ``val_loss_ratio = warm_val_loss_mean /
cold_val_loss_mean`` (each the mean over the folds of the best validation loss; target <=
1.05), ``speedup_2_workers = cold_s / cold_2_workers_s`` (target >= 1.6 on 2 cores). The
predictions of the 2-worker run are checked bit-identical to the 1-worker run's.

Defaults: LSTM, hidden 32, 1 layer, window 20, batch 64, lr 1e-3, at most 30 epochs with
patience 5, warm folds at most 2 epochs, validation 126 bars. Ends with one line of JSON.

Run: ``.venv/bin/python bench/walk_forward.py [--epochs 30] [--patience 5] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sandbox import constants as C
from sandbox import pipeline
from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig, WalkForwardSpec
from sandbox.data import load_prices


def _timed(config: RunConfig, prices, jobs: int) -> tuple[float, pipeline.RunResult]:
    started = time.perf_counter()
    result = pipeline.run(config, prices=prices, jobs=jobs, evidence=False)
    return time.perf_counter() - started, result


def _mean_val_loss(result: pipeline.RunResult) -> float:
    return float(np.mean([f["best_val_loss"] for f in result.folds]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="most epochs of a cold fold")
    parser.add_argument("--patience", type=int, default=5, help="early-stopping patience")
    parser.add_argument("--warm-epochs", type=int, default=2, help="most epochs of a warm fold")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--start", default="2010-01-01", help="walk-forward start")
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run (from 2017, 2 epochs)")
    args = parser.parse_args()
    start, epochs = ("2017-01-01", 2) if args.quick else (args.start, args.epochs)

    spec = WalkForwardSpec(start=start, retrain_every=63, warm_start=False,
                           warm_epochs=args.warm_epochs)
    cold = RunConfig(
        data=DataSpec(source=f"{C.SOURCE_SAMPLE}:{C.DEFAULT_SAMPLE}"),
        model=ModelConfig(kind=C.LSTM, hidden=args.hidden, layers=args.layers,
                          window=args.window, dropout=0.0),
        train=TrainConfig(epochs=epochs, patience=args.patience, batch_size=64, lr=1e-3,
                          seed=0, threads=1),
        walk_forward=spec,
    )
    warm = cold.replace(walk_forward=spec.replace(warm_start=True))
    prices = load_prices(cold.data)

    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)  # the 2-worker pool starts cold
    cold_2_s, cold_2 = _timed(cold, prices, jobs=2)
    cold_s, cold_1 = _timed(cold, prices, jobs=1)
    warm_s, warm_1 = _timed(warm, prices, jobs=1)
    same = (cold_1.predictions[C.PREDICTED_RETURN].to_numpy().tobytes()
            == cold_2.predictions[C.PREDICTED_RETURN].to_numpy().tobytes())

    cold_loss, warm_loss = _mean_val_loss(cold_1), _mean_val_loss(warm_1)
    cold_epochs = sum(f["epochs"] for f in cold_1.folds)
    warm_epochs = sum(f["epochs"] for f in warm_1.folds)
    print(f"folds: {len(cold_1.folds)} ({cold_1.walk_forward['oos_bars']} out-of-sample bars / "
          f"63, from {cold_1.walk_forward['start'][:10]})")
    print(f"cold, 1 worker:  {cold_s:7.1f} s  {cold_epochs} epochs  mean best val loss "
          f"{cold_loss:.5f}  rmse {cold_1.metrics[C.MODEL][C.RMSE]:.6f}")
    print(f"cold, 2 workers: {cold_2_s:7.1f} s  (predictions identical: {same})")
    print(f"warm, 1 thread:  {warm_s:7.1f} s  {warm_epochs} epochs  mean best val loss "
          f"{warm_loss:.5f}  rmse {warm_1.metrics[C.MODEL][C.RMSE]:.6f}")
    print(json.dumps({
        "bench": "walk_forward",
        "folds": len(cold_1.folds),
        "cold_s": round(cold_s, 2),
        "warm_s": round(warm_s, 2),
        "speedup_warm": round(cold_s / warm_s, 3),
        "cold_val_loss_mean": round(cold_loss, 6),
        "warm_val_loss_mean": round(warm_loss, 6),
        "val_loss_ratio": round(warm_loss / cold_loss, 4),
        "cold_2_workers_s": round(cold_2_s, 2),
        "speedup_2_workers": round(cold_s / cold_2_s, 3),
        "cold_epochs": cold_epochs,
        "warm_epochs": warm_epochs,
        "identical_1_2_workers": same,
        "settings": {"epochs": epochs, "patience": args.patience,
                     "warm_epochs": args.warm_epochs, "hidden": args.hidden,
                     "layers": args.layers, "window": args.window, "start": start},
    }))


if __name__ == "__main__":
    main()
