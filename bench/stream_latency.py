"""Streaming inference latency: microseconds per bar of sandbox.stream.StreamPredictor.

Default sizes (window 30, hidden 64, 2 layers, 4 heads for the Transformer), one thread
(``torch.set_num_threads(1)``), the GSPC sample. Each kind's model is built with seeded
weights (latency does not depend on training) and its feature state fitted on the sample.
Per kind: the predictor is warmed with one window, then ``--bars`` closed bars are pushed one
at a time (features, ring buffer, one forward pass, inverse scaling), timed per bar; the
figure is the median. The exact mode is the default (the rows per pass that reproduce the
batch path bit for bit; ``rows`` in the output says how many).

Baseline, in the same process: the batch path (``Bundle.predict`` of the LSTM over all the
sample's bars: features, strided windows, fixed chunks of 1024), seconds / rows. The ratios
say how much a bar costs streamed, against its share of a batch prediction of the whole
history (the batch path has to be re-run over the history for each new bar otherwise).

    .venv/bin/python bench/stream_latency.py [--bars 500] [--rounds 3]

Ends with one line of JSON: lstm_us_per_bar, gru_us_per_bar, rnn_us_per_bar,
transformer_us_per_bar (null when the kind is not registered), batch_us_per_bar, the
*_vs_batch ratios, per kind the rows per forward pass, and batch_rerun_us_per_new_bar (the
batch path re-run over the whole sample for one new bar). Target: LSTM <= 1000 us per bar.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from sandbox import constants as C
from sandbox.config import DataSpec, ModelConfig, RunConfig


def build(kind: str, frame):
    import torch

    from sandbox import export, features, models

    config = ModelConfig(kind=kind)
    fs = features.prepare(frame, window=config.window, target=config.target)
    torch.manual_seed(0)
    model = models.build_model(config, fs.x.shape[1]).eval()
    return export.Bundle(config=RunConfig(model=config), feature_state=fs.state, model=model)


def stream_us(bundle, frame, bars: int, rounds: int) -> tuple[float, int]:
    """Median microseconds per pushed bar, over ``rounds`` passes of ``bars`` bars."""
    import numpy as np

    from sandbox.stream import StreamPredictor

    predictor = StreamPredictor.from_bundle(bundle)
    window = predictor.window
    rows = frame[list(C.PRICE_COLUMNS)].to_numpy(np.float64)
    times: list[float] = []
    for _ in range(rounds):
        predictor.reset()
        predictor.warm(frame.iloc[:window])
        for row in rows[window:window + bars]:
            t = time.perf_counter()
            predictor.push(*row)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6, predictor.rows


def batch_us(bundle, frame, rounds: int) -> float:
    """Best microseconds per row of the batch prediction over the whole frame."""
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        out = bundle.predict(frame)
        best = min(best, (time.perf_counter() - t) / len(out))
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=500, help="bars pushed per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch

    from sandbox import models
    from sandbox.data import load_prices

    torch.set_num_threads(1)
    frame = load_prices(DataSpec()).frame
    print(f"GSPC sample: {len(frame)} bars; one thread; {args.bars} bars x {args.rounds} rounds")
    batch = batch_us(build(C.LSTM, frame), frame, args.rounds)
    print(f"batch (LSTM, Bundle.predict over every bar): {batch:9.1f} us per bar")
    out: dict[str, float | int | None] = {}
    for kind in (C.LSTM, C.GRU, C.RNN, C.TRANSFORMER):
        if kind not in models.REGISTRY:
            out[f"{kind}_us_per_bar"] = None
            print(f"{kind:12s} not registered")
            continue
        us, rows = stream_us(build(kind, frame), frame, args.bars, args.rounds)
        out[f"{kind}_us_per_bar"] = round(us, 1)
        out[f"{kind}_vs_batch"] = round(us / batch, 2)
        out[f"{kind}_rows_per_pass"] = rows
        print(f"{kind:12s} streamed: {us:9.1f} us per bar ({us / batch:6.2f}x the batch's "
              f"share; {rows} row(s) per pass)")
    out["batch_us_per_bar"] = round(batch, 2)
    # without a stream, a new bar means predicting the whole history again (or re-slicing it)
    out["batch_rerun_us_per_new_bar"] = round(batch * len(frame), 1)
    print(f"re-running the batch over the {len(frame)} bars for each new bar: "
          f"{batch * len(frame):,.0f} us")
    lstm = out.get(f"{C.LSTM}_us_per_bar")
    out["lstm_target_met"] = bool(lstm is not None and lstm <= 1000.0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
