"""Likely label errors: the confident-learning rule against hand-computed cases, the whole pass on real
digits with labels flipped at random (ground truth), the time budget, and what the report says."""

from __future__ import annotations

import dataclasses
import io
import math
import pickle
import time
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from mlgate.data.label_errors import (
    ConfusedPair,
    LabelErrorItem,
    LabelErrors,
    _sample,
    confident_joint,
    confident_labels,
    find_label_errors,
    flag_label_errors,
    pair_confusion,
    per_class_thresholds,
    ranked,
    separable_pairs,
)
from mlgate.data.report import build_report, render_markdown
from mlgate.data.stats import DatasetStats, LeakageStats
from mlgate.figures.images import CannotDrawFigure, display_images
from mlgate.figures.items import draw_label_error_grid
from mlgate.figures.worker import LabelErrorGrid, _load_jobs
from tests.fixtures.mnist import mnist_digits
from tests.fixtures.photo_crops import ONE_TEXTURE_TWO_NAMES, TUNING, photo_crops

# six items, three classes; given labels 0 0 0 1 1 2
PROBS = torch.tensor([
    [0.8, 0.1, 0.1],  # labelled 0, looks like 0
    [0.6, 0.3, 0.1],  # labelled 0, looks like 0
    [0.1, 0.8, 0.1],  # labelled 0, looks like 1: a label error
    [0.2, 0.7, 0.1],  # labelled 1
    [0.3, 0.5, 0.2],  # labelled 1, under every threshold (t1 = 0.6, t0 = 0.5, t2 = 0.7)
    [0.2, 0.1, 0.7],  # labelled 2
])
LABELS = torch.tensor([0, 0, 0, 1, 1, 2])


def test_thresholds__mean_probability_of_each_class_over_the_items_labelled_with_it() -> None:
    # t0 = (0.8 + 0.6 + 0.1) / 3, t1 = (0.7 + 0.5) / 2, t2 = 0.7
    assert per_class_thresholds(PROBS, LABELS, 3).tolist() == pytest.approx([0.5, 0.6, 0.7])


def test_confident_joint__counts_given_against_confident_label_and_flags_its_off_diagonal() -> None:
    confident = confident_labels(PROBS, per_class_thresholds(PROBS, LABELS, 3))
    # item 4: 0.3 < t0, 0.5 < t1, 0.2 < t2 -> no confident label; item 2: only class 1 reaches its threshold
    assert confident.tolist() == [0, 0, 1, 1, -1, 2]
    assert confident_joint(LABELS, confident, 3).tolist() == [[2, 1, 0], [0, 1, 0], [0, 0, 1]]
    flagged, suggested = flag_label_errors(PROBS, LABELS, 3)
    assert flagged.tolist() == [False, False, True, False, False, False]
    assert suggested[2] == 1


def test_confident_label__the_likeliest_of_the_classes_over_their_threshold_not_the_argmax() -> None:
    # thresholds 0.2 / 0.9: class 1 is likelier (0.6) but under its bar, so the confident label is 0
    probs = torch.tensor([[0.4, 0.6]])
    assert confident_labels(probs, torch.tensor([0.2, 0.9])).tolist() == [0]
    assert confident_labels(probs, torch.tensor([0.5, 0.9])).tolist() == [-1]


def test_class_no_item_carries__is_never_suggested() -> None:
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.2, 0.1, 0.7]])
    thresholds = per_class_thresholds(probs, torch.tensor([0, 0, 0]), 3)
    assert math.isinf(thresholds[1]) and math.isinf(thresholds[2])
    flagged, _ = flag_label_errors(probs, torch.tensor([0, 0, 0]), 3)
    assert not flagged.any()


def test_pair_confusion__share_of_both_classes_items_predicted_as_the_other() -> None:
    # argmax: 0 0 1 | 1 1 | 2  -> one of the 5 items labelled 0 or 1 is predicted as the other
    rate, items = pair_confusion(PROBS, LABELS, 3)
    assert rate[0, 1].item() == rate[1, 0].item() == pytest.approx(1 / 5)
    assert rate[0, 2].item() == rate[1, 2].item() == 0.0
    assert items[0, 1].item() == 5 and items[0, 2].item() == 4


def test_flags__never_between_a_pair_the_models_confuse_more_than_the_limit() -> None:
    separable, confused = separable_pairs(PROBS, LABELS, 3, limit=0.1)
    assert [(p.label, p.other, p.confusion, p.items) for p in confused] == [(0, 1, 0.2, 5)]
    flagged, suggested = flag_label_errors(PROBS, LABELS, 3, separable=separable)
    assert suggested[2] == 1 and not flagged.any()  # item 2 (labelled 0, looks like 1) sits in the confused pair
    separable, confused = separable_pairs(PROBS, LABELS, 3, limit=0.25)
    assert confused == [] and flag_label_errors(PROBS, LABELS, 3, separable=separable)[0].tolist()[2]


def test_ranked__least_believable_given_label_first() -> None:
    probs = torch.tensor([[0.3, 0.7], [0.1, 0.9], [0.9, 0.1], [0.2, 0.8]])
    flagged = torch.tensor([True, True, False, True])
    assert ranked(flagged, probs, torch.tensor([0, 0, 0, 0])) == [1, 3, 0]


def flipped_digits(n: int, rate: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, set[int]]:
    """A seeded random sample of ``n`` of the 5,000 real digits (the file is sorted by class), with
    ``rate`` of the labels moved to another class at random; the flipped positions are the truth."""
    images, labels = mnist_digits()
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(labels), generator=generator)[:n]
    images, labels = images[pick], labels[pick].clone()
    flipped = torch.randperm(n, generator=generator)[: round(n * rate)]
    labels[flipped] = (labels[flipped] + torch.randint(1, 10, (len(flipped),), generator=generator)) % 10
    return images, labels, set(flipped.tolist())


def in_batches(images: torch.Tensor, labels: torch.Tensor, size: int = 500,
               ids: list[str] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str] | None]]:
    for first in range(0, len(labels), size):
        yield images[first : first + size], labels[first : first + size], \
            None if ids is None else ids[first : first + size]


@pytest.mark.slow
def test_real_digits_with_2_percent_flipped__flagged_set_has_f1_over_a_half() -> None:
    images, labels, flipped = flipped_digits(2_000, 0.02, seed=0)
    original = mnist_digits()[1]
    generator = torch.Generator().manual_seed(0)
    truth_labels = original[torch.randperm(5_000, generator=generator)[:2_000]]
    names = [f"train/{int(label)}/{n:04}.png" for n, label in enumerate(labels)]  # as ImageFolder names items
    rng_state = torch.get_rng_state()

    # a budget that never binds: the test judges the method, not a busy machine (about 10 s of one core)
    found = find_label_errors(in_batches(images, labels, ids=names), num_classes=10, time_budget_s=600)

    result = found.result
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's RNG is left alone
    assert result.judged and not result.stopped_early
    assert result.items_examined == result.items_read == 2_000
    assert result.flagged == len(result.items)  # every flagged item listed (fewer than 100)
    flagged = [names.index(str(item.item)) for item in result.items]
    hits = set(flagged) & flipped
    precision, recall = len(hits) / len(flagged), len(hits) / len(flipped)
    f1 = 2 * precision * recall / (precision + recall)
    # measured: 44 flagged, precision 0.77, recall 0.85, F1 0.81
    assert precision >= 0.5 and recall >= 0.7 and f1 >= 0.7, (precision, recall, f1)
    # a found flip's suggested label is mostly the digit it really is
    right = [n for n, item in zip(flagged, result.items, strict=True)
             if n in flipped and item.suggested == truth_labels[n]]
    assert len(right) >= 0.8 * len(hits)
    beliefs = [item.label_probability for item in result.items]
    assert beliefs == sorted(beliefs)
    # the figure gets the first 16 flagged items' pixels, as the model saw them
    assert len(found.pixels) == 16
    torch.testing.assert_close(found.pixels[0][0], images[flagged[0]].float() / 255)


@pytest.mark.slow
def test_clean_photographs_with_look_alike_textures__at_most_2_percent_flagged_and_the_pairs_named() -> None:
    # 1,200 crops of real photographs, every label right; brick and grass are each cut into two look-alike classes
    images, labels, names = photo_crops(TUNING, 120, seed=0)
    found = find_label_errors(in_batches(images, labels), num_classes=len(names), time_budget_s=600)
    result = found.result
    assert result.judged
    assert result.flagged <= 0.02 * len(labels), result.flagged  # every flag here is wrong; measured: 6 (0.5 %)
    confused = {(names[p.label], names[p.other]) for p in result.confused_pairs}
    assert {("brick-left", "brick-right"), ("grass-top", "grass-bottom")} <= confused
    look_alike = {names.index(n) for n in ("brick-left", "brick-right", "grass-top", "grass-bottom")}
    for item in found.flagged:  # nothing flagged between the halves of one texture
        assert not {item.label, item.suggested} <= look_alike or names[item.label][:5] != names[item.suggested][:5]


@pytest.mark.slow
def test_classes_no_model_tells_apart__not_judged_between_them_and_the_report_says_so() -> None:
    # moon crops, and crops of one grass texture given two class names at random: nothing tells those apart
    images, labels, names = photo_crops(ONE_TEXTURE_TWO_NAMES, 150, seed=4)
    result = find_label_errors(in_batches(images, labels), num_classes=3, time_budget_s=600).result
    assert result.judged  # moon against grass can be judged
    assert [(names[p.label], names[p.other]) for p in result.confused_pairs] == [("grass-a", "grass-b")]
    assert result.confused_pairs[0].confusion > 0.3
    assert all({item.label, item.suggested} != {1, 2} for item in result.items)
    assert result.flagged <= 0.02 * len(labels)
    section = report_with(result).split("### Likely label errors\n\n", 1)[1]
    assert "**Not judged between 1 pair of classes** the models confuse more than 2.0% of the time" in section
    assert "1 / 2 (" in section


def test_report__every_pair_confused__not_judged_says_the_models_cannot_tell_the_classes_apart() -> None:
    confused = errors_of([], judged=False, accuracy=0.62).model_copy(update={
        "confused_pairs": [ConfusedPair(label=0, other=1, confusion=0.38, items=400)], "confused_pair_count": 1,
        "chance_accuracy": 0.5, "items_examined": 400, "items_read": 400})
    section = report_with(confused).split("### Likely label errors\n\n", 1)[1]
    assert section.startswith("➖ Not judged: models trained on 400 `train` items cannot tell the classes apart "
                              "well enough to say which one an item is (62.0% out-of-sample accuracy")
    assert "0 / 1 (38.0%). No item is flagged between them." in section
    assert "Likely label errors:**" not in report_with(confused)


def test_tiny_budget__stops_early_says_so_and_stays_within_it() -> None:
    images, labels, _ = flipped_digits(2_000, 0.02, seed=1)
    torch.optim.Adam(torch.nn.Linear(1, 1).parameters())  # the first Adam imports torch._dynamo (seconds)
    start = time.perf_counter()
    result = find_label_errors(in_batches(images, labels), num_classes=10, time_budget_s=0.5).result
    elapsed = time.perf_counter() - start
    assert result.stopped_early
    assert result.items_read <= 2_000 and result.items_examined == 500  # cut to what might fit, not below 500
    assert result.undertrained and not result.judged and result.flagged == 0  # too little training to judge
    assert elapsed < 0.5 + 1.5  # past the budget: at most one step per fold and the predictions
    assert result.time_budget_s == 0.5


def test_labels_with_no_signal__are_not_judged_and_nothing_is_flagged() -> None:
    images, _, _ = flipped_digits(600, 0.0, seed=2)
    shuffled = torch.randint(0, 10, (600,), generator=torch.Generator().manual_seed(3))
    result = find_label_errors(in_batches(images, shuffled), num_classes=10, time_budget_s=3).result
    assert not result.judged
    assert result.flagged == 0 and result.items == []


def test_sample__at_most_max_items_drawn_from_every_part_of_the_split() -> None:
    # the sampler alone: through find_label_errors its reading stops at a share of the time budget, so
    # on a loaded machine it read 3,000 of 5,000 items and this failed for a reason it does not test
    images, labels = mnist_digits()  # sorted by class: the first 1,000 items are all 0s and 1s
    sample = _sample(in_batches(images, labels), 1_000, 10, seed=0, stop=lambda: False)
    assert sample.read == 5_000 and len(sample.y) == 1_000
    # the first 1,000 would be half 0s, half 1s; a uniform sample has each digit about 10 % of the time
    assert torch.bincount(sample.y, minlength=10).max().item() / len(sample.y) < 0.15


def report_with(errors: LabelErrors, *, figures: dict[str, str] | None = None) -> str:
    stats = DatasetStats(layout="course", class_names=None, splits={},
                         leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0))
    report = build_report(title="Data report", data="data", stats=stats, content_hash=None, changes=None, gates=[],
                          baseline=None, figures=figures or {}, label_errors=errors)
    return render_markdown(report, {})


def errors_of(items: list[LabelErrorItem], *, flagged: int | None = None, judged: bool = True,
              accuracy: float = 0.9325) -> LabelErrors:
    return LabelErrors(
        method="confident learning", model="small CNN (2 conv layers) on 28×28 pixels", split="train", folds=3,
        items_read=4_000, items_examined=4_000, flagged=len(items) if flagged is None else flagged, items=items,
        out_of_sample_accuracy=accuracy, chance_accuracy=0.1035, judged=judged, epochs=8.0, seconds=23.6,
        time_budget_s=60.0, stopped_early=False,
    )


def test_report__names_each_flagged_item_with_given_and_suggested_label_and_a_next_step() -> None:
    items = [LabelErrorItem(item=812, label=7, suggested=1, confidence=0.97, label_probability=0.01),
             LabelErrorItem(item=5, label=3, suggested=8, confidence=0.6, label_probability=0.2)]
    markdown = report_with(errors_of(items), figures={"label_errors": "label_errors.png"})
    section = markdown.split("### Likely label errors\n\n", 1)[1].split("###", 1)[0]
    assert section.startswith("⚠️ **2 of 4,000 `train` items** (0.1%) probably carry a wrong label: a small CNN")
    assert "| `train` 812 | 7 | 1 | 97.0% |" in section
    assert "<details>" not in section  # two rows: shown, not folded
    assert "**Likely label errors:** look at the 2 flagged `train` items (the figure shows the first 16)" in markdown
    assert "`train` 812 (7 → 1)" in markdown


def test_report__a_long_list_is_folded_and_says_how_many_more_report_json_has() -> None:
    items = [LabelErrorItem(item=n, label=1, suggested=7, confidence=0.9, label_probability=0.05) for n in range(100)]
    sampled = errors_of(items, flagged=120).model_copy(update={"items_read": 60_000})
    section = report_with(sampled).split("### Likely label errors\n\n", 1)[1]
    assert section.startswith("⚠️ **120 of 4,000 `train` items** (3.0%; a random sample of the 60,000 read)")
    assert ("<details><summary>The 100 flagged items, least believable label first (lowest probability of the "
            "given label)</summary>") in section
    assert "… and 20 more, less likely ones (report.json lists the first 100)." in section


def test_report__one_line_when_nothing_is_flagged_or_the_models_are_too_weak() -> None:
    assert "### Likely label errors\n\n✅ None found among 4,000 `train` items.\n" in report_with(errors_of([]))
    weak = report_with(errors_of([], judged=False, accuracy=0.11))
    assert "➖ Not judged: models trained on 4,000 `train` items predicted the given labels 11.0% of the time, " \
        "against 10.3% by always guessing the most common class" in weak
    assert "Likely label errors:**" not in weak
    short = report_with(errors_of([], judged=False).model_copy(update={"undertrained": True, "epochs": 1.5}))
    assert "➖ Not judged: the time left in `baseline-time-budget` trained the models for 1.50 epochs per fold" in short


def grid_texts(fig: Figure) -> tuple[list[AxesImage], list[str], list[list[str]]]:
    """The images, each image's header, and each image's footer lines (given, suggested, confidence)."""
    (ax,) = fig.axes
    headers = [t.get_text() for t in ax.texts if t.get_va() == "bottom"]
    footers = [t.get_text() for t in ax.texts if t.get_va() == "top"]
    return ax.images, headers, [footers[k : k + 3] for k in range(0, len(footers), 3)]


def test_grid__each_flagged_digit_with_its_item_given_and_suggested_label_in_rank_order() -> None:
    digits, _ = mnist_digits(3)
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    names = [f"{n} - {word}" for n, word in enumerate(words)]
    errors = [(812, 7, 1, 0.97), ("train/3/x.png", 3, 8, 0.5), (5, 0, 6, 0.999)]

    fig = draw_label_error_grid(display_images(list(digits)), errors, names, total=40)

    images, headers, footers = grid_texts(fig)
    assert len(images) == 3
    assert headers == ["item 812", "3/x.png", "item 5"]
    assert footers == [["given 7 - seven", "→ 1 - one", "97.0% sure"], ["given 3 - three", "→ 8 - eight", "50.0% sure"],
                       ["given 0 - zero", "→ 6 - six", "99.9% sure"]]
    assert "Likely label errors in train (3 least believable of 40): given label → suggested" in [
        t.get_text() for t in fig.texts]
    np.testing.assert_allclose(images[0].get_array()[..., 0], digits[0].numpy() / 255, atol=1e-6)
    with pytest.raises(CannotDrawFigure):
        draw_label_error_grid([], [], total=0)


def test_grid_job__crosses_the_worker_boundary_and_renders() -> None:
    job = LabelErrorGrid([np.zeros((4, 4, 3))], [("train/a/1.png", 0, 1, 0.9)], None, total=1)
    (received,) = _load_jobs(io.BytesIO(pickle.dumps({"label_errors": job}))).values()
    np.testing.assert_equal(dataclasses.asdict(received), dataclasses.asdict(job))
    assert received.render().startswith(b"\x89PNG")


def test_feature_vectors__judged_by_an_mlp_and_flips_found() -> None:
    generator = torch.Generator().manual_seed(5)
    centres = torch.randn(4, 16, generator=generator) * 4
    labels = torch.arange(800) % 4
    vectors = centres[labels] + torch.randn(800, 16, generator=generator)
    given = labels.clone()
    given[:16] = (given[:16] + 1) % 4  # 2 % flipped: items 0..15
    found = find_label_errors(in_batches(vectors, given, 256), num_classes=4, time_budget_s=600)
    assert found.result.model == "MLP (1 hidden layer) on 16 features"
    flagged = {item.item for item in found.result.items}
    assert set(range(16)) <= flagged and len(flagged) <= 24
    assert all(item.suggested == labels[item.item] for item in found.result.items if item.item < 16)


def test_images_of_mixed_sizes_and_channels__are_brought_to_the_first_batch_shape() -> None:
    gray = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)
    rgb = torch.randint(0, 256, (64, 40, 40, 3), dtype=torch.uint8)  # channel-last, larger
    batches = [(gray, torch.arange(64) % 2, None), (rgb, torch.arange(64) % 2, None)]
    result = find_label_errors(iter(batches), num_classes=2, time_budget_s=1).result
    assert result.items_read == 128 and result.model == "small CNN (2 conv layers) on 28×28 pixels"
