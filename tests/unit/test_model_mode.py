"""The model-gate and promote flows in-process, with the in-memory registry (``registry_factory``).

What the end-to-end tests cannot reach cheaply: refusals before any download, a registry failing in
the middle of a promotion, and the manifest checks of ``mode: promote``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from mlgate.clients import NOT_IN_ACTIONS, Clients
from mlgate.context import RunContext
from mlgate.data.dvc import DvcRunner
from mlgate.model.manifest import PromotionError, manifest_path
from mlgate.model.mode import run_model_gate
from mlgate.model.promote import run_promote
from mlgate.model.registry import ModelRegistry, RegistryError
from mlgate.settings import ModelGateSettings, PromoteSettings, RegistrySettings, load_settings
from tests.fakes.memory_registry import MemoryRegistry
from tests.fixtures.models import make_images, torchscript_bytes, trained_cnn

REGISTRY = "wandb-registry-model/mnist"
EVAL = 200


@pytest.fixture(scope="module")
def model_file() -> dict[str, bytes]:
    return {"model.pt": torchscript_bytes(trained_cnn(), "trace")}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    images, labels = make_images(EVAL, seed=3)
    (tmp_path / "data").mkdir()
    torch.save(images, tmp_path / "data" / "test_images.pt")
    torch.save(labels, tmp_path / "data" / "test_target.pt")
    return tmp_path


def gate_settings(**inputs: str) -> ModelGateSettings:
    settings = load_settings({"mode": "model-gate", "eval-data": "data", "predictions": "5",
                              "batch-sizes": "1", "model": f"{REGISTRY}:staging", **inputs})
    assert isinstance(settings, ModelGateSettings)
    return settings


def context(workspace: Path, event_name: str | None = None, event: Mapping[str, Any] | None = None) -> RunContext:
    return RunContext(in_actions=False, workspace=workspace, event_name=event_name, event=dict(event or {}))


def factory(registry: ModelRegistry) -> Any:
    def make(settings: RegistrySettings, env: Mapping[str, str]) -> ModelRegistry:
        return registry

    return make


def clients(registry_factory: Any) -> Clients:
    """Clients for a run outside Actions (no GitHub), with the model registry under test."""
    return Clients(github=None, github_blocked=NOT_IN_ACTIONS, dvc=DvcRunner(Path(".")), registry=registry_factory,
                   env={})


def refusing_factory(settings: RegistrySettings, env: Mapping[str, str]) -> ModelRegistry:
    raise AssertionError("the registry must not be reached")


def staged(registry: MemoryRegistry, files: dict[str, bytes]) -> str:
    source = registry.add_model("acme", "mnist-train", "mnist-cnn", files)
    registry.link(source, REGISTRY, "staging")
    return source


class LinkFails(MemoryRegistry):
    def link(self, source_path: str, target_collection: str, alias: str) -> bool:
        raise RegistryError(f"W&B request for {source_path!r} failed: 503 Service Unavailable")


@pytest.mark.reliability(
    "race", "model-gate with `on-pass: promote` run twice",
    "exit 0 both times; `production` linked once; the rerun says it already holds `production`"
)
def test_on_pass_promote__links_once_and_second_run_says_already(
    workspace: Path, model_file: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    registry = MemoryRegistry()
    source = staged(registry, model_file)
    settings = gate_settings(**{"on-pass": "promote", "min-accuracy": "0.9"})
    assert run_model_gate(settings, context(workspace), clients(factory(registry))) == 0
    assert run_model_gate(settings, context(workspace), clients(factory(registry))) == 0
    assert registry.link_operations == [(source, REGISTRY, "staging"), (source, REGISTRY, "production")]
    report = json.loads((workspace / "mlgate-report" / "report.json").read_text())
    assert report["baseline"] is None  # the candidate itself holds production now
    assert "already holds `production`" in report["action"]["result"]
    assert "notice: Already in production — " in capsys.readouterr().err  # outside Actions: plain text


@pytest.mark.reliability(
    "environment", "`on-pass: pull-request` outside GitHub Actions",
    "exit 2 before W&B is reached: says it cannot open a pull request outside Actions; no report written"
)
def test_on_pass_pull_request_outside_actions__refused_before_the_registry_is_reached(workspace: Path) -> None:
    with pytest.raises(PromotionError, match="cannot open a pull request: not running in GitHub Actions"):
        run_model_gate(gate_settings(**{"on-pass": "pull-request"}), context(workspace), clients(refusing_factory))
    assert not (workspace / "mlgate-report").exists()


@pytest.mark.reliability(
    "input", "`on-pass: promote` with a local `model` file",
    "exit 2 up front: says it needs a W&B model, shows `registry: wandb-registry-model/<collection>`; W&B not "
    "reached"
)
def test_on_pass_promote_of_a_local_file__refused_up_front(workspace: Path) -> None:
    (workspace / "model.pt").write_bytes(b"not looked at")
    settings = gate_settings(model="model.pt", **{"on-pass": "promote"})
    with pytest.raises(PromotionError, match="needs a W&B model") as info:
        run_model_gate(settings, context(workspace), clients(refusing_factory))
    assert "registry: wandb-registry-model/<collection>" in info.value.hint


def test_local_file_without_registry__needs_no_w_and_b(workspace: Path, model_file: dict[str, bytes]) -> None:
    (workspace / "model.pt").write_bytes(model_file["model.pt"])
    assert run_model_gate(gate_settings(model="model.pt"), context(workspace), clients(refusing_factory)) == 0


@pytest.mark.reliability(
    "wire", "W&B link fails with 503 during promotion",
    "fails naming the 503; report.json is written first with the passing gate and the failure"
)
def test_registry_failing_during_promotion__report_is_written_then_the_error_raised(
    workspace: Path, model_file: dict[str, bytes]
) -> None:
    registry = LinkFails()
    source = registry.add_model("acme", "mnist-train", "mnist-cnn", model_file)
    MemoryRegistry.link(registry, source, REGISTRY, "staging")
    with pytest.raises(RegistryError, match="503"):
        run_model_gate(gate_settings(**{"on-pass": "promote"}), context(workspace), clients(factory(registry)))
    report = json.loads((workspace / "mlgate-report" / "report.json").read_text())
    assert report["passed"] is True
    assert "503 Service Unavailable" in report["action"]["result"]


def test_production_holder__measured_as_baseline(workspace: Path, model_file: dict[str, bytes]) -> None:
    registry = MemoryRegistry()
    # the same weights in other bytes: a different version, with the very same predictions
    production = registry.add_model("acme", "mnist-train", "mnist-cnn", {"model.pt": torchscript_bytes(trained_cnn())})
    registry.link(production, REGISTRY, "production")
    staged(registry, model_file)
    settings = gate_settings(**{"max-accuracy-drop": "0"})
    assert run_model_gate(settings, context(workspace), clients(factory(registry))) == 0
    report = json.loads((workspace / "mlgate-report" / "report.json").read_text())
    assert report["baseline"]["model"] == production
    assert report["baseline"]["ratios"]["accuracy"] == 1.0  # the same weights, the same eval data
    assert report["baseline"]["per_class_accuracy"] == report["per_class_accuracy"]
    assert (workspace / "mlgate-report" / "per_class_accuracy_change.png").read_bytes().startswith(b"\x89PNG")
    assert report["gates"][0]["name"] == "max-accuracy-drop" and report["gates"][0]["value"] == 0


@pytest.mark.reliability(
    "race", "staged model byte-identical to the `production` holder but logged as another version",
    "exit 0; another version (identity is the version id, not the digest): compared with production, ratios 1.0"
)
def test_production_holder_with_the_candidate_s_digest__another_version_is_compared(
    workspace: Path, model_file: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    registry = MemoryRegistry()
    production = registry.add_model("acme", "mnist-train", "mnist-cnn", model_file)
    registry.link(production, REGISTRY, "production")
    staged(registry, model_file)  # logged again, byte for byte: a new version with the same digest
    assert run_model_gate(gate_settings(), context(workspace), clients(factory(registry))) == 0
    baseline = json.loads((workspace / "mlgate-report" / "report.json").read_text())["baseline"]
    assert baseline["model"] == production and baseline["ratios"]["accuracy"] == 1.0
    assert "Already in production" not in capsys.readouterr().err


@pytest.mark.reliability(
    "race", "the staged version itself holds `production`",
    "exit 0; not compared with itself; says already in production"
)
def test_production_holder_is_the_candidate__is_not_compared_with_itself(
    workspace: Path, model_file: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    registry = MemoryRegistry()
    source = staged(registry, model_file)
    registry.link(source, REGISTRY, "production")
    assert run_model_gate(gate_settings(), context(workspace), clients(factory(registry))) == 0
    assert json.loads((workspace / "mlgate-report" / "report.json").read_text())["baseline"] is None
    assert "Already in production" in capsys.readouterr().err


def write_manifest(workspace: Path, **fields: Any) -> str:
    rel = manifest_path(REGISTRY)
    manifest = {"artifact": "acme/mnist-train/mnist-cnn:v0", "version": "v0", "collection": REGISTRY,
                "alias": "production", "passed": True, **fields}
    (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
    (workspace / rel).write_text(json.dumps(manifest))
    return rel


def promote_settings(**inputs: str) -> PromoteSettings:
    settings = load_settings({"mode": "promote", **inputs})
    assert isinstance(settings, PromoteSettings)
    return settings


def push(*paths: str) -> dict[str, Any]:
    return {"commits": [{"added": list(paths), "modified": []}, {"added": [], "modified": list(paths)}]}


@pytest.mark.reliability(
    "race", "`mode: promote` rerun for the same push",
    "exit 0 both times; `production` linked once"
)
def test_promote__links_each_changed_manifest_once(workspace: Path, model_file: dict[str, bytes]) -> None:
    registry = MemoryRegistry()
    source = registry.add_model("acme", "mnist-train", "mnist-cnn", model_file)
    rel = write_manifest(workspace, artifact=source)
    ctx = context(workspace, "push", push("README.md", rel))
    assert run_promote(promote_settings(), ctx, clients(factory(registry))) == 0
    assert run_promote(promote_settings(), ctx, clients(factory(registry))) == 0
    assert registry.link_operations == [(source, REGISTRY, "production")]
    assert registry.alias_map(REGISTRY)["production"] == source


@pytest.mark.reliability(
    "race", "two approval pull requests, both gated against the same `production`, merged one after the other",
    "the first links; the second is refused (PromotionRaced, exit 2: production moved, rerun the gate) and "
    "links nothing; rerunning the first does nothing"
)
def test_promote__second_approved_manifest_refused_when_production_moved_since_its_gate(
    workspace: Path, model_file: dict[str, bytes]
) -> None:
    from mlgate.errors import ExitCode
    from mlgate.model.promote import PromotionRaced

    registry = MemoryRegistry()
    first = registry.add_model("acme", "mnist-train", "mnist-cnn", model_file)
    second = registry.add_model("acme", "mnist-train", "mnist-cnn", {**model_file, "notes.txt": b"v2"})
    rel = write_manifest(workspace, artifact=first, compared_with=None)
    assert run_promote(promote_settings(manifest=rel), context(workspace), clients(factory(registry))) == 0
    rel = write_manifest(workspace, artifact=second, compared_with=None)
    with pytest.raises(PromotionRaced, match=r"moved from no version to .*rerun the gate") as info:
        run_promote(promote_settings(manifest=rel), context(workspace), clients(factory(registry)))
    assert info.value.exit_code == ExitCode.ERROR
    assert registry.link_operations == [(first, REGISTRY, "production")]
    rel = write_manifest(workspace, artifact=first, compared_with=None)
    assert run_promote(promote_settings(manifest=rel), context(workspace), clients(factory(registry))) == 0
    assert registry.link_operations == [(first, REGISTRY, "production")]


def test_promote__push_without_manifests_does_nothing(workspace: Path) -> None:
    ctx = context(workspace, "push", push("README.md"))
    assert run_promote(promote_settings(), ctx, clients(refusing_factory)) == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"passed": False}, "records failed gates"),
        ({"artifact": None}, "lacks artifact"),
        ({"alias": 3}, "lacks alias"),
    ],
)
@pytest.mark.reliability(
    "input", "promotion manifest with `{fields}`",
    "exit 2: says the manifest {message}; nothing linked"
)
def test_promote__refuses_a_manifest_that_is_not_a_passing_gate(
    workspace: Path, fields: dict[str, Any], message: str
) -> None:
    registry = MemoryRegistry()
    rel = write_manifest(workspace, **fields)
    with pytest.raises(PromotionError, match=message):
        run_promote(promote_settings(manifest=rel), context(workspace), clients(factory(registry)))
    assert registry.link_operations == []
