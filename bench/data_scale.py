"""data-stats reading at scale, with 1 and 2 workers, in one invocation.

Makes a PNG ImageFolder of N 28x28 grey images (near copies among them) and a course-layout copy of
the same pixels (uint8 tensors in shards of 10,000), then, per dataset and per `workers` value, runs
in a fresh child process:
  - read: the statistics pass (`compute_stats` as the CLI runs it, with a cold shard cache: keying
    the shards (the md5 of every file, as no DVC listing is given), decoding, every statistic, exact
    duplicates and leakage, the near-duplicate thumbnails, storing the shard states), after start-up
    (imports, starting the workers; printed beside it), median of --repeats runs, and the ratio
    workers 1 / workers 2
    (targets: ImageFolder >= 1.8x on 2 cores; course layout not slower);
  - full (--full): the whole `python -m mlgate data-stats` run (near-duplicate search and figures too);
  - peak memory: the child's own high-water mark (VmHWM), and the peak of the summed proportional set
    size (PSS, shared pages split between the processes sharing them) of the child and every worker.

    python bench/data_scale.py [--items 200000] [--repeats 3] [--full]

--near-duplicates: whole `mlgate data-stats` runs (every check on, `workers: auto`) on 60,000 + 10,000
and 600,000 + 100,000 28x28 digits in the course layout, distinct and dense (each digit ~10x with
noise and 1-pixel moves; `bench/near_duplicates.py`): the statistics pass, the near-duplicate phase
and the whole run, their ratio, the 700k/70k ratios, and the course's reference script on the same
70k data (targets: data-stats <= 1.0x the script at 70k, near-duplicates <= the statistics pass,
700k <= 12x 70k).

--memory 200000,2000000: peak memory of whole `mlgate data-stats` runs on this script's data (course
layout: 2,000,000 PNGs would take an hour to write; `--memory-imagefolder` adds the ImageFolder at the
sizes up to 200,000), as the main process's high-water mark (VmHWM) and the summed PSS of every
process, and the bytes per item above a 2,000-item run's (targets: <= 600 MiB at 200,000, <= 1 GiB
at 2,000,000), with the main process's peak in each phase of the run (start-up: before the first). Run
the script with another interpreter to measure another torch build (its children use the same one).

Timings on a shared machine are noisy: medians are printed, with every run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

_READ = """
import sys, tempfile, time
start = time.perf_counter()
from mlgate.data.shards import start_workers
start_workers(int(sys.argv[2]))  # as the CLI does: the fork server imports torch while this process does
from pathlib import Path
from mlgate.data.layouts import open_dataset
from mlgate.data.near_duplicates import NearDuplicateFinder
from mlgate.data.shard_cache import FileDigests, ShardCache
from mlgate.data.stats import compute_stats
data = Path(sys.argv[1])
ready = time.perf_counter()
with tempfile.TemporaryDirectory() as cache:  # a cold cache-dir: the CLI's first run (its default keeps one)
    stats, _, _ = compute_stats(open_dataset(data), near_duplicates=NearDuplicateFinder(), workers=int(sys.argv[2]),
                                shard_cache=ShardCache(Path(cache), FileDigests(data)))
    reading = time.perf_counter() - ready
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print("RESULT", ready - start, reading, peak * 1024, sum(s.count for s in stats.splits.values()))
"""


def make_data(root: Path, items: int, seed: int = 0, imagefolder: bool = True) -> tuple[Path, Path]:
    """An ImageFolder (train 6/7, test 1/7, 10 classes) and the same images as course shards (uint8,
    10,000 a shard). Items are drawn from 20,000 distinct images (near copies of 1,000 bases, each
    encoded once), so a large folder is made in seconds: every image repeats about items/20,000 times."""
    import io

    import torch
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder, course = root / "imagefolder", root / "course"
    base = rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    pool = base[rng.integers(0, 1000, 20_000)]
    noise = rng.integers(0, 3, pool.shape, dtype=np.uint8)  # near copies: a few levels apart
    pool = np.minimum(pool.astype(np.int16) + noise, 255).astype(np.uint8)
    encoded = []
    for image in pool:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
        encoded.append(buffer.getvalue())
    picks = rng.integers(0, len(pool), items)
    labels = rng.integers(0, 10, items)
    n_train = items * 6 // 7
    course.mkdir(parents=True)
    for split, lo, hi in (("train", 0, n_train), ("test", n_train, items)):
        for shard, start in enumerate(range(lo, hi, 10_000)):
            stop = min(hi, start + 10_000)
            torch.save(torch.from_numpy(pool[picks[start:stop]]), course / f"{split}_images_{shard}.pt")
            torch.save(torch.from_numpy(labels[start:stop].copy()), course / f"{split}_target_{shard}.pt")
        if not imagefolder:  # the course layout only (millions of PNGs take long to write)
            continue
        for label in range(10):
            (folder / split / f"class_{label}").mkdir(parents=True)
        for i in range(lo, hi):
            (folder / split / f"class_{labels[i]}" / f"{i:07d}.png").write_bytes(encoded[picks[i]])
    return folder, course


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            return next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def run(cmd: list[str], root: Path = ROOT) -> tuple[float, str, int, float]:
    """Wall seconds, stdout, the peak summed PSS (bytes) of the child and its descendants, and their CPU
    seconds (sampled every 0.25 s: a process's last quarter second may be missed); ``root``: the
    checkout whose mlgate runs."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, cpu = 0, {}
    while child.poll() is None:
        tree = _tree(child.pid)
        peak = max(peak, sum(_pss_kb(pid) for pid in tree))
        cpu.update({pid: max(cpu.get(pid, 0.0), _cpu_s(pid)) for pid in tree})
        time.sleep(0.25)
    out, _ = child.communicate()
    seconds = time.perf_counter() - start
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out}")
    return seconds, out, peak * 1024, sum(cpu.values())


# the main process's own high-water mark, written by the child itself at exit; and per phase of the run
# (`workflow.phase`): the high-water mark is reset as a phase starts (/proc/self/clear_refs), so each
# PHASE_KB line is that phase's own peak; "start-up" is the peak before the first phase
_PEAK = """
import atexit, contextlib, runpy, sys
def _kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0
peak = [0]
def _reset():
    peak[0] = max(peak[0], _kb("VmHWM"))
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
def _peak():
    print("PHASE_KB after the phases", _kb("VmHWM"), flush=True)
    print("PEAK_KB " + str(max(peak[0], _kb("VmHWM"))), flush=True)
atexit.register(_peak)
import mlgate.workflow
_phase = mlgate.workflow.phase
started = [False]
@contextlib.contextmanager
def phase(name, *args, **kwargs):
    if not started[0]:
        started[0] = True
        print("PHASE_KB start-up", _kb("VmHWM"), flush=True)
    _reset()
    try:
        with _phase(name, *args, **kwargs):
            yield
    finally:
        print("PHASE_KB " + name.split(" ")[0], _kb("VmHWM"), flush=True)
        _reset()
mlgate.workflow.phase = phase
sys.argv = sys.argv[1:]
runpy.run_module("mlgate", run_name="__main__", alter_sys=True)
"""


def data_stats(data: Path, out: Path, *flags: str, root: Path = ROOT) -> tuple[float, str, int, int]:
    """A whole `mlgate data-stats` run of the checkout at ``root``: wall seconds, its output, the main
    process's peak RSS and the peak summed PSS of every process (bytes)."""
    wall, output, pss, _ = run([sys.executable, "-c", _PEAK, "mlgate", "data-stats", "--data", str(data),
                                "--out", str(out), "--dvc-pull", "false", "--cache-dir", str(out) + "-cache",
                                *flags], root)
    peak = [line for line in output.splitlines() if line.startswith("PEAK_KB ")]
    return wall, output, int(peak[-1].split()[1]) * 1024 if peak else 0, pss


def phase_peaks(output: str) -> str:
    """The main process's peak per phase of a :func:`data_stats` run, in MiB (``start-up 530, Reading 610, …``)."""
    peaks = [line.removeprefix("PHASE_KB ").rsplit(" ", 1) for line in output.splitlines()
             if line.startswith("PHASE_KB ")]
    return ", ".join(f"{name} {int(kb) / 1024:,.0f}" for name, kb in peaks)


def phase_seconds(output: str, starts: str) -> float:
    """The seconds a run's phase (``▸ <name>…`` … ``done in``) took, by the start of its name."""
    inside = False
    for line in output.splitlines():
        if line.startswith("▸ "):
            inside = line[2:].startswith(starts)
        elif inside and line.strip().startswith("done in "):
            value = line.strip().removeprefix("done in ")
            if value.endswith(" s") and "min" not in value:
                return float(value[:-2])
            minutes, _, rest = value.partition(" min ")
            return 60 * float(minutes) + float(rest.removesuffix(" s"))
    raise SystemExit(f"no phase {starts!r} in:\n{output}")


def write_course(root: Path, splits: dict[str, tuple[object, object]], per_shard: int = 10_000) -> Path:
    import torch

    root.mkdir(parents=True)
    for split, (images, labels) in splits.items():
        for k, start in enumerate(range(0, len(images), per_shard)):  # type: ignore[arg-type]
            torch.save(images[start : start + per_shard].clone(), root / f"{split}_images_{k}.pt")  # type: ignore[index]
            torch.save(labels[start : start + per_shard].clone(), root / f"{split}_target_{k}.pt")  # type: ignore[index]
    return root


def near_duplicate_scaling(work: Path, sizes: list[tuple[int, int]]) -> None:
    """Whole runs on distinct and dense digits at each size; the reference script at the first."""
    sys.path.insert(0, str(ROOT / "bench"))
    from near_duplicates import course_like, dense

    seconds: dict[tuple[str, int], tuple[float, float, float]] = {}
    for n_train, n_test in sizes:
        n = n_train + n_test
        for kind, make in (("distinct", course_like), ("dense", dense)):
            data = write_course(work / f"{kind}-{n}", make(n_train, n_test, seed=1))
            wall, output, hwm, pss = data_stats(data, work / f"out-{kind}-{n}")
            stats = phase_seconds(output, "Reading")
            near = phase_seconds(output, "Searching for near-duplicates")
            seconds[(kind, n)] = (stats, near, wall)
            line = (f"{n_train:,} + {n_test:,} {kind:8}: data-stats {wall:6.1f} s (statistics pass {stats:.1f} s, "
                    f"near-duplicates {near:.1f} s = {near / stats:.2f}x the pass), main peak {hwm / 2**20:,.0f} MiB, "
                    f"all processes PSS {pss / 2**20:,.0f} MiB")
            if n == sizes[0][0] + sizes[0][1]:
                reference, _, _, _ = run([sys.executable, "bench/reference_dataset_statistics.py", str(data),
                                          str(work / f"ref-{kind}")])
                line += f"; reference script {reference:.1f} s, data-stats/reference {wall / reference:.2f}x"
            print(line, flush=True)
            shutil.rmtree(data)
    if len(sizes) > 1:
        small, large = (a + b for a, b in sizes[:2])
        for kind in ("distinct", "dense"):
            (s1, n1, w1), (s2, n2, w2) = seconds[(kind, small)], seconds[(kind, large)]
            print(f"{kind:8} {large:,}/{small:,}: statistics pass {s2 / s1:.1f}x, near-duplicates {n2 / n1:.1f}x, "
                  f"whole run {w2 / w1:.1f}x (linear {large / small:.0f}x; target <= 12x)")


def memory(work: Path, sizes: list[int], imagefolder: bool, compare: Path | None) -> None:
    """Peak memory of whole runs at each size, and the bytes per item above a 2,000-item run; with
    ``compare``, the same runs of that checkout too (before/after in one invocation)."""
    base = 2_000
    peaks: dict[tuple[str, str, int], tuple[int, int]] = {}
    checkouts = [("this", ROOT)] + ([("compare", compare)] if compare else [])
    for n in [base, *sizes]:
        started = time.perf_counter()
        folder, course = make_data(work / f"mem-{n}", n, imagefolder=imagefolder and n <= 200_000)
        made = time.perf_counter() - started
        for name, data in (("course", course), ("imagefolder", folder)):
            if not (data / "train").exists() and name == "imagefolder":
                continue
            for which, root in checkouts:
                wall, output, hwm, pss = data_stats(data, work / f"out-mem-{name}-{n}-{which}", root=root)
                peaks[(which, name, n)] = (hwm, pss)
                line = (f"{which:7} {name:11} {n:>9,} items: data-stats {wall:6.1f} s (data made in {made:.0f} s), "
                        f"main peak {hwm / 2**20:,.0f} MiB, all processes PSS {pss / 2**20:,.0f} MiB")
                if n != base and (which, name, base) in peaks:
                    b_hwm, b_pss = peaks[(which, name, base)]
                    line += (f"; per item above {base:,} items: main {(hwm - b_hwm) / (n - base):,.0f} B, "
                             f"all {(pss - b_pss) / (n - base):,.0f} B")
                print(line, flush=True)
                print(f"        main peak per phase (MiB): {phase_peaks(output)}", flush=True)
        shutil.rmtree(work / f"mem-{n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also time whole `mlgate data-stats` runs")
    parser.add_argument("--data", type=Path, help="reuse (or make and keep) the data in this folder")
    parser.add_argument("--layouts", default="imagefolder,course", help="comma-separated: imagefolder,course")
    parser.add_argument("--near-duplicates", action="store_true",
                        help="time whole runs on distinct and dense digits at 70k and 700k instead")
    parser.add_argument("--skip-700k", action="store_true", help="with --near-duplicates: 70k only")
    parser.add_argument("--memory", help="peak memory of whole runs at these sizes instead (e.g. 200000,2000000)")
    parser.add_argument("--memory-imagefolder", action="store_true", help="with --memory: also ImageFolder (<= 200k)")
    parser.add_argument("--compare", type=Path, help="also run the mlgate of this checkout (before/after)")
    args = parser.parse_args()
    if args.near_duplicates or args.memory:
        with tempfile.TemporaryDirectory(prefix="mlgate-scale-") as tmp:
            print(f"cores this process may use: {len(os.sched_getaffinity(0))}", flush=True)
            if args.near_duplicates:
                near_duplicate_scaling(Path(tmp), [(60_000, 10_000)] + ([] if args.skip_700k else [(600_000, 100_000)]))
            if args.memory:
                memory(Path(tmp), [int(n) for n in args.memory.split(",")], args.memory_imagefolder, args.compare)
        return
    with tempfile.TemporaryDirectory(prefix="mlgate-scale-") as tmp:
        work = args.data or Path(tmp)
        if (work / "course").is_dir():
            folder, course = work / "imagefolder", work / "course"
        else:
            started = time.perf_counter()
            folder, course = make_data(work, args.items)
            print(f"made {args.items:,} PNGs and course shards in {time.perf_counter() - started:.0f} s")
        print(f"cores this process may use: {len(os.sched_getaffinity(0))}; medians of {args.repeats} runs")
        for name, data in (("imagefolder", folder), ("course", course)):
            if name not in args.layouts.split(","):
                continue
            for which, root in [("this", ROOT)] + ([("compare", args.compare)] if args.compare else []):
                read_speed_up(name, data, work, root, which if args.compare else "", args)


def read_speed_up(name: str, data: Path, work: Path, root: Path, which: str, args: argparse.Namespace) -> None:
    """The reading rows of one layout for the checkout at ``root``, workers 1 and 2, and their ratio."""
    name = f"{which} {name}".strip()
    medians = {}
    for workers in (1, 2):
        runs = []
        for _ in range(args.repeats):
            wall, out, pss, cpu = run([sys.executable, "-c", _READ, str(data), str(workers)], root)
            if "RESULT" not in out:
                raise SystemExit(f"no result from {name}, workers {workers}:\n{out}")
            start_up, seconds, hwm, items = out.split("RESULT")[1].split()
            runs.append((float(seconds), int(hwm), pss, cpu, float(start_up)))
        medians[workers] = statistics.median(r[0] for r in runs)
        print(f"{name:12} workers {workers}: read {medians[workers]:6.1f} s "
              f"({int(items) / medians[workers]:,.0f} items/s; runs {', '.join(f'{r[0]:.1f}' for r in runs)}; "
              f"start-up before it {statistics.median(r[4] for r in runs):.1f} s), "
              f"main peak {max(r[1] for r in runs) / 2**20:,.0f} MiB, "
              f"all processes peak PSS {max(r[2] for r in runs) / 2**20:,.0f} MiB, "
              f"CPU {statistics.median(r[3] for r in runs):,.0f} s in all")
        if args.full:
            out_dir = work / f"out-{name.replace(' ', '-')}-{workers}"
            wall, _, pss, _ = run([sys.executable, "-m", "mlgate", "data-stats", "--data", str(data),
                                   "--out", str(out_dir), "--dvc-pull", "false", "--workers", str(workers),
                                   "--cache-dir", str(out_dir) + "-cache"], root)
            print(f"{name:12} workers {workers}: full data-stats run {wall:6.1f} s, "
                  f"peak PSS {pss / 2**20:,.0f} MiB")
    print(f"{name:12} read speed-up workers 2 vs 1: {medians[1] / medians[2]:.2f}x")


if __name__ == "__main__":
    main()
