"""Latency distribution and throughput: one ``time.perf_counter_ns`` interval per prediction.

Timing each call, rather than a loop, lets the report show the whole distribution (p50 ... p99, IQR)
instead of a single total. With a production model to compare against, candidate and baseline calls
are interleaved (A B A B ...) so that whatever else the runner is doing slows both alike, and the
ratio between them stays meaningful on a noisy CI machine. Pure Python: the callables may run any
model, and nothing here imports torch.
"""

from __future__ import annotations

import gc
import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from time import perf_counter_ns

from mlgate.model.measure.values import BenchmarkError, LatencyStats, Throughput

WARMUP = 10
"""Untimed calls of each callable before timing starts."""


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method); ``q`` in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def summarize_latencies(ns: Sequence[int]) -> LatencyStats:
    """Statistics of per-prediction durations given in nanoseconds (stdev is the sample stdev)."""
    if not ns:
        raise ValueError("no latencies to summarise")
    ms = sorted(value / 1e6 for value in ns)
    return LatencyStats(
        predictions=len(ms),
        total_seconds=sum(ns) / 1e9,
        mean_ms=statistics.fmean(ms),
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p95_ms=percentile(ms, 95),
        p99_ms=percentile(ms, 99),
        iqr_ms=percentile(ms, 75) - percentile(ms, 25),
        stdev_ms=statistics.stdev(ms) if len(ms) > 1 else 0.0,
    )


def measure_interleaved(
    calls: Sequence[Callable[[], object]], *, predictions: int, warmup: int = WARMUP,
    progress: Callable[[int], None] | None = None,
) -> list[LatencyStats]:
    """Time ``predictions`` rounds of the ``calls`` one after another (A B A B ...), after ``warmup``
    untimed rounds; one :class:`LatencyStats` per callable, in order. ``progress`` is called with the
    number of rounds done after each round, outside the timed calls."""
    if predictions < 1:
        raise BenchmarkError(f"predictions must be at least 1, got {predictions}.")
    return [summarize_latencies(durations) for durations in _time_calls(calls, predictions, warmup, progress)]


def time_interleaved(
    calls: Sequence[Callable[[], object]], *, predictions: int, warmup: int = WARMUP,
    progress: Callable[[int], None] | None = None,
) -> list[list[int]]:
    """:func:`measure_interleaved` without the summary: per callable, the nanoseconds of each timed
    call, in round order (``result[0][i]`` and ``result[1][i]`` were timed one right after the other)."""
    if predictions < 1:
        raise BenchmarkError(f"predictions must be at least 1, got {predictions}.")
    return _time_calls(calls, predictions, warmup, progress)


def measure_latency(fn: Callable[[], object], *, predictions: int, warmup: int = WARMUP) -> LatencyStats:
    """Time ``predictions`` calls of ``fn`` one by one after ``warmup`` untimed calls."""
    (stats,) = measure_interleaved([fn], predictions=predictions, warmup=warmup)
    return stats


def measure_pair(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    *,
    predictions: int,
    warmup: int = WARMUP,
) -> tuple[LatencyStats, LatencyStats]:
    """Time both callables interleaved (A B A B ...), so runner noise hits both alike."""
    cand, base = measure_interleaved([candidate, baseline], predictions=predictions, warmup=warmup)
    return cand, base


def throughput(batch_size: int, batch_latency: LatencyStats) -> Throughput:
    """Samples per second at the median time of one batch of ``batch_size``."""
    return Throughput(
        batch_size=batch_size,
        samples_per_second=batch_size / (batch_latency.p50_ms / 1e3),
        batch_p50_ms=batch_latency.p50_ms,
    )


def _time_calls(fns: Sequence[Callable[[], object]], predictions: int, warmup: int,
                progress: Callable[[int], None] | None = None) -> list[list[int]]:
    for _ in range(warmup):
        for fn in fns:
            fn()
    durations: list[list[int]] = [[] for _ in fns]
    clock = perf_counter_ns
    with _gc_paused():
        for done in range(1, predictions + 1):
            for fn, out in zip(fns, durations, strict=True):
                start = clock()
                fn()
                out.append(clock() - start)
            if progress is not None:
                progress(done)
    return durations


@contextmanager
def _gc_paused() -> Iterator[None]:
    # a collection landing inside one timed call would show up as a latency outlier of ours, not the model's
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
