"""The folder chooser of Save model and Export results: a new folder name is taken.

The real dialogs are opened and answered by a timer (nothing blocks): it types a name into
the active file dialog and clicks Choose (or accepts it, as Enter would); a message box
that comes up is noted and closed, and a file dialog still open after that is cancelled,
so an answer the dialog refuses ends the call with None.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6 import QtCore, QtTest, QtWidgets

from sandbox.ui import dialogs

# the offscreen platform on a dialog and on the name field's completer popup
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")


class Answerer(QtCore.QObject):
    """Answers the modal dialogs that come up, every 20 ms, for 10 s at most."""

    def __init__(self, name: str | None, *, accept: bool = False) -> None:
        super().__init__()
        self.name = name  # what to type into the dialog; None: cancel it
        self.accept = accept  # accept the dialog rather than click Choose
        self.answered = False
        self.choose_enabled: bool | None = None  # Choose, once the name was typed
        self.messages: list[str] = []
        self.titles: list[str] = []
        self._deadline = time.monotonic() + 10
        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self._answer)
        self._timer.start(20)

    def _answer(self) -> None:
        widget = QtWidgets.QApplication.activeModalWidget()
        if time.monotonic() > self._deadline:
            self._timer.stop()
            if widget is not None:
                widget.close()
            return
        if isinstance(widget, QtWidgets.QMessageBox):
            self.messages.append(widget.text())
            widget.done(0)
        elif isinstance(widget, QtWidgets.QFileDialog):
            self.titles.append(widget.windowTitle())
            if self.answered or self.name is None:  # after a refusal (or asked to): cancel
                widget.reject()
                return
            self.answered = True
            edit = widget.findChild(QtWidgets.QLineEdit, "fileNameEdit")
            edit.setFocus()
            QtTest.QTest.keyClicks(edit, self.name)
            choose = widget.findChild(QtWidgets.QDialogButtonBox, "buttonBox").button(
                QtWidgets.QDialogButtonBox.StandardButton.Open)
            self.choose_enabled = choose.isEnabled()
            # after this slot has returned: a box it raises is answered on the next turn of
            # the timer (a timer does not fire again inside its own slot)
            if self.accept:
                QtCore.QTimer.singleShot(0, widget.accept)
            else:
                QtCore.QTimer.singleShot(0, choose.click)  # a greyed-out Choose does nothing

    def stop(self) -> None:
        self._timer.stop()


@pytest.fixture
def folder(tmp_path) -> Path:
    """An empty folder (the settings fixture writes into tmp_path itself)."""
    path = tmp_path / "files"
    path.mkdir()
    return path


@pytest.fixture
def answer(qtbot) -> Callable[[str | None], Answerer]:
    answerers: list[Answerer] = []

    def make(name: str | None, **how) -> Answerer:
        answerer = Answerer(name, **how)
        answerers.append(answerer)
        return answerer

    yield make
    for answerer in answerers:
        answerer.stop()


def test_a_new_folder_name_is_created_and_returned(answer, folder):
    answerer = answer("my model")
    chosen = dialogs.ask_directory(None, "Save the model into a folder", str(folder))
    assert answerer.messages == []  # no "Directory not found"
    assert answerer.choose_enabled  # not greyed out for a folder that does not exist yet
    assert answerer.titles == ["Save the model into a folder"]
    assert chosen is not None and Path(chosen) == folder / "my model"
    assert (folder / "my model").is_dir()


def test_a_new_folder_inside_a_new_folder(answer, folder):
    answer("runs/today")
    chosen = dialogs.ask_directory(None, "Export", str(folder))
    assert chosen is not None and Path(chosen) == folder / "runs" / "today"
    assert Path(chosen).is_dir()


def test_an_existing_folder_is_returned_as_it_is(answer, folder):
    (folder / "bundle").mkdir()
    (folder / "bundle" / "run.json").write_text("{}")
    answerer = answer("bundle")
    chosen = dialogs.ask_directory(None, "Save", str(folder))
    assert answerer.messages == []
    assert chosen is not None and Path(chosen) == folder / "bundle"
    assert [p.name for p in (folder / "bundle").iterdir()] == ["run.json"]


def test_cancel_is_none_and_creates_nothing(answer, folder):
    answer(None)
    assert dialogs.ask_directory(None, "Save", str(folder)) is None
    assert list(folder.iterdir()) == []


def test_a_file_is_not_a_folder(answer, folder):
    (folder / "notes.txt").write_text("x")
    answerer = answer("notes.txt")
    assert dialogs.ask_directory(None, "Save", str(folder)) is None
    assert answerer.choose_enabled is False and answerer.messages == []
    answerer.stop()
    answerer = answer("notes.txt", accept=True)  # as Enter in the field would
    assert dialogs.ask_directory(None, "Save", str(folder)) is None
    assert len(answerer.messages) == 1 and "is a file, not a folder" in answerer.messages[0]
    assert len(answerer.titles) == 2  # the dialog stayed open after the message


def test_a_folder_that_cannot_be_created_is_said_so(answer, folder):
    (folder / "notes.txt").write_text("x")
    answerer = answer("notes.txt/sub")  # under a file: cannot exist
    assert dialogs.ask_directory(None, "Save", str(folder)) is None
    assert len(answerer.messages) == 1
    assert answerer.messages[0].startswith("Could not create the folder")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_save_model_writes_into_a_new_folder_typed_in_the_dialog(make_window, qtbot, answer,
                                                                  folder, dialogs_shown):
    from helpers import train_and_wait

    from sandbox import constants as C

    window = make_window()
    assert train_and_wait(qtbot, window) == "finished"
    answerer = answer(str(folder / "models" / "first try"))
    with qtbot.waitSignal(window.task_ended, timeout=20_000) as ended:
        window.act_save_model.trigger()
    assert ended.args == ["save_model", True]
    assert answerer.messages == [] and dialogs_shown == []
    assert (folder / "models" / "first try" / C.MODEL_WEIGHTS).is_file()
    assert (folder / "models" / "first try" / C.RUN_JSON).is_file()


def test_load_model_asks_for_an_existing_folder_and_save_may_make_one(make_window, qtbot,
                                                                       monkeypatch):
    window = make_window()
    qtbot.waitUntil(lambda: window.prices is not None, timeout=20_000)
    asked: list[str] = []
    monkeypatch.setattr(dialogs, "ask_existing_directory",
                        lambda *a: asked.append("existing"))
    monkeypatch.setattr(dialogs, "ask_directory", lambda *a: asked.append("new or existing"))
    window.load_model()
    # Load model never creates a folder from a mistyped name (it could only hold no model)
    assert asked == ["existing"]
