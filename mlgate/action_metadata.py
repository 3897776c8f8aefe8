"""The action's inputs as a user reads them: ``action.yml``, the README table and ``--help``.

All three are generated from the settings models, so a default or a description is written once.
``python -m mlgate.action_metadata`` rewrites the ``inputs:`` block of action.yml and the README's
inputs table; a unit test fails when either is out of date.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path

from mlgate.settings import MODES, SETTINGS_BY_MODE, TOKEN_DEFAULT, CommonSettings, default_text, input_name


@dataclasses.dataclass(frozen=True)
class InputDoc:
    name: str
    description: str
    default: str | None
    """The default as the action passes it (``INPUT_<NAME>``); None when the input has none."""
    required_by: tuple[str, ...]
    """Modes for which the input must be given."""
    modes: tuple[str, ...]

    @property
    def scoped_description(self) -> str:
        if self.name == "mode" or set(self.modes) == set(MODES):
            return self.description
        return f"{self.description} Modes: {', '.join(self.modes)}."


@functools.cache
def input_docs() -> tuple[InputDoc, ...]:
    """Every input of every mode, in declaration order (common inputs first)."""
    docs: dict[str, InputDoc] = {}
    for mode in MODES:
        for field, info in SETTINGS_BY_MODE[mode].model_fields.items():
            name = input_name(field)
            if name == "mode":
                description = CommonSettings.model_fields["mode"].description or ""
                docs[name] = InputDoc(name, description, None, MODES, MODES)
                continue
            default = TOKEN_DEFAULT if name == "github-token" else default_text(info)
            known = docs.get(name)
            if known is None:
                docs[name] = InputDoc(name, info.description or "", default,
                                      (mode,) if info.is_required() else (), (mode,))
            else:
                docs[name] = dataclasses.replace(
                    known, modes=(*known.modes, mode),
                    required_by=(*known.required_by, mode) if info.is_required() else known.required_by,
                )
    return tuple(docs.values())


def _yaml_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def render_action_inputs() -> str:
    lines = ["inputs:"]
    for doc in input_docs():
        lines += [f"  {doc.name}:", f"    description: {_yaml_quote(doc.scoped_description)}"]
        lines.append(f"    required: {'true' if doc.name == 'mode' else 'false'}")
        if doc.default is not None:
            lines.append(f"    default: {_yaml_quote(doc.default)}")
    return "\n".join(lines) + "\n"


def _default_cell(doc: InputDoc) -> str:
    if doc.name == "mode":
        return "**required**"
    if doc.required_by:
        return f"required for {', '.join(doc.required_by)}"
    if doc.default is None:
        return "–"
    return f"`{doc.default}`"


def render_readme_table() -> str:
    rows = ["| input | default | description |", "|---|---|---|"]
    rows += [f"| `{doc.name}` | {_default_cell(doc)} | {doc.scoped_description} |" for doc in input_docs()]
    return "\n".join(rows) + "\n"


def replace_block(text: str, start: str, end: str, block: str) -> str:
    """``text`` with everything from the line ``start`` up to (not including) ``end`` replaced by ``block``."""
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        raise ValueError(f"cannot find {start!r} ... {end!r}")
    return head + block + end + rest.split(end, 1)[1]


def updated_action_yml(text: str) -> str:
    return replace_block(text, "inputs:\n", "outputs:\n", render_action_inputs())


def updated_readme(text: str) -> str:
    section = "## Inputs\n\n"
    head, found, rest = text.partition(section)
    if not found:
        raise ValueError("README.md has no '## Inputs' section")
    table_end = rest.index("\n\n")
    return head + section + render_readme_table() + rest[table_end + 1:]


def main(root: Path) -> int:
    for name, update in (("action.yml", updated_action_yml), ("README.md", updated_readme)):
        path = root / name
        path.write_text(update(path.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
