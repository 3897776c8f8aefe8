"""Image issues: each issue planted among real MNIST digits is found, and real digits alone raise none."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from mlgate.data.image_issues import ImageIssueAccumulator, ImageIssues
from mlgate.data.layouts import open_dataset
from mlgate.data.stats import compute_stats
from tests.fixtures.datasets import make_npz
from tests.fixtures.mnist import mnist_digits


def _issues(*batches: tuple[torch.Tensor, int | None], ids: list[list[str]] | None = None,
            exact: bool = False) -> ImageIssues:
    """``exact``: hand in each item's count of every value, as the statistics pass does for uint8
    single-channel items (counted here in numpy), instead of letting the accumulator sample pixels."""
    acc = ImageIssueAccumulator()
    start = 0
    for n, (images, axis) in enumerate(batches):
        levels = None
        if exact:
            flat = images.reshape(images.shape[0], -1).numpy()
            levels = torch.from_numpy(np.stack([np.bincount(row, minlength=256) for row in flat]))
        acc.add(images, axis, ids[n] if ids else None, start, levels=levels)
        start += images.shape[0]
    return acc.result()


def _planted() -> tuple[torch.Tensor, dict[str, int]]:
    """400 real digits with one item of each intensity issue planted at a known index."""
    digits, _ = mnist_digits(400)
    images = digits.clone()
    rng = np.random.default_rng(0)
    planted = {"constant": 10, "near_blank": 20, "dark": 30, "bright": 40, "low_information": 50}
    images[10] = 0
    images[20] = 0
    images[20, 14, 14] = 255  # a speck on a blank frame
    images[30] = torch.from_numpy(rng.integers(0, 50, (28, 28), dtype=np.uint8))  # below a fifth of the range
    images[40] = torch.from_numpy(rng.integers(200, 256, (28, 28), dtype=np.uint8))  # above three quarters
    images[50] = 0
    images[50, 5:25, 10:11] = 128  # a faint thin line: 20 of 784 pixels, 2.6 %
    images[60] = torch.from_numpy(rng.integers(0, 16, (28, 28), dtype=np.uint8))  # one band, yet not constant
    return images, planted


@pytest.mark.parametrize("exact", [False, True], ids=["sampled", "every pixel"])
def test_image_issues__real_mnist_digits_raise_none(exact: bool) -> None:
    digits, _ = mnist_digits()
    issues = _issues((digits[:2500], None), (digits[2500:], None), exact=exact)
    assert issues.present() == {}
    assert issues.checked == 5000


@pytest.mark.parametrize("exact", [False, True], ids=["sampled", "every pixel"])
def test_image_issues__each_planted_intensity_issue_is_found_at_its_item(exact: bool) -> None:
    images, planted = _planted()
    issues = _issues((images[:256], None), (images[256:], None), exact=exact)
    for issue, item in planted.items():
        assert item in getattr(issues, issue).items, issue
    # each planted item is under its own issue and (dark speck aside) nothing else is flagged
    flagged = {name: found.items for name, found in issues.present().items()}
    assert flagged["constant"] == [10]
    assert flagged["near_blank"] == [20, 60]
    assert flagged["bright"] == [40]
    assert flagged["low_information"] == [50]
    assert set(flagged["dark"]) <= {10, 20, 30, 60}  # all-black and a black frame with a speck are dark too


def test_image_issues__float_images_in_0_1_are_judged_as_uint8_and_normalised_data_is_not() -> None:
    images, planted = _planted()
    as_float = _issues((images.float() / 255, None))
    as_uint8 = _issues((images, None))
    assert as_float.model_dump() == as_uint8.model_dump()
    normalised = (images.float() - 33.0) / 78.0  # mean 0, std 1: no range to call dark or bright against
    judged = _issues((normalised, None))
    assert judged.checked == 0 and judged.dark.total == 0
    assert judged.constant.items == [planted["constant"]]  # constancy needs no range


def test_image_issues__aspect_size_grayscale_and_channels_with_file_ids() -> None:
    rng = np.random.default_rng(1)

    def colour(n: int, h: int, w: int) -> torch.Tensor:
        return torch.from_numpy(rng.integers(0, 256, (n, 3, h, w), dtype=np.uint8))

    usual = colour(20, 28, 28)
    gray = colour(2, 28, 28)
    gray[:, 1] = gray[:, 0]
    gray[:, 2] = gray[:, 0]
    narrow = colour(1, 40, 10)  # 10 / 40 = 0.25 < 0.35
    huge = colour(1, 300, 300)  # side 300 > 10 × 28
    single = torch.from_numpy(rng.integers(0, 256, (3, 1, 28, 28), dtype=np.uint8))
    batches = [(usual, 0), (gray, 0), (narrow, 0), (huge, 0), (single, 0)]
    ids = [[f"train/a/{kind}{i}.png" for i in range(b.shape[0])]
           for kind, (b, _) in zip(["usual", "gray", "narrow", "huge", "single"], batches, strict=True)]
    issues = _issues(*batches, ids=ids)
    assert issues.grayscale_in_rgb.items == ["train/a/gray0.png", "train/a/gray1.png"]
    assert issues.odd_aspect_ratio.items == ["train/a/narrow0.png"]
    assert issues.odd_size.items == ["train/a/huge0.png"]
    assert issues.mixed_channels.total == 3
    assert issues.mixed_channels.items == ids[-1]
    assert issues.constant.total == issues.dark.total == issues.bright.total == 0


def test_image_issues__grayscale_stored_as_rgb_is_not_an_issue_when_most_are() -> None:
    digits, _ = mnist_digits(50)
    as_rgb = digits.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    assert _issues((as_rgb, 0)).present() == {}


def test_image_issues__feature_vectors_are_not_images() -> None:
    assert _issues((torch.zeros(10, 64), None)).present() == {}


def test_compute_stats__lists_image_issues_per_split(tmp_path: Path) -> None:
    truth = make_npz(tmp_path / "d", n_train=40, n_test=20, seed=3)
    train = np.stack(truth.images["train"])
    train[7] = 0
    np.savez(truth.files[0], x=train, y=truth.labels["train"].astype(np.uint8))
    stats = compute_stats(open_dataset(tmp_path / "d", "auto"))[0]
    assert stats.splits["train"].image_issues.constant.items == [7]
    assert stats.splits["test"].image_issues.present() == {}


def test_image_issues__wide_integers_and_booleans_do_not_trip_the_bands() -> None:
    rng = np.random.default_rng(2)
    wide = torch.from_numpy(rng.integers(0, 4096, (20, 1, 16, 16), dtype=np.int32))  # 12-bit scans
    wide[3] = 7
    issues = _issues((wide, 0))
    assert issues.checked == 0  # no range to judge brightness against
    assert issues.constant.items == [3]
    masks = torch.from_numpy(rng.integers(0, 2, (20, 16, 16)).astype(bool))
    masks[4] = False
    judged = _issues((masks, None))
    assert judged.checked == 20
    assert judged.constant.items == [4] and 4 not in judged.dark.items  # constant, not also dark


@pytest.mark.parametrize("shard", [3, 7, 1000])
def test_full_lists__odd_sizes_and_mixed_channels_name_every_such_file_whatever_the_shards(
        tmp_path: Path, shard: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(4)
    odd, grey = set(), set()
    for i in range(40):
        kind = "huge" if i % 13 == 5 else "grey" if i % 11 == 3 else "usual"
        side = 300 if kind == "huge" else 28
        pixels = rng.integers(0, 256, (side, side) if kind == "grey" else (side, side, 3), dtype=np.uint8)
        path = tmp_path / "train" / f"c{i % 2}" / f"{kind}{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        (odd if kind == "huge" else grey if kind == "grey" else set()).add(path.relative_to(tmp_path).as_posix())
    stats = compute_stats(open_dataset(tmp_path, "imagefolder"),
                          shard_sizes=lambda: itertools.repeat(shard))[0]
    assert stats.everything is not None
    lists = stats.everything.image_issues["train"]
    assert sorted(lists["odd_size"]) == sorted(odd) and len(odd) == 3
    assert sorted(lists["mixed_channels"]) == sorted(grey) and len(grey) == 4
