"""Pictures of widgets (PNG and SVG bytes), and ``sandbox gui --screenshot PNG``: save the
window once it shows what was asked for, then quit.

"What was asked for" is the loaded data, or with ``--autotrain`` the finished run with its
overlays. Problems end the app with the CLI's exit codes and one line on stderr: 2 for a
problem with the input, 1 for a bug (its traceback follows), 130 when training was stopped.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from sandbox.ui.dialogs import Failure

__all__ = ["ScreenshotJob", "StripGrab", "png_bytes", "svg_bytes"]


def png_bytes(image: QtGui.QImage) -> bytes:
    """PNG-encode ``image`` (safe on any thread: QImage, not QPixmap)."""
    buffer = QtCore.QBuffer()
    buffer.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


def svg_bytes(widget: QtWidgets.QWidget, title: str) -> bytes:
    """``widget`` drawn as SVG 1.1 (vector: pyqtgraph paints with QPainter paths; SVG 1.1
    keeps the panes' clipping, which SVG Tiny drops).

    A widget with an ``exporting(vector=True)`` context (the price chart) is drawn inside it:
    without its crosshair and hover readout, its bars as paths rather than a cached picture,
    and no cached bitmap of the background. Rendered with QSvgGenerator rather than
    pyqtgraph's SVGExporter, whose path parser does not read the path syntax of Qt 6.11's
    generator.
    """
    from PySide6 import QtSvg

    buffer = QtCore.QBuffer()
    buffer.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    generator = QtSvg.QSvgGenerator(QtSvg.QSvgGenerator.SvgVersion.Svg11)
    generator.setOutputDevice(buffer)
    # The widget's own dots per inch: at the generator's default of 72 a 9 pt font is written
    # as 9 px (a quarter smaller than on screen at 96) and the page size comes out too large.
    generator.setResolution(widget.logicalDpiX())
    generator.setSize(widget.size())
    generator.setViewBox(QtCore.QRect(QtCore.QPoint(0, 0), widget.size()))
    generator.setTitle(title)
    exporting = getattr(widget, "exporting", None)
    with exporting(vector=True) if exporting is not None else contextlib.nullcontext():
        painter = QtGui.QPainter(generator)
        try:
            widget.render(painter, QtCore.QPoint())
        finally:
            painter.end()
    return bytes(buffer.data())


class StripGrab(QtCore.QObject):
    """A widget's picture, drawn a horizontal strip per turn of the event loop.

    ``QWidget.grab()`` of the chart with a run's overlays keeps the UI thread ~12-15 ms in
    one go; six strips take at most ~7 ms each and give the same pixels (each pane's items are
    painted only in the strips they cross). Between strips, a 1 ms timer lets due timers and
    input run first. If ``revision()`` changes in between (the user panned, a re-trade was
    drawn, the window was resized), the picture would mix two states, so it starts again; after
    ``MAX_RESTARTS`` it takes the picture in one go.

    Signals
    -------
    grabbed(QImage)
        The finished picture.
    """

    grabbed = QtCore.Signal(object)

    STRIPS = 6
    MAX_RESTARTS = 3

    def __init__(self, widget: QtWidgets.QWidget, revision: Any, *,
                 strips: int = STRIPS) -> None:
        super().__init__(widget)
        self.widget, self.revision, self.strips = widget, revision, strips
        self.restarts = 0
        self._image: QtGui.QImage | None = None
        self._seen: Any = None
        self._next = 0
        self._hidden = False  # the widget's transient items are hidden for the picture

    def start(self) -> None:
        """Begin; ``grabbed`` follows after ``strips`` turns of the event loop. A widget with
        ``hide_transients`` / ``restore_transients`` (the price chart) leaves its crosshair
        and hover readout out of the picture meanwhile."""
        self._hide_transients()
        self._begin()
        self._step()

    def _hide_transients(self) -> None:
        hide = getattr(self.widget, "hide_transients", None)
        if hide is not None and not self._hidden:
            hide()
            self._hidden = True

    def _restore_transients(self) -> None:
        if self._hidden:
            self._hidden = False
            self.widget.restore_transients()

    def _begin(self) -> None:
        size = self.widget.size()
        ratio = self.widget.devicePixelRatioF()
        image = QtGui.QImage(size * ratio, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(ratio)
        image.fill(0)
        self._image, self._seen, self._next = image, self.revision(), 0

    def _step(self) -> None:
        if self.revision() != self._seen:
            self.restarts += 1
            if self.restarts > self.MAX_RESTARTS:
                self._finish(self.widget.grab().toImage())
                return
            self._begin()
        width, height = self.widget.width(), self.widget.height()
        top = height * self._next // self.strips
        bottom = height * (self._next + 1) // self.strips
        painter = QtGui.QPainter(self._image)
        try:
            self.widget.render(painter, QtCore.QPoint(0, top),
                               QtGui.QRegion(QtCore.QRect(0, top, width, bottom - top)))
        finally:
            painter.end()
        self._next += 1
        if self._next < self.strips:
            QtCore.QTimer.singleShot(1, self, self._step)  # dropped if self is deleted
        else:
            self._finish(self._image)

    def _finish(self, image: QtGui.QImage) -> None:
        self._restore_transients()
        self.grabbed.emit(image)
        self.deleteLater()


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
    def _on_ready(self, what: object) -> None:
        from sandbox.ui.controller import is_walk_forward

        if is_walk_forward(what) and self.window.controller.shown_look() is None:
            return  # drawn again once the look at its out-of-sample rows is counted
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
