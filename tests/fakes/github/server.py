"""The HTTP server: routing to the handler modules, authentication and permissions, request body
validation, ``Link`` pagination, failure injection; the ``fake_github`` fixture and a standalone
``main``."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.faults import Fault, FaultQueues
from tests.fakes.github import checks, contents, git, issues, pulls, repos
from tests.fakes.github.api import NOT_ACCESSIBLE, Call, HttpError, Route, not_found
from tests.fakes.github.graphql import graphql
from tests.fakes.github.objects import FakePull, Json
from tests.fakes.github.schema import SchemaViolation, body_problem
from tests.fakes.github.state import FakeRepo, GitHubState

EVENTS_DIR = Path(__file__).parents[2] / "fixtures" / "events"
API_PREFIX = "/api/v3"
GRAPHQL_PATH = "/api/graphql"
SCOPES = ("contents", "pull_requests", "issues", "checks")
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
RETRY_ENV = {"MLGATE_RETRY_BUDGET_S": "4", "MLGATE_RETRY_BACKOFF_S": "0.05", "MLGATE_HTTP_TIMEOUT_S": "1"}
"""mlgate.github.client's retry knobs, small: a test of exhausted retries takes a second, not a minute."""

ROUTES: tuple[Route, ...] = (*repos.ROUTES, *contents.ROUTES, *issues.ROUTES, *git.ROUTES, *pulls.ROUTES,
                             *checks.ROUTES)


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the query string, e.g. /api/v3/repos/o/r/issues/1/comments
    query: dict[str, str]
    body: Any  # parsed JSON, raw bytes when not JSON, None when empty
    status: int = 0


@dataclass
class _Meeting:
    method: str
    pattern: re.Pattern[str]
    parties: int
    timeout: float
    arrived: int = 0
    all_here: threading.Event = field(default_factory=threading.Event)


class FakeGitHub(GitHubState):
    """The fake's state and switches; start() serves it on 127.0.0.1 at a free port."""

    def __init__(self, token: str = "ghs_fakeTokenForTests0123456789abcdef") -> None:
        super().__init__()
        self.token = token
        self.requests: list[RecordedRequest] = []
        self.violations: list[SchemaViolation] = []
        self.permissions: dict[str, str] = dict.fromkeys(SCOPES, "write")
        self.actions_can_create_pull_requests = True
        self._failure: tuple[int, int | None] | None = None  # (status, remaining or None = forever)
        self.faults = FaultQueues()
        self._hooks: list[tuple[str, re.Pattern[str], Callable[[], None]]] = []
        self._meetings: list[_Meeting] = []
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
            **RETRY_ENV,
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
        self.faults.clear()

    def inject(self, method: str, path: str, *faults: Fault) -> None:
        """Queue ``faults`` (tests/fakes/faults.py) for requests ``method`` (or "*") whose path below
        ``/api/v3`` fully matches the regex ``path``: each such request takes the next one, then the
        route answers normally again. E.g. three 502s, then success::

            fake.inject("POST", r"/repos/o/r/issues/\\d+/comments", *[server_error(502)] * 3)
        """
        self.faults.add(method, path, faults)

    def before(self, method: str, path: str, hook: Callable[[], None]) -> None:
        """Run ``hook`` (once, under the state lock) just before the next ``method`` request whose
        path below ``/api/v3`` fully matches ``path`` is handled: a concurrent actor acting between
        two requests of the code under test (e.g. another run posting its comment)."""
        with self.lock:
            self._hooks.append((method.upper(), re.compile(path), hook))

    def rendezvous(self, method: str, path: str, parties: int = 2, timeout: float = 20) -> None:
        """Hold the first ``parties`` ``method`` requests whose path below ``/api/v3`` fully matches
        ``path`` until all of them have arrived (or ``timeout`` seconds passed), then answer them
        together; later ones pass. Two runs then both list open pull requests before either creates
        one: the race of two concurrent jobs, forced on every try instead of left to timing."""
        with self.lock:
            self._meetings.append(_Meeting(method.upper(), re.compile(path), parties, timeout))

    # ---- event payloads

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
        payload["repository"] = repos.repo_json(self, repo)
        pr = payload["pull_request"]
        rendered = pulls.pull_json(self, repo, pull)
        for key in ("number", "id", "node_id", "title", "body", "url", "html_url", "state", "head", "base"):
            pr[key] = rendered[key]
        return payload

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
        api_path = split.path.removeprefix(API_PREFIX)
        self._meet(http.command, api_path)
        fault = self.faults.take(http.command, api_path)
        with self.lock:
            self.requests.append(record)
            if fault is not None and fault.kind == "reset" and not fault.after:
                return _drop(http)
            if fault is not None and fault.kind == "status":
                status, payload = fault.status, HttpError(fault.status, fault.message).payload
                headers.update(fault.headers())
            else:
                self._run_hooks(http.command, api_path)
                try:
                    status, payload = self._dispatch(http, split.path, query, raw, body, headers)
                except HttpError as exc:
                    status, payload = exc.status, exc.payload
            record.status = status
        if fault is not None and fault.kind == "reset":
            return _drop(http)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        if isinstance(payload, bytes):
            data = payload
            headers.setdefault("Content-Type", "application/octet-stream")
        else:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            http.send_response(status)
            for name, value in headers.items():
                http.send_header(name, value)
            http.send_header("Content-Length", str(len(data)))
            http.end_headers()
            http.wfile.write(data)
        except OSError:  # the client gave up waiting (a slow reply)
            http.close_connection = True

    def _meet(self, method: str, api_path: str) -> None:
        waits = []
        with self.lock:
            for meeting in self._meetings:
                if (meeting.method == method and meeting.pattern.fullmatch(api_path)
                        and meeting.arrived < meeting.parties):
                    meeting.arrived += 1
                    if meeting.arrived == meeting.parties:
                        meeting.all_here.set()
                    waits.append(meeting)
        for meeting in waits:  # outside the lock: the others must get in
            meeting.all_here.wait(meeting.timeout)

    def _run_hooks(self, method: str, api_path: str) -> None:
        for entry in list(self._hooks):
            hook_method, pattern, hook = entry
            if hook_method in (method, "*") and pattern.fullmatch(api_path):
                self._hooks.remove(entry)
                hook()

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
            return contents.raw_file(self, http.command, path, query, headers)
        if self._failure is not None:
            status, remaining = self._failure
            if remaining is not None:
                self._failure = (status, remaining - 1) if remaining > 1 else None
            raise HttpError(status, "Server Error")
        auth = http.headers.get("Authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            raise HttpError(401, "Bad credentials")
        if path == GRAPHQL_PATH:
            return graphql(self, body)
        route, match = _route(http.command, path.removeprefix(API_PREFIX))
        if http.command in WRITE_METHODS and not (http.command == "DELETE" and body is None):
            if isinstance(body, bytes) or (raw and not isinstance(body, dict)):
                self._violate(http.command, path, route.operation_id, "Problems parsing JSON")
                raise HttpError(400, "Problems parsing JSON")
            self._validate(http.command, path, route.operation_id, body)
        params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
        repo = self.repos.get(f"{params.get('owner')}/{params.get('repo')}")
        if repo is None:
            raise not_found()
        if http.command in WRITE_METHODS and route.scope is not None:
            self._authorize(route.scope)
        call = Call(repo, params, query, body, f"http://{http.headers.get('Host', '')}{path}", headers)
        status, payload = route.handler(self, call)
        return _paginate(call, payload) if route.paginated else (status, payload)

    def _violate(self, method: str, path: str, operation_id: str, message: str) -> None:
        self.violations.append(SchemaViolation(method, path, operation_id, message))

    def _validate(self, method: str, path: str, operation_id: str, body: Any) -> None:
        problem = body_problem(operation_id, body)
        if problem is not None:
            self._violate(method, path, operation_id, problem)
            raise HttpError(422, "Invalid request.\n\n" + ("No body was supplied." if body is None else problem))

    def _authorize(self, scope: str) -> None:
        granted = self.permissions.get(scope) == "write"
        if scope == "issues" and not granted:
            # a comment on a pull request is allowed with either scope
            granted = self.permissions.get("pull_requests") == "write"
        if not granted:
            raise HttpError(403, NOT_ACCESSIBLE)


def _drop(http: BaseHTTPRequestHandler) -> None:
    """Close the connection without an answer (the client sees a reset / remote disconnect)."""
    http.close_connection = True
    with contextlib.suppress(OSError):
        http.connection.shutdown(socket.SHUT_RDWR)


def _route(method: str, path: str) -> tuple[Route, re.Match[str]]:
    for route in ROUTES:
        if route.method == method and (match := route.pattern.fullmatch(path)):
            return route, match
    raise not_found()


def _paginate(call: Call, items: list[Json]) -> tuple[int, Any]:
    """One page of ``items`` as GitHub serves it (``per_page`` <= 100, default 30), with ``Link``
    naming the next, last, previous and first pages (a client that ignores it stops at page one)."""
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


@pytest.fixture
def fake_github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A running fake GitHub with octo-org/octo-repo (branch main, one commit with README.md); the
    client's retry budget is made small (RETRY_ENV) for in-process clients too."""
    for name, value in RETRY_ENV.items():
        monkeypatch.setenv(name, value)
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
