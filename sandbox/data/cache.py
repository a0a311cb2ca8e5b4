"""On-disk Parquet cache of downloaded prices, keyed by (symbol, interval, auto_adjust).

One file per key under ``<cache dir>/prices``; the cache dir is the platformdirs user cache
folder of the app, or ``$SANDBOX_CACHE_DIR`` when set (tests and CI point it at a temp
folder). Each file carries, in its Parquet metadata, the time of its download (so a front
end can say "cached data from ...") and a SHA-256 of its contents. Files are written
atomically (:mod:`sandbox.atomic`), so a crash never leaves a half-written entry.

:meth:`PriceCache.get` has three answers: ``None`` (not cached), a :class:`CacheHit`, or a
:class:`CacheDamaged` saying why the file was not used: it cannot be read, it has no
checksum, or the checksum does not match the frame read back. A damaged entry is never
used, but unlike a miss the caller can tell the user, in one line
(:attr:`CacheDamaged.ignored`). Nothing is logged above DEBUG: the caller decides what the
user sees.

The checksum (:func:`frame_digest`) covers the entry's key and download time, the column
names, the dtypes (with the unit and timezone of timestamps) and the raw little-endian
bytes of the index and every column, in order. It is computed from the pandas frame
written and from the frame read back, so it does not depend on how Parquet or Arrow lay
the data out (page sizes, chunks, compression, validity bitmaps: all of these may differ
for identical data; an Arrow IPC serialisation would inherit those differences). A
random flip of bytes in the file either makes it unreadable or changes the frame, the
metadata or the stored checksum, and each of those is a mismatch.

Files written before the checksum existed count as damaged ("no checksum"): they are not
used offline, and the next download replaces them. Such a copy cannot be told apart from
one whose checksum entry was lost, and serving unverified prices would defeat the point.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import numpy as np
import pandas as pd

from sandbox import atomic

__all__ = ["ENV_CACHE_DIR", "CacheDamaged", "CacheHit", "PriceCache", "cache_dir",
           "frame_digest"]

log = logging.getLogger(__name__)

#: environment variable that overrides the cache folder
ENV_CACHE_DIR = "SANDBOX_CACHE_DIR"
_APP_NAME = "trading-signal-sandbox"
_META_CACHED_AT = b"sandbox.cached_at"
_META_KEY = b"sandbox.key"
_META_SHA256 = b"sandbox.sha256"
#: first bytes fed to the checksum; a new layout of :func:`frame_digest` gets a new tag
_DIGEST_TAG = b"sandbox.cache.v1"


def cache_dir() -> Path:
    """The app's cache folder: ``$SANDBOX_CACHE_DIR`` or the platformdirs user cache dir."""
    override = os.environ.get(ENV_CACHE_DIR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(_APP_NAME, appauthor=False))


class CacheHit(NamedTuple):
    """A cached frame whose checksum matched, and the ISO time it was downloaded."""

    frame: pd.DataFrame
    cached_at: str


@dataclass(frozen=True)
class CacheDamaged:
    """A cache file that exists but was not used, and why.

    ``entry`` names the key for the user ("^GSPC (1d bars)"); ``reason`` says what is
    wrong ("its checksum does not match its contents"); ``path`` is the file.
    """

    entry: str
    reason: str
    path: Path

    @property
    def ignored(self) -> str:
        """One line for the user when the copy was needed and not used."""
        return f"the cached copy of {self.entry} is damaged and was ignored: {self.reason}"

    @property
    def replaced(self) -> str:
        """One line for the user when a new download has taken the damaged copy's place."""
        return (f"the cached copy of {self.entry} was damaged and has been replaced by this "
                f"download: {self.reason}")


class PriceCache:
    """Downloaded price frames as Parquet files, one per (symbol, interval, auto_adjust).

    Parameters
    ----------
    root : pathlib.Path, optional
        Folder holding the files; default ``cache_dir() / "prices"``. Created on first write.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "prices"

    def path(self, symbol: str, interval: str, auto_adjust: bool) -> Path:
        """The file that holds the entry for this key (it may not exist)."""
        sym = quote(symbol.strip().upper(), safe="")  # "^GSPC" -> "%5EGSPC": safe on every OS
        adj = "adj" if auto_adjust else "raw"
        return self.root / f"{sym}__{interval}__{adj}.parquet"

    def get(self, symbol: str, interval: str,
            auto_adjust: bool) -> CacheHit | CacheDamaged | None:
        """The cached frame for this key, checked against its checksum.

        Parameters
        ----------
        symbol, interval, auto_adjust
            The key, as passed to :meth:`put`.

        Returns
        -------
        CacheHit, CacheDamaged or None
            None when nothing is cached; :class:`CacheDamaged` when a file exists but is
            unreadable, has no checksum or fails it (never used, like a miss, but the caller
            can say why); otherwise the frame and the time of its download.
        """
        path = self.path(symbol, interval, auto_adjust)
        if not path.is_file():
            return None
        import pyarrow.parquet as pq

        def damaged(reason: str) -> CacheDamaged:
            log.debug("cache entry %s not used: %s", path, reason)
            return CacheDamaged(_describe(symbol, interval, auto_adjust), reason, path)

        try:
            table = pq.read_table(path)
            frame = table.to_pandas()
        except Exception as exc:  # any failure to decode the file is damage
            return damaged(f"the file cannot be read ({_short(exc)})")
        meta = table.schema.metadata or {}
        stored = meta.get(_META_SHA256)
        if stored is None:
            return damaged("it has no checksum (written by an older version of the app)")
        key, stamp = meta.get(_META_KEY, b""), meta.get(_META_CACHED_AT, b"")
        try:
            actual = frame_digest(frame, key=key, cached_at=stamp).encode()
        except Exception as exc:  # a frame too odd to checksum is damaged too
            return damaged(f"its contents cannot be checked ({_short(exc)})")
        if stored != actual:
            return damaged("its checksum does not match its contents")
        if key != _key(symbol, interval, auto_adjust):
            return damaged(f"it holds the entry {key.decode(errors='replace')!r}")
        cached_at = stamp.decode(errors="replace") or _mtime_iso(path)
        return CacheHit(frame, cached_at)

    def put(self, symbol: str, interval: str, auto_adjust: bool, frame: pd.DataFrame) -> None:
        """Store ``frame`` for this key (replacing any older copy), stamped with the time now
        and with its checksum.

        Raises
        ------
        ExportError
            When the cache folder cannot be written.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path(symbol, interval, auto_adjust)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from sandbox.errors import ExportError

            raise ExportError(f"cannot create the cache folder {path.parent}: "
                              f"{exc.strerror or exc}") from None
        table = pa.Table.from_pandas(frame, preserve_index=True)
        key = _key(symbol, interval, auto_adjust)
        stamp = datetime.now(UTC).isoformat(timespec="seconds").encode()
        digest = frame_digest(frame, key=key, cached_at=stamp).encode()
        table = table.replace_schema_metadata({
            **(table.schema.metadata or {}),
            _META_CACHED_AT: stamp, _META_KEY: key, _META_SHA256: digest,
        })
        atomic.write_with(path, lambda tmp: pq.write_table(table, tmp))


def frame_digest(frame: pd.DataFrame, *, key: bytes = b"", cached_at: bytes = b"") -> str:
    """SHA-256 (hex) of a frame's contents, the same for the frame written and read back.

    Fed, in order: a version tag, ``key``, ``cached_at``, then the index and each column as
    (name, dtype, row count, values). Numbers and timestamps are their raw little-endian
    bytes (timestamps as integers in their unit, UTC for tz-aware ones; the dtype string
    carries the unit and timezone). Other dtypes, which price frames do not have, go
    through :func:`pandas.util.hash_pandas_object`.
    """
    h = hashlib.sha256()
    for part in (_DIGEST_TAG, key, cached_at):
        h.update(len(part).to_bytes(8, "little") + part)
    _feed(h, frame.index.name, pd.Series(frame.index, copy=False))
    for i, name in enumerate(frame.columns):
        _feed(h, name, frame.iloc[:, i])
    return h.hexdigest()


def _feed(h: Any, name: object, values: pd.Series) -> None:
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        raw = np.asarray(values.array.asi8)
    elif isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        raw = values.to_numpy()
    else:
        raw = pd.util.hash_pandas_object(values, index=False).to_numpy()
    raw = np.ascontiguousarray(raw, dtype=raw.dtype.newbyteorder("<"))
    head = f"{name!r}\0{dtype}\0{len(values)}\0".encode()
    h.update(len(head).to_bytes(8, "little") + head)
    h.update(raw.tobytes())


def _key(symbol: str, interval: str, auto_adjust: bool) -> bytes:
    return f"{symbol.strip().upper()}|{interval}|{auto_adjust}".encode()


def _describe(symbol: str, interval: str, auto_adjust: bool) -> str:
    """The key in words: "^GSPC (1d bars)", "AAPL (1h bars, unadjusted)"."""
    adj = "" if auto_adjust else ", unadjusted"
    return f"{symbol.strip().upper()} ({interval} bars{adj})"


def _short(exc: BaseException) -> str:
    """The first sentence of a reader's error, without the file name it repeats."""
    text = re.sub(r"^Could not open Parquet input source '[^']*': ", "", str(exc).strip())
    text = text.splitlines()[0] if text else ""
    text = text.split(". ")[0].rstrip(".")
    text = "".join(c if c.isprintable() else "?" for c in text).strip()  # bytes off the disk
    return text[:160] or type(exc).__name__


def _mtime_iso(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
