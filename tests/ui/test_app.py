"""``sandbox gui`` as a process: light imports, no torch before the window, --screenshot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


def run(args: list[str], tmp_path: Path, *, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**ENV, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "SANDBOX_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def png_colours(path: Path) -> int:
    from PySide6.QtGui import QImage

    image = QImage(str(path)).scaled(200, 130)
    return len({image.pixel(x, y) for x in range(image.width()) for y in range(image.height())})


def test_importing_the_app_module_is_light():
    code = ("import sys, sandbox.ui.app; "
            "print(sorted(m for m in ('torch', 'pandas', 'PySide6', 'pyqtgraph') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_screenshot_of_the_loaded_sample_never_imports_torch(tmp_path):
    code = ("import sys; from sandbox.ui.app import GuiOptions, main; "
            "rc = main(GuiOptions(screenshot=sys.argv[1])); "
            "print(rc, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.png")],
                          capture_output=True, text=True, timeout=120,
                          env={**ENV, "XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "False"]
    assert png_colours(tmp_path / "x.png") >= 20


def test_cli_screenshot_after_training(tmp_path):
    shot = tmp_path / "trained.png"
    done = run(["gui", "--sample", "GSPC", "--start", "2014-01-01", "--autotrain",
                "--epochs", "1", "--window", "10", "--hidden", "8", "--layers", "1",
                "--screenshot", str(shot)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert png_colours(shot) >= 20
    assert not list((tmp_path / "config").rglob("*.conf"))  # --screenshot stores no settings


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--csv", "no/such/file.csv"], 2, "file.csv"),
    (["--sample", "GSPC", "--start", "2018-12-01", "--window", "30", "--autotrain"], 2,
     "window 30"),
])
def test_cli_screenshot_errors_use_the_cli_exit_codes(tmp_path, args, code, words):
    shot = tmp_path / "x.png"
    done = run(["gui", *args, "--screenshot", str(shot)], tmp_path)
    assert done.returncode == code, done.stderr
    lines = [line for line in done.stderr.splitlines() if "propagateSizeHints" not in line]
    assert lines and lines[0].startswith("sandbox gui: error:") and words in lines[0]
    assert "Traceback" not in done.stderr
    assert not shot.exists()


def test_about_lists_versions_without_importing_torch():
    """torch runs in the app's torch process: About reads its version from the installed
    package's metadata, never by importing it here."""
    from importlib.metadata import version

    code = ("import sandbox.ui, sys; from PySide6 import QtWidgets; "
            "app = QtWidgets.QApplication([]); from sandbox.ui.dialogs import about_text; "
            f"t = about_text(); print('torch' in sys.modules, {version('torch')!r} in t, "
            "all(k in t for k in ('Python', 'Qt', 'PySide6', 'pyqtgraph', 'pandas', "
            "'PyTorch')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "True"]
