"""The app's torch process (sandbox.engine): same results as in process, progress, Stop,
errors, a killed child, and no process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import psutil
import pytest

from sandbox import constants as C
from sandbox import pipeline
from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig
from sandbox.engine import ChildEngine, InProcessEngine
from sandbox.errors import Cancelled, ConfigError, TrainingError
from sandbox.events import EpochEnd, StageStarted

SMALL = RunConfig(
    data=DataSpec(source="sample:GSPC", start="2014-01-01"),
    model=ModelConfig(window=10, hidden=8, layers=1, dropout=0.0),
    train=TrainConfig(epochs=2, patience=0, batch_size=64, seed=0, threads=1),
)


# module-level, so the child can import them by reference
def add(a: int, b: int = 0) -> int:
    return a + b


def echo(value: object) -> object:
    return value


def raise_config_error() -> None:
    raise ConfigError("window 0: must be at least 2")


def raise_bug() -> None:
    raise ZeroDivisionError("a bug in the core")


def wait_for_cancel(*, on_tick, cancel) -> str:
    """Streams ticks until cancelled (checks the event like training does between batches)."""
    for i in range(100_000):
        if cancel.is_set():
            raise Cancelled(f"stopped after {i} ticks")
        on_tick(i)
        time.sleep(0.01)
    return "never cancelled"


def child_pid() -> int:
    return os.getpid()


def sleep_long() -> None:
    time.sleep(60)


@pytest.fixture(scope="module")
def engine():
    engine = ChildEngine()
    engine.start()
    yield engine
    engine.shutdown()
    assert not engine.is_alive()


@pytest.fixture(scope="module")
def prices():
    from sandbox.data import load_prices

    return load_prices(SMALL.data)


def test_the_child_says_when_it_has_imported_torch(engine):
    assert engine.wait_ready(timeout_s=120)
    assert engine.call(module_loaded, ("torch",)) and engine.call(module_loaded,
                                                                  ("sandbox.training",))


def module_loaded(name: str) -> bool:
    return name in sys.modules


def test_training_in_the_child_equals_training_here_bit_for_bit(engine, prices):
    events: list[object] = []
    remote = engine.call(pipeline.run, (SMALL,), {"prices": prices}, stream_arg="on_event",
                         on_stream=events.append, cancel=threading.Event())
    local = pipeline.run(SMALL, prices=prices)
    for column in (C.PREDICTED_RETURN, C.POSITION, C.STRATEGY_RETURN, C.EQUITY):
        np.testing.assert_array_equal(remote.predictions[column].to_numpy(),
                                      local.predictions[column].to_numpy())
    assert remote.metrics_by_split == local.metrics_by_split
    assert remote.history.train_loss == local.history.train_loss
    # the prices are not sent back: the caller's own object takes their place
    assert remote.data is prices
    # the model stays in the child; its weights come back as safetensors bytes
    assert remote.model is None and remote.can_save
    from safetensors.numpy import load

    weights = load(remote.weights)
    assert {k: v.shape for k, v in weights.items()} == {
        k: tuple(v.shape) for k, v in local.model.state_dict().items()}
    for k, v in local.model.state_dict().items():
        np.testing.assert_array_equal(weights[k], v.numpy())
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    assert any(isinstance(e, StageStarted) for e in events)


def test_a_bundle_saved_from_the_childs_weights_loads_and_predicts_the_same(engine, prices,
                                                                             tmp_path):
    from sandbox import export

    remote = engine.call(pipeline.run, (SMALL,), {"prices": prices})
    export.save_bundle(remote, tmp_path / "bundle")
    bundle = export.load_bundle(tmp_path / "bundle")
    again = bundle.predict(prices.frame)
    np.testing.assert_array_equal(
        again[C.PREDICTED_RETURN].to_numpy(),
        remote.predictions[C.PREDICTED_RETURN].to_numpy())


def test_user_errors_arrive_as_themselves_and_bugs_carry_the_childs_traceback(engine):
    with pytest.raises(ConfigError, match="window 0: must be at least 2") as info:
        engine.call(raise_config_error)
    assert not getattr(info.value, "__notes__", None)  # a user error needs no traceback
    with pytest.raises(ZeroDivisionError, match="a bug in the core") as info:
        engine.call(raise_bug)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "in the training process" in notes and "raise_bug" in notes
    assert engine.call(add, (2,), {"b": 3}) == 5  # still serving


class TwoPartError(Exception):
    """Pickles, but cannot be rebuilt (its __init__ wants two arguments)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} {second}")


def raise_two_part_error() -> None:
    raise TwoPartError("cannot", "rebuild")


def ticks_then(value: int, *, on_tick) -> int:
    for i in range(5):
        on_tick(i)
    return value


def test_an_answer_that_cannot_be_read_is_a_clear_error_and_leaves_nothing_behind(engine):
    with pytest.raises(TrainingError, match="could not be read"):
        engine.call(raise_two_part_error)
    assert engine.call(add, (2, 2)) == 4  # a new child, no stale answer


def test_a_failing_progress_callback_does_not_leak_into_the_next_call(engine):
    def on_tick(i: int) -> None:
        if i == 1:
            raise ValueError("the view failed")

    with pytest.raises(ValueError, match="the view failed"):
        engine.call(ticks_then, (1,), stream_arg="on_tick", on_stream=on_tick)
    assert engine.call(ticks_then, (2,), stream_arg="on_tick", on_stream=lambda i: None) == 2


def test_stop_reaches_the_job_at_once_and_the_engine_stays_usable(engine):
    cancel = threading.Event()
    ticks: list[int] = []

    def on_tick(i: int) -> None:
        ticks.append(i)
        if i == 5:
            cancel.set()
            engine.cancel(cancel)

    started = time.monotonic()
    with pytest.raises(Cancelled):
        engine.call(wait_for_cancel, stream_arg="on_tick", on_stream=on_tick, cancel=cancel)
    assert time.monotonic() - started < 10
    assert 5 <= ticks[-1] <= 8  # the job saw Stop within a tick or two
    assert engine.call(add, (1, 1)) == 2


def test_a_cancel_for_another_call_does_not_stop_the_running_one(engine):
    other = threading.Event()
    engine.cancel(other)  # nobody runs with this event
    assert engine.call(add, (40, 2)) == 42


def test_a_killed_child_is_a_clear_error_and_the_next_call_starts_a_new_one():
    engine = ChildEngine()
    try:
        pid = engine.call(child_pid)
        assert pid != os.getpid()
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        with pytest.raises(TrainingError, match=r"ended unexpectedly \(killed by signal 9"):
            engine.call(sleep_long)
        assert engine.call(add, (1, 2)) == 3
        assert engine.call(child_pid) != pid
    finally:
        engine.shutdown()
    assert not engine.is_alive()


def test_shutdown_ends_a_busy_child():
    engine = ChildEngine()
    pid = engine.call(child_pid)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            engine.call(sleep_long)
        except TrainingError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.3)
    engine.shutdown()
    worker.join(10)
    assert not worker.is_alive()
    assert not _exists(pid)
    assert len(outcome) == 1 and "ended unexpectedly" in str(outcome[0])


def test_the_child_leaves_when_its_parent_is_killed(tmp_path):
    script = textwrap.dedent("""
        import os, signal, sys
        from sandbox.engine import ChildEngine

        def pid():
            return os.getpid()

        if __name__ == "__main__":
            engine = ChildEngine()
            print(engine.call(pid), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    path = tmp_path / "parent.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL
    child = int(proc.stdout.strip())
    deadline = time.monotonic() + 10
    while _exists(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _exists(child)


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def loky_jobs() -> int:
    """Worker processes that served 4 jobs of 0.5 s on 2 loky workers (1 if serialised)."""
    import warnings

    from joblib import Parallel, delayed

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # joblib warns when it falls back to one job
        pids = Parallel(n_jobs=2, backend="loky")(delayed(pid_after)(0.5) for _ in range(4))
    return len(set(pids))


def test_ensembles_and_sweeps_in_the_child_run_in_parallel(engine):
    """joblib runs loky jobs one after another inside a daemonic process; the child is not
    one for joblib's purposes, so an ensemble's seeds still train in parallel."""
    assert engine.call(loky_jobs) == 2


def test_closing_after_an_ensemble_leaves_no_worker_and_no_warning(tmp_path):
    """The torch process ends the loky workers it started before it leaves, so loky's
    resource tracker finds no leaked shared-memory folder when the app closes."""
    script = textwrap.dedent("""
        from sandbox import ensemble
        from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig
        from sandbox.data import load_prices
        from sandbox.engine import ChildEngine

        if __name__ == "__main__":
            config = RunConfig(data=DataSpec(source="sample:GSPC", start="2016-01-01"),
                               model=ModelConfig(window=10, hidden=4, layers=1, dropout=0.0),
                               train=TrainConfig(epochs=1, patience=0, seed=0))
            engine = ChildEngine()
            result = engine.call(ensemble.run_ensemble, (config,),
                                 {"seeds": 2, "jobs": 2, "prices": load_prices(config.data)})
            engine.shutdown()
            print(result.seeds)
    """)
    path = tmp_path / "ensemble.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[0, 1]"
    assert "leaked" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr


def test_ctrl_c_in_the_terminal_is_left_to_the_app(tmp_path):
    """SIGINT reaches the whole process group; the child ignores it and the app ends it."""
    script = textwrap.dedent("""
        import time
        from sandbox.engine import ChildEngine

        if __name__ == "__main__":
            engine = ChildEngine()
            assert engine.wait_ready()
            try:
                # Inside the try: the signal can land as soon as "ready" is written,
                # before print returns.
                print("ready", engine.pid, flush=True)
                time.sleep(60)
            except KeyboardInterrupt:
                engine.shutdown()
                print("closed", flush=True)
    """)
    path = tmp_path / "app.py"
    path.write_text(script)
    # Output to files, not pipes: a pipe is read to its end, which waits for every process
    # that inherited it (multiprocessing's resource tracker keeps stderr, and helper processes
    # torch starts may outlive the app by a while), not for the app
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        # SIGINT at its default in the app: an ignored SIGINT is inherited through exec, and
        # Python then installs no KeyboardInterrupt handler (the app would sleep on, exit 0)
        proc = subprocess.Popen([sys.executable, str(path)], stdout=out_file, stderr=err_file,
                                text=True, start_new_session=True,
                                preexec_fn=_default_sigint)
        try:
            deadline = time.monotonic() + 120
            while not out_path.read_text().startswith("ready") and proc.poll() is None:
                assert time.monotonic() < deadline, "the app did not start its engine"
                time.sleep(0.05)
            while not out_path.read_text().endswith("\n") and proc.poll() is None:
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    out, err = out_path.read_text(), err_path.read_text()
    lines = out.split()
    assert proc.returncode == 0 and lines[0] == "ready" and lines[-1] == "closed", (
        proc.returncode, out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    child = int(lines[1])  # the engine's process: gone once the app has closed it
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), f"the engine's process {child} outlived the app"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def test_in_process_engine_runs_on_the_calling_thread():
    engine = InProcessEngine()
    names: list[str] = []
    cancel = threading.Event()

    def job(x, *, on_tick, cancel):
        on_tick(threading.current_thread().name)
        return x * 2, cancel

    value, seen_cancel = engine.call(job, (21,), stream_arg="on_tick", on_stream=names.append,
                                     cancel=cancel)
    assert value == 42 and seen_cancel is cancel
    assert names == [threading.current_thread().name]


def _exists(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, waiting to be reaped, counts as ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
