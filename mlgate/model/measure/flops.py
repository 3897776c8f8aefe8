"""Compute cost of one prediction, counted by ``torch.utils.flop_counter`` (a multiply-add is 2 FLOPs)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode


def count_flops(module: Callable[[Tensor], Tensor], x: Tensor, notes: list[str]) -> int | None:
    """FLOPs of ``module(x)``; ``None`` (and a line in ``notes`` saying why) when they cannot be counted."""
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            module(x)
    except Exception as exc:
        notes.append(f"FLOPs not counted: {exc}")
        return None
    return int(counter.get_total_flops())
