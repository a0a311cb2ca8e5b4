"""The split shading is moved, hidden and recoloured in place, never rebuilt."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import chart_with_prices

from sandbox.constants import TEST, TRAIN, VAL
from sandbox.ui.charts import PriceChart


@pytest.fixture
def chart(qtbot) -> PriceChart:
    n = 300
    close = 100 + np.cumsum(np.random.default_rng(0).normal(size=n))
    frame = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                          "volume": np.ones(n)},
                         index=pd.date_range("2020-01-01", periods=n, name="date"))
    return chart_with_prices(qtbot, frame)


def labels(counts: dict[str, int], index: pd.DatetimeIndex) -> pd.Series:
    values = np.concatenate([[name] * k for name, k in counts.items()])
    return pd.Series(values, index=index[:len(values)])


def spans(chart: PriceChart) -> dict[tuple[int, str], tuple[float, float]]:
    panes = chart._plots()
    return {(panes.index(plot), region.property("split")): tuple(region.getRegion())
            for plot, region in chart._regions}


def test_new_splits_move_the_same_regions(chart):
    index = chart._dates
    chart.set_splits(labels({TRAIN: 200, VAL: 50, TEST: 50}, index))
    first = [region for _plot, region in chart._regions]
    assert spans(chart)[0, TRAIN] == (-0.5, 199.5)
    assert spans(chart)[2, TEST] == (249.5, 299.5)
    chart.set_splits(labels({TRAIN: 100, VAL: 100, TEST: 100}, index))
    assert [region for _plot, region in chart._regions] == first  # moved, not rebuilt
    assert spans(chart)[1, VAL] == (99.5, 199.5)
    # shown in every pane (the returns pane itself is hidden until the return view is on)
    assert all(region.isVisibleTo(plot) for plot, region in chart._regions)


def test_a_split_that_is_gone_is_hidden_and_none_hides_all(chart):
    index = chart._dates
    chart.set_splits(labels({TRAIN: 200, VAL: 50, TEST: 50}, index))
    test_regions = [r for _p, r in chart._regions if r.property("split") == TEST]
    chart.set_splits(labels({TRAIN: 250, VAL: 50}, index))
    assert len(chart._regions) == 2 * len(chart._plots())
    assert not any(r.isVisible() for r in test_regions)
    chart.set_splits(None)
    assert chart._regions == []
    assert not any(r.isVisible() for r in chart._region_items.values())


def test_dark_and_light_recolour_the_kept_labels(chart):
    chart.set_splits(labels({TRAIN: 200, VAL: 50, TEST: 50}, chart._dates))
    (name, label), *_ = chart._labels
    dark = label.color.name()
    chart.set_dark(False)
    light = label.color.name()
    assert dark != light
    assert light == chart._label_color(name).name()
