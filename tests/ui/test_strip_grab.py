"""A chart picture drawn a strip per turn of the event loop equals one grab()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6 import QtGui

from sandbox.ui.charts import PriceChart
from sandbox.ui.screenshot import StripGrab


@pytest.fixture
def chart(qtbot) -> PriceChart:
    widget = PriceChart(dark=False)
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    n = 400
    close = 100 + np.cumsum(np.random.default_rng(1).normal(size=n))
    frame = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                          "volume": np.arange(n, dtype=float)},
                         index=pd.date_range("2020-01-01", periods=n, name="date"))
    widget.set_prices(frame)
    for _ in range(2):  # lay out and paint; the legend rows settle on the second paint
        widget.grab()
        qtbot.wait(100)  # the scene reports those first changes a moment later
    return widget


def rgb(image: QtGui.QImage) -> QtGui.QImage:
    return image.convertToFormat(QtGui.QImage.Format.Format_RGB32)


def test_strips_give_the_pixels_of_one_grab(chart, qtbot):
    reference = rgb(chart.grab().toImage())
    grab = StripGrab(chart, lambda: chart.revision)
    with qtbot.waitSignal(grab.grabbed, timeout=5000) as done:
        grab.start()
    assert grab.restarts == 0
    assert rgb(done.args[0]) == reference


def test_a_change_between_strips_starts_again(chart, qtbot):
    grab = StripGrab(chart, lambda: chart.revision)
    grab.start()  # one strip drawn; the rest wait for the event loop
    chart.show_range(100, 200)  # the user zooms in meanwhile
    with qtbot.waitSignal(grab.grabbed, timeout=5000) as done:
        pass
    assert grab.restarts >= 1
    assert rgb(done.args[0]) == rgb(chart.grab().toImage())  # the new view, whole


def test_export_chart_is_busy_until_its_picture_is_drawn(make_window, qtbot, tmp_path):
    window = make_window()
    qtbot.wait(100)
    window.export_chart_to(str(tmp_path / "chart.png"))
    assert not window.is_idle()  # the strips are still being drawn
    assert not window.act_export_chart.isEnabled()  # no second export meanwhile
    with qtbot.waitSignal(window.task_ended, timeout=10_000) as ended:
        pass
    assert ended.args == ["export_chart", True]
    qtbot.waitUntil(window.is_idle, timeout=5000)
    assert window.act_export_chart.isEnabled()
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
