"""training.fit() throughput vs a bare PyTorch loop, and first-epoch warm-up.

Seed configuration: GSPC sample, window 60, LSTM hidden 64, 2 layers, dropout 0.2,
batch 64, Adam + MSE + gradient clipping, the default thread count. Both loops start from
the same initial weights, use the same window tensor (a strided view), the same shuffled
order (a torch.Generator with the same seed) and, each epoch, one validation forward pass
(fit() needs it for early stopping; patience is 0 here so every run has the same epochs).
Runs alternate (fit, bare, bare, fit, ...) in one process; the figures are medians.

Where the app trains: in its torch process (a child spawned by :mod:`sandbox.engine`), with
fit()'s progress events sent over the pipe to the calling thread as the app's training
worker receives them. ``--in-process`` runs the same rounds in this process instead, with
the events dropped.

    .venv/bin/python bench/train_throughput.py [--rounds 3] [--epochs 3] [--in-process]

Ends with one line of JSON: samples_per_s, bare_samples_per_s, ratio (>= 0.95 wanted),
first_epoch_ratio (fit's first epoch, timed from the call, over a steady epoch; <= 1.5 wanted).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time

from sandbox import constants as C
from sandbox.config import DataSpec, ModelConfig, TrainConfig


def bare_loop(model, windows, targets, train_rows, val_rows, *, epochs, batch_size, lr, clip,
              seed):
    """The reference: what anyone would write by hand. Returns (seconds, train_seconds)."""
    import torch

    start = time.perf_counter()
    train_s = 0.0
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(train_rows)
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        order = train_rows[torch.randperm(n, generator=gen)]
        for b in range(0, n, batch_size):
            idx = order[b:b + batch_size]
            loss = torch.nn.functional.mse_loss(model(windows[idx]), targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
        train_s += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            torch.nn.functional.mse_loss(model(windows[val_rows]), targets[val_rows]).item()
    return time.perf_counter() - start, train_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process, not in the app's torch process")
    args = parser.parse_args()
    if args.in_process:
        figures = measure(args.rounds, args.epochs, on_event=lambda event: None)
    else:
        from sandbox.engine import ChildEngine

        engine = ChildEngine()
        try:
            received: list[object] = []
            figures = engine.call(measure, (args.rounds, args.epochs),
                                  stream_arg="on_event", on_stream=received.append)
        finally:
            engine.shutdown()
        print(f"(in the torch process; {len(received)} progress events reached this process)")
    print(json.dumps({"bench": "train_throughput", **figures,
                      "where": "in_process" if args.in_process else "torch_process"}))


def measure(rounds: int, epochs: int, *, on_event) -> dict[str, float]:
    """The alternating rounds; ``on_event`` receives fit()'s progress as in the app."""
    import torch

    from sandbox import features, models, training
    from sandbox.data import load_prices

    sys.stdout.reconfigure(line_buffering=True)  # the torch process prints as it goes
    args = argparse.Namespace(rounds=rounds, epochs=epochs)
    model_cfg = ModelConfig(kind=C.LSTM, window=60, hidden=64, layers=2, dropout=0.2)
    train_cfg = TrainConfig(epochs=args.epochs, patience=0, batch_size=64, lr=1e-3, seed=0)
    prices = load_prices(DataSpec(source=f"{C.SOURCE_SAMPLE}:GSPC")).frame
    fs = features.prepare(prices, window=model_cfg.window)
    training.configure_torch(train_cfg)
    x = torch.from_numpy(fs.x)
    windows = features.windows(x, fs.seq_len)  # (N, 59, 5) view
    targets = torch.from_numpy(fs.y)
    train_rows = torch.from_numpy(fs.fit_rows[C.TRAIN])
    val_rows = torch.from_numpy(fs.fit_rows[C.VAL])
    n = len(train_rows)
    init = models.build_model(model_cfg, x.shape[1]).state_dict()
    print(f"GSPC: {n} training windows of {fs.seq_len} x {x.shape[1]}, "
          f"{torch.get_num_threads()} thread(s), {args.epochs} epochs x {args.rounds} rounds")

    fit_rates, bare_rates, fit_train, bare_train, first_ratios = [], [], [], [], []

    def run_fit() -> None:
        model = models.build_model(model_cfg, x.shape[1])
        model.load_state_dict(copy.deepcopy(init))
        t = time.perf_counter()
        h = training.fit(model, windows, targets, train_rows, val_rows, train_cfg,
                         on_event=on_event)
        seconds = time.perf_counter() - t
        fit_rates.append(n * h.epochs_run / seconds)
        fit_train.append(statistics.median(h.samples_per_s))
        first_ratios.append(h.epoch_seconds[0] / statistics.median(h.epoch_seconds[1:]))
        print(f"  fit : {fit_rates[-1]:8.0f} samples/s  epochs "
              + " ".join(f"{s:.2f}s" for s in h.epoch_seconds))

    def run_bare() -> None:
        model = models.build_model(model_cfg, x.shape[1])
        model.load_state_dict(copy.deepcopy(init))
        seconds, train_s = bare_loop(model, windows, targets, train_rows, val_rows,
                                     epochs=args.epochs, batch_size=train_cfg.batch_size,
                                     lr=train_cfg.lr, clip=train_cfg.grad_clip, seed=0)
        bare_rates.append(n * args.epochs / seconds)
        bare_train.append(n * args.epochs / train_s)
        print(f"  bare: {bare_rates[-1]:8.0f} samples/s")

    for r in range(args.rounds):
        for step in ((run_fit, run_bare) if r % 2 == 0 else (run_bare, run_fit)):
            step()

    fit_sps = statistics.median(fit_rates)
    bare_sps = statistics.median(bare_rates)
    print(f"training phase only: fit {statistics.median(fit_train):.0f} vs bare "
          f"{statistics.median(bare_train):.0f} samples/s")
    print(f"first epoch / steady epoch (first fit, cold process): {first_ratios[0]:.2f}",
          flush=True)
    return {
        "samples_per_s": round(fit_sps, 1),
        "bare_samples_per_s": round(bare_sps, 1),
        "ratio": round(fit_sps / bare_sps, 3),
        "first_epoch_ratio": round(first_ratios[0], 3),
    }


if __name__ == "__main__":
    main()
