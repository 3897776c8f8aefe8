"""MemoryRegistry keeps WandbRegistry's signatures and W&B's registry rules (no network, no wandb)."""

from __future__ import annotations

import base64
import hashlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from mlgate.model.registry import ArtifactNotFound, ModelRegistry, RegistryError, WandbRegistry
from tests.fakes.memory_registry import MemoryRegistry

REGISTRY = "wandb-registry-model/mnist"
LEGACY = "team-ml/model-registry/mnist"
PROTOCOL_METHODS = ["resolve", "download", "version_with_alias", "link", "add_alias", "lineage"]


@pytest.fixture
def memory() -> MemoryRegistry:
    registry = MemoryRegistry()
    for i in range(3):
        files = {"model.pt": bytes([i]) * 64, "cfg/a.json": b"{}"}
        registry.add_model("team-ml", "mnist", "mnist-cnn", files,
                           aliases=["candidate"] if i == 2 else [], metadata={"epochs": i})
    registry.link("team-ml/mnist/mnist-cnn:v0", REGISTRY, "production")
    registry.link("team-ml/mnist/mnist-cnn:v1", REGISTRY, "staging")
    registry.link_operations.clear()
    return registry


@pytest.mark.parametrize("method", PROTOCOL_METHODS)
def test_signatures__equal_wandb_registry_and_protocol(method: str) -> None:
    memory_sig = inspect.signature(getattr(MemoryRegistry, method))

    assert memory_sig == inspect.signature(getattr(WandbRegistry, method))
    assert memory_sig == inspect.signature(getattr(ModelRegistry, method))


def test_memory_registry__satisfies_the_protocol_statically() -> None:
    registry: ModelRegistry = MemoryRegistry()  # mypy checks the structural match

    assert isinstance(registry, MemoryRegistry)


def test_registry_module__does_not_import_wandb() -> None:
    code = "import sys, mlgate.model.registry; print('wandb' in sys.modules)"

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("path", "name", "collection"),
    [
        ("team-ml/mnist/mnist-cnn:candidate", "team-ml/mnist/mnist-cnn:v2", "mnist-cnn"),
        ("team-ml/mnist/mnist-cnn:latest", "team-ml/mnist/mnist-cnn:v2", "mnist-cnn"),
        (f"{REGISTRY}:staging", "team-ml/mnist/mnist-cnn:v1", "mnist"),
        (f"acme/{REGISTRY}:v0", "team-ml/mnist/mnist-cnn:v0", "mnist"),
    ],
)
def test_resolve__by_alias_and_version(memory: MemoryRegistry, path: str, name: str, collection: str) -> None:
    model = memory.resolve(path)

    assert (model.name, model.version, model.collection) == (name, name[-2:], collection)
    assert model.metadata == {"epochs": int(name[-1])}


def test_resolve__digest_is_wandb_manifest_md5(memory: MemoryRegistry) -> None:
    def b64md5(data: bytes) -> str:
        return base64.b64encode(hashlib.md5(data).digest()).decode()

    body = f"cfg/a.json:{b64md5(b'{}')}\nmodel.pt:{b64md5(bytes([1]) * 64)}\n"
    expected = hashlib.md5(b"wandb-artifact-manifest-v1\n" + body.encode()).hexdigest()

    assert memory.resolve(f"{REGISTRY}:staging").digest == expected


def test_download__writes_files(memory: MemoryRegistry, tmp_path: Path) -> None:
    files = memory.download(f"{REGISTRY}:production", tmp_path)

    assert files == [tmp_path / "cfg" / "a.json", tmp_path / "model.pt"]
    assert files[1].read_bytes() == bytes([0]) * 64


def test_link__moves_alias_and_is_idempotent(memory: MemoryRegistry) -> None:
    assert memory.link("team-ml/mnist/mnist-cnn:candidate", REGISTRY, "production") is True
    assert memory.link("team-ml/mnist/mnist-cnn:v2", REGISTRY, "production") is False

    assert memory.link_operations == [("team-ml/mnist/mnist-cnn:v2", REGISTRY, "production")]
    assert memory.alias_map(REGISTRY) == {
        "production": "team-ml/mnist/mnist-cnn:v2", "staging": "team-ml/mnist/mnist-cnn:v1",
        "latest": "team-ml/mnist/mnist-cnn:v2",
    }
    holder = memory.version_with_alias(REGISTRY, "production")
    assert holder is not None and (holder.name, holder.aliases) == ("team-ml/mnist/mnist-cnn:v2",
                                                                    ["latest", "production"])


def test_version_with_alias__none_when_unheld_or_legacy_registry_unused(memory: MemoryRegistry) -> None:
    assert memory.version_with_alias(REGISTRY, "champion") is None
    assert memory.version_with_alias(LEGACY, "production") is None
    with pytest.raises(ArtifactNotFound, match="wandb-registry-modle"):
        memory.version_with_alias("wandb-registry-modle/mnist", "production")


def test_add_alias__on_candidate(memory: MemoryRegistry) -> None:
    memory.add_alias("team-ml/mnist/mnist-cnn:v2", "gate-failed")

    assert memory.alias_map("team-ml/mnist/mnist-cnn")["gate-failed"] == "team-ml/mnist/mnist-cnn:v2"


@pytest.mark.parametrize("path", ["mnist-cnn:v1", "a/b/c", "x/y:v1", "a/b/c:bad alias"])
def test_invalid_path__names_it_and_lists_forms(memory: MemoryRegistry, path: str) -> None:
    with pytest.raises(RegistryError, match="Accepted forms") as info:
        memory.resolve(path)
    assert repr(path) in str(info.value)


def test_fail_with__raises_the_injected_error(memory: MemoryRegistry) -> None:
    memory.fail_with = RegistryError("W&B is down")

    with pytest.raises(RegistryError, match="W&B is down"):
        memory.resolve(f"{REGISTRY}:production")
