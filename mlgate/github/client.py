"""The GitHub client, the repository handle every other module takes, and the errors they raise.

:func:`connect` builds the client from ``GITHUB_API_URL`` (github.com or GitHub Enterprise's
``https://HOST/api/v3``); :class:`GitHubRepo` takes it as an argument, so tests hand in a client
pointed at the fake GitHub on 127.0.0.1 and run the production path unchanged. :func:`calling`
wraps every request: PyGithub and ``requests`` failures leave it as :class:`GitHubError` or
:class:`GitHubPermissionError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import github
import requests
from github import Auth, Consts, GithubException, GithubRetry
from github.Repository import Repository

from mlgate.errors import MlgateError

PULL_REQUESTS_WRITE = "pull-requests: write"
CONTENTS_WRITE = "contents: write"
_NOT_ACCESSIBLE = "Resource not accessible by integration"
_ACTIONS_MAY_NOT_CREATE_PRS = "not permitted to create or approve pull requests"


class GitHubPermissionError(MlgateError):
    """Raised when GitHub refuses a write because the token lacks a permission.

    Typical causes: a workflow without the ``permissions:`` entry, or a pull request from a fork,
    whose ``GITHUB_TOKEN`` is read-only whatever the workflow asks for.
    """

    title = "GitHub token lacks a permission"

    def __init__(self, message: str, *, permission: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.permission = permission


class GitHubError(MlgateError):
    """Raised for any other GitHub failure (error answer, unreachable server, retries exhausted)."""

    title = "GitHub request failed"


class NothingToPropose(GitHubError):
    """Raised by :func:`mlgate.github.pulls.upsert_pull_request` when the base branch already holds the files."""

    title = "Nothing to propose"


def connect(token: str, api_url: str, *, throttle: bool = True) -> github.Github:
    """A lazy PyGithub client for ``api_url`` (``GITHUB_API_URL``).

    ``throttle=False`` drops PyGithub's pauses between requests (0.25 s) and writes (1 s): for
    tests against a local fake. Retries are few and short, so a dead server fails within seconds.
    """
    if not token:
        raise GitHubError(
            "No GitHub token was given.",
            hint="Pass the workflow's token to the action:\n\n  with:\n    github-token: ${{ github.token }}",
        )
    return github.Github(
        auth=Auth.Token(token),
        base_url=api_url.rstrip("/"),
        lazy=True,
        per_page=100,
        timeout=30,
        # 3 retries, 0.5 s then 1 s apart; PyGithub's default is 10 retries
        retry=GithubRetry(total=3, backoff_factor=0.25),
        seconds_between_requests=Consts.DEFAULT_SECONDS_BETWEEN_REQUESTS if throttle else None,
        seconds_between_writes=Consts.DEFAULT_SECONDS_BETWEEN_WRITES if throttle else None,
    )


class GitHubRepo:
    """One repository: the PyGithub object (:attr:`api`), its ``OWNER/NAME`` and the server's URL.

    Raises GitHubError when ``repository`` is not of the form OWNER/NAME. Makes no request with a
    lazy client (:func:`connect`).
    """

    def __init__(self, gh: github.Github, repository: str, server_url: str) -> None:
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise GitHubError(
                f"Repository {repository!r} is not of the form OWNER/NAME.",
                hint="GITHUB_REPOSITORY holds it in a workflow run, e.g. octo-org/octo-repo.",
            )
        self.full_name = repository
        self.owner = owner
        self.server_url = server_url.rstrip("/")
        with calling(f"Opening repository {repository}", None):
            self.api: Repository = gh.get_repo(repository)  # no request with a lazy client

    def __repr__(self) -> str:
        return f"GitHubRepo({self.full_name!r}, server_url={self.server_url!r})"


@contextmanager
def calling(action: str, permission: str | None) -> Iterator[None]:
    """Turn PyGithub and requests failures inside the block into GitHubError / GitHubPermissionError.

    ``action`` starts the message ("Commenting on pull request #3 of o/r"); ``permission`` is the
    ``permissions:`` entry a refusal names (None for reads, whose refusals are plain GitHubErrors).
    """
    try:
        yield
    except github.RateLimitExceededException as exc:
        raise GitHubError(
            f"{action} failed: the GitHub API rate limit is exhausted ({github_message(exc)}).",
            hint="Rerun the job after the limit resets.",
        ) from exc
    except GithubException as exc:
        says = github_message(exc)
        if permission is not None and (exc.status == 403 or _NOT_ACCESSIBLE in says):
            raise GitHubPermissionError(
                f"{action} failed: the token lacks `{permission}` (GitHub answered {exc.status}: {says}).",
                permission=permission,
                hint=_permission_hint(permission, says),
            ) from exc
        raise GitHubError(f"{action} failed: GitHub answered {exc.status}: {says}") from exc
    except requests.RequestException as exc:
        # RetryError after repeated 5xx, ConnectionError, Timeout: not GithubExceptions
        raise GitHubError(
            f"{action} failed: no usable answer from GitHub ({type(exc).__name__}: {exc}).",
            hint="Check GITHUB_API_URL and GitHub's status page; rerun the job when GitHub answers again.",
        ) from exc


def github_message(exc: GithubException) -> str:
    """GitHub's own words from an error answer: its message plus any field errors."""
    data = exc.data
    if not isinstance(data, dict):
        return str(data or exc.message or "no message")
    parts = [str(data.get("message") or exc.message or "no message")]
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            parts.append(str(error.get("message") or f"{error.get('field')} {error.get('code')}".strip()))
        else:
            parts.append(str(error))
    return "; ".join(part for part in parts if part)


def _permission_hint(permission: str, github_says: str) -> str:
    if _ACTIONS_MAY_NOT_CREATE_PRS in github_says:
        return (
            "The repository does not let workflows open pull requests. Enable Settings -> Actions -> "
            "General -> 'Allow GitHub Actions to create and approve pull requests', or pass a token "
            "that may (github-token: ${{ secrets.YOUR_PAT }})."
        )
    return (
        f"Grant it in the workflow (or the job):\n\n  permissions:\n    {permission}\n\n"
        "On a pull request from a fork GITHUB_TOKEN is read-only whatever the workflow asks; run "
        "mlgate on `pull_request_target` with care, or read the report in the job summary instead."
    )
