"""The promotion pull request (files committed onto a branch, one open PR kept up to date)."""

from __future__ import annotations

from collections.abc import Mapping

from mlgate.github.branch_store import BranchStore
from mlgate.github.client import PULL_REQUESTS_WRITE, GitHubRepo, calling


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

    Raises NothingToPropose when ``branch`` is missing and ``base`` already holds the files.
    """
    BranchStore(repo).commit_files(branch, files, commit_message, start_from=base)
    action = f"Opening a pull request {branch} -> {base} in {repo.full_name}"
    with calling(action, PULL_REQUESTS_WRITE):
        for pull in repo.api.get_pulls(state="open", head=f"{repo.owner}:{branch}", base=base):
            pull.edit(title=title, body=body)
            return pull.html_url
        return repo.api.create_pull(base=base, head=branch, title=title, body=body).html_url


def default_branch(repo: GitHubRepo) -> str:
    """The repository's default branch (``main``, ``trunk``, ...)."""
    with calling(f"Reading the default branch of {repo.full_name}", None):
        return repo.api.default_branch
