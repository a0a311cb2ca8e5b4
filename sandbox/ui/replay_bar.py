"""The Replay bar: watch the shown run's model trade the bars after a date, one at a time.

The replay itself runs in the app's torch process (:func:`sandbox.replay.stream_replay`
through a :class:`~sandbox.ui.workers.StreamWorker` with ``remote=True``): the streaming
predictor meets each bar as it would have live, the strategy decides and the paper account
fills by the backtest's semantics. The steps come back in small batches as fast as they are
computed and wait on a :class:`Tape`; a ~30 Hz timer on the UI thread releases them to the
chart (:meth:`PriceChart.append_bars`) at the chosen speed. So Play, Pause, Step and the
speed answer at once, the torch process is free again as soon as the steps are computed,
and the UI thread never waits on it. Every figure the bar shows (equity, Sharpe so far, hits
so far, buy & hold) is the replay's own value for the bar shown, never recomputed here.

Replaying into the test split shows the model's test results, so it counts a look at the
test split (:mod:`sandbox.looks`) as Show test results does, unless one was counted for
this run already. Paper trading only: nothing here places an order, and the bar says so.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
from PySide6 import QtCore, QtWidgets

from sandbox import constants as C
from sandbox.ui.controller import has_test_rows, split_bounds
from sandbox.ui.workers import StreamWorker, TaskWorker

__all__ = ["MAX_SPEED", "PAPER_ONLY", "SPEEDS", "ReplayBar", "Tape", "replayable"]

Signal = QtCore.Signal

#: the speeds offered, in bars per second; MAX_SPEED (0) is as fast as possible
MAX_SPEED = 0.0
SPEEDS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 100.0, MAX_SPEED)
DEFAULT_SPEED = 10.0
#: how often the chart and the strip are updated while playing (ms): ~30 Hz
FRAME_MS = 33
#: a frame's drawing (the chart's append, then its paint, about as long) may take at most
#: this share of the UI thread: a costlier frame spaces the next one out
FRAME_SHARE = 0.5
#: the longest wait between two frames (ms), however costly they are
MAX_FRAME_MS = 250
#: the worker thread hands the steps to the UI thread at most this often (s)
HAND_OVER_S = 0.03
#: bars of history in view when a replay starts (the view then moves along with new bars)
VIEW_BARS = 150
#: room kept right of the last bar, for the predicted next close drawn there
VIEW_AHEAD = 3
PAPER_ONLY = "Paper trading only: nothing here places an order."
_NO_RUN_TIP = "Train a model or load a saved one to replay it bar by bar."
_ENSEMBLE_TIP = ("An average of several models has no single model to replay: train one "
                 "seed or load a saved model.")

#: the per-bar columns of a step batch (numpy arrays of equal length)
BAR, DATE = "bar", C.INDEX_NAME
PRICE_COLUMNS = (C.OPEN, C.HIGH, C.LOW, C.CLOSE, C.VOLUME)
#: the chart's overlay columns, and the step field each is taken from
OVERLAYS = {"predicted_return": "predicted_return", "position": "position", "equity": "equity",
            "hold_equity": "buy_hold_equity"}


def replayable(result: Any) -> bool:
    """``result`` has one fitted model to replay (a trained run or a saved model's, not an
    average of several)."""
    return result is not None and bool(result.can_save) and not result.is_ensemble


def model_start(result: Any) -> pd.Timestamp | None:
    """The earliest bar the run's model may replay without having seen it: for a
    walk-forward run, whose model is its last fold's, that fold's first predicted bar
    (earlier bars were in its training rows); None for any other run."""
    if getattr(result, "walk_forward", None) is None or C.FOLD not in result.predictions:
        return None
    fold = pd.to_numeric(result.predictions[C.FOLD], errors="coerce").to_numpy(np.float64)
    if not np.isfinite(fold).any():
        return None
    first = int(np.flatnonzero(fold == np.nanmax(fold))[0])
    return pd.Timestamp(result.predictions.index[first])


def trained_until(result: Any) -> pd.Timestamp | None:
    """The last bar ``result``'s model was trained on, when known (its last train-split row);
    a replay of it and earlier bars shows the model bars it has seen."""
    from sandbox.features import in_rows_timezone

    own = model_start(result)
    index = result.data.frame.index
    if own is not None:  # a walk-forward model saw every bar before its fold
        i = int(index.searchsorted(in_rows_timezone(index, own)))
        return pd.Timestamp(index[i - 1]) if i > 0 else None
    predictions = result.predictions
    if len(predictions) and predictions[C.SPLIT].iat[0] == C.TRAIN:
        _start, stop = split_bounds(predictions, C.TRAIN)
        return pd.Timestamp(predictions.index[stop - 1])
    end = (result.trained_split or {}).get("train_end")
    return in_rows_timezone(index, pd.Timestamp(end)) if end else None


def default_start(result: Any) -> pd.Timestamp | None:
    """Where a replay of ``result`` starts unless the user picks a date: its first test-split
    bar (else the trained run's test start, else its last fifth); for a walk-forward run,
    its last fold's first predicted bar."""
    last_fold = model_start(result)
    if last_fold is not None:
        return last_fold
    predictions = result.predictions
    if has_test_rows(result):
        start, _stop = split_bounds(predictions, C.TEST)
        return pd.Timestamp(predictions.index[start])
    split = result.trained_split or {}
    if split.get("test_start"):
        return pd.Timestamp(split["test_start"])
    index = result.data.frame.index
    return pd.Timestamp(index[len(index) * 4 // 5]) if len(index) else None


def first_replayed(result: Any, date: Any) -> int:
    """Position in ``result``'s prices of the first bar a replay from ``date`` shows: the
    first bar on or after it (None: the first possible), never before the first bar with a
    full window (as :func:`sandbox.replay.replay_start`), nor before a walk-forward model's
    own fold (:func:`model_start`), nor after the last bar."""
    from sandbox.features import in_rows_timezone

    index = result.data.frame.index
    lowest = int(result.feature_state.get("window", 1)) - 1
    own = model_start(result)
    if own is not None:
        lowest = max(lowest, int(index.searchsorted(in_rows_timezone(index, own))))
    first = 0
    if date is not None:
        first = int(index.searchsorted(in_rows_timezone(index, pd.Timestamp(date))))
    return max(0, min(max(first, lowest), len(index) - 1))


class Tape:
    """The replayed bars received so far, and how many of them are shown.

    Batches arrive from the worker as dicts of equal-length numpy arrays; :meth:`take`
    hands the next bars out as one dict of arrays, without copying more than it returns.
    """

    def __init__(self) -> None:
        self._batches: list[dict[str, np.ndarray]] = []
        self._first = 0  # index into _batches of the batch holding the next bar
        self._offset = 0  # the next bar's row in that batch
        self.received = 0
        self.shown = 0
        self.complete = False  # the job has sent its last batch

    @property
    def pending(self) -> int:
        """Bars received and not shown yet."""
        return self.received - self.shown

    def add(self, batch: dict[str, np.ndarray]) -> None:
        n = len(batch[BAR])
        if n:
            self._batches.append(batch)
            self.received += n

    def take(self, n: int) -> dict[str, np.ndarray] | None:
        """The next ``n`` bars (fewer if fewer are pending) as one batch; None if none."""
        n = min(n, self.pending)
        if n <= 0:
            return None
        parts: list[dict[str, np.ndarray]] = []
        left = n
        while left:
            batch = self._batches[self._first]
            size = len(batch[BAR]) - self._offset
            k = min(size, left)
            parts.append({key: value[self._offset:self._offset + k]
                          for key, value in batch.items()})
            left -= k
            if k == size:
                self._batches[self._first] = {}  # shown: let it go
                self._first += 1
                self._offset = 0
            else:
                self._offset += k
        self.shown += n
        if len(parts) == 1:
            return parts[0]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


class _ReplayWorker(StreamWorker):
    """A StreamWorker that hands the streamed steps over in batches of at most one every
    :data:`HAND_OVER_S` (each hand-over is one queued signal to the UI thread), whatever
    the size of the batches the job streams."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: list[Any] = []
        self._last = 0.0
        self._lock = threading.Lock()

    def work(self) -> Any:
        try:
            return self._call_engine(self.fn, self.args, self.kwargs,
                                     stream_arg=self.result_arg, on_stream=self._hold,
                                     here=not self.remote)
        finally:
            self._flush()

    def _hold(self, value: Any) -> None:  # worker thread
        with self._lock:
            self._held.append(value)
        now = time.monotonic()
        if now - self._last >= HAND_OVER_S:
            self._last = now
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        if held:
            self.streamed.emit(held)


def _speed_text(speed: float) -> str:
    if speed == MAX_SPEED:
        return "Max"
    return f"{speed:g} bar/s" if speed == 1 else f"{speed:g} bars/s"


class ReplayBar(QtWidgets.QWidget):
    """Play / Pause / Step / Speed / From controls and a running metrics strip for a replay
    of the shown run's model on the chart.

    Parameters
    ----------
    controller : RunController
        The app's controller: its worker pool runs the replay job.
    chart : PriceChart
        The chart the replayed bars are appended to.
    parent : QWidget, optional

    Signals
    -------
    busy_changed()
        :meth:`is_computing` or :meth:`is_replaying` changed.
    replay_started()
        The chart was put in replay mode (history up to the start date, then appends).
    replay_ended()
        The replay was stopped or replaced (the chart keeps what it shows).
    stepped(int)
        Bars shown so far in this replay (after each update of the chart).
    replay_failed(Failure)
        The replay's job failed (the bar says so too; a window may show the dialog).
    """

    busy_changed = Signal()
    replay_started = Signal()
    replay_ended = Signal()
    stepped = Signal(int)
    replay_failed = Signal(object)

    def __init__(self, controller: Any, chart: Any,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.chart = chart
        self._run: Any = None
        self._worker: _ReplayWorker | None = None
        self._look_worker: TaskWorker | None = None
        self._looked: Any = None  # the run whose test split a look was counted for here
        self._tape: Tape | None = None
        self._frame: pd.DataFrame | None = None  # the prices being replayed
        self._start: pd.Timestamp | None = None  # their first replayed bar
        self._trained_until: pd.Timestamp | None = None  # the run's last training bar
        self._playing = False
        self._steps_owed = 0  # Step presses waiting for bars to arrive
        self._budget = 0.0  # bars the speed allows and not shown yet
        self._last_tick = 0.0
        self._speed = DEFAULT_SPEED
        self._error = ""
        self._shown_row: dict[str, Any] | None = None  # the figures of the bar shown last
        self._shown_date: pd.Timestamp | None = None
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(FRAME_MS)
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._build()
        self.set_run(None)

    # ============================================================== widgets ===============
    def _build(self) -> None:
        self.play_button = QtWidgets.QToolButton()
        self.play_button.setText("Play")
        self.play_button.setToolTip("Replay the model bar by bar from the From date "
                                    "(Pause stops the playback where it is)")
        self.play_button.clicked.connect(self.toggle_play)
        self.step_button = QtWidgets.QToolButton()
        self.step_button.setText("Step")
        self.step_button.setToolTip("Show one more bar (pauses the playback)")
        self.step_button.clicked.connect(self.step)
        self.speed_box = QtWidgets.QComboBox()
        for speed in SPEEDS:
            self.speed_box.addItem(_speed_text(speed), speed)
        self.speed_box.setCurrentIndex(SPEEDS.index(DEFAULT_SPEED))
        self.speed_box.setToolTip("Bars shown per second; Max: as fast as they are computed")
        self.speed_box.currentIndexChanged.connect(self._on_speed_chosen)
        self.date_edit = QtWidgets.QDateEdit()
        self.date_edit.setCalendarPopup(True)
        self.date_edit.setDisplayFormat("yyyy-MM-dd")
        self.date_edit.setToolTip("First bar to replay (the account is fresh there); by "
                                  "default the model's first test bar")
        self.jump_button = QtWidgets.QToolButton()
        self.jump_button.setText("Jump")
        self.jump_button.setToolTip("Start the replay again from the From date")
        self.jump_button.clicked.connect(self.jump)
        self.progress_label = QtWidgets.QLabel()
        self.progress_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.paper_label = QtWidgets.QLabel(PAPER_ONLY)
        self.paper_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        font = self.paper_label.font()
        font.setItalic(True)
        self.paper_label.setFont(font)
        self.equity_label = _metric_label("Equity of the replayed account (1.0 at the start)",
                                          "Equity  00.0000")
        self.sharpe_label = _metric_label("Annualised Sharpe ratio of the strategy returns "
                                          "realised so far", "Sharpe so far  -00.00")
        self.hits_label = _metric_label("Bars whose predicted direction was right, of those "
                                        "realised so far", "Hits so far  0,000/0,000 (00.0%)")
        self.hold_label = _metric_label("The account's equity minus buy & hold's from the "
                                        "same bar, in points", "vs buy & hold  +000.00 pts "
                                        "(B&H 00.0000)")

        controls = QtWidgets.QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        title = QtWidgets.QLabel("Replay")
        bold = title.font()
        bold.setBold(True)
        title.setFont(bold)
        controls.addWidget(title)
        controls.addWidget(self.play_button)
        controls.addWidget(self.step_button)
        controls.addWidget(self.speed_box)
        controls.addSpacing(8)
        controls.addWidget(QtWidgets.QLabel("From"))
        controls.addWidget(self.date_edit)
        controls.addWidget(self.jump_button)
        controls.addSpacing(8)
        controls.addWidget(self.progress_label, 1)
        controls.addWidget(self.paper_label)
        strip = QtWidgets.QHBoxLayout()
        strip.setContentsMargins(0, 0, 0, 0)
        for label in (self.equity_label, self.sharpe_label, self.hits_label, self.hold_label):
            strip.addWidget(label)
        strip.addStretch(1)
        box = QtWidgets.QVBoxLayout(self)
        box.setContentsMargins(6, 2, 6, 2)
        box.setSpacing(2)
        box.addLayout(controls)
        box.addLayout(strip)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred,
                           QtWidgets.QSizePolicy.Policy.Fixed)
        self._show_metrics(None)

    # ============================================================== public API ============
    def set_run(self, result: Any) -> None:
        """The shown run changed (None: none). A single model enables the bar; a replay in
        progress is stopped."""
        if result is self._run and result is not None:
            return
        self._end_replay()
        self._run = result
        ok = replayable(result)
        for widget in (self.play_button, self.step_button, self.date_edit, self.jump_button):
            widget.setEnabled(ok)
        self.setToolTip("" if ok else _ENSEMBLE_TIP if result is not None else _NO_RUN_TIP)
        if ok:
            index = result.data.frame.index
            first, last = index[first_replayed(result, None)], index[-1]
            self.date_edit.setDateRange(QtCore.QDate(first.year, first.month, first.day),
                                        QtCore.QDate(last.year, last.month, last.day))
            start = default_start(result)
            if start is not None:
                self.date_edit.setDate(QtCore.QDate(start.year, start.month, start.day))
        self._error = ""
        self._show_metrics(None)
        self._show_progress()

    def stop(self) -> bool:
        """Stop the replay (the job in the torch process too); True when one was running.
        The chart keeps the bars shown so far."""
        running = self.is_replaying()
        self._end_replay()
        self._show_progress()
        return running

    def shutdown(self) -> None:
        """Stop and forget the replay's jobs (the window closes; the controller's pool waits
        for their threads)."""
        self._timer.stop()
        for worker in (self._worker, self._look_worker):
            if worker is not None:
                worker.cancel()
        self._worker = self._look_worker = None
        self._tape = None
        self._playing = False

    def is_replaying(self) -> bool:
        """A replay is on the chart (playing, paused, or still being computed)."""
        return self._tape is not None or self._look_worker is not None

    def is_computing(self) -> bool:
        """The replay's job runs in the torch process now (or the look is being counted)."""
        return self._worker is not None or self._look_worker is not None

    def is_playing(self) -> bool:
        return self._playing

    @property
    def speed(self) -> float:
        """Bars per second (:data:`MAX_SPEED`: as fast as they come)."""
        return self._speed

    def set_speed(self, speed: float) -> None:
        self.speed_box.setCurrentIndex(SPEEDS.index(speed))

    def start_date(self) -> pd.Timestamp:
        date = self.date_edit.date()
        return pd.Timestamp(date.year(), date.month(), date.day())

    def set_start_date(self, date: Any) -> None:
        day = pd.Timestamp(date)
        self.date_edit.setDate(QtCore.QDate(day.year, day.month, day.day))

    def bars_shown(self) -> int:
        """Bars of this replay on the chart."""
        return self._tape.shown if self._tape is not None else 0

    def bars_received(self) -> int:
        return self._tape.received if self._tape is not None else 0

    def shown_step(self) -> dict[str, Any] | None:
        """The replay's values at the last bar shown (as the step carried them), or None."""
        return None if self._shown_row is None else dict(self._shown_row)

    def is_complete(self) -> bool:
        """Every bar of the replay was computed and shown."""
        tape = self._tape
        return tape is not None and tape.complete and tape.pending == 0

    # ============================================================== actions ===============
    def toggle_play(self) -> None:
        """Play, or Pause while playing."""
        if self._playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if not replayable(self._run):
            return
        if self._tape is None or self.is_complete():
            self._begin(playing=True)
            return
        self._set_playing(True)

    def pause(self) -> None:
        self._set_playing(False)

    def step(self) -> None:
        """Show one more bar and pause."""
        if not replayable(self._run):
            return
        self._set_playing(False)
        if self._tape is None or self.is_complete():
            self._begin(playing=False)
        self._steps_owed += 1
        self._release_owed()

    def jump(self) -> None:
        """Start again from the From date: paused there when the replay was paused, else
        playing."""
        if replayable(self._run):
            paused = self._tape is not None and not self._playing and not self.is_complete()
            self._begin(playing=not paused)

    # ============================================================== the replay ============
    def _begin(self, *, playing: bool) -> None:
        """A fresh replay from the From date: history on the chart, the job started (after
        counting a look when it reaches the test split)."""
        self._end_replay()
        busy = self._torch_busy()
        if busy:
            self._error = f"Replay waits: {busy} holds the torch process; try again after it."
            self._show_progress()
            return
        run = self._run
        self._frame = frame = run.data.frame
        start = frame.index[first_replayed(run, self.start_date())]
        self._start = start
        self._trained_until = trained_until(run)
        self._tape = Tape()
        self._steps_owed = 0
        self._budget = 0.0
        self._error = ""
        shown = self.chart.start_replay(frame, start, title=run.data.label,
                                        fill=run.config.strategy.fill)
        if shown:  # the last bars of history, big enough to read; new bars come in at right
            self.chart.set_x_range(shown - 0.5 - VIEW_BARS, shown - 0.5 + VIEW_AHEAD)
        self._show_metrics(None)
        self.replay_started.emit()
        if self._needs_look(run, start):
            self._count_look(run, playing)
        else:
            self._start_job(run, start)
        self._set_playing(playing)
        self.busy_changed.emit()

    def _torch_busy(self) -> str:
        """What holds the app's torch process now ("" when nothing does): a replay started
        meanwhile would wait behind it."""
        ctl = self.controller
        if ctl.is_training():
            return "training"
        if ctl.is_sweeping():
            return "the sweep"
        if ctl.is_auditing():
            return "the leakage audit"
        return ""

    def _needs_look(self, run: Any, start: pd.Timestamp) -> bool:
        """Replaying from ``start`` shows test rows of ``run`` whose look is not counted."""
        if not has_test_rows(run) or run is self._looked:
            return False
        if run is self.controller.result and self.controller.shown_look() is not None:
            return False
        return start <= run.predictions.index[-1]

    def _count_look(self, run: Any, playing: bool) -> None:
        from sandbox.ui import controller as controller_module

        worker = TaskWorker(controller_module._look_at_test, run, None)
        worker.returned.connect(self._on_look_counted)
        worker.failed.connect(self._on_job_failed)
        worker.finished.connect(self._on_look_finished)
        self._look_worker = worker
        self.controller.pool.start(worker, name="sandbox-replay-look")

    @QtCore.Slot(object)
    def _on_look_counted(self, _value: Any) -> None:
        if self.sender() is not self._look_worker:
            return
        self._looked = self._run
        self._look_worker = None
        if self._tape is not None:
            self._start_job(self._run, self._start)

    @QtCore.Slot()
    def _on_look_finished(self) -> None:
        if self.sender() is self._look_worker:  # failed: no replay
            self._look_worker = None
            self._tape = None
            self._set_playing(False)
        self.busy_changed.emit()

    def _start_job(self, run: Any, start: pd.Timestamp) -> None:
        worker = _ReplayWorker(replay_job(), *replay_arguments(run, start),
                               remote=True)
        worker.streamed.connect(self._on_streamed)
        worker.returned.connect(self._on_returned)
        worker.failed.connect(self._on_job_failed)
        worker.finished.connect(self._on_job_finished)
        self._worker = worker
        self.controller.pool.start(worker, name="sandbox-replay")
        self.busy_changed.emit()

    @QtCore.Slot(object)
    def _on_streamed(self, values: list) -> None:
        if self.sender() is not self._worker or self._tape is None:
            return  # a cancelled job's last batches
        for value in values:
            self._tape.add(as_batch(value, self._frame))
        self._release_owed()
        self._show_progress()

    @QtCore.Slot(object)
    def _on_returned(self, _value: Any) -> None:
        if self.sender() is self._worker and self._tape is not None:
            self._tape.complete = True
            self._show_progress()

    @QtCore.Slot(object)
    def _on_job_failed(self, failure: Any) -> None:
        if self.sender() not in (self._worker, self._look_worker):
            return  # a stopped job's
        self._error = f"Replay failed: {failure.message}"
        if self._tape is not None:
            self._tape.complete = True  # what came before the failure still plays out
        if self.sender() is self._look_worker:
            self._set_playing(False)
        self._show_progress()
        self.replay_failed.emit(failure)

    @QtCore.Slot()
    def _on_job_finished(self) -> None:
        if self.sender() is self._worker:
            self._worker = None
            self.busy_changed.emit()

    def _end_replay(self) -> None:
        """Cancel the job and drop the tape (the chart keeps what it shows)."""
        was = self.is_replaying() or self.is_computing()
        self._timer.stop()
        self._playing = False
        for worker in (self._worker, self._look_worker):
            if worker is not None:
                worker.cancel()
        self._worker = self._look_worker = None
        self._tape = None
        self._steps_owed = 0
        self._sync_play_button()
        if was:
            self.replay_ended.emit()
            self.busy_changed.emit()

    # ============================================================== playback ==============
    def _set_playing(self, playing: bool) -> None:
        self._playing = playing and self._tape is not None
        if self._playing:
            self._last_tick = time.monotonic()
            self._budget = 1.0 if self._speed != MAX_SPEED else 0.0  # the first bar at once
            if not self._timer.isActive():
                self._timer.start()
            self._tick()
        else:
            self._timer.stop()
        self._sync_play_button()

    def _on_speed_chosen(self, index: int) -> None:
        self._speed = float(self.speed_box.itemData(index))
        self._budget = min(self._budget, 1.0)

    @QtCore.Slot()
    def _tick(self) -> None:
        """One frame: release the bars the speed allows since the last frame."""
        tape = self._tape
        if tape is None or not self._playing:
            self._timer.stop()
            return
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if self._speed == MAX_SPEED:
            n = tape.pending
        else:
            # a frame late does not make the playback jump ahead by more than a frame or two
            self._budget = min(self._budget + elapsed * self._speed,
                               max(1.0, 2 * self._timer.interval() / 1000 * self._speed))
            n = min(int(self._budget), tape.pending)
            self._budget -= n
        if n:
            began = time.perf_counter()
            self._show(tape.take(n))
            self._pace((time.perf_counter() - began) * 1000.0)
        if tape.complete and tape.pending == 0:
            self._set_playing(False)
            self._show_progress()

    def _pace(self, spent_ms: float) -> None:
        """Space the frames so that drawing them (``spent_ms`` to append, about as long to
        paint) keeps to :data:`FRAME_SHARE` of the UI thread."""
        wanted = 2.0 * spent_ms / FRAME_SHARE
        self._timer.setInterval(int(min(max(FRAME_MS, wanted), MAX_FRAME_MS)))

    def _release_owed(self) -> None:
        tape = self._tape
        if tape is None or not self._steps_owed:
            return
        n = min(self._steps_owed, tape.pending)
        if n:
            self._steps_owed -= n
            self._show(tape.take(n))

    def _show(self, batch: dict[str, np.ndarray] | None) -> None:
        """Append ``batch``'s bars to the chart and show its last bar's figures."""
        if batch is None:
            return
        self.chart.append_bars(chart_frame(batch))
        self._show_metrics({key: value[-1] for key, value in batch.items()})
        self._show_progress()
        self.stepped.emit(self.bars_shown())

    # ============================================================== the strip =============
    def _sync_play_button(self) -> None:
        self.play_button.setText("Pause" if self._playing else "Play")

    def _show_progress(self) -> None:
        tape = self._tape
        if self._error:
            text = self._error
        elif self._look_worker is not None:
            text = "Counting a look at the test split..."
        elif tape is None:
            text = "" if replayable(self._run) else self.toolTip()
        else:
            total = "" if tape.complete else " (computing...)"
            text = f"bar {tape.shown:,} of {tape.received:,}{total}"
            if self._shown_date is not None:
                text += f"  {_date_text(self._shown_date)}"
                if self._trained_until is not None and self._shown_date <= self._trained_until:
                    text += "  (a bar the model was trained on)"
        self.progress_label.setText(text)

    def _show_metrics(self, row: dict[str, Any] | None) -> None:
        """Show the replay's figures at one bar (None: dashes)."""
        self._shown_row = row
        if row is None:
            self._shown_date = None
            self.equity_label.setText("Equity  -")
            self.sharpe_label.setText("Sharpe so far  -")
            self.hits_label.setText("Hits so far  -")
            self.hold_label.setText("vs buy & hold  -")
            return
        self._shown_date = pd.Timestamp(row[DATE])
        self.equity_label.setText(f"Equity  {_number(row.get(METRIC_EQUITY), '.4f')}")
        self.sharpe_label.setText(f"Sharpe so far  {_number(row.get(METRIC_SHARPE), '.2f')}")
        hits, tried = row.get(METRIC_HITS), row.get(METRIC_CALLS)
        if tried is None or not _finite(tried) or tried <= 0:
            self.hits_label.setText("Hits so far  -")
        else:
            self.hits_label.setText(f"Hits so far  {int(hits):,}/{int(tried):,} "
                                    f"({hits / tried:.1%})")
        equity, hold = row.get(METRIC_EQUITY), row.get(METRIC_HOLD)
        if _finite(equity) and _finite(hold):
            self.hold_label.setText(f"vs buy & hold  {(equity - hold) * 100:+.2f} pts "
                                    f"(B&H {hold:.4f})")
        else:
            self.hold_label.setText("vs buy & hold  -")


# the figures of a step the strip shows (sandbox.replay.ReplayStep's fields, as it has them)
STEP_FIELDS = ("predicted_return", "position", "equity", "buy_hold_equity", "sharpe_so_far",
               "hits_so_far", "calls_so_far")
METRIC_EQUITY, METRIC_HOLD, METRIC_SHARPE = "equity", "buy_hold_equity", "sharpe_so_far"
METRIC_HITS, METRIC_CALLS = "hits_so_far", "calls_so_far"


def replay_job() -> Any:
    """The function the torch process runs: :func:`sandbox.replay.stream_replay` (imported
    here only to be named; it loads torch in the torch process, not in this one)."""
    from sandbox import replay

    return replay.stream_replay


def replay_arguments(run: Any, start: pd.Timestamp) -> tuple:
    """The positional arguments of :func:`sandbox.replay.stream_replay` for ``run`` from
    ``start``: the run without its tables (the torch process rebuilds the model from its
    weights; the predictions and baselines would only make the message larger), the
    prices, the start and the strategy."""
    tables = {"predictions": run.predictions.iloc[:0], "baselines": {}}
    names = {f.name for f in dataclasses.fields(run)}
    tables.update({name: [] for name in ("fold_weights", "fold_states") if name in names})
    slim = dataclasses.replace(run, **tables)
    return (slim, run.data.frame, start, run.config.strategy)


def as_batch(steps: Any, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """A streamed list of :class:`sandbox.replay.ReplayStep` as one batch of the tape: the
    steps' own values, with each bar's position in ``frame`` and its prices."""
    steps = list(steps)
    dates = pd.DatetimeIndex([step.date for step in steps])
    bar = frame.index.get_indexer(dates)
    batch: dict[str, np.ndarray] = {BAR: bar, DATE: dates.to_numpy()}
    for column in PRICE_COLUMNS:
        batch[column] = frame[column].to_numpy(np.float64)[bar]
    for name in STEP_FIELDS:
        batch[name] = np.array([getattr(step, name) for step in steps], dtype=np.float64)
    return batch


def chart_frame(batch: dict[str, np.ndarray]) -> pd.DataFrame:
    """A batch as :meth:`PriceChart.append_bars` takes it."""
    columns = {key: batch[key] for key in PRICE_COLUMNS}
    columns.update({column: batch[field] for column, field in OVERLAYS.items()})
    return pd.DataFrame(columns, index=pd.DatetimeIndex(batch[DATE], name=C.INDEX_NAME))


def _metric_label(tip: str, widest: str) -> QtWidgets.QLabel:
    """A figure of the strip, as wide as its ``widest`` text, so that figures do not move
    as their values change."""
    label = QtWidgets.QLabel()
    label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    label.setToolTip(tip)
    label.setMinimumWidth(label.fontMetrics().horizontalAdvance(widest) + 12)
    return label


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _number(value: Any, fmt: str) -> str:
    return format(float(value), fmt) if _finite(value) else "-"


def _date_text(date: pd.Timestamp) -> str:
    return f"{date:%Y-%m-%d %H:%M}" if (date.hour or date.minute) else f"{date:%Y-%m-%d}"
