"""Shards and workers: the statistics of any cut of the data, reduced in any number of processes, are the
statistics of one pass (mlgate.data.shards, the merges of mlgate.data.stats)."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from mlgate import workflow
from mlgate.cli import main
from mlgate.data.changes import compare
from mlgate.data.drift import compute_drift
from mlgate.data.findings import Measured, full_lists
from mlgate.data.layouts import open_dataset
from mlgate.data.near_duplicates import NearDuplicateFinder
from mlgate.data.shard_cache import ShardCache
from mlgate.data.shards import plan
from mlgate.data.stats import _Histogram, compute_stats
from tests.fixtures.datasets import make_course, make_imagefolder

ONE_SHARD = 10**9


def _course(root: Path, seed: int, near_copies: bool = True) -> None:
    make_course(root, n_train=150, n_test=50, shards=3, duplicates=6, leaks=5, conflicts=3, nonfinite=2,
                seed=seed)
    if near_copies:
        _plant_near_copies(root, seed)


def _course_uint8(root: Path, seed: int) -> None:
    make_course(root, n_train=120, n_test=40, shards=2, shape=(3, 9, 7), dtype="uint8", duplicates=4, leaks=9,
                seed=seed)
    _plant_near_copies(root, seed)


def _imagefolder(root: Path, seed: int) -> None:
    make_imagefolder(root, per_class=12, classes=3, mixed=True, corrupt=3, duplicates=3, leaks=9, seed=seed)
    _plant_near_copies(root, seed)


def _near_copy(image: np.ndarray, k: int) -> np.ndarray:
    """A little brighter (``k`` levels of 255) and not equal: a near copy, never an exact one."""
    if image.dtype == np.uint8:
        return np.clip(image.astype(np.int16) + k, 0, 255).astype(np.uint8)
    finite = np.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0)
    return finite * 0.95 + k / 100  # within [0, 1], as the other items: no batch changes its value range


def _plant_near_copies(root: Path, seed: int) -> None:
    """Near copies (brighter by a few levels) of train items: groups of 2 to 4 within train, and copies
    of train items in test (near leaks), spread over the parts, so every cut splits some groups."""
    from PIL import Image

    rng = np.random.default_rng(seed + 100)
    if (root / "train").is_dir():  # ImageFolder: new files beside the old, in the same class
        images = {}
        for path in sorted((root / "train").rglob("*.png")):
            if not path.name.startswith("corrupt"):
                with Image.open(path) as image:
                    if image.mode in ("L", "RGB") and image.size == (28, 28):
                        images[path] = np.asarray(image)
        for n, source in enumerate(rng.choice(sorted(images), 6, replace=False).tolist()):
            image = images[source]
            for k in range(1 + n % 3):
                split = "test" if k == 2 else "train"
                target = root / split / source.parent.name / f"near_{n}_{k}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(_near_copy(image, 3 + k)).save(target)
        return
    parts = {split: sorted(root.glob(f"{split}_images*.pt")) for split in ("train", "test")}
    train = [torch.load(p) for p in parts["train"]]
    test = [torch.load(p) for p in parts["test"]]
    sizes = [len(t) for t in train]
    for n in range(6):
        part = int(rng.integers(len(train)))
        source = train[part][int(rng.integers(sizes[part]))].numpy()
        for k in range(1 + n % 3):
            into = test if k == 2 else train
            where = int(rng.integers(len(into)))
            into[where][int(rng.integers(len(into[where])))] = torch.from_numpy(_near_copy(source, 3 + k))
    for split, tensors in (("train", train), ("test", test)):
        for path, tensor in zip(parts[split], tensors, strict=True):
            torch.save(tensor, path)


LAYOUTS = {"course": _course, "course-uint8": _course_uint8, "imagefolder": _imagefolder}


def _random_sizes(rng: np.random.Generator) -> Callable[[], Iterator[int]]:
    return lambda: (int(rng.integers(1, 16)) for _ in itertools.count())


def _measure(root: Path, *, sizes: Callable[[], Iterator[int]] | None, batch_size: int,
             workers: int = 1, shard_cache: ShardCache | None = None) -> dict[str, object]:
    finder = NearDuplicateFinder()
    stats, samples, leaked = compute_stats(open_dataset(root), samples_per_class=3, batch_size=batch_size,
                                           near_duplicates=finder, workers=workers, shard_sizes=sizes,
                                           shard_cache=shard_cache)
    stats.near_duplicates = finder.result(0.08)
    files, lists = full_lists(Measured(stats))
    return {
        "stats": stats,
        "json": stats.model_dump_json(),
        # the full item lists (findings/*.csv): every row, built from the merged per-item keys and names
        "findings": files,
        "findings_lists": [item.model_dump() for item in lists],
        "samples": {label: images.numpy().tobytes() for label, images in samples.items()},
        "leaked": [(p.split, p.item, p.label, p.train_item, p.train_label, p.image.numpy().tobytes()) for p in leaked],
        "near_pictured": [(p.members, p.distance, p.size, [image.numpy().tobytes() for image in p.images])
                          for p in stats.near_duplicates.pictured],
        # near-duplicate groups: every member and every near-leaked item, from the merged per-item data
        "near_groups": {split: groups.model_dump() for split, groups in stats.near_duplicates.within.items()},
        "near_listing": (stats.near_duplicates.listing.members,
                         {split: [e.model_dump() for e in every]
                          for split, every in stats.near_duplicates.listing.leaked.items()}),
        "duplicate_every": {split: [d.model_dump() for d in split_stats.duplicate_items.every]
                            for split, split_stats in stats.splits.items()},
    }


def _comparable(measured: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in measured.items() if key != "stats"}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_compute_stats__any_random_sharding_gives_the_one_pass_statistics(tmp_path: Path, layout: str) -> None:
    LAYOUTS[layout](tmp_path / "head", 3)
    LAYOUTS[layout](tmp_path / "base", 4)
    one_pass = _measure(tmp_path / "head", sizes=lambda: itertools.repeat(ONE_SHARD), batch_size=4096)
    base = _measure(tmp_path / "base", sizes=lambda: itertools.repeat(ONE_SHARD), batch_size=4096)
    assert len(plan(open_dataset(tmp_path / "head"), lambda: itertools.repeat(ONE_SHARD))) <= 4  # one per part or split
    for seed in range(3):
        rng = np.random.default_rng(seed)
        batch_size = int(rng.integers(1, 50))
        sharded = _measure(tmp_path / "head", sizes=_random_sizes(rng), batch_size=batch_size)
        assert len(plan(open_dataset(tmp_path / "head"), _random_sizes(np.random.default_rng(seed)))) > 5

        assert _comparable(sharded) == _comparable(one_pass), (seed, batch_size)
        near = one_pass["stats"].near_duplicates  # type: ignore[attr-defined]
        assert near.within["train"].total >= 3 and near.near_leaked >= 1  # the planted near copies are there
        assert sharded["findings"] == one_pass["findings"], (seed, batch_size)  # named: a clearer failure
        _assert_full_lists_are_complete(sharded)
        # with a base: what changed and the drift come out the same too
        sharded_base = _measure(tmp_path / "base", sizes=_random_sizes(rng), batch_size=batch_size)
        assert _comparable(sharded_base) == _comparable(base)
        assert _against(sharded_base, sharded) == _against(base, one_pass)


def _assert_full_lists_are_complete(measured: dict[str, object]) -> None:
    """Every duplicate, leaked and conflicting item is a row, as many as the statistics count."""
    stats = measured["stats"]
    rows = {item["finding"]: item["rows"] for item in measured["findings_lists"]}  # type: ignore[attr-defined]
    assert rows["exact_duplicates"] == sum(split.duplicates for split in stats.splits.values())  # type: ignore[attr-defined]
    assert rows["leaked_items"] == stats.leakage.train_test_exact_duplicates  # type: ignore[attr-defined]
    assert rows["conflicting_labels"] == stats.leakage.conflicting_labels  # type: ignore[attr-defined]
    assert rows["image_issues"] == sum(issues.total for split in stats.splits.values()  # type: ignore[attr-defined]
                                       for issues in split.image_issues.present().values())
    assert rows["near_duplicates"] == sum(groups.items for groups in stats.near_duplicates.within.values())  # type: ignore[attr-defined]
    assert rows["near_leaked_items"] == stats.near_duplicates.near_leaked  # type: ignore[attr-defined]
    assert all(item["total"] == item["rows"] for item in measured["findings_lists"])  # type: ignore[attr-defined]
    assert rows["exact_duplicates"] and rows["leaked_items"]


def _against(base: dict[str, object], head: dict[str, object]) -> tuple[str, str]:
    """What changed and the drift, as report.json holds them."""
    changes = compare(base["stats"], head["stats"], base_name="main")  # type: ignore[arg-type]
    drift = compute_drift(head["stats"], base["stats"], "main")  # type: ignore[arg-type]
    return changes.model_dump_json(), drift.model_dump_json()


def test_compute_stats__planted_findings_survive_sharding(tmp_path: Path) -> None:
    _course(tmp_path, 3, near_copies=False)  # a near copy written over a planted exact one would change its count
    stats = _measure(tmp_path, sizes=_random_sizes(np.random.default_rng(1)), batch_size=5)["stats"]
    assert stats.splits["train"].duplicates == 6 + 3 and stats.leakage.per_split == {"test": 5}
    assert stats.leakage.conflicting_labels == 3 and stats.splits["train"].nonfinite == 2


def test_full_lists__past_the_first_100_are_the_same_for_any_sharding_and_two_workers(tmp_path: Path) -> None:
    make_course(tmp_path, n_train=400, n_test=150, shards=3, shape=(4, 4), duplicates=130, leaks=120, seed=9)
    one = _measure(tmp_path, sizes=lambda: itertools.repeat(ONE_SHARD), batch_size=4096)
    stats = one["stats"]
    assert stats.splits["train"].duplicates > 100 and stats.leakage.train_test_exact_duplicates > 100  # type: ignore[attr-defined]
    _assert_full_lists_are_complete(one)
    for workers in (1, 2):
        sharded = _measure(tmp_path, sizes=_random_sizes(np.random.default_rng(workers)), batch_size=7,
                           workers=workers)
        assert sharded["findings"] == one["findings"], workers


def test_compute_stats__two_worker_processes_give_the_one_process_statistics(tmp_path: Path) -> None:
    _imagefolder(tmp_path / "folder", 5)
    _course(tmp_path / "course", 5)
    for root in (tmp_path / "folder", tmp_path / "course"):
        rng = np.random.default_rng(7)
        one = _measure(root, sizes=_random_sizes(rng), batch_size=8)
        two = _measure(root, sizes=_random_sizes(np.random.default_rng(7)), batch_size=8, workers=2)
        assert _comparable(two) == _comparable(one)


def _run(data: Path, out: Path, *flags: str) -> str:
    code = main(["data-stats", "--data", str(data), "--out", str(out), "--dvc-pull", "false",
                 "--cache-dir", str(out.parent / f"{out.name}-cache"), *flags],
                env={"GITHUB_WORKSPACE": str(data.parent)})
    assert code in (0, 1)
    return (out / "report.json").read_text()


@pytest.mark.parametrize("layout", ["course", "imagefolder"])
def test_data_stats__report_json_is_the_same_with_one_or_two_workers_with_and_without_a_base(
        tmp_path: Path, layout: str) -> None:
    LAYOUTS[layout](tmp_path / "data", 1)
    LAYOUTS[layout](tmp_path / "old", 2)
    one = _run(tmp_path / "data", tmp_path / "one", "--workers", "1")
    two = _run(tmp_path / "data", tmp_path / "two", "--workers", "2")
    assert one == two and json.loads(one)["splits"]["train"]["count"]
    based = [_run(tmp_path / "data", tmp_path / f"based-{n}", "--workers", n, "--baseline-data", "old")
             for n in ("1", "2")]
    assert based[0] == based[1] and json.loads(based[0])["changes"] is not None


def test_histogram__merging_parts_in_any_grouping_gives_the_histogram_of_all_values() -> None:
    rng = np.random.default_rng(11)
    values = np.concatenate([rng.normal(3, 0.01, 300), rng.normal(-40, 5, 50), [1.0, 1.0, 0.5]]).astype(np.float32)
    whole = _Histogram()
    whole.add(torch.from_numpy(values), float(values.min()), float(values.max()))
    for seed in range(5):
        cuts = np.sort(np.random.default_rng(seed).choice(np.arange(1, len(values)), 6, replace=False))
        merged = _Histogram()
        for part in np.split(rng.permutation(values), cuts):
            piece = _Histogram()
            piece.add(torch.from_numpy(part), float(part.min()), float(part.max()))
            merged.merge(piece)
        assert merged.result() == whole.result()
    edges, counts = whole.result()
    assert counts == np.histogram(values, bins=np.array(edges))[0].tolist()


def test_rate__says_items_per_second_what_is_left_and_an_estimate() -> None:
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    out, clock = io.StringIO(), Clock()
    say = workflow.rate("items read", every_s=5, stream=out, clock=clock)
    for step in range(1, 13):
        clock.now += 1
        say(step * 1000, 20_000)
    assert out.getvalue().splitlines() == [
        "  … 5,000 of 20,000 items read: 1,000 items/s, 15,000 left, about 15.0 s to go (5.0 s)",
        "  … 10,000 of 20,000 items read: 1,000 items/s, 10,000 left, about 10.0 s to go (10.0 s)",
    ]


def test_compute_stats__a_bad_file_read_by_a_worker_fails_as_in_one_process(tmp_path: Path) -> None:
    from mlgate.data.layouts import DatasetLayoutError

    make_course(tmp_path, n_train=60, n_test=20, shards=3, seed=2)
    torch.save(torch.full((20,), -1), tmp_path / "train_target_2.pt")  # a label that is no class
    messages = []
    for workers in (1, 2):
        with pytest.raises(DatasetLayoutError) as raised:
            compute_stats(open_dataset(tmp_path), workers=workers, shard_sizes=lambda: itertools.repeat(7))
        messages.append(str(raised.value))
    assert messages[0] == messages[1] and "train_images_2.pt" in messages[0] and "item 40" in messages[0]
