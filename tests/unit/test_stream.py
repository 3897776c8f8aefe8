"""`dvc-pull: stream`'s ImageFolder rules applied to a DVC listing are the local reader's rules applied to
the folder: the same splits, classes, labels and files in the same order (mlgate.data.stream, pure part).
Reading from a real DVC remote is tested in tests/integration/test_stream.py and tests/e2e/test_stream.py."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from mlgate.data.layouts import DatasetLayoutError, open_dataset
from mlgate.data.layouts.imagefolder import ImageFolderSplit
from mlgate.data.stream import RemoteData, StreamShard, StreamSplit, imagefolder_from_listing
from mlgate.settings import load_settings

SOURCE = RemoteData("/repo", None, "data/images")
NAMES = ["a", "b", "c10", "c2", "Z", ".hidden", "__pycache__", "x y"]
SUFFIXES = [".png", ".PNG", ".jpg", ".txt", ".json", ".webp", ""]


def _random_tree(root: Path, rng: np.random.Generator) -> None:
    """Split folders or class folders at the top, hidden folders, nested sub-folders, files that are not
    images, upper-case suffixes: every rule the reader has about names (file contents do not matter)."""
    split_level = bool(rng.integers(2))
    tops = ["train", "test", "val", ".git-like", "__meta"] if split_level else list(NAMES)
    for top in tops[:int(rng.integers(1, len(tops) + 1))]:
        classes = NAMES[:int(rng.integers(1, len(NAMES) + 1))] if split_level else [""]
        for name in classes:
            folder = root / top / name
            for depth in range(int(rng.integers(1, 3))):
                for _ in range(int(rng.integers(0, 4))):
                    file = folder / f"{int(rng.integers(1000)):03d}{rng.choice(SUFFIXES)}"
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.write_bytes(b"x")
                folder = folder / str(rng.choice(NAMES)) / f"d{depth}"
    if not split_level and rng.integers(2):
        (root / "top-level.png").write_bytes(b"x")


def _listing(root: Path) -> dict[str, tuple[str, None]]:
    return {path.relative_to(root).as_posix(): (f"{i:032x}", None)
            for i, path in enumerate(sorted(p for p in root.rglob("*") if p.is_file()))}


@pytest.mark.parametrize("seed", range(40))
def test_listing__gives_the_local_readers_splits_classes_labels_and_file_order(tmp_path: Path, seed: int) -> None:
    root = tmp_path / "data"
    _random_tree(root, np.random.default_rng(seed))
    listing = _listing(root)
    try:
        local = open_dataset(root, "imagefolder")
    except DatasetLayoutError:
        with pytest.raises(DatasetLayoutError, match="No ImageFolder images"):
            imagefolder_from_listing(SOURCE, listing)
        return
    streamed = imagefolder_from_listing(SOURCE, listing)
    assert streamed.class_names == local.class_names
    assert list(streamed.splits) == list(local.splits)
    for name, split in local.splits.items():
        assert isinstance(split, ImageFolderSplit)
        expected = [(relative, label) for _, label, relative, _ in split._files()]
        stream_split = streamed.splits[name]
        assert isinstance(stream_split, StreamSplit)
        assert [(f.relative, f.label) for f in stream_split.files] == expected
        assert all(f.md5 == listing[f.relative][0] for f in stream_split.files)


def test_shards__cut_like_the_local_reader_and_cross_processes_as_plain_data() -> None:
    listing = {f"train/{c}/{i:03d}.png": (f"{i:032x}", None) for c in "ab" for i in range(7)}
    split = imagefolder_from_listing(SOURCE, listing).splits["train"]
    assert isinstance(split, StreamSplit)
    shards = split.shards(iter([3, 5, 100]))
    assert [shard.size for shard in shards] == [3, 5, 6]
    assert [f for shard in shards for f in shard.files] == split.files
    copy = pickle.loads(pickle.dumps(shards[1]))
    assert isinstance(copy, StreamShard) and copy == shards[1]
    assert b"PRIVATE KEY" not in pickle.dumps(shards[1])
    assert [s.size for s in StreamSplit("train", SOURCE, []).shards(iter([4]))] == [0]


def test_listing_without_images__error_says_stream_reads_imagefolder() -> None:
    with pytest.raises(DatasetLayoutError, match="dvc-pull: true") as raised:
        imagefolder_from_listing(SOURCE, {"train_images.pt": ("0" * 32, None), "train_target.pt": ("1" * 32, None)})
    assert "found train_images.pt, train_target.pt" in raised.value.message


@pytest.mark.parametrize(("extra", "named"), [({"layout": "course"}, "layout"),
                                              ({"dataset-class": "pkg.data:Digits"}, "dataset-class")])
def test_settings__stream_with_another_layout_fails_naming_both_inputs(extra: dict[str, str], named: str) -> None:
    with pytest.raises(Exception, match=f"Input `{named}`.*`dvc-pull: stream` reads ImageFolder data only"):
        load_settings({"mode": "data-stats", "data": "d", "dvc-pull": "stream", "github-token": "t", **extra})
    assert load_settings({"mode": "data-stats", "data": "d", "dvc-pull": "stream",
                          "github-token": "t"}).dvc_pull == "stream"
