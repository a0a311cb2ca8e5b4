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
