"""The generalisation gap: accuracy on a seeded train sample next to eval ("Did I overfit?").

Ground truth: a model that memorised its training digits (1-nearest-neighbour over real MNIST) is right
on every train item and only as good as 1-NN on unseen digits; both are recomputed here in numpy."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from mlgate.clients import NOT_IN_ACTIONS, Clients
from mlgate.context import RunContext
from mlgate.data.dvc import DvcRunner
from mlgate.data.layouts import Batch
from mlgate.model.generalisation import (
    OVERFIT_GAP,
    gap_margin,
    measure_generalisation,
    reading,
    sample_batches,
)
from mlgate.model.loading import LoadedModel
from mlgate.model.mode import run_model_gate
from mlgate.model.report import generalisation_section
from mlgate.settings import ModelGateSettings, RegistrySettings, load_settings
from tests.fixtures.mnist import mnist_digits
from tests.fixtures.models import make_images, trained_cnn

N_TRAIN, N_TEST = 1_500, 500


class Memoriser(nn.Module):
    """1-nearest-neighbour over the stored training digits: one-hot logits of the closest one's label."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__()
        self.train_x = images.reshape(len(images), -1).float()
        self.train_y = labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nearest = torch.cdist(x.reshape(len(x), -1), self.train_x).argmin(dim=1)
        return nn.functional.one_hot(self.train_y[nearest], 10).float()


def loaded(module: nn.Module) -> LoadedModel:
    return LoadedModel(module=module, format="pickle", path=Path("memoriser.pt"), size_bytes=0, params=0)


def numpy_1nn_accuracy(train_x: np.ndarray, train_y: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    a = train_x.reshape(len(train_x), -1).astype(np.float64) / 255
    b = x.reshape(len(x), -1).astype(np.float64) / 255
    d = (b**2).sum(1)[:, None] - 2 * b @ a.T + (a**2).sum(1)[None, :]
    return float((train_y[d.argmin(1)] == y).mean())


def as_batches(images: torch.Tensor, labels: torch.Tensor, size: int = 700) -> list[Batch]:
    return [Batch(images[i : i + size], labels[i : i + size]) for i in range(0, len(labels), size)]


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """2,000 of the 5,000 digits in a seeded random order (the fixture is sorted by class)."""
    images, labels = mnist_digits()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[: N_TRAIN + N_TEST]
    return images[order], labels[order]


def test_memorising_model__shows_the_gap_an_independent_1nn_computation_predicts(
    digits: tuple[torch.Tensor, torch.Tensor],
) -> None:
    images, labels = digits
    train_x, train_y, test_x, test_y = images[:N_TRAIN], labels[:N_TRAIN], images[N_TRAIN:], labels[N_TRAIN:]
    model = loaded(Memoriser(train_x.float() / 255, train_y))
    eval_accuracy = numpy_1nn_accuracy(train_x.numpy(), train_y.numpy(), test_x.numpy(), test_y.numpy())
    train_accuracy = numpy_1nn_accuracy(train_x.numpy(), train_y.numpy(), train_x.numpy(), train_y.numpy())

    result = measure_generalisation(model, as_batches(train_x, train_y), input_shape=[1, 28, 28],
                                    item_shape=[28, 28], eval_accuracy=eval_accuracy, eval_samples=N_TEST,
                                    eval_split="test")

    assert result is not None
    assert result.train_samples == result.train_items_read == N_TRAIN  # 2,000 asked, the whole split taken
    assert result.train_accuracy == pytest.approx(train_accuracy, abs=1e-12)
    assert train_accuracy == 1.0 and 0.8 < eval_accuracy < 0.95  # memorised; real digits are not all alike
    assert result.gap == pytest.approx(train_accuracy - eval_accuracy, abs=1e-12)
    expected_margin = 1.96 * math.sqrt(eval_accuracy * (1 - eval_accuracy) / N_TEST)
    assert result.gap_margin == pytest.approx(expected_margin, rel=1e-3)
    assert "overfitting" in result.reading and "well above" in result.reading


def test_sample__is_uniform_over_a_class_sorted_split_seeded_and_without_repeats() -> None:
    n, per_class = 5_000, 500
    ids = torch.arange(n).reshape(n, 1)  # each item is its own index
    labels = torch.arange(n) // per_class  # sorted by class, as an ImageFolder is read

    images, sampled_labels, read, notes = sample_batches(as_batches(ids, labels, 512), 2_000, seed=0)
    again, _, _, _ = sample_batches(as_batches(ids, labels, 512), 2_000, seed=0)
    other, _, _, _ = sample_batches(as_batches(ids, labels, 512), 2_000, seed=1)

    assert read == n and notes == []
    picked = images.flatten()
    assert len(picked) == 2_000 and len(set(picked.tolist())) == 2_000
    assert torch.equal(sampled_labels, labels[picked])
    counts = np.bincount(sampled_labels.numpy(), minlength=10)
    # hypergeometric: 200 expected per class, sd about 12.7; a first-2,000 cut would give 500,500,500,500,0...
    assert counts.min() >= 150 and counts.max() <= 250, counts
    assert torch.equal(again, images) and not torch.equal(other, images)


def test_sample__leaves_out_items_of_another_shape_and_says_so() -> None:
    same = Batch(torch.zeros(30, 28, 28, dtype=torch.uint8), torch.zeros(30, dtype=torch.int64))
    bigger = Batch(torch.zeros(10, 32, 32, dtype=torch.uint8), torch.ones(10, dtype=torch.int64))

    images, labels, read, notes = sample_batches([same, bigger], 100, item_shape=[28, 28])
    assert images.shape == (30, 28, 28)

    assert (len(labels), read) == (30, 40)
    assert notes == ["10 train items of another shape than the eval items were left out of the sample"]


@pytest.mark.parametrize(
    ("gap", "margin", "words"),
    [(0.08, 0.01, "overfitting"), (OVERFIT_GAP, 0.06, "no sign of overfitting"), (0.01, 0.01, "close"),
     (-0.08, 0.01, "unusual")],
)
def test_reading__names_overfitting_only_when_the_gap_is_large_and_certain(gap: float, margin: float,
                                                                           words: str) -> None:
    assert words in reading(gap, margin)


def test_gap_margin__is_the_two_proportion_normal_interval() -> None:
    expected = 1.959964 * math.sqrt(0.99 * 0.01 / 2000 + 0.97 * 0.03 / 10000)

    assert gap_margin(0.99, 2000, 0.97, 10000) == pytest.approx(expected, rel=1e-9)


# -- through the model gate ---------------------------------------------------------------------------


def gate(workspace: Path, **inputs: str) -> dict[str, Any]:
    torch.save(trained_cnn(), workspace / "model.pt")
    settings = load_settings({"mode": "model-gate", "eval-data": "data", "predictions": "5", "batch-sizes": "1",
                              "model": "model.pt", "trust-pickle": "true", **inputs})
    assert isinstance(settings, ModelGateSettings)

    def no_registry(settings: RegistrySettings, env: Mapping[str, str]) -> Any:
        raise AssertionError("a model file needs no registry")

    clients = Clients(github=None, github_blocked=NOT_IN_ACTIONS, dvc=DvcRunner(workspace), registry=no_registry,
                      env={})
    ctx = RunContext(in_actions=False, workspace=workspace, event_name=None, event={})
    assert run_model_gate(settings, ctx, clients) == 0
    return dict(json.loads((workspace / "mlgate-report" / "report.json").read_text()))


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """eval-data in the course layout with a train split (300 items) and a test split (200)."""
    (tmp_path / "data").mkdir()
    for split, n, seed in (("train", 300, 5), ("test", 200, 3)):
        images, labels = make_images(n, seed=seed)
        torch.save(images, tmp_path / "data" / f"{split}_images.pt")
        torch.save(labels, tmp_path / "data" / f"{split}_target.pt")
    return tmp_path


def torch_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(images.float().div(255).unsqueeze(1)).argmax(1) == labels).double().mean())


def test_model_gate__reports_train_accuracy_next_to_eval(course: Path) -> None:
    report = gate(course)

    g = report["generalisation"]
    model = trained_cnn()
    train_images, train_labels = make_images(300, seed=5)
    assert g["train_samples"] == 300 and g["eval_samples"] == 200 and g["eval_split"] == "test"
    assert g["train_accuracy"] == pytest.approx(torch_accuracy(model, train_images, train_labels), abs=1e-12)
    assert g["eval_accuracy"] == report["accuracy"]
    assert g["gap"] == pytest.approx(g["train_accuracy"] - g["eval_accuracy"], abs=1e-12)


def test_model_gate__no_gap_when_evaluating_on_train_itself(course: Path) -> None:
    assert gate(course, **{"eval-split": "train"})["generalisation"] is None


def test_section__reads_as_the_issue_asks() -> None:
    from mlgate.model.generalisation import Generalisation
    from mlgate.model.report import ModelReport

    g = Generalisation(train_split="train", eval_split="test", train_samples=2000, train_items_read=60000,
                       train_accuracy=0.991, eval_accuracy=0.97, eval_samples=10000, gap=0.021, gap_margin=0.0052,
                       reading=reading(0.021, 0.0052), seed=0, notes=[])
    report = ModelReport.model_construct(generalisation=g)

    text = generalisation_section(report)

    assert ("Accuracy on train (2,000 items): 99.1%, on test (10,000 items): 97.0% — gap 2.1 pp (± 0.5 pp at 95%)."
            in text)
    assert "Train and eval accuracy are close: no sign of overfitting" in text
    assert "uniform sample (seed 0) of the 60,000 train items read" in text
