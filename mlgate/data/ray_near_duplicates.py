"""The near-duplicate search of ``engine: ray`` over the cluster: the thumbnails stay where the shards were
reduced, the hashes are computed there, the band search is cut by band value across tasks, and the
candidates are confirmed on the pixels by tasks that Ray places where their thumbnails are.

When (:data:`CLUSTER_SEARCH_FROM_ITEMS`): a dataset of that many items or more. Below it, the thumbnails
(1 KiB an item) come back with the shards' states and the search runs on the runner as with the local
engine (no task round trips, and the shard cache keeps them).

How, with the answer of :class:`~mlgate.data.near_duplicates.NearDuplicateFinder` (same groups, members,
distances, near-leaked items, closest train items and counts, byte for byte):

1. **Thumbnails**: each shard's task returns its state without thumbnails and the thumbnails as a Ray
   object of their own (``num_returns``: :mod:`mlgate.data.ray_engine`); this process owns the reference, so
   Ray rebuilds the object by re-running the task (lineage) when the node holding it dies.
2. **Centre and hashes**: the spectrum centre is :func:`~mlgate.data.near_duplicates.spectrum_centre` of the
   local engine's evenly spaced sample of the reference split, taken from the shards where they are; the
   hashes are :func:`~mlgate.data.near_duplicates.perceptual_hashes` of the same chunks of
   :data:`~mlgate.data.near_duplicates._HASH_CHUNK` distinct rows the local engine hashes (a hash's last
   float bit may depend on the rows hashed beside it), on the nodes. Each hash task cuts its hashes by
   band and by range of band value (:data:`ITEMS_PER_PARTITION` items a range) into objects of their own.
3. **Band search**: one task per band and value range lists the pairs of its items within the radius
   that agree on that band and on no earlier one
   (:func:`~mlgate.data.near_duplicates.band_pairs`): two items agreeing on a band have the same value,
   so they are in the same range; the union over every task is exactly
   :func:`~mlgate.data.near_duplicates.hamming_pairs`.
4. **Confirmation**: every candidate pair is measured (:func:`~mlgate.data.near_duplicates.pair_distances`)
   by a task whose arguments are the thumbnails of its pairs' shards (Ray's locality-aware scheduling runs
   it where most of them are). The local engine confirms a subset (Borůvka, first confirmed): its answer
   depends only on the candidates and their distances (ties by row, not by order), so the same grouping
   runs here on the measured distances and gives the same answer.

What crosses to this process: the candidate pairs (two row numbers and a hash distance each) and their
distances, and the few thumbnails pictured. Hashes and thumbnails stay on the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mlgate.data.near_duplicates import (
    _HASH_CHUNK,
    _WORDS,
    QUERIES,
    RADIUS,
    THUMB,
    NearDuplicateFinder,
    NearDuplicateStats,
    ThumbnailStore,
    _band_keys,
    _bands,
    _Hashes,
    _SplitItems,
    _Stacked,
    band_pairs,
    hamming,
    pair_distances,
    perceptual_hashes,
    spectrum_centre,
)

if TYPE_CHECKING:
    from mlgate.data.stats import ShardState

CLUSTER_SEARCH_FROM_ITEMS = 2_000_000
"""Items (in the shards reduced on the cluster) from which the thumbnails stay there and the search runs
there: 2 GiB of thumbnails, more than a hosted runner's memory holds comfortably beside the rest."""
ITEMS_PER_PARTITION = 1 << 20
"""Hashed items per range of band values: one search task holds about this many hashes (40 MiB)."""
PAIRS_PER_TASK = 1 << 16
"""Candidate pairs one confirmation task measures (at most)."""
TASK_RETRIES = 3


# ---------------------------------------------------------------------------------------------------
# The shard task's return path (mlgate.data.ray_engine)


@dataclass(frozen=True)
class RemoteThumbs:
    """One shard's thumbnails left on the cluster: the Ray object's reference (owned by this process) and
    its rows. Stands in a :class:`~mlgate.data.near_duplicates._SplitItems`' ``thumbs`` list."""

    ref: Any
    rows: int

    def __len__(self) -> int:
        return self.rows


def detach_thumbnails(state: ShardState) -> torch.Tensor:
    """On the node: the shard's thumbnails, taken out of ``state`` (its items keep labels, keys, boxes)."""
    parts: list[_SplitItems] = state.near
    assert len(parts) == 1, "a shard's task collects one split's items"
    thumbs = torch.cat(parts[0].thumbs) if parts[0].thumbs else torch.zeros((0, THUMB, THUMB), dtype=torch.uint8)
    parts[0].thumbs = []
    return thumbs


def attach_thumbnails(state: ShardState, ref: Any) -> None:
    """Here: ``state``'s thumbnails are the object ``ref`` on the cluster."""
    part: _SplitItems = state.near[0]
    rows = sum(len(index) for index in part.index)
    part.thumbs = [RemoteThumbs(ref, rows)] if rows else []  # type: ignore[list-item]  # stands in for a tensor


def keeps_thumbnails(items: int) -> bool:
    """Whether shards of ``items`` items in all leave their thumbnails on the cluster."""
    return items >= CLUSTER_SEARCH_FROM_ITEMS


# ---------------------------------------------------------------------------------------------------
# One split's thumbnails, some on the cluster


class ClusterThumbnails(ThumbnailStore):
    """A split's thumbnails in row order: shards' objects on the cluster (:class:`RemoteThumbs`) and what
    was reduced here (a cached shard, a Dataset class), on disk as in :class:`ThumbnailStore`."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[int] = []
        self.counts: list[int] = []
        self.where: list[Any] = []
        """Per segment: its object on the cluster, or its first row in the file (an int)."""
        self.total = 0

    def append(self, thumbs: torch.Tensor | RemoteThumbs) -> None:
        if not len(thumbs):
            return
        self.starts.append(self.total)
        self.counts.append(len(thumbs))
        if isinstance(thumbs, RemoteThumbs):
            self.where.append(thumbs.ref)
        else:
            self.where.append(self.rows)
            super().append(thumbs)
        self.total += len(thumbs)

    def __len__(self) -> int:
        return self.total

    @property
    def remote(self) -> bool:
        return any(not isinstance(where, int) for where in self.where)

    def refs(self) -> list[Any]:
        """Every segment as an object on the cluster (what was reduced here is put there, once)."""
        # local: ray is optional and slow to import; only the ray engine needs it
        import ray

        for k, where in enumerate(self.where):
            if isinstance(where, int):
                self.where[k] = ray.put(self._read(where, self.counts[k]))
        return list(self.where)

    def segment(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.starts, dtype=np.int64), rows, side="right") - 1

    def take(self, rows: np.ndarray) -> list[Any]:
        """The thumbnails of ``rows`` (ascending) as objects on the cluster, one per segment they touch,
        in row order: taken by tasks where the segments are."""
        refs, segment = self.refs(), self.segment(rows)
        starts = np.asarray(self.starts, dtype=np.int64)
        task = _remote(_take)
        return [task.remote(refs[s], rows[segment == s] - starts[s]) for s in np.unique(segment).tolist()]

    def __getitem__(self, rows: np.ndarray | torch.Tensor | slice) -> torch.Tensor:
        if not self.remote:
            return super().__getitem__(rows)
        # local: ray is optional and slow to import; only the ray engine needs it
        import ray

        wanted = np.arange(self.total)[rows] if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
        wanted = wanted.reshape(-1)
        order = np.argsort(wanted, kind="stable")
        parts = ray.get(self.take(wanted[order]))
        out = torch.empty((len(wanted), THUMB, THUMB), dtype=torch.uint8)
        if len(wanted):
            out[torch.from_numpy(order)] = torch.cat(parts)
        return out


def _take(thumbs: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
    return thumbs[torch.from_numpy(rows)].clone()


def _centre_of(*parts: torch.Tensor) -> torch.Tensor:
    return spectrum_centre(torch.cat(parts))


# ---------------------------------------------------------------------------------------------------
# Tasks of the search (run on the nodes)


def _hash_chunk(centre: torch.Tensor, rows: np.ndarray, plan: list[np.ndarray], partitions: int,
                *thumbs: torch.Tensor) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The hashes of one chunk of distinct rows (``plan``: the rows of each segment in ``thumbs``), cut
    per band and range of band value: ``bands × partitions`` parts of ``(rows, hashes)``, rows ascending."""
    chunk = torch.cat([part[torch.from_numpy(local)] for part, local in zip(thumbs, plan, strict=True)])
    hashes = perceptual_hashes(chunk, centre).astype(np.uint64, copy=False)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for band in _bands(RADIUS, _WORDS):
        where = _partition(_band_keys(hashes, band), band[2], partitions)
        out += [(rows[where == p], hashes[where == p]) for p in range(partitions)]
    return tuple(out)


def _partition(keys: np.ndarray, width: int, partitions: int) -> np.ndarray:
    """Which range of band values each key falls in: ``partitions`` equal ranges of the ``width``-bit values."""
    return ((keys.astype(np.float64) * partitions) / float(1 << width)).astype(np.int64).clip(0, partitions - 1)


def _search(k: int, count_a: int, allowed: np.ndarray | None, cross: bool,
            *parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate pairs of one band and value range: ``(i, j, hash distance)`` in rows."""
    rows_a, hashes_a = _joined(parts[:count_a])
    if allowed is not None:
        keep = np.isin(rows_a, allowed)
        rows_a, hashes_a = rows_a[keep], hashes_a[keep]
    rows_b, hashes_b = _joined(parts[count_a:]) if cross else (rows_a, None)
    bands = _bands(RADIUS, _WORDS)
    i, j = band_pairs(hashes_a, hashes_b, bands, k, _band_keys(hashes_a, bands[k]),
                      None if hashes_b is None else _band_keys(hashes_b, bands[k]))
    weight = hamming(hashes_a[i], (hashes_a if hashes_b is None else hashes_b)[j])
    return rows_a[i], rows_b[j], weight


def _joined(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not parts:
        return np.zeros(0, np.int64), np.zeros((0, _WORDS), np.uint64)
    return np.concatenate([rows for rows, _ in parts]), np.concatenate([h for _, h in parts])


def _confirm(i: np.ndarray, j: np.ndarray, count_b: int, thumbs_a: torch.Tensor,
             *thumbs_b: torch.Tensor) -> np.ndarray:
    """Pixel distances of pairs: ``i`` rows of ``thumbs_a``, ``j`` rows of the ``thumbs_b`` joined."""
    assert len(thumbs_b) == count_b
    return pair_distances(thumbs_a, i, torch.cat(thumbs_b) if thumbs_b else thumbs_a, j)


def _remote(function: Callable[..., Any], returns: int = 1) -> Any:
    """``function`` as a Ray task of one CPU, retried by Ray when its node dies (its objects too, by lineage)."""
    # local: ray is optional and slow to import; only the ray engine needs it
    import ray

    return ray.remote(function).options(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False,
                                        num_returns=returns)


# ---------------------------------------------------------------------------------------------------
# The finder


@dataclass
class _ClusterHashes:
    """A split's hashes on the cluster: per chunk of its distinct rows, ``bands × partitions`` objects."""

    parts: list[list[Any]]
    partitions: int


class ClusterNearDuplicateFinder(NearDuplicateFinder):
    """:class:`NearDuplicateFinder` for ``engine: ray``: shards' thumbnails left on the cluster
    (:class:`RemoteThumbs`) stay there and the search runs there (module docstring); when none did, the
    search is the local one. :meth:`result` needs the connection to the cluster. ``between_stages`` is
    called with the name of each stage done (hashed, searched, confirmed)."""

    def __init__(self, *args: Any, between_stages: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.between_stages = between_stages or (lambda stage: None)
        self.measured = 0
        """Candidate pairs measured on the cluster (every candidate; ``confirmations`` counts those the
        local engine's grouping compares, as in its report)."""
        self._hashed: dict[int, _ClusterHashes] = {}

    def start(self, split: str) -> None:
        self.current = self.splits[split] = _SplitItems(store=ClusterThumbnails())

    @property
    def on_cluster(self) -> bool:
        return any(isinstance(items.store, ClusterThumbnails) and items.store.remote for items in self.splits.values())

    def result(self, threshold: float) -> NearDuplicateStats:
        if not self.on_cluster:
            return super().result(threshold)
        try:
            found = self._result(threshold)
            print(f"  Near-duplicate search on the Ray cluster: {self.measured:,} candidate pairs measured where "
                  f"their thumbnails are ({found.confirmations:,} of them compared by the grouping).", flush=True)
            return found
        finally:
            for items in self.splits.values():
                if items.store is not None:
                    items.store.close()

    def _centre(self, reference: ThumbnailStore, sample: np.ndarray) -> torch.Tensor:
        if not isinstance(reference, ClusterThumbnails) or not self.on_cluster:
            return super()._centre(reference, sample)
        # the sample taken where the shards are; the centre is small (128 floats) and kept there
        return _remote(_centre_of).remote(*reference.take(sample))

    def _coarse_centre(self, reference: ThumbnailStore, boxes: np.ndarray, sample: np.ndarray) -> torch.Tensor:
        if not self.on_cluster:
            return super()._coarse_centre(reference, boxes, sample)
        return torch.zeros(0)  # the coarse search of framed pictures is not made on the cluster (README)

    def _hashes(self, split: _Stacked, rows: np.ndarray, centre: torch.Tensor, centre_coarse: torch.Tensor
                ) -> _Hashes:
        if not self.on_cluster:
            return super()._hashes(split, rows, centre, centre_coarse)
        store = split.thumbs
        assert isinstance(store, ClusterThumbnails)
        refs, segment = store.refs(), store.segment(rows)
        starts = np.asarray(store.starts, dtype=np.int64)
        # one cut of the band values for every split, so that a split's range meets train's same range
        largest = max(len(items.store) for items in self.splits.values() if items.store is not None)
        partitions = max(1, -(-largest // ITEMS_PER_PARTITION))
        count = len(_bands(RADIUS, _WORDS)) * partitions
        task = _remote(_hash_chunk, count)
        parts = []
        for start in range(0, len(rows), _HASH_CHUNK):  # the local engine's chunks (see the module docstring)
            chunk, where = rows[start : start + _HASH_CHUNK], segment[start : start + _HASH_CHUNK]
            used = np.unique(where).tolist()
            plan = [chunk[where == s] - starts[s] for s in used]
            parts.append(task.remote(centre, chunk, plan, partitions, *[refs[s] for s in used]))
        self._hashed[id(store)] = _ClusterHashes(parts, partitions)
        self.between_stages("hashed")
        # the hashes' handle: which rows were hashed (the search finds them by store); none framed
        return _Hashes(rows, np.zeros(0, np.int64), np.zeros((len(QUERIES), 0, _WORDS), np.uint64))

    def _candidates(self, a: _Stacked, rows_a: np.ndarray, hashes_a: _Hashes, b: _Stacked | None,
                    rows_b: np.ndarray, hashes_b: _Hashes | None, threshold: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
        if not self.on_cluster:
            return super()._candidates(a, rows_a, hashes_a, b, rows_b, hashes_b, threshold)
        # local: ray is optional and slow to import; only the ray engine needs it
        import ray

        store_a = a.thumbs
        store_b = store_a if b is None else b.thumbs
        assert isinstance(store_a, ClusterThumbnails) and isinstance(store_b, ClusterThumbnails)
        side_a, side_b = self._hashed[id(store_a)], self._hashed[id(store_b)]
        assert side_a.partitions == side_b.partitions
        if not side_a.parts or not side_b.parts:  # a split with no image: no pair
            empty = np.zeros(0, np.int64)
            return empty, empty, empty, self._lookup(empty, empty, np.zeros(0, np.float32), 1, threshold)
        allowed = None if b is None else ray.put(rows_a)  # near-leaks: the items with no exact copy in train
        task = _remote(_search, 3)
        searches = []
        for k in range(len(_bands(RADIUS, _WORDS))):
            for p in range(side_a.partitions):
                at = k * side_a.partitions + p
                mine = [chunk[at] for chunk in side_a.parts]
                theirs = [] if b is None else [chunk[at] for chunk in side_b.parts]
                searches.append(task.remote(k, len(mine), allowed, b is not None, *mine, *theirs))
        found = ray.get([ref for search in searches for ref in search])
        i = np.concatenate([np.zeros(0, np.int64), *found[0::3]]).astype(np.int64)
        j = np.concatenate([np.zeros(0, np.int64), *found[1::3]]).astype(np.int64)
        weight = np.concatenate([np.zeros(0, np.int64), *found[2::3]]).astype(np.int64)
        self.between_stages("searched")
        distances = self._measure(store_a, i, store_b, j)
        self.between_stages("confirmed")
        return i, j, weight, self._lookup(i, j, distances, len(store_b), threshold)

    def _measure(self, a: ClusterThumbnails, i: np.ndarray, b: ClusterThumbnails, j: np.ndarray) -> np.ndarray:
        """Pixel distances of every candidate, by tasks holding the shards of their rows as arguments."""
        # local: ray is optional and slow to import; only the ray engine needs it
        import ray

        self.measured += len(i)
        out = np.zeros(len(i), dtype=np.float32)
        if not len(i):
            return out
        refs_a, refs_b = a.refs(), b.refs()
        seg_a, seg_b = a.segment(i), b.segment(j)
        starts_a, starts_b = np.asarray(a.starts, dtype=np.int64), np.asarray(b.starts, dtype=np.int64)
        order = np.argsort(seg_a, kind="stable")
        task = _remote(_confirm)
        jobs: list[tuple[np.ndarray, Any]] = []
        bounds = np.flatnonzero(np.r_[True, seg_a[order][1:] != seg_a[order][:-1], True])
        for first, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            for begin in range(first, stop, PAIRS_PER_TASK):
                pick = order[begin : min(stop, begin + PAIRS_PER_TASK)]
                s = int(seg_a[pick[0]])
                used, at = np.unique(seg_b[pick], return_inverse=True)
                offsets = np.r_[0, np.cumsum(np.asarray(b.counts, dtype=np.int64)[used])][:-1]
                local_j = j[pick] - starts_b[seg_b[pick]] + offsets[at]
                jobs.append((pick, task.remote(i[pick] - starts_a[s], local_j, len(used), refs_a[s],
                                                             *[refs_b[u] for u in used.tolist()])))
        for pick, distances in zip([p for p, _ in jobs], ray.get([ref for _, ref in jobs]), strict=True):
            out[pick] = distances
        return out

    def _lookup(self, i: np.ndarray, j: np.ndarray, distances: np.ndarray, n_b: int, threshold: float
                ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The local engine's ``confirm`` over the distances measured: counts what it compares."""
        codes = i * max(n_b, 1) + j
        order = np.argsort(codes, kind="stable")
        codes, known = codes[order], distances[order]

        def confirm(ci: np.ndarray, cj: np.ndarray) -> np.ndarray:
            self.confirmations += len(ci)
            at = np.searchsorted(codes, ci * max(n_b, 1) + cj)
            d = known[at]
            return np.where(d <= threshold, d, np.nan).astype(np.float32)

        return confirm
