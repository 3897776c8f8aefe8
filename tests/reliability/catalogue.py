"""The reliability catalogue: every hostile input, fault and race we try, as a row of docs/reliability.md.

A test joins the catalogue with a marker naming the case and the behaviour it asserts::

    @pytest.mark.reliability("input", "`out: ../escaped`", "exit 2; names `out`; nothing written outside")
    def test_out_outside_workspace__refused(...): ...

Parametrised tests may put the marker on each ``pytest.param(..., marks=...)``. The table is
generated from the markers collected in the whole suite; ``test_reliability_doc`` fails when
docs/reliability.md is out of date and says how to regenerate it:

    MLGATE_WRITE_RELIABILITY=1 .venv/bin/python -m pytest --collect-only -q tests
"""

from __future__ import annotations

import dataclasses
import json
import os
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
    "fork": "Untrusted pull requests (publish mode)",
    "secret": "Secrets",
}

HEADER = """# Reliability catalogue

What mlgate does with hostile inputs, broken environments, flaky services, races and untrusted pull
requests. Every row is a test that asserts the behaviour in the last column (the test's node id is in
the first column); the table is generated from the tests, so it cannot drift from them.
Exit codes: 0 passed, 1 a gate failed, 2 the input or environment is wrong, 3 an external service
failed after retries; anything else is a bug.
"""


@dataclasses.dataclass(frozen=True)
class Row:
    area: str
    case: str
    behaviour: str
    test: str


def rows_of(items: list[pytest.Item]) -> list[Row]:
    rows = []
    for item in items:
        for mark in item.iter_markers("reliability"):
            area, case, behaviour = mark.args
            if area not in AREAS:
                raise pytest.UsageError(f"{item.nodeid}: reliability area {area!r} is not one of {sorted(AREAS)}")
            rows.append(Row(area, case, behaviour, item.nodeid))
    return rows


def render(rows: list[Row]) -> str:
    parts = [HEADER]
    for area, heading in AREAS.items():
        chosen = sorted((r for r in rows if r.area == area), key=lambda r: r.test)
        if not chosen:
            continue
        parts.append(f"## {heading} ({len(chosen)})\n\n| case | what mlgate does | test |\n|---|---|---|")
        parts[-1] += "".join(
            f"\n| {r.case} | {r.behaviour} | `{r.test.split('::', 1)[0]}::{r.test.split('::', 1)[1]}` |"
            for r in chosen
        )
    parts.append(f"{len(rows)} cases in all.\n")
    return "\n\n".join(parts)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability(area, case, behaviour): a row of docs/reliability.md")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    target = os.environ.get("MLGATE_RELIABILITY_JSON")
    if target:
        Path(target).write_text(json.dumps([dataclasses.asdict(r) for r in rows_of(items)]))
    if os.environ.get("MLGATE_WRITE_RELIABILITY") == "1":
        DOC.write_text(render(rows_of(items)))
