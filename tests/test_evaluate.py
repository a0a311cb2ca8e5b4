from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox import evaluate


def test_directional_accuracy_counts_zero_predictions_as_misses():
    actual = np.array([0.01, -0.02, 0.03, 0.0, -0.01])
    predicted = np.array([0.5, 0.1, 0.0, 0.2, -0.3])
    # rows with actual != 0: hit, miss, miss (0 predicted), hit -> 2 / 4
    assert evaluate.directional_accuracy(predicted, actual) == 0.5


def test_directional_accuracy_is_none_for_a_predictor_that_is_always_zero():
    assert evaluate.directional_accuracy(np.zeros(3), np.array([0.1, -0.1, 0.2])) is None


def test_forecast_metrics_golden_numbers_and_unknown_rows_left_out():
    actual = np.array([0.01, -0.02, 0.03, np.nan])
    predicted = np.array([0.02, -0.01, 0.0, 5.0])
    m = evaluate.forecast_metrics(predicted, actual)
    assert m[C.RMSE] == pytest.approx(math.sqrt((1e-4 + 1e-4 + 9e-4) / 3))
    assert m[C.MAE] == pytest.approx((0.01 + 0.01 + 0.03) / 3)
    assert m[C.DIRECTIONAL_ACCURACY] == pytest.approx(2 / 3)
    assert m[C.THEIL_U2] == pytest.approx(math.sqrt(11e-4 / 14e-4))


def test_random_walk_has_theil_u2_of_one():
    actual = np.array([0.01, -0.02, 0.005])
    m = evaluate.forecast_metrics(np.zeros(3), actual)
    assert m[C.THEIL_U2] == 1.0 and m[C.DIRECTIONAL_ACCURACY] is None


def test_baseline_forecasts():
    b = evaluate.baseline_forecasts(np.array([0.1, -0.2]), 0.003, 2)
    assert set(b) == set(C.BASELINES)
    np.testing.assert_array_equal(b[C.RANDOM_WALK], [0.0, 0.0])
    np.testing.assert_array_equal(b[C.MOMENTUM], [0.1, -0.2])
    np.testing.assert_array_equal(b[C.DRIFT], [0.003, 0.003])
    assert np.isnan(b[C.BUY_AND_HOLD]).all()


def test_predictor_frame_has_the_contract_columns():
    rows = pd.bdate_range("2020-01-01", periods=3)
    f = evaluate.predictor_frame(rows, np.array([C.TRAIN, C.VAL, C.TEST]), np.ones(3),
                                 np.zeros(3), np.zeros(3))
    assert [f.index.name, *f.columns] == list(C.PREDICTION_COLUMNS)


def test_split_metrics_shape():
    rows = pd.bdate_range("2020-01-01", periods=4)
    split = np.array([C.TEST] * 4)
    actual = np.array([0.01, -0.01, 0.02, np.nan])
    frame = evaluate.predictor_frame(rows, split, np.ones(4), actual, np.array([1, 1, 1, 1.0]))
    base = {n: evaluate.predictor_frame(rows, split, np.ones(4), actual, v)
            for n, v in evaluate.baseline_forecasts(np.zeros(4), 0.0, 4).items()}
    trading = {C.TOTAL_RETURN: 0.1}
    m = evaluate.split_metrics(C.TEST, C.TARGET_RETURN, frame, trading, base,
                               {n: trading for n in C.BASELINES})
    assert m[evaluate.KEY_SPLIT] == C.TEST and m[evaluate.KEY_TARGET] == C.TARGET_RETURN
    assert set(m[C.MODEL]) == set(C.FORECAST_METRICS) | {C.TOTAL_RETURN}
    assert m[C.MODEL][C.DIRECTIONAL_ACCURACY] == pytest.approx(2 / 3)
    assert set(m[evaluate.KEY_BASELINES]) == set(C.BASELINES)
    assert m[evaluate.KEY_BASELINES][C.BUY_AND_HOLD] == trading
    assert m[evaluate.KEY_BASELINES][C.DRIFT][C.DIRECTIONAL_ACCURACY] is None
