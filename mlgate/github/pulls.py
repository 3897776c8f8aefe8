"""The promotion pull request (files committed onto a branch, one open PR kept up to date)."""

from __future__ import annotations

from collections.abc import Mapping

from github import GithubException
from github.PullRequest import PullRequest

from mlgate.github.branch_store import BranchStore
from mlgate.github.client import PULL_REQUESTS_WRITE, GitHubRepo, calling, github_message


def upsert_pull_request(
    repo: GitHubRepo,
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
    A rerun with the same files makes no commit and returns the same PR.

    Idempotent under races: when the create is refused because the PR already exists (another run
    opened it after our list, or our own create took effect but its answer was lost and the retry
    was refused), the open PR is found again and updated.

    Raises NothingToPropose when ``branch`` is missing and ``base`` already holds the files.
    """
    BranchStore(repo).commit_files(branch, files, commit_message, start_from=base)
    action = f"Opening a pull request {branch} -> {base} in {repo.full_name}"
    with calling(action, PULL_REQUESTS_WRITE):
        pull = _open_pull(repo, branch, base)
        if pull is None:
            try:
                return repo.api.create_pull(base=base, head=branch, title=title, body=body).html_url
            except GithubException as exc:
                if not _already_exists(exc):
                    raise
                pull = _open_pull(repo, branch, base)
                if pull is None:  # refused as existing, yet not listed: say what GitHub said
                    raise
        pull.edit(title=title, body=body)
        return pull.html_url


def _open_pull(repo: GitHubRepo, branch: str, base: str) -> PullRequest | None:
    return next(iter(repo.api.get_pulls(state="open", head=f"{repo.owner}:{branch}", base=base)), None)


def _already_exists(exc: GithubException) -> bool:
    """GitHub's 422 for a second open PR with the same head and base: "A pull request already exists for o:b"."""
    return exc.status == 422 and "a pull request already exists" in github_message(exc).lower()


def default_branch(repo: GitHubRepo) -> str:
    """The repository's default branch (``main``, ``trunk``, ...)."""
    with calling(f"Reading the default branch of {repo.full_name}", None):
        return repo.api.default_branch
