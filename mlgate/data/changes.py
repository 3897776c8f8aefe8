"""What changed between two versions of a dataset: base-branch statistics against head statistics."""

from __future__ import annotations

from pydantic import BaseModel

from mlgate.data.dvc import DataDiff
from mlgate.data.stats import DatasetStats


class SplitChange(BaseModel):
    count_base: int
    count_head: int
    count_delta: int
    label_deltas: dict[str, int]
    shape_base: list[int] | None
    shape_head: list[int] | None
    dtype_base: str | None
    dtype_head: str | None

    @property
    def shape_changed(self) -> bool:
        return self.shape_base != self.shape_head

    @property
    def dtype_changed(self) -> bool:
        return self.dtype_base != self.dtype_head


class Changes(BaseModel):
    base: str
    base_hash: str | None
    head_hash: str | None
    files: DataDiff | None
    splits: dict[str, SplitChange]
    added_splits: list[str]
    removed_splits: list[str]
    new_classes: list[str]
    removed_classes: list[str]


def _labels(stats: DatasetStats) -> set[str]:
    return {label for split in stats.splits.values() for label in split.label_counts}


def compare(
    base: DatasetStats,
    head: DatasetStats,
    *,
    base_name: str,
    base_hash: str | None = None,
    head_hash: str | None = None,
    files: DataDiff | None = None,
) -> Changes:
    """Per-split count and per-class deltas (head minus base); a split missing on one side counts as 0."""
    splits: dict[str, SplitChange] = {}
    for name in [*head.splits, *(s for s in base.splits if s not in head.splits)]:
        old, new = base.splits.get(name), head.splits.get(name)
        old_counts = old.label_counts if old else {}
        new_counts = new.label_counts if new else {}
        deltas = {
            label: new_counts.get(label, 0) - old_counts.get(label, 0)
            for label in sorted({*old_counts, *new_counts}, key=_label_order)
        }
        splits[name] = SplitChange(
            count_base=old.count if old else 0,
            count_head=new.count if new else 0,
            count_delta=(new.count if new else 0) - (old.count if old else 0),
            label_deltas={label: delta for label, delta in deltas.items() if delta},
            shape_base=old.shape if old else None,
            shape_head=new.shape if new else None,
            dtype_base=old.dtype if old else None,
            dtype_head=new.dtype if new else None,
        )
    base_labels, head_labels = _labels(base), _labels(head)
    return Changes(
        base=base_name,
        base_hash=base_hash,
        head_hash=head_hash,
        files=files,
        splits=splits,
        added_splits=[s for s in head.splits if s not in base.splits],
        removed_splits=[s for s in base.splits if s not in head.splits],
        new_classes=sorted(head_labels - base_labels, key=_label_order),
        removed_classes=sorted(base_labels - head_labels, key=_label_order),
    )


def _label_order(label: str) -> tuple[int, int | str]:
    """Numeric labels in numeric order (2 before 10), then names alphabetically."""
    return (0, int(label)) if label.lstrip("-").isdigit() else (1, label)
