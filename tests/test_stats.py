"""Statistics: mean ± std over runs, return moments, probabilistic and deflated Sharpe."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sandbox import stats

# --- mean ± std ------------------------------------------------------------------------------


def test_mean_std_takes_numpy_numbers_and_skips_the_rest():
    out = stats.mean_std([np.int64(3), np.float32(5.0), 4.0, None, float("nan"), True, "7"])
    assert out["n"] == 3 and out["mean"] == 4.0 and math.isclose(out["std"], 1.0)
    assert stats.mean_std([2.5]) == {"mean": 2.5, "std": None, "n": 1}
    assert stats.mean_std([]) == {"mean": None, "std": None, "n": 0}


def test_metric_stats_summarises_numeric_metrics_in_first_seen_order():
    runs = [{"a": 1.0, "b": "x"}, {"a": 3.0, "c": 2}]
    assert list(stats.metric_stats(runs)) == ["a", "c"]  # "b" is not a number
    assert stats.metric_stats(runs)["a"] == {"mean": 2.0, "std": math.sqrt(2.0), "n": 2}
    assert list(stats.metric_stats(runs, ["c", "a"])) == ["c", "a"]


# --- deflated Sharpe ratio -------------------------------------------------------------------


def test_deflated_sharpe_matches_the_papers_example():
    # Bailey & Lopez de Prado (2014), section 5: annualised SR 2.5 over 5 years of daily
    # returns (T=1250), N=100 trials with annualised variance 0.5, skew -3, kurtosis 10:
    # SR0 = 0.1132 per day and DSR = 0.9004.
    sr, var = 2.5 / math.sqrt(250), 0.5 / 250
    assert stats.expected_max_sharpe(100, var) == pytest.approx(0.1132, abs=5e-5)
    dsr = stats.deflated_sharpe_ratio(sr, n_obs=1250, n_trials=100, variance=var,
                                      skewness=-3.0, kurtosis=10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_deflated_sharpe_by_hand():
    # N=10 trials, V=0.01, SR=0.2 per bar, T=101, normal returns (skew 0, kurtosis 3).
    # normal quantiles, found by bisection on math.erf: Z^-1(0.9), Z^-1(1 - 1/(10 e))
    z = {0.9: 1.2815515655446004, 1 - 1 / (10 * math.e): 1.7892417645816274}
    g = 0.5772156649015329
    sr0 = 0.1 * ((1 - g) * z[0.9] + g * z[1 - 1 / (10 * math.e)])
    stat = (0.2 - sr0) * math.sqrt(100) / math.sqrt(1 + 2 / 4 * 0.2**2)
    expected = 0.5 * (1 + math.erf(stat / math.sqrt(2)))
    assert stats.expected_max_sharpe(10, 0.01) == pytest.approx(sr0, rel=1e-9)
    assert stats.deflated_sharpe_ratio(0.2, n_obs=101, n_trials=10, variance=0.01) == (
        pytest.approx(expected, rel=1e-9))
    # one trial: no selection to deflate for, SR0 = 0 (the probabilistic Sharpe ratio)
    assert stats.expected_max_sharpe(1, 0.01) == 0.0
    assert stats.deflated_sharpe_ratio(0.0, n_obs=50, n_trials=1, variance=0.01) == 0.5
    assert stats.deflated_sharpe_ratio(0.2, n_obs=1, n_trials=5, variance=0.01) is None


def test_return_moments_of_a_known_sample():
    m = stats.return_moments([1.0, 2.0, 3.0, 4.0, 10.0])
    d = np.array([1.0, 2.0, 3.0, 4.0, 10.0]) - 4.0
    assert m["n"] == 5 and m["mean"] == 4.0
    assert m["std"] == pytest.approx(np.std(d, ddof=1))
    assert m["skewness"] == pytest.approx(np.mean(d**3) / np.mean(d**2) ** 1.5)
    assert m["kurtosis"] == pytest.approx(np.mean(d**4) / np.mean(d**2) ** 2)


def test_probabilistic_sharpe_is_the_deflated_one_for_one_trial():
    # one trial: nothing to deflate for, SR0 = 0
    for sr in (-0.1, 0.0, 0.05, 0.2):
        assert stats.probabilistic_sharpe_ratio(sr, n_obs=250, skewness=-0.5, kurtosis=5.0) == (
            stats.deflated_sharpe_ratio(sr, n_obs=250, n_trials=1, variance=0.01,
                                        skewness=-0.5, kurtosis=5.0))
    # a benchmark equal to the observed Sharpe ratio: one chance in two
    assert stats.probabilistic_sharpe_ratio(0.1, n_obs=100, benchmark=0.1) == 0.5
    assert stats.probabilistic_sharpe_ratio(float("nan"), n_obs=100) is None


# --- an independent implementation: skfolio (a test-only dependency) -----------------------
# skfolio's conventions, read from skfolio.measures 1.12: Sharpe per period, mean / std with
# ddof 1; skew m3 / m2**1.5 and kurtosis m4 / m2**2 (biased moments, non-excess kurtosis);
# the trials' spread is their ddof-1 standard deviation and N the number of trial Sharpes.
# Ours take the same conventions (stats.return_moments), so the numbers must agree exactly.


def _skewed_returns(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.0006 + 0.01 * rng.standard_t(4, n) - 0.004 * rng.exponential(1.0, n)


@pytest.mark.parametrize(("n", "seed", "benchmark"), [(250, 0, 0.0), (1250, 1, 0.0),
                                                      (80, 2, 0.05), (500, 3, -0.02)])
def test_probabilistic_sharpe_agrees_with_skfolio(n, seed, benchmark):
    from skfolio.measures import probabilistic_sharpe_ratio

    r = _skewed_returns(n, seed)
    m = stats.return_moments(r)
    ours = stats.probabilistic_sharpe_ratio(m["sharpe_per_bar"], n_obs=m["n"],
                                            benchmark=benchmark, skewness=m["skewness"],
                                            kurtosis=m["kurtosis"])
    assert abs(ours - probabilistic_sharpe_ratio(r, benchmark_sharpe_ratio=benchmark)) < 1e-9


@pytest.mark.parametrize(("n_trials", "seed"), [(2, 0), (10, 1), (100, 2), (1, 3)])
def test_deflated_sharpe_agrees_with_skfolio(n_trials, seed):
    from skfolio.measures import deflated_sharpe_ratio, expected_max_sharpe_ratio

    rng = np.random.default_rng(100 + seed)
    trials = rng.normal(0.02, 0.03, n_trials)  # per-bar Sharpe ratios of the trials
    variance = float(np.var(trials, ddof=1)) if n_trials > 1 else 0.0
    assert abs(stats.expected_max_sharpe(n_trials, variance)
               - expected_max_sharpe_ratio(n_trials, math.sqrt(variance))) < 1e-12
    r = _skewed_returns(750, seed)
    m = stats.return_moments(r)
    ours = stats.deflated_sharpe_ratio(m["sharpe_per_bar"], n_obs=m["n"], n_trials=n_trials,
                                       variance=variance, skewness=m["skewness"],
                                       kurtosis=m["kurtosis"])
    assert abs(ours - deflated_sharpe_ratio(r, trials)) < 1e-9


def test_return_moments_agree_with_skfolio():
    from skfolio.measures import kurtosis, skew, standard_deviation

    r = _skewed_returns(300, 9)
    m = stats.return_moments(r)
    assert m["std"] == pytest.approx(standard_deviation(r), rel=1e-12)
    assert m["skewness"] == pytest.approx(skew(r), rel=1e-9)
    assert m["kurtosis"] == pytest.approx(kurtosis(r), rel=1e-9)
