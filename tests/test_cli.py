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
