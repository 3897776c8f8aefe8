"""The built image, run the way the GitHub runner runs a Docker container action.

The workspace is mounted at /github/workspace and owned by another user (as the runner's checkout
is), the file commands at /github/file_commands and the event at /github/workflow/event.json; the
container reaches the fake GitHub on the host's loopback (--network=host).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_data_stats import MARKER, DataRepo, build_data_repo, pr_event
from tests.fakes.dvc_repo import run
from tests.fakes.github_server import FakeGitHub
from tests.unit.test_workflow import parse_outputs

ROOT = Path(__file__).resolve().parents[2]
DOCKER_UP = ROOT.parent / "shared" / "tools" / "docker-up.sh"

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def image() -> tuple[str, dict[str, str]]:
    """Build the image from the real Dockerfile (.ci/docker-build.sh); skip only outside CI."""
    if not DOCKER_UP.exists() and not shutil.which("docker"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the container test, but neither docker nor ../shared/tools/docker-up.sh exists")
        pytest.skip("no Docker engine here (set CI=true to make this a failure)")
    done = subprocess.run(["bash", str(ROOT / ".ci" / "docker-build.sh")], capture_output=True, text=True,
                          timeout=1800, check=False)
    if done.returncode != 0:
        pytest.fail(f"building the image failed:\n{done.stderr[-4000:]}")
    exports = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines()
                   if line.startswith("export "))
    return exports["MLGATE_IMAGE"], {"DOCKER_HOST": exports["DOCKER_HOST"]}


def test_container__posts_one_sticky_comment_from_a_workspace_owned_by_another_user(
    tmp_path: Path, image: tuple[str, dict[str, str]], fake_github: FakeGitHub
) -> None:
    tag, docker_env = image
    repo: DataRepo = build_data_repo(tmp_path / "repo")
    workspace = tmp_path / "workspace"
    run(tmp_path, repo.env, "git", "clone", "-q", str(repo.origin), str(workspace))
    subprocess.run(["chown", "-R", "1001:1001", str(workspace)], check=True)  # the runner user, not root
    file_commands = tmp_path / "file_commands"
    workflow_dir = tmp_path / "workflow"
    file_commands.mkdir()
    workflow_dir.mkdir()
    pr, event = pr_event(fake_github, repo)
    (workflow_dir / "event.json").write_text(json.dumps(event))
    remote = tmp_path / "repo" / "remote"
    env = {
        **fake_github.env(),
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": "/github/workflow/event.json",
        "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_OUTPUT": "/github/file_commands/set_output",
        "GITHUB_STEP_SUMMARY": "/github/file_commands/step_summary",
        "HOME": "/github/home",
        "INPUT_MODE": "data-stats",
        "INPUT_DATA": "data/processed",
        "INPUT_GITHUB-TOKEN": fake_github.token,
        "INPUT_FAIL-ON-LEAKAGE": "false",
    }
    command = ["docker", "run", "--rm", "--network=host", "--workdir", "/github/workspace",
               "-v", f"{workspace}:/github/workspace", "-v", f"{file_commands}:/github/file_commands",
               "-v", f"{workflow_dir}:/github/workflow", "-v", f"{remote}:{remote}"]
    for name in env:
        command += ["-e", name]
    for _ in range(2):
        done = subprocess.run([*command, tag], env={**os.environ, **docker_env, **env}, capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    comments = [c for c in fake_github.repo.comments_on(pr.number) if MARKER in c.body]
    assert len(comments) == 1
    assert f"**{repo.head.counts['train']:,}** train" in comments[0].body
    outputs = parse_outputs((file_commands / "set_output").read_text())  # later runs' values win
    assert outputs["passed"] == "true"
    assert outputs["data-changed"] == "true"
    assert outputs["comment-url"] != ""
    assert (workspace / outputs["report-json"]).exists()
