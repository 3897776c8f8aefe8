"""The external systems a run talks to, built in one place and handed to the mode.

``mlgate.cli`` builds :class:`Clients` from the settings and the run context; a test builds the
same object around fakes (a PyGithub client pointed at the fake GitHub, an in-memory registry, a
DVC runner in a temporary repository), so the path under test is the production path. Nothing
here talks to a service yet: PyGithub's client is lazy, the registry is a factory called only when
a W&B model is involved, and the DVC runner runs nothing until asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlgate.context import RunContext
from mlgate.model.registry import connect_wandb
from mlgate.settings import CommonSettings

if TYPE_CHECKING:
    from mlgate.data.dvc import DvcRunner
    from mlgate.github.client import GitHubRepo
    from mlgate.model.registry import RegistryFactory

NOT_IN_ACTIONS = "not running in GitHub Actions"


@dataclasses.dataclass(frozen=True)
class Clients:
    github: GitHubRepo | None
    """The repository the run belongs to; None when GitHub may not be written (see ``github_blocked``)."""
    github_blocked: str
    """Why there is no GitHub client (fork PR, no token, not in Actions); empty when there is one."""
    dvc: DvcRunner
    """``dvc`` and ``git`` in the workspace."""
    registry: RegistryFactory
    """Builds the model registry client; called only when a model lives in the registry."""
    env: Mapping[str, str]

    @classmethod
    def for_run(cls, settings: CommonSettings, ctx: RunContext, env: Mapping[str, str]) -> Clients:
        # local: pulls in yaml; only runs that read DVC need it
        from mlgate.data.dvc import DvcRunner

        repo, blocked = connect_github(settings, ctx)
        return cls(github=repo, github_blocked=blocked, dvc=DvcRunner(ctx.workspace, env),
                   registry=connect_wandb, env=env)


def connect_github(settings: CommonSettings, ctx: RunContext) -> tuple[GitHubRepo | None, str]:
    """The repository client, or None and why GitHub is not written in this run."""
    pr = ctx.pull_request
    if not ctx.in_actions or not ctx.repository:
        return None, NOT_IN_ACTIONS
    if settings.github_token is None:
        return None, ("no `github-token` was given (pass `github-token: ${{ github.token }}`, with "
                      "`permissions: pull-requests: write`, to comment on the pull request)")
    if pr is not None and pr.is_fork:
        return None, ("this pull request comes from a fork, where `GITHUB_TOKEN` is read-only "
                      "(no `pull-requests: write`, no `contents: write`)")
    # local: PyGithub is slow to import; only talking to GitHub needs it
    from mlgate.github.client import GitHubRepo, connect

    gh = connect(settings.github_token.get_secret_value(), ctx.api_url)
    return GitHubRepo(gh, ctx.repository, ctx.server_url), ""
