"""data-stats speed and memory against the course's reference script, in one invocation.

Prints, for generated course-layout datasets of 60,000 and 600,000 28x28 images:
  - wall time of `python -m mlgate data-stats` (every statistic, duplicates and leakage included)
    and of the reference `dataset_statistics` script on the same data (median of --repeats runs),
  - the ratio mlgate/reference (target <= 1.0) and the 600k/60k scaling (linear: <= 10x),
and the peak RSS of data-stats on a 200,000-image ImageFolder (target < 1 GiB).

    python bench/data_stats.py [--repeats 3] [--skip-600k] [--skip-imagefolder]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.datasets import make_course, make_imagefolder  # noqa: E402

# Peak memory is read inside the child (VmHWM of its own address space): a child forked from this
# large benchmark process would otherwise report the parent's pages in its rusage high-water mark.
_PEAK_WRAPPER = """
import atexit, runpy, sys
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("PEAK_KB " + line.split()[1] + "\\n")
atexit.register(_peak)
target, sys.argv = sys.argv[1], sys.argv[1:]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    sys.argv[0] = target
    runpy.run_module(target, run_name="__main__", alter_sys=True)
"""


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process (``cmd[0]`` is this interpreter)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([cmd[0], "-c", _PEAK_WRAPPER, *cmd[1:]], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1 = a data gate failed, still a full run
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK_KB ")]
    return seconds, int(peak[-1].split()[1]) * 1024


def mlgate_cmd(data: Path, out: Path) -> list[str]:
    return [sys.executable, "mlgate", "data-stats", "--data", str(data), "--out", str(out),
            "--dvc-pull", "false", "--cache-dir", str(out.with_name(out.name + "-cache"))]


def median_time(cmd: list[str], repeats: int) -> float:
    return statistics.median(run(cmd)[0] for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-600k", action="store_true")
    parser.add_argument("--skip-imagefolder", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlgate-bench-") as tmp:
        work = Path(tmp)
        sizes = [60_000] + ([] if args.skip_600k else [600_000])
        ours: dict[int, float] = {}
        for n in sizes:
            data = work / f"course-{n}"
            make_course(data, n_train=n, n_test=n // 6, shards=max(1, n // 10_000), duplicates=n // 1000,
                        leaks=n // 2000, seed=1, keep_arrays=False)
            (work / "ref").mkdir(exist_ok=True)
            reference = median_time([sys.executable, "bench/reference_dataset_statistics.py", str(data),
                                     str(work / "ref")], args.repeats)
            ours[n] = median_time(mlgate_cmd(data, work / f"out-{n}"), args.repeats)
            print(f"course layout, {n:,} train + {n // 6:,} test 28x28: mlgate data-stats {ours[n]:.2f} s, "
                  f"reference script {reference:.2f} s, ratio mlgate/reference = {ours[n] / reference:.2f}")
        if len(ours) == 2:
            print(f"scaling 600k/60k: {ours[600_000] / ours[60_000]:.2f}x for 10x the data "
                  f"(linear or better: <= 10)")
        if not args.skip_imagefolder:
            folder = work / "imagefolder"
            make_imagefolder(folder, per_class={"train": 17_000, "test": 3_000}, classes=10, seed=2,
                             keep_arrays=False)
            seconds, peak = run(mlgate_cmd(folder, work / "out-if"))
            print(f"ImageFolder, 200,000 PNG images (170k train + 30k test): {seconds:.1f} s, "
                  f"peak RSS {peak / 2**20:.0f} MiB (limit 1024 MiB, ratio {peak / 2**30:.2f})")


if __name__ == "__main__":
    main()
