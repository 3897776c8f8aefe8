"""The one importer of the repository's own code, named ``package.module:ClassName``.

A model architecture (``model-class``) and a torch-style Dataset (``dataset-class``) are named by
import path and imported from the checked-out repository (the workspace, ``import_root``).
:data:`IMPORT_PATH` is the one definition of that form: settings validates the inputs with it, and
the importers check direct callers with it.

sys.path policy: the checkout goes to the front of ``sys.path`` exactly while mlgate runs user code,
and is taken off right after (``with ImportRoot(root): ...``). "User code" is:

- importing the module, constructing the class, and unpickling a trusted pickled model;
- for a Dataset, also every pull of items while it is iterated. A Dataset may import lazily (in
  ``__getitem__``, or on its first ``__iter__``) long after it was constructed, so taking the path
  off right after the import would break it. A model class is used right away (imported,
  constructed, weights loaded), so its scope ends there.

Why not leave the checkout on ``sys.path`` for the rest of the run? At the front of ``sys.path`` it
shadows every import mlgate itself makes later: a repository with its own ``matplotlib.py`` or
``PIL/`` package would replace the library mlgate imports lazily when it draws figures or decodes
images. Scoping keeps the process's import state as it was: what mlgate imports outside user code
resolves the same way whatever the repository holds, and a run leaves ``sys.path`` as it found it.
Modules already imported from the checkout stay in ``sys.modules``, so the user's objects keep
working once the path is off as long as they import nothing new.

Cheap to import (settings imports it): no torch, no user code until asked.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlgate.errors import MlgateError

IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
"""``package.module:ClassName``: a dotted module path, a colon, one class name."""


def split_import_path(spec: str) -> tuple[str, str] | None:
    """``(module, class name)`` of ``package.module:ClassName``; ``None`` when ``spec`` has another form."""
    if not IMPORT_PATH.fullmatch(spec):
        return None
    module_name, _, class_name = spec.partition(":")
    return module_name, class_name


def import_path_parts(spec: str, error: type[MlgateError], *, what: str, form: str, example: str) -> tuple[str, str]:
    """``(module, class name)`` of ``spec``; raises ``error`` (the caller's domain exception), naming
    ``what`` was given, the ``form`` it must have and an ``example`` that works, when ``spec`` is not
    ``package.module:ClassName``."""
    parts = split_import_path(spec)
    if parts is None:
        raise error(f"{what} {spec!r} is not of the form {form}.", hint=f"Example: {example}")
    return parts


class ImportRoot:
    """The checkout user code is imported from; ``with`` it, it is on ``sys.path`` (``None``: nothing to add).

    Re-entrant and cheap to enter (the path is resolved once), so a Dataset's split can enter it for
    every item it pulls.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._entry = None if root is None else str(Path(root).resolve())

    def __enter__(self) -> None:
        if self._entry is not None:
            sys.path.insert(0, self._entry)

    def __exit__(self, *exc_info: object) -> None:
        if self._entry is not None and self._entry in sys.path:
            sys.path.remove(self._entry)

    def import_module(self, module_name: str) -> ModuleType:
        """Import ``module_name`` with the checkout on ``sys.path``.

        Raises whatever the import raises: an :class:`ImportError`, or anything the module's own
        import-time code raises. Callers turn it into their domain error.
        """
        with self:
            importlib.invalidate_caches()  # files written since the last import (tests, generated code)
            return importlib.import_module(module_name)
