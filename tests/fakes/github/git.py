"""The git data API: refs, blobs, trees and commits, with the object ids real git gives them."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from tests.fakes.github.api import Call, not_found, route, validation_failed
from tests.fakes.github.objects import Blob, Commit, Json, Tree

if TYPE_CHECKING:
    from tests.fakes.github.server import FakeGitHub
    from tests.fakes.github.state import FakeRepo


def commit_json(fake: FakeGitHub, repo: FakeRepo, sha: str) -> Json:
    c = repo.objects[sha]
    assert isinstance(c, Commit)
    api = f"{fake.api_url}/repos/{repo.full_name}/git"
    return {
        "sha": sha,
        "node_id": f"C_{sha}",
        "url": f"{api}/commits/{sha}",
        "html_url": f"{fake.server_url}/{repo.full_name}/commit/{sha}",
        "author": c.author,
        "committer": c.committer,
        "message": c.message,
        "tree": {"sha": c.tree, "url": f"{api}/trees/{c.tree}"},
        "parents": [
            {
                "sha": p,
                "url": f"{api}/commits/{p}",
                "html_url": f"{fake.server_url}/{repo.full_name}/commit/{p}",
            }
            for p in c.parents
        ],
        "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
    }


def tree_json(fake: FakeGitHub, repo: FakeRepo, sha: str, recursive: bool) -> Json:
    api = f"{fake.api_url}/repos/{repo.full_name}/git"
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


def ref_json(fake: FakeGitHub, repo: FakeRepo, ref: str) -> Json:
    api = f"{fake.api_url}/repos/{repo.full_name}/git"
    sha = repo.refs[ref]
    return {
        "ref": ref,
        "node_id": f"REF_{ref}",
        "url": f"{api}/refs/{ref.removeprefix('refs/')}",
        "object": {"sha": sha, "type": "commit", "url": f"{api}/commits/{sha}"},
    }


# ---- refs


def get_ref(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    ref = f"refs/{call.params['ref']}"
    if ref not in call.repo.refs:
        raise not_found()
    return 200, ref_json(fake, call.repo, ref)


def create_ref(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = call.repo
    ref, sha = call.body["ref"], call.body["sha"]
    if not ref.startswith("refs/") or ref.count("/") < 2:
        raise validation_failed(f"{ref} is not a valid ref name.")
    if ref in repo.refs:
        raise validation_failed("Reference already exists")
    if not isinstance(repo.objects.get(sha), Commit):
        raise validation_failed("Object does not exist")
    repo.refs[ref] = sha
    return 201, ref_json(fake, repo, ref)


def update_ref(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = call.repo
    ref, sha = f"refs/{call.params['ref']}", call.body["sha"]
    if ref not in repo.refs:
        raise validation_failed("Reference does not exist")
    if not isinstance(repo.objects.get(sha), Commit):
        raise validation_failed("Object does not exist")
    if not call.body.get("force") and not repo.is_ancestor(repo.refs[ref], sha):
        raise validation_failed("Update is not a fast forward")
    repo.refs[ref] = sha
    return 200, ref_json(fake, repo, ref)


# ---- blobs


def create_blob(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = call.repo
    encoding = call.body.get("encoding", "utf-8")
    if encoding == "base64":
        try:
            data = base64.b64decode(call.body["content"], validate=True)
        except ValueError as exc:
            raise validation_failed("content is not valid Base64") from exc
    elif encoding in ("utf-8", "utf8"):
        data = call.body["content"].encode()
    else:
        raise validation_failed(f"encoding must be utf-8 or base64, not {encoding}")
    sha = repo.store(Blob(data))
    return 201, {"sha": sha, "url": f"{fake.api_url}/repos/{repo.full_name}/git/blobs/{sha}"}


def get_blob(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = call.repo
    sha = call.params["sha"]
    blob = repo.objects.get(sha)
    if not isinstance(blob, Blob):
        raise not_found()
    return 200, {
        "sha": sha,
        "node_id": f"B_{sha}",
        "size": len(blob.data),
        "encoding": "base64",
        "content": base64.encodebytes(blob.data).decode(),
        "url": f"{fake.api_url}/repos/{repo.full_name}/git/blobs/{sha}",
    }


# ---- trees


def create_tree(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = call.repo
    flat: dict[str, tuple[str, str, str]] = {}
    if "base_tree" in call.body:
        if not isinstance(repo.objects.get(call.body["base_tree"]), Tree):
            raise validation_failed("Invalid tree info", field="base_tree")
        flat = repo.flat_files(call.body["base_tree"])
    for item in call.body["tree"]:
        path = item.get("path", "")
        if not path or path.startswith("/") or path.endswith("/"):
            raise validation_failed(f"tree.path contains a malformed path component: {path!r}")
        if "sha" in item and "content" in item:
            raise validation_failed("Must supply either tree.sha or tree.content, not both")
        if "content" in item:
            flat[path] = (item["mode"], "blob", repo.store(Blob(item["content"].encode())))
        elif item.get("sha") is None:
            # sha null deletes the path (a file, or every file below a folder)
            doomed = [p for p in flat if p == path or p.startswith(f"{path}/")]
            if not doomed:
                raise validation_failed(f"tree.path {path} does not exist and cannot be deleted")
            for p in doomed:
                del flat[p]
        else:
            obj = repo.objects.get(item["sha"])
            if item["type"] == "blob" and not isinstance(obj, Blob):
                raise validation_failed(f"tree.sha {item['sha']} is not a valid blob")
            if item["type"] == "tree":
                if not isinstance(obj, Tree):
                    raise validation_failed(f"tree.sha {item['sha']} is not a valid tree")
                for p in [p for p in flat if p.startswith(f"{path}/")]:
                    del flat[p]
                flat.update({f"{path}/{p}": v for p, v in repo.flat_files(item["sha"]).items()})
            else:
                flat[path] = (item["mode"], item["type"], item["sha"])
    sha = repo.build_tree(flat)
    return 201, tree_json(fake, repo, sha, recursive=False)


def get_tree(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = call.repo
    sha = call.params["sha"]
    if not isinstance(repo.objects.get(sha), Tree):
        commit = repo.objects.get(repo.resolve(sha) or "")
        if not isinstance(commit, Commit):
            raise not_found()
        sha = commit.tree
    recursive = call.query.get("recursive", "") not in ("", "0", "false")
    return 200, tree_json(fake, repo, sha, recursive=recursive)


# ---- commits


def create_commit(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = call.repo
    if not isinstance(repo.objects.get(call.body["tree"]), Tree):
        raise validation_failed("Tree SHA does not exist")
    parents = call.body.get("parents", [])
    if any(not isinstance(repo.objects.get(p), Commit) for p in parents):
        raise validation_failed("Parent SHA does not exist or is not a commit object")
    sha = fake.store_commit(
        repo,
        call.body["tree"],
        parents,
        call.body["message"],
        call.body.get("author"),
        call.body.get("committer"),
    )
    return 201, commit_json(fake, repo, sha)


def get_commit(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    if not isinstance(call.repo.objects.get(call.params["sha"]), Commit):
        raise not_found()
    return 200, commit_json(fake, call.repo, call.params["sha"])


ROUTES = (
    route("GET", r"/git/ref/(?P<ref>.+)", "git/get-ref", get_ref),
    route("POST", r"/git/refs", "git/create-ref", create_ref, "contents"),
    route("PATCH", r"/git/refs/(?P<ref>.+)", "git/update-ref", update_ref, "contents"),
    route("POST", r"/git/blobs", "git/create-blob", create_blob, "contents"),
    route("GET", r"/git/blobs/(?P<sha>[0-9a-f]{40})", "git/get-blob", get_blob),
    route("POST", r"/git/trees", "git/create-tree", create_tree, "contents"),
    route("GET", r"/git/trees/(?P<sha>[^/]+)", "git/get-tree", get_tree),
    route("POST", r"/git/commits", "git/create-commit", create_commit, "contents"),
    route("GET", r"/git/commits/(?P<sha>[0-9a-f]{40})", "git/get-commit", get_commit),
)
