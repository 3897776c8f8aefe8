"""The resource records the fake GitHub holds: git objects with the ids real git gives them, issue
comments and pull requests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Json = dict[str, Any]


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
class FakeCheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    title: str
    summary: str
    text: str
    annotations: list[Json]  # GitHub appends the annotations of each update to the earlier ones
    app: str  # the app that created it: github-actions for GITHUB_TOKEN
    started_at: str
    completed_at: str | None
