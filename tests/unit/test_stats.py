"""mlgate.data.stats: every statistic checked against a plain numpy computation on the ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mlgate.data import stats as stats_module
from mlgate.data.layouts import open_dataset
from mlgate.data.stats import MAX_LISTED_ITEMS, MAX_PICTURED_LEAKS, SplitStats, compute_stats
from tests.fixtures.datasets import GroundTruth, make_course, make_dataset_class, make_imagefolder, make_npz

EXAMPLE_DATA = Path(__file__).resolve().parents[2] / "examples" / "data"


def _finite_items(images: list[np.ndarray]) -> list[np.ndarray]:
    return [image for image in images if np.isfinite(image).all()]


def _assert_labels_match(stats: SplitStats, truth: GroundTruth, split: str) -> None:
    values, counts = np.unique(truth.labels[split], return_counts=True)
    assert stats.label_counts == {str(v): int(c) for v, c in zip(values, counts, strict=True)}
    assert stats.label_shares == pytest.approx({str(v): c / counts.sum() for v, c in zip(values, counts, strict=True)})
    assert stats.imbalance_ratio == pytest.approx(counts.max() / counts.min())


def test_compute_stats__course_matches_numpy_and_planted_findings(tmp_path: Path) -> None:
    truth = make_course(
        tmp_path, n_train=300, n_test=80, shards=3, duplicates=4, leaks=3, conflicts=2, nonfinite=5, seed=7
    )

    stats, _, _ = compute_stats(open_dataset(tmp_path), batch_size=64)

    assert stats.layout == "course"
    for split in ("train", "test"):
        s = stats.splits[split]
        finite = np.stack(_finite_items(truth.images[split])).astype(np.float64)
        assert s.count == truth.counts[split]
        assert s.shape == [28, 28] and s.shapes == {"28x28": truth.counts[split]}
        assert s.dtype == "float32" and s.channels == 1
        assert s.min == pytest.approx(finite.min()) and s.max == pytest.approx(finite.max())
        assert s.channel_mean == pytest.approx([finite.mean()], rel=1e-12)
        assert s.channel_std == pytest.approx([finite.std()], rel=1e-9)
        assert s.nonfinite == truth.nonfinite[split]
        assert s.duplicates == truth.duplicates[split]
        assert s.unreadable == []
        _assert_labels_match(s, truth, split)
    assert stats.splits["train"].nonfinite == 5 and stats.splits["train"].duplicates == 6
    assert stats.leakage.per_split == truth.leaks == {"test": 3}
    assert stats.leakage.train_test_exact_duplicates == 3
    assert stats.leakage.conflicting_labels == truth.conflicts == 2


def test_compute_stats__missing_classes_are_those_other_splits_have(tmp_path: Path) -> None:
    truth = make_course(tmp_path, n_train=40, n_test=4, classes=10, seed=3)

    stats, _, _ = compute_stats(open_dataset(tmp_path))

    expected = sorted(set(truth.labels["train"]) - set(truth.labels["test"]))
    assert len(expected) >= 6  # 4 test items cannot cover 10 classes
    assert stats.splits["test"].missing_classes == [str(c) for c in expected]
    assert stats.splits["train"].missing_classes == []


def test_compute_stats__imagefolder_class_without_images_in_a_split_is_missing(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "data", per_class={"train": 2, "test": 1}, classes=["a", "b", "c"])
    (tmp_path / "data" / "test" / "b").rename(tmp_path / "b")

    stats, _, _ = compute_stats(open_dataset(tmp_path / "data"))

    assert stats.class_names == ["a", "b", "c"]
    assert stats.splits["test"].missing_classes == ["1"]


def test_compute_stats__uint8_channels_last_per_channel_moments_and_histogram(tmp_path: Path) -> None:
    truth = make_npz(tmp_path, n_train=50, n_test=10, shape=(8, 8, 3), dtype="uint8")

    stats, _, _ = compute_stats(open_dataset(tmp_path), batch_size=16)

    train = stats.splits["train"]
    pixels = np.stack(truth.images["train"]).reshape(-1, 3).astype(np.float64)
    assert train.channels == 3 and train.shape == [8, 8, 3]
    assert train.channel_mean == pytest.approx(pixels.mean(axis=0).tolist(), rel=1e-12)
    assert train.channel_std == pytest.approx(pixels.std(axis=0).tolist(), rel=1e-12)
    assert (train.min, train.max) == (pixels.min(), pixels.max())
    assert train.histogram_edges == [4.0 * i for i in range(65)]
    assert train.histogram == np.histogram(pixels, bins=64, range=(0, 256))[0].tolist()


def test_compute_stats__float_channels_first_and_histogram_fixed_to_unit_range(tmp_path: Path) -> None:
    truth = make_course(tmp_path, n_train=40, n_test=10, shape=(3, 6, 5), classes=4)

    stats, _, _ = compute_stats(open_dataset(tmp_path), batch_size=16)

    for split in ("train", "test"):
        s = stats.splits[split]
        images = np.stack(truth.images[split]).astype(np.float64)
        assert s.channels == 3
        assert s.channel_mean == pytest.approx(images.mean(axis=(0, 2, 3)).tolist(), rel=1e-12)
        assert s.channel_std == pytest.approx(images.std(axis=(0, 2, 3)).tolist(), rel=1e-9)
        assert s.histogram_edges == pytest.approx(np.linspace(0, 1, 65).tolist())  # comparable across splits
        assert s.histogram == np.histogram(images, bins=64, range=(0, 1))[0].tolist()


def test_histogram__widens_exactly_when_later_batches_exceed_the_range(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    # each batch of 10 reaches further out: the grid must merge bins without losing a count
    images = np.concatenate([rng.normal(0, 0.05 * 4**k, (10, 4, 4)) for k in range(5)]).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=images, y=np.zeros(len(images), dtype=np.int64))

    stats, _, _ = compute_stats(open_dataset(tmp_path), batch_size=10)

    s = stats.splits["train"]
    edges = np.array(s.histogram_edges)
    assert edges[0] <= images.min() and images.max() <= edges[-1]
    assert np.allclose(np.diff(edges), edges[1] - edges[0]) and np.log2(edges[1] - edges[0]).is_integer()
    assert s.histogram == np.histogram(images, bins=edges)[0].tolist()
    assert sum(s.histogram) == images.size


def test_compute_stats__imagefolder_mixed_shapes_unreadable_duplicates_and_leaks(tmp_path: Path) -> None:
    truth = make_imagefolder(
        tmp_path, per_class=5, classes=3, mixed=True, corrupt=2, duplicates=2, leaks=2, seed=1
    )

    stats, _, _ = compute_stats(open_dataset(tmp_path), batch_size=4)

    train = stats.splits["train"]
    assert train.count == truth.counts["train"]
    expected_shapes: dict[str, int] = {}
    for image in truth.images["train"]:
        key = "x".join(map(str, image.shape))
        expected_shapes[key] = expected_shapes.get(key, 0) + 1
    assert train.shapes == expected_shapes
    assert train.shape is None and train.channels is None and train.dtype == "uint8"
    pixels = np.concatenate([image.reshape(-1) for image in truth.images["train"]]).astype(np.float64)
    assert train.channel_mean == pytest.approx([pixels.mean()], rel=1e-12)  # one value over all pixels
    assert train.channel_std == pytest.approx([pixels.std()], rel=1e-12)
    assert sorted(train.unreadable) == sorted(truth.unreadable["train"])
    assert train.duplicates == truth.duplicates["train"] == 2
    assert stats.leakage.per_split == truth.leaks == {"test": 2}
    assert stats.leakage.conflicting_labels == 0
    _assert_labels_match(train, truth, "train")


def test_compute_stats__leakage_is_counted_for_every_non_train_split(tmp_path: Path) -> None:
    truth = make_course(tmp_path, n_train=30, n_test=10, shards=None, leaks=2)
    train = np.stack(truth.images["train"])
    valid = np.concatenate([train[[5, 6, 6]], np.full((2, 28, 28), 0.5, dtype=np.float32)])
    torch.save(torch.from_numpy(valid), tmp_path / "valid_images.pt")
    torch.save(torch.from_numpy(truth.labels["train"][[5, 6, 6, 0, 0]]), tmp_path / "valid_target.pt")

    stats, _, _ = compute_stats(open_dataset(tmp_path))

    assert stats.leakage.per_split == {"test": 2, "valid": 3}
    assert stats.leakage.train_test_exact_duplicates == 5
    assert stats.splits["valid"].duplicates == 2  # item 6 repeated, and the two constant images


def test_compute_stats__same_bytes_with_another_dtype_or_shape_are_different_content(tmp_path: Path) -> None:
    base = torch.arange(16, dtype=torch.int32)
    torch.save(base.reshape(1, 4, 4), tmp_path / "train_images.pt")
    torch.save(torch.tensor([0]), tmp_path / "train_target.pt")
    torch.save(base.reshape(1, 2, 8), tmp_path / "test_images.pt")
    torch.save(torch.tensor([1]), tmp_path / "test_target.pt")
    torch.save(base.view(torch.float32).reshape(1, 4, 4), tmp_path / "valid_images.pt")
    torch.save(torch.tensor([2]), tmp_path / "valid_target.pt")

    stats, _, _ = compute_stats(open_dataset(tmp_path))

    assert stats.leakage.per_split == {"test": 0, "valid": 0}
    assert stats.leakage.conflicting_labels == 0


def test_compute_stats__samples_up_to_k_per_label_from_train(tmp_path: Path) -> None:
    truth = make_course(tmp_path, n_train=25, n_test=5, classes=4, seed=2)

    _, samples, _ = compute_stats(open_dataset(tmp_path), samples_per_class=3, batch_size=7)

    train = np.stack(truth.images["train"])
    for label in range(4):
        expected = train[truth.labels["train"] == label][:3]
        np.testing.assert_array_equal(samples[label].numpy(), expected)


def test_compute_stats__split_of_only_unreadable_files_has_empty_statistics(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, per_class=0, classes=1, splits=("train",), corrupt=0)
    folder = tmp_path / "train" / "class_0"
    (folder / "broken.png").write_bytes(b"nope")

    stats, samples, _ = compute_stats(open_dataset(tmp_path))

    s = stats.splits["train"]
    assert s.count == 0 and s.unreadable == ["train/class_0/broken.png"]
    assert (s.min, s.max, s.channel_mean, s.histogram, s.imbalance_ratio) == (None, None, [], [], None)
    assert samples == {}


def test_compute_stats__bundled_example_data_shows_its_planted_findings() -> None:
    stats, samples, _ = compute_stats(open_dataset(EXAMPLE_DATA))

    assert stats.splits["train"].count > stats.splits["test"].count > 0
    assert stats.splits["train"].duplicates == 2
    assert stats.leakage.train_test_exact_duplicates == 3
    assert sorted(samples) == list(range(10))


# ---------------------------------------------------------------------------------------------------
# Which items: duplicates, leaks and conflicting labels named, capped, with their totals


def _duplicates_of(stats: SplitStats) -> dict[int | str, int | str]:
    return {d.item: d.first for d in stats.duplicate_items.items}


def test_compute_stats__course_names_planted_duplicates_leaks_and_conflicts_by_index(tmp_path: Path) -> None:
    truth = make_course(tmp_path, n_train=300, n_test=80, shards=3, duplicates=4, leaks=3, conflicts=2, seed=7)

    # batches of 64 over 3 shards of 100: indices must run on across batches and shards
    stats, _, _ = compute_stats(open_dataset(tmp_path), batch_size=64)

    train = stats.splits["train"]
    assert _duplicates_of(train) == truth.duplicate_of["train"] and len(truth.duplicate_of["train"]) == 6
    assert train.duplicate_items.total == train.duplicates == 6
    assert [d.item for d in train.duplicate_items.items] == sorted(truth.duplicate_of["train"])  # reading order
    labels = truth.labels["train"]
    assert [d.label for d in train.duplicate_items.items] == [labels[i] for i in sorted(truth.duplicate_of["train"])]
    assert stats.splits["test"].duplicate_items.total == 0 and stats.splits["test"].duplicate_items.items == []
    leaked = stats.leakage.leaked_items["test"]
    assert leaked.total == 3 and {e.item: e.train_item for e in leaked.items} == truth.leaked_from["test"]
    for entry in leaked.items:
        assert entry.label == truth.labels["test"][entry.item]
        assert entry.train_label == truth.labels["train"][entry.train_item]
    conflicts = stats.leakage.conflicting_items
    assert conflicts.total == stats.leakage.conflicting_labels == 2
    assert {c.item: c.first_item for c in conflicts.items} == truth.relabelled
    for c in conflicts.items:
        assert (c.split, c.first_split) == ("train", "train")
        assert c.label == truth.labels["train"][c.item] != c.first_label == truth.labels["train"][c.first_item]


@pytest.mark.parametrize("rows_at_once", [None, 37])
def test_compute_stats__lists_are_capped_at_100_with_the_full_total(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows_at_once: int | None) -> None:
    if rows_at_once is not None:  # the duplicates are listed a chunk of rows at a time: the same lists
        monkeypatch.setattr(stats_module, "_ROWS_AT_ONCE", rows_at_once)
    truth = make_course(tmp_path, n_train=700, n_test=200, shards=2, duplicates=120, leaks=130, conflicts=110,
                        classes=5, seed=4)

    stats, _, leaked = compute_stats(open_dataset(tmp_path), batch_size=50)

    train = stats.splits["train"]
    repeats = sorted(truth.duplicate_of["train"])  # 120 duplicates + 110 relabelled copies
    assert train.duplicate_items.total == train.duplicates == len(repeats) == 230
    assert [d.item for d in train.duplicate_items.items] == repeats[:MAX_LISTED_ITEMS]
    # every repeat is kept for the full list, and the repeats form one group per repeated content
    assert {d.item: d.first for d in train.duplicate_items.every} == truth.duplicate_of["train"]
    assert train.duplicate_items.groups == len(set(truth.duplicate_of["train"].values()))
    test = stats.leakage.leaked_items["test"]
    assert test.total == stats.leakage.per_split["test"] == 130
    assert [e.item for e in test.items] == list(range(MAX_LISTED_ITEMS))
    assert all(e.train_item == truth.leaked_from["test"][e.item] for e in test.items)
    conflicts = stats.leakage.conflicting_items
    assert conflicts.total == 110 and len(conflicts.items) == MAX_LISTED_ITEMS
    assert [c.item for c in conflicts.items] == sorted(truth.relabelled)[:MAX_LISTED_ITEMS]
    assert len(leaked) == MAX_PICTURED_LEAKS == 8


def test_compute_stats__keeps_the_pixels_of_the_first_8_leaked_items(tmp_path: Path) -> None:
    truth = make_course(tmp_path, n_train=200, n_test=40, shards=2, leaks=11, seed=5)

    _, _, leaked = compute_stats(open_dataset(tmp_path), batch_size=16)

    assert [(p.split, p.item, p.train_item) for p in leaked] == [
        ("test", n, truth.leaked_from["test"][n]) for n in range(8)
    ]
    train, test = np.stack(truth.images["train"]), np.stack(truth.images["test"])
    for p in leaked:
        np.testing.assert_array_equal(p.image.numpy(), test[p.item])
        np.testing.assert_array_equal(p.image.numpy(), train[p.train_item])  # an exact copy: one image for both
        assert (p.label, p.train_label) == (truth.labels["test"][p.item], truth.labels["train"][p.train_item])


def test_compute_stats__imagefolder_names_items_by_path_relative_to_the_data_folder(tmp_path: Path) -> None:
    truth = make_imagefolder(tmp_path, per_class=5, classes=3, mixed=True, corrupt=1, duplicates=2, leaks=2, seed=1)

    stats, _, leaked = compute_stats(open_dataset(tmp_path), batch_size=4)

    assert _duplicates_of(stats.splits["train"]) == truth.duplicate_of["train"]
    assert all(isinstance(item, str) and item.startswith("train/") for item in truth.duplicate_of["train"])
    test = stats.leakage.leaked_items["test"]
    assert test.total == 2 and {e.item: e.train_item for e in test.items} == truth.leaked_from["test"]
    assert sorted(p.item for p in leaked) == sorted(truth.leaked_from["test"])


def test_compute_stats__imagefolder_of_one_split_names_items_from_the_class_folder(tmp_path: Path) -> None:
    truth = make_imagefolder(tmp_path, per_class=3, classes=2, split_level=False, duplicates=1, seed=3)

    stats, _, _ = compute_stats(open_dataset(tmp_path))

    assert _duplicates_of(stats.splits["train"]) == truth.duplicate_of["train"]
    assert next(iter(truth.duplicate_of["train"])) == "class_0/000002.png"


def test_compute_stats__npz_and_dataset_class_name_leaks_by_index(tmp_path: Path) -> None:
    npz_truth = make_npz(tmp_path / "npz", n_train=30, n_test=10, leaks=4)
    spec, class_truth = make_dataset_class(tmp_path / "repo", tmp_path / "repo" / "data", package="leaky_pkg",
                                           n_train=12, n_test=6, leaks=3)

    npz, _, _ = compute_stats(open_dataset(tmp_path / "npz"), batch_size=3)
    by_class, _, _ = compute_stats(open_dataset(tmp_path / "repo" / "data", "dataset-class", dataset_class=spec,
                                                import_root=tmp_path / "repo"), batch_size=4)

    leaked = npz.leakage.leaked_items["test"]
    assert {e.item: e.train_item for e in leaked.items} == npz_truth.leaked_from["test"] == {0: 0, 1: 1, 2: 2, 3: 3}
    leaked = by_class.leakage.leaked_items["test"]
    assert {e.item: e.train_item for e in leaked.items} == class_truth.leaked_from["test"] == {0: 1, 1: 2, 2: 3}


def test_compute_stats__conflict_across_splits_names_where_the_content_came_first(tmp_path: Path) -> None:
    image = np.full((1, 4, 4), 7, dtype=np.uint8)
    others = np.arange(2 * 16, dtype=np.uint8).reshape(2, 4, 4)
    np.savez(tmp_path / "train.npz", x=np.concatenate([others, image]), y=np.array([0, 1, 2]))
    np.savez(tmp_path / "test.npz", x=np.concatenate([image, image]), y=np.array([2, 5]))

    stats, _, _ = compute_stats(open_dataset(tmp_path))

    (conflict,) = stats.leakage.conflicting_items.items
    assert (conflict.split, conflict.item, conflict.label) == ("test", 1, 5)
    assert (conflict.first_split, conflict.first_item, conflict.first_label) == ("train", 2, 2)
    assert {e.item: (e.train_item, e.label, e.train_label) for e in stats.leakage.leaked_items["test"].items} == {
        0: (2, 2, 2), 1: (2, 5, 2)}
    assert _duplicates_of(stats.splits["test"]) == {1: 0}


def test_compute_stats__bundled_example_data_names_its_planted_items() -> None:
    stats, _, leaked = compute_stats(open_dataset(EXAMPLE_DATA))

    # reference: the same bytes, found by brute force over the tensors themselves
    train = np.concatenate([torch.load(EXAMPLE_DATA / f"train_images_{i}.pt").numpy() for i in (0, 1)])
    test = torch.load(EXAMPLE_DATA / "test_images.pt").numpy()
    first: dict[bytes, int] = {}
    repeats: dict[int | str, int | str] = {}
    for i, row in enumerate(train):
        if first.setdefault(row.tobytes(), i) != i:
            repeats[i] = first[row.tobytes()]
    copies = {i: first[row.tobytes()] for i, row in enumerate(test) if row.tobytes() in first}
    assert _duplicates_of(stats.splits["train"]) == repeats and len(repeats) == 2
    assert {e.item: e.train_item for e in stats.leakage.leaked_items["test"].items} == copies
    assert sorted(copies) == [0, 10, 20]  # where make_example_data.py put them
    assert [p.item for p in leaked] == [0, 10, 20]
