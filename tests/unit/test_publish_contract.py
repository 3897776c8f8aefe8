"""The publish contract has one home, and the publishing modules import each other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from mlgate.publish_contract import has_marker, manifest_json, marker_for, parse_manifest, parse_marker

PACKAGE = Path(__file__).resolve().parents[2] / "mlgate"
PUBLISHING = ("mlgate.publish", "mlgate.publish_contract", "mlgate.fork_publish", "mlgate.github.comments",
              "mlgate.github.checks", "mlgate.github.branch_store", "mlgate.github.pulls")


def imports(module: str) -> set[str]:
    """Every mlgate module ``module`` imports, at the top or inside a function (an import is an edge either way)."""
    path = PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlgate"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mlgate")}
    return found


def test_publishing_modules__no_import_cycle_even_through_function_local_imports() -> None:
    graph = {module: imports(module) & set(PUBLISHING) for module in PUBLISHING}

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph[start])

    assert [module for module in PUBLISHING if reaches(module, module)] == []
    assert graph["mlgate.publish_contract"] == set()  # the contract depends on no publishing module


def test_contract__built_and_parsed_in_one_module() -> None:
    marker = marker_for("model-gate", "Model gate")
    assert parse_marker(marker) == ("model-gate", "Model gate")
    assert has_marker(f"{marker}\r\n## report", marker) and not has_marker(f"> {marker}", marker)
    manifest = parse_manifest(manifest_json(marker=marker, pr_number=5, head_sha="a" * 40, version="1.2.3").encode())
    assert (manifest.mode, manifest.title, manifest.marker, manifest.pr_number) == ("model-gate", "Model gate",
                                                                                  marker, 5)
    for module in ("publish", "fork_publish", "github/comments"):  # nobody else spells a marker
        assert "<!-- mlgate:" not in (PACKAGE / f"{module}.py").read_text()


def test_contract__no_module_but_the_contract_spells_a_marker_or_the_manifest_name() -> None:
    spelled = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
               if "<!-- mlgate" in path.read_text() or '"publish.json"' in path.read_text()}
    assert spelled == {"publish_contract.py"}
