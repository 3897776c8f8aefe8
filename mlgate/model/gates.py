"""Turn measurements into pass/fail gates (pure: measurements and thresholds in, gates out).

No gate decides here whether a bigger number is better: each names the metric it reads (a field
path of :class:`ModelMeasurement`) and uses the :class:`~mlgate.model.measure.values.Direction`
that metric declares: whether the value meets the limit, by how much it misses, which way is worse
than production. The gate names, values and detail texts are part of report.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from mlgate.model.measure.values import ModelMeasurement, direction_of, value_at
from mlgate.report import Gate

NO_BASELINE = "no production model to compare"
NEEDS_EVAL_DATA = "no accuracy measured: this gate needs evaluation data (set `eval-data`)"


class GateThresholds(BaseModel):
    """The user's limits; ``None`` switches a gate off."""

    max_latency_ms: float | None = None  # p95 of one prediction
    max_total_seconds: float | None = None  # all timed predictions together
    max_size_mb: float | None = None
    max_params: int | None = None
    min_accuracy: float | None = None
    max_latency_regression: float | None = None  # p95 vs production: 0.10 = 10 % slower allowed
    max_accuracy_drop: float | None = None  # absolute: 0.01 = one percentage point


def evaluate_gates(
    candidate: ModelMeasurement,
    thresholds: GateThresholds,
    baseline: ModelMeasurement | None = None,
) -> list[Gate]:
    """One gate per threshold that is set, in the order of :class:`GateThresholds`."""
    gates: list[Gate] = []
    for spec in GATES:
        limit = getattr(thresholds, spec.threshold)
        if limit is not None:
            gates.append(spec.evaluate(candidate, baseline, limit))
    return gates


def ratios(candidate: ModelMeasurement, baseline: ModelMeasurement) -> dict[str, float]:
    """candidate / production for each figure both have (a figure that is 0 in production is left out)."""
    result: dict[str, float] = {}
    for key, metric in RATIOS.items():
        new, old = value_at(candidate, metric), value_at(baseline, metric)
        if new is not None and old:
            result[key] = new / old
    return result


@dataclass(frozen=True)
class Limit:
    """A gate on one metric of the candidate against the user's absolute limit."""

    threshold: str
    """The field of :class:`GateThresholds` that sets it."""
    name: str
    """The gate's name in the report."""
    metric: str
    """Dotted field path in :class:`ModelMeasurement`; its declared direction decides pass or fail."""
    amount: Callable[[Any], str]
    """How far off the limit, in words: ``0.3`` -> ``"0.3 ms"``."""

    def evaluate(self, candidate: ModelMeasurement, baseline: ModelMeasurement | None, limit: Any) -> Gate:
        value = value_at(candidate, self.metric)
        if value is None:
            return Gate(name=self.name, value=None, threshold=limit, passed=False, detail=NEEDS_EVAL_DATA)
        direction = direction_of(self.metric)
        passed = direction.meets(value, limit)
        detail = "" if passed else f"{self.amount(direction.shortfall(value, limit))} {direction.miss}"
        return Gate(name=self.name, value=value, threshold=limit, passed=passed, detail=detail)


@dataclass(frozen=True)
class Change:
    """The candidate against production on one metric; ``worse`` is signed by the metric's direction."""

    new: float
    old: float
    worse: float
    limit: float
    passed: bool


@dataclass(frozen=True)
class Regression:
    """A gate on how much worse than production the candidate may be on one metric."""

    threshold: str
    name: str
    metric: str
    relative: bool
    """Worse by a fraction of production's value (latency), or by an absolute amount (accuracy)."""
    describe: Callable[[Change], str]
    nothing_to_compare: str = ""
    """Detail of a relative gate when production's value is 0 (the gate passes)."""

    def evaluate(self, candidate: ModelMeasurement, baseline: ModelMeasurement | None, limit: Any) -> Gate:
        if baseline is None:
            return Gate(name=self.name, value=None, threshold=limit, passed=True, detail=NO_BASELINE)
        new, old = value_at(candidate, self.metric), value_at(baseline, self.metric)
        if new is None or old is None:
            return Gate(name=self.name, value=None, threshold=limit, passed=False, detail=NEEDS_EVAL_DATA)
        if self.relative and old <= 0:
            return Gate(name=self.name, value=None, threshold=limit, passed=True, detail=self.nothing_to_compare)
        worse = direction_of(self.metric).worsening(new, old, relative=self.relative)
        passed = worse <= limit
        detail = self.describe(Change(new=new, old=old, worse=worse, limit=limit, passed=passed))
        return Gate(name=self.name, value=worse, threshold=limit, passed=passed, detail=detail)


def _points(fraction: float) -> str:
    return f"{fraction * 100:.2f} percentage points"


def _slower(c: Change) -> str:
    detail = (f"{abs(c.worse) * 100:.1f} % {'slower' if c.worse >= 0 else 'faster'} than production "
              f"(p95 {c.new:.3g} ms vs {c.old:.3g} ms)")
    if not c.passed:
        detail += f", {(c.worse - c.limit) * 100:.1f} % beyond the allowed {c.limit * 100:g} %"
    return detail


def _less_accurate(c: Change) -> str:
    versus = f"({c.new:.4g} vs production {c.old:.4g})"
    if c.worse <= 0:
        return f"{_points(-c.worse)} higher than production {versus}"
    detail = f"{_points(c.worse)} lower than production {versus}"
    if not c.passed:
        detail += f", {_points(c.worse - c.limit)} beyond the allowed {_points(c.limit)}"
    return detail


GATES: tuple[Limit | Regression, ...] = (
    Limit("max_latency_ms", "latency_p95_ms", "latency.p95_ms", "{:.3g} ms".format),
    Limit("max_total_seconds", "total_seconds", "latency.total_seconds", "{:.3g} s".format),
    Limit("max_size_mb", "size_mb", "size_mb", "{:.3g} MB".format),
    Limit("max_params", "params", "params", "{:,} parameters".format),
    Limit("min_accuracy", "accuracy", "accuracy", _points),
    Regression("max_latency_regression", "latency_regression", "latency.p95_ms", relative=True, describe=_slower,
               nothing_to_compare="production p95 latency is 0 ms: nothing to compare"),
    Regression("max_accuracy_drop", "accuracy_drop", "accuracy", relative=False, describe=_less_accurate),
)
"""Every gate, in the order of :class:`GateThresholds` (the order of the report's gate table)."""

RATIOS = {
    "latency_p50": "latency.p50_ms",
    "latency_p95": "latency.p95_ms",
    "latency_mean": "latency.mean_ms",
    "total_seconds": "latency.total_seconds",
    "size": "size_mb",
    "params": "params",
    "accuracy": "accuracy",
}
"""Key in the report's ``baseline.ratios`` -> metric (dotted field path)."""
