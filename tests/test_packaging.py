"""The one-folder desktop build (PyInstaller) starts and works without the venv.

Slow: builds ``dist/trading-signal-sandbox/`` when it is missing or older than the sources,
then runs the built executable. Skipped unless asked for with ``-m slow``::

    make test-package        # builds with `make package`, then runs this module
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sandbox
from sandbox import constants as C

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parent.parent
APP = "trading-signal-sandbox"
BUNDLE = ROOT / "dist" / APP
EXECUTABLE = BUNDLE / APP
SPEC = ROOT / "packaging" / f"{APP}.spec"


@pytest.fixture(autouse=True, scope="module")
def _only_when_asked(request):
    """Skip unless the run selected slow tests (``-m slow``)."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("packaging smoke: run with -m slow (make test-package)")


def _newest_source_mtime() -> float:
    paths = [SPEC, ROOT / "packaging" / "entry.py", ROOT / "pyproject.toml"]
    for folder, pattern in ((ROOT / "sandbox", "*.py"), (ROOT / "resources", "*")):
        paths += [p for p in folder.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts]
    return max(p.stat().st_mtime for p in paths if p.exists())


@pytest.fixture(scope="module")
def bundle() -> Path:
    """The built executable: reused when newer than every source file, else rebuilt."""
    if not EXECUTABLE.exists() or EXECUTABLE.stat().st_mtime < _newest_source_mtime():
        build = subprocess.run(
            [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--distpath",
             str(ROOT / "dist"), "--workpath", str(ROOT / "build" / "pyinstaller"), str(SPEC)],
            cwd=ROOT, capture_output=True, text=True, timeout=1500, check=False,
        )
        assert build.returncode == 0, build.stderr[-4000:]
    assert EXECUTABLE.is_file() and os.access(EXECUTABLE, os.X_OK)
    return EXECUTABLE


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no Python venv in it and private cache/settings folders."""
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["HOME"] = str(tmp_path / "home")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["SANDBOX_CACHE_DIR"] = str(tmp_path / "cache")
    return env


def _run(args: list[str], tmp_path: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=tmp_path, env=_clean_env(tmp_path), capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_version_comes_from_the_package(bundle, tmp_path):
    done = _run([str(bundle), "--version"], tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["sandbox", sandbox.__version__]


def test_bundle_holds_samples_icons_and_desktop_entry(bundle):
    resources = bundle.parent / "_internal" / "sandbox" / "resources"
    assert (resources / "sample_data" / "GSPC.csv").stat().st_size > 100_000
    assert (resources / "icons" / f"{APP}.png").is_file()
    entry = (bundle.parent / f"{APP}.desktop").read_text(encoding="utf-8")
    fields = dict(line.split("=", 1) for line in entry.splitlines() if "=" in line)
    assert Path(fields["Exec"]) == bundle
    assert Path(fields["Icon"]).is_file()
    assert fields["X-AppVersion"] == sandbox.__version__
    validator = shutil.which("desktop-file-validate")
    if validator:  # desktop-file-utils, when installed
        checked = subprocess.run([validator, str(bundle.parent / f"{APP}.desktop")],
                                 capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    # What must stay out to keep the bundle small (see the spec's excludes).
    for unwanted in ("PyQt6", "matplotlib", "finplot", "bokeh", "dask", "distributed", "pytest"):
        assert not (bundle.parent / "_internal" / unwanted).exists(), unwanted


def _pixel_variety(png: Path) -> tuple[int, int, int]:
    """(width, height, distinct colours on a 64 x 64 sample grid) of a PNG."""
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert not image.isNull(), f"{png} is not a readable PNG"
    w, h = image.width(), image.height()
    colours = {image.pixel(x * (w - 1) // 63, y * (h - 1) // 63)
               for x in range(64) for y in range(64)}
    return w, h, len(colours)


def test_screenshot_smoke_without_the_venv(bundle, tmp_path):
    shot = tmp_path / "x.png"
    done = _run([str(bundle), "--sample", "GSPC", "--screenshot", str(shot)], tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert shot.stat().st_size > 20_000
    w, h, colours = _pixel_variety(shot)
    assert w >= 640 and h >= 400
    assert colours >= 20, f"screenshot looks blank: {colours} distinct colours"


def _strings(value: object):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_train_from_the_bundle_writes_outputs(bundle, tmp_path):
    out = tmp_path / "out"
    done = _run([str(bundle), "train", "--sample", "GSPC", "--epochs", "1", "--hidden", "8",
                 "--layers", "1", "--threads", "1", "--out", str(out)], tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    metrics = json.loads((out / C.METRICS_JSON).read_text(encoding="utf-8"))
    assert metrics["split"] == C.TEST
    assert set(metrics["baselines"]) == set(C.BASELINES)
    assert (out / C.MODEL_WEIGHTS).stat().st_size > 0
    run = json.loads((out / C.RUN_JSON).read_text(encoding="utf-8"))
    assert sandbox.__version__ in set(_strings(run)), "run.json does not name the app version"


def test_seed_ensemble_trains_in_worker_processes_of_the_bundle(bundle, tmp_path):
    """The app's Seeds setting and the Sweep tab run loky workers: the frozen program has to
    play the Python interpreter for them (packaging/entry.py)."""
    shot = tmp_path / "ensemble.png"
    done = _run([str(bundle), "gui", "--sample", "GSPC", "--start", "2014-01-01", "--seeds", "2",
                 "--epochs", "1", "--hidden", "4", "--layers", "1", "--window", "10",
                 "--autotrain", "--screenshot", str(shot)], tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert shot.stat().st_size > 20_000


def test_bundle_is_not_a_general_python_interpreter(bundle, tmp_path):
    """The bundle plays Python only for loky's own starts (packaging/entry.py): other code
    or modules are refused with exit status 2 and not run."""
    marker = tmp_path / "ran"
    for args in (["-c", f"open({str(marker)!r}, 'w').close()"],
                 ["-B", "-S", "-I", "-c", f"open({str(marker)!r}, 'w').close()"],
                 ["-c", "from multiprocessing.resource_tracker import main;main(0); "
                        f"open({str(marker)!r}, 'w').close()"],
                 ["-m", "http.server"]):
        done = _run([str(bundle), *args], tmp_path, timeout=120)
        assert done.returncode == 2, (args, done.stdout + done.stderr)
        assert "worker processes" in done.stderr, args
    assert not marker.exists()
