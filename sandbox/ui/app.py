"""The desktop app's entry point: ``main(GuiOptions) -> exit code``.

Importing this module is cheap (no Qt, pyqtgraph, pandas or torch): ``sandbox --help`` and
the CLI's other commands import it never, ``sandbox gui`` imports Qt only inside
:func:`main`. torch is never imported in this process: training, ensembles, sweeps and Load
model run in the app's torch process, started in the background once the data is shown.

``--screenshot PNG`` runs the window headless-friendly: no QSettings are read or written
(the picture depends on the command line only), errors go to stderr with the CLI's exit
codes instead of dialogs, and the PNG is written atomically once the data is shown, or,
with ``--autotrain``, once training has finished and the overlays are drawn.
"""

from __future__ import annotations

import sys
from typing import Any

from sandbox.ui.options import GuiOptions

__all__ = ["GuiOptions", "main"]


def main(options: GuiOptions | None = None) -> int:
    """Open the main window and run the event loop.

    Parameters
    ----------
    options : GuiOptions, optional
        Command line choices; defaults open the app on the stored (or default) source.

    Returns
    -------
    int
        Process exit code: 0, or with ``--screenshot`` 2 for a problem with the input,
        1 for a bug (the CLI contract).
    """
    options = options or GuiOptions()
    if options.screenshot is not None:
        _headless_platform_when_no_display()

    # pandas (through the data layer) before Qt: once PySide6 is imported, its import hook
    # reads the source of every module imported after it, which doubles pandas' import time.
    import sandbox.data
    import sandbox.ui  # noqa: F401  (PYQTGRAPH_QT_LIB before pyqtgraph is imported)

    # isort: split
    from PySide6 import QtCore, QtWidgets

    from sandbox import __version__
    from sandbox.ui.settings import APPLICATION, ORGANIZATION, Settings, resolve_config
    from sandbox.ui.workers import MainThreadGC, PendingLoad, shutdown_engine

    QtCore.QCoreApplication.setOrganizationName(ORGANIZATION)
    QtCore.QCoreApplication.setApplicationName(APPLICATION)
    headless = options.screenshot is not None
    settings = Settings()
    # Start reading the initial data now: it overlaps with importing the chart code.
    pending = PendingLoad(resolve_config(options, None if headless else settings).data)

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationVersion(__version__)
    app.setApplicationDisplayName(APPLICATION)
    app.setDesktopFileName("trading-signal-sandbox")
    icon = _icon()
    if icon is not None:
        app.setWindowIcon(icon)

    collector = MainThreadGC(app)  # Qt objects must never be collected on a worker thread

    from sandbox.ui.main_window import MainWindow

    window = MainWindow(options, persist=not headless, headless=headless, settings=settings,
                        pending=pending)
    job = None
    if options.screenshot is not None:
        from sandbox.ui.screenshot import ScreenshotJob

        job = ScreenshotJob(window, options.screenshot, after_training=options.autotrain)
    window.show()
    stop_on_sigint = _SigintCloses(window)
    window.start()
    collector.freeze_startup()  # what start-up built lives as long as the app
    code = app.exec()
    shutdown_engine()  # the window has closed: end the torch process with the app
    stop_on_sigint.restore()
    collector.stop()
    if job is not None and job.exit_code is not None:
        return job.exit_code
    return 130 if stop_on_sigint.fired else code  # the CLI's code for Ctrl-C


def _headless_platform_when_no_display() -> None:
    """A screenshot needs no screen: use Qt's offscreen platform when there is no display
    (a server, CI) and the user did not choose a platform."""
    import os

    if os.environ.get("QT_QPA_PLATFORM"):
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


def _icon() -> Any:
    import importlib.resources

    from PySide6 import QtGui

    try:
        icons = importlib.resources.files("sandbox.resources") / "icons"
        icon = QtGui.QIcon()
        for size in (16, 32, 48, 64, 128, 256):
            resource = icons / f"trading-signal-sandbox-{size}.png"
            if resource.is_file():
                icon.addFile(str(resource))
        return None if icon.isNull() else icon
    except (ModuleNotFoundError, OSError):
        return None


class _SigintCloses:
    """Ctrl-C in the terminal closes the window (cleanly) instead of being ignored by Qt."""

    def __init__(self, window: Any) -> None:
        import signal
        import threading

        from PySide6 import QtCore

        self.previous = None
        self.fired = False
        if threading.current_thread() is not threading.main_thread():
            return
        self.signal = signal
        self.window = window
        self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        # Python runs signal handlers only between bytecodes: wake it up now and then.
        self.timer = QtCore.QTimer(window)
        self.timer.setInterval(250)
        self.timer.timeout.connect(lambda: None)
        self.timer.start()

    def _on_sigint(self, *_args: Any) -> None:
        self.fired = True
        self.window.close()

    def restore(self) -> None:
        if self.previous is not None:
            self.signal.signal(self.signal.SIGINT, self.previous)
