"""The Model box: every network kind, the Transformer's fields, the parameter count beside
the choice, and the Evaluation setting (single split or walk-forward)."""

from __future__ import annotations

import pytest

from sandbox import constants as C
from sandbox.config import ModelConfig, RunConfig, TrainConfig, WalkForwardSpec
from sandbox.errors import ConfigError
from sandbox.features import feature_names
from sandbox.ui.panels import SIZE_SEPARATOR, WARM_NOTE, ModelPanel, SidePanel, size_text


@pytest.fixture
def panel(qtbot) -> ModelPanel:
    box = ModelPanel()
    qtbot.addWidget(box)
    return box


def _shown(panel, widget) -> bool:
    """Visible within the (unshown) panel."""
    return widget.isVisibleTo(panel)


def _recurrent_count(gates: int, hidden: int, layers: int, n: int) -> int:
    """torch's nn.LSTM / GRU / RNN parameter count by hand: per layer and gate block a
    weight of (hidden x input), one of (hidden x hidden) and two biases; then the Linear
    head of hidden + 1."""
    total, inputs = 0, n
    for _ in range(layers):
        total += gates * (hidden * inputs + hidden * hidden + 2 * hidden)
        inputs = hidden
    return total + hidden + 1


def test_the_network_choice_lists_every_kind_with_its_name(panel):
    kinds = [panel.kind_combo.itemData(i) for i in range(panel.kind_combo.count())]
    labels = [panel.kind_combo.itemText(i) for i in range(panel.kind_combo.count())]
    assert kinds == list(C.MODEL_KINDS)
    assert "Transformer" in labels


def test_heads_show_for_the_transformer_only_and_hidden_is_named_its_width(panel):
    for kind in C.MODEL_KINDS:
        panel.kind_combo.setCurrentIndex(panel.kind_combo.findData(kind))
        transformer = kind == C.TRANSFORMER
        assert _shown(panel, panel.heads_spin) is transformer
        assert _shown(panel, panel.heads_label) is transformer
        assert ("d_model" in panel.hidden_label.text()) is transformer


def test_a_transformer_round_trips_with_its_heads(panel):
    model = ModelConfig(kind=C.TRANSFORMER, window=20, hidden=48, layers=3, heads=6,
                        dropout=0.1)
    panel.set_configs(model, TrainConfig())
    assert panel.model_config() == model


def test_a_width_that_is_not_a_multiple_of_the_heads_is_refused_with_the_reason(panel):
    panel.set_configs(ModelConfig(kind=C.TRANSFORMER, hidden=32, heads=4), TrainConfig())
    panel.hidden_spin.setValue(30)
    with pytest.raises(ConfigError, match="multiple of its heads"):
        panel.model_config()


@pytest.mark.parametrize(("kind", "gates"), [(C.LSTM, 4), (C.GRU, 3), (C.RNN, 1)])
def test_the_parameter_count_beside_the_choice_is_torchs(panel, kind, gates):
    n = len(feature_names(C.TARGET_RETURN))
    panel.set_configs(ModelConfig(kind=kind, hidden=64, layers=2), TrainConfig())
    count = _recurrent_count(gates, 64, 2, n)
    lines = panel.size_label.text().split(SIZE_SEPARATOR)
    assert lines[0] == f"{count:,} parameters"
    if kind == C.LSTM:
        assert len(lines) == 1
    else:  # the ratio to an LSTM of the same size
        ratio = count / _recurrent_count(4, 64, 2, n)
        assert lines[1] == f"{ratio:.2f}x an LSTM"
    assert _shown(panel, panel.size_label)


def test_a_gru_is_about_three_quarters_of_an_lstm():
    text, tip = size_text(C.GRU, 64, 2)
    assert text.endswith("0.75x an LSTM")
    assert "LSTM" in tip


def test_the_count_follows_the_fields(panel):
    panel.set_configs(ModelConfig(kind=C.LSTM, hidden=8, layers=1), TrainConfig())
    n = len(feature_names(C.TARGET_RETURN))
    before = panel.size_label.text()
    panel.hidden_spin.setValue(16)
    assert panel.size_label.text() != before
    assert panel.size_label.text() == f"{_recurrent_count(4, 16, 1, n):,} parameters"
    panel.layers_spin.setValue(2)
    assert panel.size_label.text() == f"{_recurrent_count(4, 16, 2, n):,} parameters"


def test_the_transformer_count_is_the_built_models():
    torch = pytest.importorskip("torch")  # the reference only; the app never imports it
    from sandbox.models import build_model

    model = ModelConfig(kind=C.TRANSFORMER, hidden=32, layers=2, heads=4)
    n = len(feature_names(model.target))
    want = sum(p.numel() for p in build_model(model, n).parameters() if p.requires_grad)
    assert isinstance(torch.zeros(1), torch.Tensor)
    text, _tip = size_text(C.TRANSFORMER, 32, 2, heads=4)
    assert text == f"{want:,} parameters"


# ------------------------------------------------------------------------- evaluation ----
def test_single_split_hides_the_walk_forward_fields_and_gives_none(panel):
    fields = panel.evaluation
    assert not fields.is_walk_forward()
    assert not _shown(panel, fields.fields)
    assert fields.walk_forward() is None


@pytest.mark.parametrize("spec", [
    WalkForwardSpec(),
    WalkForwardSpec(start="2010-01-04", retrain_every=63, warm_start=True, warm_epochs=3),
    WalkForwardSpec(start=0.6, retrain_every=21, window_mode=C.ROLLING, train_length=900,
                    val_length=100),
])
def test_walk_forward_fields_round_trip(panel, spec):
    panel.evaluation.set_spec(spec)
    assert panel.evaluation.is_walk_forward()
    assert _shown(panel, panel.evaluation.fields)
    assert panel.evaluation.walk_forward() == spec


def test_walk_forward_says_warm_folds_run_in_sequence_and_cold_in_parallel(panel):
    panel.evaluation.set_spec(WalkForwardSpec())
    assert _shown(panel, panel.evaluation.note)
    assert "one after another" in WARM_NOTE and "in parallel" in WARM_NOTE
    assert panel.evaluation.note.text() == WARM_NOTE


def test_rolling_length_and_warm_epochs_are_enabled_by_their_choice(panel):
    fields = panel.evaluation
    fields.set_spec(WalkForwardSpec())
    assert not fields.train_spin.isEnabled()
    assert not fields.warm_spin.isEnabled()
    fields.window_combo.setCurrentIndex(fields.window_combo.findData(C.ROLLING))
    fields.warm_check.setChecked(True)
    assert fields.train_spin.isEnabled() and fields.warm_spin.isEnabled()


@pytest.mark.parametrize(("text", "reason"), [("2010-02-30", "not a date"),
                                              ("1.5", "fraction"), ("soon", "not a date")])
def test_a_bad_start_is_refused_with_the_reason(panel, text, reason):
    panel.evaluation.set_spec(WalkForwardSpec())
    panel.evaluation.start_edit.setText(text)
    with pytest.raises(ConfigError, match=reason):
        panel.evaluation.walk_forward()


def test_walk_forward_trains_one_seed(panel):
    panel.set_seeds(5)
    assert panel.seeds() == 5
    panel.evaluation.set_spec(WalkForwardSpec())
    assert panel.seeds() == 1
    assert not panel.seeds_spin.isEnabled()


def test_the_side_panel_puts_walk_forward_in_the_run_and_disables_the_split_dates(qtbot):
    import pandas as pd

    side = SidePanel(["GSPC"])
    qtbot.addWidget(side)
    spec = WalkForwardSpec(start="2015-01-02", retrain_every=50)
    side.set_run(RunConfig(walk_forward=spec), 1)
    config = side.run_config(RunConfig().data)
    assert config.walk_forward == spec
    assert not side.data_panel.val_start_edit.isEnabled()
    index = pd.bdate_range("2010-01-01", periods=1500)
    assert side.check(index) is None
    side.model_panel.evaluation.start_edit.setText("2030-01-01")
    assert "after the last bar" in side.check(index)
    side.model_panel.evaluation.start_edit.setText("2010-02-01")
    error = side.check(index)  # the run's own planner, in the form's words
    assert "needs at least" in error and "Validation" in error and "--" not in error
    side.model_panel.evaluation.mode_combo.setCurrentIndex(0)
    assert side.run_config(RunConfig().data).walk_forward is None
    assert side.data_panel.val_start_edit.isEnabled()


def test_the_preview_shades_and_lines_up_the_folds_the_run_will_train():
    import math

    import pandas as pd

    from sandbox.ui.panels import walk_forward_preview

    index = pd.bdate_range("2010-01-01", periods=1000)
    walk = WalkForwardSpec(start="2013-01-01", retrain_every=50, val_length=60)
    labels, starts = walk_forward_preview(index, 10, walk)
    first = int((index < pd.Timestamp("2013-01-01")).sum())  # the first bar on or after it
    assert starts[0] == index[first]
    assert len(starts) == math.ceil((len(index) - first) / 50)
    assert pd.DatetimeIndex(starts).is_monotonic_increasing
    assert starts[1] == index[first + 50]
    assert (labels[labels.index < index[first]] == C.TRAIN).all()
    assert (labels[labels.index >= index[first]] == C.TEST).all()
    assert walk_forward_preview(index, 10, walk.replace(start="2030-01-01")) == (None, [])
