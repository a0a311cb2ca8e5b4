"""Everything that turns a source into a validated price frame.

``load_prices(DataSpec(...))`` is the entry point; see :mod:`sandbox.data.sources` for the
sources, :mod:`sandbox.data.validate` for the data contract and :mod:`sandbox.data.cache`
for the download cache.
"""

from __future__ import annotations

from sandbox.data.cache import PriceCache
from sandbox.data.sources import (
    LoadedPrices,
    fetch_yahoo,
    list_samples,
    load_prices,
    read_price_csv,
)
from sandbox.data.validate import validate_prices

__all__ = [
    "LoadedPrices",
    "PriceCache",
    "fetch_yahoo",
    "list_samples",
    "load_prices",
    "read_price_csv",
    "validate_prices",
]
