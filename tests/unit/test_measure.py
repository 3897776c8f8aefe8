"""Measurements: latency statistics, interleaving, FLOPs, memory and accuracy against independent references."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlgate.model.loading import LoadedModel, load_model
from mlgate.model.measure import latency
from mlgate.model.measure.environment import environment
from mlgate.model.measure.inputs import default_preprocess, infer_input_shape
from mlgate.model.measure.latency import measure_latency, measure_pair, summarize_latencies
from mlgate.model.measure.memory import peak_forward_bytes
from mlgate.model.measure.run import MeasureOptions, measure_model
from mlgate.model.measure.values import (
    BenchmarkError,
    Direction,
    LatencyStats,
    ModelMeasurement,
    Throughput,
    direction_of,
)
from tests.fixtures.model_zoo import SmallCNN
from tests.fixtures.models import NUM_CLASSES, batches, make_images, save_all_formats, trained_cnn

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    """perf_counter_ns that only moves when a fake model call advances it."""

    def __init__(self) -> None:
        self.now_ns = 0
        self.calls: list[str] = []

    def __call__(self) -> int:
        return self.now_ns

    def model(self, name: str, durations: list[int]) -> Callable[[], None]:
        remaining = iter(durations)

        def call() -> None:
            self.calls.append(name)
            self.now_ns += next(remaining)

        return call


def _loaded(module: nn.Module, tmp_path: Path, name: str = "model.pth") -> LoadedModel:
    path = tmp_path / name
    torch.save(module.state_dict(), path)
    return LoadedModel(
        module=module.eval(),
        format="state_dict",
        path=path,
        size_bytes=path.stat().st_size,
        params=sum(p.numel() for p in module.parameters()),
    )


def test_summarize_latencies__matches_numpy_on_a_skewed_sequence() -> None:
    rng = np.random.default_rng(7)
    ns = [int(v) for v in rng.lognormal(mean=13, sigma=0.6, size=257)] + [50_000_000]  # one 50 ms stall
    ms = np.array(ns) / 1e6

    stats = summarize_latencies(ns)

    assert stats.predictions == len(ns)
    assert stats.total_seconds == pytest.approx(ms.sum() / 1e3, rel=1e-12)
    assert stats.mean_ms == pytest.approx(ms.mean(), rel=1e-12)
    for q in (50, 90, 95, 99):
        assert getattr(stats, f"p{q}_ms") == pytest.approx(np.percentile(ms, q), rel=1e-12)
    assert stats.iqr_ms == pytest.approx(np.percentile(ms, 75) - np.percentile(ms, 25), rel=1e-12)
    assert stats.stdev_ms == pytest.approx(ms.std(ddof=1), rel=1e-12)


def test_summarize_latencies__single_prediction_has_zero_spread() -> None:
    stats = summarize_latencies([2_000_000])
    assert (stats.p50_ms, stats.p99_ms, stats.iqr_ms, stats.stdev_ms) == (2.0, 2.0, 0.0, 0.0)


def test_measure_latency__times_each_call_after_warmup(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(latency, "perf_counter_ns", clock)
    durations = [999] * 3 + [1_000_000, 3_000_000, 2_000_000, 4_000_000]

    stats = measure_latency(clock.model("a", durations), predictions=4, warmup=3)

    assert stats == summarize_latencies([1_000_000, 3_000_000, 2_000_000, 4_000_000])
    assert len(clock.calls) == 7


def test_measure_pair__interleaves_candidate_and_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(latency, "perf_counter_ns", clock)
    cand_ns = [1, 1, 1_000_000, 2_000_000, 3_000_000]
    base_ns = [1, 1, 5_000_000, 6_000_000, 7_000_000]

    cand, base = measure_pair(clock.model("A", cand_ns), clock.model("B", base_ns), predictions=3, warmup=2)

    assert clock.calls == ["A", "B"] * 5
    assert cand.p50_ms == 2.0
    assert base.p50_ms == 6.0


def test_measure_latency__rejects_zero_predictions() -> None:
    with pytest.raises(BenchmarkError, match="at least 1"):
        measure_latency(lambda: None, predictions=0)


def test_peak_forward_bytes__counts_weights_and_live_activations() -> None:
    class TwoSteps(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(100, 50, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            hidden = self.lin(x)
            active = hidden.relu()
            return active * 2  # hidden, active and the output are alive together

    with torch.inference_mode():
        peak = peak_forward_bytes(TwoSteps(), torch.randn(4, 100))

    weights, activation = 100 * 50 * 4, 4 * 50 * 4
    assert peak == weights + 3 * activation


def test_default_preprocess__scales_uint8_and_adds_channel() -> None:
    images = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    x = default_preprocess(images, [1, 2, 2])
    torch.testing.assert_close(x, torch.tensor([[[[0.0, 1.0], [0.2, 0.4]]]]))


def test_default_preprocess__keeps_floats_and_channel_layout() -> None:
    images = torch.rand(3, 1, 4, 4) * 7
    assert default_preprocess(images, [1, 4, 4]) is images
    assert default_preprocess(torch.rand(3, 4, 4), [4, 4]).shape == (3, 4, 4)


def test_infer_input_shape__adds_channel_to_grayscale_batches() -> None:
    assert infer_input_shape(torch.zeros(32, 28, 28, dtype=torch.uint8)) == [1, 28, 28]
    assert infer_input_shape(torch.zeros(32, 3, 32, 32)) == [3, 32, 32]
    assert infer_input_shape(torch.zeros(32, 20)) == [20]


def _reference_accuracy(
    module: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> tuple[float, dict[str, float], list[list[int]]]:
    confusion = [[0] * NUM_CLASSES for _ in range(NUM_CLASSES)]
    with torch.no_grad():
        for image, label in zip(images, labels, strict=True):
            logits = module(image.float().div(255)[None, None])
            confusion[int(label)][int(torch.argmax(logits[0]))] += 1
    correct = sum(confusion[c][c] for c in range(NUM_CLASSES))
    per_class = {str(c): confusion[c][c] / sum(confusion[c]) for c in range(NUM_CLASSES) if sum(confusion[c])}
    return correct / len(labels), per_class, confusion


def test_measure_model__accuracy_matches_plain_loop_for_candidate_and_baseline(tmp_path: Path) -> None:
    trained = trained_cnn()
    torch.manual_seed(3)
    untrained = SmallCNN(width=8)  # a weak production model, so the confusion has off-diagonal counts
    images, labels = make_images(300, seed=11)
    limit = 250  # cuts the second batch of 128 in the middle

    cand, base = measure_model(
        _loaded(trained, tmp_path, "cand.pth"),
        MeasureOptions(
            input_shape=[1, 28, 28], predictions=5, batch_sizes=(1, 4), max_eval_samples=limit, num_classes=NUM_CLASSES
        ),
        eval_data=batches(images, labels, 128),
        baseline=_loaded(untrained, tmp_path),
    )

    assert base is not None
    for measured, module in ((cand, trained), (base, untrained)):
        accuracy, per_class, confusion = _reference_accuracy(module, images[:limit], labels[:limit])
        assert measured.eval_samples == limit
        assert measured.accuracy == pytest.approx(accuracy, abs=1e-12)
        assert measured.per_class_accuracy == pytest.approx(per_class, abs=1e-12)
        assert measured.confusion == confusion
    assert cand.accuracy is not None and cand.accuracy > 0.95
    assert base.accuracy is not None and base.accuracy < 0.5


def test_measure_model__figures_from_independent_formulas(tmp_path: Path) -> None:
    model = _loaded(trained_cnn(), tmp_path)
    threads_before = torch.get_num_threads()

    measured, baseline = measure_model(
        model, MeasureOptions(input_shape=[1, 28, 28], predictions=7, batch_sizes=(1, 8), threads=1)
    )

    assert baseline is None
    assert torch.get_num_threads() == threads_before
    assert measured.latency.predictions == 7
    assert [t.batch_size for t in measured.throughput] == [1, 8]
    for t in measured.throughput:
        assert t.samples_per_second == pytest.approx(t.batch_size / (t.batch_p50_ms / 1e3))
    # multiply-adds x 2 of conv1 (1->8, 28x28), conv2 (8->16, 14x14) and the 784->10 head
    assert measured.flops_per_prediction == 2 * (8 * 28 * 28 * 9 + 16 * 14 * 14 * 8 * 9 + 784 * 10)
    assert measured.params == sum(p.numel() for p in trained_cnn().parameters())
    assert measured.size_mb == model.size_bytes / 1e6
    assert measured.accuracy is None and measured.confusion is None and measured.eval_samples == 0


def test_measure_model__fgsm_matches_reference_attack(tmp_path: Path) -> None:
    trained = trained_cnn()
    images, labels = make_images(200, seed=12)
    eps = 0.15

    measured, _ = measure_model(
        _loaded(trained, tmp_path),
        MeasureOptions(input_shape=[1, 28, 28], predictions=3, batch_sizes=(1,), robustness_eps=eps),
        eval_data=batches(images, labels, 64),
    )

    x = images.float().div(255).unsqueeze(1).requires_grad_(True)
    loss = F.cross_entropy(trained(x), labels, reduction="sum")  # per-sample gradients, same signs
    (grad,) = torch.autograd.grad(loss, [x])
    with torch.no_grad():
        adversarial = (x + eps * grad.sign()).clamp(0, 1)
        reference = (trained(adversarial).argmax(1) == labels).float().mean().item()
    assert measured.robustness is not None
    assert measured.robustness[f"fgsm@{eps:g}"] == pytest.approx(reference, abs=1 / 200)
    assert 0 <= measured.robustness[f"gaussian@{eps:g}"] <= 1
    assert measured.robustness[f"fgsm@{eps:g}"] < measured.accuracy  # type: ignore[operator]


@pytest.mark.parametrize("fmt", ["torchscript", "export", "pickle"])
def test_measure_model__measures_compiled_formats_completely(fmt: str, tmp_path: Path) -> None:
    path = save_all_formats(trained_cnn(), tmp_path)[fmt]
    images, labels = make_images(64, seed=13)

    measured, _ = measure_model(
        load_model(path, trust_pickle=True),
        MeasureOptions(input_shape=[1, 28, 28], predictions=3, batch_sizes=(2,), robustness_eps=0.1),
        eval_data=[(images, labels)],
    )

    assert measured.notes == []
    assert measured.flops_per_prediction == 2 * (8 * 28 * 28 * 9 + 16 * 14 * 14 * 8 * 9 + 784 * 10)
    assert measured.robustness is not None and set(measured.robustness) == {"gaussian@0.1", "fgsm@0.1"}
    assert measured.accuracy == pytest.approx(_reference_accuracy(trained_cnn(), images, labels)[0])


def test_measure_model__static_export_batch_is_a_clear_error(tmp_path: Path) -> None:
    program = torch.export.export(trained_cnn(), (torch.zeros(1, 1, 28, 28),))
    path = tmp_path / "static.pt2"
    torch.export.save(program, str(path))

    with pytest.raises(BenchmarkError, match=r"shape \(32, 1, 28, 28\)") as info:
        measure_model(load_model(path), MeasureOptions(input_shape=[1, 28, 28], predictions=2, batch_sizes=(1, 32)))
    assert "dynamic_shapes" in info.value.hint


def test_environment__reports_versions_and_threads() -> None:
    env = environment(threads=3)
    assert env.threads == 3
    assert env.torch == torch.__version__
    assert env.cpu


# --- metric directions and torch-free value types ---------------------------------------------------

NOT_METRICS = {"predictions", "eval_samples", "batch_size", "confusion", "notes", "latency", "throughput"}


@pytest.mark.parametrize(
    ("direction", "value", "limit", "meets", "shortfall"),
    [
        (Direction.LOWER, 2.0, 2.0, True, 0.0),
        (Direction.LOWER, 2.5, 2.0, False, 0.5),
        (Direction.LOWER, 1.5, 2.0, True, -0.5),
        (Direction.HIGHER, 0.9, 0.9, True, 0.0),
        (Direction.HIGHER, 0.8, 0.9, False, 0.9 - 0.8),
        (Direction.HIGHER, 0.95, 0.9, True, 0.9 - 0.95),
    ],
)
def test_direction__meets_a_limit_from_its_side(
    direction: Direction, value: float, limit: float, meets: bool, shortfall: float
) -> None:
    assert direction.meets(value, limit) is meets
    assert direction.shortfall(value, limit) == shortfall
    assert direction.higher_is_better is (direction is Direction.HIGHER)


def test_direction__worsening_is_positive_when_worse_absolute_or_relative() -> None:
    assert Direction.LOWER.worsening(2.25, 2.0) == 0.25  # slower
    assert Direction.LOWER.worsening(2.25, 2.0, relative=True) == 2.25 / 2.0 - 1
    assert Direction.LOWER.worsening(1.5, 2.0, relative=True) == -0.25  # faster: better
    assert Direction.HIGHER.worsening(0.95, 0.97) == 0.97 - 0.95  # less accurate
    assert Direction.HIGHER.worsening(0.99, 0.97) == 0.97 - 0.99
    assert Direction.HIGHER.worsening(0.5, 2.0, relative=True) == 0.75
    assert (Direction.LOWER.miss, Direction.HIGHER.miss) == ("over", "below")


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("latency.p95_ms", Direction.LOWER),
        ("latency.total_seconds", Direction.LOWER),
        ("throughput.samples_per_second", Direction.HIGHER),
        ("size_mb", Direction.LOWER),
        ("params", Direction.LOWER),
        ("flops_per_prediction", Direction.LOWER),
        ("peak_memory_mb", Direction.LOWER),
        ("accuracy", Direction.HIGHER),
        ("per_class_accuracy", Direction.HIGHER),
        ("robustness", Direction.HIGHER),
    ],
)
def test_direction_of__reads_the_direction_declared_on_the_field(metric: str, direction: Direction) -> None:
    assert direction_of(metric) is direction


def test_direction_of__refuses_counts_tables_and_unknown_fields() -> None:
    with pytest.raises(ValueError, match="not a metric"):
        direction_of("eval_samples")
    with pytest.raises(ValueError, match="not a metric"):
        direction_of("latency.predictions")
    with pytest.raises(KeyError):
        direction_of("latency.p42_ms")


@pytest.mark.parametrize("model", [ModelMeasurement, LatencyStats, Throughput])
def test_value_types__every_metric_field_declares_a_direction(model: type[ModelMeasurement]) -> None:
    undeclared = [
        name
        for name, field in model.model_fields.items()
        if name not in NOT_METRICS and not any(isinstance(item, Direction) for item in field.metadata)
    ]
    assert undeclared == []


def test_report_and_gates__import_without_torch() -> None:
    code = (
        "import sys\n"
        "import mlgate.model.gates, mlgate.model.measure.latency, mlgate.model.measure.values, mlgate.model.report\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_measure_model__keeps_paired_calls_and_predictions_and_the_first_flips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlgate.model.measure.run import FLIPS_KEPT

    clock = FakeClock()
    monkeypatch.setattr(latency, "perf_counter_ns", clock)
    trained = trained_cnn()
    torch.manual_seed(3)
    untrained = SmallCNN(width=8)
    images, labels = make_images(300, seed=11)
    cand_module, base_module = trained.eval(), untrained.eval()

    def ticking(module: nn.Module, step: int) -> nn.Module:
        class Ticking(nn.Module):  # each call takes `step` ns on the fake clock
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                clock.now_ns += step
                return module(x)

        return Ticking().eval()

    cand, base = measure_model(
        _loaded(ticking(cand_module, 300), tmp_path, "cand.pth"),
        MeasureOptions(input_shape=[1, 28, 28], predictions=7, batch_sizes=(1,)),
        eval_data=batches(images, labels, 64), baseline=_loaded(ticking(base_module, 100), tmp_path),
    )

    assert base is not None and cand.items is not None and base.items is not None
    assert list(cand.items.latency_ns) == [300] * 7 and list(base.items.latency_ns) == [100] * 7
    assert summarize_latencies(cand.items.latency_ns) == cand.latency  # the summary is of these very calls
    with torch.no_grad():
        x = images.float().div(255).unsqueeze(1)
        cand_pred, base_pred = cand_module(x).argmax(1), base_module(x).argmax(1)
    assert list(cand.items.labels) == labels.tolist() == list(base.items.labels)
    assert list(cand.items.predicted) == cand_pred.tolist() and list(base.items.predicted) == base_pred.tolist()
    lost = ((base_pred == labels) & (cand_pred != labels)).nonzero().flatten().tolist()
    gained = ((cand_pred == labels) & (base_pred != labels)).nonzero().flatten().tolist()
    assert len(gained) > FLIPS_KEPT  # the fixture has more flips than are kept
    flips = cand.items.flips
    assert [f.item for f in flips if f.production == f.label] == lost[:FLIPS_KEPT]
    assert [f.item for f in flips if f.candidate == f.label] == gained[:FLIPS_KEPT]
    for flip in flips:
        assert (flip.label, flip.production, flip.candidate) == (labels[flip.item], base_pred[flip.item],
                                                                 cand_pred[flip.item])
        assert torch.equal(flip.pixels, images[flip.item])
    assert base.items.flips == ()
    assert "latency_ns" not in cand.model_dump_json()  # the raw arrays never reach a report
