"""The one exception family mlgate reports to users.

Every module raises a subclass of :class:`MlgateError` (``ArtifactNotFound``, ``CannotPostComment``,
...) with a message that says what failed and why, and a ``hint`` that says how to fix it (ideally
the workflow YAML that works). Third-party errors are wrapped with ``raise ... from exc``.
``mlgate.cli`` is the single place that turns them into ``::error::`` lines and an exit code.
"""

from __future__ import annotations


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
