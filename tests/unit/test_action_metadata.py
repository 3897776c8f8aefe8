"""action.yml, the settings models and the README table describe the same inputs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import mlgate.model.settings  # noqa: F401  # registers the model modes' settings
from mlgate.settings import SETTINGS_BY_MODE, input_name

ROOT = Path(__file__).resolve().parents[2]


def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def readme_rows(heading: str) -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `([\w-]+)` \|(.*)\|\s*$", section, re.M)}


def test_action_inputs__equal_every_settings_field_of_every_mode() -> None:
    fields = {input_name(f) for model in SETTINGS_BY_MODE.values() for f in model.model_fields}
    assert set(action()["inputs"]) == fields


def test_action_inputs__default_empty_so_each_mode_applies_its_own_defaults() -> None:
    inputs = action()["inputs"]
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    assert inputs["mode"]["required"] is True
    for name, spec in inputs.items():
        if name not in ("github-token", "mode"):
            assert spec["default"] == "", name


def test_action__is_a_docker_action_built_from_the_dockerfile() -> None:
    assert action()["runs"] == {"using": "docker", "image": "Dockerfile"}


def test_readme_inputs_table__equals_action_yml() -> None:
    rows = readme_rows("## Inputs")
    inputs = action()["inputs"]
    assert list(rows) == list(inputs)
    for name, spec in inputs.items():
        assert spec["description"] in rows[name], name


def test_readme_outputs_table__equals_action_yml() -> None:
    rows = readme_rows("## Outputs")
    outputs = action()["outputs"]
    assert list(rows) == list(outputs)
    for name, spec in outputs.items():
        assert spec["description"] in rows[name], name
