"""``mode: data-stats``: which data versions -> measure -> report -> finish.

:func:`run_data_stats` reads top-down; each step is a function below it, in the order it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate import workflow
from mlgate.clients import Clients
from mlgate.context import RunContext
from mlgate.data.changes import Changes, compare
from mlgate.data.dvc import DataDiff, DvcError, DvcRunner
from mlgate.data.layouts import Dataset, open_dataset
from mlgate.data.pull import dvc_session, pull_if_tracked
from mlgate.data.report import (
    DataReport,
    build_report,
    data_outcome,
    render_markdown,
    render_unchanged,
    unchanged_outcome,
)
from mlgate.data.stats import DatasetStats, LeakageStats, LeakedPixels, compute_stats
from mlgate.data.stats_cache import StatsCache
from mlgate.errors import ExitCode
from mlgate.figures.worker import (
    FigureJob,
    FigureWorker,
    LabelDistribution,
    LeakedPairs,
    LossCurve,
    PixelHistogram,
    SampleGrid,
)
from mlgate.publish import Finished, Publication, finish
from mlgate.settings import DataStatsSettings

if TYPE_CHECKING:
    from torch import Tensor

    from mlgate.data.baseline import BaselineResult


@dataclasses.dataclass(frozen=True)
class DataVersions:
    """The dataset's DVC content hash in this checkout and at the pull request's base commit."""

    head_hash: str | None
    base_hash: str | None = None
    base_sha: str | None = None
    base_ref: str = ""

    @property
    def unchanged(self) -> bool:
        return self.base_hash is not None and self.base_hash == self.head_hash


@dataclasses.dataclass(frozen=True)
class Measured:
    dataset: Dataset
    stats: DatasetStats
    samples: dict[int, Tensor]
    """Up to ``samples-per-class`` train images per label, for the sample grid."""
    changes: Changes | None
    base: DatasetStats | None = None
    """The statistics ``changes`` compares with, for the base-vs-head figures."""
    leaked: list[LeakedPixels] = dataclasses.field(default_factory=list)
    """The first leaked items with their pixels, for the picture of leaked pairs."""


def run_data_stats(settings: DataStatsSettings, ctx: RunContext, clients: Clients,
                   figure_worker: FigureWorker | None = None) -> ExitCode:
    publication = Publication.for_run(settings, ctx, clients)
    cache = StatsCache(ctx.in_workspace(settings.cache_dir, "cache-dir"), publication.branch_store,
                       settings.assets_branch)
    with dvc_session(settings, clients.dvc, needed=settings.compare_base) as dvc:
        versions = _versions(settings, ctx, dvc)
        measured = None if versions.unchanged else _measure(settings, ctx, dvc, versions, cache)
    if measured is None:
        return finish(_unchanged(settings, versions, cache), publication, ctx)
    baseline = None
    if settings.baseline_train:
        with workflow.phase("Training the sanity baseline"):
            baseline = _train_baseline(settings, measured.dataset, measured.stats)
    with workflow.phase("Drawing the figures"):
        figures = (figure_worker or FigureWorker(None)).render(_figure_jobs(settings, measured, baseline))
    report = _report(settings, versions, measured, baseline, figures)
    cache.flush()
    return finish(_finished(report, figures, _label_counts(measured.stats)), publication, ctx)


def _versions(settings: DataStatsSettings, ctx: RunContext, dvc: DvcRunner | None) -> DataVersions:
    """Content hashes, without downloading: equal hashes mean the pull request leaves the data alone."""
    data = settings.data.as_posix()
    head_hash = dvc.content_hash(data) if dvc else None
    pr = ctx.pull_request
    if dvc is None or pr is None or not settings.compare_base or settings.baseline_data is not None:
        return DataVersions(head_hash)
    return DataVersions(head_hash, _base_hash(dvc, pr.base_sha, data), pr.base_sha, pr.base_ref)


def _measure(settings: DataStatsSettings, ctx: RunContext, dvc: DvcRunner | None, versions: DataVersions,
             cache: StatsCache) -> Measured:
    """Pull the data, compute its statistics (cached by content hash) and compare with the base."""
    data = settings.data.as_posix()
    pull_if_tracked(settings, dvc, settings.data, "data")
    with workflow.phase(f"Reading {data} and computing its statistics"):
        dataset = _open(settings, ctx.in_workspace(settings.data, "data"), ctx)
        stats, samples, leaked = compute_stats(dataset, samples_per_class=settings.samples_per_class,
                                               progress=_items_read())
    if versions.head_hash:
        cache.put(_cache_key(versions.head_hash, settings), stats)
    base = settings.baseline_data.as_posix() if settings.baseline_data else None
    if base is None and dvc is not None and versions.base_hash is not None:
        base = versions.base_ref or versions.base_sha
    with workflow.phase(f"Comparing with {base}") if base else contextlib.nullcontext():
        changes, base_stats = _changes(settings, ctx, dvc, versions, stats, cache)
    return Measured(dataset, stats, samples, changes, base_stats, leaked)


def _items_read() -> Callable[[int], None]:
    say = workflow.progress()
    return lambda items: say(f"{items:,} items read")


def _figure_jobs(settings: DataStatsSettings, measured: Measured,
                 baseline: BaselineResult | None) -> dict[str, FigureJob]:
    from mlgate.figures.data import CannotDrawFigure, display_images, display_samples

    stats, base = measured.stats, measured.base
    base_name = measured.changes.base if measured.changes else "base"
    jobs: dict[str, FigureJob] = {"label_distribution": LabelDistribution(
        _label_counts(stats), base_counts=_label_counts(base) if base else None, base_name=base_name)}
    try:
        displays = display_samples(measured.samples, per_class=settings.samples_per_class)
        sample_split = "train" if "train" in measured.dataset.splits else next(iter(measured.dataset.splits), "")
        jobs["sample_grid"] = SampleGrid(displays, stats.class_names, settings.samples_per_class, sample_split)
    except CannotDrawFigure as exc:  # feature vectors, not images: no grid, say why
        workflow.annotate("notice", "No sample grid", exc.message)
    histograms = {n: (s.histogram, s.histogram_edges) for n, s in stats.splits.items() if s.histogram}
    if histograms:
        base_histograms = {n: (s.histogram, s.histogram_edges) for n, s in base.splits.items() if s.histogram} \
            if base else None
        jobs["pixel_histogram"] = PixelHistogram(histograms, items={n: s.count for n, s in stats.splits.items()},
                                                 base=base_histograms, base_name=base_name)
    if baseline is not None:
        title = (f"Sanity baseline: training loss of a {baseline.model}\n"
                 f"train split, {baseline.train_samples:,} items, {baseline.epochs} epochs, {baseline.steps:,} steps")
        jobs["baseline_loss"] = LossCurve(baseline.losses, title=title, step_every=baseline.log_every)
    if measured.leaked:
        with contextlib.suppress(CannotDrawFigure):  # not images: the sample grid's notice said so
            jobs["leaked_pairs"] = LeakedPairs(
                display_images([leak.image for leak in measured.leaked]),
                [(leak.split, leak.item, leak.label, leak.train_item, leak.train_label) for leak in measured.leaked],
                stats.class_names, stats.leakage.train_test_exact_duplicates)
    return jobs


def _report(settings: DataStatsSettings, versions: DataVersions, measured: Measured,
            baseline: BaselineResult | None, figures: Mapping[str, bytes]) -> DataReport:
    from mlgate.data.gates import evaluate_data_gates

    return build_report(
        title=settings.report_title, data=settings.data.as_posix(), stats=measured.stats,
        content_hash=versions.head_hash, changes=measured.changes,
        gates=evaluate_data_gates(measured.stats, settings, baseline), baseline=baseline,
        figures={name: f"{name}.png" for name in figures},
    )


def _finished(report: DataReport, figures: Mapping[str, bytes], label_counts: dict[str, dict[str, int]]) -> Finished:
    from mlgate.figures.data import label_distribution_mermaid

    fallback = label_distribution_mermaid(label_counts)  # shown when the figures cannot be hosted
    return Finished(
        passed=report.passed, report_json=report.model_dump_json(indent=2), figures=figures,
        render=lambda links, note: render_markdown(report, links, fallback_chart=fallback, note=note),
        outputs={"data-changed": "" if report.data_changed is None else str(report.data_changed).lower()},
        headline=data_outcome(report),
    )


def _unchanged(settings: DataStatsSettings, versions: DataVersions, cache: StatsCache) -> Finished:
    """The data is byte-for-byte the base branch's: one line, no pull, and no new comment (an existing
    one is edited to say so, its old numbers folded away)."""
    from mlgate.data.gates import evaluate_data_gates

    cached = cache.get(_cache_key(versions.head_hash, settings)) if versions.head_hash else None
    stats = cached or DatasetStats(
        layout=settings.layout, class_names=None, splits={},
        leakage=LeakageStats(train_test_exact_duplicates=0, per_split={}, conflicting_labels=0),
    )
    gates = evaluate_data_gates(stats, settings) if cached else []
    report = build_report(
        title=settings.report_title, data=settings.data.as_posix(), stats=stats,
        content_hash=versions.head_hash, changes=None, gates=gates, baseline=None, figures={},
    ).model_copy(update={"data_changed": False})
    markdown = render_unchanged(settings.report_title, settings.data.as_posix(), versions.head_hash,
                                versions.base_ref, gates)
    return Finished(passed=report.passed, report_json=report.model_dump_json(indent=2),
                    render=lambda links, note: markdown, outputs={"data-changed": "false"},
                    comment="update-existing",
                    headline=unchanged_outcome(settings.data.as_posix(), versions.head_hash, versions.base_ref,
                                               gates))


def _base_hash(dvc: DvcRunner, base_sha: str, data: str) -> str | None:
    try:
        return dvc.content_hash(data, rev=base_sha)
    except DvcError as exc:
        workflow.annotate(
            "warning", "No base-branch comparison",
            f"Cannot read {data} at the base commit {base_sha[:12]}: {exc.message} "
            "Check out with `fetch-depth: 0` so the base commit is in the clone.",
        )
        return None


def _cache_key(content_hash: str | None, settings: DataStatsSettings) -> str:
    from mlgate.data.report import SCHEMA_VERSION

    return f"{content_hash}-{settings.layout}-{settings.dataset_class or ''}-v{SCHEMA_VERSION}"


def _label_counts(stats: DatasetStats) -> dict[str, dict[str, int]]:
    # an empty split has no shares to draw; the report's findings say it is empty
    return {name: split.label_counts for name, split in stats.splits.items() if split.count}


def _open(settings: DataStatsSettings, data_dir: Path, ctx: RunContext) -> Dataset:
    return open_dataset(data_dir, settings.layout, dataset_class=settings.dataset_class, import_root=ctx.workspace)


def _changes(settings: DataStatsSettings, ctx: RunContext, dvc: DvcRunner | None, versions: DataVersions,
             head: DatasetStats, cache: StatsCache) -> tuple[Changes | None, DatasetStats | None]:
    """Base statistics from a local copy, the cache, or the base revision's data (pulled only then),
    and what changed against them."""
    if settings.baseline_data is not None:
        base_dir = ctx.in_workspace(settings.baseline_data, "baseline-data")
        base_stats = compute_stats(_open(settings, base_dir, ctx), samples_per_class=1)[0]
        return compare(base_stats, head, base_name=settings.baseline_data.as_posix()), base_stats
    base_sha, base_hash = versions.base_sha, versions.base_hash
    if dvc is None or base_sha is None or base_hash is None:
        return None, None
    data = settings.data.as_posix()
    files: DataDiff = dvc.diff(base_sha, "HEAD", data)
    cached = cache.get(_cache_key(base_hash, settings))
    if cached is None:
        with tempfile.TemporaryDirectory(prefix="mlgate-base-") as tmp:
            base_dir = dvc.materialize(base_sha, data, Path(tmp))
            cached = compute_stats(_open(settings, base_dir, ctx), samples_per_class=1)[0]
        cache.put(_cache_key(base_hash, settings), cached)
    return compare(cached, head, base_name=versions.base_ref or base_sha[:12], base_hash=base_hash,
                   head_hash=versions.head_hash, files=files), cached


def _train_baseline(settings: DataStatsSettings, dataset: Dataset, stats: DatasetStats) -> BaselineResult:
    from mlgate.data.baseline import train_baseline
    from mlgate.data.layouts import DatasetLayoutError

    if "train" not in dataset.splits or "test" not in dataset.splits:
        raise DatasetLayoutError(
            f"`baseline-train: true` needs a `train` and a `test` split; found {', '.join(dataset.splits)}.",
            hint="Add a test split to the dataset, or set `baseline-train: false`.",
        )

    def pairs(name: str) -> Iterator[tuple[Tensor, Tensor]]:
        for batch in dataset.splits[name].batches():
            yield batch.images, batch.labels

    labels = [int(label) for split in stats.splits.values() for label in split.label_counts]
    return train_baseline(pairs("train"), pairs("test"), num_classes=max(labels) + 1,
                          time_budget_s=settings.baseline_time_budget)


__all__ = ["DataReport", "run_data_stats"]
