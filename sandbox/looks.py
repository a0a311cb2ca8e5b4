"""How often the test split of a dataset has been looked at, shared by the app and the CLI.

The app is validation-first: test figures are shown on request, and every request is a
*look*. Looking at the test split again and again (after each retraining, each new cost or
threshold) turns it into a second validation split: the best of many looks is an optimistic
estimate. So each look is recorded, keyed by the data's fingerprint
(:func:`sandbox.export.fingerprint`, a sha256 of the price frame), with the per-bar test
Sharpe ratio it showed; the number of looks is the number of trials of the deflated Sharpe
ratio (:func:`sandbox.stats.deflated_sharpe_ratio`) and the recorded Sharpe ratios give
the variance across trials.

Storage: one JSON file, ``looks.json`` in the platformdirs user data folder of the app, or
the file named by ``$SANDBOX_LOOKS_FILE`` (tests point it at a temporary folder)::

    {"version": 1,
     "datasets": {"<sha256>": {"count": 4,
                               "looks": [{"at": "2026-11-30T15:00:00+00:00",
                                          "sharpe_per_bar": 0.031, "n": 750}, ...]}}}

Every write is atomic (:mod:`sandbox.atomic`) and done under a lock file where the platform
has ``fcntl``, so the app and a CLI run counting at the same moment both count. A damaged
file (not JSON, a wrong shape, bad values) reads as "no looks" where it is damaged, is kept
beside as ``looks.json.damaged`` and replaced on the next write: a broken counter never stops
the app or a ``train``. No Qt, no torch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sandbox import atomic, stats
from sandbox.evaluate import finite_number

__all__ = [
    "ENV_LOOKS_FILE",
    "Look",
    "LookEvidence",
    "evidence",
    "look_at_test",
    "look_count",
    "looks",
    "looks_path",
    "record_look",
]

log = logging.getLogger(__name__)

#: environment variable naming the JSON file that holds the counts (overrides the default)
ENV_LOOKS_FILE = "SANDBOX_LOOKS_FILE"
FILE_NAME = "looks.json"
FORMAT_VERSION = 1
#: looks kept per dataset (their Sharpe ratios give the variance across trials); the count
#: goes on past it
MAX_KEPT = 1000
_APP_NAME = "trading-signal-sandbox"  # as the cache folder's (sandbox.data.cache)
_KEY_VERSION, _KEY_DATASETS, _KEY_COUNT, _KEY_LOOKS = "version", "datasets", "count", "looks"


@dataclass(frozen=True)
class Look:
    """One recorded look at a dataset's test split."""

    at: str  # when, ISO 8601 in UTC
    sharpe_per_bar: float | None  # the model's per-bar test Sharpe ratio it showed
    n: int | None  # number of test returns it was measured on


@dataclass(frozen=True)
class LookEvidence:
    """What one look at the test split says about the model's Sharpe ratio.

    ``psr``: probability that the strategy's true per-bar Sharpe ratio is above 0, given the
    ``n_obs`` test returns, their skewness and kurtosis (Bailey & Lopez de Prado, 2012).
    ``dsr``: probability that it is above ``expected_max_sharpe``, the best per-bar Sharpe
    ratio expected from ``n_trials`` looks at zero-skill strategies whose Sharpe ratios vary
    as much as the recorded ones (``sharpe_variance``) (Bailey & Lopez de Prado, 2014); None
    for a first look or when fewer than two looks kept a Sharpe ratio.
    """

    count: int  # looks at this data's test split, this one included
    n_obs: int  # test returns of the model
    sharpe_per_bar: float | None
    skewness: float | None
    kurtosis: float | None
    psr: float | None
    n_trials: int
    sharpe_variance: float | None  # sample variance of the recorded per-bar Sharpe ratios
    expected_max_sharpe: float | None
    dsr: float | None


# ============================================================== storage ===================
def looks_path() -> Path:
    """The counts file: ``$SANDBOX_LOOKS_FILE`` or ``looks.json`` in the user data folder."""
    override = os.environ.get(ENV_LOOKS_FILE)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(_APP_NAME, appauthor=False)) / FILE_NAME


def look_count(fingerprint: str) -> int:
    """How many times the test split of the data with this fingerprint was looked at."""
    entry = _read(looks_path()).get(fingerprint)
    return 0 if entry is None else entry[0]


def looks(fingerprint: str) -> list[Look]:
    """The recorded looks at this data's test split, oldest first (at most ``MAX_KEPT``)."""
    entry = _read(looks_path()).get(fingerprint)
    return [] if entry is None else list(entry[1])


def record_look(fingerprint: str, *, sharpe_per_bar: float | None = None,
                n: int | None = None) -> int:
    """Count one more look at this data's test split; returns the count, this look included.

    Parameters
    ----------
    fingerprint : str
        :func:`sandbox.export.fingerprint` of the price frame.
    sharpe_per_bar : float, optional
        The model's per-bar (not annualised) test Sharpe ratio the look showed.
    n : int, optional
        Number of test returns it was measured on.

    Raises
    ------
    ExportError
        The file could not be written (its folder cannot be created, a full disk).
    """
    sharpe = finite_number(sharpe_per_bar)
    count = _int(n)
    path = looks_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from sandbox.errors import ExportError

        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    with _locked(path):
        datasets = _read(path, keep_damaged=True)
        old_count, old_looks = datasets.get(fingerprint, (0, []))
        kept = [*old_looks, Look(at=datetime.now(UTC).isoformat(timespec="seconds"),
                                 sharpe_per_bar=sharpe, n=count)][-MAX_KEPT:]
        datasets[fingerprint] = (old_count + 1, kept)
        atomic.write_json(path, _encode(datasets))
    return old_count + 1


# ============================================================== evidence ==================
def evidence(returns: Sequence[float] | pd.Series, *, count: int,
             trial_sharpes: Sequence[float | None] = ()) -> LookEvidence:
    """PSR and deflated Sharpe ratio of a model's test returns, with ``count`` looks.

    Parameters
    ----------
    returns : sequence of float or pandas.Series
        The model's per-bar test strategy returns (NaN left out).
    count : int
        Looks at this data's test split, this one included: the number of trials.
    trial_sharpes : sequence of float
        Per-bar test Sharpe ratios recorded at the looks (None left out); their sample
        variance is the variance across trials.
    """
    m = stats.return_moments(returns)
    n_obs = int(m["n"])
    sharpe, skew, kurt = m["sharpe_per_bar"], m["skewness"], m["kurtosis"]
    psr = None
    if sharpe is not None:
        psr = stats.probabilistic_sharpe_ratio(sharpe, n_obs=n_obs, benchmark=0.0,
                                               skewness=skew if skew is not None else 0.0,
                                               kurtosis=kurt if kurt is not None else 3.0)
    spread = stats.mean_std([s for s in trial_sharpes if s is not None])["std"]
    variance = None if spread is None else spread**2
    sr0 = dsr = None
    if count > 1 and variance is not None and sharpe is not None:
        sr0 = stats.expected_max_sharpe(count, variance)
        dsr = stats.deflated_sharpe_ratio(sharpe, n_obs=n_obs, n_trials=count,
                                          variance=variance,
                                          skewness=skew if skew is not None else 0.0,
                                          kurtosis=kurt if kurt is not None else 3.0)
    return LookEvidence(count=count, n_obs=n_obs, sharpe_per_bar=sharpe, skewness=skew,
                        kurtosis=kurt, psr=psr, n_trials=count, sharpe_variance=variance,
                        expected_max_sharpe=sr0, dsr=dsr)


def look_at_test(frame: pd.DataFrame, returns: Sequence[float] | pd.Series, *,
                 fingerprint: str | None = None) -> tuple[str, LookEvidence]:
    """Record a look at the test split of ``frame`` and say what the test returns show.

    Parameters
    ----------
    frame : pandas.DataFrame
        The price frame (fingerprinted unless ``fingerprint`` is given: ~50 ms for a million
        bars, so front ends call this off their UI thread).
    returns : sequence of float or pandas.Series
        The model's per-bar test strategy returns.
    fingerprint : str, optional
        The frame's fingerprint, when it is known already.

    Returns
    -------
    (str, LookEvidence)
        The fingerprint and the evidence, with this look counted.

    Raises
    ------
    ExportError
        The counts file could not be written.
    """
    if fingerprint is None:
        from sandbox.export import fingerprint as fingerprint_of

        fingerprint = fingerprint_of(frame)
    m = stats.return_moments(returns)
    count = record_look(fingerprint, sharpe_per_bar=m["sharpe_per_bar"], n=int(m["n"]))
    sharpes = [look.sharpe_per_bar for look in looks(fingerprint)]
    return fingerprint, evidence(returns, count=count, trial_sharpes=sharpes)


# ============================================================== file format ===============
def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        return None
    return int(value) if value >= 0 else None


def _read(path: Path, *, keep_damaged: bool = False) -> dict[str, tuple[int, list[Look]]]:
    """Fingerprint -> (count, looks); whatever cannot be read counts as no looks."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read %s (%s): counting from 0", path, exc)
        return {}
    try:
        datasets = json.loads(raw)[_KEY_DATASETS]
        if not isinstance(datasets, dict):
            raise TypeError("datasets is not an object")
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("%s is damaged (%s): counting from 0", path, exc)
        if keep_damaged:
            with contextlib.suppress(OSError):
                atomic.write_text(path.with_name(path.name + ".damaged"), raw)
        return {}
    out: dict[str, tuple[int, list[Look]]] = {}
    for key, entry in datasets.items():
        if not isinstance(entry, dict):
            continue
        items = entry.get(_KEY_LOOKS)
        kept = [Look(at=str(item.get("at", "")),
                     sharpe_per_bar=finite_number(item.get("sharpe_per_bar")),
                     n=_int(item.get("n")))
                for item in (items if isinstance(items, list) else []) if isinstance(item, dict)]
        count = _int(entry.get(_KEY_COUNT))
        out[str(key)] = (max(count or 0, len(kept)), kept)
    return out


def _encode(datasets: dict[str, tuple[int, list[Look]]]) -> dict[str, Any]:
    return {_KEY_VERSION: FORMAT_VERSION, _KEY_DATASETS: {
        key: {_KEY_COUNT: count,
              _KEY_LOOKS: [{"at": k.at, "sharpe_per_bar": k.sharpe_per_bar, "n": k.n}
                           for k in kept]}
        for key, (count, kept) in datasets.items()}}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (POSIX); elsewhere, no lock."""
    try:
        import fcntl
    except ImportError:  # Windows: a rare lost count beats a dependency
        yield
        return
    try:
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield  # a read-only folder: the write below reports it
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
