"""The one figure setup every mlgate figure uses.

Each figure is drawn on its own ``matplotlib.figure.Figure`` with an Agg canvas (no pyplot, so no
global figure registry and no backend switch in the caller's process) under matplotlib's ``default``
style, applied in a context: a user's ``matplotlibrc`` cannot change the picture and the caller's
rcParams are restored afterwards. The PNG carries no ``Software`` metadata: the same input gives the
same bytes, so re-running a workflow does not produce a "changed" figure. Figures are 800 px wide
(the width of a PR comment) unless a figure asks for another size.

matplotlib is imported on the first figure, not with this module: the data-stats parent process
imports :mod:`mlgate.figures.data` for its torch-side helpers and leaves drawing to the worker.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
WIDTH_IN = 8.0  # 800 px at DPI


@contextmanager
def figure(
    height_in: float, *, width_in: float = WIDTH_IN, layout: Literal["constrained"] | None = None
) -> Iterator[Figure]:
    """A blank figure of ``width_in`` × ``height_in`` inches at :data:`DPI`; draw and :func:`png` it
    inside the ``with`` block, where the style applies."""
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # style.context restores the caller's rcParams on exit; "default" ignores any matplotlibrc.
    # Class and split names are data, not TeX: "$" in a name must not start (broken) mathtext.
    with matplotlib.style.context(["default", {"text.parse_math": False}]):
        fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout=layout)
        FigureCanvasAgg(fig)
        yield fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes, without the ``Software`` metadata that would vary by version."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
