"""Measure a loaded model, and production the same way: every figure of :class:`ModelMeasurement`.

The order is fixed, so that one ``seed`` gives the same inputs every run: the latency input, one
batch per throughput size, then the noise of each evaluation batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mlgate.model.loading import LoadedModel
from mlgate.model.measure.accuracy import Confusion, accuracy_fields
from mlgate.model.measure.flops import count_flops
from mlgate.model.measure.inputs import Preprocess, default_preprocess, model_error_reason
from mlgate.model.measure.latency import measure_interleaved, summarize_latencies, throughput, time_interleaved
from mlgate.model.measure.memory import peak_memory_mb
from mlgate.model.measure.robustness import Robustness, gaussian_noise
from mlgate.model.measure.values import (
    BenchmarkError,
    Flip,
    ItemResults,
    LatencyStats,
    ModelMeasurement,
    Throughput,
)

EvalData = Iterable[tuple[Tensor, Tensor]]
"""Batches of ``(images, labels)``, read once."""

FLIPS_KEPT = 8
"""Flipped items kept (with their pixels) each way: production right and candidate wrong, and the reverse."""


@dataclass(frozen=True, kw_only=True)
class MeasureOptions:
    """How to measure (keyword-only; the defaults are the action's)."""

    input_shape: Sequence[int]
    """Per sample, without the batch dimension: ``[1, 28, 28]``."""
    predictions: int = 100
    """Timed calls at batch 1 (throughput: ``max(10, predictions // batch)`` calls per batch size)."""
    batch_sizes: Sequence[int] = (1, 32)
    max_eval_samples: int | None = 10_000
    robustness_eps: float | None = None
    """Sigma of the Gaussian noise and step of FGSM; ``None`` measures no robustness."""
    threads: int = 1
    """torch CPU threads while measuring (restored afterwards)."""
    num_classes: int | None = None
    """Width of the confusion matrix; ``None``: as many classes as the logits or labels show."""
    preprocess: Preprocess | None = None
    """Eval images -> model input; ``None``: :func:`~mlgate.model.measure.inputs.default_preprocess`."""
    seed: int = 0


def measure_model(
    model: LoadedModel,
    options: MeasureOptions,
    *,
    eval_data: EvalData | None = None,
    baseline: LoadedModel | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[ModelMeasurement, ModelMeasurement | None]:
    """Measure ``model`` (and ``baseline`` the same way, interleaved) on ``options.threads`` CPU threads.

    Latency uses one random input of ``input_shape`` at batch 1; throughput one batch per size in
    ``batch_sizes``; FLOPs and peak memory (weights + live activations) are per prediction at batch 1.
    Accuracy, per-class accuracy, the confusion matrix and robustness come from ``eval_data``.
    ``progress`` is told how far the timing and the evaluation got, after every round of calls.
    Each measurement carries its :attr:`~ModelMeasurement.items` (every call's time, every item's
    prediction; with ``baseline``, the candidate's also holds the flipped items), paired by position.
    Raises :class:`BenchmarkError` when a model fails on the inputs it is fed.
    """
    models = [model] if baseline is None else [model, baseline]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    try:
        results = _measure(models, options, eval_data, progress or (lambda _: None))
    finally:
        torch.set_num_threads(previous_threads)
    return results[0], (results[1] if baseline is not None else None)


def _measure(models: list[LoadedModel], options: MeasureOptions, eval_data: EvalData | None,
             progress: Callable[[str], None]) -> list[ModelMeasurement]:
    gen = torch.Generator().manual_seed(options.seed)
    one = torch.randn([1, *options.input_shape], generator=gen)
    with torch.inference_mode():
        timings = time_interleaved(
            [_call(m, one) for m in models], predictions=options.predictions,
            progress=_say(progress, f"latency: {{:,}} of {options.predictions:,} predictions timed"),
        )
        throughputs = _throughputs(models, options, gen, progress)
    evaluations = [_Evaluation(m, options.robustness_eps) for m in models]
    flips: list[Flip] = []
    if eval_data is not None:
        flips = _evaluate(evaluations, eval_data, options, gen, progress)
    measurements = [
        _measurement(m, one, latency=summarize_latencies(ns), throughputs=batches, evaluation=evaluation,
                     options=options)
        for m, ns, batches, evaluation in zip(models, timings, throughputs, evaluations, strict=True)
    ]
    return [
        measurement.with_items(evaluation.items(ns, flips if n == 0 else ()))
        for n, (measurement, ns, evaluation) in enumerate(zip(measurements, timings, evaluations, strict=True))
    ]


def _throughputs(models: list[LoadedModel], options: MeasureOptions, gen: torch.Generator,
                 progress: Callable[[str], None]) -> list[list[Throughput]]:
    per_model: list[list[Throughput]] = [[] for _ in models]
    for size in options.batch_sizes:
        batch = torch.randn([size, *options.input_shape], generator=gen)
        calls = [_call(m, batch) for m in models]
        rounds = max(10, options.predictions // size)
        stats = measure_interleaved(calls, predictions=rounds,
                                    progress=_say(progress, f"throughput: {{:,}} of {rounds:,} batches of {size}"))
        for out, stat in zip(per_model, stats, strict=True):
            out.append(throughput(size, stat))
    return per_model


def _measurement(
    model: LoadedModel,
    one: Tensor,
    *,
    latency: LatencyStats,
    throughputs: list[Throughput],
    evaluation: _Evaluation,
    options: MeasureOptions,
) -> ModelMeasurement:
    notes: list[str] = []
    return ModelMeasurement(
        latency=latency,
        throughput=throughputs,
        size_mb=model.size_bytes / 1e6,
        params=model.params,
        flops_per_prediction=count_flops(model.module, one, notes),
        peak_memory_mb=peak_memory_mb(model.module, one, notes),
        **evaluation.fields(options.num_classes),
        notes=notes + evaluation.notes,
    )


class _Evaluation:
    """Accuracy and robustness counters of one model over the evaluation pass."""

    def __init__(self, model: LoadedModel, eps: float | None) -> None:
        self.model = model
        self.confusion = Confusion()
        self.robustness = None if eps is None else Robustness(model.module, model.format, eps)
        self.labels: list[Tensor] = []
        self.predicted: list[Tensor] = []

    def add(self, x: Tensor, labels: Tensor, noise: Tensor | None, *, clamp: bool) -> Tensor:
        """Count one batch; returns the predicted classes."""
        try:
            with torch.inference_mode():
                logits = self.model.module(x)
        except Exception as exc:
            raise _run_error(self.model, x, exc) from exc
        predicted = logits.argmax(dim=1)
        self.confusion.add(labels, predicted, logits.shape[1])
        self.labels.append(labels)
        self.predicted.append(predicted)
        if self.robustness is not None and noise is not None:
            self.robustness.add(x, labels, noise, clamp=clamp)
        return predicted

    def items(self, latency_ns: list[int], flips: Sequence[Flip]) -> ItemResults:
        if not self.labels:
            return ItemResults(latency_ns=latency_ns)
        return ItemResults(latency_ns=latency_ns, labels=torch.cat(self.labels).tolist(),
                           predicted=torch.cat(self.predicted).tolist(), flips=tuple(flips))

    def fields(self, num_classes: int | None) -> dict[str, Any]:
        samples = self.confusion.samples
        robust = self.robustness.accuracies(samples) if self.robustness is not None and samples else None
        return {**accuracy_fields(self.confusion, num_classes), "robustness": robust}

    @property
    def notes(self) -> list[str]:
        return [] if self.robustness is None else self.robustness.notes


def _say(progress: Callable[[str], None], template: str) -> Callable[[int], None]:
    return lambda n: progress(template.format(n))


def _evaluate(
    evaluations: list[_Evaluation], eval_data: EvalData, options: MeasureOptions, gen: torch.Generator,
    progress: Callable[[str], None],
) -> list[Flip]:
    """Evaluate every model on the same batches; with two, the first flipped items each way."""
    eps = options.robustness_eps
    evaluated = 0
    flips: list[Flip] = []
    for images, batch_labels in _capped(eval_data, options.max_eval_samples):
        labels = batch_labels.long()
        x = options.preprocess(images) if options.preprocess else default_preprocess(images, options.input_shape)
        clamp = bool(x.min() >= 0 and x.max() <= 1)  # keep perturbed pixels in range only for [0, 1] data
        noise = gaussian_noise(x.shape, eps, gen) if eps is not None else None
        # same batch, same noise for candidate and baseline
        predicted = [evaluation.add(x, labels, noise, clamp=clamp) for evaluation in evaluations]
        if len(predicted) == 2:
            flips += _flips(images, labels, predicted[0], predicted[1], evaluated, flips)
        evaluated += len(labels)
        progress(f"accuracy: {evaluated:,} items evaluated")
    return flips


def _flips(images: Tensor, labels: Tensor, candidate: Tensor, production: Tensor, offset: int,
           kept: list[Flip]) -> list[Flip]:
    """The flipped items of one batch still wanted: up to ``FLIPS_KEPT`` each way over all batches."""
    new: list[Flip] = []
    for lost in (True, False):  # production right -> candidate wrong, then the reverse
        wanted = FLIPS_KEPT - sum((f.production == f.label) == lost for f in kept)
        right, wrong = (production, candidate) if lost else (candidate, production)
        where = ((right == labels) & (wrong != labels)).nonzero().flatten()[: max(wanted, 0)]
        new += [Flip(item=offset + i, label=int(labels[i]), production=int(production[i]),
                     candidate=int(candidate[i]), pixels=images[i].clone()) for i in where.tolist()]
    return new


def _capped(eval_data: EvalData, limit: int | None) -> Iterator[tuple[Tensor, Tensor]]:
    seen = 0
    for images, labels in eval_data:
        if limit is not None:
            take = limit - seen
            if take <= 0:
                return
            images, labels = images[:take], labels[:take]
        seen += len(labels)
        yield images, labels


def _call(model: LoadedModel, x: Tensor) -> Callable[[], object]:
    """A callable for the timer, after one checked call that turns a failure into a clear error."""
    try:
        with torch.inference_mode():
            model.module(x)
    except Exception as exc:
        raise _run_error(model, x, exc) from exc
    return lambda: model.module(x)


def _run_error(model: LoadedModel, x: Tensor, exc: Exception) -> BenchmarkError:
    """The shape mlgate fed and the model's own one-line reason, never the model's traceback (a
    TorchScript error carries one of its scripted code). The shape of one item was checked before
    (:func:`~mlgate.model.measure.inputs.fit_model`): what fails here is a batch size or eval data."""
    batch, item = x.shape[0], tuple(x.shape[1:])
    hint = "Check `input-shape` (one item, without the batch dimension) and `batch-sizes`."
    if model.format == "export":
        hint += (
            " A torch.export program only accepts batch sizes it was exported for: export with "
            "dynamic_shapes={'x': {0: torch.export.Dim('batch')}} or benchmark that batch size only."
        )
    return BenchmarkError(
        f"The {model.format} model {model.path.name!r} failed on a batch of {batch} "
        f"item{'s' if batch != 1 else ''} of shape {item} (a tensor of shape {tuple(x.shape)}, "
        f"dtype {x.dtype}): {model_error_reason(exc)}",
        hint=hint,
    )
