"""The data-stats figures: PNG bytes (or a Mermaid block) from plain values.

Every figure is drawn with the one setup of :mod:`mlgate.figures.style` (at most 800 px wide,
``default`` style whatever the user's ``matplotlibrc``, deterministic PNG bytes), with text >= 9 pt,
and titled with what it shows, of which split and how many. Each ``draw_*`` function returns the
:class:`~matplotlib.figure.Figure` (what a test inspects); the function of the same name without
``draw_`` returns its PNG bytes. When data-stats compares with a base, the label distribution and
the pixel histogram show the base next to the head.

:func:`display_samples` is the torch half of the sample grid and runs in the caller's process; every
other function needs no torch, so :mod:`mlgate.figures.worker` can run it in a second process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlgate.errors import MlgateError
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
    import torch
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_CLASSES_SHOWN = 20
_MAX_CELL_PX = 128  # larger images are area-downsampled before the grid is composed
_LABEL_CHARS = 16
# sample grid geometry, in inches
_MAX_CELL_IN = 1.0  # one image, at most
_MAX_GRID_IN = 6.5  # the tallest a panel of rows gets before classes go to a panel beside it
_MAX_PANELS = 4
_MARGIN_IN = 0.1
_PANEL_GAP_IN = 0.3
_LABEL_PAD_IN = 0.12
_TITLE_IN = 0.5
_LEGEND_HANDLE_IN = 0.5  # a legend entry's marker and the gaps around it (2 + 0.8 + 2 em at 9 pt)
_AXES_TITLE_IN = WIDTH_IN - 0.8  # an axes title starts at the axes, right of the y label

Histogram = tuple[Sequence[int], Sequence[float]]
"""``(counts, bin_edges)`` as :func:`numpy.histogram` returns them."""


class CannotDrawFigure(MlgateError):
    """Raised when a figure's input is empty or has a shape no figure can show."""

    title = "Cannot draw figure"


# ---------------------------------------------------------------------------------------------
# public figures


def sample_grid(
    samples: Mapping[int, torch.Tensor], class_names: Sequence[str] | None = None, *, per_class: int = 4,
    split: str = "train",
) -> bytes:
    """One row of up to ``per_class`` images per class (at most 20 classes), as PNG bytes.

    ``samples`` maps a label to a tensor ``(k, *item_shape)``; items are ``(H, W)``, ``(C, H, W)``
    or ``(H, W, C)`` with ``C`` in 1, 3, 4 (the 4th channel is dropped). ``uint8`` is shown as
    0..255; any other dtype is stretched per image to its own min..max.
    """
    if per_class < 1:
        raise CannotDrawFigure(f"per_class={per_class} cannot show any sample.", hint="Use per_class >= 1.")
    if not samples:
        raise CannotDrawFigure("No samples were given to draw a sample grid.")
    return sample_grid_of_displays(display_samples(samples, per_class=per_class), class_names,
                                   per_class=per_class, split=split)


def display_samples(samples: Mapping[int, torch.Tensor], *, per_class: int = 4) -> dict[int, list[np.ndarray]]:
    """The torch half of :func:`sample_grid`: each shown sample as an ``(H, W, 3)`` float array in 0..1,
    for every label (the grid shows the first ``MAX_CLASSES_SHOWN``)."""
    return {
        label: [_display_image(image, label) for image in samples[label][:per_class]] if n < MAX_CLASSES_SHOWN else []
        for n, label in enumerate(sorted(samples))
    }


def sample_grid_of_displays(
    displays: Mapping[int, Sequence[np.ndarray]], class_names: Sequence[str] | None = None, *, per_class: int = 4,
    split: str = "train",
) -> bytes:
    """The matplotlib half of :func:`sample_grid` (needs no torch, so it can run in a figure worker)."""
    return png(draw_sample_grid(displays, class_names, per_class=per_class, split=split))


def draw_sample_grid(
    displays: Mapping[int, Sequence[np.ndarray]], class_names: Sequence[str] | None = None, *, per_class: int = 4,
    split: str = "train",
) -> Figure:
    """:func:`sample_grid_of_displays` as a figure, sized to its content.

    Rows of classes go into up to four panels side by side, as many as make the images largest
    within 800 px of width and about 650 px of grid height; the canvas is then cut to the panels
    (and the title), so a few classes make a small figure rather than a mostly white one.
    """
    if not displays:
        raise CannotDrawFigure("No samples were given to draw a sample grid.")
    labels = sorted(displays)
    shown = labels[:MAX_CLASSES_SHOWN]
    rows = [list(displays[label])[:per_class] for label in shown]
    cols = max(len(row) for row in rows)
    if cols == 0:
        raise CannotDrawFigure("Every class given to the sample grid has 0 samples.")
    mosaic = _mosaic(rows, cols)
    step_h = mosaic.shape[0] // len(shown)
    aspect = (mosaic.shape[1] / cols) / step_h  # cell width / height
    names = [_class_label(label, class_names) for label in shown]
    panels, per_panel, cell_h, font_pt, label_in = _grid_layout(names, cols, aspect)
    cell_w = cell_h * aspect
    panel_in = label_in + cols * cell_w
    content_in = panels * panel_in + (panels - 1) * _PANEL_GAP_IN + 2 * _MARGIN_IN

    every = "" if all(len(row) == cols for row in rows) else "up to "
    classes = _plural(len(shown), "class") if len(labels) == len(shown) else \
        f"first {len(shown)} of {len(labels)} classes"
    title = f"{_capitalised(_truncate(split))} samples: {every}{cols} per class, {classes}"
    width_in = min(WIDTH_IN, max(content_in, text_width_in(title, TITLE_PT) + 2 * _MARGIN_IN))
    grid_top_in = _MARGIN_IN + per_panel * cell_h
    height_in = grid_top_in + _TITLE_IN
    first_left_in = (width_in - content_in) / 2 + _MARGIN_IN

    with figure(height_in, width_in=width_in) as fig:
        for panel in range(panels):
            first = panel * per_panel
            panel_labels = shown[first : first + per_panel]
            grid_left_in = first_left_in + panel * (panel_in + _PANEL_GAP_IN) + label_in
            ax = fig.add_axes((
                grid_left_in / width_in,
                (grid_top_in - len(panel_labels) * cell_h) / height_in,
                cols * cell_w / width_in,
                len(panel_labels) * cell_h / height_in,
            ))
            block = mosaic[first * step_h : (first + len(panel_labels)) * step_h]
            ax.imshow(block, vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_axis_off()
            for row in range(len(panel_labels)):
                fig.text((grid_left_in - _LABEL_PAD_IN / 2) / width_in,
                         (grid_top_in - (row + 0.5) * cell_h) / height_in,
                         names[first + row], ha="right", va="center", fontsize=font_pt)
        fig.text(0.5, 1 - _TITLE_IN / 2 / height_in, title, ha="center", va="center", fontsize=TITLE_PT)
    return fig


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
        f"{_truncate(split)} {total:,} items" for split, total in base_totals.items())
    with figure(4.2, layout="constrained") as fig:
        ax = fig.add_subplot()
        for i, split in enumerate(splits):
            offsets = x + (i - (len(splits) - 1) / 2) * width
            ax.bar(offsets, [shares[split][label] for label in labels], width, label=_truncate(split),
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
        sizes = ", ".join(f"{_truncate(split)} {totals[split]:,} items" for split in splits)
        title = f"Label distribution: {_plural(n, 'class')}; {sizes}"
        ax.set_title(title_text(title, _AXES_TITLE_IN), fontsize=TITLE_PT, loc="left")
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
            ax.stairs(density, bin_edges, label=_truncate(split), linewidth=1.6, baseline=None, color=f"C{i}")
            if split in base_densities:
                ax.stairs(*base_densities[split], linewidth=1.3, linestyle="--", baseline=None, color=f"C{i}")
        if log_y:
            ax.set_yscale("log")
            ax.set_ylim(bottom=positive.min() / 2)
            log_ticks(ax.yaxis)
        ax.tick_params(labelsize=SMALL_PT)
        ax.set_xlabel("pixel value (all channels)", fontsize=TEXT_PT)
        ax.set_ylabel("density" + (" (log scale)" if log_y else ""), fontsize=TEXT_PT)
        sizes = ", ".join(_truncate(split) + (f" {items[split]:,} items" if items and split in items else "")
                          for split in densities)
        ax.set_title(title_text(f"Pixel value distribution: {sizes}", _AXES_TITLE_IN), fontsize=TITLE_PT, loc="left")
        handles, names = ax.get_legend_handles_labels()
        if base_densities:
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
        "  x-axis [" + ", ".join(f'"{_mermaid_text(_truncate(label))}"' for label in labels) + "]",
        f'  y-axis "share of split (%)" 0 --> {math.ceil(top * 1.1)}',
    ]
    for i, split in enumerate(splits):
        kind = "bar" if i == 0 else "line"
        lines.append(f"  {kind} [" + ", ".join(_percent(shares[split][label]) for label in labels) + "]")
    lines.append("```")
    return "\n".join(lines)


def loss_curve(losses: Sequence[float], *, title: str = "Sanity baseline: training loss", step_every: int = 1) -> bytes:
    """:func:`draw_loss_curve` as PNG bytes."""
    return png(draw_loss_curve(losses, title=title, step_every=step_every))


def draw_loss_curve(losses: Sequence[float], *, title: str = "Sanity baseline: training loss",
                    step_every: int = 1) -> Figure:
    """Training loss per logged point, each the mean of ``step_every`` training steps (raw, plus a
    moving average when there are many points); the x axis counts training steps."""
    values = np.asarray(losses, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise CannotDrawFigure("No losses were given to draw a loss curve.")
    steps = np.arange(1, values.size + 1) * max(1, step_every)
    finite = values[np.isfinite(values)]
    log_y = finite.size > 0 and finite.min() > 0 and finite.max() > 50 * finite.min()
    with figure(3.2, layout="constrained") as fig:
        ax = fig.add_subplot()
        many = values.size > 50
        ax.plot(steps, values, linewidth=1, alpha=0.35 if many else 1.0, color="C0",
                label="loss" if many else None)
        if many:
            window = max(2, values.size // 20)
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            first = (window - 1) // 2  # centred, so the average does not lag behind the raw curve
            ax.plot(steps[first : first + smooth.size], smooth, linewidth=2, color="C0",
                    label=f"moving average of {window} points")
            ax.legend(fontsize=SMALL_PT, loc="upper right")
        if log_y:
            ax.set_yscale("log")
            log_ticks(ax.yaxis)
        ax.tick_params(labelsize=SMALL_PT)
        ax.set_xlabel("training step" + (f" (each point: mean of {step_every} steps)" if step_every > 1 else ""),
                      fontsize=TEXT_PT)
        ax.set_ylabel("loss" + (" (log scale)" if log_y else ""), fontsize=TEXT_PT)
        ax.set_title(title_text(title, _AXES_TITLE_IN), fontsize=TITLE_PT, loc="left")
    return fig


def display_images(images: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """The torch half of :func:`leaked_pairs`: each item as an ``(H, W, 3)`` float array in 0..1 (as in
    the sample grid). Raises :class:`CannotDrawFigure` for items that are not images."""
    return [_display_image(image, -1) for image in images]


LeakedPair = tuple[str, int | str, int, int | str, int]
"""``(split, item, label, train item, train label)`` of one leaked item: items are indices within
their split or file paths relative to the data folder (ImageFolder)."""

_PAIRS_PER_ROW = 4
_PAIR_GAP_IN = 0.35  # between two pairs
_EQUALS_IN = 0.25  # between an item and its train copy, where the "=" goes
_HEADER_IN = 0.42  # two 9 pt lines above each image: split, item
_FOOTER_IN = 0.3  # one 9 pt line below each image: label


def leaked_pairs(
    images: Sequence[np.ndarray], pairs: Sequence[LeakedPair], class_names: Sequence[str] | None = None, *,
    total: int,
) -> bytes:
    """Leaked items beside their train copies, as PNG bytes: :func:`draw_leaked_pairs`."""
    return png(draw_leaked_pairs(images, pairs, class_names, total=total))


def draw_leaked_pairs(
    images: Sequence[np.ndarray], pairs: Sequence[LeakedPair], class_names: Sequence[str] | None = None, *,
    total: int,
) -> Figure:
    """Each leaked item (left) beside its copy in train (right), up to four pairs per row, each image
    headed by its split and item and footed by its label (red where the two labels differ).

    ``images`` are displayable ``(H, W, 3)`` arrays (:func:`display_images`), one per pair: an item
    and its train copy are exact copies, so one array shows both. ``total`` is the number of leaked
    items in all; the title says how many of them are shown. Everything is drawn on one axes spanning
    the figure, in inches (an axes per image would cost most of the time).
    """

    if not images:
        raise CannotDrawFigure("No leaked items were given to draw.")
    if len(images) != len(pairs):
        raise CannotDrawFigure(f"{len(images)} images were given for {len(pairs)} leaked items.")
    n = len(pairs)
    rows = math.ceil(n / _PAIRS_PER_ROW)
    cols = math.ceil(n / rows)  # balanced: 5 pairs are 3 + 2, not 4 + 1
    margin_in = 2 * _MARGIN_IN  # a caption may be wider than its image
    cell = min(_MAX_CELL_IN * 1.1, (WIDTH_IN - 2 * margin_in - (cols - 1) * _PAIR_GAP_IN - cols * _EQUALS_IN)
               / (2 * cols))
    pair_in = 2 * cell + _EQUALS_IN
    content_in = cols * pair_in + (cols - 1) * _PAIR_GAP_IN + 2 * margin_in
    splits = list(dict.fromkeys(split for split, *_ in pairs))
    shown = f"all {n}" if total <= n else f"first {n} of {total:,}"
    title = f"{_capitalised(', '.join(splits))} items that are exact copies of train items: {shown}"
    width_in = min(WIDTH_IN, max(content_in, text_width_in(title, TITLE_PT) + 2 * margin_in))
    title = title_text(title, width_in - 2 * margin_in)
    title_in = _TITLE_IN + title.count("\n") * TITLE_PT * 1.2 / 72
    row_in = _HEADER_IN + cell + _FOOTER_IN
    height_in = title_in + rows * row_in + _MARGIN_IN
    left_in = (width_in - content_in) / 2 + margin_in
    caption_in = cell + 0.9 * _EQUALS_IN  # the widest a caption may get before it runs into the next
    pad_in = 0.05

    with figure(height_in, width_in=width_in) as fig:
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_axis_off()
        for k, (image, (split, item, label, train_item, train_label)) in enumerate(zip(images, pairs, strict=True)):
            row, col = divmod(k, cols)
            top_in = height_in - title_in - row * row_in - _HEADER_IN
            x_in = left_in + col * (pair_in + _PAIR_GAP_IN)
            colour = "#c00000" if label != train_label else "black"
            for side, (side_split, side_item, side_label) in enumerate(
                ((split, item, label), ("train", train_item, train_label))
            ):
                centre = (x_in + side * (cell + _EQUALS_IN) + cell / 2, top_in - cell / 2)
                _draw_captioned(ax, image, centre, cell, (side_split, side_item, side_label), class_names,
                                caption_in=caption_in, pad_in=pad_in, colour=colour)
            ax.text(x_in + cell + _EQUALS_IN / 2, top_in - cell / 2, "=", ha="center", va="center", fontsize=TITLE_PT)
        ax.set_xlim(0.0, width_in)
        ax.set_ylim(0.0, height_in)
        fig.text(0.5, 1 - title_in / 2 / height_in, title, ha="center", va="center", fontsize=TITLE_PT)
    return fig


def _draw_captioned(ax: Axes, image: np.ndarray, centre: tuple[float, float], cell: float,
                    who: tuple[str, int | str, int], class_names: Sequence[str] | None, *, caption_in: float,
                    pad_in: float, colour: str) -> None:
    """One image of a pair, fitted into a ``cell``-inch square at ``centre`` (inches) and framed, with its
    split and item above and its label below (in ``colour``)."""
    from matplotlib.patches import Rectangle

    split, item, label = who
    centre_x, centre_y = centre
    scale = cell / max(image.shape[:2])
    h_in, w_in = image.shape[0] * scale, image.shape[1] * scale
    ax.imshow(image, extent=(centre_x - w_in / 2, centre_x + w_in / 2, centre_y - h_in / 2, centre_y + h_in / 2),
              vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    ax.add_patch(Rectangle((centre_x - w_in / 2, centre_y - h_in / 2), w_in, h_in, fill=False, edgecolor="0.6",
                           linewidth=0.8))
    ax.text(centre_x, centre_y + h_in / 2 + pad_in, f"{split}\n{_item_caption(split, item, caption_in)}",
            ha="center", va="bottom", fontsize=SMALL_PT)
    label_text = _class_label(label, class_names) if class_names else f"label {label}"
    ax.text(centre_x, centre_y - h_in / 2 - pad_in, _fit(label_text, caption_in), ha="center", va="top",
            fontsize=SMALL_PT, color=colour)


def _item_caption(split: str, item: int | str, width_in: float) -> str:
    """``item 17``, or a file path without its split folder, cut from the left to fit ``width_in``."""
    if isinstance(item, int):
        return f"item {item}"
    return _fit(item.removeprefix(f"{split}/"), width_in, keep_end=True)


def _fit(text: str, width_in: float, *, keep_end: bool = False) -> str:
    """``text`` no wider than ``width_in`` at 9 pt: cut at the end, or (``keep_end``, for a file path)
    at the start, where an ellipsis marks the cut."""
    if text_width_in(text, SMALL_PT) <= width_in:
        return text
    while len(text) > 1:
        text = text[1:] if keep_end else text[:-1]
        cut = "…" + text if keep_end else text + "…"
        if text_width_in(cut, SMALL_PT) <= width_in:
            return cut
    return text


NearGroup = tuple[tuple[tuple[str, int | str, int], ...], float, int]
"""``(members, distance, size)`` of one near-duplicate group: each member ``(split, item, label)``, the
largest pixel distance that joins the group, and how many items it holds in all."""
_GROUP_LEFT_IN = 1.1  # the row's caption: group size and distance
_GROUP_GAP_IN = 0.12  # between two members


def near_groups(
    images: Sequence[np.ndarray], groups: Sequence[NearGroup], class_names: Sequence[str] | None = None, *,
    total: int, leaked: bool, threshold: float,
) -> bytes:
    """Near-duplicate groups, a row each, as PNG bytes: :func:`draw_near_groups`."""
    return png(draw_near_groups(images, groups, class_names, total=total, leaked=leaked, threshold=threshold))


def draw_near_groups(
    images: Sequence[np.ndarray], groups: Sequence[NearGroup], class_names: Sequence[str] | None = None, *,
    total: int, leaked: bool, threshold: float,
) -> Figure:
    """One row per group: its members side by side (up to 8), each headed by its split and item and
    footed by its label (red where the labels of a row differ), the row captioned on the left with the
    group's size and the largest distance joining it.

    ``images`` holds one displayable array per member shown, row after row. ``total`` counts every
    group (``leaked``: near-leaked items, each shown beside its closest train item); the title says
    how many are shown and the distance limit ``threshold``.
    """
    from mlgate.numbers import number, typed

    if not groups:
        raise CannotDrawFigure("No near-duplicate groups were given to draw.")
    if len(images) != sum(len(members) for members, _, _ in groups):
        raise CannotDrawFigure(f"{len(images)} images were given for {len(groups)} near-duplicate groups.")
    cols = max(len(members) for members, _, _ in groups)
    margin_in = 2 * _MARGIN_IN
    cell = min(_MAX_CELL_IN, (WIDTH_IN - 2 * margin_in - _GROUP_LEFT_IN - (cols - 1) * _GROUP_GAP_IN) / cols)
    content_in = _GROUP_LEFT_IN + cols * cell + (cols - 1) * _GROUP_GAP_IN + 2 * margin_in
    shown = f"all {len(groups)}" if total <= len(groups) else f"first {len(groups)} of {total:,}"
    if leaked:
        splits = list(dict.fromkeys(members[0][0] for members, _, _ in groups))
        title = f"{_capitalised(', '.join(splits))} items that are near copies of train items: {shown}"
    else:
        title = f"Near-duplicate groups within splits, largest first: {shown}"
    title += f"\n(each row one picture; pixel distance ≤ {typed(threshold)}, 0 = same picture)"
    width_in = min(WIDTH_IN, max(content_in, max(text_width_in(line, TITLE_PT) for line in title.split("\n"))
                                 + 2 * margin_in))
    title = "\n".join(title_text(line, width_in - 2 * margin_in) for line in title.split("\n"))
    title_in = _TITLE_IN + title.count("\n") * TITLE_PT * 1.2 / 72
    row_in = _HEADER_IN + cell + _FOOTER_IN
    height_in = title_in + len(groups) * row_in + _MARGIN_IN
    left_in = (width_in - content_in) / 2 + margin_in
    caption_in = cell + _GROUP_GAP_IN

    with figure(height_in, width_in=width_in) as fig:
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_axis_off()
        k = 0
        for row, (members, distance, size) in enumerate(groups):
            top_in = height_in - title_in - row * row_in - _HEADER_IN
            colour = "#c00000" if len({label for _, _, label in members}) > 1 else "black"
            what = "leaked" if leaked else f"{size:,} items"
            ax.text(left_in, top_in - cell / 2, f"{what}\n≤ {number(distance)}", ha="left", va="center",
                    fontsize=SMALL_PT, color="0.3")
            for col, who in enumerate(members):
                centre = (left_in + _GROUP_LEFT_IN + col * (cell + _GROUP_GAP_IN) + cell / 2, top_in - cell / 2)
                _draw_captioned(ax, images[k], centre, cell, who, class_names, caption_in=caption_in, pad_in=0.05,
                                colour=colour)
                k += 1
        ax.set_xlim(0.0, width_in)
        ax.set_ylim(0.0, height_in)
        fig.text(0.5, 1 - title_in / 2 / height_in, title, ha="center", va="center", fontsize=TITLE_PT)
    return fig


LabelError = tuple[int | str, int, int, float]
"""``(item, given label, suggested label, confidence in the suggested label)`` of one flagged item."""

_ERRORS_PER_ROW = 6
_ERROR_GAP_IN = 0.25  # between two items
_ERROR_HEADER_IN = 0.25  # one 9 pt line above each image: the item
_ERROR_FOOTER_IN = 0.6  # three 9 pt lines below each image: given label, suggested label, confidence


def label_error_grid(
    images: Sequence[np.ndarray], errors: Sequence[LabelError], class_names: Sequence[str] | None = None, *,
    split: str = "train", total: int,
) -> bytes:
    """Likely label errors with their given and suggested labels, as PNG bytes: :func:`draw_label_error_grid`."""
    return png(draw_label_error_grid(images, errors, class_names, split=split, total=total))


def draw_label_error_grid(
    images: Sequence[np.ndarray], errors: Sequence[LabelError], class_names: Sequence[str] | None = None, *,
    split: str = "train", total: int,
) -> Figure:
    """The flagged items, least believable label first, up to six per row: each image headed by its
    item and footed by its given label and (red) the label the model suggests, with its confidence.

    ``images`` are displayable ``(H, W, 3)`` arrays (:func:`display_images`), one per error; ``total``
    counts every flagged item, and the title says how many of them are shown.
    """
    from matplotlib.patches import Rectangle

    from mlgate.numbers import percent

    if not images:
        raise CannotDrawFigure("No flagged items were given to draw.")
    if len(images) != len(errors):
        raise CannotDrawFigure(f"{len(images)} images were given for {len(errors)} flagged items.")
    n = len(errors)
    rows = math.ceil(n / _ERRORS_PER_ROW)
    cols = math.ceil(n / rows)  # balanced: 8 items are 4 + 4, not 6 + 2
    margin_in = 2 * _MARGIN_IN
    cell = min(_MAX_CELL_IN, (WIDTH_IN - 2 * margin_in - (cols - 1) * _ERROR_GAP_IN) / cols)
    content_in = cols * cell + (cols - 1) * _ERROR_GAP_IN + 2 * margin_in
    shown = f"all {n}" if total <= n else f"{n} least believable of {total:,}"
    title = f"Likely label errors in {split} ({shown}): given label → suggested"
    width_in = min(WIDTH_IN, max(content_in, text_width_in(title, TITLE_PT) + 2 * margin_in))
    title = title_text(title, width_in - 2 * margin_in)
    title_in = _TITLE_IN + title.count("\n") * TITLE_PT * 1.2 / 72
    row_in = _ERROR_HEADER_IN + cell + _ERROR_FOOTER_IN
    height_in = title_in + rows * row_in + _MARGIN_IN
    left_in = (width_in - content_in) / 2 + margin_in
    caption_in = cell + 0.9 * _ERROR_GAP_IN
    pad_in = 0.05

    def name(label: int) -> str:  # "7", "7: seven"; a name that starts with its label alone ("7 - seven")
        if not class_names or not 0 <= label < len(class_names):
            return str(label)
        text = str(class_names[label])
        return text if text.startswith(str(label)) and not text[len(str(label)):][:1].isalnum() else f"{label}: {text}"

    with figure(height_in, width_in=width_in) as fig:
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_axis_off()
        for k, (image, (item, given, suggested, confidence)) in enumerate(zip(images, errors, strict=True)):
            row, col = divmod(k, cols)
            top_in = height_in - title_in - row * row_in - _ERROR_HEADER_IN
            centre_x, centre_y = left_in + col * (cell + _ERROR_GAP_IN) + cell / 2, top_in - cell / 2
            scale = cell / max(image.shape[:2])
            h_in, w_in = image.shape[0] * scale, image.shape[1] * scale
            ax.imshow(image, extent=(centre_x - w_in / 2, centre_x + w_in / 2, centre_y - h_in / 2,
                                     centre_y + h_in / 2), vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
            ax.add_patch(Rectangle((centre_x - w_in / 2, centre_y - h_in / 2), w_in, h_in, fill=False,
                                   edgecolor="0.6", linewidth=0.8))
            ax.text(centre_x, centre_y + h_in / 2 + pad_in, _item_caption(split, item, caption_in), ha="center",
                    va="bottom", fontsize=SMALL_PT)
            ax.text(centre_x, centre_y - h_in / 2 - pad_in, _fit(f"given {name(given)}", caption_in), ha="center",
                    va="top", fontsize=SMALL_PT)
            line_in = SMALL_PT * 1.25 / 72
            ax.text(centre_x, centre_y - h_in / 2 - pad_in - line_in, _fit(f"→ {name(suggested)}", caption_in),
                    ha="center", va="top", fontsize=SMALL_PT, color="#c00000")
            ax.text(centre_x, centre_y - h_in / 2 - pad_in - 2 * line_in, f"{percent(confidence)} sure",
                    ha="center", va="top", fontsize=SMALL_PT, color="0.35")
        ax.set_xlim(0.0, width_in)
        ax.set_ylim(0.0, height_in)
        fig.text(0.5, 1 - title_in / 2 / height_in, title, ha="center", va="center", fontsize=TITLE_PT)
    return fig


# ---------------------------------------------------------------------------------------------
# helpers


def _display_image(image: torch.Tensor, label: int) -> np.ndarray:
    """``(H, W, 3)`` float in 0..1 from any supported item layout and dtype."""
    import torch

    x = image.detach().cpu()
    if x.ndim == 3 and x.shape[-1] in (1, 3, 4) and x.shape[0] not in (1, 3, 4):
        x = x.permute(2, 0, 1)  # channel-last -> channel-first
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3 or x.shape[0] not in (1, 3, 4):
        raise CannotDrawFigure(
            f"Samples of label {label} have item shape {tuple(image.shape)}; a sample grid shows images only.",
            hint="Pass items shaped (H, W), (C, H, W) or (H, W, C) with C in 1, 3 or 4, or skip the grid.",
        )
    x = x[:3]
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    else:
        x = torch.nan_to_num(x.double()).float()
        low, high = x.min(), x.max()
        x = (x - low) / (high - low) if high > low else torch.full_like(x, 0.5)
    if max(x.shape[1:]) > _MAX_CELL_PX:
        scale = _MAX_CELL_PX / max(x.shape[1:])
        size = (max(1, round(x.shape[1] * scale)), max(1, round(x.shape[2] * scale)))
        x = torch.nn.functional.interpolate(x.unsqueeze(0), size=size, mode="area").squeeze(0)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x.permute(1, 2, 0).numpy()


def _mosaic(rows: list[list[np.ndarray]], cols: int) -> np.ndarray:
    """All images on one white canvas: a single ``imshow`` is far faster than one axes per image."""
    images = [image for row in rows for image in row]
    cell_h = max((image.shape[0] for image in images), default=1)
    cell_w = max((image.shape[1] for image in images), default=1)
    pad = max(1, max(cell_h, cell_w) // 14)
    step_h, step_w = cell_h + 2 * pad, cell_w + 2 * pad
    canvas = np.ones((len(rows) * step_h, cols * step_w, 3), dtype=np.float32)
    for r, row in enumerate(rows):
        for c, image in enumerate(row[:cols]):
            h, w = image.shape[:2]
            top = r * step_h + pad + (cell_h - h) // 2
            left = c * step_w + pad + (cell_w - w) // 2
            canvas[top : top + h, left : left + w] = image
    return canvas


def _class_label(label: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return f"{label}: {_truncate(str(class_names[label]))}"
    return str(label)


def _truncate(text: str, chars: int = _LABEL_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _base_label(base_name: str) -> str:
    """The legend's name for the base: ``base main``; just ``base`` when it is called that (a
    ``baseline-data`` folder named ``base``), never ``base base``."""
    name = _truncate(base_name, 40)
    return "base" if name.strip().lower() in {"", "base"} else f"base {name}"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "es" if noun.endswith("s") else "s")


def _grid_layout(names: Sequence[str], cols: int, aspect: float) -> tuple[int, int, float, float, float]:
    """Panels, rows per panel, cell height (in), label font size (pt) and label column width (in)
    that make the sample grid's images largest; fewer panels unless more make images 5 % larger."""
    best: tuple[int, int, float, float, float] | None = None
    n = len(names)
    for wanted in range(1, min(_MAX_PANELS, n) + 1):
        per_panel = math.ceil(n / wanted)
        panels = math.ceil(n / per_panel)
        if best is not None and panels == best[0]:
            continue
        font_pt = TEXT_PT if panels == 1 else SMALL_PT
        label_in = max(text_width_in(name, font_pt) for name in names) + _LABEL_PAD_IN
        free_in = WIDTH_IN - 2 * _MARGIN_IN - panels * label_in - (panels - 1) * _PANEL_GAP_IN
        cell_h = min(_MAX_CELL_IN, free_in / (panels * cols * aspect), _MAX_GRID_IN / per_panel)
        if best is None or cell_h > 1.05 * best[2]:
            best = (panels, per_panel, cell_h, font_pt, label_in)
    assert best is not None
    return best


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
    shown = [_truncate(label) for label in labels[::step]]
    slot_in = ax.get_position().width * figure_width_in * step / n
    widest = max(text_width_in(label, SMALL_PT) for label in shown)
    ax.set_xticks(np.arange(n)[::step], shown, rotation=90 if widest > 0.9 * slot_in else 0, fontsize=SMALL_PT)


def _legend_below(fig: Figure, ax: Axes) -> None:
    """The axes' legend under the plot (inside it hides bars, above it collides with the title), in
    as many columns as fit the figure's width; an entry wider than the figure is wrapped."""
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


# ---------------------------------------------------------------------------------------------
# drift against the base


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
    from mlgate import numbers

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
            left.set_title(f"{_truncate(split)}: pixel values (CDF)", fontsize=TEXT_PT, loc="left")
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
                right.set_xticks(x, [_truncate(label, 8) for label in labels], fontsize=SMALL_PT,
                                 rotation=90 if len(labels) > 12 else 0)
                right.tick_params(axis="y", labelsize=SMALL_PT)
                right.set_ylabel("share of split (%)", fontsize=SMALL_PT)
                right.legend(fontsize=SMALL_PT, loc="upper right")
                moved = f"; TVD {numbers.percent(tvd[split])}" if split in tvd else ""
                right.set_title(f"{_truncate(split)}: label shares{moved}", fontsize=TEXT_PT, loc="left")
            else:
                right.set_axis_off()
        fig.suptitle(title_text(f"Drift against {_truncate(base_name, 40)}: head (solid, blue) vs base "
                                f"(dashed, grey)", WIDTH_IN - 0.4), fontsize=TITLE_PT)
    return fig
