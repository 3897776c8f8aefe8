"""Turn measurements into pass/fail gates (pure: measurements and thresholds in, gates out)."""

from __future__ import annotations

from pydantic import BaseModel

from mlgate.model.benchmark import ModelMeasurement
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
    t = thresholds
    gates: list[Gate] = []
    if t.max_latency_ms is not None:
        gates.append(_at_most("latency_p95_ms", candidate.latency.p95_ms, t.max_latency_ms, "{:.3g} ms over"))
    if t.max_total_seconds is not None:
        gates.append(_at_most("total_seconds", candidate.latency.total_seconds, t.max_total_seconds, "{:.3g} s over"))
    if t.max_size_mb is not None:
        gates.append(_at_most("size_mb", candidate.size_mb, t.max_size_mb, "{:.3g} MB over"))
    if t.max_params is not None:
        gates.append(_at_most("params", candidate.params, t.max_params, "{:,} parameters over"))
    if t.min_accuracy is not None:
        gates.append(_min_accuracy(candidate.accuracy, t.min_accuracy))
    if t.max_latency_regression is not None:
        gates.append(_latency_regression(candidate, baseline, t.max_latency_regression))
    if t.max_accuracy_drop is not None:
        gates.append(_accuracy_drop(candidate, baseline, t.max_accuracy_drop))
    return gates


def _at_most(name: str, value: float, threshold: float, over: str) -> Gate:
    passed = value <= threshold
    return Gate(
        name=name,
        value=value,
        threshold=threshold,
        passed=passed,
        detail="" if passed else over.format(value - threshold),
    )


def _min_accuracy(accuracy: float | None, threshold: float) -> Gate:
    if accuracy is None:
        return Gate(name="accuracy", value=None, threshold=threshold, passed=False, detail=NEEDS_EVAL_DATA)
    passed = accuracy >= threshold
    detail = "" if passed else f"{_points(threshold - accuracy)} below"
    return Gate(name="accuracy", value=accuracy, threshold=threshold, passed=passed, detail=detail)


def _latency_regression(candidate: ModelMeasurement, baseline: ModelMeasurement | None, limit: float) -> Gate:
    name = "latency_regression"
    if baseline is None:
        return Gate(name=name, value=None, threshold=limit, passed=True, detail=NO_BASELINE)
    new, old = candidate.latency.p95_ms, baseline.latency.p95_ms
    if old <= 0:
        return Gate(
            name=name,
            value=None,
            threshold=limit,
            passed=True,
            detail="production p95 latency is 0 ms: nothing to compare",
        )
    change = new / old - 1
    passed = change <= limit
    direction = "slower" if change >= 0 else "faster"
    detail = f"{abs(change) * 100:.1f} % {direction} than production (p95 {new:.3g} ms vs {old:.3g} ms)"
    if not passed:
        detail += f", {(change - limit) * 100:.1f} % beyond the allowed {limit * 100:g} %"
    return Gate(name=name, value=change, threshold=limit, passed=passed, detail=detail)


def _accuracy_drop(candidate: ModelMeasurement, baseline: ModelMeasurement | None, limit: float) -> Gate:
    name = "accuracy_drop"
    if baseline is None:
        return Gate(name=name, value=None, threshold=limit, passed=True, detail=NO_BASELINE)
    if candidate.accuracy is None or baseline.accuracy is None:
        return Gate(name=name, value=None, threshold=limit, passed=False, detail=NEEDS_EVAL_DATA)
    drop = baseline.accuracy - candidate.accuracy
    passed = drop <= limit
    versus = f"({candidate.accuracy:.4g} vs production {baseline.accuracy:.4g})"
    if drop > 0:
        detail = f"{_points(drop)} lower than production {versus}"
        if not passed:
            detail += f", {_points(drop - limit)} beyond the allowed {_points(limit)}"
    else:
        detail = f"{_points(-drop)} higher than production {versus}"
    return Gate(name=name, value=drop, threshold=limit, passed=passed, detail=detail)


def _points(fraction: float) -> str:
    return f"{fraction * 100:.2f} percentage points"


def ratios(candidate: ModelMeasurement, baseline: ModelMeasurement) -> dict[str, float]:
    """candidate / production for each figure both have (a figure that is 0 in production is left out)."""
    pairs = {
        "latency_p50": (candidate.latency.p50_ms, baseline.latency.p50_ms),
        "latency_p95": (candidate.latency.p95_ms, baseline.latency.p95_ms),
        "latency_mean": (candidate.latency.mean_ms, baseline.latency.mean_ms),
        "total_seconds": (candidate.latency.total_seconds, baseline.latency.total_seconds),
        "size": (candidate.size_mb, baseline.size_mb),
        "params": (candidate.params, baseline.params),
        "accuracy": (candidate.accuracy, baseline.accuracy),
    }
    return {key: new / old for key, (new, old) in pairs.items() if new is not None and old}
