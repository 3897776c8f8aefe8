"""Only what changed: a pull request that adds 1 % of images, with the shard cache warm, against a cold run.

Makes a PNG ImageFolder of N 28x28 grey images (bench/data_scale.py's data: train 6/7, test 1/7, 10
classes, near copies among them), then runs the whole `python -m mlgate data-stats` in fresh child
processes, all in this one invocation:

  1. fill:  the base data, with an empty `cache-dir` (what the base branch's run leaves behind);
  2. then --share of new images is added (new PNGs, named after the existing ones: at the end of each
     class folder, as numbered files are; `--placement random` names them so they fall anywhere);
  3. warm:  the changed data with the cache-dir of run 1 (the pull request's run);
  4. cold:  the changed data with an empty cache-dir (the same run without a cache).

It prints the wall time of each run and of its reading phase, the ratios warm / cold (target for the
whole run: <= 0.15), whether warm and cold wrote the same report.json, and the shard cache's bytes per
item. By default the data is not tracked by DVC, so the shard keys come from hashing every file (md5,
the number DVC records); with --dvc the folder is `dvc add`ed (real DVC, hardlinked cache) before the
first run and again after the change, as the pull request would commit it, and the keys come from
DVC's `.dir` listing: no file is hashed (the production path after `dvc pull`).

    python bench/incremental.py [--items 200000] [--share 0.01] [--placement end|random] [--dvc] [--data DIR]

Timings on a shared machine are noisy: run it twice when it matters.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from data_scale import make_data, run  # noqa: E402  (a sibling script, found through the path above)


def add_images(folder: Path, items: int, share: float, placement: str, seed: int = 1) -> int:
    """Add ``share`` × ``items`` new PNGs to the train and test class folders; returns how many."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    added = max(1, round(items * share))
    n_train = added * 6 // 7
    for i in range(added):
        split = "train" if i < n_train else "test"
        label = int(rng.integers(0, 10))
        name = f"{items + i:07d}.png" if placement == "end" else f"{int(rng.integers(0, items)):07d}b.png"
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
        (folder / split / f"class_{label}" / name).write_bytes(buffer.getvalue())
    return added


def dvc_add(work: Path, folder: Path) -> float:
    """``dvc add`` the folder in ``work`` (a git and DVC repository after the first call); returns seconds."""
    import os
    import subprocess

    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
    dvc = str(Path(sys.executable).with_name("dvc"))
    started = time.perf_counter()
    if not (work / ".dvc").is_dir():
        subprocess.run(["git", "init", "-q"], cwd=work, check=True, env=env)
        subprocess.run([dvc, "init", "-q"], cwd=work, check=True, env=env)
        subprocess.run([dvc, "config", "cache.type", "hardlink,symlink,copy"], cwd=work, check=True, env=env)
    subprocess.run([dvc, "add", "-q", str(folder.relative_to(work))], cwd=work, check=True, env=env)
    return time.perf_counter() - started


def data_stats(data: Path | str, out: Path, cache: Path, workers: int) -> tuple[float, float, str]:
    """Wall seconds of a whole run, seconds of its reading phase, and the run's log."""
    wall, log, _, _ = run([sys.executable, "-m", "mlgate", "data-stats", "--data", str(data), "--out", str(out),
                           "--dvc-pull", "false", "--workers", str(workers), "--cache-dir", str(cache)])
    phases, name = [], None
    for line in log.splitlines():  # "▸ <phase>…", its own lines, then "  done in <seconds> s"
        if line.startswith("▸ "):
            name = line[2:].rstrip("…")
        elif name is not None and (done := re.match(r"\s+done in (?:(\d+) min )?([\d.]+) s", line)):
            phases.append((name, f"{int(done[1] or 0) * 60 + float(done[2]):.1f}"))  # "1 min 02 s" past a minute
            name = None
    print(f"    phases: {'; '.join(f'{name} {seconds} s' for name, seconds in phases)}")
    reading = next((float(seconds) for name, seconds in phases if name.startswith("Reading")), float("nan"))
    return wall, reading, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--share", type=float, default=0.01, help="share of images the pull request adds")
    parser.add_argument("--placement", choices=("end", "random"), default="end")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--dvc", action="store_true", help="track the folder with DVC: keys from its .dir listing")
    parser.add_argument("--data", type=Path, help="make the data in this folder (kept) instead of a temporary one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlgate-incremental-") as tmp:
        work = args.data or Path(tmp)
        started = time.perf_counter()
        folder, _ = make_data(work / "data", args.items)
        shutil.rmtree(work / "data" / "course")
        print(f"made {args.items:,} PNGs in {time.perf_counter() - started:.0f} s; workers {args.workers}")
        if args.dvc:
            import os

            os.environ["GITHUB_WORKSPACE"] = str(work)  # the DVC repository, as on a runner
            print(f"dvc add: {dvc_add(work, folder):.0f} s")
        data: Path | str = folder.relative_to(work).as_posix() if args.dvc else folder  # DVC names it so
        fill_wall, fill_read, _ = data_stats(data, work / "out-fill", work / "cache", args.workers)
        print(f"fill  (base data, empty cache):     run {fill_wall:6.1f} s, reading {fill_read:6.1f} s")
        added = add_images(folder, args.items, args.share, args.placement)
        if args.dvc:
            print(f"dvc add after the change: {dvc_add(work, folder):.0f} s")
        warm_wall, warm_read, warm_log = data_stats(data, work / "out-warm", work / "cache", args.workers)
        cold_wall, cold_read, _ = data_stats(data, work / "out-cold", work / "cache-cold", args.workers)
        shard_line = next((line.strip() for line in warm_log.splitlines() if "Shard cache" in line), "")
        print(f"added {added:,} images ({args.share:.1%}, placed at the {args.placement})")
        print(f"warm  (changed data, warm cache):   run {warm_wall:6.1f} s, reading {warm_read:6.1f} s")
        print(f"cold  (changed data, empty cache):  run {cold_wall:6.1f} s, reading {cold_read:6.1f} s")
        print(f"  {shard_line}")
        print(f"warm / cold: whole run {warm_wall / cold_wall:.3f} (target <= 0.15), "
              f"reading phase {warm_read / cold_read:.3f}")
        same = json.loads((work / "out-warm" / "report.json").read_text()) == json.loads(
            (work / "out-cold" / "report.json").read_text())
        print(f"report.json warm == cold: {same}")
        from mlgate.data.shard_cache import cache_bytes

        total = cache_bytes(work / "cache")
        print(f"shard cache: {total / 2**20:,.1f} MiB, {total / (args.items + added):,.0f} bytes per item")
        if not same:
            raise SystemExit("warm and cold reports differ")


if __name__ == "__main__":
    main()
