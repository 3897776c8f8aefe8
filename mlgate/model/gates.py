"""Turn measurements into pass/fail gates (pure: measurements and thresholds in, gates out).

No gate decides here whether a bigger number is better: each names the metric it reads (a field
path of :class:`ModelMeasurement`) and uses the :class:`~mlgate.model.measure.values.Direction`
that metric declares: whether the value meets the limit, by how much it misses, which way is worse
than production. A gate is named by the input that sets it (``max-latency-ms``); its name, value
and detail text (written by :mod:`mlgate.numbers`) are part of report.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mlgate import numbers
from mlgate.model.measure.values import ModelMeasurement, direction_of, value_at
from mlgate.numbers import Unit
from mlgate.report_blocks import Gate, Interval

if TYPE_CHECKING:
    from mlgate.model.comparison import Comparison

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
    *,
    tested: Comparison | None = None,
) -> list[Gate]:
    """One gate per threshold that is set, in the order of :class:`GateThresholds`.

    ``tested`` (with ``gate-significance``): the comparison with production whose intervals decide
    the relative gates. A regression then fails only when the lower end of its interval, a one-sided
    bound at ``(1 + tested.confidence) / 2``, exceeds the limit; see :meth:`Regression.evaluate_tested`.
    """
    gates: list[Gate] = []
    for spec in GATES:
        limit = getattr(thresholds, spec.threshold)
        if limit is None:
            continue
        if isinstance(spec, Regression) and tested is not None and baseline is not None:
            gates.append(spec.evaluate_tested(candidate, baseline, limit, tested))
        else:
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


def _name(threshold: str) -> str:
    """A gate is named by the input that sets it: ``max_latency_ms`` -> ``max-latency-ms``."""
    return threshold.replace("_", "-")


@dataclass(frozen=True)
class Limit:
    """A gate on one metric of the candidate against the user's absolute limit."""

    threshold: str
    """The field of :class:`GateThresholds` that sets it; its input (kebab-case) names the gate."""
    metric: str
    """Dotted field path in :class:`ModelMeasurement`; its declared direction decides pass or fail."""
    unit: Unit
    """How the value, the limit and the distance between them are written."""

    @property
    def name(self) -> str:
        return _name(self.threshold)

    def evaluate(self, candidate: ModelMeasurement, baseline: ModelMeasurement | None, limit: Any) -> Gate:
        value = value_at(candidate, self.metric)
        if value is None:
            return Gate(name=self.name, value=None, threshold=limit, passed=False, detail=NEEDS_EVAL_DATA)
        direction = direction_of(self.metric)
        passed = direction.meets(value, limit)
        detail = "" if passed else (
            f"{self.unit.difference(direction.shortfall(value, limit))} {direction.miss} the "
            f"{self.unit.limit(limit)} {'minimum' if direction.higher_is_better else 'limit'}"
        )
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
    metric: str
    relative: bool
    """Worse by a fraction of production's value (latency), or by an absolute amount (accuracy)."""
    unit: Unit
    """How the worsening and the allowance are written."""
    describe: Callable[[Change], str]
    nothing_to_compare: str = ""
    """Detail of a relative gate when production's value is 0 (the gate passes)."""
    tested_on: Callable[[Comparison], Tested | None] | None = None
    """With ``gate-significance``: the interval of the worsening the gate tests (None: not measured)."""

    @property
    def name(self) -> str:
        return _name(self.threshold)

    def evaluate_tested(self, candidate: ModelMeasurement, baseline: ModelMeasurement, limit: Any,
                        comparison: Comparison) -> Gate:
        """Fail only when the worsening exceeds ``limit`` with confidence: the interval's lower end
        (a one-sided bound at ``(1 + confidence) / 2``) is over the limit. The detail says which case
        applies: a significant excess, an excess that may be noise, no detectable difference, or
        a detectable change within the limit. Without the interval, as :meth:`evaluate`."""
        plain = self.evaluate(candidate, baseline, limit)
        tested = self.tested_on(comparison) if self.tested_on is not None else None
        if tested is None or plain.value is None:
            return plain
        new, old = value_at(candidate, self.metric), value_at(baseline, self.metric)
        measured = self.describe(Change(new=new, old=old, worse=plain.value, limit=limit, passed=plain.passed))
        worse = tested.interval
        one_sided = numbers.typed_percent((1 + worse.confidence) / 2)
        shown = f"{measured}; {tested.what}, {numbers.typed_percent(worse.confidence)} CI " \
                f"{self.unit.value(worse.low)} to {self.unit.value(worse.high)}"
        if worse.low > limit:
            passed = False
            verdict = f"exceeds the {self.unit.limit(limit)} limit with {one_sided} confidence"
        elif worse.low <= 0 <= worse.high:
            passed = True
            verdict = f"no detectable difference (the {self.unit.limit(limit)} limit is not exceeded " \
                      f"with {one_sided} confidence)"
        elif worse.value > limit:
            passed = True
            verdict = f"over the {self.unit.limit(limit)} limit, but not with {one_sided} confidence"
        else:
            passed = True
            verdict = f"within the {self.unit.limit(limit)} limit"
        return plain.model_copy(update={"passed": passed, "detail": f"{shown}: {verdict}", "interval": worse})

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
        if not passed:
            detail += f", {self.unit.difference(worse - limit)} over the {self.unit.limit(limit)} limit"
        return Gate(name=self.name, value=worse, threshold=limit, passed=passed, detail=detail)


@dataclass(frozen=True)
class Tested:
    """The interval a gate tests (worsening: positive is worse) and what it is, in words."""

    interval: Interval
    what: str


def _latency_tested(comparison: Comparison) -> Tested:
    ratio = comparison.latency_median_ratio
    worse = Interval(value=ratio.value - 1, low=ratio.low - 1, high=ratio.high - 1, confidence=ratio.confidence)
    return Tested(worse, f"tested on the median of {numbers.count(comparison.rounds)} paired calls: "
                         f"{numbers.percent(abs(worse.value))} {'slower' if worse.value >= 0 else 'faster'}")


def _accuracy_tested(comparison: Comparison) -> Tested | None:
    agreement = comparison.agreement
    if agreement is None:
        return None
    gain = agreement.accuracy_difference
    # + 0.0: a drop of -0.0 would be written "-0.0 pp"
    drop = Interval(value=0.0 - gain.value, low=0.0 - gain.high, high=0.0 - gain.low, confidence=gain.confidence)
    lost = agreement.production_only_right
    return Tested(drop, f"{numbers.count(lost)} item{'' if lost == 1 else 's'} lost and "
                        f"{numbers.count(agreement.candidate_only_right)} gained of {numbers.count(agreement.items)} "
                        f"(McNemar p {_p(agreement.mcnemar_p)}), "
                        + (f"drop {numbers.points(drop.value)}" if drop.value > 0
                           else f"gain {numbers.points(0.0 - drop.value)}"))


def _p(p: float) -> str:
    text = numbers.p_value(p)
    return text if text.startswith("<") else f"= {text}"


def _slower(c: Change) -> str:
    return (f"{numbers.percent(abs(c.worse))} {'slower' if c.worse >= 0 else 'faster'} than production "
            f"(p95 {numbers.ms(c.new)} vs {numbers.ms(c.old)})")


def _less_accurate(c: Change) -> str:
    versus = f"({numbers.percent(c.new)} vs {numbers.percent(c.old)})"
    return f"{numbers.points(abs(c.worse))} {'lower' if c.worse > 0 else 'higher'} than production {versus}"


GATES: tuple[Limit | Regression, ...] = (
    Limit("max_latency_ms", "latency.p95_ms", numbers.MILLISECONDS),
    Limit("max_total_seconds", "latency.total_seconds", numbers.SECONDS),
    Limit("max_size_mb", "size_mb", numbers.MEGABYTES),
    Limit("max_params", "params", Unit.plain("parameters")),
    Limit("min_accuracy", "accuracy", numbers.FRACTION),
    Regression("max_latency_regression", "latency.p95_ms", relative=True, unit=numbers.RELATIVE, describe=_slower,
               nothing_to_compare="production p95 latency is 0 ms: nothing to compare", tested_on=_latency_tested),
    Regression("max_accuracy_drop", "accuracy", relative=False, unit=numbers.POINTS, describe=_less_accurate,
               tested_on=_accuracy_tested),
)
"""Every gate, in the order of :class:`GateThresholds` (the order of the report's gate table)."""

UNITS = {spec.name: spec.unit for spec in GATES}
"""Gate name -> how the report writes its value and limit."""

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
