"""Replay: bar by bar, the same predictions, positions, returns and equity as `sandbox predict`
and the backtest on the same bars; the controls; `sandbox replay`."""

from __future__ import annotations

import dataclasses
import math
import threading
import time

import numpy as np
import pandas as pd
import pytest
from test_features import make_prices

from sandbox import backtest, cli, evaluate, export, models, pipeline, replay
from sandbox import constants as C
from sandbox.config import ModelConfig, RunConfig, SplitSpec, StrategyConfig, TrainConfig
from sandbox.data import LoadedPrices
from sandbox.errors import Cancelled, ConfigError, DataError

VAL_START, TEST_START = "2000-09-01", "2000-11-01"
WINDOW = 10
KINDS = [k for k in C.MODEL_KINDS if k in models.REGISTRY]
STRATEGIES = {
    C.FILL_NEXT_OPEN: StrategyConfig(strategy=C.LONG_SHORT, fill=C.FILL_NEXT_OPEN, cost_bps=5.0),
    C.FILL_CLOSE: StrategyConfig(strategy=C.LONG_SHORT, fill=C.FILL_CLOSE, cost_bps=5.0),
}


@pytest.fixture(scope="module")
def prices():
    return make_prices(300, seed=3, phi=0.2)  # business days 2000-01-03 .. 2001-02-26


@pytest.fixture(scope="module")
def bundles(prices, tmp_path_factory):
    """A tiny trained bundle of each kind, saved and loaded back (as `sandbox predict` sees it)."""
    out = {}
    for kind in KINDS:
        config = RunConfig(split=SplitSpec(val_start=VAL_START, test_start=TEST_START),
                           model=ModelConfig(kind=kind, window=WINDOW, hidden=16, layers=2,
                                             heads=2),
                           train=TrainConfig(epochs=1, threads=1))
        result = pipeline.run(config, prices=prices, evidence=False)
        folder = tmp_path_factory.mktemp(f"bundle-{kind}")
        export.write_run(result, folder)
        out[kind] = folder
    return out


def _predicted(bundle, prices, strategy) -> pd.DataFrame:
    loaded = LoadedPrices(frame=prices, label="p", source="frame", warnings=[])
    return pipeline.predict(bundle, loaded, bundle.config.data, strategy).predictions


# --- exactness (acceptance) ----------------------------------------------------------------------


@pytest.mark.parametrize("fill", sorted(STRATEGIES))
@pytest.mark.parametrize("kind", KINDS)
def test_replay_equals_predict_from_the_test_start(bundles, prices, kind, fill):
    strategy = STRATEGIES[fill]
    bundle = export.load_bundle(bundles[kind])
    expected = _predicted(bundle, prices, strategy)
    expected = expected[expected[C.SPLIT] == C.TEST]  # a fresh account at the test start
    got = replay.replay_frame(bundle, prices, None, strategy)  # default: the test start
    assert got.index.equals(expected.index)
    assert list(got.columns) == list(replay.REPLAY_COLUMNS)
    assert np.array_equal(got[C.POSITION].to_numpy(), expected[C.POSITION].to_numpy())
    assert np.array_equal(got[C.CLOSE].to_numpy(), expected[C.CLOSE].to_numpy())
    for col in (C.PREDICTED_RETURN, C.STRATEGY_RETURN, C.EQUITY):
        a, e = got[col].to_numpy(), expected[col].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(e)), col
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-9, err_msg=col)
    lag = 2 if fill == C.FILL_NEXT_OPEN else 1
    assert got[C.STRATEGY_RETURN].iloc[-lag:].isna().all()
    assert got[C.STRATEGY_RETURN].iloc[:-lag].notna().all()


@pytest.mark.parametrize("fill", sorted(STRATEGIES))
def test_replay_from_any_date_equals_the_backtest_of_the_same_positions(bundles, prices, fill):
    strategy = STRATEGIES[fill]
    bundle = export.load_bundle(bundles[C.LSTM])
    start = "2000-06-15"  # inside training: the account is still fresh there
    got = replay.replay_frame(bundle, prices, start, strategy)
    assert got.index[0] == prices.index[prices.index >= start][0]
    # the reference: the batch prediction, the backtest's rule and engine from the same date
    predicted = bundle.predict(prices)[C.PREDICTED_RETURN].loc[got.index[0]:]
    positions = backtest.positions_from_predictions(predicted, strategy=strategy.strategy,
                                                    threshold_bps=strategy.threshold_bps)
    bt = backtest.backtest(prices, positions, fill=fill, cost_bps=strategy.cost_bps).frame
    np.testing.assert_allclose(got[C.PREDICTED_RETURN], predicted, rtol=0, atol=1e-9)
    assert np.array_equal(got[C.POSITION].to_numpy(), bt[C.POSITION].to_numpy())
    for col in (C.STRATEGY_RETURN, C.EQUITY):
        np.testing.assert_allclose(got[col].to_numpy(), bt[col].to_numpy(), rtol=0, atol=1e-9)


def test_a_start_before_the_first_full_window_starts_at_it(bundles, prices):
    bundle = export.load_bundle(bundles[C.GRU])
    got = replay.replay_frame(bundle, prices, "1999-01-01")
    assert got.index[0] == prices.index[WINDOW - 1]
    assert got[C.PREDICTED_RETURN].notna().all()


# --- what each step reports ---------------------------------------------------------------------


@pytest.mark.parametrize("fill", sorted(STRATEGIES))
def test_each_step_reports_what_is_known_at_its_bar(bundles, prices, fill):
    strategy = STRATEGIES[fill]
    bundle = export.load_bundle(bundles[C.RNN])
    steps: list[replay.ReplayStep] = []
    table = replay.replay_frame(bundle, prices, TEST_START, strategy, on_step=steps.append)
    lag = 2 if fill == C.FILL_NEXT_OPEN else 1
    assert [s.date for s in steps] == list(table.index)
    hold = backtest.backtest(prices, pd.Series(1.0, index=table.index), fill=fill,
                             cost_bps=strategy.cost_bps).frame
    for k, step in enumerate(steps):
        assert step.index == k
        assert step.position == table[C.POSITION].iloc[k]
        if k < lag:  # nothing completed yet: a fresh account
            assert step.realised_date is None and math.isnan(step.strategy_return)
            assert step.equity == 1.0 and step.buy_hold_equity == 1.0
            continue
        row = k - lag  # the row this bar completed
        assert step.realised_date == table.index[row]
        assert step.strategy_return == table[C.STRATEGY_RETURN].iloc[row]
        assert step.equity == table[C.EQUITY].iloc[row]
        assert step.buy_hold_equity == pytest.approx(hold[C.EQUITY].iloc[row], abs=1e-12)
    # running figures at the end against the metrics' own rules
    last = steps[-1]
    returns = table[C.STRATEGY_RETURN].dropna().to_numpy()
    periods = evaluate.run_periods_per_year(prices, strategy)
    assert last.sharpe_so_far == pytest.approx(
        backtest.sharpe_ratios(returns, periods)[0], rel=1e-9)
    metrics = backtest.trading_metrics(table[C.STRATEGY_RETURN], table[C.POSITION],
                                       periods_per_year=periods)
    assert last.max_drawdown_so_far == pytest.approx(metrics[C.MAX_DRAWDOWN], abs=1e-12)
    assert last.n_trades_so_far == int(np.count_nonzero(np.diff(table[C.POSITION],
                                                                 prepend=0.0)))
    actual = np.log(prices[C.CLOSE].shift(-1) / prices[C.CLOSE]).reindex(table.index)
    accuracy = evaluate.directional_accuracy(table[C.PREDICTED_RETURN].to_numpy()[:-1],
                                             actual.to_numpy()[:-1])
    assert last.calls_so_far == int(np.count_nonzero(actual.to_numpy()[:-1] != 0))
    assert last.hits_so_far / last.calls_so_far == pytest.approx(accuracy, abs=1e-12)
    assert isinstance(last.to_dict()["date"], str)


def test_step_takes_a_frame_row_or_a_mapping_and_refuses_an_old_bar(bundles, prices):
    bundle = export.load_bundle(bundles[C.LSTM])
    a = replay.Replayer(bundle, history=prices.iloc[:200])
    b = replay.Replayer(bundle, history=prices.iloc[:200])
    row = prices.iloc[200]
    s1 = a.step(row)
    s2 = b.step({"date": row.name, **{c: row[c] for c in C.PRICE_COLUMNS}})
    assert s1.date == s2.date == prices.index[200]
    assert s1.predicted_return == s2.predicted_return
    with pytest.raises(DataError, match="not after the last bar"):
        a.step(prices.iloc[200])
    with pytest.raises(DataError, match="not after the last bar"):
        a.step(prices.iloc[150])


@pytest.mark.slow  # 10,000 full steps: ~5 s on an idle machine, more on a busy one
def test_cost_per_step_does_not_grow_with_history(bundles):
    long = make_prices(10_300, seed=8)
    bundle = export.load_bundle(bundles[C.RNN])
    replayer = replay.Replayer(bundle, history=long.iloc[:50])
    rows = [long.iloc[i] for i in range(50, len(long))]
    bars = [replay.as_bar(r) for r in rows]

    def median_step(part) -> float:
        times = []
        for bar in part:
            t = time.perf_counter()
            replayer.step(bar)
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    early = median_step(bars[:200])  # after ~100 bars
    for bar in bars[200:10_000]:
        replayer.step(bar)
    late = median_step(bars[10_000:10_200])  # after ~10,000 bars
    assert replayer.predictor.buffer_rows == WINDOW - 1
    assert late < 3 * early, (early, late)


# --- the loop: batches, pacing, controls ---------------------------------------------------------


def test_batches_hold_every_step_once_in_order(bundles, prices):
    bundle = export.load_bundle(bundles[C.LSTM])
    batches: list[list[replay.ReplayStep]] = []
    table = replay.stream_replay(bundle, prices, "2000-06-01", on_result=batches.append,
                                 batch_bars=16)
    assert all(0 < len(b) <= 16 for b in batches)
    assert [s.date for b in batches for s in b] == list(table.index)


def test_speed_paces_the_bars(bundles, prices):
    bundle = export.load_bundle(bundles[C.LSTM])
    t = time.perf_counter()
    table = replay.replay_frame(bundle, prices, prices.index[-21], speed=200.0)
    elapsed = time.perf_counter() - t
    assert len(table) == 21
    assert elapsed >= 20 / 200.0  # 21 bars at 200/s: at least 0.1 s between first and last


def _wait_for(predicate, timeout=20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_pause_step_jump_and_cancel(bundles, prices):
    bundle = export.load_bundle(bundles[C.LSTM])
    control = replay.ReplayControl()
    control.pause.set()
    seen: list[replay.ReplayStep] = []
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["table"] = replay.replay_frame(bundle, prices, TEST_START,
                                                   on_step=seen.append, control=control)
        except Cancelled as exc:
            outcome["cancelled"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.3)
    assert seen == []  # paused before the first bar
    control.step_once()
    control.step_once()
    assert _wait_for(lambda: len(seen) == 2)
    time.sleep(0.2)
    assert len(seen) == 2  # exactly two bars let through
    target = prices.index[prices.index >= "2001-01-02"][0]
    control.jump_to("2001-01-02")
    assert _wait_for(lambda: control.pause.is_set() and seen and seen[-1].date == target)
    time.sleep(0.2)
    assert seen[-1].date == target  # paused at the date
    control.stop()
    thread.join(20)
    assert not thread.is_alive()
    assert "cancelled" in outcome and "table" not in outcome


def test_a_run_without_its_model_is_rebuilt_from_its_weights(prices):
    config = RunConfig(split=SplitSpec(val_start=VAL_START, test_start=TEST_START),
                       model=ModelConfig(kind=C.GRU, window=WINDOW, hidden=16, layers=2),
                       train=TrainConfig(epochs=1, threads=1))
    result = pipeline.run(config, prices=prices, evidence=False)
    expected = replay.replay_frame(replay.as_bundle(result), prices, TEST_START)
    slim = dataclasses.replace(result, model=None, weights=export.weights_bytes(result))
    got = replay.stream_replay(slim, prices, TEST_START)
    pd.testing.assert_frame_equal(got, expected)


# --- sandbox replay ------------------------------------------------------------------------------


def test_cli_writes_replay_csv_equal_to_predict(bundles, prices, tmp_path, capsys):
    src = tmp_path / "prices.csv"
    prices.to_csv(src)
    out, pred = tmp_path / "replay", tmp_path / "pred"
    flags = ["--csv", str(src), "--fill", "close", "--strategy", "long_short"]
    assert cli.main(["predict", "--model", str(bundles[C.LSTM]), *flags, "--out", str(pred)]) == 0
    assert cli.main(["replay", "--model", str(bundles[C.LSTM]), *flags, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "replayed" in text and "buy & hold" in text
    assert "test split seen twice" in text  # predict's look, then the replay's
    got = pd.read_csv(out / C.REPLAY_CSV, index_col=C.INDEX_NAME, parse_dates=True)
    assert list(got.columns) == [C.CLOSE, C.PREDICTED_RETURN, C.POSITION, C.STRATEGY_RETURN,
                                 C.EQUITY]
    expected = pd.read_csv(pred / C.PREDICTIONS_CSV, index_col=C.INDEX_NAME, parse_dates=True)
    expected = expected[expected[C.SPLIT] == C.TEST]
    assert got.index.equals(expected.index)
    assert np.array_equal(got[C.POSITION].to_numpy(), expected[C.POSITION].to_numpy())
    for col in (C.PREDICTED_RETURN, C.STRATEGY_RETURN, C.EQUITY):
        np.testing.assert_allclose(got[col], expected[col], rtol=0, atol=1e-9)


def test_cli_refuses_bad_input_with_exit_2(bundles, prices, tmp_path, capsys):
    src = tmp_path / "prices.csv"
    prices.to_csv(src)
    model = str(bundles[C.LSTM])
    assert cli.main(["replay", "--model", model, "--csv", str(src), "--from", "2030-01-01",
                     "--out", str(tmp_path / "o")]) == 2
    assert "after the last bar" in capsys.readouterr().err
    assert cli.main(["replay", "--model", model, "--csv", str(src), "--out", model]) == 2
    assert cli.main(["replay", "--model", model, "--csv", str(src), "--speed", "-1",
                     "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_a_run_without_a_single_model_is_refused(prices):
    class Ensemble:  # what the app holds for a seed ensemble's average: no model, no weights
        model = None
        weights = None
        feature_state = None

    with pytest.raises(ConfigError, match="no single model to replay"):
        replay.stream_replay(Ensemble(), prices, TEST_START)


def test_the_table_keeps_the_bars_timezone(bundles, prices):
    bundle = export.load_bundle(bundles[C.LSTM])
    aware = prices.tz_localize("America/New_York")
    got = replay.replay_frame(bundle, aware, "2000-12-01")
    naive = replay.replay_frame(bundle, prices, "2000-12-01")
    assert got.index.equals(aware.index[aware.index >= got.index[0]])
    assert str(got.index.tz) == "America/New_York"
    np.testing.assert_array_equal(got.to_numpy(), naive.to_numpy())


def test_the_default_start_after_the_data_is_refused(bundles, prices):
    bundle = export.load_bundle(bundles[C.LSTM])
    with pytest.raises(ConfigError, match=r"the model's test start .* after the last bar"):
        replay.replay_frame(bundle, prices.loc[:"2000-10-20"])
    assert replay.replay_start(bundle, prices) == prices.index.get_loc(pd.Timestamp(TEST_START))
    older = dataclasses.replace(bundle, splits={"last_bar": "2000-12-29"})  # no split dates
    assert prices.index[replay.replay_start(older, prices)] == pd.Timestamp("2001-01-01")
