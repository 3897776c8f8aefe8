"""The built image, run the way the GitHub runner runs a Docker container action.

The workspace is mounted at /github/workspace and owned by another user (as the runner's checkout
is), the file commands at /github/file_commands and the event at /github/workflow/event.json; the
container reaches the fake GitHub on the host's loopback (--network=host). The container runs as
root (as on GitHub); what it leaves in the workspace is then read as the runner user (uid 1001).

Where the image comes from (.ci/docker-build.sh): ../shared/tools/docker-up.sh when it exists (our
development machines), else a plain `docker build` wherever `docker info` answers (GitHub runners,
laptops); otherwise the test is skipped and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.dvc_repo import run
from tests.fakes.github import FakeGitHub
from tests.helpers import MARKER, DataRepo, build_data_repo, parse_outputs, pr_event

ROOT = Path(__file__).resolve().parents[2]
RUNNER_UID = 1001

pytestmark = pytest.mark.docker


@pytest.fixture
def workspace(image: tuple[str, dict[str, str]]) -> Iterator[Path]:
    """An empty folder for the checkout that the runner user can enter (pytest's tmp root is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="mlgate-workspace-"))
    path.chmod(0o755)
    yield path
    if os.geteuid() != 0:  # give the files the container made as root back to us, so they can go
        tag, docker_env = image
        subprocess.run(["docker", "run", "--rm", "-v", f"{path}:/w", "--entrypoint", "chown", tag, "-R",
                        f"{os.geteuid()}:{os.getegid()}", "/w"], env={**os.environ, **docker_env},
                       capture_output=True, timeout=120, check=False)
    shutil.rmtree(path)


def _as_runner_user(*command: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` as a later step of the job would: uid 1001 when we are root, else as ourselves."""
    if os.geteuid() == 0:
        return subprocess.run(list(command), user=RUNNER_UID, group=RUNNER_UID, extra_groups=[],
                              capture_output=True, timeout=60, check=False)
    return subprocess.run(list(command), capture_output=True, timeout=60, check=False)


def _assert_readable_by_the_runner_user(folder: Path) -> int:
    """Every folder under ``folder`` is 0755 and listable, every file 0644 and readable; returns the file count."""
    files = 0
    for path in sorted([folder, *folder.rglob("*")]):
        if path.is_dir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o755, f"{path}: {oct(path.stat().st_mode)}"
            listing = _as_runner_user("ls", "-A", str(path))
            assert listing.returncode == 0, f"cannot list {path}: {listing.stderr.decode()}"
        else:
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, f"{path}: {oct(path.stat().st_mode)}"
            read = _as_runner_user("cat", str(path))
            assert read.returncode == 0, f"cannot read {path}: {read.stderr.decode()}"
            assert read.stdout == path.read_bytes()
            files += 1
    return files


def test_container__posts_one_sticky_comment_and_leaves_files_the_runner_user_can_read(
    tmp_path: Path, image: tuple[str, dict[str, str]], fake_github: FakeGitHub, workspace: Path
) -> None:
    tag, docker_env = image
    repo: DataRepo = build_data_repo(tmp_path / "repo")
    run(tmp_path, repo.env, "git", "clone", "-q", str(repo.origin), str(workspace))
    if os.geteuid() == 0:  # the checkout belongs to the runner user, not to the container's root
        subprocess.run(["chown", "-R", f"{RUNNER_UID}:{RUNNER_UID}", str(workspace)], check=True)
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
    report_json = workspace / outputs["report-json"]
    assert report_json.exists()
    # written by root in the container, read by the job's later steps as the runner user
    assert _assert_readable_by_the_runner_user(report_json.parent) >= 5  # report.md, .json, 3 PNGs
    assert _assert_readable_by_the_runner_user(workspace / ".mlgate-cache") >= 1
