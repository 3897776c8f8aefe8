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

What it models (what mlgate sends, plus what the fake's own tests in
tests/integration/test_github.py exercise; ``github_openapi.json`` lists the operations), one
module per API area:

- ``issues``: issue comments on pull requests, with ``Link`` pagination;
- ``git``: blobs/trees/commits/refs with real git object ids (so ``sha1("blob N\\0" + data)``
  computed locally matches);
- ``contents``: the contents API, and raw file links ``/{owner}/{repo}/blob/{commit}/{path}?raw=true``;
- ``pulls``: pull requests (with ``head``/``base`` repos, forks, deleted forks);
- ``checks``: check runs (create, update; ``checks: write``), in ``repo.check_runs``;
- ``repos``: the repository itself; ``graphql``: the ``minimizeComment`` mutation.

The rest: ``objects`` (the resource records), ``state`` (repositories and the seeding factory),
``schema`` (request bodies checked against GitHub's OpenAPI description), ``api`` (what handlers
share), ``server`` (HTTP, routing, auth, pagination, the ``fake_github`` fixture).

Every request is recorded (``fake.requests``). Every JSON body is validated against GitHub's own
OpenAPI schema for that operation (cut by ``cut_github_openapi.py``); a body GitHub would reject is
answered 422 and recorded in ``fake.violations``. Switches: ``fake.read_only = True`` (every write
403 "Resource not accessible by integration", as for a fork PR's token), ``fake.permissions[...]``
per scope, ``fake.actions_can_create_pull_requests``, and ``fake.fail_with(500)``.

Faults on the wire (tests/fakes/faults.py), queued per route and served in order, so runs are
deterministic: ``fake.inject("POST", r"/repos/o/r/issues/\\d+/comments", server_error(502), reset())``
(5xx, ``secondary_rate_limit(retry_after=...)``, ``too_many_requests(...)``, ``reset(after=...)``,
``slow(delay)``); ``fake.before(method, path, hook)`` runs ``hook()`` once just before such a request
is handled (another run acting between two of ours). ``fake.heal()`` clears both kinds of failure.
The ``fake_github`` fixture (and ``fake.env()``) set mlgate's retry budget small (``RETRY_ENV``).

From a subprocess: ``env = {**os.environ, **fake_github.env()}``. Standalone (e.g. for a container
test): ``python -m tests.fakes.github`` prints the environment and serves until interrupted.
"""

from __future__ import annotations

from tests.fakes.github.objects import Blob, Commit, FakeComment, FakePull, Tree, TreeEntry, git_sha
from tests.fakes.github.schema import SchemaViolation
from tests.fakes.github.server import FakeGitHub, RecordedRequest
from tests.fakes.github.state import FakeRepo

__all__ = [
    "Blob",
    "Commit",
    "FakeComment",
    "FakeGitHub",
    "FakePull",
    "FakeRepo",
    "RecordedRequest",
    "SchemaViolation",
    "Tree",
    "TreeEntry",
    "git_sha",
]
