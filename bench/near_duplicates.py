"""Near-duplicate search: time at 70,000 and 700,000 28x28 digits, and precision/recall on real
photographs, faces and digits next to imagehash.

Prints, for 60,000 + 10,000 and 600,000 + 100,000 digits, distinct (real MNIST digits rotated, scaled,
moved and noised, with one planted near copy per 1,000 items) and dense (each digit ~10x, every copy
with noise and moved by up to a pixel): the seconds of the whole near-duplicate step of data-stats
(thumbnails per batch, hashes, multi-index search, pixel confirmation), the confirmations it made and
the groups it found. Then, per benchmark set of :mod:`tests.fixtures.photo_sets` (tune and held-out
halves), precision and recall overall and per transform for mlgate at the default
``near-duplicate-distance`` and for imagehash's phash, dhash and whash at their best radius on the
same set.

    python bench/near_duplicates.py [--skip-700k] [--skip-timing] [--halves tune,held-out]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlgate.data.near_duplicates import RADIUS, NearDuplicateFinder
from mlgate.data.stats import item_keys
from mlgate.settings import DataStatsSettings
from tests.fixtures.perturbed_digits import augmented_digits, perturbed
from tests.fixtures.photo_sets import TRANSFORMS, NearCopySet, benchmark_sets, mlgate_pairs

BATCH = 4096
THRESHOLD = DataStatsSettings.model_fields["near_duplicate_distance"].default


def course_like(n_train: int, n_test: int, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Augmented digits, with a near copy of a train item planted in test per 1,000 items."""
    images, labels = augmented_digits(n_train + n_test, seed=seed)
    rng = np.random.default_rng(seed)
    planted = (n_train + n_test) // 1000
    kinds = ("jpeg", "shift", "brightness", "all three")
    for k, (source, target) in enumerate(zip(rng.choice(n_train, planted, replace=False),
                                             rng.choice(n_test, planted, replace=False), strict=True)):
        images[n_train + target] = torch.from_numpy(perturbed(images[source].numpy(), kinds[k % 4], rng))
        labels[n_train + target] = labels[source]
    return {"train": (images[:n_train], labels[:n_train]), "test": (images[n_train:], labels[n_train:])}


def dense(n_train: int, n_test: int, seed: int, copies: int = 10) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Many near copies: each of (n_train + n_test) / ``copies`` distinct digits present ``copies`` times,
    each copy with pixel noise (σ 6 levels) and moved by up to one pixel, shuffled over train and test."""
    n = n_train + n_test
    base, base_labels = augmented_digits(n // copies + 1, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    source = torch.randperm(n, generator=generator) % len(base)
    images = base[source].clone()
    shift = torch.randint(0, 9, (n,), generator=generator)  # each copy its own move: (dy, dx) in {-1, 0, 1}²
    for k in range(9):
        rows = torch.nonzero(shift == k)[:, 0]
        images[rows] = torch.roll(images[rows], shifts=(k // 3 - 1, k % 3 - 1), dims=(1, 2))
    for start in range(0, n, 50_000):
        part = images[start : start + 50_000].float()
        noisy = part + torch.randn(part.shape, generator=generator) * 6
        images[start : start + 50_000] = noisy.round().clamp(0, 255).to(torch.uint8)
    labels = base_labels[source]
    return {"train": (images[:n_train], labels[:n_train]), "test": (images[n_train:], labels[n_train:])}


def timed_search(splits: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, str]:
    """Wall seconds of the near-duplicate step alone (content keys, which data-stats computes anyway,
    are computed beforehand), and what it found with its CPU seconds and the time of each phase."""
    keys = {name: [item_keys(images[s : s + BATCH]) for s in range(0, len(images), BATCH)]
            for name, (images, _) in splits.items()}
    start, cpu = time.perf_counter(), time.process_time()
    finder = NearDuplicateFinder()
    for name, (images, labels) in splits.items():
        finder.start(name)
        for k, s in enumerate(range(0, len(images), BATCH)):
            finder.add(images[s : s + BATCH], labels[s : s + BATCH], keys[name][k], None)
    thumbs = time.perf_counter() - start
    found = finder.result(THRESHOLD)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    within = ", ".join(f"{name} {g.total:,} groups of {g.items:,} items" for name, g in found.within.items())
    return seconds, (f"CPU {cpu:.2f} s; thumbnails {thumbs:.2f} s, hash + search + confirmation "
                     f"{seconds - thumbs:.2f} s; {found.confirmations:,} confirmations; near-leaked test items "
                     f"{found.near_leaked:,}, near-duplicates within {within}")


def _scores(found: set[tuple[int, int]], data: NearCopySet) -> tuple[float, float, dict[str, float]]:
    true = data.pairs
    hit = len(found & true)
    per_kind = {}
    for kind in TRANSFORMS:
        planted = {(min(c, o), max(c, o)) for c, (o, k) in data.copies.items() if k == kind}
        per_kind[kind] = len(found & planted) / max(len(planted), 1)
    return hit / max(len(found), 1), hit / len(true), per_kind


def _imagehash_scores(data: NearCopySet, kind: str) -> tuple[int, float, float, dict[str, float]]:
    """imagehash's pairs within its best Hamming radius (best F1 on this very set: an upper bound for
    it): ``(radius, precision, recall, recall per transform)``."""
    import imagehash
    from PIL import Image

    method = {"phash": imagehash.phash, "dhash": imagehash.dhash, "whash": imagehash.whash}[kind]
    bits = np.stack([method(Image.fromarray(image)).hash.reshape(-1) for image in data.images]).astype(np.uint8)
    packed = np.packbits(bits, axis=1)
    i, j = np.triu_indices(len(bits), 1)
    distance = np.zeros(len(i), dtype=np.int64)
    for start in range(0, len(i), 1 << 22):
        part = slice(start, start + (1 << 22))
        distance[part] = np.bitwise_count(packed[i[part]] ^ packed[j[part]]).sum(1)
    per_radius = np.bincount(distance, minlength=bits.shape[1] + 1).cumsum()  # pairs within each radius
    planted = [(min(c, o), max(c, o), k) for c, (o, k) in data.copies.items()]
    planted_d = np.bitwise_count(packed[[a for a, _, _ in planted]] ^ packed[[b for _, b, _ in planted]]).sum(1)
    best = (-1.0, 0, 0.0, 0.0)
    for radius in range(bits.shape[1] // 2):
        hit = int((planted_d <= radius).sum())
        precision, recall = hit / max(int(per_radius[radius]), 1), hit / len(planted)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        if f1 > best[0]:
            best = (f1, radius, precision, recall)
    _, radius, precision, recall = best
    per_kind = {kind_: float(np.mean([d <= radius for d, (_, _, k) in zip(planted_d, planted, strict=True)
                                      if k == kind_])) for kind_ in TRANSFORMS}
    return radius, precision, recall, per_kind


def precision_recall(halves: tuple[str, ...]) -> None:
    """Precision and recall per set and per transform, mlgate at the default near-duplicate-distance
    (chosen on the tune half) beside imagehash's phash, dhash and whash at their best radius."""
    print(f"\nprecision / recall per set (pairs within one group vs the planted copy pairs), "
          f"near-duplicate-distance {THRESHOLD}; imagehash at its best radius (best F1 on the same set)")
    for half in halves:
        for data in benchmark_sets(half):
            start = time.perf_counter()
            found, confirmations = mlgate_pairs(data, THRESHOLD)
            seconds = time.perf_counter() - start
            precision, recall, per_kind = _scores(found, data)
            print(f"[{half}] {data.name}: {len(data.images):,} items ({len(data.copies)} planted copies, "
                  f"{data.negatives} hard negatives)")
            print(f"  mlgate       P {precision:.3f} R {recall:.3f}  per transform R: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in per_kind.items())
                  + f"  ({confirmations:,} confirmations, {seconds:.1f} s)")
            for kind in ("phash", "dhash", "whash"):
                radius, p, r, per = _imagehash_scores(data, kind)
                print(f"  {kind:<6} r={radius:<3} P {p:.3f} R {r:.3f}  per transform R: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in per.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-700k", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--halves", default="tune,held-out", help="benchmark halves to score (comma-separated)")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}, hash radius {RADIUS} bits, threshold {THRESHOLD}")
    seconds: dict[int, float] = {}
    sizes = [] if args.skip_timing else [(60_000, 10_000)] + ([] if args.skip_700k else [(600_000, 100_000)])
    for n_train, n_test in sizes:
        for kind, make in (("distinct", course_like), ("dense", dense)):
            splits = make(n_train, n_test, seed=1)
            n = n_train + n_test
            seconds[n], what = timed_search(splits)
            print(f"{n_train:,} train + {n_test:,} test 28x28 {kind}: near-duplicate step {seconds[n]:.2f} s ({what})",
                  flush=True)
            del splits
    if len(seconds) == 2:
        ratio = seconds[700_000] / seconds[70_000]
        print(f"scaling 700k/70k: {ratio:.1f}x for 10x the items (linear 10x, quadratic 100x)")
    precision_recall(tuple(args.halves.split(",")))


if __name__ == "__main__":
    main()
