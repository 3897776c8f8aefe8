"""The GitHub client, the repository handle every other module takes, and the errors they raise.

:func:`connect` builds the client from ``GITHUB_API_URL`` (github.com or GitHub Enterprise's
``https://HOST/api/v3``); :class:`GitHubRepo` takes it as an argument, so tests hand in a client
pointed at the fake GitHub on 127.0.0.1 and run the production path unchanged. :func:`calling`
wraps every request: PyGithub and ``requests`` failures leave it as :class:`GitHubError` or
:class:`GitHubPermissionError`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import github
import requests
from github import Auth, Consts, GithubException, GithubRetry
from github.Repository import Repository
from urllib3.exceptions import MaxRetryError, ResponseError

from mlgate.errors import ExitCode, MlgateError

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
    exit_code = ExitCode.SERVICE  # GitHub answered an error or did not answer, after the client's retries


class GitHubUnavailable(GitHubError):
    """Raised when GitHub gave no usable answer within the retry budget (5xx, rate limits, resets,
    timeouts): the message says what mlgate was doing, how many tries over how long, and GitHub's
    last answer. Rerunning the job later may succeed."""

    title = "GitHub unavailable"
    exit_code = ExitCode.SERVICE


class NothingToPropose(GitHubError):
    """Raised by :func:`mlgate.github.pulls.upsert_pull_request` when the base branch already holds the files."""

    title = "Nothing to propose"
    exit_code = ExitCode.ERROR  # the base branch already holds the manifest: a state the user resolves


RETRY_BUDGET_ENV = "MLGATE_RETRY_BUDGET_S"
"""Seconds one GitHub request may take, retries and waits included (default 60)."""
RETRY_BACKOFF_ENV = "MLGATE_RETRY_BACKOFF_S"
"""The backoff factor between retries: waits of 0, 2x, 4x seconds (default 1)."""
HTTP_TIMEOUT_ENV = "MLGATE_HTTP_TIMEOUT_S"
"""Seconds to wait for one answer before the request counts as failed (default 20)."""
_RETRIES = 3  # 4 tries


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        return default
    return value if value >= 0 else default


class _GaveUp(ResponseError):
    """The reason urllib3 stops retrying (a ResponseError, so requests raises RetryError)."""

    def __init__(self, tries: int, seconds: float, last: str) -> None:
        super().__init__(f"gave up after {tries} tries over {seconds:.0f} s: {last}")
        self.tries = tries
        self.seconds = seconds
        self.last = last


class BudgetedRetry(GithubRetry):
    """PyGithub's retry (5xx, 403 secondary rate limit, 429 with ``Retry-After``, resets, timeouts)
    held inside a time budget per request: a wait that would end past the budget (a ``Retry-After:
    600`` included) gives up at once instead of sleeping. Giving up raises a :class:`_GaveUp`
    reason that :func:`calling` turns into :class:`GitHubUnavailable`."""

    def __init__(self, *, budget_s: float, started: float | None = None, **kwargs: Any) -> None:
        self.budget_s = budget_s
        self.started = started
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> BudgetedRetry:
        kw.update(budget_s=self.budget_s, started=self.started)
        return super().new(**kw)

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> BudgetedRetry:
        # the client's template (started None) is shared by every request: never mutate it
        now = time.monotonic()
        started = self.started if self.started is not None else now
        tries = len(self.history) + 1
        try:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError as exc:
            if isinstance(exc.reason, _GaveUp):
                raise
            last = _describe(response, error)
            raise MaxRetryError(_pool, url or "", _GaveUp(tries, now - started, last)) from exc
        assert isinstance(retry, BudgetedRetry)
        retry.started = started
        wait = (retry.get_retry_after(response) if response is not None else None) or retry.get_backoff_time()
        if now - started + wait > self.budget_s:
            last = _describe(response, error)
            if response is not None and response.headers.get("Retry-After"):
                last += f" (asked to wait {wait:.0f} s, beyond the {self.budget_s:.0f} s budget)"
            raise MaxRetryError(_pool, url or "", _GaveUp(tries, now - started, last))
        return retry


def _describe(response: Any, error: Exception | None) -> str:
    if response is not None:
        text = ""
        try:
            text = str(json.loads(response.data or b"{}").get("message") or "")
        except Exception:  # any body: the status alone still says enough
            text = response.reason or ""
        return f"GitHub answered {response.status}" + (f": {text}" if text else "")
    if error is not None:
        return f"no answer ({type(error).__name__})"
    return "no answer"


def connect(token: str, api_url: str, *, throttle: bool = True, budget_s: float | None = None,
            backoff_s: float | None = None, timeout_s: float | None = None) -> github.Github:
    """A lazy PyGithub client for ``api_url`` (``GITHUB_API_URL``).

    ``throttle=False`` drops PyGithub's pauses between requests (0.25 s) and writes (1 s): for
    tests against a local fake. Each request is tried at most 4 times (5xx, secondary rate limits
    and 429 with ``Retry-After``, resets, timeouts), within ``budget_s`` seconds all waits included;
    then :func:`calling` raises GitHubUnavailable. The defaults (60 s budget, backoff factor 1,
    20 s per answer) can be changed with the environment variables MLGATE_RETRY_BUDGET_S,
    MLGATE_RETRY_BACKOFF_S and MLGATE_HTTP_TIMEOUT_S (tests set them small).
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
        timeout=max(1, round(timeout_s if timeout_s is not None else _env_seconds(HTTP_TIMEOUT_ENV, 20))),
        # PyGithub's default is 10 retries with no bound on Retry-After waits
        retry=BudgetedRetry(
            budget_s=budget_s if budget_s is not None else _env_seconds(RETRY_BUDGET_ENV, 60),
            total=_RETRIES,
            backoff_factor=backoff_s if backoff_s is not None else _env_seconds(RETRY_BACKOFF_ENV, 1),
            secondary_rate_wait=60,  # GitHub: wait a minute when a secondary limit gives no Retry-After
            # PATCH too: editing a comment or moving a ref to the same commit twice is harmless
            allowed_methods=frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST", "PATCH"}),
        ),
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
        gave_up = _gave_up(exc)
        if gave_up is not None:
            raise GitHubUnavailable(
                f"{action} failed after {gave_up.tries} {'try' if gave_up.tries == 1 else 'tries'} over "
                f"{gave_up.seconds:.0f} s: {gave_up.last}.",
                hint="GitHub did not answer usefully within the retry budget. Check githubstatus.com "
                "and rerun the job; a rerun completes what this run left undone without duplicates.",
            ) from exc
        raise GitHubUnavailable(
            f"{action} failed: no usable answer from GitHub ({type(exc).__name__}: {exc}).",
            hint="Check GITHUB_API_URL and GitHub's status page; rerun the job when GitHub answers again.",
        ) from exc


def _gave_up(exc: BaseException) -> _GaveUp | None:
    for arg in exc.args:
        if isinstance(arg, MaxRetryError) and isinstance(arg.reason, _GaveUp):
            return arg.reason
    return None


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
