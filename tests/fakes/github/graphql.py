"""``POST /api/graphql``: only the ``minimizeComment`` mutation (how a sticky-comment tool hides an
outdated report). GraphQL answers 200 with ``errors`` where REST would answer 4xx."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.github.api import NOT_ACCESSIBLE

if TYPE_CHECKING:
    from tests.fakes.github.server import FakeGitHub


def graphql(fake: FakeGitHub, body: Any) -> tuple[int, Any]:
    query = body.get("query", "") if isinstance(body, dict) else ""
    if "minimizeComment" not in query:
        return 200, {"errors": [{"message": "the fake GitHub only knows minimizeComment"}]}
    if fake.permissions.get("pull_requests") != "write" and fake.permissions.get("issues") != "write":
        return 200, {"errors": [{"type": "FORBIDDEN", "message": NOT_ACCESSIBLE}]}
    node_id = body.get("variables", {}).get("input", {}).get("subjectId")
    for repo in fake.repos.values():
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
