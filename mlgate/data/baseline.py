"""Sanity baseline: does a small model learn anything from this data at all?

A multinomial logistic regression on (downsampled, standardised) pixels, trained on CPU for a few
epochs within a time budget. It is not a benchmark: it catches a dataset whose labels carry no
signal (shuffled labels, images paired with the wrong annotations, a constant image) before anyone
spends GPU hours on it.

Convergence rule (``BaselineResult.converged``), all three must hold:

* the training loss fell: the mean of the last 10 % of steps is at most 90 % of the first step's
  loss (the loss of the untrained model);
* test accuracy closed at least 10 % of the gap between chance and perfect:
  ``accuracy - chance >= 0.1 * (1 - chance)``;
* and that margin is not noise: ``accuracy - chance >= 3 * sqrt(chance * (1 - chance) / n_test)``.

``chance`` is the share of the majority test class (what "always predict the commonest label"
scores), so an imbalanced dataset does not look learnable just because of its imbalance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import torch
from pydantic import BaseModel

from mlgate.errors import MlgateError

MAX_EPOCHS = 10
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
MAX_SIDE = 32
"""Images larger than this (height or width) are area-downsampled first: the model only needs to
see whether labels are learnable, and 20k × 224² × 3 floats would not fit in memory."""
MAX_LOGGED_LOSSES = 200


class BaselineError(MlgateError):
    """Raised when the baseline cannot be trained: no samples, labels out of range, mixed shapes."""

    title = "Cannot train the sanity baseline"


class BaselineResult(BaseModel):
    model: str
    epochs: int
    """Complete passes over the training sample."""
    steps: int
    seconds: float
    train_samples: int
    test_samples: int
    losses: list[float]
    """Training loss, averaged over every ``log_every`` steps (at most 200 points)."""
    log_every: int
    initial_loss: float
    """Loss of the first step, i.e. of the untrained model."""
    final_loss: float
    """Mean loss of the last 10 % of steps."""
    test_accuracy: float
    chance_accuracy: float
    converged: bool
    stopped_early: bool
    """True when the time budget ran out before ``MAX_EPOCHS`` epochs."""
    time_budget_s: float


def train_baseline(
    train: Iterable[tuple[torch.Tensor, torch.Tensor]],
    test: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    num_classes: int,
    time_budget_s: float = 60.0,
    max_train_samples: int = 20_000,
    seed: int = 0,
) -> BaselineResult:
    """Train a logistic regression on the first ``max_train_samples`` of ``train``, score it on ``test``.

    ``train`` and ``test`` yield ``(images, labels)`` batches: images ``(B, *item_shape)`` of any
    dtype (``uint8`` is scaled by 1/255), labels ``(B,)`` integers in ``[0, num_classes)``. At most
    ``max_train_samples`` test samples are scored too. The budget covers reading the training
    sample and training; when it runs out, training stops after the current step
    (``stopped_early``) and the model is scored as it is. Seeded (shuffling only; weights start at
    zero) and CPU-only, so a rerun gives the same numbers; no global RNG state is touched.
    """
    if num_classes < 2:
        raise BaselineError(
            f"num_classes={num_classes}: a classifier needs at least 2 classes.",
            hint="Skip the sanity baseline for unlabelled or single-class datasets.",
        )
    if max_train_samples < 1:
        raise BaselineError(f"max_train_samples={max_train_samples} leaves nothing to train on.")
    start = time.perf_counter()

    def out_of_time() -> bool:
        return time.perf_counter() - start >= time_budget_s

    x_train, y_train = _take(train, max_train_samples, num_classes, "train", stop=out_of_time)
    x_test, y_test = _take(test, max_train_samples, num_classes, "test", stop=None)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise BaselineError(
            f"Train items have {x_train.shape[1]} features after downsampling, test items {x_test.shape[1]}.",
            hint="Train and test images must have the same shape.",
        )
    # one scalar mean/std (from train): robust to constant pixels, keeps test on the train scale
    mean, std = x_train.mean(), x_train.std()
    scale = std if std > 1e-12 else torch.tensor(1.0)
    x_train, x_test = (x_train - mean) / scale, (x_test - mean) / scale

    model = torch.nn.Linear(x_train.shape[1], num_classes)
    # zero weights: the untrained model predicts uniformly (first loss = ln K), and the seed only
    # drives the shuffling through a local generator, so no global RNG state is read or changed
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    # one thread: a model this small gains nothing from more, busy runners lose a lot to thread
    # contention, and float sums then do not depend on the runner's core count (same numbers)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        step_losses, epochs, stopped_early = _fit(model, x_train, y_train, seed=seed, out_of_time=out_of_time)
        with torch.no_grad():
            accuracy = (model(x_test).argmax(dim=1) == y_test).double().mean().item()
    finally:
        torch.set_num_threads(threads)

    chance = torch.bincount(y_test, minlength=num_classes).max().item() / len(y_test)
    initial = step_losses[0]
    tail = step_losses[-max(1, len(step_losses) // 10) :]
    final = sum(tail) / len(tail)
    losses, log_every = _downsample(step_losses, MAX_LOGGED_LOSSES)
    return BaselineResult(
        model=f"logistic regression on pixels ({x_train.shape[1]} features)",
        epochs=epochs,
        steps=len(step_losses),
        seconds=round(time.perf_counter() - start, 3),
        train_samples=len(y_train),
        test_samples=len(y_test),
        losses=losses,
        log_every=log_every,
        initial_loss=initial,
        final_loss=final,
        test_accuracy=accuracy,
        chance_accuracy=chance,
        converged=is_converged(initial, final, accuracy, chance, len(y_test)),
        stopped_early=stopped_early,
        time_budget_s=time_budget_s,
    )


def is_converged(initial_loss: float, final_loss: float, accuracy: float, chance: float, n_test: int) -> bool:
    """The module docstring's rule: loss fell by 10 %, accuracy clearly and significantly above chance."""
    if not (math.isfinite(initial_loss) and math.isfinite(final_loss)):
        return False
    loss_fell = final_loss <= 0.9 * initial_loss
    margin = accuracy - chance
    noise = 3 * math.sqrt(chance * (1 - chance) / max(n_test, 1))
    return loss_fell and margin >= 0.1 * (1 - chance) and margin >= noise


def _take(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    limit: int,
    num_classes: int,
    split: str,
    *,
    stop: Callable[[], bool] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` samples as ``(N, features)`` float32 and ``(N,)`` int64 labels."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    taken = 0
    for images, labels in batches:
        room = limit - taken
        x, y = _features(images[:room]), labels[:room].reshape(-1).long()
        if len(x) != len(y):
            raise BaselineError(f"A {split} batch has {len(x)} images but {len(y)} labels.")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise BaselineError(
                f"A {split} batch has label {int(y.min() if y.min() < 0 else y.max())}, outside 0..{num_classes - 1}.",
                hint="Pass num_classes larger than the largest label, or remap labels to 0..num_classes-1.",
            )
        if xs and x.shape[1:] != xs[0].shape[1:]:
            raise BaselineError(f"{split} items change shape between batches; the baseline needs one shape.")
        xs.append(x)
        ys.append(y)
        taken += len(y)
        if taken >= limit or (stop is not None and stop()):
            break
    if taken == 0:
        raise BaselineError(
            f"The {split} split gave no samples to the sanity baseline.",
            hint="Check that the split is not empty, or turn the baseline off.",
        )
    return torch.cat(xs), torch.cat(ys)


def _features(images: torch.Tensor) -> torch.Tensor:
    x = images.detach().cpu()
    x = x.float() / 255.0 if x.dtype == torch.uint8 else torch.nan_to_num(x.float())
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.permute(0, 3, 1, 2)  # channel-last -> channel-first, so pooling sees H and W
    if x.ndim in (3, 4) and max(x.shape[-2:]) > MAX_SIDE:
        planes = x if x.ndim == 4 else x.unsqueeze(1)
        ratio = MAX_SIDE / max(x.shape[-2:])
        size = (max(1, round(x.shape[-2] * ratio)), max(1, round(x.shape[-1] * ratio)))
        x = torch.nn.functional.interpolate(planes, size=size, mode="area")
    return x.reshape(len(x), -1)


def _fit(
    model: torch.nn.Linear,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    seed: int,
    out_of_time: Callable[[], bool],
) -> tuple[list[float], int, bool]:
    """Adam on shuffled mini-batches; returns per-step losses, complete epochs, and whether time ran out."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    losses: list[float] = []
    for epoch in range(MAX_EPOCHS):
        order = torch.randperm(len(y), generator=generator)
        for first in range(0, len(y), BATCH_SIZE):
            batch = order[first : first + BATCH_SIZE]
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if out_of_time():
                finished = epoch + 1 if first + BATCH_SIZE >= len(y) else epoch
                return losses, finished, finished < MAX_EPOCHS
    return losses, MAX_EPOCHS, False


def _downsample(values: list[float], limit: int) -> tuple[list[float], int]:
    """Means over consecutive windows so that at most ``limit`` points remain, and the window size."""
    every = max(1, math.ceil(len(values) / limit))
    means = [sum(values[i : i + every]) / len(values[i : i + every]) for i in range(0, len(values), every)]
    return means, every
