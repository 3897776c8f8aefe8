"""The publish contract between an untrusted fork run and the trusted ``mode: publish`` run, built and parsed here.

Two things cross from one run to the other, and both are defined only in this module:

- ``publish.json``, written beside a fork's report (:func:`manifest_json`) and read back by the
  trusted run (:func:`parse_manifest`): which mode made the report, and the pull request and commit
  it claims to be about (claims the trusted run checks against its own event, never trusts);
- the sticky-comment marker (:func:`marker_for`, :func:`has_marker`, :func:`parse_marker`), the first
  line of mlgate's comment, by which a later run finds its comment again.

Nothing here imports another publishing module, so ``publish`` (every mode's ``finish``),
``fork_publish`` (``mode: publish``) and ``github.comments`` all import this one and none the others
in a cycle.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from mlgate.errors import MlgateError

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


# ---- the sticky-comment marker

_MARKER = re.compile(r"<!-- mlgate:([a-z-]+):(.*) -->")


def marker_for(mode: str, title: str) -> str:
    """The sticky-comment marker of a report: one line, an HTML comment naming the mode and the title."""
    return f"<!-- mlgate:{mode}:{title.replace('-->', '- ->')} -->"  # a title cannot close the comment


def parse_marker(marker: str) -> tuple[str, str]:
    """(mode, title) of a marker :func:`marker_for` made; ValueError for anything else."""
    match = _MARKER.fullmatch(marker)
    if match is None:
        raise ValueError(f"not an mlgate marker: {marker!r}")
    return match[1], match[2]


STALE_MARKER = "<!-- mlgate:stale -->"
"""Starts the folded earlier report in a refreshed comment, so a second refresh does not nest it."""


def has_marker(body: str | None, marker: str) -> bool:
    """True when ``body``'s first line is ``marker`` (a quoted copy of a report does not count)."""
    first_line = (body or "").split("\n", 1)[0]
    return first_line.rstrip("\r").strip() == marker


# ---- publish.json

MANIFEST_NAME = "publish.json"
"""The manifest's file name in the report folder."""

Title = Annotated[str, StringConstraints(pattern=r"^[\w .,:()/+#-]{1,200}$")]


class PublishManifest(BaseModel):
    """``publish.json``: what the untrusted run says about its report. Each field is strictly patterned;
    ``pr_number`` and ``head_sha`` are only claims, checked against the trusted event. ``title`` and
    ``marker`` are the fork run's own and are never used by the trusted run (its title, comment marker
    and check-run name come from its own inputs)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    mode: Literal["data-stats", "model-gate"]
    title: Title
    marker: Annotated[str, StringConstraints(max_length=240)]
    pr_number: int = Field(ge=1, le=10**9)
    head_sha: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
    mlgate_version: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.+-]{1,40}$")]


def manifest_json(*, marker: str, pr_number: int, head_sha: str, version: str) -> str:
    """``publish.json`` as the untrusted run writes it beside its report (mode and title from ``marker``)."""
    mode, title = parse_marker(marker)
    return json.dumps({"mode": mode, "title": title, "marker": marker, "pr_number": pr_number,
                       "head_sha": head_sha, "mlgate_version": version}, indent=2) + "\n"


def parse_manifest(data: bytes) -> PublishManifest:
    """``publish.json`` read back; :class:`BundleRefused` naming the first problems when it is not valid."""
    try:
        manifest = PublishManifest.model_validate_json(data)
    except ValidationError as exc:
        raise BundleRefused(f"`{MANIFEST_NAME}` is not valid: {first_problems(exc, MANIFEST_NAME, 'msg')}.") from None
    if manifest.marker != marker_for(manifest.mode, manifest.title):
        raise BundleRefused("`publish.json` has a `marker` that does not belong to its mode and title.")
    return manifest


def first_problems(exc: ValidationError, file: str, detail: Literal["msg", "type"]) -> str:
    """The first five problems pydantic found in ``file``, each as ``field.path: detail``, quoted (hostile text)."""
    return quoted("; ".join(f"{'.'.join(map(str, e['loc'])) or file}: {e[detail]}" for e in exc.errors()[:5]))


def quoted(text: str) -> str:
    """Hostile text quoted in a message: one line, printable ASCII, no workflow-command start, bounded."""
    return re.sub(r"[^\x20-\x7e]", "?", text).replace("::", ": :")[:300]
