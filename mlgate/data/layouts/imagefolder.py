"""The ImageFolder layout: ``<split>/<class>/<image>``, decoded with PIL one bounded chunk at a time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlgate.data.layouts.base import SUPPORTED, Batch, Dataset, DatasetLayoutError, Split, found_in, ordered

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# A chunk also stops at this many decoded bytes, so large photos keep memory bounded.
_MAX_CHUNK_BYTES = 64 * 2**20


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _visible_dirs(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return sorted(
            (Path(e.path) for e in entries if e.is_dir() and not e.name.startswith((".", "__"))),
            key=lambda p: p.name,
        )


def _has_images_directly(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(e.is_file() and _is_image(e.name) for e in entries)


def _has_images(folder: Path) -> bool:
    return any(any(_is_image(f) for f in files) for _, _, files in os.walk(folder))


def split_folders(root: Path) -> dict[str, Path]:
    """Split name -> split folder; a root whose subfolders hold images directly is one split, train.

    Empty when ``root`` holds no ImageFolder images (layout detection asks this).
    """
    subdirs = _visible_dirs(root)
    if any(_has_images_directly(d) for d in subdirs):
        return {"train": root}
    return {d.name: d for d in subdirs if any(_has_images(c) for c in _visible_dirs(d))}


def open_imagefolder(root: Path) -> Dataset:
    split_dirs = split_folders(root) if root.is_dir() else {}
    if not split_dirs:
        raise DatasetLayoutError(
            f"No ImageFolder images under {root}: {found_in(root) if root.is_dir() else 'not a folder'}.",
            hint="Expected <split>/<class>/<image>.png (or <class>/<image>.png).\n" + SUPPORTED,
        )
    classes_per_split = {
        name: [c.name for c in _visible_dirs(folder) if _has_images(c)] for name, folder in split_dirs.items()
    }
    # One index for all splits, so label 3 means the same class in train and test.
    class_names = sorted({c for names in classes_per_split.values() for c in names})
    index = {name: i for i, name in enumerate(class_names)}
    splits: dict[str, Split] = {
        name: ImageFolderSplit(name, root, folder, [(c, index[c]) for c in classes_per_split[name]])
        for name, folder in split_dirs.items()
    }
    return Dataset(root, "imagefolder", ordered(splits), class_names, list(split_dirs.values()))


@dataclass
class ImageFolderSplit:
    name: str
    root: Path
    folder: Path
    classes: list[tuple[str, int]]  # (class folder name, label)

    def _files(self) -> Iterator[tuple[str, int, str]]:
        """(path, label, path relative to the data folder with ``/`` separators) of every image file."""
        # plain strings: building a Path per file costs more than decoding a small PNG
        for class_name, label in self.classes:
            top = self.folder / class_name
            top_text, relative_top = str(top), top.relative_to(self.root).as_posix()
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames.sort()
                relative_dir = relative_top + dirpath[len(top_text) :].replace(os.sep, "/")
                for filename in sorted(filenames):
                    if _is_image(filename):
                        yield os.path.join(dirpath, filename), label, f"{relative_dir}/{filename}"

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        decode_errors = _decode_errors()
        chunk: list[tuple[np.ndarray, int, str]] = []
        unreadable: list[str] = []
        size = 0
        for path, label, relative in self._files():
            try:
                array = _decode_file(path)
            except decode_errors:
                unreadable.append(relative)
            else:
                chunk.append((array, label, relative))
                size += array.nbytes
            if len(chunk) + len(unreadable) >= batch_size or size >= _MAX_CHUNK_BYTES:
                yield from _group_by_shape(chunk, unreadable)
                chunk, unreadable, size = [], [], 0
        if chunk or unreadable:
            yield from _group_by_shape(chunk, unreadable)


def _decode_file(path: str) -> np.ndarray:
    from PIL import Image  # only ImageFolder and user classes need PIL

    with Image.open(path) as image:
        image.load()
        return pil_to_hwc(image)


def pil_to_hwc(image: Any) -> np.ndarray:
    """A PIL image as an (H, W, C) uint8 array: grey stays 1 channel, colour becomes 3, alpha is dropped."""
    mode = image.mode
    if mode in ("P", "PA"):
        palette = image.getpalette() or []
        grey = all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))
        has_alpha = mode == "PA" or "transparency" in image.info
        target = ("LA" if grey else "RGBA") if has_alpha else ("L" if grey else "RGB")
        image = image.convert(target)
        mode = image.mode
    if mode.startswith("I;16"):
        array = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)  # 16-bit: keep the high byte
    elif mode in ("I", "F"):
        array = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    elif mode in ("L", "RGB"):
        array = np.asarray(image)
    elif mode in ("1", "LA", "La"):
        array = np.asarray(image.convert("L"))
    else:  # RGBA, RGBX, CMYK, YCbCr, LAB, HSV, ...
        array = np.asarray(image.convert("RGB"))
    return array[:, :, None] if array.ndim == 2 else array


def _decode_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image

    # OSError covers UnidentifiedImageError and truncated files; SyntaxError is raised by some plugins.
    return (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _group_by_shape(chunk: list[tuple[np.ndarray, int, str]], unreadable: list[str]) -> Iterator[Batch]:
    """One Batch per distinct (H, W, C) in the chunk, each item named by its relative path; the chunk's
    unreadable paths ride on the first."""
    groups: dict[tuple[int, ...], list[tuple[np.ndarray, int, str]]] = {}
    for item in chunk:
        groups.setdefault(item[0].shape, []).append(item)
    pending = tuple(unreadable)
    if not groups:
        yield Batch(torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64), pending, ids=())
        return
    for items in groups.values():
        stacked = torch.from_numpy(np.stack([array for array, _, _ in items]))
        images = stacked.permute(0, 3, 1, 2).contiguous()
        labels = torch.tensor([label for _, label, _ in items], dtype=torch.int64)
        yield Batch(images, labels, pending, ids=tuple(relative for _, _, relative in items))
        pending = ()

