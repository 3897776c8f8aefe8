"""The model gate's eval data: which inputs say where it is and how to read it, read into bounded batches.

:class:`EvalInputs` carries ``eval-data``, ``layout``, ``dataset-class``, ``eval-split``,
``max-eval-samples`` and ``input-shape`` from the mode to the steps that read the data (the eval
batches here, the train sample of :mod:`mlgate.model.generalisation`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate import workflow

if TYPE_CHECKING:
    from mlgate.data.layouts import Dataset
    from mlgate.model.measure.inputs import ModelInput
    from mlgate.settings import Layout


@dataclasses.dataclass(frozen=True)
class EvalInputs:
    """``eval-data`` (as given, workspace-relative; None without it) and how to read it."""

    data: Path | None
    layout: Layout
    dataset_class: str | None
    split: str
    max_samples: int
    input_shape: list[int] | None
    """``input-shape`` per item; None: taken from the first eval item."""

    def open(self, data_dir: Path, import_root: Path) -> Dataset:
        """The dataset at ``data_dir`` (``data`` checked to lie in the workspace), read the way the inputs say."""
        from mlgate.data.layouts import open_dataset  # start-up: imports torch

        return open_dataset(data_dir, self.layout, dataset_class=self.dataset_class, import_root=import_root)


def read_eval_batches(inputs: EvalInputs, data_dir: Path, import_root: Path) -> list[tuple[Any, Any]]:
    """The eval split of the dataset at ``data_dir`` in batches of (images, labels), at most
    ``max-eval-samples`` items; refused when the split is missing or empty."""
    from mlgate.data.layouts import DatasetLayoutError  # start-up: imports torch

    dataset = inputs.open(data_dir, import_root)
    if inputs.split not in dataset.splits:
        raise DatasetLayoutError(
            f"`eval-data` {inputs.data} has no split {inputs.split!r}; "
            f"found: {', '.join(dataset.splits)}.",
            hint=f"with:\n  eval-split: {next(iter(dataset.splits), 'test')}",
        )
    batches: list[tuple[Any, Any]] = []
    taken = 0
    for batch in dataset.splits[inputs.split].batches(1024):
        remaining = inputs.max_samples - taken
        if remaining <= 0:
            break
        batches.append((batch.images[:remaining], batch.labels[:remaining]))
        taken += min(remaining, len(batch.labels))
    return batches


def eval_input(inputs: EvalInputs, batches: list[tuple[Any, Any]] | None) -> ModelInput:
    """The per-item input shape: ``input-shape`` squared with one eval item (refused when the eval split
    was empty); its notice, if any, is annotated and left out of the value."""
    from mlgate.model.measure.inputs import resolve_input_shape  # start-up: imports torch

    if inputs.data is None or batches is None:
        return resolve_input_shape(inputs.input_shape, None)
    if not batches:
        from mlgate.data.layouts import DatasetLayoutError  # start-up: imports torch

        raise DatasetLayoutError(f"Split {inputs.split!r} of `eval-data` {inputs.data} is empty.")
    resolved = resolve_input_shape(inputs.input_shape, list(batches[0][0].shape[1:]),
                                   data=f"{inputs.data.as_posix()}, split {inputs.split}")
    if resolved.notice:
        workflow.annotate("notice", "Input shape", resolved.notice)
    return dataclasses.replace(resolved, notice=None)
