"""PriceCache: Parquet round trip keyed by (symbol, interval, auto_adjust), atomic writes, and
the checksum that keeps a damaged file from being read back as prices."""

from __future__ import annotations

import hashlib
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.config import DataSpec
from sandbox.data import load_prices
from sandbox.data.cache import (
    ENV_CACHE_DIR,
    CacheDamaged,
    CacheHit,
    PriceCache,
    cache_dir,
    frame_digest,
)
from sandbox.errors import ExportError


def _frame(n: int = 5, *, freq: str = "B", tz: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    close = 50 + rng.random(n)
    index = pd.date_range("2021-06-01", periods=n, freq=freq, tz=tz, name=C.INDEX_NAME)
    return pd.DataFrame({C.OPEN: close, C.HIGH: close + 1, C.LOW: close - 1, C.CLOSE: close,
                         C.VOLUME: rng.integers(0, 100, n).astype(float)}, index=index)


def test_round_trip_keeps_values_index_and_dtypes(tmp_path):
    cache = PriceCache(tmp_path)
    frame = _frame(7)
    before = datetime.now(UTC).replace(microsecond=0)
    cache.put("AAPL", "1d", True, frame)
    hit = cache.get("AAPL", "1d", True)
    assert hit is not None
    got, cached_at = hit
    pd.testing.assert_frame_equal(got, frame, check_freq=False)
    stamp = datetime.fromisoformat(cached_at)
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC)


def test_round_trip_keeps_intraday_timezone(tmp_path):
    cache = PriceCache(tmp_path)
    frame = _frame(6, freq="5min", tz="America/New_York")
    cache.put("MSFT", "5m", True, frame)
    got, _ = cache.get("MSFT", "5m", True)
    assert str(got.index.tz) == "America/New_York"
    pd.testing.assert_frame_equal(got, frame, check_freq=False)


def test_entries_are_keyed_by_symbol_interval_and_adjustment(tmp_path):
    cache = PriceCache(tmp_path)
    adjusted, raw = _frame(3), _frame(3) * 2
    cache.put("AAPL", "1d", True, adjusted)
    cache.put("AAPL", "1d", False, raw)
    assert cache.get("AAPL", "1h", True) is None
    assert cache.get("MSFT", "1d", True) is None
    pd.testing.assert_frame_equal(cache.get("AAPL", "1d", True)[0], adjusted, check_freq=False)
    pd.testing.assert_frame_equal(cache.get("AAPL", "1d", False)[0], raw, check_freq=False)
    # the symbol is case-insensitive, like Yahoo's
    assert cache.get(" aapl ", "1d", True) is not None


def test_symbols_with_special_characters_get_distinct_safe_files(tmp_path):
    cache = PriceCache(tmp_path)
    symbols = ["^GSPC", "EURUSD=X", "BRK/B", "BRK-B", "..", "CON"]
    paths = {cache.path(s, "1d", True) for s in symbols}
    assert len(paths) == len(symbols)
    assert all(p.parent == tmp_path for p in paths)
    for i, s in enumerate(symbols):
        cache.put(s, "1d", True, _frame(2) + i)
    assert cache.get("BRK/B", "1d", True)[0][C.CLOSE].iloc[0] == pytest.approx(
        _frame(2)[C.CLOSE].iloc[0] + 2)


def test_put_replaces_and_leaves_no_temp_files(tmp_path):
    cache = PriceCache(tmp_path)
    cache.put("X", "1d", True, _frame(3))
    cache.put("X", "1d", True, _frame(5))
    assert len(cache.get("X", "1d", True)[0]) == 5
    assert [p.name for p in tmp_path.iterdir()] == [cache.path("X", "1d", True).name]


def test_unreadable_entry_is_damaged_and_not_used(tmp_path):
    cache = PriceCache(tmp_path)
    cache.path("X", "1d", True).write_bytes(b"not parquet at all")
    got = cache.get("X", "1d", True)
    assert isinstance(got, CacheDamaged)
    assert got.path == cache.path("X", "1d", True)
    assert got.reason == "the file cannot be read (Parquet magic bytes not found in footer)"


def test_truncated_entry_says_so_in_one_line_and_logs_nothing(tmp_path, caplog, capsys):
    cache = PriceCache(tmp_path)
    cache.put("^GSPC", "1d", True, _frame(40))
    path = cache.path("^GSPC", "1d", True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with caplog.at_level(logging.DEBUG, logger="sandbox"):
        got = cache.get("^GSPC", "1d", True)
    assert isinstance(got, CacheDamaged)
    assert got.ignored == ("the cached copy of ^GSPC (1d bars) is damaged and was ignored: "
                           "the file cannot be read (Parquet magic bytes not found in footer)")
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []
    assert capsys.readouterr() == ("", "")


def test_unadjusted_entries_are_named_as_such(tmp_path):
    cache = PriceCache(tmp_path)
    cache.path("aapl", "1h", False).write_bytes(b"")
    got = cache.get("aapl", "1h", False)
    assert got.ignored == ("the cached copy of AAPL (1h bars, unadjusted) is damaged and was "
                           "ignored: the file cannot be read (Parquet file size is 0 bytes)")


# --- the checksum --------------------------------------------------------------------------------


def _mixed_frame(tz: str | None) -> pd.DataFrame:
    """Timestamps (naive or tz-aware), floats with awkward values, and integers."""
    index = pd.date_range("2024-03-08 15:30", periods=6, freq="h", tz=tz, name=C.INDEX_NAME)
    return pd.DataFrame({
        C.CLOSE: [1.5, -0.0, 1e-300, 123456.789, np.nextafter(2.0, 3.0), 7.0],
        C.VOLUME: np.array([0, 1, -2, 2**62, 5, 6], dtype=np.int64),
    }, index=index)


def _meta(path: Path) -> dict[bytes, bytes]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).metadata


@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York", "Asia/Kolkata"])
def test_checksum_survives_the_round_trip(tmp_path, tz):
    cache = PriceCache(tmp_path)
    frame = _mixed_frame(tz)
    cache.put("SPY", "1h", True, frame)
    stored = _meta(cache.path("SPY", "1h", True))[b"sandbox.sha256"]
    assert len(stored) == 64 and int(stored, 16) >= 0  # hex SHA-256
    got = cache.get("SPY", "1h", True)
    assert isinstance(got, CacheHit)
    pd.testing.assert_frame_equal(got.frame, frame, check_exact=True, check_freq=False)
    assert str(got.frame.index.dtype) == str(frame.index.dtype)
    assert got.frame[C.VOLUME].dtype == np.int64
    assert np.signbit(got.frame[C.CLOSE].iloc[1])  # -0.0 stays -0.0


def test_checksum_layout_is_pinned():
    # Worked out here from the documented layout, not by the code under test: a change of
    # layout must come with a new tag (every cached file then counts as damaged, once).
    index = pd.DatetimeIndex(["2024-01-02 14:30", "2024-01-03 14:30"], name=C.INDEX_NAME
                             ).tz_localize("UTC").tz_convert("America/New_York").as_unit("us")
    frame = pd.DataFrame({C.CLOSE: [1.0, 2.5], C.VOLUME: np.array([3, 4], dtype=np.int64)},
                         index=index)

    def block(data: bytes) -> bytes:
        return len(data).to_bytes(8, "little") + data

    epoch_us = [1704205800000000, 1704292200000000]  # 14:30 UTC on both days
    expected = hashlib.sha256(
        block(b"sandbox.cache.v1") + block(b"K|1d|True") + block(b"2024-01-04T00:00:00+00:00")
        + block(b"'date'\0datetime64[us, America/New_York]\0" + b"2\0")
        + np.array(epoch_us, dtype="<i8").tobytes()
        + block(b"'close'\0float64\0" + b"2\0") + np.array([1.0, 2.5], dtype="<f8").tobytes()
        + block(b"'volume'\0int64\0" + b"2\0") + np.array([3, 4], dtype="<i8").tobytes()
    ).hexdigest()
    assert frame_digest(frame, key=b"K|1d|True",
                        cached_at=b"2024-01-04T00:00:00+00:00") == expected


def _rewrite(path: Path, change) -> None:
    """Decode the file, let ``change`` alter the table, write it back with its metadata."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    pq.write_table(change(table), path)


def test_a_changed_cell_that_parquet_reads_fine_is_caught(tmp_path):
    import pyarrow as pa

    cache = PriceCache(tmp_path)
    cache.put("X", "1d", True, _frame(10))

    def bump(table):
        i = table.schema.get_field_index(C.CLOSE)
        close = table.column(i).to_numpy().copy()
        close[4] = np.nextafter(close[4], np.inf)  # one bit in one cell
        return table.set_column(i, C.CLOSE, pa.array(close)).replace_schema_metadata(
            table.schema.metadata)

    _rewrite(cache.path("X", "1d", True), bump)
    got = cache.get("X", "1d", True)
    assert isinstance(got, CacheDamaged)
    assert got.reason == "its checksum does not match its contents"


def test_a_changed_download_time_is_caught(tmp_path):
    cache = PriceCache(tmp_path)
    cache.put("X", "1d", True, _frame(3))
    path = cache.path("X", "1d", True)
    _rewrite(path, lambda t: t.replace_schema_metadata(
        {**t.schema.metadata, b"sandbox.cached_at": b"2099-01-01T00:00:00+00:00"}))
    assert cache.get("X", "1d", True).reason == "its checksum does not match its contents"


def test_a_file_without_checksum_is_damaged(tmp_path):
    # what earlier versions wrote: the download time and the key, no checksum
    import pyarrow as pa
    import pyarrow.parquet as pq

    cache = PriceCache(tmp_path)
    table = pa.Table.from_pandas(_frame(5), preserve_index=True)
    table = table.replace_schema_metadata({**table.schema.metadata,
                                           b"sandbox.cached_at": b"2025-01-02T03:04:05+00:00",
                                           b"sandbox.key": b"OLD|1d|True"})
    pq.write_table(table, cache.path("OLD", "1d", True))
    got = cache.get("OLD", "1d", True)
    assert isinstance(got, CacheDamaged)
    assert got.ignored == ("the cached copy of OLD (1d bars) is damaged and was ignored: "
                           "it has no checksum (written by an older version of the app)")


def test_a_file_under_another_key_is_not_used(tmp_path):
    cache = PriceCache(tmp_path)
    cache.put("AAA", "1d", True, _frame(3))
    shutil.copyfile(cache.path("AAA", "1d", True), cache.path("BBB", "1d", True))
    got = cache.get("BBB", "1d", True)
    assert isinstance(got, CacheDamaged)
    assert got.reason == "it holds the entry 'AAA|1d|True'"


def test_random_corruptions_are_detected_or_harmless(tmp_path):
    """300 random 4-byte overwrites of a real cached file: each one is either reported as
    damage or reads back exactly the frame and download time that were stored."""
    cache = PriceCache(tmp_path)
    frame = load_prices(DataSpec(source="sample:GSPC", start="2016-01-01")).frame  # 754 bars
    cache.put("^GSPC", "1d", True, frame)
    path = cache.path("^GSPC", "1d", True)
    good = path.read_bytes()
    stamp = _meta(path)[b"sandbox.cached_at"].decode()
    rng = np.random.default_rng(20261130)
    outcomes = {"unreadable": 0, "checksum": 0, "intact": 0}
    for _ in range(300):
        data = bytearray(good)
        at = int(rng.integers(0, len(data) - 4, endpoint=True))
        data[at:at + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))
        got = cache.get("^GSPC", "1d", True)
        if isinstance(got, CacheDamaged):
            assert "\n" not in got.ignored and got.ignored.isprintable()
            outcomes["checksum" if "checksum" in got.reason else "unreadable"] += 1
            continue
        assert isinstance(got, CacheHit), f"offset {at}: {got!r}"
        # no silent change: the same bytes, index, names, dtypes and download time
        pd.testing.assert_frame_equal(got.frame, frame, check_exact=True, check_freq=False)
        for name in frame.columns:
            assert got.frame[name].to_numpy().tobytes() == frame[name].to_numpy().tobytes()
        assert got.frame.index.asi8.tobytes() == frame.index.asi8.tobytes()
        assert got.cached_at == stamp
        outcomes["intact"] += 1
    assert sum(outcomes.values()) == 300
    # both guards are exercised: the Parquet reader's and the checksum's
    assert outcomes["unreadable"] > 0 and outcomes["checksum"] > 0, outcomes


def test_unwritable_root_raises_export_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cache folder"):
        PriceCache(blocker / "prices").put("X", "1d", True, _frame(2))


def test_default_root_follows_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "c"))
    assert PriceCache().root == tmp_path / "c" / "prices"
    PriceCache().put("X", "1d", True, _frame(2))
    assert (tmp_path / "c" / "prices").is_dir()


def test_default_root_is_platform_user_cache_dir(monkeypatch):
    monkeypatch.delenv(ENV_CACHE_DIR, raising=False)
    root = cache_dir()
    assert "trading-signal-sandbox" in str(root)
    assert PriceCache().root == Path(root) / "prices"
