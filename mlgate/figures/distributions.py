"""Distributions of a dataset: label shares per split (PNG and Mermaid), pixel values, and both
against the base (drift).

When data-stats compares with a base, the label distribution and the pixel histogram show the base
next to the head; the drift overlay puts each split's pixel CDF and label shares beside the base's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlgate import numbers
from mlgate.figures.images import CannotDrawFigure
from mlgate.figures.layout import (
    AXES_TITLE_IN,
    MAX_CLASSES_SHOWN,
    plural,
    truncate,
)
from mlgate.figures.style import (
    SMALL_PT,
    TEXT_PT,
    TITLE_PT,
    WIDTH_IN,
    figure,
    log_ticks,
    png,
    text_width_in,
    title_text,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


Histogram = tuple[Sequence[int], Sequence[float]]
"""``(counts, bin_edges)`` as :func:`numpy.histogram` returns them."""


_LEGEND_HANDLE_IN = 0.5  # a legend entry's marker and the gaps around it (2 + 0.8 + 2 em at 9 pt)


def label_distribution(
    label_counts: Mapping[str, Mapping[str, int]], *, base_counts: Mapping[str, Mapping[str, int]] | None = None,
    base_name: str = "base",
) -> bytes:
    """:func:`draw_label_distribution` as PNG bytes."""
    return png(draw_label_distribution(label_counts, base_counts=base_counts, base_name=base_name))


def draw_label_distribution(
    label_counts: Mapping[str, Mapping[str, int]], *, base_counts: Mapping[str, Mapping[str, int]] | None = None,
    base_name: str = "base",
) -> Figure:
    """One grouped bar chart: per label, one bar per split.

    Bars show each label's share of its split (%), not raw counts, so a 60k train split and a 10k
    test split compare directly; the title gives each split's size. With ``base_counts`` (the
    statistics this data is compared with), each bar carries a black line at the base's share of
    that label in the same split, named in the legend.
    """
    labels = _sorted_labels([*label_counts.values(), *(base_counts or {}).values()])
    shares, totals = _split_shares(label_counts, labels)
    base_shares, base_totals = _split_shares(
        {split: counts for split, counts in (base_counts or {}).items() if split in shares and any(counts.values())},
        labels,
    )
    splits = list(shares)
    n = len(labels)
    x = np.arange(n)
    width = 0.8 / len(splits)
    base_label: str | None = _base_label(base_name) + ": " + ", ".join(
        f"{truncate(split)} {total:,} items" for split, total in base_totals.items())
    with figure(4.2, layout="constrained") as fig:
        ax = fig.add_subplot()
        for i, split in enumerate(splits):
            offsets = x + (i - (len(splits) - 1) / 2) * width
            ax.bar(offsets, [shares[split][label] for label in labels], width, label=truncate(split),
                   color=f"C{i}")
            if split in base_shares:
                ax.hlines([base_shares[split][label] for label in labels], offsets - width / 2, offsets + width / 2,
                          colors="black", linewidth=2, label=base_label or "_base")
                base_label = None  # one legend entry for every split's base
        ax.axhline(100 / n, color="0.4", linestyle="--", linewidth=1, label=f"uniform ({_percent(100 / n)}%)")
        _class_ticks(ax, labels, fig.get_figwidth())
        ax.set_xlim(-0.6, n - 0.4)
        ax.tick_params(axis="y", labelsize=SMALL_PT)
        ax.set_ylabel("share of split (%)", fontsize=TEXT_PT)
        ax.set_xlabel("class", fontsize=TEXT_PT)
        sizes = ", ".join(f"{truncate(split)} {totals[split]:,} items" for split in splits)
        title = f"Label distribution: {plural(n, 'class')}; {sizes}"
        ax.set_title(title_text(title, AXES_TITLE_IN), fontsize=TITLE_PT, loc="left")
        _legend_below(fig, ax)
    return fig


def pixel_histogram(
    histograms: Mapping[str, Histogram], *, items: Mapping[str, int] | None = None,
    base: Mapping[str, Histogram] | None = None, base_name: str = "base",
) -> bytes:
    """:func:`draw_pixel_histogram` as PNG bytes."""
    return png(draw_pixel_histogram(histograms, items=items, base=base, base_name=base_name))


def draw_pixel_histogram(
    histograms: Mapping[str, Histogram], *, items: Mapping[str, int] | None = None,
    base: Mapping[str, Histogram] | None = None, base_name: str = "base",
) -> Figure:
    """Overlaid step histograms (density) per split from ``(counts, bin_edges)``.

    ``items`` (items per split) goes into the title. With ``base`` (the base's histograms), each
    split's base is drawn dashed in the split's colour; the legend names the base. The y axis turns
    logarithmic, with plain tick labels, when the tallest bin is more than 20× the median non-empty
    bin (typical of images with a flat background), so the rest of the distribution stays visible.
    """
    if not histograms:
        raise CannotDrawFigure("No histograms were given to draw a pixel histogram.")
    densities = {split: _density(split, counts, edges) for split, (counts, edges) in histograms.items()}
    base_densities = {split: _density(f"{split} (base)", counts, edges)
                      for split, (counts, edges) in (base or {}).items() if split in densities and any(counts)}
    positive = np.concatenate([d[d > 0] for d, _ in [*densities.values(), *base_densities.values()]])
    log_y = positive.max() > 20 * np.median(positive)
    with figure(3.6, layout="constrained") as fig:
        ax = fig.add_subplot()
        for i, (split, (density, bin_edges)) in enumerate(densities.items()):
            ax.stairs(density, bin_edges, label=truncate(split), linewidth=1.6, baseline=None, color=f"C{i}")
            if split in base_densities:
                ax.stairs(*base_densities[split], linewidth=1.3, linestyle="--", baseline=None, color=f"C{i}")
        if log_y:
            ax.set_yscale("log")
            ax.set_ylim(bottom=positive.min() / 2)
            log_ticks(ax.yaxis)
        ax.tick_params(labelsize=SMALL_PT)
        ax.set_xlabel("pixel value (all channels)", fontsize=TEXT_PT)
        ax.set_ylabel("density" + (" (log scale)" if log_y else ""), fontsize=TEXT_PT)
        sizes = ", ".join(truncate(split) + (f" {items[split]:,} items" if items and split in items else "")
                          for split in densities)
        ax.set_title(title_text(f"Pixel value distribution: {sizes}", AXES_TITLE_IN), fontsize=TITLE_PT, loc="left")
        handles, names = ax.get_legend_handles_labels()
        if base_densities:
            # local: matplotlib is slow to import; only drawing needs it
            from matplotlib.lines import Line2D

            handles += [Line2D([], [], color="black", linewidth=1.6),
                        Line2D([], [], color="black", linewidth=1.3, linestyle="--")]
            names += ["head", _base_label(base_name)]
        ax.legend(handles, names, fontsize=SMALL_PT, loc="best", ncols=2 if base_densities else 1)
    return fig


def label_distribution_mermaid(label_counts: Mapping[str, Mapping[str, int]]) -> str:
    """A fenced ```mermaid xychart-beta block of each label's share per split (%).

    Mermaid draws several ``bar`` series on top of each other, so the first split is the bars and
    every other split a line; a front-matter palette fixes the colours the title names.
    """
    labels, shares, totals = _shares(label_counts)
    splits = list(shares)
    colours = ["blue", "orange", "green", "red", "purple", "brown"]
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    named = [
        f"{_mermaid_text(split)} n={totals[split]:,} ({colours[i % len(colours)]})" for i, split in enumerate(splits)
    ]
    title = f"Label share of split (%) - bars: {named[0]}"
    if len(named) > 1:
        title += " - lines: " + ", ".join(named[1:])
    top = max(max(values.values()) for values in shares.values())
    lines = [
        "```mermaid",
        "---",
        "config:",
        "  themeVariables:",
        "    xyChart:",
        f'      plotColorPalette: "{", ".join(palette[i % len(palette)] for i in range(len(splits)))}"',
        "---",
        "xychart-beta",
        f'  title "{title}"',
        "  x-axis [" + ", ".join(f'"{_mermaid_text(truncate(label))}"' for label in labels) + "]",
        f'  y-axis "share of split (%)" 0 --> {math.ceil(top * 1.1)}',
    ]
    for i, split in enumerate(splits):
        kind = "bar" if i == 0 else "line"
        lines.append(f"  {kind} [" + ", ".join(_percent(shares[split][label]) for label in labels) + "]")
    lines.append("```")
    return "\n".join(lines)


def _sorted_labels(label_counts: Sequence[Mapping[str, int]]) -> list[str]:
    """Every label of every split, numerically when all are integers, else alphabetically."""
    names = {str(label) for counts in label_counts for label in counts}
    if not names:
        raise CannotDrawFigure("No label counts were given to draw a label distribution.")
    try:
        return sorted(names, key=int)
    except ValueError:
        return sorted(names)


def _split_shares(
    label_counts: Mapping[str, Mapping[str, int]], labels: Sequence[str]
) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """Share (%) per split and label, and split totals."""
    shares: dict[str, dict[str, float]] = {}
    totals: dict[str, int] = {}
    for split, counts in label_counts.items():
        by_name = {str(label): int(count) for label, count in counts.items()}
        totals[split] = sum(by_name.values())
        if totals[split] <= 0:
            raise CannotDrawFigure(f"Split {split!r} has no labelled samples to draw.")
        shares[split] = {label: 100.0 * by_name.get(label, 0) / totals[split] for label in labels}
    return shares, totals


def _shares(
    label_counts: Mapping[str, Mapping[str, int]],
) -> tuple[list[str], dict[str, dict[str, float]], dict[str, int]]:
    """Sorted labels (numerically when all are integers), share (%) per split and label, split totals."""
    labels = _sorted_labels(list(label_counts.values()))
    return labels, *_split_shares(label_counts, labels)


def _density(split: str, counts: Sequence[int], edges: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Counts per unit of pixel value, so histograms with different bins overlay correctly."""
    c, e = np.asarray(counts, dtype=float), np.asarray(edges, dtype=float)
    if c.ndim != 1 or e.shape != (c.size + 1,) or c.size == 0:
        raise CannotDrawFigure(
            f"Histogram of split {split!r} has {c.size} counts and {e.size} bin edges.",
            hint="Pass (counts, edges) with len(edges) == len(counts) + 1, as numpy.histogram returns.",
        )
    widths = np.diff(e)
    if c.sum() <= 0 or np.any(widths <= 0):
        raise CannotDrawFigure(
            f"Histogram of split {split!r} is empty or its bin edges do not increase.",
            hint="Counts must sum to more than 0 and edges must be strictly increasing.",
        )
    return c / (c.sum() * widths), e


def _class_ticks(ax: Axes, labels: Sequence[str], figure_width_in: float) -> None:
    """One tick label per class, 9 pt; every k-th beyond 50 classes; turned upright when they would
    not fit side by side."""
    n = len(labels)
    step = math.ceil(n / 50)
    shown = [truncate(label) for label in labels[::step]]
    slot_in = ax.get_position().width * figure_width_in * step / n
    widest = max(text_width_in(label, SMALL_PT) for label in shown)
    ax.set_xticks(np.arange(n)[::step], shown, rotation=90 if widest > 0.9 * slot_in else 0, fontsize=SMALL_PT)


def _legend_below(fig: Figure, ax: Axes) -> None:
    """The axes' legend under the plot (inside it hides bars, above it collides with the title), in
    as many columns as fit the figure's width; an entry wider than the figure is wrapped."""
    # local: matplotlib is slow to import; only drawing needs it
    from matplotlib.container import BarContainer

    pairs = sorted(zip(*ax.get_legend_handles_labels(), strict=True),
                   key=lambda pair: not isinstance(pair[0], BarContainer))  # the splits' bars first
    room_in = 0.95 * fig.get_figwidth()
    handles = [handle for handle, _ in pairs]
    names = [title_text(name, room_in - _LEGEND_HANDLE_IN, SMALL_PT) for _, name in pairs]
    widths = [text_width_in(name, SMALL_PT) + _LEGEND_HANDLE_IN for name in names]
    ncols = 1
    for cols in range(len(names), 0, -1):  # matplotlib fills a legend column by column
        rows = math.ceil(len(names) / cols)
        if sum(max(widths[i : i + rows]) for i in range(0, len(names), rows)) <= room_in:
            ncols = cols
            break
    fig.legend(handles, names, fontsize=SMALL_PT, ncols=ncols, loc="outside lower center", frameon=False)


def _mermaid_text(text: str) -> str:
    # a quoted Mermaid string ends at the next '"'; a backtick run could close the Markdown fence
    return " ".join(text.replace('"', "'").replace("`", "'").split())


def _percent(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


_DRIFT_ROW_IN = 2.5
_MAX_DRIFT_SPLITS = 4


def drift_overlay(
    histograms: Mapping[str, Histogram], base_histograms: Mapping[str, Histogram],
    label_counts: Mapping[str, Mapping[str, int]], base_counts: Mapping[str, Mapping[str, int]], *,
    ks: Mapping[str, tuple[float, float]], tvd: Mapping[str, float], base_name: str = "base",
) -> bytes:
    """:func:`draw_drift_overlay` as PNG bytes."""
    return png(draw_drift_overlay(histograms, base_histograms, label_counts, base_counts, ks=ks, tvd=tvd,
                                  base_name=base_name))


def draw_drift_overlay(
    histograms: Mapping[str, Histogram], base_histograms: Mapping[str, Histogram],
    label_counts: Mapping[str, Mapping[str, int]], base_counts: Mapping[str, Mapping[str, int]], *,
    ks: Mapping[str, tuple[float, float]], tvd: Mapping[str, float], base_name: str = "base",
) -> Figure:
    """One row per split compared with the base (at most four): left, the cumulative distribution of
    pixel values, head solid and base dashed, with the Kolmogorov–Smirnov gap (``ks``: split ->
    (statistic, pixel value where it is largest)) drawn as a red bar; right, each class's share of
    the split, base beside head (``tvd``: split -> total variation distance, in the panel's title)."""

    splits = [s for s in histograms if s in base_histograms or s in base_counts][:_MAX_DRIFT_SPLITS]
    if not splits:
        raise CannotDrawFigure("No split is in both the head and the base: there is no drift to draw.")
    base_label = _base_label(base_name)
    with figure(0.7 + _DRIFT_ROW_IN * len(splits), layout="constrained") as fig:
        axes = fig.subplots(len(splits), 2, squeeze=False, gridspec_kw={"width_ratios": [1, 1.3]})
        for row, split in enumerate(splits):
            left, right = axes[row]
            if split in histograms and split in base_histograms:
                for (counts, edges), style, label in ((base_histograms[split], "--", base_label),
                                                      (histograms[split], "-", "head")):
                    c, e = np.asarray(counts, dtype=float), np.asarray(edges, dtype=float)
                    cdf = np.concatenate([[0.0], np.cumsum(c)]) / max(c.sum(), 1.0)
                    left.plot(e, cdf, style, color="0.3" if style == "--" else "C0", linewidth=1.5, label=label)
                if split in ks:
                    statistic, at = ks[split]
                    values = [float(np.interp(at, np.asarray(e, dtype=float),
                                              np.concatenate([[0.0], np.cumsum(c)]) / max(sum(c), 1)))
                              for c, e in (base_histograms[split], histograms[split])]
                    left.vlines(at, min(values), max(values), colors="#c00000", linewidth=2.5,
                                label=f"KS {numbers.number(statistic)}")
                left.set_ylim(-0.02, 1.02)
                left.legend(fontsize=SMALL_PT, loc="lower right")
            else:
                left.set_axis_off()
            left.set_title(f"{truncate(split)}: pixel values (CDF)", fontsize=TEXT_PT, loc="left")
            left.set_xlabel("pixel value (all channels)", fontsize=SMALL_PT)
            left.set_ylabel("share of pixels ≤ x", fontsize=SMALL_PT)
            left.tick_params(labelsize=SMALL_PT)
            if split in label_counts and split in base_counts and any(base_counts[split].values()):
                labels = _sorted_labels([label_counts[split], base_counts[split]])[:MAX_CLASSES_SHOWN]
                shares, _ = _split_shares({"head": label_counts[split], "base": base_counts[split]}, labels)
                x = np.arange(len(labels))
                right.bar(x - 0.2, [shares["base"][label] for label in labels], 0.4, color="0.6", label=base_label)
                right.bar(x + 0.2, [shares["head"][label] for label in labels], 0.4, color="C0", label="head")
                top = max(max(shares["base"].values()), max(shares["head"].values()))
                right.set_ylim(0, top * 1.4)  # room for the legend above the bars
                right.set_xticks(x, [truncate(label, 8) for label in labels], fontsize=SMALL_PT,
                                 rotation=90 if len(labels) > 12 else 0)
                right.tick_params(axis="y", labelsize=SMALL_PT)
                right.set_ylabel("share of split (%)", fontsize=SMALL_PT)
                right.legend(fontsize=SMALL_PT, loc="upper right")
                moved = f"; TVD {numbers.percent(tvd[split])}" if split in tvd else ""
                right.set_title(f"{truncate(split)}: label shares{moved}", fontsize=TEXT_PT, loc="left")
            else:
                right.set_axis_off()
        fig.suptitle(title_text(f"Drift against {truncate(base_name, 40)}: head (solid, blue) vs base "
                                f"(dashed, grey)", WIDTH_IN - 0.4), fontsize=TITLE_PT)
    return fig


def _base_label(base_name: str) -> str:
    """The legend's name for the base: ``base main``; just ``base`` when it is called that (a
    ``baseline-data`` folder named ``base``), never ``base base``."""
    name = truncate(base_name, 40)
    return "base" if name.strip().lower() in {"", "base"} else f"base {name}"
