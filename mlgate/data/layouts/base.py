"""What every layout returns (:class:`Dataset` of :class:`Split` s of :class:`Batch` es) and shares.

Import these from :mod:`mlgate.data.layouts`; this module exists so the layout modules can use them
without importing the package that imports them.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from mlgate.errors import MlgateError

MAX_LABEL = 2**20
"""Labels are class indices in ``[0, MAX_LABEL)``: a negative label is not a class, and a label of
2**40 would make every per-class table (counts, confusion matrix) try to allocate terabytes."""

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


class DataPathMissing(DatasetLayoutError):
    """Raised when the data path names nothing (a typo, or the data not pulled)."""

    title = "Data path not found"


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


def check_labels(labels: torch.Tensor, split: str, first_index: int, where: str) -> None:
    """Raise :class:`DatasetLayoutError` naming the first label of ``labels`` outside ``[0, MAX_LABEL)``.

    ``first_index`` is the split index of ``labels[0]``; ``where`` names the file(s) or class read.
    """
    if labels.numel() == 0:
        return
    # compare in a wide dtype: a uint8 tensor compares with 2**20 as with 0
    wide = labels.double() if labels.is_floating_point() else labels.to(torch.int64)
    bad = (wide < 0) | (wide >= MAX_LABEL)
    if not bool(bad.any()):
        return
    offset = int(torch.nonzero(bad)[0, 0])
    value = labels[offset].item()
    raise DatasetLayoutError(
        f"Split {split!r}: label {value} of item {first_index + offset} ({where}) is outside [0, {MAX_LABEL:,}).",
        hint=f"Labels must be class indices 0..K-1 (K at most {MAX_LABEL:,}); "
        "remap negative or sparse ids (e.g. with np.unique(labels, return_inverse=True)).",
    )


def is_outside(path: Path | str, root: Path) -> bool:
    """Whether ``path`` (inside ``root`` by name) leads out of ``root`` once symlinks are followed.

    A target under a ``.dvc/cache`` next to ``root`` or one of its ancestors stays allowed: DVC's
    ``symlink`` cache type makes every data file such a link.
    """
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(path))
    if target == real_root or real_root in target.parents:
        return False
    return not any(
        (ancestor / ".dvc" / "cache") in target.parents for ancestor in (real_root, *real_root.parents)
    )


OUTSIDE = "a symlink to outside the data folder, not followed"
"""The reason listed for a file or folder :func:`is_outside` the data folder."""

_MAX_HOPS = 256  # links followed one by one to tell a loop from a long chain (the kernel gives up at 40)


def broken_link(path: Path | str) -> str | None:
    """Why the symbolic link ``path`` leads nowhere: it loops, its chain is longer than the system
    follows, or its target does not exist; None when it leads to a file or folder (or is no link).

    The reason is listed like :data:`OUTSIDE`; opening such a path raises ``OSError`` (ELOOP, ENOENT),
    which would otherwise surface as a bug or as an unreadable file with no why.
    """
    try:
        os.stat(path)
    except OSError as exc:
        if not os.path.islink(path):
            return None
        if exc.errno == errno.ELOOP:
            return _loop_or_chain(os.fspath(path))
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "a dangling symbolic link (its target does not exist), not followed"
        return f"a symbolic link that cannot be followed ({exc.strerror}), not followed"
    return None


def _loop_or_chain(path: str) -> str:
    seen = {os.path.abspath(path)}
    current = path
    for hops in range(1, _MAX_HOPS + 1):
        try:
            target = os.readlink(current)
        except OSError:  # a link inside the path itself: the kernel said loop, so say that
            break
        current = os.path.abspath(os.path.join(os.path.dirname(current), target))
        if current in seen:
            return "a symbolic link loop (it leads back to itself), not followed"
        seen.add(current)
        if not os.path.islink(current):
            return f"a chain of {hops} symbolic links, more than the system follows, not followed"
    return "a symbolic link loop (or a chain of links too long to follow), not followed"


def link_problem(path: Path | str, root: Path) -> str | None:
    """Why ``path`` (a file or folder of the data folder ``root``) is listed instead of read: a symbolic
    link that leads nowhere (:func:`broken_link`) or out of ``root`` (:data:`OUTSIDE`); None otherwise."""
    if not os.path.islink(path):
        return None
    return broken_link(path) or (OUTSIDE if is_outside(path, root) else None)


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
