"""The reliability catalogue: every hostile input, fault and race we try, as a row of docs/reliability.md.

A test joins the catalogue with a marker naming the case and the behaviour it asserts::

    @pytest.mark.reliability("input", "`out: ../escaped`", "exit 2; names `out`; nothing written outside")
    def test_out_outside_workspace__refused(...): ...

Parametrised tests may put the marker on each ``pytest.param(..., marks=...)``, or one marker on the
test whose case names the parameters as ``{name}`` (``"`fail-on-leakage: {value}`"``; ``{id}`` is the
case's id). The table is generated from the markers collected in the whole suite; ``test_reliability_doc`` fails when
docs/reliability.md is out of date and says how to regenerate it:

    MLGATE_WRITE_RELIABILITY=1 .venv/bin/python -m pytest --collect-only -q tests
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
AREAS = {
    "input": "Inputs a user controls",
    "data": "Data and model files",
    "environment": "The runner's environment",
    "exit": "Exit codes and degradation",
    "wire": "Faults on the wire",
    "race": "Races and reruns",
    "fork": "Forks, read-only tokens and untrusted pull requests",
    "secret": "Secrets",
}

HEADER = """# Reliability catalogue

What mlgate does with hostile inputs, broken environments, flaky services, races, forks and secrets.
Each row is one test: the first column is what the test tries, the second the user-facing result it
asserts (exit code, message, what is left untouched), the third the test. This page is generated
from the tests, so it cannot drift from them; regenerate it with
`MLGATE_WRITE_RELIABILITY=1 .venv/bin/python -m pytest --collect-only -q tests`.

Exit codes: **0** passed, **1** a gate failed (the report is still published), **2** the input or
the environment is wrong (the message names it and the fix), **3** an external service (GitHub, W&B,
a DVC remote) failed after retries; anything else is a bug. A row that names an error without an
exit code is checked where the error is raised, below the command line, which turns it into one of
these codes.
"""

FOOTER = Path(__file__).with_name("wire_faults_and_races.md")
"""The hand-written closing section (what the fault and race tests do), kept next to the generator."""
"""Hand-written closing section (the wire faults and races tried), kept here so the page stays generated."""


@dataclasses.dataclass(frozen=True)
class Row:
    area: str
    case: str
    behaviour: str
    test: str


def _fill(text: str, params: dict[str, object]) -> str:
    """Put a parametrised test's values into ``{name}`` placeholders, so each case is its own row."""
    return re.sub(r"\{(\w+)\}", lambda m: str(params[m[1]]) if m[1] in params else m[0], text)


def rows_of(items: list[pytest.Item]) -> list[Row]:
    rows = []
    for item in items:
        for mark in item.iter_markers("reliability"):
            area, case, behaviour = mark.args
            if area not in AREAS:
                raise pytest.UsageError(f"{item.nodeid}: reliability area {area!r} is not one of {sorted(AREAS)}")
            callspec = getattr(item, "callspec", None)
            params = {"id": callspec.id, **callspec.params} if callspec else {}
            rows.append(Row(area, _fill(case, params), _fill(behaviour, params), item.nodeid))
    return rows


def _cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


def _test_link(nodeid: str) -> str:
    """``tests/unit/test_x.py::test_y[param]`` as a link to the file; the case column already gives the param."""
    path, _, name = nodeid.partition("::")
    return f"[`{Path(path).name}::{name.split('[', 1)[0]}`](../{path})"


def render(rows: list[Row]) -> str:
    parts = [HEADER]
    counts = {area: sum(r.area == area for r in rows) for area in AREAS}
    parts.append("| area | cases |\n|---|---:|" + "".join(
        f"\n| [{heading}](#{_anchor(heading)}) | {counts[area]} |" for area, heading in AREAS.items() if counts[area]
    ) + f"\n| **all** | **{len(rows)}** |")
    for area, heading in AREAS.items():
        chosen = sorted((r for r in rows if r.area == area), key=lambda r: (r.test.split("[", 1)[0], r.case))
        if not chosen:
            continue
        parts.append(f"## {heading}\n\n| case | what mlgate does | test |\n|---|---|---|" + "".join(
            f"\n| {_cell(r.case)} | {_cell(r.behaviour)} | {_test_link(r.test)} |" for r in chosen
        ))
    parts.append(FOOTER.read_text().strip())
    return "\n\n".join(parts) + "\n"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability(area, case, behaviour): a row of docs/reliability.md")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    target = os.environ.get("MLGATE_RELIABILITY_JSON")
    if target:
        Path(target).write_text(json.dumps([dataclasses.asdict(r) for r in rows_of(items)]))
    if os.environ.get("MLGATE_WRITE_RELIABILITY") == "1":
        DOC.write_text(render(rows_of(items)))
