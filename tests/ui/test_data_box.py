"""The Data box: what a load warned about, how a CSV is read (Adj Close, the order of its
dates) and where the validation and test splits start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.config import DataSpec, RunConfig, SplitSpec
from sandbox.errors import ConfigError
from sandbox.ui.panels import AUTO_SPLIT, DataPanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"


def write_csv(path: Path, *, rows: int = 300, volume: bool = True,
              newest_first: bool = False) -> Path:
    """A small daily OHLC(V) file of ``rows`` business days from 2020-01-02."""
    dates = pd.bdate_range("2020-01-02", periods=rows)
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, rows)))
    frame = pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "Open": close * 0.999,
                          "High": close * 1.01, "Low": close * 0.99, "Close": close})
    if volume:
        frame["Volume"] = 1000
    if newest_first:
        frame = frame.iloc[::-1]
    frame.round(4).to_csv(path, index=False)
    return path


@pytest.fixture
def data_panel(qtbot) -> DataPanel:
    panel = DataPanel(("GOOG", "GSPC"))
    qtbot.addWidget(panel)
    return panel


def csv_run(small: RunConfig, path: Path) -> RunConfig:
    return small.replace(data=DataSpec(source=f"{C.SOURCE_CSV}:{path}"))


# ------------------------------------------------------------------------------ warnings ----
def test_a_load_without_volume_shows_its_warnings_in_the_data_box_and_status_bar(
        make_window, small, tmp_path):
    path = write_csv(tmp_path / "novol.csv", volume=False, newest_first=True)
    window = make_window(csv_run(small, path), show=True)
    warnings = window.prices.warnings
    assert any("volume" in w.lower() for w in warnings)
    shown = window.data_panel.warning_text()
    assert window.data_panel.warning_box.isVisibleTo(window)
    assert all(w in shown for w in warnings)  # every warning, one a line
    assert "volume" in shown.lower()
    # the status bar: the first warning now, a lasting count while these prices are shown
    assert warnings[0] in window.status_text.text()
    assert window.data_warning.isVisibleTo(window)
    assert f"{len(warnings)} data warning" in window.data_warning.text()
    assert window.data_warning.toolTip() == "\n".join(warnings)


def test_the_warnings_are_cleared_by_the_next_load(make_window, qtbot, small, tmp_path):
    path = write_csv(tmp_path / "novol.csv", volume=False)
    window = make_window(csv_run(small, path))
    assert window.data_panel.warning_text()
    at_start = []
    window.controller.load_started.connect(
        lambda _spec: at_start.append(window.data_panel.warning_text()))
    clean = write_csv(tmp_path / "clean.csv")
    with qtbot.waitSignal(window.data_shown, timeout=20_000):
        window.load(DataSpec(source=f"{C.SOURCE_CSV}:{clean}"))
    qtbot.waitUntil(lambda: not window.is_loading())
    assert at_start == [""]  # cleared as soon as the next load starts
    assert window.prices.warnings == ()
    assert window.data_panel.warning_text() == ""
    assert not window.data_panel.warning_box.isVisibleTo(window)
    assert not window.data_warning.isVisibleTo(window)


def test_a_failed_load_keeps_the_warnings_of_the_prices_shown(make_window, qtbot, small,
                                                              tmp_path, dialogs_shown):
    path = write_csv(tmp_path / "novol.csv", volume=False)
    window = make_window(csv_run(small, path))
    before = window.data_panel.warning_text()
    with qtbot.waitSignal(window.failure_reported, timeout=20_000):
        window.load(DataSpec(source=f"csv:{FIXTURES / 'high_below.csv'}"))
    qtbot.waitUntil(lambda: not window.is_loading())
    assert window.prices.label == "novol"
    assert window.data_panel.warning_text() == before != ""


# ------------------------------------------------------------------------------ Adj Close ---
@pytest.mark.parametrize("spec", [
    DataSpec(source="csv:/data/prices.csv", use_adj_close=True),
    DataSpec(source="csv:/data/prices.csv", use_adj_close=False),
    DataSpec(source="sample:GSPC", use_adj_close=True),
])
def test_adj_close_round_trips(data_panel, spec):
    data_panel.set_spec(DataSpec(source="sample:GOOG", use_adj_close=not spec.use_adj_close))
    data_panel.set_spec(spec)
    assert data_panel.adj_close_check.isChecked() is spec.use_adj_close
    assert data_panel.spec() == spec


def test_adj_close_applies_to_files_and_samples_not_downloads(data_panel):
    check = data_panel.adj_close_check
    assert check.text() == "Adj Close"
    assert "Adj Close" in check.toolTip() and "--adj-close" in check.toolTip()
    changes = []
    data_panel.changed.connect(lambda: changes.append(1))
    check.setChecked(True)
    assert changes
    data_panel.set_csv_path("/data/prices.csv")
    assert check.isEnabled() and data_panel.spec().use_adj_close
    data_panel.ticker_radio.setChecked(True)
    data_panel.ticker_edit.setText("AAPL")
    assert not check.isEnabled()
    assert data_panel.spec().use_adj_close is False  # a download is adjusted anyway


# ------------------------------------------------------------------------------ Dates -------
def test_dates_choice_offers_auto_day_first_and_month_first(data_panel):
    combo = data_panel.date_order_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "auto", "day first (31/12)", "month first (12/31)"]
    assert combo.currentText() == "auto"
    assert combo.toolTip()


@pytest.mark.parametrize("date_format", [None, C.DATE_DAYFIRST, C.DATE_MONTHFIRST, "%d.%m.%Y"])
def test_dates_choice_round_trips_to_the_data_spec(data_panel, date_format):
    spec = DataSpec(source="csv:/data/prices.csv", date_format=date_format)
    data_panel.set_spec(DataSpec(source="csv:/data/other.csv", date_format=C.DATE_DAYFIRST
                                 if date_format != C.DATE_DAYFIRST else None))
    data_panel.set_spec(spec)
    assert data_panel.spec() == spec
    assert data_panel.spec().date_format == date_format


def test_dates_choice_applies_to_csv_files_only(data_panel):
    combo = data_panel.date_order_combo
    data_panel.set_csv_path("/data/prices.csv")
    combo.setCurrentIndex(combo.findData(C.DATE_MONTHFIRST))
    assert combo.isEnabled()
    assert data_panel.spec().date_format == C.DATE_MONTHFIRST
    data_panel.sample_radio.setChecked(True)
    assert not combo.isEnabled()
    assert data_panel.spec() == DataSpec(source="sample:GOOG")  # samples are ISO dated


def test_adj_close_and_dates_come_back_from_the_settings(make_window, qtbot, tmp_path):
    from sandbox.ui.settings import Settings

    path = write_csv(tmp_path / "prices.csv")
    remembered = DataSpec(source=f"csv:{path}", use_adj_close=True,
                          date_format=C.DATE_DAYFIRST)
    Settings().save_data(remembered)
    window = make_window(RunConfig(), explicit=False)
    assert window.data_panel.adj_close_check.isChecked()
    assert window.data_panel.date_order_combo.currentData() == C.DATE_DAYFIRST
    assert window.data_panel.spec() == remembered


# ------------------------------------------------------------------------------ splits ------
@pytest.mark.parametrize("split", [
    SplitSpec(),
    SplitSpec(val_start="2019-01-02", test_start="2021-06-01"),
    SplitSpec(val_start="2019-01-02"),
    SplitSpec(test_start="2021-06-01", train_frac=0.6, val_frac=0.2, min_returns=5),
])
def test_validation_and_test_starts_round_trip_to_the_split_spec(data_panel, split):
    data_panel.set_split(SplitSpec(val_start="2000-01-03", test_start="2001-01-02"))
    data_panel.set_split(split)
    assert data_panel.split_spec() == split
    assert data_panel.val_start_edit.text() == (split.val_start or "")
    assert data_panel.test_start_edit.text() == (split.test_start or "")


def test_empty_split_fields_say_auto(data_panel):
    for edit in (data_panel.val_start_edit, data_panel.test_start_edit):
        assert edit.placeholderText() == AUTO_SPLIT == "auto (70/15/15)"
        assert edit.toolTip()
    data_panel.val_start_edit.setText("2019-01-02")
    changes = []
    data_panel.split_changed.connect(lambda: changes.append(1))
    data_panel.val_start_edit.clear()
    assert changes and data_panel.split_spec() == SplitSpec()


@pytest.mark.parametrize(("val", "test", "reason"), [
    ("2019-02-30", "", "Validation from '2019-02-30': not a date"),
    ("", "June", "Test from 'June': not a date"),
    ("2021-06-01", "2019-01-02", "must come before test from"),
    ("2021-06-01", "2021-06-01", "must come before test from"),
])
def test_bad_split_dates_are_refused_with_a_reason(data_panel, val, test, reason):
    data_panel.val_start_edit.setText(val)
    data_panel.test_start_edit.setText(test)
    with pytest.raises(ConfigError, match=reason):
        data_panel.split_spec()


def test_the_window_trains_and_remembers_the_split_dates(make_window, qtbot, small):
    split = SplitSpec(val_start="2017-01-03", test_start="2018-06-01")
    first = make_window(small, explicit=False)
    first.data_panel.val_start_edit.setText(split.val_start)
    first.data_panel.test_start_edit.setText(split.test_start)
    assert first.current_config().split == split
    preview = first._preview  # the split shading follows the fields before any training
    assert preview is not None
    assert preview[preview == C.VAL].index[0] >= pd.Timestamp(split.val_start)
    assert preview[preview == C.TEST].index[0] >= pd.Timestamp(split.test_start)
    assert preview[preview == C.TRAIN].index[-1] < pd.Timestamp(split.val_start)
    first.close()

    second = make_window(RunConfig(), explicit=False)
    assert second.data_panel.split_spec() == split
    second.data_panel.val_start_edit.clear()
    second.data_panel.test_start_edit.clear()
    assert second.current_config().split == SplitSpec()


def test_split_dates_the_loaded_bars_cannot_split_are_a_form_error(make_window, small):
    window = make_window(small)  # GSPC since 2014
    window.data_panel.test_start_edit.setText("2014-06-02")  # before the automatic val start
    assert not window.act_train.isEnabled()
    assert "give both" in window.form_error.text()
    window.data_panel.val_start_edit.setText("2014-03-03")
    assert window.act_train.isEnabled(), window.form_error.text()
    window.data_panel.test_start_edit.setText("2035-01-02")  # after the last bar
    assert "test split is empty" in window.form_error.text()
    window.data_panel.test_start_edit.setText("2018-12-24")  # the last five bars of 2018
    assert not window.act_train.isEnabled()  # refused before Train, not after it
    assert "the test split has 3 usable returns (5 rows; need 20): use a shorter Window in the " \
        "Model box" in window.form_error.text(), window.form_error.text()
    window.data_panel.test_start_edit.setText("garbage")
    assert "Test from 'garbage'" in window.form_error.text()
    window.data_panel.val_start_edit.clear()
    window.data_panel.test_start_edit.clear()
    assert window.act_train.isEnabled() and not window.form_error.isVisibleTo(window)
