"""The data-stats figures, checked on the drawn artist tree (titles, tick labels, bar heights,
legend entries, axes and text bounds against the canvas) and on the PNG bytes."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from PIL import Image

from mlgate.figures.distributions import (
    draw_label_distribution,
    draw_pixel_histogram,
    label_distribution,
    label_distribution_mermaid,
    pixel_histogram,
)
from mlgate.figures.images import CannotDrawFigure
from mlgate.figures.samples import display_samples, draw_sample_grid, sample_grid
from mlgate.figures.style import drawn, number_label
from mlgate.figures.training import draw_loss_curve, loss_curve


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    return image


def pixels_of(png: bytes, grey: int) -> int:
    """How many pixels of the PNG have exactly this grey level."""
    pixels = np.asarray(decode(png).convert("RGB"))
    return int(np.all(pixels == grey, axis=-1).sum())


def make_samples(
    classes: int, per_class: int = 4, shape: tuple[int, ...] = (28, 28), dtype: torch.dtype = torch.uint8
) -> dict[int, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    samples = {}
    for label in range(classes):
        x = torch.rand(per_class, *shape, generator=generator)
        samples[label] = (x * 255).to(dtype) if dtype == torch.uint8 else (x * 40 - 20).to(dtype)
    return samples


def displays(classes: int, per_class: int = 4, size: int = 28) -> dict[int, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return {label: [rng.random((size, size, 3), dtype=np.float32) for _ in range(per_class)]
            for label in range(classes)}


def content_box(fig: Figure) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of everything drawn, as fractions of the canvas."""
    drawn(fig)
    box = fig.get_tightbbox(fig.canvas.get_renderer())  # in inches
    width, height = fig.get_size_inches()
    return box.x0 / width, box.y0 / height, box.x1 / width, box.y1 / height


def texts(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.texts]


def visible_tick_labels(axis) -> list[tuple[float, str]]:
    low, high = sorted(axis.get_view_interval())
    labels = {tick.get_loc(): tick.label1.get_text() for tick in axis.get_major_ticks()}
    return [(loc, text) for loc, text in sorted(labels.items()) if low <= loc <= high]


@pytest.fixture
def counts() -> dict[str, dict[str, int]]:
    return {
        "train": {"0": 5923, "1": 6742, "2": 5958, "10": 100},
        "test": {"0": 980, "1": 1135, "2": 1032},
    }


# --- sample_grid -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((28, 28), torch.uint8),  # grayscale HW
        ((1, 28, 28), torch.uint8),  # grayscale CHW
        ((3, 32, 32), torch.float32),  # RGB float, any range
        ((32, 32, 3), torch.uint8),  # channel-last RGB
        ((4, 16, 16), torch.float64),  # RGBA
        ((3, 300, 200), torch.float32),  # large, non-square: downsampled before composing
    ],
)
def test_sample_grid__renders_each_layout_and_dtype_at_most_800px_wide(shape, dtype):
    png = sample_grid(make_samples(3, shape=shape, dtype=dtype), ["cat", "dog", "bird"])

    image = decode(png)
    assert 200 < image.width <= 800
    assert 100 < image.height < 1200


def test_sample_grid__same_input_gives_identical_bytes():
    samples = make_samples(10, shape=(3, 32, 32), dtype=torch.float32)

    assert sample_grid(samples) == sample_grid(samples)


def test_sample_grid__png_has_no_software_metadata():
    image = decode(sample_grid(make_samples(1)))

    assert "Software" not in image.info


def test_sample_grid__shows_uint8_as_is_and_stretches_float_per_image():
    flat_uint8 = torch.full((1, 20, 20), 200, dtype=torch.uint8)
    halves = torch.full((1, 20, 20), 0.2)
    halves[:, 10:] = 0.4  # float 0.2..0.4 -> stretched to black..white

    uint8_png = sample_grid({0: flat_uint8})
    float_png = sample_grid({0: halves})

    # one cell is ~100 px square; text and antialiased edges account for far fewer pixels
    assert pixels_of(uint8_png, 200) > 5000
    assert pixels_of(float_png, 0) > 2500  # the 0.2 half, stretched to black
    assert pixels_of(float_png, 51) < 100  # 0.2 * 255, what an unstretched float would show


def test_sample_grid__title_says_which_split_how_many_per_class_and_how_many_classes():
    fig = draw_sample_grid(displays(10), per_class=4, split="train")

    assert "Train samples: 4 per class, 10 classes" in texts(fig)


def test_sample_grid__title_says_up_to_when_a_class_has_fewer_and_first_of_when_capped():
    few = {7: [np.zeros((8, 8, 3))] * 2, 8: [np.zeros((8, 8, 3))] * 3}
    assert "Validation samples: up to 3 per class, 2 classes" in texts(
        draw_sample_grid(few, per_class=4, split="validation"))

    many = display_samples(make_samples(57), per_class=4)
    assert "Train samples: 4 per class, first 20 of 57 classes" in texts(draw_sample_grid(many, per_class=4))


@pytest.mark.parametrize(("classes", "per_class"), [(1, 1), (1, 2), (3, 8), (10, 4), (20, 4), (20, 1)])
def test_sample_grid__canvas_is_cut_to_its_content(classes, per_class):
    fig = draw_sample_grid(displays(classes, per_class), [f"class {i}" for i in range(classes)],
                           per_class=per_class)

    left, bottom, right, top = content_box(fig)
    assert fig.get_figwidth() <= 8.0
    assert left < 0.08 and right > 0.92  # no empty band beside the grid...
    assert bottom < 0.08 and top > 0.88  # ...or above and below it
    assert left >= 0 and bottom >= 0 and right <= 1 and top <= 1  # and nothing cut off


def test_sample_grid__ten_classes_fill_two_panels_with_large_images():
    fig = draw_sample_grid(displays(10), per_class=4)

    panels = fig.axes
    assert len(panels) == 2
    width_in = fig.get_figwidth()
    cell_in = [ax.get_position().width * width_in / 4 for ax in panels]
    assert fig.get_figwidth() == pytest.approx(8.0)
    assert min(cell_in) > 0.7  # was 0.45 in a single column with two thirds of the canvas empty
    assert fig.get_figheight() < 5.5


def test_sample_grid__each_class_label_sits_left_of_its_row_and_inside_the_canvas():
    names = ["airplane", "automobile", "bird", "cat"]
    fig = draw_sample_grid(displays(4), names, per_class=4)

    drawn(fig)
    renderer = fig.canvas.get_renderer()
    grid = fig.axes[0].get_window_extent(renderer)
    labels = [text for text in fig.texts if ":" in text.get_text() and "samples" not in text.get_text()]
    assert [text.get_text() for text in labels] == ["0: airplane", "1: automobile", "2: bird", "3: cat"]
    for text in labels:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= grid.x0
        assert grid.y0 <= (box.y0 + box.y1) / 2 <= grid.y1


def test_sample_grid__caps_rows_at_20_classes():
    many = decode(sample_grid(make_samples(57)))
    twenty = decode(sample_grid(make_samples(20)))

    assert many.size == twenty.size
    assert many.height <= 900


def test_sample_grid__rejects_non_image_items_naming_the_label():
    with pytest.raises(CannotDrawFigure, match=r"label 3 .*\(7, 28, 28\)"):
        sample_grid({3: torch.zeros(2, 7, 28, 28)})


def test_sample_grid__rejects_classes_without_samples():
    with pytest.raises(CannotDrawFigure, match="0 samples"):
        sample_grid({0: torch.zeros(0, 28, 28)})


# --- label_distribution ----------------------------------------------------------------------


def test_label_distribution__renders_deterministic_800px_wide_png(counts):
    png = label_distribution(counts)

    assert decode(png).size == (800, 420)
    assert png == label_distribution(counts)


def test_label_distribution__title_names_classes_and_every_split_with_its_size(counts):
    ax = draw_label_distribution(counts).axes[0]

    assert ax.get_title(loc="left") == "Label distribution: 4 classes; train 18,723 items, test 3,147 items"


def test_label_distribution__bars_are_each_labels_share_of_its_split_in_numeric_label_order(counts):
    fig = drawn(draw_label_distribution(counts))
    ax = fig.axes[0]

    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "10"]
    train, test = ax.containers
    expected_train = 100 * np.array([5923, 6742, 5958, 100]) / 18723
    expected_test = 100 * np.array([980, 1135, 1032, 0]) / 3147
    np.testing.assert_allclose([bar.get_height() for bar in train], expected_train)
    np.testing.assert_allclose([bar.get_height() for bar in test], expected_test)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["train", "test", "uniform (25%)"]


def test_label_distribution__with_a_base_marks_its_share_on_each_bar_and_names_it(counts):
    base = {"train": {"0": 50, "1": 50}, "test": {"0": 10, "1": 30}, "gone": {"0": 4}}

    fig = drawn(draw_label_distribution(counts, base_counts=base, base_name="main"))

    ax = fig.axes[0]
    marks = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(marks) == 2  # one per split in both head and base; a removed split has no bars to mark
    for mark, bars, shares in zip(marks, ax.containers, ([50.0, 50.0, 0, 0], [25.0, 75.0, 0, 0]), strict=True):
        segments = mark.get_segments()
        assert [s[0][1] for s in segments] == pytest.approx(shares)
        for segment, bar in zip(segments, bars, strict=True):  # each mark spans its own bar
            assert segment[0][0] == pytest.approx(bar.get_x())
            assert segment[1][0] == pytest.approx(bar.get_x() + bar.get_width())
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["train", "test", "base main: train 100 items, test 40 items", "uniform (25%)"]
    assert ax.get_ylim()[1] >= 75


def test_label_distribution__legend_and_title_stay_on_the_canvas_with_long_names():
    head = {f"a long split name {i}": {"0": 3, "1": 4} for i in range(3)}

    fig = draw_label_distribution(head, base_counts=head, base_name="refs/heads/a-very-long-branch-name/x" * 2)

    left, bottom, right, top = content_box(fig)
    assert left >= 0 and bottom >= 0 and right <= 1.001 and top <= 1.001


def test_label_distribution__50_named_labels_are_all_ticked_upright():
    many = {
        split: {f"class number {i}": 10 + i * scale for i in range(50)}
        for split, scale in [("train", 3), ("val", 1), ("test", 2)]
    }

    fig = drawn(draw_label_distribution(many))

    labels = fig.axes[0].get_xticklabels()
    assert len(labels) == 50
    assert {label.get_rotation() for label in labels} == {90}
    assert fig.get_size_inches().tolist() == [8.0, 4.2]


def test_label_distribution__short_labels_stay_horizontal(counts):
    labels = drawn(draw_label_distribution(counts)).axes[0].get_xticklabels()

    assert {label.get_rotation() for label in labels} == {0}


def test_figures__draw_dollar_signs_in_names_as_text_not_mathtext():
    names = {"train": {r"$\notacommand$": 3, "$5 bill": 2}}

    fig = drawn(draw_label_distribution(names))

    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["$5 bill", r"$\notacommand$"]
    assert decode(label_distribution(names)).width == 800
    assert decode(sample_grid({0: torch.zeros(1, 8, 8)}, [r"$\notacommand$"])).width <= 800


def test_label_distribution__rejects_empty_split():
    with pytest.raises(CannotDrawFigure, match="'test'"):
        label_distribution({"train": {"0": 3}, "test": {"0": 0}})


# --- label_distribution_mermaid --------------------------------------------------------------


def test_label_distribution_mermaid__is_one_fenced_xychart_block(counts):
    block = label_distribution_mermaid(counts)

    lines = block.splitlines()
    assert lines[0] == "```mermaid"
    assert lines[-1] == "```"
    assert block.count("```") == 2
    assert "xychart-beta" in lines
    assert sum(line.strip().startswith("bar [") for line in lines) == 1  # Mermaid overlaps bar series
    assert sum(line.strip().startswith("line [") for line in lines) == 1


def test_label_distribution_mermaid__lists_every_label_in_numeric_order_and_its_share(counts):
    block = label_distribution_mermaid(counts)

    x_axis = re.search(r"x-axis \[(.*)\]", block)
    assert x_axis is not None
    assert x_axis.group(1) == '"0", "1", "2", "10"'
    bars = re.search(r"bar \[(.*)\]", block)
    line = re.search(r"line \[(.*)\]", block)
    assert bars is not None and line is not None
    train_total, test_total = 5923 + 6742 + 5958 + 100, 980 + 1135 + 1032
    expected_train = [100 * c / train_total for c in (5923, 6742, 5958, 100)]
    expected_test = [100 * c / test_total for c in (980, 1135, 1032, 0)]
    assert [float(v) for v in bars.group(1).split(", ")] == pytest.approx(expected_train, abs=0.005)
    assert [float(v) for v in line.group(1).split(", ")] == pytest.approx(expected_test, abs=0.005)
    assert "train n=18,723" in block
    assert "test n=3,147" in block


def test_label_distribution_mermaid__quotes_names_safely():
    block = label_distribution_mermaid({"train": {'say "hi"': 1, "back`tick": 2, "multi\nline": 3}})

    x_axis = re.search(r"x-axis \[(.*)\]", block)
    assert x_axis is not None
    assert x_axis.group(1) == '"back\'tick", "multi line", "say \'hi\'"'
    assert block.count("`") == 6  # only the two fences


# --- pixel_histogram and loss_curve ----------------------------------------------------------


def make_histograms(shift: int = 0) -> dict[str, tuple[list[int], list[float]]]:
    rng = np.random.default_rng(shift)
    histograms = {}
    for split, background in [("train", 8000), ("test", 1500)]:
        values = np.concatenate([np.zeros(background), rng.integers(shift, 256, 2000)])
        counts, edges = np.histogram(values, bins=32, range=(0, 256))
        histograms[split] = (counts.tolist(), edges.tolist())
    return histograms


def test_pixel_histogram__renders_deterministic_800px_png():
    histograms = make_histograms()

    png = pixel_histogram(histograms)

    assert decode(png).size == (800, 360)
    assert png == pixel_histogram(histograms)


def test_pixel_histogram__log_axis_reads_as_plain_numbers_not_mathtext():
    ax = drawn(draw_pixel_histogram(make_histograms())).axes[0]

    assert ax.get_yscale() == "log"
    ticks = visible_tick_labels(ax.yaxis)
    assert len([text for _, text in ticks if text]) >= 3
    for loc, text in ticks:
        assert "$" not in text and "mathdefault" not in text
        assert text == number_label(loc)
    assert ax.get_ylabel() == "density (log scale)"


def test_pixel_histogram__flat_distribution_keeps_a_linear_axis():
    counts, edges = np.histogram(np.arange(256), bins=16, range=(0, 256))

    ax = drawn(draw_pixel_histogram({"train": (counts.tolist(), edges.tolist())})).axes[0]

    assert ax.get_yscale() == "linear"
    assert ax.get_ylabel() == "density"


def test_pixel_histogram__draws_densities_and_names_each_split_with_its_size():
    histograms = make_histograms()

    ax = draw_pixel_histogram(histograms, items={"train": 10_000, "test": 3_500}).axes[0]

    assert ax.get_title(loc="left") == "Pixel value distribution: train 10,000 items, test 3,500 items"
    train_counts, train_edges = histograms["train"]
    expected = np.array(train_counts) / (sum(train_counts) * np.diff(train_edges))
    np.testing.assert_allclose(ax.patches[0].get_data().values, expected)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test"]


def test_pixel_histogram__with_a_base_draws_it_dashed_in_the_splits_colour_and_names_it():
    head, base = make_histograms(), make_histograms(shift=60)
    base.pop("test")

    ax = draw_pixel_histogram(head, base=base, base_name="main").axes[0]

    solid, dashed, other = ax.patches  # train head, train base, test head
    assert solid.get_linestyle() == "solid" and dashed.get_linestyle() == "--"
    assert dashed.get_edgecolor() == solid.get_edgecolor()
    assert other.get_edgecolor() != solid.get_edgecolor()
    base_counts, base_edges = base["train"]
    np.testing.assert_allclose(dashed.get_data().values,
                               np.array(base_counts) / (sum(base_counts) * np.diff(base_edges)))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test", "head", "base main"]


def test_pixel_histogram__rejects_edges_that_do_not_match_counts():
    with pytest.raises(CannotDrawFigure, match="'train' has 3 counts and 3 bin edges"):
        pixel_histogram({"train": ([1, 2, 3], [0.0, 1.0, 2.0])})


def test_loss_curve__renders_deterministic_png_for_short_and_long_runs():
    long = [2.3 * 0.99**i + 0.1 for i in range(300)]

    for losses in ([2.3, 1.9, 1.2], long):
        png = loss_curve(losses, title="baseline")
        assert decode(png).size == (800, 320)
        assert png == loss_curve(losses, title="baseline")


def test_loss_curve__counts_training_steps_and_centres_the_moving_average():
    losses = [2.3 * 0.99**i + 0.1 for i in range(100)]

    ax = draw_loss_curve(losses, title="Sanity baseline\ntrain split, 1,000 items", step_every=10).axes[0]

    raw, smooth = ax.lines
    np.testing.assert_array_equal(raw.get_xdata(), np.arange(1, 101) * 10)
    window = 5
    assert smooth.get_xdata()[0] == 10 * (1 + (window - 1) // 2)
    np.testing.assert_allclose(smooth.get_ydata()[0], np.mean(losses[:window]))
    assert ax.get_xlabel() == "training step (each point: mean of 10 steps)"
    assert ax.get_title(loc="left") == "Sanity baseline\ntrain split, 1,000 items"


def test_loss_curve__log_axis_over_decades_reads_as_plain_numbers():
    ax = drawn(draw_loss_curve([10 * 0.8**i for i in range(40)])).axes[0]

    assert ax.get_yscale() == "log"
    labels = [text for _, text in visible_tick_labels(ax.yaxis) if text]
    assert labels and all(re.fullmatch(r"[0-9.,]+", text) for text in labels)


def test_loss_curve__rejects_no_losses():
    with pytest.raises(CannotDrawFigure):
        loss_curve([])
