"""Fixtures of the end-to-end tests that run the built image (test_container, test_release_rehearsal)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.path.normpath(os.environ.get("MLGATE_SHARED_TOOLS") or ROOT.parent / "shared" / "tools"))
DOCKER_UP = TOOLS / "docker-up.sh"


def _why_no_engine() -> str | None:
    """None when an image can be built here; else why not, in words."""
    if DOCKER_UP.exists():
        return None
    if shutil.which("docker") is None:
        why = "no `docker` on PATH"
    else:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode == 0:
            return None
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    shown = f"../{DOCKER_UP.relative_to(ROOT.parent)}" if DOCKER_UP.is_relative_to(ROOT.parent) else str(DOCKER_UP)
    return f"no Docker engine answers (docker info failed: {why}) and {shown} does not exist"


@pytest.fixture(scope="session")
def image() -> tuple[str, dict[str, str]]:
    """Build the image from the real Dockerfile (.ci/docker-build.sh): (tag, environment for `docker`)."""
    reason = _why_no_engine()
    if reason is not None:
        if os.environ.get("CI") == "true" and TOOLS.exists():
            pytest.fail(f"{reason}; CI on a machine with {TOOLS} must run the container test")
        pytest.skip(reason)
    done = subprocess.run(["bash", str(ROOT / ".ci" / "docker-build.sh")], capture_output=True, text=True,
                          timeout=1800, check=False)
    if done.returncode != 0:
        pytest.fail(f"building the image failed:\n{done.stderr[-4000:]}")
    exports = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines()
                   if line.startswith("export "))
    return exports.pop("MLGATE_IMAGE"), exports
