"""`dvc-pull: stream` against pull-then-read, on a DVC-tracked ImageFolder in a `gs://` remote (the GCS
emulator of tests/fakes/gcs.py, with its genuine service-account login), in one invocation.

Makes N distinct 28x28 grey PNGs (train 6/7, test 1/7, 10 classes), `dvc add`s and `dvc push`es them to
the emulator, then, per repeat and in this order, on a fresh `git clone` (no data, no DVC cache), in a
fresh child process:
  - pull: `dvc pull data` (the DVC CLI, as `dvc-pull: true` runs it) and the statistics pass over the
    pulled folder (`compute_stats`, every statistic and the near-duplicate thumbnails);
  - stream: the same statistics pass over `open_streamed_imagefolder` (`dvc-pull: stream`).
Both with the same `--workers`. Printed per run: wall time (start-up included), the statistics' item
count (both must read all N), and what reached the disk: bytes of the files the run left in the clone
(data, `.dvc/cache`), in DVC's site cache (its index of the listing) and in the run's TMPDIR, and the
kernel's `write_bytes` of the child and the processes it waited for (the `dvc` CLI; not the worker
processes of the fork server, whose files the byte count above covers). Then the median ratio
pull / stream.

    python bench/stream.py [--items 50000] [--repeats 2] [--workers 2]

The emulator is one single-threaded HTTP server (its storage is not thread-safe), so both paths are
bound by it; on GCS both would run faster and with more requests in flight. Timings on a shared
machine are noisy: medians are printed, with every run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = "data/images"

_CHILD = """
import json, sys, time
start = time.perf_counter()
mode, ws, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
from mlgate.data.shards import start_workers
start_workers(workers)
from pathlib import Path
from mlgate.data.near_duplicates import NearDuplicateFinder
from mlgate.data.stats import compute_stats
if mode == "pull":
    from mlgate.data.dvc import DvcRunner
    from mlgate.data.layouts import open_dataset
    DvcRunner(Path(ws)).pull("data/images")
    dataset = open_dataset(Path(ws) / "data/images")
else:
    from mlgate.data.stream import RemoteData, open_streamed_imagefolder
    dataset = open_streamed_imagefolder(RemoteData(ws, None, "data/images"))
stats, _, _ = compute_stats(dataset, near_duplicates=NearDuplicateFinder(), workers=workers)
seconds = time.perf_counter() - start
io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
print("RESULT", json.dumps({"seconds": seconds, "items": sum(s.count for s in stats.splits.values()),
                            "write_bytes": int(io["write_bytes"])}))
"""


def make_images(root: Path, items: int, seed: int = 0) -> None:
    """``items`` distinct 28x28 grey PNGs: ``train``/``test`` (6:1) x 10 classes."""
    import io

    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for label in range(10):
            (root / split / f"class_{label}").mkdir(parents=True)
    for i in range(items):
        folder = root / ("test" if i % 7 == 6 else "train") / f"class_{i % 10}"
        pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
        pixels[::4] //= 2  # noise plus a pattern: about 800 bytes a file, like MNIST-sized PNGs
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        (folder / f"{i:07d}.png").write_bytes(buffer.getvalue())


def du(*roots: Path) -> int:
    return sum(p.stat().st_size for root in roots if root.exists() for p in root.rglob("*")
               if p.is_file() and ".git" not in p.relative_to(root).parts[:1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pull-limit", type=int, default=None,
                        help="stop `dvc pull` after this many seconds and extrapolate its time from the objects "
                        "it fetched (a lower bound for pull-then-read)")
    args = parser.parse_args()

    from tests.fakes.dvc_repo import hermetic_env, run
    from tests.fakes.gcs import running_emulator

    with tempfile.TemporaryDirectory(prefix="mlgate-bench-stream-") as tmp, running_emulator(Path(tmp)) as gcs:
        root = Path(tmp)
        bucket = gcs.create_bucket("mlgate-bench")
        env = {**os.environ, **gcs.env, **hermetic_env(root / "env")}
        origin = root / "origin"
        origin.mkdir()
        started = time.perf_counter()
        make_images(origin / DATA, args.items)
        made = time.perf_counter()
        run(origin, env, "git", "init", "-q", "-b", "main")
        run(origin, env, "dvc", "init", "-q")
        (origin / ".dvc" / "config").write_text(
            f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = {bucket}/store\n")
        run(origin, env, "dvc", "add", "-q", DATA)
        run(origin, env, "git", "add", "-A")
        run(origin, env, "git", "commit", "-q", "-m", "images")
        added = time.perf_counter()
        run(origin, env, "dvc", "push", "-q")
        pushed = time.perf_counter()
        data_bytes = du(origin / DATA)
        print(f"{args.items:,} PNGs, {data_bytes / 2**20:.1f} MiB: made in {made - started:.0f} s, "
              f"dvc add {added - made:.0f} s, dvc push to the emulator {pushed - added:.0f} s; "
              f"workers {args.workers}")

        results: dict[str, list[dict[str, float]]] = {"pull": [], "stream": []}
        for repeat in range(args.repeats):
            for mode in ("stream", "pull"):
                ws = root / f"ws-{mode}-{repeat}"
                site = root / f"site-{mode}-{repeat}"
                scratch = root / f"tmp-{mode}-{repeat}"
                site.mkdir()
                scratch.mkdir()
                run(root, env, "git", "clone", "-q", str(origin), str(ws))
                checkout = du(ws)
                child_env = {**env, "DVC_SITE_CACHE_DIR": str(site), "TMPDIR": str(scratch)}
                limit = args.pull_limit if mode == "pull" else None
                child = subprocess.Popen([sys.executable, "-c", _CHILD, mode, str(ws), str(args.workers)],
                                         env=child_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, start_new_session=True)
                try:
                    stdout, stderr = child.communicate(timeout=limit)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)  # the child, the `dvc` CLI and the workers: one group
                    child.communicate()
                    assert limit is not None
                    objects = sum(1 for p in (ws / ".dvc" / "cache").rglob("*") if p.is_file())
                    estimate = args.items / max(objects, 1) * limit
                    print(f"  pull   run {repeat + 1}: stopped after {limit} s (--pull-limit) with {objects:,} of "
                          f"{args.items:,} objects in the DVC cache ({objects / limit:.1f} objects/s; all of them "
                          f"at that rate: {estimate:.0f} s, before the statistics pass starts)")
                    results[mode].append({"seconds": estimate, "disk": du(ws) - checkout, "stopped": 1})
                    subprocess.run(["rm", "-rf", str(ws), str(site), str(scratch)], check=True)
                    continue
                done = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
                line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
                if done.returncode != 0 or line is None:
                    print(done.stdout[-3000:], done.stderr[-3000:])
                    return 1
                result = json.loads(line.removeprefix("RESULT "))
                result["disk"] = du(ws) - checkout + du(site) + du(scratch)
                results[mode].append(result)
                print(f"  {mode:6} run {repeat + 1}: {result['seconds']:7.1f} s, {result['items']:,} items, "
                      f"files left on disk {result['disk'] / 2**20:8.2f} MiB, "
                      f"write_bytes {result['write_bytes'] / 2**20:8.2f} MiB")
                if result["items"] != args.items:
                    print(f"  expected {args.items:,} items")
                    return 1
                subprocess.run(["rm", "-rf", str(ws), str(site), str(scratch)], check=True)

        pull = statistics.median(r["seconds"] for r in results["pull"])
        stream = statistics.median(r["seconds"] for r in results["stream"])
        pull_disk = statistics.median(r["disk"] for r in results["pull"])
        stream_disk = statistics.median(r["disk"] for r in results["stream"])
        stopped = any(r.get("stopped") for r in results["pull"])
        at_least = "at least " if stopped else ""
        print(f"median wall time: pull-then-read {at_least}{pull:.1f} s{' (extrapolated)' if stopped else ''}, "
              f"stream {stream:.1f} s -> stream is {at_least}{pull / stream:.2f}x the speed of pull-then-read")
        when = " (when stopped)" if stopped else ""
        print(f"median bytes left on disk: pull-then-read {pull_disk / 2**20:.1f} MiB{when} "
              f"(data {data_bytes / 2**20:.1f} MiB), stream {stream_disk / 2**20:.2f} MiB "
              "(DVC's index of the listing; no image)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
