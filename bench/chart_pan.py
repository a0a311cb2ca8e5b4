"""Chart protocol: pan and zoom 100,000 candles, ours against finplot, in one run.

Protocol (ARCHITECTURE.md, "Chart protocol"): 100,000 daily candles from a seeded geometric
random walk (numpy ``default_rng(0)``, open = previous close, high / low beyond both); a
1400x900 window; ``first_paint_s`` = from handing the data to the chart to the first completed
``grab()``; pan = show the last 2,000 bars, then 200 steps each moving the x range left by 1%
of its width; zoom = 50 steps growing the visible range geometrically from 2,000 bars to all
100,000 (anchored on the last bar). Every step is timed from setting the range to a completed
``grab()`` (pending events processed first); the y range follows the visible bars.

The same protocol then runs on 1,000,000 one-minute candles in a new chart: the same kind
of random walk with a minute's scale of moves (normal(0, 0.0008) log returns, wicks of
|normal(0, 0.0004)|), minute bars from 2000-01-03 on (ten years of 1-minute bars is about
that many). Keys ``first_paint_s_1m``, ``pan_ms_median_1m``, ``zoom_ms_median_1m``, with
their ratios to the 100,000-bar figures of the same run (target <= 1.5). ``load_s_1m`` is
the part of the first paint spent in ``set_prices`` (the UI thread is busy for that long).
Append: with the last 2,000 of the million bars in view, 200 more bars are appended one at
a time (``PriceChart.append_bar``), each timed to a completed ``grab()``
(``append_ms_median``; the target is <= 2x the median pan step at 1,000,000 bars,
``append_vs_pan_1m``).

Both charts show candles and volume. finplot 1.9.7 depends on PyQt6, so it runs in a child
process (``--finplot``) with ``PYQTGRAPH_QT_LIB=PyQt6``; ours runs on PySide6 in this one.

``--overlays`` also hands ours a run's overlays on every bar before the steps (close,
predicted close and the naive forecast beside it, trade markers, equity of the model, buy and
hold and a baseline, over train / val / test); ``--return-view`` shows the predicted vs actual
return pane as well. Not part of the protocol: they measure what the lines cost.

Run::

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/chart_pan.py
    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/chart_pan.py --no-finplot --overlays

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

N_BARS = 100_000
N_BARS_1M = 1_000_000
APPEND_BARS = 200
WIDTH, HEIGHT = 1400, 900
PAN_BARS = 2_000
PAN_STEPS = 200
PAN_STEP_FRACTION = 0.01
ZOOM_STEPS = 50


def make_bars(n: int = N_BARS, *, seed: int = 0, minutes: bool = False) -> pd.DataFrame:
    """Daily candles from a geometric random walk: open = previous close, high/low beyond both
    (``minutes``: one-minute bars from 2000-01-03 instead of business days from 1850, with a
    minute's scale of moves, so a million of them stay in a plausible price range)."""
    rng = np.random.default_rng(seed)
    drift, vol, wick = (0.0, 0.0008, 0.0004) if minutes else (0.0002, 0.012, 0.006)
    log_returns = rng.normal(drift, vol, n)
    close = 100.0 * np.exp(np.cumsum(log_returns))
    open_ = np.empty(n)
    open_[0] = 100.0
    open_[1:] = close[:-1]
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * (1.0 + np.abs(rng.normal(0.0, wick, n)))
    low = bottom * (1.0 - np.abs(rng.normal(0.0, wick, n)))
    volume = np.round(rng.lognormal(13.0, 0.5, n))
    # Business days from 1850 keep 100,000 bars inside pandas' nanosecond range.
    index = (pd.date_range("2000-01-03", periods=n, freq="min", name="date") if minutes
             else pd.bdate_range("1850-01-01", periods=n, name="date"))
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=index)


def make_overlays(frame: pd.DataFrame, *, seed: int = 1
                  ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """A run's predictions and baselines on every bar: 70 / 15 / 15 % train / val / test, a
    noisy forecast (noise on the scale of the bars' moves), long while it is positive, equity
    compounding per split."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    close = frame["close"].to_numpy()
    actual = np.r_[np.log(close[1:] / close[:-1]), np.nan]
    split = np.array(["train"] * n, dtype=object)
    split[int(n * 0.70):] = "val"
    split[int(n * 0.85):] = "test"

    def one(predicted: np.ndarray) -> pd.DataFrame:
        position = (predicted > 0).astype(np.float64)
        out = pd.DataFrame({"split": split, "close": close, "actual_return": actual,
                            "predicted_return": predicted, "position": position,
                            "strategy_return": position * np.nan_to_num(actual)},
                           index=frame.index)
        out["equity"] = (1.0 + out["strategy_return"]).groupby(out["split"], sort=False).cumprod()
        return out

    # forecast noise a third of the bars' own moves (0.004 for the daily walk)
    noise = np.nanstd(actual) / 3.0
    predictions = one(0.3 * np.nan_to_num(actual) + rng.normal(0.0, noise, n))
    baselines = {"buy_and_hold": one(np.ones(n)), "random_walk": one(np.zeros(n)),
                 "momentum": one(np.r_[0.0, np.nan_to_num(actual)[:-1]]),
                 "drift": one(np.full(n, 0.0002))}
    return predictions, baselines


def pan_ranges(n: int) -> list[tuple[float, float]]:
    """The 200 pan steps: last 2,000 bars, then 1% of the width to the left each step."""
    x0, x1 = n - PAN_BARS - 0.5, n - 0.5
    out = []
    for _ in range(PAN_STEPS):
        shift = (x1 - x0) * PAN_STEP_FRACTION
        x0, x1 = x0 - shift, x1 - shift
        out.append((x0, x1))
    return out


def zoom_ranges(n: int) -> list[tuple[float, float]]:
    """The 50 zoom steps: widths growing geometrically from 2,000 to n bars, right-anchored."""
    ratio = (n / PAN_BARS) ** (1.0 / ZOOM_STEPS)
    return [(n - 0.5 - PAN_BARS * ratio**i, n - 0.5) for i in range(1, ZOOM_STEPS + 1)]


def summarise(times_s: list[float]) -> tuple[float, float]:
    """Median and 95th percentile, in milliseconds."""
    ms = np.asarray(times_s) * 1000.0
    return float(np.median(ms)), float(np.percentile(ms, 95))


# ----------------------------------------------------------------------------- ours -----------
def run_ours(frame: pd.DataFrame, *, overlays: bool = False, return_view: bool = False,
             append: pd.DataFrame | None = None) -> dict:
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")  # as sandbox.ui does
    from pyqtgraph.Qt import QtWidgets

    from sandbox.ui.charts import PriceChart

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    chart = PriceChart(dark=True)
    chart.resize(WIDTH, HEIGHT)
    chart.show()
    app.processEvents()
    chart.grab()  # the window is up and painted once before the data arrives

    t0 = time.perf_counter()
    chart.set_prices(frame, title="random walk")
    load = time.perf_counter() - t0
    app.processEvents()
    chart.grab()
    first_paint = time.perf_counter() - t0
    if overlays or return_view:
        predictions, baselines = make_overlays(frame)
        chart.set_splits(predictions["split"])
        chart.set_predictions(predictions, baselines)
        if return_view:
            chart.set_return_view(True)
        app.processEvents()
        chart.grab()
    items = [chart.items_drawn()]
    cached = [chart.candles.cached_items]

    def step(x0: float, x1: float) -> float:
        t = time.perf_counter()
        chart.set_x_range(x0, x1)
        app.processEvents()
        chart.grab()
        dt = time.perf_counter() - t
        items.append(chart.items_drawn())
        cached.append(chart.candles.cached_items)
        return dt

    n = len(frame)

    def steps_from_last_bars(ranges) -> tuple[list[float], int]:
        """Show the last PAN_BARS bars, then time each range; also count cache rebuilds."""
        chart.set_x_range(n - PAN_BARS - 0.5, n - 0.5)
        app.processEvents()
        chart.grab()
        rebuilds0 = chart.candles.rebuilds
        times = [step(a, b) for a, b in ranges]
        return times, chart.candles.rebuilds - rebuilds0

    pan, pan_rebuilds = steps_from_last_bars(pan_ranges(n))
    zoom, zoom_rebuilds = steps_from_last_bars(zoom_ranges(n))
    # The last zoom step shows everything: the y range must cover every bar.
    (_, _), (y0, y1) = chart.price_plot.getViewBox().viewRange()
    assert y0 <= frame["low"].min() and y1 >= frame["high"].max(), "y does not follow the bars"
    appended = [] if append is None else append_steps(app, chart, append)
    chart.close()
    return {"first_paint_s": first_paint, "load_s": load, "pan": pan, "zoom": zoom,
            "append": appended,
            "max_items_drawn": max(items), "max_items_cached": max(cached),
            "pan_rebuilds": pan_rebuilds, "zoom_rebuilds": zoom_rebuilds}


def append_steps(app, chart, bars: pd.DataFrame) -> list[float]:
    """Show the last PAN_BARS bars, then append ``bars`` one at a time, each timed to a
    completed ``grab()``; the view must follow the new bars."""
    n = chart.bar_count()
    chart.set_x_range(n - PAN_BARS - 0.5, n - 0.5)
    app.processEvents()
    chart.grab()
    rows = zip(bars.index, *(bars[c].to_numpy() for c in ("open", "high", "low", "close",
                                                        "volume")), strict=True)
    times = []
    for date, o, h, lo, c, v in rows:
        t = time.perf_counter()
        chart.append_bar(date, o, h, lo, c, v)
        app.processEvents()
        chart.grab()
        times.append(time.perf_counter() - t)
    x0, x1 = chart.visible_range()
    assert x1 == chart.bar_count() - 0.5 and x1 - x0 == PAN_BARS, "the view did not follow"
    return times


# ----------------------------------------------------------------------------- finplot --------
def run_finplot(frame: pd.DataFrame) -> dict:
    """The same protocol with finplot (needs PyQt6; run in its own process)."""
    import finplot as fplt
    from pyqtgraph.Qt import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    ax = fplt.create_plot("finplot", maximize=False)
    win = fplt.windows[0]
    win.resize(WIDTH, HEIGHT)
    fplt.show(qt_exec=False)
    app.processEvents()
    win.grab()

    df = frame.reset_index()
    t0 = time.perf_counter()
    fplt.candlestick_ochl(df[["date", "open", "close", "high", "low"]], ax=ax)
    fplt.volume_ocv(df[["date", "open", "close", "volume"]], ax=ax.overlay())
    fplt.refresh()
    app.processEvents()
    win.grab()
    first_paint = time.perf_counter() - t0

    def step(x0: float, x1: float) -> float:
        t = time.perf_counter()
        ax.vb.update_y_zoom(x0, x1)  # what finplot does on a user pan / zoom: x and y together
        app.processEvents()
        win.grab()
        return time.perf_counter() - t

    n = len(frame)
    ax.vb.update_y_zoom(n - PAN_BARS - 0.5, n - 0.5)
    app.processEvents()
    win.grab()
    pan = [step(a, b) for a, b in pan_ranges(n)]
    ax.vb.update_y_zoom(n - PAN_BARS - 0.5, n - 0.5)
    app.processEvents()
    win.grab()
    zoom = [step(a, b) for a, b in zoom_ranges(n)]
    return {"first_paint_s": first_paint, "pan": pan, "zoom": zoom}


def measure_finplot() -> dict | None:
    """Run :func:`run_finplot` in a child process; None if finplot is not installed."""
    env = dict(os.environ, PYQTGRAPH_QT_LIB="PyQt6")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    proc = subprocess.run([sys.executable, __file__, "--finplot"], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    if proc.returncode != 0:
        print(f"finplot run failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}",
              file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finplot", action="store_true", help="(internal) run finplot only")
    parser.add_argument("--no-finplot", action="store_true", help="skip the finplot baseline")
    parser.add_argument("--overlays", action="store_true",
                        help="also show a run's predictions, markers and equity on every bar")
    parser.add_argument("--return-view", action="store_true",
                        help="also show the predicted vs actual return pane (implies --overlays)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    frame = make_bars()
    if args.finplot:
        print(json.dumps(run_finplot(frame)))
        return 0

    # finplot first, in its own process, so the two never share a CPU.
    theirs = None if args.no_finplot else measure_finplot()
    ours = run_ours(frame, overlays=args.overlays, return_view=args.return_view)
    pan_med, pan_p95 = summarise(ours["pan"])
    zoom_med, zoom_p95 = summarise(ours["zoom"])
    big = make_bars(N_BARS_1M + APPEND_BARS, minutes=True)
    mill = run_ours(big.iloc[:N_BARS_1M], overlays=args.overlays,
                    return_view=args.return_view, append=big.iloc[N_BARS_1M:])
    del big
    pan_med_1m, _ = summarise(mill["pan"])
    zoom_med_1m, _ = summarise(mill["zoom"])
    append_med, append_p95 = summarise(mill["append"])
    result = {
        "bench": "chart_pan",
        "overlays": "return view" if args.return_view else bool(args.overlays),
        "first_paint_s": round(ours["first_paint_s"], 4),
        "pan_ms_median": round(pan_med, 2),
        "pan_ms_p95": round(pan_p95, 2),
        "zoom_ms_median": round(zoom_med, 2),
        "zoom_ms_p95": round(zoom_p95, 2),
        "max_items_drawn": ours["max_items_drawn"],
        "first_paint_s_1m": round(mill["first_paint_s"], 4),
        "load_s_1m": round(mill["load_s"], 4),
        "pan_ms_median_1m": round(pan_med_1m, 2),
        "zoom_ms_median_1m": round(zoom_med_1m, 2),
        "pan_ratio_1m": round(pan_med_1m / pan_med, 3),
        "zoom_ratio_1m": round(zoom_med_1m / zoom_med, 3),
        "max_items_drawn_1m": mill["max_items_drawn"],
        "append_ms_median": round(append_med, 2),
        "append_ms_p95": round(append_p95, 2),
        "append_ms_max": round(max(mill["append"]) * 1000.0, 2),
        "append_vs_pan_1m": round(append_med / pan_med_1m, 3),
        "finplot_pan_ms_median": None,
        "finplot_zoom_ms_median": None,
    }
    print(f"ours:    first paint {ours['first_paint_s']:.3f} s   pan median {pan_med:.1f} ms "
          f"(p95 {pan_p95:.1f})   zoom median {zoom_med:.1f} ms (p95 {zoom_p95:.1f})   "
          f"items drawn <= {ours['max_items_drawn']} (cached picture <= "
          f"{ours['max_items_cached']})   picture rebuilds: pan {ours['pan_rebuilds']}/"
          f"{PAN_STEPS}, zoom {ours['zoom_rebuilds']}/{ZOOM_STEPS}")
    print(f"1M bars: first paint {mill['first_paint_s']:.3f} s (set_prices "
          f"{mill['load_s']:.3f} s)   pan median {pan_med_1m:.1f} ms ({pan_med_1m / pan_med:.2f}x "
          f"100k)   zoom median {zoom_med_1m:.1f} ms ({zoom_med_1m / zoom_med:.2f}x 100k)   "
          f"items drawn <= {mill['max_items_drawn']}   picture rebuilds: pan "
          f"{mill['pan_rebuilds']}/{PAN_STEPS}, zoom {mill['zoom_rebuilds']}/{ZOOM_STEPS}")
    print(f"append: median {append_med:.1f} ms (p95 {append_p95:.1f}, max "
          f"{max(mill['append']) * 1000:.0f}: the first append copies the columns into growable "
          f"buffers; start_replay does that up front) per bar, "
          f"{append_med / pan_med_1m:.2f}x the 1M pan step")
    if theirs is not None:
        f_pan_med, f_pan_p95 = summarise(theirs["pan"])
        f_zoom_med, f_zoom_p95 = summarise(theirs["zoom"])
        result["finplot_pan_ms_median"] = round(f_pan_med, 2)
        result["finplot_zoom_ms_median"] = round(f_zoom_med, 2)
        print(f"finplot: first paint {theirs['first_paint_s']:.3f} s   pan median "
              f"{f_pan_med:.1f} ms (p95 {f_pan_p95:.1f})   zoom median {f_zoom_med:.1f} ms "
              f"(p95 {f_zoom_p95:.1f})")
        print(f"ratio ours/finplot: pan {pan_med / f_pan_med:.2f}   zoom "
              f"{zoom_med / f_zoom_med:.2f}   (<= 1.00 is the target)")
    worst_1m = max(pan_med_1m / pan_med, zoom_med_1m / zoom_med)
    print(f"targets: first paint <= 0.5 s ({'ok' if ours['first_paint_s'] <= 0.5 else 'MISSED'}),"
          f" items <= ~3000 ({'ok' if ours['max_items_drawn'] <= 3000 else 'MISSED'}),"
          f" 1M first paint <= 0.3 s ({'ok' if mill['first_paint_s'] <= 0.3 else 'MISSED'}),"
          f" 1M pan / zoom <= 1.5x 100k ({'ok' if worst_1m <= 1.5 else 'MISSED'}),"
          f" append <= 2x pan ({'ok' if append_med <= 2 * pan_med_1m else 'MISSED'})")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
