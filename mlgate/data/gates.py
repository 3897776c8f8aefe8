"""Data gates: the optional pass/fail checks of data-stats (pure: statistics in, verdicts out)."""

from __future__ import annotations

from mlgate.data.baseline import BaselineResult
from mlgate.data.stats import DatasetStats
from mlgate.report import Gate
from mlgate.settings import DataStatsSettings


def evaluate_data_gates(
    stats: DatasetStats, settings: DataStatsSettings, baseline: BaselineResult | None = None
) -> list[Gate]:
    """One Gate per gate the user switched on; none when none is configured."""
    gates: list[Gate] = []
    splits = stats.splits
    if settings.min_samples is not None and splits:
        name, smallest = min(splits.items(), key=lambda item: item[1].count)
        passed = smallest.count >= settings.min_samples
        gates.append(Gate(
            name="min-samples", value=smallest.count, threshold=settings.min_samples, passed=passed,
            detail="" if passed else f"split `{name}` has {settings.min_samples - smallest.count:,} too few",
        ))
    if settings.max_imbalance is not None:
        ratios = {n: s.imbalance_ratio for n, s in splits.items() if s.imbalance_ratio is not None}
        if ratios:
            name, worst = max(ratios.items(), key=lambda item: item[1])
            passed = worst <= settings.max_imbalance
            gates.append(Gate(
                name="max-imbalance", value=round(worst, 4), threshold=settings.max_imbalance, passed=passed,
                detail="" if passed else f"split `{name}` is {worst / settings.max_imbalance:.2f}× over",
            ))
    for enabled, name, value, what in (
        (settings.fail_on_leakage, "fail-on-leakage", stats.leakage.train_test_exact_duplicates,
         "test items also in train"),
        (settings.fail_on_duplicates, "fail-on-duplicates", sum(s.duplicates for s in splits.values()),
         "exact duplicates within splits"),
        (settings.fail_on_nonfinite, "fail-on-nonfinite", sum(s.nonfinite for s in splits.values()),
         "items with NaN/Inf"),
    ):
        if enabled:
            gates.append(Gate(name=name, value=value, threshold=0, passed=value == 0,
                              detail="" if value == 0 else f"{value:,} {what}"))
    if baseline is not None:
        gates.append(Gate(
            name="baseline-train", value=round(baseline.test_accuracy, 4),
            threshold=round(baseline.chance_accuracy, 4), passed=baseline.converged,
            detail="" if baseline.converged else "a small model did not learn this data (accuracy vs chance)",
        ))
    return gates
