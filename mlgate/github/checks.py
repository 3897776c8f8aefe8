"""The verdict as a GitHub check run: one completed run per report, on the commit the workflow ran for.

A check run shows where people look (the pull request's checks, the commit's status, the Files changed
tab for annotations) even when the PR comment is off or folded away. :func:`post_check_run` creates it
completed in one request, with at most 50 annotations (the rest are counted in its summary); the caller
(:func:`mlgate.publish.finish`) decides what a refusal means: a missing ``checks: write`` is a notice,
never a failure.

Importing this module costs nothing: PyGithub is imported when a run is posted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from mlgate.report_blocks import fit

if TYPE_CHECKING:
    from mlgate.github.client import GitHubRepo

CHECKS_WRITE = "checks: write"
ANNOTATIONS_PER_REQUEST = 50
"""GitHub takes at most 50 annotations per request. A report posts one request, so these are all it
annotates: a dvc.lock of 10,000 changed outputs would otherwise take 200 content-creating requests, past
GitHub's secondary limit of 80 a minute."""
OUTPUT_LIMIT = 65_535
"""GitHub rejects a check run ``summary`` or ``text`` longer than this many characters."""
TITLE_LIMIT = 255
"""An annotation title longer than this is rejected; the output title is kept as short."""

Conclusion = Literal["success", "failure", "neutral"]
AnnotationLevel = Literal["notice", "warning", "failure"]
_SEVERITY: dict[AnnotationLevel, int] = {"failure": 0, "warning": 1, "notice": 2}

PERMISSION_YAML = "permissions:\n  checks: write"
"""What a workflow adds so that GITHUB_TOKEN may create check runs."""


@dataclasses.dataclass(frozen=True)
class Annotation:
    """A note on one line of a file in the repository, shown on the check run and in Files changed."""

    path: str
    """Relative to the repository root, with ``/``."""
    line: int
    """1-based."""
    level: AnnotationLevel
    message: str
    title: str = ""

    def as_api(self) -> dict[str, Any]:
        """The REST API's annotation object (``title`` cut to 255 characters, ``message`` to 64 KB)."""
        body: dict[str, Any] = {"path": self.path, "start_line": self.line, "end_line": self.line,
                                "annotation_level": self.level, "message": self.message[:OUTPUT_LIMIT]}
        if self.title:
            body["title"] = self.title[:TITLE_LIMIT]
        return body


def conclusion(passed: bool, gated: bool) -> Conclusion:
    """``neutral`` when nothing was gated (the run cannot fail), else ``success`` or ``failure``."""
    if not gated:
        return "neutral"
    return "success" if passed else "failure"


def post_check_run(repo: GitHubRepo, *, name: str, head_sha: str, result: Conclusion, title: str,
                   summary: str, text: str = "", annotations: Sequence[Annotation] = ()) -> str:
    """Create a completed check run ``name`` on ``head_sha`` in one request; returns its html_url.

    ``summary`` and ``text`` must fit :data:`OUTPUT_LIMIT` (the caller fits them, it knows where the
    rest of the report is). At most :data:`ANNOTATIONS_PER_REQUEST` annotations go with the run (see
    :func:`bounded`); a line at the end of the summary counts the ones left out.

    Raises :class:`~mlgate.github.client.GitHubPermissionError` naming ``checks: write`` when the token
    may not create check runs (a workflow without the permission, a fork's read-only token), and
    GitHubError / GitHubUnavailable like every other write.
    """
    # local: PyGithub is slow to import; only talking to GitHub needs it
    from mlgate.github.client import calling

    for label, value in (("summary", summary), ("text", text)):
        if len(value) > OUTPUT_LIMIT:
            raise ValueError(f"check run {label} is {len(value)} characters; GitHub takes at most {OUTPUT_LIMIT}")
    shown, left_out = bounded(annotations)
    if left_out:
        summary = _with_note(summary, _left_out_note(left_out))
    output: dict[str, Any] = {"title": title[:TITLE_LIMIT], "summary": summary}
    if text:
        output["text"] = text
    if shown:
        output["annotations"] = [a.as_api() for a in shown]
    with calling(f"Creating the check run {name!r} on commit {head_sha[:12]} of {repo.full_name}", CHECKS_WRITE):
        run = repo.api.create_check_run(name=name, head_sha=head_sha, status="completed", conclusion=result,
                                        output=output)
    return str(run.html_url)


def bounded(annotations: Sequence[Annotation]) -> tuple[list[Annotation], int]:
    """The annotations one request carries (failures first, then warnings, then notices, each in the
    given order; at most :data:`ANNOTATIONS_PER_REQUEST`) and how many are left out."""
    ranked = sorted(annotations, key=lambda a: _SEVERITY[a.level])
    return ranked[:ANNOTATIONS_PER_REQUEST], max(0, len(ranked) - ANNOTATIONS_PER_REQUEST)


def _left_out_note(count: int) -> str:
    """The summary's line for ``count`` annotations a check run does not carry."""
    entries = "entry" if count == 1 else "entries"
    return (f"{count:,} more changed {entries} not annotated: a check run from mlgate carries at most "
            f"{ANNOTATIONS_PER_REQUEST} annotations, sent in one request.")


def _with_note(summary: str, note: str) -> str:
    """``summary`` and then ``note`` on a paragraph of its own, the summary cut to leave room for it."""

    tail = f"\n\n{note}"
    return fit(summary, OUTPUT_LIMIT - len(tail), "The full report is below and in the job summary.") + tail


def permission_notice(why: str) -> str:
    """The notice for a run whose verdict could not become a check run, with the YAML that fixes it."""
    return (f"The verdict is not posted as a check run: {why}. The report is in the job summary. To get the "
            f"check run, grant the workflow token the permission (a fork's token stays read-only whatever "
            f"it asks):\n{PERMISSION_YAML}\nor set `check-run: false` to skip it.")
