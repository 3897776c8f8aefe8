"""The model-gate figures, drawn with the one setup of :mod:`mlgate.figures.style`: the confusion
matrix and, with a production model, the per-class accuracy change.

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

from mlgate.figures.style import SMALL_PT, TEXT_PT, WIDTH_IN, figure, png, text_width_in, title_text

if TYPE_CHECKING:
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
        from matplotlib.colors import PowerNorm
        from matplotlib.ticker import PercentFormatter

        ax = fig.add_subplot()
        # square-root colours: a 2 % confusion is visible next to a 98 % diagonal
        image = ax.imshow(shares, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=1))
        bar = fig.colorbar(image, ax=ax, shrink=0.9, ticks=[0, 0.02, 0.1, 0.25, 0.5, 0.75, 1],
                           format=PercentFormatter(1.0, decimals=0))
        bar.set_label("share of the true class (square-root scale)", fontsize=TEXT_PT)
        bar.ax.tick_params(labelsize=SMALL_PT)
        ax.set_xlabel("predicted class" + ("" if with_counts else " (counts per cell: report.json)"),
                      fontsize=TEXT_PT)
        ax.set_ylabel("true class", fontsize=TEXT_PT)
        ax.set_title(title_text(title, width_in - 1.6, TEXT_PT + 1), fontsize=TEXT_PT + 1, loc="left")
        _class_ticks(ax, names, cell_pt)
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
    import numpy as np

    from mlgate.figures.data import CannotDrawFigure

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
                            ha="center", va="bottom" if d >= 0 else "top", fontsize=SMALL_PT if n <= 12 else 7)
        ax.tick_params(axis="y", labelsize=SMALL_PT)
        ax.set_xlabel("class", fontsize=TEXT_PT)
        ax.set_ylabel("Δ accuracy (percentage points)", fontsize=TEXT_PT)
        ax.set_title(title_text(title, WIDTH_IN - 0.8, TEXT_PT + 1), fontsize=TEXT_PT + 1, loc="left")
    return fig


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
