"""Leakage self-audit: does any prediction move when the prices after it change?

A prediction for bar ``t + 1`` may use the prices up to the close of bar ``t`` only. The
audit checks that of a trained model on the data it predicts, without trusting the code that
builds its inputs: it predicts every row once on the full data (the reference), then, at
``K`` cut dates ``c`` drawn at random (seeded) among the rows with a prediction,

- ``truncated``: on the data cut at ``c`` (every bar after ``c`` removed), and
- ``scrambled``: on the full-length data whose bars after ``c`` are shuffled (whole bars,
  so each stays a valid bar) and each scaled by its own random factor (``exp`` of a normal
  draw: :data:`PRICE_NOISE` for open, high, low and close together, :data:`VOLUME_NOISE`
  for the volume), so that even a single later bar changes,

and compares every prediction dated at or before ``c`` with the reference. A leak-free
pipeline gives the very same numbers (:func:`sandbox.training.predict` runs fixed-shape
chunks, so a row's output depends on its own window only, whatever the data's length);
any change is a failure. The failure names the first date whose prediction changed and the
feature responsible: the per-bar features are rebuilt on the changed data and the first one
that differs at or before ``c`` is named (features come before the model, so this says
where later prices got in; when none differs, the leak is in the model or in how it is
applied).

Qt-free; torch is imported inside the functions that predict. The app runs
:func:`audit_leakage` in its torch process (Run > Audit for leakage...).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sandbox import constants as C
from sandbox.errors import Cancelled, ConfigError, DataError

if TYPE_CHECKING:
    from sandbox.export import Bundle

__all__ = [
    "DEFAULT_CUTS",
    "MODES",
    "MODE_SCRAMBLED",
    "MODE_TRUNCATED",
    "AuditProgress",
    "AuditResult",
    "CutCheck",
    "audit_leakage",
    "check_line",
    "choose_cuts",
    "day",
    "predictor_of",
    "scrambled_after",
    "summary",
]

MODE_TRUNCATED = "truncated"  # every bar after the cut removed
MODE_SCRAMBLED = "scrambled"  # the bars after the cut shuffled and rescaled
MODES: tuple[str, ...] = (MODE_TRUNCATED, MODE_SCRAMBLED)
DEFAULT_CUTS = 5
#: a prediction "changed" when it moved by more than this, relative to the larger of the
#: two values. A leak-free pipeline repeats its numbers bit for bit; the tolerance only
#: absorbs last-bit rounding of float64 arithmetic outside the model (a custom predictor
#: that sums in another order for another length). The model's outputs are float32: one
#: that moves at all moves by at least one float32 step, ~1e-7 relative, 100,000 times more.
RTOL = 1e-12
#: standard deviation of the log factor that scales each scrambled bar's prices (10%)
PRICE_NOISE = 0.1
#: and of the one that scales its volume
VOLUME_NOISE = 0.5

#: what the user is told each mode did to the prices after the cut
_DONE = {MODE_TRUNCATED: "removed", MODE_SCRAMBLED: "scrambled"}

Predict = Callable[[pd.DataFrame], Any]  # prices -> predicted returns (frame or series)
Features = Callable[[pd.DataFrame], pd.DataFrame]  # prices -> per-bar feature frame


@dataclass(frozen=True)
class CutCheck:
    """One re-prediction: the data cut (or scrambled) after ``cut``, compared with the
    reference at every row dated at or before it."""

    cut: pd.Timestamp
    mode: str  # MODE_TRUNCATED or MODE_SCRAMBLED
    rows_compared: int  # predictions dated at or before the cut
    #: the largest change of a compared prediction (inf where one appeared or vanished,
    #: e.g. became NaN); 0.0 when none changed
    max_abs_change: float
    first_changed: pd.Timestamp | None  # the first date whose prediction changed, or None
    #: the first per-bar feature that changed at or before the cut (only looked for when a
    #: prediction changed), and the date it first changed on
    feature: str | None = None
    feature_date: pd.Timestamp | None = None

    @property
    def passed(self) -> bool:
        return self.first_changed is None


@dataclass(frozen=True)
class AuditProgress:
    """What :func:`audit_leakage` passes to ``on_progress``: ``done`` of ``total`` cuts
    checked (sent before each cut and once at the end)."""

    done: int
    total: int


@dataclass
class AuditResult:
    """The outcome: ``passed`` when no prediction at or before any cut changed."""

    passed: bool
    cuts: list[CutCheck]  # by cut date, then mode (truncated first)
    message: str  # one line for the user
    seed: int = 0
    seconds: float = 0.0
    cut_dates: list[pd.Timestamp] = field(default_factory=list)

    @property
    def failures(self) -> list[CutCheck]:
        return [check for check in self.cuts if not check.passed]

    @property
    def first_failure(self) -> CutCheck | None:
        """The failing check with the earliest changed prediction (None when it passed)."""
        failures = self.failures
        return min(failures, key=lambda c: (c.first_changed, c.cut)) if failures else None

    @property
    def rows_compared(self) -> int:
        return sum(check.rows_compared for check in self.cuts)


# --- the predictor -------------------------------------------------------------------------


def predictor_of(run_or_bundle: Any) -> Bundle:
    """A :class:`~sandbox.export.Bundle` that predicts like ``run_or_bundle``.

    A bundle is returned as it is; a single run (:class:`~sandbox.pipeline.RunResult`, a
    trained one or a saved model applied to data) gives its model, or, when the model lives
    in another process (the app's), one rebuilt from its safetensors weights.

    Raises
    ------
    ConfigError
        It keeps no model (an ensemble: its members were trained elsewhere).
    """
    from sandbox.export import Bundle

    if isinstance(run_or_bundle, Bundle):
        return run_or_bundle
    model = getattr(run_or_bundle, "model", None)
    weights = getattr(run_or_bundle, "weights", None)
    state = getattr(run_or_bundle, "feature_state", None)
    if (model is None and weights is None) or not isinstance(state, dict):
        raise ConfigError("this run keeps no single model to audit (an ensemble or a sweep's "
                          "configuration averages several): audit a run trained with Seeds 1 "
                          "or a saved model")
    config = run_or_bundle.config
    if model is None:
        from safetensors.torch import load

        from sandbox import models

        model = models.build_model(config.model, len(state["feature_names"]))
        model.load_state_dict(load(weights))
    model.eval()
    return Bundle(config=config, feature_state=state, model=model)


def _bar_features(state: dict[str, Any]) -> Features:
    from sandbox import features

    target = state["target"]
    return lambda prices: features.bar_features(prices, target=target)


def _predicted(predict: Predict, prices: pd.DataFrame) -> pd.Series:
    out = predict(prices)
    if isinstance(out, pd.DataFrame):
        out = out[C.PREDICTED_RETURN]
    return pd.Series(np.asarray(out, dtype=np.float64), index=pd.DatetimeIndex(out.index))


# --- cuts and scrambling -------------------------------------------------------------------


def choose_cuts(rows: pd.DatetimeIndex, cuts: int = DEFAULT_CUTS, seed: int = 0
                ) -> list[pd.Timestamp]:
    """``cuts`` distinct dates drawn at random (seeded) among the predicted ``rows``, in
    order. The last row is never drawn: a cut needs a later bar to remove or scramble.
    Fewer rows than asked: every one of them.

    Raises
    ------
    DataError
        Fewer than two predicted rows (nothing before a later bar).
    """
    if not isinstance(cuts, int) or isinstance(cuts, bool) or cuts < 1:
        raise ConfigError(f"cuts {cuts!r}: must be a whole number >= 1")
    candidates = len(rows) - 1
    if candidates < 1:
        raise DataError(f"{len(rows)} predicted row(s): too few to cut the data after one")
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(candidates, size=min(cuts, candidates), replace=False))
    return [pd.Timestamp(rows[i]) for i in picks]


def scrambled_after(prices: pd.DataFrame, cut: pd.Timestamp,
                    rng: np.random.Generator) -> pd.DataFrame:
    """``prices`` with every bar after ``cut`` replaced: the later bars shuffled among
    themselves (whole bars), then each one's open, high, low and close scaled by one random
    factor ``exp(N(0, PRICE_NOISE))`` and its volume by ``exp(N(0, VOLUME_NOISE))``. Every
    bar stays a valid bar (high >= open, close >= low); dates and bars up to ``cut`` are
    untouched."""
    out = prices.copy()
    later = np.flatnonzero(out.index > cut)
    if not later.size:
        return out
    shuffled = later[rng.permutation(later.size)]
    factors = {C.VOLUME: np.exp(rng.normal(0.0, VOLUME_NOISE, later.size))}
    price_factor = np.exp(rng.normal(0.0, PRICE_NOISE, later.size))
    factors.update(dict.fromkeys((C.OPEN, C.HIGH, C.LOW, C.CLOSE), price_factor))
    for col in out.columns:
        values = out[col].to_numpy(copy=True)
        values[later] = values[shuffled]
        if col in factors:
            values = values.astype(np.float64)
            values[later] *= factors[col]
        out[col] = values
    return out


# --- comparing -----------------------------------------------------------------------------


def _changed(ref: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which values changed (NaN in both is no change), and by how much (inf where one is
    NaN and the other is not)."""
    both_nan = np.isnan(ref) & np.isnan(new)
    with np.errstate(invalid="ignore"):
        diff = np.abs(new - ref)
        same = both_nan | (diff <= RTOL * np.maximum(np.abs(ref), np.abs(new)))
    diff = np.where(both_nan, 0.0, np.where(np.isnan(diff), np.inf, diff))
    return ~same, diff


def _first_feature_change(reference: pd.DataFrame, other: pd.DataFrame, cut: pd.Timestamp
                          ) -> tuple[str | None, pd.Timestamp | None]:
    """The feature whose value at or before ``cut`` changed first (ties: column order)."""
    ref = reference.loc[:cut]
    new = other.reindex(index=ref.index, columns=ref.columns)
    best: tuple[int, str] | None = None
    for name in ref.columns:
        changed, _ = _changed(ref[name].to_numpy(np.float64), new[name].to_numpy(np.float64))
        hits = np.flatnonzero(changed)
        if hits.size and (best is None or hits[0] < best[0]):
            best = (int(hits[0]), str(name))
    if best is None:
        return None, None
    return best[1], pd.Timestamp(ref.index[best[0]])


def _check(reference: pd.Series, predicted: pd.Series, cut: pd.Timestamp, mode: str,
           ref_features: Callable[[], pd.DataFrame] | None, features: Features | None,
           prices: pd.DataFrame) -> CutCheck:
    ref = reference.loc[:cut]
    new = predicted.reindex(ref.index)  # a row missing from the re-prediction is a change
    changed, diff = _changed(ref.to_numpy(np.float64), new.to_numpy(np.float64))
    hits = np.flatnonzero(changed)
    largest = float(diff.max()) if diff.size else 0.0
    if not hits.size:
        return CutCheck(cut=cut, mode=mode, rows_compared=len(ref), max_abs_change=largest,
                        first_changed=None)
    feature, feature_date = None, None
    if features is not None and ref_features is not None:
        feature, feature_date = _first_feature_change(ref_features(), features(prices), cut)
    return CutCheck(cut=cut, mode=mode, rows_compared=len(ref), max_abs_change=largest,
                    first_changed=pd.Timestamp(ref.index[hits[0]]), feature=feature,
                    feature_date=feature_date)


# --- the audit -----------------------------------------------------------------------------


def audit_leakage(run_or_bundle: Any, prices: pd.DataFrame, *, cuts: int = DEFAULT_CUTS,
                  seed: int = 0, predict: Predict | None = None,
                  features: Features | None = None,
                  on_progress: Callable[[AuditProgress], None] | None = None,
                  cancel: threading.Event | None = None) -> AuditResult:
    """Re-predict with a trained model on the data cut at ``cuts`` random dates, and on the
    data scrambled after each; report any prediction at or before a cut that changed.

    Parameters
    ----------
    run_or_bundle : RunResult, Bundle or None
        The model to audit: a single run (trained, or a saved model's predictions) or a
        loaded bundle (see :func:`predictor_of`). May be None when ``predict`` is given.
    prices : pandas.DataFrame
        The price frame it predicts (a run's ``data.frame``).
    cuts : int
        How many cut dates (default 5); each is checked truncated and scrambled.
    seed : int
        Draws the cut dates (:func:`choose_cuts`) and the scrambling: the same seed audits
        the same dates the same way.
    predict : callable, optional
        ``prices -> predicted returns`` (a frame with ``predicted_return`` or a series,
        indexed by date) instead of the model's own (a test plants a leak with it).
    features : callable, optional
        ``prices -> per-bar feature frame`` used to name the feature that leaked; by
        default the model's own (:func:`sandbox.features.bar_features` of its target).
    on_progress : callable, optional
        Receives an :class:`AuditProgress` before each cut and once at the end.
    cancel : threading.Event, optional
        Set it to stop between two predictions (raises :class:`~sandbox.errors.Cancelled`).

    Returns
    -------
    AuditResult
    """
    started = time.perf_counter()
    if predict is None or (features is None and run_or_bundle is not None):
        bundle = predictor_of(run_or_bundle)
        predict = predict or bundle.predict
        features = features or _bar_features(bundle.feature_state)
    _stop_if(cancel)
    reference = _predicted(predict, prices)
    dates = choose_cuts(reference.index, cuts, seed)
    full_features: list[pd.DataFrame] = []

    def ref_features() -> pd.DataFrame:  # built once, and only if a prediction changed
        if not full_features:
            full_features.append(features(prices))
        return full_features[0]

    checks: list[CutCheck] = []
    for k, cut in enumerate(dates):
        if on_progress is not None:
            on_progress(AuditProgress(done=k, total=len(dates)))
        rng = np.random.default_rng([seed, k])
        for mode in MODES:
            _stop_if(cancel)
            data = (prices.loc[prices.index <= cut] if mode == MODE_TRUNCATED
                    else scrambled_after(prices, cut, rng))
            checks.append(_check(reference, _predicted(predict, data), cut, mode,
                                 ref_features, features, data))
    if on_progress is not None:
        on_progress(AuditProgress(done=len(dates), total=len(dates)))
    result = AuditResult(passed=all(c.passed for c in checks), cuts=checks, message="",
                         seed=seed, seconds=time.perf_counter() - started, cut_dates=dates)
    result.message = summary(result)
    return result


def _stop_if(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("the leakage audit was stopped")


# --- wording -------------------------------------------------------------------------------


def day(ts: pd.Timestamp) -> str:
    """A date as the user reads it: ``2019-03-04``, with the time of day for intraday bars."""
    ts = pd.Timestamp(ts)
    if ts == ts.normalize():
        return str(ts.date())
    return ts.tz_localize(None).isoformat(sep=" ", timespec="minutes")


def summary(result: AuditResult) -> str:
    """The outcome in one line.

    Passed: "No leak found: no prediction at or before 5 random cut dates changed when later
    prices were removed or scrambled (2004-05-06, ...; 9,870 predictions compared)."
    Failed: "Leak: the prediction for 2019-03-04 changed when the prices after 2019-03-04
    were removed; the first feature to change is next_close, on 2019-03-04 (4 of 10 checks
    failed)."
    """
    n = len(result.cut_dates)
    dates = ", ".join(day(d) for d in result.cut_dates)
    if result.passed:
        return (f"No leak found: no prediction at or before {n} random cut "
                f"date{'s' if n != 1 else ''} changed when later prices were removed or "
                f"scrambled ({dates}; {result.rows_compared:,} predictions compared).")
    first = result.first_failure
    assert first is not None
    text = (f"Leak: the prediction for {day(first.first_changed)} changed when the prices "
            f"after {day(first.cut)} were {_DONE[first.mode]}")
    if first.feature is not None:
        text += (f"; the first feature to change is {first.feature}, on "
                 f"{day(first.feature_date)}")
    else:
        text += ("; no input feature changed, so later prices reach the prediction in the "
                 "model or in how it is applied")
    failed = len(result.failures)
    return text + f" ({failed} of {len(result.cuts)} checks failed)."


def check_line(check: CutCheck) -> str:
    """One check as a line of the details: "2004-05-06, later prices scrambled: 1,234
    predictions unchanged" or "... changed from 2019-03-04 (first feature to change:
    next_close, on 2019-03-04; largest change 0.0012)"."""
    head = f"{day(check.cut)}, later prices {_DONE[check.mode]}: {check.rows_compared:,} "
    if check.passed:
        return head + f"prediction{'s' if check.rows_compared != 1 else ''} unchanged"
    change = ("a prediction appeared or vanished" if not np.isfinite(check.max_abs_change)
              else f"largest change {check.max_abs_change:.3g}")
    cause = (f"first feature to change: {check.feature}, on {day(check.feature_date)}"
             if check.feature is not None else "no input feature changed")
    return head + f"compared, changed from {day(check.first_changed)} ({cause}; {change})"
