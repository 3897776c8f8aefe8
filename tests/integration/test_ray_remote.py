"""`engine: ray` with DVC-tracked data: the Ray nodes read the files straight from the DVC remote with their
own identity, the runner pulls nothing and sends no credential.

A real multi-node Ray cluster (tests/fakes/ray_cluster.py) whose nodes carry their own Google identity in
their environment (a service-account key file and the storage emulator's address: what Workload Identity
and the metadata server give a GKE node); an ImageFolder in two commits pushed to a `gs://` DVC remote on
the GCS emulator (tests/fakes/gcs.py, which answers 401 without a token its token endpoint issued); the
runner, `mlgate.cli.main` in this process on a pull request in a fresh clone (no data, no DVC cache), has
only `gcp-credentials` for listing the `.dir` manifests. What each task is sent is pickled as Ray pickles
it (cloudpickle) and searched for the runner's key, its key file and the checkout's path."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlgate.cli import main
from tests.fakes.dvc_repo import run
from tests.fakes.gcs import GcsEmulator, running_emulator
from tests.fakes.github import FakeGitHub
from tests.fakes.ray_cluster import RayCluster, running
from tests.helpers import build_imagefolder_repo, free_port, parse_outputs

ray = pytest.importorskip("ray", reason="engine: ray needs the ray package (requirements.txt pins it)")

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DATA = "data/images"
BUCKET = "mlgate-ray"



@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    with running_emulator(tmp_path_factory.mktemp("node-identity")) as running_one:
        yield running_one


@pytest.fixture(scope="module")
def repo(emulator: GcsEmulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str, str]:
    bucket = emulator.create_bucket(BUCKET)
    return build_imagefolder_repo(tmp_path_factory.mktemp("repo"), emulator.env, f"{bucket}/store", DATA)


@pytest.fixture
def cluster(emulator: GcsEmulator) -> Iterator[RayCluster]:
    """A head and one worker node whose own identity reads the bucket: the key file and the emulator's
    address are in the nodes' environment, never in the runner's."""
    yield from running(free_port(), 1, ROOT, env=emulator.env)


Sent = list[bytes]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Every shard description and task the runner hands Ray, pickled as Ray pickles task arguments."""
    from ray import cloudpickle

    from mlgate.data import ray_engine

    pickled: Sent = []
    reduce, pick = ray_engine.RayEngine.reduce, ray_engine.RayEngine.pick

    def reduce_recorded(self: Any, shards: list[Any], task: Any) -> Any:
        pickled.extend(cloudpickle.dumps((task, shard)) for shard in shards)
        return reduce(self, shards, task)

    def pick_recorded(self: Any, wanted: list[Any], batch_size: int) -> Any:
        pickled.extend(cloudpickle.dumps(item) for item in wanted)
        return pick(self, wanted, batch_size)

    monkeypatch.setattr(ray_engine.RayEngine, "reduce", reduce_recorded)
    monkeypatch.setattr(ray_engine.RayEngine, "pick", pick_recorded)
    return pickled


@pytest.fixture
def start(tmp_path: Path, fake_github: FakeGitHub, emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch,
          repo: tuple[Path, dict[str, str], str, str]) -> Callable[..., tuple[int, Path, str]]:
    """One data-stats run on a pull request in a fresh clone: (exit code, workspace, report.json text). The
    runner's identity is `gcp-credentials` only (GOOGLE_APPLICATION_CREDENTIALS unset); this process sees the
    emulator's address, as DVC does."""
    origin, env, base, head = repo
    for name, value in emulator.emulator_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    counter = iter(range(100))

    def go(**inputs: str) -> tuple[int, Path, str]:
        n = next(counter)
        ws, files = tmp_path / f"ws{n}", tmp_path / f"run{n}"
        run(tmp_path, env, "git", "clone", "-q", str(origin), str(ws))
        files.mkdir()
        pr = fake_github.add_pull()
        event = fake_github.event_payload(pr)
        event["pull_request"]["base"]["sha"], event["pull_request"]["head"]["sha"] = base, head
        (files / "event.json").write_text(json.dumps(event))
        run_env = {key: value for key, value in env.items() if key != "GOOGLE_APPLICATION_CREDENTIALS"}
        run_env.update({**fake_github.env(), "GITHUB_SHA": head, "GITHUB_EVENT_NAME": "pull_request",
                        "GITHUB_EVENT_PATH": str(files / "event.json"), "GITHUB_WORKSPACE": str(ws),
                        "GITHUB_OUTPUT": str(files / "output"), "GITHUB_STEP_SUMMARY": str(files / "summary"),
                        "INPUT_MODE": "data-stats", "INPUT_DATA": DATA, "INPUT_GITHUB-TOKEN": fake_github.token,
                        "INPUT_GCP-CREDENTIALS": emulator.service_account_json,
                        "INPUT_ASSETS-BRANCH": f"mlgate-assets-{n}", "INPUT_WORKERS": "1"})
        run_env.update({f"INPUT_{name.upper().replace('_', '-')}": value for name, value in inputs.items()})
        code = main([], env=run_env)
        output = files / "output"
        report = parse_outputs(output.read_text()).get("report-json") if output.is_file() else None
        return code, ws, (ws / report).read_text() if report else ""

    return go


def _pulled(ws: Path) -> list[str]:
    """What a pull leaves in the checkout: data files, DVC cache objects."""
    return sorted(p.relative_to(ws).as_posix() for p in (*(ws / DATA).rglob("*"), *(ws / ".dvc" / "cache").rglob("*"))
                  if p.is_file())


def test_ray_remote__nodes_read_the_dvc_remote_with_their_own_identity__report_equals_the_local_engines(
        cluster: RayCluster, start: Callable[..., tuple[int, Path, str]], sent: Sent, emulator: GcsEmulator,
        capsys: pytest.CaptureFixture[str]) -> None:
    local_code, local_ws, local = start(engine="local", dvc_pull="true")
    assert local_code == 0 and local, capsys.readouterr()
    assert _pulled(local_ws)  # the local engine pulled: the control for the assertion below
    capsys.readouterr()
    code, ws, clustered = start(engine="ray", ray_address=cluster.address)
    out = "".join(capsys.readouterr())
    assert code == 0, out
    assert clustered == local
    report = json.loads(clustered)
    assert report["changes"]["base"] and report["changes"]["files"]["added"]  # the base read on the nodes too
    assert report["leakage"]["train_test_exact_duplicates"] > 0  # leaked items pictured: read again on the nodes
    assert "from the DVC remote on the Ray nodes" in out
    assert _pulled(ws) == []  # the runner wrote no data file and no cache object

    secret = json.loads(emulator.service_account_json)
    assert sent and all(f"gs://{BUCKET}/store".encode() in pickled for pickled in sent)
    for planted in (secret["private_key_id"], secret["private_key"].splitlines()[1], str(ws), "GOOGLE_APPLICATION",
                    emulator.env["GOOGLE_APPLICATION_CREDENTIALS"], "gcp-credentials-"):
        assert not [pickled for pickled in sent if planted.encode() in pickled], planted


def test_ray_remote__nodes_without_access__exit_2_naming_the_remote_and_the_clusters_identity(
        emulator: GcsEmulator, start: Callable[..., tuple[int, Path, str]], capsys: pytest.CaptureFixture[str]) -> None:
    """A head alone whose node reaches the emulator but has no identity of its own: the bucket answers 401."""
    without_key = {name: value for name, value in emulator.env.items() if name != "GOOGLE_APPLICATION_CREDENTIALS"}
    for denied in running(free_port(), 0, ROOT, env=without_key):
        unauthorized = len(emulator.unauthorized)
        code, ws, report = start(engine="ray", ray_address=denied.address)
    out = "".join(capsys.readouterr())
    assert code == 2 and report == "", out
    assert len(emulator.unauthorized) > unauthorized  # the node asked, and the bucket refused it
    error = next(line for line in out.splitlines() if line.startswith("A Ray node could not read"))
    assert f"gs://{BUCKET}/store" in error and "cluster's own identity" in error, error
    assert "A Ray node cannot read the DVC remote" in out  # the error's title
    assert "Workload Identity" in out and "roles/storage.objectViewer" in out, out
    assert _pulled(ws) == []
    assert os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") is None
