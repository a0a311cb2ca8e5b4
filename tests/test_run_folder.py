"""One run per output folder: a folder changes as one, one writer at a time, nothing stale.

The faults are real: two writers racing on a barrier, a writer killed (SIGKILL) between two
files or just before the swap, Ctrl-C twice while the files are written. After each, the
folder is whole: the old run or the new run, never a mix (checked by the sha256 digests that
run.json records and by comparing files with the runs' own copies).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from sandbox import atomic, cli, export
from sandbox import constants as C
from sandbox.errors import ExportError

RUN_FILES = [C.METRICS_JSON, C.MODEL_WEIGHTS, C.PREDICTIONS_CSV, C.RUN_JSON]
#: a small, fast training run on the bundled sample
TRAIN = ["train", "--sample", "GSPC", "--start", "2010-01-01", "--window", "10", "--hidden", "4",
         "--layers", "1", "--epochs", "1", "--threads", "1"]

#: a `sandbox` process whose writer stops at a chosen moment (atomic.test_hook)
SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from sandbox import atomic, cli

    stage, name, action = sys.argv[1:4]

    def hook(at, path):
        if at != stage or (name != "*" and path.name != name):
            return
        if not path.parent.name.startswith(".") and at == "written":
            return  # a file outside the output's temporary folder (the looks file)
        if action == "wait":
            print("at", at, path.name, flush=True)
            time.sleep(600)
        elif action == "ctrl-c-twice":
            os.kill(os.getpid(), signal.SIGINT)  # the first asks the run to stop
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGINT)  # the second stops it now
            time.sleep(5)

    atomic.test_hook = hook

    if __name__ == "__main__":
        sys.exit(cli.main(sys.argv[4:]))
""")


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _siblings(folder):
    """The hidden names beside ``folder``: temporary folders and locks of writers."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def old_run(tmp_path_factory):
    """A finished run's folder (seed 0), and a copy of its files to compare with."""
    out = tmp_path_factory.mktemp("old") / "out"
    assert cli.main([*TRAIN, "--seed", "0", "--out", str(out)]) == 0
    return out, _digests(out)


@pytest.fixture
def run_dir(old_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(old_run[0], out)
    return out


def _start(tmp_path, stage, name, action, *args):
    script = tmp_path / "writer.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "SANDBOX_LOOKS_FILE": str(tmp_path / "looks.json")}
    return subprocess.Popen([sys.executable, str(script), stage, name, action, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _whole(folder):
    """The folder is one run: every file's sha256 is the one its run.json records."""
    info = json.loads((folder / C.RUN_JSON).read_text())
    assert sorted(p.name for p in folder.iterdir()) == RUN_FILES
    assert _digests(folder) == {**info["files"], C.RUN_JSON: _digests(folder)[C.RUN_JSON]}
    export.load_bundle(folder)


@pytest.mark.parametrize("stage, name", [
    ("written", C.PREDICTIONS_CSV),  # the probe's case: new predictions, old everything else
    ("written", C.MODEL_WEIGHTS),
    ("swap", "*"),  # every new file complete, not yet in place
])
def test_a_writer_killed_mid_write_leaves_the_old_run_whole(old_run, run_dir, tmp_path,
                                                            stage, name):
    proc = _start(tmp_path, stage, name, "wait", *TRAIN, "--seed", "1", "--out", str(run_dir))
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"at {stage}"), proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _digests(run_dir) == old_run[1]  # the old run, byte for byte
    _whole(run_dir)
    assert any(".partial-" in s for s in _siblings(run_dir))  # the dead writer's leftovers
    # The lock died with its process: the next run writes at once and clears the leftovers.
    assert cli.main([*TRAIN, "--seed", "1", "--out", str(run_dir)]) == 0
    assert _digests(run_dir)[C.PREDICTIONS_CSV] != old_run[1][C.PREDICTIONS_CSV]
    _whole(run_dir)
    assert _siblings(run_dir) == []


def test_ctrl_c_twice_while_writing_is_true_to_its_word(old_run, run_dir, tmp_path):
    proc = _start(tmp_path, "written", C.PREDICTIONS_CSV, "ctrl-c-twice",
                  *TRAIN, "--seed", "1", "--out", str(run_dir))
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "sandbox: cancelled; no output was written"
    assert _digests(run_dir) == old_run[1]  # ...and none was
    assert _siblings(run_dir) == []


def test_a_second_writer_is_refused_while_the_first_runs(old_run, run_dir, tmp_path, capsys):
    proc = _start(tmp_path, "swap", "*", "wait", *TRAIN, "--seed", "1", "--out", str(run_dir))
    try:
        assert proc.stdout.readline().startswith("at swap"), proc.stderr.read()
        code = cli.main([*TRAIN, "--seed", "2", "--out", str(run_dir)])
        err = capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert code == 2
    assert err.strip() == (f"sandbox train: error: {run_dir}: another run is writing this folder "
                           f"(process {proc.pid}); wait for it to finish or choose another "
                           "folder")
    assert _digests(run_dir) == old_run[1]


def _race_writer(target, k, tag, barrier, outcome):
    def fill(tmp):
        for name in RUN_FILES:
            atomic.write_text(tmp / name, f"writer {k} {tag}\n")

    barrier.wait()
    try:
        atomic.write_folder(target, fill)
        outcome[k] = "written"
    except ExportError as exc:
        outcome[k] = "refused" if "another run is writing this folder" in str(exc) else str(exc)


def test_racing_writers_never_mix_their_files(tmp_path):
    """Four threads at a barrier, 40 rounds: each write is refused or lands whole."""
    target = tmp_path / "out"
    for round_ in range(40):
        barrier = threading.Barrier(4)
        outcome: dict[int, str] = {}
        threads = [threading.Thread(target=_race_writer,
                                    args=(target, k, f"round {round_}", barrier, outcome))
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(outcome.values()) <= {"written", "refused"}, outcome
        assert "written" in outcome.values()
        contents = {(target / n).read_text() for n in RUN_FILES}
        assert len(contents) == 1, contents  # one writer's files only
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp, no lock left


def test_racing_processes_never_mix_their_files(tmp_path):
    """The probe's case with processes: two writers of one folder released together."""
    script = tmp_path / "race.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from sandbox import atomic
        from sandbox.errors import ExportError

        target, k, go = sys.argv[1], sys.argv[2], float(sys.argv[3])
        def fill(tmp):
            for name in ("predictions.csv", "metrics.json", "model.safetensors", "run.json"):
                atomic.write_text(tmp / name, f"writer {k}\\n")
        while time.time() < go:
            pass
        try:
            atomic.write_folder(target, fill)
            print("written")
        except ExportError as exc:
            print("refused" if "another run is writing" in str(exc) else str(exc))
    """))
    target = tmp_path / "out"
    import time

    for _ in range(6):
        go = time.time() + 1.5
        procs = [subprocess.Popen([sys.executable, str(script), str(target), str(k), str(go)],
                                  stdout=subprocess.PIPE, text=True) for k in range(2)]
        results = [p.communicate(timeout=60)[0].strip() for p in procs]
        assert set(results) <= {"written", "refused"} and "written" in results, results
        contents = {p.read_text() for p in target.iterdir()}
        assert len(contents) == 1 and len(list(target.iterdir())) == 4


def test_stale_leftovers_of_crashed_writes_are_removed(tmp_path):
    target = tmp_path / "out"
    (tmp_path / ".out.partial-abc123").mkdir()
    (tmp_path / ".out.partial-abc123" / C.PREDICTIONS_CSV).write_text("half\n")
    (tmp_path / ".out.old-def456").mkdir()
    (tmp_path / ".other.partial-x").mkdir()  # another folder's: not ours to remove
    atomic.write_folder(target, lambda tmp: atomic.write_text(tmp / C.METRICS_JSON, "{}\n"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.partial-x", "out"]


def test_a_folder_with_other_files_is_refused_not_swept_away(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me\n")
    (target / C.METRICS_JSON).write_text("{}\n")
    with pytest.raises(ExportError, match=r"mine: holds other files \(notes.txt\); an output "
                                          r"folder is replaced as a whole"):
        atomic.write_folder(target, lambda tmp: atomic.write_text(tmp / C.METRICS_JSON, "1\n"))
    assert (target / "notes.txt").read_text() == "keep me\n"
    assert (target / C.METRICS_JSON).read_text() == "{}\n"


def test_a_symlinked_folder_is_written_through_its_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    atomic.write_folder(link, lambda tmp: atomic.write_text(tmp / C.METRICS_JSON, "2\n"))
    assert link.is_symlink() and (real / C.METRICS_JSON).read_text() == "2\n"


def test_predict_refuses_to_write_over_its_own_model(old_run, run_dir, capsys):
    code = cli.main(["predict", "--model", str(run_dir), "--sample", "GSPC",
                     "--out", str(run_dir)])
    assert code == 2
    assert "is the --model folder" in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.iterdir()) == RUN_FILES


def test_a_failing_write_leaves_the_folder_and_no_temporary(run_dir, old_run):
    def fill(tmp):
        atomic.write_text(tmp / C.PREDICTIONS_CSV, "new\n")
        raise ExportError("disk full")

    with pytest.raises(ExportError, match="disk full"):
        atomic.write_folder(run_dir, fill)
    assert _digests(run_dir) == old_run[1]
    assert _siblings(run_dir) == []


def test_without_an_atomic_exchange_two_renames_still_replace_the_folder(run_dir, monkeypatch):
    """Where renameat2 is missing (other systems, some file systems) the old folder moves to a
    hidden name first; the result is the same whole folder and nothing is left beside it."""
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    atomic.write_folder(run_dir, lambda tmp: atomic.write_text(tmp / C.METRICS_JSON, "3\n"))
    assert [p.name for p in run_dir.iterdir()] == [C.METRICS_JSON]
    assert _siblings(run_dir) == []
