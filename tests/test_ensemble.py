"""Seed ensembles: members equal single runs, averaging, band, stats, retrade, failures, cancel.

Real training uses a tiny LSTM (window 10, hidden 4, one layer, two epochs) on ~600
daily bars of the bundled S&P 500 sample; everything else is built from synthetic member
forecasts on the rows :func:`sandbox.ensemble.baseline_frames` gives, so the expected figures
are computed here with numpy, :mod:`sandbox.backtest` and :mod:`sandbox.evaluate` directly.
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox import ensemble, evaluate, pipeline, runs
from sandbox.backtest import positions_from_predictions
from sandbox.config import DataSpec, ModelConfig, RunConfig, StrategyConfig, TrainConfig
from sandbox.data import load_prices
from sandbox.errors import Cancelled, ConfigError, TrainingError

# ~600 daily bars of the bundled sample (offline): small and fast
SLICE_START = "2016-08-01"
BASE_SEED = 3  # not 0, so "base seed + k" cannot pass as "k"
CONFIG = RunConfig(
    data=DataSpec(source=f"{C.SOURCE_SAMPLE}:GSPC", start=SLICE_START),
    model=ModelConfig(window=10, hidden=4, layers=1, dropout=0.0),
    # threads=None: the ensemble must force one thread per member itself
    train=TrainConfig(epochs=2, patience=0, batch_size=256, seed=BASE_SEED, threads=None),
    strategy=StrategyConfig(cost_bps=5.0),
)
SEEDS = [BASE_SEED, BASE_SEED + 1]
OTHER_STRATEGY = StrategyConfig(strategy=C.LONG_SHORT, threshold_bps=5.0, fill=C.FILL_CLOSE,
                                cost_bps=1.0)


def single_config(config: RunConfig, seed: int) -> RunConfig:
    return config.replace(train=config.train.replace(seed=seed, threads=1))


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prices():
    return load_prices(CONFIG.data, min_rows=CONFIG.model.window + 5)


@pytest.fixture(scope="module")
def trained(prices):
    """A real two-seed ensemble (in process) and the member records ``on_member`` saw."""
    seen: list[runs.RunRecord] = []
    result = ensemble.run_ensemble(CONFIG, seeds=2, jobs=1, prices=prices,
                                   on_member=seen.append)
    return result, seen


@pytest.fixture(scope="module")
def singles(prices):
    """``pipeline.run`` of each member's configuration (seed base + k, one thread)."""
    return {seed: pipeline.run(single_config(CONFIG, seed), prices=prices) for seed in SEEDS}


@pytest.fixture(scope="module")
def rows(prices):
    """The rows (and their split, close, actual return) a model of CONFIG predicts."""
    frames, target = ensemble.baseline_frames(CONFIG, prices)
    assert target == C.TARGET_RETURN
    return frames[C.RANDOM_WALK]


def member_frame(rows: pd.DataFrame, predicted: np.ndarray) -> pd.DataFrame:
    return evaluate.predictor_frame(rows.index, rows[C.SPLIT].to_numpy(),
                                    rows[C.CLOSE].to_numpy(), rows[C.ACTUAL_RETURN].to_numpy(),
                                    predicted)


@pytest.fixture(scope="module")
def synthetic(rows):
    """Three members with different forecasts (seeds 10, 11, 12), untraded."""
    rng = np.random.default_rng(20240601)
    return {seed: member_frame(rows, rng.normal(0.0003, 0.01, len(rows)))
            for seed in (12, 10, 11)}  # not in order: the ensemble sorts its seeds


@pytest.fixture(scope="module")
def synthetic_result(prices, synthetic):
    return ensemble.from_members(CONFIG, prices, synthetic)


def fmin_fmax(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column min and max ignoring NaN (NaN where a whole column is NaN), no warnings."""
    return np.fmin.reduce(stack, axis=0), np.fmax.reduce(stack, axis=0)


def record(seed: int, *, predictions=None, error=None, epochs: int = 2) -> runs.RunRecord:
    ok = error is None
    return runs.RunRecord(
        done=1, total=3, label=f"seed={seed}", config_id="c01", seed=seed, params={},
        error=error, val_loss=0.5 if ok else None, val_metrics={}, test_metrics={},
        seconds=0.1, predictions=predictions,
        train_losses=tuple(1.0 + seed + e / 10 for e in range(epochs)) if ok else (),
        val_losses=tuple(2.0 + seed + e / 10 for e in range(epochs)) if ok else (),
    )


# --- 1. members are the single runs -------------------------------------------------------------


def test_members_are_bit_identical_to_single_runs(trained, singles):
    result, _ = trained
    assert result.seeds == SEEDS and result.n_seeds == 2
    assert sorted(result.members) == SEEDS and result.failed == {}
    for seed in SEEDS:
        single = singles[seed]
        member = result.members[seed]
        assert member.index.equals(single.predictions.index)
        np.testing.assert_array_equal(member[C.PREDICTED_RETURN].to_numpy(),
                                      single.predictions[C.PREDICTED_RETURN].to_numpy())
        # traded by the same strategy: the whole frame and every split's figures agree
        pd.testing.assert_frame_equal(member, single.predictions, check_exact=True)
        assert result.member_metrics[seed][C.TEST][C.MODEL] == single.metrics[C.MODEL]
        for split in C.SPLITS:
            assert (result.member_metrics[seed][split][C.MODEL]
                    == single.metrics_by_split[split][C.MODEL])
    # the seeds really differ, so the comparison above could tell them apart
    assert not np.array_equal(result.members[SEEDS[0]][C.PREDICTED_RETURN],
                              result.members[SEEDS[1]][C.PREDICTED_RETURN])


def test_real_ensemble_shape_and_baselines(trained, singles, prices):
    result, _ = trained
    p = result.predictions
    assert [p.index.name, *p.columns] == list(C.PREDICTION_COLUMNS)
    assert result.model is None and result.data is prices and result.config == CONFIG
    assert result.metrics is result.metrics_by_split[C.TEST]
    assert result.metrics[evaluate.KEY_TARGET] == C.TARGET_RETURN
    expected_mean = (singles[SEEDS[0]].predictions[C.PREDICTED_RETURN].to_numpy()
                     + singles[SEEDS[1]].predictions[C.PREDICTED_RETURN].to_numpy()) / 2
    np.testing.assert_allclose(p[C.PREDICTED_RETURN].to_numpy(), expected_mean,
                               rtol=1e-14, atol=0)
    single = singles[SEEDS[0]]
    assert set(result.baselines) == set(C.BASELINES)
    for name in C.BASELINES:
        pd.testing.assert_frame_equal(result.baselines[name], single.baselines[name])
        for split in C.SPLITS:
            assert (result.metrics_by_split[split][evaluate.KEY_BASELINES][name]
                    == single.metrics_by_split[split][evaluate.KEY_BASELINES][name])


# --- 8. on_member and histories -----------------------------------------------------------------


def test_on_member_sees_each_seed_once_with_its_loss_curves(trained, singles):
    result, seen = trained
    assert sorted(r.seed for r in seen) == SEEDS
    assert [r.done for r in seen] == [1, 2] and {r.total for r in seen} == {2}
    for r in seen:
        assert r.error is None and isinstance(r.predictions, pd.DataFrame)
        history = singles[r.seed].history
        assert history.epochs_run == CONFIG.train.epochs  # patience 0: no early stop
        assert len(r.train_losses) == len(r.val_losses) == history.epochs_run
        assert list(r.train_losses) == history.train_loss
        assert list(r.val_losses) == history.val_loss
        assert r.config["train"]["threads"] == 1 and r.config["train"]["seed"] == r.seed
        assert result.histories[r.seed] == {"train_loss": list(r.train_losses),
                                            "val_loss": list(r.val_losses)}
    assert sorted(result.histories) == SEEDS


# --- 2. worker processes -------------------------------------------------------------------------


def test_worker_processes_give_the_in_process_members(prices, monkeypatch):
    backends: list[tuple[str, int]] = []
    real_loky, real_sequential = runs._run_loky, runs._run_sequential

    def loky(jobs, tasks, *args, **kwargs):
        backends.append(("loky", jobs))
        return real_loky(jobs, tasks, *args, **kwargs)

    def sequential(tasks, *args, **kwargs):
        backends.append(("sequential", 1))
        return real_sequential(tasks, *args, **kwargs)

    monkeypatch.setattr(runs, "_run_loky", loky)
    monkeypatch.setattr(runs, "_run_sequential", sequential)
    config = CONFIG.replace(train=CONFIG.train.replace(epochs=1))
    local = ensemble.run_ensemble(config, seeds=2, jobs=1, prices=prices)
    seen: list[runs.RunRecord] = []
    workers = ensemble.run_ensemble(config, seeds=2, jobs=2, prices=prices,
                                    on_member=seen.append)
    assert backends == [("sequential", 1), ("loky", 2)]  # really two worker processes
    assert sorted(r.seed for r in seen) == SEEDS
    assert workers.seeds == local.seeds == SEEDS
    for seed in SEEDS:
        pd.testing.assert_frame_equal(workers.members[seed], local.members[seed],
                                      check_exact=True)
        assert workers.member_metrics[seed] == local.member_metrics[seed]
        assert workers.histories[seed] == local.histories[seed]
        assert len(workers.histories[seed]["train_loss"]) == 1
    pd.testing.assert_frame_equal(workers.predictions, local.predictions, check_exact=True)
    pd.testing.assert_frame_equal(workers.band, local.band, check_exact=True)
    assert workers.stats == local.stats


# --- 3. from_members on synthetic members ----------------------------------------------------


def test_averaged_forecast_is_the_member_mean(synthetic_result, synthetic, rows):
    r = synthetic_result
    assert r.seeds == [10, 11, 12]
    stack = np.vstack([synthetic[s][C.PREDICTED_RETURN].to_numpy() for s in (10, 11, 12)])
    p = r.predictions
    assert p.index.equals(rows.index)
    np.testing.assert_allclose(p[C.PREDICTED_RETURN].to_numpy(), np.mean(stack, axis=0),
                               rtol=1e-14, atol=0)
    for col in (C.SPLIT, C.CLOSE, C.ACTUAL_RETURN):
        np.testing.assert_array_equal(p[col].to_numpy(), rows[col].to_numpy())
    # the members keep their own forecasts, and the inputs are not traded in place
    for seed, frame in synthetic.items():
        np.testing.assert_array_equal(r.members[seed][C.PREDICTED_RETURN],
                                      frame[C.PREDICTED_RETURN])
        assert frame[C.POSITION].isna().all() and frame[C.EQUITY].isna().all()


def test_members_are_traded_like_single_forecasts(synthetic_result, synthetic, prices):
    r = synthetic_result
    for seed, frame in synthetic.items():
        traded, trading = evaluate.paper_trade(prices.frame, frame, CONFIG.strategy)
        pd.testing.assert_frame_equal(r.members[seed], traded, check_exact=True)
        for split in C.SPLITS:
            model = r.member_metrics[seed][split][C.MODEL]
            for key, value in trading[split].items():
                assert model[key] == value, (seed, split, key)
            rows = frame[frame[C.SPLIT] == split].dropna(subset=[C.ACTUAL_RETURN])
            err = rows[C.PREDICTED_RETURN] - rows[C.ACTUAL_RETURN]
            assert model[C.RMSE] == pytest.approx(math.sqrt(np.mean(err**2)), rel=1e-12)


def test_band_is_the_per_row_min_and_max_over_members(synthetic_result, synthetic, prices):
    r = synthetic_result
    seeds = sorted(synthetic)
    close = synthetic[seeds[0]][C.CLOSE].to_numpy()
    predicted_close = np.vstack([close * np.exp(synthetic[s][C.PREDICTED_RETURN].to_numpy())
                                 for s in seeds])
    equity = np.vstack([evaluate.paper_trade(prices.frame, synthetic[s], CONFIG.strategy)[0]
                        [C.EQUITY].to_numpy() for s in seeds])
    band = r.band
    assert band.index.equals(r.predictions.index)
    assert list(band.columns) == [ensemble.BAND_PREDICTED_LOW, ensemble.BAND_PREDICTED_HIGH,
                                  ensemble.BAND_EQUITY_LOW, ensemble.BAND_EQUITY_HIGH]
    lo, hi = predicted_close.min(axis=0), predicted_close.max(axis=0)
    np.testing.assert_allclose(band[ensemble.BAND_PREDICTED_LOW], lo, rtol=1e-14, atol=0)
    np.testing.assert_allclose(band[ensemble.BAND_PREDICTED_HIGH], hi, rtol=1e-14, atol=0)
    assert (lo < hi).all()  # three different forecasts: a band of non-zero width
    eq_lo, eq_hi = fmin_fmax(equity)
    np.testing.assert_array_equal(band[ensemble.BAND_EQUITY_LOW].to_numpy(), eq_lo)
    np.testing.assert_array_equal(band[ensemble.BAND_EQUITY_HIGH].to_numpy(), eq_hi)
    # the last two bars of every split have no return there (next_open fill: purged, or no
    # later prices at all): no equity for anyone, NaN in the band
    labels = r.predictions[C.SPLIT].to_numpy()
    empty = np.zeros(len(labels), dtype=bool)
    for split in C.SPLITS:
        empty[np.flatnonzero(labels == split)[-2:]] = True
    np.testing.assert_array_equal(np.isnan(eq_lo), empty)


def test_stats_are_mean_and_sample_std_of_member_metrics(synthetic_result):
    r = synthetic_result
    assert set(r.stats) == set(C.SPLITS)
    for split in C.SPLITS:
        assert set(r.stats[split]) == set(ensemble.STAT_KEYS)
        for key in ensemble.STAT_KEYS:
            values = [r.member_metrics[s][split][C.MODEL][key] for s in r.seeds]
            assert all(v is not None and math.isfinite(v) for v in values), (split, key)
            got = r.stats[split][key]
            assert got["n"] == 3
            assert got["mean"] == pytest.approx(np.mean(values), rel=1e-12, abs=1e-15)
            assert got["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-9, abs=1e-15)
    # not a degenerate case: the members disagree on the test split
    assert r.stats[C.TEST][C.TOTAL_RETURN]["std"] > 0


def test_stats_leave_out_missing_values(prices, rows, synthetic):
    # an all-zero forecast calls no direction: its directional accuracy is None
    members = {1: synthetic[10], 2: synthetic[11], 3: member_frame(rows, np.zeros(len(rows)))}
    r = ensemble.from_members(CONFIG, prices, members)
    assert r.member_metrics[3][C.TEST][C.MODEL][C.DIRECTIONAL_ACCURACY] is None
    da = r.stats[C.TEST][C.DIRECTIONAL_ACCURACY]
    values = [r.member_metrics[s][C.TEST][C.MODEL][C.DIRECTIONAL_ACCURACY] for s in (1, 2)]
    assert da["n"] == 2
    assert da["mean"] == pytest.approx(np.mean(values), rel=1e-12)
    assert da["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert r.stats[C.TEST][C.RMSE]["n"] == 3


def test_member_stats_by_hand():
    mm = {
        0: {C.TEST: {C.MODEL: {C.SHARPE: 1.0, C.N_TRADES: 4, C.RMSE: float("nan")}}},
        1: {C.TEST: {C.MODEL: {C.SHARPE: 2.0, C.N_TRADES: 6, C.RMSE: 0.5}}},
        2: {C.TEST: {C.MODEL: {C.SHARPE: 4.0, C.N_TRADES: 8, C.RMSE: None}}},
    }
    s = ensemble.member_stats(mm)
    assert s[C.TEST][C.SHARPE]["mean"] == pytest.approx(7 / 3)
    assert s[C.TEST][C.SHARPE]["std"] == pytest.approx(math.sqrt(((4 / 3) ** 2 + (1 / 3) ** 2
                                                                   + (5 / 3) ** 2) / 2))
    assert s[C.TEST][C.N_TRADES] == {"mean": 6.0, "std": 2.0, "n": 3}
    assert s[C.TEST][C.RMSE] == {"mean": 0.5, "std": None, "n": 1}  # NaN and None left out
    assert s[C.TRAIN][C.SHARPE] == {"mean": None, "std": None, "n": 0}  # no train metrics


def test_a_single_member_has_no_std(prices, synthetic):
    r = ensemble.from_members(CONFIG, prices, {10: synthetic[10]})
    assert r.seeds == [10] and r.n_seeds == 1
    for split in C.SPLITS:
        for key in ensemble.STAT_KEYS:
            got = r.stats[split][key]
            assert got["std"] is None and got["n"] == 1
            assert got["mean"] == pytest.approx(r.member_metrics[10][split][C.MODEL][key])
    # one member: the averaged forecast is that member, and the band has zero width
    pd.testing.assert_frame_equal(r.predictions, r.members[10], check_exact=True)
    np.testing.assert_array_equal(r.band[ensemble.BAND_EQUITY_LOW],
                                  r.band[ensemble.BAND_EQUITY_HIGH])
    np.testing.assert_array_equal(r.band[ensemble.BAND_PREDICTED_LOW],
                                  r.band[ensemble.BAND_PREDICTED_HIGH])


def test_baselines_are_those_of_a_single_run(synthetic_result, singles):
    r = synthetic_result
    single = singles[BASE_SEED]
    assert set(r.baselines) == set(C.BASELINES)
    for name in C.BASELINES:
        np.testing.assert_array_equal(r.baselines[name][C.PREDICTED_RETURN].to_numpy(),
                                      single.baselines[name][C.PREDICTED_RETURN].to_numpy())
        pd.testing.assert_frame_equal(r.baselines[name], single.baselines[name],
                                      check_exact=True)
    base = r.metrics[evaluate.KEY_BASELINES]
    single_base = single.metrics[evaluate.KEY_BASELINES]
    assert base[C.BUY_AND_HOLD] == single_base[C.BUY_AND_HOLD]
    assert base[C.RANDOM_WALK] == single_base[C.RANDOM_WALK]
    assert base == single_base
    assert base[C.BUY_AND_HOLD][C.EXPOSURE] == 1.0 and base[C.RANDOM_WALK][C.N_TRADES] == 0


def test_a_missing_forecast_gives_no_average_on_that_row(prices, rows, synthetic):
    holed = synthetic[11][C.PREDICTED_RETURN].to_numpy().copy()
    holed[[0, 5]] = np.nan  # two training rows without a forecast from one member
    members = {10: synthetic[10], 11: member_frame(rows, holed)}
    r = ensemble.from_members(CONFIG, prices, members)
    p = r.predictions
    assert np.isnan(p[C.PREDICTED_RETURN].iloc[[0, 5]]).all()
    assert (p[C.POSITION].iloc[[0, 5]] == 0).all()  # no forecast: flat
    expected = (synthetic[10][C.PREDICTED_RETURN].to_numpy() + holed) / 2
    np.testing.assert_allclose(p[C.PREDICTED_RETURN].to_numpy(), expected, rtol=1e-14,
                               atol=0, equal_nan=True)
    # the band uses the members that do have a forecast on that row
    close = rows[C.CLOSE].to_numpy()
    only = close[[0, 5]] * np.exp(synthetic[10][C.PREDICTED_RETURN].to_numpy()[[0, 5]])
    np.testing.assert_allclose(r.band[ensemble.BAND_PREDICTED_LOW].iloc[[0, 5]], only,
                               rtol=1e-14)
    np.testing.assert_allclose(r.band[ensemble.BAND_PREDICTED_HIGH].iloc[[0, 5]], only,
                               rtol=1e-14)


# --- 4. the averaged forecast is traded by the strategy rule ---------------------------------


def _check_positions_follow_rule(frame: pd.DataFrame, strategy: StrategyConfig) -> None:
    pred = frame[C.PREDICTED_RETURN].to_numpy()
    pos = frame[C.POSITION].to_numpy()
    th = strategy.threshold_bps / 10_000
    expected = (pred > th).astype(float)
    if strategy.strategy == C.LONG_SHORT:
        expected -= (pred < -th).astype(float)
    np.testing.assert_array_equal(pos, expected)
    by_helper = positions_from_predictions(frame[C.PREDICTED_RETURN],
                                           strategy=strategy.strategy,
                                           threshold_bps=strategy.threshold_bps)
    np.testing.assert_array_equal(pos, by_helper.to_numpy())


def test_averaged_forecast_positions_follow_long_flat(synthetic_result):
    p = synthetic_result.predictions
    np.testing.assert_array_equal(p[C.POSITION].to_numpy(),
                                  np.where(p[C.PREDICTED_RETURN].to_numpy() > 0, 1.0, 0.0))
    _check_positions_follow_rule(p, CONFIG.strategy)
    assert set(np.unique(p[C.POSITION])) == {0.0, 1.0}


def test_averaged_forecast_pnl_is_its_own_paper_trade(synthetic_result, prices):
    r = synthetic_result
    p = r.predictions
    for split in C.SPLITS:
        rows = p[p[C.SPLIT] == split]
        ret = rows[C.STRATEGY_RETURN].dropna()
        # a fresh account per split: equity is the running product of (1 + return)
        np.testing.assert_allclose(rows[C.EQUITY].dropna(), np.cumprod(1 + ret), rtol=1e-12)
        model = r.metrics_by_split[split][C.MODEL]
        assert model[C.TOTAL_RETURN] == pytest.approx(rows[C.EQUITY].dropna().iloc[-1] - 1,
                                                      rel=1e-12, abs=1e-15)
        changes = np.abs(np.diff(np.r_[0.0, rows[C.POSITION].to_numpy()[: len(ret)]]))
        assert model[C.N_TRADES] == int(np.count_nonzero(changes))
    untraded = p.drop(columns=[C.POSITION, C.STRATEGY_RETURN, C.EQUITY])
    frame = untraded.assign(**{c: np.nan for c in (C.POSITION, C.STRATEGY_RETURN, C.EQUITY)})
    traded, trading = evaluate.paper_trade(prices.frame, frame[p.columns], CONFIG.strategy)
    pd.testing.assert_frame_equal(traded, p, check_exact=True)
    for key, value in trading[C.TEST].items():
        assert r.metrics[C.MODEL][key] == value


# --- 5. retrade ------------------------------------------------------------------------------


def _assert_same_ensemble(a: ensemble.EnsembleResult, b: ensemble.EnsembleResult) -> None:
    assert a.config == b.config and a.seeds == b.seeds
    pd.testing.assert_frame_equal(a.predictions, b.predictions, check_exact=True)
    assert a.metrics == b.metrics and a.metrics_by_split == b.metrics_by_split
    assert a.member_metrics == b.member_metrics and a.stats == b.stats
    assert sorted(a.members) == sorted(b.members)
    for seed in a.members:
        pd.testing.assert_frame_equal(a.members[seed], b.members[seed], check_exact=True)
    assert sorted(a.baselines) == sorted(b.baselines)
    for name in a.baselines:
        pd.testing.assert_frame_equal(a.baselines[name], b.baselines[name], check_exact=True)
    pd.testing.assert_frame_equal(a.band, b.band, check_exact=True)


def test_retrade_equals_a_fresh_ensemble_and_leaves_the_original(prices, synthetic):
    original = ensemble.from_members(CONFIG, prices, synthetic, failed={99: "NaN loss"},
                                     histories={10: {"train_loss": [1.0], "val_loss": [2.0]}})
    before = {
        "config": original.config,
        "metrics_by_split": copy.deepcopy(original.metrics_by_split),
        "member_metrics": copy.deepcopy(original.member_metrics),
        "stats": copy.deepcopy(original.stats),
        "predictions": original.predictions.copy(),
        "members": {s: f.copy() for s, f in original.members.items()},
        "baselines": {n: f.copy() for n, f in original.baselines.items()},
        "band": original.band.copy(),
    }
    new = ensemble.retrade(original, OTHER_STRATEGY)
    fresh = ensemble.from_members(CONFIG.replace(strategy=OTHER_STRATEGY), prices, synthetic)
    _assert_same_ensemble(new, fresh)
    assert new.config.strategy == OTHER_STRATEGY
    assert new.failed == {99: "NaN loss"} and new.histories == original.histories
    # the strategy change shows, and forecasts are kept
    assert (new.predictions[C.POSITION] == -1).any()
    assert new.metrics[C.MODEL] != original.metrics[C.MODEL]
    for key in C.FORECAST_METRICS:
        assert new.metrics[C.MODEL][key] == original.metrics[C.MODEL][key]
    _check_positions_follow_rule(new.predictions, OTHER_STRATEGY)
    # the original is untouched
    assert original.config == before["config"]
    assert original.metrics_by_split == before["metrics_by_split"]
    assert original.metrics is original.metrics_by_split[C.TEST]
    assert original.member_metrics == before["member_metrics"]
    assert original.stats == before["stats"]
    pd.testing.assert_frame_equal(original.predictions, before["predictions"])
    pd.testing.assert_frame_equal(original.band, before["band"])
    for seed, frame in before["members"].items():
        pd.testing.assert_frame_equal(original.members[seed], frame)
    for name, frame in before["baselines"].items():
        pd.testing.assert_frame_equal(original.baselines[name], frame)
    # and retrading back gives the original figures
    _assert_same_ensemble(ensemble.retrade(new, CONFIG.strategy), original)


def test_retrade_keeps_a_price_target_label(prices, synthetic):
    config = CONFIG.replace(model=CONFIG.model.replace(target=C.TARGET_PRICE))
    r = ensemble.from_members(config, prices, synthetic)
    assert r.metrics[evaluate.KEY_TARGET] == C.TARGET_PRICE
    new = ensemble.retrade(r, OTHER_STRATEGY)
    assert all(m[evaluate.KEY_TARGET] == C.TARGET_PRICE for m in new.metrics_by_split.values())


# --- 6. failures ----------------------------------------------------------------------------


def test_from_records_reports_failed_seeds_and_leaves_them_out(prices, synthetic):
    ok = record(10, predictions=synthetic[10])
    records = [ok,
               record(12, error="training loss became NaN at epoch 1: lower the learning rate"),
               record(11, predictions=synthetic[11])]
    r = ensemble.from_records(CONFIG, prices, records)
    assert r.seeds == [10, 11] and sorted(r.members) == [10, 11]
    assert r.failed == {12: "training loss became NaN at epoch 1: lower the learning rate"}
    # the failed seed counts nowhere
    assert all(s["n"] == 2 for split in r.stats.values() for s in split.values())
    assert sorted(r.histories) == [10, 11]
    assert r.histories[10] == {"train_loss": list(ok.train_losses),
                               "val_loss": list(ok.val_losses)}
    assert len(r.histories[10]["train_loss"]) == 2
    plain = ensemble.from_members(CONFIG, prices, {10: synthetic[10], 11: synthetic[11]})
    _assert_same_ensemble(r, plain)


def test_every_seed_failing_is_a_training_error(prices):
    records = [record(4, error="loss diverged"), record(7, error="ZeroDivisionError: boom")]
    with pytest.raises(TrainingError) as exc:
        ensemble.from_records(CONFIG, prices, records)
    message = str(exc.value)
    assert "seed 4: loss diverged" in message and "seed 7: ZeroDivisionError: boom" in message
    with pytest.raises(TrainingError):
        ensemble.from_records(CONFIG, prices, [])


def test_no_members_is_a_config_error(prices):
    with pytest.raises(ConfigError, match="at least one"):
        ensemble.from_members(CONFIG, prices, {})


def test_members_on_different_rows_are_a_config_error(prices, synthetic):
    short = synthetic[11].iloc[1:]
    with pytest.raises(ConfigError, match="seed 11"):
        ensemble.from_members(CONFIG, prices, {10: synthetic[10], 11: short})
    # all members agree, but not with the rows the configuration gives
    with pytest.raises(ConfigError, match="other data"):
        ensemble.from_members(CONFIG, prices, {10: synthetic[10].iloc[1:], 11: short})
    wider = CONFIG.replace(model=CONFIG.model.replace(window=12))
    with pytest.raises(ConfigError):
        ensemble.from_members(wider, prices, {10: synthetic[10]})


def test_members_split_another_way_are_a_config_error(prices, synthetic):
    from sandbox.config import SplitSpec

    other = CONFIG.replace(split=SplitSpec(train_frac=0.5, val_frac=0.2))
    with pytest.raises(ConfigError, match="split"):
        ensemble.from_members(other, prices, synthetic)
    relabelled = synthetic[11].copy()
    relabelled.iloc[-1, relabelled.columns.get_loc(C.SPLIT)] = C.VAL
    with pytest.raises(ConfigError, match="seed 11"):
        ensemble.from_members(CONFIG, prices, {10: synthetic[10], 11: relabelled})


def test_a_run_without_predictions_counts_as_failed(prices, synthetic):
    r = ensemble.from_records(CONFIG, prices, [record(10, predictions=synthetic[10]),
                                               record(7)])
    assert r.seeds == [10]
    assert "no predictions" in r.failed[7]
    assert sorted(r.histories) == [10]


def test_zero_jobs_is_a_config_error(prices):
    with pytest.raises(ConfigError, match="jobs"):
        ensemble.run_ensemble(CONFIG, seeds=2, jobs=0, prices=prices)


def test_retrade_shares_no_bookkeeping_with_the_original(prices, synthetic):
    r = ensemble.from_members(CONFIG, prices, synthetic, failed={9: "x"})
    new = ensemble.retrade(r, OTHER_STRATEGY)
    new.failed[10] = "y"
    new.seeds.append(99)
    assert r.failed == {9: "x"} and 99 not in r.seeds


def test_zero_seeds_is_a_config_error(prices):
    with pytest.raises(ConfigError, match="seeds"):
        ensemble.run_ensemble(CONFIG, seeds=0, jobs=1, prices=prices)


# --- 7. cancel -------------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_set_cancel_event_raises_cancelled(prices, jobs):
    cancel = threading.Event()
    cancel.set()
    seen: list[runs.RunRecord] = []
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        ensemble.run_ensemble(CONFIG, seeds=2, jobs=jobs, prices=prices, cancel=cancel,
                              on_member=seen.append)
    assert seen == []
    assert time.perf_counter() - started < 5


# --- imports ---------------------------------------------------------------------------------


def test_importing_the_ensemble_loads_neither_torch_nor_qt():
    code = ("import sys, sandbox.ensemble; "
            "print(sorted({'torch', 'PySide6', 'pyqtgraph'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.strip()
    assert out == "[]"


def test_the_averaged_forecast_carries_evidence_and_an_spa_across_the_seeds(synthetic_result):
    """Validation and test carry the tests of the averaged forecast, and Hansen's SPA of the
    best seed against buy and hold on the rows where every seed and buy and hold traded."""
    r = synthetic_result
    for split in (C.VAL, C.TEST):
        sig = r.metrics_by_split[split][C.SIGNIFICANCE]
        assert sig["split"] == split and set(sig["dm"]) == set(C.FORECAST_BASELINES)
        spa = sig["spa_members"]
        rows = (r.predictions[C.SPLIT] == split).to_numpy()
        traded = np.isfinite(r.baselines[C.BUY_AND_HOLD][C.STRATEGY_RETURN].to_numpy()[rows])
        for seed in r.seeds:
            traded &= np.isfinite(r.members[seed][C.STRATEGY_RETURN].to_numpy()[rows])
        assert spa["candidates"] == len(r.seeds) and spa["rows"] == int(traded.sum())
        assert 0 <= spa["pvalue_consistent"] <= 1
    assert C.SIGNIFICANCE not in r.metrics_by_split[C.TRAIN]
