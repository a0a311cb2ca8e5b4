"""Progress events and the one duration format shared by the CLI and the app."""

from __future__ import annotations

import math

import pytest

from sandbox.events import format_hms


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (41.6, "0:42"), (725, "12:05"), (3599.4, "59:59"), (3723, "1:02:03"),
     (-5, "0:00"), (math.nan, "0:00"), (math.inf, "0:00")],
)
def test_format_hms(seconds, text):
    assert format_hms(seconds) == text
