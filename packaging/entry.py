"""Entry script of the frozen app: the same front door as the ``sandbox`` command.

With no arguments the app opens on the default sample; every ``sandbox`` command
(``gui``, ``train``, ``sweep``, ``backtest``, ``fetch``) works from the bundle too.

``sandbox sweep`` and the app's seed ensembles run their jobs in joblib's loky worker
processes, which start ``sys.executable`` as if it were Python. In the frozen app
``sys.executable`` is this program, so it plays that part, for those starts only (after the
interpreter flags they pass, e.g. ``-B -S -I``):

- ``-m joblib.externals.loky.backend.popen_loky_posix --process-name NAME --pipe FD``
  (a loky worker);
- ``-c "from joblib.externals.loky.backend.resource_tracker import main; main(FD, False)"``
  (loky's resource tracker);
- ``-c "from multiprocessing.resource_tracker import main;main(FD)"`` (the standard
  library's resource tracker, which loky starts too).

Only the numbers (FD; loky's verbose flag True/False) may vary, and the ``-c`` forms call the
tracker's ``main`` directly: nothing from the command line is executed as code. Any other
``-c`` / ``-m`` is refused with exit status 2, so the app is not a general Python interpreter.
This check runs before ``multiprocessing.freeze_support()``, whose PyInstaller version would
execute any ``-c`` text that merely starts like a resource tracker's.
"""

from __future__ import annotations

import importlib
import re
import runpy
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: what a refused ``-c`` / ``-m`` start prints (to stderr, exit status 2)
REFUSAL = ("trading-signal-sandbox: this program runs only the app's own worker processes; "
           "use `sandbox --help`")

#: interpreter flags loky puts before ``-m`` / ``-c``; they change nothing in a frozen app
_PYTHON_FLAGS = frozenset({"-B", "-E", "-I", "-O", "-OO", "-P", "-q", "-s", "-S", "-u"})

#: the module loky starts its workers with, and the arguments it gives it
LOKY_WORKER = "joblib.externals.loky.backend.popen_loky_posix"
_WORKER_ARGS = (re.compile(r"--process-name", re.ASCII), re.compile(r"[\w.:-]+", re.ASCII),
                re.compile(r"--pipe", re.ASCII), re.compile(r"[0-9]+", re.ASCII))

_FD = r"([0-9]{1,9})"
#: (exact ``-c`` text, module whose ``main`` it calls, how to turn the matched groups into
#: that call's arguments)
_BOOTSTRAPS: tuple[tuple[re.Pattern[str], str, Any], ...] = (
    (re.compile(r"from multiprocessing\.resource_tracker import main;main\(" + _FD + r"\)",
                re.ASCII),
     "multiprocessing.resource_tracker",
     lambda fd: (int(fd),)),
    (re.compile(r"from joblib\.externals\.loky\.backend\.resource_tracker import main; "
                r"main\(" + _FD + r", (True|False)\)", re.ASCII),
     "joblib.externals.loky.backend.resource_tracker",
     lambda fd, verbose: (int(fd), verbose == "True")),
)


class Refused(Exception):
    """A ``-c`` / ``-m`` start that is not one of the app's own worker processes."""


@dataclass(frozen=True)
class Worker:
    """A worker process start this program accepts.

    ``call`` is None for ``-m`` (``module`` runs as ``__main__``), else the arguments of
    ``module.main`` (a resource tracker).
    """

    module: str
    argv: tuple[str, ...]
    call: tuple[Any, ...] | None = None

    def run(self) -> None:
        sys.argv = list(self.argv)
        if self.call is None:
            runpy.run_module(self.module, run_name="__main__", alter_sys=True)
        else:
            importlib.import_module(self.module).main(*self.call)


def worker(argv: Sequence[str]) -> Worker | None:
    """The worker process ``argv`` (the arguments after the program) starts; None when it is
    no ``-c`` / ``-m`` start (the ``sandbox`` command line).

    Raises
    ------
    Refused
        A ``-c`` / ``-m`` start that is not exactly one of loky's (see the module docstring).
    """
    args = list(argv)
    while args and args[0] in _PYTHON_FLAGS:
        args.pop(0)
    if args and args[0] == "-m":
        rest = args[2:]
        if (len(args) >= 2 and args[1] == LOKY_WORKER and len(rest) == len(_WORKER_ARGS)
                and all(p.fullmatch(a) for p, a in zip(_WORKER_ARGS, rest, strict=True))):
            return Worker(LOKY_WORKER, (LOKY_WORKER, *rest))
        raise Refused
    if args and args[0] == "-c":
        if len(args) == 2:
            for pattern, module, arguments in _BOOTSTRAPS:
                found = pattern.fullmatch(args[1])
                if found:
                    return Worker(module, ("-c",), arguments(*found.groups()))
        raise Refused
    if len(argv) >= 2 and argv[-2] == "-c":
        # never a sandbox command line; PyInstaller's freeze_support() would run such a text
        raise Refused
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run a loky worker process, or the ``sandbox`` command line; the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        start = worker(words)
    except Refused:
        sys.stderr.write(REFUSAL + "\n")
        return 2
    if start is not None:
        start.run()
        return 0

    import multiprocessing

    # multiprocessing's own workers re-run this executable with --multiprocessing-fork.
    multiprocessing.freeze_support()

    from sandbox.cli import main as cli_main

    return cli_main(words)


if __name__ == "__main__":
    sys.exit(main())
