"""Pull requests: list (filtered by state, head and base; paginated), create, get, update. Same-repo
PRs, PRs from forks and from deleted forks (``head.repo`` null)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.github.api import Call, HttpError, not_found, route, validation_failed
from tests.fakes.github.objects import FakePull, Json
from tests.fakes.github.repos import fork_json, repo_json, user_json

if TYPE_CHECKING:
    from tests.fakes.github.server import FakeGitHub
    from tests.fakes.github.state import FakeRepo

ACTIONS_CANNOT_CREATE_PR = "GitHub Actions is not permitted to create or approve pull requests."


def pull_json(fake: FakeGitHub, repo: FakeRepo, p: FakePull) -> Json:
    api = f"{fake.api_url}/repos/{repo.full_name}"
    head_repo: Json | None
    if p.fork_full_name is None:
        head_repo, head_owner = repo_json(fake, repo), repo.owner
    else:
        head_repo = None if p.fork_deleted else fork_json(fake, repo, p.fork_full_name)
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
        "user": user_json(fake, p.user),
        "created_at": p.created_at,
        "updated_at": p.created_at,
        "url": f"{api}/pulls/{p.number}",
        "html_url": f"{fake.server_url}/{repo.full_name}/pull/{p.number}",
        "issue_url": f"{api}/issues/{p.number}",
        "comments_url": f"{api}/issues/{p.number}/comments",
        "statuses_url": f"{api}/statuses/{repo.head_sha(p)}",
        "head": {
            "label": f"{head_owner}:{p.head_ref}",
            "ref": p.head_ref,
            "sha": repo.head_sha(p),
            "repo": head_repo,
            "user": user_json(fake, head_owner),
        },
        "base": {
            "label": f"{repo.owner}:{p.base_ref}",
            "ref": p.base_ref,
            "sha": repo.branch_sha(p.base_ref),
            "repo": repo_json(fake, repo),
            "user": user_json(fake, repo.owner),
        },
    }


def pull_or_404(repo: FakeRepo, number: str) -> FakePull:
    pull = repo.pulls.get(int(number))
    if pull is None:
        raise not_found()
    return pull


def list_pulls(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo = call.repo
    state, head, base = call.query.get("state", "open"), call.query.get("head"), call.query.get("base")
    found = []
    for pull in repo.pulls.values():
        rendered = pull_json(fake, repo, pull)
        if state != "all" and pull.state != state:
            continue
        if head and rendered["head"]["label"] != head:
            continue
        if base and pull.base_ref != base:
            continue
        found.append(rendered)
    return 200, found


def _invalid(field: str) -> HttpError:
    return validation_failed("Validation Failed", resource="PullRequest", field=field, code="invalid")


def _refused(message: str) -> HttpError:
    return validation_failed("Validation Failed", resource="PullRequest", code="custom", message=message)


def create_pull(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    repo, body = call.repo, call.body
    if not fake.actions_can_create_pull_requests:
        raise HttpError(403, ACTIONS_CANNOT_CREATE_PR)
    owner, _, head_ref = body["head"].rpartition(":")
    if owner not in ("", repo.owner):
        raise _invalid("head")
    head_sha, base_sha = repo.branch_sha(head_ref), repo.branch_sha(body["base"])
    if head_sha is None:
        raise _invalid("head")
    if base_sha is None:
        raise _invalid("base")
    if repo.is_ancestor(head_sha, base_sha):
        raise _refused(f"No commits between {body['base']} and {head_ref}")
    for pull in repo.pulls.values():  # GitHub: one open pull request per head and base
        if (pull.state == "open" and pull.head_ref == head_ref and pull.base_ref == body["base"]
                and pull.fork_full_name is None):
            raise _refused(f"A pull request already exists for {repo.owner}:{head_ref}.")
    pull = fake.new_pull(
        repo,
        title=body.get("title", ""),
        body=body.get("body"),
        head_ref=head_ref,
        base_ref=body["base"],
        user=fake.bot_login,
        draft=bool(body.get("draft", False)),
    )
    return 201, pull_json(fake, repo, pull)


def get_pull(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    return 200, pull_json(fake, call.repo, pull_or_404(call.repo, call.params["number"]))


def update_pull(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    pull = pull_or_404(call.repo, call.params["number"])
    for key in ("title", "body", "state"):
        if key in call.body:
            setattr(pull, key, call.body[key])
    if "base" in call.body:
        pull.base_ref = call.body["base"]
    return 200, pull_json(fake, call.repo, pull)


ROUTES = (
    route("GET", r"/pulls", "pulls/list", list_pulls, paginated=True),
    route("POST", r"/pulls", "pulls/create", create_pull, "pull_requests"),
    route("GET", r"/pulls/(?P<number>\d+)", "pulls/get", get_pull),
    route("PATCH", r"/pulls/(?P<number>\d+)", "pulls/update", update_pull, "pull_requests"),
)
