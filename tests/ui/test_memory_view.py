"""The Memory tab: a small memory task fills its plots and its reading, Stop ends it, a shown
run's gradient reach is drawn (curve and heat map), and the text reads the numbers."""

from __future__ import annotations

import numpy as np
import pytest

from sandbox import constants as C
from sandbox import lab, pipeline
from sandbox.config import DataSpec, ModelConfig, RunConfig, TrainConfig
from sandbox.ui.controller import RunController
from sandbox.ui.memory_view import MemoryView, memory_reading, reach_reading

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

TINY = RunConfig(data=DataSpec(source="sample:GSPC", start="2018-01-01"),
                 model=ModelConfig(kind=C.GRU, window=6, hidden=4, layers=1),
                 train=TrainConfig(epochs=1, threads=1))


@pytest.fixture
def view(qtbot):
    controller = RunController()
    widget = MemoryView(controller)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()
    controller.shutdown()


@pytest.fixture(scope="module")
def trained():
    return pipeline.run(TINY)


def _drawn(curve) -> tuple[np.ndarray, np.ndarray]:
    x, y = curve.getOriginalDataset()
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def test_a_small_task_fills_both_plots_and_the_reading(view, qtbot):
    busy: list[bool] = []
    view.busy_changed.connect(busy.append)
    with qtbot.waitSignal(view.memory_done, timeout=60_000) as done:
        assert view.run_experiment([C.RNN, C.TRANSFORMER], "3,6", steps=10, seed=0)
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=10_000)
    assert busy == [True, False]
    result = done.args[0]
    assert [(c.kind, c.lag) for c in result.cells] == [
        (C.RNN, 3), (C.RNN, 6), (C.TRANSFORMER, 3), (C.TRANSFORMER, 6)]
    for kind in (C.RNN, C.TRANSFORMER):
        x, y = _drawn(view.error_curves[kind])
        np.testing.assert_array_equal(x, [3, 6])
        np.testing.assert_allclose(y, [result.cell(kind, lag).final_mse for lag in (3, 6)])
        for column in ("grad_norm_init", "grad_norm_trained"):
            _, g = _drawn(view.grad_curves[(kind, column)])
            np.testing.assert_allclose(g, [getattr(result.cell(kind, lag), column)
                                           for lag in (3, 6)])
    assert view.memory_text.text() == memory_reading(result)
    assert "RNN" in view.memory_text.text() and "Transformer" in view.memory_text.text()
    assert view.progress_label.text().startswith("Done: 4 networks")
    assert view.run_button.isEnabled() and not view.stop_button.isEnabled()


def test_stop_ends_the_task_and_keeps_what_was_done(view, qtbot):
    cancelled: list[bool] = []
    view.memory_done.connect(lambda _r: cancelled.append(False))
    assert view.run_experiment([C.RNN], "3", steps=1_000_000)
    assert view.stop_button.isEnabled() and not view.run_button.isEnabled()
    qtbot.waitUntil(lambda: "step" in view.progress_label.text(), timeout=20_000)
    assert view.stop()
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=10_000)
    assert view.progress_label.text() == "Stopped: 0 of 1 cells done (shown)"
    assert cancelled == []  # no result came
    assert not view.stop()  # nothing runs any more


def test_run_waits_while_the_app_trains(view, monkeypatch):
    monkeypatch.setattr(view.controller, "is_idle", lambda: False)
    view._sync()
    assert not view.run_button.isEnabled()
    assert "not now: the app is training" in view.run_button.toolTip()
    assert not view.run_experiment([C.RNN], "3", steps=1)


def test_bad_lags_disable_run_with_the_reason(view):
    view.lags_edit.setText("5,x")
    assert not view.run_button.isEnabled()
    assert "Lags" in view.run_button.toolTip()


def test_a_shown_run_gets_its_reach_curve_and_heat_map(view, qtbot, trained):
    with qtbot.waitSignal(view.reach_done, timeout=60_000):
        view.show_run(trained)
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=10_000)
    expected = lab.reach_of(trained)  # the same measure, here in the test's own process
    x, y = _drawn(view.reach_curves[C.GRU])
    np.testing.assert_array_equal(x, np.arange(int(trained.feature_state["seq_len"])))
    np.testing.assert_allclose(y, expected.mean_abs_grad, rtol=1e-6)
    image = view.heat_image.image
    assert image.shape == expected.per_feature.shape
    np.testing.assert_allclose(image, np.log10(expected.per_feature), rtol=1e-6)
    assert view.reach_text.text() == reach_reading(view.reaches, C.GRU)
    assert view.reach_text.text().startswith("GRU (GSPC")


def test_an_ensemble_has_no_reach_and_says_so(view):
    class Ensemble:
        can_save = False

    view.show_run(Ensemble())
    assert "no single model" in view.reach_status.text()
    assert not view.is_busy()


def test_the_reading_says_what_the_numbers_show():
    cells = [lab.MemoryCell(C.RNN, 5, 0.01, 1e-3, 1.0),
             lab.MemoryCell(C.RNN, 40, 1.02, 1e-11, 1e-20),
             lab.MemoryCell(C.GRU, 5, 0.02, 2e-3, 2.0),
             lab.MemoryCell(C.GRU, 40, 0.001, 3e-11, 4.0),
             lab.MemoryCell(C.LSTM, 5, 0.97, 1e-3, 0.0),
             lab.MemoryCell(C.LSTM, 40, 1.0, 1e-11, 0.0)]
    text = memory_reading(lab.MemoryResult(cells=cells))
    assert "RNN learned lag 5 (error below 0.1) but not 40 (error 1)." in text
    assert "GRU learned every lag shown (error 0.02 or less" in text
    assert "LSTM learned none of the lags shown: its error stays 0.97-1," in text
    # lag 40 tells the kinds apart (the GRU learned it, the others did not): largest first
    assert ("At lag 40, the gradient reaching the marked step after training: GRU 4, RNN "
            "1e-20, LSTM 0 (below the smallest float).") in text
    assert "Before training it was 1e-11 to 3e-11 there." in text


def test_the_reach_reading_names_where_the_gradient_falls():
    # means over the features by lag: 2, 0.5, 0.05, 0.002
    per_feature = np.array([[1.0, 3.0], [0.5, 0.5], [0.05, 0.05], [0.001, 0.003]])
    reach = lab.ReachResult(kind=C.LSTM, feature_names=["a", "b"], per_feature=per_feature,
                            n_windows=7, split=C.VAL, label="X")
    flat = lab.ReachResult(kind=C.TRANSFORMER, feature_names=["a", "b"],
                           per_feature=np.ones((4, 2)), n_windows=7, split=C.VAL, label="X")
    text = reach_reading({C.LSTM: reach, C.TRANSFORMER: flat}, C.LSTM)
    assert text.startswith("LSTM (X, 7 validation windows of 4 bars): the prediction moves 2 "
                           "per unit of the last bar's scaled features; below 10% of that from "
                           "2 bars back and below 1% of that from 3 bars back.")
    assert "largest gradient summed over the window: b." in text
    assert "Transformer 1, LSTM 0.001." in text


def test_the_reach_is_measured_in_the_torch_process(view, qtbot, trained, child_engine):
    from dataclasses import replace

    from sandbox import export

    # as the app holds it: the model stays in the torch process, its weights come back as bytes
    shown = replace(trained, model=None, weights=export.weights_bytes(trained))
    with qtbot.waitSignal(view.reach_done, timeout=120_000) as done:
        view.show_run(shown)
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=10_000)
    np.testing.assert_allclose(done.args[0].per_feature, lab.reach_of(trained).per_feature,
                               rtol=1e-6)
