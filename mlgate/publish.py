"""Where a report goes: local files, the job summary, outputs, and one sticky PR comment.

Shared by every mode. Publishing never formats numbers: it gets finished Markdown. A missing
permission (fork PR, read-only token) never fails the step: the report still reaches the job
summary, with a ``::warning::`` that names the permission.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mlgate import workflow
from mlgate.context import RunContext
from mlgate.report import COMMENT_LIMIT, SUMMARY_LIMIT, fit
from mlgate.settings import CommonSettings

if TYPE_CHECKING:
    from mlgate.github import Publisher


@dataclasses.dataclass(frozen=True)
class ReportPaths:
    markdown: Path
    json: Path


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target and rename, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def workspace_relative(path: Path, root: Path) -> str:
    """How a later workflow step (or the user) finds ``path``: relative to the workspace when inside it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def write_report_files(out_dir: Path, markdown: str, json_text: str, pngs: Mapping[str, bytes]) -> ReportPaths:
    """``report.md``, the figures, and ``report.json`` last (its presence means the set is complete)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in pngs.items():
        _write_atomic(out_dir / f"{name}.png", png)
    paths = ReportPaths(markdown=out_dir / "report.md", json=out_dir / "report.json")
    _write_atomic(paths.markdown, markdown.encode("utf-8"))
    _write_atomic(paths.json, json_text.encode("utf-8"))
    return paths


@dataclasses.dataclass(frozen=True)
class Publication:
    """What this run may publish, decided once from the settings and the run context."""

    publisher: Publisher | None
    pr_number: int | None
    comment: Literal["update", "new", "off"]
    marker: str
    host: bool
    assets_branch: str
    blocked: str = ""
    """Why GitHub writes are skipped (fork PR, no token); empty when they are allowed."""

    @classmethod
    def for_run(cls, settings: CommonSettings, ctx: RunContext) -> Publication:
        marker = f"<!-- mlgate:{settings.mode}:{settings.report_title} -->"
        pr = ctx.pull_request
        blocked = ""
        publisher = None
        if not ctx.in_actions or not ctx.repository:
            blocked = "not running in GitHub Actions"
        elif settings.github_token is None:
            blocked = "no `github-token`"
        elif pr is not None and pr.is_fork:
            blocked = ("this pull request comes from a fork, where `GITHUB_TOKEN` is read-only "
                       "(no `pull-requests: write`, no `contents: write`)")
        else:
            from mlgate.github import Publisher, connect

            gh = connect(settings.github_token.get_secret_value(), ctx.api_url)
            publisher = Publisher(gh, ctx.repository, ctx.server_url)
        return cls(
            publisher=publisher,
            pr_number=pr.number if pr else None,
            comment=settings.comment,
            marker=marker,
            host=settings.host_figures,
            assets_branch=settings.assets_branch,
            blocked=blocked,
        )

    def without_comment(self) -> Publication:
        return dataclasses.replace(self, comment="off")

    def host_figures(self, files: Mapping[str, bytes]) -> tuple[dict[str, str], str]:
        """Links to figures committed to the assets branch, or ({}, a one-line note why not)."""
        if not files:
            return {}, ""
        if not self.host:
            return {}, "Figures are not hosted (`host-figures: false`); they are in the report folder."
        if self.publisher is None:
            if self.blocked == "not running in GitHub Actions":
                return {}, ""
            return {}, f"Figures are not hosted: {self.blocked}. They are in the report folder."
        from mlgate.github import GitHubError, GitHubPermissionError

        try:
            return self.publisher.host_files(files, branch=self.assets_branch), ""
        except GitHubPermissionError as exc:
            workflow.annotate("warning", "Figures not hosted", exc.message)
            return {}, f"Figures are not hosted: the token lacks `{exc.permission}`."
        except GitHubError as exc:
            workflow.annotate("warning", "Figures not hosted", exc.message)
            return {}, "Figures are not hosted: GitHub refused the upload (see the run's warnings)."


def publish(publication: Publication, ctx: RunContext, markdown: str, *, outputs: Mapping[str, str]) -> None:
    """Comment (when on a PR and allowed), job summary, and step outputs, in that order."""
    comment_url = ""
    if publication.comment != "off" and publication.pr_number is not None:
        comment_url = _comment(publication, markdown)
    workflow.append_summary(ctx.summary_path, fit(markdown, SUMMARY_LIMIT - 1024, "See report.md."))
    workflow.set_outputs(ctx.output_path, {**outputs, "comment-url": comment_url})


def _comment(publication: Publication, markdown: str) -> str:
    if publication.publisher is None:
        if publication.blocked and publication.blocked != "not running in GitHub Actions":
            workflow.annotate("warning", "No PR comment",
                              f"The report is in the job summary only: {publication.blocked}.")
        return ""
    from mlgate.github import GitHubError, GitHubPermissionError

    body = fit(markdown, COMMENT_LIMIT - len(publication.marker) - 64,
               "The full report is in the job summary of this run.")
    assert publication.pr_number is not None
    try:
        return publication.publisher.upsert_comment(
            publication.pr_number, publication.marker, body, mode="new" if publication.comment == "new" else "update"
        )
    except GitHubPermissionError as exc:
        workflow.annotate("warning", "No PR comment",
                          f"The report is in the job summary only: the token lacks `{exc.permission}`. "
                          f"{exc.message}")
    except GitHubError as exc:
        workflow.annotate("warning", "No PR comment", f"The report is in the job summary only: {exc.message}")
    return ""
