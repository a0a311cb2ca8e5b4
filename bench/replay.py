"""Replay at full speed in the app: bars per second, and the UI thread's heartbeat meanwhile.

A real window (offscreen unless a display is set) holds the chart and the Replay bar as the
app does. The app's torch process trains the seed-sized LSTM (window 30, hidden 64, 2
layers) for ``EPOCHS`` epoch(s) on the GSPC sample; then:

1. ``baseline``: the same torch process replays the last ``BARS`` bars with
   :func:`sandbox.replay.replay_frame` and nothing else (no UI): the compute-only rate;
2. ``replay``: the Replay bar replays the same bars at speed Max: the steps are computed in
   the torch process, streamed back in batches and appended to the chart at ~30 Hz, with
   the metrics strip updated on each frame. It ends when the last bar is on the chart.

A single-shot ``QTimer`` (precise, 10 ms) re-arms itself on every tick during the replay;
lateness is how much later than due each tick fires (as ``bench/ui_stall.py`` measures).
Targets: ``bars_per_s_max_speed`` >= 500, ``ui_ms_p99`` <= 16 ms, ``ui_ms_max`` <= 100 ms.
``ratio_to_compute`` is the app's rate over the compute-only rate of the same run.

Run::

    .venv/bin/python bench/replay.py

The last line printed is one JSON object with the figures. Looks at the test split counted
by the replay go to a temporary file, not the user's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import numpy as np

BARS = 5_000
EPOCHS = 1
INTERVAL_MS = 10
TARGET_BARS_PER_S = 500.0
TARGET_P99_MS = 16.0
TARGET_MAX_MS = 100.0
SETTLE_S = 0.2


def main() -> None:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    looks_dir = tempfile.TemporaryDirectory()
    os.environ["SANDBOX_LOOKS_FILE"] = os.path.join(looks_dir.name, "looks.json")
    import sandbox.data  # pandas before Qt, as the app does
    import sandbox.ui

    # isort: split
    from PySide6 import QtCore, QtWidgets

    from sandbox import pipeline
    from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig
    from sandbox.ui import workers
    from sandbox.ui.charts import PriceChart
    from sandbox.ui.controller import RunController
    from sandbox.ui.replay_bar import MAX_SPEED, ReplayBar, replay_arguments, replay_job
    from sandbox.ui.workers import MainThreadGC

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    collector = MainThreadGC(app)
    config = RunConfig(
        data=DataSpec(source="sample:GSPC"),
        model=ModelConfig(kind="lstm", window=30, hidden=64, layers=2, dropout=0.2),
        train=TrainConfig(epochs=EPOCHS, patience=0, batch_size=64, seed=0),
    )
    prices = sandbox.data.load_prices(config.data)
    engine = workers.app_engine()
    engine.start()
    started = time.perf_counter()
    run = engine.call(pipeline.run, (config,), {"prices": prices, "evidence": False})
    train_s = time.perf_counter() - started
    frame = prices.frame
    start = frame.index[len(frame) - BARS]

    # -- baseline: the replay alone, in the torch process -----------------------------------
    started = time.perf_counter()
    table = engine.call(replay_job(), replay_arguments(run, start))
    compute_s = time.perf_counter() - started
    assert len(table) == BARS, len(table)

    # -- the app: chart + Replay bar in a window --------------------------------------------
    controller = RunController()
    window = QtWidgets.QMainWindow()
    central = QtWidgets.QWidget()
    box = QtWidgets.QVBoxLayout(central)
    chart = PriceChart(dark=True)
    bar = ReplayBar(controller, chart)
    box.addWidget(chart, 1)
    box.addWidget(bar)
    window.setCentralWidget(central)
    window.resize(1400, 900)
    window.show()
    chart.set_prices(frame, title=prices.label)
    collector.freeze_startup()

    def run_until(predicate, timeout_s: float = 600.0) -> None:
        deadline = time.monotonic() + timeout_s
        loop = QtCore.QEventLoop()
        check = QtCore.QTimer()
        check.setInterval(5)

        def poll() -> None:
            if predicate() or time.monotonic() > deadline:
                loop.quit()

        check.timeout.connect(poll)
        check.start()
        loop.exec()
        check.stop()
        if not predicate():
            raise SystemExit("timed out")

    settle(run_until)
    bar.set_run(run)
    bar.set_start_date(start)
    bar.set_speed(MAX_SPEED)
    heartbeat = _Heartbeat()
    heartbeat.start("replay")
    started = time.perf_counter()
    bar.play()
    run_until(lambda: bar.is_complete())
    replay_s = time.perf_counter() - started
    settle(run_until)  # the last repaint belongs to the replay
    heartbeat.stop()
    shown, on_chart = bar.bars_shown(), chart.bar_count()
    bar.shutdown()
    controller.shutdown()
    window.close()
    workers.shutdown_engine()
    collector.stop()
    looks_dir.cleanup()

    late = np.asarray(heartbeat.lateness.get("replay", []))
    rate = shown / replay_s
    compute_rate = BARS / compute_s
    p99, worst = float(np.percentile(late, 99)), float(late.max())
    print(f"trained {EPOCHS} epoch(s) in {train_s:.1f} s; replay alone in the torch process: "
          f"{compute_rate:,.0f} bars/s")
    print(f"replay in the app: {shown:,} bars in {replay_s:.2f} s = {rate:,.0f} bars/s "
          f"({rate / compute_rate:.2f}x the compute-only rate); chart holds {on_chart:,} bars")
    print(f"heartbeat: {late.size} ticks, p99 {p99:.1f} ms, max {worst:.1f} ms")
    meets = rate >= TARGET_BARS_PER_S and p99 <= TARGET_P99_MS and worst <= TARGET_MAX_MS
    print(json.dumps({
        "bench": "replay",
        "bars": shown,
        "bars_per_s_max_speed": round(rate, 1),
        "bars_per_s_compute_only": round(compute_rate, 1),
        "ratio_to_compute": round(rate / compute_rate, 3),
        "ui_ms_p99": round(p99, 2),
        "ui_ms_max": round(worst, 2),
        "ticks": int(late.size),
        "meets_targets": meets,
        "ui_imported_torch": "torch" in sys.modules,
    }))


def settle(run_until, seconds: float = SETTLE_S) -> None:
    """Keep the event loop running a moment (pending repaints belong to the phase before)."""
    until = time.perf_counter() + seconds
    run_until(lambda: time.perf_counter() >= until)


class _Heartbeat:
    """A 10 ms single-shot timer re-armed on every tick; records lateness per phase."""

    def __init__(self) -> None:
        from PySide6 import QtCore

        self.timer = QtCore.QTimer()
        self.timer.setSingleShot(True)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.lateness: dict[str, list[float]] = {}
        self.phase = ""
        self.due = 0.0

    def start(self, phase: str) -> None:
        self.phase = phase
        self._arm()

    def stop(self) -> None:
        self.timer.stop()

    def _arm(self) -> None:
        self.due = time.perf_counter() + INTERVAL_MS / 1000
        self.timer.start()

    def _tick(self) -> None:
        late_ms = max(0.0, (time.perf_counter() - self.due) * 1000)
        self.lateness.setdefault(self.phase, []).append(late_ms)
        self._arm()


if __name__ == "__main__":
    main()
