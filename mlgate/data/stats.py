"""Dataset statistics in one streaming pass per split: counts, shapes, per-channel moments, labels,
non-finite items, exact duplicates, train/test leakage and conflicting labels.

Only per-item hashes (and the name of each distinct content's first item) are kept between batches,
so memory grows with the number of items (tens of bytes each), never with their size. Exact content
identity is the hash of (dtype, shape, raw bytes). Duplicates, leaked and conflicting items are
counted in full and listed up to :data:`MAX_LISTED_ITEMS` of each kind, by :data:`ItemId`; the pixels
of the first :data:`MAX_PICTURED_LEAKS` leaked items are kept for a picture.
Per-channel mean/std, min/max and the histogram are over the finite items; items holding NaN/Inf are
counted in ``nonfinite`` instead. ``channel_std`` is the population standard deviation (ddof=0).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from pydantic import BaseModel, Field, PrivateAttr

from mlgate.data.image_issues import ImageIssueAccumulator, ImageIssues
from mlgate.data.layouts import Batch, Dataset
from mlgate.data.near_duplicates import NearDuplicateFinder, NearDuplicateStats

HISTOGRAM_BINS = 64
MAX_LISTED_ITEMS = 100
"""Duplicate, leaked and conflicting items listed per kind (and split); each list carries its total."""
MAX_PICTURED_LEAKS = 8
"""Leaked items whose pixels :func:`compute_stats` keeps, for the picture of leaked pairs."""

ItemId = int | str
"""An item of a split: its index within the split (course, npz, dataset-class: the order the split is
read in, counted across shards), or for ImageFolder its file path relative to the data folder."""


class DuplicateItem(BaseModel):
    """An item that repeats an earlier item of its split. Items are indices within the split, or
    (ImageFolder) file paths relative to the data folder."""

    item: ItemId
    label: int
    first: ItemId
    """The first item of the split with the same content."""


class DuplicateItems(BaseModel):
    """Items repeating an earlier item of the same split: ``total`` of them, the first 100 (in reading
    order) listed. Exact copies form groups as near copies do: a group is one content held by two or
    more items, named by its ``first`` item."""

    total: int = 0
    groups: int = 0
    """Contents held by more than one item of the split (each group: its first item and its repeats)."""
    items: list[DuplicateItem] = []
    _every: list[DuplicateItem] = PrivateAttr(default_factory=list)

    @property
    def every(self) -> list[DuplicateItem]:
        """Every repeat, not only the first 100 (for a full list beside report.json; empty on statistics
        read back from it)."""
        return self._every


class LeakedItem(BaseModel):
    """An item whose exact content is also in ``train``, and the first ``train`` item with it."""

    item: ItemId
    label: int
    train_item: ItemId
    train_label: int


class LeakedItems(BaseModel):
    """Items of one split whose exact content is also in ``train``: ``total`` of them, the first 100
    (in reading order) listed."""

    total: int = 0
    items: list[LeakedItem] = []


class ConflictingItem(BaseModel):
    """One content that carries two labels: the first item labelled otherwise than the content's first
    item (``first_*``), which may be in another split."""

    split: str
    item: ItemId
    label: int
    first_split: str
    first_item: ItemId
    first_label: int


class ConflictingItems(BaseModel):
    """Distinct contents carrying more than one label: ``total`` of them, the first 100 listed."""

    total: int = 0
    items: list[ConflictingItem] = []


class SplitStats(BaseModel):
    count: int
    shape: list[int] | None
    shapes: dict[str, int]
    dtype: str
    channels: int | None
    min: float | None
    max: float | None
    channel_mean: list[float]
    channel_std: list[float]
    label_counts: dict[str, int]
    label_shares: dict[str, float]
    imbalance_ratio: float | None
    missing_classes: list[str]
    nonfinite: int
    unreadable: list[str]
    duplicates: int
    histogram: list[int]
    histogram_edges: list[float]
    duplicate_items: DuplicateItems = Field(default_factory=DuplicateItems)
    image_issues: ImageIssues = Field(default_factory=ImageIssues)
    """Constant, dark, bright, low-information, odd-sized items and more: :mod:`mlgate.data.image_issues`."""


class LeakageStats(BaseModel):
    train_test_exact_duplicates: int
    per_split: dict[str, int]
    conflicting_labels: int
    leaked_items: dict[str, LeakedItems] = {}
    """Per non-train split, its items that are also in ``train``."""
    conflicting_items: ConflictingItems = Field(default_factory=ConflictingItems)


class DatasetStats(BaseModel):
    layout: str
    class_names: list[str] | None
    splits: dict[str, SplitStats]
    leakage: LeakageStats
    near_duplicates: NearDuplicateStats = Field(default_factory=NearDuplicateStats)
    """Near-duplicates within splits and near copies of train items: :mod:`mlgate.data.near_duplicates`."""


@dataclass(frozen=True)
class LeakedPixels:
    """A leaked item and its pixels, for the picture of leaked pairs. The train copy's pixels are the
    same bytes (an exact copy), so one tensor serves both sides."""

    split: str
    item: ItemId
    label: int
    train_item: ItemId
    train_label: int
    image: torch.Tensor


def compute_stats(
    dataset: Dataset, *, samples_per_class: int = 4, batch_size: int = 4096,
    progress: Callable[[int], None] | None = None, near_duplicates: NearDuplicateFinder | None = None,
) -> tuple[DatasetStats, dict[int, torch.Tensor], list[LeakedPixels]]:
    """Statistics of every split; up to ``samples_per_class`` images per label of the train split
    (the first split when there is no train) stacked as ``(k, *item_shape)`` for a sample grid; and
    the first :data:`MAX_PICTURED_LEAKS` leaked items with their pixels. ``progress`` is called after
    every batch with the number of items read so far (all splits). ``near_duplicates`` is fed every
    batch in the same pass; its search (:meth:`NearDuplicateFinder.result`) is the caller's to run, so
    that it can overlap with drawing the figures."""
    near = near_duplicates
    sample_split = "train" if "train" in dataset.splits else next(iter(dataset.splits), None)
    accumulators: dict[str, _SplitAccumulator] = {}
    identity = _Identity()
    samples = _Samples(samples_per_class if sample_split else 0)
    read = 0
    # train first (the loader orders it so), so every other split can be checked against its hashes
    for name in sorted(dataset.splits, key=lambda n: n != "train"):
        acc = accumulators[name] = _SplitAccumulator()
        identity.start(name)
        if near is not None:
            near.start(name)
        for batch in dataset.splits[name].batches(batch_size):
            keys = acc.add(batch)
            read += len(keys)
            if progress is not None:
                progress(read)
            if name == sample_split:
                samples.add(batch)
            identity.add(batch, keys)
            if near is not None:
                near.add(batch.images, batch.labels, keys, batch.ids)
    present = {label for acc in accumulators.values() for label in acc.labels}
    universe = present | set(range(len(dataset.class_names or [])))
    splits = {name: accumulators[name].result(universe, identity.duplicates[name]) for name in dataset.splits}
    per_split = {name: leaked.total for name, leaked in identity.leaked.items()}
    leakage = LeakageStats(
        train_test_exact_duplicates=sum(per_split.values()),
        per_split=per_split,
        conflicting_labels=identity.conflicting.total,
        leaked_items=identity.leaked,
        conflicting_items=identity.conflicting,
    )
    stats = DatasetStats(
        layout=dataset.layout, class_names=dataset.class_names, splits=splits, leakage=leakage
    )
    return stats, samples.result(), identity.pixels


class _Identity:
    """Exact content identity across splits, one batch at a time: duplicates within a split, items
    also in train (leaks), contents with two labels (conflicts). Keeps, per split, each distinct
    content's key and first item; everything else it keeps is bounded."""

    def __init__(self) -> None:
        self.first_label: dict[bytes, int] = {}
        self.seen: dict[str, dict[bytes, ItemId]] = {}  # split (in reading order) -> key -> first item
        self.conflicts: set[bytes] = set()
        self.duplicates: dict[str, DuplicateItems] = {}
        self.repeated: dict[str, set[bytes]] = {}  # split -> contents seen more than once in it
        self.leaked: dict[str, LeakedItems] = {}
        self.conflicting = ConflictingItems()
        self.pixels: list[LeakedPixels] = []
        self.split = ""
        self.position = 0

    def start(self, split: str) -> None:
        self.split, self.position = split, 0
        self.seen[split] = {}
        self.duplicates[split] = DuplicateItems()
        if split != "train" and "train" in self.seen:
            self.leaked[split] = LeakedItems()

    def add(self, batch: Batch, keys: list[bytes]) -> None:
        rows = len(keys)
        ids: Sequence[ItemId] = batch.ids if batch.ids is not None else range(self.position, self.position + rows)
        self.position += rows
        seen, first_label = self.seen[self.split], self.first_label
        train = self.seen.get("train") if self.split in self.leaked else None
        duplicates = self.duplicates[self.split]
        repeated = self.repeated.setdefault(self.split, set())
        for key, label, item in zip(keys, batch.labels.tolist(), ids, strict=True):
            first = seen.setdefault(key, item)
            if first is not item:  # items are unique within a split: another object is another item
                duplicates.total += 1
                repeat = DuplicateItem(item=item, label=label, first=first)
                duplicates.every.append(repeat)
                if key not in repeated:
                    repeated.add(key)
                    duplicates.groups += 1
                if len(duplicates.items) < MAX_LISTED_ITEMS:
                    duplicates.items.append(repeat)
            if train is not None:
                source = train.get(key)
                if source is not None:
                    self._leak(batch, ids, item, label, source, first_label[key])
            if first_label.setdefault(key, label) != label and key not in self.conflicts:
                self._conflict(key, item, label)

    def _leak(self, batch: Batch, ids: Sequence[ItemId], item: ItemId, label: int, source: ItemId,
              source_label: int) -> None:
        leaked = self.leaked[self.split]
        leaked.total += 1
        if len(leaked.items) < MAX_LISTED_ITEMS:
            leaked.items.append(LeakedItem(item=item, label=label, train_item=source, train_label=source_label))
        if len(self.pixels) < MAX_PICTURED_LEAKS:
            self.pixels.append(
                LeakedPixels(self.split, item, label, source, source_label, batch.images[ids.index(item)].clone())
            )

    def _conflict(self, key: bytes, item: ItemId, label: int) -> None:
        self.conflicts.add(key)
        self.conflicting.total += 1
        if len(self.conflicting.items) < MAX_LISTED_ITEMS:
            # the first split (in reading order) that holds the content is where it was first seen
            first_split = next(split for split, keys in self.seen.items() if key in keys)
            self.conflicting.items.append(ConflictingItem(
                split=self.split, item=item, label=label, first_split=first_split,
                first_item=self.seen[first_split][key], first_label=self.first_label[key],
            ))


# ---------------------------------------------------------------------------------------------------
# Content hashes


def _blake2b_rows(signature: str, data: memoryview, rows: int, size: int) -> list[bytes]:
    base = hashlib.blake2b(signature.encode(), digest_size=16)
    keys = []
    for i in range(rows):
        h = base.copy()
        h.update(data[i * size : (i + 1) * size])
        keys.append(h.digest())
    return keys


def _hasher() -> Callable[[str, memoryview, int, int], list[bytes]]:
    try:
        import xxhash  # ~10x faster than blake2b; installed with wandb, optional here
    except ImportError:
        return _blake2b_rows

    def xxh3_rows(signature: str, data: memoryview, rows: int, size: int) -> list[bytes]:
        seed = xxhash.xxh64_intdigest(signature.encode())
        digest = xxhash.xxh3_128_digest
        return [digest(data[i * size : (i + 1) * size], seed) for i in range(rows)]

    return xxh3_rows


_hash_rows = _hasher()


def item_keys(images: torch.Tensor) -> list[bytes]:
    """One 128-bit key per item of ``images`` (dim 0), equal exactly when dtype, shape and bytes are."""
    rows = images.shape[0]
    raw = images.contiguous().view(torch.uint8).reshape(rows, -1).numpy()
    signature = f"{_dtype_name(images.dtype)}|{tuple(images.shape[1:])}"
    return _hash_rows(signature, raw.data.cast("B"), rows, raw.shape[1])


# ---------------------------------------------------------------------------------------------------
# Per-split accumulation


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _shape_key(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def _common_shape(shapes: Counter[str]) -> list[int] | None:
    if len(shapes) != 1:
        return None
    key = next(iter(shapes))
    return [] if key == "scalar" else [int(d) for d in key.split("x")]


def _channel_axis(item_shape: tuple[int, ...]) -> int | None:
    """Channel axis of an item: 0 for (C, H, W), -1 for (H, W, C) with C in 1/3/4, None for (H, W)."""
    if len(item_shape) < 3:
        return None
    if item_shape[0] not in (1, 3, 4) and item_shape[-1] in (1, 3, 4):
        return -1
    return 0


@dataclass
class _Moments:
    """Per-channel sums of finite pixels, in float64."""

    total: np.ndarray
    squares: np.ndarray
    pixels: int = 0  # per channel


@dataclass
class _SplitAccumulator:
    count: int = 0
    shapes: Counter[str] = field(default_factory=Counter)
    dtypes: list[str] = field(default_factory=list)
    moments: dict[int, _Moments] = field(default_factory=dict)  # channel count -> sums
    low: float = math.inf
    high: float = -math.inf
    histogram: _Histogram = field(default_factory=lambda: _Histogram())
    labels: Counter[int] = field(default_factory=Counter)
    nonfinite: int = 0
    unreadable: list[str] = field(default_factory=list)
    image_issues: ImageIssueAccumulator = field(default_factory=ImageIssueAccumulator)

    def add(self, batch: Batch) -> list[bytes]:
        """Fold one batch in; return its items' content keys (the caller tracks identity across splits)."""
        self.unreadable.extend(batch.unreadable)
        images = batch.images
        rows = images.shape[0] if images.ndim else 0
        if rows == 0:
            return []
        item_shape = tuple(images.shape[1:])
        self.count += rows
        self.shapes[_shape_key(item_shape)] += rows
        if _dtype_name(images.dtype) not in self.dtypes:
            self.dtypes.append(_dtype_name(images.dtype))
        values, counts = torch.unique(batch.labels, return_counts=True)
        self.labels.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        keys = item_keys(images)
        if images.dtype == torch.bool:
            images = images.view(torch.uint8)
        axis = _channel_axis(item_shape)
        channels = 1 if axis is None else item_shape[axis]
        # (B, C, P) or (B, P, C): pixels of each channel along one dimension
        grouped = images.reshape(rows, channels, -1) if axis != -1 else images.reshape(rows, -1, channels)
        pixel_dim = 2 if axis != -1 else 1
        levels = None
        if images.dtype == torch.uint8:
            levels = self._add_uint8(grouped, channels, axis)
        else:
            self._add_values(grouped, channels, pixel_dim)
        self.image_issues.add(batch.images, axis, batch.ids, self.count - rows, levels=levels)
        return keys

    def _moments(self, channels: int) -> _Moments:
        if channels not in self.moments:
            self.moments[channels] = _Moments(np.zeros(channels), np.zeros(channels))
        return self.moments[channels]

    def _add_uint8(self, grouped: torch.Tensor, channels: int, axis: int | None) -> torch.Tensor | None:
        """Returns, for single-channel items, each item's count of every value ``(B, 256)`` (the image
        issues read it); None otherwise."""
        # Exact and fast: one bincount per channel gives sums, squares, range and histogram. With one
        # channel, a bin per item and value costs the same bincount and serves the image issues too.
        rows = grouped.shape[0]
        if channels == 1:
            offsets = (torch.arange(rows, dtype=torch.int32) * 256).view(rows, 1, 1)
        else:
            offsets = torch.arange(channels, dtype=torch.int32) * 256
            offsets = offsets.view(1, 1, channels) if axis == -1 else offsets.view(1, channels, 1)
        indices = (grouped.to(torch.int32) + offsets).reshape(-1)
        per_item = None
        if channels == 1:
            per_item = torch.bincount(indices, minlength=256 * rows).reshape(rows, 256)
            counts = per_item.sum(dim=0, keepdim=True).double().numpy()
        else:
            counts = torch.bincount(indices, minlength=256 * channels).reshape(channels, 256).double().numpy()
        levels = np.arange(256, dtype=np.float64)
        moments = self._moments(channels)
        moments.total += counts @ levels
        moments.squares += counts @ (levels * levels)
        moments.pixels += grouped.numel() // channels
        per_level = counts.sum(0)
        used = np.nonzero(per_level)[0]
        self.low, self.high = min(self.low, float(used[0])), max(self.high, float(used[-1]))
        self.histogram.add_weighted(levels[used], per_level[used])
        return per_item

    def _add_values(self, grouped: torch.Tensor, channels: int, pixel_dim: int) -> None:
        wide = grouped.to(torch.float64)
        item_sums = wide.sum(dim=pixel_dim)  # (B, C); NaN/Inf anywhere in an item shows up here
        finite = torch.isfinite(item_sums).all(dim=1)
        if not bool(finite.all()):
            finite = torch.isfinite(grouped.reshape(grouped.shape[0], -1)).all(dim=1)
            self.nonfinite += int((~finite).sum())
            grouped, wide, item_sums = grouped[finite], wide[finite], item_sums[finite]
            if grouped.shape[0] == 0:
                return
        moments = self._moments(channels)
        moments.total += item_sums.sum(dim=0).numpy()
        if channels == 1:
            flat = wide.reshape(-1)
            moments.squares += float(torch.dot(flat, flat))
        else:
            moments.squares += (wide * wide).sum(dim=(0, pixel_dim)).numpy()
        moments.pixels += grouped.numel() // channels
        low, high = torch.aminmax(grouped)
        self.low, self.high = min(self.low, float(low)), max(self.high, float(high))
        exact = grouped if grouped.dtype in (torch.float32, torch.float64) else wide
        self.histogram.add(exact, float(low), float(high))

    def result(self, universe: set[int], duplicates: DuplicateItems) -> SplitStats:
        mean, std = self._mean_std()
        total = sum(self.labels.values())
        present = sorted(self.labels)
        counts = {str(label): self.labels[label] for label in present}
        edges, histogram = self.histogram.result()
        return SplitStats(
            count=self.count,
            shape=_common_shape(self.shapes),
            shapes=dict(self.shapes),
            dtype=",".join(self.dtypes) or "unknown",
            channels=next(iter(self.moments)) if len(self.moments) == 1 else None,
            min=self.low if math.isfinite(self.low) else None,
            max=self.high if math.isfinite(self.high) else None,
            channel_mean=mean,
            channel_std=std,
            label_counts=counts,
            label_shares={label: count / total for label, count in counts.items()},
            imbalance_ratio=max(self.labels.values()) / min(self.labels.values()) if self.labels else None,
            missing_classes=[str(label) for label in sorted(universe - set(self.labels))],
            nonfinite=self.nonfinite,
            unreadable=self.unreadable,
            duplicates=duplicates.total,
            histogram=histogram,
            histogram_edges=edges,
            duplicate_items=duplicates,
            image_issues=self.image_issues.result(),
        )

    def _mean_std(self) -> tuple[list[float], list[float]]:
        """Per channel when every item had the same channel count; else one value over all pixels."""
        groups = list(self.moments.values())
        if len(groups) == 1:
            total, squares, pixels = groups[0].total, groups[0].squares, groups[0].pixels
        else:
            total = np.array([sum(float(g.total.sum()) for g in groups)])
            squares = np.array([sum(float(g.squares.sum()) for g in groups)])
            pixels = sum(g.pixels * len(g.total) for g in groups)
        if pixels == 0:
            return [], []
        mean = total / pixels
        variance = np.maximum(squares / pixels - mean * mean, 0.0)
        return mean.tolist(), np.sqrt(variance).tolist()


class _Histogram:
    """A 64-bin histogram on an aligned power-of-two grid that widens as new values arrive.

    Bins are [j*w, (j+1)*w) for integers j and w = 2**e, so widening (doubling w) merges bin pairs
    exactly and no earlier count is approximated. It starts as [0, 1] (w = 1/64): float data within
    [0, 1] keeps exactly that range and uint8 widens to [0, 256] (w = 4), so splits stay comparable.
    """

    def __init__(self) -> None:
        self.width = 2.0**-6
        self.start = 0
        self.counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self.empty = True

    def _cover(self, low: float, high: float) -> None:
        while True:
            first = math.floor(low / self.width)
            last = max(first, math.ceil(high / self.width) - 1)
            used = np.nonzero(self.counts)[0]
            if used.size:
                first, last = min(first, self.start + int(used[0])), max(last, self.start + int(used[-1]))
            if last - first < HISTOGRAM_BINS or self.width > 2.0**1000:
                break
            self._move(self.start // 2, halve=True)
        self._move(min(max(self.start, last - HISTOGRAM_BINS + 1), first), halve=False)

    def _move(self, start: int, *, halve: bool) -> None:
        counts = np.zeros_like(self.counts)
        for offset in np.nonzero(self.counts)[0]:
            absolute = self.start + int(offset)
            counts[(absolute // 2 if halve else absolute) - start] += self.counts[offset]
        if halve:
            self.width *= 2
        self.start, self.counts = start, counts

    def _bin_of(self, values: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(values / self.width).astype(np.int64) - self.start, 0, HISTOGRAM_BINS - 1)

    def add_weighted(self, values: np.ndarray, weights: np.ndarray) -> None:
        self._cover(float(values.min()), float(values.max()))
        self.counts += np.bincount(self._bin_of(values), weights=weights, minlength=HISTOGRAM_BINS).astype(
            np.int64
        )
        self.empty = False

    def add(self, values: torch.Tensor, low: float, high: float) -> None:
        """Count ``values``, all of them within [low, high]."""
        self._cover(low, high)
        # Bin index = floor(x / w) - start: w is a power of two, so the scaling is exact, and after
        # _cover every index is in [0, 64]; 64 (x on the top edge) belongs to the last bin, as in histc.
        # Twice as fast as torch.histc.
        scaled = values * (1.0 / self.width)
        if self.start:
            scaled -= self.start
        counts = torch.bincount(scaled.to(torch.uint8).reshape(-1), minlength=HISTOGRAM_BINS + 1).numpy()
        counts[HISTOGRAM_BINS - 1] += counts[HISTOGRAM_BINS:].sum()
        self.counts += counts[:HISTOGRAM_BINS]
        self.empty = False

    def result(self) -> tuple[list[float], list[int]]:
        if self.empty:
            return [], []
        edges = [(self.start + i) * self.width for i in range(HISTOGRAM_BINS + 1)]
        return edges, self.counts.tolist()


@dataclass
class _Samples:
    per_class: int
    images: dict[int, list[torch.Tensor]] = field(default_factory=dict)

    def add(self, batch: Batch) -> None:
        if self.per_class == 0 or batch.images.ndim == 0 or batch.images.shape[0] == 0:
            return
        for label in torch.unique(batch.labels).tolist():
            kept = self.images.setdefault(label, [])
            # a sample grid needs one shape per class: keep the shape of the first sample seen
            if len(kept) >= self.per_class or (kept and kept[0].shape != batch.images.shape[1:]):
                continue
            rows = torch.nonzero(batch.labels == label)[: self.per_class - len(kept), 0]
            kept.extend(image.clone() for image in batch.images[rows])

    def result(self) -> dict[int, torch.Tensor]:
        return {label: torch.stack(images) for label, images in sorted(self.images.items()) if images}
