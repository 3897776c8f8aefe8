"""The sample grid: a row of example images per class, in up to four panels side by side.

:func:`display_samples` is its torch half and runs in the caller's process; the drawing needs no
torch, so :mod:`mlgate.figures.worker` can run it in a second process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlgate.figures.images import CannotDrawFigure, display_image
from mlgate.figures.layout import (
    MARGIN_IN,
    MAX_CELL_IN,
    MAX_CLASSES_SHOWN,
    TITLE_IN,
    capitalised,
    centred_title,
    class_label,
    plural,
    truncate,
)
from mlgate.figures.style import (
    SMALL_PT,
    TEXT_PT,
    TITLE_PT,
    WIDTH_IN,
    figure,
    png,
    text_width_in,
)

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure


_MAX_GRID_IN = 6.5  # the tallest a panel of rows gets before classes go to a panel beside it
_MAX_PANELS = 4
_PANEL_GAP_IN = 0.3
_LABEL_PAD_IN = 0.12


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
        label: [display_image(image, label) for image in samples[label][:per_class]] if n < MAX_CLASSES_SHOWN else []
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
    names = [class_label(label, class_names) for label in shown]
    panels, per_panel, cell_h, font_pt, label_in = _grid_layout(names, cols, aspect)
    cell_w = cell_h * aspect
    panel_in = label_in + cols * cell_w
    content_in = panels * panel_in + (panels - 1) * _PANEL_GAP_IN + 2 * MARGIN_IN

    every = "" if all(len(row) == cols for row in rows) else "up to "
    classes = plural(len(shown), "class") if len(labels) == len(shown) else \
        f"first {len(shown)} of {len(labels)} classes"
    title = f"{capitalised(truncate(split))} samples: {every}{cols} per class, {classes}"
    width_in = min(WIDTH_IN, max(content_in, text_width_in(title, TITLE_PT) + 2 * MARGIN_IN))
    grid_top_in = MARGIN_IN + per_panel * cell_h
    height_in = grid_top_in + TITLE_IN
    first_left_in = (width_in - content_in) / 2 + MARGIN_IN

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
        centred_title(fig, title, TITLE_IN, height_in)
    return fig


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
        free_in = WIDTH_IN - 2 * MARGIN_IN - panels * label_in - (panels - 1) * _PANEL_GAP_IN
        cell_h = min(MAX_CELL_IN, free_in / (panels * cols * aspect), _MAX_GRID_IN / per_panel)
        if best is None or cell_h > 1.05 * best[2]:
            best = (panels, per_panel, cell_h, font_pt, label_in)
    assert best is not None
    return best
