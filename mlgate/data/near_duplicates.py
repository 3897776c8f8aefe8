"""Near-duplicates within each split and near-leakage from train: re-encoded, shifted, resized, cropped or
brightened copies of one image, found without comparing every pair.

Steps, each exact for what it claims:

1. **Thumbnail** (per batch, kept for every item): the item in grayscale, uint8, on a fixed
   :data:`THUMB` × :data:`THUMB` grid; smaller images are centred on it and padded with their
   background (the median of their outer ring), so a 28×28 digit keeps its pixel grid; larger ones
   are resampled whole onto it (bilinear with an antialiasing filter, as PIL resizes), so a resized
   copy lands on nearly the same thumbnail. 1 KiB per item.
2. **Hash and search**: a 256-bit perceptual hash per thumbnail: the real and imaginary parts of its
   64 lowest 2-D Fourier frequencies after the phases of F(1, 0) and F(0, 1) are turned to zero
   (which undoes any circular translation exactly), scaled to unit length (brightness and contrast
   drop out), centred on the data's median and projected on 256 fixed random directions, one sign
   bit each. A multi-index search (the hash cut into :data:`RADIUS` + 1 bands of 32 bits: two hashes
   within :data:`RADIUS` bits agree exactly on at least one band, by pigeonhole) lists every pair within
   :data:`RADIUS` bits and no other, in time proportional to the items plus the pairs that share a band.
   **Framed pictures** (:func:`framed_sizes`: photographs and faces, whose own edge is not a flat
   background, judged per picture size by the majority of a sample; every resampled picture) are also
   searched by a *coarse* hash: the 14 lowest DCT
   frequencies of the picture (its own box, resampled onto the grid) blurred by :data:`COARSE_SIGMA`,
   taken as it is and under the :data:`QUERIES` (small zooms, half- and whole-pixel moves), each
   query looked up within :data:`COARSE_RADIUS` bits of the others' plain coarse hashes: a photograph
   moved by a pixel or cropped by a few percent moves by part of a thumbnail pixel, which the Fourier
   hash (made for pictures on a background) does not undo.
3. **Confirmation on the pixels**: a hash only proposes. A pair counts when its *pixel distance* is
   within ``near-duplicate-distance``: the smallest, over the 9 alignments of the two thumbnails by up
   to one pixel, of the root-mean-square difference of their central (THUMB-2)² pixels, each window
   first brought to zero mean and unit RMS (so brightness and contrast do not count), halved: 0 for
   the same picture, about 0.7 for unrelated ones, 1 for a negative. For two framed pictures it is the
   smaller of that and the *smoothed* distance (:func:`refined_distances`: the same scale, both
   blurred by :data:`SMOOTH_SIGMA`, the first picture's own box against the second under the
   :data:`REFINED_ALIGNMENTS`: moves up to 1.5 pixels in half-pixel steps, zooms 0.94 to 1.06),
   measured where the whole-pixel distance is between the threshold and :data:`REFINE` times it (the
   unzoomed moves first, the zoomed alignments only where those leave the pair within 2.5× it).
   A picture on a flat background (a digit) is not smoothed: a blurred, zoomed digit is as close to
   another digit of its class as to its own copy.

4. **Groups**: confirmed pairs join items into groups (connected components). A candidate pair is
   confirmed only when its two items are not yet in one group (Borůvka's way: each round every group
   tries its closest candidate to another group), so a group of 14 copies costs about 13
   confirmations, not 91. A round costs only the candidates still joining two groups. Near-leaked
   items: an item's train candidates are measured per train group, closest hash first, until one is a
   near copy; the train item reported is the closest of those (one per group it nearly copies).

The hashes decide which pairs are looked at: a near copy whose hashes moved by more than their radius
is missed (``bench/near_duplicates.py`` prints recall per set and kind of copy next to imagehash).

Exact duplicates (equal content keys) are reported by :mod:`mlgate.data.stats` and left out here:
each split is searched on its distinct contents only, and a non-train item with an exact copy in
train is not listed again as a near copy.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

import numpy as np
import torch
from pydantic import BaseModel, PrivateAttr

from mlgate.data.item_lists import append_blocks

THUMB = 32
"""Side of the grayscale thumbnail kept per item (1 KiB)."""
HASH_BITS = 256
RADIUS = 7
"""Hamming radius of the candidate search, in bits of the 256-bit hash (8 bands of 32 bits)."""
MAX_LISTED = 100
"""Near-duplicate groups and near-leaked items listed per split; each list carries its total."""
MAX_GROUP_LISTED = 20
"""Members listed per group in report.json (every member is in the full listing)."""
MAX_PICTURED = 8
"""Rows of the picture: near-leaked items with their train copy, else the largest groups."""
MAX_PICTURED_MEMBERS = 8

ItemId = int | str


class NearDuplicateGroup(BaseModel):
    """Items of one split that are one picture: connected by near copies within ``near-duplicate-distance``
    (a chain of close copies may join items that are further apart). Keep one of them."""

    size: int
    items: list[ItemId]
    """The first 20 members, in reading order."""
    labels: list[int]
    """Their labels, in the same order."""
    distance: float
    """The largest pixel distance of the confirmed copies that join the group."""


class NearDuplicateGroups(BaseModel):
    """Near-duplicate groups within one split: ``total`` groups holding ``items`` items, the 100 largest
    listed (largest first; ties in reading order of their first item). Every member of every group is in
    :attr:`NearDuplicateStats.listing`."""

    total: int = 0
    items: int = 0
    """Items of the split in a group."""
    largest: int = 0
    """Members of the largest group."""
    groups: list[NearDuplicateGroup] = []


class NearLeakedItem(BaseModel):
    """An item with no exact copy in ``train`` but a near copy there: its closest train item."""

    item: ItemId
    label: int
    train_item: ItemId
    train_label: int
    distance: float


class NearLeakedItems(BaseModel):
    """Items of one non-train split with a near copy in ``train``: ``total`` of them, the first 100 (in
    reading order) listed, each with its closest train item."""

    total: int = 0
    items: list[NearLeakedItem] = []


@dataclass(frozen=True)
class GroupMember:
    """One member of a near-duplicate group (for a full list written beside report.json)."""

    split: str
    group: int
    """The group's number within its split (1 = the largest)."""
    item: ItemId
    label: int


@dataclass
class NearDuplicateListing:
    """Everything found, not only the first 100: every member of every near-duplicate group, and every
    near-leaked item with its closest train item and distance. Never in report.json."""

    members: list[GroupMember] = field(default_factory=list)
    leaked: dict[str, list[NearLeakedItem]] = field(default_factory=dict)


class NearDuplicateStats(BaseModel):
    """Near-duplicates (``distance`` ≤ ``threshold``) of the image splits; exact copies excluded."""

    checked: bool = False
    """False when no split holds images (feature vectors, scalars): nothing was searched."""
    threshold: float = 0.0
    """The ``near-duplicate-distance`` the copies were confirmed with."""
    within: dict[str, NearDuplicateGroups] = {}
    """Per split, its near-duplicate groups."""
    leaked: dict[str, NearLeakedItems] = {}
    """Per non-train split, its items with a near copy in ``train``."""
    confirmations: int = 0
    """Candidate pairs compared on the pixels (about the items in groups, not the pairs within them)."""
    _pictured: list[PicturedGroup] = PrivateAttr(default_factory=list)
    _listing: NearDuplicateListing = PrivateAttr(default_factory=NearDuplicateListing)

    @property
    def pictured(self) -> list[PicturedGroup]:
        """Up to :data:`MAX_PICTURED` rows with their thumbnails for a picture: near-leaked items beside
        their closest train item, else the largest groups; never in report.json (and empty on
        statistics read back from it)."""
        return self._pictured

    @property
    def listing(self) -> NearDuplicateListing:
        """Every group member and near-leaked item (empty on statistics read back from report.json)."""
        return self._listing

    @property
    def near_leaked(self) -> int:
        return sum(leaked.total for leaked in self.leaked.values())


@dataclass(frozen=True)
class PicturedGroup:
    """One row of the picture: members ``(split, item, label)`` side by side with their thumbnails, and
    the largest distance that joins them."""

    members: list[tuple[str, ItemId, int]]
    images: list[torch.Tensor]
    distance: float
    size: int
    """All members of the group (the row shows up to :data:`MAX_PICTURED_MEMBERS`)."""


# ---------------------------------------------------------------------------------------------------
# Thumbnails


def thumbnails(images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]] | None:
    """``(n, THUMB, THUMB)`` uint8 grayscale thumbnails of a batch and where the pictures sit on them
    (top, left, height, width); None when its items are not images ((H, W), (C, H, W) or (H, W, C)
    with C in 1, 3 or 4, each side at least 4 pixels). Large items go through in chunks of about
    16 M values, so a batch of photos never needs a float copy of itself."""
    per_item = images[0].numel() if images.ndim and len(images) else 1
    rows = max(1, _CHUNK_VALUES // max(per_item, 1))
    if len(images) > rows:
        parts = [_thumbnails(images[start : start + rows]) for start in range(0, len(images), rows)]
        if parts[0] is None:
            return None
        return torch.cat([part[0] for part in parts if part is not None]), parts[0][1]
    return _thumbnails(images)


_CHUNK_VALUES = 1 << 24


def _thumbnails(images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]] | None:
    x = images
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.permute(0, 3, 1, 2)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] not in (1, 3, 4) or min(x.shape[2:]) < 4 or x.shape[0] == 0:
        return None
    if x.dtype == torch.uint8 and x.shape[1] == 1:
        gray = x[:, 0]
    elif x.dtype == torch.uint8:
        gray = x[:, :3].to(torch.float32).mean(dim=1).round_().to(torch.uint8)
    else:  # any range: stretched per item to 0..255, in three passes (float data is the common case)
        gray = x[:, 0].to(torch.float32) if x.shape[1] == 1 else x[:, :3].to(torch.float32).mean(dim=1)
        low, high = torch.aminmax(gray.reshape(len(gray), -1), dim=1)
        if not bool(torch.isfinite(low).all() and torch.isfinite(high).all()):
            gray = torch.nan_to_num(gray, nan=0.0, posinf=0.0, neginf=0.0)
            low, high = torch.aminmax(gray.reshape(len(gray), -1), dim=1)
        scale = 255.0 / (high - low).clamp_min(1e-12)
        bias = 0.5 - low * scale  # + 0.5: the conversion to uint8 truncates; every value is in [0.5, 255.5]
        gray = torch.addcmul(bias.view(-1, 1, 1), gray, scale.view(-1, 1, 1)).to(torch.uint8)
    h, w = gray.shape[1:]
    if h > THUMB or w > THUMB:  # the whole picture, resampled with an antialiasing filter (as PIL resizes)
        small = torch.nn.functional.interpolate(gray.unsqueeze(1).float(), size=(THUMB, THUMB), mode="bilinear",
                                                antialias=True, align_corners=False)
        return small[:, 0].round_().clamp_(0, 255).to(torch.uint8), (0, 0, THUMB, THUMB)
    # pad with the median of the image's outer ring (its background), so the frame adds no edge
    ring = torch.cat([gray[:, 0], gray[:, -1], gray[:, 1:-1, 0], gray[:, 1:-1, -1]], 1)
    out = ring.median(dim=1).values.view(-1, 1, 1).expand(-1, THUMB, THUMB).contiguous()
    top, left = (THUMB - h) // 2, (THUMB - w) // 2
    out[:, top : top + h, left : left + w] = gray
    return out, (top, left, h, w)


# ---------------------------------------------------------------------------------------------------
# Perceptual hash

_U = 6
"""Frequencies u = 0..6, v = -6..6 are transformed; the hash uses the 64 lowest of them."""
_COEFFICIENTS = 64


def _frequencies() -> list[tuple[int, int]]:
    """The 64 lowest (u, v) of the half plane, DC and the two first harmonics (whose phase is set to
    zero) left out; ties broken by (u, v)."""
    half = [(u, v) for u in range(_U + 1) for v in range(-_U, _U + 1)
            if (u > 0 or v > 0) and (u, v) not in ((0, 1), (1, 0))]
    return sorted(half, key=lambda f: (f[0] ** 2 + f[1] ** 2, f))[:_COEFFICIENTS]


def _dft_matrices() -> tuple[torch.Tensor, torch.Tensor]:
    """Over x (THUMB -> cos, sin of v = -6..6) and over y (cos, sin of u = 0..6, transposed)."""
    n = torch.arange(THUMB, dtype=torch.float64)
    over_x = 2 * math.pi * n[:, None] * torch.arange(-_U, _U + 1, dtype=torch.float64)[None, :] / THUMB
    over_y = 2 * math.pi * torch.arange(_U + 1, dtype=torch.float64)[:, None] * n[None, :] / THUMB
    return (torch.cat([torch.cos(over_x), torch.sin(over_x)], 1).float(),
            torch.cat([torch.cos(over_y), torch.sin(over_y)], 0).float())


_OVER_X, _OVER_Y = _dft_matrices()
_FREQ = _frequencies()
_FU = torch.tensor([u for u, _ in _FREQ])
_FV = torch.tensor([v for _, v in _FREQ])
_FUV = torch.stack([_FU, _FV]).to(torch.float32)


def _gather() -> torch.Tensor:
    """Where cos u cos v, cos u sin v, sin u cos v and sin u sin v of F(1, 0), F(0, 1) and the 64
    frequencies sit in the flattened ``(n, [cos u | sin u], [cos v | sin v])`` transform."""
    k = 2 * _U + 1
    freq = [(1, 0), (0, 1), *_FREQ]
    return torch.tensor([(u + (_U + 1) * su) * 2 * k + v + _U + k * sv
                         for su, sv in ((0, 0), (0, 1), (1, 0), (1, 1)) for u, v in freq])


_GATHER = _gather()
_PROJECTION = torch.randn(2 * _COEFFICIENTS, HASH_BITS, generator=torch.Generator().manual_seed(20261130))
"""Fixed random projection of the 128 translation-free values to 256 sign bits (SimHash): every bit
sees every frequency, so the bits are balanced and a small change flips few of them."""
_WORDS = HASH_BITS // 64
_CHUNK = 8192


def spectra(thumbs: torch.Tensor) -> torch.Tensor:
    """``(n, 128)`` float32: the real and imaginary parts of the 64 lowest 2-D Fourier frequencies of
    each thumbnail after its translation is undone (the phases of F(1, 0) and F(0, 1) set to zero),
    scaled to unit length (so brightness and contrast do not count)."""
    n = len(thumbs)
    # F(u, v) = sum_{y,x} I(y, x) exp(-2 pi i (u y + v x) / N), separably: over y (the 7 u's), then x
    over_y = torch.matmul(_OVER_Y, thumbs.to(torch.float32))  # (n, [cos u | sin u], x)
    both = (over_y.reshape(n * (2 * _U + 2), THUMB) @ _OVER_X).reshape(n, -1)
    # the four products (cos u cos v, cos u sin v, sin u cos v, sin u sin v) of the first harmonics
    # and the 64 frequencies; cos(a + b) = cos a cos b - sin a sin b, sin(a + b) = sin a cos b + cos a sin b
    cc, cs, sc, ss = both.index_select(1, _GATHER).reshape(n, 4, _COEFFICIENTS + 2).unbind(1)
    re, im = cc - ss, -(cs + sc)
    # a translation by (dy, dx) turns F(u, v) by -2 pi (u dy + v dx) / N: undo it by turning every
    # F(u, v) back by u times the phase of F(1, 0) plus v times the phase of F(0, 1)
    phases = torch.atan2(im[:, :2], re[:, :2])
    angle = phases @ _FUV  # (n, 64)
    cos, sin = torch.cos(angle), torch.sin(angle)
    re, im = re[:, 2:], im[:, 2:]
    values = torch.cat([re * cos + im * sin, im * cos - re * sin], 1)
    return values / values.norm(dim=1, keepdim=True).clamp_min(1e-12)


def perceptual_hashes(thumbs: torch.Tensor, centre: torch.Tensor | None = None) -> np.ndarray:
    """One :data:`HASH_BITS`-bit hash per ``(n, THUMB, THUMB)`` thumbnail, as ``(n, HASH_BITS / 64)``
    uint64 words: the signs of a fixed random projection of its :func:`spectra` minus ``centre`` (the
    median spectrum of the data, so the bits are balanced on it; :func:`spectrum_centre`)."""
    parts = []
    for start in range(0, len(thumbs), _CHUNK):
        values = spectra(thumbs[start : start + _CHUNK])
        if centre is not None:
            values = values - centre
        bits = ((values @ _PROJECTION) > 0).numpy()
        parts.append(np.packbits(bits, axis=1, bitorder="little").view(np.uint64))
    return np.concatenate(parts) if parts else np.zeros((0, _WORDS), dtype=np.uint64)


def spectrum_centre(thumbs: torch.Tensor, sample: int = 4096) -> torch.Tensor:
    """The per-value median of the :func:`spectra` of an evenly spaced sample of ``thumbs``."""
    step = max(1, len(thumbs) // sample)
    picked = thumbs[::step][:sample]
    # a chunk at a time: the transform's intermediates of 4,096 rows at once are 25 MiB, of 512 rows 3 MiB
    return torch.cat([spectra(picked[start : start + 512]) for start in range(0, len(picked), 512)]
                     ).median(dim=0).values


# ---------------------------------------------------------------------------------------------------
# Framed pictures (photographs, faces): a coarse hash queried under small zooms and half-pixel moves

COARSE_RADIUS = 15
"""Hamming radius of the coarse search, in bits of the 256-bit coarse hash (16 bands of 16 bits)."""
COARSE_SIGMA = 1.0
"""The coarse hash and the framing test see the thumbnail blurred by a Gaussian of this width (pixels)."""
_COARSE_FREQ = [(u, v) for u in range(5) for v in range(5) if 0 < u + v <= 4]
"""The 14 lowest 2-D DCT frequencies (u + v ≤ 4, the constant left out): a picture's broad layout."""
QUERIES: tuple[tuple[float, float, float], ...] = (
    *((zoom, dy, dx) for zoom in (1.0, 1.03, 1.06) for dy in (0.0, -0.5, 0.5) for dx in (0.0, -0.5, 0.5)),
    *((1.0, dy, dx) for dy in (-1.0, 0.0, 1.0) for dx in (-1.0, 0.0, 1.0) if dy or dx))
"""(zoom, down, right) in thumbnail pixels under which each framed picture's coarse hash is also taken
and looked up among the others' plain coarse hashes (both ways): a copy cropped by a few percent is
the original zoomed in, a photograph moved by a pixel moves by part of a thumbnail pixel."""
FLAT_EDGE = 3.0
"""A picture whose outer band of pixels mostly stays within this many grey levels of the band's median
(block means, see :func:`framed`) sits on a background (a digit, a scan): the Fourier hash already
undoes its moves, and it is left out of the coarse search and of the refined distance."""


def _dct_rows() -> torch.Tensor:
    n = torch.arange(THUMB, dtype=torch.float64)
    return torch.stack([torch.cos(math.pi * (2 * n + 1) * k / (2 * THUMB)) for k in range(5)]).float()


_DCT = _dct_rows()
_COARSE_PROJECTION = torch.randn(len(_COARSE_FREQ), HASH_BITS, generator=torch.Generator().manual_seed(20261207))
_COARSE_INDEX = torch.tensor([u * 5 + v for u, v in _COARSE_FREQ])


@functools.cache
def _blur_matrix(size: int, sigma: float) -> torch.Tensor:
    """``(size, size)``: a 1-D Gaussian blur of width ``sigma`` as a matrix (edge pixels repeated), so a
    stack of pictures is blurred by two matrix products (faster than a convolution on a CPU)."""
    radius = max(1, int(3 * sigma + 0.5))
    kernel = torch.exp(-torch.arange(-radius, radius + 1, dtype=torch.float64) ** 2 / (2 * sigma * sigma))
    kernel /= kernel.sum()
    matrix = torch.zeros(size, size, dtype=torch.float64)
    for offset, weight in zip(range(-radius, radius + 1), kernel.tolist(), strict=True):
        source = (torch.arange(size) + offset).clamp(0, size - 1)
        matrix[torch.arange(size), source] += weight
    return matrix.float()


def blurred(pictures: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(n, h, w)`` float32: the pictures blurred by a Gaussian of width ``sigma`` pixels (edge pixels
    repeated); unchanged (as float) for ``sigma`` 0."""
    x = pictures.to(torch.float32)
    if sigma <= 0:
        return x
    h, w = x.shape[-2:]
    return torch.matmul(torch.matmul(_blur_matrix(h, sigma), x), _blur_matrix(w, sigma).T)


def _grids(alignments: Sequence[tuple[float, float, float]]) -> torch.Tensor:
    """The sampling grid of each ``(zoom, down, right)``: ``(len(alignments), THUMB, THUMB, 2)``."""
    theta = torch.tensor([[[1 / zoom, 0.0, 2 * dx / THUMB], [0.0, 1 / zoom, 2 * dy / THUMB]]
                          for zoom, dy, dx in alignments])
    return torch.nn.functional.affine_grid(theta, [len(alignments), 1, THUMB, THUMB], align_corners=False)


def aligned(pictures: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
    """``(n, len(grids), THUMB, THUMB)``: each ``(n, THUMB, THUMB)`` float picture resampled (bilinear,
    edge pixels repeated) under each alignment of :func:`_grids`."""
    n, k = len(pictures), len(grids)
    moved = torch.nn.functional.grid_sample(pictures.unsqueeze(0), grids.reshape(1, -1, THUMB, 2),
                                            align_corners=False, padding_mode="border")
    return moved[0].reshape(n, k, THUMB, THUMB)


_QUERY_GRIDS = _grids(QUERIES)


def coarse_spectra(pictures: torch.Tensor) -> torch.Tensor:
    """``(..., 14)`` float32: the :data:`_COARSE_FREQ` DCT coefficients of ``(..., THUMB, THUMB)`` pictures
    (already blurred by :data:`COARSE_SIGMA`), scaled to unit length (brightness and contrast drop out)."""
    both = (_DCT @ pictures.to(torch.float32) @ _DCT.T).flatten(-2)
    values = both.index_select(-1, _COARSE_INDEX)
    return values / values.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def framed(thumbs: torch.Tensor, boxes: np.ndarray) -> np.ndarray:
    """Per thumbnail, whether its picture (``boxes``: top, left, height, width on the thumbnail) reaches
    its frame: one that fills the thumbnail (resampled, or 32×32) always does; a smaller one when most
    of the outer band of its own pixels (2 pixels wide, averaged over blocks of 2×4 so pixel noise does
    not count) is at least :data:`FLAT_EDGE` grey levels away from the band's median (a background is
    flat; a stroke that touches the edge does not make a frame)."""
    out = np.zeros(len(thumbs), dtype=bool)
    for box in np.unique(boxes, axis=0) if len(boxes) else []:
        rows = np.flatnonzero((boxes == box).all(1))
        top, left, h, w = box.tolist()
        if (h, w) == (THUMB, THUMB):  # no padding; a resampled picture moves by parts of a thumbnail pixel
            out[rows] = True
            continue
        some = thumbs if len(rows) == len(thumbs) else thumbs[torch.from_numpy(rows)]
        picture = some[:, top : top + h, left : left + w]
        n = len(rows)
        bands = (picture[:, :2], picture[:, -2:], picture[:, :, :2].transpose(1, 2), picture[:, :, -2:].transpose(1, 2))
        blocks = torch.cat([band[..., : band.shape[-1] // 4 * 4].to(torch.float32).reshape(n, 2, -1, 4).mean((1, 3))
                            for band in bands], 1)
        away = ((blocks - blocks.median(dim=1, keepdim=True).values).abs() >= FLAT_EDGE).sum(1)
        out[rows] = (2 * away > blocks.shape[1]).numpy()
    return out


def framed_sizes(thumbs: torch.Tensor | ThumbnailStore, boxes: np.ndarray, sample: int = 1024) -> np.ndarray:
    """Per row, whether the pictures of its size (its box) are framed: pictures of one size mostly sit on
    a background (digits, scans) or mostly fill their frame (faces, photographs), so :func:`framed` is
    judged on up to ``sample`` evenly spaced rows of each size and the majority decides for all of them
    (a digit whose stroke touches its edge is still a digit)."""
    out = np.zeros(len(boxes), dtype=bool)
    if not len(boxes):
        return out
    code = boxes.astype(np.int64) @ np.array([1 << 36, 1 << 24, 1 << 12, 1], dtype=np.int64)
    values, inverse = np.unique(code, return_inverse=True)
    for k in range(len(values)):
        rows = np.flatnonzero(inverse.reshape(-1) == k)
        picked = np.unique(rows[np.linspace(0, len(rows) - 1, min(sample, len(rows))).round().astype(np.int64)])
        out[rows] = 2 * int(framed(thumbs[picked], boxes[picked]).sum()) > len(picked)
    return out


def picture_views(thumbs: torch.Tensor, boxes: np.ndarray | None) -> torch.Tensor:
    """``(n, THUMB, THUMB)`` float: each thumbnail's picture (its box; ``boxes`` per row, None: the whole
    thumbnail) resampled onto the whole grid, so a small framed picture (a 25×25 face) fills it and the
    padding around it does not count."""
    x = thumbs.to(torch.float32)
    if boxes is None or not len(boxes):
        return x
    out = x.clone()
    for box in np.unique(boxes, axis=0):
        top, left, h, w = box.tolist()
        if (h, w) == (THUMB, THUMB):
            continue
        rows = torch.from_numpy(np.flatnonzero((boxes == box).all(1)))
        picture = x[rows, top : top + h, left : left + w].unsqueeze(1)
        out[rows] = torch.nn.functional.interpolate(picture, size=(THUMB, THUMB), mode="bilinear",
                                                    align_corners=False)[:, 0]
    return out


def coarse_hashes(thumbs: torch.Tensor, centre: torch.Tensor, queries: bool = False,
                  boxes: np.ndarray | None = None) -> np.ndarray:
    """The 256-bit coarse hash of each ``(n, THUMB, THUMB)`` thumbnail's :func:`picture_views` (with
    ``boxes``), ``(n, 4)`` uint64 words: the signs of a fixed random projection of its
    :func:`coarse_spectra` minus ``centre`` (:func:`coarse_centre`); with ``queries``,
    ``(len(QUERIES), n, 4)``: the same of the picture under each of the :data:`QUERIES` (the first is
    the picture as it is)."""
    x = picture_views(thumbs, boxes).reshape(len(thumbs), THUMB * THUMB)
    if queries:  # blur, resampling and DCT are linear: one matrix product for every query at once
        values = (x @ _query_operator()).reshape(len(x), len(QUERIES), -1).transpose(0, 1)
        values = values / values.norm(dim=-1, keepdim=True).clamp_min(1e-12) - centre
    else:
        values = coarse_spectra(blurred(x.reshape(-1, THUMB, THUMB), COARSE_SIGMA)) - centre
    bits = ((values @ _COARSE_PROJECTION) > 0).numpy()
    return np.packbits(bits, axis=-1, bitorder="little").view(np.uint64)


@functools.cache
def _query_operator() -> torch.Tensor:
    """``(THUMB², len(QUERIES) · 14)``: the :func:`coarse_spectra` coefficients (before scaling to unit
    length) of a picture blurred by :data:`COARSE_SIGMA` and resampled under each of the
    :data:`QUERIES`, as one linear map (built on first use: it costs a fraction of a second)."""
    basis = blurred(torch.eye(THUMB * THUMB).reshape(-1, THUMB, THUMB), COARSE_SIGMA)
    parts = []
    for grid in _QUERY_GRIDS:
        moved = aligned(basis, grid[None])[:, 0]
        parts.append((_DCT @ moved @ _DCT.T).flatten(-2).index_select(-1, _COARSE_INDEX))
    return torch.stack(parts, 1).reshape(THUMB * THUMB, -1)


def coarse_centre(thumbs: torch.Tensor, boxes: np.ndarray | None = None) -> torch.Tensor:
    """The per-value median of the :func:`coarse_spectra` of the :func:`picture_views` of ``thumbs``
    (zero for none)."""
    if not len(thumbs):
        return torch.zeros(len(_COARSE_FREQ))
    # a chunk of views at a time: the blurred views of a 4,096-row sample would hold ~70 MiB at once
    spectra = [coarse_spectra(blurred(picture_views(thumbs[start : start + _VIEW_CHUNK],
                                                    None if boxes is None else boxes[start : start + _VIEW_CHUNK]),
                                      COARSE_SIGMA)) for start in range(0, len(thumbs), _VIEW_CHUNK)]
    return torch.cat(spectra).median(dim=0).values


_VIEW_CHUNK = 512
"""Pictures viewed, blurred or aligned at once: their intermediates stay a few MiB per thread."""


def coarse_pairs(queries: np.ndarray, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of framed pictures whose coarse hashes are within :data:`COARSE_RADIUS` bits under one of the
    :data:`QUERIES` (``(len(QUERIES), n, 4)``, the first the plain hash), each once: within one set
    ``(i, j)`` with ``i < j`` (either may be the query), or across ``queries`` × ``index`` (the same
    layout for the other set; both ways round)."""
    width = np.int64(queries.shape[1] if index is None else index.shape[1])
    plain = queries[0] if index is None else index[0]
    keys = [np.zeros(0, np.int64)]
    for query in queries:
        i, j = hamming_pairs(query, plain, COARSE_RADIUS)
        if index is None:
            i, j = np.minimum(i, j)[i != j], np.maximum(i, j)[i != j]
        keys.append(i * width + j)
    if index is not None:
        for query in index[1:]:
            j, i = hamming_pairs(query, queries[0], COARSE_RADIUS)
            keys.append(i * width + j)
    key = np.unique(np.concatenate(keys))
    return key // width, key % width


# ---------------------------------------------------------------------------------------------------
# Multi-index Hamming search


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between rows of two ``(n, words)`` uint64 arrays."""
    return np.bitwise_count(a ^ b).sum(axis=1, dtype=np.int64)


def _bands(radius: int, words: int) -> list[tuple[int, int, int]]:
    """(word, shift, width) of the radius + 1 disjoint bands that cut the hash, each word into
    (radius + 1) / words bands as even as possible (no band straddles two words)."""
    per_word = (radius + 1) // words
    if per_word * words != radius + 1:
        raise ValueError(f"radius + 1 = {radius + 1} bands do not split evenly over {words} words")
    widths = [64 // per_word + (1 if k < 64 % per_word else 0) for k in range(per_word)]
    return [(word, sum(widths[:k]), w) for word in range(words) for k, w in enumerate(widths)]


def _band_keys(hashes: np.ndarray, band: tuple[int, int, int]) -> np.ndarray:
    word, shift, width = band
    return (hashes[:, word] >> np.uint64(shift)) & np.uint64((1 << width) - 1)


def hamming_pairs(a: np.ndarray, b: np.ndarray | None = None, radius: int = RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of ``(n, words)`` hashes within ``radius`` bits, exactly and once: ``(i, j)`` with
    ``i < j`` within ``a`` when ``b`` is None, else ``i`` indexing ``a`` and ``j`` indexing ``b``.

    Multi-index hashing: the hash is cut into radius + 1 bands, and two hashes within ``radius`` bits
    agree exactly on at least one band (pigeonhole), so grouping by each band's value finds every
    such pair; each candidate is then checked on the whole hash, and kept only in the first band it
    agrees on."""
    bands = _bands(radius, a.shape[1])
    keys_a = [_band_keys(a, band) for band in bands]
    keys_b = keys_a if b is None else [_band_keys(b, band) for band in bands]
    found = [band_pairs(a, b, bands, k, keys_a[k], None if b is None else keys_b[k], radius)
             for k in range(len(bands))]
    return np.concatenate([i for i, _ in found]), np.concatenate([j for _, j in found])


def band_pairs(a: np.ndarray, b: np.ndarray | None, bands: list[tuple[int, int, int]], k: int, key_a: np.ndarray,
               key_b: np.ndarray | None, radius: int = RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of :func:`hamming_pairs` that band ``k`` lists: within ``radius`` bits, agreeing on band
    ``k`` (``key_a``, ``key_b``: its values) and on no earlier band. Every pair agreeing on band ``k`` has
    equal keys, so the items can be cut by key value and each part searched apart
    (:mod:`mlgate.data.ray_near_duplicates`)."""
    other = a if b is None else b
    found_i: list[np.ndarray] = [np.zeros(0, np.int64)]
    found_j: list[np.ndarray] = [np.zeros(0, np.int64)]
    for i, j in _band_pairs(a, b, bands, k, key_a, key_b):
        for start in range(0, len(i), _PAIRS_AT_ONCE):  # bounded memory
            part_i, part_j = i[start : start + _PAIRS_AT_ONCE], j[start : start + _PAIRS_AT_ONCE]
            x = a[part_i] ^ other[part_j]
            keep = np.flatnonzero(np.bitwise_count(x).sum(axis=1, dtype=np.int64) <= radius)
            x = x[keep]
            for word, shift, width in bands[:k]:  # found already in an earlier band: it agrees there
                differs = ((x[:, word] >> np.uint64(shift)) & np.uint64((1 << width) - 1)) != 0
                keep, x = keep[differs], x[differs]
            found_i.append(part_i[keep])
            found_j.append(part_j[keep])
    return np.concatenate(found_i), np.concatenate(found_j)


_PAIRS_AT_ONCE = 1 << 21
_BIG = 32
"""A band's bucket with more items than this (more pairs than its square across two sets) is refined."""


def _band_pairs(a: np.ndarray, b: np.ndarray | None, bands: list[tuple[int, int, int]], k: int,
                key_a: np.ndarray, key_b: np.ndarray | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs that agree on band ``k``, as :func:`_same_key_pairs` lists them, each once; but a large
    bucket (look-alike items share a band: its pairs grow with the square of the data) is refined
    first: its pairs within the radius also agree on one of radius + 1 parts of the other bands (the
    other bands, the last cut in two halves; pigeonhole again), so it lists the pairs that agree on
    band ``k`` and one part, each in the first part it agrees on."""
    others = [band for n, band in enumerate(bands) if n != k]
    if not others or any(width > 32 for _, _, width in bands):
        yield _same_key_pairs(key_a, key_b)
        return
    word, shift, width = others.pop()
    parts = [*others, (word, shift, width // 2), (word, shift + width // 2, width - width // 2)]
    if key_b is None:
        values, inverse, counts = np.unique(key_a, return_inverse=True, return_counts=True)
        big_a = counts[inverse] > _BIG
        big_b = big_a
    else:
        values, counts_a = np.unique(key_a, return_counts=True)
        counts_b = np.searchsorted(np.sort(key_b), values, side="right") - np.searchsorted(np.sort(key_b), values)
        big_keys = values[counts_a * counts_b > _BIG * _BIG]
        big_a, big_b = np.isin(key_a, big_keys), np.isin(key_b, big_keys)
    yield _subset_pairs(key_a, key_b, ~big_a, ~big_b)
    if not big_a.any():
        return
    rows_a = np.flatnonzero(big_a)
    rows_b = rows_a if key_b is None else np.flatnonzero(big_b)
    other = a if b is None else b
    parts_a = [_band_keys(a[rows_a], part) for part in parts]
    parts_b = parts_a if b is None else [_band_keys(other[rows_b], part) for part in parts]
    for m, part in enumerate(parts):
        combined_a = (key_a[rows_a] << np.uint64(part[2])) | parts_a[m]
        combined_b = None if key_b is None else (key_b[rows_b] << np.uint64(part[2])) | parts_b[m]
        i, j = _same_key_pairs(combined_a, combined_b)
        keep = np.ones(len(i), dtype=bool)
        for earlier in range(m):  # found already in an earlier part
            keep &= parts_a[earlier][i] != parts_b[earlier][j]
        yield rows_a[i[keep]], rows_b[j[keep]]


def _subset_pairs(key_a: np.ndarray, key_b: np.ndarray | None, in_a: np.ndarray, in_b: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_same_key_pairs` of the items ``in_a`` (and ``in_b``), in the whole sets' indices."""
    rows_a = np.flatnonzero(in_a)
    rows_b = rows_a if key_b is None else np.flatnonzero(in_b)
    i, j = _same_key_pairs(key_a[rows_a], None if key_b is None else key_b[rows_b])
    return rows_a[i], rows_b[j]


def _same_key_pairs(key_a: np.ndarray, key_b: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with equal keys: i < j within ``key_a``, or across ``key_a`` × ``key_b``."""
    if key_b is None:
        order = np.argsort(key_a, kind="stable")
        keys = key_a[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        sizes = np.diff(np.r_[starts, len(keys)])
        big = sizes > 1
        starts, sizes = starts[big], sizes[big]
        # all pairs (p, q), p < q, inside each group: for offset d = 1..size-1, p runs over size - d
        pairs_per = sizes * (sizes - 1) // 2
        if pairs_per.sum() == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        group = np.repeat(np.arange(len(sizes)), pairs_per)
        rank = np.arange(pairs_per.sum()) - np.repeat(np.cumsum(pairs_per) - pairs_per, pairs_per)
        p, q = _triangle(rank, sizes[group])
        i, j = order[starts[group] + p], order[starts[group] + q]
        return np.minimum(i, j), np.maximum(i, j)
    order_b = np.argsort(key_b, kind="stable")
    sorted_b = key_b[order_b]
    lo = np.searchsorted(sorted_b, key_a, side="left")
    counts = np.searchsorted(sorted_b, key_a, side="right") - lo
    i = np.repeat(np.arange(len(key_a)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return i, order_b[np.repeat(lo, counts) + offset]


def _triangle(rank: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``rank``-th pair (p, q), p < q, of ``size`` items in row order (0,1), (0,2), …, (1,2), …"""
    # pairs before row p: p * size - p * (p + 1) / 2; invert with the quadratic formula, then fix rounding
    s = size.astype(np.float64)
    p = np.floor((2 * s - 1 - np.sqrt((2 * s - 1) ** 2 - 8 * rank)) / 2).astype(np.int64)
    before = p * size - p * (p + 1) // 2
    p = np.where(before > rank, p - 1, p)
    before = p * size - p * (p + 1) // 2
    after = (p + 1) * size - (p + 1) * (p + 2) // 2
    p = np.where(after <= rank, p + 1, p)
    before = p * size - p * (p + 1) // 2
    return p, p + 1 + (rank - before)


# ---------------------------------------------------------------------------------------------------
# Confirmation on the pixels

_WINDOW = THUMB - 2
_PAIR_CHUNK = 512
"""Pairs measured at once: about 8 MiB of intermediates (the grouped convolution's), per thread."""


def pixel_distances(thumbs_a: torch.Tensor, thumbs_b: torch.Tensor) -> torch.Tensor:
    """Per pair of rows of two ``(n, THUMB, THUMB)`` stacks, the pixel distance (module docstring): the
    smallest over the 9 alignments by up to one pixel of half the RMS difference of the brightness-
    and contrast-normalised windows, ``sqrt((1 - correlation) / 2)``: the central window of ``a``
    against each window of ``b`` moved by up to one pixel. Two flat windows are at distance 0, a flat
    and a textured one at about 0.71."""
    parts = [torch.zeros(0)]
    for start in range(0, len(thumbs_a), _PAIR_CHUNK):
        a = thumbs_a[start : start + _PAIR_CHUNK, 1:-1, 1:-1].to(torch.float32)
        b = thumbs_b[start : start + _PAIR_CHUNK].to(torch.float32)
        n = len(a)
        a = a - a.mean((1, 2), keepdim=True)
        b = b - b.mean((1, 2), keepdim=True)  # centred once: the windows' own means are taken out below
        norm_a = a.square().sum((1, 2)).sqrt()
        # the 9 dot products of each pair at once: a grouped convolution, one group per pair
        dots = torch.nn.functional.conv2d(b.unsqueeze(0), a.unsqueeze(1), groups=n)[0].reshape(n, 9)
        mean = torch.nn.functional.avg_pool2d(b.unsqueeze(1), _WINDOW, stride=1).reshape(n, 9)
        square = torch.nn.functional.avg_pool2d(b.square().unsqueeze(1), _WINDOW, stride=1).reshape(n, 9)
        norm_b = ((square - mean * mean).clamp_min(0.0) * _WINDOW**2).sqrt()
        flat_a, flat_b = norm_a[:, None] < 1e-3, norm_b < 1e-3
        corr = dots / (norm_a[:, None] * norm_b).clamp_min(1e-6)  # sum a (b - mean b) = sum a b: a is centred
        corr = torch.where(flat_a & flat_b, 1.0, torch.where(flat_a | flat_b, 0.0, corr))
        parts.append(((1.0 - corr) / 2).clamp_min(0.0).sqrt().amin(1))
    return torch.cat(parts)


REFINE = 8.0
"""A pair of framed pictures between the threshold and ``REFINE`` × it under the whole-pixel moves is
measured again by :func:`refined_distances`."""
SMOOTH_SIGMA = 1.25
"""The refined comparison sees both thumbnails blurred by a Gaussian of this width (thumbnail pixels)."""
_MOVES = (0.0, -0.5, 0.5, -1.0, 1.0, -1.5, 1.5)
REFINED_ALIGNMENTS: tuple[tuple[float, float, float], ...] = tuple(
    (zoom, dy, dx) for zoom in (1.0, 0.97, 1.03, 0.94, 1.06) for dy in _MOVES for dx in _MOVES)
"""(zoom, down, right) of the second picture against the first in the refined comparison: moves up to
1.5 pixels in half-pixel steps, each at zooms 0.94 to 1.06 (a crop of a few percent, resized)."""
_MARGIN = 2
_REFINED_GRIDS = _grids(REFINED_ALIGNMENTS)
_AT_ZOOM_1 = len(_MOVES) ** 2
"""The first alignments (zoom 1), tried first."""
_ZOOM_WITHIN = 2.5
"""The zoomed alignments are tried only where the unzoomed ones leave a pair within this × the threshold."""
_FINE_CHUNK = 64


def refined_distances(thumbs_a: torch.Tensor, thumbs_b: torch.Tensor, boxes_a: np.ndarray | None = None,
                      grids: torch.Tensor | None = None) -> torch.Tensor:
    """Per pair of rows, the *smoothed* distance: both thumbnails blurred by :data:`SMOOTH_SIGMA`, the
    window of ``a`` (its picture's box, ``boxes_a`` per row: top, left, height, width; the whole
    thumbnail without them; less :data:`_MARGIN` pixels at each side) against ``b`` resampled under each
    of the :data:`REFINED_ALIGNMENTS`, both windows brought to zero mean and unit RMS, the smallest half
    RMS difference (the scale of :func:`pixel_distances`); with ``grids``, under those alignments only
    (a part of ``_REFINED_GRIDS``)."""
    grids = _REFINED_GRIDS if grids is None else grids
    parts = [torch.zeros(0)]
    for start in range(0, len(thumbs_a), _FINE_CHUNK):
        a = blurred(thumbs_a[start : start + _FINE_CHUNK], SMOOTH_SIGMA).reshape(-1, THUMB * THUMB)
        moved = aligned(blurred(thumbs_b[start : start + _FINE_CHUNK], SMOOTH_SIGMA), grids)
        b = moved.reshape(len(a), -1, THUMB * THUMB)
        mask = _window_masks(None if boxes_a is None else boxes_a[start : start + _FINE_CHUNK], len(a))
        cells = mask.sum(1, keepdim=True)
        wa = (a - (a * mask).sum(1, keepdim=True) / cells) * mask  # a's window centred, zero outside it
        dots = torch.bmm(b, wa.unsqueeze(2))[..., 0]  # sum wa (wb - mean wb) = sum wa wb: wa is centred
        total = torch.bmm(b, mask.unsqueeze(2))[..., 0]
        square = torch.bmm(b.square(), mask.unsqueeze(2))[..., 0]
        norm_a = wa.norm(dim=1, keepdim=True)
        norm_b = (square - total * total / cells).clamp_min(0.0).sqrt()
        corr = dots / (norm_a * norm_b).clamp_min(1e-6)
        flat_a, flat_b = norm_a < 1e-3, norm_b < 1e-3
        corr = torch.where(flat_a & flat_b, 1.0, torch.where(flat_a | flat_b, 0.0, corr))
        parts.append(((1.0 - corr) / 2).clamp_min(0.0).sqrt().amin(1))
    return torch.cat(parts)


def _window_masks(boxes: np.ndarray | None, n: int) -> torch.Tensor:
    """``(n, THUMB²)``: 1 on each picture's box less :data:`_MARGIN` pixels at each side (at least a
    4×4 window), 0 elsewhere; the whole thumbnail less the margin without boxes."""
    if boxes is None:
        boxes = np.tile(np.array([0, 0, THUMB, THUMB], dtype=np.int64), (n, 1))
    top, left, h, w = (torch.from_numpy(np.asarray(boxes, dtype=np.int64)).T[k, :, None] for k in range(4))
    margin_y, margin_x = ((h - 4) // 2).clamp(0, _MARGIN), ((w - 4) // 2).clamp(0, _MARGIN)
    grid = torch.arange(THUMB)[None, :]
    rows = (grid >= top + margin_y) & (grid < top + h - margin_y)
    cols = (grid >= left + margin_x) & (grid < left + w - margin_x)
    return (rows[:, :, None] & cols[:, None, :]).reshape(n, -1).to(torch.float32)




def pair_distances(thumbs_a: torch.Tensor | ThumbnailStore, i: np.ndarray, thumbs_b: torch.Tensor | ThumbnailStore,
                   j: np.ndarray, *, threshold: float | None = None, framed_a: np.ndarray | None = None,
                   framed_b: np.ndarray | None = None, boxes_a: np.ndarray | None = None) -> np.ndarray:
    """:func:`pixel_distances` of the pairs ``(thumbs_a[i[k]], thumbs_b[j[k]])``, gathered a chunk at a
    time: a million candidates never need 2 GiB of gathered thumbnails at once. With ``threshold`` and
    each row's :func:`framed` flag (``framed_a``, ``framed_b``), a pair of framed pictures between the
    threshold and :data:`REFINE` × it gets the smaller of that and its :func:`refined_distances` (on the
    window of ``a``'s picture where ``boxes_a`` gives each row's box)."""
    parts = [np.zeros(0, dtype=np.float32)]
    refine = threshold is not None and framed_a is not None and framed_b is not None
    for start in range(0, len(i), _PAIR_CHUNK):
        part_i, part_j = i[start : start + _PAIR_CHUNK], j[start : start + _PAIR_CHUNK]
        a, b = thumbs_a[torch.from_numpy(part_i)], thumbs_b[torch.from_numpy(part_j)]
        d = pixel_distances(a, b)
        if refine:
            assert threshold is not None and framed_a is not None and framed_b is not None
            wanted = torch.from_numpy(np.flatnonzero(framed_a[part_i] & framed_b[part_j]))
            wanted = wanted[(d[wanted] > threshold) & (d[wanted] <= REFINE * threshold)]
            # the 49 moves at zoom 1 first; the zoomed alignments only where those leave it close; a
            # chunk of pairs at a time (each alignment of 512 pairs would hold ~120 MiB at once)
            for begin in range(0, len(wanted), _VIEW_CHUNK // 4):
                some = wanted[begin : begin + _VIEW_CHUNK // 4]
                boxes = None if boxes_a is None else boxes_a[part_i[some.numpy()]]
                d[some] = torch.minimum(d[some], refined_distances(a[some], b[some], boxes,
                                                                   _REFINED_GRIDS[:_AT_ZOOM_1]))
                close = torch.nonzero((d[some] > threshold) & (d[some] <= _ZOOM_WITHIN * threshold))[:, 0]
                if len(close):
                    some = some[close]
                    boxes = None if boxes_a is None else boxes_a[part_i[some.numpy()]]
                    d[some] = torch.minimum(d[some], refined_distances(a[some], b[some], boxes,
                                                                       _REFINED_GRIDS[_AT_ZOOM_1:]))
        parts.append(d.numpy())
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------------------------
# Groups: connected components of the confirmed pairs


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Per node of a graph with ``n`` nodes and edges ``(i, j)``, the smallest node of its connected
    component (label propagation with pointer jumping, vectorised, over the nodes that edges touch)."""
    label = np.arange(n, dtype=np.int64)
    if not len(i):
        return label
    nodes, inverse = np.unique(np.concatenate([i, j]), return_inverse=True)
    a, b = inverse[: len(i)], inverse[len(i) :]
    small = np.arange(len(nodes), dtype=np.int64)  # the graph on the touched nodes only: O(edges) a pass
    while True:
        low = np.minimum(small[a], small[b])
        before = small.copy()
        np.minimum.at(small, a, low)
        np.minimum.at(small, b, low)
        while True:  # pointer jumping: every node to its root
            jumped = small[small]
            if np.array_equal(jumped, small):
                break
            small = jumped
        if np.array_equal(small, before):
            break
    label[nodes] = nodes[small]  # nodes are sorted: the smallest compact index is the smallest node
    return label


def grow_groups(n: int, i: np.ndarray, j: np.ndarray, weight: np.ndarray,
                confirm: Callable[[np.ndarray, np.ndarray], np.ndarray],
                rounds: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confirm candidate pairs ``(i, j)`` only where they would join two groups, closest hashes first.

    Borůvka's way: each round, every group proposes its closest candidate to another group (a forest,
    so a group of 14 copies needs 13 confirmations, not 91); ``confirm(i, j)`` returns their distances
    or NaN for a pair that is not a near copy (dropped). A round costs the candidates still joining two
    groups (they only shrink) and the groups it joins, so rounds are cheap; after ``rounds`` rounds
    what still joins two groups is confirmed at once. Returns the confirmed pairs' ``(i, j, distance)``.
    Candidates with equal ``weight`` are taken by ``(i, j)``: the answer is a function of the set of
    candidates, whatever order a search lists them in (:mod:`mlgate.data.ray_near_duplicates`)."""
    kept_i: list[np.ndarray] = [np.zeros(0, np.int64)]
    kept_j: list[np.ndarray] = [np.zeros(0, np.int64)]
    kept_d: list[np.ndarray] = [np.zeros(0, np.float32)]
    live = np.lexsort((j, i, weight))  # candidates, closest first (ties: the smaller (i, j))
    root = np.arange(n, dtype=np.int64)  # each node's group, named by its smallest node
    for round_ in range(rounds + 1):
        a, b = root[i[live]], root[j[live]]
        across = a != b
        live, a, b = live[across], a[across], b[across]
        if not len(live):
            break
        if round_ < rounds:
            # each group's first (closest) candidate out; the picks form a forest
            first = np.full(n, len(live), dtype=np.int64)
            place = np.arange(len(live), dtype=np.int64)
            np.minimum.at(first, a, place)
            np.minimum.at(first, b, place)
            chosen = np.unique(np.concatenate([first[a], first[b]]))
        else:
            chosen = np.arange(len(live))
        picked = live[chosen]
        d = np.asarray(confirm(i[picked], j[picked]), dtype=np.float32)
        ok = ~np.isnan(d)
        kept_i.append(i[picked][ok])
        kept_j.append(j[picked][ok])
        kept_d.append(d[ok])
        if ok.any():  # join the groups: the components of the groups' graph, each named by its smallest
            joined = components(n, a[chosen][ok], b[chosen][ok])
            root = joined[root]
        keep = np.ones(len(live), dtype=bool)
        keep[chosen] = False
        live = live[keep]
    return np.concatenate(kept_i), np.concatenate(kept_j), np.concatenate(kept_d)


def first_confirmed(key: np.ndarray, i: np.ndarray, j: np.ndarray, weight: np.ndarray,
                    confirm: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    rounds: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per ``key``, its candidate pairs ``(i, j)`` confirmed closest hash first (ties: the smaller ``j``)
    until one is a near copy: each round confirms the first remaining candidate of every key not yet
    settled; after ``rounds`` rounds the rest at once. Returns the confirmed ``(i, j, distance)``."""
    order = np.lexsort((j, weight, key))
    key, i, j = key[order], i[order], j[order]
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [
        (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))]
    for round_ in range(rounds + 1):
        if not len(key):
            break
        chosen = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if round_ < rounds else np.arange(len(key))
        d = np.asarray(confirm(i[chosen], j[chosen]), dtype=np.float32)
        ok = ~np.isnan(d)
        kept.append((i[chosen][ok], j[chosen][ok], d[ok]))
        left = np.ones(len(key), dtype=bool)
        left[chosen] = False
        left &= ~np.isin(key, key[chosen][ok])  # settled
        key, i, j = key[left], i[left], j[left]
    return tuple(np.concatenate(part) for part in zip(*kept, strict=True))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------
# Accumulation over batches, and the result


class ThumbnailStore:
    """One split's thumbnails, ``THUMB`` ² bytes a row, in an unlinked temporary file: the page cache
    holds them, not this process. Rows are read back by index (``store[rows]``, a copy), each with one
    ``pread``: what becomes resident is the rows asked for (a mapping of the file would count every
    page it touched, 200 MiB for 200,000 items read at spread rows)."""

    def __init__(self) -> None:
        self._file: BinaryIO | None = None
        self.rows = 0

    def append(self, thumbs: torch.Tensor) -> None:
        if not len(thumbs):
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="mlgate-thumbnails-")  # noqa: SIM115  # closed in close()
            weakref.finalize(self, self._file.close)  # a store dropped unsearched closes its file too
        self._file.write(thumbs.contiguous().numpy().data)
        self.rows += len(thumbs)

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, rows: np.ndarray | torch.Tensor | slice) -> torch.Tensor:
        """``(len(rows), THUMB, THUMB)`` uint8 thumbnails of ``rows`` (indices or a slice)."""
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.rows)
            if step == 1:
                return self._read(start, max(stop - start, 0))
            rows = np.arange(start, stop, step)
        elif isinstance(rows, torch.Tensor):
            rows = rows.numpy()
        wanted = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(wanted), THUMB * THUMB), dtype=np.uint8)
        if len(wanted):
            assert self._file is not None and int(wanted.max()) < self.rows and int(wanted.min()) >= 0
            self._file.flush()
            fd, size = self._file.fileno(), THUMB * THUMB
            for k, row in enumerate(wanted.tolist()):
                os.preadv(fd, [out[k].data], row * size)
        return torch.from_numpy(out.reshape(-1, THUMB, THUMB))

    def _read(self, start: int, count: int) -> torch.Tensor:
        out = np.empty((count, THUMB, THUMB), dtype=np.uint8)
        if count:
            assert self._file is not None
            self._file.flush()
            os.preadv(self._file.fileno(), [out.reshape(-1).data], start * THUMB * THUMB)
        return torch.from_numpy(out)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class _SplitItems:
    """What is kept per item of one split (32 bytes in memory): its label, the first 8 bytes of its
    content key, where its picture sits on the thumbnail, and its index, with its name where the
    layout has one; and its thumbnail (1 KiB): in ``thumbs`` while a shard collects them, in ``store``
    (on disk) once they reach the finder."""

    thumbs: list[torch.Tensor] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    keys: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    names: list[ItemId] | None = None
    position: int = 0
    """Items read so far, images or not (indices name items across every batch)."""
    index: list[np.ndarray] = field(default_factory=list)
    """Each kept item's index within the split."""
    store: ThumbnailStore | None = None

    def add(self, images: torch.Tensor, labels: torch.Tensor, keys: Sequence[bytes],
            ids: Sequence[str] | None) -> None:
        rows = len(keys)
        first = self.position
        self.position += rows
        if ids is not None:
            if self.names is None:
                self.names = []
            self.names.extend(ids)
        made = thumbnails(images) if rows else None
        if made is None:
            return
        thumbs, box = made
        self.thumbs.append(thumbs)
        self.labels.append(labels.numpy().astype(np.int64, copy=False))
        self.keys.append(np.frombuffer(b"".join(key[:8] for key in keys), dtype=np.uint64))
        self.boxes.append(np.tile(np.array(box, dtype=np.int16), (rows, 1)))
        self.index.append(np.arange(first, first + rows, dtype=np.int64))
        self.spill()

    def spill(self) -> None:
        """Move the thumbnails collected so far to the store (when there is one)."""
        if self.store is not None:
            for part in self.thumbs:
                self.store.append(part)
            self.thumbs = []

    def stacked(self) -> _Stacked:
        if self.store is None:
            self.store = ThumbnailStore()
        self.spill()
        # the parts give way to the whole (kept as its one part): not both at once, 32 bytes an item
        self.labels, self.keys = [_cat(self.labels, np.int64)], [_cat(self.keys, np.uint64)]
        self.boxes, self.index = [_cat(self.boxes, np.int16, 4)], [_cat(self.index, np.int64)]
        return _Stacked(self.store, self.labels[0], self.keys[0], self.boxes[0], self.index[0],
                        np.zeros(len(self.labels[0]), dtype=bool))

    def name(self, index: int) -> ItemId:
        return self.names[index] if self.names is not None else index


class _Stacked(NamedTuple):
    """One split's kept items, one row each."""

    thumbs: ThumbnailStore
    labels: np.ndarray
    keys: np.ndarray
    boxes: np.ndarray
    position: np.ndarray
    """Each row's index within the split."""
    framed: np.ndarray
    """Per row, whether its picture is :func:`framed` (set by the search, for its distinct rows)."""


def _cat(parts: list[np.ndarray], dtype: type, width: int = 0) -> np.ndarray:
    if parts:
        return np.concatenate(parts)
    return np.zeros((0, width) if width else 0, dtype=dtype)


class _Hashes(NamedTuple):
    """One split's hashes, a row per distinct item searched: the fine hash of every row, which rows are
    framed, and their coarse hashes under each of the :data:`QUERIES`."""

    fine: np.ndarray
    framed: np.ndarray
    """Rows (indices into ``fine``) of the framed pictures."""
    coarse: np.ndarray
    """``(len(QUERIES), len(framed), 4)``."""

    def subset(self, keep: np.ndarray) -> _Hashes:
        """The rows where ``keep`` (a mask over ``fine``), renumbered."""
        renumber = np.cumsum(keep) - 1
        inside = keep[self.framed]
        return _Hashes(self.fine[keep], renumber[self.framed[inside]], self.coarse[:, inside])


def candidate_pairs(a: _Hashes, b: _Hashes | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The pairs whose fine hashes are within :data:`RADIUS` bits, or that are both framed and whose coarse
    hashes are within :data:`COARSE_RADIUS` bits under one of the :data:`QUERIES` (:func:`coarse_pairs`),
    each once: ``(i, j)`` as :func:`hamming_pairs` gives them."""
    fine_i, fine_j = hamming_pairs(a.fine, None if b is None else b.fine)
    if not len(a.framed) or (b is not None and not len(b.framed)):
        return fine_i, fine_j
    coarse_i, coarse_j = coarse_pairs(a.coarse, None if b is None else b.coarse)
    other = a if b is None else b
    width = np.int64(len(other.fine))
    key = np.unique(np.r_[fine_i * width + fine_j, a.framed[coarse_i] * width + other.framed[coarse_j]])
    return key // width, key % width


class _Groups(NamedTuple):
    """One split's groups: each row's group (named by its smallest row), and the confirmed pairs."""

    label: np.ndarray
    i: np.ndarray
    j: np.ndarray
    d: np.ndarray


_CONFIRM_CHUNK = 4 * _PAIR_CHUNK
_HASH_CHUNK = 512
"""Rows hashed at once per thread: the transform's intermediates of a chunk are about 3 MiB (12 at
2048 rows, for the same speed)."""


class NearDuplicateFinder:
    """Collects thumbnails batch by batch (:meth:`start` a split, :meth:`add` its batches or
    :meth:`append` its shards' items, train first) and finds the near-duplicates at the end
    (:meth:`result`). Thumbnails are kept on disk (:class:`ThumbnailStore`), unless ``on_disk`` is
    False (a shard's items, which cross processes). The search and the confirmation run on ``threads``
    threads (default: the cores this process may use), torch on one thread each."""

    def __init__(self, max_listed: int = MAX_LISTED, *, on_disk: bool = True, threads: int | None = None) -> None:
        self.splits: dict[str, _SplitItems] = {}
        self.current: _SplitItems | None = None
        self.max_listed = max_listed
        self.on_disk = on_disk
        self.threads = threads or _cores()
        self.confirmations = 0
        self._pool: ThreadPoolExecutor | None = None

    def start(self, split: str) -> None:
        self.current = self.splits[split] = _SplitItems(store=ThumbnailStore() if self.on_disk else None)

    def add(self, images: torch.Tensor, labels: torch.Tensor, keys: Sequence[bytes],
            ids: Sequence[str] | None) -> None:
        assert self.current is not None, "start() a split first"
        self.current.add(images, labels, keys, ids)

    def append(self, part: _SplitItems) -> None:
        """Append the items another finder collected from the items that follow (one shard of the split
        :meth:`start` ed last, its indices counted from its first item): merging shards is concatenating."""
        items = self.current
        assert items is not None, "start() a split first"
        items.thumbs += part.thumbs
        append_blocks(items.labels, part.labels)
        append_blocks(items.keys, part.keys)
        append_blocks(items.boxes, part.boxes)
        append_blocks(items.index, [index + items.position for index in part.index])
        if part.names is not None:
            items.names = [] if items.names is None else items.names
            items.names += part.names
        items.position += part.position
        items.spill()

    def result(self, threshold: float) -> NearDuplicateStats:
        """Groups of near copies within each split and near-leaked items, confirmed within ``threshold``
        pixel distance, with the thumbnails of up to :data:`MAX_PICTURED` rows in ``pictured`` and every
        member in ``listing``."""
        threads = torch.get_num_threads()
        if self.threads > 1:
            torch.set_num_threads(1)  # the threads are the parallelism: one torch thread each is faster
        try:
            with ThreadPoolExecutor(self.threads) as self._pool:
                return self._result(threshold)
        finally:
            self._pool = None
            torch.set_num_threads(threads)
            for items in self.splits.values():
                if items.store is not None:
                    items.store.close()

    def _map(self, function: Callable[[slice], np.ndarray], total: int, chunk: int) -> np.ndarray:
        """``function`` of consecutive slices of ``range(total)``, on the threads, concatenated."""
        parts = [slice(start, start + chunk) for start in range(0, total, chunk)]
        assert self._pool is not None
        done = list(self._pool.map(function, parts)) if len(parts) > 1 else [function(p) for p in parts]
        return np.concatenate(done) if done else np.zeros(0, dtype=np.float32)

    def _result(self, threshold: float) -> NearDuplicateStats:
        stacked = {name: items.stacked() for name, items in self.splits.items()}
        stats = NearDuplicateStats(checked=any(len(s.thumbs) for s in stacked.values()), threshold=threshold)
        if not stats.checked:
            return stats
        chosen = stacked["train"] if "train" in stacked and len(stacked["train"].thumbs) else next(
            s for s in stacked.values() if len(s.thumbs))
        reference, reference_boxes = chosen.thumbs, chosen.boxes
        step = max(1, len(reference) // _CENTRE_SAMPLE)
        sample = np.arange(0, len(reference), step)[:_CENTRE_SAMPLE]
        centre = self._centre(reference, sample)
        centre_coarse = self._coarse_centre(reference, reference_boxes, sample)
        rows: dict[str, np.ndarray] = {}
        hashes: dict[str, _Hashes] = {}
        for name, split in stacked.items():
            # one item per distinct content: exact copies are reported by stats.py, not here
            distinct = rows[name] = np.sort(np.unique(split.keys, return_index=True)[1])
            hashes[name] = self._hashes(split, distinct, centre, centre_coarse)
        groups = {name: self._groups(split, rows[name], hashes[name], threshold) for name, split in stacked.items()}
        if "train" in stacked:
            for name in stacked:
                if name != "train":
                    stats.leaked[name] = self._leaked(name, stacked, rows, hashes, groups["train"].label,
                                                      threshold, stats)
        for name, split in stacked.items():
            stats.within[name] = self._within(name, split, groups[name], stats)
        stats.confirmations = self.confirmations
        return stats

    def _centre(self, reference: ThumbnailStore, sample: np.ndarray) -> torch.Tensor:
        """The :func:`spectrum_centre` of the rows ``sample`` of ``reference``."""
        return spectrum_centre(reference[sample])

    def _coarse_centre(self, reference: ThumbnailStore, boxes: np.ndarray, sample: np.ndarray) -> torch.Tensor:
        """The :func:`coarse_centre` of the framed pictures among the rows ``sample`` of ``reference``."""
        sample_thumbs = reference[sample]
        in_frame = framed_sizes(sample_thumbs, boxes[sample])
        return coarse_centre(sample_thumbs[torch.from_numpy(in_frame)], boxes[sample][in_frame])

    def _hashes(self, split: _Stacked, rows: np.ndarray, centre: torch.Tensor, centre_coarse: torch.Tensor
                ) -> _Hashes:
        """The hashes of ``split``'s ``rows``, hashed :data:`_HASH_CHUNK` rows at a time (a row's hash
        may differ in the last float bit with the rows hashed beside it: the chunks are part of the result),
        and the coarse hashes of its framed pictures (marking them in ``split.framed``)."""
        fine = self._map(_hasher(split.thumbs, rows, centre), len(rows), _HASH_CHUNK
                         ).reshape(-1, _WORDS).astype(np.uint64, copy=False)
        split.framed[:] = framed_sizes(split.thumbs, split.boxes)
        at = np.flatnonzero(split.framed[rows])
        queries = np.zeros((len(QUERIES), 0, _WORDS), np.uint64)
        if len(at):
            queries = self._map(_querier(split, rows[at], centre_coarse), len(at), _HASH_CHUNK
                                ).reshape(-1, len(QUERIES), _WORDS).transpose(1, 0, 2)
        return _Hashes(fine, at, queries.astype(np.uint64, copy=False))

    def _candidates(self, a: _Stacked, rows_a: np.ndarray, hashes_a: _Hashes, b: _Stacked | None,
                    rows_b: np.ndarray, hashes_b: _Hashes | None, threshold: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
        """The candidate pairs of rows (:func:`candidate_pairs`), ``i`` of ``a`` and ``j`` of ``b`` (of ``a``
        when ``b`` is None, ``i < j``), with their fine hash distance, and how to confirm them on the pixels."""
        i, j = candidate_pairs(hashes_a, hashes_b)
        weight = hamming(hashes_a.fine[i], (hashes_a if hashes_b is None else hashes_b).fine[j])
        other = a if b is None else b
        return rows_a[i], rows_b[j], weight, self._confirm(a, other, threshold)

    def _distances(self, a: _Stacked, i: np.ndarray, b: _Stacked, j: np.ndarray, threshold: float) -> np.ndarray:
        """:func:`pair_distances` of the pairs ``(a[i[k]], b[j[k]])`` (framed pairs refined), a chunk per
        thread at a time."""
        self.confirmations += len(i)
        return self._map(lambda part: pair_distances(a.thumbs, i[part], b.thumbs, j[part], threshold=threshold,
                                                     framed_a=a.framed, framed_b=b.framed, boxes_a=a.boxes),
                         len(i), _CONFIRM_CHUNK)

    def _confirm(self, a: _Stacked, b: _Stacked, threshold: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def confirm(i: np.ndarray, j: np.ndarray) -> np.ndarray:
            d = self._distances(a, i, b, j, threshold)
            return np.where(d <= threshold, d, np.nan).astype(np.float32)

        return confirm

    def _groups(self, split: _Stacked, rows: np.ndarray, hashes: _Hashes, threshold: float) -> _Groups:
        i, j, weight, confirm = self._candidates(split, rows, hashes, None, rows, None, threshold)
        n = len(split.thumbs)
        i, j, d = grow_groups(n, i, j, weight, confirm)
        return _Groups(components(n, i, j), i, j, d)

    def _within(self, name: str, split: _Stacked, found: _Groups, stats: NearDuplicateStats) -> NearDuplicateGroups:
        label, n = found.label, len(found.label)
        size = np.bincount(label, minlength=n)
        in_group = np.flatnonzero(size[label] > 1)
        roots, counts = np.unique(label[in_group], return_counts=True)
        # largest first, then by the reading order of the first member (the root is the smallest row)
        order = np.lexsort((roots, -counts))
        number = np.zeros(n, dtype=np.int64)
        number[roots[order]] = np.arange(1, len(roots) + 1)
        worst = np.zeros(n, dtype=np.float32)
        np.maximum.at(worst, label[found.i], found.d)
        groups = NearDuplicateGroups(total=len(roots), items=len(in_group),
                                     largest=int(counts.max()) if len(counts) else 0)
        # every group's members in reading order, the groups largest first: one stable sort
        by_group = in_group[np.argsort(number[label[in_group]], kind="stable")]
        starts = np.r_[0, np.cumsum(counts[order])]
        items = self.splits[name]
        listing = stats.listing.members
        member_numbers = number[label[by_group]].tolist()
        member_labels = split.labels[by_group].tolist()
        positions = split.position[by_group].tolist()
        listing.extend(GroupMember(name, g, items.name(p), y)
                       for g, p, y in zip(member_numbers, positions, member_labels, strict=True))
        for k, root in enumerate(roots[order][: max(self.max_listed, MAX_PICTURED)].tolist()):
            group = by_group[starts[k] : starts[k + 1]].tolist()
            if len(groups.groups) < self.max_listed:
                listed = group[:MAX_GROUP_LISTED]
                groups.groups.append(NearDuplicateGroup(
                    size=len(group), items=[items.name(int(split.position[r])) for r in listed],
                    labels=[int(split.labels[r]) for r in listed], distance=float(worst[root])))
            if not stats.near_leaked and len(stats.pictured) < MAX_PICTURED:
                shown = group[:MAX_PICTURED_MEMBERS]
                stats.pictured.append(PicturedGroup(
                    [(name, items.name(int(split.position[r])), int(split.labels[r])) for r in shown],
                    [_picture(split, r) for r in shown], float(worst[root]), len(group)))
        return groups

    def _leaked(self, name: str, stacked: dict[str, _Stacked], rows: dict[str, np.ndarray],
                hashes: dict[str, _Hashes], train_group: np.ndarray, threshold: float,
                stats: NearDuplicateStats) -> NearLeakedItems:
        split, train = stacked[name], stacked["train"]
        candidates = ~np.isin(split.keys[rows[name]], train.keys)  # no exact copy in train
        i, j, weight, confirm = self._candidates(split, rows[name][candidates], hashes[name].subset(candidates),
                                                 train, rows["train"], hashes["train"], threshold)
        # per item and train group, the candidates are measured closest hash first until one is a near
        # copy: a group's members are near copies of each other, so one confirmed stands for the group
        pair = i * max(len(train_group), 1) + train_group[j]
        i, j, d = first_confirmed(pair, i, j, weight, confirm)
        order = np.lexsort((j, d, i))  # per item, its closest train item (ties: the earliest)
        i, j, d = i[order], j[order], d[order]
        first = np.ones(len(i), dtype=bool)
        first[1:] = i[1:] != i[:-1]
        i, j, d = i[first], j[first], d[first]
        leaked = NearLeakedItems(total=len(i))
        every = stats.listing.leaked.setdefault(name, [])
        items, train_items = self.splits[name], self.splits["train"]
        for a, b, dist in zip(i.tolist(), j.tolist(), d.tolist(), strict=True):
            entry = NearLeakedItem(item=items.name(int(split.position[a])), label=int(split.labels[a]),
                                   train_item=train_items.name(int(train.position[b])),
                                   train_label=int(train.labels[b]), distance=dist)
            every.append(entry)
            if len(leaked.items) < self.max_listed:
                leaked.items.append(entry)
            if len(stats.pictured) < MAX_PICTURED:
                stats.pictured.append(PicturedGroup(
                    [(name, entry.item, entry.label), ("train", entry.train_item, entry.train_label)],
                    [_picture(split, a), _picture(train, b)], dist, 2))
        return leaked


_CENTRE_SAMPLE = 4096


def _hasher(thumbs: ThumbnailStore, rows: np.ndarray, centre: torch.Tensor) -> Callable[[slice], np.ndarray]:
    return lambda part: perceptual_hashes(thumbs[rows[part]], centre)


def _querier(split: _Stacked, rows: np.ndarray, centre_coarse: torch.Tensor) -> Callable[[slice], np.ndarray]:
    """Per row (framed), its coarse hash under each of the :data:`QUERIES`, item-major and flattened so
    that chunks concatenate: reshaped by the caller."""
    return lambda part: coarse_hashes(split.thumbs[rows[part]], centre_coarse, queries=True,
                                      boxes=split.boxes[rows[part]]).transpose(1, 0, 2).reshape(-1, _WORDS)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _picture(split: _Stacked, row: int) -> torch.Tensor:
    """Row ``row``'s picture as it sits on its thumbnail (a digit's own pixels, not the padding)."""
    top, left, h, w = split.boxes[row].tolist()
    return split.thumbs[np.array([row])][0, top : top + h, left : left + w].clone()
