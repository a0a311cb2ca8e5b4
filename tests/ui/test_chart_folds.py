"""Walk-forward fold boundaries on the price chart: thin numbered vertical lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyqtgraph.Qt import QtCore

from sandbox.ui.charts import PriceChart
from sandbox.ui.charts.price_chart import _FoldLines

WIDTH, HEIGHT = 1200, 800


def flat_bars(n: int) -> pd.DataFrame:
    """Bars of one price."""
    index = pd.bdate_range("2010-01-04", periods=n, name="date")
    close = np.full(n, 100.0)
    return pd.DataFrame({"open": close, "high": close + 0.1, "low": close - 0.1,
                         "close": close, "volume": np.full(n, 1000.0)}, index=index)


@pytest.fixture
def chart(qtbot) -> PriceChart:
    widget = PriceChart(dark=True)
    qtbot.addWidget(widget)
    widget.resize(WIDTH, HEIGHT)
    widget.grab()
    return widget


def fold_items(chart: PriceChart) -> list[_FoldLines]:
    return [item for item in chart.graphics.scene().items() if isinstance(item, _FoldLines)]


def test_fold_lines_sit_on_each_folds_first_bar(chart):
    frame = flat_bars(500)
    chart.set_prices(frame)
    index = frame.index
    starts = [index[100], index[163], index[226] + pd.Timedelta(hours=12),  # between bars
              pd.Timestamp("2001-01-01"), index[-1] + pd.Timedelta(days=30)]  # off the chart
    chart.set_fold_lines(starts)
    assert chart.fold_lines() == [100.0, 163.0, 227.0]
    price = chart._fold_item(chart.price_plot)
    assert price._labels == ["1", "2", "3"]  # numbered in order; the dropped ones too
    chart.set_fold_lines(starts[:3], labels=["fold 4", "fold 5", "fold 6"])
    assert price._labels == ["fold 4", "fold 5", "fold 6"]
    with pytest.raises(ValueError):
        chart.set_fold_lines(starts[:3], labels=["a"])


def test_one_item_per_pane_however_many_folds_and_cleared_by_an_empty_list(chart):
    frame = flat_bars(3000)
    chart.set_prices(frame)
    chart.set_fold_lines(list(frame.index[::30]))  # 100 folds
    items = fold_items(chart)
    assert len(items) == 3  # price, volume, equity panes
    assert all(item.isVisible() for item in items)
    returns = chart.returns_plot  # a pane built later gets them too
    assert chart._fold_item(returns)._x.tolist() == chart.fold_lines()
    assert len(fold_items(chart)) == 4
    chart.set_fold_lines([])
    assert chart.fold_lines() == []
    assert not any(item.isVisible() for item in fold_items(chart))
    chart.set_fold_lines([frame.index[10]])
    chart.set_prices(frame)  # new prices: no folds of an older run
    assert chart.fold_lines() == [] and not any(i.isVisible() for i in fold_items(chart))


def test_the_lines_are_painted_where_the_folds_start(chart):
    frame = flat_bars(400)
    chart.set_prices(frame)
    chart.show_range(100, 299)
    before = chart.grab().toImage()
    chart.set_fold_lines([frame.index[150], frame.index[250]])
    after = chart.grab().toImage()
    vb = chart.equity_plot.getViewBox()  # no equity yet: an empty pane
    # columns of the widget where bars 150 and 250 are, from the view's own mapping
    view = chart.graphics
    expected = []
    for x in (150, 250):
        scene = vb.mapViewToScene(QtCore.QPointF(x, 100.0))
        expected.append(view.mapFromScene(scene).x() + view.x())
    top = view.y() + int(vb.sceneBoundingRect().top()) + 5
    rows = range(top, top + 20)  # the lines are dashed: some rows fall in a gap
    changed = [col for col in range(before.width())
               if any(before.pixel(col, row) != after.pixel(col, row) for row in rows)]
    assert changed, "no line painted"
    for col in changed:  # every changed pixel of that row is on one of the two lines
        assert min(abs(col - e) for e in expected) <= 2
    for e in expected:
        assert any(abs(col - e) <= 2 for col in changed)
