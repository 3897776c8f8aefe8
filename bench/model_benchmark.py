"""How trustworthy are model-gate's latency figures? Prints figures and ratios; asserts nothing.

1. Agreement with ``torch.utils.benchmark``: p50 of mlgate's per-call timing vs the median of
   ``Timer.blocked_autorange()`` for fixed matmuls of known cost (target: ratio within 10 %), and two
   consecutive mlgate runs (target: within 5 %). Also an A-vs-A interleaved pair (ideal ratio 1.00).
2. The course's ``time.time()`` loop of 100 predictions on the fixture CNN: its total, beside the
   distribution mlgate reports for the same model, and how both vary over repeated runs; then the model
   compared with itself, the course's way (one loop after the other) and mlgate's (interleaved).

Run: ``.venv/bin/python bench/model_benchmark.py`` from the repository root (about a minute).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils import benchmark as torch_benchmark

# run as a script from anywhere: the repository root holds both mlgate/ and tests/fixtures/
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlgate.model.measure.environment import environment
from mlgate.model.measure.latency import measure_latency, measure_pair
from tests.fixtures.models import trained_cnn

THREADS = 1
REPEATS = 5
ROUNDS = 5
COMPARISONS = 20


def _matmul(size: int) -> tuple[Callable[[], object], torch.Tensor]:
    a = torch.randn(size, size, generator=torch.Generator().manual_seed(size))
    return (lambda: a @ a), a


def agreement() -> None:
    print("\n## 1. mlgate per-call timing vs torch.utils.benchmark (same process, 1 thread)")
    print(
        f"Each figure is the median over {ROUNDS} rounds of (mlgate run, Timer run, mlgate run, A/A pair), so a\n"
        "slow phase of a shared machine does not land on one method only. Timer's median is over blocks of\n"
        "many calls (a per-block mean), so mlgate's mean is its like-for-like figure; mlgate's p50 sits below\n"
        "it by however much the slow calls pull the mean up.\n"
    )
    print(
        "| matmul | mlgate p50 (ms) | mlgate mean (ms) | Timer median (ms) | p50/Timer | mean/Timer "
        "| run2/run1 p50 (worst) | A/A interleaved p50 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in (64, 256, 512):
        fn, a = _matmul(size)
        predictions = max(200, int(5e8 / (2 * size**3)))  # ~0.25 s of work at 1 GFLOP/s
        timer = torch_benchmark.Timer(stmt="a @ a", globals={"a": a}, num_threads=THREADS)
        rounds = []
        with torch.inference_mode():
            for _ in range(ROUNDS):
                first = measure_latency(fn, predictions=predictions, warmup=50)
                median_ms = timer.blocked_autorange(min_run_time=0.25).median * 1e3
                second = measure_latency(fn, predictions=predictions, warmup=50)
                left, right = measure_pair(fn, fn, predictions=predictions, warmup=50)
                rounds.append((first, median_ms, second.p50_ms / first.p50_ms, left.p50_ms / right.p50_ms))
        p50 = statistics.median(r[0].p50_ms for r in rounds)
        mean = statistics.median(r[0].mean_ms for r in rounds)
        timer_ms = statistics.median(r[1] for r in rounds)
        run2 = [r[2] for r in rounds]
        worst = max(run2, key=lambda ratio: abs(ratio - 1))
        print(
            f"| {size}x{size} | {p50:.4f} | {mean:.4f} | {timer_ms:.4f} | "
            f"{statistics.median(r[0].p50_ms / r[1] for r in rounds):.3f} | "
            f"{statistics.median(r[0].mean_ms / r[1] for r in rounds):.3f} | "
            f"{statistics.median(run2):.3f} ({worst:.3f}) | {statistics.median(r[3] for r in rounds):.3f} |"
        )


def course_loop() -> None:
    print("\n## 2. The course's time.time() loop vs mlgate, fixture CNN, batch 1, 100 predictions")
    model = trained_cnn()
    x = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    course_totals, ours = [], []
    with torch.inference_mode():
        for _ in range(REPEATS):
            start = time.time()  # the course's measurement, verbatim in spirit: no warm-up, one total
            for _ in range(100):
                model(x)
            course_totals.append(time.time() - start)
            ours.append(measure_latency(lambda: model(x), predictions=100))
    print("| run | course total (s) | mlgate total (s) | p50 | p90 | p95 | p99 | IQR | stdev (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, (total, stats) in enumerate(zip(course_totals, ours, strict=True), 1):
        print(
            f"| {i} | {total:.4f} | {stats.total_seconds:.4f} | {stats.p50_ms:.4f} | {stats.p90_ms:.4f} "
            f"| {stats.p95_ms:.4f} | {stats.p99_ms:.4f} | {stats.iqr_ms:.4f} | {stats.stdev_ms:.4f} |"
        )
    spread = (max(course_totals) - min(course_totals)) / statistics.median(course_totals)
    p50s = [s.p50_ms for s in ours]
    print(
        f"\ncourse total varies by {spread * 100:.1f} % of its median over {REPEATS} runs and says nothing about "
        f"single predictions; mlgate's p50 varies by "
        f"{(max(p50s) - min(p50s)) / statistics.median(p50s) * 100:.1f} %, and the tail it shows "
        f"(p99/p50 = {statistics.median(s.p99_ms / s.p50_ms for s in ours):.2f}) is invisible in a total."
    )

    # A gate compares a candidate with production. Compare the model with itself, so the truth is 1.00.
    sequential, interleaved = [], []
    with torch.inference_mode():
        for _ in range(COMPARISONS):
            totals = []
            for _ in range(2):  # the course's way: one model's loop, then the other's
                start = time.time()
                for _ in range(100):
                    model(x)
                totals.append(time.time() - start)
            sequential.append(totals[0] / totals[1])
            cand, base = measure_pair(lambda: model(x), lambda: model(x), predictions=100)
            interleaved.append(cand.p50_ms / base.p50_ms)

    def worst(ratios: list[float]) -> str:
        return f"{max(abs(r - 1) for r in ratios) * 100:.1f} %"

    print(
        f"\nSame model against itself, {COMPARISONS} comparisons of 100 predictions each (truth: 0 % change):\n"
        f"- course loop, one model after the other (total ratio): worst apparent change {worst(sequential)}, "
        f"median |change| {statistics.median(abs(r - 1) for r in sequential) * 100:.1f} %\n"
        f"- mlgate measure_pair, interleaved (p50 ratio): worst apparent change {worst(interleaved)}, "
        f"median |change| {statistics.median(abs(r - 1) for r in interleaved) * 100:.1f} %"
    )


def main() -> None:
    torch.set_num_threads(THREADS)
    print(environment(THREADS).model_dump_json(indent=1))
    agreement()
    course_loop()


if __name__ == "__main__":
    main()
