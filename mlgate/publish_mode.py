"""``mode: publish``: post a report computed by an untrusted fork run, from a trusted ``workflow_run``.

A pull request from a fork runs with a read-only token and no secrets, so its data-stats or
model-gate run cannot comment. It writes its report folder (``report.md``, ``report.json``, the
figures and ``publish.json``) and uploads it as an artifact. A second workflow, started by
``workflow_run`` in the base repository's trusted context, downloads that folder and runs this mode.

Everything in the folder was produced by code from the pull request, so it is treated as hostile
data: nothing in it is executed or imported, only read, checked and sanitised (:func:`read_bundle`,
:func:`sanitize_markdown`). The pull request the comment goes to is never taken from the folder:
the head commit comes from the trusted ``workflow_run`` event and the pull request from GitHub
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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from mlgate.errors import ExitCode, MlgateError

if TYPE_CHECKING:
    from mlgate.clients import Clients
    from mlgate.context import RunContext
    from mlgate.github.client import GitHubRepo
    from mlgate.settings import PublishSettings

MAX_MARKDOWN_CHARS = 60_000
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
ALLOWED_TAGS = ("details", "summary", "sub", "br")

BUNDLE_HINT = (
    "The folder must be the report folder the fork run wrote, uploaded unchanged with "
    "actions/upload-artifact and downloaded with actions/download-artifact into `report-dir` "
    "(examples/workflows/data-stats-fork.yml and data-stats-publish.yml)."
)


class BundleRefused(MlgateError):
    """Raised when the downloaded report folder breaks a rule (size, name, type, content); nothing is posted."""

    title = "Report bundle refused"

    def __init__(self, message: str, *, hint: str = BUNDLE_HINT) -> None:
        super().__init__(message, hint=hint)


class UntrustedPullRequest(MlgateError):
    """Raised when the bundle's pull request or commit does not match the trusted workflow_run event."""

    title = "Pull request not verified"


Title = Annotated[str, StringConstraints(pattern=r"^[\w .,:()/+#-]{1,200}$")]


class PublishManifest(BaseModel):
    """``publish.json``: what the untrusted run says about its report. Each field is strictly patterned;
    ``pr_number`` and ``head_sha`` are only claims, checked against the trusted event."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    mode: Literal["data-stats", "model-gate"]
    title: Title
    marker: Annotated[str, StringConstraints(max_length=240)]
    pr_number: int = Field(ge=1, le=10**9)
    head_sha: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
    mlgate_version: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.+-]{1,40}$")]


def marker_for(mode: str, title: str) -> str:
    """The sticky-comment marker of a report (the same as :class:`mlgate.publish.Publication`'s)."""
    return f"<!-- mlgate:{mode}:{title} -->"


def manifest_json(*, mode: str, title: str, marker: str, pr_number: int, head_sha: str, version: str) -> str:
    """``publish.json`` as the untrusted run writes it (:func:`mlgate.publish.finish`)."""
    return json_dump({"mode": mode, "title": title, "marker": marker, "pr_number": pr_number,
                      "head_sha": head_sha, "mlgate_version": version})


def json_dump(value: Mapping[str, Any]) -> str:
    import json

    return json.dumps(value, indent=2) + "\n"


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A report folder that passed every check of :func:`read_bundle`; the Markdown not yet sanitised."""

    manifest: PublishManifest
    markdown: str
    report_json: str
    passed: bool
    pngs: Mapping[str, bytes]
    """File name (``sample_grid.png``) -> verified PNG bytes."""


# ---- reading the folder


def read_bundle(folder: Path) -> Bundle:
    """Read and check a downloaded report folder; raises :class:`BundleRefused` naming the broken rule.

    Rules: a real folder (not a symlink) holding at most :data:`MAX_FILES` plain files (no symlinks,
    no sub-folders), each named ``[A-Za-z0-9._-]+`` and not starting with a dot; only ``report.md``,
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
        check_name(name, folder)
        data = _read_plain_file(folder, name, _size_limit(name))
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise BundleRefused(f"The report folder holds more than {MAX_TOTAL_BYTES // 2**20} MB; refused.")
        files[name] = data
    for required in ("publish.json", "report.json", "report.md"):
        if required not in files:
            raise BundleRefused(f"The report folder has no `{required}`.")
    manifest = parse_manifest(files.pop("publish.json"))
    report_json = _text(files.pop("report.json"), "report.json")
    passed = validate_report(manifest.mode, report_json)
    markdown = _text(files.pop("report.md"), "report.md")
    if len(markdown) > MAX_MARKDOWN_CHARS:
        raise BundleRefused(f"`report.md` has {len(markdown):,} characters; at most {MAX_MARKDOWN_CHARS:,}.")
    for name, data in files.items():
        check_png(name, data)
    return Bundle(manifest=manifest, markdown=markdown, report_json=report_json, passed=passed, pngs=files)


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
    if name not in ("report.md", "report.json", "publish.json") and not name.endswith(".png"):
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


def parse_manifest(data: bytes) -> PublishManifest:
    try:
        manifest = PublishManifest.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'publish.json'}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise BundleRefused(f"`publish.json` is not valid: {_plain(problems)}.") from None
    if manifest.marker != marker_for(manifest.mode, manifest.title):
        raise BundleRefused("`publish.json` has a `marker` that does not belong to its mode and title.")
    return manifest


def validate_report(mode: str, report_json: str) -> bool:
    """Validate report.json against the report model of ``mode``; returns its ``passed``."""
    from mlgate.data.report import DataReport
    from mlgate.model.report import ModelReport

    model: type[DataReport] | type[ModelReport] = DataReport if mode == "data-stats" else ModelReport
    try:
        report = model.model_validate_json(report_json)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'report.json'}: {e['type']}"
                             for e in exc.errors()[:5])
        raise BundleRefused(f"`report.json` is not a valid {mode} report: {_plain(problems)}.") from None
    if report.mode != mode:
        raise BundleRefused(f"`report.json` is a {report.mode!r} report but `publish.json` says {mode!r}.")
    return report.passed


def _plain(text: str) -> str:
    """Hostile text quoted in a message: one line, no workflow-command start, bounded."""
    return re.sub(r"[^\x20-\x7e]", "?", text).replace("::", ": :")[:300]


# ---- sanitising the Markdown

_COMMENT = re.compile(r"<!--.*?(-->|\Z)", re.DOTALL)
_ALLOWED_TAG = re.compile(r"</?(?:details|summary|sub)>|<br\s*/?>", re.IGNORECASE)
_ANY_TAG = re.compile(r"</?[A-Za-z!?][^<>]*>")
_LINK = re.compile(r"(!?)\[([^\[\]\n]*)\]\(\s*<?((?:[^()\s<>]|\([^()\s<>]*\))*)>?(?:\s+\"[^\"\n]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]\n]+\]:.*$", re.MULTILINE)
_BARE_URL = re.compile(r"(?<![(<`\w])(?:(?:https?|ftp|file)://|(?:javascript|vbscript|data):)[^\s)<>`]*",
                       re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\u0085]")


def sanitize_markdown(markdown: str, *, figures: Iterable[str], server_url: str) -> str:
    """The report Markdown, fit to post: only our HTML (details/summary/sub/br, without attributes);
    images only of the bundle's own figures; links only to ``server_url``'s host; no HTML comments
    (no forged sticky-comment markers); no line a runner would read as a workflow command.
    """
    figure_names = set(figures)
    host = urlsplit(server_url).netloc.lower()
    text = _CONTROL.sub("", markdown.replace("\r\n", "\n").replace("\r", "\n"))
    text = _COMMENT.sub("", text)
    text = _REFERENCE.sub("", text)  # [x]: https://elsewhere — reference links are never generated

    def link(match: re.Match[str]) -> str:
        bang, label, target = match.groups()
        if bang and target in figure_names:
            return f"![{label}]({target})"
        if not bang and _same_host(target, host):
            return f"[{label}]({target})"
        return label  # an image or link elsewhere: keep its words only

    text = _LINK.sub(link, text)
    kept: list[str] = []
    for part in re.split(f"({_ALLOWED_TAG.pattern})", text, flags=re.IGNORECASE):
        if _ALLOWED_TAG.fullmatch(part):
            kept.append(part.lower().replace(" ", "").replace("<br/>", "<br>"))
            continue
        previous = None
        while previous != part:  # <scr<script>ipt> must not reassemble
            previous, part = part, _ANY_TAG.sub("", part)
        kept.append(part.replace("<", "&lt;"))  # what is left of a broken tag shows as text
    text = "".join(kept)
    text = _BARE_URL.sub(lambda m: m.group(0) if _same_host(m.group(0), host) else f"`{m.group(0)}`", text)
    lines = [line for line in text.split("\n") if not _is_command(line)]
    return "\n".join(lines)


def _same_host(target: str, host: str) -> bool:
    parts = urlsplit(target)
    return parts.scheme == "https" and parts.netloc.lower() == host and not parts.username


def _is_command(line: str) -> bool:
    """``::name ...::`` (and the old ``##[name ...]``) are read as commands wherever a line is printed."""
    stripped = line.strip()
    return stripped.startswith("::") or stripped.startswith("##[")


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


def run_publish(settings: PublishSettings, ctx: RunContext, clients: Clients) -> ExitCode:
    """Read and check the bundle, verify its pull request, then publish it like any mode's report."""
    from mlgate import workflow
    from mlgate.publish import Finished, Publication, finish

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
        markdown = sanitize_markdown(bundle.markdown, figures=bundle.pngs, server_url=ctx.server_url)
    title = settings.title or bundle.manifest.title
    publication = Publication(
        repo=clients.github, branch_store=_branch_store(clients.github), pr_number=pr_number,
        comment=settings.comment, marker=marker_for(bundle.manifest.mode, title), host=settings.host_figures,
        assets_branch=settings.assets_branch, out_dir=out_dir,
        blocked=clients.github_blocked,
        check_run=title if settings.check_run else "", check_sha=head_sha,  # the fork's commit
    )
    figures = {name.removesuffix(".png"): data for name, data in bundle.pngs.items()}

    def render(links: Mapping[str, str], note: str) -> str:
        return link_figures(markdown, links, note)

    result = Finished(
        passed=bundle.passed, report_json=bundle.report_json, render=render, figures=figures,
        headline=f"mlgate publish: the {bundle.manifest.mode} report of pull request #{pr_number} "
                 f"({'passed' if bundle.passed else 'FAILED'} in the fork run)",
    )
    finish(result, publication, ctx)
    return ExitCode.PASSED  # published; the report's verdict is the `passed` output and the fork run's status


def link_figures(markdown: str, links: Mapping[str, str], note: str) -> str:
    """Point the sanitised report's figure images (``![t](name.png)``) at ``links`` (figure name -> URL);
    a figure without a link keeps its alt text only; ``note`` (why figures are not hosted) goes last."""
    def swap(match: re.Match[str]) -> str:
        alt, name = match.group(1), match.group(2)
        target = links.get(name)
        return f"![{alt}]({target})" if target else alt

    body = re.sub(r"!\[([^\[\]\n]*)\]\(([A-Za-z0-9_-][A-Za-z0-9._-]*)\.png\)", swap, markdown)
    return f"{body.rstrip()}\n\n{note}\n" if note else body


def _branch_store(repo: GitHubRepo | None) -> Any:
    if repo is None:
        return None
    from mlgate.github.branch_store import BranchStore

    return BranchStore(repo)
