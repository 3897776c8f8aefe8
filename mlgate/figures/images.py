"""Items made displayable: an ``(H, W, 3)`` array in 0..1 from any supported tensor layout and dtype.

The torch side of every figure of images (the sample grid, leaked pairs, near-duplicate groups, label
errors, flipped items): it runs in the caller's process, so the figure worker needs no torch.
:class:`CannotDrawFigure` is what every figure raises for input it cannot show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlgate.errors import MlgateError

if TYPE_CHECKING:
    import numpy as np
    import torch


class CannotDrawFigure(MlgateError):
    """Raised when a figure's input is empty or has a shape no figure can show."""

    title = "Cannot draw figure"


_MAX_CELL_PX = 128  # larger images are area-downsampled before the grid is composed


def display_images(images: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """The torch half of :func:`leaked_pairs`: each item as an ``(H, W, 3)`` float array in 0..1 (as in
    the sample grid). Raises :class:`CannotDrawFigure` for items that are not images."""
    return [display_image(image, -1) for image in images]


def display_image(image: torch.Tensor, label: int) -> np.ndarray:
    """``(H, W, 3)`` float in 0..1 from any supported item layout and dtype."""
    # local: torch takes seconds to import; only this path needs it
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
