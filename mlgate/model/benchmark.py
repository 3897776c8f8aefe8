"""Measure a loaded model: latency distribution, throughput, size, FLOPs, memory, accuracy, robustness.

Latency is one ``time.perf_counter_ns`` interval per prediction, so the report can show the whole
distribution (p50 ... p99, IQR) instead of a single total. With a production model to compare
against, candidate and baseline calls are interleaved (A B A B ...) so that whatever else the runner
is doing slows both alike, and the ratio between them stays meaningful on a noisy CI machine.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from time import perf_counter_ns
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from mlgate.errors import MlgateError
from mlgate.model.loading import LoadedModel

Preprocess = Callable[[Tensor], Tensor]


class BenchmarkError(MlgateError):
    """Raised when the model cannot run on the inputs the benchmark feeds it."""

    title = "Cannot benchmark model"


class LatencyStats(BaseModel):
    predictions: int
    total_seconds: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    iqr_ms: float
    stdev_ms: float


class Throughput(BaseModel):
    batch_size: int
    samples_per_second: float
    batch_p50_ms: float


class ModelMeasurement(BaseModel):
    latency: LatencyStats
    throughput: list[Throughput]
    size_mb: float
    params: int
    flops_per_prediction: int | None
    peak_memory_mb: float | None
    accuracy: float | None
    per_class_accuracy: dict[str, float] | None
    confusion: list[list[int]] | None  # confusion[true][predicted]
    eval_samples: int
    robustness: dict[str, float] | None  # {"gaussian@0.1": accuracy, "fgsm@0.1": accuracy}
    notes: list[str] = []  # what could not be measured, and why


class Environment(BaseModel):
    torch: str
    python: str
    cpu: str
    threads: int
    platform: str


def environment(threads: int) -> Environment:
    return Environment(
        torch=torch.__version__,
        python=platform.python_version(),
        cpu=_cpu_name(),
        threads=threads,
        platform=platform.platform(),
    )


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"


# --- timing ---------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method); ``q`` in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def summarize_latencies(ns: Sequence[int]) -> LatencyStats:
    """Statistics of per-prediction durations given in nanoseconds (stdev is the sample stdev)."""
    if not ns:
        raise ValueError("no latencies to summarise")
    ms = sorted(value / 1e6 for value in ns)
    return LatencyStats(
        predictions=len(ms),
        total_seconds=sum(ns) / 1e9,
        mean_ms=statistics.fmean(ms),
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p95_ms=percentile(ms, 95),
        p99_ms=percentile(ms, 99),
        iqr_ms=percentile(ms, 75) - percentile(ms, 25),
        stdev_ms=statistics.stdev(ms) if len(ms) > 1 else 0.0,
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    # a collection landing inside one timed call would show up as a latency outlier of ours, not the model's
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _time_calls(fns: Sequence[Callable[[], object]], predictions: int, warmup: int) -> list[list[int]]:
    for _ in range(warmup):
        for fn in fns:
            fn()
    durations: list[list[int]] = [[] for _ in fns]
    clock = perf_counter_ns
    with _gc_paused():
        for _ in range(predictions):
            for fn, out in zip(fns, durations, strict=True):
                start = clock()
                fn()
                out.append(clock() - start)
    return durations


def measure_latency(fn: Callable[[], object], *, predictions: int, warmup: int = 10) -> LatencyStats:
    """Time ``predictions`` calls of ``fn`` one by one after ``warmup`` untimed calls."""
    _check_count(predictions)
    (durations,) = _time_calls([fn], predictions, warmup)
    return summarize_latencies(durations)


def measure_pair(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    *,
    predictions: int,
    warmup: int = 10,
) -> tuple[LatencyStats, LatencyStats]:
    """Time both callables interleaved (A B A B ...), so runner noise hits both alike."""
    _check_count(predictions)
    cand, base = _time_calls([candidate, baseline], predictions, warmup)
    return summarize_latencies(cand), summarize_latencies(base)


def _check_count(predictions: int) -> None:
    if predictions < 1:
        raise BenchmarkError(f"predictions must be at least 1, got {predictions}.")


# --- memory -----------------------------------------------------------------------------------------


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks bytes of tensor storage created during a forward pass and still referenced.

    Counting tensors ourselves, instead of reading the process RSS, gives the model's own working set:
    RSS is dominated by the torch runtime, and memory the allocator keeps after warm-up hides new
    allocations. ``tracemalloc`` sees only Python's allocator, never torch's buffers.
    """

    def __init__(self, external: Iterable[Tensor]) -> None:
        super().__init__()
        self._external = {t.untyped_storage().data_ptr() for t in external}
        self._live: dict[int, list[int]] = {}  # storage address -> [nbytes, tensors referencing it]
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, Tensor):
                self._track(leaf)
        return out

    def _track(self, tensor: Tensor) -> None:
        storage = tensor.untyped_storage()
        address, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes == 0 or address in self._external:
            return  # views of the weights or the input allocate nothing
        entry = self._live.setdefault(address, [nbytes, 0])
        if entry[1] == 0:
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(tensor, self._release, address)

    def _release(self, address: int) -> None:
        entry = self._live.get(address)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self._live[address]


def peak_forward_bytes(module: Callable[[Tensor], Tensor], x: Tensor) -> int:
    """Peak bytes of weights plus tensors alive at once while ``module(x)`` runs (input excluded)."""
    weights = [*_parameters(module), *_buffers(module)]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in weights}
    weight_bytes = sum(storages.values())
    mode = _LiveTensorBytes([*weights, x])
    with mode:
        out = module(x)
    del out
    return weight_bytes + mode.peak


def _parameters(module: object) -> list[Tensor]:
    return list(module.parameters()) if isinstance(module, torch.nn.Module) else []


def _buffers(module: object) -> list[Tensor]:
    return list(module.buffers()) if isinstance(module, torch.nn.Module) else []


# --- accuracy -----------------------------------------------------------------------------------------


def default_preprocess(images: Tensor, input_shape: Sequence[int]) -> Tensor:
    """uint8 pixels -> float in [0, 1]; floats unchanged; (N, H, W) -> (N, 1, H, W) when the model
    takes a channel dimension (``input_shape`` has one more axis than a sample)."""
    x = images.float().div(255) if images.dtype == torch.uint8 else images
    if not x.is_floating_point():
        x = x.float()
    if x.dim() == len(input_shape) and list(x.shape[1:]) == list(input_shape[1:]) and input_shape[0] == 1:
        x = x.unsqueeze(1)
    return x


def infer_input_shape(eval_batch_images: Tensor) -> list[int]:
    """Per-sample input shape from one batch: (N, H, W) images get a single channel -> [1, H, W]."""
    shape = list(eval_batch_images.shape[1:])
    return [1, *shape] if len(shape) == 2 else shape


class _Confusion:
    def __init__(self) -> None:
        self.counts: dict[tuple[int, int], int] = {}
        self.samples = 0
        self.width = 0

    def add(self, labels: Tensor, predicted: Tensor, width: int) -> None:
        self.width = max(self.width, width, int(labels.max()) + 1 if len(labels) else 0)
        self.samples += len(labels)
        for true, pred in zip(labels.tolist(), predicted.tolist(), strict=True):
            self.counts[(true, pred)] = self.counts.get((true, pred), 0) + 1

    def matrix(self, num_classes: int | None) -> list[list[int]]:
        size = num_classes or self.width
        return [[self.counts.get((t, p), 0) for p in range(size)] for t in range(size)]


class _Correct:
    def __init__(self) -> None:
        self.correct = 0

    def add(self, labels: Tensor, predicted: Tensor) -> None:
        self.correct += int((labels == predicted).sum())


def _predict(module: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    with torch.inference_mode():
        return module(x).argmax(dim=1)


def _fgsm(module: Callable[[Tensor], Tensor], x: Tensor, labels: Tensor, eps: float, clamp: bool) -> Tensor:
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(module(x), labels)
        (grad,) = torch.autograd.grad(loss, [x])
    adversarial = x.detach() + eps * grad.sign()
    return adversarial.clamp(0, 1) if clamp else adversarial


# --- the whole measurement ----------------------------------------------------------------------------


class _Evaluation:
    """Accuracy, confusion and robustness counters for one model over the evaluation pass."""

    def __init__(self, model: LoadedModel, eps: float | None) -> None:
        self.model = model
        self.eps = eps
        self.confusion = _Confusion()
        self.gaussian = _Correct()
        self.fgsm: _Correct | None = _Correct()
        self.notes: list[str] = []

    def add(self, x: Tensor, labels: Tensor, noise: Tensor | None, clamp: bool) -> None:
        module = self.model.module
        try:
            with torch.inference_mode():
                logits = module(x)
        except Exception as exc:
            raise _run_error(self.model, x, exc) from exc
        self.confusion.add(labels, logits.argmax(dim=1), logits.shape[1])
        if self.eps is None or noise is None:
            return
        noisy = x + noise
        self.gaussian.add(labels, _predict(module, noisy.clamp(0, 1) if clamp else noisy))
        if self.fgsm is None:
            return
        try:
            adversarial = _fgsm(module, x, labels, self.eps, clamp)
        except Exception as exc:  # e.g. a TorchScript or exported graph without autograd support
            self.fgsm = None
            self.notes.append(f"FGSM skipped: no gradient through this {self.model.format} model ({exc}).")
            return
        self.fgsm.add(labels, _predict(module, adversarial))

    def accuracy_fields(self, num_classes: int | None) -> dict[str, Any]:
        samples = self.confusion.samples
        if samples == 0:
            return {
                "accuracy": None,
                "per_class_accuracy": None,
                "confusion": None,
                "eval_samples": 0,
                "robustness": None,
            }
        matrix = self.confusion.matrix(num_classes)
        per_class = {str(c): row[c] / sum(row) for c, row in enumerate(matrix) if sum(row)}
        robustness: dict[str, float] | None = None
        if self.eps is not None:
            robustness = {f"gaussian@{self.eps:g}": self.gaussian.correct / samples}
            if self.fgsm is not None:
                robustness[f"fgsm@{self.eps:g}"] = self.fgsm.correct / samples
        return {
            "accuracy": sum(matrix[c][c] for c in range(len(matrix))) / samples,
            "per_class_accuracy": per_class,
            "confusion": matrix,
            "eval_samples": samples,
            "robustness": robustness,
        }


def _run_error(model: LoadedModel, x: Tensor, exc: Exception) -> BenchmarkError:
    hint = "Check `input-shape` (per sample, without the batch dimension)."
    if model.format == "export":
        hint += (
            " A torch.export program only accepts batch sizes it was exported for: export with "
            "dynamic_shapes={'x': {0: torch.export.Dim('batch')}} or benchmark that batch size only."
        )
    return BenchmarkError(
        f"The {model.format} model {model.path.name!r} failed on an input of shape {tuple(x.shape)}, "
        f"dtype {x.dtype}: {exc}",
        hint=hint,
    )


def _call(model: LoadedModel, x: Tensor) -> Callable[[], object]:
    try:
        with torch.inference_mode():
            model.module(x)
    except Exception as exc:
        raise _run_error(model, x, exc) from exc
    return lambda: model.module(x)


def _flops(model: LoadedModel, x: Tensor, notes: list[str]) -> int | None:
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model.module(x)
    except Exception as exc:
        notes.append(f"FLOPs not counted: {exc}")
        return None
    return int(counter.get_total_flops())


def _peak_memory_mb(model: LoadedModel, x: Tensor, notes: list[str]) -> float | None:
    try:
        with torch.inference_mode():
            return peak_forward_bytes(model.module, x) / 1e6
    except Exception as exc:
        notes.append(f"Peak memory not measured: {exc}")
        return None


def measure_model(
    model: LoadedModel,
    *,
    input_shape: Sequence[int],
    predictions: int = 100,
    batch_sizes: Sequence[int] = (1, 32),
    eval_data: Iterable[tuple[Tensor, Tensor]] | None = None,
    max_eval_samples: int | None = 10_000,
    robustness_eps: float | None = None,
    threads: int = 1,
    baseline: LoadedModel | None = None,
    num_classes: int | None = None,
    preprocess: Preprocess | None = None,
    seed: int = 0,
) -> tuple[ModelMeasurement, ModelMeasurement | None]:
    """Measure ``model`` (and ``baseline`` the same way, interleaved) on ``threads`` CPU threads.

    Latency uses one random input of ``input_shape`` (per sample) at batch 1; throughput one batch per
    size in ``batch_sizes``; FLOPs and peak memory (weights + live activations, see
    :class:`_LiveTensorBytes`) are per prediction at batch 1. Accuracy, per-class accuracy, the
    confusion matrix and robustness (Gaussian noise with sigma ``robustness_eps``; FGSM at
    ``robustness_eps``) come from ``eval_data`` batches of ``(images, labels)``, read once.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(
            model,
            baseline,
            list(input_shape),
            predictions,
            batch_sizes,
            eval_data,
            max_eval_samples,
            robustness_eps,
            num_classes,
            preprocess,
            seed,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _measure(
    model: LoadedModel,
    baseline: LoadedModel | None,
    input_shape: list[int],
    predictions: int,
    batch_sizes: Sequence[int],
    eval_data: Iterable[tuple[Tensor, Tensor]] | None,
    max_eval_samples: int | None,
    robustness_eps: float | None,
    num_classes: int | None,
    preprocess: Preprocess | None,
    seed: int,
) -> tuple[ModelMeasurement, ModelMeasurement | None]:
    gen = torch.Generator().manual_seed(seed)
    models = [model] if baseline is None else [model, baseline]
    one = torch.randn([1, *input_shape], generator=gen)

    with torch.inference_mode():
        calls = [_call(m, one) for m in models]
        if baseline is None:
            latencies = [measure_latency(calls[0], predictions=predictions)]
        else:
            latencies = list(measure_pair(calls[0], calls[1], predictions=predictions))
        throughputs: list[list[Throughput]] = [[] for _ in models]
        for size in batch_sizes:
            batch = torch.randn([size, *input_shape], generator=gen)
            batch_calls = [_call(m, batch) for m in models]
            repeats = max(10, predictions // size)
            stats = (
                [measure_latency(batch_calls[0], predictions=repeats)]
                if baseline is None
                else list(measure_pair(batch_calls[0], batch_calls[1], predictions=repeats))
            )
            for out, stat in zip(throughputs, stats, strict=True):
                out.append(
                    Throughput(
                        batch_size=size,
                        samples_per_second=size / (stat.p50_ms / 1e3),
                        batch_p50_ms=stat.p50_ms,
                    )
                )

    notes: list[list[str]] = [[] for _ in models]
    evaluations = [_Evaluation(m, robustness_eps) for m in models]
    if eval_data is not None:
        _evaluate(evaluations, eval_data, input_shape, max_eval_samples, robustness_eps, preprocess, gen)

    results = [
        ModelMeasurement(
            latency=latencies[i],
            throughput=throughputs[i],
            size_mb=m.size_bytes / 1e6,
            params=m.params,
            flops_per_prediction=_flops(m, one, notes[i]),
            peak_memory_mb=_peak_memory_mb(m, one, notes[i]),
            **evaluations[i].accuracy_fields(num_classes),
            notes=notes[i] + evaluations[i].notes,
        )
        for i, m in enumerate(models)
    ]
    return results[0], (results[1] if baseline is not None else None)


def _evaluate(
    evaluations: list[_Evaluation],
    eval_data: Iterable[tuple[Tensor, Tensor]],
    input_shape: list[int],
    max_eval_samples: int | None,
    eps: float | None,
    preprocess: Preprocess | None,
    gen: torch.Generator,
) -> None:
    seen = 0
    for images, labels in eval_data:
        if max_eval_samples is not None:
            take = max_eval_samples - seen
            if take <= 0:
                break
            images, labels = images[:take], labels[:take]
        seen += len(labels)
        x = preprocess(images) if preprocess else default_preprocess(images, input_shape)
        labels = labels.long()
        clamp = bool(x.min() >= 0 and x.max() <= 1)  # keep perturbed pixels in range only for [0, 1] data
        noise = torch.randn(x.shape, generator=gen) * eps if eps is not None else None
        for evaluation in evaluations:  # same batch, same noise for candidate and baseline
            evaluation.add(x, labels, noise, clamp)
