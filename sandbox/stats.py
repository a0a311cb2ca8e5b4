"""Statistics that are not paper trading itself: mean ± std over runs, return moments, the
probabilistic and deflated Sharpe ratios.

Paper trading and its metrics (the annualised Sharpe among them) live in
:mod:`sandbox.backtest`; this module works on what those produce: per-bar returns of one
run, or one metric over many runs (seeds, configurations). Plain Python and numpy; no torch.

Conventions (Bailey & Lopez de Prado, 2012 and 2014): a Sharpe ratio here is *per bar*
(``mean / std`` of the per-bar returns, not annualised); skewness and kurtosis are the
sample moment ratios ``m3 / m2**1.5`` and ``m4 / m2**2`` (kurtosis 3 for normal returns).
These are also skfolio's (``skfolio.measures``): the tests check the probabilistic and
deflated Sharpe ratios against its implementation to 1e-9.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "EULER_GAMMA",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "mean_std",
    "metric_stats",
    "probabilistic_sharpe_ratio",
    "return_moments",
]

EULER_GAMMA = 0.5772156649015329  # Euler-Mascheroni constant (expected maximum of N normals)


# --- over runs -------------------------------------------------------------------------------


def mean_std(values: Sequence[Any]) -> dict[str, float | None]:
    """Mean, sample standard deviation and count of the finite numbers in ``values``.

    Parameters
    ----------
    values : sequence
        Anything; None, NaN, booleans and non-numbers are left out.

    Returns
    -------
    dict
        ``{"mean", "std", "n"}``: ``std`` has ddof 1 and is None for fewer than two numbers;
        ``mean`` is None for none.
    """
    xs = [float(v) for v in values
          if isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)
          and math.isfinite(v)]
    if not xs:
        return {"mean": None, "std": None, "n": 0}
    mean = math.fsum(xs) / len(xs)
    std = (math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
           if len(xs) > 1 else None)
    return {"mean": mean, "std": std, "n": len(xs)}


def metric_stats(dicts: Sequence[dict], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """:func:`mean_std` of each metric over a list of metric dictionaries (one per run).

    Parameters
    ----------
    dicts : sequence of dict
        ``{metric: value}`` per run.
    keys : sequence of str, optional
        The metrics to summarise, in this order; default every key seen, in first-seen order.

    Returns
    -------
    dict
        ``{metric: mean_std(...)}`` for every metric whose values are numbers or None.
    """
    names: list[str] = list(keys) if keys is not None else []
    if keys is None:
        for d in dicts:
            names.extend(k for k in d if k not in names)
    out = {}
    for k in names:
        vals = [d.get(k) for d in dicts]
        if all(v is None or isinstance(v, int | float) for v in vals):
            out[k] = mean_std(vals)
    return out


# --- per-bar returns of one run --------------------------------------------------------------


def return_moments(returns: Sequence[float] | pd.Series) -> dict[str, float | int | None]:
    """Count, mean, std (ddof 1), skewness, (non-excess) kurtosis and per-bar Sharpe ratio.

    Parameters
    ----------
    returns : sequence of float or pandas.Series
        Per-bar returns; NaN are left out.

    Returns
    -------
    dict
        ``n, mean, std, skewness, kurtosis, sharpe_per_bar`` (``mean / std``, 0 when the std
        is 0). Skewness and kurtosis are ``m3 / m2**1.5`` and ``m4 / m2**2`` (a normal
        distribution has kurtosis 3), as in Bailey & Lopez de Prado; None where undefined
        (fewer than 2 returns, or all equal).
    """
    r = np.asarray(pd.Series(returns, dtype="float64").dropna(), dtype=np.float64)
    n = int(r.size)
    if n < 2:
        return {"n": n, "mean": float(r.mean()) if n else None, "std": None,
                "skewness": None, "kurtosis": None, "sharpe_per_bar": None}
    mean = float(r.mean())
    std = float(r.std(ddof=1))
    d = r - mean
    m2 = float(np.mean(d**2))
    skew = float(np.mean(d**3) / m2**1.5) if m2 > 0 else None
    kurt = float(np.mean(d**4) / m2**2) if m2 > 0 else None
    return {"n": n, "mean": mean, "std": std, "skewness": skew, "kurtosis": kurt,
            "sharpe_per_bar": mean / std if std > 0 else 0.0}


# --- Sharpe ratio inference ------------------------------------------------------------------


def probabilistic_sharpe_ratio(sharpe: float, *, n_obs: int, benchmark: float = 0.0,
                               skewness: float = 0.0, kurtosis: float = 3.0) -> float | None:
    """Probabilistic Sharpe ratio (Bailey & Lopez de Prado, 2012): the probability that the
    true per-bar Sharpe ratio exceeds ``benchmark``.

    Parameters
    ----------
    sharpe : float
        The observed Sharpe ratio per bar (not annualised).
    n_obs : int
        Number of returns it was measured on.
    benchmark : float
        The per-bar Sharpe ratio to beat (0: any skill at all).
    skewness, kurtosis : float
        Of the returns (kurtosis non-excess: 3 for normal returns).

    Returns
    -------
    float or None
        ``Z((SR - SR*) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))``; None
        when it is undefined (fewer than 2 returns, a non-finite SR, a non-positive
        denominator).
    """
    if n_obs < 2 or not math.isfinite(sharpe):
        return None
    denom = 1 - skewness * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if not denom > 0:
        return None
    return NormalDist().cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denom))


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` zero-skill trials (Bailey & Lopez de Prado).

    Parameters
    ----------
    n_trials : int
        Trials the selection looked at.
    variance : float
        Variance across the trials' per-bar Sharpe ratios.

    Returns
    -------
    float
        ``SR0 = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))`` with ``g`` the
        Euler-Mascheroni constant; 0 for a single trial or no variance.
    """
    if n_trials <= 1 or not variance > 0:
        return 0.0
    z = NormalDist()
    n = float(n_trials)
    return math.sqrt(variance) * ((1 - EULER_GAMMA) * z.inv_cdf(1 - 1 / n)
                                  + EULER_GAMMA * z.inv_cdf(1 - 1 / (n * math.e)))


def deflated_sharpe_ratio(sharpe: float, *, n_obs: int, n_trials: int, variance: float,
                          skewness: float = 0.0, kurtosis: float = 3.0) -> float | None:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado, 2014): the probability that the true
    Sharpe ratio exceeds the best one expected from ``n_trials`` zero-skill trials.

    Parameters
    ----------
    sharpe : float
        The observed Sharpe ratio per bar (not annualised).
    n_obs : int
        Number of returns it was measured on.
    n_trials : int
        Number of independent trials the selection looked at. For a sweep: distinct
        trained configurations (a configuration's seeds are averaged into one trial;
        variants that only re-trade the same model, e.g. another threshold, are not new
        trials); for repeated looks at a test split: the looks.
    variance : float
        Sample variance (ddof 1) across the trials' per-bar Sharpe ratios, measured on the
        split the selection used.
    skewness, kurtosis : float
        Of the returns (kurtosis non-excess: 3 for normal returns).

    Returns
    -------
    float or None
        The :func:`probabilistic_sharpe_ratio` with the benchmark
        ``SR0 = expected_max_sharpe(n_trials, variance)``; None when it is undefined.
    """
    return probabilistic_sharpe_ratio(sharpe, n_obs=n_obs,
                                      benchmark=expected_max_sharpe(n_trials, variance),
                                      skewness=skewness, kurtosis=kurtosis)
