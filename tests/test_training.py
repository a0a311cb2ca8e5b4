from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from test_features import make_prices

from sandbox import constants as C
from sandbox import features, models, training
from sandbox.config import ModelConfig, TrainConfig
from sandbox.errors import Cancelled, TrainingError
from sandbox.events import BatchEnd, EpochEnd


def _data(n=400, window=10, seed=0):
    fs = features.prepare(make_prices(n, seed=seed, phi=0.3), window=window)
    x = torch.from_numpy(fs.x)
    return (features.windows(x, fs.seq_len), torch.from_numpy(fs.y),
            torch.from_numpy(fs.fit_rows[C.TRAIN]), torch.from_numpy(fs.fit_rows[C.VAL]))


def _fit(config, data=None, **kw):
    w, y, tr, va = data or _data()
    training.configure_torch(config)
    model = models.build_model(ModelConfig(hidden=8, layers=1, window=10), w.shape[-1])
    history = training.fit(model, w, y, tr, va, config, **kw)
    return model, history, w


def test_same_seed_gives_bit_identical_predictions():
    config = TrainConfig(epochs=3, batch_size=32, seed=7, threads=1)
    m1, h1, w = _fit(config)
    m2, h2, _ = _fit(config)
    np.testing.assert_array_equal(training.predict(m1, w), training.predict(m2, w))
    assert h1.train_loss == h2.train_loss and h1.val_loss == h2.val_loss
    m3, _, _ = _fit(config.replace(seed=8))
    assert not np.array_equal(training.predict(m1, w), training.predict(m3, w))


def test_history_is_plain_data_and_best_weights_are_restored():
    data = _data()
    model, h, w = _fit(TrainConfig(epochs=6, patience=2, batch_size=32, lr=3e-2, threads=1),
                       data)
    assert h.epochs_run == len(h.train_loss) == len(h.val_loss) == len(h.epoch_seconds)
    assert all(type(v) is float for v in h.train_loss + h.val_loss + h.batch_loss)
    assert h.best_epoch == int(np.argmin(h.val_loss)) + 1
    assert h.stopped_early == (h.epochs_run < 6)
    _, y, _, va = data
    val = training.evaluate_loss(model, w, y[va], va, torch.nn.MSELoss())
    assert val == pytest.approx(h.best_val_loss, rel=1e-6)
    assert not model.training


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    w, y, tr, va = _data()
    y = y.clone()
    y[va] = 1e3  # unreachable: validation loss stops improving early
    _, h, _ = _fit(TrainConfig(epochs=30, patience=1, batch_size=64, threads=1),
                       (w, y, tr, va))
    assert h.stopped_early and h.epochs_run < 30
    assert h.epochs_run - h.best_epoch == 1


def test_nan_loss_is_a_training_error_naming_the_epoch():
    w, y, tr, va = _data()
    y = y.clone()
    y[tr[5]] = float("nan")
    with pytest.raises(TrainingError, match=r"diverged at epoch 1 \(loss is NaN\); try a lower "
                                            r"learning rate, e\.g\. 1e-4"):
        _fit(TrainConfig(epochs=2, batch_size=400, lr=1e-3, threads=1), (w, y, tr, va))


def test_overflowing_loss_is_reported_as_infinite():
    w, y, tr, va = _data()
    y = y.clone()
    y[tr] = y[tr] * 1e30  # squared errors overflow float32
    with pytest.raises(TrainingError, match=r"loss is infinite.*e\.g\. 1e5"):
        _fit(TrainConfig(epochs=2, lr=1e6, threads=1), (w, y, tr, va))


def test_cancel_stops_within_one_batch():
    cancel = threading.Event()
    seen = []

    class StopAtThree(training.Callbacks):
        def on_batch_end(self, epoch, batch, loss):
            seen.append(batch)
            if batch == 3:
                cancel.set()

    with pytest.raises(Cancelled, match="epoch 1, batch 4"):
        _fit(TrainConfig(epochs=5, batch_size=16, threads=1), cancel=cancel,
             callbacks=StopAtThree())
    assert seen == [1, 2, 3]


def test_callbacks_and_events():
    calls = []

    class Recorder(training.Callbacks):
        def on_train_begin(self, *, n_samples, n_batches, epochs):
            calls.append(("begin", n_batches, epochs))

        def on_epoch_end(self, epoch, train_loss, val_loss, improved):
            calls.append(("epoch", epoch))

        def on_train_end(self, history):
            calls.append(("end", history.epochs_run))

    events = []
    _, h, _ = _fit(TrainConfig(epochs=2, batch_size=8, patience=0, threads=1),
                   on_event=events.append, callbacks=Recorder())
    assert calls[0][0] == "begin" and calls[0][2] == 2
    assert calls[1:] == [("epoch", 1), ("epoch", 2), ("end", 2)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2] and epochs[-1].eta_s == 0
    assert epochs[0].val_loss == h.val_loss[0]
    batches = [e for e in events if isinstance(e, BatchEnd)]
    # throttled: at most ~20 per second plus the first one
    assert 1 <= len(batches) <= 20 * h.seconds + 2 < len(h.batch_loss)


def test_predict_does_not_depend_on_other_rows():
    model, _, w = _fit(TrainConfig(epochs=1, threads=1))
    full = training.predict(model, w)
    np.testing.assert_array_equal(training.predict(model, w[:50]), full[:50])


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(lr=0.0), dict(lr=float("nan")),
                                 dict(lr=-1e-3), dict(batch_size=0), dict(threads=0)])
def test_bad_training_settings_are_refused(bad):
    from sandbox.errors import ConfigError

    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_progress_events_throttle_batch_events_in_one_place():
    events = []
    hist = training.TrainHistory()
    progress = training.ProgressEvents(events.append, batch_size=10, history=hist)
    progress.on_train_begin(n_samples=25, n_batches=3, epochs=1)
    progress.on_epoch_begin(1)
    for batch in (1, 2, 3):  # far faster than 20 a second: only the first is sent
        progress.on_batch_end(1, batch, 0.5)
    assert [(e.batch, e.n_batches, e.epochs) for e in events] == [(1, 3, 1)]
    hist.best_val_loss, hist.samples_per_s, hist.epoch_seconds = 0.25, [100.0], [2.0]
    progress.on_epoch_end(1, 0.5, 0.25, True)
    end = events[-1]
    assert isinstance(end, EpochEnd)
    assert (end.best_val_loss, end.samples_per_s, end.elapsed_s, end.eta_s) == (0.25, 100.0, 2.0, 0)
