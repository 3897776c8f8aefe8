"""The W&B model registry, behind a small protocol the gate logic is written against.

``WandbRegistry`` adapts the real ``wandb`` SDK (public ``wandb.Api`` and ``Artifact``); tests of the
gate hand in ``tests.fakes.memory_registry.MemoryRegistry`` instead. ``wandb`` is imported on first
use only: ``data-stats`` never pays for it.

Paths (validated before anything is sent):
- an artifact version: ``entity/project/name:v3``, ``entity/project/name:alias``, a registry
  version ``wandb-registry-model/collection:alias`` (optionally ``org/`` in front), or the legacy
  ``entity/model-registry/name:alias``;
- a collection (no ``:alias``): ``wandb-registry-model/mnist`` or ``entity/model-registry/mnist``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, SecretStr

from mlgate import workflow
from mlgate.errors import ExitCode, MlgateError
from mlgate.model.artifact_paths import COLLECTION_PATH, NAME, VERSION_PATH

if TYPE_CHECKING:
    from wandb.apis.public import Api
    from wandb.sdk.artifacts.artifact import Artifact



_VERSION_FORMS = (
    "entity/project/name:v3, entity/project/name:alias, wandb-registry-model/collection:alias "
    "or entity/model-registry/name:alias (letters, digits, '-', '_', '.')"
)
_COLLECTION_FORMS = "wandb-registry-model/collection or entity/model-registry/collection"
_KEY_HINT = (
    "Pass a valid W&B API key whose user can read the model (and write to the registry to promote):\n"
    "  with:\n"
    "    wandb-api-key: ${{ secrets.WANDB_API_KEY }}\n"
    "Create one at https://wandb.ai/authorize and store it as the repository secret WANDB_API_KEY."
)


class RegistryError(MlgateError):
    """Raised when W&B refuses or fails a registry operation; names the artifact, never the key."""

    title = "W&B registry error"


class ArtifactNotFound(RegistryError):
    """Raised when the artifact, alias or registry project named by a path does not exist."""

    title = "W&B artifact not found"

    def __init__(self, message: str, *, hint: str = "", missing_project: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.missing_project = missing_project


class RegistryUnavailable(RegistryError):
    """Raised when W&B cannot be reached or answers a server error (after the SDK's retries)."""

    title = "W&B unavailable"
    exit_code = ExitCode.SERVICE


class RegistryUnauthorized(RegistryError):
    """Raised when W&B rejects the API key (missing, wrong, or without access)."""

    title = "W&B API key rejected"


class AliasRefused(RegistryUnauthorized):
    """Raised when W&B refuses to set (or remove) an alias, typically a protected alias such as
    ``production`` that only a registry Admin may set; names the alias and the role the key needs."""

    title = "W&B refused the alias"


class ModelVersion(BaseModel):
    """One model version as a path resolved to it.

    ``name``, ``version``, ``digest`` and ``metadata`` describe the source artifact version (the same
    whichever registry path led to it); ``aliases`` and ``collection`` belong to the collection the
    path was resolved in (the registry collection for a registry path).
    """

    name: str  # "entity/project/mnist-cnn:v3"
    version: str  # "v3"
    aliases: list[str]
    collection: str
    digest: str | None
    metadata: dict[str, Any]
    id: str | None = None
    """The registry's id of the version (W&B's ``artifact.id``): the same through the source path, a
    legacy registry path or a ``wandb-registry-*`` path; what :func:`same_version` compares."""


class InconsistentVersion(RegistryError):
    """Raised by :func:`same_version` when W&B answers one version id with two different digests."""

    title = "W&B answered inconsistently"
    exit_code = ExitCode.SERVICE


def same_version(a: ModelVersion, b: ModelVersion | None) -> bool:
    """Whether ``a`` and ``b`` are one model version: by registry version id (by name when either id
    is unknown), never by digest alone, because an empty or missing digest would make two versions one.
    The digest is a consistency check: one id with two different non-empty digests raises
    :class:`InconsistentVersion`."""
    if b is None:
        return False
    same = a.id == b.id if a.id and b.id else a.name == b.name
    if same and a.digest and b.digest and a.digest != b.digest:
        raise InconsistentVersion(
            f"W&B answered two digests for {a.name} (version id {a.id or 'unknown'}): {a.digest} and {b.digest}.",
            hint="A committed W&B artifact version does not change; rerun the job, and if it happens again, "
            "check the version's files in the W&B UI.",
        )
    return same


class ArtifactEntryRefused(RegistryError):
    """Raised when an artifact's manifest names a file the SDK refuses to write (an absolute path or
    one that climbs out with ``..``): the artifact is bad input, and a rerun cannot fix it."""

    title = "W&B artifact holds an unsafe file name"


class LineageRun(BaseModel):
    """The W&B run that logged a model version."""

    id: str  # "3kq9x2ab"
    name: str | None  # the display name, "brisk-sun-12"
    project: str  # "entity/project"
    url: str


class UsedArtifact(BaseModel):
    """An artifact version the run declared as input (``run.use_artifact``)."""

    name: str  # "entity/project/mnist-data:v3"
    type: str  # "dataset", "model", ...
    digest: str | None
    metadata: dict[str, Any]


MAX_USED_ARTIFACTS = 100
"""Input artifacts read per run (one page of the SDK's paginator); more are left out."""


class Lineage(BaseModel):
    """What W&B knows about how a model version was made: the run that logged it, that run's config
    and the artifacts it used. ``run`` is None when no run logged it (uploaded by a user, or the run
    was deleted); read and judged by :mod:`mlgate.model.lineage`."""

    run: LineageRun | None
    config: dict[str, Any]
    """The run's config (``wandb.config``), the SDK's ``value`` wrappers removed."""
    used: list[UsedArtifact]


class ModelRegistry(Protocol):
    def resolve(self, path: str) -> ModelVersion: ...

    def download(self, path: str, dest: Path) -> list[Path]: ...

    def version_with_alias(self, collection_path: str, alias: str) -> ModelVersion | None: ...

    def link(self, source_path: str, target_collection: str, alias: str) -> bool: ...

    def add_alias(self, path: str, alias: str) -> None: ...

    def lineage(self, path: str) -> Lineage: ...


def check_version_path(path: str) -> str:
    if not VERSION_PATH.fullmatch(path):
        raise RegistryError(f"Invalid W&B artifact path {path!r}.", hint=f"Accepted forms: {_VERSION_FORMS}.")
    return path


def check_collection_path(path: str) -> str:
    if not COLLECTION_PATH.fullmatch(path):
        raise RegistryError(
            f"Invalid W&B registry collection {path!r}.", hint=f"Accepted forms: {_COLLECTION_FORMS}."
        )
    return path


def check_alias(alias: str) -> str:
    if not NAME.fullmatch(alias) or re.fullmatch(r"v\d+", alias):
        raise RegistryError(
            f"Invalid W&B alias {alias!r}.",
            hint="Use letters, digits, '-', '_' or '.'; 'v<number>' is reserved for versions.",
        )
    return alias


RETRY_BUDGET_ENV = "MLGATE_RETRY_BUDGET_S"
"""Seconds one W&B call may take, the SDK's retries included (default 60); shared with GitHub."""
_SDK_RETRY_DEFAULTS = {
    # wandb-core retries GraphQL 5xx/429/resets itself; these bound it (the SDK's defaults retry for
    # many minutes). Read once per process, when wandb sets up; a value already set wins.
    "WANDB__GRAPHQL_RETRY_MAX": "3",
    "WANDB__GRAPHQL_RETRY_WAIT_MIN_SECONDS": "1",
    "WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS": "8",
    "WANDB__GRAPHQL_TIMEOUT_SECONDS": "20",
}


def _budget_seconds() -> int:
    try:
        return max(1, round(float(os.environ.get(RETRY_BUDGET_ENV) or 60)))
    except ValueError:
        return 60


class WandbRegistry:
    """``ModelRegistry`` over the public ``wandb`` SDK; one ``wandb.Api`` made on first use.

    Every call is bounded: wandb-core retries a GraphQL request at most 3 times (5xx, 429, resets,
    timeouts), and the whole call gives up after the retry budget (``MLGATE_RETRY_BUDGET_S``,
    default 60 s); then :class:`RegistryUnavailable` (exit 3) says what was being done.
    """

    def __init__(self, api_key: str, base_url: str | None = None, entity: str | None = None) -> None:
        self._api_key = api_key
        self._entity = entity
        self._api: Api | None = None
        self._budget_s = _budget_seconds()
        # Artifact.link() builds its own Api() from the environment, and wandb-core reads it too
        os.environ["WANDB_API_KEY"] = api_key
        os.environ["WANDB_ERROR_REPORTING"] = "false"
        os.environ.setdefault("WANDB_HTTP_TIMEOUT", str(self._budget_s))  # an Api() made inside the SDK
        for name, value in _SDK_RETRY_DEFAULTS.items():
            os.environ.setdefault(name, value)
        if base_url:
            os.environ["WANDB_BASE_URL"] = base_url
        self._base_url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")

    def resolve(self, path: str) -> ModelVersion:
        return _model_version(self._artifact(check_version_path(path)))

    def download(self, path: str, dest: Path) -> list[Path]:
        artifact = self._artifact(check_version_path(path))
        dest.mkdir(parents=True, exist_ok=True)
        with self._errors(path, "Reading the manifest of"):
            entries = sorted(artifact.manifest.entries)
        for entry in entries:  # before any byte is written: the SDK refuses these mid-download
            _check_entry(path, entry)
        with self._errors(path, "Downloading"):
            try:
                artifact.download(root=str(dest), skip_cache=True)
            except ValueError as exc:
                if "invalid artifact path" not in str(exc).lower():
                    raise
                raise _entry_refused(path, str(exc)) from exc
        return [dest / entry for entry in entries]

    def version_with_alias(self, collection_path: str, alias: str) -> ModelVersion | None:
        path = f"{check_collection_path(collection_path)}:{check_alias(alias)}"
        try:
            return self.resolve(path)
        except ArtifactNotFound as exc:
            # a registry must exist (created in the W&B UI): a missing one is a wrong path, not "no
            # holder"; linking creates a legacy entity/model-registry project on first use
            if exc.missing_project and "/wandb-registry-" in f"/{collection_path}":
                raise
            return None

    def link(self, source_path: str, target_collection: str, alias: str) -> bool:
        check_collection_path(target_collection)
        source = self._artifact(check_version_path(source_path))
        holder = self.version_with_alias(target_collection, alias)
        if same_version(_model_version(source), holder):
            return False
        with self._alias_refusal(alias, source_path, target_collection), \
                self._errors(f"{source_path} -> {target_collection}", "Linking"):
            source.link(target_collection, aliases=[alias])
        return True

    def add_alias(self, path: str, alias: str) -> None:
        artifact = self._artifact(check_version_path(path))
        if check_alias(alias) in artifact.aliases:
            return
        with self._alias_refusal(alias, path, path.split(":", 1)[0]), \
                self._errors(path, f"Adding alias {alias!r} to"):
            artifact.aliases = [*artifact.aliases, alias]
            artifact.save()

    def lineage(self, path: str) -> Lineage:
        """``artifact.logged_by()``, then that run's ``config`` and ``used_artifacts()`` (at most
        :data:`MAX_USED_ARTIFACTS`)."""
        from wandb.apis.public.runs import RunNotFoundError  # start-up: wandb only when the registry is used

        artifact = self._artifact(check_version_path(path))
        with self._errors(path, "Reading the lineage of"):
            try:
                run = artifact.logged_by()
            except RunNotFoundError:  # the run was deleted
                run = None
            if run is None:
                return Lineage(run=None, config={}, used=[])
            used = [UsedArtifact(name=a.source_qualified_name, type=a.type, digest=a.digest, metadata=dict(a.metadata))
                    for a in islice(run.used_artifacts(per_page=MAX_USED_ARTIFACTS), MAX_USED_ARTIFACTS)]
            return Lineage(
                run=LineageRun(id=run.id, name=run.name, project=f"{run.entity}/{run.project}", url=run.url),
                config=dict(run.config), used=used,
            )

    # -- SDK access ----------------------------------------------------------------------------
    def _artifact(self, path: str) -> Artifact:
        api = self._connect()
        with self._errors(path):
            artifact: Artifact = api.artifact(path)
        return artifact

    def _connect(self) -> Api:
        if self._api is None:
            if not self._api_key.strip():  # wandb would fall back to an interactive login prompt
                raise RegistryUnauthorized("No W&B API key was given.", hint=_KEY_HINT)
            import wandb  # start-up: wandb only when the registry is used

            with self._errors(None, "Connecting to"):
                overrides = {"entity": self._entity} if self._entity else None
                self._api = wandb.Api(overrides=overrides, api_key=self._api_key, timeout=self._budget_s)
        return self._api

    @contextmanager
    def _alias_refusal(self, alias: str, version: str, collection: str) -> Iterator[None]:
        """A write refused after the reads succeeded is a refusal of the alias, not of the key."""
        try:
            yield
        except RegistryUnauthorized as exc:
            if isinstance(exc, AliasRefused):
                raise
            reason = str(exc.__cause__ or exc.message).replace(self._api_key, "***")
            raise _alias_refused(alias, version, collection, reason) from exc

    @contextmanager
    def _errors(self, subject: str | None, doing: str = "Reading") -> Iterator[None]:
        """Turn SDK exceptions into ``RegistryError``s that name ``subject`` and never hold the key."""
        try:
            yield
        except MlgateError:
            raise
        except Exception as exc:
            raise _translate(exc, subject, self._base_url, self._api_key, self._budget_s, doing) from exc


# wandb raises AuthenticationError both for a rejected key and for a server it cannot reach
_UNREACHABLE = ("giving up after", "did not respond", "dial tcp", "no such host", "connection refused")


def _translate(exc: Exception, subject: str | None, base_url: str, api_key: str,
               budget_s: int = 60, doing: str = "Reading") -> RegistryError:
    from wandb.errors import AuthenticationError  # start-up: wandb only when the registry is used

    reason = str(exc).replace(api_key, "***") if api_key else str(exc)
    about = f" for {subject!r}" if subject else ""
    lowered = reason.lower()
    rejected = isinstance(exc, AuthenticationError) and not any(s in lowered for s in _UNREACHABLE)
    if rejected or re.search(r"\berror 40[13]\b", lowered) or "permission" in lowered:
        return RegistryUnauthorized(f"W&B at {base_url} refused the API key{about}: {reason}", hint=_KEY_HINT)
    if "not found" in lowered:
        return ArtifactNotFound(
            f"W&B has no artifact {subject!r}: {reason}",
            hint=f"Check the entity, project, name and alias/version. Accepted forms: {_VERSION_FORMS}.",
            missing_project=lowered.startswith("project "),
        )
    if "did not respond in time" in lowered:  # the SDK's words when our time budget ran out
        reason = f"no usable answer within the {budget_s} s retry budget (W&B failing, slow or rate limiting)"
    what = f"{doing} {subject!r} on W&B" if subject else f"{doing} W&B"
    return RegistryUnavailable(
        f"{what} ({base_url}) failed after retries: {reason}",
        hint="Check that the W&B server is reachable from the runner and, for W&B Server, its URL; "
        "W&B may also be overloaded or rate limiting (https://status.wandb.com). Rerun the job: a "
        "rerun completes what this run left undone (linking the same version again is a no-op).",
    )


def _alias_refused(alias: str, version: str, collection: str, reason: str) -> AliasRefused:
    """The error for W&B refusing ``alias`` on ``version`` in ``collection``: which alias, and which role."""
    reason = reason.strip().removeprefix("input: ")
    registry = "wandb-registry-" in collection
    needs = ("the registry Admin role (or a service account with that role)" if registry
             else "write access to the team's model registry (and the Admin role for a protected alias)")
    if registry:
        role = (f"`{alias}` is most likely a protected alias of the registry: only a registry Admin can add or "
                f"remove it. Give the W&B user of `wandb-api-key` the Admin role in that registry (Registry → "
                f"settings → Registry members and roles), or use the API key of a service account that has "
                f"the Admin role there; a Member or Viewer key is refused.")
    else:
        role = (f"The W&B user of `wandb-api-key` needs write access to `{collection}` (a Member or Admin of "
                f"its team), and for a protected alias the Admin role.")
    return AliasRefused(
        f"W&B refused to set the alias `{alias}` on {version} in `{collection}` ({reason}). Nothing was "
        f"changed: whoever held `{alias}` still holds it. Setting it needs {needs}.",
        hint=role + " Then rerun the job.",
    )


def _check_entry(path: str, entry: str) -> None:
    """Refuse a manifest entry that is absolute or climbs out of the download folder (``../x``)."""
    parts = entry.replace("\\", "/").split("/")
    if not entry or entry.startswith("/") or re.match(r"[A-Za-z]:", entry) or ".." in parts:
        raise _entry_refused(path, f"entry {entry!r} is not a path inside the artifact")


def _entry_refused(path: str, reason: str) -> ArtifactEntryRefused:
    return ArtifactEntryRefused(
        f"W&B artifact {path!r} cannot be downloaded safely: {reason}. Nothing was downloaded.",
        hint="The artifact's manifest names a file outside the artifact (an absolute path or one with '..'); "
        "a rerun cannot fix it. Log a new version whose files have plain relative names "
        "(artifact.add_file(local_path, name='model.pt')) and stage that.",
    )


def _model_version(artifact: Artifact) -> ModelVersion:
    return ModelVersion(
        name=artifact.source_qualified_name,
        version=artifact.source_version,
        aliases=sorted(artifact.aliases),
        collection=artifact.name.split(":")[0],
        digest=artifact.digest,
        metadata=dict(artifact.metadata),
        id=artifact.id,
    )


@dataclasses.dataclass(frozen=True)
class RegistryLogin:
    """``wandb-api-key`` and ``wandb-base-url``: how to reach the registry (either may come from the environment)."""

    api_key: SecretStr | None = None
    base_url: str | None = None


RegistryFactory = Callable[[RegistryLogin, Mapping[str, str]], ModelRegistry]
"""How a mode gets its registry: :func:`connect_wandb` in production, an in-memory fake in tests."""


def connect_wandb(login: RegistryLogin, env: Mapping[str, str]) -> ModelRegistry:
    """The W&B registry for the key and server given (or the environment's); the key is masked."""
    key = login.api_key.get_secret_value() if login.api_key else env.get("WANDB_API_KEY", "")
    if not key:
        raise RegistryUnauthorized(
            "No W&B API key: the model lives in W&B, so `wandb-api-key` is needed.",
            hint="with:\n  wandb-api-key: ${{ secrets.WANDB_API_KEY }}",
        )
    workflow.mask(key)
    return WandbRegistry(key, login.base_url or env.get("WANDB_BASE_URL") or None)
