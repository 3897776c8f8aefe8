"""``mode: promote`` links only the artifact that was gated: the registry's digest must equal the one the
approved manifest pinned, for every manifest of the push, before anything is linked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mlgate.clients import NOT_IN_ACTIONS, Clients
from mlgate.context import RunContext
from mlgate.data.dvc import DvcRunner
from mlgate.errors import ExitCode
from mlgate.model.promote import DigestMismatch, run_promote
from mlgate.model.registry import ModelRegistry
from mlgate.settings import PromoteSettings, RegistrySettings, load_settings
from tests.fakes.memory_registry import MemoryRegistry

REGISTRY = "wandb-registry-model/mnist"
OTHER = "wandb-registry-model/fashion"
MODEL = {"model.pt": b"weights v1"}


def clients(registry: ModelRegistry) -> Clients:
    def make(settings: RegistrySettings, env: Mapping[str, str]) -> ModelRegistry:
        return registry

    return Clients(github=None, github_blocked=NOT_IN_ACTIONS, dvc=DvcRunner(Path(".")), registry=make, env={})


def settings() -> PromoteSettings:
    loaded = load_settings({"mode": "promote"})
    assert isinstance(loaded, PromoteSettings)
    return loaded


def write_manifest(workspace: Path, name: str, **fields: Any) -> str:
    rel = f".mlgate/promotions/{name}.json"
    (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
    (workspace / rel).write_text(json.dumps({"alias": "production", "passed": True, "compared_with": None,
                                             **fields}))
    return rel


def push(workspace: Path, *paths: str) -> RunContext:
    event = {"commits": [{"added": list(paths), "modified": []}]}
    return RunContext(in_actions=False, workspace=workspace, event_name="push", event=event)


def test_promote__digest_as_pinned__links_and_report_json_says_it_was_verified(tmp_path: Path) -> None:
    registry = MemoryRegistry()
    source = registry.add_model("acme", "mnist-train", "mnist-cnn", MODEL)
    pinned = registry.resolve(source).digest  # what the gate wrote into the manifest
    rel = write_manifest(tmp_path, "mnist", artifact=source, collection=REGISTRY, digest=pinned)
    assert run_promote(settings(), push(tmp_path, rel), clients(registry)) == ExitCode.PASSED
    assert registry.link_operations == [(source, REGISTRY, "production")]
    (promotion,) = json.loads((tmp_path / "mlgate-report" / "report.json").read_text())["promotions"]
    assert promotion["digest"] == pinned and promotion["digest_verified"] is True


@pytest.mark.reliability(
    "race", "approved artifact's files changed in the registry between the gate and the merge",
    "exit 2 (DigestMismatch): names the artifact, both digests and says to rerun the gate; nothing linked, "
    "not even the other manifest of the same push"
)
def test_promote__digest_changed_since_the_gate__refused_naming_both_digests_and_nothing_linked(
    tmp_path: Path
) -> None:
    registry = MemoryRegistry()
    source = registry.add_model("acme", "mnist-train", "mnist-cnn", MODEL)
    other = registry.add_model("acme", "fashion-train", "fashion-cnn", {"model.pt": b"fashion"})
    pinned = registry.resolve(source).digest
    first = write_manifest(tmp_path, "fashion", artifact=other, collection=OTHER,
                           digest=registry.resolve(other).digest)
    second = write_manifest(tmp_path, "mnist", artifact=source, collection=REGISTRY, digest=pinned)
    registry.collections["acme/mnist-train/mnist-cnn"].members[0].files["model.pt"] = b"weights swapped"
    now = registry.resolve(source).digest
    assert now != pinned

    with pytest.raises(DigestMismatch) as raised:
        run_promote(settings(), push(tmp_path, first, second), clients(registry))
    assert raised.value.exit_code == ExitCode.ERROR
    message = raised.value.message
    assert f"`{source}` has digest {now} in the registry" in message
    assert f"pinned digest {pinned}" in message and "Nothing was linked." in message
    assert "Rerun the gate" in raised.value.hint
    assert registry.link_operations == []  # the fashion manifest, checked first and fine, is not linked either


def test_promote__manifest_without_digest__still_linked_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = MemoryRegistry()
    source = registry.add_model("acme", "mnist-train", "mnist-cnn", MODEL)
    rel = write_manifest(tmp_path, "mnist", artifact=source, collection=REGISTRY)  # an older mlgate's manifest
    assert run_promote(settings(), push(tmp_path, rel), clients(registry)) == ExitCode.PASSED
    assert registry.link_operations == [(source, REGISTRY, "production")]
    assert "pins no artifact digest" in capsys.readouterr().err
    (promotion,) = json.loads((tmp_path / "mlgate-report" / "report.json").read_text())["promotions"]
    assert promotion["digest_verified"] is False
