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
from sandbox import evaluate, pipeline, runs, sweep
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


def fake_run(config, *, cancel=None, prices=None):
    """Stands in for pipeline.run: val loss grows with hidden, test sharpe falls with it."""
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
    test_returns = rng.normal(0.0005, 0.01, 120)
    metrics = {
        C.VAL: {C.MODEL: {C.RMSE: 0.01 * h, C.TOTAL_RETURN: 0.1, C.SHARPE: 1.0 - h / 100}},
        C.TEST: {C.MODEL: {C.RMSE: 0.01, C.TOTAL_RETURN: h / 100, C.SHARPE: h / 10},
                 evaluate.KEY_BASELINES: {C.BUY_AND_HOLD: {C.TOTAL_RETURN: 0.05, C.SHARPE: 0.5}}},
    }
    val_loss = 1.0 + h / 100 + float(rng.normal(0, 1e-3))
    predictions = pd.DataFrame({C.SPLIT: C.TEST, C.STRATEGY_RETURN: test_returns})
    return pipeline.RunResult(
        config=config, data=prices, predictions=predictions, baselines={},
        metrics=metrics[C.TEST], metrics_by_split=metrics,
        history=TrainHistory(val_loss=[val_loss + 0.1, val_loss], best_epoch=1),
        model=None, feature_state={})


# --- grid parsing ----------------------------------------------------------------------------


def test_parse_grid_types_and_cli_spellings():
    grid = sweep.parse_grid("model=lstm,gru hidden=16,64 window=20,60 lr=1e-3 batch-size=32 "
                            "cost-bps=0,5 fill=close")
    assert grid == {"kind": ["lstm", "gru"], "hidden": [16, 64], "window": [20, 60],
                    "lr": [0.001], "batch_size": [32], "cost_bps": [0.0, 5.0],
                    "fill": [C.FILL_CLOSE]}
    assert isinstance(grid["hidden"][0], int) and isinstance(grid["cost_bps"][0], float)
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
        ("model=transformer", "model 'transformer'"),
        ("window=1", "window 1"),
        ("hidden16", "expected NAME=VALUE1,VALUE2"),
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
        "kind=gru hidden=64 window=60 lr=0.001 seed=9")


# --- selection -------------------------------------------------------------------------------


def _rec(cid, seed, val_loss, val_sharpe, test_sharpe, error=None):
    if error:
        return runs.RunRecord(
            done=0, total=0, label=f"{cid} seed={seed}", config_id=cid, seed=seed,
            params={"hidden": int(cid[1:])}, error=error, val_loss=None, val_metrics={},
            test_metrics={}, seconds=1.0)
    return runs.RunRecord(
        done=0, total=0, label=f"{cid} seed={seed}", config_id=cid, seed=seed,
        params={"hidden": int(cid[1:])}, error=error, val_loss=val_loss,
        val_metrics={C.SHARPE: val_sharpe, C.TOTAL_RETURN: 0.0},
        test_metrics={C.SHARPE: test_sharpe, C.TOTAL_RETURN: test_sharpe / 10}, seconds=1.0,
        test_returns={"n": 100, "sharpe_per_bar": test_sharpe / 16, "skewness": 0.0,
                      "kurtosis": 3.0},
    )


def test_selection_uses_validation_only():
    records = [
        _rec("c1", 0, 1.00, 0.5, -2.0), _rec("c1", 1, 1.02, 0.7, -1.0),  # best validation
        _rec("c2", 0, 1.10, 2.0, 5.0), _rec("c2", 1, 1.20, 2.0, 6.0),  # best test: not chosen
        _rec("c3", 0, 0.50, 3.0, 9.0), _rec("c3", 1, None, None, None, error="NaN loss"),
    ]
    s = sweep.summarize(records)
    assert s["selected"]["config_id"] == "c1"  # c3 had a failed seed, c2 only wins on test
    assert s["selected"]["val"]["loss"]["mean"] == pytest.approx(1.01)
    assert s["selected"]["val"]["loss"]["std"] == pytest.approx(math.sqrt(2e-4))
    assert s["selected"]["test"][C.SHARPE]["mean"] == pytest.approx(-1.5)
    assert s["n_trials"] == 6 and s["n_failed"] == 1
    # every configuration's test figures live only in the labelled reference section
    ref = {r["config_id"]: r for r in s[sweep.TEST_FOR_REFERENCE]}
    assert ref["c2"]["test"][C.SHARPE]["mean"] == pytest.approx(5.5)
    assert all("test" not in c and C.TEST not in c["val"] for c in s["configs"])
    d = s["deflated_sharpe"]
    assert d["n_trials"] == 6 and d["sharpe_per_bar"] == pytest.approx(-1.5 / 16)
    assert d["dsr"] < 0.5


def test_selection_ties_go_to_higher_validation_sharpe():
    records = [_rec("c1", 0, 1.0, 0.2, 0.0), _rec("c2", 0, 1.0, 0.9, 0.0)]
    assert sweep.summarize(records)["selected"]["config_id"] == "c2"


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
    assert result.summary["n_trials"] == 12


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
    assert all(isinstance(r.predictions, pd.DataFrame) and len(r.predictions) == 120
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
    assert summary["n_trials"] == 4 and sweep.TEST_FOR_REFERENCE in summary
    text = "\n".join(sweep.describe(result))
    assert "hidden=4" in text and "trials: 4" in text and "deflated Sharpe" in text


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


def test_cli_sweep_writes_csv_and_summary(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", *TINY_FLAGS, "--grid", "hidden=4,6", "--seeds", "2", "--jobs", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "selected on validation" in printed and "deflated Sharpe" in printed
    runs = pd.read_csv(out / sweep.SWEEP_CSV)
    assert len(runs) == 4 and set(runs["hidden"]) == {4, 6}


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
