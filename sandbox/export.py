"""Writing a run: predictions.csv, metrics.json, model.safetensors, run.json; model bundles.

Every file is written atomically through :mod:`sandbox.atomic`. A bundle is
``model.safetensors`` (weights) plus ``run.json`` (config, feature state: everything else);
loading one never unpickles anything. torch is imported inside functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sandbox import __version__, atomic
from sandbox import constants as C
from sandbox.config import RunConfig
from sandbox.errors import ConfigError, ExportError

if TYPE_CHECKING:
    from sandbox.pipeline import RunResult

#: run.json layout version
RUN_JSON_VERSION = 1
#: keys of run.json
KEY_CONFIG = "config"
KEY_TARGET = "target"
KEY_DATA = "data"
KEY_FEATURE_STATE = "feature_state"
KEY_MODEL_INFO = "model"
KEY_VERSIONS = "versions"
KEY_TIMINGS = "timings"
KEY_HISTORY = "history"
KEY_FORMAT = "format_version"

PathLike = str | os.PathLike[str]


# --- a whole run -----------------------------------------------------------------------------


def write_run(result: RunResult, out_dir: PathLike) -> dict[str, Path]:
    """Write ``predictions.csv``, ``metrics.json``, ``model.safetensors`` and ``run.json``.

    Parameters
    ----------
    result : RunResult
        What :func:`sandbox.pipeline.run` returned.
    out_dir : path
        An existing folder (created if missing).

    Returns
    -------
    dict
        File name -> path written.
    """
    out = _folder(out_dir)
    return {
        C.PREDICTIONS_CSV: write_predictions(result, out / C.PREDICTIONS_CSV),
        C.METRICS_JSON: write_metrics(result, out / C.METRICS_JSON),
        **_write_bundle_files(result, out),
    }


def predictions_frame(result: RunResult) -> pd.DataFrame:
    """The predictions table exactly as written (index ``date``, contract column order)."""
    cols = [c for c in C.PREDICTION_COLUMNS if c != C.INDEX_NAME]
    frame = result.predictions.loc[:, cols].copy()
    frame.index.name = C.INDEX_NAME
    return frame


def write_predictions(result: RunResult, path: PathLike) -> Path:
    """Write the predictions table as ``.csv`` (full precision) or ``.parquet`` by suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return atomic.write_csv(path, predictions_frame(result))
    if suffix == ".parquet":
        return atomic.write_parquet(path, predictions_frame(result))
    raise ConfigError(f"{path}: predictions can be written as .csv or .parquet")


def write_metrics(result: RunResult, path: PathLike) -> Path:
    """Write the test split's metrics (``metrics.json``; NaN becomes null)."""
    return atomic.write_json(path, result.metrics)


# --- bundles ---------------------------------------------------------------------------------


def save_bundle(result: RunResult, out_dir: PathLike) -> Path:
    """Write ``model.safetensors`` and ``run.json`` to ``out_dir``; return the folder."""
    out = _folder(out_dir)
    _write_bundle_files(result, out)
    return out


def _write_bundle_files(result: RunResult, out: Path) -> dict[str, Path]:
    data = weights_bytes(result)
    weights = atomic.write_bytes(out / C.MODEL_WEIGHTS, data)
    run_json = atomic.write_json(out / C.RUN_JSON, run_info(result, weights=data))
    return {C.MODEL_WEIGHTS: weights, C.RUN_JSON: run_json}


def weights_bytes(result: RunResult) -> bytes:
    """The model's weights as a safetensors file's bytes.

    Taken from ``result.weights`` when the model lives in another process (the app's
    training process sends them so): no torch is needed then. Otherwise serialised from
    ``result.model``'s state dict.

    Raises
    ------
    ExportError
        The result has no model (an ensemble, say).
    """
    if result.weights is not None:
        return result.weights
    if result.model is None:
        raise ExportError("this run keeps no model to save")
    from safetensors.torch import save

    return save({k: v.detach().contiguous().cpu() for k, v in result.model.state_dict().items()})


def _parameter_count(weights: bytes) -> int:
    """Numbers in a safetensors file (the models keep no buffers: all are parameters)."""
    from safetensors.numpy import load

    return int(sum(array.size for array in load(weights).values()))


def run_info(result: RunResult, *, weights: bytes | None = None) -> dict[str, Any]:
    """The ``run.json`` object: config, data fingerprint, versions, timings, history.

    ``weights``: the model's safetensors bytes, if already at hand (see
    :func:`weights_bytes`).
    """
    frame = result.data.frame
    if weights is None:
        weights = weights_bytes(result)
    return {
        KEY_FORMAT: RUN_JSON_VERSION,
        KEY_CONFIG: result.config.to_dict(),
        KEY_TARGET: result.feature_state["target"],
        KEY_DATA: {
            "label": result.data.label,
            "source": result.data.source,
            "rows": len(frame),
            "first": str(frame.index[0]),
            "last": str(frame.index[-1]),
            "sha256": fingerprint(frame),
            "from_cache": bool(result.data.from_cache),
            "cached_at": result.data.cached_at,
        },
        KEY_FEATURE_STATE: result.feature_state,
        KEY_MODEL_INFO: {
            "kind": result.config.model.kind,
            "n_features": len(result.feature_state["feature_names"]),
            "parameters": _parameter_count(weights),
        },
        KEY_VERSIONS: versions(),
        KEY_TIMINGS: dict(result.timings),
        KEY_HISTORY: result.history.summary(),
    }


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a price frame in a stable form.

    Hashes the column names, the timezone, the dates as int64 nanoseconds and the OHLCV
    values as little-endian float64, so the same prices give the same digest whatever the
    file they came from or the datetime resolution pandas picked.
    """
    h = hashlib.sha256()
    cols = [c for c in C.PRICE_COLUMNS if c in frame.columns]
    index = pd.DatetimeIndex(frame.index)
    h.update(json.dumps({"columns": cols, "tz": str(index.tz)}).encode())
    h.update(np.ascontiguousarray(index.as_unit("ns").asi8, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(frame[cols].to_numpy(np.float64), dtype="<f8").tobytes())
    return h.hexdigest()


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape the numbers.

    torch's from its installed metadata: saving a bundle must not import torch (the app's
    UI process never does).
    """
    return {
        "python": platform.python_version(),
        "torch": torch_version(),
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "sandbox": __version__,
    }


def torch_version() -> str:
    """torch's version, without importing it (the app's UI process never does): from the
    loaded module if there is one, else from its installed metadata."""
    import sys
    from importlib import metadata

    torch = sys.modules.get("torch")
    if torch is not None:
        return str(torch.__version__)
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:  # a frozen build may ship no metadata
        return "unknown"


@dataclass
class Bundle:
    """A saved model that can predict on new prices."""

    config: RunConfig
    feature_state: dict
    model: Any  # torch module in eval mode

    def predict(self, prices: pd.DataFrame) -> pd.DataFrame:
        """Predicted log returns for every row of ``prices`` with a full window.

        Returns
        -------
        pandas.DataFrame
            Index ``date``; columns ``close``, ``actual_return`` (NaN on the last bar),
            ``predicted_return``.
        """
        import torch

        from sandbox import features, training
        from sandbox.pipeline import predicted_returns

        rows, x = features.transform(prices, self.feature_state)
        windows = features.windows(torch.from_numpy(x), int(self.feature_state["seq_len"]))
        window = int(self.feature_state["window"])
        close = prices[C.CLOSE].to_numpy(np.float64)[window - 1:]
        actual = features.next_log_return(prices)[window - 1:]
        predicted = predicted_returns(training.predict(self.model, windows), self.feature_state,
                                      close)
        return pd.DataFrame({C.CLOSE: close, C.ACTUAL_RETURN: actual,
                             C.PREDICTED_RETURN: predicted},
                            index=pd.DatetimeIndex(rows, name=C.INDEX_NAME))


def load_bundle(path: PathLike) -> Bundle:
    """Load a bundle folder written by :func:`save_bundle` or :func:`write_run`.

    Weights come from safetensors and everything else from JSON: nothing is unpickled.

    Raises
    ------
    ExportError
        A file is missing or unreadable, or the weights do not fit the saved config.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from sandbox import models

    folder = Path(path)
    run_path, weights_path = folder / C.RUN_JSON, folder / C.MODEL_WEIGHTS
    try:
        info = json.loads(run_path.read_text(encoding="utf-8"))
        tensors = load_file(str(weights_path))
        config = RunConfig.from_dict(info[KEY_CONFIG])
        state = info[KEY_FEATURE_STATE]
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise ExportError(f"cannot load the model bundle in {folder}: {exc}") from None
    model = models.build_model(config.model, len(state["feature_names"]))
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ExportError(f"{weights_path}: weights do not match the saved model: {exc}") from None
    model.eval()
    return Bundle(config=config, feature_state=state, model=model)


def _folder(out_dir: PathLike) -> Path:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the output folder {out}: {exc.strerror}") from None
    return out
