"""The one exception family mlgate reports to users, and what the step's exit status means.

Every module raises a subclass of :class:`MlgateError` (``ArtifactNotFound``, ``CannotPostComment``,
...) with a message that says what failed and why, and a ``hint`` that says how to fix it (ideally
the workflow YAML that works). Third-party errors are wrapped with ``raise ... from exc``.
Each subclass declares its :attr:`MlgateError.exit_code`: :attr:`ExitCode.ERROR` when the user can
fix the input or the environment, :attr:`ExitCode.SERVICE` when an external service (GitHub, W&B, a
DVC remote) failed after retries. ``mlgate.cli`` is the single place that turns them into
``::error::`` lines and the exit code; any other exception is a bug (:attr:`ExitCode.BUG`).
"""

from __future__ import annotations

import enum
from typing import ClassVar


class ExitCode(enum.IntEnum):
    """What the step's exit status means; every mode and the error path return one of these."""

    PASSED = 0
    GATE_FAILED = 1
    """The run worked and the report is published, but a gate the user set failed."""
    ERROR = 2
    """The input or the environment is wrong: nothing was judged; the message names what and the fix."""
    SERVICE = 3
    """An external service (GitHub, W&B, a DVC remote) failed after retries; rerunning may succeed."""
    BUG = 4
    """An unexpected exception: a bug in mlgate, reported with the version and where to file it."""

    @classmethod
    def of(cls, passed: bool) -> ExitCode:
        return cls.PASSED if passed else cls.GATE_FAILED


class MlgateError(Exception):
    """Raised for any failure the user can act on; never carries a secret in its text."""

    title = "mlgate failed"
    exit_code: ClassVar[ExitCode] = ExitCode.ERROR
    """The step's exit status when this error ends the run (see :class:`ExitCode`)."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class InvalidInput(MlgateError):
    """Raised when an action input or CLI flag has a value mlgate cannot use."""

    title = "Invalid input"


class CannotWrite(MlgateError):
    """Raised when a file the run must write (the report folder, ``GITHUB_OUTPUT``,
    ``GITHUB_STEP_SUMMARY``) cannot be written: a folder where a file should be, a missing or
    read-only folder, a full disk. The message names the input or variable and the path."""

    title = "Cannot write"
