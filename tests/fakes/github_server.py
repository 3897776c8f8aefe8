"""A stateful fake GitHub (REST API, GHES-shaped) on 127.0.0.1, and the ``fake_github`` fixture.

The fake is a real HTTP server, so PyGithub runs its production code path against it: point
``GITHUB_API_URL`` at ``fake.api_url`` (``http://127.0.0.1:PORT/api/v3``) and ``GITHUB_SERVER_URL``
at ``fake.server_url``. State lives in plain objects that tests assert on::

    repo = fake_github.repo                      # octo-org/octo-repo, branch main, one commit
    pull = fake_github.add_pull(repo)            # PR #1 from a branch with one more commit
    fake_github.add_comments(repo, pull.number, ["hi"] * 40)
    ...                                          # run the code under test
    assert [c.body for c in repo.comments_on(pull.number)] == [...]
    assert repo.files("mlgate-assets") == {...}
    assert fake_github.violations == []          # request bodies GitHub would reject

What it models (only what mlgate sends; see ``github_openapi.json`` for the operations):
issue comments with ``Link`` pagination; git blobs/trees/commits/refs with real git object ids
(so ``sha1("blob N\\0" + data)`` computed locally matches); the contents API; pull requests
(with ``head``/``base`` repos, forks, deleted forks); commit statuses; check runs; GraphQL
``minimizeComment``; raw file links ``/{owner}/{repo}/blob/{commit}/{path}?raw=true``.

Every request is recorded (``fake.requests``). Every JSON body is validated against GitHub's own
OpenAPI schema for that operation (cut by ``cut_github_openapi.py``); a body GitHub would reject is
answered 422 and recorded in ``fake.violations``. Switches: ``fake.read_only = True`` (every write
403 "Resource not accessible by integration", as for a fork PR's token), ``fake.permissions[...]``
per scope, ``fake.actions_can_create_pull_requests``, and ``fake.fail_with(500)``.

From a subprocess: ``env = {**os.environ, **fake_github.env()}``. Standalone (e.g. for a container
test): ``python -m tests.fakes.github_server`` prints the environment and serves until interrupted.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import mimetypes
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SPEC_PATH = Path(__file__).with_name("github_openapi.json")
EVENTS_DIR = Path(__file__).parents[1] / "fixtures" / "events"
API_PREFIX = "/api/v3"
GRAPHQL_PATH = "/api/graphql"
DOCS_URL = "https://docs.github.com/rest"
COMMENT_MAX_CHARS = 65536
CONTENTS_MAX_BYTES = 1024 * 1024  # above this the contents API leaves `content` empty
SCOPES = ("contents", "pull_requests", "issues", "statuses", "checks")
NOT_ACCESSIBLE = "Resource not accessible by integration"
ACTIONS_CANNOT_CREATE_PR = "GitHub Actions is not permitted to create or approve pull requests."
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

Json = dict[str, Any]


# --------------------------------------------------------------------------------------------
# git objects, with the ids real git would give them


@dataclass(frozen=True)
class Blob:
    data: bytes


@dataclass(frozen=True)
class TreeEntry:
    name: str
    mode: str  # as the REST API spells it: 100644, 100755, 040000, 160000, 120000
    type: str  # blob, tree, commit
    sha: str


@dataclass(frozen=True)
class Tree:
    entries: tuple[TreeEntry, ...]


@dataclass(frozen=True)
class Commit:
    tree: str
    parents: tuple[str, ...]
    message: str
    author: Json  # {"name", "email", "date"}
    committer: Json


GitObject = Blob | Tree | Commit


def git_sha(obj: GitObject) -> str:
    """The object id real git computes (``git hash-object``), so clients can compare locally."""
    if isinstance(obj, Blob):
        kind, payload = "blob", obj.data
    elif isinstance(obj, Tree):
        kind = "tree"
        # git orders tree entries by name, with a directory's name compared as "name/"
        ordered = sorted(obj.entries, key=lambda e: e.name + ("/" if e.type == "tree" else ""))
        payload = b"".join(
            f"{e.mode.lstrip('0')} {e.name}\0".encode() + bytes.fromhex(e.sha) for e in ordered
        )
    else:
        kind = "commit"
        lines = [f"tree {obj.tree}", *(f"parent {p}" for p in obj.parents)]
        for role, who in (("author", obj.author), ("committer", obj.committer)):
            stamp = int(datetime.fromisoformat(who["date"].replace("Z", "+00:00")).timestamp())
            lines.append(f"{role} {who['name']} <{who['email']}> {stamp} +0000")
        payload = ("\n".join(lines) + "\n\n" + obj.message).encode()
    return hashlib.sha1(f"{kind} {len(payload)}\0".encode() + payload).hexdigest()


# --------------------------------------------------------------------------------------------
# state


@dataclass
class FakeComment:
    id: int
    node_id: str
    issue_number: int
    body: str
    user: str
    created_at: str
    updated_at: str
    minimized: bool = False


@dataclass
class FakePull:
    number: int
    id: int
    node_id: str
    title: str
    body: str | None
    head_ref: str
    base_ref: str
    user: str
    created_at: str
    state: str = "open"
    draft: bool = False
    # A PR from a fork: the fork's full name and the head sha (the fork's commits are not modelled).
    fork_full_name: str | None = None
    fork_deleted: bool = False
    fixed_head_sha: str | None = None


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the query string, e.g. /api/v3/repos/o/r/issues/1/comments
    query: dict[str, str]
    body: Any  # parsed JSON, raw bytes when not JSON, None when empty
    status: int = 0


@dataclass
class SchemaViolation:
    method: str
    path: str
    operation_id: str
    message: str


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
    statuses: list[Json] = field(default_factory=list)
    check_runs: list[Json] = field(default_factory=list)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    # ---- accessors for tests

    def comments_on(self, number: int) -> list[FakeComment]:
        return [c for c in self.comments if c.issue_number == number]

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


def _not_found() -> HttpError:
    return HttpError(404, "Not Found")


def _validation_failed(text: str, **error: Any) -> HttpError:
    """GitHub's 422; ``error`` becomes one entry of ``errors`` (resource, field, code, message)."""
    return HttpError(422, text, errors=[error] if error else [])


# --------------------------------------------------------------------------------------------
# request validation against GitHub's OpenAPI description


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: ``nullable: true`` becomes a ``null`` alternative."""
    if not isinstance(node, dict):
        return node
    out: Json = {}
    for key, value in node.items():
        if key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: _to_json_schema(schema) for name, schema in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_to_json_schema(schema) for schema in value]
        else:
            out[key] = value
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass(frozen=True)
class Operation:
    operation_id: str
    body_required: bool
    validator: jsonschema.protocols.Validator | None


_OPERATIONS: dict[str, Operation] | None = None


def load_operations(spec_path: Path = SPEC_PATH) -> dict[str, Operation]:
    global _OPERATIONS
    if _OPERATIONS is None:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        operations: dict[str, Operation] = {}
        for item in spec["paths"].values():
            for op in item.values():
                body = op.get("requestBody")
                schema = body["content"]["application/json"]["schema"] if body else None
                validator = jsonschema.Draft4Validator(_to_json_schema(schema)) if schema else None
                operations[op["operationId"]] = Operation(
                    op["operationId"], bool(body and body.get("required")), validator
                )
        _OPERATIONS = operations
    return _OPERATIONS


# --------------------------------------------------------------------------------------------
# the server

Handler = Callable[["FakeGitHub", "Call"], tuple[int, Any]]


@dataclass
class Call:
    """One routed API request, as handlers see it."""

    repo: FakeRepo | None
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    url: str  # the request's absolute URL without query, for Link headers
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation_id: str
    scope: str | None  # the permission a write needs
    handler: Handler


_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"


class FakeGitHub:
    """The fake's state and switches; start() serves it on 127.0.0.1 at a free port."""

    def __init__(self, token: str = "ghs_fakeTokenForTests0123456789abcdef") -> None:
        self.token = token
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[RecordedRequest] = []
        self.violations: list[SchemaViolation] = []
        self.permissions: dict[str, str] = dict.fromkeys(SCOPES, "write")
        self.actions_can_create_pull_requests = True
        self.bot_login = "github-actions[bot]"
        self._failure: tuple[int, int | None] | None = None  # (status, remaining or None = forever)
        self._ids = itertools.count(1001)
        self._clock = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.server_url = ""
        self.api_url = ""
        self.graphql_url = ""

    # ---- lifecycle

    def start(self) -> FakeGitHub:
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._serve(self)

            do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.server_url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.server_url}{API_PREFIX}"
        self.graphql_url = f"{self.server_url}{GRAPHQL_PATH}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def env(self, repository: str = "octo-org/octo-repo") -> dict[str, str]:
        """What the runner would set, pointed at this fake (merge into a subprocess's env)."""
        return {
            "GITHUB_API_URL": self.api_url,
            "GITHUB_SERVER_URL": self.server_url,
            "GITHUB_GRAPHQL_URL": self.graphql_url,
            "GITHUB_TOKEN": self.token,
            "GITHUB_REPOSITORY": repository,
            "GITHUB_REPOSITORY_OWNER": repository.split("/")[0],
        }

    # ---- switches

    @property
    def read_only(self) -> bool:
        return all(level != "write" for level in self.permissions.values())

    @read_only.setter
    def read_only(self, value: bool) -> None:
        self.permissions = dict.fromkeys(SCOPES, "read" if value else "write")

    def fail_with(self, status: int = 500, times: int | None = None) -> None:
        """Answer the next ``times`` API requests (all, when None) with ``status``."""
        self._failure = (status, times)

    def heal(self) -> None:
        self._failure = None

    # ---- seeding (a small factory; tests call these directly)

    @property
    def repo(self) -> FakeRepo:
        """The repository the fixture seeds: octo-org/octo-repo."""
        return self.repos["octo-org/octo-repo"]

    def now(self) -> str:
        """A deterministic clock: every call is one second later."""
        return (_EPOCH + timedelta(seconds=next(self._clock))).strftime("%Y-%m-%dT%H:%M:%SZ")

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
        with self._lock:
            repo = FakeRepo(owner, name, next(self._ids), default_branch, private)
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
        with self._lock:
            parent = parent or repo.branch_sha(branch)
            flat: dict[str, tuple[str, str, str]] = {}
            if parent is not None:
                base = repo.objects[parent]
                assert isinstance(base, Commit)
                flat = repo.flat_files(base.tree)
            for path, data in files.items():
                flat[path] = ("100644", "blob", repo.store(Blob(data)))
            sha = self._store_commit(repo, repo.build_tree(flat), [parent] if parent else [], message)
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
        with self._lock:
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
            number = repo.next_number
            repo.next_number += 1
            pull = FakePull(
                number=number,
                id=next(self._ids),
                node_id=f"PR_fake{number}",
                title=title,
                body=body,
                head_ref=head_ref,
                base_ref=base_ref,
                user=user,
                created_at=self.now(),
                fork_full_name=fork,
                fork_deleted=fork_deleted,
                fixed_head_sha=head_sha,
            )
            repo.pulls[number] = pull
            return pull

    def add_comments(
        self, repo: FakeRepo, number: int, bodies: list[str], *, user: str = "octocat"
    ) -> list[FakeComment]:
        with self._lock:
            return [self._new_comment(repo, number, body, user) for body in bodies]

    def event_payload(
        self, pull: FakePull, *, action: str = "synchronize", repo: FakeRepo | None = None
    ) -> Json:
        """A real ``pull_request`` webhook payload (tests/fixtures/events) rewritten to match ``pull``."""
        repo = repo or self.repo
        fixture = (
            "pull_request.synchronize.fork.json" if pull.fork_full_name else "pull_request.synchronize.json"
        )
        payload: Json = json.loads((EVENTS_DIR / fixture).read_text(encoding="utf-8"))
        payload["action"] = action
        payload["number"] = pull.number
        payload["repository"] = self._repo_json(repo)
        pr = payload["pull_request"]
        rendered = self._pull_json(repo, pull)
        for key in ("number", "id", "node_id", "title", "body", "url", "html_url", "state", "head", "base"):
            pr[key] = rendered[key]
        return payload

    # ---- internals: objects

    def _store_commit(
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

    def _new_comment(self, repo: FakeRepo, number: int, body: str, user: str) -> FakeComment:
        if number not in repo.pulls:
            raise _not_found()
        comment_id = next(self._ids)
        when = self.now()
        comment = FakeComment(comment_id, f"IC_fake{comment_id}", number, body, user, when, when)
        repo.comments.append(comment)
        return comment

    # ---- internals: JSON shapes (every absolute URL uses this server's host:port)

    def _user_json(self, login: str) -> Json:
        is_bot = login.endswith("[bot]")
        return {
            "login": login,
            "id": 41898282 if is_bot else abs(hash(login)) % 10**7,
            "node_id": f"U_{login}",
            "type": "Bot" if is_bot else "User",
            "site_admin": False,
            "url": f"{self.api_url}/users/{urllib.parse.quote(login)}",
            "html_url": f"{self.server_url}/{urllib.parse.quote(login)}",
        }

    def _repo_json(self, repo: FakeRepo) -> Json:
        api = f"{self.api_url}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": f"R_fake{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self._user_json(repo.owner),
            "private": repo.private,
            "fork": False,
            "visibility": "private" if repo.private else "public",
            "html_url": f"{self.server_url}/{repo.full_name}",
            "url": api,
            "pulls_url": f"{api}/pulls{{/number}}",
            "default_branch": repo.default_branch,
            "permissions": {"admin": False, "push": True, "pull": True},
        }

    def _fork_json(self, repo: FakeRepo, fork_full_name: str) -> Json:
        owner, name = fork_full_name.split("/")
        return {
            **self._repo_json(repo),
            "id": repo.id + 1,
            "node_id": f"R_fork{repo.id}",
            "name": name,
            "full_name": fork_full_name,
            "owner": self._user_json(owner),
            "fork": True,
            "html_url": f"{self.server_url}/{fork_full_name}",
            "url": f"{self.api_url}/repos/{fork_full_name}",
        }

    def _comment_json(self, repo: FakeRepo, c: FakeComment) -> Json:
        api = f"{self.api_url}/repos/{repo.full_name}"
        return {
            "id": c.id,
            "node_id": c.node_id,
            "body": c.body,
            "user": self._user_json(c.user),
            "url": f"{api}/issues/comments/{c.id}",
            "html_url": f"{self.server_url}/{repo.full_name}/pull/{c.issue_number}#issuecomment-{c.id}",
            "issue_url": f"{api}/issues/{c.issue_number}",
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "author_association": "NONE",
            "performed_via_github_app": None,
        }

    def _pull_json(self, repo: FakeRepo, p: FakePull) -> Json:
        api = f"{self.api_url}/repos/{repo.full_name}"
        head_repo: Json | None
        if p.fork_full_name is None:
            head_repo, head_owner = self._repo_json(repo), repo.owner
        else:
            head_repo = None if p.fork_deleted else self._fork_json(repo, p.fork_full_name)
            head_owner = p.fork_full_name.split("/")[0]
        return {
            "id": p.id,
            "node_id": p.node_id,
            "number": p.number,
            "state": p.state,
            "title": p.title,
            "body": p.body,
            "draft": p.draft,
            "locked": False,
            "merged": False,
            "mergeable": None,
            "user": self._user_json(p.user),
            "created_at": p.created_at,
            "updated_at": p.created_at,
            "url": f"{api}/pulls/{p.number}",
            "html_url": f"{self.server_url}/{repo.full_name}/pull/{p.number}",
            "issue_url": f"{api}/issues/{p.number}",
            "comments_url": f"{api}/issues/{p.number}/comments",
            "statuses_url": f"{api}/statuses/{repo.head_sha(p)}",
            "head": {
                "label": f"{head_owner}:{p.head_ref}",
                "ref": p.head_ref,
                "sha": repo.head_sha(p),
                "repo": head_repo,
                "user": self._user_json(head_owner),
            },
            "base": {
                "label": f"{repo.owner}:{p.base_ref}",
                "ref": p.base_ref,
                "sha": repo.branch_sha(p.base_ref),
                "repo": self._repo_json(repo),
                "user": self._user_json(repo.owner),
            },
        }

    def _commit_json(self, repo: FakeRepo, sha: str) -> Json:
        c = repo.objects[sha]
        assert isinstance(c, Commit)
        api = f"{self.api_url}/repos/{repo.full_name}/git"
        return {
            "sha": sha,
            "node_id": f"C_{sha}",
            "url": f"{api}/commits/{sha}",
            "html_url": f"{self.server_url}/{repo.full_name}/commit/{sha}",
            "author": c.author,
            "committer": c.committer,
            "message": c.message,
            "tree": {"sha": c.tree, "url": f"{api}/trees/{c.tree}"},
            "parents": [
                {
                    "sha": p,
                    "url": f"{api}/commits/{p}",
                    "html_url": f"{self.server_url}/{repo.full_name}/commit/{p}",
                }
                for p in c.parents
            ],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        }

    def _tree_json(self, repo: FakeRepo, sha: str, recursive: bool) -> Json:
        api = f"{self.api_url}/repos/{repo.full_name}/git"
        top = repo.objects[sha]
        assert isinstance(top, Tree)
        entries = repo.walk(sha) if recursive else ((e.name, e) for e in top.entries)
        tree = []
        for path, e in entries:
            item: Json = {
                "path": path,
                "mode": e.mode,
                "type": e.type,
                "sha": e.sha,
                "url": f"{api}/{e.type}s/{e.sha}",
            }
            blob = repo.objects.get(e.sha)
            if isinstance(blob, Blob):
                item["size"] = len(blob.data)
            tree.append(item)
        return {"sha": sha, "url": f"{api}/trees/{sha}", "tree": tree, "truncated": False}

    def _ref_json(self, repo: FakeRepo, ref: str) -> Json:
        api = f"{self.api_url}/repos/{repo.full_name}/git"
        sha = repo.refs[ref]
        return {
            "ref": ref,
            "node_id": f"REF_{ref}",
            "url": f"{api}/refs/{ref.removeprefix('refs/')}",
            "object": {"sha": sha, "type": "commit", "url": f"{api}/commits/{sha}"},
        }

    def _content_json(self, repo: FakeRepo, path: str, entry: TreeEntry, ref: str) -> Json:
        api = f"{self.api_url}/repos/{repo.full_name}"
        quoted = urllib.parse.quote(path)
        item: Json = {
            "type": "dir" if entry.type == "tree" else "file",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": entry.sha,
            "size": 0,
            "url": f"{api}/contents/{quoted}?ref={urllib.parse.quote(ref)}",
            "git_url": f"{api}/git/{entry.type}s/{entry.sha}",
            "html_url": f"{self.server_url}/{repo.full_name}/blob/{ref}/{quoted}",
            "download_url": None,
        }
        blob = repo.objects.get(entry.sha)
        if isinstance(blob, Blob):
            item["size"] = len(blob.data)
        return item

    # ---- HTTP plumbing

    def _serve(self, http: BaseHTTPRequestHandler) -> None:
        split = urllib.parse.urlsplit(http.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        record = RecordedRequest(http.command, split.path, query, body)
        headers: dict[str, str] = {}
        with self._lock:
            self.requests.append(record)
            try:
                status, payload = self._dispatch(http, split.path, query, raw, body, headers)
            except HttpError as exc:
                status, payload = exc.status, exc.payload
            record.status = status
        if isinstance(payload, bytes):
            data = payload
            headers.setdefault("Content-Type", "application/octet-stream")
        else:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        http.send_response(status)
        for name, value in headers.items():
            http.send_header(name, value)
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)

    def _dispatch(
        self,
        http: BaseHTTPRequestHandler,
        path: str,
        query: dict[str, str],
        raw: bytes,
        body: Any,
        headers: dict[str, str],
    ) -> tuple[int, Any]:
        if not (path.startswith(API_PREFIX + "/") or path == GRAPHQL_PATH):
            return self._raw_file(http.command, path, query, headers)
        if self._failure is not None:
            status, remaining = self._failure
            if remaining is not None:
                self._failure = (status, remaining - 1) if remaining > 1 else None
            raise HttpError(status, "Server Error")
        auth = http.headers.get("Authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            raise HttpError(401, "Bad credentials")
        if path == GRAPHQL_PATH:
            return self._graphql(body)
        route, match = self._route(http.command, path.removeprefix(API_PREFIX))
        if http.command in WRITE_METHODS:
            if isinstance(body, bytes) or (raw and not isinstance(body, dict)):
                self._violate(http.command, path, route.operation_id, "Problems parsing JSON")
                raise HttpError(400, "Problems parsing JSON")
            self._validate(http.command, path, route.operation_id, body)
        params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
        repo = self.repos.get(f"{params.get('owner')}/{params.get('repo')}")
        if repo is None:
            raise _not_found()
        if http.command in WRITE_METHODS and route.scope is not None:
            self._authorize(route.scope, repo, params)
        call = Call(repo, params, query, body, f"http://{http.headers.get('Host', '')}{path}", headers)
        return route.handler(self, call)

    def _route(self, method: str, path: str) -> tuple[Route, re.Match[str]]:
        for route in ROUTES:
            if route.method == method and (match := route.pattern.fullmatch(path)):
                return route, match
        raise _not_found()

    def _violate(self, method: str, path: str, operation_id: str, message: str) -> None:
        self.violations.append(SchemaViolation(method, path, operation_id, message))

    def _validate(self, method: str, path: str, operation_id: str, body: Any) -> None:
        operation = load_operations()[operation_id]
        if body is None:
            if operation.body_required:
                self._violate(method, path, operation_id, "request body is required")
                raise HttpError(422, "Invalid request.\n\nNo body was supplied.")
            return
        if operation.validator is None:
            return
        errors = sorted(operation.validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            message = "; ".join(
                f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors
            )
            self._violate(method, path, operation_id, message)
            raise HttpError(422, f"Invalid request.\n\n{message}")

    def _authorize(self, scope: str, repo: FakeRepo, params: dict[str, str]) -> None:
        granted = self.permissions.get(scope) == "write"
        if scope == "issues" and not granted:
            # a comment on a pull request is allowed with either scope
            granted = self.permissions.get("pull_requests") == "write"
        if not granted:
            raise HttpError(403, NOT_ACCESSIBLE)

    def _raw_file(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, Any]:
        """``/{owner}/{repo}/blob/{commit}/{path}?raw=true``: the file's bytes at that commit."""
        match = re.fullmatch(r"/([^/]+)/([^/]+)/blob/([^/]+)/(.+)", path)
        if method != "GET" or match is None or query.get("raw") != "true":
            raise _not_found()
        owner, name, ref, file_path = (urllib.parse.unquote(g) for g in match.groups())
        repo = self.repos.get(f"{owner}/{name}")
        files = repo.files(ref) if repo is not None and repo.resolve(ref) else {}
        if file_path not in files:
            raise _not_found()
        headers["Content-Type"] = mimetypes.guess_type(file_path)[0] or "application/octet-stream"
        return 200, files[file_path]

    def _paginate(self, call: Call, items: list[Json]) -> tuple[int, Any]:
        per_page = max(1, min(int(call.query.get("per_page", 30)), 100))
        page = max(1, int(call.query.get("page", 1)))
        last = max(1, -(-len(items) // per_page))

        def link(n: int) -> str:
            return f"<{call.url}?{urllib.parse.urlencode({**call.query, 'per_page': per_page, 'page': n})}>"

        links = []
        if page < last:
            links += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
        if page > 1:
            links += [f'{link(page - 1)}; rel="prev"', f'{link(1)}; rel="first"']
        if links:
            call.headers["Link"] = ", ".join(links)
        return 200, items[(page - 1) * per_page : page * per_page]

    def _graphql(self, body: Any) -> tuple[int, Any]:
        """Only ``minimizeComment`` (how a sticky-comment tool hides an outdated report)."""
        query = body.get("query", "") if isinstance(body, dict) else ""
        if "minimizeComment" not in query:
            return 200, {"errors": [{"message": "the fake GitHub only knows minimizeComment"}]}
        if self.permissions.get("pull_requests") != "write" and self.permissions.get("issues") != "write":
            return 200, {"errors": [{"type": "FORBIDDEN", "message": NOT_ACCESSIBLE}]}
        node_id = body.get("variables", {}).get("input", {}).get("subjectId")
        for repo in self.repos.values():
            for comment in repo.comments:
                if comment.node_id == node_id:
                    comment.minimized = True
                    return 200, {"data": {"minimizeComment": {"minimizedComment": {"isMinimized": True}}}}
        return 200, {
            "errors": [
                {
                    "type": "NOT_FOUND",
                    "message": f"Could not resolve to a node with the global id of '{node_id}'",
                }
            ]
        }


# --------------------------------------------------------------------------------------------
# handlers: one per operation in github_openapi.json


def _need(call: Call) -> FakeRepo:
    assert call.repo is not None
    return call.repo


def _get_repo(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    return 200, fake._repo_json(_need(call))


def _get_branch(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    sha = repo.branch_sha(call.params["branch"])
    if sha is None:
        raise HttpError(404, "Branch not found")
    return 200, {
        "name": call.params["branch"],
        "commit": {"sha": sha, **fake._commit_json(repo, sha)},
        "protected": False,
    }


def _get_content(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    ref = call.query.get("ref") or repo.default_branch
    sha = repo.resolve(ref)
    if sha is None:
        raise HttpError(404, f"No commit found for the ref {ref}")
    commit = repo.objects[sha]
    assert isinstance(commit, Commit)
    path = call.params["path"].strip("/")
    entries = dict(repo.walk(commit.tree))
    if path and path not in entries:
        raise _not_found()
    if path == "" or entries[path].type == "tree":
        prefix = f"{path}/" if path else ""
        return 200, [
            fake._content_json(repo, p, e, ref)
            for p, e in entries.items()
            if p.startswith(prefix) and "/" not in p[len(prefix) :]
        ]
    item = fake._content_json(repo, path, entries[path], ref)
    blob = repo.objects[entries[path].sha]
    assert isinstance(blob, Blob)
    if len(blob.data) > CONTENTS_MAX_BYTES:
        item.update(content="", encoding="none")
    else:
        item.update(content=base64.encodebytes(blob.data).decode(), encoding="base64")
    return 200, item


def _put_content(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    branch = call.body.get("branch") or repo.default_branch
    head = repo.branch_sha(branch)
    if head is None:
        raise HttpError(404, f"Branch {branch} not found")
    path = call.params["path"].strip("/")
    commit = repo.objects[head]
    assert isinstance(commit, Commit)
    existing = repo.flat_files(commit.tree).get(path)
    if existing is not None and call.body.get("sha") != existing[2]:
        if "sha" not in call.body:
            raise _validation_failed('Invalid request.\n\n"sha" wasn\'t supplied.')
        raise HttpError(409, f"{path} does not match {call.body['sha']}")
    try:
        data = base64.b64decode(call.body["content"], validate=True)
    except ValueError as exc:
        raise _validation_failed("content is not valid Base64") from exc
    sha = fake.commit_files(repo, branch, {path: data}, call.body["message"])
    tree = repo.objects[sha]
    assert isinstance(tree, Commit)
    entry = dict(repo.walk(tree.tree))[path]
    return (200 if existing else 201), {
        "content": fake._content_json(repo, path, entry, branch),
        "commit": fake._commit_json(repo, sha),
    }


def _create_status(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    status = {
        "id": next(fake._ids),
        "sha": call.params["sha"],
        "created_at": fake.now(),
        "url": f"{fake.api_url}/repos/{repo.full_name}/statuses/{call.params['sha']}",
        "context": "default",
        **call.body,
        "creator": fake._user_json(fake.bot_login),
    }
    repo.statuses.append(status)
    return 201, status


def _create_check_run(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    run_id = next(fake._ids)
    run = {
        "id": run_id,
        "node_id": f"CR_{run_id}",
        **call.body,
        "url": f"{fake.api_url}/repos/{repo.full_name}/check-runs/{run_id}",
        "html_url": f"{fake.server_url}/{repo.full_name}/runs/{run_id}",
    }
    repo.check_runs.append(run)
    return 201, run


def _pull_or_404(repo: FakeRepo, number: str) -> FakePull:
    pull = repo.pulls.get(int(number))
    if pull is None:
        raise _not_found()
    return pull


def _get_issue(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    pull = _pull_or_404(repo, call.params["number"])
    rendered = fake._pull_json(repo, pull)
    return 200, {
        **{
            k: rendered[k]
            for k in ("id", "node_id", "number", "state", "title", "body", "user", "created_at")
        },
        "url": rendered["issue_url"],
        "html_url": rendered["html_url"],
        "comments_url": rendered["comments_url"],
        "comments": len(repo.comments_on(pull.number)),
        "pull_request": {"url": rendered["url"], "html_url": rendered["html_url"]},
    }


def _list_comments(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    pull = _pull_or_404(repo, call.params["number"])
    return fake._paginate(call, [fake._comment_json(repo, c) for c in repo.comments_on(pull.number)])


def _create_comment(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    _check_comment_body(call.body["body"])
    comment = fake._new_comment(repo, int(call.params["number"]), call.body["body"], fake.bot_login)
    return 201, fake._comment_json(repo, comment)


def _check_comment_body(body: str) -> None:
    # GitHub enforces this although its OpenAPI description does not say so
    if len(body) > COMMENT_MAX_CHARS:
        raise _validation_failed(
            "Validation Failed",
            resource="IssueComment",
            code="custom",
            field="body",
            message=f"Body is too long (maximum is {COMMENT_MAX_CHARS} characters)",
        )


def _comment_or_404(repo: FakeRepo, comment_id: str) -> FakeComment:
    for comment in repo.comments:
        if comment.id == int(comment_id):
            return comment
    raise _not_found()


def _get_comment(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    return 200, fake._comment_json(repo, _comment_or_404(repo, call.params["comment_id"]))


def _update_comment(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    comment = _comment_or_404(repo, call.params["comment_id"])
    _check_comment_body(call.body["body"])
    comment.body = call.body["body"]
    comment.updated_at = fake.now()
    return 200, fake._comment_json(repo, comment)


def _get_ref(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    ref = f"refs/{call.params['ref']}"
    if ref not in repo.refs:
        raise _not_found()
    return 200, fake._ref_json(repo, ref)


def _create_ref(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    ref, sha = call.body["ref"], call.body["sha"]
    if not ref.startswith("refs/") or ref.count("/") < 2:
        raise _validation_failed(f"{ref} is not a valid ref name.")
    if ref in repo.refs:
        raise _validation_failed("Reference already exists")
    if not isinstance(repo.objects.get(sha), Commit):
        raise _validation_failed("Object does not exist")
    repo.refs[ref] = sha
    return 201, fake._ref_json(repo, ref)


def _is_ancestor(repo: FakeRepo, ancestor: str, sha: str) -> bool:
    todo, seen = [sha], set()
    while todo:
        current = todo.pop()
        if current == ancestor:
            return True
        if current in seen:
            continue
        seen.add(current)
        commit = repo.objects.get(current)
        if isinstance(commit, Commit):
            todo.extend(commit.parents)
    return False


def _update_ref(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    ref, sha = f"refs/{call.params['ref']}", call.body["sha"]
    if ref not in repo.refs:
        raise _validation_failed("Reference does not exist")
    if not isinstance(repo.objects.get(sha), Commit):
        raise _validation_failed("Object does not exist")
    if not call.body.get("force") and not _is_ancestor(repo, repo.refs[ref], sha):
        raise _validation_failed("Update is not a fast forward")
    repo.refs[ref] = sha
    return 200, fake._ref_json(repo, ref)


def _create_blob(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    encoding = call.body.get("encoding", "utf-8")
    if encoding == "base64":
        try:
            data = base64.b64decode(call.body["content"], validate=True)
        except ValueError as exc:
            raise _validation_failed("content is not valid Base64") from exc
    elif encoding in ("utf-8", "utf8"):
        data = call.body["content"].encode()
    else:
        raise _validation_failed(f"encoding must be utf-8 or base64, not {encoding}")
    sha = repo.store(Blob(data))
    return 201, {"sha": sha, "url": f"{fake.api_url}/repos/{repo.full_name}/git/blobs/{sha}"}


def _get_blob(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    sha = call.params["sha"]
    blob = repo.objects.get(sha)
    if not isinstance(blob, Blob):
        raise _not_found()
    return 200, {
        "sha": sha,
        "node_id": f"B_{sha}",
        "size": len(blob.data),
        "encoding": "base64",
        "content": base64.encodebytes(blob.data).decode(),
        "url": f"{fake.api_url}/repos/{repo.full_name}/git/blobs/{sha}",
    }


def _create_tree(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    flat: dict[str, tuple[str, str, str]] = {}
    if "base_tree" in call.body:
        if not isinstance(repo.objects.get(call.body["base_tree"]), Tree):
            raise _validation_failed("Invalid tree info", field="base_tree")
        flat = repo.flat_files(call.body["base_tree"])
    for item in call.body["tree"]:
        path = item.get("path", "")
        if not path or path.startswith("/") or path.endswith("/"):
            raise _validation_failed(f"tree.path contains a malformed path component: {path!r}")
        if "sha" in item and "content" in item:
            raise _validation_failed("Must supply either tree.sha or tree.content, not both")
        if "content" in item:
            flat[path] = (item["mode"], "blob", repo.store(Blob(item["content"].encode())))
        elif item.get("sha") is None:
            # sha null deletes the path (a file, or every file below a folder)
            doomed = [p for p in flat if p == path or p.startswith(f"{path}/")]
            if not doomed:
                raise _validation_failed(f"tree.path {path} does not exist and cannot be deleted")
            for p in doomed:
                del flat[p]
        else:
            obj = repo.objects.get(item["sha"])
            if item["type"] == "blob" and not isinstance(obj, Blob):
                raise _validation_failed(f"tree.sha {item['sha']} is not a valid blob")
            if item["type"] == "tree":
                if not isinstance(obj, Tree):
                    raise _validation_failed(f"tree.sha {item['sha']} is not a valid tree")
                for p in [p for p in flat if p.startswith(f"{path}/")]:
                    del flat[p]
                flat.update({f"{path}/{p}": v for p, v in repo.flat_files(item["sha"]).items()})
            else:
                flat[path] = (item["mode"], item["type"], item["sha"])
    sha = repo.build_tree(flat)
    return 201, fake._tree_json(repo, sha, recursive=False)


def _get_tree(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    sha = call.params["sha"]
    if not isinstance(repo.objects.get(sha), Tree):
        commit = repo.objects.get(repo.resolve(sha) or "")
        if not isinstance(commit, Commit):
            raise _not_found()
        sha = commit.tree
    recursive = call.query.get("recursive", "") not in ("", "0", "false")
    return 200, fake._tree_json(repo, sha, recursive=recursive)


def _create_commit(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    if not isinstance(repo.objects.get(call.body["tree"]), Tree):
        raise _validation_failed("Tree SHA does not exist")
    parents = call.body.get("parents", [])
    if any(not isinstance(repo.objects.get(p), Commit) for p in parents):
        raise _validation_failed("Parent SHA does not exist or is not a commit object")
    sha = fake._store_commit(
        repo,
        call.body["tree"],
        parents,
        call.body["message"],
        call.body.get("author"),
        call.body.get("committer"),
    )
    return 201, fake._commit_json(repo, sha)


def _get_commit(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    if not isinstance(repo.objects.get(call.params["sha"]), Commit):
        raise _not_found()
    return 200, fake._commit_json(repo, call.params["sha"])


def _list_pulls(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    state, head, base = call.query.get("state", "open"), call.query.get("head"), call.query.get("base")
    found = []
    for pull in repo.pulls.values():
        rendered = fake._pull_json(repo, pull)
        if state != "all" and pull.state != state:
            continue
        if head and rendered["head"]["label"] != head:
            continue
        if base and pull.base_ref != base:
            continue
        found.append(rendered)
    return fake._paginate(call, found)


def _create_pull(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    if not fake.actions_can_create_pull_requests:
        raise HttpError(403, ACTIONS_CANNOT_CREATE_PR)
    body = call.body
    owner, _, head_ref = body["head"].rpartition(":")
    if owner not in ("", repo.owner):
        raise _validation_failed("Validation Failed", resource="PullRequest", field="head", code="invalid")
    head_sha, base_sha = repo.branch_sha(head_ref), repo.branch_sha(body["base"])
    if head_sha is None:
        raise _validation_failed("Validation Failed", resource="PullRequest", field="head", code="invalid")
    if base_sha is None:
        raise _validation_failed("Validation Failed", resource="PullRequest", field="base", code="invalid")
    if _is_ancestor(repo, head_sha, base_sha):
        raise _validation_failed(
            "Validation Failed",
            resource="PullRequest",
            code="custom",
            message=f"No commits between {body['base']} and {head_ref}",
        )
    for pull in repo.pulls.values():
        if pull.state == "open" and pull.head_ref == head_ref and pull.fork_full_name is None:
            raise _validation_failed(
                "Validation Failed",
                resource="PullRequest",
                code="custom",
                message=f"A pull request already exists for {repo.owner}:{head_ref}.",
            )
    number = repo.next_number
    repo.next_number += 1
    pull = FakePull(
        number=number,
        id=next(fake._ids),
        node_id=f"PR_fake{number}",
        title=body.get("title", ""),
        body=body.get("body"),
        head_ref=head_ref,
        base_ref=body["base"],
        user=fake.bot_login,
        created_at=fake.now(),
        draft=bool(body.get("draft", False)),
    )
    repo.pulls[number] = pull
    return 201, fake._pull_json(repo, pull)


def _get_pull(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    return 200, fake._pull_json(repo, _pull_or_404(repo, call.params["number"]))


def _update_pull(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = _need(call)
    pull = _pull_or_404(repo, call.params["number"])
    for key in ("title", "body", "state"):
        if key in call.body:
            setattr(pull, key, call.body[key])
    if "base" in call.body:
        pull.base_ref = call.body["base"]
    return 200, fake._pull_json(repo, pull)


def _r(method: str, path: str, operation_id: str, handler: Handler, scope: str | None = None) -> Route:
    return Route(method, re.compile(_REPO + path), operation_id, scope, handler)


ROUTES: tuple[Route, ...] = (
    _r("GET", r"", "repos/get", _get_repo),
    _r("GET", r"/branches/(?P<branch>.+)", "repos/get-branch", _get_branch),
    _r("GET", r"/contents/?(?P<path>.*)", "repos/get-content", _get_content),
    _r("PUT", r"/contents/(?P<path>.+)", "repos/create-or-update-file-contents", _put_content, "contents"),
    _r("POST", r"/statuses/(?P<sha>[0-9a-f]{40})", "repos/create-commit-status", _create_status, "statuses"),
    _r("POST", r"/check-runs", "checks/create", _create_check_run, "checks"),
    _r("GET", r"/issues/(?P<number>\d+)", "issues/get", _get_issue),
    _r("GET", r"/issues/(?P<number>\d+)/comments", "issues/list-comments", _list_comments),
    _r("POST", r"/issues/(?P<number>\d+)/comments", "issues/create-comment", _create_comment, "issues"),
    _r("GET", r"/issues/comments/(?P<comment_id>\d+)", "issues/get-comment", _get_comment),
    _r("PATCH", r"/issues/comments/(?P<comment_id>\d+)", "issues/update-comment", _update_comment, "issues"),
    _r("GET", r"/git/ref/(?P<ref>.+)", "git/get-ref", _get_ref),
    _r("POST", r"/git/refs", "git/create-ref", _create_ref, "contents"),
    _r("PATCH", r"/git/refs/(?P<ref>.+)", "git/update-ref", _update_ref, "contents"),
    _r("POST", r"/git/blobs", "git/create-blob", _create_blob, "contents"),
    _r("GET", r"/git/blobs/(?P<sha>[0-9a-f]{40})", "git/get-blob", _get_blob),
    _r("POST", r"/git/trees", "git/create-tree", _create_tree, "contents"),
    _r("GET", r"/git/trees/(?P<sha>[^/]+)", "git/get-tree", _get_tree),
    _r("POST", r"/git/commits", "git/create-commit", _create_commit, "contents"),
    _r("GET", r"/git/commits/(?P<sha>[0-9a-f]{40})", "git/get-commit", _get_commit),
    _r("GET", r"/pulls", "pulls/list", _list_pulls),
    _r("POST", r"/pulls", "pulls/create", _create_pull, "pull_requests"),
    _r("GET", r"/pulls/(?P<number>\d+)", "pulls/get", _get_pull),
    _r("PATCH", r"/pulls/(?P<number>\d+)", "pulls/update", _update_pull, "pull_requests"),
)


# --------------------------------------------------------------------------------------------
# pytest fixture


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A running fake GitHub with octo-org/octo-repo (branch main, one commit with README.md)."""
    fake = FakeGitHub().start()
    fake.add_repo("octo-org/octo-repo")
    try:
        yield fake
    finally:
        fake.stop()


def main() -> None:
    """Serve a seeded fake (repo + PR #1) until interrupted; print the environment to use."""
    fake = FakeGitHub().start()
    pull = fake.add_pull(fake.add_repo("octo-org/octo-repo"))
    for key, value in fake.env().items():
        print(f"export {key}={value}")
    print(f"# PR #{pull.number} head {fake.repo.head_sha(pull)}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
