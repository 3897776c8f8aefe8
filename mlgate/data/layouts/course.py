"""The course layout: ``<split>_images[_<i>].pt`` shards, each with a ``<split>_target[_<i>].pt`` next to it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

IMAGES_GLOB = "*_images*.pt"
"""A folder with a file matching this is detected as the course layout."""

_IMAGES = re.compile(r"^(?P<split>.+?)_images(?:_(?P<index>\d+))?\.pt$")
_TARGETS = ("target", "targets", "labels")


def open_course(root: Path) -> Dataset:
    found: dict[str, list[tuple[int, Path]]] = {}
    for path in root.glob(IMAGES_GLOB):
        match = _IMAGES.match(path.name)
        if match:
            index = int(match["index"]) if match["index"] is not None else -1
            found.setdefault(match["split"], []).append((index, path))
    if not found:
        raise DatasetLayoutError(
            f"No course-layout files in {root}: {found_in(root)}.",
            hint="Expected <split>_images[_<i>].pt with <split>_target[_<i>].pt next to it.\n" + SUPPORTED,
        )
    splits: dict[str, Split] = {}
    files: list[Path] = []
    for split, shards in found.items():
        parts = []
        for _, images_path in sorted(shards, key=lambda shard: shard[0]):  # numeric: 10 after 9
            targets_path = _targets(images_path)
            files += [images_path, targets_path]
            # a file that is a symbolic link out of the data folder or to nowhere is listed, not read
            parts.append(Part(f"{images_path.name} / {targets_path.name}", _Loader(images_path, targets_path),
                              skipped=_not_read(images_path, targets_path, root)))
        splits[split] = TensorSplit(split, parts)
    return Dataset(root, "course", ordered(splits), None, files)


def _not_read(images_path: Path, targets_path: Path, root: Path) -> str | None:
    """Why a shard pair is listed instead of read: the reason of its one file that is such a link (the
    reason alone, as for a link out of the folder), or of each, by name, when both are."""
    problems = {path.name: problem for path in (images_path, targets_path)
                if (problem := link_problem(path, root)) is not None}
    if len(set(problems.values())) <= 1:
        return next(iter(problems.values()), None)
    return "; ".join(f"{name}: {problem}" for name, problem in problems.items())


def _targets(images_path: Path) -> Path:
    name = images_path.name
    candidates = [images_path.with_name(name.replace("_images", f"_{kind}", 1)) for kind in _TARGETS]
    for candidate in candidates:
        if candidate.is_file() or candidate.is_symlink():  # a link to nowhere is listed, not "missing"
            return candidate
    raise DatasetLayoutError(
        f"{images_path.name} has no labels file: expected {candidates[0].name} next to it.",
        hint="Every <split>_images[_<i>].pt needs a matching <split>_target[_<i>].pt.",
    )


@dataclass(frozen=True)
class _Loader:
    """Loads one part: plain data (not a closure), so a worker process can be sent it and load the part."""

    images_path: Path
    targets_path: Path

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        images = _torch_load(self.images_path)
        if not isinstance(images, torch.Tensor):
            raise DatasetLayoutError(
                f"{self.images_path.name} holds a {type(images).__name__}, not a tensor.",
                hint="Save the images with torch.save(images_tensor, path).",
            )
        return images, _torch_load(self.targets_path)


def _torch_load(path: Path) -> Any:
    try:
        try:
            # mmap: the pages of a large shard are read as batches touch them, not all up front
            return torch.load(path, weights_only=True, mmap=True, map_location="cpu")
        except RuntimeError:  # a legacy (non-zip) file cannot be memory-mapped; a broken one fails again
            return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises several unrelated types for a bad or unsafe file
        raise DatasetLayoutError(
            f"Could not load {path.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="Course files must be torch.save()d tensors; they are loaded with weights_only=True, "
            "so pickled custom objects are refused.",
        ) from exc
