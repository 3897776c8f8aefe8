"""What every handler module shares: the routed request (:class:`Call`), the route table entry,
and GitHub's error answers (404, 422 with ``errors``, 403 for a token that may not write)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.github.objects import Json

if TYPE_CHECKING:
    from tests.fakes.github.server import FakeGitHub
    from tests.fakes.github.state import FakeRepo

DOCS_URL = "https://docs.github.com/rest"
NOT_ACCESSIBLE = "Resource not accessible by integration"

Handler = Callable[["FakeGitHub", "Call"], tuple[int, Any]]


@dataclass
class Call:
    """One routed API request, as handlers see it."""

    repo: FakeRepo
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    url: str  # the request's absolute URL without query, for Link headers
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation_id: str  # the operation in github_openapi.json whose request body schema applies
    scope: str | None  # the permission a write needs
    handler: Handler
    paginated: bool = False  # the handler returns every item; the server serves pages with Link


_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"


def route(
    method: str,
    path: str,
    operation_id: str,
    handler: Handler,
    scope: str | None = None,
    *,
    paginated: bool = False,
) -> Route:
    """A route below ``/repos/{owner}/{repo}``; ``path`` is a regex with named groups."""
    return Route(method, re.compile(_REPO + path), operation_id, scope, handler, paginated)


class HttpError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.payload: Json = {
            "message": message,
            **extra,
            "documentation_url": DOCS_URL,
            "status": str(status),
        }


def not_found() -> HttpError:
    return HttpError(404, "Not Found")


def validation_failed(text: str, **error: Any) -> HttpError:
    """GitHub's 422; ``error`` becomes one entry of ``errors`` (resource, field, code, message)."""
    return HttpError(422, text, errors=[error] if error else [])
