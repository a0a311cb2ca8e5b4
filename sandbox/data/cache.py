"""On-disk Parquet cache of downloaded prices, keyed by (symbol, interval, auto_adjust).

One file per key under ``<cache dir>/prices``; the cache dir is the platformdirs user cache
folder of the app, or ``$SANDBOX_CACHE_DIR`` when set (tests and CI point it at a temp
folder). Each file carries the time of its download in its Parquet metadata, so a front
end can say "cached data from ...". Files are written atomically (:mod:`sandbox.atomic`):
a crash never leaves a half-written entry, and an unreadable entry counts as a miss.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from sandbox import atomic

__all__ = ["ENV_CACHE_DIR", "PriceCache", "cache_dir"]

log = logging.getLogger(__name__)

#: environment variable that overrides the cache folder
ENV_CACHE_DIR = "SANDBOX_CACHE_DIR"
_APP_NAME = "trading-signal-sandbox"
_META_CACHED_AT = b"sandbox.cached_at"
_META_KEY = b"sandbox.key"


def cache_dir() -> Path:
    """The app's cache folder: ``$SANDBOX_CACHE_DIR`` or the platformdirs user cache dir."""
    override = os.environ.get(ENV_CACHE_DIR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(_APP_NAME, appauthor=False))


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

    def get(self, symbol: str, interval: str, auto_adjust: bool) -> tuple[pd.DataFrame, str] | None:
        """The cached frame and the ISO time it was downloaded, or None when not cached.

        Parameters
        ----------
        symbol, interval, auto_adjust
            The key, as passed to :meth:`put`.

        Returns
        -------
        (pandas.DataFrame, str) or None
            None also when the file is unreadable (a damaged entry is a miss, not an error).
        """
        path = self.path(symbol, interval, auto_adjust)
        if not path.is_file():
            return None
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
            frame = table.to_pandas()
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            log.warning("ignoring unreadable cache entry %s: %s", path, exc)
            return None
        meta = table.schema.metadata or {}
        cached_at = meta.get(_META_CACHED_AT, b"").decode() or _mtime_iso(path)
        return frame, cached_at

    def put(self, symbol: str, interval: str, auto_adjust: bool, frame: pd.DataFrame) -> None:
        """Store ``frame`` for this key (replacing any older copy), stamped with the time now.

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
        key = f"{symbol.strip().upper()}|{interval}|{auto_adjust}".encode()
        stamp = datetime.now(UTC).isoformat(timespec="seconds").encode()
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _META_CACHED_AT: stamp, _META_KEY: key}
        )
        atomic.write_with(path, lambda tmp: pq.write_table(table, tmp))


def _mtime_iso(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
