"""The side panel's forms: configs round-trip, invalid values give a reason."""

from __future__ import annotations

import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.config import DataSpec, ModelConfig, RunConfig, SplitSpec, StrategyConfig, TrainConfig
from sandbox.errors import ConfigError
from sandbox.ui.panels import AUTO_PERIODS, DataPanel, ModelPanel, SidePanel, StrategyPanel


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


@pytest.mark.parametrize("periods", [None, 252.0, 365.25, 6240.0, 12.0, 525_600.0])
def test_strategy_panel_round_trips_bars_per_year(qtbot, periods):
    panel = StrategyPanel()
    qtbot.addWidget(panel)
    strategy = StrategyConfig(fill="close", periods_per_year=periods)
    panel.set_config(StrategyConfig(periods_per_year=7.0))
    panel.set_config(strategy)
    assert panel.strategy_config() == strategy
    assert (panel.periods_spin.text() == AUTO_PERIODS) is (periods is None)


def test_strategy_panel_bars_per_year_edits_and_auto(qtbot):
    panel = StrategyPanel()
    qtbot.addWidget(panel)
    assert panel.strategy_config().periods_per_year is None  # the default is measured
    assert "Metrics tab" in panel.periods_spin.toolTip()
    changes = []
    panel.changed.connect(lambda: changes.append(1))
    panel.periods_spin.setValue(1764)
    assert changes and panel.strategy_config().periods_per_year == 1764.0
    assert panel.periods_spin.text() == "1764"  # no trailing zeros
    panel.periods_spin.setValue(panel.periods_spin.minimum())
    assert panel.strategy_config().periods_per_year is None
    # a value the spin box rounds survives a round trip unchanged
    exact = StrategyConfig(periods_per_year=251.987654)
    panel.set_config(exact)
    assert panel.strategy_config() == exact


def test_strategy_panel_shows_the_measured_bars_per_year(qtbot):
    panel = StrategyPanel()
    qtbot.addWidget(panel)
    panel.set_measured_periods(6240.0)
    assert panel.periods_spin.text() == "auto: 6240 (measured)"
    assert panel.strategy_config().periods_per_year is None  # still auto
    panel.periods_spin.stepUp()  # leaving auto starts at the measured value
    assert panel.strategy_config().periods_per_year == 6240.0
    panel.set_measured_periods(None)
    panel.periods_spin.setValue(0)
    assert panel.periods_spin.text() == AUTO_PERIODS


@pytest.mark.parametrize("target", C.TARGETS)
def test_model_panel_round_trips_every_target(qtbot, target):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    assert panel.target_combo.count() == len(C.TARGETS)
    model = ModelConfig(target=target)
    panel.set_configs(ModelConfig(target=C.TARGET_PRICE if target != C.TARGET_PRICE
                                  else C.TARGET_RETURN), TrainConfig())
    panel.set_configs(model, TrainConfig())
    assert panel.model_config() == model
    assert ModelPanel().model_config().target == C.TARGET_RETURN  # the default


@pytest.mark.parametrize("target", C.TARGETS)
@pytest.mark.parametrize("fill", C.FILLS)
def test_side_panel_cautions_exactly_when_return_is_forecast_and_next_open_traded(
        qtbot, target, fill):
    side = SidePanel(["GSPC"])
    qtbot.addWidget(side)
    model, strategy = side.model_panel, side.strategy_panel
    # reach the pair from the other one, so both panels' changes are followed
    _select_data(strategy.fill_combo, C.FILL_CLOSE if fill == C.FILL_NEXT_OPEN
                 else C.FILL_NEXT_OPEN)
    _select_data(model.target_combo, C.TARGET_PRICE if target != C.TARGET_PRICE
                 else C.TARGET_RETURN)
    _select_data(strategy.fill_combo, fill)
    _select_data(model.target_combo, target)
    caution = target == C.TARGET_RETURN and fill == C.FILL_NEXT_OPEN
    assert model.target_caution.isVisibleTo(model) is caution
    assert model.target_note.isVisibleTo(model) is not caution
    note = model.target_caution.text() if caution else model.target_note.text()
    traded = "open\u00a0t+1" if fill == C.FILL_NEXT_OPEN else "close\u00a0t"
    assert traded in note  # the span the fill trades is said either way
    assert strategy.fill_note.text().startswith(f"held {traded}")


def test_side_panel_default_form_cautions(qtbot):
    side = SidePanel(["GSPC"])
    qtbot.addWidget(side)
    assert side.model_panel.target_caution.isVisibleTo(side.model_panel)
    assert "0.85" in side.model_panel.target_caution.text()


def test_side_panel_shows_bars_per_year_measured_from_loaded_prices(qtbot):
    side = SidePanel(["GSPC"])
    qtbot.addWidget(side)
    hourly = pd.date_range("2024-01-01", periods=200, freq="h")  # trades at weekends too
    from sandbox.data import LoadedPrices

    # prices that did not come through load_prices: the panel measures them itself
    side.data_panel.prices_loaded.emit(LoadedPrices(frame=pd.DataFrame(index=hourly),
                                                    label="h", source="frame"))
    assert side.strategy_panel.periods_spin.text() == "auto: 8760 (measured)"
    # a load measured them on its worker thread: that figure is shown as it is
    side.data_panel.prices_loaded.emit(LoadedPrices(frame=pd.DataFrame(index=hourly),
                                                    label="h", source="frame",
                                                    periods_per_year=6240.0))
    assert side.strategy_panel.periods_spin.text() == "auto: 6240 (measured)"


def test_side_panel_pins_train_and_stop_under_the_scrolling_forms(qtbot):
    side = SidePanel(["GSPC"])
    qtbot.addWidget(side)
    forms = side.scroll.widget()
    for panel in (side.data_panel, side.model_panel, side.strategy_panel):
        assert forms.isAncestorOf(panel)
    for pinned in (side.train_button, side.stop_button, side.form_error):
        assert side.isAncestorOf(pinned) and not forms.isAncestorOf(pinned)
    assert side.sizeHint().width() >= forms.sizeHint().width()  # no cut form when room


def test_side_panel_round_trips_the_split_and_checks_it(qtbot):
    side = SidePanel(["GSPC"])
    qtbot.addWidget(side)
    config = RunConfig(split=SplitSpec(val_start="2010-01-04", test_start="2012-01-03",
                                       min_returns=7))
    side.set_run(config, 1)
    assert side.run_config(config.data) == config
    side.data_panel.test_start_edit.setText("2009-12-31")
    assert "must come before" in side.check()
    with pytest.raises(ConfigError):
        side.run_config(config.data)
    index = pd.bdate_range("2009-01-01", "2013-12-31")
    side.data_panel.test_start_edit.setText("2012-01-03")
    assert side.check(index) is None
    side.data_panel.val_start_edit.setText("2008-01-02")  # before the first bar
    assert "training split is empty" in side.check(index)


def _select_data(box, value) -> None:
    box.setCurrentIndex(box.findData(value))


def test_model_panel_sizes_stop_where_the_config_does(qtbot):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    # the largest value each field takes is the largest the config accepts
    for spin, field in ((panel.window_spin, "window"), (panel.hidden_spin, "hidden"),
                        (panel.layers_spin, "layers")):
        top = spin.maximum()
        ModelConfig(**{field: top})  # accepted
        with pytest.raises(ConfigError):
            ModelConfig(**{field: top + 1})
