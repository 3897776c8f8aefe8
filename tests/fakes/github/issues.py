"""Issue comments on pull requests: list (paginated), create, get, update."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.github.api import Call, not_found, route, validation_failed
from tests.fakes.github.objects import FakeComment, Json
from tests.fakes.github.pulls import pull_or_404
from tests.fakes.github.repos import user_json

if TYPE_CHECKING:
    from tests.fakes.github.server import FakeGitHub
    from tests.fakes.github.state import FakeRepo

COMMENT_MAX_CHARS = 65536


def comment_json(fake: FakeGitHub, repo: FakeRepo, c: FakeComment) -> Json:
    api = f"{fake.api_url}/repos/{repo.full_name}"
    return {
        "id": c.id,
        "node_id": c.node_id,
        "body": c.body,
        "user": user_json(fake, c.user),
        "url": f"{api}/issues/comments/{c.id}",
        "html_url": f"{fake.server_url}/{repo.full_name}/pull/{c.issue_number}#issuecomment-{c.id}",
        "issue_url": f"{api}/issues/{c.issue_number}",
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "author_association": "NONE",
        "performed_via_github_app": None,
    }


def _check_body(body: str) -> None:
    # GitHub enforces this although its OpenAPI description does not say so
    if len(body) > COMMENT_MAX_CHARS:
        raise validation_failed(
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
    raise not_found()


def list_comments(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    pull = pull_or_404(call.repo, call.params["number"])
    return 200, [comment_json(fake, call.repo, c) for c in call.repo.comments_on(pull.number)]


def create_comment(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    _check_body(call.body["body"])
    comment = fake.new_comment(call.repo, int(call.params["number"]), call.body["body"], fake.bot_login)
    return 201, comment_json(fake, call.repo, comment)


def get_comment(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    return 200, comment_json(fake, call.repo, _comment_or_404(call.repo, call.params["comment_id"]))


def update_comment(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    comment = _comment_or_404(call.repo, call.params["comment_id"])
    _check_body(call.body["body"])
    comment.body = call.body["body"]
    comment.updated_at = fake.now()
    return 200, comment_json(fake, call.repo, comment)


def delete_comment(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    comment = _comment_or_404(call.repo, call.params["comment_id"])
    call.repo.comments.remove(comment)
    return 204, b""


ROUTES = (
    route("GET", r"/issues/(?P<number>\d+)/comments", "issues/list-comments", list_comments, paginated=True),
    route("POST", r"/issues/(?P<number>\d+)/comments", "issues/create-comment", create_comment, "issues"),
    route("GET", r"/issues/comments/(?P<comment_id>\d+)", "issues/get-comment", get_comment),
    route("PATCH", r"/issues/comments/(?P<comment_id>\d+)", "issues/update-comment", update_comment, "issues"),
    route("DELETE", r"/issues/comments/(?P<comment_id>\d+)", "issues/delete-comment", delete_comment, "issues"),
)
