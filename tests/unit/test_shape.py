"""The package's shape holds: no import cycle (not even through a function-local import)."""

from __future__ import annotations

from pathlib import Path

from tests.shape import import_cycles, import_graph


def test_package__no_import_cycle_even_through_function_local_imports() -> None:
    assert import_cycles() == []


def test_import_cycles__found_through_a_function_local_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from pkg import a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    (package / "d.py").write_text("import pkg.c\n")

    assert import_cycles(package) == [["pkg.a", "pkg.sub.b"]]
    assert import_graph(package)["pkg.c"] == set()  # a TYPE_CHECKING import never runs
    assert import_graph(package)["pkg.d"] == {"pkg.c"}
