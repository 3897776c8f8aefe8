"""``MemoryRegistry``: the ``ModelRegistry`` protocol in memory, for unit tests of the gate logic.

It follows W&B's rules as ``WandbRegistry`` sees them against ``tests.fakes.wandb_server``: the same
path validation, an alias names at most one version of a collection, ``latest`` follows the newest
version, a registry path may carry the organization in front, linking a version that already holds
the alias is a no-op. ``tests/unit/test_memory_registry.py`` keeps its signatures equal to
``WandbRegistry``'s and ``tests/integration/test_registry.py`` runs one scenario against both.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgate.model.registry import (
    MAX_USED_ARTIFACTS,
    ArtifactNotFound,
    Lineage,
    LineageRun,
    ModelVersion,
    RegistryError,
    UsedArtifact,
    check_alias,
    check_collection_path,
    check_version_path,
)


@dataclass
class _Version:
    path: str  # "entity/project/name:vN"
    files: dict[str, bytes]
    metadata: dict[str, Any]
    type: str = "model"
    logged_by: str | None = None  # "entity/project/run-id"

    def digest(self) -> str:  # the manifest digest W&B reports (MANIFEST_MD5)
        h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
        for name, data in sorted(self.files.items()):
            h.update(f"{name}:{base64.b64encode(hashlib.md5(data).digest()).decode()}\n".encode())
        return h.hexdigest()


@dataclass
class _Run:
    display_name: str
    config: dict[str, Any]
    used: list[_Version]


@dataclass
class _Collection:
    members: list[_Version] = field(default_factory=list)
    aliases: dict[str, _Version] = field(default_factory=dict)

    def find(self, alias: str) -> _Version | None:
        if m := re.fullmatch(r"v(\d+)", alias):
            return self.members[int(m[1])] if int(m[1]) < len(self.members) else None
        return self.aliases.get(alias)

    def add(self, version: _Version, aliases: list[str]) -> None:
        if version not in self.members:
            self.members.append(version)
            self.aliases["latest"] = version
        for alias in aliases:
            self.aliases[alias] = version


class MemoryRegistry:
    def __init__(self, registries: tuple[str, ...] = ("wandb-registry-model",)) -> None:
        self.collections: dict[str, _Collection] = {}
        self.projects: set[str] = set(registries)  # "entity/project", or a registry's project name
        self.link_operations: list[tuple[str, str, str]] = []  # (source, target collection, alias)
        self.runs: dict[str, _Run] = {}  # "entity/project/run-id" -> run
        self.app_url = "https://wandb.ai"
        self.fail_with: RegistryError | None = None  # raised by every protocol call while set
        self._hooks: list[tuple[str, int, Callable[[], None]]] = []
        self._calls: dict[str, int] = {}

    def before(self, operation: str, hook: Callable[[], None], *, call: int = 1) -> None:
        """Run ``hook()`` just before the ``call``-th next call of ``operation`` (a protocol method
        name, e.g. "version_with_alias"): another run acting between two steps of the code under test."""
        self._hooks.append((operation, self._calls.get(operation, 0) + call, hook))

    def _called(self, operation: str) -> None:
        self._calls[operation] = n = self._calls.get(operation, 0) + 1
        for entry in [e for e in self._hooks if e[0] == operation and e[1] == n]:
            self._hooks.remove(entry)
            entry[2]()

    # -- seeding and assertions ------------------------------------------------------------------
    def add_model(self, entity: str, project: str, name: str, files: dict[str, bytes],
                  aliases: tuple[str, ...] | list[str] = (), metadata: dict[str, Any] | None = None,
                  *, type: str = "model", logged_by: str | None = None) -> str:
        assert logged_by is None or logged_by in self.runs, f"no run {logged_by}"
        key = f"{entity}/{project}/{name}"
        self.projects.add(f"{entity}/{project}")
        coll = self.collections.setdefault(key, _Collection())
        version = _Version(f"{key}:v{len(coll.members)}", dict(files), dict(metadata or {}), type, logged_by)
        coll.add(version, list(aliases))
        return version.path

    def add_run(self, entity: str, project: str, run_id: str, *, display_name: str = "",
                config: dict[str, Any] | None = None, used: tuple[str, ...] | list[str] = ()) -> str:
        """A run with ``config`` that used the versions ``used``; returns ``entity/project/run-id``."""
        path = f"{entity}/{project}/{run_id}"
        self.runs[path] = _Run(display_name or run_id, dict(config or {}), [self._version(p) for p in used])
        return path

    def delete_run(self, path: str) -> None:
        del self.runs[path]

    def alias_map(self, collection: str) -> dict[str, str]:
        coll = self.collections.get(_key(collection))
        return {a: v.path for a, v in coll.aliases.items()} if coll else {}

    def members(self, collection: str) -> list[str]:
        coll = self.collections.get(_key(collection))
        return [v.path for v in coll.members] if coll else []

    # -- ModelRegistry ---------------------------------------------------------------------------
    def resolve(self, path: str) -> ModelVersion:
        self._maybe_fail()
        collection, _, alias = check_version_path(path).partition(":")
        coll = self._collection(collection, path)
        version = coll.find(alias) if coll else None
        if coll is None or version is None:
            raise ArtifactNotFound(f"W&B has no artifact {path!r}: no version holds {alias!r}.")
        return ModelVersion(
            name=version.path,
            version=version.path.rsplit(":", 1)[1],
            aliases=sorted(a for a, v in coll.aliases.items() if v is version),
            collection=collection.rsplit("/", 1)[1],
            digest=version.digest(),
            metadata=dict(version.metadata),
            id=base64.b64encode(f"Artifact:{version.path}".encode()).decode(),  # one per logged version
        )

    def download(self, path: str, dest: Path) -> list[Path]:
        version = self._version(self.resolve(path).name)
        written = []
        for name, data in sorted(version.files.items()):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(target)
        return written

    def version_with_alias(self, collection_path: str, alias: str) -> ModelVersion | None:
        self._called("version_with_alias")
        path = f"{check_collection_path(collection_path)}:{check_alias(alias)}"
        try:
            return self.resolve(path)
        except ArtifactNotFound as exc:
            if exc.missing_project and "/wandb-registry-" in f"/{collection_path}":
                raise
            return None

    def link(self, source_path: str, target_collection: str, alias: str) -> bool:
        self._called("link")
        check_collection_path(target_collection)
        source = self._version(self.resolve(source_path).name)
        holder = self.version_with_alias(target_collection, alias)
        if holder is not None and holder.name == source.path:
            return False
        self.link_operations.append((source.path, target_collection, alias))
        self.projects.add(_project(target_collection))
        self.collections.setdefault(_key(target_collection), _Collection()).add(source, [alias])
        return True

    def add_alias(self, path: str, alias: str) -> None:
        check_alias(alias)
        self.resolve(path)
        coll = self.collections[_key(path.partition(":")[0])]
        version = coll.find(path.partition(":")[2])
        assert version is not None
        coll.aliases[alias] = version

    def lineage(self, path: str) -> Lineage:
        version = self._version(self.resolve(path).name)
        run = self.runs.get(version.logged_by) if version.logged_by else None
        if run is None or version.logged_by is None:
            return Lineage(run=None, config={}, used=[])
        entity, project, run_id = version.logged_by.split("/")
        return Lineage(
            run=LineageRun(id=run_id, name=run.display_name, project=f"{entity}/{project}",
                           url=f"{self.app_url}/{entity}/{project}/runs/{run_id}"),
            config=dict(run.config),
            used=[UsedArtifact(name=u.path, type=u.type, digest=u.digest(), metadata=dict(u.metadata))
                  for u in run.used[:MAX_USED_ARTIFACTS]],
        )

    # -- helpers ---------------------------------------------------------------------------------
    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def _collection(self, collection: str, path: str) -> _Collection | None:
        if _project(collection) not in self.projects:
            raise ArtifactNotFound(f"W&B has no artifact {path!r}: no project {_project(collection)!r}.",
                                   missing_project=True)
        return self.collections.get(_key(collection))

    def _version(self, source_path: str) -> _Version:
        collection, _, alias = source_path.partition(":")
        version = self.collections[collection].find(alias)
        assert version is not None
        return version


def _key(collection: str) -> str:
    """Drop the optional organization in front of a registry path."""
    parts = collection.split("/")
    return "/".join(parts[1:]) if len(parts) == 3 and parts[1].startswith("wandb-registry-") else collection


def _project(collection: str) -> str:
    return _key(collection).rsplit("/", 1)[0]
