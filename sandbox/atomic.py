"""Atomic writing: a file through a temp file and ``os.replace``; a folder of outputs through a
temporary sibling folder swapped into place (:class:`FolderWriter`).

A reader (or a crash, a full disk, Ctrl-C) never sees a half-written output, nor a folder
whose files come from two runs: either the old file or folder stays, or the complete new one
is in place. Failures become :class:`~sandbox.errors.ExportError` with a message that names
the path.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from sandbox.errors import ExportError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place when the block succeeds.

    The temporary file is removed when the block raises (including ``KeyboardInterrupt``).
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"cannot write {target}: folder {folder} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give the output the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, target)
        if test_hook is not None:
            test_hook("written", target)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_with(path: str | os.PathLike[str], writer: Callable[[Path], Any]) -> Path:
    """Run ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsynced before the rename)."""

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    return write_with(path, _write)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON (NaN/inf become ``null``) atomically."""
    return write_text(path, json.dumps(_json_safe(obj), indent=2, allow_nan=False) + "\n")


#: rows pandas formats per call when writing CSV. One call holds the interpreter lock for its
#: whole length (~30 ms for a 5,000-row predictions table): in chunks, an export on a worker
#: thread lets the UI thread in every ~1.5 ms. The bytes written are the same.
CSV_CHUNK_ROWS = 256


def write_csv(path: str | os.PathLike[str], frame: pd.DataFrame, *, index: bool = True) -> Path:
    """Write ``frame`` as CSV at full float precision (round-trip repr), atomically."""
    return write_with(path, lambda tmp: frame.to_csv(tmp, index=index, lineterminator="\n",
                                                     chunksize=CSV_CHUNK_ROWS))


def write_parquet(path: str | os.PathLike[str], frame: pd.DataFrame) -> Path:
    """Write ``frame`` as Parquet (pyarrow) atomically."""
    return write_with(path, lambda tmp: frame.to_parquet(tmp, engine="pyarrow"))


def _json_safe(obj: Any) -> Any:
    """Replace NaN/inf floats by None and numpy scalars by Python ones, recursively."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# --- whole folders ---------------------------------------------------------------------------
#
# A run writes several files (predictions.csv, metrics.json, model.safetensors, run.json) that
# belong together. Replacing them one by one lets a reader, a crash or a second writer leave a
# folder that mixes two runs. Instead every file is written into a temporary sibling folder,
# which is then swapped with the target in one step: renameat2(RENAME_EXCHANGE) on Linux (the
# target path is never missing, a reader sees the old folder or the new one), else two renames
# (a crash between them leaves the old folder under a hidden name, removed by the next write).
# One writer at a time: an exclusive flock on a lock file beside the folder, which the kernel
# drops when its process dies, so a crashed run never leaves the folder locked.

#: hidden siblings of an output folder ``NAME``: ``.NAME.partial-*`` (being written),
#: ``.NAME.old-*`` (replaced, being removed) and ``.NAME.lock`` (the writer's lock)
_PARTIAL, _OLD, _LOCK = ".partial-", ".old-", ".lock"

#: called as ``hook(stage, path)`` after each file is written into the temporary folder
#: (``stage="written"``) and just before the swap (``stage="swap"``); tests set it to stop or
#: kill a writer at those moments. None in normal use.
test_hook: Callable[[str, Path], None] | None = None


class FolderWriter:
    """Write a folder of outputs as one: lock, fill a temporary sibling, swap it into place.

    Use as a context manager around the whole job (the lock is taken on entering, so a second
    writer of the same folder is refused at once, not after minutes of training), and call
    :meth:`write` once the files are ready::

        with FolderWriter(out) as folder:
            result = long_job()
            folder.write(lambda tmp: write_files(result, tmp))

    Parameters
    ----------
    target : path
        The output folder. It may not exist yet; if it exists it may hold only output files
        (``allowed``) and the hidden siblings of earlier writes: the swap replaces the folder
        as a whole, so anything else in it would be lost, and is refused instead.
    allowed : collection of str
        Names the folder may already hold (default: every output name of the app).

    Raises
    ------
    ExportError
        (On entering) the target is a file, holds other files, its parent cannot be created
        or written, or another writer holds the folder.
    """

    def __init__(self, target: str | os.PathLike[str], *,
                 allowed: frozenset[str] | None = None) -> None:
        from sandbox import constants as C

        path = Path(target).expanduser()
        # A symlink to a folder: write the folder it points to, keep the link.
        self.target = Path(os.path.realpath(path)) if path.is_symlink() else Path(
            os.path.abspath(path))
        self.shown = path  # as the user wrote it, for messages and returned paths
        self.allowed = C.OUTPUT_NAMES if allowed is None else allowed
        self._lock_fd: int | None = None

    # -- the lock --------------------------------------------------------------------------
    @property
    def parent(self) -> Path:
        return self.target.parent

    def _sibling(self, kind: str) -> str:
        return f".{self.target.name}{kind}"

    def __enter__(self) -> FolderWriter:
        self._check_target()
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create the folder {self.parent}: "
                              f"{exc.strerror or exc}") from None
        self._lock()
        try:
            self._remove_stale()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._unlock()

    def _check_target(self) -> None:
        if self.target.exists() and not self.target.is_dir():
            raise ExportError(f"{self.shown}: exists and is not a folder")
        if self.target.is_dir():
            if not os.access(self.target, os.W_OK):  # read-only: not ours to replace
                raise ExportError(f"cannot write into {self.shown}: permission denied")
            try:
                names = sorted(os.listdir(self.target))
            except OSError as exc:
                raise ExportError(f"{self.shown}: cannot be read ({exc.strerror})") from None
            other = [n for n in names if n not in self.allowed]
            if other:
                shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more"
                                                if len(other) > 3 else "")
                raise ExportError(
                    f"{self.shown}: holds other files ({shown}); an output folder is replaced "
                    "as a whole, so choose a new or empty folder, or one an earlier run wrote")

    def _lock(self) -> None:
        path = self.parent / self._sibling(_LOCK)
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise ExportError(f"cannot write into {self.parent}: "
                                  f"{exc.strerror or exc}") from None
            if not _try_lock(fd):
                holder = _read_pid(fd)
                os.close(fd)
                who = f" (process {holder})" if holder else ""
                raise ExportError(
                    f"{self.shown}: another run is writing this folder{who}; wait for it to "
                    "finish or choose another folder")
            # The holder before us may have removed the lock file as we opened it: then we
            # hold a lock on a file nobody else sees. Start again on the current file.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.parent / self._sibling(_LOCK))  # while still held: see _lock
        os.close(fd)  # releases the lock

    def _remove_stale(self) -> None:
        """Remove temporary folders of earlier writes that crashed (we hold the lock: no live
        writer owns them)."""
        import glob
        import shutil

        for kind in (_PARTIAL, _OLD):
            for stale in self.parent.glob(f"{glob.escape(self._sibling(kind))}*"):
                shutil.rmtree(stale, ignore_errors=True)

    # -- writing ---------------------------------------------------------------------------
    def write(self, fill: Callable[[Path], Any]) -> Any:
        """Run ``fill(folder)`` on a new temporary folder, then swap it in as the target.

        Returns what ``fill`` returned. If ``fill`` raises (or Ctrl-C lands), the temporary
        folder is removed and the target is left as it was.
        """
        import shutil

        if self._lock_fd is None:
            raise RuntimeError("FolderWriter.write outside its with block")
        try:
            tmp = Path(tempfile.mkdtemp(prefix=self._sibling(_PARTIAL), dir=self.parent))
        except OSError as exc:
            raise ExportError(f"cannot write into {self.parent}: {exc.strerror or exc}") from None
        try:
            with contextlib.suppress(OSError):
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a folder gets the usual
            value = fill(tmp)
            _fsync_tree(tmp)
            if test_hook is not None:
                test_hook("swap", tmp)
            with _sigint_deferred():
                old = self._swap(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(self.parent)
        return value

    def _swap(self, tmp: Path) -> Path | None:
        """Put ``tmp`` in the target's place; return where the old folder went (or None)."""
        try:
            if not self.target.exists():
                os.rename(tmp, self.target)
                return None
            if _exchange(tmp, self.target):
                return tmp  # tmp now holds the old folder
            old = Path(tempfile.mkdtemp(prefix=self._sibling(_OLD), dir=self.parent))
            os.rename(self.target, old / "run")
            os.rename(tmp, self.target)
            return old
        except OSError as exc:
            raise ExportError(f"cannot replace {self.shown}: {exc.strerror or exc}") from None


def write_folder(target: str | os.PathLike[str], fill: Callable[[Path], Any], *,
                 allowed: frozenset[str] | None = None) -> Any:
    """Lock ``target``, write it with ``fill(tmp_folder)`` and swap it in (see FolderWriter)."""
    with FolderWriter(target, allowed=allowed) as folder:
        return folder.write(fill)


def write_into(target: str | os.PathLike[str] | FolderWriter,
               fill: Callable[[Path], Any]) -> Path:
    """Write a folder with ``fill(tmp_folder)`` as one: into a :class:`FolderWriter` the
    caller already holds, or else through :func:`write_folder`. Returns the folder as the
    caller named it."""
    if isinstance(target, FolderWriter):
        target.write(fill)
        return target.shown
    write_folder(target, fill)
    return Path(target)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, as hex."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _try_lock(fd: int) -> bool:
    """An exclusive lock on ``fd`` without waiting; False when another holder has it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip() or "x")
    return None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    import errno

    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False  # this file system cannot: fall back on two renames
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder`` (and the folder) to disk before it is swapped in."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(root))


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C back for the few statements of a swap, so that "cancelled; no output was
    written" is never said of a folder that was just replaced. A Ctrl-C that lands meanwhile is
    dropped: the output is complete by then. Only the main thread can do this; elsewhere
    (the app's worker threads) there is no Ctrl-C to hold back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
