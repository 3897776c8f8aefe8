"""The one figure setup: a user's rcParams cannot change a figure, log axes read as plain numbers."""

from __future__ import annotations

import itertools

import matplotlib
import numpy as np
import pytest

from mlgate.figures.distributions import label_distribution, pixel_histogram
from mlgate.figures.model import confusion_matrix
from mlgate.figures.style import drawn, figure, log_ticks, number_label, text_width_in, title_text

COUNTS = {"train": {"0": 50, "1": 70, "2": 30}, "test": {"0": 10, "1": 12, "2": 9}}
HOSTILE_RC = {
    # what a user's matplotlibrc (or a notebook's setup) may hold; none of it may reach a figure
    "font.size": 30,
    "font.family": "serif",
    "axes.facecolor": "red",
    "axes.prop_cycle": matplotlib.cycler(color=["#00ff00", "#ff00ff"]),
    "axes.formatter.use_mathtext": True,
    "axes.unicode_minus": False,
    "image.cmap": "magma",
    "figure.dpi": 300,
    "savefig.dpi": 50,
    "savefig.bbox": "tight",
    "savefig.facecolor": "black",
    "savefig.transparent": True,
    "text.parse_math": True,
}


@pytest.mark.parametrize(
    "draw",
    [
        lambda: label_distribution(COUNTS),
        lambda: pixel_histogram({"train": ([9000, 30, 20, 25], [0.0, 0.25, 0.5, 0.75, 1.0])}),
        lambda: confusion_matrix([[5, 1], [2, 7]], model="m", split="test"),
    ],
    ids=["label_distribution", "pixel_histogram", "confusion_matrix"],
)
def test_figures__a_users_rcparams_change_nothing_and_are_restored(draw) -> None:
    reference = draw()

    with matplotlib.rc_context(HOSTILE_RC):
        styled = draw()
        assert matplotlib.rcParams["savefig.bbox"] == "tight"  # the caller's settings, restored

    assert styled == reference


def test_figures__user_text_is_never_math_inside_the_style() -> None:
    with figure(2.0) as fig:
        assert not matplotlib.rcParams["text.parse_math"]
        text = fig.text(0.5, 0.5, r"$\notacommand$")
    drawn(fig)  # mathtext would raise on the unknown command

    assert text.get_text() == r"$\notacommand$"


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (0, "0"),
        (0.001, "0.001"),
        (0.02, "0.02"),
        (0.5, "0.5"),
        (1, "1"),
        (5.0, "5"),
        (20, "20"),
        (200, "200"),
        (2000, "2,000"),
        (1e4, "10⁴"),
        (2e5, "2×10⁵"),
        (1e-4, "10⁻⁴"),
        (5e-7, "5×10⁻⁷"),
        (0.30000000000000004, "0.3"),
        (-20, "−20"),
    ],
)
def test_number_label__plain_text_and_unicode_exponents(value: float, label: str) -> None:
    assert number_label(value) == label


def visible_tick_labels(axis) -> list[tuple[float, str]]:
    low, high = sorted(axis.get_view_interval())
    labels = {tick.get_loc(): tick.label1.get_text() for tick in axis.get_major_ticks()}
    return [(loc, text) for loc, text in sorted(labels.items()) if low <= loc <= high]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.05, 30, ["0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10", "20"]),  # < 3 decades: 1-2-5
        (1e-4, 1e3, ["10⁻⁴", "0.001", "0.01", "0.1", "1", "10", "100", "1,000"]),  # every decade
    ],
)
def test_log_ticks__label_every_visible_tick_with_its_plain_value(low: float, high: float, expected) -> None:
    with figure(3.0) as fig:
        ax = fig.add_subplot()
        ax.plot([0, 1], [low, high])
        ax.set_yscale("log")
        ax.set_ylim(low, high)
        log_ticks(ax.yaxis)
    drawn(fig)

    ticks = visible_tick_labels(ax.yaxis)
    assert [text for _, text in ticks] == expected
    assert all(not text or number_label(loc) == text for loc, text in ticks)
    minor = [tick.label1.get_text() for tick in ax.yaxis.get_minor_ticks()]
    assert not any(minor)


def test_title_text__wraps_at_spaces_to_the_width_and_keeps_line_breaks() -> None:
    title = "Per-class accuracy: entity/registry/mnist-cnn:v13 minus production entity/registry/mnist-cnn:v12\nsplit"

    lines = title_text(title, 5.0, 11).split("\n")

    assert lines[-1] == "split"
    assert " ".join(lines[:-1]) == title.split("\n")[0]  # only spaces became line breaks
    assert all(text_width_in(line, 11) <= 5.0 for line in lines)
    for line, following in itertools.pairwise(lines[:-1]):  # each line is as full as it fits
        assert text_width_in(f"{line} {following.split()[0]}", 11) > 5.0


def test_text_width_in__grows_with_text_and_size() -> None:
    assert 0 < text_width_in("ab", 10) < text_width_in("abcd", 10) < text_width_in("abcd", 20)
    assert text_width_in("abcd", 20) == pytest.approx(2 * text_width_in("abcd", 10), rel=0.1)
    assert np.isclose(text_width_in("a\nabcd", 10), text_width_in("abcd", 10))
