"""PriceCache: Parquet round trip keyed by (symbol, interval, auto_adjust), atomic writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.data.cache import ENV_CACHE_DIR, PriceCache, cache_dir
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


def test_unreadable_entry_is_a_miss(tmp_path):
    cache = PriceCache(tmp_path)
    cache.path("X", "1d", True).write_bytes(b"not parquet at all")
    assert cache.get("X", "1d", True) is None


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
