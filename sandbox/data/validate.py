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

import bisect
import itertools
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.errors import DataError

#: how many offending rows a message lists before it says "and N more"
_MAX_LISTED = 5

#: the columns that must be present (volume may be missing: it is then set to 0, with a warning)
_REQUIRED: tuple[str, ...] = (C.OPEN, C.HIGH, C.LOW, C.CLOSE)

#: more re-sorted rows than this is a warning that explains itself (a few is routine)
_HANDFUL = 3

#: consecutive gaps of one kind that make a stretch of bars "daily", "monthly", ...
_SPACING_RUN = 8

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
        What was repaired: rows sorted (more than a handful: with the first such row and
        what it may mean), duplicate dates dropped (last kept), an isolated missing row
        dropped, a missing volume column set to 0; and bar spacing that changes mid-file
        (daily bars, then monthly ones).

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
            steps = np.diff(dates.asi8)
            n_back = _rows_to_move(dates.asi8)
            note = f"sorted {n_back} out-of-order row{_s(n_back)}"
            if n_back > _HANDFUL:
                pos = int(np.flatnonzero(steps < 0)[0]) + 1
                where = f"line {line_of[pos]}, " if rows.by_line else ""
                note += (f" (first: {where}{format_date(dates[pos])} after "
                         f"{format_date(dates[pos - 1])}); that many usually means the dates "
                         "are misread or several files were pasted together: check the dates "
                         "(--date-format sets the day/month order)")
            notes.append(note)
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
    changed = _spacing_change(out.index)
    if changed:
        notes.append(changed)

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
    values: pd.Series,
    *,
    name: str,
    lines: Sequence[int] | np.ndarray | None = None,
    date_format: str | None = None,
) -> pd.DatetimeIndex:
    """Parse a column of date strings into a ``DatetimeIndex`` (:func:`read_dates` without notes).

    Unlike :func:`read_dates`, a day/month order the column cannot decide is read month/day
    (as pandas does) instead of refused: callers such as the signals reader check the dates
    against the price dates anyway.

    Raises
    ------
    DataError
        As :func:`read_dates`, except for an undecidable order.
    """
    return read_dates(values, name=name, lines=lines, date_format=date_format,
                      undecided=C.DATE_MONTHFIRST)[0]


def read_dates(
    values: pd.Series,
    *,
    name: str,
    lines: Sequence[int] | np.ndarray | None = None,
    date_format: str | None = None,
    undecided: str | None = None,
) -> tuple[pd.DatetimeIndex, tuple[str, ...]]:
    """Parse a column of date strings into a ``DatetimeIndex``, deciding day/month order.

    ISO dates (``2020-01-31``, with or without a time and UTC offset) are never ambiguous.
    Dates written ``NN/NN/YYYY`` (or with ``.`` or ``-``, 2- or 4-digit years) are read
    from the whole column: a number above 12 in the first position means day/month, in the
    second month/day; otherwise the reading that puts the dates in order (oldest or newest
    first), or failing that the one with evenly spaced bars, is taken, with a note. When
    neither reading is better the column is refused: the message shows both readings and
    how to choose. Timestamps with one UTC offset keep it; several offsets (daylight saving)
    are converted to UTC. pandas' own parsing warnings are kept off the terminal.

    Parameters
    ----------
    values : pandas.Series
        The raw date strings.
    name : str
        File or ticker name for messages.
    lines : sequence of int, optional
        File line of each value (header = line 1); row position + 2 when omitted.
    date_format : str, optional
        ``"dayfirst"`` / ``"monthfirst"`` to force the order of ``NN/NN/YYYY`` dates, or a
        strftime format (``"%d.%m.%Y %H:%M"``) every value must match. None: decide.
    undecided : str, optional
        ``"dayfirst"`` / ``"monthfirst"``: the order to take when the column cannot decide
        it (silently). None: refuse.

    Returns
    -------
    index : pandas.DatetimeIndex
        In file order.
    notes : tuple of str
        How an ambiguous day/month order was decided (empty otherwise).

    Raises
    ------
    DataError
        Naming the first line whose date cannot be read or is missing, or a column whose
        day/month order cannot be decided.
    """
    line_of = np.arange(len(values)) + 2 if lines is None else np.asarray(lines)
    raw = values.reset_index(drop=True)
    if raw.dtype.kind == "M":
        parsed = pd.DatetimeIndex(raw)
        missing = np.flatnonzero(parsed.isna())
        if missing.size:
            raise DataError(f"{name}, line {line_of[missing[0]]}: the date is missing")
        return parsed, ()
    text = raw.astype("string").str.strip()
    empty = text.isna() | (text == "")
    if bool(empty.any()):
        first = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataError(f"{name}, line {line_of[first]}: the date is missing")
    with quiet_pandas():
        if date_format is not None and "%" in date_format:
            return _read_with_format(text, date_format, name, line_of), ()
        parts = text.str.extract(_NUMERIC_DATE)
        if bool(parts[0].notna().iloc[0]):
            return _read_numeric_dates(text, parts, name, line_of, date_format, undecided)
        return _read_generic(text, name, line_of), ()


@contextmanager
def quiet_pandas() -> Iterator[None]:
    """Keep pandas' parsing warnings (date format guesses, dtype guesses) off the terminal.

    Our own messages say what matters; "Could not infer format" and "Parsing dates in
    %d/%m/%Y format" would only confuse.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pandas")
        warnings.filterwarnings("ignore", message=r"(?s).*(infer format|Parsing dates in)")
        warnings.filterwarnings("ignore", category=pd.errors.DtypeWarning)
        warnings.filterwarnings("ignore", category=pd.errors.ParserWarning)
        yield


#: ``01/02/2012``, ``1.2.12``, ``01-02-2012 09:30``: day and month in either order
_NUMERIC_DATE = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})((?:[ T].*)?)$")
_DAY_MONTH = "day/month"
_MONTH_DAY = "month/day"
_DATE_FLAG = "--date-format dayfirst|monthfirst (in the app: Dates in the Data box)"


def _read_generic(text: pd.Series, name: str, line_of: np.ndarray) -> pd.DatetimeIndex:
    """ISO and other unambiguous spellings: pandas' guess, ISO 8601, then day-first."""
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


def _read_with_format(
    text: pd.Series, fmt: str, name: str, line_of: np.ndarray
) -> pd.DatetimeIndex:
    try:
        parsed = _to_datetime(text, {"format": fmt})
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{name}: date format {fmt!r} cannot be used ({exc})") from None
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        raise DataError(f"{name}, line {line_of[bad[0]]}: the date {text.iloc[bad[0]]!r} does "
                        f"not match the date format {fmt!r}{_count(parsed.isna().to_numpy())}")
    return pd.DatetimeIndex(parsed)


def _read_numeric_dates(
    text: pd.Series, parts: pd.DataFrame, name: str, line_of: np.ndarray,
    date_format: str | None, undecided: str | None,
) -> tuple[pd.DatetimeIndex, tuple[str, ...]]:
    """``NN/NN/YYYY`` dates: the order forced by ``date_format`` or decided from the column."""
    other = parts[0].isna().to_numpy()
    if other.any():
        bad = int(np.flatnonzero(other)[0])
        raise DataError(f"{name}, line {line_of[bad]}: cannot read the date {text.iloc[bad]!r} "
                        f"(the first date is written {text.iloc[0]!r}; expected the same style)")
    first = parts[0].astype(int).to_numpy()
    second = parts[2].astype(int).to_numpy()
    if date_format is not None:
        order = _DAY_MONTH if date_format == C.DATE_DAYFIRST else _MONTH_DAY
        return _checked(_reading(parts, order), order, text, name, line_of, forced=True), ()
    big_first, big_second = first > 12, second > 12
    if big_first.any() and big_second.any():
        a, b = int(np.flatnonzero(big_first)[0]), int(np.flatnonzero(big_second)[0])
        raise DataError(
            f"{name}: the dates mix day/month and month/day: line {line_of[a]} has "
            f"{text.iloc[a]!r}, line {line_of[b]} has {text.iloc[b]!r}; fix the file "
            "so every date is written the same way"
        )
    if big_first.any() or big_second.any():
        order = _DAY_MONTH if big_first.any() else _MONTH_DAY
        return _checked(_reading(parts, order), order, text, name, line_of, forced=False), ()
    dm, md = _reading(parts, _DAY_MONTH), _reading(parts, _MONTH_DAY)
    if dm.equals(md):  # 01/01, 02/02, ...: both orders give the same dates
        return _checked(dm, _DAY_MONTH, text, name, line_of, forced=False), ()
    for reading in (dm, md):
        if reading.isna().any():  # a time part pandas cannot read: name that line
            _checked(reading, _DAY_MONTH, text, name, line_of, forced=False)
    order, why = _decide_order(dm, md)
    span = f"{text.iloc[0]} .. {text.iloc[-1]}"
    if order is None and undecided is not None:
        order = _DAY_MONTH if undecided == C.DATE_DAYFIRST else _MONTH_DAY
        return _checked(_reading(parts, order), order, text, name, line_of, forced=True), ()
    if order is None:
        raise DataError(
            f"{name}: the dates {span} read as day/month ({_describe(dm)}) or as "
            f"month/day ({_describe(md)}): say which with {_DATE_FLAG}"
        )
    chosen = dm if order == _DAY_MONTH else md
    wrong = C.DATE_MONTHFIRST if order == _DAY_MONTH else C.DATE_DAYFIRST
    note = (f"the dates {span} have no day above 12: read as {order} ({_describe(chosen)}), "
            f"{why}; use --date-format {wrong} if that is wrong")
    return pd.DatetimeIndex(chosen), (note,)


def _reading(parts: pd.DataFrame, order: str) -> pd.Series:
    """The dates read in ``order``, NaT where that reading is no date (e.g. 31/02)."""
    day, month = (parts[0], parts[2]) if order == _DAY_MONTH else (parts[2], parts[0])
    year = parts[3]
    short = year.str.len() == 2
    if bool(short.any()):  # as strptime's %y: 69-99 -> 1900s, 00-68 -> 2000s
        century = np.where(year.astype(int) >= 69, "19", "20")
        year = year.where(~short, pd.Series(century, index=year.index) + year)
    iso = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + parts[4].fillna("")
    best: pd.Series | None = None
    for kwargs in ({"format": "ISO8601"}, {}):
        try:
            parsed = _to_datetime(iso, kwargs)
        except (ValueError, TypeError, OverflowError):
            continue
        if best is None or int(parsed.isna().sum()) < int(best.isna().sum()):
            best = parsed
        if not parsed.isna().any():
            break
    return best if best is not None else pd.Series(pd.NaT, index=iso.index)


def _checked(
    parsed: pd.Series, order: str, text: pd.Series, name: str, line_of: np.ndarray,
    *, forced: bool,
) -> pd.DatetimeIndex:
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        how = f"as {order}/year" + (" (--date-format)" if forced else "")
        raise DataError(f"{name}, line {line_of[bad[0]]}: cannot read the date "
                        f"{text.iloc[bad[0]]!r} {how}{_count(parsed.isna().to_numpy())}")
    return pd.DatetimeIndex(parsed)


def _decide_order(dm: pd.Series, md: pd.Series) -> tuple[str | None, str]:
    """Which reading gives dates in order, or evenly spaced ones; None when neither does."""
    back_dm, back_md = _out_of_order(dm), _out_of_order(md)
    if back_dm == 0 and back_md > 0:
        return _DAY_MONTH, "the only order that keeps them sorted"
    if back_md == 0 and back_dm > 0:
        return _MONTH_DAY, "the only order that keeps them sorted"
    if back_dm == back_md == 0:
        fill_dm, fill_md = _unevenness(dm), _unevenness(md)
        if fill_dm * 3 <= fill_md:
            return _DAY_MONTH, "the order with evenly spaced bars"
        if fill_md * 3 <= fill_dm:
            return _MONTH_DAY, "the order with evenly spaced bars"
        return None, ""
    if back_dm * 3 <= back_md:
        return _DAY_MONTH, "the order with far fewer rows out of order"
    if back_md * 3 <= back_dm:
        return _MONTH_DAY, "the order with far fewer rows out of order"
    return None, ""


def _out_of_order(dates: pd.Series) -> int:
    """Steps against the file's direction (oldest first or newest first)."""
    steps = np.diff(_ns(dates))
    return int(min(np.count_nonzero(steps > 0), np.count_nonzero(steps < 0)))


def _unevenness(dates: pd.Series) -> float:
    """Span / (typical gap x gaps): about 1 for evenly spaced bars, large for clumps and jumps."""
    unique = np.unique(_ns(dates))
    if len(unique) < 3:
        return 1.0
    gaps = np.diff(unique).astype(np.float64)
    return float((unique[-1] - unique[0]) / (np.median(gaps) * len(gaps)))


def _describe(dates: pd.Series) -> str:
    """'monthly bars, 2012-02-01 .. 2012-12-01' (and how many are out of order)."""
    index = pd.DatetimeIndex(dates)
    kind = _dominant_spacing(index)
    text = f"{kind} bars, " if kind else ""
    text += f"{format_date(index.min())} .. {format_date(index.max())}"
    back = _out_of_order(dates)
    if back:
        text += f", {back} row{_s(back)} out of order"
    return text


def _ns(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Timestamps as int64 nanoseconds, whatever unit the index came in."""
    return pd.DatetimeIndex(dates).as_unit("ns").asi8


def _spacing_kind(gap_ns: float) -> str | None:
    """What one gap between bars looks like: '5-minute', 'daily', 'monthly', ...; None: odd."""
    days = gap_ns / 86_400e9
    if days <= 0:
        return None
    if days < 0.9:
        minutes = round(gap_ns / 60e9)
        if minutes >= 60 and minutes % 60 == 0:
            return f"{minutes // 60}-hour"
        return f"{minutes}-minute" if minutes >= 1 else f"{round(gap_ns / 1e9)}-second"
    for kind, lo, hi in (("daily", 0.9, 5.5), ("weekly", 5.5, 10), ("monthly", 25, 36),
                         ("quarterly", 80, 100), ("yearly", 355, 375)):
        if lo <= days < hi:
            return kind
    return None


def _dominant_spacing(index: pd.DatetimeIndex) -> str | None:
    unique = np.unique(_ns(index))
    if len(unique) < 2:
        return None
    kinds = [_spacing_kind(g) for g in np.diff(unique)]
    counted = pd.Series([k for k in kinds if k is not None], dtype=object).value_counts()
    return str(counted.index[0]) if len(counted) else None


def _spacing_change(index: pd.DatetimeIndex) -> str | None:
    """A warning when long stretches of the file have different bar spacing (daily, monthly)."""
    if len(index) < 2 * _SPACING_RUN + 1:
        return None
    stamps = _ns(index)
    kinds = [_spacing_kind(g) for g in np.diff(stamps)]
    total = float(stamps[-1] - stamps[0])
    stretches: list[tuple[str, int, int]] = []  # (kind, first bar, last bar)
    start = 0
    for i in range(1, len(kinds) + 1):
        if i == len(kinds) or kinds[i] != kinds[start]:
            kind = kinds[start]
            if (kind is not None and i - start >= _SPACING_RUN
                    and stamps[i] - stamps[start] >= 0.05 * total):
                stretches.append((kind, start, i))
            start = i
    for (k1, a1, b1), (k2, a2, b2) in itertools.pairwise(stretches):
        if k1 != k2:
            a2 = a2 + 1 if a2 == b1 else a2  # the bar both stretches share ends the first
            return (f"the bar spacing changes: {k1} bars {format_date(index[a1])} .. "
                    f"{format_date(index[b1])}, then {k2} bars {format_date(index[a2])} .. "
                    f"{format_date(index[b2])}; every row counts as one bar, so returns and "
                    "yearly figures mix the two (keep one stretch with --start/--end)")
    return None


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


def _rows_to_move(stamps: np.ndarray) -> int:
    """Fewest rows that must move to sort ``stamps``: rows outside the longest sorted run."""
    tails: list[int] = []  # tails[k]: smallest last value of a sorted subsequence of k + 1
    for value in stamps.tolist():
        k = bisect.bisect_right(tails, value)
        if k == len(tails):
            tails.append(value)
        else:
            tails[k] = value
    return len(stamps) - len(tails)


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
