"""The state tests assert on: every repository (git objects, refs, pull requests, comments) and the
small factory that seeds it. :class:`~tests.fakes.github.server.FakeGitHub` is this state served
over HTTP."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.fakes.github.api import not_found
from tests.fakes.github.objects import (
    Blob,
    Commit,
    FakeCheckRun,
    FakeComment,
    FakePull,
    GitObject,
    Json,
    Tree,
    TreeEntry,
    git_sha,
)

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class FakeRepo:
    owner: str
    name: str
    id: int
    default_branch: str
    private: bool = False
    objects: dict[str, GitObject] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> commit sha
    pulls: dict[int, FakePull] = field(default_factory=dict)
    comments: list[FakeComment] = field(default_factory=list)
    check_runs: list[FakeCheckRun] = field(default_factory=list)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    # ---- accessors for tests

    def comments_on(self, number: int) -> list[FakeComment]:
        return [c for c in self.comments if c.issue_number == number]

    def check_runs_on(self, sha: str) -> list[FakeCheckRun]:
        return [run for run in self.check_runs if run.head_sha == sha]

    def branch_sha(self, branch: str) -> str | None:
        return self.refs.get(f"refs/heads/{branch}")

    def history(self, ref: str) -> list[str]:
        """Commit shas reachable from ``ref`` by first parents, newest first."""
        shas: list[str] = []
        sha = self.resolve(ref)
        while sha is not None:
            shas.append(sha)
            commit = self.objects[sha]
            assert isinstance(commit, Commit)
            sha = commit.parents[0] if commit.parents else None
        return shas

    def files(self, ref: str) -> dict[str, bytes]:
        """Every file (path -> bytes) in the tree of ``ref`` (a branch, tag or commit sha)."""
        sha = self.resolve(ref)
        if sha is None:
            raise KeyError(f"{self.full_name} has no ref {ref!r}")
        commit = self.objects[sha]
        assert isinstance(commit, Commit)
        out: dict[str, bytes] = {}
        for path, entry in self.walk(commit.tree):
            blob = self.objects.get(entry.sha)
            if entry.type == "blob" and isinstance(blob, Blob):
                out[path] = blob.data
        return out

    # ---- git plumbing

    def store(self, obj: GitObject) -> str:
        sha = git_sha(obj)
        self.objects[sha] = obj
        return sha

    def resolve(self, ref: str) -> str | None:
        """Commit sha for a branch/tag name, a ``refs/...``/``heads/...`` name or a commit sha."""
        for candidate in (ref, f"refs/{ref}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if candidate in self.refs:
                return self.refs[candidate]
        if isinstance(self.objects.get(ref), Commit):
            return ref
        return None

    def walk(self, tree_sha: str, prefix: str = "") -> Iterator[tuple[str, TreeEntry]]:
        """(path, entry) for every entry below a tree, trees included, depth first."""
        tree = self.objects[tree_sha]
        assert isinstance(tree, Tree)
        for entry in sorted(tree.entries, key=lambda e: e.name):
            path = f"{prefix}{entry.name}"
            yield path, entry
            if entry.type == "tree":
                yield from self.walk(entry.sha, f"{path}/")

    def build_tree(self, flat: Mapping[str, tuple[str, str, str]]) -> str:
        """Store nested trees for ``{path: (mode, type, sha)}``; return the root tree's sha."""
        here: list[TreeEntry] = []
        below: dict[str, dict[str, tuple[str, str, str]]] = {}
        for path, (mode, kind, sha) in flat.items():
            head, sep, rest = path.partition("/")
            if sep:
                below.setdefault(head, {})[rest] = (mode, kind, sha)
            else:
                here.append(TreeEntry(head, mode, kind, sha))
        for name, sub in below.items():
            here.append(TreeEntry(name, "040000", "tree", self.build_tree(sub)))
        return self.store(Tree(tuple(here)))

    def flat_files(self, tree_sha: str) -> dict[str, tuple[str, str, str]]:
        return {p: (e.mode, e.type, e.sha) for p, e in self.walk(tree_sha) if e.type != "tree"}

    def head_sha(self, pull: FakePull) -> str | None:
        if pull.fork_full_name is not None or pull.fixed_head_sha is not None:
            return pull.fixed_head_sha
        return self.branch_sha(pull.head_ref)

    def is_ancestor(self, ancestor: str, sha: str) -> bool:
        """True when commit ``ancestor`` is ``sha`` or reachable from it."""
        todo, seen = [sha], set()
        while todo:
            current = todo.pop()
            if current == ancestor:
                return True
            if current in seen:
                continue
            seen.add(current)
            commit = self.objects.get(current)
            if isinstance(commit, Commit):
                todo.extend(commit.parents)
        return False


class GitHubState:
    """Every repository, ids and a deterministic clock; the seeding methods tests call directly.

    Handlers change the state through the same methods (under ``lock``, which the server holds for
    each request)."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.bot_login = "github-actions[bot]"
        self.lock = threading.RLock()
        self._ids = itertools.count(1001)
        self._clock = itertools.count(1)

    @property
    def repo(self) -> FakeRepo:
        """The repository the fixture seeds: octo-org/octo-repo."""
        return self.repos["octo-org/octo-repo"]

    def now(self) -> str:
        """A deterministic clock: every call is one second later."""
        return (_EPOCH + timedelta(seconds=next(self._clock))).strftime("%Y-%m-%dT%H:%M:%SZ")

    def next_id(self) -> int:
        return next(self._ids)

    # ---- seeding (a small factory)

    def add_repo(
        self,
        full_name: str = "octo-org/octo-repo",
        *,
        default_branch: str = "main",
        files: Mapping[str, bytes] | None = None,
        private: bool = False,
    ) -> FakeRepo:
        """A repository whose default branch holds one commit with ``files`` (a README by default)."""
        owner, name = full_name.split("/")
        with self.lock:
            repo = FakeRepo(owner, name, self.next_id(), default_branch, private)
            self.repos[full_name] = repo
            self.commit_files(
                repo, default_branch, files or {"README.md": b"# octo-repo\n"}, "Initial commit"
            )
            return repo

    def commit_files(
        self,
        repo: FakeRepo,
        branch: str,
        files: Mapping[str, bytes],
        message: str,
        *,
        parent: str | None = None,
    ) -> str:
        """Commit ``files`` on top of ``branch`` (or ``parent``), moving the branch; returns the sha."""
        with self.lock:
            parent = parent or repo.branch_sha(branch)
            flat: dict[str, tuple[str, str, str]] = {}
            if parent is not None:
                base = repo.objects[parent]
                assert isinstance(base, Commit)
                flat = repo.flat_files(base.tree)
            for path, data in files.items():
                flat[path] = ("100644", "blob", repo.store(Blob(data)))
            sha = self.store_commit(repo, repo.build_tree(flat), [parent] if parent else [], message)
            repo.refs[f"refs/heads/{branch}"] = sha
            return sha

    def add_pull(
        self,
        repo: FakeRepo | None = None,
        *,
        head_ref: str = "feature",
        base_ref: str | None = None,
        files: Mapping[str, bytes] | None = None,
        title: str = "Add a feature",
        body: str | None = "",
        user: str = "octocat",
        fork: str | None = None,
        fork_deleted: bool = False,
        head_sha: str | None = None,
    ) -> FakePull:
        """An open PR. Same-repo: creates ``head_ref`` from base with one commit of ``files``.
        ``fork="someone/octo-repo"``: a fork PR whose head sha is ``head_sha`` (made up if None)."""
        repo = repo or self.repo
        base_ref = base_ref or repo.default_branch
        with self.lock:
            if fork is None and head_sha is None and repo.branch_sha(head_ref) is None:
                self.commit_files(
                    repo,
                    head_ref,
                    files or {"feature.txt": b"feature\n"},
                    title,
                    parent=repo.branch_sha(base_ref),
                )
            if fork is not None and head_sha is None:
                head_sha = hashlib.sha1(f"{fork}:{head_ref}".encode()).hexdigest()
            return self.new_pull(
                repo,
                title=title,
                body=body,
                head_ref=head_ref,
                base_ref=base_ref,
                user=user,
                fork_full_name=fork,
                fork_deleted=fork_deleted,
                fixed_head_sha=head_sha,
            )

    def add_comments(
        self, repo: FakeRepo, number: int, bodies: list[str], *, user: str = "octocat"
    ) -> list[FakeComment]:
        with self.lock:
            return [self.new_comment(repo, number, body, user) for body in bodies]

    # ---- new records, numbered and stamped as GitHub would

    def new_pull(
        self,
        repo: FakeRepo,
        *,
        title: str,
        body: str | None,
        head_ref: str,
        base_ref: str,
        user: str,
        draft: bool = False,
        fork_full_name: str | None = None,
        fork_deleted: bool = False,
        fixed_head_sha: str | None = None,
    ) -> FakePull:
        """An open pull request with the repository's next number."""
        number = repo.next_number
        repo.next_number += 1
        pull = FakePull(
            number=number,
            id=self.next_id(),
            node_id=f"PR_fake{number}",
            title=title,
            body=body,
            head_ref=head_ref,
            base_ref=base_ref,
            user=user,
            created_at=self.now(),
            draft=draft,
            fork_full_name=fork_full_name,
            fork_deleted=fork_deleted,
            fixed_head_sha=fixed_head_sha,
        )
        repo.pulls[number] = pull
        return pull

    def new_comment(self, repo: FakeRepo, number: int, body: str, user: str) -> FakeComment:
        if number not in repo.pulls:
            raise not_found()
        comment_id = self.next_id()
        when = self.now()
        comment = FakeComment(comment_id, f"IC_fake{comment_id}", number, body, user, when, when)
        repo.comments.append(comment)
        return comment

    def store_commit(
        self,
        repo: FakeRepo,
        tree: str,
        parents: list[str],
        message: str,
        author: Json | None = None,
        committer: Json | None = None,
    ) -> str:
        when = self.now()
        default = {"name": self.bot_login, "email": "41898282+github-actions[bot]@users.noreply.github.com"}
        author = {**default, "date": when, **(author or {})}
        committer = {**default, "date": when, **(committer or {})}
        return repo.store(Commit(tree, tuple(parents), message, author, committer))
