"""Drift measures against independent numpy computations and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlgate.data.drift import (
    chi_square,
    chi_square_p_value,
    compute_drift,
    label_drift,
    pixel_drift,
    size_drift,
)
from mlgate.data.stats import DatasetStats, LeakageStats, SplitStats


def _reference_chi_square(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson's statistic written out cell by cell."""
    total = first.sum() + second.sum()
    statistic = 0.0
    for row in (first, second):
        for j in range(len(first)):
            expected = row.sum() * (first[j] + second[j]) / total
            statistic += (row[j] - expected) ** 2 / expected
    return statistic


def test_label_drift__tvd_and_chi_square_match_a_plain_computation() -> None:
    rng = np.random.default_rng(0)
    base = rng.multinomial(6000, [0.1] * 10)
    head = rng.multinomial(5000, [0.14] + [0.86 / 9] * 9)
    drift = label_drift({str(i): int(c) for i, c in enumerate(base)}, {str(i): int(c) for i, c in enumerate(head)})
    assert drift is not None
    shares = np.abs(base / base.sum() - head / head.sum())
    assert drift.tvd == pytest.approx(shares.sum() / 2)
    assert drift.chi_square == pytest.approx(_reference_chi_square(base.astype(float), head.astype(float)))
    assert drift.dof == 9
    assert drift.p_value is not None and drift.p_value < 1e-4  # 4 pp more of class 0 in 5,000 items


def test_label_drift__same_shares_give_zero_and_a_class_only_on_one_side_counts() -> None:
    same = label_drift({"0": 50, "1": 50}, {"0": 500, "1": 500})
    assert same is not None and same.tvd == 0 and same.chi_square == 0 and same.p_value == pytest.approx(1.0)
    new_class = label_drift({"0": 100}, {"0": 80, "1": 20})
    assert new_class is not None and new_class.tvd == pytest.approx(0.2)


def test_chi_square__refused_when_expected_counts_are_too_small() -> None:
    assert chi_square([3, 2, 1], [4, 1, 2]) is None  # every expected count below 5
    assert chi_square([10, 0], [0, 0]) is None  # a side with no items
    assert chi_square([50, 50, 0], [40, 60, 0]) == (pytest.approx(2.0202, abs=1e-4), 1)  # empty class dropped


@pytest.mark.parametrize("statistic", [0.5, 2.0, 7.3, 20.0])
def test_chi_square_p_value__matches_closed_forms(statistic: float) -> None:
    # dof 2: exp(-x/2); dof 4: exp(-x/2) (1 + x/2); dof 1: erfc(sqrt(x/2))
    assert chi_square_p_value(statistic, 2) == pytest.approx(math.exp(-statistic / 2), rel=1e-9)
    assert chi_square_p_value(statistic, 4) == pytest.approx(math.exp(-statistic / 2) * (1 + statistic / 2), rel=1e-9)
    assert chi_square_p_value(statistic, 1) == pytest.approx(math.erfc(math.sqrt(statistic / 2)), rel=1e-9)


def test_chi_square_p_value__textbook_critical_values() -> None:
    assert chi_square_p_value(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-6)
    assert chi_square_p_value(16.918977604620448, 9) == pytest.approx(0.05, rel=1e-6)


def _cdf_integral(edges_a: np.ndarray, counts_a: np.ndarray, edges_b: np.ndarray, counts_b: np.ndarray) -> tuple[
        float, float]:
    """KS and Wasserstein-1 by brute force: both CDFs on a fine grid (linear within bins), numerically integrated."""
    grid = np.linspace(min(edges_a[0], edges_b[0]), max(edges_a[-1], edges_b[-1]), 400_001)
    fa = np.interp(grid, edges_a, np.concatenate([[0], np.cumsum(counts_a)]) / counts_a.sum())
    fb = np.interp(grid, edges_b, np.concatenate([[0], np.cumsum(counts_b)]) / counts_b.sum())
    gap = np.abs(fa - fb)
    return float(gap.max()), float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(grid)))


def test_pixel_drift__shift_by_whole_bins_gives_the_shift_exactly() -> None:
    rng = np.random.default_rng(1)
    edges = np.arange(65) * 4.0  # uint8's grid: 64 bins of 4
    counts = rng.integers(0, 1000, 64)
    counts[-3:] = 0
    shifted = np.roll(counts, 3)  # every pixel 12 values brighter
    drift = pixel_drift(counts.tolist(), edges.tolist(), shifted.tolist(), edges.tolist(), items=(100, 100))
    assert drift is not None
    assert drift.wasserstein == pytest.approx(12.0)
    assert drift.wasserstein_relative == pytest.approx(12.0 / 256)
    cdf_a, cdf_b = np.cumsum(counts) / counts.sum(), np.cumsum(shifted) / shifted.sum()
    assert drift.ks == pytest.approx(np.abs(cdf_a - cdf_b).max())


def test_pixel_drift__different_grids_match_brute_force_integration() -> None:
    rng = np.random.default_rng(2)
    values_a = rng.normal(0.4, 0.1, 50_000).clip(0, 1)
    values_b = rng.normal(0.5, 0.15, 50_000).clip(0, 1.999)
    edges_a = np.arange(65) / 64  # [0, 1], width 1/64
    edges_b = np.arange(65) / 32  # [0, 2], width 1/32: another grid
    counts_a, _ = np.histogram(values_a, edges_a)
    counts_b, _ = np.histogram(values_b, edges_b)
    drift = pixel_drift(counts_a.tolist(), edges_a.tolist(), counts_b.tolist(), edges_b.tolist(), items=(10, 10))
    ks, wasserstein = _cdf_integral(edges_a, counts_a, edges_b, counts_b)
    assert drift is not None
    assert drift.ks == pytest.approx(ks, abs=1e-6)
    assert drift.wasserstein == pytest.approx(wasserstein, rel=1e-4)
    # the binned figures are close to the samples' own
    assert drift.wasserstein == pytest.approx(abs(np.sort(values_a) - np.sort(values_b)).mean(), abs=1 / 64)
    assert drift.ks_noise == pytest.approx(1.63 * math.sqrt(20 / 100))


def test_pixel_drift__the_same_data_on_a_coarser_grid_barely_moves() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 256, 100_000)
    fine, coarse = np.arange(65) * 4.0, np.arange(33) * 8.0
    drift = pixel_drift(np.histogram(values, fine)[0].tolist(), fine.tolist(),
                        np.histogram(values, coarse)[0].tolist(), coarse.tolist())
    assert drift is not None
    assert drift.ks < 0.01 and drift.wasserstein < 1.0


def test_size_drift__medians_and_ks_of_weighted_shapes() -> None:
    base = {"3x32x32": 90, "3x32x64": 10}
    head = {"3x32x32": 40, "1x32x64": 40, "3x64x64": 20}
    drift = size_drift(base, head)
    assert drift is not None
    assert drift.median_side_reference == 32 and drift.median_side == pytest.approx(math.sqrt(32 * 64))
    assert drift.median_aspect_reference == 1.0 and drift.median_aspect == 1.0
    # aspect: base P(aspect <= 1) = 0.9, head 0.6 -> 0.3; side: base P(side <= 32) = 0.9, head 0.4 -> 0.5
    assert drift.ks_aspect == pytest.approx(0.3) and drift.ks_side == pytest.approx(0.5)
    assert size_drift({"28x28": 5}, {"28x28": 9}) is None


def _split(labels: dict[str, int], histogram: list[int], edges: list[float], mean: float, std: float) -> SplitStats:
    count = sum(labels.values())
    return SplitStats(
        count=count, shape=[28, 28], shapes={"28x28": count}, dtype="uint8", channels=1, min=0, max=255,
        channel_mean=[mean], channel_std=[std], label_counts=labels,
        label_shares={k: v / count for k, v in labels.items()}, imbalance_ratio=1.0, missing_classes=[],
        nonfinite=0, unreadable=[], duplicates=0, histogram=histogram, histogram_edges=edges,
    )


def _stats(**splits: SplitStats) -> DatasetStats:
    return DatasetStats(layout="npz", class_names=None, splits=splits,
                        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0))


def test_compute_drift__base_to_head_per_split_and_train_to_test_within_head() -> None:
    edges = (np.arange(65) * 4.0).tolist()
    flat = [100] * 64
    brighter = [0] * 8 + [100] * 56
    base = _stats(train=_split({"0": 5000, "1": 5000}, flat, edges, 128, 74),
                  test=_split({"0": 1000, "1": 1000}, flat, edges, 128, 74))
    head = _stats(train=_split({"0": 5000, "1": 5000}, flat, edges, 128, 74),
                  test=_split({"0": 1500, "1": 500}, brighter, edges, 144, 64))
    drift = compute_drift(head, base, "main")
    assert drift.base == "main" and set(drift.splits) == {"train", "test"}
    assert drift.splits["train"].moved == []
    test = drift.splits["test"]
    assert test.labels is not None and test.labels.tvd == pytest.approx(0.25)
    assert test.pixels is not None and test.pixels.ks == pytest.approx(0.125)
    assert test.channels is not None and test.channels.mean_shift == [pytest.approx(16 / 74)]
    assert test.moved == ["labels", "pixels", "channels"]
    assert test.pixels.ks_noise == pytest.approx(1.63 * math.sqrt(4000 / 2000**2))  # KS 0.125 is beyond it
    assert drift.worst("labels") == ("test", pytest.approx(0.25))
    assert drift.worst("pixels") == ("test", pytest.approx(0.125))
    within = drift.within["test"]
    assert within.reference == "train" and within.labels is not None and within.labels.tvd == pytest.approx(0.25)
    alone = compute_drift(head)
    assert alone.base is None and alone.splits == {} and alone.worst("labels") is None and "test" in alone.within
