"""Where the app's torch work runs: a child process, so the UI process never imports torch.

The app's interpreter lock is shared by every thread of its process: importing torch (about
a third of a second of Python holding the lock) and the per-batch Python of a training loop
on a worker thread make the UI thread late (``bench/ui_stall.py``). :class:`ChildEngine` runs
the same functions in a child process instead, started in the background when the app
starts so that it has imported torch before the first Train. The worker thread that calls
:meth:`ChildEngine.call` stays the app's interface to the job: it forwards the job's
progress, passes Stop on, and returns its result or raises its error, as if the function had
run on that thread. :class:`InProcessEngine` is the same interface without a process (the
tests that replace functions of the core with fakes use it; so can a debugger).

A call sends ``fn`` by reference (a module-level function), its arguments pickled, and gets
back, over one duplex pipe:

- ``("event", value)`` for each value the job passes to its progress callback (the keyword
  ``stream_arg``: ``on_event`` for :func:`sandbox.pipeline.run`, ``on_member`` for an
  ensemble, ``on_result`` for a sweep); training throttles its own batch events;
- then ``("result", value)`` or ``("error", exception, traceback_text)``.

What a result shares with the call's arguments (the prices, above all) is not sent back: it
is pickled as a reference to the argument, and the caller gets its own object in its place
(so ``result.data is prices`` holds as it does in process). A fitted torch module never
crosses: a :class:`~sandbox.pipeline.RunResult` comes back with ``model=None`` and its
weights as safetensors bytes (:attr:`~sandbox.pipeline.RunResult.weights`), enough to save a
bundle without torch.

Stop sets a :class:`multiprocessing.Event` that the job checks between batches (through its
``cancel`` argument). If the child dies (killed, out of memory), the call raises a
:class:`~sandbox.errors.TrainingError` that says so and the next call starts a new child. The
child exits when its pipe closes or its parent process is gone, so it never outlives the
app. Importing this module loads neither torch nor Qt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sandbox.errors import Cancelled, TrainingError

__all__ = ["ChildEngine", "Engine", "InProcessEngine", "portable"]

#: how often a waiting call looks at the child and at its caller's cancel event (seconds)
_POLL_S = 0.05
#: how long :meth:`ChildEngine.shutdown` waits for the child to leave by itself (seconds)
_QUIT_WAIT_S = 2.0
#: how often the child checks that its parent is still there (seconds)
_PARENT_CHECK_S = 1.0
#: what the child sends once it has imported torch and the training code
_READY = pickle.dumps(("ready",))


class Engine(Protocol):
    """Runs module-level functions for the app: in this process or in a child."""

    def start(self) -> None:
        """Get ready in the background (returns at once)."""

    def call(self, fn: Callable[..., Any], args: Sequence[Any] = (),
             kwargs: dict[str, Any] | None = None, *, stream_arg: str | None = None,
             on_stream: Callable[[Any], None] | None = None,
             cancel: threading.Event | None = None) -> Any:
        """``fn(*args, **kwargs, cancel=..., <stream_arg>=on_stream)``; blocks the caller."""

    def cancel(self, token: threading.Event | None = None) -> None:
        """Ask the running call to stop (thread-safe; returns at once); with ``token``, only
        if the running call is the one whose ``cancel`` event that is."""

    def shutdown(self) -> None:
        """End whatever the engine started (waits briefly)."""


def _job_kwargs(kwargs: dict[str, Any] | None, stream_arg: str | None, on_stream: Any,
                cancel: Any) -> dict[str, Any]:
    out = dict(kwargs or {})
    if stream_arg is not None:
        out[stream_arg] = on_stream
    if cancel is not None:
        out["cancel"] = cancel
    return out


class InProcessEngine:
    """The engine interface, running each call on the calling thread."""

    def __init__(self) -> None:
        self._cancel: threading.Event | None = None

    def start(self) -> None:
        """Nothing to start."""

    def is_alive(self) -> bool:
        return True

    def call(self, fn: Callable[..., Any], args: Sequence[Any] = (),
             kwargs: dict[str, Any] | None = None, *, stream_arg: str | None = None,
             on_stream: Callable[[Any], None] | None = None,
             cancel: threading.Event | None = None) -> Any:
        """Run ``fn`` here; ``cancel`` is handed to it as it is."""
        self._cancel = cancel
        try:
            return fn(*args, **_job_kwargs(kwargs, stream_arg, on_stream or _ignore, cancel))
        finally:
            self._cancel = None

    def cancel(self, token: threading.Event | None = None) -> None:
        current = self._cancel
        if current is not None and (token is None or token is current):
            current.set()

    def shutdown(self) -> None:
        self.cancel()


class ChildEngine:
    """Runs calls in one child process (spawned, so it shares no state with the app).

    Calls are served one at a time: a second call waits for the first to end. Thread-safe.
    """

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()  # one call (or start/shutdown) at a time
        self._start_lock = threading.Lock()
        self._process: Any = None
        self._conn: Any = None
        self._cancel_event: Any = None
        self._busy = False
        self._current: threading.Event | None = None  # the running call's cancel event
        self._ready = False  # the child has imported what training needs

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the child if it is not running; it imports torch in the background."""
        with self._start_lock:
            if self._process is not None and self._process.is_alive():
                return
            self._close_pipe()
            parent_conn, child_conn = self._ctx.Pipe(duplex=True)
            cancel_event = self._ctx.Event()
            process = self._ctx.Process(target=_child_main,
                                        args=(child_conn, cancel_event, os.getpid()),
                                        name="sandbox-torch", daemon=True)
            process.start()
            child_conn.close()  # the child's end lives in the child now: EOF when it dies
            self._ready = False
            self._process, self._conn, self._cancel_event = process, parent_conn, cancel_event

    @property
    def pid(self) -> int | None:
        """The child's process id, or None when none runs."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def is_alive(self) -> bool:
        process = self._process
        return process is not None and process.is_alive()

    def wait_ready(self, timeout_s: float = 120.0) -> bool:
        """Start the child if needed and wait until it has imported torch and the training
        code; True when it has (blocks: call it from a worker thread)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self.start()
            conn = self._conn
            while not self._ready and time.monotonic() < deadline:
                try:
                    if conn.poll(_POLL_S) and conn.recv_bytes() == _READY:
                        self._ready = True
                except (EOFError, OSError):
                    return False
            return self._ready

    def shutdown(self) -> None:
        """Stop a running call, ask the child to leave, and make sure it is gone."""
        self.cancel()
        with self._start_lock:
            process, conn = self._process, self._conn
            if process is None:
                return
            if not self._busy:
                with contextlib.suppress(OSError, ValueError):
                    conn.send(("quit",))
            process.join(_QUIT_WAIT_S)
            if process.is_alive():
                process.terminate()
                process.join(_QUIT_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join(_QUIT_WAIT_S)
            self._close_pipe()
            self._process = None

    def _close_pipe(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None

    # --- calls -----------------------------------------------------------------------------
    def cancel(self, token: threading.Event | None = None) -> None:
        """Ask the running call to stop: sets an event the job checks between batches.

        With ``token``, only when the running call is the one given that ``cancel`` event
        (a call still waiting for the engine sees its own event when its turn comes).
        """
        event = self._cancel_event
        if event is not None and self._busy and (token is None or token is self._current):
            event.set()

    def call(self, fn: Callable[..., Any], args: Sequence[Any] = (),
             kwargs: dict[str, Any] | None = None, *, stream_arg: str | None = None,
             on_stream: Callable[[Any], None] | None = None,
             cancel: threading.Event | None = None) -> Any:
        """Run ``fn(*args, **kwargs)`` in the child and return (or raise) what it did.

        Parameters
        ----------
        fn : callable
            A module-level function (sent by reference).
        args, kwargs
            Its arguments (pickled; what the result shares with them comes back as the
            caller's own objects).
        stream_arg : str, optional
            The keyword under which ``fn`` takes its progress callback; each value it passes
            reaches ``on_stream`` on the calling thread.
        cancel : threading.Event, optional
            The caller's Stop: when set, the job is asked to stop (it raises ``Cancelled``).
            ``fn`` receives the child's own event as its ``cancel`` keyword.

        Raises
        ------
        TrainingError
            The child process ended in the middle of the call.
        Exception
            Whatever ``fn`` raised (with the child's traceback as a note for bugs).
        """
        args, kwargs = tuple(args), dict(kwargs or {})
        with self._lock:
            self.start()
            conn, process, event = self._conn, self._process, self._cancel_event
            event.clear()
            self._busy, self._current = True, cancel
            try:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("stopped before it started")
                request = ("call", fn, args, kwargs, stream_arg, cancel is not None)
                try:
                    conn.send(request)
                except (OSError, ValueError) as exc:
                    raise self._died(process) from exc
                return self._wait(conn, process, event, args, kwargs, on_stream, cancel)
            finally:
                self._busy, self._current = False, None

    def _wait(self, conn: Any, process: Any, event: Any, args: tuple, kwargs: dict,
              on_stream: Callable[[Any], None] | None, cancel: threading.Event | None) -> Any:
        known = _argument_objects(args, kwargs)
        while True:
            if cancel is not None and cancel.is_set() and not event.is_set():
                event.set()
            try:
                ready = conn.poll(_POLL_S)
                if not ready:
                    if not process.is_alive() and not conn.poll(0):
                        raise self._died(process)
                    continue
                data = conn.recv_bytes()
            except (EOFError, OSError) as exc:
                raise self._died(process) from exc
            try:
                message = _loads(data, known)
            except Exception as exc:  # e.g. an exception type that cannot be rebuilt here
                self._discard(process)
                raise TrainingError(
                    f"the training process sent an answer that could not be read "
                    f"({type(exc).__name__}: {exc}); nothing was kept. Press Train to start "
                    "again.") from exc
            tag = message[0]
            if tag == "ready":
                self._ready = True
            elif tag == "event":
                if on_stream is not None:
                    try:
                        on_stream(message[1])
                    except BaseException:
                        # the job runs on and would answer the next call: end it with us
                        self._discard(process)
                        raise
            elif tag == "result":
                return message[1]
            elif tag == "error":
                exc, details = message[1], message[2]
                if not isinstance(exc, Exception):
                    exc = RuntimeError(str(exc))
                if details:
                    exc.add_note(f"in the training process:\n{details}")
                raise exc

    def _discard(self, process: Any) -> None:
        """End a child whose call is being abandoned (its later messages would otherwise
        be read as the next call's answer); the next call starts a new one."""
        process.kill()
        process.join(_QUIT_WAIT_S)
        self._close_pipe()
        self._process = None

    def _died(self, process: Any) -> TrainingError:
        process.join(0.5)
        code = process.exitcode
        how = (f"killed by signal {-code}" if code is not None and code < 0
               else f"exit code {code}" if code is not None else "no answer")
        self._close_pipe()
        self._process = None
        return TrainingError(
            f"the training process ended unexpectedly ({how}; out of memory, or stopped from "
            "outside?); nothing was kept. Press Train to start again.")


def _ignore(_value: Any) -> None:
    """A progress callback that drops what it gets."""


# --- pickling: references to the call's arguments, and no torch modules -----------------------


def _argument_objects(args: tuple, kwargs: dict) -> list[Any]:
    """The objects of a call's arguments that a result may share (by position)."""
    return [*args, *(kwargs[k] for k in sorted(kwargs))]


class _Pickler(pickle.Pickler):
    """Pickles objects identical to one of the call's arguments as references to it."""

    def __init__(self, file: io.BytesIO, known: list[Any]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._known = {id(obj): i for i, obj in enumerate(known)
                       if not isinstance(obj, (str, bytes, int, float, bool, type(None)))}

    def persistent_id(self, obj: Any) -> Any:
        i = self._known.get(id(obj))
        return None if i is None else ("arg", i)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, known: list[Any]) -> None:
        super().__init__(file)
        self._known = known

    def persistent_load(self, pid: Any) -> Any:
        tag, i = pid
        if tag != "arg":
            raise pickle.UnpicklingError(f"unknown reference {pid!r}")
        return self._known[i]


def _dumps(value: Any, known: list[Any]) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, known).dump(value)
    return buffer.getvalue()


def _loads(data: bytes, known: list[Any]) -> Any:
    return _Unpickler(io.BytesIO(data), known).load()


def portable(value: Any) -> Any:
    """``value`` as it can cross to a process without torch: a RunResult's fitted model is
    replaced by its weights as safetensors bytes."""
    from sandbox.pipeline import RunResult

    if isinstance(value, RunResult) and value.model is not None:
        from sandbox.export import weights_bytes

        return dataclasses.replace(value, model=None, weights=weights_bytes(value))
    return value


# --- the child ---------------------------------------------------------------------------------


def _child_main(conn: Any, cancel: Any, parent_pid: int) -> None:
    """The child's loop: warm up, then serve calls until the pipe closes or ``quit``."""
    # The parent starts this process as a daemon, so that it never outlives the app. In here
    # the flag only forbids children, and joblib would then run an ensemble's or a sweep's
    # runs one after another ("Loky-backed parallel loops cannot be called in a
    # multiprocessing"). Its own workers are loky's, which end with their parent, as this
    # process ends with the app (_exit_with_parent).
    multiprocessing.current_process().daemon = False
    # Ctrl-C in the terminal goes to the whole process group: the app closes and ends this
    # process itself, which should not print a KeyboardInterrupt of its own meanwhile.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="sandbox-watch",
                     daemon=True).start()
    _warm_up()
    conn.send_bytes(_READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message[0] != "call":
            break
        _, fn, args, kwargs, stream_arg, cancellable = message
        known = _argument_objects(args, kwargs)

        def send(value: Any, known: list[Any] = known) -> None:
            conn.send_bytes(_dumps(("event", value), known))

        try:
            value = fn(*args, **_job_kwargs(kwargs, stream_arg, send,
                                            cancel if cancellable else None))
            reply = _dumps(("result", portable(value)), known)
        except BaseException as exc:  # every failure goes back to the caller
            details = "" if _is_user_error(exc) else traceback.format_exc()
            try:
                reply = _dumps(("error", exc, details), known)
            except Exception:  # an exception that does not pickle: its text does
                reply = _dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}"),
                                details), known)
        try:
            conn.send_bytes(reply)
        except (OSError, ValueError):
            break
    _release_workers()


def _release_workers() -> None:
    """End the loky worker processes that ensembles and sweeps started in this process, so
    they and their shared-memory folder go before it does (else loky's resource tracker
    warns about a leaked folder when the app closes)."""
    import sys

    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


def _is_user_error(exc: BaseException) -> bool:
    from sandbox.errors import SandboxError

    return isinstance(exc, SandboxError)


def _warm_up() -> None:
    """Import what training needs before the first call arrives.

    Also what ``torch.use_deterministic_algorithms`` imports on its first call (the inductor
    config: sympy and ~800 modules, about a second), so the first Train does not pay it.
    """
    import torch
    import torch._inductor.config  # noqa: F401

    import sandbox.ensemble
    import sandbox.export
    import sandbox.models
    import sandbox.pipeline
    import sandbox.sweep
    import sandbox.training  # noqa: F401


def _exit_with_parent(parent_pid: int) -> None:
    """End the child when the app is gone (even a ``kill -9`` of the app)."""
    while True:
        time.sleep(_PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            os._exit(0)
