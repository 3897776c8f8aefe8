"""Tensor-backed splits, shared by the course and npz layouts: one part is one file (pair), loaded whole, then
sliced into batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from mlgate.data.layouts.base import Batch, DatasetLayoutError


@dataclass
class Part:
    describe: str  # the file names, for error messages
    load: Callable[[], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class TensorSplit:
    name: str
    parts: list[Part]

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        for part in self.parts:
            images, labels = part.load()
            labels = _as_labels(labels, part.describe)
            if images.ndim == 0 or images.shape[0] != labels.shape[0]:
                count = images.shape[0] if images.ndim else "a scalar instead of"
                raise DatasetLayoutError(
                    f"{part.describe}: {count} images but {labels.shape[0]} labels.",
                    hint="Each images file needs a labels file with one label per image.",
                )
            for start in range(0, images.shape[0], batch_size):
                yield Batch(images[start : start + batch_size], labels[start : start + batch_size])


def _as_labels(labels: object, describe: str) -> torch.Tensor:
    tensor = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(labels)
    if tensor.ndim == 2 and tensor.shape[1] == 1:  # keras-style (N, 1) label columns
        tensor = tensor[:, 0]
    if tensor.ndim != 1 or (tensor.is_floating_point() and not bool((tensor == tensor.round()).all())):
        raise DatasetLayoutError(
            f"{describe}: labels must be one integer per item, got shape {tuple(tensor.shape)} "
            f"and dtype {str(tensor.dtype).removeprefix('torch.')}.",
            hint="Store class indices (0..K-1), not one-hot vectors or probabilities.",
        )
    return tensor.to(torch.int64)
