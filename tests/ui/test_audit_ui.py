"""Run > Audit for leakage...: when it may run, its progress, Stop, and the outcome shown."""

from __future__ import annotations

import pytest
from helpers import train_and_wait
from PySide6 import QtWidgets

from sandbox import audit
from sandbox.config import DataSpec, ModelConfig, RunConfig, StrategyConfig, TrainConfig
from sandbox.ui import main_window

# The offscreen platform warns on show() of any window with a layout: not our message.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

TINY = RunConfig(
    data=DataSpec(source="sample:GSPC", start="2016-01-01"),
    model=ModelConfig(window=10, hidden=4, layers=1, dropout=0.0),
    train=TrainConfig(epochs=1, patience=0, batch_size=64, seed=0, threads=1),
    strategy=StrategyConfig(),
)

PASSED = ("No leak found: no prediction at or before 5 random cut dates changed when later "
          "prices were removed or scrambled (")


def _menu_actions(window, title: str) -> list:
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == title)
    return [a for a in menu.actions() if not a.isSeparator()]


def _audit(qtbot, window, *, seed: int | None = 0, timeout: int = 60_000):
    with qtbot.waitSignal(window.audit_shown, timeout=timeout) as shown:
        if seed is None:
            window.act_audit.trigger()
        else:
            window.audit_leakage(seed=seed)
    qtbot.waitUntil(window.is_idle, timeout=timeout)
    return shown.args[0]


def test_the_action_is_in_the_run_menu_and_enabled_only_for_one_model_at_rest(
        make_window, qtbot, dialogs_shown):
    window = make_window(TINY)
    assert window.act_audit in _menu_actions(window, "&Run")
    assert window.act_audit.text() == "&Audit for leakage..."
    assert not window.act_audit.isEnabled()
    assert "(not now: train a model first)" in window.act_audit.toolTip()

    states = []
    window.run_started.connect(lambda _w: states.append(
        (window.act_audit.isEnabled(), window.act_audit.toolTip())))
    assert train_and_wait(qtbot, window) == "finished", dialogs_shown
    assert states == [(False, main_window.AUDIT_TIP + " (not now: train a model first)")]
    assert window.act_audit.isEnabled()
    assert window.act_audit.toolTip() == main_window.AUDIT_TIP

    # while it runs: disabled, Train waits, Stop may end it
    window.audit_leakage(seed=0)
    assert window.controller.is_auditing()
    assert not window.act_audit.isEnabled() and not window.act_train.isEnabled()
    assert window.act_stop.isEnabled()
    assert "(not now: the audit is running)" in window.act_audit.toolTip()
    assert not window.controller.train(TINY)  # one torch process: training waits its turn
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    assert window.act_audit.isEnabled() and window.act_train.isEnabled()
    assert dialogs_shown == []


def test_an_ensemble_cannot_be_audited_and_the_tooltip_says_why(make_window, qtbot,
                                                                monkeypatch, dialogs_shown):
    from sandbox.ui import controller

    monkeypatch.setattr(controller, "parallel_jobs", lambda runs: 1)  # members in turn, here
    window = make_window(TINY, seeds=2)
    assert train_and_wait(qtbot, window, timeout=120_000) == "finished", dialogs_shown
    assert window.result.is_ensemble
    assert not window.act_audit.isEnabled()
    assert window.act_audit.toolTip() == (
        f"{main_window.AUDIT_TIP} (not now: {main_window.AUDIT_NO_MODEL})")
    assert not window.controller.audit_leakage(seed=0)


def test_an_audit_from_the_window_passes_and_says_so(make_window, qtbot, dialogs_shown):
    window = make_window(TINY)
    assert train_and_wait(qtbot, window) == "finished", dialogs_shown
    statuses: list[str] = []
    window.controller.audit_progress.connect(
        lambda done, total: statuses.append(window.status_text.text()))
    outcome = _audit(qtbot, window, seed=None)  # as the menu does: a fresh seed
    assert outcome.passed, outcome.message
    assert outcome.message.startswith(PASSED)
    assert len(outcome.cut_dates) == 5 and len(outcome.cuts) == 10
    assert all(c.max_abs_change == 0.0 for c in outcome.cuts)
    # progress, cut by cut, in the status bar; the outcome stays there
    assert statuses[:5] == [f"Auditing the model for leakage: cut {k} of 5 (later prices "
                            "removed, then scrambled)..." for k in range(1, 6)]
    assert window.status_text.text() == outcome.message
    assert window.progress.value() == window.progress.maximum()
    # the Log tab
    log = window.log_view.toPlainText()
    assert f"Audit for leakage of {window.result.data.label} (seed {outcome.seed}, " in log
    assert outcome.message in log
    # the message box: opened without blocking, the outcome as its text
    box = window.audit_box
    assert isinstance(box, QtWidgets.QMessageBox) and box.isVisible()
    assert box.windowTitle() == "Audit for leakage"
    assert box.icon() == QtWidgets.QMessageBox.Icon.Information
    assert box.text() == outcome.message
    assert box.informativeText().startswith(main_window.AUDIT_HOW)
    assert box.detailedText().splitlines() == [audit.check_line(c) for c in outcome.cuts]
    assert box.detailedText().splitlines()[0].endswith("predictions unchanged")
    assert dialogs_shown == []
    box.close()
    qtbot.waitUntil(lambda: window.audit_box is None)
    # the same seed audits the same dates again
    again = _audit(qtbot, window, seed=outcome.seed)
    assert again.cut_dates == outcome.cut_dates and again.passed


def test_a_leak_is_shown_with_its_date_and_feature(make_window, qtbot, monkeypatch,
                                                   dialogs_shown):
    """The core's audit with a planted leak (the next bar's return among the features),
    reached from the window: the warning names the date and the feature."""
    from test_audit import Leaky

    window = make_window(TINY)
    assert train_and_wait(qtbot, window) == "finished", dialogs_shown
    leaky = Leaky()
    real = audit.audit_leakage

    def planted(run, prices, **kwargs):
        return real(run, prices, predict=leaky.predict, features=leaky.features, **kwargs)

    monkeypatch.setattr(audit, "audit_leakage", planted)  # the in-process engine sees it
    outcome = _audit(qtbot, window, seed=3)
    assert not outcome.passed
    first = outcome.cut_dates[0].date()
    assert outcome.message == (
        f"Leak: the prediction for {first} changed when the prices after {first} were "
        f"removed; the first feature to change is next_close, on {first} (10 of 10 checks "
        "failed).")
    box = window.audit_box
    assert box.icon() == QtWidgets.QMessageBox.Icon.Warning and box.text() == outcome.message
    assert "first feature to change: next_close" in box.detailedText()
    assert dialogs_shown == []  # a leak found is an outcome, not an error of the app


def test_stop_ends_the_audit_and_says_so(make_window, qtbot, monkeypatch, dialogs_shown):
    import threading

    window = make_window(TINY)
    assert train_and_wait(qtbot, window) == "finished", dialogs_shown
    real = audit.audit_leakage
    release = threading.Event()

    def slow(run, prices, *, on_progress=None, **kwargs):
        def progress(p):
            on_progress(p)
            release.wait(10)  # hold the audit at its first cut until the test pressed Stop
        return real(run, prices, on_progress=progress, **kwargs)

    monkeypatch.setattr(audit, "audit_leakage", slow)
    shown = []
    window.audit_shown.connect(shown.append)
    with qtbot.waitSignal(window.task_ended, timeout=30_000) as ended:
        window.audit_leakage(seed=0)
        qtbot.waitUntil(lambda: window.status_text.text().startswith(
            "Auditing the model for leakage: cut 1 of 5"), timeout=30_000)
        window.act_stop.trigger()
        assert window.status_text.text() == "Stopping..."
        release.set()
    assert ended.args == ["audit", False]
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert shown == [] and window.audit_box is None and dialogs_shown == []
    assert window.status_text.text() == ("Audit for leakage stopped: nothing was checked to "
                                         "the end.")
    assert "Audit for leakage: stopped" in window.log_view.toPlainText()
    assert window.act_audit.isEnabled()


def test_the_audit_runs_in_the_torch_process(make_window, qtbot, child_engine, dialogs_shown):
    """As users run it: the model lives in the child (the window holds its weights), and
    the audit rebuilds it there."""
    window = make_window(TINY)
    assert train_and_wait(qtbot, window, timeout=120_000) == "finished", dialogs_shown
    assert window.result.model is None and window.result.weights
    outcome = _audit(qtbot, window, seed=5, timeout=120_000)
    assert outcome.passed and outcome.message.startswith(PASSED)
    assert dialogs_shown == []


@pytest.mark.timeout(300)
def test_the_ui_process_audits_without_importing_torch(tmp_path):
    """Train and audit in a fresh app process (this one has torch loaded by other tests):
    the audit's predictions run in the torch process only."""
    import json
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    script = textwrap.dedent("""
        import json, sys, time

        def main():
            from PySide6 import QtCore, QtWidgets
            from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig
            from sandbox.ui import workers
            from sandbox.ui.main_window import MainWindow
            from sandbox.ui.options import GuiOptions

            app = QtWidgets.QApplication([])
            workers.warm_up()
            config = RunConfig(data=DataSpec(source="sample:GSPC", start="2016-01-01"),
                               model=ModelConfig(window=10, hidden=4, layers=1, dropout=0.0),
                               train=TrainConfig(epochs=1, patience=0, seed=0))
            window = MainWindow(GuiOptions(config=config, explicit_source=True,
                                           explicit_settings=True), persist=False,
                                headless=True)
            failures, outcomes, ended = [], [], []
            window.failure_reported.connect(lambda title, f: failures.append(f.message))
            window.audit_shown.connect(outcomes.append)
            window.run_ended.connect(ended.append)

            def until(predicate, timeout=240):
                deadline = time.monotonic() + timeout
                while not predicate() and time.monotonic() < deadline:
                    app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
                    time.sleep(0.005)
                assert predicate(), failures

            window.start()
            until(lambda: window.prices is not None and not window.is_busy())
            window.train()
            until(lambda: ended and window.is_idle())
            window.act_audit.trigger()
            until(lambda: outcomes and window.is_idle())
            window.close()
            workers.shutdown_engine()
            print(json.dumps({"torch": "torch" in sys.modules, "failures": failures,
                              "message": outcomes[0].message}))

        if __name__ == "__main__":
            main()
    """)
    path = tmp_path / "audit_cycle.py"
    path.write_text(script)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=280, cwd=Path(__file__).resolve().parents[2], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"torch": False, "failures": [], "message": report["message"]}
    assert report["message"].startswith(PASSED)
