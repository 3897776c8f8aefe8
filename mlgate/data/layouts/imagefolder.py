"""The ImageFolder layout: ``<split>/<class>/<image>``, decoded with PIL one bounded chunk at a time."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from mlgate.data.layouts.base import (
    OUTSIDE,
    SUPPORTED,
    Batch,
    Dataset,
    DatasetLayoutError,
    Split,
    broken_link,
    found_in,
    is_outside,
    ordered,
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# A chunk also stops at this many decoded bytes, so large photos keep memory bounded.
_MAX_CHUNK_BYTES = 64 * 2**20
MAX_IMAGE_PIXELS = 40_000_000
"""Pixel budget per image (width x height; about 120 MB decoded as RGB). The header is read first, so a
larger image is listed as unreadable, with its size, without being decoded: a 164 KB PNG can claim
13000x13000 pixels and would otherwise take gigabytes to decode. Frames of the largest common photos
(a 24 MP camera, 8K video) fit."""


class ImageOverBudget(Exception):
    """An image whose header claims more than :data:`MAX_IMAGE_PIXELS` pixels; the message says how many."""


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _visible_dirs(folder: Path, root: Path | None = None, skipped: list[str] | None = None) -> list[Path]:
    """Sub-folders of ``folder`` not hidden; a symbolic link out of ``root`` or to nowhere (a loop, a chain
    too long, a missing target) is left out (and, given ``skipped``, listed there by its path relative to
    ``root``, with the reason)."""
    root = folder if root is None else root
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith((".", "__")):
                continue
            path = Path(entry.path)
            broken = broken_link(entry.path) if entry.is_symlink() else None
            if broken is not None:
                listed = f"{path.relative_to(root).as_posix()} ({broken})"
            elif not entry.is_dir():
                continue
            elif entry.is_symlink() and is_outside(path, root):
                listed = f"{path.relative_to(root).as_posix()}/ ({OUTSIDE})"
            else:
                found.append(path)
                continue
            if skipped is not None:
                skipped.append(listed)
    return sorted(found, key=lambda p: p.name)


def _has_images_directly(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(_is_image(e.name) and broken_link(e.path) is None and e.is_file() for e in entries)


def _has_images(folder: Path) -> bool:
    return any(any(_is_image(f) for f in files) for _, _, files in os.walk(folder))


def split_folders(root: Path, skipped: list[str] | None = None) -> dict[str, Path]:
    """Split name -> split folder; a root whose subfolders hold images directly is one split, train.

    Empty when ``root`` holds no ImageFolder images (layout detection asks this). Folders that are
    symlinks out of ``root`` are not entered; given ``skipped``, they are listed there.
    """
    subdirs = _visible_dirs(root, root, skipped)
    if any(_has_images_directly(d) for d in subdirs):
        return {"train": root}
    return {d.name: d for d in subdirs if any(_has_images(c) for c in _visible_dirs(d, root, skipped))}


def open_imagefolder(root: Path) -> Dataset:
    skipped: list[str] = []
    split_dirs = split_folders(root, skipped) if root.is_dir() else {}
    if not split_dirs:
        raise DatasetLayoutError(
            f"No ImageFolder images under {root}: {found_in(root) if root.is_dir() else 'not a folder'}"
            + (f" (not followed: {', '.join(skipped)})" if skipped else "") + ".",
            hint="Expected <split>/<class>/<image>.png (or <class>/<image>.png).\n" + SUPPORTED,
        )
    skipped.clear()  # listed again below, each under the split it belongs to
    skipped_per_split: dict[str, list[str]] = {}
    classes_per_split = {
        name: [c.name for c in _visible_dirs(folder, root, skipped_per_split.setdefault(name, [])) if _has_images(c)]
        for name, folder in split_dirs.items()
    }
    if "train" not in split_dirs or split_dirs["train"] != root:
        _visible_dirs(root, root, skipped)  # split folders that lead out of the data folder
    # One index for all splits, so label 3 means the same class in train and test.
    class_names = sorted({c for names in classes_per_split.values() for c in names})
    index = {name: i for i, name in enumerate(class_names)}
    splits: dict[str, Split] = {
        name: ImageFolderSplit(name, root, folder, [(c, index[c]) for c in classes_per_split[name]],
                               skipped_per_split[name])
        for name, folder in split_dirs.items()
    }
    ordered_splits = ordered(splits)
    first = next(iter(ordered_splits.values()))
    assert isinstance(first, ImageFolderSplit)
    first.skipped = skipped + first.skipped
    return Dataset(root, "imagefolder", ordered_splits, class_names, list(split_dirs.values()))


@dataclass
class ImageFolderSplit:
    name: str
    root: Path
    folder: Path
    classes: list[tuple[str, int]]  # (class folder name, label)
    skipped: list[str] = field(default_factory=list)
    """Folders not entered (symbolic links out of the data folder or to nowhere), each with its reason;
    listed as unreadable."""
    cuts_by_content = True
    """:meth:`shards` takes ``ends``: file ranges may end where the files' paths say."""

    def _files(self) -> Iterator[tuple[str, int, str, str | None]]:
        """(path, label, path relative to the data folder with ``/`` separators, why it is not read or None)
        of every image file, of every symbolic link that leads nowhere (whatever its name), and (relative
        path ending in ``/``) of every folder below a class folder that is a symlink out of the data
        folder: never entered."""
        # plain strings: building a Path per file costs more than decoding a small PNG
        for class_name, label in self.classes:
            top = self.folder / class_name
            stack = [(str(top), top.relative_to(self.root).as_posix())]
            while stack:  # os.walk's order (a folder's files, then its sorted subfolders), with scandir's flags
                dirpath, relative_dir = stack.pop()
                with os.scandir(dirpath) as scan:
                    entries = sorted(scan, key=lambda e: e.name)
                subdirs = []
                for entry in entries:
                    relative = f"{relative_dir}/{entry.name}"
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append((entry.path, relative))
                    elif not entry.is_symlink():
                        if _is_image(entry.name):
                            yield entry.path, label, relative, None
                    elif (broken := broken_link(entry.path)) is not None:
                        yield entry.path, label, relative, broken
                    elif entry.is_dir():  # not entered, as os.walk; listed when it leads out
                        if is_outside(entry.path, self.root):
                            yield entry.path, label, f"{relative}/", OUTSIDE
                    elif _is_image(entry.name):
                        yield entry.path, label, relative, OUTSIDE if is_outside(entry.path, self.root) else None
                stack.extend(reversed(subdirs))

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        return read_items(self._files(), list(self.skipped), batch_size)

    def shards(self, sizes: Iterator[int], ends: Callable[[str], bool] | None = None) -> list[ImageFolderShard]:
        """The split cut into consecutive file ranges of ``sizes`` files each (one shard at least, the
        folders not entered riding on the first); each reads as :meth:`batches` reads that range.
        Given ``ends``, a range also ends after every file whose relative path it holds true for (cuts
        chosen by content: adding or removing a file changes only the range it falls in), ``sizes``
        then capping the ranges."""
        files = list(self._files())
        shards = [ImageFolderShard(self.name, self.root, [], list(self.skipped))]
        start = 0
        while start < len(files):
            stop = min(len(files), start + max(1, next(sizes)))
            if ends is not None:
                stop = next((i + 1 for i in range(start, stop) if ends(files[i][2])), stop)
            if shards[-1].files:
                shards.append(ImageFolderShard(self.name, self.root, [], []))
            shards[-1].files = files[start:stop]
            start = stop
        return shards


@dataclass
class ImageFolderShard:
    """A consecutive range of one split's files: plain data, so a worker process can read it."""

    split: str
    root: Path
    files: list[tuple[str, int, str, str | None]]
    skipped: list[str]

    @property
    def size(self) -> int:
        return len(self.files)

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        return read_items(iter(self.files), list(self.skipped), batch_size)


def read_items(files: Iterator[tuple[str | IO[bytes], int, str, str | None]], unreadable: list[str],
               batch_size: int) -> Iterator[Batch]:
    """Batches of the decoded ``(file, label, relative path, why not read)`` items; a file is a path or
    its bytes already in memory (:mod:`mlgate.data.stream` reads them from the DVC remote)."""
    decode_errors = _decode_errors()
    chunk: list[tuple[np.ndarray, int, str]] = []
    size = 0
    for path, label, relative, not_read in files:
        if not_read is not None:  # a symbolic link out of the data folder, in a loop or to nowhere
            unreadable.append(f"{relative} ({not_read})")
            continue
        try:
            array = _decode_file(path)
        except ImageOverBudget as exc:
            unreadable.append(f"{relative} ({exc})")
        except decode_errors:
            unreadable.append(relative)
        else:
            chunk.append((array, label, relative))
            size += array.nbytes
        if len(chunk) + len(unreadable) >= batch_size or size >= _MAX_CHUNK_BYTES:
            yield from _runs_by_shape(chunk, unreadable)
            chunk, unreadable, size = [], [], 0
    if chunk or unreadable:
        yield from _runs_by_shape(chunk, unreadable)


_PIL_PIXELS = re.compile(r"\((\d+) pixels\)")


def _over_budget(width: int, height: int) -> str:
    return (f"{width}×{height} = {width * height / 1e6:,.0f} M pixels exceeds the "
            f"{MAX_IMAGE_PIXELS / 1e6:,.0f} M pixel budget")


def _decode_file(path: str | IO[bytes]) -> np.ndarray:
    """The image at ``path`` (a file name or an open binary file) as (H, W, C) uint8; raises
    :class:`ImageOverBudget` before decoding an image
    whose header claims more than :data:`MAX_IMAGE_PIXELS` pixels."""
    from PIL import Image  # only ImageFolder and user classes need PIL

    with warnings.catch_warnings(record=True):
        # PIL's own decompression-bomb check is looser than ours: its warning (from 89 M pixels) is
        # swallowed here, as the size check below refuses the image; its error (from 179 M) is turned into ours
        warnings.simplefilter("always", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageOverBudget(_over_budget(width, height))
                image.load()
                return pil_to_hwc(image)
        except Image.DecompressionBombError as exc:
            claimed = _PIL_PIXELS.search(str(exc))
            pixels = f"{int(claimed[1]) / 1e6:,.0f} M pixels" if claimed else "too many pixels"
            raise ImageOverBudget(f"{pixels} exceeds the {MAX_IMAGE_PIXELS / 1e6:,.0f} M pixel budget") from exc


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
    # local: PIL is only needed to decode images
    from PIL import Image

    # OSError covers UnidentifiedImageError and truncated files; SyntaxError is raised by some plugins.
    return (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _runs_by_shape(chunk: list[tuple[np.ndarray, int, str]], unreadable: list[str]) -> Iterator[Batch]:
    """One Batch per run of consecutive items of one (H, W, C), in file order (so the items' order does
    not depend on where a chunk or shard ends), each item named by its relative path; the chunk's
    unreadable paths ride on the first."""
    pending = tuple(unreadable)
    if not chunk:
        yield Batch(torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64), pending, ids=())
        return
    start = 0
    while start < len(chunk):
        stop = start + 1
        while stop < len(chunk) and chunk[stop][0].shape == chunk[start][0].shape:
            stop += 1
        items = chunk[start:stop]
        stacked = torch.from_numpy(np.stack([array for array, _, _ in items]))
        images = stacked.permute(0, 3, 1, 2).contiguous()
        labels = torch.tensor([label for _, label, _ in items], dtype=torch.int64)
        yield Batch(images, labels, pending, ids=tuple(relative for _, _, relative in items))
        pending = ()
        start = stop
