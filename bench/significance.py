"""Significance block speed: the whole ``"significance"`` object of a 750-row test split.

The bundled GSPC sample (real daily bars, offline) is split so that its last 750 rows are the
test split, with a synthetic forecast (a third of the true next return plus noise, seeded) and
the four baselines; everything is paper-traded once as a run does (``evaluate.trade_all``).
Then :func:`sandbox.significance.significance` runs on the test split with the defaults (1,000
bootstrap draws, 95 %): once cold, with the first import of statsmodels, arch and scipy in
this process, then ``--repeat`` times warm (median; target under 1 s). For scale, the same
process times ``trade_all`` on the same frames (the paper trading and metrics of every split
that every run already pays for) and prints the ratio. Ends with one line of JSON.

Run: ``.venv/bin/python bench/significance.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from sandbox import constants as C
from sandbox import evaluate
from sandbox.config import DataSpec, StrategyConfig
from sandbox.data import load_prices

TEST_ROWS = 750
VAL_ROWS = 750


def _seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm timed calls (median)")
    args = parser.parse_args()

    prices = load_prices(DataSpec()).frame  # bundled GSPC sample, no network
    close = prices[C.CLOSE].to_numpy(np.float64)
    rows = prices.index[1:]  # the first bar has no last return
    actual = np.r_[np.log(close[2:] / close[1:-1]), np.nan]
    momentum = np.log(close[1:] / close[:-1])
    n = len(rows)
    labels = np.array([C.TRAIN] * (n - VAL_ROWS - TEST_ROWS) + [C.VAL] * VAL_ROWS
                      + [C.TEST] * TEST_ROWS, dtype=object)
    noise = np.random.default_rng(0).normal(0.0, 0.01, n)
    predicted = np.nan_to_num(actual) / 3.0 + noise
    model = evaluate.predictor_frame(rows, labels, close[1:], actual, predicted)
    baselines = evaluate.baseline_frames(rows, labels, close[1:], actual, momentum,
                                         float(np.nanmean(actual[labels == C.TRAIN])))
    strategy = StrategyConfig()  # long_flat, next-open fill, 5 bps

    def trade():
        return evaluate.trade_all(prices, model, baselines, strategy, target=C.TARGET_RETURN)

    trades = trade()
    periods = trades.metrics_by_split[C.TEST][C.PERIODS_PER_YEAR]

    from sandbox.significance import significance  # cheap: statsmodels/arch load on first call

    result = {}

    def block():
        result.update(significance(prices, trades.predictions, trades.baselines, strategy,
                                   split=C.TEST, horizon=1, periods_per_year=periods))

    started = time.perf_counter()
    block()
    cold = time.perf_counter() - started
    seconds = _seconds(block, args.repeat)
    trade_s = _seconds(trade, max(args.repeat, 5))
    rows_used = result["rows"]
    print(f"{TEST_ROWS}-row test split ({rows_used['trading']} trading rows, "
          f"{result['reps']} draws, block {result['block_length']}): "
          f"{seconds * 1e3:.0f} ms warm (median of {args.repeat}), "
          f"{cold * 1e3:.0f} ms cold with the imports")
    print(f"trade_all on the same frames (every split, model and baselines): "
          f"{trade_s * 1e3:.1f} ms -> significance / trade_all = {seconds / trade_s:.1f}x")
    print(json.dumps({
        "bench": "significance",
        "seconds": round(seconds, 4),
        "cold_seconds": round(cold, 4),
        "trade_all_seconds": round(trade_s, 4),
        "ratio_vs_trade_all": round(seconds / trade_s, 2),
        "rows": rows_used["trading"],
        "reps": result["reps"],
        "block_length": result["block_length"],
    }))


if __name__ == "__main__":
    main()
