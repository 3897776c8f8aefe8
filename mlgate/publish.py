"""Where a report goes: local files, hosted figures, one sticky PR comment, a check run, the job summary,
outputs.

Every mode ends in :func:`finish`, handing it a :class:`Finished` report: its JSON, a function that
renders its Markdown for given figure links, its figures and its outputs. ``finish`` is the only
code that writes them anywhere. It never formats numbers: it gets finished Markdown. A missing
permission (fork PR, read-only token) never fails the step: the report still reaches the job
summary, with a ``::warning::`` that names the permission.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mlgate import __version__, workflow
from mlgate.clients import NOT_IN_ACTIONS, Clients
from mlgate.context import RunContext
from mlgate.errors import CannotWrite, ExitCode, MlgateError
from mlgate.github.checks import OUTPUT_LIMIT, conclusion, permission_notice, post_check_run
from mlgate.publish_contract import MANIFEST_NAME, STALE_MARKER, manifest_json, marker_for
from mlgate.report_blocks import COMMENT_LIMIT, SUMMARY_LIMIT, fit, fold, plain_text
from mlgate.settings import CommonSettings

if TYPE_CHECKING:
    from mlgate.github.branch_store import BranchStore
    from mlgate.github.checks import Annotation
    from mlgate.github.client import GitHubRepo


@dataclasses.dataclass(frozen=True)
class ReportPaths:
    markdown: Path
    json: Path


# Modes of everything mlgate leaves in the workspace. The container runs as root, later steps of the
# job as the runner user (`actions/upload-artifact`, `cat`, a comment action): they must read it all.
SHARED_FILE_MODE = 0o644
SHARED_DIR_MODE = 0o755


def make_shared_dirs(folder: Path) -> None:
    """``mkdir -p`` whose new folders are 0755 whatever the umask; existing folders are left alone."""
    missing: list[Path] = []
    current = folder
    while not current.is_dir() and current.parent != current:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise
            continue  # made meanwhile by another process: its mode is its own
        os.chmod(path, SHARED_DIR_MODE)  # mkdir applies the umask, chmod does not


def write_shared_file(path: Path, data: bytes) -> None:
    """Write ``path`` atomically with mode 0644 whatever the umask: a reader never sees half a file.

    The data goes to a temporary file beside the target (mode 0600 from ``mkstemp``), which is
    chmod-ed and then renamed over the target.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), SHARED_FILE_MODE)
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


def write_report_files(out_dir: Path, markdown: str, json_text: str, pngs: Mapping[str, bytes],
                       files: Mapping[str, bytes] | None = None) -> ReportPaths:
    """``report.md``, the figures, ``files`` (path relative to ``out_dir`` -> bytes: the full lists), and
    ``report.json`` last (its presence means the set is complete).

    Files are 0644 and new folders 0755 (:func:`write_shared_file`, :func:`make_shared_dirs`).
    """
    make_shared_dirs(out_dir)
    for name, png in pngs.items():
        write_shared_file(out_dir / f"{name}.png", png)
    for relative, data in (files or {}).items():
        make_shared_dirs((out_dir / relative).parent)
        write_shared_file(out_dir / relative, data)
    paths = ReportPaths(markdown=out_dir / "report.md", json=out_dir / "report.json")
    write_shared_file(paths.markdown, markdown.encode("utf-8"))
    write_shared_file(paths.json, json_text.encode("utf-8"))
    return paths


@dataclasses.dataclass(frozen=True)
class Publication:
    """Where this run's report may go, decided once from the settings, the run and the clients."""

    repo: GitHubRepo | None
    """The repository to write to; None when GitHub writes are skipped (see :attr:`blocked`)."""
    branch_store: BranchStore | None
    """Figures and cache entries on branches of :attr:`repo`; None exactly when :attr:`repo` is."""
    pr_number: int | None
    comment: Literal["update", "new", "off"]
    marker: str
    host: bool
    assets_branch: str
    out_dir: Path
    blocked: str = ""
    """Why GitHub writes are skipped (fork PR, no token); empty when they are allowed."""
    check_run: str = ""
    """The check run's name (the report title); empty with ``check-run: false``."""
    check_sha: str | None = None
    """The commit the check run goes on: the pull request's head, else ``GITHUB_SHA``."""

    @classmethod
    def for_run(cls, settings: CommonSettings, ctx: RunContext, clients: Clients) -> Publication:
        branch_store = None
        if clients.github is not None:
            # local: PyGithub is slow to import; only talking to GitHub needs it
            from mlgate.github.branch_store import BranchStore

            branch_store = BranchStore(clients.github)
        pr = ctx.pull_request
        return cls(
            repo=clients.github,
            branch_store=branch_store,
            pr_number=pr.number if pr else None,
            comment=settings.comment,
            marker=marker_for(settings.mode, settings.report_title),
            host=settings.host_figures,
            assets_branch=settings.assets_branch,
            out_dir=ctx.report_folder(settings),  # inside the workspace, apart from the data
            blocked=clients.github_blocked,
            check_run=settings.report_title if settings.check_run else "",
            check_sha=(pr.head_sha if pr else None) or ctx.sha,
        )

    def host_figures(self, files: Mapping[str, bytes]) -> tuple[dict[str, str], str]:
        """Links to figures committed to the assets branch, or ({}, a one-line note why not).

        Hosting the same bytes again in this run costs no request (the branch store remembers them).
        """
        if not files:
            return {}, ""
        if not self.host:
            return {}, "Figures are not hosted (`host-figures: false`); they are in the report folder."
        if self.branch_store is None:
            if self.blocked == NOT_IN_ACTIONS:
                return {}, ""
            return {}, f"Figures are not hosted: {self.blocked}. They are in the report folder."
        # local: PyGithub is slow to import; only talking to GitHub needs it
        from mlgate.github.client import GitHubError, GitHubPermissionError

        try:
            return self.branch_store.host_files(files, branch=self.assets_branch), ""
        except GitHubPermissionError as exc:
            workflow.annotate("warning", "Figures not hosted", exc.message)
            return {}, f"Figures are not hosted: the token lacks `{exc.permission}`."
        except GitHubError as exc:
            workflow.annotate("warning", "Figures not hosted", exc.message)
            return {}, "Figures are not hosted: GitHub refused the upload (see the run's warnings)."


RenderMarkdown = Callable[[Mapping[str, str], str], str]
"""(figure name -> link, a note about the figures) -> the report as Markdown."""


@dataclasses.dataclass(frozen=True)
class Finished:
    """A mode's result, computed and ready to publish; nothing in it has been written anywhere yet."""

    passed: bool
    report_json: str
    render: RenderMarkdown
    figures: Mapping[str, bytes] = dataclasses.field(default_factory=dict)
    """Figure name (``sample_grid``) -> PNG bytes; saved as ``<name>.png`` beside the report."""
    files: Mapping[str, bytes] = dataclasses.field(default_factory=dict)
    """Other files for the report folder: path relative to it (``findings/leaked_items.csv``) -> bytes."""
    outputs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Mode-specific step outputs; ``passed``, ``report``, ``report-json``, ``comment-url`` and
    ``check-run-url`` are added."""
    comment: Literal["post", "update-existing", "off"] = "post"
    """``post``: as the ``comment`` input says (update the sticky comment or post a new one).
    ``update-existing``: stay quiet unless this report's comment already exists, then edit it to this
    report with the earlier one folded below (a later run found nothing to report: the old numbers must
    not stand). ``off``: never (job summary and outputs only)."""
    headline: str = ""
    """The outcome for the log, plain text (``mlgate.report_blocks.outcome``): a line with the verdict and key
    figures, then one line per failed gate and the next step."""
    check_summary: str = ""
    """Markdown for the check run's summary (``mlgate.report_blocks.check_summary``: key lines and the gate
    table); empty: the headline's lines. The full report goes below it as the check run's text."""
    gated: bool = True
    """False when no gate was configured: the check run concludes ``neutral`` (it could not fail)."""
    annotations: tuple[Annotation, ...] = ()
    """Notes on lines of files in the repository (data-stats: the changed ``.dvc`` file), shown on the
    check run and in the pull request's Files changed."""


def finish(result: Finished, publication: Publication, ctx: RunContext) -> ExitCode:
    """Render, write the report folder, host the figures, comment, post the check run, summarise, set
    outputs: in that order; then say the outcome and where the report is on stdout (the terminal, or the
    Actions log). A check run refused for want of ``checks: write`` is a notice, never a failure.

    The local report links figures by file name; the comment and the summary by their hosted links.
    A write that fails after the computing is done does not lose the report: whatever can still be
    published is (the comment, the job summary, the outputs), then the failure is raised as
    :class:`~mlgate.errors.CannotWrite` (exit 2), naming what could not be written. Likewise a GitHub
    that stays unavailable through every retry while commenting: the job summary and the outputs still
    get the report, then :class:`~mlgate.github.client.GitHubUnavailable` is raised (exit 3).
    """
    failures: list[MlgateError] = []
    with workflow.phase("Publishing the report"):
        local = result.render({name: f"{name}.png" for name in result.figures}, "")
        paths: ReportPaths | None = None
        try:
            paths = write_report_files(publication.out_dir, local, result.report_json, result.figures, result.files)
            if ctx.pull_request is not None and publication.pr_number is not None:  # for `mode: publish` (forks)
                _write_publish_manifest(publication, ctx.pull_request.head_sha)
        except OSError as exc:
            failures.append(_cannot_write_report(publication.out_dir, exc))
        links, note = publication.host_figures({f"{name}.png": png for name, png in result.figures.items()})
        markdown = result.render({name: links[f"{name}.png"] for name in result.figures if f"{name}.png" in links},
                                 note)
        comment_url = ""
        if result.comment != "off" and publication.comment != "off" and publication.pr_number is not None:
            comment_url, unavailable = _comment(publication, markdown,
                                                existing_only=result.comment == "update-existing")
            failures += [unavailable] if unavailable is not None else []
        check_run_url = ""
        if publication.check_run and publication.check_sha:
            unavailable_before = any(_is_unavailable(failure) for failure in failures)
            check_run_url, unavailable = _check_run(publication, result, markdown, skip=unavailable_before)
            failures += [unavailable] if unavailable is not None else []
        report = workspace_relative(paths.markdown, ctx.workspace) if paths else ""
        cut = "See report.md." if paths else "The rest of the report could not be written to a file."
        try:
            workflow.append_summary(ctx.summary_path, fit(markdown, SUMMARY_LIMIT - 1024, cut))
        except CannotWrite as exc:
            failures.append(exc)
        try:
            workflow.set_outputs(ctx.output_path, {
                "passed": str(result.passed).lower(), **result.outputs, "report": report,
                "report-json": workspace_relative(paths.json, ctx.workspace) if paths else "",
                "comment-url": comment_url, "check-run-url": check_run_url,
            })
        except CannotWrite as exc:
            failures.append(exc)
    headline = result.headline or f"mlgate: {'passed' if result.passed else 'FAILED'}"
    lines = [*headline.splitlines(), f"report: {report or 'not written (see the error)'}"]
    # every line plain text: a path or a name the user controls cannot start a workflow command
    print("\n".join(plain_text(line) for line in lines), file=sys.stdout, flush=True)
    if failures:
        first, *others = failures
        if others:
            raise type(first)(" ".join([first.message, *(f"Also: {other.message}" for other in others)]),
                              hint=first.hint)
        raise first
    return ExitCode.of(result.passed)


def _cannot_write_report(out_dir: Path, exc: OSError) -> CannotWrite:
    """What went wrong writing the report folder (input ``out``), and where the report still is."""
    if out_dir.exists() and not out_dir.is_dir():
        why = "it is a file, not a folder"
    elif isinstance(exc, PermissionError):
        why = f"permission denied ({exc.filename or out_dir})"
    else:
        why = f"{exc.strerror or type(exc).__name__} ({exc.filename or out_dir})"
    return CannotWrite(
        f"Cannot write the report folder `out` ({out_dir}): {why}. The report is in the job summary "
        "(and in the pull request comment, when there is one); report.md and report.json were not written.",
        hint="Point `out` at a new or writable folder inside the workspace, on a disk with free space:\n"
        "  with:\n    out: mlgate-report",
    )


def _write_publish_manifest(publication: Publication, head_sha: str) -> None:
    """``publish.json`` beside the report: what a trusted ``mode: publish`` run needs to post it (it
    checks every field, and takes the pull request and commit from its own event, not from here)."""

    assert publication.pr_number is not None
    text = manifest_json(marker=publication.marker, pr_number=publication.pr_number, head_sha=head_sha,
                         version=__version__)
    write_shared_file(publication.out_dir / MANIFEST_NAME, text.encode("utf-8"))


def _is_unavailable(failure: MlgateError) -> bool:
    # local: PyGithub is slow to import; only talking to GitHub needs it
    from mlgate.github.client import GitHubUnavailable

    return isinstance(failure, GitHubUnavailable)


def _check_run(publication: Publication, result: Finished, markdown: str, *,
               skip: bool = False) -> tuple[str, MlgateError | None]:
    """The check run's URL (empty when none), and GitHub's unavailability to raise once all else is published.

    No token or a fork's read-only token, and a token without ``checks: write``: a notice with the YAML
    that grants it, never a failure. ``skip``: GitHub was already unavailable in this run; no second
    retry budget is spent on it."""

    if publication.repo is None:
        if publication.blocked and publication.blocked != NOT_IN_ACTIONS:
            workflow.annotate("notice", "No check run", permission_notice(publication.blocked))
        return "", None
    if skip:
        workflow.annotate("notice", "No check run", "GitHub was unavailable earlier in this run; the verdict "
                          "is not posted as a check run. Rerun the job when GitHub answers again.")
        return "", None
    # local: PyGithub is slow to import; only talking to GitHub needs it
    from mlgate.github.client import GitHubError, GitHubPermissionError, GitHubUnavailable

    headline = result.headline or f"mlgate: {'passed' if result.passed else 'FAILED'}"
    title, *rest = headline.splitlines()
    summary = result.check_summary or "\n".join(f"- {line}" for line in rest) or title
    assert publication.check_sha is not None
    try:
        return post_check_run(
            publication.repo, name=plain_text(publication.check_run), head_sha=publication.check_sha,
            result=conclusion(result.passed, result.gated), title=plain_text(title),
            summary=fit(summary, OUTPUT_LIMIT, "The full report is below and in the job summary."),
            text=fit(markdown, OUTPUT_LIMIT, "The full report is in the job summary of this run."),
            annotations=result.annotations,
        ), None
    except GitHubPermissionError as exc:
        workflow.annotate("notice", "No check run",
                          permission_notice(f"the token lacks `{exc.permission}` ({exc.message})"))
    except GitHubUnavailable as exc:
        return "", exc
    except GitHubError as exc:
        workflow.annotate("warning", "No check run", f"The verdict is not posted as a check run: {exc.message}")
    return "", None


def collapse_earlier(markdown: str) -> Callable[[str], str]:
    """``markdown``, then the comment's earlier report folded in a ``<details>`` (once, never nested)."""
    def rewrite(old: str) -> str:
        earlier = old.strip()
        if STALE_MARKER in earlier:  # refreshed before: keep the report it folded, not the fold itself
            earlier = earlier.split(STALE_MARKER, 1)[1].rsplit("</details>", 1)[0].strip()
        if not earlier:
            return markdown
        body = fold("The earlier report on this pull request (no longer current)", f"{STALE_MARKER}\n{earlier}")
        return f"{markdown.rstrip()}\n\n{body}\n"

    return rewrite


def _comment(publication: Publication, markdown: str, *,
             existing_only: bool = False) -> tuple[str, MlgateError | None]:
    """The comment's URL (empty when none), and GitHub's unavailability to raise once all else is published."""
    if publication.repo is None:
        if publication.blocked and publication.blocked != NOT_IN_ACTIONS and not existing_only:
            workflow.annotate("warning", "No PR comment",
                              f"The report is in the job summary only: {publication.blocked}.")
        return "", None  # (a blocked run could not have posted the comment that would need refreshing)
    # local: PyGithub is slow to import; only talking to GitHub needs it
    from mlgate.github.client import GitHubError, GitHubPermissionError, GitHubUnavailable
    from mlgate.github.comments import refresh_comment, upsert_comment

    limit = COMMENT_LIMIT - len(publication.marker) - 64
    assert publication.pr_number is not None
    try:
        if existing_only:
            collapse = collapse_earlier(markdown)
            return refresh_comment(
                publication.repo, publication.pr_number, publication.marker,
                lambda old: fit(collapse(old), limit, "The earlier report is cut here."),
            ), None
        body = fit(markdown, limit, "The full report is in the job summary of this run.")
        return upsert_comment(
            publication.repo, publication.pr_number, publication.marker, body,
            mode="new" if publication.comment == "new" else "update",
        ), None
    except GitHubPermissionError as exc:
        workflow.annotate("warning", "No PR comment",
                          f"The report is in the job summary only: the token lacks `{exc.permission}`. "
                          f"{exc.message}")
    except GitHubUnavailable as exc:
        return "", exc
    except GitHubError as exc:
        workflow.annotate("warning", "No PR comment", f"The report is in the job summary only: {exc.message}")
    return "", None
