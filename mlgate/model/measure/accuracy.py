"""Accuracy, per-class accuracy and the confusion matrix, counted batch by batch."""

from __future__ import annotations

from typing import Any

from torch import Tensor


class Confusion:
    """Counts of (true, predicted) label pairs over every batch seen so far."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, int], int] = {}
        self.samples = 0
        self.width = 0

    def add(self, labels: Tensor, predicted: Tensor, width: int) -> None:
        """One batch; ``width`` is the number of logits, so classes never predicted still get a column."""
        self.width = max(self.width, width, int(labels.max()) + 1 if len(labels) else 0)
        self.samples += len(labels)
        for true, pred in zip(labels.tolist(), predicted.tolist(), strict=True):
            self.counts[(true, pred)] = self.counts.get((true, pred), 0) + 1

    def matrix(self, num_classes: int | None) -> list[list[int]]:
        """``matrix[true][predicted]``, square, ``num_classes`` wide (or as wide as seen)."""
        size = num_classes or self.width
        return [[self.counts.get((t, p), 0) for p in range(size)] for t in range(size)]


def accuracy_fields(confusion: Confusion, num_classes: int | None) -> dict[str, Any]:
    """The accuracy fields of :class:`~mlgate.model.measure.values.ModelMeasurement`; all ``None``
    (and ``eval_samples`` 0) when nothing was evaluated."""
    samples = confusion.samples
    if samples == 0:
        return {"accuracy": None, "per_class_accuracy": None, "confusion": None, "eval_samples": 0}
    matrix = confusion.matrix(num_classes)
    return {
        "accuracy": sum(matrix[c][c] for c in range(len(matrix))) / samples,
        "per_class_accuracy": {str(c): row[c] / sum(row) for c, row in enumerate(matrix) if sum(row)},
        "confusion": matrix,
        "eval_samples": samples,
    }
