"""Everything mlgate does on GitHub, through PyGithub: sticky PR comments, hosted figures, PRs.

:func:`connect` builds the client from ``GITHUB_API_URL`` (github.com or GitHub Enterprise's
``https://HOST/api/v3``); :class:`Publisher` takes it as an argument, so tests hand in a client
pointed at the fake GitHub on 127.0.0.1 and run the production path unchanged.

Every GitHub failure leaves this module as :class:`GitHubPermissionError` (the token may not do
it; the message names the ``permissions:`` entry that fixes it) or :class:`GitHubError` (anything
else, unreachable server and exhausted retries included). Neither ever contains the token.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

import github
import requests
from github import Auth, Consts, GithubException, GithubRetry, InputGitTreeElement
from github.GitCommit import GitCommit
from github.GitRef import GitRef
from github.IssueComment import IssueComment

from mlgate.errors import MlgateError

COMMENT_MAX_CHARS = 65536  # GitHub rejects longer comment bodies
PULL_REQUESTS_WRITE = "pull-requests: write"
CONTENTS_WRITE = "contents: write"
_NOT_ACCESSIBLE = "Resource not accessible by integration"
_ACTIONS_MAY_NOT_CREATE_PRS = "not permitted to create or approve pull requests"
_RACE_ATTEMPTS = 3  # another job moving the same branch between our read and our ref update


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
    """Raised by :meth:`Publisher.upsert_pull_request` when the base branch already holds the files."""

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


def content_path(name: str, data: bytes) -> str:
    """Where :meth:`Publisher.host_files` stores ``name``: content-addressed, so reruns reuse it."""
    return f"{hashlib.sha256(data).hexdigest()[:16]}-{name}"


def git_blob_sha(data: bytes) -> str:
    """The object id git (and GitHub) gives a file with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def has_marker(body: str | None, marker: str) -> bool:
    """True when ``body``'s first line is ``marker`` (a quoted copy of a report does not count)."""
    first_line = (body or "").split("\n", 1)[0]
    return first_line.rstrip("\r").strip() == marker


class Publisher:
    """Writes to one repository; every public method raises only GitHubError/GitHubPermissionError."""

    def __init__(self, gh: github.Github, repository: str, server_url: str) -> None:
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise GitHubError(
                f"Repository {repository!r} is not of the form OWNER/NAME.",
                hint="GITHUB_REPOSITORY holds it in a workflow run, e.g. octo-org/octo-repo.",
            )
        self._repository = repository
        self._owner = owner
        self._server_url = server_url.rstrip("/")
        with _calling(f"Opening repository {repository}", None):
            self._repo = gh.get_repo(repository)  # no request with a lazy client

    # ---- comments

    def upsert_comment(
        self, pr_number: int, marker: str, body: str, *, mode: Literal["update", "new"] = "update"
    ) -> str:
        """Post ``body`` on the PR under ``marker``; in "update" mode edit the newest comment that
        carries the marker instead (every page of comments is searched). Returns its html_url."""
        if mode not in ("update", "new"):
            raise ValueError(f"mode must be 'update' or 'new', not {mode!r}")
        if not marker or "\n" in marker:
            raise ValueError(f"marker must be one non-empty line, not {marker!r}")
        text = f"{marker}\n{body}"
        if len(text) > COMMENT_MAX_CHARS:
            raise GitHubError(
                f"The comment for pull request #{pr_number} is {len(text)} characters long; "
                f"GitHub accepts at most {COMMENT_MAX_CHARS}.",
                hint="Shorten the report (fewer columns or figures); the full report is in the job summary.",
            )
        action = f"Commenting on pull request #{pr_number} of {self._repository}"
        with _calling(action, PULL_REQUESTS_WRITE):
            issue = self._repo.get_issue(pr_number)
            if mode == "update":
                existing = _newest(c for c in issue.get_comments() if has_marker(c.body, marker))
                if existing is not None:
                    existing.edit(text)
                    return existing.html_url
            return issue.create_comment(text).html_url

    # ---- files

    def host_files(self, files: Mapping[str, bytes], *, branch: str = "mlgate-assets") -> dict[str, str]:
        """Commit ``files`` (name -> bytes) to an orphan ``branch`` under content-addressed paths and
        return name -> a link that shows the file to anyone who can read the repository."""
        for name in files:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"file name must be a plain name like 'histogram.png', not {name!r}")
        paths = {name: content_path(name, data) for name, data in files.items()}
        if not files:
            return {}
        action = f"Uploading {len(files)} file(s) to branch {branch} of {self._repository}"
        with _calling(action, CONTENTS_WRITE):
            commit_sha = self._commit_retrying_races(
                branch,
                {paths[name]: data for name, data in files.items()},
                "mlgate: add report files",
                start_from=None,
            )
        blob_url = f"{self._server_url}/{self._repository}/blob/{commit_sha}"
        return {name: f"{blob_url}/{urllib.parse.quote(path)}?raw=true" for name, path in paths.items()}

    def commit_files(self, branch: str, files: Mapping[str, bytes], message: str) -> str:
        """Commit ``files`` (repo path -> bytes) onto ``branch`` (an orphan when missing); returns the
        commit that holds them. Files already there with the same bytes make no new commit."""
        with _calling(f"Committing {len(files)} file(s) to branch {branch} of {self._repository}", CONTENTS_WRITE):
            return self._commit_retrying_races(branch, dict(files), message, start_from=None)

    def read_file(self, branch: str, path: str) -> bytes | None:
        """The bytes of ``path`` on ``branch``; None when the branch or the file does not exist."""
        with _calling(f"Reading {path} from branch {branch} of {self._repository}", None):
            try:
                content = self._repo.get_contents(path, ref=branch)
            except GithubException as exc:
                # "Not Found" for a missing file, "No commit found for the ref X" for a missing branch
                if exc.status == 404:
                    return None
                raise
            if isinstance(content, list):
                raise GitHubError(f"{path} on branch {branch} of {self._repository} is a folder, not a file.")
            if content.encoding == "base64":
                return content.decoded_content
            # files over 1 MB come without content; the blob API serves up to 100 MB
            return base64.b64decode(self._repo.get_git_blob(content.sha).content)

    def upsert_pull_request(
        self,
        *,
        branch: str,
        base: str,
        title: str,
        body: str,
        files: Mapping[str, bytes],
        commit_message: str,
    ) -> str:
        """Commit ``files`` (repo path -> bytes) onto ``branch`` (made from ``base`` if missing) and
        open a PR ``branch`` -> ``base``, or retitle the open one. Returns the PR's html_url.
        A rerun with the same files makes no commit and returns the same PR."""
        action = f"Committing {len(files)} file(s) to branch {branch} of {self._repository}"
        with _calling(action, CONTENTS_WRITE):
            self._commit_retrying_races(branch, dict(files), commit_message, start_from=base)
        action = f"Opening a pull request {branch} -> {base} in {self._repository}"
        with _calling(action, PULL_REQUESTS_WRITE):
            for pull in self._repo.get_pulls(state="open", head=f"{self._owner}:{branch}", base=base):
                pull.edit(title=title, body=body)
                return pull.html_url
            return self._repo.create_pull(base=base, head=branch, title=title, body=body).html_url

    def default_branch(self) -> str:
        with _calling(f"Reading the default branch of {self._repository}", None):
            return self._repo.default_branch

    # ---- git data API

    def _commit_retrying_races(
        self, branch: str, files: dict[str, bytes], message: str, *, start_from: str | None
    ) -> str:
        """Commit the files that differ onto ``branch``; return the commit that holds them all.

        A missing branch starts from ``start_from``'s head, or as an orphan when that is None.
        """
        for attempt in range(_RACE_ATTEMPTS):
            head = self._branch_head(branch)
            ref, parent = head if head is not None else (None, None)
            if head is None and start_from is not None:
                base_head = self._branch_head(start_from)
                if base_head is None:
                    raise GitHubError(f"Branch {start_from} does not exist in {self._repository}.")
                parent = base_head[1]
            changed = self._changed(parent, files)
            if not changed:
                if head is None and parent is not None:
                    raise NothingToPropose(
                        f"Branch {start_from} of {self._repository} already holds these files "
                        f"({', '.join(sorted(files))}); there is nothing to propose."
                    )
                if parent is not None:
                    return parent.sha
            try:
                return self._commit(branch, ref, parent, changed, message)
            except GithubException as exc:
                # lost a race with a concurrent job: read the branch again and retry
                text = _github_message(exc)
                raced = exc.status == 422 and ("already exists" in text or "fast forward" in text)
                if not raced or attempt == _RACE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _branch_head(self, branch: str) -> tuple[GitRef, GitCommit] | None:
        try:
            ref = self._repo.get_git_ref(f"heads/{branch}")
            sha = ref.object.sha  # the lazy ref's GET happens here; it also gives the ref its PATCH url
        except github.UnknownObjectException:
            return None
        return ref, self._repo.get_git_commit(sha)

    def _changed(self, parent: GitCommit | None, files: dict[str, bytes]) -> dict[str, bytes]:
        if parent is None:
            return files
        tree = self._repo.get_git_tree(parent.tree.sha, recursive=True)
        present = {element.path: element.sha for element in tree.tree if element.type == "blob"}
        return {path: data for path, data in files.items() if present.get(path) != git_blob_sha(data)}

    def _commit(
        self,
        branch: str,
        ref: GitRef | None,
        parent: GitCommit | None,
        files: Mapping[str, bytes],
        message: str,
    ) -> str:
        elements = [
            InputGitTreeElement(
                path,
                "100644",
                "blob",
                sha=self._repo.create_git_blob(base64.b64encode(data).decode(), "base64").sha,
            )
            for path, data in files.items()
        ]
        if parent is None:
            tree = self._repo.create_git_tree(elements)
        else:
            tree = self._repo.create_git_tree(elements, parent.tree)
        commit = self._repo.create_git_commit(message, tree, [parent] if parent is not None else [])
        if ref is None:
            self._repo.create_git_ref(f"refs/heads/{branch}", commit.sha)
        else:
            ref.edit(commit.sha, force=False)
        return commit.sha


def _newest(comments: Iterable[IssueComment]) -> IssueComment | None:
    return max(comments, key=lambda comment: comment.id, default=None)


def _github_message(exc: GithubException) -> str:
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


@contextmanager
def _calling(action: str, permission: str | None) -> Iterator[None]:
    """Turn PyGithub and requests failures inside the block into GitHubError / GitHubPermissionError."""
    try:
        yield
    except github.RateLimitExceededException as exc:
        raise GitHubError(
            f"{action} failed: the GitHub API rate limit is exhausted ({_github_message(exc)}).",
            hint="Rerun the job after the limit resets.",
        ) from exc
    except GithubException as exc:
        says = _github_message(exc)
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
