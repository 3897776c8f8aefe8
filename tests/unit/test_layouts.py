"""mlgate.data.layouts: every layout detected and read back exactly as the factories wrote it."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from mlgate.data.layouts import (
    Batch,
    DatasetClassError,
    DatasetLayoutError,
    open_dataset,
)
from tests.fixtures.datasets import make_course, make_dataset_class, make_imagefolder, make_npz


def _all(batches: Iterator[Batch]) -> tuple[list[np.ndarray], list[int], list[str]]:
    images: list[np.ndarray] = []
    labels: list[int] = []
    unreadable: list[str] = []
    for batch in batches:
        assert batch.labels.dtype == torch.int64
        assert batch.images.shape[0] == batch.labels.shape[0]
        images += [image.numpy() for image in batch.images]
        labels += batch.labels.tolist()
        unreadable += batch.unreadable
    return images, labels, unreadable


def _as_multiset(images: list[np.ndarray], labels: list[int] | np.ndarray) -> list[tuple[int, str, bytes]]:
    """Items in comparable form, ignoring order (ImageFolder groups a chunk by shape)."""
    pairs = zip(images, labels, strict=True)
    return sorted((int(label), f"{image.dtype.str}{image.shape}", image.tobytes()) for image, label in pairs)


def test_open_dataset__course_concatenates_twelve_shards_in_numeric_order(tmp_path: Path) -> None:
    truth = make_course(tmp_path, n_train=60, n_test=7, shards=12)

    dataset = open_dataset(tmp_path)

    assert dataset.layout == "course"
    assert list(dataset.splits) == ["train", "test"]
    assert dataset.class_names is None
    images, labels, _ = _all(dataset.splits["train"].batches(batch_size=4))
    np.testing.assert_array_equal(np.stack(images), np.stack(truth.images["train"]))  # 10 after 9, not after 1
    assert labels == truth.labels["train"].tolist()
    assert {p.name for p in dataset.files} >= {"train_images_10.pt", "train_target_11.pt", "test_target.pt"}


def test_open_dataset__course_unsharded_with_list_targets_and_extra_split(tmp_path: Path) -> None:
    truth = make_course(tmp_path, n_train=9, n_test=4, shards=None, labels_as="list", dtype="uint8")
    torch.save(torch.zeros(3, 28, 28, dtype=torch.uint8), tmp_path / "valid_images.pt")
    torch.save(torch.tensor([0, 1, 2]), tmp_path / "valid_target.pt")

    dataset = open_dataset(tmp_path)

    assert list(dataset.splits) == ["train", "test", "valid"]
    images, labels, _ = _all(dataset.splits["test"].batches())
    np.testing.assert_array_equal(np.stack(images), np.stack(truth.images["test"]))
    assert images[0].dtype == np.uint8
    assert labels == truth.labels["test"].tolist()
    assert _all(dataset.splits["valid"].batches())[1] == [0, 1, 2]


@pytest.mark.reliability(
    "data", "course layout with 5 images and 4 labels",
    "exit 2: names both files and says 5 images but 4 labels"
)
def test_course__mismatched_image_and_target_counts_name_both_files(tmp_path: Path) -> None:
    torch.save(torch.zeros(5, 4, 4), tmp_path / "train_images.pt")
    torch.save(torch.zeros(4, dtype=torch.int64), tmp_path / "train_target.pt")

    with pytest.raises(DatasetLayoutError) as raised:
        list(open_dataset(tmp_path).splits["train"].batches())

    assert "train_images.pt" in str(raised.value)
    assert "train_target.pt" in str(raised.value)
    assert "5 images but 4 labels" in str(raised.value)


@pytest.mark.reliability(
    "data", "`train_images_3.pt` without its targets file",
    "exit 2: names the expected `train_target_3.pt`"
)
def test_course__missing_target_file_names_the_expected_file(tmp_path: Path) -> None:
    torch.save(torch.zeros(2, 4, 4), tmp_path / "train_images_3.pt")

    with pytest.raises(DatasetLayoutError, match=r"expected train_target_3\.pt"):
        open_dataset(tmp_path)


@pytest.mark.reliability(
    "data", "one-hot labels in a targets file",
    "exit 2: gives the labels' shape; the fix mentions one-hot"
)
def test_course__one_hot_labels_are_refused_with_a_hint(tmp_path: Path) -> None:
    torch.save(torch.zeros(2, 4, 4), tmp_path / "train_images.pt")
    torch.save(torch.eye(2), tmp_path / "train_target.pt")

    with pytest.raises(DatasetLayoutError, match=r"shape \(2, 2\)") as raised:
        list(open_dataset(tmp_path).splits["train"].batches())
    assert "one-hot" in raised.value.hint


class Unsafe:
    """Not a tensor: weights_only loading must refuse to unpickle it."""


@pytest.mark.parametrize("content", [b"not a torch file", "pickled-object"])
@pytest.mark.reliability(
    "data", "`train_images.pt` that cannot be loaded safely ({id})",
    "exit 2: “Could not load train_images.pt”; the fix mentions `weights_only` loading"
)
def test_course__unloadable_file_is_named_and_never_unpickled(tmp_path: Path, content: object) -> None:
    path = tmp_path / "train_images.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save({"images": Unsafe()}, path)
    torch.save(torch.zeros(1, dtype=torch.int64), tmp_path / "train_target.pt")

    with pytest.raises(DatasetLayoutError, match=r"Could not load train_images\.pt") as raised:
        list(open_dataset(tmp_path).splits["train"].batches())
    assert "weights_only" in raised.value.hint


@pytest.mark.parametrize(("style", "label_column"), [("per-split", False), ("keys", True)])
def test_open_dataset__npz_in_both_styles(tmp_path: Path, style: str, label_column: bool) -> None:
    truth = make_npz(tmp_path, n_train=11, n_test=6, style=style, label_column=label_column)  # type: ignore[arg-type]

    dataset = open_dataset(tmp_path)

    assert dataset.layout == "npz"
    assert list(dataset.splits) == ["train", "test"]
    for split in ("train", "test"):
        images, labels, _ = _all(dataset.splits[split].batches(batch_size=4))
        np.testing.assert_array_equal(np.stack(images), np.stack(truth.images[split]))
        assert labels == truth.labels[split].tolist()


@pytest.mark.reliability("data", "`.npz` with unknown array names", "exit 2: lists the arrays found")
def test_open_dataset__npz_with_unknown_array_names_lists_them(tmp_path: Path) -> None:
    np.savez(tmp_path / "train.npz", pixels=np.zeros((2, 3)), classes=np.zeros(2))

    with pytest.raises(DatasetLayoutError, match="pixels, classes"):
        open_dataset(tmp_path)


def test_open_dataset__imagefolder_shares_class_indices_across_splits(tmp_path: Path) -> None:
    root = tmp_path / "data"
    truth = make_imagefolder(root, per_class={"train": 3, "test": 2}, classes=["cat", "ant", "dog"])
    # a class folder only train has: test's label ids must not shift
    (root / "test" / "ant").rename(tmp_path / "ant-removed")

    dataset = open_dataset(root)

    assert dataset.layout == "imagefolder"
    assert dataset.class_names == ["ant", "cat", "dog"]
    assert list(dataset.splits) == ["train", "test"]
    train_images, train_labels, _ = _all(dataset.splits["train"].batches())
    assert _as_multiset(train_images, train_labels) == _as_multiset(truth.images["train"], truth.labels["train"])
    assert sorted(_all(dataset.splits["test"].batches())[1]) == [1, 1, 2, 2]  # cat=1, dog=2


def test_open_dataset__imagefolder_without_split_level_is_one_train_split(tmp_path: Path) -> None:
    truth = make_imagefolder(tmp_path, per_class=2, classes=2, split_level=False)

    dataset = open_dataset(tmp_path)

    assert list(dataset.splits) == ["train"]
    images, labels, _ = _all(dataset.splits["train"].batches())
    assert _as_multiset(images, labels) == _as_multiset(truth.images["train"], truth.labels["train"])


def test_imagefolder__decodes_mixed_modes_and_sizes_to_chw_uint8(tmp_path: Path) -> None:
    truth = make_imagefolder(tmp_path, per_class=5, classes=2, splits=("train",), mixed=True)

    images, labels, _ = _all(open_dataset(tmp_path).splits["train"].batches(batch_size=4))

    assert {image.shape for image in images} == {image.shape for image in truth.images["train"]}
    assert {image.shape[0] for image in images} == {1, 3}  # L/LA stay grey, RGB/RGBA/P are colour
    assert _as_multiset(images, labels) == _as_multiset(truth.images["train"], truth.labels["train"])


def test_imagefolder__streams_bounded_batches_and_names_corrupt_files(tmp_path: Path) -> None:
    truth = make_imagefolder(tmp_path, per_class=4, classes=2, splits=("train",), mixed=True, corrupt=2)
    batches = list(open_dataset(tmp_path).splits["train"].batches(batch_size=3))

    assert all(0 < len(batch.labels) + len(batch.unreadable) <= 3 for batch in batches)
    assert all(len({tuple(batch.images.shape[1:])}) == 1 for batch in batches)
    unreadable = sorted(path for batch in batches for path in batch.unreadable)
    assert unreadable == sorted(truth.unreadable["train"])
    assert unreadable == ["train/class_0/corrupt_0.png", "train/class_0/corrupt_1.png"]
    assert sum(len(batch.labels) for batch in batches) == truth.counts["train"]


def test_imagefolder__chunk_of_only_unreadable_files_yields_an_empty_batch(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, per_class=1, classes=1, splits=("train",), corrupt=1)

    batches = list(open_dataset(tmp_path).splits["train"].batches(batch_size=1))

    empty = [batch for batch in batches if batch.unreadable]
    assert len(empty) == 1
    assert empty[0].images.shape[0] == 0 and empty[0].labels.shape == (0,)


_packages = itertools.count()


@pytest.fixture
def package(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh module name per test (Python caches modules by name); sys.path restored afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = f"mlgate_test_userdata_{next(_packages)}"
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


@pytest.mark.parametrize(("split_style", "item"), [("train", "tensor"), ("split", "pil"), ("train", "ndarray")])
def test_open_dataset__dataset_class_with_each_constructor_and_item_kind(
    tmp_path: Path, package: str, split_style: str, item: str
) -> None:
    spec, truth = make_dataset_class(
        tmp_path / "repo", tmp_path / "data", package=package, split_style=split_style, item=item  # type: ignore[arg-type]
    )

    dataset = open_dataset(tmp_path / "data", dataset_class=spec, import_root=tmp_path / "repo")

    assert dataset.layout == "dataset-class"
    assert dataset.class_names == ["digit 0", "digit 1", "digit 2"]
    for split in ("train", "test"):
        images, labels, _ = _all(dataset.splits[split].batches(batch_size=5))
        np.testing.assert_array_equal(np.stack(images), np.stack(truth.images[split]))
        assert labels == truth.labels[split].tolist()


def test_dataset_class__constructor_without_split_argument_is_one_train_split(tmp_path: Path, package: str) -> None:
    (tmp_path / f"{package}.py").write_text(
        "import torch\n"
        "class Pairs:\n"
        "    def __init__(self):\n"
        "        self.items = [(torch.zeros(2, 2), 1), (torch.ones(2, 2), 0)]\n"
        "    def __iter__(self):\n"
        "        return iter(self.items)\n"
    )

    dataset = open_dataset(tmp_path, "dataset-class", dataset_class=f"{package}:Pairs", import_root=tmp_path)

    assert list(dataset.splits) == ["train"]
    assert _all(dataset.splits["train"].batches())[1] == [1, 0]


@pytest.mark.parametrize(
    ("source", "spec", "message"),
    [
        ("", "no-colon", "not of the form pkg.module:Class"),
        (None, "{package}_missing:Data", "Could not import"),
        ("X = 1\n", "{package}:Data", "has no attribute 'Data'"),
        ("class Data:\n    def __init__(self, train, size): pass\n", "{package}:Data", "needs size"),
        ("class Data:\n    def __init__(self, train):\n        raise FileNotFoundError('no shards')\n",
         "{package}:Data", "raised FileNotFoundError: no shards"),
        ("raise RuntimeError('boom at import')\n", "{package}:Data", "boom at import"),
    ],
)
def test_dataset_class__bad_class_raises_a_message_naming_the_problem(
    tmp_path: Path, package: str, source: str | None, spec: str, message: str
) -> None:
    if source is not None:
        (tmp_path / f"{package}.py").write_text(source)

    with pytest.raises(DatasetClassError, match=message):
        open_dataset(tmp_path, "dataset-class", dataset_class=spec.format(package=package), import_root=tmp_path)


@pytest.mark.reliability(
    "data", "`dataset-class` whose items are not (image, label) pairs",
    "exit 2: names item 0, its type and what was expected"
)
def test_dataset_class__bad_item_names_the_index(tmp_path: Path, package: str) -> None:
    (tmp_path / f"{package}.py").write_text(
        "class Data:\n"
        "    def __init__(self, train=True): pass\n"
        "    def __len__(self): return 2\n"
        "    def __getitem__(self, i): return 'just a string'\n"
    )
    dataset = open_dataset(tmp_path, dataset_class=f"{package}:Data", import_root=tmp_path)

    with pytest.raises(DatasetClassError, match=r"item 0 is a str; expected an \(image, label\) pair"):
        list(dataset.splits["train"].batches())


def test_dataset_class__imports_lazily_while_iterated_and_leaves_sys_path_as_it_was(
    tmp_path: Path, package: str
) -> None:
    (tmp_path / f"{package}.py").write_text(
        "import torch\n"
        "class Data:\n"
        "    def __init__(self, train=True): pass\n"
        "    def __len__(self): return 2\n"
        "    def __getitem__(self, i):\n"
        f"        from {package}_labels import LABELS  # first imported here, long after construction\n"
        "        return torch.zeros(2, 2), LABELS[i]\n"
    )
    (tmp_path / f"{package}_labels.py").write_text("LABELS = [1, 0]\n")
    path_before = list(sys.path)

    dataset = open_dataset(tmp_path, dataset_class=f"{package}:Data", import_root=tmp_path)
    assert sys.path == path_before
    labels = _all(dataset.splits["train"].batches())[1]

    assert labels == [1, 0]
    assert sys.path == path_before
    sys.modules.pop(f"{package}_labels", None)


@pytest.mark.reliability(
    "data", "`data` folder in no known layout",
    "exit 2: lists what was found; the fix shows each supported layout"
)
def test_open_dataset__unrecognised_folder_lists_what_was_found_and_the_layouts(tmp_path: Path) -> None:
    for name in ("README.md", "train.csv", "labels.json"):
        (tmp_path / name).write_text("x")
    (tmp_path / "notes").mkdir()

    with pytest.raises(DatasetLayoutError) as raised:
        open_dataset(tmp_path)

    text = str(raised.value)
    assert "README.md, labels.json, notes/, train.csv" in text
    for layout in ("course", "imagefolder", "npz", "dataset-class"):
        assert layout in raised.value.hint
    assert "train_images_0.pt" in raised.value.hint


@pytest.mark.reliability("data", "unrecognised folder of 20 files", "exit 2: lists a few names and “(and 12 more)”")
def test_open_dataset__lists_only_a_few_names_of_a_large_folder(tmp_path: Path) -> None:
    for i in range(20):
        (tmp_path / f"file_{i:02d}.csv").write_text("x")

    with pytest.raises(DatasetLayoutError, match=r"file_07.csv \(and 12 more\)"):
        open_dataset(tmp_path)


def test_open_dataset__forced_layout_wins_over_detection(tmp_path: Path) -> None:
    make_course(tmp_path, n_train=4, n_test=2, classes=2)
    npz_truth = make_npz(tmp_path, n_train=3, n_test=2)

    assert open_dataset(tmp_path).layout == "course"
    forced = open_dataset(tmp_path, "npz")
    assert forced.layout == "npz"
    assert _all(forced.splits["train"].batches())[1] == npz_truth.labels["train"].tolist()
    with pytest.raises(DatasetLayoutError, match="No ImageFolder images"):
        open_dataset(tmp_path, "imagefolder")


def test_open_dataset__single_npz_file_as_root(tmp_path: Path) -> None:
    truth = make_npz(tmp_path, n_train=3, n_test=2, style="keys")

    dataset = open_dataset(tmp_path / "data.npz")

    assert _all(dataset.splits["test"].batches())[1] == truth.labels["test"].tolist()


@pytest.mark.parametrize(
    ("layout", "error", "message"),
    [("auto", DatasetLayoutError, "does not exist"), ("parquet", DatasetLayoutError, "Unknown layout 'parquet'"),
     ("dataset-class", DatasetClassError, "no dataset class was given")],
)
@pytest.mark.reliability("input", "`layout: {layout}` on a missing folder", "exit 2: the message says {message}")
def test_open_dataset__bad_arguments_are_refused(tmp_path: Path, layout: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        open_dataset(tmp_path / "missing", layout)  # type: ignore[arg-type]
