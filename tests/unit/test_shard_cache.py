"""Only what changed (mlgate.data.shard_cache): with the shard states of an earlier version cached, a run
over changed data reads only the shards whose files changed and gives exactly the cold run's statistics;
an entry that is damaged, foreign or hostile is recomputed, never trusted."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mlgate.cli import main
from mlgate.data import shards as shards_module
from mlgate.data.layouts import open_dataset
from mlgate.data.shard_cache import FileDigests, ShardCache, shard_key
from mlgate.data.shards import plan
from mlgate.data.stats import ShardTask
from tests.fixtures.datasets import make_course, make_imagefolder
from tests.unit.test_shards import _comparable
from tests.unit.test_shards import _measure as measure


@pytest.fixture(autouse=True)
def small_content_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four files per shard on average, so the small fixtures cut into many shards."""
    monkeypatch.setattr(shards_module, "ITEMS_PER_CONTENT_SHARD", 4)


def _measure_cached(root: Path, cache_dir: Path, workers: int = 1) -> tuple[dict[str, object], ShardCache]:
    """What tests/unit/test_shards.py measures, with the shard cache in ``cache_dir``."""
    cache = ShardCache(cache_dir, FileDigests(root))
    return _comparable(measure(root, sizes=None, batch_size=4096, workers=workers, shard_cache=cache)), cache


def _cold(root: Path) -> dict[str, object]:
    return _comparable(measure(root, sizes=None, batch_size=4096))


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _imagefolder(root: Path) -> None:
    make_imagefolder(root, per_class=14, classes=3, mixed=True, corrupt=2, duplicates=3, leaks=6, seed=4)


def _add(root: Path) -> None:
    for i in range(3):
        (root / "train" / "class_1" / f"{900 + i:06d}.png").write_bytes(_png(i))
    (root / "test" / "class_2" / "000000a.png").write_bytes(_png(7))


def _change(root: Path) -> None:
    victim = sorted((root / "train" / "class_0").glob("*.png"))[5]
    victim.write_bytes(_png(11))


def _remove(root: Path) -> None:
    for victim in [sorted((root / "train" / "class_2").glob("*.png"))[3], sorted((root / "test").rglob("*.png"))[0]]:
        victim.unlink()


@pytest.mark.parametrize("edit", [_add, _change, _remove], ids=["add", "change", "remove"])
def test_imagefolder__warm_run_after_a_change_equals_the_cold_run_and_rereads_only_touched_shards(
        tmp_path: Path, edit: object) -> None:
    data = tmp_path / "data"
    _imagefolder(data)
    first, filled = _measure_cached(data, tmp_path / "cache")
    assert first == _cold(data)  # a cold run with the cache gives the statistics without it
    assert filled.hits == 0 and filled.computed > 10

    edit(data)  # type: ignore[operator]
    warm, cache = _measure_cached(data, tmp_path / "cache")

    assert warm == _cold(data)
    assert cache.refused == []
    assert cache.hits >= filled.computed - 4  # the edit touched a few shards, at most one more per file
    assert 1 <= cache.computed <= 4


def test_two_workers__key_read_and_store_the_entries_and_their_counts_reach_the_log(tmp_path: Path) -> None:
    # the workers hash the files, read and write the entries: what they did is counted here all the same
    data = tmp_path / "data"
    _imagefolder(data)
    files = sum(1 for p in data.rglob("*.png"))
    first, filled = _measure_cached(data, tmp_path / "cache", workers=2)
    assert first == _cold(data)
    assert filled.hits == 0 and filled.computed > 10 and filled.digest.hashed == files
    assert len(_entries(tmp_path / "cache")) == filled.computed  # stored by the workers, where this run keeps them

    _add(data)
    warm, cache = _measure_cached(data, tmp_path / "cache", workers=2)
    assert warm == _cold(data)
    assert cache.hits >= filled.computed - 4 and 1 <= cache.computed <= 4
    assert len(cache.used) == cache.hits + cache.computed  # every key used, so pruning keeps them
    assert f"{cache.hits:,} of {cache.hits + cache.computed:,} shards read from the cache" in cache.summary()


def test_course__a_changed_part_is_reread_and_the_others_come_from_the_cache(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_course(data, n_train=150, n_test=50, shards=3, duplicates=6, leaks=5, conflicts=3, nonfinite=2, seed=3)
    _measure_cached(data, tmp_path / "cache")
    images = torch.load(data / "train_images_1.pt")
    images[:3] = images[3:6].clone()  # three new exact duplicates in the middle part
    torch.save(images, data / "train_images_1.pt")
    parts = len(plan(open_dataset(data)))

    warm, cache = _measure_cached(data, tmp_path / "cache")

    assert warm == _cold(data)
    assert (cache.hits, cache.computed) == (parts - 1, 1)


def _entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "shards").glob("*/*.state"))


def _corrupt(entry: Path) -> None:
    raw = bytearray(entry.read_bytes())
    raw[-10] ^= 0xFF
    entry.write_bytes(bytes(raw))


def _foreign_format(entry: Path) -> None:
    magic, header, payload = entry.read_bytes().split(b"\n", 2)
    fields = json.loads(header)
    fields["format"] = "0" * 32  # another mlgate version's state layout
    entry.write_bytes(magic + b"\n" + json.dumps(fields).encode() + b"\n" + payload)


def _foreign_key(entry: Path) -> None:
    other = next(e for e in _entries(entry.parents[2]) if e != entry)
    entry.write_bytes(other.read_bytes())  # a valid entry, of another shard


class _Hostile:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(Path(os.environ["MLGATE_TEST_HOSTILE"])),)


def _hostile(entry: Path) -> None:
    magic, header, _ = entry.read_bytes().split(b"\n", 2)
    payload = pickle.dumps(_Hostile())
    fields = json.loads(header)
    fields.update(sha256=hashlib.sha256(payload).hexdigest(), bytes=len(payload))  # a checksum that checks out
    entry.write_bytes(magic + b"\n" + json.dumps(fields).encode() + b"\n" + payload)


@pytest.mark.parametrize(("spoil", "why"), [(_corrupt, "damaged: checksum mismatch"),
                                            (lambda entry: entry.write_bytes(entry.read_bytes()[:40]), "damaged"),
                                            (_foreign_format, "foreign: written by another mlgate version"),
                                            (_foreign_key, "foreign: stored under another key"),
                                            (_hostile, "damaged: refers to")],
                         ids=["bit-flip", "truncated", "foreign-schema", "foreign-key", "hostile-pickle"])
def test_spoiled_entry__is_recomputed_said_so_and_rewritten(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spoil: object, why: str) -> None:
    monkeypatch.setenv("MLGATE_TEST_HOSTILE", str(tmp_path / "pwned"))
    data = tmp_path / "data"
    _imagefolder(data)
    _, filled = _measure_cached(data, tmp_path / "cache")
    entry = _entries(tmp_path / "cache")[3]
    spoil(entry)  # type: ignore[operator]

    warm, cache = _measure_cached(data, tmp_path / "cache")

    assert warm == _cold(data)
    assert len(cache.refused) == 1 and why in cache.refused[0] and entry.stem[:12] in cache.refused[0]
    assert (cache.hits, cache.computed) == (filled.computed - 1, 1)
    assert not (tmp_path / "pwned").exists()  # nothing in an entry runs
    again = _measure_cached(data, tmp_path / "cache")[1]
    assert (again.hits, again.computed, again.refused) == (filled.computed, 0, [])  # rewritten, trusted again


def test_keys__dvc_listing_and_hashing_the_files_give_the_same_key(tmp_path: Path) -> None:
    _imagefolder(tmp_path)
    listing = {p.relative_to(tmp_path).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
               for p in tmp_path.rglob("*") if p.is_file()}
    task = ShardTask(3, "train", 4096, True)
    from_dvc, hashing = FileDigests(tmp_path, listing), FileDigests(tmp_path)
    shards = plan(open_dataset(tmp_path), by_content=True)
    keys = [shard_key(shard, task, from_dvc) for shard in shards]
    assert keys == [shard_key(shard, task, hashing) for shard in shards]
    assert from_dvc.hashed == 0 and hashing.hashed > 0
    assert len(set(keys)) == len(keys)
    # what the reduction keeps is part of the key
    assert shard_key(shards[0], ShardTask(3, "train", 4096, False), hashing) != keys[0]


def test_content_cut__adding_a_file_changes_only_the_shard_it_falls_in(tmp_path: Path) -> None:
    _imagefolder(tmp_path)
    before = [[f[2] for f in s.files] for s in plan(open_dataset(tmp_path), by_content=True)]  # type: ignore[attr-defined]
    (tmp_path / "train" / "class_0" / "000003a.png").write_bytes(_png(1))
    after = [[f[2] for f in s.files] for s in plan(open_dataset(tmp_path), by_content=True)]  # type: ignore[attr-defined]
    changed = [s for s in after if s not in before]
    assert len(after) - len(before) in (0, 1) and 1 <= len(changed) <= 2
    assert any("train/class_0/000003a.png" in s for s in changed)


def test_data_stats__second_run_on_changed_data_reports_as_a_cold_run_and_says_what_it_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    _imagefolder(data)

    def run(cache: str, out: str) -> str:
        code = main(["data-stats", "--data", str(data), "--out", str(tmp_path / out), "--dvc-pull", "false",
                     "--cache-dir", str(tmp_path / cache)], env={"GITHUB_WORKSPACE": str(tmp_path)})
        assert code in (0, 1)
        return (tmp_path / out / "report.json").read_text()

    run("cache", "first")
    stale, recent = (tmp_path / "cache" / "shards" / "zz" / f"zz{n * 62}.state" for n in "01")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an entry of an older dataset, unused for 30 days")
    recent.write_bytes(b"an entry of another dataset sharing the folder, used today")
    os.utime(stale, (time.time() - 30 * 86400,) * 2)
    _add(data)
    capsys.readouterr()
    warm = run("cache", "warm")
    log = capsys.readouterr().out
    assert warm == run("cold-cache", "cold")
    assert "shards read from the cache" in log and " 0 of " not in log.split("Shard cache")[1].split("\n")[0]
    assert not stale.exists() and recent.exists()  # unused for a week: pruned, the kept folder does not grow
