"""Faults on the wire, shared by the fake GitHub and the fake W&B: deterministic queues of them.

A test queues faults for a route (fake GitHub: method + path regex; fake W&B: a GraphQL operation
name); each matching request takes the next fault from its queue, and once the queue is empty the
route answers normally again. So ``inject("POST", r".*/comments", server_error(502), server_error(502))``
is "a burst of two 502s, then success", the same on every run::

    fake.inject("PATCH", r"/repos/o/r/issues/comments/\\d+", secondary_rate_limit(retry_after=1))
    fake.inject("GET", r".*", *[server_error(503)] * 10)       # more than any client retries
    fake.inject("POST", r".*/git/refs", reset(after=True))       # done, but the answer is lost

Kinds: an HTTP error answer (5xx, 403 secondary rate limit with ``Retry-After``, 429), a reset
(the socket is closed without an answer, before or after the request took effect) and a slow reply
(the answer comes ``delay`` seconds late, after the request took effect, like a server that is
still working when the client gives up).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Literal

SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID."
)


@dataclass(frozen=True)
class Fault:
    kind: Literal["status", "reset", "slow"]
    status: int = 0
    message: str = ""
    retry_after: int | None = None
    after: bool = False
    """reset: the request took effect before the socket closed."""
    delay: float = 0.0

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def server_error(status: int = 502, message: str = "Server Error") -> Fault:
    return Fault("status", status=status, message=message)


def secondary_rate_limit(retry_after: int = 1) -> Fault:
    """GitHub's secondary rate limit: 403, ``Retry-After``, and the message PyGithub recognises."""
    return Fault("status", status=403, message=SECONDARY_RATE_LIMIT_MESSAGE, retry_after=retry_after)


def too_many_requests(retry_after: int = 1) -> Fault:
    return Fault("status", status=429, message="Too Many Requests", retry_after=retry_after)


def reset(*, after: bool = False) -> Fault:
    """Close the connection without answering; ``after=True``: the request took effect first."""
    return Fault("reset", after=after)


def slow(delay: float) -> Fault:
    """Answer ``delay`` seconds late (the request takes effect at once)."""
    return Fault("slow", delay=delay)


class FaultQueues:
    """Per-route queues of faults (thread-safe); ``take`` pops the next fault for a request."""

    def __init__(self) -> None:
        self._queues: list[tuple[str, re.Pattern[str], list[Fault]]] = []
        self._lock = threading.Lock()
        self.injected: list[tuple[str, str, Fault]] = []
        """(method or operation, path, fault) for every fault served, in order."""

    def add(self, method: str, pattern: str, faults: tuple[Fault, ...]) -> None:
        with self._lock:
            self._queues.append((method.upper(), re.compile(pattern), list(faults)))

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for queue_method, pattern, faults in self._queues:
                if faults and queue_method in (method.upper(), "*") and pattern.fullmatch(path):
                    fault = faults.pop(0)
                    self.injected.append((method, path, fault))
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()
