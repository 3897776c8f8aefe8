"""Peak memory of one forward pass: bytes of the weights plus the tensors alive at once.

Counting tensors ourselves, instead of reading the process RSS, gives the model's own working set:
RSS is dominated by the torch runtime, and memory the allocator keeps after warm-up hides new
allocations. ``tracemalloc`` sees only Python's allocator, never torch's buffers.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


def peak_memory_mb(module: Callable[[Tensor], Tensor], x: Tensor, notes: list[str]) -> float | None:
    """:func:`peak_forward_bytes` in MB under ``torch.inference_mode``; ``None`` (and a line in ``notes``
    saying why) when the model cannot be traced."""
    try:
        with torch.inference_mode():
            return peak_forward_bytes(module, x) / 1e6
    except Exception as exc:
        notes.append(f"Peak memory not measured: {exc}")
        return None


def peak_forward_bytes(module: Callable[[Tensor], Tensor], x: Tensor) -> int:
    """Peak bytes of weights plus tensors alive at once while ``module(x)`` runs (input excluded)."""
    weights = [*_parameters(module), *_buffers(module)]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in weights}
    weight_bytes = sum(storages.values())
    mode = _LiveTensorBytes([*weights, x])
    with mode:
        out = module(x)
    del out
    return weight_bytes + mode.peak


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks bytes of tensor storage created during a forward pass and still referenced."""

    def __init__(self, external: Iterable[Tensor]) -> None:
        super().__init__()
        self._external = {t.untyped_storage().data_ptr() for t in external}
        self._live: dict[int, list[int]] = {}  # storage address -> [nbytes, tensors referencing it]
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, Tensor):
                self._track(leaf)
        return out

    def _track(self, tensor: Tensor) -> None:
        storage = tensor.untyped_storage()
        address, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes == 0 or address in self._external:
            return  # views of the weights or the input allocate nothing
        entry = self._live.setdefault(address, [nbytes, 0])
        if entry[1] == 0:
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(tensor, self._release, address)

    def _release(self, address: int) -> None:
        entry = self._live.get(address)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self._live[address]


def _parameters(module: object) -> list[Tensor]:
    return list(module.parameters()) if isinstance(module, torch.nn.Module) else []


def _buffers(module: object) -> list[Tensor]:
    return list(module.buffers()) if isinstance(module, torch.nn.Module) else []
