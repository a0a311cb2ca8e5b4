"""Command line front door: ``sandbox [gui|train|predict|sweep|backtest|fetch]``.

Exit codes (the CLI contract): 0 success; 2 bad input or usage, with one plain line on
stderr that says what and where; 130 cancelled by Ctrl-C, leaving no partial file; 1 an
unexpected bug (with its traceback, so it can be reported).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from sandbox import __version__
from sandbox import constants as C
from sandbox.config import (
    DataSpec,
    ModelConfig,
    RunConfig,
    SplitSpec,
    StrategyConfig,
    TrainConfig,
    WalkForwardSpec,
)
from sandbox.errors import Cancelled, ConfigError, SandboxError
from sandbox.events import format_hms

PROG = "sandbox"


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one plain line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- argument groups ---------------------------------------------------------------------------


def _add_data_flags(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    g = p.add_argument_group("data (one of)")
    src = g.add_mutually_exclusive_group(required=required)
    src.add_argument("--sample", metavar="NAME", help=f"bundled sample: {', '.join(C.SAMPLES)}")
    src.add_argument("--csv", metavar="PATH", help="a CSV file of daily or intraday OHLCV bars")
    src.add_argument("--ticker", metavar="SYMBOL", help="download from Yahoo Finance (cached)")
    g.add_argument("--start", metavar="DATE", help="first date to use (YYYY-MM-DD)")
    g.add_argument("--end", metavar="DATE", help="last date to use (YYYY-MM-DD)")
    g.add_argument("--interval", default="1d", choices=C.INTERVALS, help="bar size (default 1d)")
    g.add_argument("--adj-close", action="store_true",
                   help="CSV: use the 'Adj Close' column as close (O/H/L scaled to match)")
    _add_date_format_flag(g)


def _add_date_format_flag(g: Any) -> None:
    g.add_argument("--date-format", metavar="ORDER",
                   help="CSV: how to read dates such as 01/02/2012: dayfirst, monthfirst, or a "
                        "format such as %%d.%%m.%%Y (default: decided from the whole column)")


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    m, t = ModelConfig(), TrainConfig()
    g = p.add_argument_group("model and training")
    g.add_argument("--model", choices=C.MODEL_KINDS, help=f"network (default {m.kind})")
    g.add_argument("--window", type=int, help=f"bars per input window (default {m.window})")
    g.add_argument("--hidden", type=int, help=f"hidden units (default {m.hidden})")
    g.add_argument("--layers", type=int, help=f"recurrent layers (default {m.layers})")
    g.add_argument("--dropout", type=float, help=f"dropout between layers (default {m.dropout})")
    g.add_argument("--heads", type=int,
                   help=f"Transformer attention heads, a divisor of hidden (default {m.heads})")
    g.add_argument("--target", choices=C.TARGETS,
                   help="'return': the next bar's close-to-close log return (default); "
                        "'traded_return': the return the fill earns (next_open: open t+1 -> "
                        "open t+2); 'price': the next close level (teaching only)")
    g.add_argument("--epochs", type=int, help=f"maximum epochs (default {t.epochs})")
    g.add_argument("--patience", type=int, help=f"early-stopping patience (default {t.patience})")
    g.add_argument("--batch-size", type=int, help=f"windows per step (default {t.batch_size})")
    g.add_argument("--lr", type=float, help=f"Adam learning rate (default {t.lr:g})")
    g.add_argument("--seed", type=int, help=f"random seed (default {t.seed})")
    g.add_argument("--threads", type=int, help="torch threads (default: all cores but one)")
    g.add_argument("--val-start", metavar="DATE", help="first validation date (default: 70%% mark)")
    g.add_argument("--test-start", metavar="DATE", help="first test date (default: 85%% mark)")
    g.add_argument("--min-returns", type=int, metavar="N",
                   help=f"fewest usable returns the validation and test splits need "
                        f"(default {SplitSpec().min_returns}; fewer: refused)")
    _add_strategy_flags(p)


def _add_strategy_flags(p: argparse.ArgumentParser) -> None:
    s = StrategyConfig()
    g = p.add_argument_group("paper trading")
    g.add_argument("--strategy", choices=C.STRATEGIES, help=f"default {s.strategy}")
    g.add_argument("--threshold-bps", type=float,
                   help="threshold / dead band on the predicted return in bps (default 0)")
    g.add_argument("--fill", choices=C.FILLS, help=f"default {s.fill}")
    g.add_argument("--cost-bps", type=float,
                   help=f"cost per unit of position change in bps (default {s.cost_bps:g})")
    _add_periods_flag(g)


def _add_periods_flag(g: Any) -> None:
    g.add_argument("--periods-per-year", type=float, metavar="P",
                   help="bars per year for the Sharpe ratio (default: measured from the data's "
                        "dates, e.g. 252 for exchange daily bars, 365 for crypto)")


def _add_walk_forward_flags(p: argparse.ArgumentParser, *, jobs: bool = True) -> None:
    w = WalkForwardSpec()
    g = p.add_argument_group(
        "walk-forward evaluation",
        "retrain every N bars on the bars seen so far and predict the next N; with "
        "--walk-forward, --start is where out-of-sample predictions begin (a date, or a "
        "fraction of the rows such as 0.7, resolved once to a date and written into "
        "run.json) and the data loads from its first bar: trim it with --data-start")
    g.add_argument("--walk-forward", action="store_true",
                   help="walk-forward evaluation instead of one train/validation/test split")
    g.add_argument("--retrain-every", type=int, metavar="N",
                   help=f"bars each fold predicts before the next retraining "
                        f"(default {w.retrain_every})")
    g.add_argument("--rolling", type=int, metavar="N",
                   help="train each fold on its last N bars (validation included) instead of "
                        "all bars so far")
    g.add_argument("--val-length", type=int, metavar="N",
                   help=f"bars at the end of each fold's training data for early stopping "
                        f"(default {w.val_length})")
    g.add_argument("--warm-start", action="store_true",
                   help="start each fold from the previous fold's weights (folds then run in "
                        "sequence; default: each from scratch with its own seed, in parallel)")
    g.add_argument("--warm-epochs", type=int, metavar="N",
                   help=f"warm start: most epochs of each fold after the first "
                        f"(default {w.warm_epochs})")
    g.add_argument("--data-start", metavar="DATE",
                   help="with --walk-forward: first date of the data to use (YYYY-MM-DD)")
    if jobs:
        g.add_argument("--jobs", type=int, metavar="N",
                       help="with --walk-forward, cold folds: worker processes (default: one "
                            "per core)")


def build_parser() -> argparse.ArgumentParser:
    """The ``sandbox`` argument parser (exposed for tests and docs)."""
    parser = _Parser(
        prog=PROG,
        description="Trading Signal Sandbox: train RNN/LSTM/GRU models on price history and "
        "paper-trade their signals beside honest baselines. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("gui", help="open the desktop app (default)")
    _add_data_flags(p)
    _add_model_flags(p)
    _add_walk_forward_flags(p, jobs=False)
    p.add_argument("--seeds", type=int, metavar="N",
                   help="train N models (seeds seed .. seed+N-1) in parallel and show their "
                        "averaged forecast with its range (default: the stored setting, 1)")
    p.add_argument("--autotrain", action="store_true", help="start training once data is shown")
    p.add_argument("--screenshot", metavar="PNG",
                   help="save the window to PNG and exit (after training with --autotrain)")

    p = sub.add_parser("train", help="train a model and write predictions, metrics and the model")
    _add_data_flags(p)
    _add_model_flags(p)
    _add_walk_forward_flags(p)
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created if missing)")

    p = sub.add_parser("predict", help="apply a saved model to data, without training")
    p.add_argument("--model", metavar="BUNDLE_DIR", required=True,
                   help="a folder written by 'sandbox train --out' or the app's Save model")
    _add_data_flags(p)
    _add_strategy_flags(p)
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created if missing)")

    p = sub.add_parser("sweep", help="train a grid of configurations x seeds in parallel")
    _add_data_flags(p)
    _add_model_flags(p)
    p.add_argument("--grid", required=True, metavar='"NAME=V1,V2 ..."',
                   help='values to try, e.g. "model=lstm,gru hidden=16,64 window=20,60 lr=1e-3"; '
                        "cost_bps, fill and periods_per_year are refused: they only re-trade "
                        "the same trained models")
    p.add_argument("--seeds", type=int, default=5, help="seeds per configuration (default 5)")
    p.add_argument("--jobs", type=int, default=2, help="parallel worker processes (default 2)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on an existing Dask distributed cluster instead of local processes")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created if missing)")

    p = sub.add_parser("backtest", help="paper-trade a signals file against a price file")
    p.add_argument("--csv", metavar="PRICES", required=True, help="price CSV (OHLCV)")
    p.add_argument("--signals", metavar="SIGNALS.csv", required=True,
                   help="CSV with columns date, position (position in [-1, 1])")
    p.add_argument("--fill", choices=C.FILLS, default=C.FILL_NEXT_OPEN,
                   help="next_open (default): held open t+1 -> open t+2; close: close t -> t+1")
    p.add_argument("--cost-bps", type=float, default=0.0, help="cost per unit traded (default 0)")
    _add_periods_flag(p)
    _add_date_format_flag(p)
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created if missing)")

    p = sub.add_parser("fetch", help="download a ticker into the cache (and optionally a file)")
    p.add_argument("--ticker", metavar="SYMBOL", required=True)
    p.add_argument("--start", metavar="DATE")
    p.add_argument("--end", metavar="DATE")
    p.add_argument("--interval", default="1d", choices=C.INTERVALS)
    p.add_argument("--out", metavar="FILE", help="also write the prices to FILE (.csv or .parquet)")

    p = sub.add_parser("lab", help="experiments on what a network remembers (memory, reach)")
    lab = p.add_subparsers(dest="lab_command", metavar="EXPERIMENT", parser_class=_Parser,
                           required=True)
    q = lab.add_parser("memory", help="the remember-a-value-from-k-steps-ago task, per network")
    q.add_argument("--kinds", default=",".join(C.MODEL_KINDS), metavar="K1,K2",
                   help=f"network kinds (default {','.join(C.MODEL_KINDS)})")
    q.add_argument("--lags", default="5,10,20,40,80", metavar="L1,L2",
                   help="steps back the value to remember lies (default 5,10,20,40,80)")
    q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    q.add_argument("--steps", type=int, metavar="N",
                   help="optimiser steps per network and lag (default 1000)")
    q.add_argument("--out", metavar="DIR", required=True, help="output folder (created if missing)")
    q = lab.add_parser("reach", help="how far back a saved model's gradients reach")
    q.add_argument("--model", metavar="BUNDLE_DIR", required=True,
                   help="a folder written by 'sandbox train --out' or the app's Save model")
    _add_data_flags(q)
    q.add_argument("--out", metavar="DIR", required=True, help="output folder (created if missing)")

    p = sub.add_parser("replay", help="step a saved model through history bar by bar")
    p.add_argument("--model", metavar="BUNDLE_DIR", required=True,
                   help="a folder written by 'sandbox train --out' or the app's Save model")
    _add_data_flags(p)
    p.add_argument("--from", dest="replay_from", metavar="DATE",
                   help="first bar to replay; the account is fresh here (default: the model's "
                        "test start)")
    p.add_argument("--speed", type=float, default=0.0, metavar="BARS_PER_S",
                   help="bars per second; 0 = as fast as possible (default 0)")
    _add_strategy_flags(p)
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created if missing)")

    p = sub.add_parser("live", help="paper-trade a saved model on a live Yahoo Finance stream")
    p.add_argument("--model", metavar="BUNDLE_DIR", required=True,
                   help="a folder written by 'sandbox train --out' or the app's Save model")
    p.add_argument("--ticker", metavar="SYMBOL", required=True)
    p.add_argument("--interval", choices=C.INTERVALS,
                   help="bar size (default: the bar size the model was trained on)")
    p.add_argument("--log", metavar="FILE",
                   help="append each closed bar and decision to FILE (default: live-SYMBOL.csv "
                        "in the current folder)")
    _add_strategy_flags(p)
    return parser


# --- building configs from flags -------------------------------------------------------------


def data_spec_from_args(args: argparse.Namespace) -> DataSpec:
    """The DataSpec the data flags describe (the default sample when none is given)."""
    if getattr(args, "csv", None):
        source = f"{C.SOURCE_CSV}:{args.csv}"
    elif getattr(args, "ticker", None):
        source = f"{C.SOURCE_YAHOO}:{args.ticker.strip().upper()}"
    else:
        source = f"{C.SOURCE_SAMPLE}:{(getattr(args, 'sample', None) or C.DEFAULT_SAMPLE).upper()}"
    return DataSpec(
        source=source,
        start=getattr(args, "start", None),
        end=getattr(args, "end", None),
        interval=getattr(args, "interval", "1d"),
        use_adj_close=bool(getattr(args, "adj_close", False)),
        date_format=getattr(args, "date_format", None),
    )


_MODEL_FLAGS = {"model": "kind", "window": "window", "hidden": "hidden", "layers": "layers",
                "dropout": "dropout", "target": "target", "heads": "heads"}
_TRAIN_FLAGS = {"epochs": "epochs", "patience": "patience", "batch_size": "batch_size",
                "lr": "lr", "seed": "seed", "threads": "threads"}
_SPLIT_FLAGS = {"val_start": "val_start", "test_start": "test_start",
                "min_returns": "min_returns"}
_STRATEGY_FLAGS = {"strategy": "strategy", "threshold_bps": "threshold_bps", "fill": "fill",
                   "cost_bps": "cost_bps", "periods_per_year": "periods_per_year"}


def _given(args: argparse.Namespace, mapping: dict[str, str]) -> dict[str, Any]:
    return {field: getattr(args, flag) for flag, field in mapping.items()
            if getattr(args, flag, None) is not None}


_WALK_FLAGS = {"retrain_every": "--retrain-every", "rolling": "--rolling",
               "val_length": "--val-length", "warm_epochs": "--warm-epochs",
               "warm_start": "--warm-start", "data_start": "--data-start", "jobs": "--jobs"}


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the flags describe; defaults for every flag not given.

    With ``--walk-forward``, ``--start`` is the walk-forward start and ``--data-start`` the
    data's first date; the walk-forward flags without ``--walk-forward`` are refused.
    """
    data = data_spec_from_args(args)
    walk = None
    if getattr(args, "walk_forward", False):
        walk = walk_forward_from_args(args)
        data = data.replace(start=getattr(args, "data_start", None))
    elif "walk_forward" in vars(args):  # a command with the walk-forward flags (train)
        given = [flag for name, flag in _WALK_FLAGS.items()
                 if getattr(args, name, None) not in (None, False)]
        if given:
            raise ConfigError(f"{given[0]} is a walk-forward setting: add --walk-forward")
    return RunConfig(
        data=data,
        split=SplitSpec(**_given(args, _SPLIT_FLAGS)),
        model=ModelConfig(**_given(args, _MODEL_FLAGS)),
        train=TrainConfig(**_given(args, _TRAIN_FLAGS)),
        strategy=StrategyConfig(**_given(args, _STRATEGY_FLAGS)),
        walk_forward=walk,
    )


def walk_forward_from_args(args: argparse.Namespace) -> WalkForwardSpec:
    """The WalkForwardSpec of ``--walk-forward``: ``--start`` a date or a fraction in (0, 1)."""
    fields: dict[str, Any] = {}
    start = getattr(args, "start", None)
    if start is not None:
        try:
            fields["start"] = float(start)
        except ValueError:
            fields["start"] = start
    if args.retrain_every is not None:
        fields["retrain_every"] = args.retrain_every
    if args.rolling is not None:
        fields["window_mode"] = C.ROLLING
        fields["train_length"] = args.rolling
    if args.val_length is not None:
        fields["val_length"] = args.val_length
    if args.warm_epochs is not None:
        fields["warm_epochs"] = args.warm_epochs
    fields["warm_start"] = bool(args.warm_start)
    return WalkForwardSpec(**fields)


def settings_given(args: argparse.Namespace) -> bool:
    """True when any model, training, split, strategy or walk-forward flag was given."""
    return (any(_given(args, m) for m in (_MODEL_FLAGS, _TRAIN_FLAGS, _SPLIT_FLAGS,
                                          _STRATEGY_FLAGS))
            or bool(getattr(args, "walk_forward", False)))


# --- commands -------------------------------------------------------------------------------


def _cmd_gui(args: argparse.Namespace) -> int:
    config = run_config_from_args(args)  # refuse bad settings before Qt starts

    from sandbox.ui.app import main as gui_main
    from sandbox.ui.options import GuiOptions

    explicit_source = any(getattr(args, k, None) for k in ("sample", "csv", "ticker"))
    seeds = getattr(args, "seeds", None)
    if seeds is not None and not 1 <= seeds <= C.MAX_ENSEMBLE_SEEDS:
        raise ConfigError(f"--seeds {seeds}: must be a whole number from 1 to "
                          f"{C.MAX_ENSEMBLE_SEEDS}")
    return gui_main(GuiOptions(
        config=config,
        autotrain=bool(getattr(args, "autotrain", False)),
        screenshot=getattr(args, "screenshot", None),
        explicit_source=explicit_source,
        explicit_settings=settings_given(args),
        seeds=seeds,
    ))


def _cmd_train(args: argparse.Namespace) -> int:
    config = run_config_from_args(args)  # refuse bad settings before any heavy import
    from sandbox import atomic

    # Take the folder before training: a second writer of it is refused now, not after the
    # run; nothing is created until the run's files are complete (then they go in as one).
    with atomic.FolderWriter(_out_dir(args.out)) as folder:
        from sandbox import export, pipeline

        jobs = getattr(args, "jobs", None)
        if jobs is not None and jobs < 1:
            raise ConfigError(f"--jobs {jobs}: must be a whole number >= 1")
        prices = _checked_walk(config) if config.walk_forward is not None else None
        cancel = threading.Event()
        progress = _Progress(sys.stderr)
        with _sigint_sets(cancel):
            result = pipeline.run(config, on_event=progress, cancel=cancel, jobs=jobs,
                                  prices=prices)
            progress.close()
            written = export.write_run(result, folder)
    if result.walk_forward is not None:
        _print_walk_forward(result)
    _print_test_line(result)
    _print_look(result)
    for path in written.values():
        print(path)
    return 0


def _checked_walk(config: RunConfig) -> Any:
    """Load the data and check the walk-forward spec against it before any progress line,
    so an impossible spec is one line on stderr (exit 2)."""
    from sandbox import walkforward
    from sandbox.data import load_prices

    loaded = load_prices(config.data, min_rows=config.model.window + 5)
    assert config.walk_forward is not None
    walkforward.plan(loaded.frame.index, config.walk_forward, window=config.model.window,
                     target=config.model.target, fill=config.strategy.fill)
    return loaded


def _cmd_backtest(args: argparse.Namespace) -> int:
    from sandbox import atomic
    from sandbox.backtest import backtest, check_positions, read_signals
    from sandbox.data import load_prices

    out = _out_dir(args.out)
    prices = load_prices(DataSpec(source=f"{C.SOURCE_CSV}:{args.csv}",
                                  date_format=args.date_format)).frame
    signals = read_signals(args.signals)
    check_positions(signals, prices_index=prices.index, name=str(args.signals))
    if args.periods_per_year is not None:
        StrategyConfig(periods_per_year=args.periods_per_year)  # refuse a bad value: exit 2
    result = backtest(prices, signals, fill=args.fill, cost_bps=args.cost_bps,
                      periods_per_year=args.periods_per_year)
    frame = result.frame.loc[:, [C.POSITION, C.STRATEGY_RETURN, C.EQUITY]]
    frame.index.name = C.INDEX_NAME

    def fill(tmp: Path) -> None:
        atomic.write_csv(tmp / C.BACKTEST_CSV, frame)
        atomic.write_json(tmp / C.METRICS_JSON, result.metrics)

    atomic.write_folder(out, fill)
    print(out / C.BACKTEST_CSV)
    print(out / C.METRICS_JSON)
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from sandbox import atomic
    from sandbox.data import load_prices

    spec = DataSpec(source=f"{C.SOURCE_YAHOO}:{args.ticker.strip().upper()}",
                    start=args.start, end=args.end, interval=args.interval)
    loaded = load_prices(spec)
    frame = loaded.frame
    for warning in loaded.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    note = f" (offline: cached data from {loaded.cached_at})" if loaded.from_cache else ""
    print(f"{loaded.label}: {len(frame)} bars, {frame.index[0]} .. {frame.index[-1]}{note}")
    if args.out:
        path = Path(args.out)
        if path.suffix.lower() == ".parquet":
            atomic.write_parquet(path, frame)
        elif path.suffix.lower() == ".csv":
            atomic.write_csv(path, frame)
        else:
            raise ConfigError(f"--out {path}: use a .csv or .parquet file name")
        print(path)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    base = run_config_from_args(args)
    from sandbox import sweep

    grid = sweep.parse_grid(args.grid)
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: must be a whole number >= 1")
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be a whole number >= 1")
    from sandbox import atomic

    cancel = threading.Event()
    progress = _SweepProgress(sys.stderr)
    with atomic.FolderWriter(_out_dir(args.out)) as folder, _sigint_sets(cancel):
        from sandbox.data import load_prices

        prices = load_prices(base.data)  # here, so the look at test below knows the data
        result = sweep.run_sweep(base, grid, seeds=args.seeds, jobs=args.jobs,
                                 scheduler=args.scheduler, on_result=progress, cancel=cancel,
                                 prices=prices, count_look=True)
        progress.close()
        written = sweep.write_sweep(result, folder)
    for line in sweep.describe(result):
        print(line)
    _print_sweep_look(result)
    for path in written.values():
        print(path)
    return 0


def bundle_and_data(args: argparse.Namespace) -> tuple[Path, Any, DataSpec]:
    """``--out``, the loaded ``--model`` bundle and the data to apply it to, for the commands
    that apply a saved model (predict, replay, lab reach).

    The data flags choose the prices; without one, the bundle's own data (its ``--start`` /
    ``--end`` narrowed by the flags). A missing or bad bundle, or ``--out`` naming the bundle's
    folder: ConfigError / ExportError, one line.
    """
    from sandbox import export

    out = _out_dir(args.out)
    bundle_dir = Path(args.model)
    if not bundle_dir.is_dir():
        raise ConfigError(f"--model {bundle_dir}: no such folder")
    if out.exists() and out.resolve() == bundle_dir.resolve():
        raise ConfigError(f"--out {out}: is the --model folder; the output replaces its folder "
                          "as a whole, so write it to another folder")
    bundle = export.load_bundle(bundle_dir)  # a bad bundle: one line, exit 2
    own = bundle.config.data
    explicit_source = any(getattr(args, k, None) for k in ("sample", "csv", "ticker"))
    spec = data_spec_from_args(args) if explicit_source else own.replace(
        start=getattr(args, "start", None) or own.start, end=getattr(args, "end", None) or own.end)
    return out, bundle, spec


def _cmd_predict(args: argparse.Namespace) -> int:
    from sandbox import export, pipeline
    from sandbox.data import load_prices

    out, bundle, spec = bundle_and_data(args)
    strategy = bundle.config.strategy.replace(**_given(args, _STRATEGY_FLAGS))
    loaded = load_prices(spec, min_rows=int(bundle.feature_state["window"]))
    for warning in loaded.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    result = pipeline.predict(bundle, loaded, spec, strategy)
    written = export.write_predicted(result, out)
    note = pipeline.foreign_data(result)
    if note:
        print(f"note: {note}; every figure is about data the model was not trained on")
    counts = result.predictions[C.SPLIT].value_counts()
    test_start = (result.trained_split or {}).get(export.SPLIT_TEST_START)
    print(f"rows by the model's own split dates: {int(counts.get(C.TRAIN, 0))} train, "
          f"{int(counts.get(C.VAL, 0))} validation, {int(counts.get(C.TEST, 0))} test"
          + (f" (test from {test_start[:10]})" if test_start else ""))
    if counts.get(C.TEST, 0) == 0:
        seen = ("is dated within the model's training or validation period" if note else
                "was seen while the model was trained or validated")
        print(f"no out-of-sample rows: every row predicted {seen}; metrics.json has no test "
              "figures")
    else:
        _print_test_line(result)
        _print_look(result)
    for path in written:
        print(path)
    return 0


def _print_sweep_look(result: Any) -> None:
    """The selected configuration's test figures were printed, a look the sweep counted."""
    from sandbox import sweep

    if result.summary.get("selected") is None:
        return
    count = result.summary.get(sweep.TEST_LOOKS)
    if count is None:
        print(f"{PROG}: warning: this look at the test split was not counted (the counts "
              "file could not be written)", file=sys.stderr)
        return
    times = "once" if count == 1 else "twice" if count == 2 else f"{count} times"
    print(f"test split seen {times} on this data (the selected configuration's test figures "
          "above count as one look)")


def _test_returns(result: Any) -> Any:
    """The model's test-split strategy returns (rows without one left out)."""
    frame = result.predictions
    return frame.loc[frame[C.SPLIT] == C.TEST, C.STRATEGY_RETURN].dropna()


def _print_look(result: Any) -> None:
    """Count this look at the test split (shared with the app) and say what it means."""
    from sandbox import looks

    returns = _test_returns(result)
    try:
        _, ev = looks.look_at_test(result.data.frame, returns)
    except SandboxError as exc:  # the counts file cannot be written: say so, keep the run
        print(f"{PROG}: warning: this look at the test split was not counted: {exc}",
              file=sys.stderr)
        return
    times = "once" if ev.count == 1 else "twice" if ev.count == 2 else f"{ev.count} times"
    line = f"test split seen {times} on this data; PSR {_fmt(ev.psr)} (P[true Sharpe > 0])"
    if ev.dsr is not None:
        line += (f", deflated Sharpe {_fmt(ev.dsr)} (P[true Sharpe > the best of "
                 f"{ev.n_trials} luck-only looks])")
    print(line)


def _print_test_line(result: Any) -> None:
    from sandbox import evaluate

    model = result.metrics.get(C.MODEL, {})
    periods = result.metrics.get(evaluate.KEY_PERIODS_PER_YEAR)
    how = "given" if result.config.strategy.periods_per_year is not None else "measured"
    rmse_name, rmse = _named(evaluate.best_baseline(result.metrics, C.RMSE, lower=True))
    ret_name, ret = _named(evaluate.best_baseline(result.metrics, C.TOTAL_RETURN, lower=False,
                                                  names=evaluate.TRADING_BASELINES))
    what = "out-of-sample (walk-forward)" if C.FOLD in result.predictions else "test split"
    print(
        f"{what}: model rmse {_fmt(model.get(C.RMSE))} vs {rmse_name} {_fmt(rmse)} (the "
        f"best baseline's); total return {_fmt(model.get(C.TOTAL_RETURN))} vs {ret_name} "
        f"{_fmt(ret)} (the best baseline's); sharpe {_fmt(model.get(C.SHARPE))} "
        f"({_fmt(periods)} bars a year, {how})"
    )
    n = len(_test_returns(result))
    if n < C.SMALL_SAMPLE_RETURNS:
        print(f"caution: only {n:,} test {'return' if n == 1 else 'returns'}: figures this "
              "small swing widely by chance")
    sig = result.metrics.get(C.SIGNIFICANCE)
    if sig:
        from sandbox.significance import verdict

        line = verdict(sig)
        if line:
            print(f"verdict: {line}")
        cost = (sig.get("cost_sensitivity") or {}).get("break_even_bps")
        print("break-even cost: " + (f"{cost:.1f} bps a unit of position change"
                                     if cost is not None else "none (no gain at zero cost)"))


def _print_walk_forward(result: Any) -> None:
    """The number of fits and how they ran, then one line per fold."""
    wf = result.walk_forward
    mode = (f"rolling {wf['train_length']} bars" if wf["window_mode"] == C.ROLLING
            else "expanding")
    how = ("warm-started, in sequence" if wf["warm_start"]
           else f"cold, {wf['jobs']} {'process' if wf['jobs'] == 1 else 'processes'}")
    print(f"walk-forward: {wf['n_folds']} fits = ceil({wf['oos_bars']} out-of-sample bars / "
          f"{wf['retrain_every']}), from {wf['start'][:10]} ({mode}; {how})")
    for f in result.folds:
        diff = f["metrics"].get("rmse_diff")
        print(f"  fold {f['fold']}: {f['predict_start'][:10]} .. {f['predict_end'][:10]}  "
              f"{f['n_predict']} bars  trained on {f['n_train']}  epochs {f['epochs']}  "
              f"rmse - random walk {_fmt(diff)}")


def _named(best: tuple[str, float] | None) -> tuple[str, float | None]:
    """A best baseline as words for the headline ("buy and hold", 0.29)."""
    if best is None:
        return "random walk", None
    return best[0].replace("_", " "), best[1]


def _cmd_lab(args: argparse.Namespace) -> int:
    from sandbox import lab

    return lab.cli_memory(args) if args.lab_command == "memory" else lab.cli_reach(args)


def _cmd_replay(args: argparse.Namespace) -> int:
    from sandbox import replay

    return replay.cli_replay(args)


def _cmd_live(args: argparse.Namespace) -> int:
    from sandbox import live

    return live.cli_live(args)


_COMMANDS = {"gui": _cmd_gui, "train": _cmd_train, "predict": _cmd_predict, "sweep": _cmd_sweep,
             "backtest": _cmd_backtest, "fetch": _cmd_fetch, "lab": _cmd_lab,
             "replay": _cmd_replay, "live": _cmd_live}


# --- helpers ---------------------------------------------------------------------------------


def _out_dir(value: str) -> Path:
    """``--out`` as a folder path; refused at once when it names a file."""
    out = Path(value)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    return out


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


class _sigint_sets:
    """While active, the first Ctrl-C sets ``event`` (the run stops within one batch)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.event.is_set():  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.event.set()

    def __enter__(self) -> _sigint_sets:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


class _Progress:
    """Training progress on stderr: a live bar on a terminal, plain lines otherwise."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.last_line = ""
        self.last_draw = 0.0

    def __call__(self, event: Any) -> None:
        from sandbox.events import BatchEnd, DataLoaded, EpochEnd, FoldFinished, StageStarted

        if isinstance(event, DataLoaded):
            note = f" (cached data from {event.cached_at})" if event.from_cache else ""
            self._line(f"{event.label}: {event.n_rows} bars {event.first} .. {event.last}{note}")
            for w in event.warnings:
                self._line(f"warning: {w}")
        elif isinstance(event, StageStarted):
            self._line(event.message)
        elif isinstance(event, FoldFinished):
            self._line(f"fold {event.fold + 1}/{event.n_folds} done: {len(event.val_loss)} "
                       f"epochs, best val {event.best_val_loss:.4g}")
        elif isinstance(event, BatchEnd) and self.tty:
            now = time.monotonic()
            if now - self.last_draw >= 0.1:
                self.last_draw = now
                done = (event.epoch - 1 + event.batch / event.n_batches) / event.epochs
                self._bar(done, f"epoch {event.epoch}/{event.epochs} "
                          f"batch {event.batch}/{event.n_batches} loss {event.train_loss:.4g}")
        elif isinstance(event, EpochEnd):
            text = (f"epoch {event.epoch}/{event.epochs}  train {event.train_loss:.4g}  "
                    f"val {event.val_loss:.4g}  {event.samples_per_s:,.0f} samples/s  "
                    f"ETA {format_hms(event.eta_s)}")
            if self.tty:
                self._bar(event.epoch / event.epochs, text)
            else:
                self._line(text)

    def _bar(self, fraction: float, text: str) -> None:
        width = 24
        filled = round(max(0.0, min(1.0, fraction)) * width)
        line = f"[{'=' * filled}{' ' * (width - filled)}] {text}"
        pad = max(0, len(self.last_line) - len(line))
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self.last_line = line

    def _line(self, text: str) -> None:
        if self.tty and self.last_line:
            self.stream.write("\n")
            self.last_line = ""
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.last_line:
            self.stream.write("\n")
            self.stream.flush()
            self.last_line = ""


class _SweepProgress(_Progress):
    """Sweep progress: runs done / total and ETA (``runs.RunRecord`` events)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.started = time.monotonic()

    def __call__(self, record: Any) -> None:  # a finished (or failed) run
        elapsed = time.monotonic() - self.started
        done, total = record.done, record.total
        eta = elapsed / done * (total - done) if done else 0.0
        status = "failed: " + record.error if record.error else "ok"
        text = f"run {done}/{total}  {record.label}  {status}  ETA {format_hms(eta)}"
        if self.tty:
            self._bar(done / total, text)
        else:
            self._line(text)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("yfinance").setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit code."""
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if not any(w in _COMMANDS for w in words) and not {"-h", "--help", "--version"} & set(words):
        words.insert(0, "gui")  # `sandbox [data flags]` opens the app
    args = parser.parse_args(words)
    _configure_logging(args.verbose)
    try:
        return _COMMANDS[args.command](args)
    except Cancelled:
        print(f"{PROG}: cancelled; no output was written", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{PROG}: cancelled; no output was written", file=sys.stderr)
        return 130
    except SandboxError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
