"""Tensor-backed splits, shared by the course and npz layouts: one part is one file (pair), loaded whole, then
sliced into batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from mlgate.data.layouts.base import Batch, DatasetLayoutError, check_labels


@dataclass
class Part:
    describe: str  # the file names, for error messages
    load: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    skipped: str | None = None
    """Why the part is not read (a file is a symlink out of the data folder); listed as unreadable."""


@dataclass
class TensorSplit:
    name: str
    parts: list[Part]

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        position = 0  # split index of the part's first item
        for part in self.parts:
            if part.skipped is not None:
                yield _skipped(part)
                continue
            images, labels = _checked(part, self.name, position)
            position += images.shape[0]
            for start in range(0, images.shape[0], batch_size):
                yield Batch(images[start : start + batch_size], labels[start : start + batch_size])

    def shards(self, sizes: Iterator[int]) -> list[TensorShard]:
        """The split cut into row ranges of ``sizes`` rows, never across parts (one shard per skipped or
        empty part). Each part is loaded here once (memory-mapped for course files) to learn its rows."""
        shards: list[TensorShard] = []
        position = 0
        for part in self.parts:
            if part.skipped is not None:
                shards.append(TensorShard(self.name, part, position, 0, 0))
                continue
            images, _ = part.load()
            rows = images.shape[0] if images.ndim else 0
            start = 0
            while True:
                stop = min(rows, start + max(1, next(sizes)))
                shards.append(TensorShard(self.name, part, position, start, stop))
                start = stop
                if start >= rows:
                    break
            position += rows
        return shards or [TensorShard(self.name, None, 0, 0, 0)]


@dataclass
class TensorShard:
    """Rows ``[start, stop)`` of one part of a split (whose first item is item ``position`` of the split):
    plain data, so a worker process can load and read it."""

    split: str
    part: Part | None  # None: the split has no parts
    position: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        if self.part is None:
            return
        if self.part.skipped is not None:
            yield _skipped(self.part)
            return
        images, labels = _checked(self.part, self.split, self.position)
        for start in range(self.start, self.stop, batch_size):
            stop = min(self.stop, start + batch_size)
            yield Batch(images[start:stop], labels[start:stop])


def _skipped(part: Part) -> Batch:
    empty = torch.empty(0, dtype=torch.uint8)
    return Batch(empty, torch.empty(0, dtype=torch.int64), (f"{part.describe} ({part.skipped})",))


def _checked(part: Part, split: str, position: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The part's images and int64 labels, after checking one whole-number label per image."""
    images, labels = part.load()
    labels = _as_labels(labels, part.describe, split, position)
    if images.ndim == 0 or images.shape[0] != labels.shape[0]:
        count = images.shape[0] if images.ndim else "a scalar instead of"
        raise DatasetLayoutError(
            f"Split {split!r}: {part.describe}: {count} images but {labels.shape[0]} labels.",
            hint="Each images file needs a labels file with one label per image.",
        )
    check_labels(labels, split, position, part.describe)  # before int64: 1e300 would wrap
    return images, labels.to(torch.int64)


def _as_labels(labels: object, describe: str, split: str, position: int) -> torch.Tensor:
    """``labels`` as a 1-D tensor of whole numbers (not yet range-checked); ``position`` is the split index
    of its first item."""
    tensor = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(labels)
    if tensor.ndim == 2 and tensor.shape[1] == 1:  # keras-style (N, 1) label columns
        tensor = tensor[:, 0]
    if tensor.ndim != 1 or tensor.is_complex():
        raise DatasetLayoutError(
            f"Split {split!r}: {describe}: labels must be one integer per item, got shape {tuple(tensor.shape)} "
            f"and dtype {str(tensor.dtype).removeprefix('torch.')}.",
            hint="Store class indices (0..K-1), not one-hot vectors or probabilities.",
        )
    if tensor.is_floating_point():
        fractional = ~(tensor == tensor.round())  # NaN included; Inf is whole, and out of range
        if bool(fractional.any()):
            index = int(torch.nonzero(fractional)[0, 0])
            raise DatasetLayoutError(
                f"Split {split!r}: label {tensor[index].item()} of item {position + index} ({describe}) "
                f"is not an integer (dtype {str(tensor.dtype).removeprefix('torch.')}).",
                hint="Store class indices (0..K-1), not one-hot vectors or probabilities.",
            )
    return tensor
