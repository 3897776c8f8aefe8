"""Open a dataset folder without user code: course shards, ImageFolder, ``.npz`` or a user Dataset class.

The one place to import datasets from: :func:`open_dataset`, the values it returns (:class:`Dataset`,
:class:`Split`, :class:`Batch`) and its errors. One module per layout holds how that layout is found
and read (:mod:`.course`, :mod:`.imagefolder`, :mod:`.npz`, :mod:`.dataset_class`; :mod:`.tensors`
is the split the course and npz layouts share, :mod:`.base` the values every layout returns).

:func:`open_dataset` only looks at names (and, for a user class, instantiates it); the data is read
when a split's :meth:`Split.batches` is iterated, one bounded batch at a time, so a 200,000-image
ImageFolder never sits in memory at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from mlgate.data.layouts.base import SUPPORTED, Batch, DataPathMissing, Dataset, DatasetLayoutError, Split, found_in
from mlgate.data.layouts.course import IMAGES_GLOB, open_course
from mlgate.data.layouts.dataset_class import DatasetClassError, open_dataset_class
from mlgate.data.layouts.imagefolder import IMAGE_SUFFIXES, open_imagefolder, split_folders
from mlgate.data.layouts.npz import open_npz
from mlgate.settings import Layout

__all__ = [
    "IMAGE_SUFFIXES",
    "LAYOUTS",
    "Batch",
    "Dataset",
    "DatasetClassError",
    "DatasetLayoutError",
    "Layout",
    "Split",
    "open_dataset",
]

LAYOUTS: tuple[str, ...] = get_args(Layout)


def open_dataset(
    root: Path,
    layout: Layout = "auto",
    *,
    dataset_class: str | None = None,
    import_root: Path | None = None,
) -> Dataset:
    """Recognise (or apply the forced) ``layout`` of ``root`` and return its lazily-read splits.

    Raises :class:`DatasetLayoutError` when ``root`` is missing or matches no layout, and
    :class:`DatasetClassError` when ``dataset_class`` cannot be imported or constructed.
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise DatasetLayoutError(f"Unknown layout {layout!r}.", hint=f"Use one of: {', '.join(LAYOUTS)}.")
    if layout == "dataset-class" or (layout == "auto" and dataset_class):
        if not dataset_class:
            raise DatasetClassError(
                "layout is dataset-class but no dataset class was given.",
                hint="Set dataset-class: pkg.module:Class (importable from the repository root).",
            )
        return open_dataset_class(root, dataset_class, import_root)
    if not root.exists():
        raise DataPathMissing(
            f"Data path {root} does not exist.",
            hint="Point the data path at the folder that holds the dataset, relative to the repository root "
                 "(with DVC: the tracked folder, the `.dvc` file's path without `.dvc`).",
        )
    if root.is_file() and root.suffix == ".npz" and layout in ("auto", "npz"):
        return open_npz(root.parent, [root])
    if layout == "auto":
        layout = _detect(root)
    if layout == "course":
        return open_course(root)
    if layout == "npz":
        return open_npz(root, sorted(root.glob("*.npz")))
    return open_imagefolder(root)


def _detect(root: Path) -> Layout:
    if not root.is_dir():
        raise DatasetLayoutError(f"Data path {root} is a file, not a dataset folder.", hint=SUPPORTED)
    if any(root.glob(IMAGES_GLOB)):
        return "course"
    if any(root.glob("*.npz")):
        return "npz"
    skipped: list[str] = []
    if split_folders(root, skipped):
        return "imagefolder"
    not_followed = f" (not followed: {', '.join(skipped)})" if skipped else ""
    raise DatasetLayoutError(
        f"Could not recognise the dataset layout of {root}: {found_in(root)}{not_followed}.", hint=SUPPORTED
    )
