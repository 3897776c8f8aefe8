"""Near-duplicate search: time at 70,000 and 700,000 28x28 digits, and precision/recall on real digits.

Prints, for 60,000 + 10,000 and 600,000 + 100,000 digits (real MNIST digits rotated, scaled, moved
and noised, so they look like handwriting and are mostly not near-duplicates of each other, with one
planted near copy per 1,000 items): the seconds of the whole near-duplicate step of data-stats
(thumbnails per batch, hashes, multi-index search, pixel confirmation), the pairs it found, and the
700k/70k time ratio against linear (10x) and quadratic (100x) growth. Then precision and recall on
2,000 real digits with 300 near copies of known origin mixed in (JPEG, one-pixel shifts, brightness
changes, all three), at the default ``near-duplicate-distance``.

    python bench/near_duplicates.py [--skip-700k]
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
from tests.fixtures.perturbed_digits import augmented_digits, near_duplicate_set, perturbed

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
    within = ", ".join(f"{name} {pairs.total:,}" for name, pairs in found.within.items())
    return seconds, (f"CPU {cpu:.2f} s; thumbnails {thumbs:.2f} s, hash + search + confirmation "
                     f"{seconds - thumbs:.2f} s; near-leaked test items {found.near_leaked:,}, near-duplicate "
                     f"pairs within {within}")


def precision_recall() -> None:
    data = near_duplicate_set()
    finder = NearDuplicateFinder(max_listed=10**9)
    finder.start("train")
    finder.add(data.images, data.labels, item_keys(data.images), None)
    pairs = finder.result(THRESHOLD).within["train"].pairs
    found = {(min(int(p.item), int(p.other)), max(int(p.item), int(p.other))) for p in pairs}
    hit = len(found & data.pairs)
    print(f"precision/recall on {len(data.images) - len(data.pairs):,} real MNIST digits + {len(data.pairs)} near "
          f"copies (JPEG q60-90, +-1 px shift, +-10-20 brightness, all three), near-duplicate-distance "
          f"{THRESHOLD}: precision {hit / max(len(found), 1):.3f} ({hit}/{len(found)}), recall "
          f"{hit / len(data.pairs):.3f} ({hit}/{len(data.pairs)})")
    for kind in ("jpeg", "shift", "brightness", "all three"):
        planted = {pair for pair, k in data.kinds.items() if k == kind}
        print(f"  {kind}: recall {len(found & planted) / len(planted):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-700k", action="store_true")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}, hash radius {RADIUS} bits, threshold {THRESHOLD}")
    seconds: dict[int, float] = {}
    for n_train, n_test in [(60_000, 10_000)] + ([] if args.skip_700k else [(600_000, 100_000)]):
        splits = course_like(n_train, n_test, seed=1)
        n = n_train + n_test
        seconds[n], what = timed_search(splits)
        print(f"{n_train:,} train + {n_test:,} test 28x28: near-duplicate step {seconds[n]:.2f} s ({what})")
        del splits
    if len(seconds) == 2:
        ratio = seconds[700_000] / seconds[70_000]
        print(f"scaling 700k/70k: {ratio:.1f}x for 10x the items (linear 10x, quadratic 100x)")
    precision_recall()


if __name__ == "__main__":
    main()
