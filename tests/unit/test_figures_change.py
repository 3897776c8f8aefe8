"""The "what changed" figures: flipped items and the confusion-matrix difference, checked on the
drawn artist tree, on the PNG, and across the figure worker's process boundary."""

from __future__ import annotations

import dataclasses
import io
import pickle

import numpy as np
import pytest
from PIL import Image

from mlgate.figures.images import CannotDrawFigure, display_images
from mlgate.figures.model import draw_confusion_difference, draw_flipped_examples
from mlgate.figures.style import drawn
from mlgate.figures.worker import ConfusionDifference, FlippedExamples, _load_jobs, render_jobs
from tests.fixtures.mnist import mnist_digits

NAMES = {"candidate_name": "wandb-registry-model/mnist:v4", "production_name": "wandb-registry-model/mnist:v3"}


def digits(n: int) -> tuple[list[np.ndarray], list[int]]:
    """Real MNIST digits as the figures get them: (H, W, 3) floats in 0..1, and their labels."""
    images, labels = mnist_digits()
    return display_images(list(images[:n])), [int(label) for label in labels[:n]]


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def test_flipped_examples__captions_each_item_and_counts_both_ways() -> None:
    images, labels = digits(11)
    # 8 items production gets right (the candidate says label + 1), 3 the reverse
    flips = [(i, labels[i], labels[i], (labels[i] + 1) % 10) for i in range(8)]
    flips += [(i, labels[i], (labels[i] + 2) % 10, labels[i]) for i in range(8, 11)]

    fig = drawn(draw_flipped_examples(images, flips, lost=31, gained=3, split="test", **NAMES))

    shown = texts(fig)
    assert "Production right → candidate wrong: 31 items, first 8 shown" in shown
    assert "Candidate right → production wrong: 3 items" in shown
    for item, label, prod, cand in flips:
        assert f"true {label} · prod {prod} · cand {cand}" in shown
        assert f"item {item:,}" in shown
    assert len(fig.axes[0].images) == 11
    assert any("mnist:v4" in t and "mnist:v3" in t for t in shown)


def test_flipped_examples__png_fits_800_px_and_class_names_replace_numbers() -> None:
    images, labels = digits(2)
    names = [f"digit-{d}" for d in range(10)]
    flips = [(0, labels[0], labels[0], (labels[0] + 1) % 10), (1, labels[1], (labels[1] + 1) % 10, labels[1])]
    fig = drawn(draw_flipped_examples(images, flips, names, lost=1, gained=1, **NAMES))
    assert f"true digit-{labels[0]} · prod digit-{labels[0]} · cand digit-{(labels[0] + 1) % 10}" in texts(fig)

    png = FlippedExamples(images, flips, lost=1, gained=1, class_names=names, **NAMES).render()
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] == 800 and image.size[1] < 600


def test_flipped_examples__refuses_mismatched_images_and_no_flips() -> None:
    images, _ = digits(2)
    with pytest.raises(CannotDrawFigure, match="2 images were given for 1 flipped items"):
        draw_flipped_examples(images, [(0, 1, 1, 2)], lost=1, gained=0, **NAMES)
    with pytest.raises(CannotDrawFigure, match="same predictions"):
        draw_flipped_examples([], [], lost=0, gained=0, **NAMES)


def test_confusion_difference__cells_hold_the_signed_difference_coloured_by_better_or_worse() -> None:
    candidate = np.array([[50, 2, 0], [3, 45, 2], [0, 1, 60]])
    production = np.array([[48, 4, 0], [3, 40, 7], [0, 0, 61]])
    diff = (candidate - production).tolist()

    fig = drawn(draw_confusion_difference(diff, ["cat", "dog", "bird"], split="test", eval_samples=163, **NAMES))

    ax = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    expected = {(i, j): f"{v:+d}".replace("-", "−") for i, row in enumerate(diff) for j, v in enumerate(row) if v}
    assert cells == expected
    colours = ax.images[0].to_rgba(ax.images[0].get_array())
    more_right, fewer_confused = colours[1, 1], colours[1, 2]  # dog: +5 on the diagonal, -5 as bird: both better
    assert more_right[2] > more_right[0] and fewer_confused[2] > fewer_confused[0]  # blue
    worse = colours[2, 1]  # bird confused as dog once more: worse, red
    assert worse[0] > worse[2]
    assert "right: +6, confused: −6" in ax.get_title(loc="left")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "bird"]


def test_confusion_difference__thousands_are_compact_and_no_change_is_neutral() -> None:
    diff = [[1_039, -1_039], [0, 0]]
    fig = drawn(draw_confusion_difference(diff, **NAMES))
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["+1.0k", "−1.0k"]
    neutral = fig.axes[0].images[0].to_rgba(fig.axes[0].images[0].get_array())[1, 1]
    assert min(neutral[:3]) > 0.9  # near white


def test_change_jobs__cross_the_worker_boundary_unchanged() -> None:
    images, labels = digits(1)
    jobs = {
        "flipped_items": FlippedExamples(images, [(0, labels[0], labels[0], 3)], lost=1, gained=0, split="test",
                                         **NAMES),
        "confusion_matrix_change": ConfusionDifference([[1, -1], [0, 0]], ["a", "b"], split="test", eval_samples=2,
                                                       **NAMES),
    }
    received = _load_jobs(io.BytesIO(pickle.dumps(jobs)))
    for name, job in jobs.items():
        np.testing.assert_equal(dataclasses.asdict(received[name]), dataclasses.asdict(job))
    assert all(png.startswith(b"\x89PNG") for png in render_jobs(received).values())
