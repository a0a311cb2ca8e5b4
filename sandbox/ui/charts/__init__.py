"""Chart widgets: candles with level of detail, a date-labelled index axis, the composite
price chart (candles, volume, predictions, equity; it grows bar by bar for replay and live
feeds, and marks walk-forward folds) and the live loss plot.

Import the widgets from here::

    from sandbox.ui.charts import LossPlot, PriceChart
"""

from __future__ import annotations

from sandbox.ui.charts.loss_plot import LossPlot
from sandbox.ui.charts.price_chart import PriceChart

__all__ = ["LossPlot", "PriceChart"]
