"""The model-gate figures, drawn with the one setup of :mod:`mlgate.figures.style`: the confusion
matrix and, with a production model, the per-class accuracy change, the flipped items and the
confusion-matrix difference.

Each ``draw_*`` function returns the :class:`~matplotlib.figure.Figure` (what a test inspects); the
function of the same name without ``draw_`` returns its PNG bytes. Titles name the model, the
evaluation split and how many items and classes it holds.

Readability with many classes: cell colours are the share of each true class (row-normalised), so
a rare class is as visible as a common one; counts are written in the cells only while they fit at
>= 6 pt (about 30 classes with three-digit counts; never at 50+, where report.json has them); class
tick labels are 9 pt, every k-th one once cells are narrower than the text, and turned upright when
they would not fit side by side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mlgate.figures.images import CannotDrawFigure
from mlgate.figures.layout import framed_image, inch_canvas
from mlgate.figures.style import (
    SMALL_PT,
    TEXT_PT,
    TITLE_PT,
    WIDTH_IN,
    figure,
    number_label,
    png,
    text_width_in,
    title_text,
)

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_NAME_CHARS = 12  # class names on the axes
_MODEL_CHARS = 60  # model names in titles (W&B names end in the version: keep the end)
_MIN_COUNT_PT = 6.0  # smallest font a count in a cell is written in
_BETTER, _WORSE = "#2ca02c", "#d62728"


def confusion_matrix(confusion: Sequence[Sequence[int]], class_names: Sequence[str] | None = None, *,
                     model: str = "", split: str = "") -> bytes:
    """:func:`draw_confusion_matrix` as PNG bytes."""
    return png(draw_confusion_matrix(confusion, class_names, model=model, split=split))


def draw_confusion_matrix(confusion: Sequence[Sequence[int]], class_names: Sequence[str] | None = None, *,
                          model: str = "", split: str = "") -> Figure:
    """True class by row, predicted by column; colour is the share of the row, text the raw count
    (when it fits). The figure grows with the number of classes, up to 800 px wide."""
    # local: numpy is only needed when drawing
    import numpy as np

    counts = np.asarray(confusion, dtype=np.int64)
    n = counts.shape[0]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = [_short(str(name), _NAME_CHARS) for name in class_names] if class_names else [str(i) for i in range(n)]
    height_in = min(max(2.4 + 0.3 * n, 5.2), 7.2)
    width_in = min(height_in + 1.4, WIDTH_IN)
    cell_pt = (height_in - 1.9) * 72 / n  # the axes' side is the height less title, ticks and label
    count_pt = min(float(SMALL_PT), cell_pt * 0.85 / (0.62 * len(f"{counts.max():,}")), cell_pt * 0.6)
    with_counts = count_pt >= _MIN_COUNT_PT

    what = "Confusion matrix" + (f": {_short(model, _MODEL_CHARS)}" if model else "")
    on = f"{split} split, " if split else ""
    title = f"{what}\n{on}{int(counts.sum()):,} items, {n} classes"
    with figure(height_in, width_in=width_in, layout="constrained") as fig:
        # local: matplotlib is slow to import; only drawing needs it
        from matplotlib.colors import PowerNorm
        from matplotlib.ticker import PercentFormatter

        ax = fig.add_subplot()
        # square-root colours: a 2 % confusion is visible next to a 98 % diagonal
        image = ax.imshow(shares, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=1))
        bar = fig.colorbar(image, ax=ax, shrink=0.9, ticks=[0, 0.02, 0.1, 0.25, 0.5, 0.75, 1],
                           format=PercentFormatter(1.0, decimals=0))
        bar.set_label("share of the true class (square-root scale)", fontsize=TEXT_PT)
        bar.ax.tick_params(labelsize=SMALL_PT)
        _matrix_labels(ax, title, width_in, names, cell_pt, "" if with_counts else "counts per cell: report.json")
        if with_counts:
            for i in range(n):
                for j in range(n):
                    if counts[i, j]:
                        ax.text(j, i, f"{counts[i, j]:,}", ha="center", va="center", fontsize=count_pt,
                                color="white" if shares[i, j] > 0.4 else "black")
    return fig


def accuracy_delta(candidate: Mapping[str, float], production: Mapping[str, float], *, candidate_name: str,
                   production_name: str, split: str = "", eval_samples: int | None = None,
                   overall: tuple[float, float] | None = None) -> bytes:
    """:func:`draw_accuracy_delta` as PNG bytes."""
    return png(draw_accuracy_delta(candidate, production, candidate_name=candidate_name,
                                   production_name=production_name, split=split, eval_samples=eval_samples,
                                   overall=overall))


def draw_accuracy_delta(candidate: Mapping[str, float], production: Mapping[str, float], *, candidate_name: str,
                        production_name: str, split: str = "", eval_samples: int | None = None,
                        overall: tuple[float, float] | None = None) -> Figure:
    """Per class, candidate accuracy minus production accuracy in percentage points, in class order
    (as the confusion matrix), green where the candidate is better and red where it is worse, with
    the zero line and, given ``overall`` (candidate, production accuracy), the overall change dashed.
    Classes measured for only one of the models are left out."""
    # local: numpy is only needed when drawing
    import numpy as np

    classes = sorted(set(candidate) & set(production), key=_class_order)
    if not classes:
        raise CannotDrawFigure("The candidate and production models share no class with a measured accuracy.")
    deltas = np.array([100 * (candidate[c] - production[c]) for c in classes])
    n = len(classes)
    colours = [_BETTER if d > 0 else _WORSE if d < 0 else "0.5" for d in deltas]
    worse = int((deltas < 0).sum())
    better = int((deltas > 0).sum())
    on = f"{split} split, " if split else ""
    items = f"{eval_samples:,} items, " if eval_samples is not None else ""
    title = (f"Per-class accuracy: {_short(candidate_name, _MODEL_CHARS)} minus production "
             f"{_short(production_name, _MODEL_CHARS)}\n"
             f"{on}{items}{n} classes: {better} better, {worse} worse, {n - better - worse} equal")
    with figure(4.0, layout="constrained") as fig:
        # local: matplotlib is slow to import; only drawing needs it
        from matplotlib.patches import Patch

        ax = fig.add_subplot()
        ax.bar(np.arange(n), deltas, 0.7, color=colours)
        ax.axhline(0, color="black", linewidth=0.9)
        handles: list[Artist] = [Patch(color=_BETTER, label="candidate better"),
                                 Patch(color=_WORSE, label="candidate worse")]
        if overall is not None:
            change = 100 * (overall[0] - overall[1])
            handles.append(ax.axhline(change, color="0.3", linestyle="--", linewidth=1, label=(
                f"overall: {_signed(change)} pp ({overall[1]:.1%} → {overall[0]:.1%})")))
        fig.legend(handles=handles, fontsize=SMALL_PT, ncols=len(handles), loc="outside lower center",
                   frameon=False)
        widest = max(float(np.abs(deltas).max()), abs(100 * (overall[0] - overall[1])) if overall else 0.0)
        top = max(1.0, widest * 1.35)  # room for the value labels
        ax.set_ylim(-top, top)  # symmetric, so better and worse read at the same scale
        ax.set_xlim(-0.6, n - 0.4)
        slot_pt = 6.4 * 72 / n  # about the axes' width, per class
        _class_ticks(ax, [_short(c, _NAME_CHARS) for c in classes], slot_pt, axis="x")
        if n <= 20:
            for x, d in enumerate(deltas):
                ax.annotate(_signed(d), (x, d), xytext=(0, 3 if d >= 0 else -3), textcoords="offset points",
                            ha="center", va="bottom" if d >= 0 else "top", fontsize=SMALL_PT if n <= 12 else 7,
                            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})  # over the dashed line
        ax.tick_params(axis="y", labelsize=SMALL_PT)
        ax.set_xlabel("class", fontsize=TEXT_PT)
        ax.set_ylabel("Δ accuracy (percentage points)", fontsize=TEXT_PT)
        ax.set_title(title_text(title, WIDTH_IN - 0.8, TEXT_PT + 1), fontsize=TEXT_PT + 1, loc="left")
    return fig


Flip = tuple[int, int, int, int]
"""``(item, true label, production's prediction, candidate's prediction)`` of one flipped item."""

_FLIPS_PER_ROW = 4
_FLIP_CELL_IN = 0.95  # side of one image
_FLIP_HEADER_IN = 0.22  # one 9 pt line above each image: the item
_FLIP_FOOTER_IN = 0.32  # one 9 pt line below: true · prod · cand
_SECTION_IN = 0.4  # the heading of each direction
_FLIP_MARGIN_IN = 0.3


def flipped_examples(images: Sequence[np.ndarray], flips: Sequence[Flip], class_names: Sequence[str] | None = None,
                     *, lost: int, gained: int, candidate_name: str, production_name: str, split: str = "") -> bytes:
    """:func:`draw_flipped_examples` as PNG bytes."""
    return png(draw_flipped_examples(images, flips, class_names, lost=lost, gained=gained,
                                     candidate_name=candidate_name, production_name=production_name, split=split))


def draw_flipped_examples(images: Sequence[np.ndarray], flips: Sequence[Flip],
                          class_names: Sequence[str] | None = None, *, lost: int, gained: int, candidate_name: str,
                          production_name: str, split: str = "") -> Figure:
    """The items the two models disagree on, in two blocks: production right and the candidate wrong
    (``lost`` in all), then the reverse (``gained``); four images a row, each headed by its item and
    captioned ``true 7 · prod 7 · cand 1`` (the wrong prediction's model in red in the block heading).

    ``images`` are displayable ``(H, W, 3)`` arrays (:func:`mlgate.figures.images.display_images`), one
    per flip; a block says how many of its items are shown. Everything is drawn on one axes in inches.
    """
    if len(images) != len(flips):
        raise CannotDrawFigure(f"{len(images)} images were given for {len(flips)} flipped items.")
    if lost + gained == 0:
        raise CannotDrawFigure("The candidate and production models make the same predictions on every item.")
    blocks = [
        (f"Production right → candidate wrong: {_shown(lost, flips, True)}", _WORSE,
         [(image, f) for image, f in zip(images, flips, strict=True) if f[2] == f[1]]),
        (f"Candidate right → production wrong: {_shown(gained, flips, False)}", _BETTER,
         [(image, f) for image, f in zip(images, flips, strict=True) if f[2] != f[1]]),
    ]
    row_in = _FLIP_HEADER_IN + _FLIP_CELL_IN + _FLIP_FOOTER_IN
    slot_in = (WIDTH_IN - 2 * _FLIP_MARGIN_IN) / _FLIPS_PER_ROW
    on = f"{split} split" if split else "eval data"
    title = title_text(f"Flipped items: {_short(candidate_name, _MODEL_CHARS)} vs production "
                       f"{_short(production_name, _MODEL_CHARS)} on the same {on}", WIDTH_IN - 0.6, TITLE_PT)
    title_in = 0.25 + (title.count("\n") + 1) * TITLE_PT * 1.25 / 72
    rows = [math.ceil(len(items) / _FLIPS_PER_ROW) for *_, items in blocks]
    height_in = title_in + sum(_SECTION_IN + n * row_in for n in rows) + 0.1

    def name(label: int) -> str:
        return _short(class_names[label], 8) if class_names and 0 <= label < len(class_names) else str(label)

    with figure(height_in) as fig:
        with inch_canvas(fig, WIDTH_IN, height_in) as ax:
            top = height_in - title_in
            for (heading, colour, items), n_rows in zip(blocks, rows, strict=True):
                ax.text(_FLIP_MARGIN_IN, top - _SECTION_IN / 2, heading, ha="left", va="center", fontsize=TEXT_PT,
                        color=colour, fontweight="bold")
                top -= _SECTION_IN
                for k, (image, (item, label, prod, cand)) in enumerate(items):
                    row, col = divmod(k, _FLIPS_PER_ROW)
                    centre_x = _FLIP_MARGIN_IN + (col + 0.5) * slot_in
                    image_top = top - row * row_in - _FLIP_HEADER_IN
                    framed_image(ax, image, _FLIP_CELL_IN, centre_x, top=image_top, edgecolor=colour, linewidth=1.2)
                    ax.text(centre_x, image_top + 0.04, f"item {item:,}", ha="center", va="bottom", fontsize=SMALL_PT,
                            color="0.35")
                    ax.text(centre_x, image_top - _FLIP_CELL_IN - 0.05,
                            f"true {name(label)} · prod {name(prod)} · cand {name(cand)}", ha="center", va="top",
                            fontsize=SMALL_PT)
                top -= n_rows * row_in
        fig.text(_FLIP_MARGIN_IN / WIDTH_IN, 1 - 0.12 / height_in, title, ha="left", va="top", fontsize=TITLE_PT)
    return fig


def _shown(total: int, flips: Sequence[Flip], lost: bool) -> str:
    shown = sum((f[2] == f[1]) == lost for f in flips)
    items = f"{total:,} item{'s' if total != 1 else ''}"
    return items if shown >= total else f"{items}, first {shown} shown"


def confusion_difference(difference: Sequence[Sequence[int]], class_names: Sequence[str] | None = None, *,
                         candidate_name: str = "", production_name: str = "", split: str = "",
                         eval_samples: int | None = None) -> bytes:
    """:func:`draw_confusion_difference` as PNG bytes."""
    return png(draw_confusion_difference(difference, class_names, candidate_name=candidate_name,
                                         production_name=production_name, split=split, eval_samples=eval_samples))


def draw_confusion_difference(difference: Sequence[Sequence[int]], class_names: Sequence[str] | None = None, *,
                              candidate_name: str = "", production_name: str = "", split: str = "",
                              eval_samples: int | None = None) -> Figure:
    """Candidate minus production confusion counts, true class by row. The colour says better or
    worse, not the sign: more items on the diagonal (right) is better, more off it (confused) is
    worse, so a cell is blue where the candidate improves on production and red where it is worse,
    on a diverging scale centred on no change. Cells hold the signed count difference while it fits."""
    # local: numpy is only needed when drawing
    import numpy as np

    diff = np.asarray(difference, dtype=np.int64)
    n = diff.shape[0]
    better = np.where(np.eye(n, dtype=bool), diff, -diff)  # > 0: the candidate improves on production
    names = [_short(str(name), _NAME_CHARS) for name in class_names] if class_names else [str(i) for i in range(n)]
    height_in = min(max(2.4 + 0.3 * n, 5.2), 7.2)
    width_in = min(height_in + 1.4, WIDTH_IN)
    cell_pt = (height_in - 1.9) * 72 / n
    widest = max((len(_compact(int(v))) for v in diff.flatten()), default=2)
    count_pt = min(float(SMALL_PT), cell_pt * 0.85 / (0.62 * widest), cell_pt * 0.6)
    with_counts = count_pt >= _MIN_COUNT_PT
    right = int(np.trace(diff))
    confused = int(diff.sum() - right)
    on = f"{split} split, " if split else ""
    items = f"{eval_samples:,} items, " if eval_samples is not None else ""
    title = (f"Confusion matrix change: candidate minus production\n{_short(candidate_name, _MODEL_CHARS)} vs "
             f"{_short(production_name, _MODEL_CHARS)}\n{on}{items}right: {_signed_count(right)}, confused: "
             f"{_signed_count(confused)}")
    with figure(height_in, width_in=width_in, layout="constrained") as fig:
        # local: matplotlib is slow to import; only drawing needs it
        from matplotlib.colors import SymLogNorm
        from matplotlib.ticker import FuncFormatter


        ax = fig.add_subplot()
        top = max(1, int(np.abs(better).max()))
        # log beyond ±1 item: a change of 2 items stays visible next to one of 1,000
        norm = SymLogNorm(linthresh=1, linscale=0.5, vmin=-top, vmax=top)
        image = ax.imshow(better, cmap="RdBu", norm=norm)
        ticks = sorted({0, 1, -1, top, -top} | {s * 10**k for k in range(1, len(str(top))) for s in (1, -1)})
        bar = fig.colorbar(image, ax=ax, shrink=0.9, ticks=[t for t in ticks if abs(t) <= top],
                           format=FuncFormatter(lambda v, _pos: number_label(v)))
        bar.set_label("← candidate worse · candidate better →\n(items more right, or fewer confused; log scale)",
                      fontsize=SMALL_PT)
        bar.ax.tick_params(labelsize=SMALL_PT)
        _matrix_labels(ax, title, width_in, names, cell_pt,
                       "" if with_counts else "differences per cell: report.json")
        if with_counts:
            for i in range(n):
                for j in range(n):
                    if diff[i, j]:
                        strong = abs(float(norm(better[i, j])) - 0.5) > 0.3  # a dark cell: white text
                        ax.text(j, i, _compact(int(diff[i, j])), ha="center", va="center", fontsize=count_pt,
                                color="white" if strong else "black")
    return fig


def _compact(value: int) -> str:
    """A signed count in at most 5 characters for a cell: ``+12``, ``−950``, ``+1.0k``, ``−12k``."""
    if abs(value) < 1000:
        return _signed_count(value)
    thousands = value / 1000
    return (f"{thousands:+.1f}k" if abs(thousands) < 10 else f"{thousands:+.0f}k").replace("-", "−")


def _signed_count(value: int) -> str:
    return f"{value:+,}".replace("-", "−")


def _matrix_labels(ax: Axes, title: str, width_in: float, names: Sequence[str], cell_pt: float, note: str) -> None:
    """Axis labels (``note`` in brackets after the predicted class), the title and the class ticks of a
    class-by-class matrix."""
    ax.set_xlabel("predicted class" + (f" ({note})" if note else ""), fontsize=TEXT_PT)
    ax.set_ylabel("true class", fontsize=TEXT_PT)
    ax.set_title(title_text(title, width_in - 1.6, TEXT_PT + 1), fontsize=TEXT_PT + 1, loc="left")
    _class_ticks(ax, names, cell_pt)


def _class_ticks(ax: Axes, names: Sequence[str], slot_pt: float, axis: str = "both") -> None:
    """9 pt class labels, every k-th once a slot is narrower than a line of text; x labels upright
    when the widest would not fit its slot."""
    n = len(names)
    step = max(1, math.ceil(SMALL_PT * 1.3 / slot_pt))
    ticks = list(range(0, n, step))
    shown = [names[i] for i in ticks]
    widest_pt = max(text_width_in(name, SMALL_PT) for name in shown) * 72
    ax.set_xticks(ticks, shown, fontsize=SMALL_PT, rotation=90 if widest_pt > 0.9 * slot_pt * step else 0)
    if axis == "both":
        ax.set_yticks(ticks, shown, fontsize=SMALL_PT)


def _signed(value: float) -> str:
    """``+1.2``, ``−0.4`` (a typographic minus, as on the axis), ``0.0``."""
    text = f"{value:+.1f}".replace("-", "−")
    return "0.0" if text in ("+0.0", "−0.0") else text


def _short(text: str, chars: int) -> str:
    """At most ``chars`` characters, cut in the middle so a W&B name keeps its ``:v3`` end."""
    if len(text) <= chars:
        return text
    keep = chars - 1
    return text[: keep - keep // 2] + "…" + text[len(text) - keep // 2 :]


def _class_order(label: str) -> tuple[int, int | str]:
    return (0, int(label)) if label.lstrip("-").isdigit() else (1, label)
