"""What every layout returns (:class:`Dataset` of :class:`Split` s of :class:`Batch` es) and shares.

Import these from :mod:`mlgate.data.layouts`; this module exists so the layout modules can use them
without importing the package that imports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from mlgate.errors import MlgateError

SUPPORTED = """Supported layouts (set the layout input to force one):
  course        train_images_0.pt  train_target_0.pt  train_images_1.pt  train_target_1.pt
                test_images.pt     test_target.pt      (any <split>_images[_<i>].pt / <split>_target[_<i>].pt)
  imagefolder   train/<class>/<image>.png  test/<class>/<image>.jpg   (or <class>/<image>.png = one split)
  npz           train.npz  test.npz  (arrays images|x|X and labels|y|targets)
                or one file with x_train, y_train, x_test, y_test
  dataset-class set dataset-class: pkg.module:Class
                (instantiated with train=True/False or split="train"/"test", and root=<data path>)"""
"""The hint of every "which layout is this?" error."""


class DatasetLayoutError(MlgateError):
    """Raised when a data folder matches no supported layout, or its files contradict the layout."""

    title = "Unrecognised dataset layout"


@dataclass(frozen=True)
class Batch:
    """Up to ``batch_size`` items of one split that share one per-item shape and dtype.

    ``images`` is empty (shape ``(0,)``) when every file of an ImageFolder chunk was unreadable.
    ``ids`` names each item where the layout has a name for it (ImageFolder: the file path relative
    to the data folder, ``train/cat/001.png``); ``None`` means an item is named by its index within
    the split, counted in the order :meth:`Split.batches` yields the items.
    """

    images: torch.Tensor
    labels: torch.Tensor
    unreadable: tuple[str, ...] = ()
    ids: tuple[str, ...] | None = None


class Split(Protocol):
    name: str

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]: ...


@dataclass
class Dataset:
    root: Path
    layout: str
    splits: dict[str, Split]
    class_names: list[str] | None
    files: list[Path]


def found_in(root: Path, limit: int = 8) -> str:
    """What ``root`` holds, for an error message: ``found a.csv, b/ (and 3 more)``."""
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    if not entries:
        return "the folder is empty"
    more = f" (and {len(entries) - limit} more)" if len(entries) > limit else ""
    return "found " + ", ".join(entries[:limit]) + more


def ordered(splits: dict[str, Split]) -> dict[str, Split]:
    """Train first, then the other splits by name, so consumers can rely on ``train`` coming first."""
    return {name: splits[name] for name in sorted(splits, key=lambda n: (n != "train", n))}
