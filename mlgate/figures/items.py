"""Figures of individual items beside what they are compared with: leaked items beside their train
copies, near-duplicate groups, and likely label errors with the label a model suggests.

Each is drawn on one axes spanning the figure, in inches (an axes per image would cost most of the
time), with the layout of :mod:`mlgate.figures.layout`; images come displayable from
:func:`mlgate.figures.images.display_images`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlgate.figures.images import CannotDrawFigure
from mlgate.figures.layout import (
    FOOTER_IN,
    HEADER_IN,
    MARGIN_IN,
    MAX_CELL_IN,
    balanced,
    capitalised,
    centred_title,
    draw_captioned,
    fit,
    framed_image,
    image_rows,
    inch_canvas,
    item_caption,
    one_image_each,
)
from mlgate.figures.style import (
    SMALL_PT,
    TITLE_PT,
    WIDTH_IN,
    figure,
    png,
)
from mlgate.numbers import number, percent, typed

if TYPE_CHECKING:
    from matplotlib.figure import Figure


LeakedPair = tuple[str, int | str, int, int | str, int]
"""``(split, item, label, train item, train label)`` of one leaked item: items are indices within
their split or file paths relative to the data folder (ImageFolder)."""


_PAIRS_PER_ROW = 4
_PAIR_GAP_IN = 0.35  # between two pairs
_EQUALS_IN = 0.25  # between an item and its train copy, where the "=" goes


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

    n = one_image_each(images, pairs, "leaked items")
    rows, cols = balanced(n, _PAIRS_PER_ROW)
    margin_in = 2 * MARGIN_IN  # a caption may be wider than its image
    cell = min(MAX_CELL_IN * 1.1, (WIDTH_IN - 2 * margin_in - (cols - 1) * _PAIR_GAP_IN - cols * _EQUALS_IN)
               / (2 * cols))
    pair_in = 2 * cell + _EQUALS_IN
    splits = list(dict.fromkeys(split for split, *_ in pairs))
    shown = f"all {n}" if total <= n else f"first {n} of {total:,}"
    layout = image_rows(f"{capitalised(', '.join(splits))} items that are exact copies of train items: {shown}",
                        content_in=cols * pair_in + (cols - 1) * _PAIR_GAP_IN + 2 * margin_in, margin_in=margin_in,
                        rows=rows, row_in=HEADER_IN + cell + FOOTER_IN)
    caption_in = cell + 0.9 * _EQUALS_IN  # the widest a caption may get before it runs into the next
    pad_in = 0.05

    with figure(layout.height_in, width_in=layout.width_in) as fig:
        with inch_canvas(fig, layout.width_in, layout.height_in) as ax:
            for k, (image, (split, item, label, train_item, train_label)) in enumerate(zip(images, pairs, strict=True)):
                row, col = divmod(k, cols)
                top_in = layout.row_top_in(row) - HEADER_IN
                x_in = layout.left_in + col * (pair_in + _PAIR_GAP_IN)
                colour = "#c00000" if label != train_label else "black"
                for side, (side_split, side_item, side_label) in enumerate(
                    ((split, item, label), ("train", train_item, train_label))
                ):
                    centre = (x_in + side * (cell + _EQUALS_IN) + cell / 2, top_in - cell / 2)
                    draw_captioned(ax, image, centre, cell, (side_split, side_item, side_label), class_names,
                                    caption_in=caption_in, pad_in=pad_in, colour=colour)
                ax.text(x_in + cell + _EQUALS_IN / 2, top_in - cell / 2, "=", ha="center", va="center",
                        fontsize=TITLE_PT)
        centred_title(fig, layout.title, layout.title_in, layout.height_in)
    return fig


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

    if not groups:
        raise CannotDrawFigure("No near-duplicate groups were given to draw.")
    if len(images) != sum(len(members) for members, _, _ in groups):
        raise CannotDrawFigure(f"{len(images)} images were given for {len(groups)} near-duplicate groups.")
    cols = max(len(members) for members, _, _ in groups)
    margin_in = 2 * MARGIN_IN
    cell = min(MAX_CELL_IN, (WIDTH_IN - 2 * margin_in - _GROUP_LEFT_IN - (cols - 1) * _GROUP_GAP_IN) / cols)
    shown = f"all {len(groups)}" if total <= len(groups) else f"first {len(groups)} of {total:,}"
    if leaked:
        splits = list(dict.fromkeys(members[0][0] for members, _, _ in groups))
        title = f"{capitalised(', '.join(splits))} items that are near copies of train items: {shown}"
    else:
        title = f"Near-duplicate groups within splits, largest first: {shown}"
    title += f"\n(each row one picture; pixel distance ≤ {typed(threshold)}, 0 = same picture)"
    layout = image_rows(title, content_in=_GROUP_LEFT_IN + cols * cell + (cols - 1) * _GROUP_GAP_IN + 2 * margin_in,
                        margin_in=margin_in, rows=len(groups), row_in=HEADER_IN + cell + FOOTER_IN)
    left_in = layout.left_in
    caption_in = cell + _GROUP_GAP_IN

    with figure(layout.height_in, width_in=layout.width_in) as fig:
        with inch_canvas(fig, layout.width_in, layout.height_in) as ax:
            k = 0
            for row, (members, distance, size) in enumerate(groups):
                top_in = layout.row_top_in(row) - HEADER_IN
                colour = "#c00000" if len({label for _, _, label in members}) > 1 else "black"
                what = "leaked" if leaked else f"{size:,} items"
                ax.text(left_in, top_in - cell / 2, f"{what}\n≤ {number(distance)}", ha="left", va="center",
                        fontsize=SMALL_PT, color="0.3")
                for col, who in enumerate(members):
                    centre = (left_in + _GROUP_LEFT_IN + col * (cell + _GROUP_GAP_IN) + cell / 2, top_in - cell / 2)
                    draw_captioned(ax, images[k], centre, cell, who, class_names, caption_in=caption_in, pad_in=0.05,
                                    colour=colour)
                    k += 1
        centred_title(fig, layout.title, layout.title_in, layout.height_in)
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

    n = one_image_each(images, errors, "flagged items")
    rows, cols = balanced(n, _ERRORS_PER_ROW)
    margin_in = 2 * MARGIN_IN
    cell = min(MAX_CELL_IN, (WIDTH_IN - 2 * margin_in - (cols - 1) * _ERROR_GAP_IN) / cols)
    shown = f"all {n}" if total <= n else f"{n} least believable of {total:,}"
    layout = image_rows(f"Likely label errors in {split} ({shown}): given label → suggested",
                        content_in=cols * cell + (cols - 1) * _ERROR_GAP_IN + 2 * margin_in, margin_in=margin_in,
                        rows=rows, row_in=_ERROR_HEADER_IN + cell + _ERROR_FOOTER_IN)
    caption_in = cell + 0.9 * _ERROR_GAP_IN
    pad_in = 0.05

    def name(label: int) -> str:  # "7", "7: seven"; a name that starts with its label alone ("7 - seven")
        if not class_names or not 0 <= label < len(class_names):
            return str(label)
        text = str(class_names[label])
        return text if text.startswith(str(label)) and not text[len(str(label)):][:1].isalnum() else f"{label}: {text}"

    with figure(layout.height_in, width_in=layout.width_in) as fig:
        with inch_canvas(fig, layout.width_in, layout.height_in) as ax:
            for k, (image, (item, given, suggested, confidence)) in enumerate(zip(images, errors, strict=True)):
                row, col = divmod(k, cols)
                top_in = layout.row_top_in(row) - _ERROR_HEADER_IN
                centre_x, centre_y = layout.left_in + col * (cell + _ERROR_GAP_IN) + cell / 2, top_in - cell / 2
                h_in, _ = framed_image(ax, image, cell, centre_x, centre_y=centre_y)
                ax.text(centre_x, centre_y + h_in / 2 + pad_in, item_caption(split, item, caption_in), ha="center",
                        va="bottom", fontsize=SMALL_PT)
                ax.text(centre_x, centre_y - h_in / 2 - pad_in, fit(f"given {name(given)}", caption_in), ha="center",
                        va="top", fontsize=SMALL_PT)
                line_in = SMALL_PT * 1.25 / 72
                ax.text(centre_x, centre_y - h_in / 2 - pad_in - line_in, fit(f"→ {name(suggested)}", caption_in),
                        ha="center", va="top", fontsize=SMALL_PT, color="#c00000")
                ax.text(centre_x, centre_y - h_in / 2 - pad_in - 2 * line_in, f"{percent(confidence)} sure",
                        ha="center", va="top", fontsize=SMALL_PT, color="0.35")
        centred_title(fig, layout.title, layout.title_in, layout.height_in)
    return fig
