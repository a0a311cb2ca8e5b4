"""The three price sources, dispatched: ``sample:NAME``, ``csv:PATH`` and ``yahoo:SYMBOL``.

:func:`load_prices` is the entry point: it dispatches on the source kind (the bundled samples
here, files in :mod:`sandbox.data.csv`, downloads in :mod:`sandbox.data.yahoo`), validates the
frame (:func:`~sandbox.data.validate.validate_prices`), keeps ``spec.start .. spec.end`` (both
inclusive) and reports :class:`~sandbox.events.DataLoaded`.
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.config import DataSpec
from sandbox.data.cache import PriceCache
from sandbox.data.csv import parse_price_csv, read_price_csv
from sandbox.data.validate import format_date, validate_prices
from sandbox.errors import ConfigError, DataError
from sandbox.events import DataLoaded, OnEvent, emit

__all__ = [
    "LoadedPrices",
    "date_bound",
    "is_date_only",
    "list_samples",
    "load_prices",
]


@dataclass(frozen=True)
class LoadedPrices:
    """A validated price frame and where it came from."""

    frame: pd.DataFrame  # the data contract: DatetimeIndex "date", float64 OHLCV
    label: str  # "GSPC", "AAPL", or the CSV file stem
    source: str  # DataSpec.source, e.g. "sample:GSPC"
    from_cache: bool = False  # yahoo only: True when served from the on-disk cache
    cached_at: str | None = None  # ISO timestamp of the cached download when from_cache
    #: one line each, e.g. "sorted 3 out-of-order rows", "the cached copy of ^GSPC (1d bars)
    #: was damaged and has been replaced by this download: ..."
    warnings: tuple[str, ...] = ()
    #: bars per year measured from the dates (set by load_prices, off the app's UI thread)
    periods_per_year: float | None = None


# --- entry point ---------------------------------------------------------------------------------


def load_prices(
    spec: DataSpec,
    *,
    min_rows: int = 0,
    on_event: OnEvent = None,
    cache: PriceCache | None = None,
    offline: bool = False,
    min_rows_reason: str | None = None,
) -> LoadedPrices:
    """Load, validate and trim the prices ``spec`` describes.

    Parameters
    ----------
    spec : DataSpec
        ``sample:NAME``, ``csv:PATH`` or ``yahoo:SYMBOL`` plus start/end (inclusive),
        interval and adjustment options.
    min_rows : int
        Fewest rows the caller needs after trimming to start/end; 0 = no limit.
    on_event : callable, optional
        Receives one :class:`~sandbox.events.DataLoaded` when the prices are ready.
    cache : PriceCache, optional
        Download cache for ``yahoo:`` sources; the default user cache when None.
    offline : bool
        ``yahoo:`` only: do not download, use the cached copy (NetworkError when there is
        none, or when it is damaged).
    min_rows_reason : str, optional
        What needs ``min_rows`` rows, for the message ("the window of 30 plus three splits").

    Returns
    -------
    LoadedPrices

    Raises
    ------
    DataError
        The file/ticker/sample is missing, malformed or too short (the message names it, the
        row and the problem).
    NetworkError
        A download failed and no usable cached copy exists (the message says whether it is
        missing or damaged and ignored).
    ConfigError
        ``spec.start`` / ``spec.end`` are not dates, or start is after end.
    """
    from sandbox.data.yahoo import fetch_yahoo  # not at the top: it imports LoadedPrices

    kind, value = spec.kind, spec.value
    if kind == C.SOURCE_SAMPLE:
        loaded = _load_sample(value, use_adj_close=spec.use_adj_close)
        name = f"sample {loaded.label}"
    elif kind == C.SOURCE_CSV:
        frame, notes = read_price_csv(value, use_adj_close=spec.use_adj_close,
                                      date_format=spec.date_format)
        loaded = LoadedPrices(frame, label=spec.label, source=spec.source, warnings=notes)
        name = value
    elif kind == C.SOURCE_YAHOO:
        loaded = fetch_yahoo(value, start=spec.start, end=spec.end, interval=spec.interval,
                             auto_adjust=spec.auto_adjust, cache=cache, offline=offline)
        name = (f"the cached copy of ticker {loaded.label} (from {loaded.cached_at})"
                if loaded.from_cache else f"ticker {loaded.label}")
    else:  # DataSpec refuses other kinds; kept for a clear message if that ever changes
        raise ConfigError(f"data source {spec.source!r}: unknown kind {kind!r}")

    frame = _between(loaded.frame, spec.start, spec.end, name=name)
    frame, _ = validate_prices(frame, name=name, min_rows=min_rows,
                               min_rows_reason=min_rows_reason)
    from sandbox.backtest import infer_periods_per_year

    result = LoadedPrices(frame=frame, label=loaded.label, source=spec.source,
                          from_cache=loaded.from_cache, cached_at=loaded.cached_at,
                          warnings=loaded.warnings,
                          periods_per_year=infer_periods_per_year(frame.index))
    emit(on_event, DataLoaded(
        label=result.label, n_rows=len(frame), first=format_date(frame.index[0]),
        last=format_date(frame.index[-1]), from_cache=result.from_cache,
        cached_at=result.cached_at, warnings=result.warnings,
    ))
    return result


# --- sample --------------------------------------------------------------------------------------


def _sample_dir() -> Any:
    return importlib.resources.files("sandbox.resources") / "sample_data"


def list_samples() -> tuple[str, ...]:
    """Names of the bundled samples (``GOOG``, ``GSPC``), usable as ``sample:NAME``."""
    return tuple(sorted(
        p.name[: -len(".csv")] for p in _sample_dir().iterdir() if p.name.lower().endswith(".csv")
    ))


def _load_sample(name: str, *, use_adj_close: bool) -> LoadedPrices:
    wanted = name.strip().upper()
    available = {s.upper(): s for s in list_samples()}
    if wanted not in available:
        raise DataError(f"unknown sample {name!r}: available samples are "
                        f"{', '.join(list_samples())}")
    label = available[wanted]
    raw = (_sample_dir() / f"{label}.csv").read_bytes()
    frame, notes = parse_price_csv(raw, f"sample {label}", use_adj_close=use_adj_close)
    return LoadedPrices(frame, label=label, source=f"{C.SOURCE_SAMPLE}:{label}", warnings=notes)


# --- date range ----------------------------------------------------------------------------------


def _between(frame: pd.DataFrame, start: str | None, end: str | None, *, name: str) -> pd.DataFrame:
    """Rows with ``start <= date <= end`` (a date-only end includes that whole day)."""
    if start is None and end is None:
        return frame
    index = frame.index
    keep = np.ones(len(frame), dtype=bool)
    lo = date_bound(start, "--start", index.tz)
    hi = date_bound(end, "--end", index.tz)
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(f"--start {start} is after --end {end}")
    if lo is not None:
        keep &= index >= lo
    if hi is not None:
        keep &= index < hi + pd.Timedelta(days=1) if is_date_only(end) else index <= hi
    if not keep.any():
        raise DataError(
            f"{name} has no rows between {start or 'the start'} and {end or 'the end'} "
            f"(the data covers {format_date(index[0])} .. {format_date(index[-1])})"
        )
    return frame[keep]


def date_bound(value: str | None, flag: str, tz: Any) -> pd.Timestamp | None:
    """A ``--start``/``--end`` value as a timestamp in the data's timezone ``tz`` (None: none).

    Raises
    ------
    ConfigError
        ``value`` is not a date; the message names ``flag``.
    """
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{flag} {value!r}: not a date (use YYYY-MM-DD)") from None
    if pd.isna(ts):
        raise ConfigError(f"{flag} {value!r}: not a date (use YYYY-MM-DD)")
    if tz is not None:
        ts = ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)
    elif ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts


def is_date_only(value: str | None) -> bool:
    """True for a plain ``YYYY-MM-DD`` (an end bound that includes that whole day)."""
    return value is not None and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", str(value)) is not None
