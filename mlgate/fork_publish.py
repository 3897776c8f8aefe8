"""``mode: publish``: post a report computed by an untrusted fork run, from a trusted ``workflow_run``.

A pull request from a fork runs with a read-only token and no secrets, so its data-stats or
model-gate run cannot comment. It writes its report folder (``report.md``, ``report.json``, the
figures and ``publish.json``) and uploads it as an artifact. A second workflow, started by
``workflow_run`` in the base repository's trusted context, downloads that folder and runs this mode.

Everything in the folder was produced by code from the pull request, so it is treated as hostile
data: nothing in it is executed or imported, and nothing in it is posted as it is. ``report.json`` is
validated against the report model of its mode and rendered here, by mlgate's own renderer, with
every string in it made inert (:mod:`mlgate.markdown`); the fork's ``report.md`` is never read. Only
the PNGs that rendered report names (its known figure names) are hosted. The title, the comment
marker and the check run's name come from this run's own inputs, and the check run is named as made
from a fork (``<title> (fork PR #N, untrusted)``) so that it never stands in for a required check of
another name. The pull request the comment goes to is never taken from the folder: the head commit
comes from the trusted ``workflow_run`` event and the pull request from GitHub
(:func:`verify_pull_request`). Then the usual :func:`mlgate.publish.finish` hosts the figures and
upserts the sticky comment.

The functions here are pure (paths and bytes in, values out) except :func:`run_publish`, the rim.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mlgate import workflow
from mlgate.data.findings import FOLDER as FULL_LISTS_FOLDER
from mlgate.errors import ExitCode, MlgateError
from mlgate.model.gates import UNITS as MODEL_UNITS
from mlgate.model.report import FIGURE_NAMES, ModelReport, model_outcome
from mlgate.model.report import render_markdown as render_model
from mlgate.publish import Finished, Publication, finish
from mlgate.publish_contract import (
    MANIFEST_NAME,
    BundleRefused,
    PublishManifest,
    first_problems,
    marker_for,
    parse_manifest,
    quoted,
)
from mlgate.report_blocks import check_summary, plain_text
from mlgate.settings import SETTINGS_BY_MODE

if TYPE_CHECKING:
    from mlgate.clients import Clients
    from mlgate.context import RunContext
    from mlgate.data.report import DataReport
    from mlgate.github.client import GitHubRepo
    from mlgate.model.report import ModelReport
    from mlgate.publish import Finished
    from mlgate.settings import PublishSettings

MAX_MARKDOWN_CHARS = 60_000
"""The fork's report.md is never read; a larger one still means a folder that is not ours."""
MAX_PNG_BYTES = 5 * 1024 * 1024
MAX_FILES = 20
MAX_TOTAL_BYTES = 20 * 1024 * 1024
MAX_JSON_BYTES = 2 * 1024 * 1024
"""report.json and publish.json are small; a larger one is refused before it is parsed."""
MAX_PIXELS = 40_000_000
"""Pixel budget of one figure (width x height, e.g. 8000 x 5000): bounds what a viewer must decode."""
MAX_SIDE = 20_000

FILE_NAME = re.compile(r"[A-Za-z0-9._-]+")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


class UntrustedPullRequest(MlgateError):
    """Raised when the bundle's pull request or commit does not match the trusted workflow_run event."""

    title = "Pull request not verified"


Report = Any
"""A validated :class:`~mlgate.data.report.DataReport` or :class:`~mlgate.model.report.ModelReport`."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A report folder that passed every check of :func:`read_bundle`."""

    manifest: PublishManifest
    report: Report
    """report.json, validated against the report model of ``manifest.mode``."""
    pngs: Mapping[str, bytes]
    """File name (``sample_grid.png``) -> verified PNG bytes."""

    @property
    def passed(self) -> bool:
        return bool(self.report.passed)


# ---- reading the folder


def read_bundle(folder: Path) -> Bundle:
    """Read and check a downloaded report folder; raises :class:`BundleRefused` naming the broken rule.

    Rules: a real folder (not a symlink) holding at most :data:`MAX_FILES` plain files (no symlinks,
    no sub-folders but the ``findings/`` lists, skipped unread), each named ``[A-Za-z0-9._-]+`` and not
    starting with a dot; only ``report.md``,
    ``report.json``, ``publish.json`` and ``*.png``; sizes within the limits above; every PNG verified
    (:func:`check_png`); ``publish.json`` and ``report.json`` valid against their models.
    """
    try:
        info = os.lstat(folder)
    except OSError as exc:
        raise BundleRefused(f"Input `report-dir` {str(folder)!r} cannot be read: {exc.strerror}.") from exc
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise BundleRefused(f"Input `report-dir` {str(folder)!r} is not a folder (a symlink or a file).")
    with os.scandir(folder) as entries:
        names = sorted(entry.name for entry in entries)
    if len(names) > MAX_FILES:
        raise BundleRefused(f"The report folder holds {len(names)} entries; at most {MAX_FILES} are accepted.")
    files: dict[str, bytes] = {}
    total = 0
    for name in names:
        if name == FULL_LISTS_FOLDER and _real_folder(folder / name):
            continue  # the fork's CSV lists stay in its uploaded artifact: never read, never posted
        check_name(name, folder)
        data = _read_plain_file(folder, name, _size_limit(name))
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise BundleRefused(f"The report folder holds more than {MAX_TOTAL_BYTES // 2**20} MB; refused.")
        files[name] = data
    for required in (MANIFEST_NAME, "report.json", "report.md"):
        if required not in files:
            raise BundleRefused(f"The report folder has no `{required}`.")
    manifest = parse_manifest(files.pop(MANIFEST_NAME))
    report = validate_report(manifest.mode, _text(files.pop("report.json"), "report.json"))
    markdown = _text(files.pop("report.md"), "report.md")  # checked like the rest, never read further
    if len(markdown) > MAX_MARKDOWN_CHARS:
        raise BundleRefused(f"`report.md` has {len(markdown):,} characters; at most {MAX_MARKDOWN_CHARS:,}.")
    for name, data in files.items():
        check_png(name, data)
    return Bundle(manifest=manifest, report=report, pngs=files)


def _real_folder(path: Path) -> bool:
    mode = os.lstat(path).st_mode
    return stat.S_ISDIR(mode) and not stat.S_ISLNK(mode)


def check_name(name: str, folder: Path | None = None) -> None:
    """A plain file name: ``[A-Za-z0-9._-]+``, no leading dot, no ``..``; in ``folder``, a plain file
    (not a symlink or a folder); and a known kind of file."""
    if not FILE_NAME.fullmatch(name) or name.startswith(".") or ".." in name:
        raise BundleRefused(f"The report folder holds a file named {name!r}; only plain names "
                            "(letters, digits, `.`, `_`, `-`, not starting with a dot) are accepted.")
    if folder is not None:
        mode = os.lstat(folder / name).st_mode
        if stat.S_ISLNK(mode):
            raise BundleRefused(f"`{name}` in the report folder is a symlink; only plain files are accepted.")
        if not stat.S_ISREG(mode):
            raise BundleRefused(f"`{name}` in the report folder is not a plain file (a folder or device).")
    if name not in ("report.md", "report.json", MANIFEST_NAME) and not name.endswith(".png"):
        raise BundleRefused(f"The report folder holds {name!r}; only report.md, report.json, "
                            "publish.json and .png figures are accepted.")


def _size_limit(name: str) -> int:
    if name.endswith(".png"):
        return MAX_PNG_BYTES
    if name == "report.md":
        return MAX_MARKDOWN_CHARS * 4  # UTF-8: at most 4 bytes a character; characters are counted later
    return MAX_JSON_BYTES


def _read_plain_file(folder: Path, name: str, limit: int) -> bytes:
    """The bytes of a regular file, never following a symlink (``O_NOFOLLOW`` + ``fstat``)."""
    path = folder / name
    if stat.S_ISLNK(os.lstat(path).st_mode):
        raise BundleRefused(f"`{name}` in the report folder is a symlink; only plain files are accepted.")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise BundleRefused(f"`{name}` in the report folder cannot be opened: {exc.strerror}.") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BundleRefused(f"`{name}` in the report folder is not a plain file (a folder or device).")
        if info.st_size > limit:
            raise BundleRefused(f"`{name}` has {info.st_size:,} bytes; at most {limit:,} are accepted.")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise BundleRefused(f"`{name}` has more than {limit:,} bytes; refused.")
    return data


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleRefused(f"`{name}` is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc


def check_png(name: str, data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, checked without decoding it: signature, an intact IHDR chunk first,
    sides within :data:`MAX_SIDE` and the area within :data:`MAX_PIXELS`, an IEND chunk last."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 8 + 25 + len(PNG_END):
        raise BundleRefused(f"`{name}` is not a PNG image (wrong signature or too short).")
    length, kind = struct.unpack(">I4s", data[8:16])
    if length != 13 or kind != b"IHDR":
        raise BundleRefused(f"`{name}` is not a PNG image (no IHDR chunk first).")
    header = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(kind + header) != crc:
        raise BundleRefused(f"`{name}` is not a PNG image (IHDR checksum mismatch).")
    width, height = struct.unpack(">II", header[:8])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE) or width * height > MAX_PIXELS:
        raise BundleRefused(f"`{name}` is {width}x{height} pixels; at most {MAX_PIXELS:,} pixels and "
                            f"{MAX_SIDE:,} a side are accepted.")
    if not data.endswith(PNG_END):
        raise BundleRefused(f"`{name}` is not a complete PNG image (no IEND chunk at the end).")
    return width, height


def validate_report(mode: str, report_json: str) -> DataReport | ModelReport:
    """report.json validated against the report model of ``mode``, its verdict consistent with its gates.

    A report that says it passed while a gate failed, or failed while every gate passed, is refused:
    the comment's verdict is rendered from the gates and must say what ``passed`` says.
    """
    # local: pulls in torch (seconds of start-up); publishing a model-gate report does not need it
    from mlgate.data.report import DataReport

    model: type[DataReport] | type[ModelReport] = DataReport if mode == "data-stats" else ModelReport
    try:
        report = model.model_validate_json(report_json)
    except ValidationError as exc:
        raise BundleRefused(f"`report.json` is not a valid {mode} report: {first_problems(exc, 'report.json', 'type')}."
                            ) from None
    if report.mode != mode:
        raise BundleRefused(f"`report.json` is a {quoted(report.mode)!r} report but `publish.json` says {mode!r}.")
    if report.passed != all(gate.passed for gate in report.gates):
        failed = [gate.name for gate in report.gates if not gate.passed]
        raise BundleRefused(
            f"`report.json` says passed={str(report.passed).lower()} but "
            + (f"its gates {quoted(', '.join(failed))} failed." if failed else "every one of its gates passed.")
            + " A report mlgate wrote never does; nothing is posted.")
    return report


# ---- the trusted event


def trusted_head_sha(event: Mapping[str, Any]) -> str:
    """The head commit of the run that made the bundle, from the ``workflow_run`` event (trusted)."""
    run = event.get("workflow_run")
    sha = run.get("head_sha") if isinstance(run, dict) else None
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise UntrustedPullRequest(
            "`mode: publish` needs the `workflow_run` event (its `workflow_run.head_sha` says which "
            "commit the report is about); this run's event has none.",
            hint="Run it from a workflow triggered by the fork workflow:\n"
                 "on:\n  workflow_run:\n    workflows: [data-stats]\n    types: [completed]",
        )
    return sha


def event_pull_numbers(event: Mapping[str, Any], head_sha: str) -> list[int]:
    """The pull requests the ``workflow_run`` event lists for ``head_sha`` (empty for forks)."""
    run = event.get("workflow_run") or {}
    numbers = []
    for pr in run.get("pull_requests") or []:
        if not isinstance(pr, dict) or not isinstance(pr.get("number"), int):
            continue
        head = pr.get("head")
        if not isinstance(head, dict) or head.get("sha", head_sha) == head_sha:
            numbers.append(pr["number"])
    return numbers


def open_pull_numbers(repo: GitHubRepo, event: Mapping[str, Any], head_sha: str) -> list[int]:
    """Open pull requests of the repository whose head is ``head_sha`` (``GET /repos/o/r/pulls``, narrowed
    to the fork's ``owner:branch`` when the event names them)."""
    # local: PyGithub is slow to import; only talking to GitHub needs it
    from mlgate.github.client import calling

    run = event.get("workflow_run") or {}
    owner = ((run.get("head_repository") or {}).get("owner") or {}).get("login")
    branch = run.get("head_branch")
    with calling(f"Finding the pull request of commit {head_sha[:12]} in {repo.full_name}", None):
        if isinstance(owner, str) and isinstance(branch, str):
            pulls = repo.api.get_pulls(state="open", head=f"{owner}:{branch}")
        else:
            pulls = repo.api.get_pulls(state="open")
        return [pull.number for pull in pulls if pull.head.sha == head_sha]


def verify_pull_request(manifest: PublishManifest, head_sha: str, candidates: list[int]) -> int:
    """The pull request to comment on: the bundle's claim, accepted only when the trusted commit and
    pull requests agree with it."""
    if manifest.head_sha != head_sha:
        raise UntrustedPullRequest(
            f"`publish.json` says the report is about commit {manifest.head_sha}, but the run that made "
            f"it ran on {head_sha} (`workflow_run.head_sha`); nothing is posted.",
            hint="Download the artifact of the triggering run: actions/download-artifact with "
                 "`run-id: ${{ github.event.workflow_run.id }}`.",
        )
    if manifest.pr_number not in candidates:
        found = ", ".join(f"#{n}" for n in candidates) or "none"
        raise UntrustedPullRequest(
            f"`publish.json` names pull request #{manifest.pr_number}, but the open pull requests whose "
            f"head is {head_sha} are: {found}; nothing is posted.",
            hint="The pull request may have been closed or pushed to since; the next run publishes again.",
        )
    return manifest.pr_number


# ---- the mode

UNTRUSTED = "(fork PR #{number}, untrusted)"
"""Appended to the check run's name: a check run made from a fork's data never has the name of one
made by a trusted run, so it cannot satisfy a required check of that name."""


def check_run_name(title: str, pr_number: int) -> str:
    """``<title> (fork PR #N, untrusted)``: the trusted run's title, marked as made from a fork's data."""
    return f"{title} {UNTRUSTED.format(number=pr_number)}"


def figure_names(mode: str) -> tuple[str, ...]:
    """The figures the report of ``mode`` can name: the only PNGs of a bundle that are hosted."""
    if mode == "data-stats":
        # local: pulls in torch (seconds of start-up); publishing a model-gate report does not need it
        from mlgate.data.report import FIGURE_TITLES

        return tuple(FIGURE_TITLES)

    return FIGURE_NAMES


def rendered(bundle: Bundle, title: str, pr_number: int) -> Finished:
    """The bundle's report rendered by mlgate itself under the trusted ``title``: Markdown, verdict,
    outcome and check-run summary all from the validated report.json, none of the fork's text."""

    report = bundle.report.model_copy(update={"title": title})
    if bundle.manifest.mode == "data-stats":
        # the full lists are files of the fork's own run (its artifact), not of this report folder
        report = report.model_copy(update={"full_lists": []})
    known = figure_names(bundle.manifest.mode)
    figures = {name: bundle.pngs[f"{name}.png"] for name in known if f"{name}.png" in bundle.pngs}
    if bundle.manifest.mode == "data-stats":
        # local: pulls in torch (seconds of start-up); publishing a model-gate report does not need it
        from mlgate.data.gates import UNITS as DATA_UNITS
        from mlgate.data.report import data_outcome, render_markdown

        units = DATA_UNITS

        def render(links: Mapping[str, str], note: str) -> str:
            return render_markdown(report, links, note=note)

        outcome = data_outcome(report)
    else:
        units = MODEL_UNITS

        def render(links: Mapping[str, str], note: str) -> str:
            return render_model(report, links, note=note)

        outcome = model_outcome(report)
    verdict = "passed" if report.passed else "FAILED"
    headline = plain_text(f"{title}: {verdict} (the {bundle.manifest.mode} report of fork pull request "
                          f"#{pr_number}, rendered from its report.json)")
    return Finished(
        passed=report.passed, report_json=report.model_dump_json(indent=2), render=render, figures=figures,
        headline="\n".join([headline, *outcome.splitlines()[1:]]),
        check_summary=check_summary("\n".join([headline, *outcome.splitlines()]), report.gates, units),
        gated=bool(report.gates),
    )


def run_publish(settings: PublishSettings, ctx: RunContext, clients: Clients) -> ExitCode:
    """Read and check the bundle, verify its pull request, render its report.json, then publish it like
    any mode's report, under this run's own title."""

    folder = ctx.in_workspace(settings.report_dir, "report-dir")  # symlinks followed: must stay inside
    out_dir = ctx.output_folder(settings.out, {"report-dir": settings.report_dir})  # never into the bundle
    with workflow.phase("Checking the report bundle"):
        bundle = read_bundle(folder)
        head_sha = trusted_head_sha(ctx.event)
        if clients.github is None:
            raise UntrustedPullRequest(f"`mode: publish` cannot post: {clients.github_blocked}.",
                                       hint="with:\n  mode: publish\n  github-token: ${{ github.token }}")
        candidates = event_pull_numbers(ctx.event, head_sha) or open_pull_numbers(clients.github, ctx.event,
                                                                                  head_sha)
        if not candidates and bundle.manifest.head_sha == head_sha:  # pushed to or closed since: not forged
            workflow.annotate("warning", "Report not posted",
                              f"No open pull request has commit {head_sha} as its head any more (pushed to or "
                              "closed since); the report of that commit is not posted. The newer run publishes.")
            return ExitCode.PASSED
        pr_number = verify_pull_request(bundle.manifest, head_sha, candidates)
    title = settings.title or SETTINGS_BY_MODE[bundle.manifest.mode].default_title  # ours, never the bundle's
    publication = Publication(
        repo=clients.github, branch_store=_branch_store(clients.github), pr_number=pr_number,
        comment=settings.comment, marker=marker_for(bundle.manifest.mode, title), host=settings.host_figures,
        assets_branch=settings.assets_branch, out_dir=out_dir,
        blocked=clients.github_blocked,
        check_run=check_run_name(title, pr_number) if settings.check_run else "",
        check_sha=head_sha,  # the fork's commit
    )
    finish(rendered(bundle, title, pr_number), publication, ctx)
    return ExitCode.PASSED  # published; the report's verdict is the `passed` output and the check run


def _branch_store(repo: GitHubRepo | None) -> Any:
    if repo is None:
        return None
    # local: PyGithub is slow to import; only talking to GitHub needs it
    from mlgate.github.branch_store import BranchStore

    return BranchStore(repo)
