"""The maps of modules in README.md and tests/README.md are generated from the docstrings and up to date."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tests.package_map import MAPS, ROOT, render, summary, updated, write


@pytest.mark.parametrize("file", list(MAPS))
def test_map__equals_the_one_generated_from_the_docstrings(file: str) -> None:
    if os.environ.get("MLGATE_WRITE_MAP"):
        write()
    text = (ROOT / file).read_text()
    assert updated(text, MAPS[file](), file) == text, f"{file} is out of date: run `python -m tests.package_map`"


def test_every_module__has_a_docstring_that_says_what_it_is() -> None:
    missing = [path.relative_to(ROOT).as_posix() for folder in ("mlgate", "tests")
               for path in sorted((ROOT / folder).rglob("*.py"))
               if not path.name.startswith("test_") and not ast.get_docstring(ast.parse(path.read_text()))]
    assert missing == []


def test_map__lists_every_module_and_folder_with_its_first_sentence(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text('"""The package."""\n')
    (tmp_path / "pkg" / "a.py").write_text('"""Does ``a``, see :func:`~pkg.b.f`. More.\n\nDetails."""\n')
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text('"""A folder\nof modules."""\n')
    (tmp_path / "pkg" / "sub" / "test_x.py").write_text('"""A test."""\n')

    assert summary(tmp_path / "pkg" / "a.py") == "Does `a`, see `pkg.b.f`."
    assert render(tmp_path / "pkg", skip_tests=True).splitlines() == [
        "pkg/    The package.", "  a.py  Does `a`, see `pkg.b.f`.", "  sub/  A folder of modules."]
