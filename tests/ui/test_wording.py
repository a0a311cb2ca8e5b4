"""What the status bar and the Log tab say: sandbox.ui.wording against hand-written sentences.

No Qt: results, records and loaded prices are plain namespaces with the fields the
sentences read; configs are the real dataclasses.
"""

from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from sandbox import constants as C
from sandbox.config import DataSpec, ModelConfig, RunConfig, StrategyConfig, TrainConfig
from sandbox.errors import DataError, SplitTooSmall
from sandbox.evaluate import KEY_BASELINES
from sandbox.ui import wording

CONFIG = RunConfig(
    data=DataSpec(source="sample:GSPC"),
    model=ModelConfig(kind="gru", window=20, hidden=16, layers=1, dropout=0.0),
    train=TrainConfig(epochs=10, patience=3, batch_size=32, lr=3e-4, seed=7),
    strategy=StrategyConfig(threshold_bps=10.0, cost_bps=5.0),
)
PM = "\u00b1"


def run_result(**metrics: dict) -> SimpleNamespace:
    """A result whose validation split has these metrics (its test split others that the
    status sentences must not read: the app is validation-first)."""
    test = {C.MODEL: {C.RMSE: 9.0, C.TOTAL_RETURN: 9.0, C.SHARPE: 9.0}}
    return SimpleNamespace(config=CONFIG, metrics=test,
                           metrics_by_split={C.VAL: {"split": C.VAL, **metrics}, C.TEST: test})


def test_wording_does_not_import_qt():
    code = "import sys, sandbox.ui.wording; print('PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------------ numbers -------
def test_numbers_read_n_a_unless_finite():
    assert wording.format_number(0.123456) == "0.1235"
    assert wording.format_number(0.123456, 6) == "0.123456"
    assert wording.format_number(12) == "12"
    assert wording.format_number(float("nan")) == "n/a"
    assert wording.format_number(None) == "n/a"
    assert wording.format_number(True) == "n/a"
    assert wording.format_percent(0.0123) == "+1.23%"
    assert wording.format_percent(-0.5) == "-50.00%"
    assert wording.format_percent(math.inf) == "n/a"
    assert wording.strategy_text(CONFIG.strategy) == (
        "long/flat, threshold 10 bps, cost 5 bps, fill at next open")


# ------------------------------------------------------------------------ data ----------
def test_loaded_prices_are_described_with_their_span_and_cache():
    frame = pd.DataFrame({"close": [1.0, 2.0, 3.0]},
                         index=pd.to_datetime(["2020-01-02", "2020-01-03", "2021-12-31"]))
    fresh = SimpleNamespace(label="GSPC", frame=frame, from_cache=False, cached_at=None)
    assert wording.loaded_text(fresh) == "GSPC: 3 bars, 2020-01-02 .. 2021-12-31"
    assert wording.loaded_source(fresh) == "GSPC \u00b7 3 bars"
    cached = SimpleNamespace(label="AAPL", frame=frame, from_cache=True,
                             cached_at="2024-05-06T07:08:09")
    assert wording.loaded_text(cached) == ("AAPL: 3 bars, 2020-01-02 .. 2021-12-31\n"
                                           "cached data from 2024-05-06 07:08 (the download "
                                           "failed)")
    assert wording.loaded_source(cached) == ("AAPL \u00b7 3 bars \u00b7 cached data from "
                                             "2024-05-06 07:08")
    assert wording.loading_text(DataSpec(source="yahoo:AAPL")) == "downloading AAPL..."
    assert wording.loading_text(DataSpec(source="sample:GSPC")) == "loading GSPC..."


# ------------------------------------------------------------------------ failures ------
@pytest.mark.parametrize(("split", "fix"), [
    (C.TEST, "an earlier Test from date in the Data box"),
    (C.VAL, "an earlier Validation from date in the Data box"),
    (C.TRAIN, "a later Validation from date in the Data box"),
])
def test_a_too_small_split_names_the_app_s_controls_not_the_flags(split, fix):
    error = SplitTooSmall("GSPC", split, 0, 20, 145, 156, 2)
    word = {C.TEST: "test", C.VAL: "validation", C.TRAIN: "training"}[split]
    unit = "rows to fit on" if split == C.TRAIN else "usable returns"
    assert wording.failure_text(error) == wording.split_too_small_text(error) == (
        f"GSPC: with a 145-bar window on 156 bars the {word} split has 0 {unit} (2 rows; "
        f"need 20): use a shorter Window in the Model box, {fix}, or load more data")
    assert "--" not in wording.failure_text(error)


def test_other_failures_keep_their_own_message():
    error = DataError("prices.csv: row 7: high below the close")
    assert wording.failure_text(error) == "prices.csv: row 7: high below the close"


# ------------------------------------------------------------------------ training ------
def test_a_run_starting_says_its_settings():
    assert wording.settings_text(CONFIG) == (
        "gru window=20 hidden=16 layers=1 dropout=0 epochs=10 patience=3 batch=32 lr=0.0003")
    assert wording.run_started_status(CONFIG) == (
        "Training GRU (window 20, hidden 16, 1 layer(s)) for up to 10 epochs...")
    assert wording.run_started_log(CONFIG, "GSPC") == (
        "training gru window=20 hidden=16 layers=1 dropout=0 epochs=10 patience=3 batch=32 "
        "lr=0.0003 seed=7 on GSPC")
    assert wording.ensemble_started_status(CONFIG, 4, 2) == (
        "Training 4 GRU models (seeds 7..10) in 2 worker process(es); each shows up as it "
        "finishes...")
    assert wording.ensemble_started_log(CONFIG, 4, 2, "GSPC") == (
        "training a 4-seed ensemble: gru window=20 hidden=16 layers=1 dropout=0 epochs=10 "
        "patience=3 batch=32 lr=0.0003 seeds=7..10 in 2 process(es), 1 torch thread each, "
        "on GSPC")


def test_batches_and_epochs_show_losses_speed_and_eta():
    assert wording.batch_status(1.5, 0.012345, 1234.4, 10, 75.0) == (
        "epoch 2/10  batch loss 0.01235  1,234 samples/s  ETA 1:15")
    last = {"train_loss": 0.5, "val_loss": 0.25}
    assert wording.batch_status(2.25, 0.1, 10.0, 10, float("nan"), last) == (
        "epoch 3/10  batch loss 0.1  train 0.5  val 0.25  10 samples/s  ETA 0:00")
    info = {"epoch": 3, "epochs": 10, "train_loss": 0.123456, "val_loss": 0.2,
            "best_val_loss": 0.2, "samples_per_s": 2500.0, "eta_s": 3725.0}
    assert wording.epoch_status(info) == (
        "epoch 3/10  train 0.1235  val 0.2  2,500 samples/s  ETA 1:02:05")
    assert wording.epoch_log(info) == (
        "epoch 3/10: train 0.12346, val 0.2 (best), 2,500 samples/s")
    assert wording.epoch_log({**info, "best_val_loss": 0.1}) == (
        "epoch 3/10: train 0.12346, val 0.2, 2,500 samples/s")


def test_a_trained_run_is_compared_with_the_best_baseline_on_validation():
    history = SimpleNamespace(epochs_run=4, stopped_early=True, best_val_loss=0.000123456,
                              best_epoch=2)
    assert wording.trained_log(history, 12.34) == (
        "trained 4 epoch(s) (early stop) in 12.3 s; best validation loss 0.00012346 at "
        "epoch 2")
    result = run_result(**{C.MODEL: {C.RMSE: 0.0123, C.TOTAL_RETURN: 0.05},
                           KEY_BASELINES: {C.RANDOM_WALK: {C.RMSE: 0.0121},
                                           C.DRIFT: {C.RMSE: 0.0120}}})
    assert wording.trained_status(result, 61.0) == (
        "Trained in 1:01: validation RMSE 0.012300 vs drift 0.012000 (the best baseline); "
        "total return +5.00% after costs.")
    assert wording.trained_status(run_result(), 1.0) == (
        "Trained in 0:01: validation RMSE n/a vs the best baseline n/a; total return n/a "
        "after costs.")


def test_an_ensemble_reports_members_and_mean_and_spread():
    ok = SimpleNamespace(seed=3, error=None, seconds=4.25, val_loss=0.5, best_epoch=2,
                         val_metrics={C.RMSE: 0.01}, test_metrics={C.RMSE: 9.0})
    assert wording.member_log(ok) == (
        "seed 3 trained in 4.2 s: best validation loss 0.5 at epoch 2; validation RMSE "
        "0.010000")
    failed = SimpleNamespace(seed=4, error="loss is NaN")
    assert wording.member_log(failed) == "seed 4 failed: loss is NaN"

    result = SimpleNamespace(
        n_seeds=3, failed={5: "loss is NaN"},
        stats={C.VAL: {C.RMSE: {"mean": 0.0125, "std": 0.0005},
                       C.TOTAL_RETURN: {"mean": -0.02, "std": 0.01}},
               C.TEST: {C.RMSE: {"mean": 9.0, "std": 9.0},
                        C.TOTAL_RETURN: {"mean": 9.0, "std": 9.0}}},
        metrics_by_split={C.VAL: {KEY_BASELINES: {C.RANDOM_WALK: {C.RMSE: 0.012},
                                                  C.MOMENTUM: {C.RMSE: 0.013}}}})
    assert wording.ensemble_log(result, 30.0) == (
        "trained a 3-seed ensemble in 30.0 s; seed 5 failed: loss is NaN")
    assert wording.ensemble_status(result, 30.0) == (
        f"Trained 3 seeds in 0:30: validation RMSE 0.012500 {PM} 0.000500 vs the random walk "
        f"0.012000 (the best baseline); total return -2.00% {PM} 1.00% after costs; 1 seed(s) "
        "failed (see the Log).")
    result.failed = {}
    assert wording.ensemble_status(result, 30.0).endswith("after costs.")


def test_a_stopped_training_says_how_far_it_got():
    assert wording.stopped_after(1, 0, None) == ""
    assert wording.stopped_after(1, 0, {"epoch": 3.0}) == " after epoch 3"
    assert wording.stopped_after(4, 2, {"epoch": 3.0}) == " after 2 seed(s)"


# ------------------------------------------------------------------------ shown runs ----
def test_retrades_models_and_sweep_configurations_in_words():
    result = run_result(**{C.MODEL: {C.TOTAL_RETURN: 0.1, C.SHARPE: 1.23456}})
    assert wording.retraded_log(result) == (
        "re-traded (long/flat, threshold 10 bps, cost 5 bps, fill at next open): validation "
        "total return +10.00%, sharpe 1.235")
    assert wording.retraded_status(result) == (
        "Paper trading updated: long/flat, threshold 10 bps, cost 5 bps, fill at next open; "
        "model total return +10.00% on validation.")
    loaded = SimpleNamespace(config=CONFIG, data=SimpleNamespace(label="GOOG"))
    assert wording.model_loaded_log(loaded, "/m") == (
        "predicted GOOG with the model saved in /m (no training); rows are labelled by the "
        "dates the model was trained with: train and val rows were seen in training, test "
        "rows are out of sample")
    assert wording.model_loaded_status(loaded, "/m") == (
        "Predictions from the saved GRU model in /m.")
    opened = SimpleNamespace(seeds=[0, 1], n_seeds=2, test_hidden=True)
    assert wording.sweep_opened_log(opened, "c03") == (
        "opened sweep configuration c03 (seeds 0, 1); the side panel now holds its settings")
    assert wording.sweep_opened_status(opened, "c03") == (
        "Showing sweep configuration c03: 2 seed(s) averaged; validation only: its test split "
        "stays hidden because another configuration was selected.")
    opened.test_hidden = False
    assert wording.sweep_opened_status(opened, "c03") == (
        "Showing sweep configuration c03: 2 seed(s) averaged.")


# ------------------------------------------------------------------------ the test split --
def test_the_best_baseline_is_the_lowest_rmse_and_ties_keep_the_first_name():
    m = {KEY_BASELINES: {C.RANDOM_WALK: {C.RMSE: 0.02}, C.MOMENTUM: {C.RMSE: 0.03},
                         C.DRIFT: {C.RMSE: 0.019}, C.BUY_AND_HOLD: {C.TOTAL_RETURN: 0.1}}}
    assert wording.best_baseline(m, C.RMSE, lower=True) == (C.DRIFT, 0.019)
    m[KEY_BASELINES][C.DRIFT][C.RMSE] = 0.02
    assert wording.best_baseline(m, C.RMSE, lower=True) == (C.RANDOM_WALK, 0.02)
    m[KEY_BASELINES][C.DRIFT][C.TOTAL_RETURN] = 0.1
    m[KEY_BASELINES][C.MOMENTUM][C.TOTAL_RETURN] = float("nan")
    assert wording.best_baseline(m, C.TOTAL_RETURN, lower=False,
                                 names=wording.TRADING_BASELINES) == (C.BUY_AND_HOLD, 0.1)
    assert wording.best_baseline({}, C.RMSE, lower=True) is None


def test_looks_and_why_the_test_split_cannot_be_shown():
    assert wording.look_text(1) == "test split seen once on this data"
    assert wording.look_text(2) == "test split seen twice on this data"
    assert wording.look_text(1234) == "test split seen 1,234 times on this data"

    def why(**state):
        return wording.why_no_test(**{"has_result": True, "test_hidden": False,
                                      "has_test_rows": True, "training": False,
                                      "task": False, **state})

    assert why() == ""
    assert why(has_result=False) == "train a model first"
    assert "not the one selected on validation" in why(test_hidden=True)
    assert why(has_test_rows=False) == "this data has no out-of-sample rows for the model"
    assert why(training=True) == "training is running"
    assert why(task=True) == "wait for the export or other task to finish"


def test_periods_text_names_the_bars_per_year():
    assert wording.periods_text(252.0) == "annualised with P = 252 bars per year"
    assert wording.periods_text(6240.0) == "annualised with P = 6,240 bars per year"
    assert wording.periods_text(None) == (
        "annualised with the bars per year measured from the data's spacing")


# ------------------------------------------------------------------------ sweeps --------
def test_a_sweep_in_words():
    grid = {"hidden": [8, 16], "lr": [0.001]}
    assert wording.sweep_started_status(4, grid, 2, 3) == (
        "Sweep: 4 runs (hidden=8,16 lr=0.001, 2 seed(s)) in 3 process(es)...")
    assert wording.sweep_started_log(4, grid, 2, 3, "GSPC") == (
        "sweep started: 4 runs, grid hidden=8,16 lr=0.001, 2 seed(s) per configuration, "
        "3 process(es), on GSPC")
    record = SimpleNamespace(done=2, total=4, config_id="c01", label="hidden=8", error=None,
                             val_loss=0.25, val_metrics={C.RMSE: 0.0125, C.SHARPE: 0.5},
                             seconds=3.04)
    # the RMSE of the predicted return, not the loss: losses of configurations differ in kind
    assert wording.sweep_run_log(record) == (
        "sweep run 2/4 c01 hidden=8: val rmse 0.0125, val sharpe 0.5 (3.0 s)")
    record.error = "loss is NaN"
    assert wording.sweep_run_log(record) == (
        "sweep run 2/4 c01 hidden=8: failed: loss is NaN (3.0 s)")
    assert wording.sweep_done_status({"selected": {"config_id": "c02"}}, 90.0) == (
        "Sweep finished in 1:30; c02 selected on validation. Open it to see it on the chart.")
    assert wording.sweep_done_status({"selected": None}, 5.0) == (
        "Sweep finished in 0:05; no run finished.")


def test_why_a_sweep_cannot_start():
    def why(**state):
        return wording.why_no_sweep(**{"has_data": True, "training": False, "loading": False,
                                       "task": False, "form_error": None, **state})

    assert why() == ""
    assert why(has_data=False, training=True) == "load data first"
    assert why(training=True, loading=True) == "training is running"
    assert why(loading=True) == "data is loading"
    assert why(task=True) == "wait for the export or other task to finish"
    assert why(form_error="window 0: too short") == "fix the side panel: window 0: too short"


# ------------------------------------------------------------ tests of significance -----
def _sig(**over) -> dict:
    sig = {"split": C.VAL, "level": 0.95, "reps": 1000, "block_length": 1,
           "rows": {"forecast": 120, "direction": 118, "trading": 119},
           "dm": {C.RANDOM_WALK: {"mse": {"statistic": 1.9, "pvalue": 0.06,
                                          "pvalue_better": 0.97}}}}
    return {**sig, **over}


def test_p_values_read_as_in_the_cli_verdict():
    assert wording.p_text(0.4149) == "0.41"
    assert wording.p_text(0.0074) == "0.007"
    assert wording.p_text(0.0004) == "< 0.001"
    assert wording.p_text(None) == "n/a"
    assert wording.p_text(float("nan")) == "n/a"


def test_the_dm_cell_says_better_or_worse_only_when_significant():
    sig = _sig()
    assert wording.dm_cell(sig, C.RANDOM_WALK) == "0.06"  # worse, but not at 5%
    assert wording.dm_phrase(sig, C.RANDOM_WALK) == (
        "Diebold-Mariano p = 0.06, two-sided: the difference could well be luck")
    sig["dm"][C.RANDOM_WALK]["mse"] = {"statistic": -1.8, "pvalue": 0.074,
                                       "pvalue_better": 0.037}
    # better on the one-sided test, as sandbox.significance.verdict reads it
    assert wording.dm_cell(sig, C.RANDOM_WALK) == "0.07 better"
    assert wording.dm_phrase(sig, C.RANDOM_WALK) == (
        "Diebold-Mariano p = 0.04, one-sided: the model's errors are significantly smaller")
    sig["dm"][C.RANDOM_WALK]["mse"] = {"statistic": 3.0, "pvalue": 0.003,
                                       "pvalue_better": 0.998}
    assert wording.dm_cell(sig, C.RANDOM_WALK) == "0.003 worse"
    # no test: the same errors on every row
    sig["dm"][C.RANDOM_WALK]["mse"] = {"statistic": None, "pvalue": None, "pvalue_better": None}
    assert wording.dm_cell(sig, C.RANDOM_WALK) == "n/a"
    assert wording.dm_phrase(sig, C.RANDOM_WALK) is None
    assert "equal the random walk's on every row" in wording.dm_tip(sig, C.RANDOM_WALK)
    assert wording.dm_cell(sig, C.MOMENTUM) == "n/a"  # missing: no test, no crash


def test_only_a_split_s_own_tests_with_rows_count():
    assert wording.significance_of({"split": C.VAL, C.SIGNIFICANCE: _sig()}) is not None
    assert wording.significance_of({"split": C.TEST, C.SIGNIFICANCE: _sig()}) is None
    assert wording.significance_of({"split": C.VAL}) is None  # saved before the tests
    no_rows = _sig(rows={"forecast": 0, "direction": 0, "trading": 0})
    assert wording.significance_of({"split": C.VAL, C.SIGNIFICANCE: no_rows}) is None
    assert wording.tests_text(None, where="the validation split") == ""


def test_intervals_and_the_cost_line_in_words():
    assert wording.interval_text([0.1234, 0.5], lambda x: f"{x:.2f}") == "[0.12, 0.50]"
    assert wording.interval_text(None, str) == ""
    assert wording.interval_text([0.1, None], str) == ""
    costs = {"costs_bps": [0.0, 1.0, 2.0], "total_return": [0.03, 0.02, 0.01],
             "buy_and_hold_total_return": [0.03, 0.03, 0.03], "run_cost_bps": 2.0,
             "break_even_bps": 3.0, "break_even_vs_buy_and_hold_bps": None}
    assert wording.cost_text(costs) == (
        "Break-even cost 3.0 bps, beyond the 2 bps drawn: there the model's net total return "
        "falls to 0; at zero cost it earns what buy & hold earns. This run trades at 2 bps a "
        "unit of position change.")
    costs["buy_and_hold_total_return"] = [0.05] * 3
    assert "it trails buy & hold even at zero cost" in wording.cost_text(costs)
    assert wording.cost_text(None) == ""
