"""Layout shared by the figures of images: sizes in inches, balanced rows, a wrapped centred title,
an inch canvas, framed images with captions that fit, and short labels.

Every grid (the sample grid, leaked pairs, near-duplicate groups, label errors, flipped items) is
laid out with these, so a margin or a title line is computed in one place.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mlgate.figures.images import CannotDrawFigure
from mlgate.figures.style import SMALL_PT, TITLE_PT, WIDTH_IN, text_width_in, title_text

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


MAX_CLASSES_SHOWN = 20
LABEL_CHARS = 16
# sample grid geometry, in inches
MAX_CELL_IN = 1.0  # one image, at most
MARGIN_IN = 0.1
TITLE_IN = 0.5
HEADER_IN = 0.42  # two 9 pt lines above each image: split, item
FOOTER_IN = 0.3  # one 9 pt line below each image: label
AXES_TITLE_IN = WIDTH_IN - 0.8  # an axes title starts at the axes, right of the y label


def class_label(label: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return f"{label}: {truncate(str(class_names[label]))}"
    return str(label)


def truncate(text: str, chars: int = LABEL_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"



def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "es" if noun.endswith("s") else "s")


def item_caption(split: str, item: int | str, width_in: float) -> str:
    """``item 17``, or a file path without its split folder, cut from the left to fit ``width_in``."""
    if isinstance(item, int):
        return f"item {item}"
    return fit(item.removeprefix(f"{split}/"), width_in, keep_end=True)


def fit(text: str, width_in: float, *, keep_end: bool = False) -> str:
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


def draw_captioned(ax: Axes, image: np.ndarray, centre: tuple[float, float], cell: float,
                    who: tuple[str, int | str, int], class_names: Sequence[str] | None, *, caption_in: float,
                    pad_in: float, colour: str) -> None:
    """One item, fitted into a ``cell``-inch square at ``centre`` (inches) and framed, with its split and
    item above and its label below (in ``colour``)."""
    split, item, label = who
    centre_x, centre_y = centre
    h_in, _ = framed_image(ax, image, cell, centre_x, centre_y=centre_y)
    ax.text(centre_x, centre_y + h_in / 2 + pad_in, f"{split}\n{item_caption(split, item, caption_in)}",
            ha="center", va="bottom", fontsize=SMALL_PT)
    label_text = class_label(label, class_names) if class_names else f"label {label}"
    ax.text(centre_x, centre_y - h_in / 2 - pad_in, fit(label_text, caption_in), ha="center", va="top",
            fontsize=SMALL_PT, color=colour)


def balanced(n: int, per_row: int) -> tuple[int, int]:
    """Rows and columns for ``n`` items, at most ``per_row`` a row, the rows about equally full:
    5 items at 4 a row are 3 + 2, not 4 + 1."""
    rows = math.ceil(n / per_row)
    return rows, math.ceil(n / rows)


@dataclasses.dataclass(frozen=True)
class ImageRows:
    """A figure of rows of images under a centred title; every length in inches, y from the bottom."""

    width_in: float
    height_in: float
    title: str
    """Wrapped to the width."""
    title_in: float
    """The title's band at the top."""
    row_in: float
    left_in: float
    """Where the content starts, centred in the figure."""

    def row_top_in(self, row: int) -> float:
        """The top of row ``row`` (of its header, above the images)."""
        return self.height_in - self.title_in - row * self.row_in


def image_rows(title: str, *, content_in: float, margin_in: float, rows: int, row_in: float) -> ImageRows:
    """The layout of ``rows`` rows of ``row_in`` inches, ``content_in`` wide (margins included), under
    ``title``: the figure as wide as the content or the title's widest line needs (at most the figure
    width), the title wrapped to it, one title band plus a line for each wrapped line."""
    widest = max(text_width_in(line, TITLE_PT) for line in title.split("\n"))
    width_in = min(WIDTH_IN, max(content_in, widest + 2 * margin_in))
    title = "\n".join(title_text(line, width_in - 2 * margin_in) for line in title.split("\n"))
    title_in = TITLE_IN + title.count("\n") * TITLE_PT * 1.2 / 72
    return ImageRows(width_in=width_in, height_in=title_in + rows * row_in + MARGIN_IN, title=title,
                     title_in=title_in, row_in=row_in, left_in=(width_in - content_in) / 2 + margin_in)


@contextmanager
def inch_canvas(fig: Figure, width_in: float, height_in: float) -> Iterator[Axes]:
    """One axes spanning ``fig``, without axis lines, whose data coordinates are inches from the bottom
    left: one axes for every image is far faster than an axes per image."""
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    yield ax
    ax.set_xlim(0.0, width_in)
    ax.set_ylim(0.0, height_in)


def centred_title(fig: Figure, title: str, title_in: float, height_in: float) -> None:
    """``title`` centred in the band of ``title_in`` inches at the top of ``fig``."""
    fig.text(0.5, 1 - title_in / 2 / height_in, title, ha="center", va="center", fontsize=TITLE_PT)


def framed_image(ax: Axes, image: np.ndarray, cell: float, centre_x: float, *, centre_y: float | None = None,
                 top: float | None = None, edgecolor: str = "0.6", linewidth: float = 0.8) -> tuple[float, float]:
    """``image`` fitted into a ``cell``-inch square, centred on ``centre_x`` and on ``centre_y`` (or hanging
    from ``top``), framed; its height and width in inches."""
    # local: matplotlib is slow to import; only drawing needs it
    from matplotlib.patches import Rectangle

    scale = cell / max(image.shape[:2])
    h_in, w_in = image.shape[0] * scale, image.shape[1] * scale
    if top is not None:
        extent = (centre_x - w_in / 2, centre_x + w_in / 2, top - h_in, top)
    else:
        assert centre_y is not None
        extent = (centre_x - w_in / 2, centre_x + w_in / 2, centre_y - h_in / 2, centre_y + h_in / 2)
    ax.imshow(image, extent=extent, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    ax.add_patch(Rectangle((extent[0], extent[2]), w_in, h_in, fill=False, edgecolor=edgecolor,
                           linewidth=linewidth))
    return h_in, w_in


def one_image_each(images: Sequence[np.ndarray], items: Sequence[object], what: str) -> int:
    """How many ``items`` (``what`` they are, in messages) there are, one image each; raises
    :class:`~mlgate.figures.images.CannotDrawFigure` when there is none or the counts differ."""
    if not images:
        raise CannotDrawFigure(f"No {what} were given to draw.")
    if len(images) != len(items):
        raise CannotDrawFigure(f"{len(images)} images were given for {len(items)} {what}.")
    return len(items)

