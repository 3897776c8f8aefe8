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
                empty = torch.empty(0, dtype=torch.uint8)
                yield Batch(empty, torch.empty(0, dtype=torch.int64), (f"{part.describe} ({part.skipped})",))
                continue
            images, labels = part.load()
            labels = _as_labels(labels, part.describe, self.name, position)
            if images.ndim == 0 or images.shape[0] != labels.shape[0]:
                count = images.shape[0] if images.ndim else "a scalar instead of"
                raise DatasetLayoutError(
                    f"Split {self.name!r}: {part.describe}: {count} images but {labels.shape[0]} labels.",
                    hint="Each images file needs a labels file with one label per image.",
                )
            check_labels(labels, self.name, position, part.describe)  # before int64: 1e300 would wrap
            labels = labels.to(torch.int64)
            position += images.shape[0]
            for start in range(0, images.shape[0], batch_size):
                yield Batch(images[start : start + batch_size], labels[start : start + batch_size])


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
