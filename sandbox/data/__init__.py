"""Everything that turns a source into a validated price frame.

``load_prices(DataSpec(...))`` is the entry point; see :mod:`sandbox.data.sources` for the
dispatch and the samples, :mod:`sandbox.data.csv` and :mod:`sandbox.data.yahoo` for files and
downloads, :mod:`sandbox.data.validate` for the data contract and :mod:`sandbox.data.cache`
for the download cache.
"""

from __future__ import annotations

from sandbox.data.cache import PriceCache
from sandbox.data.csv import read_price_csv
from sandbox.data.sources import LoadedPrices, list_samples, load_prices
from sandbox.data.validate import validate_prices
from sandbox.data.yahoo import fetch_yahoo

__all__ = [
    "LoadedPrices",
    "PriceCache",
    "fetch_yahoo",
    "list_samples",
    "load_prices",
    "read_price_csv",
    "validate_prices",
]
