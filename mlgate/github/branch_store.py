"""Files kept on a branch of the repository: hosted report figures and the statistics cache.

Writes go through the git data API (blobs, a tree, a commit, then the ref), so one commit holds
any number of files; a missing branch starts as an orphan (or from ``start_from``), a concurrent
job moving the branch is retried, and files already there with the same bytes make no commit.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from collections.abc import Mapping

import github
from github import GithubException, InputGitTreeElement
from github.GitCommit import GitCommit
from github.GitRef import GitRef

from mlgate.github.client import CONTENTS_WRITE, GitHubError, GitHubRepo, NothingToPropose, calling, github_message

_RACE_ATTEMPTS = 3  # another job moving the same branch between our read and our ref update


def content_path(name: str, data: bytes) -> str:
    """Where :meth:`BranchStore.host_files` stores ``name``: content-addressed, so reruns reuse it."""
    return f"{hashlib.sha256(data).hexdigest()[:16]}-{name}"


def git_blob_sha(data: bytes) -> str:
    """The object id git (and GitHub) gives a file with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class BranchStore:
    """Reads and commits files on branches of one repository.

    Every public method raises only GitHubError/GitHubPermissionError (and ValueError for a bad
    file name). One instance lives for one run: figures it hosted once are not uploaded again.
    """

    def __init__(self, repo: GitHubRepo) -> None:
        self.repo = repo
        self._hosted: dict[tuple[str, str], str] = {}
        """(branch, content path) -> link, for every file this instance hosted."""

    def host_files(self, files: Mapping[str, bytes], *, branch: str = "mlgate-assets") -> dict[str, str]:
        """Commit ``files`` (name -> bytes) to an orphan ``branch`` under content-addressed paths and
        return name -> a link that shows the file to anyone who can read the repository."""
        for name in files:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"file name must be a plain name like 'histogram.png', not {name!r}")
        paths = {name: content_path(name, data) for name, data in files.items()}
        if not files:
            return {}
        new = {paths[name]: data for name, data in files.items() if (branch, paths[name]) not in self._hosted}
        if new:
            action = f"Uploading {len(new)} file(s) to branch {branch} of {self.repo.full_name}"
            with calling(action, CONTENTS_WRITE):
                commit_sha = self._commit_retrying_races(branch, new, "mlgate: add report files", start_from=None)
            blob_url = f"{self.repo.server_url}/{self.repo.full_name}/blob/{commit_sha}"
            for path in new:
                self._hosted[branch, path] = f"{blob_url}/{urllib.parse.quote(path)}?raw=true"
        return {name: self._hosted[branch, path] for name, path in paths.items()}

    def commit_files(
        self, branch: str, files: Mapping[str, bytes], message: str, *, start_from: str | None = None
    ) -> str:
        """Commit ``files`` (repo path -> bytes) onto ``branch`` and return the commit that holds them.
        Files already there with the same bytes make no new commit.

        A missing ``branch`` starts as an orphan, or from ``start_from``'s head when given; then
        NothingToPropose is raised when ``start_from`` already holds the files.
        """
        action = f"Committing {len(files)} file(s) to branch {branch} of {self.repo.full_name}"
        with calling(action, CONTENTS_WRITE):
            return self._commit_retrying_races(branch, dict(files), message, start_from=start_from)

    def read_file(self, branch: str, path: str) -> bytes | None:
        """The bytes of ``path`` on ``branch``; None when the branch or the file does not exist."""
        with calling(f"Reading {path} from branch {branch} of {self.repo.full_name}", None):
            try:
                content = self.repo.api.get_contents(path, ref=branch)
            except GithubException as exc:
                # "Not Found" for a missing file, "No commit found for the ref X" for a missing branch
                if exc.status == 404:
                    return None
                raise
            if isinstance(content, list):
                raise GitHubError(f"{path} on branch {branch} of {self.repo.full_name} is a folder, not a file.")
            if content.encoding == "base64":
                return content.decoded_content
            # files over 1 MB come without content; the blob API serves up to 100 MB
            return base64.b64decode(self.repo.api.get_git_blob(content.sha).content)

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
                    raise GitHubError(f"Branch {start_from} does not exist in {self.repo.full_name}.")
                parent = base_head[1]
            changed = self._changed(parent, files)
            if not changed:
                if head is None and parent is not None:
                    raise NothingToPropose(
                        f"Branch {start_from} of {self.repo.full_name} already holds these files "
                        f"({', '.join(sorted(files))}); there is nothing to propose."
                    )
                if parent is not None:
                    return parent.sha
            try:
                return self._commit(branch, ref, parent, changed, message)
            except GithubException as exc:
                # lost a race with a concurrent job: read the branch again and retry
                text = github_message(exc)
                raced = exc.status == 422 and ("already exists" in text or "fast forward" in text)
                if not raced or attempt == _RACE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _branch_head(self, branch: str) -> tuple[GitRef, GitCommit] | None:
        try:
            ref = self.repo.api.get_git_ref(f"heads/{branch}")
            sha = ref.object.sha  # the lazy ref's GET happens here; it also gives the ref its PATCH url
        except github.UnknownObjectException:
            return None
        return ref, self.repo.api.get_git_commit(sha)

    def _changed(self, parent: GitCommit | None, files: dict[str, bytes]) -> dict[str, bytes]:
        if parent is None:
            return files
        tree = self.repo.api.get_git_tree(parent.tree.sha, recursive=True)
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
        api = self.repo.api
        elements = [
            InputGitTreeElement(
                path,
                "100644",
                "blob",
                sha=api.create_git_blob(base64.b64encode(data).decode(), "base64").sha,
            )
            for path, data in files.items()
        ]
        tree = api.create_git_tree(elements) if parent is None else api.create_git_tree(elements, parent.tree)
        commit = api.create_git_commit(message, tree, [parent] if parent is not None else [])
        if ref is None:
            api.create_git_ref(f"refs/heads/{branch}", commit.sha)
        else:
            ref.edit(commit.sha, force=False)
        return commit.sha
