"""The release mechanism (.github/scripts, .github/workflows/release.yml) and the workflows users copy.

- pin_action_image.py turns the real action.yml into the released one: a Docker action that runs
  ghcr.io/OWNER/mlgate pinned by digest, with everything else unchanged; bad owners and digests are
  refused before anything is written.
- changelog_section.py cuts one version's notes out of a Keep a Changelog file, and fails without them.
- Every workflow here and in examples/ pins third-party actions by commit SHA, bounds every job, and
  passes only inputs that action.yml declares, with values mlgate's settings accept.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from mlgate.report_blocks import IMAGE_PATTERN
from mlgate.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / ".github" / "scripts"
DIGEST = "sha256:" + "0123456789abcdef" * 4
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
EXAMPLES = sorted((ROOT / "examples" / "workflows").glob("*.yml"))
SHA_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def load_script(name: str) -> ModuleType:
    """A script of .github/scripts imported as a module (it is not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and friends look the module up by name
    spec.loader.exec_module(module)
    return module


pin = load_script("pin_action_image")
changelog = load_script("changelog_section")


def action_text() -> str:
    return (ROOT / "action.yml").read_text(encoding="utf-8")


def check_jsonschema() -> str | None:
    """check-jsonschema from PATH or from the venv .ci/static-checks.sh installs."""
    return shutil.which("check-jsonschema") or next(
        (str(p) for p in [ROOT / ".venv-lint" / "bin" / "check-jsonschema"] if p.exists()), None)


# --- pin_action_image.py ---------------------------------------------------------------------------


def test_pin_image__real_action_yml_becomes_a_docker_action_pinned_by_digest() -> None:
    original = yaml.safe_load(action_text())
    pinned = yaml.safe_load(pin.pin_image(action_text(), "mlgate", DIGEST))
    assert original["runs"] == {"using": "docker", "image": "Dockerfile"}  # main still builds the Dockerfile
    assert pinned["runs"]["using"] == "docker"
    assert pinned["runs"]["image"] == f"docker://ghcr.io/mlgate/mlgate@{DIGEST}"
    assert pinned["runs"]["env"] == {"MLGATE_IMAGE": f"ghcr.io/mlgate/mlgate@{DIGEST}"}
    for key in ("name", "description", "author", "branding", "inputs", "outputs"):
        assert pinned[key] == original[key], key


def test_pin_image__the_footer_accepts_the_image_it_sets() -> None:
    """mlgate/report_blocks.py shows MLGATE_IMAGE in the footer only when it matches IMAGE_PATTERN."""
    pinned = yaml.safe_load(pin.pin_image(action_text(), "my-org", DIGEST))
    assert IMAGE_PATTERN.fullmatch(pinned["runs"]["env"]["MLGATE_IMAGE"])


def test_pin_image__changes_only_the_image_line_byte_for_byte() -> None:
    before = action_text().split("\n")
    after = pin.pin_image(action_text(), "mlgate", DIGEST).split("\n")
    index = before.index("  image: Dockerfile")
    assert after[:index] == before[:index]
    assert after[index:index + 3] == [
        f"  image: docker://ghcr.io/mlgate/mlgate@{DIGEST}",
        "  env:",
        f"    MLGATE_IMAGE: ghcr.io/mlgate/mlgate@{DIGEST}",
    ]
    assert after[index + 3:] == before[index + 1:]


def test_pin_image__keeps_crlf_line_endings_and_a_trailing_comment() -> None:
    text = "name: x\r\ndescription: y\r\nruns:\r\n  using: docker\r\n  image: 'Dockerfile'  # built per run\r\n"
    pinned = pin.pin_image(text, "mlgate", DIGEST)
    assert pinned.startswith("name: x\r\ndescription: y\r\nruns:\r\n  using: docker\r\n")
    assert f"  image: docker://ghcr.io/mlgate/mlgate@{DIGEST}  # built per run\r\n  env:\r\n" in pinned
    assert "\n" not in pinned.replace("\r\n", "")


def test_pin_image__a_runs_block_not_last_in_the_file_is_found() -> None:
    text = "name: x\nruns:\n  # built here\n  using: docker\n  image: Dockerfile\n  args: [a]\nbranding:\n  icon: x\n"
    pinned = yaml.safe_load(pin.pin_image(text, "mlgate", DIGEST))
    assert pinned["runs"]["args"] == ["a"]
    assert pinned["branding"] == {"icon": "x"}


@pytest.mark.parametrize("digest", [
    "sha256:abc",  # too short
    "sha256:" + "0" * 65,  # too long
    "sha256:" + "A" * 64,  # upper-case hex: registries print lower case
    "sha512:" + "0" * 64,
    "0" * 64,  # no algorithm
    "sha256:" + "g" * 64,
    "sha256:" + "0" * 64 + "\nfoo: bar",  # YAML injection
    "latest",
    "",
])
def test_pin_image__refuses_what_is_not_a_sha256_digest(digest: str) -> None:
    with pytest.raises(pin.PinError, match=r"digest .* is not an image digest: `sha256:` followed by exactly 64"):
        pin.pin_image(action_text(), "mlgate", digest)


@pytest.mark.parametrize("owner", ["", "-org", "org-", "my--org", "my_org", "my/org", "my org", "a" * 40,
                                   "org\nx", "..", "ghcr.io"])
def test_pin_image__refuses_what_is_not_a_github_owner(owner: str) -> None:
    with pytest.raises(pin.PinError, match=r"is not a GitHub user or organisation name"):
        pin.pin_image(action_text(), owner, DIGEST)


def test_pin_image__an_upper_case_owner_is_refused_with_the_lower_case_hint() -> None:
    with pytest.raises(pin.PinError, match=r"ghcr.io needs it lower case"):
        pin.pin_image(action_text(), "MLGate", DIGEST)


def test_pin_image__an_already_pinned_action_is_refused() -> None:
    pinned = pin.pin_image(action_text(), "mlgate", DIGEST)
    with pytest.raises(pin.PinError, match=r"only `image: Dockerfile` .* is pinned"):
        pin.pin_image(pinned, "mlgate", DIGEST)


def test_pin_image__a_composite_action_is_refused() -> None:
    with pytest.raises(pin.PinError, match=r"not a Docker container action"):
        pin.pin_image("name: x\nruns:\n  using: composite\n  steps: []\n", "mlgate", DIGEST)


def test_pin_main__rewrites_the_file_and_refuses_bad_input_without_touching_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    action = tmp_path / "action.yml"
    action.write_text(action_text(), encoding="utf-8")
    assert pin.main(["--owner", "mlgate", "--digest", "sha256:nope", "--action", str(action)]) == 1
    assert action.read_text(encoding="utf-8") == action_text()
    assert "::error title=Cannot pin the action's image::digest 'sha256:nope'" in capsys.readouterr().err
    assert pin.main(["--owner", "mlgate", "--digest", DIGEST, "--action", str(action)]) == 0
    assert yaml.safe_load(action.read_text())["runs"]["image"] == f"docker://ghcr.io/mlgate/mlgate@{DIGEST}"


def test_pin_image__another_registry_for_the_rehearsal_and_only_a_host_name() -> None:
    pinned = yaml.safe_load(pin.pin_image(action_text(), "mlgate", DIGEST, registry="127.0.0.1:5000"))
    assert pinned["runs"]["image"] == f"docker://127.0.0.1:5000/mlgate/mlgate@{DIGEST}"
    for registry in ("ghcr.io/evil", "GHCR.IO", "ghcr.io:port", "", "ghcr.io\nx: y"):
        with pytest.raises(pin.PinError, match="is not a lower-case host name"):
            pin.pin_image(action_text(), "mlgate", DIGEST, registry=registry)


def test_pinned_action__passes_the_github_actions_schema(tmp_path: Path) -> None:
    tool = check_jsonschema()
    if tool is None:
        pytest.skip("check-jsonschema is not installed (bash .ci/static-checks.sh installs it into .venv-lint)")
    action = tmp_path / "action.yml"
    action.write_text(pin.pin_image(action_text(), "mlgate", DIGEST), encoding="utf-8")
    broken = tmp_path / "broken.yml"  # the schema is really applied: a Docker action needs `image`
    broken.write_text("name: x\ndescription: y\nruns:\n  using: docker\n", encoding="utf-8")
    ok = subprocess.run([tool, "--builtin-schema", "vendor.github-actions", str(action)],
                        capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run([tool, "--builtin-schema", "vendor.github-actions", str(broken)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode != 0, bad.stdout


# --- changelog_section.py --------------------------------------------------------------------------

CHANGELOG = """\
# Changelog

## [Unreleased]

- something not yet released

## [1.0.10] - 2026-12-24

### Fixed

- ten

## [1.0.1] - 2026-12-01

### Fixed

- the `report` output on Windows runners

## [1.0.0] - 2026-11-29

### Added

- everything

[Unreleased]: https://github.com/mlgate/mlgate/compare/v1.0.1...HEAD
[1.0.1]: https://github.com/mlgate/mlgate/compare/v1.0.0...v1.0.1
[1.0.0]: https://github.com/mlgate/mlgate/releases/tag/v1.0.0
"""


def test_changelog_section__is_the_body_between_this_heading_and_the_next() -> None:
    assert changelog.changelog_section(CHANGELOG, "1.0.1") == (
        "### Fixed\n\n- the `report` output on Windows runners\n")


def test_changelog_section__the_last_section_leaves_out_the_link_definitions() -> None:
    assert changelog.changelog_section(CHANGELOG, "v1.0.0") == "### Added\n\n- everything\n"


def test_changelog_section__a_version_is_not_a_prefix_of_another() -> None:
    assert changelog.changelog_section(CHANGELOG, "1.0.10") == "### Fixed\n\n- ten\n"


@pytest.mark.parametrize("version", ["1.0.2", "1.0", "Unreleased"])
def test_changelog_section__fails_without_a_section_for_the_version(version: str) -> None:
    with pytest.raises((changelog.NoSection, ValueError)):
        changelog.changelog_section(CHANGELOG, version)


def test_changelog_section__fails_on_an_empty_section() -> None:
    with pytest.raises(changelog.NoSection, match="is empty"):
        changelog.changelog_section("## [2.0.0] - 2027-01-01\n\n## [1.0.0]\n\n- x\n", "2.0.0")


def test_changelog_main__prints_the_notes_or_fails_with_an_annotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_text(CHANGELOG, encoding="utf-8")
    assert changelog.main(["v1.0.0", "--changelog", str(path)]) == 0
    assert capsys.readouterr().out == "### Added\n\n- everything\n"
    assert changelog.main(["9.9.9", "--changelog", str(path)]) == 1
    assert "::error file=" in capsys.readouterr().err


def test_changelog__the_current_version_has_release_notes() -> None:
    """Tagging v<version> would fail in release.yml's first job otherwise."""
    from mlgate import __version__

    notes = changelog.changelog_section((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), __version__)
    assert notes.strip()


# --- workflows -------------------------------------------------------------------------------------


def load_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return dict(data)


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield name, step


@pytest.mark.parametrize("path", WORKFLOWS + EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_workflow__least_privilege_bounded_jobs_and_actions_pinned_by_sha(path: Path) -> None:
    workflow = load_workflow(path)
    assert workflow["permissions"] == {}, "grant permissions per job, none at the top"
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: no timeout-minutes"
        assert "permissions" in job, f"{name}: no permissions block"
    text = path.read_text(encoding="utf-8")
    for _, step in steps(workflow):
        uses = step.get("uses")
        if uses is None or uses.startswith("./") or uses.startswith("mlgate/mlgate@"):
            continue  # this repository itself: `./` in CI, the documented `@v1` in the examples
        assert SHA_PINNED.match(uses), f"{uses}: pin the full commit SHA"
        assert re.search(rf"{re.escape(uses)} # v\d+\.\d+\.\d+\n", text), f"{uses}: add a `# vX.Y.Z` comment"


def test_release_workflow__nothing_is_published_before_the_tests_and_the_smoke_test_pass() -> None:
    workflow = load_workflow(ROOT / ".github" / "workflows" / "release.yml")
    jobs = workflow["jobs"]
    assert workflow["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    assert set(jobs["image"]["needs"]) >= {"prepare", "test"}
    assert set(jobs["index"]["needs"]) >= {"prepare", "image"}
    assert set(jobs["release"]["needs"]) >= {"prepare", "index"}
    for name in ("prepare", "test"):
        assert jobs[name]["permissions"] == {"contents": "read"}, name
    image_steps = [s.get("run", "") + s.get("uses", "") for s in jobs["image"]["steps"]]
    smoke = next(i for i, s in enumerate(image_steps) if "smoke_image.py" in s)
    build = next(i for i, s in enumerate(image_steps) if "docker build" in s)
    first_publish = min(i for i, s in enumerate(image_steps) if "docker push" in s or "docker login" in s)
    assert build < smoke < first_publish
    release_steps = [s.get("run", "") for s in jobs["release"]["steps"]]
    assert any("pin_action_image.py" in s for s in release_steps)
    assert "gh release create" in release_steps[-1] and "changelog_section.py" in release_steps[-1]


def test_release_workflow__anonymous_pull_of_every_architecture_before_anything_moves() -> None:
    jobs = load_workflow(ROOT / ".github" / "workflows" / "release.yml")["jobs"]
    runs = [s.get("run", "") for s in jobs["release"]["steps"]]
    public = next(i for i, s in enumerate(runs) if "check_public_image.py" in s)
    assert "docker login" not in "".join(runs[:public + 1]).replace("docker logout", "")
    assert "--platform linux/amd64 --platform linux/arm64" in runs[public]
    moving = ("push --force", "imagetools create", "gh release create")
    moves = [i for i, s in enumerate(runs) if any(word in s for word in moving)]
    assert moves and public < min(moves)
    assert all("--prefer-index=false" in runs[i] for i in moves if "imagetools create" in runs[i])


def test_release_workflow__native_builds_per_architecture_and_one_index() -> None:
    jobs = load_workflow(ROOT / ".github" / "workflows" / "release.yml")["jobs"]
    matrix = jobs["image"]["strategy"]["matrix"]["include"]
    assert {(m["arch"], m["runner"]) for m in matrix} == {("amd64", "ubuntu-24.04"), ("arm64", "ubuntu-24.04-arm")}
    index = "".join(s.get("run", "") for s in jobs["index"]["steps"])
    assert 'imagetools create --tag "$IMAGE:$VERSION" "$IMAGE@$amd64" "$IMAGE@$arm64"' in index


def test_release_workflow__tags_pushed_with_the_app_token_and_never_after_publication() -> None:
    steps_ = load_workflow(ROOT / ".github" / "workflows" / "release.yml")["jobs"]["release"]["steps"]
    app = next(s for s in steps_ if s.get("uses", "").startswith("actions/create-github-app-token@"))
    assert app["with"]["permission-workflows"] == "write" and app["with"]["permission-contents"] == "write"
    push = next(s for s in steps_ if "push --force --atomic" in s.get("run", ""))
    assert push["env"]["APP_TOKEN"] == "${{ steps.app.outputs.token }}"
    assert steps_[0]["id"] == "state" and "gh release view" in steps_[0]["run"]
    assert all(s.get("if") == "steps.state.outputs.published == 'false'" for s in steps_[1:])
    checkout = next(s for s in steps_ if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", WORKFLOWS + EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_workflow__no_action_on_a_retired_runtime_or_replaced_by_actions_attest(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for retired in ("actions/attest-build-provenance@", "actions/attest-sbom@", "# v0.23.", "@v4"):
        assert retired not in text, f"{path.name}: {retired}"
    assert re.findall(r"actions/checkout@[0-9a-f]{40} # v(\d+)\.", text) in ([], ["7"] * text.count("checkout@"))


def test_action_metadata__has_what_a_marketplace_listing_needs() -> None:
    action = yaml.safe_load(action_text())
    owners = {m.group(1) for p in EXAMPLES for m in re.finditer(r"uses: ([\w-]+)/mlgate@", p.read_text())}
    assert action["name"].strip() and action["name"].lower() not in owners | {"mlgate"}  # unique on GitHub
    assert action["description"].strip()
    assert set(action["branding"]) == {"icon", "color"}
    assert action["branding"]["color"] in {"white", "black", "yellow", "blue", "green", "orange", "red", "purple",
                                           "gray-dark"}


def mlgate_steps() -> Iterator[tuple[str, dict[str, str]]]:
    for path in WORKFLOWS + EXAMPLES:
        for job, step in steps(load_workflow(path)):
            uses = step.get("uses", "")
            if uses == "./" or uses.startswith("mlgate/mlgate@"):
                yield f"{path.name}:{job}:{step.get('id', step.get('name', ''))}", step.get("with", {})


@pytest.mark.parametrize(("where", "inputs"), list(mlgate_steps()), ids=[w for w, _ in mlgate_steps()])
def test_workflow__every_mlgate_step_passes_inputs_the_action_declares_and_mlgate_accepts(
    where: str, inputs: dict[str, str]
) -> None:
    declared = yaml.safe_load(action_text())["inputs"]
    assert set(inputs) <= set(declared), f"{where}: unknown inputs {set(inputs) - set(declared)}"
    # the runner passes strings; secrets and expressions are filled in at run time
    values = {name: "placeholder" if "${{" in str(value) else str(value) for name, value in inputs.items()}
    values.pop("gcp-credentials", None)  # a real service-account key is checked where it is used
    load_settings({"github-token": "t", **values})  # raises InvalidInput naming the bad input
