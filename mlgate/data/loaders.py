"""Open a dataset folder without user code: course shards, ImageFolder, ``.npz`` or a user Dataset class.

:func:`open_dataset` only looks at names (and, for a user class, instantiates it); the data is read
when a split's :meth:`Split.batches` is iterated, one bounded batch at a time, so a 200,000-image
ImageFolder never sits in memory at once.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from mlgate.errors import MlgateError

Layout = Literal["auto", "course", "imagefolder", "npz", "dataset-class"]
LAYOUTS: tuple[str, ...] = ("auto", "course", "imagefolder", "npz", "dataset-class")

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# An ImageFolder chunk also stops at this many decoded bytes, so large photos keep memory bounded.
_MAX_CHUNK_BYTES = 64 * 2**20

_SUPPORTED = """Supported layouts (set the layout input to force one):
  course        train_images_0.pt  train_target_0.pt  train_images_1.pt  train_target_1.pt
                test_images.pt     test_target.pt      (any <split>_images[_<i>].pt / <split>_target[_<i>].pt)
  imagefolder   train/<class>/<image>.png  test/<class>/<image>.jpg   (or <class>/<image>.png = one split)
  npz           train.npz  test.npz  (arrays images|x|X and labels|y|targets)
                or one file with x_train, y_train, x_test, y_test
  dataset-class set dataset-class: pkg.module:Class
                (instantiated with train=True/False or split="train"/"test", and root=<data path>)"""


class DatasetLayoutError(MlgateError):
    """Raised when a data folder matches no supported layout, or its files contradict the layout."""

    title = "Unrecognised dataset layout"


class DatasetClassError(MlgateError):
    """Raised when a ``pkg.module:Class`` cannot be imported, constructed or iterated."""

    title = "Dataset class failed"


@dataclass(frozen=True)
class Batch:
    """Up to ``batch_size`` items of one split that share one per-item shape and dtype.

    ``images`` is empty (shape ``(0,)``) when every file of an ImageFolder chunk was unreadable.
    """

    images: torch.Tensor
    labels: torch.Tensor
    unreadable: tuple[str, ...] = ()


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
        return _open_dataset_class(root, dataset_class, import_root)
    if not root.exists():
        raise DatasetLayoutError(
            f"Data path {root} does not exist.",
            hint="Point the data path at the folder that holds the dataset (after `dvc pull`).",
        )
    if root.is_file() and root.suffix == ".npz" and layout in ("auto", "npz"):
        return _open_npz(root.parent, [root])
    if layout == "auto":
        layout = _detect(root)
    if layout == "course":
        return _open_course(root)
    if layout == "npz":
        return _open_npz(root, sorted(root.glob("*.npz")))
    return _open_imagefolder(root)


def _detect(root: Path) -> Layout:
    if not root.is_dir():
        raise DatasetLayoutError(f"Data path {root} is a file, not a dataset folder.", hint=_SUPPORTED)
    if any(root.glob("*_images*.pt")):
        return "course"
    if any(root.glob("*.npz")):
        return "npz"
    if _imagefolder_splits(root):
        return "imagefolder"
    raise DatasetLayoutError(
        f"Could not recognise the dataset layout of {root}: {_found(root)}.", hint=_SUPPORTED
    )


def _found(root: Path, limit: int = 8) -> str:
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    if not entries:
        return "the folder is empty"
    more = f" (and {len(entries) - limit} more)" if len(entries) > limit else ""
    return "found " + ", ".join(entries[:limit]) + more


def _ordered(splits: dict[str, Split]) -> dict[str, Split]:
    """Train first, then the other splits by name, so consumers can rely on ``train`` coming first."""
    return {name: splits[name] for name in sorted(splits, key=lambda n: (n != "train", n))}


# ---------------------------------------------------------------------------------------------------
# Tensor-backed splits (course, npz): one part is one file (pair) loaded whole, then sliced.


@dataclass
class _Part:
    describe: str  # the file names, for error messages
    load: Callable[[], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class TensorSplit:
    name: str
    parts: list[_Part]

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


_COURSE_IMAGES = re.compile(r"^(?P<split>.+?)_images(?:_(?P<index>\d+))?\.pt$")
_COURSE_TARGETS = ("target", "targets", "labels")


def _open_course(root: Path) -> Dataset:
    found: dict[str, list[tuple[int, Path]]] = {}
    for path in root.glob("*_images*.pt"):
        match = _COURSE_IMAGES.match(path.name)
        if match:
            index = int(match["index"]) if match["index"] is not None else -1
            found.setdefault(match["split"], []).append((index, path))
    if not found:
        raise DatasetLayoutError(
            f"No course-layout files in {root}: {_found(root)}.",
            hint="Expected <split>_images[_<i>].pt with <split>_target[_<i>].pt next to it.\n" + _SUPPORTED,
        )
    splits: dict[str, Split] = {}
    files: list[Path] = []
    for split, shards in found.items():
        parts = []
        for _, images_path in sorted(shards, key=lambda shard: shard[0]):  # numeric: 10 after 9
            targets_path = _course_targets(images_path)
            files += [images_path, targets_path]
            load = _course_loader(images_path, targets_path)
            parts.append(_Part(f"{images_path.name} / {targets_path.name}", load))
        splits[split] = TensorSplit(split, parts)
    return Dataset(root, "course", _ordered(splits), None, files)


def _course_targets(images_path: Path) -> Path:
    name = images_path.name
    candidates = [images_path.with_name(name.replace("_images", f"_{kind}", 1)) for kind in _COURSE_TARGETS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DatasetLayoutError(
        f"{images_path.name} has no labels file: expected {candidates[0].name} next to it.",
        hint="Every <split>_images[_<i>].pt needs a matching <split>_target[_<i>].pt.",
    )


def _course_loader(images_path: Path, targets_path: Path) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    def load() -> tuple[torch.Tensor, torch.Tensor]:
        images = _torch_load(images_path)
        if not isinstance(images, torch.Tensor):
            raise DatasetLayoutError(
                f"{images_path.name} holds a {type(images).__name__}, not a tensor.",
                hint="Save the images with torch.save(images_tensor, path).",
            )
        return images, _torch_load(targets_path)

    return load


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


_NPZ_IMAGE_KEYS = ("images", "x", "X")
_NPZ_LABEL_KEYS = ("labels", "y", "targets")
_NPZ_SPLIT_KEY = re.compile(r"^(?P<kind>images|image|x|X|labels|label|targets|target|y|Y)_(?P<split>\w+)$")


def _open_npz(root: Path, paths: list[Path]) -> Dataset:
    if not paths:
        raise DatasetLayoutError(f"No .npz files in {root}: {_found(root)}.", hint=_SUPPORTED)
    splits: dict[str, Split] = {}
    for path in paths:
        for split, image_key, label_key in _npz_arrays(path):
            if split in splits:
                raise DatasetLayoutError(
                    f"Split {split!r} is defined twice (again in {path.name}).",
                    hint="Use one <split>.npz per split, or one file with x_<split>/y_<split> arrays.",
                )
            part = _Part(f"{path.name} [{image_key}, {label_key}]", _npz_loader(path, image_key, label_key))
            splits[split] = TensorSplit(split, [part])
    return Dataset(root, "npz", _ordered(splits), None, list(paths))


def _npz_arrays(path: Path) -> list[tuple[str, str, str]]:
    """(split, image key, label key) for each split stored in one ``.npz`` file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
    except (OSError, ValueError) as exc:
        raise DatasetLayoutError(f"Could not read {path.name}: {exc}", hint=_SUPPORTED) from exc
    by_split: dict[str, dict[str, str]] = {}
    for key in keys:
        match = _NPZ_SPLIT_KEY.match(key)
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
    image_key = next((k for k in _NPZ_IMAGE_KEYS if k in keys), None)
    label_key = next((k for k in _NPZ_LABEL_KEYS if k in keys), None)
    if image_key is None or label_key is None:
        raise DatasetLayoutError(
            f"{path.name} has arrays {', '.join(keys) or '(none)'}; none of them is recognised.",
            hint="Name them images|x|X and labels|y|targets (split = file name), "
            "or x_train, y_train, x_test, y_test in one file.",
        )
    return [(path.stem, image_key, label_key)]


def _npz_loader(
    path: Path, image_key: str, label_key: str
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    def load() -> tuple[torch.Tensor, torch.Tensor]:
        try:
            with np.load(path, allow_pickle=False) as archive:
                images, labels = archive[image_key], archive[label_key]
        except (OSError, ValueError) as exc:  # ValueError: object arrays need pickle, which we refuse
            raise DatasetLayoutError(
                f"Could not read {image_key}/{label_key} from {path.name}: {exc}",
                hint="Save plain numeric arrays (np.savez), not object arrays.",
            ) from exc
        return torch.from_numpy(images), torch.from_numpy(labels)

    return load


# ---------------------------------------------------------------------------------------------------
# ImageFolder: <split>/<class>/<image>, decoded with PIL one bounded chunk at a time.


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


def _imagefolder_splits(root: Path) -> dict[str, Path]:
    """Split name -> split folder; a root whose subfolders hold images directly is one split, train."""
    subdirs = _visible_dirs(root)
    if any(_has_images_directly(d) for d in subdirs):
        return {"train": root}
    return {d.name: d for d in subdirs if any(_has_images(c) for c in _visible_dirs(d))}


def _open_imagefolder(root: Path) -> Dataset:
    split_dirs = _imagefolder_splits(root) if root.is_dir() else {}
    if not split_dirs:
        raise DatasetLayoutError(
            f"No ImageFolder images under {root}: {_found(root) if root.is_dir() else 'not a folder'}.",
            hint="Expected <split>/<class>/<image>.png (or <class>/<image>.png).\n" + _SUPPORTED,
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
    return Dataset(root, "imagefolder", _ordered(splits), class_names, list(split_dirs.values()))


@dataclass
class ImageFolderSplit:
    name: str
    root: Path
    folder: Path
    classes: list[tuple[str, int]]  # (class folder name, label)

    def _files(self) -> Iterator[tuple[str, int]]:
        # plain strings: building a Path per file costs more than decoding a small PNG
        for class_name, label in self.classes:
            for dirpath, dirnames, filenames in os.walk(self.folder / class_name):
                dirnames.sort()
                for filename in sorted(filenames):
                    if _is_image(filename):
                        yield os.path.join(dirpath, filename), label

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        decode_errors = _decode_errors()
        chunk: list[tuple[np.ndarray, int]] = []
        unreadable: list[str] = []
        size = 0
        for path, label in self._files():
            try:
                array = _decode_file(path)
            except decode_errors:
                unreadable.append(Path(path).relative_to(self.root).as_posix())
            else:
                chunk.append((array, label))
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
        return _pil_to_hwc(image)


def _pil_to_hwc(image: Any) -> np.ndarray:
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


def _group_by_shape(chunk: list[tuple[np.ndarray, int]], unreadable: list[str]) -> Iterator[Batch]:
    """One Batch per distinct (H, W, C) in the chunk; the chunk's unreadable paths ride on the first."""
    groups: dict[tuple[int, ...], list[tuple[np.ndarray, int]]] = {}
    for array, label in chunk:
        groups.setdefault(array.shape, []).append((array, label))
    pending = tuple(unreadable)
    if not groups:
        yield Batch(torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64), pending)
        return
    for items in groups.values():
        stacked = torch.from_numpy(np.stack([array for array, _ in items]))
        images = stacked.permute(0, 3, 1, 2).contiguous()
        labels = torch.tensor([label for _, label in items], dtype=torch.int64)
        yield Batch(images, labels, pending)
        pending = ()


# ---------------------------------------------------------------------------------------------------
# dataset-class: the repository's own torch-style Dataset, imported by "pkg.module:Class".

_CLASS_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_ROOT_PARAMETERS = ("root", "data_root", "data_dir", "data_path", "path")


def _open_dataset_class(root: Path, spec: str, import_root: Path | None) -> Dataset:
    cls = _import_class(spec, import_root)
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError) as exc:
        raise DatasetClassError(f"Cannot inspect the constructor of {spec}: {exc}") from exc
    kwargs: dict[str, Any] = {}
    root_parameter = next((p for p in _ROOT_PARAMETERS if p in parameters), None)
    if root_parameter:
        kwargs[root_parameter] = str(root)
    if "split" in parameters:
        split_kwargs: dict[str, dict[str, Any]] = {name: {"split": name} for name in ("train", "test")}
    elif "train" in parameters:
        split_kwargs = {name: {"train": name == "train"} for name in ("train", "test")}
    else:  # no way to ask for a split: the whole dataset is one split
        split_kwargs = {"train": {}}
    given = {*kwargs, *next(iter(split_kwargs.values()))}
    missing = [
        p.name
        for p in parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in given
    ]
    if missing:
        raise DatasetClassError(
            f"{spec}{inspect.signature(cls)} needs {', '.join(missing)}, which mlgate cannot provide.",
            hint="mlgate passes train=True/False or split='train'/'test', and root=<data path> if accepted; "
            "give the other parameters defaults.",
        )
    splits: dict[str, Split] = {}
    for name, extra in split_kwargs.items():
        call = {**kwargs, **extra}
        try:
            instance = cls(**call)
        except Exception as exc:  # user code: any failure is reported with its own text
            arguments = ", ".join(f"{k}={v!r}" for k, v in call.items())
            raise DatasetClassError(f"{spec}({arguments}) raised {type(exc).__name__}: {exc}") from exc
        splits[name] = ClassSplit(name, instance, spec)
    return Dataset(root, "dataset-class", _ordered(splits), _class_names(next(iter(splits.values()))), [root])


def _class_names(split: Split) -> list[str] | None:
    classes = getattr(getattr(split, "instance", None), "classes", None)
    if isinstance(classes, (list, tuple)) and classes and all(isinstance(c, str) for c in classes):
        return list(classes)
    return None


def _import_class(spec: str, import_root: Path | None) -> Any:
    if not _CLASS_SPEC.match(spec):
        raise DatasetClassError(
            f"Dataset class {spec!r} is not of the form pkg.module:Class.",
            hint="Example: dataset-class: src.data:MnistDataset",
        )
    module_name, _, attribute = spec.partition(":")
    if import_root is not None and str(import_root) not in sys.path:
        # Kept on sys.path: the user's Dataset may import lazily while it is iterated.
        sys.path.insert(0, str(import_root))
        importlib.invalidate_caches()
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # user code: an ImportError or anything its import-time code raises
        where = f" from {import_root}" if import_root else ""
        raise DatasetClassError(
            f"Could not import {module_name}{where}: {type(exc).__name__}: {exc}",
            hint="The module path is relative to the repository root, e.g. src/data.py -> src.data:Class.",
        ) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise DatasetClassError(f"{module_name} has no attribute {attribute!r} (from {spec}).")
        target = getattr(target, part)
    if not callable(target):
        raise DatasetClassError(f"{spec} is a {type(target).__name__}, not a class.")
    return target


@dataclass
class ClassSplit:
    name: str
    instance: Any
    spec: str = field(repr=False)

    def _items(self) -> Iterable[Any]:
        instance = self.instance
        if hasattr(instance, "__len__") and hasattr(instance, "__getitem__"):
            return (instance[i] for i in range(len(instance)))
        if hasattr(instance, "__iter__"):
            return iter(instance)
        raise DatasetClassError(
            f"{self.spec} ({self.name}) is neither map-style (__len__ + __getitem__) nor iterable."
        )

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        images: list[torch.Tensor] = []
        labels: list[int] = []
        items = iter(self._items())
        index = 0
        while True:
            try:
                item = next(items)
            except StopIteration:
                break
            except Exception as exc:  # user code
                raise DatasetClassError(
                    f"{self.spec} ({self.name}) failed on item {index}: {type(exc).__name__}: {exc}"
                ) from exc
            image, label = self._convert(item, index)
            if images and (image.shape != images[0].shape or image.dtype != images[0].dtype):
                yield Batch(torch.stack(images), torch.tensor(labels, dtype=torch.int64))
                images, labels = [], []
            images.append(image)
            labels.append(label)
            if len(images) >= batch_size:
                yield Batch(torch.stack(images), torch.tensor(labels, dtype=torch.int64))
                images, labels = [], []
            index += 1
        if images:
            yield Batch(torch.stack(images), torch.tensor(labels, dtype=torch.int64))

    def _convert(self, item: Any, index: int) -> tuple[torch.Tensor, int]:
        where = f"{self.spec} ({self.name}) item {index}"
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DatasetClassError(f"{where} is a {type(item).__name__}; expected an (image, label) pair.")
        image, label = item[0], item[1]
        if isinstance(image, torch.Tensor):
            tensor = image.detach().cpu()
        elif isinstance(image, np.ndarray):
            tensor = torch.from_numpy(np.array(image))  # a copy: the array may be read-only
        elif hasattr(image, "mode") and hasattr(image, "getpalette"):  # a PIL image
            tensor = torch.from_numpy(_pil_to_hwc(image).transpose(2, 0, 1).copy())  # PIL arrays are read-only
        else:
            raise DatasetClassError(
                f"{where}: image is a {type(image).__name__}; expected a tensor, PIL image or ndarray."
            )
        try:
            value = label.item() if hasattr(label, "item") else label
            if isinstance(value, float) and not value.is_integer():
                raise TypeError(value)
            return tensor, int(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise DatasetClassError(f"{where}: label {label!r} is not an integer class index.") from exc
