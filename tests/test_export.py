from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from test_features import make_prices

from sandbox import constants as C
from sandbox import evaluate, export, pipeline
from sandbox.config import ModelConfig, RunConfig, TrainConfig
from sandbox.errors import ConfigError, ExportError


@pytest.fixture(scope="module")
def prices():
    return make_prices(300, seed=2, phi=0.2)


@pytest.fixture(scope="module")
def result(prices):
    config = RunConfig(model=ModelConfig(window=10, hidden=8, layers=2),
                       train=TrainConfig(epochs=2, threads=1))
    return pipeline.run(config, prices=prices)


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, export.write_run(result, out)


def test_write_run_writes_exactly_the_four_files(written):
    out, paths = written
    names = {C.PREDICTIONS_CSV, C.METRICS_JSON, C.MODEL_WEIGHTS, C.RUN_JSON}
    assert set(paths) == names and sorted(os.listdir(out)) == sorted(names)


def test_predictions_csv_round_trips_at_full_precision(written, result):
    out, _ = written
    back = pd.read_csv(out / C.PREDICTIONS_CSV, index_col=C.INDEX_NAME, parse_dates=True)
    header = (out / C.PREDICTIONS_CSV).read_text().splitlines()[0]
    assert header.split(",") == list(C.PREDICTION_COLUMNS)
    for col in (C.CLOSE, C.ACTUAL_RETURN, C.PREDICTED_RETURN, C.STRATEGY_RETURN, C.EQUITY):
        np.testing.assert_array_equal(back[col].to_numpy(), result.predictions[col].to_numpy())
    assert (back[C.SPLIT] == result.predictions[C.SPLIT]).all()
    last = (out / C.PREDICTIONS_CSV).read_text().splitlines()[-1].split(",")
    assert last[3] == "" and last[-1] == ""  # no actual return, no equity on the last bar


def test_metrics_json_is_the_test_split_with_nulls(written, result):
    out, _ = written
    m = json.loads((out / C.METRICS_JSON).read_text())
    assert m[evaluate.KEY_SPLIT] == C.TEST and m[evaluate.KEY_TARGET] == C.TARGET_RETURN
    assert set(m[evaluate.KEY_BASELINES]) == set(C.BASELINES)
    assert m[evaluate.KEY_BASELINES][C.RANDOM_WALK][C.DIRECTIONAL_ACCURACY] is None
    assert m[C.MODEL][C.RMSE] == result.metrics[C.MODEL][C.RMSE]


def test_run_json_records_config_fingerprint_versions(written, result, prices):
    out, _ = written
    info = json.loads((out / C.RUN_JSON).read_text())
    assert RunConfig.from_dict(info[export.KEY_CONFIG]) == result.config
    assert info[export.KEY_DATA]["sha256"] == export.fingerprint(prices)
    assert set(info[export.KEY_VERSIONS]) == {"python", "torch", "pandas", "numpy", "sandbox"}
    assert info[export.KEY_TARGET] == C.TARGET_RETURN
    assert info[export.KEY_HISTORY]["epochs_run"] == result.history.epochs_run
    assert "batch_loss" not in info[export.KEY_HISTORY]
    assert info[export.KEY_TIMINGS]["total"] > 0


def test_fingerprint_is_stable_and_sensitive(prices):
    a = export.fingerprint(prices)
    assert a == export.fingerprint(prices.copy())
    coarse = prices.copy()
    coarse.index = coarse.index.as_unit("s")
    assert export.fingerprint(coarse) == a
    changed = prices.copy()
    changed.iloc[5, 3] += 1e-9
    assert export.fingerprint(changed) != a


def test_bundle_round_trip_predicts_the_same_numbers(written, result, prices, monkeypatch):
    import pickle

    import torch

    def refuse(*a, **k):
        raise AssertionError("loading a bundle must not unpickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    out, _ = written
    bundle = export.load_bundle(out)
    assert bundle.config == result.config
    got = bundle.predict(prices)
    assert got.index.equals(result.predictions.index)
    np.testing.assert_array_equal(got[C.PREDICTED_RETURN], result.predictions[C.PREDICTED_RETURN])
    np.testing.assert_array_equal(got[C.ACTUAL_RETURN], result.predictions[C.ACTUAL_RETURN])
    tail = bundle.predict(prices.iloc[-40:])  # new data: any frame longer than the window
    np.testing.assert_array_equal(tail[C.PREDICTED_RETURN],
                                  result.predictions[C.PREDICTED_RETURN].iloc[-31:])


def test_save_bundle_alone(result, tmp_path):
    folder = export.save_bundle(result, tmp_path / "b")
    assert sorted(os.listdir(folder)) == sorted([C.MODEL_WEIGHTS, C.RUN_JSON])


def test_missing_bundle_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match=str(tmp_path)):
        export.load_bundle(tmp_path)


def test_write_predictions_by_suffix(result, tmp_path):
    pq = export.write_predictions(result, tmp_path / "p.parquet")
    back = pd.read_parquet(pq)
    assert list(back.columns) == list(C.PREDICTION_COLUMNS[1:])
    np.testing.assert_array_equal(back[C.PREDICTED_RETURN], result.predictions[C.PREDICTED_RETURN])
    with pytest.raises(ConfigError, match=r"\.csv or \.parquet"):
        export.write_predictions(result, tmp_path / "p.txt")


def test_nan_metrics_become_null(result, tmp_path):
    import dataclasses

    broken = dataclasses.replace(result, metrics={**result.metrics, "x": math.nan})
    path = export.write_metrics(broken, tmp_path / C.METRICS_JSON)
    assert json.loads(path.read_text())["x"] is None


def test_walk_forward_folder_holds_one_loadable_bundle_per_fold(prices, tmp_path):
    from sandbox.config import WalkForwardSpec

    config = RunConfig(model=ModelConfig(window=10, hidden=4, layers=1),
                       train=TrainConfig(epochs=1, threads=1),
                       walk_forward=WalkForwardSpec(start=str(prices.index[200].date()),
                                                    retrain_every=40, val_length=30))
    result = pipeline.run(config, prices=prices, jobs=1, evidence=False)
    out = tmp_path / "wf"
    paths = export.write_run(result, out)
    assert set(paths) == {C.PREDICTIONS_CSV, C.METRICS_JSON, C.MODEL_WEIGHTS, C.RUN_JSON,
                          C.FOLDS_DIR}
    assert sorted(os.listdir(out / C.FOLDS_DIR)) == ["000", "001", "002"]  # 100 bars / 40
    header = (out / C.PREDICTIONS_CSV).read_text().splitlines()[0].split(",")
    assert header == [*C.PREDICTION_COLUMNS, C.FOLD]
    for k, record in enumerate(result.folds):
        bundle = export.load_bundle(out / C.FOLDS_DIR / f"{k:03d}")
        assert bundle.feature_state == result.fold_states[k]
        assert bundle.config.walk_forward is None and bundle.config.train.seed == record["seed"]
        assert bundle.splits[export.SPLIT_TEST_START] == record["predict_start"]
        info = json.loads((out / C.FOLDS_DIR / f"{k:03d}" / C.RUN_JSON).read_text())
        assert info[C.FOLD]["fold"] == k
        rows = result.predictions.index[result.predictions[C.FOLD] == k]
        again = bundle.predict(prices.loc[: rows[-1]])
        np.testing.assert_allclose(again.loc[rows, C.PREDICTED_RETURN],
                                   result.predictions.loc[rows, C.PREDICTED_RETURN],
                                   rtol=1e-6, atol=0)
    newest = export.load_bundle(out)  # the folder itself: the newest fold's model
    assert newest.feature_state == result.fold_states[-1]
    run_json = json.loads((out / C.RUN_JSON).read_text())
    assert run_json[C.WALK_FORWARD]["start"] == prices.index[200].isoformat()
    assert run_json["folds"] == json.loads(json.dumps(result.folds))
