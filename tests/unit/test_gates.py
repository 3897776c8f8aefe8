"""Gates: pass/fail, by how much, and relative gates with and without a production model."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from mlgate.model.gates import GATES, GateThresholds, Limit, Regression, evaluate_gates, ratios
from mlgate.model.measure.values import Direction, LatencyStats, ModelMeasurement, direction_of
from mlgate.numbers import Unit


def make_measurement(
    *,
    p50: float = 1.0,
    p95: float = 2.0,
    total: float = 0.15,
    accuracy: float | None = 0.97,
    **overrides: Any,
) -> ModelMeasurement:
    latency = LatencyStats(
        predictions=100,
        total_seconds=total,
        mean_ms=1.5,
        p50_ms=p50,
        p90_ms=1.8,
        p95_ms=p95,
        p99_ms=3.0,
        iqr_ms=0.2,
        stdev_ms=0.3,
    )
    fields: dict[str, Any] = {
        "latency": latency,
        "throughput": [],
        "size_mb": 4.0,
        "params": 1_000_000,
        "flops_per_prediction": None,
        "peak_memory_mb": None,
        "accuracy": accuracy,
        "per_class_accuracy": None,
        "confusion": None,
        "eval_samples": 0 if accuracy is None else 1000,
        "robustness": None,
    }
    fields.update(overrides)
    return ModelMeasurement(**fields)


def test_evaluate_gates__no_thresholds_means_no_gates() -> None:
    assert evaluate_gates(make_measurement(), GateThresholds()) == []


def test_evaluate_gates__absolute_limits_pass_at_the_threshold() -> None:
    thresholds = GateThresholds(
        max_latency_ms=2.0, max_total_seconds=0.15, max_size_mb=4.0, max_params=1_000_000, min_accuracy=0.97
    )
    gates = evaluate_gates(make_measurement(), thresholds)

    assert [g.name for g in gates] == ["max-latency-ms", "max-total-seconds", "max-size-mb", "max-params",
                                       "min-accuracy"]
    assert all(g.passed and g.detail == "" for g in gates)
    assert [g.value for g in gates] == [2.0, 0.15, 4.0, 1_000_000, 0.97]


@pytest.mark.parametrize(
    ("thresholds", "name", "detail"),
    [
        (GateThresholds(max_latency_ms=1.7), "max-latency-ms", "0.300 ms over the 1.7 ms limit"),
        (GateThresholds(max_total_seconds=0.1), "max-total-seconds", "0.0500 s over the 0.1 s limit"),
        (GateThresholds(max_size_mb=2.5), "max-size-mb", "1.50 MB over the 2.5 MB limit"),
        (GateThresholds(max_params=999_000), "max-params", "1,000 parameters over the 999,000 parameters limit"),
        (GateThresholds(min_accuracy=0.99), "min-accuracy", "2.0 pp below the 99% minimum"),
    ],
)
def test_evaluate_gates__failed_gate_says_by_how_much(thresholds: GateThresholds, name: str, detail: str) -> None:
    (gate,) = evaluate_gates(make_measurement(), thresholds)
    assert gate.name == name
    assert not gate.passed
    assert gate.detail == detail


def test_evaluate_gates__min_accuracy_without_eval_data_fails_and_says_why() -> None:
    (gate,) = evaluate_gates(make_measurement(accuracy=None), GateThresholds(min_accuracy=0.9))
    assert not gate.passed
    assert gate.value is None
    assert "eval-data" in gate.detail


@pytest.mark.parametrize(
    "thresholds", [GateThresholds(max_latency_regression=0.1), GateThresholds(max_accuracy_drop=0.01)]
)
def test_evaluate_gates__relative_gate_without_production_passes(thresholds: GateThresholds) -> None:
    (gate,) = evaluate_gates(make_measurement(p95=100.0, accuracy=0.1), thresholds, baseline=None)
    assert gate.passed
    assert gate.detail == "no production model to compare"


def test_evaluate_gates__latency_regression_beyond_limit_fails_with_percentages() -> None:
    (gate,) = evaluate_gates(
        make_measurement(p95=2.25),
        GateThresholds(max_latency_regression=0.10),
        baseline=make_measurement(p95=2.0),
    )
    assert not gate.passed
    assert gate.value == pytest.approx(0.125)
    assert gate.detail == "12.5% slower than production (p95 2.25 ms vs 2 ms), 2.5 pp over the 10% limit"


def test_evaluate_gates__latency_within_allowance_or_faster_passes() -> None:
    limit = GateThresholds(max_latency_regression=0.10)
    (slower,) = evaluate_gates(make_measurement(p95=2.1), limit, baseline=make_measurement(p95=2.0))
    (faster,) = evaluate_gates(make_measurement(p95=1.5), limit, baseline=make_measurement(p95=2.0))
    assert slower.passed and slower.detail == "5.0% slower than production (p95 2.10 ms vs 2 ms)"
    assert faster.passed and faster.detail == "25.0% faster than production (p95 1.50 ms vs 2 ms)"


def test_evaluate_gates__accuracy_drop_is_absolute() -> None:
    limit = GateThresholds(max_accuracy_drop=0.01)
    (failed,) = evaluate_gates(make_measurement(accuracy=0.95), limit, baseline=make_measurement(accuracy=0.97))
    (passed,) = evaluate_gates(make_measurement(accuracy=0.965), limit, baseline=make_measurement(accuracy=0.97))

    assert not failed.passed
    assert failed.value == pytest.approx(0.02)
    assert failed.detail == "2.0 pp lower than production (95.0% vs 97.0%), 1.0 pp over the 1 pp limit"
    assert passed.passed


def test_evaluate_gates__accuracy_drop_needs_eval_data_for_both() -> None:
    (gate,) = evaluate_gates(
        make_measurement(accuracy=None),
        GateThresholds(max_accuracy_drop=0.01),
        baseline=make_measurement(accuracy=None),
    )
    assert not gate.passed
    assert "eval-data" in gate.detail


def test_ratios__candidate_over_production() -> None:
    candidate = make_measurement(p50=1.5, p95=3.0, total=0.3, accuracy=0.45, size_mb=2.0, params=500_000)
    production = make_measurement(p50=1.0, p95=2.0, total=0.15, accuracy=0.9)

    assert ratios(candidate, production) == pytest.approx(
        {
            "latency_p50": 1.5,
            "latency_p95": 1.5,
            "latency_mean": 1.0,
            "total_seconds": 2.0,
            "size": 0.5,
            "params": 0.5,
            "accuracy": 0.5,
        }
    )


def test_ratios__skip_figures_missing_or_zero_in_production() -> None:
    result = ratios(make_measurement(), make_measurement(accuracy=None, params=0))
    assert "accuracy" not in result and "params" not in result


def test_gates__one_per_threshold_in_the_order_of_the_thresholds() -> None:
    assert [spec.threshold for spec in GATES] == list(GateThresholds.model_fields)


def test_gates__max_limits_sit_on_lower_is_better_metrics_and_min_limits_on_higher() -> None:
    expected = {"max": Direction.LOWER, "min": Direction.HIGHER}
    for spec in GATES:
        if isinstance(spec, Limit):
            assert direction_of(spec.metric) is expected[spec.threshold.split("_")[0]], spec.threshold


def test_limit__takes_pass_fail_and_shortfall_from_the_declared_direction() -> None:
    lower = Limit("max_flops", "flops_per_prediction", Unit.plain("FLOPs"))
    higher = Limit("min_accuracy", "accuracy", Unit.plain())
    measurement = make_measurement(accuracy=0.9, flops_per_prediction=1_500)

    assert lower.evaluate(measurement, None, 1_000).detail == "500 FLOPs over the 1,000 FLOPs limit"
    assert lower.evaluate(measurement, None, 2_000).passed
    assert higher.evaluate(measurement, None, 0.95).detail == "0.0500 below the 0.95 minimum"
    assert higher.evaluate(measurement, None, 0.85).passed


def test_regression__worse_means_the_declared_direction_against_production() -> None:
    def describe(change: object) -> str:
        return ""

    accuracy_ratio = Regression("max_x", "accuracy", relative=True, unit=Unit.plain(), describe=describe)
    size_growth = Regression("max_y", "size_mb", relative=False, unit=Unit.plain(), describe=describe)
    candidate = make_measurement(accuracy=0.45, size_mb=3.0)
    production = make_measurement(accuracy=0.9, size_mb=4.0)

    lost = accuracy_ratio.evaluate(candidate, production, 0.2)
    assert (lost.value, lost.passed) == (0.5, False)  # half the accuracy is worse, by a half
    shrunk = size_growth.evaluate(candidate, production, 0.0)
    assert (shrunk.value, shrunk.passed) == (-1.0, True)  # smaller is better: negative worsening passes


def test_gates__named_by_the_input_that_sets_them_each_with_a_unit() -> None:
    from mlgate.data.gates import UNITS as DATA_UNITS
    from mlgate.model.gates import UNITS
    from mlgate.settings import DataStatsSettings, ModelGateSettings

    model_inputs = {name.replace("_", "-") for name in ModelGateSettings.model_fields}
    data_inputs = {name.replace("_", "-") for name in DataStatsSettings.model_fields}
    assert [spec.name for spec in GATES] == [name.replace("_", "-") for name in GateThresholds.model_fields]
    assert set(UNITS) == {spec.name for spec in GATES} and set(UNITS) <= model_inputs
    assert set(DATA_UNITS) <= data_inputs


def test_data_gates__imbalance_and_baseline_keep_their_unrounded_values() -> None:
    """The gate row and the splits table format the same float, so they cannot disagree by rounding."""
    from mlgate.data.gates import evaluate_data_gates
    from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats
    from mlgate.settings import DataStatsSettings, load_settings
    from tests.helpers import data_gate_thresholds

    split = SplitStats(count=10, shape=[2], shapes={"2": 10}, dtype="float32", channels=None, min=0.0, max=1.0,
                       channel_mean=[], channel_std=[], label_counts={"0": 7, "1": 3},
                       label_shares={"0": 0.7, "1": 0.3}, imbalance_ratio=7 / 3, missing_classes=[], nonfinite=0,
                       unreadable=[], duplicates=0, histogram=[], histogram_edges=[])
    data = DatasetStats(layout="npz", class_names=None, splits={"train": split},
                        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0))
    settings = load_settings({"mode": "data-stats", "data": "d", "max-imbalance": "2"})
    assert isinstance(settings, DataStatsSettings)
    (gate,) = evaluate_data_gates(data, data_gate_thresholds(settings))
    assert gate.value == 7 / 3 and not gate.passed
    assert gate.detail == "0.333 over the 2× limit in split `train`"


# ---------------------------------------------------------------------------------------------
# gate-significance: relative gates decided by the interval of the paired comparison


def paired(lost: int, gained: int, items: int, *, ratio: float = 1.0, seed: int = 0) -> tuple[ModelMeasurement,
                                                                                                   ModelMeasurement]:
    """Candidate and production measured on the same ``items``: production alone right on ``lost``
    items, the candidate alone on ``gained``, both right on the rest; batch-1 calls in 100 rounds
    whose candidate call takes ``ratio`` times production's, under noise both calls of a round share."""
    import numpy as np

    from mlgate.model.measure.values import ItemResults

    labels = [0] * items
    cand = [1] * lost + [0] * gained + [0] * (items - lost - gained)
    prod = [0] * lost + [1] * gained + [0] * (items - lost - gained)
    rng = np.random.default_rng(seed)
    load = rng.lognormal(0, 0.3, 100)
    prod_ns = (100_000 * load * rng.lognormal(0, 0.05, 100)).astype(int).tolist()
    cand_ns = (ratio * 100_000 * load * rng.lognormal(0, 0.05, 100)).astype(int).tolist()
    accuracy = (items - lost) / items, (items - gained) / items
    candidate = make_measurement(accuracy=accuracy[0], p95=2.0 * ratio).with_items(
        ItemResults(latency_ns=cand_ns, labels=labels, predicted=cand))
    production = make_measurement(accuracy=accuracy[1], p95=2.0).with_items(
        ItemResults(latency_ns=prod_ns, labels=labels, predicted=prod))
    return candidate, production


def gates_tested(candidate: ModelMeasurement, production: ModelMeasurement, alpha: float = 0.05,
                 **limits: float) -> dict[str, Any]:
    from mlgate.model.comparison import compare, confidence_for

    comparison = compare(candidate, production, confidence_for(alpha))
    gates = evaluate_gates(candidate, GateThresholds(**limits), production, tested=comparison)
    return {gate.name: gate for gate in gates}


def normal_drop_bounds(lost: int, gained: int, items: int, z: float = 1.6449) -> tuple[float, float]:
    """Independent reference: the normal-approximation 90 % interval of the paired accuracy drop."""
    p_lost, p_gained = lost / items, gained / items
    drop = p_lost - p_gained
    sd = math.sqrt((p_lost + p_gained - drop**2) / items)
    return drop - z * sd, drop + z * sd


def test_significance__accuracy_drop_beyond_the_limit_with_confidence_fails() -> None:
    gate = gates_tested(*paired(200, 20, 10_000), max_accuracy_drop=0.01)["max-accuracy-drop"]
    assert not gate.passed
    assert gate.value == pytest.approx(0.018)  # the measured drop stays the gate's value
    low, high = normal_drop_bounds(200, 20, 10_000)
    assert gate.interval is not None and gate.interval.confidence == pytest.approx(0.9)
    assert gate.interval.low == pytest.approx(low, abs=0.0008) and gate.interval.high == pytest.approx(high, abs=0.0008)
    assert "200 items lost and 20 gained of 10,000" in gate.detail
    assert "(McNemar p < 0.0001), drop 1.8 pp, 90% CI 1.6 pp to 2.0 pp" in gate.detail
    assert gate.detail.endswith("exceeds the 1 pp limit with 95% confidence")


def test_significance__a_drop_over_the_limit_that_may_be_noise_passes_and_says_so() -> None:
    candidate, production = paired(14, 2, 1_000)  # 1.2 pp lower, on 16 flipped items of 1,000
    plain = evaluate_gates(candidate, GateThresholds(max_accuracy_drop=0.01), production)[0]
    gate = gates_tested(candidate, production, max_accuracy_drop=0.01)["max-accuracy-drop"]
    assert not plain.passed  # without gate-significance the same numbers fail
    assert gate.passed and gate.interval is not None and gate.interval.low < 0.01 < gate.interval.value
    assert gate.detail.endswith("over the 1 pp limit, but not with 95% confidence")


def test_significance__an_undetectable_change_says_no_detectable_difference() -> None:
    gates = gates_tested(*paired(5, 4, 1_000), max_accuracy_drop=0.0, max_latency_regression=0.0)
    for gate in gates.values():
        assert gate.passed and gate.interval is not None and gate.interval.low <= 0 <= gate.interval.high
        assert "no detectable difference" in gate.detail


def test_significance__a_detectable_drop_within_the_limit_passes() -> None:
    gate = gates_tested(*paired(60, 10, 10_000), max_accuracy_drop=0.01)["max-accuracy-drop"]
    assert gate.passed and gate.interval is not None and gate.interval.low > 0
    assert gate.detail.endswith("within the 1 pp limit")


def test_significance__latency_is_tested_on_the_ratio_of_medians_and_reports_p95() -> None:
    candidate, production = paired(0, 0, 100, ratio=1.3)
    gate = gates_tested(candidate, production, max_latency_regression=0.1)["max-latency-regression"]
    assert not gate.passed
    assert gate.value == pytest.approx(0.3)  # p95 change, as without gate-significance
    prod_ns, cand_ns = production.items.latency_ns, candidate.items.latency_ns  # type: ignore[union-attr]
    median_change = statistics.median(cand_ns) / statistics.median(prod_ns) - 1
    assert gate.interval is not None and gate.interval.value == pytest.approx(median_change)
    assert 0.1 < gate.interval.low < median_change < gate.interval.high
    assert "tested on the median of 100 paired calls" in gate.detail
    assert gate.detail.endswith("exceeds the 10% limit with 95% confidence")


def test_significance__a_stricter_alpha_widens_the_interval() -> None:
    candidate, production = paired(30, 10, 2_000)
    loose = gates_tested(candidate, production, alpha=0.2, max_accuracy_drop=0.0)["max-accuracy-drop"].interval
    strict = gates_tested(candidate, production, alpha=0.01, max_accuracy_drop=0.0)["max-accuracy-drop"].interval
    assert loose is not None and strict is not None
    assert (loose.confidence, strict.confidence) == (pytest.approx(0.6), pytest.approx(0.98))
    assert strict.low < loose.low < loose.high < strict.high
