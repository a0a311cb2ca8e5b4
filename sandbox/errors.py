"""Errors whose message is written for the user.

Every failure the user can cause or fix (bad input, no network, a diverging model, an
unwritable path) is a :class:`SandboxError`. Front ends show ``str(error)`` as it is:
one plain sentence that says what and where. Anything else is a bug.
"""

from __future__ import annotations

from sandbox import constants as C


class SandboxError(Exception):
    """Base class: a problem the user can understand and act on."""

    #: process exit code the CLI uses for this error
    exit_code: int = 2


class DataError(SandboxError):
    """The data is missing, malformed or too short (names the file/ticker, row and problem)."""


#: each split in words
SPLIT_WORDS = {C.TRAIN: "training", C.VAL: "validation", C.TEST: "test"}


class SplitTooSmall(DataError):
    """A split has too few rows to learn from or to measure anything on.

    Validation and test count *usable returns*: rows of the split whose actual return and
    trading return only use prices inside the split (with the next-open fill the last two
    rows of a split have none). Training counts the rows it can fit on. The fields are
    attributes so each front end words its own fix: ``str()`` names the command line's
    flags; the app's wording (:func:`sandbox.ui.wording.failure_text`) names its controls.

    Parameters
    ----------
    name : str
        The data's label (file or ticker).
    split : {"train", "val", "test"}
        The split that is too small.
    count : int
        Its usable returns (validation, test) or rows to fit on (training).
    minimum : int
        The fewest it needs (``SplitSpec.min_returns`` for validation and test).
    window : int
        Bars per input window.
    n_bars : int
        Bars in the data.
    rows : int
        The split's rows (each a bar with a full window).
    """

    def __init__(self, name: str, split: str, count: int, minimum: int, window: int,
                 n_bars: int, rows: int) -> None:
        self.name, self.split, self.count, self.minimum = name, split, count, minimum
        self.window, self.n_bars, self.rows = window, n_bars, rows
        super().__init__(f"{self.problem}: move --val-start/--test-start, use a shorter "
                         "--window or more data (or lower --min-returns)")

    @property
    def problem(self) -> str:
        """What is too small, without the fix: "GSPC: with a 145-bar window on 156 bars the
        test split has 0 usable returns (2 rows; need 20)"."""
        one = self.count == 1
        unit = (("row" if one else "rows") + " to fit on" if self.split == C.TRAIN
                else "usable " + ("return" if one else "returns"))
        return (f"{self.name}: with a {self.window}-bar window on {self.n_bars:,} bars the "
                f"{SPLIT_WORDS.get(self.split, self.split)} split has {self.count:,} {unit} "
                f"({self.rows:,} {'row' if self.rows == 1 else 'rows'}; need {self.minimum:,})")

    def __reduce__(self) -> tuple:
        # rebuilt from its fields when pickled (the app's torch process sends it back)
        return (type(self), (self.name, self.split, self.count, self.minimum, self.window,
                             self.n_bars, self.rows), self.__dict__)


class NetworkError(SandboxError):
    """The data provider could not be reached or refused the request."""


class ConfigError(SandboxError):
    """A setting or hyperparameter is out of range or inconsistent."""


class TrainingError(SandboxError):
    """Training failed in a way the user can fix (e.g. NaN loss: lower the learning rate)."""


class ExportError(SandboxError):
    """An output could not be written (unwritable path, full disk)."""


class Cancelled(SandboxError):
    """The user cancelled the run (Stop button, Ctrl-C). Nothing partial was written."""

    exit_code = 130
