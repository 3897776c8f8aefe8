"""Helpers that more than one test module uses: reading the runner's file commands, starting
entrypoint.py as the runner does, and the git + DVC repository whose data changes between two
commits (the data-stats end-to-end and container tests).

A helper used by one test module stays in that module. This module imports no torch: unit tests
import it too (``make_course`` is imported where a data repository is built).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.fakes.dvc_repo import hermetic_env, run

if TYPE_CHECKING:
    from mlgate.data.gates import DataGateThresholds
    from mlgate.settings import DataStatsSettings
    from tests.fakes.github import FakeGitHub, FakePull
    from tests.fixtures.datasets import GroundTruth

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- mlgate:data-stats:Data report -->"  # data-stats' comment marker for the default title


# ---- data-stats' gate thresholds, taken from its settings as run_data_stats takes them


def data_gate_thresholds(settings: DataStatsSettings) -> DataGateThresholds:
    """The gate inputs of ``settings``, for tests that load inputs and evaluate the data gates."""
    from mlgate.data.gates import DataGateThresholds  # imports torch, which this module does not

    return DataGateThresholds.model_validate(settings.model_dump(include=set(DataGateThresholds.model_fields)))


# ---- the runner's file commands


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_outputs(text: str) -> dict[str, str]:
    """The runner's parser for $GITHUB_OUTPUT heredocs, written independently of mlgate's writer."""
    outputs, lines, i = {}, text.split("\n"), 0
    while i < len(lines) and lines[i]:
        name, delimiter = lines[i].split("<<", 1)
        end = lines.index(delimiter, i + 1)
        outputs[name] = "\n".join(lines[i + 1:end])
        i = end + 1
    return outputs


# ---- entrypoint.py as the runner starts the container


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    workspace: Path

    def report_json(self) -> dict[str, Any]:
        return dict(json.loads((self.workspace / self.outputs["report-json"]).read_text()))


def run_entrypoint(files: Path, workspace: Path, event_name: str, event: Mapping[str, Any],
                   env: Mapping[str, str], inputs: Mapping[str, str], *,
                   runner_env: Mapping[str, str | None] | None = None) -> Run:
    """Start entrypoint.py the way the GitHub runner starts the container: INPUT_* and GITHUB_*
    variables, an event payload file, and the output/summary file commands read back afterwards.

    ``files`` (a new folder) holds the event, $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY of this run;
    ``env`` adds the fakes' variables and fixed INPUT_* values; ``inputs`` are snake_case input names;
    ``runner_env`` replaces (None: removes) what the runner sets, for a broken environment."""
    files.mkdir()
    (files / "event.json").write_text(json.dumps(event))
    output, summary = files / "output", files / "summary"
    full_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(files),
        **env,
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(files / "event.json"),
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    full_env.update({f"INPUT_{name.upper().replace('_', '-')}": value for name, value in inputs.items()})
    for name, value in (runner_env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    done = subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], cwd=workspace, env=full_env,
                          capture_output=True, text=True, timeout=300, check=False)
    return Run(done.returncode, done.stdout, done.stderr,
               parse_outputs(output.read_text()) if output.is_file() else {},
               summary.read_text() if summary.is_file() else "", workspace)


# ---- a git + DVC repository whose data changes between two commits


@dataclass
class DataRepo:
    origin: Path
    env: dict[str, str]
    base_sha: str
    head_sha: str
    base: GroundTruth
    head: GroundTruth


def build_data_repo(root: Path, *, remote_url: str | None = None, env_extra: Mapping[str, str] = (),
                    name: str = "processed") -> DataRepo:
    """Commit `base`: 600 train / 100 test; commit `head`: 800 train / 100 test with 3 leaks; the data in
    `data/<name>`, tracked by `data/<name>.dvc`."""
    from tests.fixtures.datasets import make_course  # imports torch

    env = {**hermetic_env(root / "env"), **dict(env_extra)}
    origin = root / "origin"
    origin.mkdir(parents=True)
    run(origin, env, "git", "init", "-q", "-b", "main")
    run(origin, env, "dvc", "init", "-q")
    url = remote_url or str(root / "remote")
    (origin / ".dvc" / "config").write_text(f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = {url}\n")
    base = make_course(origin / "data" / name, n_train=600, n_test=100, shards=2, seed=1)
    run(origin, env, "dvc", "add", "-q", f"data/{name}")
    run(origin, env, "git", "add", "-A")
    run(origin, env, "git", "commit", "-q", "-m", "data v1")
    base_sha = run(origin, env, "git", "rev-parse", "HEAD").strip()
    for old in (origin / "data" / name).iterdir():
        old.unlink()
    head = make_course(origin / "data" / name, n_train=800, n_test=100, shards=2, leaks=3, seed=2)
    run(origin, env, "dvc", "add", "-q", f"data/{name}")
    run(origin, env, "git", "add", "-A")
    run(origin, env, "git", "commit", "-q", "-m", "data v2")
    head_sha = run(origin, env, "git", "rev-parse", "HEAD").strip()
    run(origin, env, "dvc", "push", "-q", "--all-commits")
    return DataRepo(origin, env, base_sha, head_sha, base, head)


def build_imagefolder_repo(root: Path, env_extra: Mapping[str, str], remote: str,
                           data: str) -> tuple[Path, dict[str, str], str, str]:
    """origin with two commits of an ImageFolder in ``data`` (the head adds images to two classes and removes
    one), pushed to ``remote``: (origin, environment, base sha, head sha)."""
    from tests.fixtures.datasets import make_imagefolder  # imports torch

    env = {**hermetic_env(root / "env"), **env_extra}
    origin = root / "origin"
    origin.mkdir(parents=True)
    run(origin, env, "git", "init", "-q", "-b", "main")
    run(origin, env, "dvc", "init", "-q")
    (origin / ".dvc" / "config").write_text(
        f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = {remote}\n")
    make_imagefolder(origin / data, per_class=20, classes=3, mixed=True, corrupt=2, duplicates=2, leaks=3, seed=5)
    run(origin, env, "dvc", "add", "-q", data)
    run(origin, env, "git", "add", "-A")
    run(origin, env, "git", "commit", "-q", "-m", "images v1")
    base = run(origin, env, "git", "rev-parse", "HEAD").strip()
    make_imagefolder(origin / "more", per_class=6, classes=["class_1", "class_3"], seed=6)
    for image in sorted((origin / "more").rglob("*.png")):
        target = origin / data / image.relative_to(origin / "more").as_posix().replace(".png", "_new.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        image.rename(target)
    (origin / data / "train" / "class_0" / "000001.png").unlink()
    run(origin, env, "dvc", "add", "-q", data)
    run(origin, env, "git", "add", "-A", data + ".dvc")
    run(origin, env, "git", "commit", "-q", "-m", "images v2")
    head = run(origin, env, "git", "rev-parse", "HEAD").strip()
    run(origin, env, "dvc", "push", "-q", "--all-commits")
    return origin, env, base, head


def pr_event(fake_github: FakeGitHub, data_repo: DataRepo, **pull: Any) -> tuple[FakePull, dict[str, Any]]:
    """A real pull_request payload for a PR on the fake, pointing at the local repository's commits."""
    pr = fake_github.add_pull(**pull)
    event = fake_github.event_payload(pr)
    event["pull_request"]["base"]["sha"] = data_repo.base_sha
    event["pull_request"]["head"]["sha"] = data_repo.head_sha
    return pr, event
