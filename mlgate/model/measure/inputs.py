"""What the model is fed: evaluation images turned into model input, and the per-sample input shape."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

Preprocess = Callable[[Tensor], Tensor]
"""A user's replacement for :func:`default_preprocess`: a batch of eval images in, model input out."""


def default_preprocess(images: Tensor, input_shape: Sequence[int]) -> Tensor:
    """uint8 pixels -> float in [0, 1]; floats unchanged; (N, H, W) -> (N, 1, H, W) when the model
    takes a channel dimension (``input_shape`` has one more axis than a sample)."""
    x = images.float().div(255) if images.dtype == torch.uint8 else images
    if not x.is_floating_point():
        x = x.float()
    if x.dim() == len(input_shape) and list(x.shape[1:]) == list(input_shape[1:]) and input_shape[0] == 1:
        x = x.unsqueeze(1)
    return x


def infer_input_shape(eval_batch_images: Tensor) -> list[int]:
    """Per-sample input shape from one batch: (N, H, W) images get a single channel -> [1, H, W]."""
    shape = list(eval_batch_images.shape[1:])
    return [1, *shape] if len(shape) == 2 else shape
