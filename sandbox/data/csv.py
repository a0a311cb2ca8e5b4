"""Reading price CSV files as users export them (``csv:PATH`` and the bundled samples).

Yahoo and broker exports, any column case, thousands separators and currency signs,
ISO or US dates, UTC offsets, a BOM, trailing blank lines, comma / semicolon / tab
separators: :func:`read_price_csv` turns them into a frame that obeys the data contract
(:func:`~sandbox.data.validate.validate_prices`), or a :class:`DataError` naming the file,
the line and the problem.
"""

from __future__ import annotations

import codecs
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.data.validate import format_date, quiet_pandas, read_dates, validate_prices
from sandbox.errors import DataError

__all__ = ["parse_price_csv", "read_price_csv", "require_file"]

_ADJ_CLOSE = "adj close"
#: CSV header spellings -> contract names (keys: lower case, runs of space/underscore -> " ")
_ALIASES: dict[str, str] = {
    "open": C.OPEN, "high": C.HIGH, "low": C.LOW, "close": C.CLOSE, "volume": C.VOLUME,
    "close/last": C.CLOSE, "last": C.CLOSE, "vol": C.VOLUME, "vol.": C.VOLUME,
    "adj close": _ADJ_CLOSE, "adj. close": _ADJ_CLOSE, "adjclose": _ADJ_CLOSE,
    "adjusted close": _ADJ_CLOSE, "adj close*": _ADJ_CLOSE, "close*": C.CLOSE,
}
#: used only when the file has no column of the primary name: investing.com's "Price" is its
#: close, MetaTrader's "<TICKVOL>" its volume when there is no "<VOL>"
_FALLBACK_ALIASES: dict[str, str] = {"price": C.CLOSE, "tickvol": C.VOLUME,
                                     "tick volume": C.VOLUME}
_DATE_NAMES = ("date", "datetime", "timestamp", "date/time", "time")
_NUMBER_JUNK = re.compile(r"[\s$€£¥,]")
#: investing.com volumes: 1.23K, 4.5M, 2.1B
_VOLUME_SUFFIX = re.compile(r"^(.*?)\s*([KkMmBb])$")
_VOLUME_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9}
#: how exports say "no volume reported"
_NO_VOLUME = ("-", "\u2013", "\u2014", "n/a", "N/A")


def read_price_csv(
    path: str | Path, *, use_adj_close: bool = False, date_format: str | None = None
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Read and validate a CSV of OHLCV bars as users export them.

    Accepted: Yahoo, stooq, Nasdaq, investing.com and broker exports; ``Date``/``Datetime``
    column (or a first column of dates, or separate ``Date`` and ``Time`` columns); any
    column case, MetaTrader's ``<OPEN>`` style too; ``Adj Close`` present or not; ``Price``
    as the close when there is no ``Close``; thousands separators and currency signs in
    numbers; volumes such as ``1.23K``/``4.5M``/``2.1B`` and ``-`` for none; ISO dates, or
    ``DD/MM/YYYY`` / ``MM/DD/YYYY`` with the order decided from the whole column (see
    :func:`~sandbox.data.validate.read_dates`); timestamps with UTC offsets (one offset is
    kept, several are converted to UTC); a BOM; blank or all-empty trailing lines; comma,
    semicolon (decimal comma) or tab separators. Other columns (``Change %``) are ignored.
    A file without a volume column is accepted with volume 0 and a warning.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file.
    use_adj_close : bool
        Take ``Adj Close`` as the close and scale open/high/low by ``adj / close``
        (a warning, and the plain close, when the file has no such column).
    date_format : str, optional
        ``"dayfirst"``, ``"monthfirst"`` or a strftime format (``DataSpec.date_format``);
        None decides the day/month order from the whole date column.

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
    return parse_price_csv(raw, name, use_adj_close=use_adj_close, date_format=date_format)


def parse_price_csv(
    raw: bytes, name: str, *, use_adj_close: bool = False, date_format: str | None = None
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The bytes of a price CSV -> the validated frame and what was repaired.

    Parameters
    ----------
    raw : bytes
        The file's content.
    name : str
        How messages name the file (its path, or ``sample GSPC``).
    use_adj_close, date_format
        As :func:`read_price_csv`.

    Returns
    -------
    frame : pandas.DataFrame
    warnings : tuple of str

    Raises
    ------
    DataError
        As :func:`read_price_csv`.
    """
    frame, lines, notes = _parse_csv_text(_decode(raw, name), name, use_adj_close=use_adj_close,
                                          date_format=date_format)
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
    text: str, name: str, *, use_adj_close: bool, date_format: str | None = None
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
        with quiet_pandas():
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
    index, date_notes = read_dates(date_values, name=name, lines=lines, date_format=date_format)
    notes.extend(date_notes)
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
    for col in (C.OPEN, C.HIGH, C.LOW, C.CLOSE, _ADJ_CLOSE):
        if col in df.columns:
            data[col] = _to_float(df[col], col, name, lines, index, decimal_comma=decimal_comma)
    if C.VOLUME in df.columns:
        data[C.VOLUME], volume_note = _volume(df[C.VOLUME], name, lines, index,
                                              decimal_comma=decimal_comma)
        if volume_note:
            notes.append(volume_note)
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
    """Rename known headers to contract names; return the frame and the raw date column.

    Raises
    ------
    DataError
        No date column, or a required price column missing (every header is listed).
    """
    keys = [_header_key(c) for c in df.columns]
    rename: dict[object, str] = {}
    for aliases in (_ALIASES, _FALLBACK_ALIASES):
        for col, key in zip(df.columns, keys, strict=True):
            target = aliases.get(key)
            if target is not None and target not in rename.values() and col not in rename:
                rename[col] = target
    have = ", ".join(str(c) for c in df.columns) or "none"
    missing = [c for c in (C.OPEN, C.HIGH, C.LOW, C.CLOSE) if c not in rename.values()]
    if missing and _looks_like_dates(pd.Series([str(df.columns[0])])):
        raise DataError(
            f"{name}: the first line holds prices, not column names (it starts with "
            f"{str(df.columns[0])!r}); add a header line such as "
            "Date,Time,Open,High,Low,Close,Volume (MetaTrader 4) or "
            "Date,Open,High,Low,Close,Volume"
        )
    if missing:
        raise DataError(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found: {have}); expected Date, Open, High, Low, Close (or Price) and "
            "optionally Volume"
        )
    date_cols = [c for c, k in zip(df.columns, keys, strict=True) if k in _DATE_NAMES]
    date_key = {c: k for c, k in zip(df.columns, keys, strict=True)}
    if date_cols:
        first = date_cols[0]
        dates = df[first]
        times = [c for c in date_cols if date_key[c] == "time" and c != first]
        if date_key[first] == "date" and times:  # separate Date and Time columns
            clock = df[times[0]].astype("string").str.strip()
            if df[times[0]].dtype.kind in "iu":  # stooq: 93000 is 09:30:00
                clock = clock.str.zfill(6)
            dates = df[first].astype("string").str.strip() + " " + clock
    else:
        first = df.columns[0]
        if first in rename or not _looks_like_dates(df[first]):
            raise DataError(f"{name}: no Date column (found: {have}); the first column "
                            "must hold dates, e.g. 2020-01-31")
        dates = df[first]
    return df.rename(columns=rename), dates


def _header_key(column: object) -> str:
    """'Adj_Close ' / '<CLOSE>' -> 'adj close' / 'close': how headers are matched."""
    key = str(column).strip().lower()
    if key.startswith("<") and key.endswith(">"):  # MetaTrader: <DATE>, <OPEN>, <TICKVOL>
        key = key[1:-1]
    return re.sub(r"[\s_]+", " ", key)


def _looks_like_dates(column: pd.Series) -> bool:
    """Whether a column without a date header holds dates (in either day/month order)."""
    try:
        read_dates(column, name="", date_format=C.DATE_DAYFIRST)
    except DataError:
        try:
            read_dates(column, name="", date_format=C.DATE_MONTHFIRST)
        except DataError:
            return False
    return True


def _to_float(
    column: pd.Series, col: str, name: str, lines: np.ndarray | None,
    index: pd.DatetimeIndex, *, decimal_comma: bool, shown: pd.Series | None = None,
) -> np.ndarray:
    """Text -> float64, tolerating thousands separators and currency signs.

    ``shown``: the values as the file has them, for messages (default ``column``).
    """
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
        raw = (column if shown is None else shown).iloc[pos]
        raise DataError(f"{name}, {where}: {col} {raw!r} is not a number")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _volume(
    column: pd.Series, name: str, lines: np.ndarray | None, index: pd.DatetimeIndex,
    *, decimal_comma: bool,
) -> tuple[np.ndarray, str | None]:
    """Volume -> float64: plain numbers, ``1.23K``/``4.5M``/``2.1B``, ``-`` or empty for none.

    A column that is empty or ``-`` throughout is volume 0 (with a note); single ``-`` rows
    are 0 too (noted). Other empty cells stay missing (the validator drops such a row).
    """
    if column.dtype.kind in "fiub" or column.isna().all():
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(values).all():
            return np.zeros(len(values)), f"the {column.name} column is empty: volume set to 0"
        return values, None
    text = column.astype("string").str.strip()
    none = text.isin(_NO_VOLUME).fillna(False).to_numpy()
    note = None
    if none.any():
        if (none | text.isna().to_numpy()).all():
            note = f"no volume in the file ({text[none].iloc[0]!r}): volume set to 0"
        else:
            first = int(np.flatnonzero(none)[0])
            where = (f"line {lines[first]}" if lines is not None
                     else format_date(index[first]))
            note = (f"volume {text.iloc[first]!r} (none reported) on {int(none.sum())} "
                    f"row{'s' if none.sum() > 1 else ''} (first: {where}): set to 0")
        text = text.mask(pd.Series(none, index=text.index), "0")
    parts = text.str.extract(_VOLUME_SUFFIX)
    suffixed = parts[1].notna().to_numpy()
    scale = np.ones(len(text))
    if suffixed.any():
        scale[suffixed] = [_VOLUME_SCALE[u.upper()] for u in parts[1][suffixed]]
        text = text.mask(pd.Series(suffixed, index=text.index), parts[0])
    values = _to_float(text.rename(column.name), C.VOLUME, name, lines, index,
                       decimal_comma=decimal_comma, shown=column)
    values = values * scale
    if suffixed.any():  # 1.23K is 1230 shares, not 1230.0000000000002
        values[suffixed] = np.round(values[suffixed])
    return values, note


def require_file(path: str | Path) -> Path:
    """``path`` as a Path, or a DataError naming it when it is missing or a folder."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{path}: no such file")
    if p.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file")
    return p
