"""The three price sources: ``sample:NAME``, ``csv:PATH`` and ``yahoo:SYMBOL``.

:func:`load_prices` is the entry point: it dispatches on the source kind, validates the
frame (:func:`~sandbox.data.validate.validate_prices`), keeps ``spec.start .. spec.end``
(both inclusive) and reports :class:`~sandbox.events.DataLoaded`.

yfinance is reached through exactly one function, :func:`_yf_history`, so tests replace that
call and nothing else. What yfinance 1.x does, and what it becomes here:

- no connection: ``Ticker.history`` raises curl_cffi's ``DNSError`` / ``ConnectionError`` /
  ``Timeout`` (``OSError`` subclasses) once exceptions are not hidden
  (``yf.config.debug.hide_exceptions = False``, the non-deprecated form of
  ``raise_errors=True``) -> :class:`NetworkError`;
- unknown symbol: ``YFTzMissingError`` or ``YFPricesMissingError`` (both
  ``YFTickerMissingError``) -> :class:`DataError` "unknown ticker ...";
- rate limit: ``YFRateLimitError`` -> :class:`NetworkError`;
- an empty frame without an exception (what it does with exceptions hidden) -> :class:`DataError`.

When a download fails and the cache holds a copy, the copy is returned with
``from_cache=True`` and the time of its download. The whole download runs under a deadline
(:data:`DOWNLOAD_TIMEOUT_S`) so an unreachable provider never hangs a command.
"""

from __future__ import annotations

import codecs
import importlib.resources
import io
import logging
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.config import DataSpec
from sandbox.data.cache import PriceCache, cache_dir
from sandbox.data.validate import format_date, parse_dates, validate_prices
from sandbox.errors import ConfigError, DataError, ExportError, NetworkError, SandboxError
from sandbox.events import DataLoaded, OnEvent, emit

__all__ = [
    "DOWNLOAD_TIMEOUT_S",
    "LoadedPrices",
    "fetch_yahoo",
    "list_samples",
    "load_prices",
    "read_price_csv",
]

log = logging.getLogger(__name__)

#: seconds a whole Yahoo download may take before it counts as "no connection"
DOWNLOAD_TIMEOUT_S = 25.0
#: seconds per HTTP request inside yfinance (its own ``timeout`` argument)
_REQUEST_TIMEOUT_S = 10

_ADJ_CLOSE = "adj close"
#: CSV header spellings -> contract names (keys: lower case, runs of space/underscore -> " ")
_ALIASES: dict[str, str] = {
    "open": C.OPEN, "high": C.HIGH, "low": C.LOW, "close": C.CLOSE, "volume": C.VOLUME,
    "close/last": C.CLOSE, "last": C.CLOSE, "vol": C.VOLUME, "vol.": C.VOLUME,
    "adj close": _ADJ_CLOSE, "adj. close": _ADJ_CLOSE, "adjclose": _ADJ_CLOSE,
    "adjusted close": _ADJ_CLOSE, "adj close*": _ADJ_CLOSE, "close*": C.CLOSE,
}
_DATE_NAMES = ("date", "datetime", "timestamp", "date/time", "time")
_NUMBER_JUNK = re.compile(r"[\s$€£¥,]")


@dataclass(frozen=True)
class LoadedPrices:
    """A validated price frame and where it came from."""

    frame: pd.DataFrame  # the data contract: DatetimeIndex "date", float64 OHLCV
    label: str  # "GSPC", "AAPL", or the CSV file stem
    source: str  # DataSpec.source, e.g. "sample:GSPC"
    from_cache: bool = False  # yahoo only: True when served from the on-disk cache
    cached_at: str | None = None  # ISO timestamp of the cached download when from_cache
    warnings: tuple[str, ...] = ()  # e.g. "sorted 3 out-of-order rows"


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
        ``yahoo:`` only: do not download, use the cached copy (NetworkError when none).
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
        A download failed and no cached copy exists.
    ConfigError
        ``spec.start`` / ``spec.end`` are not dates, or start is after end.
    """
    kind, value = spec.kind, spec.value
    if kind == C.SOURCE_SAMPLE:
        loaded = _load_sample(value, use_adj_close=spec.use_adj_close)
        name = f"sample {loaded.label}"
    elif kind == C.SOURCE_CSV:
        frame, notes = read_price_csv(value, use_adj_close=spec.use_adj_close)
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
    result = LoadedPrices(frame=frame, label=loaded.label, source=spec.source,
                          from_cache=loaded.from_cache, cached_at=loaded.cached_at,
                          warnings=loaded.warnings)
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
    display = f"sample {label}"
    frame, lines, notes = _parse_csv_text(_decode(raw, display), display,
                                          use_adj_close=use_adj_close)
    frame, more = validate_prices(frame, name=display, lines=lines)
    return LoadedPrices(frame, label=label, source=f"{C.SOURCE_SAMPLE}:{label}",
                        warnings=notes + more)


# --- csv -----------------------------------------------------------------------------------------


def read_price_csv(
    path: str | Path, *, use_adj_close: bool = False
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Read and validate a CSV of OHLCV bars as users export them.

    Accepted: Yahoo and broker exports; ``Date``/``Datetime`` column (or a first column of
    dates); any column case; ``Adj Close`` present or not; thousands separators and currency
    signs in numbers; ISO or ``MM/DD/YYYY`` dates (``DD/MM/YYYY`` when only that reads);
    timestamps with UTC offsets (one offset is kept, several are converted to UTC); a BOM;
    blank or all-empty trailing lines; comma, semicolon (decimal comma) or tab separators.
    A file without a volume column is accepted with volume 0 and a warning.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file.
    use_adj_close : bool
        Take ``Adj Close`` as the close and scale open/high/low by ``adj / close``
        (a warning, and the plain close, when the file has no such column).

    Returns
    -------
    frame : pandas.DataFrame
        The validated frame (see :func:`~sandbox.data.validate.validate_prices`).
    warnings : tuple of str
        What was repaired on the way.

    Raises
    ------
    DataError
        Nonexistent path, a folder, an empty or binary file, a header without rows, or any
        validation failure; the message names the path and the line (header = line 1).
    """
    p = require_file(path)
    name = str(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    frame, lines, notes = _parse_csv_text(_decode(raw, name), name, use_adj_close=use_adj_close)
    frame, more = validate_prices(frame, name=name, lines=lines)
    return frame, notes + more


def _decode(raw: bytes, name: str) -> str:
    """Bytes -> text: UTF-8 (with or without BOM), UTF-16 with BOM, else Latin-1; refuse binary."""
    if not raw.strip():
        raise DataError(f"{name} is empty")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    head = raw[:8192]
    if head.startswith(b"PK\x03\x04"):
        raise DataError(f"{name} is a zip or Excel file, not CSV text: "
                        "save it as CSV (comma separated) first")
    if b"\x00" in head:
        raise DataError(f"{name} is not a CSV text file (it contains binary data)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    sample = text[:8192]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n") + sample.count("\x7f")
    if control > max(2, len(sample) // 100):
        raise DataError(f"{name} is not a CSV text file (it contains binary data)")
    return text


def _parse_csv_text(
    text: str, name: str, *, use_adj_close: bool
) -> tuple[pd.DataFrame, np.ndarray | None, tuple[str, ...]]:
    """CSV text -> (frame with a DatetimeIndex and float columns, file line of each row, notes)."""
    notes: list[str] = []
    all_lines = text.splitlines()
    content = [i + 1 for i, line in enumerate(all_lines) if line.strip()]
    if not content:
        raise DataError(f"{name} is empty")
    header = all_lines[content[0] - 1]
    sep = max((",", ";", "\t"), key=header.count)
    if not header.count(sep):
        sep = ","
    try:
        # plain and quoted "1,234.5" numbers parse here (fast); columns that stay text
        # (currency signs, decimal commas, junk) are converted by _to_float with line numbers
        df = pd.read_csv(io.StringIO(text), sep=sep, skip_blank_lines=True,
                         thousands="," if sep != ";" else None)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty") from None
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DataError(f"{name}: cannot read the CSV ({detail}); numbers with a thousands "
                        "separator must be quoted") from None
    # file line of every data row (pandas skips blank lines; quoted line breaks would
    # break the count, and then rows are named by date instead)
    lines: np.ndarray | None = np.asarray(content[1:], dtype=np.int64)
    if lines is not None and len(lines) != len(df):
        lines = None
    # rows where every field is empty (",,,,," trailers from spreadsheets) are blank lines too
    blank = df.isna().all(axis=1).to_numpy()
    if blank.any():
        df = df[~blank].reset_index(drop=True)
        lines = lines[~blank] if lines is not None else None
    if len(df) == 0:
        raise DataError(f"{name} has a header but no data rows")

    df, date_values = _pick_columns(df, name, lines)
    index = parse_dates(date_values, name=name, lines=lines)
    if str(index.tz) == "UTC" and not date_values.astype("string").str.strip().str.endswith(
            ("Z", "+00:00", "UTC", "+0000")).all():
        notes.append("timestamps have several UTC offsets (daylight saving?): converted to UTC")
    # "1.234,56" style only in semicolon files whose numbers actually contain a comma
    numeric = [c for c in (C.OPEN, C.HIGH, C.LOW, C.CLOSE, C.VOLUME, _ADJ_CLOSE) if c in df]
    decimal_comma = sep == ";" and any(
        df[c].dtype.kind not in "fiub"
        and bool(df[c].astype("string").str.contains(",", regex=False).any())
        for c in numeric)
    data: dict[str, np.ndarray] = {}
    for col in (C.OPEN, C.HIGH, C.LOW, C.CLOSE, C.VOLUME, _ADJ_CLOSE):
        if col in df.columns:
            data[col] = _to_float(df[col], col, name, lines, index, decimal_comma=decimal_comma)
    if use_adj_close:
        if _ADJ_CLOSE in data and C.CLOSE in data:
            factor = data[_ADJ_CLOSE] / data[C.CLOSE]
            for col in (C.OPEN, C.HIGH, C.LOW):
                if col in data:
                    data[col] = data[col] * factor
            data[C.CLOSE] = data[_ADJ_CLOSE]
        else:
            notes.append("no 'Adj Close' column: using Close as it is")
    data.pop(_ADJ_CLOSE, None)
    frame = pd.DataFrame(data, index=index)
    return frame, lines, tuple(notes)


def _pick_columns(
    df: pd.DataFrame, name: str, lines: np.ndarray | None
) -> tuple[pd.DataFrame, pd.Series]:
    """Rename known headers to contract names; return the frame and the raw date column."""
    keys = [re.sub(r"[\s_]+", " ", str(c).strip().lower()) for c in df.columns]
    rename: dict[object, str] = {}
    for col, key in zip(df.columns, keys, strict=True):
        target = _ALIASES.get(key)
        if target is not None and target not in rename.values():
            rename[col] = target
    date_cols = [c for c, k in zip(df.columns, keys, strict=True) if k in _DATE_NAMES]
    date_key = {c: k for c, k in zip(df.columns, keys, strict=True)}
    if date_cols:
        first = date_cols[0]
        dates = df[first]
        times = [c for c in date_cols if date_key[c] == "time" and c != first]
        if date_key[first] == "date" and times:  # separate Date and Time columns
            dates = (df[first].astype("string").str.strip() + " "
                     + df[times[0]].astype("string").str.strip())
    else:
        first = df.columns[0]
        try:
            parse_dates(df[first], name=name, lines=lines)
        except DataError:
            have = ", ".join(str(c) for c in df.columns)
            raise DataError(f"{name}: no Date column (found: {have}); the first column "
                            "must hold dates, e.g. 2020-01-31") from None
        dates = df[first]
    return df.rename(columns=rename), dates


def _to_float(
    column: pd.Series, col: str, name: str, lines: np.ndarray | None,
    index: pd.DatetimeIndex, *, decimal_comma: bool,
) -> np.ndarray:
    """Text -> float64, tolerating thousands separators and currency signs."""
    if column.dtype.kind in "fiub":  # parsed as numbers already
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    text = column.astype("string").str.strip()
    if decimal_comma:
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    cleaned = text.str.replace(_NUMBER_JUNK, "", regex=True)
    values = pd.to_numeric(cleaned, errors="coerce")
    bad = (values.isna() & cleaned.notna() & (cleaned != "")).to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        where = f"line {lines[pos]}" if lines is not None else f"row {format_date(index[pos])}"
        raise DataError(f"{name}, {where}: {col} {column.iloc[pos]!r} is not a number")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


# --- date range ----------------------------------------------------------------------------------


def _between(frame: pd.DataFrame, start: str | None, end: str | None, *, name: str) -> pd.DataFrame:
    """Rows with ``start <= date <= end`` (a date-only end includes that whole day)."""
    if start is None and end is None:
        return frame
    index = frame.index
    keep = np.ones(len(frame), dtype=bool)
    lo = _bound(start, "--start", index.tz)
    hi = _bound(end, "--end", index.tz)
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(f"--start {start} is after --end {end}")
    if lo is not None:
        keep &= index >= lo
    if hi is not None:
        keep &= index < hi + pd.Timedelta(days=1) if _date_only(end) else index <= hi
    if not keep.any():
        raise DataError(
            f"{name} has no rows between {start or 'the start'} and {end or 'the end'} "
            f"(the data covers {format_date(index[0])} .. {format_date(index[-1])})"
        )
    return frame[keep]


def _bound(value: str | None, flag: str, tz: Any) -> pd.Timestamp | None:
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


def _date_only(value: str | None) -> bool:
    return value is not None and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", str(value)) is not None


# --- yahoo ---------------------------------------------------------------------------------------


def fetch_yahoo(
    symbol: str,
    *,
    start: str | None,
    end: str | None,
    interval: str = "1d",
    auto_adjust: bool = True,
    cache: PriceCache | None = None,
    offline: bool = False,
) -> LoadedPrices:
    """Download bars from Yahoo Finance (through the cache), validated.

    Parameters
    ----------
    symbol : str
        Yahoo symbol (``AAPL``, ``^GSPC``, ``EURUSD=X``); case-insensitive.
    start, end : str or None
        First and last date to download (both inclusive); None = as far as Yahoo goes.
    interval : str
        yfinance bar size (``1d``, ``1h``, ``5m``, ...). Intraday bars keep the exchange's
        timezone; daily and longer bars are tz-naive dates.
    auto_adjust : bool
        Prices adjusted for splits and dividends (passed to yfinance explicitly).
    cache : PriceCache, optional
        Where downloads are stored and read back when the provider cannot be reached.
    offline : bool
        Do not download: return the cached copy, or raise NetworkError when there is none.

    Returns
    -------
    LoadedPrices
        ``from_cache`` and ``cached_at`` are set when the cached copy was used; a download
        failure that fell back to the cache is listed in ``warnings``.

    Raises
    ------
    NetworkError
        No connection, no answer in time, or rate-limited, and nothing cached.
    DataError
        Unknown ticker, no prices in the range, or data breaking the contract.
    """
    sym = symbol.strip().upper()
    if not sym:
        raise ConfigError("--ticker: the symbol is empty")
    store = cache if cache is not None else PriceCache()
    source = f"{C.SOURCE_YAHOO}:{sym}"
    name = f"ticker {sym}"
    if offline:
        hit = store.get(sym, interval, auto_adjust)
        if hit is None:
            raise NetworkError(f"offline and no cached data for {sym} ({interval} bars): "
                               "connect to the internet once to download it")
        return _from_cache(hit, sym, source, interval, ())
    try:
        raw = _download(sym, start=start, end=end, interval=interval, auto_adjust=auto_adjust)
        frame = _from_yahoo(raw, sym, start=start, end=end)
    except (NetworkError, DataError) as exc:
        hit = store.get(sym, interval, auto_adjust)
        if hit is None:
            if isinstance(exc, NetworkError):
                raise NetworkError(f"{exc}; cached data: none") from None
            raise
        note = f"download failed ({exc}); using cached data from {hit[1]}"
        return _from_cache(hit, sym, source, interval, (note,))
    frame, notes = validate_prices(frame, name=name)
    try:
        store.put(sym, interval, auto_adjust, frame)
    except ExportError as exc:
        notes = (*notes, f"could not cache the download: {exc}")
    return LoadedPrices(frame, label=sym, source=source, warnings=notes)


def _from_cache(
    hit: tuple[pd.DataFrame, str], sym: str, source: str, interval: str, notes: tuple[str, ...]
) -> LoadedPrices:
    frame, cached_at = hit
    frame, more = validate_prices(frame, name=f"cached data for {sym} ({interval})")
    return LoadedPrices(frame, label=sym, source=source, from_cache=True, cached_at=cached_at,
                        warnings=notes + more)


def _from_yahoo(raw: Any, sym: str, *, start: str | None, end: str | None) -> pd.DataFrame:
    """yfinance's frame -> contract column names; an empty frame -> DataError."""
    if not isinstance(raw, pd.DataFrame) or raw.empty:
        span = f" between {start or 'the start'} and {end or 'today'}" if start or end else ""
        raise DataError(f"unknown ticker {sym}: Yahoo Finance returned no prices{span} "
                        "(check the symbol, e.g. AAPL, ^GSPC, EURUSD=X)")
    frame = raw
    if isinstance(frame.columns, pd.MultiIndex):  # yf.download style; Ticker.history is flat
        frame = frame.droplevel(-1, axis=1) if frame.columns.nlevels > 1 else frame
    wanted = {str(c).strip().lower(): c for c in frame.columns}
    keep = {wanted[c]: c for c in C.PRICE_COLUMNS if c in wanted}
    return frame.loc[:, list(keep)].rename(columns=keep)


def _download(sym: str, *, start: str | None, end: str | None, interval: str,
              auto_adjust: bool) -> Any:
    """Call :func:`_yf_history` under a deadline and turn its failures into ours."""
    lo, hi = _bound(start, "--start", None), _bound(end, "--end", None)
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(f"--start {start} is after --end {end}")
    kwargs: dict[str, Any] = {"interval": interval, "auto_adjust": auto_adjust,
                              "timeout": _REQUEST_TIMEOUT_S, "actions": False}
    if start is None:
        kwargs["period"] = "max"  # yfinance's default is one month
    else:
        kwargs["start"] = str(start).strip()
    if end is not None:  # yfinance's end is exclusive; ours includes the day
        kwargs["end"] = (str((pd.Timestamp(end) + pd.Timedelta(days=1)).date())
                         if _date_only(end) else str(end).strip())
    # yfinance triggers pandas deprecation warnings (Pandas4Warning); silence those that are
    # attributed to its modules only, ours stay visible. (A global filter, not
    # catch_warnings: that is not thread-safe.) Idempotent: an equal filter is replaced.
    warnings.filterwarnings("ignore", module=r"yfinance(\..*)?$")
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = _yf_history(sym, **kwargs)
        except BaseException as exc:  # handed to the calling thread below
            box["error"] = exc

    thread = threading.Thread(target=work, name=f"yfinance-{sym}", daemon=True)
    thread.start()
    thread.join(DOWNLOAD_TIMEOUT_S)
    if thread.is_alive():  # left to finish on its own; a daemon thread never blocks exit
        raise NetworkError(f"could not reach the data provider for {sym}: no answer within "
                           f"{DOWNLOAD_TIMEOUT_S:g} s. Check your connection")
    if "error" in box:
        raise _translate(box["error"], sym) from None
    return box["result"]


def _translate(exc: BaseException, sym: str) -> BaseException:
    """A yfinance / curl failure -> NetworkError or DataError with a message for the user."""
    if isinstance(exc, SandboxError | KeyboardInterrupt | SystemExit):
        return exc
    try:
        from yfinance import exceptions as yfe
    except ImportError:  # pragma: no cover - yfinance is a dependency
        yfe = None
    if yfe is not None:
        if isinstance(exc, yfe.YFRateLimitError):
            return NetworkError(f"the data provider is rate-limiting requests for {sym} "
                                "(too many requests): wait a few minutes and try again")
        if isinstance(exc, yfe.YFPricesMissingError) and getattr(exc, "yahoo_reason", None):
            return DataError(f"no prices for {sym}: {exc.yahoo_reason}")
        if isinstance(exc, yfe.YFTickerMissingError):
            return DataError(f"unknown ticker {sym}: Yahoo Finance has no prices for it "
                             "(check the symbol, e.g. AAPL, ^GSPC, EURUSD=X; it may be delisted)")
        if isinstance(exc, yfe.YFInvalidPeriodError):
            return DataError(f"no prices for {sym}: {exc}")
        if isinstance(exc, yfe.YFDataException) and "down" in str(exc).lower():
            return NetworkError(f"could not reach the data provider for {sym}: "
                                "Yahoo Finance is down. Try again later")
    if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("curl_cffi", "requests"):
        return NetworkError(f"could not reach the data provider for {sym}: {_short(exc)}. "
                            "Check your connection")
    log.debug("unexpected yfinance failure for %s", sym, exc_info=exc)
    return NetworkError(f"the data provider sent an answer for {sym} that could not be read "
                        f"({type(exc).__name__}: {_short(exc)})")


def _short(exc: BaseException) -> str:
    """The useful part of a curl / yfinance message."""
    text = str(exc).strip() or type(exc).__name__
    curl = re.search(r"curl: \(\d+\) ([^()]+?)(?: \(|\. See|$)", text)
    if curl:
        return curl.group(1).strip().rstrip(".")
    text = text.split(". See ")[0].splitlines()[0]
    return text[:160]


_yf_configured = False
_yf_lock = threading.Lock()


def _configure_yfinance(yf: Any) -> None:
    """Once per process: raise instead of hide, quiet logger, cache inside ours."""
    global _yf_configured
    with _yf_lock:
        if _yf_configured:
            return
        # 1.x: raise failures instead of logging them and returning an empty frame
        # (the non-deprecated form of history(raise_errors=True))
        yf.config.debug.hide_exceptions = False
        yf.config.network.retries = 0
        try:
            yf.set_tz_cache_location(str(cache_dir() / "yfinance"))
        except (AttributeError, OSError) as exc:  # best effort: yfinance falls back itself
            log.debug("could not move the yfinance cache: %s", exc)
        _yf_configured = True
    yf_log = logging.getLogger("yfinance")
    if not any(isinstance(h, logging.NullHandler) for h in yf_log.handlers):
        yf_log.addHandler(logging.NullHandler())  # no "last resort" output to stderr
    if logging.getLogger().getEffectiveLevel() > logging.INFO and yf_log.level == logging.NOTSET:
        yf_log.setLevel(logging.CRITICAL)  # quiet unless the app logs verbosely


def _yf_history(symbol: str, **kwargs: Any) -> pd.DataFrame:
    """The single call into yfinance (tests replace this function, nothing else).

    ``kwargs`` go to ``yf.Ticker(symbol).history``: ``start``/``period``, ``end``,
    ``interval``, ``auto_adjust``, ``timeout``, ``actions``.
    """
    import yfinance as yf

    _configure_yfinance(yf)
    return yf.Ticker(symbol).history(**kwargs)


def require_file(path: str | Path) -> Path:
    """``path`` as a Path, or a DataError naming it when it is missing or a folder."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{path}: no such file")
    if p.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file")
    return p
