"""Names shared across the project: one concept, one home.

Column names, split names, metric names, baseline names and option values live here so
the rest of the code (and the tests) never spell them as loose string literals.
"""

from __future__ import annotations

# --- price frame (the data contract) ---------------------------------------------------
INDEX_NAME = "date"
OPEN = "open"
HIGH = "high"
LOW = "low"
CLOSE = "close"
VOLUME = "volume"
PRICE_COLUMNS: tuple[str, ...] = (OPEN, HIGH, LOW, CLOSE, VOLUME)

# --- splits ----------------------------------------------------------------------------
TRAIN = "train"
VAL = "val"
TEST = "test"
SPLITS: tuple[str, ...] = (TRAIN, VAL, TEST)

# --- per-row outputs (predictions.csv, backtest.csv) --------------------------------------
SPLIT = "split"
ACTUAL_RETURN = "actual_return"
PREDICTED_RETURN = "predicted_return"
POSITION = "position"
STRATEGY_RETURN = "strategy_return"
EQUITY = "equity"
PREDICTION_COLUMNS: tuple[str, ...] = (
    INDEX_NAME, SPLIT, CLOSE, ACTUAL_RETURN, PREDICTED_RETURN, POSITION, STRATEGY_RETURN, EQUITY,
)
BACKTEST_COLUMNS: tuple[str, ...] = (INDEX_NAME, POSITION, STRATEGY_RETURN, EQUITY)

# --- metrics -----------------------------------------------------------------------------
RMSE = "rmse"
MAE = "mae"
DIRECTIONAL_ACCURACY = "directional_accuracy"
THEIL_U2 = "theil_u2"
FORECAST_METRICS: tuple[str, ...] = (RMSE, MAE, DIRECTIONAL_ACCURACY, THEIL_U2)

TOTAL_RETURN = "total_return"
SHARPE = "sharpe"
MAX_DRAWDOWN = "max_drawdown"
N_TRADES = "n_trades"
TURNOVER = "turnover"
EXPOSURE = "exposure"
CAGR = "cagr"
WIN_RATE = "win_rate"
TRADING_METRICS: tuple[str, ...] = (
    TOTAL_RETURN, SHARPE, MAX_DRAWDOWN, N_TRADES, TURNOVER, EXPOSURE, CAGR, WIN_RATE,
)

# --- predictors ----------------------------------------------------------------------------
MODEL = "model"
RANDOM_WALK = "random_walk"
MOMENTUM = "momentum"
DRIFT = "drift"
BUY_AND_HOLD = "buy_and_hold"
FORECAST_BASELINES: tuple[str, ...] = (RANDOM_WALK, MOMENTUM, DRIFT)
BASELINES: tuple[str, ...] = (RANDOM_WALK, MOMENTUM, DRIFT, BUY_AND_HOLD)

# --- options -------------------------------------------------------------------------------
FILL_NEXT_OPEN = "next_open"
FILL_CLOSE = "close"
FILLS: tuple[str, ...] = (FILL_NEXT_OPEN, FILL_CLOSE)

LONG_FLAT = "long_flat"
LONG_SHORT = "long_short"
STRATEGIES: tuple[str, ...] = (LONG_FLAT, LONG_SHORT)

LSTM = "lstm"
GRU = "gru"
RNN = "rnn"
TRANSFORMER = "transformer"
#: every network kind, in the order the app lists them (sandbox.models registers one class each;
#: a test checks the two agree)
MODEL_KINDS: tuple[str, ...] = (LSTM, GRU, RNN, TRANSFORMER)

# --- walk-forward evaluation ---------------------------------------------------------------
#: metrics.json "split" of a walk-forward run, and its out-of-sample rows' split label
WALK_FORWARD = "walk_forward"
#: predictions.csv column of a walk-forward run: the fold that predicted the row (0, 1, ...)
FOLD = "fold"
EXPANDING = "expanding"
ROLLING = "rolling"
WINDOW_MODES: tuple[str, ...] = (EXPANDING, ROLLING)
FOLDS_DIR = "folds"

#: bars per year a run's Sharpe ratios and CAGR use (metrics.json, run.json)
PERIODS_PER_YEAR = "periods_per_year"

#: DataSpec.date_format shortcuts for slashed/dotted dates (or give a strftime format)
DATE_DAYFIRST = "dayfirst"
DATE_MONTHFIRST = "monthfirst"
DATE_ORDERS: tuple[str, ...] = (DATE_DAYFIRST, DATE_MONTHFIRST)

TARGET_RETURN = "return"
TARGET_PRICE = "price"
#: the return the strategy earns: ln(open[t+2]/open[t+1]) with the next-open fill, the next
#: close-to-close log return with the close fill
TARGET_TRADED = "traded_return"
TARGETS: tuple[str, ...] = (TARGET_RETURN, TARGET_TRADED, TARGET_PRICE)

INTERVALS: tuple[str, ...] = (
    "1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo", "3mo",
)

# --- source kinds (DataSpec.source is "KIND:VALUE") ---------------------------------------------
SOURCE_SAMPLE = "sample"
SOURCE_CSV = "csv"
SOURCE_YAHOO = "yahoo"
SOURCE_KINDS: tuple[str, ...] = (SOURCE_SAMPLE, SOURCE_CSV, SOURCE_YAHOO)
SAMPLES: tuple[str, ...] = ("GSPC", "GOOG")
DEFAULT_SAMPLE = "GSPC"

#: fewer returns than this in a split get a small-sample caution (a Sharpe ratio's standard
#: error is about 1 / sqrt(n) per bar: 0.13 at 60 returns)
SMALL_SAMPLE_RETURNS = 60
#: the key of a split's tests of significance in its metrics (metrics.json)
SIGNIFICANCE = "significance"

# --- output files ----------------------------------------------------------------------------
PREDICTIONS_CSV = "predictions.csv"
METRICS_JSON = "metrics.json"
MODEL_WEIGHTS = "model.safetensors"
RUN_JSON = "run.json"
BACKTEST_CSV = "backtest.csv"
SWEEP_CSV = "sweep.csv"
SUMMARY_JSON = "summary.json"
REPLAY_CSV = "replay.csv"
MEMORY_CSV = "memory.csv"
REACH_CSV = "reach.csv"
#: what an output folder may hold: a run replaces its folder as a whole (sandbox.atomic), so a
#: folder holding anything else is refused rather than swept away
OUTPUT_NAMES: frozenset[str] = frozenset({
    PREDICTIONS_CSV, METRICS_JSON, MODEL_WEIGHTS, RUN_JSON, BACKTEST_CSV, SWEEP_CSV,
    SUMMARY_JSON, FOLDS_DIR, REPLAY_CSV, MEMORY_CSV, REACH_CSV,
})

#: most models one seed ensemble trains (the app's Seeds setting)
MAX_ENSEMBLE_SEEDS = 64
#: upper limits of the network's size, shared by the config, the app's fields and bundle loading
#: (an LSTM at the limits has about 67 million parameters, 270 MB)
MAX_WINDOW = 10_000
MAX_HIDDEN = 1_024
MAX_LAYERS = 8
#: most attention heads of the Transformer (ModelConfig.heads; hidden must be a multiple)
MAX_HEADS = 16
