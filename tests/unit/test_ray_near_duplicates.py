"""The pieces of the near-duplicate search that ``engine: ray`` spreads over a cluster, run here as plain
functions (the cluster itself: tests/integration/test_ray_near_duplicates.py): the band search cut by
band value finds exactly :func:`hamming_pairs`' pairs, the hashes of the local engine's chunks are its
hashes, and the grouping does not depend on the order the candidates come in."""

from __future__ import annotations

import numpy as np
import torch

from mlgate.data.near_duplicates import (
    _HASH_CHUNK,
    _WORDS,
    RADIUS,
    _bands,
    first_confirmed,
    grow_groups,
    hamming,
    hamming_pairs,
    perceptual_hashes,
    spectrum_centre,
    thumbnails,
)
from mlgate.data.ray_near_duplicates import _hash_chunk, _search
from tests.fixtures.perturbed_digits import near_duplicate_set


def _thumbs() -> torch.Tensor:
    found = near_duplicate_set(originals=1500, copies=300, seed=3)
    # look-alike items too: 60 copies of one digit, each one pixel off, so some band buckets are large
    # (the search refines a bucket of more than 32 items) and the radius is met by many pairs
    base = found.images[0]
    shifted = torch.stack([torch.roll(base, (k % 3 - 1, k // 3 % 3 - 1), (0, 1)) for k in range(60)])
    made = thumbnails(torch.cat([found.images, shifted]))
    assert made is not None
    return made[0]


def _as_set(i: np.ndarray, j: np.ndarray, w: np.ndarray) -> set[tuple[int, int, int]]:
    return set(zip(i.tolist(), j.tolist(), w.tolist(), strict=True))


def test_band_search_cut_by_band_value__finds_exactly_hamming_pairs_within_and_across_splits() -> None:
    thumbs = _thumbs()
    centre = spectrum_centre(thumbs)
    rows = np.arange(len(thumbs), dtype=np.int64)
    hashes = perceptual_hashes(thumbs, centre)
    train, other = rows[:1000], rows[1000:]
    allowed = other[::2]  # near-leaks search only the items without an exact copy in train
    for partitions in (1, 3, 7):
        # hashed in chunks of 700 rows (a task each), cut per band and range of band value
        outputs = {}
        for name, part in (("train", train), ("other", other)):
            outputs[name] = [_hash_chunk(centre, part[s : s + 700], [part[s : s + 700]], partitions, thumbs)
                             for s in range(0, len(part), 700)]
        within: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        across: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for k in range(len(_bands(RADIUS, _WORDS))):
            for p in range(partitions):
                mine = [chunk[k * partitions + p] for chunk in outputs["train"]]
                theirs = [chunk[k * partitions + p] for chunk in outputs["other"]]
                within.append(_search(k, len(mine), None, False, *mine))
                across.append(_search(k, len(theirs), allowed, True, *theirs, *mine))
        joined = [np.concatenate(parts) for parts in zip(*within, strict=True)]
        i, j = hamming_pairs(hashes[train])
        assert len(joined[0]) == len(i)  # each pair once
        assert _as_set(*joined) == _as_set(train[i], train[j], hamming(hashes[train][i], hashes[train][j]))
        joined = [np.concatenate(parts) for parts in zip(*across, strict=True)]
        i, j = hamming_pairs(hashes[allowed], hashes[train])
        assert len(joined[0]) == len(i)
        assert _as_set(*joined) == _as_set(allowed[i], train[j], hamming(hashes[allowed][i], hashes[train][j]))
        assert len(i) > 60  # the look-alikes and the planted copies are found


def test_hash_chunk__the_local_engines_chunks_give_its_hashes_bit_for_bit() -> None:
    thumbs = _thumbs()
    centre = spectrum_centre(thumbs)
    while len(thumbs) < 2 * _HASH_CHUNK:  # two chunks at least
        thumbs = torch.cat([thumbs, thumbs[:400]])
    rows = np.arange(len(thumbs), dtype=np.int64)
    local = np.concatenate([perceptual_hashes(thumbs[s : s + _HASH_CHUNK], centre)
                            for s in range(0, len(thumbs), _HASH_CHUNK)])
    # the second chunk's rows gathered from two "shards", cut by band value in 3 ranges
    chunk = rows[_HASH_CHUNK : 2 * _HASH_CHUNK]
    cut = _HASH_CHUNK + 52
    first, second = thumbs[:cut], thumbs[cut:]
    out = _hash_chunk(centre, chunk, [chunk[:52] - 0, chunk[52:] - cut], 3, first, second)
    assert len(out) == 3 * len(_bands(RADIUS, _WORDS))
    for band in range(len(_bands(RADIUS, _WORDS))):  # each band's ranges hold every row once
        got_rows = np.concatenate([out[band * 3 + p][0] for p in range(3)])
        got = np.concatenate([out[band * 3 + p][1] for p in range(3)])
        assert np.array_equal(np.sort(got_rows), chunk)
        assert np.array_equal(got[np.argsort(got_rows)], local[_HASH_CHUNK : 2 * _HASH_CHUNK])


def test_grow_groups_and_first_confirmed__do_not_depend_on_the_order_of_the_candidates() -> None:
    rng = np.random.default_rng(5)
    n = 400
    i = rng.integers(0, n, 3000)
    j = rng.integers(0, n, 3000)
    keep = i < j
    pairs = np.unique(np.stack([i[keep], j[keep]], 1), axis=0)
    i, j = pairs[:, 0], pairs[:, 1]
    weight = rng.integers(0, 4, len(i))  # many ties: the order would decide them
    distance = rng.random(len(i)).astype(np.float32)
    table = {(a, b): d for a, b, d in zip(i.tolist(), j.tolist(), distance.tolist(), strict=True)}

    def confirm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = np.array([table[(x, y)] for x, y in zip(a.tolist(), b.tolist(), strict=True)], dtype=np.float32)
        return np.where(d <= 0.5, d, np.nan).astype(np.float32)

    def grouped(order: np.ndarray) -> tuple[set[tuple[int, int, float]], set[tuple[int, int, float]]]:
        found = grow_groups(n, i[order], j[order], weight[order], confirm)
        first = first_confirmed(i[order] // 7, i[order], j[order], weight[order], confirm)
        return (set(zip(*(part.tolist() for part in found), strict=True)),
                set(zip(*(part.tolist() for part in first), strict=True)))

    expected = grouped(np.arange(len(i)))
    assert len(expected[0]) > 50 and len(expected[1]) > 20
    for seed in range(3):
        assert grouped(np.random.default_rng(seed).permutation(len(i))) == expected
