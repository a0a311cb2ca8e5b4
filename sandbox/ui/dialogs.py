"""Dialogs: errors with expandable details, file choosers and the About box.

The main window reaches every modal dialog through the functions of this module
(``dialogs.show_error(...)``, ``dialogs.ask_save_path(...)``), looked up at call time, so
tests replace them with ``monkeypatch.setattr`` and never block on a modal box.
"""

from __future__ import annotations

import platform
import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from sandbox import __version__
from sandbox.errors import SandboxError

__all__ = [
    "Failure",
    "about_text",
    "ask_directory",
    "ask_existing_directory",
    "ask_export_path",
    "ask_open_path",
    "ask_save_path",
    "failure_from",
    "show_about",
    "show_error",
]

APP_TITLE = "Trading Signal Sandbox"


@dataclass(frozen=True)
class Failure:
    """What went wrong, ready for a dialog.

    ``message`` is the plain sentence shown as the dialog's text; ``details`` is the
    traceback of an unexpected error (a bug), shown only under "Show Details...".
    """

    message: str
    details: str | None = None
    kind: str = "error"  # the exception class name, for the log

    @property
    def is_bug(self) -> bool:
        """True for an unexpected exception (not a SandboxError)."""
        return self.details is not None


def failure_from(exc: BaseException) -> Failure:
    """A :class:`Failure` for ``exc``: the user message of a SandboxError as it is, or a
    one-line summary of a bug with its traceback as details."""
    if isinstance(exc, SandboxError):
        from sandbox.ui.wording import failure_text  # names the app's controls, not flags

        return Failure(message=failure_text(exc), kind=type(exc).__name__)
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    summary = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    message = (f"Something unexpected went wrong ({type(exc).__name__}: {summary}). "
               "This is a bug in the app; the details below help to report it.")
    return Failure(message=message, details=details, kind=type(exc).__name__)


def show_error(parent: QtWidgets.QWidget | None, title: str, failure: Failure) -> None:
    """A modal error box: the plain message as text, the traceback (bugs only) under
    "Show Details...".

    Parameters
    ----------
    parent : QWidget or None
        The window the box belongs to.
    title : str
        What was being done, e.g. ``"Could not load the data"``.
    failure : Failure
        The message and the optional details.
    """
    box = QtWidgets.QMessageBox(parent)
    box.setIcon(QtWidgets.QMessageBox.Icon.Critical if failure.is_bug
                else QtWidgets.QMessageBox.Icon.Warning)
    box.setWindowTitle(f"{title} - {APP_TITLE}")
    box.setTextFormat(QtCore.Qt.TextFormat.PlainText)  # messages may hold "<" and ">"
    box.setText(f"{title}.\n\n{failure.message}")
    if failure.details:
        box.setDetailedText(failure.details)
    box.setStandardButtons(QtWidgets.QMessageBox.StandardButton.Ok)
    box.exec()


def ask_open_path(parent: QtWidgets.QWidget | None, title: str, folder: str,
                  filters: str) -> str | None:
    """A file to open, or None when the user cancels."""
    path, _ = QtWidgets.QFileDialog.getOpenFileName(parent, title, folder, filters)
    return path or None


def ask_save_path(parent: QtWidgets.QWidget | None, title: str, suggested: str,
                  filters: str) -> tuple[str, str] | None:
    """A file to write and the chosen filter, or None when the user cancels."""
    path, chosen = QtWidgets.QFileDialog.getSaveFileName(parent, title, suggested, filters)
    return (path, chosen) if path else None


def ask_export_path(parent: QtWidgets.QWidget | None, title: str, folder: str, stem: str,
                    kinds: dict[str, str]) -> str | None:
    """A file to write, suggested as ``folder/stem`` with the first kind's suffix; ``kinds``
    maps a filter name to its suffix. The chosen filter's suffix is added to a path that has
    none of them. None when the user cancels."""
    suffixes = list(kinds.values())
    filters = ";;".join(f"{name} (*{suffix})" for name, suffix in kinds.items())
    chosen = ask_save_path(parent, title, str(Path(folder) / f"{stem}{suffixes[0]}"), filters)
    if chosen is None:
        return None
    path, chosen_filter = chosen
    if Path(path).suffix.lower() in suffixes:
        return path
    return path + next((suffix for name, suffix in kinds.items() if name in chosen_filter),
                       suffixes[0])


class FolderDialog(QtWidgets.QFileDialog):
    """A folder chooser that also takes the name of a folder that does not exist yet, to
    write into: Choose creates it (Qt's own folder chooser answers "Directory not found").

    Qt's widget dialog on every platform (a native one would refuse the new name again).
    """

    def __init__(self, parent: QtWidgets.QWidget | None, title: str, folder: str) -> None:
        super().__init__(parent, title, folder)
        self.setFileMode(QtWidgets.QFileDialog.FileMode.Directory)
        self.setOption(QtWidgets.QFileDialog.Option.ShowDirsOnly, True)
        self.setOption(QtWidgets.QFileDialog.Option.DontUseNativeDialog, True)
        self.setLabelText(QtWidgets.QFileDialog.DialogLabel.FileName, "Folder:")
        edit = self.name_edit()
        if edit is not None:
            edit.setPlaceholderText("an existing folder, or a new name to create")
            # after Qt's own check, which greys Choose out for a folder that does not exist
            edit.textChanged.connect(self._allow_a_new_name)

    def name_edit(self) -> QtWidgets.QLineEdit | None:
        """The field where a name is typed."""
        return self.findChild(QtWidgets.QLineEdit, "fileNameEdit")

    def choose_button(self) -> QtWidgets.QPushButton | None:
        box = self.findChild(QtWidgets.QDialogButtonBox, "buttonBox")
        return None if box is None else box.button(
            QtWidgets.QDialogButtonBox.StandardButton.Open)

    @QtCore.Slot(str)
    def _allow_a_new_name(self, text: str) -> None:
        button = self.choose_button()
        files = self.selectedFiles()
        if button is not None and text.strip() and files and not Path(files[0]).exists():
            button.setEnabled(True)

    def accept(self) -> None:
        files = self.selectedFiles()
        if not files:
            return
        path = Path(files[0])
        if path.exists() and not path.is_dir():
            refuse(self, f"{path}\nis a file, not a folder: type another name.")
            return
        if not path.exists():
            try:
                path.mkdir(parents=True)
            except OSError as exc:
                refuse(self, f"Could not create the folder\n{path}\n({exc.strerror or exc}).")
                return
        super().accept()


def refuse(dialog: QtWidgets.QWidget, text: str) -> None:
    """Say in a box over ``dialog`` why its answer cannot be taken (it stays open)."""
    QtWidgets.QMessageBox.warning(dialog, dialog.windowTitle(), text)


def ask_directory(parent: QtWidgets.QWidget | None, title: str, folder: str) -> str | None:
    """A folder to write into (Save model, Export the sweep's results), or None when the
    user cancels: an existing one, or a new name typed in the dialog, created on Choose
    (see :class:`FolderDialog`)."""
    dialog = FolderDialog(parent, title, folder)
    try:
        if dialog.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return None
        files = dialog.selectedFiles()
        return files[0] if files else None
    finally:
        dialog.deleteLater()


def ask_existing_directory(parent: QtWidgets.QWidget | None, title: str,
                           folder: str) -> str | None:
    """A folder to read (Load model), or None when the user cancels; it must exist."""
    path = QtWidgets.QFileDialog.getExistingDirectory(parent, title, folder)
    return path or None


def versions() -> dict[str, str]:
    """Versions shown in the About box (torch's read without importing it: it runs in the
    app's torch process, never in this one)."""
    import numpy
    import pandas
    import pyqtgraph
    import PySide6

    from sandbox.export import torch_version

    out = {
        APP_TITLE: __version__,
        "Python": platform.python_version(),
        "Qt": QtCore.qVersion(),
        "PySide6": PySide6.__version__,
        "pyqtgraph": pyqtgraph.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
    }
    out["PyTorch"] = torch_version()
    return out


def about_text() -> str:
    """The About box's text (rich text)."""
    rows = "".join(f"<tr><td>{name}</td><td>&nbsp;&nbsp;{version}</td></tr>"
                   for name, version in versions().items())
    return (
        f"<h3>{APP_TITLE}</h3>"
        "<p>Train RNN, GRU and LSTM models on price history and paper-trade their signals "
        "beside honest baselines.<br>It does not place orders; nothing in it is investment "
        "advice.</p>"
        f"<table>{rows}</table>"
    )


def show_about(parent: QtWidgets.QWidget | None) -> None:
    """The Help > About box with the versions of the app and its main libraries."""
    QtWidgets.QMessageBox.about(parent, f"About {APP_TITLE}", about_text())
