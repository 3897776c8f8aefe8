"""Every item of a finding, kept compactly for the full lists (``findings/*.csv``).

Indices are packed 8 bytes each in an ``array``; ImageFolder's paths are references to the loader's own
strings (8 bytes each, no copy). A column falls back to a plain list only when it holds both kinds.
Per-item numpy columns that grow shard by shard are kept in blocks (:func:`append_blocks`).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

import numpy as np

ItemId = int | str


class ItemList:
    """Values (item ids, labels, split names) in arrival order."""

    __slots__ = ("_ints", "_other")

    def __init__(self) -> None:
        self._ints: array[int] = array("q")
        self._other: list[ItemId] | None = None

    def append(self, value: ItemId) -> None:
        if self._other is None:
            if isinstance(value, int):
                self._ints.append(value)
                return
            self._other = list(self._ints)
            self._ints = array("q")
        self._other.append(value)

    def extend(self, values: Iterable[ItemId]) -> None:
        if self._other is not None:
            self._other.extend(values)
            return
        values = values if isinstance(values, range | list | tuple) else list(values)
        size = len(self._ints)
        try:
            self._ints.extend(values)  # type: ignore[arg-type]  # a str among them raises TypeError
        except TypeError:
            del self._ints[size:]
            for value in values:
                self.append(value)

    def extend_ints(self, values: bytes | memoryview) -> None:
        """Append integers given as native int64 bytes (a contiguous int64 numpy column's ``.data``: its
        buffer is copied once, with no object per value)."""
        if self._other is None:
            self._ints.frombytes(values)
        else:
            tail = array("q")
            tail.frombytes(values)
            self._other.extend(tail)

    def __len__(self) -> int:
        return len(self._ints) if self._other is None else len(self._other)

    def __iter__(self) -> Iterator[ItemId]:
        return iter(self._ints) if self._other is None else iter(self._other)


class Table:
    """Rows of a few named columns, each an :class:`ItemList`."""

    __slots__ = ("columns",)

    def __init__(self, *names: str) -> None:
        self.columns = {name: ItemList() for name in names}

    def append(self, *values: ItemId) -> None:
        for column, value in zip(self.columns.values(), values, strict=True):
            column.append(value)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def rows(self) -> Iterator[dict[str, ItemId]]:
        names = list(self.columns)
        for values in zip(*self.columns.values(), strict=True):
            yield dict(zip(names, values, strict=True))


BLOCK_BYTES = 1 << 20
"""Parts of a per-item column smaller than this are joined into one block once they add up to it."""


def append_blocks(parts: list[np.ndarray], more: list[np.ndarray]) -> None:
    """Append ``more`` (a shard's parts of a per-item column) to ``parts``, joining the small parts at the
    end into one block as soon as they reach :data:`BLOCK_BYTES`. A shard's parts are tens of KiB: the
    allocator serves them from its heap, where their pages stay once freed, while a block is mapped on
    its own and given back whole when the column is concatenated (millions of items: tens of MiB)."""
    parts += more
    start, small = len(parts), 0
    while start and parts[start - 1].nbytes < BLOCK_BYTES:
        start -= 1
        small += parts[start].nbytes
    if small >= BLOCK_BYTES and len(parts) - start > 1:
        parts[start:] = [np.concatenate(parts[start:])]
