"""``engine: ray`` against a real local multi-node Ray cluster (a head and worker nodes started by
``ray.cluster_utils.Cluster``, one CPU and a small object store each, reached through the head's Ray
Client port as a runner reaches a KubeRay head): the report equals the local engine's, also when a node
is killed mid-run; an unreachable or lost cluster is exit 3 naming the address; another Ray or Python
version on the cluster is exit 2 naming both versions."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlgate.cli import main
from mlgate.data.layouts import open_dataset
from mlgate.data.near_duplicates import NearDuplicateFinder
from mlgate.data.stats import compute_stats
from tests.fakes.ray_cluster import NODE, RayCluster, running
from tests.fixtures.datasets import make_course, make_imagefolder
from tests.helpers import free_port

ray = pytest.importorskip("ray", reason="engine: ray needs the ray package (requirements.txt pins it)")

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]



@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    """A head and one worker node; the nodes' workers import mlgate from this checkout (the image has it
    installed), nothing else of this process's environment reaches them."""
    yield from running(free_port(), 1, ROOT)


def _stats(root: Path, **engine: Any) -> tuple[str, dict[str, Any]]:
    """The statistics as report.json holds them, and what the report pictures, cut into shards of 13."""
    finder = NearDuplicateFinder()
    stats, samples, leaked = compute_stats(open_dataset(root), samples_per_class=3, near_duplicates=finder,
                                           shard_sizes=lambda: itertools.repeat(13), **engine)
    stats.near_duplicates = finder.result(0.08)
    return stats.model_dump_json(), {
        "samples": {label: images.numpy().tobytes() for label, images in samples.items()},
        "leaked": [(p.split, p.item, p.train_item, p.image.numpy().tobytes()) for p in leaked],
        "near": [(p.members, p.distance, [image.numpy().tobytes() for image in p.images])
                 for p in stats.near_duplicates.pictured],
    }


def _run(data: Path, out: Path, *flags: str) -> tuple[int, str]:
    code = main(["data-stats", "--data", str(data), "--out", str(out), "--dvc-pull", "false",
                 "--cache-dir", str(out.parent / f"{out.name}-cache"), *flags],
                env={"GITHUB_WORKSPACE": str(data.parent)})
    report = out / "report.json"
    return code, report.read_text() if report.exists() else ""


def test_ray_engine__report_json_equals_the_local_engines_with_a_base(ray_cluster: RayCluster,
                                                                      tmp_path: Path) -> None:
    make_course(tmp_path / "data", n_train=300, n_test=100, shards=3, duplicates=6, leaks=5, conflicts=3,
                nonfinite=2, seed=1)
    make_course(tmp_path / "old", n_train=280, n_test=90, shards=2, duplicates=2, leaks=2, seed=2)
    local = _run(tmp_path / "data", tmp_path / "local", "--workers", "1", "--baseline-data", "old")
    clustered = _run(tmp_path / "data", tmp_path / "ray", "--engine", "ray", "--ray-address", ray_cluster.address,
                     "--baseline-data", "old")
    assert clustered == local
    report = json.loads(clustered[1])
    assert report["splits"]["train"]["count"] == 300 and report["changes"] is not None
    assert report["leakage"]["train_test_exact_duplicates"] == 5


@pytest.mark.parametrize("layout", ["course", "imagefolder"])
def test_ray_engine__statistics_and_pictures_equal_the_local_engines_over_many_shards(
        ray_cluster: RayCluster, tmp_path: Path, layout: str) -> None:
    from mlgate.data.ray_engine import connect

    if layout == "course":
        make_course(tmp_path, n_train=150, n_test=50, shards=3, duplicates=6, leaks=5, conflicts=3, seed=3)
    else:
        make_imagefolder(tmp_path, per_class=12, classes=3, mixed=True, corrupt=3, duplicates=3, leaks=9, seed=3)
    local = _stats(tmp_path)
    with connect(ray_cluster.address) as engine:
        clustered = _stats(tmp_path, engine=engine)
        nodes = engine.nodes_used
    assert clustered == local
    assert nodes is not None and len(nodes) == 2  # both nodes reduced shards


def test_ray_engine__a_worker_node_killed_mid_run__ray_retries_and_the_statistics_are_the_same(
        ray_cluster: RayCluster, tmp_path: Path) -> None:
    from mlgate.data.ray_engine import connect

    make_course(tmp_path, n_train=900, n_test=300, shards=3, duplicates=6, leaks=5, conflicts=3, seed=4)
    local = _stats(tmp_path)
    ray_cluster.send("add victim")
    killed: list[int] = []

    def kill_after_the_first_shard(read: int, total: int) -> None:
        if not killed and 0 < read < total:
            killed.append(read)
            ray_cluster.send("kill victim")

    with connect(ray_cluster.address) as engine:
        finder = NearDuplicateFinder()
        stats, samples, _ = compute_stats(open_dataset(tmp_path), samples_per_class=3, near_duplicates=finder,
                                               shard_sizes=lambda: itertools.repeat(13), engine=engine,
                                               progress=kill_after_the_first_shard)
        used = engine.nodes_used
    stats.near_duplicates = finder.result(0.08)
    assert killed and killed[0] < 1200  # killed with most of the 96 shards still to come
    assert used is not None and len(used) >= 2
    assert stats.model_dump_json() == local[0]
    assert {label: images.numpy().tobytes() for label, images in samples.items()} == local[1]["samples"]


def test_ray_engine__an_unreachable_cluster__exit_3_naming_the_address_and_no_report(tmp_path: Path) -> None:
    make_course(tmp_path / "data", n_train=30, n_test=10, shards=1, seed=5)
    address = f"ray://127.0.0.1:{free_port()}"  # nothing listens there
    code, report = _run(tmp_path / "data", tmp_path / "out", "--engine", "ray", "--ray-address", address)
    assert code == 3 and report == ""
    assert not (tmp_path / "out" / "report.md").exists()


def test_ray_engine__ray_address_auto_without_ray_address__exit_3_saying_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    make_course(tmp_path / "data", n_train=30, n_test=10, shards=1, seed=5)
    code, report = _run(tmp_path / "data", tmp_path / "out", "--engine", "ray", "--ray-address", "auto")
    assert code == 3 and report == ""
    assert "RAY_ADDRESS" in "".join(capsys.readouterr())


@pytest.mark.parametrize("differs", ["ray", "python"])
def test_ray_engine__a_cluster_of_another_ray_or_python_version__exit_2_naming_both_versions_and_the_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], differs: str) -> None:
    """A real head whose Ray reports 2.0.0, or whose Python reports 3.9.18 (the versions it records for the
    cluster are patched before it starts: this machine has no second Python): Ray refuses the connection
    and the message names both versions and the fix."""
    port = free_port()
    ours = ".".join(map(str, sys.version_info[:3]))
    recorded = ("2.0.0", ours) if differs == "ray" else (ray.__version__, "3.9.18")
    head = textwrap.dedent(f"""
        import ray, ray._private.utils, sys
        ray._private.utils.compute_version_info = lambda: {recorded!r}
        from ray.scripts.scripts import main
        sys.argv = ["ray", "start", "--head", "--port={port}", "--num-cpus=1", "--include-dashboard=false",
                    "--object-store-memory={NODE['object_store_memory']}", "--disable-usage-stats"]
        main()
    """)
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's unix sockets live under it
    started = subprocess.Popen([sys.executable, "-c", head], env={**os.environ, "RAY_TMPDIR": temp},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert started.wait(timeout=120) == 0
        make_course(tmp_path / "data", n_train=30, n_test=10, shards=1, seed=5)
        code, report = _run(tmp_path / "data", tmp_path / "out", "--engine", "ray", "--ray-address",
                            f"127.0.0.1:{port}")
    finally:  # the head's processes, and only those: they share the session `ray start` ran in
        with contextlib.suppress(ProcessLookupError):
            os.killpg(started.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
    out = "".join(capsys.readouterr())
    assert code == 2 and report == ""
    assert f"Ray {recorded[0]} on Python {recorded[1]}" in out and f"Ray {ray.__version__} on Python {ours}" in out
    minor = ".".join(ours.split(".")[:2])
    assert "rayVersion" in out and f"Python {minor}" in out
    assert ("the Ray versions differ" if differs == "ray" else "the Python minor versions differ.") in out


def test_ray_engine__the_cluster_lost_mid_run__exit_3_naming_the_address_nothing_published(
        ray_cluster: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Runs last in this module: it kills the head."""
    from mlgate.data.ray_engine import ClusterUnreachable, connect

    monkeypatch.setenv("RAY_CLIENT_RECONNECT_GRACE_PERIOD", "3")  # the client's wait for a head that went away
    make_course(tmp_path, n_train=900, n_test=300, shards=3, seed=6)
    killed: list[int] = []

    def kill_the_head(read: int, total: int) -> None:
        if 0 < read < total and not killed:
            killed.append(read)
            ray_cluster.send("kill-head")

    with pytest.raises(ClusterUnreachable) as raised, connect(ray_cluster.address) as engine:
        compute_stats(open_dataset(tmp_path), shard_sizes=lambda: itertools.repeat(13), engine=engine,
                      progress=kill_the_head)
    assert raised.value.exit_code == 3 and ray_cluster.address in raised.value.message
