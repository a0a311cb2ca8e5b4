"""The side panel's forms: configs round-trip, invalid values give a reason."""

from __future__ import annotations

import pytest

from sandbox.config import DataSpec, ModelConfig, StrategyConfig, TrainConfig
from sandbox.errors import ConfigError
from sandbox.ui.panels import DataPanel, ModelPanel, StrategyPanel


@pytest.fixture
def data_panel(qtbot) -> DataPanel:
    panel = DataPanel(("GOOG", "GSPC"))
    qtbot.addWidget(panel)
    return panel


@pytest.mark.parametrize("spec", [
    DataSpec(source="sample:GOOG"),
    DataSpec(source="sample:GSPC", start="2010-01-01", end="2012-12-31"),
    DataSpec(source="csv:/data/prices.csv"),
    DataSpec(source="yahoo:MSFT", start="2020-01-01", interval="1wk"),
])
def test_data_panel_round_trips_a_spec(data_panel, spec):
    data_panel.set_spec(spec)
    assert data_panel.spec() == spec


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda p: p.csv_radio.setChecked(True), "choose a CSV file"),
    (lambda p: p.ticker_radio.setChecked(True), "type a ticker"),
    (lambda p: (p.ticker_radio.setChecked(True), p.ticker_edit.setText("BRK B")), "no spaces"),
    (lambda p: p.start_edit.setText("2020-02-30"), "not a date"),
    (lambda p: (p.start_edit.setText("2020-01-02"), p.end_edit.setText("2019-01-01")),
     "is after"),
])
def test_data_panel_refuses_with_a_reason(data_panel, qtbot, setup, reason):
    setup(data_panel)
    with pytest.raises(ConfigError, match=reason):
        data_panel.spec()
    requested = []
    data_panel.load_requested.connect(requested.append)
    data_panel.load_button.click()
    assert requested == []
    assert reason in data_panel.note.text()


def test_model_panel_round_trips_and_keeps_fields_without_widgets(qtbot):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    model = ModelConfig(kind="gru", window=45, hidden=17, layers=3, dropout=0.125,
                        target="price")
    train = TrainConfig(epochs=7, patience=0, batch_size=33, lr=3e-4, seed=11, threads=3,
                        loss="huber")
    panel.set_configs(model, train)
    assert panel.model_config() == model
    assert panel.train_config() == train  # threads and loss survive the form


@pytest.mark.parametrize(("text", "reason"), [("abc", "not a number"), ("0", "must be"),
                                              ("-1e-3", "must be"), ("nan", "must be")])
def test_model_panel_learning_rate_reasons(qtbot, text, reason):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.lr_edit.setText(text)
    with pytest.raises(ConfigError, match=f"learning rate.*{reason}"):
        panel.train_config()


def test_strategy_panel_round_trips(qtbot):
    panel = StrategyPanel()
    qtbot.addWidget(panel)
    strategy = StrategyConfig(strategy="long_short", threshold_bps=2.25, fill="close",
                              cost_bps=0.5, periods_per_year=365.0)
    panel.set_config(strategy)
    assert panel.strategy_config() == strategy
    changes = []
    panel.changed.connect(lambda: changes.append(1))
    panel.cost_spin.setValue(7.0)
    assert changes and panel.strategy_config().cost_bps == 7.0
