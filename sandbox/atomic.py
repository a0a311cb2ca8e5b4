"""Atomic file writing: a temp file in the target folder, then ``os.replace``.

A reader (or a crash, a full disk, Ctrl-C) never sees a half-written output: either the
old file stays, or the complete new one is in place. Failures become
:class:`~sandbox.errors.ExportError` with a message that names the path.
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
