"""The data-stats figures: PNG bytes (or a Mermaid block) from plain values.

Every figure is drawn with the one setup of :mod:`mlgate.figures.style` (800 px wide, ``default``
style whatever the user's ``matplotlibrc``, deterministic PNG bytes), with text >= 9 pt.
:func:`display_samples` is the torch half of the sample grid and runs in the caller's process; every
other function needs no torch, so :mod:`mlgate.figures.worker` can run it in a second process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlgate.errors import MlgateError
from mlgate.figures.style import WIDTH_IN, figure, png

if TYPE_CHECKING:
    import torch

MAX_CLASSES_SHOWN = 20
_MAX_CELL_PX = 128  # larger images are area-downsampled before the grid is composed
_LABEL_CHARS = 16


class CannotDrawFigure(MlgateError):
    """Raised when a figure's input is empty or has a shape no figure can show."""

    title = "Cannot draw figure"


# ---------------------------------------------------------------------------------------------
# public figures


def sample_grid(
    samples: Mapping[int, torch.Tensor], class_names: Sequence[str] | None = None, *, per_class: int = 4
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
                                   per_class=per_class)


def display_samples(samples: Mapping[int, torch.Tensor], *, per_class: int = 4) -> dict[int, list[np.ndarray]]:
    """The torch half of :func:`sample_grid`: each shown sample as an ``(H, W, 3)`` float array in 0..1,
    for every label (the grid shows the first ``MAX_CLASSES_SHOWN``)."""
    return {
        label: [_display_image(image, label) for image in samples[label][:per_class]] if n < MAX_CLASSES_SHOWN else []
        for n, label in enumerate(sorted(samples))
    }


def sample_grid_of_displays(
    displays: Mapping[int, Sequence[np.ndarray]], class_names: Sequence[str] | None = None, *, per_class: int = 4
) -> bytes:
    """The matplotlib half of :func:`sample_grid` (needs no torch, so it can run in a figure worker)."""
    if not displays:
        raise CannotDrawFigure("No samples were given to draw a sample grid.")
    labels = sorted(displays)
    shown = labels[:MAX_CLASSES_SHOWN]
    rows = [list(displays[label]) for label in shown]
    cols = max(len(row) for row in rows)
    if cols == 0:
        raise CannotDrawFigure("Every class given to the sample grid has 0 samples.")
    mosaic = _mosaic(rows, cols)
    step_h = mosaic.shape[0] // len(shown)
    aspect = (mosaic.shape[1] / cols) / step_h  # cell width / height

    # more than 10 classes: two panels side by side, so the figure stays about as tall as wide
    panels = 2 if len(shown) > 10 else 1
    per_panel = math.ceil(len(shown) / panels)
    panel_in = (WIDTH_IN - 0.2) / panels
    label_in = 1.9 if panels == 1 else 1.5
    cell_h = min((panel_in - label_in - 0.1) / (cols * aspect), 1.2, max(0.45, 7.0 / per_panel))
    cell_w = cell_h * aspect
    title_in, bottom_in = 0.55, 0.1
    grid_top_in = bottom_in + per_panel * cell_h
    height_in = grid_top_in + title_in
    title = f"Samples: up to {per_class} per class"
    if len(labels) > len(shown):
        title += f" (first {len(shown)} of {len(labels)} classes, +{len(labels) - len(shown)} more)"

    with figure(height_in) as fig:
        for panel in range(panels):
            first = panel * per_panel
            panel_labels = shown[first : first + per_panel]
            left_in = 0.1 + panel * panel_in + (panel_in - label_in - cols * cell_w) / 2
            ax = fig.add_axes(
                (
                    (left_in + label_in) / WIDTH_IN,
                    (grid_top_in - len(panel_labels) * cell_h) / height_in,
                    cols * cell_w / WIDTH_IN,
                    len(panel_labels) * cell_h / height_in,
                )
            )
            block = mosaic[first * step_h : (first + len(panel_labels)) * step_h]
            ax.imshow(block, vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_axis_off()
            for row, label in enumerate(panel_labels):
                fig.text(
                    (left_in + label_in - 0.1) / WIDTH_IN,
                    (grid_top_in - (row + 0.5) * cell_h) / height_in,
                    _class_label(label, class_names),
                    ha="right",
                    va="center",
                    fontsize=10 if panels == 1 else 9,
                )
        fig.text(0.5, 1 - 0.3 / height_in, title, ha="center", va="center", fontsize=12)
        return png(fig)


def label_distribution(label_counts: Mapping[str, Mapping[str, int]]) -> bytes:
    """One grouped bar chart: per label, one bar per split, as PNG bytes.

    Bars show each label's share of its split (%), not raw counts, so a 60k train split and a 10k
    test split compare directly; the legend gives each split's total.
    """
    labels, shares, totals = _shares(label_counts)
    splits = list(shares)
    n = len(labels)
    x = np.arange(n)
    width = 0.8 / len(splits)
    with figure(4.2, layout="constrained") as fig:
        ax = fig.add_subplot()
        for i, split in enumerate(splits):
            ax.bar(
                x + (i - (len(splits) - 1) / 2) * width,
                [shares[split][label] for label in labels],
                width,
                label=f"{split} (n={totals[split]:,})",
            )
        ax.axhline(100 / n, color="0.4", linestyle="--", linewidth=1, label="uniform")
        step = math.ceil(n / 50)  # at most 50 tick labels; beyond that every k-th
        ax.set_xticks(
            x[::step],
            [_truncate(label) for label in labels[::step]],
            rotation=90 if n > 16 or max(len(label) for label in labels) > 6 else 0,
            fontsize=9,
        )
        ax.set_xlim(-0.6, n - 0.4)
        ax.tick_params(axis="y", labelsize=9)
        ax.set_ylabel("share of split (%)", fontsize=10)
        ax.set_xlabel("label", fontsize=10)
        ax.set_title(f"Label distribution ({n} labels)", fontsize=12, loc="left")
        # below the axes: a legend inside hides bars, one above collides with the title
        fig.legend(fontsize=9, ncols=len(splits) + 1, loc="outside lower center", frameon=False)
        return png(fig)


def pixel_histogram(histograms: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> bytes:
    """Overlaid step histograms (density) per split from ``(counts, bin_edges)``, as PNG bytes.

    The y axis turns logarithmic when the tallest bin is more than 20× the median non-empty bin
    (typical of images with a flat background), so the rest of the distribution stays visible.
    """
    if not histograms:
        raise CannotDrawFigure("No histograms were given to draw a pixel histogram.")
    densities: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, (counts, edges) in histograms.items():
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
        densities[split] = (c / (c.sum() * widths), e)
    positive = np.concatenate([d[d > 0] for d, _ in densities.values()])
    log_y = positive.max() > 20 * np.median(positive)
    with figure(3.6, layout="constrained") as fig:
        ax = fig.add_subplot()
        for split, (density, bin_edges) in densities.items():
            ax.stairs(density, bin_edges, label=split, linewidth=1.6, baseline=None)
        if log_y:
            ax.set_yscale("log")
            ax.set_ylim(bottom=positive.min() / 2)
        ax.tick_params(labelsize=9)
        ax.set_xlabel("pixel value", fontsize=10)
        ax.set_ylabel("density" + (" (log scale)" if log_y else ""), fontsize=10)
        ax.set_title("Pixel value distribution", fontsize=12, loc="left")
        ax.legend(fontsize=9, loc="upper right")
        return png(fig)


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


def loss_curve(losses: Sequence[float], *, title: str = "Sanity baseline: training loss") -> bytes:
    """Training loss per logged step (raw, plus a moving average when there are many points)."""
    values = np.asarray(losses, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise CannotDrawFigure("No losses were given to draw a loss curve.")
    steps = np.arange(1, values.size + 1)
    finite = values[np.isfinite(values)]
    log_y = finite.size > 0 and finite.min() > 0 and finite.max() > 50 * finite.min()
    with figure(3.2, layout="constrained") as fig:
        ax = fig.add_subplot()
        many = values.size > 50
        ax.plot(
            steps,
            values,
            linewidth=1,
            alpha=0.35 if many else 1.0,
            color="#1f77b4",
            label="loss" if many else None,
        )
        if many:
            window = max(2, values.size // 20)
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, linewidth=2, color="#1f77b4", label=f"moving average ({window})")
            ax.legend(fontsize=9, loc="upper right")
        if log_y:
            ax.set_yscale("log")
        ax.tick_params(labelsize=9)
        ax.set_xlabel("step", fontsize=10)
        ax.set_ylabel("loss" + (" (log scale)" if log_y else ""), fontsize=10)
        ax.set_title(title, fontsize=12, loc="left")
        return png(fig)


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


def _truncate(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _shares(
    label_counts: Mapping[str, Mapping[str, int]],
) -> tuple[list[str], dict[str, dict[str, float]], dict[str, int]]:
    """Sorted labels (numerically when all are integers), share (%) per split and label, split totals."""
    if not label_counts or not any(label_counts.values()):
        raise CannotDrawFigure("No label counts were given to draw a label distribution.")
    names = {str(label) for counts in label_counts.values() for label in counts}
    try:
        labels = sorted(names, key=int)
    except ValueError:
        labels = sorted(names)
    shares: dict[str, dict[str, float]] = {}
    totals: dict[str, int] = {}
    for split, counts in label_counts.items():
        by_name = {str(label): int(count) for label, count in counts.items()}
        totals[split] = sum(by_name.values())
        if totals[split] <= 0:
            raise CannotDrawFigure(f"Split {split!r} has no labelled samples to draw.")
        shares[split] = {label: 100.0 * by_name.get(label, 0) / totals[split] for label in labels}
    return labels, shares, totals


def _mermaid_text(text: str) -> str:
    # a quoted Mermaid string ends at the next '"'; a backtick run could close the Markdown fence
    return " ".join(text.replace('"', "'").replace("`", "'").split())


def _percent(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
