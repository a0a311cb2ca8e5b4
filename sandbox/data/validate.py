"""The one place that checks and normalises a price frame (the data contract).

Every source (bundled sample, user CSV, Yahoo download, cached copy) ends here. A frame
leaves :func:`validate_prices` with a ``DatetimeIndex`` named ``date`` that is strictly
increasing and unique (tz-naive for daily and longer bars, the source's timezone kept for
intraday bars) and float64 columns ``open, high, low, close, volume``; or a
:class:`~sandbox.errors.DataError` names the file or ticker, the row and the problem.

Rows are named the way the user can find them: ``line 57`` (the header is line 1) when the
caller passes the file line of every row, else by date.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.errors import DataError

#: how many offending rows a message lists before it says "and N more"
_MAX_LISTED = 5

#: the columns that must be present (volume may be missing: it is then set to 0, with a warning)
_REQUIRED: tuple[str, ...] = (C.OPEN, C.HIGH, C.LOW, C.CLOSE)

#: relative slack for high/low checks: exports round adjusted prices to a few decimals,
#: so a high a hair below the close is rounding, not bad data (it is clamped silently)
_RTOL = 1e-6


def validate_prices(
    frame: pd.DataFrame,
    *,
    name: str,
    min_rows: int = 0,
    lines: Sequence[int] | np.ndarray | None = None,
    min_rows_reason: str | None = None,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Check ``frame`` against the data contract and return a normalised copy.

    Parameters
    ----------
    frame : pandas.DataFrame
        Price bars indexed by timestamp (a ``DatetimeIndex`` or something ``pandas.to_datetime``
        understands). Column names are matched case-insensitively; extra columns are dropped.
    name : str
        What the user calls the data ("prices.csv", "ticker AAPL", "sample GSPC"); every
        message starts with it.
    min_rows : int
        Fewest rows the caller needs (e.g. window plus three non-empty splits); 0 = no limit.
    lines : sequence of int, optional
        File line of each row (header = line 1), used to name rows in messages. Rows are named
        by their date when omitted.
    min_rows_reason : str, optional
        What needs ``min_rows`` rows, for the message, e.g. "the window of 30 plus three
        splits"; "this run" when omitted.

    Returns
    -------
    frame : pandas.DataFrame
        Strictly increasing unique ``DatetimeIndex`` named ``date`` (tz-naive when every bar
        sits at local midnight, i.e. daily or longer bars; the datetime unit is left as it
        came) and float64 columns ``open, high, low, close, volume``.
    warnings : tuple of str
        What was repaired: rows sorted, duplicate dates dropped (last kept), an isolated
        missing row dropped, a missing volume column set to 0.

    Raises
    ------
    DataError
        Missing column, unparsable or missing date, non-numeric or non-finite value, a run of
        missing rows, non-positive price, high below max(open, close), low above
        min(open, close), negative volume, or fewer than ``min_rows`` rows.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{name}: expected a table of prices, got {type(frame).__name__}")
    notes: list[str] = []
    line_of = np.arange(len(frame)) + 2 if lines is None else np.asarray(lines, dtype=np.int64)
    if len(line_of) != len(frame):
        raise ValueError(f"lines has {len(line_of)} entries for {len(frame)} rows")
    rows = _Rows(name, line_of if lines is not None else None)

    columns = _match_columns(frame, name)
    if len(frame) == 0:
        raise DataError(f"{name}: no data rows (only a header)")

    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        index = parse_dates(pd.Series(np.asarray(index, dtype=object)), name=name, lines=line_of)
    index = _normalise_index(pd.DatetimeIndex(index), name, rows)

    data = {}
    for col in _REQUIRED:
        data[col] = _numeric(frame[columns[col]], col, name, rows, index)
    if C.VOLUME in columns:
        data[C.VOLUME] = _numeric(frame[columns[C.VOLUME]], C.VOLUME, name, rows, index)
    else:
        data[C.VOLUME] = np.zeros(len(frame), dtype=np.float64)
        notes.append("no volume column: volume set to 0")
    out = pd.DataFrame(data, index=index, columns=list(C.PRICE_COLUMNS))
    dates = out.index

    # Order: sort (stable, so file order survives among equal dates), then keep the last of
    # each duplicate date. Both are safe repairs, reported as warnings.
    if not dates.is_monotonic_increasing:
        order = np.argsort(dates.asi8, kind="stable")
        if dates.is_monotonic_decreasing and not dates.has_duplicates:
            notes.append(f"dates were newest first: reversed {len(dates)} rows")
        else:
            n_back = int(np.count_nonzero(np.diff(dates.asi8) < 0))
            notes.append(f"sorted {n_back} out-of-order row{_s(n_back)}")
        out = out.iloc[order]
        line_of = line_of[order]
    if out.index.has_duplicates:
        dup = out.index.duplicated(keep="last")
        n_dup = int(dup.sum())
        first = out.index[dup][0]
        where = line_of[out.index == first]
        where_txt = f" on lines {', '.join(map(str, where))}" if rows.by_line else ""
        notes.append(
            f"dropped {n_dup} duplicate date{_s(n_dup)} (kept the last row of each; "
            f"first: {format_date(first)}{where_txt})"
        )
        keep = ~dup
        out = out[keep]
        line_of = line_of[keep]
    rows = _Rows(name, line_of if rows.by_line else None)

    out, line_of, dropped = _drop_isolated_missing(out, line_of, rows)
    if dropped:
        notes.append(dropped)
    rows = _Rows(name, line_of if rows.by_line else None)

    _check_values(out, rows)
    out = _clamp_rounding(out)

    if min_rows and len(out) < min_rows:
        raise DataError(
            f"{name} has {len(out)} row{_s(len(out))} ({format_date(out.index[0])} .. "
            f"{format_date(out.index[-1])}); {min_rows_reason or 'this run'} needs at least "
            f"{min_rows}: "
            "choose a longer date range or a smaller window"
        )
    out.index.name = C.INDEX_NAME
    return out, tuple(notes)


def parse_dates(
    values: pd.Series, *, name: str, lines: Sequence[int] | np.ndarray | None = None
) -> pd.DatetimeIndex:
    """Parse a column of date strings into a ``DatetimeIndex``.

    Tries the format pandas infers from the first value (ISO, ``MM/DD/YYYY``, ...), then
    ISO 8601 with mixed precision, then day-first. Timestamps with one UTC offset keep it;
    several offsets (daylight saving) are converted to UTC.

    Parameters
    ----------
    values : pandas.Series
        The raw date strings.
    name : str
        File or ticker name for messages.
    lines : sequence of int, optional
        File line of each value (header = line 1); row position + 2 when omitted.

    Returns
    -------
    pandas.DatetimeIndex

    Raises
    ------
    DataError
        Naming the first line whose date cannot be read, or a missing date.
    """
    line_of = np.arange(len(values)) + 2 if lines is None else np.asarray(lines)
    raw = values.reset_index(drop=True)
    if raw.dtype.kind == "M":
        parsed = pd.DatetimeIndex(raw)
        missing = np.flatnonzero(parsed.isna())
        if missing.size:
            raise DataError(f"{name}, line {line_of[missing[0]]}: the date is missing")
        return parsed
    text = raw.astype("string").str.strip()
    empty = text.isna() | (text == "")
    if bool(empty.any()):
        first = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataError(f"{name}, line {line_of[first]}: the date is missing")
    first_try: pd.Series | None = None
    for kwargs in ({}, {"format": "ISO8601"}, {"dayfirst": True}):
        try:
            parsed = _to_datetime(text, kwargs)
        except (ValueError, TypeError, OverflowError):
            continue
        if first_try is None:
            first_try = parsed
        if not parsed.isna().any():
            return pd.DatetimeIndex(parsed)
    bad = int(np.flatnonzero(first_try.isna().to_numpy())[0]) if first_try is not None else 0
    raise DataError(
        f"{name}, line {line_of[bad]}: cannot read the date {text.iloc[bad]!r} "
        "(expected e.g. 2020-01-31, 01/31/2020 or 2020-01-31 09:30:00-05:00)"
    )


# --- helpers ---------------------------------------------------------------------------------


class _Rows:
    """Names rows for messages: ``line 57 (2020-03-16)`` or ``row 2020-03-16``."""

    def __init__(self, name: str, lines: np.ndarray | None) -> None:
        self.name = name
        self.lines = lines
        self.by_line = lines is not None

    def at(self, pos: int, date: pd.Timestamp | None) -> str:
        if self.lines is not None:
            when = f" ({format_date(date)})" if date is not None and not pd.isna(date) else ""
            return f"{self.name}, line {self.lines[pos]}{when}"
        if date is None:
            return f"{self.name}, row {pos + 1}"
        return f"{self.name}, row {format_date(date)}"

    def span(self, positions: np.ndarray, index: pd.DatetimeIndex) -> str:
        """'lines 10-14' / 'rows 2020-01-02 .. 2020-01-08' for a run of consecutive rows."""
        a, b = int(positions[0]), int(positions[-1])
        if self.lines is not None:
            return f"{self.name}, lines {self.lines[a]}-{self.lines[b]}"
        return f"{self.name}, rows {format_date(index[a])} .. {format_date(index[b])}"


def _match_columns(frame: pd.DataFrame, name: str) -> dict[str, object]:
    """Map contract names to the frame's columns, case- and space-insensitively."""
    found: dict[str, object] = {}
    for col in frame.columns:
        key = str(col).strip().lower()
        if key in C.PRICE_COLUMNS and key not in found:
            found[key] = col
    missing = [c for c in _REQUIRED if c not in found]
    if missing:
        have = ", ".join(str(c) for c in frame.columns) or "none"
        raise DataError(
            f"{name}: missing column{_s(len(missing))} {', '.join(missing)} "
            f"(found: {have}); expected Date, Open, High, Low, Close and optionally Volume"
        )
    return found


def _normalise_index(index: pd.DatetimeIndex, name: str, rows: _Rows) -> pd.DatetimeIndex:
    """Daily bars tz-naive at midnight; intraday keeps its timezone; the unit is kept."""
    missing = np.flatnonzero(index.isna())
    if missing.size:
        raise DataError(f"{rows.at(int(missing[0]), None)}: the date is missing")
    local = index.tz_localize(None) if index.tz is not None else index
    if len(local) and bool((local == local.normalize()).all()):
        # Every bar at local midnight: daily or longer bars, dates without a timezone.
        return pd.DatetimeIndex(local, name=C.INDEX_NAME)
    return pd.DatetimeIndex(index, name=C.INDEX_NAME)


def _numeric(
    column: pd.Series, col: str, name: str, rows: _Rows, index: pd.DatetimeIndex
) -> np.ndarray:
    """The column as float64; a value that is present but not a number is an error."""
    if column.dtype.kind in "fiub":
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna().to_numpy() & column.notna().to_numpy()
    text = column.astype("string").str.strip()
    bad &= (text != "").fillna(False).to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{rows.at(pos, index[pos])}: {col} {column.iloc[pos]!r} is not a number"
        )
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _drop_isolated_missing(
    out: pd.DataFrame, line_of: np.ndarray, rows: _Rows
) -> tuple[pd.DataFrame, np.ndarray, str | None]:
    """Drop single rows with a missing value; a run of two or more is an error."""
    nan = out.isna().to_numpy().any(axis=1)
    if not nan.any():
        return out, line_of, None
    positions = np.flatnonzero(nan)
    # group consecutive positions into runs
    breaks = np.flatnonzero(np.diff(positions) > 1) + 1
    runs = np.split(positions, breaks)
    longest = max(runs, key=len)
    if len(longest) >= 2:
        cols = [c for c in out.columns if out[c].iloc[longest].isna().any()]
        raise DataError(
            f"{rows.span(longest, out.index)}: {len(longest)} consecutive rows with missing "
            f"{', '.join(cols)}; fill or remove them (a single missing row is skipped)"
        )
    if len(positions) == len(out):
        raise DataError(f"{rows.name}: every row has a missing value")
    listed = ", ".join(
        (f"line {line_of[p]}" if rows.by_line else format_date(out.index[p]))
        for p in positions[:_MAX_LISTED]
    )
    more = f" and {len(positions) - _MAX_LISTED} more" if len(positions) > _MAX_LISTED else ""
    note = (f"dropped {len(positions)} row{_s(len(positions))} with a missing value "
            f"({listed}{more})")
    keep = ~nan
    return out[keep], line_of[keep], note


def _check_values(out: pd.DataFrame, rows: _Rows) -> None:
    """Finite positive prices, high/low consistent with open/close, volume >= 0."""
    o, h, lo, c, v = (out[col].to_numpy() for col in C.PRICE_COLUMNS)
    for col, values in zip(C.PRICE_COLUMNS, (o, h, lo, c, v), strict=True):
        bad = ~np.isfinite(values)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise DataError(f"{rows.at(pos, out.index[pos])}: {col} is {values[pos]}, "
                            "not a finite number")
    names = (C.OPEN, C.HIGH, C.LOW, C.CLOSE)
    prices = np.column_stack((o, h, lo, c))
    bad = (prices <= 0).any(axis=1)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        k = int(np.flatnonzero(prices[pos] <= 0)[0])
        raise DataError(f"{rows.at(pos, out.index[pos])}: {names[k]} is {prices[pos, k]:g}; "
                        f"prices must be greater than 0{_count(bad)}")
    top = np.maximum(o, c)
    bad = h < top * (1 - _RTOL)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{rows.at(pos, out.index[pos])}: high {h[pos]:g} is below max(open, close) "
            f"{top[pos]:g}{_count(bad)}; check the column order (Date, Open, High, Low, Close)"
        )
    bottom = np.minimum(o, c)
    bad = lo > bottom * (1 + _RTOL)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{rows.at(pos, out.index[pos])}: low {lo[pos]:g} is above min(open, close) "
            f"{bottom[pos]:g}{_count(bad)}; check the column order (Date, Open, High, Low, Close)"
        )
    bad = v < 0
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"{rows.at(pos, out.index[pos])}: volume {v[pos]:g} is negative"
                        f"{_count(bad)}; volume must be 0 or more")


def _clamp_rounding(out: pd.DataFrame) -> pd.DataFrame:
    """Raise high / lower low by the rounding slack ``_RTOL`` allows, so the contract is exact."""
    o, h, lo, c = (out[col].to_numpy() for col in (C.OPEN, C.HIGH, C.LOW, C.CLOSE))
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    if (h < top).any() or (lo > bottom).any():
        out = out.copy()
        out[C.HIGH] = np.maximum(h, top)
        out[C.LOW] = np.minimum(lo, bottom)
    return out


def _to_datetime(text: pd.Series, kwargs: dict) -> pd.Series:
    """``pd.to_datetime`` with coercion; several UTC offsets are converted to UTC."""
    try:
        return pd.to_datetime(text, errors="coerce", **kwargs)
    except ValueError as exc:
        if "timezone" not in str(exc).lower() and "utc" not in str(exc).lower():
            raise
        return pd.to_datetime(text, errors="coerce", utc=True, **kwargs)


def _count(bad: np.ndarray) -> str:
    n = int(np.count_nonzero(bad))
    return f" ({n} such rows)" if n > 1 else ""


def format_date(ts: pd.Timestamp | None) -> str:
    if ts is None or pd.isna(ts):
        return "?"
    if ts.tzinfo is None and ts == ts.normalize():
        return ts.strftime("%Y-%m-%d")
    return ts.isoformat()


def _s(n: int) -> str:
    return "" if n == 1 else "s"
