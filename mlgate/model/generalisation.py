"""The generalisation gap: the candidate's accuracy on a sample of its training split next to eval.

"Did I overfit?": when ``eval-data`` has a ``train`` split (and ``eval-split`` is another one), the
candidate is run on a uniform, seeded sample of at most :data:`TRAIN_SAMPLE` train items (a reservoir
sample over the split read once, at most :data:`MAX_SCANNED` items), preprocessed exactly as the eval
items. The gap is train accuracy minus eval accuracy, in percentage points, with a 95 % margin from
the two sample sizes (normal approximation of two independent proportions).

Reading (thresholds stated in the README): a gap of :data:`OVERFIT_GAP` or more means the model fits
its training data much better than new data (overfitting); eval above train by as much is unusual
(swapped splits, or train items that differ from eval items); otherwise no sign of overfitting, and a
low accuracy on both means underfitting.

:func:`measure_generalisation` is pure (a loaded model and a split in, a value out);
:func:`from_eval_data` opens ``eval-data`` for the model gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from torch import Tensor

    from mlgate.data.layouts import Batch
    from mlgate.model.eval_data import EvalInputs
    from mlgate.model.loading import LoadedModel

TRAIN_SPLIT = "train"
TRAIN_SAMPLE = 2_000
"""Train items the candidate is run on (fewer when ``max-eval-samples`` is lower, or train is smaller)."""
MAX_SCANNED = 100_000
"""Train items read to draw the sample; a larger split is sampled from its first items (a note says so)."""
OVERFIT_GAP = 0.05
"""Train accuracy this far above eval (5 percentage points) reads as overfitting."""
SEED = 0
_BATCH = 256
_Z95 = 1.959964


class Generalisation(BaseModel):
    """``generalisation`` in report.json: accuracy on a train sample next to eval accuracy."""

    train_split: str
    eval_split: str
    train_samples: int
    """Train items the candidate was run on."""
    train_items_read: int
    """Train items the sample was drawn from."""
    train_accuracy: float
    eval_accuracy: float
    eval_samples: int
    gap: float
    """``train_accuracy - eval_accuracy``: positive when the model does better on data it was trained on."""
    gap_margin: float
    """Half-width of the gap's 95 % interval (sampling error of both accuracies)."""
    reading: str
    seed: int
    notes: list[str]


def reading(gap: float, margin: float) -> str:
    """What the gap says, in one sentence (thresholds: :data:`OVERFIT_GAP` either way)."""
    if gap >= OVERFIT_GAP and gap - margin > 0:
        return ("train accuracy is well above eval accuracy: the model fits its training data much better than "
                "new data (overfitting)")
    if gap <= -OVERFIT_GAP and gap + margin < 0:
        return ("eval accuracy is well above train accuracy: unusual; check that the splits are not swapped and "
                "that train items are prepared like eval items")
    return "train and eval accuracy are close: no sign of overfitting (if both are low, the model underfits)"


def gap_margin(train_accuracy: float, train_samples: int, eval_accuracy: float, eval_samples: int) -> float:
    """95 % half-width of the difference of two independent sample proportions."""
    variance = (train_accuracy * (1 - train_accuracy) / max(train_samples, 1)
                + eval_accuracy * (1 - eval_accuracy) / max(eval_samples, 1))
    return _Z95 * math.sqrt(variance)


def sample_batches(batches: Iterable[Batch], size: int, *, seed: int = SEED, item_shape: Sequence[int] | None = None,
                   max_scanned: int = MAX_SCANNED) -> tuple[Tensor, Tensor, int, list[str]]:
    """A uniform sample of ``size`` items without replacement (each item gets a seeded random key; the
    ``size`` smallest keys are kept), as (images, labels, items read, notes). Items whose shape is not
    ``item_shape`` (the eval items') are skipped, and counted in a note."""
    import torch  # start-up: torch only when the gap is measured

    gen = torch.Generator().manual_seed(seed)
    kept_keys = torch.empty(0)
    kept_images: Tensor | None = None
    kept_labels = torch.empty(0, dtype=torch.int64)
    read = skipped = 0
    notes: list[str] = []
    for batch in batches:
        images, labels = batch.images, batch.labels
        if len(labels) == 0 or images.shape[0] != len(labels):
            continue
        if max_scanned - read <= 0:
            notes.append(f"the train sample was drawn from the first {max_scanned:,} train items only")
            break
        images, labels = images[: max_scanned - read], labels[: max_scanned - read]
        read += len(labels)
        shape = list(images.shape[1:])
        if item_shape is None:
            item_shape = shape
        if shape != list(item_shape) or (kept_images is not None and images.dtype != kept_images.dtype):
            skipped += len(labels)
            continue
        keys = torch.rand(len(labels), generator=gen)
        all_keys = torch.cat([kept_keys, keys])
        all_images = images if kept_images is None else torch.cat([kept_images, images])
        all_labels = torch.cat([kept_labels, labels.long()])
        keep = torch.topk(all_keys, min(size, len(all_keys)), largest=False).indices.sort().values
        kept_keys, kept_images, kept_labels = all_keys[keep], all_images[keep], all_labels[keep]
    if skipped:
        notes.append(f"{skipped:,} train items of another shape than the eval items were left out of the sample")
    if kept_images is None:
        kept_images = torch.empty(0)
    return kept_images, kept_labels, read, notes


def accuracy_on(model: LoadedModel, images: Tensor, labels: Tensor,
                preprocess: Callable[[Tensor], Tensor]) -> float:
    """The share of ``images`` the model labels right (argmax of its logits), in batches of 256."""
    import torch  # start-up: torch only when the gap is measured

    correct = 0
    with torch.inference_mode():
        for start in range(0, len(labels), _BATCH):
            logits = model.module(preprocess(images[start : start + _BATCH]))
            correct += int((logits.argmax(dim=1) == labels[start : start + _BATCH]).sum())
    return correct / len(labels)


def measure_generalisation(model: LoadedModel, train: Iterable[Batch], *, input_shape: Sequence[int],
                           item_shape: Sequence[int] | None, eval_accuracy: float, eval_samples: int,
                           eval_split: str, sample: int = TRAIN_SAMPLE, seed: int = SEED,
                           threads: int = 1) -> Generalisation | None:
    """Accuracy of ``model`` on a seeded sample of ``train`` next to ``eval_accuracy``; None when the
    train split has no item the model can take."""
    import torch  # start-up: torch only when the gap is measured

    from mlgate.model.measure.inputs import default_preprocess  # start-up: imports torch

    images, labels, read, notes = sample_batches(train, sample, seed=seed, item_shape=item_shape)
    if len(labels) == 0:
        return None
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        train_accuracy = accuracy_on(model, images, labels, lambda x: default_preprocess(x, input_shape))
    finally:
        torch.set_num_threads(previous)
    gap = train_accuracy - eval_accuracy
    margin = gap_margin(train_accuracy, len(labels), eval_accuracy, eval_samples)
    return Generalisation(
        train_split=TRAIN_SPLIT, eval_split=eval_split, train_samples=len(labels), train_items_read=read,
        train_accuracy=train_accuracy, eval_accuracy=eval_accuracy, eval_samples=eval_samples, gap=gap,
        gap_margin=margin, reading=reading(gap, margin), seed=seed, notes=notes,
    )


def from_eval_data(inputs: EvalInputs, data_dir: Path, import_root: Path, model: LoadedModel,
                   input_shape: Sequence[int], item_shape: Sequence[int] | None, eval_accuracy: float | None,
                   eval_samples: int, *, threads: int = 1) -> Generalisation | None:
    """The gap for the model gate: None when there is no eval accuracy, ``eval-split`` is ``train``
    itself, or ``eval-data`` (at ``data_dir``) has no ``train`` split."""
    if eval_accuracy is None or inputs.split == TRAIN_SPLIT:
        return None
    dataset = inputs.open(data_dir, import_root)
    if TRAIN_SPLIT not in dataset.splits:
        return None
    return measure_generalisation(
        model, dataset.splits[TRAIN_SPLIT].batches(1024), input_shape=input_shape, item_shape=item_shape,
        eval_accuracy=eval_accuracy, eval_samples=eval_samples, eval_split=inputs.split,
        sample=min(TRAIN_SAMPLE, inputs.max_samples), threads=threads,
    )
