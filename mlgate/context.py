"""The GitHub Actions run we are in: event payload, repository, pull request, file commands.

Built from the environment mapping the runner sets; outside Actions (the local CLI) every field is
empty and publishing is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlgate.errors import MlgateError


class EventPayloadError(MlgateError):
    """Raised when GITHUB_EVENT_PATH names a file that is missing or not JSON."""

    title = "Unreadable event payload"


class PullRequest(BaseModel):
    number: int
    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    is_fork: bool


class RunContext(BaseModel):
    in_actions: bool
    event_name: str | None = None
    event: dict[str, Any] = {}
    repository: str | None = None
    sha: str | None = None
    server_url: str = "https://github.com"
    api_url: str = "https://api.github.com"
    workspace: Path = Path(".")
    output_path: Path | None = None
    summary_path: Path | None = None
    pull_request: PullRequest | None = None

    def in_workspace(self, path: Path) -> Path:
        """Where an input path points: relative paths are relative to the workspace (the checkout)."""
        return path if path.is_absolute() else self.workspace / path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunContext:
        event_path = env.get("GITHUB_EVENT_PATH")
        event: dict[str, Any] = {}
        if event_path:
            try:
                event = json.loads(Path(event_path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise EventPayloadError(f"Cannot read the event payload {event_path}: {exc}") from exc
        return cls(
            in_actions=env.get("GITHUB_ACTIONS") == "true",
            event_name=env.get("GITHUB_EVENT_NAME") or None,
            event=event,
            repository=env.get("GITHUB_REPOSITORY") or None,
            sha=env.get("GITHUB_SHA") or None,
            server_url=(env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
            api_url=(env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
            workspace=Path(env.get("GITHUB_WORKSPACE") or "."),
            output_path=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
            summary_path=Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None,
            pull_request=_pull_request(event),
        )


def _pull_request(event: Mapping[str, Any]) -> PullRequest | None:
    pr = event.get("pull_request")
    if not isinstance(pr, dict):
        return None
    head, base = pr.get("head") or {}, pr.get("base") or {}
    head_repo, base_repo = head.get("repo"), base.get("repo") or {}
    # a fork whose repository was deleted shows as head.repo = null: still a fork
    is_fork = head_repo is None or head_repo.get("full_name") != base_repo.get("full_name")
    return PullRequest(
        number=int(pr["number"]),
        head_sha=str(head.get("sha", "")),
        head_ref=str(head.get("ref", "")),
        base_sha=str(base.get("sha", "")),
        base_ref=str(base.get("ref", "")),
        is_fork=is_fork,
    )
