"""The parallel runner: core counts, seed tasks, records in completion order, one call for all."""

from __future__ import annotations

import functools
import os
import threading

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox import pipeline, runs
from sandbox.config import ModelConfig, RunConfig, TrainConfig
from sandbox.errors import Cancelled, ConfigError
from sandbox.training import TrainHistory


def test_usable_cores_follows_the_affinity_mask():
    expected = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1)
    assert runs.usable_cores() == max(1, expected)
    assert runs.parallel_jobs(1) == 1 and runs.parallel_jobs(0) == 1
    assert runs.parallel_jobs(10_000) == runs.usable_cores()


def test_seed_tasks_vary_only_the_seed_and_use_one_thread():
    base = RunConfig(model=ModelConfig(hidden=8), train=TrainConfig(seed=4, threads=3))
    tasks = runs.seed_tasks(base, 3, first_index=5, config_id="c07", params={"hidden": 8})
    assert [t.index for t in tasks] == [5, 6, 7] and [t.seed for t in tasks] == [4, 5, 6]
    assert [t.label for t in tasks] == ["hidden=8 seed=4", "hidden=8 seed=5", "hidden=8 seed=6"]
    assert all(t.config.train.threads == 1 and t.config.model == base.model for t in tasks)
    assert [t.config.train.seed for t in tasks] == [4, 5, 6]
    assert runs.seed_tasks(base, 1)[0].label == "seed=4"
    with pytest.raises(ConfigError, match="seeds 0"):
        runs.seed_tasks(base, 0)


def _fake_run(config, *, cancel=None, prices=None):
    """Stands in for pipeline.run: a RunResult whose figures name the seed."""
    seed = config.train.seed
    metrics = {C.VAL: {C.MODEL: {C.SHARPE: float(seed)}}, C.TEST: {C.MODEL: {}}}
    frame = pd.DataFrame({C.SPLIT: [C.TEST] * 3, C.STRATEGY_RETURN: [0.01, -0.02, 0.03 * seed]})
    return pipeline.RunResult(
        config=config, data=prices, predictions=frame, baselines={}, metrics=metrics[C.TEST],
        metrics_by_split=metrics, history=TrainHistory(train_loss=[2.0, 1.0],
                                                      val_loss=[3.0, float("nan")], best_epoch=1),
        model=None, feature_state={})


def test_run_all_streams_one_record_per_task():
    tasks = runs.seed_tasks(RunConfig(), 3)
    seen: list[runs.RunRecord] = []
    records = runs.run_all(tasks, prices="p", jobs=1, on_result=seen.append, runner=_fake_run,
                           keep_predictions=True)
    assert records == seen and [r.done for r in records] == [1, 2, 3]
    assert {r.total for r in records} == {3} and [r.seed for r in records] == [0, 1, 2]
    first = records[0]
    assert first.val_metrics == {C.SHARPE: 0.0} and first.val_loss == 3.0  # NaN left out
    assert first.train_losses == (2.0, 1.0) and first.best_epoch == 1
    assert first.test_returns["n"] == 3 and isinstance(first.predictions, pd.DataFrame)


def test_run_all_refuses_bad_jobs_and_a_set_cancel():
    tasks = runs.seed_tasks(RunConfig(), 1)
    with pytest.raises(ConfigError, match="jobs 0"):
        runs.run_all(tasks, prices="p", jobs=0, runner=_fake_run)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        runs.run_all(tasks, prices="p", cancel=cancel, runner=_fake_run)


def _dated_run(config, *, cancel=None, prices=None, periods=None):
    """A RunResult with dated train/val/test rows and a buy-and-hold baseline."""
    dates = pd.bdate_range("2022-01-03", periods=12, name=C.INDEX_NAME)
    split = [C.TRAIN] * 4 + [C.VAL] * 4 + [C.TEST] * 4
    values = np.arange(12, dtype=float) / 100
    frame = pd.DataFrame({C.SPLIT: split, C.ACTUAL_RETURN: values, C.PREDICTED_RETURN: -values,
                          C.POSITION: 1.0, C.STRATEGY_RETURN: values * 2}, index=dates)
    frame.loc[dates[7], C.STRATEGY_RETURN] = np.nan  # purged
    hold = frame.assign(**{C.STRATEGY_RETURN: values * 3})
    val = {C.MODEL: {C.SHARPE: 1.0}}
    if periods is not None:
        val["periods_per_year"] = periods
    metrics = {C.VAL: val, C.TEST: {C.MODEL: {}}}
    return pipeline.RunResult(
        config=config, data=prices, predictions=frame, baselines={C.BUY_AND_HOLD: hold},
        metrics=metrics[C.TEST], metrics_by_split=metrics,
        history=TrainHistory(train_loss=[1.0], val_loss=[1.0], best_epoch=0),
        model=None, feature_state={})


def test_records_carry_the_validation_and_test_rows_as_arrays():
    tasks = runs.seed_tasks(RunConfig(), 1)
    record = runs.run_all(tasks, prices="p", runner=_dated_run)[0]
    val, test = record.val_rows, record.test_rows
    assert isinstance(val, runs.SplitRows) and len(val) == 4 and len(test) == 4
    days = pd.bdate_range("2022-01-03", periods=12)
    assert val.dates.dtype == np.int64 and list(val.dates) == list(days[4:8].as_unit("ns").asi8)
    assert val.predicted.tolist() == [-0.04, -0.05, -0.06, -0.07]
    assert val.actual.tolist() == [0.04, 0.05, 0.06, 0.07]
    assert np.isnan(val.strategy[-1]) and val.usable().tolist() == [True, True, True, False]
    assert test.hold.tolist() == pytest.approx([0.24, 0.27, 0.30, 0.33])
    sub = test.on_dates(days[[9, 11]].as_unit("ns").asi8)
    assert sub.actual.tolist() == [0.09, 0.11] and sub.hold.tolist() == pytest.approx([0.27, 0.33])
    assert record.periods_per_year == 252.0  # inferred from daily dates, as paper trading does
    # what a split's metrics say wins
    runner = functools.partial(_dated_run, periods=365.0)
    assert runs.run_all(tasks, prices="p", runner=runner)[0].periods_per_year == 365.0


def test_a_record_stays_small_to_send_between_processes():
    import pickle

    n = 5_000
    dates = pd.bdate_range("2000-01-03", periods=n, name=C.INDEX_NAME)
    split = np.repeat([C.TRAIN, C.VAL, C.TEST], [3_500, 750, 750])
    frame = pd.DataFrame({C.SPLIT: split, C.ACTUAL_RETURN: 0.0, C.PREDICTED_RETURN: 0.0,
                          C.POSITION: 0.0, C.STRATEGY_RETURN: 0.0}, index=dates)

    def runner(config, *, cancel=None, prices=None):
        result = _dated_run(config, prices=prices)
        result.predictions = frame
        result.baselines = {C.BUY_AND_HOLD: frame}
        return result

    payload = runs._execute(runs.seed_tasks(RunConfig(), 1)[0], "p", runner=runner)
    assert "predictions" not in payload  # frames stay behind unless asked for
    # two splits x 750 rows x 6 arrays of 8 bytes: ~72 kB, not a frame per run
    assert len(pickle.dumps(payload)) < 100_000
