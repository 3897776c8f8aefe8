"""mlgate.github against the stateful fake GitHub (tests/fakes/github/) over real HTTP.

Assertions are on the fake's state (comments, refs, commits, pulls), never on which methods ran.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import github
import pytest

from mlgate.github.branch_store import BranchStore
from mlgate.github.client import (
    CONTENTS_WRITE,
    PULL_REQUESTS_WRITE,
    GitHubError,
    GitHubPermissionError,
    GitHubRepo,
    NothingToPropose,
    connect,
)
from mlgate.github.comments import upsert_comment
from mlgate.github.pulls import default_branch, upsert_pull_request
from tests.fakes.github import Blob, Commit, FakeGitHub, Tree, TreeEntry, git_sha

REPO = "octo-org/octo-repo"
MARKER = "<!-- mlgate:data-stats:Data report -->"


@pytest.fixture
def gh(fake_github: FakeGitHub) -> Iterator[github.Github]:
    client = connect(fake_github.token, fake_github.api_url, throttle=False)
    yield client
    client.close()


@pytest.fixture
def gh_repo(gh: github.Github, fake_github: FakeGitHub) -> Iterator[GitHubRepo]:
    yield GitHubRepo(gh, REPO, fake_github.server_url)
    # whatever a test did, nothing we sent may be a body GitHub would reject
    assert fake_github.violations == []


@pytest.fixture
def store(gh_repo: GitHubRepo) -> BranchStore:
    return BranchStore(gh_repo)


def png(width: int, height: int, seed: int) -> bytes:
    """A valid RGB PNG written by hand (independent of any image library)."""
    row = bytes((seed * 7 + x * 13) % 256 for x in range(width * 3))
    raw = b"".join(b"\x00" + row for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def fetch(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers["Content-Type"]


def writes(fake: FakeGitHub) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.method != "GET"]


# ---- sticky comment


@pytest.mark.reliability(
    "race", "rerun on a PR whose mlgate comment is past the first 100 comments",
    "that comment is edited, not a second one added"
)
def test_sticky_comment__updates_existing_marker_past_first_page(fake_github: FakeGitHub, gh_repo: GitHubRepo) -> None:
    repo = fake_github.repo
    pull = fake_github.add_pull()
    # 110 comments before the marker: with 100 per page (GitHub's maximum) it sits on page 2
    fake_github.add_comments(repo, pull.number, [f"chatter {i}" for i in range(110)])
    [old] = fake_github.add_comments(repo, pull.number, [f"{MARKER}\nold report"], user="github-actions[bot]")
    fake_github.add_comments(repo, pull.number, [f"more chatter {i}" for i in range(20)])

    url = upsert_comment(gh_repo, pull.number, MARKER, "new report")

    comments = repo.comments_on(pull.number)
    marked = [c for c in comments if c.body.startswith(MARKER)]
    assert len(comments) == 131
    assert [(c.id, c.body) for c in marked] == [(old.id, f"{MARKER}\nnew report")]
    assert url.endswith(f"/{REPO}/pull/{pull.number}#issuecomment-{old.id}")
    pages = [r.query.get("page") for r in fake_github.requests if r.path.endswith("/comments")]
    assert "2" in pages


@pytest.mark.reliability(
    "race", "report posted twice on one PR",
    "the second run edits the first comment; one comment in all"
)
def test_sticky_comment__second_upsert_edits_the_first(fake_github: FakeGitHub, gh_repo: GitHubRepo) -> None:
    pull = fake_github.add_pull()

    first = upsert_comment(gh_repo, pull.number, MARKER, "report one")
    second = upsert_comment(gh_repo, pull.number, MARKER, "report two")

    comments = fake_github.repo.comments_on(pull.number)
    assert [c.body for c in comments] == [f"{MARKER}\nreport two"]
    assert first == second


def test_sticky_comment__mode_new_always_adds_a_comment(fake_github: FakeGitHub, gh_repo: GitHubRepo) -> None:
    pull = fake_github.add_pull()

    upsert_comment(gh_repo, pull.number, MARKER, "run 1", mode="new")
    upsert_comment(gh_repo, pull.number, MARKER, "run 2", mode="new")

    bodies = [c.body for c in fake_github.repo.comments_on(pull.number)]
    assert bodies == [f"{MARKER}\nrun 1", f"{MARKER}\nrun 2"]


@pytest.mark.reliability(
    "race", "PR with two mlgate comments (left by an earlier race), a quote of one and another mode's comment",
    "the newest is edited and the older duplicate deleted; the quote and the other mode's comment are untouched"
)
def test_sticky_comment__edits_newest_marker_and_ignores_quotes(fake_github: FakeGitHub, gh_repo: GitHubRepo) -> None:
    repo = fake_github.repo
    pull = fake_github.add_pull()
    older, newer, quote = fake_github.add_comments(
        repo, pull.number, [f"{MARKER}\nold", f"{MARKER}\nnewer", f"> {MARKER}\n> newer\n\nwhy?"]
    )
    other_marker = fake_github.add_comments(repo, pull.number, ["<!-- mlgate:model-gate:Gate -->\nx"])[0]

    upsert_comment(gh_repo, pull.number, MARKER, "latest")

    bodies = {c.id: c.body for c in repo.comments_on(pull.number)}
    assert older.id not in bodies
    assert bodies == {
        newer.id: f"{MARKER}\nlatest",
        quote.id: quote.body,
        other_marker.id: other_marker.body,
    }


@pytest.mark.reliability(
    "wire", "comment longer than GitHub's 65536 characters",
    "GitHub error naming the limit before anything is posted"
)
def test_sticky_comment__too_long_body_fails_before_posting(fake_github: FakeGitHub, gh_repo: GitHubRepo) -> None:
    pull = fake_github.add_pull()

    with pytest.raises(GitHubError, match="65536"):
        upsert_comment(gh_repo, pull.number, MARKER, "x" * 65536)

    assert fake_github.repo.comments_on(pull.number) == []


# ---- hosted files


def test_host_files__links_resolve_to_the_same_bytes(fake_github: FakeGitHub, store: BranchStore) -> None:
    files = {"histogram.png": png(4, 3, seed=1), "classes.png": png(2, 5, seed=2)}
    main_before = fake_github.repo.branch_sha("main")

    links = store.host_files(files)

    assert links.keys() == files.keys()
    for name, url in links.items():
        digest = hashlib.sha256(files[name]).hexdigest()[:16]
        assert url.startswith(f"{fake_github.server_url}/{REPO}/blob/")
        assert url.endswith(f"/{digest}-{name}?raw=true")
        data, content_type = fetch(url)
        assert data == files[name]
        assert content_type == "image/png"
    [commit_sha] = fake_github.repo.history("mlgate-assets")  # an orphan branch: one root commit
    assert all(f"/blob/{commit_sha}/" in url for url in links.values())
    assert fake_github.repo.branch_sha("main") == main_before


@pytest.mark.reliability("race", "figures hosted again by a rerun", "same links, no new commit, no write request")
def test_host_files__rerun_makes_no_new_commit(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, store: BranchStore
) -> None:
    files = {"histogram.png": png(3, 3, seed=3)}
    first = store.host_files(files)
    writes_after_first = len(writes(fake_github))

    second = BranchStore(gh_repo).host_files(files)  # a rerun: a new process, nothing remembered

    assert second == first
    assert len(fake_github.repo.history("mlgate-assets")) == 1
    assert len(writes(fake_github)) == writes_after_first


def test_host_files__same_bytes_twice_in_one_run_are_uploaded_once(
    fake_github: FakeGitHub, store: BranchStore
) -> None:
    figure = png(3, 3, seed=8)
    first = store.host_files({"histogram.png": figure})
    requests_after_first = len(fake_github.requests)

    again = store.host_files({"histogram.png": figure})

    assert again == first
    assert len(fake_github.requests) == requests_after_first  # not even a read

    more = store.host_files({"histogram.png": figure, "classes.png": png(2, 2, seed=9)})

    later = fake_github.requests[requests_after_first:]
    uploads = [r for r in later if r.method == "POST" and r.path.endswith("/git/blobs")]
    assert len(uploads) == 1  # only the new figure
    assert more["histogram.png"] == first["histogram.png"]
    assert fetch(more["classes.png"])[0] == png(2, 2, seed=9)
    assert len(fake_github.repo.files("mlgate-assets")) == 2


def test_host_files__new_file_is_added_on_top_and_old_links_keep_working(
    fake_github: FakeGitHub, store: BranchStore
) -> None:
    old = store.host_files({"a.png": png(2, 2, seed=4)})
    new = store.host_files({"a.png": png(2, 2, seed=5), "b.png": png(2, 2, seed=6)})

    history = fake_github.repo.history("mlgate-assets")
    assert len(history) == 2
    assert len(fake_github.repo.files("mlgate-assets")) == 3
    assert fetch(old["a.png"])[0] == png(2, 2, seed=4)
    assert fetch(new["a.png"])[0] == png(2, 2, seed=5)
    assert f"/blob/{history[0]}/" in new["b.png"]


def test_raw_link__unknown_file_or_commit_is_404(fake_github: FakeGitHub, store: BranchStore) -> None:
    [url] = store.host_files({"a.png": png(1, 1, seed=7)}).values()
    [commit_sha] = fake_github.repo.history("mlgate-assets")
    unknown_commit = url.replace(commit_sha, "0" * 40)

    for broken in (url.replace("a.png", "b.png"), unknown_commit, url.removesuffix("?raw=true")):
        with pytest.raises(urllib.error.HTTPError) as caught:
            fetch(broken)
        assert caught.value.code == 404
        caught.value.close()


# ---- read_file


def test_read_file__returns_bytes_or_none_when_missing(fake_github: FakeGitHub, store: BranchStore) -> None:
    big = bytes(range(256)) * 5000  # 1.28 MB: the contents API leaves it out, the blob API serves it
    fake_github.commit_files(fake_github.repo, "mlgate-cache", {"stats/a.json": b'{"n": 1}', "big.bin": big}, "c")

    assert store.read_file("mlgate-cache", "stats/a.json") == b'{"n": 1}'
    assert store.read_file("mlgate-cache", "big.bin") == big
    assert store.read_file("mlgate-cache", "stats/missing.json") is None
    assert store.read_file("no-such-branch", "stats/a.json") is None
    with pytest.raises(GitHubError, match="folder"):
        store.read_file("mlgate-cache", "stats")


@pytest.mark.reliability(
    "environment", "`GITHUB_REPOSITORY` not of the form OWNER/NAME",
    "GitHub error asking for OWNER/NAME; the fix names `GITHUB_REPOSITORY`"
)
def test_repo__name_not_owner_slash_name_is_refused(gh: github.Github) -> None:
    with pytest.raises(GitHubError, match="OWNER/NAME") as caught:
        GitHubRepo(gh, "octo-repo", "https://github.com")

    assert "GITHUB_REPOSITORY" in caught.value.hint


def test_default_branch(fake_github: FakeGitHub, gh: github.Github) -> None:
    fake_github.add_repo("octo-org/trunk-repo", default_branch="trunk")

    assert default_branch(GitHubRepo(gh, "octo-org/trunk-repo", fake_github.server_url)) == "trunk"


# ---- pull requests


def test_upsert_pull_request__opens_one_pr_then_updates_it(fake_github: FakeGitHub, gh_repo: GitHubRepo) -> None:
    repo = fake_github.repo
    main = repo.branch_sha("main")
    files = {"models/production.json": b'{"version": "v3"}\n'}

    url = upsert_pull_request(
        gh_repo,
        branch="mlgate/promote",
        base="main",
        title="Promote v3",
        body="gates passed",
        files=files,
        commit_message="Promote model v3",
    )

    [pull] = repo.pulls.values()
    assert url == f"{fake_github.server_url}/{REPO}/pull/{pull.number}"
    assert (pull.head_ref, pull.base_ref, pull.title, pull.body) == (
        "mlgate/promote",
        "main",
        "Promote v3",
        "gates passed",
    )
    head = repo.history("mlgate/promote")
    assert head[1:] == [main]  # one commit on top of main
    assert repo.files("mlgate/promote") == {**repo.files("main"), **files}

    again = upsert_pull_request(
        gh_repo,
        branch="mlgate/promote",
        base="main",
        title="Promote v3 (rerun)",
        body="still passing",
        files=files,
        commit_message="Promote model v3",
    )

    assert again == url
    assert list(repo.pulls) == [pull.number]
    assert (pull.title, pull.body) == ("Promote v3 (rerun)", "still passing")
    assert repo.history("mlgate/promote") == head  # identical content: no new commit

    upsert_pull_request(
        gh_repo,
        branch="mlgate/promote",
        base="main",
        title="Promote v4",
        body="",
        commit_message="Promote model v4",
        files={"models/production.json": b'{"version": "v4"}\n'},
    )

    assert list(repo.pulls) == [pull.number]
    assert repo.history("mlgate/promote")[1:] == head
    assert repo.files("mlgate/promote")["models/production.json"] == b'{"version": "v4"}\n'


@pytest.mark.reliability(
    "race", "promotion PR whose files are already on the base branch",
    "says there is nothing to propose, naming the file; no branch created"
)
def test_upsert_pull_request__files_already_on_base_propose_nothing(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    with pytest.raises(NothingToPropose, match=r"README\.md"):
        upsert_pull_request(
            gh_repo,
            branch="mlgate/promote",
            base="main",
            title="t",
            body="b",
            commit_message="m",
            files={"README.md": fake_github.repo.files("main")["README.md"]},
        )

    assert fake_github.repo.branch_sha("mlgate/promote") is None
    assert fake_github.repo.pulls == {}


# ---- failures


@pytest.mark.parametrize(
    ("action", "permission"),
    [
        (lambda r, n: upsert_comment(r, n, MARKER, "report"), PULL_REQUESTS_WRITE),
        (lambda r, n: BranchStore(r).host_files({"a.png": b"png"}), CONTENTS_WRITE),
        (
            lambda r, n: upsert_pull_request(
                r, branch="b", base="main", title="t", body="", files={"x": b"x"}, commit_message="m"
            ),
            CONTENTS_WRITE,
        ),
    ],
    ids=["comment", "host_files", "pull_request"],
)
@pytest.mark.reliability(
    "fork", "read-only token at the `{id}` step",
    "permission error with GitHub's message; the fix shows `permissions:` with `{permission}`; token not in the "
    "text; nothing posted"
)
def test_read_only_token__raises_permission_error_naming_the_permission(
    fake_github: FakeGitHub, gh_repo: GitHubRepo, action, permission: str
) -> None:
    pull = fake_github.add_pull()
    fake_github.read_only = True

    with pytest.raises(GitHubPermissionError) as caught:
        action(gh_repo, pull.number)

    error = caught.value
    assert error.permission == permission
    assert f"permissions:\n    {permission}" in error.hint
    assert "Resource not accessible by integration" in error.message
    assert fake_github.token not in str(error)
    assert fake_github.repo.comments_on(pull.number) == []


@pytest.mark.reliability(
    "environment", "repository forbids Actions to create pull requests",
    "permission error; the fix names “Allow GitHub Actions to create and approve pull requests”"
)
def test_pull_request_refused_by_repo_setting__hint_names_the_setting(
    fake_github: FakeGitHub, gh_repo: GitHubRepo
) -> None:
    fake_github.actions_can_create_pull_requests = False

    with pytest.raises(GitHubPermissionError) as caught:
        upsert_pull_request(
            gh_repo, branch="b", base="main", title="t", body="", files={"x": b"x"}, commit_message="m"
        )

    assert caught.value.permission == PULL_REQUESTS_WRITE
    assert "Allow GitHub Actions to create and approve pull requests" in caught.value.hint


@pytest.mark.reliability(
    "wire", "GitHub answers 500 to everything",
    "GitHub error within 10 s after the request and 3 retries; token not in the text"
)
def test_server_errors__raise_github_error_within_seconds(fake_github: FakeGitHub, gh_repo: GitHubRepo) -> None:
    pull = fake_github.add_pull()
    fake_github.fail_with(500)
    started = time.monotonic()

    with pytest.raises(GitHubError) as caught:
        upsert_comment(gh_repo, pull.number, MARKER, "report")

    assert time.monotonic() - started < 10
    assert not isinstance(caught.value, GitHubPermissionError)
    assert len(fake_github.requests) == 4  # the request and 3 retries
    assert fake_github.token not in str(caught.value)


@pytest.mark.reliability(
    "wire", "GitHub API unreachable (connection refused)",
    "GitHub error within 10 s; token not in the text"
)
def test_unreachable_server__raises_github_error_within_seconds() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = connect("ghs_secret", f"http://127.0.0.1:{port}/api/v3", throttle=False, backoff_s=0.05)
    started = time.monotonic()

    with pytest.raises(GitHubError) as caught:
        default_branch(GitHubRepo(client, REPO, f"http://127.0.0.1:{port}"))

    client.close()
    assert time.monotonic() - started < 10
    assert "ghs_secret" not in str(caught.value)


@pytest.mark.reliability(
    "environment", "empty `github-token`",
    "refused; the fix shows `github-token: ${{ github.token }}`"
)
def test_connect__empty_token_is_refused_with_the_yaml_that_fixes_it() -> None:
    with pytest.raises(GitHubError) as caught:
        connect("", "https://api.github.com")

    assert "github-token: ${{ github.token }}" in caught.value.hint


# ---- the fake itself


def _post(fake: FakeGitHub, path: str, payload: object) -> int:
    request = urllib.request.Request(
        f"{fake.api_url}{path}",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Authorization": f"token {fake.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def test_fake__rejects_bodies_that_violate_githubs_schema(fake_github: FakeGitHub) -> None:
    pull = fake_github.add_pull()
    comments = f"/repos/{REPO}/issues/{pull.number}/comments"

    assert _post(fake_github, comments, {"bdy": "typo"}) == 422
    assert _post(fake_github, comments, {"body": 42}) == 422
    assert _post(fake_github, f"/repos/{REPO}/git/trees", {"tree": [{"path": "a", "mode": "644"}]}) == 422
    assert _post(fake_github, comments, {"body": "fine"}) == 201

    assert [(v.operation_id, v.message) for v in fake_github.violations] == [
        ("issues/create-comment", "(body): 'body' is a required property"),
        ("issues/create-comment", "body: 42 is not of type 'string'"),
        (
            "git/create-tree",
            "tree/0/mode: '644' is not one of ['100644', '100755', '040000', '160000', '120000']",
        ),
    ]
    assert [c.body for c in fake_github.repo.comments_on(pull.number)] == ["fine"]


def test_fake__wrong_token_is_401(fake_github: FakeGitHub) -> None:
    fake_github.token = "ghs_other"
    client = connect("ghs_wrong", fake_github.api_url, throttle=False)

    with pytest.raises(GitHubError, match="401"):
        default_branch(GitHubRepo(client, REPO, fake_github.server_url))

    client.close()


def test_fake__git_object_ids_match_real_git(tmp_path: Path) -> None:
    blob = Blob(b"hello\n")
    tree = Tree((TreeEntry("hello.txt", "100644", "blob", git_sha(blob)),))
    who = {"name": "A", "email": "a@example.com", "date": "2024-01-01T00:00:00Z"}
    commit = Commit(git_sha(tree), (), "msg\n", who, who)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = {
        **os.environ,
        **{
            f"GIT_{role}_{key}": value
            for role in ("AUTHOR", "COMMITTER")
            for key, value in (("NAME", "A"), ("EMAIL", "a@example.com"), ("DATE", "1704067200 +0000"))
        },
    }

    def git(*args: str, stdin: bytes = b"") -> str:
        done = subprocess.run(
            ["git", "-C", str(tmp_path), *args], input=stdin, capture_output=True, check=True, env=env
        )
        return done.stdout.decode().strip()

    assert git_sha(blob) == git("hash-object", "-w", "--stdin", stdin=blob.data)
    assert git_sha(tree) == git("mktree", stdin=f"100644 blob {git_sha(blob)}\thello.txt\n".encode())
    assert git_sha(commit) == git("commit-tree", git_sha(tree), "-m", "msg")


def test_fake__pull_requests_carry_head_repos_forks_and_deleted_forks(
    fake_github: FakeGitHub, gh: github.Github
) -> None:
    same = fake_github.add_pull()
    fork = fake_github.add_pull(head_ref="patch-1", fork="forker/octo-repo")
    gone = fake_github.add_pull(head_ref="patch-2", fork="ghost/octo-repo", fork_deleted=True)
    repo = gh.get_repo(REPO)

    head = repo.get_pull(same.number).head
    assert (head.repo.full_name, head.repo.fork, head.sha) == (
        REPO,
        False,
        fake_github.repo.branch_sha("feature"),
    )
    head = repo.get_pull(fork.number).head
    assert (head.repo.full_name, head.repo.fork, head.label) == ("forker/octo-repo", True, "forker:patch-1")
    assert repo.get_pull(gone.number).head.repo is None

    event = fake_github.event_payload(fork)
    assert event["pull_request"]["head"]["repo"]["fork"] is True
    assert event["repository"]["full_name"] == REPO
    assert event["number"] == fork.number


def test_fake__graphql_minimize_comment(fake_github: FakeGitHub, gh: github.Github) -> None:
    pull = fake_github.add_pull()
    [seeded] = fake_github.add_comments(fake_github.repo, pull.number, ["old report"])
    comment = gh.get_repo(REPO).get_issue(pull.number).get_comment(seeded.id)

    assert comment.minimize() is True
    assert seeded.minimized is True


def test_fake__contents_api_put_then_get(fake_github: FakeGitHub, gh: github.Github) -> None:
    repo = gh.get_repo(REPO)

    created = repo.create_file("docs/a.txt", "add a", b"one", branch="main")
    repo.update_file("docs/a.txt", "edit a", b"two", created["content"].sha, branch="main")

    assert fake_github.repo.files("main")["docs/a.txt"] == b"two"
    assert base64.b64decode(repo.get_contents("docs/a.txt", ref="main").content) == b"two"  # type: ignore[union-attr]
    assert fake_github.violations == []
