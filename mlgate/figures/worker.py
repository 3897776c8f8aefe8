"""Render figures in a second process, started before this one imports torch.

On a 2-core runner, importing matplotlib and drawing the figures (about a second) then overlaps
with importing torch and computing the statistics, instead of following them. A figure is asked for
as a typed job, one frozen dataclass per figure kind (:class:`LabelDistribution`, :class:`SampleGrid`,
…), whose ``render()`` calls the drawing function of its figure's module
(:mod:`mlgate.figures.samples`, ``.distributions``, ``.items``, ``.training`` or ``.model``). The
worker runs the same ``render()``, so the PNG bytes are identical; if it cannot start or fails,
:meth:`FigureWorker.render` renders in this process.

Protocol (private): the parent writes one pickle of ``{name: job}`` to the worker's stdin and reads
one pickle of ``{name: png bytes, or why it could not be drawn}`` (or ``("error", text)`` when it
refused the jobs) from its stdout. Both ends unpickle with
an allow-list (:class:`_Unpickler`): the job classes below and numpy's array and scalar
reconstruction, nothing else. Job fields hold values taken from the user's dataset (label and class
names, pixels); pickling encodes them as data, and a stream that names any other class or function
(say a value of a user-defined type that slipped into a job) is refused before anything is imported,
so nothing in it can run code in the worker.

This module imports only the standard library: ``cli`` imports it, and starts the worker, before
anything heavy.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


# ---------------------------------------------------------------------------------------------
# jobs: one per figure kind


@dataclass(frozen=True)
class LabelDistribution:
    """Per split, the count of each label (and the base's, when comparing):
    :func:`mlgate.figures.distributions.label_distribution`."""

    label_counts: Mapping[str, Mapping[str, int]]
    base_counts: Mapping[str, Mapping[str, int]] | None = None
    base_name: str = "base"

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.distributions import label_distribution

        return label_distribution(self.label_counts, base_counts=self.base_counts, base_name=self.base_name)


@dataclass(frozen=True)
class SampleGrid:
    """Samples of one split, already made displayable by :func:`mlgate.figures.samples.display_samples`
    (so the worker needs no torch): :func:`mlgate.figures.samples.sample_grid_of_displays`."""

    displays: Mapping[int, Sequence[np.ndarray]]
    class_names: Sequence[str] | None
    per_class: int
    split: str = "train"

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.samples import sample_grid_of_displays

        return sample_grid_of_displays(self.displays, self.class_names, per_class=self.per_class, split=self.split)


@dataclass(frozen=True)
class PixelHistogram:
    """Per split, ``(counts, bin_edges)`` and the number of items (and the base's histograms, when
    comparing): :func:`mlgate.figures.distributions.pixel_histogram`."""

    histograms: Mapping[str, tuple[Sequence[int], Sequence[float]]]
    items: Mapping[str, int] | None = None
    base: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None
    base_name: str = "base"

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.distributions import pixel_histogram

        return pixel_histogram(self.histograms, items=self.items, base=self.base, base_name=self.base_name)


@dataclass(frozen=True)
class LossCurve:
    """Training loss per logged point, each the mean of ``step_every`` steps:
    :func:`mlgate.figures.training.loss_curve`."""

    losses: Sequence[float]
    title: str
    step_every: int = 1

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.training import loss_curve

        return loss_curve(self.losses, title=self.title, step_every=self.step_every)


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts, true class by row, of ``model`` on ``split``: :func:`mlgate.figures.model.confusion_matrix`."""

    confusion: Sequence[Sequence[int]]
    class_names: Sequence[str] | None = None
    model: str = ""
    split: str = ""

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.model import confusion_matrix

        return confusion_matrix(self.confusion, self.class_names, model=self.model, split=self.split)


@dataclass(frozen=True)
class AccuracyDelta:
    """Per-class accuracy of the candidate and of the production model on the same eval data:
    :func:`mlgate.figures.model.accuracy_delta`."""

    candidate: Mapping[str, float]
    production: Mapping[str, float]
    candidate_name: str
    production_name: str
    split: str = ""
    eval_samples: int | None = None
    overall: tuple[float, float] | None = None
    """(candidate, production) accuracy over every class."""

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.model import accuracy_delta

        return accuracy_delta(self.candidate, self.production, candidate_name=self.candidate_name,
                              production_name=self.production_name, split=self.split,
                              eval_samples=self.eval_samples, overall=self.overall)


@dataclass(frozen=True)
class LeakedPairs:
    """Up to 8 leaked items beside their train copies, already made displayable by
    :func:`mlgate.figures.images.display_images`: :func:`mlgate.figures.items.leaked_pairs`.

    ``pairs`` holds ``(split, item, label, train item, train label)`` per image (plain values: the
    worker admits no other class); ``total`` counts every leaked item, shown or not."""

    images: Sequence[np.ndarray]
    pairs: Sequence[tuple[str, int | str, int, int | str, int]]
    class_names: Sequence[str] | None
    total: int

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.items import leaked_pairs

        return leaked_pairs(self.images, self.pairs, self.class_names, total=self.total)


@dataclass(frozen=True)
class FlippedExamples:
    """Items one model gets right and the other wrong, already made displayable by
    :func:`mlgate.figures.images.display_images`: :func:`mlgate.figures.model.flipped_examples`.

    ``flips`` holds ``(item, true label, production's prediction, candidate's)`` per image (plain
    values); ``lost`` and ``gained`` count every flipped item each way, shown or not."""

    images: Sequence[np.ndarray]
    flips: Sequence[tuple[int, int, int, int]]
    lost: int
    gained: int
    candidate_name: str
    production_name: str
    class_names: Sequence[str] | None = None
    split: str = ""

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.model import flipped_examples

        return flipped_examples(self.images, self.flips, self.class_names, lost=self.lost, gained=self.gained,
                                candidate_name=self.candidate_name, production_name=self.production_name,
                                split=self.split)


@dataclass(frozen=True)
class ConfusionDifference:
    """Candidate minus production confusion counts, true class by row:
    :func:`mlgate.figures.model.confusion_difference`."""

    difference: Sequence[Sequence[int]]
    class_names: Sequence[str] | None = None
    candidate_name: str = ""
    production_name: str = ""
    split: str = ""
    eval_samples: int | None = None

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.model import confusion_difference

        return confusion_difference(self.difference, self.class_names, candidate_name=self.candidate_name,
                                    production_name=self.production_name, split=self.split,
                                    eval_samples=self.eval_samples)


@dataclass(frozen=True)
class DriftOverlay:
    """Per split on both sides, head and base pixel histograms ``(counts, bin_edges)`` and label
    counts, with the KS statistic and where it is largest, and the label TVD:
    :func:`mlgate.figures.distributions.drift_overlay`."""

    histograms: Mapping[str, tuple[Sequence[int], Sequence[float]]]
    base_histograms: Mapping[str, tuple[Sequence[int], Sequence[float]]]
    label_counts: Mapping[str, Mapping[str, int]]
    base_counts: Mapping[str, Mapping[str, int]]
    ks: Mapping[str, tuple[float, float]]
    tvd: Mapping[str, float]
    base_name: str = "base"

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.distributions import drift_overlay

        return drift_overlay(self.histograms, self.base_histograms, self.label_counts, self.base_counts,
                             ks=self.ks, tvd=self.tvd, base_name=self.base_name)


@dataclass(frozen=True)
class LabelErrorGrid:
    """Up to 16 likely label errors, already made displayable by :func:`mlgate.figures.images.display_images`:
    :func:`mlgate.figures.items.label_error_grid`.

    ``errors`` holds ``(item, given label, suggested label, confidence)`` per image (plain values);
    ``total`` counts every flagged item, shown or not."""

    images: Sequence[np.ndarray]
    errors: Sequence[tuple[int | str, int, int, float]]
    class_names: Sequence[str] | None
    total: int
    split: str = "train"

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.items import label_error_grid

        return label_error_grid(self.images, self.errors, self.class_names, split=self.split, total=self.total)


@dataclass(frozen=True)
class NearGroups:
    """Up to 8 near-duplicate groups, a row each, every image already made displayable by
    :func:`mlgate.figures.images.display_images`: :func:`mlgate.figures.items.near_groups`.

    ``groups`` holds ``(members, distance, size)`` per row, each member ``(split, item, label)`` (plain
    values: the worker admits no other class); ``images`` one array per member, row after row;
    ``total`` counts every group (or near-leaked item) of the kind shown; ``leaked``: each row is a
    test item beside its closest train item."""

    images: Sequence[np.ndarray]
    groups: Sequence[tuple[tuple[tuple[str, int | str, int], ...], float, int]]
    class_names: Sequence[str] | None
    total: int
    leaked: bool
    threshold: float

    def render(self) -> bytes:
        # local: this module imports only the standard library, so cli can start the worker early
        from mlgate.figures.items import near_groups

        return near_groups(self.images, self.groups, self.class_names, total=self.total, leaked=self.leaked,
                           threshold=self.threshold)


FigureJob = (LabelDistribution | SampleGrid | PixelHistogram | LossCurve | ConfusionMatrix | AccuracyDelta | LeakedPairs
             | FlippedExamples | ConfusionDifference | DriftOverlay | LabelErrorGrid | NearGroups)
_JOB_TYPES = (LabelDistribution, SampleGrid, PixelHistogram, LossCurve, ConfusionMatrix, AccuracyDelta, LeakedPairs,
              FlippedExamples, ConfusionDifference, DriftOverlay, LabelErrorGrid, NearGroups)


def render_jobs(jobs: Mapping[str, FigureJob]) -> dict[str, bytes]:
    """PNG bytes per job name, drawn in this process.

    A figure that cannot be drawn is left out, with a ``notice`` that names it and says why; the
    others are drawn all the same (one figure never costs the whole report).
    """
    return _keep_drawn(draw_jobs(jobs))


def draw_jobs(jobs: Mapping[str, FigureJob]) -> dict[str, bytes | str]:
    """Per job name, its PNG bytes, or (a ``str``) why it could not be drawn. Prints nothing: the
    worker runs it with stdout as its answer pipe."""
    drawn: dict[str, bytes | str] = {}
    for name, job in jobs.items():
        try:
            drawn[name] = job.render()
        except Exception as exc:  # each figure on its own: a failure leaves out this figure only
            drawn[name] = _why_not_drawn(exc)
    return drawn


def _why_not_drawn(exc: Exception) -> str:
    # local: this module imports only the standard library, so cli can start the worker early
    from mlgate.errors import MlgateError

    if isinstance(exc, MlgateError):  # CannotDrawFigure: empty or unshowable input, said in words
        return exc.message
    return f"{type(exc).__name__}: {exc} (a bug in mlgate's figures; please report it)"


def _keep_drawn(drawn: Mapping[str, bytes | str]) -> dict[str, bytes]:
    """The drawn figures; a ``notice`` for each one left out."""
    # local: this module imports only the standard library, so cli can start the worker early
    from mlgate import workflow

    for name, why in drawn.items():
        if isinstance(why, str):
            workflow.annotate("notice", f"Figure {name} left out", f"The figure {name} is not in the report: {why}")
    return {name: png for name, png in drawn.items() if isinstance(png, bytes)}


# ---------------------------------------------------------------------------------------------
# the parent's end


class FigureWorker:
    """The parent's end of the figure process. :meth:`send` hands jobs over at once, so they are drawn
    on the other core while this process goes on computing; :meth:`render` returns every figure sent.
    Whatever the worker cannot draw (it died, it refused the jobs) is drawn in this process instead."""

    def __init__(self, process: subprocess.Popen[bytes] | None) -> None:
        self._process = process
        self._pending: dict[str, FigureJob] | None = None
        """Jobs the worker was sent and whose answer is not read yet (one request in flight at most,
        so neither side can block the other on a full pipe)."""
        self._drawn: dict[str, bytes] = {}

    @classmethod
    def start(cls) -> FigureWorker:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
        try:
            process = subprocess.Popen([sys.executable, "-m", "mlgate.figures.worker"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=env)
        except OSError:
            process = None
        return cls(process)

    def send(self, jobs: Mapping[str, FigureJob]) -> None:
        """Start drawing ``jobs``; :meth:`render` returns them with the rest."""
        self._collect()
        process = self._process
        if process is not None and process.stdin is not None:
            try:
                process.stdin.write(pickle.dumps(dict(jobs)))
                process.stdin.flush()
            except OSError:
                self.close()
            else:
                self._pending = dict(jobs)
                return
        self._drawn.update(render_jobs(jobs))

    def render(self, jobs: Mapping[str, FigureJob]) -> dict[str, bytes]:
        """PNG bytes per job name, of ``jobs`` and of every job sent before; then the worker is done."""
        self.send(jobs)
        self._collect()
        self.close()
        drawn, self._drawn = self._drawn, {}
        return drawn

    def _collect(self) -> None:
        """Read the answer to the request in flight; draw here what the worker did not."""
        jobs, self._pending = self._pending, None
        if jobs is None:
            return
        process = self._process
        answer: object = None
        if process is not None and process.stdout is not None:
            try:
                answer = _Unpickler(process.stdout).load()  # plain dict/bytes/str: no class is allowed
            except (OSError, EOFError, pickle.PickleError):
                answer = None
        if isinstance(answer, dict):
            self._drawn.update(_keep_drawn(answer))
            return
        self.close()  # dead, or ("error", text): the jobs were refused
        self._drawn.update(render_jobs(jobs))

    def close(self) -> None:
        """Stop the worker: every answer wanted has been read, or none is wanted any more."""
        process, self._process = self._process, None
        if process is not None:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None and not pipe.closed:
            with contextlib.suppress(OSError):  # a broken pipe to a killed worker
                pipe.close()


# ---------------------------------------------------------------------------------------------
# the worker's end


class _Unpickler(pickle.Unpickler):
    """Builds only the job types and numpy arrays/scalars; any other global is refused unimported."""

    _ALLOWED: frozenset[tuple[str, str]] = frozenset(
        {(job.__module__, job.__qualname__) for job in _JOB_TYPES}
        | {("numpy", "ndarray"), ("numpy", "dtype")}
        # numpy 2 names its array/scalar reconstructors in numpy._core, numpy 1 in numpy.core
        | {(f"numpy.{core}.multiarray", name) for core in ("_core", "core") for name in ("_reconstruct", "scalar")}
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"a figure job may not hold {module}.{name}")
        return super().find_class(module, name)


def _load_jobs(stream: IO[bytes]) -> dict[str, FigureJob]:
    received = _Unpickler(stream).load()
    if not isinstance(received, dict) or not all(
        isinstance(name, str) and isinstance(job, _JOB_TYPES) for name, job in received.items()
    ):
        raise pickle.UnpicklingError(f"expected {{name: figure job}}, got {type(received).__name__}")
    return received


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """Answer each pickled ``{name: job}`` request on ``stdin`` with ``{name: PNG bytes or why not}``,
    until ``stdin`` ends."""
    # warm up while the parent imports torch: matplotlib, the Agg canvas, fonts and text layout
    # (a first figure costs about three times a later one)
    LabelDistribution({"warm-up": {"0": 1}}).render()
    while True:
        answer: object
        try:
            jobs = _load_jobs(stdin)
        except EOFError:
            return  # the parent needs no more figures
        except pickle.UnpicklingError as exc:  # refused: the parent renders in its own process instead
            stdout.write(pickle.dumps(("error", repr(exc))))
            stdout.flush()
            return  # the rest of the stream cannot be trusted
        answer = draw_jobs(jobs)  # a figure that fails is answered as why, and left out by the parent
        stdout.write(pickle.dumps(answer))
        stdout.flush()


if __name__ == "__main__":
    # serve from the imported module, not this __main__ copy: the parent pickles the job classes
    # as mlgate.figures.worker.*, and those are the ones the allow-list admits
    from mlgate.figures import worker

    worker.serve(sys.stdin.buffer, sys.stdout.buffer)
