"""The sanity baseline's training loss curve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlgate.figures.images import CannotDrawFigure
from mlgate.figures.layout import (
    AXES_TITLE_IN,
)
from mlgate.figures.style import (
    SMALL_PT,
    TEXT_PT,
    TITLE_PT,
    figure,
    log_ticks,
    png,
    title_text,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
        ax.set_title(title_text(title, AXES_TITLE_IN), fontsize=TITLE_PT, loc="left")
    return fig
