"""action.yml, the settings models, the README table and --help describe the same inputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mlgate.action_metadata import input_docs, render_action_inputs, render_readme_table
from mlgate.cli import build_parser
from mlgate.settings import MODES, SETTINGS_BY_MODE, input_name, load_settings

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `.venv/bin/python -m mlgate.action_metadata` to regenerate it from mlgate/settings.py"


def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def readme_rows(heading: str) -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `([\w-]+)` \|(.*)\|\s*$", section, re.M)}


def test_action_inputs__equal_every_settings_field_of_every_mode() -> None:
    fields = {input_name(f) for model in SETTINGS_BY_MODE.values() for f in model.model_fields}
    assert set(action()["inputs"]) == fields


def test_action_inputs__are_generated_from_the_settings_models() -> None:
    text = (ROOT / "action.yml").read_text()
    assert render_action_inputs() in text, REGENERATE


def test_action_description__fits_the_marketplace_limit() -> None:
    assert len(action()["description"]) <= 125


def test_action_inputs__carry_every_real_default_and_no_empty_or_placeholder_default() -> None:
    inputs = action()["inputs"]
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    assert inputs["mode"]["required"] is True
    assert inputs["comment"]["default"] == "update"
    assert inputs["host-figures"]["default"] == "true"
    assert inputs["baseline-time-budget"]["default"] == "60"
    assert inputs["predictions"]["default"] == "100"
    assert "default" not in inputs["data"]  # required for data-stats: no default to show
    for name, spec in inputs.items():
        assert spec.get("default") != "", name
        assert "PydanticUndefined" not in spec["description"], name
        assert "Default:" not in spec["description"], name  # the default lives in `default:`


@pytest.mark.parametrize("mode", MODES)
def test_action_defaults__as_the_runner_passes_them__validate_and_equal_each_modes_own_defaults(mode: str) -> None:
    """The runner sets INPUT_<NAME> for every input with a default, including other modes' inputs."""
    passed = {name: spec["default"] for name, spec in action()["inputs"].items() if "default" in spec}
    required = {"data-stats": {"data": "data"}, "publish": {"report-dir": "fork-report"}}.get(mode, {})
    settings = load_settings({**passed, "mode": mode, **required, "github-token": "t"})
    model = SETTINGS_BY_MODE[mode]
    for field, info in model.model_fields.items():
        if field not in ("mode", "github_token") and not info.is_required():
            assert getattr(settings, field) == info.default, field


def test_readme_inputs_table__is_generated_from_the_settings_models() -> None:
    text = (ROOT / "README.md").read_text()
    assert render_readme_table() in text, REGENERATE
    rows = readme_rows("## Inputs")
    assert list(rows) == list(action()["inputs"])
    assert "`data` | required for data-stats |" in text


def test_readme_outputs_table__equals_action_yml() -> None:
    rows = readme_rows("## Outputs")
    outputs = action()["outputs"]
    assert list(rows) == list(outputs)
    for name, spec in outputs.items():
        assert spec["description"] in rows[name], name


@pytest.mark.parametrize("mode", MODES)
def test_help__shows_each_real_default_and_no_placeholder(mode: str) -> None:
    text = build_parser(mode)._subparsers._group_actions[0].choices[mode].format_help()  # type: ignore[union-attr]
    flat = " ".join(text.split())
    assert "PydanticUndefined" not in flat
    assert "(default: )" not in flat
    for doc in input_docs():
        if mode in doc.modes and doc.name not in ("mode", "github-token") and doc.default is not None:
            assert f"(default: {doc.default})" in flat, doc.name


def test_version__is_one_number_in_the_package_pyproject_and_the_changelog() -> None:
    import tomllib

    from mlgate import __version__

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == __version__
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert re.search(rf"^## \[{re.escape(__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)


@pytest.mark.parametrize("name", ["LICENSE", "SECURITY.md", "CONTRIBUTING.md", "CHANGELOG.md"])
def test_project_files__exist_for_the_marketplace(name: str) -> None:
    assert (ROOT / name).read_text().strip()


def test_action_on_main__builds_the_dockerfile_so_ci_exercises_it() -> None:
    """Released tags pin a prebuilt image instead (.github/scripts/pin_action_image.py, tests/unit/test_release.py)."""
    assert action()["runs"] == {"using": "docker", "image": "Dockerfile"}
