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
KEY_SPLITS = "splits"
KEY_PERIODS_PER_YEAR = C.PERIODS_PER_YEAR  # bars per year the run's Sharpe ratios used
KEY_FILES = "files"  # sha256 of each other file of the folder, by name
KEY_WALK_FORWARD = C.WALK_FORWARD  # a walk-forward run: its spec, start resolved to a date
KEY_FOLDS = "folds"  # a walk-forward run: every fold's record
KEY_FOLD = C.FOLD  # a fold's bundle (folds/NNN/run.json): its record
#: keys of run.json's "splits": the trained run's split boundaries, as ISO dates
SPLIT_TRAIN_END = "train_end"  # the last training row
SPLIT_VAL_START = "val_start"  # the first validation row
SPLIT_TEST_START = "test_start"  # the first test row
SPLIT_LAST_BAR = "last_bar"  # the last bar of the data the model was trained on
SPLIT_KEYS: tuple[str, ...] = (SPLIT_TRAIN_END, SPLIT_VAL_START, SPLIT_TEST_START, SPLIT_LAST_BAR)

PathLike = str | os.PathLike[str]


# --- a whole run -----------------------------------------------------------------------------


def write_run(result: RunResult, out_dir: PathLike | atomic.FolderWriter) -> dict[str, Path]:
    """Write ``predictions.csv``, ``metrics.json``, ``model.safetensors`` and ``run.json``.

    The folder changes as one (:class:`sandbox.atomic.FolderWriter`): every file is written
    into a temporary sibling folder that then replaces ``out_dir``, so the folder never holds
    files of two runs. ``run.json`` records the sha256 of each other file.

    Parameters
    ----------
    result : RunResult
        What :func:`sandbox.pipeline.run` returned.
    out_dir : path or FolderWriter
        The folder (created if missing; if it exists it may hold only earlier outputs), or a
        writer the caller already holds (the CLI takes the folder before training).

    Returns
    -------
    dict
        File name -> path written.

    Raises
    ------
    ExportError
        The folder cannot be written, holds other files, or another run is writing it.
    """
    def fill(tmp: Path) -> None:
        write_predictions(result, tmp / C.PREDICTIONS_CSV)
        write_metrics(result, tmp / C.METRICS_JSON)
        _write_bundle_files(result, tmp, others=(C.PREDICTIONS_CSV, C.METRICS_JSON))
        if result.walk_forward is not None:
            write_fold_bundles(result, tmp / C.FOLDS_DIR)

    names = (C.PREDICTIONS_CSV, C.METRICS_JSON, C.MODEL_WEIGHTS, C.RUN_JSON)
    written = _write_folder(out_dir, fill, names)
    if result.walk_forward is not None:
        written[C.FOLDS_DIR] = Path(written[C.RUN_JSON]).parent / C.FOLDS_DIR
    return written


def fold_dir_name(fold: int) -> str:
    """A walk-forward fold's bundle folder under ``folds/``: ``000``, ``001``, ..."""
    return f"{fold:03d}"


def write_fold_bundles(result: RunResult, folder: Path) -> None:
    """One bundle per walk-forward fold, ``folder/000/`` ..., each ``model.safetensors`` and
    ``run.json`` (loadable by :func:`load_bundle`): the fold's own scalers and weights, its
    dates as "splits" (``test_start`` = its first predicted bar) and its record as "fold".
    Part of the run's one atomic folder write (:func:`write_run`)."""
    from sandbox import walkforward

    frame = result.data.frame
    for record, state, weights in zip(result.folds, result.fold_states, result.fold_weights,
                                      strict=True):
        out = folder / fold_dir_name(int(record[C.FOLD]))
        out.mkdir(parents=True)
        atomic.write_bytes(out / C.MODEL_WEIGHTS, weights)
        # one model trained on the fold's rows: its own seed, no walk of its own
        config = result.config.replace(train=result.config.train.replace(seed=record["seed"]),
                                       walk_forward=None)
        info = {
            KEY_FORMAT: RUN_JSON_VERSION,
            KEY_CONFIG: config.to_dict(),
            KEY_TARGET: state["target"],
            KEY_DATA: _data_info(result, frame),
            KEY_SPLITS: walkforward.fold_splits(record),
            KEY_PERIODS_PER_YEAR: result.metrics.get(KEY_PERIODS_PER_YEAR),
            KEY_FEATURE_STATE: state,
            KEY_MODEL_INFO: _model_info(result, state, weights),
            KEY_VERSIONS: versions(),
            KEY_FOLD: record,
            KEY_FILES: {C.MODEL_WEIGHTS: hashlib.sha256(weights).hexdigest()},
        }
        atomic.write_json(out / C.RUN_JSON, info)


def _write_folder(out_dir: PathLike | atomic.FolderWriter, fill: Any,
                  names: tuple[str, ...]) -> dict[str, Path]:
    folder = atomic.write_into(out_dir, fill)
    return {name: folder / name for name in names}


def write_predicted(result: RunResult, out_dir: PathLike) -> list[Path]:
    """Write ``predictions.csv`` and ``metrics.json`` of a saved model's predictions
    (``sandbox predict``) as one folder, like :func:`write_run`."""
    def fill(tmp: Path) -> None:
        write_predictions(result, tmp / C.PREDICTIONS_CSV)
        write_metrics(result, tmp / C.METRICS_JSON)

    return list(_write_folder(out_dir, fill, (C.PREDICTIONS_CSV, C.METRICS_JSON)).values())


def predictions_frame(result: RunResult) -> pd.DataFrame:
    """The predictions table exactly as written (index ``date``, contract column order)."""
    cols = [c for c in C.PREDICTION_COLUMNS if c != C.INDEX_NAME]
    if C.FOLD in result.predictions:  # walk-forward: the fold that predicted the row, last
        cols.append(C.FOLD)
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
    """Write ``model.safetensors`` and ``run.json`` to ``out_dir`` as one (see
    :func:`write_run`); return the folder."""
    atomic.write_folder(out_dir, lambda tmp: _write_bundle_files(result, tmp))
    return Path(out_dir)


def _write_bundle_files(result: RunResult, out: Path, *, others: tuple[str, ...] = ()) -> None:
    """Write the weights, then run.json with the sha256 of the weights and of ``others``
    (files already in ``out``), so a loader can tell a file that is not this run's."""
    data = weights_bytes(result)
    atomic.write_bytes(out / C.MODEL_WEIGHTS, data)
    info = run_info(result, weights=data)
    info[KEY_FILES] = {C.MODEL_WEIGHTS: hashlib.sha256(data).hexdigest(),
                       **{name: atomic.file_sha256(out / name) for name in others}}
    atomic.write_json(out / C.RUN_JSON, info)


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
    info = {
        KEY_FORMAT: RUN_JSON_VERSION,
        KEY_CONFIG: result.config.to_dict(),
        KEY_TARGET: result.feature_state["target"],
        KEY_DATA: _data_info(result, frame),
        KEY_SPLITS: split_dates(result),
        KEY_PERIODS_PER_YEAR: result.metrics.get(KEY_PERIODS_PER_YEAR),
        KEY_FEATURE_STATE: result.feature_state,
        KEY_MODEL_INFO: _model_info(result, result.feature_state, weights),
        KEY_VERSIONS: versions(),
        KEY_TIMINGS: dict(result.timings),
        KEY_HISTORY: result.history.summary(),
    }
    if result.walk_forward is not None:  # the newest fold's model; every fold's record
        info[KEY_WALK_FORWARD] = result.walk_forward
        info[KEY_FOLDS] = result.folds
    return info


def _data_info(result: RunResult, frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "label": result.data.label,
        "source": result.data.source,
        "rows": len(frame),
        "first": str(frame.index[0]),
        "last": str(frame.index[-1]),
        "sha256": fingerprint(frame),
        "from_cache": bool(result.data.from_cache),
        "cached_at": result.data.cached_at,
    }


def _model_info(result: RunResult, state: dict[str, Any], weights: bytes) -> dict[str, Any]:
    return {
        "kind": result.config.model.kind,
        "n_features": len(state["feature_names"]),
        "parameters": _parameter_count(weights),
    }


def split_dates(result: RunResult) -> dict[str, str | None]:
    """The split boundaries of the run that trained ``result``'s model (run.json "splits").

    For a saved model applied to other data, the dates it was trained with are kept, so a
    bundle saved again still says which dates the model has seen.
    """
    if result.trained_split is not None:
        return {key: result.trained_split.get(key) for key in SPLIT_KEYS}
    if result.walk_forward is not None and result.folds:  # the newest fold's model
        from sandbox.walkforward import fold_splits

        return fold_splits(result.folds[-1])
    labels = result.predictions[C.SPLIT].to_numpy()
    dates = result.predictions.index

    def at(mask: np.ndarray, pick: int) -> str | None:
        rows = np.flatnonzero(mask)
        return _iso(dates[rows[pick]]) if rows.size else None

    return {
        SPLIT_TRAIN_END: at(labels == C.TRAIN, -1),
        SPLIT_VAL_START: at(labels == C.VAL, 0),
        SPLIT_TEST_START: at(labels == C.TEST, 0),
        SPLIT_LAST_BAR: _iso(result.data.frame.index[-1]),
    }


def _iso(ts: Any) -> str:
    return pd.Timestamp(ts).isoformat()


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
    #: the trained run's split dates (:data:`SPLIT_KEYS`); None in bundles that predate them
    splits: dict[str, str | None] | None = None
    #: run.json's "data": what the model was trained on (label, source, interval, sha256, ...)
    data: dict[str, Any] | None = None

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
        actual = features.realised_return(prices, self.feature_state["target"],
                                          self.feature_state.get("target_fill"))[window - 1:]
        predicted = predicted_returns(training.predict(self.model, windows), self.feature_state,
                                      close)
        return pd.DataFrame({C.CLOSE: close, C.ACTUAL_RETURN: actual,
                             C.PREDICTED_RETURN: predicted},
                            index=pd.DatetimeIndex(rows, name=C.INDEX_NAME))


def load_bundle(path: PathLike) -> Bundle:
    """Load a bundle folder written by :func:`save_bundle` or :func:`write_run`.

    Weights come from safetensors and everything else from JSON: nothing is unpickled. The
    tensor names and shapes in the safetensors header are checked against the model the
    config describes, built on torch's ``meta`` device (no memory), before any real model
    is built, so a config that asks for a huge network fails fast instead of allocating it.

    Raises
    ------
    ExportError
        A file is missing or unreadable, the config does not validate, or the weights do not
        fit the saved config; the message is one line that names the file.
    """
    from safetensors import SafetensorError, safe_open

    folder = Path(path)
    run_path, weights_path = folder / C.RUN_JSON, folder / C.MODEL_WEIGHTS
    for needed in (run_path, weights_path):
        if not needed.exists():
            raise ExportError(f"{folder}: not a model bundle ({needed.name} is missing)")
    _check_regular(run_path, MAX_RUN_JSON_BYTES)
    _check_regular(weights_path, None)
    try:
        info = json.loads(run_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{run_path}: not readable as JSON ({_one_line(exc)})") from None
    try:
        if not isinstance(info, dict):
            raise TypeError("expected a JSON object")
        config = RunConfig.from_dict(info[KEY_CONFIG])
        state = info[KEY_FEATURE_STATE]
        splits = info.get(KEY_SPLITS)
        if splits is None and isinstance(info.get(KEY_DATA), dict):
            splits = {SPLIT_LAST_BAR: info[KEY_DATA].get("last")}  # an older bundle
        if splits is not None and not isinstance(splits, dict):
            raise TypeError(f"{KEY_SPLITS!r} is not an object")
    except (KeyError, TypeError, ConfigError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else _one_line(exc)
        raise ExportError(f"{run_path}: not a valid run description ({what})") from None
    _check_files(folder, info.get(KEY_FILES))
    problem = _state_problem(state, config)
    if problem:
        raise ExportError(f"{run_path}: feature_state is not usable ({problem})")
    n_features = len(state["feature_names"])
    try:
        with safe_open(str(weights_path), framework="numpy") as f:
            shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    except (OSError, SafetensorError, ValueError) as exc:
        raise ExportError(f"{weights_path}: not a safetensors file ({_one_line(exc)})") from None
    try:
        expected = _expected_shapes(config, n_features)
    except (RuntimeError, ValueError, OverflowError) as exc:  # sizes beyond any real model
        raise ExportError(f"{weights_path}: weights do not match the model in {C.RUN_JSON} "
                          f"(it describes a network that cannot be built: {_one_line(exc)})"
                          ) from None
    if shapes != expected:
        raise ExportError(f"{weights_path}: weights do not match the model in {C.RUN_JSON} "
                          f"({_shape_difference(expected, shapes)})")
    from safetensors.torch import load_file

    from sandbox import models

    try:
        tensors = load_file(str(weights_path))
    except (OSError, SafetensorError, ValueError) as exc:
        raise ExportError(f"{weights_path}: not readable ({_one_line(exc)})") from None
    bad = next((name for name, t in tensors.items() if not bool(t.isfinite().all())), None)
    if bad is not None:
        raise ExportError(f"{weights_path}: {bad} holds values that are not finite numbers "
                          "(NaN or infinite): a model with them predicts nothing")
    model = models.build_model(config.model, n_features)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ExportError(f"{weights_path}: weights do not match the saved model "
                          f"({_one_line(exc)})") from None
    model.eval()
    data = info.get(KEY_DATA)
    if isinstance(data, dict):
        data = {**data, "interval": config.data.interval,
                KEY_PERIODS_PER_YEAR: info.get(KEY_PERIODS_PER_YEAR)}
    return Bundle(config=config, feature_state=state, model=model,
                  splits={key: splits.get(key) for key in SPLIT_KEYS} if splits else None,
                  data=data if isinstance(data, dict) else None)


#: the largest run.json read (a real one is a few kB: the config, the scalers, the history)
MAX_RUN_JSON_BYTES = 4 * 1024 * 1024


def _check_files(folder: Path, files: Any) -> None:
    """Each file that run.json lists (by sha256) and the folder holds must be that file: a
    folder that mixes two runs' files names the first that is not this run's."""
    if files is None:  # written before run.json listed its files
        return
    run_path = folder / C.RUN_JSON
    if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ExportError(f"{run_path}: not a valid run description ({KEY_FILES!r} is not an "
                          "object of file names and sha256 digests)")
    for name, digest in files.items():
        if name not in C.OUTPUT_NAMES or name == C.RUN_JSON:
            raise ExportError(f"{run_path}: not a valid run description ({KEY_FILES!r} names "
                              f"{name!r}, which is not a file of a run)")
        path = folder / name
        if not path.exists() and name != C.MODEL_WEIGHTS:
            continue  # a file the user removed; the bundle needs only the weights
        _check_regular(path, None)
        if atomic.file_sha256(path) != digest.lower():
            raise ExportError(f"{path}: not the file this run wrote (its sha256 differs from "
                              f"the one in {C.RUN_JSON}); the folder mixes files of two runs "
                              "or the file was changed")


def _check_regular(path: Path, limit: int | None) -> None:
    """Refuse anything but a regular file (a FIFO would hang a read, a device never ends),
    and a file larger than ``limit`` bytes."""
    import stat

    try:
        info = path.stat()  # follows a symlink: a link to /dev/zero is a device
    except OSError as exc:
        raise ExportError(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ExportError(f"{path}: not a regular file")
    if limit is not None and info.st_size > limit:
        raise ExportError(f"{path}: {info.st_size:,} bytes is not a run description "
                          f"(at most {limit:,})")


def _finite_list(value: Any, length: int, *, positive: bool = False) -> bool:
    if not isinstance(value, list) or len(value) != length:
        return False
    for x in value:
        if isinstance(x, bool) or not isinstance(x, int | float) or not np.isfinite(x):
            return False
        if positive and not x > 0:
            return False
    return True


def _state_problem(state: Any, config: RunConfig) -> str | None:
    """What is wrong with a bundle's feature state, naming the field; None when it is usable."""
    from sandbox import features

    if not isinstance(state, dict):
        return "not an object"
    target = state.get("target")
    if target != config.model.target:
        return f"target {target!r} is not the config's {config.model.target!r}"
    window = state.get("window")
    if window != config.model.window:
        return f"window {window!r} is not the config's {config.model.window}"
    first = features.first_feature_row(target)
    if state.get("first_feature_row") != first:
        return f"first_feature_row {state.get('first_feature_row')!r} is not {first}"
    seq_len = state.get("seq_len")
    if seq_len != window - first:
        return f"seq_len {seq_len!r} is not window - first_feature_row = {window - first}"
    names = state.get("feature_names")
    if names != list(features.feature_names(target)):
        return f"feature_names {names!r} are not those of the {target!r} target"
    for key, n in (("scaler", len(names)), ("target_scaler", 1)):
        scaler = state.get(key)
        if not isinstance(scaler, dict):
            return f"{key} is not an object"
        if not _finite_list(scaler.get("mean"), n):
            return f"{key}.mean is not {n} finite number(s)"
        if not _finite_list(scaler.get("std"), n, positive=True):
            return f"{key}.std is not {n} finite number(s) > 0"
    drift = state.get("drift")
    if isinstance(drift, bool) or not isinstance(drift, int | float) or not np.isfinite(drift):
        return f"drift {drift!r} is not a finite number"
    return None


def _expected_shapes(config: RunConfig, n_features: int) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of the model ``config`` describes, without allocating it."""
    import torch

    from sandbox import models

    with torch.device("meta"):
        model = models.build_model(config.model, n_features)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def _shape_difference(expected: dict[str, tuple[int, ...]],
                      found: dict[str, tuple[int, ...]]) -> str:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing:
        return f"{len(missing)} tensor(s) missing, e.g. {missing[0]}"
    if extra:
        return f"{len(extra)} unexpected tensor(s), e.g. {extra[0]}"
    name = next(n for n in expected if expected[n] != found[n])
    return (f"{name} has shape {list(found[name])}, the config needs "
            f"{list(expected[name])}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
