"""Cutting a dataset into shards and reducing them, in this process or in worker processes.

A shard is a run of consecutive items of one split: a file range of an ImageFolder split, a row range
of one tensor part (course, npz), or (a user's Dataset class, whose objects need not cross processes)
the whole split. :func:`plan` cuts every split, in split order, ``train`` first; a split gives one
shard at least, so an empty split is still reported. :func:`reduce_in_order` reduces each shard to a
:class:`~mlgate.data.stats.ShardState` and yields the states in shard order, whatever order the
workers finish in, so that merging them gives the one-process result.

Workers are started with ``forkserver``, the server preloading torch and the statistics once, so a
worker costs a fork rather than a second ``import torch``; each runs torch on one thread (the
workers are the parallelism). A dataset-class split is reduced here, in order between the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import forkserver
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:  # this module is imported before torch, to start the workers early
    from mlgate.data.layouts import Batch, Dataset, Split
    from mlgate.data.stats import ShardState, ShardTask

S = TypeVar("S", bound="Shard")
R = TypeVar("R")

ITEMS_PER_SHARD = 4096
"""Items (files, rows) per shard: small enough that two workers share a split evenly and progress moves
every second or so, large enough that a shard's start-up (loading a tensor part, a result crossing
processes) does not count."""


class Shard(Protocol):
    split: str

    @property
    def size(self) -> int:
        """Items expected (files or rows); unreadable files included."""
        ...

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]: ...


@dataclass
class WholeSplit:
    """A split that is not cut (a user's Dataset class): reduced in this process, in its turn."""

    split: str
    whole: Split
    size: int = 0

    def batches(self, batch_size: int = 4096) -> Iterator[Batch]:
        return self.whole.batches(batch_size)


class Engine(Protocol):
    """Somewhere else to reduce the shards (``engine: ray``, :mod:`mlgate.data.ray_engine`): like
    :func:`reduce_in_order`, each shard with its state, in shard order."""

    def reduce(self, shards: list[Shard], task: ShardTask) -> Iterator[tuple[Shard, ShardState]]: ...


def plan(dataset: Dataset, sizes: Callable[[], Iterator[int]] | None = None, *,
         by_content: bool = False) -> list[Shard]:
    """Every split's shards, in split order; ``sizes`` makes each split's iterator of shard sizes (by
    default :data:`ITEMS_PER_SHARD` each). ``by_content``: file ranges (ImageFolder) end where
    :func:`ends_here` says, so that a cached shard (:mod:`mlgate.data.shard_cache`) is found again
    after files are added or removed elsewhere; tensor parts are cut per part already."""
    make = sizes or (lambda: itertools.repeat(ITEMS_PER_SHARD))
    shards: list[Shard] = []
    for name, split in dataset.splits.items():
        cut = getattr(split, "shards", None)
        if cut is None:
            shards.append(WholeSplit(name, split))
        elif by_content and getattr(split, "cuts_by_content", False):
            shards += cut(make(), ends=ends_here)
        else:
            shards += cut(make())
    return shards


ITEMS_PER_CONTENT_SHARD = 256
"""Files per shard on average when shards are cut by content: a pull request that adds files to the end
of 20 class folders re-reads about 20 × this many files; smaller shards cost more cache entries."""


def ends_here(relative: str) -> bool:
    """Whether a content-defined file range ends after the file at ``relative`` (a property of the
    path alone, true for one path in :data:`ITEMS_PER_CONTENT_SHARD`)."""
    digest = hashlib.blake2b(relative.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % ITEMS_PER_CONTENT_SHARD == 0


def worker_count(workers: int | str) -> int:
    """The ``workers`` input as a number: ``auto`` is :func:`available_cores`."""
    return available_cores() if workers == "auto" else int(workers)


def start_workers(workers: int) -> None:
    """Start the fork server now (when ``workers`` > 1): it imports torch and the statistics on another
    core while this process imports them, so the workers are ready when the first shard is."""
    if workers > 1:
        _context()
        forkserver.ensure_running()


def _context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "mlgate.data.stats", "mlgate.data.shard_cache"])
    return context


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and `taskset` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def reduce_in_order(shards: list[S], task: Callable[[S], R], workers: int) -> Iterator[tuple[S, R]]:
    """Each shard with its reduced state (``task``: a :class:`~mlgate.data.stats.ShardTask`, or one that
    wraps it), in shard order; ``workers`` > 1 reduces the shards that can cross processes in that many
    worker processes, at most two per worker in flight (results wait in order, memory stays bounded).
    With one worker this process reduces them on one torch thread, as a worker does."""
    if workers <= 1 or sum(not isinstance(shard, WholeSplit) for shard in shards) <= 1:
        with _one_torch_thread():
            for shard in shards:
                yield shard, task(shard)
        return
    with ProcessPoolExecutor(workers, mp_context=_context(), initializer=_one_thread) as pool:
        pending: deque[tuple[S, Future[R] | None]] = deque()
        todo = iter(shards)
        try:
            for shard in todo:
                pending.append((shard, None if isinstance(shard, WholeSplit) else pool.submit(task, shard)))
                if len(pending) >= 2 * workers:
                    yield _done(pending.popleft(), task)
            while pending:
                yield _done(pending.popleft(), task)
        finally:
            for _, future in pending:
                if future is not None:
                    future.cancel()


def _done(entry: tuple[S, Future[R] | None], task: Callable[[S], R]) -> tuple[S, R]:
    shard, future = entry
    return shard, task(shard) if future is None else future.result()


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    # torch's intra-op threads gain nothing on a shard's small tensors, and on a busy machine their
    # spin-waits made one worker 4x slower (a 200,000-PNG read: 70 s against 17 s on one thread)
    import torch  # local: torch takes seconds to import; only this path needs it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _one_thread() -> None:
    # local: torch takes seconds to import; only this path needs it
    import torch

    torch.set_num_threads(1)
