"""The Replay bar: playback of a replay's steps on the chart, pause / step / stop, and the
figures it shows being the replay's own.

Most tests replay a fake job (``fake_replay``: steps whose values are simple formulas of the
bar's number, so the expected figures are known by hand); the last one replays a trained
model with the real :func:`sandbox.replay.stream_replay` and compares what the bar shows
and what the chart got with :func:`sandbox.replay.replay_frame` called apart.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.config import RunConfig
from sandbox.errors import Cancelled, DataError
from sandbox.ui import replay_bar as rb

N_BARS = 300
TEST_FROM = 200  # bars before the test split (and the default start)


def price_frame(n: int = N_BARS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.003, n))
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    index = pd.bdate_range("2020-01-01", periods=n, name=C.INDEX_NAME)
    return pd.DataFrame({C.OPEN: open_, C.HIGH: high, C.LOW: low, C.CLOSE: close,
                         C.VOLUME: np.full(n, 1000.0)}, index=index)


@dataclass
class FakeData:
    frame: pd.DataFrame
    label: str = "FAKE"


@dataclass
class FakeRun:
    """What the bar reads of a shown run (a RunResult has the same fields)."""

    config: RunConfig
    data: FakeData
    predictions: pd.DataFrame
    baselines: dict = field(default_factory=dict)
    feature_state: dict = field(default_factory=lambda: {"window": 10})
    weights: bytes | None = b"weights"
    trained_split: dict | None = None
    can_save: bool = True
    is_ensemble: bool = False
    walk_forward: dict | None = None


def fake_run(frame: pd.DataFrame | None = None) -> FakeRun:
    frame = price_frame() if frame is None else frame
    n = len(frame)
    split = np.array([C.TRAIN] * (TEST_FROM - 50) + [C.VAL] * 50 + [C.TEST] * (n - TEST_FROM))
    predictions = pd.DataFrame({C.SPLIT: split, C.CLOSE: frame[C.CLOSE].to_numpy(),
                                C.STRATEGY_RETURN: np.zeros(n)}, index=frame.index)
    return FakeRun(config=RunConfig(), data=FakeData(frame), predictions=predictions)


@dataclass(frozen=True)
class FakeStep:
    """The fields of sandbox.replay.ReplayStep the bar reads."""

    date: pd.Timestamp
    predicted_return: float
    position: float
    equity: float
    buy_hold_equity: float
    sharpe_so_far: float
    hits_so_far: int
    calls_so_far: int


def fake_step(date: pd.Timestamp, k: int) -> FakeStep:
    """Step number ``k`` (0 = the first replayed bar): simple formulas of k."""
    return FakeStep(date=date, predicted_return=0.001 * math.sin(k),
                    position=0.0 if k % 3 == 0 else 1.0, equity=1.0 + 0.001 * k,
                    buy_hold_equity=1.0 + 0.0005 * k, sharpe_so_far=0.01 * k,
                    hits_so_far=k // 2, calls_so_far=k)


def fake_replay(run: Any, frame: pd.DataFrame, start: Any, strategy: Any, *, on_result: Any,
                cancel: Any = None, batch: int = 7, pause_s: float = 0.0,
                fail_at: int | None = None) -> None:
    """Stands in for sandbox.replay.stream_replay: the steps from ``start`` on, in batches
    (a DataError at step ``fail_at``)."""
    first = int(frame.index.searchsorted(pd.Timestamp(start)))
    steps: list[FakeStep] = []
    for k, date in enumerate(frame.index[first:]):
        if cancel is not None and cancel.is_set():
            raise Cancelled("stopped")
        if k == fail_at:
            raise DataError("bar 42 gives a feature that is not finite")
        steps.append(fake_step(date, k))
        if len(steps) == batch:
            on_result(steps)
            steps = []
            time.sleep(pause_s)
    if steps:
        on_result(steps)


@pytest.fixture
def chart(qtbot):
    from sandbox.ui.charts import PriceChart

    widget = PriceChart(dark=True)
    qtbot.addWidget(widget)
    widget.resize(1000, 600)
    return widget


@pytest.fixture
def controller(qtbot):
    from sandbox.ui.controller import RunController

    ctl = RunController()
    yield ctl
    ctl.shutdown()


@pytest.fixture
def make_bar(qtbot, chart, controller, monkeypatch):
    def make(**job: Any) -> rb.ReplayBar:
        monkeypatch.setattr(rb, "replay_job", lambda: functools.partial(fake_replay, **job))
        bar = rb.ReplayBar(controller, chart)
        qtbot.addWidget(bar)
        return bar

    yield make


def wait_complete(qtbot, bar: rb.ReplayBar, timeout: int = 10_000) -> None:
    qtbot.waitUntil(lambda: bar.is_complete() and not bar.is_computing(), timeout=timeout)


def test_a_replay_fills_the_strip_and_appends_every_bar(qtbot, make_bar, chart):
    bar = make_bar()
    run = fake_run()
    bar.set_run(run)
    assert bar.start_date() == run.data.frame.index[TEST_FROM]  # the first test bar
    bar.set_speed(rb.MAX_SPEED)
    bar.play()
    assert chart.is_replay()
    assert chart.bar_count() == TEST_FROM  # the history before the start
    wait_complete(qtbot, bar)
    replayed = N_BARS - TEST_FROM
    assert bar.bars_shown() == replayed
    assert chart.bar_count() == N_BARS  # every replayed bar appended
    last = replayed - 1
    assert bar.equity_label.text() == f"Equity  {1.0 + 0.001 * last:.4f}"
    assert bar.sharpe_label.text() == f"Sharpe so far  {0.01 * last:.2f}"
    assert bar.hits_label.text() == (f"Hits so far  {last // 2}/{last} "
                                     f"({(last // 2) / last:.1%})")
    points = (0.001 * last - 0.0005 * last) * 100
    assert bar.hold_label.text().startswith(f"vs buy & hold  {points:+.2f} pts")
    assert rb.PAPER_ONLY in bar.paper_label.text()
    assert not bar.is_playing()


def test_the_chart_gets_each_step_with_its_bar(qtbot, make_bar, chart, monkeypatch):
    appended: list[pd.DataFrame] = []
    real = chart.append_bars
    monkeypatch.setattr(chart, "append_bars", lambda frame: (appended.append(frame),
                                                              real(frame))[1])
    bar = make_bar(batch=5)
    run = fake_run()
    bar.set_run(run)
    bar.set_speed(rb.MAX_SPEED)
    bar.play()
    wait_complete(qtbot, bar)
    got = pd.concat(appended)
    frame = run.data.frame.iloc[TEST_FROM:]
    assert got.index.equals(frame.index)
    for column in rb.PRICE_COLUMNS:
        np.testing.assert_array_equal(got[column].to_numpy(), frame[column].to_numpy())
    k = np.arange(len(frame))
    np.testing.assert_array_equal(got["equity"].to_numpy(), 1.0 + 0.001 * k)
    np.testing.assert_array_equal(got["hold_equity"].to_numpy(), 1.0 + 0.0005 * k)
    np.testing.assert_array_equal(got["position"].to_numpy(), np.where(k % 3 == 0, 0.0, 1.0))
    np.testing.assert_array_equal(got["predicted_return"].to_numpy(),
                                  [0.001 * math.sin(i) for i in k])


def test_pause_holds_the_bars_and_step_shows_one(qtbot, make_bar, chart):
    bar = make_bar()
    bar.set_run(fake_run())
    bar.set_speed(5.0)
    bar.play()
    qtbot.waitUntil(lambda: bar.bars_shown() >= 1, timeout=5_000)
    bar.pause()
    assert not bar.is_playing()
    shown = bar.bars_shown()
    qtbot.waitUntil(lambda: not bar.is_computing(), timeout=5_000)  # every step received
    qtbot.wait(300)
    assert bar.bars_shown() == shown  # paused: nothing more
    assert chart.bar_count() == TEST_FROM + shown
    bar.step()
    assert bar.bars_shown() == shown + 1
    bar.step()
    bar.step()
    assert bar.bars_shown() == shown + 3
    assert chart.bar_count() == TEST_FROM + shown + 3
    assert bar.shown_step()["equity"] == 1.0 + 0.001 * (shown + 2)
    assert not bar.is_playing()


def test_step_before_play_starts_a_replay_of_one_bar(qtbot, make_bar, chart):
    bar = make_bar()
    bar.set_run(fake_run())
    bar.step()
    qtbot.waitUntil(lambda: bar.bars_shown() == 1, timeout=5_000)
    qtbot.wait(200)
    assert bar.bars_shown() == 1
    assert chart.bar_count() == TEST_FROM + 1
    assert not bar.is_playing()


def test_speed_sets_the_pace(qtbot, make_bar):
    bar = make_bar()
    bar.set_run(fake_run())
    bar.set_speed(10.0)
    bar.play()
    qtbot.waitUntil(lambda: bar.bars_shown() >= 1, timeout=5_000)
    started, first = time.monotonic(), bar.bars_shown()
    qtbot.wait(1000)
    rate = (bar.bars_shown() - first) / (time.monotonic() - started)
    assert 5.0 <= rate <= 15.0  # about 10 bars a second
    bar.stop()


def test_stop_ends_the_job_and_the_playback(qtbot, make_bar, chart):
    bar = make_bar(batch=1, pause_s=0.02)  # ~50 bars a second: still computing when stopped
    bar.set_run(fake_run())
    bar.set_speed(rb.MAX_SPEED)
    ended: list[int] = []
    bar.replay_ended.connect(lambda: ended.append(1))
    bar.play()
    qtbot.waitUntil(lambda: bar.bars_shown() >= 3, timeout=5_000)
    assert bar.is_computing()
    with qtbot.waitSignal(bar.busy_changed, timeout=2_000):
        assert bar.stop() is True
    assert ended == [1]
    assert not bar.is_replaying() and not bar.is_computing() and not bar.is_playing()
    count = chart.bar_count()
    qtbot.waitUntil(lambda: not bar.controller.pool.is_busy(), timeout=2_000)  # job ended
    qtbot.wait(100)
    assert chart.bar_count() == count  # nothing appended after Stop
    assert bar.stop() is False


def test_jump_restarts_from_the_date_with_a_fresh_account(qtbot, make_bar, chart):
    bar = make_bar()
    run = fake_run()
    bar.set_run(run)
    bar.set_speed(rb.MAX_SPEED)
    bar.play()
    wait_complete(qtbot, bar)
    date = run.data.frame.index[250]
    bar.set_start_date(date)
    bar.jump()
    assert chart.bar_count() == 250  # history up to the new start
    wait_complete(qtbot, bar)
    assert chart.bar_count() == N_BARS
    assert bar.bars_shown() == N_BARS - 250
    assert bar.shown_step()["equity"] == 1.0 + 0.001 * (N_BARS - 250 - 1)


def test_a_new_run_stops_the_replay_and_an_ensemble_disables_the_bar(qtbot, make_bar):
    bar = make_bar(batch=1, pause_s=0.02)
    bar.set_run(fake_run())
    bar.play()
    qtbot.waitUntil(lambda: bar.bars_shown() >= 1, timeout=5_000)
    ensemble = fake_run()
    ensemble.is_ensemble, ensemble.can_save = True, False
    bar.set_run(ensemble)
    assert not bar.is_replaying()
    assert not bar.play_button.isEnabled() and not bar.step_button.isEnabled()
    bar.set_run(None)
    assert not bar.play_button.isEnabled()


def test_replaying_the_test_split_counts_one_look(qtbot, make_bar):
    from sandbox import looks
    from sandbox.export import fingerprint

    bar = make_bar()
    run = fake_run()
    key = fingerprint(run.data.frame)
    assert looks.look_count(key) == 0
    bar.set_run(run)
    bar.set_speed(rb.MAX_SPEED)
    bar.play()
    wait_complete(qtbot, bar)
    assert looks.look_count(key) == 1
    bar.play()  # again: the look was counted for this run already
    wait_complete(qtbot, bar)
    assert looks.look_count(key) == 1


def test_replaying_before_the_test_split_counts_no_look(qtbot, make_bar):
    from sandbox import looks
    from sandbox.export import fingerprint

    frame = price_frame()
    run = fake_run(frame)
    run.predictions = run.predictions.iloc[:TEST_FROM]  # no test rows
    bar = make_bar()
    bar.set_run(run)
    bar.set_start_date(frame.index[150])
    bar.set_speed(rb.MAX_SPEED)
    bar.play()
    wait_complete(qtbot, bar)
    assert looks.look_count(fingerprint(frame)) == 0



def test_a_trained_model_shows_the_replays_own_values(qtbot, chart, controller, small,
                                                      monkeypatch):
    """The real replay job (here on the worker thread): what the chart gets and what the strip
    shows equal sandbox.replay's steps, made apart on the same bars."""
    from sandbox import pipeline, replay

    run = pipeline.run(small, evidence=False)
    appended: list[pd.DataFrame] = []
    real = chart.append_bars
    monkeypatch.setattr(chart, "append_bars", lambda frame: (appended.append(frame),
                                                              real(frame))[1])
    chart.set_prices(run.data.frame)
    bar = rb.ReplayBar(controller, chart)
    qtbot.addWidget(bar)
    bar.set_run(run)
    bar.set_speed(rb.MAX_SPEED)
    bar.play()
    wait_complete(qtbot, bar, timeout=60_000)

    start = rb.default_start(run)
    steps: list[Any] = []
    replay.replay_frame(replay.as_bundle(run), run.data.frame, start, run.config.strategy,
                        on_step=steps.append)
    got = pd.concat(appended)
    assert len(got) == len(steps) == bar.bars_shown() > 0
    assert got.index.equals(pd.DatetimeIndex([s.date for s in steps]))
    for column, name in rb.OVERLAYS.items():
        np.testing.assert_array_equal(got[column].to_numpy(),
                                      [getattr(s, name) for s in steps], err_msg=column)
    last = steps[-1]
    shown = bar.shown_step()
    for name in rb.STEP_FIELDS:
        assert shown[name] == getattr(last, name), name
    assert bar.equity_label.text() == f"Equity  {last.equity:.4f}"
    assert bar.sharpe_label.text() == f"Sharpe so far  {last.sharpe_so_far:.2f}"
    assert bar.hits_label.text().startswith(
        f"Hits so far  {last.hits_so_far:,}/{last.calls_so_far:,}")


def test_no_replay_starts_while_training_holds_the_torch_process(qtbot, make_bar, chart,
                                                                 controller, monkeypatch):
    bar = make_bar()
    bar.set_run(fake_run())
    monkeypatch.setattr(controller, "is_training", lambda: True)
    bar.play()
    assert not bar.is_replaying() and not bar.is_computing()
    assert "training" in bar.progress_label.text()
    assert not chart.is_replay()
    monkeypatch.setattr(controller, "is_training", lambda: False)
    bar.set_speed(rb.MAX_SPEED)
    bar.play()
    wait_complete(qtbot, bar)
    assert bar.bars_shown() == N_BARS - TEST_FROM


def test_a_zoomed_view_stays_put_while_the_replay_appends(qtbot, make_bar, chart):
    """The user zooms into history during a replay: 100 more bars leave the x range as it
    was; a view at the last bar moves along with the bars."""
    bar = make_bar()
    run = fake_run()
    bar.set_run(run)
    bar.set_start_date(run.data.frame.index[100])  # 200 bars to replay
    bar.step()
    qtbot.waitUntil(lambda: bar.bars_received() == N_BARS - 100, timeout=5_000)
    x0, x1 = chart.visible_range()
    assert x1 >= chart.bar_count() - 1  # the replay starts with the last bar in view
    chart.set_x_range(40.0, 90.0)  # zoomed into history
    shown = bar.bars_shown()
    for _ in range(100):
        bar.step()
    assert bar.bars_shown() == shown + 100
    assert chart.visible_range() == pytest.approx((40.0, 90.0))
    chart.follow_last_bar()  # back to the last bar: the view follows again
    width = chart.visible_range()[1] - chart.visible_range()[0]
    bar.step()
    x0, x1 = chart.visible_range()
    assert x1 >= chart.bar_count() - 1
    assert x1 - x0 == pytest.approx(width)


def test_a_failed_replay_says_so_and_keeps_what_it_showed(qtbot, make_bar, chart):
    bar = make_bar(batch=5, fail_at=42)
    bar.set_run(fake_run())
    bar.set_speed(rb.MAX_SPEED)
    with qtbot.waitSignal(bar.replay_failed, timeout=5_000) as failed:
        bar.play()
    assert "not finite" in failed.args[0].message
    qtbot.waitUntil(lambda: not bar.is_computing() and not bar.is_playing(), timeout=5_000)
    assert bar.progress_label.text().startswith("Replay failed: bar 42")
    assert bar.bars_shown() == 40 == chart.bar_count() - TEST_FROM  # the batches before it


def test_a_walk_forward_model_replays_only_its_own_folds_bars(qtbot, make_bar, chart):
    """A walk-forward run's model is its last fold's, trained on every earlier bar: no replay
    starts before that fold's first predicted bar, whatever date is asked for."""
    run = fake_run()
    fold = np.full(N_BARS, np.nan)
    fold[TEST_FROM:] = np.repeat([0, 1, 2, 3], 25)  # the last fold from bar 275
    run.predictions[C.FOLD] = fold
    run.walk_forward = {"retrain_every": 25}
    bar = make_bar()
    bar.set_run(run)
    assert bar.start_date() == run.data.frame.index[275]
    bar.set_start_date(run.data.frame.index[150])
    bar.set_speed(rb.MAX_SPEED)
    bar.play()
    assert chart.bar_count() == 275
    wait_complete(qtbot, bar)
    assert bar.bars_shown() == N_BARS - 275


def test_bars_the_model_was_trained_on_are_marked(qtbot, make_bar):
    run = fake_run()  # train split: bars 0 .. 149
    bar = make_bar()
    bar.set_run(run)
    bar.set_start_date(run.data.frame.index[140])
    bar.step()
    qtbot.waitUntil(lambda: bar.bars_shown() == 1, timeout=5_000)
    assert bar.progress_label.text().endswith("(a bar the model was trained on)")
    # a step shows a bar that has arrived: wait until the eleven stepped through below have
    qtbot.waitUntil(lambda: bar.bars_received() >= 11, timeout=20_000)
    for _ in range(9):
        bar.step()  # bar 149: the last training bar
    assert bar.progress_label.text().endswith("(a bar the model was trained on)")
    bar.step()  # bar 150: validation
    assert "trained on" not in bar.progress_label.text()


@pytest.mark.slow  # ~20 s: a torch process is started and trains
def test_the_replay_runs_in_the_torch_process(qtbot, chart, controller, small, child_engine,
                                              monkeypatch):
    """As in the app: the run comes back from the torch process without its model (weights
    only), the replay runs there and its steps cross back; the values equal a replay made
    here from the same weights (to 1e-9; positions exactly)."""
    from sandbox import pipeline, replay

    run = child_engine.call(pipeline.run, (small,), {"evidence": False})
    assert run.model is None and run.weights is not None
    appended: list[pd.DataFrame] = []
    real = chart.append_bars
    monkeypatch.setattr(chart, "append_bars", lambda frame: (appended.append(frame),
                                                              real(frame))[1])
    chart.set_prices(run.data.frame)
    bar = rb.ReplayBar(controller, chart)
    qtbot.addWidget(bar)
    bar.set_run(run)
    bar.set_speed(rb.MAX_SPEED)
    bar.play()
    wait_complete(qtbot, bar, timeout=60_000)

    steps: list[Any] = []
    replay.replay_frame(replay.as_bundle(run), run.data.frame, rb.default_start(run),
                        run.config.strategy, on_step=steps.append)
    got = pd.concat(appended)
    assert len(got) == len(steps) > 0
    np.testing.assert_array_equal(got["position"].to_numpy(), [s.position for s in steps])
    for column in ("predicted_return", "equity", "hold_equity"):
        np.testing.assert_allclose(got[column].to_numpy(),
                                   [getattr(s, rb.OVERLAYS[column]) for s in steps],
                                   rtol=0.0, atol=1e-9, err_msg=column)
