"""`gate-significance` and "what changed" through the whole model gate, in-process with the in-memory
registry: a production model that is clearly better than the candidate (a significant drop), and
one nearly identical to it (no detectable difference). Counts are checked against the two models'
predictions computed here with plain torch."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from mlgate.clients import NOT_IN_ACTIONS, Clients
from mlgate.context import RunContext
from mlgate.data.dvc import DvcRunner
from mlgate.model.mode import run_model_gate
from mlgate.model.registry import ModelRegistry
from mlgate.settings import ModelGateSettings, RegistrySettings, load_settings
from tests.fakes.memory_registry import MemoryRegistry
from tests.fixtures.model_zoo import SmallCNN
from tests.fixtures.models import make_images, torchscript_bytes, trained_cnn

REGISTRY = "wandb-registry-model/mnist"
EVAL, EVAL_SEED = 600, 3


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    images, labels = make_images(EVAL, seed=EVAL_SEED)
    (tmp_path / "data").mkdir()
    torch.save(images, tmp_path / "data" / "test_images.pt")
    torch.save(labels, tmp_path / "data" / "test_target.pt")
    return tmp_path


def predictions(model: SmallCNN) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent of mlgate: the eval images as written, through the model, argmax; and the labels."""
    images, labels = make_images(EVAL, seed=EVAL_SEED)
    with torch.no_grad():
        return model(images.float().div(255).unsqueeze(1)).argmax(1), labels


def nudged(model: SmallCNN, scale: float) -> SmallCNN:
    """The same network with seeded noise of ``scale`` times each weight's spread added: a retrain
    that changes a few predictions."""
    other = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=gen) * parameter.std() * scale)
    return other


def run_gate(workspace: Path, candidate: SmallCNN, production: SmallCNN, **inputs: str) -> dict[str, Any]:
    registry = MemoryRegistry()
    registry.link(registry.add_model("acme", "mnist-train", "mnist-cnn",
                                     {"model.pt": torchscript_bytes(production, "trace")}), REGISTRY, "production")
    source = registry.add_model("acme", "mnist-train", "mnist-cnn", {"model.pt": torchscript_bytes(candidate, "trace")})
    registry.link(source, REGISTRY, "staging")
    settings = load_settings({"mode": "model-gate", "eval-data": "data", "predictions": "30", "batch-sizes": "1",
                              "model": f"{REGISTRY}:staging", "gate-significance": "0.05", **inputs})
    assert isinstance(settings, ModelGateSettings)

    def factory(settings: RegistrySettings, env: Mapping[str, str]) -> ModelRegistry:
        return registry

    clients = Clients(github=None, github_blocked=NOT_IN_ACTIONS, dvc=DvcRunner(Path(".")), registry=factory, env={})
    context = RunContext(in_actions=False, workspace=workspace, event_name=None, event={})
    code = run_model_gate(settings, context, clients)
    report = json.loads((workspace / "mlgate-report" / "report.json").read_text())
    report["exit_code"] = code
    report["markdown"] = (workspace / "mlgate-report" / "report.md").read_text()
    return dict(report)


def flips_of(candidate: SmallCNN, production: SmallCNN) -> tuple[int, int, list[list[int]]]:
    """(production right & candidate wrong, the reverse, candidate minus production confusion)."""
    cand, labels = predictions(candidate)
    prod, _ = predictions(production)
    lost = int(((prod == labels) & (cand != labels)).sum())
    gained = int(((cand == labels) & (prod != labels)).sum())
    diff = torch.zeros(10, 10, dtype=torch.int64)
    diff.index_put_((labels, cand), torch.ones(EVAL, dtype=torch.int64), accumulate=True)
    diff.index_put_((labels, prod), -torch.ones(EVAL, dtype=torch.int64), accumulate=True)
    return lost, gained, diff.tolist()


def test_clearly_better_production__drop_fails_with_confidence_and_flips_are_shown(workspace: Path) -> None:
    good, weak = trained_cnn(), trained_cnn(seed=2, samples=160, epochs=1)
    report = run_gate(workspace, candidate=weak, production=good,
                      **{"max-accuracy-drop": "0.05", "max-latency-regression": "10"})

    assert report["exit_code"] == 1 and report["passed"] is False
    lost, gained, diff = flips_of(weak, good)
    agreement = report["comparison"]["agreement"]
    assert (agreement["production_only_right"], agreement["candidate_only_right"]) == (lost, gained)
    assert agreement["items"] == EVAL and agreement["confusion_difference"] == diff
    assert agreement["mcnemar_p"] < 1e-10
    gate = next(g for g in report["gates"] if g["name"] == "max-accuracy-drop")
    assert gate["passed"] is False and gate["interval"]["low"] > 0.05
    assert gate["detail"].endswith("exceeds the 5 pp limit with 95% confidence")
    assert report["comparison"]["confidence"] == pytest.approx(0.9)

    cand, labels = predictions(weak)
    prod, _ = predictions(good)
    shown = agreement["flipped"]
    assert 0 < len(shown) <= 16
    for flip in shown:  # each one really is a flip, with the true label and both predictions
        item = flip["item"]
        assert (flip["label"], flip["production"], flip["candidate"]) == (labels[item], prod[item], cand[item])
        assert (prod[item] == labels[item]) != (cand[item] == labels[item])
    figures = workspace / "mlgate-report"
    for name in ("flipped_items", "confusion_matrix_change", "per_class_accuracy_change"):
        assert (figures / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name
    assert "### Significance and what changed" in report["markdown"]
    good_accuracy, weak_accuracy = (float((p == labels).double().mean()) for p in (prod, cand))
    assert f"Accuracy vs production: lower by {100 * (good_accuracy - weak_accuracy):.1f} pp." in report["markdown"]


def test_nearly_identical_production__no_detectable_difference_and_the_gate_passes(workspace: Path) -> None:
    good = trained_cnn()
    retrained = nudged(good, 0.35)
    lost, gained, diff = flips_of(retrained, good)
    assert 0 < lost + gained < 20  # a few flips each way: the fixture does what it says

    report = run_gate(workspace, candidate=retrained, production=good,
                      **{"max-accuracy-drop": "0", "max-latency-regression": "10"})

    assert report["exit_code"] == 0, report["gates"]
    agreement = report["comparison"]["agreement"]
    assert (agreement["production_only_right"], agreement["candidate_only_right"]) == (lost, gained)
    assert agreement["confusion_difference"] == diff
    n, k = lost + gained, min(lost, gained)
    assert agreement["mcnemar_p"] == pytest.approx(min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n))
    gate = next(g for g in report["gates"] if g["name"] == "max-accuracy-drop")
    assert gate["passed"] is True and "no detectable difference" in gate["detail"]
    assert gate["interval"]["low"] <= 0 <= gate["interval"]["high"]
    ratio = report["comparison"]["latency_median_ratio"]
    assert ratio["low"] <= ratio["value"] <= ratio["high"] and report["comparison"]["rounds"] == 30
    uncertainty = report["uncertainty"]
    assert uncertainty["accuracy"]["value"] == pytest.approx(report["accuracy"])
    assert uncertainty["latency_p95_ms"]["value"] == pytest.approx(report["latency_ms"]["p95"])
    assert "Accuracy vs production: no detectable difference." in report["markdown"]
