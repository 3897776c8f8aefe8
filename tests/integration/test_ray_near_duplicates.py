"""The near-duplicate search of ``engine: ray`` run on a real local multi-node Ray cluster (a head and a
worker node, ``tests/fakes/ray_cluster.py``), forced on for small data: the thumbnails stay on the cluster,
the search is cut by band value over several tasks, and report.json equals the local engine's, for the
course layout and ImageFolder with planted near copies and near-leaks and a base; also when a worker node
is killed in the middle of the search."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import mlgate.data.ray_near_duplicates as cluster_search
from mlgate.cli import main
from mlgate.data import shards as shard_plan
from mlgate.data.layouts import open_dataset
from mlgate.data.near_duplicates import NearDuplicateFinder
from mlgate.data.stats import ShardState, ShardTask, compute_stats
from tests.fakes.ray_cluster import RayCluster, running
from tests.fixtures.perturbed_digits import jpeg, near_duplicate_set
from tests.helpers import free_port

ray = pytest.importorskip("ray", reason="engine: ray needs the ray package (requirements.txt pins it)")

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DISTANCE = 0.08



@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    yield from running(free_port(), 1, ROOT)


@pytest.fixture
def on_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cluster search forced on for small data, its band values cut into several ranges."""
    monkeypatch.setattr(cluster_search, "CLUSTER_SEARCH_FROM_ITEMS", 0)
    monkeypatch.setattr(cluster_search, "ITEMS_PER_PARTITION", 90)


def _digits(seed: int, originals: int = 360, copies: int = 90) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Real digits with planted near copies (JPEG, shifted, brightened: within and across splits) and a
    group of 7 JPEG copies of one digit in train; train the first 300 items, test the rest."""
    found = near_duplicate_set(originals=originals, copies=copies, seed=seed)
    images, labels = found.images.numpy(), found.labels.numpy()
    group = np.stack([jpeg(images[5], quality) for quality in (60, 65, 70, 75, 80, 85, 90)])
    train = np.concatenate([images[:300], group])
    train_labels = np.concatenate([labels[:300], np.full(len(group), labels[5])])
    return {"train": (train, train_labels), "test": (images[300:], labels[300:])}


def _course(root: Path, seed: int) -> Path:
    root.mkdir(parents=True)
    for split, (images, labels) in _digits(seed).items():
        for n, part in enumerate(np.array_split(np.arange(len(images)), 3 if split == "train" else 1)):
            stem = f"{split}_{{}}_{n}" if split == "train" else f"{split}_{{}}"
            torch.save(torch.from_numpy(images[part]), root / f"{stem.format('images')}.pt")
            torch.save(torch.from_numpy(labels[part]), root / f"{stem.format('target')}.pt")
    return root


def _imagefolder(root: Path, seed: int) -> Path:
    for split, (images, labels) in _digits(seed).items():
        for n, (image, label) in enumerate(zip(images, labels.tolist(), strict=True)):
            folder = root / split / f"digit_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            (folder / f"{n:05d}.png").write_bytes(buffer.getvalue())
    return root


def _run(data: Path, out: Path, *flags: str) -> tuple[int, str]:
    code = main(["data-stats", "--data", str(data), "--out", str(out), "--dvc-pull", "false",
                 "--near-duplicate-distance", str(DISTANCE),
                 "--cache-dir", str(out.parent / f"{out.name}-cache"), *flags],
                env={"GITHUB_WORKSPACE": str(data.parent)})
    report = out / "report.json"
    return code, report.read_text() if report.exists() else ""


@pytest.mark.usefixtures("on_cluster")
@pytest.mark.parametrize("layout", ["course", "imagefolder"])
def test_cluster_search__report_json_equals_the_local_engines_with_near_copies_near_leaks_and_a_base(
        ray_cluster: RayCluster, tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shard_plan, "ITEMS_PER_SHARD", 64)  # several shards per split, on both nodes
    monkeypatch.setattr(shard_plan, "ITEMS_PER_CONTENT_SHARD", 32)
    make = _course if layout == "course" else _imagefolder
    make(tmp_path / "data", seed=1)
    make(tmp_path / "old", seed=2)
    local = _run(tmp_path / "data", tmp_path / "local", "--workers", "1", "--baseline-data", "old")
    capsys.readouterr()
    clustered = _run(tmp_path / "data", tmp_path / "ray", "--engine", "ray", "--ray-address", ray_cluster.address,
                     "--baseline-data", "old")
    log = capsys.readouterr().out
    assert "Near-duplicate search on the Ray cluster" in log
    assert clustered == local and local[0] in (0, 1)
    near = json.loads(clustered[1])["near_duplicates"]
    assert near["within"]["train"]["largest"] >= 7  # the group of 7 copies (and the planted pairs)
    assert near["within"]["train"]["total"] >= 5 and near["leaked"]["test"]["total"] >= 5
    assert json.loads(clustered[1])["changes"] is not None


class _Counted:
    """The engine's states as they reach this process: what each pickles to, and its near-duplicate parts."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.bytes, self.items, self.thumbnails_here = inner, 0, 0, 0

    def reduce(self, shards: list[Any], task: ShardTask) -> Iterator[tuple[Any, ShardState]]:
        import pickle

        for shard, state in self.inner.reduce(shards, task):
            self.bytes += len(pickle.dumps(state, protocol=5))
            self.items += state.acc.count
            self.thumbnails_here += sum(isinstance(t, torch.Tensor) for part in state.near for t in part.thumbs)
            yield shard, state

    def pick(self, wanted: list[Any], batch_size: int) -> list[dict[int, torch.Tensor]]:
        return self.inner.pick(wanted, batch_size)  # the leaked items pictured, read again on the cluster


def _stats(root: Path, finder: NearDuplicateFinder, **engine: Any) -> str:
    stats, _, _ = compute_stats(open_dataset(root), samples_per_class=2, near_duplicates=finder,
                                shard_sizes=lambda: itertools.repeat(128), **engine)
    stats.near_duplicates = finder.result(DISTANCE)
    pictured = [(p.members, p.distance, [image.numpy().tobytes() for image in p.images])
                for p in stats.near_duplicates.pictured]
    listing = stats.near_duplicates.listing
    return json.dumps([stats.model_dump_json(), repr(pictured), repr(listing.members), repr(listing.leaked)])


@pytest.mark.usefixtures("on_cluster")
def test_cluster_search__thumbnails_stay_on_the_cluster_and_a_worker_killed_mid_search_changes_nothing(
        ray_cluster: RayCluster, tmp_path: Path) -> None:
    from mlgate.data.ray_engine import connect

    _course(tmp_path / "data", seed=4)
    local = _stats(tmp_path / "data", NearDuplicateFinder())
    ray_cluster.send("add victim")
    killed: list[str] = []

    def kill_when_hashed(stage: str) -> None:
        if stage == "hashed" and not killed:
            killed.append(stage)
            ray_cluster.send("kill victim")

    with connect(ray_cluster.address) as engine:
        counted = _Counted(engine)
        finder = cluster_search.ClusterNearDuplicateFinder(between_stages=kill_when_hashed)
        clustered = _stats(tmp_path / "data", finder, engine=counted)
        nodes = engine.nodes_used
    assert killed and nodes is not None and len(nodes) == 3  # the victim reduced shards before it died
    assert clustered == local
    assert finder.measured > 0 and json.loads(json.loads(clustered)[0])["near_duplicates"]["leaked"]["test"]["total"]
    assert counted.thumbnails_here == 0  # every shard's thumbnails stayed on the cluster
    assert counted.bytes / counted.items < 400, counted.bytes / counted.items
