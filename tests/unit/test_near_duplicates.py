"""Near-duplicates and near-leakage on real MNIST digits: JPEG, one-pixel shifts and brightness changes
of a digit are found, distinct digits of one class are not, copies are reported as groups confirmed
about once per member, and the hash search is exact for its radius (checked against brute force)."""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from mlgate.cli import main
from mlgate.data.layouts import open_dataset
from mlgate.data.near_duplicates import (
    RADIUS,
    REFINED_ALIGNMENTS,
    SMOOTH_SIGMA,
    THUMB,
    NearDuplicateFinder,
    NearDuplicateStats,
    coarse_centre,
    coarse_hashes,
    coarse_pairs,
    components,
    framed,
    framed_sizes,
    grow_groups,
    hamming_pairs,
    perceptual_hashes,
    pixel_distances,
    refined_distances,
    spectrum_centre,
    thumbnails,
)
from mlgate.data.report import build_report, render_markdown
from mlgate.data.stats import compute_stats, item_keys
from mlgate.figures.images import CannotDrawFigure
from mlgate.figures.items import draw_near_groups
from mlgate.figures.worker import NearGroups, _load_jobs
from mlgate.settings import DataStatsSettings
from tests.fixtures.mnist import mnist_digits
from tests.fixtures.perturbed_digits import brightness, jpeg, near_duplicate_set, shift

DEFAULT_DISTANCE = DataStatsSettings.model_fields["near_duplicate_distance"].default


def find(splits: dict[str, tuple[torch.Tensor, torch.Tensor]], distance: float = DEFAULT_DISTANCE,
         batch: int = 256) -> NearDuplicateStats:
    """The finder fed as compute_stats feeds it: train first, batch by batch, with content keys."""
    finder = NearDuplicateFinder(max_listed=10**6)
    for name in sorted(splits, key=lambda n: n != "train"):
        images, labels = splits[name]
        finder.start(name)
        for start in range(0, len(images), batch):
            part = images[start : start + batch]
            finder.add(part, labels[start : start + batch], item_keys(part), None)
    return finder.result(distance)


def reference_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The pixel distance written out plainly: the central window of ``a`` against every window of ``b``
    moved by up to one pixel, each z-scored, half the RMS difference, smallest of the nine."""
    def z(w: np.ndarray) -> np.ndarray:
        w = w.astype(np.float64) - w.mean()
        return w / np.sqrt((w**2).mean())

    centre = z(a[1:-1, 1:-1])
    n = a.shape[0] - 2
    return min(float(np.sqrt(((centre - z(b[1 + dy : 1 + dy + n, 1 + dx : 1 + dx + n])) ** 2).mean()) / 2)
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


# ---------------------------------------------------------------------------------------------------
# thumbnails, distance, search


def test_thumbnails__keep_a_digit_on_its_pixel_grid_and_downscale_large_colour_images() -> None:
    digits, _ = mnist_digits(3)
    small, box = thumbnails(digits)
    assert box == (2, 2, 28, 28) and small.shape == (3, THUMB, THUMB)
    assert torch.equal(small[:, 2:30, 2:30], digits)
    assert int(small[:, 0].max()) == 0  # padded with the background (0 on MNIST)

    rgb = torch.randint(0, 256, (2, 64, 80, 3), dtype=torch.uint8)  # channel-last photos, not square
    large, box = thumbnails(rgb)
    # the whole picture resampled onto the grid as PIL resizes (bilinear with an antialiasing filter)
    gray = rgb.double().mean(-1).round().numpy().astype(np.float32)
    expected = np.stack([np.asarray(Image.fromarray(g).resize((THUMB, THUMB), Image.Resampling.BILINEAR))
                         for g in gray])
    assert box == (0, 0, THUMB, THUMB)
    assert np.abs(large.numpy() - expected).max() <= 1.5  # the float32 path rounds once more

    normalised = (digits.float() / 255 - 0.1307) / 0.3081  # the course's float tensors
    normalised[1, 5, 5] = float("nan")  # a broken pixel counts as 0, the rest of the item as usual
    stretched, _ = thumbnails(normalised)
    plain = torch.nan_to_num(normalised.double())
    low, high = plain.amin((1, 2), keepdim=True), plain.amax((1, 2), keepdim=True)
    assert ((stretched[:, 2:30, 2:30].double() - ((plain - low) / (high - low) * 255).round()).abs() <= 1).all()

    assert thumbnails(torch.zeros(5, 10)) is None  # feature vectors: nothing to look at


def test_pixel_distance__matches_a_plain_computation_and_ignores_brightness_and_one_pixel_shifts() -> None:
    digits, _ = mnist_digits(40)
    thumbs = thumbnails(digits)[0]
    a, b = thumbs[:20], thumbs[20:]

    ours = pixel_distances(a, b).numpy()

    expected = [reference_distance(x.numpy(), y.numpy()) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    assert ours.min() > 0.3  # different digits are far apart
    same = thumbnails(torch.stack([torch.from_numpy(brightness(shift(d.numpy(), 1, -1), 20)) for d in digits[:20]]))[0]
    # +20 lifts the background too: only clipping at 255 differs, a shift is undone exactly
    assert pixel_distances(a, same).max() < 0.03
    negative = pixel_distances(a[:1], 255 - a[:1]).item()  # 1 unshifted; a shifted window correlates less
    assert negative == pytest.approx(reference_distance(a[0].numpy(), 255 - a[0].numpy()), abs=1e-4)
    assert negative > 0.85


def test_hamming_pairs__finds_exactly_the_pairs_within_its_radius() -> None:
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 2**63, (1200, 4), dtype=np.int64).view(np.uint64).copy()
    # plant pairs at every distance 0..RADIUS + 2 from earlier hashes, bits anywhere in the 256
    for k in range(400):
        flipped = hashes[k].copy()
        for bit in rng.choice(256, k % (RADIUS + 3), replace=False):
            flipped[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
        hashes[800 + k % 400] = flipped
    distance = np.bitwise_count(hashes[:, None, :] ^ hashes[None, :, :]).sum(2)

    i, j = hamming_pairs(hashes)
    found = sorted(zip(i.tolist(), j.tolist(), strict=True))
    brute = sorted(zip(*np.nonzero(np.triu(distance <= RADIUS, 1)), strict=True))
    assert found == [(int(a), int(b)) for a, b in brute]
    assert len(found) > 250  # the planted pairs within the radius, each exactly once

    i, j = hamming_pairs(hashes[:600], hashes[600:])
    cross = sorted(zip(*np.nonzero(distance[:600, 600:] <= RADIUS), strict=True))
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(int(a), int(b)) for a, b in cross]


def test_hashes__a_shifted_digit_has_the_same_hash_and_distinct_digits_far_apart() -> None:
    digits, _ = mnist_digits(500)
    thumbs = thumbnails(digits)[0]
    centre = spectrum_centre(thumbs)
    moved = thumbnails(torch.from_numpy(np.stack([shift(d.numpy(), -1, 1) for d in digits])))[0]

    original, shifted = perceptual_hashes(thumbs, centre), perceptual_hashes(moved, centre)

    assert original.shape == (500, 4)
    flips = np.bitwise_count(original ^ shifted).sum(1)
    assert np.median(flips) == 0 and (flips <= RADIUS).mean() >= 0.99
    distinct = np.bitwise_count(original[:250] ^ original[250:]).sum(1)
    assert distinct.min() > 3 * RADIUS
    assert 0.4 < np.unpackbits(original.view(np.uint8)).mean() < 0.6  # balanced bits


# ---------------------------------------------------------------------------------------------------
# what a user sees


def test_near_leakage__finds_jpeg_shifted_and_brightened_copies_of_real_digits_and_nothing_else() -> None:
    digits, labels = mnist_digits(1200)
    train_images, train_labels = digits[:1000], labels[:1000]
    sources = [3, 14, 159, 265, 358, 979, 323, 846]
    copies = [jpeg(digits[3].numpy(), 75), jpeg(digits[14].numpy(), 60), shift(digits[159].numpy(), 1, 0),
              shift(digits[265].numpy(), -1, -1), brightness(digits[358].numpy(), 15),
              brightness(digits[979].numpy(), -20), brightness(shift(digits[323].numpy(), 0, 1), 10),
              jpeg(brightness(digits[846].numpy(), -10), 80)]
    # test: 100 distinct digits (same classes as train), the 8 copies at known places, one exact copy
    test_images = digits[1000:1100].clone()
    test_labels = labels[1000:1100].clone()
    places = [5, 17, 23, 42, 50, 61, 77, 99]
    for place, source, copy in zip(places, sources, copies, strict=True):
        test_images[place], test_labels[place] = torch.from_numpy(copy), train_labels[source]
    test_images[30], test_labels[30] = train_images[500], train_labels[500]  # exact: reported by stats.py

    found = find({"train": (train_images, train_labels), "test": (test_images, test_labels)})

    leaked = found.leaked["test"]
    assert leaked.total == 8
    assert [(e.item, e.train_item) for e in leaked.items] == list(zip(places, sources, strict=True))
    assert all(e.distance < 0.06 for e in leaked.items)
    assert found.near_leaked == 8
    # the picture: each leaked item beside its closest train item, the pixels as read on both sides
    assert [g.members for g in found.pictured] == [
        [("test", i, int(train_labels[s])), ("train", s, int(train_labels[s]))] for i, s in zip(places, sources,
                                                                                               strict=True)]
    assert torch.equal(found.pictured[0].images[1], train_images[3])
    assert not torch.equal(found.pictured[0].images[0], found.pictured[0].images[1])
    # the full listing holds every leaked item too
    assert [(e.item, e.train_item) for e in found.listing.leaked["test"]] == list(zip(places, sources, strict=True))


def test_distinct_digits_of_one_class__are_not_near_duplicates() -> None:
    digits, labels = mnist_digits()

    found = find({"train": (digits, labels)})

    assert found.checked and found.within["train"].total == 0
    # the closest distinct pairs of the class that looks most alike (ones), by brute force
    ones = thumbnails(digits[labels == 1][:300])[0]
    i, j = np.triu_indices(len(ones), 1)
    closest = pixel_distances(ones[torch.from_numpy(i)], ones[torch.from_numpy(j)]).min().item()
    assert closest > DEFAULT_DISTANCE


def _grouped_pairs(found: NearDuplicateStats) -> set[tuple[int, int]]:
    groups: dict[int, list[int]] = {}
    for member in found.listing.members:
        groups.setdefault(member.group, []).append(int(member.item))
    return {(a, b) for items in groups.values() for a in items for b in items if a < b}


def test_precision_and_recall__on_real_digits_with_planted_jpeg_shifted_and_brightened_copies() -> None:
    data = near_duplicate_set(originals=2000, copies=300, seed=0)

    found = find({"train": (data.images, data.labels)})

    pairs = _grouped_pairs(found)
    true = len(pairs & data.pairs)
    precision, recall = true / len(pairs), true / len(data.pairs)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    for kind in ("jpeg", "shift", "brightness", "all three"):
        planted = {pair for pair, k in data.kinds.items() if k == kind}
        assert len(pairs & planted) / len(planted) >= 0.9, kind


def test_groups__a_picture_copied_14_times_is_one_group_confirmed_13_times() -> None:
    digits, labels = mnist_digits(200)
    rng = np.random.default_rng(3)
    deltas = rng.choice([d for d in range(-20, 21) if d], 13, replace=False)  # 13 different copies, none exact
    copies = [brightness(digits[7].numpy(), int(delta)) for delta in deltas]
    images = torch.cat([digits, torch.from_numpy(np.stack(copies))])

    finder = NearDuplicateFinder(max_listed=10**6)
    finder.start("train")
    finder.add(images, torch.cat([labels, labels[7].repeat(13)]), item_keys(images), None)
    found = finder.result(DEFAULT_DISTANCE)

    groups = found.within["train"]
    assert groups.total == 1 and groups.items == 14 and groups.largest == 14
    assert groups.groups[0].items == [7, *range(200, 213)]
    assert found.confirmations == 13  # not the 91 pairs within the group


def test_grow_groups__confirms_a_forest_and_finds_the_same_components_as_confirming_every_pair() -> None:
    rng = np.random.default_rng(11)
    n = 300
    truth = rng.integers(0, 20, n)  # 20 true groups; candidates: every pair of a group plus random false ones
    i, j = np.triu_indices(n, 1)
    same = truth[i] == truth[j]
    noise = rng.random(len(i)) < 0.002
    pick = same | noise
    i, j = i[pick], j[pick]
    weight = rng.integers(0, 12, len(i))
    asked: list[int] = []

    def confirm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        asked.append(len(a))
        return np.where(truth[a] == truth[b], 0.01, np.nan)

    ci, cj, _ = grow_groups(n, i, j, weight, confirm)

    expected = components(n, i[same[pick]], j[same[pick]])
    assert np.array_equal(components(n, ci, cj), expected)
    groups = len(np.unique(truth))
    assert len(ci) == n - groups  # a spanning forest: one confirmation per member beyond the first
    # each false candidate is asked about at most once (then dropped); the true ones only along a forest
    assert sum(asked) <= n - groups + int((noise & ~same).sum())
    assert sum(asked) < same.sum() / 5  # far fewer than every true pair


def test_exact_copies__are_left_to_the_exact_duplicate_report() -> None:
    digits, labels = mnist_digits(50)
    images = torch.cat([digits, digits[:1], torch.from_numpy(jpeg(digits[1].numpy()))[None]])
    all_labels = torch.cat([labels, labels[:2]])

    others, other_labels = mnist_digits(80)
    found = find({"train": (images, all_labels), "test": (others[50:], other_labels[50:])}, batch=7)

    assert [g.items for g in found.within["train"].groups] == [[1, 51]]  # not (0, 50): exact
    assert found.within["train"].items == 2
    assert found.leaked["test"].total == 0 and found.within["test"].total == 0


def test_feature_vectors__are_not_searched() -> None:
    found = find({"train": (torch.rand(30, 8), torch.zeros(30, dtype=torch.int64))})
    assert not found.checked and found.within == {} and found.pictured == []


def test_report__says_what_leaked_nearly_and_what_to_do(tmp_path: Path) -> None:
    digits, labels = mnist_digits(300)
    train, test = digits[:200], digits[200:260].clone()
    test[7] = torch.from_numpy(jpeg(train[17].numpy()))
    for split, images, y in (("train", train, labels[:200]), ("test", test, labels[200:260])):
        torch.save(images, tmp_path / f"{split}_images.pt")
        torch.save(y, tmp_path / f"{split}_target.pt")

    finder = NearDuplicateFinder()
    stats = compute_stats(open_dataset(tmp_path), near_duplicates=finder)[0]
    stats.near_duplicates = finder.result(DEFAULT_DISTANCE)
    report = build_report(title="t", data="data", stats=stats, content_hash=None, changes=None, gates=[],
                          baseline=None, figures={})
    markdown = render_markdown(report, {})

    assert stats.near_duplicates.near_leaked == 1
    distance = stats.near_duplicates.leaked["test"].items[0].distance
    assert 0 < distance < 0.06
    assert "⚠️ **Near-leakage:** 1 `test` item is a near-duplicate of a `train` item" in markdown
    assert "**Near-leakage:** 1 `test` item is a near copy of a `train` item (re-encoded" in markdown
    assert "`test` 7 ≈ `train` 17" in markdown
    assert report.model_dump()["near_duplicates"]["leaked"]["test"]["items"][0]["train_item"] == 17
    clean = compute_stats(open_dataset(tmp_path))[0]  # not asked for: not searched, nothing said
    assert not clean.near_duplicates.checked
    assert "Near-" not in render_markdown(build_report(title="t", data="data", stats=clean, content_hash=None,
                                                       changes=None, gates=[], baseline=None, figures={}), {})


# ---------------------------------------------------------------------------------------------------
# the picture


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_near_groups_picture__a_row_per_group_members_side_by_side_and_differing_labels_in_red() -> None:
    rng = np.random.default_rng(0)
    groups = [(tuple(("train", 10 * g + k, 1 if (g, k) != (1, 2) else 7) for k in range(2 + g)), 0.01 * (g + 1),
               2 + g + (5 if g == 0 else 0)) for g in range(3)]
    images = [rng.random((28, 28, 3)) for members, _, _ in groups for _ in members]

    fig = draw_near_groups(images, groups, None, total=12, leaked=False, threshold=0.08)

    assert len(fig.axes[0].images) == 2 + 3 + 4
    np.testing.assert_array_equal(fig.axes[0].images[2].get_array(), images[2])
    texts = _texts(fig)
    assert "7 items\n≤ 0.0100" in texts and "3 items\n≤ 0.0200" in texts
    assert "train\nitem 0" in texts and "train\nitem 23" in texts
    title = " ".join(t.get_text() for t in fig.texts)
    assert "Near-duplicate groups within splits, largest first: first 3 of 12" in title
    assert "≤ 0.08," in title
    red = [t.get_text() for t in fig.axes[0].texts if t.get_color() != "black" and t.get_text().startswith("label")]
    assert red == ["label 1", "label 1", "label 7"]  # the row whose labels differ
    with pytest.raises(CannotDrawFigure):
        draw_near_groups([], [], total=0, leaked=False, threshold=0.08)


def test_near_groups_job__crosses_the_worker_boundary_and_renders() -> None:
    job = NearGroups([np.zeros((4, 4, 3))] * 2, [((("train", 3, 0), ("train", 1, 0)), 0.02, 2)], None, 1, False, 0.08)

    (received,) = _load_jobs(io.BytesIO(pickle.dumps({"near_groups": job}))).values()

    np.testing.assert_equal(dataclasses.asdict(received), dataclasses.asdict(job))
    assert received.render().startswith(b"\x89PNG")


# ---------------------------------------------------------------------------------------------------
# through the CLI


def run_data_stats(data: Path, out: Path, *flags: str) -> tuple[int, Any]:
    code = main(["data-stats", "--data", str(data), "--out", str(out), "--dvc-pull", "false",
                 "--cache-dir", str(out.parent / f"{out.name}-cache"), *flags],
                env={"GITHUB_WORKSPACE": str(data.parent)})
    return code, json.loads((out / "report.json").read_text())


def test_data_stats__reports_a_planted_near_leak_and_fails_its_gate(tmp_path: Path) -> None:
    digits, labels = mnist_digits(700)
    data = tmp_path / "data"
    data.mkdir()
    test = digits[600:700].clone()
    test[4] = torch.from_numpy(shift(digits[123].numpy(), 1, 1))
    test[9] = torch.from_numpy(jpeg(brightness(digits[456].numpy(), 12)))
    for split, images, y in (("train", digits[:600], labels[:600]), ("test", test, labels[600:700])):
        torch.save(images, data / f"{split}_images.pt")
        torch.save(y, data / f"{split}_target.pt")

    code, report = run_data_stats(data, tmp_path / "out", "--fail-on-near-leakage", "true")
    passing, _ = run_data_stats(data, tmp_path / "out-no-gate")

    assert code == 1 and passing == 0
    leaked = report["near_duplicates"]["leaked"]["test"]
    assert leaked["total"] == 2
    assert [(e["item"], e["train_item"]) for e in leaked["items"]] == [(4, 123), (9, 456)]
    gate = next(g for g in report["gates"] if g["name"] == "fail-on-near-leakage")
    assert gate["value"] == 2 and not gate["passed"]
    assert report["figures"]["near_groups"] == "near_groups.png"
    assert (tmp_path / "out" / "near_groups.png").read_bytes().startswith(b"\x89PNG")
    assert "`test` 4 ≈ `train` 123" in (tmp_path / "out" / "report.md").read_text()


# ---------------------------------------------------------------------------------------------------
# photographs: framed pictures, the coarse search and the smoothed distance


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur written out plainly: each pixel the weighted mean of its neighbours within
    3 sigma, the picture's edge pixels repeated beyond it."""
    radius = max(1, int(3 * sigma + 0.5))
    weights = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma**2))
    weights /= weights.sum()
    padded = np.pad(image.astype(np.float64), radius, mode="edge")
    n = image.shape[0]
    rows = sum(w * padded[k : k + n, :] for k, w in enumerate(weights))
    return sum(w * rows[:, k : k + n] for k, w in enumerate(weights))  # type: ignore[no-any-return]


def _sample(image: np.ndarray, zoom: float, dy: float, dx: float) -> np.ndarray:
    """``image`` zoomed about its centre by ``zoom`` and moved by (dy, dx) pixels, bilinearly, positions
    past the edge clamped to it: out[y, x] = image at ((y - c) / zoom + c + dy, (x - c) / zoom + c + dx)."""
    n = image.shape[0]
    c = (n - 1) / 2
    ys = np.clip((np.arange(n) - c) / zoom + c + dy, 0, n - 1)
    xs = np.clip((np.arange(n) - c) / zoom + c + dx, 0, n - 1)
    y0, x0 = np.minimum(np.floor(ys).astype(int), n - 2), np.minimum(np.floor(xs).astype(int), n - 2)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x0 + 1] * fx
    bottom = image[y0 + 1][:, x0] * (1 - fx) + image[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy  # type: ignore[no-any-return]


def reference_refined(a: np.ndarray, b: np.ndarray) -> float:
    """The smoothed distance written out plainly: both blurred, the central 28×28 window of ``a`` against
    the same window of ``b`` under each alignment, each z-scored, half the RMS difference, the smallest."""
    def z(w: np.ndarray) -> np.ndarray:
        w = w - w.mean()
        return w / np.sqrt((w**2).mean())

    a, b = _blur(a, SMOOTH_SIGMA), _blur(b, SMOOTH_SIGMA)
    centre = z(a[2:-2, 2:-2])
    return min(float(np.sqrt(((centre - z(_sample(b, zoom, dy, dx)[2:-2, 2:-2])) ** 2).mean()) / 2)
               for zoom, dy, dx in REFINED_ALIGNMENTS)


def _photos() -> list[np.ndarray]:
    import skimage.data

    return [np.asarray(skimage.data.camera()), np.asarray(skimage.data.astronaut()).mean(2).astype(np.uint8)]


def test_refined_distance__matches_a_plain_computation_and_measures_a_cropped_photo_close() -> None:
    camera, astronaut = _photos()
    originals = [camera[100 + 40 * k : 164 + 40 * k, 200 : 264] for k in range(3)]
    # cropped by 3 pixels at the top and 2 on the left, resized back: the picture zoomed and moved
    cropped = [np.asarray(Image.fromarray(o[3:, 2:]).resize((64, 64), Image.Resampling.BILINEAR)) for o in originals]
    other = [astronaut[50 + 40 * k : 114 + 40 * k, 150 : 214] for k in range(3)]
    a = thumbnails(torch.from_numpy(np.stack(originals)))[0]
    b = thumbnails(torch.from_numpy(np.stack(cropped)))[0]
    c = thumbnails(torch.from_numpy(np.stack(other)))[0]

    ours = refined_distances(torch.cat([a, a]), torch.cat([b, c])).numpy()

    expected = [reference_refined(x.numpy().astype(np.float64), y.numpy().astype(np.float64))
                for x, y in zip(torch.cat([a, a]), torch.cat([b, c]), strict=True)]
    np.testing.assert_allclose(ours, expected, atol=2e-3)
    assert ours[:3].max() < DEFAULT_DISTANCE < pixel_distances(a, b).min()  # the whole-pixel moves miss it
    assert ours[3:].min() > 3 * DEFAULT_DISTANCE


def test_framed__photographs_and_faces_reach_their_frame_digits_sit_on_a_background() -> None:
    digits, _ = mnist_digits(50)
    noisy = (digits.float() + torch.randn(digits.shape, generator=torch.Generator().manual_seed(0)) * 6)
    thumbs, box = thumbnails(noisy.round().clamp(0, 255).to(torch.uint8))
    boxes = np.tile(np.array(box, dtype=np.int16), (50, 1))
    assert not framed(thumbs, boxes).any()  # noise does not count
    edged = thumbs.clone()
    busy = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    busy[:, 2:-2, 2:-2] = edged[:5, 4:-4, 4:-4]  # 5 digits in a busy frame
    edged[:5, 2:30, 2:30] = busy
    assert framed(edged, boxes)[:5].all() and not framed_sizes(edged, boxes).any()  # the size's majority decides

    import skimage.data
    faces = torch.from_numpy((np.asarray(skimage.data.lfw_subset())[:20] * 255).round().astype(np.uint8))
    thumbs, box = thumbnails(faces)
    assert box == (3, 3, 25, 25) and framed(thumbs, np.tile(np.array(box, dtype=np.int16), (20, 1))).all()
    both = torch.cat([thumbs, edged[10:18]])  # faces and digits (another size) in one split
    boxes = np.concatenate([np.tile(np.array(box, dtype=np.int16), (20, 1)), edged_boxes := boxes[:8]])
    assert framed_sizes(both, boxes).tolist() == [True] * 20 + [False] * len(edged_boxes)

    photos, box = thumbnails(torch.from_numpy(np.stack([p[:100, :100] for p in _photos()])))
    assert framed(photos, np.tile(np.array(box, dtype=np.int16), (2, 1))).all()  # resampled: always framed


def test_coarse_search__finds_a_shifted_cropped_photo_and_matches_a_brute_force_radius_search() -> None:
    camera, astronaut = _photos()
    crops = [picture[top : top + 64, left : left + 64] for picture in (camera, astronaut)
             for top in range(40, 440, 80) for left in range(40, 440, 80)]
    copies = []
    for k in range(0, len(crops), 5):  # one pixel to the side and 3 % cropped, resized back to 64
        picture = camera if k < 25 else astronaut
        top, left = 40 + 80 * ((k % 25) // 5) + 1, 40 + 80 * (k % 5) + 1
        cut = picture[top + 2 : top + 64, left + 1 : left + 63]
        copies.append(np.asarray(Image.fromarray(cut).resize((64, 64), Image.Resampling.BILINEAR)))
    thumbs = thumbnails(torch.from_numpy(np.stack(crops + copies)))[0]
    queries = coarse_hashes(thumbs, coarse_centre(thumbs), queries=True)

    i, j = coarse_pairs(queries)

    found = set(zip(i.tolist(), j.tolist(), strict=True))
    planted = {(k, len(crops) + n) for n, k in enumerate(range(0, len(crops), 5))}
    assert planted <= found
    # exactly the pairs within the radius under one query, either way round
    bits = np.bitwise_count(queries[:, :, None, :] ^ queries[0][None, None, :, :]).sum(-1).min(0)
    within = np.minimum(bits, bits.T) <= 15
    assert found == {(a, b) for a, b in zip(*np.nonzero(np.triu(within, 1)), strict=True)}
    assert len(found) < 3 * len(planted) + 10  # the search proposes few other pairs


def test_photographs__shifted_cropped_resized_copies_found_and_texture_neighbours_kept_apart() -> None:
    from tests.fixtures.photo_sets import mlgate_pairs, photo_crops

    data = photo_crops("tune")
    pairs, _ = mlgate_pairs(data, DEFAULT_DISTANCE)

    true = len(pairs & data.pairs)
    assert true / len(pairs) >= 0.95 and true / len(data.pairs) >= 0.95, (true, len(pairs), len(data.pairs))
