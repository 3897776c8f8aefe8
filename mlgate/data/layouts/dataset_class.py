"""The dataset-class layout: the repository's own torch-style Dataset, imported by ``pkg.module:Class``.

The class is imported, constructed and iterated through :mod:`mlgate.user_code`, so the checkout is on
``sys.path`` exactly while its code runs (see that module for why).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlgate.data.layouts.base import MAX_LABEL, Batch, Dataset, Split, ordered
from mlgate.data.layouts.imagefolder import pil_to_hwc
from mlgate.errors import MlgateError
from mlgate.user_code import ImportRoot, import_path_parts

_ROOT_PARAMETERS = ("root", "data_root", "data_dir", "data_path", "path")


class DatasetClassError(MlgateError):
    """Raised when a ``pkg.module:Class`` cannot be imported, constructed or iterated."""

    title = "Dataset class failed"


def open_dataset_class(root: Path, spec: str, import_root: Path | None) -> Dataset:
    """Import ``spec`` from ``import_root`` and construct it once per split it can be asked for."""
    checkout = ImportRoot(import_root)
    cls = _import_class(spec, checkout)
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError) as exc:
        raise DatasetClassError(f"Cannot inspect the constructor of {spec}: {exc}") from exc
    kwargs: dict[str, Any] = {}
    root_parameter = next((p for p in _ROOT_PARAMETERS if p in parameters), None)
    if root_parameter:
        kwargs[root_parameter] = str(root)
    split_kwargs = _split_kwargs(parameters)
    _check_no_missing_parameters(spec, cls, parameters, given={*kwargs, *next(iter(split_kwargs.values()))})
    with checkout:  # constructors, and a `classes` property, are user code
        splits: dict[str, Split] = {
            name: ClassSplit(name, _construct(spec, cls, {**kwargs, **extra}), spec, checkout)
            for name, extra in split_kwargs.items()
        }
        class_names = _class_names(next(iter(splits.values())))
    return Dataset(root, "dataset-class", ordered(splits), class_names, [root])


def _import_class(spec: str, checkout: ImportRoot) -> Any:
    module_name, class_name = import_path_parts(spec, DatasetClassError, what="Dataset class", form="pkg.module:Class",
                                                example="dataset-class: src.data:MnistDataset")
    try:
        module = checkout.import_module(module_name)
    except Exception as exc:  # user code: an ImportError or anything its import-time code raises
        where = f" from {checkout.root}" if checkout.root is not None else ""
        raise DatasetClassError(
            f"Could not import {module_name}{where}: {type(exc).__name__}: {exc}",
            hint="The module path is relative to the repository root, e.g. src/data.py -> src.data:Class.",
        ) from exc
    if not hasattr(module, class_name):
        raise DatasetClassError(f"{module_name} has no attribute {class_name!r} (from {spec}).")
    target = getattr(module, class_name)
    if not callable(target):
        raise DatasetClassError(f"{spec} is a {type(target).__name__}, not a class.")
    return target


def _split_kwargs(parameters: Mapping[str, inspect.Parameter]) -> dict[str, dict[str, Any]]:
    """Split name -> the constructor arguments that ask for it."""
    if "split" in parameters:
        return {name: {"split": name} for name in ("train", "test")}
    if "train" in parameters:
        return {name: {"train": name == "train"} for name in ("train", "test")}
    return {"train": {}}  # no way to ask for a split: the whole dataset is one split


def _check_no_missing_parameters(
    spec: str, cls: Any, parameters: Mapping[str, inspect.Parameter], given: set[str]
) -> None:
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


def _construct(spec: str, cls: Any, call: dict[str, Any]) -> Any:
    try:
        return cls(**call)
    except Exception as exc:  # user code: any failure is reported with its own text
        arguments = ", ".join(f"{k}={v!r}" for k, v in call.items())
        raise DatasetClassError(f"{spec}({arguments}) raised {type(exc).__name__}: {exc}") from exc


def _class_names(split: Split) -> list[str] | None:
    classes = getattr(getattr(split, "instance", None), "classes", None)
    if isinstance(classes, (list, tuple)) and classes and all(isinstance(c, str) for c in classes):
        return list(classes)
    return None


@dataclass
class ClassSplit:
    name: str
    instance: Any
    spec: str = field(repr=False)
    checkout: ImportRoot = field(repr=False)

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
        with self.checkout:
            items = iter(self._items())
        index = 0
        while (pair := self._next(items, index)) is not None:
            image, label = pair
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

    def _next(self, items: Iterator[Any], index: int) -> tuple[torch.Tensor, int] | None:
        """Item ``index`` as (image tensor, label), ``None`` at the end; user code runs with the checkout importable."""
        with self.checkout:
            try:
                item = next(items)
            except StopIteration:
                return None
            except Exception as exc:  # user code
                raise DatasetClassError(
                    f"{self.spec} ({self.name}) failed on item {index}: {type(exc).__name__}: {exc}"
                ) from exc
            return self._convert(item, index)

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
            tensor = torch.from_numpy(pil_to_hwc(image).transpose(2, 0, 1).copy())  # PIL arrays are read-only
        else:
            raise DatasetClassError(
                f"{where}: image is a {type(image).__name__}; expected a tensor, PIL image or ndarray."
            )
        try:
            value = label.item() if hasattr(label, "item") else label
            if isinstance(value, float) and not value.is_integer():
                raise TypeError(value)
            number = int(value)
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise DatasetClassError(f"{where}: label {label!r} is not an integer class index.") from exc
        if not 0 <= number < MAX_LABEL:
            raise DatasetClassError(
                f"{where}: label {number} is outside [0, {MAX_LABEL:,}).",
                hint=f"Labels must be class indices 0..K-1 (K at most {MAX_LABEL:,}).",
            )
        return tensor, number
