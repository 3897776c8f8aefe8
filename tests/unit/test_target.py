from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlgate.errors import MlgateError
from mlgate.model.target import InvalidPayload, resolve_target

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "events"


def staged_model_event(**payload: Any) -> dict[str, Any]:
    """GitHub's real repository_dispatch example, with the client_payload a W&B automation sends."""
    event = json.loads((EVENTS / "repository_dispatch.json").read_text())
    event["action"] = "staged_model"
    event["client_payload"] = {
        "artifact_version_string": "acme/wandb-registry-model/mnist:v7",
        "artifact_collection_name": "mnist",
        "entity_name": "acme",
        "project_name": "wandb-registry-model",
        "alias": "staging",
        "event_type": "ADD_ARTIFACT_ALIAS",
        **payload,
    }
    return event


def test_payload__gives_the_pinned_version_and_the_registry_collection(tmp_path: Path) -> None:
    target = resolve_target(None, None, "repository_dispatch", staged_model_event(), tmp_path)
    assert target.model == "acme/wandb-registry-model/mnist:v7"
    assert target.collection == "wandb-registry-model/mnist"
    assert not target.is_local


def test_payload_from_legacy_model_registry__targets_entity_model_registry(tmp_path: Path) -> None:
    event = staged_model_event(artifact_version_string="acme/mnist-train/cnn:v2", project_name="mnist-train",
                               artifact_collection_name="cnn")
    target = resolve_target(None, None, "repository_dispatch", event, tmp_path)
    assert target.collection == "acme/model-registry/cnn"


def test_registry_input__overrides_the_payload_default(tmp_path: Path) -> None:
    target = resolve_target(None, "wandb-registry-model/other", "repository_dispatch", staged_model_event(), tmp_path)
    assert target.collection == "wandb-registry-model/other"


def _bad_payload(value: str, case: str) -> object:
    return pytest.param(value, marks=pytest.mark.reliability(
        "input", f"repository_dispatch `artifact_version_string` {case}",
        "exit 2: names `artifact_version_string` and shows the payload a W&B automation should send"))


@pytest.mark.parametrize("bad", [
    _bad_payload("acme/proj/x:v1; rm -rf /", "with `; rm -rf /`"),
    _bad_payload("$(curl evil)", "`$(curl evil)`"),
    _bad_payload("a/b/c:v1\nINPUT_X=1", "with a newline and `INPUT_X=1`"),
    _bad_payload("a/b/c:v1\n", "with a trailing newline"),
    _bad_payload("../../etc:v1", "`../../etc:v1`"),
])
def test_payload_values__that_do_not_match_strict_patterns_are_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidPayload) as info:
        resolve_target(None, None, "repository_dispatch", staged_model_event(artifact_version_string=bad), tmp_path)
    assert "artifact_version_string" in info.value.message
    assert "${artifact_version_string}" in info.value.hint  # shows the expected payload


@pytest.mark.reliability(
    "input", "repository_dispatch with an empty `client_payload`",
    "exit 2: says `client_payload.artifact_version_string` is missing and shows the expected payload"
)
def test_missing_payload__shows_the_expected_payload(tmp_path: Path) -> None:
    event = staged_model_event()
    event["client_payload"] = {}
    with pytest.raises(InvalidPayload) as info:
        resolve_target(None, None, "repository_dispatch", event, tmp_path)
    assert "client_payload.artifact_version_string` is missing" in info.value.message
    assert '"event_type": "staged_model"' in info.value.hint


@pytest.mark.reliability(
    "input", "model-gate on `push` with no `model` input",
    "exit 2: says there is no model to gate"
)
def test_no_model_and_no_dispatch__says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(MlgateError, match="No model to gate"):
        resolve_target(None, None, "push", {}, tmp_path)


@pytest.mark.reliability(
    "input", "`model: ../secret.pt` or a missing local file",
    "exit 2: says it leaves the workspace / is neither a W&B artifact nor a file"
)
def test_model_input__local_file_or_artifact_path(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.pt").write_bytes(b"x")
    assert resolve_target("models/m.pt", None, None, {}, tmp_path).is_local
    remote = resolve_target("wandb-registry-model/mnist:staging", None, None, {}, tmp_path)
    assert (remote.is_local, remote.collection) == (False, "wandb-registry-model/mnist")
    legacy = resolve_target("acme/model-registry/mnist:production", None, None, {}, tmp_path)
    assert legacy.collection == "acme/model-registry/mnist"
    with pytest.raises(MlgateError, match="neither a W&B artifact"):
        resolve_target("models/missing.pt", None, None, {}, tmp_path)
    with pytest.raises(MlgateError, match="leaves the workspace"):
        resolve_target("../secret.pt", None, None, {}, tmp_path)


@pytest.mark.reliability(
    "input", "W&B automation event `{event_type}`, alias '{alias}', version `{version}`",
    "understood: gates that pinned version; promotes into `{collection}`"
)
@pytest.mark.parametrize(("event_type", "alias", "version", "project", "entity", "collection"), [
    # a new version linked into a registry collection: no alias was added, `${alias}` renders empty
    ("LINK_ARTIFACT", "", "acme-org/wandb-registry-model/mnist:v7", "wandb-registry-model", "acme-org",
     "wandb-registry-model/mnist"),
    ("LINK_ARTIFACT", "", "wandb-registry-model/mnist:v7", "wandb-registry-model", "acme-org",
     "wandb-registry-model/mnist"),
    ("ADD_ARTIFACT_ALIAS", "staging", "acme/wandb-registry-model/mnist:v7", "wandb-registry-model", "acme",
     "wandb-registry-model/mnist"),
    ("ADD_ARTIFACT_ALIAS", "staging", "wandb-registry-model/mnist:v7", "wandb-registry-model", "acme",
     "wandb-registry-model/mnist"),
    # the older model registry
    ("LINK_MODEL", "", "acme/model-registry/mnist:v3", "model-registry", "acme", "acme/model-registry/mnist"),
    ("ADD_ARTIFACT_ALIAS", "staging", "acme/model-registry/mnist:v3", "model-registry", "acme",
     "acme/model-registry/mnist"),
    # a version logged to a project (the payload names the project's collection)
    ("CREATE_ARTIFACT", "", "acme/mnist-train/mnist:v3", "mnist-train", "acme", "acme/model-registry/mnist"),
])
def test_every_wandb_artifact_event__is_understood(
    tmp_path: Path, event_type: str, alias: str, version: str, project: str, entity: str, collection: str
) -> None:
    event = staged_model_event(event_type=event_type, alias=alias, artifact_version_string=version,
                               project_name=project, entity_name=entity)
    target = resolve_target(None, None, "repository_dispatch", event, tmp_path)
    assert (target.model, target.collection) == (version, collection)
    assert (target.event_type, target.alias) == (event_type, alias or None)


def test_payload_without_event_type_or_alias__still_understood(tmp_path: Path) -> None:
    """Payloads written before mlgate read these two keys keep working."""
    event = staged_model_event()
    del event["client_payload"]["event_type"], event["client_payload"]["alias"]
    target = resolve_target(None, None, "repository_dispatch", event, tmp_path)
    assert target.model == "acme/wandb-registry-model/mnist:v7" and target.event_type is None


@pytest.mark.reliability(
    "input", "repository_dispatch `client_payload.event_type` `{id}`",
    "exit 2: names `client_payload.event_type`, lists the W&B artifact events understood"
)
@pytest.mark.parametrize("value", ["RUN_METRIC_THRESHOLD", "${event_type}", "link_artifact", "LINK_ARTIFACT\n"])
def test_event_type_that_carries_no_model__refused_listing_the_understood_ones(tmp_path: Path, value: str) -> None:
    with pytest.raises(InvalidPayload) as info:
        resolve_target(None, None, "repository_dispatch", staged_model_event(event_type=value), tmp_path)
    assert "`client_payload.event_type`" in info.value.message
    assert "LINK_ARTIFACT, ADD_ARTIFACT_ALIAS, LINK_MODEL" in info.value.message


def test_alias_event_without_alias__refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidPayload, match=r"`client_payload.alias` is empty.*ADD_ARTIFACT_ALIAS"):
        resolve_target(None, None, "repository_dispatch", staged_model_event(alias=""), tmp_path)


@pytest.mark.parametrize("alias", ["staging; rm -rf /", "${alias}", "../x"])
def test_alias_value__checked_against_its_pattern(tmp_path: Path, alias: str) -> None:
    with pytest.raises(InvalidPayload, match=r"`client_payload.alias`"):
        resolve_target(None, None, "repository_dispatch", staged_model_event(alias=alias), tmp_path)
