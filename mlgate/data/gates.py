"""Data gates: the optional pass/fail checks of data-stats (pure: statistics in, verdicts out)."""

from __future__ import annotations

from pydantic import BaseModel

from mlgate import numbers
from mlgate.data.baseline import BaselineResult
from mlgate.data.drift import DriftReport
from mlgate.data.stats import DatasetStats
from mlgate.numbers import Unit
from mlgate.report_blocks import Gate

UNITS: dict[str, Unit] = {
    "min-samples": Unit.plain("items"),
    "max-imbalance": numbers.RATIO,
    "fail-on-leakage": Unit.plain("items"),
    "fail-on-duplicates": Unit.plain("items"),
    "fail-on-nonfinite": Unit.plain("items"),
    "fail-on-near-leakage": Unit.plain("items"),
    "baseline-train": Unit(value=numbers.percent, limit=numbers.percent, difference=numbers.points),
    "max-label-drift": numbers.FRACTION,
    "max-pixel-drift": Unit.plain(),
}
"""Gate name (the input that sets it) -> how the report writes its value and threshold."""

INPUTS = list(UNITS)
"""The inputs that switch a data gate on, in the order of the gate table."""


class DataGateThresholds(BaseModel):
    """The user's limits (the inputs of the same name); ``None`` or ``False`` switches a gate off.
    ``baseline-train`` is gated by the baseline's result, passed beside these."""

    min_samples: int | None = None
    max_imbalance: float | None = None
    fail_on_leakage: bool = False
    fail_on_duplicates: bool = False
    fail_on_nonfinite: bool = False
    fail_on_near_leakage: bool = False
    max_label_drift: float | None = None
    max_pixel_drift: float | None = None


def evaluate_data_gates(
    stats: DatasetStats, thresholds: DataGateThresholds, baseline: BaselineResult | None = None
) -> list[Gate]:
    """One Gate per gate the user switched on; none when none is configured."""
    gates: list[Gate] = []
    splits = stats.splits
    if thresholds.min_samples is not None and splits:
        name, smallest = min(splits.items(), key=lambda item: item[1].count)
        passed = smallest.count >= thresholds.min_samples
        gates.append(Gate(
            name="min-samples", value=smallest.count, threshold=thresholds.min_samples, passed=passed,
            detail="" if passed else (f"{numbers.count(thresholds.min_samples - smallest.count)} items below the "
                                      f"{numbers.count(thresholds.min_samples)} minimum in split `{name}`"),
        ))
    if thresholds.max_imbalance is not None:
        ratios = {n: s.imbalance_ratio for n, s in splits.items() if s.imbalance_ratio is not None}
        if ratios:
            name, worst = max(ratios.items(), key=lambda item: item[1])
            passed = worst <= thresholds.max_imbalance
            gates.append(Gate(
                name="max-imbalance", value=worst, threshold=thresholds.max_imbalance, passed=passed,
                detail="" if passed else (f"{numbers.number(worst - thresholds.max_imbalance)} over the "
                                          f"{numbers.RATIO.limit(thresholds.max_imbalance)} limit in split `{name}`"),
            ))
    for enabled, name, value, what in (
        (thresholds.fail_on_leakage, "fail-on-leakage", stats.leakage.train_test_exact_duplicates,
         "test items also in train"),
        (thresholds.fail_on_duplicates, "fail-on-duplicates", sum(s.duplicates for s in splits.values()),
         "exact duplicates within splits"),
        (thresholds.fail_on_nonfinite, "fail-on-nonfinite", sum(s.nonfinite for s in splits.values()),
         "items with NaN/Inf"),
        (thresholds.fail_on_near_leakage, "fail-on-near-leakage", stats.near_duplicates.near_leaked,
         "test items near-duplicates of train items"),
    ):
        if enabled:
            gates.append(Gate(name=name, value=value, threshold=0, passed=value == 0,
                              detail="" if value == 0 else f"{numbers.count(value)} {what}"))
    if baseline is not None:
        gates.append(Gate(
            name="baseline-train", value=baseline.test_accuracy,
            threshold=baseline.chance_accuracy, passed=baseline.converged,
            detail="" if baseline.converged else (
                f"a small model did not learn this data: test accuracy {numbers.percent(baseline.test_accuracy)} "
                f"against {numbers.percent(baseline.chance_accuracy)} by always guessing the most common class"),
        ))
    return gates


def evaluate_drift_gates(drift: DriftReport | None, thresholds: DataGateThresholds, *, unchanged: bool = False
                         ) -> list[Gate]:
    """``max-label-drift`` (the worst split's label TVD against the base) and ``max-pixel-drift`` (its
    pixel KS statistic), when set. Without a base (or a split on both sides) a gate cannot be evaluated:
    it passes, and its detail says why; ``unchanged`` data is the base's, so nothing moved."""
    gates: list[Gate] = []
    for name, limit, measure, what in (
        ("max-label-drift", thresholds.max_label_drift, "labels", "label shares"),
        ("max-pixel-drift", thresholds.max_pixel_drift, "pixels", "pixel intensities"),
    ):
        if limit is None:
            continue
        if unchanged:
            gates.append(Gate(name=name, value=0.0, threshold=limit, passed=True))
            continue
        worst = drift.worst(measure) if drift is not None else None
        if worst is None:
            why = "no base to compare with" if drift is None or drift.base is None else "no split on both sides"
            gates.append(Gate(name=name, value=None, threshold=limit, passed=True,
                              detail=f"not evaluated: {why}"))
            continue
        split, value = worst
        assert drift is not None
        unit = UNITS[name]
        passed = value <= limit
        labels = drift.splits[split].labels
        test = f" (χ² p = {numbers.number(labels.p_value)})" if measure == "labels" and labels and \
            labels.p_value is not None else ""
        gates.append(Gate(
            name=name, value=value, threshold=limit, passed=passed,
            detail="" if passed else (f"{what} of `{split}` moved by {unit.show(value)}{test} against "
                                      f"`{drift.base}`, over the {unit.show(limit, limit=True)} limit"),
        ))
    return gates
