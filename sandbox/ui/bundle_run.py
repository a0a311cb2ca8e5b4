"""File > Load model...: predict with a saved bundle on the loaded prices, without training.

The result is a :class:`~sandbox.pipeline.RunResult` like a trained run's, so the chart, the
metrics table, re-trading and the exports treat both alike. Rows are labelled with the
bundle's own split rule; on the data the model was trained on this reproduces its splits, on
other data every row is new to the model whatever its label. Runs on a worker thread.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from sandbox import constants as C
from sandbox.config import DataSpec, StrategyConfig

if TYPE_CHECKING:
    from sandbox.data import LoadedPrices
    from sandbox.pipeline import RunResult

__all__ = ["predict_with_bundle"]


def predict_with_bundle(folder: str | os.PathLike[str], prices: LoadedPrices, spec: DataSpec,
                        strategy: StrategyConfig) -> RunResult:
    """Load the bundle in ``folder``, predict every row of ``prices`` and paper-trade it.

    Parameters
    ----------
    folder : path
        A folder written by Save model... or ``sandbox train --out``.
    prices : LoadedPrices
        The prices on the chart.
    spec : DataSpec
        Where ``prices`` came from (recorded in the result's config).
    strategy : StrategyConfig
        Rule, threshold, fill and costs to trade the predictions with.

    Returns
    -------
    RunResult
        With an empty training history.

    Raises
    ------
    ExportError
        The bundle is missing, unreadable or does not fit its config.
    DataError
        The prices are too short for the model's window.
    """
    from sandbox import evaluate, export, features
    from sandbox.pipeline import RunResult
    from sandbox.training import TrainHistory

    bundle = export.load_bundle(folder)
    frame = prices.frame
    predicted = bundle.predict(frame)  # rows with a full window: close, actual, predicted
    rows = predicted.index
    labels = features.split_labels(rows, bundle.config.split)
    window = int(bundle.feature_state["window"])
    close_all = frame[C.CLOSE].to_numpy(np.float64)
    close = predicted[C.CLOSE].to_numpy(np.float64)
    actual = predicted[C.ACTUAL_RETURN].to_numpy(np.float64)
    momentum = np.log(close / close_all[window - 2:len(close_all) - 1])

    model_frame = evaluate.predictor_frame(rows, labels, close, actual,
                                           predicted[C.PREDICTED_RETURN].to_numpy(np.float64))
    baselines = evaluate.baseline_frames(rows, labels, close, actual, momentum,
                                         float(bundle.feature_state["drift"]))
    model_frame, model_trading = evaluate.paper_trade(frame, model_frame, strategy)
    frames, trading = evaluate.trade_baselines(frame, baselines, strategy)
    by_split = evaluate.all_split_metrics(bundle.feature_state["target"], model_frame,
                                          model_trading, frames, trading)
    return RunResult(
        config=bundle.config.replace(data=spec, strategy=strategy),
        data=prices,
        predictions=model_frame,
        baselines=frames,
        metrics=by_split[C.TEST],
        metrics_by_split=by_split,
        history=TrainHistory(),
        model=bundle.model,
        feature_state=bundle.feature_state,
        timings={},
    )
