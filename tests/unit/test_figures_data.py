from __future__ import annotations

import io
import re

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from mlgate.figures.data import (
    CannotDrawFigure,
    label_distribution,
    label_distribution_mermaid,
    loss_curve,
    pixel_histogram,
    sample_grid,
)


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
def test_sample_grid__renders_800px_wide_png_for_each_layout_and_dtype(shape, dtype):
    png = sample_grid(make_samples(3, shape=shape, dtype=dtype), ["cat", "dog", "bird"])

    image = decode(png)
    assert image.width == 800
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

    # one cell is ~120 px square; text and antialiased edges account for far fewer pixels
    assert pixels_of(uint8_png, 200) > 5000
    assert pixels_of(float_png, 0) > 5000  # the 0.2 half, stretched to black
    assert pixels_of(float_png, 51) < 100  # 0.2 * 255, what an unstretched float would show


def test_sample_grid__one_class_with_fewer_samples_than_per_class():
    image = decode(sample_grid({7: torch.zeros(2, 28, 28, dtype=torch.uint8)}, per_class=4))

    assert image.width == 800


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


def test_label_distribution__renders_800px_wide_png(counts):
    image = decode(label_distribution(counts))

    assert image.size == (800, 420)


def test_label_distribution__same_input_gives_identical_bytes(counts):
    assert label_distribution(counts) == label_distribution(counts)


def test_label_distribution__handles_50_named_labels_and_three_splits():
    many = {
        split: {f"class number {i}": 10 + i * scale for i in range(50)}
        for split, scale in [("train", 3), ("val", 1), ("test", 2)]
    }

    assert decode(label_distribution(many)).width == 800


def test_figures__draw_dollar_signs_in_names_as_text_not_mathtext():
    names = {"train": {r"$\notacommand$": 3, "$5 bill": 2}}

    assert decode(label_distribution(names)).width == 800
    assert decode(sample_grid({0: torch.zeros(1, 8, 8)}, [r"$\notacommand$"])).width == 800


def test_label_distribution__rejects_empty_split():
    with pytest.raises(CannotDrawFigure, match="'test'"):
        label_distribution({"train": {"0": 3}, "test": {"0": 0}})


def test_figures__ignore_the_callers_rcparams_and_leave_them_unchanged(counts):
    reference = label_distribution(counts)

    with matplotlib.rc_context({"font.size": 30, "axes.facecolor": "red", "figure.dpi": 300}):
        styled = label_distribution(counts)
        assert matplotlib.rcParams["font.size"] == 30

    assert styled == reference


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


def make_histograms() -> dict[str, tuple[list[int], list[float]]]:
    rng = np.random.default_rng(0)
    histograms = {}
    for split, background in [("train", 8000), ("test", 1500)]:
        values = np.concatenate([np.zeros(background), rng.integers(0, 256, 2000)])
        counts, edges = np.histogram(values, bins=32, range=(0, 256))
        histograms[split] = (counts.tolist(), edges.tolist())
    return histograms


def test_pixel_histogram__renders_deterministic_800px_png():
    histograms = make_histograms()

    png = pixel_histogram(histograms)

    assert decode(png).size == (800, 360)
    assert png == pixel_histogram(histograms)


def test_pixel_histogram__rejects_edges_that_do_not_match_counts():
    with pytest.raises(CannotDrawFigure, match="'train' has 3 counts and 3 bin edges"):
        pixel_histogram({"train": ([1, 2, 3], [0.0, 1.0, 2.0])})


def test_loss_curve__renders_deterministic_png_for_short_and_long_runs():
    long = [2.3 * 0.99**i + 0.1 for i in range(300)]

    for losses in ([2.3, 1.9, 1.2], long):
        png = loss_curve(losses, title="baseline")
        assert decode(png).size == (800, 320)
        assert png == loss_curve(losses, title="baseline")


def test_loss_curve__rejects_no_losses():
    with pytest.raises(CannotDrawFigure):
        loss_curve([])
