"""``yahoo:SYMBOL``: downloads from Yahoo Finance through yfinance, with the cache.

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
``from_cache=True`` and the time of its download. A cached copy that is damaged (unreadable,
or failing its checksum: :class:`~sandbox.data.cache.CacheDamaged`) is never used; the
error then says so in the same line instead of "cached data: none" ("...; the cached copy
of ^GSPC (1d bars) is damaged and was ignored: <reason>"), and a successful download that
replaces such a copy says so in its warnings. Nothing is logged: the message is the report.

The whole download runs under a deadline (:data:`DOWNLOAD_TIMEOUT_S`) so an unreachable
provider never hangs a command.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from typing import Any

import pandas as pd

from sandbox import constants as C
from sandbox.data.cache import CacheDamaged, CacheHit, PriceCache, cache_dir
from sandbox.data.sources import LoadedPrices, date_bound, is_date_only
from sandbox.data.validate import validate_prices
from sandbox.errors import ConfigError, DataError, ExportError, NetworkError, SandboxError

__all__ = ["DOWNLOAD_TIMEOUT_S", "fetch_yahoo"]

log = logging.getLogger(__name__)

#: seconds a whole Yahoo download may take before it counts as "no connection"
DOWNLOAD_TIMEOUT_S = 25.0
#: seconds per HTTP request inside yfinance (its own ``timeout`` argument)
_REQUEST_TIMEOUT_S = 10


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
        failure that fell back to the cache, and a damaged cached copy that this download
        replaced, are listed in ``warnings``.

    Raises
    ------
    NetworkError
        No connection, no answer in time, or rate-limited, and nothing usable cached (the
        message says whether the cached copy is missing or damaged).
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
        if isinstance(hit, CacheDamaged):
            raise NetworkError(f"offline, and {hit.ignored}; connect to the internet to "
                               "download it again")
        if hit is None:
            raise NetworkError(f"offline and no cached data for {sym} ({interval} bars): "
                               "connect to the internet once to download it")
        return _from_cache(hit, sym, source, interval, ())
    try:
        raw = _download(sym, start=start, end=end, interval=interval, auto_adjust=auto_adjust)
        frame = _from_yahoo(raw, sym, start=start, end=end)
    except (NetworkError, DataError) as exc:
        hit = store.get(sym, interval, auto_adjust)
        if isinstance(hit, CacheHit):
            note = f"download failed ({exc}); using cached data from {hit.cached_at}"
            return _from_cache(hit, sym, source, interval, (note,))
        if isinstance(hit, CacheDamaged):  # the one line that says why there is no fallback
            kind = NetworkError if isinstance(exc, NetworkError) else DataError
            raise kind(f"{exc}; {hit.ignored}") from None
        if isinstance(exc, NetworkError):
            raise NetworkError(f"{exc}; cached data: none") from None
        raise
    frame, notes = validate_prices(frame, name=name)
    previous = store.get(sym, interval, auto_adjust)
    try:
        store.put(sym, interval, auto_adjust, frame)
    except ExportError as exc:
        if isinstance(previous, CacheDamaged):
            notes = (*notes, previous.ignored)
        notes = (*notes, f"could not cache the download: {exc}")
    else:
        if isinstance(previous, CacheDamaged):
            notes = (*notes, previous.replaced)
    return LoadedPrices(frame, label=sym, source=source, warnings=notes)


def _from_cache(
    hit: CacheHit, sym: str, source: str, interval: str, notes: tuple[str, ...]
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
    lo, hi = date_bound(start, "--start", None), date_bound(end, "--end", None)
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
                         if is_date_only(end) else str(end).strip())
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
