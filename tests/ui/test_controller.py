"""The run lifecycle without a window: RunController loads, trains, stops, re-trades, runs
tasks and drops results that arrive too late. No chart or widget is built.

Tiny runs (window 10, hidden 8, 2 epochs, GSPC since 2014) in this process (the
``in_process_engine`` fixture). Qt warnings fail the tests.
"""

from __future__ import annotations

import threading

import pytest
from helpers import count_slow_batches

from sandbox import constants as C
from sandbox import pipeline
from sandbox.config import DataSpec
from sandbox.errors import TrainingError
from sandbox.ui.controller import RunController
from sandbox.ui.workers import TrainWorker

SMALL_DATA = DataSpec(source="sample:GSPC", start="2014-01-01")


class Events:
    """Every signal of a controller, in order, as (name, args)."""

    NAMES = ("load_started", "prices_loaded", "load_failed", "load_ended", "run_started",
             "epoch_done", "member_done", "result_ready", "ensemble_ready", "run_failed",
             "run_ended", "retraded", "model_loaded", "written", "result_dropped",
             "task_failed", "task_refused", "task_ended", "busy_changed")

    def __init__(self, controller: RunController) -> None:
        self.seen: list[tuple[str, tuple]] = []
        for name in self.NAMES:
            # emitted on the UI thread: a plain callable is called right there
            getattr(controller, name).connect(
                lambda *args, name=name: self.seen.append((name, args)))

    def names(self) -> list[str]:
        return [name for name, _args in self.seen if name != "busy_changed"]

    def args(self, name: str) -> list[tuple]:
        return [args for n, args in self.seen if n == name]


@pytest.fixture
def controller(qtbot):
    c = RunController()
    yield c
    c.shutdown()
    assert not c.is_busy()


@pytest.fixture
def loaded(controller, qtbot) -> RunController:
    with qtbot.waitSignal(controller.load_ended, timeout=20_000) as ended:
        assert controller.load(SMALL_DATA)
    assert ended.args == ["finished"]
    qtbot.waitUntil(lambda: not controller.is_busy(), timeout=10_000)
    return controller


def hold_until_released(monkeypatch, module, name: str) -> threading.Event:
    """Make ``module.name`` wait (on its worker thread) until the returned event is set."""
    release = threading.Event()
    real = getattr(module, name)

    def held(*args, **kwargs):
        release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, held)
    return release


def train(qtbot, controller, config, seeds: int = 1) -> str:
    with qtbot.waitSignal(controller.run_ended, timeout=60_000) as ended:
        assert controller.train(config, seeds)
    return ended.args[0]


def test_load_keeps_the_prices_and_forgets_the_shown_run(controller, qtbot, small):
    events = Events(controller)
    assert controller.prices is None and controller.is_idle()
    with qtbot.waitSignal(controller.load_ended, timeout=20_000):
        assert controller.load(SMALL_DATA)
        assert controller.is_loading() and not controller.is_idle()
        assert not controller.load(SMALL_DATA)  # one load at a time
        assert not controller.train(small)  # no data yet
    assert events.names() == ["load_started", "prices_loaded", "load_ended"]
    assert events.args("load_ended") == [("finished",)]
    loaded = events.args("prices_loaded")[0][0]
    assert controller.prices is loaded and controller.loaded_spec == SMALL_DATA
    assert loaded.label == "GSPC" and len(loaded.frame) > 1000
    assert controller.is_idle() and controller.result is None


def test_a_bad_source_fails_and_keeps_the_data(loaded, qtbot, tmp_path):
    events = Events(loaded)
    before = loaded.prices
    missing = DataSpec(source=f"csv:{tmp_path / 'gone.csv'}")
    with qtbot.waitSignal(loaded.load_ended, timeout=20_000) as ended:
        loaded.load(missing)
    assert ended.args == ["failed"]
    (failure, spec), = events.args("load_failed")
    assert spec == missing and "gone.csv" in failure.message and not failure.is_bug
    assert loaded.prices is before and loaded.loaded_spec == SMALL_DATA


def test_train_then_retrade_without_training(loaded, qtbot, small, monkeypatch):
    events = Events(loaded)
    assert train(qtbot, loaded, small) == "finished"
    assert [args[0]["epoch"] for args in events.args("epoch_done")] == [1, 2]
    (result,), = events.args("result_ready")
    assert loaded.result is result and result.data is loaded.prices
    assert result.n_seeds == 1 and not result.is_ensemble and result.can_save
    (worker, config, seeds, jobs), = events.args("run_started")
    assert isinstance(worker, TrainWorker) and config == small and (seeds, jobs) == (1, 1)
    qtbot.waitUntil(loaded.is_idle, timeout=10_000)

    monkeypatch.setattr(pipeline, "run", lambda *a, **k: pytest.fail("retrained"))
    loaded.retrade(small.strategy)  # the same strategy: nothing to do
    assert not loaded.is_running_task()
    strategy = small.strategy.replace(cost_bps=50.0)
    with qtbot.waitSignal(loaded.task_ended, timeout=20_000) as ended:
        loaded.retrade(strategy)
    assert ended.args == ["retrade", True]
    (retraded,), = events.args("retraded")
    assert loaded.result is retraded is not result
    assert retraded.config.strategy.cost_bps == 50.0
    assert (retraded.metrics[C.MODEL][C.TOTAL_RETURN]
            != result.metrics[C.MODEL][C.TOTAL_RETURN])


def test_stop_cancels_training_within_a_batch(loaded, qtbot, small, monkeypatch):
    counts = count_slow_batches(monkeypatch)
    events = Events(loaded)
    config = small.replace(train=small.train.replace(epochs=200, batch_size=16))
    assert loaded.train(config)
    assert loaded.is_training() and not loaded.train(config)  # one training at a time
    assert not loaded.load(SMALL_DATA)  # no new data while training
    qtbot.waitUntil(lambda: counts["batches"] >= 5, timeout=60_000)
    with qtbot.waitSignal(loaded.run_ended, timeout=10_000) as ended:
        at_stop = counts["batches"]
        assert loaded.stop()
    assert ended.args == ["cancelled"]
    assert counts["batches"] - at_stop <= 1
    assert loaded.result is None and "result_ready" not in events.names()
    assert not loaded.stop()  # nothing left to stop


def test_training_and_task_errors_are_reported_by_name(loaded, qtbot, small, monkeypatch,
                                                       tmp_path):
    events = Events(loaded)

    def diverge(*args, **kwargs):
        raise TrainingError("training diverged at epoch 1 (loss is NaN)")

    monkeypatch.setattr(pipeline, "run", diverge)
    assert train(qtbot, loaded, small) == "failed"
    (failure,), = events.args("run_failed")
    assert "diverged" in failure.message and not failure.is_bug
    monkeypatch.undo()

    with qtbot.waitSignal(loaded.task_ended, timeout=20_000) as ended:
        loaded.load_model_from(str(tmp_path), small.strategy)
    assert ended.args == ["load_model", False]
    title, failure = events.args("task_failed")[-1]
    assert title == "Could not predict with the saved model"
    assert str(tmp_path) in failure.message

    assert train(qtbot, loaded, small) == "finished"
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    with qtbot.waitSignal(loaded.task_ended, timeout=20_000) as ended:
        loaded.export_predictions_to(str(a_file / "p.csv"))
    assert ended.args == ["export_predictions", False]
    assert events.args("task_failed")[-1][0] == "Could not export the predictions"
    with qtbot.waitSignal(loaded.task_ended, timeout=20_000) as ended:
        loaded.export_predictions_to(str(tmp_path / "p.csv"))
    assert ended.args == ["export_predictions", True]
    assert events.args("written")[-1] == (str(tmp_path / "p.csv"),)


def test_one_task_at_a_time_and_a_retrade_waits_for_it(loaded, qtbot, small, monkeypatch,
                                                      tmp_path):
    from sandbox import export

    assert train(qtbot, loaded, small) == "finished"
    qtbot.waitUntil(loaded.is_idle, timeout=10_000)
    events = Events(loaded)
    release = hold_until_released(monkeypatch, export, "write_predictions")
    loaded.export_predictions_to(str(tmp_path / "p.csv"))
    loaded.export_chart(str(tmp_path / "chart.svg"), b"<svg/>")
    assert events.args("task_refused") and not (tmp_path / "chart.svg").exists()
    strategy = small.strategy.replace(cost_bps=25.0)
    loaded.retrade(strategy)  # waits for the export
    with qtbot.waitSignal(loaded.retraded, timeout=20_000):
        release.set()
    qtbot.waitUntil(lambda: len(events.args("task_ended")) == 2, timeout=20_000)
    assert events.args("task_ended") == [("export_predictions", True), ("retrade", True)]
    assert loaded.result.config.strategy.cost_bps == 25.0


def test_a_saved_model_arriving_after_the_data_changed_is_dropped(loaded, qtbot, small,
                                                                   monkeypatch, tmp_path):
    assert train(qtbot, loaded, small) == "finished"
    with qtbot.waitSignal(loaded.task_ended, timeout=20_000) as ended:
        loaded.save_model_to(str(tmp_path / "bundle"))
    assert ended.args == ["save_model", True]
    events = Events(loaded)
    release = hold_until_released(monkeypatch, pipeline, "predict")
    loaded.load_model_from(str(tmp_path / "bundle"), small.strategy)
    with qtbot.waitSignal(loaded.load_ended, timeout=20_000):
        loaded.load(DataSpec(source="sample:GSPC", start="2017-01-01"))
    assert loaded.result is None  # new data forgets the shown run
    with qtbot.waitSignal(loaded.task_ended, timeout=20_000) as ended:
        release.set()
    assert ended.args == ["load_model", True]
    assert "model_loaded" not in events.names()
    (why,), = events.args("result_dropped")
    assert "the data changed meanwhile" in why
    assert loaded.result is None


def test_shutdown_mid_training_ends_every_thread_and_emits_nothing_more(loaded, qtbot, small):
    events = Events(loaded)
    assert loaded.train(small.replace(train=small.train.replace(epochs=50)))
    qtbot.waitUntil(lambda: bool(events.args("epoch_done")), timeout=60_000)
    loaded.shutdown()
    assert not loaded.is_busy()
    seen = len(events.seen)
    qtbot.wait(100)
    assert len(events.seen) == seen and "run_ended" not in events.names()
    assert not loaded.load(SMALL_DATA) and not loaded.train(small)


def test_seeds_train_an_ensemble_member_by_member(loaded, qtbot, small, monkeypatch):
    from sandbox.ui import controller as controller_module

    monkeypatch.setattr(controller_module, "parallel_jobs", lambda runs: 1)
    events = Events(loaded)
    assert train(qtbot, loaded, small, seeds=2) == "finished"
    assert [args[0].seed for args in events.args("member_done")] == [0, 1]
    (result,), = events.args("ensemble_ready")
    assert loaded.result is result and result.is_ensemble and result.seeds == [0, 1]
    assert not result.can_save and result.band is not None
    assert "result_ready" not in events.names() and "epoch_done" not in events.names()


def test_show_test_counts_a_look_once_per_result_and_a_retrade_hides_it(loaded, qtbot, small,
                                                                        monkeypatch, tmp_path):
    from sandbox import looks
    from sandbox.export import fingerprint

    monkeypatch.setenv(looks.ENV_LOOKS_FILE, str(tmp_path / "looks.json"))
    events = Events(loaded)
    shown = []
    loaded.test_shown.connect(lambda result, ev: shown.append((result, ev)))
    assert train(qtbot, loaded, small) == "finished"
    result = loaded.result
    assert loaded.shown_look() is None  # validation first
    with qtbot.waitSignal(loaded.task_ended, timeout=20_000) as ended:
        loaded.show_test()
    assert ended.args == ["show_test", True]
    assert shown[-1][0] is result and shown[-1][1].count == 1
    assert loaded.shown_look() is shown[-1][1]
    assert looks.look_count(fingerprint(loaded.prices.frame)) == 1
    loaded.show_validation()
    assert loaded.shown_look() is None
    loaded.show_test()  # the same run: shown again at once, not counted again
    assert len(shown) == 2 and shown[-1][1].count == 1 and loaded.is_idle()
    with qtbot.waitSignal(loaded.task_ended, timeout=20_000):
        loaded.retrade(small.strategy.replace(cost_bps=30.0))
    assert loaded.result is not result
    assert loaded.shown_look() is None  # a new strategy: back to validation
    with qtbot.waitSignal(loaded.task_ended, timeout=20_000):
        loaded.show_test()
    assert shown[-1][1].count == 2
    assert "result_dropped" not in events.names()


def test_a_look_that_arrives_after_the_run_changed_is_counted_not_shown(loaded, qtbot, small,
                                                                        monkeypatch, tmp_path):
    from sandbox import looks
    from sandbox.ui import controller as controller_module

    monkeypatch.setenv(looks.ENV_LOOKS_FILE, str(tmp_path / "looks.json"))
    assert train(qtbot, loaded, small) == "finished"
    release = hold_until_released(monkeypatch, controller_module, "_look_at_test")
    events = Events(loaded)
    loaded.show_test()
    with qtbot.waitSignal(loaded.run_ended, timeout=60_000):
        assert loaded.train(small)  # a new run while the look is being counted
        release.set()
    qtbot.waitUntil(loaded.is_idle, timeout=20_000)
    dropped = events.args("result_dropped")
    assert dropped and "counted (1 on this data)" in dropped[0][0]
    assert loaded.shown_look() is None


def test_another_views_torch_job_holds_training_sweeps_and_the_audit(loaded, qtbot, small):
    changes = []
    loaded.busy_changed.connect(lambda: changes.append(loaded.external_job()))
    loaded.set_external_job("replay", "the Replay bar is computing its steps")
    loaded.set_external_job("replay", "the Replay bar is computing its steps")  # no change
    assert changes == ["the Replay bar is computing its steps"]
    assert not loaded.is_idle()
    assert not loaded.train(small)
    assert not loaded.run_sweep(small, {"hidden": [4, 8]}, 1, 1)
    loaded.set_external_job("replay", None)
    assert changes[-1] == "" and loaded.is_idle()
    with qtbot.waitSignal(loaded.run_ended, timeout=60_000):
        assert loaded.train(small)


def test_is_walk_forward_tells_a_walk_forward_result():
    from types import SimpleNamespace

    from sandbox.ui.controller import is_walk_forward

    assert is_walk_forward(SimpleNamespace(walk_forward={"start": "2018-01-02"}))
    assert not is_walk_forward(SimpleNamespace(walk_forward=None))
    assert not is_walk_forward(SimpleNamespace())  # an ensemble has no such field
    assert not is_walk_forward(None)
