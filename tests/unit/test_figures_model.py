"""The model-gate figures, checked on the drawn artist tree (titles, tick labels, cell texts and
their bounds, bar heights, the zero line) and on the PNG bytes."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from mlgate.figures.images import CannotDrawFigure
from mlgate.figures.model import accuracy_delta, confusion_matrix, draw_accuracy_delta, draw_confusion_matrix
from mlgate.figures.style import drawn

CONFUSION = [[50, 2, 0], [3, 40, 7], [0, 0, 61]]
MODEL = "acme/wandb-registry-model/mnist:v12"


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    return image


def confusion(n: int, samples: int = 5000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    true = rng.integers(0, n, samples)
    predicted = np.where(rng.random(samples) < 0.8, true, rng.integers(0, n, samples))
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (true, predicted), 1)
    return counts


def cell_texts(ax) -> list:
    return list(ax.texts)


# --- confusion_matrix ------------------------------------------------------------------------


def test_confusion_matrix__renders_deterministic_png_without_software_metadata():
    png = confusion_matrix(CONFUSION, ["cat", "dog", "bird"], model=MODEL, split="test")

    image = decode(png)
    assert image.size == (660, 520)
    assert "Software" not in image.info
    assert png == confusion_matrix(CONFUSION, ["cat", "dog", "bird"], model=MODEL, split="test")


def test_confusion_matrix__title_names_model_split_items_and_classes():
    ax = draw_confusion_matrix(CONFUSION, model=MODEL, split="test").axes[0]

    assert ax.get_title(loc="left") == f"Confusion matrix: {MODEL}\ntest split, 163 items, 3 classes"


def test_confusion_matrix__long_model_names_keep_their_version_and_fit_the_canvas():
    name = "a-very-long-entity-name/wandb-registry-model/a-very-long-collection-name-indeed:v123"

    fig = drawn(draw_confusion_matrix(confusion(12), model=name, split="test"))

    title = fig.axes[0].get_title(loc="left")
    assert "…" in title and ":v123" in title
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.get_figwidth() + 0.01


def test_confusion_matrix__colours_are_row_shares_and_cells_hold_counts():
    fig = drawn(draw_confusion_matrix(CONFUSION, ["cat", "dog", "bird"]))
    ax = fig.axes[0]

    counts = np.array(CONFUSION)
    np.testing.assert_allclose(ax.images[0].get_array(), counts / counts.sum(axis=1, keepdims=True))
    assert sorted(t.get_text() for t in cell_texts(ax)) == sorted(str(c) for c in counts.flatten() if c)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "bird"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "bird"]


def test_confusion_matrix__writes_thousands_with_separators():
    ax = draw_confusion_matrix([[1519, 98], [110, 1444]]).axes[0]

    assert sorted(t.get_text() for t in cell_texts(ax)) == ["1,444", "1,519", "110", "98"]


@pytest.mark.parametrize("n", [12, 20])
def test_confusion_matrix__at_10_plus_classes_every_count_fits_inside_its_cell(n):
    counts = confusion(n)

    fig = drawn(draw_confusion_matrix(counts, [f"class_{i}" for i in range(n)], model=MODEL, split="test"))

    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    cell_w, cell_h = axes_box.width / n, axes_box.height / n
    texts = cell_texts(ax)
    assert len(texts) == np.count_nonzero(counts)
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.width < cell_w and box.height < cell_h
        assert text.get_fontsize() >= 6
    assert len(ax.get_xticklabels()) == n
    assert fig.get_figwidth() <= 8.0


def test_confusion_matrix__at_50_plus_classes_drops_counts_and_thins_ticks_that_would_overlap():
    fig = drawn(draw_confusion_matrix(confusion(60), model=MODEL, split="test"))
    ax = fig.axes[0]

    assert cell_texts(ax) == []
    assert "report.json" in ax.get_xlabel()
    renderer = fig.canvas.get_renderer()
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        assert 10 <= len(labels) < 60
        assert all(label.get_fontsize() >= 9 for label in labels)
        boxes = [label.get_window_extent(renderer) for label in labels]
        assert not any(a.overlaps(b) for a, b in itertools.pairwise(boxes))
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["0", "2", "4"]
    assert tuple(fig.get_size_inches()) == (8.0, 7.2)


def test_confusion_matrix__draws_dollar_signs_in_names_as_text_not_mathtext():
    fig = drawn(draw_confusion_matrix(CONFUSION, [r"$\notacmd$", "$5", "b"], model="$m"))

    assert fig.axes[0].get_xticklabels()[0].get_text() == r"$\notacmd$"
    assert decode(confusion_matrix(CONFUSION, [r"$\notacmd$", "$5", "b"])).size == (660, 520)


# --- accuracy_delta --------------------------------------------------------------------------


CANDIDATE = {"0": 0.95, "1": 0.90, "2": 0.80, "10": 0.5}
PRODUCTION = {"0": 0.93, "1": 0.95, "2": 0.80, "3": 0.7, "10": 0.4}


def draw_delta(**overrides):
    kwargs = {"candidate_name": "mnist:v13", "production_name": "mnist:v12", "split": "test",
              "eval_samples": 10_000, "overall": (0.93, 0.925), **overrides}
    return draw_accuracy_delta(CANDIDATE, PRODUCTION, **kwargs)


def test_accuracy_delta__bars_are_candidate_minus_production_in_points_in_class_order():
    ax = draw_delta().axes[0]

    bars = ax.containers[0]
    expected = [100 * (CANDIDATE[c] - PRODUCTION[c]) for c in ("0", "1", "2", "10")]
    np.testing.assert_allclose([bar.get_height() for bar in bars], expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "10"]  # class 3: production only
    green, red, grey = bars[0].get_facecolor(), bars[1].get_facecolor(), bars[2].get_facecolor()
    assert bars[3].get_facecolor() == green and len({green, red, grey}) == 3


def test_accuracy_delta__zero_line_symmetric_axis_and_labelled_in_percentage_points():
    fig = drawn(draw_delta())
    ax = fig.axes[0]

    zero = [line for line in ax.lines if list(line.get_ydata()) == [0, 0]]
    assert len(zero) == 1
    low, high = ax.get_ylim()
    assert low == -high and high > 10  # the largest change is 10 points
    assert "percentage points" in ax.get_ylabel()
    annotations = [text.get_text() for text in ax.texts]
    assert annotations == ["+2.0", "−5.0", "0.0", "+10.0"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["candidate better", "candidate worse", "overall: +0.5 pp (92.5% → 93.0%)"]


def test_accuracy_delta__title_names_both_models_split_and_counts():
    title = draw_delta().axes[0].get_title(loc="left")

    assert title == ("Per-class accuracy: mnist:v13 minus production mnist:v12\n"
                     "test split, 10,000 items, 4 classes: 2 better, 1 worse, 1 equal")


def test_accuracy_delta__many_classes_thin_ticks_and_drop_value_labels():
    rng = np.random.default_rng(0)
    candidate = {str(i): float(rng.uniform(0.7, 1)) for i in range(120)}
    production = {k: v - 0.01 for k, v in candidate.items()}

    fig = drawn(draw_accuracy_delta(candidate, production, candidate_name="a", production_name="b"))

    ax = fig.axes[0]
    assert list(ax.texts) == []
    labels = ax.get_xticklabels()
    assert 10 <= len(labels) < 120
    renderer = fig.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in labels]
    assert not any(a.overlaps(b) for a, b in itertools.pairwise(boxes))


def test_accuracy_delta__renders_deterministic_800px_png():
    png = accuracy_delta(CANDIDATE, PRODUCTION, candidate_name="a", production_name="b")

    assert decode(png).size == (800, 400)
    assert png == accuracy_delta(CANDIDATE, PRODUCTION, candidate_name="a", production_name="b")


def test_accuracy_delta__rejects_models_without_a_common_class():
    with pytest.raises(CannotDrawFigure, match="share no class"):
        draw_accuracy_delta({"0": 1.0}, {"1": 1.0}, candidate_name="a", production_name="b")
