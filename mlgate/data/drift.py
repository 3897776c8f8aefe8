"""Drift: how far one version of a split moved from another (base → head, per split) and how far a
split moved from ``train`` within the head (train → test), measured on statistics already computed.

- **Labels**: total variation distance (TVD, half the L1 distance of the label shares: the share of
  items that would have to change class), and a chi-square test of homogeneity over the 2 × classes
  table of counts when the counts allow it (Cochran's rule: no expected count below 1, at most 20 %
  below 5), with its p-value (the regularised upper incomplete gamma function, no scipy).
- **Pixels**: two-sample Kolmogorov–Smirnov statistic (the largest gap between the cumulative
  distributions, 0..1) and Wasserstein-1 distance (the area between them, in pixel-value units and
  as a fraction of the span of the common grid) of the 64-bin pixel histograms. Histograms of two
  versions can sit on different grids: each CDF is read at the union of both grids' edges, linear
  within its own bins (values spread evenly within a bin), so the figures are exact on a common grid
  and within one bin's smearing otherwise.
- **Channels**: the per-channel mean and std shift, in units of the reference's std.
- **Size**: when item shapes vary (ImageFolder), KS statistics of the item side (``sqrt(h × w)``) and
  aspect ratio (``w / h``) distributions, and their medians.

A measure "moved" when it is beyond what sampling noise explains: labels with chi-square
p < :data:`LABEL_P_VALUE` and TVD ≥ :data:`MIN_LABEL_TVD` (TVD ≥ :data:`SPARSE_LABEL_TVD` when the
test does not apply); pixels and sizes with KS above the two-sample KS critical value at α = 0.01,
``1.63 · sqrt((n + m) / (n · m))``, with items (not pixels, which are correlated within an image) as
the sample sizes, and at least :data:`MIN_KS`; channels with a shift of at least
:data:`MIN_CHANNEL_SHIFT` std.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from mlgate.data.stats import DatasetStats, SplitStats

LABEL_P_VALUE = 0.01
MIN_LABEL_TVD = 0.01
SPARSE_LABEL_TVD = 0.05
KS_CRITICAL = 1.63
"""c(α) of the two-sample KS critical value ``c(α) · sqrt((n + m) / (n · m))`` at α = 0.01."""
MIN_KS = 0.01
MIN_CHANNEL_SHIFT = 0.1


class LabelDrift(BaseModel):
    """Label shares of one split against the reference's. ``chi_square``, ``dof`` and ``p_value`` are
    None when the counts are too sparse for the test (Cochran's rule)."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    tvd: float
    """Total variation distance of the label shares, 0..1: the share of items that would have to change class."""
    chi_square: float | None = None
    """Pearson's chi-square statistic of the 2 × classes table of counts."""
    dof: int | None = None
    """Its degrees of freedom: classes present on either side, minus 1."""
    p_value: float | None = None
    """P(chi-square ≥ the statistic) if both sides came from one label distribution."""


class PixelDrift(BaseModel):
    """Pixel-intensity distributions (all channels) against the reference's."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    ks: float
    """Kolmogorov–Smirnov statistic: the largest gap between the two cumulative distributions, 0..1."""
    ks_at: float
    """The pixel value where the two cumulative distributions are farthest apart."""
    wasserstein: float
    """In pixel-value units: how far, on average, pixel mass moved."""
    wasserstein_relative: float
    """``wasserstein`` as a fraction of the span of the common grid (0..1)."""
    ks_noise: float
    """The KS statistic two samples of this many items from one distribution stay below 99 % of the time."""


class ChannelDrift(BaseModel):
    """Per channel, ``(mean - reference mean) / reference std`` and ``(std - reference std) / reference std``."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    mean_shift: list[float]
    """Per channel, the change of the mean in reference standard deviations."""
    std_shift: list[float]
    """Per channel, the change of the standard deviation relative to the reference's."""


class SizeDrift(BaseModel):
    """Item sizes against the reference's, for items whose shapes vary (ImageFolder)."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    median_side_reference: float
    median_side: float
    """Median of ``sqrt(height × width)``, in pixels."""
    median_aspect_reference: float
    median_aspect: float
    """Median of ``width / height``."""
    ks_side: float
    """Kolmogorov–Smirnov statistic of the item side distributions."""
    ks_aspect: float
    """Kolmogorov–Smirnov statistic of the aspect ratio distributions."""


class SplitDrift(BaseModel):
    """One split against its reference (the same split at the base, or ``train`` of the head)."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    reference: str
    """``base`` (the same split of the base data) or the name of the reference split (``train``)."""
    reference_items: int
    """Items of the reference split."""
    items: int
    """Items of this split."""
    labels: LabelDrift | None = None
    """None when a side has no labels."""
    pixels: PixelDrift | None = None
    """None when a side has no pixel histogram (no finite values)."""
    channels: ChannelDrift | None = None
    """None when the channel counts differ or a reference std is 0."""
    size: SizeDrift | None = None
    """None unless the items are images whose shapes vary or differ."""
    moved: list[str] = []
    """The measures beyond sampling noise: ``labels``, ``pixels``, ``channels``, ``size``."""


class DriftReport(BaseModel):
    """Drift against the base (``splits``, when a comparison exists) and of each other split against
    ``train`` within the head (``within``)."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    base: str | None = None
    """What the head was compared with (a branch or the ``baseline-data`` folder); None without a base."""
    splits: dict[str, SplitDrift] = {}
    """Per split on both sides, the head against the base."""
    within: dict[str, SplitDrift] = {}
    """Per split other than ``train``, against ``train`` of the head."""

    def worst(self, measure: str) -> tuple[str, float] | None:
        """The split with the largest base → head label TVD (``labels``) or pixel KS (``pixels``)."""
        values = {name: _headline(drift, measure) for name, drift in self.splits.items()}
        present = {name: value for name, value in values.items() if value is not None}
        if not present:
            return None
        name = max(present, key=lambda n: present[n])
        return name, present[name]


def _headline(drift: SplitDrift, measure: str) -> float | None:
    if measure == "labels":
        return drift.labels.tvd if drift.labels else None
    return drift.pixels.ks if drift.pixels else None


def compute_drift(head: DatasetStats, base: DatasetStats | None = None, base_name: str | None = None) -> DriftReport:
    """Every split present (and not empty) on both sides against the base, and every other head split
    against ``train``."""
    splits = {}
    if base is not None:
        for name, split in head.splits.items():
            old = base.splits.get(name)
            if old is not None and old.count and split.count:
                splits[name] = split_drift(old, split, reference="base")
    within = {}
    train = head.splits.get("train")
    if train is not None and train.count:
        for name, split in head.splits.items():
            if name != "train" and split.count:
                within[name] = split_drift(train, split, reference="train")
    return DriftReport(base=base_name if base is not None else None, splits=splits, within=within)


def split_drift(reference_stats: SplitStats, other: SplitStats, *, reference: str = "base") -> SplitDrift:
    """Every measure of ``other`` against ``reference_stats``; a measure that cannot be taken is None."""
    n, m = reference_stats.count, other.count
    labels = label_drift(reference_stats.label_counts, other.label_counts)
    pixels = None
    if reference_stats.histogram and other.histogram:
        pixels = pixel_drift(reference_stats.histogram, reference_stats.histogram_edges, other.histogram,
                             other.histogram_edges, items=(n, m))
    channels = channel_drift(reference_stats.channel_mean, reference_stats.channel_std, other.channel_mean,
                             other.channel_std)
    size = size_drift(reference_stats.shapes, other.shapes)
    moved = []
    if labels is not None and _labels_moved(labels):
        moved.append("labels")
    if pixels is not None and pixels.ks > max(pixels.ks_noise, MIN_KS):
        moved.append("pixels")
    if channels is not None and any(abs(v) >= MIN_CHANNEL_SHIFT for v in [*channels.mean_shift, *channels.std_shift]):
        moved.append("channels")
    if size is not None and max(size.ks_side, size.ks_aspect) > max(ks_noise(n, m), MIN_KS):
        moved.append("size")
    return SplitDrift(reference=reference, reference_items=n, items=m, labels=labels, pixels=pixels,
                      channels=channels, size=size, moved=moved)


def _labels_moved(labels: LabelDrift) -> bool:
    if labels.p_value is None:
        return labels.tvd >= SPARSE_LABEL_TVD
    return labels.p_value < LABEL_P_VALUE and labels.tvd >= MIN_LABEL_TVD


# ---------------------------------------------------------------------------------------------------
# Labels


def label_drift(reference: Mapping[str, int], other: Mapping[str, int]) -> LabelDrift | None:
    """TVD of the label shares and, when the counts allow, the chi-square test; None when a side has no labels."""
    labels = sorted({*reference, *other})
    ref = np.array([reference.get(label, 0) for label in labels], dtype=np.float64)
    new = np.array([other.get(label, 0) for label in labels], dtype=np.float64)
    if ref.sum() <= 0 or new.sum() <= 0:
        return None
    tvd = 0.5 * float(np.abs(ref / ref.sum() - new / new.sum()).sum())
    test = chi_square(ref, new)
    if test is None:
        return LabelDrift(tvd=tvd)
    statistic, dof = test
    return LabelDrift(tvd=tvd, chi_square=statistic, dof=dof, p_value=chi_square_p_value(statistic, dof))


def chi_square(first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray) -> tuple[float, int] | None:
    """Pearson's chi-square statistic and degrees of freedom of the 2 × k table ``[first; second]``
    (classes empty on both sides left out); None when fewer than two classes remain or Cochran's rule
    fails (an expected count below 1, or more than 20 % of them below 5)."""
    table = np.vstack([np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) <= 0).any():
        return None
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if expected.min() < 1 or (expected < 5).mean() > 0.2:
        return None
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, table.shape[1] - 1


def chi_square_p_value(statistic: float, dof: int) -> float:
    """P(X ≥ statistic) for X chi-square with ``dof`` degrees of freedom: Q(dof / 2, statistic / 2)."""

    value = torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                    torch.tensor(max(statistic, 0.0) / 2, dtype=torch.float64))
    return float(value)


# ---------------------------------------------------------------------------------------------------
# Pixels


def ks_noise(n: int, m: int) -> float:
    """The two-sample KS critical value at α = 0.01 for samples of ``n`` and ``m``."""
    return KS_CRITICAL * math.sqrt((n + m) / (n * m)) if n and m else 1.0


def pixel_drift(reference: Sequence[int], reference_edges: Sequence[float], other: Sequence[int],
                other_edges: Sequence[float], *, items: tuple[int, int] = (0, 0)) -> PixelDrift | None:
    """KS and Wasserstein-1 of two binned distributions, on the union of their grids; None when one is empty."""
    ref_counts, new_counts = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if ref_counts.sum() <= 0 or new_counts.sum() <= 0:
        return None
    ref_edges, new_edges = np.asarray(reference_edges, dtype=np.float64), np.asarray(other_edges, dtype=np.float64)
    points = np.union1d(ref_edges, new_edges)
    gap = _cdf(points, ref_counts, ref_edges) - _cdf(points, new_counts, new_edges)
    at = int(np.argmax(np.abs(gap)))
    distance = _area_between(points, gap)
    span = float(points[-1] - points[0])
    return PixelDrift(ks=float(abs(gap[at])), ks_at=float(points[at]), wasserstein=distance,
                      wasserstein_relative=distance / span if span > 0 else 0.0, ks_noise=ks_noise(*items))


def _cdf(points: np.ndarray, counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The binned distribution's CDF at ``points``: exact at its edges, linear within its bins."""
    cumulative = np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum()
    return np.interp(points, edges, cumulative, left=0.0, right=1.0)


def _area_between(points: np.ndarray, gap: np.ndarray) -> float:
    """∫ |gap| over ``points``, ``gap`` linear between them (a sign change within a segment included)."""
    widths = np.diff(points)
    left, right = gap[:-1], gap[1:]
    same_sign = left * right >= 0
    both = np.abs(left) + np.abs(right)
    crossing = np.divide(left * left + right * right, 2 * both, out=np.zeros_like(both), where=both > 0)
    return float(np.sum(widths * np.where(same_sign, both / 2, crossing)))


# ---------------------------------------------------------------------------------------------------
# Channels and sizes


def channel_drift(reference_mean: Sequence[float], reference_std: Sequence[float], mean: Sequence[float],
                  std: Sequence[float]) -> ChannelDrift | None:
    """Mean and std shifts in reference stds; None when the channel counts differ or a reference std is 0."""
    if not reference_mean or len(reference_mean) != len(mean) or len(reference_std) != len(std):
        return None
    if min(reference_std) <= 0:
        return None
    return ChannelDrift(
        mean_shift=[(m - r) / s for m, r, s in zip(mean, reference_mean, reference_std, strict=True)],
        std_shift=[(d - s) / s for d, s in zip(std, reference_std, strict=True)],
    )


def _height_width(shape_key: str) -> tuple[int, int] | None:
    """(height, width) of an item shape key such as ``3x32x48``, ``32x48x3`` or ``32x48``."""
    try:
        dims = [int(d) for d in shape_key.split("x")]
    except ValueError:
        return None
    if len(dims) == 2:
        return dims[0], dims[1]
    if len(dims) == 3:
        channel_last = dims[0] not in (1, 3, 4) and dims[-1] in (1, 3, 4)
        return (dims[0], dims[1]) if channel_last else (dims[1], dims[2])
    return None


def size_drift(reference: Mapping[str, int], other: Mapping[str, int]) -> SizeDrift | None:
    """Side and aspect distributions of two splits' item shapes; None unless the shapes are images and
    vary (more than one height × width on a side, or a different one on each)."""
    ref_sizes, new_sizes = _sizes(reference), _sizes(other)
    if not ref_sizes or not new_sizes:
        return None
    if len(ref_sizes) == 1 and ref_sizes.keys() == new_sizes.keys():
        return None

    def side(hw: tuple[int, int]) -> float:
        return math.sqrt(hw[0] * hw[1])

    def aspect(hw: tuple[int, int]) -> float:
        return hw[1] / hw[0] if hw[0] else 0.0

    ref_side, new_side = _weighted(ref_sizes, side), _weighted(new_sizes, side)
    ref_aspect, new_aspect = _weighted(ref_sizes, aspect), _weighted(new_sizes, aspect)
    return SizeDrift(
        median_side_reference=_median(ref_side), median_side=_median(new_side),
        median_aspect_reference=_median(ref_aspect), median_aspect=_median(new_aspect),
        ks_side=_weighted_ks(ref_side, new_side), ks_aspect=_weighted_ks(ref_aspect, new_aspect),
    )


def _sizes(shapes: Mapping[str, int]) -> dict[tuple[int, int], int]:
    sizes: dict[tuple[int, int], int] = {}
    for key, n in shapes.items():
        hw = _height_width(key)
        if hw is None:
            return {}
        sizes[hw] = sizes.get(hw, 0) + n
    return sizes


def _weighted(sizes: Mapping[tuple[int, int], int], value: Callable[[tuple[int, int]], float]) -> dict[float, int]:
    out: dict[float, int] = {}
    for hw, n in sizes.items():
        v = float(value(hw))
        out[v] = out.get(v, 0) + n
    return out


def _median(weights: Mapping[float, int]) -> float:
    total, seen = sum(weights.values()), 0
    for value in sorted(weights):
        seen += weights[value]
        if 2 * seen >= total:
            return value
    return max(weights)


def _weighted_ks(first: Mapping[float, int], second: Mapping[float, int]) -> float:
    """KS statistic of two discrete distributions given as value -> count."""
    values = sorted({*first, *second})
    a = np.cumsum([first.get(v, 0) for v in values]) / sum(first.values())
    b = np.cumsum([second.get(v, 0) for v in values]) / sum(second.values())
    return float(np.max(np.abs(a - b)))
