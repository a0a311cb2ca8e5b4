"""Pictures of widgets (PNG and SVG bytes), and ``sandbox gui --screenshot PNG``: save the
window once it shows what was asked for, then quit.

"What was asked for" is the loaded data, or with ``--autotrain`` the finished run with its
overlays. Problems end the app with the CLI's exit codes and one line on stderr: 2 for a
problem with the input, 1 for a bug (its traceback follows), 130 when training was stopped.
"""

from __future__ import annotations

import sys

from PySide6 import QtCore, QtGui, QtWidgets

from sandbox.ui.dialogs import Failure

__all__ = ["ScreenshotJob", "png_bytes", "svg_bytes"]


def png_bytes(image: QtGui.QImage) -> bytes:
    """PNG-encode ``image`` (safe on any thread: QImage, not QPixmap)."""
    buffer = QtCore.QBuffer()
    buffer.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


def svg_bytes(widget: QtWidgets.QWidget, title: str) -> bytes:
    """``widget`` drawn as SVG (vector: pyqtgraph paints with QPainter paths).

    Rendered with QSvgGenerator rather than pyqtgraph's SVGExporter, whose path parser does
    not read the path syntax of Qt 6.11's generator.
    """
    from PySide6 import QtSvg

    buffer = QtCore.QBuffer()
    buffer.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    generator = QtSvg.QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setSize(widget.size())
    generator.setViewBox(QtCore.QRect(QtCore.QPoint(0, 0), widget.size()))
    generator.setTitle(title)
    painter = QtGui.QPainter(generator)
    widget.render(painter, QtCore.QPoint())
    painter.end()
    return bytes(buffer.data())


class ScreenshotJob(QtCore.QObject):
    """Watches a :class:`~sandbox.ui.main_window.MainWindow` and saves it to ``path``.

    Parameters
    ----------
    window : MainWindow
        The window (also the Qt parent of the job).
    path : str
        Where the PNG goes (written atomically).
    after_training : bool
        Wait for the finished run instead of the loaded data.
    """

    def __init__(self, window, path: str, *, after_training: bool) -> None:
        super().__init__(window)
        self.window, self.path = window, path
        self.exit_code: int | None = None
        if after_training:
            window.run_shown.connect(self._on_ready)
            window.run_ended.connect(self._on_run_ended)
        else:
            window.data_shown.connect(self._on_ready)
        window.failure_reported.connect(self._on_failure)

    @QtCore.Slot(object)
    def _on_ready(self, _what: object) -> None:
        if self.exit_code is None:
            # one turn of the event loop, so pending layout and paint requests are applied
            QtCore.QTimer.singleShot(0, self._save)

    @QtCore.Slot(str)
    def _on_run_ended(self, how: str) -> None:
        if how == "cancelled" and self.exit_code is None:
            self._finish(130, "training was stopped before it finished")

    @QtCore.Slot(str, object)
    def _on_failure(self, title: str, failure: Failure) -> None:
        if self.exit_code is None:
            self._finish(1 if failure.is_bug else 2, f"{title}: {failure.message}",
                         details=failure.details)

    def _save(self) -> None:
        from sandbox import atomic
        from sandbox.errors import SandboxError

        if self.exit_code is not None:
            return
        try:
            atomic.write_bytes(self.path, self.window.png_bytes())
        except SandboxError as exc:
            self._finish(2, str(exc))
            return
        self._finish(0)

    def _finish(self, code: int, message: str = "", *, details: str | None = None) -> None:
        self.exit_code = code
        if message:
            sys.stderr.write(f"sandbox gui: error: {message}\n")
        if details:
            sys.stderr.write(details)
        self.window.close()
