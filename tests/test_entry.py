"""packaging/entry.py: the frozen app plays Python only for loky's own worker processes.

The accepted command lines are taken from loky's and the standard library's own code at test
time (their process launchers run with the launch itself replaced), so a change in how they
start their processes shows up here rather than as a broken sweep in the bundle.
"""

from __future__ import annotations

import importlib.util
import multiprocessing.resource_tracker as mp_tracker
import multiprocessing.util
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from joblib.externals.loky.backend import fork_exec, popen_loky_posix
from joblib.externals.loky.backend import resource_tracker as loky_tracker

ENTRY = Path(__file__).resolve().parent.parent / "packaging" / "entry.py"


@pytest.fixture(scope="module")
def entry():
    name = "sandbox_frozen_entry"
    spec = importlib.util.spec_from_file_location(name, ENTRY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclass looks its module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


# --- the command lines, from the code that builds them ----------------------------------------
def _stdlib_tracker_command(monkeypatch) -> tuple[list[str], int]:
    """(argv, fd) multiprocessing's resource tracker starts ``sys.executable`` with."""
    seen: list[tuple[list[str], list[int]]] = []

    def spawn(path, args, passfds):
        seen.append((list(args), list(passfds)))
        return 999_999

    monkeypatch.setattr(multiprocessing.util, "spawnv_passfds", spawn)
    tracker = mp_tracker.ResourceTracker()
    tracker.ensure_running()
    os.close(tracker._fd)
    tracker._fd = tracker._pid = None
    (args, passfds), = seen
    return args, passfds[-1]


def _loky_tracker_command(monkeypatch) -> tuple[list[str], int]:
    """(argv, fd) loky's resource tracker starts ``sys.executable`` with."""
    seen: list[tuple[list[str], list[int]]] = []

    def spawn(path, args, passfds):
        seen.append((list(args), list(passfds)))
        return 999_999, None

    monkeypatch.setattr(loky_tracker, "spawnv_passfds", spawn)
    tracker = loky_tracker.ResourceTracker()
    tracker._launch()
    os.close(tracker._fd)
    tracker._fd = tracker._pid = None
    (args, passfds), = seen
    return args, passfds[-1]


def _loky_worker_command(monkeypatch) -> list[str]:
    """The argv loky's Popen starts a worker process with (nothing is started or pickled)."""
    seen: list[list[str]] = []
    tracker_r, tracker_w = os.pipe()
    monkeypatch.setattr(popen_loky_posix.resource_tracker._resource_tracker, "getfd",
                        lambda: tracker_w)
    monkeypatch.setattr(popen_loky_posix.spawn, "get_preparation_data",
                        lambda name, init_main_module=True: {"mp_tracker_fd": tracker_r})
    monkeypatch.setattr(popen_loky_posix.reduction, "dump", lambda obj, fp: None)
    monkeypatch.setattr(fork_exec, "fork_exec",
                        lambda cmd, keep_fds, env=None: seen.append(list(cmd)) or 999_999)
    popen = popen_loky_posix.Popen.__new__(popen_loky_posix.Popen)
    popen._fds = []
    popen._launch(SimpleNamespace(name="LokyProcess-3", _name="LokyProcess-3", env={}))
    del popen  # its finaliser closes the pipe it kept
    os.close(tracker_r)
    os.close(tracker_w)
    (cmd,) = seen
    return cmd


def _after_executable(command: list[str]) -> list[str]:
    assert os.fsdecode(command[0]) == sys.executable
    return command[1:]


def test_stdlib_resource_tracker_is_accepted(entry, monkeypatch):
    command, fd = _stdlib_tracker_command(monkeypatch)
    start = entry.worker(_after_executable(command))
    assert start == entry.Worker("multiprocessing.resource_tracker", ("-c",), (fd,))


def test_loky_resource_tracker_is_accepted(entry, monkeypatch):
    command, fd = _loky_tracker_command(monkeypatch)
    start = entry.worker(_after_executable(command))
    assert start == entry.Worker("joblib.externals.loky.backend.resource_tracker", ("-c",),
                                 (fd, bool(loky_tracker.VERBOSE)))


def test_loky_worker_is_accepted(entry, monkeypatch):
    command = _loky_worker_command(monkeypatch)
    args = _after_executable(command)
    assert args[:2] == ["-m", popen_loky_posix.__name__]
    start = entry.worker(args)
    assert start is not None and start.call is None
    assert start.module == popen_loky_posix.__name__ == entry.LOKY_WORKER
    assert start.argv == (popen_loky_posix.__name__, *args[2:])


@pytest.mark.parametrize("fd", [0, 3, 17, 123456])
def test_other_file_descriptors_are_accepted(entry, monkeypatch, fd):
    command, real = _loky_tracker_command(monkeypatch)
    code = command[-1].replace(f"main({real},", f"main({fd},")
    assert entry.worker(["-c", code]).call == (fd, False)
    command, real = _stdlib_tracker_command(monkeypatch)
    code = command[-1].replace(f"main({real})", f"main({fd})")
    assert entry.worker(["-c", code]).call == (fd,)


@pytest.mark.parametrize("flags", [[], ["-B"], ["-B", "-S", "-I"], ["-E", "-s", "-OO"]])
def test_interpreter_flags_before_the_start_are_skipped(entry, flags):
    code = "from multiprocessing.resource_tracker import main;main(5)"
    assert entry.worker([*flags, "-c", code]).call == (5,)
    worker = ["-m", entry.LOKY_WORKER, "--process-name", "LokyProcess-1:2", "--pipe", "9"]
    assert entry.worker([*flags, *worker]).module == entry.LOKY_WORKER


# --- everything else is refused and not run ------------------------------------------------------
REFUSED = [
    ["-c", "import os; os.system('id')"],
    ["-B", "-S", "-I", "-c", "import os; os.system('id')"],
    ["-c", "from multiprocessing.resource_tracker import main;main(5); import os"],
    ["-c", "from multiprocessing.resource_tracker import main;main(5)\nimport os"],
    ["-c", "from multiprocessing.resource_tracker import main;main(5)", "extra"],
    ["-c", "from multiprocessing.resource_tracker import main;main(os.getpid())"],
    ["-c", "from multiprocessing.resource_tracker import main;main(-1)"],
    ["-c", "from multiprocessing.resource_tracker import main;main(\u0665)"],  # Arabic-Indic 5
    ["-c", "from multiprocessing.resource_tracker import main;main(5) "],
    ["-c", "from joblib.externals.loky.backend.resource_tracker import main; main(5, id)"],
    ["-c", "from multiprocessing.forkserver import main; main(5, 6, [], **{})"],
    ["-c"],
    ["-m", "http.server"],
    ["-m", "http.server", "8000"],
    ["-m", "pip", "install", "x"],
    ["-m"],
    ["-m", "joblib.externals.loky.backend.popen_loky_posix"],
    ["-m", "joblib.externals.loky.backend.popen_loky_posix", "--pipe", "x", "--process-name",
     "a"],
    ["-m", "joblib.externals.loky.backend.popen_loky_posix", "--process-name", "a b",
     "--pipe", "3"],
    ["-m", "joblib.externals.loky.backend.popen_loky_posix", "--process-name", "a",
     "--pipe", "3", "--more"],
    ["-m", "joblib.externals.loky.backend.resource_tracker"],
    # PyInstaller's freeze_support() runs a trailing "-c TEXT" that starts like a tracker's
    ["-X", "utf8", "-c", "from multiprocessing.resource_tracker import main;main(5);1"],
    ["train", "-c", "import os"],
]


@pytest.mark.parametrize("argv", REFUSED)
def test_anything_else_is_refused(entry, argv):
    with pytest.raises(entry.Refused):
        entry.worker(argv)


def test_refused_code_is_not_run(entry, tmp_path, capsys, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setattr(sys, "argv", ["trading-signal-sandbox"])
    code = f"open({str(marker)!r}, 'w').close()"
    assert entry.main(["-c", code]) == 2
    assert entry.main(["-B", "-S", "-c", code]) == 2
    assert entry.main(["-m", "http.server"]) == 2
    assert not marker.exists()
    err = capsys.readouterr().err.splitlines()
    assert err == [entry.REFUSAL] * 3
    assert "sandbox --help" in entry.REFUSAL
    assert sys.argv == ["trading-signal-sandbox"]  # nothing ran as __main__


def test_the_command_line_is_left_to_the_cli(entry):
    for argv in ([], ["--version"], ["train", "--epochs", "1"], ["-v", "train"],
                 ["--sample", "GSPC"], ["-B", "train"]):
        assert entry.worker(argv) is None, argv


def test_cli_runs_when_no_worker_is_asked_for(entry, capsys):
    with pytest.raises(SystemExit) as exc:
        entry.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.split()[0] == "sandbox"


def test_accepted_tracker_calls_main_not_exec(entry, monkeypatch):
    called: list[tuple] = []
    monkeypatch.setattr(mp_tracker, "main", lambda *args: called.append(args))
    monkeypatch.setattr(sys, "argv", ["trading-signal-sandbox"])
    assert entry.main(["-B", "-c", "from multiprocessing.resource_tracker import main;main(7)"]
                      ) == 0
    assert called == [(7,)]


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for the frozen app")
def test_loky_runs_its_workers_through_the_entry(tmp_path):
    """joblib's loky pool with ``sys.executable`` pointing at entry.py, as in the bundle: its
    resource trackers and workers start through the entry, and the jobs run."""
    log = tmp_path / "starts.log"
    app = tmp_path / "app"
    app.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{sys.executable}" "{ENTRY}" "$@"\n',
                   encoding="utf-8")
    app.chmod(0o755)
    code = (f"import sys; sys.executable = {str(app)!r}\n"
            "import math\n"
            "from joblib import Parallel, delayed\n"
            "print(Parallel(n_jobs=2, backend='loky')(delayed(math.sqrt)(i) for i in (1, 4, 9)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=240, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.split("\n")[0] == "[1.0, 2.0, 3.0]"
    assert "worker processes" not in done.stderr  # no start was refused
    starts = log.read_text(encoding="utf-8")
    assert f"-m {popen_loky_posix.__name__} " in starts
    assert "from joblib.externals.loky.backend.resource_tracker import main" in starts
