"""What changed between production and the candidate, and how sure we can be: report.json's
``comparison`` (with a production model) and ``uncertainty`` (always), computed from the per-call
and per-item results a measurement carries (:class:`~mlgate.model.measure.values.ItemResults`).

Pure: measurements in, pydantic values out; the statistics are :mod:`mlgate.model.significance`.
The raw arrays never reach report.json, only these summaries do.
"""

from __future__ import annotations

from pydantic import BaseModel

from mlgate.model.measure.values import ModelMeasurement
from mlgate.model.significance import (
    Estimate,
    accuracy_difference,
    accuracy_interval,
    mcnemar_p,
    median_ratio,
    percentile_interval,
)
from mlgate.report_blocks import Interval

DEFAULT_CONFIDENCE = 0.95


class FlippedItem(BaseModel):
    """An eval item one model gets right and the other wrong (``item``: position in the eval data, 0-based)."""

    item: int
    label: int
    production: int
    candidate: int


class Agreement(BaseModel):
    """Candidate and production predictions on the same eval items."""

    items: int
    both_right: int
    both_wrong: int
    production_only_right: int
    """Items production gets right and the candidate wrong (McNemar's b)."""
    candidate_only_right: int
    """Items the candidate gets right and production wrong (McNemar's c)."""
    mcnemar_p: float
    """Exact two-sided McNemar p-value: the chance of so uneven a split of the flipped items if both
    models were equally accurate."""
    accuracy_difference: Interval
    """Candidate minus production accuracy (a fraction), paired bootstrap interval."""
    confusion_difference: list[list[int]]
    """Candidate minus production confusion counts, ``[true][predicted]``."""
    flipped: list[FlippedItem]
    """The flipped items shown in the figure: the first few each way, in eval order."""


class Comparison(BaseModel):
    """The candidate against production, measured in the same run."""

    confidence: float
    """Of every interval here (0.95 = 95 %)."""
    rounds: int
    """Interleaved timing rounds (one candidate call, then one production call)."""
    latency_median_ratio: Interval
    """Median candidate over median production latency at batch 1, rounds resampled in pairs."""
    agreement: Agreement | None
    """None without eval data."""


class Uncertainty(BaseModel):
    """Bootstrap intervals of the candidate's own figures."""

    confidence: float
    accuracy: Interval | None
    latency_p50_ms: Interval
    latency_p95_ms: Interval


def confidence_for(significance: float | None) -> float:
    """The two-sided confidence of the report's intervals: ``1 - 2α`` with ``gate-significance: α``
    (so an interval's lower end is the one-sided ``1 - α`` bound the gate tests), else 95 %."""
    return DEFAULT_CONFIDENCE if significance is None else 1 - 2 * significance


def compare(candidate: ModelMeasurement, production: ModelMeasurement, confidence: float) -> Comparison | None:
    """None when either measurement lacks its per-call results (not taken by ``measure_model``)."""
    cand, prod = candidate.items, production.items
    if cand is None or prod is None or len(cand.latency_ns) != len(prod.latency_ns) or not cand.latency_ns:
        return None
    ratio = median_ratio(cand.latency_ns, prod.latency_ns, confidence=confidence)
    return Comparison(confidence=confidence, rounds=len(cand.latency_ns), latency_median_ratio=_interval(ratio),
                      agreement=_agreement(candidate, production, confidence))


def uncertainty(measurement: ModelMeasurement, confidence: float) -> Uncertainty | None:
    items = measurement.items
    if items is None or not items.latency_ns:
        return None
    latency_ms = [ns / 1e6 for ns in items.latency_ns]
    accuracy = None
    if len(items.labels):
        correct = sum(int(p == t) for p, t in zip(items.predicted, items.labels, strict=True))
        accuracy = _interval(accuracy_interval(correct, len(items.labels), confidence=confidence))
    return Uncertainty(confidence=confidence, accuracy=accuracy,
                       latency_p50_ms=_interval(percentile_interval(latency_ms, 50, confidence=confidence)),
                       latency_p95_ms=_interval(percentile_interval(latency_ms, 95, confidence=confidence)))


def _agreement(candidate: ModelMeasurement, production: ModelMeasurement, confidence: float) -> Agreement | None:
    import numpy as np  # start-up: numpy only when there is something to compare

    cand, prod = candidate.items, production.items
    assert cand is not None and prod is not None
    if not len(cand.labels) or len(cand.labels) != len(prod.labels):
        return None
    labels = np.asarray(cand.labels)
    cand_right = np.asarray(cand.predicted) == labels
    prod_right = np.asarray(prod.predicted) == labels
    b = int((prod_right & ~cand_right).sum())
    c = int((cand_right & ~prod_right).sum())
    return Agreement(
        items=len(labels), both_right=int((cand_right & prod_right).sum()),
        both_wrong=int((~cand_right & ~prod_right).sum()), production_only_right=b, candidate_only_right=c,
        mcnemar_p=mcnemar_p(b, c),
        accuracy_difference=_interval(accuracy_difference(b, c, len(labels), confidence=confidence)),
        confusion_difference=_difference(candidate.confusion or [], production.confusion or []),
        flipped=[FlippedItem(item=f.item, label=f.label, production=f.production, candidate=f.candidate)
                 for f in cand.flips],
    )


def _difference(candidate: list[list[int]], production: list[list[int]]) -> list[list[int]]:
    """Candidate minus production, as wide as the wider of the two (a missing cell counts 0)."""
    size = max(len(candidate), len(production))

    def cell(matrix: list[list[int]], t: int, p: int) -> int:
        return matrix[t][p] if t < len(matrix) and p < len(matrix[t]) else 0

    return [[cell(candidate, t, p) - cell(production, t, p) for p in range(size)] for t in range(size)]


def _interval(estimate: Estimate) -> Interval:
    return Interval(value=estimate.value, low=estimate.low, high=estimate.high, confidence=estimate.confidence)
