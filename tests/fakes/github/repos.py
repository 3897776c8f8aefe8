"""``GET /repos/{owner}/{repo}``, and the user and repository JSON every other answer embeds.

Every absolute URL in an answer uses the fake's own host:port (PyGithub asserts on that)."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from tests.fakes.github.api import Call, route
from tests.fakes.github.objects import Json

if TYPE_CHECKING:
    from tests.fakes.github.server import FakeGitHub
    from tests.fakes.github.state import FakeRepo


def user_json(fake: FakeGitHub, login: str) -> Json:
    is_bot = login.endswith("[bot]")
    return {
        "login": login,
        "id": 41898282 if is_bot else abs(hash(login)) % 10**7,
        "node_id": f"U_{login}",
        "type": "Bot" if is_bot else "User",
        "site_admin": False,
        "url": f"{fake.api_url}/users/{urllib.parse.quote(login)}",
        "html_url": f"{fake.server_url}/{urllib.parse.quote(login)}",
    }


def repo_json(fake: FakeGitHub, repo: FakeRepo) -> Json:
    api = f"{fake.api_url}/repos/{repo.full_name}"
    return {
        "id": repo.id,
        "node_id": f"R_fake{repo.id}",
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": user_json(fake, repo.owner),
        "private": repo.private,
        "fork": False,
        "visibility": "private" if repo.private else "public",
        "html_url": f"{fake.server_url}/{repo.full_name}",
        "url": api,
        "pulls_url": f"{api}/pulls{{/number}}",
        "default_branch": repo.default_branch,
        "permissions": {"admin": False, "push": True, "pull": True},
    }


def fork_json(fake: FakeGitHub, repo: FakeRepo, fork_full_name: str) -> Json:
    owner, name = fork_full_name.split("/")
    return {
        **repo_json(fake, repo),
        "id": repo.id + 1,
        "node_id": f"R_fork{repo.id}",
        "name": name,
        "full_name": fork_full_name,
        "owner": user_json(fake, owner),
        "fork": True,
        "html_url": f"{fake.server_url}/{fork_full_name}",
        "url": f"{fake.api_url}/repos/{fork_full_name}",
    }


def get_repo(fake: FakeGitHub, call: Call) -> tuple[int, Any]:
    return 200, repo_json(fake, call.repo)


ROUTES = (route("GET", r"", "repos/get", get_repo),)
