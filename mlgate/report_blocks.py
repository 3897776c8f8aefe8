"""Shared report building blocks: gate verdicts and Markdown that fits where it is posted.

Each mode has its own report model (``mlgate.data.report``, ``mlgate.model.report``); what they
share lives here so that a gate table, a verdict, the outcome line or a folded section looks the
same in every mode. Numbers are written by :mod:`mlgate.numbers`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping

from pydantic import BaseModel

from mlgate import __version__
from mlgate.markdown import code, inert, inert_message
from mlgate.numbers import COUNT, Unit

COMMENT_LIMIT = 65_536
"""GitHub rejects issue comments longer than this many characters."""

SUMMARY_LIMIT = 1024 * 1024
"""GitHub truncates a step summary past 1 MiB."""

NO_GATES = "no gates configured"


class Interval(BaseModel):
    """A statistic and its two-sided confidence interval, ``low`` to ``high``, at ``confidence``
    (0.95 = 95 %); each end is also a one-sided bound at ``(1 + confidence) / 2``."""

    value: float
    low: float
    high: float
    confidence: float


class Gate(BaseModel):
    """One pass/fail check: the measured value against the user's threshold."""

    name: str
    value: float | int | bool | None
    threshold: float | int | bool | None
    passed: bool
    detail: str = ""
    interval: Interval | None = None
    """With ``gate-significance``: the interval of the tested statistic, in the unit of ``value``."""


def all_passed(gates: list[Gate]) -> bool:
    return all(gate.passed for gate in gates)


GateUnits = Mapping[str, Unit]
"""Gate name -> how its value and threshold are written; a gate not in it is written as a plain number."""


def _unit(gate: Gate, units: GateUnits) -> Unit:
    return units.get(gate.name, COUNT)


def icon(gates: list[Gate]) -> str:
    """The heading's icon: ✅ every gate passed, ❌ one failed, ℹ️ no gate was configured."""
    if not gates:
        return "ℹ️"
    return "✅" if all_passed(gates) else "❌"


def verdict(gates: list[Gate]) -> str:
    """One plain phrase: ``passed (2 gates)``, ``FAILED (1 of 2 gates)``, ``no gates configured``."""
    if not gates:
        return NO_GATES
    failed = sum(not gate.passed for gate in gates)
    if len(gates) == 1:
        return "FAILED (1 gate)" if failed else "passed (1 gate)"
    return f"FAILED ({failed} of {len(gates)} gates)" if failed else f"passed ({len(gates)} gates)"


def verdict_line(gates: list[Gate]) -> str:
    """The report's first line under its heading (Markdown): the verdict and the failed gates."""
    if not gates:
        return f"**{NO_GATES.capitalize()}**: this report cannot fail the step."
    failed = [gate for gate in gates if not gate.passed]
    if not failed:
        return f"**Passed**: {'the gate' if len(gates) == 1 else f'all {len(gates)} gates'} passed."
    names = ", ".join(code(gate.name) for gate in failed)
    return f"**Failed**: {names}." if len(gates) == 1 else f"**Failed**: {names} ({len(failed)} of {len(gates)} gates)."


def gates_section(gates: list[Gate], units: GateUnits, available: list[str]) -> str:
    """``### Gates``: the table, or the sentence that none is configured and which inputs set one."""
    if not gates:
        names = [f"`{name}`" for name in available]
        inputs = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)
        return f"### Gates\n\n{NO_GATES.capitalize()}. Set any of {inputs} to make this step fail on a limit."
    return "### Gates\n\n" + gates_table(gates, units)


def gates_table(gates: list[Gate], units: GateUnits | None = None) -> str:
    """A Markdown table of value, threshold (each with its unit) and verdict; empty when no gate was set."""
    if not gates:
        return ""
    rows = ["| gate | value | limit | verdict |", "|---|---:|---:|---|"]
    for gate in gates:
        unit = _unit(gate, units or {})
        verdict = "✅ pass" if gate.passed else "❌ fail"
        if gate.detail:
            verdict += f": {inert_message(gate.detail)}"
        rows.append(f"| {code(gate.name)} | {unit.show(gate.value)} | {unit.show(gate.threshold, limit=True)} | "
                    f"{verdict} |")
    return "\n".join(rows)


def failed_gates(gates: list[Gate], units: GateUnits) -> list[str]:
    """Plain text, one per failed gate: ``max-latency-ms 0.215 ms: 0.214 ms over the 0.001 ms limit``."""
    lines = []
    for gate in gates:
        if not gate.passed:
            shown = f"{gate.name} {_unit(gate, units).show(gate.value)}" if gate.value is not None else gate.name
            lines.append(plain_text(f"{shown}: {gate.detail}" if gate.detail else shown))
    return lines


def outcome(mode: str, gates: list[Gate], units: GateUnits, figures: list[str], *, verdict_text: str = "",
            next_step: str = "") -> str:
    """The short outcome of a run, plain text for the log: verdict and key figures, failed gates, what next.

    ``figures`` are 2-4 short phrases; every value a user controls passes through :func:`plain_text`.
    """
    head = f"mlgate {mode}: {verdict_text or verdict(gates)}"
    lines = [" · ".join([head, *(plain_text(f) for f in figures if f)])]
    lines += [f"failed gate {line}" for line in failed_gates(gates, units)]
    if next_step:
        lines.append(f"next: {plain_text(next_step)}")
    return "\n".join(lines)


_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13)) | {127: None} | dict.fromkeys(
    [*range(0x80, 0xA0), 0x061C, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065),
     *range(0x2066, 0x206A), 0xFEFF])
"""Control characters, and the invisible ones that reorder or hide text (bidi controls, zero-width)."""


def plain_text(text: str) -> str:
    """One line of plain text: no line breaks, control or bidi characters, Markdown backticks or workflow commands.

    A value the user controls (a title, a path, a model name) cannot start a ``::command::`` or a
    ``##[command]`` line of its own, nor move the cursor of a terminal.
    """
    text = " ".join(text.translate(_CONTROL).replace("`", "").split())
    while "##[" in text:  # once is not enough: `###[` would become `##[`
        text = text.replace("##[", "#[")
    while text.startswith("::"):
        text = text[2:].lstrip()
    return text


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


def check_summary(headline: str, gates: list[Gate], units: GateUnits) -> str:
    """A check run's summary (Markdown): the outcome's lines below its first (the check run's title
    already says that one), then the gate table, or that no gate is configured."""
    lines = [f"- {inert(line)}" for line in headline.splitlines()[1:]]
    table = gates_table(gates, units) or f"{NO_GATES.capitalize()}: this check cannot fail."
    return "\n\n".join(part for part in ("\n".join(lines), table) if part)


IMAGE_PATTERN = re.compile(r"^[a-z0-9./_-]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$")


@functools.cache
def footer() -> str:
    """Which mlgate made the report: its version, and the image digest when the release pinned one.

    A released action.yml sets ``MLGATE_IMAGE`` (``ghcr.io/OWNER/mlgate@sha256:…``) in ``runs.env``;
    a build from the Dockerfile or a local run has none, and the footer says only the version.
    """

    image = os.environ.get("MLGATE_IMAGE", "").strip()
    shown = f" · image `{image}`" if image and IMAGE_PATTERN.fullmatch(image) else ""
    return f"<sub>mlgate {__version__}{shown}</sub>"
