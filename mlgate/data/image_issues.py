"""Image issues found in the statistics pass, after CleanVision's list: constant and near-blank
images, very dark and very bright ones, low information (entropy), odd aspect ratios and sizes,
grayscale images among colour ones and mixed channel counts.

Each check is a few vectorised operations per batch (the statistics' reading pass pays for them):

- **constant**: every pixel of every channel has the same value (exact, over all pixels).
- The intensity checks judge each item's brightness (the channel itself, or ITU-R 601 luma
  ``0.299 R + 0.587 G + 0.114 B`` for colour), relative to the dtype's range (``uint8`` 0..255, ``bool``
  0..1, float data 0..1 or 0..255, whichever holds the batch; float data outside both is not judged),
  binned into :data:`LEVELS` bands. Single-channel ``uint8`` items are judged on every pixel (the
  statistics' bincount counts each item's values anyway); others on a regular sample of about
  :data:`SAMPLED_PIXELS` pixels per item:

  - **near_blank** (not constant): at least :data:`NEAR_BLANK_SHARE` of the pixels lie in two
    neighbouring bands (a slice of 1/8 of the range): a blank page with a speck, an empty frame.
  - **dark** (not constant): fewer than :data:`DARK_SHARE` of the pixels reach :data:`DARK_LEVEL` of the range
    (the 99th percentile of brightness is below a quarter of the range). A digit on a black
    background is not dark: its strokes are bright.
  - **bright** (not constant): fewer than :data:`BRIGHT_SHARE` of the pixels are below :data:`BRIGHT_LEVEL` of the
    range (the 5th percentile of brightness is above 3/4 of it).
  - **low_information** (neither constant nor near-blank): the entropy of the brightness bands is
    below :data:`LOW_ENTROPY_BITS` bits.

- **odd_aspect_ratio**: the short side is less than :data:`ODD_ASPECT_RATIO` of the long side.
- **odd_size**: ``sqrt(height × width)`` differs from the split's median by more than
  :data:`ODD_SIZE_FACTOR` times, either way.
- **grayscale_in_rgb**: 3- or 4-channel items whose first three channels are equal everywhere,
  reported only when most 3/4-channel items of the split are in colour.
- **mixed_channels**: items whose channel count is not the split's most common one.

Each issue keeps its total and the first :data:`MAX_LISTED_ITEMS` items (``odd_size`` and
``mixed_channels``: up to that many, by shape), and every item with it compactly
(:meth:`ImageIssueAccumulator.everything`, for the full lists). Items are named like every other listing of the
statistics: their index within the split, or (ImageFolder) their file path.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from pydantic import BaseModel, ConfigDict, Field

from mlgate.data.item_lists import ItemList

LEVELS = 16
"""Brightness bands per item: 1/16 of the dtype's range each."""
SAMPLED_PIXELS = 256
"""About this many pixels per item (every k-th, k = pixels // 256) feed the intensity checks."""
NEAR_BLANK_SHARE = 0.99
DARK_LEVEL = 0.25
DARK_SHARE = 0.01
BRIGHT_LEVEL = 0.75
BRIGHT_SHARE = 0.05
LOW_ENTROPY_BITS = 0.25
"""CleanVision's cut (entropy × 0.1 < 0.3 over 256 levels) flags most MNIST digits, whose 16-band
entropy goes down to about 0.4 bits; this one flags an image that is almost one band."""
ODD_ASPECT_RATIO = 0.35
ODD_SIZE_FACTOR = 10.0
_COMPARED_PIXELS = 2**24
"""Pixels per channel compared at once by the grayscale check (bounds its temporaries to ~50 MB)."""
MAX_LISTED_ITEMS = 100

ISSUES = ("constant", "near_blank", "dark", "bright", "low_information", "odd_aspect_ratio", "odd_size",
          "grayscale_in_rgb", "mixed_channels")
"""Every issue, in the order of the report's table."""

ItemId = int | str


class IssueItems(BaseModel):
    """Items with one issue: ``total`` of them, the first 100 listed."""

    total: int = 0
    items: list[ItemId] = []


class ImageIssues(BaseModel):
    """Image issues of one split. ``checked`` counts the items whose intensity (near-blank, dark,
    bright, low information) could be judged: image items with a known value range and no NaN/Inf."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docs go into the JSON schema

    checked: int = 0
    """Items judged for near-blank, dark, bright and low information."""
    constant: IssueItems = Field(default_factory=IssueItems)
    """Every pixel of every channel equal."""
    near_blank: IssueItems = Field(default_factory=IssueItems)
    """Not constant; at least 99 % of the pixels within a 1/8 slice of the range."""
    dark: IssueItems = Field(default_factory=IssueItems)
    """Not constant; fewer than 1 % of the pixels reach a quarter of the range."""
    bright: IssueItems = Field(default_factory=IssueItems)
    """Not constant; fewer than 5 % of the pixels are below three quarters of the range."""
    low_information: IssueItems = Field(default_factory=IssueItems)
    """Neither constant nor near-blank; entropy of 16 brightness bands below 0.25 bits."""
    odd_aspect_ratio: IssueItems = Field(default_factory=IssueItems)
    """The short side is less than 0.35 of the long side."""
    odd_size: IssueItems = Field(default_factory=IssueItems)
    """sqrt(height × width) more than 10 times off the split's median."""
    grayscale_in_rgb: IssueItems = Field(default_factory=IssueItems)
    """3/4-channel images with equal channels, when most 3/4-channel images of the split are colour."""
    mixed_channels: IssueItems = Field(default_factory=IssueItems)
    """Items whose channel count is not the split's most common one."""

    def present(self) -> dict[str, IssueItems]:
        """The issues found at least once, in :data:`ISSUES` order."""
        found = {name: getattr(self, name) for name in ISSUES}
        return {name: items for name, items in found.items() if items.total}


@dataclass
class _Listed:
    total: int = 0
    items: list[ItemId] = field(default_factory=list)
    every: ItemList = field(default_factory=ItemList)
    """All of them, compactly, for the full list."""

    def add(self, names: Sequence[ItemId], mask: torch.Tensor | None = None) -> None:
        if mask is None:
            self.total += len(names)
            self.every.extend(names)
            room = MAX_LISTED_ITEMS - len(self.items)
            if room > 0:
                self.items.extend(names[:room])
            return
        hits = int(mask.sum())
        if not hits:
            return
        self.total += hits
        found = torch.nonzero(mask)[:, 0].tolist()
        self.every.extend(names[i] for i in found)
        room = MAX_LISTED_ITEMS - len(self.items)
        if room > 0:
            self.items.extend(names[i] for i in found[:room])

    def model(self) -> IssueItems:
        return IssueItems(total=self.total, items=list(self.items))

    def merge(self, other: _Listed, offset: int) -> None:
        """Append ``other``'s items, whose indices (not names) count from ``offset``."""
        self.total += other.total
        room = MAX_LISTED_ITEMS - len(self.items)
        self.items += [item + offset if isinstance(item, int) else item for item in other.items[:max(room, 0)]]
        self.every.extend(item + offset if isinstance(item, int) else item for item in other.every)


@dataclass
class _Spans:
    """The items of one size or one channel count: ``total``, the first 100 by name, and every one as
    runs of consecutive positions (where in the split's reading order), 16 bytes a run rather than 8 an
    item: nearly every item shares the split's one size, and only the odd ones are ever listed in full,
    named at the end (:meth:`every`)."""

    total: int = 0
    items: list[ItemId] = field(default_factory=list)
    runs: array[int] = field(default_factory=lambda: array("q"))
    """``start, stop, start, stop, …``: the positions ``[start, stop)`` of each run, in order."""

    def add(self, names: Sequence[ItemId], start: int) -> None:
        """A batch's items, at positions ``start`` on."""
        self.total += len(names)
        room = MAX_LISTED_ITEMS - len(self.items)
        if room > 0:
            self.items.extend(names[:room])
        self._run(start, start + len(names))

    def _run(self, start: int, stop: int) -> None:
        if self.runs and self.runs[-1] == start:
            self.runs[-1] = stop
        elif stop > start:
            self.runs.extend((start, stop))

    def merge(self, other: _Spans, offset: int) -> None:
        """Append ``other``'s items, whose positions (and indices, not names) count from ``offset``."""
        self.total += other.total
        room = MAX_LISTED_ITEMS - len(self.items)
        self.items += [item + offset if isinstance(item, int) else item for item in other.items[:max(room, 0)]]
        for k in range(0, len(other.runs), 2):
            self._run(other.runs[k] + offset, other.runs[k + 1] + offset)

    def every(self, names: Sequence[ItemId]) -> ItemList:
        """Every item, by its name in ``names`` (the split's item names in reading order)."""
        listed = ItemList()
        for k in range(0, len(self.runs), 2):
            listed.extend(names[self.runs[k] : self.runs[k + 1]])
        return listed


def _merged(parts: Sequence[_Listed | _Spans]) -> IssueItems:
    items: list[ItemId] = []
    for part in parts:
        items += part.items[: MAX_LISTED_ITEMS - len(items)]
    return IssueItems(total=sum(part.total for part in parts), items=items)


@dataclass
class ImageIssueAccumulator:
    """Folds batches of one split in (:meth:`add`) and says which items have which issue (:meth:`result`)."""

    flags: dict[str, _Listed] = field(default_factory=lambda: {
        name: _Listed() for name in ("constant", "near_blank", "dark", "bright", "low_information",
                                     "odd_aspect_ratio", "grayscale_in_rgb")})
    sizes: dict[tuple[int, int], _Spans] = field(default_factory=dict)
    channels: dict[int, _Spans] = field(default_factory=dict)
    colour: int = 0
    checked: int = 0

    def add(self, images: torch.Tensor, axis: int | None, ids: Sequence[ItemId] | None, start: int,
            levels: torch.Tensor | None = None) -> None:
        """One batch: ``images`` ``(B, *item)`` of one item shape; ``axis`` its items' channel axis (0,
        -1, or None for ``(H, W)`` items); ``ids`` the items' names, or None for indices from ``start``.
        ``levels``, for single-channel ``uint8`` items, is each item's count of every value 0..255
        ``(B, 256)`` (the statistics' own bincount): the checks then read every pixel, at no cost."""
        rows = images.shape[0] if images.ndim else 0
        item = tuple(images.shape[1:])
        if rows == 0 or len(item) not in (2, 3) or (len(item) == 3) != (axis is not None):
            return  # feature vectors and volumes are not images
        names: Sequence[ItemId] = ids if ids is not None else range(start, start + rows)
        if axis is None:
            (height, width), channels = item, 1
        elif axis == 0:
            channels, height, width = item
        else:
            height, width, channels = item
        self.sizes.setdefault((height, width), _Spans()).add(names, start)
        self.channels.setdefault(channels, _Spans()).add(names, start)
        if min(height, width) < ODD_ASPECT_RATIO * max(height, width):
            self.flags["odd_aspect_ratio"].add(names)
        if levels is not None and images.dtype == torch.uint8 and levels.shape == (rows, 256):
            bands = levels.reshape(rows, LEVELS, 256 // LEVELS).sum(dim=2)
            constant = bands.amax(dim=1) == height * width  # one band; then one value, on those rows only
            if bool(constant.any()):
                rows_left = torch.nonzero(constant)[:, 0]
                constant[rows_left] = levels[rows_left].amax(dim=1) == height * width
            self.flags["constant"].add(names, constant)
            self._intensity(bands, height * width, names, constant, torch.ones(rows, dtype=torch.bool))
            return
        if images.dtype == torch.bool:
            images, value_range = images.view(torch.uint8), (0.0, 1.0)
        else:
            value_range = None
        # (B, C, P): pixels of each channel along the last dimension
        grouped = images.reshape(rows, channels, -1) if axis != -1 else \
            images.reshape(rows, -1, channels).transpose(1, 2)
        sample = grouped[:, :, :: max(1, height * width // SAMPLED_PIXELS)]
        luma = _brightness(sample)
        sampled = _sampled_bands(luma, value_range, uint8=images.dtype == torch.uint8)
        # candidates: every sampled pixel in one band (or, with no range, of one value); then confirmed
        # on every pixel of every channel, for those few items only
        if sampled is not None:
            candidate = sampled[0].amax(dim=1) == luma.shape[1]
        else:
            low, high = torch.aminmax(luma, dim=1)
            candidate = low == high
        constant = torch.zeros(rows, dtype=torch.bool)
        if bool(candidate.any()):
            rows_left = torch.nonzero(candidate)[:, 0]
            full_low, full_high = torch.aminmax(grouped[rows_left].reshape(len(rows_left), -1), dim=1)
            same = full_low == full_high
            if full_low.dtype.is_floating_point:
                same &= torch.isfinite(full_low)
            constant[rows_left] = same
        self.flags["constant"].add(names, constant)
        if channels in (3, 4):
            step = max(1, _COMPARED_PIXELS // (height * width))  # bounded temporaries for large photos
            gray = torch.cat([((part[:, 0] == part[:, 1]) & (part[:, 1] == part[:, 2])).all(dim=1)
                              for part in grouped.split(step)])
            self.flags["grayscale_in_rgb"].add(names, gray)
            self.colour += rows - int(gray.sum())
        if sampled is not None:
            bands, judged = sampled
            self._intensity(bands, luma.shape[1], names, constant, judged)

    def merge(self, other: ImageIssueAccumulator, offset: int) -> None:
        """Append ``other``, the accumulation of the items that follow ours: its item indices count from
        ``offset`` (our item count)."""
        for name, listed in other.flags.items():
            self.flags[name].merge(listed, offset)
        for size, spans in other.sizes.items():
            self.sizes.setdefault(size, _Spans()).merge(spans, offset)
        for channels, spans in other.channels.items():
            self.channels.setdefault(channels, _Spans()).merge(spans, offset)
        self.colour += other.colour
        self.checked += other.checked

    def _intensity(self, bands: torch.Tensor, n: int, names: Sequence[ItemId], constant: torch.Tensor,
                   judged: torch.Tensor) -> None:
        """Near-blank, dark, bright and low information from each item's count of pixels per band
        ``(B, LEVELS)``, of ``n`` pixels; ``judged`` marks the items with a known range."""
        self.checked += int(judged.sum())
        blank = ((bands[:, :-1] + bands[:, 1:]).amax(dim=1) >= NEAR_BLANK_SHARE * n) & ~constant & judged
        self.flags["near_blank"].add(names, blank)
        dark_band, bright_band = round(DARK_LEVEL * LEVELS), round(BRIGHT_LEVEL * LEVELS)
        # a constant image is reported as constant only, however dark or bright its one value
        self.flags["dark"].add(names, (bands[:, dark_band:].sum(dim=1) < DARK_SHARE * n) & judged & ~constant)
        self.flags["bright"].add(names, (bands[:, :bright_band].sum(dim=1) < BRIGHT_SHARE * n) & judged & ~constant)
        shares = bands.double() / n
        entropy = -(shares * torch.log2(shares.clamp_min(1e-300))).sum(dim=1)
        self.flags["low_information"].add(names, (entropy < LOW_ENTROPY_BITS) & ~blank & ~constant & judged)

    def everything(self, names: Sequence[ItemId]) -> dict[str, ItemList]:
        """Every item with each issue found (the full lists; :meth:`result` lists the first 100);
        ``names``: every item's name, in the order the items were added (the odd sizes and channel
        counts keep positions)."""
        lists = {name: self.flags[name].every for name in self.flags}
        if self.colour <= self.flags["grayscale_in_rgb"].total:
            del lists["grayscale_in_rgb"]
        if self.sizes:
            lists["odd_size"] = _joined([self.sizes[size] for size in _odd_sizes(self.sizes)], names)
        if len(self.channels) > 1:
            usual = max(self.channels, key=lambda c: self.channels[c].total)
            lists["mixed_channels"] = _joined([spans for c, spans in self.channels.items() if c != usual], names)
        return {name: lists[name] for name in ISSUES if name in lists and len(lists[name])}

    def result(self) -> ImageIssues:
        issues = ImageIssues(checked=self.checked, **{name: listed.model() for name, listed in self.flags.items()})
        gray = self.flags["grayscale_in_rgb"]
        if self.colour <= gray.total:  # a grayscale dataset stored as RGB: nothing odd
            issues.grayscale_in_rgb = IssueItems()
        if self.sizes:
            issues.odd_size = _merged([self.sizes[size] for size in _odd_sizes(self.sizes)])
        if len(self.channels) > 1:
            usual = max(self.channels, key=lambda c: self.channels[c].total)
            issues.mixed_channels = _merged([listed for c, listed in self.channels.items() if c != usual])
        return issues


def _joined(parts: Sequence[_Spans], names: Sequence[ItemId]) -> ItemList:
    joined = ItemList()
    for part in parts:
        joined.extend(part.every(names))
    return joined


def _odd_sizes(sizes: dict[tuple[int, int], _Spans]) -> list[tuple[int, int]]:
    """Shapes whose sqrt(area) is more than :data:`ODD_SIZE_FACTOR` times off the median item's."""
    side = {shape: math.sqrt(shape[0] * shape[1]) for shape in sizes}
    ordered = sorted(sizes, key=lambda shape: side[shape])
    total = sum(listed.total for listed in sizes.values())
    seen, median = 0, side[ordered[-1]]
    for shape in ordered:
        seen += sizes[shape].total
        if 2 * seen >= total:
            median = side[shape]
            break
    return [shape for shape in sizes
            if side[shape] * ODD_SIZE_FACTOR < median or side[shape] > ODD_SIZE_FACTOR * median]


def _brightness(sample: torch.Tensor) -> torch.Tensor:
    """``(B, n)`` brightness of sampled pixels ``(B, C, n)``: the channel itself (a view), or ITU-R 601
    luma of the first three channels (integer weights /256 for ``uint8``, exact to one level)."""
    channels = sample.shape[1]
    if channels < 3:
        return sample[:, 0]
    red, green, blue = sample[:, 0], sample[:, 1], sample[:, 2]
    if sample.dtype == torch.uint8:
        return (77 * red.to(torch.int32) + 150 * green.to(torch.int32) + 29 * blue.to(torch.int32)) >> 8
    wide = torch.float64 if sample.dtype == torch.float64 else torch.float32
    return 0.299 * red.to(wide) + 0.587 * green.to(wide) + 0.114 * blue.to(wide)


def _sampled_bands(luma: torch.Tensor, value_range: tuple[float, float] | None, *,
                   uint8: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Each item's count of sampled pixels per brightness band ``(B, LEVELS)`` and which items were
    judged (no NaN/Inf among them); None when the batch has no range to judge against (normalised
    data, wide integers). ``uint8``: the pixels are ``uint8`` (``luma`` is then ``uint8``, or ``int32``
    luma, 0..255)."""
    rows = luma.shape[0]
    judged = torch.ones(rows, dtype=torch.bool)
    if uint8 and value_range is None:
        index = (luma >> 4).to(torch.int32)  # 256 levels / 16 bands: exact
    else:
        if value_range is None:
            low, high = torch.aminmax(luma)
            if luma.dtype.is_floating_point and not (math.isfinite(float(low)) and math.isfinite(float(high))):
                judged = torch.isfinite(luma).all(dim=1)
                if not bool(judged.any()):
                    return None
                low, high = torch.aminmax(luma[judged])
            value_range = next(((0.0, r) for r in (1.0, 255.0) if float(low) >= 0 and float(high) <= r), None)
            if value_range is None:
                return None
        # every range starts at 0 and holds every judged value, so truncation is the floor and the top
        # value lands in the last band; NaN/Inf items (not judged) land in a band all the same
        scale = (LEVELS - 1e-4) / value_range[1]
        scaled = luma * scale if luma.dtype.is_floating_point else luma.to(torch.float32) * scale
        index = torch.nan_to_num_(scaled, nan=0.0, posinf=0.0, neginf=0.0).to(torch.int32)
    index += (torch.arange(rows, dtype=torch.int32) * LEVELS).view(rows, 1)
    counts = torch.bincount(index.reshape(-1), minlength=rows * LEVELS).reshape(rows, LEVELS)
    return counts, judged
