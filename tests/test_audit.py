"""The leakage self-audit: it flags a planted leak, naming the date and the feature, and
passes the real pipeline."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from test_features import make_prices

from sandbox import audit, engine, export, features, models, pipeline, training
from sandbox import constants as C
from sandbox.config import ModelConfig, RunConfig, SplitSpec, TrainConfig
from sandbox.errors import Cancelled, ConfigError

WINDOW = 10


def _config(target: str = C.TARGET_RETURN) -> RunConfig:
    return RunConfig(
        split=SplitSpec(min_returns=10),
        model=ModelConfig(kind=C.GRU, window=WINDOW, hidden=4, layers=1, dropout=0.0,
                          target=target),
        train=TrainConfig(epochs=1, patience=0, batch_size=32, threads=1, seed=3),
    )


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return make_prices(300, seed=7, phi=0.2)


@pytest.fixture(scope="module")
def trained(prices) -> pipeline.RunResult:
    return pipeline.run(_config(), prices=prices, evidence=False)


class Leaky:
    """A real recurrent model whose inputs include the next bar's return,
    ``ln(close[t+1] / close[t])`` (column ``next_close``): the planted leak."""

    def __init__(self) -> None:
        import torch

        torch.manual_seed(0)
        config = ModelConfig(kind=C.LSTM, window=WINDOW, hidden=4, layers=1, dropout=0.0)
        self.model = models.build_model(config, len(features.RETURN_FEATURES) + 1).eval()

    def features(self, prices: pd.DataFrame) -> pd.DataFrame:
        frame = features.bar_features(prices)
        close = prices[C.CLOSE].to_numpy(np.float64)
        frame["next_close"] = features.next_log_return(prices)  # close[t+1]: the leak
        assert np.isnan(frame["next_close"].iloc[-1]) and len(close) == len(frame)
        return frame

    def predict(self, prices: pd.DataFrame) -> pd.Series:
        import torch

        x = self.features(prices).to_numpy(np.float64)[1:] * 100  # bar 0 has no features
        windows = features.windows(torch.from_numpy(x.astype(np.float32)), WINDOW - 1)
        out = training.predict(self.model, windows).astype(np.float64)
        return pd.Series(out, index=prices.index[WINDOW - 1:])


def test_a_planted_leak_is_flagged_with_its_first_date_and_feature(prices):
    leaky = Leaky()
    result = audit.audit_leakage(None, prices, predict=leaky.predict, features=leaky.features,
                                 cuts=5, seed=1)
    assert not result.passed
    assert len(result.cuts) == 10 and {c.mode for c in result.cuts} == set(audit.MODES)
    for check in result.cuts:  # both modes catch it at every cut, on the cut date itself
        assert not check.passed
        assert check.first_changed == check.cut
        assert check.feature == "next_close" and check.feature_date == check.cut
        assert check.max_abs_change > 0
    truncated = [c for c in result.cuts if c.mode == audit.MODE_TRUNCATED]
    assert all(c.max_abs_change == np.inf for c in truncated)  # close[t+1] is gone: NaN
    first = result.cut_dates[0]
    assert result.first_failure.cut == first
    day = str(first.date())
    assert result.message == (
        f"Leak: the prediction for {day} changed when the prices after {day} were removed; "
        f"the first feature to change is next_close, on {day} (10 of 10 checks failed).")


def test_a_leak_after_the_features_is_flagged_without_a_feature(prices, trained):
    """A centred smoothing of the model's own predictions reads the next bar's prediction:
    no input feature changes, the predictions do."""
    bundle = audit.predictor_of(trained)

    def smoothed(frame: pd.DataFrame) -> pd.Series:
        p = bundle.predict(frame)[C.PREDICTED_RETURN]
        return p.rolling(3, center=True, min_periods=1).mean()

    result = audit.audit_leakage(trained, prices, predict=smoothed, cuts=3, seed=2)
    assert not result.passed
    check = result.first_failure
    assert check.mode == audit.MODE_TRUNCATED and check.first_changed == check.cut
    assert check.feature is None and check.feature_date is None
    assert "no input feature changed" in result.message


@pytest.mark.parametrize("target", [C.TARGET_RETURN, C.TARGET_TRADED, C.TARGET_PRICE])
def test_the_real_pipeline_passes_in_both_modes(prices, trained, target):
    run = trained if target == C.TARGET_RETURN else pipeline.run(
        _config(target), prices=prices, evidence=False)
    result = audit.audit_leakage(run, prices)  # K = 5, seed 0
    assert result.passed, result.message
    assert len(result.cut_dates) == 5 and len(result.cuts) == 10
    assert [c.mode for c in result.cuts] == list(audit.MODES) * 5
    for check in result.cuts:
        assert check.first_changed is None and check.feature is None
        assert check.max_abs_change == 0.0  # bit for bit: not merely within the tolerance
        assert check.rows_compared == int(np.sum(run.predictions.index <= check.cut)) > 0
    assert result.message.startswith(
        "No leak found: no prediction at or before 5 random cut dates changed when later "
        "prices were removed or scrambled (")
    assert f"{result.rows_compared:,} predictions compared)." in result.message


def test_the_model_in_another_process_and_a_saved_bundle_audit_alike(prices, trained,
                                                                     tmp_path):
    """The app's runs keep their model as safetensors weights (the torch process's), and a
    bundle loaded from disk predicts the same: both pass, on the same cut dates."""
    portable = engine.portable(trained)
    assert portable.model is None and portable.weights
    from_weights = audit.audit_leakage(portable, prices, cuts=2, seed=4)
    loaded = export.load_bundle(export.save_bundle(trained, tmp_path / "bundle"))
    from_bundle = audit.audit_leakage(loaded, prices, cuts=2, seed=4)
    assert from_weights.passed and from_bundle.passed
    assert from_weights.cut_dates == from_bundle.cut_dates
    reference = audit.predictor_of(portable).predict(prices)[C.PREDICTED_RETURN]
    np.testing.assert_array_equal(reference, trained.predictions[C.PREDICTED_RETURN])


def test_cut_dates_are_reproducible_with_the_seed_and_inside_the_predicted_range(prices,
                                                                                   trained):
    rows = trained.predictions.index
    dates = audit.choose_cuts(rows, 5, seed=11)
    assert dates == audit.choose_cuts(rows, 5, seed=11)
    assert dates != audit.choose_cuts(rows, 5, seed=12)
    assert dates == sorted(set(dates)) and len(dates) == 5
    assert all(rows[0] <= d < rows[-1] for d in dates)  # never the last row: no later bar
    assert all(d in rows for d in dates)
    assert rows[0] == prices.index[WINDOW - 1]  # the first row with a full window
    result = audit.audit_leakage(trained, prices, seed=11)
    assert result.cut_dates == dates and result.seed == 11
    assert [c.cut for c in result.cuts] == [d for d in dates for _ in audit.MODES]
    # fewer candidate rows than cuts: every row but the last
    assert audit.choose_cuts(rows[:4], 5) == list(rows[:3])
    with pytest.raises(ConfigError):
        audit.choose_cuts(rows, 0)


def test_scrambling_changes_every_later_bar_and_keeps_bars_valid(prices):
    cut = prices.index[150]
    out = audit.scrambled_after(prices, cut, np.random.default_rng(0))
    assert out.index.equals(prices.index) and list(out.columns) == list(prices.columns)
    pd.testing.assert_frame_equal(out.loc[:cut], prices.loc[:cut])
    later = out.index > cut
    assert (out.loc[later].to_numpy() != prices.loc[later].to_numpy()).all()
    assert (out[C.HIGH] >= out[[C.OPEN, C.CLOSE]].max(axis=1)).all()
    assert (out[C.LOW] <= out[[C.OPEN, C.CLOSE]].min(axis=1)).all()
    assert (out[C.VOLUME] >= 0).all()
    # the last bar alone after the cut still changes (a shuffle of one bar would not)
    one = audit.scrambled_after(prices, prices.index[-2], np.random.default_rng(0))
    assert one[C.CLOSE].iloc[-1] != prices[C.CLOSE].iloc[-1]


def test_progress_is_reported_per_cut_and_stop_is_honoured(prices, trained):
    seen: list[audit.AuditProgress] = []
    audit.audit_leakage(trained, prices, cuts=3, on_progress=seen.append)
    assert [(p.done, p.total) for p in seen] == [(0, 3), (1, 3), (2, 3), (3, 3)]

    cancel = threading.Event()

    def stop_after_first(progress: audit.AuditProgress) -> None:
        if progress.done == 1:
            cancel.set()

    with pytest.raises(Cancelled):
        audit.audit_leakage(trained, prices, cuts=3, on_progress=stop_after_first,
                            cancel=cancel)


def test_an_ensemble_has_no_single_model_to_audit(trained):
    from sandbox.ensemble import EnsembleResult

    fake = EnsembleResult.__new__(EnsembleResult)
    fake.model, fake.config = None, trained.config
    with pytest.raises(ConfigError, match="no single model"):
        audit.predictor_of(fake)
