from __future__ import annotations

import math

import pytest
import torch

from mlgate.data.baseline import MAX_EPOCHS, BaselineError, is_converged, train_baseline

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def make_batches(
    n: int,
    *,
    seed: int,
    classes: int = 10,
    shape: tuple[int, ...] = (1, 8, 8),
    separation: float = 0.3,
    random_labels: bool = False,
    batch_size: int = 64,
) -> Batches:
    """Gaussian blobs: each class has its own mean image (the same for every split), unit noise."""
    generator = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, *shape, generator=torch.Generator().manual_seed(1234)) * separation
    labels = torch.randint(0, classes, (n,), generator=generator)
    images = means[labels] + torch.randn(n, *shape, generator=generator)
    if random_labels:  # the images no longer say anything about these labels
        labels = torch.randint(0, classes, (n,), generator=generator)
    return [(images[i : i + batch_size], labels[i : i + batch_size]) for i in range(0, n, batch_size)]


def test_train_baseline__converges_on_class_dependent_means():
    result = train_baseline(make_batches(2000, seed=0), make_batches(1000, seed=1), num_classes=10)

    assert result.converged
    assert result.test_accuracy > result.chance_accuracy + 0.4
    assert result.initial_loss == pytest.approx(math.log(10), abs=1e-5)  # zero weights: uniform guess
    assert result.final_loss < 0.7 * result.initial_loss
    assert result.epochs == MAX_EPOCHS
    assert not result.stopped_early
    assert (result.train_samples, result.test_samples) == (2000, 1000)
    assert result.steps == MAX_EPOCHS * math.ceil(2000 / 128)


def test_train_baseline__does_not_converge_on_random_labels():
    train = make_batches(2000, seed=0, random_labels=True)
    test = make_batches(1000, seed=1, random_labels=True)

    result = train_baseline(train, test, num_classes=10)

    assert not result.converged
    assert abs(result.test_accuracy - 0.1) < 0.05


def test_train_baseline__chance_is_share_of_majority_test_class():
    test = [(torch.zeros(10, 4), torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, 2, 2]))]

    result = train_baseline(make_batches(200, seed=0, classes=3, shape=(4,)), test, num_classes=3)

    assert result.chance_accuracy == pytest.approx(0.7)
    assert result.test_samples == 10


def test_train_baseline__stops_when_time_budget_is_spent():
    train = make_batches(2000, seed=0, batch_size=500)

    result = train_baseline(train, make_batches(100, seed=1), num_classes=10, time_budget_s=0.0)

    assert result.stopped_early
    assert result.train_samples == 500  # reading stopped after the first batch
    assert result.steps == 1  # of the 4 steps an epoch of 500 samples takes
    assert result.epochs == 0
    assert not result.converged


def test_train_baseline__takes_only_the_first_max_train_samples():
    result = train_baseline(
        make_batches(2000, seed=0), make_batches(1000, seed=1), num_classes=10, max_train_samples=500
    )

    assert result.train_samples == 500
    assert result.test_samples == 500


def test_train_baseline__same_seed_same_result_and_seed_changes_shuffling():
    def run(seed: int) -> list[float]:
        return train_baseline(make_batches(600, seed=0), make_batches(200, seed=1), num_classes=10, seed=seed).losses

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_train_baseline__restores_the_callers_thread_count():
    before = torch.get_num_threads()

    train_baseline(make_batches(200, seed=0), make_batches(100, seed=1), num_classes=10)

    assert torch.get_num_threads() == before


def test_train_baseline__downsamples_large_channel_last_uint8_images():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (64,), generator=generator)
    images = torch.rand(64, 96, 64, 3, generator=generator) * 100 + labels[:, None, None, None] * 100
    batches = [(images.to(torch.uint8), labels)]

    result = train_baseline(batches, batches, num_classes=2)

    assert result.model == "logistic regression on pixels (2016 features)"  # 3 x 32 x 21
    assert result.converged


def test_train_baseline__logs_at_most_200_loss_points():
    result = train_baseline(make_batches(5000, seed=0, batch_size=500), make_batches(100, seed=1), num_classes=10)

    assert result.steps == MAX_EPOCHS * math.ceil(5000 / 128)
    assert result.log_every == math.ceil(result.steps / 200)
    assert len(result.losses) == math.ceil(result.steps / result.log_every) <= 200


def test_train_baseline__rejects_labels_outside_num_classes():
    batches = make_batches(100, seed=0, classes=10)

    with pytest.raises(BaselineError, match=r"label 9, outside 0\.\.4"):
        train_baseline(batches, batches, num_classes=5)


def test_train_baseline__rejects_empty_split():
    with pytest.raises(BaselineError, match="test split gave no samples"):
        train_baseline(make_batches(100, seed=0), [], num_classes=10)


@pytest.mark.parametrize(
    ("initial", "final", "accuracy", "chance", "n_test", "expected"),
    [
        (2.30, 1.00, 0.60, 0.10, 1000, True),
        (2.30, 2.20, 0.60, 0.10, 1000, False),  # loss fell by less than 10 %
        (2.30, 1.00, 0.18, 0.10, 1000, False),  # 0.08 < 0.1 * (1 - 0.1): not clearly above chance
        (0.69, 0.30, 0.60, 0.50, 100, False),  # 0.10 < 3 * sqrt(0.25 / 100) = 0.15: could be noise
        (0.69, 0.30, 0.66, 0.50, 100, True),
        (0.69, 0.10, 0.97, 0.95, 100_000, True),  # imbalanced: 0.02 >= 0.005 and >= 0.002
        (float("nan"), 1.0, 0.9, 0.1, 1000, False),
    ],
)
def test_is_converged__rule(initial, final, accuracy, chance, n_test, expected):
    assert is_converged(initial, final, accuracy, chance, n_test) is expected
