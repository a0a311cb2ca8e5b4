"""What the app remembers between sessions (QSettings): the last data source, the split,
model, training and strategy settings, the window geometry and whether closing the window
during a run asks first.

Each part of the run configuration is stored as the JSON of its dataclass and read back
through the config's own validation, one setting at a time: a stored number above the limits
the config and the side panel share (``constants.MAX_WINDOW``, ``MAX_HIDDEN``, ``MAX_LAYERS``,
``MAX_ENSEMBLE_SEEDS``; torch threads: the usable cores) is clamped to the limit, and any other
value that does not validate (an older version, a hand edit, a damaged file: a string, NaN, a
negative size) falls back to its default, so the app starts and Train never sees it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore

from sandbox import constants as C
from sandbox.config import (
    DataSpec,
    ModelConfig,
    RunConfig,
    SplitSpec,
    StrategyConfig,
    TrainConfig,
    WalkForwardSpec,
)
from sandbox.errors import ConfigError
from sandbox.ui.options import GuiOptions

__all__ = ["APPLICATION", "ORGANIZATION", "Settings", "resolve_config"]

ORGANIZATION = "TradingSignalSandbox"
APPLICATION = "Trading Signal Sandbox"

KEY_DATA = "run/data"
KEY_SPLIT = "run/split"
KEY_MODEL = "run/model"
KEY_TRAIN = "run/train"
KEY_STRATEGY = "run/strategy"
#: the walk-forward fields (kept while a single split is chosen) and whether it is chosen
KEY_WALK_FORWARD = "run/walk_forward"
KEY_EVALUATION = "run/evaluation"
KEY_GEOMETRY = "window/geometry"
KEY_STATE = "window/state"
KEY_SPLITTER = "window/splitter"
KEY_DARK = "view/dark_chart"
KEY_LAST_FOLDER = "files/last_folder"
KEY_SEEDS = "run/seeds"
KEY_SWEEP_GRID = "sweep/grid"
KEY_ASK_DISCARD = "window/ask_before_discarding_run"

_PARTS: dict[str, tuple[str, type]] = {
    "data": (KEY_DATA, DataSpec),
    "split": (KEY_SPLIT, SplitSpec),
    "model": (KEY_MODEL, ModelConfig),
    "train": (KEY_TRAIN, TrainConfig),
    "strategy": (KEY_STRATEGY, StrategyConfig),
}


def _usable_cores() -> int:
    from sandbox.runs import usable_cores

    return usable_cores()


#: whole-number settings a stored value is clamped to (from above); the same limits as the
#: config's validation and the side panel's fields
_UPPER: dict[tuple[type, str], Callable[[], int]] = {
    (ModelConfig, "window"): lambda: C.MAX_WINDOW,
    (ModelConfig, "hidden"): lambda: C.MAX_HIDDEN,
    (ModelConfig, "layers"): lambda: C.MAX_LAYERS,
    (ModelConfig, "heads"): lambda: C.MAX_HEADS,
    # no field in the app; more threads than cores only slows torch down
    (TrainConfig, "threads"): _usable_cores,
}

#: settings whose value decides what the others mean: when the rest does not fit them, the
#: others fall back first (a Transformer's heads that do not divide its width go, not the
#: Transformer)
_CHOICES = frozenset({"kind"})

#: what a stored value that does not fit its dataclass raises (a wrong type can reach a
#: validator as TypeError or AttributeError, e.g. a number as the data source)
_INVALID = (ConfigError, TypeError, ValueError, AttributeError)


class Settings:
    """Typed access to the app's QSettings.

    Parameters
    ----------
    qsettings : QSettings, optional
        The store; by default ``QSettings(ORGANIZATION, APPLICATION)`` (the user's).
    """

    def __init__(self, qsettings: QtCore.QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QtCore.QSettings(ORGANIZATION,
                                                                           APPLICATION)

    # -- run configuration --------------------------------------------------------------------
    def load_config(self, base: RunConfig, *, source: bool = True,
                    settings: bool = True) -> RunConfig:
        """``base`` with the stored parts put in.

        Parameters
        ----------
        base : RunConfig
            Defaults (or what the command line asked for).
        source : bool
            Take the stored data source.
        settings : bool
            Take the stored split, model, training and strategy settings.
        """
        wanted = {"data"} if source else set()
        if settings:
            wanted |= {"split", "model", "train", "strategy"}
        changes: dict[str, Any] = {}
        for name in wanted:
            key, _cls = _PARTS[name]
            value = self._json(key)
            if value is None:
                continue
            changes[name] = _restore(getattr(base, name), value)
        if settings and self.q.value(KEY_EVALUATION) is not None:
            walk = self.walk_forward_fields(base.walk_forward)
            chosen = str(self.q.value(KEY_EVALUATION)) == C.WALK_FORWARD
            changes["walk_forward"] = walk if chosen else None
        return base.replace(**changes) if changes else base

    def save_config(self, config: RunConfig,
                    walk_forward_fields: WalkForwardSpec | None = None) -> None:
        """Store every part of ``config``; the walk-forward fields are ``config``'s when it is
        a walk-forward run, else ``walk_forward_fields`` (the form's, kept for next time)."""
        for name, (key, _cls) in _PARTS.items():
            self.q.setValue(key, json.dumps(getattr(config, name).to_dict()))
        fields = config.walk_forward or walk_forward_fields
        if fields is not None:
            self.q.setValue(KEY_WALK_FORWARD, json.dumps(fields.to_dict()))
        self.q.setValue(KEY_EVALUATION,
                        C.WALK_FORWARD if config.walk_forward is not None else "split")

    def walk_forward_fields(self, base: WalkForwardSpec | None = None) -> WalkForwardSpec:
        """The stored walk-forward fields over ``base`` (the defaults when None); damaged
        values fall back as every other setting's do."""
        default = base or WalkForwardSpec()
        value = self._json(KEY_WALK_FORWARD)
        return default if value is None else _restore(default, value)

    def save_data(self, spec: DataSpec) -> None:
        """Store the data source (after it loaded)."""
        self.q.setValue(KEY_DATA, json.dumps(spec.to_dict()))

    # -- window ---------------------------------------------------------------------------------
    def geometry(self) -> QtCore.QByteArray | None:
        return self._bytes(KEY_GEOMETRY)

    def window_state(self) -> QtCore.QByteArray | None:
        return self._bytes(KEY_STATE)

    def splitter_state(self) -> QtCore.QByteArray | None:
        return self._bytes(KEY_SPLITTER)

    def save_window(self, geometry: QtCore.QByteArray, state: QtCore.QByteArray,
                    splitter: QtCore.QByteArray) -> None:
        self.q.setValue(KEY_GEOMETRY, geometry)
        self.q.setValue(KEY_STATE, state)
        self.q.setValue(KEY_SPLITTER, splitter)

    def dark_chart(self) -> bool | None:
        value = self.q.value(KEY_DARK)
        if value is None:
            return None
        return str(value).lower() in ("1", "true")

    def set_dark_chart(self, dark: bool) -> None:
        self.q.setValue(KEY_DARK, bool(dark))

    def last_folder(self) -> str:
        value = self.q.value(KEY_LAST_FOLDER)
        return str(value) if value else ""

    def set_last_folder(self, folder: str) -> None:
        self.q.setValue(KEY_LAST_FOLDER, folder)

    def seeds(self) -> int:
        """Seeds per training (1: a single model); 1 when unset, unreadable or below 1, at
        most ``MAX_ENSEMBLE_SEEDS``."""
        try:
            value = int(self.q.value(KEY_SEEDS, 1))
        except (TypeError, ValueError, OverflowError):
            return 1
        return min(value, C.MAX_ENSEMBLE_SEEDS) if value >= 1 else 1

    def set_seeds(self, seeds: int) -> None:
        self.q.setValue(KEY_SEEDS, int(seeds))

    def ask_before_discarding_run(self) -> bool:
        """Closing the window while training or a sweep runs asks first (True unless the
        user ticked "Don't ask again")."""
        value = self.q.value(KEY_ASK_DISCARD)
        return value is None or str(value).lower() not in ("0", "false")

    def set_ask_before_discarding_run(self, ask: bool) -> None:
        self.q.setValue(KEY_ASK_DISCARD, bool(ask))

    def sweep_form(self) -> dict[str, str]:
        """The Sweep tab's field texts (``{grid name: text}``); empty when unset."""
        value = self._json(KEY_SWEEP_GRID)
        if not isinstance(value, dict):
            return {}
        return {str(k): v for k, v in value.items() if isinstance(v, str)}

    def set_sweep_form(self, values: dict[str, str]) -> None:
        self.q.setValue(KEY_SWEEP_GRID, json.dumps(dict(values)))

    def sync(self) -> None:
        self.q.sync()

    # -- helpers ----------------------------------------------------------------------------------
    def _json(self, key: str) -> dict | None:
        raw = self.q.value(key)
        if not raw:
            return None
        try:
            value = json.loads(str(raw))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _bytes(self, key: str) -> QtCore.QByteArray | None:
        value = self.q.value(key)
        return value if isinstance(value, QtCore.QByteArray) and not value.isEmpty() else None


def _restore(default: Any, stored: dict[str, Any]) -> Any:
    """``default`` (a part of the run configuration) with the ``stored`` settings that
    validate put in.

    Known whole numbers above their limit (``_UPPER``) are clamped to it and unknown names
    are dropped. When the rest does not validate, the damaged settings fall back to
    ``default``'s: the one whose default makes the rest valid, else, one at a time, each that
    does not validate on its own; ``default`` itself when the settings are valid one by one but
    not together (e.g. split fractions that add up to 1 or more).
    """
    cls = type(default)
    names = {f.name for f in dataclasses.fields(cls)}
    values = {name: _clamped(cls, name, value) for name, value in stored.items()
              if name in names}
    while values:
        part = _valid(default, values)
        if part is not None:
            return part
        # a setting that picks what the rest means (the network kind) is dropped last
        for name in sorted(values, key=lambda n: n in _CHOICES):
            part = _valid(default, {k: v for k, v in values.items() if k != name})
            if part is not None:
                return part
        damaged = next((name for name, value in values.items()
                        if _valid(default, {name: value}) is None), None)
        if damaged is None:
            break
        del values[damaged]
    return default


def _clamped(cls: type, name: str, value: Any) -> Any:
    upper = _UPPER.get((cls, name))
    if upper is None or not isinstance(value, int) or isinstance(value, bool):
        return value
    return min(value, upper())


def _valid(default: Any, values: dict[str, Any]) -> Any:
    """``default`` with ``values`` put in, or None when that does not validate."""
    try:
        return default.replace(**values)
    except _INVALID:
        return None


def resolve_config(options: GuiOptions, settings: Settings | None) -> RunConfig:
    """The configuration the window starts with.

    The command line's ``options.config``, with the stored source and settings put in
    unless the command line gave them explicitly (``explicit_source`` /
    ``explicit_settings``); ``settings=None`` (a ``--screenshot`` run) uses the command line
    alone.
    """
    config = options.config
    if settings is None:
        return config
    return settings.load_config(config, source=not options.explicit_source,
                                settings=not options.explicit_settings)
