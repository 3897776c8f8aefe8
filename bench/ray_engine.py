"""`engine: ray` against the local engine on this machine, in one invocation.

Makes a course-layout dataset of N 28x28 uint8 images (tensors in parts of 10,000; near copies among them)
and a small PNG ImageFolder (for the per-image cost of decoding), starts a real 2-node Ray cluster here
(tests/fakes/ray_cluster.py: a head and a worker node, one CPU and a 100 MB object store each, reached as
`ray://127.0.0.1:PORT` through the Ray Client server, as a runner reaches a KubeRay head), then, each
in a fresh child process, the statistics pass (`compute_stats`, near-duplicate thumbnails included):
  - local, workers 1 and 2; ray (2 nodes x 1 CPU): wall seconds of the pass (connecting excluded, said
    apart), the ratio to local workers 2 (same 2 cores), the overhead per shard
    ((ray - local workers 2) / shards), bytes moved to the driver (the pickled states), the driver's own
    time per shard (merging) and after the loop (judging the merged states);
  - the near-duplicate search after each pass, and `ray` once more with the search on the cluster
    (mlgate/data/ray_near_duplicates.py, forced on: thumbnails left on the nodes): bytes moved to the
    driver before (thumbnails in the states, search on the runner) and after (states without thumbnails,
    plus the candidate pairs and distances), wall seconds of pass + search, and whether report
    statistics (near-duplicates included) are identical;
  - the node-kill run: a third node added, killed after the first shard; the statistics compared with
    the local ones (must be equal);
  - start-up of the default path: `python -m mlgate data-stats --help` and `import mlgate.data.mode` of
    this tree and of the merge base with main (before `engine: ray`), alternated, medians; and whether
    `ray` is imported (it must not be);
  - a projection for 10 M and 100 M images on N nodes from the measured per-shard costs.

    python bench/ray_engine.py [--items 200000] [--repeats 2] [--nodes 8,32,128] [--cpus-per-node 8]

Timings on a shared 2-core machine are noisy (the cluster, the driver and other work share the cores):
medians of --repeats runs are printed with every run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_PASS = """
import json, pickle, sys, time
start = time.perf_counter()
from pathlib import Path
from mlgate.data.layouts import open_dataset
from mlgate.data.near_duplicates import NearDuplicateFinder
from mlgate.data.shards import start_workers
from mlgate.data.stats import compute_stats
engine, workers, kill = sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else ""
on_cluster = len(sys.argv) > 6 and sys.argv[6] == "cluster"
start_workers(workers)
measured = {"bytes": 0, "shards": 0, "waiting": 0.0}
from mlgate.settings import DataStatsSettings
distance = DataStatsSettings.model_fields["near_duplicate_distance"].default

class Counted:  # the engine's states, as they reach the driver: counted, timed, passed on
    def __init__(self, inner):
        self.inner = inner
    def reduce(self, shards, task):
        states = self.inner.reduce(shards, task)
        while True:
            began = time.perf_counter()
            try:
                shard, state = next(states)
            except StopIteration:
                return
            finally:
                measured["waiting"] += time.perf_counter() - began
            measured["bytes"] += len(pickle.dumps(state, protocol=5))
            measured["shards"] += 1
            yield shard, state

def kill_first(read, total):
    if kill and not measured.get("killed") and 0 < read < total:
        measured["killed"] = read
        with open(kill, "w") as signal:
            signal.write("kill")
        while open(kill).read() != "done":
            time.sleep(0.05)

def run(wrapped, finder):
    began = time.perf_counter()
    stats, _, _ = compute_stats(open_dataset(Path(sys.argv[1])), near_duplicates=finder,
                                workers=workers, engine=wrapped, progress=kill_first)
    measured["pass"] = time.perf_counter() - began
    began = time.perf_counter()
    stats.near_duplicates = finder.result(distance)
    measured["search"] = time.perf_counter() - began
    # what the cluster search sends back: per candidate pair two rows and a hash distance (int64) and its
    # pixel distance (float32); and the thumbnails pictured (1 KiB each)
    measured["search_bytes"] = getattr(finder, "measured", 0) * 28 + (
        1024 * sum(len(p.images) for p in stats.near_duplicates.pictured) if on_cluster else 0)
    measured["items"] = sum(s.count for s in stats.splits.values())
    measured["stats"] = stats.model_dump_json()

if engine == "ray":
    from mlgate.data.ray_engine import connect
    began = time.perf_counter()
    with connect(sys.argv[5]) as ray_engine:
        measured["connect"] = time.perf_counter() - began
        if on_cluster:
            import mlgate.data.ray_near_duplicates as cluster_search
            cluster_search.CLUSTER_SEARCH_FROM_ITEMS = 0
            run(Counted(ray_engine), cluster_search.ClusterNearDuplicateFinder())
        else:
            run(Counted(ray_engine), NearDuplicateFinder())
else:
    from mlgate.data.shards import reduce_in_order
    class Local:
        def reduce(self, shards, task):
            return reduce_in_order(shards, task, workers)
    run(Counted(Local()), NearDuplicateFinder())
measured["total"] = time.perf_counter() - start
print("RESULT", json.dumps(measured))
"""


def make_course(root: Path, items: int, seed: int = 0) -> Path:
    """Course layout: train 6/7, test 1/7, 10 classes, uint8 parts of 10,000 drawn from 20,000 near copies
    of 1,000 bases: bench/data_scale.py's data, course shards only."""
    sys.path.insert(0, str(ROOT / "bench"))
    from data_scale import make_data

    return make_data(root, items, seed, imagefolder=False)[1]


def make_folder(root: Path, items: int, seed: int = 1) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(items):
        folder = root / ("train" if i % 7 else "test") / f"class_{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
        (folder / f"{i:07d}.png").write_bytes(buffer.getvalue())
    return root


def child(data: Path, engine: str, workers: int, address: str = "", kill: str = "",
          cluster: object | None = None, search: str = "runner") -> dict:
    cmd = [sys.executable, "-c", _PASS, str(data), engine, str(workers), kill, address, search]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if kill:  # the child asks for the kill after its first shard; the cluster process does it
        while process.poll() is None and Path(kill).read_text() != "kill":
            time.sleep(0.05)
        if process.poll() is None:
            cluster.send("kill victim")  # type: ignore[attr-defined]
            Path(kill).write_text("done")
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:1] + cmd[3:])} failed:\n{out[-4000:]}")
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[7:])


def startup(repeats: int) -> dict[str, list[float]]:
    """Seconds of `--help` and of importing the default path, this tree vs the merge base (alternated)."""
    base = tempfile.mkdtemp(prefix="mlgate-base-")
    merge_base = subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
    archive = subprocess.run(["git", "archive", merge_base, "mlgate", "pyproject.toml"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(base, filter="data")
    times: dict[str, list[float]] = {}
    probes = {"--help": ["-m", "mlgate", "data-stats", "--help"],
              "import": ["-c", "import mlgate.cli, mlgate.data.mode, sys; assert 'ray' not in sys.modules"]}
    for _ in range(repeats):
        for tree, path in (("this", str(ROOT)), ("base", base)):
            for probe, args in probes.items():
                began = time.perf_counter()
                subprocess.run([sys.executable, *args], cwd=path, env={**os.environ, "PYTHONPATH": path},
                               check=True, capture_output=True)
                times.setdefault(f"{probe} {tree}", []).append(time.perf_counter() - began)
    return times


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--folder-items", type=int, default=8_192, help="PNG images for the decoding cost")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--nodes", default="8,32,128")
    parser.add_argument("--cpus-per-node", type=int, default=8)
    args = parser.parse_args()
    from mlgate.data.shards import ITEMS_PER_SHARD
    from tests.fakes.ray_cluster import running

    print("start-up of the default path (s), this tree vs the merge base with main:")
    for name, values in startup(5).items():
        print(f"  {name:14} median {statistics.median(values):.3f}  runs {', '.join(f'{v:.3f}' for v in values)}")

    with tempfile.TemporaryDirectory(prefix="mlgate-ray-bench-", dir="/tmp") as tmp:
        course = make_course(Path(tmp) / "course", args.items)
        folder = make_folder(Path(tmp) / "folder", args.folder_items)
        cluster_started = time.perf_counter()
        for cluster in running(_free_port(), 1, ROOT):
            print(f"\n2-node Ray cluster started in {time.perf_counter() - cluster_started:.1f} s at {cluster.address}")
            runs: dict[str, list[dict]] = {}
            for _ in range(args.repeats):  # alternated, so drift on the shared machine hits each alike
                runs.setdefault("local w1", []).append(child(course, "local", 1))
                runs.setdefault("local w2", []).append(child(course, "local", 2))
                runs.setdefault("ray 2 nodes", []).append(child(course, "ray", 1, cluster.address))
                runs.setdefault("ray + search", []).append(child(course, "ray", 1, cluster.address,
                                                                 search="cluster"))
            png = child(folder, "local", 1)
            cluster.send("add victim")
            kill = Path(tmp) / "kill"
            kill.write_text("")
            killed = child(course, "ray", 1, cluster.address, str(kill), cluster)

    med = {name: statistics.median(r["pass"] for r in rs) for name, rs in runs.items()}
    one = runs["ray 2 nodes"][0]
    shards = one["shards"]
    print(f"\n{args.items:,} items (course layout, uint8 28x28, parts of 10,000) in {shards} shards of up to "
          f"{ITEMS_PER_SHARD:,}; the statistics pass (near-duplicate thumbnails included), s:")
    for name, rs in runs.items():
        shown = ", ".join(f"{r['pass']:.2f}" for r in rs)
        print(f"  {name:12} median {med[name]:7.2f}  runs {shown}"
              f"  ratio to local w2 {med[name] / med['local w2']:.2f}")
    same = all(r["stats"] == runs["local w1"][0]["stats"] for rs in runs.values() for r in rs)
    print(f"  statistics identical in every run: {same}")
    connect = statistics.median(r["connect"] for r in runs["ray 2 nodes"])
    print(f"  connecting to the cluster (ray.init over Ray Client): {connect:.2f} s (not in the pass)")
    overhead = (med["ray 2 nodes"] - med["local w2"]) / shards
    per_shard = med["local w1"] / shards
    print(f"  compute per shard (local w1 / shards): {per_shard * 1000:.0f} ms; Ray's overhead per shard "
          f"((ray - local w2) / shards): {overhead * 1000:.0f} ms")
    moved = one["bytes"]
    print(f"  bytes moved to the driver (pickled states): {moved / 2**20:.1f} MiB, {moved / shards / 1024:.0f} KiB "
          f"per shard, {moved / args.items:.0f} B per item")
    driver_merge = statistics.median((r["pass"] - r["waiting"]) / r["shards"] for r in runs["ray 2 nodes"])
    print(f"  the driver's own time (merging, judging the merged states): {driver_merge * 1000:.1f} ms per shard "
          "(everything but waiting for states)")
    after = runs["ray + search"][0]
    print("\nnear-duplicate search: thumbnails back to the runner (before) or left on the cluster (after):")
    def with_search(name: str) -> float:
        return statistics.median(r["pass"] + r["search"] for r in runs[name])

    for name in ("local w2", "ray 2 nodes", "ray + search"):
        search = statistics.median(r["search"] for r in runs[name])
        print(f"  {name:12} pass + search median {with_search(name):7.2f} s (search {search:.2f} s), "
              f"ratio to ray 2 nodes {with_search(name) / with_search('ray 2 nodes'):.2f}")
    before_bytes = one["bytes"] + one["search_bytes"]
    after_bytes = after["bytes"] + after["search_bytes"]
    print(f"  bytes moved to the driver: before {before_bytes / args.items:.0f} B per item "
          f"({before_bytes / 2**20:.1f} MiB, the states with their thumbnails); after "
          f"{after_bytes / args.items:.0f} B per item ({after['bytes'] / args.items:.0f} B of states + "
          f"{after['search_bytes'] / args.items:.1f} B of candidate pairs, distances and pictured thumbnails); "
          f"ratio after / before {after_bytes / before_bytes:.3f}")
    print(f"\nnode killed after shard {killed.get('killed')}: pass {killed['pass']:.2f} s "
          f"(ratio to the median ray run {killed['pass'] / med['ray 2 nodes']:.2f}), statistics identical to "
          f"local: {killed['stats'] == runs['local w1'][0]['stats']}")
    png_per_item = png["pass"] / png["items"]
    print(f"\nPNG ImageFolder, {png['items']:,} images, local w1: {png['pass']:.2f} s, "
          f"{png_per_item * 1e6:.0f} us per image")

    print(f"\nprojection (per-image cost of the PNG pass + Ray's overhead per shard of {ITEMS_PER_SHARD:,}, spread "
          f"over nodes x {args.cpus_per_node} CPUs, plus the driver's serial merge per shard):")
    for images in (10_000_000, 100_000_000):
        n_shards = -(-images // ITEMS_PER_SHARD)
        for nodes in (int(n) for n in args.nodes.split(",")):
            cpus = nodes * args.cpus_per_node
            parallel = n_shards * (ITEMS_PER_SHARD * png_per_item + max(overhead, 0.0)) / cpus
            serial = n_shards * driver_merge
            print(f"  {images / 1e6:5.0f} M images, {nodes:4} nodes ({cpus:5} CPUs): {n_shards:,} shards, "
                  f"{(max(parallel, serial) + connect) / 60:7.1f} min (tasks {parallel / 60:.1f} min, driver merge "
                  f"{serial / 60:.1f} min, overlapped)")


if __name__ == "__main__":
    main()
