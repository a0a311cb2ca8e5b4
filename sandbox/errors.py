"""Errors whose message is written for the user.

Every failure the user can cause or fix (bad input, no network, a diverging model, an
unwritable path) is a :class:`SandboxError`. Front ends show ``str(error)`` as it is:
one plain sentence that says what and where. Anything else is a bug.
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base class: a problem the user can understand and act on."""

    #: process exit code the CLI uses for this error
    exit_code: int = 2


class DataError(SandboxError):
    """The data is missing, malformed or too short (names the file/ticker, row and problem)."""


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
