"""The app with its torch work in a child process, as users run it: same results, Stop,
a killed child, and a UI process that never imports torch and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from helpers import train_and_wait

from sandbox import constants as C

REPO = Path(__file__).resolve().parents[2]


def test_train_export_save_and_load_through_the_torch_process(make_window, qtbot, child_engine,
                                                              tmp_path, dialogs_shown):
    from sandbox.cli import main as cli_main

    window = make_window()
    assert train_and_wait(qtbot, window, timeout=120_000) == "finished", dialogs_shown
    result = window.result
    assert result.model is None and result.weights  # the model stayed in the child
    assert result.data is window.prices
    assert window.act_save_model.isEnabled()

    # the same bytes as `sandbox train` in this process (results unchanged by the child)
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        window.export_predictions_to(str(tmp_path / "gui.csv"))
    assert ended.args == ["export_predictions", True]
    out = tmp_path / "cli"
    assert cli_main(["train", "--sample", "GSPC", "--start", "2014-01-01", "--window", "10",
                     "--hidden", "8", "--layers", "1", "--dropout", "0", "--epochs", "2",
                     "--patience", "0", "--batch-size", "64", "--seed", "0",
                     "--out", str(out)]) == 0
    assert (tmp_path / "gui.csv").read_bytes() == (out / C.PREDICTIONS_CSV).read_bytes()

    # Save model writes the child's weights; Load model predicts with them in the child
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        window.save_model_to(str(tmp_path / "bundle"))
    assert ended.args == ["save_model", True]
    assert (tmp_path / "bundle" / C.MODEL_WEIGHTS).read_bytes() == (
        out / C.MODEL_WEIGHTS).read_bytes()
    with qtbot.waitSignal(window.run_shown, timeout=60_000) as shown:
        window.load_model_from(str(tmp_path / "bundle"))
    loaded = shown.args[0]
    assert loaded.model is None and loaded.weights == result.weights
    assert loaded.predictions[C.PREDICTED_RETURN].equals(result.predictions[C.PREDICTED_RETURN])
    assert dialogs_shown == []


def test_stop_reaches_the_torch_process_at_once(make_window, qtbot, child_engine, small,
                                                dialogs_shown):
    window = make_window(small.replace(train=small.train.replace(epochs=300, batch_size=16)))
    with qtbot.waitSignal(window.run_started, timeout=10_000):
        window.act_train.trigger()
    qtbot.waitUntil(lambda: window.loss_plot.points()["batch"] > 2, timeout=60_000)
    started = time.perf_counter()
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.act_stop.trigger()
    assert ended.args == ["cancelled"]
    assert time.perf_counter() - started < 2.0
    assert window.result is None and dialogs_shown == []
    window.model_panel.set_configs(small.model, small.train)  # 2 epochs
    assert train_and_wait(qtbot, window) == "finished"  # the same process trains again


def test_a_killed_torch_process_is_reported_and_the_next_train_works(make_window, qtbot,
                                                                     child_engine, small,
                                                                     dialogs_shown):
    window = make_window(small.replace(train=small.train.replace(epochs=300, batch_size=16)))
    with qtbot.waitSignal(window.run_started, timeout=10_000):
        window.act_train.trigger()
    qtbot.waitUntil(lambda: window.loss_plot.points()["batch"] > 2, timeout=60_000)
    with qtbot.waitSignal(window.run_ended, timeout=20_000) as ended:
        os.kill(child_engine.pid, signal.SIGKILL)
    assert ended.args == ["failed"]
    (title, failure), = dialogs_shown
    assert title == "Training failed"
    assert "ended unexpectedly" in failure.message and "Press Train" in failure.message
    assert not failure.is_bug  # a clear message, not a traceback
    assert window.act_train.isEnabled()
    window.model_panel.set_configs(small.model, small.train)  # 2 epochs
    assert train_and_wait(qtbot, window) == "finished"
    assert window.result is not None and window.result.can_save


@pytest.mark.timeout(300)
def test_the_ui_process_never_imports_torch_and_closing_leaves_nothing(tmp_path):
    """A full train / export / save / load-model / export-chart / About / ensemble cycle, then
    closing mid-training, in a fresh process (this test process has torch loaded by other tests)."""
    script = textwrap.dedent(f"""
        import json, sys, threading, time
        from pathlib import Path

        def main():
            import sandbox.data, sandbox.ui
            from PySide6 import QtCore, QtWidgets
            from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig
            from sandbox.ui import workers
            from sandbox.ui.main_window import MainWindow
            from sandbox.ui.options import GuiOptions

            app = QtWidgets.QApplication([])
            workers.warm_up()
            config = RunConfig(
                data=DataSpec(source="sample:GSPC", start="2014-01-01"),
                model=ModelConfig(window=10, hidden=8, layers=1, dropout=0.0),
                train=TrainConfig(epochs=2, patience=0, batch_size=64, seed=0))
            window = MainWindow(GuiOptions(config=config, explicit_source=True,
                                           explicit_settings=True), persist=False,
                                headless=True)
            failures = []
            window.failure_reported.connect(lambda title, f: failures.append(f.message))
            events = []
            for signal in ("data_shown", "run_shown", "run_ended", "task_ended"):
                getattr(window, signal).connect(lambda *a, s=signal: events.append(s))

            def until(predicate, timeout=240):
                deadline = time.monotonic() + timeout
                while not predicate() and time.monotonic() < deadline:
                    app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
                    time.sleep(0.005)
                assert predicate(), (events, failures)

            def count(name):
                return events.count(name)

            window.show()
            window.start()
            until(lambda: count("data_shown") and not window.is_busy())
            window.train()
            until(lambda: count("run_ended") == 1 and not window.is_busy())
            out = Path({str(tmp_path)!r})
            window.export_predictions_to(str(out / "p.csv"))
            until(lambda: count("task_ended") == 1)
            window.save_model_to(str(out / "bundle"))
            until(lambda: count("task_ended") == 2)
            window.load_model_from(str(out / "bundle"))
            until(lambda: count("task_ended") == 3 and not window.is_busy())
            window.export_chart_to(str(out / "chart.png"))
            until(lambda: count("task_ended") == 4 and window.is_idle())
            from sandbox.ui.dialogs import about_text
            about = about_text()
            window.model_panel.set_seeds(2)  # a seed ensemble, in the torch process's workers
            window.train()
            until(lambda: count("run_ended") == 2 and not window.is_busy())
            ensemble_seeds = window.result.seeds
            window.model_panel.set_seeds(1)
            torch_after_cycle = "torch" in sys.modules
            # close while a long training runs
            window.model_panel.set_configs(config.model,
                                           config.train.replace(epochs=500, batch_size=16))
            window.train()
            until(lambda: window.loss_plot.points()["batch"] > 2)
            child = workers.app_engine().pid
            window.close()
            workers.shutdown_engine()
            print(json.dumps({{
                "torch": torch_after_cycle or "torch" in sys.modules,
                "failures": failures,
                "about_lists_torch": "PyTorch" in about,
                "ensemble_seeds": ensemble_seeds,
                "child": child,
                "threads": sorted(t.name for t in threading.enumerate()
                                  if t is not threading.main_thread() and not t.daemon),
            }}))

        if __name__ == "__main__":
            main()
    """)
    path = tmp_path / "cycle.py"
    path.write_text(script)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=280, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["failures"] == []
    assert report["torch"] is False
    assert report["about_lists_torch"] is True
    assert report["ensemble_seeds"] == [0, 1]
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    assert report["threads"] == []
    assert report["child"] and not _exists(report["child"])
    assert (tmp_path / "bundle" / C.MODEL_WEIGHTS).is_file()


def _exists(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, waiting to be reaped, counts as ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
