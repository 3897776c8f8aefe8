"""Is a difference real? Exact tests and bootstrap intervals, pure functions on plain arrays.

- :func:`mcnemar_p` — McNemar's exact two-sided test on the discordant pairs of two models scored on
  the same items (``b`` items only production gets right, ``c`` items only the candidate gets right).
- :func:`accuracy_difference` — a paired bootstrap interval for candidate minus production accuracy.
  Resampling items paired only moves the counts of the three kinds of item (candidate gains one,
  loses one, neither), so ``resamples`` multinomial draws of those counts are exactly the item-index
  bootstrap, in O(resamples) instead of O(resamples × items).
- :func:`accuracy_interval` — the same for one model's accuracy (binomial draws of the correct count).
- :func:`median_ratio` — a bootstrap interval for the ratio of median latencies from interleaved
  timing: whole rounds (one candidate call and the production call right after it) are resampled,
  so what slowed the machine during a round stays paired.
- :func:`percentile_interval` — a bootstrap interval for a latency percentile of one model.

Every interval is the percentile bootstrap: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
quantiles of the resampled statistic. Its ends are also the one-sided bounds at
``(1 + confidence) / 2``: the lower end of a 90 % interval is a 95 % lower confidence bound. Seeded:
the same inputs give the same interval. Index resampling runs in chunks of at most
``CHUNK_VALUES`` values, so memory stays bounded however many calls were timed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np  # start-up: numpy only when a test runs

RESAMPLES = 4_000
CHUNK_VALUES = 2_000_000
"""Most values one resampling step holds at once (16 MB of float64)."""


@dataclass(frozen=True)
class Estimate:
    """A statistic and its two-sided bootstrap interval at ``confidence``."""

    value: float
    low: float
    high: float
    confidence: float

    def scaled(self, factor: float, offset: float = 0.0) -> Estimate:
        """``offset + factor * x`` for the value and both ends (ends swapped when ``factor`` < 0)."""
        ends = sorted((offset + factor * self.low, offset + factor * self.high))
        return Estimate(offset + factor * self.value, ends[0], ends[1], self.confidence)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def mcnemar_p(b: int, c: int) -> float:
    """McNemar's exact two-sided p-value: ``2 P(X <= min(b, c))`` for ``X ~ Binomial(b + c, 1/2)``, at most 1.

    Summed in log space (``lgamma`` and log-sum-exp), so it stays exact to float precision for any
    number of discordant pairs. ``b = c = 0`` (the same predictions everywhere) gives 1.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must not be negative, got {b} and {c}")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    log_half_n = -n * math.log(2)
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n for i in range(k + 1)]
    top = max(log_terms)
    log_tail = top + math.log(math.fsum(math.exp(t - top) for t in log_terms))
    return min(1.0, 2 * math.exp(log_tail))


def accuracy_difference(b: int, c: int, items: int, *, confidence: float = 0.95, resamples: int = RESAMPLES,
                        seed: int = 0) -> Estimate:
    """Candidate minus production accuracy on ``items`` paired items, ``b`` right only in production
    and ``c`` right only in the candidate: ``(c - b) / items`` and its paired bootstrap interval."""
    import numpy as np  # start-up: numpy only when a test runs

    _check(confidence, items)
    if b + c > items:
        raise ValueError(f"{b} + {c} discordant items out of {items}")
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(items, [c / items, b / items, 1 - (b + c) / items], size=resamples)
    draws = (counts[:, 0] - counts[:, 1]) / items
    return _interval((c - b) / items, draws, confidence)


def accuracy_interval(correct: int, items: int, *, confidence: float = 0.95, resamples: int = RESAMPLES,
                      seed: int = 0) -> Estimate:
    """One model's accuracy, ``correct / items``, and its bootstrap interval (items resampled)."""
    import numpy as np  # start-up: numpy only when a test runs

    _check(confidence, items)
    rng = np.random.default_rng(seed)
    draws = rng.binomial(items, correct / items, size=resamples) / items
    return _interval(correct / items, draws, confidence)


def median_ratio(candidate_ns: Sequence[int] | np.ndarray, production_ns: Sequence[int] | np.ndarray, *,
                 confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> Estimate:
    """Median candidate latency over median production latency, from calls timed in interleaved
    rounds (``candidate_ns[i]`` and ``production_ns[i]`` in the same round), and its interval from
    resampling whole rounds."""
    import numpy as np  # start-up: numpy only when a test runs

    cand = np.asarray(candidate_ns, dtype=np.float64)
    prod = np.asarray(production_ns, dtype=np.float64)
    if cand.shape != prod.shape or cand.ndim != 1:
        raise ValueError(f"paired rounds need two equally long sequences, got {cand.shape} and {prod.shape}")
    _check(confidence, len(cand))
    if np.median(prod) <= 0:
        raise ValueError("the production median latency is 0: no ratio")
    rng = np.random.default_rng(seed)
    draws = np.concatenate([
        np.median(cand[rows], axis=1) / np.maximum(np.median(prod[rows], axis=1), np.finfo(np.float64).tiny)
        for rows in _resampled_rows(rng, len(cand), resamples)
    ])
    return _interval(float(np.median(cand) / np.median(prod)), draws, confidence)


def percentile_interval(values: Sequence[float] | np.ndarray, q: float, *, confidence: float = 0.95,
                        resamples: int = RESAMPLES, seed: int = 0) -> Estimate:
    """The ``q``-th percentile (0..100, linear interpolation as numpy's default) of ``values`` and its
    bootstrap interval. With few values a high percentile rests on the few largest: the interval
    says how little that is."""
    import numpy as np  # start-up: numpy only when a test runs

    data = np.asarray(values, dtype=np.float64)
    _check(confidence, len(data))
    rng = np.random.default_rng(seed)
    draws = np.concatenate([np.percentile(data[rows], q, axis=1)
                            for rows in _resampled_rows(rng, len(data), resamples)])
    return _interval(float(np.percentile(data, q)), draws, confidence)


def _resampled_rows(rng: np.random.Generator, n: int, resamples: int) -> Iterator[np.ndarray]:
    """``resamples`` rows of ``n`` indices drawn with replacement, one chunk of bounded size at a time."""
    per_chunk = max(1, CHUNK_VALUES // n)
    for start in range(0, resamples, per_chunk):
        yield rng.integers(0, n, size=(min(per_chunk, resamples - start), n))


def _interval(value: float, draws: np.ndarray, confidence: float) -> Estimate:
    import numpy as np  # start-up: numpy only when a test runs

    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Estimate(value=float(value), low=float(low), high=float(high), confidence=confidence)


def _check(confidence: float, items: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if items < 1:
        raise ValueError("nothing to resample: no items")
