"""Likely label errors: train items whose given label a model that never saw them confidently disputes.

Confident learning (Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels", JAIR 70, 2021), reimplemented here (cleanlab is AGPL-licensed):

1. **Items examined.** A seeded random sample of up to :data:`MAX_ITEMS` train items (reservoir
   sampling over the items read; reading stops after :data:`READ_SHARE` of the budget), fewer when
   the budget cannot train on that many (below).
2. **Out-of-sample probabilities.** The sample is split into :data:`FOLDS` seeded folds; a small
   CNN (two 3×3 conv layers; an MLP for items that are not images) is trained on the other folds
   and predicts each fold's items, so no item is judged by a model that saw its label.
3. **Per-class thresholds.** ``t_j`` is the mean predicted probability of class ``j`` over the
   items labelled ``j`` (how sure the model is, on average, of a correct-looking ``j``).
4. **Confident label.** Among the classes whose probability reaches their threshold, the likeliest
   one; an item with no such class has none. Counting (given label, confident label) pairs gives
   the *confident joint*.
5. **Pairs the models can tell apart.** Per pair of classes ``(a, b)``, the share of their items whose
   likeliest out-of-sample class is the other one: ``(M[a][b] + M[b][a]) / (n_a + n_b)``. A pair at or
   under :data:`PAIR_CONFUSION` (2 %) is *separable*; above it the models cannot tell the two classes
   apart well enough to say which one an item is (look-alike classes, such as two halves of one
   texture, or many label errors between just these two): no item is flagged between them, and the
   report names the pair instead.
6. **Flagged** are the items in the confident joint's off-diagonal (the confident label exists and
   differs from the given label, the paper's ``C_confusion`` rule) whose given and confident label form a
   separable pair.
7. **Ranked** by the probability of the given label, lowest first (least believable label first).

Why the pair rule: the off-diagonal alone flags every item a model gets confidently wrong. On real digits
(95 % out-of-sample accuracy) that is under 1 % of correctly labelled items, but on crops of real
photographs with look-alike textures (70 to 85 % accuracy) it flagged 9 to 20 % of correctly labelled
items, every one wrongly. Uniform label noise of 2 % adds only about 2 % / (classes - 1) to a pair's
confusion, so a pair confused more than 2 % is confused by the models, not by the noise. With the rule,
on the benchmark's tuning sets (``bench/label_errors.py``: 4,000 digits, 1,200 photograph crops; seeds 0
and 1) clean labels get 0.5 to 1.0 % flagged and 2 % flips F1 0.61 to 0.82; on the held-out sets (other
photographs, seeds 2 and 3) 0.2 to 0.9 % and F1 0.71 to 0.79. 3 % let photographs' clean flags reach
1.5 % and their F1 drop to 0.54; a probability floor on the suggested class (0.5 to 0.9) cost recall
and gained nothing.

When the models do not predict the given labels clearly better than always guessing the commonest
class (the sanity baseline's rule, :func:`mlgate.data.baseline.is_converged`'s accuracy half), they
are too weak to dispute a label; likewise when no pair of classes is separable. Then nothing is
flagged and ``judged`` is false.

The pass has a time budget. Five probe steps time the model on this machine; when the folds could
not train on the whole sample for their planned steps in the time left, the sample shrinks to what
they can (a seeded random subset, not below :data:`MIN_ITEMS`). Each fold then trains for an equal
share of what is left and stops at the end of its share, so the pass never overruns by more than
one training step. Whatever the budget cut (reading, items, steps) sets ``stopped_early``; folds that
got less than half their planned steps are ``undertrained`` and their predictions are not judged.
Seeded, CPU-only, one thread; the global RNG state is left as it was. Results repeat exactly when
the budget does not bind.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from pydantic import BaseModel, ConfigDict

from mlgate.data.stats import ItemId
from mlgate.errors import MlgateError

MAX_ITEMS = 5_000
"""Train items examined at most: a seeded random sample of the items read."""
FOLDS = 3
EPOCHS = 8
"""Passes over each fold's training items, unless the budget ends them sooner."""
MIN_STEPS = 100
"""Optimizer steps per fold at least (more epochs on a small sample), unless the budget ends them sooner."""
BATCH_SIZE = 128
LEARNING_RATE = 3e-3
MAX_SIDE = 32
"""Images larger than this are area-downsampled first (the digits' 28×28 stay as they are)."""
MIN_ITEMS = 500
"""The sample is never cut below this many items to fit the budget (the budget then stops training early)."""
MIN_TRAINED = 0.5
"""Share of the planned training steps the folds must reach, on average, for their predictions to be judged."""
READ_SHARE = 0.25
"""Share of the budget that reading the train split may take; the sample is drawn from what was read."""
MAX_LISTED = 100
"""Flagged items listed in report.json, least believable label first; ``flagged`` counts them all."""
MAX_PICTURED = 16
"""Flagged items whose pixels are kept for the figure."""
PAIR_CONFUSION = 0.02
"""A pair of classes is judged only when at most this share of its items is predicted as the other class."""
MAX_PAIRS_LISTED = 20
METHOD = ("confident learning, confident-joint off-diagonal (Northcutt et al., JAIR 2021), between pairs of "
          "classes the models tell apart (out-of-sample pair confusion at most 2 %)")


class LabelErrorsError(MlgateError):
    """Raised when the label-error pass cannot run: labels out of range, items that change shape."""

    title = "Cannot look for label errors"


class LabelErrorItem(BaseModel):
    """One train item whose given label the out-of-sample model disputes."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    item: ItemId
    """Index within the split, or (ImageFolder) the file path relative to the data folder."""
    label: int
    """The label the dataset gives the item."""
    suggested: int
    """The item's confident label: the likeliest class whose probability reached its threshold."""
    confidence: float
    """Out-of-sample probability of ``suggested``."""
    label_probability: float
    """Out-of-sample probability of ``label`` (items are ranked by it, lowest first)."""


class ConfusedPair(BaseModel):
    """Two classes the out-of-sample models confuse too often to judge labels between them."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    label: int
    other: int
    confusion: float
    """Share of the items of both classes whose likeliest out-of-sample class is the other one."""
    items: int
    """Examined items of the two classes."""


class LabelErrors(BaseModel):
    """Likely label errors in ``split``: ``flagged`` in all, the first 100 listed in ``items``."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    method: str
    """How items are flagged: confident learning's confident-joint off-diagonal rule."""
    model: str
    """The model whose out-of-sample probabilities are judged (a small CNN, or an MLP for feature vectors)."""
    split: str
    """The split examined (``train``)."""
    folds: int
    """Cross-validation folds: each item is predicted by a model trained on the other folds."""
    items_read: int
    """Items of the split read (reading stops after a quarter of the budget)."""
    items_examined: int
    """Items given an out-of-sample prediction: a seeded random sample of up to 5,000 of those read, fewer
    (not below 500) when a quick timing shows the budget cannot train on that many."""
    flagged: int
    """Items whose confident label differs from their given label, between classes the models tell apart
    (0 when not ``judged``)."""
    items: list[LabelErrorItem]
    """The first 100 flagged items, least believable given label first."""
    out_of_sample_accuracy: float
    """Share of examined items whose likeliest out-of-sample class is their given label."""
    chance_accuracy: float
    """Share of the commonest given label among the examined items."""
    judged: bool
    """False when the models were too weak (not clearly above chance), undertrained, or could not tell
    any pair of classes apart (``confused_pairs``) to dispute labels: nothing flagged."""
    undertrained: bool = False
    """True when the budget stopped training before half the planned steps: too little to judge."""
    pair_confusion_limit: float = PAIR_CONFUSION
    """A pair of classes is judged when at most this share of its items is predicted as the other class."""
    confused_pairs: list[ConfusedPair] = []
    """Pairs of classes confused more than ``pair_confusion_limit``, most confused first (up to 20): no
    item is flagged between them."""
    confused_pair_count: int = 0
    """Pairs of classes confused more than ``pair_confusion_limit``, all of them."""
    epochs: float
    """Passes over its training items per fold, averaged over the folds."""
    seconds: float
    """Wall time of the pass: reading the sample, training, predicting."""
    time_budget_s: float
    """What was left of ``baseline-time-budget`` after the sanity baseline."""
    stopped_early: bool
    """True when the budget cut the pass short: the split read only in part, fewer items examined than
    5,000 (or all read), or folds trained for fewer steps than planned."""


@dataclass(frozen=True)
class LabelErrorsFound:
    """The report's :class:`LabelErrors` and the pixels (``(C, H, W)`` in 0..1, as the model saw them)
    of the first :data:`MAX_PICTURED` listed items, for the figure; and every flagged item (the full
    list; ``result.items`` stops at :data:`MAX_LISTED`)."""

    result: LabelErrors
    pixels: list[torch.Tensor]
    flagged: list[LabelErrorItem] = dataclasses.field(default_factory=list)
    probabilities: torch.Tensor | None = None
    """``(N, K)`` out-of-sample probabilities of the examined items, in reading order (for the benchmark)."""
    labels: torch.Tensor | None = None
    """``(N,)`` their given labels."""


# ---------------------------------------------------------------------------------------------
# the confident-learning rule: pure functions of probabilities and labels


def per_class_thresholds(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``t_j``: mean probability of class ``j`` over the items labelled ``j``; ``inf`` for a class no
    item carries (nothing can be confidently put in it)."""
    thresholds = torch.full((num_classes,), math.inf, dtype=probs.dtype)
    for j in range(num_classes):
        mine = labels == j
        if mine.any():
            thresholds[j] = probs[mine, j].mean()
    return thresholds


def confident_labels(probs: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Per item, the likeliest class among those whose probability reaches their threshold; ``-1``
    where no class does."""
    above = probs >= thresholds
    best = torch.where(above, probs, torch.full_like(probs, -1.0)).argmax(dim=1)
    return torch.where(above.any(dim=1), best, torch.full_like(best, -1))


def confident_joint(labels: torch.Tensor, confident: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``C[i][j]``: items labelled ``i`` whose confident label is ``j`` (items without one left out)."""
    has = confident >= 0
    flat = labels[has] * num_classes + confident[has]
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def pair_confusion(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rate, items)``, both ``(K, K)`` and symmetric: per pair of classes, the share of the items
    labelled either whose likeliest class is the other one, and how many items that is out of."""
    predicted = probs.argmax(dim=1)
    confusion = torch.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes) \
        .reshape(num_classes, num_classes).double()
    counts = torch.bincount(labels, minlength=num_classes).double()
    items = counts[:, None] + counts[None, :]
    rate = (confusion + confusion.T) / items.clamp(min=1)
    rate.fill_diagonal_(0.0)
    return rate, items


def flag_label_errors(probs: torch.Tensor, labels: torch.Tensor, num_classes: int, *,
                      separable: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(flagged, suggested)``: items in the confident joint's off-diagonal whose (given, confident)
    pair of classes is ``separable`` (``(K, K)`` bools; None: every pair), and each item's confident
    label (``-1`` where none)."""
    confident = confident_labels(probs, per_class_thresholds(probs, labels, num_classes))
    flagged = (confident >= 0) & (confident != labels)
    if separable is not None:
        flagged &= separable[labels, confident.clamp(min=0)]
    return flagged, confident


def separable_pairs(probs: torch.Tensor, labels: torch.Tensor, num_classes: int,
                    limit: float = PAIR_CONFUSION) -> tuple[torch.Tensor, list[ConfusedPair]]:
    """``(separable, confused)``: which pairs of classes are confused at most ``limit`` out of sample
    (``(K, K)`` bools), and the pairs of present classes that are not, most confused first."""
    rate, items = pair_confusion(probs, labels, num_classes)
    separable = rate <= limit
    present = torch.bincount(labels, minlength=num_classes) > 0
    confused = [ConfusedPair(label=a, other=b, confusion=round(rate[a, b].item(), 4), items=int(items[a, b]))
                for a in range(num_classes) for b in range(a + 1, num_classes)
                if present[a] and present[b] and not separable[a, b]]
    return separable, sorted(confused, key=lambda p: (-p.confusion, p.label, p.other))


def ranked(flagged: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor) -> list[int]:
    """Indices of the flagged items, least believable given label (lowest probability) first; ties in
    index order."""
    index = flagged.nonzero().reshape(-1)
    given = probs[index, labels[index]]
    order = sorted(range(len(index)), key=lambda k: (given[k].item(), index[k].item()))
    return [int(index[k]) for k in order]


def clearly_above_chance(accuracy: float, chance: float, n: int) -> bool:
    """The sanity baseline's accuracy rule: 10 % of the way from chance to perfect, and 3 standard
    errors above chance."""
    margin = accuracy - chance
    return margin >= 0.1 * (1 - chance) and margin >= 3 * math.sqrt(chance * (1 - chance) / max(n, 1))


# ---------------------------------------------------------------------------------------------
# the pass: read a sample, cross-validate, apply the rule


def find_label_errors(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, Sequence[ItemId] | None]],
    *,
    num_classes: int,
    time_budget_s: float,
    split: str = "train",
    max_items: int = MAX_ITEMS,
    folds: int = FOLDS,
    seed: int = 0,
) -> LabelErrorsFound:
    """Likely label errors among up to ``max_items`` items of ``batches`` within ``time_budget_s``.

    ``batches`` yields ``(images, labels, ids)``: images ``(B, *item_shape)`` (``uint8`` is scaled by
    1/255), labels ``(B,)`` in ``[0, num_classes)``, ids naming each item (``None``: its index within
    the split, counted across batches). See the module docstring for the method.
    """
    if num_classes < 2:
        raise LabelErrorsError(f"num_classes={num_classes}: label errors need at least 2 classes.")
    start = time.perf_counter()
    deadline = start + time_budget_s
    sample = _sample(batches, max_items, num_classes, seed,
                     stop=lambda: time.perf_counter() - start >= READ_SHARE * time_budget_s)
    folds = max(2, min(folds, len(sample.y) // 2))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same numbers on any runner; a small model gains little from more
    try:
        if len(sample.y) > MIN_ITEMS:  # fewer items when the budget cannot train on all of them
            sample = _subset(sample, _affordable_items(sample.x, len(sample.y), num_classes, folds, deadline), seed)
        x, y = sample.x, sample.y
        n = len(y)
        probs, epochs, trained = _out_of_sample(x, y, num_classes, folds, seed, deadline) if n >= 4 else \
            (torch.full((n, num_classes), 1.0 / num_classes), 0.0, 0.0)
    finally:
        torch.set_num_threads(threads)
    chance = torch.bincount(y, minlength=num_classes).max().item() / max(n, 1)
    accuracy = (probs.argmax(dim=1) == y).double().mean().item() if n else 0.0
    undertrained = n >= 4 and trained < MIN_TRAINED
    separable, confused = separable_pairs(probs, y, num_classes)
    present = int((torch.bincount(y, minlength=num_classes) > 0).sum())
    any_separable = len(confused) < present * (present - 1) // 2
    judged = n >= 4 and not undertrained and clearly_above_chance(accuracy, chance, n) and any_separable
    flagged, suggested = flag_label_errors(probs, y, num_classes, separable=separable)
    order = ranked(flagged, probs, y) if judged else []
    every = [
        LabelErrorItem(item=sample.ids[i], label=int(y[i]), suggested=int(suggested[i]),
                       confidence=round(probs[i, suggested[i]].item(), 4),
                       label_probability=round(probs[i, y[i]].item(), 4))
        for i in order
    ]
    items = every[:MAX_LISTED]
    result = LabelErrors(
        method=METHOD, model=sample.model, split=split, folds=folds, items_read=sample.read, items_examined=n,
        flagged=len(order), items=items, out_of_sample_accuracy=accuracy, chance_accuracy=chance, judged=judged,
        undertrained=undertrained, confused_pairs=confused[:MAX_PAIRS_LISTED], confused_pair_count=len(confused),
        epochs=round(epochs, 2), seconds=round(time.perf_counter() - start, 3),
        time_budget_s=time_budget_s,
        stopped_early=(n >= 4 and trained < 1.0) or not sample.complete or n < min(sample.read, max_items),
    )
    return LabelErrorsFound(result, [sample.display[i].clone() for i in order[:MAX_PICTURED]],  # not the sample
                            every, probs, y)


@dataclass
class _Sample:
    x: torch.Tensor
    """``(N, C, H, W)`` standardised images, or ``(N, D)`` feature vectors."""
    y: torch.Tensor
    ids: list[ItemId]
    display: torch.Tensor
    """The same items in 0..1 (images) before standardising."""
    read: int
    complete: bool
    """Whether every item of the split was read."""
    model: str


def _sample(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, Sequence[ItemId] | None]],
    limit: int,
    num_classes: int,
    seed: int,
    *,
    stop: Callable[[], bool],
) -> _Sample:
    """A uniform random sample of ``limit`` items read (reservoir: each item a seeded random key, the
    ``limit`` smallest kept), in reading order."""
    generator = torch.Generator().manual_seed(seed)
    keys = torch.empty(0)
    kept_x: torch.Tensor | None = None
    kept_y = torch.empty(0, dtype=torch.long)
    kept_ids: list[ItemId] = []
    positions = torch.empty(0, dtype=torch.long)
    read, complete = 0, True
    for images, labels, ids in batches:
        if not len(labels):
            continue
        x, y = _pixels(images, like=kept_x), labels.reshape(-1).long()
        if len(x) != len(y):
            raise LabelErrorsError(f"A batch has {len(x)} items but {len(y)} labels.")
        if y.min() < 0 or y.max() >= num_classes:
            raise LabelErrorsError(f"A batch has label {int(y.min() if y.min() < 0 else y.max())}, outside "
                                   f"0..{num_classes - 1}.")
        names: list[ItemId] = list(ids) if ids is not None else list(range(read, read + len(y)))
        keys = torch.cat([keys, torch.rand(len(y), generator=generator)])
        kept_x = x if kept_x is None else torch.cat([kept_x, x])
        kept_y = torch.cat([kept_y, y])
        kept_ids += names
        positions = torch.cat([positions, torch.arange(read, read + len(y))])
        read += len(y)
        if len(keys) > limit:
            keep = keys.topk(limit, largest=False).indices.sort().values
            keys, kept_x, kept_y, positions = keys[keep], kept_x[keep], kept_y[keep], positions[keep]
            kept_ids = [kept_ids[i] for i in keep.tolist()]
        if stop():
            complete = False
            break
    if kept_x is None:
        return _Sample(torch.empty(0, 1), kept_y, [], torch.empty(0, 1), 0, complete, "no model (no items)")
    mean, std = kept_x.mean(), kept_x.std()
    x = (kept_x - mean) / (std if std > 1e-12 else torch.tensor(1.0))
    shape = "×".join(str(d) for d in kept_x.shape[2:])
    model = (f"small CNN (2 conv layers) on {shape} pixels" if kept_x.ndim == 4
             else f"MLP (1 hidden layer) on {kept_x.shape[1]} features")
    return _Sample(x, kept_y, kept_ids, kept_x, read, complete, model)


def _pixels(images: torch.Tensor, *, like: torch.Tensor | None) -> torch.Tensor:
    """``(B, C, H, W)`` floats (images, at most 32 px a side) or ``(B, D)`` (anything else); a batch of
    another size or channel count than the first is resized to it (ImageFolder's mixed sizes). Converted
    256 items at a time: a batch of large images is never held as floats at full size."""
    if len(images) > 256:
        return torch.cat([_pixels(images[i : i + 256], like=like) for i in range(0, len(images), 256)])
    x = images.detach().cpu()
    x = x.float() / 255.0 if x.dtype == torch.uint8 else torch.nan_to_num(x.float(), posinf=0.0, neginf=0.0)
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.permute(0, 3, 1, 2)  # channel-last -> channel-first
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim == 4 and x.shape[1] in (1, 3, 4):
        if max(x.shape[-2:]) > MAX_SIDE:
            ratio = MAX_SIDE / max(x.shape[-2:])
            size = (max(1, round(x.shape[-2] * ratio)), max(1, round(x.shape[-1] * ratio)))
            x = torch.nn.functional.interpolate(x, size=size, mode="area")
        if like is not None and like.ndim == 4 and x.shape[1] != like.shape[1]:  # grey <-> colour
            x = x[:, :3].mean(dim=1, keepdim=True).expand(-1, like.shape[1], -1, -1)
        if like is not None and like.ndim == 4 and x.shape[2:] != like.shape[2:]:
            x = torch.nn.functional.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)
    else:
        x = x.reshape(len(x), -1)
    if like is not None and x.shape[1:] != like.shape[1:]:
        raise LabelErrorsError(f"Items change shape between batches ({tuple(like.shape[1:])} then "
                               f"{tuple(x.shape[1:])}); the label-error pass needs one shape.")
    return x.contiguous()


def _network(x: torch.Tensor, num_classes: int) -> torch.nn.Module:
    nn = torch.nn
    if x.ndim == 2:
        return nn.Sequential(nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Linear(128, num_classes))
    features = nn.Sequential(
        nn.Conv2d(x.shape[1], 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(),
    )
    with torch.no_grad():
        width = features(x[:1]).shape[1]
    return nn.Sequential(features, nn.Linear(width, 64), nn.ReLU(), nn.Linear(64, num_classes))


def _planned_steps(n_train: int) -> tuple[int, int]:
    """Steps per epoch and planned steps for a fold training on ``n_train`` items: :data:`EPOCHS` epochs,
    more (whole epochs) to reach :data:`MIN_STEPS`."""
    per_epoch = max(1, math.ceil(n_train / BATCH_SIZE))
    return per_epoch, max(EPOCHS, math.ceil(MIN_STEPS / per_epoch)) * per_epoch


def _affordable_items(x: torch.Tensor, n: int, num_classes: int, folds: int, deadline: float) -> int:
    """How many of the ``n`` items the folds can train on for their planned steps before ``deadline``,
    from the time of a few probe steps, with a quarter in reserve (at least :data:`MIN_ITEMS`)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _network(x, num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    batch, labels = x[:BATCH_SIZE], torch.arange(min(BATCH_SIZE, len(x))) % num_classes
    times = []
    for _ in range(5):
        if time.perf_counter() >= deadline:
            return MIN_ITEMS
        tick = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(batch), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - tick)
    step_s = max(sorted(times[1:])[1], 1e-6)  # the first pays for one-off set-up; a busy machine varies
    affordable = 0.75 * max(0.0, deadline - time.perf_counter()) / step_s  # steps, all folds, with a margin
    if folds * _planned_steps(n * (folds - 1) // folds)[1] <= affordable:
        return n
    # at EPOCHS epochs per fold: folds * EPOCHS * ceil(n (k-1)/k / B) steps
    fits = int(affordable / (folds * EPOCHS) * BATCH_SIZE * folds / (folds - 1))
    return max(MIN_ITEMS, min(n, fits))


def _subset(sample: _Sample, size: int, seed: int) -> _Sample:
    """A seeded random ``size`` of the sample's items, in reading order."""
    if size >= len(sample.y):
        return sample
    keep = torch.randperm(len(sample.y), generator=torch.Generator().manual_seed(seed + 3))[:size].sort().values
    return dataclasses.replace(sample, x=sample.x[keep], y=sample.y[keep], display=sample.display[keep],
                               ids=[sample.ids[i] for i in keep.tolist()])


def _out_of_sample(x: torch.Tensor, y: torch.Tensor, num_classes: int, folds: int, seed: int,
                   deadline: float) -> tuple[torch.Tensor, float, float]:
    """Each item's class probabilities from a model trained on the other folds; the mean epochs per
    fold; the mean share of its planned steps each fold trained for. Fold ``f`` trains until an equal
    share of the time left (``(deadline - now) / folds left``) is spent."""
    generator = torch.Generator().manual_seed(seed + 1)
    fold = (torch.arange(len(y)) % folds)[torch.randperm(len(y), generator=generator)]
    probs = torch.empty(len(y), num_classes)
    epochs_done, trained = 0.0, 0.0
    for f in range(folds):
        train, held = fold != f, fold == f
        until = time.perf_counter() + max(0.0, deadline - time.perf_counter()) / (folds - f)
        with torch.random.fork_rng(devices=[]):  # seeded weights, the caller's RNG state untouched
            torch.manual_seed(seed + 2 + f)
            model = _network(x, num_classes)
        epochs, share = _fit(model, x[train], y[train], generator, until)
        epochs_done += epochs
        trained += share
        model.eval()
        with torch.no_grad():
            probs[held] = torch.cat([torch.softmax(model(x[held][i : i + 1024]), dim=1)
                                     for i in range(0, int(held.sum()), 1024)])
    return probs, epochs_done / folds, trained / folds


def _fit(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
         until: float) -> tuple[float, float]:
    """Adam on shuffled mini-batches for :data:`EPOCHS` epochs (at least :data:`MIN_STEPS` steps) or
    until ``until``; returns the epochs done (fractional) and the share of the planned steps done."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    per_epoch, planned = _planned_steps(len(y))
    steps = 0
    while steps < planned:
        order = torch.randperm(len(y), generator=generator)
        for first in range(0, len(y), BATCH_SIZE):
            if time.perf_counter() >= until:
                return steps / per_epoch, steps / planned
            batch = order[first : first + BATCH_SIZE]
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps >= planned:
                return steps / per_epoch, 1.0
    return steps / per_epoch, 1.0
