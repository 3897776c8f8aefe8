"""The one exception family mlgate reports to users.

Every module raises a subclass of :class:`MlgateError` (``ArtifactNotFound``, ``CannotPostComment``,
...) with a message that says what failed and why, and a ``hint`` that says how to fix it (ideally
the workflow YAML that works). Third-party errors are wrapped with ``raise ... from exc``.
``mlgate.cli`` is the single place that turns them into ``::error::`` lines and :class:`ExitCode`.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What the step's exit status means; every mode and the error path return one of these."""

    PASSED = 0
    GATE_FAILED = 1
    """The run worked and the report is published, but a gate the user set failed."""
    ERROR = 2
    """The input or the environment is wrong (or an external service failed): nothing was judged."""

    @classmethod
    def of(cls, passed: bool) -> ExitCode:
        return cls.PASSED if passed else cls.GATE_FAILED


class MlgateError(Exception):
    """Raised for any failure the user can act on; never carries a secret in its text."""

    title = "mlgate failed"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class InvalidInput(MlgateError):
    """Raised when an action input or CLI flag has a value mlgate cannot use."""

    title = "Invalid input"
