"""mlgate.data.stats: every statistic checked against a plain numpy computation on the ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mlgate.data.layouts import open_dataset
from mlgate.data.stats import SplitStats, compute_stats
from tests.fixtures.datasets import GroundTruth, make_course, make_imagefolder, make_npz

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

    stats, _ = compute_stats(open_dataset(tmp_path), batch_size=64)

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

    stats, _ = compute_stats(open_dataset(tmp_path))

    expected = sorted(set(truth.labels["train"]) - set(truth.labels["test"]))
    assert len(expected) >= 6  # 4 test items cannot cover 10 classes
    assert stats.splits["test"].missing_classes == [str(c) for c in expected]
    assert stats.splits["train"].missing_classes == []


def test_compute_stats__imagefolder_class_without_images_in_a_split_is_missing(tmp_path: Path) -> None:
    make_imagefolder(tmp_path / "data", per_class={"train": 2, "test": 1}, classes=["a", "b", "c"])
    (tmp_path / "data" / "test" / "b").rename(tmp_path / "b")

    stats, _ = compute_stats(open_dataset(tmp_path / "data"))

    assert stats.class_names == ["a", "b", "c"]
    assert stats.splits["test"].missing_classes == ["1"]


def test_compute_stats__uint8_channels_last_per_channel_moments_and_histogram(tmp_path: Path) -> None:
    truth = make_npz(tmp_path, n_train=50, n_test=10, shape=(8, 8, 3), dtype="uint8")

    stats, _ = compute_stats(open_dataset(tmp_path), batch_size=16)

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

    stats, _ = compute_stats(open_dataset(tmp_path), batch_size=16)

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

    stats, _ = compute_stats(open_dataset(tmp_path), batch_size=10)

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

    stats, _ = compute_stats(open_dataset(tmp_path), batch_size=4)

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

    stats, _ = compute_stats(open_dataset(tmp_path))

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

    stats, _ = compute_stats(open_dataset(tmp_path))

    assert stats.leakage.per_split == {"test": 0, "valid": 0}
    assert stats.leakage.conflicting_labels == 0


def test_compute_stats__samples_up_to_k_per_label_from_train(tmp_path: Path) -> None:
    truth = make_course(tmp_path, n_train=25, n_test=5, classes=4, seed=2)

    _, samples = compute_stats(open_dataset(tmp_path), samples_per_class=3, batch_size=7)

    train = np.stack(truth.images["train"])
    for label in range(4):
        expected = train[truth.labels["train"] == label][:3]
        np.testing.assert_array_equal(samples[label].numpy(), expected)


def test_compute_stats__split_of_only_unreadable_files_has_empty_statistics(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, per_class=0, classes=1, splits=("train",), corrupt=0)
    folder = tmp_path / "train" / "class_0"
    (folder / "broken.png").write_bytes(b"nope")

    stats, samples = compute_stats(open_dataset(tmp_path))

    s = stats.splits["train"]
    assert s.count == 0 and s.unreadable == ["train/class_0/broken.png"]
    assert (s.min, s.max, s.channel_mean, s.histogram, s.imbalance_ratio) == (None, None, [], [], None)
    assert samples == {}


def test_compute_stats__bundled_example_data_shows_its_planted_findings() -> None:
    stats, samples = compute_stats(open_dataset(EXAMPLE_DATA))

    assert stats.splits["train"].count > stats.splits["test"].count > 0
    assert stats.splits["train"].duplicates == 2
    assert stats.leakage.train_test_exact_duplicates == 3
    assert sorted(samples) == list(range(10))
