"""Null-world calibration of the verdict "forecast better than the random walk".

In a world with no signal, prices follow a geometric random walk: the next log return is
independent of everything known today, so the random walk's forecast (a return of 0) is the
best there is and a trained model can at most tie it. The verdict calls a model "better than
the random walk" when the one-sided Diebold-Mariano p-value (squared error, HLN-corrected)
of the test split is below 5 %; if that test is calibrated, it does so in at most 5 % of
such worlds (fewer: a model fitted to noise is in fact worse than the random walk, and the
DM test's null of equal accuracy is then the boundary, not the truth).

The slow check trains ``N_NULL = 200`` small models (GRU, LSTM and plain RNN in turn, one
torch thread each), every one on its own seeded random walk of ``BARS = 1000`` daily bars
(log returns i.i.d. normal with 1 % daily volatility; opens, highs, lows and volumes drawn
independently of the closes, so no feature carries anything about the next return), reads the
test split's ``"significance"`` block (``significance.of_run``, the block ``metrics.json``
gets; the fast test checks it is the same), and counts the runs whose DM ``pvalue_better`` is
below 0.05 and those whose verdict starts with "forecast better than the random walk" (the
two counts must agree). When written, these seeds gave 5 of 200 (median one-sided p 0.73).

How the count is bounded
------------------------
The runs are independent (independent worlds, independent seeds), so under a calibrated
test the count ``X`` is at most Binomial(200, 0.05) (stochastically smaller when the test is
conservative). The check fails when ``X >= FAIL_AT = 19``: the exact upper tail
``binom.sf(18, 200, 0.05) = 0.0058``, so a correctly calibrated test fails this check with
probability below 0.6 % (the 1 % budget). If the verdict's true rate in a null world were 20 %
(a badly miscalibrated test, or a leak), ``binom.sf(18, 200, 0.20) = 0.99998``: it is caught
with probability above 99.99 %; at a true rate of 10 % with probability 0.63.
``test_the_bound_is_what_the_docstring_says`` recomputes these figures with scipy.

So that the check cannot pass merely because the test never rejects, the same pipeline, counting and
thresholds on ``N_PLANTED = 20`` worlds with a planted signal (log returns AR(1) with
``phi = 0.3``, 2,000 bars, 10 epochs, so the model can learn that the next return leans on
the last) must call at least ``PLANTED_AT_LEAST = 8`` of them better than the random walk. A
calibrated 5 % test reaches 8 of 20 by chance with probability ``binom.sf(7, 20, 0.05)``
= 3e-6; a model whose runs are called better with probability 0.6 falls short with
probability 0.02 (when written: 17 of 20, median one-sided p 0.0014).

Both slow checks run in loky worker processes (joblib, one per usable core, at most 2). A
null-world run costs about 0.2 s of CPU and a planted one 0.5 s, so on 2 idle cores the null
world takes about 50 s (worker start-up included) and the planted one about 13 s. They are
skipped unless the run selects slow tests (``-m slow``). The fast checks (default run) cover
the price generator, the JSON-safety of a null-world run's significance block, and the
planted signal as the significance core sees it with the true AR(1) forecast.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox import pipeline, significance
from sandbox.config import ModelConfig, RunConfig, StrategyConfig, TrainConfig

#: worlds without signal in the slow check, and the count at which it fails
N_NULL = 200
FAIL_AT = 19
#: nominal size of the verdict's "better than the random walk" (one-sided DM at 5 %)
ALPHA = 0.05
#: worlds with a planted AR(1) signal, and how many must be called better
N_PLANTED = 20
PLANTED_AT_LEAST = 8
PHI = 0.3
#: bars per null world (about four years of daily bars: a test split of ~148 rows)
BARS = 1000
PLANTED_BARS = 2000
DAILY_VOL = 0.01
KINDS = (C.GRU, C.LSTM, C.RNN)
BETTER = "forecast better than the random walk"
#: seeds of the worlds: the null and the planted worlds never share one
NULL_SEED0 = 10_000
PLANTED_SEED0 = 20_000


def world(seed: int, *, bars: int = BARS, phi: float = 0.0) -> pd.DataFrame:
    """A daily OHLCV frame whose log close returns are AR(1) with coefficient ``phi`` and
    i.i.d. normal shocks of ``DAILY_VOL`` (``phi = 0``: a geometric random walk, no signal).

    The open gaps from the previous close, the high and low wicks and the volumes are drawn
    independently of the returns, so they carry nothing about the next return either."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, DAILY_VOL, bars)
    r = np.zeros(bars)
    for t in range(1, bars):
        r[t] = phi * r[t - 1] + shocks[t]
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, 0.002, bars))
    high = np.maximum(open_, close) * (1 + rng.uniform(0.0, 0.005, bars))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0, 0.005, bars))
    volume = rng.integers(1_000, 5_000, bars).astype(float)
    index = pd.bdate_range("2000-01-03", periods=bars, name=C.INDEX_NAME)
    return pd.DataFrame({C.OPEN: open_, C.HIGH: high, C.LOW: low, C.CLOSE: close,
                         C.VOLUME: volume}, index=index)


def small_config(seed: int, kind: str, *, epochs: int) -> RunConfig:
    return RunConfig(
        model=ModelConfig(kind=kind, window=10, hidden=8, layers=1, dropout=0.0),
        train=TrainConfig(epochs=epochs, batch_size=32, threads=1, seed=seed),
        strategy=StrategyConfig(cost_bps=5.0),
    )


def trained(seed: int, kind: str, *, bars: int = BARS, phi: float = 0.0, epochs: int = 5,
            evidence: bool = True) -> pipeline.RunResult:
    """A small model trained on ``world(seed, bars=bars, phi=phi)``."""
    return pipeline.run(small_config(seed, kind, epochs=epochs),
                        prices=world(seed, bars=bars, phi=phi), evidence=evidence)


def _outcome(seed: int, kind: str, bars: int, phi: float, epochs: int
             ) -> tuple[float | None, bool, int]:
    """(DM ``pvalue_better`` vs the random walk, squared error; whether the verdict calls the
    model better; forecast rows): what a worker sends back."""
    # the test split's block alone (the validation split's is not counted): what
    # add_evidence puts into metrics.json, as the fast test checks
    result = trained(seed, kind, bars=bars, phi=phi, epochs=epochs, evidence=False)
    sig = significance.of_run(result, split=C.TEST)
    assert sig["level"] == 1 - ALPHA
    dm = sig["dm"][C.RANDOM_WALK]["mse"]
    words = significance.verdict(sig) or ""
    return dm["pvalue_better"], words.startswith(BETTER), sig["rows"]["forecast"]


def _count(seeds: range, *, bars: int, phi: float, epochs: int) -> dict:
    from joblib import Parallel, delayed

    from sandbox.runs import usable_cores

    t = time.perf_counter()
    jobs = max(1, min(2, usable_cores()))
    out = Parallel(n_jobs=jobs)(
        delayed(_outcome)(s, KINDS[i % len(KINDS)], bars, phi, epochs)
        for i, s in enumerate(seeds))
    p = [o[0] for o in out]
    return {
        "runs": len(out),
        "dm_better": sum(v is not None and v < ALPHA for v in p),
        "verdict_better": sum(o[1] for o in out),
        "no_test": sum(v is None for v in p),
        "rows": sorted({o[2] for o in out}),
        "median_pvalue_better": float(np.median([1.0 if v is None else v for v in p])),
        "seconds": round(time.perf_counter() - t, 1),
    }


@pytest.fixture
def _slow_only(request):
    """Skip unless the run selected slow tests (``-m slow``), as the packaging smoke does."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("null-world calibration: run with -m slow")


# --- fast: the worlds and one run's block ---------------------------------------------------


def test_worlds_are_consistent_daily_bars_with_no_signal_unless_planted():
    for phi, bars in ((0.0, 5000), (PHI, 5000)):
        p = world(7, bars=bars, phi=phi)
        o, h, lo, c = (p[k].to_numpy() for k in (C.OPEN, C.HIGH, C.LOW, C.CLOSE))
        assert (lo > 0).all() and (lo <= np.minimum(o, c)).all()
        assert (h >= np.maximum(o, c)).all()
        r = np.diff(np.log(c))
        rho = float(np.corrcoef(r[:-1], r[1:])[0, 1])
        if phi == 0.0:
            # i.i.d. returns: the lag-1 autocorrelation is N(0, 1/n); 4 standard errors
            assert abs(rho) < 4 / math.sqrt(r.size)
            assert np.std(r) == pytest.approx(DAILY_VOL, rel=0.05)
        else:
            assert rho == pytest.approx(PHI, abs=4 / math.sqrt(r.size))


def test_a_null_world_run_carries_a_json_safe_significance_block():
    for seed, kind in ((NULL_SEED0, C.GRU), (NULL_SEED0 + 1, C.RNN)):
        result = trained(seed, kind, epochs=2)
        sig = result.metrics_by_split[C.TEST][C.SIGNIFICANCE]
        # the slow checks compute the test split's block alone: the same figures
        assert significance.of_run(result, split=C.TEST) == sig
        json.dumps(sig, allow_nan=False)  # plain JSON, never NaN
        assert sig[C.SPLIT] == C.TEST and sig["rows"]["forecast"] > 100
        dm = sig["dm"][C.RANDOM_WALK]["mse"]
        assert 0.0 <= dm["pvalue_better"] <= 1.0 and 0.0 <= dm["pvalue"] <= 1.0
        words = significance.verdict(sig)
        assert isinstance(words, str) and words.startswith("forecast ")
        assert words.startswith(BETTER) == (dm["pvalue_better"] < ALPHA)


def test_the_planted_signal_is_significant_to_the_dm_core():
    # the true forecast of an AR(1) world, phi * r[t], against the random walk's 0, on as
    # many rows as a planted world's test split has: the core must see the signal
    c = world(PLANTED_SEED0, bars=PLANTED_BARS, phi=PHI)[C.CLOSE].to_numpy()
    r = np.diff(np.log(c))[-300:]
    actual, forecast = r[1:], PHI * r[:-1]
    dm = significance.diebold_mariano(actual, forecast, np.zeros_like(actual))
    assert dm["pvalue_better"] < 0.01
    # the same forecast rule in a world without signal is not called better
    c0 = world(PLANTED_SEED0, bars=PLANTED_BARS)[C.CLOSE].to_numpy()
    r0 = np.diff(np.log(c0))[-300:]
    dm0 = significance.diebold_mariano(r0[1:], PHI * r0[:-1], np.zeros(r0.size - 1))
    assert dm0["pvalue_better"] > ALPHA


def test_the_bound_is_what_the_docstring_says():
    from scipy.stats import binom

    size = binom.sf(FAIL_AT - 1, N_NULL, ALPHA)  # P(X >= FAIL_AT) under the nominal 5 %
    assert size <= 0.01 and binom.sf(FAIL_AT - 2, N_NULL, ALPHA) > 0.01  # smallest such
    assert size == pytest.approx(0.0058, abs=1e-4)
    assert binom.sf(FAIL_AT - 1, N_NULL, 0.20) > 0.9999  # power against a true 20 %
    assert binom.sf(FAIL_AT - 1, N_NULL, 0.10) == pytest.approx(0.63, abs=0.01)
    assert binom.sf(PLANTED_AT_LEAST - 1, N_PLANTED, ALPHA) < 1e-5
    assert binom.cdf(PLANTED_AT_LEAST - 1, N_PLANTED, 0.6) < 0.025


# --- slow: the calibration itself ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_random_walks_are_called_better_than_the_random_walk_at_most_nominally(_slow_only):
    seeds = range(NULL_SEED0, NULL_SEED0 + N_NULL)
    counts = _count(seeds, bars=BARS, phi=0.0, epochs=5)
    print(f"null world: {counts}")
    assert counts["runs"] == N_NULL and counts["no_test"] == 0
    assert counts["verdict_better"] == counts["dm_better"]
    assert counts["dm_better"] < FAIL_AT, counts


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_planted_signal_is_called_better_than_the_random_walk(_slow_only):
    seeds = range(PLANTED_SEED0, PLANTED_SEED0 + N_PLANTED)
    counts = _count(seeds, bars=PLANTED_BARS, phi=PHI, epochs=10)
    print(f"planted AR(1) phi={PHI}: {counts}")
    assert counts["runs"] == N_PLANTED
    assert counts["verdict_better"] == counts["dm_better"]
    assert counts["dm_better"] >= PLANTED_AT_LEAST, counts
