"""What a measurement returns, free of torch: the gates and the report import only this module.

Every metric declares which way is better (torchmetrics' ``higher_is_better``) on its own field, as
``Annotated[float, LOWER]``; :func:`direction_of` reads it back, so a gate never re-encodes whether a
bigger number is good news. Counts (``predictions``, ``eval_samples``, ``batch_size``) and tables
(``confusion``) are not metrics and declare nothing.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, PrivateAttr

from mlgate.errors import MlgateError


class BenchmarkError(MlgateError):
    """Raised when the model cannot run on the inputs the benchmark feeds it, or nothing is to be timed."""

    title = "Cannot benchmark model"


class Direction(enum.Enum):
    """Which way a metric improves; declared once per field, used by every gate on that metric."""

    HIGHER = "higher is better"
    LOWER = "lower is better"

    @property
    def higher_is_better(self) -> bool:
        return self is Direction.HIGHER

    @property
    def miss(self) -> str:
        """The word for a value on the wrong side of its limit: "over" a maximum, "below" a minimum."""
        return "below" if self.higher_is_better else "over"

    def meets(self, value: float, limit: float) -> bool:
        """``value`` is at least as good as ``limit`` (the limit itself passes)."""
        return value >= limit if self.higher_is_better else value <= limit

    def shortfall(self, value: float, limit: float) -> float:
        """How far ``value`` falls on the wrong side of ``limit`` (positive when it misses)."""
        return limit - value if self.higher_is_better else value - limit

    def worsening(self, new: float, old: float, *, relative: bool = False) -> float:
        """How much worse ``new`` is than ``old`` (negative when better); ``relative``: as a fraction of ``old``."""
        if relative:
            return 1 - new / old if self.higher_is_better else new / old - 1
        return old - new if self.higher_is_better else new - old


HIGHER = Direction.HIGHER
LOWER = Direction.LOWER


class LatencyStats(BaseModel):
    predictions: int
    total_seconds: Annotated[float, LOWER]
    mean_ms: Annotated[float, LOWER]
    p50_ms: Annotated[float, LOWER]
    p90_ms: Annotated[float, LOWER]
    p95_ms: Annotated[float, LOWER]
    p99_ms: Annotated[float, LOWER]
    iqr_ms: Annotated[float, LOWER]
    stdev_ms: Annotated[float, LOWER]


class Throughput(BaseModel):
    batch_size: int
    samples_per_second: Annotated[float, HIGHER]
    batch_p50_ms: Annotated[float, LOWER]


@dataclass(frozen=True)
class Flip:
    """One eval item that one model gets right and the other wrong, with its pixels for the figure."""

    item: int
    """Position in the evaluated order (0-based)."""
    label: int
    production: int
    """Production's predicted class."""
    candidate: int
    pixels: Any
    """The item as read from the eval data (a tensor, before preprocessing)."""


@dataclass(frozen=True)
class ItemResults:
    """What report.json summarises but never holds: the time of every call and the prediction for
    every eval item, in order, so that candidate and production pair up call by call and item by item."""

    latency_ns: Sequence[int]
    """Batch-1 calls in timing order; with production, round ``i`` timed both models back to back."""
    labels: Sequence[int] = ()
    predicted: Sequence[int] = ()
    flips: Sequence[Flip] = field(default_factory=tuple)
    """With production (on the candidate's results): the first items production gets right and the
    candidate wrong, and the reverse, up to :data:`~mlgate.model.measure.run.FLIPS_KEPT` each way."""


class ModelMeasurement(BaseModel):
    latency: LatencyStats
    throughput: list[Throughput]
    size_mb: Annotated[float, LOWER]
    params: Annotated[int, LOWER]
    flops_per_prediction: Annotated[int | None, LOWER]
    peak_memory_mb: Annotated[float | None, LOWER]
    accuracy: Annotated[float | None, HIGHER]
    per_class_accuracy: Annotated[dict[str, float] | None, HIGHER]
    confusion: list[list[int]] | None  # confusion[true][predicted]
    eval_samples: int
    robustness: Annotated[dict[str, float] | None, HIGHER]  # {"gaussian@0.1": accuracy, "fgsm@0.1": accuracy}
    notes: list[str] = []  # what could not be measured, and why
    _items: ItemResults | None = PrivateAttr(default=None)  # never dumped: report.json holds summaries

    @property
    def items(self) -> ItemResults | None:
        """Per-call and per-item results (None for a measurement not taken by ``measure_model``)."""
        return self._items

    def with_items(self, items: ItemResults) -> ModelMeasurement:
        copy = self.model_copy()
        copy._items = items
        return copy


# a public contract: report.json embeds it, so a docstring here would change the published schema
class Environment(BaseModel):
    torch: str
    python: str
    cpu: str
    threads: int
    platform: str


def direction_of(metric: str, model: type[BaseModel] = ModelMeasurement) -> Direction:
    """The declared direction of a dotted field path such as ``"latency.p95_ms"``.

    Raises ``KeyError`` for a path that names no field, and ``ValueError`` for a field that is not a
    metric (declares no direction).
    """
    *parents, name = metric.split(".")
    for parent in parents:
        model = _nested_model(model.model_fields[parent].annotation)
    field = model.model_fields[name]
    declared = [item for item in field.metadata if isinstance(item, Direction)]
    if not declared:
        raise ValueError(f"{model.__name__}.{name} is not a metric: it declares no direction")
    return declared[0]


def value_at(measurement: BaseModel, metric: str) -> Any:
    """The value of a dotted field path such as ``"latency.p95_ms"``."""
    value: Any = measurement
    for name in metric.split("."):
        value = getattr(value, name)
    return value


def _nested_model(annotation: Any) -> type[BaseModel]:
    if typing.get_origin(annotation) is list:  # list[Throughput]: the items' fields
        (annotation,) = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    raise KeyError(f"{annotation!r} has no fields")
