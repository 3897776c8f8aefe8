"""Shared report building blocks: gate verdicts and Markdown that fits where it is posted.

Each mode has its own report model (``mlgate.data.report``, ``mlgate.model.report``); what they
share lives here so that a gate table or a folded section looks the same in every mode.
"""

from __future__ import annotations

import functools
import os
import re

from pydantic import BaseModel

COMMENT_LIMIT = 65_536
"""GitHub rejects issue comments longer than this many characters."""

SUMMARY_LIMIT = 1024 * 1024
"""GitHub truncates a step summary past 1 MiB."""


class Gate(BaseModel):
    """One pass/fail check: the measured value against the user's threshold."""

    name: str
    value: float | int | bool | None
    threshold: float | int | bool | None
    passed: bool
    detail: str = ""


def all_passed(gates: list[Gate]) -> bool:
    return all(gate.passed for gate in gates)


def format_number(value: float | int | bool | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return "NaN"
    return f"{value:.{digits}g}"


def gates_table(gates: list[Gate]) -> str:
    """A Markdown table of value, threshold and verdict; empty string when no gate was set."""
    if not gates:
        return ""
    rows = ["| gate | value | threshold | verdict |", "|---|---:|---:|---|"]
    for gate in gates:
        verdict = "✅ pass" if gate.passed else "❌ fail"
        if gate.detail:
            verdict += f" — {gate.detail}"
        rows.append(
            f"| `{gate.name}` | {format_number(gate.value)} | {format_number(gate.threshold)} | {verdict} |"
        )
    return "\n".join(rows)


def fold(summary: str, body: str) -> str:
    """A collapsed ``<details>`` section; GitHub needs the blank line to render Markdown inside."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def fit(body: str, limit: int, pointer: str) -> str:
    """Truncate ``body`` to at most ``limit`` characters, ending with ``pointer`` (where the rest is)."""
    if len(body) <= limit:
        return body
    tail = f"\n\n… truncated. {pointer}\n"
    cut = body[: limit - len(tail)]
    # never cut inside an open <details>: close it so the rest of the page still renders
    if cut.count("<details>") > cut.count("</details>"):
        tail = "\n\n</details>" + tail
        cut = body[: limit - len(tail)]
    return cut + tail


IMAGE_PATTERN = re.compile(r"^[a-z0-9./_-]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$")


@functools.cache
def footer() -> str:
    """Which mlgate made the report: its version, and the image digest when the release pinned one.

    A released action.yml sets ``MLGATE_IMAGE`` (``ghcr.io/OWNER/mlgate@sha256:…``) in ``runs.env``;
    a build from the Dockerfile or a local run has none, and the footer says only the version.
    """
    from mlgate import __version__

    image = os.environ.get("MLGATE_IMAGE", "").strip()
    shown = f" · image `{image}`" if image and IMAGE_PATTERN.fullmatch(image) else ""
    return f"<sub>mlgate {__version__}{shown}</sub>"
