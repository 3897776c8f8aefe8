"""McNemar's exact test and the bootstrap intervals, against brute force and simulated ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlgate.model import significance
from mlgate.model.significance import (
    accuracy_difference,
    accuracy_interval,
    mcnemar_p,
    median_ratio,
    percentile_interval,
)


def brute_mcnemar(b: int, c: int) -> float:
    """Exact in integers: 2 * sum of C(n, i) for i <= min(b, c), over 2**n."""
    n, k = b + c, min(b, c)
    term, total = 1, 1  # C(n, 0)
    for i in range(k):
        term = term * (n - i) // (i + 1)
        total += term
    return min(1.0, 2 * total / 2**n)


@pytest.mark.parametrize("b", range(0, 26, 5))
@pytest.mark.parametrize("c", [0, 1, 3, 12, 25])
def test_mcnemar_p__equals_the_exact_binomial_sum_for_small_counts(b: int, c: int) -> None:
    assert mcnemar_p(b, c) == pytest.approx(brute_mcnemar(b, c), rel=1e-12, abs=1e-300)


def test_mcnemar_p__symmetric_and_one_when_nothing_flipped() -> None:
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(7, 19) == mcnemar_p(19, 7)
    assert mcnemar_p(10, 10) == 1.0


def test_mcnemar_p__large_counts_stay_finite_and_match_the_exact_sum() -> None:
    # 10,000 discordant pairs: 2**n overflows a float, Python's integers do not
    b, c = 4_900, 5_100
    exact = brute_mcnemar(b, c)
    assert mcnemar_p(b, c) == pytest.approx(exact, rel=1e-9)
    assert 0.04 < exact < 0.05  # (|b - c| - 1)^2 / (b + c) = 3.96: about p = 0.047 by the normal approximation
    assert mcnemar_p(30, 300) < 1e-40


def test_mcnemar_p__rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="negative"):
        mcnemar_p(-1, 3)


def paired_correct(n: int, p_prod: float, p_flip_down: float, p_flip_up: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per item: production right with ``p_prod``; the candidate loses a right item with
    ``p_flip_down`` and gains a wrong one with ``p_flip_up``."""
    prod = rng.random(n) < p_prod
    u = rng.random(n)
    cand = np.where(prod, u >= p_flip_down, u < p_flip_up)
    return cand, prod


def test_accuracy_difference__is_the_item_index_bootstrap_of_the_paired_difference() -> None:
    rng = np.random.default_rng(1)
    cand, prod = paired_correct(3_000, 0.9, 0.04, 0.3, rng)
    b, c = int((prod & ~cand).sum()), int((cand & ~prod).sum())
    estimate = accuracy_difference(b, c, len(cand), confidence=0.9, resamples=20_000)

    # brute force: resample item indices, recompute both accuracies
    d = cand.astype(float) - prod.astype(float)
    draws = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(4_000)])
    assert estimate.value == pytest.approx(cand.mean() - prod.mean(), abs=1e-12)
    assert estimate.low == pytest.approx(np.quantile(draws, 0.05), abs=0.002)
    assert estimate.high == pytest.approx(np.quantile(draws, 0.95), abs=0.002)


def test_accuracy_difference__covers_the_true_difference_about_as_often_as_it_says() -> None:
    rng = np.random.default_rng(2)
    n, p_prod, down, up = 2_000, 0.85, 0.03, 0.2
    truth = (1 - p_prod) * up - p_prod * down  # expected candidate minus production accuracy: +0.0045
    covered = 0
    for seed in range(300):
        cand, prod = paired_correct(n, p_prod, down, up, rng)
        ci = accuracy_difference(int((prod & ~cand).sum()), int((cand & ~prod).sum()), n, confidence=0.9,
                                 resamples=2_000, seed=seed)
        covered += ci.low <= truth <= ci.high
    assert 0.84 <= covered / 300 <= 0.96  # 90 % nominal; 300 trials: sd 1.7 pp


def test_accuracy_difference__a_clear_drop_excludes_zero_and_no_change_includes_it() -> None:
    worse = accuracy_difference(120, 10, 10_000)
    assert worse.high < 0 and worse.value == pytest.approx(-0.011)
    same = accuracy_difference(15, 14, 10_000)
    assert same.low < 0 < same.high
    identical = accuracy_difference(0, 0, 10_000)
    assert (identical.low, identical.value, identical.high) == (0, 0, 0)


def test_accuracy_interval__covers_the_true_accuracy() -> None:
    rng = np.random.default_rng(3)
    covered = sum(
        (ci := accuracy_interval(int(rng.binomial(1_000, 0.93)), 1_000, confidence=0.9, seed=s)).low <= 0.93 <= ci.high
        for s in range(300)
    )
    assert 0.84 <= covered / 300 <= 0.96


def interleaved(rounds: int, ratio: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Nanoseconds per call: a machine load shared by both calls of a round, times each model's own noise."""
    load = rng.lognormal(0, 0.5, rounds)
    production = 100_000 * load * rng.lognormal(0, 0.1, rounds)
    candidate = ratio * 100_000 * load * rng.lognormal(0, 0.1, rounds)
    return candidate.round(), production.round()


def test_median_ratio__finds_a_known_slowdown_through_shared_machine_noise() -> None:
    cand, prod = interleaved(100, 1.10, np.random.default_rng(4))
    estimate = median_ratio(cand, prod, confidence=0.9)
    assert estimate.value == pytest.approx(np.median(cand) / np.median(prod))
    assert 1.0 < estimate.low < 1.10 < estimate.high < 1.25


def test_median_ratio__covers_the_true_ratio_and_includes_one_without_a_change() -> None:
    rng = np.random.default_rng(5)
    covered = 0
    for seed in range(100):
        cand, prod = interleaved(200, 1.05, rng)
        ci = median_ratio(cand, prod, confidence=0.9, resamples=500, seed=seed)
        covered += ci.low <= 1.05 <= ci.high
    assert covered >= 80  # the bootstrap of a median is a little conservative or liberal; 90 % nominal
    same = median_ratio(*interleaved(100, 1.0, np.random.default_rng(6)), confidence=0.9)
    assert same.low < 1 < same.high


def test_median_ratio__needs_paired_rounds() -> None:
    with pytest.raises(ValueError, match="equally long"):
        median_ratio([1, 2, 3], [1, 2])


def test_percentile_interval__value_is_numpy_s_percentile_and_the_interval_covers_the_truth() -> None:
    rng = np.random.default_rng(7)
    truth = -math.log(1 - 0.5)  # median of Exp(1)
    covered = 0
    for seed in range(100):
        values = rng.exponential(1.0, 200)
        ci = percentile_interval(values, 50, confidence=0.9, resamples=500, seed=seed)
        assert ci.value == pytest.approx(np.percentile(values, 50))
        covered += ci.low <= truth <= ci.high
    assert 80 <= covered <= 98


def test_resampling_in_chunks__bounds_memory_without_changing_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    cand, prod = interleaved(1_000, 1.2, np.random.default_rng(8))
    whole = median_ratio(cand, prod, resamples=500)
    monkeypatch.setattr(significance, "CHUNK_VALUES", 7_000)  # 7 resamples of 1,000 rounds per chunk
    assert median_ratio(cand, prod, resamples=500) == whole


def test_intervals__reject_a_confidence_outside_0_1() -> None:
    with pytest.raises(ValueError, match="confidence"):
        accuracy_interval(5, 10, confidence=1.0)
