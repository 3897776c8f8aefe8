"""Lineage through the real wandb SDK (``artifact.logged_by()``, ``run.config``, ``run.used_artifacts()``,
artifact metadata) against the fake W&B, and against DVC's own hash of a folder ``dvc add`` tracked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlgate.data.dvc import DvcRunner
from mlgate.model.lineage import read_lineage
from mlgate.model.registry import ArtifactNotFound, Lineage, RegistryUnavailable, WandbRegistry
from tests.fakes.dvc_repo import hermetic_env, run
from tests.fakes.faults import server_error
from tests.fakes.memory_registry import MemoryRegistry
from tests.fakes.wandb_server import FakeWandb

ENTITY, PROJECT = "acme", "mnist-train"
DATA_MD5 = "3f2a9c1e8b7d6a5f4e3d2c1b0a998877.dir"


def seed(backend: FakeWandb | MemoryRegistry, *, config: dict[str, object], dataset_md5: str | None) -> str:
    """A dataset version, a run that used it with ``config``, and the model version that run logged."""
    metadata = {"md5": dataset_md5, "rows": 60000} if dataset_md5 else {"rows": 60000}
    data = backend.add_model(ENTITY, PROJECT, "mnist-data", {"train.npz": b"digits"}, type="dataset",
                             metadata=metadata)
    weights = backend.add_model(ENTITY, "zoo", "resnet-init", {"init.pt": b"w"})  # used, but not data
    run_path = backend.add_run(ENTITY, PROJECT, "3kq9x2ab", display_name="brisk-sun-12", config=config,
                               used=[data, weights])
    return backend.add_model(ENTITY, PROJECT, "mnist-cnn", {"model.pt": b"cnn"}, logged_by=run_path,
                             metadata={"accuracy": 0.98})


@pytest.fixture
def registry(fake_wandb: FakeWandb) -> WandbRegistry:
    return WandbRegistry(api_key=fake_wandb.api_key, base_url=fake_wandb.base_url)


def test_lineage__run_config_and_used_artifacts_through_the_sdk(fake_wandb: FakeWandb,
                                                               registry: WandbRegistry) -> None:
    model = seed(fake_wandb, config={"data_md5": DATA_MD5, "lr": 0.01, "epochs": 3}, dataset_md5=DATA_MD5)
    fake_wandb.link(model, "wandb-registry-model/mnist", ["staging"])

    lineage = registry.lineage("wandb-registry-model/mnist:staging")  # a registry path: its source run

    # the lightweight run, its inputs, then the full fragment for .config: the queries the SDK sends
    assert fake_wandb.operations[-4:] == ["ArtifactCreatedBy", "Run", "RunInputArtifacts", "Run"]
    assert lineage.run is not None
    assert (lineage.run.id, lineage.run.name, lineage.run.project) == ("3kq9x2ab", "brisk-sun-12",
                                                                       f"{ENTITY}/{PROJECT}")
    assert lineage.run.url == f"{fake_wandb.base_url}/{ENTITY}/{PROJECT}/runs/3kq9x2ab"
    assert lineage.config == {"data_md5": DATA_MD5, "lr": 0.01, "epochs": 3}  # no `_wandb`, values unwrapped
    assert [(u.name, u.type, u.metadata) for u in lineage.used] == [
        (f"{ENTITY}/{PROJECT}/mnist-data:v0", "dataset", {"md5": DATA_MD5, "rows": 60000}),
        (f"{ENTITY}/zoo/resnet-init:v0", "model", {}),
    ]
    assert lineage.used[0].digest == registry.resolve(f"{ENTITY}/{PROJECT}/mnist-data:v0").digest


def test_lineage__memory_registry_answers_as_the_sdk_does(fake_wandb: FakeWandb, registry: WandbRegistry) -> None:
    memory = MemoryRegistry()
    memory.app_url = fake_wandb.base_url
    config = {"dvc_md5": DATA_MD5, "batch": 64}

    wandb_side = registry.lineage(seed(fake_wandb, config=config, dataset_md5=None))
    memory_side = memory.lineage(seed(memory, config=config, dataset_md5=None))

    assert memory_side == wandb_side


def test_lineage__no_run_when_uploaded_without_one_or_the_run_was_deleted(fake_wandb: FakeWandb,
                                                                        registry: WandbRegistry) -> None:
    uploaded = fake_wandb.add_model(ENTITY, PROJECT, "mnist-cnn", {"model.pt": b"by hand"})
    assert registry.lineage(uploaded) == Lineage(run=None, config={}, used=[])

    logged = seed(fake_wandb, config={}, dataset_md5=None)
    fake_wandb.delete_run(f"{ENTITY}/{PROJECT}/3kq9x2ab")
    assert registry.lineage(logged) == Lineage(run=None, config={}, used=[])


def test_lineage__run_without_datasets(fake_wandb: FakeWandb, registry: WandbRegistry) -> None:
    run_path = fake_wandb.add_run(ENTITY, PROJECT, "plain", config={"lr": 0.1})
    model = fake_wandb.add_model(ENTITY, PROJECT, "mnist-cnn", {"model.pt": b"x"}, logged_by=run_path)

    lineage = registry.lineage(model)

    assert lineage.run is not None and lineage.run.name == "plain"
    assert (lineage.config, lineage.used) == ({"lr": 0.1}, [])


def test_lineage__unknown_artifact_is_not_found(fake_wandb: FakeWandb, registry: WandbRegistry) -> None:
    fake_wandb.add_model(ENTITY, PROJECT, "mnist-cnn", {"model.pt": b"x"})

    with pytest.raises(ArtifactNotFound, match="mnist-cnn:v7"):
        registry.lineage(f"{ENTITY}/{PROJECT}/mnist-cnn:v7")


# -- judged against the repository's DVC hash ----------------------------------------------------------


@pytest.fixture
def dvc_repo(tmp_path: Path) -> tuple[Path, str]:
    """A git repository where ``dvc add`` tracks data/processed; returns it and DVC's md5 as data.dvc records it."""
    repo = tmp_path / "repo"
    (repo / "data" / "processed").mkdir(parents=True)
    env = hermetic_env(tmp_path / "env")
    run(repo, env, "git", "init", "-q", "-b", "main")
    run(repo, env, "dvc", "init", "-q")
    for name in ("train_images.pt", "test_images.pt"):
        (repo / "data" / "processed" / name).write_bytes(name.encode() * 100)
    run(repo, env, "dvc", "add", "-q", "data/processed")
    run(repo, env, "git", "add", "-A")
    run(repo, env, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "data")
    md5 = yaml.safe_load((repo / "data" / "processed.dvc").read_text())["outs"][0]["md5"]
    assert md5.endswith(".dir")
    return repo, md5


@pytest.mark.parametrize(("logged", "verdict"), [("same", "matches"), ("other", "differs")])
def test_read_lineage__compares_the_logged_hash_with_dvc_add(fake_wandb: FakeWandb, registry: WandbRegistry,
                                                            dvc_repo: tuple[Path, str], logged: str,
                                                            verdict: str) -> None:
    repo, md5 = dvc_repo
    value = md5.removesuffix(".dir") if logged == "same" else DATA_MD5  # logged without ".dir": still the same
    model = seed(fake_wandb, config={}, dataset_md5=value)

    result = read_lineage(registry, registry.resolve(model), DvcRunner(repo), repo / "data" / "processed", repo,
                          required=True)

    assert result is not None
    assert (result.verdict, result.repository_hash, result.eval_data) == (verdict, md5, "data/processed")
    assert [d.name for d in result.datasets] == [f"{ENTITY}/{PROJECT}/mnist-data:v0"]
    assert [h.source for h in result.hashes] == [f"dataset {ENTITY}/{PROJECT}/mnist-data:v0 metadata `md5`"]


def test_read_lineage__untracked_eval_data_cannot_compare(fake_wandb: FakeWandb, registry: WandbRegistry,
                                                         tmp_path: Path) -> None:
    model = seed(fake_wandb, config={"data_md5": DATA_MD5}, dataset_md5=None)

    result = read_lineage(registry, registry.resolve(model), DvcRunner(tmp_path), tmp_path / "data", tmp_path,
                          required=False)

    assert result is not None and result.verdict == "unknown"
    assert result.reason.startswith("cannot compare: eval-data is not tracked by DVC")


@pytest.mark.reliability(
    "wire", "W&B answers 502 to every lineage query (run's used artifacts)",
    "without `require-data-lineage`: lineage `unknown`, the run goes on; with it: exit 3 naming the artifact"
)
def test_read_lineage__w_and_b_failing_is_unknown_unless_required(
    fake_wandb: FakeWandb, registry: WandbRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = seed(fake_wandb, config={"data_md5": DATA_MD5}, dataset_md5=None)
    version = registry.resolve(model)
    fake_wandb.inject("RunInputArtifacts", *[server_error(502)] * 40)

    degraded = read_lineage(registry, version, DvcRunner(tmp_path), None, tmp_path, required=False)
    assert degraded is not None and degraded.verdict == "unknown"
    assert degraded.reason == "W&B did not answer the lineage queries"

    with pytest.raises(RegistryUnavailable, match="Reading the lineage of"):
        read_lineage(registry, version, DvcRunner(tmp_path), None, tmp_path, required=True)
