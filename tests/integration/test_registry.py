"""WandbRegistry driving the real wandb SDK (and its wandb-core process) against the fake W&B."""

from __future__ import annotations

import base64
import hashlib
import random
import socket
import time
from pathlib import Path

import pytest

from mlgate.errors import ExitCode
from mlgate.model.registry import (
    AliasRefused,
    ArtifactEntryRefused,
    ArtifactNotFound,
    ModelVersion,
    RegistryError,
    RegistryUnauthorized,
    WandbRegistry,
    same_version,
)
from tests.fakes.memory_registry import MemoryRegistry
from tests.fakes.wandb_server import FakeWandb

ENTITY, PROJECT = "team-ml", "mnist"
REGISTRY = "wandb-registry-model/mnist"
LEGACY = f"{ENTITY}/model-registry/mnist"


def _weights(seed: int, size: int = 4096) -> bytes:
    return random.Random(seed).randbytes(size)


def _metadata(i: int) -> dict[str, float]:
    return {"accuracy": 0.9 + i / 100, "epochs": i}


def _seed(backend: FakeWandb | MemoryRegistry) -> dict[str, str]:
    """v0 (production in both registries), v1 (staging in the registry), v2 (the candidate)."""
    paths = {
        f"v{i}": backend.add_model(
            ENTITY, PROJECT, "mnist-cnn",
            {"model.pt": _weights(i), "config/arch.json": b'{"layers": %d}' % (i + 2)},
            aliases=["candidate"] if i == 2 else [], metadata=_metadata(i),
        )
        for i in range(3)
    }
    for version, collection, alias in [("v0", REGISTRY, "production"), ("v1", REGISTRY, "staging"),
                                       ("v0", LEGACY, "production")]:
        if isinstance(backend, FakeWandb):
            backend.link(paths[version], collection, [alias])
        else:
            backend.link(paths[version], collection, alias)
    return paths


@pytest.fixture
def seeded(fake_wandb: FakeWandb) -> dict[str, str]:
    return _seed(fake_wandb)


@pytest.fixture
def registry(fake_wandb: FakeWandb) -> WandbRegistry:
    return WandbRegistry(api_key=fake_wandb.api_key, base_url=fake_wandb.base_url)


@pytest.mark.parametrize(
    ("path", "expected_version", "collection"),
    [
        (f"{ENTITY}/{PROJECT}/mnist-cnn:v1", "v1", "mnist-cnn"),
        (f"{ENTITY}/{PROJECT}/mnist-cnn:candidate", "v2", "mnist-cnn"),
        (f"{ENTITY}/{PROJECT}/mnist-cnn:latest", "v2", "mnist-cnn"),
        (f"{REGISTRY}:staging", "v1", "mnist"),
        (f"{REGISTRY}:v0", "v0", "mnist"),
        (f"acme/{REGISTRY}:production", "v0", "mnist"),
        (f"{LEGACY}:production", "v0", "mnist"),
    ],
)
def test_resolve__finds_source_version_in_every_path_form(
    registry: WandbRegistry, seeded: dict[str, str], path: str, expected_version: str, collection: str
) -> None:
    model = registry.resolve(path)

    assert model.name == seeded[expected_version]
    assert model.version == expected_version
    assert model.collection == collection
    assert model.metadata == _metadata(int(expected_version[1]))


def test_resolve__reports_aliases_and_manifest_digest(registry: WandbRegistry, seeded: object) -> None:
    model = registry.resolve(f"{REGISTRY}:production")

    assert model.aliases == ["production"]
    # W&B's manifest digest, computed here from the bytes the fixture stored
    entries = sorted({"config/arch.json": b'{"layers": 2}', "model.pt": _weights(0)}.items())
    lines = "".join(f"{p}:{base64.b64encode(hashlib.md5(b).digest()).decode()}\n" for p, b in entries)
    assert model.digest == hashlib.md5(b"wandb-artifact-manifest-v1\n" + lines.encode()).hexdigest()


def test_download__writes_every_file_with_its_bytes(
    registry: WandbRegistry, seeded: dict[str, str], tmp_path: Path
) -> None:
    files = registry.download(f"{REGISTRY}:staging", tmp_path / "model")

    assert files == [tmp_path / "model" / "config" / "arch.json", tmp_path / "model" / "model.pt"]
    assert files[1].read_bytes() == _weights(1)
    assert files[0].read_bytes() == b'{"layers": 3}'


def test_version_with_alias__finds_production_in_registry_and_legacy(
    registry: WandbRegistry, seeded: dict[str, str]
) -> None:
    assert registry.version_with_alias(REGISTRY, "production") == registry.resolve(seeded["v0"]).model_copy(
        update={"aliases": ["production"], "collection": "mnist"}
    )
    legacy = registry.version_with_alias(LEGACY, "production")
    assert legacy is not None and legacy.name == seeded["v0"]


def test_version_with_alias__follows_an_alias_moved_on_the_server(
    registry: WandbRegistry, seeded: dict[str, str], fake_wandb: FakeWandb
) -> None:
    fake_wandb.set_registry_alias(REGISTRY, "v1", "production")

    production = registry.version_with_alias(f"acme/{REGISTRY}", "production")
    assert production is not None and production.name == seeded["v1"]
    assert fake_wandb.alias_map(f"acme/{REGISTRY}")["production"] == seeded["v1"]


def test_version_with_alias__none_when_no_version_holds_it(
    registry: WandbRegistry, seeded: dict[str, str]
) -> None:
    assert registry.version_with_alias(REGISTRY, "champion") is None
    assert registry.version_with_alias("wandb-registry-model/never-linked", "production") is None
    assert registry.version_with_alias(f"{ENTITY}-2/model-registry/mnist", "production") is None


@pytest.mark.reliability(
    "input", "`registry` with a typo (`wandb-registry-modle/mnist`)",
    "not-found error naming the registry, instead of “no production model”"
)
def test_version_with_alias__missing_registry_is_an_error(registry: WandbRegistry, seeded: object) -> None:
    with pytest.raises(ArtifactNotFound, match="wandb-registry-modle"):
        registry.version_with_alias("wandb-registry-modle/mnist", "production")


def test_link__moves_alias_once_and_second_link_is_noop(
    registry: WandbRegistry, seeded: dict[str, str], fake_wandb: FakeWandb
) -> None:
    assert registry.link(seeded["v2"], REGISTRY, "production") is True
    assert registry.link(seeded["v2"], REGISTRY, "production") is False

    assert [(op.source, op.target, op.aliases) for op in fake_wandb.link_operations] == [
        (seeded["v2"], "acme-org/wandb-registry-model/mnist", ("production",))
    ]
    assert fake_wandb.alias_map(REGISTRY)["production"] == seeded["v2"]
    assert fake_wandb.members(REGISTRY) == [seeded["v0"], seeded["v1"], seeded["v2"]]
    production = registry.version_with_alias(REGISTRY, "production")
    assert production is not None and production.name == seeded["v2"]


def test_link__promotes_staging_by_its_registry_path(
    registry: WandbRegistry, seeded: dict[str, str], fake_wandb: FakeWandb
) -> None:
    assert registry.link(f"{REGISTRY}:staging", REGISTRY, "production") is True

    assert fake_wandb.alias_map(REGISTRY) == {
        "production": seeded["v1"], "staging": seeded["v1"], "latest": seeded["v1"]
    }
    assert fake_wandb.members(REGISTRY) == [seeded["v0"], seeded["v1"]]  # no second membership


def test_add_alias__on_a_registry_version(
    registry: WandbRegistry, seeded: dict[str, str], fake_wandb: FakeWandb
) -> None:
    registry.add_alias(f"{REGISTRY}:staging", "gate-failed")

    assert fake_wandb.alias_map(REGISTRY)["gate-failed"] == seeded["v1"]
    assert "gate-failed" not in fake_wandb.alias_map(f"{ENTITY}/{PROJECT}/mnist-cnn")


def test_link__into_legacy_model_registry(
    registry: WandbRegistry, seeded: dict[str, str], fake_wandb: FakeWandb
) -> None:
    assert registry.link(seeded["v1"], LEGACY, "production") is True

    assert fake_wandb.alias_map(LEGACY)["production"] == seeded["v1"]


def test_add_alias__tags_candidate_once(
    registry: WandbRegistry, seeded: dict[str, str], fake_wandb: FakeWandb
) -> None:
    registry.add_alias(seeded["v2"], "gate-failed")
    registry.add_alias(seeded["v2"], "gate-failed")

    assert fake_wandb.alias_map(f"{ENTITY}/{PROJECT}/mnist-cnn")["gate-failed"] == seeded["v2"]
    assert fake_wandb.operations.count("AddAliases") == 1
    assert "gate-failed" in registry.resolve(seeded["v2"]).aliases


@pytest.mark.reliability(
    "input", "W&B model version or project that does not exist",
    "not-found error naming the artifact"
)
def test_resolve__unknown_artifact_names_it(registry: WandbRegistry, seeded: dict[str, str]) -> None:
    with pytest.raises(ArtifactNotFound, match="mnist-cnn:v9"):
        registry.resolve(f"{ENTITY}/{PROJECT}/mnist-cnn:v9")
    with pytest.raises(ArtifactNotFound, match="nope/mnist-cnn:v0"):
        registry.resolve(f"{ENTITY}/nope/mnist-cnn:v0")


@pytest.mark.parametrize(
    "path", ["mnist-cnn:v1", "a/b/c", "a/b/c:v1:v2", "a b/c/d:v1", "a/b/c/d:v1", "x/y:v1", "e/p/n:"]
)
@pytest.mark.reliability("input", "model path `{path}`", "W&B error quoting the path and listing the accepted forms")
def test_resolve__invalid_path_lists_accepted_forms(registry: WandbRegistry, path: str) -> None:
    with pytest.raises(RegistryError, match="Accepted forms") as info:
        registry.resolve(path)
    assert repr(path) in str(info.value)


def _wrong_key(secret: str, case: str) -> object:
    return pytest.param(secret, marks=pytest.mark.reliability(
        "secret", f"`WANDB_API_KEY` {case}",
        "W&B refuses it: unauthorized error pointing to `secrets.WANDB_API_KEY`; the key is not in the text"))


@pytest.mark.parametrize("secret", [
    _wrong_key("wrongkey" + "7" * 40, "of the right length but wrong"),
    _wrong_key("short-key-123", "that is too short"),
    _wrong_key("", "empty"),
])
def test_wrong_key__unauthorized_without_the_key(
    fake_wandb: FakeWandb, seeded: dict[str, str], secret: str
) -> None:
    registry = WandbRegistry(api_key=secret, base_url=fake_wandb.base_url)

    with pytest.raises(RegistryUnauthorized) as info:
        registry.resolve(seeded["v0"])
    assert not secret or secret not in str(info.value)
    assert "secrets.WANDB_API_KEY" in str(info.value)


@pytest.mark.reliability("wire", "W&B unreachable (connection refused)", "W&B error within 10 s naming the server")
def test_server_down__registry_error_quickly(fake_wandb: FakeWandb) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    registry = WandbRegistry(api_key=fake_wandb.api_key, base_url=f"http://127.0.0.1:{port}")

    started = time.monotonic()
    with pytest.raises(RegistryError) as info:
        registry.resolve(f"{ENTITY}/{PROJECT}/mnist-cnn:v0")
    assert time.monotonic() - started < 10
    assert not isinstance(info.value, RegistryUnauthorized)
    assert f"127.0.0.1:{port}" in str(info.value)


def _scenario(registry: WandbRegistry | MemoryRegistry, paths: dict[str, str], dest: Path) -> list[object]:
    """The gate's basic flows, recorded as plain values."""
    results: list[object] = [
        registry.resolve(f"{ENTITY}/{PROJECT}/mnist-cnn:candidate"),
        registry.resolve(f"acme/{REGISTRY}:staging"),
        registry.resolve(f"{LEGACY}:production"),
        registry.version_with_alias(REGISTRY, "production"),
        registry.version_with_alias(REGISTRY, "champion"),
        registry.link(paths["v2"], REGISTRY, "production"),
        registry.link(paths["v2"], REGISTRY, "production"),
        registry.version_with_alias(REGISTRY, "production"),
        registry.add_alias(paths["v1"], "gate-failed"),
        registry.resolve(paths["v1"]),
    ]
    files = registry.download(f"{REGISTRY}:production", dest)
    results.append([(f.relative_to(dest).as_posix(), f.read_bytes()) for f in files])
    with pytest.raises(ArtifactNotFound) as info:
        registry.resolve(f"{REGISTRY}:v7")
    results.append(type(info.value))
    return results


def _ids_by_version(results: list[object]) -> set[str]:
    """Each version's id replaced by its name (ids differ between backends; one id per version is
    what must agree): raises when one id names two versions or one version has two ids."""
    names: dict[str, str] = {}
    for i, result in enumerate(results):
        if isinstance(result, ModelVersion):
            assert result.id and names.setdefault(result.id, result.name) == result.name
            results[i] = result.model_copy(update={"id": f"id of {result.name}"})
    assert len(set(names.values())) == len(names)
    return set(names.values())


def test_memory_registry__behaves_like_wandb_registry(
    registry: WandbRegistry, fake_wandb: FakeWandb, tmp_path: Path
) -> None:
    memory = MemoryRegistry()

    wandb_results = _scenario(registry, _seed(fake_wandb), tmp_path / "wandb")
    memory_results = _scenario(memory, _seed(memory), tmp_path / "memory")

    assert _ids_by_version(memory_results) == _ids_by_version(wandb_results)
    assert memory_results == wandb_results
    assert all(isinstance(r, ModelVersion) for r in wandb_results[:4])
    assert memory.alias_map(REGISTRY) == fake_wandb.alias_map(REGISTRY)
    assert memory.members(REGISTRY) == fake_wandb.members(REGISTRY)



@pytest.mark.reliability(
    "data", "W&B answers an empty digest for two different versions",
    "still two versions: identity is the registry's version id (`artifact.id`), the digest only a check"
)
def test_empty_digests__two_versions_stay_two(
    fake_wandb: FakeWandb, registry: WandbRegistry, seeded: dict[str, str]
) -> None:
    for path in seeded.values():
        fake_wandb.digest_answers[path] = ""
    production = registry.version_with_alias(REGISTRY, "production")
    staging = registry.resolve(f"{REGISTRY}:staging")
    assert production is not None and production.digest == staging.digest == ""

    assert (production.name, staging.name) == (seeded["v0"], seeded["v1"])
    assert production.id and staging.id and production.id != staging.id
    assert not same_version(staging, production)
    # the same version through three paths is one version
    through = [registry.resolve(p) for p in (seeded["v0"], f"acme/{REGISTRY}:production", f"{LEGACY}:production")]
    assert {v.id for v in through} == {production.id}
    assert all(same_version(v, production) for v in through)
    # and linking staging over production is a real link, not a no-op
    assert registry.link(staging.name, REGISTRY, "production") is True
    assert fake_wandb.alias_map(REGISTRY)["production"] == seeded["v1"]


@pytest.mark.reliability(
    "data", "a W&B artifact whose manifest names `{entry}`",
    "ArtifactEntryRefused (exit 2, not 3 'W&B unavailable'), naming the entry; nothing written"
)
@pytest.mark.parametrize("entry", ["../../x.txt", "models/../../x.txt", "/etc/x.txt"])
def test_download__entry_outside_the_artifact_is_bad_input_naming_it(
    fake_wandb: FakeWandb, registry: WandbRegistry, tmp_path: Path, entry: str
) -> None:
    path = fake_wandb.add_model(ENTITY, PROJECT, "evil", {"model.pt": b"weights", entry: b"outside"})

    with pytest.raises(ArtifactEntryRefused) as refused:
        registry.download(path, tmp_path / "a" / "b" / "model")

    assert refused.value.exit_code == ExitCode.ERROR
    assert repr(entry) in refused.value.message and path in refused.value.message
    assert "rerun" not in refused.value.message.lower()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_download__the_sdk_s_own_refusal_is_bad_input_too(
    fake_wandb: FakeWandb, registry: WandbRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the SDK refuse an entry mlgate's own check lets through, that is exit 2 as well."""
    path = fake_wandb.add_model(ENTITY, PROJECT, "evil", {"model.pt": b"weights", "../../x.txt": b"outside"})
    monkeypatch.setattr("mlgate.model.registry._check_entry", lambda path, entry: None)

    with pytest.raises(ArtifactEntryRefused, match=r"Invalid artifact path: '\.\./\.\./x\.txt'"):
        registry.download(path, tmp_path / "a" / "b" / "model")
    assert not (tmp_path / "a" / "x.txt").exists()


@pytest.mark.reliability(
    "input", "promotion to a protected alias (`production`) with a key whose registry role is `{role}`",
    "AliasRefused, exit 2: names `production` and the registry Admin role (or a service account with it); "
    "`production` still on the old version"
)
@pytest.mark.parametrize("role", ["member", "viewer"])
def test_protected_alias__refused_for_a_non_admin_key_naming_alias_and_role(
    fake_wandb: FakeWandb, registry: WandbRegistry, seeded: dict[str, str], role: str
) -> None:
    fake_wandb.protected_aliases = {"production"}
    fake_wandb.registry_role = role

    with pytest.raises(AliasRefused) as link:
        registry.link(seeded["v1"], REGISTRY, "production")
    with pytest.raises(AliasRefused) as alias:
        registry.add_alias(f"{REGISTRY}:staging", "production")

    for refused in (link.value, alias.value):
        assert refused.exit_code == ExitCode.ERROR
        assert "alias `production`" in refused.message and REGISTRY in refused.message
        assert "registry Admin role (or a service account with that role)" in refused.message
        assert "Admin role in that registry" in refused.hint and "service account" in refused.hint
        assert fake_wandb.api_key not in refused.message + refused.hint
    assert fake_wandb.alias_map(REGISTRY)["production"] == seeded["v0"]  # untouched
    assert fake_wandb.link_operations == []


def test_protected_alias__an_admin_key_sets_it(
    fake_wandb: FakeWandb, registry: WandbRegistry, seeded: dict[str, str]
) -> None:
    fake_wandb.protected_aliases = {"production"}  # registry_role stays "admin"
    assert registry.link(seeded["v1"], REGISTRY, "production") is True
    assert fake_wandb.alias_map(REGISTRY)["production"] == seeded["v1"]


def test_unprotected_alias__a_member_key_sets_it(
    fake_wandb: FakeWandb, registry: WandbRegistry, seeded: dict[str, str]
) -> None:
    fake_wandb.protected_aliases = {"production"}
    fake_wandb.registry_role = "member"
    registry.add_alias(f"{REGISTRY}:staging", "gate-failed")
    assert fake_wandb.alias_map(REGISTRY)["gate-failed"] == seeded["v1"]
