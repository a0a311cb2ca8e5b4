"""Backtest speed: 1,000,000 bars, and the same 20,000 bars through backtesting.py, same run.

Prints the seconds for one ``backtest()`` call on 1,000,000 one-minute bars with random
fractional long/short positions and 5 bps costs (median of ``--repeat`` calls after one
warm-up; target well under 1 s), bars/s, then the ratio of backtesting.py's time to ours
on the same 20,000 daily bars and long/flat signals (``trade_on_close=False``, no costs;
target >= 50x). The two equity curves are compared where their semantics coincide (see
tests/test_backtest.py) so both engines are known to do the same work. Ends with one line
of JSON.

Run: ``.venv/bin/python bench/backtest.py [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.backtest import backtest


def _random_walk(n: int, *, freq: str, seed: int) -> pd.DataFrame:
    """Seeded geometric random walk of OHLCV bars (open = previous close, plus a gap)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    index = pd.date_range("1950-01-02", periods=n, freq=freq, name=C.INDEX_NAME)
    return pd.DataFrame({C.OPEN: open_, C.HIGH: high, C.LOW: low, C.CLOSE: close,
                         C.VOLUME: rng.integers(1_000, 100_000, n).astype(np.float64)},
                        index=index)


def _median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_million(repeat: int) -> float:
    n = 1_000_000
    prices = _random_walk(n, freq="min", seed=0)
    positions = pd.Series(np.random.default_rng(1).uniform(-1, 1, n), index=prices.index)
    seconds = _median_seconds(lambda: backtest(prices, positions, cost_bps=5.0), repeat)
    print(f"1,000,000 bars: {seconds * 1e3:.1f} ms per backtest, {n / seconds:,.0f} bars/s")
    return seconds


def bench_vs_backtesting_py(repeat: int) -> tuple[float, float, float]:
    from backtesting import Backtest, Strategy

    n = 20_000
    prices = _random_walk(n, freq="B", seed=2)
    # long/flat signals that hold for a while: switch with probability 0.1 a bar
    rng = np.random.default_rng(3)
    signal = (np.cumsum(rng.uniform(size=n) < 0.1) % 2).astype(np.float64)
    signal[0] = 0.0  # backtesting.py first asks the strategy at bar 1

    class Follow(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            want = signal[len(self.data) - 1]
            if want > 0 and not self.position:
                self.buy()
            elif want == 0 and self.position:
                self.position.close()

    cash = 1e15  # whole-share rounding below 1e-12 of equity
    data = prices.rename(columns=str.capitalize)
    stats = None

    def theirs() -> None:
        nonlocal stats
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = Backtest(data, Follow, cash=cash, commission=0.0, trade_on_close=False,
                             exclusive_orders=False).run()

    positions = pd.Series(signal[1:], index=prices.index[1:])  # backtesting.py starts at bar 1
    result = None

    def ours() -> None:
        nonlocal result
        result = backtest(prices, positions, fill=C.FILL_NEXT_OPEN, cost_bps=0.0)

    their_s = _median_seconds(theirs, max(1, repeat // 2))
    our_s = _median_seconds(ours, repeat * 10)

    # same work: our open-marked equity, marked to each close, equals theirs
    equity = result.frame[C.EQUITY].to_numpy()
    at_open = np.ones(n)
    at_open[3:] = equity[: n - 3]
    long_through = np.r_[0.0, signal[:-1]] > 0
    close, open_ = prices[C.CLOSE].to_numpy(), prices[C.OPEN].to_numpy()
    marked = at_open * np.where(long_through, close / open_, 1.0)
    gap = float(np.max(np.abs(marked / (stats["_equity_curve"]["Equity"].to_numpy() / cash) - 1)))
    print(f"20,000 bars, {len(stats['_trades'])} trades: backtesting.py {their_s * 1e3:.1f} ms, "
          f"ours {our_s * 1e3:.3f} ms -> {their_s / our_s:,.0f}x; "
          f"largest relative equity difference {gap:.1e}")
    return their_s, our_s, gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per measurement")
    args = parser.parse_args()
    seconds = bench_million(args.repeat)
    their_s, our_s, gap = bench_vs_backtesting_py(args.repeat)
    print(json.dumps({
        "bench": "backtest",
        "seconds_1m_bars": round(seconds, 4),
        "bars_per_s_1m": round(1_000_000 / seconds),
        "ratio_vs_backtesting_py": round(their_s / our_s, 1),
        "backtesting_py_seconds_20k": round(their_s, 4),
        "ours_seconds_20k": round(our_s, 6),
        "equity_max_rel_diff_20k": gap,
    }))


if __name__ == "__main__":
    main()
