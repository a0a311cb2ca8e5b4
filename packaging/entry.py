"""Entry script of the frozen app: the same front door as the ``sandbox`` command.

With no arguments the app opens on the default sample; every ``sandbox`` command
(``gui``, ``train``, ``sweep``, ``backtest``, ``fetch``) works from the bundle too.

``sandbox sweep`` runs its jobs in joblib's loky worker processes, which start
``sys.executable -m MODULE ...`` or ``sys.executable -c CODE`` as if it were Python. In the
frozen app ``sys.executable`` is this program, so it plays that part for those two forms
(after the interpreter flags loky passes, e.g. ``-B -S -I``); the CLI has no such options.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys

#: interpreter flags loky puts before ``-m`` / ``-c``; they change nothing in a frozen app
_PYTHON_FLAGS = frozenset({"-B", "-E", "-I", "-O", "-OO", "-s", "-S", "-u"})


def _run_as_python(argv: list[str]) -> bool:
    """Run ``[flags] -m MODULE args`` or ``[flags] -c CODE args`` like Python; False if neither."""
    args = list(argv)
    while args and args[0] in _PYTHON_FLAGS:
        args.pop(0)
    if len(args) < 2 or args[0] not in ("-m", "-c"):
        return False
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *args[2:]]
        exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
    return True


if __name__ == "__main__":
    # multiprocessing's own workers re-run this executable with --multiprocessing-fork.
    multiprocessing.freeze_support()
    if _run_as_python(sys.argv[1:]):
        sys.exit(0)

    from sandbox.cli import main

    sys.exit(main())
