"""The memory lab: the remember-a-value task, the gradient reaching the marked step, the
gradient reach of a trained model (checked against finite differences and torch's Jacobian),
and the `sandbox lab` commands."""

from __future__ import annotations

import argparse
import copy
import threading
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from sandbox import cli, export, lab, models, pipeline
from sandbox import constants as C
from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig
from sandbox.errors import Cancelled, ConfigError

SMALL_DATA = DataSpec(source="sample:GSPC", start="2018-01-01")


def _memory_args(out, **changes) -> argparse.Namespace:
    values = {"kinds": "rnn,transformer", "lags": "3,6", "seed": 0, "steps": 20,
              "out": str(out)}
    values.update(changes)
    return argparse.Namespace(**values)


@pytest.fixture(scope="module")
def trained():
    """A tiny LSTM trained for one epoch on the GSPC bars since 2018."""
    config = RunConfig(data=SMALL_DATA, model=ModelConfig(window=6, hidden=4, layers=1),
                       train=TrainConfig(epochs=1, threads=1))
    return pipeline.run(config)


# --- the task --------------------------------------------------------------------------------


def test_the_target_is_the_value_marked_lag_steps_before_the_last():
    x, y = lab.memory_task(4, 7, np.random.default_rng(1))
    assert x.shape == (4, 7 + lab.LEAD, 2)
    last = x.shape[1] - 1
    # the marker: exactly one 1.0 per sequence, 7 steps before the last
    assert (x[:, :, 1].sum(axis=1) == 1.0).all()
    assert (x[:, last - 7, 1] == 1.0).all()
    np.testing.assert_array_equal(y, x[:, last - 7, 0])
    assert 0.5 < x[:, :, 0].std() < 1.5  # standard normal noise


def test_the_kinds_are_sized_to_the_same_budget():
    from sandbox import sizes

    budget = lab.budget()
    for kind in lab.KINDS:
        config = lab.task_model_config(kind)
        built = sum(p.numel() for p in models.build_model(config, lab.N_FEATURES).parameters())
        assert abs(built - budget) / budget < 0.1, (kind, built, budget)
        assert built == sizes.parameter_count(config, lab.N_FEATURES)


def test_bad_kinds_and_lags_are_refused():
    with pytest.raises(ConfigError, match="--kinds"):
        lab.parse_kinds("rnn,cnn")
    for text in ("0", "5,x", "2.5", f"{lab.MAX_LAG + 1}", ""):
        with pytest.raises(ConfigError, match="--lags"):
            lab.parse_lags(text)
    assert lab.parse_lags("40, 5,5") == [5, 40]
    assert lab.parse_kinds("LSTM,rnn,lstm") == [C.LSTM, C.RNN]


# --- the gradient reaching the marked step -----------------------------------------------------


def test_the_marked_gradient_norm_matches_the_jacobian():
    torch.manual_seed(0)
    model = models.build_model(ModelConfig(kind=C.GRU, window=20, hidden=5, layers=1), 2)
    x, _ = lab.memory_task(3, 4, np.random.default_rng(0))
    xt = torch.from_numpy(x)
    got = lab.marked_gradient_norm(model, xt, 4)
    # independent: the full Jacobian of the 3 predictions with respect to all the inputs
    jac = torch.autograd.functional.jacobian(lambda v: model(v), xt)  # (3, 3, L, 2)
    step = x.shape[1] - 1 - 4
    norms = [float(jac[i, i, step].double().norm()) for i in range(3)]
    assert got == pytest.approx(np.mean(norms), rel=1e-5)


def test_memory_csv_is_the_same_byte_for_byte_with_the_same_seed(tmp_path):
    assert lab.cli_memory(_memory_args(tmp_path / "a")) == 0
    assert lab.cli_memory(_memory_args(tmp_path / "b")) == 0
    first = (tmp_path / "a" / C.MEMORY_CSV).read_bytes()
    assert first == (tmp_path / "b" / C.MEMORY_CSV).read_bytes()
    frame = pd.read_csv(tmp_path / "a" / C.MEMORY_CSV)
    assert tuple(frame.columns) == lab.MEMORY_COLUMNS
    assert list(zip(frame["kind"], frame["lag"], strict=True)) == [
        ("rnn", 3), ("rnn", 6), ("transformer", 3), ("transformer", 6)]
    assert np.isfinite(frame[list(lab.MEMORY_COLUMNS[2:])].to_numpy()).all()
    # another seed trains other weights on other sequences
    assert lab.cli_memory(_memory_args(tmp_path / "c", seed=1)) == 0
    assert (tmp_path / "c" / C.MEMORY_CSV).read_bytes() != first


def test_a_cell_does_not_depend_on_the_other_cells():
    both = lab.run_memory([C.RNN, C.LSTM], [3, 6], steps=10)
    alone = lab.run_memory([C.LSTM], [6], steps=10)
    assert replace(alone.cells[0], seconds=0.0) == replace(both.cell(C.LSTM, 6), seconds=0.0)


def test_progress_is_streamed_and_stop_is_honoured():
    seen: list[lab.MemoryProgress] = []
    cancel = threading.Event()

    def on_progress(p: lab.MemoryProgress) -> None:
        seen.append(p)
        if p.cell is not None:
            cancel.set()  # stop once the first cell is done

    with pytest.raises(Cancelled):
        lab.run_memory([C.RNN, C.GRU], [3], steps=2 * lab.PROGRESS_EVERY,
                       on_progress=on_progress, cancel=cancel)
    steps = [p.step for p in seen if p.kind == C.RNN]
    assert steps == [0, lab.PROGRESS_EVERY, 2 * lab.PROGRESS_EVERY]
    assert seen[-1].cell is not None and seen[-1].fraction == pytest.approx(0.5)
    assert all(p.kind == C.RNN for p in seen)  # the GRU never started


@pytest.mark.slow
def test_at_lag_40_the_recurrent_gradient_vanishes_and_attention_reaches_the_marked_step():
    """The acceptance check, as measured.

    The issue asked for "at lag 40 the LSTM's gradient norm reaching the marked step after
    training is at least 10x the RNN's". Measured with this module's default budget (1,000
    Adam steps of 32 sequences, about 1,300 parameters per network) on seeds 0-3, lag 40:

    ======  =========================  ==========================  ===================
    seed    RNN grad / mse             LSTM grad / mse             LSTM / RNN
    ======  =========================  ==========================  ===================
    0       1.5e-20 / 1.06             3.9e-18 / 1.02              267
    1       1.1e-20 / 0.98             5.7e-15 / 0.98              5e5
    2       8.4e-16 / 1.01             1.3e-17 / 0.97              0.016
    3       1.6e-13 / 1.03             2.8e-15 / 1.02              0.017
    ======  =========================  ==========================  ===================

    The LSTM as the app builds it (torch's initialisation: forget-gate bias 0, so the cell
    keeps half of itself per step at first) does not learn lag 40 in this budget: its error
    stays at that of predicting 0 (1.0) and its gradient vanishes like the RNN's, so which of
    two vanished numbers is larger is an accident of the seed and "10x" is not a fact. (The
    GRU of the same budget learned lag 40 with seed 0, gradient 1.4, error 0.0002, but not
    with seed 1.) What holds for every seed: the gradient reaching the marked step after
    training is below 1e-9 for both the RNN and the LSTM, whose errors stay above 0.8, while
    the Transformer, whose attention reaches every step directly, learns the lag (error below
    0.05; measured 0.0003-0.0009) and keeps a gradient of order 1 there (1.1-2.5).
    """
    result = lab.run_memory([C.RNN, C.LSTM, C.TRANSFORMER], [40], steps=lab.STEPS, seed=0)
    rnn, lstm, attention = (result.cell(k, 40) for k in (C.RNN, C.LSTM, C.TRANSFORMER))
    assert rnn.final_mse > 0.8 and lstm.final_mse > 0.8
    assert rnn.grad_norm_trained < 1e-9 and lstm.grad_norm_trained < 1e-9
    assert attention.final_mse < 0.05
    assert attention.grad_norm_trained > 0.1
    assert attention.grad_norm_trained > 1e6 * max(rnn.grad_norm_trained,
                                                   lstm.grad_norm_trained)


# --- gradient reach of a trained model ---------------------------------------------------------


def _val_windows(result) -> np.ndarray:
    """The validation windows, built here by plain slicing of the scaled feature rows."""
    from sandbox import features

    state = result.feature_state
    rows, x = features.transform(result.data.frame, state)
    seq_len = int(state["seq_len"])
    val = np.flatnonzero(result.predictions[C.SPLIT].reindex(rows).to_numpy() == C.VAL)
    return np.stack([x[i:i + seq_len] for i in val]).astype(np.float64)


def test_reach_matches_central_finite_differences(trained):
    got = lab.reach_of(trained)
    wins = _val_windows(trained)
    assert got.split == C.VAL and got.n_windows == len(wins)
    model = copy.deepcopy(trained.model).double().eval()
    base = torch.from_numpy(wins)
    eps = 1e-6
    _n, width, n_feat = wins.shape
    expected = np.zeros((width, n_feat))
    with torch.no_grad():
        for pos in range(width):
            for f in range(n_feat):
                up, down = base.clone(), base.clone()
                up[:, pos, f] += eps
                down[:, pos, f] -= eps
                slope = (model(up) - model(down)).numpy() / (2 * eps)
                expected[width - 1 - pos, f] = np.abs(slope).mean()
    np.testing.assert_allclose(got.per_feature, expected, rtol=2e-3, atol=1e-7)
    np.testing.assert_allclose(got.mean_abs_grad, expected.mean(axis=1), rtol=2e-3, atol=1e-7)
    assert got.feature_names == list(trained.feature_state["feature_names"])


def test_reach_of_a_run_in_another_process_equals_its_own(trained):
    remote = replace(trained, model=None, weights=export.weights_bytes(trained))
    np.testing.assert_array_equal(lab.reach_of(remote).per_feature,
                                  lab.reach_of(trained).per_feature)


def test_reach_uses_every_row_when_none_is_validation(trained):
    from sandbox import features
    from sandbox.export import Bundle

    bundle = Bundle(config=trained.config, feature_state=trained.feature_state,
                                    model=trained.model, splits=None)
    got = lab.reach_of(bundle, trained.data.frame)
    rows, _ = features.transform(trained.data.frame, trained.feature_state)
    assert got.split == lab.ALL_ROWS and got.n_windows == len(rows)


def test_reach_can_be_stopped(trained):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        lab.reach_of(trained, cancel=cancel)


# --- the commands ------------------------------------------------------------------------------


def test_lab_reach_writes_the_csv_on_the_models_own_data(trained, tmp_path, capsys):
    export.write_run(trained, tmp_path / "model")
    code = cli.main(["lab", "reach", "--model", str(tmp_path / "model"),
                     "--out", str(tmp_path / "reach")])
    assert code == 0
    frame = pd.read_csv(tmp_path / "reach" / C.REACH_CSV)
    names = trained.feature_state["feature_names"]
    assert list(frame.columns) == ["lag", "mean_abs_grad"] + [f"abs_grad_{n}" for n in names]
    expected = lab.reach_of(trained)
    np.testing.assert_allclose(frame["mean_abs_grad"], expected.mean_abs_grad, rtol=1e-5)
    assert frame["lag"].tolist() == list(range(int(trained.feature_state["seq_len"])))
    out = capsys.readouterr().out
    assert "validation windows" in out and C.REACH_CSV in out


@pytest.mark.parametrize("argv", [
    ["lab", "memory", "--kinds", "rnn,cnn", "--out", "{tmp}/m"],
    ["lab", "memory", "--lags", "5,abc", "--out", "{tmp}/m"],
    ["lab", "memory", "--lags", "0", "--out", "{tmp}/m"],
    ["lab", "reach", "--model", "{tmp}/missing", "--out", "{tmp}/r"],
])
def test_bad_input_is_one_line_and_exit_2(argv, tmp_path, capsys):
    assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0]
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()


def test_a_written_memory_csv_reads_back(tmp_path):
    cells = [lab.MemoryCell(C.RNN, 5, 0.25, 1e-3, 0.5), lab.MemoryCell(C.GRU, 40, 1.0, 0.0, 0.0)]
    lab.write_memory(lab.MemoryResult(cells=cells), tmp_path / "m")
    back = lab.read_memory(tmp_path / "m")
    assert [(c.kind, c.lag, c.final_mse, c.grad_norm_init, c.grad_norm_trained)
            for c in back.cells] == [(C.RNN, 5, 0.25, 1e-3, 0.5), (C.GRU, 40, 1.0, 0.0, 0.0)]
