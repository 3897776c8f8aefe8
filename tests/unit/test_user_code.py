"""mlgate.user_code: one form of import path, and the checkout on sys.path only while user code runs."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgate.user_code import ImportRoot, split_import_path

_modules = itertools.count()


@pytest.fixture
def module_name() -> Iterator[str]:
    """A fresh module name per test: Python caches modules by name."""
    name = f"mlgate_test_usercode_{next(_modules)}"
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("spec", "parts"),
    [
        ("models.cnn:SmallCNN", ("models.cnn", "SmallCNN")),
        ("_private:_Net", ("_private", "_Net")),
        ("models.cnn.SmallCNN", None),  # no colon
        ("models:cnn:SmallCNN", None),
        ("models:Outer.Inner", None),  # one class name, not an attribute path
        ("my-models:Net", None),
        ("1models:Net", None),
        (":Net", None),
        ("models:", None),
    ],
)
def test_split_import_path__accepts_only_package_module_colon_class(spec: str, parts: tuple[str, str] | None) -> None:
    assert split_import_path(spec) == parts


def test_import_root__imports_from_the_checkout_then_takes_it_off_sys_path(tmp_path: Path, module_name: str) -> None:
    (tmp_path / f"{module_name}.py").write_text("VALUE = 42\n")
    path_before = list(sys.path)

    module = ImportRoot(tmp_path).import_module(module_name)

    assert module.VALUE == 42
    assert Path(module.__file__ or "").parent == tmp_path.resolve()
    assert sys.path == path_before


def test_import_root__failing_import_still_restores_sys_path(tmp_path: Path, module_name: str) -> None:
    (tmp_path / f"{module_name}.py").write_text("raise RuntimeError('boom at import')\n")
    path_before = list(sys.path)

    with pytest.raises(RuntimeError, match="boom at import"):
        ImportRoot(tmp_path).import_module(module_name)

    assert sys.path == path_before


def test_import_root__puts_the_checkout_first_while_entered_and_nests(tmp_path: Path) -> None:
    path_before = list(sys.path)
    checkout = ImportRoot(tmp_path)

    with checkout:
        assert sys.path[0] == str(tmp_path.resolve())
        with checkout:
            assert sys.path[:2] == [str(tmp_path.resolve())] * 2
        assert sys.path[0] == str(tmp_path.resolve())
    assert sys.path == path_before


def test_import_root__none_changes_nothing() -> None:
    path_before = list(sys.path)

    with ImportRoot(None):
        assert sys.path == path_before
    assert ImportRoot(None).import_module("json").__name__ == "json"
    assert sys.path == path_before
