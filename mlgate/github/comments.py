"""The sticky pull-request comment: one comment per report, found again by its marker line."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Literal

from github import UnknownObjectException
from github.Issue import Issue
from github.IssueComment import IssueComment

from mlgate.github.client import PULL_REQUESTS_WRITE, GitHubError, GitHubRepo, calling
from mlgate.publish_contract import has_marker

COMMENT_MAX_CHARS = 65536  # GitHub rejects longer comment bodies


def upsert_comment(
    repo: GitHubRepo, pr_number: int, marker: str, body: str, *, mode: Literal["update", "new"] = "update"
) -> str:
    """Post ``body`` on the PR under ``marker``; in "update" mode edit the newest comment that
    carries the marker instead (every page of comments is searched). Returns its html_url.

    In "update" mode the PR ends with exactly one marker comment even when two runs upsert at once
    (both found none and both posted) or a retried POST posted twice: after writing, the marker
    comments are listed again and all but the newest are deleted; the newest gets ``body``. Two
    racing runs apply the same rule, so they converge on one comment (the last writer's body).

    Raises GitHubError when the comment would exceed GitHub's limit (before any request), and
    GitHubError/GitHubPermissionError when GitHub refuses.
    """
    if mode not in ("update", "new"):
        raise ValueError(f"mode must be 'update' or 'new', not {mode!r}")
    text = _text(marker, body, pr_number)
    with calling(_action(repo, pr_number), PULL_REQUESTS_WRITE):
        issue = repo.api.get_issue(pr_number)
        if mode == "update":
            existing = _newest(c for c in issue.get_comments() if has_marker(c.body, marker))
            if existing is not None:
                existing.edit(text)
                ours = existing
            else:
                ours = issue.create_comment(text)
            return _remove_duplicates(issue, marker, ours, text).html_url
        return issue.create_comment(text).html_url


def refresh_comment(repo: GitHubRepo, pr_number: int, marker: str, rewrite: Callable[[str], str]) -> str:
    """Edit the newest comment under ``marker`` to ``rewrite(its body without the marker line)``, so
    that a report the pull request no longer matches is not left standing; post nothing when there
    is no such comment. Returns its html_url, or "" when there was none.

    Raises like :func:`upsert_comment`.
    """
    with calling(_action(repo, pr_number), PULL_REQUESTS_WRITE):
        issue = repo.api.get_issue(pr_number)
        existing = _newest(c for c in issue.get_comments() if has_marker(c.body, marker))
        if existing is None:
            return ""
        text = _text(marker, rewrite((existing.body or "").partition("\n")[2]), pr_number)
        if text != existing.body:
            existing.edit(text)
        return existing.html_url


def _remove_duplicates(issue: Issue, marker: str, ours: IssueComment, text: str) -> IssueComment:
    """Delete every marker comment by our author but the newest; give the newest ``text``.

    Keeping the newest makes the rule the one :func:`upsert_comment` edits by, so no run ever edits
    a comment it then deletes; a comment already deleted by a concurrent run is not an error.
    """
    author = _login(ours)
    marked = [c for c in issue.get_comments() if has_marker(c.body, marker) and _login(c) == author]
    keep = _newest(marked)
    if keep is None:  # not listed (yet): nothing to clean up
        return ours
    for comment in marked:
        if comment.id != keep.id:
            with contextlib.suppress(UnknownObjectException):  # the other run removed it first
                comment.delete()
    if keep.body != text:
        keep.edit(text)
    return keep


def _login(comment: IssueComment) -> str | None:
    return comment.user.login if comment.user is not None else None  # None: a deleted account ("ghost")


def _text(marker: str, body: str, pr_number: int) -> str:
    if not marker or "\n" in marker:
        raise ValueError(f"marker must be one non-empty line, not {marker!r}")
    text = f"{marker}\n{body}"
    if len(text) > COMMENT_MAX_CHARS:
        raise GitHubError(
            f"The comment for pull request #{pr_number} is {len(text)} characters long; "
            f"GitHub accepts at most {COMMENT_MAX_CHARS}.",
            hint="Shorten the report (fewer columns or figures); the full report is in the job summary.",
        )
    return text


def _action(repo: GitHubRepo, pr_number: int) -> str:
    return f"Commenting on pull request #{pr_number} of {repo.full_name}"


def _newest(comments: Iterable[IssueComment]) -> IssueComment | None:
    return max(comments, key=lambda comment: comment.id, default=None)
