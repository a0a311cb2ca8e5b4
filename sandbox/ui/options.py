"""What ``sandbox gui`` was asked for (:class:`GuiOptions`): plain data, no Qt.

Its own module so the command line, the app's entry point, the settings and the window can
all import it without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.config import RunConfig

__all__ = ["GuiOptions"]


@dataclass(frozen=True)
class GuiOptions:
    """What ``sandbox gui`` was asked for.

    ``config`` carries the data source and the model, training and strategy settings from
    the command line (their defaults when no flag was given). Stored settings (QSettings)
    are used instead unless the user gave a data flag (``explicit_source``) or a setting
    flag (``explicit_settings``).
    """

    config: RunConfig = field(default_factory=RunConfig)
    autotrain: bool = False  # start training once the data is shown
    screenshot: str | None = None  # save the window to this PNG and exit
    explicit_source: bool = False  # a --sample/--csv/--ticker flag was given: it wins
    explicit_settings: bool = False  # a model/training/strategy flag was given: they win
    seeds: int | None = None  # --seeds: models per training (None: the stored setting)
