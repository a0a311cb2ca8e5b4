"""Walk-forward evaluation: fold plan, per-fold scalers, purging, truncation invariance."""

from __future__ import annotations

import logging
import math
import threading

import numpy as np
import pandas as pd
import pytest
from test_features import make_prices

from sandbox import constants as C
from sandbox import pipeline, walkforward
from sandbox.config import (
    ModelConfig,
    RunConfig,
    StrategyConfig,
    TrainConfig,
    WalkForwardSpec,
)
from sandbox.errors import Cancelled, ConfigError
from sandbox.events import EpochEnd, FoldFinished, FoldStarted

WINDOW = 8
N_BARS = 400
START = 250  # position of the first out-of-sample bar
EVERY = 40
VAL = 30
ROLL = 120


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return make_prices(N_BARS, seed=3, phi=0.2)


def wf_config(prices: pd.DataFrame, *, rolling: bool = False, warm: bool = False,
              start: str | float | None = None, epochs: int = 2, **spec) -> RunConfig:
    walk = WalkForwardSpec(
        start=str(prices.index[START].date()) if start is None else start,
        retrain_every=EVERY, val_length=VAL,
        window_mode=C.ROLLING if rolling else C.EXPANDING,
        train_length=ROLL if rolling else None, warm_start=warm, warm_epochs=1, **spec)
    return RunConfig(
        model=ModelConfig(kind=C.GRU, window=WINDOW, hidden=4, layers=1, dropout=0.0),
        train=TrainConfig(epochs=epochs, patience=0, batch_size=64, threads=1, seed=7),
        strategy=StrategyConfig(cost_bps=5.0),
        walk_forward=walk,
    )


def run(config: RunConfig, prices: pd.DataFrame, **kw) -> pipeline.RunResult:
    return pipeline.run(config, prices=prices, jobs=1, **{"evidence": False, **kw})


@pytest.fixture(scope="module")
def expanding(prices):
    return run(wf_config(prices), prices, evidence=True)


# --- the number of fits ------------------------------------------------------------------------


@pytest.mark.parametrize(("n_bars", "every"), [(400, 40), (401, 40), (410, 40), (290, 40),
                                               (251, 40), (400, 1), (400, 149), (400, 150),
                                               (400, 151)])
def test_folds_tile_the_out_of_sample_bars_and_number_ceil(n_bars, every):
    index = pd.bdate_range("2000-01-03", periods=n_bars)
    spec = WalkForwardSpec(start=str(index[START].date()), retrain_every=every, val_length=VAL)
    pl = walkforward.plan(index, spec, window=WINDOW, target=C.TARGET_RETURN,
                          fill=C.FILL_NEXT_OPEN)
    oos = n_bars - START
    assert len(pl.folds) == -(-oos // every)  # ceil, by integer arithmetic
    covered = np.concatenate([np.arange(f.predict_start, f.predict_stop) for f in pl.folds])
    np.testing.assert_array_equal(covered, np.arange(START, n_bars))  # each bar once, in order
    assert all(f.predict_stop - f.predict_start <= every for f in pl.folds)


def test_run_makes_ceil_fits_and_logs_it(prices, caplog):
    caplog.set_level(logging.INFO, logger="sandbox.walkforward")
    result = run(wf_config(prices, epochs=1), prices)
    expected = math.ceil((N_BARS - START) / EVERY)  # 150 bars / 40 -> 4
    assert expected == 4
    assert len(result.folds) == expected == result.walk_forward["n_folds"]
    assert len(result.fold_weights) == len(result.fold_histories) == expected
    assert f"{expected} fits = ceil({N_BARS - START} out-of-sample bars / {EVERY})" in caplog.text


# --- the stitched series is a test split --------------------------------------------------------


def test_predictions_are_the_out_of_sample_rows_labelled_test(expanding, prices):
    p = expanding.predictions
    assert p.index[0] == prices.index[START] and p.index[-1] == prices.index[-1]
    assert (p[C.SPLIT] == C.TEST).all()
    assert p[C.FOLD].dtype == np.int64
    np.testing.assert_array_equal(p[C.FOLD], np.arange(N_BARS - START) // EVERY)
    for name, frame in expanding.baselines.items():
        assert frame.index.equals(p.index), name
    # one account from the walk-forward start: equity compounds the strategy returns
    r = p[C.STRATEGY_RETURN].dropna()
    np.testing.assert_allclose(p[C.EQUITY].dropna(), np.cumprod(1 + r), rtol=1e-12)


def test_metrics_are_the_test_metrics_with_folds_and_significance(expanding):
    m = expanding.metrics
    assert m[C.SPLIT] == C.WALK_FORWARD
    test = expanding.metrics_by_split[C.TEST]
    assert m[C.MODEL] == test[C.MODEL] and m["baselines"] == test["baselines"]
    # metrics.json leaves out what the machine chose (wall times, processes): run.json has it
    assert m["folds"] == [{k: v for k, v in f.items() if k != "seconds"}
                          for f in expanding.folds]
    assert m[C.WALK_FORWARD] == {k: v for k, v in expanding.walk_forward.items()
                                 if k != "jobs"}
    sig = m[C.SIGNIFICANCE]
    assert sig[C.SPLIT] == C.TEST
    usable = expanding.predictions[C.ACTUAL_RETURN].notna().sum()
    assert sig["rows"]["forecast"] == usable
    # RMSE over the rows, computed here from the frame
    p = expanding.predictions.dropna(subset=[C.ACTUAL_RETURN])
    rmse = float(np.sqrt(np.mean((p[C.PREDICTED_RETURN] - p[C.ACTUAL_RETURN]) ** 2)))
    assert m[C.MODEL][C.RMSE] == pytest.approx(rmse, rel=1e-12)


def test_fold_records_carry_dates_sizes_and_rmse_differences(expanding, prices):
    idx = prices.index
    h = 2  # next-open fill: a row's trading return reaches two bars ahead
    for k, f in enumerate(expanding.folds):
        p = START + k * EVERY
        assert f["fold"] == k
        assert f["predict_start"] == idx[p].isoformat()
        assert f["predict_end"] == idx[min(p + EVERY, N_BARS) - 1].isoformat()
        assert f["train_start"] == idx[WINDOW - 1].isoformat()
        assert f["val_start"] == idx[p - VAL].isoformat()
        assert f["train_end"] == idx[p - VAL - 1].isoformat()
        assert f["n_val"] == VAL - h
        assert f["n_train"] == (p - VAL - 1 - h) - (WINDOW - 1) + 1
        rows = expanding.predictions[expanding.predictions[C.FOLD] == k].dropna(
            subset=[C.ACTUAL_RETURN])
        err = rows[C.PREDICTED_RETURN] - rows[C.ACTUAL_RETURN]
        model_rmse = float(np.sqrt(np.mean(err**2)))
        rw_rmse = float(np.sqrt(np.mean(rows[C.ACTUAL_RETURN] ** 2)))
        assert f["metrics"][C.MODEL][C.RMSE] == pytest.approx(model_rmse, rel=1e-12)
        assert f["metrics"]["rmse_diff"] == pytest.approx(model_rmse - rw_rmse, rel=1e-9)


# --- each fold's scalers come from its own training rows -------------------------------------


def _hand_features(prices: pd.DataFrame) -> np.ndarray:
    c, o, hi, lo, v = (prices[k].to_numpy() for k in (C.CLOSE, C.OPEN, C.HIGH, C.LOW, C.VOLUME))
    prev = np.r_[np.nan, c[:-1]]
    return np.column_stack([np.log(c / prev), np.log(o / prev), np.log(hi / prev),
                            np.log(lo / prev), np.log1p(v) - np.log1p(np.r_[np.nan, v[:-1]])])


@pytest.mark.parametrize("rolling", [False, True])
def test_each_folds_scalers_equal_those_of_its_training_rows_alone(prices, rolling):
    result = run(wf_config(prices, rolling=rolling, epochs=1), prices)
    feats = _hand_features(prices)
    c = prices[C.CLOSE].to_numpy()
    idx = prices.index
    for record, state in zip(result.folds, result.fold_states, strict=True):
        first = idx.get_loc(pd.Timestamp(record["train_start"]))
        last = idx.get_loc(pd.Timestamp(record["train_end"]))
        # the bars the training rows' windows see: from the first row's window to the last row
        bars = feats[first - (WINDOW - 2): last + 1]
        assert np.isfinite(bars).all()
        np.testing.assert_allclose(state["scaler"]["mean"], bars.mean(axis=0), rtol=1e-10)
        np.testing.assert_allclose(state["scaler"]["std"], bars.std(axis=0), rtol=1e-10)
        # targets of the training rows whose returns end before the validation rows
        t = np.arange(first, last - 2 + 1)
        y = np.log(c[t + 1] / c[t])
        assert record["n_train"] == len(t)
        np.testing.assert_allclose(state["target_scaler"]["mean"], [y.mean()], rtol=1e-10)
        np.testing.assert_allclose(state["target_scaler"]["std"], [y.std()], rtol=1e-10)
        assert state["drift"] == pytest.approx(y.mean(), rel=1e-12)
        if rolling:
            p = idx.get_loc(pd.Timestamp(record["predict_start"]))
            assert first == p - ROLL


# --- truncation invariance --------------------------------------------------------------------


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("rolling", [False, True], ids=["expanding", "rolling"])
def test_prediction_of_a_bar_does_not_depend_on_later_data(prices, rolling, warm):
    config = wf_config(prices, rolling=rolling, warm=warm)
    full = run(config, prices).predictions[C.PREDICTED_RETURN]
    # the first bar, a fold's last and the next fold's first bar, a bar inside a fold
    for t in (START, START + EVERY - 1, START + EVERY, START + 2 * EVERY + 17):
        cut = prices.iloc[: t + 1]  # the data ends at t: its target is unknown
        short = run(config, cut).predictions
        assert np.isnan(short[C.ACTUAL_RETURN].iloc[-1])
        assert short.index[-1] == prices.index[t]
        got = short[C.PREDICTED_RETURN].to_numpy()
        want = full.loc[short.index].to_numpy()
        assert got.tobytes() == want.tobytes(), f"bar {t}: predictions differ"


# --- warm start and seeds ----------------------------------------------------------------------


def test_warm_folds_train_at_most_warm_epochs_and_report_every_epoch(prices):
    events: list = []
    config = wf_config(prices, warm=True, epochs=3)
    result = run(config, prices, on_event=events.append)
    assert result.folds[0]["epochs"] == 3
    assert all(f["epochs"] == 1 for f in result.folds[1:])  # warm_epochs=1
    starts = [e for e in events if isinstance(e, FoldStarted)]
    ends = [e for e in events if isinstance(e, FoldFinished)]
    assert [e.fold for e in starts] == [e.fold for e in ends] == [0, 1, 2, 3]
    assert sum(isinstance(e, EpochEnd) for e in events) == 3 + 3 * 1
    assert ends[0].val_loss == tuple(result.fold_histories[0]["val_loss"])
    assert result.walk_forward["jobs"] == 1


def test_cold_fold_seeds_are_distinct_and_fixed(expanding):
    seeds = [f["seed"] for f in expanding.folds]
    assert len(set(seeds)) == len(seeds)
    assert seeds == [walkforward.fold_seed(7, k) for k in range(len(seeds))]
    assert walkforward.fold_seed(7, 0) != walkforward.fold_seed(8, 0)


def test_warm_start_changes_later_folds_only(prices):
    cold = run(wf_config(prices), prices).predictions
    warm = run(wf_config(prices, warm=True), prices).predictions
    first = cold[C.FOLD] == 0
    np.testing.assert_array_equal(warm.loc[first, C.PREDICTED_RETURN],
                                  cold.loc[first, C.PREDICTED_RETURN])
    assert not np.array_equal(warm.loc[~first, C.PREDICTED_RETURN],
                              cold.loc[~first, C.PREDICTED_RETURN])


@pytest.mark.slow
def test_cold_folds_in_two_processes_equal_one(prices):
    config = wf_config(prices)
    one = pipeline.run(config, prices=prices, jobs=1, evidence=False)
    two = pipeline.run(config, prices=prices, jobs=2, evidence=False)
    assert two.walk_forward["jobs"] == 2
    assert (one.predictions[C.PREDICTED_RETURN].to_numpy().tobytes()
            == two.predictions[C.PREDICTED_RETURN].to_numpy().tobytes())
    assert one.fold_weights == two.fold_weights


# --- the start -------------------------------------------------------------------------------


def test_fractional_start_resolves_once_to_the_row_at_the_fraction(prices):
    result = run(wf_config(prices, start=0.7, epochs=1), prices)
    n_rows = N_BARS - WINDOW + 1
    expected = prices.index[WINDOW - 1 + round(0.7 * n_rows)]
    assert result.walk_forward["start"] == expected.isoformat()
    assert result.walk_forward["start_given"] == 0.7
    assert result.predictions.index[0] == expected


def test_histories_are_per_fold(expanding):
    assert set(expanding.histories) == {0, 1, 2, 3}
    assert expanding.histories[2]["val_loss"] == expanding.fold_histories[2]["val_loss"]
    assert expanding.can_save


# --- impossible specs --------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "words"), [
    ({"start": "2000-01-10"}, "needs at least"),
    ({"start": "2030-01-01"}, "after the last bar"),
    ({"rolling": True, "start": None, "train_length": None}, "--rolling"),
])
def test_impossible_specs_are_refused_in_one_line(prices, changes, words):
    start = changes.get("start")
    if changes.get("rolling"):
        config = wf_config(prices, rolling=True)
        config = config.replace(walk_forward=config.walk_forward.replace(train_length=400))
    else:
        config = wf_config(prices, start=start)
    with pytest.raises(ConfigError, match=words) as exc:
        run(config, prices)
    assert "\n" not in str(exc.value)


def test_validation_too_short_to_survive_purging_is_refused(prices):
    config = wf_config(prices)
    config = config.replace(walk_forward=config.walk_forward.replace(val_length=2))
    with pytest.raises(ConfigError, match="--val-length 2"):
        run(config, prices)


def test_a_set_cancel_stops_the_run(prices):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        run(wf_config(prices), prices, cancel=cancel)


def test_cancel_during_a_warm_fold_stops_within_the_fold(prices):
    cancel = threading.Event()
    seen: list = []

    def on_event(event):
        seen.append(event)
        if isinstance(event, FoldFinished):
            cancel.set()

    with pytest.raises(Cancelled):
        run(wf_config(prices, warm=True), prices, cancel=cancel, on_event=on_event)
    assert [e.fold for e in seen if isinstance(e, FoldFinished)] == [0]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*tasks which were still being processed:UserWarning")
def test_cancel_ends_parallel_cold_folds(prices):
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, FoldFinished):
            cancel.set()

    with pytest.raises(Cancelled):
        pipeline.run(wf_config(prices, epochs=30), prices=prices, jobs=2, evidence=False,
                     cancel=cancel, on_event=on_event)


def test_retrade_keeps_the_folds_and_rescores_the_out_of_sample_rows(expanding):
    again = expanding.retrade(expanding.config.strategy.replace(cost_bps=50.0))
    assert again.metrics[C.SPLIT] == C.WALK_FORWARD
    assert again.folds == expanding.folds and again.walk_forward == expanding.walk_forward
    assert again.metrics[C.MODEL][C.RMSE] == expanding.metrics[C.MODEL][C.RMSE]
    np.testing.assert_array_equal(again.predictions[C.FOLD], expanding.predictions[C.FOLD])
    if expanding.metrics[C.MODEL]["n_trades"]:
        assert again.metrics[C.MODEL][C.TOTAL_RETURN] < expanding.metrics[C.MODEL][C.TOTAL_RETURN]
