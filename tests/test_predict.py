"""A saved model applied to data: rows labelled by the trained run's dates, `sandbox predict`,
and bad bundles refused with one line."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import stat

import numpy as np
import pandas as pd
import pytest
from test_features import make_prices

from sandbox import cli, export, pipeline
from sandbox import constants as C
from sandbox.config import ModelConfig, RunConfig, SplitSpec, TrainConfig
from sandbox.data import LoadedPrices
from sandbox.errors import ExportError

VAL_START, TEST_START = "2000-09-01", "2000-11-01"


@pytest.fixture(scope="module")
def prices():
    return make_prices(300, seed=3, phi=0.2)  # business days 2000-01-03 .. 2001-02-26


@pytest.fixture(scope="module")
def bundle_dir(prices, tmp_path_factory):
    config = RunConfig(split=SplitSpec(val_start=VAL_START, test_start=TEST_START),
                       model=ModelConfig(window=10, hidden=8, layers=1),
                       train=TrainConfig(epochs=1, threads=1))
    result = pipeline.run(config, prices=prices)
    out = tmp_path_factory.mktemp("bundle")
    export.write_run(result, out)
    return out


def _loaded(frame: pd.DataFrame) -> LoadedPrices:
    return LoadedPrices(frame=frame, label="p", source="frame", warnings=[])


def test_run_json_records_the_split_dates(bundle_dir, prices):
    splits = json.loads((bundle_dir / C.RUN_JSON).read_text())["splits"]
    dates = prices.index
    # the reference: the boundaries as given, on the synthetic business-day calendar
    assert pd.Timestamp(splits["val_start"]) == pd.Timestamp(VAL_START)
    assert pd.Timestamp(splits["test_start"]) == pd.Timestamp(TEST_START)
    assert pd.Timestamp(splits["train_end"]) == dates[dates < pd.Timestamp(VAL_START)][-1]
    assert pd.Timestamp(splits["last_bar"]) == dates[-1]


def test_labels_come_from_the_trained_dates_not_from_fractions():
    rows = pd.bdate_range("2010-01-01", periods=10)
    splits = {"train_end": "2010-01-05", "val_start": "2010-01-06",
              "test_start": "2010-01-12", "last_bar": "2010-01-14"}
    labels = pipeline.trained_labels(rows, splits)
    expected = ["train"] * 3 + ["val"] * 4 + ["test"] * 3  # Jan 1,4,5 | 6,7,8,11 | 12,13,14
    assert list(labels) == expected


def test_an_old_bundle_without_dates_calls_only_later_rows_test():
    rows = pd.bdate_range("2010-01-01", periods=6)
    labels = pipeline.trained_labels(rows, {"last_bar": "2010-01-05"})
    assert list(labels) == ["train"] * 3 + ["test"] * 3


def test_loaded_on_data_that_ends_before_the_test_start_has_no_test_rows(bundle_dir, prices):
    early = prices.loc[: "2000-10-20"]  # ends before TEST_START
    result = pipeline.predict(bundle_dir, _loaded(early), RunConfig().data)
    labels = result.predictions[C.SPLIT]
    assert C.TEST not in set(labels)  # today's main re-split 70/15/15 and called 15% "test"
    assert set(labels) == {C.TRAIN, C.VAL}
    assert (labels[labels.index < pd.Timestamp(VAL_START)] == C.TRAIN).all()
    assert result.trained_split["test_start"].startswith(TEST_START)


def test_predict_on_the_training_data_reproduces_the_trained_splits(bundle_dir):
    trained = pd.read_csv(bundle_dir / C.PREDICTIONS_CSV, index_col=0, parse_dates=True)
    frame = make_prices(300, seed=3, phi=0.2)
    result = pipeline.predict(bundle_dir, _loaded(frame), RunConfig().data)
    assert list(result.predictions[C.SPLIT]) == list(trained[C.SPLIT])
    np.testing.assert_allclose(result.predictions[C.PREDICTED_RETURN].to_numpy(),
                               trained[C.PREDICTED_RETURN].to_numpy(), rtol=0, atol=1e-7)


def _csv(tmp_path, frame):
    path = tmp_path / "prices.csv"
    frame.to_csv(path)
    return path


def test_cli_predict_writes_predictions_and_metrics(bundle_dir, prices, tmp_path, capsys):
    src = _csv(tmp_path, prices.loc[: "2000-10-20"])
    out = tmp_path / "out"
    code = cli.main(["predict", "--model", str(bundle_dir), "--csv", str(src), "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [C.METRICS_JSON, C.PREDICTIONS_CSV]
    frame = pd.read_csv(out / C.PREDICTIONS_CSV)
    assert list(frame.columns) == list(C.PREDICTION_COLUMNS)
    assert set(frame[C.SPLIT]) == {C.TRAIN, C.VAL}
    metrics = json.loads((out / C.METRICS_JSON).read_text())
    assert metrics[C.SPLIT] == C.TEST and metrics[C.MODEL][C.RMSE] is None
    assert "no out-of-sample rows" in capsys.readouterr().out


def _copy(bundle_dir, tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(bundle_dir, dst)
    return dst


def _nan_weights(folder):
    from safetensors.numpy import load_file, save_file

    path = str(folder / C.MODEL_WEIGHTS)
    tensors = load_file(path)
    name = sorted(tensors)[0]
    tensors[name] = np.full_like(tensors[name], np.nan)
    save_file(tensors, path)


def _edit_run_json(folder, change):
    path = folder / C.RUN_JSON
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


def _rehash(folder):
    """Make run.json's file digests fit the files as they now are (a crafted bundle)."""
    path = folder / C.RUN_JSON
    try:
        if not stat.S_ISREG(path.stat().st_mode) or path.stat().st_size > 1 << 20:
            return
        info = json.loads(path.read_text())
        files = info["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for name in files:
        target = folder / name
        if target.exists() and stat.S_ISREG(target.stat().st_mode):
            files[name] = hashlib.sha256(target.read_bytes()).hexdigest()
    path.write_text(json.dumps(info))


@pytest.mark.parametrize("name", [C.MODEL_WEIGHTS, C.PREDICTIONS_CSV, C.METRICS_JSON])
def test_a_file_of_another_run_is_named(bundle_dir, tmp_path, name):
    """run.json holds each file's sha256: a folder mixing two runs' files says which."""
    folder = tmp_path / "run"
    shutil.copytree(bundle_dir, folder)
    path = folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, as a file of another run or a damaged copy
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=rf"{re.escape(str(path))}: not the file this run "
                                          r"wrote \(its sha256 differs"):
        export.load_bundle(folder)


def test_run_json_lists_the_sha256_of_every_other_file(bundle_dir):
    info = json.loads((bundle_dir / C.RUN_JSON).read_text())
    assert info["files"] == {
        name: hashlib.sha256((bundle_dir / name).read_bytes()).hexdigest()
        for name in (C.MODEL_WEIGHTS, C.PREDICTIONS_CSV, C.METRICS_JSON)}


@pytest.mark.parametrize("damage, words", [
    (lambda d: (d / C.MODEL_WEIGHTS).unlink(), "model.safetensors is missing"),
    (lambda d: (d / C.RUN_JSON).unlink(), "run.json is missing"),
    (lambda d: (d / C.MODEL_WEIGHTS).write_bytes(b"PK\x03\x04 not tensors"), "not a safetensors"),
    (lambda d: (d / C.RUN_JSON).write_text("{not json"), "not readable as JSON"),
    (lambda d: _edit_run_json(d, lambda i: i["config"]["model"].update(hidden=16)),
     "do not match"),
    (lambda d: _edit_run_json(d, lambda i: i["config"]["model"].update(layers=3)),
     "do not match"),
    (lambda d: _edit_run_json(d, lambda i: i["config"]["model"].update(hidden=10**9)),
     "hidden 1000000000: must be a whole number from 1 to 1,024"),
    (lambda d: _edit_run_json(d, lambda i: i["config"]["model"].update(layers=20000)),
     "layers 20000: must be a whole number from 1 to 8"),
    # files that are not regular, or far too large to be a run description
    (lambda d: (os.unlink(d / C.MODEL_WEIGHTS), os.mkfifo(d / C.MODEL_WEIGHTS)),
     "model.safetensors: not a regular file"),
    (lambda d: ((d / C.RUN_JSON).unlink(), (d / C.RUN_JSON).symlink_to("/dev/zero")),
     "run.json: not a regular file"),
    (lambda d: os.truncate(d / C.RUN_JSON, 2 * 1024**3), "bytes is not a run description"),
    # crafted feature states: one clear line naming the field
    (lambda d: _edit_run_json(d, lambda i: i.update(feature_state=[1, 2])),
     "feature_state is not usable (not an object)"),
    (lambda d: _edit_run_json(d, lambda i: i["feature_state"].update(seq_len=-3)),
     "feature_state is not usable (seq_len -3"),
    (lambda d: _edit_run_json(d, lambda i: i["feature_state"].update(seq_len=10**9)),
     "feature_state is not usable (seq_len 1000000000"),
    (lambda d: _edit_run_json(d, lambda i: i["feature_state"].update(window=0)),
     "feature_state is not usable (window 0 is not the config's 10)"),
    (lambda d: _edit_run_json(d, lambda i: i["feature_state"]["scaler"].update(mean=[0.0])),
     "scaler.mean is not 5 finite number(s)"),
    (lambda d: _edit_run_json(d, lambda i: i["feature_state"]["scaler"].update(std="x")),
     "scaler.std is not 5 finite number(s) > 0"),
    (lambda d: _edit_run_json(d, lambda i: i["feature_state"]["scaler"].update(
        std=[0.0] * 5)), "scaler.std is not 5 finite number(s) > 0"),
    (lambda d: _edit_run_json(d, lambda i: i["feature_state"].update(drift="up")),
     "drift 'up' is not a finite number"),
    (lambda d: _nan_weights(d), "holds values that are not finite numbers"),
    (lambda d: _edit_run_json(d, lambda i: i["config"]["model"].update(kind="cnn")),
     "not a valid run description"),
    (lambda d: _edit_run_json(d, lambda i: i.pop("feature_state")), "not a valid run"),
])
def test_bad_bundles_exit_2_with_one_line(bundle_dir, prices, tmp_path, capsys, damage, words):
    folder = _copy(bundle_dir, tmp_path)
    damage(folder)
    _rehash(folder)  # crafted with care: the digests in run.json fit the doctored files
    src = _csv(tmp_path, prices)
    with pytest.raises(ExportError):
        export.load_bundle(folder)
    code = cli.main(["predict", "--model", str(folder), "--csv", str(src),
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_traded_return_target_is_the_next_open_to_open_return(prices):
    config = RunConfig(model=ModelConfig(window=10, hidden=4, layers=1, target=C.TARGET_TRADED),
                       train=TrainConfig(epochs=1, threads=1))
    result = pipeline.run(config, prices=prices)
    o = prices[C.OPEN].to_numpy()
    t = 50  # prediction row t is bar t + window - 1
    bar = t + 9
    assert result.predictions[C.ACTUAL_RETURN].iloc[t] == pytest.approx(
        math.log(o[bar + 2] / o[bar + 1]), abs=1e-15)
    assert np.isnan(result.predictions[C.ACTUAL_RETURN].iloc[-2:]).all()
    assert result.feature_state["target_fill"] == C.FILL_NEXT_OPEN


def test_train_writes_the_bars_per_year_it_used(prices, tmp_path, capsys):
    src = _csv(tmp_path, prices)
    base = ["train", "--csv", str(src), "--window", "10", "--hidden", "4", "--layers", "1",
            "--epochs", "1", "--threads", "1"]
    assert cli.main([*base, "--out", str(tmp_path / "a")]) == 0
    measured = json.loads((tmp_path / "a" / C.METRICS_JSON).read_text())
    # business days with no holidays: 260.9 a year by count, an exchange's daily bars
    assert measured["periods_per_year"] == 252
    assert "252 bars a year, measured" in capsys.readouterr().out
    assert cli.main([*base, "--periods-per-year", "365", "--out", str(tmp_path / "b")]) == 0
    given = json.loads((tmp_path / "b" / C.METRICS_JSON).read_text())
    assert given["periods_per_year"] == 365
    ratio = given[C.MODEL][C.SHARPE] / measured[C.MODEL][C.SHARPE]
    assert ratio == pytest.approx(math.sqrt(365 / 252), rel=1e-12)
    run = json.loads((tmp_path / "b" / C.RUN_JSON).read_text())
    assert run["config"]["strategy"]["periods_per_year"] == 365
    assert run["periods_per_year"] == 365
    measured_run = json.loads((tmp_path / "a" / C.RUN_JSON).read_text())
    assert measured_run["periods_per_year"] == 252
    assert measured_run["config"]["strategy"]["periods_per_year"] is None


def test_every_train_that_prints_test_figures_counts_a_look(prices, tmp_path, capsys):
    from sandbox import looks

    src = _csv(tmp_path, prices)
    base = ["train", "--csv", str(src), "--window", "10", "--hidden", "4", "--layers", "1",
            "--epochs", "1", "--threads", "1"]
    for seed in range(3):
        assert cli.main([*base, "--seed", str(seed), "--out", str(tmp_path / f"r{seed}")]) == 0
    out = capsys.readouterr().out
    assert "test split seen once on this data" in out
    assert "test split seen twice on this data" in out
    assert "test split seen 3 times on this data" in out
    from sandbox.config import DataSpec
    from sandbox.data import load_prices

    loaded = load_prices(DataSpec(source=f"csv:{src}")).frame
    assert looks.look_count(export.fingerprint(loaded)) == 3


def test_train_names_the_best_baseline_on_each_criterion(prices, tmp_path, capsys):
    src = _csv(tmp_path, prices)
    assert cli.main(["train", "--csv", str(src), "--window", "10", "--hidden", "4", "--layers",
                     "1", "--epochs", "1", "--threads", "1", "--out", str(tmp_path / "o")]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("test split:"))
    base = json.loads((tmp_path / "o" / C.METRICS_JSON).read_text())["baselines"]
    best_rmse = min(("random_walk", "momentum", "drift"), key=lambda n: base[n]["rmse"])
    best_return = max(("buy_and_hold", "random_walk", "momentum", "drift"),
                      key=lambda n: base[n]["total_return"])
    assert f"vs {best_rmse.replace('_', ' ')} {base[best_rmse]['rmse']:.4g}" in line
    assert f"vs {best_return.replace('_', ' ')} {base[best_return]['total_return']:.4g}" in line


def test_a_model_applied_to_another_symbol_or_bar_size_says_so(bundle_dir, prices):
    own = LoadedPrices(frame=prices.loc[:"2000-12-01"], label="prices", source="frame",
                       warnings=[])  # the label the fixture trained under, fewer bars
    assert pipeline.foreign_data(pipeline.predict(bundle_dir, own, RunConfig().data)) is None
    other = LoadedPrices(frame=prices, label="AAPL", source="csv:aapl.csv", warnings=[])
    result = pipeline.predict(bundle_dir, other, RunConfig().data)
    assert result.trained_data["label"] == "prices"
    assert pipeline.foreign_data(result) == "a model trained on prices, applied to AAPL"
    weekly = prices.resample("W-FRI").agg({"open": "first", "high": "max", "low": "min",
                                            "close": "last", "volume": "sum"}).dropna()
    result = pipeline.predict(bundle_dir, LoadedPrices(frame=weekly, label="prices",
                                                       source="frame", warnings=[]),
                              RunConfig().data)
    assert pipeline.foreign_data(result) == (
        "a model trained on prices (daily bars), applied to prices (weekly bars)")


@pytest.mark.parametrize("flag, value, words", [
    ("--hidden", "100000", "hidden 100000: must be a whole number from 1 to 1,024"),
    ("--layers", "20000", "layers 20000: must be a whole number from 1 to 8"),
    ("--window", "1000000", "window 1000000: must be a whole number from 2 to 10,000"),
])
def test_network_sizes_have_limits_the_app_shares(flag, value, words, tmp_path, capsys):
    code = cli.main(["train", flag, value, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_a_failed_train_removes_the_folder_it_created(tmp_path, capsys):
    src = tmp_path / "short.csv"
    make_prices(40).to_csv(src)
    out = tmp_path / "new" / "run"
    assert cli.main(["train", "--csv", str(src), "--window", "30", "--out", str(out)]) == 2
    assert not out.exists()  # the split was refused: nothing, not even an empty folder
    kept = tmp_path / "kept"
    kept.mkdir()
    assert cli.main(["train", "--csv", str(src), "--window", "30", "--out", str(kept)]) == 2
    assert kept.is_dir()  # a folder that was there before stays
