"""The one figure setup every mlgate figure uses.

Each figure is drawn on its own ``matplotlib.figure.Figure`` with an Agg canvas (no pyplot, so no
global figure registry and no backend switch in the caller's process) under matplotlib's ``default``
style, applied in a context (:func:`applied`) both while drawing and while saving: a user's
``matplotlibrc`` cannot change the picture and the caller's rcParams are restored afterwards. The PNG
carries no ``Software`` metadata: the same input gives the same bytes, so re-running a workflow does
not produce a "changed" figure. Figures are at most 800 px wide (the width of a PR comment); a
figure whose content is narrower (a sample grid of a few classes) is sized to its content.

Math text is off for every text, because class, split and model names are the user's data, not TeX
(``"$5 bill"`` must not start broken mathtext). Log axes therefore get plain tick labels from
:func:`log_ticks` (``0.1``, ``1``, ``10``, ``10⁵``), never matplotlib's ``$\\mathdefault{10^{1}}$``.

matplotlib is imported on the first figure, not with this module: the data-stats parent process
imports :mod:`mlgate.figures.images` and :mod:`mlgate.figures.samples` for their torch-side helpers
and leaves drawing to the worker.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure
    from matplotlib.ft2font import FT2Font

DPI = 100
WIDTH_IN = 8.0  # 800 px at DPI, the widest a figure gets
TITLE_PT = 12
TEXT_PT = 10
SMALL_PT = 9  # the smallest text on any figure

# Class and split names are data, not TeX: "$" in a name must not start (broken) mathtext.
_STYLE: list[Any] = ["default", {"text.parse_math": False}]
_HINTED = 1.02  # Agg's hinted text comes out about 1-2 % wider than the font's unhinted advance
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@contextmanager
def applied() -> Iterator[None]:
    """matplotlib's ``default`` style with math text off, whatever the caller's rcParams or
    ``matplotlibrc``; the caller's rcParams are restored on exit."""
    # local: matplotlib is slow to import; only drawing needs it
    import matplotlib.style

    with matplotlib.style.context(_STYLE):
        yield


@contextmanager
def figure(
    height_in: float, *, width_in: float = WIDTH_IN, layout: Literal["constrained"] | None = None
) -> Iterator[Figure]:
    """A blank figure of ``width_in`` × ``height_in`` inches at :data:`DPI`, drawn on inside the
    ``with`` block, where the style applies; :func:`png` re-applies it when saving."""
    # local: matplotlib is slow to import; only drawing needs it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with applied():
        fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout=layout)
        FigureCanvasAgg(fig)
        yield fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (drawn under the style), without the ``Software`` metadata that would
    vary by version."""
    buffer = io.BytesIO()
    with applied():
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def drawn(fig: Figure) -> Figure:
    """``fig`` laid out and its tick labels resolved, as the PNG would show them, without rasterising:
    what a test inspects (tick label texts, axes bounds, the tight bounding box)."""
    with applied():
        fig.draw_without_rendering()
    return fig


def title_text(text: str, width_in: float = WIDTH_IN - 0.4, size_pt: float = TITLE_PT) -> str:
    """``text`` wrapped at spaces to lines at most ``width_in`` wide at ``size_pt`` (a word wider
    than that gets a line of its own); a line break in ``text`` stays."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and text_width_in(candidate, size_pt) > width_in:
                lines.append(line)
                candidate = word
            line = candidate
        lines.append(line)
    return "\n".join(lines)


def log_ticks(axis: Axis) -> None:
    """Plain tick labels on a log ``axis`` whose limits are final: every decade, or 1-2-5 within each
    decade when the axis spans fewer than three; minor ticks unlabelled."""
    # local: matplotlib is slow to import; only drawing needs it
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    low, high = sorted(axis.get_view_interval())
    decades = math.log10(high / low) if low > 0 else math.inf
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades < 3 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: number_label(value)))
    axis.set_minor_formatter(NullFormatter())


def number_label(value: float) -> str:
    """A tick value as plain text: ``0.02``, ``5``, ``2,000``; below 0.001 or from 10,000 on, a power
    of ten with a Unicode exponent (``10⁻⁴``, ``2×10⁵``)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else ""
    sign = "−" if value < 0 else ""
    magnitude = abs(value)
    exponent = math.floor(math.log10(magnitude) + 1e-9)
    if -3 <= exponent < 4:
        return sign + (f"{magnitude:,.0f}" if exponent >= 2 else f"{magnitude:.3g}")
    mantissa = float(f"{magnitude / 10**exponent:.2g}")
    power = "10" + str(exponent).translate(_SUPERSCRIPT)
    return sign + (power if mantissa == 1 else f"{mantissa:g}×{power}")


def text_width_in(text: str, size_pt: float) -> float:
    """How wide ``text`` is drawn at ``size_pt`` in the style's font (DejaVu Sans), in inches (widest
    line). Read from the font file without any rcParams, so a layout never depends on the caller's."""
    # local: matplotlib is slow to import; only drawing needs it
    from matplotlib.ft2font import LoadFlags

    font = _font()
    font.set_size(size_pt, DPI)
    widths = []
    for line in text.split("\n"):
        font.set_text(line, 0.0, flags=LoadFlags.NO_HINTING)
        widths.append(font.get_width_height()[0] / 64)
    return _HINTED * max(widths) / DPI


@functools.cache
def _font() -> FT2Font:
    # local: matplotlib is slow to import; only drawing needs it
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    return FT2Font(findfont(FontProperties(family="DejaVu Sans", style="normal", variant="normal", weight="normal",
                                           stretch="normal")))
