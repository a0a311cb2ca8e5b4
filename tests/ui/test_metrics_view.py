"""The Metrics tab: best-of-column marks, the verdict against the best baseline, and what
the tab shows (validation first; a saved model's rows captioned as what they are)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.config import StrategyConfig
from sandbox.looks import evidence
from sandbox.ui.metrics_view import (
    BEST_MARK,
    COLUMNS,
    MetricsView,
    best_rows,
    column_tip,
    plan,
    seeds_verdict,
    table_rows,
    verdict,
)


def metrics(model_rmse: float, rw_rmse: float = 0.01, model_total: float = 0.05,
            hold_total: float = 0.10) -> dict:
    def trading(total, sharpe, dd, trades):
        return {C.TOTAL_RETURN: total, C.SHARPE: sharpe, C.MAX_DRAWDOWN: dd, C.N_TRADES: trades}

    return {
        "split": "test",
        C.MODEL: {C.RMSE: model_rmse, C.DIRECTIONAL_ACCURACY: 0.52,
                  **trading(model_total, 0.4, -0.12, 40)},
        "baselines": {
            C.RANDOM_WALK: {C.RMSE: rw_rmse, C.DIRECTIONAL_ACCURACY: None,
                            **trading(0.0, 0.0, 0.0, 0)},
            C.MOMENTUM: {C.RMSE: 0.014, C.DIRECTIONAL_ACCURACY: 0.47,
                         **trading(-0.08, -0.3, -0.2, 200)},
            C.DRIFT: {C.RMSE: 0.0101, C.DIRECTIONAL_ACCURACY: 0.54,
                      **trading(hold_total, 0.7, -0.19, 1)},
            C.BUY_AND_HOLD: trading(hold_total, 0.7, -0.19, 1),
        },
    }


def test_rows_hold_the_model_and_every_baseline():
    rows = table_rows(metrics(0.011))
    assert [name for name, _ in rows] == [C.MODEL, *C.BASELINES]
    assert rows[-1][1][C.RMSE] is None  # buy & hold has no forecast


def test_best_of_each_column_ties_included():
    best = best_rows(table_rows(metrics(0.009)))
    assert best[C.RMSE] == {C.MODEL}
    assert best[C.DIRECTIONAL_ACCURACY] == {C.DRIFT}
    assert best[C.TOTAL_RETURN] == {C.DRIFT, C.BUY_AND_HOLD}
    assert best[C.MAX_DRAWDOWN] == {C.RANDOM_WALK}  # closest to 0
    assert C.N_TRADES not in best  # neither more nor fewer trades is better by itself


def test_a_column_where_every_row_ties_is_not_starred(qtbot):
    m = metrics(0.009)
    # a split without a trade: every strategy is flat, so every trading figure is 0.00
    for values in (m[C.MODEL], *m["baselines"].values()):
        values.update({C.TOTAL_RETURN: 0.0, C.SHARPE: 0.0, C.MAX_DRAWDOWN: 0.0})
    best = best_rows(table_rows(m))
    assert not {C.TOTAL_RETURN, C.SHARPE, C.MAX_DRAWDOWN} & set(best)
    assert best[C.RMSE] == {C.MODEL}  # a column with a real best keeps its star
    # the 2-row split of the issue: every figure the same on every row, no star at all
    for values in (m[C.MODEL], *m["baselines"].values()):
        values.update({C.RMSE: 0.0, C.DIRECTIONAL_ACCURACY: 0.5})
    m["baselines"][C.RANDOM_WALK][C.DIRECTIONAL_ACCURACY] = None
    assert best_rows(table_rows(m)) == {}
    view = MetricsView()
    qtbot.addWidget(view)
    view.set_metrics(m)
    assert view.best_cells() == {}
    # one value alone has nothing to beat
    only = [(C.MODEL, {col.key: None for col in COLUMNS} | {C.RMSE: 0.01})]
    assert best_rows(only) == {}


@pytest.mark.parametrize("model_rmse", [0.0100, 0.0120])
def test_verdict_says_when_the_model_does_not_beat_the_random_walk(model_rmse):
    # random walk 0.0100 is the lowest baseline RMSE (drift 0.0101, momentum 0.014)
    text = verdict(metrics(model_rmse, rw_rmse=0.0100))
    assert text.startswith("The model does not beat the best baseline: on the test split its "
                           f"RMSE ({model_rmse:.6f}) is no better than the random walk's "
                           "(0.010000, always predicting \"no change\")")
    assert "trails buy & hold (+10.00%), the best return of the baselines" in text


def test_verdict_when_the_model_beats_the_random_walk():
    text = verdict(metrics(0.0095, rw_rmse=0.0100, model_total=0.2, hold_total=0.1))
    # (1 - 0.0095 / 0.0100) = 5%
    assert "5.00% below the random walk's (0.010000" in text
    assert "the best baseline on the test split" in text
    assert "beats buy & hold (+10.00%)" in text


def test_verdict_names_drift_when_its_rmse_beats_the_model_and_the_random_walk():
    # the monthly-BTC case: the model is below the random walk but above drift
    m = metrics(0.0917, rw_rmse=0.1000)
    m["baselines"][C.MOMENTUM][C.RMSE] = 0.1400
    m["baselines"][C.DRIFT][C.RMSE] = 0.0900
    text = verdict(m)
    assert text.startswith("The model does not beat the best baseline: on the test split its "
                           "RMSE (0.091700) is no better than drift's (0.090000), the lowest "
                           "of the baselines, although it is 8.30% below the random walk's "
                           "(0.100000).")  # 1 - 0.0917 / 0.1 = 8.30%
    assert "below the random walk's" in text and "8.30%" in text
    m["baselines"][C.DRIFT][C.RMSE] = 0.0950
    m["baselines"][C.MOMENTUM][C.RMSE] = 0.0910
    assert "no better than momentum's (0.091000)" in verdict(m)
    m["baselines"][C.MOMENTUM][C.RMSE] = 0.0920
    m["model"][C.RMSE] = 0.0874  # 1 - 0.0874 / 0.0920 = 5.00%
    assert "RMSE (0.087400) is 5.00% below momentum's (0.092000), the best baseline" in (
        verdict(m))


def test_verdict_names_the_best_trading_baseline_not_only_buy_and_hold():
    m = metrics(0.009, model_total=0.15, hold_total=0.10)
    m["baselines"][C.DRIFT][C.TOTAL_RETURN] = 0.20
    text = verdict(m)
    assert ("After costs the model returned +15.00%; it trails drift (+20.00%), the best "
            "return of the baselines.") in text
    m["baselines"][C.DRIFT][C.TOTAL_RETURN] = 0.10  # a tie with buy & hold names buy & hold
    assert "it beats buy & hold (+10.00%)" in verdict(m)


def test_seeds_verdict_counts_against_the_best_baseline():
    m = metrics(0.009)
    m["baselines"][C.MOMENTUM][C.RMSE] = 0.0090
    m["baselines"][C.MOMENTUM][C.TOTAL_RETURN] = 0.30
    members = [{C.RMSE: 0.0089, C.TOTAL_RETURN: 0.31}, {C.RMSE: 0.0095, C.TOTAL_RETURN: 0.2}]
    assert seeds_verdict(members, m) == ("Across the seeds: 1 of 2 seeds beat momentum's RMSE; "
                                         "1 of 2 beat momentum after costs.")


def test_view_marks_the_best_cells(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    view.set_metrics(metrics(0.009), model_label="model (lstm)")
    assert view.table.rowCount() == 5
    best = view.best_cells()
    assert best["RMSE"] == ["model (lstm)"]
    assert sorted(best["Total return"]) == ["buy & hold", "drift"]
    assert "Trades" not in best
    assert view.table.item(1, 1).text() == "n/a"  # random walk: direction undefined
    assert view.table.item(0, 0).text().endswith(BEST_MARK)
    assert "below the random walk's" in view.verdict_label.text()
    assert not view.evidence_label.isVisibleTo(view)  # not test figures: no PSR line


def test_the_verdict_names_the_split_it_reads():
    metrics = {"split": "val", "model": {"rmse": 0.02},
               "baselines": {"random_walk": {"rmse": 0.01}}}
    assert "on the validation split" in verdict(metrics)
    metrics["split"] = "test"
    assert "on the test split" in verdict(metrics)
    assert "on the saved model's validation period" in verdict(
        metrics, where="the saved model's validation period")


def test_tooltips_say_bar_its_size_and_the_bars_per_year():
    by_key = {col.key: col for col in COLUMNS}
    for col in COLUMNS:
        assert "day" not in col.tip.lower()
    m = {"split": "val", "target": C.TARGET_RETURN, "periods_per_year": 1764.0}
    sharpe = column_tip(by_key[C.SHARPE], m, "hour")
    assert "P = 1,764 bars per year" in sharpe and "mean / std x sqrt(P)" in sharpe
    assert "here a bar is one hour" in sharpe
    assert "log return of the next hour" in column_tip(by_key[C.RMSE], m, "hour")
    assert "bars per year measured from the data" in column_tip(by_key[C.SHARPE],
                                                                {"split": "val"}, "bar")
    traded = column_tip(by_key[C.RMSE], {**m, "target": C.TARGET_TRADED}, "day")
    assert "traded return" in traded and "next open to the open after" in traded
    assert "Bars on which" in column_tip(by_key[C.N_TRADES], m, "5-minute bar")


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_long_texts_never_widen_the_window(qtbot):
    from sandbox.ui.main_window import MainWindow

    window = MainWindow(persist=False, headless=True)
    qtbot.addWidget(window)
    window.resize(780, 560)  # inside the offscreen platform's 800x600 screen
    window.show()
    qtbot.waitExposed(window)
    long_text = "a very long message " * 40
    window.status_text.setText(long_text)
    window.metrics_view.caption.setText(long_text)
    window.metrics_view.verdict_label.setText(long_text)
    window.tabs.setCurrentWidget(window.metrics_view)
    qtbot.wait(50)
    assert window.width() == 780


# ------------------------------------------------------------------ what the tab shows ----
def fake_run(labels: list[str], *, trained_split=None, test_hidden=False,
             last_bar: str | None = None, trained_data: dict | None = None,
             label: str = "GSPC", periods: float = 252.0,
             returns: list[float] | None = None) -> SimpleNamespace:
    """A ShownRun with daily rows labelled ``labels`` from 2012-01-02 (business days) of
    data ``label`` (``periods`` bars a year); ``returns``: the strategy return of each row
    (NaN: none), 0.0 on every row by default."""
    idx = pd.bdate_range("2012-01-02", periods=len(labels), name="date")
    strategy_return = [0.0] * len(labels) if returns is None else returns
    predictions = pd.DataFrame({C.SPLIT: labels, C.STRATEGY_RETURN: strategy_return},
                               index=idx)
    end = pd.Timestamp(last_bar) if last_bar else idx[-1]
    frame = pd.DataFrame({C.CLOSE: 1.0}, index=pd.DatetimeIndex([*idx[idx < end], end],
                                                               name="date"))
    run = SimpleNamespace(config=SimpleNamespace(strategy=StrategyConfig()),
                          predictions=predictions,
                          data=SimpleNamespace(frame=frame, label=label),
                          metrics={"periods_per_year": periods}, test_hidden=test_hidden)
    run.trained_split = trained_split
    run.trained_data = trained_data
    return run


LOOK = evidence([0.01, 0.03, -0.01, 0.01], count=4, trial_sharpes=[0.2, 0.4, 0.6, 0.8])


def test_a_trained_run_shows_validation_until_the_test_split_is_asked_for():
    run = fake_run(["train"] * 6 + ["val"] * 2 + ["test"] * 3)
    before = plan(run)
    assert before.split == C.VAL and before.can_reveal and not before.showing_test
    assert before.caption.startswith("Validation split (2012-01-10 .. 2012-01-11, 2 rows)")
    assert "Show test results reveals it, and every look is counted" in before.caption
    after = plan(run, LOOK)
    assert after.split == C.TEST and after.showing_test
    assert after.caption.startswith("Test split (2012-01-12 .. 2012-01-16, 3 rows)")
    assert after.caption.endswith("Test split seen 4 times on this data.")


def test_a_hidden_test_split_is_never_revealed():
    run = fake_run(["train"] * 6 + ["val"] * 2 + ["test"] * 3, test_hidden=True)
    for look in (None, LOOK):
        shown = plan(run, look)
        assert shown.split == C.VAL and not shown.can_reveal and not shown.showing_test
        assert "not the one selected on validation" in shown.caption


def test_a_saved_model_on_data_before_its_test_period_says_there_is_no_out_of_sample_row():
    split = {"train_end": "2012-01-09T00:00:00", "val_start": "2012-01-10T00:00:00",
             "test_start": "2015-11-05T00:00:00", "last_bar": "2016-12-30T00:00:00"}
    run = fake_run(["train"] * 6 + ["val"] * 2, trained_split=split, last_bar="2012-12-31")
    shown = plan(run)
    assert shown.caption.startswith(
        "No out-of-sample rows: this data ends 2012-12-31, before the model's test period "
        "(from 2015-11-05); every row here was seen in training or validation.")
    assert ("The saved model's validation period (2012-01-10 .. 2012-01-11, 2 rows): these "
            "rows chose which epoch's weights it kept, so they are not out of sample"
            ) in shown.caption
    assert "Test split" not in shown.caption
    assert shown.split == C.VAL and not shown.can_reveal
    assert shown.where == "the saved model's validation period"
    assert plan(run, LOOK).split == C.VAL  # nothing to reveal
    only_train = plan(fake_run(["train"] * 4, trained_split=split))
    assert only_train.split == C.TRAIN and "training period" in only_train.caption
    assert "in sample" in only_train.caption


def test_a_saved_model_with_out_of_sample_rows_reveals_them_on_request():
    split = {"train_end": "2012-01-05T00:00:00", "val_start": "2012-01-06T00:00:00",
             "test_start": "2012-01-10T00:00:00", "last_bar": "2012-01-12T00:00:00"}
    run = fake_run(["train"] * 4 + ["val"] * 2 + ["test"] * 3, trained_split=split)
    before = plan(run)
    assert before.split == C.VAL and before.can_reveal
    assert "out-of-sample rows (from 2012-01-10) stay hidden" in before.caption
    after = plan(run, LOOK)
    assert after.split == C.TEST and after.caption.startswith(
        "Out-of-sample rows: the saved model's test period (2012-01-10 .. 2012-01-12, 3 rows)")


def test_test_figures_carry_the_count_and_what_psr_and_dsr_are_the_probability_of(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    m = {**metrics(0.009), "periods_per_year": 252.0}
    m["model"][C.CAGR] = 0.0123
    view.set_metrics(m, look=LOOK)
    assert view.evidence_label.isVisibleTo(view)
    text = view.evidence_label.text()
    assert text.startswith(f"PSR {LOOK.psr:.2f}: the probability that the model's true Sharpe "
                           "ratio is above 0, judged from 4 test returns")
    assert (f"Deflated Sharpe {LOOK.dsr:.2f}: the probability that it is above "
            f"{LOOK.expected_max_sharpe:.4f} per bar") in text
    assert ("4 looks at zero-skill strategies would show by luck (test split seen 4 times "
            "on this data)") in text
    assert "Probabilistic Sharpe ratio" in view.evidence_label.toolTip()
    assert "test split seen 4 times on this data" in view.table.item(0, 0).toolTip()
    assert "CAGR +1.23% a year (annualised with P = 252 bars per year)" in (
        view.table.item(0, 2).toolTip())
    first = evidence([0.01, 0.03, -0.01, 0.01], count=1)
    view.set_metrics(m, look=first)
    assert "first look at this test split" in view.evidence_label.text()
    view.set_metrics(m)
    assert not view.evidence_label.isVisibleTo(view)
    assert "seen" not in view.table.item(0, 0).toolTip()


def test_the_reveal_button_asks_for_test_then_validation(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    assert not view.reveal_button.isEnabled()
    view.set_reveal(showing_test=False, enabled=True)
    with qtbot.waitSignal(view.reveal_requested):
        view.reveal_button.click()
    view.set_reveal(showing_test=True, enabled=True)
    assert view.reveal_button.text() == "Back to validation"
    with qtbot.waitSignal(view.validation_requested):
        view.reveal_button.click()
    view.set_reveal(showing_test=False, enabled=False, why_not="train a model first")
    assert "not now: train a model first" in view.reveal_button.toolTip()


def test_bar_sizes_come_from_the_spacing():
    from sandbox.ui.wording import bar_name

    assert bar_name(pd.bdate_range("2020-01-01", periods=30)) == "day"
    assert bar_name(pd.date_range("2020-01-01", periods=30, freq="h")) == "hour"
    assert bar_name(pd.date_range("2020-01-01", periods=30, freq="MS")) == "month"
    assert bar_name(pd.date_range("2020-01-01", periods=30, freq="15min")) == "15-minute bar"
    assert bar_name(pd.DatetimeIndex(np.array(["2020-01-01"], dtype="datetime64[ns]"))) == "bar"


def test_split_bounds_find_each_block_of_rows():
    from sandbox.ui.controller import has_test_rows, split_bounds

    labels = ["train"] * 3 + ["val"] * 2 + ["test"]
    predictions = pd.DataFrame({C.SPLIT: np.asarray(labels, dtype=object)},
                               index=pd.bdate_range("2020-01-01", periods=6))
    assert split_bounds(predictions, C.TRAIN) == (0, 3)
    assert split_bounds(predictions, C.VAL) == (3, 5)
    assert split_bounds(predictions, C.TEST) == (5, 6)
    assert has_test_rows(SimpleNamespace(predictions=predictions))
    no_test = predictions.iloc[:5]
    assert split_bounds(no_test, C.TEST) == (5, 5)
    assert not has_test_rows(SimpleNamespace(predictions=no_test))


# ------------------------------------------------------------------ small samples ---------
CAUTION = "returns: figures this small swing widely by chance."


def returns_for(labels: list[str], purged: int = 2) -> list[float]:
    """0.1% on every row but the last ``purged`` of each split (next-open fill: none)."""
    out = [0.001] * len(labels)
    for i in range(len(labels)):
        if i + purged >= len(labels) or labels[i + purged] != labels[i]:
            out[i] = float("nan")
    return out


@pytest.mark.parametrize(("val_rows", "caution"), [
    (61, f"Only 59 validation {CAUTION}"),  # 61 rows, the last two purged
    (62, ""),  # 60 returns
])
def test_a_split_with_fewer_than_60_returns_comes_with_a_caution(val_rows, caution):
    labels = ["train"] * 10 + ["val"] * val_rows + ["test"] * 37
    run = fake_run(labels, returns=returns_for(labels))
    assert plan(run).caution == caution
    assert plan(run, LOOK).caution == f"Only 35 test {CAUTION}"
    split = {"train_end": "2012-01-13T00:00:00", "val_start": "2012-01-16T00:00:00",
             "test_start": "2013-01-01T00:00:00", "last_bar": "2013-12-31T00:00:00"}
    saved = fake_run(labels, returns=returns_for(labels), trained_split=split)
    assert plan(saved, LOOK).caution == f"Only 35 out-of-sample {CAUTION}"
    assert plan(fake_run(["train"] * 4 + ["val"] * 3, returns=[float("nan")] * 7)).caution == (
        "No validation returns: there is nothing to measure here.")


def test_the_caution_ends_the_shown_caption(qtbot):
    labels = ["train"] * 10 + ["val"] * 37 + ["test"] * 70
    run = fake_run(labels, returns=returns_for(labels))
    m = {**metrics(0.009), "split": "val"}
    run.metrics_by_split = {C.VAL: m, C.TEST: {**m, "split": "test"}}
    run.config.model = SimpleNamespace(kind="lstm")
    run.is_ensemble, run.failed = False, {}
    view = MetricsView()
    qtbot.addWidget(view)
    view.show_run(run)
    assert view.caption.text().startswith("Validation split (")
    assert view.caption.text().endswith(f"is counted. Only 35 validation {CAUTION}")
    view.show_run(run, LOOK)
    assert "Only" not in view.caption.text()  # 68 test returns


# ------------------------------------------------------------------ other data -------------
SAVED_SPLIT = {"train_end": "2012-01-05T00:00:00", "val_start": "2012-01-06T00:00:00",
               "test_start": "2012-01-10T00:00:00", "last_bar": "2012-01-12T00:00:00"}
GSPC_DAILY = {"label": "GSPC", "source": "sample:GSPC", "sha256": "ab12", "first": "1999-01-04",
              "last": "2012-01-12", "periods_per_year": 252.0}
OTHER = "every figure here is about data it was not trained on."


def test_a_saved_model_on_another_symbol_says_so_first():
    labels = ["train"] * 4 + ["val"] * 2 + ["test"] * 3
    run = fake_run(labels, trained_split=SAVED_SPLIT, trained_data=GSPC_DAILY, label="AAPL")
    before = plan(run).caption
    assert before.startswith(f"A model trained on GSPC, applied to AAPL: {OTHER} The saved "
                             "model's validation period (2012-01-06 .. 2012-01-09, 2 rows): on "
                             "these dates its own data chose which epoch's weights it kept")
    assert "these rows chose" not in before  # it never saw these prices
    assert plan(run, LOOK).caption.startswith(
        f"A model trained on GSPC, applied to AAPL: {OTHER} Out-of-sample rows: the saved "
        "model's test period (2012-01-10 .. 2012-01-12, 3 rows)")
    before_test = fake_run(labels[:6], trained_split=SAVED_SPLIT, trained_data=GSPC_DAILY,
                           label="AAPL")
    assert "every date here lies in its training or validation period" in (
        plan(before_test).caption)


def test_a_saved_model_on_another_bar_size_says_so():
    run = fake_run(["train"] * 4 + ["val"] * 2, trained_split=SAVED_SPLIT,
                   trained_data=GSPC_DAILY, label="GSPC", periods=52.0)
    assert plan(run).caption.startswith(
        f"A model trained on GSPC (daily bars), applied to GSPC (weekly bars): {OTHER}")


@pytest.mark.parametrize("trained_data", [GSPC_DAILY, None])  # None: an older bundle
def test_a_saved_model_on_its_own_data_says_nothing_of_other_data(trained_data):
    run = fake_run(["train"] * 4 + ["val"] * 2 + ["test"] * 3, trained_split=SAVED_SPLIT,
                   trained_data=trained_data, label="gspc")
    caption = plan(run).caption
    assert caption.startswith("The saved model's validation period")
    assert "applied to" not in caption and "these rows chose" in caption
