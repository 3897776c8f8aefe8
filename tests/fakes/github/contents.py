"""Files by path: the contents API (``GET``/``PUT contents/PATH``) and the raw file links of the
web UI (``/{owner}/{repo}/blob/{commit}/{path}?raw=true``) that mlgate puts in its comments."""

from __future__ import annotations

import base64
import mimetypes
import re
import urllib.parse
from typing import TYPE_CHECKING, Any

from tests.fakes.github.api import Call, HttpError, not_found, route, validation_failed
from tests.fakes.github.git import commit_json
from tests.fakes.github.objects import Blob, Commit, Json, TreeEntry

if TYPE_CHECKING:
    from tests.fakes.github.server import FakeGitHub
    from tests.fakes.github.state import FakeRepo

CONTENTS_MAX_BYTES = 1024 * 1024  # above this the contents API leaves `content` empty


def content_json(fake: FakeGitHub, repo: FakeRepo, path: str, entry: TreeEntry, ref: str) -> Json:
    api = f"{fake.api_url}/repos/{repo.full_name}"
    quoted = urllib.parse.quote(path)
    item: Json = {
        "type": "dir" if entry.type == "tree" else "file",
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": entry.sha,
        "size": 0,
        "url": f"{api}/contents/{quoted}?ref={urllib.parse.quote(ref)}",
        "git_url": f"{api}/git/{entry.type}s/{entry.sha}",
        "html_url": f"{fake.server_url}/{repo.full_name}/blob/{ref}/{quoted}",
        "download_url": None,
    }
    blob = repo.objects.get(entry.sha)
    if isinstance(blob, Blob):
        item["size"] = len(blob.data)
    return item


def get_content(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = call.repo
    ref = call.query.get("ref") or repo.default_branch
    sha = repo.resolve(ref)
    if sha is None:
        raise HttpError(404, f"No commit found for the ref {ref}")
    commit = repo.objects[sha]
    assert isinstance(commit, Commit)
    path = call.params["path"].strip("/")
    entries = dict(repo.walk(commit.tree))
    if path and path not in entries:
        raise not_found()
    if path == "" or entries[path].type == "tree":
        prefix = f"{path}/" if path else ""
        return 200, [
            content_json(fake, repo, p, e, ref)
            for p, e in entries.items()
            if p.startswith(prefix) and "/" not in p[len(prefix) :]
        ]
    item = content_json(fake, repo, path, entries[path], ref)
    blob = repo.objects[entries[path].sha]
    assert isinstance(blob, Blob)
    if len(blob.data) > CONTENTS_MAX_BYTES:
        item.update(content="", encoding="none")
    else:
        item.update(content=base64.encodebytes(blob.data).decode(), encoding="base64")
    return 200, item


def put_content(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = call.repo
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
            raise validation_failed('Invalid request.\n\n"sha" wasn\'t supplied.')
        raise HttpError(409, f"{path} does not match {call.body['sha']}")
    try:
        data = base64.b64decode(call.body["content"], validate=True)
    except ValueError as exc:
        raise validation_failed("content is not valid Base64") from exc
    sha = fake.commit_files(repo, branch, {path: data}, call.body["message"])
    tree = repo.objects[sha]
    assert isinstance(tree, Commit)
    entry = dict(repo.walk(tree.tree))[path]
    return (200 if existing else 201), {
        "content": content_json(fake, repo, path, entry, branch),
        "commit": commit_json(fake, repo, sha),
    }


def raw_file(
    fake: FakeGitHub, method: str, path: str, query: dict[str, str], headers: dict[str, str]
) -> tuple[int, Any]:
    """``/{owner}/{repo}/blob/{commit}/{path}?raw=true``: the file's bytes at that commit."""
    match = re.fullmatch(r"/([^/]+)/([^/]+)/blob/([^/]+)/(.+)", path)
    if method != "GET" or match is None or query.get("raw") != "true":
        raise not_found()
    owner, name, ref, file_path = (urllib.parse.unquote(g) for g in match.groups())
    repo = fake.repos.get(f"{owner}/{name}")
    files = repo.files(ref) if repo is not None and repo.resolve(ref) else {}
    if file_path not in files:
        raise not_found()
    headers["Content-Type"] = mimetypes.guess_type(file_path)[0] or "application/octet-stream"
    return 200, files[file_path]


ROUTES = (
    route("GET", r"/contents/?(?P<path>.*)", "repos/get-content", get_content),
    route("PUT", r"/contents/(?P<path>.+)", "repos/create-or-update-file-contents", put_content, "contents"),
)
