"""The npz layout: ``<split>.npz`` with arrays images|x|X and labels|y|targets, or one file with ``x_<split>``,
``y_<split>`` pairs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mlgate.data.layouts.base import (
    SUPPORTED,
    Dataset,
    DatasetLayoutError,
    Split,
    found_in,
    link_problem,
    ordered,
)
from mlgate.data.layouts.tensors import Part, TensorSplit

_IMAGE_KEYS = ("images", "x", "X")
_LABEL_KEYS = ("labels", "y", "targets")
_SPLIT_KEY = re.compile(r"^(?P<kind>images|image|x|X|labels|label|targets|target|y|Y)_(?P<split>\w+)$")


def open_npz(root: Path, paths: list[Path]) -> Dataset:
    """The splits stored in ``paths`` (the ``.npz`` files of ``root``, or the one file ``root`` named)."""
    if not paths:
        raise DatasetLayoutError(f"No .npz files in {root}: {found_in(root)}.", hint=SUPPORTED)
    splits: dict[str, Split] = {}
    for path in paths:
        not_read = link_problem(path, root)  # a symbolic link out of the data folder or to nowhere: listed
        if not_read is not None:
            splits[path.stem] = TensorSplit(path.stem, [Part(path.name, _Loader(path, "", ""), skipped=not_read)])
            continue
        for split, image_key, label_key in _arrays(path):
            if split in splits:
                raise DatasetLayoutError(
                    f"Split {split!r} is defined twice (again in {path.name}).",
                    hint="Use one <split>.npz per split, or one file with x_<split>/y_<split> arrays.",
                )
            part = Part(f"{path.name} [{image_key}, {label_key}]", _Loader(path, image_key, label_key))
            splits[split] = TensorSplit(split, [part])
    return Dataset(root, "npz", ordered(splits), None, list(paths))


def _arrays(path: Path) -> list[tuple[str, str, str]]:
    """(split, image key, label key) for each split stored in one ``.npz`` file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
    except (OSError, ValueError) as exc:
        raise DatasetLayoutError(f"Could not read {path.name}: {exc}", hint=SUPPORTED) from exc
    by_split: dict[str, dict[str, str]] = {}
    for key in keys:
        match = _SPLIT_KEY.match(key)
        if match:
            kind = "images" if match["kind"] in ("images", "image", "x", "X") else "labels"
            by_split.setdefault(match["split"], {})[kind] = key
    if by_split:
        for split, pair in by_split.items():
            if len(pair) != 2:
                raise DatasetLayoutError(
                    f"{path.name}: split {split!r} has only {next(iter(pair.values()))}.",
                    hint=f"Store both x_{split} and y_{split} (or images_{split} and labels_{split}).",
                )
        return [(split, pair["images"], pair["labels"]) for split, pair in by_split.items()]
    image_key = next((k for k in _IMAGE_KEYS if k in keys), None)
    label_key = next((k for k in _LABEL_KEYS if k in keys), None)
    if image_key is None or label_key is None:
        raise DatasetLayoutError(
            f"{path.name} has arrays {', '.join(keys) or '(none)'}; none of them is recognised.",
            hint="Name them images|x|X and labels|y|targets (split = file name), "
            "or x_train, y_train, x_test, y_test in one file.",
        )
    return [(path.stem, image_key, label_key)]


@dataclass(frozen=True)
class _Loader:
    """Loads one part: plain data (not a closure), so a worker process can be sent it and load the part."""

    path: Path
    image_key: str
    label_key: str

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        path, image_key, label_key = self.path, self.image_key, self.label_key
        try:
            with np.load(path, allow_pickle=False) as archive:
                images, labels = archive[image_key], archive[label_key]
        except (OSError, ValueError) as exc:  # ValueError: object arrays need pickle, which we refuse
            raise DatasetLayoutError(
                f"Could not read {image_key}/{label_key} from {path.name}: {exc}",
                hint="Save plain numeric arrays (np.savez), not object arrays.",
            ) from exc
        return torch.from_numpy(images), torch.from_numpy(labels)
