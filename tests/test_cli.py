"""The CLI contract: exit codes and one plain line on stderr for bad input."""

from __future__ import annotations

import pytest

from sandbox import __version__
from sandbox import constants as C
from sandbox.cli import build_parser, main, run_config_from_args


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "--window", "1", "--out", "x"], "window 1"),
        (["train", "--epochs", "0", "--out", "x"], "epochs 0"),
        (["train", "--lr", "nan", "--out", "x"], "learning rate nan"),
        (["train", "--lr", "-1", "--out", "x"], "learning rate -1"),
        (["train", "--hidden", "0", "--out", "x"], "hidden 0"),
        (["train", "--dropout", "1", "--out", "x"], "dropout 1"),
        (["train", "--cost-bps", "-3", "--out", "x"], "cost -3"),
        (["gui", "--dropout", "1.5"], "dropout 1.5"),
    ],
)
def test_bad_hyperparameters_exit_2_with_one_line(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert words in line
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the --out folder


@pytest.mark.parametrize(
    "argv",
    [
        ["train"],  # --out missing
        ["train", "--window", "ten", "--out", "x"],
        ["train", "--sample", "GSPC", "--csv", "a.csv", "--out", "x"],
        ["backtest", "--csv", "p.csv"],
        ["fetch"],
        ["train", "--model", "cnn", "--out", "x"],
    ],
)
def test_usage_errors_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    _one_error_line(capsys.readouterr().err)


def test_flags_build_the_run_config():
    args = build_parser().parse_args(
        ["train", "--csv", "p.csv", "--model", "gru", "--window", "20", "--lr", "0.01",
         "--val-start", "2010-01-01", "--strategy", "long_short", "--fill", "close",
         "--cost-bps", "0", "--out", "o"]
    )
    cfg = run_config_from_args(args)
    assert cfg.data.source == "csv:p.csv"
    assert (cfg.model.kind, cfg.model.window, cfg.model.hidden) == (C.GRU, 20, 64)
    assert cfg.train.lr == 0.01 and cfg.split.val_start == "2010-01-01"
    assert (cfg.strategy.strategy, cfg.strategy.fill, cfg.strategy.cost_bps) == (
        C.LONG_SHORT, C.FILL_CLOSE, 0.0)


def test_default_source_is_the_bundled_sample():
    cfg = run_config_from_args(build_parser().parse_args(["gui"]))
    assert cfg.data.source == f"{C.SOURCE_SAMPLE}:{C.DEFAULT_SAMPLE}"
    cfg = run_config_from_args(build_parser().parse_args(["gui", "--ticker", " msft "]))
    assert cfg.data.source == "yahoo:MSFT"


# --- walk-forward --------------------------------------------------------------------------------


def test_walk_forward_flags_build_the_spec_and_start_means_the_walk_start():
    args = build_parser().parse_args(
        ["train", "--walk-forward", "--start", "2010-01-01", "--retrain-every", "63",
         "--rolling", "1000", "--warm-start", "--warm-epochs", "3", "--val-length", "100",
         "--data-start", "2001-01-01", "--out", "o"])
    cfg = run_config_from_args(args)
    wf = cfg.walk_forward
    assert (wf.start, wf.retrain_every, wf.window_mode, wf.train_length) == (
        "2010-01-01", 63, C.ROLLING, 1000)
    assert (wf.warm_start, wf.warm_epochs, wf.val_length) == (True, 3, 100)
    assert cfg.data.start == "2001-01-01"  # --start is not the data's start here
    frac = run_config_from_args(build_parser().parse_args(
        ["train", "--walk-forward", "--start", "0.6", "--out", "o"]))
    assert frac.walk_forward.start == 0.6 and frac.data.start is None
    single = run_config_from_args(build_parser().parse_args(
        ["train", "--start", "2010-01-01", "--out", "o"]))
    assert single.walk_forward is None and single.data.start == "2010-01-01"


@pytest.mark.parametrize(("argv", "words"), [
    (["--retrain-every", "63"], "--retrain-every is a walk-forward setting"),
    (["--warm-start"], "--warm-start is a walk-forward setting"),
    (["--walk-forward", "--start", "1999-02-01"], "needs at least"),
    (["--walk-forward", "--start", "2030-01-01"], "after the last bar"),
    (["--walk-forward", "--start", "2000-01-03", "--rolling", "100000"], "--rolling 100000"),
    (["--walk-forward", "--retrain-every", "0"], "retrain every 0"),
    (["--walk-forward", "--start", "1.5"], "walk-forward start 1.5"),
])
def test_impossible_walk_forward_specs_exit_2_with_one_line(argv, words, capsys, tmp_path):
    out = tmp_path / "out"
    assert main(["train", *argv, "--epochs", "1", "--out", str(out)]) == 2
    assert words in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_walk_forward_train_writes_folds_and_their_bundles_predict(capsys, tmp_path):
    import json

    import pandas as pd

    from sandbox import export

    out = tmp_path / "wf"
    argv = ["train", "--sample", "GSPC", "--data-start", "2016-01-01", "--walk-forward",
            "--start", "2018-01-01", "--retrain-every", "63", "--val-length", "40",
            "--window", "10", "--hidden", "4", "--layers", "1", "--epochs", "1",
            "--threads", "1", "--jobs", "1", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    oos = 251  # the bars of 2018 in the sample
    assert f"walk-forward: 4 fits = ceil({oos} out-of-sample bars / 63)" in printed
    frame = pd.read_csv(out / C.PREDICTIONS_CSV, index_col=0, parse_dates=True)
    assert list(frame.columns) == [*C.PREDICTION_COLUMNS[1:], C.FOLD]
    assert len(frame) == oos and frame.index[0] == pd.Timestamp("2018-01-02")
    assert list(frame[C.FOLD]) == [i // 63 for i in range(oos)]
    assert set(frame[C.SPLIT]) == {C.TEST}
    metrics = json.loads((out / C.METRICS_JSON).read_text())
    assert metrics[C.SPLIT] == C.WALK_FORWARD and len(metrics["folds"]) == 4
    assert C.SIGNIFICANCE in metrics and C.RMSE in metrics[C.MODEL]
    run = json.loads((out / C.RUN_JSON).read_text())
    assert run[C.WALK_FORWARD]["start"].startswith("2018-01-02")
    assert run["config"]["data"]["start"] == "2016-01-01"
    folds = sorted(p.name for p in (out / C.FOLDS_DIR).iterdir())
    assert folds == ["000", "001", "002", "003"]
    bundle = export.load_bundle(out / C.FOLDS_DIR / "001")
    assert bundle.splits[export.SPLIT_TEST_START] == metrics["folds"][1]["predict_start"]
    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(out / C.FOLDS_DIR / "001"), "--sample", "GSPC",
                 "--start", "2017-06-01", "--out", str(pred)]) == 0
    again = pd.read_csv(pred / C.PREDICTIONS_CSV, index_col=0, parse_dates=True)
    fold_rows = frame[frame[C.FOLD] == 1].index
    # the fold's bundle predicts its own bars as the walk did (same scalers and weights)
    pd.testing.assert_series_equal(again.loc[fold_rows, C.PREDICTED_RETURN],
                                   frame.loc[fold_rows, C.PREDICTED_RETURN], rtol=1e-6,
                                   atol=0, check_names=False)
    assert (again.loc[again.index >= fold_rows[0], C.SPLIT] == C.TEST).all()


def test_sweep_jobs_is_not_taken_for_a_walk_forward_flag():
    cfg = run_config_from_args(build_parser().parse_args(
        ["sweep", "--grid", "hidden=8,16", "--jobs", "2", "--out", "o"]))
    assert cfg.walk_forward is None


def test_gui_takes_the_walk_forward_flags_as_given_settings():
    from sandbox.cli import settings_given

    args = build_parser().parse_args(["gui", "--walk-forward", "--start", "2012-01-01",
                                      "--retrain-every", "21", "--warm-start"])
    cfg = run_config_from_args(args)
    assert cfg.walk_forward.start == "2012-01-01" and cfg.walk_forward.retrain_every == 21
    assert cfg.walk_forward.warm_start and cfg.data.start is None
    assert settings_given(args)
    assert not settings_given(build_parser().parse_args(["gui"]))
