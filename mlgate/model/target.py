"""Which model to gate, and which registry collection it would be promoted into.

From the ``model`` input, or from the ``repository_dispatch`` payload a W&B automation sends when a
version is linked into a collection (``${event_type}`` ``LINK_ARTIFACT``, or ``LINK_MODEL`` from the
older model registry) or gets an alias such as ``staging`` (``ADD_ARTIFACT_ALIAS``, with the alias in
``${alias}``, which is empty for the other events). ``${artifact_version_string}`` may be a source
version (``entity/project/name:vN``), a registry version (``wandb-registry-model/mnist:vN``, with or
without ``org/`` in front) or a legacy one (``entity/model-registry/mnist:vN``). Payload values are
checked against strict patterns: they are user-controlled text and must never reach a shell or a
path outside the workspace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlgate.errors import MlgateError
from mlgate.model.artifact_paths import ARTIFACT, NAME, PART, VERSION_STRING

EVENT_TYPES = ("LINK_ARTIFACT", "ADD_ARTIFACT_ALIAS", "LINK_MODEL", "CREATE_ARTIFACT")
"""W&B automation events that carry an artifact version (``${event_type}``)."""
_EVENT_TYPE = re.compile("|".join(EVENT_TYPES))
_PAYLOAD_VERSION = re.compile(rf"{VERSION_STRING.pattern}|wandb-registry-{PART}/{PART}:{PART}", re.ASCII)
"""``${artifact_version_string}``: ``entity/project/name:vN``; a registry version may come without the org."""

EXPECTED_PAYLOAD = """{
  "event_type": "staged_model",
  "client_payload": {
    "artifact_version_string": "${artifact_version_string}",
    "artifact_collection_name": "${artifact_collection_name}",
    "entity_name": "${entity_name}",
    "project_name": "${project_name}",
    "alias": "${alias}",
    "event_type": "${event_type}"
  }
}"""


class InvalidPayload(MlgateError):
    """Raised when a repository_dispatch payload is missing fields or holds unexpected values."""

    title = "Invalid repository_dispatch payload"

    def __init__(self, message: str) -> None:
        # the expected payload goes into the message too: the ::error annotation shows only the message
        super().__init__(
            f"{message} The W&B automation's webhook payload must be: {' '.join(EXPECTED_PAYLOAD.split())}",
            hint="Configure the W&B automation's webhook payload as:\n" + EXPECTED_PAYLOAD,
        )


class ModelTarget(BaseModel):
    model: str
    """A W&B artifact path, or a file/folder path in the workspace."""
    is_local: bool
    collection: str | None
    """Registry collection the model would be promoted into (``wandb-registry-model/mnist``)."""
    event_type: str | None = None
    """The W&B automation event that sent the payload (``LINK_ARTIFACT``, ...); None otherwise."""
    alias: str | None = None
    """The alias whose addition sent the payload (``ADD_ARTIFACT_ALIAS``); None for other events."""

    @property
    def collection_name(self) -> str | None:
        return self.collection.rsplit("/", 1)[-1] if self.collection else None


def resolve_target(model: str | None, registry: str | None, event_name: str | None,
                   event: Mapping[str, Any], workspace: Path) -> ModelTarget:
    if model:
        if ".." in Path(model).parts:
            raise MlgateError(f"Input `model` {model!r} leaves the workspace.",
                              hint="Give a path inside the repository, e.g. `model: models/model.pt`.")
        if (workspace / model).exists():
            return ModelTarget(model=model, is_local=True, collection=registry)
        if ARTIFACT.fullmatch(model):
            return ModelTarget(model=model, is_local=False, collection=registry or _collection_of(model))
        raise MlgateError(
            f"Input `model` {model!r} is neither a W&B artifact path nor a file in the workspace.",
            hint="Use `entity/project/name:v3`, `wandb-registry-model/<collection>:staging`, "
            "or a path such as `models/model.pt`.",
        )
    if event_name != "repository_dispatch":
        raise MlgateError(
            f"No model to gate: input `model` is empty and the event is {event_name or 'none'}, "
            "not `repository_dispatch`.",
            hint="Set `model: wandb-registry-model/<collection>:staging`, or trigger the workflow from a "
            "W&B automation with `on: repository_dispatch: types: [staged_model]`.",
        )
    payload = event.get("client_payload")
    if not isinstance(payload, dict):
        raise InvalidPayload("The repository_dispatch event has no `client_payload` object.")
    event_type = _optional(payload, "event_type", _EVENT_TYPE, f"one of {', '.join(EVENT_TYPES)}")
    version_string = _field(payload, "artifact_version_string", _PAYLOAD_VERSION)
    entity = _field(payload, "entity_name", NAME)
    project = _field(payload, "project_name", NAME)
    collection_name = _field(payload, "artifact_collection_name", NAME)
    alias = _optional(payload, "alias", NAME, "an alias such as `staging`, or empty")  # empty unless added
    if event_type == "ADD_ARTIFACT_ALIAS" and alias is None:
        raise InvalidPayload("`client_payload.alias` is empty, but `event_type` is ADD_ARTIFACT_ALIAS, "
                             "whose `${alias}` names the alias that was added.")
    default_collection = (
        f"{project}/{collection_name}" if project.startswith("wandb-registry-")
        else f"{entity}/model-registry/{collection_name}"  # a legacy registry event, or a project's
    )
    return ModelTarget(model=version_string, is_local=False, collection=registry or default_collection,
                       event_type=event_type, alias=alias)


def _field(payload: Mapping[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidPayload(f"`client_payload.{key}` is missing.")
    if not pattern.fullmatch(value):
        shown = value if len(value) <= 80 else value[:80] + "…"
        raise InvalidPayload(f"`client_payload.{key}` is {shown!r}, which does not match {pattern.pattern}.")
    return value


def _optional(payload: Mapping[str, Any], key: str, pattern: re.Pattern[str], allowed: str) -> str | None:
    """An optional payload value: absent or empty is None, anything else must match ``pattern``."""
    value = payload.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        shown = value if isinstance(value, str) and len(value) <= 80 else str(value)[:80] + "…"
        raise InvalidPayload(f"`client_payload.{key}` is {shown!r}; expected {allowed}.")
    return value


def _collection_of(artifact: str) -> str | None:
    """`wandb-registry-model/mnist:staging` -> `wandb-registry-model/mnist`; legacy registry paths too."""
    path = artifact.split(":", 1)[0]
    parts = path.split("/")
    if parts[0].startswith("wandb-registry-") or (len(parts) == 3 and parts[1] == "model-registry"):
        return path
    if len(parts) == 3 and parts[1].startswith("wandb-registry-"):
        return f"{parts[1]}/{parts[2]}"
    return None
