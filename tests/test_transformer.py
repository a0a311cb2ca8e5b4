"""The Transformer kind: its shape, its shortcut for the last position, its position code,
determinism, batch-vs-single agreement and the end-to-end run with every output."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from test_features import make_prices
from torch import nn

from sandbox import cli, export, models, pipeline, sweep, training
from sandbox import constants as C
from sandbox.config import ModelConfig, RunConfig, SplitSpec, TrainConfig
from sandbox.data import LoadedPrices
from sandbox.errors import ConfigError


def _model(seed: int = 0, **shape) -> models.TransformerPredictor:
    torch.manual_seed(seed)
    config = ModelConfig(kind=C.TRANSFORMER, **{"hidden": 16, "heads": 4, "layers": 2,
                                               "window": 12, "dropout": 0.0, **shape})
    return models.build_model(config, 5)


def test_the_shape_follows_the_config():
    model = models.build_model(ModelConfig(kind=C.TRANSFORMER, hidden=32, heads=8, layers=3,
                                           dropout=0.1), 5)
    assert isinstance(model, models.TransformerPredictor)
    assert isinstance(model.encoder, nn.TransformerEncoder) and len(model.encoder.layers) == 3
    layer = model.encoder.layers[0]
    assert layer.self_attn.batch_first and layer.self_attn.num_heads == 8
    assert layer.self_attn.embed_dim == 32 and layer.linear1.out_features == 64
    assert layer.dropout1.p == layer.dropout2.p == 0.1
    assert model.embed.in_features == 5 and model.head.out_features == 1
    assert model(torch.randn(3, 30, 5)).shape == (3,)


def test_defaults_are_the_lstm_defaults_with_four_heads():
    config = ModelConfig(kind=C.TRANSFORMER)
    model = models.build_model(config, 5)
    layer = model.encoder.layers[0]
    assert (config.window, layer.self_attn.embed_dim, len(model.encoder.layers),
            layer.self_attn.num_heads) == (30, 64, 2, 4)


@pytest.mark.parametrize("train", [False, True])
def test_last_position_shortcut_equals_the_full_encoder(train):
    model = _model(hidden=24, heads=3, layers=3).train(train)
    x = torch.randn(7, 12, 5)
    with torch.no_grad():
        full = model.encoder(model.positions(model.embed(x)))[:, -1]  # torch's own forward
        reference = model.head(full).squeeze(-1)
        np.testing.assert_allclose(model(x).numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("width", [8, 9])
def test_position_code_is_the_sine_cosine_formula(width):
    code = models.SinusoidalPositions.table(20, width).numpy()
    for p in (0, 1, 7, 19):
        for i in range(width):
            angle = p / 10000 ** ((i - i % 2) / width)
            expected = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert code[p, i] == pytest.approx(expected, abs=1e-6)


def test_a_longer_window_than_built_gets_a_longer_code():
    model = _model(window=12).eval()
    x = torch.randn(2, 40, 5)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2,) and torch.isfinite(out).all()
    np.testing.assert_allclose(model.positions.code.numpy(),
                               models.SinusoidalPositions.table(40, 16).numpy())


def test_the_position_code_is_not_in_the_weights():
    assert not [k for k in _model().state_dict() if k.startswith("positions")]


def test_building_and_running_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _model(heads=1)  # odd heads and norm_first both block torch's nested tensors
        model(torch.randn(2, 12, 5)).sum().backward()
        model.eval()
        with torch.no_grad():
            model(torch.randn(2, 12, 5))


def test_a_prediction_depends_only_on_its_own_window():
    model = _model().eval()
    x = torch.randn(6, 12, 5)
    y = x.clone()
    y[3:] += torch.randn(3, 12, 5)  # other windows of the batch change
    with torch.no_grad():
        assert torch.equal(model(x)[:3], model(y)[:3])


def test_eval_predictions_agree_in_a_batch_and_one_by_one():
    model = _model(hidden=64, heads=4, window=30).eval()
    x = torch.randn(256, 30, 5)
    with torch.no_grad():
        batch = model(x).numpy()
        single = np.array([model(x[i:i + 1]).item() for i in range(len(x))])
    scale = np.abs(batch).max()
    np.testing.assert_allclose(single, batch, rtol=0, atol=1e-6 * scale)


# --- end to end --------------------------------------------------------------------------------


def _config(seed: int = 0) -> RunConfig:
    return RunConfig(split=SplitSpec(val_start="2000-09-01", test_start="2000-11-01"),
                     model=ModelConfig(kind=C.TRANSFORMER, window=10, hidden=8, heads=2,
                                       layers=1, dropout=0.1),
                     train=TrainConfig(epochs=2, batch_size=32, threads=1, seed=seed))


@pytest.fixture(scope="module")
def prices():
    return make_prices(300, seed=3, phi=0.2)


@pytest.fixture(scope="module")
def run(prices):
    return pipeline.run(_config(), prices=prices)


def test_same_seed_gives_identical_predictions(prices, run):
    again = pipeline.run(_config(), prices=prices)
    np.testing.assert_array_equal(again.predictions[C.PREDICTED_RETURN],
                                  run.predictions[C.PREDICTED_RETURN])
    other = pipeline.run(_config(seed=1), prices=prices)
    assert not np.array_equal(other.predictions[C.PREDICTED_RETURN],
                              run.predictions[C.PREDICTED_RETURN])


def test_a_saved_transformer_loads_and_predicts_the_same(prices, run, tmp_path):
    export.write_run(run, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {C.PREDICTIONS_CSV, C.METRICS_JSON,
                                                    C.RUN_JSON, C.MODEL_WEIGHTS}
    info = json.loads((tmp_path / C.RUN_JSON).read_text())
    assert info["config"]["model"]["kind"] == C.TRANSFORMER
    bundle = export.load_bundle(tmp_path)
    assert isinstance(bundle.model, models.TransformerPredictor)
    loaded = LoadedPrices(frame=prices, label="p", source="frame", warnings=[])
    again = pipeline.predict(tmp_path, loaded, RunConfig().data)
    np.testing.assert_allclose(again.predictions[C.PREDICTED_RETURN].to_numpy(),
                               run.predictions[C.PREDICTED_RETURN].to_numpy(), rtol=0, atol=1e-7)


def test_cli_train_and_predict_with_the_transformer(prices, tmp_path, capsys):
    src = tmp_path / "prices.csv"
    prices.to_csv(src)
    out = tmp_path / "run"
    code = cli.main(["train", "--csv", str(src), "--model", C.TRANSFORMER, "--hidden", "8",
                     "--heads", "2", "--layers", "1", "--window", "10", "--epochs", "1",
                     "--threads", "1", "--out", str(out)])
    assert code == 0
    assert {p.name for p in out.iterdir()} == {C.PREDICTIONS_CSV, C.METRICS_JSON, C.RUN_JSON,
                                               C.MODEL_WEIGHTS}
    model = json.loads((out / C.RUN_JSON).read_text())["config"]["model"]
    assert (model["kind"], model["heads"], model["hidden"]) == (C.TRANSFORMER, 2, 8)
    again = tmp_path / "again"
    assert cli.main(["predict", "--model", str(out), "--csv", str(src), "--out", str(again)]) == 0
    trained = pd.read_csv(out / C.PREDICTIONS_CSV)[C.PREDICTED_RETURN]
    predicted = pd.read_csv(again / C.PREDICTIONS_CSV)[C.PREDICTED_RETURN]
    np.testing.assert_allclose(predicted, trained, rtol=0, atol=1e-7)


def test_heads_that_do_not_divide_the_width_exit_2(tmp_path, capsys):
    code = cli.main(["train", "--sample", "GSPC", "--model", C.TRANSFORMER, "--hidden", "30",
                     "--heads", "4", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "multiple" in capsys.readouterr().err


def test_training_runs_the_shared_fit_loop(run):
    history = run.history
    assert isinstance(history, training.TrainHistory)
    assert history.epochs_run == 2 and len(history.val_loss) == 2
    assert history.best_val_loss == min(history.val_loss)


# --- sweep grids -------------------------------------------------------------------------------


def test_a_grid_over_kinds_and_heads_trains_each_recurrent_network_once():
    grid = sweep.parse_grid("model=lstm,transformer heads=2,4 hidden=16")
    tasks = sweep.expand_grid(RunConfig(), grid, seeds=2)
    configs = {t.config_id: (t.config.model.kind, t.config.model.heads) for t in tasks}
    # by hand: lstm once (its heads are unused), the transformer with 2 and with 4 heads
    assert sorted(configs.values()) == [(C.LSTM, 4), (C.TRANSFORMER, 2), (C.TRANSFORMER, 4)]
    assert len(tasks) == 6
    lstm = [t for t in tasks if t.config.model.kind == C.LSTM]
    assert all("heads" not in t.params and "heads" not in t.label for t in lstm)


def test_a_heads_axis_without_a_transformer_is_refused():
    with pytest.raises(ConfigError, match="heads"):
        sweep.expand_grid(RunConfig(), sweep.parse_grid("heads=2,4"))


def test_a_transformer_base_varies_its_heads():
    base = RunConfig(model=ModelConfig(kind=C.TRANSFORMER, hidden=16))
    tasks = sweep.expand_grid(base, sweep.parse_grid("heads=1,2,8"))
    assert [t.config.model.heads for t in tasks] == [1, 2, 8]


def test_a_width_the_heads_do_not_divide_is_refused_in_a_grid():
    with pytest.raises(ConfigError, match="multiple"):
        sweep.expand_grid(RunConfig(), sweep.parse_grid("model=lstm,transformer hidden=30"))
