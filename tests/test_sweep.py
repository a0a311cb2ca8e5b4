"""Sweeps: grid parsing, expansion, streaming, failures, honest selection, DSR, cancel, Dask."""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox import evaluate, pipeline, runs, stats, sweep
from sandbox.cli import main
from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig
from sandbox.errors import Cancelled, ConfigError, NetworkError, TrainingError
from sandbox.training import TrainHistory

# ~600 daily bars of the bundled S&P 500 sample: small and fast
SLICE_START = "2016-08-01"
TINY = RunConfig(
    data=DataSpec(source=f"{C.SOURCE_SAMPLE}:GSPC", start=SLICE_START),
    model=ModelConfig(window=10, hidden=4, layers=1, dropout=0.0),
    train=TrainConfig(epochs=2, patience=0, batch_size=64, seed=0),
)
TINY_FLAGS = ["--sample", "GSPC", "--start", SLICE_START, "--window", "10", "--hidden", "4",
              "--layers", "1", "--dropout", "0", "--epochs", "2"]


# --- a fake runner: fast, deterministic, and able to fail on demand ----------------------------

#: the fake runs' rows: 100 train, 100 validation, 100 test business days
FAKE_DATES = pd.bdate_range("2020-01-01", periods=300, name=C.INDEX_NAME)
FAKE_SPLITS = np.repeat([C.TRAIN, C.VAL, C.TEST], 100)


def fake_run(config, *, cancel=None, prices=None):
    """Stands in for pipeline.run: forecast errors (so val RMSE) grow with hidden; positions
    follow the strategy's threshold, so a threshold re-trades the same forecasts."""
    if config.train.lr > 1:
        raise TrainingError("training loss became NaN at epoch 1: lower the learning rate")
    if config.model.hidden == 13:
        raise ZeroDivisionError("unexpected")
    end = time.perf_counter() + 0.02 * config.train.epochs
    while time.perf_counter() < end:
        if cancel is not None and cancel.is_set():
            raise Cancelled("run cancelled")
        time.sleep(0.005)
    rng = np.random.default_rng(config.train.seed * 1000 + config.model.hidden)
    h = config.model.hidden
    actual = np.random.default_rng(7).normal(0.0005, 0.01, len(FAKE_DATES))  # same for all
    predicted = actual + rng.normal(0, 0.002 * h, len(FAKE_DATES))
    position = (predicted > config.strategy.threshold_bps / 1e4).astype(float)
    strategy = position * actual
    strategy[[199, 299]] = np.nan  # purged: the last validation row, the last row
    metrics = {
        C.VAL: {C.MODEL: {C.RMSE: 0.01 * h, C.TOTAL_RETURN: 0.1, C.SHARPE: 1.0 - h / 100}},
        C.TEST: {C.MODEL: {C.RMSE: 0.01, C.TOTAL_RETURN: h / 100, C.SHARPE: h / 10},
                 evaluate.KEY_BASELINES: {C.BUY_AND_HOLD: {C.TOTAL_RETURN: 0.05, C.SHARPE: 0.5}}},
    }
    val_loss = 1.0 + h / 100 + float(rng.normal(0, 1e-3))
    predictions = pd.DataFrame({
        C.SPLIT: FAKE_SPLITS, C.ACTUAL_RETURN: actual, C.PREDICTED_RETURN: predicted,
        C.POSITION: position, C.STRATEGY_RETURN: strategy}, index=FAKE_DATES)
    hold = predictions.assign(**{C.POSITION: 1.0, C.STRATEGY_RETURN: actual})
    return pipeline.RunResult(
        config=config, data=prices, predictions=predictions,
        baselines={C.BUY_AND_HOLD: hold}, metrics=metrics[C.TEST], metrics_by_split=metrics,
        history=TrainHistory(val_loss=[val_loss + 0.1, val_loss], best_epoch=1),
        model=None, feature_state={})


# --- grid parsing ----------------------------------------------------------------------------


def test_parse_grid_types_and_cli_spellings():
    grid = sweep.parse_grid("model=lstm,gru hidden=16,64 window=20,60 lr=1e-3 batch-size=32 "
                            "threshold-bps=0,5 strategy=long_short loss=mse,huber")
    assert grid == {"kind": ["lstm", "gru"], "hidden": [16, 64], "window": [20, 60],
                    "lr": [0.001], "batch_size": [32], "threshold_bps": [0.0, 5.0],
                    "strategy": [C.LONG_SHORT], "loss": ["mse", "huber"]}
    assert isinstance(grid["hidden"][0], int) and isinstance(grid["threshold_bps"][0], float)
    assert sweep.parse_grid("") == {}  # the base configuration alone: a seed ensemble


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("depth=3", "unknown parameter 'depth'"),
        ("hidden=", "empty value list"),
        ("hidden=16,,64", "empty value list"),
        ("hidden=abc", "hidden value 'abc' is not a whole number"),
        ("lr=fast", "lr value 'fast' is not a number"),
        ("hidden=1.5", "not a whole number"),
        ("hidden=16 hidden=64", "'hidden' is given twice"),
        ("model=lstm kind=gru", "'kind' is given twice"),
        ("hidden=16,16", "value '16' is given twice"),
        ("seed=1,2", "--seeds"),
        ("threads=2", "threads are fixed at 1"),
        ("model=cnn", "model 'cnn'"),
        ("window=1", "window 1"),
        ("hidden16", "expected NAME=VALUE1,VALUE2"),
        ("cost_bps=0,5", "--cost-bps"),
        ("cost-bps=5", "only re-trade the same trained models"),
        ("fill=close,next_open", "--fill"),
        ("hidden=4 fill=close", "cost-sensitivity"),
        ("periods_per_year=252,365", "--periods-per-year"),
    ],
)
def test_parse_grid_refuses_bad_parts(text, words):
    with pytest.raises(ConfigError) as exc:
        sweep.parse_grid(text)
    assert words in str(exc.value)
    assert "grid part" in str(exc.value)


def test_expansion_count_seeds_and_threads():
    grid = sweep.parse_grid("model=lstm,gru hidden=16,64 window=20,60 lr=1e-3")
    base = RunConfig(train=TrainConfig(seed=7, threads=3))
    tasks = sweep.expand_grid(base, grid, seeds=3)
    assert len(tasks) == 2 * 2 * 2 * 1 * 3
    assert len({t.config_id for t in tasks}) == 8
    assert [t.seed for t in tasks[:3]] == [7, 8, 9]
    assert all(t.config.train.threads == 1 for t in tasks)
    first = tasks[0].config
    assert (first.model.kind, first.model.hidden, first.model.window, first.train.lr) == (
        C.LSTM, 16, 20, 1e-3)
    last = tasks[-1].config
    assert (last.model.kind, last.model.hidden, last.model.window) == (C.GRU, 64, 60)
    assert sweep.format_params(tasks[-1].params, tasks[-1].seed) == (
        "network=gru hidden=64 window=60 lr=0.001 seed=9")


def test_labels_use_the_forms_names_and_ids_and_keys_stay(tmp_path):
    """A label says ``network=gru`` as the Sweep form and the side panel do; the config ids,
    ``params`` and the sweep.csv columns keep the config's field name (``kind``)."""
    import json

    grid = sweep.parse_grid("network=lstm,gru hidden=4")
    assert grid == sweep.parse_grid("model=lstm,gru hidden=4") == {
        "kind": ["lstm", "gru"], "hidden": [4]}
    tasks = sweep.expand_grid(RunConfig(), grid, seeds=2)
    assert [t.label for t in tasks] == [
        "network=lstm hidden=4 seed=0", "network=lstm hidden=4 seed=1",
        "network=gru hidden=4 seed=0", "network=gru hidden=4 seed=1"]
    assert [t.config_id for t in tasks] == ["c01", "c01", "c02", "c02"]
    result = sweep.run_sweep(RunConfig(train=TrainConfig(epochs=1)), grid, seeds=1, jobs=1,
                             prices="p", _runner=fake_run)
    assert [r.label for r in result.records] == ["network=lstm hidden=4 seed=0",
                                                 "network=gru hidden=4 seed=0"]
    paths = sweep.write_sweep(result, tmp_path)
    back = pd.read_csv(paths["runs"])
    assert list(back["label"]) == ["network=lstm hidden=4 seed=0", "network=gru hidden=4 seed=0"]
    assert list(back["kind"]) == ["lstm", "gru"] and "network" not in back.columns
    summary = json.loads(paths["summary"].read_text())
    assert [(c["config_id"], c["label"], c["params"]) for c in summary["configs"]] == [
        ("c01", "network=lstm hidden=4", {"kind": "lstm", "hidden": 4}),
        ("c02", "network=gru hidden=4", {"kind": "gru", "hidden": 4})]
    assert summary["selected"]["label"].startswith("network=")
    assert [c["label"] for c in summary[sweep.TEST_FOR_REFERENCE]] == [
        "network=lstm hidden=4", "network=gru hidden=4"]


# --- selection -------------------------------------------------------------------------------

DAYS = pd.bdate_range("2021-01-04", periods=60, name=C.INDEX_NAME)
ACTUAL = np.random.default_rng(11).normal(0.0, 0.01, len(DAYS))


def _split_rows(days, errors, *, strategy=None, hold=None):
    """SplitRows on ``days`` (a slice of DAYS) whose predictions miss by ``errors``."""
    idx = DAYS.get_indexer(days)
    actual = ACTUAL[idx]
    errors = np.broadcast_to(np.asarray(errors, dtype=float), actual.shape)
    position = np.ones(len(idx))
    strat = actual.copy() if strategy is None else np.asarray(strategy, dtype=float)
    return runs.SplitRows(dates=days.as_unit("ns").asi8, predicted=actual + errors,
                          actual=actual, position=position, strategy=strat,
                          hold=None if hold is None else np.asarray(hold, dtype=float))


def _rec(cid, seed, val_loss, val_sharpe, test_sharpe, error=None, *, params=None,
         val_errors=0.01, test_errors=0.01, val_days=DAYS[20:40], test_days=DAYS[40:],
         val_strategy=None, test_strategy=None):
    params = {"hidden": int(cid[1:])} if params is None else params
    if error:
        return runs.RunRecord(
            done=0, total=0, label=f"{cid} seed={seed}", config_id=cid, seed=seed,
            params=params, error=error, val_loss=None, val_metrics={},
            test_metrics={}, seconds=1.0)
    return runs.RunRecord(
        done=0, total=0, label=f"{cid} seed={seed}", config_id=cid, seed=seed,
        params=params, error=error, val_loss=val_loss,
        val_metrics={C.SHARPE: val_sharpe, C.TOTAL_RETURN: 0.0},
        test_metrics={C.SHARPE: test_sharpe, C.TOTAL_RETURN: test_sharpe / 10}, seconds=1.0,
        test_returns={"n": 100, "sharpe_per_bar": test_sharpe / 16, "skewness": 0.0,
                      "kurtosis": 3.0},
        val_rows=_split_rows(val_days, val_errors, strategy=val_strategy),
        test_rows=_split_rows(test_days, test_errors, strategy=test_strategy),
        periods_per_year=252.0,
    )


def _rmse(errors) -> float:
    return math.sqrt(float(np.mean(np.square(errors))))


def test_selection_uses_validation_only():
    records = [
        _rec("c1", 0, 1.00, 0.5, -2.0, val_errors=0.010, test_errors=0.05),  # best validation
        _rec("c1", 1, 1.02, 0.7, -1.0, val_errors=0.012, test_errors=0.05),
        _rec("c2", 0, 1.10, 2.0, 5.0, val_errors=0.02, test_errors=0.001),  # best test: not chosen
        _rec("c2", 1, 1.20, 2.0, 6.0, val_errors=0.02, test_errors=0.001),
        _rec("c3", 0, 0.50, 3.0, 9.0, val_errors=0.001),
        _rec("c3", 1, None, None, None, error="NaN loss"),
    ]
    s = sweep.summarize(records)
    assert s["selected_by"] == "val_rmse" and "validation RMSE" in s["selection_rule"]
    assert s["selected"]["config_id"] == "c1"  # c3 had a failed seed, c2 only wins on test
    # mean over seeds of each seed's RMSE (constant errors: the RMSE is the error)
    assert s["selected"]["val"][C.RMSE]["mean"] == pytest.approx(0.011)
    assert s["selected"]["val"][C.RMSE]["std"] == pytest.approx(math.sqrt(2e-6))
    assert s["selected"]["val"]["loss"]["mean"] == pytest.approx(1.01)  # kept, not ranked on
    assert s["selected"]["test"][C.RMSE]["mean"] == pytest.approx(0.05)
    assert s["n_trials"] == 3 and s["n_failed"] == 1  # three trained configurations
    # every configuration's test figures live only in the labelled reference section
    ref = {r["config_id"]: r for r in s[sweep.TEST_FOR_REFERENCE]}
    assert ref["c2"]["test"][C.RMSE]["mean"] == pytest.approx(0.001)
    assert all("test" not in c and C.TEST not in c["val"] for c in s["configs"])


def test_a_lower_huber_loss_does_not_beat_a_lower_rmse():
    # Huber is about half of MSE on the same errors: c02's loss is lower, its RMSE higher
    records = [
        _rec("c01", 0, 1.00, 0.5, 0.0, params={"loss": "mse"}, val_errors=0.010),
        _rec("c01", 1, 1.02, 0.5, 0.0, params={"loss": "mse"}, val_errors=0.011),
        _rec("c02", 0, 0.50, 0.5, 0.0, params={"loss": "huber"}, val_errors=0.012),
        _rec("c02", 1, 0.52, 0.5, 0.0, params={"loss": "huber"}, val_errors=0.013),
    ]
    s = sweep.summarize(records)
    assert s["selected"]["params"] == {"loss": "mse"}
    by_id = {c["config_id"]: c for c in s["configs"]}
    assert by_id["c02"]["val"]["loss"]["mean"] < by_id["c01"]["val"]["loss"]["mean"]
    assert by_id["c02"]["val"][C.RMSE]["mean"] == pytest.approx(0.0125)


def test_a_window_axis_is_scored_on_the_validation_dates_every_configuration_has():
    # window 60 moves the split: its validation rows start and end 5 days later. On its own
    # rows c01 looks better (tiny errors on the 5 days only it has); on the common days c02
    # is better. The own-rows figures (val loss, val_metrics) would pick c01.
    early, late = DAYS[20:40], DAYS[25:45]
    c01_errors = np.r_[np.full(5, 1e-4), np.full(15, 0.010)]
    c02_errors = np.r_[np.full(15, 0.008), np.full(5, 0.1)]
    records = [
        _rec("c01", 0, 0.9, 0.5, 0.0, params={"window": 10}, val_days=early,
             val_errors=c01_errors, test_days=DAYS[40:]),
        _rec("c02", 0, 1.0, 0.5, 0.0, params={"window": 60}, val_days=late,
             val_errors=c02_errors, test_days=DAYS[45:]),
    ]
    assert _rmse(c01_errors) < _rmse(c02_errors)
    s = sweep.summarize(records)
    assert s["common_dates"][C.VAL] == {"first": DAYS[25].date().isoformat(),
                                        "last": DAYS[39].date().isoformat(), "n": 15}
    assert s["selected"]["params"] == {"window": 60}
    by_id = {c["config_id"]: c for c in s["configs"]}
    assert by_id["c01"]["val"][C.RMSE]["mean"] == pytest.approx(0.010)
    assert by_id["c02"]["val"][C.RMSE]["mean"] == pytest.approx(0.008)
    # the test figures: on the test dates both have (c02's, the later start)
    assert s["common_dates"][C.TEST]["n"] == 15
    assert s["selected"]["test"]["n_returns"]["mean"] == 15
    frame = sweep.runs_frame(records)
    assert frame["val_common_rmse"].tolist() == pytest.approx([0.010, 0.008])


def test_purged_rows_leave_the_common_dates():
    strategy = ACTUAL[20:40].copy()
    strategy[-2:] = np.nan  # the last two validation rows trade on the next split's opens
    records = [_rec("c1", 0, 1.0, 0.5, 0.0, val_strategy=strategy),
               _rec("c2", 0, 1.0, 0.5, 0.0)]
    s = sweep.summarize(records)
    assert s["common_dates"][C.VAL]["n"] == 18
    assert s["common_dates"][C.VAL]["last"] == DAYS[37].date().isoformat()


def test_a_run_without_a_usable_row_does_not_empty_the_common_dates():
    broken = _rec("c2", 0, 1.0, 0.5, 0.0, val_errors=np.nan)  # no finite prediction
    s = sweep.summarize([_rec("c1", 0, 1.0, 0.5, 0.0), broken])
    assert s["common_dates"][C.VAL]["n"] == 20
    assert s["selected"]["config_id"] == "c1"


def test_selection_ties_go_to_higher_validation_sharpe():
    up = np.abs(ACTUAL[20:40]) + 0.001  # a better validation P&L on the same forecasts
    records = [_rec("c1", 0, 1.0, 0.2, 0.0), _rec("c2", 0, 1.0, 0.9, 0.0, val_strategy=up)]
    assert sweep.summarize(records)["selected"]["config_id"] == "c2"


def test_deflated_sharpe_counts_distinct_trained_configurations():
    # 2 hidden x 2 thresholds x 3 seeds: 12 runs, 4 configurations, 2 trained models
    grid = sweep.parse_grid("hidden=4,8 threshold_bps=0,10")
    result = sweep.run_sweep(RunConfig(train=TrainConfig(epochs=1)), grid, seeds=3, jobs=1,
                             prices="p", _runner=fake_run)
    s = result.summary
    assert s["n_runs"] == 12 and s["n_configs"] == 4 and s["n_trials"] == 2
    assert [c["trial_id"] for c in s["configs"]] == ["t01", "t01", "t02", "t02"]
    by_id = {c["config_id"]: c for c in s["configs"]}
    # the same forecasts: same RMSE; the threshold re-trades them
    assert by_id["c01"]["val"][C.RMSE] == by_id["c02"]["val"][C.RMSE]
    assert by_id["c01"]["val"][C.SHARPE] != by_id["c02"]["val"][C.SHARPE]
    d = s["deflated_sharpe"]
    assert d["split"] == C.VAL and d["n_trials"] == 2
    assert "allowing for 2 configurations tried" in d["probability_of"]
    sel = s["selected"]
    assert sel["params"]["hidden"] == 4
    # the trials' Sharpe ratios: per trained model, the variant the rule takes (the higher
    # validation Sharpe of its re-trades), seed-averaged, per bar, on the common dates
    per_bar = {cid: c["val"]["sharpe_per_bar"]["mean"] for cid, c in by_id.items()}
    trial = [max(per_bar[a], per_bar[b]) for a, b in (("c01", "c02"), ("c03", "c04"))]
    assert d["trials_sharpe_variance"] == pytest.approx(np.var(trial, ddof=1), rel=1e-12)
    assert d["sharpe_per_bar"] == pytest.approx(trial[0])
    n_val = s["common_dates"][C.VAL]["n"]
    assert n_val == 99  # the purged last validation row is left out
    assert d["n_returns"] == n_val
    expected = stats.deflated_sharpe_ratio(
        d["sharpe_per_bar"], n_obs=n_val, n_trials=2, variance=d["trials_sharpe_variance"],
        skewness=d["skewness"], kurtosis=d["kurtosis"])
    assert d["dsr"] == pytest.approx(expected, rel=1e-12)
    p = s["test_psr"]
    assert p["split"] == C.TEST and p["n_trials"] == 1 and p["benchmark_sharpe_per_bar"] == 0
    assert p["n_returns"] == s["common_dates"][C.TEST]["n"] == 99
    assert p["psr"] == pytest.approx(stats.probabilistic_sharpe_ratio(
        p["sharpe_per_bar"], n_obs=99, skewness=p["skewness"], kurtosis=p["kurtosis"]))
    # per seed: the seed's own Sharpe ratio on the common dates, then the mean over seeds
    seeds = [r for r in result.records if r.config_id == sel["config_id"]]
    per_seed = [sweep.run_figures(r, C.TEST, FAKE_DATES[200:299].as_unit("ns").asi8)
                for r in seeds]
    assert p["sharpe_per_bar"] == pytest.approx(np.mean([f["sharpe_per_bar"] for f in per_seed]))
    bh = sel["test_buy_and_hold"][C.TOTAL_RETURN]["mean"]
    assert bh == pytest.approx(np.prod(1 + np.random.default_rng(7).normal(
        0.0005, 0.01, 300)[200:299]) - 1)


def test_one_configuration_is_one_trial_and_its_dsr_is_the_psr():
    result = sweep.run_sweep(RunConfig(train=TrainConfig(epochs=1)), {}, seeds=3, jobs=1,
                             prices="p", _runner=fake_run)
    s = result.summary
    assert s["n_trials"] == 1
    d = s["deflated_sharpe"]
    assert d["expected_max_sharpe_per_bar"] == 0.0 and d["trials_sharpe_variance"] == 0.0
    assert d["dsr"] == pytest.approx(stats.probabilistic_sharpe_ratio(
        d["sharpe_per_bar"], n_obs=d["n_returns"], skewness=d["skewness"],
        kurtosis=d["kurtosis"]), rel=1e-12)
    assert "allowing for 1 configuration tried" in d["probability_of"]


def test_no_common_validation_dates_selects_nothing():
    records = [_rec("c1", 0, 1.0, 0.5, 0.0, val_days=DAYS[0:10]),
               _rec("c2", 0, 1.0, 0.5, 0.0, val_days=DAYS[10:20])]
    s = sweep.summarize(records)
    assert s["selected"] is None and "no validation date is common" in s["selection_note"]
    assert s["deflated_sharpe"] is None


# --- running ---------------------------------------------------------------------------------


def test_streaming_order_total_and_failed_runs_in_process():
    seen: list[runs.RunRecord] = []
    grid = sweep.parse_grid("hidden=4,8,13 lr=1e-3,1e3")
    result = sweep.run_sweep(RunConfig(train=TrainConfig(epochs=1)), grid, seeds=2, jobs=1,
                             prices="prices", on_result=seen.append, _runner=fake_run)
    assert [r.done for r in seen] == list(range(1, 13))
    assert {r.total for r in seen} == {12}
    failed = [r for r in seen if r.error]
    assert len(failed) == 8  # lr=1e3 (NaN) for every hidden, and hidden=13 (a bug) for both lrs
    assert any("NaN" in r.error for r in failed)
    assert any(r.error == "ZeroDivisionError: unexpected" for r in failed)
    assert len(result.runs) == 12 and list(result.runs["status"]).count("failed") == 8
    assert result.summary["selected"]["params"] == {"hidden": 4, "lr": 0.001}
    assert result.summary["n_trials"] == 2  # (hidden=4 and 8, lr=1e-3): the rest all failed


def test_local_workers_stream_every_run_once():
    seen: list[runs.RunRecord] = []
    grid = sweep.parse_grid("hidden=4,8 lr=1e-3,1e3")
    result = sweep.run_sweep(RunConfig(train=TrainConfig(epochs=5)), grid, seeds=2, jobs=2,
                             prices="prices", on_result=seen.append, _runner=fake_run)
    assert [r.done for r in seen] == list(range(1, 9))
    assert sorted((r.config_id, r.seed) for r in seen) == sorted(
        (f"c{i}", s) for i in ("01", "02", "03", "04") for s in (0, 1))
    assert list(result.runs["config_id"]) == ["c01", "c01", "c02", "c02", "c03", "c03",
                                              "c04", "c04"]
    assert (result.runs["status"] == "failed").sum() == 4


def dying_run(config, cancel=None, prices=None):
    """A run whose worker process dies (as when the system kills it for memory)."""
    import os

    os._exit(3)


def test_a_worker_process_that_dies_is_a_clear_training_error():
    from sandbox.errors import TrainingError

    with pytest.raises(TrainingError, match="worker process ended unexpectedly"):
        sweep.run_sweep(RunConfig(train=TrainConfig(epochs=1)), {}, seeds=2, jobs=2,
                        prices="p", _runner=dying_run)


def test_seed_ensemble_keeps_predictions_on_request():
    seen: list[runs.RunRecord] = []
    sweep.run_sweep(RunConfig(train=TrainConfig(epochs=1)), {}, seeds=3, jobs=1, prices="p",
                    keep_predictions=True, on_result=seen.append, _runner=fake_run)
    assert [r.seed for r in seen] == [0, 1, 2] and {r.label for r in seen} == {
        "seed=0", "seed=1", "seed=2"}
    assert all(isinstance(r.predictions, pd.DataFrame) and len(r.predictions) == 300
               for r in seen)
    assert not seen[0].predictions.equals(seen[1].predictions)  # seeds differ


def test_write_and_describe(tmp_path):
    result = sweep.run_sweep(RunConfig(train=TrainConfig(epochs=1)), {"hidden": [4, 8]},
                             seeds=2, jobs=1, prices="p", _runner=fake_run)
    paths = sweep.write_sweep(result, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [sweep.SUMMARY_JSON, sweep.SWEEP_CSV]
    back = pd.read_csv(paths["runs"])
    assert len(back) == 4 and back["val_loss"].tolist() == result.runs["val_loss"].tolist()
    import json

    summary = json.loads(paths["summary"].read_text())
    assert summary["selected"]["label"] == "hidden=4"
    assert summary["n_trials"] == 2 and sweep.TEST_FOR_REFERENCE in summary
    assert summary["selected_by"] == "val_rmse"
    assert set(summary["common_dates"]) == {C.VAL, C.TEST}
    assert {"val_common_rmse", "val_common_sharpe"} <= set(back.columns)
    text = "\n".join(sweep.describe(result))
    assert "hidden=4" in text and "trials: 2" in text and "by val_rmse" in text
    assert ("DSR" in text and "probability that the selected configuration's true "
            "validation Sharpe ratio is above 0, allowing for 2 configurations tried") in text
    assert "PSR" in text and "true test Sharpe ratio is above 0" in text


# --- the real pipeline -----------------------------------------------------------------------


def test_real_sweep_records_a_nan_run_and_goes_on():
    seen: list[runs.RunRecord] = []
    result = sweep.run_sweep(TINY, sweep.parse_grid("lr=1e-3,1e30"), seeds=1, jobs=2,
                             on_result=seen.append)
    by_lr = {r.params["lr"]: r for r in seen}
    assert by_lr[1e-3].error is None and math.isfinite(by_lr[1e-3].val_loss)
    assert by_lr[1e-3].test_metrics[C.SHARPE] is not None
    assert by_lr[1e30].error and "diverged" in by_lr[1e30].error  # loss inf: TrainingError
    assert result.summary["selected"]["params"] == {"lr": 1e-3}


def test_real_window_axis_selects_on_the_common_validation_dates():
    result = sweep.run_sweep(TINY, sweep.parse_grid("window=10,30"), seeds=1, jobs=2)
    s = result.summary
    own = {r.params["window"]: r.val_rows for r in result.records}
    assert all(r.error is None for r in result.records)
    # window 30 starts its rows 20 bars later, so its fractional splits move
    assert own[10].dates[0] < own[30].dates[0]
    usable = [rows.dates[rows.usable()] for rows in own.values()]
    common = np.intersect1d(*usable)
    assert s["common_dates"][C.VAL]["n"] == common.size < min(u.size for u in usable)
    assert s["common_dates"][C.VAL]["first"] == str(pd.Timestamp(common[0]).date())
    for c in s["configs"]:  # every configuration scored on exactly those rows
        assert c["val"]["n_returns"]["mean"] == common.size
    assert s["deflated_sharpe"]["n_returns"] == common.size
    assert s["selected_by"] == "val_rmse" and s["n_trials"] == 2


def test_dask_cluster_gives_the_local_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    grid = sweep.parse_grid("model=gru,lstm")
    local = sweep.run_sweep(TINY, grid, seeds=2, jobs=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", protocol="tcp",
                                  dashboard_address=":0",
                                  local_directory=str(tmp_path)) as cluster:
        remote = sweep.run_sweep(TINY, grid, seeds=2, scheduler=cluster.scheduler_address)
    cols = [c for c in local.runs.columns if c != "seconds"]
    pd.testing.assert_frame_equal(local.runs[cols], remote.runs[cols])
    assert local.runs["status"].eq("ok").all()


def test_unreachable_scheduler_is_a_network_error_within_10_s():
    pytest.importorskip("distributed")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(NetworkError, match="could not reach the Dask scheduler at"):
        sweep.run_sweep(TINY, {}, seeds=1, scheduler=f"tcp://127.0.0.1:{port}", prices="p")
    assert time.perf_counter() - started < 10


# --- the command line ------------------------------------------------------------------------


def test_cli_jobs_0_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", *TINY_FLAGS, "--grid", "hidden=4", "--jobs", "0",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--jobs 0" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_bad_grid_exits_2(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", "--grid", "hidden=abc", "--out", str(out)]) == 2
    assert "hidden=abc" in capsys.readouterr().err
    assert not out.exists()


def test_cli_refuses_a_grid_over_costs_with_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", *TINY_FLAGS, "--grid", "cost_bps=0,5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "cost_bps=0,5" in err and "--cost-bps" in err and "cost-sensitivity" in err
    assert not out.exists()


def test_cli_sweep_writes_csv_and_summary(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", *TINY_FLAGS, "--grid", "hidden=4,6", "--seeds", "2", "--jobs", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "selected on validation" in printed and "deflated Sharpe" in printed
    runs = pd.read_csv(out / sweep.SWEEP_CSV)
    assert len(runs) == 4 and set(runs["hidden"]) == {4, 6}
    import json

    summary = json.loads((out / sweep.SUMMARY_JSON).read_text(encoding="utf-8"))
    assert summary["selected_by"] == "val_rmse" and summary["n_trials"] == 2
    assert summary["common_dates"][C.VAL]["n"] > 0 and summary["common_dates"][C.TEST]["n"] > 0
    assert summary["deflated_sharpe"]["split"] == C.VAL
    assert 0 <= summary["deflated_sharpe"]["dsr"] <= 1
    assert 0 <= summary["test_psr"]["psr"] <= 1
    spa = summary["spa"]  # the best of the configurations against buy and hold, on validation
    assert spa["split"] == C.VAL and spa["benchmark"] == C.BUY_AND_HOLD
    assert spa["candidates"] == 2 and spa["rows"] == summary["common_dates"][C.VAL]["n"]
    assert 0 <= spa["pvalue_consistent"] <= 1 and "configurations against buy and hold" in printed
    assert "DSR" in printed and "PSR" in printed
    # the selected configuration's test figures were shown: one look, counted like train's
    from sandbox import export, looks
    from sandbox.config import DataSpec
    from sandbox.data import load_prices

    fp = export.fingerprint(load_prices(DataSpec(source="sample:GSPC", start=SLICE_START)).frame)
    assert looks.look_count(fp) == 1
    assert "test split seen once on this data" in printed


# --- cancelling (last: it kills the worker processes) ---------------------------------------


def test_cancel_before_and_during_a_sweep():
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        sweep.run_sweep(RunConfig(), {}, seeds=2, jobs=2, prices="p", cancel=cancel,
                        _runner=fake_run)
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    started = time.perf_counter()
    with pytest.raises(Cancelled):  # runs of ~10 s each: only a kill ends this quickly
        sweep.run_sweep(RunConfig(train=TrainConfig(epochs=500)), {"hidden": [4, 8]}, seeds=2,
                        jobs=2, prices="p", cancel=cancel, _runner=fake_run)
    assert time.perf_counter() - started < 5


def test_cli_ctrl_c_exits_130_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        code = main(["sweep", *TINY_FLAGS, "--epochs", "400", "--patience", "0",
                     "--grid", "hidden=4,5", "--seeds", "2", "--jobs", "2", "--out", str(out)])
    finally:
        timer.cancel()
    assert code == 130
    assert "cancelled" in capsys.readouterr().err
    assert not out.exists()
