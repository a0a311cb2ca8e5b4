"""The tests of significance as `sandbox train` writes them, recomputed from predictions.csv
with statsmodels directly (as an outside check would), and the verdict line it prints."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sandbox import cli
from sandbox import constants as C
from sandbox.significance import verdict


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evidence") / "run"
    args = ["train", "--sample", "GSPC", "--start", "2012-01-01", "--window", "10", "--hidden",
            "4", "--layers", "1", "--epochs", "2", "--threads", "1", "--strategy", "long_short",
            "--cost-bps", "5", "--out", str(out)]
    assert cli.main(args) == 0
    frame = pd.read_csv(out / C.PREDICTIONS_CSV, index_col="date", parse_dates=True)
    metrics = json.loads((out / C.METRICS_JSON).read_text())
    return frame, metrics


def test_metrics_json_carries_significance_for_the_test_split(run):
    _, metrics = run
    sig = metrics[C.SIGNIFICANCE]
    assert sig["split"] == C.TEST
    for key in ("dm", "pesaran_timmermann", "hit_rate_ci", "sharpe_ci", "total_return_ci",
                "sharpe_diff_ci", "spa", "echo", "cost_sensitivity"):
        assert key in sig
    assert set(sig["dm"]) == {C.RANDOM_WALK, C.MOMENTUM, C.DRIFT}
    json.dumps(metrics, allow_nan=False)


def test_dm_and_pt_match_statsmodels_on_the_written_rows(run):
    from statsmodels.stats.diagnostic import pesaran_timmermann
    from statsmodels.tsa.stattools import diebold_mariano_test

    frame, metrics = run
    test = frame[frame[C.SPLIT] == C.TEST]
    test = test[np.isfinite(test[C.ACTUAL_RETURN]) & np.isfinite(test[C.PREDICTED_RETURN])]
    actual = test[C.ACTUAL_RETURN].to_numpy()
    predicted = test[C.PREDICTED_RETURN].to_numpy()
    sig = metrics[C.SIGNIFICANCE]
    assert sig["rows"]["forecast"] == len(actual)
    for loss in ("mse", "mae"):
        stat, p, *_ = diebold_mariano_test(actual, predicted, np.zeros_like(actual), lags=0,
                                           harvey_adj=True, criterion=loss)
        got = sig["dm"][C.RANDOM_WALK][loss]
        assert got["statistic"] == pytest.approx(stat, rel=1e-9)
        assert got["pvalue"] == pytest.approx(p, rel=1e-9)
    moves = actual != 0
    stat, p = pesaran_timmermann(actual[moves], predicted[moves])[:2]
    assert sig["pesaran_timmermann"]["pvalue"] == pytest.approx(p, rel=1e-9)


def test_break_even_cost_recomputed_from_the_positions(run):
    """Bisection on the written positions: net = gross - c * |change of position|."""
    frame, metrics = run
    test = frame[frame[C.SPLIT] == C.TEST].dropna(subset=[C.STRATEGY_RETURN])
    position = test[C.POSITION].to_numpy()
    turnover = np.abs(np.diff(np.concatenate([[0.0], position])))  # enters from flat
    gross = test[C.STRATEGY_RETURN].to_numpy() + 5e-4 * turnover

    def total(cost_bps: float) -> float:
        return float(np.prod(1.0 + gross - cost_bps * 1e-4 * turnover) - 1.0)

    assert total(5.0) == pytest.approx(metrics[C.MODEL][C.TOTAL_RETURN], abs=1e-12)
    found = metrics[C.SIGNIFICANCE]["cost_sensitivity"]["break_even_bps"]
    if total(0.0) <= 0:
        assert found is None
        return
    lo, hi = 0.0, 1.0
    while total(hi) > 0:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(mid) > 0 else (lo, mid)
    assert found == pytest.approx(lo, rel=1e-6)


def test_train_prints_the_verdict_and_the_break_even_cost(tmp_path, capsys):
    args = ["train", "--sample", "GOOG", "--window", "10", "--hidden", "4", "--layers", "1",
            "--epochs", "1", "--threads", "1", "--out", str(tmp_path / "run")]
    assert cli.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    metrics = json.loads((tmp_path / "run" / C.METRICS_JSON).read_text())
    assert f"verdict: {verdict(metrics[C.SIGNIFICANCE])}" in out
    assert any(line.startswith("break-even cost: ") for line in out)


@pytest.mark.parametrize("sig, words", [
    ({"rows": {"forecast": 0}}, None),
    ({"rows": {"forecast": 500}, "level": 0.95,
      "dm": {"random_walk": {"mse": {"statistic": -3.1, "pvalue": 0.002, "pvalue_better": 0.001}}},
      "echo": {"echo": False, "best_lag": 0},
      "share_better": {"buy_and_hold": 0.97}, "sharpe_diff_ci": {"buy_and_hold": [0.1, 1.2]},
      "spa": {"pvalue_consistent": 0.01, "better_than_all": True}},
     "forecast better than the random walk (DM p = 0.001, one-sided); beats buy & hold in 97% "
     "of bootstrap resamples, significant (Sharpe difference 95% interval +0.10 .. +1.20); "
     "better than every baseline (SPA p = 0.01)"),
    ({"rows": {"forecast": 500}, "level": 0.95,
      "dm": {"random_walk": {"mse": {"statistic": 0.8, "pvalue": 0.41, "pvalue_better": 0.8}}},
      "echo": {"echo": True, "best_lag": 1},
      "share_better": {"buy_and_hold": 0.62}, "sharpe_diff_ci": {"buy_and_hold": [-0.4, 0.9]},
      "spa": {"pvalue_consistent": 0.37, "better_than_all": False}},
     "forecast not distinguishable from the random walk (DM p = 0.41), an echo of the last "
     "price (it matches the close one bar late); beats buy & hold in 62% of bootstrap "
     "resamples, not significant (Sharpe difference 95% interval -0.40 .. +0.90); not better "
     "than every baseline (SPA p = 0.37)"),
])
def test_the_verdict_is_worded_from_the_tests(sig, words):
    assert verdict(sig) == words
